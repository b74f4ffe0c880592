//! The virtual M5StickC as a child process: console (stdout and stderr) captured line by line,
//! control lines written to its stdin, exit noticed at once, peak RSS sampled from /proc.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};

use crate::console::Line;

/// How to start the device.
#[derive(Debug, Clone)]
pub struct DeviceArgs {
    pub exe: PathBuf,
    pub p1: String,
    pub broker_port: u16,
    pub device_id: String,
    pub prefix: String,
    pub raw_telegrams: bool,
    pub supply: Option<simulator::power::SupplyKind>,
    pub time_scale: f64,
    pub config: Option<PathBuf>,
    /// MQTT user name and the file holding the password.
    pub login: Option<(String, PathBuf)>,
}

impl DeviceArgs {
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![
            "--p1".into(),
            self.p1.clone(),
            "--broker".into(),
            format!("mqtt://127.0.0.1:{}", self.broker_port),
            "--device-id".into(),
            self.device_id.clone(),
            "--prefix".into(),
            self.prefix.clone(),
            "--time-scale".into(),
            format!("{}", self.time_scale),
        ];
        if self.raw_telegrams {
            v.push("--raw-telegrams".into());
        }
        if let Some(s) = self.supply {
            v.push("--supply".into());
            v.push(s.to_string());
        }
        if let Some(c) = &self.config {
            v.push("--config".into());
            v.push(c.display().to_string());
        }
        if let Some((user, file)) = &self.login {
            v.extend(["--username".into(), user.clone(), "--password-file".into(), file.display().to_string()]);
        }
        v
    }
}

/// How the device process ended, once it has.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    Running,
    Exited(String),
}

#[derive(Debug)]
pub struct Device {
    pub pid: u32,
    stdin: Option<ChildStdin>,
    exit: watch::Receiver<Exit>,
    peak_rss_kib: Arc<AtomicU64>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Device {
    /// Spawns the device; every console line goes to `lines` with its arrival time.
    pub fn spawn(args: &DeviceArgs, lines: mpsc::UnboundedSender<Line>) -> anyhow::Result<Device> {
        let mut child: Child = Command::new(&args.exe)
            .args(args.argv())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_BACKTRACE", "1")
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the virtual device {}", args.exe.display()))?;
        let pid = child.id().context("device pid")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("device stdout")?;
        let stderr = child.stderr.take().context("device stderr")?;
        let out_done = tokio::spawn(pump(stdout, lines.clone(), ""));
        let err_done = tokio::spawn(pump(stderr, lines, "stderr: "));
        let peak = Arc::new(AtomicU64::new(0));
        let (exit_tx, exit_rx) = watch::channel(Exit::Running);
        let (kill_tx, mut kill_rx) = tokio::sync::oneshot::channel::<()>();
        let peak2 = peak.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let status = loop {
                tokio::select! {
                    s = child.wait() => break s,
                    _ = &mut kill_rx => {
                        sample_rss(pid, &peak2);
                        let _ = child.start_kill();
                        break child.wait().await;
                    }
                    _ = tick.tick() => sample_rss(pid, &peak2),
                }
            };
            // Let the last console lines arrive before the exit is announced.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = out_done.await;
                let _ = err_done.await;
            })
            .await;
            let text = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
            let _ = exit_tx.send(Exit::Exited(text));
        });
        Ok(Device { pid, stdin, exit: exit_rx, peak_rss_kib: peak, kill: Some(kill_tx) })
    }

    /// Writes one control line (`wifi down`, `supply plug`, ...), bounded in time.
    pub async fn control(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("device stdin is closed")?;
        let write = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        };
        tokio::time::timeout(Duration::from_secs(5), write)
            .await
            .with_context(|| format!("device did not take control line `{line}` within 5 s"))?
            .with_context(|| format!("writing control line `{line}` to the device"))
    }

    pub fn exit(&self) -> Exit {
        self.exit.borrow().clone()
    }

    /// Resolves when the process has exited.
    pub async fn exited(&mut self) -> String {
        loop {
            if let Exit::Exited(s) = self.exit.borrow().clone() {
                return s;
            }
            if self.exit.changed().await.is_err() {
                return "unknown".into();
            }
        }
    }

    /// Highest resident set size seen, KiB (VmHWM from /proc).
    pub fn peak_rss_kib(&self) -> u64 {
        self.peak_rss_kib.load(Ordering::SeqCst)
    }

    /// Kills the process and waits (bounded) until it is gone.
    pub async fn kill(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.exited()).await;
    }
}

async fn pump(r: impl AsyncRead + Unpin, tx: mpsc::UnboundedSender<Line>, prefix: &'static str) {
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        let text = if prefix.is_empty() { l } else { format!("{prefix}{l}") };
        if tx.send(Line::parse(Instant::now(), &text)).is_err() {
            return;
        }
    }
}

fn sample_rss(pid: u32, peak: &AtomicU64) {
    if let Some(kib) = vm_hwm_kib(pid) {
        peak.fetch_max(kib, Ordering::SeqCst);
    }
}

/// Peak resident set (VmHWM) of a live process, KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Finds `virtual-m5stickc`: `--device`, then `$HIL_DEVICE`, then next to this executable.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("HIL_DEVICE") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().context("locating the hil executable")?;
    let dir = me.parent().context("hil executable has no directory")?;
    Ok(dir.join("virtual-m5stickc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_peak_rss() {
        let kib = vm_hwm_kib(std::process::id()).unwrap();
        assert!(kib > 100, "{kib}");
    }

    #[tokio::test]
    async fn a_process_that_dies_is_noticed_with_its_last_lines() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let args = DeviceArgs {
            exe: PathBuf::from("/bin/sh"),
            p1: String::new(),
            broker_port: 1,
            device_id: String::new(),
            prefix: String::new(),
            raw_telegrams: false,
            supply: None,
            time_scale: 1.0,
            config: None,
            login: None,
        };
        // /bin/sh rejects our flags; it must still end up as Exited with its stderr captured.
        let mut d = Device::spawn(&args, tx).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(5), d.exited()).await.unwrap();
        assert!(!status.is_empty());
        let mut lines = Vec::new();
        while let Ok(l) = rx.try_recv() {
            lines.push(l.text);
        }
        assert!(lines.iter().any(|l| l.starts_with("stderr: ")), "{lines:?}");
    }
}
