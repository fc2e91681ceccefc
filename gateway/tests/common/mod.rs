//! Test rig for the gateway's data path: an in-memory queue pair that takes
//! SQEs (and write data) from the test and records the CQEs (and read data)
//! the gateway produces, a listener and transport around it, and a
//! single-reactor gateway core driven turn by turn on a manual clock.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use corepath_gateway::bdev::Bdev;
use corepath_gateway::config::{ListenAddress, NamespaceParams, SubsystemParams, TargetState};
use corepath_gateway::{GatewayContext, GatewayCore, QpairOrigin};
use engine::{
    AdrFam, ManualClock, Reactor, TargetCommand, TargetListener, TargetOptions, TargetQpair, TargetTransport, TrType,
    TransportError,
};
use protocol::fabrics::CNTLID_DYNAMIC;
use protocol::features::{fid, set_features_sqe, NumberOfQueues};
use protocol::property::Cc;
use protocol::{ConnectData, Cqe, SglDescriptor, Sqe, Status, StatusCodeType};

pub const SUBNQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";
pub const HOST_A: &str = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-00000000000a";
pub const HOST_B: &str = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-00000000000b";
pub const HOST_DENIED: &str = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-0000000000dd";
pub const BDEV_UUID: [u8; 16] = [0x5a, 0x1e, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 0x42];
pub const BLOCK_SIZE: u32 = 512;
pub const NUM_BLOCKS: u64 = 2048;
pub const MS: u64 = 1_000_000;

pub fn hostid_of(hostnqn: &str) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[15] = hostnqn.as_bytes().last().copied().unwrap_or(0);
    id
}

pub fn tcp_addr(traddr: &str, trsvcid: &str) -> ListenAddress {
    ListenAddress { trtype: TrType::Tcp, adrfam: AdrFam::Ipv4, traddr: traddr.into(), trsvcid: trsvcid.into() }
}

pub fn listen_addr() -> ListenAddress {
    tcp_addr("127.0.0.1", "4420")
}

/// Transport options with a small MDTS (64 KiB) so limits are easy to hit.
pub fn target_opts() -> TargetOptions {
    TargetOptions {
        in_capsule_data_size: 4096,
        max_io_size: 65536,
        io_unit_size: 65536,
        max_queue_depth: 128,
        max_qpairs_per_ctrlr: 5,
        c2h_success: true,
    }
}

/// A completion as the host would see it: the CQE and the data sent before it.
#[derive(Debug, Clone)]
pub struct Completion {
    pub cqe: Cqe,
    pub data: Vec<u8>,
}

impl Completion {
    pub fn status(&self) -> Status {
        self.cqe.status()
    }
    pub fn is_success(&self) -> bool {
        self.status().is_success()
    }
    pub fn assert_generic(&self, sc: u8) {
        assert_eq!((self.status().sct, self.status().sc), (StatusCodeType::Generic, sc), "{:?}", self.status());
    }
    pub fn assert_command_specific(&self, sc: u8) {
        assert_eq!((self.status().sct, self.status().sc), (StatusCodeType::CommandSpecific, sc), "{:?}", self.status());
    }
}

#[derive(Default)]
pub struct FakeShared {
    inbox: VecDeque<(Sqe, Vec<u8>)>,
    completions: Vec<Completion>,
    /// Slots freed without a completion (`TargetQpair::retire`).
    retired: Vec<u16>,
    dropped: bool,
    peer_closed: bool,
}

/// The test's end of a fake queue pair.
#[derive(Clone)]
pub struct FakeHandle {
    shared: Arc<Mutex<FakeShared>>,
}

impl FakeHandle {
    /// Sends a command; `data` is its write data (empty for none).
    pub fn submit(&self, sqe: Sqe, data: Vec<u8>) {
        self.shared.lock().unwrap().inbox.push_back((sqe, data));
    }
    /// Completions so far (taken).
    pub fn take_completions(&self) -> Vec<Completion> {
        std::mem::take(&mut self.shared.lock().unwrap().completions)
    }
    /// How many commands the gateway retired without a completion so far.
    pub fn retired_count(&self) -> usize {
        self.shared.lock().unwrap().retired.len()
    }
    /// True once the gateway dropped (closed) the queue pair.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().unwrap().dropped
    }
    /// The host closes the connection: the next poll fails.
    pub fn close(&self) {
        self.shared.lock().unwrap().peer_closed = true;
    }
}

/// The gateway's end: a `TargetQpair` in memory.
pub struct FakeQpair {
    shared: Arc<Mutex<FakeShared>>,
    ready: VecDeque<TargetCommand>,
    bufs: Vec<Vec<u8>>,
    free: Vec<u16>,
}

pub fn fake_qpair() -> (FakeQpair, FakeHandle) {
    let shared = Arc::new(Mutex::new(FakeShared::default()));
    (
        FakeQpair { shared: shared.clone(), ready: VecDeque::new(), bufs: Vec::new(), free: Vec::new() },
        FakeHandle { shared },
    )
}

impl TargetQpair for FakeQpair {
    fn poll(&mut self, _now_ns: u64) -> Result<usize, TransportError> {
        let mut shared = self.shared.lock().unwrap();
        if shared.peer_closed {
            return Err(TransportError::Closed);
        }
        let mut n = 0;
        while let Some((sqe, data)) = shared.inbox.pop_front() {
            // The buffer a real transport would have: the write data received, or
            // room for the SGL's length of read data.
            let buf = if data.is_empty() {
                vec![0u8; SglDescriptor::parse(&sqe.dptr).map(|d| d.len() as usize).unwrap_or(0)]
            } else {
                data
            };
            let slot = match self.free.pop() {
                Some(s) => {
                    self.bufs[s as usize] = buf;
                    s
                }
                None => {
                    self.bufs.push(buf);
                    (self.bufs.len() - 1) as u16
                }
            };
            self.ready.push_back(TargetCommand { slot, sqe });
            n += 1;
        }
        Ok(n)
    }

    fn next_command(&mut self) -> Option<TargetCommand> {
        self.ready.pop_front()
    }

    fn data_mut(&mut self, slot: u16) -> &mut [u8] {
        &mut self.bufs[slot as usize]
    }

    fn complete(&mut self, slot: u16, cqe: &Cqe, data_len: u32) {
        let data = self.bufs[slot as usize][..data_len as usize].to_vec();
        self.shared.lock().unwrap().completions.push(Completion { cqe: *cqe, data });
        self.free.push(slot);
    }

    fn retire(&mut self, slot: u16) {
        self.shared.lock().unwrap().retired.push(slot);
        self.free.push(slot);
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    fn peer_addr(&self) -> String {
        "fake:1".to_string()
    }
}

impl Drop for FakeQpair {
    fn drop(&mut self) {
        self.shared.lock().unwrap().dropped = true;
    }
}

/// A listener whose pending connections the test pushes.
pub struct FakeListener {
    pending: Arc<Mutex<VecDeque<FakeQpair>>>,
}

impl TargetListener for FakeListener {
    type Qpair = FakeQpair;
    fn accept(&mut self) -> Result<Option<FakeQpair>, TransportError> {
        Ok(self.pending.lock().unwrap().pop_front())
    }
}

/// A transport whose listeners all share one queue of pending connections.
#[derive(Default, Clone)]
pub struct FakeTransport {
    pub pending: Arc<Mutex<VecDeque<FakeQpair>>>,
}

impl FakeTransport {
    /// A host connects: returns its end.
    pub fn dial(&self) -> FakeHandle {
        let (qp, h) = fake_qpair();
        self.pending.lock().unwrap().push_back(qp);
        h
    }
}

impl TargetTransport for FakeTransport {
    type Listener = FakeListener;
    fn listen(&self, _traddr: &str, _trsvcid: &str, _opts: &TargetOptions) -> Result<FakeListener, TransportError> {
        Ok(FakeListener { pending: self.pending.clone() })
    }
}

/// How the rig's subsystem is configured.
pub struct RigConfig {
    pub min_cntlid: u16,
    pub max_cntlid: u16,
    pub allow_any_host: bool,
    pub ana_reporting: bool,
}

impl Default for RigConfig {
    fn default() -> Self {
        RigConfig { min_cntlid: 1, max_cntlid: 32760, allow_any_host: false, ana_reporting: false }
    }
}

/// The gateway configured as in DESIGN.md (one subsystem, one malloc
/// namespace, one TCP listener; hosts A and B allowed), driven turn by turn.
pub struct Rig {
    pub reactor: Reactor<GatewayCore<FakeListener>>,
    pub clock: ManualClock,
    pub ctx: Arc<GatewayContext>,
    pub state: Arc<Mutex<TargetState>>,
    pub bdev: Arc<Bdev>,
}

pub fn configured_state(cfg: &RigConfig) -> (TargetState, Arc<Bdev>) {
    let mut state = TargetState::new();
    state.create_transport(TrType::Tcp, target_opts()).unwrap();
    let bdev = state.bdev_malloc_create(Some("Malloc0"), NUM_BLOCKS, BLOCK_SIZE, Some(BDEV_UUID)).unwrap();
    state
        .create_subsystem(SubsystemParams {
            nqn: SUBNQN.into(),
            serial_number: Some("SPDK_BDEV_0".into()),
            model_number: Some("corepath gateway".into()),
            allow_any_host: cfg.allow_any_host,
            min_cntlid: Some(cfg.min_cntlid),
            max_cntlid: Some(cfg.max_cntlid),
            ana_reporting: cfg.ana_reporting,
            ..Default::default()
        })
        .unwrap();
    state.add_ns(SUBNQN, NamespaceParams { bdev_name: "Malloc0".into(), ..Default::default() }).unwrap();
    state.add_listener(SUBNQN, listen_addr()).unwrap();
    if !cfg.allow_any_host {
        state.add_host(SUBNQN, HOST_A).unwrap();
        state.add_host(SUBNQN, HOST_B).unwrap();
    }
    (state, bdev)
}

impl Rig {
    pub fn new() -> Rig {
        Rig::with(RigConfig::default())
    }

    pub fn with(cfg: RigConfig) -> Rig {
        let (state, bdev) = configured_state(&cfg);
        let state = Arc::new(Mutex::new(state));
        let ctx = GatewayContext::new(state.clone());
        let clock = ManualClock::new();
        // Start the clock away from zero so "time 0" is never special.
        clock.advance_ns(1_000 * MS);
        let core = GatewayCore::new(0, ctx.clone());
        let reactor = Reactor::new(0, 0, core, Arc::new(clock.clone()), 64).expect("reactor");
        Rig { reactor, clock, ctx, state, bdev }
    }

    /// A new connection on the subsystem's listener.
    pub fn add_qpair(&mut self) -> FakeHandle {
        self.add_qpair_at(listen_addr())
    }

    /// A new connection that came in on `addr`.
    pub fn add_qpair_at(&mut self, addr: ListenAddress) -> FakeHandle {
        let (qp, h) = fake_qpair();
        self.reactor.poller().add_qpair(qp, QpairOrigin { listen: addr, opts: target_opts() });
        h
    }

    /// One reactor turn.
    pub fn turn(&mut self) -> usize {
        self.reactor.run_once()
    }

    /// Sends one command and runs the reactor until it completes; returns its completion.
    pub fn exec(&mut self, h: &FakeHandle, sqe: Sqe, data: Vec<u8>) -> Completion {
        h.submit(sqe, data);
        for _ in 0..4 {
            self.turn();
            let mut c = h.take_completions();
            if !c.is_empty() {
                assert_eq!(c.len(), 1, "one command, one completion: {c:?}");
                return c.remove(0);
            }
        }
        panic!("command {sqe:?} did not complete");
    }

    /// Sends one command and checks that nothing completes.
    pub fn exec_no_completion(&mut self, h: &FakeHandle, sqe: Sqe, data: Vec<u8>) {
        h.submit(sqe, data);
        for _ in 0..4 {
            self.turn();
        }
        assert!(h.take_completions().is_empty());
    }

    /// Connect on a new admin queue.
    pub fn connect_admin(&mut self, subnqn: &str, hostnqn: &str, kato_ms: u32) -> (FakeHandle, Completion) {
        let h = self.add_qpair();
        let c = self.exec(&h, connect_sqe(0, 31, kato_ms), connect_data(CNTLID_DYNAMIC, subnqn, hostnqn));
        (h, c)
    }

    /// A controller of `hostnqn`, enabled, with 4 IO queues granted: (admin queue, cntlid).
    pub fn controller(&mut self, hostnqn: &str, kato_ms: u32) -> (FakeHandle, u16) {
        let (h, c) = self.connect_admin(SUBNQN, hostnqn, kato_ms);
        assert!(c.is_success(), "{:?}", c.status());
        let cntlid = c.cqe.dw0 as u16;
        self.enable(&h);
        let c = self.exec(
            &h,
            set_features_sqe(fid::NUMBER_OF_QUEUES, NumberOfQueues { nsq: 4, ncq: 4 }.to_dword(), false),
            vec![],
        );
        assert!(c.is_success());
        (h, cntlid)
    }

    /// Writes CC.EN = 1.
    pub fn enable(&mut self, h: &FakeHandle) {
        let c = self.exec(h, Sqe::property_set(0x14, false, u64::from(Cc::enable_nvm().to_u32())), vec![]);
        assert!(c.is_success(), "{:?}", c.status());
    }

    /// Connect IO queue `qid` of controller `cntlid`.
    pub fn connect_io(&mut self, hostnqn: &str, cntlid: u16, qid: u16) -> (FakeHandle, Completion) {
        let h = self.add_qpair();
        let c = self.exec(&h, connect_sqe(qid, 127, 0), connect_data(cntlid, SUBNQN, hostnqn));
        (h, c)
    }

    /// A controller with IO queue 1 connected: (admin, io, cntlid).
    pub fn controller_with_io(&mut self, hostnqn: &str, kato_ms: u32) -> (FakeHandle, FakeHandle, u16) {
        let (admin, cntlid) = self.controller(hostnqn, kato_ms);
        let (io, c) = self.connect_io(hostnqn, cntlid, 1);
        assert!(c.is_success(), "{:?}", c.status());
        (admin, io, cntlid)
    }

    /// The bdev's bytes at `lba`.
    pub fn bdev_bytes(&self, lba: u64, nlb: u32) -> Vec<u8> {
        let mut buf = vec![0u8; (nlb * BLOCK_SIZE) as usize];
        self.bdev.read(lba * u64::from(BLOCK_SIZE), &mut buf).unwrap();
        buf
    }
}

/// A Connect SQE whose data (1024 bytes) comes in the capsule.
pub fn connect_sqe(qid: u16, sqsize: u16, kato_ms: u32) -> Sqe {
    let mut s = Sqe::connect(qid, sqsize, kato_ms);
    s.dptr = SglDescriptor::DataBlockOffset { offset: 0, len: 1024 }.to_bytes();
    s
}

pub fn connect_data(cntlid: u16, subnqn: &str, hostnqn: &str) -> Vec<u8> {
    ConnectData::new(hostid_of(hostnqn), cntlid, subnqn, hostnqn).unwrap().to_bytes().to_vec()
}

/// A Write of `nlb` blocks whose data length the SGL states.
pub fn write_sqe(nsid: u32, slba: u64, nlb: u32) -> Sqe {
    let mut s = Sqe::rw(protocol::opcode::io::WRITE, nsid, slba, nlb);
    s.dptr = SglDescriptor::TransportDataBlock { len: nlb * BLOCK_SIZE }.to_bytes();
    s
}

/// A Read of `nlb` blocks.
pub fn read_sqe(nsid: u32, slba: u64, nlb: u32) -> Sqe {
    let mut s = Sqe::rw(protocol::opcode::io::READ, nsid, slba, nlb);
    s.dptr = SglDescriptor::TransportDataBlock { len: nlb * BLOCK_SIZE }.to_bytes();
    s
}

/// `nlb` blocks of a recognisable pattern.
pub fn pattern(nlb: u32, seed: u8) -> Vec<u8> {
    (0..nlb * BLOCK_SIZE).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1).collect()
}
