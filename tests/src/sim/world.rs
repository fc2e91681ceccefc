//! The simulated world of one seed: two gateways (real [`GatewayCore`]s, each
//! with its own configuration and controller registry, exporting one shared
//! malloc bdev, the way two gateways export one RBD image), one host core
//! (the real [`HostCore`] with both controllers supervised) and the real
//! multipath bdev and channel, all stepped on one thread on a manual clock.
//! Faults come from the seed.

use std::sync::{Arc, Mutex};

use engine::host::ctrlr::{CtrlrShared, CtrlrState, PathEvent, PathEventKind, ReconnectPolicy};
use engine::sim::{SimHostTransport, SimListener, SimNetwork};
use engine::{
    AdrFam, AttachRequest, Clock, ControllerData, ControllerOptions, HostCore, HostIdentity, ManualClock, Namespace,
    Reactor, TargetOptions, TargetTransport, TimeoutAction, TrType, TransportId,
};
use gateway::config::{ListenAddress, NamespaceParams, SubsystemParams, TargetState};
use gateway::{GatewayContext, GatewayCore, QpairOrigin};
use multipath::{MpBdev, PathRef, Policy, Selector};
use protocol::log::AnaState;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::seed::{SeedReport, SimConfig};
use super::workload::{Phase, Shared, WorkloadJob, WorkloadParams};

const NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";
const PORT: &str = "4420";
const UUID: [u8; 16] = *b"corepath-sim-ns1";
/// What a timed-out IO leads to; a seed picks one (with a timeout set).
const TIMEOUT_ACTIONS: [TimeoutAction; 3] = [TimeoutAction::Abort, TimeoutAction::Reset, TimeoutAction::None];

/// A fault of one gateway, from `start_ns` to `end_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
    /// SIGKILL: connections close, nothing listens; at the end a fresh gateway starts.
    Kill,
    /// SIGSTOP: the gateway is not stepped; at the end it resumes.
    Hang,
    /// Nothing passes either way; at the end traffic flows again.
    Blackhole,
    /// Capsules to and from it arrive after a delay in this range (µs), reordered.
    Delay { min_us: u64, max_us: u64 },
    /// Its connections are reset (at the start; the end does nothing).
    Reset,
    /// Its listener reports the namespace ANA inaccessible; optimized again at the end.
    AnaInaccessible,
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    gateway: usize,
    kind: FaultKind,
    start_ns: u64,
    end_ns: u64,
    started: bool,
    ended: bool,
}

/// One gateway: its address and, while it runs, its reactor and configuration.
struct Gateway {
    traddr: &'static str,
    listen: ListenAddress,
    min_cntlid: u16,
    max_cntlid: u16,
    running: Option<(Reactor<GatewayCore<SimListener>>, Arc<GatewayContext>)>,
    hung: bool,
}

impl Gateway {
    fn new(traddr: &'static str, min_cntlid: u16, max_cntlid: u16) -> Self {
        let listen =
            ListenAddress { trtype: TrType::Tcp, adrfam: AdrFam::Ipv4, traddr: traddr.into(), trsvcid: PORT.into() };
        Gateway { traddr, listen, min_cntlid, max_cntlid, running: None, hung: false }
    }

    /// Starts a fresh gateway process exporting `bdev`.
    fn start(&mut self, net: &SimNetwork, clock: &Arc<dyn Clock>, bdev: &Arc<gateway::bdev::Bdev>) {
        let mut st = TargetState::new();
        st.create_transport(TrType::Tcp, TargetOptions::default()).expect("transport");
        st.bdevs.insert("Malloc0".into(), bdev.clone());
        st.create_subsystem(SubsystemParams {
            nqn: NQN.into(),
            serial_number: Some("SPDK_BDEV_0".into()),
            allow_any_host: true,
            min_cntlid: Some(self.min_cntlid),
            max_cntlid: Some(self.max_cntlid),
            ana_reporting: true,
            ..Default::default()
        })
        .expect("subsystem");
        st.add_ns(NQN, NamespaceParams { bdev_name: "Malloc0".into(), ..Default::default() }).expect("namespace");
        st.add_listener(NQN, self.listen.clone()).expect("listener");
        let ctx = GatewayContext::new(Arc::new(Mutex::new(st)));
        let mut reactor = Reactor::new(0, 0, GatewayCore::new(0, ctx.clone()), clock.clone(), 16).expect("reactor");
        let listener = net.target().listen(self.traddr, PORT, &TargetOptions::default()).expect("listen");
        reactor
            .poller()
            .add_listener(QpairOrigin { listen: self.listen.clone(), opts: TargetOptions::default() }, listener);
        self.running = Some((reactor, ctx));
        self.hung = false;
    }

    fn kill(&mut self, net: &SimNetwork) {
        net.cut(self.traddr, PORT);
        self.running = None;
    }

    fn set_ana(&mut self, state: AnaState) {
        if let Some((_, ctx)) = &self.running {
            let changed = ctx.state().lock().map(|mut st| st.set_ana_state(NQN, &self.listen, state, None));
            if matches!(changed, Ok(Ok(true))) {
                ctx.config_changed();
            }
        }
    }

    fn step(&mut self) {
        if self.hung {
            return;
        }
        if let Some((reactor, _)) = self.running.as_mut() {
            reactor.run_once();
        }
    }

    /// (queue pairs, live controllers) of a running gateway.
    fn census(&mut self) -> Option<(usize, usize)> {
        let (reactor, ctx) = self.running.as_mut()?;
        let qpairs = reactor.poller().num_qpairs();
        Some((qpairs, ctx.controllers(None).len()))
    }
}

struct Path {
    shared: Arc<CtrlrShared>,
    last_state: CtrlrState,
    failures: u32,
    /// Failures and ANA changes: each may send every outstanding IO to another path once.
    disturbances: u64,
    /// IO commands that outlived the IO timeout.
    command_timeouts: u64,
    /// Aborts the gateway answered.
    aborts_answered: u64,
}

/// The world of one seed.
pub(crate) struct World {
    cfg: SimConfig,
    seed: u64,
    rng: SmallRng,
    clock: ManualClock,
    dyn_clock: Arc<dyn Clock>,
    net: SimNetwork,
    bdev: Arc<gateway::bdev::Bdev>,
    gateways: Vec<Gateway>,
    host: Reactor<HostCore<SimHostTransport>>,
    paths: Vec<Path>,
    faults: Vec<Fault>,
    shared: Arc<Mutex<Shared>>,
    step_ns: u64,
    reconnect_delay_ms: u64,
    kato_ms: u32,
    steps: u64,
    events: Vec<PathEvent>,
    store_scratch: Vec<u8>,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl World {
    pub(crate) fn new(seed: u64, cfg: &SimConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let clock = ManualClock::new();
        let dyn_clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let net = SimNetwork::with_seed(rng.gen());
        let bdev = Arc::new(
            gateway::bdev::Bdev::malloc("Malloc0", cfg.num_blocks, cfg.block_size, Some(UUID)).expect("malloc"),
        );
        let mut gateways = vec![Gateway::new("127.0.0.2", 1, 32760), Gateway::new("127.0.0.3", 32761, 65519)];
        for g in &mut gateways {
            g.start(&net, &dyn_clock, &bdev);
        }
        let host = Reactor::new(0, 0, HostCore::new(net.host()), dyn_clock.clone(), 16).expect("reactor");
        let step_ns = cfg.step_us[rng.gen_range(0..cfg.step_us.len())] * 1_000;
        let reconnect_delay_ms = rng.gen_range(cfg.reconnect_delay_ms.0..=cfg.reconnect_delay_ms.1);
        let shared = Arc::new(Mutex::new(Shared::new(cfg.num_blocks, cfg.keep_text)));
        World {
            cfg: cfg.clone(),
            seed,
            rng,
            clock,
            dyn_clock,
            net,
            bdev,
            gateways,
            host,
            paths: Vec::new(),
            faults: Vec::new(),
            shared,
            step_ns,
            reconnect_delay_ms,
            kato_ms: 0,
            steps: 0,
            events: Vec::with_capacity(64),
            store_scratch: vec![0; 16],
        }
    }

    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn violate(&self, what: String) {
        lock(&self.shared).violate(self.now_ns(), what);
    }

    fn violated(&self) -> bool {
        lock(&self.shared).violation.is_some()
    }

    /// One turn of simulated time: every running gateway and the host, in an order the seed picks.
    fn step(&mut self) {
        let now_ns = self.now_ns();
        self.net.set_now_ns(now_ns);
        self.apply_faults(now_ns);
        match self.rng.gen_range(0..3u8) {
            0 => {
                self.gateways[0].step();
                self.gateways[1].step();
                self.host.run_once();
            }
            1 => {
                self.host.run_once();
                self.gateways[1].step();
                self.gateways[0].step();
            }
            _ => {
                self.gateways[1].step();
                self.host.run_once();
                self.gateways[0].step();
            }
        }
        self.watch_paths(now_ns);
        self.check_store();
        self.clock.advance_ns(self.step_ns);
        self.steps += 1;
    }

    /// The stale-write rule, checked on the store itself after every turn:
    /// each block holds its last acknowledged version or the one in flight.
    fn check_store(&mut self) {
        let mut s = lock(&self.shared);
        for block in 0..self.cfg.num_blocks {
            let off = block * u64::from(self.cfg.block_size);
            if self.bdev.read(off, &mut self.store_scratch[..16]).is_err() {
                continue;
            }
            if let Some(why) = s.check_block(block, &self.store_scratch[..16], true) {
                let now = self.clock.now_ns();
                s.violate(now, format!("store check: {why}"));
                break;
            }
        }
    }

    fn watch_paths(&mut self, now_ns: u64) {
        let mut s = lock(&self.shared);
        for (i, p) in self.paths.iter_mut().enumerate() {
            let state = p.shared.state();
            if state != p.last_state {
                s.trace.record(now_ns, "path state", [i as u64, state as u64, u64::from(p.shared.generation()), 0]);
                p.last_state = state;
            }
            self.events.clear();
            p.shared.drain_events(&mut self.events);
            for e in &self.events {
                let (kind, a) = match &e.kind {
                    PathEventKind::Failed { peer_closed, .. } => {
                        p.failures += 1;
                        p.disturbances += 1;
                        ("path failed", u64::from(*peer_closed))
                    }
                    PathEventKind::ReconnectStarted => ("reconnect started", 0),
                    PathEventKind::ReconnectFailed(_) => ("reconnect failed", 0),
                    PathEventKind::Reconnected { cntlid } => ("reconnected", u64::from(*cntlid)),
                    PathEventKind::Lost => ("path lost", 0),
                    PathEventKind::AnaChanged { state, .. } => {
                        p.disturbances += 1;
                        ("ana changed", *state as u64)
                    }
                    PathEventKind::CommandTimedOut { cid, .. } => {
                        p.command_timeouts += 1;
                        ("command timed out", u64::from(*cid))
                    }
                    PathEventKind::AbortAnswered { cid, aborted, .. } => {
                        p.aborts_answered += 1;
                        // An aborted command is retried: that resubmission is the abort's doing.
                        p.disturbances += u64::from(*aborted);
                        ("abort answered", u64::from(*cid) | u64::from(*aborted) << 16)
                    }
                };
                s.trace.record(e.at_ns, kind, [i as u64, a, 0, 0]);
            }
        }
        // No retry storm: a path failure or ANA change moves each outstanding IO a few times at most
        // (an IO also fails on the path it moved to if that one breaks too), never without end.
        let disturbances: u64 = self.paths.iter().map(|p| p.disturbances).sum::<u64>()
            + self.faults.iter().filter(|f| f.started).count() as u64;
        let bound = 16 + 4 * self.cfg.queue_depth as u64 * (disturbances + 1);
        if s.retries > bound {
            let what = format!(
                "retry storm: the channel resubmitted IOs {} times after {disturbances} path failures, ANA changes and faults",
                s.retries
            );
            s.violate(now_ns, what);
        }
    }

    fn apply_faults(&mut self, now_ns: u64) {
        for i in 0..self.faults.len() {
            let f = self.faults[i];
            if !f.started && now_ns >= f.start_ns {
                self.faults[i].started = true;
                self.fault_edge(f, true, now_ns);
            }
            if f.started && !f.ended && now_ns >= f.end_ns {
                self.faults[i].ended = true;
                self.fault_edge(f, false, now_ns);
            }
        }
    }

    fn fault_edge(&mut self, f: Fault, begin: bool, now_ns: u64) {
        let code = match f.kind {
            FaultKind::Kill => 1,
            FaultKind::Hang => 2,
            FaultKind::Blackhole => 3,
            FaultKind::Delay { .. } => 4,
            FaultKind::Reset => 5,
            FaultKind::AnaInaccessible => 6,
        };
        lock(&self.shared).trace.record(
            now_ns,
            if begin { "fault begins" } else { "fault ends" },
            [f.gateway as u64, code, 0, 0],
        );
        let g = &mut self.gateways[f.gateway];
        match (f.kind, begin) {
            (FaultKind::Kill, true) => g.kill(&self.net),
            (FaultKind::Kill, false) => g.start(&self.net, &self.dyn_clock, &self.bdev),
            (FaultKind::Hang, on) => g.hung = on,
            (FaultKind::Blackhole, on) => self.net.blackhole(g.traddr, PORT, on),
            (FaultKind::Delay { min_us, max_us }, true) => {
                self.net.set_delay(g.traddr, PORT, min_us * 1_000, max_us * 1_000)
            }
            (FaultKind::Delay { .. }, false) => self.net.set_delay(g.traddr, PORT, 0, 0),
            (FaultKind::Reset, true) => {
                self.net.reset(g.traddr, PORT);
            }
            (FaultKind::Reset, false) => {}
            (FaultKind::AnaInaccessible, true) => g.set_ana(AnaState::Inaccessible),
            (FaultKind::AnaInaccessible, false) => g.set_ana(AnaState::Optimized),
        }
    }

    /// Draws each gateway's faults: a sequence of non-overlapping faults with gaps.
    fn plan_faults(&mut self, from_ns: u64, until_ns: u64) {
        for gateway in 0..self.gateways.len() {
            let mut t = from_ns + self.rng.gen_range(0..=self.cfg.max_fault_ms) * 1_000_000;
            let mut n = 0;
            while t < until_ns && n < self.cfg.max_faults_per_gateway {
                let len_ns = self.rng.gen_range(20..=self.cfg.max_fault_ms) * 1_000_000;
                let kind = match self.rng.gen_range(0..6u8) {
                    0 => FaultKind::Kill,
                    1 => FaultKind::Hang,
                    2 => FaultKind::Blackhole,
                    3 => {
                        let max_us = self.rng.gen_range(0..=self.cfg.max_delay_us);
                        FaultKind::Delay { min_us: self.rng.gen_range(0..=max_us), max_us }
                    }
                    4 => FaultKind::Reset,
                    _ => FaultKind::AnaInaccessible,
                };
                let end_ns = (t + len_ns).min(until_ns);
                self.faults.push(Fault { gateway, kind, start_ns: t, end_ns, started: false, ended: false });
                t = end_ns + self.rng.gen_range(0..=self.cfg.max_fault_ms) * 1_000_000;
                n += 1;
            }
        }
    }

    /// Attaches both gateways as paths of one multipath bdev.
    fn attach(&mut self) -> Option<Arc<MpBdev>> {
        let kato_ms = self.rng.gen_range(self.cfg.kato_ms.0..=self.cfg.kato_ms.1);
        self.kato_ms = kato_ms;
        let opts = ControllerOptions {
            keep_alive_timeout_ms: kato_ms,
            io_queue_depth: 32,
            connect_timeout_ms: 1_000,
            io_timeout_ms: self.cfg.io_timeout_ms[self.rng.gen_range(0..self.cfg.io_timeout_ms.len())],
            action_on_timeout: TIMEOUT_ACTIONS[self.rng.gen_range(0..TIMEOUT_ACTIONS.len())],
            reconnect: ReconnectPolicy { reconnect_delay_ms: self.reconnect_delay_ms, ctrlr_loss_timeout_ms: None },
            ..ControllerOptions::default()
        };
        let host_id = HostIdentity { hostnqn: "nqn.2014-08.org.nvmexpress:uuid:sim-host".into(), hostid: [7; 16] };
        lock(&self.shared).trace.record(
            0,
            "attach",
            [kato_ms.into(), self.reconnect_delay_ms, self.step_ns, opts.io_timeout_ms],
        );
        let mut replies = Vec::new();
        for (i, g) in self.gateways.iter().enumerate() {
            let trid = TransportId::tcp(g.traddr, PORT, NQN);
            let shared = Arc::new(CtrlrShared::new());
            let (tx, rx) = std::sync::mpsc::channel();
            let req = AttachRequest { index: i as u16, trid: &trid, opts: &opts, host: &host_id };
            let now = self.now_ns();
            if let Err(e) = self.host.poller().attach_supervised(&req, &shared, Some((1, Some(tx))), now) {
                self.violate(format!("attach {}: {e}", g.traddr));
                return None;
            }
            self.paths.push(Path {
                shared,
                last_state: CtrlrState::Connecting,
                failures: 0,
                disturbances: 0,
                command_timeouts: 0,
                aborts_answered: 0,
            });
            replies.push(rx);
        }
        let mut data: Vec<Option<ControllerData>> = vec![None; replies.len()];
        for _ in 0..100_000 {
            for (i, rx) in replies.iter().enumerate() {
                if data[i].is_none() {
                    match rx.try_recv() {
                        Ok(Ok(d)) => data[i] = Some(d),
                        Ok(Err(e)) => {
                            self.violate(format!("attach of path {i} failed: {e}"));
                            return None;
                        }
                        Err(_) => {}
                    }
                }
            }
            let ready = self
                .paths
                .iter()
                .all(|p| p.shared.state() == CtrlrState::Enabled && p.shared.cores_connected() & 1 != 0);
            if data.iter().all(Option::is_some) && ready {
                break;
            }
            self.step();
        }
        let mut refs = Vec::new();
        for (i, d) in data.iter().enumerate() {
            let Some(d) = d else {
                self.violate(format!("path {i} did not come up"));
                return None;
            };
            let Some(nsd) = d.namespaces.first() else {
                self.violate(format!("path {i} has no namespace"));
                return None;
            };
            let ns = Namespace {
                ctrlr: i as u16,
                nsid: nsd.nsid,
                block_size: nsd.block_size,
                num_blocks: nsd.num_blocks,
                max_transfer_bytes: d.max_transfer_bytes.unwrap_or(1 << 20),
            };
            refs.push(PathRef { ns, shared: self.paths[i].shared.clone() });
        }
        let mut refs = refs.into_iter();
        let bdev = Arc::new(MpBdev::new("Nvme0n1", refs.next()?, Some(UUID)));
        for p in refs {
            bdev.add_path(p);
        }
        match self.rng.gen_range(0..4u8) {
            0 => bdev.set_policy(Policy::ActiveActive, Selector::RoundRobin, self.rng.gen_range(1..4)),
            1 => bdev.set_policy(Policy::ActiveActive, Selector::QueueDepth, 1),
            _ => {}
        }
        Some(bdev)
    }

    fn run_until(&mut self, limit_ns: u64, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let until = self.now_ns() + limit_ns;
        while self.now_ns() < until {
            if done(self) || self.violated() {
                return true;
            }
            self.step();
        }
        false
    }

    fn settled(&mut self) -> bool {
        let s = lock(&self.shared);
        s.outstanding() == 0
            && self.paths.iter().all(|p| p.shared.state() == CtrlrState::Enabled && p.shared.cores_connected() & 1 != 0)
    }

    /// Runs the seed to the end; returns the report.
    pub(crate) fn run(mut self) -> SeedReport {
        let Some(bdev) = self.attach() else { return self.report() };
        let start = self.now_ns();
        let run_ns = self.cfg.duration_ms * 1_000_000;
        self.plan_faults(start, start + run_ns);
        let params = WorkloadParams {
            queue_depth: self.rng.gen_range(1..=self.cfg.queue_depth),
            max_blocks: self.cfg.max_blocks,
            write_percent: self.rng.gen_range(30..=90),
            invalid_per_mille: self.cfg.invalid_per_mille,
        };
        let job_rng = SmallRng::seed_from_u64(self.rng.gen());
        let job = WorkloadJob::new(bdev, self.shared.clone(), job_rng, params);
        self.host.poller().add_job(Box::new(job));
        self.run_until(run_ns, |_| false);
        // Heal everything, stop new IO, and wait for what is outstanding.
        let now = self.now_ns();
        for f in &mut self.faults {
            f.end_ns = f.end_ns.min(now);
            f.start_ns = f.start_ns.min(now);
        }
        self.step();
        lock(&self.shared).phase = Phase::Drain;
        let healed_at = self.now_ns();
        // Long enough for every given-up association's keep-alive to run out on its gateway
        // (so a late write would have landed by now) and for every path to come back.
        let min_drain_ns = 2 * u64::from(self.kato_ms) * 1_000_000 + 2 * self.reconnect_delay_ms * 1_000_000;
        // Nothing fast happens any more: coarser steps.
        self.step_ns = self.step_ns.max(self.cfg.drain_step_us * 1_000);
        let drain_limit_ns = self.cfg.drain_limit_ms * 1_000_000;
        let drained = self.run_until(drain_limit_ns, |w| w.now_ns() >= healed_at + min_drain_ns && w.settled());
        if !drained {
            let s = lock(&self.shared);
            let (out, oldest) = (s.outstanding(), s.oldest_submit_ns());
            drop(s);
            let states: Vec<CtrlrState> = self.paths.iter().map(|p| p.shared.state()).collect();
            self.violate(format!(
                "not settled {} ms after every fault healed: {out} IOs outstanding (oldest submitted at {:?} ms), paths {states:?}",
                drain_limit_ns / 1_000_000,
                oldest.map(|t| t / 1_000_000)
            ));
            return self.report();
        }
        if self.violated() {
            return self.report();
        }
        // Every block read back through the multipath bdev.
        lock(&self.shared).phase = Phase::Verify;
        let verified = self.run_until(drain_limit_ns, |w| lock(&w.shared).phase == Phase::Done);
        if !verified {
            self.violate("the final read of every block did not finish".into());
            return self.report();
        }
        self.final_checks();
        self.report()
    }

    fn final_checks(&mut self) {
        // The store, whole blocks: the last acknowledged version everywhere.
        let bs = self.cfg.block_size as usize;
        let mut block = vec![0u8; bs];
        for b in 0..self.cfg.num_blocks {
            if self.bdev.read(b * bs as u64, &mut block).is_ok() {
                let s = lock(&self.shared);
                if let Some(why) = s.check_block(b, &block, false) {
                    drop(s);
                    self.violate(format!("final store check: {why}"));
                    return;
                }
            }
        }
        // No reconnect storm.
        let elapsed_ns = self.now_ns();
        for (i, p) in self.paths.iter().enumerate() {
            let attempts = u64::from(p.shared.reconnect_attempts());
            let bound = elapsed_ns / (self.reconnect_delay_ms * 1_000_000) + u64::from(p.failures) + 2;
            if attempts > bound {
                self.violate(format!(
                    "reconnect storm on path {i}: {attempts} attempts in {} ms with reconnect_delay {} ms and {} failures",
                    elapsed_ns / 1_000_000,
                    self.reconnect_delay_ms,
                    p.failures
                ));
                return;
            }
        }
        // No leaked queue pairs: each gateway holds one controller of ours, with its admin and one IO queue.
        for i in 0..self.gateways.len() {
            if let Some((qpairs, ctrlrs)) = self.gateways[i].census() {
                if qpairs != 2 || ctrlrs != 1 {
                    self.violate(format!(
                        "gateway {i} holds {qpairs} queue pairs and {ctrlrs} controllers after settling (expected 2 and 1)"
                    ));
                    return;
                }
            }
        }
    }

    fn report(self) -> SeedReport {
        let s = lock(&self.shared);
        SeedReport {
            seed: self.seed,
            violation: s.violation.clone(),
            trace_hash: s.trace.hash(),
            events: s.trace.len(),
            trace_tail: s.trace.tail(),
            sim_ms: self.clock.now_ns() / 1_000_000,
            steps: self.steps,
            completed: s.completed,
            expected_errors: s.expected_errors,
            faults: self.faults.len(),
            max_latency_ms: s.max_latency_ns / 1_000_000,
            command_timeouts: self.paths.iter().map(|p| p.command_timeouts).sum(),
            aborts_answered: self.paths.iter().map(|p| p.aborts_answered).sum(),
        }
    }
}
