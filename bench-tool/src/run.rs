//! The top of a run: start the in-process gateways (embedded mode) or take the
//! remote transport IDs, then hand the run to one IO source, the engine's raw
//! single-path IO (one path without multipath options: the perf baseline) or
//! the multipath bdev, and return the jobs' statistics for the report.

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
