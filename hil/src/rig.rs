//! Bench rigs (`fixtures/rigs/*.toml`): which USB serial ports are the device console and the
//! meter (found by USB serial number, never by `/dev` name alone, so the wrong board is never
//! flashed), the broker, the firmware image, the flasher and the reset strategy.
//! `cargo hil run --rig RIG.toml [FILTER]` flashes, resets, waits for the boot line and then runs
//! the same scenarios in real time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::console::Line;
use crate::duration::Human;
use crate::toml_file;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rig {
    /// One line about the bench.
    pub description: String,
    pub console: Port,
    pub meter: MeterPort,
    pub broker: Broker,
    pub firmware: Firmware,
    #[serde(default)]
    pub reset: Reset,
    pub device: DeviceIds,
}

/// A serial port, identified by the USB serial number of its adapter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// USB serial number (`cargo hil doctor` lists them).
    pub usb_serial: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
}

fn default_baud() -> u32 {
    115_200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterPort {
    pub usb_serial: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Which modem-status input carries the device's data request: cts, dsr, dcd, or none
    /// (always asserted).
    #[serde(default = "default_dr")]
    pub data_request: String,
}

fn default_dr() -> String {
    "none".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Broker {
    /// `embedded` (rumqttd started by the harness) or `external`.
    pub kind: String,
    /// Embedded: the address to listen on, reachable from the device's WiFi (e.g. 0.0.0.0:1883).
    #[serde(default)]
    pub listen: Option<String>,
    /// External: mqtt://HOST:PORT.
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firmware {
    /// ELF (or merged .bin) to flash, relative to the rig file.
    pub image: PathBuf,
    /// espflash chip name: esp32 (M5StickC) or esp32c3.
    pub chip: String,
    /// `espflash` (serial bootloader) or `probe-rs` (USB-JTAG, ESP32-C3 only).
    #[serde(default = "default_flasher")]
    pub flasher: String,
    #[serde(default = "default_flash_timeout")]
    pub flash_timeout: Human,
}

fn default_flasher() -> String {
    "espflash".into()
}
fn default_flash_timeout() -> Human {
    Human(Duration::from_secs(180))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    /// espflash `--before`: default-reset (DTR/RTS auto-reset), usb-reset, no-reset, no-reset-no-sync.
    #[serde(default = "default_before")]
    pub before: String,
    /// espflash `--after`: hard-reset, no-reset.
    #[serde(default = "default_after")]
    pub after: String,
    /// How long after the reset the boot line must appear.
    #[serde(default = "default_boot_timeout")]
    pub boot_timeout: Human,
    /// The console text that marks a finished boot.
    #[serde(default = "default_boot_line")]
    pub boot_line: String,
}

impl Default for Reset {
    fn default() -> Self {
        Reset { before: default_before(), after: default_after(), boot_timeout: default_boot_timeout(), boot_line: default_boot_line() }
    }
}

fn default_before() -> String {
    "default-reset".into()
}
fn default_after() -> String {
    "hard-reset".into()
}
fn default_boot_timeout() -> Human {
    Human(Duration::from_secs(30))
}
fn default_boot_line() -> String {
    "ev=boot".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceIds {
    /// The device id the firmware image was configured with (topics `<prefix>/<id>/...`).
    pub id: String,
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    "p1".into()
}

/// A serial port as the system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub usb_serial: Option<String>,
    pub vid_pid: Option<(u16, u16)>,
}

/// The two ports of a rig, resolved to device paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub console: String,
    pub meter: String,
}

impl Rig {
    pub fn load(path: &Path) -> anyhow::Result<Rig> {
        let (mut rig, text): (Rig, String) = toml_file::load(path)?;
        let bad = |field: &str, msg: String| -> anyhow::Result<Rig> { Err(toml_file::invalid(path, &text, field, msg).into()) };
        if rig.console.usb_serial.trim().is_empty() {
            return bad("console.usb_serial", "give the USB serial number of the console adapter (see `cargo hil doctor`)".into());
        }
        if rig.meter.usb_serial.trim().is_empty() {
            return bad("meter.usb_serial", "give the USB serial number of the meter USB-UART".into());
        }
        if rig.console.usb_serial == rig.meter.usb_serial {
            return bad("meter.usb_serial", "the meter and the console cannot be the same adapter".into());
        }
        if !["cts", "dsr", "dcd", "none"].contains(&rig.meter.data_request.as_str()) {
            return bad("meter.data_request", format!("`{}`: one of cts, dsr, dcd, none", rig.meter.data_request));
        }
        for (f, b) in [("console.baud", rig.console.baud), ("meter.baud", rig.meter.baud)] {
            if !(300..=4_000_000).contains(&b) {
                return bad(f, format!("{b} is not a baud rate"));
            }
        }
        match rig.broker.kind.as_str() {
            "embedded" if rig.broker.listen.is_none() => return bad("broker.listen", "an embedded broker needs `listen`, an address the device can reach".into()),
            "embedded" => {
                if let Some(l) = &rig.broker.listen
                    && l.parse::<std::net::SocketAddr>().is_err()
                {
                    return bad("broker.listen", format!("`{l}` is not HOST:PORT"));
                }
            }
            "external" => match &rig.broker.url {
                Some(u) if u.starts_with("mqtt://") => {}
                _ => return bad("broker.url", "an external broker needs `url = \"mqtt://HOST:PORT\"`".into()),
            },
            other => return bad("broker.kind", format!("`{other}`: embedded or external")),
        }
        if !["esp32", "esp32c3"].contains(&rig.firmware.chip.as_str()) {
            return bad("firmware.chip", format!("`{}`: esp32 (M5StickC) or esp32c3", rig.firmware.chip));
        }
        match rig.firmware.flasher.as_str() {
            "espflash" => {}
            "probe-rs" if rig.firmware.chip == "esp32c3" => {}
            "probe-rs" => return bad("firmware.flasher", "probe-rs needs a JTAG probe; the M5StickC (esp32) is flashed with espflash".into()),
            other => return bad("firmware.flasher", format!("`{other}`: espflash or probe-rs")),
        }
        if !["default-reset", "usb-reset", "no-reset", "no-reset-no-sync"].contains(&rig.reset.before.as_str()) {
            return bad("reset.before", format!("`{}`: default-reset, usb-reset, no-reset or no-reset-no-sync", rig.reset.before));
        }
        if !["hard-reset", "no-reset", "watchdog-reset"].contains(&rig.reset.after.as_str()) {
            return bad("reset.after", format!("`{}`: hard-reset, no-reset or watchdog-reset", rig.reset.after));
        }
        if rig.firmware.image.is_relative()
            && let Some(dir) = path.parent()
        {
            rig.firmware.image = dir.join(&rig.firmware.image);
        }
        Ok(rig)
    }

    /// Finds both ports among the system's serial ports.
    pub fn resolve_ports(&self) -> anyhow::Result<Resolved> {
        let ports = serialport::available_ports().context("listing serial ports")?;
        let listed: Vec<Listed> = ports
            .into_iter()
            .map(|p| match p.port_type {
                serialport::SerialPortType::UsbPort(u) => Listed { path: p.port_name, usb_serial: u.serial_number, vid_pid: Some((u.vid, u.pid)) },
                _ => Listed { path: p.port_name, usb_serial: None, vid_pid: None },
            })
            .collect();
        resolve(&listed, &self.console.usb_serial, &self.meter.usb_serial)
    }

    /// The espflash command line that flashes the image onto the console port.
    pub fn flash_command(&self, port: &str) -> (String, Vec<String>) {
        match self.firmware.flasher.as_str() {
            "probe-rs" => ("probe-rs".into(), vec!["download".into(), "--chip".into(), "esp32c3".into(), self.firmware.image.display().to_string()]),
            _ => (
                "espflash".into(),
                vec![
                    "flash".into(),
                    "--non-interactive".into(),
                    "--chip".into(),
                    self.firmware.chip.clone(),
                    "--port".into(),
                    port.into(),
                    "--before".into(),
                    self.reset.before.clone(),
                    "--after".into(),
                    self.reset.after.clone(),
                    self.firmware.image.display().to_string(),
                ],
            ),
        }
    }
}

/// Matches both ports by USB serial number. Every miss is an error naming what is there instead.
pub fn resolve(listed: &[Listed], console: &str, meter: &str) -> anyhow::Result<Resolved> {
    let find = |serial: &str, role: &str| -> anyhow::Result<String> {
        let hits: Vec<&Listed> = listed.iter().filter(|p| p.usb_serial.as_deref() == Some(serial)).collect();
        match hits.as_slice() {
            [one] => Ok(one.path.clone()),
            [] => {
                let present: Vec<String> = listed
                    .iter()
                    .map(|p| format!("{} (serial {})", p.path, p.usb_serial.as_deref().unwrap_or("none")))
                    .collect();
                bail!(
                    "{role} port with USB serial `{serial}` is not connected; present: {}",
                    if present.is_empty() { "no serial ports".to_string() } else { present.join(", ") }
                )
            }
            many => {
                // One adapter can expose several interfaces (FT2232): refuse to guess.
                let paths: Vec<&str> = many.iter().map(|p| p.path.as_str()).collect();
                bail!("{role} USB serial `{serial}` matches several ports ({}); refusing to guess", paths.join(", "))
            }
        }
    };
    Ok(Resolved { console: find(console, "console")?, meter: find(meter, "meter")? })
}

/// Runs a command with a time limit, keeping its output for the error message.
pub fn run_bounded(program: &str, args: &[String], timeout: Duration) -> anyhow::Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{program}` (is it installed? see `cargo hil doctor`)"))?;
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let mut e = String::new();
        let _ = err.read_to_string(&mut e);
        s + &e
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{program} {}` did not finish within {timeout:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("`{program} {}` failed ({status}):\n{}", args.join(" "), tail.join("\n"));
    }
    Ok(text)
}

/// Reads console lines from a serial port on a thread. When the port vanishes (USB unplugged,
/// pty closed), the error is sent as the last line, prefixed `hil: console port vanished`.
pub fn console_reader(path: &str, baud: u32, tx: mpsc::UnboundedSender<Line>) -> anyhow::Result<std::thread::JoinHandle<String>> {
    let mut port = serialport::new(path, baud)
        .timeout(Duration::from_millis(200))
        .open()
        .with_context(|| format!("opening console port {path}"))?;
    let path = path.to_string();
    Ok(std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match port.read(&mut chunk) {
                Ok(0) => {
                    let why = format!("hil: console port vanished: {path} returned end of file");
                    let _ = tx.send(Line::parse(Instant::now(), &why));
                    return why;
                }
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        let text = String::from_utf8_lossy(&line);
                        if tx.send(Line::parse(Instant::now(), &text)).is_err() {
                            return "receiver gone".into();
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::Interrupted => {
                    if tx.is_closed() {
                        return "receiver gone".into();
                    }
                }
                Err(e) => {
                    let why = format!("hil: console port vanished: {path}: {e}");
                    let _ = tx.send(Line::parse(Instant::now(), &why));
                    return why;
                }
            }
        }
    }))
}

/// Waits for `marker` on the console, bounded; the lines seen are returned either way.
pub fn wait_for_line(rx: &mut mpsc::UnboundedReceiver<Line>, marker: &str, timeout: Duration) -> Result<Vec<String>, (String, Vec<String>)> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        while let Ok(l) = rx.try_recv() {
            let hit = l.text.contains(marker);
            let vanished = l.text.starts_with("hil: console port vanished");
            seen.push(l.text);
            if hit {
                return Ok(seen);
            }
            if vanished {
                return Err((format!("the console port vanished while waiting for `{marker}`"), seen));
            }
        }
        if Instant::now() > deadline {
            return Err((format!("no `{marker}` on the console within {timeout:?}"), seen));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Debug, Args)]
pub struct RunCmd {
    /// The rig file (see fixtures/rigs/).
    #[arg(long, value_name = "RIG.toml")]
    rig: PathBuf,
    #[command(flatten)]
    suite: crate::SuiteOpts,
    /// Skip flashing (the device already runs the image).
    #[arg(long)]
    no_flash: bool,
}

impl RunCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let rig = Rig::load(&self.rig)?;
        let (dir, scenarios) = crate::runner::load(self.suite.scenarios.as_deref(), &crate::sim::SimCatalogue)?;
        eprintln!("rig: {}", rig.description);
        let ports = rig.resolve_ports().with_context(|| format!("rig {}", self.rig.display()))?;
        eprintln!("rig: console {} meter {}", ports.console, ports.meter);
        if !self.no_flash {
            if !rig.firmware.image.is_file() {
                bail!("firmware image {} does not exist (build it first; see firmware/m5stickc/README)", rig.firmware.image.display());
            }
            let (prog, args) = rig.flash_command(&ports.console);
            eprintln!("rig: flashing: {prog} {}", args.join(" "));
            run_bounded(&prog, &args, rig.firmware.flash_timeout.0)?;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _reader = console_reader(&ports.console, rig.console.baud, tx)?;
        if self.no_flash {
            eprintln!("rig: resetting with espflash");
            run_bounded("espflash", &["reset".into(), "--chip".into(), rig.firmware.chip.clone(), "--port".into(), ports.console.clone()], Duration::from_secs(30))?;
        }
        match wait_for_line(&mut rx, &rig.reset.boot_line, rig.reset.boot_timeout.0) {
            Ok(lines) => eprintln!("rig: booted ({})", lines.last().cloned().unwrap_or_default()),
            Err((why, lines)) => bail!("{why}\n--- last console lines ---\n{}", lines.iter().rev().take(20).rev().cloned().collect::<Vec<_>>().join("\n")),
        }
        crate::rigrun::run(rig, ports, rx, dir, scenarios, &self.suite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> Vec<Listed> {
        vec![
            Listed { path: "/dev/ttyUSB0".into(), usb_serial: Some("5D52F0A5E2".into()), vid_pid: Some((0x0403, 0x6015)) },
            Listed { path: "/dev/ttyUSB1".into(), usb_serial: Some("A10K3XYZ".into()), vid_pid: Some((0x10c4, 0xea60)) },
            Listed { path: "/dev/ttyS0".into(), usb_serial: None, vid_pid: None },
        ]
    }

    #[test]
    fn ports_are_found_by_usb_serial_not_by_name() {
        let r = resolve(&listed(), "A10K3XYZ", "5D52F0A5E2").unwrap();
        assert_eq!(r, Resolved { console: "/dev/ttyUSB1".into(), meter: "/dev/ttyUSB0".into() });
    }

    #[test]
    fn an_absent_board_fails_naming_what_is_there() {
        let tried = std::cell::Cell::new(0);
        let resolve = |listed: &[Listed], console: &str, meter: &str| {
            tried.set(tried.get() + 1);
            resolve(listed, console, meter)
        };
        let e = resolve(&listed(), "NOPE", "A10K3XYZ").unwrap_err().to_string();
        assert!(e.contains("console port with USB serial `NOPE` is not connected"), "{e}");
        assert!(e.contains("/dev/ttyUSB0 (serial 5D52F0A5E2)"), "{e}");
        let e = resolve(&[], "X", "Y").unwrap_err().to_string();
        assert!(e.contains("no serial ports"), "{e}");
        hostile_inputs("harness faults", tried.get(), "hil rig::tests::an_absent_board_fails_naming_what_is_there");
    }

    #[test]
    fn a_serial_on_two_ports_is_refused() {
        let mut l = listed();
        l.push(Listed { path: "/dev/ttyUSB2".into(), usb_serial: Some("A10K3XYZ".into()), vid_pid: None });
        let e = resolve(&l, "A10K3XYZ", "5D52F0A5E2").unwrap_err().to_string();
        assert!(e.contains("refusing to guess"), "{e}");
    }

    #[test]
    fn the_example_rig_loads_and_flashes_with_espflash() {
        let p = crate::workspace().join("fixtures/rigs/m5stickc-bench.toml");
        let rig = Rig::load(&p).unwrap();
        let (prog, args) = rig.flash_command("/dev/ttyUSB1");
        assert_eq!(prog, "espflash");
        assert!(args.windows(2).any(|w| w == ["--port", "/dev/ttyUSB1"]), "{args:?}");
        assert!(args.windows(2).any(|w| w == ["--chip", "esp32"]), "{args:?}");
        assert!(args.contains(&"--non-interactive".to_string()));
    }

    #[test]
    fn bad_rig_fields_are_named_with_their_line() {
        let p = crate::workspace().join("fixtures/rigs/m5stickc-bench.toml");
        let text = std::fs::read_to_string(&p).unwrap();
        let dir = std::env::temp_dir().join(format!("hil-rig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.toml");
        let mut tried = 0;
        for (from, to, field) in [
            ("data_request = \"cts\"", "data_request = \"rts\"", "meter.data_request"),
            ("chip = \"esp32\"", "chip = \"esp8266\"", "firmware.chip"),
            ("kind = \"embedded\"", "kind = \"cloud\"", "broker.kind"),
            ("before = \"default-reset\"", "before = \"sometimes\"", "reset.before"),
        ] {
            assert!(text.contains(from), "example rig lacks {from}");
            std::fs::write(&bad, text.replace(from, to)).unwrap();
            let e = Rig::load(&bad).unwrap_err().to_string();
            let line = text.lines().position(|l| l.trim_start().starts_with(from)).unwrap() + 1;
            assert!(e.contains(&format!("bad.toml:{line}:")) && e.contains(field), "{e}");
            tried += 1;
        }
        std::fs::remove_dir_all(&dir).unwrap();
        hostile_inputs("rig files", tried, "hil rig::tests::bad_rig_fields_are_named_with_their_line");
    }

    #[test]
    fn a_console_port_that_vanishes_ends_the_wait_at_once() {
        let (master, slave) = serialport::TTYPort::pair().unwrap();
        let path = serialport::SerialPort::name(&slave).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let reader = console_reader(&path, 115_200, tx).unwrap();
        drop(slave);
        std::thread::sleep(Duration::from_millis(100));
        drop(master);
        let t0 = Instant::now();
        let r = wait_for_line(&mut rx, "ev=boot", Duration::from_secs(10));
        let (why, _) = r.unwrap_err();
        assert!(why.contains("vanished"), "{why}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(reader.join().unwrap().contains("vanished"));
    }

    #[test]
    fn flashing_a_missing_tool_or_a_hung_one_fails_in_time() {
        let tried = std::cell::Cell::new(0);
        let run_bounded = |program: &str, args: &[String], limit: Duration| {
            tried.set(tried.get() + 1);
            run_bounded(program, args, limit)
        };
        let e = run_bounded("/nonexistent/espflash", &[], Duration::from_secs(5)).unwrap_err();
        assert!(format!("{e:#}").contains("is it installed"), "{e:#}");
        let t0 = Instant::now();
        let e = run_bounded("sleep", &["30".into()], Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let e = run_bounded("sh", &["-c".into(), "echo flash failed; exit 3".into()], Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("flash failed"), "{e}");
        hostile_inputs("harness faults", tried.get(), "hil rig::tests::flashing_a_missing_tool_or_a_hung_one_fails_in_time");
    }

    /// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
    fn hostile_inputs(category: &str, count: usize, test: &str) {
        if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
            f.write_all(format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
        }
    }
}
