//! Zero-copy view of one telegram: header, lines, OBIS references, values with units.
//!
//! Guarantees: every function here never panics on any input and never allocates. Malformed lines
//! are yielded as [`LineError`]s (with their line number) by [`Telegram::lines`]; they never stop
//! the iteration.

use crate::crc::CrcKind;
use crate::value::{Fixed, Quantity, Timestamp, Unit};
use core::fmt;

/// An OBIS reduced ID `A-B:C.D.E` (value group F is not used by P1; a written `*F` is ignored).
/// For M-Bus objects `b` is the channel (`0-1:24.2.1` is channel 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Obis {
    /// Medium (0 abstract, 1 electricity, ...).
    pub a: u8,
    /// Channel.
    pub b: u8,
    /// Quantity.
    pub c: u8,
    /// Processing.
    pub d: u8,
    /// Tariff / storage.
    pub e: u8,
}

impl Obis {
    /// An OBIS reference.
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8) -> Self {
        Obis { a, b, c, d, e }
    }

    /// Parses `A-B:C.D.E` with an optional `*F` suffix; every field 0..=255.
    pub fn parse(s: &[u8]) -> Option<Obis> {
        let mut i = 0usize;
        let a = field(s, &mut i)?;
        expect(s, &mut i, b'-')?;
        let b = field(s, &mut i)?;
        expect(s, &mut i, b':')?;
        let c = field(s, &mut i)?;
        expect(s, &mut i, b'.')?;
        let d = field(s, &mut i)?;
        expect(s, &mut i, b'.')?;
        let e = field(s, &mut i)?;
        match s.get(i..) {
            Some([]) => {}
            // Value group F: digits only.
            Some([b'*', f @ ..]) if !f.is_empty() && f.iter().all(u8::is_ascii_digit) => {}
            _ => return None,
        }
        Some(Obis { a, b, c, d, e })
    }
}

/// One OBIS field: 1..=3 digits, at most 255.
#[inline(always)]
fn field(s: &[u8], i: &mut usize) -> Option<u8> {
    let start = *i;
    let mut v: u16 = 0;
    while let Some(&b) = s.get(*i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + u16::from(d);
        *i += 1;
        if *i - start > 3 {
            return None;
        }
    }
    if *i == start { None } else { u8::try_from(v).ok() }
}

#[inline(always)]
fn expect(s: &[u8], i: &mut usize, sep: u8) -> Option<()> {
    if s.get(*i) == Some(&sep) {
        *i += 1;
        Some(())
    } else {
        None
    }
}

impl fmt::Display for Obis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}:{}.{}.{}", self.a, self.b, self.c, self.d, self.e)
    }
}

/// Why a telegram could not be viewed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes do not start with `/`.
    NoHeader,
    /// There is no `!` after the header.
    NoEnd,
    /// The text after `!` is not 0, 3 or 4 hex digits.
    BadCrcField,
    /// The CRC does not match.
    CrcMismatch {
        /// The CRC the meter wrote.
        given: u16,
        /// The CRC of the bytes.
        computed: u16,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::NoHeader => f.write_str("telegram does not start with '/'"),
            ParseError::NoEnd => f.write_str("telegram has no '!' end line"),
            ParseError::BadCrcField => f.write_str("CRC field after '!' is not 3-4 hex digits"),
            ParseError::CrcMismatch { given, computed } => {
                write!(f, "CRC mismatch: telegram says {given:04X}, computed {computed:04X}")
            }
        }
    }
}

impl core::error::Error for ParseError {}

/// A telegram: the bytes from `/` through `!` and the CRC, viewed without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Telegram<'a> {
    header: &'a [u8],
    body: &'a [u8],
    body_offset_line: u16,
    crc: Option<u16>,
}

fn trim_eol(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

impl<'a> Telegram<'a> {
    /// Views `bytes` (from `/`; anything after the CRC line is ignored) and checks the CRC-16/ARC
    /// when one is present.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(bytes, Some(CrcKind::Arc))
    }

    /// Like [`Telegram::parse`] with a chosen CRC kind, or `None` to not check the CRC.
    pub fn parse_with(bytes: &'a [u8], crc: Option<CrcKind>) -> Result<Self, ParseError> {
        let (header, body, bang) = Self::split(bytes)?;
        let after = bytes.get(bang + 1..).unwrap_or(&[]);
        let eol = after.iter().position(|&b| b == b'\n').unwrap_or(after.len());
        let field = trim_eol(after.get(..eol).unwrap_or(&[]));
        let given = match field.len() {
            0 => None,
            3 | 4 => {
                let mut v: u16 = 0;
                for &b in field {
                    v = (v << 4) | u16::from(crate::value::hex_digit(b).ok_or(ParseError::BadCrcField)?);
                }
                Some(v)
            }
            _ => return Err(ParseError::BadCrcField),
        };
        if let (Some(given), Some(kind)) = (given, crc) {
            let computed = kind.compute(bytes.get(..=bang).unwrap_or(&[]));
            if computed != given {
                return Err(ParseError::CrcMismatch { given, computed });
            }
        }
        Ok(Telegram { header, body, body_offset_line: 2, crc: given })
    }

    /// Views the lines of a telegram that lacks its `!` line (some DSMR 2.2/3 captures end without
    /// one). There is no CRC. `Err(NoHeader)` when `bytes` does not start with `/`.
    pub fn parse_unterminated(bytes: &'a [u8]) -> Result<Self, ParseError> {
        match Self::split(bytes) {
            Ok(_) => Self::parse_with(bytes, None),
            Err(ParseError::NoEnd) => {
                let nl = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
                let header = trim_eol(bytes.get(1..nl).unwrap_or(&[]));
                let body = bytes.get(nl + 1..).unwrap_or(&[]);
                Ok(Telegram { header, body, body_offset_line: 2, crc: None })
            }
            Err(e) => Err(e),
        }
    }

    fn split(bytes: &'a [u8]) -> Result<(&'a [u8], &'a [u8], usize), ParseError> {
        if bytes.first() != Some(&b'/') {
            return Err(ParseError::NoHeader);
        }
        let nl = bytes.iter().position(|&b| b == b'\n').ok_or(ParseError::NoEnd)?;
        let header = trim_eol(bytes.get(1..nl).unwrap_or(&[]));
        let rest = bytes.get(nl + 1..).unwrap_or(&[]);
        let bang_rel = rest.iter().position(|&b| b == b'!').ok_or(ParseError::NoEnd)?;
        let body = rest.get(..bang_rel).unwrap_or(&[]);
        Ok((header, body, nl + 1 + bang_rel))
    }

    /// Builds the view of a frame the [`crate::Framer`] has already checked, from the positions
    /// of the header's line feed and of `!`.
    pub(crate) fn from_parts(bytes: &'a [u8], header_nl: usize, bang: usize, crc: Option<u16>) -> Self {
        let header = trim_eol(bytes.get(1..header_nl).unwrap_or(&[]));
        let body = bytes.get(header_nl + 1..bang).unwrap_or(&[]);
        Telegram { header, body, body_offset_line: 2, crc }
    }

    /// The header line without `/` and line end, e.g. `ISK5\2M550E-1012`.
    pub fn header(&self) -> &'a [u8] {
        self.header
    }

    /// The three-letter manufacturer id (`ISK`, `KFM`, `FLU`, ...), if the header has one.
    pub fn manufacturer(&self) -> Option<&'a str> {
        let m = self.header.get(..3)?;
        if m.iter().all(u8::is_ascii_alphabetic) { core::str::from_utf8(m).ok() } else { None }
    }

    /// The identification after the manufacturer id and baud character (`\2M550E-1012`).
    pub fn identification(&self) -> &'a [u8] {
        self.header.get(4..).unwrap_or(&[])
    }

    /// The CRC the telegram carried (`None` for DSMR 2.2/3 telegrams without one).
    pub fn crc(&self) -> Option<u16> {
        self.crc
    }

    /// The data lines between the header and `!` (blank lines skipped). A line starting with `(`
    /// continues the previous one (DSMR 2.2/3 gas value on the next line).
    pub fn lines(&self) -> Lines<'a> {
        Lines { rest: self.body, line_no: self.body_offset_line }
    }

    /// Finds the first line with the given OBIS reference.
    pub fn find(&self, obis: Obis) -> Option<Line<'a>> {
        self.lines().flatten().find(|l| l.obis == obis)
    }
}

/// A malformed line: its 1-based line number in the telegram and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineError<'a> {
    /// 1-based line number (the header is line 1).
    pub line: u16,
    /// The line as written, without line end.
    pub text: &'a [u8],
}

impl fmt::Display for LineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: malformed: {:?}", self.line, crate::fmt_bytes(self.text))
    }
}

/// Iterator over the lines of a [`Telegram`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
    line_no: u16,
}

/// Parses one line starting at `start` in `bytes` (a line that is not blank). Returns the line
/// (or `None` if malformed), the index just past the line's end (and its continuation lines), and
/// how many line ends were consumed. One pass: OBIS digits, then each group scanned eight bytes
/// at a time for its `)` (and `*`, `(` or a line end, which make it malformed).
#[inline(always)]
fn parse_line(bytes: &[u8], start: usize, line_no: u16) -> (Option<Line<'_>>, usize, usize, u16) {
    let line = bytes.get(start..).unwrap_or(&[]);
    if let Some((l, text_end, next, newlines)) = simple_line(line, line_no) {
        return (Some(l), start + text_end, start + next, newlines);
    }
    parse_line_general(bytes, start, line_no)
}

/// The common case of [`parse_line`]: `OBIS(text[*unit])(...)...` and a line end (or the
/// end of the body). `None` for anything else (spaces, a continuation line, malformed), which the general parser then handles; when it returns a line it is exactly the
/// one the general parser would (checked by a differential property test).
#[inline(always)]
fn simple_line(line: &[u8], line_no: u16) -> Option<(Line<'_>, usize, usize, u16)> {
    let mut i = 0usize;
    let obis = obis_prefix(line, &mut i)?;
    let open = i;
    let mut first = Value { text: &[], unit: None };
    let mut count = 0u16;
    let mut rest = line.get(open..)?;
    // Each group: its text up to the first special byte, then (after a `*`) the unit up to the
    // next; then another group right away, or the line end.
    let close = loop {
        let Some((b'(', group)) = rest.split_first() else { return None };
        let p = group.iter().position(|&b| SPECIAL[usize::from(b)])?;
        let (value, close) = match group.get(p) {
            Some(b')') => (Value { text: group.get(..p)?, unit: None }, p),
            Some(b'*') => {
                let after = group.get(p + 1..)?;
                let q = after.iter().position(|&b| b == b')' || b == b'(' || b == b'\n')?;
                if after.get(q) != Some(&b')') {
                    return None;
                }
                (Value { text: group.get(..p)?, unit: Some(after.get(..q)?) }, p + 1 + q)
            }
            _ => return None,
        };
        if count == 0 {
            first = value;
        }
        count = count.saturating_add(1);
        rest = group.get(close + 1..)?;
        if rest.first() != Some(&b'(') {
            break line.len().saturating_sub(rest.len() + 1);
        }
    };
    let mut k = close + 1;
    if line.get(k) == Some(&b'\r') {
        k += 1;
    }
    let (next, newlines) = match line.get(k) {
        None => (line.len(), 0),
        Some(b'\n') if line.get(k + 1) != Some(&b'(') => (k + 1, 1),
        _ => return None,
    };
    let l = Line {
        obis,
        obis_text: line.get(..open).unwrap_or(&[]),
        groups_text: line.get(open..=close).unwrap_or(&[]),
        line: line_no,
        count,
        first,
    };
    Some((l, close + 1, next, newlines))
}

/// Bytes that end or split a group's text: `)`, `*`, `(`, line feed.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b')' as usize] = true;
    t[b'*' as usize] = true;
    t[b'(' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

/// The general line parser (any number of groups, spaces between them, continuation lines).
#[inline(never)]
fn parse_line_general(bytes: &[u8], start: usize, line_no: u16) -> (Option<Line<'_>>, usize, usize, u16) {
    let line = bytes.get(start..).unwrap_or(&[]);
    let malformed = |line: &[u8]| {
        let end = crate::scan::find(line, b'\n').unwrap_or(line.len());
        let text = line.get(..end).unwrap_or(&[]);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        (None, start + text.len(), start + (end + 1).min(line.len()), 1)
    };
    let mut i = 0usize;
    let Some(obis) = obis_prefix(line, &mut i) else { return malformed(line) };
    let obis_text = line.get(..i).unwrap_or(&[]);
    let groups_start = i;
    let mut count = 0u16;
    let mut first = Value { text: &[], unit: None };
    let mut newlines = 0u16;
    let mut groups_end;
    loop {
        // At a '(' here.
        if line.get(i) != Some(&b'(') {
            return malformed(line);
        }
        let inner_start = i + 1;
        let inner = line.get(inner_start..).unwrap_or(&[]);
        let mut star = None;
        let mut j = 0usize;
        let close = loop {
            let Some(k) = crate::scan::find_any(inner.get(j..).unwrap_or(&[]), [b')', b'*', b'(', b'\n']) else {
                return malformed(line);
            };
            match inner.get(j + k) {
                Some(b')') => break j + k,
                Some(b'*') if star.is_none() => {
                    star = Some(j + k);
                    j += k + 1;
                }
                Some(b'*') => j += k + 1,
                _ => return malformed(line),
            }
        };
        if count == 0 {
            let body = inner.get(..close).unwrap_or(&[]);
            first = match star {
                Some(st) => Value { text: body.get(..st).unwrap_or(&[]), unit: body.get(st + 1..) },
                None => Value { text: body, unit: None },
            };
        }
        count = count.saturating_add(1);
        i = inner_start + close + 1;
        groups_end = i;
        // Next group, a continuation line `(value)` after the line end, or the end of the line.
        while line.get(i) == Some(&b' ') {
            i += 1;
        }
        if line.get(i) == Some(&b'(') {
            continue;
        }
        let mut k = i;
        if line.get(k) == Some(&b'\r') {
            k += 1;
        }
        match line.get(k) {
            None => break,
            Some(b'\n') => {
                if line.get(k + 1) == Some(&b'(') {
                    newlines = newlines.saturating_add(1);
                    i = k + 1;
                    continue;
                }
                let line = Line {
                    obis,
                    obis_text,
                    groups_text: line.get(groups_start..groups_end).unwrap_or(&[]),
                    line: line_no,
                    count,
                    first,
                };
                return (Some(line), start + groups_end, start + k + 1, newlines + 1);
            }
            Some(_) => return malformed(line),
        }
    }
    let l = Line { obis, obis_text, groups_text: line.get(groups_start..groups_end).unwrap_or(&[]), line: line_no, count, first };
    (Some(l), start + groups_end, start + line.len(), newlines)
}

/// Parses the OBIS reference at the start of `s` up to its `(`; `i` ends at the `(`.
#[inline(always)]
pub(crate) fn obis_prefix(s: &[u8], i: &mut usize) -> Option<Obis> {
    let a = field(s, i)?;
    expect(s, i, b'-')?;
    let b = field(s, i)?;
    expect(s, i, b':')?;
    let c = field(s, i)?;
    expect(s, i, b'.')?;
    let d = field(s, i)?;
    expect(s, i, b'.')?;
    let e = field(s, i)?;
    if s.get(*i) == Some(&b'*') {
        *i += 1;
        let f = *i;
        while s.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        if *i == f {
            return None;
        }
    }
    if s.get(*i) == Some(&b'(') { Some(Obis { a, b, c, d, e }) } else { None }
}

impl<'a> Lines<'a> {
    /// Skips blank lines; returns the rest of the body from the next line's start, or `None` at
    /// the end.
    #[inline(always)]
    fn skip_blank(&mut self) -> Option<&'a [u8]> {
        let bytes = self.rest;
        let mut start = 0;
        while let Some(&b) = bytes.get(start) {
            match b {
                b'\n' => {
                    start += 1;
                    self.line_no = self.line_no.saturating_add(1);
                }
                b'\r' if bytes.get(start + 1) == Some(&b'\n') => start += 1,
                _ => break,
            }
        }
        match bytes.get(start..) {
            Some(rest) if !rest.is_empty() => {
                self.rest = rest;
                Some(rest)
            }
            _ => {
                self.rest = &[];
                None
            }
        }
    }

    /// Goes through the same lines as the iterator, without building an `Option<Result<..>>` per
    /// line: gives each line's bytes to `direct` first; when that returns `None`, calls `f` with
    /// a line that has the common shape `OBIS(text[*unit])...`, or `g` with any other line or
    /// line error.
    #[inline(always)]
    pub(crate) fn for_each_fast<S>(
        mut self,
        state: &mut S,
        direct: impl Fn(&mut S, &'a [u8]) -> Option<(usize, u16)>,
        f: impl Fn(&mut S, &Line<'a>),
        g: impl Fn(&mut S, Result<Line<'a>, LineError<'a>>),
    ) {
        while let Some(rest) = self.skip_blank() {
            // `direct` decodes the line itself when it can and says where the next one starts.
            if let Some((next, newlines)) = direct(state, rest) {
                self.line_no = self.line_no.saturating_add(newlines);
                self.rest = rest.get(next..).unwrap_or(&[]);
                continue;
            }
            if let Some((l, _, next, newlines)) = simple_line(rest, self.line_no) {
                f(state, &l);
                self.line_no = self.line_no.saturating_add(newlines);
                self.rest = rest.get(next..).unwrap_or(&[]);
                continue;
            }
            match self.next() {
                Some(r) => g(state, r),
                None => break,
            }
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, LineError<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.skip_blank()?;
        let bytes = self.rest;
        let start = 0;
        let line_no = self.line_no;
        let (line, text_end, next, newlines) = parse_line(bytes, start, line_no);
        self.line_no = self.line_no.saturating_add(newlines);
        self.rest = bytes.get(next..).unwrap_or(&[]);
        Some(match line {
            Some(l) => Ok(l),
            None => Err(LineError { line: line_no, text: bytes.get(start..text_end).unwrap_or(&[]) }),
        })
    }
}

/// One COSEM line: `OBIS(group)(group)...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The OBIS reference.
    pub obis: Obis,
    /// The OBIS reference exactly as written (e.g. `0-1:24.2.1`).
    pub obis_text: &'a [u8],
    /// Everything from the first `(` through the last `)`, continuation lines included.
    pub groups_text: &'a [u8],
    /// 1-based line number in the telegram.
    pub line: u16,
    count: u16,
    first: Value<'a>,
}

impl<'a> Line<'a> {
    /// The values in parentheses, in order.
    pub fn values(&self) -> Groups<'a> {
        Groups { rest: self.groups_text }
    }

    /// The `i`-th value.
    pub fn value(&self, i: usize) -> Option<Value<'a>> {
        if i == 0 { Some(self.first) } else { self.values().nth(i) }
    }

    /// How many values the line has.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Always false: a line has at least one group.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Iterator over the `(...)` groups of a [`Line`].
#[derive(Debug, Clone)]
pub struct Groups<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Groups<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        // The structure was validated when the line was parsed: `(` (after separators), then the
        // text up to `)` with an optional `*unit`.
        // Groups are short: a plain byte loop beats the eight-byte search here.
        let start = self.rest.iter().position(|&b| b == b'(')?;
        let inner = self.rest.get(start + 1..).unwrap_or(&[]);
        let p = inner.iter().position(|&b| b == b')' || b == b'*').unwrap_or(inner.len());
        if inner.get(p) == Some(&b'*') {
            let after = inner.get(p + 1..).unwrap_or(&[]);
            let q = after.iter().position(|&b| b == b')').unwrap_or(after.len());
            self.rest = after.get(q + 1..).unwrap_or(&[]);
            return Some(Value { text: inner.get(..p).unwrap_or(&[]), unit: after.get(..q) });
        }
        self.rest = inner.get(p + 1..).unwrap_or(&[]);
        Some(Value { text: inner.get(..p).unwrap_or(&[]), unit: None })
    }
}

/// One value group: the text before `*` and the unit after it, both as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    /// The text inside the parentheses before any `*`.
    pub text: &'a [u8],
    /// The text after `*`, if any.
    pub unit: Option<&'a [u8]>,
}

impl<'a> Value<'a> {

    /// The text as a decimal number.
    pub fn fixed(&self) -> Option<Fixed> {
        Fixed::parse(self.text)
    }

    /// The unit, if written and recognised.
    pub fn known_unit(&self) -> Option<Unit> {
        self.unit.and_then(Unit::parse)
    }

    /// Number and unit; `None` if the text is not a number or the unit is not recognised.
    pub fn quantity(&self) -> Option<Quantity> {
        let value = self.fixed()?;
        match self.unit {
            None => Some(Quantity::new(value, None)),
            Some(u) => Some(Quantity::new(value, Some(Unit::parse(u)?))),
        }
    }

    /// The text as a timestamp `YYMMDDhhmmss[S|W]`.
    pub fn timestamp(&self) -> Option<Timestamp> {
        Timestamp::parse(self.text)
    }

    /// The text as an unsigned integer (leading zeros allowed, at most 9 digits... up to u32).
    pub fn uint(&self) -> Option<u32> {
        if self.text.is_empty() || self.text.len() > 10 {
            return None;
        }
        let mut v: u64 = 0;
        for &b in self.text {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u64::from(b - b'0');
        }
        u32::try_from(v).ok()
    }

    /// The text as an OBIS reference (profile-generic headers such as `(0-0:96.7.19)`).
    pub fn obis(&self) -> Option<Obis> {
        Obis::parse(self.text)
    }

    /// True for `()`.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.unit.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obis_parses_fields_and_ignores_value_group_f() {
        assert_eq!(Obis::parse(b"1-0:1.8.1"), Some(Obis::new(1, 0, 1, 8, 1)));
        assert_eq!(Obis::parse(b"0-1:24.2.1"), Some(Obis::new(0, 1, 24, 2, 1)));
        assert_eq!(Obis::parse(b"1-0:1.8.0*255"), Some(Obis::new(1, 0, 1, 8, 0)));
        assert_eq!(Obis::parse(b"1-0:1.8"), None);
        assert_eq!(Obis::parse(b"1-0:1.8.256"), None);
        assert_eq!(Obis::parse(b"1-0:1..1"), None);
        assert_eq!(Obis::parse(b""), None);
    }

    /// Bytes that matter to the line parser, and some that do not.
    const ALPHABET: &[u8] = b"()*\r\n .-:0123456789!/kWh";

    const BASES: &[&[u8]] = &[
        b"1-0:1.8.1(000576.239*kWh)\r\n0-0:96.14.0(0002)\r\n",
        b"0-1:24.2.1(190320181003W)(00304.089*m3)\r\n",
        b"0-0:96.13.0()\r\n(12)\n",
        b"1-0:1.8.1*255(1*a*b)",
        b"1-0:99.97.0()\n",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// The fast path of `parse_line` gives exactly what the general parser gives, on lines
        /// near the common shape and on random ones.
        #[test]
        fn simple_line_agrees_with_the_general_parser(
            base in proptest::sample::select(BASES),
            edits in proptest::collection::vec((0usize..64, proptest::sample::select(ALPHABET), 0u8..3), 0..4),
        ) {
            let mut line = base.to_vec();
            for (at, b, op) in edits {
                let at = at % (line.len() + 1);
                match op {
                    0 if at < line.len() => line[at] = b,
                    1 => line.insert(at, b),
                    _ if at < line.len() => { line.remove(at); }
                    _ => {}
                }
            }
            for start in 0..line.len().min(3) {
                let fast = parse_line(&line, start, 7);
                let general = parse_line_general(&line, start, 7);
                proptest::prop_assert_eq!(fast, general, "{:?}", crate::fmt_bytes(&line));
            }
        }
    }

    #[test]
    fn lines_join_continuations_and_report_bad_lines() {
        let t = b"/ISk5\\2MT382-1000\r\n\r\n0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)\r\nxx\r\n1-0:1.8.1(000301.548*kWh)\r\n!\r\n";
        let tg = Telegram::parse(t).unwrap();
        assert_eq!(tg.manufacturer(), Some("ISk"));
        assert_eq!(tg.identification(), b"\\2MT382-1000");
        let lines: std::vec::Vec<_> = tg.lines().collect();
        assert_eq!(lines.len(), 3);
        let gas = lines[0].unwrap();
        assert_eq!(gas.len(), 7);
        assert_eq!(gas.value(6).unwrap().fixed(), Some(Fixed::new(1001, 3)));
        assert_eq!(lines[1].unwrap_err().line, 5);
        let e = lines[2].unwrap();
        assert_eq!(e.line, 6);
        assert_eq!(e.value(0).unwrap().unit, Some(&b"kWh"[..]));
    }
}
