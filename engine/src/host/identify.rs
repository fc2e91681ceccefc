//! The Identify data the host keeps, decoded with the protocol crate's
//! structures (NVMe Base 2.0c §5.17.2).

use protocol::identify::{
    cns, identify_sqe, parse_active_ns_list, parse_ns_id_descriptors, IdentifyController, IdentifyNamespace,
    NsIdDescriptor,
};
use protocol::Sqe;

/// What Identify told us about a controller.
#[derive(Debug, Clone, Default)]
pub struct ControllerData {
    /// Controller ID given by the target at Connect.
    pub cntlid: u16,
    /// Serial number (SN).
    pub serial_number: String,
    /// Model number (MN).
    pub model_number: String,
    /// Firmware revision (FR).
    pub firmware_revision: String,
    /// Subsystem NQN the controller reports.
    pub subnqn: String,
    /// Largest transfer of one command (from MDTS); `None` = no limit.
    pub max_transfer_bytes: Option<u32>,
    /// Largest in-capsule data (from IOCCSZ).
    pub in_capsule_data_bytes: u32,
    /// Keep-alive granularity (KAS, 100 ms units).
    pub kas: u16,
    /// Asynchronous event request limit (AERL, 0's based).
    pub aerl: u8,
    /// Version property (VS).
    pub version: u32,
    /// Maximum queue entries supported (CAP.MQES, 0's based).
    pub mqes: u16,
    /// IO queues the controller granted.
    pub io_queues_granted: u16,
    /// Active namespaces.
    pub namespaces: Vec<NamespaceData>,
    /// Controller multi-path IO and namespace sharing capabilities (CMIC).
    pub cmic: u8,
    /// The controller reports ANA (CMIC bit 3).
    pub ana_reporting: bool,
}

/// What Identify told us about a namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceData {
    /// Namespace ID.
    pub nsid: u32,
    /// Size in logical blocks (NSZE).
    pub num_blocks: u64,
    /// Logical block size in bytes.
    pub block_size: u32,
    /// ANA group (0 when ANA is not reported).
    pub anagrpid: u32,
    /// Namespace UUID, if reported.
    pub uuid: Option<[u8; 16]>,
    /// Namespace globally unique identifier, if reported.
    pub nguid: Option<[u8; 16]>,
    /// IEEE extended unique identifier, if reported.
    pub eui64: Option<[u8; 8]>,
}

/// CNS 00h: Identify Namespace.
pub(crate) const CNS_NAMESPACE: u8 = cns::NAMESPACE;
/// CNS 01h: Identify Controller.
pub(crate) const CNS_CONTROLLER: u8 = cns::CONTROLLER;
/// CNS 02h: Active Namespace ID list.
pub(crate) const CNS_ACTIVE_NS_LIST: u8 = cns::ACTIVE_NS_LIST;
/// CNS 03h: Namespace Identification Descriptor list.
pub(crate) const CNS_NS_DESCRIPTORS: u8 = cns::NS_ID_DESCRIPTOR_LIST;

/// An Identify command for `cns` (4096 bytes of data).
pub(crate) fn sqe(cns: u8, nsid: u32) -> Sqe {
    identify_sqe(cns, nsid)
}

/// Decodes Identify Controller data.
pub(crate) fn parse_controller(d: &[u8]) -> Result<ControllerData, String> {
    let c = IdentifyController::parse(d).map_err(|e| format!("Identify Controller: {e}"))?;
    let text = |r: Result<&str, protocol::WireError>| r.map(|s| s.trim().to_string()).unwrap_or_default();
    Ok(ControllerData {
        serial_number: text(c.sn_str()),
        model_number: text(c.mn_str()),
        firmware_revision: text(c.fr_str()),
        subnqn: text(c.subnqn_str()),
        // MDTS counts in units of the minimum page size; the host uses 4 KiB pages (CC.MPS = 0).
        max_transfer_bytes: c.max_transfer_bytes(4096).map(|b| u32::try_from(b).unwrap_or(u32::MAX)),
        cntlid: c.cntlid,
        aerl: c.aerl,
        kas: c.kas,
        cmic: c.cmic,
        // CMIC bit 3: ANA reporting (NVMe Base 2.0c §5.17.2.1).
        ana_reporting: c.cmic & 0x08 != 0,
        // IOCCSZ counts 16-byte units of the whole capsule, SQE included (NVMe-oF 1.1a §4.1).
        in_capsule_data_bytes: c.ioccsz.saturating_mul(16).saturating_sub(64),
        ..ControllerData::default()
    })
}

/// Decodes an Active Namespace ID list.
pub(crate) fn parse_ns_list(d: &[u8]) -> Result<Vec<u32>, String> {
    parse_active_ns_list(d).map_err(|e| format!("active namespace list: {e}"))
}

/// Decodes Identify Namespace data; `Ok(None)` for an inactive (zero-size) namespace.
pub(crate) fn parse_namespace(nsid: u32, d: &[u8]) -> Result<Option<NamespaceData>, String> {
    let ns = IdentifyNamespace::parse(d).map_err(|e| format!("Identify Namespace {nsid}: {e}"))?;
    if ns.nsze == 0 {
        return Ok(None);
    }
    let block_size = ns.block_size_bytes().map_err(|e| format!("namespace {nsid} LBA format: {e}"))?;
    Ok(Some(NamespaceData {
        nsid,
        num_blocks: ns.nsze,
        block_size,
        anagrpid: ns.anagrpid,
        nguid: (ns.nguid != [0; 16]).then_some(ns.nguid),
        eui64: (ns.eui64 != [0; 8]).then_some(ns.eui64),
        uuid: None,
    }))
}

/// Fills in identifiers from a Namespace Identification Descriptor list.
pub(crate) fn apply_ns_descriptors(ns: &mut NamespaceData, d: &[u8]) -> Result<(), String> {
    let descriptors = parse_ns_id_descriptors(d).map_err(|e| format!("namespace {} descriptors: {e}", ns.nsid))?;
    for desc in descriptors {
        match desc {
            NsIdDescriptor::Eui64(v) => ns.eui64 = Some(v),
            NsIdDescriptor::Nguid(v) => ns.nguid = Some(v),
            NsIdDescriptor::Uuid(v) => ns.uuid = Some(v),
            NsIdDescriptor::Csi(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::identify::encode_ns_id_descriptors;

    #[test]
    fn namespace_descriptors_fill_the_uuid() {
        let mut ns = NamespaceData { nsid: 1, num_blocks: 8, block_size: 512, ..Default::default() };
        let d = encode_ns_id_descriptors(&[NsIdDescriptor::Uuid([0xAB; 16])]).unwrap();
        apply_ns_descriptors(&mut ns, &d).unwrap();
        assert_eq!(ns.uuid, Some([0xAB; 16]));
    }

    #[test]
    fn a_descriptor_that_runs_off_the_page_is_an_error_not_a_panic() {
        let mut ns = NamespaceData::default();
        assert!(apply_ns_descriptors(&mut ns, &[3u8, 16, 0, 0, 1, 2]).is_err());
    }

    #[test]
    fn namespace_with_zero_size_is_inactive_and_short_data_is_an_error() {
        assert_eq!(parse_namespace(1, &[0u8; 4096]), Ok(None));
        assert!(parse_namespace(1, &[0u8; 10]).is_err());
    }
}
