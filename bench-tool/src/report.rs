//! End-of-run reports in fio's two main formats: the human-readable one and
//! `--output-format=json`, with fio's field names so that tools reading fio's
//! JSON read ours. What fio has no field for goes in a `"corepath"` object.
//!
//! Latency: the engine measures one latency per IO, submission to completion;
//! it is reported as fio's `clat_ns` (with percentiles) and also as `lat_ns`
//! (without, as fio does by default). `slat_ns` (submission to the
//! transport's send) needs a timestamp the engine does not hand out yet, so
//! it stays empty (N = 0), and `lat_ns` equals `clat_ns`.

use std::fmt::Write as _;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::failover::{normal_text, MultipathReport};
use crate::final_pass::FinalPassStats;
use crate::size::{num2str, Base};
use crate::stats::{DirStats, JobStats, SampleStat, FIO_PERCENTILES, IODEPTH_LEVEL_KEYS};
use crate::workload::IoOp;

/// `errno` fio reports for a job that saw IO errors.
pub const EIO: i32 = 5;
/// `errno` fio reports for a job that failed verification.
pub const EILSEQ: i32 = 84;

/// The outcome of one job, as the glue hands it over.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// Job name (`--name`).
    pub name: String,
    /// Job number.
    pub job_index: u32,
    /// Core it ran on.
    pub core: u32,
    /// Its statistics.
    pub stats: JobStats,
}

impl JobReport {
    /// fio's `error` for the job: `EILSEQ` after a verify failure, else `EIO`
    /// after an IO error, else 0.
    pub fn error_code(&self) -> i32 {
        if self.stats.verify_errors > 0 {
            EILSEQ
        } else if self.stats.io_errors() > 0 {
            EIO
        } else {
            0
        }
    }
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// One entry per job.
    pub jobs: Vec<JobReport>,
    /// Options common to all jobs (see [`crate::cli::BenchConfig::job_options`]).
    pub options: Vec<(&'static str, String)>,
    /// When the run started, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Merge all jobs into one entry.
    pub group_reporting: bool,
    /// Per-path IO counts and the failover report (multipath runs).
    pub multipath: Option<MultipathReport>,
}

impl RunReport {
    /// The entries to print: each job, or all merged into one under the first
    /// job's name when grouping.
    pub fn entries(&self) -> Vec<JobReport> {
        if !self.group_reporting || self.jobs.len() <= 1 {
            return self.jobs.clone();
        }
        let mut stats = JobStats::new();
        for job in &self.jobs {
            stats.merge(&job.stats);
        }
        let first = &self.jobs[0];
        vec![JobReport { name: first.name.clone(), job_index: 0, core: first.core, stats }]
    }

    /// The exit status the binary should return: 0 when every job succeeded.
    pub fn exit_code(&self) -> i32 {
        if self.jobs.iter().any(|j| j.error_code() != 0) {
            1
        } else {
            0
        }
    }
}

/// Bytes/s, KiB/s and IOPS of one direction over its runtime, fio's integer way.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    runtime_ms: u64,
    bw_bytes: u64,
    iops: f64,
}

fn rates(dir: &DirStats, runtime_ms: u64) -> Rates {
    // fio reports a runtime only for directions that did IO.
    let runtime_ms = if dir.ios + dir.io_errors > 0 { runtime_ms } else { 0 };
    if runtime_ms == 0 {
        return Rates { runtime_ms, bw_bytes: 0, iops: 0.0 };
    }
    Rates {
        runtime_ms,
        bw_bytes: (u128::from(dir.bytes) * 1000 / u128::from(runtime_ms)) as u64,
        iops: dir.ios as f64 * 1000.0 / runtime_ms as f64,
    }
}

/// Aggregate bandwidth of one direction over all jobs, bytes/s (fio's `agg`).
fn group_bw_bytes(jobs: &[JobReport], op: IoOp) -> u64 {
    let bytes: u64 = jobs.iter().map(|j| j.stats.dir(op).bytes).sum();
    let runtime_ms = jobs.iter().map(|j| j.stats.runtime_ms()).max().unwrap_or(0);
    if runtime_ms == 0 {
        0
    } else {
        (u128::from(bytes) * 1000 / u128::from(runtime_ms)) as u64
    }
}

// ---------------------------------------------------------------- JSON

#[derive(Serialize)]
struct JsonRoot<'a> {
    /// fio's key (tools look for it); the value names us.
    #[serde(rename = "fio version")]
    version: String,
    timestamp: u64,
    timestamp_ms: u64,
    /// fio's `ctime()` form of `timestamp` (here in UTC).
    time: String,
    #[serde(rename = "global options")]
    global_options: OptionMap<'a>,
    jobs: Vec<JsonJob>,
    /// All jobs' `--verify_final_pass` read-backs together.
    #[serde(skip_serializing_if = "Option::is_none")]
    final_pass: Option<JsonFinalPass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multipath: Option<&'a MultipathReport>,
}

#[derive(Serialize)]
struct JsonFinalPass {
    units_checked: u64,
    units_skipped: u64,
    verify_errors: u64,
    io_errors: u64,
    duration_ms: f64,
}

impl From<&FinalPassStats> for JsonFinalPass {
    fn from(p: &FinalPassStats) -> Self {
        JsonFinalPass {
            units_checked: p.units_checked,
            units_skipped: p.units_skipped,
            verify_errors: p.verify_errors,
            io_errors: p.io_errors,
            duration_ms: p.duration_ms(),
        }
    }
}

/// All jobs' final passes merged (`None` when no job ran one).
fn total_final_pass(jobs: &[JobReport]) -> Option<FinalPassStats> {
    FinalPassStats::total(jobs.iter().filter_map(|j| j.stats.final_pass.as_ref()))
}

fn write_final_pass_line(out: &mut String, label: &str, p: &FinalPassStats) {
    let _ = writeln!(
        out,
        "{label}: units_checked={}, units_skipped={}, verify_errors={}, io_errors={}, duration={:.1}msec",
        p.units_checked,
        p.units_skipped,
        p.verify_errors,
        p.io_errors,
        p.duration_ms()
    );
}

struct OptionMap<'a>(&'a [(&'static str, String)]);

impl Serialize for OptionMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct JsonJob {
    jobname: String,
    groupid: u32,
    error: i32,
    eta: u64,
    elapsed: u64,
    #[serde(rename = "job options")]
    job_options: OwnedOptionMap,
    read: JsonDir,
    write: JsonDir,
    trim: JsonDir,
    sync: JsonSync,
    job_runtime: u64,
    usr_cpu: f64,
    sys_cpu: f64,
    ctx: u64,
    majf: u64,
    minf: u64,
    iodepth_level: PercentMap,
    latency_ns: PercentMap,
    latency_us: PercentMap,
    latency_ms: PercentMap,
    corepath: JsonCorepath,
}

/// A job's options as fio lists them for a command-line job: every option
/// given (fio puts the options after `--name` in the job, not in the globals).
struct OwnedOptionMap(Vec<(String, String)>);

impl Serialize for OwnedOptionMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

fn job_options(job: &JobReport, options: &[(&'static str, String)]) -> OwnedOptionMap {
    let mut out = vec![("name".to_string(), job.name.clone())];
    out.extend(
        options.iter().filter(|(n, _)| !matches!(*n, "name" | "cpus_allowed")).map(|(n, v)| (n.to_string(), v.clone())),
    );
    out.push(("cpus_allowed".to_string(), job.core.to_string()));
    OwnedOptionMap(out)
}

/// A fio distribution: key to percentage. `latency_ns` / `latency_us` /
/// `latency_ms` give the share of the job's IOs (reads and writes) whose
/// latency fell in each bucket, a bucket running from the previous key
/// (inclusive) to its own (exclusive); `iodepth_level` the share of IOs
/// issued at each depth.
struct PercentMap(Vec<(String, f64)>);

impl Serialize for PercentMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

const LATENCY_KEYS: [u64; 10] = [2, 4, 10, 20, 50, 100, 250, 500, 750, 1000];

fn latency_buckets(s: &JobStats, unit_ns: u64, top: bool) -> PercentMap {
    let mut keys: Vec<u64> = LATENCY_KEYS.to_vec();
    if top {
        keys.push(2000);
    }
    // Bucket i holds [bounds[i], bounds[i + 1]); the first starts at the
    // previous unit's top (0 for ns), the last of ms has no end.
    let mut bounds: Vec<u64> = vec![if unit_ns == 1 { 0 } else { unit_ns }];
    bounds.extend(keys.iter().map(|k| k * unit_ns));
    let mut counts = vec![0u64; keys.len() + usize::from(top)];
    let mut total = 0u64;
    for hist in [&s.read.clat_hist_ns, &s.write.clat_hist_ns] {
        for v in hist.iter_recorded() {
            let (value, n) = (hist.median_equivalent(v.value_iterated_to()), v.count_at_value());
            total += n;
            if value < bounds[0] {
                continue;
            }
            match bounds.iter().rposition(|&b| value >= b) {
                Some(i) if i < counts.len() => counts[i] += n,
                _ => {}
            }
        }
    }
    let pct = |n: u64| if total == 0 { 0.0 } else { n as f64 * 100.0 / total as f64 };
    let mut out: Vec<(String, f64)> = keys.iter().zip(&counts).map(|(k, &n)| (k.to_string(), pct(n))).collect();
    if top {
        out.push((">=2000".to_string(), pct(counts[keys.len()])));
    }
    PercentMap(out)
}

#[derive(Serialize, Default)]
struct JsonDir {
    io_bytes: u64,
    io_kbytes: u64,
    bw_bytes: u64,
    bw: u64,
    iops: f64,
    runtime: u64,
    total_ios: u64,
    short_ios: u64,
    drop_ios: u64,
    slat_ns: JsonLat,
    clat_ns: JsonLat,
    lat_ns: JsonLat,
    bw_min: u64,
    bw_max: u64,
    bw_agg: f64,
    bw_mean: f64,
    bw_dev: f64,
    bw_samples: u64,
    iops_min: u64,
    iops_max: u64,
    iops_mean: f64,
    iops_stddev: f64,
    iops_samples: u64,
}

#[derive(Serialize, Default)]
struct JsonSync {
    total_ios: u64,
    lat_ns: JsonLat,
}

#[derive(Serialize, Default)]
struct JsonLat {
    min: u64,
    max: u64,
    mean: f64,
    stddev: f64,
    #[serde(rename = "N")]
    n: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    percentile: Option<Percentiles>,
}

/// fio's `"percentile": {"1.000000": v, ...}`, in list order.
struct Percentiles(Vec<(String, u64)>);

impl Serialize for Percentiles {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct JsonCorepath {
    core: u32,
    job_index: u32,
    io_errors: u64,
    read_io_errors: u64,
    write_io_errors: u64,
    verify_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_io_error_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_verify_error: Option<JsonVerifyError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    final_pass: Option<JsonFinalPass>,
}

#[derive(Serialize)]
struct JsonVerifyError {
    kind: &'static str,
    offset_bytes: u64,
    expected_generation: u64,
    found_generation: u64,
    found_offset_bytes: u64,
}

fn json_lat(dir: &DirStats, with_percentiles: bool) -> JsonLat {
    let stat = &dir.clat_ns;
    let percentile = (with_percentiles && stat.count() > 0).then(|| {
        Percentiles(FIO_PERCENTILES.iter().map(|&p| (format!("{p:.6}"), dir.clat_percentile_ns(p))).collect())
    });
    JsonLat { min: stat.min(), max: stat.max(), mean: stat.mean(), stddev: stat.stddev(), n: stat.count(), percentile }
}

fn json_dir(dir: &DirStats, runtime_ms: u64, group_bw_bytes: u64) -> JsonDir {
    let r = rates(dir, runtime_ms);
    let bw = &dir.bw_kib_per_s;
    let group_kib = group_bw_bytes / 1024;
    JsonDir {
        io_bytes: dir.bytes,
        io_kbytes: dir.bytes >> 10,
        bw_bytes: r.bw_bytes,
        bw: r.bw_bytes / 1024,
        iops: r.iops,
        runtime: r.runtime_ms,
        total_ios: dir.ios,
        short_ios: 0,
        drop_ios: 0,
        slat_ns: JsonLat::default(),
        clat_ns: json_lat(dir, true),
        lat_ns: json_lat(dir, false),
        bw_min: bw.min(),
        bw_max: bw.max(),
        bw_agg: if bw.count() > 0 && group_kib > 0 { bw.mean() * 100.0 / group_kib as f64 } else { 0.0 },
        bw_mean: bw.mean(),
        bw_dev: bw.stddev(),
        bw_samples: bw.count(),
        iops_min: dir.iops.min(),
        iops_max: dir.iops.max(),
        iops_mean: dir.iops.mean(),
        iops_stddev: dir.iops.stddev(),
        iops_samples: dir.iops.count(),
    }
}

/// The JSON report, pretty-printed, keys in fio's order.
pub fn json_report(report: &RunReport) -> String {
    let entries = report.entries();
    let group_bw = [group_bw_bytes(&entries, IoOp::Read), group_bw_bytes(&entries, IoOp::Write)];
    let jobs = entries
        .iter()
        .map(|job| {
            let s = &job.stats;
            let runtime_ms = s.runtime_ms();
            JsonJob {
                jobname: job.name.clone(),
                groupid: 0,
                error: job.error_code(),
                eta: 0,
                elapsed: runtime_ms.div_ceil(1000),
                job_options: job_options(job, &report.options),
                read: json_dir(&s.read, runtime_ms, group_bw[0]),
                write: json_dir(&s.write, runtime_ms, group_bw[1]),
                trim: JsonDir::default(),
                sync: JsonSync::default(),
                job_runtime: runtime_ms,
                usr_cpu: s.cpu.usr_pct(),
                sys_cpu: s.cpu.sys_pct(),
                ctx: s.cpu.ctx,
                majf: 0,
                minf: 0,
                iodepth_level: PercentMap(
                    IODEPTH_LEVEL_KEYS.iter().zip(s.iodepth_level_pct()).map(|(k, p)| (k.to_string(), p)).collect(),
                ),
                latency_ns: latency_buckets(s, 1, false),
                latency_us: latency_buckets(s, 1_000, false),
                latency_ms: latency_buckets(s, 1_000_000, true),
                corepath: JsonCorepath {
                    core: job.core,
                    job_index: job.job_index,
                    io_errors: s.io_errors(),
                    read_io_errors: s.read.io_errors,
                    write_io_errors: s.write.io_errors,
                    verify_errors: s.verify_errors,
                    first_io_error_status: s.first_io_error_status,
                    first_verify_error: s.first_verify_error.map(|e| JsonVerifyError {
                        kind: e.kind.as_str(),
                        offset_bytes: e.offset_bytes,
                        expected_generation: e.expected_generation,
                        found_generation: e.found_generation,
                        found_offset_bytes: e.found_offset_bytes,
                    }),
                    final_pass: s.final_pass.as_ref().map(JsonFinalPass::from),
                },
            }
        })
        .collect();
    let root = JsonRoot {
        version: format!("corepath-bench-{}", env!("CARGO_PKG_VERSION")),
        timestamp: report.timestamp_ms / 1000,
        timestamp_ms: report.timestamp_ms,
        time: ctime_utc(report.timestamp_ms / 1000),
        global_options: OptionMap(&report.options),
        jobs,
        final_pass: total_final_pass(&report.jobs).as_ref().map(JsonFinalPass::from),
        multipath: report.multipath.as_ref(),
    };
    // Plain structs of numbers and strings with string keys always serialize.
    serde_json::to_string_pretty(&root).unwrap_or_default()
}

/// `Tue Dec  8 04:05:40 2026`: C's `ctime()` without the newline, in UTC.
pub fn ctime_utc(unix_s: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_s / 86_400;
    let secs = unix_s % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        year
    )
}

// ---------------------------------------------------------------- normal

/// Scales a latency summary the way fio's `display_lat` does.
fn lat_unit(stat: &SampleStat) -> (&'static str, f64) {
    let (min, mean) = (stat.min(), stat.mean());
    if min > 1_000_000 && mean > 1_000_000.0 {
        ("msec", 1_000_000.0)
    } else if min > 1_000 && mean > 1_000.0 {
        ("usec", 1_000.0)
    } else {
        ("nsec", 1.0)
    }
}

fn write_lat_line(out: &mut String, name: &str, stat: &SampleStat) {
    let (unit, divisor) = lat_unit(stat);
    let scaled = |v: u64| num2str((v as f64 / divisor) as u64, Base::Decimal, "");
    let _ = writeln!(
        out,
        "{name} ({unit}): min={}, max={}, avg={:5.2}, stdev={:5.2}",
        scaled(stat.min()),
        scaled(stat.max()),
        stat.mean() / divisor,
        stat.stddev() / divisor
    );
}

fn write_percentiles(out: &mut String, dir: &DirStats) {
    const PER_LINE: usize = 4;
    let values: Vec<u64> = FIO_PERCENTILES.iter().map(|&p| dir.clat_percentile_ns(p)).collect();
    let (min, max) = (values.iter().copied().min().unwrap_or(0), values.iter().copied().max().unwrap_or(0));
    // fio's choice of unit for the percentile list.
    let (unit, divisor) = if min > 2_000_000 && max > 99_999_999 {
        ("msec", 1_000_000)
    } else if min > 2_000 && max > 99_999 {
        ("usec", 1_000)
    } else {
        ("nsec", 1)
    };
    // Nearest, not up as fio does: hdrhistogram reports a bucket's top value,
    // so rounding up would print 10 µs as 11.
    let scaled: Vec<u64> = values.iter().map(|v| (v + divisor / 2) / divisor).collect();
    let width = scaled.iter().map(|v| v.to_string().len()).max().unwrap_or(1).max(5);
    let _ = write!(out, "    clat percentiles ({unit}):\n     |");
    for (i, (p, v)) in FIO_PERCENTILES.iter().zip(&scaled).enumerate() {
        if i != 0 && i % PER_LINE == 0 {
            out.push_str("     |");
        }
        let last = i + 1 == scaled.len();
        let _ = write!(out, " {p:5.2}th=[{v:>width$}]{}", if last { "" } else { "," });
        if last || i % PER_LINE == PER_LINE - 1 {
            out.push('\n');
        }
    }
    let summary = |p: f64| dir.clat_percentile_ns(p) as f64 / 1000.0;
    let _ = writeln!(
        out,
        "    clat summary (usec): p50={:.2}, p99={:.2}, p99.9={:.2}",
        summary(50.0),
        summary(99.0),
        summary(99.9)
    );
}

fn write_dir(out: &mut String, name: &str, dir: &DirStats, runtime_ms: u64, group_bw_bytes: u64) {
    if dir.ios == 0 && dir.io_errors == 0 {
        return;
    }
    let r = rates(dir, runtime_ms);
    let _ = writeln!(
        out,
        "  {name}: IOPS={}, BW={} ({})({}/{}msec)",
        num2str(r.iops.round() as u64, Base::Decimal, ""),
        num2str(r.bw_bytes, Base::Binary, "B/s"),
        num2str(r.bw_bytes, Base::Decimal, "B/s"),
        num2str(dir.bytes, Base::Binary, "B"),
        r.runtime_ms
    );
    if dir.ios > 0 {
        write_lat_line(out, "    clat", &dir.clat_ns);
        write_lat_line(out, "     lat", &dir.clat_ns);
        write_percentiles(out, dir);
    }
    let bw = &dir.bw_kib_per_s;
    if bw.count() > 0 {
        let group_kib = (group_bw_bytes / 1024).max(1) as f64;
        let _ = writeln!(
            out,
            "   bw (  KiB/s): min={:5}, max={:5}, per={:3.2}%, avg={:5.2}, stdev={:5.2}, samples={}",
            bw.min(),
            bw.max(),
            bw.mean() * 100.0 / group_kib,
            bw.mean(),
            bw.stddev(),
            bw.count()
        );
        let iops = &dir.iops;
        let _ = writeln!(
            out,
            "   iops        : min={:5}, max={:5}, avg={:5.2}, stdev={:5.2}, samples={}",
            iops.min(),
            iops.max(),
            iops.mean(),
            iops.stddev(),
            iops.count()
        );
    }
}

/// fio's human-readable report.
pub fn normal_report(report: &RunReport) -> String {
    let entries = report.entries();
    let group_bw = [group_bw_bytes(&entries, IoOp::Read), group_bw_bytes(&entries, IoOp::Write)];
    let mut out = String::new();
    let jobs_per_entry = if report.group_reporting { report.jobs.len().max(1) } else { 1 };
    for job in &entries {
        let s = &job.stats;
        let runtime_ms = s.runtime_ms();
        let _ = writeln!(
            out,
            "{}: (groupid=0, jobs={}): err={:2}: core={}",
            job.name,
            jobs_per_entry,
            job.error_code(),
            job.core
        );
        write_dir(&mut out, "read", &s.read, runtime_ms, group_bw[0]);
        write_dir(&mut out, "write", &s.write, runtime_ms, group_bw[1]);
        let _ = writeln!(
            out,
            "  corepath: io_errors={} (read={}, write={}), verify_errors={}",
            s.io_errors(),
            s.read.io_errors,
            s.write.io_errors,
            s.verify_errors
        );
        if let Some(status) = s.first_io_error_status {
            let _ = writeln!(
                out,
                "  first io error: {} [status field {status:#06x}]",
                protocol::Status::from_field(status)
            );
        }
        if let Some(e) = s.first_verify_error {
            let _ = writeln!(out, "  first {e}");
        }
        if let Some(p) = &s.final_pass {
            write_final_pass_line(&mut out, "  final pass", p);
        }
        let _ = writeln!(
            out,
            "  cpu          : usr={:.2}%, sys={:.2}%, ctx={}, majf=0, minf=0",
            s.cpu.usr_pct(),
            s.cpu.sys_pct(),
            s.cpu.ctx
        );
        let depths: Vec<String> =
            IODEPTH_LEVEL_KEYS.iter().zip(s.iodepth_level_pct()).map(|(k, p)| format!("{k}={p:.1}%")).collect();
        let _ = writeln!(out, "  IO depths    : {}", depths.join(", "));
    }
    let _ = writeln!(out, "\nRun status group 0 (all jobs):");
    for (label, op) in [("   READ", IoOp::Read), ("  WRITE", IoOp::Write)] {
        let total_bytes: u64 = report.jobs.iter().map(|j| j.stats.dir(op).bytes).sum();
        if total_bytes == 0 {
            continue;
        }
        let per_job: Vec<u64> =
            report.jobs.iter().map(|j| rates(j.stats.dir(op), j.stats.runtime_ms()).bw_bytes).collect();
        let runtimes: Vec<u64> = report.jobs.iter().map(|j| j.stats.runtime_ms()).collect();
        let agg = group_bw_bytes(&report.jobs, op);
        let (min_bw, max_bw) = (per_job.iter().copied().min().unwrap_or(0), per_job.iter().copied().max().unwrap_or(0));
        let _ = writeln!(
            out,
            "{label}: bw={} ({}), {}-{} ({}-{}), io={} ({}), run={}-{}msec",
            num2str(agg, Base::Binary, "B/s"),
            num2str(agg, Base::Decimal, "B/s"),
            num2str(min_bw, Base::Binary, "B/s"),
            num2str(max_bw, Base::Binary, "B/s"),
            num2str(min_bw, Base::Decimal, "B/s"),
            num2str(max_bw, Base::Decimal, "B/s"),
            num2str(total_bytes, Base::Binary, "B"),
            num2str(total_bytes, Base::Decimal, "B"),
            runtimes.iter().copied().min().unwrap_or(0),
            runtimes.iter().copied().max().unwrap_or(0)
        );
    }
    if let Some(p) = total_final_pass(&report.jobs) {
        write_final_pass_line(&mut out, "  FINAL PASS (all jobs)", &p);
    }
    if let Some(mp) = &report.multipath {
        out.push_str(&normal_text(mp));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{VerifyError, VerifyErrorKind};

    /// A job with 1000 reads of 1..=1000 µs and 10 writes over 2 s.
    fn sample_job(core: u32) -> JobReport {
        let mut stats = JobStats::new();
        stats.begin(0);
        for i in 1..=1000u64 {
            stats.record_completion(IoOp::Read, i * 1000, 4096);
            stats.sample_rates(i * 2_000_000);
        }
        for _ in 0..10 {
            stats.record_completion(IoOp::Write, 50_000, 131_072);
        }
        stats.finish(2_000_000_000);
        JobReport { name: "corepath".into(), job_index: core, core, stats }
    }

    fn json(report: &RunReport) -> serde_json::Value {
        serde_json::from_str(&json_report(report)).unwrap()
    }

    fn report(jobs: Vec<JobReport>, group: bool) -> RunReport {
        RunReport {
            jobs,
            options: vec![("rw", "randrw".into()), ("bs", "4k".into())],
            timestamp_ms: 1_700_000_000_123,
            group_reporting: group,
            multipath: None,
        }
    }

    #[test]
    fn json_has_fios_field_names_and_histogram_numbers() {
        let job = sample_job(1);
        let hist = job.stats.read.clat_hist_ns.clone();
        let v = json(&report(vec![job], false));
        assert!(v["fio version"].as_str().unwrap().starts_with("corepath-bench-"));
        assert_eq!(v["time"], "Tue Nov 14 22:13:20 2023");
        assert_eq!(v["timestamp"], 1_700_000_000);
        assert_eq!(v["timestamp_ms"], 1_700_000_000_123u64);
        assert_eq!(v["global options"]["rw"], "randrw");
        let j = &v["jobs"][0];
        assert_eq!(j["jobname"], "corepath");
        assert_eq!(j["error"], 0);
        assert_eq!(j["job_runtime"], 2000);
        let read = &j["read"];
        assert_eq!(read["io_bytes"], 1000 * 4096);
        assert_eq!(read["io_kbytes"], 4000);
        assert_eq!(read["bw_bytes"], 2_048_000);
        assert_eq!(read["bw"], 2000);
        assert_eq!(read["iops"], 500.0);
        assert_eq!(read["runtime"], 2000);
        assert_eq!(read["total_ios"], 1000);
        let clat = &read["clat_ns"];
        assert_eq!(clat["N"], 1000);
        assert_eq!(clat["min"], 1000);
        assert_eq!(clat["max"], 1_000_000);
        assert!((clat["mean"].as_f64().unwrap() - 500_500.0).abs() < 1e-6);
        let percentiles = clat["percentile"].as_object().unwrap();
        let names: Vec<&str> = percentiles.keys().map(String::as_str).collect();
        for name in [
            "1.000000",
            "5.000000",
            "10.000000",
            "20.000000",
            "30.000000",
            "40.000000",
            "50.000000",
            "60.000000",
            "70.000000",
            "80.000000",
            "90.000000",
            "95.000000",
            "99.000000",
            "99.500000",
            "99.900000",
            "99.950000",
            "99.990000",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert_eq!(percentiles.len(), 17);
        // Rank ⌈p·N⌉ of 1..=1000 µs is p·10 µs, as the histogram resolves it.
        assert_eq!(clat["percentile"]["50.000000"], hist.highest_equivalent(500_000));
        assert_eq!(clat["percentile"]["99.900000"], hist.highest_equivalent(999_000));
        assert_eq!(clat["percentile"]["1.000000"], hist.highest_equivalent(10_000));
        assert_eq!(read["lat_ns"]["N"], 1000);
        assert!(read["lat_ns"].get("percentile").is_none());
        assert_eq!(read["slat_ns"]["N"], 0);
        assert_eq!(read["iops_samples"], 4);
        assert_eq!(j["write"]["total_ios"], 10);
        assert_eq!(j["write"]["bw_samples"], 0);
        assert_eq!(j["trim"]["total_ios"], 0);
        assert_eq!(j["corepath"]["verify_errors"], 0);
        assert_eq!(j["corepath"]["core"], 1);
    }

    #[test]
    fn multipath_runs_add_paths_and_failover_events_to_both_reports() {
        use crate::failover::{FailoverEvent, PathCount};
        let mut r = report(vec![sample_job(0)], false);
        assert!(json(&r).get("multipath").is_none());
        r.multipath = Some(MultipathReport {
            bdev: "Nvme0n1".into(),
            policy: "active_passive".into(),
            paths: vec![PathCount { path: "127.0.0.3:4420".into(), cntlid: 32761, state: "enabled".into(), ios: 9 }],
            events: vec![FailoverEvent {
                at_ms: 5.0,
                path: "127.0.0.2:4420".into(),
                what: "failed (peer closed): x".into(),
                longest_gap_ms: 3.5,
                gap_start_ms: 4.0,
                gap_core: Some(0),
                max_latency_ms: 4.0,
                io_errors: 0,
            }],
            retries: 2,
            failed_no_path: 0,
            held_max: 1,
            io_errors: 0,
            verify_errors: 0,
            first_io_error_ms: None,
            last_io_error_ms: None,
        });
        let v = json(&r);
        assert!(v["multipath"]["first_io_error_ms"].is_null(), "{v:#}");
        assert!(v["multipath"]["last_io_error_ms"].is_null(), "{v:#}");
        assert_eq!(v["multipath"]["paths"][0]["ios"], 9);
        assert_eq!(v["multipath"]["events"][0]["longest_gap_ms"], 3.5);
        assert_eq!(v["multipath"]["events"][0]["gap_core"], 0);
        assert_eq!(v["multipath"]["io_errors"], 0);
        assert!(normal_report(&r).contains("Failover report (1 path events):"));
        if let Some(mp) = r.multipath.as_mut() {
            mp.io_errors = 4;
            mp.first_io_error_ms = Some(5003.5);
            mp.last_io_error_ms = Some(5040.0);
        }
        let v = json(&r);
        assert_eq!(v["multipath"]["first_io_error_ms"], 5003.5);
        assert_eq!(v["multipath"]["last_io_error_ms"], 5040.0);
        assert!(normal_report(&r).contains("first_io_error=5003.5 ms last_io_error=5040.0 ms"));
    }

    #[test]
    fn final_pass_is_reported_per_job_and_in_total() {
        let plain = json(&report(vec![sample_job(0)], false));
        assert!(plain.get("final_pass").is_none());
        assert!(plain["jobs"][0]["corepath"].get("final_pass").is_none());
        assert!(!normal_report(&report(vec![sample_job(0)], false)).contains("final pass"));

        let pass = |checked, skipped, errors, start_ms: u64, end_ms: u64| FinalPassStats {
            units_checked: checked,
            units_skipped: skipped,
            verify_errors: errors,
            io_errors: 0,
            start_ns: start_ms * 1_000_000,
            end_ns: end_ms * 1_000_000,
        };
        let mut a = sample_job(0);
        a.stats.final_pass = Some(pass(100, 2, 0, 2000, 2040));
        let mut b = sample_job(1);
        b.stats.final_pass = Some(pass(50, 0, 1, 2001, 2030));
        let r = report(vec![a, b], false);
        let v = json(&r);
        let job_pass = &v["jobs"][0]["corepath"]["final_pass"];
        assert_eq!(job_pass["units_checked"], 100);
        assert_eq!(job_pass["units_skipped"], 2);
        assert_eq!(job_pass["verify_errors"], 0);
        assert_eq!(job_pass["duration_ms"], 40.0);
        assert_eq!(v["jobs"][1]["corepath"]["final_pass"]["verify_errors"], 1);
        let total = &v["final_pass"];
        assert_eq!(total["units_checked"], 150);
        assert_eq!(total["units_skipped"], 2);
        assert_eq!(total["verify_errors"], 1);
        assert_eq!(total["duration_ms"], 40.0);
        // The pass's reads are not in the measured IO.
        assert_eq!(v["jobs"][0]["read"]["total_ios"], 1000);
        let text = normal_report(&r);
        assert!(
            text.contains(
                "  final pass: units_checked=100, units_skipped=2, verify_errors=0, io_errors=0, duration=40.0msec"
            ),
            "{text}"
        );
        assert!(
            text.contains("  FINAL PASS (all jobs): units_checked=150, units_skipped=2, verify_errors=1"),
            "{text}"
        );
        let grouped = json(&report(r.jobs.clone(), true));
        assert_eq!(grouped["jobs"][0]["corepath"]["final_pass"]["units_checked"], 150);
    }

    #[test]
    fn json_keeps_fios_key_order_for_percentiles() {
        let text = json_report(&report(vec![sample_job(0)], false));
        let one = text.find("\"1.000000\"").unwrap();
        let five = text.find("\"5.000000\"").unwrap();
        let ten = text.find("\"10.000000\"").unwrap();
        assert!(one < five && five < ten);
    }

    #[test]
    fn errors_set_fio_error_codes_and_corepath_details() {
        let mut job = sample_job(0);
        job.stats.record_io_error(IoOp::Read, 0x0371);
        let mut bad = sample_job(1);
        bad.stats.record_verify_error(VerifyError {
            kind: VerifyErrorKind::Misplaced,
            offset_bytes: 8192,
            expected_generation: 3,
            found_generation: 3,
            found_offset_bytes: 4096,
        });
        assert_eq!(job.error_code(), EIO);
        assert_eq!(bad.error_code(), EILSEQ);
        let r = report(vec![job, bad], false);
        assert_eq!(r.exit_code(), 1);
        let v = json(&r);
        assert_eq!(v["jobs"][0]["error"], EIO);
        assert_eq!(v["jobs"][0]["corepath"]["read_io_errors"], 1);
        assert_eq!(v["jobs"][0]["corepath"]["first_io_error_status"], 0x371);
        assert_eq!(v["jobs"][1]["corepath"]["first_verify_error"]["kind"], "misplaced");
        assert_eq!(v["jobs"][1]["corepath"]["first_verify_error"]["found_offset_bytes"], 4096);
        let text = normal_report(&r);
        assert!(text.contains("err= 5"), "{text}");
        assert!(text.contains("verify: misplaced sector at offset 8192"), "{text}");
        assert_eq!(report(vec![sample_job(0)], false).exit_code(), 0);
    }

    #[test]
    fn group_reporting_merges_jobs_into_one_entry() {
        let v = json(&report(vec![sample_job(0), sample_job(1)], true));
        let jobs = v["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0]["read"]["total_ios"], 2000);
        assert_eq!(jobs[0]["read"]["clat_ns"]["N"], 2000);
        assert_eq!(jobs[0]["read"]["bw_bytes"], 4_096_000);
        let separate = json(&report(vec![sample_job(0), sample_job(1)], false));
        assert_eq!(separate["jobs"].as_array().unwrap().len(), 2);
        let agg = separate["jobs"][0]["read"]["bw_agg"].as_f64().unwrap();
        assert!((45.0..55.0).contains(&agg), "{agg}");
    }

    #[test]
    fn normal_report_looks_like_fio() {
        let text = normal_report(&report(vec![sample_job(0)], false));
        assert!(text.starts_with("corepath: (groupid=0, jobs=1): err= 0: core=0\n"), "{text}");
        assert!(text.contains("  read: IOPS=500, BW=2000KiB/s (2048kB/s)(4000KiB/2000msec)\n"), "{text}");
        assert!(text.contains("    clat (nsec): min=1000, max=1000k, avg=500500.00, stdev=288819.44\n"), "{text}");
        assert!(text.contains("    clat (usec): min=50, max=50, avg=50.00, stdev= 0.00\n"), "{text}");
        assert!(text.contains("    clat percentiles (usec):\n     |  1.00th=[   10],  5.00th=[   50],"), "{text}");
        assert!(text.contains(" 99.99th=[ 1000]\n"), "{text}");
        assert!(text.contains("    clat summary (usec): p50="), "{text}");
        assert!(text.contains("   bw (  KiB/s): min="), "{text}");
        assert!(text.contains("  write: IOPS=5, BW=640KiB/s (655kB/s)(1280KiB/2000msec)\n"), "{text}");
        assert!(text.contains("Run status group 0 (all jobs):\n   READ: bw=2000KiB/s (2048kB/s)"), "{text}");
        assert!(text.contains("io=4000KiB (4096kB), run=2000-2000msec"), "{text}");
        assert_eq!(text.matches("th=[").count(), 17 * 2, "{text}");
    }

    #[test]
    fn json_jobs_carry_their_options_cpu_use_and_latency_buckets_as_fio() {
        let mut job = sample_job(2);
        job.stats.cpu = crate::stats::CpuUsage { usr_ns: 100, sys_ns: 300, ctx: 7, wall_ns: 1000 };
        let v = json(&report(vec![job], false));
        let j = &v["jobs"][0];
        let options = j["job options"].as_object().unwrap();
        let keys: Vec<&str> = options.keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "rw", "bs", "cpus_allowed"]);
        assert_eq!(j["job options"]["rw"], "randrw");
        assert_eq!(j["job options"]["cpus_allowed"], "2");
        assert_eq!(
            (j["usr_cpu"].as_f64(), j["sys_cpu"].as_f64(), j["ctx"].as_u64()),
            (Some(10.0), Some(30.0), Some(7))
        );
        // 1000 reads of 1..=1000 µs and 10 writes of 50 µs: 1010 IOs.
        let us = j["latency_us"].as_object().unwrap();
        assert_eq!(us.keys().map(String::as_str).collect::<Vec<_>>(), LATENCY_KEYS.map(|k| k.to_string()));
        let total: f64 = us.values().map(|v| v.as_f64().unwrap()).sum::<f64>()
            + j["latency_ms"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum::<f64>()
            + j["latency_ns"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum::<f64>();
        assert!((total - 100.0).abs() < 1e-6, "{total}");
        assert!(j["latency_ms"].get(">=2000").is_some());
        let depth_keys: Vec<&str> = j["iodepth_level"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(depth_keys, IODEPTH_LEVEL_KEYS);
        assert_eq!(ctime_utc(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime_utc(1_796_702_740), "Tue Dec  8 04:05:40 2026");
    }

    #[test]
    fn the_first_io_error_is_named_as_the_spec_names_it() {
        let mut job = sample_job(0);
        let invalid_field = protocol::Status::generic(protocol::status::generic::INVALID_FIELD).with_dnr();
        job.stats.record_io_error(IoOp::Write, invalid_field.to_field());
        let text = normal_report(&report(vec![job], false));
        assert!(
            text.contains("  first io error: Invalid Field in Command (sct 0, sc 0x02, dnr) [status field 0x8004]\n"),
            "{text}"
        );
    }
}
