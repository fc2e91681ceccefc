//! Errors of the gateway's configuration and block devices, and the JSON-RPC
//! error code each one maps to.
//!
//! Code choice, as SPDK answers the same mistake:
//! - bdev module errors (`bdev_malloc_*`, `bdev_null_*`, `bdev_get_bdevs`) are
//!   negative errno values with `strerror` text, as SPDK's bdev RPCs send
//!   them: -17 EEXIST (name or UUID taken), -19 ENODEV (no such bdev),
//!   -22 EINVAL (bad size), -16 EBUSY (bdev still exported), -12 ENOMEM;
//! - nvmf configuration errors (bad NQN, serial, cntlid range, duplicate or
//!   unknown subsystem, listener or namespace problems) are -32602 invalid
//!   params, as `nvmf_rpc.c` answers most of them. (Recent SPDK answers a few
//!   of these, e.g. a duplicate subsystem or transport, with -32603; we keep
//!   one rule: the caller's mistake is -32602.)
//! - failures that are not the caller's fault (a listen socket the data plane
//!   could not open) are -32603 internal error.
//!
//! Our messages name the problem; SPDK's often say only "Invalid parameters".

/// JSON-RPC 2.0 "invalid params".
pub const JSONRPC_INVALID_PARAMS: i32 = -32602;
/// JSON-RPC 2.0 "internal error".
pub const JSONRPC_INTERNAL_ERROR: i32 = -32603;

/// Why a block device IO could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BdevError {
    /// The byte range does not lie inside the device.
    #[error("IO at offset {offset_bytes} length {len_bytes} is outside the device ({size_bytes} bytes)")]
    OutOfRange {
        /// First byte of the IO.
        offset_bytes: u64,
        /// Length of the IO in bytes.
        len_bytes: u64,
        /// Size of the device in bytes.
        size_bytes: u64,
    },
    /// The backing file failed the IO (errno).
    #[error("IO error (errno {0})")]
    Io(i32),
}

impl BdevError {
    /// From an IO error of a file-backed bdev.
    pub fn from_io(e: std::io::Error) -> Self {
        BdevError::Io(e.raw_os_error().unwrap_or(5))
    }
}

/// Why a configuration change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A bdev with this name (or this UUID, which SPDK registers as an alias) exists.
    #[error("bdev '{0}' already exists")]
    BdevExists(String),
    /// No bdev of this name (of the expected kind, for the delete RPCs).
    #[error("bdev '{0}' does not exist")]
    BdevNotFound(String),
    /// A bdev's geometry is not allowed (block size, block count).
    #[error("invalid bdev '{name}': {reason}")]
    BdevInvalid {
        /// Bdev name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The backing memory could not be allocated.
    #[error("cannot allocate {size_bytes} bytes for bdev '{name}'")]
    BdevNoMemory {
        /// Bdev name.
        name: String,
        /// Bytes asked for.
        size_bytes: u64,
    },
    /// The file behind an AIO bdev could not be used.
    #[error("bdev '{name}': cannot use '{filename}': {reason}")]
    BdevFile {
        /// Bdev name.
        name: String,
        /// The file.
        filename: String,
        /// What went wrong (open, O_DIRECT, size).
        reason: String,
    },
    /// The bdev is exported as a namespace and cannot be deleted.
    #[error("bdev '{bdev}' is in use by namespace {nsid} of {nqn}")]
    BdevInUse {
        /// Bdev name.
        bdev: String,
        /// Subsystem NQN.
        nqn: String,
        /// Namespace ID.
        nsid: u32,
    },
    /// A parameter has a value that is not allowed.
    #[error("invalid {param}: {reason}")]
    InvalidParam {
        /// The parameter's RPC name.
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A transport of this type was already created.
    #[error("transport type '{0}' already exists")]
    TransportExists(&'static str),
    /// No transport of this type has been created.
    #[error("transport type '{0}' does not exist (call nvmf_create_transport first)")]
    TransportNotFound(&'static str),
    /// A subsystem with this NQN exists.
    #[error("subsystem NQN '{0}' already exists")]
    SubsystemExists(String),
    /// No subsystem with this NQN.
    #[error("Subsystem with NQN '{0}' not found")]
    SubsystemNotFound(String),
    /// The operation is not allowed on the discovery subsystem.
    #[error("not allowed on the discovery subsystem: {0}")]
    DiscoverySubsystem(&'static str),
    /// The namespace could not be added.
    #[error("Unable to add namespace to {nqn}: {reason}")]
    NamespaceAdd {
        /// Subsystem NQN.
        nqn: String,
        /// What is wrong.
        reason: String,
    },
    /// No namespace with this ID in the subsystem.
    #[error("namespace {nsid} not found in {nqn}")]
    NamespaceNotFound {
        /// Subsystem NQN.
        nqn: String,
        /// Namespace ID.
        nsid: u32,
    },
    /// The subsystem already listens on this address.
    #[error("listener {addr} already exists on {nqn}")]
    ListenerExists {
        /// Subsystem NQN.
        nqn: String,
        /// The address, as trtype:traddr:trsvcid.
        addr: String,
    },
    /// The subsystem does not listen on this address.
    #[error("listener {addr} not found on {nqn}")]
    ListenerNotFound {
        /// Subsystem NQN.
        nqn: String,
        /// The address, as trtype:traddr:trsvcid.
        addr: String,
    },
    /// The host is already on the subsystem's allowed list.
    #[error("host {host} already allowed on {nqn}")]
    HostExists {
        /// Subsystem NQN.
        nqn: String,
        /// Host NQN.
        host: String,
    },
    /// The host is not on the subsystem's allowed list.
    #[error("host {host} not allowed on {nqn}")]
    HostNotFound {
        /// Subsystem NQN.
        nqn: String,
        /// Host NQN.
        host: String,
    },
    /// The data plane could not do what the configuration asked (open a listen socket).
    #[error("{0}")]
    Internal(String),
}

impl TargetError {
    /// The JSON-RPC error code this error is answered with (see the module doc).
    pub fn rpc_code(&self) -> i32 {
        match self {
            TargetError::BdevExists(_) => -libc_errno::EEXIST,
            TargetError::BdevNotFound(_) => -libc_errno::ENODEV,
            TargetError::BdevInvalid { .. } => -libc_errno::EINVAL,
            TargetError::BdevFile { .. } => -libc_errno::EINVAL,
            TargetError::BdevNoMemory { .. } => -libc_errno::ENOMEM,
            TargetError::BdevInUse { .. } => -libc_errno::EBUSY,
            TargetError::Internal(_) => JSONRPC_INTERNAL_ERROR,
            _ => JSONRPC_INVALID_PARAMS,
        }
    }
}

/// The errno values used above (Linux numbering, as SPDK sends them).
mod libc_errno {
    pub(super) const ENOMEM: i32 = 12;
    pub(super) const EBUSY: i32 = 16;
    pub(super) const EEXIST: i32 = 17;
    pub(super) const ENODEV: i32 = 19;
    pub(super) const EINVAL: i32 = 22;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdev_errors_map_to_negative_errno_and_config_errors_to_invalid_params() {
        assert_eq!(TargetError::BdevExists("Malloc0".into()).rpc_code(), -17);
        assert_eq!(TargetError::BdevNotFound("x".into()).rpc_code(), -19);
        assert_eq!(TargetError::SubsystemNotFound("nqn.x".into()).rpc_code(), -32602);
        assert_eq!(TargetError::Internal("listen failed".into()).rpc_code(), -32603);
    }
}
