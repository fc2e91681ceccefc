//! Admin queue commands of one controller: Property Get/Set (CC/CSTS),
//! Identify, Get Log Page, Set/Get Features, Keep Alive, Asynchronous Event
//! Request and Abort.
//!
//! [`AdminQueue`] is the admin queue's own state and lives on the reactor
//! that owns the queue; nothing here runs per IO, so the configuration lock
//! may be taken (discovery log page).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use engine::{TargetCommand, TargetQpair, TrType};
use protocol::features::aen_config;
use protocol::features::{
    feature_capabilities, features_fid, fid, get_features_select, set_features_save, tmpsel, AsyncEvent, ErrorRecovery,
    FeatureSelect, NumberOfQueues, TemperatureThreshold, ThresholdType, HOST_ID_EXHID,
};
use protocol::identify::{
    cns, cntrltype, csi, encode_active_ns_list, encode_ns_id_descriptors, identify_cns, identify_csi,
    IdentifyControllerNvm, ACTIVE_NS_LIST_MAX, IDENTIFY_DATA_BYTES,
};
use protocol::log::{
    cmd_effects, encode_ana_log, lid, log_page_csi, smart_data_units, smart_power_on_hours, AnaGroupDescriptor,
    CommandsSupportedAndEffects, GetLogPage, SmartLog, ANA_LSP_RGO,
};
use protocol::opcode::{admin, fctype, io};
use protocol::property::{offset as prop, property_size_bytes, Cap, Cc, Csts, ShutdownNotification, ShutdownStatus};
use protocol::property::{Vs, CAP_CSS_NVM};
use protocol::status::{command_specific, generic};
use protocol::{IdentifyController, IdentifyNamespace, LbaFormat, NsIdDescriptor, Status};

use crate::config::TargetState;
use crate::controller::{lock, pending_event, Controller, ControllerKind, NamespaceTable, AERL};
use crate::discovery::encode_discovery_page;

/// CAP.TO we report, in 500 ms units: enabling is immediate here, so this
/// only bounds how long a host waits for a controller that is gone (5 s).
const CAP_TIMEOUT_500MS_UNITS: u8 = 10;
/// Error log page entries (ELPE is 0's based): all entries read as zero.
const ERROR_LOG_ENTRIES: usize = 128;
/// Firmware revision reported in Identify Controller.
const FIRMWARE_REVISION: &str = env!("CARGO_PKG_VERSION");
/// Smallest memory page size (CAP.MPSMIN = 0): MDTS is in these units.
const MPSMIN_BYTES: u32 = 4096;
/// Outstanding AERs a controller holds.
const AER_SLOTS: usize = AERL as usize + 1;
/// Command specific status Feature Not Namespace Specific (NVMe Base 2.0c §5.27, Set Features).
const FEATURE_NOT_NAMESPACE_SPECIFIC: u8 = 0x0F;
/// Default over temperature threshold of the Composite Temperature, kelvin. With
/// WCTEMP 0 the default is ours to pick (NVMe Base 2.0c §5.27.1.3); FFFFh, the
/// spec's default for sensors, is never reached: the gateway has no sensor
/// (Composite Temperature reads 0) and never raises a temperature warning.
const DEFAULT_OVER_TEMPERATURE_K: u16 = 0xFFFF;
/// Available Spare and its threshold in the SMART log (percent): the
/// gateway has no media of its own that wears, so no spare is used up.
const AVAILABLE_SPARE_PERCENT: u8 = 100;
/// Available Spare Threshold (percent); Available Spare never falls below it.
const AVAILABLE_SPARE_THRESHOLD_PERCENT: u8 = 10;

/// What the reactor does with a command after the admin queue looked at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminOutcome {
    /// Complete now.
    Complete {
        /// Status.
        status: Status,
        /// Completion dword 0.
        dw0: u32,
        /// Completion dword 1 (the upper half of an 8-byte property).
        dw1: u32,
        /// Bytes of the data buffer to send to the host.
        data_len: u32,
    },
    /// Held (an AER): completed later.
    Deferred,
}

impl AdminOutcome {
    fn status(status: Status) -> Self {
        AdminOutcome::Complete { status, dw0: 0, dw1: 0, data_len: 0 }
    }
    fn ok() -> Self {
        Self::status(Status::SUCCESS)
    }
    fn ok_dw0(dw0: u32) -> Self {
        AdminOutcome::Complete { status: Status::SUCCESS, dw0, dw1: 0, data_len: 0 }
    }
    fn ok_data(data_len: u32) -> Self {
        AdminOutcome::Complete { status: Status::SUCCESS, dw0: 0, dw1: 0, data_len }
    }
    fn invalid_field() -> Self {
        Self::status(Status::generic(generic::INVALID_FIELD).with_dnr())
    }
    fn invalid_namespace() -> Self {
        Self::status(Status::generic(generic::INVALID_NAMESPACE).with_dnr())
    }
    fn invalid_opcode() -> Self {
        Self::status(Status::generic(generic::INVALID_OPCODE).with_dnr())
    }
    fn sequence_error() -> Self {
        Self::status(Status::generic(generic::COMMAND_SEQUENCE_ERROR).with_dnr())
    }
}

/// Context an admin command may need beyond its controller.
pub(crate) struct AdminEnv<'a> {
    /// The configuration (locked only by commands that need it).
    pub(crate) state: &'a Mutex<TargetState>,
    /// Discovery log generation counter.
    pub(crate) discovery_genctr: u64,
    /// Time of this reactor turn.
    pub(crate) now_ns: u64,
}

/// An AER the controller holds.
#[derive(Debug, Clone, Copy)]
struct HeldAer {
    slot: u16,
    cid: u16,
}

/// The admin queue's state: registers, features, held AERs.
#[derive(Debug)]
pub(crate) struct AdminQueue {
    pub(crate) ctrl: Arc<Controller>,
    cc: Cc,
    csts: Csts,
    aers: [Option<HeldAer>; AER_SLOTS],
    async_event_config: u32,
    arbitration: u32,
    power_management: u32,
    interrupt_coalescing: u32,
    /// Reused buffer for log pages.
    scratch: Vec<u8>,
    /// The listener's ANA change count the host was last told of (AEN) or read (log page).
    ana_seen_chgcnt: u64,
    /// An ANA change notice was sent and the host has not read the ANA log
    /// since: further changes raise no notice until it does (NVMe Base 2.0c §5.27.1.1).
    ana_notice_masked: bool,
    /// Temperature Threshold (FID 04h): the Composite Temperature's over
    /// threshold as the host set it, kelvin.
    over_temperature_k: u16,
    /// Error Recovery (FID 05h) TLER set for every namespace (NSID FFFFFFFFh or 0).
    tler_all: u16,
    /// TLER set for one namespace, overriding `tler_all` (namespace-specific feature).
    tler_ns: BTreeMap<u32, u16>,
}

impl AdminQueue {
    pub(crate) fn new(ctrl: Arc<Controller>) -> Self {
        let ana_seen_chgcnt = ctrl.ana.change_count();
        AdminQueue {
            ana_seen_chgcnt,
            ana_notice_masked: false,
            ctrl,
            cc: Cc::default(),
            csts: Csts::default(),
            aers: [None; AER_SLOTS],
            async_event_config: 0,
            arbitration: 0,
            power_management: 0,
            interrupt_coalescing: 0,
            scratch: Vec::new(),
            over_temperature_k: DEFAULT_OVER_TEMPERATURE_K,
            tler_all: 0,
            tler_ns: BTreeMap::new(),
        }
    }

    /// Executes one admin command.
    pub(crate) fn execute<Q: TargetQpair>(
        &mut self,
        q: &mut Q,
        cmd: &TargetCommand,
        env: &AdminEnv<'_>,
    ) -> AdminOutcome {
        let sqe = &cmd.sqe;
        // Any admin command counts as a keep-alive (TP8000 traffic-based keep alive, host side
        // of it is optional; the target accepting it is always safe).
        self.ctrl.keep_alive(env.now_ns);
        if sqe.is_fabrics() {
            return self.fabrics(q, cmd);
        }
        // Before CC.EN = 1 only fabrics commands are allowed (NVMe-oF 1.1a §3.5).
        if !self.cc.en || !self.csts.rdy {
            return AdminOutcome::sequence_error();
        }
        let discovery = self.ctrl.kind == ControllerKind::Discovery;
        match sqe.opc {
            admin::IDENTIFY => self.identify(q, cmd),
            admin::GET_LOG_PAGE => self.get_log_page(q, cmd, env),
            admin::SET_FEATURES => self.set_features(cmd, env.now_ns),
            admin::GET_FEATURES => self.get_features(q, cmd),
            admin::KEEP_ALIVE => AdminOutcome::ok(),
            admin::ASYNC_EVENT_REQUEST => match self.aers.iter_mut().find(|a| a.is_none()) {
                Some(free) => {
                    *free = Some(HeldAer { slot: cmd.slot, cid: sqe.cid });
                    AdminOutcome::Deferred
                }
                None => AdminOutcome::status(Status::command_specific(command_specific::AER_LIMIT_EXCEEDED)),
            },
            // Nothing is ever in flight long enough to abort: "command not aborted" (dw0 bit 0).
            admin::ABORT if !discovery => AdminOutcome::ok_dw0(1),
            _ => AdminOutcome::invalid_opcode(),
        }
    }

    fn fabrics<Q: TargetQpair>(&mut self, q: &mut Q, cmd: &TargetCommand) -> AdminOutcome {
        let sqe = &cmd.sqe;
        match sqe.fctype() {
            fctype::PROPERTY_GET => {
                let Some(size) = property_size_bytes(sqe.property_offset()) else {
                    return AdminOutcome::invalid_field();
                };
                if (size == 8) != sqe.property_size8() {
                    return AdminOutcome::invalid_field();
                }
                let value = match sqe.property_offset() {
                    prop::CAP => self.cap().to_u64(),
                    prop::VS => u64::from(Vs::V1_3.to_u32()),
                    prop::CC => u64::from(self.cc.to_u32()),
                    prop::CSTS => u64::from(self.csts.to_u32()),
                    // NSSR reads as 0 when NVM subsystem reset is not supported.
                    _ => 0,
                };
                AdminOutcome::Complete {
                    status: Status::SUCCESS,
                    dw0: value as u32,
                    dw1: (value >> 32) as u32,
                    data_len: 0,
                }
            }
            fctype::PROPERTY_SET => {
                if sqe.property_offset() != prop::CC || sqe.property_size8() {
                    // CAP, VS and CSTS are read-only; NSSR is not supported (CAP.NSSRS = 0).
                    return AdminOutcome::invalid_field();
                }
                self.set_cc(q, Cc::from_u32(sqe.property_value() as u32));
                AdminOutcome::ok()
            }
            // A second Connect on a connected queue.
            fctype::CONNECT => AdminOutcome::sequence_error(),
            // Disconnect deletes IO queues only (NVMe-oF 1.1a §3.3.2).
            fctype::DISCONNECT => AdminOutcome::invalid_field(),
            _ => AdminOutcome::invalid_opcode(),
        }
    }

    fn cap(&self) -> Cap {
        Cap {
            mqes: self.ctrl.opts.max_queue_depth.saturating_sub(1),
            cqr: true,
            ams: 0,
            to: CAP_TIMEOUT_500MS_UNITS,
            dstrd: 0,
            nssrs: false,
            css: CAP_CSS_NVM,
            bps: false,
            mpsmin: 0,
            mpsmax: 0,
        }
    }

    /// A write to CC: EN 0 → 1 makes the controller ready at once; EN 1 → 0
    /// resets it (IO queues and AERs go); SHN completes shutdown at once.
    fn set_cc<Q: TargetQpair>(&mut self, q: &mut Q, new: Cc) {
        let old = self.cc;
        if new.en && !old.en {
            self.csts.rdy = true;
            self.ctrl.enable();
        } else if !new.en && old.en {
            self.csts = Csts::default();
            self.ctrl.reset();
            self.retire_aers(q);
        }
        if new.shn != ShutdownNotification::None && old.shn == ShutdownNotification::None {
            // Nothing is cached here: shutdown is complete as soon as it is asked for.
            self.csts.shst = ShutdownStatus::Complete;
            self.retire_aers(q);
        } else if new.shn == ShutdownNotification::None && !new.en {
            self.csts.shst = ShutdownStatus::Normal;
        }
        self.cc = new;
    }

    fn identify<Q: TargetQpair>(&mut self, q: &mut Q, cmd: &TargetCommand) -> AdminOutcome {
        let sqe = &cmd.sqe;
        let c = identify_cns(sqe);
        if self.ctrl.kind == ControllerKind::Discovery && c != cns::CONTROLLER {
            return AdminOutcome::invalid_field();
        }
        let page: [u8; IDENTIFY_DATA_BYTES] = match c {
            cns::CONTROLLER => self.identify_controller().to_bytes(),
            cns::NAMESPACE => {
                if sqe.nsid == 0 || sqe.nsid == u32::MAX || sqe.nsid > self.ctrl.identity.max_namespaces {
                    return AdminOutcome::invalid_namespace();
                }
                let (table, _) = self.ctrl.ns_table();
                // An inactive NSID within range reads as all zeroes (NVMe Base 2.0c §5.17.2.1).
                match table.get(sqe.nsid) {
                    Some(_) => identify_namespace(&table, sqe.nsid, self.ctrl.identity.ana_reporting).to_bytes(),
                    None => [0u8; IDENTIFY_DATA_BYTES],
                }
            }
            cns::ACTIVE_NS_LIST => {
                if sqe.nsid >= 0xFFFF_FFFE {
                    return AdminOutcome::invalid_namespace();
                }
                let (table, _) = self.ctrl.ns_table();
                let mut ids = [0u32; ACTIVE_NS_LIST_MAX];
                let mut n = 0;
                for ns in table.iter().filter(|ns| ns.nsid > sqe.nsid).take(ACTIVE_NS_LIST_MAX) {
                    ids[n] = ns.nsid;
                    n += 1;
                }
                match encode_active_ns_list(&ids[..n]) {
                    Ok(p) => p,
                    Err(_) => return AdminOutcome::status(Status::generic(generic::INTERNAL_ERROR)),
                }
            }
            cns::NS_ID_DESCRIPTOR_LIST => {
                let (table, _) = self.ctrl.ns_table();
                let Some(ns) = table.get(sqe.nsid) else {
                    return AdminOutcome::invalid_namespace();
                };
                let mut descs = [NsIdDescriptor::Csi(0); 3];
                let mut n = 0;
                if ns.nguid != [0; 16] {
                    descs[n] = NsIdDescriptor::Nguid(ns.nguid);
                    n += 1;
                }
                if ns.uuid != [0; 16] {
                    descs[n] = NsIdDescriptor::Uuid(ns.uuid);
                    n += 1;
                }
                // The NVM command set, for hosts that look for a CSI descriptor.
                descs[n] = NsIdDescriptor::Csi(0);
                n += 1;
                match encode_ns_id_descriptors(&descs[..n]) {
                    Ok(p) => p,
                    Err(_) => return AdminOutcome::status(Status::generic(generic::INTERNAL_ERROR)),
                }
            }
            cns::IO_COMMAND_SET_CONTROLLER => {
                // The NVM command set is the only one (CAP.CSS bit 0; NVMe Base 2.0c §5.17.2.5).
                if identify_csi(sqe) != csi::NVM {
                    return AdminOutcome::invalid_field();
                }
                identify_controller_nvm().to_bytes()
            }
            _ => return AdminOutcome::invalid_field(),
        };
        AdminOutcome::ok_data(copy_out(q.data_mut(cmd.slot), &page, 0))
    }

    /// Identify Controller for this controller (NVMe Base 2.0c Figure 275, NVMe-oF 1.1a §4.1).
    pub(crate) fn identify_controller(&self) -> IdentifyController {
        let ctrl = &self.ctrl;
        let opts = &ctrl.opts;
        let discovery = ctrl.kind == ControllerKind::Discovery;
        let mut c = IdentifyController::zeroed();
        // Config validation keeps these within their fields; a failure leaves the field blank.
        let _ = c.set_sn(&ctrl.identity.serial_number);
        let _ = c.set_mn(&ctrl.identity.model_number);
        let _ = c.set_fr(FIRMWARE_REVISION.get(..8).unwrap_or(FIRMWARE_REVISION));
        let _ = c.set_subnqn(&ctrl.subnqn);
        // Multi-port and multi-controller subsystem (bits 0, 1); ANA reporting (bit 3).
        c.cmic = if discovery { 0 } else { 0b011 | if ctrl.identity.ana_reporting { 0b1000 } else { 0 } };
        c.mdts = mdts(opts.max_io_size);
        c.cntlid = ctrl.cntlid;
        c.ver = Vs::V1_3.to_u32();
        c.oaes = if discovery {
            0
        } else {
            // Namespace attribute notices; ANA change notices when ANA is reported.
            (1 << 8) | if ctrl.identity.ana_reporting { 1 << 11 } else { 0 }
        };
        // 128-bit host identifier supported (required over fabrics).
        c.ctratt = 1;
        c.cntrltype = if discovery { cntrltype::DISCOVERY } else { cntrltype::IO };
        c.aerl = AERL;
        // Extended data for Get Log Page (NUMDU, LPO) (bit 2); an IO controller serves the
        // Commands Supported and Effects log (bit 1, NVMe Base 2.0c §5.17.2.1). Bit 0 stays 0:
        // the SMART log is per controller only.
        c.lpa = (1 << 2) | if discovery { 0 } else { 1 << 1 };
        c.elpe = (ERROR_LOG_ENTRIES - 1) as u8;
        c.kas = 1;
        if ctrl.identity.ana_reporting && !discovery {
            // Optimized, non-optimized and inaccessible states reported (bits 0..2); ANAGRPID does not
            // change while a namespace is attached (bit 6).
            c.anacap = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 6);
            c.anatt = crate::ana::ANATT_SECONDS;
            c.anagrpmax = ctrl.ana.groups();
            c.nanagrpid = ctrl.ana.groups();
        }
        c.sqes = 0x66;
        c.cqes = 0x44;
        c.maxcmd = opts.max_queue_depth;
        c.nn = if discovery { 0 } else { ctrl.identity.max_namespaces };
        if c.cmic & (1 << 3) != 0 {
            // With ANA reporting MNAN must be non-zero and at most NN (NVMe Base 2.0c §5.17.2.1);
            // Linux refuses the controller otherwise ("Invalid MNAN value 0").
            c.mnan = c.nn;
        }
        // Dataset Management (bit 2), Write Zeroes (bit 3).
        c.oncs = (1 << 2) | (1 << 3);
        // Volatile write cache present (an RBD backend caches); broadcast flush not supported (10b).
        c.vwc = if discovery { 0 } else { 0b101 };
        // SGLs supported, no alignment (bits 1:0 = 01b); keyed SGL data block for RDMA (bit 2);
        // SGL offset / in-capsule data (bit 20).
        c.sgls = 1 | if opts_keyed(ctrl) { 1 << 2 } else { 0 } | (1 << 20);
        c.ioccsz = (64 + opts.in_capsule_data_size) / 16;
        c.iorcsz = 1;
        c.icdoff = 0;
        c.fcatt = 0;
        c.msdbd = 1;
        c
    }

    fn get_log_page<Q: TargetQpair>(&mut self, q: &mut Q, cmd: &TargetCommand, env: &AdminEnv<'_>) -> AdminOutcome {
        let glp = GetLogPage::from_sqe(&cmd.sqe);
        if glp.offset_bytes % 4 != 0 {
            return AdminOutcome::invalid_field();
        }
        let discovery = self.ctrl.kind == ControllerKind::Discovery;
        let mut page = std::mem::take(&mut self.scratch);
        page.clear();
        match glp.lid {
            lid::DISCOVERY if discovery => {
                let state = lock(env.state);
                encode_discovery_page(&state, &self.ctrl.hostnqn, env.discovery_genctr, &mut page);
            }
            lid::ERROR if !discovery => page.resize(ERROR_LOG_ENTRIES * 64, 0),
            lid::SMART if !discovery => {
                // Controller scope only (LPA bit 0 = 0): another NSID is an invalid field (§5.16.1.3).
                if cmd.sqe.nsid != 0 && cmd.sqe.nsid != u32::MAX {
                    self.scratch = page;
                    return AdminOutcome::invalid_field();
                }
                page.extend_from_slice(&self.smart_log(env.now_ns).to_bytes());
            }
            lid::COMMANDS_SUPPORTED_AND_EFFECTS if !discovery => {
                if log_page_csi(&cmd.sqe) != csi::NVM {
                    self.scratch = page;
                    return AdminOutcome::invalid_field();
                }
                page.extend_from_slice(&commands_supported_and_effects().to_bytes());
            }
            lid::CHANGED_NS_LIST if !discovery => {
                let changed = self.ctrl.take_changed_nsids(!glp.rae);
                page.resize(IDENTIFY_DATA_BYTES, 0);
                if changed.len() > ACTIVE_NS_LIST_MAX {
                    // More changes than the list holds: the first entry is FFFFFFFFh.
                    page[..4].copy_from_slice(&u32::MAX.to_le_bytes());
                } else {
                    for (chunk, nsid) in page.chunks_exact_mut(4).zip(&changed) {
                        chunk.copy_from_slice(&nsid.to_le_bytes());
                    }
                }
            }
            lid::ANA if !discovery && self.ctrl.identity.ana_reporting => {
                let (table, _) = self.ctrl.ns_table();
                let rgo = glp.lsp & ANA_LSP_RGO != 0;
                let ana = &self.ctrl.ana;
                // The count first: a change racing with this read shows up as a newer count next time.
                let chgcnt = ana.change_count();
                let mut ids: Vec<u32> = table.iter().map(|ns| ns.anagrpid).collect();
                ids.sort_unstable();
                ids.dedup();
                // One descriptor per group holding an active namespace, NSIDs ascending (RGO: none).
                let groups: Vec<AnaGroupDescriptor> = ids
                    .iter()
                    .map(|&g| AnaGroupDescriptor {
                        anagrpid: g,
                        chgcnt: ana.group_change_count(g),
                        state: ana.state(g),
                        nsids: if rgo {
                            Vec::new()
                        } else {
                            table.iter().filter(|ns| ns.anagrpid == g).map(|ns| ns.nsid).collect()
                        },
                    })
                    .collect();
                if !glp.rae {
                    // Reading the log (without Retain Asynchronous Event) unmasks the ANA change notice.
                    self.ana_notice_masked = false;
                    self.ana_seen_chgcnt = chgcnt;
                }
                if encode_ana_log(chgcnt, &groups, &mut page).is_err() {
                    self.scratch = page;
                    return AdminOutcome::status(Status::generic(generic::INTERNAL_ERROR));
                }
            }
            _ => {
                self.scratch = page;
                return AdminOutcome::status(Status::command_specific(command_specific::INVALID_LOG_PAGE).with_dnr());
            }
        }
        if glp.offset_bytes > page.len() as u64 {
            self.scratch = page;
            return AdminOutcome::invalid_field();
        }
        let buf = q.data_mut(cmd.slot);
        let want = usize::try_from(glp.len_bytes()).unwrap_or(usize::MAX).min(buf.len());
        let n = copy_out(&mut buf[..want], &page, glp.offset_bytes as usize);
        self.scratch = page;
        AdminOutcome::ok_data(n)
    }

    fn set_features(&mut self, cmd: &TargetCommand, now_ns: u64) -> AdminOutcome {
        let sqe = &cmd.sqe;
        let f = features_fid(sqe);
        if set_features_save(sqe) {
            return AdminOutcome::status(Status::command_specific(command_specific::FEATURE_NOT_SAVEABLE).with_dnr());
        }
        match f {
            fid::NUMBER_OF_QUEUES => {
                // 0's based 65535 is reserved in a request.
                if sqe.cdw11 & 0xFFFF == 0xFFFF || sqe.cdw11 >> 16 == 0xFFFF {
                    return AdminOutcome::invalid_field();
                }
                if self.ctrl.kind == ControllerKind::Discovery {
                    return AdminOutcome::invalid_field();
                }
                let req = NumberOfQueues::from_dword(sqe.cdw11);
                match self.ctrl.grant_io_queues(req.nsq.min(req.ncq)) {
                    Some(g) => AdminOutcome::ok_dw0(NumberOfQueues { nsq: u32::from(g), ncq: u32::from(g) }.to_dword()),
                    None => AdminOutcome::sequence_error(),
                }
            }
            fid::KEEP_ALIVE_TIMER => {
                self.ctrl.set_kato_ms(sqe.cdw11, now_ns);
                AdminOutcome::ok()
            }
            fid::ASYNC_EVENT_CONFIG => {
                self.async_event_config = sqe.cdw11;
                AdminOutcome::ok()
            }
            fid::ARBITRATION => {
                self.arbitration = sqe.cdw11;
                AdminOutcome::ok()
            }
            fid::POWER_MANAGEMENT => {
                // One power state (NPSS = 0).
                if sqe.cdw11 & 0x1F != 0 {
                    return AdminOutcome::invalid_field();
                }
                self.power_management = sqe.cdw11;
                AdminOutcome::ok()
            }
            fid::INTERRUPT_COALESCING => {
                self.interrupt_coalescing = sqe.cdw11;
                AdminOutcome::ok()
            }
            // The host identifier came with Connect (NVMe-oF 1.1a §3.3.1) and does not change
            // while the controller exists.
            fid::HOST_IDENTIFIER => AdminOutcome::sequence_error(),
            fid::TEMPERATURE_THRESHOLD if self.ctrl.kind == ControllerKind::Io => self.set_temperature_threshold(sqe),
            fid::ERROR_RECOVERY if self.ctrl.kind == ControllerKind::Io => self.set_error_recovery(sqe),
            _ => AdminOutcome::invalid_field(),
        }
    }

    /// Set Features Temperature Threshold (NVMe Base 2.0c §5.27.1.3). The
    /// only threshold that exists is the Composite Temperature's over
    /// threshold: no temperature sensor is implemented, and the under
    /// threshold of the Composite Temperature exists only with a non-zero WCTEMP.
    fn set_temperature_threshold(&mut self, sqe: &protocol::Sqe) -> AdminOutcome {
        if sqe.nsid != 0 && sqe.nsid != u32::MAX {
            // A controller-wide feature.
            return AdminOutcome::status(Status::command_specific(FEATURE_NOT_NAMESPACE_SPECIFIC).with_dnr());
        }
        let t = TemperatureThreshold::from_dword(sqe.cdw11);
        match (t.tmpsel, t.thsel) {
            (tmpsel::COMPOSITE | tmpsel::ALL, ThresholdType::Over) => {
                self.over_temperature_k = t.tmpth;
                AdminOutcome::ok()
            }
            // Every implemented under threshold (there is none) set: nothing to do.
            (tmpsel::ALL, ThresholdType::Under) => AdminOutcome::ok(),
            // Reserved TMPSEL or THSEL, a sensor that is not implemented, or the Composite
            // Temperature's under threshold (not implemented with WCTEMP 0): Invalid Field.
            _ => AdminOutcome::invalid_field(),
        }
    }

    /// Set Features Error Recovery (NVMe Base 2.0c §5.27.1.4): TLER is
    /// accepted and kept (the gateway retries nothing, so every limit holds);
    /// DULBE needs NSFEAT bit 2 (DAE), which our namespaces do not report.
    fn set_error_recovery(&mut self, sqe: &protocol::Sqe) -> AdminOutcome {
        let e = ErrorRecovery::from_dword(sqe.cdw11);
        if e.dulbe {
            return AdminOutcome::invalid_field();
        }
        if sqe.nsid == 0 || sqe.nsid == u32::MAX {
            self.tler_all = e.tler;
            self.tler_ns.clear();
            return AdminOutcome::ok();
        }
        if self.ctrl.ns_table().0.get(sqe.nsid).is_none() {
            return AdminOutcome::invalid_namespace();
        }
        self.tler_ns.insert(sqe.nsid, e.tler);
        AdminOutcome::ok()
    }

    /// SMART / Health Information (NVMe Base 2.0c §5.16.1.3) of this controller at `now_ns`.
    fn smart_log(&self, now_ns: u64) -> SmartLog {
        let t = self.ctrl.io_counters.totals();
        let mut smart = SmartLog::zeroed();
        // No spare below threshold, no temperature, nothing degraded or read-only: 0.
        smart.critical_warning = 0;
        // No temperature sensor: Composite Temperature is not measured (0, as SPDK's and Linux's targets).
        smart.set_composite_temperature_k(0);
        smart.available_spare = AVAILABLE_SPARE_PERCENT;
        smart.available_spare_threshold = AVAILABLE_SPARE_THRESHOLD_PERCENT;
        smart.data_units_read = smart_data_units(t.read_bytes);
        smart.data_units_written = smart_data_units(t.write_bytes);
        smart.host_read_commands = u128::from(t.read_commands);
        smart.host_write_commands = u128::from(t.write_commands);
        // The gateway clock starts with the gateway: power-on time is the time since it started.
        smart.power_on_hours = smart_power_on_hours(now_ns);
        smart
    }

    fn get_features<Q: TargetQpair>(&mut self, q: &mut Q, cmd: &TargetCommand) -> AdminOutcome {
        let sqe = &cmd.sqe;
        let f = features_fid(sqe);
        let value = match f {
            fid::NUMBER_OF_QUEUES => {
                let g = u32::from(self.ctrl.io_queues_granted().max(1));
                NumberOfQueues { nsq: g, ncq: g }.to_dword()
            }
            fid::KEEP_ALIVE_TIMER => self.ctrl.kato_ms(),
            fid::ASYNC_EVENT_CONFIG => self.async_event_config,
            fid::ARBITRATION => self.arbitration,
            fid::POWER_MANAGEMENT => self.power_management,
            fid::INTERRUPT_COALESCING => self.interrupt_coalescing,
            fid::HOST_IDENTIFIER => {
                if sqe.cdw11 & HOST_ID_EXHID == 0 {
                    // Only the 128-bit form exists over fabrics.
                    return AdminOutcome::invalid_field();
                }
                0
            }
            fid::TEMPERATURE_THRESHOLD | fid::ERROR_RECOVERY if self.ctrl.kind == ControllerKind::Io => {
                return self.get_threshold_or_recovery(sqe, f);
            }
            _ => return AdminOutcome::invalid_field(),
        };
        match get_features_select(sqe) {
            // Nothing is saveable: saved and default read as the current value's defaults
            // would, and we keep current = what the host set.
            FeatureSelect::Current | FeatureSelect::Default | FeatureSelect::Saved => {}
            // Changeable (bit 2), not saveable, not namespace specific.
            FeatureSelect::SupportedCapabilities => return AdminOutcome::ok_dw0(1 << 2),
            FeatureSelect::Reserved(_) => return AdminOutcome::invalid_field(),
        }
        if f == fid::HOST_IDENTIFIER {
            let hostid = self.ctrl.hostid;
            return AdminOutcome::ok_data(copy_out(q.data_mut(cmd.slot), &hostid, 0));
        }
        AdminOutcome::ok_dw0(value)
    }

    /// Get Features Temperature Threshold (04h) and Error Recovery (05h):
    /// current, default and saved (= default: nothing is saveable) values,
    /// and their capabilities.
    fn get_threshold_or_recovery(&self, sqe: &protocol::Sqe, f: u8) -> AdminOutcome {
        let sel = get_features_select(sqe);
        if let FeatureSelect::Reserved(_) = sel {
            return AdminOutcome::invalid_field();
        }
        let current = sel == FeatureSelect::Current;
        if f == fid::TEMPERATURE_THRESHOLD {
            if sel == FeatureSelect::SupportedCapabilities {
                return AdminOutcome::ok_dw0(feature_capabilities::CHANGEABLE);
            }
            let t = TemperatureThreshold::from_dword(sqe.cdw11);
            // Only the Composite Temperature's over threshold exists (see set_temperature_threshold).
            if t.tmpsel != tmpsel::COMPOSITE || t.thsel != ThresholdType::Over {
                return AdminOutcome::invalid_field();
            }
            let k = if current { self.over_temperature_k } else { DEFAULT_OVER_TEMPERATURE_K };
            return AdminOutcome::ok_dw0(TemperatureThreshold { tmpth: k, ..t }.to_dword());
        }
        if sel == FeatureSelect::SupportedCapabilities {
            return AdminOutcome::ok_dw0(feature_capabilities::CHANGEABLE | feature_capabilities::NAMESPACE_SPECIFIC);
        }
        if sqe.nsid != 0 && sqe.nsid != u32::MAX && self.ctrl.ns_table().0.get(sqe.nsid).is_none() {
            return AdminOutcome::invalid_namespace();
        }
        let tler = match current {
            true => self.tler_ns.get(&sqe.nsid).copied().unwrap_or(self.tler_all),
            false => 0,
        };
        AdminOutcome::ok_dw0(ErrorRecovery { tler, dulbe: false }.to_dword())
    }

    /// Completes held AERs with the events the controller has pending (and
    /// the host enabled). Returns how many completed.
    pub(crate) fn deliver_events<Q: TargetQpair>(&mut self, q: &mut Q, sqhd: u16) -> usize {
        let mut done = self.deliver_ana_change(q, sqhd);
        if !self.ctrl.has_pending_events() || self.aers.iter().all(Option::is_none) {
            return done;
        }
        let mut events = self.ctrl.take_pending_events();
        if events & pending_event::NS_ATTRIBUTE_CHANGED != 0 {
            if self.async_event_config & aen_config::NS_ATTRIBUTE_NOTICES == 0 {
                // Not enabled by the host: the change is still in the changed NS list log.
                events &= !pending_event::NS_ATTRIBUTE_CHANGED;
            } else if let Some(aer) = self.aers.iter_mut().find_map(Option::take) {
                let dw0 = AsyncEvent::ns_attribute_changed().to_dw0();
                complete(q, aer.slot, aer.cid, Status::SUCCESS, dw0, sqhd);
                events &= !pending_event::NS_ATTRIBUTE_CHANGED;
                done += 1;
            }
        }
        if events != 0 {
            self.ctrl.restore_pending_events(events);
        }
        done
    }

    /// Sends the ANA change notice (Notice / ANA Change / log 0Ch) when the
    /// listener's ANA change count moved since the host last heard of it,
    /// the notice is not masked, the host enabled it (AEC bit 11) and an AER
    /// is held. One atomic load per admin queue turn when nothing changed.
    fn deliver_ana_change<Q: TargetQpair>(&mut self, q: &mut Q, sqhd: u16) -> usize {
        if !self.ctrl.identity.ana_reporting || self.ana_notice_masked {
            return 0;
        }
        let count = self.ctrl.ana.change_count();
        if count == self.ana_seen_chgcnt {
            return 0;
        }
        if self.async_event_config & aen_config::ANA_CHANGE_NOTICES == 0 {
            // Not enabled: the change is in the ANA log for whoever reads it; no late notice for it.
            self.ana_seen_chgcnt = count;
            return 0;
        }
        let Some(aer) = self.aers.iter_mut().find_map(Option::take) else {
            return 0;
        };
        complete(q, aer.slot, aer.cid, Status::SUCCESS, AsyncEvent::ana_change().to_dw0(), sqhd);
        self.ana_seen_chgcnt = count;
        self.ana_notice_masked = true;
        1
    }

    /// Drops every held AER without a completion (CC.SHN set or CC.EN
    /// cleared). The host has already forgotten them: SPDK's host drops its
    /// AERs locally before the shutdown and reuses their CIDs (for the very
    /// Property Set that shuts down), so answering them would answer a CID
    /// twice. SPDK's target and the Linux target send nothing for them either.
    fn retire_aers<Q: TargetQpair>(&mut self, q: &mut Q) {
        for aer in self.aers.iter_mut().filter_map(Option::take) {
            q.retire(aer.slot);
        }
    }

    /// Completes every held AER with Aborted SQ Deletion: the controller is
    /// destroyed (keep-alive timeout, teardown) while the connection works.
    pub(crate) fn abort_aers<Q: TargetQpair>(&mut self, q: &mut Q, sqhd: u16) {
        for aer in self.aers.iter_mut().filter_map(Option::take) {
            complete(q, aer.slot, aer.cid, Status::generic(generic::ABORTED_SQ_DELETION), 0, sqhd);
        }
    }
}

/// Completes a command on the admin queue.
pub(crate) fn complete<Q: TargetQpair>(q: &mut Q, slot: u16, cid: u16, status: Status, dw0: u32, sqhd: u16) {
    let cqe = protocol::Cqe { sqhd, sqid: 0, ..protocol::Cqe::new(cid, status, dw0) };
    q.complete(slot, &cqe, 0);
}

fn opts_keyed(ctrl: &Controller) -> bool {
    ctrl.listen.trtype == TrType::Rdma
}

/// MDTS for a largest transfer of `max_io_size` bytes, in units of MPSMIN as
/// a power of two, rounded down so the host never exceeds `max_io_size`.
/// (A limit of one page cannot be expressed: 0 means "no limit".)
pub(crate) fn mdts(max_io_size: u32) -> u8 {
    let pages = (max_io_size / MPSMIN_BYTES).max(1);
    pages.ilog2() as u8
}

/// The NVM command set's I/O command set specific Identify Controller
/// structure (CNS 06h, CSI 00h): every limit 0, "no limit reported", which is
/// what the IO path does. Verify and Write Uncorrectable are not supported
/// (ONCS bits 7 and 1 clear), so VSL and WUSL have nothing to limit; Write
/// Zeroes takes any NLB its 16-bit field can carry (one `fallocate`), so
/// WZSL is 0 (Linux then caps it at MDTS itself); Dataset Management takes
/// its full 256 ranges (DMRL cannot say 256: 0), each of any 32-bit length
/// (DMRSL 0) and any total (DMSL 0).
pub(crate) fn identify_controller_nvm() -> IdentifyControllerNvm {
    IdentifyControllerNvm { vsl: 0, wzsl: 0, wusl: 0, dmrl: 0, dmrsl: 0, dmsl: 0, ..IdentifyControllerNvm::zeroed() }
}

/// The Commands Supported and Effects log of an IO controller (LID 05h, CSI
/// 00h; NVMe Base 2.0c §5.16.1.6): exactly the opcodes `AdminQueue::execute`
/// and `io_cmd::execute` carry out. No admin command changes logical blocks,
/// namespaces or controller capabilities, and none needs exclusive
/// submission (CSE 000b); Write, Write Zeroes and Dataset Management
/// (deallocate: blocks read as zeroes after) change logical block content.
/// Fabrics commands (7Fh) are not listed: the page has no entries for them.
pub(crate) fn commands_supported_and_effects() -> CommandsSupportedAndEffects {
    use cmd_effects::{CSUPP, LBCC};
    let mut log = CommandsSupportedAndEffects::zeroed();
    for opc in [
        admin::GET_LOG_PAGE,
        admin::IDENTIFY,
        admin::ABORT,
        admin::SET_FEATURES,
        admin::GET_FEATURES,
        admin::ASYNC_EVENT_REQUEST,
        admin::KEEP_ALIVE,
    ] {
        log.acs[usize::from(opc)] = CSUPP;
    }
    log.iocs[usize::from(io::FLUSH)] = CSUPP;
    log.iocs[usize::from(io::READ)] = CSUPP;
    log.iocs[usize::from(io::WRITE)] = CSUPP | LBCC;
    log.iocs[usize::from(io::WRITE_ZEROES)] = CSUPP | LBCC;
    log.iocs[usize::from(io::DATASET_MANAGEMENT)] = CSUPP | LBCC;
    log
}

/// Identify Namespace for an active namespace.
pub(crate) fn identify_namespace(table: &NamespaceTable, nsid: u32, ana_reporting: bool) -> IdentifyNamespace {
    let mut ns = IdentifyNamespace::zeroed();
    let Some(e) = table.get(nsid) else {
        return ns;
    };
    ns.nsze = e.num_blocks;
    ns.ncap = e.num_blocks;
    ns.nuse = e.num_blocks;
    ns.nlbaf = 0;
    ns.flbas = 0;
    ns.lbaf[0] = LbaFormat { ms: 0, lbads: e.block_size.trailing_zeros() as u8, rp: 0 };
    // Shared namespace: several controllers (both gateways) reach it.
    ns.nmic = 1;
    // Deallocated blocks read as zeroes (DLFEAT bits 2:0 = 001b).
    ns.dlfeat = 1;
    ns.nguid = e.nguid;
    ns.eui64 = [0; 8];
    if ana_reporting {
        ns.anagrpid = e.anagrpid;
    }
    ns
}

/// Copies `page[offset..]` into `buf`, zero-filling what the page does not
/// cover; returns the bytes written (all of `buf`).
pub(crate) fn copy_out(buf: &mut [u8], page: &[u8], offset: usize) -> u32 {
    let src = page.get(offset..).unwrap_or(&[]);
    let n = src.len().min(buf.len());
    buf[..n].copy_from_slice(&src[..n]);
    buf[n..].fill(0);
    buf.len() as u32
}
