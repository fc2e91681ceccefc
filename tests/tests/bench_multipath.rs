//! corepath-bench as a multipath host against two real `corepath-tgt`
//! gateways (127.0.0.2 and 127.0.0.3, same NQN, serial and namespace UUID,
//! controller IDs 1-32760 and 32761-65519) serving one shared file through
//! `bdev_aio_create`: a verified randrw run at iodepth 32 on 2 cores, gateway
//! A killed with SIGKILL mid-run. The run must end with 0 IO errors and 0
//! verify errors, the failover report must show A's failure, and the bench's
//! host RPC socket must show both paths, then A not enabled, mid-run.
//!
//! Needs the binaries built with this test's profile (scripts/test.sh builds
//! them; see `corepath_tests::bins`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corepath_tests::bins::{binary, Daemon, TempDir};
use corepath_tests::gateway::free_port;
use corepath_tests::{controller_paths, wait_for};
use rpc::RpcClient;
use serde_json::{json, Value};

const NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";
const SERIAL: &str = "SPDK_BDEV_0";
const NS_UUID: &str = "6d1c2a4e-0b7f-4c1e-9a52-3f1d2e4b5a61";
const FILE_BYTES: u64 = 64 << 20;
const RUNTIME_SECS: u64 = 10;
/// When gateway A is killed, after the bench's RPC socket answers.
const KILL_AFTER: Duration = Duration::from_secs(4);

/// A zeroed file on the build directory's disk (O_DIRECT works there, not on tmpfs); removed when dropped.
struct SharedFile(PathBuf);

impl SharedFile {
    fn new(name: &str) -> SharedFile {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.img", std::process::id()));
        File::create(&path).expect("create shared file").set_len(FILE_BYTES).expect("size shared file");
        SharedFile(path)
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A `corepath-tgt` configured as gateway A or B.
struct Gateway {
    daemon: Daemon,
    traddr: &'static str,
}

fn rpc_call(socket: &Path, method: &str, params: Value) -> Result<Value, String> {
    let mut c = RpcClient::connect(socket).map_err(|e| e.to_string())?;
    c.set_timeout(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    c.call(method, Some(params)).map_err(|e| format!("{method}: {e}"))
}

impl Gateway {
    fn start(dir: &TempDir, label: &str, core_mask: &str, traddr: &'static str, port: u16, file: &Path) -> Gateway {
        let socket = dir.join(&format!("{label}.sock"));
        let socket_arg = socket.to_str().expect("UTF-8 temp path");
        let mut daemon = Daemon::spawn(
            &binary("corepath-tgt"),
            &["-m", core_mask, "-r", socket_arg, "--idle", "adaptive"],
            &dir.join(&format!("{label}.log")),
        );
        let ready = wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
            if let Some(status) = daemon.try_exit_status() {
                panic!("corepath-tgt {label} exited at start with {status}:\n{}", daemon.logs());
            }
            rpc_call(&socket, "spdk_get_version", json!({})).ok()
        });
        assert!(ready.is_some(), "corepath-tgt {label} RPC not answering:\n{}", daemon.logs());
        let cntlids = if label == "A" { (1, 32760) } else { (32761, 65519) };
        let calls = [
            ("nvmf_create_transport", json!({"trtype": "TCP"})),
            (
                "bdev_aio_create",
                json!({"name": "aio0", "filename": file.to_str().unwrap(), "block_size": 4096, "uuid": NS_UUID}),
            ),
            (
                "nvmf_create_subsystem",
                json!({"nqn": NQN, "serial_number": SERIAL, "allow_any_host": true,
                       "min_cntlid": cntlids.0, "max_cntlid": cntlids.1}),
            ),
            ("nvmf_subsystem_add_ns", json!({"nqn": NQN, "namespace": {"bdev_name": "aio0"}})),
            (
                "nvmf_subsystem_add_listener",
                json!({"nqn": NQN, "listen_address": {"trtype": "TCP", "adrfam": "IPv4", "traddr": traddr,
                       "trsvcid": port.to_string()}}),
            ),
        ];
        for (method, params) in calls {
            if let Err(e) = rpc_call(&socket, method, params) {
                panic!("gateway {label}: {e}\n{}", daemon.logs());
            }
        }
        Gateway { daemon, traddr }
    }
}

/// The bench process: killed by PID when dropped (also on panic), stdout and
/// stderr kept apart (the JSON report is on stdout).
struct Bench {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Bench {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Child::kill sends SIGKILL to this child's PID only.
            let _ = c.kill();
            let _ = c.wait();
            eprintln!("--- corepath-bench stderr ---\n{}", self.stderr());
        }
    }
}

/// `corepath-rpc -s SOCKET args...` as JSON.
fn corepath_rpc(socket: &Path, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(binary("corepath-rpc"))
        .args(["-s", socket.to_str().expect("UTF-8 temp path"), "-t", "10"])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("corepath-rpc {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("corepath-rpc {args:?}: not JSON: {e}"))
}

#[test]
fn bench_survives_sigkill_of_gateway_a_with_no_io_or_verify_error() {
    let test_start = Instant::now();
    let dir = TempDir::new("bench-mp");
    let file = SharedFile::new("bench-mp-shared");
    let port = free_port("127.0.0.2");
    let mut a = Gateway::start(&dir, "A", "0x1", "127.0.0.2", port, &file.0);
    let b = Gateway::start(&dir, "B", "0x2", "127.0.0.3", port, &file.0);

    let bench_sock = dir.join("bench.sock");
    let trid = |g: &Gateway| format!("trtype:tcp adrfam:ipv4 traddr:{} trsvcid:{port} subnqn:{NQN}", g.traddr);
    let (trid_a, trid_b) = (trid(&a), trid(&b));
    let runtime = RUNTIME_SECS.to_string();
    let args = [
        "--trid",
        trid_a.as_str(),
        "--trid",
        trid_b.as_str(),
        "--multipath",
        "multipath",
        "-l",
        "-1",
        "-o",
        "1",
        "--rw",
        "randrw",
        "--verify",
        "--iodepth",
        "32",
        "--cpumask",
        "0x3",
        "--runtime",
        runtime.as_str(),
        "--status-interval",
        "0",
        "--output-format",
        "json",
        "--rpc-socket",
        bench_sock.to_str().unwrap(),
    ];
    let (stdout, stderr) = (dir.join("bench.out"), dir.join("bench.err"));
    let child = Command::new(binary("corepath-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .expect("start corepath-bench");
    let mut bench = Bench { child: Some(child), stdout, stderr };

    // Mid-run, through the bench's own RPC socket: both paths, enabled, disjoint cntlids.
    let both = wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        corepath_rpc(&bench_sock, &["bdev_nvme_get_controllers", "-n", "Nvme0"]).ok()
    })
    .unwrap_or_else(|| panic!("bench RPC socket never answered:\n{}", bench.stderr()));
    let seen = controller_paths(&both);
    assert_eq!(seen.len(), 2, "{both:#}");
    assert_eq!(seen[0], ("127.0.0.2".into(), "enabled".into(), 1), "{both:#}");
    assert_eq!(seen[1], ("127.0.0.3".into(), "enabled".into(), 32761), "{both:#}");
    let io_paths = corepath_rpc(&bench_sock, &["bdev_nvme_get_io_paths", "-n", "Nvme0n1"]).unwrap();
    let first = &io_paths["poll_groups"][0]["io_paths"];
    assert_eq!(first[0]["current"], true, "active_passive sends IO to A first: {io_paths:#}");
    assert_eq!(first[1]["current"], false, "{io_paths:#}");

    std::thread::sleep(KILL_AFTER);
    assert!(bench.child.as_mut().unwrap().try_wait().unwrap().is_none(), "bench ended early:\n{}", bench.stderr());
    assert!(a.daemon.signal_and_wait(libc::SIGKILL, Duration::from_secs(5)).is_some(), "gateway A did not die");

    let after = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        let v = corepath_rpc(&bench_sock, &["bdev_nvme_get_controllers", "-n", "Nvme0"]).ok()?;
        let s = controller_paths(&v);
        (s.len() == 2 && s[0].1 != "enabled").then_some(s)
    })
    .unwrap_or_else(|| panic!("A still enabled 10 s after SIGKILL:\n{}", bench.stderr()));
    assert_eq!(after[1].1, "enabled", "B must stay enabled: {after:?}");

    let status = bench
        .wait(Duration::from_secs(RUNTIME_SECS + 40))
        .unwrap_or_else(|| panic!("bench did not finish:\n{}", bench.stderr()));
    let report_text = std::fs::read_to_string(&bench.stdout).unwrap();
    let report: Value = serde_json::from_str(&report_text)
        .unwrap_or_else(|e| panic!("bench JSON: {e}\n{report_text}\n{}", bench.stderr()));
    assert!(status.success(), "bench exit {status}:\n{report_text}\n{}", bench.stderr());
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    for j in jobs {
        assert_eq!(j["corepath"]["io_errors"], 0, "{j:#}");
        assert_eq!(j["corepath"]["verify_errors"], 0, "{j:#}");
        assert!(j["read"]["total_ios"].as_u64().unwrap() > 0 && j["write"]["total_ios"].as_u64().unwrap() > 0);
    }
    let mp = &report["multipath"];
    assert_eq!(mp["io_errors"], 0, "{mp:#}");
    assert_eq!(mp["verify_errors"], 0, "{mp:#}");
    let a_path = format!("127.0.0.2:{port}");
    let b_path = format!("127.0.0.3:{port}");
    let events = mp["events"].as_array().unwrap();
    let failed = events
        .iter()
        .find(|e| e["path"] == a_path.as_str() && e["what"].as_str().unwrap_or("").starts_with("failed"))
        .unwrap_or_else(|| panic!("no failure event for A in {mp:#}"));
    assert_eq!(failed["io_errors"], 0, "{failed:#}");
    assert!(failed["longest_gap_ms"].as_f64().is_some() && failed["max_latency_ms"].as_f64().is_some());
    let ios = |path: &str| {
        mp["paths"].as_array().unwrap().iter().find(|p| p["path"] == path).map_or(0, |p| p["ios"].as_u64().unwrap())
    };
    assert!(ios(&a_path) > 0, "A carried IO before the kill: {mp:#}");
    assert!(ios(&b_path) > 0, "B carried IO after the kill: {mp:#}");
    eprintln!(
        "failover: A failed at {} ms, longest gap {} ms, max latency {} ms; whole test {:?}",
        failed["at_ms"],
        failed["longest_gap_ms"],
        failed["max_latency_ms"],
        test_start.elapsed()
    );
    drop(b);
    assert!(test_start.elapsed() < Duration::from_secs(60), "took {:?}", test_start.elapsed());
}
