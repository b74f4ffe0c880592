//! The virtual M5StickC's power monitor is the simulator's AXP192/P1-supply/LiPo model read
//! through `firmware-axp192`: the power topic and the `ev=power` console lines must move as that
//! model says (port kind, cable pulled, trips), not stay at fixed numbers.

use std::thread;
use std::time::Duration;

use crate::rig::{start_rumqttd, Device, Meter, MeterPort, Msg, Subscriber};

const SCALE: u32 = 20;
const TICK: Duration = Duration::from_millis(1000 / SCALE as u64);

fn device(port: &MeterPort, broker_port: u16, id: &str, extra: &[&str]) -> Device {
    let broker = format!("mqtt://127.0.0.1:{broker_port}");
    let scale = SCALE.to_string();
    let mut args = vec!["--p1", &port.path, "--broker", &broker, "--device-id", id, "--time-scale", &scale];
    args.extend_from_slice(&["--set", "power_interval_s=1"]);
    args.extend_from_slice(extra);
    Device::start(&args)
}

/// Feeds `n` meter seconds of telegrams (so the firmware publishes, i.e. transmits).
fn feed(meter: &mut Meter, port: &mut MeterPort, n: usize) {
    for _ in 0..n {
        port.write(&meter.next().0);
        thread::sleep(TICK);
    }
}

fn power_docs(msgs: &[Msg], id: &str) -> Vec<serde_json::Value> {
    let topic = format!("p1/{id}/power");
    msgs.iter().filter(|m| m.topic == topic).map(Msg::json).collect()
}

fn num(doc: &serde_json::Value, key: &str) -> i64 {
    doc[key].as_i64().unwrap_or_else(|| panic!("{key} missing in {doc}"))
}

/// A key's value in an `ev=power` console line.
fn field(line: &str, key: &str) -> i64 {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} missing in {line}"))
}

/// Feeds telegrams until a power document on `id` satisfies `want`; returns it and the documents
/// seen on the way. Fails after 30 s of wall time.
fn wait_doc(
    sub: &Subscriber,
    meter: &mut Meter,
    port: &mut MeterPort,
    id: &str,
    mut want: impl FnMut(&serde_json::Value) -> bool,
) -> (serde_json::Value, Vec<serde_json::Value>) {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while std::time::Instant::now() < end {
        feed(meter, port, 1);
        while let Ok(m) = sub.rx.try_recv() {
            if m.topic == format!("p1/{id}/power") {
                let d = m.json();
                if want(&d) {
                    return (d, seen);
                }
                seen.push(d);
            }
        }
    }
    panic!("no matching power document within 30 s; last: {:?}", seen.last());
}

/// DSMR 4 gives at most 100 mA: the charger gets what the gateway leaves, ACIN sags to the
/// charger's 4.5 V hold-up and the policy calls the supply limited. The same stick on a DSMR 5
/// port draws its full 100 mA charge current plus the load, above 100 mA.
#[test]
fn dsmr4_port_limits_acin_to_100ma_while_dsmr5_charges_at_full_current() {
    let broker = start_rumqttd();
    let sub = Subscriber::start(broker, "p1/+/power");
    let (mut port4, mut port5) = (MeterPort::open(), MeterPort::open());
    let mut dev4 = device(&port4, broker, "pw-dsmr4", &["--supply", "dsmr4", "--soc", "50"]);
    let mut dev5 = device(&port5, broker, "pw-dsmr5", &["--supply", "dsmr5", "--soc", "50"]);
    dev4.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    dev5.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let (mut m4, mut m5) = (Meter::am550(3), Meter::am550(4));
    let mut msgs = Vec::new();
    for _ in 0..20 {
        feed(&mut m4, &mut port4, 1);
        feed(&mut m5, &mut port5, 1);
    }
    sub.collect_until(
        Duration::from_secs(20),
        |m| power_docs(m, "pw-dsmr4").len() >= 12 && power_docs(m, "pw-dsmr5").len() >= 12,
        &mut msgs,
    );
    let d4 = power_docs(&msgs, "pw-dsmr4");
    let d5 = power_docs(&msgs, "pw-dsmr5");
    // Past the boot (a cold AXP192 charges at 780 mA until the driver sets 100 mA).
    for d in &d4[5..] {
        assert_eq!(d["acin_present"], true, "{d}");
        assert!(num(d, "acin_ma") <= 100, "DSMR 4 never gives more than 100 mA: {d}");
        assert!(num(d, "acin_mv") < 4600, "limited port sags below 4.6 V: {d}");
    }
    let last4 = d4.last().unwrap();
    assert_eq!(last4["supply"], "limited", "{last4}");
    assert!((1..95).contains(&num(last4, "battery_ma")), "the charger gets what is left of 100 mA: {last4}");
    let last5 = d5.last().unwrap();
    assert_eq!(last5["supply"], "strong", "{last5}");
    assert!(num(last5, "acin_ma") > 110 && num(last5, "acin_mv") > 4900, "DSMR 5: 100 mA charge + load at ~5 V: {last5}");
    assert!(num(last5, "battery_ma") >= 95, "{last5}");
    // The console line carries the same emulated readings.
    let line = dev4.wait_line(&["ev=power", "supply=limited"], Duration::from_secs(5));
    assert!(field(&line, "acin_ma") <= 100 && field(&line, "acin_mv") < 4600, "{line}");
}

/// `supply unplug` pulls the cable in the model: ACIN reads 0, the battery discharges and its
/// voltage falls; after the policy's unplug delay it counts an unplug. `supply plug` brings ACIN
/// back and the battery charges again.
#[test]
fn unplugged_stick_runs_on_its_battery_and_charges_again_when_plugged() {
    let broker = start_rumqttd();
    let id = "pw-unplug";
    let sub = Subscriber::start(broker, &format!("p1/{id}/power"));
    let mut port = MeterPort::open();
    let mut dev = device(&port, broker, id, &["--soc", "60"]);
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let mut meter = Meter::am550(5);
    let (before, _) = wait_doc(&sub, &mut meter, &mut port, id, |d| d["acin_present"] == true && num(d, "battery_ma") > 0);
    assert!(num(&before, "acin_mv") > 4900, "{before}");

    dev.command("supply unplug");
    dev.wait_line(&["ev=control", "supply unplug"], Duration::from_secs(5));
    let line = dev.wait_line(&["ev=power", "acin_mv=0", "unplugs=1"], Duration::from_secs(30));
    assert_eq!(field(&line, "acin_ma"), 0, "{line}");
    assert!(field(&line, "bat_ma") < -20, "battery supplies the stick: {line}");
    let (first, _) = wait_doc(&sub, &mut meter, &mut port, id, |d| d["acin_present"] == false);
    let (counted, _) = wait_doc(&sub, &mut meter, &mut port, id, |d| num(d, "unplugs") == 1);
    // 30 more meter seconds on the battery.
    let (last, on_battery) = wait_doc(&sub, &mut meter, &mut port, id, {
        let mut n = 0;
        move |_| {
            n += 1;
            n > 30
        }
    });
    for d in on_battery.iter().chain([&first, &counted, &last]) {
        assert_eq!((num(d, "acin_mv"), num(d, "acin_ma")), (0, 0), "{d}");
        assert!(num(d, "battery_ma") < -20, "discharging: {d}");
        assert_eq!(d["charging"], false, "{d}");
    }
    assert!(num(&last, "battery_mv") < num(&before, "battery_mv"), "battery voltage falls: {before} -> {last}");
    assert_eq!(last["supply"], "absent", "{last}");

    dev.command("supply plug");
    dev.wait_line(&["ev=control", "supply plug"], Duration::from_secs(5));
    let (back, _) = wait_doc(&sub, &mut meter, &mut port, id, |d| d["acin_present"] == true);
    assert!(num(&back, "acin_mv") > 4900, "{back}");
    wait_doc(&sub, &mut meter, &mut port, id, |d| num(d, "battery_ma") > 0 && d["charging"] == true);
}

/// The strict (Omnia-like) meter cuts out on the cold AXP192's inrush and on radio peaks; the
/// AXP192 latches each ACIN loss and the policy counts it as a trip and lowers the TX power. The
/// same traffic on a DSMR 5 port with a full battery (no inrush) trips nothing.
#[test]
fn strict_meter_trips_are_counted() {
    let broker = start_rumqttd();
    let mut port_o = MeterPort::open();
    let mut port_5 = MeterPort::open();
    let mut omnia = device(&port_o, broker, "pw-omnia", &["--supply", "omnia", "--soc", "50"]);
    let mut dsmr5 = device(&port_5, broker, "pw-full", &["--supply", "dsmr5", "--soc", "100"]);
    omnia.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    dsmr5.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let (mut mo, mut m5) = (Meter::am550(8), Meter::am550(9));
    for _ in 0..15 {
        feed(&mut mo, &mut port_o, 1);
        feed(&mut m5, &mut port_5, 1);
    }
    let last = |dev: &Device| dev.lines().into_iter().rev().find(|l| l.contains("ev=power")).expect("a power line");
    let lo = last(&omnia);
    assert!(field(&lo, "trips") >= 1, "the strict meter tripped: {lo}");
    assert!(field(&lo, "tx_dbm") < 17, "the policy lowered the TX power after a trip: {lo}");
    let l5 = last(&dsmr5);
    assert_eq!(field(&l5, "trips"), 0, "{l5}");
    assert_eq!(field(&l5, "brownouts"), 0, "{l5}");
}

/// `supply trip` fires the port's over-current cut-out for the model's 50 ms: far shorter than the
/// firmware's sampling period, so only the AXP192's latched ACIN-removed IRQ can tell the policy.
/// It is counted as one trip, and the TX power drops by 3 dB.
#[test]
fn a_trip_between_two_samples_is_counted_from_the_latched_irq() {
    let broker = start_rumqttd();
    let id = "pw-trip";
    let sub = Subscriber::start(broker, &format!("p1/{id}/power"));
    let mut port = MeterPort::open();
    let mut dev = device(&port, broker, id, &["--soc", "100", "--set", "power_interval_s=5"]);
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let mut meter = Meter::am550(6);
    let (before, _) = wait_doc(&sub, &mut meter, &mut port, id, |d| d["acin_present"] == true);
    assert_eq!((num(&before, "trips"), num(&before, "tx_dbm")), (0, 17), "{before}");
    dev.command("supply trip");
    dev.wait_line(&["ev=control", "supply trip"], Duration::from_secs(5));
    let (after, seen) = wait_doc(&sub, &mut meter, &mut port, id, |d| num(d, "trips") >= 1);
    assert!(seen.iter().chain([&after]).all(|d| d["acin_present"] == true), "no sample saw ACIN gone: {seen:?}");
    assert_eq!((num(&after, "trips"), num(&after, "tx_dbm"), num(&after, "unplugs")), (1, 14, 0), "{after}");
}
