//! The live one-line status fio prints while running, rewritten in place with
//! `\r` on stderr, and only when stderr is a terminal:
//! `Jobs: 2 (f=2): [r(2)][40.0%][r=812MiB/s,w=0KiB/s][r=208k,w=0 IOPS][eta 00m:06s]`.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};

use crate::job::JobPhase;
use crate::size::{num2str, Base};
use crate::stats::{LiveRates, LiveSnapshot};
use crate::workload::RwPattern;

/// fio's letter for one job: `/` ramping, the pattern's letter while running
/// or draining, `V` in the final verify pass, `_` done, `P` not started.
pub fn job_char(phase: JobPhase, pattern: RwPattern) -> char {
    match phase {
        JobPhase::Created => 'P',
        JobPhase::Ramp => '/',
        JobPhase::Running | JobPhase::Draining => pattern.status_char(),
        JobPhase::FinalPass => 'V',
        JobPhase::Done => '_',
    }
}

/// Bandwidth as fio's status line shows it: KiB/s at least (`0KiB/s`).
fn status_bw(bytes_per_s: u64) -> String {
    let kib = bytes_per_s / 1024;
    if kib < 10_000 {
        format!("{kib}KiB/s")
    } else {
        num2str(bytes_per_s, Base::Binary, "B/s")
    }
}

/// Appends the status line (no `\r`, no newline) to `out`.
pub fn format_status(
    out: &mut String,
    jobs: &[LiveSnapshot],
    pattern: RwPattern,
    rates: &LiveRates,
    elapsed_ns: u64,
    total_ns: u64,
) {
    let running = jobs.iter().filter(|j| JobPhase::from_u8(j.phase) != JobPhase::Done).count();
    let _ = write!(out, "Jobs: {running} (f={running}): [");
    // Runs of equal letters, condensed as fio does: r(2),_(1).
    let mut first = true;
    let mut index = 0;
    while let Some(job) = jobs.get(index) {
        let letter = job_char(JobPhase::from_u8(job.phase), pattern);
        let mut count = 1;
        while jobs.get(index + count).is_some_and(|j| job_char(JobPhase::from_u8(j.phase), pattern) == letter) {
            count += 1;
        }
        let _ = write!(out, "{}{letter}({count})", if first { "" } else { "," });
        first = false;
        index += count;
    }
    let percent = if total_ns == 0 { 100.0 } else { (elapsed_ns.min(total_ns) as f64) * 100.0 / total_ns as f64 };
    let eta_s = total_ns.saturating_sub(elapsed_ns).div_ceil(1_000_000_000);
    let _ = write!(
        out,
        "][{percent:.1}%][r={},w={}][r={},w={} IOPS][eta ",
        status_bw(rates.read_bytes_per_s),
        status_bw(rates.write_bytes_per_s),
        num2str(rates.read_iops, Base::Decimal, ""),
        num2str(rates.write_iops, Base::Decimal, ""),
    );
    let (hours, minutes, seconds) = (eta_s / 3600, eta_s / 60 % 60, eta_s % 60);
    if hours > 0 {
        let _ = write!(out, "{hours:02}h:");
    }
    let _ = write!(out, "{minutes:02}m:{seconds:02}s]");
    let (io_errors, verify_errors) =
        jobs.iter().fold((0, 0), |(io, verify), j| (io + j.io_errors, verify + j.verify_errors));
    if io_errors + verify_errors > 0 {
        let _ = write!(out, "[errs io={io_errors},verify={verify_errors}]");
    }
}

/// Prints the status line every `interval_ns`; does nothing when disabled
/// (interval 0, or stderr not a terminal).
#[derive(Debug)]
pub struct StatusLine {
    interval_ns: u64,
    enabled: bool,
    last: Option<(u64, LiveSnapshot)>,
    line: String,
    last_len: usize,
}

impl StatusLine {
    /// A status line on stderr, enabled only if stderr is a terminal.
    pub fn for_stderr(interval_ns: u64) -> StatusLine {
        StatusLine::new(interval_ns, std::io::stderr().is_terminal())
    }

    /// A status line, enabled or not.
    pub fn new(interval_ns: u64, enabled: bool) -> StatusLine {
        StatusLine { interval_ns, enabled: enabled && interval_ns > 0, last: None, line: String::new(), last_len: 0 }
    }

    /// Whether anything will be printed.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Builds the line if an interval has passed since the last one; the
    /// first call only takes the starting point. `elapsed_ns`/`total_ns` are
    /// the run's progress including ramp time.
    pub fn render(
        &mut self,
        now_ns: u64,
        jobs: &[LiveSnapshot],
        pattern: RwPattern,
        elapsed_ns: u64,
        total_ns: u64,
    ) -> Option<&str> {
        if !self.enabled {
            return None;
        }
        let mut total = LiveSnapshot::default();
        jobs.iter().for_each(|j| total.add(j));
        let Some((last_ns, last_total)) = self.last else {
            self.last = Some((now_ns, total));
            return None;
        };
        let since_ns = now_ns.saturating_sub(last_ns);
        if since_ns < self.interval_ns {
            return None;
        }
        let rates = total.rates_since(&last_total, since_ns);
        self.last = Some((now_ns, total));
        self.line.clear();
        format_status(&mut self.line, jobs, pattern, &rates, elapsed_ns, total_ns);
        Some(&self.line)
    }

    /// [`StatusLine::render`], then rewrites the terminal line with it.
    pub fn update(&mut self, now_ns: u64, jobs: &[LiveSnapshot], pattern: RwPattern, elapsed_ns: u64, total_ns: u64) {
        let last_len = self.last_len;
        let Some(line) = self.render(now_ns, jobs, pattern, elapsed_ns, total_ns) else {
            return;
        };
        let len = line.len();
        let pad = last_len.saturating_sub(len);
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{line}{:pad$}", "");
        let _ = stderr.flush();
        self.last_len = len;
    }

    /// The line for the end of the run, whatever the interval: rates over the
    /// time since the last line, progress 100%, no time left.
    pub fn render_last(
        &mut self,
        now_ns: u64,
        jobs: &[LiveSnapshot],
        pattern: RwPattern,
        total_ns: u64,
    ) -> Option<&str> {
        if !self.enabled {
            return None;
        }
        let mut total = LiveSnapshot::default();
        jobs.iter().for_each(|j| total.add(j));
        let (last_ns, last_total) = self.last.unwrap_or((0, LiveSnapshot::default()));
        let rates = total.rates_since(&last_total, now_ns.saturating_sub(last_ns).max(1));
        self.last = Some((now_ns, total));
        self.line.clear();
        format_status(&mut self.line, jobs, pattern, &rates, total_ns, total_ns);
        Some(&self.line)
    }

    /// [`StatusLine::render_last`], written over the terminal line.
    pub fn last_update(&mut self, now_ns: u64, jobs: &[LiveSnapshot], pattern: RwPattern, total_ns: u64) {
        let last_len = self.last_len;
        let Some(line) = self.render_last(now_ns, jobs, pattern, total_ns) else {
            return;
        };
        let len = line.len();
        let pad = last_len.saturating_sub(len);
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{line}{:pad$}", "");
        let _ = stderr.flush();
        self.last_len = len;
    }

    /// Ends the status line so that the report starts on a fresh line.
    pub fn finish(&mut self) {
        if self.enabled && self.last_len > 0 {
            let _ = writeln!(std::io::stderr());
            self.last_len = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::IoOp;

    fn running(reads: u64) -> LiveSnapshot {
        let mut s = LiveSnapshot { phase: JobPhase::Running.as_u8(), ..Default::default() };
        for _ in 0..reads {
            s.count(IoOp::Read, 4096);
        }
        s
    }

    #[test]
    fn formats_like_fio() {
        let rates =
            LiveRates { read_bytes_per_s: 812 * 1024 * 1024, write_bytes_per_s: 0, read_iops: 208_000, write_iops: 0 };
        let mut out = String::new();
        format_status(&mut out, &[running(1), running(1)], RwPattern::RandRead, &rates, 4_000_000_000, 10_000_000_000);
        assert_eq!(out, "Jobs: 2 (f=2): [r(2)][40.0%][r=812MiB/s,w=0KiB/s][r=208k,w=0 IOPS][eta 00m:06s]");
    }

    #[test]
    fn condenses_job_letters_and_shows_errors_and_hours() {
        let done = LiveSnapshot { phase: JobPhase::Done.as_u8(), io_errors: 2, ..Default::default() };
        let ramp = LiveSnapshot { phase: JobPhase::Ramp.as_u8(), verify_errors: 1, ..Default::default() };
        let mut out = String::new();
        format_status(
            &mut out,
            &[running(0), running(0), done, ramp],
            RwPattern::Rw,
            &LiveRates::default(),
            0,
            3_723_000_000_000,
        );
        assert_eq!(
            out,
            "Jobs: 3 (f=3): [M(2),_(1),/(1)][0.0%][r=0KiB/s,w=0KiB/s][r=0,w=0 IOPS][eta 01h:02m:03s][errs io=2,verify=1]"
        );
    }

    #[test]
    fn renders_once_per_interval_with_rates_over_it() {
        let mut status = StatusLine::new(1_000_000_000, true);
        assert_eq!(status.render(0, &[running(0)], RwPattern::Read, 0, 10_000_000_000), None);
        assert_eq!(status.render(500_000_000, &[running(100)], RwPattern::Read, 0, 10_000_000_000), None);
        let line = status.render(1_000_000_000, &[running(1000)], RwPattern::Read, 1_000_000_000, 10_000_000_000);
        assert_eq!(line, Some("Jobs: 1 (f=1): [R(1)][10.0%][r=4000KiB/s,w=0KiB/s][r=1000,w=0 IOPS][eta 00m:09s]"));
    }

    #[test]
    fn disabled_when_not_a_terminal_or_interval_zero() {
        let mut off = StatusLine::new(1_000_000_000, false);
        assert_eq!(off.render(0, &[], RwPattern::Read, 0, 1), None);
        assert_eq!(off.render(5_000_000_000, &[], RwPattern::Read, 0, 1), None);
        assert!(!StatusLine::new(0, true).is_enabled());
    }

    #[test]
    fn the_last_line_shows_100_percent_and_no_time_left() {
        let mut status = StatusLine::new(1_000_000_000, true);
        assert_eq!(status.render(0, &[running(0)], RwPattern::Read, 0, 10_000_000_000), None);
        let done = LiveSnapshot { phase: JobPhase::Done.as_u8(), ..running(500) };
        let line = status.render_last(9_070_000_000, &[done], RwPattern::Read, 10_000_000_000).unwrap();
        assert!(line.contains("[100.0%]"), "{line}");
        assert!(line.ends_with("[eta 00m:00s]"), "{line}");
        assert!(StatusLine::new(1_000_000_000, false).render_last(1, &[], RwPattern::Read, 1).is_none());
    }
}
