//! Embedding multipath: attach one subsystem through several gateways under
//! one name, do IO on `Nvme0n1` through an `MpChannel`, and watch IO move
//! when a path fails (kill or stop a gateway while this runs).
//!
//! ```text
//! cargo run --release -p corepath-multipath --example failover -- 10 \
//!   'trtype:tcp adrfam:ipv4 traddr:127.0.0.2 trsvcid:4420 subnqn:nqn.2021-06.io.spdk:ctc_rbd0' \
//!   'trtype:tcp adrfam:ipv4 traddr:127.0.0.3 trsvcid:4420 subnqn:nqn.2021-06.io.spdk:ctc_rbd0'
//! ```
//! Reads only: two gateways with separate malloc bdevs are enough to watch it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corepath_multipath::{AttachParams, MpBdev, MpChannel, MultipathHost, MultipathMode};
use engine::host::ctrlr::ReconnectPolicy;
use engine::transport::HostQpair;
use engine::{
    ControllerOptions, CoreJob, Engine, EngineOptions, IdlePolicy, IoBuf, IoCompletion, IoContext, IoOp, JobStatus,
    TransportId,
};
use transport_tcp::TcpHostTransport;

/// Counters the job shares with `main`.
#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

struct ReadJob {
    ch: MpChannel,
    bufs: Vec<IoBuf>,
    counters: Arc<Counters>,
    next_lba: u64,
}

impl<Q: HostQpair> CoreJob<Q> for ReadJob {
    fn poll(&mut self, io: &mut IoContext<'_, Q>) -> JobStatus {
        self.ch.poll(io);
        while let Some(failed) = self.ch.take_failed() {
            self.complete(failed);
        }
        if self.counters.stop.load(Ordering::Relaxed) {
            return if self.ch.outstanding() == 0 { JobStatus::Finished } else { JobStatus::Running };
        }
        while let Some(buf) = self.bufs.pop() {
            let blocks = self.ch.bdev().num_blocks.max(1);
            let lba = self.next_lba % blocks;
            self.next_lba = self.next_lba.wrapping_add(7919);
            if let Err(e) = self.ch.submit(io, IoOp::Read, lba, 1, Some(buf), 0) {
                if let Some(b) = e.buf {
                    self.bufs.push(b);
                }
                break;
            }
        }
        JobStatus::Running
    }

    fn on_complete(&mut self, io: &mut IoContext<'_, Q>, done: IoCompletion) {
        if let Some(done) = self.ch.on_complete(io, done) {
            self.complete(done);
        }
    }
}

impl ReadJob {
    fn complete(&mut self, done: IoCompletion) {
        if done.status.is_success() {
            self.counters.completed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(b) = done.buf {
            self.bufs.push(b);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().ok_or("usage: failover SECONDS TRID [TRID...]")?.parse()?;
    let trids: Vec<TransportId> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    let mut opts = EngineOptions::on_cores(&[0]);
    opts.idle = IdlePolicy::adaptive();
    let engine = Arc::new(Engine::start(opts, |_| TcpHostTransport::new())?);
    let host = MultipathHost::new(engine.clone());
    let copts = ControllerOptions {
        keep_alive_timeout_ms: 1_000,
        reconnect: ReconnectPolicy { reconnect_delay_ms: 1_000, ctrlr_loss_timeout_ms: None },
        ..ControllerOptions::default()
    };
    let mut bdev: Option<Arc<MpBdev>> = None;
    for trid in &trids {
        let params = AttachParams {
            name: "Nvme0".into(),
            trid: trid.clone(),
            mode: Some(MultipathMode::Multipath),
            opts: copts.clone(),
            fast_io_fail_timeout_ms: None,
        };
        let names = host.attach(&params)?;
        println!("attached {trid}: {names:?}");
        bdev = names.first().and_then(|n| host.bdev(n));
    }
    let bdev = bdev.ok_or("no namespace")?;
    let counters = Arc::new(Counters::default());
    let job = ReadJob {
        ch: MpChannel::new(bdev.clone(), 32),
        bufs: (0..32).map(|_| IoBuf::new(bdev.block_size as usize)).collect(),
        counters: counters.clone(),
        next_lba: 0,
    };
    engine.spawn_job(0, Box::new(job))?;
    let start = Instant::now();
    let mut last = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(500));
        let done = counters.completed.load(Ordering::Relaxed);
        println!(
            "{:6.1} s: {:8} IOPS, errors {}",
            start.elapsed().as_secs_f64(),
            (done - last) * 2,
            counters.errors.load(Ordering::Relaxed)
        );
        last = done;
        for r in host.drain_events() {
            println!("  path {} ({}): {:?}", r.trid.traddr, r.name, r.event.kind);
        }
    }
    counters.stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(200));
    host.detach_all();
    println!("IO errors: {}", counters.errors.load(Ordering::Relaxed));
    Ok(())
}
