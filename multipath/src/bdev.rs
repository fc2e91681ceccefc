//! The multipath bdev (`Nvme0n1`): one namespace, its paths, its policy.
//!
//! Shared by the control plane and every core. Cores read the policy from
//! atomics on each IO; the path list changes only on attach/detach, so a
//! channel copies it when its version moves (the only lock, never per IO).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use engine::host::ctrlr::CtrlrShared;
use engine::Namespace;

use crate::policy::{Policy, Selector};

/// Paths one bdev can have.
pub const MAX_PATHS: usize = 8;

/// No preferred path.
const NO_PREFERENCE: u32 = u32::MAX;

/// One path to the namespace: a controller's namespace handle and its live state.
#[derive(Debug, Clone)]
pub struct PathRef {
    /// The namespace through this controller (its `ctrlr` is the engine's index).
    pub ns: Namespace,
    /// The controller's state, shared with the engine.
    pub shared: Arc<CtrlrShared>,
}

/// A namespace reached through several controllers.
#[derive(Debug)]
pub struct MpBdev {
    name: String,
    /// Namespace ID (the same through every path).
    pub nsid: u32,
    /// Logical block size in bytes.
    pub block_size: u32,
    /// Size in blocks.
    pub num_blocks: u64,
    /// Namespace UUID, when reported.
    pub uuid: Option<[u8; 16]>,
    paths: Mutex<Vec<PathRef>>,
    version: AtomicU64,
    policy: AtomicU8,
    selector: AtomicU8,
    rr_min_io: AtomicU32,
    preferred_ctrlr: AtomicU32,
    fast_io_fail_timeout_ms: AtomicU64,
}

impl MpBdev {
    /// A bdev with its first path.
    pub fn new(name: &str, first: PathRef, uuid: Option<[u8; 16]>) -> Self {
        MpBdev {
            name: name.to_string(),
            nsid: first.ns.nsid,
            block_size: first.ns.block_size,
            num_blocks: first.ns.num_blocks,
            uuid,
            paths: Mutex::new(vec![first]),
            version: AtomicU64::new(1),
            policy: AtomicU8::new(Policy::ActivePassive as u8),
            selector: AtomicU8::new(Selector::RoundRobin as u8),
            rr_min_io: AtomicU32::new(1),
            preferred_ctrlr: AtomicU32::new(NO_PREFERENCE),
            fast_io_fail_timeout_ms: AtomicU64::new(0),
        }
    }

    /// The bdev's name (`Nvme0n1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bumped on every change of the path list.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Copies the path list into `out` (keeping its capacity); returns the version read.
    pub fn copy_paths(&self, out: &mut Vec<PathRef>) -> u64 {
        let paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        out.clear();
        out.extend(paths.iter().cloned());
        self.version()
    }

    /// The paths now, in attach order.
    pub fn paths(&self) -> Vec<PathRef> {
        self.paths.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds a path (the control plane checks identity first).
    pub fn add_path(&self, p: PathRef) {
        let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        paths.push(p);
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes the path through engine controller `ctrlr`.
    pub fn remove_path(&self, ctrlr: u16) {
        let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        paths.retain(|p| p.ns.ctrlr != ctrlr);
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// The path policy.
    #[inline]
    pub fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    /// The active_active selector.
    #[inline]
    pub fn selector(&self) -> Selector {
        Selector::from_u8(self.selector.load(Ordering::Relaxed))
    }

    /// IOs per path before round robin moves on.
    #[inline]
    pub fn rr_min_io(&self) -> u32 {
        self.rr_min_io.load(Ordering::Relaxed)
    }

    /// Sets the policy (SPDK's `bdev_nvme_set_multipath_policy`).
    pub fn set_policy(&self, policy: Policy, selector: Selector, rr_min_io: u32) {
        self.selector.store(selector as u8, Ordering::Relaxed);
        self.rr_min_io.store(rr_min_io.max(1), Ordering::Relaxed);
        self.policy.store(policy as u8, Ordering::Release);
    }

    /// The engine index of the preferred path's controller.
    #[inline]
    pub fn preferred_ctrlr(&self) -> Option<u16> {
        u16::try_from(self.preferred_ctrlr.load(Ordering::Relaxed)).ok()
    }

    /// Prefers the path through engine controller `ctrlr` (`None`: no preference).
    pub fn set_preferred_ctrlr(&self, ctrlr: Option<u16>) {
        self.preferred_ctrlr.store(ctrlr.map_or(NO_PREFERENCE, u32::from), Ordering::Relaxed);
    }

    /// Fail held IOs after this long without any path (`None`: hold until a path returns).
    #[inline]
    pub fn fast_io_fail_timeout_ms(&self) -> Option<u64> {
        match self.fast_io_fail_timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Sets the fast-IO-fail timeout (SPDK's `-u`, seconds there).
    pub fn set_fast_io_fail_timeout_ms(&self, ms: Option<u64>) {
        self.fast_io_fail_timeout_ms.store(ms.unwrap_or(0), Ordering::Relaxed);
    }
}
