//! The raw single-path IO source: one path through the engine's own API, no
//! multipath layer in the way (the perf baseline). Attaches, learns the
//! namespace's geometry, runs one [`crate::core_job::BenchCoreJob`] per core
//! on the path's queue pair and hands back the jobs' statistics.

use std::time::Duration;

use engine::{
    ControllerOptions, Engine, EngineOptions, HostQpair, IoBuf, IoCompletion, IoContext, IoOp, Namespace,
    SubmitErrorKind, TransportId,
};
use transport_tcp::TcpHostTransport;

use crate::cli::BenchConfig;
use crate::core_job::{spawn_jobs, wait_for_jobs};
use crate::io_source::{IoSource, RunError};
use crate::plan::{plan_jobs, NamespaceGeometry};
use crate::report::JobReport;

/// One path through the engine's raw API: no multipath layer in the way.
pub(crate) fn run_single_path(config: &BenchConfig, trids: &[TransportId]) -> Result<Vec<JobReport>, RunError> {
    let cores: Vec<usize> = config.cores.iter().map(|&c| c as usize).collect();
    if trids.len() > 1 {
        return Err(RunError::SeveralPathsRaw(trids.len()));
    }
    let trid: &TransportId = trids.first().ok_or(RunError::NoPath)?;

    let mut opts = EngineOptions::on_cores(&cores);
    opts.idle = config.idle;
    let engine = Engine::start(opts, |_| TcpHostTransport::new())?;
    let mut ctrlr_opts = ControllerOptions {
        header_digest: config.header_digest,
        data_digest: config.data_digest,
        io_queue_depth: config.iodepth.max(128),
        ..ControllerOptions::default()
    };
    config.paths.apply_to(&mut ctrlr_opts);
    let ctrlr = engine.attach_controller(trid, &ctrlr_opts)?;
    // Named as SPDK names them (controller Nvme0, as the multipath runs attach it).
    let bdev_name = |nsid: u32| format!("{}n{nsid}", crate::multipath_run::CONTROLLER_NAME);
    let ns_data = match &config.filename {
        None => ctrlr.data.namespaces.first(),
        Some(name) => {
            let found = ctrlr.data.namespaces.iter().find(|n| bdev_name(n.nsid) == *name);
            if found.is_none() {
                let known = ctrlr.data.namespaces.iter().map(|n| bdev_name(n.nsid)).collect();
                engine.detach_controller(&ctrlr);
                engine.shutdown();
                return Err(RunError::UnknownBdev { name: name.clone(), known });
            }
            found
        }
    };
    let ns_data = ns_data.ok_or_else(|| RunError::NoNamespace(trid.to_string()))?;
    let ns = ctrlr.namespace(ns_data.nsid).ok_or_else(|| RunError::NoNamespace(trid.to_string()))?;

    let geometry = NamespaceGeometry {
        block_size_bytes: ns.block_size,
        num_blocks: ns.num_blocks,
        max_transfer_bytes: ns.max_transfer_bytes,
    };
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let specs = plan_jobs(config, geometry, nonce)?;

    let jobs = spawn_jobs(&engine, specs, |_| RawPath { ns: ns.clone() }, |_| None)?;
    let results = wait_for_jobs(config, &jobs, Duration::from_millis(100), || {})?;
    engine.detach_controller(&ctrlr);
    engine.shutdown();

    Ok(jobs
        .meta
        .into_iter()
        .zip(results)
        .filter_map(|((job_index, core), r)| {
            r.map(|r| JobReport { name: config.job_name.clone(), job_index, core, stats: r.stats })
        })
        .collect())
}

/// The raw source: this core's queue pair to the one path's controller.
struct RawPath {
    ns: Namespace,
}

impl IoSource for RawPath {
    type Stats = ();

    fn poll<Q: HostQpair>(&mut self, _io: &mut IoContext<'_, Q>) {}

    fn take_failed(&mut self) -> Option<IoCompletion> {
        None
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
        io.submit(&self.ns, op, lba, num_blocks, buf, tag).map_err(|e| (e.reason, e.buf))
    }

    fn on_complete<Q: HostQpair>(&mut self, _io: &mut IoContext<'_, Q>, done: IoCompletion) -> Option<IoCompletion> {
        Some(done)
    }

    /// The job counts every IO it sent; the queue pair holds nothing back.
    fn outstanding(&self) -> usize {
        0
    }

    fn needs_turn(&self) -> bool {
        false
    }

    fn stats(&self) {}
}
