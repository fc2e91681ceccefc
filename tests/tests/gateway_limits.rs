//! A gateway that clients can reach but not hurt (issue 15): out of file
//! descriptors and over its connection limit it refuses cleanly, keeps its
//! log short, and serves a new host as soon as the attackers let go.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use corepath_tests::bins::{binary, corepath_rpc_ok, wait_for_rpc, Daemon, TempDir};
use corepath_tests::gateway::{free_port, NQN};
use corepath_tests::host::{test_controller_options, TestHost};
use corepath_tests::{gateway_and_host_cores, pattern};
use engine::TransportId;
use serde_json::Value;

const TRADDR: &str = "127.0.0.21";
/// Connections the attacker holds: more than fit in the descriptor limit.
const ATTACKERS: usize = 200;
/// How long they are held (below the gateway's 5 s Connect deadline).
const HOLD: Duration = Duration::from_secs(3);

#[test]
fn two_hundred_attackers_under_ulimit_128_keep_the_log_short_and_a_new_host_is_served_at_once() {
    let dir = TempDir::new("limits");
    let socket = dir.join("tgt.sock");
    let socket_arg = socket.to_str().expect("UTF-8 temp path").to_string();
    let (gateway_core, host_core) = gateway_and_host_cores();
    let mask = format!("0x{:x}", 1u64 << gateway_core);
    let tgt = binary("corepath-tgt");
    let script = format!("ulimit -n 128 && exec '{}' -m {mask} -r '{socket_arg}'", tgt.display());
    let mut daemon = Daemon::spawn(std::path::Path::new("/bin/sh"), &["-c", &script], &dir.join("tgt.log"));
    wait_for_rpc(&mut daemon, &socket, "corepath-tgt under ulimit -n 128");
    let rpc = |args: &[&str]| corepath_rpc_ok(&daemon, &socket, args);
    let port = free_port(TRADDR).to_string();
    rpc(&["nvmf_create_transport", "-t", "TCP"]);
    rpc(&["bdev_malloc_create", "-b", "Malloc0", "8", "512"]);
    rpc(&["nvmf_create_subsystem", NQN, "-a", "-s", "SPDK_BDEV_0"]);
    rpc(&["nvmf_subsystem_add_ns", NQN, "Malloc0"]);
    rpc(&["nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", TRADDR, "-s", &port]);
    let reactors: Value = serde_json::from_str(&rpc(&["framework_get_reactors"])).expect("JSON");
    let max_connections = reactors["max_connections"].as_u64().expect("max_connections reported");
    assert!(max_connections < 128, "the connection limit ({max_connections}) fits in 128 descriptors");

    let log_lines = || daemon.logs().lines().count();
    let lines_before = log_lines();
    let attackers: Vec<TcpStream> =
        (0..ATTACKERS).filter_map(|_| TcpStream::connect((TRADDR, port.parse::<u16>().unwrap())).ok()).collect();
    assert!(attackers.len() > max_connections as usize, "the attack went past the limit");
    std::thread::sleep(HOLD);
    let reactors: Value = serde_json::from_str(&rpc(&["framework_get_reactors"])).expect("JSON");
    let open = reactors["connections"].as_u64().expect("connections reported");
    assert!(open <= max_connections, "{open} connections open, over the limit of {max_connections}");
    let lines = log_lines() - lines_before;
    // Under 100 lines a minute: over the hold, a few rate-limited lines at most.
    let allowed = (100 * HOLD.as_secs() / 60).max(6) as usize;
    assert!(lines <= allowed, "{lines} log lines in {HOLD:?} of attack:\n{}", daemon.logs());

    drop(attackers);
    let let_go = Instant::now();
    let trid = TransportId::tcp(TRADDR, &port, NQN);
    let host = loop {
        match TestHost::attach(&trid, &[host_core], &test_controller_options()) {
            Ok(h) => break h,
            Err(e) => {
                assert!(let_go.elapsed() < Duration::from_secs(1), "no new host served 1 s after the attack: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let served_in = let_go.elapsed();
    let data = pattern::make(host.bytes(8), 0x15, 0);
    assert!(host.write(0, &data).is_success());
    let (status, back) = host.read(0, 8);
    assert!(status.is_success());
    assert_eq!(pattern::first_mismatch(&back, 0x15, 0), None, "data read back equals data written");
    eprintln!("limit {max_connections}, {lines} log lines during the attack, new host served {served_in:?} after");
    assert!(served_in < Duration::from_secs(1));
    drop(host);
}
