//! Console lines: `t=<uptime ms> ev=<event> key=value ...` (logfmt). Values with spaces, quotes
//! or `=` are double-quoted. Secrets are never passed in.

use core::fmt::{self, Write};

use heapless::String;

/// Longest console line; longer lines are cut and end in `…`.
pub const LINE_MAX: usize = 320;

/// One console line being built.
#[derive(Debug)]
pub struct Line {
    buf: String<LINE_MAX>,
    cut: bool,
}

impl Line {
    /// Starts `t=<ms> ev=<event>`.
    pub fn new(t_ms: u64, event: &str) -> Self {
        let mut l = Line { buf: String::new(), cut: false };
        let _ = write!(l.buf, "t={t_ms} ev={event}");
        l
    }

    /// Appends ` key=value`, quoting the value when it needs it.
    pub fn kv(mut self, key: &str, value: impl fmt::Display) -> Self {
        let mut tmp: String<128> = String::new();
        let fits = write!(tmp, "{value}").is_ok();
        let needs_quotes = tmp.is_empty() || tmp.bytes().any(|b| b == b' ' || b == b'"' || b == b'=' || b < 0x20);
        let ok = if needs_quotes {
            write!(self.buf, " {key}=\"").is_ok()
                && tmp.chars().all(|c| {
                    match c {
                        '"' => self.buf.push_str("\\\"").is_ok(),
                        '\\' => self.buf.push_str("\\\\").is_ok(),
                        c if (c as u32) < 0x20 => self.buf.push(' ').is_ok(),
                        c => self.buf.push(c).is_ok(),
                    }
                })
                && self.buf.push('"').is_ok()
        } else {
            write!(self.buf, " {key}={tmp}").is_ok()
        };
        if !ok || !fits {
            self.cut = true;
        }
        self
    }

    /// Appends ` key=value` only when `value` is `Some`.
    pub fn opt(self, key: &str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(v) => self.kv(key, v),
            None => self,
        }
    }

    /// The finished line.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// True if something did not fit.
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}
