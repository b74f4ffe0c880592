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

/// Index of the first byte equal to `needle` in the eight bytes of `w` (little-endian).
#[inline(always)]
pub(crate) fn first8(w: u64, needle: u8) -> Option<usize> {
    let hit = zero_bytes(w ^ (LO * u64::from(needle)));
    if hit == 0 { None } else { Some((hit.trailing_zeros() / 8) as usize) }
}

/// Index of the first byte equal to `needle` in `w`.
#[inline(always)]
pub(crate) fn first16(w: [u8; 16], needle: u8) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
    {
        let (m, _) = sse2::masks(u128::from_le_bytes(w), needle, needle, needle);
        if m == 0 { None } else { Some(m.trailing_zeros() as usize) }
    }
    #[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
    {
        const LO128: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
        let x = u128::from_le_bytes(w) ^ (LO128 * u128::from(needle));
        // Exact for the first match: borrows only run towards later bytes.
        let hit = x.wrapping_sub(LO128) & !x & (LO128 << 7);
        if hit == 0 { None } else { Some((hit.trailing_zeros() / 8) as usize) }
    }
}

/// Index of the first `)`, `*`, `(` or line feed in `hay` (the bytes that end a value's text),
/// sixteen bytes at a time on x86-64, eight elsewhere.
#[inline(always)]
pub(crate) fn find_special(hay: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
    {
        let mut chunks = hay.chunks_exact(16);
        let mut base = 0usize;
        for c in &mut chunks {
            let Ok(w) = <[u8; 16]>::try_from(c) else { break };
            let m = sse2::special(u128::from_le_bytes(w));
            if m != 0 {
                return Some(base + m.trailing_zeros() as usize);
            }
            base += 16;
        }
        chunks.remainder().iter().position(|&b| matches!(b, b')' | b'*' | b'(' | b'\n')).map(|k| base + k)
    }
    #[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
    {
        find_any(hay, [b')', b'*', b'(', b'\n'])
    }
}

/// Bytes per block of [`masks`]: 16 with SSE2 (every x86-64 CPU), else 8 (SWAR on a `u64`).
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
pub(crate) const BLOCK: usize = 32;
/// Bytes per block of [`masks`]: 16 with SSE2 (every x86-64 CPU), else 8 (SWAR on a `u64`).
#[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
pub(crate) const BLOCK: usize = 8;

/// Mask bits per byte in the result of [`masks`] (byte `k` is bit `k * STRIDE`, or the bits
/// `k * STRIDE ..` with the top one set).
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
pub(crate) const STRIDE: u32 = 1;
/// Mask bits per byte in the result of [`masks`].
#[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
pub(crate) const STRIDE: u32 = 8;

/// For one block of [`BLOCK`] bytes (anything else gives empty masks): the bytes equal to `a`
/// and the bytes equal to `b` or `c`, as bit masks (see [`STRIDE`]). Exact at every position.
#[inline(always)]
pub(crate) fn masks(block: &[u8], a: u8, b: u8, c: u8) -> (u64, u64) {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
    {
        let Ok(w) = <[u8; 32]>::try_from(block) else { return (0, 0) };
        let (lo, hi) = w.split_at(16);
        let lo = u128::from_le_bytes(<[u8; 16]>::try_from(lo).unwrap_or([0; 16]));
        let hi = u128::from_le_bytes(<[u8; 16]>::try_from(hi).unwrap_or([0; 16]));
        let (a0, s0) = sse2::masks(lo, a, b, c);
        let (a1, s1) = sse2::masks(hi, a, b, c);
        (a0 | a1 << 16, s0 | s1 << 16)
    }
    #[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
    {
        let Ok(w) = <[u8; 8]>::try_from(block) else { return (0, 0) };
        let w = u64::from_le_bytes(w);
        (eq_bytes(w, a), eq_bytes(w, b) | eq_bytes(w, c))
    }
}

/// The high bit of every byte of `w` that equals `n` (exact: no carries between bytes).
#[cfg_attr(all(target_arch = "x86_64", not(feature = "portable")), allow(dead_code))]
#[inline(always)]
fn eq_bytes(w: u64, n: u8) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let x = w ^ (LO * u64::from(n));
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// SSE2 (part of x86-64, so always present) for [`masks`]. Intrinsics are only callable from a
/// function with the target feature; calling that function is `unsafe` though the feature is
/// enabled for the whole target. Nothing here touches memory through pointers.
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
#[allow(unsafe_code)]
mod sse2 {
    use core::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8};

    #[inline(always)]
    pub(super) fn masks(w: u128, a: u8, b: u8, c: u8) -> (u64, u64) {
        // SAFETY: SSE2 is enabled for every x86-64 target (this module is only built for x86-64).
        unsafe { masks_sse2(w, a, b, c) }
    }

    #[inline(always)]
    pub(super) fn special(w: u128) -> u32 {
        // SAFETY: as in `masks`.
        unsafe { special_sse2(w) }
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn special_sse2(w: u128) -> u32 {
        let v = _mm_set_epi64x((w >> 64) as i64, w as i64);
        let eq = |b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        let m = _mm_or_si128(_mm_or_si128(eq(b')'), eq(b'*')), _mm_or_si128(eq(b'('), eq(b'\n')));
        _mm_movemask_epi8(m) as u32 & 0xFFFF
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn masks_sse2(w: u128, a: u8, b: u8, c: u8) -> (u64, u64) {
        let v = _mm_set_epi64x((w >> 64) as i64, w as i64);
        let ma = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(a as i8)));
        let bc = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)), _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8)));
        (u64::from(ma as u32 & 0xFFFF), u64::from(_mm_movemask_epi8(bc) as u32 & 0xFFFF))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The block masks mark exactly the bytes equal to the needles.
        #[test]
        fn masks_mark_exactly_the_needles(
            block in proptest::collection::vec(proptest::sample::select(&b"\n\x0b\x0a\x00\x01!/ \x80\x8a\xff\x21\x2f\x2e"[..]), BLOCK..=BLOCK),
        ) {
            let (a, bc) = masks(&block, b'\n', b'!', b'/');
            for (k, &byte) in block.iter().enumerate() {
                let bit = 1u64 << (k as u32 * STRIDE + STRIDE - 1);
                proptest::prop_assert_eq!(a & bit != 0, byte == b'\n', "{:?} {}", block, k);
                proptest::prop_assert_eq!(bc & bit != 0, byte == b'!' || byte == b'/', "{:?} {}", block, k);
                // The portable SWAR test, whatever the target.
                let w = u64::from_le_bytes(block[k / 8 * 8..][..8].try_into().unwrap());
                proptest::prop_assert_eq!(eq_bytes(w, b'\n') & (0x80 << (k % 8 * 8)) != 0, byte == b'\n');
            }
            let all: u64 = (0..BLOCK as u32).map(|k| 1u64 << (k * STRIDE + STRIDE - 1)).sum();
            proptest::prop_assert_eq!((a | bc) & !all, 0);
        }
    }

    #[test]
    fn first8_and_first16_find_the_first_match() {
        let hay: std::vec::Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8 % 7 + 38).collect();
        for start in 0..(hay.len() - 16) {
            let w16: [u8; 16] = hay[start..start + 16].try_into().unwrap();
            let w8 = u64::from_le_bytes(hay[start..start + 8].try_into().unwrap());
            for n in 38u8..46 {
                assert_eq!(first16(w16, n), w16.iter().position(|&b| b == n));
                assert_eq!(first8(w8, n), w16[..8].iter().position(|&b| b == n));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn find_special_finds_the_first_special_byte(
            hay in proptest::collection::vec(proptest::sample::select(&b")*(\nabc0123\x29\xa9\x0a\x8a"[..]), 0..80),
        ) {
            proptest::prop_assert_eq!(find_special(&hay), hay.iter().position(|&b| matches!(b, b')' | b'*' | b'(' | b'\n')));
        }
    }

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
