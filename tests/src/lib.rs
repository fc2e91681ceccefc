//! Helpers of corepath's end-to-end tests: built binaries and daemons that
//! die with the test, an in-process gateway, a host engine with blocking and
//! pipelined IO, data patterns, and a raw NVMe/TCP host that sends any
//! command (for the bad-input tests).
//!
//! The tests themselves live in `tests/`; this crate owns no product code.
#![warn(missing_docs)]

pub mod bins;
pub mod gateway;
pub mod host;
pub mod mplab;
pub mod pattern;
pub mod raw_host;
pub mod sim;
pub mod vmlab;

use std::time::{Duration, Instant};

/// Calls `f` every `interval` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, interval: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// The cores to pin an in-process gateway and a host engine to: different
/// cores when the machine has two or more, so neither starves the other.
pub fn gateway_and_host_cores() -> (usize, usize) {
    let online = std::thread::available_parallelism().map_or(1, usize::from);
    if online >= 2 {
        (1, 0)
    } else {
        (0, 0)
    }
}

/// (traddr, state, cntlid) of each path of the first controller in a
/// `bdev_nvme_get_controllers` result (empty strings and 0 where absent).
pub fn controller_paths(ctrlrs: &serde_json::Value) -> Vec<(String, String, u64)> {
    ctrlrs[0]["ctrlrs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["trid"]["traddr"].as_str().unwrap_or("").to_string(),
                        c["state"].as_str().unwrap_or("").to_string(),
                        c["cntlid"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
