//! Submitting IO from a thread that is not a reactor: a submission ring in, a
//! completion ring out, served on the reactor by [`RingJob`].

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_queue::ArrayQueue;
use protocol::status::generic;
use protocol::Status;

use crate::buf::IoBuf;
use crate::host::{CoreJob, IoCompletion, IoContext, IoOp, JobStatus, Namespace, SubmitErrorKind};
use crate::transport::HostQpair;
use crate::wake::Waker;

/// One IO sent through the ring.
#[derive(Debug)]
pub struct RingIo {
    /// Target namespace.
    pub ns: Namespace,
    /// Operation.
    pub op: IoOp,
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks.
    pub num_blocks: u32,
    /// Data buffer for Read and Write.
    pub buf: Option<IoBuf>,
    /// Returned in the completion.
    pub tag: u64,
}

/// The application's end of the rings.
#[derive(Clone)]
pub struct IoChannel {
    sq: Arc<ArrayQueue<RingIo>>,
    cq: Arc<ArrayQueue<IoCompletion>>,
    closed: Arc<AtomicBool>,
    /// The serving reactor's waker, known once the job first ran there.
    waker: Arc<OnceLock<Waker>>,
}

impl IoChannel {
    /// Makes both rings with room for `depth` IOs, and the job that serves them on a reactor.
    pub fn new(depth: usize) -> (IoChannel, RingJob) {
        let sq = Arc::new(ArrayQueue::new(depth.max(1)));
        // The completion ring holds every IO that can be in flight, so the
        // reactor never finds it full.
        let cq = Arc::new(ArrayQueue::new(depth.max(1) * 2));
        let closed = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(OnceLock::new());
        let chan = IoChannel { sq: sq.clone(), cq: cq.clone(), closed: closed.clone(), waker: waker.clone() };
        (chan, RingJob { sq, cq, held: None, in_flight: 0, closed, waker })
    }

    /// Queues an IO (waking the reactor if it sleeps); gives it back when the ring is full.
    pub fn submit(&self, io: RingIo) -> Result<(), RingIo> {
        self.sq.push(io)?;
        self.wake();
        Ok(())
    }

    /// The push is visible before the waker is read: the job stores the waker
    /// before it first looks at the ring, with a fence between, so either it
    /// sees the IO or we see its waker (which then writes the eventfd if the
    /// reactor announced sleep; see [`crate::wake`]).
    fn wake(&self) {
        fence(Ordering::SeqCst);
        if let Some(w) = self.waker.get() {
            w.wake();
        }
    }

    /// A finished IO, if any.
    pub fn poll_completion(&self) -> Option<IoCompletion> {
        self.cq.pop()
    }

    /// Waits (spinning, then yielding) for a finished IO, up to `timeout`.
    pub fn wait_completion(&self, timeout: std::time::Duration) -> Option<IoCompletion> {
        let start = std::time::Instant::now();
        loop {
            if let Some(c) = self.cq.pop() {
                return Some(c);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::yield_now();
        }
    }

    /// Tells the serving job to finish once its IO is done.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.wake();
    }
}

/// Serves an [`IoChannel`] on a reactor.
pub struct RingJob {
    sq: Arc<ArrayQueue<RingIo>>,
    cq: Arc<ArrayQueue<IoCompletion>>,
    /// An IO the queue pair had no room for, retried next turn.
    held: Option<RingIo>,
    in_flight: usize,
    closed: Arc<AtomicBool>,
    waker: Arc<OnceLock<Waker>>,
}

impl RingJob {
    fn finish_now(&mut self, io: RingIo, status: Status, now_ns: u64) {
        let _ = self.cq.push(IoCompletion { tag: io.tag, status, buf: io.buf, submit_ns: now_ns, fault: None });
    }
}

impl<Q: HostQpair> CoreJob<Q> for RingJob {
    fn poll(&mut self, ctx: &mut IoContext<'_, Q>) -> JobStatus {
        if self.waker.get().is_none() {
            if let Some(w) = ctx.waker() {
                let _ = self.waker.set(w.clone());
                // Pairs with the fence in IoChannel::wake.
                fence(Ordering::SeqCst);
            }
        }
        loop {
            let Some(mut io) = self.held.take().or_else(|| self.sq.pop()) else { break };
            let buf = io.buf.take();
            match ctx.submit(&io.ns, io.op, io.lba, io.num_blocks, buf, io.tag) {
                Ok(()) => self.in_flight += 1,
                Err(e) => {
                    io.buf = e.buf;
                    match e.reason {
                        SubmitErrorKind::QueueFull => {
                            self.held = Some(io);
                            break;
                        }
                        SubmitErrorKind::NotConnected | SubmitErrorKind::UnknownNamespace => {
                            let s = Status::path(protocol::status::path::HOST_PATHING_ERROR);
                            self.finish_now(io, s, ctx.now_ns());
                        }
                        SubmitErrorKind::BadBuffer | SubmitErrorKind::BadLength => {
                            let s = Status::generic(generic::INVALID_FIELD).with_dnr();
                            self.finish_now(io, s, ctx.now_ns());
                        }
                    }
                }
            }
        }
        if self.closed.load(Ordering::Relaxed) && self.in_flight == 0 && self.held.is_none() {
            JobStatus::Finished
        } else {
            JobStatus::Running
        }
    }

    fn on_complete(&mut self, _ctx: &mut IoContext<'_, Q>, done: IoCompletion) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let _ = self.cq.push(done);
    }

    /// A held IO waits for a slot, which only a completion frees; new IO and
    /// `close` wake the reactor.
    fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        let closing = self.closed.load(Ordering::Relaxed) && self.in_flight == 0 && self.held.is_none();
        (!self.sq.is_empty() || closing).then_some(now_ns)
    }
}
