//! A blocking JSON-RPC client for the Unix socket, for tests, `corepath-rpc`
//! and other binaries.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::RpcError;
use crate::jsonrpc::{FrameError, JsonStream};

/// Largest response accepted (a `save_config` or `bdev_get_bdevs` of a big gateway fits easily).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Why a call did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, sending or receiving failed.
    // The OS error is part of the message and not a `source`, so that a
    // report that prints the error chain does not say it twice.
    #[error("{op}: {os_error}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        os_error: std::io::Error,
    },
    /// No response within the timeout.
    #[error("timed out waiting for the response")]
    Timeout,
    /// The server closed the connection before answering.
    #[error("connection closed by the server")]
    Closed,
    /// The server answered something that is not a JSON-RPC response to our request.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The server answered with a JSON-RPC error.
    #[error("JSON-RPC error {}: {}", .0.code, .0.message)]
    Rpc(RpcError),
}

/// A connection to a JSON-RPC server.
pub struct RpcClient {
    stream: UnixStream,
    frames: JsonStream,
    next_id: u64,
}

impl RpcClient {
    /// Connects to the server at `path`. Calls wait up to 60 s (see [`RpcClient::set_timeout`]).
    pub fn connect(path: impl AsRef<Path>) -> Result<RpcClient, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .map_err(|source| ClientError::Io { op: format!("connect to {}", path.display()), os_error: source })?;
        let mut client = RpcClient { stream, frames: JsonStream::new(MAX_RESPONSE_BYTES), next_id: 1 };
        client.set_timeout(Duration::from_secs(60))?;
        Ok(client)
    }

    /// How long a call waits for its response.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        self.stream
            .set_read_timeout(timeout)
            .and_then(|_| self.stream.set_write_timeout(timeout))
            .map_err(|source| ClientError::Io { op: "set socket timeout".into(), os_error: source })
    }

    /// The id the next request will carry (rpc.py shows it as `req_id` in errors).
    pub fn next_request_id(&self) -> u64 {
        self.next_id
    }

    /// Calls `method`; `params` of `None` (or an empty object) sends no params, as rpc.py does.
    pub fn call(&mut self, method: &str, params: Option<Value>) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({"jsonrpc": "2.0", "method": method, "id": id});
        match params {
            Some(Value::Object(o)) if o.is_empty() => {}
            Some(params) => request["params"] = params,
            None => {}
        }
        self.send_raw(&serde_json::to_vec(&request).map_err(|e| ClientError::InvalidResponse(e.to_string()))?)?;
        let response = self.recv_value()?;
        parse_response(response, id)
    }

    /// Sends raw bytes (tests use this to send malformed requests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).map_err(|source| ClientError::Io { op: "send request".into(), os_error: source })
    }

    /// Receives the next JSON value the server sends, whatever it is.
    pub fn recv_value(&mut self) -> Result<Value, ClientError> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match self.frames.next_value() {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(FrameError::Parse(e)) => return Err(ClientError::InvalidResponse(e)),
                Err(e @ FrameError::TooLarge { .. }) => return Err(ClientError::InvalidResponse(e.to_string())),
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => self.frames.push(chunk.get(..n).unwrap_or(&[])),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ClientError::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => return Err(ClientError::Io { op: "receive response".into(), os_error: source }),
            }
        }
    }
}

/// Checks a response to request `id`: its result, or its error as [`ClientError::Rpc`].
fn parse_response(response: Value, id: u64) -> Result<Value, ClientError> {
    let Value::Object(mut obj) = response else {
        return Err(ClientError::InvalidResponse("not an object".into()));
    };
    // An error with a null id answers a request the server did not read
    // (JSON-RPC 2.0 §5), such as its "server busy" refusal: it is ours too.
    let unread_request_error = obj.get("id") == Some(&Value::Null) && obj.contains_key("error");
    if obj.get("id") != Some(&json!(id)) && !unread_request_error {
        return Err(ClientError::InvalidResponse(format!("expected id {id}, got {:?}", obj.get("id"))));
    }
    if let Some(error) = obj.remove("error") {
        let code = error.get("code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok());
        let message = error.get("message").and_then(Value::as_str);
        return match (code, message) {
            (Some(code), Some(message)) => Err(ClientError::Rpc(RpcError::new(code, message))),
            _ => Err(ClientError::InvalidResponse(format!("malformed error object {error}"))),
        };
    }
    obj.remove("result").ok_or_else(|| ClientError::InvalidResponse("neither result nor error".into()))
}
