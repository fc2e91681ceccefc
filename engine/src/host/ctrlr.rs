//! A controller's life across failures: the state every core reads without a
//! lock ([`CtrlrShared`]), and the supervisor on the controller's admin core
//! that resets and reconnects it ([`Supervisor`]).
//!
//! Each core follows the shared state on its own: while the controller is
//! [`CtrlrState::Enabled`] in generation `g`, a core keeps (or connects) its IO
//! queue pair of generation `g`; any other state or generation makes it drop
//! its queue pair, failing the IOs in it back to the layer above (multipath),
//! which retries them elsewhere. A core whose queue pair dies asks the
//! supervisor for a reset. Nothing here blocks a core: connect and bring-up
//! are polled state machines, and reconnect attempts wait on the clock.
//!
//! The stale-write rule, host half: when an association is given up without
//! the peer having closed it, a write sent on it may still run on the gateway
//! until the gateway's keep-alive timer expires. The supervisor publishes that
//! instant ([`CtrlrShared::writes_dead_at_ns`], computed by
//! `AdminQueue::association_dead_at_ns`: one or two KATOs after the last
//! admin answer). Our sockets are closed with RST, so nothing we sent is
//! retransmitted after that.
//!
//! Command timeouts: a core whose oldest IO outlived `io_timeout_ms` asks the
//! supervisor for an Abort of it ([`AbortRequest`]); the supervisor answers
//! through a per-core word (`abort_refused`). A refused Abort of a command
//! still outstanding, or an Abort that outlives the admin timeout, resets the
//! controller (SPDK's `action_on_timeout` abort, then reset).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, OnceLock};

use crossbeam_queue::ArrayQueue;
use protocol::log::AnaState;

use crate::host::admin::{AdminOptions, AdminQueue, AdminState};
use crate::host::connect_data::HostIdentity;
use crate::host::identify::ControllerData;
use crate::host::options::ControllerOptions;
pub use crate::host::options::ReconnectPolicy;
use crate::transport::{HostTransport, QpairOptions};
use crate::trid::TransportId;
use crate::wake::{WakeSet, Waker};

/// Reactors a controller tracks per core (bit masks and abort answers).
const TRACKED_REACTORS: usize = 64;
/// Abort requests waiting for the supervisor at most; a core whose request
/// does not fit resets the controller when its wait runs out.
const ABORT_QUEUE_LEN: usize = 64;

/// A core asks the supervisor to abort one command of its IO queue pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortRequest {
    /// The core's IO queue ID (reactor index + 1).
    pub(crate) qid: u16,
    /// The command.
    pub(crate) cid: u16,
    /// The association the command was sent on.
    pub(crate) generation: u32,
    /// The core's number for this request, echoed in the answer.
    pub(crate) seq: u32,
}

/// Namespaces whose ANA state is tracked per controller (NSIDs 1..=this).
pub const MAX_TRACKED_NSID: u32 = 64;

/// Path events kept for the control plane until it reads them.
const EVENT_QUEUE_LEN: usize = 256;

/// Margin added to KATO before a given-up association counts as dead: the
/// gateway checks its timer with `>` and on its own clock turns.
const KEEP_ALIVE_MARGIN_NS: u64 = 20_000_000;

/// Where a controller stands, as SPDK's `bdev_nvme_get_controllers` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CtrlrState {
    /// First bring-up, or a reconnect attempt, in progress.
    Connecting = 0,
    /// Up: IO flows.
    Enabled = 1,
    /// Torn down after a failure; a reconnect attempt follows.
    Resetting = 2,
    /// Waiting `reconnect_delay` before the next attempt.
    ReconnectDelayed = 3,
    /// Gave up (ctrlr_loss_timeout ran out, or no reconnect allowed).
    Failed = 4,
    /// Being detached.
    Deleting = 5,
}

impl CtrlrState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Enabled,
            2 => Self::Resetting,
            3 => Self::ReconnectDelayed,
            4 => Self::Failed,
            5 => Self::Deleting,
            _ => Self::Connecting,
        }
    }

    /// SPDK's name for the state (`bdev_nvme_get_controllers` "state").
    pub fn spdk_name(self) -> &'static str {
        match self {
            Self::Connecting => "resetting",
            Self::Enabled => "enabled",
            Self::Resetting => "resetting",
            Self::ReconnectDelayed => "reconnect_is_delayed",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }
}

/// What happened to a path, for reports (time on the engine's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEvent {
    /// When.
    pub at_ns: u64,
    /// What.
    pub kind: PathEventKind,
}

/// Kinds of [`PathEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathEventKind {
    /// The controller was given up; IO moves away. `peer_closed`: the gateway closed it.
    Failed {
        /// Why.
        reason: String,
        /// The gateway closed the connection (writes may be retried at once).
        peer_closed: bool,
    },
    /// A reconnect attempt started.
    ReconnectStarted,
    /// A reconnect attempt failed.
    ReconnectFailed(String),
    /// Up again, with this controller ID.
    Reconnected {
        /// CNTLID of the new association.
        cntlid: u16,
    },
    /// ctrlr_loss_timeout ran out: no more attempts.
    Lost,
    /// An IO command outlived `io_timeout_ms`.
    CommandTimedOut {
        /// IO queue ID.
        qid: u16,
        /// Command ID.
        cid: u16,
    },
    /// The controller answered an Abort of a timed-out command.
    AbortAnswered {
        /// IO queue ID.
        qid: u16,
        /// Command ID.
        cid: u16,
        /// It aborted the command (else the command runs on, and a reset follows).
        aborted: bool,
    },
    /// The ANA state of a namespace changed.
    AnaChanged {
        /// Namespace.
        nsid: u32,
        /// New state.
        state: AnaState,
    },
}

/// Where the first bring-up's result goes.
pub type BringupReply = Sender<Result<ControllerData, String>>;

/// Why a queue pair failed the IOs it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathFault {
    /// The gateway closed the connection: nothing more from it will execute.
    PeerClosed,
    /// We gave the association up (timeout, keep-alive, reset, state change):
    /// a write may still execute on the gateway until its keep-alive expires.
    Abandoned,
}

/// The controller state all cores read: lock-free, one cache line for the hot word.
#[derive(Debug)]
pub struct CtrlrShared {
    /// state (bits 0..8) | cntlid (bits 8..24) | generation (bits 32..64).
    word: AtomicU64,
    reset_requested: AtomicBool,
    ana_refresh_requested: AtomicBool,
    /// Associations of generation <= this are dead from `dead_at_ns` on.
    dead_generation: AtomicU32,
    dead_at_ns: AtomicU64,
    /// ANA state per NSID (index nsid-1); 0 = not reported (treated as optimized).
    ana: [AtomicU8; MAX_TRACKED_NSID as usize],
    /// Bit per reactor index: that core's IO queue pair of the current generation is up.
    cores_connected: AtomicU64,
    reconnect_attempts: AtomicU32,
    /// What IO queue pairs need from bring-up: MQES (bits 0..16) | in-capsule bytes (bits 32..64).
    io_params: AtomicU64,
    events: ArrayQueue<PathEvent>,
    last_failure: Mutex<String>,
    /// Cores' requests to abort a timed-out command.
    abort_requests: ArrayQueue<AbortRequest>,
    /// Per reactor: the last refused Abort, `seq << 16 | cid` (0: none).
    abort_refused: [AtomicU64; TRACKED_REACTORS],
    /// The engine's reactors, woken on every change another core must act on
    /// (set once at attach; empty in the simulation, which never sleeps).
    wakers: OnceLock<Box<[Waker]>>,
}

impl Default for CtrlrShared {
    fn default() -> Self {
        Self::new()
    }
}

fn pack(state: CtrlrState, cntlid: u16, generation: u32) -> u64 {
    u64::from(state as u8) | (u64::from(cntlid) << 8) | (u64::from(generation) << 32)
}

impl CtrlrShared {
    /// A controller not yet connected.
    pub fn new() -> Self {
        CtrlrShared {
            word: AtomicU64::new(pack(CtrlrState::Connecting, 0, 0)),
            reset_requested: AtomicBool::new(false),
            ana_refresh_requested: AtomicBool::new(false),
            dead_generation: AtomicU32::new(0),
            dead_at_ns: AtomicU64::new(0),
            ana: std::array::from_fn(|_| AtomicU8::new(0)),
            cores_connected: AtomicU64::new(0),
            reconnect_attempts: AtomicU32::new(0),
            io_params: AtomicU64::new(0),
            events: ArrayQueue::new(EVENT_QUEUE_LEN),
            last_failure: Mutex::new(String::new()),
            abort_requests: ArrayQueue::new(ABORT_QUEUE_LEN),
            abort_refused: std::array::from_fn(|_| AtomicU64::new(0)),
            wakers: OnceLock::new(),
        }
    }

    /// The reactors to wake when this state changes (only the first call counts).
    pub fn set_wakers(&self, wakers: Vec<Waker>) {
        let _ = self.wakers.set(wakers.into_boxed_slice());
    }

    /// Wakes every reactor after a change they must see (a sleeping one would
    /// not look before its next deadline). One fence and one load per
    /// reactor that is awake.
    fn wake_all(&self) {
        if let Some(wakers) = self.wakers.get() {
            for w in wakers.iter() {
                w.wake();
            }
        }
    }

    /// (state, cntlid, generation), read once.
    #[inline]
    pub fn snapshot(&self) -> (CtrlrState, u16, u32) {
        let w = self.word.load(Ordering::Acquire);
        (CtrlrState::from_u8(w as u8), (w >> 8) as u16, (w >> 32) as u32)
    }

    /// The state.
    pub fn state(&self) -> CtrlrState {
        self.snapshot().0
    }

    /// The controller ID of the current (or last) association.
    pub fn cntlid(&self) -> u16 {
        self.snapshot().1
    }

    /// Generation of the current association (bumped on each (re)connect).
    pub fn generation(&self) -> u32 {
        self.snapshot().2
    }

    /// (MQES, in-capsule data bytes) of the current association.
    pub(crate) fn io_params(&self) -> (u16, u32) {
        let v = self.io_params.load(Ordering::Acquire);
        (v as u16, (v >> 32) as u32)
    }

    pub(crate) fn publish(&self, state: CtrlrState, cntlid: u16, generation: u32) {
        self.word.store(pack(state, cntlid, generation), Ordering::Release);
        self.wake_all();
    }

    /// Asks the supervisor to reset the controller (an IO queue pair died or timed out).
    pub fn request_reset(&self) {
        self.reset_requested.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Asks the supervisor to read the ANA log again (an IO came back with an ANA status).
    pub fn request_ana_refresh(&self) {
        self.ana_refresh_requested.store(true, Ordering::Release);
        self.wake_all();
    }

    /// When a write sent on an association of `generation` can no longer run on
    /// the gateway: `None` while that association has not been given up yet.
    #[inline]
    pub fn writes_dead_at_ns(&self, generation: u32) -> Option<u64> {
        let at = self.dead_at_ns.load(Ordering::Acquire);
        (self.dead_generation.load(Ordering::Acquire) >= generation).then_some(at)
    }

    fn mark_dead(&self, generation: u32, at_ns: u64) {
        self.dead_at_ns.fetch_max(at_ns, Ordering::AcqRel);
        self.dead_generation.fetch_max(generation, Ordering::AcqRel);
        self.wake_all();
    }

    /// The ANA state of namespace `nsid` on this controller (`None`: not reported).
    #[inline]
    pub fn ana_state(&self, nsid: u32) -> Option<AnaState> {
        let i = nsid.checked_sub(1)? as usize;
        let v = self.ana.get(i)?.load(Ordering::Relaxed);
        if v == 0 {
            None
        } else {
            AnaState::from_u8(v).ok()
        }
    }

    /// Records an ANA state (from the ANA log, or from an IO's ANA status).
    pub fn set_ana_state(&self, nsid: u32, state: AnaState, now_ns: u64) {
        let Some(slot) = nsid.checked_sub(1).and_then(|i| self.ana.get(i as usize)) else { return };
        if slot.swap(state as u8, Ordering::Relaxed) != state as u8 {
            self.push_event(now_ns, PathEventKind::AnaChanged { nsid, state });
            self.wake_all();
        }
    }

    /// Bit mask of reactors whose IO queue pair of the current generation is up.
    pub fn cores_connected(&self) -> u64 {
        self.cores_connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_core_connected(&self, reactor: usize, up: bool) {
        let bit = 1u64 << (reactor % TRACKED_REACTORS);
        if up {
            self.cores_connected.fetch_or(bit, Ordering::AcqRel);
        } else {
            self.cores_connected.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// A core asks for an Abort; false when the queue is full.
    pub(crate) fn request_abort(&self, req: AbortRequest) -> bool {
        let queued = self.abort_requests.push(req).is_ok();
        self.wake_all();
        queued
    }

    /// Whether the controller refused request `seq` of `reactor` for `cid`.
    pub(crate) fn abort_refused(&self, reactor: usize, seq: u32, cid: u16) -> bool {
        let want = (u64::from(seq) << 16) | u64::from(cid);
        self.abort_refused[reactor % TRACKED_REACTORS].load(Ordering::Acquire) == want
    }

    /// Reconnect attempts since attach.
    pub fn reconnect_attempts(&self) -> u32 {
        self.reconnect_attempts.load(Ordering::Relaxed)
    }

    /// Why the controller last failed.
    pub fn last_failure(&self) -> String {
        self.last_failure.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Takes the path events recorded since the last call (oldest first).
    pub fn drain_events(&self, out: &mut Vec<PathEvent>) {
        while let Some(e) = self.events.pop() {
            out.push(e);
        }
    }

    pub(crate) fn push_event(&self, at_ns: u64, kind: PathEventKind) {
        // A full queue drops the oldest: reports want the recent past.
        let _ = self.events.force_push(PathEvent { at_ns, kind });
    }
}

/// The supervisor's state machine; every transition is in [`Supervisor::poll`].
enum Life<Q: crate::transport::HostQpair> {
    /// Bring-up of a new association in progress.
    Connecting { admin: AdminQueue<Q> },
    /// Up.
    Enabled { admin: AdminQueue<Q> },
    /// Waiting until `until_ns` for the next attempt.
    Delayed { until_ns: u64 },
    /// Given up.
    Failed,
}

/// Drives one controller's admin queue, resets and reconnects, on its admin core.
pub(crate) struct Supervisor<Q: crate::transport::HostQpair> {
    life: Life<Q>,
    pub(crate) shared: std::sync::Arc<CtrlrShared>,
    trid: TransportId,
    opts: ControllerOptions,
    host: HostIdentity,
    io_queues: u16,
    generation: u32,
    /// When the controller last left Enabled (for ctrlr_loss_timeout).
    failed_since_ns: Option<u64>,
    /// The first bring-up's result goes here (attach waits on it).
    first_reply: Option<Sender<Result<ControllerData, String>>>,
    /// What the last bring-up found.
    pub(crate) data: ControllerData,
    ever_enabled: bool,
    enabled_at_ns: u64,
    /// The request whose Abort is on the wire.
    abort_on_wire: Option<AbortRequest>,
}

impl<Q: crate::transport::HostQpair> Supervisor<Q> {
    /// Starts the first bring-up.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start<T: HostTransport<Qpair = Q>>(
        transport: &mut T,
        shared: std::sync::Arc<CtrlrShared>,
        trid: &TransportId,
        opts: &ControllerOptions,
        host: &HostIdentity,
        io_queues: u16,
        reply: Option<Sender<Result<ControllerData, String>>>,
        now_ns: u64,
    ) -> Result<Self, String> {
        let admin = connect_admin(transport, trid, opts, host, io_queues, now_ns)?;
        Ok(Supervisor {
            life: Life::Connecting { admin },
            shared,
            trid: trid.clone(),
            opts: opts.clone(),
            host: host.clone(),
            io_queues,
            generation: 0,
            failed_since_ns: None,
            first_reply: reply,
            data: ControllerData::default(),
            ever_enabled: false,
            enabled_at_ns: 0,
            abort_on_wire: None,
        })
    }

    /// Drives the controller; returns work done.
    pub(crate) fn poll<T: HostTransport<Qpair = Q>>(&mut self, transport: &mut T, now_ns: u64) -> usize {
        let mut work = 0;
        let life = std::mem::replace(&mut self.life, Life::Failed);
        self.life = match life {
            Life::Connecting { mut admin } => {
                work += admin.poll(now_ns);
                match admin.state().clone() {
                    AdminState::Ready => {
                        self.generation += 1;
                        self.abort_on_wire = None;
                        self.data = admin.controller().clone();
                        self.apply_ana(&mut admin, now_ns);
                        self.shared.reset_requested.store(false, Ordering::Release);
                        self.shared.io_params.store(
                            u64::from(self.data.mqes) | (u64::from(self.data.in_capsule_data_bytes) << 32),
                            Ordering::Release,
                        );
                        self.enabled_at_ns = now_ns;
                        self.shared.publish(CtrlrState::Enabled, self.data.cntlid, self.generation);
                        if self.ever_enabled {
                            self.shared.push_event(now_ns, PathEventKind::Reconnected { cntlid: self.data.cntlid });
                        }
                        self.ever_enabled = true;
                        self.failed_since_ns = None;
                        if let Some(tx) = self.first_reply.take() {
                            let _ = tx.send(Ok(self.data.clone()));
                        }
                        work += 1;
                        Life::Enabled { admin }
                    }
                    AdminState::Failed(why) => {
                        work += 1;
                        if let Some(tx) = self.first_reply.take() {
                            // The first attach fails outright, as SPDK's does.
                            let _ = tx.send(Err(why));
                            self.shared.publish(CtrlrState::Failed, 0, self.generation);
                            Life::Failed
                        } else {
                            self.shared.push_event(now_ns, PathEventKind::ReconnectFailed(why));
                            self.after_failure(now_ns)
                        }
                    }
                    _ => Life::Connecting { admin },
                }
            }
            Life::Enabled { mut admin } => {
                work += admin.poll(now_ns);
                if self.shared.ana_refresh_requested.swap(false, Ordering::AcqRel) {
                    admin.request_ana_log();
                }
                if admin.ana_dirty() {
                    self.apply_ana(&mut admin, now_ns);
                }
                work += self.relay_aborts(&mut admin, now_ns);
                let failure = match admin.state() {
                    AdminState::Failed(why) => Some((why.clone(), admin.peer_closed())),
                    _ if self.shared.reset_requested.swap(false, Ordering::AcqRel) => {
                        Some(("reset requested (IO queue pair failed or timed out)".to_string(), false))
                    }
                    _ => None,
                };
                match failure {
                    None => Life::Enabled { admin },
                    Some((reason, peer_closed)) => {
                        work += 1;
                        let kato_ns = u64::from(round_kato_ms(self.opts.keep_alive_timeout_ms)) * 1_000_000;
                        let dead_at_ns = if peer_closed {
                            now_ns
                        } else {
                            admin.association_dead_at_ns(kato_ns).saturating_add(KEEP_ALIVE_MARGIN_NS).max(now_ns)
                        };
                        // Drop (RST) the admin queue before publishing: nothing more goes out on it.
                        drop(admin);
                        self.shared.mark_dead(self.generation, dead_at_ns);
                        if let Ok(mut s) = self.shared.last_failure.lock() {
                            *s = reason.clone();
                        }
                        self.shared.push_event(now_ns, PathEventKind::Failed { reason, peer_closed });
                        self.failed_since_ns = Some(now_ns);
                        self.shared.publish(CtrlrState::Resetting, self.data.cntlid, self.generation);
                        // One attempt at once (SPDK resets a failed controller), then delayed
                        // ones; a controller that fails again right after coming up waits too,
                        // so a path that accepts connects but fails IO cannot cause a storm.
                        let delay_ns = self.opts.reconnect.reconnect_delay_ms * 1_000_000;
                        if now_ns.saturating_sub(self.enabled_at_ns) < delay_ns {
                            self.after_failure(now_ns)
                        } else {
                            self.attempt(transport, now_ns)
                        }
                    }
                }
            }
            Life::Delayed { until_ns } if now_ns >= until_ns => {
                work += 1;
                self.attempt(transport, now_ns)
            }
            Life::Delayed { until_ns } => Life::Delayed { until_ns },
            Life::Failed => Life::Failed,
        };
        work
    }

    /// Puts the admin queue's socket in the reactor's epoll set.
    pub(crate) fn register_wake(&mut self, set: &WakeSet) {
        if let Life::Connecting { admin } | Life::Enabled { admin } = &mut self.life {
            admin.register_wake(set);
        }
    }

    /// When the supervisor next needs a turn without an event: the reconnect
    /// delay, the admin queue's timers, or now for a request another core made.
    pub(crate) fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        match &self.life {
            Life::Connecting { admin } => admin.next_deadline_ns(now_ns),
            Life::Enabled { admin } => {
                let asked = self.shared.reset_requested.load(Ordering::Acquire)
                    || self.shared.ana_refresh_requested.load(Ordering::Acquire)
                    || (!self.shared.abort_requests.is_empty() && !admin.abort_in_flight());
                if asked || matches!(admin.state(), AdminState::Failed(_)) {
                    Some(now_ns)
                } else {
                    admin.next_deadline_ns(now_ns)
                }
            }
            Life::Delayed { until_ns } => Some(*until_ns),
            Life::Failed => None,
        }
    }

    /// Sends the cores' Abort requests (one on the wire at a time) and hands
    /// refusals back to the core that asked.
    fn relay_aborts(&mut self, admin: &mut AdminQueue<Q>, now_ns: u64) -> usize {
        let mut work = 0;
        if let Some(answer) = admin.take_abort_answer() {
            work += 1;
            if let Some(req) = self.abort_on_wire.take().filter(|r| r.qid == answer.sqid && r.cid == answer.cid) {
                let kind = PathEventKind::AbortAnswered { qid: req.qid, cid: req.cid, aborted: answer.aborted };
                self.shared.push_event(now_ns, kind);
                if !answer.aborted {
                    let reactor = usize::from(req.qid.saturating_sub(1)) % TRACKED_REACTORS;
                    let word = (u64::from(req.seq) << 16) | u64::from(req.cid);
                    self.shared.abort_refused[reactor].store(word, Ordering::Release);
                    self.shared.wake_all();
                }
            }
        }
        while !admin.abort_in_flight() {
            let Some(req) = self.shared.abort_requests.pop() else { break };
            // A request from an earlier association names a command that is gone.
            if req.generation != self.generation {
                continue;
            }
            if admin.send_abort(req.qid, req.cid, now_ns) {
                self.abort_on_wire = Some(req);
                work += 1;
            }
            break;
        }
        work
    }

    /// Starts a reconnect attempt, or gives up when the loss timeout ran out.
    fn attempt<T: HostTransport<Qpair = Q>>(&mut self, transport: &mut T, now_ns: u64) -> Life<Q> {
        if self.loss_timeout_passed(now_ns) {
            return self.give_up(now_ns);
        }
        self.shared.reconnect_attempts.fetch_add(1, Ordering::Relaxed);
        self.shared.push_event(now_ns, PathEventKind::ReconnectStarted);
        self.shared.publish(CtrlrState::Resetting, self.data.cntlid, self.generation);
        match connect_admin(transport, &self.trid, &self.opts, &self.host, self.io_queues, now_ns) {
            Ok(admin) => Life::Connecting { admin },
            Err(why) => {
                self.shared.push_event(now_ns, PathEventKind::ReconnectFailed(why));
                self.after_failure(now_ns)
            }
        }
    }

    fn after_failure(&mut self, now_ns: u64) -> Life<Q> {
        if self.loss_timeout_passed(now_ns) || self.opts.reconnect.ctrlr_loss_timeout_ms == Some(0) {
            return self.give_up(now_ns);
        }
        self.shared.publish(CtrlrState::ReconnectDelayed, self.data.cntlid, self.generation);
        Life::Delayed { until_ns: now_ns.saturating_add(self.opts.reconnect.reconnect_delay_ms * 1_000_000) }
    }

    fn loss_timeout_passed(&self, now_ns: u64) -> bool {
        match (self.opts.reconnect.ctrlr_loss_timeout_ms, self.failed_since_ns) {
            (Some(ms), Some(since)) if ms > 0 => now_ns.saturating_sub(since) >= ms * 1_000_000,
            _ => false,
        }
    }

    fn give_up(&mut self, now_ns: u64) -> Life<Q> {
        self.shared.push_event(now_ns, PathEventKind::Lost);
        self.shared.publish(CtrlrState::Failed, self.data.cntlid, self.generation);
        Life::Failed
    }

    /// Publishes the ANA states the admin queue last read.
    fn apply_ana(&mut self, admin: &mut AdminQueue<Q>, now_ns: u64) {
        for ns in &self.data.namespaces {
            if let Some(state) = admin.ana_state_of_group(ns.anagrpid) {
                self.shared.set_ana_state(ns.nsid, state, now_ns);
            }
        }
        admin.mark_ana_applied();
    }

    /// Stops everything (detach): the controller reads as Deleting. Writes
    /// that were in flight move elsewhere only once the association is dead,
    /// as after a failure.
    pub(crate) fn shut_down(&mut self) {
        if let Life::Enabled { admin } = std::mem::replace(&mut self.life, Life::Failed) {
            let kato_ns = u64::from(round_kato_ms(self.opts.keep_alive_timeout_ms)) * 1_000_000;
            let dead_at_ns = admin.association_dead_at_ns(kato_ns).saturating_add(KEEP_ALIVE_MARGIN_NS);
            drop(admin);
            self.shared.mark_dead(self.generation, dead_at_ns);
        }
        self.shared.publish(CtrlrState::Deleting, self.data.cntlid, self.generation);
    }
}

/// The gateway rounds KATO up to its 100 ms granularity; so do we, to know its deadline.
fn round_kato_ms(kato_ms: u32) -> u32 {
    kato_ms.div_ceil(100).saturating_mul(100)
}

/// Starts connecting an admin queue.
pub(crate) fn connect_admin<T: HostTransport>(
    transport: &mut T,
    trid: &TransportId,
    opts: &ControllerOptions,
    host: &HostIdentity,
    io_queues: u16,
    now_ns: u64,
) -> Result<AdminQueue<T::Qpair>, String> {
    let qopts = QpairOptions {
        qid: 0,
        queue_depth: crate::host::admin::ADMIN_QUEUE_DEPTH,
        header_digest: opts.header_digest,
        data_digest: opts.data_digest,
        connect_timeout_ns: opts.connect_timeout_ms * 1_000_000,
    };
    let q = transport.connect(trid, &qopts).map_err(|e| format!("connect: {e}"))?;
    let aopts = AdminOptions::of(opts, io_queues);
    AdminQueue::new(q, aopts, &trid.subnqn, &host.hostnqn, host.hostid, now_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_state_cntlid_and_generation() {
        let s = CtrlrShared::new();
        s.publish(CtrlrState::Enabled, 32761, 7);
        assert_eq!(s.snapshot(), (CtrlrState::Enabled, 32761, 7));
        s.publish(CtrlrState::ReconnectDelayed, 1, u32::MAX);
        assert_eq!(s.snapshot(), (CtrlrState::ReconnectDelayed, 1, u32::MAX));
    }

    #[test]
    fn writes_of_a_generation_are_dead_only_after_it_was_given_up() {
        let s = CtrlrShared::new();
        assert_eq!(s.writes_dead_at_ns(1), None);
        s.mark_dead(1, 5_000);
        assert_eq!(s.writes_dead_at_ns(1), Some(5_000));
        assert_eq!(s.writes_dead_at_ns(2), None);
        // A later give-up never moves the instant earlier.
        s.mark_dead(2, 4_000);
        assert_eq!(s.writes_dead_at_ns(1), Some(5_000));
    }

    #[test]
    fn ana_state_outside_the_tracked_range_is_none_not_a_panic() {
        let s = CtrlrShared::new();
        assert_eq!(s.ana_state(0), None);
        assert_eq!(s.ana_state(MAX_TRACKED_NSID + 1), None);
        s.set_ana_state(MAX_TRACKED_NSID + 1, AnaState::Inaccessible, 0);
        s.set_ana_state(3, AnaState::Inaccessible, 0);
        assert_eq!(s.ana_state(3), Some(AnaState::Inaccessible));
    }
}
