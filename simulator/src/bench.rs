//! `p1-sim bench`: figures printed, never asserted.
//!
//! - `render`: telegrams per second rendered with CRC (model step + dsmr writer + CRC), per
//!   profile, on one core.
//! - `fleet`: N meters at 1 Hz, each its own TCP server with one connected reader, on a
//!   multi-threaded runtime; CPU share of this process and the p99 lateness of the send schedule.
//! - `jitter`: one meter in real time with precise waits; p99 start lateness.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::AsyncReadExt;

use crate::meter::Meter;
use crate::profile::Profile;
use crate::run::{self, DataRequest, Lateness, RunOptions, Speed};
use crate::sinks::{NullSink, TcpFanout};

/// Result of the render benchmark for one profile.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderFigure {
    /// Profile name.
    pub profile: String,
    /// Bytes per telegram (last one).
    pub bytes: usize,
    /// Telegrams per second of wall time.
    pub per_s: f64,
    /// Telegrams per second of this thread's CPU time (robust when other processes load the machine).
    pub per_cpu_s: Option<f64>,
    /// MB/s of telegram bytes.
    pub mb_per_s: f64,
}

/// Renders telegrams for `secs` per profile on the calling thread.
pub fn render(profiles: &[Profile], secs: f64) -> Vec<RenderFigure> {
    let mut out = Vec::new();
    for p in profiles {
        let mut m = Meter::new(p.clone(), 1, Utc::now());
        let mut buf = Vec::with_capacity(8192);
        for _ in 0..1000 {
            m.next_into(&mut buf);
        }
        let cpu0 = thread_cpu_seconds();
        let t0 = Instant::now();
        let mut n = 0u64;
        let mut bytes = 0u64;
        while t0.elapsed().as_secs_f64() < secs {
            for _ in 0..1000 {
                m.next_into(&mut buf);
                bytes += buf.len() as u64;
            }
            n += 1000;
        }
        let dt = t0.elapsed().as_secs_f64();
        let cpu = thread_cpu_seconds().zip(cpu0).map(|(b, a)| b - a).filter(|c| *c > 0.0);
        out.push(RenderFigure {
            profile: p.name.clone(),
            bytes: buf.len(),
            per_s: n as f64 / dt,
            per_cpu_s: cpu.map(|c| n as f64 / c),
            mb_per_s: bytes as f64 / dt / 1e6,
        });
    }
    out
}

/// CPU time of the calling thread in seconds (`/proc/thread-self/schedstat`, nanoseconds on CPU).
pub fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e9)
}

/// CPU time (user + system) of this process in seconds, from /proc/self/stat.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Result of the fleet benchmark.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetFigure {
    /// Meters.
    pub meters: usize,
    /// Seconds run.
    pub seconds: f64,
    /// Telegrams sent in all.
    pub telegrams: u64,
    /// Bytes received by the readers.
    pub bytes_received: u64,
    /// CPU seconds used per wall second (1.0 = one full core; the machine has `cores`).
    pub cpu_share: f64,
    /// Cores available.
    pub cores: usize,
    /// Start lateness over all meters.
    pub lateness: Lateness,
}

/// Runs `meters` AM550 meters at 1 Hz for `secs`, each on its own loopback TCP server with one
/// reader, bytes paced at 115200 baud, meter clocks spread evenly over the second.
pub async fn fleet(profile: &Profile, meters: usize, secs: u64) -> std::io::Result<FleetFigure> {
    let mut servers = Vec::with_capacity(meters);
    for _ in 0..meters {
        servers.push(TcpFanout::bind("127.0.0.1:0").await?);
    }
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for s in &servers {
        let addr = s.local_addr();
        let rx = received.clone();
        tokio::spawn(async move {
            let Ok(mut c) = tokio::net::TcpStream::connect(addr).await else { return };
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = c.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                rx.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    for s in &servers {
        if !s.wait_for_clients(1, Duration::from_secs(10)).await {
            return Err(std::io::Error::other("fleet readers did not connect within 10 s"));
        }
    }
    let cpu0 = cpu_seconds().unwrap_or(0.0);
    let wall0 = Instant::now();
    // Start on the next whole second so all meters share boundaries, as real meters do.
    let start = Utc::now() + chrono::Duration::seconds(1);
    let mut tasks = Vec::new();
    for (i, mut s) in servers.into_iter().enumerate() {
        let p = profile.clone();
        tasks.push(tokio::spawn(async move {
            let mut m = Meter::new(p, i as u64, start);
            let opts = RunOptions {
                speed: Speed::Factor(1.0),
                count: Some(secs),
                pace_tick: Duration::from_millis(8),
                phase: Duration::from_secs_f64(i as f64 / meters as f64),
                ..RunOptions::default()
            };
            run::run(&mut m, &mut s, &opts, &DataRequest::new(true), |_, _| {}).await
        }));
    }
    let mut telegrams = 0;
    let mut samples = Vec::new();
    for t in tasks {
        if let Ok(Ok(sum)) = t.await {
            telegrams += sum.telegrams;
            samples.extend(sum.lateness_samples_us);
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().unwrap_or(0.0) - cpu0;
    let lateness = Lateness::from_samples(samples);
    Ok(FleetFigure {
        meters,
        seconds: wall,
        telegrams,
        bytes_received: received.load(std::sync::atomic::Ordering::Relaxed),
        cpu_share: cpu / wall,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        lateness,
    })
}

/// One meter in real time (bytes paced; precise waits if asked) into a null sink for `count`
/// telegrams.
/// `speed` > 1 shortens the run (more telegrams per wall second) without changing what is measured.
pub async fn jitter(profile: &Profile, count: u64, speed: f64, precise: bool) -> std::io::Result<Lateness> {
    let mut m = Meter::new(profile.clone(), 1, Utc::now() + chrono::Duration::seconds(1));
    let opts = RunOptions { speed: Speed::Factor(speed), count: Some(count), precise, ..RunOptions::default() };
    let sum = run::run(&mut m, &mut NullSink, &opts, &DataRequest::new(true), |_, _| {}).await?;
    Ok(sum.lateness)
}
