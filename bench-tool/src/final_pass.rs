//! The end-of-run read-back of `--verify_final_pass`: once a job's runtime is
//! over and its IOs have drained, it reads every unit it ever wrote, in
//! order, and checks each against the last acknowledged write. This catches
//! writes that were acknowledged and then lost (e.g. on a failover) even when
//! the random workload never happened to read the unit again.
//!
//! The pass is not measured: its reads count toward neither IOPS nor latency.

use crate::verify::{UnitState, Verifier};

/// What a job's final pass found. Counts add up across jobs; the duration
/// spans from the earliest start to the latest end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinalPassStats {
    /// Units read back and checked (whatever the outcome).
    pub units_checked: u64,
    /// Units not read because their last write failed (content unknown).
    pub units_skipped: u64,
    /// Units whose data did not match the last acknowledged write.
    pub verify_errors: u64,
    /// Read-backs the engine failed (those units are not checked).
    pub io_errors: u64,
    /// When the pass began, ns on the job's clock.
    pub start_ns: u64,
    /// When its last read completed.
    pub end_ns: u64,
}

impl FinalPassStats {
    /// An empty pass beginning at `now_ns`.
    pub fn starting_at(now_ns: u64) -> FinalPassStats {
        FinalPassStats { start_ns: now_ns, end_ns: now_ns, ..FinalPassStats::default() }
    }

    /// How long the pass took, ms.
    pub fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }

    /// Adds another job's pass.
    pub fn merge(&mut self, other: &FinalPassStats) {
        self.units_checked += other.units_checked;
        self.units_skipped += other.units_skipped;
        self.verify_errors += other.verify_errors;
        self.io_errors += other.io_errors;
        self.start_ns = self.start_ns.min(other.start_ns);
        self.end_ns = self.end_ns.max(other.end_ns);
    }

    /// Merges every pass in `passes`; `None` when there is none.
    pub fn total<'a>(passes: impl IntoIterator<Item = &'a FinalPassStats>) -> Option<FinalPassStats> {
        passes.into_iter().fold(None, |total, pass| {
            Some(match total {
                None => *pass,
                Some(mut t) => {
                    t.merge(pass);
                    t
                }
            })
        })
    }
}

/// Walks a job's region in unit order, yielding the units to read back:
/// never-written units are passed over, units whose last write failed are
/// passed over and counted as skipped. Each unit is considered once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinalPassCursor {
    next_unit: u64,
    stopped: bool,
}

impl FinalPassCursor {
    /// A cursor at the start of the region.
    pub fn new() -> FinalPassCursor {
        FinalPassCursor::default()
    }

    /// The next unit to read, without taking it: moves past units that need
    /// no read (counting the skipped ones in `stats`). `None` once the region
    /// is done or the cursor stopped.
    pub fn peek(&mut self, verifier: &Verifier, stats: &mut FinalPassStats) -> Option<u64> {
        if self.stopped {
            return None;
        }
        loop {
            match verifier.unit_state(self.next_unit)? {
                UnitState::Acked(_) => return Some(self.next_unit),
                UnitState::NeverWritten => {}
                UnitState::Unknown => stats.units_skipped += 1,
            }
            self.next_unit += 1;
        }
    }

    /// Takes the next unit to read (see [`FinalPassCursor::peek`]).
    pub fn next_unit(&mut self, verifier: &Verifier, stats: &mut FinalPassStats) -> Option<u64> {
        let unit = self.peek(verifier, stats)?;
        self.next_unit += 1;
        Some(unit)
    }

    /// Issues nothing more (the job was stopped).
    pub fn stop(&mut self) {
        self.stopped = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{UnwrittenPolicy, VerifyConfig};
    use crate::workload::Region;

    const IO: u32 = 4096;

    fn verifier(units: u64) -> Verifier {
        Verifier::new(VerifyConfig {
            region: Region { start_bytes: 0, len_bytes: units * u64::from(IO) },
            io_size_bytes: IO,
            sector_size_bytes: 512,
            stamp_tag: 1,
            unwritten: UnwrittenPolicy::Unknown,
        })
        .unwrap()
    }

    fn offset(unit: u64) -> u64 {
        unit * u64::from(IO)
    }

    #[test]
    fn yields_written_units_in_order_and_counts_failed_ones_as_skipped() {
        let mut v = verifier(8);
        for unit in [5, 1, 6, 3] {
            let generation = v.issue_write();
            v.write_acked(offset(unit), generation);
        }
        v.write_failed(offset(3)); // acknowledged once, then a write failed
        v.write_failed(offset(7)); // only a failed write
        let mut cursor = FinalPassCursor::new();
        let mut stats = FinalPassStats::default();
        let units: Vec<u64> = std::iter::from_fn(|| cursor.next_unit(&v, &mut stats)).collect();
        assert_eq!(units, [1, 5, 6]);
        assert_eq!(stats.units_skipped, 2);
        // Exhausted: asking again neither yields nor counts anything twice.
        assert_eq!(cursor.peek(&v, &mut stats), None);
        assert_eq!(stats.units_skipped, 2);
    }

    #[test]
    fn a_failed_write_followed_by_an_acknowledged_one_is_read_back() {
        let mut v = verifier(2);
        v.write_failed(offset(0));
        let generation = v.issue_write();
        v.write_acked(offset(0), generation);
        let mut cursor = FinalPassCursor::new();
        let mut stats = FinalPassStats::default();
        assert_eq!(cursor.peek(&v, &mut stats), Some(0));
        assert_eq!(cursor.peek(&v, &mut stats), Some(0), "peek does not take the unit");
        assert_eq!(cursor.next_unit(&v, &mut stats), Some(0));
        assert_eq!(cursor.next_unit(&v, &mut stats), None);
        assert_eq!(stats.units_skipped, 0);
    }

    #[test]
    fn nothing_written_means_nothing_to_read_and_stop_ends_early() {
        let v = verifier(4);
        let mut stats = FinalPassStats::default();
        assert_eq!(FinalPassCursor::new().next_unit(&v, &mut stats), None);
        let mut v = verifier(4);
        let generation = v.issue_write();
        v.write_acked(offset(2), generation);
        let mut cursor = FinalPassCursor::new();
        cursor.stop();
        assert_eq!(cursor.next_unit(&v, &mut stats), None);
    }

    #[test]
    fn totals_add_counts_and_span_the_passes() {
        let a = FinalPassStats {
            units_checked: 10,
            units_skipped: 1,
            verify_errors: 2,
            io_errors: 0,
            start_ns: 5_000_000,
            end_ns: 9_000_000,
        };
        let b = FinalPassStats {
            units_checked: 7,
            units_skipped: 0,
            verify_errors: 0,
            io_errors: 1,
            start_ns: 4_000_000,
            end_ns: 8_000_000,
        };
        let t = FinalPassStats::total([&a, &b]).unwrap();
        assert_eq!((t.units_checked, t.units_skipped, t.verify_errors, t.io_errors), (17, 1, 2, 1));
        assert_eq!(t.duration_ms(), 5.0);
        assert_eq!(FinalPassStats::total([]), None);
    }
}
