//! Streaming framer: bytes in, whole telegrams out.
//!
//! [`Framer::feed`] takes any slice of received bytes (a telegram may be split across any number of
//! reads), consumes bytes until the next event and returns how many it consumed together with the
//! event, if any. `None` as event means "need more bytes"; it is never an error.
//!
//! Guarantees: never panics on any input, never allocates, the buffer is the const generic `N`
//! bytes (a telegram longer than `N` is reported as [`FrameError::Oversize`] and skipped). Garbage
//! before `/` is skipped and counted. Every problem is a distinct, counted [`FrameError`].
//!
//! A telegram ends at `!` plus its CRC (delivered as soon as 4 hex digits have arrived, or at the
//! line end for a 3-digit or absent CRC). A telegram is cut off ([`FrameError::Truncated`]) when a
//! `/` starts a line, or when `/XXX5` (a header: three letters and a digit) appears inside a line,
//! so a reader that loses bytes mid-line still catches the next telegram. A lone `/` inside a
//! value (`0-0:96.13.0(test-/-test)`) is ordinary data.

use crate::crc::CrcKind;
use core::fmt;

#[cfg(test)]
mod reference;

/// What went wrong with one telegram. Each variant is counted in [`FramerStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    /// The CRC after `!` does not match the bytes from `/` through `!`.
    CrcMismatch {
        /// The CRC the meter wrote.
        given: u16,
        /// The CRC of the received bytes.
        computed: u16,
    },
    /// The telegram did not fit in the framer's buffer; it was dropped up to the next `/`.
    Oversize {
        /// The buffer size (the const generic `N`).
        limit: usize,
    },
    /// The next telegram began before the `!` of the one in progress: a `/` at the start of a
    /// line, or `/XXX5` (a header) inside a line; or input ended ([`Framer::finish`]).
    Truncated {
        /// How many bytes of the dropped telegram had arrived.
        received: usize,
    },
    /// A line of the telegram does not have the shape of a P1 line.
    Malformed {
        /// 1-based line number within the telegram (the header is line 1).
        line: u16,
        /// What is wrong with it.
        kind: MalformedKind,
    },
}

/// The kind of a [`FrameError::Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MalformedKind {
    /// The header line is shorter than `/XXX5`.
    Header,
    /// A data line does not start with a digit or `(`, or does not end with `)`.
    Line,
    /// The text after `!` is not 0, 3 or 4 hex digits followed by the line end.
    Crc,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::CrcMismatch { given, computed } => {
                write!(f, "CRC mismatch: telegram says {given:04X}, computed {computed:04X}")
            }
            FrameError::Oversize { limit } => write!(f, "telegram longer than the {limit}-byte buffer"),
            FrameError::Truncated { received } => {
                write!(f, "telegram truncated after {received} bytes (no '!' before the next '/' or end of input)")
            }
            FrameError::Malformed { line, kind } => {
                let what = match kind {
                    MalformedKind::Header => "header line too short",
                    MalformedKind::Line => "line is not OBIS(value)... ",
                    MalformedKind::Crc => "CRC field is not 3-4 hex digits",
                };
                write!(f, "malformed telegram, line {line}: {what}")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// Counters of everything the framer has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FramerStats {
    /// Telegrams delivered (CRC valid or absent).
    pub telegrams: u32,
    /// Telegrams delivered without a CRC (DSMR 2.2/3 style `!` line).
    pub without_crc: u32,
    /// [`FrameError::CrcMismatch`] events.
    pub crc_mismatch: u32,
    /// [`FrameError::Oversize`] events.
    pub oversize: u32,
    /// [`FrameError::Truncated`] events.
    pub truncated: u32,
    /// [`FrameError::Malformed`] events.
    pub malformed: u32,
    /// Bytes skipped outside telegrams (CR and LF not counted).
    pub garbage_bytes: u32,
}

/// A whole telegram as received, from `/` through the CRC digits (no trailing CR LF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The telegram's bytes.
    pub bytes: &'a [u8],
    /// The verified CRC, or `None` for a telegram without one.
    pub crc: Option<u16>,
    header_nl: usize,
    bang: usize,
}

impl<'a> Frame<'a> {
    /// The zero-copy view of this telegram.
    pub fn telegram(&self) -> crate::Telegram<'a> {
        crate::Telegram::from_parts(self.bytes, self.header_nl, self.bang, self.crc)
    }
}

/// What `scan` stopped for.
enum Pending {
    None,
    Complete,
    Error(FrameError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for `/`.
    Idle,
    /// In the header line.
    Header,
    /// In the data lines.
    Body,
    /// After `!`.
    Crc,
    /// Skipping an oversize telegram up to the next `/`.
    Discard,
}

/// A streaming P1 framer with an `N`-byte buffer (use at least 4096: Belgian telegrams exceed 2 KiB).
#[derive(Debug, Clone)]
pub struct Framer<const N: usize> {
    buf: [u8; N],
    len: usize,
    state: State,
    crc_kind: CrcKind,
    line_start: usize,
    line_no: u16,
    bad_line: Option<(u16, MalformedKind)>,
    /// Buffer index of a '/' inside a data line that may start a new header (`/XXX5`).
    slash: Option<usize>,
    /// Bytes consumed by all `feed` calls so far.
    consumed: u64,
    /// Stream offset of the current (or last) telegram's `/`.
    start_offset: u64,
    bang: usize,
    header_nl: usize,
    crc_digits: u8,
    crc_value: u16,
    crc_bad: bool,
    stats: FramerStats,
}

impl<const N: usize> Default for Framer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Framer<N> {
    /// A framer checking CRC-16/ARC.
    pub const fn new() -> Self {
        Self::with_crc(CrcKind::Arc)
    }

    /// A framer checking the given CRC kind.
    pub const fn with_crc(crc_kind: CrcKind) -> Self {
        Framer {
            buf: [0; N],
            len: 0,
            state: State::Idle,
            crc_kind,
            line_start: 0,
            line_no: 0,
            bad_line: None,
            slash: None,
            consumed: 0,
            start_offset: 0,
            bang: 0,
            header_nl: 0,
            crc_digits: 0,
            crc_value: 0,
            crc_bad: false,
            stats: FramerStats {
                telegrams: 0,
                without_crc: 0,
                crc_mismatch: 0,
                oversize: 0,
                truncated: 0,
                malformed: 0,
                garbage_bytes: 0,
            },
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> FramerStats {
        self.stats
    }

    /// Stream offset (bytes since the framer was created) of the `/` of the telegram the last
    /// event was about, or of the telegram in progress.
    pub fn telegram_offset(&self) -> u64 {
        self.start_offset
    }

    /// True while a telegram has started but not ended.
    pub fn in_telegram(&self) -> bool {
        matches!(self.state, State::Header | State::Body | State::Crc)
    }

    /// Drops any partial telegram (e.g. after a silence on the line) without counting it.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.len = 0;
    }

    fn start(&mut self) {
        self.len = 0;
        self.line_start = 0;
        self.line_no = 1;
        self.bad_line = None;
        self.slash = None;
        self.crc_digits = 0;
        self.crc_value = 0;
        self.crc_bad = false;
        self.state = State::Header;
    }

    fn note_bad(&mut self, kind: MalformedKind) {
        if self.bad_line.is_none() {
            self.bad_line = Some((self.line_no, kind));
        }
    }

    fn error(&mut self, e: FrameError) -> Option<Result<Frame<'_>, FrameError>> {
        match e {
            FrameError::CrcMismatch { .. } => self.stats.crc_mismatch = self.stats.crc_mismatch.saturating_add(1),
            FrameError::Oversize { .. } => self.stats.oversize = self.stats.oversize.saturating_add(1),
            FrameError::Truncated { .. } => self.stats.truncated = self.stats.truncated.saturating_add(1),
            FrameError::Malformed { .. } => self.stats.malformed = self.stats.malformed.saturating_add(1),
        }
        Some(Err(e))
    }

    /// Ends the telegram after the CRC field; called at its line end (or at 4 digits).
    fn complete(&mut self) -> Option<Result<Frame<'_>, FrameError>> {
        self.state = State::Idle;
        if self.crc_bad || self.crc_digits == 1 || self.crc_digits == 2 {
            let line = self.line_no;
            return self.error(FrameError::Malformed { line, kind: MalformedKind::Crc });
        }
        if let Some((line, kind)) = self.bad_line {
            return self.error(FrameError::Malformed { line, kind });
        }
        let crc = if self.crc_digits == 0 {
            None
        } else {
            let covered = self.buf.get(..=self.bang).unwrap_or(&[]);
            let computed = self.crc_kind.compute(covered);
            if computed != self.crc_value {
                let given = self.crc_value;
                return self.error(FrameError::CrcMismatch { given, computed });
            }
            Some(computed)
        };
        self.stats.telegrams = self.stats.telegrams.saturating_add(1);
        if crc.is_none() {
            self.stats.without_crc = self.stats.without_crc.saturating_add(1);
        }
        let bytes = self.buf.get(..self.len).unwrap_or(&[]);
        Some(Ok(Frame { bytes, crc, header_nl: self.header_nl, bang: self.bang }))
    }

    fn push(&mut self, b: u8) -> bool {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Checks the data line `buf[start..end]` (`end` is the `\n` or `!` after it): empty (after
    /// removing a CR), or starting with a digit or `(` and ending with `)`.
    #[inline(always)]
    fn line_ok(buf: &[u8], start: usize, end: usize) -> bool {
        let Some(line) = buf.get(start..end) else { return true };
        let line = match line {
            [rest @ .., b'\r'] => rest,
            l => l,
        };
        match line {
            [] => true,
            [first, .., b')'] => first.is_ascii_digit() || *first == b'(',
            _ => false,
        }
    }

    /// Checks the data line from `line_start` to `end` (see [`Framer::line_ok`]).
    fn check_body_line(&mut self, end: usize) {
        if !Self::line_ok(&self.buf, self.line_start, end) {
            self.note_bad(MalformedKind::Line);
        }
    }

    /// Copies the bytes of `input` up to the next `!` or `/` (or as many as the buffer holds)
    /// into the buffer, checking each data line at its line feed. Returns how many it consumed.
    /// Scans a block of [`crate::scan::BLOCK`] bytes at a time.
    #[inline(always)]
    fn body_run(&mut self, input: &[u8]) -> usize {
        use crate::scan::{BLOCK, STRIDE};
        let room = N - self.len;
        let input = input.get(..room.min(input.len())).unwrap_or(&[]);
        // Locals, written back at the end: the compiler cannot keep fields in registers across
        // the writes into `buf`.
        let (mut len, mut line_start, mut line_no) = (self.len, self.line_start, self.line_no);
        let mut bad = self.bad_line.is_some();
        let mut blocks = input.chunks_exact(BLOCK);
        let mut stopped = false;
        for block in &mut blocks {
            let (nl, stop) = crate::scan::masks(block, b'\n', b'!', b'/');
            // The bytes before the first `!` or `/` (all when there is none).
            let take = ((stop.trailing_zeros() / STRIDE) as usize).min(BLOCK);
            let mut nl = nl & (stop & stop.wrapping_neg()).wrapping_sub(1);
            // The whole block fits (`room` bytes remain); only `take` of them count.
            if let Some(dst) = self.buf.get_mut(len..len + BLOCK) {
                dst.copy_from_slice(block);
            }
            while nl != 0 {
                let at = len + (nl.trailing_zeros() / STRIDE) as usize;
                if !bad && !Self::line_ok(&self.buf, line_start, at) {
                    bad = true;
                    self.bad_line = Some((line_no, MalformedKind::Line));
                }
                line_no = line_no.saturating_add(1);
                line_start = at + 1;
                nl &= nl.wrapping_sub(1);
            }
            len += take;
            if take < BLOCK {
                stopped = true;
                break;
            }
        }
        let rem = blocks.remainder().len();
        // The last block again, overlapping what was scanned, when there is one: only its
        // last `rem` bytes are new (the others are already in the buffer, unchanged).
        let last = input.len().checked_sub(BLOCK).and_then(|at| input.get(at..));
        if let (false, true, Some(block)) = (stopped, rem > 0, last) {
            let skip = ((BLOCK - rem) as u32) * STRIDE;
            let (nl, stop) = crate::scan::masks(block, b'\n', b'!', b'/');
            let (nl, stop) = (nl >> skip, stop >> skip);
            let take = ((stop.trailing_zeros() / STRIDE) as usize).min(rem);
            let mut nl = nl & (stop & stop.wrapping_neg()).wrapping_sub(1);
            let at = (len + rem).saturating_sub(BLOCK);
            if let Some(dst) = self.buf.get_mut(at..at + BLOCK) {
                dst.copy_from_slice(block);
            }
            while nl != 0 {
                let at = len + (nl.trailing_zeros() / STRIDE) as usize;
                if !bad && !Self::line_ok(&self.buf, line_start, at) {
                    bad = true;
                    self.bad_line = Some((line_no, MalformedKind::Line));
                }
                line_no = line_no.saturating_add(1);
                line_start = at + 1;
                nl &= nl.wrapping_sub(1);
            }
            len += take;
        } else if !stopped {
            for &b in blocks.remainder() {
                if b == b'!' || b == b'/' {
                    break;
                }
                if let Some(slot) = self.buf.get_mut(len) {
                    *slot = b;
                }
                if b == b'\n' {
                    if !bad && !Self::line_ok(&self.buf, line_start, len) {
                        bad = true;
                        self.bad_line = Some((line_no, MalformedKind::Line));
                    }
                    line_no = line_no.saturating_add(1);
                    line_start = len + 1;
                }
                len += 1;
            }
        }
        let done = len - self.len;
        (self.len, self.line_start, self.line_no) = (len, line_start, line_no);
        done
    }

    /// Checks the header line ending at `self.len` (exclusive, LF not yet stored).
    fn end_line(&mut self) {
        let line = self.buf.get(self.line_start..self.len).unwrap_or(&[]);
        let line = match line.split_last() {
            Some((b'\r', rest)) => rest,
            _ => line,
        };
        if self.line_no == 1 {
            if line.len() < 5 {
                self.note_bad(MalformedKind::Header);
            }
        } else if let (Some(&first), Some(&last)) = (line.first(), line.last())
            && (!(first.is_ascii_digit() || first == b'(') || last != b')') {
                self.note_bad(MalformedKind::Line);
            }
        self.line_no = self.line_no.saturating_add(1);
    }

    /// Consumes bytes from `input` up to and including the next event.
    ///
    /// Returns the number of bytes consumed and the event: `Some(Ok(frame))` for a whole telegram
    /// with a valid (or no) CRC, `Some(Err(_))` for a dropped telegram, `None` when all of `input`
    /// was consumed and more bytes are needed. Call again with the rest of `input`.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Result<Frame<'_>, FrameError>>) {
        let used = self.scan(input);
        self.consumed = self.consumed.saturating_add(used.0 as u64);
        match used.1 {
            Pending::None => (used.0, None),
            Pending::Complete => (used.0, self.complete()),
            Pending::Error(e) => (used.0, Some(Err(e))),
        }
    }

    fn scan(&mut self, input: &[u8]) -> (usize, Pending) {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            match self.state {
                State::Idle | State::Discard => {
                    if b == b'/' {
                        self.start();
                        self.start_offset = self.consumed.saturating_add(i as u64);
                        continue;
                    }
                    if self.state == State::Idle && b != b'\r' && b != b'\n' {
                        self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(1);
                    }
                    i += 1;
                }
                State::Header | State::Body => {
                    // A '/' at the start of a data line is the next telegram's header: this one
                    // was cut off. Inside a line '/' is ordinary (text messages may hold it).
                    let line_start = self.len > 0 && self.buf.get(self.len - 1) == Some(&b'\n');
                    if b == b'/' && self.state == State::Body && line_start {
                        let received = self.len;
                        self.state = State::Idle;
                        return (i, self.fail(FrameError::Truncated { received }));
                    }
                    if let Some(at) = self.slash {
                        // Checking whether a '/' inside a line begins `/XXX5`, i.e. a new telegram
                        // after one cut off mid-line.
                        let k = self.len - at;
                        let fits = match k {
                            1..=3 => b.is_ascii_alphabetic(),
                            _ => b.is_ascii_digit(),
                        };
                        if !fits || b == b'\n' || b == b'!' {
                            self.slash = None;
                        } else {
                            if !self.push(b) {
                                return (i, self.oversize());
                            }
                            i += 1;
                            if k == 4 {
                                let received = at;
                                let mut head = [0u8; 5];
                                if let Some(src) = self.buf.get(at..at + 5) {
                                    head.copy_from_slice(src);
                                }
                                let offset = self.start_offset.saturating_add(at as u64);
                                self.start();
                                self.start_offset = offset;
                                for h in head {
                                    self.push(h);
                                }
                                self.stats.truncated = self.stats.truncated.saturating_add(1);
                                // The event is about the telegram that was cut off.
                                self.start_offset = offset;
                                return (i, Pending::Error(FrameError::Truncated { received }));
                            }
                            continue;
                        }
                    }
                    // Fast path: copy a run of ordinary bytes at once.
                    if self.state == State::Body {
                        // Up to the next `!` or `/`, checking the lines on the way.
                        let run = self.body_run(input.get(i..).unwrap_or(&[]));
                        if run > 0 {
                            i += run;
                            continue;
                        }
                        if b != b'/' && b != b'!' {
                            // The buffer is full.
                            return (i, self.oversize());
                        }
                    } else {
                        let rest = input.get(i..).unwrap_or(&[]);
                        let run = crate::scan::find(rest, b'\n').unwrap_or(rest.len());
                        if run > 0 {
                            let room = N - self.len;
                            if run > room {
                                return (i + room, self.oversize());
                            }
                            if let (Some(dst), Some(src)) =
                                (self.buf.get_mut(self.len..self.len + run), rest.get(..run))
                            {
                                dst.copy_from_slice(src);
                            }
                            self.len += run;
                            i += run;
                            continue;
                        }
                    }
                    if b == b'/' {
                        // Inside a line (a '/' at a line start was handled above).
                        self.slash = Some(self.len);
                        if !self.push(b) {
                            return (i, self.oversize());
                        }
                        i += 1;
                        continue;
                    }
                    if b == b'\n' {
                        // End of the header line (the body's line ends do not stop the scan).
                        self.end_line();
                        if !self.push(b) {
                            return (i, self.oversize());
                        }
                        self.line_start = self.len;
                        self.state = State::Body;
                        self.header_nl = self.len - 1;
                        i += 1;
                        continue;
                    }
                    // '!' in the body: it also ends the line it is on.
                    self.check_body_line(self.len);
                    self.bang = self.len;
                    if !self.push(b) {
                        return (i, self.oversize());
                    }
                    self.state = State::Crc;
                    i += 1;
                }
                State::Crc => match b {
                    // Four hex digits at once: what the byte-by-byte arm below does for them.
                    _ if self.crc_digits == 0 && !self.crc_bad && self.crc4(input.get(i..)) => {
                        return (i + 4, Pending::Complete);
                    }
                    b'\r' => i += 1,
                    b'\n' => return (i + 1, Pending::Complete),
                    b'/' => return (i, Pending::Complete),
                    _ => {
                        match crate::value::hex_digit(b) {
                            Some(d) if !self.crc_bad => {
                                self.crc_value = (self.crc_value << 4) | u16::from(d);
                                self.crc_digits += 1;
                                if !self.push(b) {
                                    return (i, self.oversize());
                                }
                                if self.crc_digits == 4 {
                                    return (i + 1, Pending::Complete);
                                }
                            }
                            _ => self.crc_bad = true,
                        }
                        i += 1;
                    }
                },
            }
        }
        (i, Pending::None)
    }

    /// When `rest` starts with four hex digits and the buffer has room for them: stores them
    /// as the CRC field (value and digits) and returns true; else changes nothing.
    #[inline]
    fn crc4(&mut self, rest: Option<&[u8]>) -> bool {
        let Some(&[a, b, c, d]) = rest.and_then(|r| r.get(..4)) else { return false };
        let hex = crate::value::hex_digit;
        let (Some(x0), Some(x1), Some(x2), Some(x3)) = (hex(a), hex(b), hex(c), hex(d)) else { return false };
        let Some(dst) = self.buf.get_mut(self.len..self.len + 4) else { return false };
        dst.copy_from_slice(&[a, b, c, d]);
        self.len += 4;
        self.crc_value = u16::from(x0) << 12 | u16::from(x1) << 8 | u16::from(x2) << 4 | u16::from(x3);
        self.crc_digits = 4;
        true
    }

    fn oversize(&mut self) -> Pending {
        self.state = State::Discard;
        self.len = 0;
        self.fail(FrameError::Oversize { limit: N })
    }

    fn fail(&mut self, e: FrameError) -> Pending {
        let _ = self.error(e);
        Pending::Error(e)
    }

    /// Signals the end of input: a telegram in progress is reported as truncated, except one whose
    /// CRC field is complete but had no line end yet (3-digit or absent CRC), which is delivered.
    pub fn finish(&mut self) -> Option<Result<Frame<'_>, FrameError>> {
        match self.state {
            State::Crc => self.complete(),
            State::Header | State::Body => {
                let received = self.len;
                self.state = State::Idle;
                self.error(FrameError::Truncated { received })
            }
            State::Idle | State::Discard => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Event = (usize, Option<Result<(std::vec::Vec<u8>, Option<u16>, usize, usize), FrameError>>);

    /// Feeds `bytes` cut at `cuts` (then the rest) through `feed`, each piece until it is used up.
    fn drive(bytes: &[u8], cuts: &[usize], mut feed: impl FnMut(&[u8]) -> Event) -> std::vec::Vec<Event> {
        let mut out = std::vec::Vec::new();
        let mut rest = bytes;
        let mut k = 0;
        while !rest.is_empty() {
            let chunk = cuts.get(k).map_or(rest.len(), |&c| c.min(rest.len()));
            k += 1;
            let mut piece = &rest[..chunk];
            rest = &rest[chunk..];
            while !piece.is_empty() {
                let ev = feed(piece);
                piece = &piece[ev.0..];
                out.push(ev);
            }
        }
        out
    }

    fn run_new(bytes: &[u8], cuts: &[usize]) -> (std::vec::Vec<Event>, FramerStats, Option<Result<std::vec::Vec<u8>, FrameError>>) {
        let mut f = Framer::<300>::new();
        let out = drive(bytes, cuts, |piece| {
            let (used, ev) = f.feed(piece);
            (used, ev.map(|e| e.map(|fr| (fr.bytes.to_vec(), fr.crc, fr.header_nl, fr.bang))))
        });
        let end = f.finish().map(|e| e.map(|fr| fr.bytes.to_vec()));
        (out, f.stats(), end)
    }

    fn run_old(bytes: &[u8], cuts: &[usize]) -> (std::vec::Vec<Event>, FramerStats, Option<Result<std::vec::Vec<u8>, FrameError>>) {
        let mut f = reference::Framer::<300>::new();
        let out = drive(bytes, cuts, |piece| {
            let (used, ev) = f.feed(piece);
            (used, ev.map(|e| e.map(|fr| (fr.bytes.to_vec(), fr.crc, fr.header_nl, fr.bang))))
        });
        let end = f.finish().map(|e| e.map(|fr| fr.bytes.to_vec()));
        (out, f.stats(), end)
    }

    /// Two telegrams with correct CRCs (CRLF and LF lines, a continuation line, a `/` in a
    /// value, a CRC-less end) after some noise.
    fn base() -> std::vec::Vec<u8> {
        let mut t = b"xx".to_vec();
        for body in [
            &b"/ISK5\\2M550E-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:96.13.0(ab/cd)\r\n1-0:1.8.1(000576.239*kWh)\r\n(12)\n0-0:96.1.1(4530303433303037303532383730333138)\r\n!"[..],
            &b"/KFM5 x\n\n1-0:2.7.0(00.000*kW)\n!"[..],
        ] {
            t.extend_from_slice(body);
            t.extend_from_slice(std::format!("{:04X}\r\n", crate::crc::crc16_arc(body)).as_bytes());
        }
        t.extend_from_slice(b"/AB5x\r\n\r\n1-0:1.8.1(1*kWh)\r\n!\r\n");
        t
    }

    /// Bytes the framer treats specially, and some it does not.
    const ALPHABET: &[u8] = b"/!\r\n()0123456789ABCKFMx:.-* ";

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// The one-pass framer gives the same events (consumed counts, frames, errors with their
        /// line numbers) and counters as the framer that checked lines in a second pass, on a
        /// two-telegram stream with random edits fed in random pieces (a 300-byte buffer, so
        /// oversize happens too).
        #[test]
        fn one_pass_framer_agrees_with_the_two_pass_one(
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::sample::select(ALPHABET), 0u8..3), 0..8),
            cuts in proptest::collection::vec(1usize..80, 0..12),
            repeat in 1usize..4,
        ) {
            let mut t = base().repeat(repeat);
            for (at, b, op) in edits {
                let at = at % (t.len() + 1);
                match op {
                    0 if at < t.len() => t[at] = b,
                    1 => t.insert(at, b),
                    _ if at < t.len() => { t.remove(at); }
                    _ => {}
                }
            }
            proptest::prop_assert_eq!(run_new(&t, &cuts), run_old(&t, &cuts), "{:?}", crate::fmt_bytes(&t));
        }
    }

    #[test]
    fn the_unedited_stream_frames_both_telegrams() {
        let (events, stats, end) = run_new(&base(), &[]);
        assert_eq!((stats.telegrams, stats.without_crc, stats.malformed, stats.crc_mismatch), (3, 1, 0, 0), "{events:?}");
        assert_eq!(end, None);
    }
}
