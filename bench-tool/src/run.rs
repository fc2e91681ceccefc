//! The top of a run: start the in-process gateways (embedded mode) or take the
//! remote transport IDs, then hand the run to one IO source, the engine's raw
//! single-path IO (one path without multipath options: the perf baseline) or
//! the multipath bdev, and return the jobs' statistics for the report.

use std::sync::atomic::{AtomicBool, Ordering};

use engine::TransportId;

use crate::cli::{BenchConfig, TargetMode};
use crate::embedded::{EmbeddedGateway, EmbeddedPair};
use crate::io_source::{RunError, RunOutcome};
use crate::multipath_run::{run_multipath, KillA};
use crate::single_path::run_single_path;

/// Runs the benchmark described by `config` and returns each job's outcome.
pub fn run_job(config: &BenchConfig) -> Result<RunOutcome, RunError> {
    let cores: Vec<usize> = config.cores.iter().map(|&c| c as usize).collect();
    let embedded_err = |e: anyhow::Error| RunError::Embedded(format!("{e:#}"));
    match &config.target {
        TargetMode::Embedded { listen, gateways, kill_a_after_ns, file } if *gateways >= 2 => {
            // Keep the gateways alive for the whole run; they stop when dropped.
            let mut pair = EmbeddedPair::start(listen, &cores, file.as_deref()).map_err(embedded_err)?;
            let trids = pair.trids().to_vec();
            let kill = kill_a_after_ns.map(|after_ns| KillA { after_ns, pair: &mut pair });
            run_multipath(config, &trids, kill)
        }
        TargetMode::Embedded { listen, .. } => {
            let gw = EmbeddedGateway::start(listen, &cores).map_err(embedded_err)?;
            let trids = gw.trids().to_vec();
            let outcome = run_single_or_multi(config, &trids);
            drop(gw);
            outcome
        }
        TargetMode::Remote { trids } => run_single_or_multi(config, trids),
    }
}

fn run_single_or_multi(config: &BenchConfig, trids: &[TransportId]) -> Result<RunOutcome, RunError> {
    if config.uses_multipath() {
        return run_multipath(config, trids, None);
    }
    let jobs = run_single_path(config, trids)?;
    Ok(RunOutcome { jobs, multipath: None })
}

/// Set by SIGINT (Ctrl-C) or [`request_stop`]: every job stops issuing, lets
/// its outstanding IOs complete and reports what it did, as fio does.
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks the running jobs to stop early (what Ctrl-C does).
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

/// Whether the jobs were asked to stop early.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
    fn _exit(status: i32) -> !;
}

/// Linux's SIGINT.
const SIGINT: i32 = 2;

extern "C" fn on_sigint(_signum: i32) {
    // A second Ctrl-C while the jobs drain ends the process at once, with the
    // shell's status for a SIGINT death.
    if STOP.swap(true, Ordering::Relaxed) {
        // SAFETY: _exit is async-signal-safe and takes any status.
        unsafe { _exit(130) }
    }
}

/// Makes Ctrl-C (SIGINT) stop the jobs and let the report be printed
/// instead of killing the process (a second one kills it).
pub fn install_sigint_handler() {
    let handler: extern "C" fn(i32) = on_sigint;
    // SAFETY: the handler only touches an atomic and calls _exit, both
    // async-signal-safe; `signal` installs it with glibc's BSD semantics
    // (SA_RESTART, stays installed).
    unsafe {
        signal(SIGINT, handler as usize);
    }
}
