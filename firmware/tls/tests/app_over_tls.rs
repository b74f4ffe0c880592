//! The real gateway application (`firmware_app::run`) over firmware-tls against a real mosquitto:
//! the same wiring the virtual M5StickC and the ESP32 use (a `Connector` that wraps TCP in TLS),
//! with a fixture telegram on the P1 side.
//!
//! Checked: the right CA and password connect and publish readings; unknown-CA, expired and
//! wrong-host certificates and a wrong password each end in a failed attempt and a console line
//! naming the cause, an `ev=error` line and a diagnostic
//! counter, never a crash; attempts back off exponentially up to the configured cap (no
//! hot reconnect loop); the diagnostic counter equals the failed attempts; and the password and
//! user name appear in no console line and no MQTT message.

mod support;

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use firmware_app::seams::{Clock, Connector, Console, Link, NetError, NoPowerMonitor, SystemInfo};
use firmware_app::{Board, Config, Memory};
use firmware_tls::{Buffers, Error, Options, Stream, TrustAnchor};
use support::*;
use tokio::net::TcpStream;
use tokio::time::Instant;

const TELEGRAM: &[u8] = include_bytes!("../../../fixtures/telegrams/Wassasin-dsmr5__isk_ISK_AM550.txt");
const BACKOFF_MIN_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 800;

/// Where the connector goes and what it trusts; the test changes it between phases, as a user
/// fixing their configuration would.
#[derive(Debug, Clone)]
struct Target {
    port: u16,
    ca_der: Vec<u8>,
}

struct TlsConnector {
    target: Arc<Mutex<Target>>,
    bufs: Box<Buffers<{ firmware_tls::RECORD_BUFFER_MAX }, 4096>>,
    /// Every handshake's outcome, as firmware-tls reported it.
    outcomes: Arc<Mutex<Vec<Result<(), Error>>>>,
}

impl Connector for TlsConnector {
    type Conn<'a> = Stream<'a, FromTokio<TcpStream>>;

    async fn connect<'a>(&'a mut self, host: &str, _port: u16, tls: bool) -> Result<Self::Conn<'a>, NetError> {
        let target = self.target.lock().expect("target").clone();
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, target.port)).await.map_err(|_| NetError::Refused)?;
        if !tls {
            return Ok(Stream::Plain(FromTokio::new(tcp)));
        }
        let options = Options {
            ca: TrustAnchor::from_der(&target.ca_der).map_err(NetError::from)?,
            server_name: host,
            now_unix_s: now_unix(),
            now_is_lower_bound: false,
            max_fragment_length: None,
        };
        let result = self.bufs.connect(FromTokio::new(tcp), &options, rand_core::OsRng).await;
        self.outcomes.lock().expect("outcomes").push(result.as_ref().map(|_| ()).map_err(|e| *e));
        result.map(Stream::Tls).map_err(NetError::from)
    }
}

struct UpLink;

impl Link for UpLink {
    async fn connect(&mut self) -> Result<(), NetError> {
        Ok(())
    }
    async fn disconnect(&mut self) {}
    fn is_up(&self) -> bool {
        true
    }
    async fn wait_down(&mut self) {
        std::future::pending::<()>().await
    }
    fn rssi_dbm(&self) -> Option<i16> {
        Some(-60)
    }
}

#[derive(Clone, Copy)]
struct WallClock(Instant);

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
    async fn sleep_until(&self, deadline_ms: u64) {
        loop {
            let now = self.now_ms();
            if now >= deadline_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis((deadline_ms - now).min(3_600_000))).await;
        }
    }
}

/// The meter: the AM550 fixture telegram once a second.
struct Meter {
    start: Instant,
    sent: u64,
    pos: usize,
}

impl embedded_io_async::ErrorType for Meter {
    type Error = Infallible;
}

impl embedded_io_async::Read for Meter {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if self.pos == TELEGRAM.len() {
            // Cancel-safe: state changes only after the wait completes.
            tokio::time::sleep_until(self.start + Duration::from_secs(self.sent + 1)).await;
            self.sent += 1;
            self.pos = 0;
        }
        let n = buf.len().min(TELEGRAM.len() - self.pos);
        buf[..n].copy_from_slice(&TELEGRAM[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct Pin;

impl embedded_hal::digital::ErrorType for Pin {
    type Error = Infallible;
}

impl embedded_hal::digital::OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Console for Lines {
    fn line(&mut self, line: &str) {
        println!("{line}");
        self.0.lock().expect("lines").push(line.to_string());
    }
}

impl Lines {
    fn all(&self) -> Vec<String> {
        self.0.lock().expect("lines").clone()
    }
}

struct Host;

impl SystemInfo for Host {
    fn free_heap_bytes(&self) -> Option<u32> {
        None
    }
    fn reset_reason(&self) -> &'static str {
        "power_on"
    }
}

fn config(port: u16, password: &str) -> Config {
    let mut c = Config::default();
    for (k, v) in [
        ("wifi_ssid", "test-ap"),
        ("broker", &format!("mqtts://localhost:{port}")),
        ("username", DEVICE_USER),
        ("password", password),
        ("prefix", PREFIX),
        ("device_id", DEVICE),
        ("reconnect_min_ms", &BACKOFF_MIN_MS.to_string()),
        ("reconnect_max_ms", &BACKOFF_MAX_MS.to_string()),
        ("diag_interval_s", "1"),
        ("stats_interval_s", "1"),
        ("raw_telegrams", "true"),
    ] {
        c.set(k, v).unwrap_or_else(|e| panic!("config {k}: {e:?}"));
    }
    c.validate(true).expect("valid config");
    c
}

/// Every console line, topic and payload the run produced, checked for the credentials.
fn assert_no_secrets(password: &str, lines: &[String], messages: &[Received]) {
    let mut texts: Vec<String> = lines.to_vec();
    for m in messages {
        if let Received::Publish(topic, payload) = m {
            texts.push(topic.clone());
            texts.push(String::from_utf8_lossy(payload).into_owned());
        }
    }
    assert!(texts.len() > 10, "too little output to prove anything: {texts:?}");
    for t in &texts {
        assert!(!t.contains(password), "the password leaked: {t}");
        assert!(!t.contains(DEVICE_USER), "the user name leaked: {t}");
    }
}

/// Drains everything the observer receives for `within`.
async fn drain(observer: &mut Mqtt<FromTokio<TcpStream>>, within: Duration, into: &mut Vec<Received>) {
    let deadline = Instant::now() + within;
    while let Some(r) = observer.next(deadline.saturating_duration_since(Instant::now())).await {
        if r == Received::Closed {
            break;
        }
        into.push(r);
    }
}

struct Run {
    lines: Lines,
    outcomes: Arc<Mutex<Vec<Result<(), Error>>>>,
    target: Arc<Mutex<Target>>,
}

/// Runs the application with `cfg` until `driver` returns.
async fn with_app<F: std::future::Future<Output = ()>>(cfg: &Config, target: Target, driver: impl FnOnce(Run) -> F) {
    let lines = Lines::default();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let target = Arc::new(Mutex::new(target));
    let start = Instant::now();
    let board = Board {
        p1: Meter { start, sent: 0, pos: 0 },
        data_request: Pin,
        link: UpLink,
        net: TlsConnector { target: target.clone(), bufs: Box::new(Buffers::new()), outcomes: outcomes.clone() },
        clock: WallClock(start),
        power: NoPowerMonitor,
        console: lines.clone(),
        system: Host,
    };
    let mut memory = Box::new(Memory::<64>::new());
    let app = firmware_app::run(cfg, board, &mut memory);
    let run = Run { lines, outcomes, target };
    tokio::select! {
        never = app => match never {},
        done = tokio::time::timeout(Duration::from_secs(60), driver(run)) => done.expect("the scenario took over 60 s"),
    }
}

fn diag_counter(messages: &[Received], key: &str) -> Option<u64> {
    let diag = format!("{PREFIX}/{DEVICE}/diag");
    messages.iter().rev().find_map(|m| match m {
        Received::Publish(t, p) if *t == diag => {
            let v: serde_json::Value = serde_json::from_slice(p).ok()?;
            v.get(key)?.as_u64()
        }
        _ => None,
    })
}

#[tokio::test]
async fn certificate_failures_back_off_then_the_right_ca_connects() {
    let pki = Pki::generate();
    let password = device_password();
    let broker = Mosquitto::start(&pki, &password);
    let mut observer = observer(&broker, "#").await;
    let cfg = config(broker.good_port, &password);
    let mut messages = Vec::new();

    let first = Target { port: broker.good_port, ca_der: pki.other_ca_der.clone() };
    let (pki, broker, password, observer, messages) = (&pki, &broker, &password, &mut observer, &mut messages);
    with_app(&cfg, first, |run| async move {
        let phases = [
            (broker.good_port, pki.other_ca_der.clone(), Error::UnknownIssuer),
            (broker.foreign_port, pki.ca_der.clone(), Error::UnknownIssuer),
            (broker.expired_port, pki.ca_der.clone(), Error::Expired),
            (broker.wrong_host_port, pki.ca_der.clone(), Error::HostnameMismatch),
        ];
        for (port, ca_der, want) in phases {
            *run.target.lock().expect("target") = Target { port, ca_der };
            let before = run.outcomes.lock().expect("outcomes").len();
            drain(observer, Duration::from_millis(2600), messages).await;
            let outcomes = run.outcomes.lock().expect("outcomes").clone();
            let phase = &outcomes[before..];
            assert!(phase.len() >= 2, "{want:?}: {phase:?}");
            // The attempt running when the phase began may have used the previous target.
            assert!(phase[1..].iter().all(|o| *o == Err(want)), "{want:?}: {phase:?}");
            let detail = format!("ev=error kind=tls detail={} host=localhost", want.as_str());
            let lines = run.lines.all();
            assert!(lines.iter().any(|l| l.contains(&detail)), "no `{detail}` line:\n{}", lines.join("\n"));
        }
        assert!(
            !messages.iter().any(|m| matches!(m, Received::Publish(t, _) if t.starts_with(PREFIX))),
            "nothing may be published without a trusted broker: {messages:?}"
        );

        // The user fixes the configuration: the device comes back within one capped back-off.
        *run.target.lock().expect("target") = Target { port: broker.good_port, ca_der: pki.ca_der.clone() };
        drain(observer, Duration::from_millis(BACKOFF_MAX_MS + 2500), messages).await;

        let lines = run.lines.all();
        let outcomes = run.outcomes.lock().expect("outcomes").clone();
        let failed = outcomes.iter().filter(|o| o.is_err()).count();
        assert_eq!(outcomes.last(), Some(&Ok(())), "{outcomes:?}");

        // A console line per failed attempt, naming TLS as the cause, then a session.
        let tls_lines = lines.iter().filter(|l| l.contains("state=disconnected") && l.contains("error=tls_")).count();
        assert_eq!(tls_lines, failed, "one console line per failed handshake:\n{}", lines.join("\n"));
        let error_lines = lines.iter().filter(|l| l.contains("ev=error kind=tls ")).count();
        assert_eq!(error_lines, failed, "one error line per failed handshake:\n{}", lines.join("\n"));
        assert!(lines.iter().any(|l| l.contains("ev=mqtt state=connected")), "{}", lines.join("\n"));
        assert!(!lines.iter().any(|l| l.contains("panic")), "{}", lines.join("\n"));

        let gaps = check_backoff(&lines, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        assert!(gaps.iter().filter(|g| **g >= BACKOFF_MAX_MS).count() >= 4, "the cap was reached: {gaps:?}");
        println!("back-off waits (ms): {gaps:?}");

        // The device's own diagnostics, published once it is back, count every failure.
        assert_eq!(diag_counter(messages, "mqtt_failures"), Some(failed as u64), "{messages:?}");
        assert_eq!(diag_counter(messages, "tls_failures"), Some(failed as u64), "{messages:?}");
        assert_eq!(diag_counter(messages, "auth_failures"), Some(0), "{messages:?}");
        let state = format!("{PREFIX}/{DEVICE}/state");
        assert!(messages.iter().any(|m| matches!(m, Received::Publish(t, _) if *t == state)), "readings flow once connected");

        assert_no_secrets(password, &lines, messages);
    })
    .await;
}

#[tokio::test]
async fn wrong_password_backs_off_until_the_account_is_fixed() {
    let pki = Pki::generate();
    let password = device_password();
    let broker = Mosquitto::start(&pki, &password);
    let mut observer = observer(&broker, "#").await;
    let wrong = format!("{password}-old");
    let cfg = config(broker.good_port, &wrong);
    let mut messages = Vec::new();

    let target = Target { port: broker.good_port, ca_der: pki.ca_der.clone() };
    let (broker, password, wrong, observer, messages) = (&broker, &password, &wrong, &mut observer, &mut messages);
    with_app(&cfg, target, |run| async move {
        drain(observer, Duration::from_millis(4000), messages).await;
        let lines = run.lines.all();
        let outcomes = run.outcomes.lock().expect("outcomes").clone();
        assert!(outcomes.iter().all(|o| o.is_ok()), "TLS itself succeeds: {outcomes:?}");
        let refused: Vec<&String> = lines.iter().filter(|l| l.contains("state=disconnected")).collect();
        assert!(refused.len() >= 4, "{}", lines.join("\n"));
        for l in &refused {
            assert_eq!((field(l, "error"), field(l, "code")), (Some("refused"), Some("5")), "{l}");
        }
        assert_eq!(refused.len(), outcomes.len(), "one line per refused CONNECT");
        let errors = lines.iter().filter(|l| l.contains("ev=error kind=mqtt_refused code=5 detail=not_authorized")).count();
        assert_eq!(errors, refused.len(), "one error line per refused CONNECT:\n{}", lines.join("\n"));
        assert!(!messages.iter().any(|m| matches!(m, Received::Publish(t, _) if t.starts_with(PREFIX))), "{messages:?}");

        // The administrator sets the account to the password the device has: it comes back within
        // one capped back-off and reports how often it was refused.
        broker.set_password(DEVICE_USER, wrong);
        drain(observer, Duration::from_millis(BACKOFF_MAX_MS + 2500), messages).await;
        let lines = run.lines.all();
        assert!(lines.iter().any(|l| l.contains("ev=mqtt state=connected")), "{}", lines.join("\n"));
        let refused = lines.iter().filter(|l| l.contains("state=disconnected")).count();
        assert_eq!(diag_counter(messages, "mqtt_failures"), Some(refused as u64), "{messages:?}");
        assert_eq!(diag_counter(messages, "auth_failures"), Some(refused as u64), "{messages:?}");
        assert_eq!(diag_counter(messages, "tls_failures"), Some(0), "{messages:?}");
        let gaps = check_backoff(&lines, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        println!("back-off waits (ms): {gaps:?}");

        // Both the old and the new password stay out of every output.
        assert_no_secrets(wrong, &lines, messages);
        assert_no_secrets(password, &lines, messages);
    })
    .await;
    let log = broker.log_text();
    assert!(log.contains("not authorised"), "mosquitto refused the login:\n{log}");
}
