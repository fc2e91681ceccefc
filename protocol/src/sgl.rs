//! SGL descriptors (NVMe Base 2.0c §4.1.2, NVMe-oF 1.1a §2.3): the 16-byte
//! data pointer of a fabrics command.
//!
//! Layout: bytes 7:0 address (or offset into in-capsule data), bytes 11:8
//! length, byte 15 the SGL identifier (type in bits 7:4, subtype in bits
//! 3:0). The keyed form used by RDMA has a 24-bit length in bytes 10:8 and a
//! 32-bit key in bytes 14:11.

use crate::WireError;

/// SGL descriptor types (byte 15 bits 7:4, NVMe Base 2.0c Figure 116).
pub mod sgl_type {
    /// Data block.
    pub const DATA_BLOCK: u8 = 0x0;
    /// Bit bucket.
    pub const BIT_BUCKET: u8 = 0x1;
    /// Segment.
    pub const SEGMENT: u8 = 0x2;
    /// Last segment.
    pub const LAST_SEGMENT: u8 = 0x3;
    /// Keyed data block (RDMA).
    pub const KEYED_DATA_BLOCK: u8 = 0x4;
    /// Transport SGL data block (NVMe/TCP).
    pub const TRANSPORT_DATA_BLOCK: u8 = 0x5;
}

/// SGL descriptor subtypes (byte 15 bits 3:0, NVMe Base 2.0c Figure 117, NVMe-oF 1.1a Figure 6).
pub mod sgl_subtype {
    /// The address field is a memory address.
    pub const ADDRESS: u8 = 0x0;
    /// The address field is an offset into in-capsule data.
    pub const OFFSET: u8 = 0x1;
    /// Transport specific (NVMe/TCP: the data comes by H2C/C2H Data PDUs).
    pub const TRANSPORT_SPECIFIC: u8 = 0xA;
    /// Keyed data block: address, and invalidate the key when the command completes.
    pub const INVALIDATE_KEY: u8 = 0xF;
}

/// Largest length a keyed data block can carry (24 bits).
pub const KEYED_LEN_MAX: u32 = 0x00FF_FFFF;

/// An SGL descriptor in one of the forms NVMe-oF uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SglDescriptor {
    /// Data block, address subtype: a memory address.
    DataBlockAddress {
        /// Memory address.
        addr: u64,
        /// Length in bytes.
        len: u32,
    },
    /// Data block, offset subtype: data carried in the command capsule,
    /// `offset` bytes after the start of in-capsule data.
    DataBlockOffset {
        /// Offset into in-capsule data.
        offset: u64,
        /// Length in bytes.
        len: u32,
    },
    /// Transport SGL data block (subtype Ah): the transport moves the data
    /// (NVMe/TCP R2T/H2C/C2H).
    TransportDataBlock {
        /// Length in bytes.
        len: u32,
    },
    /// Keyed SGL data block (RDMA), address subtype.
    KeyedDataBlock {
        /// Remote address.
        addr: u64,
        /// Length in bytes (24 bits).
        len: u32,
        /// Remote key.
        key: u32,
    },
    /// Keyed SGL data block (RDMA) that asks the target to invalidate `key`
    /// when it sends the response.
    KeyedDataBlockInvalidate {
        /// Remote address.
        addr: u64,
        /// Length in bytes (24 bits).
        len: u32,
        /// Remote key.
        key: u32,
    },
    /// Last segment, offset subtype: a list of further descriptors in the
    /// capsule at `offset` (RDMA with several data blocks).
    LastSegmentOffset {
        /// Offset into in-capsule data of the descriptor list.
        offset: u64,
        /// Length of the descriptor list in bytes (a multiple of 16).
        len: u32,
    },
}

impl SglDescriptor {
    /// Size on the wire.
    pub const SIZE: usize = 16;

    /// Parses the 16-byte descriptor. Reserved bytes are ignored; a type and
    /// subtype pair not listed in [`SglDescriptor`] is an error (the target
    /// answers SGL Descriptor Type Invalid).
    pub fn parse(b: &[u8; 16]) -> Result<Self, WireError> {
        let addr = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let id = b[15];
        let keyed_len = len & KEYED_LEN_MAX;
        let key = u32::from_le_bytes([b[11], b[12], b[13], b[14]]);
        match (id >> 4, id & 0xF) {
            (sgl_type::DATA_BLOCK, sgl_subtype::ADDRESS) => Ok(Self::DataBlockAddress { addr, len }),
            (sgl_type::DATA_BLOCK, sgl_subtype::OFFSET) => Ok(Self::DataBlockOffset { offset: addr, len }),
            (sgl_type::TRANSPORT_DATA_BLOCK, sgl_subtype::TRANSPORT_SPECIFIC) => Ok(Self::TransportDataBlock { len }),
            (sgl_type::KEYED_DATA_BLOCK, sgl_subtype::ADDRESS) => {
                Ok(Self::KeyedDataBlock { addr, len: keyed_len, key })
            }
            (sgl_type::KEYED_DATA_BLOCK, sgl_subtype::INVALIDATE_KEY) => {
                Ok(Self::KeyedDataBlockInvalidate { addr, len: keyed_len, key })
            }
            (sgl_type::LAST_SEGMENT, sgl_subtype::OFFSET) => {
                if len & 0xF != 0 {
                    return Err(WireError::BadLength {
                        field: "sgl last segment length",
                        value: len.into(),
                        limit: 16,
                    });
                }
                Ok(Self::LastSegmentOffset { offset: addr, len })
            }
            _ => Err(WireError::InvalidField { field: "sgl identifier", value: id.into() }),
        }
    }

    /// Parses a descriptor from the start of a slice.
    pub fn parse_slice(buf: &[u8]) -> Result<Self, WireError> {
        Self::parse(&crate::bytes::le_array::<16>(buf, 0)?)
    }

    /// Encodes to 16 bytes. A keyed length above 24 bits is cut to 24 bits
    /// (callers keep lengths within [`KEYED_LEN_MAX`]).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        let (addr, len, id) = match *self {
            Self::DataBlockAddress { addr, len } => (addr, len, sgl_subtype::ADDRESS),
            Self::DataBlockOffset { offset, len } => (offset, len, sgl_subtype::OFFSET),
            Self::TransportDataBlock { len } => {
                (0, len, (sgl_type::TRANSPORT_DATA_BLOCK << 4) | sgl_subtype::TRANSPORT_SPECIFIC)
            }
            Self::LastSegmentOffset { offset, len } => {
                (offset, len, (sgl_type::LAST_SEGMENT << 4) | sgl_subtype::OFFSET)
            }
            Self::KeyedDataBlock { addr, len, key } | Self::KeyedDataBlockInvalidate { addr, len, key } => {
                let sub = if matches!(self, Self::KeyedDataBlock { .. }) {
                    sgl_subtype::ADDRESS
                } else {
                    sgl_subtype::INVALIDATE_KEY
                };
                b[0..8].copy_from_slice(&addr.to_le_bytes());
                b[8..11].copy_from_slice(&(len & KEYED_LEN_MAX).to_le_bytes()[..3]);
                b[11..15].copy_from_slice(&key.to_le_bytes());
                b[15] = (sgl_type::KEYED_DATA_BLOCK << 4) | sub;
                return b;
            }
        };
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[15] = id;
        b
    }

    /// Data length this descriptor describes in bytes.
    pub fn len(&self) -> u32 {
        match *self {
            Self::DataBlockAddress { len, .. }
            | Self::DataBlockOffset { len, .. }
            | Self::TransportDataBlock { len }
            | Self::KeyedDataBlock { len, .. }
            | Self::KeyedDataBlockInvalidate { len, .. }
            | Self::LastSegmentOffset { len, .. } => len,
        }
    }

    /// True when the descriptor describes no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for data carried inside the command capsule.
    pub fn is_in_capsule(&self) -> bool {
        matches!(self, Self::DataBlockOffset { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips() {
        for d in [
            SglDescriptor::DataBlockAddress { addr: 0xDEAD_BEEF_0000, len: 4096 },
            SglDescriptor::DataBlockOffset { offset: 0, len: 8192 },
            SglDescriptor::TransportDataBlock { len: 131072 },
            SglDescriptor::KeyedDataBlock { addr: 0x7F00_1234_5678, len: 0xFF_FFFF, key: 0xCAFEBABE },
            SglDescriptor::KeyedDataBlockInvalidate { addr: 1, len: 512, key: 7 },
            SglDescriptor::LastSegmentOffset { offset: 0, len: 32 },
        ] {
            assert_eq!(SglDescriptor::parse(&d.to_bytes()).unwrap(), d);
        }
    }

    #[test]
    fn tcp_forms_use_the_spec_identifiers() {
        let icd = SglDescriptor::DataBlockOffset { offset: 0, len: 4096 }.to_bytes();
        assert_eq!(icd[15], 0x01);
        assert_eq!(&icd[8..12], &4096u32.to_le_bytes());
        let t = SglDescriptor::TransportDataBlock { len: 4096 }.to_bytes();
        assert_eq!(t[15], 0x5A);
        assert_eq!(&t[0..8], &[0; 8]);
    }

    #[test]
    fn keyed_descriptor_packs_24_bit_length_and_key() {
        let k = SglDescriptor::KeyedDataBlock { addr: 0x0102030405060708, len: 0x00ABCDEF, key: 0x11223344 };
        let b = k.to_bytes();
        assert_eq!(&b[0..8], &0x0102030405060708u64.to_le_bytes());
        assert_eq!(&b[8..11], &[0xEF, 0xCD, 0xAB]);
        assert_eq!(&b[11..15], &0x11223344u32.to_le_bytes());
        assert_eq!(b[15], 0x40);
    }

    #[test]
    fn unknown_identifiers_and_short_input_are_errors() {
        let mut b = [0u8; 16];
        for id in [0x10u8, 0x20, 0x02, 0x5B, 0x50, 0x41, 0xF0] {
            b[15] = id;
            assert!(
                matches!(SglDescriptor::parse(&b), Err(WireError::InvalidField { field: "sgl identifier", .. })),
                "{id:#x}"
            );
        }
        b[15] = 0x31;
        b[8] = 17;
        assert!(SglDescriptor::parse(&b).is_err());
        assert!(matches!(SglDescriptor::parse_slice(&[0; 15]), Err(WireError::Truncated { need: 16, have: 15 })));
    }
}
