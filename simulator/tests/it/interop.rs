//! Interop with an independent parser: ndokter's dsmr_parser (PyPI) reads our TCP sink through its
//! own `SocketReader` and must decode the same values we recorded as sent, for every profile.
//!
//! Needs `$REPO/.venv/bin/python` with dsmr-parser (ci/setup.d/20-python-venv.sh). Without it the
//! test is skipped with a loud message locally, and fails when `CI` is set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use simulator::run::{self, DataRequest, RunOptions, Speed};
use simulator::sinks::TcpFanout;
use simulator::{Meter, Profile, Sent};

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("interop: {} missing in CI; run ci/setup.sh", p.display());
    }
    eprintln!("\n!!!!!!!! SKIPPED interop test: {} not found (run ci/setup.d/20-python-venv.sh) !!!!!!!!\n", p.display());
    None
}

fn num(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Compares what dsmr_parser decoded with what we sent; returns how many values were compared.
#[track_caller]
fn compare(profile: &str, theirs: &serde_json::Value, ours: &Sent) -> usize {
    let mut n = 0;
    let mut eq = |name: &str, want: Option<f64>| {
        if let (Some(v), Some(w)) = (theirs.get(name), want) {
            let got = num(v).unwrap_or_else(|| panic!("{profile}: {name} = {v} is not a number"));
            assert!((got - w).abs() < 1e-9, "{profile}: {name}: dsmr_parser {got}, we sent {w}");
            n += 1;
        }
    };
    eq("ELECTRICITY_USED_TARIFF_1", ours.energy_import_kwh[0]);
    eq("ELECTRICITY_USED_TARIFF_2", ours.energy_import_kwh[1]);
    eq("ELECTRICITY_DELIVERED_TARIFF_1", ours.energy_export_kwh[0]);
    eq("ELECTRICITY_DELIVERED_TARIFF_2", ours.energy_export_kwh[1]);
    eq("CURRENT_ELECTRICITY_USAGE", ours.power_import_kw);
    eq("CURRENT_ELECTRICITY_DELIVERY", ours.power_export_kw);
    for (i, l) in ["L1", "L2", "L3"].iter().enumerate() {
        eq(&format!("INSTANTANEOUS_VOLTAGE_{l}"), ours.voltage_v[i]);
        eq(&format!("INSTANTANEOUS_CURRENT_{l}"), ours.current_a[i]);
        eq(&format!("INSTANTANEOUS_ACTIVE_POWER_{l}_POSITIVE"), ours.phase_import_kw[i]);
        eq(&format!("INSTANTANEOUS_ACTIVE_POWER_{l}_NEGATIVE"), ours.phase_export_kw[i]);
        eq(&format!("VOLTAGE_SAG_{l}_COUNT"), ours.sags[i].map(|v| v as f64));
        eq(&format!("VOLTAGE_SWELL_{l}_COUNT"), ours.swells[i].map(|v| v as f64));
    }
    eq("SHORT_POWER_FAILURE_COUNT", ours.power_failures.map(|v| v as f64));
    eq("LONG_POWER_FAILURE_COUNT", ours.long_power_failures.map(|v| v as f64));
    eq("BELGIUM_CURRENT_AVERAGE_DEMAND", ours.average_demand_kw);
    eq("P1_MESSAGE_TIMESTAMP", ours.meter_time.map(|t| t.timestamp() as f64));
    eq("ELECTRICITY_ACTIVE_TARIFF", ours.tariff.map(f64::from));
    let gas = ours.mbus.iter().find(|m| m.type_code == Some(3)).and_then(|m| m.reading);
    eq("HOURLY_GAS_METER_READING", gas);
    eq("GAS_METER_READING", gas);
    if let Some(devs) = theirs.get("MBUS_DEVICES") {
        for m in &ours.mbus {
            if let Some(d) = devs.get(m.channel.to_string()) {
                if let (Some(v), Some(w)) = (d.get("MBUS_METER_READING").and_then(num), m.reading) {
                    assert!((v - w).abs() < 1e-9, "{profile}: M-Bus {} reading: dsmr_parser {v}, we sent {w}", m.channel);
                    n += 1;
                }
            }
        }
    }
    n
}

fn spec_for(profile: &str) -> &'static str {
    match profile {
        "kaifa-dsmr42" => "V4",
        "dsmr22-iskra-mt382" => "V2_2",
        "fluvius-emucs" | "sagemcom-t211" => "BELGIUM_FLUVIUS",
        _ => "V5",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsmr_parser_reads_our_tcp_sink_and_decodes_our_values() {
    let Some(py) = python() else { return };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dsmr_parser_tcp.py");
    const N: usize = 12;
    for profile in Profile::builtins().expect("profiles") {
        let name = profile.name.clone();
        let mut fanout = TcpFanout::bind("127.0.0.1:0").await.expect("bind");
        let port = fanout.local_addr().port();
        let mut child = Command::new(&py)
            .arg(&script)
            .args(["127.0.0.1", &port.to_string(), spec_for(&name), &N.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python");
        assert!(fanout.wait_for_clients(1, Duration::from_secs(20)).await, "{name}: dsmr_parser did not connect");
        let start: DateTime<Utc> = "2026-03-29T01:59:55+01:00".parse().expect("t");
        let mut meter = Meter::new(profile, 11, start);
        // 20x real time keeps byte pacing (the reader sees realistic fragments) and the test short.
        let opts = RunOptions { speed: Speed::Factor(20.0), count: Some(N as u64 + 2), ..RunOptions::default() };
        let mut sent = Vec::new();
        run::run(&mut meter, &mut fanout, &opts, &DataRequest::new(true), |t, _| sent.push(t.sent.clone()))
            .await
            .expect("run");
        let stdout = child.stdout.take().expect("stdout");
        let lines: Vec<String> = tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().map_while(Result::ok).collect())
            .await
            .expect("join");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(lines.len(), N, "{name}: dsmr_parser decoded {} of {N} telegrams", lines.len());
        let mut compared = BTreeMap::new();
        for (i, l) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let n = compare(&name, &v, &sent[i]);
            *compared.entry(n).or_insert(0) += 1;
            assert!(n >= 5, "{name}: only {n} values compared in telegram {i}: {l}");
        }
        eprintln!("interop {name}: {N} telegrams, values compared per telegram: {compared:?}");
    }
}
