//! Test PKI (made with rcgen at test time) and a real mosquitto broker with TLS listeners, a
//! password file and an ACL, on free loopback ports.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use embedded_io_adapters::tokio_1::FromTokio;
use firmware_app::mqtt::{self, Decoded, Packet};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use time::OffsetDateTime;

pub const DEVICE_USER: &str = "gw-kitchen-7f3a";
pub const PREFIX: &str = "p1tls";
pub const DEVICE: &str = "kitchen";
pub const ADMIN_USER: &str = "harness-admin";

/// A password that appears nowhere else, so a grep for it finds only leaks.
pub fn device_password() -> String {
    format!("Pw-{:x}-{}", std::process::id(), OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_007)
}

/// One server certificate variant, PEM files on disk.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The test PKI: the device's CA, an unrelated CA, and server certificates for each case.
#[derive(Debug)]
pub struct Pki {
    pub dir: tempfile::TempDir,
    /// The CA the device trusts.
    pub ca_pem: PathBuf,
    pub ca_der: Vec<u8>,
    /// A second, unrelated CA.
    pub other_ca_pem: PathBuf,
    pub other_ca_der: Vec<u8>,
    /// Valid, for localhost and 127.0.0.1, issued by the device's CA.
    pub good: ServerCert,
    /// Issued by the device's CA, expired 30 days ago.
    pub expired: ServerCert,
    /// Valid, issued by the unrelated CA.
    pub foreign: ServerCert,
    /// Valid, issued by the device's CA, for another host name only.
    pub wrong_host: ServerCert,
    /// Valid, issued by an intermediate CA (itself issued by the device's CA); the file holds
    /// the leaf and the intermediate, so the broker sends both.
    pub chained: ServerCert,
    /// The same leaf without its intermediate: the device cannot build the chain.
    pub chain_incomplete: ServerCert,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(365);
    p.not_after = now + time::Duration::days(3650);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("ca key")).expect("ca cert")
}

fn server(
    dir: &Path,
    name: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    sans: &[&str],
    valid: (time::Duration, time::Duration),
) -> ServerCert {
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
    p.distinguished_name.push(DnType::CommonName, sans.first().copied().unwrap_or("broker"));
    let now = OffsetDateTime::now_utc();
    p.not_before = now + valid.0;
    p.not_after = now + valid.1;
    let key = KeyPair::generate().expect("server key");
    let cert = p.signed_by(&key, issuer).expect("server cert");
    let out = ServerCert { cert: dir.join(format!("{name}.crt")), key: dir.join(format!("{name}.key")) };
    fs::write(&out.cert, cert.pem()).expect("write cert");
    fs::write(&out.key, key.serialize_pem()).expect("write key");
    out
}

impl Pki {
    pub fn generate() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ca1 = ca("p1 test broker CA");
        let ca2 = ca("someone else's CA");
        let ca_pem = d.join("ca.crt");
        let other_ca_pem = d.join("other-ca.crt");
        fs::write(&ca_pem, ca1.pem()).expect("write ca");
        fs::write(&other_ca_pem, ca2.pem()).expect("write other ca");
        let days = time::Duration::days;
        let hosts = ["localhost", "127.0.0.1"];

        let mut ip = CertificateParams::new(Vec::<String>::new()).expect("intermediate params");
        ip.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ip.distinguished_name.push(DnType::CommonName, "p1 test intermediate CA");
        ip.not_before = OffsetDateTime::now_utc() - days(30);
        ip.not_after = OffsetDateTime::now_utc() + days(365);
        let intermediate = CertifiedIssuer::signed_by(ip, KeyPair::generate().expect("key"), &ca1).expect("intermediate");
        let chain_incomplete = server(d, "chain-incomplete", &intermediate, &hosts, (days(-1), days(30)));
        let chained = ServerCert { cert: d.join("chained.crt"), key: chain_incomplete.key.clone() };
        let leaf = fs::read_to_string(&chain_incomplete.cert).expect("leaf");
        fs::write(&chained.cert, format!("{leaf}{}", intermediate.pem())).expect("write chain");
        Pki {
            chained,
            chain_incomplete,
            good: server(d, "good", &ca1, &hosts, (days(-1), days(30))),
            expired: server(d, "expired", &ca1, &hosts, (days(-90), days(-30))),
            foreign: server(d, "foreign", &ca2, &hosts, (days(-1), days(30))),
            wrong_host: server(d, "wrong-host", &ca1, &["broker.example.net"], (days(-1), days(30))),
            ca_der: ca1.der().to_vec(),
            other_ca_der: ca2.der().to_vec(),
            ca_pem,
            other_ca_pem,
            dir,
        }
    }
}

/// `N` distinct free loopback ports: all are held until all are chosen, so none repeats.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind :0")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local addr").port())
}

/// A running mosquitto with one TLS listener per server certificate and a plain listener for the
/// harness's observer; killed on drop.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    passwd: PathBuf,
    pub log: PathBuf,
    pub good_port: u16,
    pub expired_port: u16,
    pub foreign_port: u16,
    pub wrong_host_port: u16,
    pub chained_port: u16,
    pub chain_incomplete_port: u16,
    pub plain_port: u16,
}

pub const ADMIN_PASSWORD: &str = "observer-secret-0b1f";

impl Mosquitto {
    /// Starts the broker; another process may take a chosen port between choosing and binding,
    /// so a start that fails on a taken port is retried with new ports.
    pub fn start(pki: &Pki, device_password: &str) -> Mosquitto {
        for _ in 0..4 {
            if let Some(m) = Self::try_start(pki, device_password) {
                return m;
            }
        }
        panic!("mosquitto could not bind its ports in 4 tries");
    }

    fn try_start(pki: &Pki, device_password: &str) -> Option<Mosquitto> {
        assert!(
            Command::new(mosquitto_bin()).arg("-h").output().is_ok(),
            "mosquitto is not installed: run ci/setup.d/41-mosquitto-tls.sh (apt-get install mosquitto)"
        );
        let d = pki.dir.path();
        let passwd = d.join("passwd");
        fs::write(&passwd, "").expect("passwd");
        for (user, pass) in [(DEVICE_USER, device_password), (ADMIN_USER, ADMIN_PASSWORD)] {
            let st = Command::new("mosquitto_passwd")
                .arg("-b")
                .arg(&passwd)
                .arg(user)
                .arg(pass)
                .status()
                .expect("run mosquitto_passwd");
            assert!(st.success(), "mosquitto_passwd failed");
        }
        let acl = d.join("acl");
        fs::write(
            &acl,
            format!(
                "user {DEVICE_USER}\ntopic readwrite {PREFIX}/{DEVICE}/#\ntopic read homeassistant/status\n\n\
                 user {ADMIN_USER}\ntopic readwrite #\n"
            ),
        )
        .expect("acl");

        let [good_port, expired_port, foreign_port, wrong_host_port, chained_port, chain_incomplete_port, plain_port] =
            free_ports::<7>();
        let log = d.join("mosquitto.log");
        let mut conf = format!(
            "per_listener_settings false\nallow_anonymous false\npassword_file {}\nacl_file {}\npersistence false\n\
             log_dest file {}\nlog_type all\nconnection_messages true\n",
            passwd.display(),
            acl.display(),
            log.display()
        );
        // Running as root, mosquitto would otherwise switch to the `mosquitto` user, which cannot
        // read the test's private temporary directory.
        if is_root() {
            conf.push_str("user root\n");
        }
        for (port, cert) in [
            (good_port, &pki.good),
            (expired_port, &pki.expired),
            (foreign_port, &pki.foreign),
            (wrong_host_port, &pki.wrong_host),
            (chained_port, &pki.chained),
            (chain_incomplete_port, &pki.chain_incomplete),
        ] {
            conf.push_str(&format!(
                "\nlistener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
                pki.ca_pem.display(),
                cert.cert.display(),
                cert.key.display()
            ));
        }
        conf.push_str(&format!("\nlistener {plain_port} 127.0.0.1\n"));
        let conf_path = d.join("mosquitto.conf");
        fs::write(&conf_path, conf).expect("conf");
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto");
        let mut m = Mosquitto {
            child,
            passwd,
            log,
            good_port,
            expired_port,
            foreign_port,
            wrong_host_port,
            chained_port,
            chain_incomplete_port,
            plain_port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [good_port, expired_port, foreign_port, wrong_host_port, chained_port, chain_incomplete_port, plain_port] {
            while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
                if let Ok(Some(st)) = m.child.try_wait() {
                    let mut err = String::new();
                    if let Some(e) = m.child.stderr.take() {
                        for line in BufReader::new(e).lines().map_while(Result::ok) {
                            err.push_str(&line);
                            err.push('\n');
                        }
                    }
                    let log = m.log_text();
                    if log.contains("Address already in use") {
                        return None;
                    }
                    panic!("mosquitto exited ({st}): {err}\nlog: {log}");
                }
                assert!(Instant::now() < deadline, "mosquitto did not listen on {port} within 10 s: {}", m.log_text());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(m)
    }

    /// Sets `user`'s password in the password file and has mosquitto reload it (SIGHUP), as an
    /// administrator fixing an account would.
    pub fn set_password(&self, user: &str, password: &str) {
        let st = Command::new("mosquitto_passwd").arg("-b").arg(&self.passwd).arg(user).arg(password).status().expect("mosquitto_passwd");
        assert!(st.success(), "mosquitto_passwd failed");
        let st = Command::new("kill").arg("-HUP").arg(self.child.id().to_string()).status().expect("kill -HUP");
        assert!(st.success(), "could not signal mosquitto");
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// mosquitto lives in /usr/sbin on Debian, which a non-login PATH may lack.
fn mosquitto_bin() -> &'static str {
    if Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" }
}

fn is_root() -> bool {
    // `id -u` rather than libc, to keep the test free of unsafe code.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// A minimal MQTT 3.1.1 session over any embedded-io-async stream, using the firmware's own codec.
pub struct Mqtt<S> {
    pub io: S,
    rx: Vec<u8>,
    tx: Vec<u8>,
    pid: u16,
}

pub const STEP: Duration = Duration::from_secs(5);

impl<S: embedded_io_async::Read + embedded_io_async::Write> Mqtt<S>
where
    S::Error: std::fmt::Debug,
{
    pub fn new(io: S) -> Self {
        Mqtt { io, rx: Vec::new(), tx: vec![0; 4096], pid: 0 }
    }

    async fn send(&mut self, range: std::ops::Range<usize>) {
        let bytes = self.tx[range].to_vec();
        tokio::time::timeout(STEP, async {
            self.io.write_all(&bytes).await.expect("write");
            self.io.flush().await.expect("flush");
        })
        .await
        .expect("write timed out");
    }

    /// The next packet, owned: (type nibble, ack code or granted qos, topic, payload).
    pub async fn next(&mut self, within: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match mqtt::decode(&self.rx, 1 << 20) {
                Decoded::Packet(p, used) => {
                    let r = match p {
                        Packet::ConnAck { code, .. } => Received::ConnAck(code),
                        Packet::PubAck(id) => Received::PubAck(id),
                        Packet::SubAck(id, rc) => Received::SubAck(id, rc),
                        Packet::Publish { topic, payload, .. } => {
                            Received::Publish(String::from_utf8_lossy(topic).into_owned(), payload.to_vec())
                        }
                        Packet::PingResp => Received::Other(13),
                        Packet::Other(k) => Received::Other(k),
                    };
                    self.rx.drain(..used);
                    return Some(r);
                }
                Decoded::NeedMore => {}
                other => panic!("bad packet from broker: {other:?}"),
            }
            let mut buf = [0u8; 1024];
            match tokio::time::timeout_at(deadline, self.io.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) => return Some(Received::Closed),
                Ok(Ok(n)) => self.rx.extend_from_slice(&buf[..n]),
                Ok(Err(_)) => return Some(Received::Closed),
            }
        }
    }

    pub async fn connect(&mut self, client_id: &str, user: &str, password: &str) -> Received {
        let c = mqtt::Connect {
            client_id,
            keepalive_s: 30,
            clean_session: true,
            will: None,
            username: Some(user),
            password: Some(password.as_bytes()),
        };
        let r = mqtt::connect(&mut self.tx, &c).expect("encode connect");
        self.send(r).await;
        self.next(STEP).await.unwrap_or(Received::Closed)
    }

    pub async fn publish_qos1(&mut self, topic: &str, payload: &str) -> u16 {
        self.pid += 1;
        let pid = self.pid;
        let r = mqtt::publish(&mut self.tx, topic, 1, false, false, pid, |w| {
            use std::fmt::Write;
            w.write_str(payload)
        })
        .expect("encode publish");
        self.send(r).await;
        pid
    }

    pub async fn subscribe(&mut self, filter: &str) -> u16 {
        self.pid += 1;
        let pid = self.pid;
        let r = mqtt::subscribe(&mut self.tx, pid, filter, 1).expect("encode subscribe");
        self.send(r).await;
        pid
    }

    /// Waits for a packet matching `want`, skipping others; `None` if none came in time.
    pub async fn expect(&mut self, within: Duration, want: impl Fn(&Received) -> bool) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = self.next(left).await?;
            if want(&r) {
                return Some(r);
            }
            if r == Received::Closed {
                return Some(r);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    ConnAck(u8),
    PubAck(u16),
    SubAck(u16, u8),
    Publish(String, Vec<u8>),
    Other(u8),
    Closed,
}

/// A plain-TCP observer logged in as the admin user (may read everything).
pub async fn observer(m: &Mosquitto, filter: &str) -> Mqtt<FromTokio<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, m.plain_port)).await.expect("observer tcp");
    let mut o = Mqtt::new(FromTokio::new(tcp));
    assert_eq!(o.connect("observer", ADMIN_USER, ADMIN_PASSWORD).await, Received::ConnAck(0));
    let pid = o.subscribe(filter).await;
    assert_eq!(o.expect(STEP, |r| matches!(r, Received::SubAck(..))).await, Some(Received::SubAck(pid, 1)));
    o
}

/// The value of `key=` in a logfmt console line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Back-off between connect attempts in a device's console `lines`: the announced `retry_ms`
/// follows `min_ms`·2^i capped at `max_ms`,
/// and the next attempt waits at least that long (no hot loop) and not much longer (the device
/// does come back). Returns the measured waits, ms.
pub fn check_backoff(lines: &[String], min_ms: u64, max_ms: u64) -> Vec<u64> {
    let num = |l: &str, k: &str| field(l, k).and_then(|v| v.parse::<u64>().ok());
    let mut retries = Vec::new();
    let mut waits = Vec::new();
    let mut pending: Option<(u64, u64)> = None;
    for l in lines.iter().filter(|l| l.contains("ev=mqtt")) {
        let t = num(l, "t").expect("t=");
        if l.contains("state=disconnected") {
            let retry = num(l, "retry_ms").expect("retry_ms=");
            retries.push(retry);
            pending = Some((t, retry));
        } else if l.contains("state=connecting")
            && let Some((t0, retry)) = pending.take()
        {
            waits.push((t - t0, retry));
        }
    }
    for (i, retry) in retries.iter().enumerate() {
        let want = (min_ms << i.min(20)).min(max_ms);
        assert_eq!(*retry, want, "failure {} announced retry_ms={retry}, exponential back-off says {want}: {retries:?}", i + 1);
    }
    for (i, (wait, retry)) in waits.iter().enumerate() {
        assert!(*wait >= *retry, "attempt {} came {wait} ms after the failure, retry_ms={retry}: {waits:?}", i + 2);
        // Slack for a loaded CI machine (and a power-policy WiFi gate, which waits in 1 s steps).
        assert!(*wait <= *retry + 1500, "attempt {} waited {wait} ms, retry_ms={retry}: {waits:?}", i + 2);
    }
    waits.iter().map(|(w, _)| *w).collect()
}
