//! Host side of an NVMe/TCP queue pair.
//!
//! Connect: a non-blocking TCP connect, then ICReq/ICResp, driven by
//! [`HostQpair::poll_connect`]. Then per command: [`HostQpair::submit`]
//! fills in SGL1 (in-capsule for writes that fit, a Transport SGL Data Block
//! otherwise) and queues the capsule; reads land from C2HData PDUs straight
//! in the caller's buffer; writes too large for the capsule are sent in
//! H2CData PDUs (at most MAXH2CDATA each) when the controller asks with R2T,
//! directly from the caller's buffer. A command's completion is reported
//! only once no queued PDU reads its buffer any more, so the engine may
//! reuse the buffer as soon as it sees the completion.
//!
//! Everything per command lives in a table indexed by CID, sized to the
//! queue depth at connect; nothing on the IO path allocates.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use engine::{AdrFam, ConnectProgress, HostQpair, QpairOptions, TrType, TransportError, TransportId, XferBuf};
use protocol::sgl::SglDescriptor;
use protocol::sqe::PSDT_SGL_MPTR_CONTIG;
use protocol::status::generic;
use protocol::tcp::{
    self, fes, flags, CapsuleCmd, CapsuleResp, DataPduHeader, IcReq, IcResp, Negotiated, PduLayout, PduType, R2tHeader,
    Role, TermReq,
};
use protocol::{Cqe, Sqe, Status};

use crate::conn::{already_failed, io_error, Conn, Failure, Fault, Received, MAX_RECVS_PER_POLL};
use crate::rx::{RxEvent, Sink};
use crate::sys;
use crate::tx::TxDone;

/// In-capsule data the admin queue uses: what the Linux target accepts there.
pub const ADMIN_IN_CAPSULE_DATA_BYTES: u32 = 8192;

/// In-capsule data IO queues use until [`TcpHostQpair::set_in_capsule_data_size`]
/// says otherwise (SPDK's and Linux's default IOCCSZ allows 4 KiB and more).
pub const IO_IN_CAPSULE_DATA_BYTES: u32 = 4096;

/// FEI of a response's CID: common header (8) + CQE bytes 12..14.
const CQE_CID_OFFSET: u32 = 20;

/// Most H2CData PDUs queued at once, so capsules always find room in the ring.
const H2C_PDUS_IN_RING: u16 = 32;

/// Connection setup state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostState {
    /// TCP handshake in progress.
    TcpConnecting,
    /// ICReq queued or sent; waiting for ICResp.
    AwaitIcResp,
    /// Capsules may flow.
    Ready,
    /// Dead: every call fails.
    Failed,
}

/// Where one command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmdState {
    /// The CID is not in use.
    Free,
    /// Submitted; waiting for data PDUs and the response.
    Active,
    /// The response is in, but queued PDUs still read the caller's buffer:
    /// the completion is reported once they have been sent.
    Draining(Cqe),
}

/// An R2T being answered: H2CData PDUs still to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct H2cJob {
    ttag: u16,
    next: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy)]
struct HostCmd {
    state: CmdState,
    xfer: XferBuf,
    in_capsule: bool,
    /// PDUs in the send ring that read `xfer`.
    ring_refs: u16,
    /// Next C2HData offset expected.
    c2h_next: u32,
    r2t: Option<H2cJob>,
    /// A data digest failed: the completion reports a data transfer error.
    data_error: bool,
}

impl HostCmd {
    const FREE: HostCmd = HostCmd {
        state: CmdState::Free,
        xfer: XferBuf::None,
        in_capsule: false,
        ring_refs: 0,
        c2h_next: 0,
        r2t: None,
        data_error: false,
    };
}

/// The C2HData PDU being received.
#[derive(Debug, Clone, Copy)]
struct C2hInProgress {
    cid: u16,
    datal: u32,
    success_last: bool,
}

/// Creates [`TcpHostQpair`]s.
#[derive(Debug, Clone, Default)]
pub struct TcpHostTransport {
    _private: (),
}

impl TcpHostTransport {
    /// A host transport; it holds no state of its own.
    pub fn new() -> Self {
        TcpHostTransport { _private: () }
    }
}

impl engine::HostTransport for TcpHostTransport {
    type Qpair = TcpHostQpair;

    fn connect(&mut self, trid: &TransportId, opts: &QpairOptions) -> Result<TcpHostQpair, TransportError> {
        TcpHostQpair::connect(trid, opts)
    }
}

/// Parses a transport ID's address without name resolution (which would block).
pub(crate) fn socket_addr(adrfam: Option<AdrFam>, traddr: &str, trsvcid: &str) -> Result<SocketAddr, TransportError> {
    let ip: IpAddr =
        traddr.parse().map_err(|_| TransportError::BadAddress(format!("'{traddr}' is not an IP address")))?;
    let port: u16 = trsvcid.parse().map_err(|_| TransportError::BadAddress(format!("'{trsvcid}' is not a port")))?;
    match (adrfam, ip) {
        (Some(AdrFam::Ipv4), IpAddr::V6(_)) | (Some(AdrFam::Ipv6), IpAddr::V4(_)) => {
            Err(TransportError::BadAddress(format!("'{traddr}' does not match the address family")))
        }
        _ => Ok(SocketAddr::new(ip, port)),
    }
}

/// Host side of one NVMe/TCP queue pair.
pub struct TcpHostQpair {
    conn: Conn,
    state: HostState,
    qid: u16,
    want_hdgst: bool,
    want_ddgst: bool,
    connect_timeout_ns: u64,
    deadline_ns: Option<u64>,
    neg: Negotiated,
    maxh2cdata: u32,
    in_capsule_bytes: u32,
    cmds: Box<[HostCmd]>,
    /// CIDs with an R2T to answer, in arrival order; each at most once.
    h2c_jobs: VecDeque<u16>,
    h2c_in_ring: u16,
    /// Completions found while sending, reported by the next poll.
    ready: VecDeque<Cqe>,
    c2h: Option<C2hInProgress>,
}

impl TcpHostQpair {
    /// Starts connecting to `trid` without blocking; see [`HostQpair::poll_connect`].
    pub fn connect(trid: &TransportId, opts: &QpairOptions) -> Result<Self, TransportError> {
        if trid.trtype != TrType::Tcp {
            return Err(TransportError::BadAddress(format!("trtype {} is not TCP", trid.trtype.as_str())));
        }
        let addr = socket_addr(Some(trid.adrfam), &trid.traddr, &trid.trsvcid)?;
        let sock = sys::start_connect(&addr).map_err(|e| io_error("connect", e))?;
        let depth = usize::from(opts.queue_depth.max(1));
        Ok(TcpHostQpair {
            conn: Conn::new(sock, depth + usize::from(H2C_PDUS_IN_RING) + 2),
            state: HostState::TcpConnecting,
            qid: opts.qid,
            want_hdgst: opts.header_digest,
            want_ddgst: opts.data_digest,
            connect_timeout_ns: opts.connect_timeout_ns,
            deadline_ns: None,
            neg: Negotiated::initial(),
            maxh2cdata: 0,
            in_capsule_bytes: if opts.qid == 0 { ADMIN_IN_CAPSULE_DATA_BYTES } else { IO_IN_CAPSULE_DATA_BYTES },
            cmds: vec![HostCmd::FREE; depth].into_boxed_slice(),
            h2c_jobs: VecDeque::with_capacity(depth),
            h2c_in_ring: 0,
            ready: VecDeque::with_capacity(depth),
            c2h: None,
        })
    }

    /// Sets the largest write sent inside the command capsule, e.g. from the
    /// controller's IOCCSZ after Identify: `(ioccsz * 16) - 64` bytes.
    pub fn set_in_capsule_data_size(&mut self, bytes: u32) {
        self.in_capsule_bytes = bytes;
    }

    /// The parameters ICResp settled (no digests before that).
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// The controller's MAXH2CDATA (0 before ICResp).
    pub fn maxh2cdata(&self) -> u32 {
        self.maxh2cdata
    }

    /// Turns an internal failure into the caller's error, terminating the
    /// connection if the peer broke the protocol.
    fn fail(&mut self, f: Failure) -> TransportError {
        self.state = HostState::Failed;
        match f {
            Failure::Fault(fault) => self.conn.terminate(PduType::H2CTermReq, &fault),
            Failure::Transport(e) => e,
        }
    }

    /// Receives and handles PDUs; returns completions reported.
    fn pump(&mut self, on_done: &mut impl FnMut(Cqe)) -> Result<usize, Failure> {
        let mut completions = 0;
        let mut recvs = 0;
        loop {
            let ev = self.conn.rx.next(&self.neg, Role::Host).map_err(|e| Fault::wire("invalid PDU header", e))?;
            match ev {
                RxEvent::NeedMore => {
                    if recvs == MAX_RECVS_PER_POLL || self.conn.receive()? == Received::Nothing {
                        return Ok(completions);
                    }
                    recvs += 1;
                }
                RxEvent::Header(layout) => self.on_header(&layout)?,
                RxEvent::PduDone { data_digest_ok } => completions += self.on_pdu_done(data_digest_ok, on_done)?,
            }
        }
    }

    fn on_header(&mut self, layout: &PduLayout) -> Result<(), Failure> {
        let expected = match layout.pdu_type {
            PduType::C2HTermReq => true,
            PduType::IcResp => self.state == HostState::AwaitIcResp,
            _ => self.state == HostState::Ready,
        };
        if !expected {
            return Err(Fault::new(fes::PDU_SEQUENCE_ERROR, 0, "PDU not allowed in this connection state").into());
        }
        let sink = if layout.pdu_type == PduType::C2HData { self.c2h_sink(layout)? } else { Sink::Discard };
        // SAFETY: a Mem sink from `c2h_sink` lies inside the FromController
        // buffer lent by `submit`, valid and ours until its completion is
        // reported, which cannot happen before this PDU is done.
        unsafe { self.conn.rx.set_sink(sink) };
        Ok(())
    }

    fn c2h_sink(&mut self, layout: &PduLayout) -> Result<Sink, Failure> {
        let h = DataPduHeader::parse(self.conn.rx.header()).map_err(|e| Fault::wire("bad C2HData header", e))?;
        h.check_datal(layout).map_err(|e| Fault::wire("C2HData DATAL disagrees with PLEN", e))?;
        let bad_cid = || Fault::new(fes::INVALID_HEADER_FIELD, 8, "C2HData for a CID not in flight");
        let cmd = self.cmds.get_mut(usize::from(h.cccid)).ok_or_else(bad_cid)?;
        if cmd.state != CmdState::Active {
            return Err(bad_cid().into());
        }
        let XferBuf::FromController { ptr, len } = cmd.xfer else {
            return Err(Fault::new(fes::PDU_SEQUENCE_ERROR, 0, "C2HData for a command without read data").into());
        };
        if h.datao != cmd.c2h_next {
            return Err(Fault::new(fes::INVALID_HEADER_FIELD, 12, "C2HData out of order").into());
        }
        if u64::from(h.datao) + u64::from(h.datal) > u64::from(len) {
            return Err(Fault::new(fes::DATA_TRANSFER_OUT_OF_RANGE, 0, "C2HData beyond the read buffer").into());
        }
        if h.success() && !h.last_pdu() {
            return Err(Fault::new(fes::INVALID_HEADER_FIELD, 1, "C2HData SUCCESS without LAST_PDU").into());
        }
        self.c2h = Some(C2hInProgress { cid: h.cccid, datal: h.datal, success_last: h.success() });
        // SAFETY: datao + datal <= len (checked above), so the offset stays in the buffer.
        let dst = unsafe { ptr.add(h.datao as usize) };
        Ok(Sink::Mem { ptr: dst, len: h.datal as usize })
    }

    fn on_pdu_done(&mut self, data_digest_ok: bool, on_done: &mut impl FnMut(Cqe)) -> Result<usize, Failure> {
        let Some(layout) = self.conn.rx.layout() else { return Ok(0) };
        match layout.pdu_type {
            PduType::IcResp => {
                self.on_icresp()?;
                Ok(0)
            }
            PduType::CapsuleResp => {
                let resp =
                    CapsuleResp::parse(self.conn.rx.header()).map_err(|e| Fault::wire("bad response capsule", e))?;
                self.complete(resp.cqe, on_done)
            }
            PduType::C2HData => {
                let Some(c2h) = self.c2h.take() else { return Ok(0) };
                let qid = self.qid;
                let Some(cmd) = self.cmds.get_mut(usize::from(c2h.cid)) else { return Ok(0) };
                cmd.c2h_next += c2h.datal;
                cmd.data_error |= !data_digest_ok;
                if c2h.success_last {
                    // SUCCESS: no response capsule follows (§3.6.2.8); make the CQE here.
                    let cqe = Cqe { sqid: qid, ..Cqe::new(c2h.cid, Status::SUCCESS, 0) };
                    return self.complete(cqe, on_done);
                }
                Ok(0)
            }
            PduType::R2T => {
                self.on_r2t()?;
                Ok(0)
            }
            PduType::C2HTermReq => {
                let fes = TermReq::parse(self.conn.rx.header()).map(|t| t.fes).unwrap_or(0);
                Err(TransportError::Terminated { fes }.into())
            }
            _ => Err(Fault::new(fes::INVALID_HEADER_FIELD, 0, "PDU type a host does not receive").into()),
        }
    }

    fn on_icresp(&mut self) -> Result<(), Failure> {
        let resp = IcResp::parse(self.conn.rx.header()).map_err(|e| Fault::wire("bad ICResp", e))?;
        if (resp.hdgst() && !self.want_hdgst) || (resp.ddgst() && !self.want_ddgst) {
            return Err(
                Fault::new(fes::UNSUPPORTED_PARAMETER, 11, "ICResp enables a digest the host did not ask for").into()
            );
        }
        self.neg = Negotiated {
            hdgst: resp.hdgst(),
            ddgst: resp.ddgst(),
            // C2HData is bounded by each command's buffer instead.
            max_data_pdu_bytes: u32::MAX,
            max_in_capsule_bytes: 0,
            rx_pda: 0,
            tx_pda: resp.cpda,
        };
        self.maxh2cdata = resp.maxh2cdata;
        self.state = HostState::Ready;
        Ok(())
    }

    fn on_r2t(&mut self) -> Result<(), Failure> {
        let r = R2tHeader::parse(self.conn.rx.header()).map_err(|e| Fault::wire("bad R2T", e))?;
        let bad_cid = || Fault::new(fes::INVALID_HEADER_FIELD, 8, "R2T for a CID not in flight");
        let cmd = self.cmds.get_mut(usize::from(r.cccid)).ok_or_else(bad_cid)?;
        if cmd.state != CmdState::Active {
            return Err(bad_cid().into());
        }
        let XferBuf::ToController { len, .. } = cmd.xfer else {
            return Err(Fault::new(fes::PDU_SEQUENCE_ERROR, 0, "R2T for a command without write data").into());
        };
        if cmd.in_capsule {
            return Err(Fault::new(fes::PDU_SEQUENCE_ERROR, 0, "R2T for data sent in the capsule").into());
        }
        if cmd.r2t.is_some() {
            // ICReq asked for MAXR2T 0: one outstanding R2T per command.
            return Err(Fault::new(fes::R2T_LIMIT_EXCEEDED, 0, "second outstanding R2T").into());
        }
        if u64::from(r.r2to) + u64::from(r.r2tl) > u64::from(len) {
            return Err(Fault::new(fes::DATA_TRANSFER_OUT_OF_RANGE, 0, "R2T beyond the write data").into());
        }
        cmd.r2t = Some(H2cJob { ttag: r.ttag, next: r.r2to, end: r.r2to + r.r2tl });
        self.h2c_jobs.push_back(r.cccid);
        Ok(())
    }

    /// Finishes a command: reports it now, or once its queued PDUs are sent.
    fn complete(&mut self, mut cqe: Cqe, on_done: &mut impl FnMut(Cqe)) -> Result<usize, Failure> {
        let cid = cqe.cid;
        let bad_cid = || Fault::new(fes::INVALID_HEADER_FIELD, CQE_CID_OFFSET, "response for a CID not in flight");
        let cmd = self.cmds.get_mut(usize::from(cid)).ok_or_else(bad_cid)?;
        if cmd.state != CmdState::Active {
            return Err(bad_cid().into());
        }
        if cmd.data_error && cqe.status().is_success() {
            // Like Linux: a data digest error fails the command, not the connection.
            cqe.status = Status::generic(generic::DATA_TRANSFER_ERROR).to_field();
        }
        if cmd.r2t.take().is_some() {
            // The controller answered before taking all the data.
            self.h2c_jobs.retain(|&c| c != cid);
        }
        if cmd.ring_refs == 0 {
            *cmd = HostCmd::FREE;
            on_done(cqe);
            Ok(1)
        } else {
            cmd.state = CmdState::Draining(cqe);
            Ok(0)
        }
    }

    /// Generates H2CData PDUs for pending R2Ts while the ring has room.
    fn fill_tx(&mut self) -> Result<(), Failure> {
        while self.h2c_in_ring < H2C_PDUS_IN_RING && !self.conn.tx.is_full() {
            let Some(&cid) = self.h2c_jobs.front() else { break };
            let cmd = &mut self.cmds[usize::from(cid)];
            let (Some(job), XferBuf::ToController { ptr, .. }) = (cmd.r2t, cmd.xfer) else {
                self.h2c_jobs.pop_front();
                continue;
            };
            let len = (job.end - job.next).min(self.maxh2cdata.max(tcp::MIN_MAXH2CDATA));
            let last = job.next + len == job.end;
            let hdr = DataPduHeader::new(
                PduType::H2CData,
                cid,
                job.ttag,
                job.next,
                len,
                if last { flags::LAST_PDU } else { 0 },
                &self.neg,
            );
            // SAFETY: on_r2t checked next + len <= end <= the buffer length.
            let data = unsafe { ptr.as_ptr().add(job.next as usize) }.cast_const();
            let ddgst = self.neg.ddgst.then(|| {
                // SAFETY: the buffer lent by submit is valid for its length until the completion.
                tcp::data_digest(unsafe { core::slice::from_raw_parts(data, len as usize) })
            });
            // SAFETY: submit's contract keeps the buffer valid and unwritten until
            // the completion, and `ring_refs` holds the completion back until this
            // entry has been sent.
            let pushed = unsafe { self.conn.tx.push(|b| hdr.encode(b), data, len, ddgst, TxDone::H2cData(cid)) }
                .map_err(|e| TransportError::Protocol(format!("encoding H2CData: {e}")))?;
            if !pushed {
                break;
            }
            cmd.ring_refs += 1;
            self.h2c_in_ring += 1;
            if last {
                cmd.r2t = None;
                self.h2c_jobs.pop_front();
            } else {
                cmd.r2t = Some(H2cJob { next: job.next + len, ..job });
            }
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Failure> {
        loop {
            self.fill_tx()?;
            let cmds = &mut self.cmds;
            let ready = &mut self.ready;
            let h2c_in_ring = &mut self.h2c_in_ring;
            self.conn.send(|done| {
                let cid = match done {
                    TxDone::Capsule(cid) => cid,
                    TxDone::H2cData(cid) => {
                        *h2c_in_ring -= 1;
                        cid
                    }
                    TxDone::Nothing | TxDone::Response(_) => return,
                };
                let Some(cmd) = cmds.get_mut(usize::from(cid)) else { return };
                cmd.ring_refs = cmd.ring_refs.saturating_sub(1);
                if let (0, CmdState::Draining(cqe)) = (cmd.ring_refs, cmd.state) {
                    *cmd = HostCmd::FREE;
                    ready.push_back(cqe);
                }
            })?;
            if !self.conn.tx.is_empty() || self.h2c_jobs.is_empty() {
                return Ok(());
            }
        }
    }
}

impl HostQpair for TcpHostQpair {
    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.conn.raw_fd())
    }

    fn quiescent(&self) -> bool {
        match self.state {
            // The socket becoming writable wakes us; the connect timeout is the engine's deadline.
            HostState::TcpConnecting => true,
            _ => self.conn.quiescent() && self.ready.is_empty() && self.h2c_jobs.is_empty(),
        }
    }

    fn poll_connect(&mut self, now_ns: u64) -> Result<ConnectProgress, TransportError> {
        match self.state {
            HostState::Ready => return Ok(ConnectProgress::Ready),
            HostState::Failed => return Err(already_failed()),
            HostState::TcpConnecting | HostState::AwaitIcResp => {}
        }
        let timeout = if self.connect_timeout_ns == 0 { u64::MAX } else { self.connect_timeout_ns };
        let deadline = *self.deadline_ns.get_or_insert(now_ns.saturating_add(timeout));
        if now_ns > deadline {
            self.state = HostState::Failed;
            return Err(TransportError::ConnectTimeout);
        }
        if self.state == HostState::TcpConnecting {
            match sys::poll_writable(&self.conn.sock) {
                Ok(false) => return Ok(ConnectProgress::Pending),
                Ok(true) => {}
                Err(e) => return Err(self.fail(io_error("poll", e).into())),
            }
            match self.conn.sock.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return Err(self.fail(io_error("connect", e).into())),
            }
            if let Err(e) = self.conn.sock.set_nodelay(true) {
                return Err(self.fail(io_error("setsockopt TCP_NODELAY", e).into()));
            }
            // HPDA 0: no alignment needed for C2H data; MAXR2T 0: one R2T per command.
            let icreq = IcReq::new(0, self.want_hdgst, self.want_ddgst, 0);
            let _ = self.conn.tx.push_header(|b| icreq.encode(b), TxDone::Nothing);
            self.state = HostState::AwaitIcResp;
        }
        let step = self.send().and_then(|()| self.pump(&mut |_| {}));
        if let Err(f) = step {
            return Err(self.fail(f));
        }
        Ok(if self.state == HostState::Ready { ConnectProgress::Ready } else { ConnectProgress::Pending })
    }

    unsafe fn submit(&mut self, sqe: &Sqe, data: XferBuf) -> Result<(), TransportError> {
        match self.state {
            HostState::Ready => {}
            HostState::Failed => return Err(already_failed()),
            HostState::TcpConnecting | HostState::AwaitIcResp => {
                return Err(TransportError::Protocol("submit before the connection is up".to_string()))
            }
        }
        let cid = sqe.cid;
        let Some(cmd) = self.cmds.get_mut(usize::from(cid)) else {
            return Err(TransportError::Protocol(format!("CID {cid} beyond the queue depth")));
        };
        if cmd.state != CmdState::Free {
            return Err(TransportError::Protocol(format!("CID {cid} already in flight")));
        }
        if self.conn.tx.is_full() {
            return Err(TransportError::QueueFull);
        }
        let mut sqe = *sqe;
        // Fabrics commands always use SGLs (NVMe-oF 1.1a §2.3).
        sqe.flags = (sqe.flags & 0x3F) | PSDT_SGL_MPTR_CONTIG;
        let (sgl, icd_ptr, icd_len) = match data {
            XferBuf::ToController { ptr, len } if len > 0 && len <= self.in_capsule_bytes => {
                (SglDescriptor::DataBlockOffset { offset: 0, len }, ptr.as_ptr().cast_const(), len)
            }
            _ => (SglDescriptor::TransportDataBlock { len: data.len() }, core::ptr::null(), 0),
        };
        sqe.dptr = sgl.to_bytes();
        let capsule = CapsuleCmd::new(sqe, icd_len, &self.neg);
        let ddgst = (self.neg.ddgst && icd_len > 0).then(|| {
            // SAFETY: the caller lends `data` for its length (this function's contract).
            tcp::data_digest(unsafe { core::slice::from_raw_parts(icd_ptr, icd_len as usize) })
        });
        // SAFETY: the caller keeps the buffer valid and untouched until the
        // completion, and `ring_refs` holds the completion back until the
        // capsule has been sent.
        let pushed = unsafe { self.conn.tx.push(|b| capsule.encode(b), icd_ptr, icd_len, ddgst, TxDone::Capsule(cid)) }
            .map_err(|e| TransportError::Protocol(format!("encoding capsule: {e}")))?;
        if !pushed {
            return Err(TransportError::QueueFull);
        }
        *cmd = HostCmd { state: CmdState::Active, xfer: data, in_capsule: icd_len > 0, ring_refs: 1, ..HostCmd::FREE };
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        match self.state {
            HostState::Failed => return Err(already_failed()),
            HostState::TcpConnecting => return Ok(()),
            HostState::AwaitIcResp | HostState::Ready => {}
        }
        self.send().map_err(|f| self.fail(f))
    }

    fn poll<F: FnMut(Cqe)>(&mut self, _now_ns: u64, mut on_done: F) -> Result<usize, TransportError> {
        match self.state {
            HostState::Ready => {}
            HostState::Failed => return Err(already_failed()),
            HostState::TcpConnecting | HostState::AwaitIcResp => return Ok(0),
        }
        let mut n = 0;
        while let Some(cqe) = self.ready.pop_front() {
            on_done(cqe);
            n += 1;
        }
        match self.pump(&mut on_done) {
            Ok(k) => Ok(n + k),
            Err(f) => Err(self.fail(f)),
        }
    }

    fn in_capsule_data_size(&self) -> u32 {
        self.in_capsule_bytes
    }

    fn set_in_capsule_data_size(&mut self, bytes: u32) {
        TcpHostQpair::set_in_capsule_data_size(self, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_literals_and_rejects_names_and_family_mismatch() {
        assert_eq!(socket_addr(Some(AdrFam::Ipv4), "127.0.0.1", "4420").unwrap(), "127.0.0.1:4420".parse().unwrap());
        assert!(socket_addr(Some(AdrFam::Ipv6), "::1", "4420").is_ok());
        assert!(matches!(socket_addr(None, "localhost", "4420"), Err(TransportError::BadAddress(_))));
        assert!(matches!(socket_addr(Some(AdrFam::Ipv4), "::1", "4420"), Err(TransportError::BadAddress(_))));
        assert!(matches!(socket_addr(None, "127.0.0.1", "99999"), Err(TransportError::BadAddress(_))));
    }

    #[test]
    fn connect_to_a_closed_port_fails_in_poll_connect_not_in_connect() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let trid = TransportId::tcp("127.0.0.1", &port.to_string(), "nqn.test");
        let opts =
            QpairOptions { qid: 1, queue_depth: 4, header_digest: false, data_digest: false, connect_timeout_ns: 0 };
        let mut q = TcpHostQpair::connect(&trid, &opts).unwrap();
        let mut outcome = Ok(ConnectProgress::Pending);
        for _ in 0..1000 {
            outcome = q.poll_connect(0);
            if !matches!(outcome, Ok(ConnectProgress::Pending)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(matches!(outcome, Err(TransportError::Io { .. }) | Err(TransportError::Closed)), "{outcome:?}");
        assert!(q.flush().is_err());
    }

    #[test]
    fn connect_times_out_without_an_icresp() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let trid = TransportId::tcp("127.0.0.1", &port.to_string(), "nqn.test");
        let opts = QpairOptions {
            qid: 0,
            queue_depth: 4,
            header_digest: false,
            data_digest: false,
            connect_timeout_ns: 1_000_000,
        };
        let mut q = TcpHostQpair::connect(&trid, &opts).unwrap();
        assert_eq!(q.in_capsule_data_size(), ADMIN_IN_CAPSULE_DATA_BYTES);
        assert!(matches!(q.poll_connect(0), Ok(ConnectProgress::Pending)));
        assert!(matches!(q.poll_connect(2_000_000), Err(TransportError::ConnectTimeout)));
    }

    #[test]
    fn rejects_trids_of_other_transports() {
        let mut trid = TransportId::tcp("127.0.0.1", "4420", "nqn.test");
        trid.trtype = TrType::Rdma;
        let opts =
            QpairOptions { qid: 1, queue_depth: 4, header_digest: false, data_digest: false, connect_timeout_ns: 0 };
        assert!(matches!(TcpHostQpair::connect(&trid, &opts), Err(TransportError::BadAddress(_))));
    }
}
