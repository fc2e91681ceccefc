//! NVMe and NVMe-oF wire formats: submission and completion queue entries,
//! status codes, admin/IO/fabrics command layouts, identify structures, log
//! pages, NVMe/TCP PDUs and SGL descriptors.
//!
//! Owns bytes-on-the-wire only. It does no IO and keeps no state: parsers take
//! byte slices and return typed values or a [`WireError`], never panic.
//! Section numbers refer to NVMe Base 2.0c, NVMe-oF 1.1a and NVMe/TCP
//! Transport 1.0c.
#![warn(missing_docs, unreachable_pub)]

mod bytes;
pub mod cqe;
pub mod error;
pub mod fabrics;
pub mod features;
pub mod identify;
pub mod log;
pub mod opcode;
pub mod property;
pub mod sgl;
pub mod sqe;
pub mod status;
pub mod tcp;

pub use cqe::Cqe;
pub use error::WireError;
pub use fabrics::ConnectData;
pub use features::{AsyncEvent, NumberOfQueues};
pub use identify::{identify_sqe, IdentifyController, IdentifyNamespace, LbaFormat, NsIdDescriptor};
pub use log::{AnaGroupDescriptor, AnaState, DiscoveryLogEntry, DiscoveryLogHeader, GetLogPage};
pub use property::{Cap, Cc, Csts, Vs};
pub use sgl::SglDescriptor;
pub use sqe::Sqe;
pub use status::{Status, StatusCodeType};

/// The discovery subsystem's well-known NQN (NVMe-oF 1.1a §5).
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";
