//! The transport interface: capsules out, capsules in, data moved by the
//! transport.
//!
//! A transport (TCP today, RDMA next) implements these traits; the engine and
//! the target call them with static dispatch (generics), never through `dyn`
//! per IO. The interface is shaped by what both fabrics share:
//!
//! * the host hands over a command capsule (an [`Sqe`]) and, for commands with
//!   data, an [`XferBuf`] that the transport owns until the completion comes
//!   back. How the data moves is the transport's business: in-capsule data or
//!   R2T/H2CData for writes and C2HData for reads over TCP; keyed SGLs with
//!   RDMA READ/WRITE over RDMA;
//! * the target receives a command whose write data is already in hand (the
//!   transport fetched it with R2T or RDMA READ), fills the data of a read into
//!   the transport's buffer, and completes it with a [`Cqe`]; the transport
//!   sends the data (C2HData or RDMA WRITE) and then the response capsule.
//!
//! Everything is non-blocking: connect, send and receive make what progress
//! they can and return.

use core::ptr::NonNull;
use std::os::fd::RawFd;
use std::sync::Arc;

use protocol::{Cqe, Sqe};

use crate::trid::TransportId;

/// A transport failure. The queue pair it came from is dead; its outstanding
/// commands are failed by the caller with a host path error.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A socket or verbs call failed.
    // The OS error is in the message and not a `source`, so that a report
    // printing the error chain does not say it twice.
    #[error("{op}: {os_error}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        os_error: std::io::Error,
    },
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// The peer sent bytes that are not a valid PDU, or a PDU out of order.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer terminated the connection with a termination request.
    #[error("terminated by peer: fatal error status {fes:#x}")]
    Terminated {
        /// Fatal error status (NVMe/TCP 1.0c §3.6.2.9).
        fes: u16,
    },
    /// Connection setup took longer than allowed.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The transport ID names something this transport cannot reach.
    #[error("bad address: {0}")]
    BadAddress(String),
    /// No free command slot or send space: retry after the next poll.
    #[error("queue full")]
    QueueFull,
}

/// Options for one queue pair, host side.
#[derive(Debug, Clone)]
pub struct QpairOptions {
    /// Queue ID: 0 for the admin queue.
    pub qid: u16,
    /// Number of command slots (SQ entries); Connect carries this minus one.
    pub queue_depth: u16,
    /// Ask for the NVMe/TCP header digest.
    pub header_digest: bool,
    /// Ask for the NVMe/TCP data digest.
    pub data_digest: bool,
    /// Give up connecting after this long.
    pub connect_timeout_ns: u64,
}

/// The data buffer of one command, lent to the transport while the command is
/// in flight.
///
/// This is a raw view, not a borrow: the engine's request slot owns the
/// [`crate::IoBuf`] and keeps it alive and untouched until the completion.
/// See [`HostQpair::submit`] for the contract.
#[derive(Debug, Clone, Copy)]
pub enum XferBuf {
    /// The command moves no data.
    None,
    /// Host to controller: the transport reads `len` bytes from `ptr`.
    ToController {
        /// Start of the data.
        ptr: NonNull<u8>,
        /// Length in bytes.
        len: u32,
    },
    /// Controller to host: the transport writes up to `len` bytes at `ptr`.
    FromController {
        /// Start of the buffer.
        ptr: NonNull<u8>,
        /// Length in bytes.
        len: u32,
    },
}

impl XferBuf {
    /// Length of the data phase in bytes.
    pub fn len(&self) -> u32 {
        match *self {
            XferBuf::None => 0,
            XferBuf::ToController { len, .. } | XferBuf::FromController { len, .. } => len,
        }
    }

    /// True when there is no data phase.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How far a queue pair's connection setup has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectProgress {
    /// Still connecting (TCP handshake, ICReq/ICResp, RDMA CM exchange).
    Pending,
    /// The transport-level connection is up: the Fabrics Connect command may be sent.
    Ready,
}

/// Host side of one queue pair.
pub trait HostQpair {
    /// Makes progress on connection setup; call from the poll loop until `Ready`.
    fn poll_connect(&mut self, now_ns: u64) -> Result<ConnectProgress, TransportError>;

    /// Queues a command capsule. Nothing goes on the wire before [`HostQpair::flush`].
    ///
    /// # Safety
    /// The memory `data` points at must stay valid, and must not be read (for
    /// `FromController`) or written (for either) by anyone else, until
    /// [`HostQpair::poll`] reports the completion for `sqe.cid`, or until the
    /// queue pair returns an error or is dropped.
    unsafe fn submit(&mut self, sqe: &Sqe, data: XferBuf) -> Result<(), TransportError>;

    /// Sends what was queued, as much as the fabric takes now, batching many
    /// PDUs per system call. What did not fit stays queued for the next call.
    fn flush(&mut self) -> Result<(), TransportError>;

    /// Receives what has arrived and moves data phases along; calls `on_done`
    /// for every finished command (read data has landed by then). Returns the
    /// number of completions.
    fn poll<F: FnMut(Cqe)>(&mut self, now_ns: u64, on_done: F) -> Result<usize, TransportError>;

    /// Largest data length that goes inside the command capsule.
    fn in_capsule_data_size(&self) -> u32;

    /// Caps in-capsule data at what the controller accepts (from IOCCSZ in
    /// Identify Controller); larger writes go by the transport's data phase.
    fn set_in_capsule_data_size(&mut self, bytes: u32) {
        let _ = bytes;
    }

    /// The descriptor that becomes ready (epoll, edge-triggered) when this
    /// queue pair has something new: data in, room to send, the peer gone.
    /// `None` (the default): the transport has no such descriptor, and its
    /// reactor never sleeps while it exists.
    fn wake_fd(&self) -> Option<RawFd> {
        None
    }

    /// Nothing can happen on this queue pair before its [`HostQpair::wake_fd`]
    /// reports an event: everything received was consumed and nothing waits
    /// to be sent. The default, false, keeps its reactor awake.
    fn quiescent(&self) -> bool {
        false
    }
}

/// Creates host queue pairs.
pub trait HostTransport {
    /// The queue pair type.
    type Qpair: HostQpair;

    /// Starts a non-blocking connection to `trid`; drive it with
    /// [`HostQpair::poll_connect`].
    fn connect(&mut self, trid: &TransportId, opts: &QpairOptions) -> Result<Self::Qpair, TransportError>;
}

/// Options a target transport is created with (`nvmf_create_transport`).
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// Largest data length accepted inside a command capsule (`-c`).
    pub in_capsule_data_size: u32,
    /// Largest transfer of one command (`-i`); MDTS is derived from it.
    pub max_io_size: u32,
    /// Largest data in one H2CData PDU / RDMA operation (`-u`).
    pub io_unit_size: u32,
    /// Most command slots per queue pair (`-q`).
    pub max_queue_depth: u16,
    /// Most queue pairs per controller (`-m`).
    pub max_qpairs_per_ctrlr: u16,
    /// NVMe/TCP: a successful read's last C2HData PDU carries the SUCCESS
    /// flag and no response capsule follows (`nvmf_create_transport
    /// c2h_success`, SPDK's default on). Used only on queues whose host
    /// disabled SQ flow control at Connect, as TP 8000 ties the two.
    pub c2h_success: bool,
}

impl Default for TargetOptions {
    fn default() -> Self {
        // SPDK's TCP defaults, except the larger max IO size so that 1 MiB
        // commands go without splitting.
        TargetOptions {
            in_capsule_data_size: 4096,
            max_io_size: 1 << 20,
            io_unit_size: 131_072,
            max_queue_depth: 128,
            max_qpairs_per_ctrlr: 128,
            c2h_success: true,
        }
    }
}

/// Read data a transport may send straight from where it lives (a malloc
/// bdev's memory), instead of a copy in its own buffer: SPDK's zero-copy
/// read. `owner` keeps the memory alive until the data is on the wire.
pub struct BorrowedData {
    /// Start of the data.
    pub ptr: NonNull<u8>,
    /// Length in bytes.
    pub len: u32,
    /// Whatever owns the memory; held until the transport is done with it.
    pub owner: Arc<dyn Send + Sync>,
}

// SAFETY: the pointer is into memory owned by `owner`, which is Send + Sync;
// holders only read through it.
unsafe impl Send for BorrowedData {}

impl core::fmt::Debug for BorrowedData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BorrowedData").field("len", &self.len).finish_non_exhaustive()
    }
}

/// A command whose data (for writes) is in hand, ready to execute.
#[derive(Debug, Clone, Copy)]
pub struct TargetCommand {
    /// The transport's handle for this command; pass it back to
    /// [`TargetQpair::data_mut`] and [`TargetQpair::complete`].
    pub slot: u16,
    /// The command capsule.
    pub sqe: Sqe,
}

/// Target side of one queue pair.
pub trait TargetQpair {
    /// Receives what has arrived, moves data phases along (R2T/H2CData, RDMA
    /// READ), and queues commands that are ready. Returns how many PDUs or
    /// completions were processed, so the caller can tell idle from busy.
    fn poll(&mut self, now_ns: u64) -> Result<usize, TransportError>;

    /// The next command ready to execute, in arrival order.
    fn next_command(&mut self) -> Option<TargetCommand>;

    /// The data buffer of a command: for a write, the data received; for a
    /// read, where to put the data (its length is the command's transfer length).
    fn data_mut(&mut self, slot: u16) -> &mut [u8];

    /// Completes a command: for a successful read, the first `data_len` bytes
    /// of its buffer go to the host first; then the response capsule. Frees the slot.
    fn complete(&mut self, slot: u16, cqe: &Cqe, data_len: u32);

    /// Frees a command's slot without sending anything: the command is
    /// retired, not completed. For the AERs a controller drops on shutdown or
    /// reset, which the host has already forgotten (it may reuse their CIDs).
    fn retire(&mut self, slot: u16);

    /// Completes a successful read whose data is sent from `data` rather than
    /// from the command's buffer. The default copies it into the buffer.
    ///
    /// # Safety
    /// `data.ptr` must be valid for reads of `data.len` bytes for as long as
    /// `data.owner` is alive.
    unsafe fn complete_borrowed(&mut self, slot: u16, cqe: &Cqe, data: BorrowedData) {
        let buf = self.data_mut(slot);
        let n = buf.len().min(data.len as usize);
        // SAFETY: the caller guarantees data.ptr is valid for data.len >= n bytes while owner lives (it does
        // here); buf is the transport's own buffer, a different allocation.
        unsafe { core::ptr::copy_nonoverlapping(data.ptr.as_ptr(), buf.as_mut_ptr(), n) };
        self.complete(slot, cqe, n as u32);
    }

    /// Sends what was queued, as [`HostQpair::flush`].
    fn flush(&mut self) -> Result<(), TransportError>;

    /// The peer's address, for logs and `nvmf_subsystem_get_qpairs`.
    fn peer_addr(&self) -> String;

    /// The host disabled SQ flow control at Connect (CATTR bit 2, NVMe-oF
    /// §3.3.1): it does not need SQHD, so completions may go without a
    /// response capsule where the transport allows (NVMe/TCP C2HData SUCCESS).
    fn set_sq_flow_control_disabled(&mut self, _disabled: bool) {}

    /// When the command in `slot` came with less data than its SGL names
    /// (see [`TargetQpair::data_mut`]): the status the transport's rules give
    /// it (a data block form it does not carry is SGL Descriptor Type
    /// Invalid, a digest error is worth a retry). `None`: the transport has
    /// no rule, and the target layer answers Transient Transport Error.
    fn data_fault_status(&self, _slot: u16) -> Option<protocol::Status> {
        None
    }

    /// As [`HostQpair::wake_fd`].
    fn wake_fd(&self) -> Option<RawFd> {
        None
    }

    /// As [`HostQpair::quiescent`], and no command waits for [`TargetQpair::next_command`].
    fn quiescent(&self) -> bool {
        false
    }
}

/// Accepts target queue pairs on one listen address.
pub trait TargetListener {
    /// The queue pair type.
    type Qpair: TargetQpair + Send + 'static;

    /// Accepts one pending connection, if any; never blocks.
    fn accept(&mut self) -> Result<Option<Self::Qpair>, TransportError>;

    /// The descriptor that becomes ready when a connection waits to be
    /// accepted (`None`: accept is tried every turn and the reactor never sleeps).
    fn wake_fd(&self) -> Option<RawFd> {
        None
    }
}

/// Creates listeners.
pub trait TargetTransport {
    /// The listener type.
    type Listener: TargetListener + Send + 'static;

    /// Listens on `traddr:trsvcid`.
    fn listen(&self, traddr: &str, trsvcid: &str, opts: &TargetOptions) -> Result<Self::Listener, TransportError>;
}
