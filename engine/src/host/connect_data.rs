//! Fabrics Connect data, host side (NVMe-oF 1.1a §3.3.1.1), via the protocol crate.

use protocol::fabrics::ConnectData;

/// Size of the Connect data.
pub(crate) const LEN: usize = ConnectData::SIZE;

/// Writes the Connect data into `out` (at least [`LEN`] bytes): CNTLID FFFFh
/// on the admin queue asks for a dynamic controller. Fails on an NQN the
/// spec does not allow (empty, too long), before anything is sent.
pub(crate) fn encode(out: &mut [u8], hostid: [u8; 16], cntlid: u16, subnqn: &str, hostnqn: &str) -> Result<(), String> {
    let data = ConnectData::new(hostid, cntlid, subnqn, hostnqn).map_err(|e| format!("Connect data: {e}"))?;
    data.encode_into(out).map_err(|e| format!("Connect data: {e}"))
}

/// Who the host says it is in Fabrics Connect.
#[derive(Debug, Clone)]
pub struct HostIdentity {
    /// Host NQN.
    pub hostnqn: String,
    /// Host identifier.
    pub hostid: [u8; 16],
}
