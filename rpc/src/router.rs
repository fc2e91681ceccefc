//! Dispatch: handler sets (the gateway's methods, the host's `bdev_nvme_*`)
//! composed into one [`Router`] that also answers the framework methods
//! `rpc_get_methods`, `spdk_get_version`, `save_config`,
//! `framework_get_config` and `framework_get_subsystems`, and that names the
//! SPDK methods of later issues ([`NOT_IMPLEMENTED_YET`]) when they are called.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{RpcError, METHOD_NOT_FOUND};
use crate::params::{expect_no_params, parse_params};

/// A set of RPC methods.
pub trait RpcHandler: Send + Sync {
    /// Runs `method`, one of [`RpcHandler::methods`].
    fn call(&self, method: &str, params: Option<&Value>) -> Result<Value, RpcError>;

    /// The methods this handler answers.
    fn methods(&self) -> Vec<&'static str>;

    /// This handler's part of `save_config`: replayable calls per SPDK subsystem
    /// ("bdev", "nvmf"). Sections of several handlers with the same name are joined.
    fn save_config(&self) -> Vec<ConfigSection> {
        Vec::new()
    }
}

/// One SPDK subsystem's calls in `save_config` output.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSection {
    /// SPDK subsystem name ("bdev", "nvmf").
    pub subsystem: &'static str,
    /// `{"method": .., "params": ..}` objects, in replay order.
    pub config: Vec<Value>,
}

/// Order in which subsystems are saved and replayed: what others depend on first.
pub const SUBSYSTEM_ORDER: [&str; 2] = ["bdev", "nvmf"];

const BUILTIN_METHODS: [&str; 5] =
    ["rpc_get_methods", "spdk_get_version", "save_config", "framework_get_config", "framework_get_subsystems"];

/// SPDK methods that later issues implement, with what each answers until
/// then: -32601 (method not found), as SPDK built without the module answers,
/// with a message that says what is missing. A handler that registers one of
/// these names takes precedence, so the list only shrinks.
pub const NOT_IMPLEMENTED_YET: [(&str, &str); 6] = [
    ("bdev_rbd_register_cluster", RBD_NOT_IMPLEMENTED),
    ("bdev_rbd_unregister_cluster", RBD_NOT_IMPLEMENTED),
    ("bdev_rbd_get_clusters_info", RBD_NOT_IMPLEMENTED),
    ("bdev_rbd_create", RBD_NOT_IMPLEMENTED),
    ("bdev_rbd_delete", RBD_NOT_IMPLEMENTED),
    ("bdev_rbd_resize", RBD_NOT_IMPLEMENTED),
];

const RBD_NOT_IMPLEMENTED: &str = "Ceph RBD bdevs are not implemented yet (issue 13)";

/// SPDK subsystems, in initialisation order, with the ones each depends on
/// (`framework_get_subsystems`), and the method prefix that shows a router
/// has them.
const SUBSYSTEMS: [(&str, &[&str], &str); 2] = [("bdev", &[], "bdev_"), ("nvmf", &["bdev"], "nvmf_")];

/// Routes each method to the handler that registered it.
#[derive(Default)]
pub struct Router {
    handlers: Vec<Arc<dyn RpcHandler>>,
    by_method: HashMap<&'static str, usize>,
}

impl Router {
    /// A router with only the built-in methods.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds a handler set; fails if one of its methods is already routed.
    pub fn add(&mut self, handler: Arc<dyn RpcHandler>) -> Result<(), RpcError> {
        let methods = handler.methods();
        if let Some(m) = methods.iter().find(|m| BUILTIN_METHODS.contains(m) || self.by_method.contains_key(*m)) {
            return Err(RpcError::internal(format!("method {m} registered twice")));
        }
        let index = self.handlers.len();
        self.handlers.push(handler);
        self.by_method.extend(methods.into_iter().map(|m| (m, index)));
        Ok(())
    }

    /// All methods, sorted.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut methods: Vec<&'static str> = self.by_method.keys().copied().chain(BUILTIN_METHODS).collect();
        methods.sort_unstable();
        methods
    }

    /// Runs a method. A handler that panics answers -32603 instead of taking
    /// the server down.
    pub fn call(&self, method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
        match catch_unwind(AssertUnwindSafe(|| self.call_inner(method, params))) {
            Ok(result) => result,
            Err(_) => Err(RpcError::internal(format!("{method} failed unexpectedly"))),
        }
    }

    fn call_inner(&self, method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
        match method {
            "rpc_get_methods" => {
                /// Both accepted, neither changes the list: every method here
                /// may be called at any time (there is no start-up-only state
                /// as SPDK's `--wait-for-rpc`, so `current` lists the same),
                /// and there are no deprecated aliases to include.
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                #[allow(dead_code)]
                struct GetMethods {
                    current: Option<bool>,
                    include_aliases: Option<bool>,
                }
                let _: GetMethods = parse_params(params)?;
                Ok(json!(self.methods()))
            }
            "spdk_get_version" => {
                expect_no_params(method, params)?;
                Ok(version_json())
            }
            "save_config" => {
                expect_no_params(method, params)?;
                Ok(self.save_config())
            }
            "framework_get_config" => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct GetConfig {
                    name: String,
                }
                let p: GetConfig = parse_params(params)?;
                self.sections()
                    .into_iter()
                    .find(|s| s.subsystem == p.name)
                    .map(|s| Value::Array(s.config))
                    .ok_or_else(|| RpcError::invalid_params(format!("unknown subsystem '{}'", p.name)))
            }
            "framework_get_subsystems" => {
                expect_no_params(method, params)?;
                Ok(self.subsystems())
            }
            _ => match self.by_method.get(method).and_then(|&i| self.handlers.get(i)) {
                Some(handler) => handler.call(method, params),
                None => match NOT_IMPLEMENTED_YET.iter().find(|(m, _)| *m == method) {
                    Some((_, why)) => Err(RpcError::new(METHOD_NOT_FOUND, format!("{method}: {why}"))),
                    None => Err(RpcError::method_not_found(method)),
                },
            },
        }
    }

    /// `framework_get_subsystems`: SPDK's `[{"subsystem", "depends_on"}]` for
    /// the subsystems whose methods this router serves (a gateway: bdev and
    /// nvmf; a host: bdev).
    fn subsystems(&self) -> Value {
        let list: Vec<Value> = SUBSYSTEMS
            .iter()
            .filter(|(_, _, prefix)| self.by_method.keys().any(|m| m.starts_with(prefix)))
            .map(|(name, depends_on, _)| json!({"subsystem": name, "depends_on": depends_on}))
            .collect();
        Value::Array(list)
    }

    /// Every handler's sections, joined by subsystem, in [`SUBSYSTEM_ORDER`] then first-seen order.
    fn sections(&self) -> Vec<ConfigSection> {
        let mut sections: Vec<ConfigSection> = Vec::new();
        for section in self.handlers.iter().flat_map(|h| h.save_config()) {
            match sections.iter_mut().find(|s| s.subsystem == section.subsystem) {
                Some(existing) => existing.config.extend(section.config),
                None => sections.push(section),
            }
        }
        let rank = |name: &str| SUBSYSTEM_ORDER.iter().position(|n| *n == name).unwrap_or(SUBSYSTEM_ORDER.len());
        sections.sort_by_key(|s| rank(s.subsystem)); // stable: others keep first-seen order
        sections
    }

    /// SPDK's `save_config` document: `{"subsystems": [{"subsystem", "config"}]}`.
    pub fn save_config(&self) -> Value {
        let subsystems: Vec<Value> =
            self.sections().into_iter().map(|s| json!({"subsystem": s.subsystem, "config": s.config})).collect();
        json!({ "subsystems": subsystems })
    }
}

/// `spdk_get_version`'s result, in SPDK's shape.
fn version_json() -> Value {
    let number = |s: &str| s.parse::<u32>().unwrap_or(0);
    json!({
        "version": format!("corepath v{}", env!("CARGO_PKG_VERSION")),
        "fields": {
            "major": number(env!("CARGO_PKG_VERSION_MAJOR")),
            "minor": number(env!("CARGO_PKG_VERSION_MINOR")),
            "patch": number(env!("CARGO_PKG_VERSION_PATCH")),
            "suffix": env!("CARGO_PKG_VERSION_PRE"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{INTERNAL_ERROR, INVALID_PARAMS};

    struct Echo;
    impl RpcHandler for Echo {
        fn call(&self, method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
            match method {
                "echo" => Ok(params.cloned().unwrap_or(Value::Null)),
                _ => panic!("boom"),
            }
        }
        fn methods(&self) -> Vec<&'static str> {
            vec!["echo", "explode"]
        }
        fn save_config(&self) -> Vec<ConfigSection> {
            vec![
                ConfigSection { subsystem: "nvmf", config: vec![json!({"method": "n"})] },
                ConfigSection { subsystem: "bdev", config: vec![json!({"method": "b"})] },
            ]
        }
    }

    #[test]
    fn routes_methods_and_answers_builtins() {
        let mut router = Router::new();
        router.add(Arc::new(Echo)).unwrap();
        assert_eq!(router.call("echo", Some(&json!({"a": 1}))), Ok(json!({"a": 1})));
        assert_eq!(router.call("nope", None).unwrap_err().code, METHOD_NOT_FOUND);
        let methods = router.call("rpc_get_methods", None).unwrap();
        assert!(methods.as_array().unwrap().contains(&json!("echo")));
        let version = router.call("spdk_get_version", None).unwrap();
        assert_eq!(version["version"], "corepath v0.1.0");
        assert_eq!(version["fields"], json!({"major": 0, "minor": 1, "patch": 0, "suffix": ""}));
        assert_eq!(router.call("spdk_get_version", Some(&json!({"x": 1}))).unwrap_err().code, INVALID_PARAMS);
        assert!(router.add(Arc::new(Echo)).is_err(), "duplicate methods are refused");
    }

    #[test]
    fn a_panicking_handler_answers_internal_error() {
        let mut router = Router::new();
        router.add(Arc::new(Echo)).unwrap();
        assert_eq!(router.call("explode", None).unwrap_err().code, INTERNAL_ERROR);
        assert!(router.call("echo", None).is_ok());
    }

    #[test]
    fn save_config_puts_bdev_before_nvmf() {
        let mut router = Router::new();
        router.add(Arc::new(Echo)).unwrap();
        let config = router.save_config();
        assert_eq!(config["subsystems"][0]["subsystem"], "bdev");
        assert_eq!(config["subsystems"][1]["subsystem"], "nvmf");
        assert_eq!(router.call("framework_get_config", Some(&json!({"name": "nvmf"}))), Ok(json!([{"method": "n"}])));
    }
}
