//! Figures of the whole chain: simulator telegrams on a real pty → virtual-m5stickc → rumqttd →
//! rumqttc subscriber. Prints:
//! - latency from the last byte of a telegram on the pty to the state message at the subscriber,
//!   p50/p99/max (target p99 ≤ 5 ms);
//! - sustained throughput in virtual time: 86,400 telegrams (24 h of meter time at 1 Hz) through
//!   the chain (target ≤ 60 s).
//!
//! `cargo bench -p firmware-host --bench chain` (`-- latency`, `-- throughput`, `-- 2880`, ... for a part).
#![allow(clippy::unwrap_used)]

#[path = "../tests/it/rig.rs"]
mod rig;

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use rig::{start_rumqttd, Device, Meter, MeterPort, Msg, Subscriber};

fn seq_of(m: &Msg) -> Option<u64> {
    m.topic.ends_with("/state").then(|| m.json()["seq"].as_u64()).flatten()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latency(n: usize) {
    let broker = start_rumqttd();
    let sub = Subscriber::start(broker, "p1/bench-lat/state");
    let mut port = MeterPort::open();
    let url = format!("mqtt://127.0.0.1:{broker}");
    let mut dev = Device::start(&["--p1", &port.path, "--broker", &url, "--device-id", "bench-lat", "--no-discovery"]);
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let mut meter = Meter::am550(1);
    let telegrams: Vec<Vec<u8>> = (0..n).map(|_| meter.next().0).collect();
    let mut written = Vec::with_capacity(n);
    let mut arrived: HashMap<u64, Instant> = HashMap::new();
    for t in &telegrams {
        port.write(t);
        written.push(Instant::now());
        // Wait for this one before the next, as at 1 Hz, so each latency is the idle path.
        let seq = written.len() as u64;
        let end = Instant::now() + Duration::from_secs(5);
        while !arrived.contains_key(&seq) {
            let m = sub.rx.recv_timeout(end.saturating_duration_since(Instant::now())).expect("state message within 5 s");
            if let Some(s) = seq_of(&m) {
                arrived.insert(s, m.at);
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    let mut lat: Vec<Duration> = written.iter().enumerate().map(|(i, w)| arrived[&(i as u64 + 1)].saturating_duration_since(*w)).collect();
    lat.sort();
    println!(
        "latency pty last byte -> MQTT state at subscriber ({n} telegrams, AM550 {} B, QoS 1): p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (target p99 <= 5 ms)",
        telegrams[0].len(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn throughput(rate: Option<f64>) {
    const N: usize = 86_400;
    let broker = start_rumqttd();
    let sub = Subscriber::start(broker, "p1/bench-tp/state");
    let mut port = MeterPort::open();
    let url = format!("mqtt://127.0.0.1:{broker}");
    // 24 h of meter time in 60 s of wall time is a time scale of 1440.
    let mut dev = Device::start(&[
        "--p1", &port.path, "--broker", &url, "--device-id", "bench-tp", "--no-discovery", "--time-scale", "1440",
        "--ring", "16384", "--set", "keepalive_s=3600", "--set", "connect_timeout_ms=600000", "--set", "stats_interval_s=3600",
    ]);
    dev.wait_line(&["ev=mqtt", "state=connected"], Duration::from_secs(10));
    let mut meter = Meter::am550(2);
    let t0 = Instant::now();
    let telegrams: Vec<Vec<u8>> = (0..N).map(|_| meter.next().0).collect();
    let generation = t0.elapsed();
    let bytes: usize = telegrams.iter().map(Vec::len).sum();
    let writer = thread::spawn(move || {
        let start = Instant::now();
        // Paced at 1440x (one telegram per 0.694 ms of wall time), or as fast as the pty takes
        // them (the chain's capacity).
        let period = rate.map_or(Duration::ZERO, |r| Duration::from_secs_f64(1.0 / r));
        for (i, t) in telegrams.iter().enumerate() {
            let due = start + period.mul_f64(i as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            port.write(t);
        }
        (port, start.elapsed())
    });
    let start = Instant::now();
    let mut got = 0usize;
    let mut last = 0u64;
    let mut in_order = true;
    let end = start + Duration::from_secs(300);
    while last < N as u64 {
        let m = sub.rx.recv_timeout(end.saturating_duration_since(Instant::now())).expect("chain stalled (300 s)");
        if let Some(s) = seq_of(&m) {
            in_order &= s == last + 1;
            last = s;
            got += 1;
        }
    }
    let total = start.elapsed();
    let (_port, write_time) = writer.join().unwrap();
    let dropped = dev.lines().iter().filter(|l| l.contains("kind=ring_overflow")).count();
    println!(
        "throughput ({}): {N} telegrams ({:.1} MB; 24 h of meter time) through the chain in {:.1} s wall (writer done after {:.1} s; generation {:.1} s; target <= 60 s); in order: {in_order}; delivered {got} ({:.0}/s), ring drops: {dropped}",
        rate.map_or("writer unpaced".to_string(), |r| format!("writer paced at {r:.0} telegrams/s")),
        bytes as f64 / 1e6,
        total.as_secs_f64(),
        write_time.as_secs_f64(),
        generation.as_secs_f64(),
        got as f64 / total.as_secs_f64()
    );
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run only.
    if !std::env::args().any(|a| a == "--bench") {
        latency(20);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    if want("latency") {
        latency(500);
    }
    // 1440/s is 24 h of 1 Hz telegrams in 60 s; 2880/s (30 s) shows the headroom; unpaced shows
    // where the ring starts to drop (the P1 side then outruns the broker round trips).
    if want("throughput-1440") {
        throughput(Some(1440.0));
    }
    if want("throughput-2880") {
        throughput(Some(2880.0));
    }
    if want("throughput-unpaced") {
        throughput(None);
    }
}
