//! [`Meter`]: a profile, the seeded physics and the fault schedule, producing telegram bytes plus
//! a typed record of exactly what was sent.
//!
//! Telegrams are written with `dsmr::emit::Writer` (the same crate the gateway parses with), so
//! framing, number formats and CRCs are shared with the parser.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, FixedOffset, Timelike, Utc};
use dsmr::emit::{Finish, NumFormat as DsmrFormat, Writer};
use dsmr::{CrcKind, Dst, Fixed, Obis, Timestamp};

use crate::clock::Zone;
use crate::faults::{self, FaultCounts, FaultKind, FaultPlan, FaultParams, Scheduler};
use crate::model::{MeterState, Physics};
use crate::profile::{CrcMode, MbusKind, NumFormat, ObjectValue, Profile, Source};

/// Size of the render buffer: the largest profile plus an oversize fault fits.
const BUF: usize = 64 * 1024;

/// One M-Bus device as sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SentMbus {
    /// Channel as written in the OBIS B group (after any channel swap).
    pub channel: u8,
    /// Device type code as sent.
    pub type_code: Option<u8>,
    /// Equipment identifier (decoded text), if sent and not empty.
    pub id: Option<String>,
    /// Reading as sent (m3, GJ), rounded as written.
    pub reading: Option<f64>,
    /// Unit as written.
    pub unit: String,
    /// Capture time as sent.
    pub captured_at: Option<DateTime<FixedOffset>>,
}

/// Everything a telegram carried, as typed values rounded exactly as written. Energy is in kWh,
/// power in kW, whatever unit the profile writes. `None`: the profile does not send the object.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Sent {
    /// The meter's timestamp (`0-0:1.0.0`) as local time with its offset; `None` if not sent.
    pub meter_time: Option<DateTime<FixedOffset>>,
    /// The S/W flag sent (true = `S`).
    pub dst: Option<bool>,
    /// Tariff indicator (1 or 2).
    pub tariff: Option<u8>,
    /// Import energy, tariff 1 and 2 (kWh).
    pub energy_import_kwh: [Option<f64>; 2],
    /// Export energy, tariff 1 and 2 (kWh).
    pub energy_export_kwh: [Option<f64>; 2],
    /// Import power (kW).
    pub power_import_kw: Option<f64>,
    /// Export power (kW).
    pub power_export_kw: Option<f64>,
    /// Per-phase voltage (V).
    pub voltage_v: [Option<f64>; 3],
    /// Per-phase current (A).
    pub current_a: [Option<f64>; 3],
    /// Per-phase import power (kW).
    pub phase_import_kw: [Option<f64>; 3],
    /// Per-phase export power (kW).
    pub phase_export_kw: [Option<f64>; 3],
    /// Power failures in any phase.
    pub power_failures: Option<u64>,
    /// Long power failures.
    pub long_power_failures: Option<u64>,
    /// Failure log as sent: (end time, duration s), in telegram order.
    pub failure_log: Option<Vec<(DateTime<FixedOffset>, u64)>>,
    /// Sags per phase.
    pub sags: [Option<u64>; 3],
    /// Swells per phase.
    pub swells: [Option<u64>; 3],
    /// e-MUCS running quarter-hour average demand (kW).
    pub average_demand_kw: Option<f64>,
    /// e-MUCS monthly peak: (time, kW).
    pub max_demand_month: Option<(DateTime<FixedOffset>, f64)>,
    /// e-MUCS 13-month history: (month stamp, peak time, kW), newest first.
    pub max_demand_history: Option<Vec<MonthPeakSent>>,
    /// M-Bus devices in telegram order.
    pub mbus: Vec<SentMbus>,
    /// Every COSEM line as written (without the line end), in order.
    pub lines: Vec<String>,
}

/// One e-MUCS history entry as sent: (month stamp, peak time, kW).
pub type MonthPeakSent = (DateTime<FixedOffset>, DateTime<FixedOffset>, f64);

/// A stretch of a telegram's bytes followed by a pause (chunked delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// End offset (exclusive) in [`Telegram::bytes`].
    pub end: usize,
    /// Pause after this chunk, in milliseconds of meter time.
    pub gap_ms: u64,
}

/// One telegram's worth of output.
#[derive(Debug, Clone)]
pub struct Telegram {
    /// 0-based index (telegram slots, including silent ones).
    pub index: u64,
    /// Physical (meter) time the first byte is due: the interval boundary.
    pub due: DateTime<Utc>,
    /// The bytes for the wire, faults applied (may be empty: silence).
    pub bytes: Vec<u8>,
    /// Chunked delivery plan; empty means one continuous write.
    pub chunks: Vec<Chunk>,
    /// What the telegram carried before byte-level faults.
    pub sent: Sent,
    /// Faults applied to this telegram.
    pub faults: Vec<FaultKind>,
    /// Whether a correct CRC-16/ARC parser should accept this telegram with exactly `sent`.
    pub intact: bool,
    /// Seconds the meter was without power before this telegram.
    pub outage_before_s: u64,
}

/// A simulated meter: deterministic for a given profile, seed, start time and fault plan.
///
/// ```
/// use simulator::{Meter, Profile};
/// let profile = Profile::load("iskra-am550-td2").unwrap();
/// let start = "2026-03-29T01:59:58+01:00".parse().unwrap();
/// let mut meter = Meter::new(profile, 42, start);
/// let t = meter.next_telegram();
/// assert!(t.bytes.starts_with(b"/ISK5\\2M550T-1012\r\n"));
/// assert_eq!(t.sent.meter_time.unwrap().to_rfc3339(), "2026-03-29T01:59:58+01:00");
/// let parsed = dsmr::Telegram::parse(&t.bytes).unwrap(); // CRC checked
/// assert!(parsed.lines().count() > 30);
/// ```
#[derive(Debug)]
pub struct Meter {
    profile: Arc<Profile>,
    plan: Vec<Compiled>,
    physics: Physics,
    scheduler: Scheduler,
    index: u64,
    mbus_swapped: bool,
    silent_until: Option<DateTime<Utc>>,
    counts: FaultCounts,
    buf: Vec<u8>,
    telegrams: u64,
    bytes: u64,
}

#[derive(Debug, Clone)]
struct Compiled {
    obis: Obis,
    channel: u8,
    value: ObjectValue,
    format: DsmrFormat,
}

fn to_dsmr_format(f: Option<NumFormat>) -> DsmrFormat {
    f.map_or(DsmrFormat::new(1, 0), |f| DsmrFormat::new(f.int_digits, f.decimals))
}

/// The dsmr timestamp for `t` in `zone`.
pub fn timestamp(zone: Zone, t: DateTime<Utc>, flag: bool) -> Timestamp {
    let l = zone.local(t);
    Timestamp {
        year: l.year().rem_euclid(100) as u8,
        month: l.month() as u8,
        day: l.day() as u8,
        hour: l.hour() as u8,
        minute: l.minute() as u8,
        second: l.second() as u8,
        dst: flag.then(|| if zone.is_dst(t) { Dst::Summer } else { Dst::Winter }),
    }
}

fn pow10(d: u8) -> f64 {
    10f64.powi(d as i32)
}

/// Rounds `v` (in base units) to the format the way the writer will, returning the Fixed to write
/// and the value as sent.
fn rounded(v: f64, f: DsmrFormat) -> (Fixed, f64) {
    let raw = (v * pow10(f.decimals)).round() as i64;
    (Fixed::new(raw, f.decimals), raw as f64 / pow10(f.decimals))
}

/// Registers show the digits they have and roll over; they round down.
fn register(v: f64, f: DsmrFormat) -> (Fixed, f64) {
    let modulus = 10i64.saturating_pow(u32::from(f.int_digits) + u32::from(f.decimals));
    let raw = ((v * pow10(f.decimals)).floor() as i64).rem_euclid(modulus.max(1));
    (Fixed::new(raw, f.decimals), raw as f64 / pow10(f.decimals))
}

/// A value as sent, in kilo-units (kWh, kW) whatever prefix the profile writes.
fn kilo(sent: f64, unit: &str) -> f64 {
    if unit.starts_with('k') { sent } else { sent / 1000.0 }
}

fn unit_opt(u: &str) -> Option<&str> {
    (!u.is_empty()).then_some(u)
}

/// kWh/kW per base unit Wh/W for unit strings `kWh`/`Wh`, `kW`/`W`, `kvarh`/`varh`.
fn energy_scale(unit: &str) -> f64 {
    if unit.starts_with('k') { 1e-3 } else { 1.0 }
}

impl Meter {
    /// A meter for `profile` whose first telegram is stamped `start`, seeded by `seed`.
    ///
    /// `start` is rounded down to the profile's interval (meters send on the boundary).
    pub fn new(profile: Profile, seed: u64, start: DateTime<Utc>) -> Meter {
        let iv = profile.interval_s as i64;
        let ts = start.timestamp();
        let start = DateTime::from_timestamp(ts - ts.rem_euclid(iv), 0).unwrap_or(start);
        let plan = profile
            .objects
            .iter()
            .map(|o| Compiled {
                obis: Obis::parse(o.obis.as_bytes()).unwrap_or(Obis::new(0, 0, 0, 0, 0)),
                channel: o.channel,
                value: o.value.clone(),
                format: match &o.value {
                    ObjectValue::Model { format, .. } => to_dsmr_format(*format),
                    ObjectValue::Const(_) => DsmrFormat::new(1, 0),
                },
            })
            .collect();
        let physics = Physics::new(&profile, seed, start);
        Meter {
            profile: Arc::new(profile),
            plan,
            physics,
            scheduler: Scheduler::new(FaultPlan::default(), seed),
            index: 0,
            mbus_swapped: false,
            silent_until: None,
            counts: FaultCounts::default(),
            buf: vec![0; BUF],
            telegrams: 0,
            bytes: 0,
        }
    }

    /// Injects faults from `plan` (seeded by the plan's seed, else the meter's).
    pub fn with_faults(mut self, plan: FaultPlan, seed: u64) -> Meter {
        self.scheduler = Scheduler::new(plan, seed);
        self
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The physical state of the last telegram.
    pub fn state(&self) -> &MeterState {
        &self.physics.state
    }

    /// Per-kind counts of the faults injected so far.
    pub fn fault_counts(&self) -> &FaultCounts {
        &self.counts
    }

    /// Telegrams (non-silent) and bytes produced so far.
    pub fn produced(&self) -> (u64, u64) {
        (self.telegrams, self.bytes)
    }

    /// Physical time of the next telegram slot without producing it (approximate when a random
    /// power failure is about to happen: the telegram's own `due` is authoritative).
    pub fn next_due(&self) -> DateTime<Utc> {
        if self.index == 0 {
            self.physics.state.now
        } else {
            self.physics.state.now + Duration::seconds(self.profile.interval_s as i64)
        }
    }

    /// Produces the next telegram: advances the physics one interval (the first call reports the
    /// start state), applies scheduled faults, renders with `dsmr`'s writer.
    pub fn next_telegram(&mut self) -> Telegram {
        let due_faults = self.scheduler.due(self.index);
        let mut applied = Vec::new();
        for (kind, p) in &due_faults {
            if *kind == FaultKind::PowerFailure {
                self.physics.power_failure(p.seconds.unwrap_or(240).max(1) as u64);
                applied.push(*kind);
            }
        }
        if self.index > 0 {
            self.physics.advance();
        }
        let iv = self.profile.interval_s as i64;
        let mut empty_log = false;
        let mut crc = match self.profile.crc {
            CrcMode::Arc => Some(CrcKind::Arc),
            CrcMode::X25 => Some(CrcKind::X25),
            CrcMode::None => None,
        };
        let mut oversize = None;
        for (kind, p) in &due_faults {
            match kind {
                FaultKind::ClockJump => self.physics.state.clock_offset_s += p.seconds.unwrap_or(3600),
                FaultKind::DstChange => {
                    let shown = self.physics.state.display_time();
                    if let Some(tr) = self.profile.zone.next_transition(shown) {
                        let lead = p.seconds.unwrap_or(5 * iv);
                        self.physics.state.clock_offset_s += (tr - shown).num_seconds() - lead;
                    }
                }
                FaultKind::MbusSwap => self.mbus_swapped = !self.mbus_swapped,
                FaultKind::EmptyFailureLog => empty_log = true,
                FaultKind::X25Crc => crc = Some(CrcKind::X25),
                FaultKind::Oversize => oversize = Some(p.bytes.unwrap_or(6000)),
                FaultKind::Silence => {
                    let secs = p.seconds.unwrap_or(10 * iv).max(1);
                    self.silent_until = Some(self.physics.state.now + Duration::seconds(secs));
                }
                _ => continue,
            }
            applied.push(*kind);
        }

        let index = self.index;
        self.index += 1;
        let due = self.physics.state.now;
        let outage_before_s = self.physics.state.outage_before_s;
        let mut sent = Sent::default();
        let n = self.render(&mut sent, empty_log, crc, oversize);
        let mut bytes = self.buf[..n].to_vec();
        sent.lines = split_lines(&bytes);

        let silent = self.silent_until.is_some_and(|u| due < u);
        if !silent {
            self.silent_until = None;
        }
        let mut chunks = Vec::new();
        let rng = &mut self.scheduler.rng;
        if silent {
            bytes.clear();
        } else {
            for (kind, p) in &due_faults {
                match kind {
                    FaultKind::CorruptCrc => faults::corrupt_crc(&mut bytes, rng),
                    FaultKind::FlipBit => faults::flip_bit(&mut bytes, rng),
                    FaultKind::Truncated => faults::truncate(&mut bytes, rng),
                    FaultKind::DroppedBytes => faults::drop_bytes(&mut bytes, p.bytes.unwrap_or(1 + rng.below(8) as usize), rng),
                    FaultKind::Garbage => {
                        let mut g = faults::garbage(p.bytes.unwrap_or(16 + rng.below(48) as usize), rng);
                        g.extend_from_slice(&bytes);
                        bytes = g;
                    }
                    FaultKind::WrongBaud => {
                        let line = self.profile.line;
                        let tx = p.baud.unwrap_or(if line.baud == 115_200 { 9_600 } else { 115_200 });
                        bytes = faults::wrong_baud(&bytes, line, tx);
                    }
                    FaultKind::Chunked => chunks = chunk_plan(bytes.len(), p, rng),
                    _ => continue,
                }
                applied.push(*kind);
            }
        }
        for k in &applied {
            self.counts.add(*k);
        }
        let intact = !silent && !applied.iter().any(|k| k.breaks_telegram()) && self.profile.crc != CrcMode::X25;
        if !bytes.is_empty() {
            self.telegrams += 1;
            self.bytes += bytes.len() as u64;
        }
        Telegram { index, due, bytes, chunks, sent, faults: applied, intact, outage_before_s }
    }

    /// Advances `n` telegram slots without rendering them (no faults are scheduled for them).
    pub fn skip(&mut self, n: u64) {
        for _ in 0..n {
            if self.index > 0 {
                self.physics.advance();
            }
            self.index += 1;
        }
    }

    /// Fast path for benchmarks and fleets: advances one interval and renders the clean telegram
    /// into `out` (no record, no faults). Returns the physical due time.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> DateTime<Utc> {
        if self.index > 0 {
            self.physics.advance();
        }
        self.index += 1;
        let crc = match self.profile.crc {
            CrcMode::Arc => Some(CrcKind::Arc),
            CrcMode::X25 => Some(CrcKind::X25),
            CrcMode::None => None,
        };
        let n = self.render_fast(crc);
        out.clear();
        out.extend_from_slice(&self.buf[..n]);
        self.telegrams += 1;
        self.bytes += n as u64;
        self.physics.state.now
    }

    fn render_fast(&mut self, crc: Option<CrcKind>) -> usize {
        self.render_inner(None, false, crc, None)
    }

    fn render(&mut self, sent: &mut Sent, empty_log: bool, crc: Option<CrcKind>, oversize: Option<usize>) -> usize {
        self.render_inner(Some(sent), empty_log, crc, oversize)
    }

    fn render_inner(
        &mut self,
        mut sent: Option<&mut Sent>,
        empty_log: bool,
        crc: Option<CrcKind>,
        oversize: Option<usize>,
    ) -> usize {
        let profile = &*self.profile;
        let zone = profile.zone;
        let flag = profile.dst_flag;
        let s = &self.physics.state;
        let shown = s.display_time();
        let local = |t: DateTime<Utc>| zone.local(t);
        let swap = |ch: u8| -> u8 {
            match ch {
                1 if self.mbus_swapped => 2,
                2 if self.mbus_swapped => 1,
                c => c,
            }
        };
        let mut w = Writer::new(&mut self.buf);
        let mut ok = w.header_with(profile.header.as_bytes(), profile.blank_line_after_header).is_ok();
        let mut mbus_rec: Vec<SentMbus> = Vec::new();
        macro_rules! rec {
            ($($assign:tt)+) => {
                if let Some(r) = sent.as_deref_mut() {
                    r.$($assign)+;
                }
            };
        }
        for c in &self.plan {
            let mut obis = c.obis;
            let r: Result<(), dsmr::emit::EmitError> = (|| {
                match &c.value {
                    ObjectValue::Const(text) => {
                        w.obis(obis)?;
                        w.group(text.as_bytes())?;
                        w.eol()
                    }
                    ObjectValue::Model { source, unit, .. } => {
                        let f = c.format;
                        let u = unit_opt(unit);
                        match *source {
                            Source::Timestamp => {
                                rec!(meter_time = Some(local(shown)));
                                rec!(dst = flag.then(|| zone.is_dst(shown)));
                                w.timestamp_line(obis, timestamp(zone, shown, flag))
                            }
                            Source::EquipmentId => {
                                w.obis(obis)?;
                                w.group_hex(profile.equipment_id.as_bytes())?;
                                w.eol()
                            }
                            Source::Tariff => {
                                rec!(tariff = Some(s.tariff));
                                w.obis(obis)?;
                                w.group_number(Fixed::new(i64::from(s.tariff), 0), DsmrFormat::new(4, 0), None)?;
                                w.eol()
                            }
                            Source::EnergyImport(t) | Source::EnergyExport(t) => {
                                let wh = if matches!(source, Source::EnergyImport(_)) { s.import_wh } else { s.export_wh };
                                let (v, sv) = register(wh[t as usize] * energy_scale(unit), f);
                                let kwh = Some(kilo(sv, unit));
                                if matches!(source, Source::EnergyImport(_)) {
                                    rec!(energy_import_kwh[t as usize] = kwh);
                                } else {
                                    rec!(energy_export_kwh[t as usize] = kwh);
                                }
                                w.register(obis, v, f, u)
                            }
                            Source::EnergyImportTotal | Source::EnergyExportTotal => {
                                let wh = if *source == Source::EnergyImportTotal { s.import_wh } else { s.export_wh };
                                // The total is the sum of the registers as shown, not separately rounded.
                                let (a, _) = register(wh[0] * energy_scale(unit), f);
                                let (b, _) = register(wh[1] * energy_scale(unit), f);
                                w.register(obis, Fixed::new(a.raw + b.raw, f.decimals), f, u)
                            }
                            Source::ReactiveImport | Source::ReactiveExport => {
                                let i = usize::from(*source == Source::ReactiveExport);
                                let (v, _) = register(s.reactive_varh[i] * energy_scale(unit), f);
                                w.register(obis, v, f, u)
                            }
                            Source::PowerImport | Source::PowerExport => {
                                let watts = if *source == Source::PowerImport { s.import_w } else { s.export_w };
                                let (v, sv) = rounded(watts * energy_scale(unit), f);
                                let kw = Some(kilo(sv, unit));
                                if *source == Source::PowerImport {
                                    rec!(power_import_kw = kw);
                                } else {
                                    rec!(power_export_kw = kw);
                                }
                                w.register(obis, v, f, u)
                            }
                            Source::PhaseImport(p) | Source::PhaseExport(p) => {
                                let net = s.phase_net_w[p as usize];
                                let watts = if matches!(source, Source::PhaseImport(_)) { net.max(0.0) } else { (-net).max(0.0) };
                                let (v, sv) = rounded(watts * energy_scale(unit), f);
                                let kw = Some(kilo(sv, unit));
                                if matches!(source, Source::PhaseImport(_)) {
                                    rec!(phase_import_kw[p as usize] = kw);
                                } else {
                                    rec!(phase_export_kw[p as usize] = kw);
                                }
                                w.register(obis, v, f, u)
                            }
                            Source::Voltage(p) => {
                                let (v, sv) = rounded(s.voltage[p as usize], f);
                                rec!(voltage_v[p as usize] = Some(sv));
                                w.register(obis, v, f, u)
                            }
                            Source::Current(p) => {
                                let (v, sv) = rounded(s.current[p as usize], f);
                                rec!(current_a[p as usize] = Some(sv));
                                w.register(obis, v, f, u)
                            }
                            Source::Frequency => w.register(obis, rounded(s.frequency, f).0, f, u),
                            Source::PowerFactor => w.register(obis, rounded(s.power_factor, f).0, f, u),
                            Source::PowerFailures | Source::LongPowerFailures => {
                                let n = if *source == Source::PowerFailures { s.power_failures } else { s.long_power_failures };
                                let (v, sv) = register(n as f64, f);
                                if *source == Source::PowerFailures {
                                    rec!(power_failures = Some(sv as u64));
                                } else {
                                    rec!(long_power_failures = Some(sv as u64));
                                }
                                w.register(obis, v, f, u)
                            }
                            Source::Sags(p) | Source::Swells(p) => {
                                let n = if matches!(source, Source::Sags(_)) { s.sags[p as usize] } else { s.swells[p as usize] };
                                let (v, sv) = register(n as f64, f);
                                if matches!(source, Source::Sags(_)) {
                                    rec!(sags[p as usize] = Some(sv as u64));
                                } else {
                                    rec!(swells[p as usize] = Some(sv as u64));
                                }
                                w.register(obis, v, f, u)
                            }
                            Source::FailureLog => {
                                let spec = &profile.failure_log;
                                if empty_log {
                                    rec!(failure_log = Some(Vec::new()));
                                    w.obis(obis)?;
                                    w.raw(b"()")?;
                                    return w.eol();
                                }
                                let mut entries: Vec<(Timestamp, Fixed)> = Vec::with_capacity(s.failure_log.len());
                                let mut rec_log = Vec::new();
                                let iter: Box<dyn Iterator<Item = _>> = if spec.newest_first {
                                    Box::new(s.failure_log.iter().rev())
                                } else {
                                    Box::new(s.failure_log.iter())
                                };
                                for e in iter {
                                    let end = e.end + Duration::seconds(s.clock_offset_s);
                                    entries.push((timestamp(zone, end, true), Fixed::new(e.duration_s as i64, 0)));
                                    rec_log.push((local(end), e.duration_s));
                                }
                                rec!(failure_log = Some(rec_log));
                                w.profile(obis, Obis::new(0, 0, 96, 7, 19), &entries, DsmrFormat::new(10, 0), Some("s"), spec.empty_as_parens)
                            }
                            Source::AverageDemand => {
                                let (v, sv) = rounded(s.average_demand_w() * energy_scale(unit), f);
                                rec!(average_demand_kw = Some(kilo(sv, unit)));
                                w.register(obis, v, f, u)
                            }
                            Source::MaxDemandMonth => {
                                let (at, watts) = s.month_peak;
                                let at = at + Duration::seconds(s.clock_offset_s);
                                let (v, sv) = rounded(watts * energy_scale(unit), f);
                                rec!(max_demand_month = Some((local(at), kilo(sv, unit))));
                                w.obis(obis)?;
                                w.group_timestamp(timestamp(zone, at, true))?;
                                w.group_number(v, f, u)?;
                                w.eol()
                            }
                            Source::MaxDemandHistory => {
                                w.obis(obis)?;
                                w.raw(format!("({})", s.history.len()).as_bytes())?;
                                w.raw(b"(1-0:1.6.0)(1-0:1.6.0)")?;
                                if s.history.is_empty() {
                                    w.raw(b"()")?;
                                }
                                let mut h = Vec::new();
                                for e in &s.history {
                                    let (v, sv) = rounded(e.watts * energy_scale(unit), f);
                                    w.group_timestamp(timestamp(zone, e.month, true))?;
                                    w.group_timestamp(timestamp(zone, e.at, true))?;
                                    w.group_number(v, f, u)?;
                                    h.push((local(e.month), local(e.at), kilo(sv, unit)));
                                }
                                rec!(max_demand_history = Some(h));
                                w.eol()
                            }
                            Source::MbusType | Source::MbusId | Source::MbusReading | Source::MbusReadingLegacy => {
                                let Some(dev_i) = profile.mbus.iter().position(|m| m.channel == c.channel) else {
                                    return Ok(());
                                };
                                let dev = &profile.mbus[dev_i];
                                let st = &s.mbus[dev_i];
                                let ch = swap(c.channel);
                                obis.b = ch;
                                let rec_i = match mbus_rec.iter().position(|m| m.channel == ch) {
                                    Some(i) => i,
                                    None => {
                                        mbus_rec.push(SentMbus {
                                            channel: ch,
                                            type_code: None,
                                            id: None,
                                            reading: None,
                                            unit: String::new(),
                                            captured_at: None,
                                        });
                                        mbus_rec.len() - 1
                                    }
                                };
                                let m = &mut mbus_rec[rec_i];
                                match source {
                                    Source::MbusType => {
                                        m.type_code = Some(dev.type_code);
                                        w.register(obis, Fixed::new(i64::from(dev.type_code), 0), f, None)
                                    }
                                    Source::MbusId => {
                                        w.obis(obis)?;
                                        if dev.unused {
                                            w.group(b"")?;
                                        } else {
                                            m.id = Some(dev.id.clone());
                                            w.group_hex(dev.id.as_bytes())?;
                                        }
                                        w.eol()
                                    }
                                    Source::MbusReading if dev.unused => {
                                        let epoch = DateTime::from_timestamp(0, 0).unwrap_or(shown);
                                        m.reading = Some(0.0);
                                        w.obis(obis)?;
                                        w.group_timestamp(timestamp(Zone::CentralEurope, epoch, true))?;
                                        w.group(b"00000000")?;
                                        w.eol()
                                    }
                                    Source::MbusReading => {
                                        let at = st.captured_at + Duration::seconds(s.clock_offset_s);
                                        let (v, sv) = register(st.captured, f);
                                        m.reading = Some(sv);
                                        m.unit = unit.clone();
                                        m.captured_at = Some(local(at));
                                        w.mbus(obis, timestamp(zone, at, flag), v, f, u)
                                    }
                                    _ => {
                                        // DSMR 2.2/3: `0-n:24.3.0(TST)(00)(60)(1)(0-n:24.2.1)(m3)` and the value on the next line.
                                        let at = st.captured_at + Duration::seconds(s.clock_offset_s);
                                        let (v, sv) = register(st.captured, f);
                                        m.reading = Some(sv);
                                        m.unit = unit.clone();
                                        m.captured_at = Some(local(at));
                                        w.obis(obis)?;
                                        w.group_timestamp(timestamp(zone, at, false))?;
                                        w.raw(b"(00)(60)(1)(")?;
                                        w.obis(Obis::new(0, ch, 24, 2, 1))?;
                                        w.raw(b")")?;
                                        w.group(unit.as_bytes())?;
                                        w.eol()?;
                                        w.group_number(v, f, None)?;
                                        let _ = dev.kind == MbusKind::Gas;
                                        w.eol()
                                    }
                                }
                            }
                        }
                    }
                }
            })();
            ok &= r.is_ok();
        }
        if let Some(target) = oversize {
            // Pad with text-message lines (`0-0:96.13.0`, hex, at most 1024 characters each) until
            // the telegram exceeds `target` bytes.
            while w.len() <= target && ok {
                ok &= w.obis(Obis::new(0, 0, 96, 13, 0)).is_ok();
                ok &= w.group(&[b'4'; 1024]).is_ok();
                ok &= w.eol().is_ok();
            }
        }
        if let Some(r) = sent {
            r.mbus = mbus_rec;
        }
        let finish = Finish { crc, lowercase: false, unpadded: false };
        match w.finish(finish) {
            Ok(n) if ok => n,
            // Only an oversize request beyond the buffer gets here; send what fits, unterminated.
            _ => BUF.min(self.buf.len()),
        }
    }
}

fn split_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
    // Drop the header, the blank line and the `!` line: only COSEM lines.
    lines.retain(|l| !l.is_empty() && !l.starts_with('/') && !l.starts_with('!'));
    lines
}

fn chunk_plan(len: usize, p: &FaultParams, rng: &mut crate::rng::Rng) -> Vec<Chunk> {
    let n = p.chunks.unwrap_or(4).clamp(2, 64).min(len.max(1));
    let gap = p.gap_ms.unwrap_or(30);
    let mut cuts: Vec<usize> = (0..n - 1).map(|_| 1 + rng.below(len.saturating_sub(1).max(1) as u64) as usize).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Chunk> = cuts.into_iter().map(|end| Chunk { end, gap_ms: gap }).collect();
    out.push(Chunk { end: len, gap_ms: 0 });
    out
}
