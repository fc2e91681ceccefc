//! The host's RPC methods: SPDK's `bdev_nvme_*` and the multipath
//! `bdev_get_bdevs`, over a [`MultipathHost`], with SPDK's parameter names,
//! validation and result shapes; and the `corepath-rpc` subcommands that
//! build their parameters from SPDK's `rpc.py` flags ([`HostCommand`]).
//!
//! The only state held here is what `bdev_nvme_set_options` sets: the
//! defaults later attaches start from. Every other call goes to the multipath
//! host, which refuses a bad change without changing anything.

use std::sync::{Arc, Mutex};

use engine::host::ctrlr::ReconnectPolicy;
use engine::transport::HostTransport;
use engine::{format_uuid, AdrFam, ControllerOptions, TimeoutAction, TrType, TransportId};
use multipath::{
    AttachParams, ControllerInfo, IoPathInfo, MultipathError, MultipathHost, MultipathMode, PathFilter, PathInfo,
    Policy, Selector,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::RpcError;
use crate::params::{parse_params, rdma_not_implemented, refuse_given, refuse_true};
use crate::router::RpcHandler;

/// Methods [`HostRpc`] answers.
pub const HOST_METHODS: [&str; 9] = [
    "bdev_nvme_set_options",
    "bdev_nvme_attach_controller",
    "bdev_nvme_detach_controller",
    "bdev_nvme_get_controllers",
    "bdev_nvme_get_io_paths",
    "bdev_nvme_set_multipath_policy",
    "bdev_nvme_set_preferred_path",
    "bdev_nvme_reset_controller",
    "bdev_get_bdevs",
];

/// `-ENODEV`, SPDK's answer for an unknown controller or bdev.
const ENODEV: i32 = -19;
/// `-EEXIST`: the controller name is taken.
const EEXIST: i32 = -17;
/// `-EALREADY`: that path is already attached.
const EALREADY: i32 = -114;
/// `-EINVAL`: the new path is not the same subsystem or namespace.
const EINVAL: i32 = -22;
/// `-EIO`: the controller could not be connected.
const EIO: i32 = -5;
/// `-EPERM`: options changed after a controller was attached.
const EPERM: i32 = -1;

/// What an attach starts from where its call says nothing: the engine's
/// controller options and SPDK's resiliency defaults (`bdev_nvme_set_options`).
#[derive(Debug, Clone)]
pub struct AttachDefaults {
    /// Queue depth, connect timeout, keep-alive, command timeouts.
    pub opts: ControllerOptions,
    /// `-l` when an attach gives none (SPDK: 0, never reconnect).
    pub ctrlr_loss_timeout_sec: i64,
    /// `-o` when an attach gives none.
    pub reconnect_delay_sec: u64,
    /// `-u` when an attach gives none.
    pub fast_io_fail_timeout_sec: u64,
}

impl From<ControllerOptions> for AttachDefaults {
    fn from(opts: ControllerOptions) -> Self {
        AttachDefaults { opts, ctrlr_loss_timeout_sec: 0, reconnect_delay_sec: 0, fast_io_fail_timeout_sec: 0 }
    }
}

/// The host's RPC methods over one [`MultipathHost`].
pub struct HostRpc<T: HostTransport + 'static> {
    host: Arc<MultipathHost<T>>,
    /// What an attach starts from; the call's parameters override keep-alive,
    /// digests and reconnect. Control plane only: the lock is never on an IO path.
    defaults: Mutex<AttachDefaults>,
}

impl<T: HostTransport + 'static> HostRpc<T> {
    /// Methods over `host`, attaching with the engine's default controller options.
    pub fn new(host: Arc<MultipathHost<T>>) -> Self {
        Self::with_defaults(host, ControllerOptions::default())
    }

    /// Methods over `host`, attaching with `defaults` where a call says nothing.
    pub fn with_defaults(host: Arc<MultipathHost<T>>, defaults: ControllerOptions) -> Self {
        HostRpc { host, defaults: Mutex::new(defaults.into()) }
    }

    /// The multipath host.
    pub fn host(&self) -> &Arc<MultipathHost<T>> {
        &self.host
    }

    fn defaults(&self) -> AttachDefaults {
        self.defaults.lock().map(|d| d.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// `bdev_nvme_set_options`: checked whole, applied whole, and only while
    /// no controller is attached (SPDK answers `-EPERM` then too).
    fn set_options(&self, params: Option<&Value>) -> Result<Value, RpcError> {
        let p = SetOptions::parse(params)?;
        if !self.host.controllers(None).map_err(mp_error)?.is_empty() {
            return Err(RpcError::new(
                EPERM,
                "Operation not permitted: bdev_nvme_set_options must come before the first bdev_nvme_attach_controller",
            ));
        }
        let mut d = self.defaults.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let next = p.apply(&d)?;
        *d = next;
        Ok(json!(true))
    }
}

impl<T: HostTransport + 'static> RpcHandler for HostRpc<T>
where
    MultipathHost<T>: Send + Sync,
{
    fn call(&self, method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
        match method {
            "bdev_nvme_set_options" => self.set_options(params),
            "bdev_nvme_attach_controller" => {
                let p = attach_params(parse_params(params)?, &self.defaults(), self.host.engine().hostnqn())?;
                let names = self.host.attach(&p).map_err(mp_error)?;
                Ok(json!(names))
            }
            "bdev_nvme_detach_controller" => {
                let p: DetachController = parse_params(params)?;
                let filter = p.filter()?;
                self.host.detach(&p.name, &filter).map_err(mp_error)?;
                Ok(json!(true))
            }
            "bdev_nvme_get_controllers" => {
                let p: ByOptionalName = parse_params(params)?;
                let ctrlrs = self.host.controllers(p.name.as_deref()).map_err(mp_error)?;
                Ok(controllers_json(&ctrlrs))
            }
            "bdev_nvme_get_io_paths" => {
                let p: ByOptionalName = parse_params(params)?;
                let groups = self.host.io_paths(p.name.as_deref()).map_err(mp_error)?;
                Ok(io_paths_json(&groups))
            }
            "bdev_nvme_set_multipath_policy" => {
                let p: SetPolicy = parse_params(params)?;
                let (policy, selector, rr_min_io) = p.parse()?;
                self.host.set_multipath_policy(&p.name, policy, selector, rr_min_io).map_err(mp_error)?;
                Ok(json!(true))
            }
            "bdev_nvme_set_preferred_path" => {
                let p: SetPreferredPath = parse_params(params)?;
                self.host.set_preferred_path(&p.name, p.cntlid).map_err(mp_error)?;
                Ok(json!(true))
            }
            "bdev_nvme_reset_controller" => {
                let p: ResetController = parse_params(params)?;
                self.host.reset_controller(&p.name, p.cntlid).map_err(mp_error)?;
                Ok(json!(true))
            }
            "bdev_get_bdevs" => {
                let p: GetBdevs = parse_params(params)?;
                self.get_bdevs(p.name.as_deref())
            }
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    fn methods(&self) -> Vec<&'static str> {
        HOST_METHODS.to_vec()
    }
}

impl<T: HostTransport + 'static> HostRpc<T> {
    fn get_bdevs(&self, name: Option<&str>) -> Result<Value, RpcError> {
        let bdevs = self.host.bdevs();
        let mut out = Vec::new();
        for (b, paths) in &bdevs {
            // SPDK finds a bdev by name or by alias (its UUID).
            let uuid = b.uuid.map(|u| format_uuid(&u));
            if name.is_some_and(|n| n != b.name() && uuid.as_deref() != Some(n)) {
                continue;
            }
            out.push(bdev_json(b, paths, uuid));
        }
        if let (Some(n), true) = (name, out.is_empty()) {
            return Err(RpcError::new(ENODEV, format!("bdev {n} not found: No such device")));
        }
        Ok(Value::Array(out))
    }
}

/// A multipath refusal as a JSON-RPC error: SPDK's negative errno where SPDK
/// answers with one, -32602 for a bad parameter value.
pub fn mp_error(e: MultipathError) -> RpcError {
    let code = match &e {
        MultipathError::NameTaken(_) => EEXIST,
        MultipathError::PathExists(_) => EALREADY,
        MultipathError::NoSuchController(_) | MultipathError::NoSuchBdev(_) | MultipathError::NoSuchPath { .. } => {
            ENODEV
        }
        MultipathError::SubsystemMismatch { .. }
        | MultipathError::NamespaceMismatch { .. }
        | MultipathError::DuplicateCntlid { .. }
        | MultipathError::TooManyPaths(_) => EINVAL,
        MultipathError::InvalidParameter(m) => return RpcError::invalid_params(m),
        MultipathError::Engine(_) => EIO,
    };
    RpcError::new(code, e.to_string())
}

// ------------------------------------------------------------ parameters

/// `bdev_nvme_attach_controller`'s params, SPDK's JSON names.
///
/// Implemented: the transport ID, `hostnqn` (must be the engine's),
/// `multipath`, `-l/-o/-u`, `keep_alive_timeout_ms`, the digests. Accepted
/// either way: `disable_sq_flow_control` (the engine always asks the target
/// to disable SQ flow control at Connect, because it bounds its outstanding
/// commands by the queue depth itself and never needs SQ head updates).
/// Refused when true: `prchk_reftag`, `prchk_guard`, `allow_unrecognized_csi`;
/// refused whenever given: `hostaddr`, `hostsvcid`, `psk`, `dhchap_key`,
/// `dhchap_ctrlr_key`; an RDMA `trtype` (not implemented yet).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachController {
    /// Controller name (`-b`).
    pub name: String,
    /// `-t`: tcp, rdma (any case).
    pub trtype: String,
    /// `-a`.
    pub traddr: String,
    /// `-f`: ipv4, ipv6 (any case); IPv4 when absent.
    pub adrfam: Option<String>,
    /// `-s`; 4420 when absent.
    pub trsvcid: Option<String>,
    /// `-n`.
    pub subnqn: Option<String>,
    /// `-q`: must be the engine's host NQN (one per engine here).
    pub hostnqn: Option<String>,
    /// `-x`: disable, multipath, failover.
    pub multipath: Option<String>,
    /// `-l`: -1 = reconnect forever, 0 = never reconnect.
    pub ctrlr_loss_timeout_sec: Option<i64>,
    /// `-o`.
    pub reconnect_delay_sec: Option<u64>,
    /// `-u`: 0 = hold IO until a path returns or the controller is lost.
    pub fast_io_fail_timeout_sec: Option<u64>,
    /// `-k`.
    pub keep_alive_timeout_ms: Option<u32>,
    /// `--hdgst`.
    pub hdgst: Option<bool>,
    /// `--ddgst`.
    pub ddgst: Option<bool>,
    /// SPDK's protection-information checks: only off is supported.
    pub prchk_reftag: Option<bool>,
    /// As `prchk_reftag`.
    pub prchk_guard: Option<bool>,
    /// Namespaces of command sets the host does not know: only NVM ones are
    /// exposed here, so only `false` is supported.
    pub allow_unrecognized_csi: Option<bool>,
    /// Either value (see the type's doc): the engine always disables SQ flow control.
    pub disable_sq_flow_control: Option<bool>,
    /// Source address binding: not supported.
    pub hostaddr: Option<String>,
    /// As `hostaddr`.
    pub hostsvcid: Option<String>,
    /// NVMe/TCP TLS key: not supported.
    pub psk: Option<String>,
    /// DH-HMAC-CHAP: not supported.
    pub dhchap_key: Option<String>,
    /// As `dhchap_key`.
    pub dhchap_ctrlr_key: Option<String>,
}

/// Checks an attach as SPDK does and turns it into the multipath host's parameters.
pub fn attach_params(
    p: AttachController,
    defaults: &AttachDefaults,
    engine_hostnqn: &str,
) -> Result<AttachParams, RpcError> {
    let bad = |m: String| RpcError::invalid_params(m);
    let trtype: TrType = p.trtype.parse().map_err(|_| bad(format!("unknown trtype '{}'", p.trtype)))?;
    if trtype == TrType::Rdma {
        return Err(rdma_not_implemented());
    }
    let adrfam: AdrFam = match &p.adrfam {
        Some(a) => a.parse().map_err(|_| bad(format!("unknown adrfam '{a}'")))?,
        None => AdrFam::Ipv4,
    };
    let subnqn = p.subnqn.clone().ok_or_else(|| bad("subnqn is required".into()))?;
    if let Some(q) = &p.hostnqn {
        if q != engine_hostnqn {
            return Err(bad(format!(
                "hostnqn '{q}' differs from this host's '{engine_hostnqn}' (one host NQN per host)"
            )));
        }
    }
    const NO_PI: &str = "corepath's host does not check protection information (its namespaces have none)";
    refuse_true("prchk_reftag", p.prchk_reftag, NO_PI)?;
    refuse_true("prchk_guard", p.prchk_guard, NO_PI)?;
    refuse_true(
        "allow_unrecognized_csi",
        p.allow_unrecognized_csi,
        "corepath's host exposes namespaces of the NVM command set only",
    )?;
    const NO_BIND: &str = "corepath's host does not bind its connections to a source address";
    refuse_given("hostaddr", p.hostaddr.as_ref(), NO_BIND)?;
    refuse_given("hostsvcid", p.hostsvcid.as_ref(), NO_BIND)?;
    refuse_given("psk", p.psk.as_ref(), "corepath's NVMe/TCP has no TLS")?;
    const NO_AUTH: &str = "corepath's host has no DH-HMAC-CHAP authentication";
    refuse_given("dhchap_key", p.dhchap_key.as_ref(), NO_AUTH)?;
    refuse_given("dhchap_ctrlr_key", p.dhchap_ctrlr_key.as_ref(), NO_AUTH)?;
    let mode =
        match p.multipath.as_deref() {
            None => None,
            Some(m) => Some(MultipathMode::parse(m).ok_or_else(|| {
                bad(format!("unknown multipath mode '{m}' (expected disable, multipath or failover)"))
            })?),
        };
    let loss = p.ctrlr_loss_timeout_sec.unwrap_or(defaults.ctrlr_loss_timeout_sec);
    let delay = p.reconnect_delay_sec.unwrap_or(defaults.reconnect_delay_sec);
    let fast_fail = p.fast_io_fail_timeout_sec.unwrap_or(defaults.fast_io_fail_timeout_sec);
    check_resiliency(loss, delay, fast_fail)?;
    let mut opts = defaults.opts.clone();
    if let Some(kato) = p.keep_alive_timeout_ms {
        opts.keep_alive_timeout_ms = kato;
    }
    opts.header_digest = p.hdgst.unwrap_or(false);
    opts.data_digest = p.ddgst.unwrap_or(false);
    opts.reconnect = ReconnectPolicy {
        reconnect_delay_ms: delay.saturating_mul(1000),
        ctrlr_loss_timeout_ms: if loss == -1 { None } else { Some((loss as u64).saturating_mul(1000)) },
    };
    let trid = TransportId {
        trtype,
        adrfam,
        traddr: p.traddr.clone(),
        trsvcid: p.trsvcid.clone().unwrap_or_else(|| "4420".into()),
        subnqn,
    };
    Ok(AttachParams {
        name: p.name,
        trid,
        mode,
        opts,
        fast_io_fail_timeout_ms: (fast_fail != 0).then(|| fast_fail.saturating_mul(1000)),
    })
}

/// SPDK's rules for `-l`, `-o` and `-u` (bdev_nvme's resiliency checks).
pub fn check_resiliency(
    ctrlr_loss_timeout_sec: i64,
    reconnect_delay_sec: u64,
    fast_io_fail_timeout_sec: u64,
) -> Result<(), RpcError> {
    let bad = |m: String| Err(RpcError::invalid_params(m));
    let (loss, delay, fast) = (ctrlr_loss_timeout_sec, reconnect_delay_sec, fast_io_fail_timeout_sec);
    if loss < -1 {
        return bad(format!("ctrlr_loss_timeout_sec {loss} must be -1 (forever), 0 or positive"));
    }
    if loss == 0 {
        if delay != 0 || fast != 0 {
            return bad(
                "reconnect_delay_sec and fast_io_fail_timeout_sec must be 0 when ctrlr_loss_timeout_sec is 0".into()
            );
        }
        return Ok(());
    }
    if delay == 0 {
        return bad(format!("reconnect_delay_sec must be non-zero when ctrlr_loss_timeout_sec is {loss}"));
    }
    if loss > 0 && delay > loss as u64 {
        return bad(format!("reconnect_delay_sec {delay} must not exceed ctrlr_loss_timeout_sec {loss}"));
    }
    if fast != 0 {
        if loss > 0 && fast > loss as u64 {
            return bad(format!("fast_io_fail_timeout_sec {fast} must not exceed ctrlr_loss_timeout_sec {loss}"));
        }
        if fast < delay {
            return bad(format!("fast_io_fail_timeout_sec {fast} must not be below reconnect_delay_sec {delay}"));
        }
    }
    Ok(())
}

/// `bdev_nvme_set_options`'s params that change something here, or that
/// are refused when they ask for what the host does not do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetOptions {
    /// Refused when true: active_passive always sends IO to the first healthy
    /// optimized path, so IO goes back to a path as soon as it is healthy.
    disable_auto_failback: Option<bool>,
    /// Refused when true: a namespace without a UUID gets none here.
    generate_uuids: Option<bool>,
    /// Refused when true: there are no per-path IO statistics to collect.
    io_path_stat: Option<bool>,
    /// Refused when true: there are no NVMe error counters to collect.
    nvme_error_stat: Option<bool>,
    /// `-a`: none, reset, abort.
    action_on_timeout: Option<String>,
    /// `-t`: IO command timeout, µs; 0 = none.
    timeout_us: Option<u64>,
    /// `--timeout-admin-us`: admin command timeout, µs; 0 = as `timeout_us`.
    timeout_admin_us: Option<u64>,
    /// `-k`.
    keep_alive_timeout_ms: Option<u32>,
    /// `-l`.
    ctrlr_loss_timeout_sec: Option<i64>,
    /// `-o`.
    reconnect_delay_sec: Option<u64>,
    /// `-u`.
    fast_io_fail_timeout_sec: Option<u64>,
}

/// Parameters of SPDK's `bdev_nvme_set_options` (as its `save_config` writes
/// them, old and new) that tune parts corepath does not have: accepted
/// whatever their value, so SPDK configurations load, and without effect
/// (docs/rpc.md gives each reason). Among them `delay_cmd_submit` (the engine
/// already gathers the PDUs of a poll turn into one send), `allow_accel_sequence`
/// (no accel framework: nothing to chain) and `enable_flush` (Flush always goes
/// to the controllers, which is never less safe).
const SET_OPTIONS_WITHOUT_EFFECT: [&str; 22] = [
    "retry_count",
    "arbitration_burst",
    "low_priority_weight",
    "medium_priority_weight",
    "high_priority_weight",
    "nvme_adminq_poll_period_us",
    "nvme_ioq_poll_period_us",
    "io_queue_requests",
    "delay_cmd_submit",
    "transport_retry_count",
    "bdev_retry_count",
    "transport_ack_timeout",
    "transport_tos",
    "rdma_srq_size",
    "allow_accel_sequence",
    "rdma_max_cq_size",
    "rdma_cm_event_timeout_ms",
    "dhchap_digests",
    "dhchap_dhgroups",
    "rdma_umr_per_io",
    "tcp_connect_timeout_ms",
    "enable_flush",
];

impl SetOptions {
    fn parse(params: Option<&Value>) -> Result<Self, RpcError> {
        let Some(v) = params else { return Ok(SetOptions::default()) };
        let Value::Object(map) = v else {
            return Err(RpcError::invalid_params("bdev_nvme_set_options: params must be an object".to_string()));
        };
        // Everything but the accepted-without-effect keys, so unknown names are refused by serde.
        let known: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| !SET_OPTIONS_WITHOUT_EFFECT.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        parse_params(Some(&Value::Object(known)))
    }

    /// The defaults after this call, or why it is refused (nothing changes then).
    fn apply(&self, current: &AttachDefaults) -> Result<AttachDefaults, RpcError> {
        refuse_true(
            "disable_auto_failback",
            self.disable_auto_failback,
            "corepath's active_passive policy always sends IO to the first healthy path, so it fails back by itself",
        )?;
        refuse_true("generate_uuids", self.generate_uuids, "corepath's host reports only the UUIDs namespaces have")?;
        refuse_true("io_path_stat", self.io_path_stat, "corepath's host keeps no per-path IO statistics")?;
        refuse_true("nvme_error_stat", self.nvme_error_stat, "corepath's host keeps no NVMe error counters")?;
        let mut d = current.clone();
        if let Some(name) = &self.action_on_timeout {
            d.opts.action_on_timeout = TimeoutAction::from_spdk_name(name).ok_or_else(|| {
                RpcError::invalid_params(format!("unknown action_on_timeout '{name}' (expected none, reset or abort)"))
            })?;
        }
        // Microseconds in, milliseconds kept (the timeout scan runs every 10 ms): round up, never to 0.
        if let Some(us) = self.timeout_us {
            d.opts.io_timeout_ms = us.div_ceil(1000);
        }
        if let Some(us) = self.timeout_admin_us {
            d.opts.admin_timeout_ms = us.div_ceil(1000);
        }
        if let Some(ms) = self.keep_alive_timeout_ms {
            d.opts.keep_alive_timeout_ms = ms;
        }
        d.ctrlr_loss_timeout_sec = self.ctrlr_loss_timeout_sec.unwrap_or(d.ctrlr_loss_timeout_sec);
        d.reconnect_delay_sec = self.reconnect_delay_sec.unwrap_or(d.reconnect_delay_sec);
        d.fast_io_fail_timeout_sec = self.fast_io_fail_timeout_sec.unwrap_or(d.fast_io_fail_timeout_sec);
        check_resiliency(d.ctrlr_loss_timeout_sec, d.reconnect_delay_sec, d.fast_io_fail_timeout_sec)?;
        Ok(d)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetachController {
    name: String,
    trtype: Option<String>,
    traddr: Option<String>,
    adrfam: Option<String>,
    trsvcid: Option<String>,
    subnqn: Option<String>,
    hostaddr: Option<String>,
    hostsvcid: Option<String>,
}

impl DetachController {
    fn filter(&self) -> Result<PathFilter, RpcError> {
        // Every path here is of one transport and family; still refuse nonsense.
        if let Some(t) = &self.trtype {
            t.parse::<TrType>().map_err(|_| RpcError::invalid_params(format!("unknown trtype '{t}'")))?;
        }
        if let Some(a) = &self.adrfam {
            a.parse::<AdrFam>().map_err(|_| RpcError::invalid_params(format!("unknown adrfam '{a}'")))?;
        }
        if self.hostaddr.is_some() || self.hostsvcid.is_some() {
            return Err(RpcError::invalid_params("hostaddr/hostsvcid are not supported (no source address binding)"));
        }
        Ok(PathFilter { traddr: self.traddr.clone(), trsvcid: self.trsvcid.clone(), subnqn: self.subnqn.clone() })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ByOptionalName {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetBdevs {
    name: Option<String>,
    /// Ours appear synchronously: nothing to wait for.
    #[allow(dead_code)]
    timeout: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPolicy {
    name: String,
    policy: String,
    selector: Option<String>,
    rr_min_io: Option<i64>,
}

impl SetPolicy {
    fn parse(&self) -> Result<(Policy, Option<Selector>, Option<u32>), RpcError> {
        let policy = Policy::parse(&self.policy).ok_or_else(|| {
            RpcError::invalid_params(format!(
                "unknown policy '{}' (expected active_passive or active_active)",
                self.policy
            ))
        })?;
        let selector = match &self.selector {
            None => None,
            Some(s) => Some(Selector::parse(s).ok_or_else(|| {
                RpcError::invalid_params(format!("unknown selector '{s}' (expected round_robin or queue_depth)"))
            })?),
        };
        // rpc.py sends -1 for "not given".
        let rr_min_io = match self.rr_min_io {
            None | Some(-1) => None,
            Some(n) if n >= 1 && n <= i64::from(u32::MAX) => Some(n as u32),
            Some(n) => return Err(RpcError::invalid_params(format!("rr_min_io {n} must be at least 1"))),
        };
        if policy == Policy::ActivePassive && (selector.is_some() || rr_min_io.is_some()) {
            return Err(RpcError::invalid_params("selector and rr_min_io apply to active_active only"));
        }
        Ok((policy, selector, rr_min_io))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPreferredPath {
    name: String,
    cntlid: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetController {
    name: String,
    cntlid: Option<u16>,
}

// ------------------------------------------------------------ result shapes

fn trid_json(t: &TransportId) -> Value {
    json!({
        "trtype": t.trtype.as_str(),
        "adrfam": t.adrfam.as_str(),
        "traddr": t.traddr,
        "trsvcid": t.trsvcid,
        "subnqn": t.subnqn,
    })
}

/// `bdev_nvme_get_controllers`'s result.
pub fn controllers_json(ctrlrs: &[ControllerInfo]) -> Value {
    Value::Array(
        ctrlrs
            .iter()
            .map(|c| {
                let paths: Vec<Value> = c
                    .paths
                    .iter()
                    .map(|p| {
                        json!({
                            "state": p.state.spdk_name(),
                            "trid": trid_json(&p.trid),
                            "cntlid": p.cntlid,
                            "host": {"nqn": p.hostnqn, "addr": "", "svcid": "", "no_shn_notification": false},
                        })
                    })
                    .collect();
                json!({"name": c.name, "ctrlrs": paths})
            })
            .collect(),
    )
}

/// `bdev_nvme_get_io_paths`'s result: one poll group per reactor.
pub fn io_paths_json(groups: &[Vec<IoPathInfo>]) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .enumerate()
        .map(|(reactor, paths)| {
            let paths: Vec<Value> = paths
                .iter()
                .map(|p| {
                    json!({
                        "bdev_name": p.bdev_name,
                        "cntlid": p.cntlid,
                        "current": p.current,
                        "connected": p.connected,
                        "accessible": p.accessible,
                        "transport": {
                            "trtype": p.trid.trtype.as_str(),
                            "traddr": p.trid.traddr,
                            "trsvcid": p.trid.trsvcid,
                            "adrfam": p.trid.adrfam.as_str(),
                        },
                    })
                })
                .collect();
            json!({"thread": format!("reactor_{reactor}"), "io_paths": paths})
        })
        .collect();
    json!({ "poll_groups": groups })
}

fn path_json(p: &PathInfo, nsid: u32) -> Value {
    let d = &p.data;
    let (major, minor) = ((d.version >> 16) & 0xffff, (d.version >> 8) & 0xff);
    json!({
        "trid": trid_json(&p.trid),
        "ctrlr_data": {
            "cntlid": p.cntlid,
            // Identify's VID is not kept by the engine; 0 says "not known".
            "vendor_id": "0x0000",
            "model_number": d.model_number,
            "serial_number": d.serial_number,
            "firmware_revision": d.firmware_revision,
            "subnqn": d.subnqn,
            "oacs": {"security": 0, "format": 0, "firmware": 0, "ns_manage": 0},
            // CMIC bit 1: two or more controllers may access the subsystem.
            "multi_ctrlr": d.cmic & 0x2 != 0,
            "ana_reporting": d.ana_reporting,
        },
        "vs": {"nvme_version": format!("{major}.{minor}")},
        "ns_data": {"id": nsid, "can_share": true},
    })
}

fn bdev_json(b: &multipath::MpBdev, paths: &[PathInfo], uuid: Option<String>) -> Value {
    let mut driver = Map::new();
    driver.insert("nvme".into(), Value::Array(paths.iter().map(|p| path_json(p, b.nsid)).collect()));
    driver.insert("mp_policy".into(), json!(b.policy().name()));
    if b.policy() == Policy::ActiveActive {
        driver.insert("selector".into(), json!(b.selector().name()));
        if b.selector() == Selector::RoundRobin {
            driver.insert("rr_min_io".into(), json!(b.rr_min_io()));
        }
    }
    let mut out = Map::new();
    out.insert("name".into(), json!(b.name()));
    out.insert("aliases".into(), json!(uuid.iter().collect::<Vec<_>>()));
    out.insert("product_name".into(), json!("NVMe disk"));
    out.insert("block_size".into(), json!(b.block_size));
    out.insert("num_blocks".into(), json!(b.num_blocks));
    for key in [
        "preferred_write_alignment",
        "preferred_write_granularity",
        "preferred_unmap_alignment",
        "preferred_unmap_granularity",
    ] {
        out.insert(key.into(), json!(1));
    }
    out.insert("optimal_write_size".into(), json!(1));
    if let Some(u) = &uuid {
        out.insert("uuid".into(), json!(u));
    }
    out.insert("numa_id".into(), json!(-1));
    out.insert(
        "assigned_rate_limits".into(),
        json!({"rw_ios_per_sec": 0, "rw_mbytes_per_sec": 0, "r_mbytes_per_sec": 0, "w_mbytes_per_sec": 0}),
    );
    out.insert("claimed".into(), json!(false));
    out.insert("zoned".into(), json!(false));
    out.insert(
        "supported_io_types".into(),
        json!({
            "read": true, "write": true, "unmap": true, "flush": true, "reset": true,
            "nvme_admin": false, "nvme_io": false, "nvme_io_md": false, "write_zeroes": true,
            "zcopy": false, "get_zone_info": false, "zone_management": false, "zone_append": false,
            "compare": false, "compare_and_write": false, "abort": false, "seek_hole": false,
            "seek_data": false, "copy": false, "nvme_iov_md": false, "nvme_nssr": false,
            "write_uncorrectable": false,
        }),
    );
    out.insert("memory_domains".into(), json!([]));
    out.insert("driver_specific".into(), Value::Object(driver));
    Value::Object(out)
}

// ------------------------------------------------------------ corepath-rpc

/// `corepath-rpc`'s host subcommands, with `rpc.py`'s flags.
#[derive(Debug, clap::Subcommand)]
pub enum HostCommand {
    /// Set options for the bdev nvme type; before the first attach.
    #[command(name = "bdev_nvme_set_options")]
    SetOptions {
        /// Action on a command timeout: none, reset, abort.
        #[arg(short = 'a', long = "action-on-timeout")]
        action_on_timeout: Option<String>,
        /// Timeout for each IO command, µs; 0 = do not track timeouts.
        #[arg(short = 't', long = "timeout-us")]
        timeout_us: Option<u64>,
        /// Timeout for each admin command, µs; 0 = as --timeout-us.
        #[arg(long = "timeout-admin-us")]
        timeout_admin_us: Option<u64>,
        /// Keep-alive timeout in ms.
        #[arg(short = 'k', long = "keep-alive-timeout-ms")]
        keep_alive_timeout_ms: Option<u32>,
        /// Defaults of later attaches.
        #[command(flatten)]
        resiliency: ResiliencyArgs,
    },
    /// Add an NVMe controller, or a path of one (-x multipath/failover).
    #[command(name = "bdev_nvme_attach_controller")]
    AttachController {
        /// Name of the NVMe controller, prefix for each bdev name.
        #[arg(short = 'b', long = "name")]
        name: String,
        /// NVMe-oF target trtype: e.g. tcp, rdma.
        #[arg(short = 't', long = "trtype")]
        trtype: String,
        /// NVMe-oF target address: e.g. an IP address.
        #[arg(short = 'a', long = "traddr")]
        traddr: String,
        /// NVMe-oF target adrfam: ipv4, ipv6.
        #[arg(short = 'f', long = "adrfam")]
        adrfam: Option<String>,
        /// NVMe-oF target trsvcid: e.g. a port number.
        #[arg(short = 's', long = "trsvcid")]
        trsvcid: Option<String>,
        /// NVMe-oF target subnqn.
        #[arg(short = 'n', long = "subnqn")]
        subnqn: Option<String>,
        /// NVMe-oF host NQN.
        #[arg(short = 'q', long = "hostnqn")]
        hostnqn: Option<String>,
        /// disable, multipath or failover.
        #[arg(short = 'x', long = "multipath")]
        multipath: Option<String>,
        /// Reconnect and fail-over timing.
        #[command(flatten)]
        resiliency: ResiliencyArgs,
        /// Keep-alive timeout in ms.
        #[arg(short = 'k', long = "keep-alive-timeout-ms")]
        keep_alive_timeout_ms: Option<u32>,
        /// Enable the TCP header digest.
        #[arg(long = "hdgst")]
        hdgst: bool,
        /// Enable the TCP data digest.
        #[arg(long = "ddgst")]
        ddgst: bool,
    },
    /// Detach a controller, or those of its paths that match.
    #[command(name = "bdev_nvme_detach_controller")]
    DetachController {
        /// Controller name.
        name: String,
        /// Path's trtype.
        #[arg(short = 't', long = "trtype")]
        trtype: Option<String>,
        /// Path's address.
        #[arg(short = 'a', long = "traddr")]
        traddr: Option<String>,
        /// Path's address family.
        #[arg(short = 'f', long = "adrfam")]
        adrfam: Option<String>,
        /// Path's service ID.
        #[arg(short = 's', long = "trsvcid")]
        trsvcid: Option<String>,
        /// Path's subsystem NQN.
        #[arg(short = 'n', long = "subnqn")]
        subnqn: Option<String>,
    },
    /// Display NVMe controllers with their paths.
    #[command(name = "bdev_nvme_get_controllers")]
    GetControllers {
        /// Controller name.
        #[arg(short = 'n', long = "name")]
        name: Option<String>,
    },
    /// Display each reactor's IO paths.
    #[command(name = "bdev_nvme_get_io_paths")]
    GetIoPaths {
        /// Bdev name.
        #[arg(short = 'n', long = "name")]
        name: Option<String>,
    },
    /// Set the multipath policy of a bdev.
    #[command(name = "bdev_nvme_set_multipath_policy")]
    SetMultipathPolicy {
        /// Bdev name.
        #[arg(short = 'b', long = "name")]
        name: String,
        /// active_passive or active_active.
        #[arg(short = 'p', long = "policy")]
        policy: String,
        /// round_robin or queue_depth (active_active only).
        #[arg(short = 's', long = "selector")]
        selector: Option<String>,
        /// IOs per path before round robin moves on.
        #[arg(short = 'r', long = "rr-min-io")]
        rr_min_io: Option<u32>,
    },
    /// Prefer one path of a bdev (active_passive).
    #[command(name = "bdev_nvme_set_preferred_path")]
    SetPreferredPath {
        /// Bdev name.
        #[arg(short = 'b', long = "name")]
        name: String,
        /// Controller ID of the path.
        #[arg(short = 'c', long = "cntlid")]
        cntlid: u16,
    },
    /// Reset a controller (every path, or the one with this controller ID).
    #[command(name = "bdev_nvme_reset_controller")]
    ResetController {
        /// Controller name.
        name: String,
        /// Controller ID of the path.
        #[arg(short = 'c', long = "cntlid")]
        cntlid: Option<u16>,
    },
}

/// rpc.py's `-l/-o/-u`, shared by attach and set_options.
#[derive(Debug, Clone, clap::Args)]
pub struct ResiliencyArgs {
    /// Seconds to keep reconnecting after a loss; -1 = forever, 0 = never.
    #[arg(short = 'l', long = "ctrlr-loss-timeout-sec", allow_negative_numbers = true)]
    pub ctrlr_loss_timeout_sec: Option<i64>,
    /// Seconds between reconnect attempts.
    #[arg(short = 'o', long = "reconnect-delay-sec")]
    pub reconnect_delay_sec: Option<u64>,
    /// Seconds without any path after which queued IOs fail.
    #[arg(short = 'u', long = "fast-io-fail-timeout-sec")]
    pub fast_io_fail_timeout_sec: Option<u64>,
}

/// A host subcommand as a request.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRequest {
    /// Method name.
    pub method: &'static str,
    /// Params object (absent options left out, as rpc.py does).
    pub params: Value,
    /// rpc.py prints the result (false: the result is just `true`).
    pub prints_result: bool,
}

fn object(pairs: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))).collect())
}

fn opt<T: Into<Value>>(v: Option<T>) -> Option<Value> {
    v.map(Into::into)
}

impl HostCommand {
    /// The method and params rpc.py would send.
    pub fn into_request(self) -> HostRequest {
        let (method, params, prints_result) = match self {
            HostCommand::AttachController {
                name,
                trtype,
                traddr,
                adrfam,
                trsvcid,
                subnqn,
                hostnqn,
                multipath,
                resiliency,
                keep_alive_timeout_ms,
                hdgst,
                ddgst,
            } => (
                "bdev_nvme_attach_controller",
                object(vec![
                    ("name", opt(Some(name))),
                    ("trtype", opt(Some(trtype))),
                    ("traddr", opt(Some(traddr))),
                    ("adrfam", opt(adrfam)),
                    ("trsvcid", opt(trsvcid)),
                    ("subnqn", opt(subnqn)),
                    ("hostnqn", opt(hostnqn)),
                    ("multipath", opt(multipath)),
                    ("ctrlr_loss_timeout_sec", opt(resiliency.ctrlr_loss_timeout_sec)),
                    ("reconnect_delay_sec", opt(resiliency.reconnect_delay_sec)),
                    ("fast_io_fail_timeout_sec", opt(resiliency.fast_io_fail_timeout_sec)),
                    ("keep_alive_timeout_ms", opt(keep_alive_timeout_ms)),
                    ("hdgst", hdgst.then_some(Value::Bool(true))),
                    ("ddgst", ddgst.then_some(Value::Bool(true))),
                ]),
                true,
            ),
            HostCommand::DetachController { name, trtype, traddr, adrfam, trsvcid, subnqn } => (
                "bdev_nvme_detach_controller",
                object(vec![
                    ("name", opt(Some(name))),
                    ("trtype", opt(trtype)),
                    ("traddr", opt(traddr)),
                    ("adrfam", opt(adrfam)),
                    ("trsvcid", opt(trsvcid)),
                    ("subnqn", opt(subnqn)),
                ]),
                false,
            ),
            HostCommand::GetControllers { name } => {
                ("bdev_nvme_get_controllers", object(vec![("name", opt(name))]), true)
            }
            HostCommand::GetIoPaths { name } => ("bdev_nvme_get_io_paths", object(vec![("name", opt(name))]), true),
            HostCommand::SetMultipathPolicy { name, policy, selector, rr_min_io } => (
                "bdev_nvme_set_multipath_policy",
                object(vec![
                    ("name", opt(Some(name))),
                    ("policy", opt(Some(policy))),
                    ("selector", opt(selector)),
                    ("rr_min_io", opt(rr_min_io)),
                ]),
                false,
            ),
            HostCommand::SetPreferredPath { name, cntlid } => {
                ("bdev_nvme_set_preferred_path", json!({"name": name, "cntlid": cntlid}), false)
            }
            HostCommand::ResetController { name, cntlid } => {
                ("bdev_nvme_reset_controller", object(vec![("name", opt(Some(name))), ("cntlid", opt(cntlid))]), false)
            }
            HostCommand::SetOptions {
                action_on_timeout,
                timeout_us,
                timeout_admin_us,
                keep_alive_timeout_ms,
                resiliency,
            } => (
                "bdev_nvme_set_options",
                object(vec![
                    ("action_on_timeout", opt(action_on_timeout)),
                    ("timeout_us", opt(timeout_us)),
                    ("timeout_admin_us", opt(timeout_admin_us)),
                    ("keep_alive_timeout_ms", opt(keep_alive_timeout_ms)),
                    ("ctrlr_loss_timeout_sec", opt(resiliency.ctrlr_loss_timeout_sec)),
                    ("reconnect_delay_sec", opt(resiliency.reconnect_delay_sec)),
                    ("fast_io_fail_timeout_sec", opt(resiliency.fast_io_fail_timeout_sec)),
                ]),
                false,
            ),
        };
        HostRequest { method, params, prints_result }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::INVALID_PARAMS;
    use clap::Parser;

    fn attach(v: Value) -> Result<AttachParams, RpcError> {
        let p: AttachController = parse_params(Some(&v))?;
        attach_params(p, &ControllerOptions::default().into(), "nqn.host")
    }

    fn design_attach() -> Value {
        json!({"name": "Nvme0", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.2", "trsvcid": "4420",
               "subnqn": "nqn.2021-06.io.spdk:ctc_rbd0", "multipath": "multipath",
               "ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": 20})
    }

    #[test]
    fn design_md_attach_reconnects_forever_every_20_s() {
        let p = attach(design_attach()).unwrap();
        assert_eq!(p.name, "Nvme0");
        assert_eq!(p.trid, TransportId::tcp("127.0.0.2", "4420", "nqn.2021-06.io.spdk:ctc_rbd0"));
        assert_eq!(p.mode, Some(MultipathMode::Multipath));
        assert_eq!(p.opts.reconnect.ctrlr_loss_timeout_ms, None);
        assert_eq!(p.opts.reconnect.reconnect_delay_ms, 20_000);
        assert_eq!(p.fast_io_fail_timeout_ms, None);
        assert_eq!(p.opts.keep_alive_timeout_ms, ControllerOptions::default().keep_alive_timeout_ms);
    }

    #[test]
    fn attach_takes_keep_alive_digests_and_fast_io_fail() {
        let mut v = design_attach();
        v["keep_alive_timeout_ms"] = json!(2000);
        v["hdgst"] = json!(true);
        v["ddgst"] = json!(true);
        v["fast_io_fail_timeout_sec"] = json!(30);
        v["multipath"] = json!("failover");
        let p = attach(v).unwrap();
        assert_eq!(p.opts.keep_alive_timeout_ms, 2000);
        assert!(p.opts.header_digest && p.opts.data_digest);
        assert_eq!(p.fast_io_fail_timeout_ms, Some(30_000));
        assert_eq!(p.mode, Some(MultipathMode::Failover));
    }

    #[test]
    fn attach_without_reconnect_options_never_reconnects() {
        let mut v = design_attach();
        let o = v.as_object_mut().unwrap();
        o.remove("ctrlr_loss_timeout_sec");
        o.remove("reconnect_delay_sec");
        o.remove("multipath");
        let p = attach(v).unwrap();
        assert_eq!(p.opts.reconnect.ctrlr_loss_timeout_ms, Some(0));
        assert_eq!(p.mode, None);
    }

    #[test]
    fn rejects_reconnect_settings_spdk_rejects() {
        for (loss, delay, fast) in [(5, 0, 0), (-1, 0, 0), (0, 1, 0), (0, 0, 1), (-2, 1, 0), (5, 10, 0), (5, 1, 10)] {
            let mut v = design_attach();
            v["ctrlr_loss_timeout_sec"] = json!(loss);
            v["reconnect_delay_sec"] = json!(delay);
            v["fast_io_fail_timeout_sec"] = json!(fast);
            let e = attach(v).unwrap_err();
            assert_eq!(e.code, INVALID_PARAMS, "({loss}, {delay}, {fast}): {e}");
        }
        assert!(check_resiliency(-1, 20, 30).is_ok());
        assert!(check_resiliency(-1, 20, 0).is_ok());
        assert!(check_resiliency(60, 5, 30).is_ok());
        assert!(check_resiliency(0, 0, 0).is_ok());
        let e = check_resiliency(10, 0, 0).unwrap_err();
        assert!(e.message.contains("reconnect_delay_sec must be non-zero"), "{e}");
    }

    #[test]
    fn rejects_unknown_names_with_a_clear_message() {
        let mut v = design_attach();
        v["multipath"] = json!("active");
        let e = attach(v).unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        assert!(e.message.contains("unknown multipath mode 'active'"), "{e}");
        let mut v = design_attach();
        v["trtype"] = json!("fc");
        assert!(attach(v).unwrap_err().message.contains("unknown trtype 'fc'"));
        let mut v = design_attach();
        v["bogus"] = json!(1);
        assert_eq!(attach(v).unwrap_err().code, INVALID_PARAMS);
        let mut v = design_attach();
        v["hostnqn"] = json!("nqn.other");
        assert!(attach(v).unwrap_err().message.contains("hostnqn"));
        let mut v = design_attach();
        v.as_object_mut().unwrap().remove("subnqn");
        assert!(attach(v).unwrap_err().message.contains("subnqn is required"));
    }

    #[test]
    fn parses_policies_selectors_and_rr_min_io() {
        let p = |v: Value| parse_params::<SetPolicy>(Some(&v)).unwrap().parse();
        assert_eq!(
            p(json!({"name": "Nvme0n1", "policy": "active_passive"})).unwrap(),
            (Policy::ActivePassive, None, None)
        );
        assert_eq!(
            p(json!({"name": "Nvme0n1", "policy": "active_active", "selector": "queue_depth"})).unwrap(),
            (Policy::ActiveActive, Some(Selector::QueueDepth), None)
        );
        assert_eq!(
            p(json!({"name": "Nvme0n1", "policy": "active_active", "selector": "round_robin", "rr_min_io": 4}))
                .unwrap(),
            (Policy::ActiveActive, Some(Selector::RoundRobin), Some(4))
        );
        assert_eq!(p(json!({"name": "B", "policy": "active_active", "rr_min_io": -1})).unwrap().2, None);
        for bad in [
            json!({"name": "B", "policy": "round_robin"}),
            json!({"name": "B", "policy": "active_active", "selector": "fastest"}),
            json!({"name": "B", "policy": "active_active", "rr_min_io": 0}),
            json!({"name": "B", "policy": "active_passive", "selector": "queue_depth"}),
        ] {
            assert_eq!(p(bad.clone()).unwrap_err().code, INVALID_PARAMS, "{bad}");
        }
        let e = p(json!({"name": "B", "policy": "round_robin"})).unwrap_err();
        assert!(e.message.contains("unknown policy 'round_robin'"), "{e}");
    }

    #[test]
    fn detach_filter_takes_the_given_fields() {
        let p: DetachController =
            parse_params(Some(&json!({"name": "Nvme0", "trtype": "tcp", "traddr": "127.0.0.2", "trsvcid": "4420"})))
                .unwrap();
        let f = p.filter().unwrap();
        assert_eq!(
            (f.traddr.as_deref(), f.trsvcid.as_deref(), f.subnqn.as_deref()),
            (Some("127.0.0.2"), Some("4420"), None)
        );
        let p: DetachController = parse_params(Some(&json!({"name": "Nvme0", "trtype": "fc"}))).unwrap();
        assert!(p.filter().is_err());
    }

    #[test]
    fn multipath_errors_map_to_spdk_codes() {
        assert_eq!(mp_error(MultipathError::NoSuchController("Nvme9".into())).code, ENODEV);
        assert_eq!(mp_error(MultipathError::NameTaken("Nvme0".into())).code, EEXIST);
        let e = mp_error(MultipathError::DuplicateCntlid { name: "Nvme0".into(), trid: "t".into(), cntlid: 1 });
        assert_eq!(e.code, EINVAL);
        assert!(e.message.contains("controller ID 1"), "{e}");
        assert_eq!(mp_error(MultipathError::InvalidParameter("x".into())).code, INVALID_PARAMS);
    }

    /// `bdev_nvme_attach_controller` as rpc.py v26.09-pre sends it (DESIGN.md's, over TCP).
    fn rpc_py_attach() -> Value {
        json!({"adrfam": "ipv4", "allow_unrecognized_csi": false, "ctrlr_loss_timeout_sec": -1, "ddgst": false,
               "disable_sq_flow_control": false, "hdgst": false, "multipath": "multipath", "name": "Nvme0",
               "prchk_guard": false, "prchk_reftag": false, "reconnect_delay_sec": 20,
               "subnqn": "nqn.2021-06.io.spdk:ctc_rbd0", "traddr": "127.0.0.3", "trsvcid": "4420", "trtype": "tcp"})
    }

    fn refused(message: &str) -> RpcError {
        RpcError::invalid_params(message)
    }

    #[test]
    fn rpc_py_attach_is_accepted_and_sq_flow_control_either_way() {
        let p = attach(rpc_py_attach()).unwrap();
        assert_eq!(p.trid, TransportId::tcp("127.0.0.3", "4420", "nqn.2021-06.io.spdk:ctc_rbd0"));
        let mut v = rpc_py_attach();
        v["disable_sq_flow_control"] = json!(true);
        let q = attach(v).unwrap();
        assert_eq!((q.trid, q.opts.reconnect), (p.trid, p.opts.reconnect));
    }

    #[test]
    fn attach_values_we_cannot_honour_are_refused_naming_the_field() {
        let no_pi = "corepath's host does not check protection information (its namespaces have none)";
        let cases = [
            ("prchk_guard", json!(true), format!("prchk_guard is not supported: {no_pi}")),
            ("prchk_reftag", json!(true), format!("prchk_reftag is not supported: {no_pi}")),
            (
                "allow_unrecognized_csi",
                json!(true),
                "allow_unrecognized_csi is not supported: corepath's host exposes namespaces of the NVM command set \
                 only"
                    .to_string(),
            ),
            ("psk", json!("key0"), "psk is not supported: corepath's NVMe/TCP has no TLS".to_string()),
            (
                "hostaddr",
                json!("127.0.0.1"),
                "hostaddr is not supported: corepath's host does not bind its connections to a source address"
                    .to_string(),
            ),
            (
                "dhchap_key",
                json!("key1"),
                "dhchap_key is not supported: corepath's host has no DH-HMAC-CHAP authentication".to_string(),
            ),
            ("trtype", json!("rdma"), "the RDMA transport is not implemented yet (issue 14)".to_string()),
        ];
        for (name, value, message) in cases {
            let mut v = rpc_py_attach();
            v[name] = value;
            assert_eq!(attach(v).unwrap_err(), refused(&message), "{name}");
        }
    }

    #[test]
    fn rpc_py_set_options_are_accepted_and_refused_only_when_asking_for_what_we_lack() {
        let d = set(json!({"action_on_timeout": "abort", "allow_accel_sequence": false, "delay_cmd_submit": true,
                           "disable_auto_failback": false, "enable_flush": false, "generate_uuids": false,
                           "io_path_stat": false, "keep_alive_timeout_ms": 10000, "nvme_error_stat": false,
                           "timeout_admin_us": 0, "timeout_us": 300000}))
        .unwrap();
        assert_eq!((d.opts.io_timeout_ms, d.opts.keep_alive_timeout_ms), (300, 10_000));
        assert_eq!(d.opts.action_on_timeout, TimeoutAction::Abort);
        // Tuning we do not have: any value.
        assert!(set(json!({"delay_cmd_submit": false, "allow_accel_sequence": true, "enable_flush": true})).is_ok());
        let cases = [
            (
                "disable_auto_failback",
                "corepath's active_passive policy always sends IO to the first healthy path, so it fails back by \
                 itself",
            ),
            ("generate_uuids", "corepath's host reports only the UUIDs namespaces have"),
            ("io_path_stat", "corepath's host keeps no per-path IO statistics"),
            ("nvme_error_stat", "corepath's host keeps no NVMe error counters"),
        ];
        for (name, why) in cases {
            let e = set(json!({ name: true })).unwrap_err();
            assert_eq!(e, refused(&format!("{name} is not supported: {why}")), "{name}");
        }
    }

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: HostCommand,
    }

    fn cli(args: &[&str]) -> HostRequest {
        Cli::try_parse_from(std::iter::once("corepath-rpc").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
            .into_request()
    }

    fn set(v: Value) -> Result<AttachDefaults, RpcError> {
        SetOptions::parse(Some(&v))?.apply(&ControllerOptions::default().into())
    }

    #[test]
    fn set_options_takes_timeouts_and_attach_defaults() {
        let d = set(json!({"action_on_timeout": "reset", "timeout_us": 1_500, "timeout_admin_us": 2_000_000,
                           "keep_alive_timeout_ms": 800, "ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": 2}))
        .unwrap();
        assert_eq!(d.opts.action_on_timeout, TimeoutAction::Reset);
        // 1.5 ms rounds up to 2 ms, never down to "no timeout".
        assert_eq!((d.opts.io_timeout_ms, d.opts.admin_timeout_ms, d.opts.keep_alive_timeout_ms), (2, 2_000, 800));
        let mut v = design_attach();
        v.as_object_mut().unwrap().remove("ctrlr_loss_timeout_sec");
        v.as_object_mut().unwrap().remove("reconnect_delay_sec");
        let p = attach_params(parse_params(Some(&v)).unwrap(), &d, "nqn.host").unwrap();
        assert_eq!(p.opts.reconnect.ctrlr_loss_timeout_ms, None);
        assert_eq!(p.opts.reconnect.reconnect_delay_ms, 2_000);
        assert_eq!(p.opts.io_timeout_ms, 2);
        // The default action is abort, as the issue of command timeouts asks.
        assert_eq!(set(json!({"timeout_us": 0})).unwrap().opts.action_on_timeout, TimeoutAction::Abort);
    }

    #[test]
    fn set_options_refuses_bad_values_and_names_and_loads_spdks_tuning_keys() {
        let e = set(json!({"action_on_timeout": "panic"})).unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        assert!(e.message.contains("unknown action_on_timeout 'panic'"), "{}", e.message);
        let e = set(json!({"ctrlr_loss_timeout_sec": 10})).unwrap_err();
        assert!(e.message.contains("reconnect_delay_sec must be non-zero"), "{}", e.message);
        let e = set(json!({"timeout_usec": 5})).unwrap_err();
        assert!(e.message.contains("timeout_usec"), "{}", e.message);
        // What SPDK's save_config writes for tuning we do not have loads and changes nothing else.
        let d = set(json!({"bdev_retry_count": 3, "transport_retry_count": 4, "timeout_us": 0,
                           "action_on_timeout": "none"}))
        .unwrap();
        assert_eq!((d.opts.io_timeout_ms, d.opts.action_on_timeout), (0, TimeoutAction::None));
    }

    #[test]
    fn set_options_flags_are_rpc_pys() {
        let r = cli(&[
            "bdev_nvme_set_options",
            "-a",
            "abort",
            "-t",
            "500000",
            "--timeout-admin-us",
            "1000000",
            "-k",
            "800",
            "-l",
            "-1",
            "-o",
            "1",
        ]);
        assert_eq!(r.method, "bdev_nvme_set_options");
        assert_eq!(
            r.params,
            json!({"action_on_timeout": "abort", "timeout_us": 500_000, "timeout_admin_us": 1_000_000,
                   "keep_alive_timeout_ms": 800, "ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": 1})
        );
        let d = set(r.params).unwrap();
        assert_eq!((d.opts.io_timeout_ms, d.opts.admin_timeout_ms), (500, 1_000));
    }

    #[test]
    fn rpc_py_flags_build_spdk_params() {
        let r = cli(&[
            "bdev_nvme_attach_controller",
            "-b",
            "Nvme0",
            "-t",
            "tcp",
            "-f",
            "ipv4",
            "-a",
            "127.0.0.2",
            "-s",
            "4420",
            "-n",
            "nqn.2021-06.io.spdk:ctc_rbd0",
            "-x",
            "multipath",
            "-l",
            "-1",
            "-o",
            "20",
            "-u",
            "30",
            "-k",
            "2000",
            "--hdgst",
        ]);
        assert_eq!(r.method, "bdev_nvme_attach_controller");
        assert_eq!(
            r.params,
            json!({"name": "Nvme0", "trtype": "tcp", "traddr": "127.0.0.2", "adrfam": "ipv4", "trsvcid": "4420",
                   "subnqn": "nqn.2021-06.io.spdk:ctc_rbd0", "multipath": "multipath",
                   "ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": 20, "fast_io_fail_timeout_sec": 30,
                   "keep_alive_timeout_ms": 2000, "hdgst": true})
        );
        // The params the CLI builds are ones the server accepts.
        assert!(attach(r.params).is_ok());
        assert_eq!(cli(&["bdev_nvme_get_controllers", "-n", "Nvme0"]).params, json!({"name": "Nvme0"}));
        assert_eq!(cli(&["bdev_nvme_get_io_paths"]).params, json!({}));
        let r = cli(&[
            "bdev_nvme_set_multipath_policy",
            "-b",
            "Nvme0n1",
            "-p",
            "active_active",
            "-s",
            "round_robin",
            "-r",
            "2",
        ]);
        assert_eq!(
            r.params,
            json!({"name": "Nvme0n1", "policy": "active_active", "selector": "round_robin", "rr_min_io": 2})
        );
        assert!(!r.prints_result);
        assert_eq!(
            cli(&["bdev_nvme_set_preferred_path", "-b", "Nvme0n1", "-c", "32761"]).params,
            json!({"name": "Nvme0n1", "cntlid": 32761})
        );
        assert_eq!(
            cli(&["bdev_nvme_detach_controller", "Nvme0", "-t", "tcp", "-a", "127.0.0.2", "-s", "4420"]).params,
            json!({"name": "Nvme0", "trtype": "tcp", "traddr": "127.0.0.2", "trsvcid": "4420"})
        );
        assert_eq!(
            cli(&["bdev_nvme_reset_controller", "Nvme0", "-c", "1"]).params,
            json!({"name": "Nvme0", "cntlid": 1})
        );
    }

    #[test]
    fn result_shapes_have_spdks_keys() {
        let t = TransportId::tcp("127.0.0.3", "4420", "nqn.x");
        let paths = vec![vec![IoPathInfo {
            bdev_name: "Nvme0n1".into(),
            cntlid: 32761,
            current: true,
            connected: true,
            accessible: true,
            trid: t,
        }]];
        let v = io_paths_json(&paths);
        let p = &v["poll_groups"][0]["io_paths"][0];
        assert_eq!(p["cntlid"], 32761);
        assert_eq!(
            p["transport"],
            json!({"trtype": "TCP", "traddr": "127.0.0.3", "trsvcid": "4420", "adrfam": "IPv4"})
        );
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["bdev_name", "cntlid", "current", "connected", "accessible", "transport"]);
    }
}
