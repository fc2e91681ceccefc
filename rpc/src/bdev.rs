//! `bdev_malloc_*`, `bdev_null_*`, `bdev_aio_*` and `bdev_get_bdevs`, with SPDK's parameter names.
//!
//! SPDK parameters we accept only at their default value (metadata, DIF,
//! optimal IO boundary) are listed so that SPDK's own `save_config` output
//! loads; any other value is -32602 "not supported".

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::RpcError;
use crate::gateway_rpc::GatewayRpc;
use crate::params::{only_default, parse_params, uuid_param};

/// Parameters SPDK's malloc and null bdevs share beyond the geometry.
fn check_unsupported_geometry(
    block_size: u32,
    physical_block_size: Option<u32>,
    md_size: Option<u32>,
    dif_type: Option<i32>,
    dif_pi_format: Option<u32>,
) -> Result<(), RpcError> {
    if let Some(pbs) = physical_block_size.filter(|&pbs| pbs != 0) {
        only_default("physical_block_size", Some(pbs), block_size)?;
    }
    only_default("md_size", md_size, 0)?;
    only_default("dif_type", dif_type, 0)?;
    only_default("dif_pi_format", dif_pi_format, 0)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MallocCreate {
    name: Option<String>,
    uuid: Option<String>,
    num_blocks: u64,
    block_size: u32,
    physical_block_size: Option<u32>,
    optimal_io_boundary: Option<u32>,
    md_size: Option<u32>,
    #[allow(dead_code)] // meaningless without metadata
    md_interleave: Option<bool>,
    dif_type: Option<i32>,
    #[allow(dead_code)] // meaningless without metadata
    dif_is_head_of_md: Option<bool>,
    dif_pi_format: Option<u32>,
    #[allow(dead_code)] // memory placement hint; we allocate on the calling thread's node
    numa_id: Option<i32>,
}

/// `bdev_malloc_create` → the bdev name.
pub(crate) fn malloc_create(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: MallocCreate = parse_params(params)?;
    check_unsupported_geometry(p.block_size, p.physical_block_size, p.md_size, p.dif_type, p.dif_pi_format)?;
    only_default("optimal_io_boundary", p.optimal_io_boundary, 0)?;
    let uuid = p.uuid.as_deref().map(|u| uuid_param("uuid", u)).transpose()?;
    let bdev = gw.lock_state().bdev_malloc_create(p.name.as_deref(), p.num_blocks, p.block_size, uuid)?;
    Ok(json!(bdev.name()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByName {
    name: String,
}

/// `bdev_malloc_delete` → true.
pub(crate) fn malloc_delete(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: ByName = parse_params(params)?;
    gw.lock_state().bdev_malloc_delete(&p.name)?;
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NullCreate {
    name: String,
    uuid: Option<String>,
    num_blocks: u64,
    block_size: u32,
    physical_block_size: Option<u32>,
    md_size: Option<u32>,
    dif_type: Option<i32>,
    #[allow(dead_code)] // meaningless without metadata
    dif_is_head_of_md: Option<bool>,
    dif_pi_format: Option<u32>,
}

/// `bdev_null_create` → the bdev name.
pub(crate) fn null_create(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: NullCreate = parse_params(params)?;
    check_unsupported_geometry(p.block_size, p.physical_block_size, p.md_size, p.dif_type, p.dif_pi_format)?;
    let uuid = p.uuid.as_deref().map(|u| uuid_param("uuid", u)).transpose()?;
    let bdev = gw.lock_state().bdev_null_create(&p.name, p.num_blocks, p.block_size, uuid)?;
    Ok(json!(bdev.name()))
}

/// `bdev_null_delete` → true.
pub(crate) fn null_delete(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: ByName = parse_params(params)?;
    gw.lock_state().bdev_null_delete(&p.name)?;
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AioCreate {
    name: String,
    filename: String,
    block_size: Option<u32>,
    uuid: Option<String>,
    readonly: Option<bool>,
    /// Write Zeroes and Deallocate always use fallocate here; the flag is accepted either way.
    #[allow(dead_code)]
    fallocate: Option<bool>,
}

/// `bdev_aio_create` → the bdev name. A file that cannot be opened O_DIRECT
/// (missing, tmpfs, block size below its sector size) is -22 with the reason.
pub(crate) fn aio_create(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: AioCreate = parse_params(params)?;
    only_default("readonly", p.readonly, false)?;
    let uuid = p.uuid.as_deref().map(|u| uuid_param("uuid", u)).transpose()?;
    // SPDK treats block_size 0 as "not given".
    let block_size = p.block_size.filter(|&bs| bs != 0);
    // Opening the file (and one probe read) happens under the state lock: control path only.
    let bdev = gw.lock_state().bdev_aio_create(&p.name, &p.filename, block_size, uuid)?;
    Ok(json!(bdev.name()))
}

/// `bdev_aio_delete` → true.
pub(crate) fn aio_delete(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: ByName = parse_params(params)?;
    gw.lock_state().bdev_aio_delete(&p.name)?;
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetBdevs {
    name: Option<String>,
    /// Milliseconds to wait for the bdev to appear: ours appear synchronously,
    /// so there is never anything to wait for.
    #[allow(dead_code)]
    timeout: Option<u64>,
}

/// `bdev_get_bdevs` → array of bdev objects; an unknown name is -19 (ENODEV), as SPDK.
pub(crate) fn get_bdevs(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: GetBdevs = parse_params(params)?;
    Ok(gw.lock_state().get_bdevs_json(p.name.as_deref())?)
}
