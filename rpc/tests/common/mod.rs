//! Shared test fixtures: a fake data plane and a server on a temporary socket.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use corepath_rpc::{serve, DataPlane, GatewayRpc, Router, RpcClient, ServerHandle};
use engine::TargetOptions;
use gateway::config::{ListenAddress, TargetState};
use serde_json::{json, Value};

/// Records listen/stop calls; fails `listen` on the port in `fail_port`.
#[derive(Default)]
pub struct FakeDataPlane {
    pub events: Mutex<Vec<String>>,
    pub fail_port: Mutex<Option<String>>,
}

impl FakeDataPlane {
    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

impl DataPlane for FakeDataPlane {
    fn listen(&self, addr: &ListenAddress, opts: &TargetOptions) -> Result<(), String> {
        if self.fail_port.lock().unwrap().as_deref() == Some(addr.trsvcid.as_str()) {
            return Err("Address already in use".into());
        }
        self.events.lock().unwrap().push(format!("listen {addr} qd={}", opts.max_queue_depth));
        Ok(())
    }

    fn stop_listening(&self, addr: &ListenAddress) -> Result<(), String> {
        self.events.lock().unwrap().push(format!("stop {addr}"));
        Ok(())
    }

    fn reactors(&self) -> Value {
        json!({"tick_rate": 1_000_000_000u64, "reactors": [{"lcore": 0, "busy": 0, "idle": 0, "lw_threads": []}]})
    }

    fn controllers(&self, _nqn: &str) -> Vec<Value> {
        Vec::new()
    }
}

/// A unique socket path under the temp directory.
pub fn temp_socket(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("corepath-rpc-{tag}-{}-{n}.sock", std::process::id()))
}

/// A gateway router over fresh state.
pub fn gateway_router() -> (Arc<Router>, Arc<FakeDataPlane>, Arc<Mutex<TargetState>>) {
    let state = Arc::new(Mutex::new(TargetState::new()));
    let data_plane = Arc::new(FakeDataPlane::default());
    let mut router = Router::new();
    router.add(Arc::new(GatewayRpc::new(state.clone(), data_plane.clone()))).unwrap();
    (Arc::new(router), data_plane, state)
}

pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub path: PathBuf,
    pub router: Arc<Router>,
    pub data_plane: Arc<FakeDataPlane>,
    pub state: Arc<Mutex<TargetState>>,
}

impl TestServer {
    pub fn start(tag: &str) -> TestServer {
        let (router, data_plane, state) = gateway_router();
        let path = temp_socket(tag);
        let handle = serve(&path, router.clone()).unwrap();
        TestServer { handle: Some(handle), path, router, data_plane, state }
    }

    pub fn client(&self) -> RpcClient {
        RpcClient::connect(&self.path).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
    }
}

pub const NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";

/// DESIGN.md's gateway sequence with a malloc bdev in place of RBD.
pub fn design_sequence(client: &mut RpcClient) {
    client.call("nvmf_create_transport", Some(json!({"trtype": "TCP", "max_io_qpairs_per_ctrlr": 64}))).unwrap();
    let name = client
        .call(
            "bdev_malloc_create",
            Some(json!({"num_blocks": 64 * 1024 * 1024 / 512, "block_size": 512, "name": "Malloc0"})),
        )
        .unwrap();
    assert_eq!(name, json!("Malloc0"));
    let created = client
        .call(
            "nvmf_create_subsystem",
            Some(json!({"nqn": NQN, "allow_any_host": true, "serial_number": "SPDK_BDEV_0", "min_cntlid": 1, "max_cntlid": 32760})),
        )
        .unwrap();
    assert_eq!(created, json!(true));
    let nsid =
        client.call("nvmf_subsystem_add_ns", Some(json!({"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}}))).unwrap();
    assert_eq!(nsid, json!(1));
    client
        .call(
            "nvmf_subsystem_add_listener",
            Some(json!({"nqn": NQN, "listen_address": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.2", "trsvcid": "4420"}})),
        )
        .unwrap();
}
