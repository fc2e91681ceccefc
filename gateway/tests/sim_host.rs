//! The real host engine and the real gateway on one thread, joined by the
//! simulated fabric and driven by a manual clock: what the multipath
//! simulation builds on. Nothing here reads the wall clock or opens a socket.

use std::sync::{Arc, Mutex};

use corepath_gateway::config::{ListenAddress, NamespaceParams, SubsystemParams, TargetState};
use corepath_gateway::{GatewayContext, GatewayCore, QpairOrigin};
use engine::sim::{SimListener, SimNetwork};
use engine::{
    AdrFam, AttachRequest, Clock, ControllerOptions, HostCore, HostIdentity, IoBuf, IoChannel, IoOp, ManualClock,
    Namespace, Reactor, RingIo, TargetOptions, TargetTransport, TrType, TransportId,
};

const NQN: &str = "nqn.2021-06.io.spdk:sim";
const STEP_NS: u64 = 10_000;

struct World {
    clock: ManualClock,
    gateway: Reactor<GatewayCore<SimListener>>,
    host: Reactor<HostCore<engine::sim::SimHostTransport>>,
    turns: u64,
}

impl World {
    fn new() -> World {
        let net = SimNetwork::new();
        let clock = ManualClock::new();
        let state = Arc::new(Mutex::new(TargetState::new()));
        let listen = ListenAddress {
            trtype: TrType::Tcp,
            adrfam: AdrFam::Ipv4,
            traddr: "127.0.0.2".into(),
            trsvcid: "4420".into(),
        };
        {
            let mut st = state.lock().unwrap();
            st.create_transport(TrType::Tcp, TargetOptions::default()).unwrap();
            st.bdev_malloc_create(Some("Malloc0"), 2048, 512, None).unwrap();
            st.create_subsystem(SubsystemParams { nqn: NQN.into(), allow_any_host: true, ..Default::default() })
                .unwrap();
            st.add_ns(NQN, NamespaceParams { bdev_name: "Malloc0".into(), ..Default::default() }).unwrap();
            st.add_listener(NQN, listen.clone()).unwrap();
        }
        let ctx = GatewayContext::new(state);
        let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let mut gateway = Reactor::new(0, 0, GatewayCore::new(0, ctx), shared_clock.clone(), 64).expect("reactor");
        let listener = net.target().listen("127.0.0.2", "4420", &TargetOptions::default()).unwrap();
        gateway.poller().add_listener(QpairOrigin { listen, opts: TargetOptions::default() }, listener);
        let host = Reactor::new(0, 1, HostCore::new(net.host()), shared_clock, 64).expect("reactor");
        World { clock, gateway, host, turns: 0 }
    }

    /// One step of simulated time: the gateway's turn, then the host's.
    fn step(&mut self, run_host: bool) {
        self.gateway.run_once();
        if run_host {
            self.host.run_once();
        }
        self.clock.advance_ns(STEP_NS);
        self.turns += 1;
    }

    fn run_until<T>(&mut self, max_turns: u64, mut done: impl FnMut(&mut Self) -> Option<T>) -> T {
        for _ in 0..max_turns {
            if let Some(v) = done(self) {
                return v;
            }
            self.step(true);
        }
        panic!("nothing happened within {max_turns} simulated turns");
    }

    /// Attaches controller 0 and returns its namespace; also records the turn of each milestone.
    fn attach(&mut self, milestones: &mut Vec<(&'static str, u64)>) -> Namespace {
        let trid = TransportId::tcp("127.0.0.2", "4420", NQN);
        let opts = ControllerOptions::default();
        let host_id = HostIdentity { hostnqn: "nqn.2014-08.org.nvmexpress:uuid:sim-host".into(), hostid: [7; 16] };
        let now = self.clock.now_ns();
        let req = AttachRequest { index: 0, trid: &trid, opts: &opts, host: &host_id };
        self.host.poller().start_admin(&req, 1, now).unwrap();
        let data = self.run_until(10_000, |w| w.host.poller().admin_outcome(0)).unwrap();
        milestones.push(("admin ready", self.turns));
        let now = self.clock.now_ns();
        self.host.poller().start_io(&req, 1, &data, now).unwrap();
        self.run_until(10_000, |w| w.host.poller().io_outcome(0)).unwrap();
        milestones.push(("io queue ready", self.turns));
        let controller = engine::Controller { index: 0, trid, data, shared: Default::default() };
        controller.namespace(1).expect("namespace 1 is active")
    }

    fn io(&mut self, chan: &IoChannel, ns: &Namespace, op: IoOp, lba: u64, buf: IoBuf) -> engine::IoCompletion {
        let blocks = (buf.len() / ns.block_size as usize) as u32;
        chan.submit(RingIo { ns: ns.clone(), op, lba, num_blocks: blocks, buf: Some(buf), tag: lba }).unwrap();
        self.run_until(10_000, |_| chan.poll_completion())
    }
}

fn pattern(len: usize, seed: u8) -> IoBuf {
    let mut b = IoBuf::new(len);
    for (i, x) in b.as_mut_slice().iter_mut().enumerate() {
        *x = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    b
}

/// Attach, write, read back; returns the milestones with their turn numbers.
fn scenario() -> Vec<(&'static str, u64)> {
    let mut w = World::new();
    let mut milestones = Vec::new();
    let ns = w.attach(&mut milestones);
    let (chan, job) = IoChannel::new(8);
    w.host.poller().add_job(Box::new(job));
    let written = pattern(8192, 5);
    let expected = written.as_slice().to_vec();
    assert!(w.io(&chan, &ns, IoOp::Write, 16, written).status.is_success());
    milestones.push(("write done", w.turns));
    let read = w.io(&chan, &ns, IoOp::Read, 16, IoBuf::new(8192));
    assert!(read.status.is_success());
    assert_eq!(read.buf.unwrap().as_slice(), expected.as_slice(), "read back what was written");
    milestones.push(("read done", w.turns));
    milestones
}

#[test]
fn host_and_gateway_run_deterministically_on_simulated_time() {
    let first = scenario();
    let second = scenario();
    assert_eq!(first.len(), 4);
    assert_eq!(first, second, "the same simulated run reaches every milestone on the same turn");
}

#[test]
fn keep_alives_at_half_kato_keep_the_controller_through_30_simulated_seconds() {
    let mut w = World::new();
    let ns = w.attach(&mut Vec::new());
    let (chan, job) = IoChannel::new(8);
    w.host.poller().add_job(Box::new(job));
    // 30 s of simulated time, three times the 10 s KATO, with no IO at all.
    let start = w.clock.now_ns();
    while w.clock.now_ns() - start < 30_000_000_000 {
        w.gateway.run_once();
        w.host.run_once();
        w.clock.advance_ns(50_000_000);
    }
    let done = w.io(&chan, &ns, IoOp::Write, 0, pattern(512, 1));
    assert!(done.status.is_success(), "the controller is still there: {}", done.status);
}

#[test]
fn a_silent_host_loses_its_controller_once_kato_runs_out() {
    let mut w = World::new();
    let ns = w.attach(&mut Vec::new());
    let (chan, job) = IoChannel::new(8);
    w.host.poller().add_job(Box::new(job));
    // The host is frozen (no keep-alive) for 11 s against a 10 s KATO.
    let start = w.clock.now_ns();
    while w.clock.now_ns() - start < 11_000_000_000 {
        w.step(false);
        w.clock.advance_ns(50_000_000);
    }
    let done = w.io(&chan, &ns, IoOp::Write, 0, pattern(512, 2));
    assert!(done.status.is_path_error(), "the association is gone, so the IO fails with a path error: {}", done.status);
}
