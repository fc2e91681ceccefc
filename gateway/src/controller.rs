//! Controllers: what a Fabrics Connect on an admin queue creates, and what
//! IO queue Connects attach to.
//!
//! A [`Controller`] is shared (`Arc`) by its admin queue and its IO queues,
//! which may live on different reactors. The fields the IO path reads are
//! atomics (the `dead` flag, the namespace-table generation); everything
//! behind a `Mutex` here is touched only on connect, disconnect, keep-alive
//! expiry and configuration changes, never per IO. The admin queue's own
//! state (CC/CSTS, AERs, features) is not here: it lives with the admin queue
//! on one reactor (see `admin_cmd`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use engine::{TargetOptions, TrType};
use protocol::fabrics::{connect_invalid_param_dw0, CNTLID_DYNAMIC};
use protocol::status::{command_specific, generic};
use protocol::{ConnectData, Sqe, Status, WireError};
use serde_json::{json, Value};

use crate::ana::AnaStates;
use crate::bdev::{format_uuid, Bdev};
use crate::config::{ListenAddress, Subsystem, SubsystemType, TargetState};
use crate::smart::IoCounters;

/// Keep-alive granularity we report in Identify Controller KAS, in ms (KAS = 1:
/// 100 ms units). Deadlines are checked on every reactor turn, so a finer unit
/// costs nothing; KATO from the host is rounded up to a multiple of it.
pub const KEEP_ALIVE_GRANULARITY_MS: u32 = 100;

/// Keep-alive timeout applied to a discovery controller whose host sent KATO 0,
/// so that abandoned discovery connections are reaped (SPDK does the same; the
/// host is told KATO 0, since it never has to send Keep Alive for it).
pub const DISCOVERY_DEFAULT_KATO_MS: u32 = 120_000;

/// Asynchronous Event Request Limit reported in Identify Controller (0's
/// based): a controller holds up to `AERL + 1` outstanding AERs.
pub const AERL: u8 = 3;

/// Byte offsets of Connect SQE fields, for the IPO of an invalid-parameters
/// response (NVMe-oF 1.1a Figure 19).
pub mod connect_sqe_offset {
    /// RECFMT, bytes 41:40.
    pub const RECFMT: u16 = 40;
    /// QID, bytes 43:42.
    pub const QID: u16 = 42;
    /// SQSIZE, bytes 45:44.
    pub const SQSIZE: u16 = 44;
    /// KATO, bytes 51:48.
    pub const KATO: u16 = 48;
}

/// Pending asynchronous events (bits of [`Controller::pending_events`]).
pub mod pending_event {
    /// A namespace was added, removed or changed (Notice, NS attribute changed).
    pub const NS_ATTRIBUTE_CHANGED: u32 = 1 << 0;
}

/// IO controller or discovery controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerKind {
    /// An IO controller of an NVM subsystem (CNTRLTYPE 1).
    Io,
    /// A discovery controller (CNTRLTYPE 2): admin queue only.
    Discovery,
}

/// One namespace as the IO path sees it: everything a Read or Write needs,
/// copied out of the configuration at snapshot time.
#[derive(Debug, Clone)]
pub struct NamespaceEntry {
    /// Namespace ID.
    pub nsid: u32,
    /// The bdev exported.
    pub bdev: Arc<Bdev>,
    /// Block size in bytes.
    pub block_size: u32,
    /// Size in blocks (NSZE).
    pub num_blocks: u64,
    /// Namespace UUID.
    pub uuid: [u8; 16],
    /// Namespace NGUID.
    pub nguid: [u8; 16],
    /// ANA group ID.
    pub anagrpid: u32,
}

/// The namespaces of a subsystem, indexed by NSID: an immutable snapshot an
/// IO queue holds through an `Arc` and swaps when the generation changes.
#[derive(Debug, Clone, Default)]
pub struct NamespaceTable {
    /// Slot `nsid - 1`; `None` for an inactive NSID.
    by_nsid: Vec<Option<NamespaceEntry>>,
}

impl NamespaceTable {
    /// The snapshot of `subsystem`'s namespaces.
    pub fn from_subsystem(subsystem: &Subsystem) -> Self {
        let len = subsystem.namespaces.iter().map(|ns| ns.nsid as usize).max().unwrap_or(0);
        let mut by_nsid = vec![None; len];
        for ns in &subsystem.namespaces {
            if let Some(slot) = (ns.nsid as usize).checked_sub(1).and_then(|i| by_nsid.get_mut(i)) {
                *slot = Some(NamespaceEntry {
                    nsid: ns.nsid,
                    bdev: ns.bdev.clone(),
                    block_size: ns.bdev.block_size(),
                    num_blocks: ns.bdev.num_blocks(),
                    uuid: ns.uuid,
                    nguid: ns.nguid,
                    anagrpid: ns.anagrpid,
                });
            }
        }
        NamespaceTable { by_nsid }
    }

    /// True when this snapshot is what [`NamespaceTable::from_subsystem`]
    /// would build now (same NSIDs, bdevs and identifiers); allocates nothing,
    /// so the periodic configuration scan can run on an IO core.
    pub fn matches(&self, subsystem: &Subsystem) -> bool {
        self.iter().count() == subsystem.namespaces.len()
            && subsystem.namespaces.iter().all(|ns| {
                self.get(ns.nsid)
                    .is_some_and(|e| Arc::ptr_eq(&e.bdev, &ns.bdev) && e.uuid == ns.uuid && e.nguid == ns.nguid)
            })
    }

    /// The active namespace `nsid`.
    #[inline]
    pub fn get(&self, nsid: u32) -> Option<&NamespaceEntry> {
        (nsid as usize).checked_sub(1).and_then(|i| self.by_nsid.get(i)).and_then(Option::as_ref)
    }

    /// Active namespaces in NSID order.
    pub fn iter(&self) -> impl Iterator<Item = &NamespaceEntry> {
        self.by_nsid.iter().flatten()
    }

    /// NSIDs whose namespace differs between `self` and `other` (added,
    /// removed, other bdev or other size), in increasing order.
    pub fn changed_nsids(&self, other: &NamespaceTable) -> Vec<u32> {
        let len = self.by_nsid.len().max(other.by_nsid.len());
        (1..=len as u32)
            .filter(|&nsid| match (self.get(nsid), other.get(nsid)) {
                (None, None) => false,
                (Some(a), Some(b)) => {
                    !Arc::ptr_eq(&a.bdev, &b.bdev) || a.num_blocks != b.num_blocks || a.uuid != b.uuid
                }
                _ => true,
            })
            .collect()
    }
}

/// What the controller reports about itself, fixed when it is created.
#[derive(Debug, Clone)]
pub struct ControllerIdentity {
    /// Serial number (Identify SN).
    pub serial_number: String,
    /// Model number (Identify MN).
    pub model_number: String,
    /// Highest NSID (Identify NN).
    pub max_namespaces: u32,
    /// ANA reporting enabled for the subsystem.
    pub ana_reporting: bool,
}

/// A controller: created by Connect on an admin queue, shared by its queues.
#[derive(Debug)]
pub struct Controller {
    /// Controller ID.
    pub cntlid: u16,
    /// Subsystem NQN.
    pub subnqn: String,
    /// Host NQN from Connect.
    pub hostnqn: String,
    /// Host identifier from Connect.
    pub hostid: [u8; 16],
    /// IO or discovery.
    pub kind: ControllerKind,
    /// Address the admin queue came in on.
    pub listen: ListenAddress,
    /// Options of the transport the admin queue came in on.
    pub opts: TargetOptions,
    /// What Identify Controller reports.
    pub identity: ControllerIdentity,
    /// The ANA states of the listener the admin queue came in on (what this
    /// controller reports and enforces).
    pub ana: Arc<AnaStates>,
    /// KATO as the host set it (Connect or Set Features), rounded up to the granularity.
    kato_ms: AtomicU32,
    /// Keep-alive deadline actually enforced (KATO, or the discovery default).
    expiry_ms: AtomicU32,
    /// Time of the last Keep Alive (or any admin command), on the gateway clock.
    last_keep_alive_ns: AtomicU64,
    /// Set once the controller is destroyed; every queue of it checks this on
    /// every reactor turn and tears itself down.
    dead: AtomicBool,
    /// CC.EN = 1 and CSTS.RDY = 1: IO queues may connect.
    enabled: AtomicBool,
    /// Bumped on controller reset (CC.EN 1 → 0): IO queues connected under an
    /// older epoch tear themselves down.
    reset_epoch: AtomicU32,
    /// IO queues granted by Set Features Number of Queues.
    io_queues_granted: AtomicU16,
    /// IO queue IDs connected (connect and disconnect only).
    io_qids: Mutex<Vec<u16>>,
    /// Bumped whenever `ns_table` is replaced.
    ns_generation: AtomicU64,
    /// The current namespace snapshot.
    ns_table: Mutex<Arc<NamespaceTable>>,
    /// NSIDs changed since the host last read the Changed Namespace List log.
    changed_nsids: Mutex<Vec<u32>>,
    /// Events waiting for an AER ([`pending_event`] bits).
    pending_events: AtomicU32,
    /// Read/Write counts for the SMART / health log, one shard per reactor core.
    pub(crate) io_counters: IoCounters,
}

impl Controller {
    /// Rounds a KATO up to the keep-alive granularity.
    pub fn round_kato_ms(kato_ms: u32) -> u32 {
        kato_ms.div_ceil(KEEP_ALIVE_GRANULARITY_MS).saturating_mul(KEEP_ALIVE_GRANULARITY_MS)
    }

    /// KATO in ms as the host set it (0 = disabled).
    pub fn kato_ms(&self) -> u32 {
        self.kato_ms.load(Ordering::Relaxed)
    }

    /// Sets KATO (Set Features Keep Alive Timer); returns the value in force.
    pub fn set_kato_ms(&self, kato_ms: u32, now_ns: u64) -> u32 {
        let kato_ms = Self::round_kato_ms(kato_ms);
        self.kato_ms.store(kato_ms, Ordering::Relaxed);
        self.expiry_ms.store(self.effective_expiry_ms(kato_ms), Ordering::Relaxed);
        self.keep_alive(now_ns);
        kato_ms
    }

    fn effective_expiry_ms(&self, kato_ms: u32) -> u32 {
        match (self.kind, kato_ms) {
            (ControllerKind::Discovery, 0) => DISCOVERY_DEFAULT_KATO_MS,
            (_, k) => k,
        }
    }

    /// Records a keep-alive (a Keep Alive command or, per TP8000, any admin command).
    pub fn keep_alive(&self, now_ns: u64) {
        self.last_keep_alive_ns.fetch_max(now_ns, Ordering::AcqRel);
    }

    /// True when the keep-alive timer ran out at `now_ns`.
    #[inline]
    pub fn keep_alive_expired(&self, now_ns: u64) -> bool {
        let expiry_ms = self.expiry_ms.load(Ordering::Relaxed);
        expiry_ms != 0
            && now_ns.saturating_sub(self.last_keep_alive_ns.load(Ordering::Acquire)) > u64::from(expiry_ms) * 1_000_000
    }

    /// When the keep-alive timer runs out if no keep-alive comes first
    /// (`None`: no timer). [`Controller::keep_alive_expired`] holds after it.
    pub fn keep_alive_deadline_ns(&self) -> Option<u64> {
        let expiry_ms = self.expiry_ms.load(Ordering::Relaxed);
        (expiry_ms != 0).then(|| {
            self.last_keep_alive_ns
                .load(Ordering::Acquire)
                .saturating_add(u64::from(expiry_ms) * 1_000_000)
                .saturating_add(1)
        })
    }

    /// True once the controller is destroyed.
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Marks the controller destroyed; returns false if it already was.
    pub fn mark_dead(&self) -> bool {
        !self.dead.swap(true, Ordering::AcqRel)
    }

    /// True while CC.EN = 1.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// CC.EN 0 → 1.
    pub(crate) fn enable(&self) {
        self.enabled.store(true, Ordering::Release);
    }

    /// CC.EN 1 → 0 (controller reset): IO queues go away.
    pub(crate) fn reset(&self) {
        self.enabled.store(false, Ordering::Release);
        self.reset_epoch.fetch_add(1, Ordering::AcqRel);
        lock(&self.io_qids).clear();
    }

    /// The current reset epoch.
    #[inline]
    pub fn reset_epoch(&self) -> u32 {
        self.reset_epoch.load(Ordering::Acquire)
    }

    /// IO queues granted.
    pub fn io_queues_granted(&self) -> u16 {
        self.io_queues_granted.load(Ordering::Relaxed)
    }

    /// Grants `requested` IO queues, capped by the transport's queue pairs per
    /// controller (minus the admin queue). Fails (returns None) once IO
    /// queues are connected: the count may not change under them.
    pub(crate) fn grant_io_queues(&self, requested: u32) -> Option<u16> {
        let qids = lock(&self.io_qids);
        if !qids.is_empty() {
            return None;
        }
        let max = self.opts.max_qpairs_per_ctrlr.saturating_sub(1).max(1);
        let granted = u16::try_from(requested).unwrap_or(u16::MAX).clamp(1, max);
        self.io_queues_granted.store(granted, Ordering::Relaxed);
        Some(granted)
    }

    /// Number of IO queues connected.
    pub fn num_io_queues(&self) -> usize {
        lock(&self.io_qids).len()
    }

    fn claim_io_qid(&self, qid: u16) -> bool {
        let mut qids = lock(&self.io_qids);
        if qid == 0 || qid > self.io_queues_granted() || qids.contains(&qid) {
            return false;
        }
        qids.push(qid);
        true
    }

    /// Releases an IO queue ID when its queue goes away.
    pub(crate) fn release_io_qid(&self, qid: u16, epoch: u32) {
        // A queue from before a reset no longer owns its ID (the reset cleared the set).
        if epoch == self.reset_epoch() {
            lock(&self.io_qids).retain(|&q| q != qid);
        }
    }

    /// The namespace-table generation: an IO queue compares it with the one it
    /// holds, on every turn, without a lock.
    #[inline]
    pub fn ns_generation(&self) -> u64 {
        self.ns_generation.load(Ordering::Acquire)
    }

    /// The current namespace table and its generation (takes a lock: call
    /// only when the generation changed, or on the admin path).
    pub fn ns_table(&self) -> (Arc<NamespaceTable>, u64) {
        let table = lock(&self.ns_table);
        (table.clone(), self.ns_generation())
    }

    /// Installs a new namespace table; records the changed NSIDs and raises
    /// the namespace-attribute event.
    /// True when the controller's namespace snapshot matches `subsystem`.
    pub(crate) fn ns_table_matches(&self, subsystem: &Subsystem) -> bool {
        lock(&self.ns_table).matches(subsystem)
    }

    pub(crate) fn replace_ns_table(&self, table: NamespaceTable) {
        let mut current = lock(&self.ns_table);
        let changed = current.changed_nsids(&table);
        if changed.is_empty() {
            return;
        }
        *current = Arc::new(table);
        self.ns_generation.fetch_add(1, Ordering::AcqRel);
        drop(current);
        let mut list = lock(&self.changed_nsids);
        for nsid in changed {
            if !list.contains(&nsid) {
                list.push(nsid);
            }
        }
        list.sort_unstable();
        self.pending_events.fetch_or(pending_event::NS_ATTRIBUTE_CHANGED, Ordering::AcqRel);
    }

    /// Takes the list of changed NSIDs (reading the log clears it).
    pub(crate) fn take_changed_nsids(&self, clear: bool) -> Vec<u32> {
        let mut list = lock(&self.changed_nsids);
        if clear {
            std::mem::take(&mut *list)
        } else {
            list.clone()
        }
    }

    /// Events waiting for an AER, without taking them.
    #[inline]
    pub(crate) fn has_pending_events(&self) -> bool {
        self.pending_events.load(Ordering::Relaxed) != 0
    }

    /// Takes the pending events.
    pub(crate) fn take_pending_events(&self) -> u32 {
        self.pending_events.swap(0, Ordering::AcqRel)
    }

    /// Puts back events that found no AER.
    pub(crate) fn restore_pending_events(&self, events: u32) {
        self.pending_events.fetch_or(events, Ordering::AcqRel);
    }

    /// A summary for `nvmf_subsystem_get_controllers`.
    pub fn info(&self) -> ControllerInfo {
        ControllerInfo {
            cntlid: self.cntlid,
            subnqn: self.subnqn.clone(),
            hostnqn: self.hostnqn.clone(),
            hostid: self.hostid,
            kind: self.kind,
            num_io_qpairs: self.num_io_queues(),
            kato_ms: self.kato_ms(),
            listen: self.listen.clone(),
        }
    }
}

/// A controller as `nvmf_subsystem_get_controllers` shows it.
#[derive(Debug, Clone)]
pub struct ControllerInfo {
    /// Controller ID.
    pub cntlid: u16,
    /// Subsystem NQN.
    pub subnqn: String,
    /// Host NQN.
    pub hostnqn: String,
    /// Host identifier.
    pub hostid: [u8; 16],
    /// IO or discovery.
    pub kind: ControllerKind,
    /// IO queues connected.
    pub num_io_qpairs: usize,
    /// KATO in ms.
    pub kato_ms: u32,
    /// Address the admin queue came in on.
    pub listen: ListenAddress,
}

impl ControllerInfo {
    /// SPDK's `nvmf_subsystem_get_controllers` entry shape.
    pub fn to_json(&self) -> Value {
        json!({
            "cntlid": self.cntlid,
            "hostnqn": self.hostnqn,
            "hostid": format_uuid(&self.hostid),
            "num_io_qpairs": self.num_io_qpairs,
        })
    }
}

/// Every live controller, by subsystem and controller ID. Locked only on
/// connect, disconnect, keep-alive expiry and configuration scans.
#[derive(Debug, Default)]
pub struct ControllerRegistry {
    by_subsystem: Mutex<BTreeMap<String, BTreeMap<u16, Arc<Controller>>>>,
}

impl ControllerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The live controller `cntlid` of `subnqn`.
    pub fn get(&self, subnqn: &str, cntlid: u16) -> Option<Arc<Controller>> {
        lock(&self.by_subsystem).get(subnqn).and_then(|m| m.get(&cntlid)).filter(|c| !c.is_dead()).cloned()
    }

    /// Calls `f` on every controller (live or not), under the registry's
    /// lock: `f` must not call back into the registry. Allocates nothing.
    pub fn for_each(&self, mut f: impl FnMut(&Arc<Controller>)) {
        for m in lock(&self.by_subsystem).values() {
            m.values().for_each(&mut f);
        }
    }

    /// All live controllers (of `subnqn` when given).
    pub fn list(&self, subnqn: Option<&str>) -> Vec<Arc<Controller>> {
        let map = lock(&self.by_subsystem);
        map.iter()
            .filter(|(nqn, _)| subnqn.map_or(true, |want| want == nqn.as_str()))
            .flat_map(|(_, m)| m.values().cloned())
            .collect()
    }

    /// Destroys a controller: marks it dead (its queues on every core see
    /// that on their next turn) and forgets its ID. Returns false if it was
    /// already destroyed.
    pub fn destroy(&self, ctrl: &Controller) -> bool {
        let first = ctrl.mark_dead();
        let mut map = lock(&self.by_subsystem);
        if let Some(m) = map.get_mut(&ctrl.subnqn) {
            // Only remove the entry if it is this controller (an ID is reused only after removal).
            if m.get(&ctrl.cntlid).is_some_and(|c| core::ptr::eq(Arc::as_ptr(c), ctrl)) {
                m.remove(&ctrl.cntlid);
            }
            if m.is_empty() {
                map.remove(&ctrl.subnqn);
            }
        }
        first
    }

    /// Inserts a controller under the lowest ID in `[min, max]` that no live
    /// controller of the subsystem holds; `make` builds it for that ID.
    fn insert_dynamic(
        &self,
        subnqn: &str,
        min: u16,
        max: u16,
        make: impl FnOnce(u16) -> Controller,
    ) -> Option<Arc<Controller>> {
        let mut map = lock(&self.by_subsystem);
        let used = map.entry(subnqn.to_string()).or_default();
        let mut candidate = min;
        for (&id, _) in used.range(min..=max) {
            if id != candidate {
                break;
            }
            candidate = candidate.checked_add(1)?;
        }
        if candidate < min || candidate > max {
            if used.is_empty() {
                map.remove(subnqn);
            }
            return None;
        }
        let ctrl = Arc::new(make(candidate));
        used.insert(candidate, ctrl.clone());
        Some(ctrl)
    }
}

/// Locks a mutex, ignoring poisoning: the data under these locks stays
/// consistent across a panic (each critical section is one small update).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A refused Connect: the status and dword 0 of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectReject {
    /// Status to complete the Connect with.
    pub status: Status,
    /// Completion dword 0 (IATTR/IPO for Connect Invalid Parameters).
    pub dw0: u32,
}

impl ConnectReject {
    /// Connect Invalid Parameters; `in_data` says whether `offset` is into
    /// the connect data (IATTR = 1) or the SQE.
    pub fn invalid_param(in_data: bool, offset: u16) -> Self {
        ConnectReject {
            status: Status::command_specific(command_specific::CONNECT_INVALID_PARAMETERS).with_dnr(),
            dw0: connect_invalid_param_dw0(in_data, offset),
        }
    }

    /// Connect Invalid Host.
    pub fn invalid_host() -> Self {
        ConnectReject { status: Status::command_specific(command_specific::CONNECT_INVALID_HOST).with_dnr(), dw0: 0 }
    }

    fn status(status: Status) -> Self {
        ConnectReject { status, dw0: 0 }
    }
}

/// A successful Connect.
#[derive(Debug, Clone)]
pub enum Connected {
    /// A new controller on its admin queue.
    Admin(Arc<Controller>),
    /// IO queue `qid` of an existing controller.
    Io {
        /// The controller.
        ctrl: Arc<Controller>,
        /// Queue ID.
        qid: u16,
        /// The controller's reset epoch when the queue connected.
        epoch: u32,
    },
}

/// Where a queue pair came in, and with which transport options.
#[derive(Debug, Clone)]
pub struct QpairOrigin {
    /// The listen address that accepted it.
    pub listen: ListenAddress,
    /// The transport's options.
    pub opts: TargetOptions,
}

/// Runs the checks of a Fabrics Connect (NVMe-oF 1.1a §3.3.1) and creates or
/// finds the controller. `data` is the 1024-byte connect data.
pub fn connect(
    state: &Mutex<TargetState>,
    registry: &ControllerRegistry,
    sqe: &Sqe,
    data: &[u8],
    origin: &QpairOrigin,
    now_ns: u64,
) -> Result<Connected, ConnectReject> {
    if sqe.connect_recfmt() != 0 {
        return Err(ConnectReject::status(
            Status::command_specific(command_specific::CONNECT_INCOMPATIBLE_FORMAT).with_dnr(),
        ));
    }
    let cd = ConnectData::parse(data).map_err(|e| match e {
        WireError::Truncated { .. } => {
            ConnectReject::status(Status::generic(generic::DATA_SGL_LENGTH_INVALID).with_dnr())
        }
        other => ConnectReject::invalid_param(true, ConnectData::error_offset(&other)),
    })?;
    // Cannot fail after a successful parse; map to the field anyway rather than unwrap.
    let subnqn = cd.subnqn_str().map_err(|_| ConnectReject::invalid_param(true, ConnectData::SUBNQN_OFFSET))?;
    let hostnqn = cd.hostnqn_str().map_err(|_| ConnectReject::invalid_param(true, ConnectData::HOSTNQN_OFFSET))?;
    let qid = sqe.connect_qid();
    let sqsize = sqe.connect_sqsize();

    let state = lock(state);
    let subsystem = state.subsystem(subnqn).ok_or(ConnectReject::invalid_param(true, ConnectData::SUBNQN_OFFSET))?;
    let is_discovery = subsystem.subtype == SubsystemType::Discovery;
    if !is_discovery && !subsystem.listeners.contains(&origin.listen) {
        return Err(ConnectReject::invalid_host());
    }
    if !state.host_allowed(subnqn, hostnqn) {
        return Err(ConnectReject::invalid_host());
    }
    // SQSIZE is 0's based; 0 (a one-entry queue) is invalid (NVMe-oF 1.1a §3.3.1).
    if sqsize == 0 || u32::from(sqsize) >= u32::from(origin.opts.max_queue_depth) {
        return Err(ConnectReject::invalid_param(false, connect_sqe_offset::SQSIZE));
    }

    if qid == 0 {
        // Dynamic controller model only: the host must ask for any controller.
        if cd.cntlid != CNTLID_DYNAMIC {
            return Err(ConnectReject::invalid_param(true, ConnectData::CNTLID_OFFSET));
        }
        let kind = if is_discovery { ControllerKind::Discovery } else { ControllerKind::Io };
        let kato_ms = Controller::round_kato_ms(sqe.connect_kato_ms());
        let ns_table = NamespaceTable::from_subsystem(subsystem);
        let identity = ControllerIdentity {
            serial_number: subsystem.serial_number.clone(),
            model_number: subsystem.model_number.clone(),
            max_namespaces: subsystem.max_namespaces,
            ana_reporting: subsystem.ana_reporting,
        };
        let default_io_queues = origin.opts.max_qpairs_per_ctrlr.saturating_sub(1).max(1);
        // Discovery controllers and listeners without a record (none in practice) see no groups.
        let ana = subsystem.ana_states(&origin.listen).cloned().unwrap_or_else(|| Arc::new(AnaStates::new(0)));
        let make = |cntlid: u16| {
            let ctrl = Controller {
                cntlid,
                subnqn: subnqn.to_string(),
                hostnqn: hostnqn.to_string(),
                hostid: cd.hostid,
                kind,
                listen: origin.listen.clone(),
                opts: origin.opts.clone(),
                identity,
                ana,
                kato_ms: AtomicU32::new(kato_ms),
                expiry_ms: AtomicU32::new(0),
                last_keep_alive_ns: AtomicU64::new(now_ns),
                dead: AtomicBool::new(false),
                enabled: AtomicBool::new(false),
                reset_epoch: AtomicU32::new(0),
                io_queues_granted: AtomicU16::new(if is_discovery { 0 } else { default_io_queues }),
                io_qids: Mutex::new(Vec::new()),
                ns_generation: AtomicU64::new(0),
                ns_table: Mutex::new(Arc::new(ns_table)),
                changed_nsids: Mutex::new(Vec::new()),
                pending_events: AtomicU32::new(0),
                io_counters: IoCounters::new(),
            };
            ctrl.expiry_ms.store(ctrl.effective_expiry_ms(kato_ms), Ordering::Relaxed);
            ctrl
        };
        let ctrl = registry.insert_dynamic(subnqn, subsystem.min_cntlid, subsystem.max_cntlid, make).ok_or(
            // Every ID of the range is taken by a live controller; one may go away, so no DNR.
            ConnectReject::status(Status::command_specific(command_specific::CONNECT_CONTROLLER_BUSY)),
        )?;
        return Ok(Connected::Admin(ctrl));
    }

    let ctrl = registry.get(subnqn, cd.cntlid).ok_or(ConnectReject::invalid_param(true, ConnectData::CNTLID_OFFSET))?;
    if ctrl.hostnqn != hostnqn {
        return Err(ConnectReject::invalid_param(true, ConnectData::HOSTNQN_OFFSET));
    }
    if ctrl.hostid != cd.hostid {
        return Err(ConnectReject::invalid_param(true, ConnectData::HOSTID_OFFSET));
    }
    if ctrl.kind == ControllerKind::Discovery {
        return Err(ConnectReject::invalid_param(false, connect_sqe_offset::QID));
    }
    if !ctrl.is_enabled() {
        return Err(ConnectReject::status(Status::generic(generic::COMMAND_SEQUENCE_ERROR).with_dnr()));
    }
    let epoch = ctrl.reset_epoch();
    if !ctrl.claim_io_qid(qid) {
        return Err(ConnectReject::invalid_param(false, connect_sqe_offset::QID));
    }
    Ok(Connected::Io { ctrl, qid, epoch })
}

/// The transport type's wire value in a discovery log entry.
pub(crate) fn trtype_wire(trtype: TrType) -> u8 {
    match trtype {
        TrType::Tcp => protocol::log::trtype::TCP,
        TrType::Rdma => protocol::log::trtype::RDMA,
    }
}
