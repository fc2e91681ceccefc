//! The gateway (`corepath-tgt`'s core): subsystems, namespaces, listeners,
//! controller-ID ranges, discovery, and the bdev backends namespaces export.
//!
//! Owns configuration state, block devices and the data path (reactors,
//! controllers, admin and IO commands: [`gateway::Gateway`]); the RPC server
//! that mutates the state lives in `rpc`, the fabric transports in
//! `transport-*`, plugged in through `engine`'s transport traits.
#![warn(missing_docs, unreachable_pub)]

pub mod bdev;
pub mod config;
pub mod error;

mod admin_cmd;
mod aio;
pub mod ana;
pub mod controller;
pub mod discovery;
pub mod gateway;
mod io_cmd;
mod smart;

pub use controller::{Controller, ControllerInfo, ControllerKind, QpairOrigin};
pub use gateway::{Gateway, GatewayContext, GatewayCore, GatewayError, GatewayOptions, DEFAULT_MAX_CONNECTIONS};
