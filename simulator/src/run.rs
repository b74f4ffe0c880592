//! Pacing: telegrams onto any `tokio::io::AsyncWrite`, in real time, at a speed factor, or in
//! virtual time, with the data-request line honoured.
//!
//! Real time (`Speed::Factor(1.0)`): each telegram's first byte goes out at its interval boundary
//! (meter time mapped to wall time), and bytes are paced at the profile's baud, so a 1 KB telegram
//! takes its ~90 ms on the wire at 115200 8N1. `Speed::Factor(k)` runs meter time and the line k
//! times faster. `Speed::Max` (virtual time) writes as fast as the sink accepts while the meter
//! clock advances one interval per telegram.
//!
//! Data request: a telegram starts only while the request is asserted; a telegram in progress is
//! always finished. With the continuous-stream quirk (Iskra AM550) the current telegram is repeated
//! back to back while the request stays asserted, until the next interval's telegram is due.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::faults::FaultCounts;
use crate::meter::{Meter, Telegram};
use crate::profile::LineSettings;

/// How fast meter time runs relative to wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Meter time runs this many times faster than wall time (1.0 = real time).
    Factor(f64),
    /// Virtual time: as fast as the sink accepts, one interval per telegram.
    Max,
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Speed, String> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        let s = s.strip_suffix('x').unwrap_or(s);
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f.is_finite() => Ok(Speed::Factor(f)),
            _ => Err(format!("`{s}` is not a positive factor or `max`")),
        }
    }
}

/// The data-request line as seen by the meter. Cloning gives another handle to the same line.
#[derive(Debug, Clone)]
pub struct DataRequest {
    tx: Arc<watch::Sender<bool>>,
}

impl DataRequest {
    /// A line in the given state.
    pub fn new(asserted: bool) -> DataRequest {
        DataRequest { tx: Arc::new(watch::channel(asserted).0) }
    }
    /// Asserts (true) or releases (false) the request.
    pub fn set(&self, asserted: bool) {
        self.tx.send_replace(asserted);
    }
    /// Current state.
    pub fn is_asserted(&self) -> bool {
        *self.tx.borrow()
    }
    /// Waits until asserted, at most `timeout`; returns the state at the end.
    pub async fn wait_asserted(&self, timeout: Duration) -> bool {
        let mut rx = self.tx.subscribe();
        let r = tokio::time::timeout(timeout, rx.wait_for(|v| *v)).await;
        matches!(r, Ok(Ok(_)))
    }
}

impl Default for DataRequest {
    fn default() -> Self {
        DataRequest::new(true)
    }
}

/// Options for [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time scale.
    pub speed: Speed,
    /// Stop after this many telegram slots.
    pub count: Option<u64>,
    /// Stop after this much meter time.
    pub duration: Option<chrono::Duration>,
    /// Pace bytes at the baud (real time and factors); off writes each telegram at once.
    pub pace_bytes: bool,
    /// Byte pacing granularity.
    pub pace_tick: Duration,
    /// Busy-wait the last 2 ms before each telegram for sub-millisecond start accuracy (costs CPU;
    /// for single meters).
    pub precise: bool,
    /// The AM550 continuous-stream quirk.
    pub continuous_stream: bool,
    /// Print a progress line to stderr this often (wall time); `None` for none.
    pub progress: Option<Duration>,
    /// Set to stop the run after the telegram in progress.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Wall-clock offset of this meter's schedule (fleets spread meters over the interval, as real
    /// meters' clocks are not synchronised to the millisecond).
    pub phase: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            speed: Speed::Factor(1.0),
            count: None,
            duration: None,
            pace_bytes: true,
            pace_tick: Duration::from_millis(2),
            precise: false,
            continuous_stream: false,
            progress: None,
            stop: None,
            phase: Duration::ZERO,
        }
    }
}

/// Distribution of how late telegrams started against their schedule.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Lateness {
    /// Telegrams measured.
    pub count: u64,
    /// Median, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Maximum, microseconds.
    pub max_us: u64,
}

impl Lateness {
    /// From raw samples in microseconds.
    pub fn from_samples(mut v: Vec<u64>) -> Lateness {
        if v.is_empty() {
            return Lateness::default();
        }
        v.sort_unstable();
        let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Lateness { count: v.len() as u64, p50_us: pick(0.5), p99_us: pick(0.99), max_us: v[v.len() - 1] }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RunSummary {
    /// Telegram slots passed (sent, silent, or skipped for data request).
    pub slots: u64,
    /// Telegrams written (including faulty ones).
    pub telegrams: u64,
    /// Extra back-to-back repeats from the continuous-stream quirk.
    pub repeats: u64,
    /// Slots not sent because data request was released.
    pub dr_skipped: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Faults injected, per kind.
    pub faults: FaultCounts,
    /// Start lateness against the schedule (real time and factors only).
    pub lateness: Lateness,
    /// Meter time covered.
    pub meter_start: Option<DateTime<Utc>>,
    /// Meter time of the last slot.
    pub meter_end: Option<DateTime<Utc>>,
    /// Wall time taken, seconds.
    pub wall_s: f64,
    /// Raw start-lateness samples in microseconds (for aggregating fleets).
    #[serde(skip)]
    pub lateness_samples_us: Vec<u64>,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "telegrams={} slots={} bytes={} dr_skipped={} repeats={} faults: {}",
            self.telegrams, self.slots, self.bytes, self.dr_skipped, self.repeats, self.faults
        )?;
        if self.lateness.count > 0 {
            write!(
                f,
                " | start lateness p50={}us p99={}us max={}us",
                self.lateness.p50_us, self.lateness.p99_us, self.lateness.max_us
            )?;
        }
        if let (Some(a), Some(b)) = (self.meter_start, self.meter_end) {
            write!(f, " | meter {} .. {}", a.to_rfc3339(), b.to_rfc3339())?;
        }
        write!(f, " | wall {:.3}s", self.wall_s)
    }
}

/// Anything that yields telegrams in time order: a [`Meter`] or a replay.
pub trait TelegramSource {
    /// The next telegram slot, or `None` when the source is exhausted.
    fn next(&mut self) -> Option<Telegram>;
    /// Line settings for byte pacing.
    fn line(&self) -> LineSettings;
    /// Nominal seconds between telegrams.
    fn interval_s(&self) -> u32 {
        1
    }
    /// Faults injected so far.
    fn faults(&self) -> FaultCounts {
        FaultCounts::default()
    }
    /// Wall time the source held back in [`next`](Self::next) since the last call (a harness
    /// waiting for its device). The schedule moves later by as much, so a hold pauses meter time
    /// instead of being made up by a burst of telegrams.
    fn take_hold(&mut self) -> Duration {
        Duration::ZERO
    }
}

impl TelegramSource for Meter {
    fn next(&mut self) -> Option<Telegram> {
        Some(self.next_telegram())
    }
    fn line(&self) -> LineSettings {
        self.profile().line
    }
    fn interval_s(&self) -> u32 {
        self.profile().interval_s
    }
    fn faults(&self) -> FaultCounts {
        self.fault_counts().clone()
    }
}

/// Sleeps until `at`. With `precise` on a multi-threaded runtime, the last stretch is an OS
/// high-resolution sleep plus a short spin on this worker thread (tokio's timer has 1 ms
/// granularity); elsewhere it falls back to tokio's timer.
async fn wait_until(at: Instant, precise: bool) {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if precise && multi {
        let early = at.checked_sub(Duration::from_millis(3)).unwrap_or(at);
        if early > Instant::now() {
            tokio::time::sleep_until(early.into()).await;
        }
        tokio::task::block_in_place(|| {
            let spin = Duration::from_micros(150);
            let now = Instant::now();
            if at > now + spin {
                std::thread::sleep(at - now - spin);
            }
            while Instant::now() < at {
                std::hint::spin_loop();
            }
        });
    } else if at > Instant::now() {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Writes `bytes` starting at `start`, paced at `bytes_per_s` in ticks; returns when the last byte
/// has been handed to the sink.
async fn paced_write<W: AsyncWrite + Unpin + ?Sized>(
    sink: &mut W,
    bytes: &[u8],
    start: Instant,
    bytes_per_s: Option<f64>,
    tick: Duration,
    precise: bool,
) -> io::Result<Instant> {
    let Some(rate) = bytes_per_s else {
        // Unpaced (virtual time or --no-pace): no flush per telegram, so buffered sinks batch.
        sink.write_all(bytes).await?;
        return Ok(start);
    };
    let per_tick = ((rate * tick.as_secs_f64()).ceil() as usize).max(1);
    let mut off = 0;
    while off < bytes.len() {
        let due = start + Duration::from_secs_f64(off as f64 / rate);
        wait_until(due, precise && off == 0).await;
        let end = (off + per_tick).min(bytes.len());
        sink.write_all(&bytes[off..end]).await?;
        sink.flush().await?;
        off = end;
    }
    Ok(start + Duration::from_secs_f64(bytes.len() as f64 / rate))
}

/// Runs `source` into `sink` until the count or duration is reached, the source ends, or the sink
/// fails. `on_telegram` sees every telegram slot (including silent and skipped ones) after it was
/// written; `skipped` tells whether data request kept it off the line.
pub async fn run<S, W, F>(
    source: &mut S,
    sink: &mut W,
    opts: &RunOptions,
    dr: &DataRequest,
    mut on_telegram: F,
) -> io::Result<RunSummary>
where
    S: TelegramSource + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
    F: FnMut(&Telegram, bool),
{
    let wall0 = Instant::now();
    let mut summary = RunSummary::default();
    let mut late = Vec::new();
    let line = source.line();
    let mut anchor: Option<(DateTime<Utc>, Instant)> = None;
    let mut last_progress = Instant::now();
    let mut progress_mark = 0u64;

    let stopped = || opts.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    while opts.count.is_none_or(|c| summary.slots < c) && !stopped() {
        let Some(tg) = source.next() else { break };
        let held = source.take_hold();
        if let Some((_, w0)) = anchor.as_mut() {
            *w0 += held;
        }
        let meter_start = *summary.meter_start.get_or_insert(tg.due);
        if opts.duration.is_some_and(|d| tg.due - meter_start >= d) {
            break;
        }
        summary.slots += 1;
        summary.meter_end = Some(tg.due);

        let (factor, wall_due) = match opts.speed {
            Speed::Max => (None, None),
            Speed::Factor(k) => {
                let (m0, w0) = *anchor.get_or_insert_with(|| {
                    // Real time: anchor meter time to wall time so boundaries line up with the
                    // system clock when the meter clock is "now"; otherwise start immediately.
                    let ahead = (tg.due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    let ahead = if ahead < Duration::from_secs(5) { ahead } else { Duration::ZERO };
                    (tg.due, Instant::now() + ahead + opts.phase)
                });
                let offset = (tg.due - m0).to_std().unwrap_or(Duration::ZERO).as_secs_f64() / k;
                (Some(k), Some(w0 + Duration::from_secs_f64(offset)))
            }
        };
        if let Some(at) = wall_due {
            wait_until(at, opts.precise).await;
        }
        if stopped() {
            break;
        }
        if matches!(opts.speed, Speed::Max) && !dr.is_asserted() {
            // Virtual time does not run ahead while nobody listens.
            while !dr.wait_asserted(Duration::from_secs(1)).await {}
        }
        let skipped = !dr.is_asserted();
        if skipped {
            summary.dr_skipped += 1;
        } else if !tg.bytes.is_empty() {
            if let Some(at) = wall_due {
                late.push(Instant::now().saturating_duration_since(at).as_micros() as u64);
            }
            let rate = factor.filter(|_| opts.pace_bytes).map(|k| k / line.char_time_s());
            let start = wall_due.unwrap_or_else(Instant::now).max(Instant::now());
            write_telegram(sink, &tg, start, rate, opts, factor).await?;
            summary.telegrams += 1;
            summary.bytes += tg.bytes.len() as u64;

            if opts.continuous_stream
                && let (Some(k), Some(due)) = (factor, wall_due)
            {
                {
                    let next_due = due + Duration::from_secs_f64(source.interval_s() as f64 / k);
                    loop {
                        let wire = Duration::from_secs_f64(tg.bytes.len() as f64 * line.char_time_s() / k);
                        if !dr.is_asserted() || Instant::now() + wire > next_due {
                            break;
                        }
                        write_telegram(sink, &tg, Instant::now(), rate, opts, factor).await?;
                        summary.repeats += 1;
                        summary.bytes += tg.bytes.len() as u64;
                    }
                }
            }
        }
        on_telegram(&tg, skipped);

        if let Some(every) = opts.progress
            && last_progress.elapsed() >= every
        {
            {
                let n = summary.telegrams - progress_mark;
                eprintln!(
                    "p1-sim: {} telegrams ({:.1}/s), meter time {}, faults: {}",
                    summary.telegrams,
                    n as f64 / last_progress.elapsed().as_secs_f64(),
                    tg.due.to_rfc3339(),
                    source.faults()
                );
                last_progress = Instant::now();
                progress_mark = summary.telegrams;
            }
        }
    }
    sink.flush().await?;
    summary.faults = source.faults();
    summary.lateness = Lateness::from_samples(late.clone());
    summary.lateness_samples_us = late;
    summary.wall_s = wall0.elapsed().as_secs_f64();
    Ok(summary)
}

async fn write_telegram<W: AsyncWrite + Unpin + ?Sized>(
    sink: &mut W,
    tg: &Telegram,
    start: Instant,
    rate: Option<f64>,
    opts: &RunOptions,
    factor: Option<f64>,
) -> io::Result<()> {
    if tg.chunks.is_empty() {
        paced_write(sink, &tg.bytes, start, rate, opts.pace_tick, opts.precise).await?;
        return Ok(());
    }
    let mut off = 0;
    let mut at = start;
    for c in &tg.chunks {
        let end = c.end.min(tg.bytes.len());
        let done = paced_write(sink, &tg.bytes[off..end], at, rate, opts.pace_tick, opts.precise && off == 0).await?;
        sink.flush().await?;
        off = end;
        let gap = Duration::from_millis(c.gap_ms).div_f64(factor.unwrap_or(1.0).max(1e-9));
        match factor {
            Some(_) => at = done.max(Instant::now()) + gap,
            None => {
                // Virtual time still keeps gaps: a reader must see separate reads.
                tokio::time::sleep(gap.min(Duration::from_millis(5))).await;
                at = Instant::now();
            }
        }
    }
    Ok(())
}
