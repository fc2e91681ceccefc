//! SPDK's own `rpc.py` against corepath: the 40 requests it wrote to the
//! socket for the mission's gateway and host sequences
//! (`tests/data/spdk-rpc-requests.jsonl`, captured from SPDK v26.09-pre),
//! sent byte for byte to `corepath-tgt` (gateway methods) and to the host's
//! RPC server (`bdev_nvme_*`: the `HostRpc` router `corepath-bench
//! --rpc-socket` serves, here in the test's own process so that
//! `bdev_nvme_set_options` can come before the first attach, as in SPDK).
//!
//! What is rewritten, and nothing else: the port (`"trsvcid": "4420"` → a
//! free port the test picks; the addresses stay the capture's loopback
//! 127.0.0.2 and 127.0.0.3) and the AIO file (`/tmp/f` → a file of the test's
//! own on disk, since O_DIRECT fails on tmpfs). Until the methods of later
//! issues land, [`NOT_IMPLEMENTED_YET`] lists the requests that must answer
//! "not implemented yet" with their exact error, and [`stand_in`] the
//! substitutes the rest of the sequence needs meanwhile (bdev `aio0` or
//! `Malloc0` for `rbd0`; the RDMA attach again over TCP). Both lists shrink
//! as issues 13 (RBD) and 14 (RDMA) land.
//!
//! Needs the binaries built with this test's profile (`corepath_tests::bins`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use corepath_tests::bins::{binary, corepath_rpc_ok, wait_for_rpc, Daemon, TempDir};
use corepath_tests::gateway::{free_port, NQN};
use corepath_tests::host::{start_engine, test_controller_options};
use corepath_tests::{controller_paths, wait_for};
use multipath::MultipathHost;
use rpc::{HostRpc, Router, RpcClient};
use serde_json::{json, Value};

/// The capture, committed with the tests (CI runs from a fresh clone).
const REQUESTS: &str = include_str!("../data/spdk-rpc-requests.jsonl");

/// Gateway A's and B's addresses, as in the capture.
const ADDR_A: &str = "127.0.0.2";
const ADDR_B: &str = "127.0.0.3";

/// Requests of methods or transports that later issues implement: (method,
/// a text the request contains, JSON-RPC code, exact message).
const NOT_IMPLEMENTED_YET: [(&str, &str, i64, &str); 9] = [
    (
        "nvmf_create_transport",
        r#""trtype": "RDMA""#,
        -32602,
        "Invalid parameters: the RDMA transport is not implemented yet (issue 14)",
    ),
    (
        "bdev_rbd_register_cluster",
        "",
        -32601,
        "bdev_rbd_register_cluster: Ceph RBD bdevs are not implemented yet (issue 13)",
    ),
    (
        "bdev_rbd_get_clusters_info",
        "",
        -32601,
        "bdev_rbd_get_clusters_info: Ceph RBD bdevs are not implemented yet (issue 13)",
    ),
    ("bdev_rbd_create", "", -32601, "bdev_rbd_create: Ceph RBD bdevs are not implemented yet (issue 13)"),
    ("bdev_rbd_resize", "", -32601, "bdev_rbd_resize: Ceph RBD bdevs are not implemented yet (issue 13)"),
    (
        "nvmf_subsystem_add_listener",
        r#""trtype": "rdma""#,
        -32602,
        "Invalid parameters: the RDMA transport is not implemented yet (issue 14)",
    ),
    ("bdev_rbd_delete", "", -32601, "bdev_rbd_delete: Ceph RBD bdevs are not implemented yet (issue 13)"),
    (
        "bdev_rbd_unregister_cluster",
        "",
        -32601,
        "bdev_rbd_unregister_cluster: Ceph RBD bdevs are not implemented yet (issue 13)",
    ),
    (
        "bdev_nvme_attach_controller",
        r#""trtype": "rdma""#,
        -32602,
        "Invalid parameters: the RDMA transport is not implemented yet (issue 14)",
    ),
];

/// One captured request.
#[derive(Clone)]
struct Captured {
    /// 0-based line in the capture.
    line: usize,
    method: String,
    /// The exact bytes rpc.py wrote.
    bytes: String,
}

fn captured() -> Vec<Captured> {
    let list: Vec<Captured> = REQUESTS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(line, bytes)| {
            let v: Value = serde_json::from_str(bytes).unwrap_or_else(|e| panic!("capture line {line}: {e}"));
            let method = v["method"].as_str().unwrap_or_else(|| panic!("capture line {line}: no method")).to_string();
            Captured { line, method, bytes: bytes.to_string() }
        })
        .collect();
    assert_eq!(list.len(), 40, "the capture has 40 requests");
    list
}

/// The capture's requests of `method`, in order.
fn of(all: &[Captured], method: &str) -> Vec<Captured> {
    all.iter().filter(|c| c.method == method).cloned().collect()
}

/// The one request of `method` that contains `needle`.
fn one(all: &[Captured], method: &str, needle: &str) -> Captured {
    let found: Vec<Captured> = of(all, method).into_iter().filter(|c| c.bytes.contains(needle)).collect();
    assert_eq!(found.len(), 1, "{method} requests containing {needle:?}");
    found[0].clone()
}

/// The expected error of a request of a later issue, if it is one.
fn not_implemented_yet(c: &Captured) -> Option<(i64, &'static str)> {
    NOT_IMPLEMENTED_YET
        .iter()
        .find(|(m, needle, _, _)| *m == c.method && c.bytes.contains(needle))
        .map(|(_, _, code, message)| (*code, *message))
}

/// The test's own port and AIO file in place of the capture's.
struct Rewrite {
    port: u16,
    aio_file: PathBuf,
}

impl Rewrite {
    fn apply(&self, c: &Captured) -> String {
        let file = self.aio_file.to_str().expect("UTF-8 temp path");
        let mut out = c.bytes.replace(r#""trsvcid": "4420""#, &format!(r#""trsvcid": "{}""#, self.port));
        if c.method == "bdev_aio_create" {
            assert!(out.contains(r#""filename": "/tmp/f""#), "line {}: {out}", c.line);
            out = out.replace(r#""filename": "/tmp/f""#, &format!(r#""filename": {}"#, json!(file)));
        }
        out
    }
}

/// Substitutes for what later issues bring: the bytes with `from` replaced by `to` once.
fn stand_in(bytes: &str, from: &str, to: &str) -> String {
    assert_eq!(bytes.matches(from).count(), 1, "stand-in {from:?} in {bytes}");
    bytes.replace(from, to)
}

/// A JSON-RPC connection that sends raw bytes.
struct Conn {
    client: RpcClient,
    what: String,
}

impl Conn {
    fn open(socket: &Path, what: &str) -> Conn {
        let mut client =
            RpcClient::connect(socket).unwrap_or_else(|e| panic!("{what}: connect {}: {e}", socket.display()));
        client.set_timeout(Duration::from_secs(30)).expect("set RPC timeout");
        Conn { client, what: what.to_string() }
    }

    /// Sends `bytes` and returns the whole response object.
    fn send(&mut self, bytes: &str) -> Value {
        self.client.send_raw(bytes.as_bytes()).unwrap_or_else(|e| panic!("{}: send {bytes}: {e}", self.what));
        let response = self.client.recv_value().unwrap_or_else(|e| panic!("{}: response to {bytes}: {e}", self.what));
        assert_eq!(response["jsonrpc"], "2.0", "{response}");
        assert_eq!(response["id"], 1, "rpc.py's id comes back: {response}");
        response
    }

    /// Sends `bytes`, expects success, returns the result.
    fn ok(&mut self, bytes: &str) -> Value {
        let response = self.send(bytes);
        assert!(response.get("error").is_none(), "{}: {bytes}\nrefused: {response}", self.what);
        response["result"].clone()
    }

    /// Sends `bytes`, expects an error, returns (code, message).
    fn err(&mut self, bytes: &str) -> (i64, String) {
        let response = self.send(bytes);
        let e = &response["error"];
        assert!(e.is_object(), "{}: {bytes}\nshould fail, got {response}", self.what);
        (e["code"].as_i64().unwrap_or(0), e["message"].as_str().unwrap_or("").to_string())
    }

    /// A typed call (not from the capture), expecting success.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.client
            .call(method, Some(params.clone()))
            .unwrap_or_else(|e| panic!("{}: {method} {params}: {e}", self.what))
    }
}

/// A `corepath-tgt` daemon, killed by PID when dropped.
struct Tgt {
    daemon: Daemon,
    socket: PathBuf,
}

impl Tgt {
    fn start(dir: &TempDir, name: &str, core_mask: &str) -> Tgt {
        let socket = dir.join(&format!("{name}.sock"));
        let socket_arg = socket.to_str().expect("UTF-8 temp path").to_string();
        let mut daemon = Daemon::spawn(
            &binary("corepath-tgt"),
            &["-m", core_mask, "-r", &socket_arg, "--idle", "adaptive"],
            &dir.join(&format!("{name}.log")),
        );
        wait_for_rpc(&mut daemon, &socket, &format!("corepath-tgt {name}"));
        Tgt { daemon, socket }
    }

    fn conn(&self, what: &str) -> Conn {
        Conn::open(&self.socket, what)
    }

    /// `corepath-rpc -s <socket> -t 10 args...`, expecting success; its stdout.
    fn corepath_rpc(&self, args: &[&str]) -> String {
        corepath_rpc_ok(&self.daemon, &self.socket, args)
    }

    /// SIGTERM, and the daemon exits (closing its listeners).
    fn stop(mut self) {
        let status = self.daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "corepath-tgt did not stop cleanly: {status:?}");
    }
}

/// A zeroed file on the build directory's disk (O_DIRECT works there, not on tmpfs), removed on drop.
struct DiskFile(PathBuf);

impl DiskFile {
    fn new(name: &str, bytes: u64) -> DiskFile {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.img", std::process::id()));
        std::fs::File::create(&path).and_then(|f| f.set_len(bytes)).expect("create the AIO file");
        DiskFile(path)
    }
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Core masks for the gateways and the core for the host engine.
fn cores() -> (String, usize) {
    let (gateway_core, host_core) = corepath_tests::gateway_and_host_cores();
    (format!("{:#x}", 1u64 << gateway_core), host_core)
}

/// SPDK's key order of an NVMe subsystem in `nvmf_get_subsystems`
/// (../shared/spdk-shapes/nvmf_get_subsystems.json).
const SPDK_SUBSYSTEM_KEYS: [&str; 14] = [
    "nqn",
    "subtype",
    "listen_addresses",
    "allow_any_host",
    "hosts",
    "serial_number",
    "model_number",
    "max_namespaces",
    "passthrough",
    "min_cntlid",
    "max_cntlid",
    "dmrsl",
    "wzsl",
    "namespaces",
];

fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// The host side: an engine, the multipath host and its RPC router on a socket.
struct Host {
    server: Option<rpc::ServerHandle>,
    host: Arc<MultipathHost<transport_tcp::TcpHostTransport>>,
    socket: PathBuf,
}

impl Host {
    fn start(dir: &TempDir, core: usize) -> Host {
        let engine = Arc::new(start_engine(&[core]));
        let host = Arc::new(MultipathHost::new(engine));
        let mut router = Router::new();
        router
            .add(Arc::new(HostRpc::with_defaults(host.clone(), test_controller_options())))
            .expect("a fresh router takes the host methods");
        let socket = dir.join("host.sock");
        let server = rpc::serve(&socket, Arc::new(router)).expect("serve the host RPC");
        Host { server: Some(server), host, socket }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        self.host.detach_all();
    }
}

/// Every request of the capture, against gateway A (127.0.0.2), gateway B
/// (127.0.0.3, the one created with `-r`) and the host: each accepted and
/// doing what SPDK's does, or, for later issues, the exact "not implemented
/// yet" error.
#[test]
fn every_request_spdk_rpc_py_sends_is_accepted_and_does_what_spdk_does() {
    let all = captured();
    let dir = TempDir::new("spdk-replay");
    let (gateway_mask, host_core) = cores();
    let file = DiskFile::new("spdk-replay", 16 << 20);
    let port = free_port(ADDR_A);
    let rw = Rewrite { port, aio_file: file.0.clone() };
    let a = Tgt::start(&dir, "tgt-a", &gateway_mask);
    let mut ca = a.conn("gateway A");
    let mut checked = vec![false; all.len()];
    let expect_not_implemented = |conn: &mut Conn, c: &Captured, checked: &mut Vec<bool>| {
        let (code, message) = not_implemented_yet(c).unwrap_or_else(|| panic!("line {} is implemented", c.line));
        assert_eq!(conn.err(&rw.apply(c)), (code, message.to_string()), "line {}: {}", c.line, c.bytes);
        checked[c.line] = true;
    };

    // Framework methods.
    let c = &of(&all, "spdk_get_version")[0];
    let v = ca.ok(&rw.apply(c));
    assert!(v["version"].as_str().is_some_and(|s| s.starts_with("corepath v")), "{v}");
    assert!(v["fields"]["major"].is_u64(), "{v}");
    checked[c.line] = true;
    let c = &of(&all, "rpc_get_methods")[0];
    let methods = ca.ok(&rw.apply(c));
    let methods: Vec<&str> = methods.as_array().expect("an array").iter().filter_map(Value::as_str).collect();
    for g in &all[..30] {
        let listed = methods.contains(&g.method.as_str());
        let later = g.method.starts_with("bdev_rbd_");
        assert_eq!(listed, !later, "rpc_get_methods lists {} {}", g.method, if later { "too early" } else { "" });
    }
    assert!(methods.contains(&"framework_get_subsystems"), "{methods:?}");
    checked[c.line] = true;
    let c = &of(&all, "framework_get_reactors")[0];
    let v = ca.ok(&rw.apply(c));
    assert!(v["reactors"].as_array().is_some_and(|r| !r.is_empty()), "{v}");
    checked[c.line] = true;

    // Transports: RDMA later; TCP with every option rpc.py fills in, reported back as set.
    let rdma = one(&all, "nvmf_create_transport", r#""trtype": "RDMA""#);
    expect_not_implemented(&mut ca, &rdma, &mut checked);
    let tcp = one(&all, "nvmf_create_transport", r#""trtype": "TCP""#);
    assert_eq!(ca.ok(&rw.apply(&tcp)), json!(true));
    checked[tcp.line] = true;
    let c = &of(&all, "nvmf_get_transports")[0];
    let transports = ca.ok(&rw.apply(c));
    assert_eq!(transports.as_array().map(Vec::len), Some(1), "{transports}");
    let sent: Value = serde_json::from_str(&tcp.bytes).unwrap();
    for (name, value) in sent["params"].as_object().unwrap() {
        let want = if name == "trtype" { json!("TCP") } else { value.clone() };
        assert_eq!(transports[0][name], want, "nvmf_get_transports reports {name} as set: {transports}");
    }
    checked[c.line] = true;

    // RBD: later.
    for m in ["bdev_rbd_register_cluster", "bdev_rbd_get_clusters_info", "bdev_rbd_create", "bdev_rbd_resize"] {
        expect_not_implemented(&mut ca, &of(&all, m)[0], &mut checked);
    }

    // Bdevs.
    for (m, name) in [("bdev_malloc_create", "Malloc0"), ("bdev_null_create", "Null0"), ("bdev_aio_create", "aio0")] {
        let c = &of(&all, m)[0];
        assert_eq!(ca.ok(&rw.apply(c)), json!(name), "line {}", c.line);
        checked[c.line] = true;
    }
    let aio = ca.call("bdev_get_bdevs", json!({"name": "aio0"}));
    let aio_uuid = aio[0]["uuid"].as_str().expect("aio0 has a UUID").to_string();
    assert_eq!(aio[0]["driver_specific"]["aio"]["filename"], json!(file.0.to_str().unwrap()), "{aio}");

    // Subsystem A; the second create (gateway B's, with -r) is a duplicate on A.
    let creates = of(&all, "nvmf_create_subsystem");
    assert_eq!(creates.len(), 2);
    assert_eq!(ca.ok(&rw.apply(&creates[0])), json!(true));
    checked[creates[0].line] = true;
    // SPDK answers -32603 "Unable to create subsystem"; ours is -32602 (docs/rpc.md says why).
    let (code, message) = ca.err(&rw.apply(&creates[1]));
    assert_eq!(code, -32602, "{message}");
    assert!(message.contains("already exists"), "{message}");

    // Gateway B: the capture's TCP transport and its own create; then, typed,
    // the same file under the same UUID (the mission's shared image) and its listener.
    let b = Tgt::start(&dir, "tgt-b", &gateway_mask);
    let mut cb = b.conn("gateway B");
    assert_eq!(cb.ok(&rw.apply(&tcp)), json!(true));
    assert_eq!(cb.ok(&rw.apply(&creates[1])), json!(true));
    checked[creates[1].line] = true;
    cb.call("bdev_aio_create", json!({"name": "aio0", "filename": file.0, "block_size": 4096, "uuid": aio_uuid}));
    cb.call("nvmf_subsystem_add_ns", json!({"nqn": NQN, "namespace": {"bdev_name": "aio0"}}));
    cb.call(
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": {"trtype": "tcp", "adrfam": "ipv4", "traddr": ADDR_B, "trsvcid": port.to_string()}}),
    );
    let b_subsystem = cb.call("nvmf_get_subsystems", json!({"nqn": NQN}));
    assert_eq!(
        (b_subsystem[0]["min_cntlid"].clone(), b_subsystem[0]["max_cntlid"].clone()),
        (json!(32761), json!(65519))
    );

    // Namespace (rbd0 → aio0 until RBD lands) and listeners on A.
    let add_ns = &of(&all, "nvmf_subsystem_add_ns")[0];
    assert_eq!(ca.ok(&stand_in(&rw.apply(add_ns), r#""bdev_name": "rbd0""#, r#""bdev_name": "aio0""#)), json!(1));
    checked[add_ns.line] = true;
    expect_not_implemented(&mut ca, &one(&all, "nvmf_subsystem_add_listener", r#""trtype": "rdma""#), &mut checked);
    let listen_tcp = one(&all, "nvmf_subsystem_add_listener", r#""trtype": "tcp""#);
    assert_eq!(ca.ok(&rw.apply(&listen_tcp)), json!(true));
    checked[listen_tcp.line] = true;
    let c = &of(&all, "nvmf_get_subsystems")[0];
    let subsystems = ca.ok(&rw.apply(c));
    let s = &subsystems[0];
    assert_eq!(subsystems.as_array().map(Vec::len), Some(1), "{subsystems}");
    assert_eq!(keys(s), SPDK_SUBSYSTEM_KEYS, "SPDK's keys in SPDK's order: {s}");
    assert_eq!(s["nqn"], NQN);
    assert_eq!(s["allow_any_host"], true);
    assert_eq!(s["serial_number"], "SPDK_BDEV_0");
    assert_eq!((s["min_cntlid"].clone(), s["max_cntlid"].clone()), (json!(1), json!(32760)));
    let listener = json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": ADDR_A, "trsvcid": port.to_string()});
    assert_eq!(s["listen_addresses"], json!([listener]), "{s}");
    let nguid = aio_uuid.replace('-', "").to_uppercase();
    assert_eq!(
        s["namespaces"],
        json!([{"nsid": 1, "bdev_name": "aio0", "name": "aio0", "nguid": nguid, "uuid": aio_uuid}]),
        "{s}"
    );
    checked[c.line] = true;
    let c = &of(&all, "nvmf_subsystem_get_listeners")[0];
    let listeners = ca.ok(&rw.apply(c));
    assert_eq!(listeners.as_array().map(Vec::len), Some(1), "{listeners}");
    assert_eq!(listeners[0]["address"], listener, "{listeners}");
    checked[c.line] = true;

    // The host: options, both paths (A's RDMA path over TCP until RDMA lands), and SPDK's path methods.
    let host = Host::start(&dir, host_core);
    let mut ch = Conn::open(&host.socket, "host");
    let c = &of(&all, "bdev_nvme_set_options")[0];
    assert_eq!(ch.ok(&rw.apply(c)), json!(true));
    checked[c.line] = true;
    let attach_a = one(&all, "bdev_nvme_attach_controller", r#""trtype": "rdma""#);
    expect_not_implemented(&mut ch, &attach_a, &mut checked);
    let attach_a_tcp = stand_in(&rw.apply(&attach_a), r#""trtype": "rdma""#, r#""trtype": "tcp""#);
    assert_eq!(ch.ok(&attach_a_tcp), json!(["Nvme0n1"]));
    let attach_b = one(&all, "bdev_nvme_attach_controller", r#""trtype": "tcp""#);
    assert_eq!(ch.ok(&rw.apply(&attach_b)), json!(["Nvme0n1"]));
    checked[attach_b.line] = true;
    let c = &of(&all, "bdev_nvme_get_controllers")[0];
    let ctrlrs = ch.ok(&rw.apply(c));
    assert_eq!(ctrlrs[0]["name"], "Nvme0", "{ctrlrs}");
    let seen: Vec<(String, u64)> = controller_paths(&ctrlrs).into_iter().map(|(a, _, id)| (a, id)).collect();
    assert_eq!(seen, [(ADDR_A.to_string(), 1), (ADDR_B.to_string(), 32761)], "{ctrlrs}");
    checked[c.line] = true;
    let both_enabled = |ch: &mut Conn| {
        wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
            let v = ch.call("bdev_nvme_get_controllers", json!({"name": "Nvme0"}));
            (controller_paths(&v).iter().filter(|p| p.1 == "enabled").count() == 2).then_some(())
        })
    };
    assert!(both_enabled(&mut ch).is_some(), "both paths enabled");
    let c = &of(&all, "bdev_nvme_get_io_paths")[0];
    let io_paths = ch.ok(&rw.apply(c));
    let groups = io_paths["poll_groups"].as_array().expect("poll_groups");
    assert!(!groups.is_empty(), "{io_paths}");
    for g in groups {
        assert_eq!(g["io_paths"].as_array().map(Vec::len), Some(2), "{io_paths}");
    }
    checked[c.line] = true;
    let c = &of(&all, "bdev_nvme_set_multipath_policy")[0];
    assert_eq!(ch.ok(&rw.apply(c)), json!(true));
    let bdev = ch.call("bdev_get_bdevs", json!({"name": "Nvme0n1"}));
    let d = &bdev[0]["driver_specific"];
    assert_eq!(
        (d["mp_policy"].clone(), d["selector"].clone(), d["rr_min_io"].clone()),
        (json!("active_active"), json!("round_robin"), json!(1)),
        "{bdev}"
    );
    checked[c.line] = true;
    let c = &of(&all, "bdev_nvme_set_preferred_path")[0];
    assert_eq!(ch.ok(&rw.apply(c)), json!(true));
    checked[c.line] = true;
    let c = &of(&all, "bdev_nvme_reset_controller")[0];
    assert_eq!(ch.ok(&rw.apply(c)), json!(true));
    assert!(both_enabled(&mut ch).is_some(), "both paths enabled again after the reset");
    checked[c.line] = true;
    let c = &of(&all, "bdev_nvme_detach_controller")[0];
    assert_eq!(ch.ok(&rw.apply(c)), json!(true));
    let left = controller_paths(&ch.call("bdev_nvme_get_controllers", json!({"name": "Nvme0"})));
    assert_eq!(left.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), [ADDR_A], "B's path detached: {left:?}");
    checked[c.line] = true;
    let c = &of(&all, "framework_get_subsystems")[0];
    assert_eq!(ch.ok(&rw.apply(c)), json!([{"subsystem": "bdev", "depends_on": []}]));
    assert_eq!(
        ca.ok(&rw.apply(c)),
        json!([{"subsystem": "bdev", "depends_on": []}, {"subsystem": "nvmf", "depends_on": ["bdev"]}])
    );
    checked[c.line] = true;
    ch.call("bdev_nvme_detach_controller", json!({"name": "Nvme0"}));
    drop(ch);
    drop(host);

    // ANA: A has no ANA reporting, and SPDK refuses the change there too; B (-r) takes it.
    let c = &of(&all, "nvmf_subsystem_listener_set_ana_state")[0];
    let (code, message) = ca.err(&rw.apply(c));
    assert_eq!(code, -32602, "{message}");
    assert!(message.contains("ANA reporting is disabled"), "{message}");
    let on_b = stand_in(&rw.apply(c), &format!(r#""traddr": "{ADDR_A}""#), &format!(r#""traddr": "{ADDR_B}""#));
    assert_eq!(cb.ok(&on_b), json!(true));
    let b_listeners = cb.call("nvmf_subsystem_get_listeners", json!({"nqn": NQN}));
    let states = &b_listeners[0]["ana_states"];
    assert!(
        states.as_array().is_some_and(|s| !s.is_empty() && s.iter().all(|g| g["ana_state"] == "inaccessible")),
        "{b_listeners}"
    );
    checked[c.line] = true;

    // Tear-down on A, each step seen in the state.
    let c = &of(&all, "nvmf_subsystem_remove_listener")[0];
    assert_eq!(ca.ok(&rw.apply(c)), json!(true));
    assert_eq!(ca.call("nvmf_get_subsystems", json!({"nqn": NQN}))[0]["listen_addresses"], json!([]));
    checked[c.line] = true;
    let c = &of(&all, "nvmf_subsystem_remove_ns")[0];
    assert_eq!(ca.ok(&rw.apply(c)), json!(true));
    assert_eq!(ca.call("nvmf_get_subsystems", json!({"nqn": NQN}))[0]["namespaces"], json!([]));
    checked[c.line] = true;
    let c = &of(&all, "nvmf_delete_subsystem")[0];
    assert_eq!(ca.ok(&rw.apply(c)), json!(true));
    let left = ca.call("nvmf_get_subsystems", json!({}));
    assert_eq!(left.as_array().map(Vec::len), Some(1), "only discovery is left: {left}");
    assert_eq!(left[0]["subtype"], "Discovery");
    checked[c.line] = true;
    let c = &of(&all, "bdev_get_bdevs")[0];
    let bdevs = ca.ok(&rw.apply(c));
    let mut names: Vec<&str> = bdevs.as_array().expect("array").iter().filter_map(|b| b["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Malloc0", "Null0", "aio0"], "{bdevs}");
    for b in bdevs.as_array().unwrap() {
        assert_eq!(b["numa_id"], -1, "{b}");
        assert_eq!(b["memory_domains"], json!([]), "{b}");
        let k = keys(b);
        let at = |key: &str| k.iter().position(|x| x == key).unwrap_or_else(|| panic!("{key} missing from {b}"));
        assert_eq!(at("numa_id"), at("uuid") + 1, "numa_id follows uuid, as in SPDK: {k:?}");
        assert_eq!(at("memory_domains"), at("supported_io_types") + 1, "as in SPDK: {k:?}");
    }
    checked[c.line] = true;
    expect_not_implemented(&mut ca, &of(&all, "bdev_rbd_delete")[0], &mut checked);
    for m in ["bdev_malloc_delete", "bdev_null_delete", "bdev_aio_delete"] {
        let c = &of(&all, m)[0];
        assert_eq!(ca.ok(&rw.apply(c)), json!(true), "line {}", c.line);
        checked[c.line] = true;
    }
    assert_eq!(ca.call("bdev_get_bdevs", json!({})), json!([]));
    expect_not_implemented(&mut ca, &of(&all, "bdev_rbd_unregister_cluster")[0], &mut checked);

    let missed: Vec<String> =
        all.iter().filter(|c| !checked[c.line]).map(|c| format!("line {}: {}", c.line, c.method)).collect();
    assert!(missed.is_empty(), "requests not replayed: {missed:?}");
    let later = all.iter().filter(|c| not_implemented_yet(c).is_some()).count();
    assert_eq!(later, NOT_IMPLEMENTED_YET.len(), "each NOT_IMPLEMENTED_YET entry matches one request");
    drop(ca);
    drop(cb);
    b.stop();
    a.stop();
}

/// Replaces each namespace's per-run identity (a malloc bdev's random UUID,
/// and the NGUID made of it) after checking it is that gateway's bdev's.
fn without_bdev_identity(mut subsystems: Value, bdev_uuid: &str) -> Value {
    let nguid = bdev_uuid.replace('-', "").to_uppercase();
    for s in subsystems.as_array_mut().expect("array") {
        for ns in s["namespaces"].as_array_mut().into_iter().flatten() {
            assert_eq!((ns["uuid"].as_str(), ns["nguid"].as_str()), (Some(bdev_uuid), Some(nguid.as_str())), "{ns}");
            ns["uuid"] = json!("<bdev uuid>");
            ns["nguid"] = json!("<bdev nguid>");
        }
    }
    subsystems
}

/// DESIGN.md's gateway sequence (RBD's bdev replaced by the capture's malloc
/// bdev until RBD lands, RDMA by TCP) from rpc.py's bytes, and the same typed
/// through `corepath-rpc`, on two fresh gateways one after the other on the
/// same address: the same `nvmf_get_subsystems`, key order included.
#[test]
fn design_gateway_sequence_from_rpc_py_bytes_matches_corepath_rpc() {
    let all = captured();
    let dir = TempDir::new("spdk-design");
    let (gateway_mask, _) = cores();
    let port = free_port(ADDR_A);
    let rw = Rewrite { port, aio_file: PathBuf::from("/nonexistent") };

    let x = Tgt::start(&dir, "tgt-bytes", &gateway_mask);
    let mut cx = x.conn("gateway from bytes");
    for c in [
        one(&all, "nvmf_create_transport", r#""trtype": "TCP""#),
        of(&all, "bdev_malloc_create")[0].clone(),
        of(&all, "nvmf_create_subsystem")[0].clone(),
    ] {
        cx.ok(&rw.apply(&c));
    }
    let add_ns = &of(&all, "nvmf_subsystem_add_ns")[0];
    assert_eq!(cx.ok(&stand_in(&rw.apply(add_ns), r#""bdev_name": "rbd0""#, r#""bdev_name": "Malloc0""#)), json!(1));
    cx.ok(&rw.apply(&one(&all, "nvmf_subsystem_add_listener", r#""trtype": "tcp""#)));
    let from_bytes = cx.ok(&rw.apply(&of(&all, "nvmf_get_subsystems")[0]));
    let all_from_bytes = cx.call("nvmf_get_subsystems", json!({}));
    let uuid_x = cx.call("bdev_get_bdevs", json!({"name": "Malloc0"}))[0]["uuid"].as_str().unwrap().to_string();
    drop(cx);
    x.stop();

    let y = Tgt::start(&dir, "tgt-typed", &gateway_mask);
    let p = port.to_string();
    assert_eq!(y.corepath_rpc(&["nvmf_create_transport", "-t", "TCP", "-m", "64"]), "");
    assert_eq!(y.corepath_rpc(&["bdev_malloc_create", "-b", "Malloc0", "64", "4096"]).trim(), "Malloc0");
    y.corepath_rpc(&["nvmf_create_subsystem", NQN, "-a", "-s", "SPDK_BDEV_0", "-i", "1", "-I", "32760"]);
    assert_eq!(y.corepath_rpc(&["nvmf_subsystem_add_ns", NQN, "Malloc0"]), "", "rpc.py prints nothing here");
    y.corepath_rpc(&["nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-f", "ipv4", "-a", ADDR_A, "-s", &p]);
    let parse = |s: String| -> Value { serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}")) };
    let typed = parse(y.corepath_rpc(&["nvmf_get_subsystems", NQN]));
    let all_typed = parse(y.corepath_rpc(&["nvmf_get_subsystems"]));
    let bdev = parse(y.corepath_rpc(&["bdev_get_bdevs", "-b", "Malloc0"]));
    let uuid_y = bdev[0]["uuid"].as_str().unwrap().to_string();
    y.stop();

    let (from_bytes, typed) = (without_bdev_identity(from_bytes, &uuid_x), without_bdev_identity(typed, &uuid_y));
    assert_eq!(from_bytes, typed);
    assert_eq!(serde_json::to_string(&from_bytes).unwrap(), serde_json::to_string(&typed).unwrap(), "key order");
    assert_eq!(without_bdev_identity(all_from_bytes, &uuid_x), without_bdev_identity(all_typed, &uuid_y));
    assert_eq!(from_bytes[0]["listen_addresses"][0]["trsvcid"], json!(p), "the listener is in the result");
    assert_eq!(from_bytes[0]["namespaces"][0]["bdev_name"], "Malloc0", "the namespace is in the result");
}
