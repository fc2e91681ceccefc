//! JSON-RPC 2.0 messages as SPDK frames them: JSON objects back to back on a
//! stream, no length prefix, several requests per connection.
//!
//! Validation follows SPDK's server: the request is an object with only the
//! keys `jsonrpc`, `method`, `params`, `id`; `jsonrpc`, if present, is "2.0";
//! `method` is a string; `id` is a string, number or null; `params` is an
//! object, an array or null (null = absent). A request without `id` is a
//! notification and gets no response. Batches (arrays) are refused.

use serde_json::{Map, Value};

use crate::error::RpcError;

/// A valid request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `None` for a notification (no `id` key); `Some(Value::Null)` for `"id": null`.
    pub id: Option<Value>,
    /// Method name.
    pub method: String,
    /// Parameters; `None` when absent or null.
    pub params: Option<Value>,
}

/// Parses one complete request from `bytes` (surrounding whitespace allowed).
/// Never panics: every input gives a request or a -32700/-32600 error.
pub fn parse_request(bytes: &[u8]) -> Result<Request, RpcError> {
    let value: Value = serde_json::from_slice(bytes).map_err(RpcError::parse_error)?;
    request_from_value(value).map_err(|(_, e)| e)
}

/// Validates a parsed JSON value as a request. On error also returns the id to
/// answer with (the request's, when it had a valid one; else null).
pub fn request_from_value(value: Value) -> Result<Request, (Value, RpcError)> {
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => return Err((Value::Null, RpcError::invalid_request("batch requests are not supported"))),
        _ => return Err((Value::Null, RpcError::invalid_request("a request must be a JSON object"))),
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => return Err((Value::Null, RpcError::invalid_request("id must be a string, number or null"))),
    };
    let fail = |e: RpcError| (id.clone().unwrap_or(Value::Null), e);
    if let Some(key) = obj.keys().find(|k| !matches!(k.as_str(), "jsonrpc" | "method" | "params")) {
        return Err(fail(RpcError::invalid_request(format!("unknown member '{key}'"))));
    }
    match obj.get("jsonrpc") {
        None => {}
        Some(Value::String(v)) if v == "2.0" => {}
        Some(other) => return Err(fail(RpcError::invalid_request(format!("jsonrpc must be \"2.0\", not {other}")))),
    }
    let method = match obj.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(fail(RpcError::invalid_request("method must be a string"))),
        None => return Err(fail(RpcError::invalid_request("method is missing"))),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => None,
        Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
        Some(_) => return Err(fail(RpcError::invalid_request("params must be an object or an array"))),
    };
    Ok(Request { id, method, params })
}

/// A success response.
pub fn success_response(id: &Value, result: Value) -> Value {
    let mut obj = Map::new();
    obj.insert("jsonrpc".into(), "2.0".into());
    obj.insert("id".into(), id.clone());
    obj.insert("result".into(), result);
    Value::Object(obj)
}

/// An error response.
pub fn error_response(id: &Value, error: &RpcError) -> Value {
    let mut obj = Map::new();
    obj.insert("jsonrpc".into(), "2.0".into());
    obj.insert("id".into(), id.clone());
    obj.insert("error".into(), error.to_json());
    Value::Object(obj)
}

/// Why a stream of JSON values cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes are not JSON; the stream cannot be resynchronised.
    #[error("{0}")]
    Parse(String),
    /// A value grew past the limit before it was complete.
    #[error("message exceeds {limit_bytes} bytes")]
    TooLarge {
        /// The limit.
        limit_bytes: usize,
    },
}

/// Splits a byte stream into JSON values (SPDK's framing: values back to back).
#[derive(Debug)]
pub struct JsonStream {
    buf: Vec<u8>,
    limit_bytes: usize,
}

impl JsonStream {
    /// A stream whose single values may not exceed `limit_bytes`.
    pub fn new(limit_bytes: usize) -> Self {
        JsonStream { buf: Vec::new(), limit_bytes }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// True when only whitespace is buffered.
    pub fn is_idle(&self) -> bool {
        self.buf.iter().all(u8::is_ascii_whitespace)
    }

    /// The next complete value, `Ok(None)` if more bytes are needed.
    pub fn next_value(&mut self) -> Result<Option<Value>, FrameError> {
        let start = self.buf.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(self.buf.len());
        self.buf.drain(..start);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut values = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => {
                let consumed = values.byte_offset();
                self.buf.drain(..consumed);
                Ok(Some(value))
            }
            Some(Err(e)) if e.is_eof() => {
                if self.buf.len() > self.limit_bytes {
                    Err(FrameError::TooLarge { limit_bytes: self.limit_bytes })
                } else {
                    Ok(None)
                }
            }
            Some(Err(e)) => Err(FrameError::Parse(e.to_string())),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{INVALID_REQUEST, PARSE_ERROR};
    use serde_json::json;

    #[test]
    fn parses_a_request_with_object_params() {
        let r = parse_request(br#" {"jsonrpc":"2.0","method":"bdev_get_bdevs","id":7,"params":{"name":"Malloc0"}} "#)
            .unwrap();
        assert_eq!(
            r,
            Request { id: Some(json!(7)), method: "bdev_get_bdevs".into(), params: Some(json!({"name": "Malloc0"})) }
        );
    }

    #[test]
    fn notification_has_no_id_and_null_params_are_absent() {
        let r = parse_request(br#"{"method":"spdk_get_version","params":null}"#).unwrap();
        assert_eq!((r.id, r.params), (None, None));
    }

    #[test]
    fn rejects_non_requests_with_the_json_rpc_codes() {
        let code = |bytes: &[u8]| parse_request(bytes).unwrap_err().code;
        assert_eq!(code(b"\xff\xfe"), PARSE_ERROR);
        assert_eq!(code(br#"{"method":"x""#), PARSE_ERROR);
        assert_eq!(code(br#"{"method":"x"} trailing"#), PARSE_ERROR);
        assert_eq!(code(b"42"), INVALID_REQUEST);
        assert_eq!(code(b"[]"), INVALID_REQUEST);
        assert_eq!(code(br#"{"id":1}"#), INVALID_REQUEST);
        assert_eq!(code(br#"{"method":5,"id":1}"#), INVALID_REQUEST);
        assert_eq!(code(br#"{"jsonrpc":"1.0","method":"x","id":1}"#), INVALID_REQUEST);
        assert_eq!(code(br#"{"method":"x","id":{}}"#), INVALID_REQUEST);
        assert_eq!(code(br#"{"method":"x","params":3}"#), INVALID_REQUEST);
        assert_eq!(code(br#"{"method":"x","extra":3}"#), INVALID_REQUEST);
    }

    #[test]
    fn invalid_request_is_answered_with_its_own_id() {
        let (id, e) = request_from_value(json!({"id": "abc", "jsonrpc": "3.0", "method": "x"})).unwrap_err();
        assert_eq!((id, e.code), (json!("abc"), INVALID_REQUEST));
    }

    #[test]
    fn stream_splits_back_to_back_values_across_reads() {
        let mut s = JsonStream::new(1024);
        s.push(br#"{"a":1}{"b":"#);
        assert_eq!(s.next_value(), Ok(Some(json!({"a": 1}))));
        assert_eq!(s.next_value(), Ok(None));
        s.push(b"[2]}\n  ");
        assert_eq!(s.next_value(), Ok(Some(json!({"b": [2]}))));
        assert_eq!(s.next_value(), Ok(None));
        assert!(s.is_idle());
    }

    #[test]
    fn stream_reports_garbage_and_oversized_values() {
        let mut s = JsonStream::new(1024);
        s.push(b"{]");
        assert!(matches!(s.next_value(), Err(FrameError::Parse(_))));
        let mut s = JsonStream::new(16);
        s.push(br#"{"method":"aaaaaaaaaaaaaaaaaaaa"#);
        assert_eq!(s.next_value(), Err(FrameError::TooLarge { limit_bytes: 16 }));
    }

    #[test]
    fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse_request(deep.as_bytes()).unwrap_err().code, PARSE_ERROR);
        let mut s = JsonStream::new(1 << 20);
        s.push(deep.as_bytes());
        assert!(s.next_value().is_err());
    }
}
