//! The gateway's RPC method table: SPDK's `bdev_malloc_*`, `bdev_null_*`,
//! `bdev_aio_*`, `bdev_get_bdevs`, `nvmf_*` and `framework_get_reactors`, each
//! routed to its handler in `bdev` or `nvmf`, and the gateway's `save_config`.

use serde_json::Value;

use crate::error::RpcError;
use crate::gateway_rpc::GatewayRpc;
use crate::router::{ConfigSection, RpcHandler};
use crate::{bdev, nvmf};

/// Methods [`GatewayRpc`] answers.
pub const GATEWAY_METHODS: [&str; 23] = [
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
    "nvmf_subsystem_get_controllers",
    "framework_get_reactors",
];

impl GatewayRpc {
    /// Runs `method` (the router's name for it).
    fn route(&self, method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
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
            "nvmf_subsystem_get_controllers" => nvmf::get_controllers(self, params),
            "framework_get_reactors" => nvmf::get_reactors(self, params),
            _ => Err(RpcError::method_not_found(method)),
        }
    }
}

impl RpcHandler for GatewayRpc {
    fn call(&self, method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
        let result = self.route(method, params);
        if result.is_ok() && !method.contains("_get_") {
            // Sleeping reactors learn of it now, not at their next periodic look.
            self.data_plane().config_changed();
        }
        result
    }

    fn methods(&self) -> Vec<&'static str> {
        GATEWAY_METHODS.to_vec()
    }

    fn save_config(&self) -> Vec<ConfigSection> {
        let (bdev, mut nvmf) = {
            let state = self.lock_state();
            (state.bdev_config_json(), state.nvmf_config_json())
        };
        for call in nvmf.iter_mut().filter(|c| c["method"] == "nvmf_create_transport") {
            if let Some(params) = call.get_mut("params") {
                self.add_reported_transport_options(params);
            }
        }
        vec![ConfigSection { subsystem: "bdev", config: bdev }, ConfigSection { subsystem: "nvmf", config: nvmf }]
    }
}
