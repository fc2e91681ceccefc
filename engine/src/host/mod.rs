//! The NVMe-oF host on one core: each attached controller's IO queue pair
//! (and, on the first core, its admin queue), the jobs that submit IO, and the
//! routing of completions back to them.
//!
//! The hot path, top to bottom: a job calls [`IoContext::submit`] → the
//! controller's [`io_qpair::IoQpair`] on this core takes a slot and hands the
//! capsule to the transport → once per loop turn every queue pair is flushed
//! (one `writev` for many capsules) → [`HostCore::poll`] polls every queue
//! pair, and each completion goes to the job that submitted it.

pub(crate) mod admin;
pub(crate) mod connect_data;
pub mod ctrlr;
pub(crate) mod identify;
pub(crate) mod io_qpair;
pub mod options;
pub(crate) mod registration;

use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::buf::IoBuf;
use crate::reactor::{Poller, ReactorCtx};
use crate::transport::{HostQpair, HostTransport, QpairOptions};
use crate::trid::TransportId;
use crate::wake::WakeSet;
use crate::wake::Waker;
use admin::{AdminQueue, AdminState};
pub use connect_data::HostIdentity;
use ctrlr::{AbortRequest, CtrlrShared, CtrlrState, PathEventKind, PathFault, Supervisor};
pub use identify::{ControllerData, NamespaceData};
use io_qpair::{ConnectParams, IoQpair, QpairState};
pub use io_qpair::{IoCompletion, IoOp, SubmitError, SubmitErrorKind};
use options::{ControllerOptions, TimeoutAction};

/// Controllers one engine can have attached at once.
pub const MAX_CONTROLLERS: usize = 64;

/// A namespace of an attached controller, as jobs address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The engine's index of the controller.
    pub ctrlr: u16,
    /// Namespace ID.
    pub nsid: u32,
    /// Logical block size in bytes.
    pub block_size: u32,
    /// Size in logical blocks.
    pub num_blocks: u64,
    /// Largest transfer of one command in bytes.
    pub max_transfer_bytes: u32,
}

/// Whether a job wants to keep running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Poll again.
    Running,
    /// Remove the job (once it has no IO outstanding).
    Finished,
}

/// Work that runs on one core and submits IO: a benchmark job, the cross-thread
/// ring server, an application's own poller.
pub trait CoreJob<Q: HostQpair>: Send {
    /// Called every loop turn; submit IO through `io`.
    fn poll(&mut self, io: &mut IoContext<'_, Q>) -> JobStatus;
    /// Called for each completion of an IO this job submitted.
    fn on_complete(&mut self, io: &mut IoContext<'_, Q>, done: IoCompletion);

    /// When this job next needs a [`CoreJob::poll`] although none of its IO
    /// completed: `None` when only completions (or a wake-up of the reactor by
    /// whoever feeds the job, see [`IoContext::waker`]) bring it work. The
    /// default, now, keeps the reactor spinning while the job exists: right
    /// for a job that submits all the time, wasteful for one that waits.
    fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        Some(now_ns)
    }
}

/// A job's view of the core's queue pairs while it runs.
pub struct IoContext<'a, Q: HostQpair> {
    ctrlrs: &'a mut [Option<CoreCtrlr<Q>>],
    job: u16,
    now_ns: u64,
    core: usize,
    waker: Option<&'a Waker>,
}

impl<Q: HostQpair> IoContext<'_, Q> {
    /// Submits an IO on this core's queue pair to the namespace's controller.
    /// Read and Write need a buffer of at least `num_blocks` blocks; the buffer
    /// comes back in the completion (or in the error).
    pub fn submit(
        &mut self,
        ns: &Namespace,
        op: IoOp,
        lba: u64,
        num_blocks: u32,
        buf: Option<IoBuf>,
        tag: u64,
    ) -> Result<(), SubmitError> {
        let Some(Some(ctrlr)) = self.ctrlrs.get_mut(usize::from(ns.ctrlr)) else {
            return Err(SubmitError { reason: SubmitErrorKind::UnknownNamespace, buf });
        };
        let Some(qpair) = ctrlr.io.as_mut() else {
            return Err(SubmitError { reason: SubmitErrorKind::NotConnected, buf });
        };
        qpair.submit(op, ns.nsid, lba, num_blocks, ns.block_size, buf, tag, self.job, self.now_ns)
    }

    /// Time of this loop turn, in ns on the engine's clock.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The CPU core this runs on.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Wakes this core's reactor from another thread: a job fed through a
    /// ring calls [`Waker::wake`] after each push (`None` outside a reactor).
    pub fn waker(&self) -> Option<&Waker> {
        self.waker
    }

    /// IOs outstanding on this core to the namespace's controller.
    pub fn outstanding(&self, ns: &Namespace) -> usize {
        match self.ctrlrs.get(usize::from(ns.ctrlr)) {
            Some(Some(CoreCtrlr { io: Some(q), .. })) => q.outstanding(),
            _ => 0,
        }
    }

    /// Whether this core's IO queue pair to controller `ctrlr` takes IO now.
    #[inline]
    pub fn path_ready(&self, ctrlr: u16) -> bool {
        matches!(self.ctrlrs.get(usize::from(ctrlr)), Some(Some(CoreCtrlr { io: Some(q), .. })) if q.state() == QpairState::Ready)
    }

    /// The association generation this core's queue pair to `ctrlr` belongs to.
    #[inline]
    pub fn path_generation(&self, ctrlr: u16) -> u32 {
        match self.ctrlrs.get(usize::from(ctrlr)) {
            Some(Some(CoreCtrlr { follow: Some(f), .. })) => f.generation,
            _ => 0,
        }
    }

    /// Free command slots on this core to the namespace's controller.
    pub fn free_slots(&self, ns: &Namespace) -> usize {
        match self.ctrlrs.get(usize::from(ns.ctrlr)) {
            Some(Some(CoreCtrlr { io: Some(q), .. })) if q.state() == QpairState::Ready => q.depth() - q.outstanding(),
            _ => 0,
        }
    }
}

/// One controller's queues on one core.
pub(crate) struct CoreCtrlr<Q: HostQpair> {
    pub(crate) admin: Option<AdminQueue<Q>>,
    pub(crate) admin_reply: Option<Sender<Result<ControllerData, String>>>,
    pub(crate) io: Option<IoQpair<Q>>,
    pub(crate) io_reply: Option<Sender<Result<(), String>>>,
    /// Reset and reconnect, on the controller's admin core.
    pub(crate) supervisor: Option<Supervisor<Q>>,
    /// This core follows the controller's shared state with its IO queue pair.
    pub(crate) follow: Option<Follow>,
}

/// How one core keeps its IO queue pair in step with the controller.
pub(crate) struct Follow {
    shared: Arc<CtrlrShared>,
    trid: TransportId,
    opts: ControllerOptions,
    host: HostIdentity,
    /// Generation of the association this core's queue pair belongs to.
    generation: u32,
    reported_up: bool,
    next_timeout_scan_ns: u64,
    /// The command this core last found timed out, and what became of it.
    timed_out: Option<TimedOut>,
    /// Numbers this core's Abort requests.
    abort_seq: u32,
}

/// A command that outlived the IO timeout on this core.
#[derive(Debug, Clone, Copy)]
struct TimedOut {
    cid: u16,
    /// Its submission time: tells it apart from a later command with the same ID.
    submit_ns: u64,
    /// The Abort request for it, if one was made.
    abort_seq: Option<u32>,
    /// Reset when it is still outstanding then (the Abort went unanswered).
    give_up_at_ns: u64,
}

/// What the timeout scan asks of the core.
enum TimeoutVerdict {
    Nothing,
    Reset,
}
/// How often a core looks for IO that outlived the command timeout.
const TIMEOUT_SCAN_INTERVAL_NS: u64 = 10_000_000;

impl Follow {
    /// The command-timeout rule for this core's IO queue pair: the oldest IO
    /// past `io_timeout_ms` is reported once and, by `action_on_timeout`,
    /// left alone, or the controller is reset, or an Abort is asked for; a
    /// refused Abort of a command still outstanding, or no answer within the
    /// admin timeout (plus one IO timeout of slack), resets.
    fn scan_timeouts<Q: HostQpair>(&mut self, io: &IoQpair<Q>, reactor: usize, now_ns: u64) -> TimeoutVerdict {
        let timeout_ns = self.opts.io_timeout_ms * 1_000_000;
        if let Some(t) = self.timed_out {
            if io.in_flight_since_ns(t.cid) == Some(t.submit_ns) {
                let refused = t.abort_seq.is_some_and(|seq| self.shared.abort_refused(reactor, seq, t.cid));
                if refused || (t.abort_seq.is_some() && now_ns >= t.give_up_at_ns) {
                    return TimeoutVerdict::Reset;
                }
                return TimeoutVerdict::Nothing;
            }
            // It completed (or was aborted and completed): look at the next one.
            self.timed_out = None;
        }
        let Some((cid, submit_ns)) = io.oldest_in_flight() else { return TimeoutVerdict::Nothing };
        if now_ns.saturating_sub(submit_ns) <= timeout_ns {
            return TimeoutVerdict::Nothing;
        }
        self.shared.push_event(now_ns, PathEventKind::CommandTimedOut { qid: io.qid(), cid });
        let admin_timeout_ns =
            if self.opts.admin_timeout_ms > 0 { self.opts.admin_timeout_ms * 1_000_000 } else { timeout_ns };
        let mut t = TimedOut { cid, submit_ns, abort_seq: None, give_up_at_ns: now_ns + admin_timeout_ns + timeout_ns };
        match self.opts.action_on_timeout {
            TimeoutAction::None => {}
            TimeoutAction::Reset => return TimeoutVerdict::Reset,
            TimeoutAction::Abort => {
                self.abort_seq = self.abort_seq.wrapping_add(1).max(1);
                let req = AbortRequest { qid: io.qid(), cid, generation: self.generation, seq: self.abort_seq };
                // A full queue: no Abort goes out, and the wait below runs out into a reset.
                let _ = self.shared.request_abort(req);
                t.abort_seq = Some(self.abort_seq);
            }
        }
        self.timed_out = Some(t);
        TimeoutVerdict::Nothing
    }
}

impl Follow {
    /// When this core next needs to look at the controller's shared state
    /// although nothing woke it: now when the state moved on, the next
    /// timeout scan while IO is outstanding. State changes wake every
    /// reactor ([`CtrlrShared`] holds their wakers).
    fn next_deadline_ns<Q: HostQpair>(&self, io: Option<&IoQpair<Q>>, now_ns: u64) -> Option<u64> {
        let (state, _, generation) = self.shared.snapshot();
        let current = state == CtrlrState::Enabled && self.generation == generation;
        match io {
            Some(io) => {
                if !current
                    || io.state() == QpairState::Failed
                    || (!self.reported_up && io.state() == QpairState::Ready)
                {
                    Some(now_ns)
                } else if self.opts.io_timeout_ms > 0 && io.outstanding() > 0 {
                    Some(self.next_timeout_scan_ns.max(now_ns))
                } else {
                    None
                }
            }
            None => (state == CtrlrState::Enabled && self.generation != generation).then_some(now_ns),
        }
    }
}

impl<Q: HostQpair> CoreCtrlr<Q> {
    pub(crate) fn empty() -> Self {
        CoreCtrlr { admin: None, admin_reply: None, io: None, io_reply: None, supervisor: None, follow: None }
    }

    /// Keeps this core's IO queue pair in step with the controller's shared
    /// state: drops it when its association is over or it died (its IOs fail
    /// back with the reason), connects a new one for a new association.
    fn follow_shared<T: HostTransport<Qpair = Q>>(
        &mut self,
        transport: &mut T,
        reactor: usize,
        now_ns: u64,
        done: &mut Vec<(u16, IoCompletion)>,
    ) -> usize {
        let Some(f) = self.follow.as_mut() else { return 0 };
        let (state, cntlid, generation) = f.shared.snapshot();
        let current = state == CtrlrState::Enabled && f.generation == generation;
        if let Some(io) = self.io.as_mut() {
            let dead = io.state() == QpairState::Failed;
            if !current || dead {
                if !dead {
                    io.fail_all(PathFault::Abandoned);
                } else if current {
                    // Our queue pair died under a live association: reset the controller (SPDK does the same).
                    f.shared.request_reset();
                }
                io.drain_done(done);
                self.io = None;
                f.reported_up = false;
                f.timed_out = None;
                f.shared.set_core_connected(reactor, false);
                return 1;
            }
            if f.opts.io_timeout_ms > 0 && now_ns >= f.next_timeout_scan_ns {
                f.next_timeout_scan_ns = now_ns + TIMEOUT_SCAN_INTERVAL_NS;
                if let TimeoutVerdict::Reset = f.scan_timeouts(io, reactor, now_ns) {
                    io.fail_all(PathFault::Abandoned);
                    f.shared.request_reset();
                    f.timed_out = None;
                    return 1;
                }
            }
            if !f.reported_up && io.state() == QpairState::Ready {
                f.reported_up = true;
                f.shared.set_core_connected(reactor, true);
            }
            return 0;
        }
        if state != CtrlrState::Enabled || f.generation == generation {
            return 0;
        }
        f.generation = generation;
        let (mqes, in_capsule_data_bytes) = f.shared.io_params();
        let data = ControllerData { cntlid, mqes, in_capsule_data_bytes, ..ControllerData::default() };
        let req = AttachRequest { index: 0, trid: &f.trid, opts: &f.opts, host: &f.host };
        match connect_io(transport, &req, reactor as u16 + 1, &data, now_ns) {
            Ok(q) => self.io = Some(q),
            Err(_) => f.shared.request_reset(),
        }
        1
    }

    /// Puts every socket of this controller on this core in the reactor's epoll set.
    fn register_wake(&mut self, set: &WakeSet) {
        if let Some(sup) = self.supervisor.as_mut() {
            sup.register_wake(set);
        }
        if let Some(admin) = self.admin.as_mut() {
            admin.register_wake(set);
        }
        if let Some(io) = self.io.as_mut() {
            io.register_wake(set);
        }
    }

    /// The earliest deadline of this controller's queues on this core.
    fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        if (self.admin_reply.is_some() && self.admin_outcome().is_some())
            || (self.io_reply.is_some() && self.io_outcome().is_some())
        {
            return Some(now_ns);
        }
        let supervisor = self.supervisor.as_ref().and_then(|s| s.next_deadline_ns(now_ns));
        let follow = self.follow.as_ref().and_then(|f| f.next_deadline_ns(self.io.as_ref(), now_ns));
        let admin = self.admin.as_ref().and_then(|a| a.next_deadline_ns(now_ns));
        let io = self.io.as_ref().and_then(|q| q.next_deadline_ns(now_ns));
        [supervisor, follow, admin, io].into_iter().flatten().min()
    }

    /// The admin queue's bring-up result, once there is one.
    fn admin_outcome(&self) -> Option<Result<ControllerData, String>> {
        let admin = self.admin.as_ref()?;
        match admin.state() {
            AdminState::Ready => Some(Ok(admin.controller().clone())),
            AdminState::Failed(why) => Some(Err(why.clone())),
            _ => None,
        }
    }

    /// The IO queue pair's connect result, once there is one.
    fn io_outcome(&self) -> Option<Result<(), String>> {
        match self.io.as_ref()?.state() {
            QpairState::Ready => Some(Ok(())),
            QpairState::Failed => Some(Err("IO queue pair failed to connect".to_string())),
            _ => None,
        }
    }

    /// Reports bring-up results to whoever waits for them. A sender is taken
    /// only with an outcome in hand: until then it must stay.
    fn report_progress(&mut self) {
        if self.admin_reply.is_some() {
            if let (Some(outcome), Some(tx)) = (self.admin_outcome(), self.admin_reply.as_ref()) {
                let _ = tx.send(outcome);
                self.admin_reply = None;
            }
        }
        if self.io_reply.is_some() {
            if let (Some(outcome), Some(tx)) = (self.io_outcome(), self.io_reply.as_ref()) {
                let _ = tx.send(outcome);
                self.io_reply = None;
            }
        }
    }
}

/// What both attach steps need: which controller slot, where, how, as whom.
#[derive(Debug, Clone, Copy)]
pub struct AttachRequest<'a> {
    /// The engine's index for the controller.
    pub index: u16,
    /// Where the controller is.
    pub trid: &'a TransportId,
    /// Attach options.
    pub opts: &'a ControllerOptions,
    /// Who we are.
    pub host: &'a HostIdentity,
}

/// The host engine's poller on one core.
pub struct HostCore<T: HostTransport> {
    pub(crate) transport: T,
    pub(crate) ctrlrs: Vec<Option<CoreCtrlr<T::Qpair>>>,
    jobs: Vec<Option<Box<dyn CoreJob<T::Qpair>>>>,
    finished: Vec<bool>,
    done: Vec<(u16, IoCompletion)>,
    /// This core's reactor's waker, for jobs fed from other threads (set on the first turn).
    waker: Option<Waker>,
}

impl<T: HostTransport> HostCore<T> {
    /// A core with no controllers and no jobs.
    pub fn new(transport: T) -> Self {
        HostCore {
            transport,
            ctrlrs: (0..MAX_CONTROLLERS).map(|_| None).collect(),
            jobs: Vec::new(),
            finished: Vec::new(),
            done: Vec::with_capacity(1024),
            waker: None,
        }
    }

    /// Adds a job; it is polled from the next loop turn.
    pub fn add_job(&mut self, job: Box<dyn CoreJob<T::Qpair>>) {
        match self.jobs.iter().position(Option::is_none) {
            Some(i) => {
                self.jobs[i] = Some(job);
                self.finished[i] = false;
            }
            None => {
                self.jobs.push(Some(job));
                self.finished.push(false);
            }
        }
    }

    /// Jobs still present.
    pub fn job_count(&self) -> usize {
        self.jobs.iter().filter(|j| j.is_some()).count()
    }

    pub(crate) fn ctrlr_mut(&mut self, index: u16) -> Option<&mut CoreCtrlr<T::Qpair>> {
        let slot = self.ctrlrs.get_mut(usize::from(index))?;
        Some(slot.get_or_insert_with(CoreCtrlr::empty))
    }

    /// Attach, step 1 (on the controller's admin core): starts connecting the
    /// admin queue of controller `index`; drive it with [`Poller::poll`] and
    /// read [`HostCore::admin_outcome`].
    pub fn start_admin(&mut self, req: &AttachRequest<'_>, io_queues: u16, now_ns: u64) -> Result<(), String> {
        let AttachRequest { index, trid, opts, host } = *req;
        let qopts = QpairOptions {
            qid: 0,
            queue_depth: admin::ADMIN_QUEUE_DEPTH,
            header_digest: opts.header_digest,
            data_digest: opts.data_digest,
            connect_timeout_ns: opts.connect_timeout_ms * 1_000_000,
        };
        let q = self.transport.connect(trid, &qopts).map_err(|e| format!("connect: {e}"))?;
        let aopts = admin::AdminOptions::of(opts, io_queues);
        let admin = AdminQueue::new(q, aopts, &trid.subnqn, &host.hostnqn, host.hostid, now_ns)?;
        let c = self.ctrlr_mut(index).ok_or_else(|| format!("controller index {index} out of range"))?;
        c.admin = Some(admin);
        Ok(())
    }

    /// The admin queue's bring-up result for controller `index`, once known.
    pub fn admin_outcome(&self, index: u16) -> Option<Result<ControllerData, String>> {
        self.ctrlrs.get(usize::from(index))?.as_ref()?.admin_outcome()
    }

    /// Attach, step 2 (on every core): starts connecting this core's IO queue
    /// pair `qid` to the controller that step 1 brought up.
    pub fn start_io(
        &mut self,
        req: &AttachRequest<'_>,
        qid: u16,
        data: &ControllerData,
        now_ns: u64,
    ) -> Result<(), String> {
        let qpair = connect_io(&mut self.transport, req, qid, data, now_ns)?;
        let index = req.index;
        let c = self.ctrlr_mut(index).ok_or_else(|| format!("controller index {index} out of range"))?;
        c.io = Some(qpair);
        Ok(())
    }

    /// Attaches controller `index` with reset and reconnect: on the admin core
    /// (`supervise`), a supervisor brings it up and keeps it up; on every core,
    /// the IO queue pair follows the shared state. `reply` gets the first
    /// bring-up's result.
    #[allow(clippy::too_many_arguments)]
    pub fn attach_supervised(
        &mut self,
        req: &AttachRequest<'_>,
        shared: &Arc<CtrlrShared>,
        supervise: Option<(u16, Option<ctrlr::BringupReply>)>,
        now_ns: u64,
    ) -> Result<(), String> {
        let AttachRequest { index, trid, opts, host } = *req;
        let supervisor = match supervise {
            Some((io_queues, reply)) => Some(Supervisor::start(
                &mut self.transport,
                shared.clone(),
                trid,
                opts,
                host,
                io_queues,
                reply,
                now_ns,
            )?),
            None => None,
        };
        let c = self.ctrlr_mut(index).ok_or_else(|| format!("controller index {index} out of range"))?;
        c.supervisor = supervisor;
        c.follow = Some(Follow {
            shared: shared.clone(),
            trid: trid.clone(),
            opts: opts.clone(),
            host: host.clone(),
            generation: 0,
            reported_up: false,
            next_timeout_scan_ns: 0,
            timed_out: None,
            abort_seq: 0,
        });
        Ok(())
    }

    /// This core's IO queue pair connect result for controller `index`, once known.
    pub fn io_outcome(&self, index: u16) -> Option<Result<(), String>> {
        self.ctrlrs.get(usize::from(index))?.as_ref()?.io_outcome()
    }

    /// Drops a controller's queues on this core; IOs in flight complete with a
    /// path error first, so their jobs get their buffers back.
    pub(crate) fn remove_ctrlr(&mut self, index: u16) {
        if let Some(slot) = self.ctrlrs.get_mut(usize::from(index)) {
            if let Some(mut c) = slot.take() {
                if let Some(sup) = c.supervisor.as_mut() {
                    sup.shut_down();
                }
                if let Some(io) = c.io.as_mut() {
                    io.fail_all(PathFault::Abandoned);
                    io.drain_done(&mut self.done);
                }
            }
        }
    }
}

impl<T: HostTransport + 'static> Poller for HostCore<T> {
    fn poll(&mut self, ctx: &mut ReactorCtx) -> usize {
        let now_ns = ctx.now_ns;
        let mut work = 0;
        if self.waker.is_none() {
            self.waker = Some(ctx.waker());
        }
        // Every queue pair is polled below: the epoll set is only for sleeping.
        ctx.wake_set().clear_ready();
        for c in self.ctrlrs.iter_mut().flatten() {
            if let Some(sup) = c.supervisor.as_mut() {
                work += sup.poll(&mut self.transport, now_ns);
            }
            work += c.follow_shared(&mut self.transport, ctx.index, now_ns, &mut self.done);
            if let Some(admin) = c.admin.as_mut() {
                work += admin.poll(now_ns);
            }
            if let Some(io) = c.io.as_mut() {
                work += io.poll(now_ns);
                io.drain_done(&mut self.done);
            }
            c.report_progress();
            // After the polls: a queue pair made this turn is in the set before the reactor can sleep.
            c.register_wake(ctx.wake_set());
        }
        // Route completions, then let jobs submit more.
        let mut done = std::mem::take(&mut self.done);
        for (job, completion) in done.drain(..) {
            if let Some(Some(j)) = self.jobs.get_mut(usize::from(job)) {
                let mut io =
                    IoContext { ctrlrs: &mut self.ctrlrs, job, now_ns, core: ctx.core, waker: self.waker.as_ref() };
                j.on_complete(&mut io, completion);
            }
            work += 1;
        }
        self.done = done;
        for (index, slot) in self.jobs.iter_mut().enumerate() {
            if let Some(j) = slot {
                let mut io = IoContext {
                    ctrlrs: &mut self.ctrlrs,
                    job: index as u16,
                    now_ns,
                    core: ctx.core,
                    waker: self.waker.as_ref(),
                };
                if j.poll(&mut io) == JobStatus::Finished {
                    self.finished[index] = true;
                }
            }
        }
        for c in self.ctrlrs.iter_mut().flatten() {
            if let Some(io) = c.io.as_mut() {
                io.flush();
            }
        }
        // A finished job goes once nothing it submitted is still in flight.
        for (index, slot) in self.jobs.iter_mut().enumerate() {
            if self.finished[index] && slot.is_some() {
                let busy = self.ctrlrs.iter().flatten().any(|c| c.io.as_ref().is_some_and(|q| q.outstanding() > 0));
                if !busy {
                    *slot = None;
                    self.finished[index] = false;
                }
            }
        }
        work
    }

    fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        if !self.done.is_empty() {
            return Some(now_ns);
        }
        let ctrlrs = self.ctrlrs.iter().flatten().filter_map(|c| c.next_deadline_ns(now_ns));
        let jobs = self.jobs.iter().flatten().filter_map(|j| j.next_deadline_ns(now_ns));
        ctrlrs.chain(jobs).min()
    }
}

/// Starts connecting IO queue pair `qid` of the controller `data` describes.
fn connect_io<T: HostTransport>(
    transport: &mut T,
    req: &AttachRequest<'_>,
    qid: u16,
    data: &ControllerData,
    now_ns: u64,
) -> Result<IoQpair<T::Qpair>, String> {
    let AttachRequest { trid, opts, host, .. } = *req;
    // IO queue size: what we want, capped by the controller's MQES (0's based).
    let depth = opts.io_queue_depth.min(data.mqes.saturating_add(1)).max(2);
    let qopts = QpairOptions {
        qid,
        queue_depth: depth,
        header_digest: opts.header_digest,
        data_digest: opts.data_digest,
        connect_timeout_ns: opts.connect_timeout_ms * 1_000_000,
    };
    let q = transport.connect(trid, &qopts).map_err(|e| format!("connect IO queue {qid}: {e}"))?;
    let connect =
        ConnectParams { cntlid: data.cntlid, subnqn: &trid.subnqn, hostnqn: &host.hostnqn, hostid: host.hostid };
    let deadline_ns = now_ns + qopts.connect_timeout_ns;
    IoQpair::new(q, qid, depth, &connect, deadline_ns, data.in_capsule_data_bytes)
}
