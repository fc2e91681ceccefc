//! The gateway's data path: one pinned reactor per core, each running a
//! [`GatewayCore`] that accepts queue pairs (reactor 0 holds the listeners),
//! runs Fabrics Connect, and executes admin and IO commands.
//!
//! One loop turn of a core, in this order:
//! 1. **keep-alive and liveness first**: every queue pair whose controller is
//!    dead, reset, or whose keep-alive timer ran out is torn down *before any
//!    socket is read*. A host whose KATO expired has failed over to another
//!    gateway; a write of its that arrives late must not be executed here,
//!    or it could overwrite newer data written through the other path. The
//!    check happens on every core, on every turn, for every queue;
//! 2. accept new connections and hand them round-robin to the cores;
//! 3. poll each queue pair and execute what is ready;
//! 4. (reactor 0) notice configuration changes.
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::time::Duration;

use engine::{
    Clock, IdlePolicy, MonotonicClock, Poller, ReactorCtx, ReactorSender, ReactorSet, TargetCommand, TargetListener,
    TargetOptions, TargetQpair, TargetTransport, TrType, TransportError,
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
/// How often a reactor publishes its busy/idle counters.
const STATS_PUBLISH_INTERVAL_NS: u64 = 10_000_000;
/// Connections accepted per listener per turn at most, so accepting cannot starve IO.
const ACCEPTS_PER_TURN: usize = 16;
/// Commands executed per queue pair per turn at most, so one queue cannot starve the others.
const COMMANDS_PER_TURN: usize = 256;
/// How long an accepted connection may go without a successful Connect.
const CONNECT_WAIT_NS: u64 = 30_000_000_000;
/// How long `stop_listening` waits for reactor 0 to close the socket.
const STOP_LISTENING_WAIT: Duration = Duration::from_secs(5);

/// Writes one line to stderr: the gateway logs only rare events (controllers
/// created and destroyed, listeners, errors), never per IO.
fn log_event(msg: std::fmt::Arguments<'_>) {
    // "gateway:", not the daemon's name: corepath-bench embeds the gateway too.
    eprintln!("gateway: {msg}");
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
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            cores: vec![0],
            idle: IdlePolicy::BusyPoll,
            trtype: TrType::Tcp,
            clock: Arc::new(MonotonicClock::new()),
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
        })
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

/// Busy and idle time of one reactor, published for `framework_get_reactors`.
#[derive(Debug, Default)]
pub struct ReactorStats {
    busy_ns: AtomicU64,
    idle_ns: AtomicU64,
    qpairs: AtomicU64,
}

impl ReactorStats {
    /// Nanoseconds spent on turns that found work.
    pub fn busy_ns(&self) -> u64 {
        self.busy_ns.load(Ordering::Relaxed)
    }
    /// Nanoseconds spent on turns that found none.
    pub fn idle_ns(&self) -> u64 {
        self.idle_ns.load(Ordering::Relaxed)
    }
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
}

/// One core's share of the gateway: its listeners (reactor 0), its queue
/// pairs, and the ring to the other cores. Generic over the transport's
/// listener (and so its queue pair type): TCP today, RDMA later.
pub struct GatewayCore<L: TargetListener + 'static> {
    index: usize,
    ctx: Arc<GatewayContext>,
    listeners: Vec<(QpairOrigin, L)>,
    qpairs: Vec<QpairEntry<L::Qpair>>,
    peers: Peers<L>,
    next_peer: usize,
    stats: Arc<ReactorStats>,
    last_turn_ns: Option<u64>,
    last_turn_busy: bool,
    busy_ns: u64,
    idle_ns: u64,
    next_publish_ns: u64,
    seen_config_generation: u64,
    next_scan_ns: u64,
    /// This core's AIO context (set up on first use).
    aio: AioEngine,
}

impl<L: TargetListener + 'static> GatewayCore<L> {
    /// Core `index` of a gateway (index 0 also watches the configuration).
    pub fn new(index: usize, ctx: Arc<GatewayContext>) -> Self {
        GatewayCore {
            index,
            ctx,
            listeners: Vec::new(),
            qpairs: Vec::new(),
            peers: Arc::new(OnceLock::new()),
            next_peer: 0,
            stats: Arc::new(ReactorStats::default()),
            last_turn_ns: None,
            last_turn_busy: false,
            busy_ns: 0,
            idle_ns: 0,
            next_publish_ns: 0,
            seen_config_generation: u64::MAX,
            next_scan_ns: 0,
            aio: AioEngine::new(),
        }
    }

    fn with_peers(mut self, peers: Peers<L>, stats: Arc<ReactorStats>) -> Self {
        self.peers = peers;
        self.stats = stats;
        self
    }

    /// Takes a listener: its accepted connections are spread over the cores.
    pub fn add_listener(&mut self, origin: QpairOrigin, listener: L) {
        log_event(format_args!("listening on {}", origin.listen));
        self.listeners.push((origin, listener));
    }

    /// Closes the listener on `addr`; returns false if there was none.
    pub fn remove_listener(&mut self, addr: &ListenAddress) -> bool {
        let before = self.listeners.len();
        self.listeners.retain(|(o, _)| &o.listen != addr);
        let removed = self.listeners.len() != before;
        if removed {
            log_event(format_args!("stopped listening on {addr}"));
        }
        removed
    }

    /// Takes an accepted queue pair; it waits for Connect.
    pub fn add_qpair(&mut self, qpair: L::Qpair, origin: QpairOrigin) {
        let id = self.ctx.next_qpair_id.fetch_add(1, Ordering::Relaxed);
        self.qpairs.push(QpairEntry {
            qpair,
            origin,
            role: QpairRole::AwaitingConnect { since_ns: None },
            sqhd: 0,
            sq_entries: 1,
            id,
            in_flight: 0,
            draining: false,
        });
        self.stats.qpairs.store(self.qpairs.len() as u64, Ordering::Relaxed);
    }

    /// Queue pairs on this core (draining ones included).
    pub fn num_qpairs(&self) -> usize {
        self.qpairs.len()
    }

    /// Commands of this core on AIO bdevs, submitted or about to be, not yet completed.
    pub fn aio_in_flight(&self) -> usize {
        self.aio.busy()
    }

    /// Step 1 of a turn: tears down every queue pair of a dead, reset or
    /// keep-alive-expired controller. Runs before any socket is read (see the
    /// module comment: no stale write after the host failed over).
    fn reap(&mut self, now_ns: u64) -> usize {
        let mut torn = 0;
        let mut i = 0;
        while i < self.qpairs.len() {
            if self.qpairs[i].draining {
                if self.qpairs[i].in_flight == 0 {
                    self.finish_teardown(i);
                    torn += 1;
                } else {
                    i += 1;
                }
                continue;
            }
            let reason = match &mut self.qpairs[i].role {
                QpairRole::AwaitingConnect { since_ns } => {
                    let since = *since_ns.get_or_insert(now_ns);
                    (now_ns.saturating_sub(since) > CONNECT_WAIT_NS).then_some(Teardown::ConnectTimeout)
                }
                QpairRole::Admin(a) => liveness(&a.ctrl, now_ns),
                QpairRole::Io(io) => liveness(&io.ctrl, now_ns)
                    .or_else(|| (io.epoch != io.ctrl.reset_epoch()).then_some(Teardown::ControllerReset)),
            };
            match reason {
                Some(r) => {
                    torn += 1;
                    if !self.teardown(i, r) {
                        i += 1;
                    }
                }
                None => i += 1,
            }
        }
        torn
    }

    /// Tears queue pair `i` down: from now on nothing is read from it. If it
    /// has no command on the bdev it is removed (swap-remove) and dropped,
    /// which closes its connection, and true is returned; otherwise it is left
    /// draining (see the module comment) and false is returned.
    fn teardown(&mut self, i: usize, reason: Teardown) -> bool {
        let e = &mut self.qpairs[i];
        if e.draining {
            return false;
        }
        e.draining = true;
        let sqhd = e.sqhd;
        match &mut e.role {
            QpairRole::AwaitingConnect { .. } => {}
            QpairRole::Admin(a) => {
                if !matches!(reason, Teardown::Transport(_)) {
                    // The connection still works: tell the host its AERs are gone.
                    a.abort_aers(&mut e.qpair, sqhd);
                    let _ = e.qpair.flush();
                }
                if self.ctx.registry.destroy(&a.ctrl) {
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
                        log_event(format_args!(
                            "controller {} of {} (host {}) destroyed: keep-alive timeout",
                            io.ctrl.cntlid, io.ctrl.subnqn, io.ctrl.hostnqn
                        ));
                    }
                }
            }
        }
        if e.in_flight == 0 {
            self.finish_teardown(i);
            true
        } else {
            false
        }
    }

    /// Removes a torn-down queue pair with nothing in flight and drops it (closing its connection).
    fn finish_teardown(&mut self, i: usize) {
        let e = self.qpairs.swap_remove(i);
        debug_assert!(e.draining && e.in_flight == 0);
        self.stats.qpairs.store(self.qpairs.len() as u64, Ordering::Relaxed);
        if let QpairRole::Io(io) = &e.role {
            io.ctrl.release_io_qid(io.qid, io.epoch);
        }
        drop(e);
    }

    /// Completes the AIOs that finished (on their queue pairs, all on this core).
    fn complete_aio(&mut self) -> usize {
        let qpairs = &mut self.qpairs;
        let core = self.index;
        self.aio.reap(|done| {
            if let Some(e) = qpairs.iter_mut().find(|e| e.id == done.tag.qpair_id) {
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
            }
        })
    }

    /// Submits the AIOs prepared this turn; completes at once those the kernel refused.
    fn submit_aio(&mut self) {
        let qpairs = &mut self.qpairs;
        let mut refused = false;
        self.aio.submit(|tag, status| {
            if let Some(e) = qpairs.iter_mut().find(|e| e.id == tag.qpair_id) {
                e.in_flight = e.in_flight.saturating_sub(1);
                let sqid = match &e.role {
                    QpairRole::Io(io) => io.qid,
                    _ => 0,
                };
                let cqe = Cqe { sqhd: e.sqhd, sqid, cid: tag.cid, status: status.to_field(), ..Cqe::default() };
                e.qpair.complete(tag.slot, &cqe, 0);
                refused = true;
            }
        });
        if refused {
            for e in &mut self.qpairs {
                let _ = e.qpair.flush();
            }
        }
    }

    /// Step 2: accepts pending connections and hands them out round-robin.
    fn accept(&mut self, rctx: &mut ReactorCtx) -> usize {
        let mut accepted = Vec::new();
        for (origin, listener) in &mut self.listeners {
            for _ in 0..ACCEPTS_PER_TURN {
                match listener.accept() {
                    Ok(Some(qp)) => accepted.push((qp, origin.clone())),
                    Ok(None) => break,
                    Err(e) => {
                        log_event(format_args!("accept on {}: {e}", origin.listen));
                        break;
                    }
                }
            }
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

    /// Step 3: polls every queue pair and executes its ready commands.
    fn poll_qpairs(&mut self, now_ns: u64) -> usize {
        let mut work = 0;
        let mut i = 0;
        while i < self.qpairs.len() {
            match self.service(i, now_ns) {
                Ok(n) => {
                    work += n;
                    i += 1;
                }
                Err(reason) => {
                    if !self.teardown(i, reason) {
                        i += 1;
                    }
                    work += 1;
                }
            }
        }
        work
    }

    fn service(&mut self, i: usize, now_ns: u64) -> Result<usize, Teardown> {
        let ctx = &*self.ctx;
        let aio = &mut self.aio;
        let core = self.index;
        let e = &mut self.qpairs[i];
        if e.draining {
            // Never read again; only send the CQEs of AIOs that completed (if the connection still works).
            let _ = e.qpair.flush();
            return Ok(0);
        }
        let mut work = e.qpair.poll(now_ns).map_err(Teardown::Transport)?;
        if let QpairRole::Io(io) = &mut e.role {
            // One atomic load per turn; the lock is taken only when the table changed.
            if io.ctrl.ns_generation() != io.ns_generation {
                (io.ns, io.ns_generation) = io.ctrl.ns_table();
            }
        }
        let mut close_after = None;
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
                            let tag = AioTag { qpair_id: e.id, slot: cmd.slot, cid: cmd.sqe.cid };
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
                    match a.execute(&mut e.qpair, &cmd, &env) {
                        AdminOutcome::Complete { status, dw0, dw1, data_len } => {
                            complete(&mut e.qpair, &cmd, 0, e.sqhd, status, dw0, dw1, data_len)
                        }
                        AdminOutcome::Deferred => {}
                    }
                }
                QpairRole::AwaitingConnect { .. } => on_connect(ctx, e, &cmd, now_ns),
            }
        }
        if let QpairRole::Admin(a) = &mut e.role {
            work += a.deliver_events(&mut e.qpair, e.sqhd);
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

    fn account(&mut self, now_ns: u64) {
        if let Some(last) = self.last_turn_ns {
            let dt = now_ns.saturating_sub(last);
            if self.last_turn_busy {
                self.busy_ns += dt;
            } else {
                self.idle_ns += dt;
            }
        }
        self.last_turn_ns = Some(now_ns);
        if now_ns >= self.next_publish_ns {
            self.stats.busy_ns.store(self.busy_ns, Ordering::Relaxed);
            self.stats.idle_ns.store(self.idle_ns, Ordering::Relaxed);
            self.next_publish_ns = now_ns.saturating_add(STATS_PUBLISH_INTERVAL_NS);
        }
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
fn on_connect<Q: TargetQpair>(ctx: &GatewayContext, e: &mut QpairEntry<Q>, cmd: &TargetCommand, now_ns: u64) {
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
            log_event(format_args!(
                "connect from {} (qpair {}, qid {qid}) refused: {}",
                e.qpair.peer_addr(),
                e.id,
                reject.status
            ));
            complete(&mut e.qpair, cmd, qid, e.sqhd, reject.status, reject.dw0, 0, 0);
        }
    }
}

impl<L: TargetListener + 'static> Poller for GatewayCore<L> {
    fn poll(&mut self, rctx: &mut ReactorCtx) -> usize {
        let now_ns = rctx.now_ns;
        self.account(now_ns);
        // Order matters: liveness before any socket read (module comment).
        let mut work = self.reap(now_ns);
        work += self.accept(rctx);
        // AIO completions are queued on their queue pairs here and sent by the flush in poll_qpairs.
        work += self.complete_aio();
        work += self.poll_qpairs(now_ns);
        if self.aio.busy() != 0 {
            self.submit_aio();
        }
        if self.index == 0 {
            work += self.watch_config(now_ns);
        }
        self.last_turn_busy = work > 0;
        work
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
    stats: Vec<Arc<ReactorStats>>,
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
        let peers: Peers<T::Listener> = Arc::new(OnceLock::new());
        let stats: Vec<Arc<ReactorStats>> = opts.cores.iter().map(|_| Arc::new(ReactorStats::default())).collect();
        let make = {
            let (ctx, peers, stats) = (ctx.clone(), peers.clone(), stats.clone());
            move |index: usize| {
                let s = stats.get(index).cloned().unwrap_or_default();
                GatewayCore::new(index, ctx.clone()).with_peers(peers.clone(), s)
            }
        };
        let reactors = ReactorSet::start("reactor", &opts.cores, opts.clock.clone(), opts.idle, make)
            .map_err(GatewayError::Start)?;
        // Set before any listener exists, so no connection is accepted without its peers.
        let _ = peers.set(reactors.senders().to_vec());
        log_event(format_args!("gateway started on cores {:?} ({:?})", opts.cores, opts.idle));
        Ok(Gateway {
            transport,
            ctx,
            trtype: opts.trtype,
            cores: opts.cores,
            stats,
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
    pub fn reactors(&self) -> Value {
        let reactors: Vec<Value> = self
            .cores
            .iter()
            .zip(&self.stats)
            .enumerate()
            .map(|(index, (&core, s))| {
                let (busy, idle) = (s.busy_ns(), s.idle_ns());
                json!({
                    "lcore": core,
                    "busy": busy,
                    "idle": idle,
                    "in_interrupt": false,
                    "lw_threads": [{
                        "name": format!("nvmf_tgt_poll_group_{index}"),
                        "id": index + 1,
                        "cpumask": format!("{:x}", 1u128 << (core.min(127))),
                        "elapsed": busy + idle,
                        "qpairs": s.qpairs(),
                    }],
                })
            })
            .collect();
        json!({ "tick_rate": 1_000_000_000u64, "reactors": reactors })
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
