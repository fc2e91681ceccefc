//! Two in-process gateways (127.0.0.2 and 127.0.0.3, as DESIGN.md's A and B
//! on one machine) export one file through `bdev_aio_create` with the same
//! UUID and serial, so a host's writes through A read back through B. ANA
//! set through RPC on one listener reaches the wire: IO through it fails with
//! the ANA status while the other path serves, the ANA log shows it, and
//! `nvmf_subsystem_get_listeners` / `save_config` report it. RPC mistakes get
//! SPDK's error codes with a message that names the problem.

use std::path::PathBuf;

use corepath_tests::gateway::{free_port, NQN};
use corepath_tests::raw_host::{HostIdentity, RawController, RawData};
use engine::{IdlePolicy, TransportId};
use gateway::GatewayOptions;
use protocol::log::{lid, parse_ana_log, AnaState, GetLogPage};
use protocol::opcode::io;
use protocol::status::path;
use protocol::{Sqe, StatusCodeType};
use rpc::GatewayService;
use serde_json::{json, Value};
use transport_tcp::TcpTargetTransport;

const BDEV_UUID: &str = "5a1e0000-0000-4000-8000-0000000000a1";
const FILE_BYTES: u64 = 8 << 20;

/// One gateway of the pair.
struct Gw {
    service: GatewayService<TcpTargetTransport>,
    traddr: &'static str,
    port: u16,
}

impl Gw {
    fn call(&self, method: &str, params: Value) -> Value {
        self.service.call(method, params.clone()).unwrap_or_else(|e| panic!("{method} {params}: {e:?}"))
    }

    fn listen_address(&self) -> Value {
        json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": self.traddr, "trsvcid": self.port.to_string()})
    }

    fn trid(&self) -> TransportId {
        TransportId::tcp(self.traddr, &self.port.to_string(), NQN)
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.service.shutdown();
    }
}

/// A zeroed file on the build directory's disk (O_DIRECT works there, not on tmpfs).
fn shared_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.img", std::process::id()));
    std::fs::File::create(&path).unwrap().set_len(FILE_BYTES).unwrap();
    path
}

/// A gateway on `core` at `traddr` exporting `file` as namespace 1 of NQN with ANA reporting.
fn start(core: usize, traddr: &'static str, file: &std::path::Path, cntlids: (u16, u16)) -> Gw {
    let opts = GatewayOptions { cores: vec![core], idle: IdlePolicy::adaptive(), ..Default::default() };
    let service = GatewayService::start(TcpTargetTransport::new(), opts).expect("gateway starts");
    let gw = Gw { service, traddr, port: free_port(traddr) };
    gw.call("nvmf_create_transport", json!({"trtype": "TCP"}));
    let name = gw.call(
        "bdev_aio_create",
        json!({"name": "Aio0", "filename": file.to_str().unwrap(), "block_size": 512, "uuid": BDEV_UUID}),
    );
    assert_eq!(name, "Aio0");
    gw.call(
        "nvmf_create_subsystem",
        json!({"nqn": NQN, "serial_number": "SPDK_BDEV_0", "allow_any_host": true, "ana_reporting": true,
               "min_cntlid": cntlids.0, "max_cntlid": cntlids.1}),
    );
    gw.call("nvmf_subsystem_add_ns", json!({"nqn": NQN, "namespace": {"bdev_name": "Aio0", "anagrpid": 1}}));
    gw.call("nvmf_subsystem_add_listener", json!({"nqn": NQN, "listen_address": gw.listen_address()}));
    gw
}

fn pair(name: &str) -> (Gw, Gw, PathBuf) {
    let file = shared_file(name);
    let (a_core, b_core) = corepath_tests::gateway_and_host_cores();
    let a = start(a_core, "127.0.0.2", &file, (1, 32760));
    let b = start(b_core, "127.0.0.3", &file, (32761, 65519));
    (a, b, file)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) | 1).collect()
}

fn write(ctrl: &RawController, lba: u64, data: &[u8]) -> protocol::Status {
    let mut q = ctrl.io_qpair(1, 32).expect("IO queue connects");
    let sqe = Sqe::rw(io::WRITE, 1, lba, (data.len() / 512) as u32);
    q.execute(sqe, RawData::Write(data.to_vec())).expect("write completes").0.status()
}

fn read(ctrl: &RawController, lba: u64, nlb: u32) -> (protocol::Status, Vec<u8>) {
    let mut q = ctrl.io_qpair(1, 32).expect("IO queue connects");
    let (c, data) =
        q.execute(Sqe::rw(io::READ, 1, lba, nlb), RawData::Read(nlb as usize * 512)).expect("read completes");
    (c.status(), data)
}

#[test]
fn two_gateways_on_one_file_serve_the_same_data_under_one_identity() {
    let (a, b, file) = pair("shared");
    let host = HostIdentity::numbered(1);
    let via_a = RawController::bring_up(&a.trid(), &host).expect("controller on A");
    let via_b = RawController::bring_up(&b.trid(), &host).expect("controller on B");
    assert!(via_a.cntlid <= 32760 && via_b.cntlid >= 32761, "disjoint controller IDs");
    let data = pattern(64 * 1024, 9);
    assert!(write(&via_a, 100, &data).is_success());
    let (s, back) = read(&via_b, 100, 128);
    assert!(s.is_success(), "{s:?}");
    assert_eq!(back, data, "a write through A reads back through B");
    // One identity on both gateways.
    for gw in [&a, &b] {
        let ns = &gw.call("nvmf_get_subsystems", json!({"nqn": NQN}))[0]["namespaces"][0];
        assert_eq!((ns["uuid"].as_str(), ns["anagrpid"].as_u64()), (Some(BDEV_UUID), Some(1)));
        let bdev = &gw.call("bdev_get_bdevs", json!({"name": "Aio0"}))[0];
        assert_eq!(bdev["product_name"], "AIO disk");
        assert_eq!(bdev["num_blocks"], FILE_BYTES / 512);
        assert_eq!(
            bdev["driver_specific"],
            json!({"aio": {"filename": file.to_str().unwrap(), "block_size_override": true,
                           "readonly": false, "fallocate": true}})
        );
    }
    drop((via_a, via_b, a, b));
    let _ = std::fs::remove_file(file);
}

#[test]
fn inaccessible_listener_refuses_io_with_the_ana_status_while_the_other_path_serves() {
    let (a, b, file) = pair("ana");
    let host = HostIdentity::numbered(2);
    a.call(
        "nvmf_subsystem_listener_set_ana_state",
        json!({"nqn": NQN, "listen_address": a.listen_address(), "ana_state": "inaccessible", "anagrpid": 1}),
    );
    let mut via_a = RawController::bring_up(&a.trid(), &host).expect("controller on A");
    let via_b = RawController::bring_up(&b.trid(), &host).expect("controller on B");
    let s = write(&via_a, 0, &pattern(4096, 1));
    assert_eq!((s.sct, s.sc, s.dnr), (StatusCodeType::Path, path::ANA_INACCESSIBLE, false));
    assert!(write(&via_b, 0, &pattern(4096, 2)).is_success());
    let (s, back) = read(&via_b, 0, 8);
    assert!(s.is_success());
    assert_eq!(back, pattern(4096, 2), "B's write landed, A's was never executed");
    // The ANA log through A says so.
    let (c, page) = via_a.admin.execute(GetLogPage::new(lid::ANA, 4096, 0).to_sqe(0), RawData::Read(4096)).unwrap();
    assert!(c.status().is_success());
    let (hdr, groups) = parse_ana_log(&page).unwrap();
    assert_eq!((hdr.ngrps, groups[0].anagrpid, groups[0].state), (1, 1, AnaState::Inaccessible));
    assert_eq!(groups[0].nsids, vec![1]);
    // RPC views.
    assert_eq!(
        a.call("nvmf_subsystem_get_listeners", json!({"nqn": NQN})),
        json!([{"address": a.listen_address(), "ana_states": [{"ana_group": 1, "ana_state": "inaccessible"}]}])
    );
    let saved = a.service.call("save_config", Value::Null).unwrap();
    let nvmf = saved["subsystems"].as_array().unwrap().iter().find(|s| s["subsystem"] == "nvmf").unwrap();
    let set: Vec<&Value> = nvmf["config"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["method"] == "nvmf_subsystem_listener_set_ana_state")
        .collect();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["params"]["ana_state"], "inaccessible");
    // Back to optimized: A serves again.
    a.call(
        "nvmf_subsystem_listener_set_ana_state",
        json!({"nqn": NQN, "listen_address": a.listen_address(), "ana_state": "optimized"}),
    );
    let (s, back) = read(&via_a, 0, 8);
    assert!(s.is_success(), "{s:?}");
    assert_eq!(back, pattern(4096, 2));
    drop((a, b));
    let _ = std::fs::remove_file(file);
}

#[test]
fn rpc_errors_name_a_bad_ana_state_an_unknown_listener_or_nqn_and_a_missing_aio_file() {
    let (a, _b, file) = pair("errors");
    let err = |method: &str, params: Value| a.service.call(method, params).expect_err("must fail");
    let set = |nqn: &str, addr: Value, state: &str| json!({"nqn": nqn, "listen_address": addr, "ana_state": state});
    let e = err("nvmf_subsystem_listener_set_ana_state", set(NQN, a.listen_address(), "degraded"));
    assert_eq!(e.code, -32602);
    assert!(e.message.contains("degraded"), "{}", e.message);
    let other = json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.9", "trsvcid": "4420"});
    let e = err("nvmf_subsystem_listener_set_ana_state", set(NQN, other, "inaccessible"));
    assert_eq!(e.code, -32602);
    assert!(e.message.contains("127.0.0.9"), "{}", e.message);
    let e =
        err("nvmf_subsystem_listener_set_ana_state", set("nqn.2016-06.io.spdk:none", a.listen_address(), "optimized"));
    assert_eq!(e.code, -32602);
    assert!(e.message.contains("nqn.2016-06.io.spdk:none"), "{}", e.message);
    let mut bad_group = set(NQN, a.listen_address(), "inaccessible");
    bad_group["anagrpid"] = json!(33);
    assert_eq!(err("nvmf_subsystem_listener_set_ana_state", bad_group).code, -32602);
    assert_eq!(err("nvmf_subsystem_get_listeners", json!({"nqn": "nqn.2016-06.io.spdk:none"})).code, -32602);
    let missing = "/nonexistent/corepath-aio.img";
    let e = err("bdev_aio_create", json!({"name": "Aio9", "filename": missing}));
    assert_eq!(e.code, -22);
    assert!(e.message.contains(missing) && e.message.contains("No such file"), "{}", e.message);
    assert_eq!(
        err("bdev_aio_create", json!({"name": "Aio9", "filename": file.to_str().unwrap(), "block_size": 520})).code,
        -22
    );
    assert_eq!(err("bdev_aio_delete", json!({"name": "Nope"})).code, -19);
    assert_eq!(err("bdev_aio_delete", json!({"name": "Aio0"})).code, -16, "exported bdev cannot be deleted");
    drop(a);
    let _ = std::fs::remove_file(file);
}
