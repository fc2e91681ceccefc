//! `nvmf_*` methods and `framework_get_reactors`, with SPDK's parameter names.
//!
//! Listener changes also start and stop sockets through the data plane: an
//! address shared by several subsystems is listened on once and stopped when
//! the last subsystem drops it.

use std::str::FromStr;

use engine::{AdrFam, TargetOptions, TrType};
use gateway::config::{ListenAddress, NamespaceParams, SubsystemParams};
use gateway::error::TargetError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::RpcError;
use crate::gateway_rpc::GatewayRpc;
use crate::params::{
    expect_no_params, only_default, parse_params, pick_members, rdma_not_implemented, refuse_given, refuse_true,
    uuid_param,
};

/// SPDK's name of its default (and here only) NVMe-oF target, the one value
/// `tgt_name` may have.
const DEFAULT_TARGET: &str = "nvmf_tgt";

fn trtype_param(value: &str) -> Result<TrType, RpcError> {
    TrType::from_str(value).map_err(|_| RpcError::invalid_params(format!("Invalid transport type '{value}'")))
}

/// SPDK's `nvmf_create_transport` options that corepath accepts and reports
/// back (in `nvmf_get_transports` and `save_config`) but that change nothing
/// here, each for the reason given at its field in [`CreateTransport`].
pub(crate) const TRANSPORT_OPTIONS_WITHOUT_EFFECT: [&str; 22] = [
    "max_aq_depth",
    "num_shared_buffers",
    "buf_cache_size",
    "iobuf_small_cache_size",
    "iobuf_large_cache_size",
    "zcopy",
    "num_cqe",
    "max_srq_depth",
    "no_srq",
    "sock_priority",
    "acceptor_backlog",
    "abort_timeout_sec",
    "no_wr_batching",
    "control_msg_num",
    "disable_mappable_bar0",
    "disable_adaptive_irq",
    "disable_shadow_doorbells",
    "acceptor_poll_rate",
    "ack_timeout",
    "data_wr_pool_size",
    "disable_command_passthru",
    "dif_insert_or_strip",
];

/// What `nvmf_get_transports` reports for these SPDK options when the create
/// call did not set them: the values that are true of every corepath
/// transport (and SPDK's defaults).
pub(crate) const TRANSPORT_OPTIONS_ALWAYS_REPORTED: [(&str, bool); 3] =
    [("dif_insert_or_strip", false), ("zcopy", false), ("disable_command_passthru", false)];

/// `nvmf_create_transport`'s parameters: every option SPDK's method takes.
///
/// Implemented: `trtype`, `max_queue_depth`, `max_io_qpairs_per_ctrlr`,
/// `in_capsule_data_size`, `max_io_size`, `io_unit_size`, `c2h_success`.
/// Refused when set to a value we cannot honour: `dif_insert_or_strip: true`,
/// `tgt_name` other than SPDK's default target. Everything else is accepted
/// without effect, for the reason at its field, and reported back as set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the options without effect are only type-checked, then echoed from the raw params
struct CreateTransport {
    trtype: String,
    /// One target per process here: only SPDK's default name, `nvmf_tgt`.
    tgt_name: Option<String>,
    max_queue_depth: Option<u16>,
    max_io_qpairs_per_ctrlr: Option<u16>,
    in_capsule_data_size: Option<u32>,
    max_io_size: Option<u32>,
    io_unit_size: Option<u32>,
    /// NVMe/TCP: the last C2HData PDU of a read carries SUCCESS (no response capsule).
    c2h_success: Option<bool>,
    /// Refused when true: corepath bdevs have no protection information to insert or strip.
    dif_insert_or_strip: Option<bool>,
    // Buffer pools: ours are sized at start-up per transport (DESIGN.md), not by these.
    max_aq_depth: Option<u32>,
    num_shared_buffers: Option<u32>,
    buf_cache_size: Option<u32>,
    iobuf_small_cache_size: Option<u32>,
    iobuf_large_cache_size: Option<u32>,
    /// Zero-copy needs a bdev that lends its buffers; none of ours does
    /// (`supported_io_types.zcopy` is false), and SPDK copies for such bdevs too.
    zcopy: Option<bool>,
    // RDMA only: the RDMA transport is not implemented yet (issue 14), and
    // SPDK's TCP transport ignores these as ours does.
    num_cqe: Option<i32>,
    max_srq_depth: Option<u32>,
    no_srq: Option<bool>,
    acceptor_backlog: Option<i32>,
    no_wr_batching: Option<bool>,
    data_wr_pool_size: Option<u32>,
    // Socket and timing tuning our TCP transport does not have.
    sock_priority: Option<u32>,
    abort_timeout_sec: Option<u32>,
    ack_timeout: Option<u32>,
    control_msg_num: Option<u32>,
    acceptor_poll_rate: Option<u32>,
    // VFIO-user only: there is no VFIO-user transport here.
    disable_mappable_bar0: Option<bool>,
    disable_adaptive_irq: Option<bool>,
    disable_shadow_doorbells: Option<bool>,
    /// Either value: our gateway never forwards commands to a backing NVMe
    /// device (its bdevs are not NVMe devices), which is what `true` asks.
    disable_command_passthru: Option<bool>,
}

/// `nvmf_create_transport` → true. See [`CreateTransport`] for what each
/// option does here; RDMA is refused until its transport lands.
pub(crate) fn create_transport(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: CreateTransport = parse_params(params)?;
    let trtype = trtype_param(&p.trtype)?;
    if trtype == TrType::Rdma {
        return Err(rdma_not_implemented());
    }
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    refuse_true("dif_insert_or_strip", p.dif_insert_or_strip, "corepath bdevs have no protection information")?;
    let defaults = TargetOptions::default();
    let max_qpairs_per_ctrlr = match p.max_io_qpairs_per_ctrlr {
        // The admin queue is the extra one; SPDK's limit is the same.
        Some(io_qpairs) => {
            io_qpairs.checked_add(1).ok_or_else(|| RpcError::invalid_params("max_io_qpairs_per_ctrlr too large"))?
        }
        None => defaults.max_qpairs_per_ctrlr,
    };
    let opts = TargetOptions {
        in_capsule_data_size: p.in_capsule_data_size.unwrap_or(defaults.in_capsule_data_size),
        max_io_size: p.max_io_size.unwrap_or(defaults.max_io_size),
        io_unit_size: p.io_unit_size.unwrap_or(defaults.io_unit_size),
        max_queue_depth: p.max_queue_depth.unwrap_or(defaults.max_queue_depth),
        max_qpairs_per_ctrlr,
        c2h_success: p.c2h_success.unwrap_or(defaults.c2h_success),
    };
    gw.lock_state().create_transport(trtype, opts)?;
    let mut reported = pick_members(params, &TRANSPORT_OPTIONS_WITHOUT_EFFECT);
    for (name, value) in TRANSPORT_OPTIONS_ALWAYS_REPORTED {
        reported.entry(name).or_insert(Value::Bool(value));
    }
    gw.set_transport_options_reported(trtype, reported);
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetTransports {
    trtype: Option<String>,
    tgt_name: Option<String>,
}

/// `nvmf_get_transports` → array; a type not created is -19 (ENODEV), as SPDK.
pub(crate) fn get_transports(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: GetTransports = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    let trtype = p.trtype.as_deref().map(trtype_param).transpose()?;
    let mut transports = gw.lock_state().get_transports_json(trtype).map_err(|e| match e {
        TargetError::TransportNotFound(_) => RpcError::new(-19, e.to_string()),
        e => e.into(),
    })?;
    if let Value::Array(list) = &mut transports {
        list.iter_mut().for_each(|t| gw.add_reported_transport_options(t));
    }
    Ok(transports)
}

/// `nvmf_create_subsystem`'s parameters.
///
/// Implemented: `nqn`, `serial_number`, `model_number`, `allow_any_host`,
/// `max_namespaces`, `min_cntlid`, `max_cntlid`, `ana_reporting`. Refused
/// when true: `passthrough` (our bdevs are not NVMe devices, so there is
/// nothing to pass commands through to) and `enable_nssr` (the gateway has no
/// NVM Subsystem Reset); `tgt_name` other than `nvmf_tgt`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubsystem {
    nqn: String,
    tgt_name: Option<String>,
    serial_number: Option<String>,
    model_number: Option<String>,
    allow_any_host: Option<bool>,
    max_namespaces: Option<u32>,
    min_cntlid: Option<u16>,
    max_cntlid: Option<u16>,
    ana_reporting: Option<bool>,
    passthrough: Option<bool>,
    enable_nssr: Option<bool>,
}

/// `nvmf_create_subsystem` → true.
pub(crate) fn create_subsystem(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: CreateSubsystem = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    refuse_true(
        "passthrough",
        p.passthrough,
        "corepath bdevs are not NVMe devices, so there is nothing to pass commands through to",
    )?;
    refuse_true("enable_nssr", p.enable_nssr, "corepath gateways do not implement NVM Subsystem Reset")?;
    gw.lock_state().create_subsystem(SubsystemParams {
        nqn: p.nqn,
        serial_number: p.serial_number,
        model_number: p.model_number,
        allow_any_host: p.allow_any_host.unwrap_or(false),
        max_namespaces: p.max_namespaces,
        min_cntlid: p.min_cntlid,
        max_cntlid: p.max_cntlid,
        ana_reporting: p.ana_reporting.unwrap_or(false),
    })?;
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByNqn {
    nqn: String,
    tgt_name: Option<String>,
}

/// `nvmf_delete_subsystem` → true; stops listeners no other subsystem uses.
pub(crate) fn delete_subsystem(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: ByNqn = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    let _change = gw.change_guard();
    let (removed, unused) = {
        let mut state = gw.lock_state();
        let removed = state.delete_subsystem(&p.nqn)?;
        let unused: Vec<ListenAddress> =
            removed.listeners.iter().filter(|l| !state.listener_in_use(l)).cloned().collect();
        (removed, unused)
    };
    let failures: Vec<String> = unused
        .iter()
        .filter_map(|addr| gw.data_plane().stop_listening(addr).err().map(|e| format!("{addr}: {e}")))
        .collect();
    if !failures.is_empty() {
        return Err(RpcError::internal(format!(
            "subsystem {} deleted, but stopping listeners failed: {}",
            removed.nqn,
            failures.join("; ")
        )));
    }
    Ok(json!(true))
}

/// SPDK's namespace object (`nvmf_subsystem_add_ns` `namespace`).
///
/// Implemented: `bdev_name`, `nsid`, `uuid`, `nguid`, `anagrpid`. Accepted
/// without effect: `hide_metadata` (SPDK hides a bdev's metadata from hosts;
/// corepath bdevs have none, so either value exposes the same namespace).
/// Refused: `no_auto_visible: true` (there is no per-host namespace
/// visibility here, `nvmf_ns_add_host`; every allowed host sees every
/// namespace), `eui64` and `ptpl_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamespaceSpec {
    bdev_name: String,
    nsid: Option<u32>,
    uuid: Option<String>,
    nguid: Option<String>,
    /// Refused: the gateway reports a namespace's UUID and NGUID, not an EUI-64.
    eui64: Option<String>,
    /// Refused: no persistent reservations here.
    ptpl_file: Option<String>,
    /// ANA group ID; default (or 0) is the NSID.
    anagrpid: Option<u32>,
    no_auto_visible: Option<bool>,
    /// Either value: there is no metadata to hide.
    #[allow(dead_code)]
    hide_metadata: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddNs {
    nqn: String,
    namespace: NamespaceSpec,
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_add_ns` → the NSID. See [`NamespaceSpec`] for the options.
pub(crate) fn add_ns(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: AddNs = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    let ns = p.namespace;
    refuse_true(
        "no_auto_visible",
        ns.no_auto_visible,
        "corepath namespaces are visible to every host the subsystem allows (no per-host visibility)",
    )?;
    refuse_given("eui64", ns.eui64.as_ref(), "corepath namespaces are identified by UUID and NGUID only")?;
    refuse_given("ptpl_file", ns.ptpl_file.as_ref(), "corepath gateways have no persistent reservations")?;
    let uuid = ns.uuid.as_deref().map(|u| uuid_param("uuid", u)).transpose()?;
    let nguid = ns
        .nguid
        .as_deref()
        .map(|g| {
            gateway::bdev::parse_nguid(g)
                .ok_or_else(|| RpcError::invalid_params(format!("Invalid nguid '{g}': need 32 hex digits")))
        })
        .transpose()?;
    let params = NamespaceParams { bdev_name: ns.bdev_name, nsid: ns.nsid, uuid, nguid, anagrpid: ns.anagrpid };
    let nsid = gw.lock_state().add_ns(&p.nqn, params)?;
    Ok(json!(nsid))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveNs {
    nqn: String,
    nsid: u32,
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_remove_ns` → true.
pub(crate) fn remove_ns(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: RemoveNs = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    gw.lock_state().remove_ns(&p.nqn, p.nsid)?;
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenAddressSpec {
    trtype: String,
    adrfam: Option<String>,
    traddr: String,
    trsvcid: Option<String>,
}

impl ListenAddressSpec {
    fn to_address(&self) -> Result<ListenAddress, RpcError> {
        let trtype = trtype_param(&self.trtype)?;
        if trtype == TrType::Rdma {
            return Err(rdma_not_implemented());
        }
        let adrfam = match &self.adrfam {
            // SPDK assumes IPv4 for TCP and RDMA when adrfam is absent.
            None => AdrFam::Ipv4,
            Some(a) => AdrFam::from_str(a).map_err(|_| RpcError::invalid_params(format!("Invalid adrfam '{a}'")))?,
        };
        let trsvcid =
            self.trsvcid.clone().ok_or_else(|| RpcError::invalid_params("trsvcid is required for TCP and RDMA"))?;
        Ok(ListenAddress { trtype, adrfam, traddr: self.traddr.clone(), trsvcid })
    }
}

/// `nvmf_subsystem_add_listener`'s parameters. Refused: `secure_channel:
/// true` (TLS; corepath's NVMe/TCP has none yet), `tgt_name` other than
/// `nvmf_tgt`, an RDMA `listen_address` (not implemented yet).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddListener {
    nqn: String,
    listen_address: ListenAddressSpec,
    secure_channel: Option<bool>,
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_add_listener` → true; listens if no subsystem did on this address yet.
pub(crate) fn add_listener(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: AddListener = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    refuse_true("secure_channel", p.secure_channel, "corepath's NVMe/TCP has no TLS")?;
    let addr = p.listen_address.to_address()?;
    let _change = gw.change_guard();
    let (first_user, opts) = {
        let mut state = gw.lock_state();
        let first_user = !state.listener_in_use(&addr);
        state.add_listener(&p.nqn, addr.clone())?;
        let opts = state.transport(addr.trtype).map(|t| t.opts.clone()).unwrap_or_default();
        (first_user, opts)
    };
    if first_user {
        if let Err(e) = gw.data_plane().listen(&addr, &opts) {
            // Undo the record: the subsystem does not listen after all.
            let _ = gw.lock_state().remove_listener(&p.nqn, &addr);
            return Err(TargetError::Internal(format!("cannot listen on {addr}: {e}")).into());
        }
    }
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveListener {
    nqn: String,
    listen_address: ListenAddressSpec,
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_remove_listener` → true; stops the socket when no subsystem uses it any more.
pub(crate) fn remove_listener(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: RemoveListener = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    let addr = p.listen_address.to_address()?;
    let _change = gw.change_guard();
    let last_user = {
        let mut state = gw.lock_state();
        state.remove_listener(&p.nqn, &addr)?;
        !state.listener_in_use(&addr)
    };
    if last_user {
        gw.data_plane()
            .stop_listening(&addr)
            .map_err(|e| RpcError::from(TargetError::Internal(format!("cannot stop listening on {addr}: {e}"))))?;
    }
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Host {
    nqn: String,
    host: String,
}

/// `nvmf_subsystem_add_host` → true.
pub(crate) fn add_host(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: Host = parse_params(params)?;
    gw.lock_state().add_host(&p.nqn, &p.host)?;
    Ok(json!(true))
}

/// `nvmf_subsystem_remove_host` → true.
pub(crate) fn remove_host(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: Host = parse_params(params)?;
    gw.lock_state().remove_host(&p.nqn, &p.host)?;
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowAnyHost {
    nqn: String,
    allow_any_host: bool,
}

/// `nvmf_subsystem_allow_any_host` → true.
pub(crate) fn allow_any_host(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: AllowAnyHost = parse_params(params)?;
    gw.lock_state().set_allow_any_host(&p.nqn, p.allow_any_host)?;
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetSubsystems {
    nqn: Option<String>,
    tgt_name: Option<String>,
}

/// `nvmf_get_subsystems` → array of subsystem objects.
pub(crate) fn get_subsystems(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: GetSubsystems = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    Ok(gw.lock_state().get_subsystems_json(p.nqn.as_deref())?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetAnaState {
    nqn: String,
    listen_address: ListenAddressSpec,
    ana_state: String,
    anagrpid: Option<u32>,
    /// Only the default target exists here.
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_listener_set_ana_state` → true. Controllers connected
/// through the listener see the new state on their next IO (one atomic load)
/// and get the ANA change event on their admin queue's next turn.
pub(crate) fn listener_set_ana_state(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: SetAnaState = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    let state = gateway::ana::parse_ana_state(&p.ana_state).ok_or_else(|| {
        RpcError::invalid_params(format!(
            "Invalid ana_state '{}': need optimized, non_optimized or inaccessible",
            p.ana_state
        ))
    })?;
    let addr = p.listen_address.to_address()?;
    gw.lock_state().set_ana_state(&p.nqn, &addr, state, p.anagrpid)?;
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubsystemQuery {
    nqn: String,
    tgt_name: Option<String>,
}

/// `nvmf_subsystem_get_listeners` → `[{address, ana_states: [{ana_group, ana_state}]}]`.
pub(crate) fn get_listeners(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: SubsystemQuery = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    Ok(gw.lock_state().get_listeners_json(&p.nqn)?)
}

/// `nvmf_subsystem_get_controllers` → `[{cntlid, hostnqn, hostid, num_io_qpairs}]`,
/// the subsystem's live controllers (an unknown subsystem is an error, as SPDK's).
pub(crate) fn get_controllers(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    let p: SubsystemQuery = parse_params(params)?;
    only_default("tgt_name", p.tgt_name.as_deref(), DEFAULT_TARGET)?;
    if gw.lock_state().subsystem(&p.nqn).is_none() {
        return Err(TargetError::SubsystemNotFound(p.nqn).into());
    }
    Ok(Value::Array(gw.data_plane().controllers(&p.nqn)))
}

/// `framework_get_reactors` → the data plane's report.
pub(crate) fn get_reactors(gw: &GatewayRpc, params: Option<&Value>) -> Result<Value, RpcError> {
    expect_no_params("framework_get_reactors", params)?;
    Ok(gw.data_plane().reactors())
}
