//! The application in the simulated world: a job doing reads and writes
//! through the real [`MpChannel`] at a small queue depth, never two IOs on one
//! block at once, each write carrying (block, version) in its data; and the
//! model of what every block must hold, which the checker compares against.

use std::sync::{Arc, Mutex};

use engine::transport::HostQpair;
use engine::{CoreJob, IoBuf, IoCompletion, IoContext, IoOp, JobStatus};
use multipath::{MpBdev, MpChannel};
use rand::rngs::SmallRng;
use rand::Rng;

use super::trace::Trace;

/// Marks a block written by the simulation ("SIM1").
const MAGIC: u32 = 0x5349_4d31;

/// Reads in flight while verifying every block (within the channel's capacity).
const VERIFY_QUEUE_DEPTH: usize = 2;

/// What the job does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Random reads and writes.
    Run,
    /// No new IO; what is outstanding finishes.
    Drain,
    /// Reads every block once, in order, and checks it.
    Verify,
    /// Verify is over.
    Done,
}

/// One IO the application has outstanding.
#[derive(Debug, Clone)]
struct IoRecord {
    op: IoOp,
    lba: u64,
    num_blocks: u32,
    /// An IO that must fail with a command error (LBA out of range).
    expect_command_error: bool,
    submit_ns: u64,
}

/// What every block must hold, and everything the run shares between the
/// world and the job (one lock; the simulation is single-threaded).
#[derive(Debug)]
pub struct Shared {
    /// Version the last acknowledged write left in each block (0: never written).
    pub acked: Vec<u64>,
    /// Version of the write in flight on each block, if any.
    pub in_flight: Vec<Option<u64>>,
    /// Next version to give out per block.
    next_version: Vec<u64>,
    /// An IO holds the block.
    locked: Vec<bool>,
    records: Vec<Option<IoRecord>>,
    /// What the job does now (the world moves it on).
    pub phase: Phase,
    /// The first invariant broken, with its description.
    pub violation: Option<String>,
    /// The event trace.
    pub trace: Trace,
    /// IOs completed successfully.
    pub completed: u64,
    /// Command errors seen on purpose (out-of-range IOs).
    pub expected_errors: u64,
    verify_cursor: u64,
    verify_outstanding: usize,
    /// Longest time from submit to completion, ns.
    pub max_latency_ns: u64,
    /// Resubmissions the channel made after path failures.
    pub retries: u64,
}

impl Shared {
    /// A model of `num_blocks` blocks, all never written.
    pub fn new(num_blocks: u64, keep_text: bool) -> Self {
        let n = num_blocks as usize;
        Shared {
            acked: vec![0; n],
            in_flight: vec![None; n],
            next_version: vec![0; n],
            locked: vec![false; n],
            records: Vec::new(),
            phase: Phase::Run,
            violation: None,
            trace: Trace::new(keep_text),
            completed: 0,
            expected_errors: 0,
            verify_cursor: 0,
            verify_outstanding: 0,
            max_latency_ns: 0,
            retries: 0,
        }
    }

    /// Records the first violation (later ones are consequences).
    pub fn violate(&mut self, at_ns: u64, what: String) {
        self.trace.record(at_ns, "VIOLATION", [0; 4]);
        if self.violation.is_none() {
            self.violation = Some(what);
        }
    }

    /// IOs the application has outstanding.
    pub fn outstanding(&self) -> usize {
        self.records.iter().filter(|r| r.is_some()).count()
    }

    /// The oldest outstanding IO's submit time.
    pub fn oldest_submit_ns(&self) -> Option<u64> {
        self.records.iter().flatten().map(|r| r.submit_ns).min()
    }

    /// Checks one block's content against the model: the version it carries
    /// must be the last acknowledged one, or the one in flight. Returns the
    /// violation, if any.
    pub fn check_block(&self, block: u64, data: &[u8], allow_in_flight: bool) -> Option<String> {
        let b = block as usize;
        let acked = self.acked[b];
        let found = decode(block, data);
        match found {
            Ok(v) if v == acked => None,
            Ok(v) if allow_in_flight && self.in_flight[b] == Some(v) => None,
            Ok(v) if v < acked => Some(format!(
                "stale write: block {block} holds version {v}, older than the last acknowledged version {acked}"
            )),
            Ok(v) => Some(format!(
                "block {block} holds version {v}, but the last acknowledged is {acked} (in flight: {:?})",
                self.in_flight[b]
            )),
            Err(why) => Some(format!("block {block} is corrupt ({why}); last acknowledged version {acked}")),
        }
    }
}

/// The word that fills the rest of version `version` of `block` (after the 16-byte header).
fn filler(block: u64, version: u64) -> u64 {
    (block.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ version.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)) | 1
}

/// The content of version `version` of `block` (version 0: zeroes).
pub fn fill(block: u64, version: u64, out: &mut [u8]) {
    if version == 0 {
        out.fill(0);
        return;
    }
    out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    out[4..8].copy_from_slice(&(block as u32).to_le_bytes());
    out[8..16].copy_from_slice(&version.to_le_bytes());
    let word = filler(block, version).to_le_bytes();
    for chunk in out[16..].chunks_mut(8) {
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// The version a block's content carries (only the 16-byte header when `data` is that short).
pub fn decode(block: u64, data: &[u8]) -> Result<u64, String> {
    let Some(header) = data.get(0..16) else {
        return Err("short".into());
    };
    let magic = u32::from_le_bytes(header[0..4].try_into().unwrap_or_default());
    let b = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
    let v = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
    if magic == 0 && b == 0 && v == 0 {
        return if data.iter().all(|&x| x == 0) { Ok(0) } else { Err("zero header, data after it".into()) };
    }
    if magic != MAGIC {
        return Err(format!("magic {magic:#x}"));
    }
    if u64::from(b) != block {
        return Err(format!("holds block {b}'s data"));
    }
    let word = filler(block, v).to_le_bytes();
    if data[16..].chunks(8).any(|c| c != &word[..c.len()]) {
        return Err(format!("version {v} torn"));
    }
    Ok(v)
}

/// How the job runs.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadParams {
    /// IOs outstanding at most.
    pub queue_depth: usize,
    /// Blocks per IO at most.
    pub max_blocks: u32,
    /// Percent of IOs that are writes.
    pub write_percent: u32,
    /// Per mille of IOs sent past the end of the namespace (they must fail with a command error, once).
    pub invalid_per_mille: u32,
}

/// The application job on the host core.
pub struct WorkloadJob {
    ch: MpChannel,
    shared: Arc<Mutex<Shared>>,
    rng: SmallRng,
    params: WorkloadParams,
    block_size: usize,
    num_blocks: u64,
}

impl WorkloadJob {
    /// A job on `bdev` sharing the model `shared`.
    pub fn new(bdev: Arc<MpBdev>, shared: Arc<Mutex<Shared>>, rng: SmallRng, params: WorkloadParams) -> Self {
        let block_size = bdev.block_size as usize;
        let num_blocks = bdev.num_blocks;
        WorkloadJob { ch: MpChannel::new(bdev, params.queue_depth + 1), shared, rng, params, block_size, num_blocks }
    }

    fn submit_random<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>, s: &mut Shared) {
        let now_ns = io.now_ns();
        let invalid = self.params.invalid_per_mille > 0 && self.rng.gen_range(0..1000) < self.params.invalid_per_mille;
        let num_blocks = self.rng.gen_range(1..=self.params.max_blocks).min(self.num_blocks as u32);
        let write = self.rng.gen_range(0..100) < self.params.write_percent;
        let (lba, op) = if invalid {
            (self.num_blocks + self.rng.gen_range(0..4u64), IoOp::Read)
        } else {
            let lba = self.rng.gen_range(0..=self.num_blocks - u64::from(num_blocks));
            if (lba..lba + u64::from(num_blocks)).any(|b| s.locked[b as usize]) {
                return;
            }
            (lba, if write { IoOp::Write } else { IoOp::Read })
        };
        let mut buf = IoBuf::new(num_blocks as usize * self.block_size);
        if op == IoOp::Write {
            for i in 0..u64::from(num_blocks) {
                let b = (lba + i) as usize;
                s.next_version[b] += 1;
                let v = s.next_version[b];
                s.in_flight[b] = Some(v);
                let off = i as usize * self.block_size;
                fill(lba + i, v, &mut buf.as_mut_slice()[off..off + self.block_size]);
            }
        }
        if !invalid {
            for b in lba..lba + u64::from(num_blocks) {
                s.locked[b as usize] = true;
            }
        }
        self.submit(io, s, IoRecord { op, lba, num_blocks, expect_command_error: invalid, submit_ns: now_ns }, buf);
    }

    fn submit<Q: HostQpair>(&mut self, io: &mut IoContext<'_, Q>, s: &mut Shared, rec: IoRecord, buf: IoBuf) {
        let tag = match s.records.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                s.records.push(None);
                s.records.len() - 1
            }
        };
        let kind = match rec.op {
            IoOp::Write => "submit write",
            _ if rec.expect_command_error => "submit invalid read",
            _ => "submit read",
        };
        let first_version = if rec.op == IoOp::Write { s.in_flight[rec.lba as usize].unwrap_or(0) } else { 0 };
        s.trace.record(io.now_ns(), kind, [tag as u64, rec.lba, u64::from(rec.num_blocks), first_version]);
        let (op, lba, num_blocks) = (rec.op, rec.lba, rec.num_blocks);
        s.records[tag] = Some(rec);
        if let Err(e) = self.ch.submit(io, op, lba, num_blocks, Some(buf), tag as u64) {
            s.violate(io.now_ns(), format!("MpChannel refused IO {tag} ({:?}) below its capacity", e.reason));
            s.records[tag] = None;
        }
    }

    fn complete(&mut self, now_ns: u64, s: &mut Shared, done: IoCompletion) {
        let tag = done.tag as usize;
        let Some(rec) = s.records.get_mut(tag).and_then(Option::take) else {
            s.violate(now_ns, format!("IO {tag} completed twice (or was never submitted)"));
            return;
        };
        s.max_latency_ns = s.max_latency_ns.max(now_ns.saturating_sub(rec.submit_ns));
        let ok = done.status.is_success();
        s.trace.record(
            now_ns,
            if ok { "complete" } else { "complete with error" },
            [tag as u64, rec.lba, u64::from(rec.num_blocks), u64::from(done.status.to_field())],
        );
        if rec.expect_command_error {
            if ok || done.status.is_path_error() {
                s.violate(
                    now_ns,
                    format!(
                        "read past the end (LBA {}) completed with {} instead of a command error",
                        rec.lba, done.status
                    ),
                );
            } else {
                s.expected_errors += 1;
            }
            return;
        }
        let range = rec.lba..rec.lba + u64::from(rec.num_blocks);
        if s.phase == Phase::Verify {
            s.verify_outstanding -= 1;
        }
        if !ok {
            s.violate(
                now_ns,
                format!(
                    "IO error reached the application: {:?} of LBA {} x{} failed with {} after {} ms",
                    rec.op,
                    rec.lba,
                    rec.num_blocks,
                    done.status,
                    now_ns.saturating_sub(rec.submit_ns) / 1_000_000
                ),
            );
            for b in range {
                s.in_flight[b as usize] = None;
                s.locked[b as usize] = false;
            }
            return;
        }
        s.completed += 1;
        match rec.op {
            IoOp::Write => {
                for b in range {
                    let b = b as usize;
                    if let Some(v) = s.in_flight[b].take() {
                        s.acked[b] = v;
                    }
                    s.locked[b] = false;
                }
            }
            _ => {
                let data = done.buf.as_ref().map(IoBuf::as_slice).unwrap_or(&[]);
                for (i, b) in range.enumerate() {
                    s.locked[b as usize] = false;
                    let off = i * self.block_size;
                    let Some(block) = data.get(off..off + self.block_size) else {
                        s.violate(now_ns, format!("read of LBA {} came back without its data", rec.lba));
                        continue;
                    };
                    if let Some(why) = s.check_block(b, block, false) {
                        s.violate(now_ns, format!("read returned the wrong data: {why}"));
                    }
                }
            }
        }
    }

    /// The channel (for the final checks).
    pub fn channel(&self) -> &MpChannel {
        &self.ch
    }
}

impl<Q: HostQpair> CoreJob<Q> for WorkloadJob {
    fn poll(&mut self, io: &mut IoContext<'_, Q>) -> JobStatus {
        let shared = self.shared.clone();
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        self.ch.poll(io);
        while let Some(failed) = self.ch.take_failed() {
            self.complete(io.now_ns(), &mut s, failed);
        }
        match s.phase {
            Phase::Run => {
                for _ in 0..self.params.queue_depth {
                    if self.ch.outstanding() >= self.params.queue_depth {
                        break;
                    }
                    self.submit_random(io, &mut s);
                }
            }
            Phase::Drain | Phase::Done => {}
            Phase::Verify => {
                while s.verify_outstanding < VERIFY_QUEUE_DEPTH && s.verify_cursor < self.num_blocks {
                    let lba = s.verify_cursor;
                    let num_blocks = u64::from(self.params.max_blocks).min(self.num_blocks - lba);
                    s.verify_cursor += num_blocks;
                    s.verify_outstanding += 1;
                    for b in lba..lba + num_blocks {
                        s.locked[b as usize] = true;
                    }
                    let rec = IoRecord {
                        op: IoOp::Read,
                        lba,
                        num_blocks: num_blocks as u32,
                        expect_command_error: false,
                        submit_ns: io.now_ns(),
                    };
                    self.submit(io, &mut s, rec, IoBuf::new(num_blocks as usize * self.block_size));
                }
                if s.verify_cursor >= self.num_blocks && s.verify_outstanding == 0 {
                    s.phase = Phase::Done;
                }
            }
        }
        s.retries = self.ch.stats().retries;
        // The channel's own counters must agree with the application's.
        if self.ch.outstanding() != s.outstanding() {
            let what =
                format!("channel has {} IOs outstanding, the application {}", self.ch.outstanding(), s.outstanding());
            s.violate(io.now_ns(), what);
        }
        JobStatus::Running
    }

    fn on_complete(&mut self, io: &mut IoContext<'_, Q>, done: IoCompletion) {
        if let Some(done) = self.ch.on_complete(io, done) {
            let shared = self.shared.clone();
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            self.complete(io.now_ns(), &mut s, done);
        }
    }
}
