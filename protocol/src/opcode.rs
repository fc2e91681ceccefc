//! Command opcodes (NVMe Base 2.0c §5, NVM Command Set 1.0c §3, NVMe-oF 1.1a §3.3).

/// Admin command opcodes.
pub mod admin {
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0A;
    /// Asynchronous Event Request.
    pub const ASYNC_EVENT_REQUEST: u8 = 0x0C;
    /// Keep Alive.
    pub const KEEP_ALIVE: u8 = 0x18;
    /// Fabrics command (the real type is in `fctype`).
    pub const FABRICS: u8 = 0x7F;
}

/// NVM command set IO opcodes.
pub mod io {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u8 = 0x08;
    /// Dataset Management (deallocate).
    pub const DATASET_MANAGEMENT: u8 = 0x09;
    /// Fabrics command on an IO queue (Connect).
    pub const FABRICS: u8 = 0x7F;
}

/// Fabrics command types, carried in SQE byte 4 (NVMe-oF 1.1a §3.3).
pub mod fctype {
    /// Property Set.
    pub const PROPERTY_SET: u8 = 0x00;
    /// Connect.
    pub const CONNECT: u8 = 0x01;
    /// Property Get.
    pub const PROPERTY_GET: u8 = 0x04;
    /// Authentication Send.
    pub const AUTH_SEND: u8 = 0x05;
    /// Authentication Receive.
    pub const AUTH_RECV: u8 = 0x06;
    /// Disconnect.
    pub const DISCONNECT: u8 = 0x08;
}

/// Whether data moves host to controller (bits 1:0 of the opcode = 01b),
/// controller to host (10b), or not at all (NVMe Base 2.0c Figure 88).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirection {
    /// No data phase.
    None,
    /// Host to controller (write-like).
    HostToController,
    /// Controller to host (read-like).
    ControllerToHost,
    /// Bidirectional; not used by any command we implement.
    Both,
}

impl DataDirection {
    /// The direction encoded in a (non-fabrics) opcode.
    pub fn of_opcode(opc: u8) -> Self {
        match opc & 0x3 {
            0 => DataDirection::None,
            1 => DataDirection::HostToController,
            2 => DataDirection::ControllerToHost,
            _ => DataDirection::Both,
        }
    }
}
