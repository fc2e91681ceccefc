//! The reactor: one thread pinned to one core, looping over its poller, its
//! timers and its inbox.
//!
//! A reactor is generic over the one poller it drives (`P`): the host engine's
//! per-core state, or the gateway's. Other threads reach it only through its
//! inbox, a bounded lock-free ring of messages; a message is a closure run on
//! the reactor's thread with the poller borrowed mutably. Messages carry
//! control work (attach a controller, add a connection); the IO path of a core
//! never goes through the inbox.
//!
//! When turns find nothing, the [`IdlePolicy`] decides whether the thread
//! sleeps; it then blocks in its [`WakeSet`] (sockets, the eventfd behind the
//! inbox and every ring feeding it) until the poller's next deadline.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_queue::ArrayQueue;

use crate::clock::Clock;
pub use crate::idle::{IdleDecision, IdleGovernor, IdlePolicy};
use crate::wake::{WakeSet, Waker};

/// Work a reactor runs on every turn of its loop.
pub trait Poller: 'static {
    /// Does whatever work is ready; returns how much (0 when idle).
    fn poll(&mut self, ctx: &mut ReactorCtx) -> usize;

    /// The earliest time this poller needs a turn although no wake source
    /// fired (a keep-alive to send, a reconnect delay over, a timeout to
    /// check): `None` when only events can bring it work. Asked only when the
    /// reactor is about to sleep. The default, "now", never lets it sleep: a
    /// poller that does not know its timers stays correct, only not frugal.
    fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        Some(now_ns)
    }
}

/// A control message: runs once on the reactor's thread.
pub type Message<P> = Box<dyn FnOnce(&mut P, &mut ReactorCtx) + Send>;

/// What a reactor tells its poller about itself and the time.
pub struct ReactorCtx {
    /// Index of this reactor in the engine (0-based, in core-mask order).
    pub index: usize,
    /// The CPU core it is pinned to (or meant for, when not pinned).
    pub core: usize,
    /// Time of this loop turn.
    pub now_ns: u64,
    clock: Arc<dyn Clock>,
    timers: Timers,
    wake: WakeSet,
}

impl ReactorCtx {
    /// Reads the clock again (the loop reads it once per turn into `now_ns`).
    pub fn refresh_now(&mut self) -> u64 {
        self.now_ns = self.clock.now_ns();
        self.now_ns
    }

    /// The timers of this reactor.
    pub fn timers(&mut self) -> &mut Timers {
        &mut self.timers
    }

    /// This reactor's wake sources: transports register the file descriptors
    /// of their queue pairs and listeners here.
    pub fn wake_set(&mut self) -> &mut WakeSet {
        &mut self.wake
    }

    /// A waker for this reactor, for a ring fed from another thread.
    pub fn waker(&self) -> Waker {
        self.wake.waker()
    }
}

/// A handle to a scheduled timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerId(pub u32);

/// Deadlines a poller asks the reactor to watch: a fixed table made at start,
/// so arming and firing a timer never allocates.
#[derive(Debug)]
pub struct Timers {
    deadlines_ns: Vec<Option<u64>>,
}

impl Timers {
    /// Room for `capacity` timers.
    pub fn with_capacity(capacity: usize) -> Self {
        Timers { deadlines_ns: vec![None; capacity] }
    }

    /// Arms timer `id` to fire at `deadline_ns` (re-arming moves it). Returns
    /// false when `id` is beyond the table.
    pub fn arm(&mut self, id: TimerId, deadline_ns: u64) -> bool {
        match self.deadlines_ns.get_mut(id.0 as usize) {
            Some(slot) => {
                *slot = Some(deadline_ns);
                true
            }
            None => false,
        }
    }

    /// Disarms timer `id`.
    pub fn cancel(&mut self, id: TimerId) {
        if let Some(slot) = self.deadlines_ns.get_mut(id.0 as usize) {
            *slot = None;
        }
    }

    /// If timer `id` is due at `now_ns`, disarms it and returns true.
    pub fn take_expired(&mut self, id: TimerId, now_ns: u64) -> bool {
        match self.deadlines_ns.get_mut(id.0 as usize) {
            Some(slot @ Some(_)) if slot.is_some_and(|d| d <= now_ns) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }
}

/// A reactor and its inbox, before it runs (usable directly in tests and simulation).
pub struct Reactor<P: Poller> {
    poller: P,
    inbox: Arc<ArrayQueue<Message<P>>>,
    ctx: ReactorCtx,
}

/// Where one reactor's time goes, published for `framework_get_reactors`
/// (nanoseconds; SPDK calls them busy and idle ticks).
#[derive(Debug, Default)]
pub struct ReactorStats {
    busy_ns: AtomicU64,
    idle_ns: AtomicU64,
    slept_ns: AtomicU64,
    sleeps: AtomicU64,
    asleep: AtomicBool,
}

impl ReactorStats {
    /// Time in turns that found work.
    pub fn busy_ns(&self) -> u64 {
        self.busy_ns.load(Ordering::Relaxed)
    }
    /// Time in turns that found none, and asleep.
    pub fn idle_ns(&self) -> u64 {
        self.idle_ns.load(Ordering::Relaxed)
    }
    /// Time asleep in `epoll_wait` (part of the idle time).
    pub fn slept_ns(&self) -> u64 {
        self.slept_ns.load(Ordering::Relaxed)
    }
    /// Times the reactor went to sleep.
    pub fn sleeps(&self) -> u64 {
        self.sleeps.load(Ordering::Relaxed)
    }
    /// Asleep right now (SPDK's `in_interrupt`).
    pub fn asleep(&self) -> bool {
        self.asleep.load(Ordering::Relaxed)
    }
}

/// A reactor thread's own tally, published to [`ReactorStats`] now and then.
struct Tally {
    busy_ns: u64,
    idle_ns: u64,
    slept_ns: u64,
    sleeps: u64,
    next_publish_ns: u64,
}

/// How often a spinning reactor publishes its counters.
const STATS_PUBLISH_INTERVAL_NS: u64 = 10_000_000;

impl Tally {
    fn publish(&mut self, stats: &ReactorStats, now_ns: u64, force: bool) {
        if force || now_ns >= self.next_publish_ns {
            stats.busy_ns.store(self.busy_ns, Ordering::Relaxed);
            stats.idle_ns.store(self.idle_ns, Ordering::Relaxed);
            stats.slept_ns.store(self.slept_ns, Ordering::Relaxed);
            stats.sleeps.store(self.sleeps, Ordering::Relaxed);
            self.next_publish_ns = now_ns.saturating_add(STATS_PUBLISH_INTERVAL_NS);
        }
    }
}

/// Messages drained per loop turn at most, so control work cannot starve IO.
const INBOX_BATCH: usize = 16;

impl<P: Poller> Reactor<P> {
    /// A reactor around `poller`, with an inbox of `inbox_capacity` messages.
    /// Fails only when the kernel refuses an epoll set or an eventfd.
    pub fn new(
        index: usize,
        core: usize,
        poller: P,
        clock: Arc<dyn Clock>,
        inbox_capacity: usize,
    ) -> std::io::Result<Self> {
        let now_ns = clock.now_ns();
        let wake = WakeSet::new()?;
        Ok(Reactor {
            poller,
            inbox: Arc::new(ArrayQueue::new(inbox_capacity.max(1))),
            ctx: ReactorCtx { index, core, now_ns, clock, timers: Timers::with_capacity(64), wake },
        })
    }

    /// A sender for this reactor's inbox.
    pub fn sender(&self) -> ReactorSender<P> {
        ReactorSender { inbox: self.inbox.clone(), waker: self.ctx.waker() }
    }

    /// When the poller next needs a turn without an event (see [`Poller::next_deadline_ns`]).
    pub fn next_deadline_ns(&self) -> Option<u64> {
        if !self.inbox.is_empty() {
            return Some(self.ctx.now_ns);
        }
        self.poller.next_deadline_ns(self.ctx.now_ns)
    }

    /// Goes to sleep if nothing is pending: announces it, runs one more turn
    /// (the recheck of every source, see [`crate::wake`]), then blocks until a
    /// wake source fires or the next deadline passes. `stop` is rechecked after
    /// the announcement so a shutdown's wake-up is not lost. Returns the work
    /// of the recheck turn and whether it slept, and adds the time asleep to `slept_ns`.
    fn sleep(&mut self, stop: &AtomicBool, slept_ns: &mut u64) -> (usize, bool) {
        self.ctx.wake.announce_sleep();
        let work = self.run_once();
        if work > 0 || stop.load(Ordering::Relaxed) {
            self.ctx.wake.cancel_sleep();
            return (work, false);
        }
        let now_ns = self.ctx.clock.now_ns();
        let timeout_ns = self.next_deadline_ns().map(|d| d.saturating_sub(now_ns));
        if timeout_ns == Some(0) {
            self.ctx.wake.cancel_sleep();
            return (0, false);
        }
        self.ctx.wake.sleep(timeout_ns);
        *slept_ns += self.ctx.clock.now_ns().saturating_sub(now_ns);
        (0, true)
    }

    /// Runs turns until `stop`, sleeping as `policy` says, and keeps `stats`.
    pub fn run(&mut self, policy: IdlePolicy, stop: &AtomicBool, stats: &ReactorStats) {
        let mut governor = IdleGovernor::new(policy);
        let mut tally = Tally { busy_ns: 0, idle_ns: 0, slept_ns: 0, sleeps: 0, next_publish_ns: 0 };
        let mut last_ns = self.ctx.clock.now_ns();
        while !stop.load(Ordering::Relaxed) {
            let work = self.run_once();
            let now_ns = self.ctx.now_ns;
            let dt = now_ns.saturating_sub(last_ns);
            last_ns = now_ns;
            if work > 0 {
                tally.busy_ns += dt;
            } else {
                tally.idle_ns += dt;
            }
            if governor.after_turn(work, now_ns) == IdleDecision::Spin {
                tally.publish(stats, now_ns, false);
                continue;
            }
            tally.publish(stats, now_ns, true);
            stats.asleep.store(true, Ordering::Relaxed);
            let (work, slept) = self.sleep(stop, &mut tally.slept_ns);
            stats.asleep.store(false, Ordering::Relaxed);
            if slept {
                tally.sleeps += 1;
            }
            let now_ns = self.ctx.clock.now_ns();
            // The recheck turn and the time asleep are idle unless the recheck found work.
            if work > 0 {
                tally.busy_ns += now_ns.saturating_sub(last_ns);
            } else {
                tally.idle_ns += now_ns.saturating_sub(last_ns);
            }
            last_ns = now_ns;
            governor.woke(work + usize::from(slept), now_ns);
        }
        tally.publish(stats, last_ns, true);
    }

    /// One turn: read the clock, run queued messages, poll. Returns the work done.
    pub fn run_once(&mut self) -> usize {
        self.ctx.now_ns = self.ctx.clock.now_ns();
        let mut work = 0;
        for _ in 0..INBOX_BATCH {
            match self.inbox.pop() {
                Some(msg) => {
                    msg(&mut self.poller, &mut self.ctx);
                    work += 1;
                }
                None => break,
            }
        }
        work + self.poller.poll(&mut self.ctx)
    }

    /// The poller, for inspection in tests.
    pub fn poller(&mut self) -> &mut P {
        &mut self.poller
    }
}

/// Sends messages to one reactor from any thread.
pub struct ReactorSender<P: Poller> {
    inbox: Arc<ArrayQueue<Message<P>>>,
    waker: Waker,
}

impl<P: Poller> Clone for ReactorSender<P> {
    fn clone(&self) -> Self {
        ReactorSender { inbox: self.inbox.clone(), waker: self.waker.clone() }
    }
}

impl<P: Poller> ReactorSender<P> {
    /// Queues `f` to run on the reactor and wakes it if it sleeps. Fails
    /// (giving `f` back) when the inbox is full.
    pub fn send(&self, f: Message<P>) -> Result<(), Message<P>> {
        self.inbox.push(f)?;
        self.waker.wake();
        Ok(())
    }

    /// The reactor's waker (for rings that feed it from other threads).
    pub fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Queues `f`, waiting while the inbox is full (control plane only).
    pub fn send_wait(&self, mut f: Message<P>) {
        loop {
            match self.send(f) {
                Ok(()) => return,
                Err(back) => {
                    f = back;
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// A set of reactor threads, one per core of a mask.
pub struct ReactorSet<P: Poller> {
    senders: Vec<ReactorSender<P>>,
    stats: Vec<Arc<ReactorStats>>,
    policy: IdlePolicy,
    cores: Vec<usize>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl<P: Poller> ReactorSet<P> {
    /// Starts one reactor thread per entry of `cores`, each pinned to its core
    /// and running the poller `make_poller(index)` made on that thread.
    pub fn start<F>(
        name: &str,
        cores: &[usize],
        clock: Arc<dyn Clock>,
        idle: IdlePolicy,
        make_poller: F,
    ) -> std::io::Result<Self>
    where
        F: Fn(usize) -> P + Send + Sync + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let make_poller = Arc::new(make_poller);
        let mut senders = Vec::with_capacity(cores.len());
        let mut threads = Vec::with_capacity(cores.len());
        let mut all_stats = Vec::with_capacity(cores.len());
        for (index, &core) in cores.iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::channel();
            let stop = stop.clone();
            let clock = clock.clone();
            let make_poller = make_poller.clone();
            let stats = Arc::new(ReactorStats::default());
            all_stats.push(stats.clone());
            let thread = std::thread::Builder::new().name(format!("{name}_{core}")).spawn(move || {
                // Pinning can fail (core not in our cpuset): run unpinned rather than not at all.
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
                // Timed sleeps end on time, not up to 50 us late (the default slack).
                crate::sys::set_timer_slack_ns(1);
                let mut reactor = match Reactor::new(index, core, make_poller(index), clock, 1024) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if tx.send(Ok(reactor.sender())).is_err() {
                    return;
                }
                reactor.run(idle, &stop, &stats);
            })?;
            let sender = rx.recv().map_err(|_| std::io::Error::other("reactor thread died at start"))??;
            senders.push(sender);
            threads.push(thread);
        }
        Ok(ReactorSet { senders, stats: all_stats, policy: idle, cores: cores.to_vec(), stop, threads })
    }

    /// Where reactor `index`'s time goes.
    pub fn stats(&self, index: usize) -> Option<&Arc<ReactorStats>> {
        self.stats.get(index)
    }

    /// The idle policy the reactors run with.
    pub fn policy(&self) -> IdlePolicy {
        self.policy
    }

    /// The inbox of reactor `index`.
    pub fn sender(&self, index: usize) -> Option<&ReactorSender<P>> {
        self.senders.get(index)
    }

    /// All inboxes, in core-mask order.
    pub fn senders(&self) -> &[ReactorSender<P>] {
        &self.senders
    }

    /// The cores, in index order.
    pub fn cores(&self) -> &[usize] {
        &self.cores
    }

    /// Stops every reactor after its current turn and joins the threads.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in &self.senders {
            s.waker.wake();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl<P: Poller> Drop for ReactorSet<P> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Parses an SPDK core mask: hex (`0x3`, `3`) or a bracketed/comma list with
/// ranges (`[0,2-3]`, `1,3`).
pub fn parse_core_mask(mask: &str) -> Result<Vec<usize>, String> {
    let m = mask.trim();
    let cores: Vec<usize> = if m.contains(',') || m.contains('-') || m.starts_with('[') {
        let inner = m.trim_start_matches('[').trim_end_matches(']');
        let mut v = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || format!("bad core list entry '{part}' in '{mask}'");
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                    if a > b || b >= 1024 {
                        return Err(bad());
                    }
                    v.extend(a..=b);
                }
                None => v.push(part.parse().map_err(|_| bad())?),
            }
        }
        v
    } else {
        let hex = m.trim_start_matches("0x").trim_start_matches("0X");
        let bits = u128::from_str_radix(hex, 16).map_err(|_| format!("bad core mask '{mask}'"))?;
        (0..128).filter(|i| bits & (1u128 << i) != 0).collect()
    };
    let mut cores = cores;
    cores.sort_unstable();
    cores.dedup();
    if cores.is_empty() {
        return Err(format!("core mask '{mask}' selects no core"));
    }
    Ok(cores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    struct Counter(usize);
    impl Poller for Counter {
        fn poll(&mut self, _ctx: &mut ReactorCtx) -> usize {
            self.0 += 1;
            0
        }
    }

    #[test]
    fn messages_run_on_the_reactor_before_its_poller() {
        let mut r = Reactor::new(0, 0, Counter(0), Arc::new(ManualClock::new()), 4).expect("reactor");
        let tx = r.sender();
        assert!(tx.send(Box::new(|p: &mut Counter, _| p.0 += 100)).is_ok());
        assert_eq!(r.run_once(), 1);
        assert_eq!(r.poller().0, 101);
    }

    #[test]
    fn timers_fire_once_at_their_deadline() {
        let mut t = Timers::with_capacity(2);
        assert!(t.arm(TimerId(1), 100));
        assert!(!t.take_expired(TimerId(1), 99));
        assert!(t.take_expired(TimerId(1), 100));
        assert!(!t.take_expired(TimerId(1), 200));
        assert!(!t.arm(TimerId(9), 1));
    }

    #[test]
    fn core_masks_parse_like_spdk() {
        assert_eq!(parse_core_mask("0x3").unwrap(), vec![0, 1]);
        assert_eq!(parse_core_mask("2").unwrap(), vec![1]);
        assert_eq!(parse_core_mask("[0,2-3]").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_core_mask("1,3").unwrap(), vec![1, 3]);
        assert!(parse_core_mask("0x0").is_err());
        assert!(parse_core_mask("zz").is_err());
        assert!(parse_core_mask("3-1").is_err());
    }
}
