//! The admin queue of one controller: bring-up (Connect, CC.EN/CSTS.RDY,
//! Identify, Number of Queues, namespaces), then keep-alive and asynchronous
//! event requests.
//!
//! Bring-up is one explicit state machine: [`AdminQueue::step`] holds every
//! transition. One bring-up command is in flight at a time, always with
//! command ID [`INIT_CID`]; keep-alive and AERs use their own fixed IDs, so the
//! admin queue needs no slot allocator.

use protocol::sqe::connect_attr;
use protocol::{opcode, Cqe, Sqe};

use crate::buf::IoBuf;
use crate::host::connect_data;
use crate::host::identify;
use crate::host::identify::ControllerData;
use crate::host::registration::WakeRegistration;
use crate::transport::{ConnectProgress, HostQpair, TransportError, XferBuf};
use crate::wake::WakeSet;
use protocol::log::AnaState;

/// Command ID of the bring-up command in flight.
const INIT_CID: u16 = 0;
/// Command ID of the keep-alive.
const KEEP_ALIVE_CID: u16 = 1;
/// First command ID of the asynchronous event requests.
const FIRST_AER_CID: u16 = 2;
/// AERs kept outstanding at most (capped by the controller's AERL).
const MAX_AERS: u16 = 4;
/// Command ID of the Abort (one in flight at a time: ACL is at least 1, NVMe Base 2.0c §5.1).
const ABORT_CID: u16 = FIRST_AER_CID + MAX_AERS;
/// Command IDs that have a send time.
const TRACKED_CIDS: usize = ABORT_CID as usize + 1;
/// Admin queue entries; bring-up, keep-alive and AERs need far fewer.
pub(crate) const ADMIN_QUEUE_DEPTH: u16 = 32;

/// Property offsets (NVMe Base 2.0c §3.1.4).
const PROP_CAP: u32 = 0x00;
const PROP_VS: u32 = 0x08;
const PROP_CC: u32 = 0x14;
const PROP_CSTS: u32 = 0x1C;

/// Where bring-up stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminState {
    /// Transport connection being set up.
    TransportConnecting,
    /// Fabrics Connect in flight.
    Connecting,
    /// Property Get CAP in flight.
    ReadingCap,
    /// Property Get VS in flight.
    ReadingVersion,
    /// Property Set CC (EN=1) in flight.
    Enabling,
    /// Polling CSTS until RDY=1; a poll is in flight or due at `next_poll_ns`.
    WaitingReady { poll_in_flight: bool, next_poll_ns: u64 },
    /// Identify Controller in flight.
    IdentifyingController,
    /// Set Features Number of Queues in flight.
    SettingQueueCount,
    /// Identify Active Namespace ID list in flight.
    ListingNamespaces,
    /// Identify Namespace in flight for `active_nsids[index]`.
    IdentifyingNamespace { index: usize },
    /// Identify Namespace Identification Descriptors in flight for `active_nsids[index]`.
    ReadingNsDescriptors { index: usize },
    /// Set Features Asynchronous Event Configuration in flight (ANA change notices on).
    ConfiguringAsyncEvents,
    /// Get Log Page ANA in flight (controllers that report ANA).
    ReadingAnaLog,
    /// Up: IO queues may connect.
    Ready,
    /// Dead, with the reason.
    Failed(String),
}

/// What happened to the admin queue.
#[derive(Debug)]
pub(crate) enum AdminEvent {
    /// The transport connection is up.
    TransportReady,
    /// A bring-up command completed.
    InitDone(Cqe),
    /// Time passed.
    Tick,
}

/// What bring-up wants done next.
enum Next {
    Send(Sqe, DataPhase),
    Wait,
    Ready,
    Fail(String),
}

#[derive(Clone, Copy)]
enum DataPhase {
    None,
    ToController(usize),
    FromController(usize),
}

/// Options of a controller's admin queue.
#[derive(Debug, Clone)]
pub(crate) struct AdminOptions {
    pub(crate) io_queues_wanted: u16,
    pub(crate) keep_alive_timeout_ms: u32,
    pub(crate) bringup_timeout_ns: u64,
    /// An ANA log read or Abort unanswered this long fails the queue (0 = never).
    pub(crate) command_timeout_ns: u64,
}

impl AdminOptions {
    /// The admin queue's part of a controller's options.
    pub(crate) fn of(opts: &crate::host::options::ControllerOptions, io_queues_wanted: u16) -> Self {
        let command_timeout_ms = if opts.admin_timeout_ms > 0 { opts.admin_timeout_ms } else { opts.io_timeout_ms };
        AdminOptions {
            io_queues_wanted,
            keep_alive_timeout_ms: opts.keep_alive_timeout_ms,
            bringup_timeout_ns: opts.connect_timeout_ms * 1_000_000,
            command_timeout_ns: command_timeout_ms * 1_000_000,
        }
    }
}

/// The controller's answer to an Abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortAnswer {
    /// Submission queue of the command.
    pub(crate) sqid: u16,
    /// Its command ID.
    pub(crate) cid: u16,
    /// The controller aborted it (Dword 0 bit 0 clear); the command then
    /// completes with Command Abort Requested.
    pub(crate) aborted: bool,
}

/// One controller's admin queue.
pub(crate) struct AdminQueue<Q: HostQpair> {
    transport: Q,
    state: AdminState,
    opts: AdminOptions,
    data: IoBuf,
    deadline_ns: u64,
    cap: u64,
    controller: ControllerData,
    active_nsids: Vec<u32>,
    keep_alive_in_flight: bool,
    next_keep_alive_ns: u64,
    aers_outstanding: u16,
    /// Async events seen since attach (dword 0 of each AER completion).
    pub(crate) async_events: Vec<u32>,
    /// When the last keep-alive went out (for its response deadline).
    keep_alive_sent_ns: u64,
    /// When we last sent any admin command.
    last_send_ns: u64,
    /// Time of the current poll (sends are stamped with it).
    now_ns: u64,
    /// Send time per command ID in flight.
    sent_at_ns: [u64; TRACKED_CIDS],
    /// When the last completion arrived, and when the command it answered was sent.
    last_answer_ns: u64,
    last_answered_send_ns: u64,
    /// The queue died because the peer closed it.
    peer_closed: bool,
    /// ANA group states from the last ANA log read.
    ana_groups: Vec<(u32, AnaState)>,
    /// A fresh ANA log was read and not yet applied.
    ana_dirty: bool,
    /// An ANA log read is wanted (AEN, or asked by the supervisor).
    ana_log_wanted: bool,
    /// An ANA log read is on the wire (uses INIT_CID after bring-up).
    ana_log_in_flight: bool,
    /// The Abort on the wire: (SQID, CID) of the command it aborts.
    abort_in_flight: Option<(u16, u16)>,
    /// The last Abort's answer, for the supervisor.
    abort_answer: Option<AbortAnswer>,
    wake: WakeRegistration,
}

impl<Q: HostQpair> AdminQueue<Q> {
    pub(crate) fn new(
        transport: Q,
        opts: AdminOptions,
        subnqn: &str,
        hostnqn: &str,
        hostid: [u8; 16],
        now_ns: u64,
    ) -> Result<Self, String> {
        let mut data = IoBuf::new(4096);
        // Dynamic controller model: CNTLID FFFFh asks the target to pick one.
        connect_data::encode(data.as_mut_slice(), hostid, protocol::fabrics::CNTLID_DYNAMIC, subnqn, hostnqn)?;
        Ok(AdminQueue {
            transport,
            state: AdminState::TransportConnecting,
            deadline_ns: now_ns.saturating_add(opts.bringup_timeout_ns),
            opts,
            data,
            cap: 0,
            controller: ControllerData::default(),
            active_nsids: Vec::new(),
            keep_alive_in_flight: false,
            next_keep_alive_ns: 0,
            aers_outstanding: 0,
            async_events: Vec::new(),
            keep_alive_sent_ns: 0,
            last_send_ns: now_ns,
            now_ns,
            sent_at_ns: [0; TRACKED_CIDS],
            last_answer_ns: now_ns,
            last_answered_send_ns: 0,
            peer_closed: false,
            ana_groups: Vec::new(),
            ana_dirty: false,
            ana_log_wanted: false,
            ana_log_in_flight: false,
            abort_in_flight: None,
            abort_answer: None,
            wake: WakeRegistration::Pending,
        })
    }

    pub(crate) fn state(&self) -> &AdminState {
        &self.state
    }

    /// Puts the socket in the reactor's epoll set (once).
    pub(crate) fn register_wake(&mut self, set: &WakeSet) {
        self.wake.ensure(&self.transport, set);
    }

    /// When this queue next needs a turn without an event on its socket: the
    /// bring-up deadline and CSTS polls, the keep-alive to send or to give up
    /// on, an admin command's timeout (see [`crate::reactor::Poller::next_deadline_ns`]).
    pub(crate) fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        if matches!(self.state, AdminState::Failed(_)) {
            return None;
        }
        if !self.wake.wakes() || !self.transport.quiescent() || self.abort_answer.is_some() || self.ana_dirty {
            return Some(now_ns);
        }
        let deadline = match self.state {
            AdminState::Ready => {
                if self.ana_log_wanted && !self.ana_log_in_flight {
                    return Some(now_ns);
                }
                let keep_alive = (self.opts.keep_alive_timeout_ms > 0).then(|| {
                    let interval_ns = self.keep_alive_interval_ns();
                    if self.keep_alive_in_flight {
                        self.keep_alive_sent_ns.saturating_add(interval_ns)
                    } else {
                        self.next_keep_alive_ns
                    }
                });
                let limit_ns = self.opts.command_timeout_ns;
                let overdue_at =
                    |cid: u16| self.sent_at_ns[usize::from(cid)].saturating_add(limit_ns).saturating_add(1);
                let ana = (limit_ns > 0 && self.ana_log_in_flight).then(|| overdue_at(INIT_CID));
                let abort = (limit_ns > 0 && self.abort_in_flight.is_some()).then(|| overdue_at(ABORT_CID));
                [keep_alive, ana, abort].into_iter().flatten().min()
            }
            // The bring-up check is `now > deadline`.
            AdminState::WaitingReady { poll_in_flight: false, next_poll_ns } => {
                Some(next_poll_ns.min(self.deadline_ns.saturating_add(1)))
            }
            _ => Some(self.deadline_ns.saturating_add(1)),
        };
        deadline.map(|d| d.max(now_ns))
    }

    pub(crate) fn controller(&self) -> &ControllerData {
        &self.controller
    }

    /// From when on the gateway can certainly no longer execute anything of
    /// this association, once we stop sending (and abort the connection) now.
    ///
    /// The gateway restarts its keep-alive timer on every admin command it
    /// processes and reads no socket of an association whose timer ran out.
    /// Commands on one queue are processed in order, so every command sent
    /// before the last answered one was processed before that answer came: the
    /// timer then ran out by `last_answer + KATO`. A command sent after it (the
    /// keep-alive that timed out, say) may still be processed, at the latest
    /// just before that deadline, and restart the timer once more: `+ 2 KATO`.
    pub(crate) fn association_dead_at_ns(&self, kato_ns: u64) -> u64 {
        let unanswered = self.last_send_ns > self.last_answered_send_ns;
        let windows = if unanswered { 2 } else { 1 };
        self.last_answer_ns.saturating_add(kato_ns * windows)
    }

    /// Whether the queue failed because the peer closed the connection.
    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The state of ANA group `anagrpid` in the last ANA log read.
    pub(crate) fn ana_state_of_group(&self, anagrpid: u32) -> Option<AnaState> {
        self.ana_groups.iter().find(|(g, _)| *g == anagrpid).map(|(_, s)| *s)
    }

    /// A fresh ANA log waits to be applied.
    pub(crate) fn ana_dirty(&self) -> bool {
        self.ana_dirty
    }

    /// The supervisor applied the ANA log.
    pub(crate) fn mark_ana_applied(&mut self) {
        self.ana_dirty = false;
    }

    /// Asks for an ANA log read at the next chance.
    pub(crate) fn request_ana_log(&mut self) {
        if self.controller.ana_reporting {
            self.ana_log_wanted = true;
        }
    }

    /// Sends an Abort for command `cid` of submission queue `sqid` (NVMe Base
    /// 2.0c §5.1: SQID in CDW10 bits 15:0, CID in bits 31:16). False when the
    /// queue is not up or an Abort is already on the wire.
    pub(crate) fn send_abort(&mut self, sqid: u16, cid: u16, now_ns: u64) -> bool {
        if self.state != AdminState::Ready || self.abort_in_flight.is_some() {
            return false;
        }
        self.now_ns = now_ns;
        let sqe = Sqe { opc: opcode::admin::ABORT, cdw10: u32::from(sqid) | (u32::from(cid) << 16), ..Sqe::default() };
        self.send(sqe, ABORT_CID, DataPhase::None);
        self.abort_in_flight = Some((sqid, cid));
        if let Err(e) = self.transport.flush() {
            self.fail(format!("admin queue send: {e}"), &e);
        }
        true
    }

    /// Whether an Abort is on the wire.
    pub(crate) fn abort_in_flight(&self) -> bool {
        self.abort_in_flight.is_some()
    }

    /// The answer to the last Abort, once.
    pub(crate) fn take_abort_answer(&mut self) -> Option<AbortAnswer> {
        self.abort_answer.take()
    }

    /// The first command (ANA log read, Abort) that outlived the admin
    /// command timeout, if one did.
    fn overdue_command(&self, now_ns: u64) -> Option<&'static str> {
        let limit_ns = self.opts.command_timeout_ns;
        if limit_ns == 0 {
            return None;
        }
        let overdue = |cid: u16| now_ns.saturating_sub(self.sent_at_ns[usize::from(cid)]) > limit_ns;
        if self.ana_log_in_flight && overdue(INIT_CID) {
            return Some("Get Log Page (ANA) timed out");
        }
        if self.abort_in_flight.is_some() && overdue(ABORT_CID) {
            return Some("Abort timed out");
        }
        None
    }

    fn fail(&mut self, why: String, e: &TransportError) {
        self.peer_closed = matches!(e, TransportError::Closed);
        self.state = AdminState::Failed(why);
    }

    fn ana_log_sqe() -> Sqe {
        // Whole page in one 4 KiB read: NUMDL (0's based dwords) in CDW10 bits 31:16.
        let numd = (4096 / 4 - 1) as u32;
        Sqe {
            opc: opcode::admin::GET_LOG_PAGE,
            cdw10: u32::from(protocol::log::lid::ANA) | (numd << 16),
            ..Sqe::default()
        }
    }

    fn parse_ana_log(&mut self) -> Result<(), String> {
        let (_, groups) =
            protocol::log::parse_ana_log(self.data.as_slice()).map_err(|e| format!("ANA log page: {e}"))?;
        self.ana_groups.clear();
        self.ana_groups.extend(groups.iter().map(|g| (g.anagrpid, g.state)));
        self.ana_dirty = true;
        Ok(())
    }

    /// Every bring-up transition, in one place.
    fn step(&mut self, event: AdminEvent, now_ns: u64) -> Next {
        use AdminState as S;
        let (kind, cqe) = match event {
            AdminEvent::TransportReady => (Ev::TransportReady, None),
            AdminEvent::InitDone(cqe) => (Ev::Done, Some(cqe)),
            AdminEvent::Tick => (Ev::Tick, None),
        };
        if let Some(c) = &cqe {
            if !c.status().is_success() {
                return Next::Fail(format!("{:?} failed: {}", self.state, c.status()));
            }
        }
        if !matches!(self.state, S::Ready | S::Failed(_)) && now_ns > self.deadline_ns {
            return Next::Fail(format!("bring-up timed out in {:?}", self.state));
        }
        match (&self.state, kind) {
            (S::TransportConnecting, Ev::TransportReady) => {
                self.state = S::Connecting;
                let mut connect = Sqe::connect(0, ADMIN_QUEUE_DEPTH - 1, self.opts.keep_alive_timeout_ms);
                // The host counts its own free slots and never reads SQHD.
                connect.set_connect_cattr(connect_attr::DISABLE_SQ_FLOW_CONTROL);
                Next::Send(connect, DataPhase::ToController(connect_data::LEN))
            }
            (S::Connecting, Ev::Done) => {
                let c = cqe.unwrap_or_default();
                self.controller.cntlid = c.dw0 as u16;
                self.state = S::ReadingCap;
                Next::Send(Sqe::property_get(PROP_CAP, true), DataPhase::None)
            }
            (S::ReadingCap, Ev::Done) => {
                let c = cqe.unwrap_or_default();
                self.cap = u64::from(c.dw0) | (u64::from(c.dw1) << 32);
                // CAP.TO (bits 31:24) is the worst-case ready time in 500 ms units.
                let to_ns = ((self.cap >> 24) & 0xFF).max(1) * 500_000_000;
                self.deadline_ns = self.deadline_ns.max(now_ns.saturating_add(to_ns));
                self.state = S::ReadingVersion;
                Next::Send(Sqe::property_get(PROP_VS, false), DataPhase::None)
            }
            (S::ReadingVersion, Ev::Done) => {
                self.controller.version = cqe.unwrap_or_default().dw0;
                self.state = S::Enabling;
                // CC: EN=1, IOSQES=6 (64 B), IOCQES=4 (16 B), MPS=0 (4 KiB), CSS=NVM.
                let cc: u64 = 1 | (6 << 16) | (4 << 20);
                Next::Send(Sqe::property_set(PROP_CC, false, cc), DataPhase::None)
            }
            (S::Enabling, Ev::Done) => {
                self.state = S::WaitingReady { poll_in_flight: true, next_poll_ns: now_ns };
                Next::Send(Sqe::property_get(PROP_CSTS, false), DataPhase::None)
            }
            (S::WaitingReady { .. }, Ev::Done) => {
                let csts = cqe.unwrap_or_default().dw0;
                if csts & 0b10 != 0 {
                    return Next::Fail("controller fatal status (CSTS.CFS) during enable".into());
                }
                if csts & 1 == 1 {
                    self.state = S::IdentifyingController;
                    return Next::Send(identify::sqe(identify::CNS_CONTROLLER, 0), DataPhase::FromController(4096));
                }
                self.state = S::WaitingReady { poll_in_flight: false, next_poll_ns: now_ns + 1_000_000 };
                Next::Wait
            }
            (S::WaitingReady { poll_in_flight: false, next_poll_ns }, Ev::Tick) if now_ns >= *next_poll_ns => {
                self.state = S::WaitingReady { poll_in_flight: true, next_poll_ns: now_ns };
                Next::Send(Sqe::property_get(PROP_CSTS, false), DataPhase::None)
            }
            (S::IdentifyingController, Ev::Done) => {
                let cntlid = self.controller.cntlid;
                let version = self.controller.version;
                self.controller = match identify::parse_controller(self.data.as_slice()) {
                    Ok(c) => c,
                    Err(why) => return Next::Fail(why),
                };
                self.controller.cntlid = cntlid;
                self.controller.version = version;
                self.controller.mqes = (self.cap & 0xFFFF) as u16;
                self.state = S::SettingQueueCount;
                let n = u32::from(self.opts.io_queues_wanted.max(1) - 1);
                let sqe = Sqe { opc: opcode::admin::SET_FEATURES, cdw10: 0x07, cdw11: n | (n << 16), ..Sqe::default() };
                Next::Send(sqe, DataPhase::None)
            }
            (S::SettingQueueCount, Ev::Done) => {
                let dw0 = cqe.unwrap_or_default().dw0;
                // Granted counts, 0's based; the smaller of SQs and CQs bounds us.
                let granted = ((dw0 & 0xFFFF).min(dw0 >> 16) + 1) as u16;
                if granted < self.opts.io_queues_wanted {
                    return Next::Fail(format!(
                        "controller grants {granted} IO queues, {} reactors need one each",
                        self.opts.io_queues_wanted
                    ));
                }
                self.controller.io_queues_granted = granted;
                self.state = S::ListingNamespaces;
                Next::Send(identify::sqe(identify::CNS_ACTIVE_NS_LIST, 0), DataPhase::FromController(4096))
            }
            (S::ListingNamespaces, Ev::Done) => {
                self.active_nsids = match identify::parse_ns_list(self.data.as_slice()) {
                    Ok(list) => list,
                    Err(why) => return Next::Fail(why),
                };
                self.identify_next_namespace(0)
            }
            (S::IdentifyingNamespace { index }, Ev::Done) => {
                let index = *index;
                let nsid = self.active_nsids.get(index).copied().unwrap_or(0);
                match identify::parse_namespace(nsid, self.data.as_slice()) {
                    Ok(Some(ns)) => self.controller.namespaces.push(ns),
                    Ok(None) => return self.identify_next_namespace(index + 1),
                    Err(why) => return Next::Fail(why),
                }
                self.state = S::ReadingNsDescriptors { index };
                Next::Send(identify::sqe(identify::CNS_NS_DESCRIPTORS, nsid), DataPhase::FromController(4096))
            }
            (S::ReadingNsDescriptors { index }, Ev::Done) => {
                let index = *index;
                if let Some(ns) = self.controller.namespaces.last_mut() {
                    if let Err(why) = identify::apply_ns_descriptors(ns, self.data.as_slice()) {
                        return Next::Fail(why);
                    }
                }
                self.identify_next_namespace(index + 1)
            }
            (S::ConfiguringAsyncEvents, Ev::Done) => {
                self.state = S::ReadingAnaLog;
                Next::Send(Self::ana_log_sqe(), DataPhase::FromController(4096))
            }
            (S::ReadingAnaLog, Ev::Done) => match self.parse_ana_log() {
                Ok(()) => Next::Ready,
                Err(why) => Next::Fail(why),
            },
            (S::Ready | S::Failed(_), _) => Next::Wait,
            (_, Ev::Tick) => Next::Wait,
            (state, ev) => Next::Fail(format!("unexpected {ev:?} in {state:?}")),
        }
    }

    fn identify_next_namespace(&mut self, index: usize) -> Next {
        match self.active_nsids.get(index) {
            Some(&nsid) => {
                self.state = AdminState::IdentifyingNamespace { index };
                Next::Send(identify::sqe(identify::CNS_NAMESPACE, nsid), DataPhase::FromController(4096))
            }
            None if self.controller.ana_reporting => {
                // A controller sends ANA change notices only when asked (NVMe Base 2.0c §5.27.1.7, bit 11).
                self.state = AdminState::ConfiguringAsyncEvents;
                let sqe = Sqe { opc: opcode::admin::SET_FEATURES, cdw10: 0x0B, cdw11: 1 << 11, ..Sqe::default() };
                Next::Send(sqe, DataPhase::None)
            }
            None => Next::Ready,
        }
    }

    /// Drives bring-up, keep-alive and AERs. Returns work done.
    pub(crate) fn poll(&mut self, now_ns: u64) -> usize {
        self.now_ns = now_ns;
        let mut work = 0;
        let mut events: [Option<AdminEvent>; 1] = [None];
        match self.state {
            AdminState::Failed(_) => return 0,
            AdminState::TransportConnecting => match self.transport.poll_connect(now_ns) {
                Ok(ConnectProgress::Ready) => events[0] = Some(AdminEvent::TransportReady),
                Ok(ConnectProgress::Pending) => events[0] = Some(AdminEvent::Tick),
                Err(e) => {
                    self.fail(format!("connect: {e}"), &e);
                    return 1;
                }
            },
            _ => {
                let mut init_done = None;
                let mut ka_done = false;
                let mut aer_done: Option<Cqe> = None;
                let mut abort_done: Option<Cqe> = None;
                let sent_at_ns = &self.sent_at_ns;
                let mut answered_send_ns = None;
                let r = self.transport.poll(now_ns, |cqe: Cqe| {
                    if let Some(&t) = sent_at_ns.get(usize::from(cqe.cid)) {
                        answered_send_ns = Some(answered_send_ns.map_or(t, |a: u64| a.max(t)));
                    }
                    match cqe.cid {
                        INIT_CID => init_done = Some(cqe),
                        KEEP_ALIVE_CID => ka_done = true,
                        cid if (FIRST_AER_CID..FIRST_AER_CID + MAX_AERS).contains(&cid) => aer_done = Some(cqe),
                        ABORT_CID => abort_done = Some(cqe),
                        _ => {}
                    }
                });
                if let Some(t) = answered_send_ns {
                    self.last_answer_ns = now_ns;
                    self.last_answered_send_ns = self.last_answered_send_ns.max(t);
                }
                match r {
                    Ok(n) => work += n,
                    Err(e) => {
                        self.fail(format!("admin queue: {e}"), &e);
                        return 1;
                    }
                }
                if ka_done {
                    self.keep_alive_in_flight = false;
                }
                if let Some(cqe) = aer_done {
                    self.on_async_event(cqe);
                }
                if let (Some(cqe), Some((sqid, cid))) = (abort_done, self.abort_in_flight) {
                    self.abort_in_flight = None;
                    // An error status counts as "not aborted": the command is still out there.
                    let aborted = cqe.status().is_success() && cqe.dw0 & 1 == 0;
                    self.abort_answer = Some(AbortAnswer { sqid, cid, aborted });
                    work += 1;
                }
                if self.state == AdminState::Ready {
                    // After bring-up INIT_CID carries only ANA log reads.
                    if let Some(cqe) = init_done.take() {
                        self.ana_log_in_flight = false;
                        if cqe.status().is_success() {
                            if let Err(why) = self.parse_ana_log() {
                                self.state = AdminState::Failed(why);
                                return 1;
                            }
                        }
                        work += 1;
                    }
                }
                events[0] = Some(init_done.map_or(AdminEvent::Tick, AdminEvent::InitDone));
            }
        }
        if let Some(ev) = events[0].take() {
            let was_tick = matches!(ev, AdminEvent::Tick);
            match self.step(ev, now_ns) {
                Next::Send(sqe, phase) => {
                    self.send(sqe, INIT_CID, phase);
                    work += 1;
                }
                Next::Wait => {}
                Next::Ready => {
                    self.state = AdminState::Ready;
                    self.next_keep_alive_ns = now_ns + self.keep_alive_interval_ns();
                    let aers = MAX_AERS.min(u16::from(self.controller.aerl) + 1);
                    for i in 0..aers {
                        self.send(
                            Sqe { opc: opcode::admin::ASYNC_EVENT_REQUEST, ..Sqe::default() },
                            FIRST_AER_CID + i,
                            DataPhase::None,
                        );
                    }
                    self.aers_outstanding = aers;
                    work += 1;
                }
                Next::Fail(why) => {
                    self.state = AdminState::Failed(why);
                    work += 1;
                }
            }
            if !was_tick {
                work += 1;
            }
        }
        if self.state == AdminState::Ready {
            if let Some(why) = self.overdue_command(now_ns) {
                self.state = AdminState::Failed(why.to_string());
                return work + 1;
            }
        }
        if self.state == AdminState::Ready && self.opts.keep_alive_timeout_ms > 0 {
            // A keep-alive unanswered for half of KATO means the controller is
            // hung or unreachable: do not wait for TCP to notice.
            if self.keep_alive_in_flight && now_ns >= self.keep_alive_sent_ns + self.keep_alive_interval_ns() {
                self.state = AdminState::Failed("keep-alive timed out".to_string());
                return work + 1;
            }
            if !self.keep_alive_in_flight && now_ns >= self.next_keep_alive_ns {
                self.send(Sqe { opc: opcode::admin::KEEP_ALIVE, ..Sqe::default() }, KEEP_ALIVE_CID, DataPhase::None);
                self.keep_alive_in_flight = true;
                self.keep_alive_sent_ns = now_ns;
                self.next_keep_alive_ns = now_ns + self.keep_alive_interval_ns();
                work += 1;
            }
        }
        if self.state == AdminState::Ready && self.ana_log_wanted && !self.ana_log_in_flight {
            self.ana_log_wanted = false;
            self.ana_log_in_flight = true;
            self.send(Self::ana_log_sqe(), INIT_CID, DataPhase::FromController(4096));
            work += 1;
        }
        if work > 0 {
            if let Err(e) = self.transport.flush() {
                self.fail(format!("admin queue send: {e}"), &e);
            }
        }
        work
    }

    /// Keep-alive goes out at half the timeout, as the spec suggests (NVMe Base 2.0c §3.9).
    fn keep_alive_interval_ns(&self) -> u64 {
        u64::from(self.opts.keep_alive_timeout_ms) * 1_000_000 / 2
    }

    fn on_async_event(&mut self, cqe: Cqe) {
        self.aers_outstanding = self.aers_outstanding.saturating_sub(1);
        if !cqe.status().is_success() {
            // Aborted (for example by queue deletion): do not re-arm.
            return;
        }
        // Bounded record of what came.
        if self.async_events.len() < 1024 {
            self.async_events.push(cqe.dw0);
        }
        // Notice (type 2), ANA change (info 3): read the ANA log (NVMe Base 2.0c §5.2, Figure 146).
        let event_type = cqe.dw0 & 0x7;
        let event_info = (cqe.dw0 >> 8) & 0xFF;
        if event_type == 2 && event_info == 3 {
            self.request_ana_log();
        }
        self.send(Sqe { opc: opcode::admin::ASYNC_EVENT_REQUEST, ..Sqe::default() }, cqe.cid, DataPhase::None);
        self.aers_outstanding += 1;
    }

    fn send(&mut self, mut sqe: Sqe, cid: u16, phase: DataPhase) {
        sqe.cid = cid;
        if let Some(t) = self.sent_at_ns.get_mut(usize::from(cid)) {
            *t = self.now_ns;
        }
        self.last_send_ns = self.now_ns;
        if sqe.flags == 0 {
            sqe.flags = protocol::sqe::PSDT_SGL_MPTR_CONTIG;
        }
        let ptr = self.data.as_ptr();
        let xfer = match phase {
            DataPhase::None => XferBuf::None,
            DataPhase::ToController(len) => XferBuf::ToController { ptr, len: len as u32 },
            DataPhase::FromController(len) => XferBuf::FromController { ptr, len: len as u32 },
        };
        // SAFETY: self.data is owned by this admin queue and only one command
        // with a data phase (the bring-up command, INIT_CID) is ever in flight;
        // the buffer is read only after its completion.
        if let Err(e) = unsafe { self.transport.submit(&sqe, xfer) } {
            self.fail(format!("admin submit: {e}"), &e);
        }
    }
}

/// The kind of an [`AdminEvent`], for matching beside the state.
#[derive(Debug)]
enum Ev {
    TransportReady,
    Done,
    Tick,
}
