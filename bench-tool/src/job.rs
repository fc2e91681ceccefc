//! One job: the per-core load generator the engine glue drives.
//!
//! The glue's loop per core is, in short:
//!
//! ```text
//! job.start(now_ns);
//! while !job.is_done() {
//!     while let Some(io) = job.next_io(now_ns) {          // which IO, in which slot
//!         if io.op == IoOp::Write { job.fill_write(&io, buf_of(io.slot)) }
//!         submit(io.slba, io.nlb, buf_of(io.slot), tag = io.slot)   // or job.cancel(io.slot)
//!     }
//!     poll(|tag, ok| job.complete(tag, status, buf_of(tag), now_ns)); // records latency, verifies
//!     job.tick(now_ns);                                   // phase changes without completions
//! }
//! // With --verify_final_pass, next_io keeps returning reads after the runtime
//! // (the final read-back) until every written unit was checked; same loop.
//! let stats = job.into_stats();
//! ```
//!
//! A job owns `iodepth` slots; the slot number is the IO's tag, and the glue
//! keeps one data buffer per slot. Everything is allocated in [`Job::new`].

use std::sync::Arc;

use crate::final_pass::{FinalPassCursor, FinalPassStats};
use crate::stats::{JobStats, LiveCounters, LiveSnapshot};
use crate::verify::{UnwrittenPolicy, Verifier, VerifyConfig, VerifyConfigError, VerifyError};
use crate::workload::{InflightTracker, IoOp, Region, RwPattern, Workload};

/// Where a job is in its life. Transitions happen in [`Job::start`],
/// [`Job::stop`] and the clock checks of [`Job::next_io`], [`Job::complete`]
/// and [`Job::tick`]:
/// `Created → Ramp → Running → Draining → [FinalPass →] Done` (Ramp skipped
/// without ramp time, FinalPass without `--verify_final_pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPhase {
    /// Not started.
    Created,
    /// Issuing IO, not measuring it (`--ramp_time`).
    Ramp,
    /// Issuing and measuring.
    Running,
    /// Runtime over: no new IO, waiting for outstanding IOs.
    Draining,
    /// Reading back every written unit to check it (`--verify_final_pass`), unmeasured.
    FinalPass,
    /// Nothing outstanding; statistics are final.
    Done,
}

impl JobPhase {
    /// Compact code for [`LiveSnapshot::phase`].
    pub fn as_u8(self) -> u8 {
        match self {
            JobPhase::Created => 0,
            JobPhase::Ramp => 1,
            JobPhase::Running => 2,
            JobPhase::Draining => 3,
            JobPhase::Done => 4,
            JobPhase::FinalPass => 5,
        }
    }

    /// Inverse of [`JobPhase::as_u8`]; unknown codes read as `Done`.
    pub fn from_u8(code: u8) -> JobPhase {
        match code {
            0 => JobPhase::Created,
            1 => JobPhase::Ramp,
            2 => JobPhase::Running,
            3 => JobPhase::Draining,
            5 => JobPhase::FinalPass,
            _ => JobPhase::Done,
        }
    }
}

/// Verification settings of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySpec {
    /// Written into every stamp; unique per job and run.
    pub stamp_tag: u64,
    /// What never-written blocks hold.
    pub unwritten: UnwrittenPolicy,
    /// Read back every written unit once the runtime is over (`--verify_final_pass`).
    pub final_pass: bool,
}

/// Everything one job needs, fixed before it starts. Made by
/// [`crate::plan::plan_jobs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Job number, 0-based, in core order.
    pub job_index: u32,
    /// CPU core the job runs on.
    pub core: u32,
    /// Access pattern.
    pub pattern: RwPattern,
    /// Share of reads for mixed patterns, percent.
    pub rwmixread_pct: u8,
    /// Bytes per IO (`bs`), a multiple of `block_size_bytes`.
    pub io_size_bytes: u32,
    /// The namespace's logical block size.
    pub block_size_bytes: u32,
    /// The byte range this job uses (block aligned).
    pub region: Region,
    /// IOs kept outstanding.
    pub iodepth: u16,
    /// Seed of this job's generator.
    pub seed: u64,
    /// Verify data, and how.
    pub verify: Option<VerifySpec>,
    /// Time before measuring starts.
    pub ramp_ns: u64,
    /// Measured time.
    pub runtime_ns: u64,
    /// Time between IOs when paced (`--rate_iops`), `None`: as fast as the depth allows.
    pub rate_interval_ns: Option<u64>,
}

/// One IO to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoRequest {
    /// Tag to hand back to [`Job::complete`]; also selects the data buffer.
    pub slot: u16,
    /// Read or write.
    pub op: IoOp,
    /// Byte offset in the namespace.
    pub offset_bytes: u64,
    /// Bytes to move.
    pub len_bytes: u32,
    /// First logical block.
    pub slba: u64,
    /// Number of logical blocks (a count, not NVMe's 0-based NLB).
    pub nlb: u32,
}

/// How the engine finished an IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoStatus {
    /// Data moved.
    Success,
    /// The engine failed the IO; the value is its status code (for NVMe
    /// errors, status code type << 8 | status code), kept for the report.
    Failed(u16),
}

/// Why a job cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// `iodepth` 0.
    #[error("iodepth must be at least 1")]
    ZeroIodepth,
    /// Block size 0, or IO size not a whole number of blocks.
    #[error("io size {io_size_bytes} is not a positive multiple of the block size {block_size_bytes}")]
    BadIoSize {
        /// IO size.
        io_size_bytes: u32,
        /// Block size.
        block_size_bytes: u32,
    },
    /// Region start not on a block boundary.
    #[error("region start {0} is not block aligned")]
    UnalignedRegion(u64),
    /// Region holds no whole IO.
    #[error("region of {0} bytes holds no whole IO")]
    EmptyRegion(u64),
    /// Verification cannot work with these sizes.
    #[error(transparent)]
    Verify(#[from] VerifyConfigError),
}

/// Why a completion was not accepted cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompleteError {
    /// The slot has no IO outstanding: a glue bug (double completion).
    #[error("completion for slot {0}, which has no IO outstanding")]
    UnknownSlot(u16),
    /// The read returned bad data (already counted in the statistics).
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    busy: bool,
    op: IoOp,
    unit: u64,
    offset_bytes: u64,
    generation: u64,
    submit_ns: u64,
}

const IDLE_SLOT: Slot = Slot { busy: false, op: IoOp::Read, unit: 0, offset_bytes: 0, generation: 0, submit_ns: 0 };

/// One core's load generator. See the module docs for the loop that drives it.
#[derive(Debug)]
pub struct Job {
    spec: JobSpec,
    phase: JobPhase,
    workload: Workload,
    /// Present when verifying: keeps two outstanding IOs off one unit.
    inflight: Option<InflightTracker>,
    verifier: Option<Verifier>,
    /// Present when a final pass is still to run or running.
    final_pass: Option<FinalPassCursor>,
    slots: Vec<Slot>,
    free_slots: Vec<u16>,
    outstanding: u16,
    ramp_end_ns: u64,
    run_end_ns: u64,
    /// When paced: the earliest time the next IO may go.
    next_issue_ns: u64,
    stats: JobStats,
    live: LiveSnapshot,
    live_counters: Arc<LiveCounters>,
}

impl Job {
    /// Builds a job, allocating its slots, tracker, verifier table and histograms.
    pub fn new(spec: JobSpec) -> Result<Job, JobError> {
        if spec.iodepth == 0 {
            return Err(JobError::ZeroIodepth);
        }
        let (io, block) = (spec.io_size_bytes, spec.block_size_bytes);
        if block == 0 || io == 0 || io % block != 0 {
            return Err(JobError::BadIoSize { io_size_bytes: io, block_size_bytes: block });
        }
        if spec.region.start_bytes % u64::from(block) != 0 {
            return Err(JobError::UnalignedRegion(spec.region.start_bytes));
        }
        let units = spec.region.units(io);
        if units == 0 {
            return Err(JobError::EmptyRegion(spec.region.len_bytes));
        }
        let verifier = match spec.verify {
            None => None,
            Some(v) => Some(Verifier::new(VerifyConfig {
                region: spec.region,
                io_size_bytes: io,
                sector_size_bytes: block,
                stamp_tag: v.stamp_tag,
                unwritten: v.unwritten,
            })?),
        };
        let inflight = verifier.as_ref().map(|_| InflightTracker::new(units));
        let final_pass = spec.verify.filter(|v| v.final_pass).map(|_| FinalPassCursor::new());
        let depth = spec.iodepth;
        Ok(Job {
            workload: Workload::new(spec.pattern, spec.rwmixread_pct, units, spec.seed),
            spec,
            phase: JobPhase::Created,
            inflight,
            verifier,
            final_pass,
            slots: vec![IDLE_SLOT; usize::from(depth)],
            // Popped from the end: slot 0 goes out first.
            free_slots: (0..depth).rev().collect(),
            outstanding: 0,
            ramp_end_ns: 0,
            run_end_ns: 0,
            next_issue_ns: 0,
            stats: JobStats::new(),
            live: LiveSnapshot::default(),
            live_counters: Arc::new(LiveCounters::default()),
        })
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// Current phase.
    pub fn phase(&self) -> JobPhase {
        self.phase
    }

    /// True once the runtime is over and nothing is outstanding.
    pub fn is_done(&self) -> bool {
        self.phase == JobPhase::Done
    }

    /// IOs issued and not yet completed or cancelled.
    pub fn outstanding(&self) -> u16 {
        self.outstanding
    }

    /// Statistics so far (final once [`Job::is_done`]).
    pub fn stats(&self) -> &JobStats {
        &self.stats
    }

    /// Final statistics.
    pub fn into_stats(self) -> JobStats {
        self.stats
    }

    /// The counters the status line reads; share with the status thread.
    pub fn live_counters(&self) -> Arc<LiveCounters> {
        Arc::clone(&self.live_counters)
    }

    /// Starts the clock: ramp (if any), then the measured runtime.
    pub fn start(&mut self, now_ns: u64) {
        if self.phase != JobPhase::Created {
            return;
        }
        self.ramp_end_ns = now_ns.saturating_add(self.spec.ramp_ns);
        self.run_end_ns = self.ramp_end_ns.saturating_add(self.spec.runtime_ns);
        self.phase = JobPhase::Ramp;
        self.on_clock(now_ns);
    }

    /// Ends the job early (signal, fatal error): no new IO, no final pass (or
    /// no more of it); outstanding IOs still complete and count.
    pub fn stop(&mut self, now_ns: u64) {
        match self.phase {
            JobPhase::Created => {
                self.phase = JobPhase::Done;
            }
            JobPhase::Ramp | JobPhase::Running => {
                if self.stats.start_ns.is_none() {
                    self.stats.begin(now_ns);
                }
                self.phase = JobPhase::Draining;
                self.final_pass = None;
            }
            JobPhase::Draining => self.final_pass = None,
            JobPhase::FinalPass => {
                if let Some(cursor) = self.final_pass.as_mut() {
                    cursor.stop();
                }
            }
            JobPhase::Done => {}
        }
        self.on_clock(now_ns);
    }

    /// When the job next needs a turn although none of its IO completed: now
    /// while it can issue, the pace's next slot, the end of the ramp or run
    /// when every slot is busy; `None` when only a completion can move it.
    pub fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        let can_issue = !self.free_slots.is_empty();
        match self.phase {
            JobPhase::Created | JobPhase::Done => Some(now_ns),
            JobPhase::Ramp | JobPhase::Running => {
                let phase_end_ns = if self.phase == JobPhase::Ramp { self.ramp_end_ns } else { self.run_end_ns };
                let issue_ns = match (can_issue, self.spec.rate_interval_ns) {
                    (false, _) => phase_end_ns,
                    (true, None) => now_ns,
                    (true, Some(_)) => self.next_issue_ns,
                };
                Some(issue_ns.min(phase_end_ns).max(now_ns))
            }
            JobPhase::Draining => (self.outstanding == 0).then_some(now_ns),
            JobPhase::FinalPass => can_issue.then_some(now_ns),
        }
    }

    /// Applies the time-driven transitions; call when nothing completes for a while.
    pub fn tick(&mut self, now_ns: u64) {
        self.on_clock(now_ns);
    }

    fn on_clock(&mut self, now_ns: u64) {
        if self.phase == JobPhase::Ramp && now_ns >= self.ramp_end_ns {
            self.phase = JobPhase::Running;
            self.stats.begin(now_ns);
        }
        if self.phase == JobPhase::Running && now_ns >= self.run_end_ns {
            self.phase = JobPhase::Draining;
        }
        if self.phase == JobPhase::Draining && self.outstanding == 0 {
            // The measured window ends here, before any final pass.
            self.stats.finish(now_ns);
            if self.final_pass.is_some() {
                self.phase = JobPhase::FinalPass;
                self.stats.final_pass = Some(FinalPassStats::starting_at(now_ns));
            } else {
                self.phase = JobPhase::Done;
            }
        }
        if self.phase == JobPhase::FinalPass && self.outstanding == 0 && !self.final_pass_has_more() {
            self.phase = JobPhase::Done;
            if let Some(pass) = self.stats.final_pass.as_mut() {
                pass.end_ns = now_ns;
            }
        }
        if self.live.phase != self.phase.as_u8() {
            self.live.phase = self.phase.as_u8();
            self.live_counters.publish(&self.live);
        }
    }

    /// Whether the final pass has units left to read (skipping, and counting,
    /// the ones it passes over).
    fn final_pass_has_more(&mut self) -> bool {
        match (self.final_pass.as_mut(), self.verifier.as_ref(), self.stats.final_pass.as_mut()) {
            (Some(cursor), Some(verifier), Some(pass)) => cursor.peek(verifier, pass).is_some(),
            _ => false,
        }
    }

    /// The final pass's next read: the next written unit, in region order.
    fn next_final_pass_unit(&mut self) -> Option<u64> {
        match (self.final_pass.as_mut(), self.verifier.as_ref(), self.stats.final_pass.as_mut()) {
            (Some(cursor), Some(verifier), Some(pass)) => cursor.next_unit(verifier, pass),
            _ => None,
        }
    }

    /// The next IO to issue, or `None` when all slots are in use, the job is
    /// not issuing (not started, draining, done), or (when verifying) every
    /// unit of the region has an IO outstanding. During the final pass, the
    /// reads of the read-back. The IO counts as outstanding from here until
    /// [`Job::complete`] or [`Job::cancel`].
    pub fn next_io(&mut self, now_ns: u64) -> Option<IoRequest> {
        self.on_clock(now_ns);
        let final_pass = match self.phase {
            JobPhase::Ramp | JobPhase::Running => false,
            JobPhase::FinalPass => true,
            JobPhase::Created | JobPhase::Draining | JobPhase::Done => return None,
        };
        let paced = self.spec.rate_interval_ns.filter(|_| !final_pass);
        if paced.is_some() && now_ns < self.next_issue_ns {
            return None;
        }
        let slot_id = self.free_slots.pop()?;
        if let Some(interval_ns) = paced {
            // Slots keep to the schedule, so a turn a little late (a wake-up, a
            // busy core) is made up at once and the run keeps its rate, as fio's
            // does; a job that fell more than a queue depth of slots behind
            // (a stall) starts the schedule afresh instead of bursting.
            let behind_limit_ns = interval_ns.saturating_mul(u64::from(self.spec.iodepth.max(1)));
            self.next_issue_ns = self.next_issue_ns.max(now_ns.saturating_sub(behind_limit_ns)) + interval_ns;
        }
        let next = if final_pass {
            self.next_final_pass_unit().map(|unit| (IoOp::Read, unit))
        } else {
            self.workload.next_io(self.inflight.as_ref())
        };
        let Some((op, unit)) = next else {
            self.free_slots.push(slot_id);
            return None;
        };
        if let Some(tracker) = self.inflight.as_mut() {
            tracker.try_acquire(unit);
        }
        let generation = match (op, self.verifier.as_mut()) {
            (IoOp::Write, Some(verifier)) => verifier.issue_write(),
            _ => 0,
        };
        let io = self.spec.io_size_bytes;
        let offset_bytes = self.spec.region.start_bytes + unit * u64::from(io);
        if let Some(slot) = self.slots.get_mut(usize::from(slot_id)) {
            *slot = Slot { busy: true, op, unit, offset_bytes, generation, submit_ns: now_ns };
        }
        self.outstanding += 1;
        let block = self.spec.block_size_bytes;
        Some(IoRequest {
            slot: slot_id,
            op,
            offset_bytes,
            len_bytes: io,
            slba: offset_bytes / u64::from(block),
            nlb: io / block,
        })
    }

    /// Counts `ios` IOs just submitted together at the depth now outstanding,
    /// as fio's `iodepth_level` does at each commit (measured time only).
    pub fn mark_depth(&mut self, ios: u64) {
        if self.phase == JobPhase::Running && ios > 0 {
            self.stats.record_depth(self.outstanding, ios);
        }
    }

    /// Fills the data buffer of a write returned by [`Job::next_io`]. Stamps
    /// every block when verifying; otherwise leaves the buffer as it is (its
    /// content does not matter), so calling it is always correct and cheap.
    pub fn fill_write(&self, io: &IoRequest, buf: &mut [u8]) {
        let (Some(verifier), Some(slot)) = (self.verifier.as_ref(), self.slots.get(usize::from(io.slot))) else {
            return;
        };
        if slot.busy && slot.op == IoOp::Write {
            let len = buf.len().min(io.len_bytes as usize);
            verifier.stamp(&mut buf[..len], slot.offset_bytes, slot.generation);
        }
    }

    /// Takes back an IO from [`Job::next_io`] that was never submitted (the
    /// engine refused it). Nothing is recorded.
    pub fn cancel(&mut self, slot_id: u16) {
        // An unknown slot means there is nothing to take back.
        let _ = self.release_slot(slot_id);
    }

    fn release_slot(&mut self, slot_id: u16) -> Option<Slot> {
        let slot = self.slots.get_mut(usize::from(slot_id)).filter(|s| s.busy)?;
        slot.busy = false;
        let slot = *slot;
        if let Some(tracker) = self.inflight.as_mut() {
            tracker.release(slot.unit);
        }
        self.free_slots.push(slot_id);
        self.outstanding -= 1;
        Some(slot)
    }

    /// Records the completion of the IO in `slot_id`: latency (from
    /// [`Job::next_io`] to `now_ns`), bytes, errors; for a successful read when
    /// verifying, checks `data` (the slot's buffer; ignored otherwise). A
    /// verify failure is counted and also returned, for the glue to log.
    pub fn complete(&mut self, slot_id: u16, status: IoStatus, data: &[u8], now_ns: u64) -> Result<(), CompleteError> {
        let slot = self.release_slot(slot_id).ok_or(CompleteError::UnknownSlot(slot_id))?;
        if self.phase == JobPhase::FinalPass {
            // Every IO outstanding now was issued by the pass (it starts with none).
            return self.complete_final_pass_read(slot, status, data, now_ns);
        }
        let measuring = matches!(self.phase, JobPhase::Running | JobPhase::Draining);
        let io_bytes = u64::from(self.spec.io_size_bytes);
        let mut result = Ok(());
        match status {
            IoStatus::Success => {
                if let Some(verifier) = self.verifier.as_mut() {
                    match slot.op {
                        IoOp::Write => verifier.write_acked(slot.offset_bytes, slot.generation),
                        IoOp::Read => {
                            let len = data.len().min(io_bytes as usize);
                            if let Err(error) = verifier.check(&data[..len], slot.offset_bytes) {
                                self.live.verify_errors += 1;
                                self.stats.record_verify_error(error);
                                result = Err(CompleteError::Verify(error));
                            }
                        }
                    }
                }
                self.live.count(slot.op, io_bytes);
                if measuring {
                    self.stats.record_completion(slot.op, now_ns.saturating_sub(slot.submit_ns), io_bytes);
                }
            }
            IoStatus::Failed(code) => {
                if let (IoOp::Write, Some(verifier)) = (slot.op, self.verifier.as_mut()) {
                    verifier.write_failed(slot.offset_bytes);
                }
                self.live.io_errors += 1;
                self.stats.record_io_error(slot.op, code);
            }
        }
        if measuring {
            self.stats.sample_rates(now_ns);
        }
        self.live_counters.publish(&self.live);
        self.on_clock(now_ns);
        result
    }

    /// A final-pass read came back: check it; count nothing toward IOPS or latency.
    fn complete_final_pass_read(
        &mut self,
        slot: Slot,
        status: IoStatus,
        data: &[u8],
        now_ns: u64,
    ) -> Result<(), CompleteError> {
        let mut result = Ok(());
        let io_bytes = self.spec.io_size_bytes as usize;
        match status {
            IoStatus::Success => {
                let checked =
                    self.verifier.as_ref().map(|v| v.check(&data[..data.len().min(io_bytes)], slot.offset_bytes));
                if let Some(pass) = self.stats.final_pass.as_mut() {
                    pass.units_checked += 1;
                    if let Some(Err(_)) = checked {
                        pass.verify_errors += 1;
                    }
                }
                if let Some(Err(error)) = checked {
                    self.live.verify_errors += 1;
                    self.stats.record_verify_error(error);
                    result = Err(CompleteError::Verify(error));
                }
            }
            IoStatus::Failed(code) => {
                if let Some(pass) = self.stats.final_pass.as_mut() {
                    pass.io_errors += 1;
                }
                self.live.io_errors += 1;
                self.stats.record_io_error(slot.op, code);
            }
        }
        if let Some(pass) = self.stats.final_pass.as_mut() {
            pass.end_ns = pass.end_ns.max(now_ns);
        }
        self.live_counters.publish(&self.live);
        self.on_clock(now_ns);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::VerifyErrorKind;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// Counts allocations made by the current thread, to hold the hot path to
    /// "allocates nothing".
    struct CountingAlloc;
    thread_local! { static ALLOCATIONS: Cell<u64> = const { Cell::new(0) }; }
    // SAFETY: forwards to the system allocator unchanged; the counter is a
    // const-initialised thread-local that never allocates.
    unsafe impl GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as our caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as our caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
    #[global_allocator]
    static GLOBAL: CountingAlloc = CountingAlloc;

    const BS: u32 = 4096;
    const BLOCK: u32 = 512;

    fn spec(pattern: RwPattern, units: u64, iodepth: u16, verify: bool) -> JobSpec {
        JobSpec {
            job_index: 0,
            core: 0,
            pattern,
            rwmixread_pct: 50,
            io_size_bytes: BS,
            block_size_bytes: BLOCK,
            region: Region { start_bytes: 8 * u64::from(BS), len_bytes: units * u64::from(BS) },
            iodepth,
            seed: 42,
            verify: verify.then_some(VerifySpec {
                stamp_tag: 0x7A9,
                unwritten: UnwrittenPolicy::Unknown,
                final_pass: false,
            }),
            ramp_ns: 0,
            runtime_ns: 1_000_000_000,
            rate_interval_ns: None,
        }
    }

    /// What the fake device does wrong.
    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        None,
        /// Acknowledge every Nth write without storing it.
        DropEvery(u32),
        /// Store every Nth write one IO further on.
        ShiftEvery(u32),
    }

    /// An in-memory namespace that completes outstanding IOs in random order.
    struct FakeDevice {
        data: Vec<u8>,
        rng: SmallRng,
        fault: Fault,
        writes: u32,
    }

    impl FakeDevice {
        fn new(bytes: usize, fault: Fault) -> Self {
            FakeDevice { data: vec![0; bytes], rng: SmallRng::seed_from_u64(9), fault, writes: 0 }
        }

        fn execute(&mut self, io: &IoRequest, buf: &mut [u8]) {
            let at = io.offset_bytes as usize;
            let len = io.len_bytes as usize;
            match io.op {
                IoOp::Read => buf.copy_from_slice(&self.data[at..at + len]),
                IoOp::Write => {
                    self.writes += 1;
                    let at = match self.fault {
                        Fault::DropEvery(n) if self.writes % n == 0 => return,
                        Fault::ShiftEvery(n) if self.writes % n == 0 => at + len,
                        _ => at,
                    };
                    self.data[at..at + len].copy_from_slice(buf);
                }
            }
        }
    }

    /// Drives `job` against `device` for `steps` completions, 1 µs apart;
    /// returns the verify errors seen. Never allocates once running.
    fn drive(job: &mut Job, device: &mut FakeDevice, steps: u32) -> (Vec<VerifyError>, u64) {
        let depth = usize::from(job.spec().iodepth);
        let mut bufs = vec![vec![0u8; BS as usize]; depth];
        let mut pending: Vec<IoRequest> = Vec::with_capacity(depth);
        let mut errors = Vec::with_capacity(steps as usize);
        let mut now = 0u64;
        job.start(now);
        let before = ALLOCATIONS.with(|c| c.get());
        for _ in 0..steps {
            while let Some(io) = job.next_io(now) {
                job.fill_write(&io, &mut bufs[usize::from(io.slot)]);
                pending.push(io);
            }
            if pending.is_empty() {
                break;
            }
            now += 1_000;
            let io = pending.swap_remove(device.rng.gen_range(0..pending.len()));
            let buf = &mut bufs[usize::from(io.slot)];
            device.execute(&io, buf);
            if let Err(CompleteError::Verify(e)) = job.complete(io.slot, IoStatus::Success, buf, now) {
                errors.push(e);
            }
        }
        let allocations = ALLOCATIONS.with(|c| c.get()) - before;
        (errors, allocations)
    }

    #[test]
    fn verified_mixed_run_on_a_faithful_device_has_no_errors_and_allocates_nothing() {
        let mut job = Job::new(spec(RwPattern::RandRw, 16, 8, true)).unwrap();
        let mut device = FakeDevice::new(64 * BS as usize, Fault::None);
        let (errors, allocations) = drive(&mut job, &mut device, 20_000);
        assert_eq!(errors, []);
        assert_eq!(allocations, 0);
        let stats = job.stats();
        assert_eq!(stats.read.ios + stats.write.ios, 20_000);
        assert!(stats.read.ios > 9_000 && stats.write.ios > 9_000);
        assert_eq!(stats.read.bytes, stats.read.ios * u64::from(BS));
        assert_eq!(stats.read.clat_hist_ns.len(), stats.read.ios);
        assert_eq!(stats.verify_errors, 0);
        // The loop stops right after a completion, before refilling its slot.
        assert_eq!(job.outstanding(), 7);
    }

    #[test]
    fn unverified_run_allocates_nothing_either() {
        let mut job = Job::new(spec(RwPattern::RandRead, 1024, 32, false)).unwrap();
        let mut device = FakeDevice::new(2048 * BS as usize, Fault::None);
        let (errors, allocations) = drive(&mut job, &mut device, 10_000);
        assert_eq!((errors.len(), allocations), (0, 0));
        assert_eq!(job.stats().read.ios, 10_000);
    }

    #[test]
    fn silently_dropped_writes_are_caught_on_later_reads() {
        let mut job = Job::new(spec(RwPattern::RandRw, 4, 2, true)).unwrap();
        let mut device = FakeDevice::new(64 * BS as usize, Fault::DropEvery(40));
        let (errors, _) = drive(&mut job, &mut device, 2_000);
        let first = errors.first().expect("the lost write must be noticed");
        assert!(matches!(first.kind, VerifyErrorKind::Stale | VerifyErrorKind::Corrupt), "{first:?}");
        assert_eq!(job.stats().verify_errors, errors.len() as u64);
    }

    #[test]
    fn writes_stored_at_the_wrong_offset_are_caught_as_misplaced() {
        let mut job = Job::new(spec(RwPattern::RandRw, 4, 1, true)).unwrap();
        // Region is 4 units from unit 8; the device has room past it.
        let mut device = FakeDevice::new(64 * BS as usize, Fault::ShiftEvery(30));
        let (errors, _) = drive(&mut job, &mut device, 2_000);
        assert!(errors.iter().any(|e| e.kind == VerifyErrorKind::Misplaced), "{errors:?}");
    }

    #[test]
    fn two_outstanding_ios_never_share_a_unit_when_verifying() {
        let mut job = Job::new(spec(RwPattern::RandWrite, 6, 6, true)).unwrap();
        job.start(0);
        let ios: Vec<IoRequest> = std::iter::from_fn(|| job.next_io(0)).collect();
        assert_eq!(ios.len(), 6);
        let mut offsets: Vec<u64> = ios.iter().map(|io| io.offset_bytes).collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), 6);
    }

    #[test]
    fn requests_are_aligned_block_addressed_and_inside_the_region() {
        let s = spec(RwPattern::RandRead, 100, 4, false);
        let region = s.region;
        let mut job = Job::new(s).unwrap();
        job.start(0);
        for now in 0..1000 {
            let io = job.next_io(now).unwrap();
            assert_eq!(io.offset_bytes % u64::from(BS), 0);
            assert!(io.offset_bytes >= region.start_bytes);
            assert!(io.offset_bytes + u64::from(io.len_bytes) <= region.start_bytes + region.len_bytes);
            assert_eq!(io.slba * u64::from(BLOCK), io.offset_bytes);
            assert_eq!(io.nlb, BS / BLOCK);
            job.complete(io.slot, IoStatus::Success, &[], now + 1).unwrap();
        }
    }

    #[test]
    fn issues_at_most_iodepth_and_reuses_completed_slots() {
        let mut job = Job::new(spec(RwPattern::Read, 100, 3, false)).unwrap();
        assert_eq!(job.next_io(0), None, "not started");
        job.start(0);
        let slots: Vec<u16> = std::iter::from_fn(|| job.next_io(0)).map(|io| io.slot).collect();
        assert_eq!(slots, [0, 1, 2]);
        job.complete(1, IoStatus::Success, &[], 10).unwrap();
        assert_eq!(job.complete(1, IoStatus::Success, &[], 10), Err(CompleteError::UnknownSlot(1)));
        assert_eq!(job.next_io(11).map(|io| io.slot), Some(1));
        job.cancel(2);
        assert_eq!(job.outstanding(), 2);
        assert_eq!(job.next_io(12).map(|io| io.slot), Some(2));
    }

    #[test]
    fn ramp_is_not_measured_and_runtime_ends_in_drain_then_done() {
        let mut s = spec(RwPattern::RandRead, 100, 2, false);
        s.ramp_ns = 1_000;
        s.runtime_ns = 10_000;
        let mut job = Job::new(s).unwrap();
        job.start(0);
        assert_eq!(job.phase(), JobPhase::Ramp);
        let a = job.next_io(0).unwrap();
        job.complete(a.slot, IoStatus::Success, &[], 500).unwrap();
        assert_eq!(job.stats().read.ios, 0, "ramp IOs are not measured");
        let b = job.next_io(1_000).unwrap();
        assert_eq!(job.phase(), JobPhase::Running);
        let c = job.next_io(1_000).unwrap();
        job.complete(b.slot, IoStatus::Success, &[], 3_000).unwrap();
        assert_eq!(job.next_io(11_000).map(|io| io.slot), None);
        assert_eq!(job.phase(), JobPhase::Draining);
        job.complete(c.slot, IoStatus::Failed(0x0004), &[], 12_000).unwrap();
        assert!(job.is_done());
        let stats = job.stats();
        assert_eq!(stats.read.ios, 1);
        assert_eq!(stats.read.clat_ns.min(), 2_000);
        assert_eq!(stats.io_errors(), 1);
        assert_eq!(stats.first_io_error_status, Some(4));
        assert_eq!((stats.start_ns, stats.end_ns), (Some(1_000), Some(12_000)));
        assert_eq!(JobPhase::from_u8(job.live_counters().snapshot().phase), JobPhase::Done);
    }

    #[test]
    fn stop_drains_early_and_tick_finishes_an_idle_job() {
        let mut job = Job::new(spec(RwPattern::RandRead, 100, 1, false)).unwrap();
        job.start(0);
        let io = job.next_io(0).unwrap();
        job.stop(5);
        assert_eq!(job.phase(), JobPhase::Draining);
        assert_eq!(job.next_io(6), None);
        job.complete(io.slot, IoStatus::Success, &[], 7).unwrap();
        assert!(job.is_done());

        let mut idle = Job::new(spec(RwPattern::RandRead, 100, 1, false)).unwrap();
        idle.start(0);
        idle.tick(2_000_000_000);
        assert!(idle.is_done());
    }

    #[test]
    fn a_failed_write_is_not_reported_as_bad_data_later() {
        let mut job = Job::new(spec(RwPattern::RandRw, 1, 1, true)).unwrap();
        let mut device = FakeDevice::new(64 * BS as usize, Fault::None);
        let mut buf = vec![0u8; BS as usize];
        job.start(0);
        let mut now = 0;
        // Keep going until a write fails after being stored, then read it back.
        let mut failed_one = false;
        for _ in 0..200 {
            now += 1;
            let io = job.next_io(now).unwrap();
            job.fill_write(&io, &mut buf);
            device.execute(&io, &mut buf);
            let status = if io.op == IoOp::Write && !failed_one {
                failed_one = true;
                IoStatus::Failed(0x0006)
            } else {
                IoStatus::Success
            };
            job.complete(io.slot, status, &buf, now).unwrap();
        }
        assert!(failed_one);
        assert_eq!(job.stats().verify_errors, 0);
        assert_eq!(job.stats().write.io_errors, 1);
    }

    fn final_pass_spec(pattern: RwPattern, units: u64, iodepth: u16) -> JobSpec {
        let mut s = spec(pattern, units, iodepth, true);
        if let Some(v) = s.verify.as_mut() {
            v.final_pass = true;
        }
        s.runtime_ns = 2_000_000;
        s
    }

    /// What [`run_to_done`] saw.
    struct Run {
        /// Offsets read during the final pass, in issue order.
        final_pass_reads: Vec<u64>,
        /// Units with a successful last write, by offset.
        written: std::collections::BTreeSet<u64>,
        /// IOs completed before the final pass began.
        measured_completions: u64,
        allocations: u64,
    }

    /// Runs `job` to `Done` against `device`, completing in random order 1 µs
    /// apart; `status` decides each IO's outcome. Allocates nothing in the
    /// job once running (the bookkeeping vectors are sized up front).
    fn run_to_done(job: &mut Job, device: &mut FakeDevice, status: impl Fn(&IoRequest, JobPhase) -> IoStatus) -> Run {
        let depth = usize::from(job.spec().iodepth);
        let mut bufs = vec![vec![0u8; BS as usize]; depth];
        let mut pending: Vec<(IoRequest, JobPhase)> = Vec::with_capacity(depth);
        let mut run = Run {
            final_pass_reads: Vec::with_capacity(100_000),
            written: std::collections::BTreeSet::new(),
            measured_completions: 0,
            allocations: 0,
        };
        let mut written_log: Vec<(u64, bool)> = Vec::with_capacity(100_000);
        let mut now = 0u64;
        job.start(now);
        let before = ALLOCATIONS.with(|c| c.get());
        for _ in 0..1_000_000 {
            while let Some(io) = job.next_io(now) {
                job.fill_write(&io, &mut bufs[usize::from(io.slot)]);
                if job.phase() == JobPhase::FinalPass {
                    run.final_pass_reads.push(io.offset_bytes);
                }
                pending.push((io, job.phase()));
            }
            if job.is_done() {
                break;
            }
            now += 1_000;
            if pending.is_empty() {
                job.tick(now);
                continue;
            }
            let (io, phase) = pending.swap_remove(device.rng.gen_range(0..pending.len()));
            let buf = &mut bufs[usize::from(io.slot)];
            let outcome = status(&io, phase);
            if outcome == IoStatus::Success || io.op == IoOp::Write {
                // A failed write may still have reached the media.
                device.execute(&io, buf);
            }
            if phase != JobPhase::FinalPass {
                run.measured_completions += 1;
            }
            if io.op == IoOp::Write {
                written_log.push((io.offset_bytes, outcome == IoStatus::Success));
            }
            let _ = job.complete(io.slot, outcome, buf, now);
        }
        run.allocations = ALLOCATIONS.with(|c| c.get()) - before;
        let mut last_ok = std::collections::BTreeMap::new();
        for (offset, ok) in written_log {
            last_ok.insert(offset, ok);
        }
        run.written = last_ok.into_iter().filter(|&(_, ok)| ok).map(|(offset, _)| offset).collect();
        run
    }

    #[test]
    fn final_pass_reads_back_every_written_unit_in_order_unmeasured_and_allocation_free() {
        let mut job = Job::new(final_pass_spec(RwPattern::RandRw, 64, 4)).unwrap();
        let mut device = FakeDevice::new(128 * BS as usize, Fault::None);
        let run = run_to_done(&mut job, &mut device, |_, _| IoStatus::Success);
        assert!(job.is_done());
        assert_eq!(run.allocations, 0);
        let stats = job.stats();
        let pass = stats.final_pass.expect("the pass ran");
        assert!(run.written.len() > 32, "{}", run.written.len());
        let expected: Vec<u64> = run.written.iter().copied().collect();
        assert_eq!(run.final_pass_reads, expected, "every written unit once, in region order");
        assert_eq!(pass.units_checked, run.written.len() as u64);
        assert_eq!((pass.units_skipped, pass.verify_errors, pass.io_errors), (0, 0, 0));
        assert_eq!(stats.verify_errors, 0);
        // The pass's reads are not in the IO counts, latencies or rate samples.
        assert_eq!(stats.read.ios + stats.write.ios, run.measured_completions);
        assert_eq!(stats.read.clat_hist_ns.len(), stats.read.ios);
        assert!(pass.start_ns >= stats.end_ns.unwrap() && pass.end_ns > pass.start_ns);
        assert_eq!(JobPhase::from_u8(job.live_counters().snapshot().phase), JobPhase::Done);
    }

    #[test]
    fn final_pass_catches_writes_lost_after_their_last_read() {
        // Writes only: the run itself never reads, so only the pass can notice.
        let mut job = Job::new(final_pass_spec(RwPattern::RandWrite, 16, 2)).unwrap();
        let mut device = FakeDevice::new(64 * BS as usize, Fault::DropEvery(3));
        let run = run_to_done(&mut job, &mut device, |_, _| IoStatus::Success);
        let stats = job.stats();
        let pass = stats.final_pass.unwrap();
        assert_eq!(pass.units_checked, 16);
        assert!(pass.verify_errors > 0, "{pass:?}");
        assert_eq!(stats.verify_errors, pass.verify_errors, "all of them found by the pass");
        let first = stats.first_verify_error.unwrap();
        assert!(matches!(first.kind, VerifyErrorKind::Stale | VerifyErrorKind::Corrupt), "{first:?}");
        assert_eq!(run.allocations, 0);
    }

    #[test]
    fn final_pass_skips_units_whose_last_write_failed() {
        let s = final_pass_spec(RwPattern::RandWrite, 4, 1);
        let unit0 = s.region.start_bytes;
        let mut job = Job::new(s).unwrap();
        let mut device = FakeDevice::new(64 * BS as usize, Fault::None);
        let run = run_to_done(&mut job, &mut device, |io, _| {
            if io.offset_bytes == unit0 {
                IoStatus::Failed(0x0006)
            } else {
                IoStatus::Success
            }
        });
        let pass = job.stats().final_pass.unwrap();
        assert_eq!((pass.units_checked, pass.units_skipped, pass.verify_errors), (3, 1, 0));
        assert!(!run.final_pass_reads.contains(&unit0));
    }

    #[test]
    fn a_failed_final_pass_read_is_an_io_error_not_a_checked_unit() {
        let mut job = Job::new(final_pass_spec(RwPattern::RandWrite, 8, 2)).unwrap();
        let mut device = FakeDevice::new(64 * BS as usize, Fault::None);
        let run = run_to_done(&mut job, &mut device, |io, phase| {
            if phase == JobPhase::FinalPass && io.offset_bytes == 8 * u64::from(BS) {
                IoStatus::Failed(0x0371)
            } else {
                IoStatus::Success
            }
        });
        assert_eq!(run.written.len(), 8);
        let stats = job.stats();
        let pass = stats.final_pass.unwrap();
        assert_eq!((pass.units_checked, pass.io_errors, pass.verify_errors), (7, 1, 0));
        assert_eq!(stats.read.io_errors, 1);
        assert_eq!(stats.first_io_error_status, Some(0x0371));
    }

    #[test]
    fn no_final_pass_without_the_flag_after_a_stop_or_with_nothing_written() {
        let mut plain = Job::new(spec(RwPattern::RandWrite, 8, 2, true)).unwrap();
        plain.spec.runtime_ns = 2_000_000;
        let mut device = FakeDevice::new(64 * BS as usize, Fault::None);
        run_to_done(&mut plain, &mut device, |_, _| IoStatus::Success);
        assert!(plain.stats().final_pass.is_none());

        let mut stopped = Job::new(final_pass_spec(RwPattern::RandWrite, 8, 1)).unwrap();
        stopped.start(0);
        let io = stopped.next_io(0).unwrap();
        stopped.stop(10);
        stopped.complete(io.slot, IoStatus::Success, &[], 20).unwrap();
        assert!(stopped.is_done());
        assert!(stopped.stats().final_pass.is_none());

        let mut reader = Job::new(final_pass_spec(RwPattern::RandRead, 8, 2)).unwrap();
        let run = run_to_done(&mut reader, &mut device, |_, _| IoStatus::Success);
        assert!(reader.is_done());
        assert_eq!(run.final_pass_reads, Vec::<u64>::new());
        assert_eq!(reader.stats().final_pass.map(|p| p.units_checked), Some(0));
    }

    #[test]
    fn rejects_inconsistent_specs() {
        let mut s = spec(RwPattern::Read, 10, 0, false);
        assert_eq!(Job::new(s.clone()).unwrap_err(), JobError::ZeroIodepth);
        s.iodepth = 1;
        s.io_size_bytes = 1000;
        assert!(matches!(Job::new(s.clone()), Err(JobError::BadIoSize { .. })));
        s.io_size_bytes = BS;
        s.region.start_bytes = 100;
        assert_eq!(Job::new(s.clone()).unwrap_err(), JobError::UnalignedRegion(100));
        s.region = Region { start_bytes: 0, len_bytes: 10 };
        assert_eq!(Job::new(s).unwrap_err(), JobError::EmptyRegion(10));
    }

    #[test]
    fn depth_is_counted_per_submitted_batch_at_the_depth_it_leaves() {
        let mut job = Job::new(spec(RwPattern::RandRead, 100, 4, false)).unwrap();
        job.start(0);
        let ios: Vec<IoRequest> = std::iter::from_fn(|| job.next_io(0)).collect();
        job.mark_depth(ios.len() as u64);
        assert_eq!(job.stats().iodepth_level, [0, 0, 4, 0, 0, 0, 0]);
        job.complete(ios[0].slot, IoStatus::Success, &[], 10).unwrap();
        job.complete(ios[1].slot, IoStatus::Success, &[], 10).unwrap();
        let refill: Vec<IoRequest> = std::iter::from_fn(|| job.next_io(11)).collect();
        job.mark_depth(refill.len() as u64);
        assert_eq!(job.stats().iodepth_level, [0, 0, 6, 0, 0, 0, 0]);
    }
}
