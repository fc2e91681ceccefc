//! The reactor: one thread pinned to one core, looping over its poller, its
//! timers and its inbox.
//!
//! A reactor is generic over the one poller it drives (`P`): the host engine's
//! per-core state, or the gateway's. Other threads reach it only through its
//! inbox, a bounded lock-free ring of messages; a message is a closure run on
//! the reactor's thread with the poller borrowed mutably. Messages carry
//! control work (attach a controller, add a connection); the IO path of a core
//! never goes through the inbox.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_queue::ArrayQueue;

use crate::clock::Clock;

/// Work a reactor runs on every turn of its loop.
pub trait Poller: 'static {
    /// Does whatever work is ready; returns how much (0 when idle).
    fn poll(&mut self, ctx: &mut ReactorCtx) -> usize;
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

/// How a reactor behaves when a loop turn found no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Spin, as SPDK does: lowest latency, one core burnt per reactor.
    BusyPoll,
    /// Yield the CPU after this many idle turns in a row: for shared machines and tests.
    YieldAfter(u32),
}

/// A reactor and its inbox, before it runs (usable directly in tests and simulation).
pub struct Reactor<P: Poller> {
    poller: P,
    inbox: Arc<ArrayQueue<Message<P>>>,
    ctx: ReactorCtx,
}

/// Messages drained per loop turn at most, so control work cannot starve IO.
const INBOX_BATCH: usize = 16;

impl<P: Poller> Reactor<P> {
    /// A reactor around `poller`, with an inbox of `inbox_capacity` messages.
    pub fn new(index: usize, core: usize, poller: P, clock: Arc<dyn Clock>, inbox_capacity: usize) -> Self {
        let now_ns = clock.now_ns();
        Reactor {
            poller,
            inbox: Arc::new(ArrayQueue::new(inbox_capacity.max(1))),
            ctx: ReactorCtx { index, core, now_ns, clock, timers: Timers::with_capacity(64) },
        }
    }

    /// A sender for this reactor's inbox.
    pub fn sender(&self) -> ReactorSender<P> {
        ReactorSender { inbox: self.inbox.clone() }
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
}

impl<P: Poller> Clone for ReactorSender<P> {
    fn clone(&self) -> Self {
        ReactorSender { inbox: self.inbox.clone() }
    }
}

impl<P: Poller> ReactorSender<P> {
    /// Queues `f` to run on the reactor. Fails (giving `f` back) when the inbox is full.
    pub fn send(&self, f: Message<P>) -> Result<(), Message<P>> {
        self.inbox.push(f)
    }

    /// Queues `f`, waiting while the inbox is full (control plane only).
    pub fn send_wait(&self, mut f: Message<P>) {
        loop {
            match self.inbox.push(f) {
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
        for (index, &core) in cores.iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::channel();
            let stop = stop.clone();
            let clock = clock.clone();
            let make_poller = make_poller.clone();
            let thread = std::thread::Builder::new().name(format!("{name}_{core}")).spawn(move || {
                // Pinning can fail (core not in our cpuset): run unpinned rather than not at all.
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
                let mut reactor = Reactor::new(index, core, make_poller(index), clock, 1024);
                if tx.send(reactor.sender()).is_err() {
                    return;
                }
                let mut idle_turns = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if reactor.run_once() > 0 {
                        idle_turns = 0;
                        continue;
                    }
                    idle_turns = idle_turns.saturating_add(1);
                    if let IdlePolicy::YieldAfter(n) = idle {
                        if idle_turns >= n {
                            std::thread::yield_now();
                        }
                    }
                }
            })?;
            let sender = rx.recv().map_err(|_| std::io::Error::other("reactor thread died at start"))?;
            senders.push(sender);
            threads.push(thread);
        }
        Ok(ReactorSet { senders, cores: cores.to_vec(), stop, threads })
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
        let mut r = Reactor::new(0, 0, Counter(0), Arc::new(ManualClock::new()), 4);
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
