//! The framer as it was before the one-pass line checks (commit 989bc57), kept for tests only:
//! the differential test in `framer::tests` feeds both the same bytes and compares the events.
#![allow(dead_code, missing_docs)]

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

use super::{FrameError, FramerStats, MalformedKind};

/// A whole telegram as received, from `/` through the CRC digits (no trailing CR LF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The telegram's bytes.
    pub bytes: &'a [u8],
    /// The verified CRC, or `None` for a telegram without one.
    pub crc: Option<u16>,
    pub(crate) header_nl: usize,
    pub(crate) bang: usize,
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
        self.check_lines();
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

    /// Checks every data line between the header and `!` (a line cut off by `!` included) and
    /// sets `line_no` to the number of the `!` line.
    fn check_lines(&mut self) {
        let body = self.buf.get(self.header_nl + 1..self.bang).unwrap_or(&[]);
        let mut rest = body;
        let mut line_no: u16 = 2;
        loop {
            let (line, next) = match crate::scan::find(rest, b'\n') {
                Some(n) => (rest.get(..n).unwrap_or(&[]), Some(rest.get(n + 1..).unwrap_or(&[]))),
                None => (rest, None),
            };
            let line = match line.split_last() {
                Some((b'\r', l)) => l,
                _ => line,
            };
            if let (Some(&first), Some(&last)) = (line.first(), line.last()) {
                if !(first.is_ascii_digit() || first == b'(') || last != b')' {
                    if self.bad_line.is_none() {
                        self.bad_line = Some((line_no, MalformedKind::Line));
                    }
                }
            }
            match next {
                Some(n) => {
                    rest = n;
                    line_no = line_no.saturating_add(1);
                }
                None => break,
            }
        }
        self.line_no = line_no;
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
        } else if let (Some(&first), Some(&last)) = (line.first(), line.last()) {
            if !(first.is_ascii_digit() || first == b'(') || last != b')' {
                self.note_bad(MalformedKind::Line);
            }
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
                    let rest = input.get(i..).unwrap_or(&[]);
                    let body = self.state == State::Body;
                    // Lines are checked in one pass at the end (`check_lines`), so the body is
                    // copied in runs up to the next `!` or `/`.
                    let run = if body {
                        crate::scan::find_any(rest, [b'!', b'/'])
                    } else {
                        crate::scan::find(rest, b'\n')
                    }
                    .unwrap_or(rest.len());
                    if run > 0 {
                        let room = N - self.len;
                        if run > room {
                            return (i + room, self.oversize());
                        }
                        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..self.len + run), rest.get(..run)) {
                            dst.copy_from_slice(src);
                        }
                        self.len += run;
                        i += run;
                        continue;
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
                    // '!' in the body.
                    self.bang = self.len;
                    if !self.push(b) {
                        return (i, self.oversize());
                    }
                    self.state = State::Crc;
                    i += 1;
                }
                State::Crc => match b {
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
