//! Decoding of `params` objects, strict as SPDK's `spdk_json_decode_object`:
//! unknown names, missing required names and wrong types are -32602.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::RpcError;

/// Decodes `params` (absent = empty object) into `T`. `T` should carry
/// `#[serde(deny_unknown_fields)]`. Arrays are refused: our methods take named
/// parameters only, as SPDK's do.
pub(crate) fn parse_params<T: DeserializeOwned>(params: Option<&Value>) -> Result<T, RpcError> {
    let object = match params {
        None => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(RpcError::invalid_params("params must be an object")),
    };
    serde_json::from_value(object).map_err(RpcError::invalid_params)
}

/// For methods without parameters: absent or `{}` only.
pub(crate) fn expect_no_params(method: &str, params: Option<&Value>) -> Result<(), RpcError> {
    match params {
        None => Ok(()),
        Some(Value::Object(o)) if o.is_empty() => Ok(()),
        Some(_) => Err(RpcError::invalid_params(format!("{method} method requires no parameters"))),
    }
}

/// A UUID parameter in 8-4-4-4-12 form.
pub(crate) fn uuid_param(name: &str, value: &str) -> Result<[u8; 16], RpcError> {
    gateway::bdev::parse_uuid(value).ok_or_else(|| RpcError::invalid_params(format!("{name} '{value}' is not a UUID")))
}

/// Refuses a parameter SPDK knows but we do not implement, unless it has its default value.
pub(crate) fn only_default<T: PartialEq + std::fmt::Debug>(
    name: &str,
    value: Option<T>,
    default: T,
) -> Result<(), RpcError> {
    match value {
        Some(v) if v != default => {
            Err(RpcError::invalid_params(format!("{name} {v:?} is not supported (only {default:?})")))
        }
        _ => Ok(()),
    }
}

/// Refuses a boolean SPDK option set to `true` when we cannot do what it
/// asks; `false` (or absent) is what we always do. The message names the
/// field and says why: "`name` is not supported: `reason`".
pub(crate) fn refuse_true(name: &str, value: Option<bool>, reason: &str) -> Result<(), RpcError> {
    match value {
        Some(true) => Err(not_supported(name, reason)),
        _ => Ok(()),
    }
}

/// Refuses an SPDK option whenever it is given: for options whose every value
/// asks for something we do not have (a TLS key, a host address to bind).
pub(crate) fn refuse_given<T>(name: &str, value: Option<&T>, reason: &str) -> Result<(), RpcError> {
    match value {
        Some(_) => Err(not_supported(name, reason)),
        None => Ok(()),
    }
}

/// -32602 "`name` is not supported: `reason`".
pub(crate) fn not_supported(name: &str, reason: &str) -> RpcError {
    RpcError::invalid_params(format!("{name} is not supported: {reason}"))
}

/// The message of every refusal of an RDMA address or transport until the
/// RDMA transport lands.
pub(crate) const RDMA_NOT_IMPLEMENTED: &str = "the RDMA transport is not implemented yet (issue 14)";

/// -32602 for an RDMA transport, listener or path: SPDK built without RDMA
/// answers an RDMA `nvmf_create_transport` with -32602 too ("Invalid
/// transport type"); ours says what is missing.
pub(crate) fn rdma_not_implemented() -> RpcError {
    RpcError::invalid_params(RDMA_NOT_IMPLEMENTED)
}

/// Copies the members of `params` named in `names` (the SPDK options a method
/// accepts without effect), so that the method can report them back as set.
pub(crate) fn pick_members(params: Option<&Value>, names: &[&str]) -> Map<String, Value> {
    let Some(Value::Object(object)) = params else { return Map::new() };
    object.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}
