//! Per-IO path choice and retry on the submitting core.
//!
//! A job owns one [`MpChannel`] per bdev; all of its IO to the bdev goes
//! through it. The channel keeps each IO (its buffer included) until the IO
//! succeeds or fails for a reason another path cannot fix, so a path failure
//! never reaches the application: the IO is resubmitted on another path at
//! once, or held on this core until a path can take it.
//!
//! Slots, the held queue and the path copy are sized at creation: submit,
//! complete and retry allocate nothing and take no lock.

use std::collections::VecDeque;
use std::sync::Arc;

use engine::host::ctrlr::{CtrlrShared, CtrlrState, PathFault};
use engine::host::MAX_CONTROLLERS;
use engine::transport::HostQpair;
use engine::{IoBuf, IoCompletion, IoContext, IoOp, SubmitErrorKind};
use protocol::status::path;
use protocol::Status;

use crate::bdev::{MpBdev, PathRef, MAX_PATHS};
use crate::policy::{choose, tier, PathCandidate, Policy, RoundRobin};
use crate::retry::{classify, Disposition};

/// Why a submission was refused; the buffer comes back.
#[derive(Debug)]
pub struct MpSubmitError {
    /// What was wrong.
    pub reason: SubmitErrorKind,
    /// The buffer, untouched.
    pub buf: Option<IoBuf>,
}

/// Counters of one channel.
#[derive(Debug, Clone)]
pub struct ChannelStats {
    /// IOs sent through each controller, by engine controller index (retries included).
    pub ios_per_ctrlr: [u64; MAX_CONTROLLERS],
    /// Resubmissions after a path failure.
    pub retries: u64,
    /// IOs failed back to the application by fast-IO-fail or loss of every path.
    pub failed_no_path: u64,
    /// Most IOs held at once waiting for a path.
    pub held_max: usize,
}

impl Default for ChannelStats {
    fn default() -> Self {
        ChannelStats { ios_per_ctrlr: [0; MAX_CONTROLLERS], retries: 0, failed_no_path: 0, held_max: 0 }
    }
}

/// Where an IO stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    /// On a path's queue pair.
    InFlight,
    /// Waiting in the held queue for a path (and for its write barrier).
    Held,
}

struct Slot {
    state: SlotState,
    tag: u64,
    op: IoOp,
    lba: u64,
    num_blocks: u32,
    buf: Option<IoBuf>,
    /// When the application submitted it.
    submit_ns: u64,
    /// Engine index of the controller it is (or was last) sent to.
    ctrlr: u16,
    generation: u32,
    /// A write that was on an association we gave up: it may not go anywhere
    /// before that association is dead (the stale-write rule).
    barrier: Option<(Arc<CtrlrShared>, u32)>,
}

impl Slot {
    fn empty() -> Self {
        Slot {
            state: SlotState::Free,
            tag: 0,
            op: IoOp::Read,
            lba: 0,
            num_blocks: 0,
            buf: None,
            submit_ns: 0,
            ctrlr: 0,
            generation: 0,
            barrier: None,
        }
    }
}

/// Whether an operation changes data (and so obeys the stale-write rule).
fn modifies_data(op: IoOp) -> bool {
    matches!(op, IoOp::Write | IoOp::WriteZeroes | IoOp::Deallocate)
}

/// A job's multipath IO channel to one bdev, on one core.
pub struct MpChannel {
    bdev: Arc<MpBdev>,
    version: u64,
    paths: Vec<PathRef>,
    candidates: [PathCandidate; MAX_PATHS],
    rr: RoundRobin,
    slots: Vec<Slot>,
    free: Vec<u32>,
    held: VecDeque<u32>,
    failed: VecDeque<IoCompletion>,
    no_path_since_ns: Option<u64>,
    stats: ChannelStats,
}

const IDLE_CANDIDATE: PathCandidate = PathCandidate { usable: false, ana: None, outstanding: 0, preferred: false };

impl MpChannel {
    /// A channel with room for `capacity` IOs in flight or held.
    pub fn new(bdev: Arc<MpBdev>, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let mut paths = Vec::with_capacity(MAX_PATHS);
        let version = bdev.copy_paths(&mut paths);
        MpChannel {
            bdev,
            version,
            paths,
            candidates: [IDLE_CANDIDATE; MAX_PATHS],
            rr: RoundRobin::default(),
            slots: (0..capacity).map(|_| Slot::empty()).collect(),
            free: (0..capacity as u32).rev().collect(),
            held: VecDeque::with_capacity(capacity),
            failed: VecDeque::with_capacity(capacity),
            no_path_since_ns: None,
            stats: ChannelStats::default(),
        }
    }

    /// The bdev.
    pub fn bdev(&self) -> &Arc<MpBdev> {
        &self.bdev
    }

    /// IOs accepted and not yet handed back.
    pub fn outstanding(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// IOs waiting for a path.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether the channel has work of its own for the next [`MpChannel::poll`]
    /// (held IOs to place, failed ones to hand back): its reactor must not
    /// sleep. Held IOs wait for a path, a write barrier or fast-IO-fail, all
    /// of them times or other cores' changes: polled, not evented.
    pub fn needs_poll(&self) -> bool {
        !self.held.is_empty() || !self.failed.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> &ChannelStats {
        &self.stats
    }

    /// Accepts an IO: it goes to a path now, or waits on this core for one.
    /// Refused only when the channel is full or the request is malformed.
    pub fn submit<Q: HostQpair>(
        &mut self,
        io: &mut IoContext<'_, Q>,
        op: IoOp,
        lba: u64,
        num_blocks: u32,
        buf: Option<IoBuf>,
        tag: u64,
    ) -> Result<(), MpSubmitError> {
        let needs_data = matches!(op, IoOp::Read | IoOp::Write);
        let data_len = u64::from(num_blocks) * u64::from(self.bdev.block_size);
        if needs_data && buf.as_ref().is_none_or(|b| (b.len() as u64) < data_len) {
            return Err(MpSubmitError { reason: SubmitErrorKind::BadBuffer, buf });
        }
        if num_blocks == 0 && op != IoOp::Flush {
            return Err(MpSubmitError { reason: SubmitErrorKind::BadLength, buf });
        }
        let Some(index) = self.free.pop() else {
            return Err(MpSubmitError { reason: SubmitErrorKind::QueueFull, buf });
        };
        let slot = &mut self.slots[index as usize];
        *slot =
            Slot { state: SlotState::InFlight, tag, op, lba, num_blocks, buf, submit_ns: io.now_ns(), ..Slot::empty() };
        self.refresh_paths();
        self.dispatch(io, index);
        Ok(())
    }

    /// Takes a completion of an IO this channel sent. Returns the IO's final
    /// completion (with the application's tag) when it is done, `None` when it
    /// was resubmitted or held.
    pub fn on_complete<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>, done: IoCompletion) -> Option<IoCompletion> {
        let index = u32::try_from(done.tag).ok().filter(|&i| (i as usize) < self.slots.len())?;
        let slot = &mut self.slots[index as usize];
        if slot.state != SlotState::InFlight {
            return None;
        }
        slot.buf = done.buf;
        match classify(done.status, done.fault) {
            Disposition::Done | Disposition::Fail => Some(self.finish(index, done.status)),
            Disposition::RetryPath { ana, fault } => {
                let now_ns = io.now_ns();
                let ctrlr = slot.ctrlr;
                if fault == Some(PathFault::Abandoned) && modifies_data(slot.op) {
                    if let Some(p) = self.paths.iter().find(|p| p.ns.ctrlr == ctrlr) {
                        slot.barrier = Some((p.shared.clone(), slot.generation));
                    }
                }
                if let Some(state) = ana {
                    if let Some(p) = self.paths.iter().find(|p| p.ns.ctrlr == ctrlr) {
                        p.shared.set_ana_state(self.bdev.nsid, state, now_ns);
                        p.shared.request_ana_refresh();
                    }
                }
                self.stats.retries += 1;
                self.refresh_paths();
                self.dispatch(io, index);
                None
            }
        }
    }

    /// Resubmits held IOs that can go now and fails those that waited too
    /// long without any path; call once per loop turn. Returns work done.
    pub fn poll<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>) -> usize {
        self.refresh_paths();
        let now_ns = io.now_ns();
        let any_path = self.fill_candidates(io);
        match (any_path, self.no_path_since_ns) {
            (true, _) => self.no_path_since_ns = None,
            (false, None) => self.no_path_since_ns = Some(now_ns),
            (false, Some(_)) => {}
        }
        if self.held.is_empty() {
            return 0;
        }
        if self.must_fail_held(now_ns) {
            let mut n = 0;
            while let Some(index) = self.held.pop_front() {
                let c = self.finish(index, Status::path(path::HOST_PATHING_ERROR));
                self.stats.failed_no_path += 1;
                self.failed.push_back(c);
                n += 1;
            }
            return n;
        }
        if !any_path {
            return 0;
        }
        let mut work = 0;
        for _ in 0..self.held.len() {
            let Some(index) = self.held.pop_front() else { break };
            self.slots[index as usize].state = SlotState::InFlight;
            self.dispatch(io, index);
            if self.slots[index as usize].state == SlotState::InFlight {
                work += 1;
            }
        }
        work
    }

    /// An IO the channel failed by itself (no path for too long), for the job to complete.
    pub fn take_failed(&mut self) -> Option<IoCompletion> {
        self.failed.pop_front()
    }

    /// Held IOs fail when fast-IO-fail ran out with no path, or when every path is gone for good.
    fn must_fail_held(&self, now_ns: u64) -> bool {
        if let (Some(ms), Some(since)) = (self.bdev.fast_io_fail_timeout_ms(), self.no_path_since_ns) {
            if now_ns.saturating_sub(since) >= ms * 1_000_000 {
                return true;
            }
        }
        self.paths.iter().all(|p| matches!(p.shared.state(), CtrlrState::Failed | CtrlrState::Deleting))
    }

    fn finish(&mut self, index: u32, status: Status) -> IoCompletion {
        let slot = &mut self.slots[index as usize];
        slot.state = SlotState::Free;
        slot.barrier = None;
        self.free.push(index);
        IoCompletion { tag: slot.tag, status, buf: slot.buf.take(), submit_ns: slot.submit_ns, fault: None }
    }

    fn refresh_paths(&mut self) {
        if self.bdev.version() != self.version {
            self.version = self.bdev.copy_paths(&mut self.paths);
        }
    }

    /// What this core sees of each path; true when any can take IO.
    fn fill_candidates<Q: HostQpair>(&mut self, io: &IoContext<'_, Q>) -> bool {
        let preferred = self.bdev.preferred_ctrlr();
        let nsid = self.bdev.nsid;
        let mut any = false;
        for (c, p) in self.candidates.iter_mut().zip(self.paths.iter()) {
            let usable = p.shared.state() == CtrlrState::Enabled && io.path_ready(p.ns.ctrlr);
            *c = PathCandidate {
                usable,
                ana: p.shared.ana_state(nsid),
                outstanding: io.outstanding(&p.ns),
                preferred: preferred == Some(p.ns.ctrlr),
            };
            any |= tier(c).is_some();
        }
        any
    }

    /// Sends IO `index` down a path, or holds it.
    fn dispatch<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>, index: u32) {
        let now_ns = io.now_ns();
        let slot = &mut self.slots[index as usize];
        if let Some((shared, generation)) = &slot.barrier {
            if shared.writes_dead_at_ns(*generation).is_none_or(|t| now_ns < t) {
                self.hold(index);
                return;
            }
            slot.barrier = None;
        }
        let Some(choice) = self.pick(io) else {
            self.hold(index);
            return;
        };
        let p = &self.paths[choice];
        let slot = &mut self.slots[index as usize];
        let buf = slot.buf.take();
        match io.submit(&p.ns, slot.op, slot.lba, slot.num_blocks, buf, u64::from(index)) {
            Ok(()) => {
                slot.ctrlr = p.ns.ctrlr;
                slot.generation = io.path_generation(p.ns.ctrlr);
                slot.state = SlotState::InFlight;
                if let Some(count) = self.stats.ios_per_ctrlr.get_mut(usize::from(p.ns.ctrlr)) {
                    *count += 1;
                }
            }
            Err(e) => {
                slot.buf = e.buf;
                match e.reason {
                    SubmitErrorKind::QueueFull | SubmitErrorKind::NotConnected | SubmitErrorKind::UnknownNamespace => {
                        self.hold(index)
                    }
                    SubmitErrorKind::BadBuffer | SubmitErrorKind::BadLength => {
                        let c =
                            self.finish(index, Status::generic(protocol::status::generic::INVALID_FIELD).with_dnr());
                        self.failed.push_back(c);
                    }
                }
            }
        }
    }

    /// The path for the next IO. active_passive without a preferred path
    /// takes the first optimized usable path in attach order and looks no
    /// further (the common case, once per IO); the rest goes through `choose`.
    #[inline]
    fn pick<Q: HostQpair>(&mut self, io: &IoContext<'_, Q>) -> Option<usize> {
        let n = self.paths.len().min(MAX_PATHS);
        let bdev = &self.bdev;
        if bdev.policy() == Policy::ActivePassive && bdev.preferred_ctrlr().is_none() {
            let mut fallback: Option<(u8, usize)> = None;
            for (i, p) in self.paths[..n].iter().enumerate() {
                if p.shared.state() != CtrlrState::Enabled || !io.path_ready(p.ns.ctrlr) {
                    continue;
                }
                let c = PathCandidate {
                    usable: true,
                    ana: p.shared.ana_state(bdev.nsid),
                    outstanding: 0,
                    preferred: false,
                };
                match tier(&c) {
                    Some(0) => return Some(i),
                    Some(t) if fallback.is_none_or(|(best, _)| t < best) => fallback = Some((t, i)),
                    _ => {}
                }
            }
            return fallback.map(|(_, i)| i);
        }
        self.fill_candidates(io);
        let bdev = &self.bdev;
        choose(bdev.policy(), bdev.selector(), bdev.rr_min_io(), &self.candidates[..n], &mut self.rr)
    }

    fn hold(&mut self, index: u32) {
        self.slots[index as usize].state = SlotState::Held;
        self.held.push_back(index);
        self.stats.held_max = self.stats.held_max.max(self.held.len());
    }
}
