//! Writing telegrams: a low-level line [`Writer`] and [`Reading::emit`].
//!
//! Output is byte-compatible with the parser: everything written here frames, verifies and decodes
//! back to the same values (see the round-trip property tests). The writer never panics; when the
//! buffer is full it returns [`EmitError::BufferFull`] and the buffer holds a partial telegram.

use crate::crc::CrcKind;
use crate::reading::{MBusValueKind, Reading};
use crate::telegram::Obis;
use crate::value::{pow10, Dst, Fixed, Quantity, Timestamp};
use core::fmt;

/// Why a telegram could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmitError {
    /// The output buffer is too small.
    BufferFull,
    /// A number does not fit the requested format (more than 18 digits after rescaling).
    NumberTooLarge,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::BufferFull => f.write_str("output buffer too small for the telegram"),
            EmitError::NumberTooLarge => f.write_str("number does not fit the format"),
        }
    }
}

impl core::error::Error for EmitError {}

/// How to write a number: DSMR's `Fn(x,y)` as integer digits (zero padded) and decimals.
///
/// `F9(3,3)` (energy, `000301.548`) is `NumFormat::new(6, 3)`. Values are rounded half away from
/// zero to `decimals`; integer parts longer than `int_digits` are written in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NumFormat {
    /// Minimum digits before the point (zero padded).
    pub int_digits: u8,
    /// Digits after the point (0: no point).
    pub decimals: u8,
}

impl NumFormat {
    /// `int_digits` before and `decimals` after the point.
    pub const fn new(int_digits: u8, decimals: u8) -> Self {
        NumFormat { int_digits, decimals }
    }

    /// DSMR's `Fn(d,d)`: `n` digits in all, `d` of them decimals.
    pub const fn dsmr(total: u8, decimals: u8) -> Self {
        NumFormat { int_digits: total.saturating_sub(decimals), decimals }
    }
}

/// Line ending to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LineEnding {
    /// `\r\n`, as the specs require.
    #[default]
    CrLf,
    /// `\n` (some captures and test files).
    Lf,
}

/// How to end a telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Finish {
    /// The CRC to append after `!`, or `None` for a DSMR 2.2/3 telegram (`!` alone).
    pub crc: Option<CrcKind>,
    /// Write the CRC in lowercase hex.
    pub lowercase: bool,
    /// Drop a leading zero digit of the CRC (as some meters do: `!B9F`).
    pub unpadded: bool,
}

impl Finish {
    /// `!XXXX` with CRC-16/ARC, uppercase.
    pub const ARC: Finish = Finish { crc: Some(CrcKind::Arc), lowercase: false, unpadded: false };
    /// `!` without CRC.
    pub const NONE: Finish = Finish { crc: None, lowercase: false, unpadded: false };
}

/// Writes a telegram line by line into a byte buffer.
///
/// ```
/// use dsmr::emit::{Finish, NumFormat, Writer};
/// use dsmr::{Fixed, Obis};
/// let mut buf = [0u8; 256];
/// let mut w = Writer::new(&mut buf);
/// w.header(b"ISK5\\2M550E-1012").unwrap();
/// w.register(Obis::new(1, 0, 1, 8, 1), Fixed::new(576239, 3), NumFormat::dsmr(9, 3), Some("kWh")).unwrap();
/// let n = w.finish(Finish::ARC).unwrap();
/// let t = dsmr::Telegram::parse(&buf[..n]).unwrap();
/// assert_eq!(t.lines().count(), 1);
/// ```
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    eol: LineEnding,
}

impl<'b> Writer<'b> {
    /// A writer with CRLF line endings.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, len: 0, eol: LineEnding::CrLf }
    }

    /// A writer with the given line ending.
    pub fn with_line_ending(buf: &'b mut [u8], eol: LineEnding) -> Self {
        Writer { buf, len: 0, eol }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// How many bytes have been written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), EmitError> {
        let end = self.len.checked_add(bytes.len()).ok_or(EmitError::BufferFull)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(EmitError::BufferFull)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn byte(&mut self, b: u8) -> Result<(), EmitError> {
        self.raw(&[b])
    }

    /// Ends the current line.
    pub fn eol(&mut self) -> Result<(), EmitError> {
        match self.eol {
            LineEnding::CrLf => self.raw(b"\r\n"),
            LineEnding::Lf => self.raw(b"\n"),
        }
    }

    /// `/header` followed by a line end and the blank line.
    pub fn header(&mut self, header: &[u8]) -> Result<(), EmitError> {
        self.header_with(header, true)
    }

    /// `/header` and a line end, with or without the blank line after it.
    pub fn header_with(&mut self, header: &[u8], blank_line: bool) -> Result<(), EmitError> {
        self.byte(b'/')?;
        self.raw(header)?;
        self.eol()?;
        if blank_line {
            self.eol()?;
        }
        Ok(())
    }

    fn dec(&mut self, mut v: u64, min_digits: u8) -> Result<(), EmitError> {
        let mut tmp = [0u8; 20];
        let mut n = 0usize;
        loop {
            if let Some(slot) = tmp.get_mut(n) {
                *slot = b'0' + (v % 10) as u8;
            }
            n += 1;
            v /= 10;
            if v == 0 && n >= usize::from(min_digits) || n >= tmp.len() {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            self.byte(tmp.get(n).copied().unwrap_or(b'0'))?;
        }
        Ok(())
    }

    /// Writes an OBIS reference `A-B:C.D.E`.
    pub fn obis(&mut self, o: Obis) -> Result<(), EmitError> {
        self.dec(u64::from(o.a), 1)?;
        self.byte(b'-')?;
        self.dec(u64::from(o.b), 1)?;
        self.byte(b':')?;
        self.dec(u64::from(o.c), 1)?;
        self.byte(b'.')?;
        self.dec(u64::from(o.d), 1)?;
        self.byte(b'.')?;
        self.dec(u64::from(o.e), 1)
    }

    /// Writes a number in the given format (no parentheses).
    pub fn number(&mut self, v: Fixed, fmt: NumFormat) -> Result<(), EmitError> {
        let raw = v.rescale(fmt.decimals).ok_or(EmitError::NumberTooLarge)?;
        let p = pow10(fmt.decimals).ok_or(EmitError::NumberTooLarge)?.unsigned_abs();
        if raw < 0 {
            self.byte(b'-')?;
        }
        let a = raw.unsigned_abs();
        self.dec(a / p, fmt.int_digits.max(1))?;
        if fmt.decimals > 0 {
            self.byte(b'.')?;
            self.dec(a % p, fmt.decimals)?;
        }
        Ok(())
    }

    /// Writes `(text)`.
    pub fn group(&mut self, text: &[u8]) -> Result<(), EmitError> {
        self.byte(b'(')?;
        self.raw(text)?;
        self.byte(b')')
    }

    /// Writes `(number*unit)` or `(number)`.
    pub fn group_number(&mut self, v: Fixed, fmt: NumFormat, unit: Option<&str>) -> Result<(), EmitError> {
        self.byte(b'(')?;
        self.number(v, fmt)?;
        if let Some(u) = unit {
            self.byte(b'*')?;
            self.raw(u.as_bytes())?;
        }
        self.byte(b')')
    }

    /// Writes `(YYMMDDhhmmssX)`.
    pub fn group_timestamp(&mut self, t: Timestamp) -> Result<(), EmitError> {
        self.byte(b'(')?;
        for f in [t.year, t.month, t.day, t.hour, t.minute, t.second] {
            self.dec(u64::from(f % 100), 2)?;
        }
        match t.dst {
            Some(Dst::Summer) => self.byte(b'S')?,
            Some(Dst::Winter) => self.byte(b'W')?,
            None => {}
        }
        self.byte(b')')
    }

    /// Writes `(hex)` of `bytes` in uppercase hex.
    pub fn group_hex(&mut self, bytes: &[u8]) -> Result<(), EmitError> {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        self.byte(b'(')?;
        for &b in bytes {
            self.byte(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'))?;
            self.byte(HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'))?;
        }
        self.byte(b')')
    }

    /// A whole line `obis(text)`.
    pub fn text_line(&mut self, obis: Obis, text: &[u8]) -> Result<(), EmitError> {
        self.obis(obis)?;
        self.group(text)?;
        self.eol()
    }

    /// A whole line `obis(number*unit)`.
    pub fn register(&mut self, obis: Obis, v: Fixed, fmt: NumFormat, unit: Option<&str>) -> Result<(), EmitError> {
        self.obis(obis)?;
        self.group_number(v, fmt, unit)?;
        self.eol()
    }

    /// A whole line `obis(TST)`.
    pub fn timestamp_line(&mut self, obis: Obis, t: Timestamp) -> Result<(), EmitError> {
        self.obis(obis)?;
        self.group_timestamp(t)?;
        self.eol()
    }

    /// An M-Bus value line `0-n:24.2.1(TST)(number*unit)`.
    pub fn mbus(&mut self, obis: Obis, t: Timestamp, v: Fixed, fmt: NumFormat, unit: Option<&str>) -> Result<(), EmitError> {
        self.obis(obis)?;
        self.group_timestamp(t)?;
        self.group_number(v, fmt, unit)?;
        self.eol()
    }

    /// A profile-generic line `obis(n)(entry_obis)(TST)(v*unit)...` such as the power-failure
    /// log (`1-0:99.97.0`, entry obis `0-0:96.7.19`). With no entries it writes `obis()` when
    /// `empty_parens` is set (as Iskra AM550 meters do), else `obis(0)(entry_obis)`.
    pub fn profile(
        &mut self,
        obis: Obis,
        entry_obis: Obis,
        entries: &[(Timestamp, Fixed)],
        fmt: NumFormat,
        unit: Option<&str>,
        empty_parens: bool,
    ) -> Result<(), EmitError> {
        self.obis(obis)?;
        if entries.is_empty() && empty_parens {
            self.raw(b"()")?;
            return self.eol();
        }
        self.byte(b'(')?;
        self.dec(entries.len() as u64, 1)?;
        self.byte(b')')?;
        self.byte(b'(')?;
        self.obis(entry_obis)?;
        self.byte(b')')?;
        for &(t, v) in entries {
            self.group_timestamp(t)?;
            self.group_number(v, fmt, unit)?;
        }
        self.eol()
    }

    /// Writes `!`, the CRC over everything from the start through `!` (as chosen) and the line
    /// end. Returns the telegram's length.
    pub fn finish(mut self, finish: Finish) -> Result<usize, EmitError> {
        self.byte(b'!')?;
        if let Some(kind) = finish.crc {
            let crc = kind.compute(self.as_bytes());
            let digits: &[u8; 16] = if finish.lowercase { b"0123456789abcdef" } else { b"0123456789ABCDEF" };
            let mut skip_zero = finish.unpadded;
            for shift in [12u16, 8, 4, 0] {
                let d = usize::from((crc >> shift) & 0xF);
                if skip_zero && d == 0 && shift == 12 {
                    continue;
                }
                skip_zero = false;
                self.byte(digits.get(d).copied().unwrap_or(b'0'))?;
            }
        }
        self.eol()?;
        Ok(self.len)
    }
}

fn unit_str(q: &Quantity) -> Option<&'static str> {
    q.unit.map(|u| u.as_str())
}

impl Reading {
    /// Writes this reading as a telegram with CRC-16/ARC and CRLF line endings into `buf`;
    /// returns its length.
    ///
    /// Objects are written in DSMR 5.0.2 order with the spec's integer widths and each value's own
    /// decimals, so decoding the output gives back an equal `Reading` (unknown objects and issues
    /// are not written: they have no typed value).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let mut w = Writer::new(buf);
        self.write_lines(&mut w)?;
        w.finish(Finish::ARC)
    }

    /// Writes the header and all lines (not the `!` line) into `w`.
    pub fn write_lines(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        let q = |w: &mut Writer<'_>, o: Obis, q: &Option<Quantity>, int: u8| -> Result<(), EmitError> {
            if let Some(q) = q {
                w.register(o, q.value, NumFormat::new(int, q.value.decimals), unit_str(q))?;
            }
            Ok(())
        };
        let u = |w: &mut Writer<'_>, o: Obis, v: Option<u32>, digits: u8| -> Result<(), EmitError> {
            if let Some(v) = v {
                w.register(o, Fixed::new(i64::from(v), 0), NumFormat::new(digits, 0), None)?;
            }
            Ok(())
        };
        w.header(&self.header)?;
        if let Some(v) = &self.version {
            w.text_line(Obis::new(1, 3, 0, 2, 8), v)?;
        }
        if let Some(v) = &self.be_version {
            w.text_line(Obis::new(0, 0, 96, 1, 4), v)?;
        }
        if let Some(t) = self.timestamp {
            w.timestamp_line(Obis::new(0, 0, 1, 0, 0), t)?;
        }
        for (o, v) in [
            (Obis::new(0, 0, 96, 1, 1), &self.equipment_id),
            (Obis::new(0, 0, 96, 1, 0), &self.meter_serial),
            (Obis::new(0, 0, 42, 0, 0), &self.device_name),
        ] {
            if let Some(v) = v {
                w.text_line(o, v)?;
            }
        }
        for (c, arr) in [
            (1u8, &self.energy_import),
            (2, &self.energy_export),
            (3, &self.reactive_energy_import),
            (4, &self.reactive_energy_export),
        ] {
            for (e, v) in (0u8..).zip(arr.iter()) {
                q(w, Obis::new(1, 0, c, 8, e), v, 6)?;
            }
        }
        if let Some(t) = self.tariff {
            w.register(Obis::new(0, 0, 96, 14, 0), Fixed::new(i64::from(t), 0), NumFormat::new(4, 0), None)?;
        }
        q(w, Obis::new(1, 0, 1, 4, 0), &self.average_demand, 2)?;
        if let Some(p) = &self.max_demand_month {
            w.obis(Obis::new(1, 0, 1, 6, 0))?;
            w.group_timestamp(p.occurred)?;
            w.group_number(p.value.value, NumFormat::new(2, p.value.value.decimals), unit_str(&p.value))?;
            w.eol()?;
        }
        if let Some(h) = &self.max_demand_history {
            w.obis(Obis::new(0, 0, 98, 1, 0))?;
            w.group_number(Fixed::new(h.len() as i64, 0), NumFormat::new(1, 0), None)?;
            w.group(b"1-0:1.6.0")?;
            w.group(b"1-0:1.6.0")?;
            if h.is_empty() {
                w.group(b"")?;
            }
            for m in h {
                w.group_timestamp(m.month)?;
                w.group_timestamp(m.occurred)?;
                w.group_number(m.value.value, NumFormat::new(2, m.value.value.decimals), unit_str(&m.value))?;
            }
            w.eol()?;
        }
        q(w, Obis::new(1, 0, 1, 7, 0), &self.power_import, 2)?;
        q(w, Obis::new(1, 0, 2, 7, 0), &self.power_export, 2)?;
        q(w, Obis::new(1, 0, 3, 7, 0), &self.reactive_power_import, 2)?;
        q(w, Obis::new(1, 0, 4, 7, 0), &self.reactive_power_export, 2)?;
        q(w, Obis::new(1, 0, 9, 7, 0), &self.apparent_power_import, 2)?;
        q(w, Obis::new(1, 0, 10, 7, 0), &self.apparent_power_export, 2)?;
        if let Some(pf) = self.power_factor {
            w.register(Obis::new(1, 0, 13, 7, 0), pf, NumFormat::new(1, pf.decimals), None)?;
        }
        q(w, Obis::new(1, 0, 14, 7, 0), &self.frequency, 2)?;
        q(w, Obis::new(0, 0, 17, 0, 0), &self.threshold, 3)?;
        u(w, Obis::new(0, 0, 96, 3, 10), self.switch_position.map(u32::from), 1)?;
        u(w, Obis::new(0, 0, 96, 7, 21), self.power_failures, 5)?;
        u(w, Obis::new(0, 0, 96, 7, 9), self.long_power_failures, 5)?;
        if let Some(log) = &self.power_failure_log {
            let mut entries = [(ZERO_TS, Fixed::default()); 10];
            for (slot, e) in entries.iter_mut().zip(log.iter()) {
                *slot = (e.end, Fixed::new(i64::try_from(e.duration_s).unwrap_or(i64::MAX), 0));
            }
            let entries = entries.get(..log.len()).unwrap_or(&[]);
            w.profile(Obis::new(1, 0, 99, 97, 0), Obis::new(0, 0, 96, 7, 19), entries, NumFormat::new(10, 0), Some("s"), true)?;
        }
        for (i, c) in [32u8, 52, 72].into_iter().enumerate() {
            u(w, Obis::new(1, 0, c, 32, 0), self.voltage_sags.get(i).copied().flatten(), 5)?;
        }
        for (i, c) in [32u8, 52, 72].into_iter().enumerate() {
            u(w, Obis::new(1, 0, c, 36, 0), self.voltage_swells.get(i).copied().flatten(), 5)?;
        }
        if let Some(m) = &self.text_code {
            w.obis(Obis::new(0, 0, 96, 13, 1))?;
            if m.was_hex { w.group_hex(&m.bytes)? } else { w.group(&m.bytes)? }
            w.eol()?;
        }
        if let Some(m) = &self.text_message {
            w.obis(Obis::new(0, 0, 96, 13, 0))?;
            if m.was_hex { w.group_hex(&m.bytes)? } else { w.group(&m.bytes)? }
            w.eol()?;
        }
        let phases = [(32u8, &self.voltage, 3u8), (31, &self.current, 3), (21, &self.power_import_phase, 2), (22, &self.power_export_phase, 2), ];
        for (base, arr, int) in phases {
            for (i, v) in arr.iter().enumerate() {
                q(w, Obis::new(1, 0, base + 20 * i as u8, 7, 0), v, int)?;
            }
        }
        for (i, v) in self.fuse_threshold.iter().enumerate() {
            q(w, Obis::new(1, 0, 31 + 20 * i as u8, 4, 0), v, 3)?;
        }
        for (ch, dev) in (1u8..).zip(self.mbus.iter()) {
            let Some(d) = dev else { continue };
            if d.is_empty() {
                // A channel that only sent empty objects, e.g. `0-1:24.1.0()`.
                w.text_line(Obis::new(0, ch, 24, 1, 0), b"")?;
            }
            if let Some(t) = d.device_type {
                w.register(Obis::new(0, ch, 24, 1, 0), Fixed::new(i64::from(t), 0), NumFormat::new(3, 0), None)?;
            }
            if let Some(id) = &d.equipment_id {
                w.text_line(Obis::new(0, ch, 96, 1, 0), id)?;
            }
            if let Some(v) = &d.value {
                let fmt = NumFormat::new(5, v.value.value.decimals);
                match v.kind {
                    MBusValueKind::Corrected | MBusValueKind::Uncorrected => {
                        let e = if v.kind == MBusValueKind::Corrected { 1 } else { 3 };
                        w.obis(Obis::new(0, ch, 24, 2, e))?;
                        if let Some(t) = v.timestamp {
                            w.group_timestamp(t)?;
                        }
                        w.group_number(v.value.value, fmt, unit_str(&v.value))?;
                        w.eol()?;
                    }
                    MBusValueKind::Legacy => {
                        w.obis(Obis::new(0, ch, 24, 3, 0))?;
                        match v.timestamp {
                            Some(t) => w.group_timestamp(t)?,
                            None => w.group(b"")?,
                        }
                        w.raw(b"(00)(60)(1)")?;
                        w.byte(b'(')?;
                        w.obis(Obis::new(0, ch, 24, 2, 1))?;
                        w.byte(b')')?;
                        w.group(unit_str(&v.value).unwrap_or("").as_bytes())?;
                        w.eol()?;
                        w.group_number(v.value.value, fmt, None)?;
                        w.eol()?;
                    }
                }
            }
            if let Some(v) = d.valve {
                w.register(Obis::new(0, ch, 24, 4, 0), Fixed::new(i64::from(v), 0), NumFormat::new(1, 0), None)?;
            }
            if let Some(v) = d.switch_position {
                w.register(Obis::new(0, ch, 96, 3, 10), Fixed::new(i64::from(v), 0), NumFormat::new(1, 0), None)?;
            }
        }
        Ok(())
    }
}

const ZERO_TS: Timestamp = Timestamp { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0, dst: None };
