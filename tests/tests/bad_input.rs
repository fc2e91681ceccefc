//! A gateway under bad input. Host A attaches first and writes known data;
//! each case then sends something wrong (raw bytes, PDUs, capsules) and
//! checks the controller's exact answer, that host A still reads its data
//! back unchanged, and that a fresh host can still attach.

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use corepath_tests::gateway::{GatewaySetup, TestGateway, NQN};
use corepath_tests::host::{start_engine, test_controller_options, TestHost};
use corepath_tests::raw_host::{socket, HostIdentity, RawController, RawData, RawError, RawQpair};
use corepath_tests::{gateway_and_host_cores, pattern};
use engine::{Engine, TransportError};
use protocol::fabrics::ConnectData;
use protocol::fabrics::CNTLID_DYNAMIC;
use protocol::identify::identify_sqe;
use protocol::opcode::io;
use protocol::sgl::SglDescriptor;
use protocol::status::{command_specific, generic};
use protocol::tcp::{fes, flags, CapsuleCmd, DataPduHeader, Negotiated, PduType, R2tHeader};
use protocol::{Cqe, Sqe, StatusCodeType};
use serde_json::json;
use transport_tcp::TcpHostTransport;

/// Malloc namespace size.
const NS_BYTES: u64 = 8 << 20;
/// Blocks of host A's first region, from LBA 0 (1 MiB).
const A_HEAD_BLOCKS: u32 = 2048;
/// Blocks of host A's last region, at the end of the namespace.
const A_TAIL_BLOCKS: u32 = 8;
/// Pattern tag of host A's data.
const A_TAG: u64 = 0xA;
/// A subsystem only [`allowed_host`] may connect to.
const RESTRICTED_NQN: &str = "nqn.2016-06.io.spdk:restricted";

fn allowed_host() -> HostIdentity {
    HostIdentity::numbered(7)
}

/// Fields drop in order: the hosts go before the gateway they talk to.
struct Fixture {
    host_a: TestHost,
    /// A second engine whose attaches prove the gateway still serves.
    probe: Engine<TcpHostTransport>,
    num_blocks: u64,
    gw: TestGateway,
}

impl Fixture {
    fn new(traddr: &str) -> Fixture {
        let (gw_core, host_core) = gateway_and_host_cores();
        let gw = TestGateway::start(&GatewaySetup::new(gw_core, traddr, NS_BYTES));
        gw.call("bdev_malloc_create", json!({"name": "Malloc1", "num_blocks": 2048, "block_size": 512}));
        gw.call(
            "nvmf_create_subsystem",
            json!({"nqn": RESTRICTED_NQN, "serial_number": "RESTRICTED_1", "allow_any_host": false}),
        );
        gw.call("nvmf_subsystem_add_ns", json!({"nqn": RESTRICTED_NQN, "namespace": {"bdev_name": "Malloc1"}}));
        gw.call("nvmf_subsystem_add_host", json!({"nqn": RESTRICTED_NQN, "host": allowed_host().hostnqn}));
        gw.add_listener(RESTRICTED_NQN);

        let host_a = TestHost::attach(&gw.trid(NQN), &[host_core], &test_controller_options()).expect("attach host A");
        let num_blocks = host_a.ns.num_blocks;
        assert_eq!(num_blocks * 512, NS_BYTES);
        let head = pattern::make(host_a.bytes(A_HEAD_BLOCKS), A_TAG, 0);
        assert!(host_a.write(0, &head).is_success());
        let tail_lba = num_blocks - u64::from(A_TAIL_BLOCKS);
        let tail = pattern::make(host_a.bytes(A_TAIL_BLOCKS), A_TAG, tail_lba * 512);
        assert!(host_a.write(tail_lba, &tail).is_success());
        let probe = start_engine(&[host_core]);
        let f = Fixture { host_a, probe, num_blocks, gw };
        f.assert_still_serving("after setup");
        f
    }

    /// Host A reads its data back unchanged and a fresh controller attaches.
    fn assert_still_serving(&self, when: &str) {
        let (s, head) = self.host_a.read(0, A_HEAD_BLOCKS);
        assert!(s.is_success(), "{when}: host A read failed: {s:?}");
        assert_eq!(pattern::first_mismatch(&head, A_TAG, 0), None, "{when}: host A's first 1 MiB changed");
        let tail_lba = self.num_blocks - u64::from(A_TAIL_BLOCKS);
        let (s, tail) = self.host_a.read(tail_lba, A_TAIL_BLOCKS);
        assert!(s.is_success(), "{when}: host A tail read failed: {s:?}");
        assert_eq!(pattern::first_mismatch(&tail, A_TAG, tail_lba * 512), None, "{when}: host A's last blocks changed");
        let c = self
            .probe
            .attach_controller(&self.gw.trid(NQN), &test_controller_options())
            .unwrap_or_else(|e| panic!("{when}: a fresh host cannot attach: {e}"));
        assert_eq!(c.data.namespaces.len(), 1, "{when}: fresh host sees no namespace");
        self.probe.detach_controller(&c);
    }

    fn raw_controller(&self, n: u32) -> RawController {
        RawController::bring_up(&self.gw.trid(NQN), &HostIdentity::numbered(n)).expect("raw controller bring-up")
    }
}

fn assert_status(c: &Cqe, sct: StatusCodeType, sc: u8, dnr: bool, what: &str) {
    let s = c.status();
    assert_eq!((s.sct, s.sc, s.dnr), (sct, sc, dnr), "{what}: got {s:?} (dw0 {:#010x})", c.dw0);
}

/// Connect Invalid Parameters dword 0 per NVMe-oF 1.1a Figure 21: IPO in
/// bits 15:00, IATTR in bit 16 (1 = the offset is into the connect data).
/// Linux's and SPDK's targets lay it out the same way.
fn invalid_param_dw0(in_connect_data: bool, offset: u16) -> u32 {
    u32::from(offset) | (u32::from(in_connect_data) << 16)
}

#[test]
fn garbage_bytes_close_the_connection_and_the_gateway_keeps_serving() {
    let f = Fixture::new("127.0.0.6");
    let mut s = socket::connect(&f.gw.traddr, f.gw.port);
    let garbage: Vec<u8> = b"GET / HTTP/1.1\r\nHost: corepath\r\n\r\n"
        .iter()
        .copied()
        .chain((0..400).map(|i| (i * 37 + 11) as u8))
        .collect();
    s.write_all(&garbage).expect("send garbage");
    let (bytes, ending) = socket::read_until_closed(&mut s, Duration::from_secs(5));
    assert_ne!(ending, socket::Ending::StillOpen, "the gateway kept a connection that sent garbage");
    if !bytes.is_empty() {
        // Anything sent back must be a C2HTermReq (NVMe/TCP 1.0c §3.6.2.9).
        assert!(
            socket::c2h_term_req_fes(&bytes).is_some(),
            "unexpected reply to garbage: {:02x?}",
            &bytes[..bytes.len().min(32)]
        );
    }
    f.assert_still_serving("after garbage");
}

#[test]
fn truncated_pdus_then_close_leave_the_gateway_serving() {
    let f = Fixture::new("127.0.0.7");
    // Half an ICReq, then close.
    let mut s = socket::connect(&f.gw.traddr, f.gw.port);
    s.write_all(&socket::icreq_bytes()[..60]).expect("send half an ICReq");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let (_, ending) = socket::read_until_closed(&mut s, Duration::from_secs(5));
    assert_ne!(ending, socket::Ending::StillOpen, "half an ICReq then FIN: the gateway kept the connection");
    drop(s);
    // A full ICReq, then half a command capsule, then close.
    let mut s = socket::connect_initialized(&f.gw.traddr, f.gw.port);
    let mut capsule = vec![0u8; 72];
    let n =
        CapsuleCmd::new(Sqe::connect(0, 31, 30_000), 0, &Negotiated::initial()).encode(&mut capsule).expect("encode");
    s.write_all(&capsule[..n / 2]).expect("send half a capsule");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let (_, ending) = socket::read_until_closed(&mut s, Duration::from_secs(5));
    assert_ne!(ending, socket::Ending::StillOpen, "half a capsule then FIN: the gateway kept the connection");
    drop(s);
    f.assert_still_serving("after truncated PDUs");
}

#[test]
fn in_capsule_data_beyond_the_negotiated_size_is_terminated_with_fes_0x05_and_not_written() {
    let f = Fixture::new("127.0.0.8");
    let ctrl = f.raw_controller(1);
    let mut q = ctrl.io_qpair(1, 16).expect("IO queue");
    // The gateway allows 4 KiB in the capsule (SPDK's default); send 8 KiB there.
    q.set_in_capsule_data_size(8192);
    let data = vec![0xEE; 8192];
    let r = q.execute(Sqe::rw(io::WRITE, 1, 0, 16), RawData::Write(data));
    match r {
        Err(RawError::Transport(TransportError::Terminated { fes: got })) => {
            assert_eq!(got, fes::DATA_TRANSFER_LIMIT_EXCEEDED, "C2HTermReq FES")
        }
        other => panic!("expected a C2HTermReq with FES 0x05 (Data Transfer Limit Exceeded), got {other:?}"),
    }
    f.assert_still_serving("after an oversized capsule");
}

#[test]
fn connect_to_an_unknown_subsystem_gets_invalid_parameters_pointing_at_subnqn() {
    let f = Fixture::new("127.0.0.9");
    let mut q = RawQpair::connect(&f.gw.trid(NQN), 0, 32, false).expect("transport connect");
    let c = q
        .fabrics_connect(0, CNTLID_DYNAMIC, "nqn.2016-06.io.spdk:no-such-subsystem", &HostIdentity::numbered(2))
        .expect("Connect answered");
    assert_status(
        &c,
        StatusCodeType::CommandSpecific,
        command_specific::CONNECT_INVALID_PARAMETERS,
        true,
        "Connect, unknown SUBNQN",
    );
    assert_eq!(c.dw0, invalid_param_dw0(true, 256), "IATTR=1, IPO=256 (SUBNQN) expected, dw0 {:#010x}", c.dw0);
    f.assert_still_serving("after a Connect to an unknown subsystem");
}

#[test]
fn connect_by_a_host_not_on_the_allowed_list_gets_invalid_host() {
    let f = Fixture::new("127.0.0.10");
    let trid = f.gw.trid(RESTRICTED_NQN);
    let mut q = RawQpair::connect(&trid, 0, 32, false).expect("transport connect");
    let c = q.fabrics_connect(0, CNTLID_DYNAMIC, RESTRICTED_NQN, &HostIdentity::numbered(3)).expect("Connect answered");
    assert_status(
        &c,
        StatusCodeType::CommandSpecific,
        command_specific::CONNECT_INVALID_HOST,
        true,
        "Connect, host not allowed",
    );
    // The allowed host gets in, so the refusal was about the host.
    let ok = RawController::bring_up(&trid, &allowed_host()).expect("the allowed host connects");
    assert!(ok.cntlid >= 1);
    f.assert_still_serving("after a Connect by a host not allowed");
}

#[test]
fn io_queue_connect_with_an_unknown_cntlid_gets_invalid_parameters_pointing_at_cntlid() {
    let f = Fixture::new("127.0.0.11");
    let ctrl = f.raw_controller(4);
    assert!((1..=32760).contains(&ctrl.cntlid), "cntlid {} outside the subsystem's range", ctrl.cntlid);
    let host = ctrl.host.clone();
    // Outside the subsystem's range, inside it but unused, and the admin-queue wildcard.
    for cntlid in [40_000u16, 32_000, CNTLID_DYNAMIC] {
        let mut q = RawQpair::connect(&f.gw.trid(NQN), 1, 16, false).expect("transport connect");
        let c = q.fabrics_connect(1, cntlid, NQN, &host).expect("Connect answered");
        let what = format!("IO Connect with cntlid {cntlid}");
        assert_status(&c, StatusCodeType::CommandSpecific, command_specific::CONNECT_INVALID_PARAMETERS, true, &what);
        assert_eq!(
            c.dw0,
            invalid_param_dw0(true, 16),
            "{what}: IATTR=1, IPO=16 (CNTLID) expected, dw0 {:#010x}",
            c.dw0
        );
    }
    // The right CNTLID works.
    let mut q = ctrl.io_qpair(1, 16).expect("IO Connect with the controller's CNTLID");
    let (c, _) = q.execute(Sqe::rw(io::READ, 1, 0, 1), RawData::Read(512)).expect("read");
    assert!(c.status().is_success());
    f.assert_still_serving("after IO Connects with bad CNTLIDs");
}

#[test]
fn reads_and_writes_past_the_last_lba_get_lba_out_of_range_with_dnr() {
    let f = Fixture::new("127.0.0.12");
    let ctrl = f.raw_controller(5);
    let mut q = ctrl.io_qpair(1, 16).expect("IO queue");
    let last = f.num_blocks - 1;
    for (lba, nlb) in [(last, 2u32), (f.num_blocks, 1), (u64::MAX, 1)] {
        let (c, _) =
            q.execute(Sqe::rw(io::READ, 1, lba, nlb), RawData::Read(nlb as usize * 512)).expect("read answered");
        assert_status(
            &c,
            StatusCodeType::Generic,
            generic::LBA_OUT_OF_RANGE,
            true,
            &format!("read lba {lba} nlb {nlb}"),
        );
    }
    // A write that would straddle the end must not touch the last block.
    let (c, _) = q.execute(Sqe::rw(io::WRITE, 1, last, 2), RawData::Write(vec![0x55; 1024])).expect("write answered");
    assert_status(&c, StatusCodeType::Generic, generic::LBA_OUT_OF_RANGE, true, "write straddling the end");
    f.assert_still_serving("after out-of-range IO");
}

#[test]
fn write_larger_than_mdts_gets_invalid_field_and_is_not_executed() {
    let f = Fixture::new("127.0.0.13");
    let mdts_bytes = f.host_a.ns.max_transfer_bytes;
    assert_eq!(mdts_bytes, 1 << 20, "MDTS of the default transport");
    let ctrl = f.raw_controller(6);
    let mut q = ctrl.io_qpair(1, 16).expect("IO queue");
    // Twice MDTS over host A's first region.
    let blocks = 2 * mdts_bytes / 512;
    let (c, _) = q
        .execute(Sqe::rw(io::WRITE, 1, 0, blocks), RawData::Write(vec![0x66; 2 * mdts_bytes as usize]))
        .expect("write answered");
    // NVMe Base 2.0c, Identify Controller MDTS: a command that exceeds it
    // is aborted with Invalid Field in Command.
    assert_status(&c, StatusCodeType::Generic, generic::INVALID_FIELD, true, "write of 2 x MDTS");
    // Reads over MDTS are refused the same way.
    let (c, _) =
        q.execute(Sqe::rw(io::READ, 1, 0, blocks), RawData::Read(2 * mdts_bytes as usize)).expect("read answered");
    assert_status(&c, StatusCodeType::Generic, generic::INVALID_FIELD, true, "read of 2 x MDTS");
    f.assert_still_serving("after a write over MDTS");
}

#[test]
fn identify_with_an_unknown_cns_gets_invalid_field_with_dnr() {
    let f = Fixture::new("127.0.0.14");
    let mut ctrl = f.raw_controller(8);
    let (c, _) = ctrl.admin.execute(identify_sqe(0xFF, 0), RawData::Read(4096)).expect("Identify answered");
    assert_status(&c, StatusCodeType::Generic, generic::INVALID_FIELD, true, "Identify CNS 0xFF");
    // CNS 1 on the same queue works, so the queue itself is fine.
    let (c, data) = ctrl.admin.execute(identify_sqe(0x01, 0), RawData::Read(4096)).expect("Identify answered");
    assert!(c.status().is_success(), "Identify controller: {:?}", c.status());
    assert_eq!(&data[4..4 + 11], b"SPDK_BDEV_0", "serial number in Identify Controller");
    f.assert_still_serving("after Identify with a bad CNS");
}

#[test]
fn unknown_io_opcode_gets_invalid_opcode_with_dnr() {
    let f = Fixture::new("127.0.0.15");
    let ctrl = f.raw_controller(9);
    let mut q = ctrl.io_qpair(1, 16).expect("IO queue");
    // 0x7C: reserved in the NVM command set, no data transfer (bits 1:0 = 00b).
    let sqe = Sqe { opc: 0x7C, nsid: 1, ..Sqe::default() };
    let (c, _) = q.execute(sqe, RawData::None).expect("command answered");
    assert_status(&c, StatusCodeType::Generic, generic::INVALID_OPCODE, true, "IO opcode 0x7C");
    // The queue still carries IO.
    let (c, _) = q.execute(Sqe::rw(io::READ, 1, 0, 1), RawData::Read(512)).expect("read answered");
    assert!(c.status().is_success(), "read after the bad opcode: {:?}", c.status());
    f.assert_still_serving("after an unknown opcode");
}

/// A raw NVMe/TCP connection made IO queue 1 of `ctrl`: a stream that then
/// takes capsules written byte by byte.
fn raw_io_queue(f: &Fixture, ctrl: &RawController) -> std::net::TcpStream {
    let mut s = socket::connect_initialized(&f.gw.traddr, f.gw.port);
    let data = ConnectData::new(ctrl.host.hostid, ctrl.cntlid, NQN, &ctrl.host.hostnqn).expect("connect data");
    let mut sqe = Sqe::connect(1, 15, 0);
    sqe.cid = 1;
    sqe.dptr = SglDescriptor::DataBlockOffset { offset: 0, len: 1024 }.to_bytes();
    s.write_all(&socket::capsule_bytes(sqe, &data.to_bytes())).expect("send IO Connect");
    let c = socket::read_capsule_resp(&mut s);
    assert!(c.status().is_success(), "raw IO queue Connect: {:?}", c.status());
    s
}

#[test]
fn keyed_sgl_on_tcp_gets_sgl_descriptor_type_invalid_with_dnr_and_writes_nothing() {
    let f = Fixture::new("127.0.0.16");
    let ctrl = f.raw_controller(10);
    let mut s = raw_io_queue(&f, &ctrl);
    // RDMA's form of the data pointer (keyed SGL data block), on TCP, over host A's data.
    let mut sqe = Sqe::rw(io::WRITE, 1, 0, 8);
    sqe.cid = 2;
    sqe.dptr = SglDescriptor::KeyedDataBlock { addr: 0x1000, len: 4096, key: 0x1234 }.to_bytes();
    s.write_all(&socket::capsule_bytes(sqe, &[])).expect("send the write");
    let c = socket::read_capsule_resp(&mut s);
    // NVMe/TCP carries only SGL Data Block (offset) and Transport SGL Data Block
    // descriptors (NVMe/TCP 1.0c §3.3.3): anything else is SGL Descriptor Type
    // Invalid, with DNR, not a transient error the host would retry forever.
    assert_status(&c, StatusCodeType::Generic, generic::SGL_DESCRIPTOR_TYPE_INVALID, true, "keyed SGL write");
    assert_eq!(c.cid, 2);
    f.assert_still_serving("after a keyed SGL on TCP");
}

#[test]
fn h2cdata_without_data_or_with_an_early_last_pdu_is_terminated_and_writes_nothing() {
    let f = Fixture::new("127.0.0.17");
    let ctrl = f.raw_controller(11);
    let neg = Negotiated::initial();
    // (DATAL, LAST_PDU) of the only H2CData PDU sent for a 16 KiB write.
    for (datal, what) in [(0u32, "DATAL 0 with LAST_PDU"), (4096, "LAST_PDU after 4 KiB of 16 KiB")] {
        let mut s = raw_io_queue(&f, &ctrl);
        // 16 KiB over host A's data: beyond the in-capsule size, so the gateway asks with an R2T.
        let mut sqe = Sqe::rw(io::WRITE, 1, 0, 32);
        sqe.cid = 3;
        sqe.dptr = SglDescriptor::TransportDataBlock { len: 16384 }.to_bytes();
        s.write_all(&socket::capsule_bytes(sqe, &[])).expect("send the write");
        let r2t = R2tHeader::parse(&socket::read_exact(&mut s, 24)).expect("an R2T");
        assert_eq!((r2t.r2to, r2t.r2tl), (0, 16384), "{what}: one R2T for the whole write");
        let mut pdu = vec![0u8; 24];
        let n = DataPduHeader::new(PduType::H2CData, 3, r2t.ttag, 0, datal, flags::LAST_PDU, &neg)
            .encode(&mut pdu)
            .expect("encode H2CData");
        pdu.truncate(n);
        pdu.extend(std::iter::repeat(0x77).take(datal as usize));
        s.write_all(&pdu).expect("send H2CData");
        // Answered at once: a C2HTermReq (Invalid Header Field), then the close.
        let (bytes, ending) = socket::read_until_closed(&mut s, Duration::from_secs(5));
        assert_ne!(ending, socket::Ending::StillOpen, "{what}: the command was left hanging");
        assert_eq!(socket::c2h_term_req_fes(&bytes), Some(fes::INVALID_HEADER_FIELD), "{what}: {bytes:02x?}");
    }
    f.assert_still_serving("after bad H2CData");
}
