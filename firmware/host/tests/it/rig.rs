//! The test rig: a meter (the simulator library) on a real pty, the virtual M5StickC as a child
//! process, a real broker (rumqttd in-process, or mosquitto) behind a cuttable TCP proxy, and a
//! rumqttc subscriber. Every wait has a timeout.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

/// A free loopback TCP port (bound then released; a small race is accepted).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_listening(port: u16, timeout: Duration) {
    let end = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "nothing listens on port {port} after {timeout:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// rumqttd in-process on a free loopback port (MQTT 3.1.1 listener). It cannot be stopped: put a
/// [`Proxy`] in front of it to take it away.
pub fn start_rumqttd() -> u16 {
    let port = free_port();
    let conn = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 64 * 1024,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        next_connection_delay_ms: 1,
        connections: conn,
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            ..Default::default()
        },
        v4: Some(HashMap::from([("v4".to_owned(), server)])),
        ..Default::default()
    };
    thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        let _ = broker.start();
    });
    wait_listening(port, Duration::from_secs(10));
    port
}

/// mosquitto on a free loopback port with a temporary config; killed on drop.
pub struct Mosquitto {
    child: Child,
    _dir: tempfile::TempDir,
    /// Its port.
    pub port: u16,
}

impl Mosquitto {
    /// Starts mosquitto, or `None` if the binary is not installed.
    pub fn start() -> Option<Mosquitto> {
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].into_iter().find(|p| std::path::Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n")).unwrap();
        let child = Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        wait_listening(port, Duration::from_secs(10));
        Some(Mosquitto { child, _dir: dir, port })
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy that can be cut: while cut, existing connections are reset and new ones refused
/// (accepted and closed at once), as if the broker had died.
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// A proxy in front of `127.0.0.1:target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c2, k2) = (cut.clone(), conns.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut k = k2.lock().unwrap();
                    k.push(client.try_clone().unwrap());
                    k.push(server.try_clone().unwrap());
                }
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        Proxy { port, cut, conns }
    }

    /// Takes the broker away: resets every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Brings the broker back.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// One message the subscriber received, with its arrival time.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Retained flag.
    pub retain: bool,
    /// When it arrived.
    pub at: Instant,
}

impl Msg {
    /// The payload as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {:?}", self.topic, String::from_utf8_lossy(&self.payload)))
    }
}

/// A rumqttc (MQTT 3.1.1) subscriber on `filter`, connected directly to the broker.
pub struct Subscriber {
    /// Received messages.
    pub rx: Receiver<Msg>,
    /// The client, to publish with.
    pub client: rumqttc::Client,
}

impl Subscriber {
    /// Connects and subscribes; returns once the subscription is acknowledged.
    pub fn start(port: u16, filter: &str) -> Subscriber {
        let mut opts = rumqttc::MqttOptions::new(format!("sub-{}", free_port()), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(256 * 1024, 256 * 1024);
        let (client, mut conn) = rumqttc::Client::new(opts, 100_000);
        client.subscribe(filter, rumqttc::QoS::AtLeastOnce).unwrap();
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let m = Msg { topic: p.topic.clone(), payload: p.payload.to_vec(), retain: p.retain, at: Instant::now() };
                        if tx.send(m).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).expect("subscriber: no SUBACK within 10 s");
        Subscriber { rx, client }
    }

    /// Collects messages until `done` says so, or fails after `timeout` showing what arrived.
    pub fn collect_until(&self, timeout: Duration, mut done: impl FnMut(&[Msg]) -> bool, into: &mut Vec<Msg>) {
        let end = Instant::now() + timeout;
        while !done(into) {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(m) => into.push(m),
                Err(RecvTimeoutError::Timeout) if Instant::now() < end => {}
                Err(e) => {
                    let states = into.iter().filter(|m| m.topic.ends_with("/state")).count();
                    panic!("subscriber: condition not met within {timeout:?} ({e:?}); {} messages, {states} states", into.len());
                }
            }
        }
    }
}

/// The virtual M5StickC as a child process; its console lines are collected by a thread.
pub struct Device {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Device {
    /// Starts `virtual-m5stickc` with `args`.
    pub fn start(args: &[&str]) -> Device {
        Self::start_env(args, &[])
    }

    /// Starts `virtual-m5stickc` with `args` and extra environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Device {
        let mut child = Command::new(env!("CARGO_BIN_EXE_virtual-m5stickc"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let out = child.stdout.take().unwrap();
        let l2 = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l2.lock().unwrap().push(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let l3 = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                l3.lock().unwrap().push(format!("stderr: {line}"));
            }
        });
        let stdin = child.stdin.take();
        Device { child, stdin, lines }
    }

    /// Sends a control command (`wifi down`, ...).
    pub fn command(&mut self, cmd: &str) {
        let s = self.stdin.as_mut().unwrap();
        writeln!(s, "{cmd}").unwrap();
        s.flush().unwrap();
    }

    /// Console lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits for a console line containing all of `parts`; returns it.
    pub fn wait_line(&mut self, parts: &[&str], timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("device exited ({status}) before {parts:?}; console:\n{}", self.lines().join("\n"));
            }
            if Instant::now() >= end {
                let lines = self.lines();
                let tail = &lines[lines.len().saturating_sub(30)..];
                panic!("no console line with {parts:?} within {timeout:?}; last lines:\n{}", tail.join("\n"));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The meter end of a pty pair; the device opens [`MeterPort::path`].
pub struct MeterPort {
    master: TTYPort,
    _slave: TTYPort,
    /// The slave device path (`/dev/pts/N`).
    pub path: String,
}

impl MeterPort {
    /// A fresh pty pair.
    pub fn open() -> MeterPort {
        let (mut master, slave) = TTYPort::pair().unwrap();
        // A write blocks while the device has not read the previous bytes (the pty buffer is
        // small); that is backpressure, not a failure, up to this long.
        master.set_timeout(Duration::from_secs(30)).unwrap();
        let path = slave.name().unwrap();
        MeterPort { master, _slave: slave, path }
    }

    /// Writes bytes; returns when the last byte is in the pty.
    pub fn write(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
        self.master.flush().unwrap();
    }
}

/// What a reading's state document must say, from the simulator's record of what it sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// Meter timestamp, RFC 3339.
    pub ts: String,
    /// W.
    pub power_import_w: i64,
    /// kWh.
    pub energy_import_t1_kwh: f64,
    /// kWh.
    pub energy_import_t2_kwh: f64,
    /// V.
    pub voltage_l1_v: Option<f64>,
}

/// The simulated AM550 (the user's meter), seeded.
pub struct Meter {
    meter: simulator::Meter,
}

impl Meter {
    /// The Iskra AM550-TD2 profile, seed `seed`, starting at a fixed winter time.
    pub fn am550(seed: u64) -> Meter {
        let profile = simulator::Profile::load("iskra-am550-td2").unwrap();
        let start = "2026-01-15T12:00:00+01:00".parse().unwrap();
        Meter { meter: simulator::Meter::new(profile, seed, start) }
    }

    /// The next telegram's bytes and what they carry.
    pub fn next(&mut self) -> (Vec<u8>, Expected) {
        let t = self.meter.next_telegram();
        let s = &t.sent;
        let e = Expected {
            ts: s.meter_time.unwrap().to_rfc3339(),
            power_import_w: (s.power_import_kw.unwrap() * 1000.0).round() as i64,
            energy_import_t1_kwh: s.energy_import_kwh[0].unwrap(),
            energy_import_t2_kwh: s.energy_import_kwh[1].unwrap(),
            voltage_l1_v: s.voltage_v[0],
        };
        (t.bytes, e)
    }
}

/// Checks a state document against what the meter sent.
#[track_caller]
pub fn check_state(doc: &serde_json::Value, e: &Expected) {
    assert_eq!(doc["ts"], e.ts.as_str(), "{doc}");
    assert_eq!(doc["power_import_w"].as_i64(), Some(e.power_import_w), "{doc}");
    assert_eq!(doc["energy_import_t1_kwh"].as_f64(), Some(e.energy_import_t1_kwh), "{doc}");
    assert_eq!(doc["energy_import_t2_kwh"].as_f64(), Some(e.energy_import_t2_kwh), "{doc}");
    assert_eq!(doc["voltage_l1_v"].as_f64(), e.voltage_l1_v, "{doc}");
}
