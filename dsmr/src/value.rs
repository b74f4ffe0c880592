//! Scalar values as a meter writes them: fixed-point decimals, units, timestamps, hex strings.
//!
//! Everything here is integer arithmetic (the ESP32-C3 has no FPU); `f64` helpers exist for hosts.

use core::fmt;

/// A decimal number exactly as written: `raw / 10^decimals`.
///
/// `000301.548` is `Fixed { raw: 301548, decimals: 3 }`. Two values are `==` only when both fields
/// match; use [`Fixed::cmp_value`] or [`Fixed::same_value`] to compare numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fixed {
    /// The digits as an integer, with sign.
    pub raw: i64,
    /// How many digits followed the decimal point (0..=18).
    pub decimals: u8,
}

const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// `10^n` for `n <= 18`, else `None`.
pub(crate) fn pow10(n: u8) -> Option<i64> {
    POW10.get(usize::from(n)).copied()
}

impl Fixed {
    /// A value with the given raw digits and decimals.
    pub const fn new(raw: i64, decimals: u8) -> Self {
        Fixed { raw, decimals }
    }

    /// Parses `[-]digits[.digits]` (at most 18 digits in all). Returns `None` on anything else.
    pub fn parse(s: &[u8]) -> Option<Fixed> {
        let (neg, d) = match s.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, s),
        };
        // One pass: digits and at most one point. More than 18 digits is refused below; the
        // wrapping arithmetic only matters for those (19 digits can exceed `i64`).
        if d.len() > 19 {
            return None;
        }
        let mut raw: i64 = 0;
        let mut dot = usize::MAX;
        for (k, &b) in d.iter().enumerate() {
            let v = b.wrapping_sub(b'0');
            if v <= 9 {
                raw = raw.wrapping_mul(10).wrapping_add(i64::from(v));
            } else if b == b'.' && dot == usize::MAX {
                dot = k;
            } else {
                return None;
            }
        }
        let (digits, decimals) = match d.len().checked_sub(1) {
            None => return None,
            Some(_) if dot == usize::MAX => (d.len(), 0),
            // A point must be followed by a digit (`1.` is refused).
            Some(last) if dot == last => return None,
            Some(last) => (last, last - dot),
        };
        if digits == 0 || digits > 18 {
            return None;
        }
        Some(Fixed { raw: if neg { -raw } else { raw }, decimals: decimals as u8 })
    }

    /// The value scaled to `decimals` digits after the point, rounding half away from zero.
    /// `None` on overflow or when `decimals > 18`.
    pub fn rescale(self, decimals: u8) -> Option<i64> {
        if decimals >= self.decimals {
            self.raw.checked_mul(pow10(decimals - self.decimals)?)
        } else {
            let div = pow10(self.decimals - decimals)?;
            let q = self.raw / div;
            let r = self.raw % div;
            Some(if r.abs() * 2 >= div { q + self.raw.signum() } else { q })
        }
    }

    /// The value in thousandths (e.g. Wh from kWh, W from kW), rounded. `None` on overflow.
    pub fn milli(self) -> Option<i64> {
        self.rescale(3)
    }

    /// Compares two values numerically, whatever their decimals.
    pub fn cmp_value(self, other: Fixed) -> core::cmp::Ordering {
        let d = self.decimals.max(other.decimals);
        match (self.rescale(d), other.rescale(d)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Only reachable with absurd magnitudes; fall back to floating point.
            _ => self.to_f64().total_cmp(&other.to_f64()),
        }
    }

    /// True when both denote the same number (`1.50` and `1.5`).
    pub fn same_value(self, other: Fixed) -> bool {
        self.cmp_value(other) == core::cmp::Ordering::Equal
    }

    /// The value as `f64` (soft-float on targets without an FPU).
    pub fn to_f64(self) -> f64 {
        let p = pow10(self.decimals).unwrap_or(1) as f64;
        self.raw as f64 / p
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = pow10(self.decimals).unwrap_or(1);
        let sign = if self.raw < 0 { "-" } else { "" };
        let a = self.raw.unsigned_abs();
        let p = p.unsigned_abs();
        if self.decimals == 0 {
            write!(f, "{sign}{a}")
        } else {
            write!(f, "{sign}{}.{:0w$}", a / p, a % p, w = usize::from(self.decimals))
        }
    }
}

/// A unit as written after `*` in a COSEM value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// kilowatt-hour
    KWh,
    /// watt-hour
    Wh,
    /// kilowatt
    KW,
    /// watt
    W,
    /// kilovar-hour
    Kvarh,
    /// var-hour
    Varh,
    /// kilovar
    Kvar,
    /// var
    Var,
    /// kilovolt-ampere
    KVA,
    /// volt-ampere
    VA,
    /// kilovolt-ampere-hour
    KVAh,
    /// volt
    V,
    /// ampere
    A,
    /// cubic metre
    M3,
    /// gigajoule
    GJ,
    /// second
    S,
    /// hertz
    Hz,
}

/// What a unit measures; units of one dimension are interchangeable after scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Active energy (Wh).
    Energy,
    /// Active power (W).
    Power,
    /// Reactive energy (varh).
    ReactiveEnergy,
    /// Reactive power (var).
    ReactivePower,
    /// Apparent power (VA).
    ApparentPower,
    /// Apparent energy (VAh).
    ApparentEnergy,
    /// Voltage (V).
    Voltage,
    /// Current (A).
    Current,
    /// Volume (m³).
    Volume,
    /// Heat energy (J).
    Heat,
    /// Duration (s).
    Duration,
    /// Frequency (Hz).
    Frequency,
}

impl Unit {
    /// Recognises a unit string as meters write it (`kWh`, `m3`, `s`, ...; case as in the specs,
    /// plus the lowercase variants some meters send).
    pub fn parse(s: &[u8]) -> Option<Unit> {
        let mut w = [0u8; 8];
        w.get_mut(..s.len())?.copy_from_slice(s);
        Unit::from_packed(u64::from_le_bytes(w), s.len())
    }

    /// [`Unit::parse`] of the first `len` bytes of `w` (little-endian, `len < 8`): the bytes and
    /// the length as one number, looked up in a collision-free hash of the spellings.
    #[inline]
    pub(crate) fn from_packed(w: u64, len: usize) -> Option<Unit> {
        if len >= 8 {
            return None;
        }
        let k = (w & ((1u64 << (8 * len)) - 1)) | ((len as u64) << 56);
        Unit::from_key(k)
    }

    /// [`Unit::from_packed`], comparing with the canonical spelling of `usual` first.
    #[inline(always)]
    pub(crate) fn from_packed_or(w: u64, len: usize, usual: Unit) -> Option<Unit> {
        if len >= 8 {
            return None;
        }
        let k = (w & ((1u64 << (8 * len)) - 1)) | ((len as u64) << 56);
        if CANONICAL_KEYS.get(usual as usize) == Some(&k) {
            return Some(usual);
        }
        Unit::from_key(k)
    }

    #[inline]
    fn from_key(k: u64) -> Option<Unit> {
        let at = *UNIT_SLOTS.1.get(unit_hash(k, UNIT_SLOTS.0))?;
        match UNIT_KEYS.get(usize::from(at)) {
            Some(&(key, unit)) if key == k => Some(unit),
            _ => None,
        }
    }

    /// The canonical spelling (`"kWh"`, `"m3"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::KWh => "kWh",
            Unit::Wh => "Wh",
            Unit::KW => "kW",
            Unit::W => "W",
            Unit::Kvarh => "kvarh",
            Unit::Varh => "varh",
            Unit::Kvar => "kvar",
            Unit::Var => "var",
            Unit::KVA => "kVA",
            Unit::VA => "VA",
            Unit::KVAh => "kVAh",
            Unit::V => "V",
            Unit::A => "A",
            Unit::M3 => "m3",
            Unit::GJ => "GJ",
            Unit::S => "s",
            Unit::Hz => "Hz",
        }
    }

    /// What this unit measures.
    pub fn dimension(self) -> Dimension {
        match self {
            Unit::KWh | Unit::Wh => Dimension::Energy,
            Unit::KW | Unit::W => Dimension::Power,
            Unit::Kvarh | Unit::Varh => Dimension::ReactiveEnergy,
            Unit::Kvar | Unit::Var => Dimension::ReactivePower,
            Unit::KVA | Unit::VA => Dimension::ApparentPower,
            Unit::KVAh => Dimension::ApparentEnergy,
            Unit::V => Dimension::Voltage,
            Unit::A => Dimension::Current,
            Unit::M3 => Dimension::Volume,
            Unit::GJ => Dimension::Heat,
            Unit::S => Dimension::Duration,
            Unit::Hz => Dimension::Frequency,
        }
    }

    /// The base unit of this unit's dimension and the power of ten to get there
    /// (`kWh` → (`"Wh"`, 3), `GJ` → (`"J"`, 9)).
    pub fn base(self) -> (&'static str, u8) {
        match self {
            Unit::KWh => ("Wh", 3),
            Unit::Wh => ("Wh", 0),
            Unit::KW => ("W", 3),
            Unit::W => ("W", 0),
            Unit::Kvarh => ("varh", 3),
            Unit::Varh => ("varh", 0),
            Unit::Kvar => ("var", 3),
            Unit::Var => ("var", 0),
            Unit::KVA => ("VA", 3),
            Unit::VA => ("VA", 0),
            Unit::KVAh => ("VAh", 3),
            Unit::V => ("V", 0),
            Unit::A => ("A", 0),
            Unit::M3 => ("m3", 0),
            Unit::GJ => ("J", 9),
            Unit::S => ("s", 0),
            Unit::Hz => ("Hz", 0),
        }
    }
}

/// Every spelling [`Unit::parse`] accepts (case as in the specs, plus the variants meters send).
const SPELLINGS: [(&[u8], Unit); 42] = [
    (b"kWh", Unit::KWh),
    (b"KWH", Unit::KWh),
    (b"kwh", Unit::KWh),
    (b"Wh", Unit::Wh),
    (b"WH", Unit::Wh),
    (b"wh", Unit::Wh),
    (b"kW", Unit::KW),
    (b"KW", Unit::KW),
    (b"kw", Unit::KW),
    (b"W", Unit::W),
    (b"w", Unit::W),
    (b"kvarh", Unit::Kvarh),
    (b"kVArh", Unit::Kvarh),
    (b"kVarh", Unit::Kvarh),
    (b"varh", Unit::Varh),
    (b"VArh", Unit::Varh),
    (b"Varh", Unit::Varh),
    (b"kvar", Unit::Kvar),
    (b"kVAr", Unit::Kvar),
    (b"kVar", Unit::Kvar),
    (b"var", Unit::Var),
    (b"VAr", Unit::Var),
    (b"Var", Unit::Var),
    (b"kVA", Unit::KVA),
    (b"kva", Unit::KVA),
    (b"VA", Unit::VA),
    (b"va", Unit::VA),
    (b"kVAh", Unit::KVAh),
    (b"V", Unit::V),
    (b"v", Unit::V),
    (b"A", Unit::A),
    (b"a", Unit::A),
    (b"m3", Unit::M3),
    (b"M3", Unit::M3),
    (b"m\xb3", Unit::M3),
    (b"GJ", Unit::GJ),
    (b"gj", Unit::GJ),
    (b"s", Unit::S),
    (b"S", Unit::S),
    (b"Hz", Unit::Hz),
    (b"HZ", Unit::Hz),
    (b"hz", Unit::Hz),
];

/// `CANONICAL_KEYS[unit as usize]`: the key of the unit's first spelling in [`SPELLINGS`]
/// (its canonical one, [`Unit::as_str`]).
static CANONICAL_KEYS: [u64; 17] = {
    let mut k = [0u64; 17];
    let mut i = SPELLINGS.len();
    while i > 0 {
        i -= 1;
        k[SPELLINGS[i].1 as usize] = unit_key(SPELLINGS[i].0);
    }
    k
};

/// A spelling as a number: its bytes (little-endian) and its length in the top byte.
const fn unit_key(s: &[u8]) -> u64 {
    let mut k = (s.len() as u64) << 56;
    let mut i = 0;
    while i < s.len() {
        k |= (s[i] as u64) << (8 * i);
        i += 1;
    }
    k
}

static UNIT_KEYS: [(u64, Unit); 42] = {
    let mut v = [(0u64, Unit::W); 42];
    let mut i = 0;
    while i < 42 {
        v[i] = (unit_key(SPELLINGS[i].0), SPELLINGS[i].1);
        i += 1;
    }
    v
};

#[inline(always)]
const fn unit_hash(k: u64, m: u64) -> usize {
    ((k ^ (k >> 29)).wrapping_mul(m) >> (64 - 8)) as usize
}

/// A collision-free hash of [`UNIT_KEYS`], found at compile time: the multiplier and 256
/// slots holding an index into `UNIT_KEYS` (255: empty).
static UNIT_SLOTS: (u64, [u8; 256]) = {
    let mut m: u64 = 0x9E37_79B9_7F4A_7C15;
    loop {
        let mut slots = [255u8; 256];
        let mut i = 0;
        while i < 42 {
            let h = unit_hash(UNIT_KEYS[i].0, m);
            if slots[h] != 255 {
                break;
            }
            slots[h] = i as u8;
            i += 1;
        }
        if i == 42 {
            break (m, slots);
        }
        m = m.wrapping_add(0x6A09_E667_F3BC_C908) | 1;
    }
};

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number with its unit (`None` when the meter wrote no unit, e.g. an unused M-Bus slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quantity {
    /// The number as written.
    pub value: Fixed,
    /// The unit as written.
    pub unit: Option<Unit>,
}

impl Quantity {
    /// A quantity.
    pub const fn new(value: Fixed, unit: Option<Unit>) -> Self {
        Quantity { value, unit }
    }

    /// The value in the dimension's base unit (W, Wh, V, A, m3, J, s, ...) as a fixed-point number
    /// with the same digits, and that unit's name. Unitless values come back unchanged with `""`.
    pub fn base(self) -> (Fixed, &'static str) {
        match self.unit {
            None => (self.value, ""),
            Some(u) => {
                let (name, shift) = u.base();
                let mut v = self.value;
                let mut s = shift;
                while s > 0 && v.decimals > 0 {
                    v.decimals -= 1;
                    s -= 1;
                }
                match pow10(s).and_then(|p| v.raw.checked_mul(p)) {
                    Some(raw) => (Fixed::new(raw, v.decimals), name),
                    None => (self.value, u.as_str()),
                }
            }
        }
    }

    /// The value in the base unit (see [`Quantity::base`]) as `f64`.
    pub fn base_f64(self) -> f64 {
        self.base().0.to_f64()
    }
}

/// Daylight-saving flag after a timestamp: `S` (summer, DST active) or `W` (winter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dst {
    /// `S`: DST active.
    Summer,
    /// `W`: DST not active.
    Winter,
}

/// A meter timestamp `YYMMDDhhmmss[S|W]`, fields exactly as written (local time of the meter).
///
/// Fields are not range-checked when parsed: meters send placeholders such as `632525252525W`
/// and `000101000001W`. Use [`Timestamp::is_valid`] before converting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Two-digit year (`19` is 2019).
    pub year: u8,
    /// Month 1..12 when valid.
    pub month: u8,
    /// Day 1..31 when valid.
    pub day: u8,
    /// Hour 0..23 when valid.
    pub hour: u8,
    /// Minute 0..59 when valid.
    pub minute: u8,
    /// Second 0..59 when valid.
    pub second: u8,
    /// The S/W flag; `None` when the meter sent none (Iskra IE.5, DSMR 2.2/3).
    pub dst: Option<Dst>,
}

impl Timestamp {
    /// Parses 12 digits with an optional `S`/`W` (either case).
    pub fn parse(s: &[u8]) -> Option<Timestamp> {
        Timestamp::parse_inline(s)
    }

    /// [`Timestamp::parse`], inlined into the one-pass decoder on 64-bit hosts.
    #[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
    pub(crate) fn parse_inline(s: &[u8]) -> Option<Timestamp> {
        let dst = match s.len() {
            12 => None,
            13 => match s.get(12) {
                Some(b'S' | b's') => Some(Dst::Summer),
                Some(b'W' | b'w') => Some(Dst::Winter),
                _ => return None,
            },
            _ => return None,
        };
        // Eight digits, then four, a word at a time: check that every byte is '0'..='9', then
        // combine each pair (tens in the lower byte) into one byte.
        let (Some(hi), Some(lo)) = (s.get(..8), s.get(8..12)) else { return None };
        let mut w8 = [0u8; 8];
        w8.copy_from_slice(hi);
        let mut w4 = [0u8; 8];
        if let Some(dst4) = w4.get_mut(..4) {
            dst4.copy_from_slice(lo);
        }
        let a = pairs(u64::from_le_bytes(w8), 0x3030_3030_3030_3030)?;
        let b = pairs(u64::from_le_bytes(w4), 0x3030_3030)?;
        Some(Timestamp {
            year: a as u8,
            month: (a >> 16) as u8,
            day: (a >> 32) as u8,
            hour: (a >> 48) as u8,
            minute: b as u8,
            second: (b >> 16) as u8,
            dst,
        })
    }

    /// True when the fields form a real date and time (2000..2099).
    pub fn is_valid(&self) -> bool {
        let dim = days_in_month(2000 + u16::from(self.year), self.month);
        self.year <= 99
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= dim
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
    }

    /// The UTC offset in seconds implied by the S/W flag for Central European Time
    /// (S = +02:00, W = +01:00); `None` without a flag.
    pub fn cet_offset_seconds(&self) -> Option<i32> {
        self.dst.map(|d| match d {
            Dst::Summer => 7200,
            Dst::Winter => 3600,
        })
    }

    /// Seconds since 1970-01-01 of the wall-clock time, as if it were UTC (no zone applied).
    /// `None` when invalid.
    pub fn local_epoch_seconds(&self) -> Option<i64> {
        if !self.is_valid() {
            return None;
        }
        let y = 2000 + i64::from(self.year);
        let m = i64::from(self.month);
        let d = i64::from(self.day);
        // Days from civil (H. Hinnant's algorithm).
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second))
    }

    /// Seconds since the Unix epoch (UTC), using the S/W flag as CET/CEST offset.
    /// `None` when invalid or without a flag.
    pub fn unix_seconds(&self) -> Option<i64> {
        Some(self.local_epoch_seconds()? - i64::from(self.cet_offset_seconds()?))
    }
}

/// `w` holds ASCII digits in the bytes where `zeros` has `0x30` (the others are zero). Returns
/// a word whose byte 2k holds the two-digit number of bytes 2k and 2k+1 (odd bytes are
/// garbage), or `None` if a byte is not a digit.
#[inline(always)]
fn pairs(w: u64, zeros: u64) -> Option<u64> {
    let nib = zeros >> 4; // 0x03 per digit byte
    let low = nib * 5; // 0x0F per digit byte
    // Every byte 0x30..=0x3F, and its low nibble plus 6 does not reach 0x10 (so it is <= 9).
    let x = w ^ zeros;
    if w & !low != zeros || (x + nib * 2) & !low != 0 {
        return None;
    }
    // Tens (lower byte) times 10 plus units (next byte): at most 99, no carry between bytes.
    Some(x * 10 + (x >> 8))
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

impl fmt::Display for Timestamp {
    /// ISO 8601: `2019-03-20T18:14:03+01:00`, without offset when there is no S/W flag.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        match self.dst {
            Some(Dst::Summer) => f.write_str("+02:00"),
            Some(Dst::Winter) => f.write_str("+01:00"),
            None => Ok(()),
        }
    }
}

/// Decodes hex pairs (either case) into `out`; returns the number of bytes written.
/// `None` for odd length, a non-hex digit or when `out` is too small.
pub fn decode_hex(hex: &[u8], out: &mut [u8]) -> Option<usize> {
    if !hex.len().is_multiple_of(2) || hex.len() / 2 > out.len() {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (Some(&h), Some(&l)) = (pair.first(), pair.get(1)) else { return None };
        *o = (hex_digit(h)? << 4) | hex_digit(l)?;
    }
    Some(hex.len() / 2)
}

/// The value of one hex digit (either case).
pub fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_parses_as_written() {
        assert_eq!(Fixed::parse(b"000301.548"), Some(Fixed::new(301548, 3)));
        assert_eq!(Fixed::parse(b"-063"), Some(Fixed::new(-63, 0)));
        assert_eq!(Fixed::parse(b"1."), None);
        assert_eq!(Fixed::parse(b""), None);
        assert_eq!(Fixed::parse(b"1.2.3"), None);
        assert_eq!(Fixed::parse(b"0000000000000000000"), None);
        assert_eq!(Fixed::new(301548, 3).milli(), Some(301548));
        assert_eq!(Fixed::new(2, 0).milli(), Some(2000));
        assert_eq!(Fixed::new(12345, 4).rescale(3), Some(1235));
        assert_eq!(Fixed::new(-12345, 4).rescale(3), Some(-1235));
        assert!(Fixed::new(150, 2).same_value(Fixed::new(15, 1)));
        assert_eq!(std::format!("{}", Fixed::new(-5, 3)), "-0.005");
    }

    /// The digit-by-digit definition `Fixed::parse` must agree with.
    fn fixed_reference(s: &[u8]) -> Option<Fixed> {
        let (neg, d) = match s.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, s),
        };
        let (int, frac) = match d.iter().position(|&b| b == b'.') {
            Some(p) => (&d[..p], Some(&d[p + 1..])),
            None => (d, None),
        };
        let all_digits = |x: &[u8]| x.iter().all(u8::is_ascii_digit);
        if !all_digits(int) || frac.is_some_and(|f| f.is_empty() || !all_digits(f)) {
            return None;
        }
        let frac = frac.unwrap_or(&[]);
        let n = int.len() + frac.len();
        if n == 0 || n > 18 {
            return None;
        }
        let raw = int.iter().chain(frac).fold(0i64, |a, &b| a * 10 + i64::from(b - b'0'));
        Some(Fixed::new(if neg { -raw } else { raw }, frac.len() as u8))
    }

    proptest::proptest! {
        #[test]
        fn fixed_parse_agrees_with_the_definition(
            s in proptest::collection::vec(proptest::sample::select(&b"0123456789999..-+e "[..]), 0..24),
        ) {
            proptest::prop_assert_eq!(Fixed::parse(&s), fixed_reference(&s), "{:?}", crate::fmt_bytes(&s));
        }
    }

    fn unit_parse_reference(s: &[u8]) -> Option<Unit> {
        Unit::parse_reference(s)
    }

    impl Unit {
    /// The string match [`Unit::parse`] replaced, as the reference.
    fn parse_reference(s: &[u8]) -> Option<Unit> {
        Some(match s {
            b"kWh" | b"KWH" | b"kwh" => Unit::KWh,
            b"Wh" | b"WH" | b"wh" => Unit::Wh,
            b"kW" | b"KW" | b"kw" => Unit::KW,
            b"W" | b"w" => Unit::W,
            b"kvarh" | b"kVArh" | b"kVarh" => Unit::Kvarh,
            b"varh" | b"VArh" | b"Varh" => Unit::Varh,
            b"kvar" | b"kVAr" | b"kVar" => Unit::Kvar,
            b"var" | b"VAr" | b"Var" => Unit::Var,
            b"kVA" | b"kva" => Unit::KVA,
            b"VA" | b"va" => Unit::VA,
            b"kVAh" => Unit::KVAh,
            b"V" | b"v" => Unit::V,
            b"A" | b"a" => Unit::A,
            b"m3" | b"M3" | b"m\xb3" => Unit::M3,
            b"GJ" | b"gj" => Unit::GJ,
            b"s" | b"S" => Unit::S,
            b"Hz" | b"HZ" | b"hz" => Unit::Hz,
            _ => return None,
        })
    }

    }

    proptest::proptest! {
        /// The packed comparison recognises exactly the spellings the string match did.
        #[test]
        fn unit_parse_agrees_with_the_string_match(
            s in proptest::collection::vec(proptest::sample::select(&b"kKWwHhvVaArRsSmM3\xb3GgJjzZ\0"[..]), 0..10),
        ) {
            proptest::prop_assert_eq!(Unit::parse(&s), unit_parse_reference(&s));
        }
    }

    #[test]
    fn every_spelling_is_recognised() {
        for (s, unit) in SPELLINGS {
            assert_eq!(Unit::parse(s), Some(unit));
            assert_eq!(CANONICAL_KEYS[unit as usize], unit_key(unit.as_str().as_bytes()));
            let mut w = [0u8; 8];
            w[..s.len()].copy_from_slice(s);
            for usual in [Unit::KWh, Unit::KW, Unit::V, Unit::M3, unit] {
                assert_eq!(Unit::from_packed_or(u64::from_le_bytes(w), s.len(), usual), Some(unit));
            }
            assert_eq!(Unit::parse(s), unit_parse_reference(s));
        }
        assert_eq!(Unit::parse(b"kWh\0"), None);
        assert_eq!(Unit::parse(b""), None);
        assert_eq!(Unit::parse(b"kWhkWhkWh"), None);
    }

    #[test]
    fn quantity_base_moves_the_point_first() {
        let q = Quantity::new(Fixed::new(2351, 3), Some(Unit::KW));
        assert_eq!(q.base(), (Fixed::new(2351, 0), "W"));
        let q = Quantity::new(Fixed::new(5, 1), Some(Unit::KWh));
        assert_eq!(q.base(), (Fixed::new(500, 0), "Wh"));
    }

    proptest::proptest! {
        /// The word-at-a-time timestamp parser agrees with a byte-by-byte one.
        #[test]
        fn timestamp_parse_agrees_with_byte_by_byte(
            digits in proptest::collection::vec(proptest::sample::select(&b"0123456789/:9@AWSw \xb9\x39"[..]), 10..15),
        ) {
            let reference = (|| {
                let flag = match digits.len() {
                    12 => None,
                    13 => Some(match digits[12] { b'S' | b's' => Dst::Summer, b'W' | b'w' => Dst::Winter, _ => return None }),
                    _ => return None,
                };
                let mut f = [0u8; 6];
                for (k, v) in f.iter_mut().enumerate() {
                    let (h, l) = (digits[2 * k], digits[2 * k + 1]);
                    if !h.is_ascii_digit() || !l.is_ascii_digit() {
                        return None;
                    }
                    *v = (h - b'0') * 10 + (l - b'0');
                }
                Some(Timestamp { year: f[0], month: f[1], day: f[2], hour: f[3], minute: f[4], second: f[5], dst: flag })
            })();
            proptest::prop_assert_eq!(Timestamp::parse(&digits), reference);
        }
    }

    #[test]
    fn timestamps_keep_fields_and_flag() {
        let t = Timestamp::parse(b"190320181403W").unwrap();
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (19, 3, 20, 18, 14, 3));
        assert_eq!(t.dst, Some(Dst::Winter));
        assert_eq!(std::format!("{t}"), "2019-03-20T18:14:03+01:00");
        // 2017-01-02T19:20:02+01:00 = 1483381202
        assert_eq!(Timestamp::parse(b"170102192002W").unwrap().unix_seconds(), Some(1_483_381_202));
        let bad = Timestamp::parse(b"632525252525W").unwrap();
        assert!(!bad.is_valid());
        assert_eq!(Timestamp::parse(b"230404213104").unwrap().dst, None);
        assert_eq!(Timestamp::parse(b"23040421310X"), None);
    }
}
