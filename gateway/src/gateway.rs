//! The gateway's data path: one pinned reactor per core, each running a
//! [`GatewayCore`] that accepts queue pairs (reactor 0 holds the listeners),
//! runs Fabrics Connect, and executes admin and IO commands.
//!
//! A core touches only the queue pairs that can have work: the *hot* ones
//! (those that did work in their last few polls, that epoll reported, or that
//! have no descriptor to report with). A connection that goes quiet leaves
//! the hot list and costs nothing per turn until its socket has news or one
//! of its timers is due, so a thousand idle connections do not slow the busy
//! one. When nothing is hot the reactor may sleep ([`engine::IdlePolicy`])
//! until a socket, a message or the earliest timer wakes it.
//!
//! One loop turn of a core, in this order:
//! 1. take what epoll reported (on idle turns and every few busy ones);
//! 2. **keep-alive and liveness first**: when a timer of some queue pair is
//!    due, or another core poked (a controller destroyed, reset or given an
//!    event), a sweep tears down every queue pair whose controller is dead,
//!    reset or keep-alive-expired. And each hot queue pair is checked again
//!    right *before its socket is read*. A host whose KATO expired has failed
//!    over to another gateway; a write of its that arrives late must not be
//!    executed here, or it could overwrite newer data written through the
//!    other path;
//! 3. accept new connections and hand them round-robin to the cores;
//! 4. poll each hot queue pair and execute what is ready;
//! 5. (reactor 0) notice configuration changes.
//!
//! File-backed (AIO) bdevs complete later: a command goes to the core's AIO
//! context ([`crate::aio`]) and its CQE is sent when `io_getevents` reports it,
//! on the core that owns the queue pair (the context is per core, so it
//! always is). AIOs prepared in a turn are submitted together at its end.
//!
//! Teardown (the stale-write rule, gateway half): a queue pair torn down for
//! any reason (keep-alive expiry, controller destroyed or reset, host
//! disconnect, transport error, configuration removal) is never read again
//! from that moment. If it still has commands on the bdev (AIO in flight),
//! it stays *draining*: its socket stays open, nothing is read from it, the
//! in-flight commands complete (their CQEs are sent if the connection still
//! works), and only then is it dropped and its socket closed. So when the
//! host sees the connection close, every command of that association the
//! gateway accepted has finished on the bdev; none can land afterwards.
//! (An in-flight AIO cannot be cancelled on a regular file; waiting for it
//! is the only way to keep that promise.)
//!
//! Disconnect policy: when an admin queue's connection goes, its controller
//! is destroyed at once and its IO queues on every core are torn down on
//! their next turn. SPDK keeps such a controller until KATO runs out, but
//! with the dynamic controller model a host can never reattach to it (a new
//! Connect gets a new controller), so keeping it only delays freeing its
//! controller ID and queues.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::time::Duration;

use engine::{
    Clock, IdlePolicy, MonotonicClock, Poller, ReactorCtx, ReactorSender, ReactorSet, ReactorStats, TargetCommand,
    TargetListener, TargetOptions, TargetQpair, TargetTransport, TrType, TransportError, Waker,
};
use protocol::fabrics::connect_success_dw0;
use protocol::opcode::fctype;
use protocol::sqe::connect_attr;
use protocol::status::generic;
use protocol::{Cqe, Status};
use serde_json::{json, Value};

use crate::admin_cmd::{AdminEnv, AdminOutcome, AdminQueue};
use crate::aio::{AioEngine, AioOp, AioTag};
use crate::config::{ListenAddress, SubsystemType, TargetState};
use crate::controller::{
    connect, lock, Connected, Controller, ControllerInfo, ControllerKind, ControllerRegistry, NamespaceTable,
    QpairOrigin,
};
use crate::discovery::discovery_digest;
use crate::io_cmd;

/// How often reactor 0 looks at the configuration when nobody told it of a change.
const CONFIG_SCAN_INTERVAL_NS: u64 = 200_000_000;
/// The longest a core goes without looking at every queue pair's timers.
const MAX_SWEEP_INTERVAL_NS: u64 = 1_000_000_000;
/// Polls in a row that find a hot queue pair quiet before it leaves the hot
/// list (then only epoll brings it back): enough to ride out the gap between
/// a completion and the next command of a busy host.
const HOT_QUIET_POLLS: u8 = 4;
/// A busy core asks epoll what became ready once every this many turns (an
/// idle turn always asks): cold connections wait at most that many turns.
const COLLECT_EVERY_TURNS: u32 = 8;
/// Epoll tokens of listeners (their position); queue pairs use their slot.
const LISTENER_TOKEN: u64 = 1 << 63;
/// Connections accepted per listener per turn at most, so accepting cannot starve IO.
const ACCEPTS_PER_TURN: usize = 16;
/// Commands executed per queue pair per turn at most, so one queue cannot starve the others.
const COMMANDS_PER_TURN: usize = 256;
/// How long an accepted connection may go without a successful Connect
/// (ICReq and Connect come at once from any real host).
const CONNECT_WAIT_NS: u64 = 5_000_000_000;
/// How long a listener stops accepting after the process ran out of file
/// descriptors: at first, and at most (the pause doubles while it lasts).
const ACCEPT_BACKOFF_FIRST_NS: u64 = 1_000_000;
const ACCEPT_BACKOFF_MAX_NS: u64 = 100_000_000;
/// A repeating log line is printed at most once per this interval, with a
/// count of the ones held back.
const LOG_INTERVAL_NS: u64 = 1_000_000_000;
/// Connections a gateway serves at once unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// How long `stop_listening` waits for reactor 0 to close the socket.
const STOP_LISTENING_WAIT: Duration = Duration::from_secs(5);

/// Writes one line to stderr: the gateway logs only rare events (controllers
/// created and destroyed, listeners, errors), never per IO.
fn log_event(msg: std::fmt::Arguments<'_>) {
    // "gateway:", not the daemon's name: corepath-bench embeds the gateway too.
    eprintln!("gateway: {msg}");
}

/// One kind of repeating log line (an accept failure, a refused Connect):
/// printed at most once per [`LOG_INTERVAL_NS`], with the count of the lines
/// held back since, so that a client cannot flood the log.
#[derive(Debug, Default)]
struct LogLimiter {
    next_ns: u64,
    held_back: u64,
}

impl LogLimiter {
    fn log(&mut self, now_ns: u64, msg: std::fmt::Arguments<'_>) {
        if now_ns < self.next_ns {
            self.held_back += 1;
            return;
        }
        match std::mem::take(&mut self.held_back) {
            0 => log_event(msg),
            n => log_event(format_args!("{msg} (and {n} more like it since the last such line)")),
        }
        self.next_ns = now_ns.saturating_add(LOG_INTERVAL_NS);
    }
}

/// True when `e` says the process or system is out of file descriptors or
/// socket memory: a condition that passes, not a broken listener.
fn out_of_descriptors(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::Io { os_error, .. }
            if matches!(os_error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
    )
}

/// Why the gateway refused a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The reactor threads could not be started.
    #[error("starting reactors: {0}")]
    Start(#[source] std::io::Error),
    /// No core given.
    #[error("no core to run on")]
    NoCores,
    /// The transport could not listen.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The address is for another transport type than the gateway serves.
    #[error("this gateway serves {serves}, not {requested}")]
    WrongTransport {
        /// The transport type of the gateway.
        serves: &'static str,
        /// The transport type asked for.
        requested: &'static str,
    },
    /// `stop_listening` for an address not listened on.
    #[error("not listening on {0}")]
    NotListening(String),
    /// The gateway was shut down.
    #[error("the gateway is shut down")]
    ShutDown,
}

/// How to run the gateway.
#[derive(Clone)]
pub struct GatewayOptions {
    /// Cores to run reactors on (one per core), e.g. from [`engine::parse_core_mask`].
    pub cores: Vec<usize>,
    /// What a reactor does when idle.
    pub idle: IdlePolicy,
    /// The transport type of the transport the gateway is started with.
    pub trtype: TrType,
    /// The clock (a manual clock in simulation).
    pub clock: Arc<dyn Clock>,
    /// Connections served at once, on all cores; more are closed on accept.
    pub max_connections: usize,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            cores: vec![0],
            idle: IdlePolicy::default(),
            trtype: TrType::Tcp,
            clock: Arc::new(MonotonicClock::new()),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// State every core of a gateway shares: the configuration (locked only at
/// Connect, by admin commands that need it and by configuration scans) and
/// the controller registry.
#[derive(Debug)]
pub struct GatewayContext {
    state: Arc<Mutex<TargetState>>,
    registry: ControllerRegistry,
    config_generation: AtomicU64,
    discovery_genctr: AtomicU64,
    discovery_digest: AtomicU64,
    next_qpair_id: AtomicU64,
    /// Bumped when a controller changes in a way the queues of every core
    /// must see now (destroyed, reset, a new event): each core then sweeps
    /// its queue pairs. The reactors are woken too, so none sleeps through it.
    pokes: AtomicU64,
    /// The reactors to wake on a poke (set once they run).
    wakers: OnceLock<Vec<Waker>>,
    /// Connections open on all cores, and the most allowed.
    connections: AtomicUsize,
    max_connections: AtomicUsize,
}

impl GatewayContext {
    /// A context around the configuration shared with the RPC handlers.
    pub fn new(state: Arc<Mutex<TargetState>>) -> Arc<Self> {
        Arc::new(GatewayContext {
            state,
            registry: ControllerRegistry::new(),
            config_generation: AtomicU64::new(0),
            discovery_genctr: AtomicU64::new(0),
            discovery_digest: AtomicU64::new(0),
            next_qpair_id: AtomicU64::new(1),
            pokes: AtomicU64::new(0),
            wakers: OnceLock::new(),
            connections: AtomicUsize::new(0),
            max_connections: AtomicUsize::new(DEFAULT_MAX_CONNECTIONS),
        })
    }

    /// Connections open now on all cores, and the most allowed.
    pub fn connections(&self) -> (usize, usize) {
        (self.connections.load(Ordering::Relaxed), self.max_connections.load(Ordering::Relaxed))
    }

    /// Sets the most connections served at once (those open stay).
    pub fn set_max_connections(&self, max: usize) {
        self.max_connections.store(max, Ordering::Relaxed);
    }

    /// The configuration.
    pub fn state(&self) -> &Arc<Mutex<TargetState>> {
        &self.state
    }

    /// The live controllers.
    pub fn registry(&self) -> &ControllerRegistry {
        &self.registry
    }

    /// Tells the data path that the configuration changed (namespaces,
    /// listeners, hosts, subsystems): reactor 0 applies it on its next turn
    /// instead of at its next periodic scan.
    pub fn config_changed(&self) {
        self.config_generation.fetch_add(1, Ordering::AcqRel);
        // Reactor 0 applies it; the others deliver what it changed (ANA states are read by admin queues).
        self.poke();
    }

    /// Makes every core sweep its queue pairs on its next turn, and wakes them.
    pub fn poke(&self) {
        self.pokes.fetch_add(1, Ordering::AcqRel);
        if let Some(wakers) = self.wakers.get() {
            for w in wakers {
                w.wake();
            }
        }
    }

    /// Live controllers (of `subnqn` when given), for `nvmf_subsystem_get_controllers`.
    pub fn controllers(&self, subnqn: Option<&str>) -> Vec<ControllerInfo> {
        self.registry.list(subnqn).iter().map(|c| c.info()).collect()
    }

    /// The discovery log generation counter.
    pub fn discovery_genctr(&self) -> u64 {
        self.discovery_genctr.load(Ordering::Acquire)
    }

    /// Applies the configuration to live controllers: destroys those whose
    /// subsystem is gone, whose admin listener was removed or whose host is
    /// no longer allowed, and gives the others the current namespace table
    /// (raising the namespace-change event where it changed). Moves the
    /// discovery generation counter when the discovery log changed. Returns
    /// false, doing nothing, when the configuration is locked by someone else.
    pub fn refresh_config(&self) -> bool {
        let state = match self.state.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let digest = discovery_digest(&state);
        if self.discovery_digest.swap(digest, Ordering::AcqRel) != digest {
            self.discovery_genctr.fetch_add(1, Ordering::AcqRel);
        }
        // The common case, every scan interval on reactor 0 (an IO core): nothing
        // changed. Check that without allocating; rebuild only when needed.
        let mut any_change = false;
        self.registry.for_each(|ctrl| {
            any_change |= match state.subsystem(&ctrl.subnqn) {
                None => true,
                Some(s) if s.subtype == SubsystemType::Nvme && !s.listeners.contains(&ctrl.listen) => true,
                Some(_) if !state.host_allowed(&ctrl.subnqn, &ctrl.hostnqn) => true,
                Some(s) => ctrl.kind == ControllerKind::Io && !ctrl.ns_table_matches(s),
            };
        });
        if !any_change {
            return true;
        }
        // Namespace events and destroyed controllers reach queues on every core.
        self.poke();
        for ctrl in self.registry.list(None) {
            let why = match state.subsystem(&ctrl.subnqn) {
                None => Some("its subsystem was deleted"),
                Some(s) if s.subtype == SubsystemType::Nvme && !s.listeners.contains(&ctrl.listen) => {
                    Some("its listener was removed")
                }
                Some(_) if !state.host_allowed(&ctrl.subnqn, &ctrl.hostnqn) => Some("its host is no longer allowed"),
                Some(s) => {
                    if ctrl.kind == ControllerKind::Io {
                        ctrl.replace_ns_table(NamespaceTable::from_subsystem(s));
                    }
                    None
                }
            };
            if let Some(why) = why {
                if self.registry.destroy(&ctrl) {
                    log_event(format_args!("controller {} of {} destroyed: {why}", ctrl.cntlid, ctrl.subnqn));
                }
            }
        }
        true
    }
}

/// Queue pairs on one reactor, published for `framework_get_reactors` (the
/// reactor's busy, idle and sleep times come from the engine's
/// [`engine::ReactorStats`]).
#[derive(Debug, Default)]
pub struct CoreGauges {
    qpairs: AtomicU64,
}

impl CoreGauges {
    /// Queue pairs on the reactor.
    pub fn qpairs(&self) -> u64 {
        self.qpairs.load(Ordering::Relaxed)
    }
}

/// An IO queue's view of its controller: the namespace snapshot is reached
/// without a lock; it is swapped when the controller's generation moves.
struct IoQueue {
    ctrl: Arc<Controller>,
    qid: u16,
    epoch: u32,
    ns: Arc<NamespaceTable>,
    ns_generation: u64,
}

/// What a queue pair is, by what its Connect made of it.
enum QpairRole {
    /// Accepted; the first command must be Connect. Holds the time of the
    /// first turn that saw it.
    AwaitingConnect { since_ns: Option<u64> },
    /// The admin queue of a controller.
    Admin(Box<AdminQueue>),
    /// An IO queue of a controller.
    Io(IoQueue),
}

/// Why a queue pair is being torn down.
#[derive(Debug)]
enum Teardown {
    /// The transport failed or the peer closed.
    Transport(TransportError),
    /// The controller's keep-alive timer ran out.
    KeepAliveExpired,
    /// The controller was destroyed (elsewhere).
    ControllerGone,
    /// The controller was reset (CC.EN 1 → 0): IO queues go.
    ControllerReset,
    /// The host sent Disconnect for this IO queue.
    Disconnected,
    /// No successful Connect within [`CONNECT_WAIT_NS`].
    ConnectTimeout,
}

/// How a reactor learns that a queue pair or listener has something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// Not yet in the reactor's epoll set (it was added outside a turn):
    /// polled every turn until a turn registers it.
    Unregistered,
    /// In the epoll set: polled while hot, and again when epoll reports it.
    Evented,
    /// No descriptor (an in-process fake transport) or the kernel refused
    /// it: polled on every turn, and the reactor never sleeps while it exists.
    Polled,
}

/// The inboxes of every core of a gateway, set once the reactors run.
type Peers<L> = Arc<OnceLock<Vec<ReactorSender<GatewayCore<L>>>>>;

struct QpairEntry<Q> {
    qpair: Q,
    origin: QpairOrigin,
    role: QpairRole,
    /// SQ head pointer reported in completions.
    sqhd: u16,
    /// SQ size in entries (from Connect).
    sq_entries: u16,
    id: u64,
    /// Commands on the bdev (AIO), not yet completed.
    in_flight: u32,
    /// Torn down, waiting for `in_flight` to reach 0 before it is dropped;
    /// never read from again.
    draining: bool,
    readiness: Readiness,
    /// On the core's hot list (polled every turn).
    hot: bool,
    /// Polls in a row that found it quiescent while hot.
    quiet_polls: u8,
}

/// One listener of reactor 0.
struct ListenerEntry<L> {
    origin: QpairOrigin,
    listener: L,
    readiness: Readiness,
    /// Connections may be waiting: try `accept` this turn.
    pending: bool,
    /// Out of descriptors: no `accept` before this time, and the pause that got it there.
    paused_until_ns: u64,
    backoff_ns: u64,
}

/// One core's share of the gateway: its listeners (reactor 0), its queue
/// pairs, and the ring to the other cores. Generic over the transport's
/// listener (and so its queue pair type): TCP today, RDMA later.
///
/// A turn touches only the queue pairs on the hot list: those that did work
/// in the last few polls, those epoll reported, and those without a
/// descriptor. An idle connection costs nothing per turn; it is looked at
/// again when its socket has news or when a timer of its (keep-alive, the
/// Connect deadline) is due, found by a sweep over every queue pair.
pub struct GatewayCore<L: TargetListener + 'static> {
    index: usize,
    ctx: Arc<GatewayContext>,
    listeners: Vec<ListenerEntry<L>>,
    /// Queue pairs by slot; a slot is the pair's epoll token and never moves.
    slots: Vec<Option<QpairEntry<L::Qpair>>>,
    free_slots: Vec<usize>,
    live_qpairs: usize,
    /// Slots polled every turn.
    hot: Vec<usize>,
    peers: Peers<L>,
    next_peer: usize,
    gauges: Arc<CoreGauges>,
    /// Work of the last turn: an idle turn asks epoll what became ready.
    last_turn_work: usize,
    turns_since_collect: u32,
    /// When the next sweep is due (the earliest timer of any queue pair).
    next_sweep_ns: u64,
    /// The context's poke count last swept for.
    seen_pokes: u64,
    seen_config_generation: u64,
    next_scan_ns: u64,
    /// This core's AIO context (set up on first use).
    aio: AioEngine,
    accept_log: LogLimiter,
    over_limit_log: LogLimiter,
    connect_refused_log: LogLimiter,
}

impl<L: TargetListener + 'static> GatewayCore<L> {
    /// Core `index` of a gateway (index 0 also watches the configuration).
    pub fn new(index: usize, ctx: Arc<GatewayContext>) -> Self {
        GatewayCore {
            index,
            ctx,
            listeners: Vec::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            live_qpairs: 0,
            hot: Vec::new(),
            peers: Arc::new(OnceLock::new()),
            next_peer: 0,
            gauges: Arc::new(CoreGauges::default()),
            last_turn_work: 0,
            turns_since_collect: 0,
            next_sweep_ns: 0,
            seen_pokes: 0,
            seen_config_generation: u64::MAX,
            next_scan_ns: 0,
            aio: AioEngine::new(),
            accept_log: LogLimiter::default(),
            over_limit_log: LogLimiter::default(),
            connect_refused_log: LogLimiter::default(),
        }
    }

    fn with_peers(mut self, peers: Peers<L>, gauges: Arc<CoreGauges>) -> Self {
        self.peers = peers;
        self.gauges = gauges;
        self
    }

    /// Takes a listener: its accepted connections are spread over the cores.
    pub fn add_listener(&mut self, origin: QpairOrigin, listener: L) {
        log_event(format_args!("listening on {}", origin.listen));
        self.listeners.push(ListenerEntry {
            origin,
            listener,
            readiness: Readiness::Unregistered,
            pending: true,
            paused_until_ns: 0,
            backoff_ns: 0,
        });
    }

    /// Closes the listener on `addr`; returns false if there was none.
    pub fn remove_listener(&mut self, addr: &ListenAddress) -> bool {
        let before = self.listeners.len();
        self.listeners.retain(|l| &l.origin.listen != addr);
        let removed = self.listeners.len() != before;
        if removed {
            // Listener tokens are positions, which just moved: look at every listener once.
            for l in &mut self.listeners {
                l.pending = true;
            }
            log_event(format_args!("stopped listening on {addr}"));
        }
        removed
    }

    /// Takes an accepted queue pair; it waits for Connect.
    pub fn add_qpair(&mut self, qpair: L::Qpair, origin: QpairOrigin) {
        let id = self.ctx.next_qpair_id.fetch_add(1, Ordering::Relaxed);
        let entry = QpairEntry {
            qpair,
            origin,
            role: QpairRole::AwaitingConnect { since_ns: None },
            sqhd: 0,
            sq_entries: 1,
            id,
            in_flight: 0,
            draining: false,
            readiness: Readiness::Unregistered,
            hot: false,
            quiet_polls: 0,
        };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        self.live_qpairs += 1;
        self.make_hot(slot);
        // Its Connect deadline starts on the next sweep.
        self.next_sweep_ns = 0;
        self.gauges.qpairs.store(self.live_qpairs as u64, Ordering::Relaxed);
    }

    /// Queue pairs on this core (draining ones included).
    pub fn num_qpairs(&self) -> usize {
        self.live_qpairs
    }

    /// Queue pairs polled on every turn (the rest wait for an event or a timer).
    pub fn num_hot_qpairs(&self) -> usize {
        self.hot.len()
    }

    /// Commands of this core on AIO bdevs, submitted or about to be, not yet completed.
    pub fn aio_in_flight(&self) -> usize {
        self.aio.busy()
    }

    /// Puts queue pair `slot` on the hot list (polled every turn until it goes quiet).
    fn make_hot(&mut self, slot: usize) {
        if let Some(Some(e)) = self.slots.get_mut(slot) {
            e.quiet_polls = 0;
            if !e.hot {
                e.hot = true;
                self.hot.push(slot);
            }
        }
    }

    /// Marks what epoll reported: queue pairs go on the hot list, listeners get an `accept`.
    fn take_ready(&mut self, rctx: &mut ReactorCtx) {
        let set = rctx.wake_set();
        if self.last_turn_work == 0 || self.turns_since_collect >= COLLECT_EVERY_TURNS {
            set.collect_ready();
            self.turns_since_collect = 0;
        } else {
            self.turns_since_collect += 1;
        }
        for token in set.take_ready() {
            if token & LISTENER_TOKEN != 0 {
                if let Some(l) = self.listeners.get_mut((token & !LISTENER_TOKEN) as usize) {
                    l.pending = true;
                }
            } else if let Some(Some(e)) = self.slots.get_mut(token as usize) {
                e.quiet_polls = 0;
                if !e.hot {
                    e.hot = true;
                    self.hot.push(token as usize);
                }
            }
        }
    }

    /// Liveness of queue pair `slot` at `now_ns` (the stale-write rule:
    /// checked before its socket is read): why it must go, if it must.
    fn check_liveness(e: &mut QpairEntry<L::Qpair>, now_ns: u64) -> Option<Teardown> {
        match &mut e.role {
            QpairRole::AwaitingConnect { since_ns } => {
                let since = *since_ns.get_or_insert(now_ns);
                (now_ns.saturating_sub(since) > CONNECT_WAIT_NS).then_some(Teardown::ConnectTimeout)
            }
            QpairRole::Admin(a) => liveness(&a.ctrl, now_ns),
            QpairRole::Io(io) => liveness(&io.ctrl, now_ns)
                .or_else(|| (io.epoch != io.ctrl.reset_epoch()).then_some(Teardown::ControllerReset)),
        }
    }

    /// When queue pair `e` next needs a look although its socket says nothing.
    fn timer_deadline_ns(e: &QpairEntry<L::Qpair>) -> Option<u64> {
        if e.draining {
            return None;
        }
        match &e.role {
            QpairRole::AwaitingConnect { since_ns } => {
                Some(since_ns.map_or(0, |s| s.saturating_add(CONNECT_WAIT_NS).saturating_add(1)))
            }
            QpairRole::Admin(a) => a.ctrl.keep_alive_deadline_ns(),
            QpairRole::Io(io) => io.ctrl.keep_alive_deadline_ns(),
        }
    }

    /// Looks at every queue pair: tears down those whose controller died, was
    /// reset or timed out, and those that never connected; after a poke
    /// (`poked`: a controller changed elsewhere) puts every admin queue on the
    /// hot list so it delivers its events. Sets the next sweep's time.
    fn sweep(&mut self, now_ns: u64, poked: bool) -> usize {
        let mut torn = 0;
        let mut next_ns = now_ns.saturating_add(MAX_SWEEP_INTERVAL_NS);
        for slot in 0..self.slots.len() {
            let Some(e) = self.slots[slot].as_mut() else { continue };
            if e.draining {
                continue;
            }
            if let Some(reason) = Self::check_liveness(e, now_ns) {
                torn += 1;
                self.teardown(slot, reason);
                continue;
            }
            if poked && matches!(e.role, QpairRole::Admin(_)) {
                self.make_hot(slot);
            }
            if let Some(d) = self.slots[slot].as_ref().and_then(Self::timer_deadline_ns) {
                next_ns = next_ns.min(d);
            }
        }
        self.next_sweep_ns = next_ns.max(now_ns.saturating_add(1));
        torn
    }

    /// Tears queue pair `slot` down: from now on nothing is read from it. If
    /// it has no command on the bdev it is dropped, which closes its
    /// connection; otherwise it is left draining on the hot list (see the
    /// module comment) until its commands finish.
    fn teardown(&mut self, slot: usize, reason: Teardown) {
        let Some(e) = self.slots[slot].as_mut() else { return };
        if e.draining {
            return;
        }
        e.draining = true;
        let sqhd = e.sqhd;
        let mut destroyed = false;
        match &mut e.role {
            QpairRole::AwaitingConnect { .. } => {}
            QpairRole::Admin(a) => {
                if !matches!(reason, Teardown::Transport(_)) {
                    // The connection still works: tell the host its AERs are gone.
                    a.abort_aers(&mut e.qpair, sqhd);
                    let _ = e.qpair.flush();
                }
                if self.ctx.registry.destroy(&a.ctrl) {
                    destroyed = true;
                    let why = match &reason {
                        Teardown::KeepAliveExpired => "keep-alive timeout".to_string(),
                        Teardown::Transport(err) => format!("admin queue closed ({err})"),
                        other => format!("{other:?}"),
                    };
                    log_event(format_args!(
                        "controller {} of {} (host {}) destroyed: {why}",
                        a.ctrl.cntlid, a.ctrl.subnqn, a.ctrl.hostnqn
                    ));
                }
            }
            QpairRole::Io(io) => {
                if let Teardown::KeepAliveExpired = reason {
                    if self.ctx.registry.destroy(&io.ctrl) {
                        destroyed = true;
                        log_event(format_args!(
                            "controller {} of {} (host {}) destroyed: keep-alive timeout",
                            io.ctrl.cntlid, io.ctrl.subnqn, io.ctrl.hostnqn
                        ));
                    }
                }
            }
        }
        let idle = e.in_flight == 0;
        if destroyed {
            // Its queues on other cores (and cold ones here) must go now, not at their next event.
            self.ctx.poke();
        }
        if idle {
            self.finish_teardown(slot);
        } else {
            self.make_hot(slot);
        }
    }

    /// Drops a torn-down queue pair with nothing in flight (closing its connection).
    fn finish_teardown(&mut self, slot: usize) {
        let Some(e) = self.slots[slot].take() else { return };
        debug_assert!(e.draining && e.in_flight == 0);
        if e.hot {
            if let Some(position) = self.hot.iter().position(|&s| s == slot) {
                self.hot.swap_remove(position);
            }
        }
        self.free_slots.push(slot);
        self.live_qpairs -= 1;
        self.ctx.connections.fetch_sub(1, Ordering::Relaxed);
        self.gauges.qpairs.store(self.live_qpairs as u64, Ordering::Relaxed);
        if let QpairRole::Io(io) = &e.role {
            io.ctrl.release_io_qid(io.qid, io.epoch);
        }
        // Dropping the queue pair closes its socket, which also takes it out of the epoll set.
        drop(e);
    }

    /// The queue pair an AIO tag names, if it is still the one that submitted it.
    fn entry_for<'a>(
        slots: &'a mut [Option<QpairEntry<L::Qpair>>],
        tag: &AioTag,
    ) -> Option<&'a mut QpairEntry<L::Qpair>> {
        slots.get_mut(tag.qpair_slot as usize)?.as_mut().filter(|e| e.id == tag.qpair_id)
    }

    /// Completes the AIOs that finished (on their queue pairs, all on this core).
    fn complete_aio(&mut self) -> usize {
        let slots = &mut self.slots;
        let hot = &mut self.hot;
        let core = self.index;
        self.aio.reap(|done| {
            if let Some(e) = Self::entry_for(slots, &done.tag) {
                e.in_flight = e.in_flight.saturating_sub(1);
                let sqid = match &e.role {
                    QpairRole::Io(io) => {
                        io_cmd::count_aio_completion(&io.ctrl.io_counters, core, done.op, done.len_bytes, done.status);
                        io.qid
                    }
                    _ => 0,
                };
                let mut data_len = 0;
                if let Some(data) = done.read_data {
                    let buf = e.qpair.data_mut(done.tag.slot);
                    let n = buf.len().min(data.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    data_len = n as u32;
                }
                let cqe =
                    Cqe { sqhd: e.sqhd, sqid, cid: done.tag.cid, status: done.status.to_field(), ..Cqe::default() };
                e.qpair.complete(done.tag.slot, &cqe, data_len);
                // The hot loop sends the CQE (or finishes a draining pair).
                e.quiet_polls = 0;
                if !e.hot {
                    e.hot = true;
                    hot.push(done.tag.qpair_slot as usize);
                }
            }
        })
    }

    /// Submits the AIOs prepared this turn; completes at once those the kernel refused.
    fn submit_aio(&mut self) {
        let slots = &mut self.slots;
        self.aio.submit(|tag, status| {
            if let Some(e) = Self::entry_for(slots, &tag) {
                e.in_flight = e.in_flight.saturating_sub(1);
                let sqid = match &e.role {
                    QpairRole::Io(io) => io.qid,
                    _ => 0,
                };
                let cqe = Cqe { sqhd: e.sqhd, sqid, cid: tag.cid, status: status.to_field(), ..Cqe::default() };
                e.qpair.complete(tag.slot, &cqe, 0);
                // It was polled this turn, so it is hot: the next turn finishes a draining pair.
                let _ = e.qpair.flush();
            }
        });
    }

    /// Step 2: accepts pending connections and hands them out round-robin.
    /// Past the connection limit a new connection is closed at once; out of
    /// descriptors, the listener pauses for a short, growing time.
    fn accept(&mut self, rctx: &mut ReactorCtx, now_ns: u64) -> usize {
        let mut accepted = Vec::new();
        for (position, l) in self.listeners.iter_mut().enumerate() {
            if l.readiness == Readiness::Unregistered {
                l.readiness = match l.listener.wake_fd() {
                    Some(fd) if rctx.wake_set().register(fd, LISTENER_TOKEN | position as u64).is_ok() => {
                        Readiness::Evented
                    }
                    _ => Readiness::Polled,
                };
            }
            if (!l.pending && l.readiness == Readiness::Evented) || now_ns < l.paused_until_ns {
                continue;
            }
            // Drained (accept said "none") unless the per-turn cap stopped us first.
            let mut drained = false;
            for _ in 0..ACCEPTS_PER_TURN {
                match l.listener.accept() {
                    Ok(Some(qp)) => {
                        l.backoff_ns = 0;
                        let (open, max) = self.ctx.connections();
                        if open >= max {
                            self.over_limit_log.log(
                                now_ns,
                                format_args!(
                                    "connection from {} on {} closed: {open} connections are open, the limit",
                                    qp.peer_addr(),
                                    l.origin.listen
                                ),
                            );
                            drop(qp);
                            continue;
                        }
                        self.ctx.connections.fetch_add(1, Ordering::Relaxed);
                        accepted.push((qp, l.origin.clone()));
                    }
                    Ok(None) => {
                        drained = true;
                        break;
                    }
                    Err(e) => {
                        if out_of_descriptors(&e) {
                            l.backoff_ns = (l.backoff_ns * 2).clamp(ACCEPT_BACKOFF_FIRST_NS, ACCEPT_BACKOFF_MAX_NS);
                            l.paused_until_ns = now_ns.saturating_add(l.backoff_ns);
                            self.accept_log.log(
                                now_ns,
                                format_args!(
                                    "accept on {}: {e}; not accepting for {} ms",
                                    l.origin.listen,
                                    l.backoff_ns / 1_000_000
                                ),
                            );
                        } else {
                            self.accept_log.log(now_ns, format_args!("accept on {}: {e}", l.origin.listen));
                            drained = true;
                        }
                        break;
                    }
                }
            }
            l.pending = !drained;
        }
        let n = accepted.len();
        for (qp, origin) in accepted {
            self.hand_off(qp, origin, rctx);
        }
        n
    }

    fn hand_off(&mut self, qp: L::Qpair, origin: QpairOrigin, rctx: &mut ReactorCtx) {
        let Some(peers) = self.peers.get().filter(|p| p.len() > 1) else {
            self.add_qpair(qp, origin);
            return;
        };
        let target = self.next_peer % peers.len();
        self.next_peer = self.next_peer.wrapping_add(1);
        if target == self.index {
            self.add_qpair(qp, origin);
            return;
        }
        let msg: engine::reactor::Message<GatewayCore<L>> =
            Box::new(move |core: &mut GatewayCore<L>, _: &mut ReactorCtx| core.add_qpair(qp, origin));
        if let Err(back) = peers[target].send(msg) {
            // That core's inbox is full: keep the connection here.
            back(self, rctx);
        }
    }

    /// Step 3: polls the hot queue pairs and executes their ready commands;
    /// those that stayed quiet for a few polls leave the list.
    fn poll_hot(&mut self, rctx: &mut ReactorCtx, now_ns: u64) -> usize {
        let mut work = 0;
        let mut k = 0;
        while k < self.hot.len() {
            let slot = self.hot[k];
            let Some(e) = self.slots[slot].as_mut() else {
                self.hot.swap_remove(k);
                continue;
            };
            if e.readiness == Readiness::Unregistered {
                e.readiness = match e.qpair.wake_fd() {
                    Some(fd) if rctx.wake_set().register(fd, slot as u64).is_ok() => Readiness::Evented,
                    _ => Readiness::Polled,
                };
            }
            if e.draining {
                // Never read again; only send the CQEs of AIOs that completed (if the connection still works).
                let _ = e.qpair.flush();
                if e.in_flight == 0 {
                    // Takes it off the list: position k now holds another slot.
                    self.finish_teardown(slot);
                    work += 1;
                } else {
                    k += 1;
                }
                continue;
            }
            // The stale-write rule: liveness before any read of this socket.
            let outcome = match Self::check_liveness(e, now_ns) {
                Some(reason) => Err(reason),
                None => self.service(slot, now_ns),
            };
            match outcome {
                Ok(n) => {
                    work += n;
                    let Some(e) = self.slots[slot].as_mut() else { continue };
                    if n == 0 && e.readiness == Readiness::Evented && e.qpair.quiescent() {
                        e.quiet_polls = e.quiet_polls.saturating_add(1);
                    } else {
                        e.quiet_polls = 0;
                    }
                    if e.quiet_polls >= HOT_QUIET_POLLS {
                        e.hot = false;
                        self.hot.swap_remove(k);
                    } else {
                        k += 1;
                    }
                }
                Err(reason) => {
                    work += 1;
                    self.teardown(slot, reason);
                    // Draining, it stays on the list; gone, it was taken off and
                    // position k now holds another slot.
                    if self.slots[slot].is_some() {
                        k += 1;
                    }
                }
            }
        }
        work
    }

    fn service(&mut self, slot: usize, now_ns: u64) -> Result<usize, Teardown> {
        let ctx = &*self.ctx;
        let aio = &mut self.aio;
        let refused_log = &mut self.connect_refused_log;
        let core = self.index;
        let Some(e) = self.slots[slot].as_mut() else { return Ok(0) };
        let mut work = e.qpair.poll(now_ns).map_err(Teardown::Transport)?;
        if let QpairRole::Io(io) = &mut e.role {
            // One atomic load per turn; the lock is taken only when the table changed.
            if io.ctrl.ns_generation() != io.ns_generation {
                (io.ns, io.ns_generation) = io.ctrl.ns_table();
            }
        }
        let mut close_after = None;
        let mut poke = false;
        for _ in 0..COMMANDS_PER_TURN {
            if !aio.has_free_slot() {
                // Every AIO slot of this core is busy: leave commands queued until some complete.
                break;
            }
            let Some(cmd) = e.qpair.next_command() else {
                break;
            };
            work += 1;
            e.sqhd = if e.sqhd.wrapping_add(1) >= e.sq_entries { 0 } else { e.sqhd + 1 };
            match &mut e.role {
                QpairRole::Io(io) => {
                    if cmd.sqe.is_fabrics() {
                        let status = match cmd.sqe.fctype() {
                            fctype::DISCONNECT => {
                                close_after = Some(Teardown::Disconnected);
                                Status::SUCCESS
                            }
                            fctype::CONNECT => Status::generic(generic::COMMAND_SEQUENCE_ERROR).with_dnr(),
                            _ => Status::generic(generic::INVALID_OPCODE).with_dnr(),
                        };
                        complete(&mut e.qpair, &cmd, io.qid, e.sqhd, status, 0, 0, 0);
                        if close_after.is_some() {
                            break;
                        }
                        continue;
                    }
                    let result = io_cmd::execute(&io.ns, &io.ctrl.ana, e.origin.opts.max_io_size, &mut e.qpair, &cmd);
                    io_cmd::count_completion(&io.ctrl.io_counters, core, &io.ns, &cmd.sqe, &result);
                    match result {
                        io_cmd::IoResult::Borrowed(data) => {
                            let cqe = Cqe { sqhd: e.sqhd, sqid: io.qid, cid: cmd.sqe.cid, ..Cqe::default() };
                            // SAFETY: BorrowedData from Bdev::borrow_for_read points into the bdev's memory, which
                            // its owner (an Arc of the bdev) keeps alive as long as the transport holds it.
                            unsafe { e.qpair.complete_borrowed(cmd.slot, &cqe, data) };
                        }
                        io_cmd::IoResult::Done { status, data_len } => {
                            complete(&mut e.qpair, &cmd, io.qid, e.sqhd, status, 0, 0, data_len)
                        }
                        io_cmd::IoResult::Aio(req) => {
                            let tag =
                                AioTag { qpair_id: e.id, qpair_slot: slot as u32, slot: cmd.slot, cid: cmd.sqe.cid };
                            let data: &[u8] = if req.op == AioOp::Write { e.qpair.data_mut(cmd.slot) } else { &[] };
                            match aio.prepare(req, tag, data) {
                                Ok(()) => e.in_flight += 1,
                                Err(status) => complete(&mut e.qpair, &cmd, io.qid, e.sqhd, status, 0, 0, 0),
                            }
                        }
                    }
                }
                QpairRole::Admin(a) => {
                    let env = AdminEnv {
                        state: &ctx.state,
                        discovery_genctr: ctx.discovery_genctr.load(Ordering::Acquire),
                        now_ns,
                    };
                    let epoch = a.ctrl.reset_epoch();
                    match a.execute(&mut e.qpair, &cmd, &env) {
                        AdminOutcome::Complete { status, dw0, dw1, data_len } => {
                            complete(&mut e.qpair, &cmd, 0, e.sqhd, status, dw0, dw1, data_len)
                        }
                        AdminOutcome::Deferred => {}
                    }
                    // A reset (CC.EN 1 → 0) ends the IO queues on every core, cold ones too.
                    poke |= a.ctrl.reset_epoch() != epoch;
                }
                QpairRole::AwaitingConnect { .. } => on_connect(ctx, e, &cmd, now_ns, refused_log),
            }
        }
        if let QpairRole::Admin(a) = &mut e.role {
            work += a.deliver_events(&mut e.qpair, e.sqhd);
        }
        if poke {
            ctx.poke();
        }
        e.qpair.flush().map_err(Teardown::Transport)?;
        match close_after {
            Some(r) => Err(r),
            None => Ok(work),
        }
    }

    /// Step 4 (reactor 0): applies configuration changes.
    fn watch_config(&mut self, now_ns: u64) -> usize {
        let generation = self.ctx.config_generation.load(Ordering::Acquire);
        if generation == self.seen_config_generation && now_ns < self.next_scan_ns {
            return 0;
        }
        if self.ctx.refresh_config() {
            self.seen_config_generation = generation;
            self.next_scan_ns = now_ns.saturating_add(CONFIG_SCAN_INTERVAL_NS);
        }
        0
    }
}
/// Is the controller still alive at `now_ns`?
#[inline]
fn liveness(ctrl: &Controller, now_ns: u64) -> Option<Teardown> {
    if ctrl.is_dead() {
        Some(Teardown::ControllerGone)
    } else if ctrl.keep_alive_expired(now_ns) {
        Some(Teardown::KeepAliveExpired)
    } else {
        None
    }
}

/// Completes `cmd` with a CQE carrying the queue's SQID and SQ head.
#[allow(clippy::too_many_arguments)]
#[inline]
fn complete<Q: TargetQpair>(
    q: &mut Q,
    cmd: &TargetCommand,
    sqid: u16,
    sqhd: u16,
    status: Status,
    dw0: u32,
    dw1: u32,
    data_len: u32,
) {
    let cqe = Cqe { dw0, dw1, sqhd, sqid, cid: cmd.sqe.cid, status: status.to_field() };
    q.complete(cmd.slot, &cqe, data_len);
}

/// The first command of a queue pair: Fabrics Connect, which makes it an
/// admin queue (new controller) or an IO queue (of an existing one).
fn on_connect<Q: TargetQpair>(
    ctx: &GatewayContext,
    e: &mut QpairEntry<Q>,
    cmd: &TargetCommand,
    now_ns: u64,
    refused_log: &mut LogLimiter,
) {
    let sqe = &cmd.sqe;
    if !sqe.is_fabrics() || sqe.fctype() != fctype::CONNECT {
        let status = Status::generic(generic::COMMAND_SEQUENCE_ERROR).with_dnr();
        complete(&mut e.qpair, cmd, 0, e.sqhd, status, 0, 0, 0);
        return;
    }
    let qid = sqe.connect_qid();
    let data = e.qpair.data_mut(cmd.slot);
    match connect(&ctx.state, &ctx.registry, sqe, data, &e.origin, now_ns) {
        Ok(connected) => {
            e.sq_entries = sqe.connect_sqsize().saturating_add(1);
            e.sqhd = 1 % e.sq_entries;
            // A host that keeps its own count needs no SQHD: reads may then end without a response capsule.
            e.qpair.set_sq_flow_control_disabled(sqe.connect_cattr() & connect_attr::DISABLE_SQ_FLOW_CONTROL != 0);
            let cntlid = match connected {
                Connected::Admin(ctrl) => {
                    log_event(format_args!(
                        "controller {} of {} created for host {} via {} (peer {}, kato {} ms)",
                        ctrl.cntlid,
                        ctrl.subnqn,
                        ctrl.hostnqn,
                        e.origin.listen,
                        e.qpair.peer_addr(),
                        ctrl.kato_ms()
                    ));
                    let cntlid = ctrl.cntlid;
                    e.role = QpairRole::Admin(Box::new(AdminQueue::new(ctrl)));
                    cntlid
                }
                Connected::Io { ctrl, qid, epoch } => {
                    let (ns, ns_generation) = ctrl.ns_table();
                    let cntlid = ctrl.cntlid;
                    e.role = QpairRole::Io(IoQueue { ctrl, qid, epoch, ns, ns_generation });
                    cntlid
                }
            };
            complete(&mut e.qpair, cmd, qid, e.sqhd, Status::SUCCESS, connect_success_dw0(cntlid), 0, 0);
        }
        Err(reject) => {
            refused_log.log(
                now_ns,
                format_args!(
                    "connect from {} (qpair {}, qid {qid}) refused: {}",
                    e.qpair.peer_addr(),
                    e.id,
                    reject.status
                ),
            );
            complete(&mut e.qpair, cmd, qid, e.sqhd, reject.status, reject.dw0, 0, 0);
        }
    }
}

impl<L: TargetListener + 'static> Poller for GatewayCore<L> {
    fn poll(&mut self, rctx: &mut ReactorCtx) -> usize {
        let now_ns = rctx.now_ns;
        self.take_ready(rctx);
        // Liveness before any socket read (module comment): the sweep checks
        // every queue pair when a timer of one is due or a controller changed
        // elsewhere; the hot loop checks each one again right before reading it.
        let pokes = self.ctx.pokes.load(Ordering::Acquire);
        let mut work = 0;
        if pokes != self.seen_pokes || now_ns >= self.next_sweep_ns {
            let poked = pokes != self.seen_pokes;
            self.seen_pokes = pokes;
            work += self.sweep(now_ns, poked);
        }
        work += self.accept(rctx, now_ns);
        // AIO completions are queued on their queue pairs here and sent by the flush in poll_hot.
        work += self.complete_aio();
        work += self.poll_hot(rctx, now_ns);
        if self.aio.busy() != 0 {
            self.submit_aio();
        }
        if self.index == 0 {
            work += self.watch_config(now_ns);
        }
        self.last_turn_work = work;
        work
    }

    fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        // Hot queue pairs are polled until they go quiet; AIO completions are
        // reaped by polling; a listener without a descriptor is polled.
        let listener_ready =
            |l: &ListenerEntry<L>| now_ns >= l.paused_until_ns && (l.pending || l.readiness != Readiness::Evented);
        if !self.hot.is_empty()
            || self.aio.busy() != 0
            || self.listeners.iter().any(listener_ready)
            || self.ctx.pokes.load(Ordering::Acquire) != self.seen_pokes
        {
            return Some(now_ns);
        }
        // A paused listener (out of descriptors) tries again when its pause ends.
        let resume_ns = self.listeners.iter().filter(|l| l.pending).map(|l| l.paused_until_ns).min();
        // Reactor 0's periodic configuration scan is for changes nobody
        // announced; every RPC announces its change and wakes it, so asleep it
        // waits for that.
        if self.index == 0 && self.ctx.config_generation.load(Ordering::Acquire) != self.seen_config_generation {
            return Some(now_ns);
        }
        Some(resume_ns.map_or(self.next_sweep_ns, |r| r.min(self.next_sweep_ns)).max(now_ns))
    }
}
struct Running<L: TargetListener + 'static> {
    reactors: ReactorSet<GatewayCore<L>>,
}

/// The gateway: reactors on a set of cores serving NVMe-oF over transport `T`.
///
/// Control-plane entry points ([`Gateway::listen`], [`Gateway::stop_listening`],
/// [`Gateway::reactors`]) are called from RPC threads; they reach the reactors
/// through their inboxes.
pub struct Gateway<T: TargetTransport> {
    transport: T,
    ctx: Arc<GatewayContext>,
    trtype: TrType,
    cores: Vec<usize>,
    gauges: Vec<Arc<CoreGauges>>,
    /// Each reactor's busy, idle and sleep times (the engine's).
    stats: Vec<Arc<ReactorStats>>,
    idle: IdlePolicy,
    run: Mutex<Option<Running<T::Listener>>>,
    listening: Mutex<Vec<ListenAddress>>,
}

impl<T: TargetTransport> Gateway<T> {
    /// Starts one reactor per core of `opts.cores`, serving the configuration
    /// in `state` (shared with the RPC handlers) over `transport`.
    pub fn start(transport: T, state: Arc<Mutex<TargetState>>, opts: GatewayOptions) -> Result<Self, GatewayError> {
        if opts.cores.is_empty() {
            return Err(GatewayError::NoCores);
        }
        let ctx = GatewayContext::new(state);
        ctx.set_max_connections(opts.max_connections);
        let peers: Peers<T::Listener> = Arc::new(OnceLock::new());
        let gauges: Vec<Arc<CoreGauges>> = opts.cores.iter().map(|_| Arc::new(CoreGauges::default())).collect();
        let make = {
            let (ctx, peers, gauges) = (ctx.clone(), peers.clone(), gauges.clone());
            move |index: usize| {
                let g = gauges.get(index).cloned().unwrap_or_default();
                GatewayCore::new(index, ctx.clone()).with_peers(peers.clone(), g)
            }
        };
        let reactors = ReactorSet::start("reactor", &opts.cores, opts.clock.clone(), opts.idle, make)
            .map_err(GatewayError::Start)?;
        // Set before any listener exists, so no connection is accepted without its peers.
        let _ = peers.set(reactors.senders().to_vec());
        let _ = ctx.wakers.set(reactors.senders().iter().map(|s| s.waker().clone()).collect());
        let stats = (0..opts.cores.len()).filter_map(|i| reactors.stats(i).cloned()).collect();
        log_event(format_args!("gateway started on cores {:?} (idle policy {})", opts.cores, opts.idle.name()));
        Ok(Gateway {
            transport,
            ctx,
            trtype: opts.trtype,
            cores: opts.cores,
            gauges,
            stats,
            idle: opts.idle,
            run: Mutex::new(Some(Running { reactors })),
            listening: Mutex::new(Vec::new()),
        })
    }

    /// The shared context (controllers, configuration).
    pub fn context(&self) -> &Arc<GatewayContext> {
        &self.ctx
    }

    /// Starts listening on `addr` with the transport options `opts`. Listening
    /// on an address already listened on succeeds and changes nothing.
    pub fn listen(&self, addr: &ListenAddress, opts: &TargetOptions) -> Result<(), GatewayError> {
        if addr.trtype != self.trtype {
            return Err(GatewayError::WrongTransport { serves: self.trtype.as_str(), requested: addr.trtype.as_str() });
        }
        let mut listening = lock(&self.listening);
        if listening.contains(addr) {
            return Ok(());
        }
        let run = lock(&self.run);
        let sender = run.as_ref().and_then(|r| r.reactors.sender(0)).ok_or(GatewayError::ShutDown)?;
        let listener = self
            .transport
            .listen(&addr.traddr, &addr.trsvcid, opts)
            .map_err(|source| GatewayError::Listen { addr: addr.to_string(), source })?;
        let origin = QpairOrigin { listen: addr.clone(), opts: opts.clone() };
        sender.send_wait(Box::new(move |core: &mut GatewayCore<T::Listener>, _: &mut ReactorCtx| {
            core.add_listener(origin, listener)
        }));
        listening.push(addr.clone());
        Ok(())
    }

    /// Stops listening on `addr` (connections already made stay).
    pub fn stop_listening(&self, addr: &ListenAddress) -> Result<(), GatewayError> {
        let mut listening = lock(&self.listening);
        let Some(pos) = listening.iter().position(|a| a == addr) else {
            return Err(GatewayError::NotListening(addr.to_string()));
        };
        listening.remove(pos);
        let run = lock(&self.run);
        let sender = run.as_ref().and_then(|r| r.reactors.sender(0)).ok_or(GatewayError::ShutDown)?;
        let (tx, rx) = mpsc::channel();
        let addr = addr.clone();
        sender.send_wait(Box::new(move |core: &mut GatewayCore<T::Listener>, _: &mut ReactorCtx| {
            core.remove_listener(&addr);
            let _ = tx.send(());
        }));
        drop(run);
        // The socket is closed once reactor 0 ran the message; a reactor that stopped
        // meanwhile closed it by dropping it.
        let _ = rx.recv_timeout(STOP_LISTENING_WAIT);
        Ok(())
    }

    /// Addresses listened on.
    pub fn listen_addresses(&self) -> Vec<ListenAddress> {
        lock(&self.listening).clone()
    }

    /// Tells the data path the configuration changed (see [`GatewayContext::config_changed`]).
    pub fn config_changed(&self) {
        self.ctx.config_changed();
    }

    /// Live controllers, for `nvmf_subsystem_get_controllers`.
    pub fn controllers(&self, subnqn: Option<&str>) -> Vec<ControllerInfo> {
        self.ctx.controllers(subnqn)
    }

    /// SPDK's `framework_get_reactors` result: ticks are nanoseconds.
    /// Beside SPDK's keys: `idle_policy` (busy, adaptive or interrupt), and
    /// `sleeps` and `slept` (times and nanoseconds asleep in `epoll_wait`,
    /// part of `idle`).
    pub fn reactors(&self) -> Value {
        let reactors: Vec<Value> = self
            .cores
            .iter()
            .zip(self.stats.iter().zip(&self.gauges))
            .enumerate()
            .map(|(index, (&core, (s, g)))| {
                let (busy, idle) = (s.busy_ns(), s.idle_ns());
                json!({
                    "lcore": core,
                    "busy": busy,
                    "idle": idle,
                    "in_interrupt": s.asleep(),
                    "idle_policy": self.idle.name(),
                    "sleeps": s.sleeps(),
                    "slept": s.slept_ns(),
                    "lw_threads": [{
                        "name": format!("nvmf_tgt_poll_group_{index}"),
                        "id": index + 1,
                        "cpumask": format!("{:x}", 1u128 << (core.min(127))),
                        "elapsed": busy + idle,
                        "qpairs": g.qpairs(),
                    }],
                })
            })
            .collect();
        let (connections, max_connections) = self.ctx.connections();
        // Beside SPDK's keys: the connection limit and what is open.
        json!({
            "tick_rate": 1_000_000_000u64,
            "reactors": reactors,
            "connections": connections,
            "max_connections": max_connections,
        })
    }

    /// Stops the reactors (closing every listener and connection). Idempotent.
    pub fn shutdown(&self) {
        let running = lock(&self.run).take();
        if let Some(mut r) = running {
            r.reactors.shutdown();
            lock(&self.listening).clear();
            log_event(format_args!("gateway stopped"));
        }
    }
}

impl<T: TargetTransport> Drop for Gateway<T> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_log_line_is_printed_once_a_second_with_a_count_of_the_rest() {
        let mut limiter = LogLimiter::default();
        limiter.log(5, format_args!("first"));
        assert_eq!((limiter.held_back, limiter.next_ns), (0, 5 + LOG_INTERVAL_NS));
        for t in 0..1_000u64 {
            limiter.log(10 + t, format_args!("flood"));
        }
        assert_eq!(limiter.held_back, 1_000, "held back within the interval");
        limiter.log(5 + LOG_INTERVAL_NS, format_args!("next"));
        assert_eq!((limiter.held_back, limiter.next_ns), (0, 5 + 2 * LOG_INTERVAL_NS), "printed with the count");
    }

    #[test]
    fn out_of_descriptors_is_told_from_other_accept_failures() {
        let io = |code| TransportError::Io { op: "accept", os_error: std::io::Error::from_raw_os_error(code) };
        assert!(out_of_descriptors(&io(libc::EMFILE)));
        assert!(out_of_descriptors(&io(libc::ENFILE)));
        assert!(!out_of_descriptors(&io(libc::EINVAL)));
        assert!(!out_of_descriptors(&TransportError::Closed));
    }
}
