//! Reactors that sleep when idle (issue 12): an idle gateway and an attached
//! idle host cost almost no CPU, `busy` still spins, and no IO or control
//! message is lost when it arrives just as a reactor falls asleep.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corepath_tests::bins::{binary, corepath_rpc_ok, wait_for_rpc, Daemon, TempDir};
use corepath_tests::gateway::{free_port, GatewaySetup, TestGateway, NQN};
use corepath_tests::host::test_controller_options;
use corepath_tests::{gateway_and_host_cores, pattern};
use engine::{Engine, EngineOptions, IdlePolicy, IoBuf, IoChannel, IoOp, RingIo, TransportId};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use transport_tcp::TcpHostTransport;

/// How long the idle CPU is measured: 5 s, or `CP_IDLE_WINDOW_S` seconds
/// (60 shows keep-alive holding a controller through a minute of sleep).
fn idle_window() -> Duration {
    let secs = std::env::var("CP_IDLE_WINDOW_S").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    Duration::from_secs(secs)
}
/// The most of one core an idle gateway or host may use.
const IDLE_CPU_LIMIT: f64 = 0.01;

/// User plus system CPU time of process `pid` (or this process), in seconds.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// A `corepath-tgt` configured through `corepath-rpc` with DESIGN.md's
/// subsystem on a malloc bdev, listening on 127.0.0.2.
struct RpcGateway {
    daemon: Daemon,
    socket: std::path::PathBuf,
    port: u16,
}

impl RpcGateway {
    fn start(dir: &TempDir, idle: &str) -> RpcGateway {
        let socket = dir.join(&format!("tgt-{idle}.sock"));
        let socket_arg = socket.to_str().expect("UTF-8 temp path").to_string();
        let (gateway_core, _) = gateway_and_host_cores();
        let mask = format!("0x{:x}", 1u64 << gateway_core);
        let args = ["-m", mask.as_str(), "-r", socket_arg.as_str(), "--idle", idle];
        let mut daemon = Daemon::spawn(&binary("corepath-tgt"), &args, &dir.join(&format!("tgt-{idle}.log")));
        wait_for_rpc(&mut daemon, &socket, "corepath-tgt");
        let port = free_port("127.0.0.2");
        let gw = RpcGateway { daemon, socket, port };
        gw.rpc(&["nvmf_create_transport", "-t", "TCP", "-m", "64"]);
        gw.rpc(&["bdev_malloc_create", "-b", "Malloc0", "16", "512"]);
        gw.rpc(&["nvmf_create_subsystem", NQN, "-a", "-s", "SPDK_BDEV_0", "-i", "1", "-I", "32760"]);
        gw.rpc(&["nvmf_subsystem_add_ns", NQN, "Malloc0"]);
        let port = gw.port.to_string();
        gw.rpc(&["nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.2", "-s", port.as_str()]);
        gw
    }

    fn rpc(&self, args: &[&str]) -> String {
        corepath_rpc_ok(&self.daemon, &self.socket, args)
    }

    fn reactors(&self) -> Value {
        serde_json::from_str(&self.rpc(&["framework_get_reactors"])).expect("framework_get_reactors is JSON")
    }

    fn trid(&self) -> TransportId {
        TransportId::tcp("127.0.0.2", &self.port.to_string(), NQN)
    }
}

fn host_engine(idle: IdlePolicy) -> Engine<TcpHostTransport> {
    let (_, host_core) = gateway_and_host_cores();
    let mut opts = EngineOptions::on_cores(&[host_core]);
    opts.idle = idle;
    Engine::start(opts, |_| TcpHostTransport::new()).expect("start the host engine")
}

/// Writes one block of `seed`'s pattern at `lba` and reads it back through `chan`.
fn write_and_verify(chan: &IoChannel, ns: &engine::Namespace, lba: u64, seed: u64) -> Duration {
    let bytes = ns.block_size as usize;
    let mut buf = IoBuf::new(bytes);
    pattern::fill(buf.as_mut_slice(), seed, lba * bytes as u64);
    let start = Instant::now();
    chan.submit(RingIo { ns: ns.clone(), op: IoOp::Write, lba, num_blocks: 1, buf: Some(buf), tag: seed })
        .unwrap_or_else(|_| panic!("ring full"));
    let done = chan.wait_completion(Duration::from_secs(10)).expect("write completes");
    let mut slowest = start.elapsed();
    assert!(done.status.is_success(), "write at lba {lba}: {:?}", done.status);
    assert_eq!(done.tag, seed, "the completion is the write's, not another IO's");
    let start = Instant::now();
    chan.submit(RingIo {
        ns: ns.clone(),
        op: IoOp::Read,
        lba,
        num_blocks: 1,
        buf: Some(IoBuf::new(bytes)),
        tag: !seed,
    })
    .unwrap_or_else(|_| panic!("ring full"));
    let done = chan.wait_completion(Duration::from_secs(10)).expect("read completes");
    slowest = slowest.max(start.elapsed());
    assert!(done.status.is_success(), "read at lba {lba}: {:?}", done.status);
    assert_eq!(done.tag, !seed);
    let data = done.buf.expect("read buffer comes back");
    let mismatch = pattern::first_mismatch(data.as_slice(), seed, lba * bytes as u64);
    assert_eq!(mismatch, None, "lba {lba} does not hold what was just written");
    slowest
}

#[test]
fn idle_gateway_and_attached_host_use_under_one_percent_of_a_core() {
    let dir = TempDir::new("idle-cpu");
    for (name, policy) in [("adaptive", IdlePolicy::adaptive()), ("interrupt", IdlePolicy::Interrupt)] {
        let gw = RpcGateway::start(&dir, name);
        let engine = host_engine(policy);
        // A short keep-alive so the window holds several of them: timers fire while both sleep.
        let opts = engine::ControllerOptions { keep_alive_timeout_ms: 2_000, ..test_controller_options() };
        let ctrlr = engine.attach_controller(&gw.trid(), &opts).expect("attach");
        let ns = ctrlr.namespace(1).expect("namespace 1");
        let (chan, job) = IoChannel::new(4);
        engine.spawn_job(0, Box::new(job)).expect("spawn the ring job");
        write_and_verify(&chan, &ns, 3, 1);

        let controllers_before = gw.rpc(&["nvmf_subsystem_get_controllers", NQN]);
        // Let the last turns settle, then measure.
        std::thread::sleep(Duration::from_millis(200));
        let (gw_before, host_before) = (cpu_seconds(Some(gw.daemon.pid())), cpu_seconds(None));
        std::thread::sleep(idle_window());
        let (gw_after, host_after) = (cpu_seconds(Some(gw.daemon.pid())), cpu_seconds(None));
        let window = idle_window().as_secs_f64();
        let (gw_share, host_share) = ((gw_after - gw_before) / window, (host_after - host_before) / window);
        eprintln!("{name}: idle gateway {:.2}% of a core, idle host {:.2}%", gw_share * 100.0, host_share * 100.0);
        assert!(gw_share < IDLE_CPU_LIMIT, "{name}: idle gateway used {:.2}% of a core", gw_share * 100.0);
        assert!(host_share < IDLE_CPU_LIMIT, "{name}: idle host used {:.2}% of a core", host_share * 100.0);

        // Keep-alive held the controller (the same one, not a reconnected one),
        // and IO after the long sleep is served at once.
        assert_eq!(gw.rpc(&["nvmf_subsystem_get_controllers", NQN]), controllers_before, "{name}");
        assert!(!gw.daemon.logs().contains("keep-alive timeout"), "{name}: {}", gw.daemon.logs());
        let woke_in = write_and_verify(&chan, &ns, 5, 2);
        assert!(woke_in < Duration::from_secs(1), "{name}: the first IO after idling took {woke_in:?}");
        let reactors = gw.reactors();
        let r = &reactors["reactors"][0];
        assert_eq!(r["idle_policy"], json!(name));
        assert!(r["sleeps"].as_u64().unwrap_or(0) > 0, "{name}: the gateway reactor never slept: {r}");
        let stats = engine.reactor_stats(0).expect("reactor 0");
        assert!(stats.sleeps() > 0, "{name}: the host reactor never slept");
        chan.close();
        engine.shutdown();
    }
}

#[test]
fn busy_gateway_still_spins() {
    let dir = TempDir::new("busy-cpu");
    let gw = RpcGateway::start(&dir, "busy");
    let before = cpu_seconds(Some(gw.daemon.pid()));
    std::thread::sleep(Duration::from_secs(1));
    let share = cpu_seconds(Some(gw.daemon.pid())) - before;
    // A spinning reactor takes a whole core; on a shared CI machine at least a third of one.
    assert!(share > 0.33, "a busy gateway used only {:.0}% of a core", share * 100.0);
    let reactors = gw.reactors();
    assert_eq!(reactors["reactors"][0]["idle_policy"], json!("busy"));
    assert_eq!(reactors["reactors"][0]["sleeps"], json!(0));
}

/// IOs each of the two IO threads sends (half writes, half reads of them);
/// the RPC thread adds about 25,000 listener changes: over 100,000 in all.
const IOS_PER_THREAD: u64 = 40_000;

#[test]
fn nothing_is_lost_when_work_arrives_as_reactors_fall_asleep() {
    let (gateway_core, _) = gateway_and_host_cores();
    let setup = GatewaySetup { idle: IdlePolicy::Interrupt, ..GatewaySetup::new(gateway_core, "127.0.0.2", 4 << 20) };
    let gw = Arc::new(TestGateway::start(&setup));
    let engine = host_engine(IdlePolicy::Interrupt);
    // No keep-alive or timeout timer may rescue a lost wake-up within the bound checked below.
    let opts = engine::ControllerOptions { keep_alive_timeout_ms: 30_000, ..test_controller_options() };
    let ctrlr = engine.attach_controller(&gw.trid(NQN), &opts).expect("attach");
    let ns = ctrlr.namespace(1).expect("namespace 1");
    let blocks = ns.num_blocks;
    let done = Arc::new(AtomicBool::new(false));
    let slowest = Arc::new(Mutex::new([Duration::ZERO; 3]));

    let mut threads = Vec::new();
    for source in 0..2u64 {
        let (chan, job) = IoChannel::new(4);
        engine.spawn_job(0, Box::new(job)).expect("spawn the ring job");
        let (ns, slowest) = (ns.clone(), slowest.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed + source);
            let mut worst = Duration::ZERO;
            // Each thread owns half the namespace, so its read-back sees only its own writes.
            let half = blocks / 2;
            for i in 0..IOS_PER_THREAD / 2 {
                std::thread::sleep(Duration::from_micros(rng.gen_range(0..2_000)));
                let lba = source * half + rng.gen_range(0..half);
                worst = worst.max(write_and_verify(&chan, &ns, lba, (source << 32) | i));
            }
            chan.close();
            slowest.lock().expect("slowest")[source as usize] = worst;
        }));
    }
    // The RPC thread: a listener added and removed, each a message to the
    // gateway's reactor 0 that the RPC waits for.
    let rpc_thread = {
        let (gw, done, slowest) = (gw.clone(), done.clone(), slowest.clone());
        std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed + 7);
            let port = free_port("127.0.0.2").to_string();
            let address = json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.2", "trsvcid": port});
            let mut worst = Duration::ZERO;
            let mut calls = 0u64;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(rng.gen_range(0..2_000)));
                let method =
                    if calls % 2 == 0 { "nvmf_subsystem_add_listener" } else { "nvmf_subsystem_remove_listener" };
                let start = Instant::now();
                gw.call(method, json!({"nqn": NQN, "listen_address": address}));
                worst = worst.max(start.elapsed());
                calls += 1;
            }
            slowest.lock().expect("slowest")[2] = worst;
            calls
        })
    };
    for t in threads {
        t.join().expect("IO thread");
    }
    done.store(true, Ordering::Relaxed);
    let calls = rpc_thread.join().expect("RPC thread");
    let slowest = *slowest.lock().expect("slowest");
    let host_sleeps = engine.reactor_stats(0).expect("reactor 0").sleeps();
    let gw_sleeps = gw.service.call("framework_get_reactors", json!(null)).expect("reactors")["reactors"][0]["sleeps"]
        .as_u64()
        .unwrap_or(0);
    eprintln!(
        "{} IOs and {calls} listener changes; slowest IO {:?} / {:?}, slowest RPC {:?}; \
         host reactor slept {host_sleeps} times, gateway reactor {gw_sleeps}",
        IOS_PER_THREAD * 2,
        slowest[0],
        slowest[1],
        slowest[2]
    );
    // Both sides really slept between IOs, so the wake-ups were exercised.
    assert!(host_sleeps > IOS_PER_THREAD / 2, "the host reactor slept only {host_sleeps} times");
    assert!(gw_sleeps > IOS_PER_THREAD / 2, "the gateway reactor slept only {gw_sleeps} times");
    // A lost wake-up would wait for the next timer: the host's keep-alive
    // (seconds away) or the gateway's sweep (up to 1 s away).
    for (i, worst) in slowest.iter().enumerate() {
        assert!(*worst < Duration::from_millis(500), "source {i}: an operation waited {worst:?} for its reactor");
    }
    engine.shutdown();
}

#[test]
fn paced_bench_keeps_to_rate_iops() {
    // One embedded gateway (malloc), 2 s of 4K random reads at QD8 capped at 2,000 IOPS.
    let out = Command::new(binary("corepath-bench"))
        .args(["--gateways", "1", "--rw", "randread", "--bs", "4k", "--iodepth", "8", "--runtime", "2"])
        .args(["--rate_iops", "2000", "--output-format", "json"])
        .output()
        .expect("run corepath-bench");
    assert!(out.status.success(), "corepath-bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let job = &report["jobs"][0];
    let iops = job["read"]["iops"].as_f64().expect("read iops");
    assert!((1_800.0..=2_050.0).contains(&iops), "paced at 2,000 IOPS, the run made {iops:.0}");
    assert_eq!(job["job options"]["rate_iops"], json!("2000,2000"), "the pace is reported as fio reports it");
}
