//! The real daemons: `corepath-tgt` configured with `corepath-rpc` exactly
//! as DESIGN.md's gateway sequence does, checked against SPDK's result
//! shapes; a host attaches and writes; `save_config`, SIGTERM, restart with
//! `-c` gives the same state (UUIDs included) and hosts attach again; bad
//! parameters get the JSON-RPC error and exit status 1 and the daemon
//! keeps answering.
//!
//! Needs the binaries built with this test's profile (scripts/test.sh builds
//! them; see `corepath_tests::bins`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use corepath_tests::bins::{binary, wait_for_rpc, Daemon, TempDir};
use corepath_tests::gateway::{free_port, NQN};
use corepath_tests::host::{test_controller_options, TestHost};
use corepath_tests::pattern;
use engine::TransportId;
use serde_json::{json, Value};

const TRADDR: &str = "127.0.0.2";

/// A corepath-tgt and the corepath-rpc that talks to it.
struct Gateway {
    daemon: Daemon,
    socket: PathBuf,
}

impl Gateway {
    /// Starts `corepath-tgt -m 0x1 -r <socket> --idle adaptive [-c config]` and waits for its RPC socket.
    fn start(dir: &TempDir, log_name: &str, config: Option<&Path>) -> Gateway {
        let socket = dir.join("tgt.sock");
        let socket_arg = socket.to_str().expect("UTF-8 temp path").to_string();
        let mut args = vec!["-m", "0x1", "-r", socket_arg.as_str(), "--idle", "adaptive"];
        let config_arg = config.map(|c| c.to_str().expect("UTF-8 temp path").to_string());
        if let Some(c) = &config_arg {
            args.extend(["-c", c.as_str()]);
        }
        let mut daemon = Daemon::spawn(&binary("corepath-tgt"), &args, &dir.join(log_name));
        wait_for_rpc(&mut daemon, &socket, "corepath-tgt");
        Gateway { daemon, socket }
    }

    /// Runs `corepath-rpc -s <socket> -t 10 args...`.
    fn rpc(&self, args: &[&str]) -> Output {
        let socket = self.socket.to_str().expect("UTF-8 temp path");
        Command::new(binary("corepath-rpc"))
            .args(["-s", socket, "-t", "10"])
            .args(args)
            .output()
            .expect("run corepath-rpc")
    }

    /// Runs corepath-rpc and expects success; returns stdout.
    fn rpc_ok(&self, args: &[&str]) -> String {
        let out = self.rpc(args);
        assert!(
            out.status.success(),
            "corepath-rpc {args:?} failed ({}):\n{}\ndaemon log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.daemon.logs()
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs corepath-rpc and parses its JSON output.
    fn rpc_json(&self, args: &[&str]) -> Value {
        let out = self.rpc_ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("corepath-rpc {args:?}: not JSON ({e}):\n{out}"))
    }

    /// Runs corepath-rpc expecting a JSON-RPC error: exit status 1 and
    /// rpc.py's "Got JSON-RPC error response" report; returns the error object.
    fn rpc_error(&self, args: &[&str]) -> Value {
        let out = self.rpc(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "corepath-rpc {args:?} should fail with 1:\n{stderr}");
        assert!(out.stdout.is_empty(), "corepath-rpc {args:?} printed a result on error");
        let (_, response) = stderr
            .split_once("Got JSON-RPC error response\nresponse:\n")
            .unwrap_or_else(|| panic!("corepath-rpc {args:?}: no JSON-RPC error report:\n{stderr}"));
        serde_json::from_str(response).unwrap_or_else(|e| panic!("error response not JSON ({e}):\n{response}"))
    }
}

/// DESIGN.md's gateway sequence with a malloc bdev in place of RBD.
fn configure(gw: &Gateway, port: &str) {
    assert_eq!(gw.rpc_ok(&["nvmf_create_transport", "-t", "TCP", "-m", "64"]), "");
    assert_eq!(gw.rpc_ok(&["bdev_malloc_create", "-b", "Malloc0", "64", "512"]).trim(), "Malloc0");
    gw.rpc_ok(&["nvmf_create_subsystem", NQN, "-a", "-s", "SPDK_BDEV_0", "-i", "1", "-I", "32760"]);
    gw.rpc_ok(&["nvmf_subsystem_add_ns", NQN, "Malloc0"]);
    gw.rpc_ok(&["nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", TRADDR, "-s", port]);
}

/// Checks SPDK's `nvmf_get_subsystems` shape and DESIGN.md's values.
fn check_subsystem(subsystems: &Value, port: &str, bdev_uuid: &str) {
    let list = subsystems.as_array().expect("nvmf_get_subsystems returns an array");
    assert_eq!(list.len(), 1, "one subsystem asked for: {subsystems}");
    let s = &list[0];
    let keys = [
        "nqn",
        "subtype",
        "listen_addresses",
        "allow_any_host",
        "hosts",
        "serial_number",
        "model_number",
        "max_namespaces",
        "min_cntlid",
        "max_cntlid",
        "namespaces",
    ];
    for k in keys {
        assert!(s.get(k).is_some(), "key {k} missing from {s}");
    }
    assert_eq!(s["nqn"], NQN);
    assert_eq!(s["subtype"], "NVMe");
    assert_eq!(s["listen_addresses"], json!([{"trtype": "TCP", "adrfam": "IPv4", "traddr": TRADDR, "trsvcid": port}]));
    assert_eq!(s["allow_any_host"], true);
    assert_eq!(s["hosts"], json!([]));
    assert_eq!(s["serial_number"], "SPDK_BDEV_0");
    assert_eq!(s["model_number"], "SPDK bdev Controller");
    assert_eq!(s["max_namespaces"], 32);
    assert_eq!(s["min_cntlid"], 1);
    assert_eq!(s["max_cntlid"], 32760);
    let nguid = bdev_uuid.replace('-', "").to_uppercase();
    assert_eq!(
        s["namespaces"],
        json!([{"nsid": 1, "bdev_name": "Malloc0", "name": "Malloc0", "nguid": nguid, "uuid": bdev_uuid}])
    );
}

/// Attaches a host, checks what Identify says, writes 1 MiB and reads it back.
fn attach_write_read(trid: &TransportId, core: usize, tag: u64) {
    let host = TestHost::attach(trid, &[core], &test_controller_options()).expect("host attaches");
    let d = &host.ctrlr.data;
    assert_eq!(d.serial_number, "SPDK_BDEV_0");
    assert_eq!(d.model_number, "SPDK bdev Controller");
    assert_eq!(d.subnqn, NQN);
    assert!((1..=32760).contains(&d.cntlid), "cntlid {} outside -i 1 -I 32760", d.cntlid);
    assert_eq!((host.ns.num_blocks, host.ns.block_size), (64 * 2048, 512));
    let data = pattern::make(1 << 20, tag, 4096 * 512);
    assert!(host.write(4096, &data).is_success());
    let (s, back) = host.read(4096, 2048);
    assert!(s.is_success(), "read: {s:?}");
    assert_eq!(pattern::first_mismatch(&back, tag, 4096 * 512), None, "read back differs");
}

#[test]
fn design_sequence_save_config_and_restart_keep_spdks_shapes_and_serve_hosts() {
    let dir = TempDir::new("gateway-rpc");
    // The daemon runs on core 0 (-m 0x1); the host on core 1 if there is one.
    let host_core = usize::from(std::thread::available_parallelism().map_or(1, usize::from) > 1);
    let port = free_port(TRADDR).to_string();
    let trid = TransportId::tcp(TRADDR, &port, NQN);

    let gw = Gateway::start(&dir, "tgt-1.log", None);
    configure(&gw, &port);
    let bdevs = gw.rpc_json(&["bdev_get_bdevs"]);
    let uuid = bdevs[0]["uuid"].as_str().expect("bdev uuid").to_string();
    assert_eq!(bdevs[0]["name"], "Malloc0");
    assert_eq!(bdevs[0]["num_blocks"], 131072);
    assert_eq!(bdevs[0]["block_size"], 512);
    check_subsystem(&gw.rpc_json(&["nvmf_get_subsystems", NQN]), &port, &uuid);
    attach_write_read(&trid, host_core, 1);

    let config_path = dir.join("config.json");
    let config = gw.rpc_ok(&["save_config"]);
    let config_json: Value = serde_json::from_str(&config).expect("save_config prints JSON");
    assert!(config_json["subsystems"].is_array(), "save_config shape: {config_json}");
    std::fs::write(&config_path, &config).expect("write config");
    let all_subsystems = gw.rpc_json(&["nvmf_get_subsystems"]);

    let Gateway { mut daemon, socket } = gw;
    let status = daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert!(matches!(status, Some(s) if s.success()), "SIGTERM: exit {status:?}\n{}", daemon.logs());
    assert!(!socket.exists(), "the RPC socket file outlived the daemon");
    drop(daemon);

    let gw = Gateway::start(&dir, "tgt-2.log", Some(&config_path));
    assert_eq!(gw.rpc_json(&["nvmf_get_subsystems"]), all_subsystems, "subsystems after restart with -c");
    assert_eq!(gw.rpc_json(&["bdev_get_bdevs"]), bdevs, "bdevs (UUIDs included) after restart with -c");
    attach_write_read(&trid, host_core, 2);

    // Bad parameters: the JSON-RPC error, exit status 1, and the daemon keeps answering.
    let e = gw.rpc_error(&["bdev_malloc_create", "-b", "Malloc0", "64", "512"]);
    assert!(e["code"].as_i64().is_some_and(|c| c < 0), "duplicate bdev: {e}");
    let e = gw.rpc_error(&["nvmf_subsystem_add_ns", "nqn.2016-06.io.spdk:no-such-subsystem", "Malloc0"]);
    assert!(e["code"].as_i64().is_some_and(|c| c < 0), "unknown subsystem: {e}");
    let e = gw.rpc_error(&["call", "nvmf_create_subsystem", r#"{"nqn": "not an nqn"}"#]);
    assert_eq!(e["code"], -32602, "invalid NQN: {e}");
    let e = gw.rpc_error(&[
        "call",
        "bdev_malloc_create",
        r#"{"name": "M9", "num_blocks": 8, "block_size": 512, "bogus": 1}"#,
    ]);
    assert_eq!(e["code"], -32602, "unknown parameter: {e}");
    let e = gw.rpc_error(&["call", "no_such_method"]);
    assert_eq!(e["code"], -32601, "unknown method: {e}");
    assert_eq!(gw.rpc_json(&["nvmf_get_subsystems"]), all_subsystems, "bad calls changed the configuration");
    assert_eq!(gw.rpc_json(&["bdev_get_bdevs"]), bdevs, "bad calls changed the bdevs");
    attach_write_read(&trid, host_core, 3);
}
