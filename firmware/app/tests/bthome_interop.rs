//! Interop: our BTHome advertisements, decoded by bthome-ble (the parser Home Assistant uses).
//!
//! Values come from real fixture telegrams. Each advertisement goes through the virtual radio
//! (`firmware-host`'s UDP sink, over real loopback UDP) to `bthome_decode.py`, which feeds it to
//! bthome-ble. Checked: every value equals the telegram's to the object's resolution, sensor keys
//! are stable across the rotation, encrypted advertisements decrypt with the bind key and a wrong
//! key yields nothing.
//!
//! Needs `$REPO/.venv/bin/python` with bthome-ble (`ci/setup.d/20-python-venv.sh`). In CI (`CI`
//! set) a missing venv fails the test; elsewhere it is skipped with a loud message.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firmware_app::bthome::{BindKey, Config, Encoder, Field, FieldSet, Name, Values};

#[allow(dead_code)]
#[path = "../../host/src/ble_sink.rs"]
mod ble_sink;

const ADDRESS: [u8; 6] = [0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5];
const KEY: &str = "231d39c1d7cc1ab1aee224cd096db932";
const WRONG_KEY: &str = "231d39c1d7cc1ab1aee224cd096db933";
const FIXTURES: [&str; 4] = [
    "Wassasin-dsmr5__isk_ISK_AM550.txt",
    "athombv-node-dsmr-parser__dsmr-5.0-isk-1.txt",
    "dsmrreader-dsmr-reader__fluvius_multiple_gas_devices__TestDatalogger.txt",
    "ndokter-dsmr_parser__TELEGRAM_V5_EON_HU.txt",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python, or `None` (skip) when the venv is absent outside CI.
fn python() -> Option<PathBuf> {
    let venv = repo().join(".venv");
    let python = venv.join("bin/python");
    if !venv.exists() && std::env::var_os("CI").is_none() {
        // Straight to stderr: libtest would swallow eprintln! from a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED bthome interop: {} does not exist; run ci/setup.d/20-python-venv.sh. \
             This test fails in CI. !!!!!!!!\n",
            venv.display()
        );
        return None;
    }
    assert!(python.exists(), "{} missing: run ci/setup.d/20-python-venv.sh", python.display());
    Some(python)
}

/// A decimal register value ("000576.239") as an integer count of 10^-`decimals` units.
fn fixed(text: &str, decimals: u32, file: &str, obis: &str) -> u64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    assert!(frac.len() <= decimals as usize, "{file}: {obis} value {text:?} finer than expected");
    let digits = format!("{int}{frac:0<width$}", width = decimals as usize);
    digits.parse().unwrap_or_else(|e| panic!("{file}: {obis} value {text:?}: {e}"))
}

/// The values a gateway would advertise for the fixture telegram `file`, parsed independently of
/// the dsmr crate: tariff registers summed, the first gas channel.
fn fixture_values(file: &str) -> Values {
    let bytes = std::fs::read(repo().join("fixtures/telegrams").join(file)).expect("read fixture");
    let text = String::from_utf8_lossy(&bytes);
    let mut v = Values { battery_percent: Some(73), ..Values::default() };
    let mut import = None::<u64>;
    let mut export = None::<u64>;
    for line in text.lines() {
        let Some((obis, rest)) = line.split_once('(') else { continue };
        // The last parenthesised field holds the value (gas lines have a timestamp first).
        let value = rest.rsplit('(').next().unwrap_or(rest).trim_end_matches(')');
        let (number, unit) = value.split_once('*').unwrap_or((value, ""));
        let unit = unit.to_ascii_lowercase();
        let get = |decimals| fixed(number, decimals, file, obis);
        match (obis, unit.as_str()) {
            ("1-0:1.7.0", "kw") => v.power_import_w = Some(get(3) as u32),
            ("1-0:2.7.0", "kw") => v.power_export_w = Some(get(3) as u32),
            ("1-0:32.7.0", "v") => v.voltage_dv[0] = Some(get(1) as u32),
            ("1-0:52.7.0", "v") => v.voltage_dv[1] = Some(get(1) as u32),
            ("1-0:72.7.0", "v") => v.voltage_dv[2] = Some(get(1) as u32),
            ("1-0:31.7.0", "a") => v.current_ma[0] = Some(get(3) as u32),
            ("1-0:51.7.0", "a") => v.current_ma[1] = Some(get(3) as u32),
            ("1-0:71.7.0", "a") => v.current_ma[2] = Some(get(3) as u32),
            (o, "kwh") if o.starts_with("1-0:1.8.") && o != "1-0:1.8.0" => {
                import = Some(import.unwrap_or(0) + get(3));
            }
            (o, "kwh") if o.starts_with("1-0:2.8.") && o != "1-0:2.8.0" => {
                export = Some(export.unwrap_or(0) + get(3));
            }
            (o, "m3") if (o.ends_with(":24.2.1") || o.ends_with(":24.2.3")) && v.gas_l.is_none() => {
                v.gas_l = Some(get(3));
            }
            _ => {}
        }
    }
    v.energy_import_wh = import;
    v.energy_export_wh = export;
    assert!(v.power_import_w.is_some() && v.energy_import_wh.is_some(), "{file}: no power/energy found");
    v
}

/// Home Assistant's sensor name and the value in its unit, for one field's object.
fn ha_class(field: Field) -> &'static str {
    match field {
        Field::Battery => "battery",
        Field::PowerImport | Field::PowerExport => "power",
        Field::CurrentL1 | Field::CurrentL2 | Field::CurrentL3 => "current",
        Field::VoltageL1 | Field::VoltageL2 | Field::VoltageL3 => "voltage",
        Field::Gas => "gas",
        Field::EnergyImport | Field::EnergyExport => "energy",
    }
}

/// Value in Home Assistant's unit, and the object's resolution in that unit.
fn ha_value(field: Field, input: u64) -> (f64, f64) {
    let x = input as f64;
    match field {
        Field::Battery => (x, 1.0),
        Field::PowerImport | Field::PowerExport => (x, 0.01),
        Field::CurrentL1 | Field::CurrentL2 | Field::CurrentL3 => (x / 1000.0, 0.001),
        Field::VoltageL1 | Field::VoltageL2 | Field::VoltageL3 => (x / 10.0, 0.1),
        Field::Gas | Field::EnergyImport | Field::EnergyExport => (x / 1000.0, 0.001),
    }
}

/// The sensors bthome-ble should report for an advertisement carrying `fields` of `values`:
/// repeated kinds numbered `_1`, `_2` in order, a lone one unnumbered.
fn expected(fields: FieldSet, values: &Values) -> BTreeMap<String, (f64, f64)> {
    let mut out = BTreeMap::new();
    for field in fields.iter() {
        let same: Vec<Field> = field.class().iter().filter(|f| fields.contains(*f)).collect();
        let key = match same.iter().position(|f| *f == field) {
            Some(i) if same.len() > 1 => format!("{}_{}", ha_class(field), i + 1),
            _ => ha_class(field).to_owned(),
        };
        let input = values.get(field).expect("field carried has a value");
        out.insert(key, ha_value(field, input));
    }
    out
}

fn parse_sensors(words: &[&str]) -> BTreeMap<String, f64> {
    words
        .iter()
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap_or_else(|| panic!("bad sensor word {w:?}"));
            (k.to_owned(), v.parse::<f64>().unwrap_or_else(|e| panic!("{k}={v}: {e}")))
        })
        .collect()
}

#[track_caller]
fn check_sensors(context: &str, got: &BTreeMap<String, f64>, want: &BTreeMap<String, (f64, f64)>) {
    let got_keys: Vec<&String> = got.keys().filter(|k| *k != "packet_id").collect();
    let want_keys: Vec<&String> = want.keys().collect();
    assert_eq!(got_keys, want_keys, "{context}: sensor keys");
    for (key, (value, resolution)) in want {
        let g = got[key];
        assert!((g - value).abs() < resolution / 2.0, "{context}: {key} = {g}, telegram says {value} (±{resolution}/2)");
    }
}

/// Runs the decoder script on `requests`, with a deadline.
fn run_decoder(python: &Path, requests: &str) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bthome_decode.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {} {}: {e}", python.display(), script.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = requests.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bthome_decode.py did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().expect("writer thread").expect("write requests");
    let out = reader.join().expect("reader thread").expect("read answers");
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
    assert!(status.success(), "bthome_decode.py failed ({status}):\n{err}");
    out.lines().map(str::to_owned).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Sent {
    stream: String,
    fields: FieldSet,
    values: Values,
    encrypted: bool,
    key_ok: bool,
}

/// Encodes two full rotations per fixture and mode, sends them through the UDP sink, receives the
/// datagrams and checks what bthome-ble makes of them.
#[test]
fn bthome_ble_decodes_fixture_readings_plain_and_encrypted() {
    let Some(python) = python() else { return };
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    rx.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let sink = ble_sink::BleSink::open(&format!("udp://{}", rx.local_addr().expect("addr"))).expect("open sink");

    let key = BindKey::from_hex(KEY).expect("key");
    let mut requests = String::new();
    let mut sent = Vec::new();
    let mut ends = Vec::new();
    for (n, file) in FIXTURES.iter().enumerate() {
        let values = fixture_values(file);
        for (mode, bind_key, key_text, key_ok) in [
            ("plain", None, "-", true),
            ("enc", Some(key), KEY, true),
            ("wrongkey", Some(key), WRONG_KEY, false),
            ("downgrade", None, KEY, false),
        ] {
            let stream = format!("{n}-{mode}");
            let mut config = Config::new(ADDRESS);
            config.bind_key = bind_key;
            config.name = Some(Name::new("P1").expect("name"));
            let mut encoder = Encoder::new(&config).expect("encoder");
            encoder.set_counter(1000 + n as u32);
            let rounds = 2 * config.schedule().groups().len();
            let mut union = FieldSet::EMPTY;
            for _ in 0..rounds {
                let adv = encoder.encode(&values).expect("encode");
                assert!(adv.clamped.is_empty(), "{file}: fixture values are in range");
                assert!(adv.as_bytes().len() <= 31);
                sink.send(encoder.address(), adv.as_bytes()).expect("send");
                let mut buf = [0u8; 64];
                let len = rx.recv(&mut buf).expect("datagram within 5 s");
                let (address, ad) = ble_sink::parse_datagram(&buf[..len]).expect("datagram");
                assert_eq!((address, ad), (ADDRESS, adv.as_bytes()));
                requests += &format!("ad {stream} {key_text} {}\n", hex(&buf[..len]));
                union = union.union(adv.fields);
                sent.push(Sent { stream: stream.clone(), fields: adv.fields, values, encrypted: bind_key.is_some(), key_ok });
            }
            requests += &format!("end {stream}\n");
            ends.push((stream, union, values, key_ok));
        }
    }

    let answers = run_decoder(&python, &requests);
    let (ad_answers, end_answers): (Vec<&String>, Vec<&String>) = answers.iter().partition(|l| l.starts_with("ad "));
    assert_eq!(ad_answers.len(), sent.len(), "one answer per advertisement:\n{}", answers.join("\n"));
    for (i, (answer, s)) in ad_answers.iter().zip(&sent).enumerate() {
        let words: Vec<&str> = answer.split_whitespace().collect();
        let context = format!("advertisement {i} of {} ({answer})", s.stream);
        assert_eq!(words[1], s.stream, "{context}");
        assert_eq!(words[2], format!("encrypted={}", u8::from(s.encrypted)), "{context}");
        let sensors = parse_sensors(&words[4..]);
        if s.key_ok {
            assert_eq!(words[3], format!("verified={}", u8::from(s.encrypted)), "{context}");
            check_sensors(&context, &sensors, &expected(s.fields, &s.values));
            assert!(sensors.contains_key("packet_id"), "{context}: packet id");
        } else {
            assert_eq!(words[3], "verified=0", "{context}");
            assert!(sensors.is_empty(), "{context}: nothing may be decoded without the right key");
        }
    }
    assert_eq!(end_answers.len(), ends.len());
    for (answer, (stream, union, values, key_ok)) in end_answers.iter().zip(&ends) {
        let words: Vec<&str> = answer.split_whitespace().collect();
        assert_eq!(words[1], stream);
        let sensors = parse_sensors(&words[2..]);
        // After the whole rotation Home Assistant holds one sensor per field with its value:
        // keys do not move between groups.
        if *key_ok {
            check_sensors(&format!("stream {stream} after rotation"), &sensors, &expected(*union, values));
            assert_eq!(*union, fields_present(values), "{stream}: every value was advertised");
        } else {
            assert!(sensors.is_empty(), "{stream}: {answer}");
        }
    }
}

fn fields_present(values: &Values) -> FieldSet {
    let mut set = FieldSet::EMPTY;
    for f in Field::ALL.into_iter().filter(|f| values.get(*f).is_some()) {
        set.insert(f);
    }
    set
}

/// Kills the child on drop, so a failed assertion leaves no process behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// End to end: the sink sends to a Python receiver (`bthome_decode.py --listen`) that knows
/// nothing but the datagram format and the bind key.
#[test]
fn python_receiver_decodes_the_sinks_datagrams() {
    use std::io::BufRead;
    let Some(python) = python() else { return };
    let file = FIXTURES[0];
    let values = fixture_values(file);
    let mut config = Config::new(ADDRESS);
    config.bind_key = Some(BindKey::from_hex(KEY).expect("key"));
    let mut encoder = Encoder::new(&config).expect("encoder");
    let count = config.schedule().groups().len();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bthome_decode.py");
    let child = Command::new(&python)
        .arg(&script)
        .args(["--listen", "127.0.0.1:0", "--bind-key", KEY, "--timeout", "10", "--count"])
        .arg(count.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn receiver");
    let mut child = KillOnDrop(child);
    // The receiver exits after 10 s without a datagram, which ends these reads.
    let mut lines = std::io::BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("listening line").expect("read");
    let port = first.strip_prefix("listening 127.0.0.1:").unwrap_or_else(|| panic!("{first:?}"));
    let sink = ble_sink::BleSink::open(&format!("udp://127.0.0.1:{port}")).expect("open sink");

    let mut union = FieldSet::EMPTY;
    for i in 0..count {
        let adv = encoder.encode(&values).expect("encode");
        sink.send(encoder.address(), adv.as_bytes()).expect("send");
        union = union.union(adv.fields);
        let line = lines.next().unwrap_or_else(|| panic!("no answer for datagram {i}")).expect("read");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&words[..4], ["ad", "udp", "encrypted=1", "verified=1"], "{line}");
        let got = parse_sensors(&words[4..]);
        // The receiver shows every sensor seen so far; this datagram's must all be there.
        for (key, (value, resolution)) in expected(adv.fields, &values) {
            let g = got.get(&key).unwrap_or_else(|| panic!("datagram {i}: {key} missing: {line}"));
            assert!((g - value).abs() < resolution / 2.0, "datagram {i}: {key} = {g}, want {value}");
        }
        if i + 1 == count {
            check_sensors(&format!("{file} after rotation"), &got, &expected(union, &values));
        }
    }
    let status = child.0.wait().expect("wait receiver");
    assert!(status.success(), "receiver exit {status}");
}
