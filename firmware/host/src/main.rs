//! virtual-m5stickc: the gateway firmware on Linux.
//!
//! Reads P1 telegrams from a serial device (a `p1-sim` pty or a USB-UART), publishes them to a
//! real MQTT broker, prints console lines (`t=<ms> ev=<event> ...`) on stdout and takes control
//! commands on stdin: `wifi down`, `wifi up`, `supply unplug|plug|trip|brownout MS|dsmr5|dsmr4|none|omnia`,
//! `quit`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use firmware_app::config::{Field, SetError};
use firmware_app::console::Line;
use firmware_app::seams::{Clock, Console};
use firmware_app::{Board, Config, Memory};
use firmware_host::ble_sink::BleSink;
use firmware_host::config_file::{self, FieldLines};
use firmware_host::seams::{
    Axp192Supply, DataRequestPin, HostSystem, P1Port, ScaledClock, StdoutConsole, TcpConnector, TlsSettings, UdpRadio, VirtualLink, WifiState,
};
use firmware_host::{HOST_RING, HOST_RING_SLOTS};
use simulator::power::live::SharedAxp192;
use simulator::power::{SupplyAction, SupplyKind};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

/// The virtual M5StickC: the P1 gateway firmware running on Linux.
///
/// Settings come from the defaults, then `--config FILE.toml` (flat keys, see `--help` of each
/// flag for its key), then the flags below, then `--set KEY=VALUE`. Control commands on stdin:
/// `wifi down|up`, `supply unplug|plug` (the P1 cable), `supply trip` (the meter's over-current
/// cut-out fires now), `supply brownout MS` (the port collapses for MS ms), `supply
/// dsmr5|dsmr4|none|omnia` (move to another port), `quit`.
#[derive(Debug, Parser)]
#[command(name = "virtual-m5stickc", version)]
struct Args {
    /// Serial device the P1 telegrams arrive on (a pty from p1-sim, or a USB-UART).
    #[arg(long, value_name = "PATH")]
    p1: PathBuf,
    /// Broker URL, mqtt://HOST:PORT (key `broker`).
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// Device id: lowercase letters, digits, `_` and `-` (key `device_id`).
    #[arg(long, value_name = "ID")]
    device_id: Option<String>,
    /// Topic prefix (key `prefix`; default `p1`).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
    /// Also publish each raw telegram, unchanged, to <prefix>/<id>/telegram (key `raw_telegrams`).
    #[arg(long)]
    raw_telegrams: bool,
    /// TOML configuration file (flat `key = value` lines; errors name file, line and field).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Run the firmware clock K times faster than wall time (keep-alive, back-off, silence
    /// detection, publish intervals), to match p1-sim's virtual time. The broker and TCP still
    /// live in wall time, so `connect_timeout_ms` and `response_timeout_ms` are raised to at
    /// least 2 s of wall time (2000·K clock ms).
    #[arg(long, value_name = "K", default_value_t = 1.0)]
    time_scale: f64,
    /// MQTT user name (key `username`).
    #[arg(long)]
    username: Option<String>,
    /// Read the MQTT password from this environment variable (key `password`; never on the
    /// command line, where `ps` would show it).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Read the MQTT password from the first line of this file (key `password`).
    #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
    password_file: Option<PathBuf>,
    /// The P1 port powering the emulated AXP192: dsmr5 (250 mA, trips at about 280 mA), dsmr4
    /// (100 mA current limit), none (battery only) or omnia (a strict meter that trips at 220 mA).
    /// The stdin commands `supply unplug|plug|trip|brownout MS|<kind>` act on this model.
    #[arg(long, value_enum, value_name = "KIND", default_value = "dsmr5")]
    supply: SupplyKind,
    /// Initial battery state of charge of the emulated 80 mAh LiPo, percent (0-100).
    #[arg(long, value_name = "PERCENT", default_value_t = 100.0)]
    soc: f64,
    /// CA certificate (PEM or DER) the broker's certificate must chain to; required for an
    /// `mqtts://` broker. The broker's host name must be in its certificate.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// QoS of live readings, 0 or 1 (key `qos`; replays always use 1).
    #[arg(long)]
    qos: Option<u8>,
    /// Publish policy: every, interval or deadband (key `policy`).
    #[arg(long)]
    policy: Option<String>,
    /// Store-and-forward ring capacity in readings (key `ring_capacity`).
    #[arg(long, value_name = "N")]
    ring: Option<u32>,
    /// Also publish each field to its own topic (key `per_field_topics`).
    #[arg(long)]
    per_field_topics: bool,
    /// Do not publish Home Assistant discovery (key `discovery = false`).
    #[arg(long)]
    no_discovery: bool,
    /// Which radios carry readings: wifi, ble or both (key `transport`).
    #[arg(long)]
    transport: Option<String>,
    /// Where the virtual BLE radio sends advertisements: udp://HOST:PORT, one datagram each
    /// (6-byte address, most significant byte first, then the AD structures). Needed with
    /// `--transport ble|both`.
    #[arg(long, value_name = "udp://HOST:PORT")]
    ble_sink: Option<String>,
    /// Encrypt BTHome advertisements with this 16-byte bind key, 32 hex digits (key `bind_key`).
    #[arg(long, value_name = "HEX")]
    bind_key: Option<String>,
    /// Any other setting, by its configuration key (repeatable), e.g. `--set keepalive_s=10`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

fn apply(cfg: &mut Config, field: Field, value: &str) -> Result<()> {
    cfg.set_field(field, value).map_err(|e| anyhow::anyhow!("--{}: {}", field.key().replace('_', "-"), e.problem))
}

fn build_config(args: &Args) -> Result<Config> {
    let mut cfg = Config::default();
    let mut lines = FieldLines::default();
    if let Some(path) = &args.config {
        lines = config_file::load(&mut cfg, path)?;
    }
    if let Some(v) = &args.broker {
        apply(&mut cfg, Field::Broker, v)?;
    }
    if let Some(v) = &args.device_id {
        apply(&mut cfg, Field::DeviceId, v)?;
    }
    if let Some(v) = &args.prefix {
        apply(&mut cfg, Field::Prefix, v)?;
    }
    if args.raw_telegrams {
        cfg.raw_telegrams = true;
    }
    if let Some(v) = &args.username {
        apply(&mut cfg, Field::Username, v)?;
    }
    if let Some(var) = &args.password_env {
        let v = std::env::var(var).with_context(|| format!("--password-env: environment variable {var} is not set"))?;
        apply(&mut cfg, Field::Password, &v)?;
    }
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("--password-file {}: cannot read", path.display()))?;
        apply(&mut cfg, Field::Password, text.lines().next().unwrap_or(""))?;
    }
    if let Some(v) = args.qos {
        apply(&mut cfg, Field::Qos, &v.to_string())?;
    }
    if let Some(v) = &args.policy {
        apply(&mut cfg, Field::Policy, v)?;
    }
    if let Some(v) = args.ring {
        apply(&mut cfg, Field::RingCapacity, &v.to_string())?;
    }
    if args.per_field_topics {
        cfg.per_field_topics = true;
    }
    if args.no_discovery {
        cfg.discovery = false;
    }
    if let Some(v) = &args.transport {
        apply(&mut cfg, Field::Transport, v)?;
    }
    if let Some(v) = &args.bind_key {
        apply(&mut cfg, Field::BindKey, v)?;
    }
    for kv in &args.set {
        let Some((k, v)) = kv.split_once('=') else { bail!("--set {kv:?}: expected KEY=VALUE") };
        match cfg.set(k.trim(), v.trim()) {
            Ok(()) => {}
            Err(SetError::UnknownKey) => bail!("--set: unknown setting `{}`", k.trim()),
            Err(SetError::Invalid(e)) => bail!("--set: {e}"),
        }
    }
    cfg.validate(false).map_err(|e| config_file::locate(e, args.config.as_deref(), &lines))?;
    if cfg.ring_capacity as usize > HOST_RING {
        bail!("ring_capacity: at most {HOST_RING} on the virtual device");
    }
    if cfg.broker.as_ref().is_some_and(|b| b.tls) && args.ca.is_none() {
        bail!("broker: a TLS broker (mqtts://) needs --ca FILE, the CA its certificate chains to");
    }
    if cfg.transport.uses_ble() && args.ble_sink.is_none() {
        bail!("--transport {}: the virtual radio needs --ble-sink udp://HOST:PORT", if cfg.transport.uses_wifi() { "both" } else { "ble" });
    }
    Ok(cfg)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 100_000.0) {
        bail!("--time-scale: expected a number in (0, 100000], got {}", args.time_scale);
    }
    if !(0.0..=100.0).contains(&args.soc) {
        bail!("--soc: expected a percentage in [0, 100], got {}", args.soc);
    }
    let mut cfg = build_config(&args)?;
    let tls = match &args.ca {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("--ca {}: cannot read", path.display()))?;
            Some(TlsSettings::new(&bytes).map_err(|e| anyhow::anyhow!("--ca {}: {e}", path.display()))?)
        }
        None => None,
    };
    let floor = (2000.0 * args.time_scale).min(3_600_000.0) as u32;
    cfg.connect_timeout_ms = cfg.connect_timeout_ms.max(floor.min(600_000));
    cfg.response_timeout_ms = cfg.response_timeout_ms.max(floor);
    let radio = match &args.ble_sink {
        Some(url) => Some(UdpRadio::new(BleSink::open(url).with_context(|| format!("--ble-sink {url}"))?)),
        None => None,
    };
    let p1_path = args.p1.to_str().context("--p1: path is not UTF-8")?.to_owned();
    let scale = args.time_scale;
    let (supply, soc) = (args.supply, args.soc / 100.0);

    // The ring lives on this thread's stack: a big one, so nothing is allocated per reading.
    let worker = std::thread::Builder::new()
        .name("firmware".into())
        .stack_size(64 << 20)
        .spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
            rt.block_on(async {
                let dr = DataRequestPin::default();
                let port = P1Port::open(&p1_path, dr.clone())
                    .with_context(|| format!("--p1: cannot open serial device {p1_path}"))?;
                firmware(cfg, port, dr, radio, scale, tls, (supply, soc)).await
            })
        })
        .context("spawn firmware thread")?;
    match worker.join() {
        Ok(r) => r,
        Err(_) => bail!("firmware thread failed"),
    }
}

async fn firmware(
    cfg: Config,
    port: P1Port,
    dr: DataRequestPin,
    radio: Option<UdpRadio>,
    scale: f64,
    tls: Option<TlsSettings>,
    (supply, soc): (SupplyKind, f64),
) -> Result<()> {
    let clock = ScaledClock::new(scale);
    let (wifi_tx, wifi_rx) = watch::channel(WifiState::UP);
    let power = Axp192Supply::new(supply, soc, clock);
    let chip = power.chip();
    let mut memory: Memory<HOST_RING_SLOTS> = Memory::new();
    let board = Board {
        p1: port,
        data_request: dr,
        link: VirtualLink::new(wifi_rx.clone()),
        net: TcpConnector::new(wifi_rx).with_tls(tls),
        clock,
        power,
        console: StdoutConsole,
        system: HostSystem,
    };
    let control = control(clock, wifi_tx, chip);
    match radio {
        Some(radio) => tokio::select! {
            never = firmware_app::app::run_with_radio(&cfg, board, radio, &mut memory) => match never {},
            r = control => r,
        },
        None => tokio::select! {
            never = firmware_app::run(&cfg, board, &mut memory) => match never {},
            r = control => r,
        },
    }
}

/// Reads control commands from stdin until `quit` (or forever, after stdin closes).
async fn control(clock: ScaledClock, wifi: watch::Sender<WifiState>, supply: SharedAxp192) -> Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut console = StdoutConsole;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => {
                std::future::pending::<()>().await;
                continue;
            }
            Err(e) => {
                console.line(Line::new(clock.now_ms(), "error").kv("kind", "control").kv("detail", e).as_str());
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = Line::new(clock.now_ms(), "control").kv("command", line.trim());
        match words.as_slice() {
            ["wifi", "down"] => {
                wifi.send_modify(|s| s.set(false));
            }
            ["wifi", "up"] => {
                wifi.send_modify(|s| s.set(true));
            }
            ["supply", "unplug"] => {
                supply.supply_event(SupplyAction::Unplug);
            }
            ["supply", "plug"] => {
                supply.supply_event(SupplyAction::Plug);
            }
            ["supply", "trip"] => {
                supply.supply_event(SupplyAction::Trip);
            }
            ["supply", "brownout", ms] if ms.parse::<u32>().is_ok_and(|ms| ms > 0) => {
                let ms: u32 = ms.parse().unwrap_or(0);
                supply.supply_event(SupplyAction::Brownout(f64::from(ms) / 1000.0));
            }
            ["supply", kind @ ("dsmr5" | "dsmr4" | "none" | "omnia")] => {
                let kind = match *kind {
                    "dsmr4" => SupplyKind::Dsmr4,
                    "none" => SupplyKind::None,
                    "omnia" => SupplyKind::Omnia,
                    _ => SupplyKind::Dsmr5,
                };
                supply.supply_event(SupplyAction::Supply(kind));
            }
            ["quit"] => {
                console.line(reply.as_str());
                return Ok(());
            }
            [] => continue,
            _ => {
                console.line(
                    Line::new(clock.now_ms(), "error")
                        .kv("kind", "control")
                        .kv("detail", "unknown command (wifi up|down, supply plug|unplug|trip|brownout MS|dsmr5|dsmr4|none|omnia, quit)")
                        .kv("command", line.trim())
                        .as_str(),
                );
                continue;
            }
        }
        console.line(reply.as_str());
    }
}
