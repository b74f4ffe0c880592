use std::collections::BTreeMap;
use std::thread;
use std::time::Duration;

use crate::rig::{check_state, start_rumqttd, Device, Expected, Meter, MeterPort, Msg, Mosquitto, Proxy, Subscriber};

/// Wall time of one meter second at the test's time scale.
const SCALE: u32 = 20;
const TICK: Duration = Duration::from_millis(1000 / SCALE as u64);

fn device(port: &MeterPort, broker_port: u16, id: &str, extra: &[&str]) -> Device {
    device_env(port, broker_port, id, extra, &[])
}

fn device_env(port: &MeterPort, broker_port: u16, id: &str, extra: &[&str], env: &[(&str, &str)]) -> Device {
    let broker = format!("mqtt://127.0.0.1:{broker_port}");
    let scale = SCALE.to_string();
    let mut args = vec!["--p1", &port.path, "--broker", &broker, "--device-id", id, "--time-scale", &scale];
    args.extend_from_slice(&["--set", "reconnect_max_ms=8000", "--set", "diag_interval_s=5", "--set", "keepalive_s=10"]);
    args.extend_from_slice(extra);
    Device::start_env(&args, env)
}

fn states(msgs: &[Msg]) -> Vec<serde_json::Value> {
    msgs.iter().filter(|m| m.topic.ends_with("/state")).map(Msg::json).collect()
}

fn send(meter: &mut Meter, port: &mut MeterPort, n: usize, sent: &mut Vec<Expected>) {
    for _ in 0..n {
        let (bytes, e) = meter.next();
        port.write(&bytes);
        sent.push(e);
        thread::sleep(TICK);
    }
}

/// Every reading arrives once, in order, with the values the meter sent; then the broker is
/// away for 60 s of meter time and every reading still arrives, in order, none lost.
fn every_reading_once_in_order(broker_port: u16, id: &str) {
    let proxy = Proxy::start(broker_port);
    let sub = Subscriber::start(broker_port, &format!("p1/{id}/#"));
    let mut port = MeterPort::open();
    let mut dev = device(&port, proxy.port, id, &[]);
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let mut meter = Meter::am550(7);
    let mut sent = Vec::new();

    send(&mut meter, &mut port, 20, &mut sent);
    proxy.cut();
    dev.wait_line(&["ev=mqtt", "state=disconnected"], Duration::from_secs(10));
    send(&mut meter, &mut port, 60, &mut sent);
    proxy.restore();
    send(&mut meter, &mut port, 10, &mut sent);

    let mut msgs = Vec::new();
    let n = sent.len();
    sub.collect_until(Duration::from_secs(30), |m| states(m).len() >= n, &mut msgs);
    // Anything late (a duplicate) would arrive now.
    thread::sleep(Duration::from_millis(300));
    while let Ok(m) = sub.rx.try_recv() {
        msgs.push(m);
    }
    let docs = states(&msgs);
    let seqs: Vec<u64> = docs.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>(), "each reading once, in order");
    for (doc, e) in docs.iter().zip(&sent) {
        check_state(doc, e);
    }
    let status: Vec<&Msg> = msgs.iter().filter(|m| m.topic == format!("p1/{id}/status")).collect();
    assert!(status.iter().any(|m| m.payload == b"online"), "availability online published");
    // The device's own counters agree: no drops, every reading published.
    sub.collect_until(
        Duration::from_secs(10),
        |m| m.iter().filter(|m| m.topic.ends_with("/diag")).any(|d| d.json()["published"].as_u64() == Some(n as u64)),
        &mut msgs,
    );
    let diag = msgs.iter().rev().find(|m| m.topic.ends_with("/diag")).unwrap().json();
    assert_eq!(diag["ring_dropped"], 0);
    assert_eq!(diag["telegrams_ok"].as_u64(), Some(n as u64));
    assert_eq!(diag["crc_errors"], 0);
    assert!(diag["mqtt_connects"].as_u64().unwrap() >= 2, "reconnected after the outage: {diag}");
    let lines = dev.lines();
    assert!(lines.iter().all(|l| l.starts_with("t=")), "console lines are logfmt");
}

#[test]
fn rumqttd_every_reading_once_in_order_through_a_60s_outage() {
    every_reading_once_in_order(start_rumqttd(), "it-rumqttd");
}

/// A ring smaller than the outage drops the oldest readings and counts exactly how many.
#[test]
fn small_ring_drops_oldest_and_counts_them() {
    let broker_port = start_rumqttd();
    let id = "it-ring";
    let proxy = Proxy::start(broker_port);
    let sub = Subscriber::start(broker_port, &format!("p1/{id}/#"));
    let mut port = MeterPort::open();
    let mut dev = device(&port, proxy.port, id, &["--ring", "20"]);
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let mut meter = Meter::am550(11);
    let mut sent = Vec::new();
    send(&mut meter, &mut port, 10, &mut sent);
    proxy.cut();
    dev.wait_line(&["ev=mqtt", "state=disconnected"], Duration::from_secs(10));
    send(&mut meter, &mut port, 60, &mut sent);
    proxy.restore();
    send(&mut meter, &mut port, 5, &mut sent);
    let n = sent.len() as u64;

    let mut msgs = Vec::new();
    let last_seq = |m: &[Msg]| states(m).iter().filter_map(|d| d["seq"].as_u64()).max();
    sub.collect_until(Duration::from_secs(30), |m| last_seq(m) == Some(n), &mut msgs);
    sub.collect_until(
        Duration::from_secs(10),
        |m| m.iter().filter(|m| m.topic.ends_with("/diag")).any(|d| d.json()["telegrams_ok"].as_u64() == Some(n) && d.json()["queue_depth"] == 0),
        &mut msgs,
    );
    let docs = states(&msgs);
    let seqs: Vec<u64> = docs.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order, no duplicates: {seqs:?}");
    let diag = msgs.iter().rev().find(|m| m.topic.ends_with("/diag")).unwrap().json();
    let dropped = diag["ring_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "the ring was too small: {diag}");
    assert_eq!(seqs.len() as u64 + dropped, n, "delivered + dropped == sent ({diag})");
    // The dropped ones are the oldest of the outage: one gap, right after the last delivered
    // reading before the cut.
    let missing: Vec<u64> = (1..=n).filter(|s| !seqs.contains(s)).collect();
    assert!(missing.windows(2).all(|w| w[1] == w[0] + 1), "one contiguous gap: {missing:?}");
    let by_seq: BTreeMap<u64, &serde_json::Value> = docs.iter().map(|d| (d["seq"].as_u64().unwrap(), d)).collect();
    for (s, doc) in by_seq {
        check_state(doc, &sent[s as usize - 1]);
    }
    let overflow_lines = dev.lines().iter().filter(|l| l.contains("kind=ring_overflow")).count() as u64;
    assert_eq!(overflow_lines, dropped, "one console line per dropped reading");
}

/// Raw telegrams are published unchanged, per-field topics carry the state's values; WiFi drops
/// are survived like broker outages; HA's birth message (and garbage on its topic) is handled; a
/// silent meter is reported; the MQTT password never appears on the console or in a payload.
#[test]
fn raw_telegrams_wifi_drop_and_ha_birth() {
    let broker_port = start_rumqttd();
    let id = "it-raw";
    let sub = Subscriber::start(broker_port, "#");
    let mut port = MeterPort::open();
    const SECRET: &str = "s3cret-pw-4711";
    let mut dev = device_env(
        &port,
        broker_port,
        id,
        &["--raw-telegrams", "--per-field-topics", "--username", "gw", "--password-env", "IT_MQTT_PW"],
        &[("IT_MQTT_PW", SECRET)],
    );
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let mut meter = Meter::am550(3);
    let mut raws = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..3 {
        let (bytes, e) = meter.next();
        port.write(&bytes);
        raws.push(bytes);
        sent.push(e);
        thread::sleep(TICK);
    }
    dev.command("wifi down");
    dev.wait_line(&["ev=mqtt", "state=disconnected", "error=link_down"], Duration::from_secs(10));
    send(&mut meter, &mut port, 5, &mut sent);
    dev.command("wifi up");
    send(&mut meter, &mut port, 2, &mut sent);
    let n = sent.len();
    let mut msgs = Vec::new();
    sub.collect_until(Duration::from_secs(30), |m| states(m).len() >= n, &mut msgs);
    let seqs: Vec<u64> = states(&msgs).iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>());
    let raw: Vec<&Msg> = msgs.iter().filter(|m| m.topic == format!("p1/{id}/telegram")).collect();
    for (m, bytes) in raw.iter().zip(&raws) {
        assert_eq!(&m.payload, bytes, "raw telegram unchanged");
    }
    assert!(raw.len() >= 3);

    // HA birth: discovery is published again (after garbage and an oversize payload, which are
    // counted and ignored).
    let discovery = |m: &[Msg]| m.iter().filter(|m| m.topic.starts_with("homeassistant/sensor/") && m.topic.contains(id)).count();
    let before = discovery(&msgs);
    let per_round = msgs
        .iter()
        .filter(|m| m.topic.starts_with("homeassistant/sensor/") && m.topic.contains(id))
        .map(|m| m.topic.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(per_round > 0, "discovery on connect");
    let hostile: [Vec<u8>; 2] = [vec![0xFFu8; 5000], b"garbage".to_vec()];
    for payload in &hostile {
        sub.client.publish("homeassistant/status", rumqttc::QoS::AtMostOnce, false, payload.clone()).unwrap();
    }
    thread::sleep(Duration::from_millis(400));
    sub.client.publish("homeassistant/status", rumqttc::QoS::AtLeastOnce, false, "online").unwrap();
    sub.collect_until(Duration::from_secs(10), |m| discovery(m) >= before + per_round, &mut msgs);
    dev.wait_line(&["kind=mqtt_oversize"], Duration::from_secs(5));
    for m in msgs.iter().filter(|m| m.topic.starts_with("homeassistant/sensor/")) {
        let d = m.json();
        assert_eq!(d["availability_topic"], format!("p1/{id}/status"));
        assert!(m.retain || d.get("unique_id").is_some());
    }

    // A flood of birth messages: discovery is re-sent a bounded number of times (debounced to
    // once per 5 s of device time), and readings keep flowing.
    let rounds = |m: &[Msg]| discovery(m) / per_round;
    let before_flood = rounds(&msgs);
    const FLOOD: usize = 500;
    for _ in 0..FLOOD {
        sub.client.publish("homeassistant/status", rumqttc::QoS::AtMostOnce, false, "online").unwrap();
    }
    let (bytes, e) = meter.next();
    port.write(&bytes);
    sent.push(e);
    let n = sent.len();
    sub.collect_until(Duration::from_secs(10), |m| states(m).len() >= n, &mut msgs);
    thread::sleep(Duration::from_millis(600));
    while let Ok(m) = sub.rx.try_recv() {
        msgs.push(m);
    }
    let flood_rounds = rounds(&msgs) - before_flood;
    assert!((1..=3).contains(&flood_rounds), "{FLOOD} birth messages gave {flood_rounds} discovery rounds");

    // Per-field topics carry the same values as the state document.
    let last_state = states(&msgs).last().cloned().unwrap();
    let field = msgs.iter().rev().find(|m| m.topic == format!("p1/{id}/power_import")).expect("per-field topic");
    assert_eq!(String::from_utf8_lossy(&field.payload), last_state["power_import_w"].to_string());

    // The meter goes quiet: reported once its silence exceeds meter_silent_s (10 s meter time).
    dev.wait_line(&["ev=error", "kind=meter_silent"], Duration::from_secs(5));
    sub.collect_until(
        Duration::from_secs(10),
        |m| m.iter().filter(|m| m.topic.ends_with("/diag")).any(|d| d.json()["meter_silent"] == true),
        &mut msgs,
    );

    // Credentials never leave the device in clear text except in CONNECT.
    let console = dev.lines().join("\n");
    assert!(!console.contains(SECRET), "password on the console");
    assert!(msgs.iter().all(|m| !String::from_utf8_lossy(&m.payload).contains(SECRET)), "password in a payload");
    crate::hostile_inputs("MQTT input to the device", hostile.len() + FLOOD, "firmware-host it::chain::raw_telegrams_wifi_drop_and_ha_birth");
}

/// The device's own status topic, which it subscribes to for the publish check, tolerates garbage,
/// an oversize payload and a flood: each is ignored (the oversize one counted), the session stays
/// up, and every reading still arrives once, in order, with the meter's values.
#[test]
fn own_status_topic_tolerates_garbage_oversize_and_flood() {
    let broker_port = start_rumqttd();
    let id = "it-status";
    let status = format!("p1/{id}/status");
    let sub = Subscriber::start(broker_port, &format!("p1/{id}/#"));
    let mut port = MeterPort::open();
    let mut dev = device(&port, broker_port, id, &[]);
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let mut meter = Meter::am550(5);
    let mut sent = Vec::new();
    send(&mut meter, &mut port, 2, &mut sent);
    let hostile: [Vec<u8>; 6] = [vec![0xFF; 5000], b"garbage".to_vec(), Vec::new(), vec![0xC3, 0x28], b"online\0".to_vec(), vec![b'o'; 47]];
    for payload in &hostile {
        sub.client.publish(status.as_str(), rumqttc::QoS::AtLeastOnce, false, payload.clone()).unwrap();
    }
    const FLOOD: usize = 500;
    for i in 0..FLOOD {
        sub.client.publish(status.as_str(), rumqttc::QoS::AtMostOnce, false, format!("flood {i}")).unwrap();
    }
    send(&mut meter, &mut port, 3, &mut sent);
    let n = sent.len();
    let mut msgs = Vec::new();
    sub.collect_until(Duration::from_secs(30), |m| states(m).len() >= n, &mut msgs);
    dev.wait_line(&["kind=mqtt_oversize"], Duration::from_secs(5));
    let oversize_counted = |m: &[Msg]| m.iter().filter(|d| d.topic.ends_with("/diag")).any(|d| d.json()["inbound_oversize"].as_u64() >= Some(1));
    sub.collect_until(Duration::from_secs(10), oversize_counted, &mut msgs);
    let docs = states(&msgs);
    let seqs: Vec<u64> = docs.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>());
    for (doc, e) in docs.iter().zip(&sent) {
        check_state(doc, e);
    }
    let console = dev.lines();
    let connects = console.iter().filter(|l| l.contains("ev=mqtt") && l.contains("state=connected")).count();
    assert_eq!(connects, 1, "the session did not survive:\n{}", console.join("\n"));
    assert!(!console.iter().any(|l| l.contains("panicked")), "{}", console.join("\n"));
    crate::hostile_inputs("MQTT input to the device", hostile.len() + FLOOD, "firmware-host it::chain::own_status_topic_tolerates_garbage_oversize_and_flood");
}

/// Interop: the same chain against mosquitto (Debian package), started on a free loopback port.
#[test]
#[ignore = "needs mosquitto (ci/setup.d/40-mosquitto.sh); run by ci/checks/40-fw-mosquitto.sh"]
fn mosquitto_every_reading_once_in_order_through_a_60s_outage() {
    let m = Mosquitto::start().expect("mosquitto is not installed (apt-get install mosquitto)");
    every_reading_once_in_order(m.port, "it-mosquitto");
}

/// `--transport both`: every telegram's power also goes out as an encrypted BTHome advertisement
/// on the virtual radio (UDP), decodable with the bind key, while MQTT carries the readings.
#[test]
fn ble_advertises_every_telegrams_power_encrypted() {
    use firmware_app::bthome::{decode, BindKey};
    let broker_port = start_rumqttd();
    let id = "it-ble";
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let sink = format!("udp://{}", udp.local_addr().unwrap());
    let key_hex = "00112233445566778899aabbccddeeff";
    let sub = Subscriber::start(broker_port, &format!("p1/{id}/state"));
    let mut port = MeterPort::open();
    let mut dev = device(&port, broker_port, id, &["--transport", "both", "--ble-sink", &sink, "--bind-key", key_hex]);
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let key = BindKey::from_hex(key_hex).unwrap();
    let mut meter = Meter::am550(5);
    let mut powers = Vec::new();
    for _ in 0..5 {
        let (bytes, e) = meter.next();
        port.write(&bytes);
        powers.push(e.power_import_w as u32);
        // One advertisement interval of meter time between telegrams.
        thread::sleep(TICK * 2);
    }
    let mut advertised = Vec::new();
    let mut buf = [0u8; 64];
    // Advertising never stops, so the wait is bounded by a deadline, not by the socket's timeout.
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < end {
        let Ok(n) = udp.recv(&mut buf) else { break };
        let (addr, ad) = buf[..n].split_at(6);
        let d = decode(addr.try_into().unwrap(), ad, Some(&key)).expect("decodes with the bind key");
        assert!(decode(addr.try_into().unwrap(), ad, Some(&BindKey([7; 16]))).is_err(), "a wrong key is rejected");
        if let Some(p) = d.values.power_import_w {
            advertised.push(p);
        }
        if powers.iter().all(|p| advertised.contains(p)) {
            break;
        }
    }
    assert!(powers.iter().all(|p| advertised.contains(p)), "every telegram's power advertised: sent {powers:?}, advertised {advertised:?}");
    let mut msgs = Vec::new();
    sub.collect_until(Duration::from_secs(10), |m| states(m).len() >= powers.len(), &mut msgs);
}
