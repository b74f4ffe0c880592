//! Seeded, scheduled fault injection, described in code ([`FaultPlan`]) or in a scenario TOML file.
//!
//! A scenario file lists rules; each fires on given telegram indexes (`at`), periodically
//! (`every`, `offset`) or at random (`probability`, drawn from the plan's seed), at most `limit`
//! times:
//!
//! ```toml
//! seed = 7                      # optional; default: the run's --seed
//! [[fault]]
//! kind = "corrupt_crc"
//! every = 10
//! [[fault]]
//! kind = "chunked"              # Landis+Gyr E360 style: the telegram in pieces with pauses
//! probability = 0.05
//! chunks = 4
//! gap_ms = 40
//! [[fault]]
//! kind = "clock_jump"
//! at = [30]
//! seconds = -3600
//! ```
//!
//! The same schedule and seed always give the same bytes. Every fault that fires is counted in
//! the run's summary under its kind.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::profile::LineSettings;
use crate::rng::Rng;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The CRC digits do not match the telegram.
    CorruptCrc,
    /// One bit flipped inside the telegram (CRC left as computed for the original).
    FlipBit,
    /// The telegram stops part-way (no `!` line); the next one follows at its normal time.
    Truncated,
    /// `bytes` bytes lost from inside the telegram.
    DroppedBytes,
    /// The telegram is written in `chunks` pieces with `gap_ms` pauses (Landis+Gyr E360).
    Chunked,
    /// `bytes` random bytes (never `/`) before the telegram.
    Garbage,
    /// A telegram padded past `bytes` bytes (default 6000) with a long text message; CRC valid.
    Oversize,
    /// The meter sends nothing for `seconds` (default 10 intervals); its clock runs on.
    Silence,
    /// The failure log written as the bare `1-0:99.97.0()` (Iskra AM550).
    EmptyFailureLog,
    /// This telegram carries a CRC-16/X25 instead of ARC (Holley meters).
    X25Crc,
    /// The meter's clock jumps by `seconds` (default +3600) from this telegram on.
    ClockJump,
    /// The meter's clock jumps to `seconds` (default 5 intervals) before the next DST change.
    DstChange,
    /// M-Bus channels 1 and 2 swap from this telegram on (a re-paired gas meter).
    MbusSwap,
    /// The telegram as a receiver at the profile's baud sees it when sent at `baud`.
    WrongBaud,
    /// A power failure of `seconds` (default 240) before this telegram: counters and log move,
    /// nothing is sent while the power is off.
    PowerFailure,
}

impl FaultKind {
    /// Every kind, in summary order.
    pub const ALL: [FaultKind; 15] = [
        FaultKind::CorruptCrc,
        FaultKind::FlipBit,
        FaultKind::Truncated,
        FaultKind::DroppedBytes,
        FaultKind::Chunked,
        FaultKind::Garbage,
        FaultKind::Oversize,
        FaultKind::Silence,
        FaultKind::EmptyFailureLog,
        FaultKind::X25Crc,
        FaultKind::ClockJump,
        FaultKind::DstChange,
        FaultKind::MbusSwap,
        FaultKind::WrongBaud,
        FaultKind::PowerFailure,
    ];

    /// The scenario-file name (`corrupt_crc`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::CorruptCrc => "corrupt_crc",
            FaultKind::FlipBit => "flip_bit",
            FaultKind::Truncated => "truncated",
            FaultKind::DroppedBytes => "dropped_bytes",
            FaultKind::Chunked => "chunked",
            FaultKind::Garbage => "garbage",
            FaultKind::Oversize => "oversize",
            FaultKind::Silence => "silence",
            FaultKind::EmptyFailureLog => "empty_failure_log",
            FaultKind::X25Crc => "x25_crc",
            FaultKind::ClockJump => "clock_jump",
            FaultKind::DstChange => "dst_change",
            FaultKind::MbusSwap => "mbus_swap",
            FaultKind::WrongBaud => "wrong_baud",
            FaultKind::PowerFailure => "power_failure",
        }
    }

    /// Whether a correct ARC-checking parser must reject the telegram (or not see it at all).
    pub fn breaks_telegram(self) -> bool {
        matches!(
            self,
            FaultKind::CorruptCrc
                | FaultKind::FlipBit
                | FaultKind::Truncated
                | FaultKind::DroppedBytes
                | FaultKind::Oversize
                | FaultKind::X25Crc
                | FaultKind::WrongBaud
                | FaultKind::Silence
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When a rule fires.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct When {
    /// Telegram indexes (0-based).
    pub at: Vec<u64>,
    /// Every N telegrams (0 = off), starting at `offset`.
    pub every: u64,
    /// First index for `every`.
    pub offset: u64,
    /// Chance per telegram.
    pub probability: f64,
    /// At most this many times (None: unlimited).
    pub limit: Option<u64>,
}

/// Parameters; each kind reads the ones it documents, others are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultParams {
    /// Byte count (dropped_bytes, garbage, oversize).
    pub bytes: Option<usize>,
    /// Pause between chunks in ms (chunked).
    pub gap_ms: Option<u64>,
    /// Number of chunks (chunked).
    pub chunks: Option<usize>,
    /// Seconds (silence, clock_jump, dst_change, power_failure).
    pub seconds: Option<i64>,
    /// Baud the telegram is sent at (wrong_baud).
    pub baud: Option<u32>,
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// What goes wrong.
    pub kind: FaultKind,
    /// When.
    pub when: When,
    /// How.
    pub params: FaultParams,
}

impl FaultRule {
    /// A rule firing at the given telegram indexes.
    pub fn at(kind: FaultKind, indexes: &[u64]) -> FaultRule {
        FaultRule { kind, when: When { at: indexes.to_vec(), ..When::default() }, params: FaultParams::default() }
    }
    /// A rule firing every `n` telegrams starting at `offset`.
    pub fn every(kind: FaultKind, n: u64, offset: u64) -> FaultRule {
        FaultRule { kind, when: When { every: n, offset, ..When::default() }, params: FaultParams::default() }
    }
    /// A rule firing with chance `p` per telegram.
    pub fn random(kind: FaultKind, p: f64) -> FaultRule {
        FaultRule { kind, when: When { probability: p, ..When::default() }, params: FaultParams::default() }
    }
    /// Sets the parameters.
    pub fn with(mut self, params: FaultParams) -> FaultRule {
        self.params = params;
        self
    }
}

/// A seeded fault schedule. The default plan injects nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Seed for random rules and fault details; `None` uses the meter's seed.
    pub seed: Option<u64>,
    /// The rules, applied in order.
    pub rules: Vec<FaultRule>,
}

/// Why a scenario file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Unreadable file.
    #[error("{file}: cannot read scenario")]
    Io {
        /// Path.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Bad content.
    #[error("{file}:{line}:{column}: field `{field}`: {message}")]
    Invalid {
        /// Path.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Field.
        field: String,
        /// Problem.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    seed: Option<u64>,
    #[serde(default)]
    fault: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    kind: Spanned<String>,
    #[serde(default)]
    at: Vec<u64>,
    #[serde(default)]
    every: u64,
    #[serde(default)]
    offset: u64,
    probability: Option<Spanned<f64>>,
    limit: Option<u64>,
    bytes: Option<usize>,
    gap_ms: Option<u64>,
    chunks: Option<usize>,
    seconds: Option<i64>,
    baud: Option<Spanned<u32>>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    (before.iter().filter(|&&b| b == b'\n').count() + 1, before.iter().rev().take_while(|&&b| b != b'\n').count() + 1)
}

impl FaultPlan {
    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<FaultPlan, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io { file: file.clone(), source })?;
        FaultPlan::parse(&file, &text)
    }

    /// Parses scenario TOML; `file` names the source in errors.
    pub fn parse(file: &str, text: &str) -> Result<FaultPlan, ScenarioError> {
        let err = |span: std::ops::Range<usize>, field: String, message: String| {
            let (line, column) = line_col(text, span.start);
            ScenarioError::Invalid { file: file.to_owned(), line, column, field, message }
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_owned();
            let field = msg
                .split('`')
                .nth(1)
                .filter(|_| msg.contains("field"))
                .map(str::to_owned)
                .unwrap_or_else(|| "(toml)".to_owned());
            err(span, field, msg)
        })?;
        let mut rules = Vec::new();
        for (i, r) in raw.fault.into_iter().enumerate() {
            let kind = FaultKind::ALL.into_iter().find(|k| k.name() == r.kind.get_ref()).ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                err(r.kind.span(), format!("fault[{i}].kind"), format!("unknown kind `{}` (one of: {})", r.kind.get_ref(), names.join(", ")))
            })?;
            let probability = match &r.probability {
                Some(p) if !(0.0..=1.0).contains(p.get_ref()) => {
                    return Err(err(p.span(), format!("fault[{i}].probability"), "must be within 0..=1".into()));
                }
                Some(p) => *p.get_ref(),
                None => 0.0,
            };
            if r.at.is_empty() && r.every == 0 && probability == 0.0 {
                return Err(err(r.kind.span(), format!("fault[{i}]"), "needs `at`, `every` or `probability`".into()));
            }
            if let Some(b) = &r.baud
                && !(300..=4_000_000).contains(b.get_ref())
            {
                return Err(err(b.span(), format!("fault[{i}].baud"), "must be 300..=4000000".into()));
            }
            rules.push(FaultRule {
                kind,
                when: When { at: r.at, every: r.every, offset: r.offset, probability, limit: r.limit },
                params: FaultParams {
                    bytes: r.bytes,
                    gap_ms: r.gap_ms,
                    chunks: r.chunks,
                    seconds: r.seconds,
                    baud: r.baud.map(|b| *b.get_ref()),
                },
            });
        }
        Ok(FaultPlan { seed: raw.seed, rules })
    }

    /// True when no rule can fire.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Tracks which rules fire on which telegram.
#[derive(Debug, Clone)]
pub(crate) struct Scheduler {
    plan: FaultPlan,
    fired: Vec<u64>,
    pub(crate) rng: Rng,
}

impl Scheduler {
    pub(crate) fn new(plan: FaultPlan, meter_seed: u64) -> Scheduler {
        let seed = plan.seed.unwrap_or(meter_seed);
        let n = plan.rules.len();
        Scheduler { plan, fired: vec![0; n], rng: Rng::derive(seed, 0xFA17) }
    }

    /// The rules that fire on telegram `index`.
    pub(crate) fn due(&mut self, index: u64) -> Vec<(FaultKind, FaultParams)> {
        let mut out = Vec::new();
        for (i, rule) in self.plan.rules.iter().enumerate() {
            let w = &rule.when;
            let random = w.probability > 0.0 && self.rng.chance(w.probability);
            let fires = w.at.contains(&index)
                || (w.every > 0 && index >= w.offset && (index - w.offset).is_multiple_of(w.every))
                || random;
            if fires && w.limit.is_none_or(|l| self.fired[i] < l) {
                self.fired[i] += 1;
                out.push((rule.kind, rule.params.clone()));
            }
        }
        out
    }
}

/// Per-kind fault counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts(pub BTreeMap<FaultKind, u64>);

impl FaultCounts {
    /// Adds one of `kind`.
    pub fn add(&mut self, kind: FaultKind) {
        *self.0.entry(kind).or_insert(0) += 1;
    }
    /// Count of `kind`.
    pub fn get(&self, kind: FaultKind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }
    /// Sum over kinds.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
    /// Merges another count into this one.
    pub fn merge(&mut self, other: &FaultCounts) {
        for (k, v) in &other.0 {
            *self.0.entry(*k).or_insert(0) += v;
        }
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(" "))
    }
}

/// Position of the `!` that ends the telegram body.
fn bang(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b == b'!')
}

pub(crate) fn corrupt_crc(bytes: &mut [u8], rng: &mut Rng) {
    match bang(bytes) {
        Some(p) if bytes.len() >= p + 5 && bytes[p + 1..p + 5].iter().all(u8::is_ascii_hexdigit) => {
            let s = std::str::from_utf8(&bytes[p + 1..p + 5]).unwrap_or("0000");
            let old = u16::from_str_radix(s, 16).unwrap_or(0);
            let new = old ^ (1 + rng.below(0xFFFE) as u16);
            bytes[p + 1..p + 5].copy_from_slice(format!("{new:04X}").as_bytes());
        }
        _ => flip_bit(bytes, rng),
    }
}

pub(crate) fn flip_bit(bytes: &mut [u8], rng: &mut Rng) {
    let end = bang(bytes).unwrap_or(bytes.len());
    if end > 2 {
        let i = 1 + rng.below(end as u64 - 1) as usize;
        bytes[i] ^= 1 << rng.below(7);
    }
}

pub(crate) fn truncate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    let n = bytes.len() as u64;
    let cut = (n / 10 + rng.below(n * 8 / 10 + 1)) as usize;
    bytes.truncate(cut.max(1));
}

pub(crate) fn drop_bytes(bytes: &mut Vec<u8>, count: usize, rng: &mut Rng) {
    for _ in 0..count {
        let end = bang(bytes).unwrap_or(bytes.len());
        if end <= 2 {
            break;
        }
        let i = 1 + rng.below(end as u64 - 1) as usize;
        bytes.remove(i);
    }
}

pub(crate) fn garbage(count: usize, rng: &mut Rng) -> Vec<u8> {
    (0..count)
        .map(|_| loop {
            let b = rng.below(256) as u8;
            if b != b'/' {
                break b;
            }
        })
        .collect()
}

/// What a UART receiving with `rx` line settings reads when the bytes were sent at `tx_baud`
/// (same frame format). A real line-level emulation: bits are laid out in time at the sender's
/// rate and sampled at the receiver's, starting at each falling edge, mid-bit.
pub fn wrong_baud(bytes: &[u8], rx: LineSettings, tx_baud: u32) -> Vec<u8> {
    let data_bits = rx.data_bits as usize;
    let mut bits: Vec<bool> = Vec::with_capacity(bytes.len() * rx.bits_per_char() as usize + 1);
    bits.push(true);
    for &b in bytes {
        bits.push(false);
        let mut ones = 0;
        for i in 0..data_bits {
            let bit = (b >> i) & 1 == 1;
            ones += bit as u32;
            bits.push(bit);
        }
        match rx.parity {
            crate::profile::Parity::None => {}
            crate::profile::Parity::Even => bits.push(ones % 2 == 1),
            crate::profile::Parity::Odd => bits.push(ones % 2 == 0),
        }
        for _ in 0..rx.stop_bits {
            bits.push(true);
        }
    }
    let tx_bit = 1.0 / tx_baud as f64;
    let rx_bit = 1.0 / rx.baud as f64;
    let level = |t: f64| -> bool {
        let k = (t / tx_bit) as usize;
        bits.get(k).copied().unwrap_or(true)
    };
    let end = bits.len() as f64 * tx_bit;
    let mut out = Vec::new();
    let mut t = 0.0;
    while t < end {
        // Next low level at or after t: a start bit.
        let mut k = (t / tx_bit).ceil() as usize;
        if level(t) {
            while k < bits.len() && bits[k] {
                k += 1;
            }
            if k >= bits.len() {
                break;
            }
        }
        let start = (k as f64 * tx_bit).max(t);
        let mut byte = 0u8;
        for i in 0..data_bits {
            if level(start + (1.5 + i as f64) * rx_bit) {
                byte |= 1 << i;
            }
        }
        out.push(byte);
        let frame_bits = 1 + data_bits + usize::from(rx.parity != crate::profile::Parity::None);
        t = start + (frame_bits as f64 + 0.5) * rx_bit;
        if !level(t) {
            // Framing error: the receiver resynchronises at the next idle (high) level.
            while t < end && !level(t) {
                t += tx_bit.min(rx_bit);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Parity;

    const LINE: LineSettings = LineSettings { baud: 115_200, data_bits: 8, parity: Parity::None, stop_bits: 1 };

    #[test]
    fn uart_emulation_is_identity_at_the_right_baud_and_garbage_otherwise() {
        let msg = b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.1(000123.456*kWh)\r\n!ABCD\r\n";
        assert_eq!(wrong_baud(msg, LINE, 115_200), msg.to_vec());
        let slow = wrong_baud(msg, LINE, 9_600);
        assert_ne!(slow, msg.to_vec());
        assert!(slow.len() > msg.len(), "a slower sender looks like more bytes with zero bits");
        let fast = wrong_baud(msg, LINE, 460_800);
        assert!(fast.len() < msg.len());
    }

    #[test]
    fn scenario_files_parse_and_errors_point_at_the_field() {
        let plan = FaultPlan::parse("s.toml", "seed = 3\n[[fault]]\nkind = \"chunked\"\nevery = 5\nchunks = 3\ngap_ms = 20\n")
            .expect("valid");
        assert_eq!(plan.seed, Some(3));
        assert_eq!(plan.rules[0].kind, FaultKind::Chunked);
        assert_eq!(plan.rules[0].params.chunks, Some(3));
        let e = FaultPlan::parse("s.toml", "[[fault]]\nkind = \"bogus\"\nat = [1]\n").expect_err("bad kind").to_string();
        assert!(e.starts_with("s.toml:2:8: field `fault[0].kind`: unknown kind `bogus`"), "{e}");
        let e = FaultPlan::parse("s.toml", "[[fault]]\nkind = \"flip_bit\"\nprobability = 2.0\n").expect_err("p").to_string();
        assert!(e.starts_with("s.toml:3:15: field `fault[0].probability`"), "{e}");
        let e = FaultPlan::parse("s.toml", "[[fault]]\nkind = \"flip_bit\"\nevery = 2\ncolour = 1\n").expect_err("p").to_string();
        assert!(e.contains("s.toml:4:1") && e.contains("colour"), "{e}");
    }

    #[test]
    fn schedules_are_deterministic_and_respect_limits() {
        let mut swap = FaultRule::every(FaultKind::MbusSwap, 10, 0);
        swap.when.limit = Some(2);
        let plan = FaultPlan { seed: Some(1), rules: vec![FaultRule::random(FaultKind::FlipBit, 0.3), swap] };
        let run = |plan: &FaultPlan| {
            let mut s = Scheduler::new(plan.clone(), 0);
            (0..200).map(|i| s.due(i).len()).collect::<Vec<_>>()
        };
        assert_eq!(run(&plan), run(&plan));
        let mut s = Scheduler::new(plan, 0);
        let swaps: usize = (0..200).map(|i| s.due(i).iter().filter(|(k, _)| *k == FaultKind::MbusSwap).count()).sum();
        assert_eq!(swaps, 2);
    }
}
