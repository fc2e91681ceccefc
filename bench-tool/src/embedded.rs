//! The embedded default: a gateway in this process with a malloc namespace,
//! configured through the same RPC calls a user would send to corepath-tgt
//! (`nvmf_create_transport`, `bdev_malloc_create`, `nvmf_create_subsystem`,
//! `nvmf_subsystem_add_ns`, `nvmf_subsystem_add_listener`).

use anyhow::Context;
use engine::{IdlePolicy, TransportId};
use rpc::GatewayService;
use serde_json::json;
use target::GatewayOptions;
use transport_tcp::TcpTargetTransport;

/// Subsystem the embedded gateway exports (DESIGN.md's).
pub const EMBEDDED_NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";
/// Size of its malloc namespace.
pub const EMBEDDED_SIZE_MIB: u64 = 64;
/// Block size of its malloc namespace.
pub const EMBEDDED_BLOCK_SIZE: u64 = 512;

/// A gateway running inside corepath-bench; stops when dropped.
pub struct EmbeddedGateway {
    service: GatewayService<TcpTargetTransport>,
    trids: Vec<TransportId>,
}

impl EmbeddedGateway {
    /// Starts the gateway listening on `listen` (default 127.0.0.2:4420), on
    /// the first core that `avoid_cores` (the bench's) leaves free; with none
    /// free it shares a core and yields when idle.
    pub fn start(listen: &[TransportId], avoid_cores: &[usize]) -> anyhow::Result<Self> {
        let online = std::thread::available_parallelism().map_or(1, usize::from);
        let free = (0..online).find(|c| !avoid_cores.contains(c));
        let (core, idle) = match free {
            Some(c) => (c, IdlePolicy::BusyPoll),
            None => (avoid_cores.first().copied().unwrap_or(0), IdlePolicy::YieldAfter(64)),
        };
        let opts = GatewayOptions { cores: vec![core], idle, ..GatewayOptions::default() };
        let service = GatewayService::start(TcpTargetTransport::new(), opts).context("starting the gateway")?;
        let trids = if listen.is_empty() {
            vec![TransportId::tcp("127.0.0.2", "4420", EMBEDDED_NQN)]
        } else {
            listen.iter().map(|t| TransportId { subnqn: EMBEDDED_NQN.to_string(), ..t.clone() }).collect()
        };
        let num_blocks = EMBEDDED_SIZE_MIB * 1024 * 1024 / EMBEDDED_BLOCK_SIZE;
        let calls = [
            ("nvmf_create_transport", json!({"trtype": "TCP"})),
            (
                "bdev_malloc_create",
                json!({"name": "Malloc0", "num_blocks": num_blocks, "block_size": EMBEDDED_BLOCK_SIZE}),
            ),
            (
                "nvmf_create_subsystem",
                json!({"nqn": EMBEDDED_NQN, "serial_number": "SPDK_BDEV_0", "allow_any_host": true,
                       "min_cntlid": 1, "max_cntlid": 32760}),
            ),
            ("nvmf_subsystem_add_ns", json!({"nqn": EMBEDDED_NQN, "namespace": {"bdev_name": "Malloc0"}})),
        ];
        for (method, params) in calls {
            service.call(method, params).with_context(|| method.to_string())?;
        }
        for t in &trids {
            let params = json!({"nqn": EMBEDDED_NQN, "listen_address": {
                "trtype": "TCP", "adrfam": "IPv4", "traddr": t.traddr, "trsvcid": t.trsvcid}});
            service.call("nvmf_subsystem_add_listener", params).with_context(|| format!("listening on {t}"))?;
        }
        eprintln!(
            "corepath-bench: embedded gateway on core {core}, {EMBEDDED_SIZE_MIB} MiB malloc namespace at {}",
            trids[0]
        );
        Ok(EmbeddedGateway { service, trids })
    }

    /// Where hosts connect.
    pub fn trids(&self) -> &[TransportId] {
        &self.trids
    }
}

impl Drop for EmbeddedGateway {
    fn drop(&mut self) {
        self.service.shutdown();
    }
}
