//! The gateway (`corepath-tgt`'s core): subsystems, namespaces, listeners,
//! controller-ID ranges, discovery, and the bdev backends namespaces export.
//!
//! Owns configuration state and block devices; the RPC server that mutates
//! the state lives in `rpc`, the fabric transports in `transport-*`.
#![warn(missing_docs, unreachable_pub)]

pub mod bdev;
pub mod config;
pub mod error;
