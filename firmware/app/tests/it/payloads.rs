use std::collections::BTreeSet;
use std::path::Path;

use firmware_app::config::Config;
use firmware_app::p1::{convert, P1Event, P1Reader};
use firmware_app::payload::{self, Diag, Entity, DIAG_ENTITIES, POWER_ENTITIES};
use firmware_app::reading::{Reading, FIELDS};
use firmware_app::power_policy::{BootCause, PowerConfig, PowerPolicy, SupplyEvents};
use firmware_app::seams::PowerSample;
use firmware_app::text::Cursor;
use serde_json::Value;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/telegrams")
}

/// Every good telegram in `bytes`, through the same reader and conversion the firmware uses.
fn readings(bytes: &[u8]) -> Vec<Reading> {
    let mut reader = P1Reader::new();
    let mut scratch = dsmr::Reading::default();
    let mut out = Vec::new();
    let mut input = bytes;
    while !input.is_empty() {
        let (used, ev) = reader.feed(input);
        if let Some(P1Event::Telegram(frame)) = ev {
            scratch.fill(&frame.telegram());
            out.push(convert(out.len() as u32 + 1, 1000, &scratch));
        }
        if used == 0 {
            break;
        }
        input = &input[used..];
    }
    out
}

fn json_of(f: impl FnOnce(&mut Cursor<'_>) -> std::fmt::Result) -> Value {
    let mut buf = [0u8; 4096];
    let mut c = Cursor::new(&mut buf);
    f(&mut c).unwrap();
    let text = std::str::from_utf8(c.as_bytes()).unwrap().to_owned();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The power document as the firmware publishes it (the power policy renders it).
fn power_doc(s: &PowerSample) -> Value {
    let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::PowerOn, None);
    p.on_sample(1000, s, SupplyEvents::default());
    json_of(|w| p.write_json(w))
}

fn cfg() -> Config {
    let mut c = Config::default();
    c.set("broker", "mqtt://127.0.0.1:1883").unwrap();
    c.set("device_id", "meter1").unwrap();
    c.validate(false).unwrap();
    c
}

fn is_iso8601_with_offset(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 25
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (b[19] == b'+' || b[19] == b'-')
        && b[22] == b':'
        && s.chars().filter(|c| c.is_ascii_digit()).count() == 18
}

/// The state document of every good telegram of every fixture: valid JSON, units in every key,
/// the meter timestamp in ISO 8601 with offset.
#[test]
fn state_documents_of_every_fixture() {
    insta::glob!("../../../../fixtures/telegrams", "*.txt", |path| {
        let bytes = std::fs::read(path).unwrap();
        let docs: Vec<Value> = readings(&bytes).iter().map(|r| json_of(|w| r.write_json(w))).collect();
        for d in &docs {
            let obj = d.as_object().unwrap();
            assert!(obj["seq"].is_u64());
            for (k, v) in obj {
                match k.as_str() {
                    "seq" | "tariff" => assert!(v.is_u64()),
                    "ts" | "gas_ts" => assert!(v.is_null() || is_iso8601_with_offset(v.as_str().unwrap()), "{k}: {v}"),
                    k => {
                        assert!(
                            [ "_w", "_kwh", "_v", "_a", "_m3"].iter().any(|u| k.ends_with(u)),
                            "key {k} does not name its unit"
                        );
                        assert!(v.is_number(), "{k}: {v}");
                    }
                }
            }
        }
        insta::assert_json_snapshot!(docs);
    });
}

#[track_caller]
fn check_values(file: &str, expect: &[(&str, f64)], ts: Option<&str>) {
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    let rs = readings(&bytes);
    assert_eq!(rs.len(), 1, "{file}");
    let doc = json_of(|w| rs[0].write_json(w));
    for (k, v) in expect {
        assert_eq!(doc[k].as_f64(), Some(*v), "{file}: {k} in {doc}");
    }
    if let Some(ts) = ts {
        assert_eq!(doc["ts"], ts);
    }
}

/// Values the fixtures' sources assert (fixtures/telegrams/INDEX.md), in W, kWh, V, A, m³.
#[test]
fn state_values_equal_the_oracles() {
    check_values(
        "ndokter-dsmr_parser__TELEGRAM_V5.txt",
        &[("energy_import_t1_kwh", 4.426), ("power_import_w", 244.0), ("voltage_l1_v", 230.0), ("current_l1_a", 0.48), ("gas_m3", 0.107)],
        Some("2017-01-02T19:20:02+01:00"),
    );
    check_values(
        "ndokter-dsmr_parser__TELEGRAM_V4_2.txt",
        &[("energy_import_t1_kwh", 1581.123), ("energy_import_t2_kwh", 1435.706), ("power_import_w", 2027.0), ("current_l2_a", 6.0), ("gas_m3", 981.443)],
        Some("2016-11-13T20:57:57+01:00"),
    );
    check_values(
        "ndokter-dsmr_parser__TELEGRAM_V5_EON_HU.txt",
        &[("energy_import_kwh", 173.64), ("energy_import_t1_kwh", 47.719), ("energy_export_kwh", 627.177), ("voltage_l1_v", 240.4), ("current_l1_a", 3.0)],
        None,
    );
}

fn entity_key_exists(e: &Entity, state: &Value, diag: &Value, power: &Value) -> bool {
    let doc = match e.leaf {
        "state" => state,
        "diag" => diag,
        "power" => power,
        _ => return false,
    };
    doc.get(e.key).is_some()
}

/// Checks one discovery document the way Home Assistant's MQTT sensor schema does.
#[track_caller]
fn check_ha_sensor(doc: &Value, diagnostic: bool) {
    let o = doc.as_object().unwrap();
    for key in ["name", "unique_id", "state_topic", "value_template", "availability_topic", "payload_available", "payload_not_available", "device"] {
        assert!(o.contains_key(key), "missing {key}: {doc}");
    }
    let dev = o["device"].as_object().unwrap();
    assert!(!dev["identifiers"].as_array().unwrap().is_empty());
    for key in ["name", "manufacturer", "model", "sw_version"] {
        assert!(dev[key].is_string(), "device.{key}");
    }
    let unit = o.get("unit_of_measurement").and_then(Value::as_str);
    let class = o.get("device_class").and_then(Value::as_str);
    let state_class = o.get("state_class").and_then(Value::as_str);
    // Units HA accepts for each device class we use.
    let allowed: &[&str] = match class {
        Some("power") => &["W"],
        Some("energy") => &["kWh"],
        Some("voltage") => &["V", "mV"],
        Some("battery") => &["%"],
        Some("current") => &["A", "mA"],
        Some("gas") => &["m³"],
        Some("signal_strength") => &["dBm"],
        Some("duration") => &["s", "ms"],
        Some("data_size") => &["B"],
        None => &[],
        Some(other) => panic!("unexpected device_class {other}"),
    };
    if class.is_some() {
        assert!(allowed.contains(&unit.unwrap()), "{class:?} with unit {unit:?}");
    }
    match class {
        Some("energy") | Some("gas") => assert_eq!(state_class, Some("total_increasing")),
        Some("power") | Some("voltage") | Some("current") | Some("signal_strength") => assert_eq!(state_class, Some("measurement")),
        _ => assert!(matches!(state_class, Some("measurement" | "total" | "total_increasing"))),
    }
    assert_eq!(o.get("entity_category").and_then(Value::as_str), diagnostic.then_some("diagnostic"));
    assert_eq!(o["availability_topic"], "p1/meter1/status");
    assert!(o["value_template"].as_str().unwrap().starts_with("{{ value_json."));
}

/// Discovery for the Iskra AM550 (the user's meter): every document is HA-valid, unique ids are
/// unique, and each template's key exists in the document its state topic carries.
#[test]
fn discovery_documents_for_the_am550() {
    let c = cfg();
    let bytes = std::fs::read(fixtures().join("Wassasin-dsmr5__isk_ISK_AM550.txt")).unwrap();
    let r = readings(&bytes)[0];
    let mask = r.present_mask();
    let state = json_of(|w| r.write_json(w));
    let diag = json_of(|w| Diag { reset_reason: "power_on", rssi_dbm: Some(-60), free_heap: Some(1000), last_telegram_age_ms: Some(10), ..Diag::default() }.write_json(w));
    let power = power_doc(&PowerSample { acin_mv: 5012, acin_ma: 95, battery_mv: 4150, acin_present: true, ..PowerSample::default() });
    let n = payload::discovery_count(mask, true);
    assert_eq!(n, mask.count_ones() as usize + DIAG_ENTITIES.len() + POWER_ENTITIES.len());
    let mut ids = BTreeSet::new();
    let mut docs = Vec::new();
    for i in 0..n {
        let e = payload::discovery_entity(mask, true, i).unwrap();
        let topic = payload::discovery_topic(&c, e.id);
        let doc = json_of(|w| payload::write_discovery(&c, &e, w));
        check_ha_sensor(&doc, e.diagnostic);
        assert!(entity_key_exists(&e, &state, &diag, &power), "{} not in its document", e.key);
        assert!(ids.insert(doc["unique_id"].as_str().unwrap().to_owned()), "duplicate unique_id");
        assert_eq!(doc["state_topic"], format!("p1/meter1/{}", e.leaf));
        docs.push(serde_json::json!({ "topic": topic.as_str(), "payload": doc }));
    }
    assert!(payload::discovery_entity(mask, true, n).is_none());
    // Reading fields are not diagnostic; device telemetry is.
    assert!(docs.iter().any(|d| d["payload"]["device_class"] == "power" && d["payload"].get("entity_category").is_none()));
    insta::assert_json_snapshot!(docs);
}

/// Topics, the diagnostics document and the power document.
#[test]
fn topics_diag_and_power_documents() {
    let c = cfg();
    let topics: Vec<String> = ["state", "status", "diag", "power", "telegram"].iter().map(|l| payload::topic(&c, l).to_string()).collect();
    assert_eq!(topics, ["p1/meter1/state", "p1/meter1/status", "p1/meter1/diag", "p1/meter1/power", "p1/meter1/telegram"]);
    assert_eq!(payload::ha_status_topic(&c).as_str(), "homeassistant/status");
    assert_eq!(payload::discovery_topic(&c, "power_import").as_str(), "homeassistant/sensor/meter1/power_import/config");
    let diag = Diag {
        uptime_ms: 3_601_500,
        rssi_dbm: Some(-67),
        telegrams_ok: 3600,
        crc_errors: 2,
        framing_errors: 1,
        dropped_bytes: 17,
        queue_depth: 3,
        queue_capacity: 600,
        queue_high_water: 61,
        ring_dropped: 0,
        published: 3597,
        last_telegram_age_ms: Some(400),
        mqtt_connects: 2,
        mqtt_failures: 1,
        reset_reason: "brownout",
        ..Diag::default()
    };
    let d = json_of(|w| diag.write_json(w));
    for key in ["uptime_s", "rssi_dbm", "free_heap", "telegrams_ok", "crc_errors", "framing_errors", "dropped_bytes", "queue_depth", "ring_dropped", "last_telegram_age_ms", "reset_reason", "fw_version"] {
        assert!(d.get(key).is_some(), "diag lacks {key}");
    }
    let p = power_doc(&PowerSample { acin_mv: 4987, acin_ma: 120, battery_mv: 4102, charge_ma: 45, temp_dc: 412, acin_present: true, charging: true, ..PowerSample::default() });
    insta::assert_json_snapshot!("diag_and_power", serde_json::json!({ "topics": topics, "diag": d, "power": p }));
}

/// Per-field topic values: the exact decimal text, unit as in the state document.
#[test]
fn per_field_values_are_exact_decimals() {
    let bytes = std::fs::read(fixtures().join("Wassasin-dsmr5__isk_ISK_AM550.txt")).unwrap();
    let r = readings(&bytes)[0];
    let fields: Vec<String> = FIELDS.iter().filter_map(|f| (f.get)(&r).map(|v| format!("{} = {v}", f.id))).collect();
    insta::assert_snapshot!(fields.join("\n"));
}
