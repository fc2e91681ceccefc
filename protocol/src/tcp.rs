//! NVMe/TCP PDUs (NVMe/TCP Transport 1.0c §3.6): the common header, the
//! per-type headers, the layout and validation of a received PDU, header and
//! data digests. (SGL1 forms are in [`crate::sgl`]: NVMe/TCP uses Data Block
//! Offset for in-capsule data and Transport SGL Data Block otherwise.)
//!
//! The API is layered so a transport can work on a byte stream without
//! buffering whole PDUs:
//!
//! 1. [`CommonHeader::parse`] the first 8 bytes;
//! 2. [`pdu_layout`] checks them against the [`Negotiated`] parameters and the
//!    receiving [`Role`] and says how many header bytes to read (with digest and
//!    padding), where the data starts, how long it is, and whether a data
//!    digest follows;
//! 3. [`verify_header_digest`] and the typed parsers ([`IcReq::parse`],
//!    [`CapsuleCmd::parse`], [`DataPduHeader::parse`], ...) read the header;
//! 4. the data goes wherever the transport wants it; [`data_digest_append`]
//!    checks it on the way.
//!
//! Encoders write a header (with header digest and padding up to PDO) into a
//! caller-provided buffer and return the bytes written; the data and its
//! digest are sent by the caller from wherever the data lives.
//!
//! Digests are CRC32C (Castagnoli, the usual reflected form with initial and
//! final inversion) stored little-endian, as Linux, SPDK and Wireshark do: the
//! digest of ASCII `123456789` is `0xE3069283`, on the wire `83 92 06 E3`.

use crate::bytes::{le_array, u16_at, u32_at};
use crate::{Cqe, Sqe, WireError};

/// PDU types (NVMe/TCP 1.0c §3.6.1, Figure 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PduType {
    /// Initialize Connection Request (host to controller).
    IcReq = 0x00,
    /// Initialize Connection Response (controller to host).
    IcResp = 0x01,
    /// Host to controller termination request.
    H2CTermReq = 0x02,
    /// Controller to host termination request.
    C2HTermReq = 0x03,
    /// Command capsule (host to controller).
    CapsuleCmd = 0x04,
    /// Response capsule (controller to host).
    CapsuleResp = 0x05,
    /// Host to controller data.
    H2CData = 0x06,
    /// Controller to host data.
    C2HData = 0x07,
    /// Ready to transfer (controller to host).
    R2T = 0x09,
}

impl PduType {
    /// Decodes the PDU-Type byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x00 => PduType::IcReq,
            0x01 => PduType::IcResp,
            0x02 => PduType::H2CTermReq,
            0x03 => PduType::C2HTermReq,
            0x04 => PduType::CapsuleCmd,
            0x05 => PduType::CapsuleResp,
            0x06 => PduType::H2CData,
            0x07 => PduType::C2HData,
            0x09 => PduType::R2T,
            _ => return None,
        })
    }

    /// The fixed header length (HLEN) of this type.
    pub fn hlen(self) -> u8 {
        match self {
            PduType::IcReq | PduType::IcResp => 128,
            PduType::CapsuleCmd => 72,
            PduType::H2CTermReq
            | PduType::C2HTermReq
            | PduType::CapsuleResp
            | PduType::H2CData
            | PduType::C2HData
            | PduType::R2T => 24,
        }
    }

    /// The side that sends this type.
    pub fn sender(self) -> Role {
        match self {
            PduType::IcReq | PduType::H2CTermReq | PduType::CapsuleCmd | PduType::H2CData => Role::Host,
            PduType::IcResp | PduType::C2HTermReq | PduType::CapsuleResp | PduType::C2HData | PduType::R2T => {
                Role::Controller
            }
        }
    }

    /// Whether digests apply to this type once negotiated. ICReq/ICResp come
    /// before negotiation; termination requests are sent without digests so
    /// that a peer in trouble can still read them (as Linux and SPDK do).
    pub fn takes_digests(self) -> bool {
        matches!(self, PduType::CapsuleCmd | PduType::CapsuleResp | PduType::H2CData | PduType::C2HData | PduType::R2T)
    }

    /// Whether a PDU of this type may carry data after its header.
    pub fn carries_data(self) -> bool {
        matches!(
            self,
            PduType::CapsuleCmd | PduType::H2CData | PduType::C2HData | PduType::H2CTermReq | PduType::C2HTermReq
        )
    }

    /// Flag bits this type may set (§3.6.2: the others are reserved).
    pub fn allowed_flags(self) -> u8 {
        match self {
            PduType::IcReq | PduType::IcResp | PduType::H2CTermReq | PduType::C2HTermReq => 0,
            PduType::CapsuleCmd => flags::HDGSTF | flags::DDGSTF,
            PduType::CapsuleResp | PduType::R2T => flags::HDGSTF,
            PduType::H2CData => flags::HDGSTF | flags::DDGSTF | flags::LAST_PDU,
            PduType::C2HData => flags::HDGSTF | flags::DDGSTF | flags::LAST_PDU | flags::SUCCESS,
        }
    }
}

/// Common header FLAGS bits (§3.6.1).
pub mod flags {
    /// A header digest follows the header.
    pub const HDGSTF: u8 = 1 << 0;
    /// A data digest follows the data.
    pub const DDGSTF: u8 = 1 << 1;
    /// Last data PDU of a transfer (H2CData: of an R2T; C2HData: of the command).
    pub const LAST_PDU: u8 = 1 << 2;
    /// C2HData only: the command succeeded and no response capsule follows.
    pub const SUCCESS: u8 = 1 << 3;
}

/// ICReq/ICResp DGST bits (§3.6.2.2).
pub mod dgst {
    /// Header digest enable.
    pub const HDGST_ENABLE: u8 = 1 << 0;
    /// Data digest enable.
    pub const DDGST_ENABLE: u8 = 1 << 1;
}

/// Fatal error status codes of H2CTermReq/C2HTermReq (§3.6.2.9, Figure 30).
pub mod fes {
    /// Invalid PDU header field; FEI is the byte offset of the field.
    pub const INVALID_HEADER_FIELD: u16 = 0x01;
    /// A PDU arrived that the receiver's state does not allow.
    pub const PDU_SEQUENCE_ERROR: u16 = 0x02;
    /// Header digest error.
    pub const HEADER_DIGEST_ERROR: u16 = 0x03;
    /// Data transfer out of range of the command.
    pub const DATA_TRANSFER_OUT_OF_RANGE: u16 = 0x04;
    /// Data transfer limit exceeded (MAXH2CDATA, in-capsule size).
    pub const DATA_TRANSFER_LIMIT_EXCEEDED: u16 = 0x05;
    /// More outstanding R2Ts than MAXR2T allows.
    pub const R2T_LIMIT_EXCEEDED: u16 = 0x06;
    /// Unsupported parameter (ICReq/ICResp); FEI is the byte offset of the field.
    pub const UNSUPPORTED_PARAMETER: u16 = 0x07;
}

/// Spec names of header fields, as carried in [`WireError`] so that
/// [`fatal_status`] can turn an error into FES/FEI.
pub mod field {
    /// Common header PDU-Type.
    pub const PDU_TYPE: &str = "PDU-TYPE";
    /// Common header FLAGS.
    pub const FLAGS: &str = "FLAGS";
    /// Common header HLEN.
    pub const HLEN: &str = "HLEN";
    /// Common header PDO.
    pub const PDO: &str = "PDO";
    /// Common header PLEN.
    pub const PLEN: &str = "PLEN";
    /// The data length PLEN implies, against a negotiated limit.
    pub const PDU_DATA_LENGTH: &str = "PDU data length";
    /// ICReq/ICResp PFV.
    pub const PFV: &str = "PFV";
    /// ICReq HPDA.
    pub const HPDA: &str = "HPDA";
    /// ICResp CPDA.
    pub const CPDA: &str = "CPDA";
    /// ICReq/ICResp DGST.
    pub const DGST: &str = "DGST";
    /// ICReq MAXR2T.
    pub const MAXR2T: &str = "MAXR2T";
    /// ICResp MAXH2CDATA.
    pub const MAXH2CDATA: &str = "MAXH2CDATA";
    /// Data PDU / R2T command capsule CID.
    pub const CCCID: &str = "CCCID";
    /// Data PDU / R2T transfer tag.
    pub const TTAG: &str = "TTAG";
    /// Data PDU DATAO.
    pub const DATAO: &str = "DATAO";
    /// Data PDU DATAL.
    pub const DATAL: &str = "DATAL";
    /// R2T R2TO.
    pub const R2TO: &str = "R2TO";
    /// R2T R2TL.
    pub const R2TL: &str = "R2TL";
    /// TermReq FES.
    pub const FES: &str = "FES";
    /// CapsuleResp CID.
    pub const CQE_CID: &str = "CQE CID";

    /// Byte offset of a field in its PDU, for FEI (§3.6.2.9).
    pub(crate) fn offset(name: &str) -> u32 {
        match name {
            PDU_TYPE => 0,
            FLAGS => 1,
            HLEN => 2,
            PDO => 3,
            PLEN | PDU_DATA_LENGTH => 4,
            PFV | CCCID | FES => 8,
            HPDA | CPDA | TTAG => 10,
            DGST => 11,
            MAXR2T | MAXH2CDATA | DATAO | R2TO => 12,
            DATAL | R2TL => 16,
            CQE_CID => 20,
            _ => 0,
        }
    }
}

/// The 8-byte common header every PDU starts with (§3.6.1, Figure 20).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommonHeader {
    /// PDU-Type.
    pub pdu_type: u8,
    /// FLAGS (see [`flags`]).
    pub flags: u8,
    /// PDU header length, digest excluded.
    pub hlen: u8,
    /// PDU data offset from the start of the PDU (0 when there is no data).
    pub pdo: u8,
    /// Total PDU length including header, digests, padding and data.
    pub plen: u32,
}

const _: () = assert!(core::mem::size_of::<CommonHeader>() == 8);

impl CommonHeader {
    /// Size on the wire.
    pub const SIZE: usize = 8;

    /// Parses the first 8 bytes of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let b: [u8; 8] = le_array(buf, 0)?;
        Ok(CommonHeader {
            pdu_type: b[0],
            flags: b[1],
            hlen: b[2],
            pdo: b[3],
            plen: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    /// Encodes to the 8 wire bytes.
    pub fn to_bytes(&self) -> [u8; 8] {
        let p = self.plen.to_le_bytes();
        [self.pdu_type, self.flags, self.hlen, self.pdo, p[0], p[1], p[2], p[3]]
    }

    /// Builds the header of an outgoing PDU of `pdu_type` carrying `data_len`
    /// bytes of data, with `extra_flags` (LAST_PDU, SUCCESS) and the digest
    /// flags, PDO and PLEN that `neg` implies.
    pub fn for_pdu(pdu_type: PduType, extra_flags: u8, data_len: u32, neg: &Negotiated) -> Self {
        let hlen = pdu_type.hlen();
        let digests = pdu_type.takes_digests();
        let hdgst = digests && neg.hdgst;
        let ddgst = digests && neg.ddgst && data_len > 0;
        let mut fl = extra_flags & pdu_type.allowed_flags();
        if hdgst {
            fl |= flags::HDGSTF;
        }
        if ddgst {
            fl |= flags::DDGSTF;
        }
        let header_len = u32::from(hlen) + if hdgst { DIGEST_LEN as u32 } else { 0 };
        let (pdo, data_off) = if data_len == 0 {
            (0, header_len)
        } else if matches!(pdu_type, PduType::H2CTermReq | PduType::C2HTermReq) {
            // Termination request data follows HLEN directly; PDO is not used.
            (0, header_len)
        } else {
            let off = align_up(header_len, pda_align(neg.tx_pda));
            (off as u8, off)
        };
        let plen = data_off + data_len + if ddgst { DIGEST_LEN as u32 } else { 0 };
        CommonHeader { pdu_type: pdu_type as u8, flags: fl, hlen, pdo, plen }
    }
}

/// Length of a header or data digest.
pub const DIGEST_LEN: usize = 4;

/// Largest PDU header this module produces or accepts before data: HLEN 128,
/// or HLEN 72 + digest padded up to PDO (at most 255).
pub const MAX_HEADER_BYTES: usize = 256;

/// Largest error data a termination request carries (§3.6.2.9: the
/// offending PDU header, up to 128 bytes).
pub const TERM_REQ_MAX_DATA: usize = 128;

/// Which side of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The host (initiator).
    Host,
    /// The controller (target).
    Controller,
}

/// Connection parameters after ICReq/ICResp, as seen by one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Header digests on every capsule, data and R2T PDU.
    pub hdgst: bool,
    /// Data digests on every PDU that carries data.
    pub ddgst: bool,
    /// Most data this side accepts in one H2CData/C2HData PDU.
    pub max_data_pdu_bytes: u32,
    /// Most in-capsule data this side accepts in one CapsuleCmd.
    pub max_in_capsule_bytes: u32,
    /// Data alignment this side asked of its peer (HPDA on a host, CPDA on a
    /// controller): 0's based, in dwords.
    pub rx_pda: u8,
    /// Data alignment the peer asked of this side.
    pub tx_pda: u8,
}

impl Negotiated {
    /// The parameters in force before ICReq/ICResp: no digests, no data.
    pub const fn initial() -> Self {
        Negotiated { hdgst: false, ddgst: false, max_data_pdu_bytes: 0, max_in_capsule_bytes: 0, rx_pda: 0, tx_pda: 0 }
    }

    /// Length of the header digest on PDUs that take one.
    pub fn hdgst_len(&self) -> usize {
        if self.hdgst {
            DIGEST_LEN
        } else {
            0
        }
    }
}

/// Alignment in bytes a PDA value (0's based dwords) asks for.
pub fn pda_align(pda: u8) -> u32 {
    (u32::from(pda.min(31)) + 1) * 4
}

fn align_up(v: u32, align: u32) -> u32 {
    v.div_ceil(align) * align
}

/// Where the parts of a received PDU are, all offsets from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduLayout {
    /// The PDU type.
    pub pdu_type: PduType,
    /// FLAGS as received.
    pub flags: u8,
    /// HLEN: the header without its digest.
    pub hlen: usize,
    /// HLEN plus the header digest if present.
    pub header_len: usize,
    /// Where the data starts (PDO), or `plen` when there is no data. Bytes
    /// `header_len..data_offset` are padding.
    pub data_offset: usize,
    /// Data length (digest excluded).
    pub data_len: usize,
    /// A 4-byte data digest follows the data.
    pub has_ddgst: bool,
    /// PLEN.
    pub plen: usize,
}

impl PduLayout {
    /// A header digest follows HLEN.
    pub fn has_hdgst(&self) -> bool {
        self.header_len > self.hlen
    }
}

fn invalid(field: &'static str, value: impl Into<u64>) -> WireError {
    WireError::InvalidField { field, value: value.into() }
}

fn bad_len(field: &'static str, value: usize, limit: usize) -> WireError {
    WireError::BadLength { field, value: value as u64, limit: limit as u64 }
}

/// Validates a received common header against the negotiated parameters and
/// the receiving side, and returns the PDU's layout.
///
/// Rejects: unknown types and types `receiver` never receives, a wrong HLEN,
/// reserved flags, digest flags that disagree with `neg`, a PDO that is inside
/// the header or misaligned, a PLEN shorter than the header or with data where
/// the type has none, and data longer than `neg` allows.
pub fn pdu_layout(ch: &CommonHeader, neg: &Negotiated, receiver: Role) -> Result<PduLayout, WireError> {
    let ty = PduType::from_u8(ch.pdu_type).ok_or(invalid(field::PDU_TYPE, ch.pdu_type))?;
    if ty.sender() == receiver {
        return Err(invalid(field::PDU_TYPE, ch.pdu_type));
    }
    let hlen = usize::from(ty.hlen());
    if usize::from(ch.hlen) != hlen {
        return Err(invalid(field::HLEN, ch.hlen));
    }
    if ch.flags & !ty.allowed_flags() != 0 {
        return Err(invalid(field::FLAGS, ch.flags));
    }
    let plen = ch.plen as usize;
    let layout = |header_len, data_offset, data_len, has_ddgst| PduLayout {
        pdu_type: ty,
        flags: ch.flags,
        hlen,
        header_len,
        data_offset,
        data_len,
        has_ddgst,
        plen,
    };
    match ty {
        PduType::IcReq | PduType::IcResp => {
            if plen != hlen {
                return Err(bad_len(field::PLEN, plen, hlen));
            }
            Ok(layout(hlen, hlen, 0, false))
        }
        PduType::H2CTermReq | PduType::C2HTermReq => {
            if plen < hlen || plen > hlen + TERM_REQ_MAX_DATA {
                return Err(bad_len(field::PLEN, plen, hlen + TERM_REQ_MAX_DATA));
            }
            Ok(layout(hlen, hlen, plen - hlen, false))
        }
        _ => {
            let has_hdgst = ch.flags & flags::HDGSTF != 0;
            if has_hdgst != neg.hdgst {
                return Err(invalid(field::FLAGS, ch.flags));
            }
            let has_ddgst = ch.flags & flags::DDGSTF != 0;
            if has_ddgst && !neg.ddgst {
                return Err(invalid(field::FLAGS, ch.flags));
            }
            let header_len = hlen + if has_hdgst { DIGEST_LEN } else { 0 };
            if plen < header_len {
                return Err(bad_len(field::PLEN, plen, header_len));
            }
            if plen == header_len {
                if has_ddgst {
                    // A data digest with no data to cover.
                    return Err(invalid(field::FLAGS, ch.flags));
                }
                return Ok(layout(header_len, header_len, 0, false));
            }
            if !ty.carries_data() {
                return Err(bad_len(field::PLEN, plen, header_len));
            }
            if neg.ddgst && !has_ddgst {
                return Err(invalid(field::FLAGS, ch.flags));
            }
            let pdo = usize::from(ch.pdo);
            if pdo < header_len || align_up(pdo as u32, pda_align(neg.rx_pda)) != pdo as u32 {
                return Err(invalid(field::PDO, ch.pdo));
            }
            let ddgst_len = if has_ddgst { DIGEST_LEN } else { 0 };
            if plen <= pdo + ddgst_len {
                return Err(bad_len(field::PLEN, plen, pdo + ddgst_len + 1));
            }
            let data_len = plen - pdo - ddgst_len;
            let limit = match ty {
                PduType::CapsuleCmd => neg.max_in_capsule_bytes,
                _ => neg.max_data_pdu_bytes,
            } as usize;
            if data_len > limit {
                return Err(bad_len(field::PDU_DATA_LENGTH, data_len, limit));
            }
            Ok(layout(header_len, pdo, data_len, has_ddgst))
        }
    }
}

/// CRC32C of a PDU header (the HLEN bytes), as carried in HDGST.
pub fn header_digest(header: &[u8]) -> u32 {
    crc32c::crc32c(header)
}

/// CRC32C of PDU data, as carried in DDGST.
pub fn data_digest(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues a data digest over the next piece of data; start from 0.
/// `data_digest_append(data_digest_append(0, a), b) == data_digest(a ++ b)`.
pub fn data_digest_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// Checks the header digest of a received PDU whose first
/// `layout.header_len` bytes are in `pdu`. A no-op without a header digest.
pub fn verify_header_digest(pdu: &[u8], layout: &PduLayout) -> Result<(), WireError> {
    if !layout.has_hdgst() {
        return Ok(());
    }
    let header = pdu.get(..layout.hlen).ok_or(WireError::Truncated { need: layout.hlen, have: pdu.len() })?;
    let got = u32_at(pdu, layout.hlen)?;
    let computed = header_digest(header);
    if got != computed {
        return Err(WireError::DigestMismatch { which: "header", got, computed });
    }
    Ok(())
}

/// What a termination request should say about an error (§3.6.2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatalStatus {
    /// Fatal error status (see [`fes`]).
    pub fes: u16,
    /// Fatal error information: the byte offset of the offending field for
    /// [`fes::INVALID_HEADER_FIELD`] and [`fes::UNSUPPORTED_PARAMETER`], else 0.
    pub fei: u32,
}

/// Maps an error from this module's parsers to the FES/FEI a termination
/// request reports.
pub fn fatal_status(err: &WireError) -> FatalStatus {
    let header_field = |name: &str| FatalStatus { fes: fes::INVALID_HEADER_FIELD, fei: field::offset(name) };
    match err {
        WireError::DigestMismatch { .. } => FatalStatus { fes: fes::HEADER_DIGEST_ERROR, fei: 0 },
        WireError::BadLength { field: field::PDU_DATA_LENGTH, .. } => {
            FatalStatus { fes: fes::DATA_TRANSFER_LIMIT_EXCEEDED, fei: 0 }
        }
        WireError::InvalidField { field: field::PFV, .. } => {
            FatalStatus { fes: fes::UNSUPPORTED_PARAMETER, fei: field::offset(field::PFV) }
        }
        WireError::InvalidField { field, .. } | WireError::BadLength { field, .. } => header_field(field),
        WireError::InvalidString { field } => header_field(field),
        WireError::Truncated { .. } => header_field(field::PLEN),
    }
}

/// Writes `ch`, the type-specific header bytes `fill` produces, the header
/// digest if `ch` has HDGSTF, and zero padding up to PDO. Returns the bytes
/// written (the data offset).
fn encode_header(ch: &CommonHeader, buf: &mut [u8], fill: impl FnOnce(&mut [u8])) -> Result<usize, WireError> {
    let hlen = usize::from(ch.hlen);
    // The fill closures write the type's fixed fields: refuse a header whose
    // HLEN is not its type's (a parsed struct with a hostile CH, say).
    if PduType::from_u8(ch.pdu_type).map(PduType::hlen) != Some(ch.hlen) {
        return Err(invalid(field::HLEN, ch.hlen));
    }
    let header_len = hlen + if ch.flags & flags::HDGSTF != 0 { DIGEST_LEN } else { 0 };
    let total = header_len.max(usize::from(ch.pdo));
    let have = buf.len();
    let out = buf.get_mut(..total).ok_or(WireError::Truncated { need: total, have })?;
    out.fill(0);
    out[..8].copy_from_slice(&ch.to_bytes());
    fill(&mut out[8..hlen]);
    if header_len > hlen {
        let d = header_digest(&out[..hlen]);
        out[hlen..header_len].copy_from_slice(&d.to_le_bytes());
    }
    Ok(total)
}

fn expect_type(ch: &CommonHeader, want: &[PduType]) -> Result<PduType, WireError> {
    match PduType::from_u8(ch.pdu_type) {
        Some(t) if want.contains(&t) => Ok(t),
        _ => Err(invalid(field::PDU_TYPE, ch.pdu_type)),
    }
}

/// Initialize Connection Request (§3.6.2.2, Figure 26).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcReq {
    /// Common header.
    pub ch: CommonHeader,
    /// PDU format version: 0.
    pub pfv: u16,
    /// Host PDU data alignment (0's based dwords, ≤ 31).
    pub hpda: u8,
    /// Digests the host asks for (see [`dgst`]).
    pub dgst: u8,
    /// Most outstanding R2Ts per command, 0's based.
    pub maxr2t: u32,
    /// Reserved.
    pub rsvd: [u8; 112],
}

const _: () = assert!(core::mem::size_of::<IcReq>() == 128);

impl IcReq {
    /// An ICReq asking for the given digests.
    pub fn new(hpda: u8, hdgst: bool, ddgst: bool, maxr2t: u32) -> Self {
        IcReq {
            ch: CommonHeader::for_pdu(PduType::IcReq, 0, 0, &Negotiated::initial()),
            pfv: 0,
            hpda,
            dgst: dgst_bits(hdgst, ddgst),
            maxr2t,
            rsvd: [0; 112],
        }
    }

    /// Parses an ICReq header and checks PFV, HPDA and DGST.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let ch = CommonHeader::parse(buf)?;
        expect_type(&ch, &[PduType::IcReq])?;
        let b: [u8; 128] = le_array(buf, 0)?;
        let r = IcReq {
            ch,
            pfv: u16::from_le_bytes([b[8], b[9]]),
            hpda: b[10],
            dgst: b[11],
            maxr2t: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            rsvd: [0; 112],
        };
        check_ic_fields(r.pfv, r.hpda, field::HPDA, r.dgst)?;
        Ok(r)
    }

    /// Host asks for header digests.
    pub fn hdgst(&self) -> bool {
        self.dgst & dgst::HDGST_ENABLE != 0
    }

    /// Host asks for data digests.
    pub fn ddgst(&self) -> bool {
        self.dgst & dgst::DDGST_ENABLE != 0
    }

    /// Writes the 128-byte PDU; returns 128.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        encode_header(&self.ch, buf, |b| {
            b[0..2].copy_from_slice(&self.pfv.to_le_bytes());
            b[2] = self.hpda;
            b[3] = self.dgst;
            b[4..8].copy_from_slice(&self.maxr2t.to_le_bytes());
        })
    }
}

/// Initialize Connection Response (§3.6.2.3, Figure 27).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcResp {
    /// Common header.
    pub ch: CommonHeader,
    /// PDU format version: 0.
    pub pfv: u16,
    /// Controller PDU data alignment (0's based dwords, ≤ 31).
    pub cpda: u8,
    /// Digests enabled for this connection (see [`dgst`]).
    pub dgst: u8,
    /// Most data the controller accepts in one H2CData PDU (≥ 4096).
    pub maxh2cdata: u32,
    /// Reserved.
    pub rsvd: [u8; 112],
}

const _: () = assert!(core::mem::size_of::<IcResp>() == 128);

/// Smallest MAXH2CDATA a controller may offer (§3.6.2.3).
pub const MIN_MAXH2CDATA: u32 = 4096;

impl IcResp {
    /// An ICResp enabling the given digests.
    pub fn new(cpda: u8, hdgst: bool, ddgst: bool, maxh2cdata: u32) -> Self {
        IcResp {
            ch: CommonHeader::for_pdu(PduType::IcResp, 0, 0, &Negotiated::initial()),
            pfv: 0,
            cpda,
            dgst: dgst_bits(hdgst, ddgst),
            maxh2cdata,
            rsvd: [0; 112],
        }
    }

    /// Parses an ICResp header and checks PFV, CPDA, DGST and MAXH2CDATA.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let ch = CommonHeader::parse(buf)?;
        expect_type(&ch, &[PduType::IcResp])?;
        let b: [u8; 128] = le_array(buf, 0)?;
        let r = IcResp {
            ch,
            pfv: u16::from_le_bytes([b[8], b[9]]),
            cpda: b[10],
            dgst: b[11],
            maxh2cdata: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            rsvd: [0; 112],
        };
        check_ic_fields(r.pfv, r.cpda, field::CPDA, r.dgst)?;
        if r.maxh2cdata < MIN_MAXH2CDATA {
            return Err(invalid(field::MAXH2CDATA, r.maxh2cdata));
        }
        Ok(r)
    }

    /// Header digests are on.
    pub fn hdgst(&self) -> bool {
        self.dgst & dgst::HDGST_ENABLE != 0
    }

    /// Data digests are on.
    pub fn ddgst(&self) -> bool {
        self.dgst & dgst::DDGST_ENABLE != 0
    }

    /// Writes the 128-byte PDU; returns 128.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        encode_header(&self.ch, buf, |b| {
            b[0..2].copy_from_slice(&self.pfv.to_le_bytes());
            b[2] = self.cpda;
            b[3] = self.dgst;
            b[4..8].copy_from_slice(&self.maxh2cdata.to_le_bytes());
        })
    }
}

fn dgst_bits(hdgst: bool, ddgst: bool) -> u8 {
    (if hdgst { dgst::HDGST_ENABLE } else { 0 }) | (if ddgst { dgst::DDGST_ENABLE } else { 0 })
}

fn check_ic_fields(pfv: u16, pda: u8, pda_field: &'static str, dgst_byte: u8) -> Result<(), WireError> {
    if pfv != 0 {
        return Err(invalid(field::PFV, pfv));
    }
    if pda > 31 {
        return Err(invalid(pda_field, pda));
    }
    if dgst_byte & !(dgst::HDGST_ENABLE | dgst::DDGST_ENABLE) != 0 {
        return Err(invalid(field::DGST, dgst_byte));
    }
    Ok(())
}

/// H2CTermReq / C2HTermReq header (§3.6.2.4 and §3.6.2.9, Figure 28). The
/// header of the PDU that caused the error follows as data.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermReq {
    /// Common header.
    pub ch: CommonHeader,
    /// Fatal error status (see [`fes`]).
    pub fes: u16,
    /// Fatal error information, little-endian (bytes 10..14 are not u32-aligned).
    pub fei: [u8; 4],
    /// Reserved.
    pub rsvd: [u8; 10],
}

const _: () = assert!(core::mem::size_of::<TermReq>() == 24);

impl TermReq {
    /// A termination request of `pdu_type` (H2CTermReq or C2HTermReq)
    /// carrying `error_data_len` bytes (clamped to [`TERM_REQ_MAX_DATA`]).
    pub fn new(pdu_type: PduType, status: FatalStatus, error_data_len: usize) -> Self {
        let len = error_data_len.min(TERM_REQ_MAX_DATA) as u32;
        TermReq {
            ch: CommonHeader::for_pdu(pdu_type, 0, len, &Negotiated::initial()),
            fes: status.fes,
            fei: status.fei.to_le_bytes(),
            rsvd: [0; 10],
        }
    }

    /// Parses either termination request header.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let ch = CommonHeader::parse(buf)?;
        expect_type(&ch, &[PduType::H2CTermReq, PduType::C2HTermReq])?;
        Ok(TermReq { ch, fes: u16_at(buf, 8)?, fei: le_array(buf, 10)?, rsvd: [0; 10] })
    }

    /// FEI as a number.
    pub fn fei(&self) -> u32 {
        u32::from_le_bytes(self.fei)
    }

    /// Writes the header and then `error_data` (at most the length given to
    /// [`TermReq::new`]); returns the whole PDU length.
    pub fn encode(&self, error_data: &[u8], buf: &mut [u8]) -> Result<usize, WireError> {
        let n = encode_header(&self.ch, buf, |b| {
            b[0..2].copy_from_slice(&self.fes.to_le_bytes());
            b[2..6].copy_from_slice(&self.fei);
        })?;
        let data_len = (self.ch.plen as usize).saturating_sub(n);
        let data = error_data.get(..data_len).ok_or(WireError::Truncated { need: data_len, have: error_data.len() })?;
        let have = buf.len();
        buf.get_mut(n..n + data_len).ok_or(WireError::Truncated { need: n + data_len, have })?.copy_from_slice(data);
        Ok(n + data_len)
    }
}

/// Command capsule: the SQE after the common header (§3.6.2.5, Figure 29);
/// in-capsule data may follow at PDO.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapsuleCmd {
    /// Common header.
    pub ch: CommonHeader,
    /// The submission queue entry.
    pub sqe: Sqe,
}

const _: () = assert!(core::mem::size_of::<CapsuleCmd>() == 72);

impl CapsuleCmd {
    /// A capsule for `sqe` followed by `in_capsule_len` bytes of data.
    pub fn new(sqe: Sqe, in_capsule_len: u32, neg: &Negotiated) -> Self {
        CapsuleCmd { ch: CommonHeader::for_pdu(PduType::CapsuleCmd, 0, in_capsule_len, neg), sqe }
    }

    /// Parses a capsule header (CH + SQE).
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let ch = CommonHeader::parse(buf)?;
        expect_type(&ch, &[PduType::CapsuleCmd])?;
        Ok(CapsuleCmd { ch, sqe: Sqe::parse(buf.get(8..).unwrap_or(&[]))? })
    }

    /// Writes CH, SQE, header digest and padding; returns the data offset.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        encode_header(&self.ch, buf, |b| b[..Sqe::SIZE].copy_from_slice(&self.sqe.to_bytes()))
    }
}

/// Response capsule: the CQE after the common header (§3.6.2.6, Figure 31).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapsuleResp {
    /// Common header.
    pub ch: CommonHeader,
    /// The completion queue entry.
    pub cqe: Cqe,
}

const _: () = assert!(core::mem::size_of::<CapsuleResp>() == 24);

impl CapsuleResp {
    /// A response capsule carrying `cqe`.
    pub fn new(cqe: Cqe, neg: &Negotiated) -> Self {
        CapsuleResp { ch: CommonHeader::for_pdu(PduType::CapsuleResp, 0, 0, neg), cqe }
    }

    /// Parses a response capsule header (CH + CQE).
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let ch = CommonHeader::parse(buf)?;
        expect_type(&ch, &[PduType::CapsuleResp])?;
        Ok(CapsuleResp { ch, cqe: Cqe::parse(buf.get(8..).unwrap_or(&[]))? })
    }

    /// Writes CH, CQE and header digest; returns the PDU length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        encode_header(&self.ch, buf, |b| b[..Cqe::SIZE].copy_from_slice(&self.cqe.to_bytes()))
    }
}

/// H2CData / C2HData header (§3.6.2.7 and §3.6.2.8, Figures 32 and 33).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPduHeader {
    /// Common header.
    pub ch: CommonHeader,
    /// Command capsule CID of the command this data belongs to.
    pub cccid: u16,
    /// Transfer tag from the R2T (H2CData); reserved in C2HData.
    pub ttag: u16,
    /// Offset of this data in the command's data.
    pub datao: u32,
    /// Length of this PDU's data.
    pub datal: u32,
    /// Reserved.
    pub rsvd: [u8; 4],
}

const _: () = assert!(core::mem::size_of::<DataPduHeader>() == 24);

impl DataPduHeader {
    /// A data PDU header of `pdu_type` (H2CData or C2HData); `extra_flags`
    /// may hold [`flags::LAST_PDU`] and, for C2HData, [`flags::SUCCESS`].
    pub fn new(
        pdu_type: PduType,
        cccid: u16,
        ttag: u16,
        datao: u32,
        datal: u32,
        extra_flags: u8,
        neg: &Negotiated,
    ) -> Self {
        DataPduHeader {
            ch: CommonHeader::for_pdu(pdu_type, extra_flags, datal, neg),
            cccid,
            ttag,
            datao,
            datal,
            rsvd: [0; 4],
        }
    }

    /// Parses either data PDU header.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let ch = CommonHeader::parse(buf)?;
        expect_type(&ch, &[PduType::H2CData, PduType::C2HData])?;
        let _: [u8; 24] = le_array(buf, 0)?;
        Ok(DataPduHeader {
            ch,
            cccid: u16_at(buf, 8)?,
            ttag: u16_at(buf, 10)?,
            datao: u32_at(buf, 12)?,
            datal: u32_at(buf, 16)?,
            rsvd: [0; 4],
        })
    }

    /// Checks DATAL against the data length PLEN implies.
    pub fn check_datal(&self, layout: &PduLayout) -> Result<(), WireError> {
        if self.datal as usize != layout.data_len {
            return Err(bad_len(field::DATAL, self.datal as usize, layout.data_len));
        }
        Ok(())
    }

    /// LAST_PDU is set.
    pub fn last_pdu(&self) -> bool {
        self.ch.flags & flags::LAST_PDU != 0
    }

    /// SUCCESS is set (C2HData).
    pub fn success(&self) -> bool {
        self.ch.flags & flags::SUCCESS != 0
    }

    /// Writes the header, header digest and padding; returns the data offset.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        encode_header(&self.ch, buf, |b| {
            b[0..2].copy_from_slice(&self.cccid.to_le_bytes());
            b[2..4].copy_from_slice(&self.ttag.to_le_bytes());
            b[4..8].copy_from_slice(&self.datao.to_le_bytes());
            b[8..12].copy_from_slice(&self.datal.to_le_bytes());
        })
    }
}

/// Ready to Transfer (§3.6.2.10, Figure 35).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct R2tHeader {
    /// Common header.
    pub ch: CommonHeader,
    /// Command capsule CID.
    pub cccid: u16,
    /// Transfer tag the host echoes in its H2CData PDUs.
    pub ttag: u16,
    /// Offset of the requested data.
    pub r2to: u32,
    /// Length of the requested data.
    pub r2tl: u32,
    /// Reserved.
    pub rsvd: [u8; 4],
}

const _: () = assert!(core::mem::size_of::<R2tHeader>() == 24);

impl R2tHeader {
    /// An R2T asking for `r2tl` bytes at `r2to`.
    pub fn new(cccid: u16, ttag: u16, r2to: u32, r2tl: u32, neg: &Negotiated) -> Self {
        R2tHeader { ch: CommonHeader::for_pdu(PduType::R2T, 0, 0, neg), cccid, ttag, r2to, r2tl, rsvd: [0; 4] }
    }

    /// Parses an R2T header; R2TL 0 is invalid.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let ch = CommonHeader::parse(buf)?;
        expect_type(&ch, &[PduType::R2T])?;
        let r = R2tHeader {
            ch,
            cccid: u16_at(buf, 8)?,
            ttag: u16_at(buf, 10)?,
            r2to: u32_at(buf, 12)?,
            r2tl: u32_at(buf, 16)?,
            rsvd: le_array(buf, 20)?,
        };
        if r.r2tl == 0 {
            return Err(invalid(field::R2TL, 0u32));
        }
        Ok(R2tHeader { rsvd: [0; 4], ..r })
    }

    /// Writes the header and header digest; returns the PDU length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        encode_header(&self.ch, buf, |b| {
            b[0..2].copy_from_slice(&self.cccid.to_le_bytes());
            b[2..4].copy_from_slice(&self.ttag.to_le_bytes());
            b[4..8].copy_from_slice(&self.r2to.to_le_bytes());
            b[8..12].copy_from_slice(&self.r2tl.to_le_bytes());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcode;
    use crate::sgl::SglDescriptor;
    use crate::Status;

    fn neg(hdgst: bool, ddgst: bool) -> Negotiated {
        Negotiated { hdgst, ddgst, max_data_pdu_bytes: 128 * 1024, max_in_capsule_bytes: 8192, rx_pda: 0, tx_pda: 0 }
    }

    fn layout_of(buf: &[u8], n: &Negotiated, rx: Role) -> Result<PduLayout, WireError> {
        pdu_layout(&CommonHeader::parse(buf)?, n, rx)
    }

    #[test]
    fn digest_is_standard_crc32c_stored_little_endian() {
        assert_eq!(data_digest(b"123456789"), 0xE306_9283);
        assert_eq!(data_digest(b"123456789").to_le_bytes(), [0x83, 0x92, 0x06, 0xE3]);
        assert_eq!(data_digest_append(data_digest_append(0, b"1234"), b"56789"), data_digest(b"123456789"));
    }

    #[test]
    fn common_header_round_trips_with_exact_bytes() {
        let ch = CommonHeader { pdu_type: 7, flags: 0x0C, hlen: 24, pdo: 28, plen: 0x0102_0304 };
        let b = ch.to_bytes();
        assert_eq!(b, [7, 0x0C, 24, 28, 4, 3, 2, 1]);
        assert_eq!(CommonHeader::parse(&b).unwrap(), ch);
        assert!(matches!(CommonHeader::parse(&b[..7]), Err(WireError::Truncated { need: 8, have: 7 })));
    }

    #[test]
    fn icreq_round_trips_and_sits_where_the_spec_puts_it() {
        let r = IcReq::new(0, true, false, 3);
        let mut buf = [0xFFu8; 200];
        assert_eq!(r.encode(&mut buf).unwrap(), 128);
        assert_eq!(&buf[..8], &[0, 0, 128, 0, 128, 0, 0, 0]);
        assert_eq!(&buf[8..16], &[0, 0, 0, 1, 3, 0, 0, 0]);
        assert!(buf[16..128].iter().all(|&b| b == 0));
        assert_eq!(buf[128], 0xFF);
        let l = layout_of(&buf, &Negotiated::initial(), Role::Controller).unwrap();
        assert_eq!((l.header_len, l.data_len, l.plen), (128, 0, 128));
        let back = IcReq::parse(&buf).unwrap();
        assert_eq!(back, r);
        assert!(back.hdgst() && !back.ddgst());
    }

    #[test]
    fn icresp_round_trips_and_rejects_bad_parameters() {
        let r = IcResp::new(0, true, true, 131_072);
        let mut buf = [0u8; 128];
        r.encode(&mut buf).unwrap();
        assert_eq!(buf[0], 1);
        assert_eq!(buf[11], 3);
        assert_eq!(&buf[12..16], &131_072u32.to_le_bytes());
        assert_eq!(IcResp::parse(&buf).unwrap(), r);

        let mut bad = buf;
        bad[8] = 1;
        let e = IcResp::parse(&bad).unwrap_err();
        assert_eq!(fatal_status(&e), FatalStatus { fes: fes::UNSUPPORTED_PARAMETER, fei: 8 });
        let mut bad = buf;
        bad[12..16].copy_from_slice(&512u32.to_le_bytes());
        assert!(matches!(IcResp::parse(&bad), Err(WireError::InvalidField { field: field::MAXH2CDATA, .. })));
        let mut bad = buf;
        bad[10] = 32;
        assert_eq!(fatal_status(&IcResp::parse(&bad).unwrap_err()), FatalStatus { fes: 1, fei: 10 });
        let mut bad = buf;
        bad[11] = 4;
        assert_eq!(fatal_status(&IcResp::parse(&bad).unwrap_err()), FatalStatus { fes: 1, fei: 11 });
        assert!(IcResp::parse(&buf[..100]).is_err());
    }

    #[test]
    fn capsule_cmd_with_digests_and_in_capsule_data_lays_out_correctly() {
        let n = neg(true, true);
        let mut sqe = Sqe::rw(opcode::io::WRITE, 1, 0, 1);
        sqe.cid = 9;
        sqe.dptr = SglDescriptor::DataBlockOffset { offset: 0, len: 512 }.to_bytes();
        let cmd = CapsuleCmd::new(sqe, 512, &n);
        let mut buf = [0u8; 256];
        let off = cmd.encode(&mut buf).unwrap();
        assert_eq!(off, 76);
        assert_eq!(buf[1], flags::HDGSTF | flags::DDGSTF);
        assert_eq!(buf[2], 72);
        assert_eq!(buf[3], 76);
        assert_eq!(u32::from_le_bytes(buf[4..8].try_into().unwrap()), 76 + 512 + 4);
        assert_eq!(u32::from_le_bytes(buf[72..76].try_into().unwrap()), header_digest(&buf[..72]));
        let l = layout_of(&buf, &n, Role::Controller).unwrap();
        assert_eq!(
            l,
            PduLayout {
                pdu_type: PduType::CapsuleCmd,
                flags: 3,
                hlen: 72,
                header_len: 76,
                data_offset: 76,
                data_len: 512,
                has_ddgst: true,
                plen: 592
            }
        );
        verify_header_digest(&buf, &l).unwrap();
        let back = CapsuleCmd::parse(&buf).unwrap();
        assert_eq!(back.sqe, sqe);
        assert_eq!(
            SglDescriptor::parse(&back.sqe.dptr).unwrap(),
            SglDescriptor::DataBlockOffset { offset: 0, len: 512 }
        );
    }

    #[test]
    fn capsule_data_is_padded_to_the_peer_alignment() {
        let n = Negotiated { tx_pda: 3, rx_pda: 3, ..neg(true, false) };
        let cmd = CapsuleCmd::new(Sqe::default(), 100, &n);
        let mut buf = [0xAAu8; 256];
        assert_eq!(cmd.encode(&mut buf).unwrap(), 80);
        assert_eq!(cmd.ch.pdo, 80);
        assert_eq!(cmd.ch.plen, 180);
        assert!(buf[76..80].iter().all(|&b| b == 0));
        let l = layout_of(&buf, &n, Role::Controller).unwrap();
        assert_eq!((l.header_len, l.data_offset, l.data_len), (76, 80, 100));
    }

    #[test]
    fn capsule_resp_round_trips() {
        let n = neg(true, true);
        let cqe = Cqe::new(5, Status::SUCCESS, 0x1234);
        let mut buf = [0u8; 64];
        assert_eq!(CapsuleResp::new(cqe, &n).encode(&mut buf).unwrap(), 28);
        assert_eq!(&buf[..8], &[5, flags::HDGSTF, 24, 0, 28, 0, 0, 0]);
        let l = layout_of(&buf, &n, Role::Host).unwrap();
        assert_eq!((l.header_len, l.data_len, l.has_ddgst), (28, 0, false));
        verify_header_digest(&buf, &l).unwrap();
        assert_eq!(CapsuleResp::parse(&buf).unwrap().cqe, cqe);
    }

    #[test]
    fn data_pdus_and_r2t_round_trip_with_exact_bytes() {
        let n = neg(false, true);
        let h = DataPduHeader::new(PduType::C2HData, 3, 0, 4096, 8192, flags::LAST_PDU, &n);
        let mut buf = [0u8; 64];
        assert_eq!(h.encode(&mut buf).unwrap(), 24);
        assert_eq!(
            &buf[..24],
            &[7, 0x06, 24, 24, 0x1C, 0x20, 0, 0, 3, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0]
        );
        let l = layout_of(&buf, &n, Role::Host).unwrap();
        assert_eq!((l.data_offset, l.data_len, l.has_ddgst), (24, 8192, true));
        let back = DataPduHeader::parse(&buf).unwrap();
        assert_eq!(back, h);
        back.check_datal(&l).unwrap();
        assert!(back.last_pdu() && !back.success());

        let r = R2tHeader::new(3, 17, 0, 65536, &neg(true, false));
        assert_eq!(r.encode(&mut buf).unwrap(), 28);
        assert_eq!(&buf[8..20], &[3, 0, 17, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(R2tHeader::parse(&buf).unwrap(), r);
    }

    #[test]
    fn term_req_carries_offending_header() {
        let offending = [0x42u8; 200];
        let t = TermReq::new(PduType::H2CTermReq, FatalStatus { fes: fes::INVALID_HEADER_FIELD, fei: 3 }, 200);
        let mut buf = [0u8; 256];
        assert_eq!(t.encode(&offending, &mut buf).unwrap(), 152);
        assert_eq!(&buf[..8], &[2, 0, 24, 0, 152, 0, 0, 0]);
        assert_eq!(&buf[8..14], &[1, 0, 3, 0, 0, 0]);
        assert!(buf[24..152].iter().all(|&b| b == 0x42));
        let l = layout_of(&buf, &neg(true, true), Role::Controller).unwrap();
        assert_eq!((l.data_offset, l.data_len), (24, 128));
        let back = TermReq::parse(&buf).unwrap();
        assert_eq!((back.fes, back.fei()), (1, 3));
    }

    fn header(ty: u8, fl: u8, hlen: u8, pdo: u8, plen: u32) -> CommonHeader {
        CommonHeader { pdu_type: ty, flags: fl, hlen, pdo, plen }
    }

    fn err_of(ch: CommonHeader, n: &Negotiated, rx: Role) -> FatalStatus {
        fatal_status(&pdu_layout(&ch, n, rx).unwrap_err())
    }

    #[test]
    fn rejects_unknown_type_and_wrong_direction() {
        let n = neg(false, false);
        assert_eq!(err_of(header(0x08, 0, 24, 0, 24), &n, Role::Host), FatalStatus { fes: 1, fei: 0 });
        assert_eq!(err_of(header(0xFF, 0, 24, 0, 24), &n, Role::Controller).fei, 0);
        // A host never receives H2CData or CapsuleCmd; a controller never receives R2T or C2HData.
        assert!(pdu_layout(&header(6, 0, 24, 24, 48), &n, Role::Host).is_err());
        assert!(pdu_layout(&header(4, 0, 72, 0, 72), &n, Role::Host).is_err());
        assert!(pdu_layout(&header(9, 0, 24, 0, 24), &n, Role::Controller).is_err());
        assert!(pdu_layout(&header(7, 0, 24, 24, 48), &n, Role::Controller).is_err());
        assert!(pdu_layout(&header(1, 0, 128, 0, 128), &n, Role::Controller).is_err());
    }

    #[test]
    fn rejects_bad_hlen_and_reserved_flags() {
        let n = neg(false, false);
        assert_eq!(err_of(header(5, 0, 28, 0, 28), &n, Role::Host), FatalStatus { fes: 1, fei: 2 });
        assert_eq!(err_of(header(5, flags::LAST_PDU, 24, 0, 24), &n, Role::Host), FatalStatus { fes: 1, fei: 1 });
        assert_eq!(err_of(header(0, 1, 128, 0, 128), &n, Role::Controller).fei, 1);
    }

    #[test]
    fn rejects_plen_too_small_or_too_large() {
        let n = neg(false, false);
        assert_eq!(err_of(header(5, 0, 24, 0, 20), &n, Role::Host), FatalStatus { fes: 1, fei: 4 });
        assert_eq!(err_of(header(0, 0, 128, 0, 129), &n, Role::Controller).fei, 4);
        // Data on a type without data.
        assert_eq!(err_of(header(5, 0, 24, 24, 100), &n, Role::Host).fei, 4);
        // Data longer than negotiated.
        let too_long = header(7, 0, 24, 24, 24 + 128 * 1024 + 1);
        assert_eq!(err_of(too_long, &n, Role::Host), FatalStatus { fes: fes::DATA_TRANSFER_LIMIT_EXCEEDED, fei: 0 });
        let too_much_icd = header(4, 0, 72, 72, 72 + 8193);
        assert_eq!(err_of(too_much_icd, &n, Role::Controller).fes, fes::DATA_TRANSFER_LIMIT_EXCEEDED);
        // Term req error data beyond 128 bytes.
        assert_eq!(err_of(header(3, 0, 24, 0, 24 + 129), &n, Role::Host).fei, 4);
        // Huge PLEN does not overflow anything.
        assert!(pdu_layout(&header(7, 0, 24, 24, u32::MAX), &n, Role::Host).is_err());
    }

    #[test]
    fn rejects_digest_flags_that_disagree_with_negotiation() {
        let on = neg(true, true);
        let off = neg(false, false);
        // Missing header digest.
        assert_eq!(err_of(header(5, 0, 24, 0, 24), &on, Role::Host).fei, 1);
        // Unexpected header digest.
        assert_eq!(err_of(header(5, flags::HDGSTF, 24, 0, 28), &off, Role::Host).fei, 1);
        // Unexpected data digest.
        assert_eq!(err_of(header(7, flags::DDGSTF, 24, 24, 100), &off, Role::Host).fei, 1);
        // Missing data digest on a PDU with data.
        assert_eq!(err_of(header(7, flags::HDGSTF, 24, 28, 100), &on, Role::Host).fei, 1);
        // Data digest flag without data.
        assert_eq!(err_of(header(4, 3, 72, 0, 76), &on, Role::Controller).fei, 1);
    }

    #[test]
    fn rejects_pdo_inside_header_or_misaligned() {
        let n = neg(true, false);
        assert_eq!(err_of(header(7, 1, 24, 24, 100), &n, Role::Host), FatalStatus { fes: 1, fei: 3 });
        assert_eq!(err_of(header(7, 1, 24, 0, 100), &n, Role::Host).fei, 3);
        let aligned = Negotiated { rx_pda: 3, ..n };
        assert_eq!(err_of(header(7, 1, 24, 28, 100), &aligned, Role::Host).fei, 3);
        assert!(pdu_layout(&header(7, 1, 24, 32, 100), &aligned, Role::Host).is_ok());
        // PDO beyond PLEN.
        assert_eq!(err_of(header(7, 1, 24, 64, 60), &n, Role::Host).fei, 4);
    }

    #[test]
    fn rejects_header_digest_mismatch() {
        let n = neg(true, false);
        let mut buf = [0u8; 64];
        CapsuleResp::new(Cqe::new(1, Status::SUCCESS, 0), &n).encode(&mut buf).unwrap();
        buf[24] ^= 1;
        let l = layout_of(&buf, &n, Role::Host).unwrap();
        let e = verify_header_digest(&buf, &l).unwrap_err();
        assert_eq!(fatal_status(&e).fes, fes::HEADER_DIGEST_ERROR);
        assert!(verify_header_digest(&buf[..26], &l).is_err());
    }

    #[test]
    fn typed_parsers_reject_short_input_and_wrong_type() {
        assert!(CapsuleCmd::parse(&[4, 0, 72, 0, 72, 0, 0, 0]).is_err());
        assert!(CapsuleResp::parse(&[5, 0, 24, 0]).is_err());
        assert!(DataPduHeader::parse(&[7, 0, 24, 0, 24, 0, 0, 0, 1]).is_err());
        assert!(R2tHeader::parse(&[0u8; 24]).is_err());
        assert!(TermReq::parse(&[2, 0, 24, 0, 24, 0, 0, 0, 1]).is_err());
        let mut r2t = [0u8; 24];
        R2tHeader::new(1, 1, 0, 4096, &neg(false, false)).encode(&mut r2t).unwrap();
        r2t[16..20].fill(0);
        assert!(matches!(R2tHeader::parse(&r2t), Err(WireError::InvalidField { field: field::R2TL, .. })));
        assert!(IcReq::parse(&r2t).is_err());
    }

    #[test]
    fn encoders_refuse_a_header_with_the_wrong_hlen() {
        let mut h = DataPduHeader::new(PduType::C2HData, 1, 0, 0, 0, 0, &neg(false, false));
        h.ch.hlen = 4;
        assert!(h.encode(&mut [0u8; 64]).is_err());
        let mut c = CapsuleCmd::new(Sqe::default(), 0, &neg(false, false));
        c.ch.hlen = 24;
        assert!(c.encode(&mut [0u8; 128]).is_err());
    }

    #[test]
    fn encoders_report_short_buffers() {
        let n = neg(true, true);
        assert!(CapsuleCmd::new(Sqe::default(), 10, &n).encode(&mut [0u8; 75]).is_err());
        assert!(IcReq::new(0, false, false, 0).encode(&mut [0u8; 127]).is_err());
        let t = TermReq::new(PduType::C2HTermReq, FatalStatus { fes: 2, fei: 0 }, 10);
        assert!(t.encode(&[0u8; 5], &mut [0u8; 64]).is_err());
        assert!(t.encode(&[0u8; 10], &mut [0u8; 30]).is_err());
    }
}
