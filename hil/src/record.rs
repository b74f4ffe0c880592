//! `cargo hil record --port DEV`: captures a real meter's telegrams, byte for byte, into
//! `fixtures/recordings/<name>.p1` (a stream `p1-sim run --replay` plays back with its original
//! timing) and `<name>.toml` (where, when, how many, and how many had a valid CRC).

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::oracle;

#[derive(Debug, Args)]
pub struct RecordCmd {
    /// Serial device the meter is on (a USB-UART on the P1 port).
    #[arg(long, value_name = "DEV")]
    port: String,
    /// Line speed: 115200 (DSMR 4/5, 8N1) or 9600 (DSMR 2.2/3, 7E1).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Stop after this many telegrams.
    #[arg(long, default_value_t = 60)]
    count: usize,
    /// Stop after this long at most (also the limit when the meter is silent).
    #[arg(long, default_value = "5m", value_parser = crate::duration::parse)]
    duration: Duration,
    /// Recording name (default: the meter header, e.g. ISK5-2M550T-1012).
    #[arg(long)]
    name: Option<String>,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Splits complete telegrams (`/` .. `!XXXX\r\n`) off the front of `buf`.
pub fn take_telegrams(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(start) = buf.iter().position(|&b| b == b'/') else {
            buf.clear();
            break;
        };
        let Some(bang) = buf[start..].iter().position(|&b| b == b'!').map(|p| p + start) else {
            buf.drain(..start);
            break;
        };
        let Some(nl) = buf[bang..].iter().position(|&b| b == b'\n').map(|p| p + bang) else {
            buf.drain(..start);
            break;
        };
        out.push(buf[start..=nl].to_vec());
        buf.drain(..=nl);
    }
    out
}

/// A file-name-safe name from the telegram header (`/ISK5\2M550T-1012` → `ISK5-2M550T-1012`).
pub fn header_name(t: &[u8]) -> String {
    let first = t.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or(b"/meter");
    let s: String = first
        .iter()
        .skip(1)
        .map(|&b| if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' { b as char } else { '-' })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "meter".into() } else { s }
}

impl RecordCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let (data_bits, parity) = if self.baud == 9600 {
            (serialport::DataBits::Seven, serialport::Parity::Even)
        } else {
            (serialport::DataBits::Eight, serialport::Parity::None)
        };
        let mut port = serialport::new(&self.port, self.baud)
            .data_bits(data_bits)
            .parity(parity)
            .timeout(Duration::from_millis(500))
            .open()
            .with_context(|| format!("opening {} at {} baud", self.port, self.baud))?;
        let deadline = Instant::now() + self.duration;
        let mut buf = Vec::new();
        let mut telegrams: Vec<Vec<u8>> = Vec::new();
        let mut chunk = [0u8; 4096];
        eprintln!("recording from {} (up to {} telegrams or {:?})", self.port, self.count, self.duration);
        while telegrams.len() < self.count && Instant::now() < deadline {
            match port.read(&mut chunk) {
                Ok(0) => anyhow::bail!("{}: the port closed (unplugged?) after {} telegrams", self.port, telegrams.len()),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    for t in take_telegrams(&mut buf) {
                        eprintln!("  telegram {} ({} bytes)", telegrams.len() + 1, t.len());
                        telegrams.push(t);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => anyhow::bail!("{}: read failed after {} telegrams: {e}", self.port, telegrams.len()),
            }
        }
        if telegrams.is_empty() {
            anyhow::bail!("no telegram from {} within {:?}: check the wiring, data request and baud", self.port, self.duration);
        }
        let name = self.name.clone().unwrap_or_else(|| header_name(&telegrams[0]));
        let dir = self.out.clone().unwrap_or_else(|| crate::workspace().join("fixtures/recordings"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let data = dir.join(format!("{name}.p1"));
        let stream: Vec<u8> = telegrams.concat();
        std::fs::write(&data, &stream).with_context(|| format!("writing {}", data.display()))?;
        let crc_ok = telegrams.iter().filter(|t| oracle::read(t).is_some_and(|s| s.crc_ok)).count();
        let first_ts = telegrams.iter().find_map(|t| oracle::read(t).and_then(|s| s.ts));
        let meta = format!(
            "# Recorded by `cargo hil record`; replay with: p1-sim run --replay {}\nport = {:?}\nbaud = {}\ntelegrams = {}\ncrc_valid = {}\nheader = {:?}\nfirst_timestamp = {:?}\n",
            data.display(),
            self.port,
            self.baud,
            telegrams.len(),
            crc_ok,
            String::from_utf8_lossy(telegrams[0].split(|&b| b == b'\r').next().unwrap_or(b"")),
            first_ts.unwrap_or_default()
        );
        let meta_path = dir.join(format!("{name}.toml"));
        std::fs::write(&meta_path, meta).with_context(|| format!("writing {}", meta_path.display()))?;
        println!("{} telegrams ({} with a valid CRC) -> {} and {}", telegrams.len(), crc_ok, data.display(), meta_path.display());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_telegrams_and_keeps_the_partial_tail() {
        let mut buf = b"noise/A\r\n1\r\n!1234\r\n/B\r\n!ABCD\r\n/C\r\npart".to_vec();
        let t = take_telegrams(&mut buf);
        assert_eq!(t, vec![b"/A\r\n1\r\n!1234\r\n".to_vec(), b"/B\r\n!ABCD\r\n".to_vec()]);
        assert_eq!(buf, b"/C\r\npart".to_vec());
        buf.extend_from_slice(b"\r\n!0000\r\n");
        assert_eq!(take_telegrams(&mut buf).len(), 1);
        assert!(buf.is_empty());
    }

    #[test]
    fn names_come_from_the_header() {
        assert_eq!(header_name(b"/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)"), "ISK5-2M550T-1012");
        assert_eq!(header_name(b"/\r\n"), "meter");
    }

    #[test]
    fn records_from_a_pty_like_a_meter_port() {
        use std::io::Write;
        let (mut master, slave) = serialport::TTYPort::pair().unwrap();
        let path = serialport::SerialPort::name(&slave).unwrap();
        let t = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/telegrams/Wassasin-dsmr5__isk_ISK_AM550.txt")).unwrap();
        let dir = std::env::temp_dir().join(format!("hil-rec-{}", std::process::id()));
        let writer = std::thread::spawn(move || {
            for _ in 0..3 {
                master.write_all(&t).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
            master
        });
        let cmd = RecordCmd { port: path, baud: 115_200, count: 3, duration: Duration::from_secs(10), name: Some("am550".into()), out: Some(dir.clone()) };
        cmd.run().unwrap();
        let _master = writer.join().unwrap();
        let meta = std::fs::read_to_string(dir.join("am550.toml")).unwrap();
        assert!(meta.contains("telegrams = 3") && meta.contains("crc_valid = 3"), "{meta}");
        assert_eq!(simulator::replay::split(&std::fs::read(dir.join("am550.p1")).unwrap()).len(), 3);
        drop(slave);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
