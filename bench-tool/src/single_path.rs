//! The raw single-path IO source: one path through the engine's own API, no
//! multipath layer in the way (the perf baseline). Attaches, learns the
//! namespace's geometry, runs one [`Job`] per core as an engine [`CoreJob`]
//! and hands back the jobs' statistics.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{
    ControllerOptions, CoreJob, Engine, EngineOptions, HostQpair, IdlePolicy, IoBuf, IoCompletion, IoContext,
    JobStatus, Namespace, SubmitErrorKind, TransportId,
};
use transport_tcp::TcpHostTransport;

use crate::cli::BenchConfig;
use crate::io_source::{final_pass_allowance_ns, next_io_with_buffer, RunError};
use crate::job::{IoStatus, Job, JobSpec};
use crate::plan::{plan_jobs, NamespaceGeometry};
use crate::report::JobReport;
use crate::stats::{JobStats, LiveCounters};
use crate::status::StatusLine;

/// One path through the engine's raw API: no multipath layer in the way.
pub(crate) fn run_single_path(config: &BenchConfig, trids: &[TransportId]) -> Result<Vec<JobReport>, RunError> {
    let cores: Vec<usize> = config.cores.iter().map(|&c| c as usize).collect();
    if trids.len() > 1 {
        return Err(RunError::SeveralPathsRaw(trids.len()));
    }
    let trid: &TransportId = trids.first().ok_or(RunError::NoPath)?;

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
    let ns_data = ctrlr.data.namespaces.first().ok_or_else(|| RunError::NoNamespace(trid.to_string()))?;
    let ns = ctrlr.namespace(ns_data.nsid).ok_or_else(|| RunError::NoNamespace(trid.to_string()))?;

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
            return Err(RunError::Hung(Duration::from_secs(30)));
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
    fn new(spec: JobSpec, ns: Namespace, done_tx: mpsc::Sender<(u32, JobStats)>) -> Result<Self, RunError> {
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
