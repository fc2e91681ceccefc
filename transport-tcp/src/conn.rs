//! What host and target queue pairs share: the socket with its receive
//! stream and send ring, the failure types, and the best-effort termination
//! request sent when the peer breaks the protocol.

use std::io;
use std::net::TcpStream;

use engine::TransportError;
use protocol::tcp::{fatal_status, FatalStatus, PduType, TermReq};
use protocol::WireError;

use crate::rx::RxStream;
use crate::tx::{TxDone, TxRing};

/// Most `recv` calls one poll makes, so one busy connection cannot starve
/// the others on the same core.
pub(crate) const MAX_RECVS_PER_POLL: usize = 4;

/// A protocol violation by the peer: what the termination request reports
/// and why, for the error returned to the caller.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) status: FatalStatus,
    pub(crate) reason: &'static str,
    pub(crate) detail: Option<WireError>,
}

impl Fault {
    /// A fault with an explicit FES and FEI.
    pub(crate) fn new(fes: u16, fei: u32, reason: &'static str) -> Self {
        Fault { status: FatalStatus { fes, fei }, reason, detail: None }
    }

    /// A fault found by a `protocol::tcp` parser.
    pub(crate) fn wire(reason: &'static str, e: WireError) -> Self {
        Fault { status: fatal_status(&e), reason, detail: Some(e) }
    }
}

/// Why a queue pair operation failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The peer broke the protocol: terminate the connection.
    Fault(Fault),
    /// The connection failed or the peer terminated it.
    Transport(TransportError),
}

impl From<Fault> for Failure {
    fn from(f: Fault) -> Self {
        Failure::Fault(f)
    }
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        Failure::Transport(e)
    }
}

/// Maps a socket error, treating a reset or broken pipe as the peer closing.
pub(crate) fn io_error(op: &'static str, e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => {
            TransportError::Closed
        }
        _ => TransportError::Io { op, os_error: e },
    }
}

/// The error returned by every call on a queue pair that has already failed.
pub(crate) fn already_failed() -> TransportError {
    TransportError::Protocol("queue pair has already failed".to_string())
}

/// The socket, its receive stream and its send ring.
pub(crate) struct Conn {
    pub(crate) sock: TcpStream,
    pub(crate) rx: RxStream,
    pub(crate) tx: TxRing,
    /// The last `recv` found the socket empty: until its fd reports an event
    /// (epoll, edge-triggered) nothing new can arrive.
    drained: bool,
}

/// Result of one receive attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// Some bytes came in.
    Bytes,
    /// Nothing is waiting.
    Nothing,
}

impl Conn {
    pub(crate) fn new(sock: TcpStream, tx_entries: usize) -> Self {
        Conn { sock, rx: RxStream::new(), tx: TxRing::new(tx_entries), drained: false }
    }

    /// One `recv`. The peer closing is an error: a queue pair never closes
    /// half-way on purpose.
    pub(crate) fn receive(&mut self) -> Result<Received, TransportError> {
        loop {
            self.drained = false;
            return match self.rx.fill(&self.sock) {
                Ok(0) => Err(TransportError::Closed),
                Ok(_) => Ok(Received::Bytes),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.drained = true;
                    Ok(Received::Nothing)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(io_error("recv", e)),
            };
        }
    }

    /// Nothing to do until the socket reports an event: the last `recv` found
    /// it empty and nothing waits to be sent.
    pub(crate) fn quiescent(&self) -> bool {
        self.drained && self.tx.is_empty()
    }

    /// The socket's descriptor, for the reactor's epoll set.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.sock)
    }

    /// Sends what the ring holds, reporting each fully sent entry.
    pub(crate) fn send(&mut self, on_sent: impl FnMut(TxDone)) -> Result<(), TransportError> {
        self.tx.send(&self.sock, on_sent).map_err(|e| io_error("sendmsg", e))
    }

    /// Tells the peer why the connection ends (best effort: one attempt, no
    /// waiting) and returns the error for the caller.
    pub(crate) fn terminate(&mut self, pdu_type: PduType, fault: &Fault) -> TransportError {
        let mut quoted = [0u8; protocol::tcp::TERM_REQ_MAX_DATA];
        let offending = self.rx.offending_header();
        let n = offending.len().min(quoted.len());
        quoted[..n].copy_from_slice(&offending[..n]);
        self.tx.drop_unstarted();
        let term = TermReq::new(pdu_type, fault.status, n);
        if let Ok(true) = self.tx.push_header(|b| term.encode(&quoted[..n], b), TxDone::Nothing) {
            let _ = self.tx.send(&self.sock, |_| {});
        }
        let detail = fault.detail.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
        TransportError::Protocol(format!(
            "{}{} (sent termination request, fes {:#x}, fei {})",
            fault.reason, detail, fault.status.fes, fault.status.fei
        ))
    }
}
