//! Target side of NVMe/TCP: the listener and the controller end of a queue
//! pair.
//!
//! A queue pair first expects ICReq and answers ICResp (MAXH2CDATA = the IO
//! unit size, CPDA 0, the digests the host asked for). Then each command
//! capsule takes a slot; its write data arrives in the capsule or, after one
//! R2T for the whole transfer, in H2CData PDUs; then the command is ready for
//! [`TargetQpair::next_command`]. [`TargetQpair::complete`] queues the read
//! data as C2HData PDUs (at most the IO unit size each, LAST_PDU on the last)
//! and then the response capsule; the slot is free again once the response
//! has been sent. With `c2h_success` on and SQ flow control disabled by the
//! host, a plain successful read's last C2HData carries SUCCESS instead and
//! no response follows (NVMe/TCP 1.0 §3.6.2.8 C2HData, TP 8000).
//!
//! Each slot keeps a data buffer that grows to the largest transfer it has
//! seen and is reused after that, so steady-state IO allocates nothing.
//!
//! A command whose data phase cannot be done is not a connection error: it is
//! handed to the target layer with an empty data buffer (`data_mut(slot)` is
//! shorter than the SGL length) and [`TcpTargetQpair::data_fault`] says why;
//! the target layer answers it with an NVMe status. In-capsule data larger
//! than the in-capsule size is a connection error (FES 05h), as the spec
//! and SPDK have it.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use core::ptr::NonNull;

use engine::{BorrowedData, TargetCommand, TargetListener, TargetOptions, TargetQpair, TransportError};
use protocol::opcode::DataDirection;
use protocol::sgl::SglDescriptor;
use protocol::status::generic;
use protocol::tcp::{
    self, fes, flags, CapsuleCmd, CapsuleResp, DataPduHeader, IcReq, IcResp, Negotiated, PduLayout, PduType, R2tHeader,
    Role, TermReq,
};
use protocol::{Cqe, Sqe, Status};

use crate::conn::{already_failed, io_error, Conn, Failure, Fault, Received, MAX_RECVS_PER_POLL};
use crate::host::socket_addr;
use crate::rx::{RxEvent, Sink};
use crate::tx::TxDone;

/// Send ring entries beyond one per slot, so data PDUs batch well.
const EXTRA_TX_ENTRIES: usize = 32;

/// Creates [`TcpListener`]s.
#[derive(Debug, Clone, Default)]
pub struct TcpTargetTransport {
    _private: (),
}

impl TcpTargetTransport {
    /// A target transport; it holds no state of its own.
    pub fn new() -> Self {
        TcpTargetTransport { _private: () }
    }
}

impl engine::TargetTransport for TcpTargetTransport {
    type Listener = TcpListener;

    fn listen(&self, traddr: &str, trsvcid: &str, opts: &TargetOptions) -> Result<TcpListener, TransportError> {
        TcpListener::bind(traddr, trsvcid, opts)
    }
}

/// A non-blocking listening socket that accepts [`TcpTargetQpair`]s.
#[derive(Debug)]
pub struct TcpListener {
    inner: std::net::TcpListener,
    opts: TargetOptions,
}

impl TcpListener {
    /// Binds `traddr:trsvcid` (an IP literal and a port; port "0" picks a
    /// free one, see [`TcpListener::local_port`]). The standard library sets
    /// SO_REUSEADDR, so a restarted gateway rebinds at once.
    pub fn bind(traddr: &str, trsvcid: &str, opts: &TargetOptions) -> Result<Self, TransportError> {
        let addr = socket_addr(None, traddr, trsvcid)?;
        let inner = std::net::TcpListener::bind(addr).map_err(|e| io_error("bind", e))?;
        inner.set_nonblocking(true).map_err(|e| io_error("set O_NONBLOCK", e))?;
        // Accepted sockets inherit these from the listener, before their SYN-ACK.
        crate::sys::set_buffer_sizes(&inner, crate::sys::SOCKET_BUFFER_BYTES)
            .map_err(|e| io_error("setsockopt SO_RCVBUF", e))?;
        Ok(TcpListener { inner, opts: opts.clone() })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.inner.local_addr().map_err(|e| io_error("getsockname", e))
    }

    /// The bound port (the one the kernel picked when bound to port 0); 0 if
    /// the socket cannot say.
    pub fn local_port(&self) -> u16 {
        self.inner.local_addr().map(|a| a.port()).unwrap_or(0)
    }
}

impl TargetListener for TcpListener {
    type Qpair = TcpTargetQpair;

    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(&self.inner))
    }

    fn accept(&mut self) -> Result<Option<TcpTargetQpair>, TransportError> {
        loop {
            return match self.inner.accept() {
                Ok((sock, peer)) => {
                    sock.set_nonblocking(true).map_err(|e| io_error("set O_NONBLOCK", e))?;
                    sock.set_nodelay(true).map_err(|e| io_error("setsockopt TCP_NODELAY", e))?;
                    Ok(Some(TcpTargetQpair::new(sock, peer, &self.opts)))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                // A connection that died in the backlog is not the listener's failure.
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => continue,
                Err(e) => Err(io_error("accept", e)),
            };
        }
    }
}

/// Why a command was handed over with an empty data buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFault {
    /// The transfer is longer than the transport's max IO size.
    TooLarge,
    /// SGL1 is not a form NVMe/TCP uses, or disagrees with the capsule.
    BadSgl,
    /// The data failed its data digest.
    DigestError,
}

impl DataFault {
    /// The NVMe status the target layer should answer with.
    pub fn status(self) -> Status {
        match self {
            DataFault::TooLarge => Status::generic(generic::DATA_SGL_LENGTH_INVALID).with_dnr(),
            DataFault::BadSgl => Status::generic(generic::SGL_DESCRIPTOR_TYPE_INVALID).with_dnr(),
            // NVMe/TCP 1.0c §3.6.2.7: Transient Transport Error, worth a retry.
            DataFault::DigestError => Status::generic(TRANSIENT_TRANSPORT_ERROR),
        }
    }
}

/// Generic status Transient Transport Error (NVMe Base 2.0c Figure 100).
const TRANSIENT_TRANSPORT_ERROR: u8 = 0x22;

/// Connection state of a target queue pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetState {
    /// Waiting for ICReq.
    AwaitIcReq,
    /// Capsules may flow.
    Ready,
    /// Dead: every call fails.
    Failed,
}

/// Where one slot's command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Unused.
    Free,
    /// Its capsule (and in-capsule data) is arriving.
    Capsule,
    /// Waiting to send its R2T.
    R2tQueued,
    /// R2T sent; H2CData arriving.
    AwaitingH2c,
    /// Data in hand; in the ready queue.
    Ready,
    /// Handed to the target layer.
    Executing,
    /// Completed: its C2HData and response are being queued.
    Completing,
    /// Its response is in the send ring; free once that has been sent.
    ResponseQueued,
}

#[derive(Debug)]
struct Slot {
    state: SlotState,
    /// What the slot does once its capsule is fully in.
    after_capsule: SlotState,
    sqe: Sqe,
    /// Grows to the largest transfer seen; never shrinks.
    buf: Vec<u8>,
    /// Bytes of `buf` that belong to the command (0 after a fault).
    len: u32,
    fault: Option<DataFault>,
    h2c_received: u32,
    cqe: Cqe,
    c2h_sent: u32,
    c2h_len: u32,
    /// Read data sent from where it lives (zero-copy) instead of `buf`.
    borrowed: Option<BorrowedData>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            state: SlotState::Free,
            after_capsule: SlotState::Ready,
            sqe: Sqe::default(),
            buf: Vec::new(),
            len: 0,
            fault: None,
            h2c_received: 0,
            cqe: Cqe::default(),
            c2h_sent: 0,
            c2h_len: 0,
            borrowed: None,
        }
    }

    /// Sizes the buffer for `len` bytes; allocates only when `len` is a new maximum.
    fn take_len(&mut self, len: u32) {
        if self.buf.len() < len as usize {
            self.buf.resize(len as usize, 0);
        }
        self.len = len;
    }

    /// The read data at `off`, and the chunk of it from there to `off + len`.
    fn c2h_chunk(&mut self, off: u32, len: u32) -> (*const u8, &[u8]) {
        match &self.borrowed {
            Some(b) => {
                // SAFETY: complete_borrowed's contract: b.ptr is valid for b.len >= off + len bytes while
                // b.owner lives, and the slot holds b until it is Free, after this chunk is sent.
                let chunk = unsafe { core::slice::from_raw_parts(b.ptr.as_ptr().add(off as usize), len as usize) };
                (chunk.as_ptr(), chunk)
            }
            None => {
                let p = self.data_ptr(off).as_ptr().cast_const();
                (p, &self.buf[off as usize..(off + len) as usize])
            }
        }
    }

    fn data_ptr(&mut self, off: u32) -> NonNull<u8> {
        let p = self.buf.as_mut_ptr();
        // SAFETY: callers pass off <= self.len <= buf.len(), so the result is
        // in bounds (or one past the end); a Vec pointer is never null.
        unsafe { NonNull::new_unchecked(p.add(off as usize)) }
    }

    fn fail_data(&mut self, fault: DataFault) {
        self.fault = Some(fault);
        self.len = 0;
    }
}

/// Target side of one NVMe/TCP queue pair.
pub struct TcpTargetQpair {
    conn: Conn,
    state: TargetState,
    peer: String,
    opts: TargetOptions,
    /// MAXH2CDATA offered, also the largest C2HData this side sends.
    io_unit_bytes: u32,
    neg: Negotiated,
    slots: Box<[Slot]>,
    free_slots: Vec<u16>,
    /// Slots whose command is ready, in arrival order.
    ready: VecDeque<u16>,
    /// Slots with PDUs to generate (R2T, or C2HData then response).
    jobs: VecDeque<u16>,
    /// The slot whose capsule or H2CData PDU is arriving.
    cur: Option<u16>,
    /// The host disabled SQ flow control at Connect: with `c2h_success` on,
    /// a successful read ends with C2HData SUCCESS and no response capsule.
    sq_flow_control_disabled: bool,
}

// SAFETY: the raw pointers inside (send ring entries, the receive sink) point
// only into this queue pair's own slot buffers, which move with it; nothing is
// shared with another thread.
unsafe impl Send for TcpTargetQpair {}

impl TcpTargetQpair {
    fn new(sock: std::net::TcpStream, peer: SocketAddr, opts: &TargetOptions) -> Self {
        let depth = usize::from(opts.max_queue_depth.max(1));
        TcpTargetQpair {
            conn: Conn::new(sock, depth + EXTRA_TX_ENTRIES),
            state: TargetState::AwaitIcReq,
            peer: peer.to_string(),
            opts: opts.clone(),
            io_unit_bytes: opts.io_unit_size.max(tcp::MIN_MAXH2CDATA),
            neg: Negotiated::initial(),
            slots: (0..depth).map(|_| Slot::new()).collect(),
            free_slots: (0..depth as u16).rev().collect(),
            ready: VecDeque::with_capacity(depth),
            jobs: VecDeque::with_capacity(depth),
            cur: None,
            sq_flow_control_disabled: false,
        }
    }

    /// Why `slot`'s command came with an empty data buffer, if it did.
    pub fn data_fault(&self, slot: u16) -> Option<DataFault> {
        self.slots.get(usize::from(slot)).and_then(|s| s.fault)
    }

    /// The parameters ICReq settled (no digests before that).
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    fn fail(&mut self, f: Failure) -> TransportError {
        self.state = TargetState::Failed;
        match f {
            Failure::Fault(fault) => self.conn.terminate(PduType::C2HTermReq, &fault),
            Failure::Transport(e) => e,
        }
    }

    fn pump(&mut self) -> Result<usize, Failure> {
        let mut pdus = 0;
        let mut recvs = 0;
        loop {
            let ev =
                self.conn.rx.next(&self.neg, Role::Controller).map_err(|e| Fault::wire("invalid PDU header", e))?;
            match ev {
                RxEvent::NeedMore => {
                    if recvs == MAX_RECVS_PER_POLL || self.conn.receive()? == Received::Nothing {
                        return Ok(pdus);
                    }
                    recvs += 1;
                }
                RxEvent::Header(layout) => self.on_header(&layout)?,
                RxEvent::PduDone { data_digest_ok } => {
                    self.on_pdu_done(data_digest_ok)?;
                    pdus += 1;
                }
            }
        }
    }

    fn on_header(&mut self, layout: &PduLayout) -> Result<(), Failure> {
        let sink = match (self.state, layout.pdu_type) {
            (_, PduType::H2CTermReq) | (TargetState::AwaitIcReq, PduType::IcReq) => Sink::Discard,
            (TargetState::Ready, PduType::CapsuleCmd) => self.capsule_header(layout)?,
            (TargetState::Ready, PduType::H2CData) => self.h2c_header(layout)?,
            _ => return Err(Fault::new(fes::PDU_SEQUENCE_ERROR, 0, "PDU not allowed in this connection state").into()),
        };
        // SAFETY: a Mem sink points into the current slot's buffer, sized for
        // the data before the sink was made; the buffer is only resized when a
        // Free slot takes a new command, never while this PDU is in progress.
        unsafe { self.conn.rx.set_sink(sink) };
        Ok(())
    }

    fn capsule_header(&mut self, layout: &PduLayout) -> Result<Sink, Failure> {
        let cmd = CapsuleCmd::parse(self.conn.rx.header()).map_err(|e| Fault::wire("bad command capsule", e))?;
        let Some(idx) = self.free_slots.pop() else {
            return Err(Fault::new(fes::PDU_SEQUENCE_ERROR, 0, "more commands than the queue depth").into());
        };
        self.cur = Some(idx);
        let slot = &mut self.slots[usize::from(idx)];
        slot.state = SlotState::Capsule;
        slot.sqe = cmd.sqe;
        slot.fault = None;
        slot.len = 0;
        slot.h2c_received = 0;
        slot.after_capsule = SlotState::Ready;
        let in_capsule = layout.data_len;
        let sink = match SglDescriptor::parse(&cmd.sqe.dptr) {
            Ok(SglDescriptor::DataBlockOffset { offset, len }) => {
                if len > self.opts.in_capsule_data_size {
                    return Err(Fault::new(
                        fes::DATA_TRANSFER_LIMIT_EXCEEDED,
                        0,
                        "in-capsule data beyond the in-capsule data size",
                    )
                    .into());
                }
                if offset != 0 || len as usize != in_capsule {
                    slot.fail_data(DataFault::BadSgl);
                    Sink::Discard
                } else {
                    slot.take_len(len);
                    Sink::Mem { ptr: slot.data_ptr(0), len: in_capsule }
                }
            }
            Ok(SglDescriptor::TransportDataBlock { len }) if in_capsule == 0 => {
                if len > self.opts.max_io_size {
                    slot.fail_data(DataFault::TooLarge);
                } else {
                    slot.take_len(len);
                    if len > 0 && slot.sqe.data_direction() == DataDirection::HostToController {
                        slot.after_capsule = SlotState::R2tQueued;
                    }
                }
                Sink::Discard
            }
            _ => {
                slot.fail_data(DataFault::BadSgl);
                Sink::Discard
            }
        };
        Ok(sink)
    }

    fn h2c_header(&mut self, layout: &PduLayout) -> Result<Sink, Failure> {
        let h = DataPduHeader::parse(self.conn.rx.header()).map_err(|e| Fault::wire("bad H2CData header", e))?;
        h.check_datal(layout).map_err(|e| Fault::wire("H2CData DATAL disagrees with PLEN", e))?;
        let bad_ttag = || Fault::new(fes::INVALID_HEADER_FIELD, 10, "H2CData with an unknown transfer tag");
        let slot = self.slots.get_mut(usize::from(h.ttag)).ok_or_else(bad_ttag)?;
        if slot.state != SlotState::AwaitingH2c {
            return Err(bad_ttag().into());
        }
        if h.cccid != slot.sqe.cid {
            return Err(Fault::new(fes::INVALID_HEADER_FIELD, 8, "H2CData CCCID does not match its R2T").into());
        }
        if u64::from(h.datao) + u64::from(h.datal) > u64::from(slot.len) {
            return Err(Fault::new(fes::DATA_TRANSFER_OUT_OF_RANGE, 0, "H2CData beyond the R2T").into());
        }
        if h.datao != slot.h2c_received {
            return Err(Fault::new(fes::INVALID_HEADER_FIELD, 12, "H2CData out of order").into());
        }
        // A data PDU carries data (NVMe/TCP 1.0c §3.6.2.6: DATAL is the data's
        // length); an empty one could never complete the transfer.
        if h.datal == 0 {
            return Err(Fault::new(fes::INVALID_HEADER_FIELD, 16, "H2CData with no data (DATAL 0)").into());
        }
        // LAST_PDU ends the R2T's transfer (§3.6.2.6): set before its last
        // byte, the host says it sends no more, and the command could never
        // complete. (A last PDU without the flag is taken: the length says enough.)
        if h.last_pdu() && h.datao + h.datal != slot.len {
            return Err(Fault::new(
                fes::INVALID_HEADER_FIELD,
                1,
                "H2CData with LAST_PDU before the end of the R2T's data",
            )
            .into());
        }
        self.cur = Some(h.ttag);
        Ok(Sink::Mem { ptr: slot.data_ptr(h.datao), len: h.datal as usize })
    }

    fn on_pdu_done(&mut self, data_digest_ok: bool) -> Result<(), Failure> {
        let Some(layout) = self.conn.rx.layout() else { return Ok(()) };
        match layout.pdu_type {
            PduType::IcReq => self.on_icreq(),
            PduType::H2CTermReq => {
                let fes = TermReq::parse(self.conn.rx.header()).map(|t| t.fes).unwrap_or(0);
                Err(TransportError::Terminated { fes }.into())
            }
            PduType::CapsuleCmd => {
                let Some(idx) = self.cur.take() else { return Ok(()) };
                let slot = &mut self.slots[usize::from(idx)];
                if !data_digest_ok {
                    slot.fail_data(DataFault::DigestError);
                    slot.after_capsule = SlotState::Ready;
                }
                slot.state = slot.after_capsule;
                if slot.state == SlotState::R2tQueued {
                    self.jobs.push_back(idx);
                } else {
                    self.ready.push_back(idx);
                }
                Ok(())
            }
            PduType::H2CData => {
                let Some(idx) = self.cur.take() else { return Ok(()) };
                let slot = &mut self.slots[usize::from(idx)];
                slot.h2c_received += layout.data_len as u32;
                if !data_digest_ok {
                    slot.fault = Some(DataFault::DigestError);
                }
                if slot.h2c_received == slot.len {
                    if slot.fault.is_some() {
                        slot.len = 0;
                    }
                    slot.state = SlotState::Ready;
                    self.ready.push_back(idx);
                }
                Ok(())
            }
            _ => Err(Fault::new(fes::INVALID_HEADER_FIELD, 0, "PDU type a controller does not receive").into()),
        }
    }

    fn on_icreq(&mut self) -> Result<(), Failure> {
        let req = IcReq::parse(self.conn.rx.header()).map_err(|e| Fault::wire("bad ICReq", e))?;
        self.neg = Negotiated {
            hdgst: req.hdgst(),
            ddgst: req.ddgst(),
            max_data_pdu_bytes: self.io_unit_bytes,
            max_in_capsule_bytes: self.opts.in_capsule_data_size,
            rx_pda: 0,
            tx_pda: req.hpda,
        };
        let resp = IcResp::new(0, req.hdgst(), req.ddgst(), self.io_unit_bytes);
        self.conn
            .tx
            .push_header(|b| resp.encode(b), TxDone::Nothing)
            .map_err(|e| TransportError::Protocol(format!("encoding ICResp: {e}")))?;
        self.state = TargetState::Ready;
        Ok(())
    }

    /// Generates R2T, C2HData and response PDUs while the ring has room.
    fn fill_tx(&mut self) -> Result<(), Failure> {
        let encode_err = |e| TransportError::Protocol(format!("encoding PDU: {e}"));
        while !self.conn.tx.is_full() {
            let Some(&idx) = self.jobs.front() else { break };
            let slot = &mut self.slots[usize::from(idx)];
            match slot.state {
                SlotState::R2tQueued => {
                    // One R2T for the whole transfer; the host splits it by MAXH2CDATA.
                    let r2t = R2tHeader::new(slot.sqe.cid, idx, 0, slot.len, &self.neg);
                    self.conn.tx.push_header(|b| r2t.encode(b), TxDone::Nothing).map_err(encode_err)?;
                    slot.state = SlotState::AwaitingH2c;
                    slot.h2c_received = 0;
                    self.jobs.pop_front();
                }
                SlotState::Completing if slot.c2h_sent < slot.c2h_len => {
                    let off = slot.c2h_sent;
                    let len = (slot.c2h_len - off).min(self.io_unit_bytes);
                    let last = off + len == slot.c2h_len;
                    // SUCCESS says the command completed with a CQE of all zeros but CID and SQHD, so it goes
                    // only on a plain success; TP 8000 allows it only where the host needs no SQHD.
                    let success_without_response = last
                        && self.opts.c2h_success
                        && self.sq_flow_control_disabled
                        && slot.cqe.status().is_success()
                        && slot.cqe.dw0 == 0
                        && slot.cqe.dw1 == 0;
                    let pdu_flags = match (last, success_without_response) {
                        (true, true) => flags::LAST_PDU | flags::SUCCESS,
                        (true, false) => flags::LAST_PDU,
                        (false, _) => 0,
                    };
                    let hdr = DataPduHeader::new(PduType::C2HData, slot.sqe.cid, 0, off, len, pdu_flags, &self.neg);
                    let (data, chunk) = slot.c2h_chunk(off, len);
                    let ddgst = self.neg.ddgst.then(|| tcp::data_digest(chunk));
                    // The last PDU frees the slot when it is the command's completion.
                    let done = if success_without_response { TxDone::Response(idx) } else { TxDone::Nothing };
                    // SAFETY: the slot's buffer is not resized nor handed out (data_mut gives nothing while
                    // Completing) until the slot is Free, after its last PDU (the response, queued behind this
                    // entry, or this entry itself with SUCCESS) is sent.
                    unsafe { self.conn.tx.push(|b| hdr.encode(b), data, len, ddgst, done) }.map_err(encode_err)?;
                    slot.c2h_sent += len;
                    if success_without_response {
                        slot.state = SlotState::ResponseQueued;
                        self.jobs.pop_front();
                    }
                }
                SlotState::Completing => {
                    let resp = CapsuleResp::new(slot.cqe, &self.neg);
                    self.conn.tx.push_header(|b| resp.encode(b), TxDone::Response(idx)).map_err(encode_err)?;
                    slot.state = SlotState::ResponseQueued;
                    self.jobs.pop_front();
                }
                _ => {
                    self.jobs.pop_front();
                }
            }
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Failure> {
        loop {
            self.fill_tx()?;
            let slots = &mut self.slots;
            let free_slots = &mut self.free_slots;
            self.conn.send(|done| {
                if let TxDone::Response(idx) = done {
                    if let Some(slot) = slots.get_mut(usize::from(idx)) {
                        slot.state = SlotState::Free;
                        // Its data is on the wire: the borrowed memory may go.
                        slot.borrowed = None;
                        free_slots.push(idx);
                    }
                }
            })?;
            if !self.conn.tx.is_empty() || self.jobs.is_empty() {
                return Ok(());
            }
        }
    }
}

impl TargetQpair for TcpTargetQpair {
    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.conn.raw_fd())
    }

    fn quiescent(&self) -> bool {
        self.conn.quiescent() && self.ready.is_empty() && self.jobs.is_empty()
    }

    fn data_fault_status(&self, slot: u16) -> Option<Status> {
        self.data_fault(slot).map(DataFault::status)
    }

    fn poll(&mut self, _now_ns: u64) -> Result<usize, TransportError> {
        if self.state == TargetState::Failed {
            return Err(already_failed());
        }
        self.pump().map_err(|f| self.fail(f))
    }

    fn next_command(&mut self) -> Option<TargetCommand> {
        let idx = self.ready.pop_front()?;
        let slot = &mut self.slots[usize::from(idx)];
        slot.state = SlotState::Executing;
        Some(TargetCommand { slot: idx, sqe: slot.sqe })
    }

    fn data_mut(&mut self, slot: u16) -> &mut [u8] {
        match self.slots.get_mut(usize::from(slot)) {
            Some(s) if s.state == SlotState::Executing => &mut s.buf[..s.len as usize],
            _ => &mut [],
        }
    }

    fn complete(&mut self, slot: u16, cqe: &Cqe, data_len: u32) {
        let Some(s) = self.slots.get_mut(usize::from(slot)) else { return };
        if s.state != SlotState::Executing {
            return;
        }
        // The response must name the command's CID whatever the caller filled in.
        s.cqe = Cqe { cid: s.sqe.cid, ..*cqe };
        let is_write = s.sqe.data_direction() == DataDirection::HostToController;
        s.c2h_len = if is_write { 0 } else { data_len.min(s.len) };
        s.c2h_sent = 0;
        s.state = SlotState::Completing;
        self.jobs.push_back(slot);
    }

    unsafe fn complete_borrowed(&mut self, slot: u16, cqe: &Cqe, data: BorrowedData) {
        let Some(s) = self.slots.get_mut(usize::from(slot)) else { return };
        if s.state != SlotState::Executing || s.sqe.data_direction() != DataDirection::ControllerToHost {
            return;
        }
        let len = data.len.min(s.len);
        s.borrowed = Some(data);
        self.complete(slot, cqe, len);
    }

    fn retire(&mut self, slot: u16) {
        let Some(s) = self.slots.get_mut(usize::from(slot)) else { return };
        if s.state != SlotState::Executing {
            return;
        }
        s.state = SlotState::Free;
        s.borrowed = None;
        self.free_slots.push(slot);
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        if self.state == TargetState::Failed {
            return Err(already_failed());
        }
        self.send().map_err(|f| self.fail(f))
    }

    fn peer_addr(&self) -> String {
        self.peer.clone()
    }

    fn set_sq_flow_control_disabled(&mut self, disabled: bool) {
        self.sq_flow_control_disabled = disabled;
    }
}
