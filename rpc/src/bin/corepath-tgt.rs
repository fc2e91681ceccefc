//! `corepath-tgt`: the NVMe-oF gateway daemon. Runs the gateway's reactors
//! over NVMe/TCP and serves SPDK-style JSON-RPC on a Unix socket.
//!
//! ```text
//! corepath-tgt -m 0x3 -r /var/tmp/corepath.sock [-c saved_config.json] [--idle busy|adaptive|interrupt] [--idle-spin-us US]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::{Parser, ValueEnum};
use corepath_rpc as rpc;
use engine::{IdlePolicy, MonotonicClock, TrType};
use gateway::GatewayOptions;
use rpc::GatewayService;
use transport_tcp::TcpTargetTransport;

/// How often the main thread looks for a stop signal.
const SIGNAL_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What a reactor does when it finds no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Idle {
    /// Spin always (lowest latency; one core per reactor at 100%).
    Busy,
    /// Spin while work arrives; after --idle-spin-us without any, sleep until
    /// a socket, a message or a timer needs the reactor.
    #[value(alias = "yield")]
    Adaptive,
    /// Sleep whenever a turn finds nothing (SPDK's --interrupt-mode).
    Interrupt,
}

/// The corepath NVMe-oF gateway.
#[derive(Debug, Parser)]
#[command(name = "corepath-tgt", version, about)]
struct Args {
    /// Cores to run reactors on: a hex mask (0x3) or a list ([0,2-3]).
    #[arg(short = 'm', long = "cpumask", default_value = "0x1")]
    cpumask: String,
    /// JSON-RPC Unix socket path.
    #[arg(short = 'r', long = "rpc-socket", default_value = rpc::DEFAULT_SOCKET_PATH)]
    rpc_socket: PathBuf,
    /// A `save_config` JSON file to replay at start.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Reactor behaviour when idle ("yield", the old name, means adaptive).
    #[arg(long = "idle", value_enum, default_value = "adaptive")]
    idle: Idle,
    /// With --idle adaptive: microseconds of idle turns before a reactor sleeps.
    #[arg(long = "idle-spin-us", alias = "idle_spin_us", value_name = "US", default_value_t = 50)]
    idle_spin_us: u64,
    /// NVMe-oF connections served at once (all listeners, all cores); more are
    /// closed on accept. Default: 4096, or fewer when the file descriptor
    /// limit (raised to its hard limit at start) leaves less room.
    #[arg(long = "max-connections", alias = "max_connections", value_name = "N")]
    max_connections: Option<usize>,
}

/// File descriptors kept back from NVMe-oF connections (RPC, bdev files,
/// logs): this many, or a quarter of a smaller limit.
const RESERVED_FDS: usize = 256;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cores = engine::parse_core_mask(&args.cpumask).map_err(|e| anyhow!(e)).context("-m/--cpumask")?;
    sys::install_stop_handlers().context("install SIGINT/SIGTERM handlers")?;

    let idle = match args.idle {
        Idle::Busy => IdlePolicy::Busy,
        Idle::Adaptive => IdlePolicy::Adaptive { spin_ns: args.idle_spin_us.saturating_mul(1_000) },
        Idle::Interrupt => IdlePolicy::Interrupt,
    };
    // Every connection is a descriptor: take the hard limit, and keep the
    // connection limit below it so that running out shows as a clean refusal.
    let fd_limit = sys::raise_fd_limit().context("raise the open-file limit (RLIMIT_NOFILE)")?;
    let fd_limit_usize = usize::try_from(fd_limit).unwrap_or(usize::MAX);
    let reserved = RESERVED_FDS.min(fd_limit_usize / 4);
    let fit = fd_limit_usize.saturating_sub(reserved).max(1);
    let max_connections = match args.max_connections {
        Some(n) if n > fit => {
            return Err(anyhow!(
                "--max-connections {n} does not fit in the open-file limit of {fd_limit} \
                 ({reserved} kept back for the rest): raise `ulimit -Hn` or ask for at most {fit}"
            ))
        }
        Some(0) => return Err(anyhow!("--max-connections must be at least 1")),
        Some(n) => n,
        None => gateway::DEFAULT_MAX_CONNECTIONS.min(fit),
    };
    let opts =
        GatewayOptions { cores, idle, trtype: TrType::Tcp, clock: Arc::new(MonotonicClock::new()), max_connections };
    let service = GatewayService::start(TcpTargetTransport::new(), opts).context("start the gateway")?;
    let result = serve(&args, &service);
    service.shutdown();
    result
}

/// Loads the configuration, serves RPC until SIGINT/SIGTERM, stops the server.
fn serve(args: &Args, service: &GatewayService<TcpTargetTransport>) -> anyhow::Result<()> {
    let router = service.router().clone();
    if let Some(path) = &args.config {
        rpc::load_config_file(path, &router)?;
        eprintln!("corepath-tgt: loaded {}", path.display());
    }
    let server = rpc::serve(&args.rpc_socket, router)
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("serve RPC on {}", args.rpc_socket.display()))?;
    eprintln!("corepath-tgt: RPC on {}", args.rpc_socket.display());
    while !sys::stop_requested() {
        std::thread::sleep(SIGNAL_POLL_INTERVAL);
    }
    eprintln!("corepath-tgt: stopping");
    // Stops accepting, finishes requests in progress and removes the socket file.
    server.shutdown();
    Ok(())
}

/// SIGINT/SIGTERM → an atomic flag the main thread polls.
mod sys {
    use std::sync::atomic::{AtomicBool, Ordering};

    static STOP: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_stop_signal(_signal: libc::c_int) {
        // Only an atomic store: async-signal-safe.
        STOP.store(true, Ordering::SeqCst);
    }

    /// True once SIGINT or SIGTERM arrived.
    pub(crate) fn stop_requested() -> bool {
        STOP.load(Ordering::SeqCst)
    }

    /// Raises the soft open-file limit to the hard one; returns the limit now in force.
    pub(crate) fn raise_fd_limit() -> std::io::Result<u64> {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `limit` is a valid, exclusively borrowed rlimit for getrlimit to fill.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            // SAFETY: `raised` is a valid rlimit read by setrlimit only.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit = raised;
            }
        }
        Ok(limit.rlim_cur as u64)
    }

    /// Routes SIGINT and SIGTERM to [`stop_requested`].
    pub(crate) fn install_stop_handlers() -> std::io::Result<()> {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty mask) that we
            // fill in before use.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            // SAFETY: `action.sa_mask` is a valid, exclusively borrowed sigset_t.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            // SAFETY: `action` is fully initialised and the handler only performs an atomic
            // store, which is async-signal-safe; a null old-action pointer is allowed.
            let rc = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
