//! Byte search eight bytes at a time (SWAR), without `unsafe`. Used to find line ends and
//! delimiters: a byte-at-a-time loop was the decoder's main cost.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A word with the high bit set in each byte of `w` that is zero (exact: no false positives
/// below the first zero byte, which is all the callers look at).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

/// Index of the first byte in `hay` equal to any of `needles`.
#[inline]
pub(crate) fn find_any<const K: usize>(hay: &[u8], needles: [u8; K]) -> Option<usize> {
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0usize;
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        let w = u64::from_le_bytes(word);
        let mut hit = 0u64;
        for n in needles {
            hit |= zero_bytes(w ^ (LO * u64::from(n)));
        }
        if hit != 0 {
            return Some(base + (hit.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    let rem = chunks.remainder();
    if rem.is_empty() {
        return None;
    }
    // The last 8 bytes (overlapping what was checked) when there are that many; else the short
    // slice byte by byte.
    let Some(tail) = hay.len().checked_sub(8).and_then(|s| hay.get(s..)) else {
        return rem.iter().position(|b| needles.contains(b));
    };
    let mut word = [0u8; 8];
    word.copy_from_slice(tail);
    let w = u64::from_le_bytes(word);
    let mut hit = 0u64;
    for n in needles {
        hit |= zero_bytes(w ^ (LO * u64::from(n)));
    }
    // Drop the bytes already checked (the first 8 - rem.len() of the tail).
    let skip = 8 - rem.len();
    let hit = hit >> (skip * 8);
    if hit == 0 { None } else { Some(base + (hit.trailing_zeros() / 8) as usize) }
}

/// Index of the first `needle` in `hay`.
#[inline]
pub(crate) fn find(hay: &[u8], needle: u8) -> Option<usize> {
    find_any(hay, [needle])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_match_like_position_does() {
        let hay: std::vec::Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        for start in 0..40 {
            for len in 0..(hay.len() - start) {
                let h = &hay[start..start + len];
                for n in [0u8, 1, 10, 33, 40, 41, 0x80, 0xFF] {
                    assert_eq!(find(h, n), h.iter().position(|&b| b == n), "{start} {len} {n}");
                    assert_eq!(find_any(h, [n, b'\n', b'!']), h.iter().position(|&b| b == n || b == b'\n' || b == b'!'));
                }
            }
        }
    }
}
