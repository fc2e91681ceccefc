//! Measurements: per-direction completion latency histograms, IO and byte
//! counts, errors, bandwidth and IOPS samples, per job and merged across jobs;
//! plus the atomic live counters the status line reads once a second.
//!
//! Everything a completion touches is allocated when the job is created, so
//! recording allocates nothing and takes no lock.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use hdrhistogram::Histogram;

use crate::final_pass::FinalPassStats;
use crate::verify::VerifyError;
use crate::workload::IoOp;

/// Largest latency the histograms resolve (100 s); longer ones count as 100 s.
pub const LATENCY_HIGHEST_NS: u64 = 100_000_000_000;
/// Significant decimal digits the histograms keep.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;
/// fio's default `percentile_list`.
pub const FIO_PERCENTILES: [f64; 17] =
    [1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99];
/// How often bandwidth and IOPS are sampled (fio's default `bwavgtime`/`iopsavgtime`).
pub const RATE_SAMPLE_PERIOD_NS: u64 = 500_000_000;

/// Count, min, max, mean and variance of a stream of values (Welford's
/// method, mergeable with Chan's formula), without storing the values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SampleStat {
    count: u64,
    min: u64,
    max: u64,
    mean: f64,
    m2: f64,
}

impl SampleStat {
    /// Adds one value.
    pub fn record(&mut self, value: u64) {
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        let delta = value as f64 - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value as f64 - self.mean);
    }

    /// Adds all values another stat has seen.
    pub fn merge(&mut self, other: &SampleStat) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / count as f64;
        self.m2 += other.m2 + delta * delta * (self.count as f64 * other.count as f64) / count as f64;
        self.count = count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest value (0 when empty).
    pub fn min(&self) -> u64 {
        self.min
    }

    /// Largest value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean (0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample standard deviation, as fio prints it (0 with fewer than two values).
    pub fn stddev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }
}

/// Statistics of one direction (reads or writes).
#[derive(Debug, Clone)]
pub struct DirStats {
    /// Completion latency histogram (submit to completion), nanoseconds.
    pub clat_hist_ns: Histogram<u64>,
    /// Exact min, max, mean and deviation of the same latencies.
    pub clat_ns: SampleStat,
    /// IOs completed successfully.
    pub ios: u64,
    /// Bytes moved by them.
    pub bytes: u64,
    /// IOs the engine completed with an error.
    pub io_errors: u64,
    /// Bandwidth samples, KiB/s, one per [`RATE_SAMPLE_PERIOD_NS`].
    pub bw_kib_per_s: SampleStat,
    /// IOPS samples, one per [`RATE_SAMPLE_PERIOD_NS`].
    pub iops: SampleStat,
}

impl Default for DirStats {
    fn default() -> Self {
        DirStats::new()
    }
}

impl DirStats {
    /// Empty statistics with the histogram fully allocated.
    pub fn new() -> DirStats {
        // Bounds are constants that hdrhistogram accepts; this cannot fail.
        let hist = Histogram::new_with_bounds(1, LATENCY_HIGHEST_NS, LATENCY_SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        DirStats {
            clat_hist_ns: hist,
            clat_ns: SampleStat::default(),
            ios: 0,
            bytes: 0,
            io_errors: 0,
            bw_kib_per_s: SampleStat::default(),
            iops: SampleStat::default(),
        }
    }

    /// Records one successful IO.
    pub fn record(&mut self, latency_ns: u64, bytes: u64) {
        self.clat_hist_ns.saturating_record(latency_ns.clamp(1, LATENCY_HIGHEST_NS));
        self.clat_ns.record(latency_ns);
        self.ios += 1;
        self.bytes += bytes;
    }

    /// The latency at or below which `percent` of IOs completed: the
    /// histogram's value for the sample of rank ⌈percent·N/100⌉.
    pub fn clat_percentile_ns(&self, percent: f64) -> u64 {
        let count = self.clat_hist_ns.len();
        if count == 0 {
            return 0;
        }
        // The rank is computed here, with a margin for rounding (99.9 % of 1000
        // must be rank 999, not 1000), then passed as the middle of that rank
        // so that hdrhistogram's own ceil() lands on it.
        let rank = (percent * count as f64 / 100.0 - 1e-6).ceil().clamp(1.0, count as f64);
        self.clat_hist_ns.value_at_quantile((rank - 0.5) / count as f64)
    }

    /// Adds another direction's statistics.
    pub fn merge(&mut self, other: &DirStats) {
        // Same bounds on both sides, so every value fits: adding cannot fail.
        let _ = self.clat_hist_ns.add(&other.clat_hist_ns);
        self.clat_ns.merge(&other.clat_ns);
        self.ios += other.ios;
        self.bytes += other.bytes;
        self.io_errors += other.io_errors;
        self.bw_kib_per_s.merge(&other.bw_kib_per_s);
        self.iops.merge(&other.iops);
    }
}

/// Statistics of one job, or of several merged.
#[derive(Debug, Clone, Default)]
pub struct JobStats {
    /// Reads.
    pub read: DirStats,
    /// Writes.
    pub write: DirStats,
    /// Reads whose data failed verification.
    pub verify_errors: u64,
    /// The first verification failure, for the report.
    pub first_verify_error: Option<VerifyError>,
    /// Status of the first IO the engine failed, as the engine reported it.
    pub first_io_error_status: Option<u16>,
    /// When the measured window began (after ramp), ns on the job's clock.
    pub start_ns: Option<u64>,
    /// When it ended.
    pub end_ns: Option<u64>,
    /// The `--verify_final_pass` read-back, once it has begun. Its verify and
    /// IO errors are also in `verify_errors` and the directions' `io_errors`;
    /// its reads are not in the IO counts or latencies.
    pub final_pass: Option<FinalPassStats>,
    /// CPU the job's reactor thread used while the job ran (fio's usr/sys/ctx).
    pub cpu: CpuUsage,
    /// Measured IOs by the depth outstanding once their batch was submitted,
    /// in fio's `iodepth_level` buckets: 1, 2-3, 4-7, 8-15, 16-31, 32-63, >=64.
    pub iodepth_level: [u64; 7],
    sampler: RateSampler,
}

/// fio's `iodepth_level` keys, one per bucket of [`JobStats::iodepth_level`].
pub const IODEPTH_LEVEL_KEYS: [&str; 7] = ["1", "2", "4", "8", "16", "32", ">=64"];

/// CPU time and context switches over a span of wall time, from
/// `getrusage(RUSAGE_THREAD)` on the job's reactor thread (jobs sharing a
/// reactor each see the whole thread's use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuUsage {
    /// User time, ns.
    pub usr_ns: u64,
    /// System time, ns.
    pub sys_ns: u64,
    /// Voluntary plus involuntary context switches.
    pub ctx: u64,
    /// The wall time the usage is over, ns.
    pub wall_ns: u64,
}

impl CpuUsage {
    /// User time as a percentage of the wall time (fio's `usr_cpu`).
    pub fn usr_pct(&self) -> f64 {
        pct(self.usr_ns, self.wall_ns)
    }

    /// System time as a percentage of the wall time (fio's `sys_cpu`).
    pub fn sys_pct(&self) -> f64 {
        pct(self.sys_ns, self.wall_ns)
    }

    /// The use between two samples of the same thread.
    pub fn between(start: &CpuSample, end: &CpuSample) -> CpuUsage {
        CpuUsage {
            usr_ns: end.usr_ns.saturating_sub(start.usr_ns),
            sys_ns: end.sys_ns.saturating_sub(start.sys_ns),
            ctx: end.ctx.saturating_sub(start.ctx),
            wall_ns: end.at_ns.saturating_sub(start.at_ns),
        }
    }

    fn merge(&mut self, other: &CpuUsage) {
        self.usr_ns += other.usr_ns;
        self.sys_ns += other.sys_ns;
        self.ctx += other.ctx;
        self.wall_ns += other.wall_ns;
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The calling thread's CPU counters at `at_ns`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuSample {
    /// When, ns on the caller's clock.
    pub at_ns: u64,
    /// User time so far, ns.
    pub usr_ns: u64,
    /// System time so far, ns.
    pub sys_ns: u64,
    /// Context switches so far.
    pub ctx: u64,
}

/// Samples the calling thread's CPU use (`None` where `getrusage` fails).
pub fn thread_cpu_sample(at_ns: u64) -> Option<CpuSample> {
    let (usr_ns, sys_ns, ctx) = crate::sys::thread_cpu_times()?;
    Some(CpuSample { at_ns, usr_ns, sys_ns, ctx })
}

/// Where the last bandwidth/IOPS sample was taken.
#[derive(Debug, Clone, Copy, Default)]
struct RateSampler {
    last_ns: u64,
    last_ios: [u64; 2],
    last_bytes: [u64; 2],
}

impl JobStats {
    /// Counts `ios` IOs issued together, leaving `depth` IOs outstanding.
    pub fn record_depth(&mut self, depth: u16, ios: u64) {
        let bucket = match depth {
            0 | 1 => 0,
            2..=3 => 1,
            4..=7 => 2,
            8..=15 => 3,
            16..=31 => 4,
            32..=63 => 5,
            _ => 6,
        };
        self.iodepth_level[bucket] += ios;
    }

    /// The `iodepth_level` buckets as percentages of the IOs counted.
    pub fn iodepth_level_pct(&self) -> [f64; 7] {
        let total: u64 = self.iodepth_level.iter().sum();
        self.iodepth_level.map(|n| pct(n, total))
    }

    /// Empty statistics, allocated.
    pub fn new() -> JobStats {
        JobStats::default()
    }

    /// One direction.
    pub fn dir(&self, op: IoOp) -> &DirStats {
        match op {
            IoOp::Read => &self.read,
            IoOp::Write => &self.write,
        }
    }

    fn dir_mut(&mut self, op: IoOp) -> &mut DirStats {
        match op {
            IoOp::Read => &mut self.read,
            IoOp::Write => &mut self.write,
        }
    }

    /// Starts the measured window.
    pub fn begin(&mut self, now_ns: u64) {
        self.start_ns = Some(now_ns);
        self.sampler = RateSampler { last_ns: now_ns, ..RateSampler::default() };
    }

    /// Ends the measured window.
    pub fn finish(&mut self, now_ns: u64) {
        self.end_ns = Some(now_ns);
    }

    /// Records a successful completion.
    pub fn record_completion(&mut self, op: IoOp, latency_ns: u64, bytes: u64) {
        self.dir_mut(op).record(latency_ns, bytes);
    }

    /// Records an IO the engine failed.
    pub fn record_io_error(&mut self, op: IoOp, status: u16) {
        self.dir_mut(op).io_errors += 1;
        self.first_io_error_status.get_or_insert(status);
    }

    /// Records a verification failure.
    pub fn record_verify_error(&mut self, error: VerifyError) {
        self.verify_errors += 1;
        self.first_verify_error.get_or_insert(error);
    }

    /// Engine errors of both directions.
    pub fn io_errors(&self) -> u64 {
        self.read.io_errors + self.write.io_errors
    }

    /// Takes a bandwidth and IOPS sample per direction if a sample period has
    /// passed since the last one. Cheap enough to call on every completion.
    pub fn sample_rates(&mut self, now_ns: u64) {
        let elapsed_ns = now_ns.saturating_sub(self.sampler.last_ns);
        if self.start_ns.is_none() || elapsed_ns < RATE_SAMPLE_PERIOD_NS {
            return;
        }
        for op in [IoOp::Read, IoOp::Write] {
            let i = op.index();
            let (ios, bytes) = (self.dir(op).ios, self.dir(op).bytes);
            let delta_ios = ios - self.sampler.last_ios[i];
            let delta_bytes = bytes - self.sampler.last_bytes[i];
            self.sampler.last_ios[i] = ios;
            self.sampler.last_bytes[i] = bytes;
            // Like fio, a direction that never moved data keeps no samples.
            if ios == 0 {
                continue;
            }
            let per_s = |count: u64| (u128::from(count) * 1_000_000_000 / u128::from(elapsed_ns)) as u64;
            let dir = self.dir_mut(op);
            dir.bw_kib_per_s.record(per_s(delta_bytes) / 1024);
            dir.iops.record(per_s(delta_ios));
        }
        self.sampler.last_ns = now_ns;
    }

    /// Length of the measured window in whole milliseconds (fio's `runtime`).
    pub fn runtime_ms(&self) -> u64 {
        match (self.start_ns, self.end_ns) {
            (Some(start), Some(end)) => end.saturating_sub(start) / 1_000_000,
            _ => 0,
        }
    }

    /// Adds another job's statistics: counts and histograms add up, the
    /// window spans both.
    pub fn merge(&mut self, other: &JobStats) {
        self.read.merge(&other.read);
        self.write.merge(&other.write);
        self.verify_errors += other.verify_errors;
        if self.first_verify_error.is_none() {
            self.first_verify_error = other.first_verify_error;
        }
        if self.first_io_error_status.is_none() {
            self.first_io_error_status = other.first_io_error_status;
        }
        self.final_pass = FinalPassStats::total(self.final_pass.iter().chain(other.final_pass.iter()));
        self.cpu.merge(&other.cpu);
        for (sum, n) in self.iodepth_level.iter_mut().zip(other.iodepth_level) {
            *sum += n;
        }
        self.start_ns = match (self.start_ns, other.start_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.end_ns = match (self.end_ns, other.end_ns) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Counters one job publishes for the status line: written by the job's core
/// only (relaxed stores), read by the status thread. Aligned so two jobs'
/// counters never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LiveCounters {
    phase: AtomicU8,
    read_ios: AtomicU64,
    read_bytes: AtomicU64,
    write_ios: AtomicU64,
    write_bytes: AtomicU64,
    io_errors: AtomicU64,
    verify_errors: AtomicU64,
}

/// A job's progress as the status line sees it. Counts include the ramp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    /// The job's phase, as [`crate::job::JobPhase::as_u8`].
    pub phase: u8,
    /// Reads completed.
    pub read_ios: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Writes completed.
    pub write_ios: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// IOs the engine failed.
    pub io_errors: u64,
    /// Verification failures.
    pub verify_errors: u64,
}

impl LiveSnapshot {
    /// Counts one successful IO.
    pub fn count(&mut self, op: IoOp, bytes: u64) {
        match op {
            IoOp::Read => {
                self.read_ios += 1;
                self.read_bytes += bytes;
            }
            IoOp::Write => {
                self.write_ios += 1;
                self.write_bytes += bytes;
            }
        }
    }

    /// Field-wise sum (the phase is not summed: it stays this one's).
    pub fn add(&mut self, other: &LiveSnapshot) {
        self.read_ios += other.read_ios;
        self.read_bytes += other.read_bytes;
        self.write_ios += other.write_ios;
        self.write_bytes += other.write_bytes;
        self.io_errors += other.io_errors;
        self.verify_errors += other.verify_errors;
    }

    /// Rates between an earlier snapshot and this one, `elapsed_ns` apart.
    pub fn rates_since(&self, earlier: &LiveSnapshot, elapsed_ns: u64) -> LiveRates {
        let per_s = |now: u64, then: u64| {
            if elapsed_ns == 0 {
                0
            } else {
                (u128::from(now.saturating_sub(then)) * 1_000_000_000 / u128::from(elapsed_ns)) as u64
            }
        };
        LiveRates {
            read_bytes_per_s: per_s(self.read_bytes, earlier.read_bytes),
            write_bytes_per_s: per_s(self.write_bytes, earlier.write_bytes),
            read_iops: per_s(self.read_ios, earlier.read_ios),
            write_iops: per_s(self.write_ios, earlier.write_ios),
        }
    }
}

/// Per-second rates over one status interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveRates {
    /// Read bandwidth.
    pub read_bytes_per_s: u64,
    /// Write bandwidth.
    pub write_bytes_per_s: u64,
    /// Read IOPS.
    pub read_iops: u64,
    /// Write IOPS.
    pub write_iops: u64,
}

impl LiveCounters {
    /// Publishes the job's current counts.
    pub fn publish(&self, snapshot: &LiveSnapshot) {
        self.phase.store(snapshot.phase, Ordering::Relaxed);
        self.read_ios.store(snapshot.read_ios, Ordering::Relaxed);
        self.read_bytes.store(snapshot.read_bytes, Ordering::Relaxed);
        self.write_ios.store(snapshot.write_ios, Ordering::Relaxed);
        self.write_bytes.store(snapshot.write_bytes, Ordering::Relaxed);
        self.io_errors.store(snapshot.io_errors, Ordering::Relaxed);
        self.verify_errors.store(snapshot.verify_errors, Ordering::Relaxed);
    }

    /// Reads the last published counts (fields may be from adjacent
    /// publications; good enough for a once-a-second display).
    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            phase: self.phase.load(Ordering::Relaxed),
            read_ios: self.read_ios.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            write_ios: self.write_ios.load(Ordering::Relaxed),
            write_bytes: self.write_bytes.load(Ordering::Relaxed),
            io_errors: self.io_errors.load(Ordering::Relaxed),
            verify_errors: self.verify_errors.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::VerifyErrorKind;

    #[test]
    fn sample_stat_matches_direct_computation_and_merges() {
        let values = [10u64, 20, 30, 40, 1000, 7];
        let mut all = SampleStat::default();
        values.iter().for_each(|&v| all.record(v));
        let mean = values.iter().sum::<u64>() as f64 / 6.0;
        let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 5.0;
        assert_eq!((all.min(), all.max(), all.count()), (7, 1000, 6));
        assert!((all.mean() - mean).abs() < 1e-9);
        assert!((all.stddev() - var.sqrt()).abs() < 1e-9);

        let (mut a, mut b) = (SampleStat::default(), SampleStat::default());
        values[..2].iter().for_each(|&v| a.record(v));
        values[2..].iter().for_each(|&v| b.record(v));
        a.merge(&b);
        assert_eq!((a.min(), a.max(), a.count()), (7, 1000, 6));
        assert!((a.mean() - mean).abs() < 1e-9);
        assert!((a.stddev() - var.sqrt()).abs() < 1e-9);
        let mut empty = SampleStat::default();
        empty.merge(&SampleStat::default());
        assert_eq!(empty.count(), 0);
        assert_eq!(empty.stddev(), 0.0);
    }

    #[test]
    fn merged_jobs_add_counts_histograms_and_span_both_windows() {
        let mut a = JobStats::new();
        a.begin(1_000);
        for lat in 1..=100u64 {
            a.record_completion(IoOp::Read, lat * 1000, 4096);
        }
        a.record_io_error(IoOp::Write, 0x371);
        a.finish(2_000_000_000);
        let mut b = JobStats::new();
        b.begin(500);
        for lat in 101..=200u64 {
            b.record_completion(IoOp::Read, lat * 1000, 4096);
        }
        b.record_completion(IoOp::Write, 5_000, 8192);
        let error = VerifyError {
            kind: VerifyErrorKind::Stale,
            offset_bytes: 0,
            expected_generation: 2,
            found_generation: 1,
            found_offset_bytes: 0,
        };
        b.record_verify_error(error);
        b.finish(3_000_000_500);
        a.merge(&b);
        assert_eq!(a.read.ios, 200);
        assert_eq!(a.read.bytes, 200 * 4096);
        assert_eq!(a.read.clat_hist_ns.len(), 200);
        assert_eq!(a.read.clat_ns.min(), 1_000);
        assert_eq!(a.read.clat_ns.max(), 200_000);
        let p50 = a.read.clat_percentile_ns(50.0);
        assert_eq!(p50, a.read.clat_hist_ns.highest_equivalent(100_000));
        assert_eq!(a.read.clat_percentile_ns(99.5), a.read.clat_hist_ns.highest_equivalent(199_000));
        assert_eq!(a.read.clat_percentile_ns(100.0), a.read.clat_hist_ns.highest_equivalent(200_000));
        assert_eq!(a.read.clat_percentile_ns(0.0), a.read.clat_hist_ns.highest_equivalent(1_000));
        assert_eq!(a.write.ios, 1);
        assert_eq!(a.io_errors(), 1);
        assert_eq!(a.first_io_error_status, Some(0x371));
        assert_eq!(a.verify_errors, 1);
        assert_eq!(a.first_verify_error, Some(error));
        assert_eq!((a.start_ns, a.end_ns), (Some(500), Some(3_000_000_500)));
        assert_eq!(a.runtime_ms(), 3000);
    }

    #[test]
    fn rate_samples_come_once_per_period() {
        let mut s = JobStats::new();
        s.begin(0);
        for i in 0..1000u64 {
            s.record_completion(IoOp::Read, 1000, 4096);
            s.sample_rates(i * 1_000_000);
        }
        // 1000 IOs over ~1 s: samples at 500 ms only (1000 ms not reached).
        assert_eq!(s.read.iops.count(), 1);
        assert_eq!(s.write.iops.count(), 0);
        let iops = s.read.iops.mean();
        assert!((990.0..=1010.0).contains(&iops), "{iops}");
        assert_eq!(s.read.bw_kib_per_s.max(), s.read.iops.max() * 4);
    }

    #[test]
    fn histogram_saturates_instead_of_failing() {
        let mut d = DirStats::new();
        d.record(0, 1);
        d.record(LATENCY_HIGHEST_NS * 10, 1);
        assert_eq!(d.clat_hist_ns.len(), 2);
        assert_eq!(d.clat_ns.max(), LATENCY_HIGHEST_NS * 10);
    }

    #[test]
    fn live_snapshots_publish_and_give_rates() {
        let counters = LiveCounters::default();
        let mut snap = LiveSnapshot { phase: 2, ..Default::default() };
        for _ in 0..100 {
            snap.count(IoOp::Read, 4096);
        }
        snap.count(IoOp::Write, 512);
        counters.publish(&snap);
        let later = counters.snapshot();
        assert_eq!(later, snap);
        let rates = later.rates_since(&LiveSnapshot::default(), 500_000_000);
        assert_eq!(
            rates,
            LiveRates { read_bytes_per_s: 819_200, write_bytes_per_s: 1024, read_iops: 200, write_iops: 2 }
        );
        let mut total = LiveSnapshot::default();
        total.add(&later);
        total.add(&later);
        assert_eq!(total.read_ios, 200);
    }

    #[test]
    fn thread_cpu_use_is_sampled_and_turned_into_fio_percentages() {
        let start = thread_cpu_sample(0).expect("getrusage works here");
        // Spin until the thread's CPU time moves: the kernel accounts it in
        // ticks, so a short loop can read 0 (bounded: 5 s of wall time).
        let began = std::time::Instant::now();
        let mut x = 0u64;
        let end = loop {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            let now = thread_cpu_sample(1_000_000_000).unwrap();
            if now.usr_ns + now.sys_ns > start.usr_ns + start.sys_ns || began.elapsed().as_secs() >= 5 {
                break now;
            }
        };
        let use_ = CpuUsage::between(&start, &end);
        assert!(use_.usr_ns + use_.sys_ns > 0, "5 s of spinning, no CPU time: {use_:?}");
        assert_eq!(use_.wall_ns, 1_000_000_000);
        let half = CpuUsage { usr_ns: 500, sys_ns: 250, ctx: 3, wall_ns: 1000 };
        assert_eq!((half.usr_pct(), half.sys_pct()), (50.0, 25.0));
    }

    #[test]
    fn iodepth_levels_use_fios_buckets() {
        let mut s = JobStats::new();
        for depth in [1, 2, 3, 4, 16, 31, 32, 64, 200] {
            s.record_depth(depth, 1);
        }
        assert_eq!(s.iodepth_level, [1, 2, 1, 0, 2, 1, 2]);
        let pct = s.iodepth_level_pct();
        assert!((pct.iter().sum::<f64>() - 100.0).abs() < 1e-9);
        assert_eq!(JobStats::new().iodepth_level_pct(), [0.0; 7]);
    }
}
