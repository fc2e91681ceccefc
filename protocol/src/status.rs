//! Completion status: type, code and the retry bits (NVMe Base 2.0c §4.6.1).

/// Status code type (SCT, status field bits 11:9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StatusCodeType {
    /// Generic command status.
    Generic = 0,
    /// Command specific status.
    CommandSpecific = 1,
    /// Media and data integrity errors.
    MediaError = 2,
    /// Path related status.
    Path = 3,
    /// Reserved values 4..=6.
    Reserved = 4,
    /// Vendor specific.
    VendorSpecific = 7,
}

impl StatusCodeType {
    fn from_bits(v: u8) -> Self {
        match v & 7 {
            0 => Self::Generic,
            1 => Self::CommandSpecific,
            2 => Self::MediaError,
            3 => Self::Path,
            7 => Self::VendorSpecific,
            _ => Self::Reserved,
        }
    }
}

/// Generic command status codes (SCT 0, NVMe Base 2.0c Figure 100; NVM 1.0c Figure 18).
pub mod generic {
    /// Successful completion.
    pub const SUCCESS: u8 = 0x00;
    /// Invalid command opcode.
    pub const INVALID_OPCODE: u8 = 0x01;
    /// Invalid field in command.
    pub const INVALID_FIELD: u8 = 0x02;
    /// Command ID conflict.
    pub const COMMAND_ID_CONFLICT: u8 = 0x03;
    /// Data transfer error.
    pub const DATA_TRANSFER_ERROR: u8 = 0x04;
    /// Internal error.
    pub const INTERNAL_ERROR: u8 = 0x06;
    /// Command abort requested.
    pub const ABORT_REQUESTED: u8 = 0x07;
    /// Command aborted due to SQ deletion.
    pub const ABORTED_SQ_DELETION: u8 = 0x08;
    /// Invalid namespace or format.
    pub const INVALID_NAMESPACE: u8 = 0x0B;
    /// Command sequence error.
    pub const COMMAND_SEQUENCE_ERROR: u8 = 0x0C;
    /// Invalid SGL segment descriptor.
    pub const INVALID_SGL_SEGMENT: u8 = 0x0D;
    /// Data SGL length invalid.
    pub const DATA_SGL_LENGTH_INVALID: u8 = 0x0F;
    /// SGL descriptor type invalid.
    pub const SGL_DESCRIPTOR_TYPE_INVALID: u8 = 0x11;
    /// SGL offset invalid.
    pub const SGL_OFFSET_INVALID: u8 = 0x16;
    /// Keep Alive Timer expired.
    pub const KEEP_ALIVE_EXPIRED: u8 = 0x19;
    /// Host identifier inconsistent format.
    pub const HOST_ID_INCONSISTENT: u8 = 0x18;
    /// LBA out of range.
    pub const LBA_OUT_OF_RANGE: u8 = 0x80;
    /// Capacity exceeded.
    pub const CAPACITY_EXCEEDED: u8 = 0x81;
    /// Namespace not ready.
    pub const NAMESPACE_NOT_READY: u8 = 0x82;
}

/// Command specific status codes (SCT 1) that we produce or act on.
pub mod command_specific {
    /// Invalid queue identifier.
    pub const INVALID_QUEUE_IDENTIFIER: u8 = 0x01;
    /// Invalid queue size.
    pub const INVALID_QUEUE_SIZE: u8 = 0x02;
    /// Asynchronous event request limit exceeded.
    pub const AER_LIMIT_EXCEEDED: u8 = 0x05;
    /// Invalid log page.
    pub const INVALID_LOG_PAGE: u8 = 0x09;
    /// Feature identifier not saveable.
    pub const FEATURE_NOT_SAVEABLE: u8 = 0x0D;
    /// Feature not changeable.
    pub const FEATURE_NOT_CHANGEABLE: u8 = 0x0E;
    /// Fabrics Connect: incompatible format (NVMe-oF 1.1a Figure 21).
    pub const CONNECT_INCOMPATIBLE_FORMAT: u8 = 0x80;
    /// Fabrics Connect: controller busy.
    pub const CONNECT_CONTROLLER_BUSY: u8 = 0x81;
    /// Fabrics Connect: invalid parameters (IATTR/IPO in dword 0).
    pub const CONNECT_INVALID_PARAMETERS: u8 = 0x82;
    /// Fabrics Connect: restart discovery.
    pub const CONNECT_RESTART_DISCOVERY: u8 = 0x83;
    /// Fabrics Connect: invalid host.
    pub const CONNECT_INVALID_HOST: u8 = 0x84;
}

/// Path related status codes (SCT 3, NVMe Base 2.0c Figure 103).
pub mod path {
    /// Internal path error.
    pub const INTERNAL_PATH_ERROR: u8 = 0x00;
    /// Asymmetric access persistent loss.
    pub const ANA_PERSISTENT_LOSS: u8 = 0x01;
    /// Asymmetric access inaccessible.
    pub const ANA_INACCESSIBLE: u8 = 0x02;
    /// Asymmetric access transition.
    pub const ANA_TRANSITION: u8 = 0x03;
    /// Controller pathing error.
    pub const CONTROLLER_PATHING_ERROR: u8 = 0x60;
    /// Host pathing error: the host synthesises this when a transport dies under a command.
    pub const HOST_PATHING_ERROR: u8 = 0x70;
    /// Command aborted by host.
    pub const ABORTED_BY_HOST: u8 = 0x71;
}

/// A decoded status field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Status code type.
    pub sct: StatusCodeType,
    /// Status code.
    pub sc: u8,
    /// Command retry delay index (CRD).
    pub crd: u8,
    /// More information in the error log.
    pub more: bool,
    /// Do not retry.
    pub dnr: bool,
}

impl Status {
    /// Successful completion.
    pub const SUCCESS: Status =
        Status { sct: StatusCodeType::Generic, sc: generic::SUCCESS, crd: 0, more: false, dnr: false };

    /// A generic (SCT 0) status.
    pub const fn generic(sc: u8) -> Self {
        Status { sct: StatusCodeType::Generic, sc, crd: 0, more: false, dnr: false }
    }

    /// A command specific (SCT 1) status.
    pub const fn command_specific(sc: u8) -> Self {
        Status { sct: StatusCodeType::CommandSpecific, sc, crd: 0, more: false, dnr: false }
    }

    /// A path related (SCT 3) status.
    pub const fn path(sc: u8) -> Self {
        Status { sct: StatusCodeType::Path, sc, crd: 0, more: false, dnr: false }
    }

    /// The same status with Do Not Retry set.
    pub const fn with_dnr(mut self) -> Self {
        self.dnr = true;
        self
    }

    /// True for successful completion.
    pub fn is_success(&self) -> bool {
        self.sct == StatusCodeType::Generic && self.sc == generic::SUCCESS
    }

    /// True when another path might succeed where this one failed: path
    /// statuses, namespace-not-ready and aborts from queue deletion — unless
    /// the controller set DNR.
    pub fn is_path_error(&self) -> bool {
        if self.dnr {
            return false;
        }
        match self.sct {
            StatusCodeType::Path => true,
            StatusCodeType::Generic => {
                matches!(self.sc, generic::NAMESPACE_NOT_READY | generic::ABORTED_SQ_DELETION | generic::INTERNAL_ERROR)
            }
            _ => false,
        }
    }

    /// Decodes the 16-bit status field of a CQE (bit 0 is the phase tag).
    pub fn from_field(f: u16) -> Self {
        Status {
            sc: ((f >> 1) & 0xFF) as u8,
            sct: StatusCodeType::from_bits(((f >> 9) & 0x7) as u8),
            crd: ((f >> 12) & 0x3) as u8,
            more: f & (1 << 14) != 0,
            dnr: f & (1 << 15) != 0,
        }
    }

    /// Encodes to the 16-bit status field, phase tag 0.
    pub fn to_field(&self) -> u16 {
        (u16::from(self.sc) << 1)
            | ((self.sct as u16 & 0x7) << 9)
            | ((u16::from(self.crd) & 0x3) << 12)
            | (u16::from(self.more) << 14)
            | (u16::from(self.dnr) << 15)
    }
}

impl Status {
    /// The status's name in the specification (NVMe Base 2.0c Figures 100-103,
    /// NVMe-oF 1.1a Figure 21 for the Fabrics command-specific codes), `None`
    /// for codes without one here. Command-specific codes 80h-84h are named as
    /// the Fabrics Connect command defines them, the only command-specific
    /// codes in that range this stack produces or receives.
    pub fn name(&self) -> Option<&'static str> {
        let name = match (self.sct, self.sc) {
            (StatusCodeType::Generic, sc) => match sc {
                0x00 => "Successful Completion",
                0x01 => "Invalid Command Opcode",
                0x02 => "Invalid Field in Command",
                0x03 => "Command ID Conflict",
                0x04 => "Data Transfer Error",
                0x05 => "Commands Aborted due to Power Loss Notification",
                0x06 => "Internal Error",
                0x07 => "Command Abort Requested",
                0x08 => "Command Aborted due to SQ Deletion",
                0x09 => "Command Aborted due to Failed Fused Command",
                0x0A => "Command Aborted due to Missing Fused Command",
                0x0B => "Invalid Namespace or Format",
                0x0C => "Command Sequence Error",
                0x0D => "Invalid SGL Segment Descriptor",
                0x0E => "Invalid Number of SGL Descriptors",
                0x0F => "Data SGL Length Invalid",
                0x10 => "Metadata SGL Length Invalid",
                0x11 => "SGL Descriptor Type Invalid",
                0x12 => "Invalid Use of Controller Memory Buffer",
                0x13 => "PRP Offset Invalid",
                0x14 => "Atomic Write Unit Exceeded",
                0x15 => "Operation Denied",
                0x16 => "SGL Offset Invalid",
                0x18 => "Host Identifier Inconsistent Format",
                0x19 => "Keep Alive Timer Expired",
                0x1A => "Keep Alive Timeout Invalid",
                0x1B => "Command Aborted due to Preempt and Abort",
                0x1C => "Sanitize Failed",
                0x1D => "Sanitize In Progress",
                0x1E => "SGL Data Block Granularity Invalid",
                0x1F => "Command Not Supported for Queue in CMB",
                0x20 => "Namespace is Write Protected",
                0x21 => "Command Interrupted",
                0x22 => "Transient Transport Error",
                0x80 => "LBA Out of Range",
                0x81 => "Capacity Exceeded",
                0x82 => "Namespace Not Ready",
                0x83 => "Reservation Conflict",
                0x84 => "Format In Progress",
                _ => return None,
            },
            (StatusCodeType::CommandSpecific, sc) => match sc {
                0x00 => "Completion Queue Invalid",
                0x01 => "Invalid Queue Identifier",
                0x02 => "Invalid Queue Size",
                0x03 => "Abort Command Limit Exceeded",
                0x05 => "Asynchronous Event Request Limit Exceeded",
                0x06 => "Invalid Firmware Slot",
                0x07 => "Invalid Firmware Image",
                0x08 => "Invalid Interrupt Vector",
                0x09 => "Invalid Log Page",
                0x0A => "Invalid Format",
                0x0B => "Firmware Activation Requires Conventional Reset",
                0x0C => "Invalid Queue Deletion",
                0x0D => "Feature Identifier Not Saveable",
                0x0E => "Feature Not Changeable",
                0x0F => "Feature Not Namespace Specific",
                0x80 => "Connect Incompatible Format",
                0x81 => "Connect Controller Busy",
                0x82 => "Connect Invalid Parameters",
                0x83 => "Connect Restart Discovery",
                0x84 => "Connect Invalid Host",
                0x90 => "Discover Restart",
                0x91 => "Authentication Required",
                _ => return None,
            },
            (StatusCodeType::MediaError, sc) => match sc {
                0x80 => "Write Fault",
                0x81 => "Unrecovered Read Error",
                0x82 => "End-to-end Guard Check Error",
                0x83 => "End-to-end Application Tag Check Error",
                0x84 => "End-to-end Reference Tag Check Error",
                0x85 => "Compare Failure",
                0x86 => "Access Denied",
                0x87 => "Deallocated or Unwritten Logical Block",
                _ => return None,
            },
            (StatusCodeType::Path, sc) => match sc {
                0x00 => "Internal Path Error",
                0x01 => "Asymmetric Access Persistent Loss",
                0x02 => "Asymmetric Access Inaccessible",
                0x03 => "Asymmetric Access Transition",
                0x60 => "Controller Pathing Error",
                0x70 => "Host Pathing Error",
                0x71 => "Command Aborted By Host",
                _ => return None,
            },
            (StatusCodeType::Reserved | StatusCodeType::VendorSpecific, _) => return None,
        };
        Some(name)
    }
}

impl StatusCodeType {
    /// How the specification calls the type, for codes without a name.
    fn label(self) -> &'static str {
        match self {
            StatusCodeType::Generic => "Generic Command Status",
            StatusCodeType::CommandSpecific => "Command Specific Status",
            StatusCodeType::MediaError => "Media and Data Integrity Error",
            StatusCodeType::Path => "Path Related Status",
            StatusCodeType::Reserved => "Reserved Status Code Type",
            StatusCodeType::VendorSpecific => "Vendor Specific Status",
        }
    }
}

/// The spec's name, then the numbers in brackets:
/// `Connect Invalid Parameters (sct 1, sc 0x82, dnr)`.
impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name)?,
            None => write!(f, "{} {:#04x}", self.sct.label(), self.sc)?,
        }
        write!(f, " (sct {}, sc {:#04x}{})", self.sct as u8, self.sc, if self.dnr { ", dnr" } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_field_round_trips() {
        for s in [
            Status::SUCCESS,
            Status::generic(generic::LBA_OUT_OF_RANGE).with_dnr(),
            Status::path(path::ANA_INACCESSIBLE),
            Status::command_specific(command_specific::CONNECT_INVALID_PARAMETERS),
        ] {
            assert_eq!(Status::from_field(s.to_field()), s);
        }
    }

    #[test]
    fn media_and_field_errors_are_not_path_errors() {
        assert!(Status::path(path::ANA_TRANSITION).is_path_error());
        assert!(!Status::path(path::ANA_TRANSITION).with_dnr().is_path_error());
        assert!(!Status::generic(generic::LBA_OUT_OF_RANGE).is_path_error());
        assert!(!Status::generic(generic::INVALID_FIELD).is_path_error());
    }

    #[test]
    fn statuses_print_their_spec_name_then_the_numbers() {
        let connect = Status::command_specific(command_specific::CONNECT_INVALID_PARAMETERS).with_dnr();
        assert_eq!(connect.to_string(), "Connect Invalid Parameters (sct 1, sc 0x82, dnr)");
        assert_eq!(Status::generic(generic::INVALID_FIELD).to_string(), "Invalid Field in Command (sct 0, sc 0x02)");
        assert_eq!(Status::path(path::ANA_INACCESSIBLE).to_string(), "Asymmetric Access Inaccessible (sct 3, sc 0x02)");
        assert_eq!(Status::generic(0x7f).to_string(), "Generic Command Status 0x7f (sct 0, sc 0x7f)");
        let vendor = Status::from_field(7 << 9 | 0x10 << 1);
        assert_eq!(vendor.to_string(), "Vendor Specific Status 0x10 (sct 7, sc 0x10)");
        for sc in [generic::LBA_OUT_OF_RANGE, generic::INTERNAL_ERROR, generic::DATA_TRANSFER_ERROR] {
            assert!(Status::generic(sc).name().is_some(), "{sc:#x}");
        }
    }
}
