//! The real `virtual-m5stickc` binary over TLS against a real mosquitto (password file, ACL):
//! the right CA and password connect and publish; an unknown CA, an expired certificate, a
//! certificate for another host and a wrong password each give an `ev=error` console line naming
//! the cause, with capped exponential back-off and no crash; a prefix outside the ACL does not make
//! the device reconnect in a loop; credentials appear in no console line and no MQTT message.

#[path = "../../tls/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};
use support::*;

const TELEGRAM: &[u8] = include_bytes!("../../../fixtures/telegrams/Wassasin-dsmr5__isk_ISK_AM550.txt");
const BACKOFF_MIN_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 800;

/// The meter: a pty whose other end gets the fixture telegram every second.
struct Meter {
    path: String,
    stop: Arc<Mutex<bool>>,
    _slave: TTYPort,
}

impl Meter {
    fn start() -> Meter {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        let path = slave.name().expect("pty name");
        let stop = Arc::new(Mutex::new(false));
        let stop2 = stop.clone();
        thread::spawn(move || {
            while !*stop2.lock().expect("stop") {
                let _ = master.write_all(TELEGRAM);
                thread::sleep(Duration::from_secs(1));
            }
        });
        Meter { path, stop, _slave: slave }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        *self.stop.lock().expect("stop") = true;
    }
}

/// A running virtual-m5stickc; its stdout lines are collected; killed on drop.
struct Device {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Device {
    fn start(args: &[&str]) -> Device {
        let mut child = Command::new(env!("CARGO_BIN_EXE_virtual-m5stickc"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn virtual-m5stickc");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("{line}");
                sink.lock().expect("lines").push(line);
            }
        });
        Device { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    fn wait_line(&self, parts: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l;
            }
            assert!(Instant::now() < deadline, "no line with {parts:?} within {within:?}:\n{}", self.lines().join("\n"));
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_alive(&mut self) {
        assert!(self.child.try_wait().expect("try_wait").is_none(), "the device exited:\n{}", self.lines().join("\n"));
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    pki: Pki,
    password: String,
    broker: Mosquitto,
    meter: Meter,
}

fn setup() -> Setup {
    let pki = Pki::generate();
    let password = device_password();
    let broker = Mosquitto::start(&pki, &password);
    Setup { pki, password, broker, meter: Meter::start() }
}

fn password_file(dir: &Path, password: &str) -> String {
    let path = dir.join(format!("device-password-{}", password.len()));
    std::fs::write(&path, format!("{password}\n")).expect("password file");
    path.display().to_string()
}

fn device(s: &Setup, port: u16, ca: &Path, prefix: &str, password: &str) -> Device {
    device_with(s, port, ca, prefix, password, &[])
}

fn device_with(s: &Setup, port: u16, ca: &Path, prefix: &str, password: &str, extra: &[&str]) -> Device {
    let broker = format!("mqtts://localhost:{port}");
    let ca = ca.display().to_string();
    let pw = password_file(s.pki.dir.path(), password);
    let min = format!("reconnect_min_ms={BACKOFF_MIN_MS}");
    let max = format!("reconnect_max_ms={BACKOFF_MAX_MS}");
    let mut args = vec![
        "--p1", &s.meter.path, "--broker", &broker, "--ca", &ca, "--device-id", DEVICE, "--prefix", prefix,
        "--username", DEVICE_USER, "--password-file", &pw, "--set", &min, "--set", &max, "--set", "diag_interval_s=1",
        // Also the publish check's wait for the device's own status: well inside each test's window.
        "--set", "response_timeout_ms=1500", "--raw-telegrams",
    ];
    args.extend_from_slice(extra);
    Device::start(&args)
}

async fn collect(observer: &mut Mqtt<embedded_io_adapters::tokio_1::FromTokio<tokio::net::TcpStream>>, within: Duration) -> Vec<Received> {
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Vec::new();
    while let Some(r) = observer.next(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
        if r == Received::Closed {
            break;
        }
        out.push(r);
    }
    out
}

fn assert_no_secrets(secrets: &[&str], lines: &[String], messages: &[Received]) {
    let mut texts = lines.to_vec();
    for m in messages {
        if let Received::Publish(t, p) = m {
            texts.push(t.clone());
            texts.push(String::from_utf8_lossy(p).into_owned());
        }
    }
    assert!(texts.len() > 10, "too little output to prove anything");
    for t in &texts {
        for s in secrets {
            assert!(!t.contains(s), "`{s}` leaked: {t}");
        }
    }
}

#[tokio::test]
async fn right_ca_and_password_publish_and_leak_nothing() {
    let s = setup();
    let mut observer = observer(&s.broker, "#").await;
    let mut dev = device(&s, s.broker.good_port, &s.pki.ca_pem, PREFIX, &s.password);
    let messages = collect(&mut observer, Duration::from_secs(4)).await;
    dev.assert_alive();
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(1));
    let state = format!("{PREFIX}/{DEVICE}/state");
    let states = messages.iter().filter(|m| matches!(m, Received::Publish(t, _) if *t == state)).count();
    assert!(states >= 2, "readings arrive over TLS: {messages:?}");
    let diag = format!("{PREFIX}/{DEVICE}/diag");
    assert!(
        messages.iter().any(|m| matches!(m, Received::Publish(t, p) if *t == diag && String::from_utf8_lossy(p).contains("\"publish_denied\":0"))),
        "the publish check passed (its own status came back): {messages:?}"
    );
    let lines = dev.lines();
    assert!(!lines.iter().any(|l| l.contains("ev=error")), "{}", lines.join("\n"));
    assert_no_secrets(&[&s.password, DEVICE_USER], &lines, &messages);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", dev.child.id())).expect("cmdline");
    assert!(!String::from_utf8_lossy(&cmdline).contains(&s.password), "the password is not on the command line");
}

#[tokio::test]
async fn certificate_failures_and_a_wrong_password_are_named_and_backed_off() {
    let s = setup();
    let mut observer = observer(&s.broker, "#").await;
    let wrong = format!("{}-old", s.password);
    let cases = [
        (s.broker.good_port, &s.pki.other_ca_pem, s.password.as_str(), "ev=error kind=tls detail=tls_unknown_issuer"),
        (s.broker.foreign_port, &s.pki.ca_pem, s.password.as_str(), "ev=error kind=tls detail=tls_unknown_issuer"),
        (s.broker.expired_port, &s.pki.ca_pem, s.password.as_str(), "ev=error kind=tls detail=tls_expired"),
        (s.broker.wrong_host_port, &s.pki.ca_pem, s.password.as_str(), "ev=error kind=tls detail=tls_hostname_mismatch"),
        (s.broker.good_port, &s.pki.ca_pem, wrong.as_str(), "ev=error kind=mqtt_refused code=5 detail=not_authorized"),
    ];
    for (port, ca, password, want) in cases {
        let mut dev = device(&s, port, ca, PREFIX, password);
        let messages = collect(&mut observer, Duration::from_millis(3500)).await;
        dev.assert_alive();
        let lines = dev.lines();
        let attempts = lines.iter().filter(|l| l.contains("state=connecting")).count();
        let errors = lines.iter().filter(|l| l.contains(want)).count();
        assert!(attempts >= 4, "{want}: {}", lines.join("\n"));
        assert!(errors + 1 >= attempts && errors <= attempts, "{want}: one error line per attempt:\n{}", lines.join("\n"));
        let gaps = check_backoff(&lines, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        println!("{want}: back-off waits (ms): {gaps:?}");
        assert!(!messages.iter().any(|m| matches!(m, Received::Publish(..))), "nothing reaches the broker: {messages:?}");
        assert_no_secrets(&[password, DEVICE_USER], &lines, &messages);
    }
}

#[tokio::test]
async fn a_prefix_outside_the_acl_is_reported_and_does_not_loop() {
    let s = setup();
    let mut observer = observer(&s.broker, "#").await;
    let mut dev = device_with(&s, s.broker.good_port, &s.pki.ca_pem, "not-mine", &s.password, &["--set", "stats_interval_s=1"]);
    let messages = collect(&mut observer, Duration::from_secs(4)).await;
    dev.assert_alive();
    let lines = dev.lines();
    // MQTT 3.1.1 has no negative PUBACK (mosquitto acknowledges and drops), so the device learns
    // of the denial from its publish check; the session stays up rather than reconnecting in a loop.
    assert_eq!(lines.iter().filter(|l| l.contains("state=connected")).count(), 1, "{}", lines.join("\n"));
    let denied: Vec<&String> = lines.iter().filter(|l| l.contains("ev=error kind=mqtt_publish_denied topic=not-mine/kitchen/status")).collect();
    assert_eq!(denied.len(), 1, "one clear console error per session:\n{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("ev=stats") && l.contains("publish_denied=1")), "and a counter:\n{}", lines.join("\n"));
    assert!(!messages.iter().any(|m| matches!(m, Received::Publish(t, _) if t.starts_with("not-mine"))), "{messages:?}");
    assert!(s.broker.log_text().contains(&format!("Denied PUBLISH from {DEVICE}")));
}

#[test]
fn a_bad_ca_file_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n").expect("write");
    let meter = Meter::start();
    let out = Command::new(env!("CARGO_BIN_EXE_virtual-m5stickc"))
        .args(["--p1", &meter.path, "--broker", "mqtts://localhost:1", "--device-id", "x", "--ca"])
        .arg(&ca)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ca") && err.contains("ca.pem") && err.contains("CA certificate"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_virtual-m5stickc"))
        .args(["--p1", &meter.path, "--broker", "mqtts://localhost:1", "--device-id", "x"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"), "mqtts:// without --ca is refused");
}
