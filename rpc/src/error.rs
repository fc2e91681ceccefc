//! The JSON-RPC error object every failed call answers with.

use gateway::error::TargetError;

/// JSON-RPC 2.0: the bytes are not JSON.
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC 2.0: JSON, but not a request object.
pub const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC 2.0: no such method.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// JSON-RPC 2.0: missing, unknown or ill-typed parameters, or values not allowed.
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC 2.0: the server failed.
pub const INTERNAL_ERROR: i32 = -32603;

/// A JSON-RPC error: `{"code": .., "message": ..}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// Error code: a JSON-RPC code, or a negative errno as SPDK's bdev RPCs send.
    pub code: i32,
    /// What went wrong, naming the parameter or object.
    pub message: String,
}

impl RpcError {
    /// An error with any code.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into() }
    }

    /// -32700.
    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        RpcError::new(PARSE_ERROR, format!("Parse error: {detail}"))
    }

    /// -32600.
    pub fn invalid_request(detail: impl std::fmt::Display) -> Self {
        RpcError::new(INVALID_REQUEST, format!("Invalid request: {detail}"))
    }

    /// -32601.
    pub fn method_not_found(method: &str) -> Self {
        RpcError::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    /// -32602.
    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        RpcError::new(INVALID_PARAMS, format!("Invalid parameters: {detail}"))
    }

    /// -32603.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        RpcError::new(INTERNAL_ERROR, format!("Internal error: {detail}"))
    }

    /// The error object of a response.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "message": self.message })
    }
}

impl From<TargetError> for RpcError {
    fn from(e: TargetError) -> Self {
        RpcError::new(e.rpc_code(), e.to_string())
    }
}
