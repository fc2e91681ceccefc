//! The command line (fio's option names where fio has one) and the validated
//! [`BenchConfig`] made from it.

use core::str::FromStr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use engine::TransportId;

use crate::size::{format_size, parse_size};
use crate::workload::RwPattern;

/// The seed used when `--seed` is not given, so that runs repeat by default.
pub const DEFAULT_SEED: u64 = 0x00C0_4E9A_7B3E_5EED;

/// Most cores a mask may name.
pub const MAX_CORES: u32 = 1024;

/// Most jobs `--numjobs` may ask for.
pub const MAX_JOBS: u32 = 4096;

const LONG_ABOUT: &str = "\
A fio-like load generator for corepath's NVMe-oF host engine.

Each core in --cpumask runs one job that keeps --iodepth IOs outstanding for
--runtime seconds (time based, as fio's --time_based), after --ramp_time seconds
that are not measured.

Target: give one --trid per path to a remote controller, e.g.
  --trid 'trtype:tcp adrfam:ipv4 traddr:127.0.0.2 trsvcid:4420 subnqn:nqn.2021-06.io.spdk:ctc_rbd0'
Several --trid (or --multipath, --config, --rpc-socket) attach every path as
controller Nvme0 (SPDK's bdev_nvme_attach_controller -x multipath) and run IO on
Nvme0n1 through multipath, with per-path IO counts and a failover report. One
--trid without those uses the engine's raw single-path IO (the perf baseline).
--config FILE replays an SPDK JSON config's bdev_nvme_attach_controller calls.

Without --trid, corepath-bench starts in-process gateways and runs against them
(--embedded is then implied): two gateways on 127.0.0.2 and 127.0.0.3 serving
one shared file (bdev_aio_create), both attached in multipath mode; gateway A
is stopped mid-run (--kill-a-after) and the failover report shows what the host
saw. --gateways 1 runs the old single gateway with a malloc namespace. With
both --embedded and --trid, the in-process gateways listen on the given addresses.

--verify stamps every written block with its offset, a generation and a CRC and
checks every read against the last acknowledged write; jobs then use disjoint
parts of the region and never have two IOs on one block at once. As in fio, a
run verifies only what it wrote itself: blocks it has not written yet hold
whatever earlier runs left and are not checked.

fio users: --name, --numjobs, --rw, --bs, --iodepth, --size, --offset,
--runtime, --ramp_time, --rate_iops, --group_reporting, --output-format and
--filename (here the bdev, e.g. Nvme0n1) mean what they mean in fio;
--ioengine and --direct are accepted and ignored with a note on stderr (IO
always goes through corepath's own polled NVMe-oF host, which has no page
cache: --direct=1 is what always happens). Ctrl-C stops the jobs and prints the
report of what ran so far (exit status 128, as fio).";

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// fio's human-readable report.
    Normal,
    /// fio's JSON report (same field names), plus a "corepath" object per job.
    Json,
}

/// SPDK's `-x` for the bench's attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MultipathArg {
    /// Each trid is a path (a controller) of Nvme0; IO by the policy.
    Multipath,
    /// Later trids are alternates, used when the first fails (active_passive).
    Failover,
}

impl MultipathArg {
    /// SPDK's name.
    pub fn spdk_name(self) -> &'static str {
        match self {
            MultipathArg::Multipath => "multipath",
            MultipathArg::Failover => "failover",
        }
    }
}

/// `bdev_nvme_set_multipath_policy -p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// One path at a time (the default).
    #[value(name = "active_passive")]
    ActivePassive,
    /// Every optimized path.
    #[value(name = "active_active")]
    ActiveActive,
}

/// `bdev_nvme_set_multipath_policy -s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SelectorArg {
    /// In turn.
    #[value(name = "round_robin")]
    RoundRobin,
    /// Fewest outstanding IOs.
    #[value(name = "queue_depth")]
    QueueDepth,
}

/// `bdev_nvme_set_options -a`: what a timed-out IO command leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeoutActionArg {
    /// Record it and keep waiting.
    None,
    /// Reset the controller (its IOs move to another path).
    Reset,
    /// Abort the command; reset when that is refused or unanswered.
    Abort,
}

impl TimeoutActionArg {
    /// The engine's action.
    pub fn action(self) -> engine::TimeoutAction {
        match self {
            TimeoutActionArg::None => engine::TimeoutAction::None,
            TimeoutActionArg::Reset => engine::TimeoutAction::Reset,
            TimeoutActionArg::Abort => engine::TimeoutAction::Abort,
        }
    }
}

/// Cores as given by `--cpumask`, ascending and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreList(pub Vec<u32>);

/// Why a core mask was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpumaskError {
    /// Not a hex mask or core list.
    #[error("'{0}' is neither a hex mask (0x3) nor a core list (1,3 or [0-2,5])")]
    Malformed(String),
    /// A core number beyond [`MAX_CORES`].
    #[error("core {0} is beyond the limit of {MAX_CORES} cores")]
    CoreTooLarge(u64),
    /// No core selected.
    #[error("the core mask selects no core")]
    Empty,
    /// A range whose end is below its start.
    #[error("range {0} runs backwards")]
    BackwardsRange(String),
}

/// Parses an SPDK-style core mask: a hex mask with or without `0x` (`0x2`,
/// `ff`), or a core list of numbers and ranges, optionally in brackets
/// (`1,3`, `[0-2,5]`). A bare number is a hex mask, as in SPDK (`3` = cores 0
/// and 1); write `[3]` for core 3 alone.
pub fn parse_cpumask(text: &str) -> Result<CoreList, CpumaskError> {
    let text = text.trim();
    let malformed = || CpumaskError::Malformed(text.to_string());
    let mut cores = Vec::new();
    let is_list = text.starts_with('[') || text.contains(',') || text.contains('-');
    if is_list {
        let inner = text.strip_prefix('[').map_or(Some(text), |t| t.strip_suffix(']')).ok_or_else(malformed)?;
        for item in inner.split(',') {
            let item = item.trim();
            let (first, last) = match item.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (item, item),
            };
            let first: u64 = first.parse().map_err(|_| malformed())?;
            let last: u64 = last.parse().map_err(|_| malformed())?;
            if last < first {
                return Err(CpumaskError::BackwardsRange(item.to_string()));
            }
            if last >= u64::from(MAX_CORES) {
                return Err(CpumaskError::CoreTooLarge(last));
            }
            cores.extend(first as u32..=last as u32);
        }
    } else {
        let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
        if hex.is_empty() {
            return Err(malformed());
        }
        for (position, digit) in hex.chars().rev().enumerate() {
            let nibble = digit.to_digit(16).ok_or_else(malformed)?;
            for bit in 0..4u64 {
                if nibble & (1 << bit) != 0 {
                    let core = position as u64 * 4 + bit;
                    if core >= u64::from(MAX_CORES) {
                        return Err(CpumaskError::CoreTooLarge(core));
                    }
                    cores.push(core as u32);
                }
            }
        }
    }
    cores.sort_unstable();
    cores.dedup();
    if cores.is_empty() {
        return Err(CpumaskError::Empty);
    }
    Ok(CoreList(cores))
}

impl FromStr for CoreList {
    type Err = CpumaskError;
    fn from_str(s: &str) -> Result<Self, CpumaskError> {
        parse_cpumask(s)
    }
}

/// `corepath-bench`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "corepath-bench", version, about = "fio-like load generator for corepath", long_about = LONG_ABOUT)]
pub struct Args {
    /// Remote controller path, SPDK transport ID form; repeat it for each path
    /// (multipath). Without it, in-process gateways are started (see --embedded).
    #[arg(long = "trid", value_name = "TRID")]
    pub trid: Vec<TransportId>,

    /// Start in-process gateways and run against them (the default without --trid).
    #[arg(long)]
    pub embedded: bool,

    /// Attach every path as Nvme0 in this mode (SPDK's -x); implied by several --trid.
    #[arg(long, value_enum, value_name = "MODE")]
    pub multipath: Option<MultipathArg>,

    /// Seconds to keep reconnecting a lost path; -1 = forever, 0 = never (SPDK's -l).
    #[arg(short = 'l', long = "ctrlr-loss-timeout-sec", value_name = "SECS", default_value_t = -1,
          allow_negative_numbers = true)]
    pub ctrlr_loss_timeout_sec: i64,

    /// Seconds between reconnect attempts (SPDK's -o; default 1, or 0 with -l 0).
    #[arg(short = 'o', long = "reconnect-delay-sec", value_name = "SECS")]
    pub reconnect_delay_sec: Option<u64>,

    /// Seconds without any path after which held IOs fail; 0 = hold (SPDK's -u).
    #[arg(short = 'u', long = "fast-io-fail-timeout-sec", value_name = "SECS", default_value_t = 0)]
    pub fast_io_fail_timeout_sec: u64,

    /// Keep-alive timeout of each path, ms (default: the engine's, 10 s).
    #[arg(long = "keep-alive-ms", value_name = "MS")]
    pub keep_alive_ms: Option<u32>,

    /// IO command timeout, µs; 0 = none (SPDK's bdev_nvme_set_options -t).
    #[arg(long = "timeout-us", value_name = "US", default_value_t = 0)]
    pub timeout_us: u64,

    /// Admin command timeout, µs; 0 = as --timeout-us (SPDK's --timeout-admin-us).
    #[arg(long = "timeout-admin-us", value_name = "US", default_value_t = 0)]
    pub timeout_admin_us: u64,

    /// What a timed-out IO command leads to (SPDK's -a).
    #[arg(long = "action-on-timeout", value_enum, value_name = "ACTION", default_value = "abort")]
    pub action_on_timeout: TimeoutActionArg,

    /// Multipath policy of the bdev.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub policy: Option<PolicyArg>,

    /// active_active path selector.
    #[arg(long, value_enum, value_name = "SELECTOR")]
    pub selector: Option<SelectorArg>,

    /// active_active round_robin: IOs per path before moving on.
    #[arg(long = "rr-min-io", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rr_min_io: Option<u32>,

    /// An SPDK JSON config whose bdev_nvme_attach_controller (and other host) calls
    /// are run before the jobs; IO goes to its first bdev.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Serve the host RPC (bdev_nvme_get_controllers, bdev_nvme_get_io_paths, ...)
    /// on this Unix socket while the run goes.
    #[arg(long = "rpc-socket", value_name = "PATH")]
    pub rpc_socket: Option<PathBuf>,

    /// Embedded mode: 2 gateways on one shared file (multipath, the default) or
    /// 1 gateway with a malloc namespace (single path).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub gateways: u8,

    /// Embedded, 2 gateways: stop gateway A this many seconds into the run
    /// (default: half the ramp + runtime; 0: never).
    #[arg(long = "kill-a-after", value_name = "SECS")]
    pub kill_a_after: Option<f64>,

    /// Embedded, 2 gateways: the shared file (default /var/tmp/corepath-bench-PID.img,
    /// deleted after the run; a given file is kept). Must allow O_DIRECT (not tmpfs).
    #[arg(long = "embedded-file", value_name = "PATH")]
    pub embedded_file: Option<PathBuf>,

    /// Access pattern: read, write, randread, randwrite, randrw, rw (= readwrite).
    #[arg(long, value_name = "PATTERN", default_value = "read")]
    pub rw: RwPattern,

    /// Percentage of reads in mixed patterns.
    #[arg(long, value_name = "PCT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub rwmixread: u8,

    /// Percentage of writes in mixed patterns (overrides --rwmixread).
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub rwmixwrite: Option<u8>,

    /// Block size of each IO (4k, 128k, 1m, 512...); a multiple of the namespace's block size.
    #[arg(long, value_name = "SIZE", default_value = "4k", value_parser = parse_size)]
    pub bs: u64,

    /// IOs kept outstanding per job (core).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub iodepth: u16,

    /// Cores to run jobs on, one job each: hex mask (0x3) or list (1,3 / [0-2]).
    #[arg(long, value_name = "MASK", default_value = "0x1")]
    pub cpumask: CoreList,

    /// Jobs in total (fio's numjobs: that many copies of the job), placed on
    /// the --cpumask cores in turn (default: one per core; fewer jobs than
    /// cores use the first cores only).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_JOBS as i64))]
    pub numjobs: Option<u32>,

    /// The bdev to run on, as SPDK names it (fio's --filename), e.g. Nvme0n1
    /// (default: the first namespace found). An unknown name is refused with
    /// the list of those there are.
    #[arg(long, value_name = "BDEV")]
    pub filename: Option<String>,

    /// Accepted for fio command lines and ignored, with a note on stderr: IO
    /// always goes through corepath's own NVMe-oF host engine.
    #[arg(long, value_name = "ENGINE")]
    pub ioengine: Option<String>,

    /// Accepted for fio command lines and ignored, with a note on stderr when
    /// 0: the host engine has no page cache, every IO goes to the target.
    #[arg(long, value_name = "0|1", value_parser = clap::value_parser!(u8).range(0..=1))]
    pub direct: Option<u8>,

    /// Measured run time in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub runtime: u64,

    /// Accepted for fio compatibility: runs are always time based.
    #[arg(long = "time_based", alias = "time-based")]
    pub time_based: bool,

    /// Seconds of load before measuring starts.
    #[arg(long = "ramp_time", alias = "ramp-time", value_name = "SECS", default_value_t = 0)]
    pub ramp_time: u64,

    /// Caps each job at N IOPS (reads and writes each), or R reads and W writes with R,W (fio's rate_iops).
    #[arg(long = "rate_iops", alias = "rate-iops", value_name = "N|R,W", value_parser = parse_rate_iops)]
    pub rate_iops: Option<RateIops>,

    /// What the host reactors do when idle: busy (spin), adaptive (spin, then sleep) or interrupt (sleep at once).
    #[arg(long, value_name = "MODE", default_value = "adaptive")]
    pub idle: String,

    /// With --idle adaptive: microseconds of idle spinning before a reactor sleeps.
    #[arg(long = "idle_spin_us", alias = "idle-spin-us", value_name = "US", default_value_t = 50)]
    pub idle_spin_us: u64,

    /// Bytes of the namespace to use, from --offset (default: to the end).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub size: Option<u64>,

    /// Where the used region starts, in bytes.
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = parse_size)]
    pub offset: u64,

    /// Stamp written blocks and check every read (see above).
    #[arg(long)]
    pub verify: bool,

    /// With --verify: blocks not yet written must read as zeros (a fresh image).
    #[arg(long = "verify_expect_zero", alias = "verify-expect-zero")]
    pub verify_expect_zero: bool,

    /// With --verify: when the runtime is over, each job reads back every unit it
    /// wrote (in order, at its iodepth, unmeasured) and checks it against the last
    /// acknowledged write.
    #[arg(long = "verify_final_pass", alias = "verify-final-pass")]
    pub verify_final_pass: bool,

    /// Report format.
    #[arg(long = "output-format", alias = "output_format", value_enum, default_value_t = OutputFormat::Normal)]
    pub output_format: OutputFormat,

    /// Seed of the IO generators (job i uses a seed derived from it and i).
    #[arg(long, alias = "randseed", value_name = "N")]
    pub seed: Option<u64>,

    /// Ask for the NVMe/TCP header digest.
    #[arg(long)]
    pub hdgst: bool,

    /// Ask for the NVMe/TCP data digest.
    #[arg(long)]
    pub ddgst: bool,

    /// Seconds between live status lines on a terminal's stderr (0: none).
    #[arg(long = "status-interval", alias = "status_interval", value_name = "SECS", default_value_t = 1)]
    pub status_interval: u64,

    /// Job name in reports (fio's --name).
    #[arg(long, value_name = "NAME", default_value = "corepath")]
    pub name: String,

    /// Report all jobs as one, as fio's --group_reporting.
    #[arg(long = "group_reporting", alias = "group-reporting")]
    pub group_reporting: bool,
}

/// What to run against.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetMode {
    /// Start gateways in this process; `listen` is where (empty: the glue's
    /// default loopback addresses).
    Embedded {
        /// Listen addresses, one per gateway.
        listen: Vec<TransportId>,
        /// 1: one gateway, malloc namespace; 2: two gateways on one shared file.
        gateways: u8,
        /// Stop gateway A this long after the jobs start (2 gateways only).
        kill_a_after_ns: Option<u64>,
        /// The shared file (`None`: a temporary one).
        file: Option<PathBuf>,
    },
    /// Connect to remote controllers, one transport ID per path.
    Remote {
        /// Paths, in priority order.
        trids: Vec<TransportId>,
    },
}

/// Why the options do not make a runnable configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--bs` not a positive multiple of 512 bytes (the smallest NVMe block).
    #[error("--bs {0} is not a positive multiple of 512")]
    BadBlockSize(u64),
    /// `--bs` larger than one command can carry here.
    #[error("--bs {0} is larger than 4 GiB - 1")]
    BlockSizeTooLarge(u64),
    /// `--rwmixread` and `--rwmixwrite` disagree.
    #[error("--rwmixread {read} and --rwmixwrite {write} do not add up to 100")]
    RwmixConflict {
        /// Read share.
        read: u8,
        /// Write share.
        write: u8,
    },
    /// `--size 0`.
    #[error("--size must not be 0")]
    ZeroSize,
    /// `--verify_expect_zero` without `--verify`.
    #[error("--verify_expect_zero needs --verify")]
    ExpectZeroWithoutVerify,
    /// `--verify_final_pass` without `--verify`.
    #[error("--verify_final_pass needs --verify")]
    FinalPassWithoutVerify,
    /// `-l/-o/-u` that SPDK would refuse.
    #[error("{0}")]
    Resiliency(String),
    /// `--selector`/`--rr-min-io` without `--policy active_active`.
    #[error("--selector and --rr-min-io need --policy active_active")]
    SelectorWithoutActiveActive,
    /// `--idle` that is not a known mode.
    #[error("--idle: {0}")]
    BadIdle(String),
    /// A negative or non-finite `--kill-a-after`.
    #[error("--kill-a-after must be a number of seconds >= 0")]
    BadKillTime,
    /// A remote `--trid` without `subnqn` (it would connect to the discovery service).
    #[error(
        "--trid '{0}' names no subnqn, so it would reach the discovery service ({DISCOVERY}), which has no \
         namespaces: add subnqn:<NQN of the subsystem> (`nvme discover -t tcp -a <traddr> -s <trsvcid>` lists them)",
        DISCOVERY = protocol::DISCOVERY_NQN
    )]
    DiscoveryNqn(String),
    /// `--cpumask` names cores this process cannot run on.
    #[error(
        "--cpumask names {}, which this machine does not have or this process may not use \
         (cores available: {available})",
        name_cores(missing)
    )]
    NoSuchCores {
        /// The cores of the mask that are not available.
        missing: Vec<u32>,
        /// The cores that are, as a list (`0-1`).
        available: String,
    },
}

fn name_cores(cores: &[u32]) -> String {
    let list: Vec<String> = cores.iter().map(u32::to_string).collect();
    match list.len() {
        1 => format!("core {}", list[0]),
        _ => format!("cores {}", list.join(", ")),
    }
}

/// The cores this process may run on: its affinity (`Cpus_allowed_list` of
/// /proc/self/status), else the online CPUs, else 0..available_parallelism.
pub fn available_cores() -> Vec<u32> {
    let from_list = |text: &str| parse_cpumask(&format!("[{}]", text.trim())).ok().map(|l| l.0);
    let affinity = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).and_then(&from_list));
    affinity
        .or_else(|| std::fs::read_to_string("/sys/devices/system/cpu/online").ok().and_then(|t| from_list(&t)))
        .unwrap_or_else(|| (0..std::thread::available_parallelism().map_or(1, |n| n.get() as u32)).collect())
}

/// `0-3,6` for cores 0, 1, 2, 3 and 6.
pub fn format_core_list(cores: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&first) = cores.get(i) {
        let mut last = first;
        while cores.get(i + 1) == Some(&(last + 1)) {
            last += 1;
            i += 1;
        }
        parts.push(if first == last { first.to_string() } else { format!("{first}-{last}") });
        i += 1;
    }
    parts.join(",")
}

/// How the host attaches and uses paths (multipath mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathOptions {
    /// `--multipath`: the `-x` of each attach (`None`: one path, raw engine IO,
    /// unless a config file, several trids or an RPC socket ask for multipath).
    pub mode: Option<MultipathArg>,
    /// SPDK's -l.
    pub ctrlr_loss_timeout_sec: i64,
    /// SPDK's -o.
    pub reconnect_delay_sec: u64,
    /// SPDK's -u.
    pub fast_io_fail_timeout_sec: u64,
    /// Keep-alive timeout (`None`: the engine's default).
    pub keep_alive_ms: Option<u32>,
    /// IO command timeout, µs (0: none).
    pub timeout_us: u64,
    /// Admin command timeout, µs (0: as `timeout_us`).
    pub timeout_admin_us: u64,
    /// What a timed-out IO command leads to.
    pub action_on_timeout: TimeoutActionArg,
    /// Path policy (`None`: the bdev's default, active_passive).
    pub policy: Option<PolicyArg>,
    /// active_active selector.
    pub selector: Option<SelectorArg>,
    /// Round-robin batch.
    pub rr_min_io: Option<u32>,
    /// Attach calls to replay (SPDK JSON config).
    pub config_file: Option<PathBuf>,
    /// Serve the host RPC here while running.
    pub rpc_socket: Option<PathBuf>,
}

impl PathOptions {
    /// Sets the keep-alive and command timeouts of `opts` as asked.
    pub fn apply_to(&self, opts: &mut engine::ControllerOptions) {
        if let Some(ms) = self.keep_alive_ms {
            opts.keep_alive_timeout_ms = ms;
        }
        // µs in, ms kept (the timeout scan runs every 10 ms): round up, never to 0.
        opts.io_timeout_ms = self.timeout_us.div_ceil(1000);
        opts.admin_timeout_ms = self.timeout_admin_us.div_ceil(1000);
        opts.action_on_timeout = self.action_on_timeout.action();
    }
}

/// The run to do, validated. Namespace-dependent checks (block size, region
/// within the namespace) happen in [`crate::plan::plan_jobs`].
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// What to run against.
    pub target: TargetMode,
    /// Multipath settings.
    pub paths: PathOptions,
    /// NVMe/TCP header digest.
    pub header_digest: bool,
    /// NVMe/TCP data digest.
    pub data_digest: bool,
    /// Access pattern.
    pub pattern: RwPattern,
    /// Read share for mixed patterns, percent.
    pub rwmixread_pct: u8,
    /// Bytes per IO.
    pub io_size_bytes: u32,
    /// Outstanding IOs per job.
    pub iodepth: u16,
    /// One job per core, in this order.
    pub cores: Vec<u32>,
    /// Measured time.
    pub runtime_ns: u64,
    /// Unmeasured warm-up.
    pub ramp_ns: u64,
    /// Start of the region.
    pub region_offset_bytes: u64,
    /// Length of the region (`None`: to the end of the namespace).
    pub region_size_bytes: Option<u64>,
    /// Verify data.
    pub verify: bool,
    /// Never-written blocks must read as zeros.
    pub verify_expect_zero: bool,
    /// Read back and check every written unit after the runtime.
    pub verify_final_pass: bool,
    /// Base seed.
    pub seed: u64,
    /// Report format.
    pub output_format: OutputFormat,
    /// Live status period (0: none).
    pub status_interval_ns: u64,
    /// Job name.
    pub job_name: String,
    /// Report jobs as one.
    pub group_reporting: bool,
    /// Per-job IOPS cap (`--rate_iops`).
    pub rate_iops: Option<RateIops>,
    /// Host reactors' idle policy.
    pub idle: engine::IdlePolicy,
    /// Jobs in total (`--numjobs`; default one per core).
    pub numjobs: u32,
    /// The bdev to run on (`--filename`; `None`: the first).
    pub filename: Option<String>,
    /// What the options given do not do here (fio options accepted and
    /// ignored), for stderr.
    pub notes: Vec<String>,
}

/// fio's `rate_iops`: a cap on reads and one on writes, per job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateIops {
    /// Reads per second at most.
    pub read: u32,
    /// Writes per second at most.
    pub write: u32,
}

impl RateIops {
    /// The pace of one job's IOs: the fastest total rate at which, with
    /// `rwmixread_pct` percent reads, neither cap is exceeded on average.
    /// `None` when that is no cap at all.
    pub fn interval_ns(&self, pattern: RwPattern, rwmixread_pct: u8) -> Option<u64> {
        let read_share = match pattern {
            RwPattern::Read | RwPattern::RandRead => 1.0,
            RwPattern::Write | RwPattern::RandWrite => 0.0,
            _ => f64::from(rwmixread_pct) / 100.0,
        };
        let cap = |rate: u32, share: f64| if share > 0.0 { f64::from(rate) / share } else { f64::INFINITY };
        let total = cap(self.read, read_share).min(cap(self.write, 1.0 - read_share));
        (total.is_finite() && total > 0.0).then(|| (1e9 / total).round().max(1.0) as u64)
    }
}

/// `N` (both) or `R,W`; 0 means no IO of that kind may be issued, as fio's does not allow: refused.
fn parse_rate_iops(s: &str) -> Result<RateIops, String> {
    let num = |v: &str| -> Result<u32, String> {
        match v.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("'{v}' is not a positive number of IOPS")),
        }
    };
    match s.split_once(',') {
        None => num(s).map(|n| RateIops { read: n, write: n }),
        Some((r, w)) => Ok(RateIops { read: num(r)?, write: num(w)? }),
    }
}

impl BenchConfig {
    /// IO goes through multipath (MpChannel on Nvme0n1) rather than the raw
    /// single-path engine API: several paths, an explicit mode, a config file,
    /// an RPC socket, a policy, or the two-gateway embedded default.
    pub fn uses_multipath(&self) -> bool {
        let p = &self.paths;
        let several = match &self.target {
            TargetMode::Remote { trids } => trids.len() > 1,
            TargetMode::Embedded { gateways, .. } => *gateways > 1,
        };
        several || p.mode.is_some() || p.config_file.is_some() || p.rpc_socket.is_some() || p.policy.is_some()
    }
}

const NS_PER_S: u64 = 1_000_000_000;

impl BenchConfig {
    /// Checks the options against each other and converts units.
    pub fn from_args(args: Args) -> Result<BenchConfig, ConfigError> {
        if args.bs == 0 || args.bs % 512 != 0 {
            return Err(ConfigError::BadBlockSize(args.bs));
        }
        let io_size_bytes = u32::try_from(args.bs).map_err(|_| ConfigError::BlockSizeTooLarge(args.bs))?;
        let rwmixread_pct = match args.rwmixwrite {
            None => args.rwmixread,
            Some(write) => {
                // fio: the one given last wins; here the explicit pair must agree
                // unless --rwmixread was left at its default.
                if args.rwmixread != 50 && args.rwmixread + write != 100 {
                    return Err(ConfigError::RwmixConflict { read: args.rwmixread, write });
                }
                100 - write
            }
        };
        if args.size == Some(0) {
            return Err(ConfigError::ZeroSize);
        }
        if args.verify_expect_zero && !args.verify {
            return Err(ConfigError::ExpectZeroWithoutVerify);
        }
        if args.verify_final_pass && !args.verify {
            return Err(ConfigError::FinalPassWithoutVerify);
        }
        let reconnect_delay_sec =
            args.reconnect_delay_sec.unwrap_or(if args.ctrlr_loss_timeout_sec == 0 { 0 } else { 1 });
        rpc::host::check_resiliency(args.ctrlr_loss_timeout_sec, reconnect_delay_sec, args.fast_io_fail_timeout_sec)
            .map_err(|e| ConfigError::Resiliency(format!("-l/-o/-u: {}", e.message)))?;
        if (args.selector.is_some() || args.rr_min_io.is_some()) && args.policy != Some(PolicyArg::ActiveActive) {
            return Err(ConfigError::SelectorWithoutActiveActive);
        }
        let run_ns = args.runtime.saturating_add(args.ramp_time).saturating_mul(NS_PER_S);
        let kill_a_after_ns = match args.kill_a_after {
            None => Some(run_ns / 2),
            Some(s) if !s.is_finite() || s < 0.0 => return Err(ConfigError::BadKillTime),
            Some(0.0) => None,
            Some(s) => Some((s * NS_PER_S as f64) as u64),
        };
        let target = if args.embedded || (args.trid.is_empty() && args.config.is_none()) {
            TargetMode::Embedded {
                listen: args.trid,
                gateways: args.gateways,
                kill_a_after_ns: if args.gateways >= 2 { kill_a_after_ns } else { None },
                file: args.embedded_file,
            }
        } else {
            if let Some(t) = args.trid.iter().find(|t| t.subnqn == protocol::DISCOVERY_NQN) {
                return Err(ConfigError::DiscoveryNqn(t.to_string()));
            }
            TargetMode::Remote { trids: args.trid }
        };
        let mut notes = Vec::new();
        if let Some(engine) = &args.ioengine {
            notes.push(format!(
                "--ioengine {engine} ignored: IO always goes through corepath's own NVMe-oF host engine \
                 (polled, queue depth --iodepth)"
            ));
        }
        if args.direct == Some(0) {
            notes.push(
                "--direct 0 ignored: the host engine has no page cache, every IO goes to the target (as --direct 1)"
                    .to_string(),
            );
        }
        let mut cores = args.cpumask.0;
        let numjobs = args.numjobs.unwrap_or(cores.len() as u32);
        // Fewer jobs than cores: only the cores that get a job run a reactor.
        cores.truncate(numjobs as usize);
        let paths = PathOptions {
            mode: args.multipath,
            ctrlr_loss_timeout_sec: args.ctrlr_loss_timeout_sec,
            reconnect_delay_sec,
            fast_io_fail_timeout_sec: args.fast_io_fail_timeout_sec,
            keep_alive_ms: args.keep_alive_ms,
            timeout_us: args.timeout_us,
            timeout_admin_us: args.timeout_admin_us,
            action_on_timeout: args.action_on_timeout,
            policy: args.policy,
            selector: args.selector,
            rr_min_io: args.rr_min_io,
            config_file: args.config,
            rpc_socket: args.rpc_socket,
        };
        Ok(BenchConfig {
            target,
            paths,
            header_digest: args.hdgst,
            data_digest: args.ddgst,
            pattern: args.rw,
            rwmixread_pct,
            io_size_bytes,
            iodepth: args.iodepth,
            cores,
            runtime_ns: args.runtime.saturating_mul(NS_PER_S),
            ramp_ns: args.ramp_time.saturating_mul(NS_PER_S),
            region_offset_bytes: args.offset,
            region_size_bytes: args.size,
            verify: args.verify,
            verify_expect_zero: args.verify_expect_zero,
            verify_final_pass: args.verify_final_pass,
            seed: args.seed.unwrap_or(DEFAULT_SEED),
            output_format: args.output_format,
            status_interval_ns: args.status_interval.saturating_mul(NS_PER_S),
            job_name: args.name,
            group_reporting: args.group_reporting,
            rate_iops: args.rate_iops,
            idle: engine::IdlePolicy::parse(&args.idle, Some(std::time::Duration::from_micros(args.idle_spin_us)))
                .map_err(ConfigError::BadIdle)?,
            numjobs,
            filename: args.filename,
            notes,
        })
    }

    /// Refuses a `--cpumask` naming cores outside `available` (see
    /// [`available_cores`]), as SPDK refuses a core mask beyond the machine.
    pub fn check_cores(&self, available: &[u32]) -> Result<(), ConfigError> {
        let missing: Vec<u32> = self.cores.iter().copied().filter(|c| !available.contains(c)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::NoSuchCores { missing, available: format_core_list(available) })
        }
    }

    /// The core of each job, in job order: the mask's cores in turn, as many
    /// as `--numjobs` (one per core by default).
    pub fn job_cores(&self) -> Vec<u32> {
        self.cores.iter().copied().cycle().take(self.numjobs as usize).collect()
    }

    /// Parses a command line (first item: the program name) into a configuration.
    pub fn parse_from<I, T>(args: I) -> Result<BenchConfig, CliError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = Args::try_parse_from(args).map_err(|e| CliError::Usage(Box::new(e)))?;
        Ok(BenchConfig::from_args(args)?)
    }

    /// The options as fio's `"job options"` lists them (name, value), for reports.
    pub fn job_options(&self) -> Vec<(&'static str, String)> {
        let mut options = vec![
            ("name", self.job_name.clone()),
            ("rw", self.pattern.fio_name().to_string()),
            ("bs", format_size(u64::from(self.io_size_bytes))),
            ("iodepth", self.iodepth.to_string()),
            ("numjobs", self.numjobs.to_string()),
            ("runtime", (self.runtime_ns / NS_PER_S).to_string()),
            ("time_based", "1".to_string()),
            ("randseed", self.seed.to_string()),
            ("offset", format_size(self.region_offset_bytes)),
        ];
        if self.pattern.is_mixed() {
            options.push(("rwmixread", self.rwmixread_pct.to_string()));
        }
        if let Some(r) = self.rate_iops {
            options.push(("rate_iops", format!("{},{}", r.read, r.write)));
        }
        if self.ramp_ns > 0 {
            options.push(("ramp_time", (self.ramp_ns / NS_PER_S).to_string()));
        }
        if let Some(size) = self.region_size_bytes {
            options.push(("size", format_size(size)));
        }
        if self.verify {
            options.push(("verify", "corepath-stamp".to_string()));
            if self.verify_final_pass {
                options.push(("verify_final_pass", "1".to_string()));
            }
        }
        if let Some(f) = &self.filename {
            options.push(("filename", f.clone()));
        }
        let cores: Vec<String> = self.cores.iter().map(u32::to_string).collect();
        options.push(("cpus_allowed", cores.join(",")));
        options
    }
}

/// A command line that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// clap's own error (also used for `--help` and `--version`: call `exit()` on it).
    #[error(transparent)]
    Usage(Box<clap::Error>),
    /// Options that contradict each other.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::TrType;

    fn parse(args: &[&str]) -> Result<BenchConfig, CliError> {
        BenchConfig::parse_from(std::iter::once("corepath-bench").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn parses_hex_masks_and_core_lists() {
        assert_eq!(parse_cpumask("0x2"), Ok(CoreList(vec![1])));
        assert_eq!(parse_cpumask("0x3"), Ok(CoreList(vec![0, 1])));
        assert_eq!(parse_cpumask("3"), Ok(CoreList(vec![0, 1])));
        assert_eq!(parse_cpumask("0XF0"), Ok(CoreList(vec![4, 5, 6, 7])));
        assert_eq!(parse_cpumask("0x100000000"), Ok(CoreList(vec![32])));
        assert_eq!(parse_cpumask("1,3"), Ok(CoreList(vec![1, 3])));
        assert_eq!(parse_cpumask("[0-2,5]"), Ok(CoreList(vec![0, 1, 2, 5])));
        assert_eq!(parse_cpumask("[3]"), Ok(CoreList(vec![3])));
        assert_eq!(parse_cpumask("3,1,3"), Ok(CoreList(vec![1, 3])));
        assert_eq!(parse_cpumask(" 1 , 2 "), Ok(CoreList(vec![1, 2])));
    }

    #[test]
    fn rejects_bad_masks() {
        assert_eq!(parse_cpumask("0x0"), Err(CpumaskError::Empty));
        assert!(matches!(parse_cpumask("0x"), Err(CpumaskError::Malformed(_))));
        assert!(matches!(parse_cpumask(""), Err(CpumaskError::Malformed(_))));
        assert!(matches!(parse_cpumask("0xg"), Err(CpumaskError::Malformed(_))));
        assert!(matches!(parse_cpumask("[1,2"), Err(CpumaskError::Malformed(_))));
        assert!(matches!(parse_cpumask("1,,2"), Err(CpumaskError::Malformed(_))));
        assert!(matches!(parse_cpumask("a,b"), Err(CpumaskError::Malformed(_))));
        assert!(matches!(parse_cpumask("3-1"), Err(CpumaskError::BackwardsRange(_))));
        assert_eq!(parse_cpumask("[2000]"), Err(CpumaskError::CoreTooLarge(2000)));
        assert!(matches!(parse_cpumask(&format!("0x1{}", "0".repeat(300))), Err(CpumaskError::CoreTooLarge(_))));
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            c.target,
            TargetMode::Embedded { listen: vec![], gateways: 2, kill_a_after_ns: Some(5 * NS_PER_S), file: None }
        );
        assert!(c.uses_multipath());
        assert_eq!(c.paths.ctrlr_loss_timeout_sec, -1);
        assert_eq!(c.paths.reconnect_delay_sec, 1);
        assert_eq!(c.pattern, RwPattern::Read);
        assert_eq!(c.rwmixread_pct, 50);
        assert_eq!(c.io_size_bytes, 4096);
        assert_eq!(c.iodepth, 1);
        assert_eq!(c.cores, [0]);
        assert_eq!(c.runtime_ns, 10 * NS_PER_S);
        assert_eq!(c.ramp_ns, 0);
        assert_eq!(c.status_interval_ns, NS_PER_S);
        assert_eq!(c.seed, DEFAULT_SEED);
        assert_eq!(c.output_format, OutputFormat::Normal);
        assert_eq!((c.region_offset_bytes, c.region_size_bytes), (0, None));
        assert!(!c.verify && !c.header_digest && !c.data_digest);
    }

    #[test]
    fn parses_a_full_fio_style_command_line() {
        let c = parse(&[
            "--trid",
            "trtype:tcp adrfam:ipv4 traddr:127.0.0.2 trsvcid:4420 subnqn:nqn.2021-06.io.spdk:ctc_rbd0",
            "--trid=trtype:tcp traddr:127.0.0.3 subnqn:nqn.2021-06.io.spdk:ctc_rbd0",
            "--rw=randrw",
            "--rwmixread",
            "70",
            "--bs=128k",
            "--iodepth=32",
            "--cpumask=0x6",
            "--runtime=30",
            "--time_based",
            "--ramp_time=2",
            "--size=1g",
            "--offset=1m",
            "--verify",
            "--output-format=json",
            "--seed=9",
            "--hdgst",
            "--ddgst",
            "--status-interval=0",
            "--group_reporting",
        ])
        .unwrap();
        let TargetMode::Remote { trids } = &c.target else { panic!("{:?}", c.target) };
        assert_eq!(trids.len(), 2);
        assert_eq!(trids[0].trtype, TrType::Tcp);
        assert_eq!(trids[1].traddr, "127.0.0.3");
        assert_eq!(c.pattern, RwPattern::RandRw);
        assert_eq!(c.rwmixread_pct, 70);
        assert_eq!(c.io_size_bytes, 128 << 10);
        assert_eq!(c.iodepth, 32);
        assert_eq!(c.cores, [1, 2]);
        assert_eq!(c.runtime_ns, 30 * NS_PER_S);
        assert_eq!(c.ramp_ns, 2 * NS_PER_S);
        assert_eq!((c.region_offset_bytes, c.region_size_bytes), (1 << 20, Some(1 << 30)));
        assert!(c.verify && c.header_digest && c.data_digest && c.group_reporting);
        assert_eq!(c.output_format, OutputFormat::Json);
        assert_eq!(c.seed, 9);
        assert_eq!(c.status_interval_ns, 0);
    }

    #[test]
    fn embedded_with_trid_listens_there() {
        let c = parse(&["--embedded", "--trid", "trtype:tcp traddr:127.0.0.9"]).unwrap();
        let TargetMode::Embedded { listen, .. } = c.target else { panic!() };
        assert_eq!(listen[0].traddr, "127.0.0.9");
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["--rw", "trim"][..],
            &["--bs", "4x"],
            &["--iodepth", "0"],
            &["--rwmixread", "101"],
            &["--cpumask", "0x0"],
            &["--trid", "trtype:tcp"],
            &["--output-format", "xml"],
            &["--runtime", "0"],
        ] {
            assert!(matches!(parse(bad), Err(CliError::Usage(_))), "{bad:?}");
        }
        assert!(matches!(parse(&["--bs", "1000"]), Err(CliError::Config(ConfigError::BadBlockSize(1000)))));
        assert!(matches!(parse(&["--bs", "4g"]), Err(CliError::Config(ConfigError::BlockSizeTooLarge(_)))));
        assert!(matches!(parse(&["--size", "0"]), Err(CliError::Config(ConfigError::ZeroSize))));
        assert!(matches!(
            parse(&["--rwmixread", "70", "--rwmixwrite", "20"]),
            Err(CliError::Config(ConfigError::RwmixConflict { read: 70, write: 20 }))
        ));
        assert!(matches!(
            parse(&["--verify_expect_zero"]),
            Err(CliError::Config(ConfigError::ExpectZeroWithoutVerify))
        ));
        assert!(matches!(parse(&["--verify_final_pass"]), Err(CliError::Config(ConfigError::FinalPassWithoutVerify))));
    }

    #[test]
    fn command_timeout_flags_set_the_controller_options() {
        let c = parse(&["--timeout-us=1500", "--timeout-admin-us=2000000", "--action-on-timeout=reset"]).unwrap();
        let mut opts = engine::ControllerOptions::default();
        c.paths.apply_to(&mut opts);
        // 1.5 ms rounds up to 2 ms, never down to "no timeout".
        assert_eq!((opts.io_timeout_ms, opts.admin_timeout_ms), (2, 2000));
        assert_eq!(opts.action_on_timeout, engine::TimeoutAction::Reset);
        let mut opts = engine::ControllerOptions::default();
        parse(&[]).unwrap().paths.apply_to(&mut opts);
        assert_eq!((opts.io_timeout_ms, opts.action_on_timeout), (0, engine::TimeoutAction::Abort));
        assert!(matches!(parse(&["--action-on-timeout=kill"]), Err(CliError::Usage(_))));
    }

    #[test]
    fn multipath_flags_parse_with_spdk_short_aliases() {
        let c = parse(&[
            "--trid=trtype:tcp traddr:127.0.0.2 subnqn:nqn.x",
            "--trid=trtype:tcp traddr:127.0.0.3 subnqn:nqn.x",
            "--multipath=failover",
            "-l",
            "-1",
            "-o",
            "2",
            "-u",
            "5",
            "--keep-alive-ms=2000",
            "--policy=active_active",
            "--selector=queue_depth",
            "--rpc-socket=/tmp/b.sock",
        ])
        .unwrap();
        assert!(c.uses_multipath());
        let p = &c.paths;
        assert_eq!(p.mode, Some(MultipathArg::Failover));
        assert_eq!((p.ctrlr_loss_timeout_sec, p.reconnect_delay_sec, p.fast_io_fail_timeout_sec), (-1, 2, 5));
        assert_eq!(p.keep_alive_ms, Some(2000));
        assert_eq!((p.policy, p.selector), (Some(PolicyArg::ActiveActive), Some(SelectorArg::QueueDepth)));
        assert_eq!(p.rpc_socket.as_deref(), Some(std::path::Path::new("/tmp/b.sock")));
    }

    #[test]
    fn one_trid_without_multipath_options_keeps_the_raw_single_path() {
        let c = parse(&["--trid=trtype:tcp traddr:127.0.0.2 subnqn:nqn.x"]).unwrap();
        assert!(!c.uses_multipath());
        let c = parse(&["--trid=trtype:tcp traddr:127.0.0.2 subnqn:nqn.x", "--multipath=multipath"]).unwrap();
        assert!(c.uses_multipath());
        let c = parse(&["--gateways=1"]).unwrap();
        assert!(!c.uses_multipath());
        assert!(matches!(c.target, TargetMode::Embedded { kill_a_after_ns: None, .. }));
        let c = parse(&["--config=/x.json"]).unwrap();
        assert!(matches!(&c.target, TargetMode::Remote { trids } if trids.is_empty()));
        assert!(c.uses_multipath());
    }

    #[test]
    fn rejects_reconnect_settings_spdk_rejects() {
        for bad in [&["-l", "5", "-o", "0"][..], &["-l", "5", "-o", "1", "-u", "9"], &["-l", "0", "-o", "1"]] {
            // (-l 0 alone is fine: the delay then defaults to 0.)
            assert!(matches!(parse(bad), Err(CliError::Config(ConfigError::Resiliency(_)))), "{bad:?}");
        }
        assert!(matches!(
            parse(&["--selector=round_robin"]),
            Err(CliError::Config(ConfigError::SelectorWithoutActiveActive))
        ));
        assert_eq!(parse(&["-l", "0"]).unwrap().paths.reconnect_delay_sec, 0);
        assert!(matches!(parse(&["--kill-a-after=-1"]), Err(CliError::Config(ConfigError::BadKillTime))));
        assert!(matches!(parse(&["--policy=round_robin"]), Err(CliError::Usage(_))));
    }

    #[test]
    fn verify_final_pass_takes_both_spellings() {
        for flag in ["--verify_final_pass", "--verify-final-pass"] {
            let c = parse(&["--verify", flag]).unwrap();
            assert!(c.verify_final_pass, "{flag}");
            assert!(c.job_options().contains(&("verify_final_pass", "1".to_string())));
        }
        let c = parse(&["--verify"]).unwrap();
        assert!(!c.verify_final_pass);
        assert!(!c.job_options().iter().any(|(n, _)| *n == "verify_final_pass"));
    }

    #[test]
    fn rwmixwrite_sets_the_read_share() {
        assert_eq!(parse(&["--rwmixwrite", "30"]).unwrap().rwmixread_pct, 70);
        assert_eq!(parse(&["--rwmixread", "70", "--rwmixwrite", "30"]).unwrap().rwmixread_pct, 70);
    }

    #[test]
    fn job_options_use_fio_names() {
        let c = parse(&["--rw=randrw", "--bs=4k", "--cpumask=[1,3]", "--verify"]).unwrap();
        let options = c.job_options();
        let get = |name| options.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("rw"), Some("randrw"));
        assert_eq!(get("bs"), Some("4k"));
        assert_eq!(get("numjobs"), Some("2"));
        assert_eq!(get("rwmixread"), Some("50"));
        assert_eq!(get("cpus_allowed"), Some("1,3"));
    }

    #[test]
    fn help_mentions_the_embedded_default() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        assert!(help.contains("Without --trid, corepath-bench starts in-process gateways"));
        assert!(help.contains("--kill-a-after"));
        assert!(help.contains("--rwmixread"));
    }

    #[test]
    fn a_remote_trid_without_subnqn_is_refused() {
        let err = parse(&["--trid=trtype:tcp traddr:127.0.0.2 trsvcid:4420"]).unwrap_err();
        assert!(matches!(err, CliError::Config(ConfigError::DiscoveryNqn(_))), "{err}");
        assert!(err.to_string().contains("add subnqn:"), "{err}");
        // The embedded gateways' listen addresses need none.
        assert!(parse(&["--embedded", "--trid=trtype:tcp traddr:127.0.0.2"]).is_ok());
    }

    #[test]
    fn numjobs_places_jobs_on_the_mask_cores_in_turn() {
        let c = parse(&["--cpumask=0x3", "--numjobs=5"]).unwrap();
        assert_eq!(c.job_cores(), [0, 1, 0, 1, 0]);
        assert_eq!(c.cores, [0, 1]);
        let c = parse(&["--cpumask=0x3", "--numjobs=1"]).unwrap();
        assert_eq!((c.job_cores(), c.cores.clone()), (vec![0], vec![0]));
        assert_eq!(parse(&["--cpumask=0x6"]).unwrap().job_cores(), [1, 2]);
        assert!(matches!(parse(&["--numjobs=0"]), Err(CliError::Usage(_))));
        let options = parse(&["--numjobs=3"]).unwrap().job_options();
        assert!(options.contains(&("numjobs", "3".to_string())));
    }

    #[test]
    fn fio_only_flags_are_accepted_with_a_note() {
        let c = parse(&["--ioengine=libaio", "--direct=1", "--name=seqread", "--filename=Nvme0n1"]).unwrap();
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("--ioengine libaio ignored"), "{:?}", c.notes);
        assert_eq!(c.filename.as_deref(), Some("Nvme0n1"));
        assert_eq!(c.job_name, "seqread");
        let c = parse(&["--direct=0"]).unwrap();
        assert!(c.notes[0].contains("--direct 0 ignored"), "{:?}", c.notes);
        assert!(parse(&[]).unwrap().notes.is_empty());
        assert!(matches!(parse(&["--direct=2"]), Err(CliError::Usage(_))));
    }

    #[test]
    fn cores_the_machine_lacks_are_refused_by_name() {
        let c = parse(&["--cpumask=0x4"]).unwrap();
        let err = c.check_cores(&[0, 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--cpumask names core 2, which this machine does not have or this process may not use \
             (cores available: 0-1)"
        );
        assert!(parse(&["--cpumask=0x3"]).unwrap().check_cores(&[0, 1]).is_ok());
        assert_eq!(format_core_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert!(!available_cores().is_empty());
    }

    #[test]
    fn help_lists_the_fio_flags() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        for flag in ["--name", "--numjobs", "--filename", "--ioengine", "--direct", "verifies only what it wrote"] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
    }
}
