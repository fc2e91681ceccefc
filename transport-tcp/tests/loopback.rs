//! Host and target queue pairs talking over 127.0.0.1, driven by one
//! single-threaded poll loop; and raw sockets playing a broken peer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use corepath_transport_tcp::{
    DataFault, TcpHostQpair, TcpHostTransport, TcpListener, TcpTargetQpair, TcpTargetTransport,
};
use engine::{
    ConnectProgress, HostQpair, HostTransport, QpairOptions, TargetListener, TargetOptions, TargetQpair,
    TargetTransport, TransportError, TransportId, XferBuf,
};
use protocol::opcode;
use protocol::sgl::SglDescriptor;
use protocol::tcp::{
    self, fes, flags, CapsuleCmd, CapsuleResp, CommonHeader, DataPduHeader, IcReq, IcResp, Negotiated, PduType,
    R2tHeader, TermReq,
};
use protocol::{Cqe, Sqe, Status};

const DEADLINE: Duration = Duration::from_secs(20);

fn now_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

fn listen(opts: &TargetOptions) -> TcpListener {
    TcpTargetTransport::new().listen("127.0.0.1", "0", opts).unwrap()
}

/// A connected host/target pair.
struct Pair {
    host: TcpHostQpair,
    target: TcpTargetQpair,
    _listener: TcpListener,
    start: Instant,
}

fn connect(qid: u16, hdgst: bool, ddgst: bool, topts: &TargetOptions) -> Pair {
    let mut listener = listen(topts);
    let trid = TransportId::tcp("127.0.0.1", &listener.local_port().to_string(), "nqn.2024-01.io.corepath:test");
    let opts = QpairOptions { qid, queue_depth: 32, header_digest: hdgst, data_digest: ddgst, connect_timeout_ns: 0 };
    let mut host = TcpHostTransport::new().connect(&trid, &opts).unwrap();
    let mut target: Option<TcpTargetQpair> = None;
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "connect did not finish");
        let progress = host.poll_connect(now_ns(start)).unwrap();
        if target.is_none() {
            target = listener.accept().unwrap();
        }
        if let Some(t) = target.as_mut() {
            t.poll(0).unwrap();
            t.flush().unwrap();
        }
        if progress == ConnectProgress::Ready {
            break;
        }
    }
    Pair { host, target: target.unwrap(), _listener: listener, start }
}

/// What the test's "controller" does with each command.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).wrapping_add((i >> 8) as u8)).collect()
}

impl Pair {
    /// Runs both sides until `want` completions have come back. The target
    /// answers reads with `pattern(len, slba)` and records write data.
    fn run(&mut self, want: usize, writes: &mut Vec<(u16, Vec<u8>)>) -> Vec<Cqe> {
        let mut done = Vec::new();
        while done.len() < want {
            assert!(self.start.elapsed() < DEADLINE, "IO did not finish: {} of {want}", done.len());
            self.host.flush().unwrap();
            self.target.poll(0).unwrap();
            while let Some(cmd) = self.target.next_command() {
                let data = self.target.data_mut(cmd.slot);
                let len = data.len() as u32;
                if cmd.sqe.opc == opcode::io::READ {
                    data.copy_from_slice(&pattern(data.len(), cmd.sqe.cdw10 as u8));
                    self.target.complete(cmd.slot, &Cqe::new(0, Status::SUCCESS, 0), len);
                } else {
                    writes.push((cmd.sqe.cid, data.to_vec()));
                    self.target.complete(cmd.slot, &Cqe::new(0, Status::SUCCESS, len), 0);
                }
            }
            self.target.flush().unwrap();
            self.host.poll(0, |cqe| done.push(cqe)).unwrap();
        }
        done
    }
}

fn xfer_from(buf: &mut [u8]) -> XferBuf {
    XferBuf::FromController { ptr: NonNull::new(buf.as_mut_ptr()).unwrap(), len: buf.len() as u32 }
}

fn xfer_to(buf: &[u8]) -> XferBuf {
    XferBuf::ToController { ptr: NonNull::new(buf.as_ptr().cast_mut()).unwrap(), len: buf.len() as u32 }
}

fn rw(opc: u8, cid: u16, slba: u64, len: usize) -> Sqe {
    let mut sqe = Sqe::rw(opc, 1, slba, (len / 512).max(1) as u32);
    sqe.cid = cid;
    sqe
}

const SIZES: [usize; 4] = [512, 4096, 128 * 1024, 1 << 20];

#[test]
fn icreq_icresp_negotiates_the_digests_the_host_asked_for() {
    for (hd, dd) in [(false, false), (true, false), (false, true), (true, true)] {
        let p = connect(1, hd, dd, &TargetOptions::default());
        assert_eq!((p.host.negotiated().hdgst, p.host.negotiated().ddgst), (hd, dd));
        assert_eq!((p.target.negotiated().hdgst, p.target.negotiated().ddgst), (hd, dd));
        assert_eq!(p.host.maxh2cdata(), TargetOptions::default().io_unit_size);
        assert!(p.target.peer_addr().starts_with("127.0.0.1:"));
    }
}

#[test]
fn reads_land_intact_in_the_callers_buffer() {
    for (hd, dd) in [(false, false), (true, true)] {
        let mut p = connect(1, hd, dd, &TargetOptions::default());
        for (i, &size) in SIZES.iter().enumerate() {
            let mut buf = vec![0u8; size];
            let sqe = rw(opcode::io::READ, i as u16, 40 + i as u64, size);
            // SAFETY: `buf` lives and is untouched until the completion below.
            unsafe { p.host.submit(&sqe, xfer_from(&mut buf)) }.unwrap();
            let done = p.run(1, &mut Vec::new());
            assert_eq!(done[0].cid, i as u16);
            assert!(done[0].status().is_success());
            assert!(buf == pattern(size, 40 + i as u8), "read of {size} bytes (digests {hd}/{dd}) differs");
        }
    }
}

#[test]
fn writes_arrive_intact_in_capsule_and_by_r2t() {
    for (hd, dd) in [(false, false), (true, true)] {
        for in_capsule in [true, false] {
            let mut p = connect(1, hd, dd, &TargetOptions::default());
            if !in_capsule {
                p.host.set_in_capsule_data_size(0);
            }
            for (i, &size) in SIZES.iter().enumerate() {
                let data = pattern(size, 100 + i as u8);
                let sqe = rw(opcode::io::WRITE, i as u16, 0, size);
                // SAFETY: `data` lives and is untouched until the completion below.
                unsafe { p.host.submit(&sqe, xfer_to(&data)) }.unwrap();
                let mut writes = Vec::new();
                let done = p.run(1, &mut writes);
                assert!(done[0].status().is_success());
                assert_eq!(done[0].dw0, size as u32);
                assert_eq!(writes.len(), 1);
                assert!(writes[0].1 == data, "write of {size} bytes (digests {hd}/{dd}, icd {in_capsule}) differs");
            }
        }
    }
}

#[test]
fn admin_queue_sends_8_kib_in_the_capsule() {
    let opts = TargetOptions { in_capsule_data_size: 8192, ..TargetOptions::default() };
    let mut p = connect(0, false, false, &opts);
    assert_eq!(p.host.in_capsule_data_size(), 8192);
    let data = pattern(8192, 9);
    // SAFETY: `data` outlives the completion.
    unsafe { p.host.submit(&rw(opcode::io::WRITE, 3, 0, 8192), xfer_to(&data)) }.unwrap();
    let mut writes = Vec::new();
    p.run(1, &mut writes);
    assert!(writes[0].1 == data);
}

#[test]
fn many_mixed_commands_in_flight_complete_with_the_right_data() {
    let opts = TargetOptions { io_unit_size: 16 * 1024, ..TargetOptions::default() };
    let mut p = connect(1, true, true, &opts);
    let sizes = [512usize, 4096, 8192, 65536, 200_000, 1 << 20];
    let mut read_bufs: Vec<Vec<u8>> = (0..16).map(|i| vec![0u8; sizes[i % sizes.len()]]).collect();
    let write_bufs: Vec<Vec<u8>> = (0..16).map(|i| pattern(sizes[(i + 3) % sizes.len()], i as u8)).collect();
    for (i, b) in read_bufs.iter_mut().enumerate() {
        let sqe = rw(opcode::io::READ, i as u16, i as u64, b.len());
        // SAFETY: the buffers outlive the completions.
        unsafe { p.host.submit(&sqe, xfer_from(b)) }.unwrap();
    }
    for (i, b) in write_bufs.iter().enumerate() {
        let sqe = rw(opcode::io::WRITE, 16 + i as u16, 0, b.len());
        // SAFETY: the buffers outlive the completions.
        unsafe { p.host.submit(&sqe, xfer_to(b)) }.unwrap();
    }
    let mut writes = Vec::new();
    let done = p.run(32, &mut writes);
    assert!(done.iter().all(|c| c.status().is_success()));
    let mut cids: Vec<u16> = done.iter().map(|c| c.cid).collect();
    cids.sort_unstable();
    assert_eq!(cids, (0..32).collect::<Vec<u16>>());
    for (i, b) in read_bufs.iter().enumerate() {
        assert!(*b == pattern(b.len(), i as u8), "read {i}");
    }
    for (cid, data) in writes {
        assert!(data == write_bufs[usize::from(cid - 16)], "write cid {cid}");
    }
}

#[test]
fn transfer_beyond_max_io_size_is_handed_over_empty_without_dropping_the_connection() {
    let opts = TargetOptions { max_io_size: 64 * 1024, ..TargetOptions::default() };
    let mut p = connect(1, false, false, &opts);
    let mut buf = vec![0u8; 128 * 1024];
    // SAFETY: `buf` outlives the completion.
    unsafe { p.host.submit(&rw(opcode::io::READ, 1, 0, buf.len()), xfer_from(&mut buf)) }.unwrap();
    let start = Instant::now();
    let cmd = loop {
        assert!(start.elapsed() < DEADLINE);
        p.host.flush().unwrap();
        p.target.poll(0).unwrap();
        if let Some(c) = p.target.next_command() {
            break c;
        }
    };
    assert!(p.target.data_mut(cmd.slot).is_empty());
    let fault = p.target.data_fault(cmd.slot).unwrap();
    assert_eq!(fault, DataFault::TooLarge);
    p.target.complete(cmd.slot, &Cqe::new(0, fault.status(), 0), 0);
    p.target.flush().unwrap();
    let mut done = Vec::new();
    while done.is_empty() {
        assert!(start.elapsed() < DEADLINE);
        p.host.poll(0, |c| done.push(c)).unwrap();
    }
    assert_eq!(done[0].status(), fault.status());
    // The connection still works.
    let mut small = vec![0u8; 512];
    // SAFETY: `small` outlives the completion.
    unsafe { p.host.submit(&rw(opcode::io::READ, 2, 7, 512), xfer_from(&mut small)) }.unwrap();
    p.run(1, &mut Vec::new());
    assert!(small == pattern(512, 7));
}

// ---- raw peers -------------------------------------------------------------

/// A raw client connected to a fresh listener, and the accepted target qpair.
fn raw_client(opts: &TargetOptions) -> (TcpStream, TcpTargetQpair, TcpListener) {
    let mut l = listen(opts);
    let s = TcpStream::connect(("127.0.0.1", l.local_port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE);
        if let Some(q) = l.accept().unwrap() {
            return (s, q, l);
        }
    }
}

fn raw_icreq(s: &mut TcpStream, q: &mut TcpTargetQpair, hd: bool, dd: bool) -> IcResp {
    let mut b = [0u8; 128];
    IcReq::new(0, hd, dd, 0).encode(&mut b).unwrap();
    s.write_all(&b).unwrap();
    let start = Instant::now();
    while q.negotiated().max_data_pdu_bytes == 0 {
        assert!(start.elapsed() < DEADLINE);
        q.poll(0).unwrap();
    }
    q.flush().unwrap();
    let mut r = [0u8; 128];
    s.read_exact(&mut r).unwrap();
    IcResp::parse(&r).unwrap()
}

/// Polls the target until it fails; returns the error.
fn poll_until_error(q: &mut TcpTargetQpair) -> TransportError {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "target never failed");
        if let Err(e) = q.poll(0) {
            return e;
        }
    }
}

/// Reads a termination request from the raw peer; returns (pdu type, FES).
fn read_term_req(s: &mut TcpStream) -> (u8, u16) {
    let mut ch = [0u8; 8];
    s.read_exact(&mut ch).unwrap();
    let ch = CommonHeader::parse(&ch).unwrap();
    let mut rest = vec![0u8; ch.plen as usize - 8];
    s.read_exact(&mut rest).unwrap();
    let mut whole = ch.to_bytes().to_vec();
    whole.extend_from_slice(&rest);
    (ch.pdu_type, TermReq::parse(&whole).unwrap().fes)
}

#[test]
fn garbage_bytes_make_the_target_fail_with_a_term_req_not_a_panic() {
    let (mut s, mut q, _l) = raw_client(&TargetOptions::default());
    s.write_all(&[0xEE; 64]).unwrap();
    let e = poll_until_error(&mut q);
    assert!(matches!(e, TransportError::Protocol(_)), "{e:?}");
    assert_eq!(read_term_req(&mut s), (PduType::C2HTermReq as u8, fes::INVALID_HEADER_FIELD));
    assert!(q.poll(0).is_err());
    assert!(q.flush().is_err());
}

#[test]
fn capsule_before_icreq_is_a_sequence_error() {
    let (mut s, mut q, _l) = raw_client(&TargetOptions::default());
    let mut b = [0u8; 72];
    CapsuleCmd::new(Sqe::default(), 0, &Negotiated::initial()).encode(&mut b).unwrap();
    s.write_all(&b).unwrap();
    poll_until_error(&mut q);
    assert_eq!(read_term_req(&mut s).1, fes::PDU_SEQUENCE_ERROR);
}

#[test]
fn rejects_in_capsule_data_longer_than_negotiated() {
    let (mut s, mut q, _l) = raw_client(&TargetOptions::default());
    raw_icreq(&mut s, &mut q, false, false);
    let neg = Negotiated { max_in_capsule_bytes: u32::MAX, ..Negotiated::initial() };
    let mut sqe = rw(opcode::io::WRITE, 1, 0, 8192);
    sqe.dptr = SglDescriptor::DataBlockOffset { offset: 0, len: 8192 }.to_bytes();
    let mut b = [0u8; 72];
    CapsuleCmd::new(sqe, 8192, &neg).encode(&mut b).unwrap();
    s.write_all(&b).unwrap();
    s.write_all(&[1u8; 8192]).unwrap();
    poll_until_error(&mut q);
    assert_eq!(read_term_req(&mut s).1, fes::DATA_TRANSFER_LIMIT_EXCEEDED);
}

#[test]
fn rejects_h2c_data_longer_than_maxh2cdata() {
    let opts = TargetOptions { io_unit_size: 8192, ..TargetOptions::default() };
    let (mut s, mut q, _l) = raw_client(&opts);
    let resp = raw_icreq(&mut s, &mut q, false, false);
    assert_eq!(resp.maxh2cdata, 8192);
    let neg = Negotiated { max_in_capsule_bytes: 0, max_data_pdu_bytes: u32::MAX, ..Negotiated::initial() };
    let mut sqe = rw(opcode::io::WRITE, 5, 0, 65536);
    sqe.dptr = SglDescriptor::TransportDataBlock { len: 65536 }.to_bytes();
    let mut b = [0u8; 72];
    CapsuleCmd::new(sqe, 0, &neg).encode(&mut b).unwrap();
    s.write_all(&b).unwrap();
    // The target answers with one R2T for everything.
    let start = Instant::now();
    let mut r2t = [0u8; 24];
    loop {
        assert!(start.elapsed() < DEADLINE);
        q.poll(0).unwrap();
        q.flush().unwrap();
        s.set_nonblocking(true).unwrap();
        let got = s.read(&mut r2t);
        s.set_nonblocking(false).unwrap();
        if let Ok(n) = got {
            assert_eq!(n, 24);
            break;
        }
    }
    let r2t = R2tHeader::parse(&r2t).unwrap();
    assert_eq!((r2t.cccid, r2t.r2to, r2t.r2tl), (5, 0, 65536));
    let h = DataPduHeader::new(PduType::H2CData, 5, r2t.ttag, 0, 16384, 0, &neg);
    let mut hb = [0u8; 24];
    h.encode(&mut hb).unwrap();
    s.write_all(&hb).unwrap();
    s.write_all(&[0u8; 16384]).unwrap();
    poll_until_error(&mut q);
    assert_eq!(read_term_req(&mut s).1, fes::DATA_TRANSFER_LIMIT_EXCEEDED);
}

#[test]
fn bad_data_digest_hands_the_command_over_empty() {
    let (mut s, mut q, _l) = raw_client(&TargetOptions::default());
    raw_icreq(&mut s, &mut q, false, true);
    let neg = Negotiated { ddgst: true, ..Negotiated::initial() };
    let mut sqe = rw(opcode::io::WRITE, 2, 0, 512);
    sqe.dptr = SglDescriptor::DataBlockOffset { offset: 0, len: 512 }.to_bytes();
    let mut b = [0u8; 72];
    CapsuleCmd::new(sqe, 512, &neg).encode(&mut b).unwrap();
    s.write_all(&b).unwrap();
    s.write_all(&[3u8; 512]).unwrap();
    s.write_all(&(tcp::data_digest(&[3u8; 512]) ^ 1).to_le_bytes()).unwrap();
    let start = Instant::now();
    let cmd = loop {
        assert!(start.elapsed() < DEADLINE);
        q.poll(0).unwrap();
        if let Some(c) = q.next_command() {
            break c;
        }
    };
    assert_eq!(cmd.sqe.cid, 2);
    assert!(q.data_mut(cmd.slot).is_empty());
    assert_eq!(q.data_fault(cmd.slot), Some(DataFault::DigestError));
    q.complete(cmd.slot, &Cqe::new(0, DataFault::DigestError.status(), 0), 0);
    q.flush().unwrap();
    let mut r = [0u8; 24];
    s.read_exact(&mut r).unwrap();
    let resp = CapsuleResp::parse(&r).unwrap();
    assert_eq!(resp.cqe.cid, 2);
    assert_eq!(resp.cqe.status(), DataFault::DigestError.status());
}

#[test]
fn truncated_pdu_then_close_fails_the_target_qpair() {
    let (mut s, mut q, _l) = raw_client(&TargetOptions::default());
    raw_icreq(&mut s, &mut q, true, false);
    let neg = Negotiated { hdgst: true, ..Negotiated::initial() };
    let mut b = [0u8; 76];
    CapsuleCmd::new(rw(opcode::io::READ, 1, 0, 512), 0, &neg).encode(&mut b).unwrap();
    s.write_all(&b[..40]).unwrap();
    drop(s);
    assert!(matches!(poll_until_error(&mut q), TransportError::Closed));
}

#[test]
fn corrupt_header_digest_is_fatal() {
    let (mut s, mut q, _l) = raw_client(&TargetOptions::default());
    raw_icreq(&mut s, &mut q, true, false);
    let neg = Negotiated { hdgst: true, ..Negotiated::initial() };
    let mut b = [0u8; 76];
    CapsuleCmd::new(rw(opcode::io::READ, 1, 0, 512), 0, &neg).encode(&mut b).unwrap();
    b[74] ^= 0xFF;
    s.write_all(&b).unwrap();
    poll_until_error(&mut q);
    assert_eq!(read_term_req(&mut s).1, fes::HEADER_DIGEST_ERROR);
}

// ---- raw controller against the host ---------------------------------------

/// A host qpair connected to a raw socket that has answered ICReq.
fn host_with_raw_controller() -> (TcpHostQpair, TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let trid = TransportId::tcp("127.0.0.1", &l.local_addr().unwrap().port().to_string(), "nqn.test");
    let opts = QpairOptions { qid: 1, queue_depth: 8, header_digest: false, data_digest: false, connect_timeout_ns: 0 };
    let mut host = TcpHostTransport::new().connect(&trid, &opts).unwrap();
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut icreq = [0u8; 128];
    let mut got = 0;
    while got < 128 {
        assert!(start.elapsed() < DEADLINE);
        host.poll_connect(0).unwrap();
        s.set_nonblocking(true).unwrap();
        if let Ok(n) = s.read(&mut icreq[got..]) {
            got += n;
        }
        s.set_nonblocking(false).unwrap();
    }
    let req = IcReq::parse(&icreq).unwrap();
    assert_eq!(req.maxr2t, 0);
    let mut r = [0u8; 128];
    IcResp::new(0, false, false, 65536).encode(&mut r).unwrap();
    s.write_all(&r).unwrap();
    while host.poll_connect(0).unwrap() != ConnectProgress::Ready {
        assert!(start.elapsed() < DEADLINE);
    }
    (host, s)
}

fn host_poll_until_error(host: &mut TcpHostQpair) -> TransportError {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "host never failed");
        if let Err(e) = host.poll(0, |_| {}) {
            return e;
        }
    }
}

#[test]
fn host_rejects_a_response_for_an_unknown_cid_with_an_h2c_term_req() {
    let (mut host, mut s) = host_with_raw_controller();
    let mut b = [0u8; 24];
    CapsuleResp::new(Cqe::new(7, Status::SUCCESS, 0), &Negotiated::initial()).encode(&mut b).unwrap();
    s.write_all(&b).unwrap();
    assert!(matches!(host_poll_until_error(&mut host), TransportError::Protocol(_)));
    assert_eq!(read_term_req(&mut s), (PduType::H2CTermReq as u8, fes::INVALID_HEADER_FIELD));
}

#[test]
fn host_reports_a_controller_term_req_as_terminated() {
    let (mut host, mut s) = host_with_raw_controller();
    let t = TermReq::new(PduType::C2HTermReq, tcp::FatalStatus { fes: fes::PDU_SEQUENCE_ERROR, fei: 0 }, 8);
    let mut b = [0u8; 64];
    let n = t.encode(&[0u8; 8], &mut b).unwrap();
    s.write_all(&b[..n]).unwrap();
    assert!(matches!(host_poll_until_error(&mut host), TransportError::Terminated { fes: 2 }));
}

#[test]
fn host_rejects_read_data_beyond_the_buffer() {
    let (mut host, mut s) = host_with_raw_controller();
    let mut buf = vec![0u8; 512];
    // SAFETY: `buf` outlives the qpair's use (the qpair fails below).
    unsafe { host.submit(&rw(opcode::io::READ, 1, 0, 512), xfer_from(&mut buf)) }.unwrap();
    host.flush().unwrap();
    let mut capsule = [0u8; 72];
    s.read_exact(&mut capsule).unwrap();
    let cmd = CapsuleCmd::parse(&capsule).unwrap();
    assert_eq!(SglDescriptor::parse(&cmd.sqe.dptr).unwrap(), SglDescriptor::TransportDataBlock { len: 512 });
    let h = DataPduHeader::new(PduType::C2HData, 1, 0, 0, 1024, flags::LAST_PDU, &Negotiated::initial());
    let mut b = [0u8; 24];
    h.encode(&mut b).unwrap();
    s.write_all(&b).unwrap();
    s.write_all(&[0u8; 1024]).unwrap();
    assert!(matches!(host_poll_until_error(&mut host), TransportError::Protocol(_)));
    assert_eq!(read_term_req(&mut s).1, fes::DATA_TRANSFER_OUT_OF_RANGE);
}

#[test]
fn host_synthesizes_success_for_c2h_data_with_the_success_flag() {
    let (mut host, mut s) = host_with_raw_controller();
    let mut buf = vec![0u8; 512];
    // SAFETY: `buf` outlives the completion.
    unsafe { host.submit(&rw(opcode::io::READ, 4, 0, 512), xfer_from(&mut buf)) }.unwrap();
    host.flush().unwrap();
    let mut capsule = [0u8; 72];
    s.read_exact(&mut capsule).unwrap();
    let h =
        DataPduHeader::new(PduType::C2HData, 4, 0, 0, 512, flags::LAST_PDU | flags::SUCCESS, &Negotiated::initial());
    let mut b = [0u8; 24];
    h.encode(&mut b).unwrap();
    s.write_all(&b).unwrap();
    s.write_all(&[0x5A; 512]).unwrap();
    let start = Instant::now();
    let mut done = Vec::new();
    while done.is_empty() {
        assert!(start.elapsed() < DEADLINE);
        host.poll(0, |c| done.push(c)).unwrap();
    }
    assert_eq!(done[0].cid, 4);
    assert!(done[0].status().is_success());
    assert!(buf.iter().all(|&b| b == 0x5A));
}
