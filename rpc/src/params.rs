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
