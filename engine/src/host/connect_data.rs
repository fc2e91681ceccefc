//! Fabrics Connect data, host side (NVMe-oF 1.1a §3.3.1.1, Figure 20).

/// Size of the Connect data.
pub(crate) const LEN: usize = 1024;

/// Writes the Connect data into `out` (at least [`LEN`] bytes): HOSTID at 0,
/// CNTLID at 16 (FFFFh on the admin queue: dynamic controller), SUBNQN at
/// 256, HOSTNQN at 512. NQNs longer than 255 bytes are cut.
pub(crate) fn encode(out: &mut [u8], hostid: [u8; 16], cntlid: u16, subnqn: &str, hostnqn: &str) {
    let Some(out) = out.get_mut(..LEN) else { return };
    out.fill(0);
    out[0..16].copy_from_slice(&hostid);
    out[16..18].copy_from_slice(&cntlid.to_le_bytes());
    for (off, s) in [(256usize, subnqn), (512, hostnqn)] {
        let n = s.len().min(255);
        out[off..off + n].copy_from_slice(&s.as_bytes()[..n]);
    }
}
