//! What every gateway RPC method works on: the shared configuration state, the
//! lock that serialises changes touching the data plane, and the data plane
//! itself ([`DataPlane`]). The methods (`bdev`, `nvmf`) take a [`GatewayRpc`];
//! `gateway_methods` routes requests to them.

use std::sync::{Arc, Mutex, MutexGuard};

use engine::{TargetOptions, TrType};
use gateway::config::{ListenAddress, TargetState};
use serde_json::{Map, Value};

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
    /// The live controllers of subsystem `nqn`, each in SPDK's
    /// `nvmf_subsystem_get_controllers` shape.
    fn controllers(&self, nqn: &str) -> Vec<Value>;
    /// The configuration changed: the data plane applies it now rather than
    /// at its next periodic look (sleeping reactors are woken).
    fn config_changed(&self) {}
}

/// The gateway's RPC methods over shared configuration state and a data plane.
pub struct GatewayRpc {
    state: Arc<Mutex<TargetState>>,
    data_plane: Arc<dyn DataPlane>,
    /// Serialises configuration changes that also touch the data plane, so that
    /// "first user of an address starts the socket, last one stops it" holds.
    change_lock: Mutex<()>,
    /// Per transport, the SPDK options its `nvmf_create_transport` set that
    /// have no effect here, echoed by `nvmf_get_transports` and `save_config`
    /// (so a saved configuration replays them). Transports are never deleted,
    /// so entries live as long as the transport.
    reported_transport_options: Mutex<Vec<(TrType, Map<String, Value>)>>,
}

impl GatewayRpc {
    /// Handlers over `state`, starting and stopping listeners through `data_plane`.
    pub fn new(state: Arc<Mutex<TargetState>>, data_plane: Arc<dyn DataPlane>) -> Self {
        GatewayRpc {
            state,
            data_plane,
            change_lock: Mutex::new(()),
            reported_transport_options: Mutex::new(Vec::new()),
        }
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

    /// Records the without-effect options of a transport just created.
    pub(crate) fn set_transport_options_reported(&self, trtype: TrType, options: Map<String, Value>) {
        let mut all = self.reported_transport_options.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        all.retain(|(t, _)| *t != trtype);
        all.push((trtype, options));
    }

    /// Adds the recorded without-effect options to a transport's JSON (an
    /// `nvmf_get_transports` entry or `save_config` params: both carry
    /// `trtype`), after the options the gateway reports itself.
    pub(crate) fn add_reported_transport_options(&self, transport: &mut Value) {
        let Value::Object(object) = transport else { return };
        let Some(trtype) = object.get("trtype").and_then(Value::as_str).and_then(|t| t.parse::<TrType>().ok()) else {
            return;
        };
        let all = self.reported_transport_options.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, options)) = all.iter().find(|(t, _)| *t == trtype) {
            for (name, value) in options {
                object.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
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

    fn controllers(&self, _nqn: &str) -> Vec<Value> {
        Vec::new()
    }
}
