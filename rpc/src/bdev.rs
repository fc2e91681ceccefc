//! `bdev_malloc_*`, `bdev_null_*`, `bdev_aio_*` and `bdev_get_bdevs`, with SPDK's parameter names.
//!
//! Every parameter SPDK's methods take is accepted. Those that ask for what
//! corepath bdevs do not have (metadata, DIF, an optimal IO boundary, a
//! read-only or RWF_NOWAIT AIO file) are refused with -32602 naming the field
//! unless they have their default value; those that only qualify such a
//! feature (`md_interleave`, `dif_is_head_of_md` without metadata) or tune
//! what we always do (`fallocate`) are accepted either way. docs/rpc.md lists
//! them with the reasons.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::RpcError;
use crate::gateway_rpc::GatewayRpc;
use crate::params::{only_default, parse_params, refuse_true, uuid_param};

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
    /// Either value: where metadata sits means nothing without metadata
    /// (`md_size` other than 0 is refused), as in SPDK.
    #[allow(dead_code)]
    md_interleave: Option<bool>,
    dif_type: Option<i32>,
    /// Either value: where the protection information sits within the
    /// metadata means nothing without metadata, as in SPDK.
    #[allow(dead_code)]
    dif_is_head_of_md: Option<bool>,
    dif_pi_format: Option<u32>,
    /// Memory placement hint; the memory comes from wherever the kernel
    /// places the RPC thread's allocation (bdev_get_bdevs reports numa_id -1).
    #[allow(dead_code)]
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
    /// Either value: meaningless without metadata, as for malloc.
    #[allow(dead_code)]
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
    /// Refused when true: the file is always opened read-write.
    readonly: Option<bool>,
    /// Either value: Write Zeroes and Deallocate always use fallocate here
    /// (what SPDK's `true` turns on), and bdev_get_bdevs reports `fallocate: true`.
    #[allow(dead_code)]
    fallocate: Option<bool>,
    /// Refused when true: our AIO submits without RWF_NOWAIT.
    nowait: Option<bool>,
}

/// `bdev_aio_create` → the bdev name. A file that cannot be opened O_DIRECT
/// (missing, tmpfs, block size below its sector size) is -22 with the reason.
pub(crate) fn aio_create(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: AioCreate = parse_params(params)?;
    refuse_true("readonly", p.readonly, "corepath AIO bdevs always open their file read-write")?;
    refuse_true("nowait", p.nowait, "corepath's AIO bdev does not submit IO with RWF_NOWAIT")?;
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
///
/// Each object also carries `numa_id` (after `uuid`) and `memory_domains`
/// (after `supported_io_types`), where SPDK's NVMe bdevs put them: -1 (any
/// node: malloc memory and AIO files are not placed on a chosen node) and `[]`
/// (plain host memory, no DMA memory domain). SPDK leaves both out when they
/// say nothing; we always write them so that scripts find the keys.
pub(crate) fn get_bdevs(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: GetBdevs = parse_params(params)?;
    let mut bdevs = gw.lock_state().get_bdevs_json(p.name.as_deref())?;
    if let Value::Array(list) = &mut bdevs {
        for bdev in list.iter_mut() {
            insert_after(bdev, "uuid", "numa_id", json!(NUMA_ID_ANY));
            insert_after(bdev, "supported_io_types", "memory_domains", json!([]));
        }
    }
    Ok(bdevs)
}

/// SPDK's `SPDK_ENV_NUMA_ID_ANY`: memory not tied to one node.
const NUMA_ID_ANY: i32 = -1;

/// Puts `key: value` right after `after` in a JSON object (at the end when
/// `after` is missing), unless `key` is there already. Key order is part of
/// the shape users diff against.
fn insert_after(object: &mut Value, after: &str, key: &str, value: Value) {
    let Value::Object(map) = object else { return };
    if map.contains_key(key) {
        return;
    }
    let old = std::mem::take(map);
    let mut placed = false;
    for (k, v) in old {
        let here = k == after;
        map.insert(k, v);
        if here {
            map.insert(key.to_string(), value.clone());
            placed = true;
        }
    }
    if !placed {
        map.insert(key.to_string(), value);
    }
}
