//! What SPDK's host does on the wire, replayed byte for byte against the
//! gateway (`../shared/spdk-shapes/README.md`, seen in a capture):
//! - `spdk_nvme_perf` without `hostnqn:` sends an empty Host NQN; an
//!   allow-any-host subsystem gives it a controller, one with a host list
//!   refuses it;
//! - on detach it forgets its four AERs (CIDs 0-3) and reuses CID 0 for the
//!   CC.SHN Property Set: the gateway must answer CID 0 once, for the
//!   Property Set, and never complete the forgotten AERs.
//!
//! Plus the C2HData SUCCESS optimisation (`c2h_success`): a read on a queue
//! whose host disabled SQ flow control ends with SUCCESS and no response
//! capsule; otherwise, or with `c2h_success: false`, a response follows.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use corepath_tests::gateway::{GatewaySetup, TestGateway, NQN};
use corepath_tests::raw_host::{socket, HostIdentity, RawController, RawData};
use corepath_tests::{gateway_and_host_cores, pattern};
use protocol::fabrics::{connect_response_cntlid, CNTLID_DYNAMIC};
use protocol::opcode::{admin, io};
use protocol::property::{offset as prop, Cc, Csts, ShutdownNotification, ShutdownStatus};
use protocol::sqe::connect_attr;
use protocol::status::command_specific;
use protocol::tcp::{flags, CapsuleCmd, CapsuleResp, CommonHeader, DataPduHeader, Negotiated, PduType};
use protocol::{ConnectData, Cqe, SglDescriptor, Sqe, StatusCodeType};
use serde_json::json;

/// A subsystem with a host list (the empty Host NQN is never on one).
const RESTRICTED_NQN: &str = "nqn.2016-06.io.spdk:restricted";
/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

fn gateway(traddr: &str, transport_params: serde_json::Value) -> TestGateway {
    let (gw_core, _) = gateway_and_host_cores();
    let mut setup = GatewaySetup::new(gw_core, traddr, 4 << 20);
    setup.transport_params = transport_params;
    let gw = TestGateway::start(&setup);
    gw.call("bdev_malloc_create", json!({"name": "Malloc1", "num_blocks": 2048, "block_size": 512}));
    gw.call("nvmf_create_subsystem", json!({"nqn": RESTRICTED_NQN, "serial_number": "R1", "allow_any_host": false}));
    gw.call("nvmf_subsystem_add_ns", json!({"nqn": RESTRICTED_NQN, "namespace": {"bdev_name": "Malloc1"}}));
    gw.call(
        "nvmf_subsystem_add_host",
        json!({"nqn": RESTRICTED_NQN, "host": "nqn.2014-08.org.nvmexpress:uuid:00000001-0000-4000-8000-000000000001"}),
    );
    gw.add_listener(RESTRICTED_NQN);
    gw
}

/// One PDU as it came off the socket: its common header and the rest.
#[derive(Debug)]
struct Pdu {
    ch: CommonHeader,
    bytes: Vec<u8>,
}

impl Pdu {
    fn response(&self) -> Option<Cqe> {
        CapsuleResp::parse(&self.bytes).ok().map(|r| r.cqe)
    }
}

/// A host speaking NVMe/TCP by hand on one socket (no digests).
struct WireHost {
    s: TcpStream,
    pending: Vec<u8>,
}

impl WireHost {
    fn new(gw: &TestGateway) -> WireHost {
        WireHost { s: socket::connect_initialized(&gw.traddr, gw.port), pending: Vec::new() }
    }

    /// Sends one command capsule with `data` in the capsule.
    fn send(&mut self, sqe: Sqe, data: &[u8]) {
        let mut b = vec![0u8; 72];
        let n = CapsuleCmd::new(sqe, data.len() as u32, &Negotiated::initial()).encode(&mut b).expect("encode");
        b.truncate(n);
        b.extend_from_slice(data);
        self.s.write_all(&b).expect("send capsule");
    }

    /// The PDUs that arrive within `window` (all of them, however many).
    fn pdus_within(&mut self, window: Duration) -> Vec<Pdu> {
        let start = Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        while start.elapsed() < window {
            match self.s.read(&mut buf) {
                Ok(0) => panic!("the gateway closed the connection"),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading: {e}"),
            }
            while let Ok(ch) = CommonHeader::parse(&self.pending) {
                let plen = ch.plen as usize;
                if self.pending.len() < plen {
                    break;
                }
                out.push(Pdu { ch, bytes: self.pending.drain(..plen).collect() });
            }
        }
        out
    }

    /// Waits for the response capsule of `cid`; panics on anything else first.
    fn response(&mut self, cid: u16) -> Cqe {
        let start = Instant::now();
        loop {
            let pdus = self.pdus_within(Duration::from_millis(20));
            if let Some(p) = pdus.first() {
                let cqe = p.response().unwrap_or_else(|| panic!("expected a response capsule, got {p:?}"));
                assert_eq!(cqe.cid, cid, "a response for CID {} while waiting for CID {cid}", cqe.cid);
                assert_eq!(pdus.len(), 1, "one command, one response: {pdus:?}");
                return cqe;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "no response for CID {cid}");
        }
    }

    /// Fabrics Connect of queue `qid` with the given host NQN and attributes.
    fn connect(&mut self, qid: u16, cntlid: u16, subnqn: &str, hostnqn: &str, cattr: u8) -> Cqe {
        let data = ConnectData::new(host_id(), cntlid, subnqn, hostnqn).expect("connect data").to_bytes();
        let mut sqe = Sqe::connect(qid, 31, if qid == 0 { 30_000 } else { 0 });
        sqe.set_connect_cattr(cattr);
        sqe.cid = 0x40;
        sqe.dptr = SglDescriptor::DataBlockOffset { offset: 0, len: 1024 }.to_bytes();
        self.send(sqe, &data);
        self.response(0x40)
    }

    fn property_set(&mut self, cid: u16, offset: u32, value: u32) -> Cqe {
        let mut sqe = Sqe::property_set(offset, false, u64::from(value));
        sqe.cid = cid;
        self.send(sqe, &[]);
        self.response(cid)
    }

    fn csts(&mut self, cid: u16) -> Csts {
        let mut sqe = Sqe::property_get(prop::CSTS, false);
        sqe.cid = cid;
        self.send(sqe, &[]);
        let c = self.response(cid);
        assert!(c.status().is_success(), "Property Get CSTS: {:?}", c.status());
        Csts::from_u32(c.dw0)
    }

    /// The admin queue of a new enabled controller, as SPDK's host brings it up (empty Host NQN).
    fn enabled_admin(gw: &TestGateway) -> (WireHost, u16) {
        let mut h = WireHost::new(gw);
        let c = h.connect(0, CNTLID_DYNAMIC, NQN, "", 0);
        assert!(c.status().is_success(), "Connect with an empty Host NQN: {:?}", c.status());
        let cntlid = connect_response_cntlid(c.dw0);
        let c = h.property_set(0x41, prop::CC, Cc::enable_nvm().to_u32());
        assert!(c.status().is_success(), "CC.EN = 1: {:?}", c.status());
        assert!(h.csts(0x42).rdy, "CSTS.RDY after CC.EN = 1");
        (h, cntlid)
    }
}

fn host_id() -> [u8; 16] {
    let mut id = [0x5Au8; 16];
    id[..4].copy_from_slice(&std::process::id().to_be_bytes());
    id
}

fn aer(cid: u16) -> Sqe {
    Sqe { opc: admin::ASYNC_EVENT_REQUEST, cid, ..Default::default() }
}

#[test]
fn spdk_detach_answers_cid_0_once_and_never_completes_the_forgotten_aers() {
    let gw = gateway("127.0.0.21", json!({}));
    let (mut h, _) = WireHost::enabled_admin(&gw);
    for cid in 0..4 {
        h.send(aer(cid), &[]);
    }
    let early = h.pdus_within(QUIET);
    assert!(early.is_empty(), "AERs are held until an event: {early:?}");

    // SPDK's detach: the AERs are forgotten host-side; CID 0 now names the shutdown.
    let shn = Cc { shn: ShutdownNotification::Normal, ..Cc::enable_nvm() };
    let mut sqe = Sqe::property_set(prop::CC, false, u64::from(shn.to_u32()));
    sqe.cid = 0;
    h.send(sqe, &[]);
    let pdus = h.pdus_within(QUIET);
    let cqes: Vec<Cqe> = pdus.iter().map(|p| p.response().expect("only response capsules")).collect();
    assert_eq!(cqes.len(), 1, "exactly one answer after CC.SHN (the Property Set), got {cqes:?}");
    assert_eq!(cqes[0].cid, 0);
    assert!(cqes[0].status().is_success(), "CC.SHN Property Set: {:?}", cqes[0].status());
    assert_eq!(h.csts(0x43).shst, ShutdownStatus::Complete);
    let late = h.pdus_within(QUIET);
    assert!(late.is_empty(), "nothing may answer the forgotten AERs later: {late:?}");
}

#[test]
fn clearing_cc_en_retires_held_aers_without_completions() {
    let gw = gateway("127.0.0.22", json!({}));
    let (mut h, _) = WireHost::enabled_admin(&gw);
    for cid in 0..2 {
        h.send(aer(cid), &[]);
    }
    let c = h.property_set(1, prop::CC, 0);
    assert!(c.status().is_success(), "CC.EN = 0: {:?}", c.status());
    assert!(!h.csts(0x44).rdy, "CSTS.RDY clears with CC.EN");
    let late = h.pdus_within(QUIET);
    assert!(late.is_empty(), "a reset retires the AERs silently: {late:?}");
    // The controller comes back and takes AERs again, on the same CIDs.
    let c = h.property_set(0x45, prop::CC, Cc::enable_nvm().to_u32());
    assert!(c.status().is_success());
    h.send(aer(0), &[]);
    assert!(h.pdus_within(QUIET).is_empty(), "a new AER is held, not refused");
}

#[test]
fn empty_host_nqn_gets_a_controller_only_where_any_host_is_allowed() {
    let gw = gateway("127.0.0.23", json!({}));
    // Allow-any-host: admin and IO queues, and IO works.
    let host = HostIdentity { hostnqn: String::new(), hostid: host_id() };
    let ctrl = RawController::bring_up(&gw.trid(NQN), &host).expect("empty Host NQN on an allow-any-host subsystem");
    let mut q = ctrl.io_qpair(1, 16).expect("IO queue with an empty Host NQN");
    let data = pattern::make(512, 0xE0, 7 * 512);
    let (c, _) = q.execute(Sqe::rw(io::WRITE, 1, 7, 1), RawData::Write(data.clone())).expect("write");
    assert!(c.status().is_success(), "write: {:?}", c.status());
    let (c, back) = q.execute(Sqe::rw(io::READ, 1, 7, 1), RawData::Read(512)).expect("read");
    assert!(c.status().is_success(), "read: {:?}", c.status());
    assert_eq!(back, data, "data read back equals data written");
    let ctrls = gw.call("nvmf_subsystem_get_controllers", json!({"nqn": NQN}));
    assert_eq!(ctrls.as_array().map(Vec::len), Some(1), "{ctrls}");
    assert_eq!(ctrls[0]["hostnqn"], "", "{ctrls}");
    assert_eq!(ctrls[0]["cntlid"], ctrl.cntlid, "{ctrls}");
    assert_eq!(ctrls[0]["num_io_qpairs"], 1, "{ctrls}");

    // A host list: refused as Invalid Host.
    let mut h = WireHost::new(&gw);
    let c = h.connect(0, CNTLID_DYNAMIC, RESTRICTED_NQN, "", 0);
    assert_eq!(c.status().sct, StatusCodeType::CommandSpecific, "{:?}", c.status());
    assert_eq!(c.status().sc, command_specific::CONNECT_INVALID_HOST, "{:?}", c.status());
    let none = gw.call("nvmf_subsystem_get_controllers", json!({"nqn": RESTRICTED_NQN}));
    assert_eq!(none, json!([]), "a refused host leaves no controller");
    let err = gw.service.call("nvmf_subsystem_get_controllers", json!({"nqn": "nqn.2016-06.io.spdk:none"}));
    let err = err.expect_err("an unknown subsystem is an error");
    assert!(err.message.contains("nqn.2016-06.io.spdk:none"), "{err:?}");
}

/// Connects an IO queue by hand with `cattr`, reads 4 KiB written before,
/// and returns the PDUs the read brought.
fn read_pdus(gw: &TestGateway, cattr: u8) -> Vec<Pdu> {
    let (admin, cntlid) = WireHost::enabled_admin(gw);
    let mut h = WireHost::new(gw);
    let c = h.connect(1, cntlid, NQN, "", cattr);
    assert!(c.status().is_success(), "IO Connect: {:?}", c.status());
    let mut sqe = Sqe::rw(io::READ, 1, 0, 8);
    sqe.cid = 3;
    sqe.dptr = SglDescriptor::TransportDataBlock { len: 4096 }.to_bytes();
    h.send(sqe, &[]);
    let pdus = h.pdus_within(QUIET);
    drop(admin);
    pdus
}

fn c2h_flags(pdus: &[Pdu]) -> Vec<u8> {
    pdus.iter()
        .filter(|p| p.ch.pdu_type == PduType::C2HData as u8)
        .map(|p| DataPduHeader::parse(&p.bytes).expect("C2HData header").ch.flags)
        .collect()
}

#[test]
fn c2h_success_ends_a_read_without_a_response_only_when_the_host_needs_no_sqhd() {
    let gw = gateway("127.0.0.24", json!({}));
    let written = pattern::make(4096, 0xC2, 0);
    let host = HostIdentity { hostnqn: String::new(), hostid: host_id() };
    let ctrl = RawController::bring_up(&gw.trid(NQN), &host).expect("bring up");
    let mut q = ctrl.io_qpair(1, 16).expect("IO queue");
    let (c, _) = q.execute(Sqe::rw(io::WRITE, 1, 0, 8), RawData::Write(written.clone())).expect("write");
    assert!(c.status().is_success());

    // SQ flow control disabled: one C2HData with LAST_PDU and SUCCESS, nothing else.
    let pdus = read_pdus(&gw, connect_attr::DISABLE_SQ_FLOW_CONTROL);
    assert_eq!(pdus.len(), 1, "{pdus:?}");
    assert_eq!(c2h_flags(&pdus), [flags::LAST_PDU | flags::SUCCESS]);
    let hdr = DataPduHeader::parse(&pdus[0].bytes).expect("C2HData");
    assert_eq!(hdr.cccid, 3);
    let pdo = usize::from(pdus[0].ch.pdo);
    assert_eq!(&pdus[0].bytes[pdo..pdo + 4096], &written[..], "the data of the read");

    // SQ flow control on: the host may need SQHD, so the response capsule comes.
    let pdus = read_pdus(&gw, 0);
    assert_eq!(c2h_flags(&pdus), [flags::LAST_PDU]);
    assert_eq!(pdus.last().and_then(Pdu::response).map(|c| c.cid), Some(3), "{pdus:?}");
}

#[test]
fn c2h_success_false_always_sends_the_response_capsule() {
    let gw = gateway("127.0.0.25", json!({"c2h_success": false}));
    let t = gw.call("nvmf_get_transports", json!({}));
    assert_eq!(t[0]["c2h_success"], false, "{t}");
    let pdus = read_pdus(&gw, connect_attr::DISABLE_SQ_FLOW_CONTROL);
    assert_eq!(c2h_flags(&pdus), [flags::LAST_PDU]);
    let last = pdus.last().and_then(Pdu::response).expect("a response capsule after the data");
    assert_eq!(last.cid, 3);
    assert!(last.status().is_success());
}
