//! Fuzzes the NVMe/TCP PDU parsers (protocol::tcp) the way a transport uses
//! them on a byte stream: common header, layout under every digest and limit
//! combination and both receiving roles, header digest check, then the typed
//! parser of the PDU type. Nothing may panic; every typed header that parses
//! must survive encode then parse unchanged; a layout must stay inside PLEN.
//!
//! Input: byte 0 picks limits and alignment, the rest is the PDU stream.
#![no_main]

use corepath_protocol::tcp::{
    self, fatal_status, pdu_layout, CapsuleCmd, CapsuleResp, CommonHeader, DataPduHeader, IcReq, IcResp, Negotiated,
    PduType, R2tHeader, Role, TermReq, MAX_HEADER_BYTES,
};
use libfuzzer_sys::fuzz_target;

fn check_typed(pdu: &[u8], ty: PduType) {
    let mut out = [0u8; 512];
    match ty {
        PduType::IcReq => {
            if let Ok(h) = IcReq::parse(pdu) {
                let n = h.encode(&mut out).expect("encode ICReq");
                assert_eq!(IcReq::parse(&out[..n]), Ok(h));
            }
        }
        PduType::IcResp => {
            if let Ok(h) = IcResp::parse(pdu) {
                let n = h.encode(&mut out).expect("encode ICResp");
                assert_eq!(IcResp::parse(&out[..n]), Ok(h));
            }
        }
        PduType::H2CTermReq | PduType::C2HTermReq => {
            if let Ok(h) = TermReq::parse(pdu) {
                let data = pdu.get(24..).unwrap_or(&[]);
                if let Ok(n) = h.encode(data, &mut out) {
                    assert_eq!(TermReq::parse(&out[..n]), Ok(h));
                }
            }
        }
        PduType::CapsuleCmd => {
            if let Ok(h) = CapsuleCmd::parse(pdu) {
                if let Ok(n) = h.encode(&mut out) {
                    assert_eq!(CapsuleCmd::parse(&out[..n]), Ok(h));
                }
            }
        }
        PduType::CapsuleResp => {
            if let Ok(h) = CapsuleResp::parse(pdu) {
                if let Ok(n) = h.encode(&mut out) {
                    assert_eq!(CapsuleResp::parse(&out[..n]), Ok(h));
                }
            }
        }
        PduType::H2CData | PduType::C2HData => {
            if let Ok(h) = DataPduHeader::parse(pdu) {
                if let Ok(n) = h.encode(&mut out) {
                    assert_eq!(DataPduHeader::parse(&out[..n]), Ok(h));
                }
            }
        }
        PduType::R2T => {
            if let Ok(h) = R2tHeader::parse(pdu) {
                if let Ok(n) = h.encode(&mut out) {
                    assert_eq!(R2tHeader::parse(&out[..n]), Ok(h));
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, stream)) = data.split_first() else { return };
    let limits = [0u32, 4096, 8192, 131_072, u32::MAX];
    for hdgst in [false, true] {
        for ddgst in [false, true] {
            for role in [Role::Host, Role::Controller] {
                let neg = Negotiated {
                    hdgst,
                    ddgst,
                    max_data_pdu_bytes: limits[usize::from(knobs & 7) % limits.len()],
                    max_in_capsule_bytes: limits[usize::from((knobs >> 3) & 7) % limits.len()],
                    rx_pda: knobs >> 6,
                    tx_pda: 0,
                };
                // Walk the stream PDU by PDU as a transport would.
                let mut rest = stream;
                while let Ok(ch) = CommonHeader::parse(rest) {
                    let layout = match pdu_layout(&ch, &neg, role) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = fatal_status(&e);
                            break;
                        }
                    };
                    assert!(layout.hlen <= layout.header_len);
                    assert!(layout.header_len <= layout.data_offset);
                    assert!(layout.data_offset <= MAX_HEADER_BYTES);
                    let ddgst_len = if layout.has_ddgst { tcp::DIGEST_LEN } else { 0 };
                    assert_eq!(layout.data_offset + layout.data_len + ddgst_len, layout.plen);
                    assert_eq!(layout.pdu_type as u8, ch.pdu_type);
                    assert_ne!(layout.pdu_type.sender(), role);
                    if let Err(e) = tcp::verify_header_digest(rest, &layout) {
                        let _ = fatal_status(&e);
                        break;
                    }
                    check_typed(rest, layout.pdu_type);
                    if layout.has_ddgst {
                        let data = rest.get(layout.data_offset..layout.data_offset + layout.data_len);
                        let _ = data.map(tcp::data_digest);
                    }
                    match rest.get(layout.plen..) {
                        Some(next) if layout.plen > 0 => rest = next,
                        _ => break,
                    }
                }
            }
        }
    }
});
