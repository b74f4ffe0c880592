//! Scenario files (`fixtures/scenarios/*.toml`): what the meter does, what happens around the
//! device, and what must be observed. Every field is checked when the file is loaded; an error names
//! the file, the line and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::Human;
use crate::toml_file::{self, FileError};

/// One scenario as written in its file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line saying what the scenario shows.
    pub description: String,
    /// Meter profile name (a file in `fixtures/profiles/`, without `.toml`).
    pub profile: String,
    /// Seed of the meter model and of the fault schedule.
    pub seed: u64,
    /// Length in meter time.
    pub duration: Human,
    /// Meter seconds per wall second; both the simulator and the device clock run this much faster.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Meter clock at the start, ISO 8601 with offset; the profile's default when absent.
    #[serde(default)]
    pub start: Option<String>,
    /// Wall-clock limit for the whole scenario; derived from duration and speed when absent.
    #[serde(default)]
    pub timeout: Option<Human>,
    /// Free-form labels shown by `cargo hil list`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether a plain `cargo hil sim` runs it. A long scenario (the soak) sets `false`: it runs
    /// when named (`cargo hil sim soak`) or with `-- --include-ignored`, and is listed as ignored.
    #[serde(default = "yes")]
    pub default_suite: bool,
    /// Snapshot name; the scenario name when absent.
    #[serde(default)]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub device: DeviceSection,
    /// Faults on the serial line, executed by the simulator.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Things that happen around the device, executed by the harness at meter times.
    #[serde(default)]
    pub events: Vec<Event>,
    /// A seeded random mix of faults and events (the soak).
    #[serde(default)]
    pub random: Option<RandomMix>,
    #[serde(default)]
    pub expect: Expect,
}

fn default_speed() -> f64 {
    1000.0
}

/// Settings of the virtual device for this scenario.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSection {
    /// Also publish raw telegrams to `<prefix>/<id>/telegram` (`--raw-telegrams`).
    #[serde(default)]
    pub raw_telegrams: bool,
    /// The P1 port the virtual device's power model is on (`--supply`): `dsmr5` (default),
    /// `dsmr4`, `none` or `omnia`. Not used on a rig, where the real port decides.
    #[serde(default)]
    pub supply: Option<simulator::power::SupplyKind>,
    /// Keys written to the device's `--config` TOML file, passed through unchanged
    /// (e.g. `ring_capacity`, `supply`, publish policy). The device validates them.
    #[serde(default)]
    pub config: toml::Table,
}

/// A fault on the serial line. `kind` must be one the simulator knows; the other fields are the
/// simulator's parameters for it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: String,
    /// Meter time of the first occurrence.
    pub at: Human,
    /// Repeat every this long (meter time), `count` times in all.
    #[serde(default)]
    pub every: Option<Human>,
    #[serde(default = "one")]
    pub count: u32,
    /// Kind-specific parameters, handed to the simulator.
    #[serde(default)]
    pub params: toml::Table,
}

fn one() -> u32 {
    1
}

/// An action the harness performs at a meter time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub at: Human,
    #[serde(rename = "do")]
    pub action: Action,
    /// Undo the action after this long (meter time): `wifi_down` for 5m means `wifi_up` 5 minutes later.
    #[serde(default, rename = "for")]
    pub for_: Option<Human>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The broker stops accepting the device (connections cut, new ones refused).
    BrokerDown,
    BrokerUp,
    /// The broker process is killed and started again (sessions and retained messages lost).
    BrokerRestart,
    /// The device's WiFi drops (`wifi down` on its stdin).
    WifiDown,
    WifiUp,
    /// The P1 5 V supply goes away (`supply unplug`).
    SupplyUnplug,
    SupplyPlug,
    /// The P1 cable is pulled: no bytes and no supply.
    P1Unplug,
    P1Plug,
    /// Harness self-test: the device process is killed.
    DeviceKill,
    /// Harness self-test: the meter side of the serial line is closed.
    PtyClose,
}

impl Action {
    /// The action that undoes this one, for `for = ...`.
    pub fn inverse(self) -> Option<Action> {
        use Action::*;
        Some(match self {
            BrokerDown => BrokerUp,
            WifiDown => WifiUp,
            SupplyUnplug => SupplyPlug,
            P1Unplug => P1Plug,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use Action::*;
        match self {
            BrokerDown => "broker_down",
            BrokerUp => "broker_up",
            BrokerRestart => "broker_restart",
            WifiDown => "wifi_down",
            WifiUp => "wifi_up",
            SupplyUnplug => "supply_unplug",
            SupplyPlug => "supply_plug",
            P1Unplug => "p1_unplug",
            P1Plug => "p1_plug",
            DeviceKill => "device_kill",
            PtyClose => "pty_close",
        }
    }
}

/// A seeded random schedule: rates per day of meter time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RandomMix {
    /// Serial-line faults per day, spread evenly over `fault_kinds`.
    #[serde(default)]
    pub faults_per_day: f64,
    /// Which simulator fault kinds to draw from; all of them when empty.
    #[serde(default)]
    pub fault_kinds: Vec<String>,
    /// Kinds drawn only when listed here (e.g. those that need special expectations).
    #[serde(default)]
    pub exclude_kinds: Vec<String>,
    #[serde(default)]
    pub broker_restarts_per_day: f64,
    #[serde(default)]
    pub broker_outages_per_day: f64,
    #[serde(default)]
    pub wifi_drops_per_day: f64,
    #[serde(default)]
    pub supply_trips_per_day: f64,
    /// Shortest and longest outage (meter time).
    #[serde(default = "default_outage_min")]
    pub outage_min: Human,
    #[serde(default = "default_outage_max")]
    pub outage_max: Human,
}

fn default_outage_min() -> Human {
    Human(Duration::from_secs(10))
}
fn default_outage_max() -> Human {
    Human(Duration::from_secs(600))
}

/// What must be observed. Absent sections are not checked, except the always-on checks
/// (no panic line, no reset, the device still running at the end).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Fail on any boot after the first, or on the device exiting early.
    #[serde(default = "yes")]
    pub no_resets: bool,
    /// Console substrings that must not appear (`panic` is always forbidden).
    #[serde(default)]
    pub console_forbid: Vec<String>,
    /// Console substrings that must each appear at least once.
    #[serde(default)]
    pub console_require: Vec<String>,
    /// Message counts per topic filter. Filters are relative to `<prefix>/<id>/` unless they start
    /// with `homeassistant/` or `/` (absolute).
    #[serde(default)]
    pub topics: BTreeMap<String, Count>,
    /// How readings must arrive.
    #[serde(default)]
    pub delivery: Option<Delivery>,
    /// Every delivered reading equals what the meter sent for that timestamp.
    #[serde(default)]
    pub values_match_meter: bool,
    #[serde(default)]
    pub latency: Option<Latency>,
    /// Diagnostic counters (fields of the last `diag` message).
    #[serde(default)]
    pub diag: BTreeMap<String, DiagBound>,
    #[serde(default)]
    pub power: Option<PowerBounds>,
}

fn yes() -> bool {
    true
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            no_resets: true,
            console_forbid: Vec::new(),
            console_require: Vec::new(),
            topics: BTreeMap::new(),
            delivery: None,
            values_match_meter: false,
            latency: None,
            diag: BTreeMap::new(),
            power: None,
        }
    }
}

/// A count: exact, a range, or tied to what the meter sent.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Count {
    #[serde(default)]
    pub eq: Option<CountValue>,
    #[serde(default)]
    pub min: Option<CountValue>,
    #[serde(default)]
    pub max: Option<CountValue>,
}

/// A number, or a name the harness resolves: `sent` (intact readings the meter sent),
/// `telegrams` (all telegrams sent), `injected:<kind>[+<kind>...]` (faults of those kinds injected).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum CountValue {
    N(u64),
    Named(String),
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Every intact reading delivered exactly once, in order; none dropped.
    ExactlyOnceInOrder,
    /// Every reading delivered at most once, in order, and delivered + dropped == sent.
    Accounted,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Upper bounds in wall milliseconds, from the last byte on the line to the capture client.
    #[serde(default)]
    pub p50_ms_max: Option<f64>,
    #[serde(default)]
    pub p99_ms_max: Option<f64>,
    /// Only readings delivered live (not replayed from the ring) count.
    #[serde(default = "yes")]
    pub live_only: bool,
}

/// A bound on one diagnostic counter.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiagBound {
    #[serde(default)]
    pub eq: Option<CountValue>,
    #[serde(default)]
    pub min: Option<CountValue>,
    #[serde(default)]
    pub max: Option<CountValue>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PowerBounds {
    #[serde(default)]
    pub acin_ma_peak_max: Option<f64>,
    #[serde(default)]
    pub trips: Option<u64>,
    #[serde(default)]
    pub brownouts: Option<u64>,
    #[serde(default)]
    pub soc_min: Option<f64>,
    #[serde(default)]
    pub soc_max: Option<f64>,
    /// Minimum number of power samples, so that "no trips" is not vacuous.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// Allowed relative deviation when values come from a real device's AXP192 lines (`run --rig`).
    #[serde(default = "default_tolerance")]
    pub rig_tolerance: f64,
}

fn default_min_samples() -> u64 {
    1
}
fn default_tolerance() -> f64 {
    0.15
}

/// A scenario with its name and source, validated.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub name: String,
    pub path: PathBuf,
    pub scenario: Scenario,
}

impl Loaded {
    pub fn snapshot_name(&self) -> &str {
        self.scenario.snapshot.as_deref().unwrap_or(&self.name)
    }

    /// Wall-clock budget: the given timeout, or 3 × the virtual run time + 30 s.
    pub fn wall_timeout(&self) -> Duration {
        match self.scenario.timeout {
            Some(t) => t.0,
            None => Duration::from_secs_f64(self.scenario.duration.as_secs_f64() / self.scenario.speed * 3.0 + 30.0),
        }
    }
}

/// Which fault kinds exist, and which profiles; supplied by the simulator so the two never drift.
pub trait Catalogue {
    fn fault_kinds(&self) -> Vec<String>;
    fn profile_exists(&self, name: &str) -> bool;
}

/// Fault parameters the simulator reads (`FaultParams`).
pub const FAULT_PARAMS: &[&str] = &["bytes", "gap_ms", "chunks", "seconds", "baud"];

/// Loads and validates one file.
pub fn load(path: &Path, catalogue: &dyn Catalogue) -> anyhow::Result<Loaded> {
    let (scenario, text): (Scenario, String) = toml_file::load(path)?;
    validate(path, &text, &scenario, catalogue)?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| anyhow::anyhow!("{}: file name is not UTF-8", path.display()))?
        .to_string();
    Ok(Loaded { name, path: path.to_path_buf(), scenario })
}

/// Loads every `*.toml` in `dir` (except `quarantine.toml`), sorted by name. All errors are reported, not just the first.
pub fn load_dir(dir: &Path, catalogue: &dyn Catalogue) -> anyhow::Result<Vec<Loaded>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| p.file_name().is_none_or(|n| n != "quarantine.toml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in &paths {
        match load(p, catalogue) {
            Ok(s) => out.push(s),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{} bad scenario file(s):\n{}", errors.len(), errors.join("\n"));
    }
    Ok(out)
}

pub fn validate(path: &Path, text: &str, s: &Scenario, catalogue: &dyn Catalogue) -> Result<(), FileError> {
    let bad = |field: &str, msg: String| Err(toml_file::invalid(path, text, field, msg));
    if s.description.trim().is_empty() {
        return bad("description", "must say what the scenario shows".into());
    }
    if !catalogue.profile_exists(&s.profile) {
        return bad("profile", format!("unknown meter profile `{}` (see `p1-sim profiles`)", s.profile));
    }
    if s.duration.0.is_zero() {
        return bad("duration", "must be longer than 0s".into());
    }
    if !(s.speed.is_finite() && s.speed > 0.0 && s.speed <= 1_000_000.0) {
        return bad("speed", format!("{} is not a speed factor in (0, 1000000]", s.speed));
    }
    if let Some(t) = s.timeout
        && t.0.is_zero()
    {
        return bad("timeout", "must be longer than 0s".into());
    }
    let kinds = catalogue.fault_kinds();
    for (i, f) in s.faults.iter().enumerate() {
        if !kinds.contains(&f.kind) {
            return bad(&format!("faults[{i}].kind"), format!("unknown fault kind `{}`; known: {}", f.kind, kinds.join(", ")));
        }
        if f.at.0 > s.duration.0 {
            return bad(&format!("faults[{i}].at"), format!("{} is after the end of the scenario ({})", f.at, s.duration));
        }
        if f.count == 0 {
            return bad(&format!("faults[{i}].count"), "must be at least 1".into());
        }
        for key in f.params.keys() {
            if !FAULT_PARAMS.contains(&key.as_str()) {
                return bad(&format!("faults[{i}].params.{key}"), format!("unknown fault parameter; known: {}", FAULT_PARAMS.join(", ")));
            }
        }
        if f.count > 1 && f.every.is_none_or(|e| e.0.is_zero()) {
            return bad(&format!("faults[{i}].every"), "a repeated fault (count > 1) needs `every` > 0s".into());
        }
    }
    for (i, e) in s.events.iter().enumerate() {
        if e.at.0 > s.duration.0 {
            return bad(&format!("events[{i}].at"), format!("{} is after the end of the scenario ({})", e.at, s.duration));
        }
        if e.for_.is_some() && e.action.inverse().is_none() {
            return bad(&format!("events[{i}].for"), format!("`{}` cannot be undone; remove `for`", e.action.name()));
        }
    }
    if let Some(r) = &s.random {
        for (field, v) in [
            ("faults_per_day", r.faults_per_day),
            ("broker_restarts_per_day", r.broker_restarts_per_day),
            ("broker_outages_per_day", r.broker_outages_per_day),
            ("wifi_drops_per_day", r.wifi_drops_per_day),
            ("supply_trips_per_day", r.supply_trips_per_day),
        ] {
            if !(v.is_finite() && (0.0..=100_000.0).contains(&v)) {
                return bad(&format!("random.{field}"), format!("{v} is not a rate per day in [0, 100000]"));
            }
        }
        for (i, k) in r.fault_kinds.iter().enumerate() {
            if !kinds.contains(k) {
                return bad(&format!("random.fault_kinds[{i}]"), format!("unknown fault kind `{k}`; known: {}", kinds.join(", ")));
            }
        }
        for (i, k) in r.exclude_kinds.iter().enumerate() {
            if !kinds.contains(k) {
                return bad(&format!("random.exclude_kinds[{i}]"), format!("unknown fault kind `{k}`; known: {}", kinds.join(", ")));
            }
        }
        if r.outage_min > r.outage_max {
            return bad("random.outage_min", format!("{} is longer than outage_max {}", r.outage_min, r.outage_max));
        }
    }
    let x = &s.expect;
    for (filter, c) in &x.topics {
        check_count(path, text, &format!("expect.topics.{filter}"), c.eq.as_ref(), c.min.as_ref(), c.max.as_ref(), &kinds)?;
    }
    for (field, c) in &x.diag {
        check_count(path, text, &format!("expect.diag.{field}"), c.eq.as_ref(), c.min.as_ref(), c.max.as_ref(), &kinds)?;
    }
    if let Some(l) = &x.latency {
        for (f, v) in [("p50_ms_max", l.p50_ms_max), ("p99_ms_max", l.p99_ms_max)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return bad(&format!("expect.latency.{f}"), format!("{v} is not a positive number of milliseconds"));
            }
        }
    }
    if let Some(p) = &x.power {
        for (f, v) in [("soc_min", p.soc_min), ("soc_max", p.soc_max)] {
            if let Some(v) = v
                && !(0.0..=100.0).contains(&v)
            {
                return bad(&format!("expect.power.{f}"), format!("{v} is not a percentage"));
            }
        }
        if let (Some(a), Some(b)) = (p.soc_min, p.soc_max)
            && a > b
        {
            return bad("expect.power.soc_min", format!("{a} is above soc_max {b}"));
        }
        if !(0.0..1.0).contains(&p.rig_tolerance) {
            return bad("expect.power.rig_tolerance", format!("{} is not a fraction in [0, 1)", p.rig_tolerance));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_count(
    path: &Path,
    text: &str,
    field: &str,
    eq: Option<&CountValue>,
    min: Option<&CountValue>,
    max: Option<&CountValue>,
    kinds: &[String],
) -> Result<(), FileError> {
    if eq.is_none() && min.is_none() && max.is_none() {
        return Err(toml_file::invalid(path, text, field, "give at least one of eq, min, max"));
    }
    if eq.is_some() && (min.is_some() || max.is_some()) {
        return Err(toml_file::invalid(path, text, field, "use either eq or min/max"));
    }
    for (sub, v) in [("eq", eq), ("min", min), ("max", max)] {
        if let Some(CountValue::Named(name)) = v
            && let Err(msg) = check_name(name, kinds)
        {
            return Err(toml_file::invalid(path, text, &format!("{field}.{sub}"), msg));
        }
    }
    Ok(())
}

fn check_name(name: &str, kinds: &[String]) -> Result<(), String> {
    match name {
        "sent" | "telegrams" | "dropped" => Ok(()),
        _ => match name.strip_prefix("injected:") {
            Some(list) => {
                for k in list.split('+') {
                    if !kinds.iter().any(|x| x == k) {
                        return Err(format!("`{name}`: unknown fault kind `{k}`; known: {}", kinds.join(", ")));
                    }
                }
                Ok(())
            }
            None => Err(format!("`{name}` is not a count: use a number, `sent`, `telegrams`, `dropped` or `injected:<kind>[+<kind>]`")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cat;
    impl Catalogue for Cat {
        fn fault_kinds(&self) -> Vec<String> {
            vec!["crc".into(), "truncate".into()]
        }
        fn profile_exists(&self, name: &str) -> bool {
            name == "iskra-am550-td2"
        }
    }

    const GOOD: &str = r#"
description = "a day"
profile = "iskra-am550-td2"
seed = 1
duration = "24h"
speed = 5000

[[faults]]
kind = "crc"
at = "1h"
every = "1h"
count = 3

[[events]]
at = "2h"
do = "wifi_down"
for = "5m"

[expect]
console_forbid = ["brownout"]
values_match_meter = true
delivery = "exactly_once_in_order"
[expect.topics.state]
eq = "sent"
[expect.diag.crc_errors]
eq = "injected:crc"
[expect.power]
trips = 0
soc_min = 50.0
"#;

    fn check(text: &str) -> Result<Scenario, FileError> {
        let path = Path::new("fixtures/scenarios/x.toml");
        let s: Scenario = toml_file::parse(path, text)?;
        validate(path, text, &s, &Cat)?;
        Ok(s)
    }

    #[track_caller]
    fn fails(text: &str, line: usize, field: &str, msg: &str) {
        let e = check(text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
        assert!(e.message.contains(msg), "{e}");
        assert!(e.to_string().starts_with(&format!("fixtures/scenarios/x.toml:{line}:")), "{e}");
    }

    #[test]
    fn a_good_file_loads() {
        let s = check(GOOD).unwrap();
        assert_eq!(s.faults[0].count, 3);
        assert_eq!(s.events[0].action.inverse(), Some(Action::WifiUp));
        assert!(s.expect.no_resets);
    }

    #[test]
    fn each_bad_field_is_named_with_its_line() {
        let tried = std::cell::Cell::new(0);
        let fails = |text: &str, line: usize, field: &str, msg: &str| {
            tried.set(tried.get() + 1);
            fails(text, line, field, msg)
        };
        fails(&GOOD.replace("kind = \"crc\"", "kind = \"crcc\""), 9, "faults[0].kind", "unknown fault kind `crcc`");
        fails(&GOOD.replace("do = \"wifi_down\"", "do = \"wifi_off\""), 16, "events[0].do", "unknown variant `wifi_off`");
        fails(&GOOD.replace("duration = \"24h\"", "duration = \"24\""), 5, "duration", "missing unit");
        fails(&GOOD.replace("speed = 5000", "speed = -1"), 6, "speed", "not a speed factor");
        fails(&GOOD.replace("profile = \"iskra-am550-td2\"", "profile = \"nope\""), 3, "profile", "unknown meter profile");
        fails(&GOOD.replace("at = \"1h\"", "at = \"2d\""), 10, "faults[0].at", "after the end");
        fails(&GOOD.replace("eq = \"injected:crc\"", "eq = \"injected:crc+bogus\""), 26, "expect.diag.crc_errors.eq", "unknown fault kind `bogus`");
        fails(&GOOD.replace("eq = \"sent\"", "eq = \"lots\""), 24, "expect.topics.state.eq", "not a count");
        fails(&GOOD.replace("trips = 0", "trips = 0\ntrip = 1"), 29, "expect.power.trip", "unknown field `trip`");
        fails(&GOOD.replace("soc_min = 50.0", "soc_min = 150.0"), 29, "expect.power.soc_min", "not a percentage");
        fails(&GOOD.replace("do = \"wifi_down\"", "do = \"broker_restart\""), 17, "events[0].for", "cannot be undone");
        fails(&GOOD.replace("count = 3", "count = 3\nevery_x = 1"), 13, "faults[0].every_x", "unknown field `every_x`");
        fails(&GOOD.replace("count = 3", "count = 3\nparams = { byts = 3 }"), 13, "faults[0].params.byts", "unknown fault parameter");
        hostile_inputs("scenario files", tried.get(), "hil scenario::tests::each_bad_field_is_named_with_its_line");
    }

    /// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
    fn hostile_inputs(category: &str, count: usize, test: &str) {
        if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
            f.write_all(format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
        }
    }
}
