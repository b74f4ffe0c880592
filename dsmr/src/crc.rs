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
fn update(t: &[[u16; 256]; 8], mut crc: u16, data: &[u8]) -> u16 {
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

/// CRC-16/ARC of `data` (check value: `b"123456789"` → `0xBB3D`).
pub fn crc16_arc(data: &[u8]) -> u16 {
    update(&ARC_TABLE, 0, data)
}

/// CRC-16/X25 of `data` (check value: `b"123456789"` → `0x906E`).
pub fn crc16_x25(data: &[u8]) -> u16 {
    update(&X25_TABLE, 0xFFFF, data) ^ 0xFFFF
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
            CrcKind::Arc => update(&ARC_TABLE, self.state, data),
            CrcKind::X25 => update(&X25_TABLE, self.state, data),
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
