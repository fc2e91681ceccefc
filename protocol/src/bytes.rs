//! Little-endian field access on byte slices that cannot panic.

use crate::WireError;

/// Reads a little-endian integer of `N` bytes at `off`, or reports a short buffer.
pub(crate) fn le_array<const N: usize>(buf: &[u8], off: usize) -> Result<[u8; N], WireError> {
    buf.get(off..off + N).and_then(|s| s.try_into().ok()).ok_or(WireError::Truncated { need: off + N, have: buf.len() })
}

pub(crate) fn u16_at(buf: &[u8], off: usize) -> Result<u16, WireError> {
    le_array::<2>(buf, off).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(buf: &[u8], off: usize) -> Result<u32, WireError> {
    le_array::<4>(buf, off).map(u32::from_le_bytes)
}

pub(crate) fn u64_at(buf: &[u8], off: usize) -> Result<u64, WireError> {
    le_array::<8>(buf, off).map(u64::from_le_bytes)
}
