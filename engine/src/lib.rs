//! The polled-mode IO engine: one pinned reactor per core, timers, lock-free
//! rings between cores, request and buffer pools, the transport interface, and
//! the NVMe-oF host controller (connect, identify, keep-alive, IO queues).
//!
//! It does not know any fabric: transports (`transport-tcp`, `transport-rdma`)
//! implement [`transport`]'s traits. Multipath lives above it.
#![warn(missing_docs, unreachable_pub)]

pub mod transport;
pub mod trid;

pub use transport::{
    ConnectProgress, HostQpair, HostTransport, QpairOptions, TargetCommand, TargetListener, TargetOptions, TargetQpair,
    TargetTransport, TransportError, XferBuf,
};
pub use trid::{AdrFam, TrType, TransportId, TridError};
