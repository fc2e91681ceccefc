//! Multipath: one namespace reached through several controllers (paths), the
//! `Nvme0n1` bdev the application does IO on.
//!
//! Owns: named controllers with their paths ([`MultipathHost`], SPDK's
//! `bdev_nvme_*` semantics), path policies ([`policy`]), the per-IO path
//! choice and retry on the submitting core ([`MpChannel`]), the classification
//! of completions into success, path failure and command failure ([`retry`]),
//! and fast-IO-fail. Does not own: connecting, keep-alive, resetting and
//! reconnecting a controller (the engine's supervisor does that with the
//! reconnect policy given here), nor the JSON shapes of the RPCs (the `rpc`
//! crate), nor any transport.
//!
//! The stale-write rule (docs/multipath.md): a write that failed on a path we
//! gave up on is resubmitted elsewhere only once that association is certainly
//! dead, which the engine publishes per controller.
#![warn(missing_docs)]

pub mod bdev;
pub mod channel;
pub mod error;
pub mod host;
pub mod policy;
pub mod retry;

pub use bdev::{MpBdev, PathRef, MAX_PATHS};
pub use channel::{ChannelStats, MpChannel, MpSubmitError};
pub use error::MultipathError;
pub use host::{
    AttachParams, ControllerInfo, IoPathInfo, MultipathHost, MultipathMode, PathFilter, PathInfo, PathReport,
};
pub use policy::{PathCandidate, Policy, Selector};
pub use retry::{classify, Disposition};
