//! Where the engine plugs in: connect (or start the in-process gateway),
//! learn the namespace's geometry, run one [`Job`](crate::job::Job) per core
//! and hand back the jobs' statistics. Not wired yet.
//!
//! What the wiring has to do, in order:
//! 1. start the target (`config.target`), connect to the namespace with
//!    `config.header_digest`/`config.data_digest`;
//! 2. [`plan_jobs`](crate::plan::plan_jobs)`(config, geometry, run_nonce)` →
//!    one [`JobSpec`](crate::job::JobSpec) per core;
//! 3. per core (pinned to `spec.core`): `Job::new(spec)`, one data buffer of
//!    `spec.io_size_bytes` per slot (`spec.iodepth` slots), then the loop in
//!    [`crate::job`]'s docs until `job.is_done()`;
//! 4. meanwhile, on the main thread: [`StatusLine`](crate::status::StatusLine)
//!    fed from each job's `live_counters().snapshot()`;
//! 5. return one [`JobReport`] per job, in core order.

use crate::cli::BenchConfig;
use crate::report::JobReport;

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    /// The engine is not connected to this tool yet.
    #[error("engine glue not wired yet")]
    NotWired,
}

/// Runs the benchmark described by `config` and returns each job's outcome.
pub fn run_job(config: &BenchConfig) -> Result<Vec<JobReport>, GlueError> {
    let _ = config;
    Err(GlueError::NotWired)
}
