//! NVMe/TCP (NVMe/TCP Transport 1.0c), host and target side, on non-blocking
//! TCP sockets with TCP_NODELAY.
//!
//! Owns: the connection (connect/accept, ICReq/ICResp), moving PDUs between
//! sockets and command buffers (capsules, R2T, H2CData, C2HData, digests),
//! and terminating connections whose peer breaks the protocol. It implements
//! `engine::transport`'s traits: [`TcpHostTransport`] / [`TcpHostQpair`] for
//! the engine, [`TcpTargetTransport`] / [`TcpListener`] / [`TcpTargetQpair`]
//! for the gateway.
//!
//! Leaves to others: PDU byte layouts (`protocol::tcp`), NVMe commands and
//! the Fabrics Connect (engine and target layers), threads and timers (the
//! caller's poll loop).
//!
//! How it stays fast: every buffer is allocated when a queue pair is made
//! (a 256 KiB receive buffer, a send ring, a per-command table); payload is
//! never copied on send (one `sendmsg` gathers headers from the ring and data
//! from the caller's buffers) and copied once on receive (or received straight
//! into the destination when a large data PDU is next). No zero-copy send or
//! TCP_QUICKACK: on loopback they cost a delayed-ACK stall per IO.
//!
//! Modules: `sys` (all raw socket FFI), `tx` (send ring), `rx` (receive
//! buffer and PDU framer), `conn` (what both sides share), `host`, `target`.
#![warn(missing_docs, unreachable_pub)]

mod conn;
mod host;
mod rx;
mod sys;
mod target;
mod tx;

pub use host::{TcpHostQpair, TcpHostTransport, ADMIN_IN_CAPSULE_DATA_BYTES, IO_IN_CAPSULE_DATA_BYTES};
pub use target::{DataFault, TcpListener, TcpTargetQpair, TcpTargetTransport};
