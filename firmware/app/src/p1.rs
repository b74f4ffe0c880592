//! The P1 reader's bookkeeping: framing with `dsmr`, counters, and the conversion of a decoded
//! telegram into the gateway's compact [`Reading`].

use dsmr::{Dimension, Dst, FrameError, Framer, Quantity};

use crate::reading::{Reading, Timestamp};

/// The framer's buffer: Belgian and Lithuanian telegrams exceed 2 KiB.
pub const TELEGRAM_MAX: usize = 4096;

/// Counters of the serial line's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct P1Counters {
    /// Good telegrams (CRC valid, or absent on DSMR 2.2/3).
    pub telegrams_ok: u32,
    /// Telegrams whose CRC did not match.
    pub crc_errors: u32,
    /// Telegrams dropped for framing: truncated, oversize or malformed.
    pub framing_errors: u32,
    /// Bytes that were not part of any telegram (noise, garbage, line-level corruption).
    pub dropped_bytes: u32,
    /// UART read errors (overrun, framing, break) and end-of-stream events.
    pub read_errors: u32,
    /// Objects in good telegrams the decoder flagged (bad value, unit mismatch, ...).
    pub decode_issues: u32,
}

/// What one fed chunk produced.
#[derive(Debug)]
pub enum P1Event<'a> {
    /// A good telegram (bytes from `/` through the CRC digits).
    Telegram(dsmr::Frame<'a>),
    /// A telegram was dropped.
    Error(FrameError),
}

/// The framer plus its counters.
#[derive(Debug)]
pub struct P1Reader {
    framer: Framer<TELEGRAM_MAX>,
    abandoned: u32,
    /// UART read errors and end-of-stream events (counted by the caller).
    pub read_errors: u32,
    /// Decoder issues in good telegrams (counted by the caller).
    pub decode_issues: u32,
}

impl Default for P1Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl P1Reader {
    /// A reader waiting for the first `/`.
    pub const fn new() -> Self {
        P1Reader { framer: Framer::new(), abandoned: 0, read_errors: 0, decode_issues: 0 }
    }

    /// Feeds received bytes; returns how many were consumed and the event they completed, if
    /// any. Call again with the rest until all bytes are consumed.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<P1Event<'_>>) {
        let (n, ev) = self.framer.feed(input);
        let ev = ev.map(|r| match r {
            Ok(frame) => P1Event::Telegram(frame),
            Err(e) => P1Event::Error(e),
        });
        (n, ev)
    }

    /// The counters so far.
    pub fn counters(&self) -> P1Counters {
        let s = self.framer.stats();
        P1Counters {
            telegrams_ok: s.telegrams,
            crc_errors: s.crc_mismatch,
            framing_errors: s.truncated.wrapping_add(s.oversize).wrapping_add(s.malformed).wrapping_add(self.abandoned),
            dropped_bytes: s.garbage_bytes,
            read_errors: self.read_errors,
            decode_issues: self.decode_issues,
        }
    }

    /// Drops a telegram in progress (after a read error). Returns true if one was in progress
    /// (it is counted as a framing error).
    pub fn abandon(&mut self) -> bool {
        if self.framer.in_telegram() {
            self.framer.reset();
            self.abandoned = self.abandoned.wrapping_add(1);
            true
        } else {
            false
        }
    }
}

fn ts(t: Option<dsmr::Timestamp>) -> Option<Timestamp> {
    let t = t?;
    if !t.is_valid() {
        return None;
    }
    let dst = t.dst.map(|d| d == Dst::Summer);
    Some(Timestamp::from_dsmr(t.year, t.month, t.day, t.hour, t.minute, t.second, dst))
}

/// The value in the dimension's base unit with `decimals` decimals; `None` when absent, of
/// another dimension, or without a unit where the unit would be a guess (power, energy, volume).
fn base(q: Option<Quantity>, dim: Dimension, decimals: u8) -> Option<i64> {
    let q = q?;
    match q.unit {
        Some(u) if u.dimension() == dim => q.base().0.rescale(decimals),
        None if matches!(dim, Dimension::Voltage | Dimension::Current) => q.value.rescale(decimals),
        _ => None,
    }
}

fn w(q: Option<Quantity>) -> Option<i32> {
    base(q, Dimension::Power, 0).and_then(|v| i32::try_from(v).ok())
}
fn wh(q: Option<Quantity>) -> Option<u32> {
    base(q, Dimension::Energy, 0).and_then(|v| u32::try_from(v).ok())
}

fn at<T: Copy>(a: &[Option<T>], i: usize) -> Option<T> {
    a.get(i).copied().flatten()
}

/// Converts a decoded telegram. `seq` is the per-boot sequence number, `rx_ms` the clock time of
/// its last byte.
pub fn convert(seq: u32, rx_ms: u64, r: &dsmr::Reading) -> Reading {
    let gas = r.gas().and_then(|d| d.value);
    let mut out = Reading {
        seq,
        rx_ms,
        ts: ts(r.timestamp),
        tariff: r.tariff.and_then(|t| u8::try_from(t).ok()),
        power_import_w: w(r.power_import),
        power_export_w: w(r.power_export),
        gas_dm3: gas.and_then(|v| base(Some(v.value), Dimension::Volume, 3)).and_then(|v| u32::try_from(v).ok()),
        gas_ts: gas.and_then(|v| ts(v.timestamp)),
        ..Reading::default()
    };
    for i in 0..3 {
        if let Some(slot) = out.energy_import_wh.get_mut(i) {
            *slot = wh(at(&r.energy_import, i));
        }
        if let Some(slot) = out.energy_export_wh.get_mut(i) {
            *slot = wh(at(&r.energy_export, i));
        }
        if let Some(slot) = out.voltage_dv.get_mut(i) {
            *slot = base(at(&r.voltage, i), Dimension::Voltage, 1).and_then(|v| u16::try_from(v).ok());
        }
        if let Some(slot) = out.current_ma.get_mut(i) {
            *slot = base(at(&r.current, i), Dimension::Current, 3).and_then(|v| u32::try_from(v).ok());
        }
        if let Some(slot) = out.phase_import_w.get_mut(i) {
            *slot = w(at(&r.power_import_phase, i));
        }
        if let Some(slot) = out.phase_export_w.get_mut(i) {
            *slot = w(at(&r.power_export_phase, i));
        }
    }
    out
}
