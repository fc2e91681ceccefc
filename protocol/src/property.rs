//! Controller properties read and written with Property Get/Set over fabrics
//! (NVMe Base 2.0c §3.1.3, NVMe-oF 1.1a §3.3.3/3.3.4): offsets and typed views
//! of CAP, VS, CC and CSTS.

/// Property offsets (NVMe Base 2.0c Figure 35).
pub mod offset {
    /// Controller capabilities, 8 bytes.
    pub const CAP: u32 = 0x00;
    /// Version, 4 bytes.
    pub const VS: u32 = 0x08;
    /// Controller configuration, 4 bytes.
    pub const CC: u32 = 0x14;
    /// Controller status, 4 bytes.
    pub const CSTS: u32 = 0x1C;
    /// NVM subsystem reset, 4 bytes.
    pub const NSSR: u32 = 0x20;
}

/// The value written to NSSR to reset the NVM subsystem ("NVMe" in ASCII).
pub const NSSR_RESET_VALUE: u32 = 0x4E56_4D65;

/// Width in bytes of the property at `offset` (8 for CAP, 4 for the
/// others), or `None` for an offset this crate does not define.
pub fn property_size_bytes(offset: u32) -> Option<u8> {
    match offset {
        offset::CAP => Some(8),
        offset::VS | offset::CC | offset::CSTS | offset::NSSR => Some(4),
        _ => None,
    }
}

fn bits32(v: u32, lo: u32, width: u32) -> u32 {
    (v >> lo) & ((1u32 << width) - 1)
}

fn bits64(v: u64, lo: u32, width: u32) -> u64 {
    (v >> lo) & ((1u64 << width) - 1)
}

/// Controller capabilities (CAP, NVMe Base 2.0c Figure 36). Fields keep the
/// spec's encoding; the helper methods give plain units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cap {
    /// Maximum queue entries supported, 0's based (bits 15:0).
    pub mqes: u16,
    /// Contiguous queues required (bit 16).
    pub cqr: bool,
    /// Arbitration mechanisms supported (bits 18:17).
    pub ams: u8,
    /// Timeout to ready in 500 ms units (bits 31:24).
    pub to: u8,
    /// Doorbell stride (bits 35:32); 0 over fabrics.
    pub dstrd: u8,
    /// NVM subsystem reset supported (bit 36).
    pub nssrs: bool,
    /// Command sets supported (bits 44:37; bit 37 = NVM command set).
    pub css: u8,
    /// Boot partition support (bit 45).
    pub bps: bool,
    /// Memory page size minimum, 2^(12 + MPSMIN) bytes (bits 51:48).
    pub mpsmin: u8,
    /// Memory page size maximum, 2^(12 + MPSMAX) bytes (bits 55:52).
    pub mpsmax: u8,
}

/// CAP.CSS bit for the NVM command set.
pub const CAP_CSS_NVM: u8 = 0x01;
/// CAP.CSS bit for "no IO command set" (admin only, e.g. discovery controllers).
pub const CAP_CSS_NO_IO: u8 = 0x80;

impl Cap {
    /// Decodes the 64-bit property value.
    pub fn from_u64(v: u64) -> Self {
        Cap {
            mqes: bits64(v, 0, 16) as u16,
            cqr: bits64(v, 16, 1) != 0,
            ams: bits64(v, 17, 2) as u8,
            to: bits64(v, 24, 8) as u8,
            dstrd: bits64(v, 32, 4) as u8,
            nssrs: bits64(v, 36, 1) != 0,
            css: bits64(v, 37, 8) as u8,
            bps: bits64(v, 45, 1) != 0,
            mpsmin: bits64(v, 48, 4) as u8,
            mpsmax: bits64(v, 52, 4) as u8,
        }
    }

    /// Encodes to the 64-bit property value.
    pub fn to_u64(&self) -> u64 {
        u64::from(self.mqes)
            | (u64::from(self.cqr) << 16)
            | ((u64::from(self.ams) & 0x3) << 17)
            | (u64::from(self.to) << 24)
            | ((u64::from(self.dstrd) & 0xF) << 32)
            | (u64::from(self.nssrs) << 36)
            | (u64::from(self.css) << 37)
            | (u64::from(self.bps) << 45)
            | ((u64::from(self.mpsmin) & 0xF) << 48)
            | ((u64::from(self.mpsmax) & 0xF) << 52)
    }

    /// Largest queue size in entries (MQES + 1).
    pub fn max_queue_entries(&self) -> u32 {
        u32::from(self.mqes) + 1
    }

    /// Worst-case time from CC.EN change to CSTS.RDY change, in milliseconds.
    pub fn timeout_ms(&self) -> u32 {
        u32::from(self.to) * 500
    }

    /// Smallest memory page size in bytes.
    pub fn mpsmin_bytes(&self) -> u32 {
        1u32 << (12 + u32::from(self.mpsmin & 0xF))
    }

    /// Largest memory page size in bytes.
    pub fn mpsmax_bytes(&self) -> u32 {
        1u32 << (12 + u32::from(self.mpsmax & 0xF))
    }
}

/// Version (VS, NVMe Base 2.0c Figure 37).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vs {
    /// Major version (bits 31:16).
    pub mjr: u16,
    /// Minor version (bits 15:8).
    pub mnr: u8,
    /// Tertiary version (bits 7:0).
    pub ter: u8,
}

impl Vs {
    /// NVMe 1.3, what NVMe-oF 1.1 targets commonly report.
    pub const V1_3: Vs = Vs { mjr: 1, mnr: 3, ter: 0 };
    /// NVMe 2.0.
    pub const V2_0: Vs = Vs { mjr: 2, mnr: 0, ter: 0 };

    /// Decodes the 32-bit property value.
    pub fn from_u32(v: u32) -> Self {
        Vs { mjr: (v >> 16) as u16, mnr: (v >> 8) as u8, ter: v as u8 }
    }

    /// Encodes to the 32-bit property value.
    pub fn to_u32(&self) -> u32 {
        (u32::from(self.mjr) << 16) | (u32::from(self.mnr) << 8) | u32::from(self.ter)
    }
}

/// Shutdown notification written to CC.SHN (bits 15:14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutdownNotification {
    /// No notification.
    #[default]
    None,
    /// Normal shutdown.
    Normal,
    /// Abrupt shutdown.
    Abrupt,
    /// 11b, reserved.
    Reserved,
}

impl ShutdownNotification {
    fn from_bits(v: u32) -> Self {
        match v & 0x3 {
            0 => Self::None,
            1 => Self::Normal,
            2 => Self::Abrupt,
            _ => Self::Reserved,
        }
    }
    fn bits(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Normal => 1,
            Self::Abrupt => 2,
            Self::Reserved => 3,
        }
    }
}

/// Controller configuration (CC, NVMe Base 2.0c Figure 41).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cc {
    /// Enable (bit 0).
    pub en: bool,
    /// IO command set selected (bits 6:4; 0 = NVM).
    pub css: u8,
    /// Memory page size, 2^(12 + MPS) bytes (bits 10:7).
    pub mps: u8,
    /// Arbitration mechanism selected (bits 13:11).
    pub ams: u8,
    /// Shutdown notification (bits 15:14).
    pub shn: ShutdownNotification,
    /// IO submission queue entry size, log2 bytes (bits 19:16; 6 = 64 bytes).
    pub iosqes: u8,
    /// IO completion queue entry size, log2 bytes (bits 23:20; 4 = 16 bytes).
    pub iocqes: u8,
}

impl Cc {
    /// Decodes the 32-bit property value.
    pub fn from_u32(v: u32) -> Self {
        Cc {
            en: v & 1 != 0,
            css: bits32(v, 4, 3) as u8,
            mps: bits32(v, 7, 4) as u8,
            ams: bits32(v, 11, 3) as u8,
            shn: ShutdownNotification::from_bits(bits32(v, 14, 2)),
            iosqes: bits32(v, 16, 4) as u8,
            iocqes: bits32(v, 20, 4) as u8,
        }
    }

    /// Encodes to the 32-bit property value.
    pub fn to_u32(&self) -> u32 {
        u32::from(self.en)
            | ((u32::from(self.css) & 0x7) << 4)
            | ((u32::from(self.mps) & 0xF) << 7)
            | ((u32::from(self.ams) & 0x7) << 11)
            | (self.shn.bits() << 14)
            | ((u32::from(self.iosqes) & 0xF) << 16)
            | ((u32::from(self.iocqes) & 0xF) << 20)
    }

    /// The configuration a host writes to enable a controller: NVM command
    /// set, 4 KiB pages, round robin, 64-byte SQEs and 16-byte CQEs.
    pub fn enable_nvm() -> Self {
        Cc { en: true, css: 0, mps: 0, ams: 0, shn: ShutdownNotification::None, iosqes: 6, iocqes: 4 }
    }
}

/// Shutdown status reported in CSTS.SHST (bits 3:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutdownStatus {
    /// Normal operation.
    #[default]
    Normal,
    /// Shutdown processing occurring.
    Occurring,
    /// Shutdown processing complete.
    Complete,
    /// 11b, reserved.
    Reserved,
}

impl ShutdownStatus {
    fn from_bits(v: u32) -> Self {
        match v & 0x3 {
            0 => Self::Normal,
            1 => Self::Occurring,
            2 => Self::Complete,
            _ => Self::Reserved,
        }
    }
    fn bits(self) -> u32 {
        match self {
            Self::Normal => 0,
            Self::Occurring => 1,
            Self::Complete => 2,
            Self::Reserved => 3,
        }
    }
}

/// Controller status (CSTS, NVMe Base 2.0c Figure 42).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Csts {
    /// Ready (bit 0).
    pub rdy: bool,
    /// Controller fatal status (bit 1).
    pub cfs: bool,
    /// Shutdown status (bits 3:2).
    pub shst: ShutdownStatus,
    /// NVM subsystem reset occurred (bit 4).
    pub nssro: bool,
    /// Processing paused (bit 5).
    pub pp: bool,
}

impl Csts {
    /// Decodes the 32-bit property value.
    pub fn from_u32(v: u32) -> Self {
        Csts {
            rdy: v & 1 != 0,
            cfs: v & 2 != 0,
            shst: ShutdownStatus::from_bits(bits32(v, 2, 2)),
            nssro: v & (1 << 4) != 0,
            pp: v & (1 << 5) != 0,
        }
    }

    /// Encodes to the 32-bit property value.
    pub fn to_u32(&self) -> u32 {
        u32::from(self.rdy)
            | (u32::from(self.cfs) << 1)
            | (self.shst.bits() << 2)
            | (u32::from(self.nssro) << 4)
            | (u32::from(self.pp) << 5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_fields_sit_at_spec_bits_and_round_trip() {
        let cap =
            Cap { mqes: 127, cqr: true, ams: 0, to: 30, css: CAP_CSS_NVM, mpsmin: 0, mpsmax: 4, ..Default::default() };
        let v = cap.to_u64();
        assert_eq!(v & 0xFFFF, 127);
        assert_eq!((v >> 16) & 1, 1);
        assert_eq!((v >> 24) & 0xFF, 30);
        assert_eq!((v >> 37) & 0xFF, 1);
        assert_eq!((v >> 52) & 0xF, 4);
        assert_eq!(Cap::from_u64(v), cap);
        assert_eq!(cap.max_queue_entries(), 128);
        assert_eq!(cap.timeout_ms(), 15_000);
        assert_eq!(cap.mpsmin_bytes(), 4096);
        assert_eq!(cap.mpsmax_bytes(), 65536);
    }

    #[test]
    fn cap_decode_keeps_every_defined_bit() {
        // All defined CAP bits set: 15:0, 16, 18:17, 31:24, 35:32, 36, 44:37, 45, 51:48, 55:52.
        let v: u64 = 0x00FF_3FFF_FF07_FFFF;
        assert_eq!(Cap::from_u64(v).to_u64(), v);
    }

    #[test]
    fn cc_enable_and_shutdown_bits() {
        let cc = Cc::enable_nvm();
        assert_eq!(cc.to_u32(), 0x0046_0001);
        assert_eq!(Cc::from_u32(0x0046_0001), cc);
        let shn = Cc { shn: ShutdownNotification::Normal, ..cc };
        assert_eq!(shn.to_u32() >> 14 & 3, 1);
        assert_eq!(Cc::from_u32(0x0000_C000).shn, ShutdownNotification::Reserved);
        let all: u32 = 0x00FF_FFF1;
        assert_eq!(Cc::from_u32(all).to_u32(), all);
    }

    #[test]
    fn csts_ready_fatal_and_shutdown_status() {
        let c = Csts::from_u32(0b1011);
        assert!(c.rdy && c.cfs);
        assert_eq!(c.shst, ShutdownStatus::Complete);
        assert_eq!(c.to_u32(), 0b1011);
        assert_eq!(Csts::from_u32(0b0100).shst, ShutdownStatus::Occurring);
    }

    #[test]
    fn vs_and_property_sizes() {
        assert_eq!(Vs::V1_3.to_u32(), 0x0001_0300);
        assert_eq!(Vs::from_u32(0x0002_0000), Vs::V2_0);
        assert_eq!(property_size_bytes(offset::CAP), Some(8));
        assert_eq!(property_size_bytes(offset::CSTS), Some(4));
        assert_eq!(property_size_bytes(0x04), None);
    }
}
