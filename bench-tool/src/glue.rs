//! Where the engine plugs in: start the in-process gateways (embedded mode)
//! or take the remote transport IDs, attach, learn the namespace's geometry,
//! run one [`Job`] per core as an engine [`CoreJob`], and hand back the jobs'
//! statistics. One path without multipath options uses the engine's raw
//! single-path IO here (the perf baseline); everything else goes through
//! multipath ([`crate::mpglue`]).

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{
    ControllerOptions, CoreJob, Engine, EngineOptions, HostQpair, IdlePolicy, IoBuf, IoCompletion, IoContext,
    JobStatus, Namespace, SubmitErrorKind, TransportId,
};
use transport_tcp::TcpHostTransport;

use crate::cli::{BenchConfig, TargetMode};
use crate::embedded::{EmbeddedGateway, EmbeddedPair};
use crate::failover::MultipathReport;
use crate::job::{IoRequest, IoStatus, Job, JobSpec};
use crate::plan::{plan_jobs, NamespaceGeometry};
use crate::report::JobReport;
use crate::stats::{JobStats, LiveCounters};
use crate::status::StatusLine;
use crate::workload::IoOp;

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    /// The engine failed to start or attach.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The in-process gateway failed to start.
    #[error("embedded gateway: {0}")]
    Embedded(String),
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

/// Runs the benchmark described by `config` and returns each job's outcome.
pub fn run_job(config: &BenchConfig) -> Result<RunOutcome, GlueError> {
    let cores: Vec<usize> = config.cores.iter().map(|&c| c as usize).collect();
    let embedded_err = |e: anyhow::Error| GlueError::Embedded(format!("{e:#}"));
    match &config.target {
        TargetMode::Embedded { listen, gateways, kill_a_after_ns, file } if *gateways >= 2 => {
            // Keep the gateways alive for the whole run; they stop when dropped.
            let mut pair = EmbeddedPair::start(listen, &cores, file.as_deref()).map_err(embedded_err)?;
            let trids = pair.trids().to_vec();
            let kill = kill_a_after_ns.map(|after_ns| crate::mpglue::KillA { after_ns, pair: &mut pair });
            crate::mpglue::run_multipath(config, &trids, kill)
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

fn run_single_or_multi(config: &BenchConfig, trids: &[TransportId]) -> Result<RunOutcome, GlueError> {
    if config.uses_multipath() {
        return crate::mpglue::run_multipath(config, trids, None);
    }
    let jobs = run_raw(config, trids)?;
    Ok(RunOutcome { jobs, multipath: None })
}

/// One path through the engine's raw API: no multipath layer in the way.
fn run_raw(config: &BenchConfig, trids: &[TransportId]) -> Result<Vec<JobReport>, GlueError> {
    let cores: Vec<usize> = config.cores.iter().map(|&c| c as usize).collect();
    if trids.len() > 1 {
        return Err(GlueError::SeveralPathsRaw(trids.len()));
    }
    let trid: &TransportId = trids.first().ok_or(GlueError::NoPath)?;

    let mut opts = EngineOptions::on_cores(&cores);
    opts.idle = IdlePolicy::BusyPoll;
    let engine = Engine::start(opts, |_| TcpHostTransport::new())?;
    let mut ctrlr_opts = ControllerOptions {
        header_digest: config.header_digest,
        data_digest: config.data_digest,
        io_queue_depth: config.iodepth.max(128),
        ..ControllerOptions::default()
    };
    config.paths.apply_to(&mut ctrlr_opts);
    let ctrlr = engine.attach_controller(trid, &ctrlr_opts)?;
    let ns_data = ctrlr.data.namespaces.first().ok_or_else(|| GlueError::NoNamespace(trid.to_string()))?;
    let ns = ctrlr.namespace(ns_data.nsid).ok_or_else(|| GlueError::NoNamespace(trid.to_string()))?;

    let geometry = NamespaceGeometry { block_size_bytes: ns.block_size, num_blocks: ns.num_blocks };
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let specs = plan_jobs(config, geometry, nonce)?;

    let (done_tx, done_rx) = mpsc::channel::<(u32, JobStats)>();
    let mut live: Vec<Arc<LiveCounters>> = Vec::with_capacity(specs.len());
    let mut meta: Vec<(u32, u32)> = Vec::with_capacity(specs.len());
    let mut total_ns = 0u64;
    for (reactor, spec) in specs.into_iter().enumerate() {
        total_ns = total_ns.max(spec.ramp_ns + spec.runtime_ns);
        meta.push((spec.job_index, spec.core));
        let job = BenchCoreJob::new(spec, ns.clone(), done_tx.clone())?;
        live.push(job.live_counters());
        engine.spawn_job(reactor, Box::new(job))?;
    }
    drop(done_tx);

    let mut status = StatusLine::for_stderr(config.status_interval_ns);
    let start = Instant::now();
    let deadline = Duration::from_nanos(total_ns + final_pass_allowance_ns(config, total_ns)) + Duration::from_secs(30);
    let mut results: Vec<Option<JobStats>> = (0..meta.len()).map(|_| None).collect();
    let mut remaining = meta.len();
    while remaining > 0 {
        match done_rx.recv_timeout(Duration::from_millis(100)) {
            Ok((job_index, stats)) => {
                if let Some(slot) = meta.iter().position(|(j, _)| *j == job_index) {
                    results[slot] = Some(stats);
                    remaining -= 1;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let elapsed_ns = start.elapsed().as_nanos() as u64;
        let snaps: Vec<_> = live.iter().map(|l| l.snapshot()).collect();
        status.update(elapsed_ns, &snaps, config.pattern, elapsed_ns, total_ns);
        if start.elapsed() > deadline {
            return Err(GlueError::Hung(Duration::from_secs(30)));
        }
    }
    status.finish();
    engine.detach_controller(&ctrlr);
    engine.shutdown();

    Ok(meta
        .into_iter()
        .zip(results)
        .filter_map(|((job_index, core), stats)| {
            stats.map(|stats| JobReport { name: config.job_name.clone(), job_index, core, stats })
        })
        .collect())
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

/// One bench job on one reactor: takes IOs from the [`Job`], submits them
/// with the slot's buffer, and feeds completions back.
struct BenchCoreJob {
    /// Taken out when the job is done, to send its statistics home.
    job: Option<Job>,
    job_index: u32,
    ns: Namespace,
    /// One buffer per slot, made here, before the run.
    bufs: Vec<Option<IoBuf>>,
    started: bool,
    done_tx: Option<mpsc::Sender<(u32, JobStats)>>,
}

impl BenchCoreJob {
    fn new(spec: JobSpec, ns: Namespace, done_tx: mpsc::Sender<(u32, JobStats)>) -> Result<Self, GlueError> {
        let bufs = (0..spec.iodepth).map(|_| Some(IoBuf::new(spec.io_size_bytes as usize))).collect();
        let job_index = spec.job_index;
        Ok(BenchCoreJob { job: Some(Job::new(spec)?), job_index, ns, bufs, started: false, done_tx: Some(done_tx) })
    }

    fn live_counters(&self) -> Arc<LiveCounters> {
        self.job.as_ref().map(Job::live_counters).unwrap_or_default()
    }
}

impl<Q: HostQpair> CoreJob<Q> for BenchCoreJob {
    fn poll(&mut self, io: &mut IoContext<'_, Q>) -> JobStatus {
        let now_ns = io.now_ns();
        let Some(job) = self.job.as_mut() else { return JobStatus::Finished };
        if !self.started {
            job.start(now_ns);
            self.started = true;
        }
        job.tick(now_ns);
        while let Some((req, buf, op)) = next_io_with_buffer(job, &mut self.bufs, now_ns) {
            let slot = usize::from(req.slot);
            if let Err(e) = io.submit(&self.ns, op, req.slba, req.nlb, Some(buf), u64::from(req.slot)) {
                if let Some(b) = self.bufs.get_mut(slot) {
                    *b = e.buf;
                }
                match e.reason {
                    SubmitErrorKind::QueueFull => job.cancel(req.slot),
                    // Anything else will not get better by retrying: count it as failed.
                    _ => {
                        let status = protocol::Status::path(protocol::status::path::HOST_PATHING_ERROR).to_field();
                        let _ = job.complete(req.slot, IoStatus::Failed(status), &[], now_ns);
                    }
                }
                break;
            }
        }
        if job.is_done() && job.outstanding() == 0 {
            if let (Some(job), Some(tx)) = (self.job.take(), self.done_tx.take()) {
                let _ = tx.send((self.job_index, job.into_stats()));
            }
            return JobStatus::Finished;
        }
        JobStatus::Running
    }

    fn on_complete(&mut self, io: &mut IoContext<'_, Q>, done: IoCompletion) {
        let slot = done.tag as u16;
        let status =
            if done.status.is_success() { IoStatus::Success } else { IoStatus::Failed(done.status.to_field()) };
        // The job reads the data only for reads (to verify); writes ignore it.
        let data: &[u8] = done.buf.as_ref().map_or(&[], IoBuf::as_slice);
        if let Some(job) = self.job.as_mut() {
            // A verify error is counted in the job's stats; nothing more to do here.
            let _ = job.complete(slot, status, data, io.now_ns());
        }
        if let Some(b) = self.bufs.get_mut(usize::from(slot)) {
            *b = done.buf;
        }
    }
}
