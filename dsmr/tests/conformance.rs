//! One case per fixture telegram: frame it, decode it, compare with the oracle's values.
//!
//! Expected values live in `fixtures/telegrams/expected/<fixture>.expected`, generated from the
//! oracle files by `generate.py` there; each line names its source assertion. CRC-mismatch fixtures
//! must report the mismatch with both values; their values are then checked on the view parsed
//! with the CRC check off (spec examples carry wrong CRCs but are still valid parse tests).

use dsmr::{Fixed, FrameError, Framer, Reading, Telegram, Timestamp};
use rstest::rstest;
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq)]
enum Event {
    Ok,
    NoCrc,
    Crc(u16, u16),
    Truncated,
}

fn frame_all(bytes: &[u8]) -> (Vec<Event>, Option<Vec<u8>>) {
    let mut f = Framer::<4096>::new();
    let mut rest = bytes;
    let mut events = Vec::new();
    let mut last = None;
    let mut handle = |ev: Option<Result<dsmr::Frame<'_>, FrameError>>, events: &mut Vec<Event>| match ev {
        Some(Ok(fr)) => {
            events.push(if fr.crc.is_some() { Event::Ok } else { Event::NoCrc });
            last = Some(fr.bytes.to_vec());
        }
        Some(Err(FrameError::CrcMismatch { given, computed })) => events.push(Event::Crc(given, computed)),
        Some(Err(FrameError::Truncated { .. })) => events.push(Event::Truncated),
        Some(Err(e)) => panic!("unexpected framing error {e}"),
        None => {}
    };
    while !rest.is_empty() {
        let (n, ev) = f.feed(rest);
        rest = &rest[n..];
        handle(ev, &mut events);
    }
    handle(f.finish(), &mut events);
    (events, last)
}

fn parse_events(s: &str) -> Vec<Event> {
    s.split(',')
        .map(|e| match e.trim() {
            "ok" => Event::Ok,
            "nocrc" => Event::NoCrc,
            "truncated" => Event::Truncated,
            c => {
                let inner = c.strip_prefix("crc:").expect("crc:GIVEN:COMPUTED");
                let (g, c) = inner.split_once(':').expect("crc:GIVEN:COMPUTED");
                Event::Crc(u16::from_str_radix(g, 16).unwrap(), u16::from_str_radix(c, 16).unwrap())
            }
        })
        .collect()
}

/// What a path resolves to.
#[derive(Debug)]
enum Actual {
    Absent,
    Num(Fixed, Option<String>),
    Int(u64),
    Text(Vec<u8>),
    Time(String),
}

fn local(t: &Timestamp) -> String {
    format!("20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

fn utc(t: &Timestamp) -> String {
    let s = t.unix_seconds().expect("timestamp with S/W flag and valid fields");
    let days = s.div_euclid(86_400);
    let secs = s.rem_euclid(86_400);
    // civil from days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

fn time(t: Option<Timestamp>, how: &str) -> Actual {
    match (t, how) {
        (None, _) => Actual::Absent,
        (Some(t), "local") => Actual::Time(local(&t)),
        (Some(t), "utc") => Actual::Time(utc(&t)),
        (Some(t), "dst") => Actual::Time(match t.dst {
            Some(dsmr::Dst::Summer) => "S".into(),
            Some(dsmr::Dst::Winter) => "W".into(),
            None => "none".into(),
        }),
        (_, h) => panic!("unknown time accessor {h}"),
    }
}

fn qty(q: Option<dsmr::Quantity>, rest: &[&str]) -> Actual {
    match (q, rest) {
        (None, _) => Actual::Absent,
        (Some(q), []) => Actual::Num(q.value, q.unit.map(|u| u.as_str().to_string())),
        (Some(q), ["base"]) => {
            let (v, u) = q.base();
            Actual::Num(v, Some(u.to_string()))
        }
        (Some(q), ["int"]) => Actual::Num(Fixed::new(q.value.rescale(q.value.decimals).unwrap() / dsmr_pow10(q.value.decimals), 0), None),
        (Some(q), ["unit"]) => match q.unit {
            Some(u) => Actual::Text(u.as_str().as_bytes().to_vec()),
            None => Actual::Absent,
        },
        (_, r) => panic!("unknown quantity accessor {r:?}"),
    }
}

fn dsmr_pow10(d: u8) -> i64 {
    10i64.pow(u32::from(d))
}

fn int<T: Into<u64>>(v: Option<T>) -> Actual {
    v.map_or(Actual::Absent, |v| Actual::Int(v.into()))
}

fn text(v: Option<&[u8]>) -> Actual {
    v.map_or(Actual::Absent, |v| Actual::Text(v.to_vec()))
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|b| format!("{b:02X}").into_bytes()).collect()
}

fn idx(s: &str) -> usize {
    s.parse().expect("index")
}

fn resolve(r: &Reading, t: &Telegram<'_>, path: &str) -> Actual {
    if let Some(obis) = path.strip_prefix("obis:") {
        let o = dsmr::Obis::parse(obis.as_bytes()).expect("obis in path");
        return match t.find(o).and_then(|l| l.value(0)) {
            None => Actual::Absent,
            Some(v) => match v.fixed() {
                Some(f) if v.unit.is_some() || !v.text.starts_with(b"0") || v.text.contains(&b'.') => {
                    Actual::Num(f, v.unit.map(|u| String::from_utf8_lossy(u).into_owned()))
                }
                _ => Actual::Text(v.text.to_vec()),
            },
        };
    }
    let p: Vec<&str> = path.split('.').collect();
    match p.as_slice() {
        ["manufacturer"] => text(t.manufacturer().map(str::as_bytes)),
        ["identification"] => text(Some(t.identification())),
        ["header"] => text(Some(&r.header)),
        ["version"] => text(r.version.as_deref()),
        ["be_version"] => text(r.be_version.as_deref()),
        ["equipment_id"] => text(r.equipment_id.as_deref()),
        ["equipment_id", "decoded"] => text(r.equipment_id.as_deref().map(|h| {
            let mut out = vec![0u8; h.len() / 2];
            let n = dsmr::value::decode_hex(h, &mut out).expect("hex id");
            out.truncate(n);
            out
        }).as_deref()),
        ["meter_serial"] => text(r.meter_serial.as_deref()),
        ["device_name"] => text(r.device_name.as_deref()),
        ["timestamp", how] => time(r.timestamp, how),
        [arr @ ("energy_import" | "energy_export" | "reactive_energy_import" | "reactive_energy_export"), i, rest @ ..] => {
            let a = match *arr {
                "energy_import" => &r.energy_import,
                "energy_export" => &r.energy_export,
                "reactive_energy_import" => &r.reactive_energy_import,
                _ => &r.reactive_energy_export,
            };
            qty(a[idx(i)], rest)
        }
        [arr @ ("voltage" | "current" | "power_import_phase" | "power_export_phase" | "fuse_threshold"), ph, rest @ ..] => {
            let a = match *arr {
                "voltage" => &r.voltage,
                "current" => &r.current,
                "power_import_phase" => &r.power_import_phase,
                "power_export_phase" => &r.power_export_phase,
                _ => &r.fuse_threshold,
            };
            qty(a[idx(ph) - 1], rest)
        }
        ["voltage_sags", ph] => int(r.voltage_sags[idx(ph) - 1]),
        ["voltage_swells", ph] => int(r.voltage_swells[idx(ph) - 1]),
        ["tariff"] => int(r.tariff),
        ["power_import", rest @ ..] => qty(r.power_import, rest),
        ["power_export", rest @ ..] => qty(r.power_export, rest),
        ["average_demand", rest @ ..] => qty(r.average_demand, rest),
        ["threshold", rest @ ..] => qty(r.threshold, rest),
        ["frequency", rest @ ..] => qty(r.frequency, rest),
        ["power_factor"] => r.power_factor.map_or(Actual::Absent, |f| Actual::Num(f, None)),
        ["switch_position"] => int(r.switch_position),
        ["power_failures"] => int(r.power_failures),
        ["long_power_failures"] => int(r.long_power_failures),
        ["power_failure_log", "len"] => int(r.power_failure_log.as_ref().map(|l| l.len() as u64)),
        ["power_failure_log", i, "end", how] => time(r.power_failure_log.as_ref().and_then(|l| l.get(idx(i))).map(|e| e.end), how),
        ["power_failure_log", i, "duration_s"] => int(r.power_failure_log.as_ref().and_then(|l| l.get(idx(i))).map(|e| e.duration_s)),
        [m @ ("text_message" | "text_code"), "written"] => {
            let msg = if *m == "text_message" {
                r.text_message.as_ref().map(|m| (m.bytes.to_vec(), m.was_hex))
            } else {
                r.text_code.as_ref().map(|m| (m.bytes.to_vec(), m.was_hex))
            };
            match msg {
                None => Actual::Absent,
                Some((b, true)) => Actual::Text(hex(&b)),
                Some((b, false)) => Actual::Text(b),
            }
        }
        ["max_demand_month", "value"] => qty(r.max_demand_month.map(|p| p.value), &[]),
        ["max_demand_month", "occurred", how] => time(r.max_demand_month.map(|p| p.occurred), how),
        ["max_demand_history", i, field, rest @ ..] => {
            let e = r.max_demand_history.as_ref().and_then(|h| h.get(idx(i))).copied();
            match *field {
                "value" => qty(e.map(|e| e.value), rest),
                "month" => time(e.map(|e| e.month), rest[0]),
                "occurred" => time(e.map(|e| e.occurred), rest[0]),
                f => panic!("unknown field {f}"),
            }
        }
        ["gas"] => r.gas().map_or(Actual::Absent, |_| Actual::Text(b"present".to_vec())),
        [dev @ ("gas" | "mbus"), rest @ ..] => {
            let (d, rest) = if *dev == "gas" {
                (r.gas(), rest)
            } else {
                (r.mbus_channel(rest[0].parse().expect("channel")), &rest[1..])
            };
            let Some(d) = d else { return Actual::Absent };
            match rest {
                ["device_type"] => int(d.device_type),
                ["equipment_id"] => text(d.equipment_id.as_deref()),
                ["valve"] => int(d.valve),
                ["value", more @ ..] => qty(d.value.map(|v| v.value), more),
                ["timestamp", how] => time(d.value.and_then(|v| v.timestamp), how),
                r => panic!("unknown M-Bus accessor {r:?}"),
            }
        }
        _ => panic!("unknown path {path}"),
    }
}

fn unquote(s: &str) -> Vec<u8> {
    let inner = &s[1..s.len() - 1];
    let mut out = Vec::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' { chars.next().expect("escape") } else { c };
        let mut b = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }
    out
}

fn check(path: &str, expected: &str, actual: Actual) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{path}: expected {expected}, got {actual:?} ({why})"));
    match (&actual, expected) {
        (Actual::Absent, "none") => Ok(()),
        (_, "none") => fail("expected absent"),
        (Actual::Absent, _) => fail("absent"),
        (Actual::Text(t), e) if e.starts_with('"') => {
            if *t == unquote(e) { Ok(()) } else { fail("text differs") }
        }
        (Actual::Text(t), e) => {
            if t.as_slice() == e.as_bytes() { Ok(()) } else { fail("text differs") }
        }
        (Actual::Time(t), e) => {
            if t == e { Ok(()) } else { fail("time differs") }
        }
        (Actual::Int(i), e) => {
            if e.parse::<u64>().ok() == Some(*i) { Ok(()) } else { fail("integer differs") }
        }
        (Actual::Num(v, unit), e) => {
            let mut parts = e.split_whitespace();
            let num = parts.next().unwrap_or("");
            let want = Fixed::parse(num.as_bytes()).ok_or_else(|| format!("{path}: bad expected number {num}"))?;
            if !v.same_value(want) {
                return fail("number differs");
            }
            match (parts.next(), unit) {
                (None, _) => Ok(()),
                (Some(u), Some(a)) if u == a => Ok(()),
                _ => fail("unit differs"),
            }
        }
    }
}

fn expected_path(fixture: &Path) -> PathBuf {
    let stem = fixture.file_stem().unwrap().to_str().unwrap();
    fixture.parent().unwrap().join("expected").join(format!("{stem}.expected"))
}

#[rstest]
fn fixture_decodes_to_oracle_values(#[files("../fixtures/telegrams/*.txt")] fixture: PathBuf) {
    let bytes = std::fs::read(&fixture).unwrap();
    let exp_file = expected_path(&fixture);
    let exp = std::fs::read_to_string(&exp_file).unwrap_or_else(|e| panic!("{}: {e}", exp_file.display()));
    let mut values = Vec::new();
    let mut frames = None;
    for line in exp.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let content = line.split("  ; ").next().unwrap();
        let (k, v) = content.split_once(" = ").expect("key = value");
        if k == "frames" {
            frames = Some(parse_events(v));
        } else {
            values.push((k.to_string(), v.trim().to_string()));
        }
    }
    let frames = frames.expect("frames line");
    let (events, last) = frame_all(&bytes);
    assert_eq!(events, frames, "framer events for {}", fixture.display());

    // Values come from the last whole telegram, else from the view without CRC check.
    let start = bytes.iter().position(|&b| b == b'/').unwrap_or(0);
    let owned;
    let telegram = match (&last, frames.last()) {
        (Some(b), Some(Event::Ok | Event::NoCrc)) => {
            owned = b.clone();
            Telegram::parse(&owned).expect("framed telegram parses")
        }
        (_, Some(Event::Crc(..))) => Telegram::parse_with(&bytes, None).expect("view without CRC check"),
        _ => Telegram::parse_unterminated(&bytes[start..]).expect("unterminated view"),
    };
    let reading = Reading::decode(&telegram);
    let failures: Vec<String> = values
        .iter()
        .filter_map(|(k, v)| check(k, v, resolve(&reading, &telegram, k)).err())
        .collect();
    assert!(failures.is_empty(), "{}:\n{}", fixture.display(), failures.join("\n"));
}
