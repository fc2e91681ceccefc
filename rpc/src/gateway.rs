//! The gateway's RPC handler set: SPDK's `bdev_malloc_*`, `bdev_null_*`,
//! `bdev_aio_*`, `bdev_get_bdevs`, `nvmf_*` and `framework_get_reactors`, applied to a
//! shared [`TargetState`] and, for listeners, to the data plane.

use std::sync::{Arc, Mutex, MutexGuard};

use engine::TargetOptions;
use serde_json::Value;
use target::config::{ListenAddress, TargetState};

use crate::error::RpcError;
use crate::router::{ConfigSection, RpcHandler};
use crate::{bdev, nvmf};

/// What the RPC layer needs from the data plane (reactors, listeners).
///
/// Calls come from the RPC server's threads, serialised: at most one
/// configuration change runs at a time, and the [`TargetState`] mutex is NOT
/// held during these calls, so an implementation may lock the state itself.
pub trait DataPlane: Send + Sync {
    /// Starts accepting connections on `addr` with the transport's options.
    fn listen(&self, addr: &ListenAddress, opts: &TargetOptions) -> Result<(), String>;
    /// Stops accepting on `addr` (connections already accepted may be torn down).
    fn stop_listening(&self, addr: &ListenAddress) -> Result<(), String>;
    /// The `framework_get_reactors` result.
    fn reactors(&self) -> Value;
}

/// Methods [`GatewayRpc`] answers.
pub const GATEWAY_METHODS: [&str; 22] = [
    "bdev_malloc_create",
    "bdev_malloc_delete",
    "bdev_null_create",
    "bdev_null_delete",
    "bdev_aio_create",
    "bdev_aio_delete",
    "bdev_get_bdevs",
    "nvmf_create_transport",
    "nvmf_get_transports",
    "nvmf_create_subsystem",
    "nvmf_delete_subsystem",
    "nvmf_subsystem_add_ns",
    "nvmf_subsystem_remove_ns",
    "nvmf_subsystem_add_listener",
    "nvmf_subsystem_remove_listener",
    "nvmf_subsystem_add_host",
    "nvmf_subsystem_remove_host",
    "nvmf_subsystem_allow_any_host",
    "nvmf_get_subsystems",
    "nvmf_subsystem_listener_set_ana_state",
    "nvmf_subsystem_get_listeners",
    "framework_get_reactors",
];

/// The gateway's RPC methods over shared configuration state and a data plane.
pub struct GatewayRpc {
    state: Arc<Mutex<TargetState>>,
    data_plane: Arc<dyn DataPlane>,
    /// Serialises configuration changes that also touch the data plane, so that
    /// "first user of an address starts the socket, last one stops it" holds.
    change_lock: Mutex<()>,
}

impl GatewayRpc {
    /// Handlers over `state`, starting and stopping listeners through `data_plane`.
    pub fn new(state: Arc<Mutex<TargetState>>, data_plane: Arc<dyn DataPlane>) -> Self {
        GatewayRpc { state, data_plane, change_lock: Mutex::new(()) }
    }

    /// The shared configuration.
    pub fn state(&self) -> &Arc<Mutex<TargetState>> {
        &self.state
    }

    /// Locks the state. A panic while it was held cannot leave it half-changed
    /// (every TargetState method validates before it mutates), so a poisoned
    /// lock is taken over rather than taking the control plane down.
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, TargetState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Held across a configuration change that involves the data plane.
    pub(crate) fn change_guard(&self) -> MutexGuard<'_, ()> {
        self.change_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn data_plane(&self) -> &dyn DataPlane {
        &*self.data_plane
    }
}

impl RpcHandler for GatewayRpc {
    fn call(&self, method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
        match method {
            "bdev_malloc_create" => bdev::malloc_create(self, params),
            "bdev_malloc_delete" => bdev::malloc_delete(self, params),
            "bdev_null_create" => bdev::null_create(self, params),
            "bdev_null_delete" => bdev::null_delete(self, params),
            "bdev_aio_create" => bdev::aio_create(self, params),
            "bdev_aio_delete" => bdev::aio_delete(self, params),
            "bdev_get_bdevs" => bdev::get_bdevs(self, params),
            "nvmf_create_transport" => nvmf::create_transport(self, params),
            "nvmf_get_transports" => nvmf::get_transports(self, params),
            "nvmf_create_subsystem" => nvmf::create_subsystem(self, params),
            "nvmf_delete_subsystem" => nvmf::delete_subsystem(self, params),
            "nvmf_subsystem_add_ns" => nvmf::add_ns(self, params),
            "nvmf_subsystem_remove_ns" => nvmf::remove_ns(self, params),
            "nvmf_subsystem_add_listener" => nvmf::add_listener(self, params),
            "nvmf_subsystem_remove_listener" => nvmf::remove_listener(self, params),
            "nvmf_subsystem_add_host" => nvmf::add_host(self, params),
            "nvmf_subsystem_remove_host" => nvmf::remove_host(self, params),
            "nvmf_subsystem_allow_any_host" => nvmf::allow_any_host(self, params),
            "nvmf_get_subsystems" => nvmf::get_subsystems(self, params),
            "nvmf_subsystem_listener_set_ana_state" => nvmf::listener_set_ana_state(self, params),
            "nvmf_subsystem_get_listeners" => nvmf::get_listeners(self, params),
            "framework_get_reactors" => nvmf::get_reactors(self, params),
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    fn methods(&self) -> Vec<&'static str> {
        GATEWAY_METHODS.to_vec()
    }

    fn save_config(&self) -> Vec<ConfigSection> {
        let state = self.lock_state();
        vec![
            ConfigSection { subsystem: "bdev", config: state.bdev_config_json() },
            ConfigSection { subsystem: "nvmf", config: state.nvmf_config_json() },
        ]
    }
}

/// A data plane that accepts every listener and opens nothing: for checking a
/// configuration file, and for fuzzing and tests of the control plane alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDataPlane;

impl DataPlane for NoDataPlane {
    fn listen(&self, _addr: &ListenAddress, _opts: &TargetOptions) -> Result<(), String> {
        Ok(())
    }

    fn stop_listening(&self, _addr: &ListenAddress) -> Result<(), String> {
        Ok(())
    }

    fn reactors(&self) -> Value {
        serde_json::json!({ "tick_rate": 0, "reactors": [] })
    }
}
