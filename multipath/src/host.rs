//! The control plane of multipath: named controllers (`Nvme0`) with their
//! paths and bdevs, as SPDK's `bdev_nvme_*` RPCs see them.
//!
//! Calls block the calling thread (never a reactor) while the engine connects.
//! A refused call changes nothing: a path that fails a check is detached again.

use std::sync::{Arc, Mutex};

use engine::host::ctrlr::{CtrlrState, PathEvent};
use engine::transport::HostTransport;
use engine::{Controller, ControllerData, ControllerOptions, Engine, TransportId};

use crate::bdev::{MpBdev, PathRef, MAX_PATHS};
use crate::error::MultipathError;
use crate::policy::{choose, tier, PathCandidate, Policy, RoundRobin, Selector};

/// What a second attach under a taken name does (SPDK's `-x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipathMode {
    /// A taken name is an error.
    Disable,
    /// Adds a path: a second controller of the same subsystem, IO by the policy.
    Multipath,
    /// Adds an alternate path used only when the first fails (active_passive).
    Failover,
}

impl MultipathMode {
    /// Parses SPDK's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "disable" => Some(Self::Disable),
            "multipath" => Some(Self::Multipath),
            "failover" => Some(Self::Failover),
            _ => None,
        }
    }
}

/// `bdev_nvme_attach_controller`'s parameters.
#[derive(Debug, Clone)]
pub struct AttachParams {
    /// Controller name (`-b`).
    pub name: String,
    /// Where (`-t -f -a -s -n`).
    pub trid: TransportId,
    /// `-x`; `None` as SPDK: a taken name is an error.
    pub mode: Option<MultipathMode>,
    /// Keep-alive, queue depth, digests, reconnect policy (`-k -l -o --hdgst --ddgst`).
    pub opts: ControllerOptions,
    /// `-u`, in ms: fail held IOs after this long without any path.
    pub fast_io_fail_timeout_ms: Option<u64>,
}

/// One path of a controller, as `bdev_nvme_get_controllers` shows it.
#[derive(Debug, Clone)]
pub struct PathInfo {
    /// The engine's index of the path's controller.
    pub ctrlr_index: u16,
    /// State now.
    pub state: CtrlrState,
    /// Where.
    pub trid: TransportId,
    /// Controller ID of the current (or last) association.
    pub cntlid: u16,
    /// Host NQN we connect with.
    pub hostnqn: String,
    /// What Identify said at attach.
    pub data: ControllerData,
    /// Reconnect attempts so far.
    pub reconnect_attempts: u32,
    /// Why it last failed ("" if never).
    pub last_failure: String,
}

/// A named controller and its paths.
#[derive(Debug, Clone)]
pub struct ControllerInfo {
    /// `Nvme0`.
    pub name: String,
    /// Paths in attach order.
    pub paths: Vec<PathInfo>,
    /// Its bdevs' names.
    pub bdevs: Vec<String>,
}

/// One path of a bdev as one reactor sees it (`bdev_nvme_get_io_paths`).
#[derive(Debug, Clone)]
pub struct IoPathInfo {
    /// `Nvme0n1`.
    pub bdev_name: String,
    /// Controller ID.
    pub cntlid: u16,
    /// IO goes this way now.
    pub current: bool,
    /// This reactor's queue pair is up.
    pub connected: bool,
    /// ANA lets IO through.
    pub accessible: bool,
    /// Where.
    pub trid: TransportId,
}

/// A path event with the path it happened to.
#[derive(Debug, Clone)]
pub struct PathReport {
    /// Controller name.
    pub name: String,
    /// The path.
    pub trid: TransportId,
    /// What and when.
    pub event: PathEvent,
}

struct PathEntry {
    ctrlr: Controller,
}

struct NvmeCtrlr {
    name: String,
    paths: Vec<PathEntry>,
    bdevs: Vec<Arc<MpBdev>>,
}

/// Named multipath controllers on one engine.
pub struct MultipathHost<T: HostTransport + 'static> {
    engine: Arc<Engine<T>>,
    ctrlrs: Mutex<Vec<NvmeCtrlr>>,
}

impl<T: HostTransport + 'static> MultipathHost<T> {
    /// Multipath control over `engine`.
    pub fn new(engine: Arc<Engine<T>>) -> Self {
        MultipathHost { engine, ctrlrs: Mutex::new(Vec::new()) }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine<T>> {
        &self.engine
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NvmeCtrlr>> {
        self.ctrlrs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `bdev_nvme_attach_controller`: a new controller, or a new path of an
    /// existing one. Returns the names of the bdevs it serves.
    pub fn attach(&self, p: &AttachParams) -> Result<Vec<String>, MultipathError> {
        if p.name.is_empty() {
            return Err(MultipathError::InvalidParameter("controller name must not be empty".into()));
        }
        // Checks that need no connection first, under the lock; the connect itself runs unlocked.
        {
            let ctrlrs = self.lock();
            if let Some(c) = ctrlrs.iter().find(|c| c.name == p.name) {
                if matches!(p.mode, None | Some(MultipathMode::Disable)) {
                    return Err(MultipathError::NameTaken(p.name.clone()));
                }
                if c.paths.iter().any(|e| same_trid(&e.ctrlr.trid, &p.trid)) {
                    return Err(MultipathError::PathExists(p.trid.to_string()));
                }
                if c.paths.len() >= MAX_PATHS {
                    return Err(MultipathError::TooManyPaths(MAX_PATHS));
                }
                if let Some(first) = c.paths.first() {
                    if first.ctrlr.trid.subnqn != p.trid.subnqn {
                        return Err(MultipathError::SubsystemMismatch {
                            name: p.name.clone(),
                            trid: p.trid.to_string(),
                            found: p.trid.subnqn.clone(),
                            expected: first.ctrlr.trid.subnqn.clone(),
                        });
                    }
                }
            }
        }
        let ctrlr = self.engine.attach_controller(&p.trid, &p.opts)?;
        let mut ctrlrs = self.lock();
        let outcome = match ctrlrs.iter_mut().find(|c| c.name == p.name) {
            Some(c) => add_path(c, &ctrlr, p),
            None => {
                let c = new_ctrlr(&ctrlr, p);
                let names = c.bdevs.iter().map(|b| b.name().to_string()).collect();
                ctrlrs.push(c);
                Ok(names)
            }
        };
        if outcome.is_err() {
            drop(ctrlrs);
            self.engine.detach_controller(&ctrlr);
        }
        outcome
    }

    /// `bdev_nvme_detach_controller`: every path of `name`, or those matching
    /// the given fields of a transport ID.
    pub fn detach(&self, name: &str, filter: &PathFilter) -> Result<(), MultipathError> {
        let mut ctrlrs = self.lock();
        let pos =
            ctrlrs.iter().position(|c| c.name == name).ok_or_else(|| MultipathError::NoSuchController(name.into()))?;
        let c = &mut ctrlrs[pos];
        let gone: Vec<usize> = (0..c.paths.len()).filter(|&i| filter.matches(&c.paths[i].ctrlr.trid)).collect();
        if gone.is_empty() {
            return Err(MultipathError::NoSuchPath { name: name.into(), what: filter.describe() });
        }
        let mut removed = Vec::new();
        for &i in gone.iter().rev() {
            let e = c.paths.remove(i);
            for b in &c.bdevs {
                b.remove_path(e.ctrlr.index);
            }
            removed.push(e.ctrlr);
        }
        if c.paths.is_empty() {
            ctrlrs.remove(pos);
        }
        drop(ctrlrs);
        for ctrlr in removed {
            self.engine.detach_controller(&ctrlr);
        }
        Ok(())
    }

    /// `bdev_nvme_get_controllers [-n NAME]`.
    pub fn controllers(&self, name: Option<&str>) -> Result<Vec<ControllerInfo>, MultipathError> {
        let ctrlrs = self.lock();
        if let Some(n) = name {
            if !ctrlrs.iter().any(|c| c.name == n) {
                return Err(MultipathError::NoSuchController(n.into()));
            }
        }
        Ok(ctrlrs
            .iter()
            .filter(|c| name.is_none_or(|n| n == c.name))
            .map(|c| ControllerInfo {
                name: c.name.clone(),
                paths: c.paths.iter().map(|e| self.path_info(&e.ctrlr)).collect(),
                bdevs: c.bdevs.iter().map(|b| b.name().to_string()).collect(),
            })
            .collect())
    }

    fn path_info(&self, c: &Controller) -> PathInfo {
        let (state, cntlid, _) = c.shared.snapshot();
        PathInfo {
            ctrlr_index: c.index,
            state,
            trid: c.trid.clone(),
            cntlid,
            hostnqn: self.engine.hostnqn().to_string(),
            data: c.data.clone(),
            reconnect_attempts: c.shared.reconnect_attempts(),
            last_failure: c.shared.last_failure(),
        }
    }

    /// A bdev by name.
    pub fn bdev(&self, name: &str) -> Option<Arc<MpBdev>> {
        self.lock().iter().flat_map(|c| c.bdevs.iter()).find(|b| b.name() == name).cloned()
    }

    /// Every bdev with the paths (controller info) behind it.
    pub fn bdevs(&self) -> Vec<(Arc<MpBdev>, Vec<PathInfo>)> {
        let ctrlrs = self.lock();
        let mut out = Vec::new();
        for c in ctrlrs.iter() {
            for b in &c.bdevs {
                let paths = c.paths.iter().map(|e| self.path_info(&e.ctrlr)).collect();
                out.push((b.clone(), paths));
            }
        }
        out
    }

    /// `bdev_nvme_get_io_paths`: per reactor, each path of each bdev (or of `bdev`).
    pub fn io_paths(&self, bdev: Option<&str>) -> Result<Vec<Vec<IoPathInfo>>, MultipathError> {
        let ctrlrs = self.lock();
        if let Some(n) = bdev {
            if !ctrlrs.iter().flat_map(|c| c.bdevs.iter()).any(|b| b.name() == n) {
                return Err(MultipathError::NoSuchBdev(n.into()));
            }
        }
        let mut groups = Vec::new();
        for reactor in 0..self.engine.reactor_count() {
            let mut group = Vec::new();
            for c in ctrlrs.iter() {
                for b in c.bdevs.iter().filter(|b| bdev.is_none_or(|n| n == b.name())) {
                    group.extend(io_paths_on(b, &c.paths, reactor));
                }
            }
            groups.push(group);
        }
        Ok(groups)
    }

    /// `bdev_nvme_set_multipath_policy`.
    pub fn set_multipath_policy(
        &self,
        bdev: &str,
        policy: Policy,
        selector: Option<Selector>,
        rr_min_io: Option<u32>,
    ) -> Result<(), MultipathError> {
        let b = self.bdev(bdev).ok_or_else(|| MultipathError::NoSuchBdev(bdev.into()))?;
        if rr_min_io == Some(0) {
            return Err(MultipathError::InvalidParameter("rr_min_io must be at least 1".into()));
        }
        b.set_policy(policy, selector.unwrap_or(b.selector()), rr_min_io.unwrap_or(b.rr_min_io()));
        Ok(())
    }

    /// `bdev_nvme_set_preferred_path -b BDEV -c CNTLID`.
    pub fn set_preferred_path(&self, bdev: &str, cntlid: u16) -> Result<(), MultipathError> {
        let b = self.bdev(bdev).ok_or_else(|| MultipathError::NoSuchBdev(bdev.into()))?;
        let path = b
            .paths()
            .into_iter()
            .find(|p| p.shared.cntlid() == cntlid)
            .ok_or_else(|| MultipathError::NoSuchPath { name: bdev.into(), what: format!("cntlid {cntlid}") })?;
        b.set_preferred_ctrlr(Some(path.ns.ctrlr));
        Ok(())
    }

    /// `bdev_nvme_reset_controller NAME [--cntlid N]`: resets one path or all.
    pub fn reset_controller(&self, name: &str, cntlid: Option<u16>) -> Result<(), MultipathError> {
        let ctrlrs = self.lock();
        let c = ctrlrs.iter().find(|c| c.name == name).ok_or_else(|| MultipathError::NoSuchController(name.into()))?;
        let mut any = false;
        for e in c.paths.iter().filter(|e| cntlid.is_none_or(|id| e.ctrlr.shared.cntlid() == id)) {
            self.engine.reset_controller(&e.ctrlr);
            any = true;
        }
        if !any {
            return Err(MultipathError::NoSuchPath { name: name.into(), what: format!("cntlid {cntlid:?}") });
        }
        Ok(())
    }

    /// Path events since the last call, oldest first per path.
    pub fn drain_events(&self) -> Vec<PathReport> {
        let ctrlrs = self.lock();
        let mut out = Vec::new();
        let mut events = Vec::new();
        for c in ctrlrs.iter() {
            for e in &c.paths {
                events.clear();
                e.ctrlr.shared.drain_events(&mut events);
                out.extend(events.drain(..).map(|event| PathReport {
                    name: c.name.clone(),
                    trid: e.ctrlr.trid.clone(),
                    event,
                }));
            }
        }
        out.sort_by_key(|r| r.event.at_ns);
        out
    }

    /// Detaches everything (shutdown).
    pub fn detach_all(&self) {
        let names: Vec<String> = self.lock().iter().map(|c| c.name.clone()).collect();
        for n in names {
            let _ = self.detach(&n, &PathFilter::default());
        }
    }
}

/// Which paths `bdev_nvme_detach_controller` removes: those whose given fields match.
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    /// `-a`.
    pub traddr: Option<String>,
    /// `-s`.
    pub trsvcid: Option<String>,
    /// `-n`.
    pub subnqn: Option<String>,
}

impl PathFilter {
    fn matches(&self, t: &TransportId) -> bool {
        self.traddr.as_ref().is_none_or(|a| *a == t.traddr)
            && self.trsvcid.as_ref().is_none_or(|s| *s == t.trsvcid)
            && self.subnqn.as_ref().is_none_or(|n| *n == t.subnqn)
    }

    fn describe(&self) -> String {
        format!(
            "traddr={} trsvcid={} subnqn={}",
            self.traddr.as_deref().unwrap_or("*"),
            self.trsvcid.as_deref().unwrap_or("*"),
            self.subnqn.as_deref().unwrap_or("*")
        )
    }
}

fn same_trid(a: &TransportId, b: &TransportId) -> bool {
    a.trtype == b.trtype && a.traddr == b.traddr && a.trsvcid == b.trsvcid && a.subnqn == b.subnqn
}

fn new_ctrlr(ctrlr: &Controller, p: &AttachParams) -> NvmeCtrlr {
    let bdevs = ctrlr
        .data
        .namespaces
        .iter()
        .filter_map(|ns| {
            let handle = ctrlr.namespace(ns.nsid)?;
            let b = MpBdev::new(
                &format!("{}n{}", p.name, ns.nsid),
                PathRef { ns: handle, shared: ctrlr.shared.clone() },
                ns.uuid,
            );
            b.set_fast_io_fail_timeout_ms(p.fast_io_fail_timeout_ms);
            Some(Arc::new(b))
        })
        .collect();
    NvmeCtrlr { name: p.name.clone(), paths: vec![PathEntry { ctrlr: ctrlr.clone() }], bdevs }
}

/// Adds `ctrlr` as a path of `c` after checking it is the same subsystem and namespaces.
fn add_path(c: &mut NvmeCtrlr, ctrlr: &Controller, p: &AttachParams) -> Result<Vec<String>, MultipathError> {
    let cntlid = ctrlr.shared.cntlid();
    if c.paths.iter().any(|e| e.ctrlr.shared.cntlid() == cntlid || e.ctrlr.data.cntlid == cntlid) {
        return Err(MultipathError::DuplicateCntlid { name: c.name.clone(), trid: p.trid.to_string(), cntlid });
    }
    let first = c.paths.first().map(|e| &e.ctrlr.data);
    for b in &c.bdevs {
        let mismatch = |what| MultipathError::NamespaceMismatch { trid: p.trid.to_string(), nsid: b.nsid, what };
        let ns = ctrlr.data.namespaces.iter().find(|n| n.nsid == b.nsid).ok_or_else(|| mismatch("missing"))?;
        let old = first.and_then(|d| d.namespaces.iter().find(|n| n.nsid == b.nsid));
        if let Some(old) = old {
            if old.uuid != ns.uuid {
                return Err(mismatch("UUID"));
            }
            if old.nguid != ns.nguid {
                return Err(mismatch("NGUID"));
            }
            if old.eui64 != ns.eui64 {
                return Err(mismatch("EUI64"));
            }
            if old.block_size != ns.block_size || old.num_blocks != ns.num_blocks {
                return Err(mismatch("size"));
            }
        }
    }
    for b in &c.bdevs {
        if let Some(handle) = ctrlr.namespace(b.nsid) {
            b.add_path(PathRef { ns: handle, shared: ctrlr.shared.clone() });
        }
        if p.mode == Some(MultipathMode::Failover) {
            b.set_policy(Policy::ActivePassive, b.selector(), b.rr_min_io());
        }
        if p.fast_io_fail_timeout_ms.is_some() {
            b.set_fast_io_fail_timeout_ms(p.fast_io_fail_timeout_ms);
        }
    }
    c.paths.push(PathEntry { ctrlr: ctrlr.clone() });
    Ok(c.bdevs.iter().map(|b| b.name().to_string()).collect())
}

/// The paths of `b` as reactor `reactor` sees them.
fn io_paths_on(b: &MpBdev, entries: &[PathEntry], reactor: usize) -> Vec<IoPathInfo> {
    let paths = b.paths();
    let preferred = b.preferred_ctrlr();
    let candidates: Vec<PathCandidate> = paths
        .iter()
        .map(|p| PathCandidate {
            usable: p.shared.state() == CtrlrState::Enabled && p.shared.cores_connected() & (1 << (reactor % 64)) != 0,
            ana: p.shared.ana_state(b.nsid),
            outstanding: 0,
            preferred: preferred == Some(p.ns.ctrlr),
        })
        .collect();
    let best = candidates.iter().filter_map(tier).min();
    let chosen = choose(b.policy(), b.selector(), b.rr_min_io(), &candidates, &mut RoundRobin::default());
    paths
        .iter()
        .zip(candidates.iter())
        .enumerate()
        .map(|(i, (p, cand))| {
            let current = match b.policy() {
                Policy::ActivePassive => chosen == Some(i),
                Policy::ActiveActive => best.is_some() && tier(cand) == best,
            };
            let trid = entries
                .iter()
                .find(|e| e.ctrlr.index == p.ns.ctrlr)
                .map(|e| e.ctrlr.trid.clone())
                .unwrap_or_else(|| TransportId::tcp("", "", ""));
            IoPathInfo {
                bdev_name: b.name().to_string(),
                cntlid: p.shared.cntlid(),
                current,
                connected: cand.usable,
                accessible: !matches!(
                    cand.ana,
                    Some(
                        protocol::log::AnaState::Inaccessible
                            | protocol::log::AnaState::PersistentLoss
                            | protocol::log::AnaState::Change
                    )
                ),
                trid,
            }
        })
        .collect()
}
