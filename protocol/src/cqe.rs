//! The 16-byte completion queue entry (NVMe Base 2.0c §4.6).

use crate::bytes::le_array;
use crate::{Status, WireError};

/// A completion queue entry, field for field as on the wire.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Cqe {
    /// Command specific dword 0 (Connect: CNTLID in bits 15:0).
    pub dw0: u32,
    /// Command specific dword 1.
    pub dw1: u32,
    /// Submission queue head pointer.
    pub sqhd: u16,
    /// Submission queue identifier.
    pub sqid: u16,
    /// Command identifier of the command this completes.
    pub cid: u16,
    /// Phase tag (bit 0) and status field (bits 15:1).
    pub status: u16,
}

const _: () = assert!(core::mem::size_of::<Cqe>() == 16);

impl Cqe {
    /// Size on the wire.
    pub const SIZE: usize = 16;

    /// A completion for `cid` with `status` and result dword 0.
    pub fn new(cid: u16, status: Status, dw0: u32) -> Self {
        Cqe { dw0, dw1: 0, sqhd: 0, sqid: 0, cid, status: status.to_field() }
    }

    /// Parses 16 bytes.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let b: [u8; 16] = le_array(buf, 0)?;
        Ok(Self::from_bytes(&b))
    }

    /// Decodes a full 16-byte array; cannot fail.
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        Cqe {
            dw0: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            dw1: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            sqhd: u16::from_le_bytes([b[8], b[9]]),
            sqid: u16::from_le_bytes([b[10], b[11]]),
            cid: u16::from_le_bytes([b[12], b[13]]),
            status: u16::from_le_bytes([b[14], b[15]]),
        }
    }

    /// Encodes to the 16 wire bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.dw0.to_le_bytes());
        b[4..8].copy_from_slice(&self.dw1.to_le_bytes());
        b[8..10].copy_from_slice(&self.sqhd.to_le_bytes());
        b[10..12].copy_from_slice(&self.sqid.to_le_bytes());
        b[12..14].copy_from_slice(&self.cid.to_le_bytes());
        b[14..16].copy_from_slice(&self.status.to_le_bytes());
        b
    }

    /// The decoded status (phase tag dropped).
    pub fn status(&self) -> Status {
        Status::from_field(self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::generic;

    #[test]
    fn cqe_round_trips_and_keeps_status() {
        let c = Cqe { sqhd: 5, sqid: 2, ..Cqe::new(77, Status::generic(generic::LBA_OUT_OF_RANGE).with_dnr(), 9) };
        let back = Cqe::parse(&c.to_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.status().sc, generic::LBA_OUT_OF_RANGE);
        assert!(back.status().dnr);
    }
}
