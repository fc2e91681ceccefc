//! Replays a `save_config` document through the router, so that loading a
//! configuration does exactly what the same RPC calls would (listeners start).

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::router::{Router, SUBSYSTEM_ORDER};

/// SPDK methods that appear in SPDK's own `save_config` output and have no
/// equivalent here (global tuning); loading skips them instead of failing.
const IGNORED_METHODS: [&str; 9] = [
    "bdev_set_options",
    "bdev_wait_for_examine",
    "bdev_nvme_set_options",
    "bdev_nvme_set_hotplug",
    "bdev_raid_set_options",
    "bdev_iscsi_set_options",
    "nvmf_set_config",
    "nvmf_set_max_subsystems",
    "nvmf_set_crdt",
];

/// Reads a `save_config` file and replays it; see [`load_config`].
pub fn load_config_file(path: impl AsRef<Path>, router: &Router) -> anyhow::Result<()> {
    let path = path.as_ref();
    let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let config: Value = serde_json::from_slice(&text).with_context(|| format!("parse {} as JSON", path.display()))?;
    load_config(&config, router).with_context(|| format!("load {}", path.display()))
}

/// Replays `{"subsystems": [{"subsystem", "config": [{"method", "params"}]}]}`:
/// "bdev" first, then "nvmf", then the others in file order; calls in order.
/// Stops at the first failing call.
pub fn load_config(config: &Value, router: &Router) -> anyhow::Result<()> {
    let subsystems =
        config.get("subsystems").and_then(Value::as_array).context("expected an object with a \"subsystems\" array")?;
    let name_of = |s: &Value| s.get("subsystem").and_then(Value::as_str).unwrap_or("").to_string();
    let rank = |s: &Value| SUBSYSTEM_ORDER.iter().position(|n| *n == name_of(s)).unwrap_or(SUBSYSTEM_ORDER.len());
    let mut ordered: Vec<&Value> = subsystems.iter().collect();
    ordered.sort_by_key(|s| rank(s)); // stable: the rest keep file order
    let known = router.methods();
    for subsystem in ordered {
        let name = name_of(subsystem);
        let calls = match subsystem.get("config") {
            None | Some(Value::Null) => continue, // SPDK writes null for an empty subsystem
            Some(Value::Array(calls)) => calls,
            Some(_) => bail!("subsystem '{name}': config is not an array"),
        };
        for (index, call) in calls.iter().enumerate() {
            let method = call
                .get("method")
                .and_then(Value::as_str)
                .with_context(|| format!("subsystem '{name}' entry {index}: no method"))?;
            if !known.contains(&method) && IGNORED_METHODS.contains(&method) {
                continue;
            }
            router
                .call(method, call.get("params").filter(|p| !p.is_null()))
                .map_err(|e| anyhow::anyhow!("{method} failed: {} (code {})", e.message, e.code))
                .with_context(|| format!("subsystem '{name}' entry {index}"))?;
        }
    }
    Ok(())
}
