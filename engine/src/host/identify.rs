//! The few Identify fields the host needs, read at their spec offsets
//! (NVMe Base 2.0c Figures 275 and 276; NVM 1.0c Figure 97).

use protocol::{opcode, Sqe};

use crate::host::{ControllerData, NamespaceData};

/// CNS 00h: Identify Namespace.
pub(crate) const CNS_NAMESPACE: u8 = 0x00;
/// CNS 01h: Identify Controller.
pub(crate) const CNS_CONTROLLER: u8 = 0x01;
/// CNS 02h: Active Namespace ID list.
pub(crate) const CNS_ACTIVE_NS_LIST: u8 = 0x02;
/// CNS 03h: Namespace Identification Descriptor list.
pub(crate) const CNS_NS_DESCRIPTORS: u8 = 0x03;

/// An Identify command for `cns` (4096 bytes of data).
pub(crate) fn sqe(cns: u8, nsid: u32) -> Sqe {
    Sqe { opc: opcode::admin::IDENTIFY, nsid, cdw10: u32::from(cns), ..Sqe::default() }
}

fn field(d: &[u8], range: core::ops::Range<usize>) -> &[u8] {
    d.get(range).unwrap_or(&[])
}

fn le(d: &[u8], off: usize, n: usize) -> u64 {
    field(d, off..off + n).iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn ascii(d: &[u8], range: core::ops::Range<usize>) -> String {
    String::from_utf8_lossy(field(d, range)).trim_end_matches([' ', '\0']).to_string()
}

/// Decodes Identify Controller data.
pub(crate) fn parse_controller(d: &[u8]) -> ControllerData {
    let mdts = le(d, 77, 1) as u32;
    ControllerData {
        serial_number: ascii(d, 4..24),
        model_number: ascii(d, 24..64),
        firmware_revision: ascii(d, 64..72),
        // MDTS is a power of two in units of the minimum page size (4 KiB here); 0 = no limit.
        max_transfer_bytes: if mdts == 0 { None } else { 4096u32.checked_shl(mdts) },
        cntlid: le(d, 78, 2) as u16,
        aerl: le(d, 259, 1) as u8,
        kas: le(d, 320, 2) as u16,
        subnqn: ascii(d, 768..1024),
        // IOCCSZ counts 16-byte units of the whole capsule, SQE included (NVMe-oF 1.1a §4.1).
        in_capsule_data_bytes: (le(d, 1792, 4) as u32).saturating_mul(16).saturating_sub(64),
        ..ControllerData::default()
    }
}

/// Decodes an Active Namespace ID list (ends at the first zero).
pub(crate) fn parse_ns_list(d: &[u8]) -> Vec<u32> {
    d.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).take_while(|&n| n != 0).collect()
}

/// Decodes Identify Namespace data; `None` for an inactive (all-zero) namespace.
pub(crate) fn parse_namespace(nsid: u32, d: &[u8]) -> Option<NamespaceData> {
    let nsze = le(d, 0, 8);
    if nsze == 0 {
        return None;
    }
    let flbas = le(d, 26, 1) as usize & 0xF;
    let lbads = le(d, 128 + 4 * flbas + 2, 1) as u32;
    if !(9..=16).contains(&lbads) {
        return None;
    }
    let nguid: [u8; 16] = field(d, 104..120).try_into().unwrap_or([0; 16]);
    let eui64: [u8; 8] = field(d, 120..128).try_into().unwrap_or([0; 8]);
    Some(NamespaceData {
        nsid,
        num_blocks: nsze,
        block_size: 1 << lbads,
        anagrpid: le(d, 92, 4) as u32,
        nguid: (nguid != [0; 16]).then_some(nguid),
        eui64: (eui64 != [0; 8]).then_some(eui64),
        uuid: None,
    })
}

/// Fills in identifiers from a Namespace Identification Descriptor list.
pub(crate) fn apply_ns_descriptors(ns: &mut NamespaceData, d: &[u8]) {
    let mut off = 0;
    while let (Some(&nidt), Some(&nidl)) = (d.get(off), d.get(off + 1)) {
        let body = field(d, off + 4..off + 4 + usize::from(nidl));
        match (nidt, body.len()) {
            (0, _) => break,
            (1, 8) => ns.eui64 = body.try_into().ok(),
            (2, 16) => ns.nguid = body.try_into().ok(),
            (3, 16) => ns.uuid = body.try_into().ok(),
            _ => {}
        }
        off += 4 + usize::from(nidl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_descriptors_fill_uuid_and_stop_at_the_end_marker() {
        let mut ns = NamespaceData { nsid: 1, num_blocks: 8, block_size: 512, ..Default::default() };
        let mut d = vec![0u8; 4096];
        d[0] = 3;
        d[1] = 16;
        d[4..20].copy_from_slice(&[0xAB; 16]);
        apply_ns_descriptors(&mut ns, &d);
        assert_eq!(ns.uuid, Some([0xAB; 16]));
        // A descriptor that runs off the end is ignored, not a panic.
        let mut short = vec![3u8, 16, 0, 0, 1, 2];
        apply_ns_descriptors(&mut ns, &short);
        short.clear();
        apply_ns_descriptors(&mut ns, &short);
    }

    #[test]
    fn namespace_with_zero_size_is_inactive() {
        assert!(parse_namespace(1, &[0u8; 4096]).is_none());
        assert!(parse_namespace(1, &[0u8; 10]).is_none());
    }
}
