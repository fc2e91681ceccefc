//! The embedding API: start reactors on a core mask, attach controllers by
//! transport ID, run jobs on cores, or submit from any thread through rings.
//!
//! Everything here is control plane: it blocks the calling thread (never a
//! reactor) while reactors do the work in their poll loops.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{Clock, MonotonicClock};
use crate::host::ctrlr::CtrlrShared;
use crate::host::{AttachRequest, ControllerData, CoreJob, HostCore, HostIdentity, Namespace, MAX_CONTROLLERS};
use crate::reactor::{IdlePolicy, ReactorSet};
use crate::transport::HostTransport;
use crate::trid::TransportId;

pub use crate::host::options::{ControllerOptions, TimeoutAction};

/// Errors of the engine's control API.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reactor threads could not start.
    #[error("starting reactors: {0}")]
    Start(#[source] std::io::Error),
    /// The transport refused to start a connection.
    #[error("connecting to {trid}: {reason}")]
    Connect {
        /// Where.
        trid: String,
        /// Why.
        reason: String,
    },
    /// Bring-up of the admin queue failed.
    #[error("attaching {trid}: {reason}")]
    Attach {
        /// Where.
        trid: String,
        /// Why.
        reason: String,
    },
    /// No answer within the time allowed.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// All controller slots are taken.
    #[error("too many controllers attached (max {MAX_CONTROLLERS})")]
    TooManyControllers,
    /// A reactor index beyond the core mask.
    #[error("no reactor {0}")]
    NoSuchReactor(usize),
    /// A reactor's inbox is gone (engine shutting down).
    #[error("reactor unavailable")]
    ReactorGone,
}

/// How to start an engine.
#[derive(Clone)]
pub struct EngineOptions {
    /// CPU cores to run reactors on, one each.
    pub cores: Vec<usize>,
    /// What reactors do when idle.
    pub idle: IdlePolicy,
    /// The host NQN; by default a UUID-based one made at start.
    pub hostnqn: Option<String>,
    /// The clock reactors read.
    pub clock: Arc<dyn Clock>,
}

impl EngineOptions {
    /// Reactors on `cores`, busy-polling, real clock.
    pub fn on_cores(cores: &[usize]) -> Self {
        EngineOptions {
            cores: cores.to_vec(),
            idle: IdlePolicy::default(),
            hostnqn: None,
            clock: Arc::new(MonotonicClock::new()),
        }
    }
}

/// An attached controller.
#[derive(Debug, Clone)]
pub struct Controller {
    /// The engine's index of it.
    pub index: u16,
    /// Where it is.
    pub trid: TransportId,
    /// What Identify said (at the first bring-up).
    pub data: ControllerData,
    /// Its live state, read by every core.
    pub shared: Arc<CtrlrShared>,
}

impl Controller {
    /// The handle for namespace `nsid`, if active.
    pub fn namespace(&self, nsid: u32) -> Option<Namespace> {
        let ns = self.data.namespaces.iter().find(|n| n.nsid == nsid)?;
        Some(Namespace {
            ctrlr: self.index,
            nsid,
            block_size: ns.block_size,
            num_blocks: ns.num_blocks,
            max_transfer_bytes: self.data.max_transfer_bytes.unwrap_or(u32::MAX),
        })
    }
}

/// The host engine: reactors on cores, each with a queue pair to every
/// attached controller.
pub struct Engine<T: HostTransport + 'static> {
    reactors: ReactorSet<HostCore<T>>,
    hostnqn: String,
    hostid: [u8; 16],
    used: Mutex<[bool; MAX_CONTROLLERS]>,
    clock: Arc<dyn Clock>,
}

/// Counter so that engines in one process get distinct host identities.
static ENGINE_SEQ: AtomicU32 = AtomicU32::new(0);

impl<T: HostTransport + 'static> Engine<T> {
    /// Starts one reactor per core; `make_transport(reactor_index)` runs on each reactor's thread.
    pub fn start<F>(opts: EngineOptions, make_transport: F) -> Result<Self, EngineError>
    where
        F: Fn(usize) -> T + Send + Sync + 'static,
    {
        let hostid = host_id();
        let hostnqn =
            opts.hostnqn.clone().unwrap_or_else(|| format!("nqn.2014-08.org.nvmexpress:uuid:{}", format_uuid(&hostid)));
        let reactors = ReactorSet::start("corepath_host", &opts.cores, opts.clock.clone(), opts.idle, move |i| {
            HostCore::new(make_transport(i))
        })
        .map_err(EngineError::Start)?;
        Ok(Engine { reactors, hostnqn, hostid, used: Mutex::new([false; MAX_CONTROLLERS]), clock: opts.clock })
    }

    /// The host NQN used in Connect.
    pub fn hostnqn(&self) -> &str {
        &self.hostnqn
    }

    /// Number of reactors.
    pub fn reactor_count(&self) -> usize {
        self.reactors.cores().len()
    }

    /// The cores reactors run on.
    pub fn cores(&self) -> &[usize] {
        self.reactors.cores()
    }

    /// Connects the admin queue on the first reactor, brings the controller
    /// up, then connects one IO queue pair on every reactor.
    pub fn attach_controller(&self, trid: &TransportId, opts: &ControllerOptions) -> Result<Controller, EngineError> {
        let index = self.claim_index()?;
        match self.attach_at(index, trid, opts) {
            Ok(c) => Ok(c),
            Err(e) => {
                self.release(index);
                Err(e)
            }
        }
    }

    fn attach_at(&self, index: u16, trid: &TransportId, opts: &ControllerOptions) -> Result<Controller, EngineError> {
        let wait = Duration::from_millis(opts.connect_timeout_ms.saturating_add(2_000));
        let n = self.reactor_count() as u16;
        let shared = Arc::new(CtrlrShared::new());
        shared.set_wakers(self.reactors.senders().iter().map(|s| s.waker().clone()).collect());
        let (tx, rx) = mpsc::channel();
        for r in 0..self.reactor_count() {
            let (trid, opts, host, shared) = (trid.clone(), opts.clone(), self.identity(), shared.clone());
            // Reactor 0 supervises (admin queue, resets, reconnects); every reactor follows.
            let supervise = (r == 0).then(|| (n, Some(tx.clone())));
            let fail = tx.clone();
            self.on_reactor(r, move |core: &mut HostCore<T>, ctx| {
                let req = AttachRequest { index, trid: &trid, opts: &opts, host: &host };
                if let Err(why) = core.attach_supervised(&req, &shared, supervise, ctx.now_ns) {
                    let _ = fail.send(Err(why));
                }
            })?;
        }
        drop(tx);
        let outcome = rx.recv_timeout(wait).map_err(|_| EngineError::Timeout("controller bring-up"));
        let data =
            match outcome.and_then(|r| r.map_err(|reason| EngineError::Attach { trid: trid.to_string(), reason })) {
                Ok(data) => data,
                Err(e) => {
                    self.detach_index(index);
                    return Err(e);
                }
            };
        // Every core connects its IO queue pair once the controller is enabled.
        let all = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        let deadline = std::time::Instant::now() + wait;
        while shared.cores_connected() & all != all {
            if std::time::Instant::now() > deadline {
                self.detach_index(index);
                return Err(EngineError::Attach {
                    trid: trid.to_string(),
                    reason: "IO queue pairs did not connect on every core".to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(Controller { index, trid: trid.clone(), data, shared })
    }

    /// Resets a controller: its association is dropped and a new one made (IOs in flight fail over).
    pub fn reset_controller(&self, ctrlr: &Controller) {
        ctrlr.shared.request_reset();
    }

    fn identity(&self) -> HostIdentity {
        HostIdentity { hostnqn: self.hostnqn.clone(), hostid: self.hostid }
    }

    /// Disconnects a controller on every core. IOs in flight complete with a path error.
    pub fn detach_controller(&self, ctrlr: &Controller) {
        self.detach_index(ctrlr.index);
        self.release(ctrlr.index);
    }

    fn detach_index(&self, index: u16) {
        let mut waits = Vec::new();
        for r in 0..self.reactor_count() {
            let (tx, rx) = mpsc::channel();
            if self
                .on_reactor(r, move |core: &mut HostCore<T>, _| {
                    core.remove_ctrlr(index);
                    let _ = tx.send(());
                })
                .is_ok()
            {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Runs `job` on reactor `reactor_index`.
    pub fn spawn_job(&self, reactor_index: usize, job: Box<dyn CoreJob<T::Qpair>>) -> Result<(), EngineError> {
        self.on_reactor(reactor_index, move |core: &mut HostCore<T>, _| core.add_job(job))
    }

    /// Runs `f` on reactor `reactor_index` with its host core (control plane only).
    pub fn on_reactor<F>(&self, reactor_index: usize, f: F) -> Result<(), EngineError>
    where
        F: FnOnce(&mut HostCore<T>, &mut crate::reactor::ReactorCtx) + Send + 'static,
    {
        let sender = self.reactors.sender(reactor_index).ok_or(EngineError::NoSuchReactor(reactor_index))?;
        sender.send_wait(Box::new(f));
        Ok(())
    }

    /// Where reactor `reactor_index`'s time goes (busy, idle, asleep).
    pub fn reactor_stats(&self, reactor_index: usize) -> Option<Arc<crate::reactor::ReactorStats>> {
        self.reactors.stats(reactor_index).cloned()
    }

    /// What the reactors do when idle.
    pub fn idle_policy(&self) -> IdlePolicy {
        self.reactors.policy()
    }

    /// Nanoseconds on the engine's clock.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Stops the reactors.
    pub fn shutdown(mut self) {
        self.reactors.shutdown();
    }

    fn claim_index(&self) -> Result<u16, EngineError> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let i = used.iter().position(|u| !u).ok_or(EngineError::TooManyControllers)?;
        used[i] = true;
        Ok(i as u16)
    }

    fn release(&self, index: u16) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = used.get_mut(usize::from(index)) {
            *u = false;
        }
    }
}

/// A random host identifier (from the OS; falls back to time and pid).
fn host_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut id)).is_ok();
    if !ok {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        id = (t ^ (u128::from(std::process::id()) << 64) ^ u128::from(ENGINE_SEQ.fetch_add(1, Ordering::Relaxed)))
            .to_le_bytes();
    }
    id[6] = (id[6] & 0x0F) | 0x40; // UUID version 4
    id[8] = (id[8] & 0x3F) | 0x80; // RFC 4122 variant
    id
}

/// Formats 16 bytes as a lowercase 8-4-4-4-12 UUID.
pub fn format_uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
