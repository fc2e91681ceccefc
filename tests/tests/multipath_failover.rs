//! Multipath fault tests with real processes: two `corepath-tgt` gateways on
//! one shared file (tests/src/mplab.rs, in a network namespace of the test's
//! own) and a verified `corepath-bench` run on 2 cores, while gateway A is
//! killed, hung (SIGSTOP), blackholed (nftables), restarted, or set ANA
//! inaccessible. Every run asserts zero IO errors and zero verify errors from
//! the bench's JSON report, and reads the path state through the bench's own
//! RPC socket, as a user would.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corepath_tests::bins::Daemon;
use corepath_tests::mplab::{self, MpLab};
use corepath_tests::wait_for;
use serde_json::{json, Value};

/// Keep-alive timeout of both paths: a hung or blackholed gateway is noticed
/// after at most this long, and its writes may move after twice this
/// (docs/multipath.md).
const KATO_MS: &str = "800";
const FILE_BYTES: u64 = 128 << 20;

struct Run {
    name: &'static str,
    daemon: Daemon,
    socket: PathBuf,
}

/// Starts a verified randrw bench over both paths, with its RPC socket.
fn start_bench(lab: &MpLab, name: &'static str, runtime_secs: u64, extra: &[&str]) -> Run {
    start_bench_rw(lab, name, runtime_secs, "randrw", extra)
}

/// The same with another `--rw` pattern.
fn start_bench_rw(lab: &MpLab, name: &'static str, runtime_secs: u64, rw: &str, extra: &[&str]) -> Run {
    let socket = lab.dir.join(&format!("{name}.sock"));
    let (a, b) = (lab.trid(0), lab.trid(1));
    let runtime = runtime_secs.to_string();
    let sock = socket.to_string_lossy().into_owned();
    let mut args = vec![
        "--trid",
        &a,
        "--trid",
        &b,
        "--multipath",
        "multipath",
        "-o",
        "1",
        "--rw",
        rw,
        "--bs",
        "4k",
        "--iodepth",
        "32",
        "--cpumask",
        "0x3",
        "--runtime",
        &runtime,
        "--size",
        "64M",
        "--verify",
        "--status-interval",
        "0",
        "--output-format",
        "json",
        "--rpc-socket",
        &sock,
    ];
    if !extra.contains(&"-l") {
        args.extend_from_slice(&["-l", "-1"]);
    }
    if !extra.contains(&"--keep-alive-ms") {
        args.extend_from_slice(&["--keep-alive-ms", KATO_MS]);
    }
    args.extend_from_slice(extra);
    let daemon = lab.spawn_bench(&args, name);
    let run = Run { name, daemon, socket };
    let up = wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        let v = MpLab::host_call(&run.socket, "bdev_nvme_get_controllers", json!({"name": "Nvme0"})).ok()?;
        (path_states(&v).iter().filter(|s| s.1 == "enabled").count() == 2).then_some(())
    });
    assert!(up.is_some(), "both paths never enabled:\n{}", lab.bench_log(name));
    run
}

/// (traddr, state) of each path of Nvme0.
fn path_states(ctrlrs: &Value) -> Vec<(String, String)> {
    ctrlrs[0]["ctrlrs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (c["trid"]["traddr"].as_str().unwrap_or("").to_string(), c["state"].as_str().unwrap_or("").into())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The traddr of the path IO goes to on every reactor, if they agree.
fn current_path(socket: &Path) -> Option<String> {
    let v = MpLab::host_call(socket, "bdev_nvme_get_io_paths", json!({})).ok()?;
    let mut current = None;
    for group in v["poll_groups"].as_array()? {
        let p = group["io_paths"].as_array()?.iter().find(|p| p["current"] == true)?;
        let addr = p["transport"]["traddr"].as_str()?.to_string();
        if current.as_ref().is_some_and(|c| *c != addr) {
            return None;
        }
        current = Some(addr);
    }
    current
}

fn wait_current(run: &Run, lab: &MpLab, addr: &str, within: Duration, what: &str) -> Duration {
    let start = Instant::now();
    let ok = wait_for(within, Duration::from_millis(20), || (current_path(&run.socket)? == addr).then_some(()));
    assert!(ok.is_some(), "{what}: IO not on {addr} within {within:?}:\n{}", lab.bench_log(run.name));
    start.elapsed()
}

/// Waits for the bench to end and returns its JSON report, asserting it ran clean.
fn finish_clean(lab: &MpLab, mut run: Run, timeout: Duration) -> Value {
    let status = run.daemon.wait(timeout);
    let out = lab.bench_output(run.name);
    let report: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bench report not JSON ({e}):\n{out}\n{}", lab.bench_log(run.name)));
    let status = status.unwrap_or_else(|| panic!("bench did not finish:\n{}", lab.bench_log(run.name)));
    let mp = &report["multipath"];
    assert_eq!(mp["io_errors"], 0, "IO errors reached the application: {mp:#}");
    assert_eq!(mp["verify_errors"], 0, "{mp:#}");
    for j in report["jobs"].as_array().expect("jobs") {
        assert_eq!(j["corepath"]["io_errors"], 0, "{j:#}");
        assert_eq!(j["corepath"]["verify_errors"], 0, "{j:#}");
        assert!(j["write"]["total_ios"].as_u64().unwrap_or(0) > 0, "{j:#}");
    }
    assert!(status.success(), "bench exit {status}:\n{}", lab.bench_log(run.name));
    report
}

/// The failure events of path `addr` in the report, with their measured stall.
fn failures<'a>(report: &'a Value, addr: &str) -> Vec<&'a Value> {
    report["multipath"]["events"]
        .as_array()
        .map(|ev| {
            ev.iter()
                .filter(|e| {
                    e["path"].as_str().is_some_and(|p| p.starts_with(addr))
                        && e["what"].as_str().is_some_and(|w| w.starts_with("failed"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn path_ios(report: &Value, addr: &str) -> u64 {
    report["multipath"]["paths"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["path"].as_str().is_some_and(|s| s.starts_with(addr))))
        .and_then(|p| p["ios"].as_u64())
        .unwrap_or(0)
}

#[test]
fn killed_hung_and_blackholed_gateway_costs_no_io_error_and_io_returns_to_it() {
    let mut lab = MpLab::start(FILE_BYTES, ["0x1", "0x2"]);
    let run = start_bench(&lab, "faults", 45, &[]);
    wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(5), "start");

    // 1. SIGKILL: the host sees the connection close at once.
    std::thread::sleep(Duration::from_secs(2));
    lab.kill(0);
    wait_current(&run, &lab, "127.0.0.3", Duration::from_secs(3), "after SIGKILL");
    std::thread::sleep(Duration::from_secs(1));
    lab.boot(0);
    let back = wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(8), "A restarted");
    eprintln!("A back {back:?} after restart (reconnect_delay 1 s)");

    // 2. SIGSTOP: no close; keep-alive notices.
    std::thread::sleep(Duration::from_secs(2));
    lab.gateways[0].signal(libc::SIGSTOP);
    let moved = wait_current(&run, &lab, "127.0.0.3", Duration::from_secs(5), "after SIGSTOP");
    eprintln!("IO moved to B {moved:?} after SIGSTOP");
    std::thread::sleep(Duration::from_secs(3));
    lab.gateways[0].signal(libc::SIGCONT);
    wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(15), "A resumed");

    // 3. Blackhole: packets to and from A dropped.
    std::thread::sleep(Duration::from_secs(2));
    lab.netns.blackhole("127.0.0.2", true);
    let moved = wait_current(&run, &lab, "127.0.0.3", Duration::from_secs(5), "after blackhole");
    eprintln!("IO moved to B {moved:?} after blackhole");
    std::thread::sleep(Duration::from_secs(3));
    lab.netns.blackhole("127.0.0.2", false);
    wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(20), "blackhole lifted");

    let report = finish_clean(&lab, run, Duration::from_secs(60));
    let failed = failures(&report, "127.0.0.2");
    assert!(failed.len() >= 3, "expected kill, hang and blackhole failures of A: {:#}", report["multipath"]);
    for f in &failed {
        assert_eq!(f["io_errors"], 0, "{f:#}");
        eprintln!(
            "A {}: longest completion gap {} ms, max latency {} ms",
            f["what"], f["longest_gap_ms"], f["max_latency_ms"]
        );
    }
    assert!(path_ios(&report, "127.0.0.2") > 0 && path_ios(&report, "127.0.0.3") > 0);
}

/// Per-command timeouts find a hung gateway well before keep-alive does:
/// with KATO 8 s (keep-alive alone: 4 s), an IO timeout of 300 ms and action
/// abort, the Abort of the oldest IO goes unanswered for the admin timeout
/// (also 300 ms) and the controller is reset. Reads move at once; writes wait
/// for the stale-write barrier (last admin answer + up to 2 KATO).
#[test]
fn a_hung_gateway_is_left_after_command_timeout_and_abort_before_keep_alive_notices() {
    let lab = MpLab::start(FILE_BYTES, ["0x1", "0x2"]);
    let extra = ["--keep-alive-ms", "8000", "--timeout-us", "300000", "--action-on-timeout", "abort"];
    let run = start_bench(&lab, "abort", 26, &extra);
    wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(5), "start");
    std::thread::sleep(Duration::from_secs(2));
    lab.gateways[0].signal(libc::SIGSTOP);
    let moved = wait_current(&run, &lab, "127.0.0.3", Duration::from_secs(8), "after SIGSTOP");
    eprintln!("IO moved to B {moved:?} after SIGSTOP (keep-alive alone: 4 s)");
    assert!(moved < Duration::from_millis(3000), "moved after {moved:?}: not the command timeout's doing");
    std::thread::sleep(Duration::from_secs(4));
    lab.gateways[0].signal(libc::SIGCONT);

    let report = finish_clean(&lab, run, Duration::from_secs(60));
    let events = report["multipath"]["events"].as_array().expect("events");
    let of_a = |what: &str| {
        events.iter().any(|e| {
            e["path"].as_str().is_some_and(|p| p.starts_with("127.0.0.2"))
                && e["what"].as_str().is_some_and(|w| w.starts_with(what))
        })
    };
    assert!(of_a("IO command timed out"), "{:#}", report["multipath"]);
    assert!(of_a("failed: Abort timed out"), "{:#}", report["multipath"]);
    assert!(!of_a("failed: keep-alive"), "keep-alive was first: {:#}", report["multipath"]);
}

#[test]
fn gateway_restarted_ten_times_in_a_minute_causes_no_error_no_reconnect_storm_and_no_leak() {
    let mut lab = MpLab::start(FILE_BYTES, ["0x1", "0x2"]);
    let run = start_bench(&lab, "flap", 50, &[]);
    let bench_pid = run.daemon.pid();
    let fds = || std::fs::read_dir(format!("/proc/{bench_pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let rss_kib = || {
        std::fs::read_to_string(format!("/proc/{bench_pid}/status"))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_secs(2));
    let (fds_before, rss_before) = (fds(), rss_kib());
    let start = Instant::now();
    for _ in 0..10 {
        lab.kill(0);
        std::thread::sleep(Duration::from_millis(1500));
        lab.boot(0);
        wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(8), "A restarted");
        std::thread::sleep(Duration::from_millis(500));
    }
    let flapping = start.elapsed();
    assert!(flapping < Duration::from_secs(60), "10 restarts took {flapping:?}");
    // Same connections as before the flapping: one admin + one IO queue pair per core per path.
    let (fds_after, rss_after) = (fds(), rss_kib());
    let report = finish_clean(&lab, run, Duration::from_secs(60));
    assert_eq!(fds_after, fds_before, "bench file descriptors before/after 10 restarts");
    assert!(rss_after < rss_before + 16 * 1024, "bench RSS grew from {rss_before} to {rss_after} KiB");
    let events = report["multipath"]["events"].as_array().expect("events");
    let attempts = events.iter().filter(|e| e["what"] == "reconnect started").count();
    // Each outage lasts about 1.5 s with reconnect_delay 1 s: one immediate attempt and at most two delayed ones.
    assert!(attempts <= 10 * 3 + 2, "{attempts} reconnect attempts for 10 outages: a storm");
    assert!(failures(&report, "127.0.0.2").len() >= 10, "{:#}", report["multipath"]);
    eprintln!("10 restarts in {flapping:?}: {attempts} reconnect attempts, fds {fds_before}->{fds_after}, RSS {rss_before}->{rss_after} KiB");
}

#[test]
fn ana_inaccessible_moves_io_away_and_active_active_uses_only_optimized_paths() {
    let lab = MpLab::start(FILE_BYTES, ["0x1", "0x2"]);
    // active_passive: inaccessible on A moves IO to B, optimized brings it back.
    let run = start_bench(&lab, "ana_ap", 14, &[]);
    wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(5), "start");
    std::thread::sleep(Duration::from_secs(2));
    lab.set_ana(0, "inaccessible");
    wait_current(&run, &lab, "127.0.0.3", Duration::from_secs(3), "A inaccessible");
    let v = MpLab::host_call(&run.socket, "bdev_nvme_get_io_paths", json!({})).expect("io paths");
    let a = &v["poll_groups"][0]["io_paths"][0];
    assert_eq!(a["accessible"], false, "{v:#}");
    std::thread::sleep(Duration::from_secs(3));
    lab.set_ana(0, "optimized");
    wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(3), "A optimized again");
    let report = finish_clean(&lab, run, Duration::from_secs(40));
    assert!(path_ios(&report, "127.0.0.3") > 0, "B carried IO while A was inaccessible");

    // active_active, both optimized: both carry IO.
    let run = start_bench(&lab, "ana_aa", 3, &["--policy", "active_active"]);
    let report = finish_clean(&lab, run, Duration::from_secs(30));
    let (a, b) = (path_ios(&report, "127.0.0.2"), path_ios(&report, "127.0.0.3"));
    assert!(a > 1000 && b > 1000, "active_active spreads IO: A {a}, B {b}");

    // active_active with A non_optimized: A carries none while B serves.
    lab.set_ana(0, "non_optimized");
    let run = start_bench(&lab, "ana_aa_nonopt", 3, &["--policy", "active_active"]);
    let report = finish_clean(&lab, run, Duration::from_secs(30));
    let (a, b) = (path_ios(&report, "127.0.0.2"), path_ios(&report, "127.0.0.3"));
    assert_eq!(a, 0, "non_optimized A must carry no IO while optimized B serves (B {b})");
    assert!(b > 1000);
}

#[test]
fn with_every_path_gone_ios_fail_after_fast_io_fail_timeout_and_wait_without_it() {
    let mut lab = MpLab::start(FILE_BYTES, ["0x1", "0x2"]);
    // -u 5: errors come about 5 s after the last path went, not before.
    let run = start_bench(&lab, "fastfail", 12, &["-u", "5", "-l", "30"]);
    std::thread::sleep(Duration::from_secs(2));
    lab.kill(0);
    lab.kill(1);
    let mut run = run;
    let status = run.daemon.wait(Duration::from_secs(40));
    let out = lab.bench_output(run.name);
    let report: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}\n{}", lab.bench_log(run.name)));
    assert!(status.is_some(), "bench did not finish");
    let mp = &report["multipath"];
    assert!(mp["io_errors"].as_u64().unwrap_or(0) > 0, "with no path for 10 s and -u 5, held IOs must fail: {mp:#}");
    let last_failure_ms =
        failures(&report, "127.0.0.").iter().filter_map(|e| e["at_ms"].as_f64()).fold(0.0_f64, f64::max);
    let first_error_ms = mp["first_io_error_ms"].as_f64().expect("first_io_error_ms");
    let after = first_error_ms - last_failure_ms;
    eprintln!("first IO error {after:.0} ms after the last path failed");
    assert!((4_500.0..7_000.0).contains(&after), "IOs failed {after} ms after the last path went, want about 5 s");

    // No -u, reconnect forever: IOs wait and finish once a path returns.
    lab.boot(0);
    lab.boot(1);
    let run = start_bench(&lab, "hold", 14, &[]);
    std::thread::sleep(Duration::from_secs(2));
    lab.kill(0);
    lab.kill(1);
    std::thread::sleep(Duration::from_secs(4));
    lab.boot(1);
    wait_current(&run, &lab, "127.0.0.3", Duration::from_secs(10), "B back");
    let report = finish_clean(&lab, run, Duration::from_secs(40));
    assert!(report["multipath"]["held_max"].as_u64().unwrap_or(0) > 0, "IOs were held: {:#}", report["multipath"]);
}

#[test]
fn refused_paths_and_policies_are_clear_errors_that_change_nothing() {
    let lab = MpLab::start(FILE_BYTES, ["0x1", "0x2"]);
    let run = start_bench(&lab, "refusals", 8, &[]);
    let before = MpLab::host_call(&run.socket, "bdev_nvme_get_controllers", json!({})).expect("controllers");
    let attach = |addr: &str| {
        MpLab::host_call(
            &run.socket,
            "bdev_nvme_attach_controller",
            json!({"name": "Nvme0", "trtype": "tcp", "adrfam": "ipv4", "traddr": addr, "trsvcid": "4420",
                   "subnqn": mplab::NQN, "multipath": "multipath", "ctrlr_loss_timeout_sec": -1,
                   "reconnect_delay_sec": 1}),
        )
    };
    // Same file, another namespace UUID: not the same namespace.
    let other_ns = mplab::extra_gateway(&lab, "127.0.0.4", (40000, 40100), "11111111-2222-4333-8444-555555555555");
    let err = attach("127.0.0.4").expect_err("a different namespace identity must be refused");
    assert!(err.contains("different identity") && err.contains("UUID"), "{err}");
    // Same namespace, but A's controller-ID range: the host would see CNTLID 1 twice.
    let dup = mplab::extra_gateway(&lab, "127.0.0.5", (1, 100), mplab::NS_UUID);
    let err = attach("127.0.0.5").expect_err("a duplicate controller ID must be refused");
    assert!(err.contains("controller ID 1") && err.contains("already used"), "{err}");
    let err = MpLab::host_call(
        &run.socket,
        "bdev_nvme_set_multipath_policy",
        json!({"name": "Nvme0n1", "policy": "fastest_path"}),
    )
    .expect_err("an unknown policy must be refused");
    assert!(err.contains("fastest_path"), "{err}");
    // Options are for controllers attached later; with paths attached SPDK answers -EPERM.
    let err = MpLab::host_call(&run.socket, "bdev_nvme_set_options", json!({"timeout_us": 1000}))
        .expect_err("set_options after attach must be refused");
    assert!(err.contains("Operation not permitted") && err.contains("before the first"), "{err}");
    let after = MpLab::host_call(&run.socket, "bdev_nvme_get_controllers", json!({})).expect("controllers");
    assert_eq!(path_states(&before), path_states(&after), "a refused call changed the paths");
    assert_eq!(path_states(&after).len(), 2, "{after:#}");
    drop((other_ns, dup));
    finish_clean(&lab, run, Duration::from_secs(30));
}

/// Acceptance 5: a hung (or blackholed) gateway that comes back must not
/// execute its late copies of writes the host already moved to B. The bench
/// writes (verified) through B for 5 s while A is stopped, A resumes, the run
/// goes on 5 s more; then A's listener is set inaccessible so the final pass
/// reads every written block through B alone.
fn late_writes_never_overwrite_newer_data(fault: &str) {
    let lab = MpLab::start(FILE_BYTES, ["0x1", "0x2"]);
    let name = if fault == "stop" { "stale_stop" } else { "stale_blackhole" };
    let run = start_bench_rw(&lab, name, 18, "randwrite", &["--verify_final_pass"]);
    wait_current(&run, &lab, "127.0.0.2", Duration::from_secs(5), "start");
    std::thread::sleep(Duration::from_secs(2));
    match fault {
        "stop" => lab.gateways[0].signal(libc::SIGSTOP),
        _ => lab.netns.blackhole("127.0.0.2", true),
    }
    wait_current(&run, &lab, "127.0.0.3", Duration::from_secs(5), "failover");
    // Writes keep going through B (the same blocks are rewritten all the time: 64 MiB at QD 32 x 2).
    std::thread::sleep(Duration::from_secs(5));
    match fault {
        "stop" => lab.gateways[0].signal(libc::SIGCONT),
        _ => lab.netns.blackhole("127.0.0.2", false),
    }
    std::thread::sleep(Duration::from_secs(5));
    // Final pass through B alone.
    lab.set_ana(0, "inaccessible");
    wait_current(&run, &lab, "127.0.0.3", Duration::from_secs(5), "A inaccessible for the final pass");
    let report = finish_clean(&lab, run, Duration::from_secs(60));
    let fp = &report["final_pass"];
    assert_eq!(fp["verify_errors"], 0, "a late write overwrote newer data: {fp:#}");
    assert_eq!(fp["io_errors"], 0, "{fp:#}");
    assert!(fp["units_checked"].as_u64().unwrap_or(0) > 1000, "final pass checked too little: {fp:#}");
    assert!(!failures(&report, "127.0.0.2").is_empty(), "A never failed: {:#}", report["multipath"]);
    eprintln!("{fault}: final pass {fp}");
}

#[test]
fn late_writes_of_a_resumed_hung_gateway_never_overwrite_newer_data() {
    late_writes_never_overwrite_newer_data("stop");
}

#[test]
fn late_writes_of_an_unblackholed_gateway_never_overwrite_newer_data() {
    late_writes_never_overwrite_newer_data("blackhole");
}
