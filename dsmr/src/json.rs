//! JSON rendering of telegrams and readings (feature `std`). The schema is documented in the
//! crate README ("JSON schema"); `p1-sim decode` prints it.

use crate::reading::{MBusValueKind, Reading, TextMessage};
use crate::telegram::Telegram;
use crate::value::{Dst, Fixed, Quantity, Timestamp};
use crate::{fmt_bytes, FrameError, IssueKind, MalformedKind};
use serde_json::{json, Map, Value};

fn text(b: &[u8]) -> Value {
    Value::String(fmt_bytes(b).to_string())
}

fn opt_text(b: Option<&[u8]>) -> Value {
    b.map_or(Value::Null, text)
}

/// A decimal as a JSON number (`Null` if it has no finite `f64`).
fn number(f: Fixed) -> Value {
    serde_json::Number::from_f64(f.to_f64()).map_or(Value::Null, Value::Number)
}

/// `{"value": <number in the base unit>, "unit": "<base unit>"}`.
fn quantity(q: Option<Quantity>) -> Value {
    match q {
        None => Value::Null,
        Some(q) => {
            let (v, unit) = q.base();
            json!({ "value": number(v), "unit": if unit.is_empty() { Value::Null } else { unit.into() } })
        }
    }
}

fn ymd(t: &Timestamp) -> String {
    format!("20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// `{"local": "2019-03-20T18:14:03", "dst": "W"|"S"|null, "iso": "...+01:00"|null, "valid": bool}`.
pub fn timestamp(t: Option<Timestamp>) -> Value {
    match t {
        None => Value::Null,
        Some(t) => json!({
            "local": ymd(&t),
            "dst": match t.dst { Some(Dst::Summer) => "S".into(), Some(Dst::Winter) => "W".into(), None => Value::Null },
            "iso": if t.is_valid() && t.dst.is_some() { t.to_string().into() } else { Value::Null },
            "unix": t.unix_seconds().map_or(Value::Null, Value::from),
            "valid": t.is_valid(),
        }),
    }
}

fn message<const N: usize>(m: &Option<TextMessage<N>>) -> Value {
    match m {
        None => Value::Null,
        Some(m) => json!({ "text": text(&m.bytes), "hex": m.was_hex }),
    }
}

fn hex_id(b: Option<&[u8]>) -> Value {
    let Some(b) = b else { return Value::Null };
    let mut out = vec![0u8; b.len() / 2];
    let decoded = crate::value::decode_hex(b, &mut out)
        .and_then(|n| out.get(..n))
        .filter(|d| !d.is_empty() && d.iter().all(|c| (0x20..0x7f).contains(c)))
        .map(text);
    json!({ "written": text(b), "decoded": decoded.unwrap_or(Value::Null) })
}

fn phases(a: &[Option<Quantity>; 3]) -> Value {
    Value::Array(a.iter().map(|q| quantity(*q)).collect())
}

fn tariffs(a: &[Option<Quantity>; 5]) -> Value {
    json!({ "total": quantity(a[0]), "t1": quantity(a[1]), "t2": quantity(a[2]), "t3": quantity(a[3]), "t4": quantity(a[4]) })
}

/// The typed part of a decoded telegram.
pub fn reading(r: &Reading) -> Value {
    let mbus: Vec<Value> = r
        .mbus
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.as_ref().map(|d| (i, d)))
        .map(|(i, d)| {
            json!({
                "channel": i + 1,
                "device_type": d.device_type,
                "kind": d.kind().map(|k| format!("{k:?}").to_lowercase()),
                "equipment_id": hex_id(d.equipment_id.as_deref()),
                "value": d.value.map(|v| quantity(Some(v.value))).unwrap_or(Value::Null),
                "timestamp": timestamp(d.value.and_then(|v| v.timestamp)),
                "source": d.value.map(|v| match v.kind {
                    MBusValueKind::Corrected => "24.2.1",
                    MBusValueKind::Uncorrected => "24.2.3",
                    MBusValueKind::Legacy => "24.3.0",
                }),
                "valve": d.valve,
                "switch_position": d.switch_position,
            })
        })
        .collect();
    let failure_log = r.power_failure_log.as_ref().map(|l| {
        l.iter()
            .map(|e| json!({ "end": timestamp(Some(e.end)), "duration": { "value": e.duration_s, "unit": "s" } }))
            .collect::<Vec<_>>()
    });
    let history = r.max_demand_history.as_ref().map(|h| {
        h.iter()
            .map(|m| json!({ "month": timestamp(Some(m.month)), "occurred": timestamp(Some(m.occurred)), "peak": quantity(Some(m.value)) }))
            .collect::<Vec<_>>()
    });
    let issues: Vec<Value> = r
        .issues
        .iter()
        .map(|i| {
            let (kind, detail) = match i.kind {
                IssueKind::MalformedLine => ("malformed_line", Value::Null),
                IssueKind::BadValue => ("bad_value", Value::Null),
                IssueKind::UnknownUnit => ("unknown_unit", Value::Null),
                IssueKind::TooLong => ("too_long", Value::Null),
                IssueKind::UnitMismatch { expected, found } => (
                    "unit_mismatch",
                    json!({ "expected": format!("{expected:?}").to_lowercase(), "found": found.map(|u| u.as_str()) }),
                ),
            };
            json!({ "line": i.line, "obis": i.obis.map(|o| o.to_string()), "kind": kind, "detail": detail })
        })
        .collect();
    json!({
        "version": opt_text(r.version.as_deref()),
        "be_version": opt_text(r.be_version.as_deref()),
        "timestamp": timestamp(r.timestamp),
        "equipment_id": hex_id(r.equipment_id.as_deref()),
        "meter_serial": opt_text(r.meter_serial.as_deref()),
        "device_name": hex_id(r.device_name.as_deref()),
        "energy_import": tariffs(&r.energy_import),
        "energy_export": tariffs(&r.energy_export),
        "reactive_energy_import": tariffs(&r.reactive_energy_import),
        "reactive_energy_export": tariffs(&r.reactive_energy_export),
        "tariff": r.tariff,
        "power_import": quantity(r.power_import),
        "power_export": quantity(r.power_export),
        "reactive_power_import": quantity(r.reactive_power_import),
        "reactive_power_export": quantity(r.reactive_power_export),
        "apparent_power_import": quantity(r.apparent_power_import),
        "apparent_power_export": quantity(r.apparent_power_export),
        "power_factor": r.power_factor.map(number),
        "frequency": quantity(r.frequency),
        "threshold": quantity(r.threshold),
        "switch_position": r.switch_position,
        "power_failures": r.power_failures,
        "long_power_failures": r.long_power_failures,
        "power_failure_log": failure_log,
        "voltage_sags": r.voltage_sags,
        "voltage_swells": r.voltage_swells,
        "text_message": message(&r.text_message),
        "text_code": message(&r.text_code),
        "voltage": phases(&r.voltage),
        "current": phases(&r.current),
        "power_import_phase": phases(&r.power_import_phase),
        "power_export_phase": phases(&r.power_export_phase),
        "fuse_threshold": phases(&r.fuse_threshold),
        "average_demand": quantity(r.average_demand),
        "max_demand_month": r.max_demand_month.map(|p| json!({ "occurred": timestamp(Some(p.occurred)), "peak": quantity(Some(p.value)) })),
        "max_demand_history": history,
        "mbus": mbus,
        "unknown_objects": r.unknown_objects,
        "issue_count": r.issue_count,
        "issues": issues,
    })
}

/// One entry per COSEM line: OBIS as written, values and units exactly as written.
pub fn objects(t: &Telegram<'_>) -> Value {
    let list: Vec<Value> = t
        .lines()
        .map(|l| match l {
            Ok(line) => {
                let values: Vec<Value> = line
                    .values()
                    .map(|v| {
                        let mut m = Map::new();
                        m.insert("raw".into(), text(v.text));
                        let digits = v.text.iter().filter(|c| c.is_ascii_digit()).count();
                        if let Some(f) = v.fixed().filter(|_| digits <= 15) {
                            m.insert("number".into(), number(f));
                        }
                        m.insert("unit".into(), opt_text(v.unit));
                        Value::Object(m)
                    })
                    .collect();
                json!({ "line": line.line, "obis": text(line.obis_text), "values": values })
            }
            Err(e) => json!({ "line": e.line, "obis": null, "malformed": text(e.text) }),
        })
        .collect();
    Value::Array(list)
}

/// A whole decoded telegram: header, CRC, typed reading and objects.
pub fn telegram(t: &Telegram<'_>, r: &Reading) -> Value {
    json!({
        "ok": true,
        "header": text(t.header()),
        "manufacturer": t.manufacturer(),
        "identification": text(t.identification()),
        "crc": t.crc().map(|c| format!("{c:04X}")),
        "reading": reading(r),
        "objects": objects(t),
    })
}

/// An error object for a telegram the framer dropped.
pub fn frame_error(e: &FrameError) -> Value {
    let mut m = Map::new();
    m.insert("ok".into(), false.into());
    m.insert("message".into(), e.to_string().into());
    match *e {
        FrameError::CrcMismatch { given, computed } => {
            m.insert("error".into(), "crc_mismatch".into());
            m.insert("given".into(), format!("{given:04X}").into());
            m.insert("computed".into(), format!("{computed:04X}").into());
        }
        FrameError::Oversize { limit } => {
            m.insert("error".into(), "oversize".into());
            m.insert("limit".into(), limit.into());
        }
        FrameError::Truncated { received } => {
            m.insert("error".into(), "truncated".into());
            m.insert("received".into(), received.into());
        }
        FrameError::Malformed { line, kind } => {
            m.insert("error".into(), "malformed".into());
            m.insert("line".into(), line.into());
            let k = match kind {
                MalformedKind::Header => "header",
                MalformedKind::Line => "line",
                MalformedKind::Crc => "crc_field",
            };
            m.insert("what".into(), k.into());
        }
    }
    Value::Object(m)
}
