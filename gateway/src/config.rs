//! The gateway's configuration: bdevs, transports, subsystems with their
//! namespaces, hosts and listeners. Changed only by RPC, never on the IO path.
//!
//! Each configuration RPC has one method here that validates as SPDK does and
//! either applies the whole change or none of it. The `*_json` methods produce
//! SPDK's result shapes (`nvmf_get_subsystems`, `bdev_get_bdevs`,
//! `nvmf_get_transports`, `save_config`). Starting and stopping listen sockets
//! is the caller's job (the RPC layer drives the data plane).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use engine::{AdrFam, TargetOptions, TrType};
use serde_json::{json, Value};

use crate::ana::{ana_state_name, AnaStates, ANA_GROUP_MAX};
use crate::bdev::{format_nguid, format_uuid, Bdev, BdevBackend};
use crate::error::TargetError;
use protocol::log::AnaState;

/// The discovery subsystem's NQN.
pub const DISCOVERY_NQN: &str = protocol::DISCOVERY_NQN;
/// Serial number of a subsystem created without `-s`.
pub const DEFAULT_SERIAL_NUMBER: &str = "00000000000000000000";
/// Model number of a subsystem created without `-d`.
pub const DEFAULT_MODEL_NUMBER: &str = "SPDK bdev Controller";
/// Lowest controller ID (NVMe Base 2.0c: 0 is not a valid CNTLID for a dynamic controller).
pub const MIN_CNTLID: u16 = 1;
/// Highest controller ID: FFF0h..FFFFh are reserved (NVMe Base 2.0c, Identify Controller CNTLID).
pub const MAX_CNTLID: u16 = 0xFFEF;
/// Namespaces per subsystem when `max_namespaces` is not given (SPDK's default).
pub const DEFAULT_MAX_NAMESPACES: u32 = 32;
/// Longest NQN in bytes (NVMe Base 2.0c §4.5).
pub const NQN_MAX_LEN: usize = 223;
/// Serial number field size (Identify Controller SN).
pub const SERIAL_NUMBER_MAX_LEN: usize = 20;
/// Model number field size (Identify Controller MN).
pub const MODEL_NUMBER_MAX_LEN: usize = 40;
/// SPDK's default Dataset Management Range Size Limit, in 512-byte blocks (1 GiB), shown as `dmrsl`.
const DMRSL_BLOCKS: u32 = 2_097_152;
/// SPDK's default Write Zeroes Size Limit exponent, shown as `wzsl`.
const WZSL: u8 = 12;
/// The UUID form of an NQN: this prefix and a UUID (NVMe Base 2.0c §4.5).
const NQN_UUID_PREFIX: &str = "nqn.2014-08.org.nvmexpress:uuid:";

/// A transport created by `nvmf_create_transport`.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Transport type.
    pub trtype: TrType,
    /// Its options.
    pub opts: TargetOptions,
}

/// Kind of subsystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubsystemType {
    /// The discovery subsystem.
    Discovery,
    /// An NVM subsystem with namespaces.
    Nvme,
}

/// A namespace: a bdev exported under an NSID.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Namespace ID.
    pub nsid: u32,
    /// The bdev it exports.
    pub bdev: Arc<Bdev>,
    /// Namespace UUID (defaults to the bdev's).
    pub uuid: [u8; 16],
    /// Namespace globally unique identifier (defaults to the bdev's UUID bytes, as SPDK).
    pub nguid: [u8; 16],
    /// ANA group ID (defaults to the NSID, as SPDK).
    pub anagrpid: u32,
}

/// An address a subsystem listens on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenAddress {
    /// Transport type.
    pub trtype: TrType,
    /// Address family.
    pub adrfam: AdrFam,
    /// Address (an IP address for TCP and RDMA).
    pub traddr: String,
    /// Service ID (the port).
    pub trsvcid: String,
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.trtype.as_str(), self.traddr, self.trsvcid)
    }
}

impl ListenAddress {
    /// SPDK's JSON form: `{trtype, adrfam, traddr, trsvcid}`.
    pub fn to_json(&self) -> Value {
        json!({
            "trtype": self.trtype.as_str(),
            "adrfam": self.adrfam.as_str(),
            "traddr": self.traddr,
            "trsvcid": self.trsvcid,
        })
    }
}

/// An NVMe-oF subsystem.
#[derive(Debug, Clone)]
pub struct Subsystem {
    /// Subsystem NQN.
    pub nqn: String,
    /// Discovery or NVMe.
    pub subtype: SubsystemType,
    /// Serial number reported in Identify Controller.
    pub serial_number: String,
    /// Model number reported in Identify Controller.
    pub model_number: String,
    /// Any host may connect when true; else only `hosts`.
    pub allow_any_host: bool,
    /// Host NQNs allowed to connect.
    pub hosts: Vec<String>,
    /// Lowest controller ID this gateway hands out.
    pub min_cntlid: u16,
    /// Highest controller ID this gateway hands out.
    pub max_cntlid: u16,
    /// Highest NSID allowed (0 for discovery).
    pub max_namespaces: u32,
    /// ANA reporting enabled.
    pub ana_reporting: bool,
    /// Namespaces, in NSID order.
    pub namespaces: Vec<Namespace>,
    /// Listen addresses, in the order they were added.
    pub listeners: Vec<ListenAddress>,
    /// ANA state per listener (same order as `listeners`), shared with the
    /// controllers connected through it.
    pub ana: Vec<(ListenAddress, Arc<AnaStates>)>,
}

impl Subsystem {
    fn discovery() -> Subsystem {
        Subsystem {
            nqn: DISCOVERY_NQN.to_string(),
            subtype: SubsystemType::Discovery,
            serial_number: DEFAULT_SERIAL_NUMBER.to_string(),
            model_number: DEFAULT_MODEL_NUMBER.to_string(),
            allow_any_host: true,
            hosts: Vec::new(),
            min_cntlid: MIN_CNTLID,
            max_cntlid: MAX_CNTLID,
            max_namespaces: 0,
            ana_reporting: false,
            namespaces: Vec::new(),
            listeners: Vec::new(),
            ana: Vec::new(),
        }
    }

    /// ANAGRPMAX: the highest ANA group ID (max_namespaces, at most [`ANA_GROUP_MAX`]).
    pub fn ana_group_max(&self) -> u32 {
        self.max_namespaces.min(ANA_GROUP_MAX)
    }

    /// The ANA states seen through listener `addr`.
    pub fn ana_states(&self, addr: &ListenAddress) -> Option<&Arc<AnaStates>> {
        self.ana.iter().find(|(a, _)| a == addr).map(|(_, s)| s)
    }

    /// ANA group IDs that hold at least one namespace, ascending.
    pub fn ana_groups_in_use(&self) -> Vec<u32> {
        let mut groups: Vec<u32> = self.namespaces.iter().map(|ns| ns.anagrpid).collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }

    /// SPDK's `nvmf_subsystem_get_listeners` entries.
    pub fn listeners_json(&self) -> Value {
        let groups = self.ana_groups_in_use();
        self.listeners
            .iter()
            .map(|l| {
                let ana = self.ana_states(l);
                let states: Vec<Value> = groups
                    .iter()
                    .map(|&g| {
                        let state = ana.map_or(AnaState::Optimized, |a| a.state(g));
                        json!({"ana_group": g, "ana_state": ana_state_name(state)})
                    })
                    .collect();
                json!({"address": l.to_json(), "ana_states": states})
            })
            .collect()
    }

    /// The namespace with this NSID.
    pub fn namespace(&self, nsid: u32) -> Option<&Namespace> {
        self.namespaces.iter().find(|ns| ns.nsid == nsid)
    }

    /// SPDK's `nvmf_get_subsystems` entry.
    pub fn to_json(&self) -> Value {
        let mut obj = serde_json::Map::new();
        obj.insert("nqn".into(), json!(self.nqn));
        let subtype = match self.subtype {
            SubsystemType::Discovery => "Discovery",
            SubsystemType::Nvme => "NVMe",
        };
        obj.insert("subtype".into(), json!(subtype));
        obj.insert("listen_addresses".into(), self.listeners.iter().map(ListenAddress::to_json).collect());
        obj.insert("allow_any_host".into(), json!(self.allow_any_host));
        obj.insert("hosts".into(), self.hosts.iter().map(|h| json!({ "nqn": h })).collect());
        if self.subtype == SubsystemType::Nvme {
            obj.insert("serial_number".into(), json!(self.serial_number));
            obj.insert("model_number".into(), json!(self.model_number));
            obj.insert("max_namespaces".into(), json!(self.max_namespaces));
            obj.insert("passthrough".into(), json!(false));
            obj.insert("min_cntlid".into(), json!(self.min_cntlid));
            obj.insert("max_cntlid".into(), json!(self.max_cntlid));
            obj.insert("dmrsl".into(), json!(DMRSL_BLOCKS));
            obj.insert("wzsl".into(), json!(WZSL));
            let namespaces = self
                .namespaces
                .iter()
                .map(|ns| {
                    let mut o = serde_json::Map::new();
                    o.insert("nsid".into(), json!(ns.nsid));
                    o.insert("bdev_name".into(), json!(ns.bdev.name()));
                    o.insert("name".into(), json!(ns.bdev.name()));
                    o.insert("nguid".into(), json!(format_nguid(&ns.nguid)));
                    o.insert("uuid".into(), json!(format_uuid(&ns.uuid)));
                    if self.ana_reporting {
                        o.insert("anagrpid".into(), json!(ns.anagrpid));
                    }
                    Value::Object(o)
                })
                .collect();
            obj.insert("namespaces".into(), namespaces);
        }
        Value::Object(obj)
    }
}

/// Parameters of `nvmf_create_subsystem`; `None` means SPDK's default.
#[derive(Debug, Clone, Default)]
pub struct SubsystemParams {
    /// Subsystem NQN.
    pub nqn: String,
    /// Serial number (`-s`), default twenty zeroes.
    pub serial_number: Option<String>,
    /// Model number (`-d`), default "SPDK bdev Controller".
    pub model_number: Option<String>,
    /// Allow any host (`-a`).
    pub allow_any_host: bool,
    /// Most namespaces (`-m`); 0 or `None` means 32.
    pub max_namespaces: Option<u32>,
    /// Lowest controller ID (`-i`), default 1.
    pub min_cntlid: Option<u16>,
    /// Highest controller ID (`-I`), default 0xFFEF.
    pub max_cntlid: Option<u16>,
    /// ANA reporting (`-r`).
    pub ana_reporting: bool,
}

/// Parameters of `nvmf_subsystem_add_ns`.
#[derive(Debug, Clone, Default)]
pub struct NamespaceParams {
    /// The bdev to export.
    pub bdev_name: String,
    /// NSID; `None` or 0 picks the lowest free one.
    pub nsid: Option<u32>,
    /// Namespace UUID; defaults to the bdev's.
    pub uuid: Option<[u8; 16]>,
    /// NGUID; defaults to the bdev's UUID bytes.
    pub nguid: Option<[u8; 16]>,
    /// ANA group ID; `None` or 0 means the NSID.
    pub anagrpid: Option<u32>,
}

/// The gateway's configuration.
#[derive(Debug)]
pub struct TargetState {
    /// Bdevs by name.
    pub bdevs: BTreeMap<String, Arc<Bdev>>,
    /// Subsystems; the discovery subsystem is first.
    pub subsystems: Vec<Subsystem>,
    /// Transports, in creation order.
    pub transports: Vec<TransportConfig>,
    /// Index tried first for the next automatic malloc name ("Malloc<N>"), as SPDK counts.
    next_malloc_index: u64,
}

impl Default for TargetState {
    fn default() -> Self {
        TargetState::new()
    }
}

impl TargetState {
    /// An empty configuration holding only the discovery subsystem.
    pub fn new() -> Self {
        TargetState {
            bdevs: BTreeMap::new(),
            subsystems: vec![Subsystem::discovery()],
            transports: Vec::new(),
            next_malloc_index: 0,
        }
    }

    /// The subsystem with this NQN.
    pub fn subsystem(&self, nqn: &str) -> Option<&Subsystem> {
        self.subsystems.iter().find(|s| s.nqn == nqn)
    }

    fn subsystem_mut(&mut self, nqn: &str) -> Result<&mut Subsystem, TargetError> {
        self.subsystems.iter_mut().find(|s| s.nqn == nqn).ok_or_else(|| TargetError::SubsystemNotFound(nqn.into()))
    }

    /// The transport of this type.
    pub fn transport(&self, trtype: TrType) -> Option<&TransportConfig> {
        self.transports.iter().find(|t| t.trtype == trtype)
    }

    /// The bdev with this name.
    pub fn bdev(&self, name: &str) -> Option<&Arc<Bdev>> {
        self.bdevs.get(name)
    }

    /// The namespace exporting this bdev, as (subsystem NQN, NSID).
    pub fn bdev_claimed_by(&self, bdev_name: &str) -> Option<(&str, u32)> {
        self.subsystems.iter().find_map(|s| {
            s.namespaces.iter().find(|ns| ns.bdev.name() == bdev_name).map(|ns| (s.nqn.as_str(), ns.nsid))
        })
    }

    /// True when any subsystem listens on `addr`.
    pub fn listener_in_use(&self, addr: &ListenAddress) -> bool {
        self.subsystems.iter().any(|s| s.listeners.contains(addr))
    }

    /// True when `hostnqn` may connect to `subnqn` (unknown subsystems admit nobody).
    pub fn host_allowed(&self, subnqn: &str, hostnqn: &str) -> bool {
        self.subsystem(subnqn).is_some_and(|s| s.allow_any_host || s.hosts.iter().any(|h| h == hostnqn))
    }

    /// `nvmf_create_transport`: one transport per type.
    pub fn create_transport(&mut self, trtype: TrType, opts: TargetOptions) -> Result<(), TargetError> {
        if self.transport(trtype).is_some() {
            return Err(TargetError::TransportExists(trtype.as_str()));
        }
        let invalid = |param, reason: String| Err(TargetError::InvalidParam { param, reason });
        if opts.max_queue_depth < 2 {
            return invalid("max_queue_depth", format!("{} is below the minimum of 2", opts.max_queue_depth));
        }
        if opts.max_qpairs_per_ctrlr < 2 {
            return invalid("max_io_qpairs_per_ctrlr", "must be at least 1".to_string());
        }
        if opts.max_io_size == 0 || opts.max_io_size % 512 != 0 {
            return invalid("max_io_size", format!("{} is not a positive multiple of 512", opts.max_io_size));
        }
        if opts.io_unit_size == 0 || opts.io_unit_size % 512 != 0 {
            return invalid("io_unit_size", format!("{} is not a positive multiple of 512", opts.io_unit_size));
        }
        if opts.in_capsule_data_size > opts.max_io_size {
            return invalid(
                "in_capsule_data_size",
                format!("{} is larger than max_io_size {}", opts.in_capsule_data_size, opts.max_io_size),
            );
        }
        self.transports.push(TransportConfig { trtype, opts });
        Ok(())
    }

    /// `bdev_malloc_create`; without a name, picks SPDK's "Malloc<N>".
    pub fn bdev_malloc_create(
        &mut self,
        name: Option<&str>,
        num_blocks: u64,
        block_size: u32,
        uuid: Option<[u8; 16]>,
    ) -> Result<Arc<Bdev>, TargetError> {
        let name = match name {
            Some(name) => name.to_string(),
            None => self.next_malloc_name(),
        };
        self.check_new_bdev(&name, uuid)?;
        let bdev = Arc::new(Bdev::malloc(&name, num_blocks, block_size, uuid)?);
        self.bdevs.insert(name, bdev.clone());
        Ok(bdev)
    }

    /// `bdev_null_create`.
    pub fn bdev_null_create(
        &mut self,
        name: &str,
        num_blocks: u64,
        block_size: u32,
        uuid: Option<[u8; 16]>,
    ) -> Result<Arc<Bdev>, TargetError> {
        self.check_new_bdev(name, uuid)?;
        let bdev = Arc::new(Bdev::null(name, num_blocks, block_size, uuid)?);
        self.bdevs.insert(name.to_string(), bdev.clone());
        Ok(bdev)
    }

    /// `bdev_aio_create`: a bdev on `filename` opened O_DIRECT (see [`Bdev::aio`]).
    pub fn bdev_aio_create(
        &mut self,
        name: &str,
        filename: &str,
        block_size: Option<u32>,
        uuid: Option<[u8; 16]>,
    ) -> Result<Arc<Bdev>, TargetError> {
        self.check_new_bdev(name, uuid)?;
        let bdev = Arc::new(Bdev::aio(name, filename, block_size, uuid)?);
        self.bdevs.insert(name.to_string(), bdev.clone());
        Ok(bdev)
    }

    /// `bdev_aio_delete`: only an AIO bdev of that name.
    pub fn bdev_aio_delete(&mut self, name: &str) -> Result<(), TargetError> {
        self.delete_bdev(name, |b| matches!(b, BdevBackend::Aio(_)))
    }

    /// `bdev_malloc_delete`: only a malloc bdev of that name.
    pub fn bdev_malloc_delete(&mut self, name: &str) -> Result<(), TargetError> {
        self.delete_bdev(name, |b| matches!(b, BdevBackend::Malloc(_)))
    }

    /// `bdev_null_delete`: only a null bdev of that name.
    pub fn bdev_null_delete(&mut self, name: &str) -> Result<(), TargetError> {
        self.delete_bdev(name, |b| matches!(b, BdevBackend::Null))
    }

    fn delete_bdev(&mut self, name: &str, is_kind: impl Fn(&BdevBackend) -> bool) -> Result<(), TargetError> {
        match self.bdevs.get(name) {
            Some(bdev) if is_kind(bdev.backend()) => {}
            _ => return Err(TargetError::BdevNotFound(name.to_string())),
        }
        // SPDK would hot-remove the namespace; we refuse, so that a gateway
        // never drops a namespace under a connected host by accident.
        if let Some((nqn, nsid)) = self.bdev_claimed_by(name) {
            return Err(TargetError::BdevInUse { bdev: name.to_string(), nqn: nqn.to_string(), nsid });
        }
        self.bdevs.remove(name);
        Ok(())
    }

    fn next_malloc_name(&mut self) -> String {
        loop {
            let name = format!("Malloc{}", self.next_malloc_index);
            self.next_malloc_index += 1;
            if !self.bdevs.contains_key(&name) {
                return name;
            }
        }
    }

    /// A new bdev's name and UUID must be unique (SPDK registers the UUID as an alias).
    fn check_new_bdev(&self, name: &str, uuid: Option<[u8; 16]>) -> Result<(), TargetError> {
        if self.bdevs.contains_key(name) {
            return Err(TargetError::BdevExists(name.to_string()));
        }
        if let Some(uuid) = uuid {
            if self.bdevs.values().any(|b| b.uuid() == uuid) {
                return Err(TargetError::BdevExists(format_uuid(&uuid)));
            }
        }
        Ok(())
    }

    /// `nvmf_create_subsystem`.
    pub fn create_subsystem(&mut self, params: SubsystemParams) -> Result<(), TargetError> {
        validate_nqn(&params.nqn)?;
        if self.subsystem(&params.nqn).is_some() {
            return Err(TargetError::SubsystemExists(params.nqn));
        }
        let serial_number = params.serial_number.unwrap_or_else(|| DEFAULT_SERIAL_NUMBER.to_string());
        validate_id_string("serial_number", &serial_number, SERIAL_NUMBER_MAX_LEN)?;
        let model_number = params.model_number.unwrap_or_else(|| DEFAULT_MODEL_NUMBER.to_string());
        validate_id_string("model_number", &model_number, MODEL_NUMBER_MAX_LEN)?;
        let min_cntlid = params.min_cntlid.unwrap_or(MIN_CNTLID);
        let max_cntlid = params.max_cntlid.unwrap_or(MAX_CNTLID);
        if !(MIN_CNTLID <= min_cntlid && min_cntlid <= max_cntlid && max_cntlid <= MAX_CNTLID) {
            return Err(TargetError::InvalidParam {
                param: "cntlid range",
                reason: format!(
                    "Invalid cntlid range [{min_cntlid}-{max_cntlid}]: need {MIN_CNTLID} <= min_cntlid <= max_cntlid <= {MAX_CNTLID}"
                ),
            });
        }
        let max_namespaces = match params.max_namespaces {
            None | Some(0) => DEFAULT_MAX_NAMESPACES,
            Some(n) if n == u32::MAX => {
                return Err(TargetError::InvalidParam {
                    param: "max_namespaces",
                    reason: "NSID FFFFFFFFh is the broadcast value".to_string(),
                })
            }
            Some(n) => n,
        };
        self.subsystems.push(Subsystem {
            nqn: params.nqn,
            subtype: SubsystemType::Nvme,
            serial_number,
            model_number,
            allow_any_host: params.allow_any_host,
            hosts: Vec::new(),
            min_cntlid,
            max_cntlid,
            max_namespaces,
            ana_reporting: params.ana_reporting,
            namespaces: Vec::new(),
            listeners: Vec::new(),
            ana: Vec::new(),
        });
        Ok(())
    }

    /// `nvmf_delete_subsystem`: returns the removed subsystem so the caller can
    /// stop listeners no other subsystem uses.
    pub fn delete_subsystem(&mut self, nqn: &str) -> Result<Subsystem, TargetError> {
        if nqn == DISCOVERY_NQN {
            return Err(TargetError::DiscoverySubsystem("it cannot be deleted"));
        }
        let index = self
            .subsystems
            .iter()
            .position(|s| s.nqn == nqn)
            .ok_or_else(|| TargetError::SubsystemNotFound(nqn.to_string()))?;
        Ok(self.subsystems.remove(index))
    }

    /// `nvmf_subsystem_add_ns`: returns the NSID used.
    pub fn add_ns(&mut self, nqn: &str, params: NamespaceParams) -> Result<u32, TargetError> {
        let fail = |reason: String| TargetError::NamespaceAdd { nqn: nqn.to_string(), reason };
        // The subsystem is looked up first, as SPDK does, so that its absence is what gets reported.
        match self.subsystem(nqn) {
            None => return Err(TargetError::SubsystemNotFound(nqn.to_string())),
            Some(s) if s.subtype == SubsystemType::Discovery => {
                return Err(TargetError::DiscoverySubsystem("it has no namespaces"))
            }
            Some(_) => {}
        }
        let bdev = self
            .bdevs
            .get(&params.bdev_name)
            .cloned()
            .ok_or_else(|| fail(format!("bdev '{}' does not exist", params.bdev_name)))?;
        if let Some((other_nqn, other_nsid)) = self.bdev_claimed_by(&params.bdev_name) {
            return Err(fail(format!(
                "bdev '{}' already claimed by namespace {other_nsid} of {other_nqn}",
                params.bdev_name
            )));
        }
        let subsystem = self.subsystem_mut(nqn)?;
        let nsid = match params.nsid {
            None | Some(0) => (1..=subsystem.max_namespaces)
                .find(|&id| subsystem.namespace(id).is_none())
                .ok_or_else(|| fail(format!("no free NSID (max_namespaces {})", subsystem.max_namespaces)))?,
            Some(id) if id > subsystem.max_namespaces => {
                return Err(fail(format!("NSID {id} is above max_namespaces {}", subsystem.max_namespaces)))
            }
            Some(id) if subsystem.namespace(id).is_some() => {
                return Err(fail(format!("requested NSID {id} already in use")))
            }
            Some(id) => id,
        };
        let uuid = params.uuid.unwrap_or_else(|| bdev.uuid());
        let nguid = params.nguid.unwrap_or_else(|| bdev.uuid());
        if subsystem.namespaces.iter().any(|ns| ns.uuid == uuid) {
            return Err(fail(format!("namespace UUID {} already in use", format_uuid(&uuid))));
        }
        let anagrpid = params.anagrpid.filter(|&g| g != 0).unwrap_or(nsid);
        if anagrpid > subsystem.ana_group_max() {
            return Err(fail(format!(
                "ANA group ID {anagrpid} is above ANAGRPMAX {} (max_namespaces, at most {ANA_GROUP_MAX})",
                subsystem.ana_group_max()
            )));
        }
        let at = subsystem.namespaces.partition_point(|ns| ns.nsid < nsid);
        subsystem.namespaces.insert(at, Namespace { nsid, bdev, uuid, nguid, anagrpid });
        Ok(nsid)
    }

    /// `nvmf_subsystem_remove_ns`.
    pub fn remove_ns(&mut self, nqn: &str, nsid: u32) -> Result<(), TargetError> {
        let subsystem = self.subsystem_mut(nqn)?;
        let index = subsystem
            .namespaces
            .iter()
            .position(|ns| ns.nsid == nsid)
            .ok_or_else(|| TargetError::NamespaceNotFound { nqn: nqn.to_string(), nsid })?;
        subsystem.namespaces.remove(index);
        Ok(())
    }

    /// `nvmf_subsystem_add_listener`, recording only: the transport must exist,
    /// the subsystem must not list the address yet. Starting the socket is the
    /// caller's job (when [`TargetState::listener_in_use`] was false before).
    pub fn add_listener(&mut self, nqn: &str, addr: ListenAddress) -> Result<(), TargetError> {
        validate_listen_address(&addr)?;
        if self.transport(addr.trtype).is_none() {
            return Err(TargetError::TransportNotFound(addr.trtype.as_str()));
        }
        let subsystem = self.subsystem_mut(nqn)?;
        if subsystem.listeners.contains(&addr) {
            return Err(TargetError::ListenerExists { nqn: nqn.to_string(), addr: addr.to_string() });
        }
        let ana = Arc::new(AnaStates::new(subsystem.ana_group_max()));
        subsystem.ana.push((addr.clone(), ana));
        subsystem.listeners.push(addr);
        Ok(())
    }

    /// `nvmf_subsystem_remove_listener`, recording only; the caller stops the
    /// socket when [`TargetState::listener_in_use`] turns false.
    pub fn remove_listener(&mut self, nqn: &str, addr: &ListenAddress) -> Result<(), TargetError> {
        let subsystem = self.subsystem_mut(nqn)?;
        let index = subsystem
            .listeners
            .iter()
            .position(|l| l == addr)
            .ok_or_else(|| TargetError::ListenerNotFound { nqn: nqn.to_string(), addr: addr.to_string() })?;
        subsystem.listeners.remove(index);
        subsystem.ana.retain(|(a, _)| a != addr);
        Ok(())
    }

    /// `nvmf_subsystem_listener_set_ana_state`: sets the state of group
    /// `anagrpid` (every group when `None`) as seen through listener `addr`.
    /// Returns whether anything changed; controllers connected through the
    /// listener notice the change count on their admin queue's next turn.
    pub fn set_ana_state(
        &mut self,
        nqn: &str,
        addr: &ListenAddress,
        state: AnaState,
        anagrpid: Option<u32>,
    ) -> Result<bool, TargetError> {
        let subsystem = self.subsystem(nqn).ok_or_else(|| TargetError::SubsystemNotFound(nqn.to_string()))?;
        if subsystem.subtype == SubsystemType::Discovery {
            return Err(TargetError::DiscoverySubsystem("it has no namespaces"));
        }
        if !subsystem.ana_reporting {
            return Err(TargetError::InvalidParam {
                param: "ana_state",
                reason: format!("ANA reporting is disabled on {nqn} (nvmf_create_subsystem -r)"),
            });
        }
        let ana = subsystem
            .ana_states(addr)
            .ok_or_else(|| TargetError::ListenerNotFound { nqn: nqn.to_string(), addr: addr.to_string() })?;
        match anagrpid {
            Some(g) if g == 0 || g > ana.groups() => Err(TargetError::InvalidParam {
                param: "anagrpid",
                reason: format!("{g} is not an ANA group ID of {nqn} (1..={})", ana.groups()),
            }),
            Some(g) => Ok(ana.set(g, state)),
            None => Ok((1..=ana.groups()).fold(false, |changed, g| ana.set(g, state) | changed)),
        }
    }

    /// `nvmf_subsystem_get_listeners` result.
    pub fn get_listeners_json(&self, nqn: &str) -> Result<Value, TargetError> {
        let subsystem = self.subsystem(nqn).ok_or_else(|| TargetError::SubsystemNotFound(nqn.to_string()))?;
        Ok(subsystem.listeners_json())
    }

    /// `nvmf_subsystem_add_host`.
    pub fn add_host(&mut self, nqn: &str, host: &str) -> Result<(), TargetError> {
        validate_nqn(host)
            .map_err(|_| TargetError::InvalidParam { param: "host", reason: format!("'{host}' is not a valid NQN") })?;
        let subsystem = self.subsystem_mut(nqn)?;
        if subsystem.subtype == SubsystemType::Discovery {
            return Err(TargetError::DiscoverySubsystem("it admits any host"));
        }
        if subsystem.hosts.iter().any(|h| h == host) {
            return Err(TargetError::HostExists { nqn: nqn.to_string(), host: host.to_string() });
        }
        subsystem.hosts.push(host.to_string());
        Ok(())
    }

    /// `nvmf_subsystem_remove_host`.
    pub fn remove_host(&mut self, nqn: &str, host: &str) -> Result<(), TargetError> {
        let subsystem = self.subsystem_mut(nqn)?;
        let index = subsystem
            .hosts
            .iter()
            .position(|h| h == host)
            .ok_or_else(|| TargetError::HostNotFound { nqn: nqn.to_string(), host: host.to_string() })?;
        subsystem.hosts.remove(index);
        Ok(())
    }

    /// `nvmf_subsystem_allow_any_host`.
    pub fn set_allow_any_host(&mut self, nqn: &str, allow_any_host: bool) -> Result<(), TargetError> {
        let subsystem = self.subsystem_mut(nqn)?;
        if subsystem.subtype == SubsystemType::Discovery {
            return Err(TargetError::DiscoverySubsystem("it admits any host"));
        }
        subsystem.allow_any_host = allow_any_host;
        Ok(())
    }

    /// `nvmf_get_subsystems` result: all subsystems, or the one named.
    pub fn get_subsystems_json(&self, nqn: Option<&str>) -> Result<Value, TargetError> {
        match nqn {
            Some(nqn) => {
                let s = self.subsystem(nqn).ok_or_else(|| TargetError::SubsystemNotFound(nqn.to_string()))?;
                Ok(Value::Array(vec![s.to_json()]))
            }
            None => Ok(self.subsystems.iter().map(Subsystem::to_json).collect()),
        }
    }

    /// `bdev_get_bdevs` result: all bdevs (by name), or the one named (else ENODEV).
    pub fn get_bdevs_json(&self, name: Option<&str>) -> Result<Value, TargetError> {
        match name {
            Some(name) => {
                // SPDK also finds a bdev by an alias; a bdev's UUID is one.
                let bdev = self
                    .bdevs
                    .get(name)
                    .or_else(|| self.bdevs.values().find(|b| format_uuid(&b.uuid()) == name))
                    .ok_or_else(|| TargetError::BdevNotFound(name.to_string()))?;
                Ok(Value::Array(vec![self.bdev_json(bdev)]))
            }
            None => Ok(self.bdevs.values().map(|b| self.bdev_json(b)).collect()),
        }
    }

    fn bdev_json(&self, bdev: &Bdev) -> Value {
        let uuid = format_uuid(&bdev.uuid());
        let claimed = self.bdev_claimed_by(bdev.name()).is_some();
        // What our implementation of each backend does; names and order are SPDK's io types.
        let io_types: [(&str, bool); 22] = [
            ("read", true),
            ("write", true),
            ("unmap", true),
            ("flush", true),
            ("reset", true),
            ("nvme_admin", false),
            ("nvme_io", false),
            ("nvme_io_md", false),
            ("write_zeroes", true),
            ("zcopy", false),
            ("get_zone_info", false),
            ("zone_management", false),
            ("zone_append", false),
            ("compare", false),
            ("compare_and_write", false),
            ("abort", false),
            ("seek_hole", false),
            ("seek_data", false),
            ("copy", false),
            ("nvme_iov_md", false),
            ("nvme_nssr", false),
            ("write_uncorrectable", false),
        ];
        let supported: serde_json::Map<String, Value> =
            io_types.iter().map(|(name, on)| (name.to_string(), Value::Bool(*on))).collect();
        let mut obj = serde_json::Map::new();
        obj.insert("name".into(), json!(bdev.name()));
        obj.insert("aliases".into(), json!([uuid]));
        obj.insert("product_name".into(), json!(bdev.product_name()));
        obj.insert("block_size".into(), json!(bdev.block_size()));
        obj.insert("num_blocks".into(), json!(bdev.num_blocks()));
        obj.insert("preferred_write_alignment".into(), json!(1));
        obj.insert("preferred_write_granularity".into(), json!(1));
        obj.insert("optimal_write_size".into(), json!(1));
        obj.insert("preferred_unmap_alignment".into(), json!(1));
        obj.insert("preferred_unmap_granularity".into(), json!(1));
        obj.insert("uuid".into(), json!(uuid));
        obj.insert(
            "assigned_rate_limits".into(),
            json!({"rw_ios_per_sec": 0, "rw_mbytes_per_sec": 0, "r_mbytes_per_sec": 0, "w_mbytes_per_sec": 0}),
        );
        obj.insert("claimed".into(), json!(claimed));
        if claimed {
            obj.insert("claim_type".into(), json!("exclusive_write"));
        }
        obj.insert("zoned".into(), json!(false));
        obj.insert("supported_io_types".into(), Value::Object(supported));
        let driver_specific = match bdev.backend() {
            BdevBackend::Aio(f) => json!({"aio": {
                "filename": f.filename(),
                "block_size_override": f.block_size_override(),
                "readonly": false,
                // Write Zeroes and Deallocate are done with fallocate (SPDK's meaning of this flag).
                "fallocate": true,
            }}),
            _ => json!({}),
        };
        obj.insert("driver_specific".into(), driver_specific);
        Value::Object(obj)
    }

    /// `nvmf_get_transports` result: all transports, or the one of this type (else ENODEV, as SPDK).
    pub fn get_transports_json(&self, trtype: Option<TrType>) -> Result<Value, TargetError> {
        let dump = |t: &TransportConfig| transport_params_json(t);
        match trtype {
            Some(trtype) => {
                let t = self.transport(trtype).ok_or_else(|| TargetError::TransportNotFound(trtype.as_str()))?;
                Ok(Value::Array(vec![dump(t)]))
            }
            None => Ok(self.transports.iter().map(dump).collect()),
        }
    }

    /// The `config` array of the "bdev" subsystem in `save_config`.
    pub fn bdev_config_json(&self) -> Vec<Value> {
        self.bdevs
            .values()
            .map(|bdev| match bdev.backend() {
                BdevBackend::Malloc(_) => json!({
                    "method": "bdev_malloc_create",
                    "params": {
                        "name": bdev.name(),
                        "num_blocks": bdev.num_blocks(),
                        "block_size": bdev.block_size(),
                        "physical_block_size": bdev.block_size(),
                        "uuid": format_uuid(&bdev.uuid()),
                        "optimal_io_boundary": 0,
                        "md_size": 0,
                        "dif_type": 0,
                        "dif_is_head_of_md": false,
                        "dif_pi_format": 0,
                    }
                }),
                BdevBackend::Aio(f) => json!({
                    "method": "bdev_aio_create",
                    "params": {
                        "name": bdev.name(),
                        "filename": f.filename(),
                        "block_size": bdev.block_size(),
                        "readonly": false,
                        "fallocate": true,
                        "uuid": format_uuid(&bdev.uuid()),
                    }
                }),
                BdevBackend::Null => json!({
                    "method": "bdev_null_create",
                    "params": {
                        "name": bdev.name(),
                        "num_blocks": bdev.num_blocks(),
                        "block_size": bdev.block_size(),
                        "physical_block_size": bdev.block_size(),
                        "uuid": format_uuid(&bdev.uuid()),
                        "md_size": 0,
                        "dif_type": 0,
                        "dif_is_head_of_md": false,
                        "dif_pi_format": 0,
                    }
                }),
            })
            .collect()
    }

    /// The `config` array of the "nvmf" subsystem in `save_config`, in SPDK's
    /// order: transports, subsystems, hosts, namespaces, listeners.
    pub fn nvmf_config_json(&self) -> Vec<Value> {
        let mut calls: Vec<Value> = self
            .transports
            .iter()
            .map(|t| json!({"method": "nvmf_create_transport", "params": transport_params_json(t)}))
            .collect();
        let nvme = || self.subsystems.iter().filter(|s| s.subtype == SubsystemType::Nvme);
        calls.extend(nvme().map(|s| {
            json!({"method": "nvmf_create_subsystem", "params": {
                "nqn": s.nqn,
                "allow_any_host": s.allow_any_host,
                "serial_number": s.serial_number,
                "model_number": s.model_number,
                "max_namespaces": s.max_namespaces,
                "min_cntlid": s.min_cntlid,
                "max_cntlid": s.max_cntlid,
                "ana_reporting": s.ana_reporting,
            }})
        }));
        for s in nvme() {
            calls.extend(
                s.hosts
                    .iter()
                    .map(|h| json!({"method": "nvmf_subsystem_add_host", "params": {"nqn": s.nqn, "host": h}})),
            );
        }
        for s in nvme() {
            calls.extend(s.namespaces.iter().map(|ns| {
                let mut namespace = json!({
                    "nsid": ns.nsid,
                    "bdev_name": ns.bdev.name(),
                    "nguid": format_nguid(&ns.nguid),
                    "uuid": format_uuid(&ns.uuid),
                });
                if s.ana_reporting || ns.anagrpid != ns.nsid {
                    namespace["anagrpid"] = json!(ns.anagrpid);
                }
                json!({"method": "nvmf_subsystem_add_ns", "params": {"nqn": s.nqn, "namespace": namespace}})
            }));
        }
        for s in &self.subsystems {
            calls.extend(s.listeners.iter().map(|l| {
                json!({"method": "nvmf_subsystem_add_listener", "params": {
                    "nqn": s.nqn, "listen_address": l.to_json(), "secure_channel": false,
                }})
            }));
        }
        // Non-default ANA states, after the listeners they belong to (a reload starts all optimized).
        for s in nvme().filter(|s| s.ana_reporting) {
            for (l, ana) in &s.ana {
                for g in 1..=ana.groups() {
                    let state = ana.state(g);
                    if state != AnaState::Optimized {
                        calls.push(json!({"method": "nvmf_subsystem_listener_set_ana_state", "params": {
                            "nqn": s.nqn, "listen_address": l.to_json(),
                            "ana_state": ana_state_name(state), "anagrpid": g,
                        }}));
                    }
                }
            }
        }
        calls
    }
}

/// A transport's options in SPDK's names (`nvmf_get_transports`, `save_config`).
fn transport_params_json(t: &TransportConfig) -> Value {
    json!({
        "trtype": t.trtype.as_str(),
        "max_queue_depth": t.opts.max_queue_depth,
        // SPDK counts IO queues here; the admin queue is the extra one.
        "max_io_qpairs_per_ctrlr": t.opts.max_qpairs_per_ctrlr.saturating_sub(1),
        "in_capsule_data_size": t.opts.in_capsule_data_size,
        "max_io_size": t.opts.max_io_size,
        "io_unit_size": t.opts.io_unit_size,
        "c2h_success": t.opts.c2h_success,
    })
}

/// Checks an NQN as SPDK does (NVMe Base 2.0c §4.5): at most 223 bytes; the
/// discovery NQN; the UUID form; or `nqn.yyyy-mm.reverse.domain:user-string`.
pub fn validate_nqn(nqn: &str) -> Result<(), TargetError> {
    let bad = |reason: &str| TargetError::InvalidParam { param: "nqn", reason: format!("'{nqn}': {reason}") };
    if nqn.len() > NQN_MAX_LEN {
        return Err(bad("longer than 223 bytes"));
    }
    if nqn == DISCOVERY_NQN {
        return Ok(());
    }
    if let Some(uuid) = nqn.strip_prefix(NQN_UUID_PREFIX) {
        return match crate::bdev::parse_uuid(uuid) {
            Some(_) => Ok(()),
            None => Err(bad("the UUID after 'nqn.2014-08.org.nvmexpress:uuid:' is malformed")),
        };
    }
    let rest = nqn.strip_prefix("nqn.").ok_or_else(|| bad("must begin with \"nqn.\""))?;
    let date = rest.as_bytes();
    let date_ok = date.len() >= 8
        && date[..4].iter().all(u8::is_ascii_digit)
        && date[4] == b'-'
        && date[5..7].iter().all(u8::is_ascii_digit)
        && date[7] == b'.';
    if !date_ok {
        return Err(bad("invalid date code (need yyyy-mm.)"));
    }
    let after_date = rest.get(8..).unwrap_or("");
    let (domain, user) =
        after_date.split_once(':').ok_or_else(|| bad("must contain a user-specified name after ':'"))?;
    if user.is_empty() {
        return Err(bad("must contain a user-specified name after ':'"));
    }
    for label in domain.split('.') {
        let bytes = label.as_bytes();
        let ok = matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic())
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.len() <= 63;
        if !ok {
            return Err(bad("invalid reverse domain name"));
        }
    }
    Ok(())
}

/// Serial and model numbers: printable ASCII (20h..7Eh), at most `max_len` bytes.
fn validate_id_string(param: &'static str, value: &str, max_len: usize) -> Result<(), TargetError> {
    if value.len() > max_len {
        return Err(TargetError::InvalidParam { param, reason: format!("'{value}' is longer than {max_len} bytes") });
    }
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(TargetError::InvalidParam {
            param,
            reason: format!("{value:?} has characters outside printable ASCII"),
        });
    }
    Ok(())
}

/// Address and service ID must fit SPDK's trid fields and name a port for IP transports.
fn validate_listen_address(addr: &ListenAddress) -> Result<(), TargetError> {
    // Sizes of traddr (256) and trsvcid (32) in SPDK's transport ID, minus the NUL.
    if addr.traddr.is_empty() || addr.traddr.len() > 255 {
        return Err(TargetError::InvalidParam {
            param: "traddr",
            reason: format!("'{}' is empty or too long", addr.traddr),
        });
    }
    match addr.trsvcid.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(TargetError::InvalidParam {
            param: "trsvcid",
            reason: format!("'{}' is not a port number", addr.trsvcid),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";

    fn tcp(traddr: &str, port: &str) -> ListenAddress {
        ListenAddress { trtype: TrType::Tcp, adrfam: AdrFam::Ipv4, traddr: traddr.into(), trsvcid: port.into() }
    }

    fn gateway() -> TargetState {
        let mut state = TargetState::new();
        state.create_transport(TrType::Tcp, TargetOptions::default()).unwrap();
        state.bdev_malloc_create(Some("Malloc0"), 131072, 512, None).unwrap();
        state
            .create_subsystem(SubsystemParams {
                nqn: NQN.into(),
                serial_number: Some("SPDK_BDEV_0".into()),
                allow_any_host: true,
                min_cntlid: Some(1),
                max_cntlid: Some(32760),
                ..Default::default()
            })
            .unwrap();
        state
    }

    #[test]
    fn new_state_has_only_the_discovery_subsystem_in_spdk_shape() {
        let state = TargetState::new();
        let json = state.get_subsystems_json(None).unwrap();
        assert_eq!(
            json,
            json!([{"nqn": DISCOVERY_NQN, "subtype": "Discovery", "listen_addresses": [], "allow_any_host": true, "hosts": []}])
        );
    }

    #[test]
    fn subsystem_with_namespace_and_listener_matches_spdk_shape() {
        let mut state = gateway();
        assert_eq!(state.add_ns(NQN, NamespaceParams { bdev_name: "Malloc0".into(), ..Default::default() }), Ok(1));
        state.add_listener(NQN, tcp("127.0.0.2", "4420")).unwrap();
        let json = state.get_subsystems_json(Some(NQN)).unwrap();
        let s = &json[0];
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
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
                "namespaces"
            ]
        );
        assert_eq!(
            s["listen_addresses"],
            json!([{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.2", "trsvcid": "4420"}])
        );
        assert_eq!(s["max_namespaces"], 32);
        assert_eq!(s["max_cntlid"], 32760);
        let uuid = format_uuid(&state.bdev("Malloc0").unwrap().uuid());
        assert_eq!(s["namespaces"][0]["uuid"], json!(uuid));
        assert_eq!(s["namespaces"][0]["nguid"], json!(uuid.replace('-', "").to_uppercase()));
        assert_eq!(s["namespaces"][0]["bdev_name"], "Malloc0");
    }

    #[test]
    fn bdev_is_claimed_by_one_namespace_only_and_cannot_be_deleted_while_exported() {
        let mut state = gateway();
        state
            .add_ns(NQN, NamespaceParams { bdev_name: "Malloc0".into(), nsid: Some(5), ..Default::default() })
            .unwrap();
        let again = state.add_ns(NQN, NamespaceParams { bdev_name: "Malloc0".into(), ..Default::default() });
        assert!(
            matches!(again, Err(TargetError::NamespaceAdd { ref reason, .. }) if reason.contains("already claimed"))
        );
        assert!(matches!(state.bdev_malloc_delete("Malloc0"), Err(TargetError::BdevInUse { nsid: 5, .. })));
        let missing = NamespaceParams { bdev_name: "Nope".into(), ..Default::default() };
        assert_eq!(
            state.add_ns("nqn.2016-06.io.spdk:none", missing.clone()),
            Err(TargetError::SubsystemNotFound("nqn.2016-06.io.spdk:none".into()))
        );
        assert!(matches!(state.add_ns(DISCOVERY_NQN, missing), Err(TargetError::DiscoverySubsystem(_))));
        assert_eq!(state.get_bdevs_json(Some("Malloc0")).unwrap()[0]["claimed"], true);
        state.remove_ns(NQN, 5).unwrap();
        state.bdev_malloc_delete("Malloc0").unwrap();
        assert!(state.bdev("Malloc0").is_none());
    }

    #[test]
    fn automatic_nsid_is_the_lowest_free_and_explicit_nsid_is_bounded() {
        let mut state = gateway();
        for name in ["A", "B", "C"] {
            state.bdev_null_create(name, 8, 512, None).unwrap();
        }
        let ns = |name: &str, nsid| NamespaceParams { bdev_name: name.into(), nsid, ..Default::default() };
        assert_eq!(state.add_ns(NQN, ns("A", Some(2))), Ok(2));
        assert_eq!(state.add_ns(NQN, ns("B", None)), Ok(1));
        assert!(state.add_ns(NQN, ns("C", Some(33))).is_err());
        assert!(state.add_ns(NQN, ns("C", Some(2))).is_err());
        assert_eq!(state.add_ns(NQN, ns("C", Some(0))), Ok(3));
        let nsids: Vec<u32> = state.subsystem(NQN).unwrap().namespaces.iter().map(|n| n.nsid).collect();
        assert_eq!(nsids, [1, 2, 3]);
    }

    #[test]
    fn validates_subsystem_parameters_as_spdk() {
        let mut state = TargetState::new();
        let create = |state: &mut TargetState, p: SubsystemParams| state.create_subsystem(p);
        let base = || SubsystemParams { nqn: NQN.into(), ..Default::default() };
        assert!(create(&mut state, SubsystemParams { nqn: "iqn.bad".into(), ..base() }).is_err());
        assert!(create(&mut state, SubsystemParams { serial_number: Some("x".repeat(21)), ..base() }).is_err());
        assert!(create(&mut state, SubsystemParams { serial_number: Some("a\u{1f}".into()), ..base() }).is_err());
        assert!(create(&mut state, SubsystemParams { model_number: Some("m".repeat(41)), ..base() }).is_err());
        assert!(create(&mut state, SubsystemParams { min_cntlid: Some(0), ..base() }).is_err());
        assert!(create(&mut state, SubsystemParams { min_cntlid: Some(10), max_cntlid: Some(9), ..base() }).is_err());
        assert!(create(&mut state, SubsystemParams { max_cntlid: Some(0xFFF0), ..base() }).is_err());
        assert!(create(&mut state, base()).is_ok());
        assert_eq!(create(&mut state, base()), Err(TargetError::SubsystemExists(NQN.into())));
        let s = state.subsystem(NQN).unwrap();
        assert_eq!((s.serial_number.as_str(), s.model_number.as_str()), (DEFAULT_SERIAL_NUMBER, DEFAULT_MODEL_NUMBER));
        assert_eq!((s.min_cntlid, s.max_cntlid, s.max_namespaces), (1, 0xFFEF, 32));
        assert!(state.delete_subsystem("nqn.2016-06.io.spdk:none").is_err());
        assert!(state.delete_subsystem(DISCOVERY_NQN).is_err());
        assert!(state.delete_subsystem(NQN).is_ok());
    }

    #[test]
    fn nqn_validation_accepts_spdk_forms_and_rejects_others() {
        for good in [
            NQN,
            "nqn.2016-06.io.spdk:cnode1",
            DISCOVERY_NQN,
            "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555",
        ] {
            assert_eq!(validate_nqn(good), Ok(()), "{good}");
        }
        let long = format!("nqn.2016-06.io.spdk:{}", "x".repeat(210));
        for bad in [
            "",
            "nqn.",
            "nqn.2016-06.io.spdk",
            "nqn.2016-06.io.spdk:",
            "nqn.16-06.io.spdk:a",
            "nqn.2016-06.1o.spdk:a",
            "nqn.2014-08.org.nvmexpress:uuid:1111",
            long.as_str(),
        ] {
            assert!(validate_nqn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listener_needs_its_transport_and_is_unique_per_subsystem() {
        let mut state = TargetState::new();
        state.create_subsystem(SubsystemParams { nqn: NQN.into(), ..Default::default() }).unwrap();
        let addr = tcp("127.0.0.2", "4420");
        assert_eq!(state.add_listener(NQN, addr.clone()), Err(TargetError::TransportNotFound("TCP")));
        state.create_transport(TrType::Tcp, TargetOptions::default()).unwrap();
        assert!(state.create_transport(TrType::Tcp, TargetOptions::default()).is_err());
        assert!(!state.listener_in_use(&addr));
        state.add_listener(NQN, addr.clone()).unwrap();
        assert!(state.listener_in_use(&addr));
        assert!(matches!(state.add_listener(NQN, addr.clone()), Err(TargetError::ListenerExists { .. })));
        assert!(state.add_listener(NQN, tcp("127.0.0.2", "0")).is_err());
        state.remove_listener(NQN, &addr).unwrap();
        assert!(!state.listener_in_use(&addr));
        assert!(matches!(state.remove_listener(NQN, &addr), Err(TargetError::ListenerNotFound { .. })));
    }

    #[test]
    fn host_allowed_follows_allow_any_host_and_the_host_list() {
        let mut state = TargetState::new();
        state.create_subsystem(SubsystemParams { nqn: NQN.into(), ..Default::default() }).unwrap();
        let host = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
        assert!(!state.host_allowed(NQN, host));
        state.add_host(NQN, host).unwrap();
        assert!(state.host_allowed(NQN, host));
        assert!(!state.host_allowed(NQN, "nqn.2014-08.org.example:other"));
        state.set_allow_any_host(NQN, true).unwrap();
        assert!(state.host_allowed(NQN, "nqn.2014-08.org.example:other"));
        assert!(state.host_allowed(DISCOVERY_NQN, host));
        assert!(!state.host_allowed("nqn.2016-06.io.spdk:none", host));
    }

    #[test]
    fn bdev_names_and_uuids_are_unique_and_malloc_names_are_generated() {
        let mut state = TargetState::new();
        let a = state.bdev_malloc_create(None, 8, 512, None).unwrap();
        assert_eq!(a.name(), "Malloc0");
        let uuid = a.uuid();
        assert_eq!(
            state.bdev_malloc_create(Some("Malloc1"), 8, 512, Some(uuid)).err().map(|e| e.rpc_code()),
            Some(-17)
        );
        assert_eq!(state.bdev_null_create("Malloc0", 8, 512, None).err().map(|e| e.rpc_code()), Some(-17));
        assert_eq!(state.bdev_malloc_create(None, 8, 512, None).unwrap().name(), "Malloc1");
        assert_eq!(state.bdev_null_delete("Malloc0").err().map(|e| e.rpc_code()), Some(-19));
        assert_eq!(state.get_bdevs_json(Some("nope")).err().map(|e| e.rpc_code()), Some(-19));
        assert_eq!(state.get_bdevs_json(Some(&format_uuid(&uuid))).unwrap()[0]["name"], "Malloc0");
    }
}
