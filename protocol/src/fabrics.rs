//! Fabrics Connect data and responses (NVMe-oF 1.1a §3.3.1).

use crate::bytes::wire_struct;
use crate::WireError;

/// Longest NQN in bytes, not counting the terminating NUL (NVMe Base 2.0c §4.5).
pub const NQN_MAX_BYTES: usize = 223;

/// Controller ID a host sends to ask for any controller (dynamic controller model).
pub const CNTLID_DYNAMIC: u16 = 0xFFFF;
/// Controller ID a host sends to ask for any controller of a static model subsystem.
pub const CNTLID_STATIC_ANY: u16 = 0xFFFE;

wire_struct! {
    /// Connect command data, 1024 bytes (NVMe-oF 1.1a Figure 20).
    pub struct ConnectData [1024, custom_parse] {
        /// Host identifier (128-bit).
        pub hostid: [u8; 16] = 0,
        /// Controller ID: a specific one (static model, IO queues) or
        /// [`CNTLID_DYNAMIC`].
        pub cntlid: u16 = 16,
        /// Reserved.
        pub rsvd18: [u8; 238] = 18,
        /// NVM subsystem NQN, UTF-8, NUL terminated.
        pub subnqn: [u8; 256] = 256,
        /// Host NQN, UTF-8, NUL terminated.
        pub hostnqn: [u8; 256] = 512,
        /// Reserved.
        pub rsvd768: [u8; 256] = 768,
    }
}

/// Reads an NQN field: the bytes before the first NUL, which must exist
/// within [`NQN_MAX_BYTES`] + 1 bytes, be non-empty and be UTF-8.
pub fn nqn_from_field<'a>(field: &'a [u8], name: &'static str) -> Result<&'a str, WireError> {
    let nqn = host_nqn_from_field(field, name)?;
    if nqn.is_empty() {
        return Err(WireError::InvalidString { field: name });
    }
    Ok(nqn)
}

/// Reads a Host NQN field as [`nqn_from_field`], but an empty one is
/// allowed: SPDK's host sends it when the user gave no `hostnqn:`, and a
/// subsystem that allows any host accepts it (an allowed-host list never
/// holds the empty NQN, so such subsystems refuse it).
pub fn host_nqn_from_field<'a>(field: &'a [u8], name: &'static str) -> Result<&'a str, WireError> {
    let len = field.iter().position(|&c| c == 0).ok_or(WireError::BadLength {
        field: name,
        value: field.len() as u64,
        limit: NQN_MAX_BYTES as u64,
    })?;
    if len > NQN_MAX_BYTES {
        return Err(WireError::BadLength { field: name, value: len as u64, limit: NQN_MAX_BYTES as u64 });
    }
    core::str::from_utf8(field.get(..len).unwrap_or(&[])).map_err(|_| WireError::InvalidString { field: name })
}

/// Writes `nqn` NUL padded into a 256-byte NQN field.
pub fn nqn_to_field(field: &mut [u8; 256], nqn: &str, name: &'static str) -> Result<(), WireError> {
    if nqn.is_empty() {
        return Err(WireError::InvalidString { field: name });
    }
    host_nqn_to_field(field, nqn, name)
}

/// Writes a Host NQN as [`nqn_to_field`]; an empty one is all zeros.
fn host_nqn_to_field(field: &mut [u8; 256], nqn: &str, name: &'static str) -> Result<(), WireError> {
    if nqn.as_bytes().contains(&0) {
        return Err(WireError::InvalidString { field: name });
    }
    if nqn.len() > NQN_MAX_BYTES {
        return Err(WireError::BadLength { field: name, value: nqn.len() as u64, limit: NQN_MAX_BYTES as u64 });
    }
    field.fill(0);
    crate::bytes::put_at(field, 0, nqn.as_bytes())
}

impl ConnectData {
    /// Byte offset of HOSTID, for the IPO of an invalid-parameters response.
    pub const HOSTID_OFFSET: u16 = 0;
    /// Byte offset of CNTLID.
    pub const CNTLID_OFFSET: u16 = 16;
    /// Byte offset of SUBNQN.
    pub const SUBNQN_OFFSET: u16 = 256;
    /// Byte offset of HOSTNQN.
    pub const HOSTNQN_OFFSET: u16 = 512;

    /// Connect data for `hostid`, `cntlid` and the two NQNs.
    pub fn new(hostid: [u8; 16], cntlid: u16, subnqn: &str, hostnqn: &str) -> Result<Self, WireError> {
        let mut d = Self::zeroed();
        d.hostid = hostid;
        d.cntlid = cntlid;
        nqn_to_field(&mut d.subnqn, subnqn, "subnqn")?;
        host_nqn_to_field(&mut d.hostnqn, hostnqn, "hostnqn")?;
        Ok(d)
    }

    /// Parses the connect data and checks both NQNs (NUL terminated, at
    /// most 223 bytes, UTF-8; the subsystem NQN non-empty, the host NQN may
    /// be empty, see [`host_nqn_from_field`]).
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let d = Self::decode(buf)?;
        d.subnqn_str()?;
        d.hostnqn_str()?;
        Ok(d)
    }

    /// The subsystem NQN.
    pub fn subnqn_str(&self) -> Result<&str, WireError> {
        nqn_from_field(&self.subnqn, "subnqn")
    }

    /// The host NQN (possibly empty).
    pub fn hostnqn_str(&self) -> Result<&str, WireError> {
        host_nqn_from_field(&self.hostnqn, "hostnqn")
    }

    /// The byte offset to report in IPO for an error from
    /// [`ConnectData::parse`] (0 when the error names no field).
    pub fn error_offset(err: &WireError) -> u16 {
        let field = match err {
            WireError::BadLength { field, .. }
            | WireError::InvalidString { field }
            | WireError::InvalidField { field, .. } => *field,
            _ => return 0,
        };
        match field {
            "subnqn" => Self::SUBNQN_OFFSET,
            "hostnqn" => Self::HOSTNQN_OFFSET,
            "cntlid" => Self::CNTLID_OFFSET,
            _ => 0,
        }
    }
}

/// Connect response dword 0 on success: CNTLID in bits 15:0, AUTHREQ
/// (bits 31:16) zero since authentication is not required.
pub fn connect_success_dw0(cntlid: u16) -> u32 {
    u32::from(cntlid)
}

/// The controller ID from a successful Connect response's dword 0.
pub fn connect_response_cntlid(dw0: u32) -> u16 {
    dw0 as u16
}

/// Connect response dword 0 for status Connect Invalid Parameters (NVMe-oF
/// 1.1a Figure 21): IPO, the byte offset of the bad parameter, in bytes 1:0
/// and IATTR in byte 2 bit 0 (0 = the bad parameter is in the command's SQE,
/// 1 = in the connect data). Linux and SPDK hosts decode it this way.
pub fn connect_invalid_param_dw0(in_data: bool, byte_offset: u16) -> u32 {
    u32::from(byte_offset) | (u32::from(in_data) << 16)
}

/// Splits an invalid-parameters dword 0 into (IATTR set = in connect data, IPO).
pub fn connect_invalid_param_decode(dw0: u32) -> (bool, u16) {
    (dw0 & (1 << 16) != 0, dw0 as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    const SUBNQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";
    const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001";

    #[test]
    fn connect_data_fields_sit_at_spec_offsets() {
        assert_eq!(offset_of!(ConnectData, cntlid), 16);
        assert_eq!(offset_of!(ConnectData, subnqn), 256);
        assert_eq!(offset_of!(ConnectData, hostnqn), 512);
        let d = ConnectData::new([0xAB; 16], CNTLID_DYNAMIC, SUBNQN, HOSTNQN).unwrap();
        let b = d.to_bytes();
        assert_eq!(&b[0..16], &[0xAB; 16]);
        assert_eq!(&b[16..18], &[0xFF, 0xFF]);
        assert_eq!(&b[256..256 + SUBNQN.len()], SUBNQN.as_bytes());
        assert_eq!(b[256 + SUBNQN.len()], 0);
        assert_eq!(&b[512..512 + HOSTNQN.len()], HOSTNQN.as_bytes());
        let back = ConnectData::parse(&b).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.subnqn_str().unwrap(), SUBNQN);
        assert_eq!(back.hostnqn_str().unwrap(), HOSTNQN);
    }

    #[test]
    fn rejects_nqn_without_nul_too_long_empty_or_not_utf8() {
        let good = ConnectData::new([0; 16], 1, SUBNQN, HOSTNQN).unwrap().to_bytes();

        let mut b = good;
        b[256..512].fill(b'a');
        let e = ConnectData::parse(&b).unwrap_err();
        assert!(matches!(e, WireError::BadLength { field: "subnqn", .. }));
        assert_eq!(ConnectData::error_offset(&e), 256);

        let mut b = good;
        b[512..512 + 224].fill(b'h');
        b[512 + 224] = 0;
        assert!(matches!(ConnectData::parse(&b), Err(WireError::BadLength { field: "hostnqn", value: 224, .. })));

        let mut b = good;
        b[512..512 + 223].fill(b'h');
        b[512 + 223] = 0;
        assert_eq!(ConnectData::parse(&b).unwrap().hostnqn_str().unwrap().len(), 223);

        // An empty Host NQN parses (SPDK's host sends one without `hostnqn:`); an empty subsystem NQN does not.
        let mut b = good;
        b[512] = 0;
        assert_eq!(ConnectData::parse(&b).unwrap().hostnqn_str(), Ok(""));
        let mut b = good;
        b[256] = 0;
        let e = ConnectData::parse(&b).unwrap_err();
        assert_eq!(e, WireError::InvalidString { field: "subnqn" });
        assert_eq!(ConnectData::error_offset(&e), 256);

        let mut b = good;
        b[260] = 0xC3;
        b[261] = 0x28;
        assert_eq!(ConnectData::parse(&b), Err(WireError::InvalidString { field: "subnqn" }));

        assert!(matches!(ConnectData::parse(&good[..1023]), Err(WireError::Truncated { need: 1024, .. })));
    }

    #[test]
    fn new_rejects_bad_nqns() {
        assert!(ConnectData::new([0; 16], 1, "", HOSTNQN).is_err());
        assert!(ConnectData::new([0; 16], 1, &"x".repeat(224), HOSTNQN).is_err());
        assert!(ConnectData::new([0; 16], 1, SUBNQN, "a\0b").is_err());
        let empty_host = ConnectData::new([0; 16], 1, SUBNQN, "").unwrap();
        assert!(empty_host.hostnqn.iter().all(|&b| b == 0));
    }

    #[test]
    fn connect_response_dwords() {
        assert_eq!(connect_success_dw0(0x7FF8), 0x7FF8);
        assert_eq!(connect_response_cntlid(0xABCD_0010), 0x10);
        let dw0 = connect_invalid_param_dw0(true, 512);
        assert_eq!(dw0.to_le_bytes(), [0x00, 0x02, 1, 0]);
        assert_eq!(connect_invalid_param_decode(dw0), (true, 512));
        assert_eq!(connect_invalid_param_dw0(false, 42), 42);
        assert_eq!(connect_invalid_param_decode(42), (false, 42));
    }
}
