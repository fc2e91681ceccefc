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
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cores = engine::parse_core_mask(&args.cpumask).map_err(|e| anyhow!(e)).context("-m/--cpumask")?;
    sys::install_stop_handlers().context("install SIGINT/SIGTERM handlers")?;

    let idle = match args.idle {
        Idle::Busy => IdlePolicy::Busy,
        Idle::Adaptive => IdlePolicy::Adaptive { spin_ns: args.idle_spin_us.saturating_mul(1_000) },
        Idle::Interrupt => IdlePolicy::Interrupt,
    };
    let opts = GatewayOptions { cores, idle, trtype: TrType::Tcp, clock: Arc::new(MonotonicClock::new()) };
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
