//! The multipath lab: two real `corepath-tgt` gateways (A on 127.0.0.2, B on
//! 127.0.0.3) serving one shared file, inside a network namespace the test
//! makes for itself, so that a gateway can be killed, stopped, restarted or
//! blackholed with nftables without touching anything outside the test.
//!
//! Everything is undone on drop, even when the test fails: daemons are killed
//! by PID, the namespace is deleted (with its nftables rules), the file removed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rpc::RpcClient;
use serde_json::{json, Value};

use crate::bins::{binary, Daemon, TempDir};

/// The subsystem both gateways export.
pub const NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";
/// Serial number both gateways report.
pub const SERIAL: &str = "SPDK_BDEV_0";
/// The namespace UUID both gateways present.
pub const NS_UUID: &str = "070685b9-0b0b-42ec-8ba5-f31a343b9e34";
/// Gateway addresses.
pub const ADDRS: [&str; 2] = ["127.0.0.2", "127.0.0.3"];
/// Controller-ID ranges (DESIGN.md).
pub const CNTLID_RANGES: [(u16, u16); 2] = [(1, 32760), (32761, 65519)];

static NETNS_SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace of the test's own, with loopback up.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Makes `corepath-<pid>-<n>`.
    ///
    /// # Panics
    /// When `ip netns` fails (the test needs root and iproute2: scripts/install-deps.sh).
    pub fn new() -> Netns {
        let name = format!("corepath-{}-{}", std::process::id(), NETNS_SEQ.fetch_add(1, Ordering::Relaxed));
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec_ok("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command line prefix that runs a program inside.
    pub fn wrap<'a>(&'a self, program: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["netns", "exec", self.name.as_str(), program];
        v.extend_from_slice(args);
        v
    }

    /// Runs a command inside and panics if it fails.
    pub fn exec_ok(&self, program: &str, args: &[&str]) {
        run("ip", &self.wrap(program, args));
    }

    /// Drops (or passes again) every packet to and from `addr` inside the namespace.
    pub fn blackhole(&self, addr: &str, on: bool) {
        if on {
            self.exec_ok("nft", &["add", "table", "inet", "corepath"]);
            self.exec_ok("nft", &["add chain inet corepath input { type filter hook input priority 0 ; }"]);
            self.exec_ok("nft", &["add", "rule", "inet", "corepath", "input", "ip", "daddr", addr, "drop"]);
            self.exec_ok("nft", &["add", "rule", "inet", "corepath", "input", "ip", "saddr", addr, "drop"]);
        } else {
            self.exec_ok("nft", &["delete", "table", "inet", "corepath"]);
        }
    }
}

impl Default for Netns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// One gateway process of the lab.
pub struct LabGateway {
    /// The process (None while killed).
    pub daemon: Option<Daemon>,
    /// Its RPC socket.
    pub socket: PathBuf,
    /// Its address.
    pub addr: &'static str,
    index: usize,
    restarts: u32,
}

impl LabGateway {
    /// Calls an RPC method on it.
    ///
    /// # Panics
    /// When the call fails.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let mut c =
            RpcClient::connect(&self.socket).unwrap_or_else(|e| panic!("connect {}: {e}", self.socket.display()));
        c.call(method, Some(params.clone())).unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Daemon::pid)
    }

    /// Sends a signal to it (SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.pid();
        assert!(pid > 0, "gateway {} is not running", self.addr);
        // SAFETY: kill(2) on the PID of our own child, which is running (the Daemon has not reaped it).
        unsafe { libc::kill(pid as libc::pid_t, signal) };
    }
}

/// Two gateways on one file in one namespace.
pub struct MpLab {
    /// The namespace everything runs in.
    pub netns: Netns,
    /// A (127.0.0.2) and B (127.0.0.3).
    pub gateways: Vec<LabGateway>,
    /// The shared file.
    pub file: PathBuf,
    /// Logs and sockets.
    pub dir: TempDir,
    /// ANA reporting on.
    pub ana: bool,
    block_size: u32,
    cores: [&'static str; 2],
}

impl MpLab {
    /// Starts both gateways on a new `size_bytes` file (block size 4096), ANA reporting on.
    /// Gateway A runs on core 0 and B on core 1 when `cores` says so (core masks).
    pub fn start(size_bytes: u64, cores: [&'static str; 2]) -> MpLab {
        let dir = TempDir::new("mplab");
        // On the build disk: O_DIRECT needs a real file system, not tmpfs.
        let file = dir.join("shared.img");
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(size_bytes))
            .unwrap_or_else(|e| panic!("create {}: {e}", file.display()));
        let mut lab =
            MpLab { netns: Netns::new(), gateways: Vec::new(), file, dir, ana: true, block_size: 4096, cores };
        for (i, addr) in ADDRS.into_iter().enumerate() {
            let socket = lab.dir.join(&format!("gw{i}.sock"));
            lab.gateways.push(LabGateway { daemon: None, socket, addr, index: i, restarts: 0 });
            lab.boot(i);
        }
        lab
    }

    /// Starts gateway `i` (again) and configures it with the user's RPC calls.
    pub fn boot(&mut self, i: usize) {
        let g = &mut self.gateways[i];
        let log = self.dir.join(&format!("gw{i}.{}.log", g.restarts));
        g.restarts += 1;
        g.daemon = Some(spawn_gateway(&self.netns, self.cores[i], &g.socket, &log, g.addr));
        let setup = GatewayConfig { addr: g.addr, cntlids: CNTLID_RANGES[i], uuid: NS_UUID, ana: self.ana };
        configure(g, &self.file, self.block_size, &setup);
    }
    /// SIGKILLs gateway `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut d) = self.gateways[i].daemon.take() {
            d.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
        }
    }

    /// Sets the ANA state of gateway `i`'s listener, with the rpc.py command line a user types.
    pub fn set_ana(&self, i: usize, state: &str) {
        let g = &self.gateways[i];
        let socket = g.socket.to_string_lossy().into_owned();
        let args = [
            "-s",
            &socket,
            "nvmf_subsystem_listener_set_ana_state",
            NQN,
            "-t",
            "tcp",
            "-a",
            g.addr,
            "-s",
            "4420",
            "-f",
            "ipv4",
            "-n",
            state,
        ];
        let out = Command::new(binary("corepath-rpc")).args(args).output().expect("run corepath-rpc");
        assert!(out.status.success(), "corepath-rpc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The `--trid` of gateway `i` for corepath-bench.
    pub fn trid(&self, i: usize) -> String {
        format!("trtype:tcp adrfam:ipv4 traddr:{} trsvcid:4420 subnqn:{NQN}", self.gateways[i].addr)
    }

    /// Starts `corepath-bench args...` inside the namespace; its standard
    /// output goes to `<name>.out` (see [`MpLab::bench_output`]), standard error to `<name>.log`.
    pub fn spawn_bench(&self, args: &[&str], name: &str) -> Daemon {
        let bench = binary("corepath-bench").to_string_lossy().into_owned();
        let wrapped = self.netns.wrap(&bench, args);
        Daemon::spawn_split(
            Path::new("ip"),
            &wrapped,
            &self.dir.join(&format!("{name}.out")),
            &self.dir.join(&format!("{name}.log")),
        )
    }

    /// What bench run `name` printed on standard output.
    pub fn bench_output(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(&format!("{name}.out"))).unwrap_or_default()
    }

    /// What bench run `name` printed on standard error.
    pub fn bench_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Calls a host RPC method on a bench run's `--rpc-socket`.
    pub fn host_call(socket: &Path, method: &str, params: Value) -> Result<Value, String> {
        let mut c = RpcClient::connect(socket).map_err(|e| format!("connect {}: {e}", socket.display()))?;
        c.call(method, Some(params)).map_err(|e| e.to_string())
    }

    /// Index helper for readability in tests.
    pub fn index_of(&self, addr: &str) -> Option<usize> {
        self.gateways.iter().find(|g| g.addr == addr).map(|g| g.index)
    }
}

/// What one lab gateway exports.
struct GatewayConfig<'a> {
    addr: &'a str,
    cntlids: (u16, u16),
    uuid: &'a str,
    ana: bool,
}

fn spawn_gateway(netns: &Netns, core_mask: &str, socket: &Path, log: &Path, addr: &str) -> Daemon {
    let _ = std::fs::remove_file(socket);
    let tgt = binary("corepath-tgt").to_string_lossy().into_owned();
    let socket_arg = socket.to_string_lossy().into_owned();
    // Yielding when idle: two gateways and the bench share this machine's cores.
    let args = netns.wrap(&tgt, &["-m", core_mask, "-r", &socket_arg, "--idle", "adaptive"]);
    let daemon = Daemon::spawn(Path::new("ip"), &args, log);
    let ready = crate::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
        RpcClient::connect(socket).ok().map(|_| ())
    });
    assert!(ready.is_some(), "gateway {addr} did not open its RPC socket:\n{}", daemon.logs());
    daemon
}

fn configure(g: &LabGateway, file: &Path, block_size: u32, c: &GatewayConfig<'_>) {
    g.call("nvmf_create_transport", json!({"trtype": "TCP"}));
    g.call("bdev_aio_create", json!({"name": "aio0", "filename": file, "block_size": block_size, "uuid": c.uuid}));
    g.call(
        "nvmf_create_subsystem",
        json!({"nqn": NQN, "serial_number": SERIAL, "allow_any_host": true,
               "min_cntlid": c.cntlids.0, "max_cntlid": c.cntlids.1, "ana_reporting": c.ana}),
    );
    g.call("nvmf_subsystem_add_ns", json!({"nqn": NQN, "namespace": {"bdev_name": "aio0"}}));
    g.call(
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": {"trtype": "TCP", "adrfam": "IPv4", "traddr": c.addr, "trsvcid": "4420"}}),
    );
}

/// A further gateway in the lab's namespace on `addr` (127.0.0.4, ...), on the
/// same file but with its own controller-ID range and namespace UUID: for
/// paths that must be refused. It stops when dropped.
pub fn extra_gateway(lab: &MpLab, addr: &'static str, cntlids: (u16, u16), uuid: &str) -> LabGateway {
    let socket = lab.dir.join(&format!("extra-{addr}.sock"));
    let log = lab.dir.join(&format!("extra-{addr}.log"));
    let daemon = spawn_gateway(&lab.netns, lab.cores[1], &socket, &log, addr);
    let g = LabGateway { daemon: Some(daemon), socket, addr, index: usize::MAX, restarts: 1 };
    configure(&g, &lab.file, lab.block_size, &GatewayConfig { addr, cntlids, uuid, ana: lab.ana });
    g
}
