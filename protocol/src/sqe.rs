//! The 64-byte submission queue entry (NVMe Base 2.0c §4.2) and the fabrics
//! command views laid over it (NVMe-oF 1.1a §3.3).

use crate::bytes::le_array;
use crate::opcode::{self, fctype, DataDirection};
use crate::WireError;

/// A submission queue entry, field for field as on the wire.
///
/// Fabrics commands reuse the same 64 bytes with other meanings
/// (`fctype` in byte 4, Connect's QID at byte 42 and so on); the accessors
/// below read those views instead of a second struct, so a capsule is parsed
/// once.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Sqe {
    /// Opcode.
    pub opc: u8,
    /// FUSE (bits 1:0) and PSDT (bits 7:6: 01b/10b = SGL, required over fabrics).
    pub flags: u8,
    /// Command identifier.
    pub cid: u16,
    /// Namespace identifier (fabrics: byte 4 is `fctype`).
    pub nsid: u32,
    /// Command dword 2.
    pub cdw2: u32,
    /// Command dword 3.
    pub cdw3: u32,
    /// Metadata pointer.
    pub mptr: u64,
    /// Data pointer: over fabrics, SGL descriptor 1 (16 bytes).
    pub dptr: [u8; 16],
    /// Command dword 10.
    pub cdw10: u32,
    /// Command dword 11.
    pub cdw11: u32,
    /// Command dword 12.
    pub cdw12: u32,
    /// Command dword 13.
    pub cdw13: u32,
    /// Command dword 14.
    pub cdw14: u32,
    /// Command dword 15.
    pub cdw15: u32,
}

const _: () = assert!(core::mem::size_of::<Sqe>() == 64);

/// PSDT value meaning "SGL, metadata pointer is an address" (the only form
/// NVMe-oF allows, NVMe-oF 1.1a §2.3).
pub const PSDT_SGL_MPTR_CONTIG: u8 = 0x40;

impl Sqe {
    /// Size on the wire.
    pub const SIZE: usize = 64;

    /// Parses 64 bytes (little-endian fields).
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let b: [u8; 64] = le_array(buf, 0)?;
        Ok(Self::from_bytes(&b))
    }

    /// Decodes a full 64-byte array; cannot fail.
    pub fn from_bytes(b: &[u8; 64]) -> Self {
        let d = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut dptr = [0u8; 16];
        dptr.copy_from_slice(&b[24..40]);
        Sqe {
            opc: b[0],
            flags: b[1],
            cid: u16::from_le_bytes([b[2], b[3]]),
            nsid: d(4),
            cdw2: d(8),
            cdw3: d(12),
            mptr: u64::from(d(16)) | (u64::from(d(20)) << 32),
            dptr,
            cdw10: d(40),
            cdw11: d(44),
            cdw12: d(48),
            cdw13: d(52),
            cdw14: d(56),
            cdw15: d(60),
        }
    }

    /// Encodes to the 64 wire bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0] = self.opc;
        b[1] = self.flags;
        b[2..4].copy_from_slice(&self.cid.to_le_bytes());
        b[4..8].copy_from_slice(&self.nsid.to_le_bytes());
        b[8..12].copy_from_slice(&self.cdw2.to_le_bytes());
        b[12..16].copy_from_slice(&self.cdw3.to_le_bytes());
        b[16..24].copy_from_slice(&self.mptr.to_le_bytes());
        b[24..40].copy_from_slice(&self.dptr);
        for (i, dw) in [self.cdw10, self.cdw11, self.cdw12, self.cdw13, self.cdw14, self.cdw15].iter().enumerate() {
            b[40 + 4 * i..44 + 4 * i].copy_from_slice(&dw.to_le_bytes());
        }
        b
    }

    /// True for a fabrics command (opcode 7Fh).
    pub fn is_fabrics(&self) -> bool {
        self.opc == opcode::admin::FABRICS
    }

    /// Fabrics command type (byte 4), meaningful when [`Sqe::is_fabrics`].
    pub fn fctype(&self) -> u8 {
        self.nsid.to_le_bytes()[0]
    }

    /// Which way this command moves data.
    pub fn data_direction(&self) -> DataDirection {
        if self.is_fabrics() {
            // Fabrics commands encode the direction in fctype bits 1:0 (NVMe-oF 1.1a §3.3).
            DataDirection::of_opcode(self.fctype())
        } else {
            DataDirection::of_opcode(self.opc)
        }
    }

    /// Starting LBA of a Read/Write/Write Zeroes (CDW10-11).
    pub fn slba(&self) -> u64 {
        u64::from(self.cdw10) | (u64::from(self.cdw11) << 32)
    }

    /// Number of logical blocks of a Read/Write/Write Zeroes (CDW12 bits 15:0, 0's based).
    pub fn nlb(&self) -> u32 {
        (self.cdw12 & 0xFFFF) + 1
    }

    /// A Read or Write command.
    pub fn rw(opc: u8, nsid: u32, slba: u64, nlb: u32) -> Self {
        debug_assert!((1..=65536).contains(&nlb));
        Sqe {
            opc,
            flags: PSDT_SGL_MPTR_CONTIG,
            nsid,
            cdw10: slba as u32,
            cdw11: (slba >> 32) as u32,
            cdw12: nlb.saturating_sub(1) & 0xFFFF,
            ..Default::default()
        }
    }

    /// A fabrics command of type `fc` with everything else zero.
    pub fn fabrics(fc: u8) -> Self {
        Sqe { opc: opcode::admin::FABRICS, flags: PSDT_SGL_MPTR_CONTIG, nsid: u32::from(fc), ..Default::default() }
    }

    /// Connect (NVMe-oF 1.1a §3.3.1): `sqsize` is 0's based, `kato_ms` 0 on IO queues.
    pub fn connect(qid: u16, sqsize: u16, kato_ms: u32) -> Self {
        let mut s = Sqe::fabrics(fctype::CONNECT);
        // RECFMT (bytes 41:40) is 0; QID at 43:42.
        s.cdw10 = u32::from(qid) << 16;
        // SQSIZE 45:44, CATTR 46.
        s.cdw11 = u32::from(sqsize);
        s.cdw12 = kato_ms;
        s
    }

    /// Connect's record format (bytes 41:40).
    pub fn connect_recfmt(&self) -> u16 {
        self.cdw10 as u16
    }
    /// Connect's queue ID (bytes 43:42).
    pub fn connect_qid(&self) -> u16 {
        (self.cdw10 >> 16) as u16
    }
    /// Connect's submission queue size, 0's based (bytes 45:44).
    pub fn connect_sqsize(&self) -> u16 {
        self.cdw11 as u16
    }
    /// Connect's attributes (byte 46): bit 2 is "disable SQ flow control"
    /// ([`connect_attr::DISABLE_SQ_FLOW_CONTROL`]).
    pub fn connect_cattr(&self) -> u8 {
        (self.cdw11 >> 16) as u8
    }
    /// Sets Connect's attributes (byte 46).
    pub fn set_connect_cattr(&mut self, cattr: u8) {
        self.cdw11 = (self.cdw11 & !0x00FF_0000) | (u32::from(cattr) << 16);
    }
    /// Connect's keep-alive timeout in ms (bytes 51:48).
    pub fn connect_kato_ms(&self) -> u32 {
        self.cdw12
    }

    /// Property Get (NVMe-oF 1.1a §3.3.3); `size8` for an 8-byte property.
    pub fn property_get(offset: u32, size8: bool) -> Self {
        let mut s = Sqe::fabrics(fctype::PROPERTY_GET);
        s.cdw10 = u32::from(size8); // ATTRIB byte 40 bits 2:0
        s.cdw11 = offset; // OFST bytes 47:44
        s
    }

    /// Property Set (NVMe-oF 1.1a §3.3.4).
    pub fn property_set(offset: u32, size8: bool, value: u64) -> Self {
        let mut s = Sqe::fabrics(fctype::PROPERTY_SET);
        s.cdw10 = u32::from(size8);
        s.cdw11 = offset;
        s.cdw12 = value as u32; // VALUE bytes 55:48
        s.cdw13 = (value >> 32) as u32;
        s
    }

    /// Property Get/Set: is the property 8 bytes wide (ATTRIB bits 2:0 = 1)?
    pub fn property_size8(&self) -> bool {
        self.cdw10 & 0x7 == 1
    }
    /// Property Get/Set: the property offset.
    pub fn property_offset(&self) -> u32 {
        self.cdw11
    }
    /// Property Set: the value.
    pub fn property_value(&self) -> u64 {
        u64::from(self.cdw12) | (u64::from(self.cdw13) << 32)
    }
}

impl core::fmt::Debug for Sqe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sqe")
            .field("opc", &format_args!("{:#04x}", self.opc))
            .field("cid", &self.cid)
            .field("nsid", &self.nsid)
            .field("cdw10", &format_args!("{:#x}", self.cdw10))
            .field("cdw11", &format_args!("{:#x}", self.cdw11))
            .field("cdw12", &format_args!("{:#x}", self.cdw12))
            .finish_non_exhaustive()
    }
}

/// Connect's CATTR bits (NVMe-oF 1.1a §3.3.1).
pub mod connect_attr {
    /// Bit 2: the host needs no SQ head updates (SQ flow control disabled);
    /// it keeps its own count of free submission queue entries.
    pub const DISABLE_SQ_FLOW_CONTROL: u8 = 1 << 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqe_round_trips_through_bytes() {
        let mut s = Sqe::rw(opcode::io::WRITE, 1, 0x1_2345_6789, 8);
        s.cid = 0xBEEF;
        s.dptr = [7; 16];
        let b = s.to_bytes();
        assert_eq!(Sqe::parse(&b).unwrap(), s);
        assert_eq!(s.slba(), 0x1_2345_6789);
        assert_eq!(s.nlb(), 8);
        assert_eq!(b[0], 0x01);
        assert_eq!(&b[2..4], &0xBEEFu16.to_le_bytes());
    }

    #[test]
    fn connect_fields_sit_where_the_spec_puts_them() {
        let s = Sqe::connect(3, 127, 0);
        let b = s.to_bytes();
        assert_eq!(b[0], 0x7F);
        assert_eq!(b[4], fctype::CONNECT);
        assert_eq!(u16::from_le_bytes([b[42], b[43]]), 3);
        assert_eq!(u16::from_le_bytes([b[44], b[45]]), 127);
        assert_eq!(s.data_direction(), DataDirection::HostToController);

        let mut s = s;
        s.set_connect_cattr(connect_attr::DISABLE_SQ_FLOW_CONTROL);
        let b = s.to_bytes();
        assert_eq!(b[46], 0x04);
        assert_eq!(u16::from_le_bytes([b[44], b[45]]), 127);
        assert_eq!(s.connect_cattr(), connect_attr::DISABLE_SQ_FLOW_CONTROL);
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        assert!(matches!(Sqe::parse(&[0u8; 63]), Err(WireError::Truncated { need: 64, have: 63 })));
    }
}
