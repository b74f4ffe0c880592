//! What a scenario saw: the meter's ledger of telegrams sent, the device's console, and every MQTT
//! message, folded into compact records as they arrive (a week of meter time is 600k readings).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use serde::Serialize;

use crate::capture::Message;
use crate::console::Line;
use crate::oracle;

/// Telegrams the meter sent, keyed by their timestamp, and what became of them.
#[derive(Debug, Default)]
pub struct Ledger {
    pub entries: Vec<Sent>,
    by_ts: HashMap<String, VecDeque<usize>>,
    /// Faults injected, per kind (from the simulator's report).
    pub injected: BTreeMap<String, u64>,
    /// Telegrams sent in all, intact or not.
    pub telegrams: u64,
}

#[derive(Debug)]
pub struct Sent {
    /// When the last byte went onto the line (`None`: produced but not written yet, or never).
    pub at: Option<Instant>,
    /// Meter time since the start, seconds.
    pub meter_s: f64,
    pub ts: Option<String>,
    /// The CRC verified and no fault was applied that the device must reject.
    pub deliverable: bool,
    /// Values still to be compared (cleared once the reading arrived).
    pub values: Vec<(&'static str, i64)>,
    pub delivered: u32,
    /// When the capture client received it (first delivery).
    pub delivered_at: Option<Instant>,
}

impl Sent {
    /// Line to subscriber, ms (0 when the reading overtook the harness's own bookkeeping).
    pub fn latency_ms(&self) -> Option<f64> {
        let (a, d) = (self.at?, self.delivered_at?);
        Some(d.saturating_duration_since(a).as_secs_f64() * 1000.0)
    }
}

impl Ledger {
    /// Records a telegram before it goes onto the line (so a fast device can never publish a
    /// reading the ledger does not know yet); returns its index for [`Ledger::written`].
    pub fn prepare(&mut self, meter_s: f64, bytes: &[u8], rejected_by_fault: bool) -> usize {
        let seen = oracle::read(bytes);
        let (crc_ok, ts, values) = match seen {
            Some(s) => (s.crc_ok, s.ts, s.values),
            None => (false, None, Vec::new()),
        };
        let deliverable = crc_ok && !rejected_by_fault && ts.is_some();
        let idx = self.entries.len();
        if deliverable && let Some(ts) = &ts {
            self.by_ts.entry(ts.clone()).or_default().push_back(idx);
        }
        self.entries.push(Sent {
            at: None,
            meter_s,
            ts,
            deliverable,
            values: if deliverable { values } else { Vec::new() },
            delivered: 0,
            delivered_at: None,
        });
        idx
    }

    /// The telegram went onto the line at `at`, or was kept off it (`skipped`: data request).
    pub fn written(&mut self, idx: usize, at: Instant, skipped: bool, empty: bool) {
        let Some(e) = self.entries.get_mut(idx) else { return };
        if skipped || empty {
            e.deliverable = false;
            e.values.clear();
            return;
        }
        e.at = Some(at);
        self.telegrams += 1;
    }

    /// Entries produced but never written (the run ended first) are not deliverable.
    pub fn close(&mut self) {
        for e in &mut self.entries {
            if e.at.is_none() {
                e.deliverable = false;
            }
        }
    }

    /// Test helper: prepare and write at once.
    #[cfg(test)]
    pub fn sent(&mut self, at: Instant, meter_s: f64, bytes: &[u8], rejected_by_fault: bool) {
        let i = self.prepare(meter_s, bytes, rejected_by_fault);
        self.written(i, at, false, bytes.is_empty());
    }

    pub fn deliverable(&self) -> u64 {
        self.entries.iter().filter(|e| e.deliverable).count() as u64
    }

    fn lookup(&mut self, ts: &str) -> Option<usize> {
        let q = self.by_ts.get_mut(ts)?;
        // The first not-yet-delivered telegram with this timestamp, else the last one (a duplicate).
        let pos = q.iter().position(|&i| self.entries[i].delivered == 0);
        match pos {
            Some(p) => q.get(p).copied(),
            None => q.back().copied(),
        }
    }
}

/// A message kept for the failure printout.
#[derive(Debug, Clone)]
pub struct Recent {
    pub at: Instant,
    pub topic: String,
    pub payload: String,
}

/// A power sample from a console `ev=power` line.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PowerSample {
    /// Device uptime, s (device clock, which runs at the scenario speed).
    pub t_s: f64,
    pub acin_ma: f64,
    pub battery_mv: Option<f64>,
    pub battery_pct: Option<f64>,
    pub trips: Option<u64>,
    pub brownouts: Option<u64>,
}

#[derive(Debug)]
pub struct Observer {
    /// `<prefix>/<id>/`
    pub root: String,
    pub started: Instant,
    pub forbid: Vec<String>,
    pub require: Vec<String>,
    pub recent_lines: VecDeque<String>,
    pub recent_msgs: VecDeque<Recent>,
    pub console_events: BTreeMap<String, u64>,
    pub console_lines: u64,
    pub boots: Vec<String>,
    pub forbidden_hits: Vec<String>,
    pub required_seen: Vec<bool>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub power: Vec<PowerSample>,
    /// Message counts per full topic.
    pub topics: BTreeMap<String, u64>,
    pub last_diag: Option<serde_json::Value>,
    pub last_power: Option<serde_json::Value>,
    pub discovery: BTreeMap<String, serde_json::Value>,
    pub status: Vec<String>,
    /// State documents: delivered readings in arrival order, as ledger indices.
    pub delivered_order: Vec<usize>,
    pub duplicates: u64,
    /// Duplicates that arrived after a reconnect that followed the first delivery: MQTT QoS 1
    /// re-sends a message whose PUBACK was lost with the link (at-least-once), allowed.
    pub redeliveries: u64,
    /// Arrival times of `ev=mqtt state=connected`.
    pub connects: Vec<Instant>,
    /// The device's ring depth from its last `ev=telegram` / `ev=mqtt` line.
    pub device_queue: u64,
    /// (ledger index, arrival) of every duplicate, classified at the end.
    pub duplicate_arrivals: Vec<(usize, Instant)>,
    pub out_of_order: u64,
    pub unknown_readings: Vec<String>,
    pub mismatches: Vec<String>,
    pub mismatch_count: u64,
    pub bad_json: Vec<String>,
    pub first_state: Option<serde_json::Value>,
    pub last_state: Option<serde_json::Value>,
    last_delivered_idx: Option<usize>,
    /// Credentials that must not appear in console lines or MQTT messages.
    pub secrets: Vec<crate::credentials::Secret>,
    /// Where they did appear (never the text itself).
    pub leaks: Vec<String>,
}

const RECENT: usize = 40;
const KEEP: usize = 10;

impl Observer {
    pub fn new(root: String, forbid: Vec<String>, require: Vec<String>) -> Observer {
        let n = require.len();
        Observer {
            root,
            started: Instant::now(),
            forbid,
            require,
            recent_lines: VecDeque::new(),
            recent_msgs: VecDeque::new(),
            console_events: BTreeMap::new(),
            console_lines: 0,
            boots: Vec::new(),
            forbidden_hits: Vec::new(),
            required_seen: vec![false; n],
            errors_by_kind: BTreeMap::new(),
            power: Vec::new(),
            topics: BTreeMap::new(),
            last_diag: None,
            last_power: None,
            discovery: BTreeMap::new(),
            status: Vec::new(),
            delivered_order: Vec::new(),
            duplicates: 0,
            redeliveries: 0,
            connects: Vec::new(),
            device_queue: 0,
            duplicate_arrivals: Vec::new(),
            out_of_order: 0,
            unknown_readings: Vec::new(),
            mismatches: Vec::new(),
            mismatch_count: 0,
            bad_json: Vec::new(),
            first_state: None,
            last_state: None,
            last_delivered_idx: None,
            secrets: Vec::new(),
            leaks: Vec::new(),
        }
    }

    fn check_secrets(&mut self, what: impl FnOnce() -> String, text: &str) {
        if self.secrets.is_empty() || self.leaks.len() >= KEEP {
            return;
        }
        let labels: Vec<&str> = crate::credentials::leaked(&self.secrets, text).collect();
        if !labels.is_empty() {
            let what = what();
            self.leaks.extend(labels.into_iter().map(|l| format!("{l} appears in {what}")));
        }
    }

    /// Keeps a line for the failure printout only.
    pub fn remember(&mut self, text: &str) {
        if self.recent_lines.len() == RECENT {
            self.recent_lines.pop_front();
        }
        self.recent_lines.push_back(text.to_string());
    }

    pub fn line(&mut self, l: &Line) {
        self.console_lines += 1;
        let n = self.console_lines;
        self.check_secrets(|| format!("console line {n}"), &l.text);
        self.remember(&l.text);
        let lower = l.text.to_ascii_lowercase();
        for f in &self.forbid {
            if lower.contains(&f.to_ascii_lowercase()) && self.forbidden_hits.len() < KEEP {
                self.forbidden_hits.push(format!("`{f}` in: {}", l.text));
            }
        }
        for (i, r) in self.require.iter().enumerate() {
            if !self.required_seen[i] && l.text.contains(r.as_str()) {
                self.required_seen[i] = true;
            }
        }
        let Some(ev) = &l.ev else { return };
        if let Some(q) = l.num("queue") {
            self.device_queue = q as u64;
        }
        *self.console_events.entry(ev.clone()).or_default() += 1;
        match ev.as_str() {
            "boot" => self.boots.push(l.text.clone()),
            "mqtt" if l.get("state") == Some("connected") => self.connects.push(l.at),
            "error" => *self.errors_by_kind.entry(l.get("kind").unwrap_or("?").to_string()).or_default() += 1,
            "power" => {
                if let Some(acin) = l.num("acin_ma") {
                    self.power.push(PowerSample {
                        t_s: l.t_ms.unwrap_or(0) as f64 / 1000.0,
                        acin_ma: acin,
                        battery_mv: l.num("bat_mv").or_else(|| l.num("battery_mv")),
                        battery_pct: l.num("bat_pct").or_else(|| l.num("battery_pct")),
                        trips: l.num("trips").map(|v| v as u64),
                        brownouts: l.num("brownouts").map(|v| v as u64),
                    });
                }
            }
            _ => {}
        }
    }

    pub fn message(&mut self, m: &Message, ledger: &mut Ledger) {
        let rel = m.topic.strip_prefix(&self.root).unwrap_or(&m.topic).to_string();
        *self.topics.entry(m.topic.clone()).or_default() += 1;
        let text = String::from_utf8_lossy(&m.payload).into_owned();
        let topic_leaks = crate::credentials::leaked(&self.secrets, &m.topic).next().is_some();
        self.check_secrets(|| "an MQTT topic".into(), &m.topic);
        self.check_secrets(|| if topic_leaks { "an MQTT message".into() } else { format!("an MQTT message on {}", m.topic) }, &text);
        if self.recent_msgs.len() == RECENT {
            self.recent_msgs.pop_front();
        }
        let shown = if text.len() > 300 { format!("{}… ({} bytes)", &text[..text.floor_char_boundary(300)], text.len()) } else { text.clone() };
        let topic = if m.retain { format!("{} (retained)", m.topic) } else { m.topic.clone() };
        self.recent_msgs.push_back(Recent { at: m.at, topic, payload: shown });
        if m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config") {
            if let Ok(v) = serde_json::from_str(&text) {
                self.discovery.insert(m.topic.clone(), v);
            } else if !m.payload.is_empty() && self.bad_json.len() < KEEP {
                self.bad_json.push(format!("{}: {}", m.topic, text));
            }
            return;
        }
        match rel.as_str() {
            "state" => self.state(m, &text, ledger),
            "diag" => self.last_diag = self.json(&m.topic, &text),
            "power" => self.last_power = self.json(&m.topic, &text),
            "status" => self.status.push(text),
            _ => {}
        }
    }

    fn json(&mut self, topic: &str, text: &str) -> Option<serde_json::Value> {
        match serde_json::from_str(text) {
            Ok(v) => Some(v),
            Err(e) => {
                if self.bad_json.len() < KEEP {
                    self.bad_json.push(format!("{topic}: {e}: {text}"));
                }
                None
            }
        }
    }

    fn state(&mut self, m: &Message, text: &str, ledger: &mut Ledger) {
        let Some(v) = self.json(&m.topic, text) else { return };
        if self.first_state.is_none() {
            self.first_state = Some(v.clone());
        }
        let ts = v.get("ts").and_then(|t| t.as_str()).map(str::to_string);
        let idx = ts.as_deref().and_then(|ts| ledger.lookup(ts));
        let Some(idx) = idx else {
            if self.unknown_readings.len() < KEEP {
                self.unknown_readings.push(text.to_string());
            }
            self.last_state = Some(v);
            return;
        };
        let e = &mut ledger.entries[idx];
        e.delivered += 1;
        if e.delivered > 1 {
            self.duplicates += 1;
            self.duplicate_arrivals.push((idx, m.at));
        } else {
            e.delivered_at = Some(m.at);
            if let Some(prev) = self.last_delivered_idx
                && idx < prev
            {
                self.out_of_order += 1;
            }
            self.last_delivered_idx = Some(idx);
            self.delivered_order.push(idx);
            let mut bad = Vec::new();
            for (key, want) in e.values.drain(..) {
                match v.get(key).and_then(oracle::json_milli) {
                    Some(got) if got == want => {}
                    got => bad.push(format!("{key}: sent {} got {}", want as f64 / 1000.0, got.map_or("nothing".into(), |g| (g as f64 / 1000.0).to_string()))),
                }
            }
            if !bad.is_empty() {
                self.mismatch_count += 1;
                if self.mismatches.len() < KEEP {
                    self.mismatches.push(format!("reading {}: {}", e.ts.as_deref().unwrap_or("?"), bad.join(", ")));
                }
            }
        }
        self.last_state = Some(v);
    }

    /// Splits duplicates into QoS 1 redeliveries (a reconnect lies between the first delivery and
    /// the duplicate) and real duplicates.
    pub fn classify_duplicates(&mut self, ledger: &Ledger) {
        const CONSOLE_LAG_MAX: std::time::Duration = std::time::Duration::from_secs(1);
        let mut redeliveries = 0;
        for (idx, at) in &self.duplicate_arrivals {
            let first = ledger.entries.get(*idx).and_then(|e| e.delivered_at);
            // `connects` holds when the harness read the console line, which can trail the
            // replayed message on the MQTT side by a scheduling delay at high speed-ups.
            if first.is_some_and(|f| self.connects.iter().any(|c| *c > f && *c <= *at + CONSOLE_LAG_MAX)) {
                redeliveries += 1;
            }
        }
        self.redeliveries = redeliveries;
    }

    /// The last console lines and MQTT messages, for a failure report.
    pub fn tail(&self) -> String {
        let mut s = String::from("--- last console lines ---\n");
        for l in &self.recent_lines {
            s.push_str("  ");
            s.push_str(l);
            s.push('\n');
        }
        if self.recent_lines.is_empty() {
            s.push_str("  (none)\n");
        }
        s.push_str("--- last MQTT messages ---\n");
        for m in &self.recent_msgs {
            s.push_str(&format!("  +{:.3}s {} {}\n", m.at.saturating_duration_since(self.started).as_secs_f64(), m.topic, m.payload));
        }
        if self.recent_msgs.is_empty() {
            s.push_str("  (none)\n");
        }
        crate::credentials::redact(&self.secrets, s)
    }
}

/// p-th percentile (nearest rank) of unsorted values.
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    values.get(rank.min(values.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile(&mut [3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    fn telegram() -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/telegrams/Wassasin-dsmr5__isk_ISK_AM550.txt")).unwrap()
    }

    fn state_for(bytes: &[u8], tweak: Option<(&str, f64)>) -> Vec<u8> {
        let seen = oracle::read(bytes).unwrap();
        let mut doc = serde_json::Map::new();
        doc.insert("seq".into(), 1.into());
        doc.insert("ts".into(), seen.ts.clone().unwrap().into());
        for (k, v) in seen.values {
            doc.insert(k.into(), serde_json::json!(v as f64 / 1000.0));
        }
        if let Some((k, v)) = tweak {
            doc.insert(k.into(), serde_json::json!(v));
        }
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn a_delivered_reading_is_matched_and_compared() {
        let t = telegram();
        let mut ledger = Ledger::default();
        ledger.sent(Instant::now(), 0.0, &t, false);
        let mut o = Observer::new("p1/dev/".into(), vec!["panic".into()], vec![]);
        let m = Message { at: Instant::now(), topic: "p1/dev/state".into(), payload: state_for(&t, None), retain: false };
        o.message(&m, &mut ledger);
        assert_eq!(o.delivered_order, vec![0]);
        assert_eq!(o.mismatch_count, 0, "{:?}", o.mismatches);
        o.message(&m, &mut ledger);
        assert_eq!(o.duplicates, 1);
    }

    #[test]
    fn a_wrong_value_is_a_mismatch_naming_the_field() {
        let t = telegram();
        let mut ledger = Ledger::default();
        ledger.sent(Instant::now(), 0.0, &t, false);
        let mut o = Observer::new("p1/dev/".into(), vec![], vec![]);
        let m = Message { at: Instant::now(), topic: "p1/dev/state".into(), payload: state_for(&t, Some(("voltage_l1_v", 1.0))), retain: false };
        o.message(&m, &mut ledger);
        assert_eq!(o.mismatch_count, 1);
        assert!(o.mismatches[0].contains("voltage_l1_v"), "{:?}", o.mismatches);
    }

    #[test]
    fn corrupted_telegrams_are_not_deliverable() {
        let mut t = telegram();
        t[40] ^= 1;
        let mut ledger = Ledger::default();
        ledger.sent(Instant::now(), 0.0, &t, false);
        assert_eq!(ledger.deliverable(), 0);
    }

    #[test]
    fn forbidden_console_text_is_caught_on_stderr_too() {
        let mut o = Observer::new("p1/dev/".into(), vec!["panic".into()], vec!["ev=boot".into()]);
        o.line(&Line::parse(Instant::now(), "t=0 ev=boot fw=0.1.0"));
        o.line(&Line::parse(Instant::now(), "stderr: thread 'main' panicked at x.rs:1:1"));
        assert_eq!(o.forbidden_hits.len(), 1);
        assert_eq!(o.required_seen, vec![true]);
        assert!(o.tail().contains("panicked"));
    }
}
