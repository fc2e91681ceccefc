//! What wakes a sleeping reactor: one epoll set per reactor holding the file
//! descriptors its transports own (sockets today; an RDMA completion channel
//! or a library's notification fd later) and one eventfd that other threads
//! ring through a [`Waker`].
//!
//! The wake-up protocol, so none is lost and the hot path makes no syscall:
//! - a producer (another thread pushing to a ring this reactor drains, a
//!   library callback) pushes first, then calls [`Waker::wake`], which writes
//!   the eventfd only if the reactor announced that it is going to sleep;
//! - the reactor announces (`sleeping = true`), then checks every source once
//!   more (a full turn), and only then blocks in `epoll_wait`.
//!
//! Both sides put a sequentially consistent fence between their store and
//! their load, so at least one of them sees the other: either the reactor's
//! recheck finds the item, or the producer sees `sleeping` and writes the
//! eventfd, which makes `epoll_wait` return. Sockets need no such care: the
//! kernel queues their readiness in the epoll set whether or not anyone waits.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::sys::{Epoll, EventFd};

/// The token the reactor's own eventfd is registered under; never handed to pollers.
const EVENTFD_TOKEN: u64 = u64::MAX;

/// Events taken from the kernel per `epoll_wait`; more stay queued for the next.
const EVENTS_PER_WAIT: usize = 256;

struct WakeShared {
    sleeping: AtomicBool,
    eventfd: EventFd,
    /// Eventfd writes made (a wake-up that found the reactor going to sleep).
    signals: AtomicU64,
}

/// Wakes one reactor from any thread. Cheap to clone; [`Waker::wake`] costs
/// one fence and one load while the reactor is spinning.
#[derive(Clone)]
pub struct Waker {
    shared: Arc<WakeShared>,
}

impl core::fmt::Debug for Waker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Waker").field("sleeping", &self.shared.sleeping.load(Ordering::Relaxed)).finish()
    }
}

impl Waker {
    /// Call after making work visible to the reactor (after the push).
    #[inline]
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.shared.sleeping.load(Ordering::Relaxed) {
            self.shared.signals.fetch_add(1, Ordering::Relaxed);
            self.shared.eventfd.signal();
        }
    }

    /// Eventfd writes this waker's reactor has been sent (for tests and stats).
    pub fn signals(&self) -> u64 {
        self.shared.signals.load(Ordering::Relaxed)
    }
}

/// One reactor's wake sources. Registration is edge-triggered: a poller that
/// is told a token is ready must work on it until the source reports "no more"
/// (EAGAIN), or keep it on its own list of active sources.
pub struct WakeSet {
    epoll: Epoll,
    shared: Arc<WakeShared>,
    events: Vec<libc::epoll_event>,
    /// Tokens the kernel reported, not yet taken by the poller.
    ready: Vec<u64>,
}

impl core::fmt::Debug for WakeSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WakeSet").field("ready", &self.ready.len()).finish_non_exhaustive()
    }
}

impl WakeSet {
    /// An epoll set holding only the reactor's eventfd.
    pub fn new() -> io::Result<Self> {
        let epoll = Epoll::new()?;
        let eventfd = EventFd::new()?;
        epoll.add(eventfd.raw(), libc::EPOLLIN as u32 | libc::EPOLLET as u32, EVENTFD_TOKEN)?;
        let shared = Arc::new(WakeShared { sleeping: AtomicBool::new(false), eventfd, signals: AtomicU64::new(0) });
        Ok(WakeSet {
            epoll,
            shared,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT],
            ready: Vec::with_capacity(EVENTS_PER_WAIT),
        })
    }

    /// A waker for this reactor, to hand to whoever feeds it from another thread.
    pub fn waker(&self) -> Waker {
        Waker { shared: self.shared.clone() }
    }

    /// Watches `fd` (readable, writable again, hung up) under `token`, edge-triggered.
    /// Closing the fd removes it; [`WakeSet::deregister`] does so earlier.
    pub fn register(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        self.epoll.add(fd, events, token)
    }

    /// Stops watching `fd`.
    pub fn deregister(&self, fd: RawFd) -> io::Result<()> {
        self.epoll.delete(fd)
    }

    /// Collects what became ready without waiting (one `epoll_wait` with a zero timeout).
    pub fn collect_ready(&mut self) {
        self.wait(Some(0));
    }

    /// Tokens reported ready since the last call, oldest first. A token may
    /// appear more than once, or after its source was closed: treat it as a hint.
    pub fn take_ready(&mut self) -> std::vec::Drain<'_, u64> {
        self.ready.drain(..)
    }

    /// Forgets the tokens reported so far (for a poller that polls all its
    /// sources every turn and uses the set only to sleep).
    pub fn clear_ready(&mut self) {
        self.ready.clear();
    }

    /// Waits up to `timeout_ns` (None: until an event) and records what is ready.
    /// Returns the number of events, the eventfd's included.
    fn wait(&mut self, timeout_ns: Option<u64>) -> usize {
        // Take no more events than `ready` has room for: an edge-triggered
        // event taken from the kernel and then dropped would be lost for good.
        let room = (self.ready.capacity() - self.ready.len()).min(self.events.len());
        if room == 0 {
            return 0;
        }
        let n = match self.epoll.wait(&mut self.events[..room], timeout_ns) {
            Ok(n) => n,
            // EBADF/EINVAL cannot happen on our own epoll fd; treat anything as "nothing ready".
            Err(_) => 0,
        };
        for ev in &self.events[..n] {
            let token = ev.u64;
            if token == EVENTFD_TOKEN {
                self.shared.eventfd.drain();
            } else {
                self.ready.push(token);
            }
        }
        n
    }

    /// Step 1 of going to sleep: from now on, wakers write the eventfd.
    pub(crate) fn announce_sleep(&self) {
        self.shared.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Step 3: blocks until an event or `timeout_ns`, then stops the wakers writing.
    pub(crate) fn sleep(&mut self, timeout_ns: Option<u64>) -> usize {
        // Tokens the poller has not taken yet are work: look, but do not block.
        let timeout_ns = if self.ready.is_empty() { timeout_ns } else { Some(0) };
        let n = self.wait(timeout_ns);
        self.cancel_sleep();
        n
    }

    /// The reactor will not sleep after all (its recheck found work).
    pub(crate) fn cancel_sleep(&self) {
        self.shared.sleeping.store(false, Ordering::Relaxed);
    }
}
