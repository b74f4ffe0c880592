//! Meter profiles: what a meter model sends, as data (TOML files in `fixtures/profiles/`).
//!
//! A profile fixes the header, the line settings, the interval, the CRC, the clock's zone, the
//! tariff rule, the M-Bus devices and the ordered list of COSEM objects with their number formats.
//! [`Profile::load`] takes a built-in name (the files under `fixtures/profiles/` are compiled into
//! the library) or a path. Every problem is reported with the file, line, column and field.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::clock::Zone;

/// Built-in profiles, compiled in from `fixtures/profiles/`: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("iskra-am550-td2", include_str!("../../fixtures/profiles/iskra-am550-td2.toml")),
    ("dsmr5-single-phase", include_str!("../../fixtures/profiles/dsmr5-single-phase.toml")),
    ("kaifa-dsmr42", include_str!("../../fixtures/profiles/kaifa-dsmr42.toml")),
    ("dsmr22-iskra-mt382", include_str!("../../fixtures/profiles/dsmr22-iskra-mt382.toml")),
    ("fluvius-emucs", include_str!("../../fixtures/profiles/fluvius-emucs.toml")),
    ("sagemcom-t211", include_str!("../../fixtures/profiles/sagemcom-t211.toml")),
];

/// The default profile: the user's meter.
pub const DEFAULT_PROFILE: &str = "iskra-am550-td2";

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{file}: cannot read profile")]
    Io {
        /// The path given.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Neither a file nor a built-in profile.
    #[error("unknown profile `{name}` (not a file; built-in profiles: {known})")]
    Unknown {
        /// The name given.
        name: String,
        /// Comma-separated built-in names.
        known: String,
    },
    /// The TOML is malformed or a field has the wrong type, or a value is invalid.
    #[error("{file}:{line}:{column}: field `{field}`: {message}")]
    Invalid {
        /// File name (or `builtin:<name>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field (dotted path where known).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Serial line settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// 7 or 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
}

impl LineSettings {
    /// Bits on the wire per character (start + data + parity + stop).
    pub fn bits_per_char(&self) -> u32 {
        1 + self.data_bits as u32 + u32::from(self.parity != Parity::None) + self.stop_bits as u32
    }
    /// Seconds on the wire for one character.
    pub fn char_time_s(&self) -> f64 {
        self.bits_per_char() as f64 / self.baud as f64
    }
}

impl std::fmt::Display for LineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        write!(f, "{} {}{}{}", self.baud, self.data_bits, p, self.stop_bits)
    }
}

/// Parity setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// Which checksum follows the `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcMode {
    /// CRC-16/ARC (DSMR 4/5, e-MUCS).
    Arc,
    /// CRC-16/X25 (Holley).
    X25,
    /// No CRC (DSMR 2.2/3): the telegram ends `!` CR LF.
    None,
}

/// How a number is written: `F<digits>(<dec>,<dec>)` (fixed point, zero padded) or `I<width>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumFormat {
    /// Digits before the decimal point (zero padded).
    pub int_digits: u8,
    /// Digits after the decimal point.
    pub decimals: u8,
}

impl NumFormat {
    /// Parses `F9(3,3)`, `F5(0,0)`, `I5`.
    pub fn parse(s: &str) -> Option<NumFormat> {
        if let Some(w) = s.strip_prefix('I') {
            let w: u8 = w.parse().ok()?;
            return (1..=18).contains(&w).then_some(NumFormat { int_digits: w, decimals: 0 });
        }
        let rest = s.strip_prefix('F')?;
        let (n, rest) = rest.split_once('(')?;
        let (a, b) = rest.strip_suffix(')')?.split_once(',')?;
        let n: u8 = n.parse().ok()?;
        let a: u8 = a.parse().ok()?;
        let b: u8 = b.parse().ok()?;
        (a == b && a < n && n <= 18).then_some(NumFormat { int_digits: n - a, decimals: a })
    }
}

/// The model quantity an object reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// `0-0:1.0.0` date-time stamp.
    Timestamp,
    /// The equipment identifier, hex encoded.
    EquipmentId,
    /// Energy import register for tariff 1 or 2 (index 0/1).
    EnergyImport(u8),
    /// Energy export register for tariff 1 or 2.
    EnergyExport(u8),
    /// Total import (sum of tariffs).
    EnergyImportTotal,
    /// Total export.
    EnergyExportTotal,
    /// Reactive energy import/export totals (kvarh), derived from the power factor.
    ReactiveImport,
    /// Reactive energy exported.
    ReactiveExport,
    /// Tariff indicator.
    Tariff,
    /// Total import power.
    PowerImport,
    /// Total export power.
    PowerExport,
    /// Number of power failures in any phase.
    PowerFailures,
    /// Number of long power failures in any phase.
    LongPowerFailures,
    /// The long power failure event log.
    FailureLog,
    /// Voltage sags on phase 0..2.
    Sags(u8),
    /// Voltage swells on phase 0..2.
    Swells(u8),
    /// Instantaneous voltage.
    Voltage(u8),
    /// Instantaneous current.
    Current(u8),
    /// Per-phase import power.
    PhaseImport(u8),
    /// Per-phase export power.
    PhaseExport(u8),
    /// Grid frequency (Hz).
    Frequency,
    /// Power factor.
    PowerFactor,
    /// M-Bus device type (channel from the OBIS B group).
    MbusType,
    /// M-Bus equipment identifier.
    MbusId,
    /// M-Bus reading with its capture timestamp.
    MbusReading,
    /// DSMR 2.2/3 M-Bus profile line with the reading on the next line.
    MbusReadingLegacy,
    /// e-MUCS 1.4.0 current average demand.
    AverageDemand,
    /// e-MUCS 1.6.0 maximum demand of the running month.
    MaxDemandMonth,
    /// e-MUCS 98.1.0 maximum demand of the last 13 months.
    MaxDemandHistory,
}

impl Source {
    fn parse(s: &str) -> Option<Source> {
        let phase = |p: &str| -> Option<u8> {
            match p {
                "l1" => Some(0),
                "l2" => Some(1),
                "l3" => Some(2),
                _ => None,
            }
        };
        if let Some((base, p)) = s.rsplit_once('_')
            && let Some(p) = phase(p)
        {
            {
                return match base {
                    "sags" => Some(Source::Sags(p)),
                    "swells" => Some(Source::Swells(p)),
                    "voltage" => Some(Source::Voltage(p)),
                    "current" => Some(Source::Current(p)),
                    "power_import" => Some(Source::PhaseImport(p)),
                    "power_export" => Some(Source::PhaseExport(p)),
                    _ => None,
                };
            }
        }
        Some(match s {
            "timestamp" => Source::Timestamp,
            "equipment_id" => Source::EquipmentId,
            "energy_import_t1" => Source::EnergyImport(0),
            "energy_import_t2" => Source::EnergyImport(1),
            "energy_export_t1" => Source::EnergyExport(0),
            "energy_export_t2" => Source::EnergyExport(1),
            "energy_import_total" => Source::EnergyImportTotal,
            "energy_export_total" => Source::EnergyExportTotal,
            "reactive_import_total" => Source::ReactiveImport,
            "reactive_export_total" => Source::ReactiveExport,
            "tariff" => Source::Tariff,
            "power_import" => Source::PowerImport,
            "power_export" => Source::PowerExport,
            "power_failures" => Source::PowerFailures,
            "long_power_failures" => Source::LongPowerFailures,
            "failure_log" => Source::FailureLog,
            "frequency" => Source::Frequency,
            "power_factor" => Source::PowerFactor,
            "mbus_type" => Source::MbusType,
            "mbus_id" => Source::MbusId,
            "mbus_reading" => Source::MbusReading,
            "mbus_reading_legacy" => Source::MbusReadingLegacy,
            "average_demand" => Source::AverageDemand,
            "max_demand_month" => Source::MaxDemandMonth,
            "max_demand_history" => Source::MaxDemandHistory,
            _ => return None,
        })
    }

    /// Whether this source needs a number format.
    fn numeric(self) -> bool {
        !matches!(
            self,
            Source::Timestamp | Source::EquipmentId | Source::FailureLog | Source::MbusId | Source::Tariff
        )
    }

    fn phase(self) -> Option<u8> {
        match self {
            Source::Sags(p)
            | Source::Swells(p)
            | Source::Voltage(p)
            | Source::Current(p)
            | Source::PhaseImport(p)
            | Source::PhaseExport(p) => Some(p),
            _ => None,
        }
    }

    fn is_mbus(self) -> bool {
        matches!(self, Source::MbusType | Source::MbusId | Source::MbusReading | Source::MbusReadingLegacy)
    }

    /// Units this source may be written in.
    fn units(self) -> &'static [&'static str] {
        match self {
            Source::EnergyImport(_)
            | Source::EnergyExport(_)
            | Source::EnergyImportTotal
            | Source::EnergyExportTotal => &["kWh", "Wh"],
            Source::ReactiveImport | Source::ReactiveExport => &["kvarh", "varh"],
            Source::PowerImport
            | Source::PowerExport
            | Source::PhaseImport(_)
            | Source::PhaseExport(_)
            | Source::AverageDemand
            | Source::MaxDemandMonth
            | Source::MaxDemandHistory => &["kW", "W"],
            Source::Voltage(_) => &["V"],
            Source::Current(_) => &["A"],
            Source::Frequency => &["Hz"],
            Source::FailureLog => &["s"],
            Source::MbusReading | Source::MbusReadingLegacy => &["m3", "GJ", "kWh"],
            _ => &[""],
        }
    }
}

/// What one COSEM line carries.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectValue {
    /// Fixed text written verbatim between the parentheses (may be empty), e.g. `50`, `999.9*kW`.
    Const(String),
    /// A model quantity.
    Model {
        /// Which quantity.
        source: Source,
        /// Number format (numeric sources).
        format: Option<NumFormat>,
        /// Unit written after `*`; empty for none.
        unit: String,
    },
}

/// One COSEM line of the profile, in telegram order.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    /// OBIS reference as written, e.g. `1-0:1.8.1`.
    pub obis: String,
    /// M-Bus channel (OBIS B group) for M-Bus sources.
    pub channel: u8,
    /// What the line carries.
    pub value: ObjectValue,
}

/// Kind of M-Bus device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MbusKind {
    /// Gas meter (m3).
    Gas,
    /// Water meter (m3).
    Water,
    /// Heat meter (GJ).
    Heat,
}

/// An M-Bus device attached to the meter.
#[derive(Debug, Clone, PartialEq)]
pub struct MbusDevice {
    /// Channel 1..4 as installed.
    pub channel: u8,
    /// What it meters.
    pub kind: MbusKind,
    /// Device type code sent in `0-n:24.1.0` (3 gas, 7 water, 4 heat).
    pub type_code: u8,
    /// Equipment identifier (sent hex encoded).
    pub id: String,
    /// How often the reading and its capture time update, in seconds (300 in DSMR 5, 3600 in DSMR 4).
    pub update_s: u32,
    /// Seconds after the update boundary that the capture timestamp shows.
    pub capture_offset_s: u32,
    /// Whether this slot is paired but empty (AM550: type 3, empty id, 1970 timestamp, unitless zero).
    pub unused: bool,
}

/// Time-of-day tariff rule.
#[derive(Debug, Clone, PartialEq)]
pub struct TariffRule {
    /// Register (1 or 2) counting in the low-price period; the other counts the rest.
    pub low_register: u8,
    /// Low period start, minutes after local midnight.
    pub low_start_min: u32,
    /// Low period end, minutes after local midnight (may be < start: wraps midnight).
    pub low_end_min: u32,
    /// Whole weekends in the low period.
    pub weekend_low: bool,
}

/// Household model parameters (ranges are sampled once per seed).
#[derive(Debug, Clone, PartialEq)]
pub struct Household {
    /// Base load range in W.
    pub base_w: (f64, f64),
    /// PV peak power range in kWp (0 for none).
    pub pv_kwp: (f64, f64),
    /// Probability that the household has an EV charger.
    pub ev_probability: f64,
    /// Short and long power failures per day (mean rates).
    pub failures_per_day: f64,
    /// Fraction of failures that are long (>= 180 s).
    pub long_failure_fraction: f64,
    /// Voltage sag events per day per phase.
    pub sags_per_day: f64,
    /// Voltage swell events per day per phase.
    pub swells_per_day: f64,
    /// Nominal voltage.
    pub nominal_v: f64,
    /// Range of months of e-MUCS peak history present at the start.
    pub history_months: (u32, u32),
}

/// Power failure log layout.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureLogSpec {
    /// Newest entry first (DSMR 5.0.2 example) or oldest first (Iskra captures).
    pub newest_first: bool,
    /// At most this many entries (10 in the spec).
    pub max_entries: usize,
    /// What the meter sends with no entries: `()` (Iskra) or `(0)(0-0:96.7.19)`.
    pub empty_as_parens: bool,
}

/// A meter profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Short name (file stem).
    pub name: String,
    /// Where it came from (file path or `builtin:<name>`).
    pub origin: String,
    /// One-line description.
    pub description: String,
    /// Header after the `/` (e.g. `ISK5\2M550T-1012`).
    pub header: String,
    /// DSMR/e-MUCS version, informational (e.g. `5.0`).
    pub version: String,
    /// Whether an empty line follows the header.
    pub blank_line_after_header: bool,
    /// Checksum.
    pub crc: CrcMode,
    /// Line settings.
    pub line: LineSettings,
    /// Seconds between telegrams.
    pub interval_s: u32,
    /// 1 or 3.
    pub phases: u8,
    /// Clock zone.
    pub zone: Zone,
    /// Time-zone name as written.
    pub timezone: String,
    /// Whether timestamps carry the S/W flag.
    pub dst_flag: bool,
    /// Equipment identifier (sent hex encoded).
    pub equipment_id: String,
    /// Tariff rule.
    pub tariff: TariffRule,
    /// Household model.
    pub household: Household,
    /// Failure log layout.
    pub failure_log: FailureLogSpec,
    /// M-Bus devices.
    pub mbus: Vec<MbusDevice>,
    /// COSEM lines in order.
    pub objects: Vec<ObjectSpec>,
    /// Whether the continuous-stream quirk is on by default (AM550: streams while DR is held).
    pub continuous_stream: bool,
    /// Known quirks, free text, listed by `p1-sim profiles`.
    pub quirks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: String,
    header: Spanned<String>,
    version: String,
    #[serde(default = "yes")]
    blank_line_after_header: bool,
    crc: Spanned<String>,
    interval_s: Spanned<u32>,
    phases: Spanned<u8>,
    timezone: Spanned<String>,
    #[serde(default = "yes")]
    dst_flag: bool,
    equipment_id: String,
    line: RawLine,
    tariff: RawTariff,
    #[serde(default)]
    household: RawHousehold,
    #[serde(default)]
    failure_log: RawFailureLog,
    #[serde(default)]
    quirks: RawQuirks,
    #[serde(default)]
    mbus: Vec<RawMbus>,
    object: Vec<RawObject>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    baud: Spanned<u32>,
    data_bits: Spanned<u8>,
    parity: Parity,
    stop_bits: Spanned<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTariff {
    low_register: Spanned<u8>,
    low_hours: Spanned<Vec<String>>,
    weekend_low: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHousehold {
    base_w: Option<[f64; 2]>,
    pv_kwp: Option<[f64; 2]>,
    ev_probability: Option<f64>,
    failures_per_day: Option<f64>,
    long_failure_fraction: Option<f64>,
    sags_per_day: Option<f64>,
    swells_per_day: Option<f64>,
    nominal_v: Option<f64>,
    history_months: Option<[u32; 2]>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFailureLog {
    order: Option<Spanned<String>>,
    max_entries: Option<usize>,
    empty: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQuirks {
    #[serde(default)]
    continuous_stream: bool,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMbus {
    channel: Spanned<u8>,
    kind: MbusKind,
    type_code: u8,
    #[serde(default)]
    id: String,
    update_s: Spanned<u32>,
    #[serde(default)]
    capture_offset_s: u32,
    #[serde(default)]
    unused: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObject {
    obis: Spanned<String>,
    source: Option<Spanned<String>>,
    value: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    unit: Option<Spanned<String>>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) -> ProfileError {
        let (line, column) = line_col(self.text, span.start);
        ProfileError::Invalid { file: self.file.to_owned(), line, column, field: field.into(), message: message.into() }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Checks the `A-B:C.D.E` shape and returns the B group.
fn obis_channel(obis: &str) -> Option<u8> {
    let (a, rest) = obis.split_once('-')?;
    let (b, rest) = rest.split_once(':')?;
    let parts: Vec<&str> = rest.split('.').collect();
    let num = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|c| c.is_ascii_digit());
    (num(a) && num(b) && parts.len() == 3 && parts.iter().all(|p| num(p))).then(|| b.parse().ok()).flatten()
}

impl Profile {
    /// Loads a profile by built-in name or from a TOML file path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        let path = Path::new(name_or_path);
        if path.is_file() {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ProfileError::Io { file: name_or_path.to_owned(), source })?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("profile");
            return Profile::parse(stem, name_or_path, &text);
        }
        if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
            return Err(ProfileError::Io {
                file: name_or_path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        match BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            Some((n, text)) => Profile::parse(n, &format!("fixtures/profiles/{n}.toml"), text),
            None => Err(ProfileError::Unknown {
                name: name_or_path.to_owned(),
                known: BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Every built-in profile, parsed.
    pub fn builtins() -> Result<Vec<Profile>, ProfileError> {
        BUILTIN.iter().map(|(n, _)| Profile::load(n)).collect()
    }

    /// Parses profile TOML; `file` names the source in errors.
    pub fn parse(name: &str, file: &str, text: &str) -> Result<Profile, ProfileError> {
        let ctx = Ctx { file, text };
        let raw: RawProfile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_owned();
            let field = field_from_message(&msg).unwrap_or_else(|| key_at(text, span.start));
            ctx.err(span, field, msg)
        })?;

        let crc = match raw.crc.get_ref().as_str() {
            "arc" => CrcMode::Arc,
            "x25" => CrcMode::X25,
            "none" => CrcMode::None,
            other => return Err(ctx.err(raw.crc.span(), "crc", format!("`{other}` is not one of arc, x25, none"))),
        };
        let header = raw.header.get_ref();
        let hb = header.as_bytes();
        if hb.len() < 5 || !hb[..3].iter().all(u8::is_ascii_alphabetic) || header.contains(['\r', '\n', '!', '/'])
        {
            return Err(ctx.err(
                raw.header.span(),
                "header",
                "must start with three letters and the baud character (e.g. `ISK5\\2M550T-1012`) and hold no `/`, `!` or line break",
            ));
        }
        let interval_s = *raw.interval_s.get_ref();
        if interval_s == 0 || interval_s > 3600 {
            return Err(ctx.err(raw.interval_s.span(), "interval_s", "must be 1..=3600 seconds"));
        }
        let phases = *raw.phases.get_ref();
        if phases != 1 && phases != 3 {
            return Err(ctx.err(raw.phases.span(), "phases", "must be 1 or 3"));
        }
        let zone = Zone::parse(raw.timezone.get_ref()).ok_or_else(|| {
            ctx.err(raw.timezone.span(), "timezone", "supported: Europe/Amsterdam, Europe/Brussels, Europe/Luxembourg, CET, UTC")
        })?;
        let baud = *raw.line.baud.get_ref();
        if !(300..=4_000_000).contains(&baud) {
            return Err(ctx.err(raw.line.baud.span(), "line.baud", "must be 300..=4000000"));
        }
        let data_bits = *raw.line.data_bits.get_ref();
        if data_bits != 7 && data_bits != 8 {
            return Err(ctx.err(raw.line.data_bits.span(), "line.data_bits", "must be 7 or 8"));
        }
        let stop_bits = *raw.line.stop_bits.get_ref();
        if stop_bits != 1 && stop_bits != 2 {
            return Err(ctx.err(raw.line.stop_bits.span(), "line.stop_bits", "must be 1 or 2"));
        }
        let low_register = *raw.tariff.low_register.get_ref();
        if low_register != 1 && low_register != 2 {
            return Err(ctx.err(raw.tariff.low_register.span(), "tariff.low_register", "must be 1 or 2"));
        }
        let hours = raw.tariff.low_hours.get_ref();
        let (low_start_min, low_end_min) = match hours.as_slice() {
            [a, b] => match (parse_hhmm(a), parse_hhmm(b)) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(ctx.err(raw.tariff.low_hours.span(), "tariff.low_hours", "times must be \"HH:MM\"")),
            },
            _ => return Err(ctx.err(raw.tariff.low_hours.span(), "tariff.low_hours", "must be [\"HH:MM\", \"HH:MM\"]")),
        };

        let h = raw.household;
        let household = Household {
            base_w: h.base_w.map(|[a, b]| (a, b)).unwrap_or((70.0, 220.0)),
            pv_kwp: h.pv_kwp.map(|[a, b]| (a, b)).unwrap_or((0.0, 6.0)),
            ev_probability: h.ev_probability.unwrap_or(0.25),
            failures_per_day: h.failures_per_day.unwrap_or(0.3),
            long_failure_fraction: h.long_failure_fraction.unwrap_or(0.3),
            sags_per_day: h.sags_per_day.unwrap_or(1.0),
            swells_per_day: h.swells_per_day.unwrap_or(0.3),
            nominal_v: h.nominal_v.unwrap_or(230.0),
            history_months: h.history_months.map(|[a, b]| (a.min(13), b.min(13))).unwrap_or((0, 13)),
        };

        let failure_log = FailureLogSpec {
            newest_first: match &raw.failure_log.order {
                None => false,
                Some(o) => match o.get_ref().as_str() {
                    "newest_first" => true,
                    "oldest_first" => false,
                    _ => return Err(ctx.err(o.span(), "failure_log.order", "must be newest_first or oldest_first")),
                },
            },
            max_entries: raw.failure_log.max_entries.unwrap_or(10).min(10),
            empty_as_parens: match &raw.failure_log.empty {
                None => false,
                Some(e) => match e.get_ref().as_str() {
                    "()" => true,
                    "(0)(0-0:96.7.19)" => false,
                    _ => return Err(ctx.err(e.span(), "failure_log.empty", "must be \"()\" or \"(0)(0-0:96.7.19)\"")),
                },
            },
        };

        let mut mbus = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, m) in raw.mbus.into_iter().enumerate() {
            let ch = *m.channel.get_ref();
            if !(1..=4).contains(&ch) || !seen.insert(ch) {
                return Err(ctx.err(m.channel.span(), format!("mbus[{i}].channel"), "must be a distinct channel 1..=4"));
            }
            let update_s = *m.update_s.get_ref();
            if update_s == 0 || 86_400 % update_s != 0 {
                return Err(ctx.err(m.update_s.span(), format!("mbus[{i}].update_s"), "must divide a day (e.g. 300, 3600)"));
            }
            mbus.push(MbusDevice {
                channel: ch,
                kind: m.kind,
                type_code: m.type_code,
                id: m.id,
                update_s,
                capture_offset_s: m.capture_offset_s,
                unused: m.unused,
            });
        }

        let mut objects = Vec::new();
        for (i, o) in raw.object.into_iter().enumerate() {
            let field = |f: &str| format!("object[{i}].{f}");
            let obis = o.obis.get_ref().clone();
            let channel =
                obis_channel(&obis).ok_or_else(|| ctx.err(o.obis.span(), field("obis"), format!("`{obis}` is not an OBIS reference A-B:C.D.E")))?;
            let value = match (&o.source, &o.value) {
                (Some(_), Some(v)) => {
                    return Err(ctx.err(v.span(), field("value"), "give either `source` or `value`, not both"));
                }
                (None, Some(v)) => {
                    if o.format.is_some() || o.unit.is_some() {
                        return Err(ctx.err(o.obis.span(), field("value"), "a constant `value` takes no `format` or `unit`"));
                    }
                    if v.get_ref().contains(['(', ')', '\r', '\n']) {
                        return Err(ctx.err(v.span(), field("value"), "must not contain parentheses or line breaks"));
                    }
                    ObjectValue::Const(v.get_ref().clone())
                }
                (Some(s), None) => {
                    let source = Source::parse(s.get_ref())
                        .ok_or_else(|| ctx.err(s.span(), field("source"), format!("unknown source `{}`", s.get_ref())))?;
                    if let Some(p) = source.phase()
                        && p >= phases
                    {
                        return Err(ctx.err(s.span(), field("source"), format!("phase L{} on a {phases}-phase meter", p + 1)));
                    }
                    if source.is_mbus() && !mbus.iter().any(|m| m.channel == channel) {
                        return Err(ctx.err(o.obis.span(), field("obis"), format!("no [[mbus]] device on channel {channel}")));
                    }
                    let format = match (&o.format, source.numeric()) {
                        (Some(f), true) => Some(NumFormat::parse(f.get_ref()).ok_or_else(|| {
                            ctx.err(f.span(), field("format"), format!("`{}` is not F<n>(<d>,<d>) or I<n>", f.get_ref()))
                        })?),
                        (None, true) => {
                            return Err(ctx.err(s.span(), field("format"), format!("source `{}` needs a `format`", s.get_ref())));
                        }
                        (Some(f), false) => {
                            return Err(ctx.err(f.span(), field("format"), format!("source `{}` takes no `format`", s.get_ref())));
                        }
                        (None, false) => None,
                    };
                    let unit = o.unit.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default();
                    if !source.units().contains(&unit.as_str()) && !(source == Source::FailureLog && unit.is_empty()) {
                        let span = o.unit.as_ref().map(|u| u.span()).unwrap_or(s.span());
                        return Err(ctx.err(
                            span,
                            field("unit"),
                            format!("`{unit}` is not a unit for `{}` (allowed: {})", s.get_ref(), source.units().join(", ")),
                        ));
                    }
                    ObjectValue::Model { source, format, unit }
                }
                (None, None) => return Err(ctx.err(o.obis.span(), field("source"), "needs `source` or `value`")),
            };
            objects.push(ObjectSpec { obis, channel, value });
        }
        if objects.is_empty() {
            return Err(ctx.err(0..0, "object", "a profile needs at least one [[object]]"));
        }

        Ok(Profile {
            name: name.to_owned(),
            origin: file.to_owned(),
            description: raw.description,
            header: header.clone(),
            version: raw.version,
            blank_line_after_header: raw.blank_line_after_header,
            crc,
            line: LineSettings { baud, data_bits, parity: raw.line.parity, stop_bits },
            interval_s,
            phases,
            zone,
            timezone: raw.timezone.get_ref().clone(),
            dst_flag: raw.dst_flag,
            equipment_id: raw.equipment_id,
            tariff: TariffRule { low_register, low_start_min, low_end_min, weekend_low: raw.tariff.weekend_low },
            household,
            failure_log,
            mbus,
            objects,
            continuous_stream: raw.quirks.continuous_stream,
            quirks: raw.quirks.notes,
        })
    }

    /// Whether the profile sends any object of `source`.
    pub fn sends(&self, source: Source) -> bool {
        self.objects.iter().any(|o| matches!(&o.value, ObjectValue::Model { source: s, .. } if *s == source))
    }
}

fn field_from_message(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    (msg.contains("missing field") || msg.contains("unknown field")).then(|| msg[start..end].to_owned())
}

/// The key on the line holding `offset`, for serde errors that carry only a span.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    line.split('=').next().map(str::trim).filter(|k| !k.is_empty()).unwrap_or("(value)").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_loads() {
        for (name, _) in BUILTIN {
            let p = Profile::load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&p.name, name);
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!(NumFormat::parse("F9(3,3)"), Some(NumFormat { int_digits: 6, decimals: 3 }));
        assert_eq!(NumFormat::parse("F3(0,0)"), Some(NumFormat { int_digits: 3, decimals: 0 }));
        assert_eq!(NumFormat::parse("I5"), Some(NumFormat { int_digits: 5, decimals: 0 }));
        assert_eq!(NumFormat::parse("F3(3,3)"), None);
        assert_eq!(NumFormat::parse("X9"), None);
    }

    fn bad(text: &str) -> String {
        Profile::parse("t", "t.toml", text).expect_err("should fail").to_string()
    }

    const GOOD_HEAD: &str = r#"description = "t"
header = 'ABC5\x'
version = "5.0"
crc = "arc"
interval_s = 1
phases = 1
timezone = "Europe/Amsterdam"
equipment_id = "X"
[line]
baud = 115200
data_bits = 8
parity = "none"
stop_bits = 1
[tariff]
low_register = 1
low_hours = ["23:00", "07:00"]
weekend_low = true
"#;

    #[test]
    fn errors_name_file_line_and_field() {
        let tried = std::cell::Cell::new(0);
        let bad = |text: &str| {
            tried.set(tried.get() + 1);
            bad(text)
        };
        let text = format!("{GOOD_HEAD}[[object]]\nobis = \"1-0:1.8.1\"\nsource = \"energy_import_t1\"\nformat = \"F9(3,4)\"\nunit = \"kWh\"\n");
        assert_eq!(bad(&text), "t.toml:21:10: field `object[0].format`: `F9(3,4)` is not F<n>(<d>,<d>) or I<n>");
        let text = format!("{GOOD_HEAD}[[object]]\nobis = \"1-0:1.8.1\"\nsource = \"voltage_l2\"\nformat = \"F4(1,1)\"\nunit = \"V\"\n");
        assert_eq!(bad(&text), "t.toml:20:10: field `object[0].source`: phase L2 on a 1-phase meter");
        let text = GOOD_HEAD.replace("interval_s = 1", "interval_s = \"x\"");
        assert!(bad(&text).starts_with("t.toml:5:14: field `interval_s`"), "{}", bad(&text));
        let text = GOOD_HEAD.replace("crc = \"arc\"", "crc = \"md5\"");
        assert!(bad(&format!("{text}[[object]]\nobis=\"0-0:1.0.0\"\nsource=\"timestamp\"\n")).starts_with("t.toml:4:7: field `crc`"));
        let text = format!("{GOOD_HEAD}[[object]]\nobis = \"1-0:1.8\"\nvalue = \"1\"\n");
        assert!(bad(&text).starts_with("t.toml:19:8: field `object[0].obis`"), "{}", bad(&text));
        crate::hostile_inputs("simulator profiles", tried.get(), "simulator profile::tests::errors_name_file_line_and_field");
    }
}
