//! The control plane: a JSON-RPC 2.0 server on a Unix socket speaking SPDK's
//! method names, parameters and result shapes; the gateway's RPC methods; a
//! client library and the `corepath-rpc` command (SPDK's `rpc.py` for ours).
//!
//! Configuration state lives in `gateway::config`; this crate decodes requests,
//! applies them, and drives the data plane through [`DataPlane`].
#![warn(missing_docs, unreachable_pub)]

mod bdev;
pub mod client;
pub mod error;
pub mod gateway_methods;
pub mod gateway_rpc;
pub mod host;
pub mod jsonrpc;
pub mod load;
mod nvmf;
mod params;
pub mod router;
pub mod server;
pub mod service;

pub use client::{ClientError, RpcClient};
pub use error::RpcError;
pub use gateway_methods::GATEWAY_METHODS;
pub use gateway_rpc::{DataPlane, GatewayRpc, NoDataPlane};
pub use host::{HostCommand, HostRequest, HostRpc};
pub use jsonrpc::{parse_request, Request};
pub use load::{load_config, load_config_file};
pub use router::{ConfigSection, Router, RpcHandler};
pub use server::{serve, ServerHandle, DEFAULT_SOCKET_PATH, IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_REQUEST_BYTES};
pub use service::{GatewayDataPlane, GatewayService};
