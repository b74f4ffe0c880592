//! CRC-16 checksums used by P1 telegrams.
//!
//! DSMR 4/5 and e-MUCS use CRC-16/ARC (reflected polynomial 0xA001, init 0, no final XOR) over every
//! byte from `/` through `!`. Some Holley meters use CRC-16/X25 (reflected 0x8408, init and final XOR
//! 0xFFFF). Both are table driven, eight bytes per step ("slice-by-8": 2 × 8 tables of 256 `u16`,
//! 8 KiB of flash), and never panic.

/// Which CRC a telegram carries after its `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CrcKind {
    /// CRC-16/ARC, the DSMR 4/5 and e-MUCS checksum.
    #[default]
    Arc,
    /// CRC-16/X25 (CRC-16/IBM-SDLC), used by some Holley meters.
    X25,
}

impl CrcKind {
    /// Computes this CRC over `data`.
    pub fn compute(self, data: &[u8]) -> u16 {
        match self {
            CrcKind::Arc => crc16_arc(data),
            CrcKind::X25 => crc16_x25(data),
        }
    }
}

const fn table(poly: u16) -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// `t[k][i]`: the CRC contribution of byte `i` followed by `k` zero bytes.
const fn tables(poly: u16) -> [[u16; 256]; 8] {
    let t0 = table(poly);
    let mut t = [[0u16; 256]; 8];
    t[0] = t0;
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t0[(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static ARC_TABLE: [[u16; 256]; 8] = tables(0xA001);
static X25_TABLE: [[u16; 256]; 8] = tables(0x8408);

// Every lookup indexes a 256-entry table with a `u8`, so it cannot be out of bounds (and the
// compiler drops the check).
#[inline]
fn update_table(t: &[[u16; 256]; 8], mut crc: u16, data: &[u8]) -> u16 {
    let [t0, t1, t2, t3, t4, t5, t6, t7] = t;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let &[b0, b1, b2, b3, b4, b5, b6, b7] = c else { continue };
        let x0 = b0 ^ (crc as u8);
        let x1 = b1 ^ ((crc >> 8) as u8);
        crc = t7[usize::from(x0)]
            ^ t6[usize::from(x1)]
            ^ t5[usize::from(b2)]
            ^ t4[usize::from(b3)]
            ^ t3[usize::from(b4)]
            ^ t2[usize::from(b5)]
            ^ t1[usize::from(b6)]
            ^ t0[usize::from(b7)];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t0[usize::from((crc as u8) ^ b)];
    }
    crc
}

/// True when CRCs of 64 bytes or more are computed by carry-less multiplication (x86-64 with
/// `PCLMULQDQ`, detected at run time); false when the slice-by-8 tables do all the work.
pub fn uses_clmul() -> bool {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
    {
        clmul::available()
    }
    #[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
    {
        false
    }
}

/// Which polynomial: CRC-16/ARC (`false`) or X25 (`true`).
#[inline]
fn update(x25: bool, crc: u16, data: &[u8]) -> u16 {
    let table = if x25 { &X25_TABLE } else { &ARC_TABLE };
    #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
    if let Some(c) = clmul::update(x25, table, crc, data) {
        return c;
    }
    update_table(table, crc, data)
}

/// CRC-16/ARC of `data` (check value: `b"123456789"` → `0xBB3D`).
pub fn crc16_arc(data: &[u8]) -> u16 {
    update(false, 0, data)
}

/// CRC-16/X25 of `data` (check value: `b"123456789"` → `0x906E`).
pub fn crc16_x25(data: &[u8]) -> u16 {
    update(true, 0xFFFF, data) ^ 0xFFFF
}

/// An incremental CRC-16/ARC or X25, for data that arrives in pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc16 {
    kind: CrcKind,
    state: u16,
}

impl Crc16 {
    /// A fresh CRC of the given kind.
    pub fn new(kind: CrcKind) -> Self {
        let state = match kind {
            CrcKind::Arc => 0,
            CrcKind::X25 => 0xFFFF,
        };
        Crc16 { kind, state }
    }
    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.state = match self.kind {
            CrcKind::Arc => update(false, self.state, data),
            CrcKind::X25 => update(true, self.state, data),
        };
    }
    /// The CRC of everything fed so far.
    pub fn finish(&self) -> u16 {
        match self.kind {
            CrcKind::Arc => self.state,
            CrcKind::X25 => self.state ^ 0xFFFF,
        }
    }
}

/// CRC-16 by carry-less multiplication (x86-64 `PCLMULQDQ`), 64 bytes per step.
///
/// The data is folded into a 128-bit remainder that is congruent to it modulo the polynomial:
/// a block `X = L·x^64 + H` moved `D` bits further is `L·x^(64+D) + H·x^D`, and each product
/// is one carry-less multiplication of a 64-bit half by `x^n mod P` (16 bits). The 16 bytes
/// left at the end go through the table code, which finishes the CRC exactly. The fold uses
/// bit-reflected operands, which multiplies each product by `x`: the constants are `x^(n-1)`.
///
/// The only `unsafe` is calling the `#[target_feature]` function, after checking with CPUID
/// (or at compile time) that the CPU has the instruction; the function itself reads the data
/// through ordinary slices.
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
#[allow(unsafe_code)]
mod clmul {
    use core::arch::x86_64::{
        __cpuid, __m128i, _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x, _mm_unpackhi_epi64, _mm_xor_si128,
    };
    use core::sync::atomic::{AtomicU8, Ordering};

    /// Shorter input goes through the tables (the fold needs 64 bytes to start).
    const MIN_LEN: usize = 64;

    /// `x^n mod P` (`poly` with its `x^16` term) as a bit-reflected 64-bit operand.
    const fn xpow(n: u32, poly: u32) -> i64 {
        let mut r: u32 = 1;
        let mut i = 0;
        while i < n {
            r <<= 1;
            if r & 0x1_0000 != 0 {
                r ^= poly;
            }
            i += 1;
        }
        let mut out = 0u64;
        let mut d = 0;
        while d < 16 {
            if (r >> d) & 1 != 0 {
                out |= 1 << (63 - d);
            }
            d += 1;
        }
        out as i64
    }

    /// Fold constants for 512 bits (four lanes) and 128 bits: (low half's, high half's).
    struct Keys {
        k512: (i64, i64),
        k128: (i64, i64),
    }

    const fn keys(poly: u32) -> Keys {
        Keys { k512: (xpow(512 + 64 - 1, poly), xpow(512 - 1, poly)), k128: (xpow(128 + 64 - 1, poly), xpow(128 - 1, poly)) }
    }

    const ARC: Keys = keys(0x1_8005);
    const X25: Keys = keys(0x1_1021);

    /// 0: not checked yet, 1: no PCLMULQDQ, 2: PCLMULQDQ.
    static HAVE: AtomicU8 = AtomicU8::new(0);

    pub(super) fn available() -> bool {
        if cfg!(target_feature = "pclmulqdq") {
            return true;
        }
        match HAVE.load(Ordering::Relaxed) {
            2 => true,
            1 => false,
            _ => {
                // CPUID leaf 1, ECX bit 1: PCLMULQDQ.
                let ok = __cpuid(1).ecx & (1 << 1) != 0;
                HAVE.store(if ok { 2 } else { 1 }, Ordering::Relaxed);
                ok
            }
        }
    }

    /// The CRC state after `data`, or `None` when this CPU or input size is not for this path.
    #[inline]
    pub(super) fn update(x25: bool, table: &[[u16; 256]; 8], crc: u16, data: &[u8]) -> Option<u16> {
        if data.len() < MIN_LEN || !available() {
            return None;
        }
        let keys = if x25 { &X25 } else { &ARC };
        // SAFETY: `available()` checked that the CPU executes PCLMULQDQ (SSE2 is part of
        // x86-64); `fold` does no pointer arithmetic of its own.
        let (rem, tail) = unsafe { fold(keys, crc, data) };
        Some(super::update_table(table, super::update_table(table, 0, &rem), tail))
    }

    /// Folds all whole 16-byte blocks of `data` (at least 64 bytes) with `crc` as the initial
    /// state: a 16-byte remainder whose CRC (initial state 0) is the state after those blocks,
    /// and the bytes after them.
    #[target_feature(enable = "pclmulqdq")]
    fn fold<'a>(keys: &Keys, crc: u16, data: &'a [u8]) -> ([u8; 16], &'a [u8]) {
        // Closures here inherit the target feature.
        let load = |c: &[u8]| -> __m128i {
            let w = u128::from_le_bytes(<[u8; 16]>::try_from(c).unwrap_or([0; 16]));
            _mm_set_epi64x((w >> 64) as i64, w as i64)
        };
        let mul = |x: __m128i, k: __m128i| -> __m128i {
            _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11))
        };
        let k512 = _mm_set_epi64x(keys.k512.1, keys.k512.0);
        let k128 = _mm_set_epi64x(keys.k128.1, keys.k128.0);
        let mut blocks = data.chunks_exact(64);
        let Some(first) = blocks.next() else { return ([0; 16], data) };
        // The initial state is the same as that value added to the first two bytes.
        let mut x0 = _mm_xor_si128(load(first.get(..16).unwrap_or(&[])), _mm_set_epi64x(0, i64::from(crc)));
        let mut x1 = load(first.get(16..32).unwrap_or(&[]));
        let mut x2 = load(first.get(32..48).unwrap_or(&[]));
        let mut x3 = load(first.get(48..64).unwrap_or(&[]));
        for b in &mut blocks {
            x0 = _mm_xor_si128(mul(x0, k512), load(b.get(..16).unwrap_or(&[])));
            x1 = _mm_xor_si128(mul(x1, k512), load(b.get(16..32).unwrap_or(&[])));
            x2 = _mm_xor_si128(mul(x2, k512), load(b.get(32..48).unwrap_or(&[])));
            x3 = _mm_xor_si128(mul(x3, k512), load(b.get(48..64).unwrap_or(&[])));
        }
        let mut x = _mm_xor_si128(mul(x0, k128), x1);
        x = _mm_xor_si128(mul(x, k128), x2);
        x = _mm_xor_si128(mul(x, k128), x3);
        let rest = blocks.remainder();
        let mut tail = rest.chunks_exact(16);
        for b in &mut tail {
            x = _mm_xor_si128(mul(x, k128), load(b));
        }
        let lo = _mm_cvtsi128_si64(x) as u64;
        let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(x, x)) as u64;
        let rem = (u128::from(hi) << 64 | u128::from(lo)).to_le_bytes();
        (rem, tail.remainder())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(poly: u16, init: u16, data: &[u8]) -> u16 {
        let mut crc = init;
        for &b in data {
            crc ^= u16::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ poly } else { crc >> 1 };
            }
        }
        crc
    }

    #[test]
    fn slice_by_8_matches_the_bitwise_definition() {
        let data: std::vec::Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in 0..data.len() {
            let d = &data[..len];
            assert_eq!(crc16_arc(d), bitwise(0xA001, 0, d), "arc len {len}");
            assert_eq!(crc16_x25(d), bitwise(0x8408, 0xFFFF, d) ^ 0xFFFF, "x25 len {len}");
        }
    }

    proptest::proptest! {
        /// The fast path (carry-less multiplication where the CPU has it) and the tables agree
        /// with the bitwise definition on random data split at a random point.
        #[test]
        fn fast_crc_matches_the_tables_and_the_bitwise_definition(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
            split in proptest::num::usize::ANY,
        ) {
            let split = split % (data.len() + 1);
            for (x25, poly, init) in [(false, 0xA001, 0), (true, 0x8408, 0xFFFF)] {
                let want = bitwise(poly, init, &data);
                proptest::prop_assert_eq!(update(x25, init, &data), want);
                let table = if x25 { &X25_TABLE } else { &ARC_TABLE };
                proptest::prop_assert_eq!(update_table(table, init, &data), want);
                let (a, b) = data.split_at(split);
                let mut c = Crc16::new(if x25 { CrcKind::X25 } else { CrcKind::Arc });
                c.update(a);
                c.update(b);
                proptest::prop_assert_eq!(c.finish(), if x25 { want ^ 0xFFFF } else { want });
            }
        }
    }

    #[test]
    fn check_values_match_the_catalogue() {
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
        assert_eq!(crc16_x25(b"123456789"), 0x906E);
        let mut c = Crc16::new(CrcKind::X25);
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0x906E);
        let mut c = Crc16::new(CrcKind::Arc);
        c.update(b"12345");
        c.update(b"6789");
        assert_eq!(c.finish(), 0xBB3D);
    }
}
