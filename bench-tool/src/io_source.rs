//! What the two IO sources (the engine's raw single path, the multipath bdev)
//! share: the [`IoSource`] interface a per-core job drives, how a run fails,
//! what it hands back, and how a job's next IO gets its slot's buffer. Both
//! sources and the run above them use this; it uses neither.

use std::time::Duration;

use engine::{HostQpair, IoBuf, IoCompletion, IoContext, SubmitErrorKind};

use crate::cli::BenchConfig;
use crate::failover::MultipathReport;
use crate::job::{IoRequest, Job};
use crate::report::JobReport;
use crate::workload::IoOp;

/// Where a per-core bench job sends its IO: the engine's queue pair to one
/// path, or a multipath channel that picks the path and retries.
pub(crate) trait IoSource: Send + 'static {
    /// The source's own counters, sent home with the job's statistics.
    type Stats: Send + 'static;

    /// Does the source's own work for this loop turn (resubmitting held IOs).
    fn poll<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>);

    /// An IO the source failed by itself, for the job to complete.
    fn take_failed(&mut self) -> Option<IoCompletion>;

    /// Sends one IO; on refusal, why, and the buffer back.
    fn submit<Q: HostQpair>(
        &mut self,
        io: &mut IoContext<'_, Q>,
        op: engine::IoOp,
        lba: u64,
        num_blocks: u32,
        buf: Option<IoBuf>,
        tag: u64,
    ) -> Result<(), (SubmitErrorKind, Option<IoBuf>)>;

    /// Takes an engine completion; returns the IO's final completion, or
    /// `None` when the source sent it again.
    fn on_complete<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>, done: IoCompletion) -> Option<IoCompletion>;

    /// IOs the source holds that the job may not know are still out.
    fn outstanding(&self) -> usize;

    /// The source has work of its own next turn (held IOs to retry): its
    /// reactor must not sleep.
    fn needs_turn(&self) -> bool;

    /// The counters at the end of the job.
    fn stats(&self) -> Self::Stats;
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The engine failed to start or attach.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The in-process gateway failed to start.
    #[error("embedded gateway: {0}")]
    Embedded(String),
    /// `--filename` names no bdev of the target.
    #[error("--filename {name}: no such bdev here; the target has {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownBdev {
        /// The name given.
        name: String,
        /// The bdevs there are.
        known: Vec<String>,
    },
    /// The controller has no namespace to run on.
    #[error("controller at {0} has no active namespace")]
    NoNamespace(String),
    /// The jobs could not be planned on this namespace.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// A job could not be made.
    #[error(transparent)]
    Job(#[from] crate::job::JobError),
    /// No path was given.
    #[error("no transport ID to connect to")]
    NoPath,
    /// Several paths but raw single-path IO was asked for.
    #[error("{0} paths given: several paths need multipath")]
    SeveralPathsRaw(usize),
    /// A host RPC (attach, policy, config file) was refused.
    #[error("{0}")]
    Rpc(String),
    /// A job never finished.
    #[error("jobs did not finish within {0:?} after the run time")]
    Hung(Duration),
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Each job's outcome.
    pub jobs: Vec<JobReport>,
    /// Per-path counts and the failover report (multipath runs).
    pub multipath: Option<MultipathReport>,
}

/// The job's next IO with its slot's buffer, sized and (for a write) filled,
/// as the engine's operation; `None` when the job has nothing to send now. A
/// request whose slot has no buffer (still lent out) is cancelled.
pub(crate) fn next_io_with_buffer(
    job: &mut Job,
    bufs: &mut [Option<IoBuf>],
    now_ns: u64,
) -> Option<(IoRequest, IoBuf, engine::IoOp)> {
    let req = job.next_io(now_ns)?;
    let Some(mut buf) = bufs.get_mut(usize::from(req.slot)).and_then(Option::take) else {
        job.cancel(req.slot);
        return None;
    };
    buf.set_len(req.len_bytes as usize);
    let op = match req.op {
        IoOp::Read => engine::IoOp::Read,
        IoOp::Write => {
            job.fill_write(&req, buf.as_mut_slice());
            engine::IoOp::Write
        }
    };
    Some((req, buf, op))
}

/// Extra time a run may take for `--verify_final_pass`: the pass reads at most
/// one unit per write the job completed, at the same depth, so it takes about
/// as long as the run at most.
pub fn final_pass_allowance_ns(config: &BenchConfig, run_ns: u64) -> u64 {
    if config.verify && config.verify_final_pass {
        run_ns
    } else {
        0
    }
}
