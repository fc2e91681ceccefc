//! The failover report: what each path event did to the application's IO.
//!
//! Each job records a [`Timeline`] as it completes IOs: every stretch longer
//! than [`GAP_THRESHOLD_NS`] with no completion at all (exact start and end),
//! and per 10 ms bucket the highest latency and the IO errors. All of it is
//! allocated when the job is made; recording allocates nothing.
//!
//! For a path event at time t, its window is [t - 1 s, t + max(5 s, 2 KATO + 1 s)]
//! (a kill is noticed after the IO stalls, so the stall can start before the
//! event; writes of a given-up path may wait up to two KATOs, docs/multipath.md):
//! the report gives the longest gap of any job that overlaps the window, the
//! highest latency of IOs completed in it, and the IO errors completed in it.

use serde::Serialize;

/// A pause in completions shorter than this is not recorded (scheduling noise).
pub const GAP_THRESHOLD_NS: u64 = 2_000_000;
/// Width of a latency/error bucket.
pub const BUCKET_NS: u64 = 10_000_000;
/// How far before an event its window starts.
pub const WINDOW_BEFORE_NS: u64 = 1_000_000_000;
/// How far after an event its window ends, at least.
pub const WINDOW_AFTER_NS: u64 = 5_000_000_000;

/// How far after an event its window ends for paths with keep-alive timeout
/// `kato_ms`: writes from a given-up path may be held up to two KATOs after
/// its last answer (docs/multipath.md), and their latency belongs to the event.
pub fn window_after_ns(kato_ms: u32) -> u64 {
    WINDOW_AFTER_NS.max(2 * u64::from(kato_ms) * 1_000_000 + 1_000_000_000)
}
/// Gaps kept per job (the longest, when there are more).
pub const MAX_GAPS: usize = 1024;

/// One job's completion history, for the failover report.
#[derive(Debug, Clone)]
pub struct Timeline {
    origin_ns: u64,
    last_completion_ns: u64,
    /// (start, end) of each recorded gap, engine clock.
    gaps: Vec<(u64, u64)>,
    /// Highest latency (µs, saturating) of the IOs completed in each bucket.
    max_latency_us: Vec<u32>,
    /// IO errors completed in each bucket.
    errors: Vec<u32>,
    /// Completion times of the first and the last IO errors, engine clock.
    first_error_ns: Option<u64>,
    last_error_ns: Option<u64>,
}

impl Timeline {
    /// A timeline from `origin_ns` covering `span_ns` (later completions land in the last bucket).
    pub fn new(origin_ns: u64, span_ns: u64) -> Self {
        let buckets = (span_ns / BUCKET_NS + 1) as usize;
        Timeline {
            origin_ns,
            last_completion_ns: origin_ns,
            gaps: Vec::with_capacity(MAX_GAPS),
            max_latency_us: vec![0; buckets],
            errors: vec![0; buckets],
            first_error_ns: None,
            last_error_ns: None,
        }
    }

    /// Restarts the clock (when the job really starts).
    pub fn start(&mut self, now_ns: u64) {
        self.origin_ns = now_ns;
        self.last_completion_ns = now_ns;
    }

    fn bucket(&self, t_ns: u64) -> usize {
        let i = (t_ns.saturating_sub(self.origin_ns) / BUCKET_NS) as usize;
        i.min(self.max_latency_us.len().saturating_sub(1))
    }

    /// Records one final completion (success or error) at `now_ns`.
    pub fn record(&mut self, now_ns: u64, latency_ns: u64, error: bool) {
        self.note_gap(now_ns);
        self.last_completion_ns = self.last_completion_ns.max(now_ns);
        let b = self.bucket(now_ns);
        let us = u32::try_from(latency_ns / 1000).unwrap_or(u32::MAX);
        if let Some(m) = self.max_latency_us.get_mut(b) {
            *m = (*m).max(us);
        }
        if error {
            if let Some(e) = self.errors.get_mut(b) {
                *e = e.saturating_add(1);
            }
            self.first_error_ns = Some(self.first_error_ns.map_or(now_ns, |t| t.min(now_ns)));
            self.last_error_ns = Some(self.last_error_ns.map_or(now_ns, |t| t.max(now_ns)));
        }
    }

    /// Closes a trailing gap at the end of the run.
    pub fn finish(&mut self, now_ns: u64) {
        self.note_gap(now_ns);
        self.last_completion_ns = self.last_completion_ns.max(now_ns);
    }

    fn note_gap(&mut self, now_ns: u64) {
        let start = self.last_completion_ns;
        if now_ns.saturating_sub(start) < GAP_THRESHOLD_NS {
            return;
        }
        if self.gaps.len() < MAX_GAPS {
            self.gaps.push((start, now_ns));
            return;
        }
        // Full: replace the shortest if this one is longer (rare; no allocation).
        let len = now_ns - start;
        if let Some(shortest) = self.gaps.iter_mut().min_by_key(|(s, e)| e - s) {
            if shortest.1 - shortest.0 < len {
                *shortest = (start, now_ns);
            }
        }
    }

    /// When the first and the last IO error completed (engine clock), if any did.
    pub fn error_span(&self) -> Option<(u64, u64)> {
        self.first_error_ns.zip(self.last_error_ns)
    }

    /// The longest gap overlapping [from, to]: (start, end).
    pub fn longest_gap_in(&self, from_ns: u64, to_ns: u64) -> Option<(u64, u64)> {
        self.gaps.iter().copied().filter(|&(s, e)| e >= from_ns && s <= to_ns).max_by_key(|(s, e)| e - s)
    }

    /// Highest latency (ns) and IO errors of completions in [from, to], at bucket resolution.
    pub fn latency_and_errors_in(&self, from_ns: u64, to_ns: u64) -> (u64, u64) {
        if to_ns < self.origin_ns {
            return (0, 0);
        }
        let (a, b) = (self.bucket(from_ns), self.bucket(to_ns));
        let lat = self.max_latency_us.get(a..=b).map_or(0, |s| s.iter().copied().max().unwrap_or(0));
        let errs = self.errors.get(a..=b).map_or(0, |s| s.iter().map(|&e| u64::from(e)).sum());
        (u64::from(lat) * 1000, errs)
    }
}

/// One path event as it happened (engine clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEventRecord {
    /// When, engine clock.
    pub at_ns: u64,
    /// The path, `traddr:trsvcid`.
    pub path: String,
    /// What happened.
    pub what: String,
}

/// A path event with what it did to IO.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverEvent {
    /// Time since the jobs started, ms.
    pub at_ms: f64,
    /// The path, `traddr:trsvcid`.
    pub path: String,
    /// What happened.
    pub what: String,
    /// Longest stretch with no completion at all on one job, overlapping the event's window, ms.
    pub longest_gap_ms: f64,
    /// When that gap began, ms since the jobs started.
    pub gap_start_ms: f64,
    /// The core of the job that saw it.
    pub gap_core: Option<u32>,
    /// Highest latency of IOs completed in the window, ms.
    pub max_latency_ms: f64,
    /// IO errors completed in the window (0 is the goal).
    pub io_errors: u64,
}

/// IOs one path carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathCount {
    /// `traddr:trsvcid`.
    pub path: String,
    /// Controller ID of the path's association at the end (or last known).
    pub cntlid: u16,
    /// State at the end, SPDK's name.
    pub state: String,
    /// IOs sent this way (retries included).
    pub ios: u64,
}

/// The multipath part of a run's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultipathReport {
    /// The bdev the jobs used.
    pub bdev: String,
    /// Its policy.
    pub policy: String,
    /// IOs per path.
    pub paths: Vec<PathCount>,
    /// Path events with their effect, oldest first.
    pub events: Vec<FailoverEvent>,
    /// Resubmissions after a path failure.
    pub retries: u64,
    /// IOs failed back by fast-IO-fail or loss of every path.
    pub failed_no_path: u64,
    /// Most IOs held at once on one core waiting for a path.
    pub held_max: usize,
    /// IO errors of the whole run (0 is the goal).
    pub io_errors: u64,
    /// Verify errors of the whole run.
    pub verify_errors: u64,
    /// When the first IO that completed with an error (to the application, i.e.
    /// the job, including IOs the channel failed back) completed, ms since the
    /// jobs started; `None` (JSON null) without errors.
    pub first_io_error_ms: Option<f64>,
    /// When the last such IO completed, ms since the jobs started.
    pub last_io_error_ms: Option<f64>,
}

/// (first, last) IO error over all `timelines`, ms since `run_start_ns`.
pub fn io_error_span_ms(timelines: &[(u32, &Timeline)], run_start_ns: u64) -> (Option<f64>, Option<f64>) {
    let spans = timelines.iter().filter_map(|(_, t)| t.error_span());
    let (first, last) = spans.fold((None::<u64>, None::<u64>), |(f, l), (a, b)| {
        (Some(f.map_or(a, |f| f.min(a))), Some(l.map_or(b, |l| l.max(b))))
    });
    let ms = |ns: u64| ns.saturating_sub(run_start_ns) as f64 / 1e6;
    (first.map(ms), last.map(ms))
}

/// Puts each event against the jobs' timelines. `timelines` are (core, timeline).
pub fn analyse(
    events: &[PathEventRecord],
    timelines: &[(u32, &Timeline)],
    run_start_ns: u64,
    window_after_ns: u64,
) -> Vec<FailoverEvent> {
    let ms = |ns: u64| ns as f64 / 1e6;
    events
        .iter()
        .map(|e| {
            let from = e.at_ns.saturating_sub(WINDOW_BEFORE_NS).max(run_start_ns);
            let to = e.at_ns.saturating_add(window_after_ns);
            let mut best: Option<(u64, u64, u32)> = None;
            let (mut max_lat, mut errors) = (0u64, 0u64);
            for &(core, t) in timelines {
                if let Some((s, end)) = t.longest_gap_in(from, to) {
                    if best.is_none_or(|(bs, be, _)| end - s > be - bs) {
                        best = Some((s, end, core));
                    }
                }
                let (l, n) = t.latency_and_errors_in(from, to);
                max_lat = max_lat.max(l);
                errors += n;
            }
            FailoverEvent {
                at_ms: ms(e.at_ns.saturating_sub(run_start_ns)),
                path: e.path.clone(),
                what: e.what.clone(),
                longest_gap_ms: best.map_or(0.0, |(s, end, _)| ms(end - s)),
                gap_start_ms: best.map_or(0.0, |(s, _, _)| ms(s.saturating_sub(run_start_ns))),
                gap_core: best.map(|(_, _, c)| c),
                max_latency_ms: ms(max_lat),
                io_errors: errors,
            }
        })
        .collect()
}

/// The human-readable failover section.
pub fn normal_text(r: &MultipathReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "\nMultipath: bdev {} policy {}", r.bdev, r.policy);
    let total: u64 = r.paths.iter().map(|p| p.ios).sum::<u64>().max(1);
    for p in &r.paths {
        let _ = writeln!(
            out,
            "  path {:<22} cntlid {:>5}  {:<20} ios={} ({:.1}%)",
            p.path,
            p.cntlid,
            p.state,
            p.ios,
            p.ios as f64 * 100.0 / total as f64
        );
    }
    let _ = writeln!(
        out,
        "  retries={} failed_no_path={} held_max={} io_errors={} verify_errors={}",
        r.retries, r.failed_no_path, r.held_max, r.io_errors, r.verify_errors
    );
    let ms = |t: Option<f64>| t.map_or("none".to_string(), |t| format!("{t:.1} ms"));
    let _ = writeln!(out, "  first_io_error={} last_io_error={}", ms(r.first_io_error_ms), ms(r.last_io_error_ms));
    let _ = writeln!(out, "\nFailover report ({} path events):", r.events.len());
    if !r.events.is_empty() {
        // The event text last and whole: it is what the reader needs most.
        let _ = writeln!(
            out,
            "  {:>10}  {:<22} {:>12} {:>8} {:>12} {:>9}  event",
            "t (ms)", "path", "gap (ms)", "on core", "max lat (ms)", "io errors"
        );
    }
    for e in &r.events {
        let core = e.gap_core.map_or("-".to_string(), |c| c.to_string());
        let _ = writeln!(
            out,
            "  {:>10.1}  {:<22} {:>12.1} {:>8} {:>12.1} {:>9}  {}",
            e.at_ms, e.path, e.longest_gap_ms, core, e.max_latency_ms, e.io_errors, e.what
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Completions every 100 µs from `from` to `to`, latency 50 µs.
    fn steady(t: &mut Timeline, from: u64, to: u64) {
        let mut now = from;
        while now < to {
            t.record(now, 50_000, false);
            now += 100_000;
        }
    }

    #[test]
    fn a_stall_around_an_event_is_reported_with_its_length_latency_and_core() {
        let mut a = Timeline::new(0, 10_000 * MS);
        steady(&mut a, 0, 1000 * MS);
        // Nothing from 1000 ms to 1080 ms; then the held IOs complete late.
        a.record(1080 * MS, 80 * MS, false);
        steady(&mut a, 1080 * MS, 2000 * MS);
        a.finish(2000 * MS);
        let mut b = Timeline::new(0, 10_000 * MS);
        steady(&mut b, 0, 2000 * MS);
        let events =
            [PathEventRecord { at_ns: 1010 * MS, path: "127.0.0.2:4420".into(), what: "failed: peer closed".into() }];
        let r = analyse(&events, &[(0, &a), (1, &b)], 0, WINDOW_AFTER_NS);
        assert_eq!(r.len(), 1);
        assert!((r[0].longest_gap_ms - 80.0).abs() < 0.2, "{r:?}");
        assert!((r[0].gap_start_ms - 1000.0).abs() < 0.2, "{r:?}");
        assert_eq!(r[0].gap_core, Some(0));
        assert!((r[0].max_latency_ms - 80.0).abs() < 0.01, "{r:?}");
        assert_eq!(r[0].io_errors, 0);
        assert!((r[0].at_ms - 1010.0).abs() < 1e-9);
    }

    #[test]
    fn gaps_and_errors_outside_the_window_do_not_count() {
        let mut a = Timeline::new(0, 20_000 * MS);
        a.record(0, 1, true); // an error at 0 ms
        a.record(500 * MS, 1, false); // a 500 ms gap long before the event
        steady(&mut a, 500 * MS, 9000 * MS);
        let events = [PathEventRecord { at_ns: 8000 * MS, path: "p".into(), what: "w".into() }];
        let r = analyse(&events, &[(0, &a)], 0, WINDOW_AFTER_NS);
        assert_eq!(r[0].longest_gap_ms, 0.0);
        assert_eq!(r[0].gap_core, None);
        assert_eq!(r[0].io_errors, 0);
        let r = analyse(
            &[PathEventRecord { at_ns: 200 * MS, path: "p".into(), what: "w".into() }],
            &[(0, &a)],
            0,
            WINDOW_AFTER_NS,
        );
        assert!((r[0].longest_gap_ms - 500.0).abs() < 0.01);
        assert_eq!(r[0].io_errors, 1);
    }

    #[test]
    fn first_and_last_io_errors_span_all_jobs_relative_to_the_run_start() {
        let mut a = Timeline::new(0, 10_000 * MS);
        let mut b = Timeline::new(0, 10_000 * MS);
        let c = Timeline::new(0, 10_000 * MS);
        assert_eq!(io_error_span_ms(&[(0, &a), (1, &c)], 100 * MS), (None, None));
        steady(&mut a, 100 * MS, 3000 * MS);
        a.record(2500 * MS, 1, true);
        a.record(2600 * MS, 1, true);
        // Completion order is not time order across callers: use the times.
        b.record(2700 * MS, 1, true);
        b.record(2400 * MS, 1, true);
        b.record(2800 * MS, 1, false);
        assert_eq!(a.error_span(), Some((2500 * MS, 2600 * MS)));
        let (first, last) = io_error_span_ms(&[(0, &a), (1, &b), (2, &c)], 100 * MS);
        assert_eq!((first, last), (Some(2300.0), Some(2600.0)));
    }

    #[test]
    fn recording_allocates_nothing_and_keeps_the_longest_gaps_when_full() {
        let mut t = Timeline::new(0, 1000 * MS);
        let cap = t.gaps.capacity();
        let mut now = 0;
        for i in 0..(MAX_GAPS as u64 + 10) {
            now += 3 * MS + (i % 5) * MS;
            t.record(now, 1, false);
        }
        t.record(now + 100 * MS, 1, false);
        assert_eq!(t.gaps.capacity(), cap);
        assert_eq!(t.gaps.len(), MAX_GAPS);
        assert_eq!(t.longest_gap_in(0, u64::MAX).map(|(s, e)| e - s), Some(100 * MS));
        // Completions past the span land in the last bucket instead of panicking.
        t.record(10_000_000 * MS, 7 * MS, true);
        assert_eq!(t.latency_and_errors_in(999 * MS, u64::MAX).1, 1);
    }

    #[test]
    fn normal_text_lists_paths_and_events() {
        let r = MultipathReport {
            bdev: "Nvme0n1".into(),
            policy: "active_passive".into(),
            paths: vec![
                PathCount { path: "127.0.0.2:4420".into(), cntlid: 1, state: "failed".into(), ios: 300 },
                PathCount { path: "127.0.0.3:4420".into(), cntlid: 32761, state: "enabled".into(), ios: 700 },
            ],
            events: vec![FailoverEvent {
                at_ms: 5000.0,
                path: "127.0.0.2:4420".into(),
                what: "failed: connection closed by peer".into(),
                longest_gap_ms: 12.5,
                gap_start_ms: 4999.0,
                gap_core: Some(1),
                max_latency_ms: 13.0,
                io_errors: 0,
            }],
            retries: 31,
            failed_no_path: 0,
            held_max: 32,
            io_errors: 0,
            verify_errors: 0,
            first_io_error_ms: None,
            last_io_error_ms: None,
        };
        let text = normal_text(&r);
        assert!(text.contains("  first_io_error=none last_io_error=none\n"), "{text}");
        let text = normal_text(&MultipathReport {
            io_errors: 3,
            first_io_error_ms: Some(5001.25),
            last_io_error_ms: Some(5012.5),
            ..r.clone()
        });
        assert!(text.contains("  first_io_error=5001.2 ms last_io_error=5012.5 ms\n"), "{text}");
        assert!(
            text.contains("path 127.0.0.3:4420         cntlid 32761  enabled              ios=700 (70.0%)"),
            "{text}"
        );
        assert!(text.contains("Failover report (1 path events):"), "{text}");
        assert!(text.contains("failed: connection closed by peer"), "{text}");
        assert!(text.contains("12.5"), "{text}");
        let long = "reconnect failed: connecting to 127.0.0.2:4420: Connection refused (os error 111)";
        let mut events = r.events.clone();
        events[0].what = long.into();
        let text = normal_text(&MultipathReport { events, ..r.clone() });
        assert!(text.contains(long), "path events are printed whole: {text}");
    }
}
