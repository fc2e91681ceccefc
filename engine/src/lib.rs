//! The polled-mode IO engine: one pinned reactor per core, timers, lock-free
//! rings between cores, IO buffers, the transport interface, and the NVMe-oF
//! host controller (connect, identify, keep-alive, IO queues on every core).
//!
//! It knows no fabric: transports (`transport-tcp`, later `transport-rdma`)
//! implement [`transport`]'s traits and are plugged in by type. Multipath and
//! the gateway live above it.
#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod buf;
pub mod clock;
pub mod host;
pub mod idle;
pub mod reactor;
pub mod ring;
mod sys;
pub mod transport;
pub mod trid;
pub mod wake;

pub use api::{format_uuid, Controller, ControllerOptions, Engine, EngineError, EngineOptions, TimeoutAction};
pub use buf::{BufPool, IoBuf};
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use host::{
    AttachRequest, ControllerData, CoreJob, HostCore, HostIdentity, IoCompletion, IoContext, IoOp, JobStatus,
    Namespace, NamespaceData, SubmitError, SubmitErrorKind,
};
pub use idle::{IdleDecision, IdleGovernor, IdlePolicy};
pub use reactor::{parse_core_mask, Poller, Reactor, ReactorCtx, ReactorSender, ReactorSet, ReactorStats};
pub use ring::{IoChannel, RingIo, RingJob};
pub use transport::{
    BorrowedData, ConnectProgress, HostQpair, HostTransport, QpairOptions, TargetCommand, TargetListener,
    TargetOptions, TargetQpair, TargetTransport, TransportError, XferBuf,
};
pub use trid::{AdrFam, TrType, TransportId, TridError};
pub use wake::{WakeSet, Waker};
pub mod sim;

/// True when a command moves data controller-to-host.
pub(crate) fn opcode_direction_is_read(sqe: &protocol::Sqe) -> bool {
    sqe.data_direction() == protocol::opcode::DataDirection::ControllerToHost
}
