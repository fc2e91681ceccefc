//! Multipath runs: every path attached as controller `Nvme0` through the
//! host RPC (the same [`HostRpc`] `--rpc-socket` serves, so the bench is
//! configured exactly as a user would configure it), one [`MpChannel`] per
//! job on the bdev, path events collected while the jobs run, and the
//! failover report at the end.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::host::ctrlr::PathEventKind;
use engine::{
    ControllerOptions, Engine, EngineOptions, HostQpair, IoBuf, IoCompletion, IoContext, IoOp, SubmitErrorKind,
    TransportId,
};
use multipath::{ChannelStats, MpBdev, MpChannel, MultipathHost};
use rpc::{HostRpc, Router};
use serde_json::{json, Value};
use transport_tcp::TcpHostTransport;

use crate::cli::{BenchConfig, MultipathArg, PolicyArg, SelectorArg};
use crate::core_job::{spawn_jobs, wait_for_jobs, CoreJobResult, DRAIN_LIMIT};
use crate::embedded::EmbeddedPair;
use crate::failover::{
    analyse, io_error_span_ms, window_after_ns, MultipathReport, PathCount, PathEventRecord, Timeline,
};
use crate::io_source::{final_pass_allowance_ns, IoSource, RunError, RunOutcome};
use crate::plan::{plan_jobs, NamespaceGeometry};
use crate::report::JobReport;

/// The controller name the bench attaches its paths under (DESIGN.md's).
pub const CONTROLLER_NAME: &str = "Nvme0";

/// Embedded failover: stop gateway A this long after the jobs start.
pub struct KillA<'a> {
    /// When, after the jobs start.
    pub after_ns: u64,
    /// The gateways.
    pub pair: &'a mut EmbeddedPair,
}

/// `bdev_nvme_attach_controller` params for one bench path.
pub fn attach_params(config: &BenchConfig, trid: &TransportId) -> Value {
    let p = &config.paths;
    let mut v = json!({
        "name": CONTROLLER_NAME,
        "trtype": trid.trtype.as_str(),
        "adrfam": trid.adrfam.as_str(),
        "traddr": trid.traddr,
        "trsvcid": trid.trsvcid,
        "subnqn": trid.subnqn,
        "multipath": p.mode.unwrap_or(MultipathArg::Multipath).spdk_name(),
        "ctrlr_loss_timeout_sec": p.ctrlr_loss_timeout_sec,
        "reconnect_delay_sec": p.reconnect_delay_sec,
        "fast_io_fail_timeout_sec": p.fast_io_fail_timeout_sec,
        "hdgst": config.header_digest,
        "ddgst": config.data_digest,
    });
    if let Some(ms) = p.keep_alive_ms {
        v["keep_alive_timeout_ms"] = json!(ms);
    }
    v
}

fn call(router: &Router, method: &str, params: Value) -> Result<Value, RunError> {
    router.call(method, Some(&params)).map_err(|e| RunError::Rpc(format!("{method}: {} (code {})", e.message, e.code)))
}

fn path_name(t: &TransportId) -> String {
    format!("{}:{}", t.traddr, t.trsvcid)
}

fn describe(kind: &PathEventKind) -> String {
    match kind {
        PathEventKind::Failed { reason, peer_closed: true } => format!("failed (peer closed): {reason}"),
        PathEventKind::Failed { reason, peer_closed: false } => format!("failed: {reason}"),
        PathEventKind::ReconnectStarted => "reconnect started".into(),
        PathEventKind::ReconnectFailed(why) => format!("reconnect failed: {why}"),
        PathEventKind::Reconnected { cntlid } => format!("reconnected (cntlid {cntlid})"),
        PathEventKind::Lost => "lost (ctrlr_loss_timeout ran out)".into(),
        PathEventKind::AnaChanged { nsid, state } => format!("ANA state of nsid {nsid}: {state:?}"),
        PathEventKind::CommandTimedOut { qid, cid } => format!("IO command timed out (qid {qid}, cid {cid})"),
        PathEventKind::AbortAnswered { qid, cid, aborted: true } => format!("Abort done (qid {qid}, cid {cid})"),
        PathEventKind::AbortAnswered { qid, cid, aborted: false } => {
            format!("Abort refused (qid {qid}, cid {cid}): reset follows")
        }
    }
}

/// Runs the jobs on `Nvme0n1` (or the config file's first bdev) through multipath.
pub fn run_multipath(
    config: &BenchConfig,
    trids: &[TransportId],
    mut kill: Option<KillA<'_>>,
) -> Result<RunOutcome, RunError> {
    let cores: Vec<usize> = config.cores.iter().map(|&c| c as usize).collect();
    let mut opts = EngineOptions::on_cores(&cores);
    opts.idle = config.idle;
    let engine = Arc::new(Engine::start(opts, |_| TcpHostTransport::new())?);
    let host = Arc::new(MultipathHost::new(engine.clone()));
    let mut defaults = ControllerOptions { io_queue_depth: config.iodepth.max(128), ..ControllerOptions::default() };
    config.paths.apply_to(&mut defaults);
    let mut router = Router::new();
    // A fresh router has no methods, so this cannot clash.
    let _ = router.add(Arc::new(HostRpc::with_defaults(host.clone(), defaults)));
    let router = Arc::new(router);

    let result = run_on_host(config, trids, &engine, &host, &router, kill.as_mut());
    host.detach_all();
    drop(router);
    drop(host);
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.shutdown();
    }
    result
}

fn run_on_host(
    config: &BenchConfig,
    trids: &[TransportId],
    engine: &Arc<Engine<TcpHostTransport>>,
    host: &Arc<MultipathHost<TcpHostTransport>>,
    router: &Arc<Router>,
    mut kill: Option<&mut KillA<'_>>,
) -> Result<RunOutcome, RunError> {
    for trid in trids {
        let names = call(router, "bdev_nvme_attach_controller", attach_params(config, trid))?;
        eprintln!("corepath-bench: attached {trid} as {CONTROLLER_NAME}: {names}");
    }
    if let Some(path) = &config.paths.config_file {
        rpc::load_config_file(path, router).map_err(|e| RunError::Rpc(format!("{e:#}")))?;
    }
    let bdevs: Vec<Arc<MpBdev>> = host.bdevs().into_iter().map(|(b, _)| b).collect();
    let bdev: Arc<MpBdev> = match &config.filename {
        None => bdevs.first().cloned(),
        Some(name) => Some(bdevs.iter().find(|b| b.name() == name).cloned().ok_or_else(|| RunError::UnknownBdev {
            name: name.clone(),
            known: bdevs.iter().map(|b| b.name().to_string()).collect(),
        })?),
    }
    .ok_or_else(|| RunError::NoNamespace(trids.first().map_or("the config".into(), ToString::to_string)))?;
    if let Some(policy) = config.paths.policy {
        let mut params = json!({"name": bdev.name(), "policy": match policy {
            PolicyArg::ActivePassive => "active_passive",
            PolicyArg::ActiveActive => "active_active",
        }});
        if let Some(s) = config.paths.selector {
            params["selector"] = json!(match s {
                SelectorArg::RoundRobin => "round_robin",
                SelectorArg::QueueDepth => "queue_depth",
            });
        }
        if let Some(n) = config.paths.rr_min_io {
            params["rr_min_io"] = json!(n);
        }
        call(router, "bdev_nvme_set_multipath_policy", params)?;
    }
    let server = match &config.paths.rpc_socket {
        Some(path) => Some(serve(path, router)?),
        None => None,
    };

    // The smallest MDTS of the paths: an IO may go down any of them.
    let max_transfer_bytes = bdev.paths().iter().map(|p| p.ns.max_transfer_bytes).min().unwrap_or(u32::MAX);
    let geometry =
        NamespaceGeometry { block_size_bytes: bdev.block_size, num_blocks: bdev.num_blocks, max_transfer_bytes };
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let specs = plan_jobs(config, geometry, nonce)?;

    let run_start_ns = engine.now_ns();
    let jobs = spawn_jobs(
        engine,
        specs,
        |spec| MpChannel::new(bdev.clone(), usize::from(spec.iodepth)),
        |run_ns| Some(run_ns + final_pass_allowance_ns(config, run_ns) + DRAIN_LIMIT.as_nanos() as u64),
    )?;

    let mut events: Vec<PathEventRecord> = Vec::new();
    let take_events = |events: &mut Vec<PathEventRecord>| {
        for r in host.drain_events() {
            let rec = PathEventRecord { at_ns: r.event.at_ns, path: path_name(&r.trid), what: describe(&r.event.kind) };
            eprintln!(
                "corepath-bench: path {} at +{:.1} ms: {}",
                rec.path,
                rec.at_ns.saturating_sub(run_start_ns) as f64 / 1e6,
                rec.what
            );
            events.push(rec);
        }
    };
    let results = wait_for_jobs(config, &jobs, Duration::from_millis(20), || {
        if let Some(k) = kill.as_deref_mut() {
            if engine.now_ns().saturating_sub(run_start_ns) >= k.after_ns {
                let a = k.pair.trids().first().map(path_name).unwrap_or_default();
                let at_ns = engine.now_ns();
                if k.pair.kill_a() {
                    eprintln!(
                        "corepath-bench: killed gateway A ({a}) at +{:.1} ms",
                        (at_ns - run_start_ns) as f64 / 1e6
                    );
                    events.push(PathEventRecord {
                        at_ns,
                        path: a,
                        what: "gateway A killed (in-process: reactors stopped, sockets closed)".into(),
                    });
                }
                kill = None;
            }
        }
        take_events(&mut events);
    });
    take_events(&mut events);
    events.sort_by_key(|e| e.at_ns);
    // Counts and states before the paths are detached.
    let ctrlrs = host.controllers(None).unwrap_or_default();
    if let Some(server) = server {
        server.shutdown();
    }
    let results = results?;

    let done: Vec<(u32, u32, CoreJobResult<ChannelStats>)> =
        jobs.meta.into_iter().zip(results).filter_map(|((j, core), r)| r.map(|r| (j, core, r))).collect();
    let mut per_ctrlr = [0u64; engine::host::MAX_CONTROLLERS];
    let (mut retries, mut failed_no_path, mut held_max) = (0, 0, 0);
    for (_, _, r) in &done {
        for (sum, n) in per_ctrlr.iter_mut().zip(r.source.ios_per_ctrlr.iter()) {
            *sum += n;
        }
        retries += r.source.retries;
        failed_no_path += r.source.failed_no_path;
        held_max = held_max.max(r.source.held_max);
    }
    let paths = ctrlrs
        .iter()
        .flat_map(|c| c.paths.iter())
        .map(|p| PathCount {
            path: path_name(&p.trid),
            cntlid: p.cntlid,
            state: p.state.spdk_name().to_string(),
            ios: per_ctrlr.get(usize::from(p.ctrlr_index)).copied().unwrap_or(0),
        })
        .collect();
    let timelines: Vec<(u32, &Timeline)> =
        done.iter().filter_map(|(_, core, r)| r.timeline.as_ref().map(|t| (*core, t))).collect();
    // The engine's default keep-alive when none was given (ControllerOptions::default()).
    let kato_ms = config.paths.keep_alive_ms.unwrap_or(ControllerOptions::default().keep_alive_timeout_ms);
    let failover_events = analyse(&events, &timelines, run_start_ns, window_after_ns(kato_ms));
    let (first_io_error_ms, last_io_error_ms) = io_error_span_ms(&timelines, run_start_ns);
    let io_errors = done.iter().map(|(_, _, r)| r.stats.io_errors()).sum();
    let verify_errors = done.iter().map(|(_, _, r)| r.stats.verify_errors).sum();
    let report = MultipathReport {
        bdev: bdev.name().to_string(),
        policy: bdev.policy().name().to_string(),
        paths,
        events: failover_events,
        retries,
        failed_no_path,
        held_max,
        io_errors,
        verify_errors,
        first_io_error_ms,
        last_io_error_ms,
    };
    let jobs = done
        .into_iter()
        .map(|(job_index, core, r)| JobReport { name: config.job_name.clone(), job_index, core, stats: r.stats })
        .collect();
    Ok(RunOutcome { jobs, multipath: Some(report) })
}

fn serve(path: &Path, router: &Arc<Router>) -> Result<rpc::ServerHandle, RunError> {
    let server = rpc::serve(path, router.clone())
        .map_err(|e| RunError::Rpc(format!("serving the host RPC on {}: {}", path.display(), e.message)))?;
    eprintln!("corepath-bench: host RPC on {}", path.display());
    Ok(server)
}

/// The multipath source: the job's channel on the bdev picks the path per IO
/// and retries on another when one fails.
impl IoSource for MpChannel {
    type Stats = ChannelStats;

    fn poll<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>) {
        MpChannel::poll(self, io);
    }

    fn take_failed(&mut self) -> Option<IoCompletion> {
        MpChannel::take_failed(self)
    }

    fn submit<Q: HostQpair>(
        &mut self,
        io: &mut IoContext<'_, Q>,
        op: IoOp,
        lba: u64,
        num_blocks: u32,
        buf: Option<IoBuf>,
        tag: u64,
    ) -> Result<(), (SubmitErrorKind, Option<IoBuf>)> {
        MpChannel::submit(self, io, op, lba, num_blocks, buf, tag).map_err(|e| (e.reason, e.buf))
    }

    fn on_complete<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>, done: IoCompletion) -> Option<IoCompletion> {
        MpChannel::on_complete(self, io, done)
    }

    /// IOs the channel holds for a path or is retrying.
    fn outstanding(&self) -> usize {
        MpChannel::outstanding(self)
    }

    fn needs_turn(&self) -> bool {
        self.needs_poll()
    }

    fn stats(&self) -> ChannelStats {
        MpChannel::stats(self).clone()
    }
}
