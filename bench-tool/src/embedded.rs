//! The embedded default: gateways in this process, configured through the
//! same RPC calls a user would send to corepath-tgt (`nvmf_create_transport`,
//! `bdev_aio_create` / `bdev_malloc_create`, `nvmf_create_subsystem`,
//! `nvmf_subsystem_add_ns`, `nvmf_subsystem_add_listener`).
//!
//! Two gateways ([`EmbeddedPair`], the default) serve ONE shared file through
//! `bdev_aio_create`, with the same NQN, serial and namespace UUID and
//! disjoint controller-ID ranges, as DESIGN.md's gateways A and B; one
//! gateway ([`EmbeddedGateway`], `--gateways 1`) serves a malloc namespace.

use std::path::{Path, PathBuf};

use anyhow::Context;
use engine::{IdlePolicy, TransportId};
use gateway::GatewayOptions;
use rpc::GatewayService;
use serde_json::{json, Value};
use transport_tcp::TcpTargetTransport;

/// Subsystem the embedded gateways export (DESIGN.md's).
pub const EMBEDDED_NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";
/// Serial number both gateways report.
pub const EMBEDDED_SERIAL: &str = "SPDK_BDEV_0";
/// Size of the namespace.
pub const EMBEDDED_SIZE_MIB: u64 = 64;
/// Block size of the single gateway's malloc namespace.
pub const EMBEDDED_BLOCK_SIZE: u64 = 512;
/// Block size of the shared file's namespace (O_DIRECT wants the device's sector or more).
pub const SHARED_FILE_BLOCK_SIZE: u64 = 4096;
/// Namespace UUID both gateways present, so the host sees one namespace.
pub const SHARED_NS_UUID: &str = "c0e9a7b3-5eed-4c0e-9a7b-3e5eedc0de01";
/// Controller-ID ranges of gateways A and B (DESIGN.md).
pub const CNTLID_RANGES: [(u16, u16); 2] = [(1, 32760), (32761, 65519)];

/// Where the embedded gateways run: the first core the bench leaves free
/// (else the bench's first), in `adaptive` mode: they spin under load and
/// sleep between runs, so sharing a core costs the host nothing when idle.
fn gateway_core(avoid_cores: &[usize]) -> (usize, IdlePolicy) {
    let online = std::thread::available_parallelism().map_or(1, usize::from);
    let core = (0..online).find(|c| !avoid_cores.contains(c)).unwrap_or(avoid_cores.first().copied().unwrap_or(0));
    (core, IdlePolicy::adaptive())
}

/// Starts one gateway exporting `bdev_call`'s bdev as namespace 1 of
/// [`EMBEDDED_NQN`] on `listen`, with controller IDs in `cntlid_range`.
fn start_gateway(
    core: usize,
    idle: IdlePolicy,
    bdev_call: (&str, Value),
    bdev_name: &str,
    cntlid_range: (u16, u16),
    listen: &[TransportId],
) -> anyhow::Result<GatewayService<TcpTargetTransport>> {
    let opts = GatewayOptions { cores: vec![core], idle, ..GatewayOptions::default() };
    let service = GatewayService::start(TcpTargetTransport::new(), opts).context("starting the gateway")?;
    let calls = [
        ("nvmf_create_transport", json!({"trtype": "TCP"})),
        bdev_call,
        (
            "nvmf_create_subsystem",
            json!({"nqn": EMBEDDED_NQN, "serial_number": EMBEDDED_SERIAL, "allow_any_host": true,
                   "min_cntlid": cntlid_range.0, "max_cntlid": cntlid_range.1}),
        ),
        ("nvmf_subsystem_add_ns", json!({"nqn": EMBEDDED_NQN, "namespace": {"bdev_name": bdev_name}})),
    ];
    for (method, params) in calls {
        service.call(method, params).with_context(|| method.to_string())?;
    }
    for t in listen {
        let params = json!({"nqn": EMBEDDED_NQN, "listen_address": {
            "trtype": "TCP", "adrfam": "IPv4", "traddr": t.traddr, "trsvcid": t.trsvcid}});
        service.call("nvmf_subsystem_add_listener", params).with_context(|| format!("listening on {t}"))?;
    }
    Ok(service)
}

fn with_nqn(listen: &[TransportId], defaults: &[&str]) -> Vec<TransportId> {
    if listen.is_empty() {
        defaults.iter().map(|a| TransportId::tcp(a, "4420", EMBEDDED_NQN)).collect()
    } else {
        listen.iter().map(|t| TransportId { subnqn: EMBEDDED_NQN.to_string(), ..t.clone() }).collect()
    }
}

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
        let (core, idle) = gateway_core(avoid_cores);
        let trids = with_nqn(listen, &["127.0.0.2"]);
        let num_blocks = EMBEDDED_SIZE_MIB * 1024 * 1024 / EMBEDDED_BLOCK_SIZE;
        let bdev = (
            "bdev_malloc_create",
            json!({"name": "Malloc0", "num_blocks": num_blocks, "block_size": EMBEDDED_BLOCK_SIZE}),
        );
        let service = start_gateway(core, idle, bdev, "Malloc0", CNTLID_RANGES[0], &trids)?;
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

/// Gateways A and B on one shared file; each stops when dropped or killed,
/// and a temporary file is deleted when the pair is dropped.
pub struct EmbeddedPair {
    gateways: [Option<GatewayService<TcpTargetTransport>>; 2],
    trids: Vec<TransportId>,
    file: PathBuf,
    delete_file: bool,
}

impl EmbeddedPair {
    /// Starts A and B on `listen` (default 127.0.0.2:4420 and 127.0.0.3:4420;
    /// exactly two addresses if given), both serving `file` (default: a new
    /// temporary file under /var/tmp) through `bdev_aio_create`.
    pub fn start(listen: &[TransportId], avoid_cores: &[usize], file: Option<&Path>) -> anyhow::Result<Self> {
        if !listen.is_empty() && listen.len() != 2 {
            anyhow::bail!("two embedded gateways need two listen addresses (--trid), got {}", listen.len());
        }
        let trids = with_nqn(listen, &["127.0.0.2", "127.0.0.3"]);
        let (path, delete_file) = match file {
            Some(p) => (p.to_path_buf(), false),
            None => (PathBuf::from(format!("/var/tmp/corepath-bench-{}.img", std::process::id())), true),
        };
        let size_bytes = EMBEDDED_SIZE_MIB * 1024 * 1024;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating the shared file {}", path.display()))?;
        if f.metadata().map(|m| m.len()).unwrap_or(0) < size_bytes {
            f.set_len(size_bytes).with_context(|| format!("sizing {}", path.display()))?;
        }
        drop(f);
        // From here on the pair owns the file: an early return deletes it.
        let mut pair = EmbeddedPair { gateways: [None, None], trids, file: path, delete_file };
        let (core, idle) = gateway_core(avoid_cores);
        let filename = pair.file.to_string_lossy().into_owned();
        for (i, trid) in pair.trids.clone().iter().enumerate() {
            let bdev = (
                "bdev_aio_create",
                json!({"name": "aio0", "filename": filename, "block_size": SHARED_FILE_BLOCK_SIZE,
                       "uuid": SHARED_NS_UUID}),
            );
            let label = if i == 0 { "A" } else { "B" };
            let service = start_gateway(core, idle, bdev, "aio0", CNTLID_RANGES[i], std::slice::from_ref(trid))
                .with_context(|| format!("gateway {label} on {trid}"))?;
            pair.gateways[i] = Some(service);
        }
        eprintln!(
            "corepath-bench: embedded gateways A {} and B {} on core {core}, sharing {} ({EMBEDDED_SIZE_MIB} MiB, aio)",
            pair.trids[0],
            pair.trids[1],
            pair.file.display()
        );
        Ok(pair)
    }

    /// Where hosts connect: A's address, then B's.
    pub fn trids(&self) -> &[TransportId] {
        &self.trids
    }

    /// Kills gateway A abruptly: its reactors stop at once and every
    /// connection it holds is closed by dropping its sockets, as the kernel
    /// does for a process killed with SIGKILL. Returns false if already gone.
    pub fn kill_a(&mut self) -> bool {
        match self.gateways[0].take() {
            Some(service) => {
                service.shutdown();
                drop(service);
                true
            }
            None => false,
        }
    }
}

impl Drop for EmbeddedPair {
    fn drop(&mut self) {
        for g in self.gateways.iter_mut() {
            if let Some(service) = g.take() {
                service.shutdown();
            }
        }
        if self.delete_file {
            let _ = std::fs::remove_file(&self.file);
        }
    }
}
