//! An in-process gateway (the same `GatewayService` corepath-tgt runs),
//! configured through its RPC methods with a malloc namespace and one TCP
//! listener on a loopback address.

use std::net::TcpListener;

use engine::{IdlePolicy, TransportId};
use gateway::GatewayOptions;
use rpc::GatewayService;
use serde_json::{json, Value};
use transport_tcp::TcpTargetTransport;

/// The subsystem DESIGN.md's gateways export.
pub const NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";

/// A TCP port nobody listens on at `ip` right now (the kernel's pick).
pub fn free_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    l.local_addr().expect("local address").port()
}

/// How to set up a [`TestGateway`].
#[derive(Debug, Clone)]
pub struct GatewaySetup {
    /// Reactor cores.
    pub cores: Vec<usize>,
    /// Loopback address to listen on.
    pub traddr: String,
    /// Malloc namespace size in bytes.
    pub malloc_bytes: u64,
    /// Malloc block size in bytes.
    pub block_size: u32,
    /// `nvmf_create_transport` parameters beyond `trtype`.
    pub transport_params: Value,
    /// What the reactors do when idle.
    pub idle: IdlePolicy,
}

impl GatewaySetup {
    /// One reactor on `core`, `malloc_bytes` of 512-byte blocks, default transport.
    pub fn new(core: usize, traddr: &str, malloc_bytes: u64) -> Self {
        GatewaySetup {
            cores: vec![core],
            traddr: traddr.to_string(),
            malloc_bytes,
            block_size: 512,
            transport_params: json!({}),
            idle: IdlePolicy::adaptive(),
        }
    }
}

/// A running in-process gateway exporting [`NQN`] (namespace 1 = bdev
/// `Malloc0`, controller IDs 1..=32760, any host) on `traddr:port`.
pub struct TestGateway {
    /// The gateway and its RPC router.
    pub service: GatewayService<TcpTargetTransport>,
    /// Listen address.
    pub traddr: String,
    /// Listen port.
    pub port: u16,
}

impl TestGateway {
    /// Starts the gateway and configures it with DESIGN.md's calls.
    pub fn start(setup: &GatewaySetup) -> TestGateway {
        let opts = GatewayOptions { cores: setup.cores.clone(), idle: setup.idle, ..GatewayOptions::default() };
        let service = GatewayService::start(TcpTargetTransport::new(), opts).expect("start the gateway");
        let port = free_port(&setup.traddr);
        let gw = TestGateway { service, traddr: setup.traddr.clone(), port };
        let mut transport = json!({"trtype": "TCP"});
        if let (Some(t), Some(extra)) = (transport.as_object_mut(), setup.transport_params.as_object()) {
            t.extend(extra.clone());
        }
        gw.call("nvmf_create_transport", transport);
        let num_blocks = setup.malloc_bytes / u64::from(setup.block_size);
        gw.call(
            "bdev_malloc_create",
            json!({"name": "Malloc0", "num_blocks": num_blocks, "block_size": setup.block_size}),
        );
        gw.call(
            "nvmf_create_subsystem",
            json!({"nqn": NQN, "serial_number": "SPDK_BDEV_0", "allow_any_host": true,
                   "min_cntlid": 1, "max_cntlid": 32760}),
        );
        gw.call("nvmf_subsystem_add_ns", json!({"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}}));
        gw.add_listener(NQN);
        gw
    }

    /// Calls an RPC method.
    ///
    /// # Panics
    /// When the method fails.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.service.call(method, params.clone()).unwrap_or_else(|e| panic!("{method} {params}: {e:?}"))
    }

    /// Makes subsystem `nqn` listen on this gateway's address.
    pub fn add_listener(&self, nqn: &str) {
        self.call(
            "nvmf_subsystem_add_listener",
            json!({"nqn": nqn, "listen_address": {
                "trtype": "TCP", "adrfam": "IPv4", "traddr": self.traddr, "trsvcid": self.port.to_string()}}),
        );
    }

    /// The transport ID of subsystem `nqn` here.
    pub fn trid(&self, nqn: &str) -> TransportId {
        TransportId::tcp(&self.traddr, &self.port.to_string(), nqn)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.service.shutdown();
    }
}
