//! Which IO comes next: the access pattern of one job (fio's `rw`,
//! `rwmixread`), its region, and the in-flight tracker that keeps two
//! outstanding IOs off the same blocks when verifying.
//!
//! Offsets are handed out in *units* of one IO (`bs` bytes, aligned to `bs`
//! from the region's start), so two IOs either cover the same unit or do not
//! overlap at all. That is what lets both the tracker and the verifier keep one
//! entry per unit.

use core::fmt;
use core::str::FromStr;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// fio's `rw=` access patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RwPattern {
    /// Sequential reads (`read`).
    Read,
    /// Sequential writes (`write`).
    Write,
    /// Random reads (`randread`).
    RandRead,
    /// Random writes (`randwrite`).
    RandWrite,
    /// Random mixed reads and writes (`randrw`).
    RandRw,
    /// Sequential mixed reads and writes (`rw` or `readwrite`).
    Rw,
}

impl RwPattern {
    /// fio's name for the pattern.
    pub fn fio_name(self) -> &'static str {
        match self {
            RwPattern::Read => "read",
            RwPattern::Write => "write",
            RwPattern::RandRead => "randread",
            RwPattern::RandWrite => "randwrite",
            RwPattern::RandRw => "randrw",
            RwPattern::Rw => "rw",
        }
    }

    /// Offsets are drawn at random (otherwise they advance sequentially).
    pub fn is_random(self) -> bool {
        matches!(self, RwPattern::RandRead | RwPattern::RandWrite | RwPattern::RandRw)
    }

    /// Reads and writes are mixed by `rwmixread`.
    pub fn is_mixed(self) -> bool {
        matches!(self, RwPattern::RandRw | RwPattern::Rw)
    }

    /// Share of reads in percent that this pattern issues, given `rwmixread`.
    pub fn read_percent(self, rwmixread_pct: u8) -> u8 {
        match self {
            RwPattern::Read | RwPattern::RandRead => 100,
            RwPattern::Write | RwPattern::RandWrite => 0,
            RwPattern::RandRw | RwPattern::Rw => rwmixread_pct.min(100),
        }
    }

    /// The letter fio shows for a running job of this pattern in its status line:
    /// upper case for sequential, lower case for random, `m`/`M` for mixed.
    pub fn status_char(self) -> char {
        match self {
            RwPattern::Read => 'R',
            RwPattern::RandRead => 'r',
            RwPattern::Write => 'W',
            RwPattern::RandWrite => 'w',
            RwPattern::Rw => 'M',
            RwPattern::RandRw => 'm',
        }
    }
}

/// An access pattern name fio does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rw pattern '{0}' (read, write, randread, randwrite, randrw, rw, readwrite)")]
pub struct RwPatternError(pub String);

impl FromStr for RwPattern {
    type Err = RwPatternError;
    fn from_str(s: &str) -> Result<Self, RwPatternError> {
        match s.to_ascii_lowercase().as_str() {
            "read" => Ok(RwPattern::Read),
            "write" => Ok(RwPattern::Write),
            "randread" => Ok(RwPattern::RandRead),
            "randwrite" => Ok(RwPattern::RandWrite),
            "randrw" => Ok(RwPattern::RandRw),
            "rw" | "readwrite" => Ok(RwPattern::Rw),
            _ => Err(RwPatternError(s.to_string())),
        }
    }
}

impl fmt::Display for RwPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.fio_name())
    }
}

/// Direction of one IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoOp {
    /// Read from the namespace.
    Read,
    /// Write to the namespace.
    Write,
}

impl IoOp {
    /// 0 for reads, 1 for writes: index into per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            IoOp::Read => 0,
            IoOp::Write => 1,
        }
    }
}

/// A byte range of the namespace that one job uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start_bytes: u64,
    /// Length in bytes.
    pub len_bytes: u64,
}

impl Region {
    /// Number of whole `io_size_bytes` units in the region (a tail shorter than
    /// one IO is not used).
    pub fn units(&self, io_size_bytes: u32) -> u64 {
        if io_size_bytes == 0 {
            return 0;
        }
        self.len_bytes / u64::from(io_size_bytes)
    }
}

/// The `[start, start + len)` slice of `[offset, offset + size)` that job
/// `job_index` of `job_count` uses: the whole range when `split` is false (fio's
/// default for several jobs), else an equal share rounded down to whole IOs so
/// that the jobs' regions are disjoint (needed when verifying). Returns `None`
/// when the share holds no whole IO or the arguments are inconsistent.
pub fn job_region(
    offset_bytes: u64,
    size_bytes: u64,
    io_size_bytes: u32,
    job_count: u32,
    job_index: u32,
    split: bool,
) -> Option<Region> {
    if io_size_bytes == 0 || job_count == 0 || job_index >= job_count {
        return None;
    }
    let io = u64::from(io_size_bytes);
    let region = if split {
        let share_units = size_bytes / io / u64::from(job_count);
        let share_bytes = share_units * io;
        Region { start_bytes: offset_bytes.checked_add(share_bytes * u64::from(job_index))?, len_bytes: share_bytes }
    } else {
        Region { start_bytes: offset_bytes, len_bytes: size_bytes / io * io }
    };
    offset_bytes.checked_add(size_bytes)?;
    (region.len_bytes >= io).then_some(region)
}

/// SplitMix64's output function: spreads a 64-bit input over all bits. Used to
/// derive per-job seeds and the verify payload.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The generator seed of job `job_index` under the run's `--seed`.
pub fn job_seed(seed: u64, job_index: u32) -> u64 {
    splitmix64(seed ^ splitmix64(u64::from(job_index) + 1))
}

/// Which units have an IO outstanding: one bit per unit, allocated when the job
/// is created.
#[derive(Debug, Clone)]
pub struct InflightTracker {
    words: Vec<u64>,
    units: u64,
    busy: u64,
}

impl InflightTracker {
    /// A tracker for `units` units, all idle.
    pub fn new(units: u64) -> Self {
        let words = units.div_ceil(64) as usize;
        InflightTracker { words: vec![0; words], units, busy: 0 }
    }

    /// Number of units tracked.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Number of units with an IO outstanding.
    pub fn busy_count(&self) -> u64 {
        self.busy
    }

    /// True when an IO to `unit` is outstanding (units past the end count as busy).
    pub fn is_busy(&self, unit: u64) -> bool {
        match self.words.get((unit / 64) as usize) {
            Some(word) if unit < self.units => word & (1 << (unit % 64)) != 0,
            _ => true,
        }
    }

    /// Marks `unit` busy; false (and no change) when it already was or is out of range.
    pub fn try_acquire(&mut self, unit: u64) -> bool {
        if unit >= self.units {
            return false;
        }
        match self.words.get_mut((unit / 64) as usize) {
            Some(word) if *word & (1 << (unit % 64)) == 0 => {
                *word |= 1 << (unit % 64);
                self.busy += 1;
                true
            }
            _ => false,
        }
    }

    /// Marks `unit` idle again.
    pub fn release(&mut self, unit: u64) {
        if unit >= self.units {
            return;
        }
        if let Some(word) = self.words.get_mut((unit / 64) as usize) {
            if *word & (1 << (unit % 64)) != 0 {
                *word &= !(1 << (unit % 64));
                self.busy -= 1;
            }
        }
    }
}

/// The deterministic IO generator of one job: same seed, same sequence of
/// (op, unit) choices for the same sequence of tracker states.
#[derive(Debug, Clone)]
pub struct Workload {
    pattern: RwPattern,
    read_pct: u8,
    units: u64,
    rng: SmallRng,
    /// Next unit of the sequential stream, per direction (fio keeps one
    /// position per direction too).
    seq_next: [u64; 2],
}

impl Workload {
    /// A generator over `units` units (at least one). `rwmixread_pct` matters
    /// only for mixed patterns.
    pub fn new(pattern: RwPattern, rwmixread_pct: u8, units: u64, seed: u64) -> Self {
        Workload {
            pattern,
            read_pct: pattern.read_percent(rwmixread_pct),
            units: units.max(1),
            rng: SmallRng::seed_from_u64(seed),
            seq_next: [0; 2],
        }
    }

    /// The pattern this generator follows.
    pub fn pattern(&self) -> RwPattern {
        self.pattern
    }

    /// Number of units it draws from.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// The next IO: its direction and unit. With a tracker, never returns a
    /// unit that is busy: a random pick that is busy moves on to the next idle
    /// unit (at most `busy_count` steps), a sequential stream skips busy units.
    /// `None` when every unit is busy.
    pub fn next_io(&mut self, inflight: Option<&InflightTracker>) -> Option<(IoOp, u64)> {
        let op = match self.read_pct {
            100 => IoOp::Read,
            0 => IoOp::Write,
            pct => {
                if self.rng.gen_range(0..100u8) < pct {
                    IoOp::Read
                } else {
                    IoOp::Write
                }
            }
        };
        let first =
            if self.pattern.is_random() { self.rng.gen_range(0..self.units) } else { self.seq_next[op.index()] };
        let unit = match inflight {
            None => first,
            Some(tracker) => self.first_idle_from(first, tracker)?,
        };
        if !self.pattern.is_random() {
            self.seq_next[op.index()] = if unit + 1 >= self.units { 0 } else { unit + 1 };
        }
        Some((op, unit))
    }

    fn first_idle_from(&self, first: u64, tracker: &InflightTracker) -> Option<u64> {
        // At most `busy_count` units can be skipped before an idle one turns up.
        let max_steps = tracker.busy_count().min(self.units - 1);
        let mut unit = first;
        for _ in 0..=max_steps {
            if !tracker.is_busy(unit) {
                return Some(unit);
            }
            unit = if unit + 1 >= self.units { 0 } else { unit + 1 };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fio_pattern_names() {
        assert_eq!("randread".parse(), Ok(RwPattern::RandRead));
        assert_eq!("RandWrite".parse(), Ok(RwPattern::RandWrite));
        assert_eq!("readwrite".parse(), Ok(RwPattern::Rw));
        assert_eq!("rw".parse(), Ok(RwPattern::Rw));
        assert_eq!("randrw".parse(), Ok(RwPattern::RandRw));
        assert!("trim".parse::<RwPattern>().is_err());
    }

    #[test]
    fn same_seed_gives_same_sequence_and_other_seed_differs() {
        let run = |seed| {
            let mut w = Workload::new(RwPattern::RandRw, 70, 1000, seed);
            (0..500).map(|_| w.next_io(None).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert_ne!(job_seed(7, 0), job_seed(7, 1));
    }

    #[test]
    fn random_units_stay_in_bounds_and_cover_the_region() {
        let mut w = Workload::new(RwPattern::RandRead, 50, 64, 1);
        let mut seen = [false; 64];
        for _ in 0..10_000 {
            let (op, unit) = w.next_io(None).unwrap();
            assert_eq!(op, IoOp::Read);
            seen[unit as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn sequential_advances_by_one_unit_and_wraps() {
        let mut w = Workload::new(RwPattern::Write, 50, 3, 1);
        let units: Vec<u64> = (0..7).map(|_| w.next_io(None).unwrap().1).collect();
        assert_eq!(units, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn sequential_mix_keeps_one_stream_per_direction() {
        let mut w = Workload::new(RwPattern::Rw, 50, 1000, 3);
        let mut next = [0u64; 2];
        let mut counts = [0u32; 2];
        for _ in 0..1000 {
            let (op, unit) = w.next_io(None).unwrap();
            assert_eq!(unit, next[op.index()]);
            next[op.index()] += 1;
            counts[op.index()] += 1;
        }
        assert!(counts[0] > 400 && counts[1] > 400, "{counts:?}");
    }

    #[test]
    fn rwmixread_sets_the_read_share() {
        let mut w = Workload::new(RwPattern::RandRw, 70, 1000, 5);
        let reads = (0..10_000).filter(|_| w.next_io(None).unwrap().0 == IoOp::Read).count();
        assert!((6_700..7_300).contains(&reads), "{reads}");
        let mut only_writes = Workload::new(RwPattern::RandRw, 0, 10, 5);
        assert!((0..100).all(|_| only_writes.next_io(None).unwrap().0 == IoOp::Write));
    }

    #[test]
    fn generator_never_hands_out_a_busy_unit() {
        let mut tracker = InflightTracker::new(16);
        let mut w = Workload::new(RwPattern::RandWrite, 0, 16, 11);
        let mut outstanding = Vec::new();
        for round in 0..10_000u32 {
            let (_, unit) = w.next_io(Some(&tracker)).unwrap();
            assert!(tracker.try_acquire(unit), "unit {unit} handed out twice");
            outstanding.push(unit);
            if outstanding.len() == 8 {
                let done = outstanding.swap_remove((round % 8) as usize);
                tracker.release(done);
            }
        }
    }

    #[test]
    fn sequential_stream_skips_busy_units() {
        let mut tracker = InflightTracker::new(4);
        assert!(tracker.try_acquire(1));
        let mut w = Workload::new(RwPattern::Read, 50, 4, 0);
        assert_eq!(w.next_io(Some(&tracker)), Some((IoOp::Read, 0)));
        assert_eq!(w.next_io(Some(&tracker)), Some((IoOp::Read, 2)));
        assert_eq!(w.next_io(Some(&tracker)), Some((IoOp::Read, 3)));
        assert_eq!(w.next_io(Some(&tracker)), Some((IoOp::Read, 0)));
    }

    #[test]
    fn no_io_when_every_unit_is_busy() {
        let mut tracker = InflightTracker::new(3);
        for unit in 0..3 {
            assert!(tracker.try_acquire(unit));
        }
        let mut w = Workload::new(RwPattern::RandRead, 50, 3, 0);
        assert_eq!(w.next_io(Some(&tracker)), None);
        tracker.release(2);
        assert_eq!(w.next_io(Some(&tracker)), Some((IoOp::Read, 2)));
    }

    #[test]
    fn tracker_counts_and_refuses_double_acquire() {
        let mut t = InflightTracker::new(130);
        assert!(t.try_acquire(129));
        assert!(!t.try_acquire(129));
        assert!(!t.try_acquire(130));
        assert!(t.is_busy(130));
        assert_eq!(t.busy_count(), 1);
        t.release(129);
        t.release(129);
        assert_eq!(t.busy_count(), 0);
        assert!(!t.is_busy(129));
    }

    #[test]
    fn regions_split_disjoint_and_aligned_when_asked() {
        let r0 = job_region(4096, 10 * 4096 + 100, 4096, 3, 0, true).unwrap();
        let r1 = job_region(4096, 10 * 4096 + 100, 4096, 3, 1, true).unwrap();
        let r2 = job_region(4096, 10 * 4096 + 100, 4096, 3, 2, true).unwrap();
        assert_eq!(r0, Region { start_bytes: 4096, len_bytes: 3 * 4096 });
        assert_eq!(r1.start_bytes, r0.start_bytes + r0.len_bytes);
        assert_eq!(r2.start_bytes, r1.start_bytes + r1.len_bytes);
        assert_eq!(r2.start_bytes + r2.len_bytes, 4096 + 9 * 4096);
        let shared = job_region(0, 10 * 4096 + 100, 4096, 3, 2, false).unwrap();
        assert_eq!(shared, Region { start_bytes: 0, len_bytes: 10 * 4096 });
        assert_eq!(job_region(0, 2 * 4096, 4096, 3, 0, true), None);
        assert_eq!(job_region(0, 8192, 4096, 2, 2, true), None);
    }
}
