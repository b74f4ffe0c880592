//! Formatting into fixed buffers: a `core::fmt::Write` cursor over a byte slice, fixed-point
//! numbers without floats, and JSON string escaping.

use core::fmt::{self, Write};

/// Writes into a borrowed byte slice. Writing past the end fails (`fmt::Error`) and sets
/// [`Cursor::overflowed`]; nothing is written out of bounds.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Cursor { buf, len: 0, overflow: false }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True once a write did not fit.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }
    /// The written bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
    /// Appends raw bytes.
    pub fn put(&mut self, bytes: &[u8]) -> fmt::Result {
        let end = self.len.checked_add(bytes.len()).ok_or(fmt::Error)?;
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
                Ok(())
            }
            None => {
                self.overflow = true;
                Err(fmt::Error)
            }
        }
    }
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.put(s.as_bytes())
    }
}

/// A fixed-point number: `value / 10^decimals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// The scaled integer.
    pub value: i64,
    /// Number of decimals (0..=6).
    pub decimals: u8,
}

impl Fixed {
    /// `value / 10^decimals`.
    pub const fn new(value: i64, decimals: u8) -> Self {
        Fixed { value, decimals }
    }
}

impl fmt::Display for Fixed {
    /// Shortest exact decimal form: trailing zeros of the fraction are dropped (`230.0` → `230`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = u32::from(self.decimals.min(9));
        let scale = 10u64.pow(d);
        let neg = self.value < 0;
        let abs = self.value.unsigned_abs();
        let int = abs / scale;
        let mut frac = abs % scale;
        if neg && (int != 0 || frac != 0) {
            f.write_char('-')?;
        }
        write!(f, "{int}")?;
        if frac != 0 {
            let mut width = d;
            while frac.is_multiple_of(10) {
                frac /= 10;
                width -= 1;
            }
            write!(f, ".{:0width$}", frac, width = width as usize)?;
        }
        Ok(())
    }
}

/// Writes `s` as a JSON string literal (with quotes), escaping what JSON requires.
pub fn json_str(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(w, "\\u{:04x}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}
