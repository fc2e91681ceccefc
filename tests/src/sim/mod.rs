//! Deterministic simulation of multipath failover (issue 5, acceptance 8):
//! the real host engine (controller supervisor, keep-alive, reconnect), the
//! real multipath bdev and channel (path choice, retry, stale-write barrier)
//! and two real gateways, joined by the simulated fabric and run on one
//! thread on a manual clock, with faults drawn from a seed. A seed is the
//! whole input: the same seed gives the same run, event for event.
//!
//! The invariants checked (see docs/simulation.md): no IO error reaches the
//! application; no IO completes twice and every IO completes; a read returns
//! the last acknowledged write; the store never holds a version older than
//! the last acknowledged one (stale write) and, at the end, holds exactly
//! it; no reconnect storm; every path and gateway settles with no leaked
//! queue pair.

mod seed;
pub mod trace;
pub mod workload;
mod world;

pub use seed::{SeedReport, SimConfig};

/// Runs one seed.
pub fn run_seed(seed: u64, cfg: &SimConfig) -> SeedReport {
    world::World::new(seed, cfg).run()
}

/// Runs seeds `start..start + count` on `threads` threads; returns the reports of failing seeds (sorted by seed)
/// and the number of seeds run.
pub fn run_seeds(
    start: u64,
    count: u64,
    threads: usize,
    cfg: &SimConfig,
    stop_at_first: bool,
) -> (Vec<SeedReport>, u64) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let next = AtomicU64::new(start);
    let ran = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= start + count {
                    break;
                }
                let r = run_seed(seed, cfg);
                ran.fetch_add(1, Ordering::Relaxed);
                if r.violation.is_some() {
                    failures.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    if stop_at_first {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut f = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    f.sort_by_key(|r| r.seed);
    (f, ran.load(Ordering::Relaxed))
}
