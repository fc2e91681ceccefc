//! Errors of the multipath control plane.

/// Why a multipath control call was refused. Nothing changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum MultipathError {
    /// The controller name is taken and no multipath mode was asked for.
    #[error("controller {0} already exists; use -x multipath or -x failover to add a path")]
    NameTaken(String),
    /// No controller of that name.
    #[error("no controller named {0}")]
    NoSuchController(String),
    /// No bdev of that name.
    #[error("no bdev named {0}")]
    NoSuchBdev(String),
    /// The new path leads to another subsystem.
    #[error("path {trid} leads to subsystem {found}, controller {name} is {expected}")]
    SubsystemMismatch {
        /// Controller name.
        name: String,
        /// New path.
        trid: String,
        /// Its subsystem NQN.
        found: String,
        /// The controller's.
        expected: String,
    },
    /// The new path's namespace has another identity (UUID/NGUID/EUI64).
    #[error("namespace {nsid} via {trid} has a different identity ({what}): not the same namespace")]
    NamespaceMismatch {
        /// New path.
        trid: String,
        /// Namespace.
        nsid: u32,
        /// Which identifier differs.
        what: &'static str,
    },
    /// The new path's controller ID is one we already have for this subsystem.
    #[error("controller ID {cntlid} via {trid} is already used by another path of {name}")]
    DuplicateCntlid {
        /// Controller name.
        name: String,
        /// New path.
        trid: String,
        /// The duplicated ID.
        cntlid: u16,
    },
    /// The same transport ID is already a path.
    #[error("path {0} is already attached")]
    PathExists(String),
    /// No path matches.
    #[error("no path of {name} matches {what}")]
    NoSuchPath {
        /// Controller name.
        name: String,
        /// What was asked.
        what: String,
    },
    /// Too many paths for one controller.
    #[error("at most {0} paths per controller")]
    TooManyPaths(usize),
    /// A bad parameter value.
    #[error("{0}")]
    InvalidParameter(String),
    /// The engine refused (connect or bring-up failed).
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
}
