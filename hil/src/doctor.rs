//! `cargo hil doctor`: what this machine has for `sim` and for a bench rig, and what is missing.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

#[derive(Debug, Args)]
pub struct DoctorCmd {
    /// Also check that the ports named in this rig file are present.
    #[arg(long, value_name = "RIG.toml")]
    rig: Option<std::path::PathBuf>,
}

/// Runs a command with a time limit; `Some(first line of output)` when it succeeded.
pub fn probe_command(program: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child.wait_with_output().ok()?;
                let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
                let first = String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string();
                return status.success().then_some(first);
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// USB debug probes and bridges worth naming: (VID, PID, what it is).
const KNOWN_USB: &[(u16, u16, &str)] = &[
    (0x303a, 0x1001, "ESP32-C3/S3 built-in USB-Serial-JTAG (probe-rs and espflash)"),
    (0x0403, 0x6010, "FTDI FT2232 (ESP-Prog JTAG probe)"),
    (0x0403, 0x6015, "FTDI FT231X (M5StickC USB-UART)"),
    (0x0403, 0x6001, "FTDI FT232R USB-UART"),
    (0x10c4, 0xea60, "Silicon Labs CP210x USB-UART"),
    (0x1a86, 0x55d4, "WCH CH9102 USB-UART (M5StickC PLUS)"),
    (0x1a86, 0x7523, "WCH CH340 USB-UART"),
];

pub fn describe_usb(vid: u16, pid: u16) -> Option<&'static str> {
    KNOWN_USB.iter().find(|(v, p, _)| *v == vid && *p == pid).map(|(_, _, d)| *d)
}

impl DoctorCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut missing_sim = Vec::new();
        let mut missing_rig = Vec::new();
        let t = Duration::from_secs(10);
        println!("cargo hil doctor\n");
        println!("toolchain");
        match probe_command("rustc", &["--version"], t) {
            Some(v) => println!("  ok      rustc: {v}"),
            None => missing_sim.push("rustc (install rustup: https://rustup.rs)"),
        }
        match probe_command("rustup", &["target", "list", "--installed"], t) {
            Some(_) => {
                let all = Command::new("rustup").args(["target", "list", "--installed"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
                if all.contains("riscv32imc-unknown-none-elf") {
                    println!("  ok      target riscv32imc-unknown-none-elf (ESP32-C3 image)");
                } else {
                    println!("  missing target riscv32imc-unknown-none-elf: rustup target add riscv32imc-unknown-none-elf");
                    missing_rig.push("riscv32imc target");
                }
            }
            None => println!("  missing rustup (needed to add firmware targets)"),
        }
        let toolchains = Command::new("rustup").args(["toolchain", "list"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        if toolchains.lines().any(|l| l.starts_with("esp")) {
            println!("  ok      Espressif `esp` toolchain (Xtensa ESP32 / M5StickC image)");
        } else {
            println!("  missing Espressif `esp` toolchain (M5StickC build): cargo install espup && espup install");
            missing_rig.push("esp toolchain");
        }
        println!("flashers");
        for (tool, hint) in [("espflash", "cargo install espflash --locked"), ("probe-rs", "cargo install probe-rs-tools --locked (ESP32-C3 USB-JTAG only)")] {
            match probe_command(tool, &["--version"], t) {
                Some(v) => println!("  ok      {tool}: {v}"),
                None => {
                    println!("  missing {tool}: {hint}");
                    if tool == "espflash" {
                        missing_rig.push("espflash");
                    }
                }
            }
        }
        println!("brokers");
        println!("  ok      embedded rumqttd (built in; `hil broker`)");
        match probe_command("mosquitto", &["-h"], t).or_else(|| Path::new("/usr/sbin/mosquitto").exists().then(|| "/usr/sbin/mosquitto".into())) {
            Some(_) => println!("  ok      mosquitto (interop broker)"),
            None => println!("  absent  mosquitto (optional: apt-get install -y mosquitto)"),
        }
        println!("virtual device");
        match crate::device::locate(None) {
            Ok(p) if p.is_file() => println!("  ok      {}", p.display()),
            Ok(p) => println!("  not built yet {} (cargo hil sim builds it)", p.display()),
            Err(e) => println!("  ?       {e:#}"),
        }
        println!("serial ports");
        match serialport::available_ports() {
            Ok(ports) if ports.is_empty() => {
                println!("  none    no serial ports: a bench rig needs the M5StickC console and a USB-UART for the meter");
                missing_rig.push("serial ports");
            }
            Ok(ports) => {
                for p in ports {
                    match p.port_type {
                        serialport::SerialPortType::UsbPort(u) => println!(
                            "  usb     {} {:04x}:{:04x} serial={} {} {}",
                            p.port_name,
                            u.vid,
                            u.pid,
                            u.serial_number.as_deref().unwrap_or("(none)"),
                            u.product.as_deref().unwrap_or(""),
                            describe_usb(u.vid, u.pid).map(|d| format!("[{d}]")).unwrap_or_default()
                        ),
                        other => println!("  other   {} {other:?}", p.port_name),
                    }
                }
            }
            Err(e) => println!("  error   listing serial ports: {e}"),
        }
        println!("probes");
        let probes = usb_devices().into_iter().filter(|(v, p)| describe_usb(*v, *p).is_some_and(|d| d.contains("JTAG"))).count();
        if probes == 0 {
            println!("  none    no JTAG probe (fine for the M5StickC: it is flashed over its USB-UART)");
        } else {
            println!("  found   {probes} JTAG-capable device(s)");
        }
        if let Some(rig) = &self.rig {
            println!("rig {}", rig.display());
            match crate::rig::Rig::load(rig).and_then(|r| r.resolve_ports()) {
                Ok(ports) => println!("  ok      console {} meter {}", ports.console, ports.meter),
                Err(e) => {
                    println!("  missing {e:#}");
                    missing_rig.push("rig ports");
                }
            }
        }
        println!();
        if missing_sim.is_empty() {
            println!("cargo hil sim: ready");
        } else {
            println!("cargo hil sim: missing {}", missing_sim.join(", "));
        }
        if missing_rig.is_empty() {
            println!("cargo hil run --rig: ready");
        } else {
            println!("cargo hil run --rig: missing {}", missing_rig.join(", "));
        }
        Ok(if missing_sim.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}

/// (VID, PID) of every USB device in sysfs.
fn usb_devices() -> Vec<(u16, u16)> {
    let Ok(dir) = std::fs::read_dir("/sys/bus/usb/devices") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let read = |f: &str| std::fs::read_to_string(e.path().join(f)).ok().and_then(|s| u16::from_str_radix(s.trim(), 16).ok());
            Some((read("idVendor")?, read("idProduct")?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_bounded_and_failures_are_none() {
        assert!(probe_command("true", &[], Duration::from_secs(5)).is_some());
        assert!(probe_command("false", &[], Duration::from_secs(5)).is_none());
        assert!(probe_command("/nonexistent/tool", &[], Duration::from_secs(5)).is_none());
        let t0 = Instant::now();
        assert!(probe_command("sleep", &["10"], Duration::from_millis(200)).is_none());
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn knows_the_m5stickc_bridge() {
        assert!(describe_usb(0x0403, 0x6015).unwrap().contains("M5StickC"));
        assert!(describe_usb(0x1234, 0x5678).is_none());
    }
}
