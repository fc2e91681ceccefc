//! One bench job per reactor over any [`IoSource`]: takes IOs from the
//! [`Job`], submits them with the slot's buffer, feeds completions back, and
//! sends the job's statistics home when it is done. Also how a run starts
//! those jobs ([`spawn_jobs`]) and waits for them ([`wait_for_jobs`]) with
//! the live status line. The sources themselves live in [`crate::single_path`]
//! and [`crate::multipath_run`]; this module knows neither.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{CoreJob, Engine, HostQpair, HostTransport, IoBuf, IoCompletion, IoContext, JobStatus, SubmitErrorKind};

use crate::cli::BenchConfig;
use crate::failover::Timeline;
use crate::io_source::{final_pass_allowance_ns, next_io_with_buffer, IoSource, RunError};
use crate::job::{IoStatus, Job, JobSpec};
use crate::stats::{thread_cpu_sample, CpuSample, CpuUsage, JobStats, LiveCounters};
use crate::status::StatusLine;
use crate::sys::stop_requested;

/// How long after the run time the jobs may take to drain before the run counts as hung.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// What a job sends home when it is done.
pub(crate) struct CoreJobResult<R> {
    pub(crate) job_index: u32,
    pub(crate) stats: JobStats,
    /// The source's own counters (the multipath channel's retries and per-path IOs).
    pub(crate) source: R,
    /// The completion history, when the run keeps one (multipath runs, for the failover report).
    pub(crate) timeline: Option<Timeline>,
}

/// One bench job on one reactor doing its IO through `S`.
pub(crate) struct BenchCoreJob<S: IoSource> {
    /// Taken out when the job is done, to send its statistics home.
    job: Option<Job>,
    job_index: u32,
    source: S,
    /// One buffer per slot, made here, before the run.
    bufs: Vec<Option<IoBuf>>,
    timeline: Option<Timeline>,
    started: bool,
    /// Ctrl-C reached this job (it stops once).
    stopped: bool,
    /// The reactor thread's CPU counters when the job started.
    cpu_start: Option<CpuSample>,
    done_tx: Option<mpsc::Sender<CoreJobResult<S::Stats>>>,
}

impl<S: IoSource> BenchCoreJob<S> {
    /// A job for `spec` on `source`; `timeline_span_ns` makes it keep a
    /// completion timeline covering that span.
    pub(crate) fn new(
        spec: JobSpec,
        source: S,
        timeline_span_ns: Option<u64>,
        done_tx: mpsc::Sender<CoreJobResult<S::Stats>>,
    ) -> Result<Self, RunError> {
        let bufs = (0..spec.iodepth).map(|_| Some(IoBuf::new(spec.io_size_bytes as usize))).collect();
        let job_index = spec.job_index;
        Ok(BenchCoreJob {
            job: Some(Job::new(spec)?),
            job_index,
            source,
            bufs,
            timeline: timeline_span_ns.map(|span_ns| Timeline::new(0, span_ns)),
            started: false,
            stopped: false,
            cpu_start: None,
            done_tx: Some(done_tx),
        })
    }

    fn live_counters(&self) -> Arc<LiveCounters> {
        self.job.as_ref().map(Job::live_counters).unwrap_or_default()
    }

    /// An IO's final completion: to the job (latency, verify) and the timeline.
    fn finish_io(&mut self, now_ns: u64, done: IoCompletion) {
        let slot = done.tag as u16;
        let ok = done.status.is_success();
        let status = if ok { IoStatus::Success } else { IoStatus::Failed(done.status.to_field()) };
        // The job reads the data only for reads (to verify); writes ignore it.
        let data: &[u8] = done.buf.as_ref().map_or(&[], IoBuf::as_slice);
        if let Some(job) = self.job.as_mut() {
            // A verify error is counted in the job's stats; nothing more to do here.
            let _ = job.complete(slot, status, data, now_ns);
        }
        if let Some(t) = self.timeline.as_mut() {
            t.record(now_ns, now_ns.saturating_sub(done.submit_ns), !ok);
        }
        if let Some(b) = self.bufs.get_mut(usize::from(slot)) {
            *b = done.buf;
        }
    }
}

impl<Q: HostQpair, S: IoSource> CoreJob<Q> for BenchCoreJob<S> {
    fn poll(&mut self, io: &mut IoContext<'_, Q>) -> JobStatus {
        let now_ns = io.now_ns();
        if self.job.is_none() {
            return JobStatus::Finished;
        }
        if !self.started {
            if let Some(job) = self.job.as_mut() {
                job.start(now_ns);
            }
            if let Some(t) = self.timeline.as_mut() {
                t.start(now_ns);
            }
            self.cpu_start = thread_cpu_sample(now_ns);
            self.started = true;
        }
        if !self.stopped && stop_requested() {
            self.stopped = true;
            if let Some(job) = self.job.as_mut() {
                job.stop(now_ns);
            }
        }
        self.source.poll(io);
        // IOs the source gave up on by itself (fast-IO-fail, every path lost) are IO errors.
        while let Some(failed) = self.source.take_failed() {
            self.finish_io(now_ns, failed);
        }
        let Some(job) = self.job.as_mut() else { return JobStatus::Finished };
        job.tick(now_ns);
        let mut submitted = 0;
        while let Some((req, buf, op)) = next_io_with_buffer(job, &mut self.bufs, now_ns) {
            let Err((reason, buf)) = self.source.submit(io, op, req.slba, req.nlb, Some(buf), u64::from(req.slot))
            else {
                submitted += 1;
                continue;
            };
            if let Some(b) = self.bufs.get_mut(usize::from(req.slot)) {
                *b = buf;
            }
            match reason {
                SubmitErrorKind::QueueFull => job.cancel(req.slot),
                // Anything else will not get better by retrying: count it as failed.
                _ => {
                    let status = protocol::Status::path(protocol::status::path::HOST_PATHING_ERROR).to_field();
                    let _ = job.complete(req.slot, IoStatus::Failed(status), &[], now_ns);
                    if let Some(t) = self.timeline.as_mut() {
                        t.record(now_ns, 0, true);
                    }
                }
            }
            break;
        }
        job.mark_depth(submitted);
        if job.is_done() && job.outstanding() == 0 && self.source.outstanding() == 0 {
            if let (Some(job), Some(tx)) = (self.job.take(), self.done_tx.take()) {
                let mut timeline = self.timeline.take();
                if let Some(t) = timeline.as_mut() {
                    t.finish(now_ns);
                }
                let mut stats = job.into_stats();
                if let (Some(start), Some(end)) = (self.cpu_start, thread_cpu_sample(now_ns)) {
                    stats.cpu = CpuUsage::between(&start, &end);
                }
                let _ =
                    tx.send(CoreJobResult { job_index: self.job_index, stats, source: self.source.stats(), timeline });
            }
            return JobStatus::Finished;
        }
        JobStatus::Running
    }

    fn on_complete(&mut self, io: &mut IoContext<'_, Q>, done: IoCompletion) {
        if let Some(done) = self.source.on_complete(io, done) {
            self.finish_io(io.now_ns(), done);
        }
    }

    fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        let Some(job) = self.job.as_ref() else { return Some(now_ns) };
        if !self.started || self.source.needs_turn() {
            return Some(now_ns);
        }
        job.next_deadline_ns(now_ns)
    }
}

/// The jobs of a run, started on their reactors.
pub(crate) struct SpawnedJobs<R> {
    /// (job index, core) of each job, in plan order.
    pub(crate) meta: Vec<(u32, u32)>,
    live: Vec<Arc<LiveCounters>>,
    done_rx: mpsc::Receiver<CoreJobResult<R>>,
    /// The longest ramp plus run time of any job.
    pub(crate) total_ns: u64,
}

/// Starts one job per spec on the reactor of its core; `source`
/// makes each job's IO source, `timeline_span_ns` (from the job's run time)
/// whether it keeps a timeline.
pub(crate) fn spawn_jobs<T, S>(
    engine: &Engine<T>,
    specs: Vec<JobSpec>,
    mut source: impl FnMut(&JobSpec) -> S,
    timeline_span_ns: impl Fn(u64) -> Option<u64>,
) -> Result<SpawnedJobs<S::Stats>, RunError>
where
    T: HostTransport,
    S: IoSource,
{
    let (done_tx, done_rx) = mpsc::channel();
    let mut jobs = SpawnedJobs { meta: Vec::with_capacity(specs.len()), live: Vec::new(), done_rx, total_ns: 0 };
    // The engine runs one reactor per core, in the order the jobs first name
    // them (the mask's order); with --numjobs several jobs share a reactor.
    let mut reactor_cores: Vec<u32> = Vec::new();
    for spec in specs {
        let reactor = match reactor_cores.iter().position(|&c| c == spec.core) {
            Some(r) => r,
            None => {
                reactor_cores.push(spec.core);
                reactor_cores.len() - 1
            }
        };
        let run_ns = spec.ramp_ns + spec.runtime_ns;
        jobs.total_ns = jobs.total_ns.max(run_ns);
        jobs.meta.push((spec.job_index, spec.core));
        let io_source = source(&spec);
        let job = BenchCoreJob::new(spec, io_source, timeline_span_ns(run_ns), done_tx.clone())?;
        jobs.live.push(job.live_counters());
        engine.spawn_job(reactor, Box::new(job))?;
    }
    Ok(jobs)
}

/// Waits for every job, updating the status line, and calls `on_turn` every
/// `turn` (the multipath run collects path events and stops gateway A there).
/// Returns each job's result in plan order (`None` for a job whose reactor
/// went away), or [`RunError::Hung`] when they did not finish within
/// [`DRAIN_LIMIT`] after the run (and final pass) time.
pub(crate) fn wait_for_jobs<R>(
    config: &BenchConfig,
    jobs: &SpawnedJobs<R>,
    turn: Duration,
    mut on_turn: impl FnMut(),
) -> Result<Vec<Option<CoreJobResult<R>>>, RunError> {
    let total_ns = jobs.total_ns;
    let mut status = StatusLine::for_stderr(config.status_interval_ns);
    let start = Instant::now();
    let deadline = Duration::from_nanos(total_ns + final_pass_allowance_ns(config, total_ns)) + DRAIN_LIMIT;
    let mut results: Vec<Option<CoreJobResult<R>>> = (0..jobs.meta.len()).map(|_| None).collect();
    let mut remaining = jobs.meta.len();
    let mut hung = false;
    let mut stop_noticed = false;
    let mut notice_stop = |status: &mut StatusLine| {
        if !stop_noticed && stop_requested() {
            stop_noticed = true;
            status.finish();
            eprintln!("corepath-bench: terminating on signal 2 (Ctrl-C): stopping the jobs, report follows");
        }
        stop_noticed
    };
    while remaining > 0 {
        notice_stop(&mut status);
        match jobs.done_rx.recv_timeout(turn) {
            Ok(r) => {
                if let Some(slot) = jobs.meta.iter().position(|(j, _)| *j == r.job_index) {
                    results[slot] = Some(r);
                    remaining -= 1;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        on_turn();
        let elapsed_ns = start.elapsed().as_nanos() as u64;
        let snaps: Vec<_> = jobs.live.iter().map(|l| l.snapshot()).collect();
        status.update(elapsed_ns, &snaps, config.pattern, elapsed_ns, total_ns);
        if start.elapsed() > deadline {
            hung = true;
            break;
        }
    }
    if !notice_stop(&mut status) {
        // The last line shows where the run ended: 100%, no time left.
        let snaps: Vec<_> = jobs.live.iter().map(|l| l.snapshot()).collect();
        status.last_update(start.elapsed().as_nanos() as u64, &snaps, config.pattern, total_ns);
    }
    status.finish();
    if hung {
        return Err(RunError::Hung(DRAIN_LIMIT));
    }
    Ok(results)
}
