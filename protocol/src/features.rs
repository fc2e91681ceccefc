//! Set / Get Features (NVMe Base 2.0c §5.27, §5.15) and Asynchronous Event
//! Request completions (§5.2).

use crate::opcode::admin;
use crate::sqe::PSDT_SGL_MPTR_CONTIG;
use crate::Sqe;

/// Feature identifiers (NVMe Base 2.0c Figure 317).
pub mod fid {
    /// Arbitration.
    pub const ARBITRATION: u8 = 0x01;
    /// Power management.
    pub const POWER_MANAGEMENT: u8 = 0x02;
    /// Temperature threshold.
    pub const TEMPERATURE_THRESHOLD: u8 = 0x04;
    /// Error recovery.
    pub const ERROR_RECOVERY: u8 = 0x05;
    /// Number of queues.
    pub const NUMBER_OF_QUEUES: u8 = 0x07;
    /// Interrupt coalescing.
    pub const INTERRUPT_COALESCING: u8 = 0x08;
    /// Asynchronous event configuration.
    pub const ASYNC_EVENT_CONFIG: u8 = 0x0B;
    /// Keep alive timer.
    pub const KEEP_ALIVE_TIMER: u8 = 0x0F;
    /// Host identifier.
    pub const HOST_IDENTIFIER: u8 = 0x81;
}

/// Get Features select field (CDW10 bits 10:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureSelect {
    /// The current value.
    #[default]
    Current,
    /// The default value.
    Default,
    /// The saved value.
    Saved,
    /// The feature's capabilities.
    SupportedCapabilities,
    /// 100b..111b, reserved.
    Reserved(u8),
}

impl FeatureSelect {
    /// Decodes SEL.
    pub fn from_bits(v: u8) -> Self {
        match v & 0x7 {
            0 => Self::Current,
            1 => Self::Default,
            2 => Self::Saved,
            3 => Self::SupportedCapabilities,
            r => Self::Reserved(r),
        }
    }
    /// Encodes SEL.
    pub fn bits(self) -> u8 {
        match self {
            Self::Current => 0,
            Self::Default => 1,
            Self::Saved => 2,
            Self::SupportedCapabilities => 3,
            Self::Reserved(r) => r & 0x7,
        }
    }
}

/// A Set Features command for `fid` with feature-specific `cdw11`; `save`
/// sets SV (CDW10 bit 31).
pub fn set_features_sqe(fid: u8, cdw11: u32, save: bool) -> Sqe {
    Sqe {
        opc: admin::SET_FEATURES,
        flags: PSDT_SGL_MPTR_CONTIG,
        cdw10: u32::from(fid) | (u32::from(save) << 31),
        cdw11,
        ..Default::default()
    }
}

/// A Get Features command for `fid` with select `sel`.
pub fn get_features_sqe(fid: u8, sel: FeatureSelect) -> Sqe {
    Sqe {
        opc: admin::GET_FEATURES,
        flags: PSDT_SGL_MPTR_CONTIG,
        cdw10: u32::from(fid) | (u32::from(sel.bits()) << 8),
        ..Default::default()
    }
}

/// The feature identifier of a Set/Get Features command (CDW10 bits 7:0).
pub fn features_fid(sqe: &Sqe) -> u8 {
    sqe.cdw10 as u8
}

/// Set Features: the save bit (CDW10 bit 31).
pub fn set_features_save(sqe: &Sqe) -> bool {
    sqe.cdw10 & (1 << 31) != 0
}

/// Get Features: the select field (CDW10 bits 10:8).
pub fn get_features_select(sqe: &Sqe) -> FeatureSelect {
    FeatureSelect::from_bits((sqe.cdw10 >> 8) as u8)
}

/// Number of Queues (FID 07h): counts of IO submission and completion
/// queues, excluding the admin queue. Held as counts; the wire form (CDW11
/// of the command and dword 0 of its completion) is 0's based, NSQR/NSQA in
/// bits 15:0 and NCQR/NCQA in bits 31:16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberOfQueues {
    /// IO submission queues (1..=65535).
    pub nsq: u32,
    /// IO completion queues (1..=65535).
    pub ncq: u32,
}

impl NumberOfQueues {
    /// Decodes CDW11 or completion dword 0.
    pub fn from_dword(v: u32) -> Self {
        NumberOfQueues { nsq: (v & 0xFFFF) + 1, ncq: (v >> 16) + 1 }
    }

    /// Encodes to CDW11 or completion dword 0; counts are clamped to 1..=65536
    /// (65535 in the 0's based field is reserved on requests; callers keep within 65535).
    pub fn to_dword(&self) -> u32 {
        let z = |n: u32| n.clamp(1, 0x1_0000) - 1;
        z(self.nsq) | (z(self.ncq) << 16)
    }
}

/// Keep Alive Timer (FID 0Fh) CDW11: KATO in milliseconds.
pub fn keep_alive_cdw11(kato_ms: u32) -> u32 {
    kato_ms
}

/// Get Features select 011b (Supported Capabilities): dword 0 bits (NVMe Base 2.0c §5.15.2).
pub mod feature_capabilities {
    /// The feature is saveable.
    pub const SAVEABLE: u32 = 1 << 0;
    /// The feature is namespace specific.
    pub const NAMESPACE_SPECIFIC: u32 = 1 << 1;
    /// The feature is changeable.
    pub const CHANGEABLE: u32 = 1 << 2;
}

/// Threshold Temperature Select values (TMPSEL, Temperature Threshold CDW11 bits 19:16).
pub mod tmpsel {
    /// Composite Temperature.
    pub const COMPOSITE: u8 = 0x0;
    /// Temperature Sensor 1 (sensors 1..8 are 1h..8h).
    pub const SENSOR_1: u8 = 0x1;
    /// Temperature Sensor 8.
    pub const SENSOR_8: u8 = 0x8;
    /// All implemented temperature sensors (Set Features only).
    pub const ALL: u8 = 0xF;
}

/// Threshold Type Select (THSEL, Temperature Threshold CDW11 bits 21:20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdType {
    /// 00b: over temperature threshold.
    Over,
    /// 01b: under temperature threshold.
    Under,
    /// 10b, 11b: reserved.
    Reserved(u8),
}

/// Temperature Threshold (FID 04h) CDW11 of Set Features, and the dword 0 of
/// Get Features (NVMe Base 2.0c §5.27.1.3): TMPTH (bits 15:0,
/// kelvin), TMPSEL (bits 19:16), THSEL (bits 21:20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemperatureThreshold {
    /// Temperature threshold in kelvin (TMPTH).
    pub tmpth: u16,
    /// Threshold temperature select ([`tmpsel`]).
    pub tmpsel: u8,
    /// Threshold type select.
    pub thsel: ThresholdType,
}

impl TemperatureThreshold {
    /// Decodes CDW11 (bits 31:22 are ignored: reserved, or the 2.0 hysteresis field we do not implement).
    pub fn from_dword(v: u32) -> Self {
        let thsel = match (v >> 20) & 0x3 {
            0 => ThresholdType::Over,
            1 => ThresholdType::Under,
            r => ThresholdType::Reserved(r as u8),
        };
        TemperatureThreshold { tmpth: v as u16, tmpsel: ((v >> 16) & 0xF) as u8, thsel }
    }

    /// Encodes to CDW11 / completion dword 0.
    pub fn to_dword(&self) -> u32 {
        let thsel = match self.thsel {
            ThresholdType::Over => 0,
            ThresholdType::Under => 1,
            ThresholdType::Reserved(r) => u32::from(r & 0x3),
        };
        u32::from(self.tmpth) | (u32::from(self.tmpsel & 0xF) << 16) | (thsel << 20)
    }
}

/// Error Recovery (FID 05h) CDW11 of Set Features, and the dword 0 of Get
/// Features (NVMe Base 2.0c §5.27.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorRecovery {
    /// Time limited error recovery, in 100 ms units (TLER, bits 15:0; 0 = no timeout).
    pub tler: u16,
    /// Deallocated or unwritten logical block error enable (DULBE, bit 16).
    pub dulbe: bool,
}

impl ErrorRecovery {
    /// Decodes CDW11 (bits 31:17 are reserved).
    pub fn from_dword(v: u32) -> Self {
        ErrorRecovery { tler: v as u16, dulbe: v & (1 << 16) != 0 }
    }

    /// Encodes to CDW11 / completion dword 0.
    pub fn to_dword(&self) -> u32 {
        u32::from(self.tler) | (u32::from(self.dulbe) << 16)
    }
}

/// Asynchronous Event Configuration (FID 0Bh) CDW11 bits (NVMe Base 2.0c Figure 329).
pub mod aen_config {
    /// Bits 7:0: SMART / health critical warnings to report.
    pub const SMART_CRITICAL_WARNINGS: u32 = 0xFF;
    /// Namespace attribute notices.
    pub const NS_ATTRIBUTE_NOTICES: u32 = 1 << 8;
    /// Firmware activation notices.
    pub const FIRMWARE_ACTIVATION_NOTICES: u32 = 1 << 9;
    /// Telemetry log notices.
    pub const TELEMETRY_LOG_NOTICES: u32 = 1 << 10;
    /// ANA change notices.
    pub const ANA_CHANGE_NOTICES: u32 = 1 << 11;
    /// Predictable latency event aggregate log change notices.
    pub const PLEA_NOTICES: u32 = 1 << 12;
    /// LBA status information notices.
    pub const LBA_STATUS_NOTICES: u32 = 1 << 13;
    /// Endurance group event aggregate log change notices.
    pub const EGEA_NOTICES: u32 = 1 << 14;
    /// Normal NVM subsystem shutdown notices.
    pub const NORMAL_SHUTDOWN_NOTICES: u32 = 1 << 15;
    /// Discovery log page change notices (discovery controllers).
    pub const DISCOVERY_LOG_CHANGE_NOTICES: u32 = 1 << 31;
}

/// Host Identifier (FID 81h) CDW11 bit 0: EXHID, a 128-bit host identifier.
pub const HOST_ID_EXHID: u32 = 1;

/// Arbitration (FID 01h) CDW11: burst (2:0) and low/medium/high priority weights.
pub fn arbitration_cdw11(ab: u8, lpw: u8, mpw: u8, hpw: u8) -> u32 {
    u32::from(ab & 0x7) | (u32::from(lpw) << 8) | (u32::from(mpw) << 16) | (u32::from(hpw) << 24)
}

/// Asynchronous event types (completion dword 0 bits 2:0, NVMe Base 2.0c Figure 146).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncEventType {
    /// Error status.
    Error,
    /// SMART / health status.
    Smart,
    /// Notice.
    Notice,
    /// Immediate (2.0).
    Immediate,
    /// One-shot (2.0).
    OneShot,
    /// IO command set specific status.
    IoCommandSetSpecific,
    /// Vendor specific.
    VendorSpecific,
    /// Value 5 reserved.
    Reserved,
}

impl AsyncEventType {
    fn from_bits(v: u32) -> Self {
        match v & 0x7 {
            0 => Self::Error,
            1 => Self::Smart,
            2 => Self::Notice,
            3 => Self::Immediate,
            4 => Self::OneShot,
            6 => Self::IoCommandSetSpecific,
            7 => Self::VendorSpecific,
            _ => Self::Reserved,
        }
    }
    fn bits(self) -> u32 {
        match self {
            Self::Error => 0,
            Self::Smart => 1,
            Self::Notice => 2,
            Self::Immediate => 3,
            Self::OneShot => 4,
            Self::Reserved => 5,
            Self::IoCommandSetSpecific => 6,
            Self::VendorSpecific => 7,
        }
    }
}

/// Asynchronous event information values for [`AsyncEventType::Notice`] (Figure 150).
pub mod notice {
    /// Namespace attribute changed (read the changed namespace list, LID 04h).
    pub const NS_ATTRIBUTE_CHANGED: u8 = 0x00;
    /// Firmware activation starting.
    pub const FIRMWARE_ACTIVATION_STARTING: u8 = 0x01;
    /// Telemetry log changed.
    pub const TELEMETRY_LOG_CHANGED: u8 = 0x02;
    /// ANA change (read the ANA log, LID 0Ch).
    pub const ANA_CHANGE: u8 = 0x03;
    /// Discovery log page change (LID 70h).
    pub const DISCOVERY_LOG_CHANGE: u8 = 0xF0;
}

/// An Asynchronous Event Request completion's dword 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncEvent {
    /// Event type (bits 2:0).
    pub event_type: AsyncEventType,
    /// Event information (bits 15:8).
    pub info: u8,
    /// Log page to read to clear the event (bits 23:16).
    pub log_page_id: u8,
}

impl AsyncEvent {
    /// Decodes completion dword 0.
    pub fn from_dw0(dw0: u32) -> Self {
        AsyncEvent {
            event_type: AsyncEventType::from_bits(dw0),
            info: (dw0 >> 8) as u8,
            log_page_id: (dw0 >> 16) as u8,
        }
    }

    /// Encodes to completion dword 0.
    pub fn to_dw0(&self) -> u32 {
        self.event_type.bits() | (u32::from(self.info) << 8) | (u32::from(self.log_page_id) << 16)
    }

    /// The notice a controller sends when an ANA group changed state.
    pub fn ana_change() -> Self {
        AsyncEvent { event_type: AsyncEventType::Notice, info: notice::ANA_CHANGE, log_page_id: crate::log::lid::ANA }
    }

    /// The notice a controller sends when namespaces were added, removed or resized.
    pub fn ns_attribute_changed() -> Self {
        AsyncEvent {
            event_type: AsyncEventType::Notice,
            info: notice::NS_ATTRIBUTE_CHANGED,
            log_page_id: crate::log::lid::CHANGED_NS_LIST,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_get_features_fields_sit_at_spec_bits() {
        let s = set_features_sqe(fid::NUMBER_OF_QUEUES, NumberOfQueues { nsq: 4, ncq: 4 }.to_dword(), true);
        let b = s.to_bytes();
        assert_eq!(b[0], 0x09);
        assert_eq!(b[40], 0x07);
        assert_eq!(b[43] & 0x80, 0x80);
        assert_eq!(&b[44..48], &[3, 0, 3, 0]);
        assert!(set_features_save(&s));
        assert_eq!(features_fid(&s), fid::NUMBER_OF_QUEUES);
        let g = get_features_sqe(fid::KEEP_ALIVE_TIMER, FeatureSelect::Saved);
        assert_eq!(g.opc, 0x0A);
        assert_eq!(g.cdw10, 0x0000_020F);
        assert_eq!(get_features_select(&g), FeatureSelect::Saved);
        assert_eq!(FeatureSelect::from_bits(5), FeatureSelect::Reserved(5));
    }

    #[test]
    fn number_of_queues_is_zeros_based_both_ways() {
        let n = NumberOfQueues { nsq: 8, ncq: 16 };
        assert_eq!(n.to_dword(), 0x000F_0007);
        assert_eq!(NumberOfQueues::from_dword(0x000F_0007), n);
        assert_eq!(NumberOfQueues::from_dword(0xFFFF_FFFF), NumberOfQueues { nsq: 65536, ncq: 65536 });
        assert_eq!(NumberOfQueues { nsq: 0, ncq: 100_000 }.to_dword(), 0xFFFF_0000);
        assert_eq!(keep_alive_cdw11(10_000), 10_000);
        assert_eq!(arbitration_cdw11(7, 1, 2, 3), 0x0302_0107);
    }

    #[test]
    fn temperature_threshold_and_error_recovery_sit_at_spec_bits() {
        let t = TemperatureThreshold::from_dword(0x0011_0157);
        assert_eq!(t, TemperatureThreshold { tmpth: 0x157, tmpsel: 1, thsel: ThresholdType::Under });
        assert_eq!(t.to_dword(), 0x0011_0157);
        assert_eq!(TemperatureThreshold::from_dword(0x002F_0000).thsel, ThresholdType::Reserved(2));
        assert_eq!(TemperatureThreshold::from_dword(0x002F_0000).tmpsel, tmpsel::ALL);
        // Bits 31:22 are not part of the value.
        assert_eq!(TemperatureThreshold::from_dword(0xFFC0_FFFF).to_dword(), 0x0000_FFFF);
        let e = ErrorRecovery::from_dword(0x0001_0032);
        assert_eq!(e, ErrorRecovery { tler: 50, dulbe: true });
        assert_eq!(e.to_dword(), 0x0001_0032);
        assert_eq!(ErrorRecovery::from_dword(0xFFFE_0000), ErrorRecovery::default());
        assert_eq!(fid::TEMPERATURE_THRESHOLD, 0x04);
        assert_eq!(fid::ERROR_RECOVERY, 0x05);
    }

    #[test]
    fn async_event_dword0_round_trips() {
        let ev = AsyncEvent::ana_change();
        assert_eq!(ev.to_dw0(), 0x000C_0302);
        assert_eq!(AsyncEvent::from_dw0(0x000C_0302), ev);
        assert_eq!(AsyncEvent::ns_attribute_changed().to_dw0(), 0x0004_0002);
        let smart = AsyncEvent::from_dw0(0x0002_0101);
        assert_eq!(smart.event_type, AsyncEventType::Smart);
        assert_eq!(smart.info, 1);
        assert_eq!(AsyncEvent::from_dw0(5).event_type, AsyncEventType::Reserved);
        for dw0 in [0u32, 0x00FF_FF07, 0x0070_F002] {
            assert_eq!(AsyncEvent::from_dw0(dw0).to_dw0(), dw0);
        }
        assert_eq!(aen_config::ANA_CHANGE_NOTICES, 0x800);
    }
}
