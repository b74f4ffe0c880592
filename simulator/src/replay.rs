//! Replay of recorded telegrams (one telegram per file, or streams of several) with their
//! original timing: the gap between two telegrams is the difference of their `0-0:1.0.0`
//! timestamps (S/W aware); without usable timestamps the given interval is used. Bytes are
//! replayed exactly as recorded, including bad CRCs and garbage between telegrams.

use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::faults::FaultCounts;
use crate::meter::{Sent, Telegram};
use crate::profile::LineSettings;
use crate::run::TelegramSource;

/// A replay source.
#[derive(Debug, Clone)]
pub struct Replay {
    items: Vec<(Vec<u8>, Option<DateTime<Utc>>)>,
    pos: usize,
    next_due: DateTime<Utc>,
    last_ts: Option<DateTime<Utc>>,
    interval_s: u32,
    line: LineSettings,
    repeat: bool,
    index: u64,
}

/// Splits a recording into telegrams: each starts at `/` and ends after the line holding `!`
/// (or before the next `/` when a telegram has no `!`). Bytes before the first `/` and between
/// telegrams are kept with the following telegram.
pub fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = match bytes.iter().position(|&b| b == b'/') {
        Some(p) => p,
        None => return out,
    };
    while i < bytes.len() {
        let rest = &bytes[i + 1..];
        let bang = rest.iter().position(|&b| b == b'!');
        let next_slash = rest.iter().position(|&b| b == b'/');
        let end = match (bang, next_slash) {
            (Some(b), s) if s.is_none_or(|s| b < s) => {
                let after = i + 1 + b;
                match bytes[after..].iter().position(|&c| c == b'\n') {
                    Some(nl) => after + nl + 1,
                    None => bytes.len(),
                }
            }
            (_, Some(s)) => i + 1 + s,
            (_, None) => bytes.len(),
        };
        out.push(bytes[start..end].to_vec());
        start = end;
        i = match bytes[end..].iter().position(|&b| b == b'/') {
            Some(p) => end + p,
            None => break,
        };
    }
    out
}

/// The UTC time of a telegram's `0-0:1.0.0(YYMMDDhhmmssX)`, if present and valid.
pub fn telegram_time(t: &[u8]) -> Option<DateTime<Utc>> {
    let key = b"0-0:1.0.0(";
    let p = t.windows(key.len()).position(|w| w == key)? + key.len();
    let d = t.get(p..p + 13)?;
    let num = |i: usize| -> Option<u32> { std::str::from_utf8(d.get(i..i + 2)?).ok()?.parse().ok() };
    let date = NaiveDate::from_ymd_opt(2000 + num(0)? as i32, num(2)?, num(4)?)?;
    let local = date.and_hms_opt(num(6)?, num(8)?, num(10)?)?;
    let offset = match d[12] {
        b'S' | b's' => 7200,
        _ => 3600,
    };
    Some(Utc.from_utc_datetime(&(local - Duration::seconds(offset))))
}

impl Replay {
    /// Reads the files (in order).
    pub fn from_files(paths: &[impl AsRef<Path>], line: LineSettings, interval_s: u32, repeat: bool) -> std::io::Result<Replay> {
        let mut items = Vec::new();
        for p in paths {
            let bytes = std::fs::read(p.as_ref()).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.as_ref().display())))?;
            for t in split(&bytes) {
                let ts = telegram_time(&t);
                items.push((t, ts));
            }
        }
        if items.is_empty() {
            return Err(std::io::Error::other("no telegram (no `/`) in the replay input"));
        }
        let first = items.iter().find_map(|(_, t)| *t).unwrap_or_else(Utc::now);
        Ok(Replay { items, pos: 0, next_due: first, last_ts: None, interval_s: interval_s.max(1), line, repeat, index: 0 })
    }

    /// Number of telegrams in the recording.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the recording holds no telegram.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl TelegramSource for Replay {
    fn next(&mut self) -> Option<Telegram> {
        if self.pos >= self.items.len() {
            if !self.repeat {
                return None;
            }
            self.pos = 0;
            self.last_ts = None;
        }
        let (bytes, ts) = self.items[self.pos].clone();
        self.pos += 1;
        let gap = match (self.last_ts, ts) {
            (Some(a), Some(b)) if b > a && b - a < Duration::hours(1) => b - a,
            _ => Duration::seconds(self.interval_s as i64),
        };
        if self.index > 0 {
            self.next_due += gap;
        }
        if ts.is_some() {
            self.last_ts = ts;
        }
        let index = self.index;
        self.index += 1;
        let sent = Sent { lines: Vec::new(), ..Sent::default() };
        Some(Telegram {
            index,
            due: self.next_due,
            intact: dsmr::Telegram::parse(&bytes).is_ok(),
            bytes,
            chunks: Vec::new(),
            sent,
            faults: Vec::new(),
            outage_before_s: 0,
        })
    }
    fn line(&self) -> LineSettings {
        self.line
    }
    fn interval_s(&self) -> u32 {
        self.interval_s
    }
    fn faults(&self) -> FaultCounts {
        FaultCounts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_split_into_telegrams_and_keep_their_timing() {
        let a = b"junk/A5\r\n\r\n0-0:1.0.0(170110204056W)\r\n!0000\r\n";
        let b = b"/A5\r\n\r\n0-0:1.0.0(170110204058W)\r\n!0000\r\n/B5\r\n\r\n1-0:1.8.1(0";
        let mut all = a.to_vec();
        all.extend_from_slice(b);
        let parts = split(&all);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].starts_with(b"junk/A5"));
        assert_eq!(parts[2], b"/B5\r\n\r\n1-0:1.8.1(0");
        let t0 = telegram_time(&parts[0]).expect("ts");
        assert_eq!(t0.to_rfc3339(), "2017-01-10T19:40:56+00:00");
        assert_eq!(telegram_time(&parts[1]).map(|t| (t - t0).num_seconds()), Some(2));
    }
}
