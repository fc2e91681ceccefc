//! Data patterns that name where they belong: every 8-byte word depends on
//! a tag (e.g. the IO size of a pass) and its absolute byte offset on the
//! namespace, so stale data, misplaced data and torn transfers all show.

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The word stored at namespace byte offset `offset_bytes` (a multiple of 8) under `tag`.
pub fn word(tag: u64, offset_bytes: u64) -> u64 {
    mix(tag.rotate_left(40) ^ offset_bytes)
}

/// Fills `buf` as the data at namespace byte offset `offset_bytes` under `tag`.
pub fn fill(buf: &mut [u8], tag: u64, offset_bytes: u64) {
    debug_assert_eq!(offset_bytes % 8, 0);
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let w = word(tag, offset_bytes + 8 * i as u64).to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

/// A new buffer of `len` bytes filled by [`fill`].
pub fn make(len: usize, tag: u64, offset_bytes: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill(&mut v, tag, offset_bytes);
    v
}

/// The index of the first byte of `buf` that is not the pattern, if any.
pub fn first_mismatch(buf: &[u8], tag: u64, offset_bytes: u64) -> Option<usize> {
    for (i, chunk) in buf.chunks(8).enumerate() {
        let w = word(tag, offset_bytes + 8 * i as u64).to_le_bytes();
        if chunk != &w[..chunk.len()] {
            let j = chunk.iter().zip(w.iter()).position(|(a, b)| a != b).unwrap_or(0);
            return Some(8 * i + j);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_differs_by_tag_and_offset_and_checks_itself() {
        let a = make(4096, 512, 0);
        assert_eq!(first_mismatch(&a, 512, 0), None);
        assert_eq!(first_mismatch(&a, 1024, 0), Some(0));
        assert_eq!(first_mismatch(&a, 512, 4096), Some(0));
        let mut b = a.clone();
        b[1000] ^= 1;
        assert_eq!(first_mismatch(&b, 512, 0), Some(1000));
    }
}
