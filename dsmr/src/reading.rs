//! The typed reading: every object of DSMR 2.2/3.0/4.x/5.0.2, e-MUCS (Belgium) and Luxembourg
//! (Smarty) that a gateway needs, in fixed-size storage.
//!
//! [`Reading::decode`] never fails and never panics: objects it does not know are counted in
//! [`Reading::unknown_objects`] (the [`Telegram`] view still has them), and values that are
//! malformed, too long or in the wrong unit are left out and described in [`Reading::issues`].

use crate::telegram::{Line, Obis, Telegram, Value};
use crate::value::{Dimension, Fixed, Quantity, Timestamp, Unit};
use heapless::Vec;

/// Longest header line kept (bytes after `/`).
pub const HEADER_CAP: usize = 64;
/// Longest identifier kept, as written (DSMR: Sn with n up to 96).
pub const ID_CAP: usize = 96;
/// Longest decoded text message kept (DSMR 5.0.2: up to 1024 characters).
pub const TEXT_CAP: usize = 1024;
/// Longest decoded text code kept (`0-0:96.13.1`, DSMR 3/4: up to 16 bytes; 64 allowed).
pub const TEXT_CODE_CAP: usize = 64;
/// Power-failure log entries kept (DSMR: at most 10).
pub const FAILURE_LOG_CAP: usize = 10;
/// Monthly peaks kept (e-MUCS: 13 months).
pub const PEAK_HISTORY_CAP: usize = 13;
/// Issues kept in detail (all are counted in [`Reading::issue_count`]).
pub const ISSUES_CAP: usize = 8;
/// M-Bus channels (1..=4).
pub const MBUS_CHANNELS: usize = 4;

/// Bytes as written by the meter (not necessarily UTF-8: headers can hold 0x02 or 0xAB).
pub type Bytes<const N: usize> = Vec<u8, N>;

/// The objects [`Reading::direct`] decodes, as their canonical text (`1-0:1.8.1`: no leading
/// zeros, no `*F`) packed into a zero-padded little-endian `u128`, sorted by that key.
static DIRECT_OBIS: [(u128, Obis, Kind); DIRECT_COUNT] = sorted_keys(direct_list());
const DIRECT_COUNT: usize = 58 + 5 + 6 * 4;

/// What [`Reading::direct`] does with a line of a [`DIRECT_OBIS`] object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A quantity into [`Reading::quantity_slot_mut`]`(slot)`, whose unit must have this dimension.
    Quantity(u8, Dimension),
    /// A count into [`Reading::count_slot_mut`]`(slot)`.
    Count(u8),
    /// `0-0:96.14.0`.
    Tariff,
    /// `1-0:99.97.0`.
    FailureLog,
    /// `0-0:96.13.0` (only `()` here).
    Message,
    /// `0-0:96.3.10`.
    Switch,
    /// `0-n:24.4.0` on channel `n`.
    Valve(u8),
    /// `0-0:17.0.0`.
    Threshold,
    /// `1-0:1.6.0`.
    MaxDemand,
    /// `0-0:98.1.0`.
    PeakHistory,
    /// Identifiers, the timestamp, M-Bus lines ([`Reading::direct_other`]).
    Other,
}

/// The [`Kind`] of each object of [`direct_list`].
const fn kind_of(o: Obis) -> Kind {
    use Dimension as D;
    const fn phase(c: u8, base: u8) -> u8 {
        (c - base) / 20
    }
    match (o.a, o.b, o.c, o.d, o.e) {
        (1, 0, c @ 1..=4, 8, e) => {
            Kind::Quantity((c - 1) * 5 + e, if c <= 2 { D::Energy } else { D::ReactiveEnergy })
        }
        (1, 0, 1, 7, 0) => Kind::Quantity(20, D::Power),
        (1, 0, 2, 7, 0) => Kind::Quantity(21, D::Power),
        (1, 0, 3, 7, 0) => Kind::Quantity(22, D::ReactivePower),
        (1, 0, 4, 7, 0) => Kind::Quantity(23, D::ReactivePower),
        (1, 0, 9, 7, 0) => Kind::Quantity(24, D::ApparentPower),
        (1, 0, 10, 7, 0) => Kind::Quantity(25, D::ApparentPower),
        (1, 0, 14, 7, 0) => Kind::Quantity(26, D::Frequency),
        (1, 0, 1, 4, 0) => Kind::Quantity(27, D::Power),
        (1, 0, c @ (32 | 52 | 72), 7, 0) => Kind::Quantity(28 + phase(c, 32), D::Voltage),
        (1, 0, c @ (31 | 51 | 71), 7, 0) => Kind::Quantity(31 + phase(c, 31), D::Current),
        (1, 0, c @ (21 | 41 | 61), 7, 0) => Kind::Quantity(34 + phase(c, 21), D::Power),
        (1, 0, c @ (22 | 42 | 62), 7, 0) => Kind::Quantity(37 + phase(c, 22), D::Power),
        (1, 0, c @ (31 | 51 | 71), 4, 0) => Kind::Quantity(40 + phase(c, 31), D::Current),
        (0, 0, 96, 7, 21) => Kind::Count(0),
        (0, 0, 96, 7, 9) => Kind::Count(1),
        (1, 0, c @ (32 | 52 | 72), 32, 0) => Kind::Count(2 + phase(c, 32)),
        (1, 0, c @ (32 | 52 | 72), 36, 0) => Kind::Count(5 + phase(c, 32)),
        (0, 0, 96, 14, 0) => Kind::Tariff,
        (1, 0, 99, 97, 0) => Kind::FailureLog,
        (0, 0, 96, 13, 0) => Kind::Message,
        (0, 0, 96, 3, 10) => Kind::Switch,
        (0, ch, 24, 4, 0) => Kind::Valve(ch),
        (0, 0, 17, 0, 0) => Kind::Threshold,
        (1, 0, 1, 6, 0) => Kind::MaxDemand,
        (0, 0, 98, 1, 0) => Kind::PeakHistory,
        _ => Kind::Other,
    }
}

const fn direct_list() -> [Obis; DIRECT_COUNT] {
    let mut v = [Obis::new(0, 0, 0, 0, 0); DIRECT_COUNT];
    let mut n = 0;
    let mut c = 1;
    while c <= 4 {
        let mut e = 0;
        while e <= 4 {
            v[n] = Obis::new(1, 0, c, 8, e);
            n += 1;
            e += 1;
        }
        c += 1;
    }
    let seven: [u8; 19] = [1, 2, 3, 4, 9, 10, 14, 32, 52, 72, 31, 51, 71, 21, 41, 61, 22, 42, 62];
    let mut k = 0;
    while k < seven.len() {
        v[n] = Obis::new(1, 0, seven[k], 7, 0);
        n += 1;
        k += 1;
    }
    let four: [u8; 4] = [1, 31, 51, 71];
    k = 0;
    while k < four.len() {
        v[n] = Obis::new(1, 0, four[k], 4, 0);
        n += 1;
        k += 1;
    }
    let phases: [u8; 3] = [32, 52, 72];
    k = 0;
    while k < phases.len() {
        v[n] = Obis::new(1, 0, phases[k], 32, 0);
        v[n + 1] = Obis::new(1, 0, phases[k], 36, 0);
        n += 2;
        k += 1;
    }
    v[n] = Obis::new(0, 0, 96, 13, 0);
    n += 1;
    v[n] = Obis::new(0, 0, 96, 7, 21);
    v[n + 1] = Obis::new(0, 0, 96, 7, 9);
    v[n + 2] = Obis::new(1, 0, 99, 97, 0);
    v[n + 3] = Obis::new(0, 0, 96, 14, 0);
    v[n + 4] = Obis::new(0, 0, 1, 0, 0);
    v[n + 5] = Obis::new(1, 3, 0, 2, 8);
    v[n + 6] = Obis::new(0, 0, 96, 1, 4);
    v[n + 7] = Obis::new(0, 0, 96, 1, 1);
    v[n + 8] = Obis::new(0, 0, 96, 1, 0);
    v[n + 9] = Obis::new(0, 0, 96, 3, 10);
    v[n + 10] = Obis::new(0, 0, 17, 0, 0);
    v[n + 11] = Obis::new(1, 0, 1, 6, 0);
    v[n + 12] = Obis::new(0, 0, 98, 1, 0);
    n += 13;
    let mut ch = 1;
    while ch <= 4 {
        v[n] = Obis::new(0, ch, 24, 1, 0);
        v[n + 1] = Obis::new(0, ch, 96, 1, 0);
        v[n + 2] = Obis::new(0, ch, 96, 1, 1);
        v[n + 3] = Obis::new(0, ch, 24, 2, 1);
        v[n + 4] = Obis::new(0, ch, 24, 2, 3);
        v[n + 5] = Obis::new(0, ch, 24, 4, 0);
        n += 6;
        ch += 1;
    }
    assert!(n == DIRECT_COUNT);
    v
}

const fn obis_key(o: Obis) -> u128 {
    const fn put(b: &mut [u8; 16], mut i: usize, v: u8, sep: u8) -> usize {
        if v >= 100 {
            b[i] = b'0' + v / 100;
            i += 1;
        }
        if v >= 10 {
            b[i] = b'0' + v / 10 % 10;
            i += 1;
        }
        b[i] = b'0' + v % 10;
        i += 1;
        if sep != 0 {
            b[i] = sep;
            i += 1;
        }
        i
    }
    let mut b = [0u8; 16];
    let mut i = put(&mut b, 0, o.a, b'-');
    i = put(&mut b, i, o.b, b':');
    i = put(&mut b, i, o.c, b'.');
    i = put(&mut b, i, o.d, b'.');
    put(&mut b, i, o.e, 0);
    u128::from_le_bytes(b)
}

const fn sorted_keys(list: [Obis; DIRECT_COUNT]) -> [(u128, Obis, Kind); DIRECT_COUNT] {
    let mut v = [(0u128, Obis::new(0, 0, 0, 0, 0), Kind::Other); DIRECT_COUNT];
    let mut n = 0;
    while n < DIRECT_COUNT {
        // Insertion sort.
        let item = (obis_key(list[n]), list[n], kind_of(list[n]));
        let mut j = n;
        while j > 0 && v[j - 1].0 > item.0 {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = item;
        n += 1;
    }
    v
}

/// The OBIS reference at the start of `s` when its text is the canonical text of one of
/// [`DIRECT_OBIS`] and `(` follows: the reference and the index of `(`. Compares the first 16
/// bytes as one number instead of parsing the fields; `None` otherwise (also when fewer than 16
/// bytes remain).
#[inline(always)]
fn known_obis(s: &[u8]) -> Option<(Kind, Obis, usize)> {
    let w = <[u8; 16]>::try_from(s.get(..16)?).ok()?;
    let p = crate::scan::first16(w, b'(')?;
    // The bytes before `(` (`p` < 16), masked as two words to keep away from 128-bit shifts.
    let lo = u64::from_le_bytes(<[u8; 8]>::try_from(w.get(..8)?).ok()?);
    let hi = u64::from_le_bytes(<[u8; 8]>::try_from(w.get(8..)?).ok()?);
    let &(mlo, mhi) = PREFIX_MASKS.get(p)?;
    let key = u128::from(lo & mlo) | (u128::from(hi & mhi) << 64);
    let at = *OBIS_SLOTS.1.get(obis_hash(key, OBIS_SLOTS.0))?;
    match DIRECT_OBIS.get(usize::from(at)) {
        Some(&(k, o, kind)) if k == key => Some((kind, o, p)),
        _ => None,
    }
}

/// `PREFIX_MASKS[p]`: the low and high word masks keeping the first `p` bytes of 16.
static PREFIX_MASKS: [(u64, u64); 16] = {
    let mut m = [(0u64, 0u64); 16];
    let mut p = 0;
    while p < 16 {
        m[p] = if p <= 8 {
            (if p == 8 { u64::MAX } else { (1u64 << (8 * p)) - 1 }, 0)
        } else {
            (u64::MAX, (1u64 << (8 * (p - 8))) - 1)
        };
        p += 1;
    }
    m
};

/// Slot of `key` in [`OBIS_SLOTS`] for the multiplier `m`.
#[inline(always)]
const fn obis_hash(key: u128, m: u64) -> usize {
    let (lo, hi) = (key as u64, (key >> 64) as u64);
    ((lo ^ hi.rotate_left(29)).wrapping_mul(m) >> (64 - 10)) as usize
}

/// A collision-free hash of the [`DIRECT_OBIS`] keys, found at compile time: the multiplier and
/// 1024 slots holding an index into `DIRECT_OBIS` (255: empty).
static OBIS_SLOTS: (u64, [u8; 1024]) = {
    let mut m: u64 = 0x9E37_79B9_7F4A_7C15;
    loop {
        let mut slots = [255u8; 1024];
        let mut i = 0;
        while i < DIRECT_COUNT {
            let h = obis_hash(DIRECT_OBIS[i].0, m);
            if slots[h] != 255 {
                break;
            }
            slots[h] = i as u8;
            i += 1;
        }
        if i == DIRECT_COUNT {
            break (m, slots);
        }
        m = m.wrapping_add(0x6A09_E667_F3BC_C908) | 1;
    }
};

// The number, unit and timestamp readers are inlined into every caller on 64-bit hosts, where
// that is measurably faster; elsewhere (the size-optimised ESP32 build) the compiler decides,
// which keeps about 19 KB of copies out of flash.

/// `digits[.digits]` (1..=18 digits) at the start of `s`: the raw value, the decimals and the
/// length. `None` for anything [`Fixed::parse`] would read differently (a sign, no digit before
/// the point, too many digits) so the caller falls back to the general decoder.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), inline)]
fn number(s: &[u8]) -> Option<(i64, u8, usize)> {
    let (int, n) = digits(s)?;
    if n == 0 {
        return None;
    }
    if s.get(n) != Some(&b'.') {
        return Some((i64::try_from(int).ok()?, 0, n));
    }
    let (frac, decimals) = digits(s.get(n + 1..)?)?;
    if decimals == 0 || n + decimals > 18 {
        return None;
    }
    let raw = int.checked_mul(u64::try_from(crate::value::pow10(decimals as u8)?).ok()?)?.checked_add(frac)?;
    Some((i64::try_from(raw).ok()?, decimals as u8, n + 1 + decimals))
}

/// [`number`] at `s[v..]`, returning the index after it: eight bytes at a time for up to
/// seven integer and seven decimal digits, else [`number`] itself.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), inline)]
fn number_at(s: &[u8], v: usize) -> Option<(i64, u8, usize)> {
    if let Some(w) = load8(s, v) {
        let (mut int, mut k) = digits8(w);
        if k == 0 {
            return None;
        }
        // Whether the digits end within what was read.
        let mut ended = k < 8;
        if !ended {
            // Up to seven more (the durations of the failure log have ten digits).
            if let Some(w) = load8(s, v + 8) {
                let (more, k2) = digits8(w);
                if k2 < 8 {
                    int = int * crate::value::pow10(k2 as u8).unwrap_or(1) as u64 + more;
                    k += k2;
                    ended = true;
                }
            }
        }
        if ended {
            let dot = v + k;
            if s.get(dot) != Some(&b'.') {
                return Some((int as i64, 0, dot));
            }
            if let Some(w) = load8(s, dot + 1) {
                let (frac, d) = digits8(w);
                if d == 0 {
                    return None;
                }
                if d < 8 && k + d <= 18 {
                    let p = crate::value::pow10(d as u8).unwrap_or(1) as u64;
                    return Some(((int * p + frac) as i64, d as u8, dot + 1 + d));
                }
            }
        }
    }
    let (raw, d, n) = number(s.get(v..)?)?;
    Some((raw, d, v + n))
}

/// The eight bytes at `s[i..]` as a little-endian word.
#[inline(always)]
fn load8(s: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(<[u8; 8]>::try_from(s.get(i..i.checked_add(8)?)?).ok()?))
}

/// The unit from `s[u..]` up to the first `)` (within eight bytes) and the index of that `)`;
/// `usual` is the unit to try first.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), inline)]
fn unit_at(s: &[u8], u: usize, usual: Unit) -> Option<(Unit, usize)> {
    let w = match load8(s, u) {
        Some(w) => w,
        None => {
            // Near the end of the body: the bytes left, padded with zeros (never `)`).
            let rest = s.get(u..)?;
            let mut b = [0u8; 8];
            b.get_mut(..rest.len())?.copy_from_slice(rest);
            u64::from_le_bytes(b)
        }
    };
    let q = crate::scan::first8(w, b')')?;
    Some((Unit::from_packed_or(w, q, usual)?, u + q))
}

/// The unit meters write for a quantity of dimension `d`.
#[inline(always)]
fn usual_unit(d: Dimension) -> Unit {
    match d {
        Dimension::Energy => Unit::KWh,
        Dimension::Power => Unit::KW,
        Dimension::ReactiveEnergy => Unit::Kvarh,
        Dimension::ReactivePower => Unit::Kvar,
        Dimension::ApparentPower => Unit::KVA,
        Dimension::ApparentEnergy => Unit::KVAh,
        Dimension::Voltage => Unit::V,
        Dimension::Current => Unit::A,
        Dimension::Volume => Unit::M3,
        Dimension::Heat => Unit::GJ,
        Dimension::Duration => Unit::S,
        Dimension::Frequency => Unit::Hz,
    }
}

/// `digits[.digits]*unit)` at `s[v..]`: the quantity and the index of its `)` (`usual`: see
/// [`unit_at`]).
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), inline)]
fn quantity_at(s: &[u8], v: usize, usual: Unit) -> Option<(Quantity, usize)> {
    let (raw, decimals, n) = number_at(s, v)?;
    if s.get(n) != Some(&b'*') {
        return None;
    }
    let (unit, close) = unit_at(s, n + 1, usual)?;
    Some((Quantity::new(Fixed::new(raw, decimals), Some(unit)), close))
}

/// A timestamp (12 digits and an optional S/W flag) and `)` at `s[v..]`: it and the index of
/// the `)`.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), inline)]
fn timestamp_at(s: &[u8], v: usize) -> Option<(Timestamp, usize)> {
    let close = match (s.get(v + 12), s.get(v + 13)) {
        (_, Some(b')')) => v + 13,
        (Some(b')'), _) => v + 12,
        _ => return None,
    };
    Some((Timestamp::parse_inline(s.get(v..close)?)?, close))
}

/// `0-0:98.1.0(n)(OBIS)(OBIS)` and `n` (1..=13) entries `(TSTmonth)(TSTpeak)(v*unit)` in a
/// unit of power, from `s[v..]` (after the first `(`): the entries and the index after the
/// last `)`, or `None` for anything else, which [`Reading::peak_history`] handles.
#[inline(never)]
fn direct_peak_history(s: &[u8], v: usize) -> Option<(Vec<MonthlyPeak, PEAK_HISTORY_CAP>, usize)> {
    let (count, decimals, n) = number_at(s, v)?;
    if decimals != 0 || n - v > 10 || count == 0 || count > PEAK_HISTORY_CAP as i64 {
        return None;
    }
    let mut at = n;
    // `)(OBIS)(OBIS`: two profile references (no unit).
    for _ in 0..2 {
        if s.get(at..at + 2)? != b")(" {
            return None;
        }
        let rest = s.get(at + 2..)?;
        let close = crate::scan::find_special(rest)?;
        if rest.get(close) != Some(&b')') {
            return None;
        }
        is_obis(rest.get(..close)?).then_some(())?;
        at += 2 + close;
    }
    // At the second reference's `)`.
    let mut hist = Vec::new();
    for _ in 0..count {
        if s.get(at + 1) != Some(&b'(') {
            return None;
        }
        let (month, close) = timestamp_at(s, at + 2)?;
        if s.get(close + 1) != Some(&b'(') {
            return None;
        }
        let (occurred, close) = timestamp_at(s, close + 2)?;
        if s.get(close + 1) != Some(&b'(') {
            return None;
        }
        let (value, close) = quantity_at(s, close + 2, Unit::KW)?;
        if value.unit?.dimension() != Dimension::Power {
            return None;
        }
        hist.push(MonthlyPeak { month, occurred, value }).ok()?;
        at = close;
    }
    Some((hist, at + 1))
}

/// True when `t` is an OBIS reference ([`Obis::parse`]); the profile headers meters write
/// are compared as they are.
#[inline(always)]
fn is_obis(t: &[u8]) -> bool {
    matches!(t, b"1-0:1.6.0" | b"0-0:96.7.19") || Obis::parse(t).is_some()
}

/// `1-0:99.97.0` when every entry is well formed, from `s[v..]` (after the first `(`):
/// `n)(0-0:96.7.19)` then `n` (1..=10) pairs `(timestamp)(seconds[*s])`. Returns the entries
/// and the index after the last `)`, or `None` for anything else, which
/// [`Reading::failure_log`] then handles with its issues.
#[inline(never)]
fn direct_failure_log(s: &[u8], v: usize) -> Option<(Vec<PowerFailure, FAILURE_LOG_CAP>, usize)> {
    let (count, decimals, n) = number_at(s, v)?;
    if decimals != 0 || n - v > 10 || count == 0 || count > FAILURE_LOG_CAP as i64 {
        return None;
    }
    // `)(` and the profile's OBIS reference (no unit).
    if s.get(n..n + 2)? != b")(" {
        return None;
    }
    let rest = s.get(n + 2..)?;
    let close = crate::scan::find_special(rest)?;
    if rest.get(close) != Some(&b')') {
        return None;
    }
    is_obis(rest.get(..close)?).then_some(())?;
    // At each entry, `at` is the index of the `)` before it.
    let mut at = n + 2 + close;
    let mut log = Vec::new();
    for _ in 0..count {
        if s.get(at + 1) != Some(&b'(') {
            return None;
        }
        let (end, close) = timestamp_at(s, at + 2)?;
        // `(seconds)` or `(seconds*s)`.
        if s.get(close + 1) != Some(&b'(') {
            return None;
        }
        let (duration, decimals, n) = number_at(s, close + 2)?;
        if decimals != 0 {
            return None;
        }
        at = match (s.get(n), s.get(n + 1), s.get(n + 2)) {
            (Some(b')'), _, _) => n,
            (Some(b'*'), Some(b's' | b'S'), Some(b')')) => n + 2,
            _ => return None,
        };
        log.push(PowerFailure { end, duration_s: u64::try_from(duration).ok()? }).ok()?;
    }
    Some((log, at + 1))
}

/// The run of ASCII digits at the start of `s` (at most 18): its value and length. `None` for
/// more than 18 digits. Eight digits at a time while eight bytes remain.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), inline)]
fn digits(s: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    let mut n = 0usize;
    loop {
        let rest = s.get(n..).unwrap_or(&[]);
        let Some(word) = rest.get(..8) else {
            // Fewer than eight bytes left: one at a time.
            for &b in rest {
                let d = b.wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                value = value.wrapping_mul(10).wrapping_add(u64::from(d));
                n += 1;
            }
            return if n > 18 { None } else { Some((value, n)) };
        };
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let (v, k) = digits8(u64::from_le_bytes(w));
        value = value.wrapping_mul(crate::value::pow10(k as u8).unwrap_or(1) as u64).wrapping_add(v);
        n += k;
        if n > 18 {
            return None;
        }
        if k < 8 {
            return Some((value, n));
        }
    }
}

/// The leading ASCII digits of eight bytes (the first byte lowest): their value and count.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), inline)]
fn digits8(w: u64) -> (u64, usize) {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let x = w ^ ZEROS;
    // Non-zero in every byte that is not a digit: high nibble not 3, or low nibble above 9.
    // Carries only move towards later bytes, which are past the first non-digit anyway.
    let non_digit = (x & HIGH) | (x.wrapping_add(0x0606_0606_0606_0606) & HIGH);
    let k = (non_digit.trailing_zeros() / 8) as usize;
    if k == 0 {
        return (0, 0);
    }
    // The k digits to the top bytes (zeros below act as leading zeros), then pairs, quads, all.
    let x = x << (8 * (8 - k));
    let x = (x.wrapping_mul(10).wrapping_add(x >> 8)) & 0x00FF_00FF_00FF_00FF;
    let x = (x.wrapping_mul(100).wrapping_add(x >> 16)) & 0x0000_FFFF_0000_FFFF;
    let x = (x.wrapping_mul(10_000).wrapping_add(x >> 32)) & 0xFFFF_FFFF;
    (x, k)
}

/// The value of a hex digit (callers have checked it is one; anything else gives 0).
#[inline(always)]
fn hex_value(b: u8) -> u8 {
    crate::value::hex_digit(b).unwrap_or(0)
}

/// After a line's last `)`: an optional CR, then a line feed not followed by a continuation
/// `(`, or the end of the body. Returns the length up to the next line and the line ends
/// consumed, as the line parser counts them; `None` for anything else.
#[inline(always)]
fn line_end(s: &[u8]) -> Option<(usize, u16)> {
    match s {
        [] => Some((0, 0)),
        [b'\r'] => Some((1, 0)),
        [b'\n', b'(', ..] | [b'\r', b'\n', b'(', ..] => None,
        [b'\n', ..] => Some((1, 1)),
        [b'\r', b'\n', ..] => Some((2, 1)),
        _ => None,
    }
}

/// One entry of the power-failure event log (`1-0:99.97.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PowerFailure {
    /// When the failure ended (DSMR 5.0.2 §6.11: the timestamp is the end time).
    pub end: Timestamp,
    /// How long it lasted, in seconds.
    pub duration_s: u64,
}

/// A peak demand with the time it occurred (`1-0:1.6.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peak {
    /// When the peak occurred.
    pub occurred: Timestamp,
    /// The peak (kW).
    pub value: Quantity,
}

/// One month of the e-MUCS peak history (`0-0:98.1.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MonthlyPeak {
    /// Start of the month the entry is for.
    pub month: Timestamp,
    /// When the peak occurred (meters write placeholders such as `632525252525W` for none).
    pub occurred: Timestamp,
    /// The peak (kW).
    pub value: Quantity,
}

/// Which object carried an M-Bus device's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MBusValueKind {
    /// `0-n:24.2.1`: DSMR 4/5 last (5-minute or hourly) value, gas temperature-corrected.
    Corrected,
    /// `0-n:24.2.3`: e-MUCS gas, not temperature-corrected.
    Uncorrected,
    /// `0-n:24.3.0`: DSMR 2.2/3 profile line with the value on the next line.
    Legacy,
}

/// The last value of an M-Bus device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MBusValue {
    /// Which object it came from.
    pub kind: MBusValueKind,
    /// Capture time (absent in some DSMR 2.2 lines).
    pub timestamp: Option<Timestamp>,
    /// The value (m3 for gas and water, GJ for heat, kWh for an E-meter; unitless on unused slots).
    pub value: Quantity,
}

/// An M-Bus device on channel 1..4.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MBusDevice {
    /// Device type (`0-n:24.1.0`): 3 gas, 4 heat, 7 water, ... See [`MBusDevice::kind`].
    pub device_type: Option<u16>,
    /// Equipment identifier as written (`0-n:96.1.0`, or `0-n:96.1.1` in Belgium); hex.
    pub equipment_id: Option<Bytes<ID_CAP>>,
    /// The last value.
    pub value: Option<MBusValue>,
    /// Valve position (`0-n:24.4.0`).
    pub valve: Option<u8>,
    /// Breaker / switch position (`0-n:96.3.10`, Luxembourg).
    pub switch_position: Option<u8>,
}

/// What an M-Bus device type number means (EN 13757-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// 2
    Electricity,
    /// 3
    Gas,
    /// 4
    Heat,
    /// 6
    WarmWater,
    /// 7
    Water,
    /// 10, 11
    Cooling,
    /// Anything else.
    Other(u16),
}

impl MBusDevice {
    /// The device type as a kind.
    pub fn kind(&self) -> Option<DeviceKind> {
        self.device_type.map(|t| match t {
            2 => DeviceKind::Electricity,
            3 => DeviceKind::Gas,
            4 => DeviceKind::Heat,
            6 => DeviceKind::WarmWater,
            7 => DeviceKind::Water,
            10 | 11 => DeviceKind::Cooling,
            n => DeviceKind::Other(n),
        })
    }

    /// True when no object of this channel was present.
    pub fn is_empty(&self) -> bool {
        *self == MBusDevice::default()
    }
}

/// A text message (`0-0:96.13.0`), hex-decoded when it was hex.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextMessage<const N: usize> {
    /// The decoded bytes (or the text as written when it was not hex).
    pub bytes: Bytes<N>,
    /// True when the meter wrote hex and `bytes` is its decoding.
    pub was_hex: bool,
}

/// What is wrong with an object (see [`Issue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IssueKind {
    /// The line is not `OBIS(value)...`.
    MalformedLine,
    /// A value could not be read (not a number, timestamp, ... where one is expected).
    BadValue,
    /// The unit does not measure what the spec says (value left out), or no unit was written
    /// where the spec has one (value kept, unit `None`).
    UnitMismatch {
        /// What the spec says the object measures.
        expected: Dimension,
        /// The unit written, if any and recognised.
        found: Option<Unit>,
    },
    /// A unit string that is not recognised (value left out).
    UnknownUnit,
    /// More entries or characters than the fixed storage holds (the rest is dropped).
    TooLong,
}

/// A problem with one object of a telegram. Never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Issue {
    /// The object (`None` for a line whose OBIS could not be read).
    pub obis: Option<Obis>,
    /// 1-based line number in the telegram.
    pub line: u16,
    /// What is wrong.
    pub kind: IssueKind,
}

/// Everything a telegram said, typed. Field names say the direction from the grid's point of view:
/// `import` is energy delivered to the client (`1.8.x`, `1.7.0`), `export` delivered by the client.
///
/// Arrays indexed by tariff hold the total (`x.8.0`) at index 0 and tariffs 1..=4 at 1..=4. Arrays
/// indexed by phase hold L1, L2, L3.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reading {
    /// Header line without `/`, e.g. `ISK5\2M550E-1012`.
    pub header: Bytes<HEADER_CAP>,
    /// `1-3:0.2.8` P1 version (`42`, `50`).
    pub version: Option<Bytes<8>>,
    /// `0-0:96.1.4` e-MUCS (Belgium) version (`50217`).
    pub be_version: Option<Bytes<ID_CAP>>,
    /// `0-0:1.0.0` telegram timestamp.
    pub timestamp: Option<Timestamp>,
    /// `0-0:96.1.1` equipment identifier, as written (hex).
    pub equipment_id: Option<Bytes<ID_CAP>>,
    /// `0-0:96.1.0` meter serial (Iskra IE.5, E.ON HU), as written.
    pub meter_serial: Option<Bytes<ID_CAP>>,
    /// `0-0:42.0.0` logical device name (Luxembourg, E.ON HU), as written.
    pub device_name: Option<Bytes<ID_CAP>>,
    /// `1-0:1.8.0` .. `1-0:1.8.4` energy imported (total, T1..T4).
    pub energy_import: [Option<Quantity>; 5],
    /// `1-0:2.8.0` .. `1-0:2.8.4` energy exported.
    pub energy_export: [Option<Quantity>; 5],
    /// `1-0:3.8.0` .. `1-0:3.8.4` reactive energy imported.
    pub reactive_energy_import: [Option<Quantity>; 5],
    /// `1-0:4.8.0` .. `1-0:4.8.4` reactive energy exported.
    pub reactive_energy_export: [Option<Quantity>; 5],
    /// `0-0:96.14.0` tariff indicator.
    pub tariff: Option<u16>,
    /// `1-0:1.7.0` power imported.
    pub power_import: Option<Quantity>,
    /// `1-0:2.7.0` power exported.
    pub power_export: Option<Quantity>,
    /// `1-0:3.7.0` reactive power imported.
    pub reactive_power_import: Option<Quantity>,
    /// `1-0:4.7.0` reactive power exported.
    pub reactive_power_export: Option<Quantity>,
    /// `1-0:9.7.0` apparent power imported (Luxembourg).
    pub apparent_power_import: Option<Quantity>,
    /// `1-0:10.7.0` apparent power exported (Luxembourg).
    pub apparent_power_export: Option<Quantity>,
    /// `1-0:13.7.0` power factor (unitless).
    pub power_factor: Option<Fixed>,
    /// `1-0:14.7.0` frequency.
    pub frequency: Option<Quantity>,
    /// `0-0:17.0.0` threshold / limiter (kW, A in DSMR 3, kVA in Luxembourg).
    pub threshold: Option<Quantity>,
    /// `0-0:96.3.10` switch / breaker position.
    pub switch_position: Option<u8>,
    /// `0-0:96.7.21` number of power failures.
    pub power_failures: Option<u32>,
    /// `0-0:96.7.9` number of long power failures.
    pub long_power_failures: Option<u32>,
    /// `1-0:99.97.0` power-failure event log; `Some(empty)` for `1-0:99.97.0()` or a zero count.
    pub power_failure_log: Option<Vec<PowerFailure, FAILURE_LOG_CAP>>,
    /// `1-0:32.32.0`, `52.32.0`, `72.32.0` voltage sags per phase.
    pub voltage_sags: [Option<u32>; 3],
    /// `1-0:32.36.0`, `52.36.0`, `72.36.0` voltage swells per phase.
    pub voltage_swells: [Option<u32>; 3],
    /// `0-0:96.13.0` text message.
    pub text_message: Option<TextMessage<TEXT_CAP>>,
    /// `0-0:96.13.1` text code (DSMR 3/4).
    pub text_code: Option<TextMessage<TEXT_CODE_CAP>>,
    /// `1-0:32.7.0`, `52.7.0`, `72.7.0` voltage per phase.
    pub voltage: [Option<Quantity>; 3],
    /// `1-0:31.7.0`, `51.7.0`, `71.7.0` current per phase.
    pub current: [Option<Quantity>; 3],
    /// `1-0:21.7.0`, `41.7.0`, `61.7.0` power imported per phase.
    pub power_import_phase: [Option<Quantity>; 3],
    /// `1-0:22.7.0`, `42.7.0`, `62.7.0` power exported per phase.
    pub power_export_phase: [Option<Quantity>; 3],
    /// `1-0:31.4.0`, `51.4.0`, `71.4.0` fuse / current-limit threshold per phase (e-MUCS, E.ON HU).
    pub fuse_threshold: [Option<Quantity>; 3],
    /// `1-0:1.4.0` current average demand (e-MUCS quarter-hour).
    pub average_demand: Option<Quantity>,
    /// `1-0:1.6.0` maximum demand this month (e-MUCS).
    pub max_demand_month: Option<Peak>,
    /// `0-0:98.1.0` maximum demand of the last 13 months (e-MUCS).
    pub max_demand_history: Option<Vec<MonthlyPeak, PEAK_HISTORY_CAP>>,
    /// M-Bus channels 1..=4 at index 0..=3.
    pub mbus: [Option<MBusDevice>; MBUS_CHANNELS],
    /// Lines with an OBIS code this type has no field for (they stay in the [`Telegram`] view).
    pub unknown_objects: u16,
    /// The first [`ISSUES_CAP`] issues.
    pub issues: Vec<Issue, ISSUES_CAP>,
    /// How many issues there were in all.
    pub issue_count: u16,
}

impl Reading {
    /// Decodes a telegram view. Never fails; see [`Reading::issues`].
    pub fn decode(telegram: &Telegram<'_>) -> Reading {
        let mut r = Reading::default();
        r.fill(telegram);
        r
    }

    /// Like [`Reading::decode`] but overwrites `self` in place (no large value on the stack).
    pub fn fill(&mut self, telegram: &Telegram<'_>) {
        self.reset();
        let h = telegram.header();
        let h = h.get(..HEADER_CAP.min(h.len())).unwrap_or(&[]);
        let _ = self.header.extend_from_slice(h);
        telegram.lines().for_each_fast(
            self,
            |r, bytes| r.direct(bytes),
            |r, line| r.object(line),
            |r, line| match line {
                Ok(line) => r.object(&line),
                Err(e) => r.issue(None, e.line, IssueKind::MalformedLine),
            },
        );
    }

    /// Sets every field to its default, writing only what is needed (not the 4 KiB of storage).
    /// The destructuring makes a field added later a compile error here until it is reset.
    fn reset(&mut self) {
        let Reading {
            header,
            version,
            be_version,
            timestamp,
            equipment_id,
            meter_serial,
            device_name,
            energy_import,
            energy_export,
            reactive_energy_import,
            reactive_energy_export,
            tariff,
            power_import,
            power_export,
            reactive_power_import,
            reactive_power_export,
            apparent_power_import,
            apparent_power_export,
            power_factor,
            frequency,
            threshold,
            switch_position,
            power_failures,
            long_power_failures,
            power_failure_log,
            voltage_sags,
            voltage_swells,
            text_message,
            text_code,
            voltage,
            current,
            power_import_phase,
            power_export_phase,
            fuse_threshold,
            average_demand,
            max_demand_month,
            max_demand_history,
            mbus,
            unknown_objects,
            issues,
            issue_count,
        } = self;
        header.clear();
        *version = None;
        *be_version = None;
        *timestamp = None;
        *equipment_id = None;
        *meter_serial = None;
        *device_name = None;
        *energy_import = [None; 5];
        *energy_export = [None; 5];
        *reactive_energy_import = [None; 5];
        *reactive_energy_export = [None; 5];
        *tariff = None;
        *power_import = None;
        *power_export = None;
        *reactive_power_import = None;
        *reactive_power_export = None;
        *apparent_power_import = None;
        *apparent_power_export = None;
        *power_factor = None;
        *frequency = None;
        *threshold = None;
        *switch_position = None;
        *power_failures = None;
        *long_power_failures = None;
        *power_failure_log = None;
        *voltage_sags = [None; 3];
        *voltage_swells = [None; 3];
        *text_message = None;
        *text_code = None;
        *voltage = [None; 3];
        *current = [None; 3];
        *power_import_phase = [None; 3];
        *power_export_phase = [None; 3];
        *fuse_threshold = [None; 3];
        *average_demand = None;
        *max_demand_month = None;
        *max_demand_history = None;
        for m in mbus.iter_mut() {
            *m = None;
        }
        *unknown_objects = 0;
        issues.clear();
        *issue_count = 0;
    }

    /// The common lines decoded straight from their bytes, in one pass: a quantity
    /// `OBIS(digits[.digits]*unit)` in a unit of the right dimension, a count or the tariff
    /// `OBIS(digits)`, or the power-failure log (see [`Reading::direct_failure_log`]),
    /// followed by the line end. Returns where the next line starts and the line ends consumed,
    /// or `None` (nothing written) for anything else, which [`Reading::object`] then decodes:
    /// whenever this writes a value it is the one `object` would write (and `object` would record
    /// no issue). Checked against `object` by a property test.
    #[inline(always)]
    fn direct(&mut self, s: &[u8]) -> Option<(usize, u16)> {
        // Other objects and other spellings go to the line decoder (which parses the OBIS).
        let (kind, o, i) = known_obis(s)?;
        let v = i + 1;
        match kind {
            Kind::Quantity(slot, dim) => {
                let (raw, decimals, n) = number_at(s, v)?;
                if s.get(n) != Some(&b'*') {
                    return None;
                }
                let (unit, close) = unit_at(s, n + 1, usual_unit(dim))?;
                if unit.dimension() != dim {
                    return None;
                }
                let (next, newlines) = line_end(s.get(close + 1..)?)?;
                *self.quantity_slot_mut(slot)? = Some(Quantity::new(Fixed::new(raw, decimals), Some(unit)));
                Some((close + 1 + next, newlines))
            }
            Kind::Count(_) | Kind::Tariff | Kind::Switch | Kind::Valve(_) => {
                let (raw, decimals, n) = number_at(s, v)?;
                if decimals != 0 || n - v > 10 || s.get(n) != Some(&b')') {
                    return None;
                }
                let value = u32::try_from(raw).ok()?;
                let (next, newlines) = line_end(s.get(n + 1..)?)?;
                match kind {
                    Kind::Count(c) => *self.count_slot_mut(c)? = Some(value),
                    Kind::Switch => self.switch_position = u8::try_from(value).ok(),
                    Kind::Valve(ch) => self.mbus_dev(ch)?.valve = u8::try_from(value).ok(),
                    _ => self.tariff = u16::try_from(value).ok(),
                }
                Some((n + 1 + next, newlines))
            }
            Kind::Threshold => {
                let (q, close) = quantity_at(s, v, Unit::KW)?;
                let unit = q.unit?;
                if !matches!(unit.dimension(), Dimension::Power | Dimension::Current | Dimension::ApparentPower) {
                    return None;
                }
                let (next, newlines) = line_end(s.get(close + 1..)?)?;
                self.threshold = Some(q);
                Some((close + 1 + next, newlines))
            }
            Kind::MaxDemand => {
                let (occurred, close) = timestamp_at(s, v)?;
                if s.get(close + 1) != Some(&b'(') {
                    return None;
                }
                let (value, close) = quantity_at(s, close + 2, Unit::KW)?;
                if value.unit?.dimension() != Dimension::Power {
                    return None;
                }
                let (next, newlines) = line_end(s.get(close + 1..)?)?;
                self.max_demand_month = Some(Peak { occurred, value });
                Some((close + 1 + next, newlines))
            }
            Kind::PeakHistory => {
                let (hist, end) = direct_peak_history(s, v)?;
                let (next, newlines) = line_end(s.get(end..)?)?;
                self.max_demand_history = Some(hist);
                Some((end + next, newlines))
            }
            Kind::Message => {
                // `()`: an empty text, which counts as (empty) hex.
                if s.get(v) != Some(&b')') {
                    return None;
                }
                let (next, newlines) = line_end(s.get(v + 1..)?)?;
                self.text_message = Some(TextMessage { bytes: Bytes::new(), was_hex: true });
                Some((v + 1 + next, newlines))
            }
            Kind::FailureLog => {
                let (log, end) = direct_failure_log(s, v)?;
                let (next, newlines) = line_end(s.get(end..)?)?;
                self.power_failure_log = Some(log);
                Some((end + next, newlines))
            }
            Kind::Other => {
                let (rest, next, newlines) = self.direct_other(o, s.get(v..)?)?;
                Some((s.len() - rest.len() + next, newlines))
            }
        }
    }

    /// The quantity field `slot` of [`Kind::Quantity`] (see [`kind_of`]).
    #[inline(always)]
    fn quantity_slot_mut(&mut self, slot: u8) -> Option<&mut Option<Quantity>> {
        let i = usize::from(slot);
        match slot {
            0..=4 => self.energy_import.get_mut(i),
            5..=9 => self.energy_export.get_mut(i - 5),
            10..=14 => self.reactive_energy_import.get_mut(i - 10),
            15..=19 => self.reactive_energy_export.get_mut(i - 15),
            20 => Some(&mut self.power_import),
            21 => Some(&mut self.power_export),
            22 => Some(&mut self.reactive_power_import),
            23 => Some(&mut self.reactive_power_export),
            24 => Some(&mut self.apparent_power_import),
            25 => Some(&mut self.apparent_power_export),
            26 => Some(&mut self.frequency),
            27 => Some(&mut self.average_demand),
            28..=30 => self.voltage.get_mut(i - 28),
            31..=33 => self.current.get_mut(i - 31),
            34..=36 => self.power_import_phase.get_mut(i - 34),
            37..=39 => self.power_export_phase.get_mut(i - 37),
            40..=42 => self.fuse_threshold.get_mut(i - 40),
            _ => None,
        }
    }

    /// The count field `slot` of [`Kind::Count`] (see [`kind_of`]).
    #[inline(always)]
    fn count_slot_mut(&mut self, slot: u8) -> Option<&mut Option<u32>> {
        let i = usize::from(slot);
        match slot {
            0 => Some(&mut self.power_failures),
            1 => Some(&mut self.long_power_failures),
            2..=4 => self.voltage_sags.get_mut(i - 2),
            5..=7 => self.voltage_swells.get_mut(i - 5),
            _ => None,
        }
    }

    /// Identifiers, the timestamp and M-Bus type and value lines in their common shape
    /// (`body` starts after the first `(`): one group of plain text (the identifiers), one
    /// timestamp, `(digits)` (device type) or `(timestamp)(digits[.digits]*unit)` (an M-Bus
    /// value in m3, GJ or kWh), then the line end. Returns the bytes after the last `)` and the
    /// [`line_end`] after them, or `None` (nothing written) for anything else, including every
    /// case where [`Reading::object`] would record an issue.
    #[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), inline(never))]
    fn direct_other<'b>(&mut self, o: Obis, body: &'b [u8]) -> Option<(&'b [u8], usize, u16)> {
        // The first group's text, up to its `)`.
        let close = crate::scan::find_special(body)?;
        let (b')', text, after) = (*body.get(close)?, body.get(..close)?, body.get(close + 1..)?) else {
            return None;
        };
        /// Stores `t` in `slot` (in place: no copy of the whole buffer); `None`, and nothing
        /// written, when it does not fit.
        fn put<const N: usize>(slot: &mut Option<Bytes<N>>, t: &[u8]) -> Option<()> {
            if t.len() > N {
                return None;
            }
            let b = slot.insert(Bytes::new());
            b.extend_from_slice(t).ok()
        }
        match (o.a, o.b, o.c, o.d, o.e) {
            (0, 0, 1, 0, 0) => {
                let ts = Timestamp::parse_inline(text)?;
                let (next, newlines) = line_end(after)?;
                self.timestamp = Some(ts);
                Some((after, next, newlines))
            }
            (1, 3, 0, 2, 8) | (0, 0, 96, 1, 4 | 1 | 0) => {
                let (next, newlines) = line_end(after)?;
                match o.e {
                    8 => put(&mut self.version, text)?,
                    4 => put(&mut self.be_version, text)?,
                    1 => put(&mut self.equipment_id, text)?,
                    _ => put(&mut self.meter_serial, text)?,
                }
                Some((after, next, newlines))
            }
            (0, ch @ 1..=4, 96, 1, 0 | 1) => {
                if text.len() > ID_CAP {
                    return None;
                }
                let (next, newlines) = line_end(after)?;
                put(&mut self.mbus_dev(ch)?.equipment_id, text)?;
                Some((after, next, newlines))
            }
            (0, ch @ 1..=4, 24, 1, 0) => {
                let (v, decimals, n) = number(text)?;
                if decimals != 0 || n != text.len() || n > 10 {
                    return None;
                }
                let v = u16::try_from(v).ok()?;
                let (next, newlines) = line_end(after)?;
                self.mbus_dev(ch)?.device_type = Some(v);
                Some((after, next, newlines))
            }
            (0, ch @ 1..=4, 24, 2, e @ (1 | 3)) => {
                let ts = Timestamp::parse_inline(text)?;
                if after.first() != Some(&b'(') {
                    return None;
                }
                let (value, close) = quantity_at(after, 1, Unit::M3)?;
                if !matches!(value.unit?.dimension(), Dimension::Volume | Dimension::Heat | Dimension::Energy) {
                    return None;
                }
                let after = after.get(close + 1..)?;
                let (next, newlines) = line_end(after)?;
                let kind = if e == 1 { MBusValueKind::Corrected } else { MBusValueKind::Uncorrected };
                self.mbus_dev(ch)?.value = Some(MBusValue { kind, timestamp: Some(ts), value });
                Some((after, next, newlines))
            }
            _ => None,
        }
    }

    /// Records an issue.
    fn issue(&mut self, obis: Option<Obis>, line: u16, kind: IssueKind) {
        self.issue_count = self.issue_count.saturating_add(1);
        let _ = self.issues.push(Issue { obis, line, kind });
    }

    /// The M-Bus device on `channel` (1..=4).
    pub fn mbus_channel(&self, channel: u8) -> Option<&MBusDevice> {
        self.mbus.get(usize::from(channel).checked_sub(1)?)?.as_ref()
    }

    /// The gas meter: the first M-Bus device of type gas (3) whose value has a unit. Unused
    /// slots (a unitless zero with a placeholder time, as AM550 and Fluvius meters send) are skipped.
    pub fn gas(&self) -> Option<&MBusDevice> {
        self.mbus
            .iter()
            .flatten()
            .find(|d| d.kind() == Some(DeviceKind::Gas) && d.value.is_some_and(|v| v.value.unit.is_some()))
    }

    fn quantity(&mut self, line: &Line<'_>, v: Option<Value<'_>>, dims: &[Dimension]) -> Option<Quantity> {
        let Some(v) = v else {
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
            return None;
        };
        let Some(value) = v.fixed() else {
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
            return None;
        };
        let expected = dims.first().copied();
        match v.unit {
            None => {
                if let Some(expected) = expected {
                    self.issue(Some(line.obis), line.line, IssueKind::UnitMismatch { expected, found: None });
                }
                Some(Quantity::new(value, None))
            }
            Some(u) => match Unit::parse(u) {
                None => {
                    self.issue(Some(line.obis), line.line, IssueKind::UnknownUnit);
                    None
                }
                Some(unit) if dims.is_empty() || dims.contains(&unit.dimension()) => {
                    Some(Quantity::new(value, Some(unit)))
                }
                Some(unit) => {
                    let expected = expected.unwrap_or(unit.dimension());
                    self.issue(Some(line.obis), line.line, IssueKind::UnitMismatch { expected, found: Some(unit) });
                    None
                }
            },
        }
    }

    fn q1(&mut self, line: &Line<'_>, dim: Dimension) -> Option<Quantity> {
        self.quantity(line, line.value(0), &[dim])
    }

    fn uint(&mut self, line: &Line<'_>) -> Option<u32> {
        let v = line.value(0).and_then(|v| v.uint());
        if v.is_none() {
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
        }
        v
    }

    fn text<const N: usize>(&mut self, line: &Line<'_>) -> Option<Bytes<N>> {
        let t = line.value(0)?.text;
        let mut out = Bytes::new();
        if out.extend_from_slice(t).is_err() {
            self.issue(Some(line.obis), line.line, IssueKind::TooLong);
            let _ = out.extend_from_slice(t.get(..N).unwrap_or(&[]));
        }
        Some(out)
    }

    fn message<const N: usize>(&mut self, line: &Line<'_>) -> Option<TextMessage<N>> {
        let t = line.value(0)?.text;
        let mut m = TextMessage { bytes: Bytes::new(), was_hex: false };
        if t.len() % 2 == 0 && t.iter().all(u8::is_ascii_hexdigit) {
            if t.len() / 2 > N {
                self.issue(Some(line.obis), line.line, IssueKind::TooLong);
            }
            // Every byte is a hex digit, so every pair decodes.
            for pair in t.chunks_exact(2).take(N) {
                if let [h, l] = *pair {
                    let _ = m.bytes.push((hex_value(h) << 4) | hex_value(l));
                }
            }
            m.was_hex = true;
            return Some(m);
        }
        if m.bytes.extend_from_slice(t).is_err() {
            self.issue(Some(line.obis), line.line, IssueKind::TooLong);
            let _ = m.bytes.extend_from_slice(t.get(..N).unwrap_or(&[]));
        }
        Some(m)
    }

    fn mbus_dev(&mut self, channel: u8) -> Option<&mut MBusDevice> {
        let slot = self.mbus.get_mut(usize::from(channel).checked_sub(1)?)?;
        Some(slot.get_or_insert_with(MBusDevice::default))
    }

    fn object(&mut self, line: &Line<'_>) {
        use Dimension as D;
        let mut o = line.obis;
        if o.a == 1 && o.b == 1 {
            // Some meters (Sagemcom XT211, Luxembourg) number the electricity channel 1.
            o.b = 0;
        }
        let phase = |c: u8, base: u8| -> Option<usize> {
            match c.checked_sub(base)? {
                0 => Some(0),
                20 => Some(1),
                40 => Some(2),
                _ => None,
            }
        };
        match (o.a, o.b, o.c, o.d, o.e) {
            (1, 3, 0, 2, 8) => self.version = self.text(line),
            (0, 0, 96, 1, 4) => self.be_version = self.text(line),
            (0, 0, 1, 0, 0) => {
                self.timestamp = line.value(0).and_then(|v| v.timestamp());
                if self.timestamp.is_none() {
                    self.issue(Some(o), line.line, IssueKind::BadValue);
                }
            }
            (0, 0, 96, 1, 1) => self.equipment_id = self.text(line),
            (0, 0, 96, 1, 0) => self.meter_serial = self.text(line),
            (0, 0, 42, 0, 0) => self.device_name = self.text(line),
            (1, 0, c @ 1..=4, 8, e @ 0..=4) => {
                let dim = if c <= 2 { D::Energy } else { D::ReactiveEnergy };
                let q = self.q1(line, dim);
                let arr = match c {
                    1 => &mut self.energy_import,
                    2 => &mut self.energy_export,
                    3 => &mut self.reactive_energy_import,
                    _ => &mut self.reactive_energy_export,
                };
                if let Some(slot) = arr.get_mut(usize::from(e)) {
                    *slot = q;
                }
            }
            (0, 0, 96, 14, 0) => self.tariff = self.uint(line).and_then(|v| u16::try_from(v).ok()),
            (1, 0, 1, 7, 0) => self.power_import = self.q1(line, D::Power),
            (1, 0, 2, 7, 0) => self.power_export = self.q1(line, D::Power),
            (1, 0, 3, 7, 0) => self.reactive_power_import = self.q1(line, D::ReactivePower),
            (1, 0, 4, 7, 0) => self.reactive_power_export = self.q1(line, D::ReactivePower),
            (1, 0, 9, 7, 0) => self.apparent_power_import = self.q1(line, D::ApparentPower),
            (1, 0, 10, 7, 0) => self.apparent_power_export = self.q1(line, D::ApparentPower),
            (1, 0, 13, 7, 0) => {
                self.power_factor = line.value(0).and_then(|v| v.fixed());
                if self.power_factor.is_none() {
                    self.issue(Some(o), line.line, IssueKind::BadValue);
                }
            }
            (1, 0, 14, 7, 0) => self.frequency = self.q1(line, D::Frequency),
            (0, 0, 17, 0, 0) => {
                self.threshold = self.quantity(line, line.value(0), &[D::Power, D::Current, D::ApparentPower])
            }
            (0, 0, 96, 3, 10) => self.switch_position = self.uint(line).and_then(|v| u8::try_from(v).ok()),
            (0, 0, 96, 7, 21) => self.power_failures = self.uint(line),
            (0, 0, 96, 7, 9) => self.long_power_failures = self.uint(line),
            (1, 0, 99, 97, 0) => self.failure_log(line),
            (1, 0, c, 32, 0) if phase(c, 32).is_some() => {
                let v = self.uint(line);
                if let Some(s) = phase(c, 32).and_then(|p| self.voltage_sags.get_mut(p)) {
                    *s = v;
                }
            }
            (1, 0, c, 36, 0) if phase(c, 32).is_some() => {
                let v = self.uint(line);
                if let Some(s) = phase(c, 32).and_then(|p| self.voltage_swells.get_mut(p)) {
                    *s = v;
                }
            }
            (0, 0, 96, 13, 0) => self.text_message = self.message(line),
            (0, 0, 96, 13, 1) => self.text_code = self.message(line),
            (1, 0, c, 7, 0) if phase(c, 32).is_some() => {
                let q = self.q1(line, D::Voltage);
                if let Some(s) = phase(c, 32).and_then(|p| self.voltage.get_mut(p)) {
                    *s = q;
                }
            }
            (1, 0, c, 7, 0) if phase(c, 31).is_some() => {
                let q = self.q1(line, D::Current);
                if let Some(s) = phase(c, 31).and_then(|p| self.current.get_mut(p)) {
                    *s = q;
                }
            }
            (1, 0, c, 7, 0) if phase(c, 21).is_some() => {
                let q = self.q1(line, D::Power);
                if let Some(s) = phase(c, 21).and_then(|p| self.power_import_phase.get_mut(p)) {
                    *s = q;
                }
            }
            (1, 0, c, 7, 0) if phase(c, 22).is_some() => {
                let q = self.q1(line, D::Power);
                if let Some(s) = phase(c, 22).and_then(|p| self.power_export_phase.get_mut(p)) {
                    *s = q;
                }
            }
            (1, 0, c, 4, 0) if phase(c, 31).is_some() => {
                let q = self.q1(line, D::Current);
                if let Some(s) = phase(c, 31).and_then(|p| self.fuse_threshold.get_mut(p)) {
                    *s = q;
                }
            }
            (1, 0, 1, 4, 0) => self.average_demand = self.q1(line, D::Power),
            (1, 0, 1, 6, 0) => {
                let ts = line.value(0).and_then(|v| v.timestamp());
                let q = self.quantity(line, line.value(1), &[D::Power]);
                match (ts, q) {
                    (Some(occurred), Some(value)) => self.max_demand_month = Some(Peak { occurred, value }),
                    (None, _) => self.issue(Some(o), line.line, IssueKind::BadValue),
                    _ => {}
                }
            }
            (0, 0, 98, 1, 0) => self.peak_history(line),
            (0, ch @ 1..=4, 24, 1, 0) => {
                let v = line.value(0).filter(|v| !v.text.is_empty()).and_then(|v| v.uint());
                let v = v.and_then(|v| u16::try_from(v).ok());
                if let Some(d) = self.mbus_dev(ch) {
                    d.device_type = v;
                }
            }
            (0, ch @ 1..=4, 96, 1, 0 | 1) => {
                let id = self.text(line);
                if let Some(d) = self.mbus_dev(ch) {
                    d.equipment_id = id;
                }
            }
            (0, ch @ 1..=4, 24, 2, e @ (1 | 3)) => {
                let ts = line.value(0).and_then(|v| v.timestamp());
                let (ts, v) = match line.len() {
                    1 => (None, line.value(0)),
                    _ => (ts, line.value(1)),
                };
                let q = self.quantity(line, v, &[D::Volume, D::Heat, D::Energy]);
                let kind = if e == 1 { MBusValueKind::Corrected } else { MBusValueKind::Uncorrected };
                if let Some(value) = q
                    && let Some(d) = self.mbus_dev(ch) {
                        d.value = Some(MBusValue { kind, timestamp: ts, value });
                    }
            }
            (0, ch @ 1..=4, 24, 3, 0) => self.legacy_gas(line, ch),
            (0, ch @ 1..=4, 24, 4, 0) => {
                let v = self.uint(line).and_then(|v| u8::try_from(v).ok());
                if let Some(d) = self.mbus_dev(ch) {
                    d.valve = v;
                }
            }
            (0, ch @ 1..=4, 96, 3, 10) => {
                let v = self.uint(line).and_then(|v| u8::try_from(v).ok());
                if let Some(d) = self.mbus_dev(ch) {
                    d.switch_position = v;
                }
            }
            _ => self.unknown_objects = self.unknown_objects.saturating_add(1),
        }
    }

    /// `1-0:99.97.0(n)(0-0:96.7.19)(TST)(dur*s)...` or `1-0:99.97.0()`.
    fn failure_log(&mut self, line: &Line<'_>) {
        let mut log = Vec::new();
        let mut vals = line.values();
        let count = match vals.next() {
            Some(v) if v.is_empty() => {
                self.power_failure_log = Some(log);
                return;
            }
            Some(v) => v.uint(),
            None => None,
        };
        let Some(count) = count else {
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
            return;
        };
        if count > 0 && vals.next().and_then(|v| v.obis()).is_none() {
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
            return;
        }
        if count == 0 {
            // `(0)(0-0:96.7.19)` and `(0)` both mean an empty log.
            self.power_failure_log = Some(log);
            return;
        }
        let mut seen = 0u32;
        while let (Some(t), Some(d)) = (vals.next(), vals.next()) {
            seen = seen.saturating_add(1);
            let end = t.timestamp();
            let dur = d.fixed().and_then(|f| u64::try_from(f.rescale(0)?).ok());
            let unit_ok = matches!(d.unit.map(Unit::parse), None | Some(Some(Unit::S)));
            match (end, dur) {
                (Some(end), Some(duration_s)) if unit_ok => {
                    if log.push(PowerFailure { end, duration_s }).is_err() {
                        self.issue(Some(line.obis), line.line, IssueKind::TooLong);
                        break;
                    }
                }
                (Some(_), Some(_)) => {
                    let found = d.known_unit();
                    self.issue(
                        Some(line.obis),
                        line.line,
                        IssueKind::UnitMismatch { expected: Dimension::Duration, found },
                    );
                }
                _ => self.issue(Some(line.obis), line.line, IssueKind::BadValue),
            }
        }
        if seen != count {
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
        }
        self.power_failure_log = Some(log);
    }

    /// `0-0:98.1.0(n)(1-0:1.6.0)(1-0:1.6.0)(TSTmonth)(TSTpeak)(v*kW)...`.
    fn peak_history(&mut self, line: &Line<'_>) {
        let mut vals = line.values();
        let count = vals.next().and_then(|v| v.uint());
        let (Some(count), Some(_), Some(_)) =
            (count, vals.next().and_then(|v| v.obis()), vals.next().and_then(|v| v.obis()))
        else {
            // Other layouts (e.g. E.ON HU billing-period profile) stay in the view only.
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
            return;
        };
        let mut hist = Vec::new();
        let mut seen = 0u32;
        loop {
            let Some(m) = vals.next() else { break };
            if m.is_empty() && count == 0 {
                break;
            }
            let (Some(p), Some(v)) = (vals.next(), vals.next()) else {
                self.issue(Some(line.obis), line.line, IssueKind::BadValue);
                break;
            };
            seen = seen.saturating_add(1);
            let q = self.quantity(line, Some(v), &[Dimension::Power]);
            match (m.timestamp(), p.timestamp(), q) {
                (Some(month), Some(occurred), Some(value)) => {
                    if hist.push(MonthlyPeak { month, occurred, value }).is_err() {
                        self.issue(Some(line.obis), line.line, IssueKind::TooLong);
                        break;
                    }
                }
                (_, _, None) => {}
                _ => self.issue(Some(line.obis), line.line, IssueKind::BadValue),
            }
        }
        if seen != count {
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
        }
        self.max_demand_history = Some(hist);
    }

    /// `0-n:24.3.0(TST)(00)(60)(1)(0-n:24.2.1)(m3)` + `(value)` on the next line.
    fn legacy_gas(&mut self, line: &Line<'_>, ch: u8) {
        let n = line.len();
        let ts = line.value(0).and_then(|v| v.timestamp());
        let unit_text = if n >= 2 { line.value(n - 2).map(|v| v.text) } else { None };
        let value = line.value(n.saturating_sub(1)).and_then(|v| v.fixed());
        let (Some(value), true) = (value, n >= 3) else {
            self.issue(Some(line.obis), line.line, IssueKind::BadValue);
            return;
        };
        let unit = match unit_text.map(Unit::parse) {
            Some(Some(u)) => Some(u),
            _ => {
                self.issue(Some(line.obis), line.line, IssueKind::UnknownUnit);
                None
            }
        };
        if let Some(d) = self.mbus_dev(ch) {
            d.value = Some(MBusValue {
                kind: MBusValueKind::Legacy,
                timestamp: ts,
                value: Quantity::new(value, unit),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Reading::fill` without the one-pass decoder: every line through the iterator and
    /// `object`, the reference the fast paths must agree with.
    fn fill_generic(r: &mut Reading, telegram: &Telegram<'_>) {
        *r = Reading::default();
        let h = telegram.header();
        let _ = r.header.extend_from_slice(h.get(..HEADER_CAP.min(h.len())).unwrap_or(&[]));
        for line in telegram.lines() {
            match line {
                Ok(line) => r.object(&line),
                Err(e) => r.issue(None, e.line, IssueKind::MalformedLine),
            }
        }
    }

    fn fixtures() -> &'static [std::vec::Vec<u8>] {
        static ALL: std::sync::OnceLock<std::vec::Vec<std::vec::Vec<u8>>> = std::sync::OnceLock::new();
        ALL.get_or_init(load)
    }

    fn load() -> std::vec::Vec<std::vec::Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/telegrams");
        let mut v: std::vec::Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .map(|p| std::fs::read(p).unwrap())
            .filter(|b| b.first() == Some(&b'/'))
            .collect();
        v.sort();
        assert!(v.len() > 40);
        v
    }

    fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(t) = Telegram::parse_unterminated(bytes) {
            let mut fast = Reading::default();
            fast.fill(&t);
            let mut generic = Reading::default();
            fill_generic(&mut generic, &t);
            prop_assert_eq!(fast, generic, "{:?}", crate::fmt_bytes(bytes));
        }
        Ok(())
    }

    proptest! {
        /// `number_at` reads what `number` reads at any offset (and `number` what
        /// `Fixed::parse` reads, below).
        #[test]
        fn number_at_agrees_with_number(
            s in prop::collection::vec(prop::sample::select(&b"0012345678999.)*-/:"[..]), 0..40),
            v in 0usize..8,
        ) {
            let want = s.get(v..).and_then(number).map(|(raw, d, n)| (raw, d, v + n));
            prop_assert_eq!(number_at(&s, v), want);
        }
    }

    proptest! {
        /// `number` reads what `Fixed::parse` reads, or declines.
        #[test]
        fn number_agrees_with_fixed_parse(
            s in prop::collection::vec(prop::sample::select(&b"00123456789.)*-/:"[..]), 0..30),
        ) {
            if let Some((raw, decimals, n)) = number(&s) {
                prop_assert_eq!(Fixed::parse(&s[..n]), Some(Fixed::new(raw, decimals)));
                prop_assert!(!s.get(n).is_some_and(u8::is_ascii_digit));
            }
        }
    }

    #[test]
    fn direct_obis_keys_are_their_canonical_text() {
        for w in DIRECT_OBIS.windows(2) {
            assert!(w[0].0 < w[1].0);
        }
        for &(key, o, kind) in DIRECT_OBIS.iter() {
            let text = std::format!("{o}(");
            let mut line = text.clone().into_bytes();
            line.resize(16, b'x');
            assert_eq!(known_obis(&line), Some((kind, o, text.len() - 1)), "{text}");
            assert_eq!(key.to_le_bytes().iter().take_while(|&&b| b != 0).count(), text.len() - 1);
            // Leading zeros, value group F or a short line: not known here.
            line.insert(0, b'0');
            assert_eq!(known_obis(&line), None);
        }
        assert_eq!(known_obis(b"1-0:1.8.1*255(0001.000*kWh)"), None);
        assert_eq!(
            known_obis(b"1-0:1.8.1(01*kWh)"),
            Some((Kind::Quantity(1, Dimension::Energy), Obis::new(1, 0, 1, 8, 1), 9))
        );
        assert_eq!(known_obis(b"1-0:1.8.1(1*kW)"), None);
    }

    /// Lines the one-pass decoder takes, for the focused mutation test below.
    const DIRECT_LINES: &[&str] = &[
        "0-0:98.1.0(2)(1-0:1.6.0)(1-0:1.6.0)(230801000000S)(632525252525W)(00.000*kW)(230901000000S)(230831181500S)(01.862*kW)",
        "0-0:98.1.0(1)(1-0:1.6.0)(1-0:1.6.0)(230101000000W)(221230114500W)(13.603*kW)",
        "1-0:99.97.0(2)(0-0:96.7.19)(190201235231W)(0000003231*s)(190212214204W)(0000001489*s)",
        "1-0:1.6.0(231102114500W)(03.064*kW)",
        "0-0:17.0.0(999.9*kW)",
        "0-1:24.4.0(1)",
        "0-0:96.3.10(1)",
        "0-0:96.13.0()",
        "1-0:1.8.1(000576.239*kWh)",
        "1-0:32.7.0(236.1*V)",
        "0-0:96.7.21(00009)",
        "0-1:24.2.3(231102121002W)(00092.287*m3)",
        "0-0:96.1.1(4530303433303037303532383730333138)",
        "1-0:1.4.0(00.052*kW)",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// The one-pass decoder and the line decoder agree on the lines the one-pass decoder
        /// takes, with a few bytes of the line replaced, inserted or removed, as the last line
        /// of the body or followed by another.
        #[test]
        fn one_pass_decoder_agrees_on_mutated_direct_lines(
            line in prop::sample::select(DIRECT_LINES),
            edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(ALPHABET), 0u8..3), 1..4),
            last in any::<bool>(),
        ) {
            let mut l = line.as_bytes().to_vec();
            for (at, b, op) in edits {
                let at = at.index(l.len() + 1);
                match op {
                    0 if at < l.len() => l[at] = b,
                    1 => l.insert(at, b),
                    _ if at < l.len() => { l.remove(at); }
                    _ => {}
                }
            }
            let mut t = b"/ISK5\\2M550E-1012\r\n\r\n".to_vec();
            t.extend_from_slice(&l);
            t.extend_from_slice(if last { b"\r\n!" } else { b"\r\n1-0:2.7.0(00.000*kW)\r\n!" });
            agree(&t)?;
        }
    }

    /// Every object of the table has a slot of the dimension the line decoder expects: decoding
    /// a line through `direct` and through `object` gives the same reading.
    #[test]
    fn every_direct_kind_writes_the_field_object_writes() {
        for &(_, o, kind) in DIRECT_OBIS.iter() {
            let value: &[u8] = match kind {
                Kind::Quantity(_, d) => match d {
                    Dimension::Energy => b"(000576.239*kWh)",
                    Dimension::ReactiveEnergy => b"(000576.239*kvarh)",
                    Dimension::Power => b"(01.193*kW)",
                    Dimension::ReactivePower => b"(01.193*kvar)",
                    Dimension::ApparentPower => b"(01.193*kVA)",
                    Dimension::Voltage => b"(230.1*V)",
                    Dimension::Current => b"(002*A)",
                    Dimension::Frequency => b"(50.01*Hz)",
                    _ => unreachable!(),
                },
                Kind::Count(_) | Kind::Tariff | Kind::Switch | Kind::Valve(_) => b"(00012)",
                Kind::Message => b"()",
                Kind::Threshold => b"(999.9*kW)",
                Kind::MaxDemand => b"(231102114500W)(03.064*kW)",
                Kind::PeakHistory => b"(2)(1-0:1.6.0)(1-0:1.6.0)(230801000000S)(632525252525W)(00.000*kW)(230901000000S)(230831181500S)(01.862*kW)",
                Kind::FailureLog => b"(1)(0-0:96.7.19)(180529135630S)(0000002451*s)",
                Kind::Other => continue,
            };
            let line = std::format!("/ISK5\\2M550E-1012\r\n\r\n{o}{}\r\n0-0:96.99.9(filler)\r\n!", std::str::from_utf8(value).unwrap());
            let t = Telegram::parse_with(line.as_bytes(), None).unwrap();
            let mut fast = Reading::default();
            fast.fill(&t);
            let mut generic = Reading::default();
            fill_generic(&mut generic, &t);
            assert_eq!(fast, generic, "{line}");
            assert_ne!(fast, Reading { header: fast.header.clone(), unknown_objects: 1, ..Reading::default() }, "{line}");
            assert_eq!(fast.issue_count, 0, "{line}");
        }
    }

    #[test]
    fn line_end_agrees_with_its_definition_on_every_short_input() {
        fn reference(s: &[u8]) -> Option<(usize, u16)> {
            let k = usize::from(s.first() == Some(&b'\r'));
            match s.get(k) {
                None => Some((s.len(), 0)),
                Some(b'\n') if s.get(k + 1) != Some(&b'(') => Some((k + 1, 1)),
                _ => None,
            }
        }
        let alphabet = b"\r\n(x";
        let mut s = std::vec::Vec::new();
        for len in 0..=4u32 {
            for mut code in 0..alphabet.len().pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                assert_eq!(line_end(&s), reference(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn number_reads_plain_decimals_and_declines_the_rest() {
        assert_eq!(number(b"000576.239*kWh)"), Some((576_239, 3, 10)));
        assert_eq!(number(b"00.193*kW"), Some((193, 3, 6)));
        assert_eq!(number(b"0000003231*s)"), Some((3231, 0, 10)));
        assert_eq!(number(b"236.1"), Some((2361, 1, 5)));
        assert_eq!(number(b"123456789012345678)"), Some((123_456_789_012_345_678, 0, 18)));
        assert_eq!(number(b"12345678.1234567890)"), Some((123_456_781_234_567_890, 10, 19)));
        assert_eq!(number(b"1234567890123456789)"), None);
        assert_eq!(number(b"12345678.12345678901"), None);
        assert_eq!(number(b"1.)"), None);
        assert_eq!(number(b".5)"), None);
        assert_eq!(number(b"-5)"), None);
    }

    #[test]
    fn one_pass_decoder_agrees_on_every_fixture() {
        for f in fixtures() {
            agree(f).unwrap();
        }
    }

    /// Bytes that change how a line reads.
    const ALPHABET: &[u8] = b"()*.\r\n 0123456789-:sSWkVA!";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// The one-pass decoder (`Reading::direct`) and the line-by-line decoder give the same
        /// reading on fixtures with a few bytes replaced, inserted or removed.
        #[test]
        fn one_pass_decoder_agrees_with_object_on_mutated_fixtures(
            idx in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(ALPHABET), 0u8..3), 1..6),
        ) {
            let mut t = idx.get(fixtures()).clone();
            for (at, b, op) in edits {
                let at = at.index(t.len());
                match op {
                    0 => t[at] = b,
                    1 => t.insert(at, b),
                    _ if at > 0 => { t.remove(at); }
                    _ => {}
                }
            }
            agree(&t)?;
        }
    }
}
