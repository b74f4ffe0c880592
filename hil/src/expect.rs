//! Expectations checked against what a scenario saw, and the normalised observation that is
//! snapshot-compared. Every failed check is one line saying what was expected and what was seen.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::matches;
use crate::observe::{Ledger, Observer, percentile};
use crate::scenario::{CountValue, Delivery, Expect};

/// Facts about the run that are not in the observer.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// The device exited before the end (its status), or `None` if it ran to the end.
    pub device_exit: Option<String>,
    pub peak_rss_kib: u64,
    pub wall_s: f64,
    pub meter_s: f64,
    /// Harness-side problems (a wait that timed out, a line that closed).
    pub harness_errors: Vec<String>,
    /// Times the meter waited for the device to catch up, and the wall time spent waiting.
    pub throttle_stalls: u64,
    pub throttle_s: f64,
}

/// Figures for the report line and the HTML report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub telegrams: u64,
    pub sent: u64,
    pub delivered: u64,
    pub dropped: Option<u64>,
    pub duplicates: u64,
    /// QoS 1 redeliveries after a reconnect (part of `duplicates`).
    pub redeliveries: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub meter_s: f64,
    pub wall_s: f64,
    pub speedup: f64,
    pub peak_rss_kib: u64,
    pub ring_high_water: Option<u64>,
    pub injected: BTreeMap<String, u64>,
    pub power_samples: usize,
    pub acin_ma_peak: Option<f64>,
    pub trips: Option<u64>,
    pub throttle_stalls: u64,
    pub throttle_s: f64,
}

/// A diag counter, or the sum of several written `a+b`.
fn diag_u64(o: &Observer, field: &str) -> Option<u64> {
    let d = o.last_diag.as_ref()?;
    field.split('+').map(|f| d.get(f.trim()).and_then(|v| v.as_u64())).sum()
}

fn resolve(v: &CountValue, o: &Observer, l: &Ledger) -> Result<u64, String> {
    match v {
        CountValue::N(n) => Ok(*n),
        CountValue::Named(name) => match name.as_str() {
            "sent" => Ok(l.deliverable()),
            "telegrams" => Ok(l.telegrams),
            "dropped" => diag_u64(o, "ring_dropped").ok_or_else(|| "no `ring_dropped` in the last diag message".to_string()),
            other => {
                let list = other.strip_prefix("injected:").ok_or_else(|| format!("bad count `{other}`"))?;
                Ok(list.split('+').map(|k| l.injected.get(k).copied().unwrap_or(0)).sum())
            }
        },
    }
}

fn check_bounds(
    what: &str,
    got: u64,
    eq: Option<&CountValue>,
    min: Option<&CountValue>,
    max: Option<&CountValue>,
    o: &Observer,
    l: &Ledger,
    fails: &mut Vec<String>,
) {
    let mut one = |op: &str, v: Option<&CountValue>, ok: fn(u64, u64) -> bool| {
        if let Some(v) = v {
            match resolve(v, o, l) {
                Ok(want) if ok(got, want) => {}
                Ok(want) => fails.push(format!("{what}: expected {op} {want} ({}), got {got}", show(v))),
                Err(e) => fails.push(format!("{what}: {e}")),
            }
        }
    };
    one("==", eq, |g, w| g == w);
    one(">=", min, |g, w| g >= w);
    one("<=", max, |g, w| g <= w);
}

fn show(v: &CountValue) -> String {
    match v {
        CountValue::N(n) => n.to_string(),
        CountValue::Named(s) => s.clone(),
    }
}

pub fn figures(o: &Observer, l: &Ledger, f: &RunFacts) -> Figures {
    let mut lat: Vec<f64> = l.entries.iter().filter_map(|e| e.latency_ms()).collect();
    Figures {
        telegrams: l.telegrams,
        sent: l.deliverable(),
        delivered: o.delivered_order.len() as u64,
        dropped: diag_u64(o, "ring_dropped"),
        duplicates: o.duplicates,
        redeliveries: o.redeliveries,
        latency_p50_ms: percentile(&mut lat, 50.0),
        latency_p99_ms: percentile(&mut lat, 99.0),
        meter_s: f.meter_s,
        wall_s: f.wall_s,
        speedup: if f.wall_s > 0.0 { f.meter_s / f.wall_s } else { 0.0 },
        peak_rss_kib: f.peak_rss_kib,
        ring_high_water: diag_u64(o, "queue_high_water"),
        injected: l.injected.clone(),
        power_samples: o.power.len(),
        acin_ma_peak: o.power.iter().map(|p| p.acin_ma).reduce(f64::max),
        trips: o.power.last().and_then(|p| p.trips),
        throttle_stalls: f.throttle_stalls,
        throttle_s: f.throttle_s,
    }
}

/// Checks every expectation; an empty list means the scenario passed.
pub fn check(x: &Expect, o: &Observer, l: &Ledger, f: &RunFacts, fig: &Figures) -> Vec<String> {
    let mut fails: Vec<String> = f.harness_errors.clone();
    if x.no_resets {
        if let Some(exit) = &f.device_exit {
            fails.push(format!("the device exited during the scenario ({exit})"));
        }
        if o.boots.len() > 1 {
            fails.push(format!("the device booted {} times (a reset): {}", o.boots.len(), o.boots.join(" | ")));
        }
    }
    if o.boots.is_empty() {
        fails.push("no boot line (`ev=boot`) on the console".into());
    }
    for h in &o.forbidden_hits {
        fails.push(format!("forbidden console text: {h}"));
    }
    for l in &o.leaks {
        fails.push(format!("credential leak: {l}"));
    }
    for (i, seen) in o.required_seen.iter().enumerate() {
        if !seen {
            fails.push(format!("console never showed `{}`", o.require[i]));
        }
    }
    for b in &o.bad_json {
        fails.push(format!("payload is not JSON: {b}"));
    }
    for (filter, c) in &x.topics {
        let full = if filter.starts_with("homeassistant/") {
            filter.clone()
        } else if let Some(abs) = filter.strip_prefix('/') {
            abs.to_string()
        } else {
            format!("{}{filter}", o.root)
        };
        let got: u64 = o
            .topics
            .iter()
            .filter(|(t, _)| matches(&full, t))
            .map(|(_, n)| *n)
            .sum();
        // QoS 1 redeliveries after a reconnect are the protocol's at-least-once, not extra readings.
        let state_topic = format!("{}state", o.root);
        let got = if matches(&full, &state_topic) { got - o.redeliveries.min(got) } else { got };
        check_bounds(&format!("messages on `{filter}`"), got, c.eq.as_ref(), c.min.as_ref(), c.max.as_ref(), o, l, &mut fails);
    }
    if let Some(d) = x.delivery {
        let missing: Vec<&crate::observe::Sent> = l.entries.iter().filter(|e| e.deliverable && e.delivered == 0).collect();
        let real_duplicates = o.duplicates - o.redeliveries;
        if real_duplicates > 0 {
            fails.push(format!("{real_duplicates} reading(s) delivered more than once without a reconnect in between"));
        }
        if o.out_of_order > 0 {
            fails.push(format!("{} reading(s) delivered out of order", o.out_of_order));
        }
        for u in &o.unknown_readings {
            fails.push(format!("a reading the meter never sent intact: {u}"));
        }
        let corrupted_published = l.entries.iter().filter(|e| !e.deliverable && e.delivered > 0).count();
        if corrupted_published > 0 {
            fails.push(format!("{corrupted_published} corrupted telegram(s) were published"));
        }
        let first_missing = || missing.first().and_then(|e| e.ts.clone()).unwrap_or_default();
        match d {
            Delivery::ExactlyOnceInOrder => {
                if !missing.is_empty() {
                    fails.push(format!("{} of {} intact readings never arrived (first: {})", missing.len(), fig.sent, first_missing()));
                }
                if let Some(dr) = fig.dropped
                    && dr > 0
                {
                    fails.push(format!("the ring dropped {dr} reading(s)"));
                }
            }
            // The device never evicts a reading it has published without a PUBACK (the broker may
            // have it), so its drop counter counts exactly the readings that never arrived.
            Delivery::Accounted => match fig.dropped {
                Some(dropped) => {
                    let missing = missing.len() as u64;
                    let over = dropped.saturating_sub(missing);
                    if missing > dropped {
                        fails.push(format!(
                            "{missing} reading(s) never arrived but the device counts only {dropped} dropped (delivered {} of {} sent; first missing: {})",
                            fig.delivered,
                            fig.sent,
                            first_missing()
                        ));
                    } else if over > 0 {
                        fails.push(format!("the device counts {dropped} dropped but only {missing} never arrived: {over} over-counted"));
                    }
                }
                None => fails.push("no `ring_dropped` counter in the last diag message".into()),
            },
        }
    }
    if x.values_match_meter {
        if fig.delivered == 0 {
            fails.push("no reading arrived to compare with the meter".into());
        }
        if o.mismatch_count > 0 {
            fails.push(format!("{} reading(s) differ from what the meter sent: {}", o.mismatch_count, o.mismatches.join("; ")));
        }
    }
    if let Some(lb) = &x.latency {
        for (name, got, max) in [("p50", fig.latency_p50_ms, lb.p50_ms_max), ("p99", fig.latency_p99_ms, lb.p99_ms_max)] {
            if let Some(max) = max {
                match got {
                    Some(g) if g <= max => {}
                    Some(g) => fails.push(format!("latency {name} {g:.2} ms is above {max} ms")),
                    None => fails.push(format!("latency {name}: no live reading to measure")),
                }
            }
        }
    }
    for (field, b) in &x.diag {
        match diag_u64(o, field) {
            Some(got) => check_bounds(&format!("diag `{field}`"), got, b.eq.as_ref(), b.min.as_ref(), b.max.as_ref(), o, l, &mut fails),
            None => fails.push(format!("diag `{field}`: not in the last diag message ({})", o.last_diag.as_ref().map_or("no diag message arrived".into(), |d| d.to_string()))),
        }
    }
    if let Some(p) = &x.power {
        if (o.power.len() as u64) < p.min_samples {
            fails.push(format!("power: {} sample(s), expected at least {}", o.power.len(), p.min_samples));
        }
        if let (Some(max), Some(peak)) = (p.acin_ma_peak_max, fig.acin_ma_peak)
            && peak > max
        {
            fails.push(format!("power: peak ACIN {peak} mA is above {max} mA"));
        }
        let last = o.power.last();
        for (name, want, got) in [("trips", p.trips, last.and_then(|s| s.trips)), ("brownouts", p.brownouts, last.and_then(|s| s.brownouts))] {
            if let Some(want) = want {
                match got {
                    Some(g) if g == want => {}
                    Some(g) => fails.push(format!("power: {name} == {g}, expected {want}")),
                    None => fails.push(format!("power: no `{name}` on the power console lines")),
                }
            }
        }
        let socs: Vec<f64> = o.power.iter().filter_map(|s| s.battery_pct).collect();
        if p.soc_min.is_some() || p.soc_max.is_some() {
            if socs.is_empty() {
                fails.push("power: no battery percentage on the power console lines".into());
            }
            let lo = socs.iter().copied().reduce(f64::min);
            let hi = socs.iter().copied().reduce(f64::max);
            if let (Some(min), Some(lo)) = (p.soc_min, lo)
                && lo < min
            {
                fails.push(format!("power: battery fell to {lo} %, below {min} %"));
            }
            if let (Some(max), Some(hi)) = (p.soc_max, hi)
                && hi > max
            {
                fails.push(format!("power: battery rose to {hi} %, above {max} %"));
            }
        }
    }
    fails
}

/// The normalised observation: deterministic for a given seed, so it can be snapshot-compared.
/// Wall-clock values (latency, uptime, RSS, heap, power samples whose timing follows the wall
/// clock) are left out; the expectations bound those instead.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub scenario: String,
    pub profile: String,
    pub seed: u64,
    pub meter_time: String,
    pub telegrams: u64,
    pub faults_injected: BTreeMap<String, u64>,
    pub readings: Readings,
    pub diag: BTreeMap<String, serde_json::Value>,
    pub topics: BTreeMap<String, String>,
    pub discovery: Vec<String>,
    pub status: Vec<String>,
    pub console_errors: BTreeMap<String, u64>,
    pub boots: usize,
    pub power: Option<PowerSummary>,
}

#[derive(Debug, Serialize)]
pub struct Readings {
    pub sent: u64,
    /// Left out (null) when the scenario only asks for delivered + dropped == sent.
    pub delivered: Option<u64>,
    pub dropped: Option<u64>,
    pub duplicates_without_reconnect: u64,
    pub out_of_order: u64,
    pub mismatched: u64,
    pub first: Option<serde_json::Value>,
    pub last: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct PowerSummary {
    /// Trips are left out: whether a supply cut lands under load (a trip) or not (an unplug)
    /// depends on wall-clock timing; `expect.power.trips` bounds them.
    pub brownouts: Option<u64>,
}

/// Diag fields that count line and delivery events; the others (uptime, RSSI, heap, connection
/// counts that depend on wall-clock races) are not deterministic.
const STABLE_DIAG: &[&str] = &["telegrams_ok", "crc_errors", "framing_errors", "queue_capacity", "ring_dropped", "reset_reason"];

pub fn snapshot(name: &str, profile: &str, seed: u64, meter_time: String, o: &Observer, l: &Ledger, fig: &Figures, exact_counts: bool) -> Snapshot {
    let stable_topics: &[&str] = if exact_counts { &["state"] } else { &[] };
    let strip = |v: &Option<serde_json::Value>| {
        v.as_ref().map(|v| {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("seq");
            }
            v
        })
    };
    let diag = o
        .last_diag
        .as_ref()
        .and_then(|d| d.as_object())
        .map(|m| {
            m.iter()
                .filter(|(k, _)| STABLE_DIAG.contains(&k.as_str()) && (exact_counts || k.as_str() != "ring_dropped"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let topics = o
        .topics
        .iter()
        .filter(|(t, _)| !t.starts_with("homeassistant/"))
        .map(|(t, n)| {
            let rel = t.strip_prefix(&o.root).unwrap_or(t).to_string();
            // QoS 1 redeliveries depend on when a link was cut; they are not part of the record.
            let n = if rel == "state" { n - o.redeliveries.min(*n) } else { *n };
            let shown = if stable_topics.iter().any(|s| *s == rel) { n.to_string() } else { "seen".into() };
            (rel, shown)
        })
        .collect();
    Snapshot {
        scenario: name.into(),
        profile: profile.into(),
        seed,
        meter_time,
        telegrams: l.telegrams,
        faults_injected: l.injected.clone(),
        readings: Readings {
            sent: fig.sent,
            delivered: exact_counts.then_some(fig.delivered),
            dropped: if exact_counts { fig.dropped } else { None },
            duplicates_without_reconnect: o.duplicates - o.redeliveries,
            out_of_order: o.out_of_order,
            mismatched: o.mismatch_count,
            first: strip(&o.first_state),
            last: strip(&o.last_state),
        },
        diag,
        topics,
        discovery: o.discovery.keys().cloned().collect(),
        // The set, not the sequence: whether an LWT reaches the capture client before a broker
        // restart kills it is a race.
        status: o.status.iter().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
        // `meter_silent` depends on wall-clock scheduling at high speeds (a timer in device time);
        // scenarios that need it require its console line instead.
        console_errors: o
            .errors_by_kind
            .iter()
            .filter(|(k, _)| k.as_str() != "meter_silent" && (exact_counts || k.as_str() != "ring_overflow"))
            .map(|(k, n)| (k.clone(), *n))
            .collect(),
        boots: o.boots.len(),
        power: if o.power.is_empty() {
            None
        } else {
            Some(PowerSummary {
                brownouts: o.power.last().and_then(|p| p.brownouts),
            })
        },
    }
}
