//! The MQTT broker for `cargo hil sim`: rumqttd in a child process (`hil broker --port P`), because
//! rumqttd cannot be stopped in-process and scenarios need real broker restarts. The child exits when
//! its stdin closes, so a harness that dies takes its brokers with it.

use std::collections::HashMap;
use std::io::BufRead;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// A loopback port that was free a moment ago (the OS picks it; another process may still race us).
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Fails with a clear message when something already listens on the port.
#[cfg(test)]
pub fn check_port_free(port: u16) -> anyhow::Result<()> {
    TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .with_context(|| format!("broker port 127.0.0.1:{port} is already taken by another process"))
}

fn config(addr: SocketAddr, auth: Option<HashMap<String, String>>) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 1000,
        auth,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "hil-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 1000,
            max_segment_size: 64 * 1024 * 1024,
            max_segment_count: 8,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    }
}

/// Body of `hil broker`: serves MQTT 3.1.1 on `host`:`port` (loopback unless a rig needs the
/// broker on its LAN), prints `ready port=P` once it accepts connections, and exits when stdin
/// reaches end of file. With `auth_file` (lines of `user password`), only those users may connect.
pub fn serve(host: std::net::IpAddr, port: u16, auth_file: Option<&Path>) -> anyhow::Result<()> {
    let listen = SocketAddr::new(host, port);
    let auth = auth_file.map(crate::credentials::read_auth_file).transpose()?;
    TcpListener::bind(listen).map(drop).with_context(|| format!("broker port {listen} is already taken by another process"))?;
    let mut broker = rumqttd::Broker::new(config(listen, auth));
    std::thread::spawn(move || {
        if let Err(e) = broker.start() {
            eprintln!("hil broker: rumqttd stopped: {e}");
            std::process::exit(3);
        }
    });
    let addr = if host.is_unspecified() { SocketAddr::from(([127, 0, 0, 1], port)) } else { listen };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("rumqttd did not listen on {addr} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("ready port={port}");
    let stdin = std::io::stdin();
    let mut line = String::new();
    while stdin.lock().read_line(&mut line).unwrap_or(0) > 0 {
        line.clear();
    }
    std::process::exit(0)
}

/// A running broker child.
#[derive(Debug)]
pub struct BrokerChild {
    child: Child,
    _stdin: ChildStdin,
}

impl BrokerChild {
    /// Starts `exe broker --port port` and waits (bounded) for its ready line. With `auth_file`,
    /// the broker admits only the users in it.
    pub async fn start(exe: &Path, port: u16, auth_file: Option<&Path>, timeout: Duration) -> anyhow::Result<Self> {
        Self::start_with(exe, "127.0.0.1".parse()?, port, auth_file, timeout).await
    }

    /// As [`BrokerChild::start`], listening on `host` (a rig's LAN address, or 0.0.0.0).
    pub async fn start_on(exe: &Path, host: std::net::IpAddr, port: u16, timeout: Duration) -> anyhow::Result<Self> {
        Self::start_with(exe, host, port, None, timeout).await
    }

    async fn start_with(exe: &Path, host: std::net::IpAddr, port: u16, auth_file: Option<&Path>, timeout: Duration) -> anyhow::Result<Self> {
        let mut command = Command::new(exe);
        command.args(["broker", "--host", &host.to_string(), "--port", &port.to_string()]);
        if let Some(f) = auth_file {
            command.arg("--auth-file").arg(f);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the broker child {}", exe.display()))?;
        let stdin = child.stdin.take().context("broker stdin")?;
        let stdout = child.stdout.take().context("broker stdout")?;
        let mut stderr = child.stderr.take().context("broker stderr")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(timeout, lines.next_line()).await;
        match ready {
            Ok(Ok(Some(l))) if l.starts_with("ready") => {
                Ok(BrokerChild { child, _stdin: stdin })
            }
            other => {
                let _ = child.start_kill();
                let mut err = String::new();
                let _ = tokio::time::timeout(Duration::from_secs(2), tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err)).await;
                let why = match other {
                    Err(_) => format!("no ready line within {timeout:?}"),
                    Ok(Ok(Some(l))) => format!("unexpected line `{l}`"),
                    Ok(Ok(None)) => "it exited".to_string(),
                    Ok(Err(e)) => e.to_string(),
                };
                bail!("broker on 127.0.0.1:{port} did not start ({why}): {}", err.trim())
            }
        }
    }

    /// Kills the broker and reaps it (bounded).
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_reported_by_number() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let e = check_port_free(port).unwrap_err();
        assert!(format!("{e:#}").contains(&format!("127.0.0.1:{port} is already taken")), "{e:#}");
        drop(holder);
        check_port_free(port).unwrap();
    }

    /// The first CONNACK (or connection error) a client with these credentials gets.
    async fn connack(port: u16, user: &str, password: &str) -> Result<rumqttc::ConnectReturnCode, String> {
        let mut opts = rumqttc::MqttOptions::new(format!("t-{user}-{password}"), "127.0.0.1", port);
        opts.set_credentials(user, password);
        let (_client, mut events) = rumqttc::AsyncClient::new(opts, 8);
        let first = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) => return Ok(a.code),
                    Ok(_) => {}
                    Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return Ok(code),
                    Err(e) => return Err(e.to_string()),
                }
            }
        });
        first.await.map_err(|_| "no CONNACK within 10 s".to_string())?
    }

    #[tokio::test]
    async fn with_an_auth_file_only_its_users_get_in() {
        let port = free_port().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let users = HashMap::from([("device".to_string(), "s3cret".to_string())]);
        let mut broker = rumqttd::Broker::new(config(addr, Some(users)));
        std::thread::spawn(move || broker.start());
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "broker did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(connack(port, "device", "s3cret").await, Ok(rumqttc::ConnectReturnCode::Success));
        let wrong = connack(port, "device", "guess").await;
        assert_ne!(wrong, Ok(rumqttc::ConnectReturnCode::Success), "a wrong password is refused: {wrong:?}");
        let stranger = connack(port, "someone", "s3cret").await;
        assert_ne!(stranger, Ok(rumqttc::ConnectReturnCode::Success), "an unknown user is refused: {stranger:?}");
    }
}
