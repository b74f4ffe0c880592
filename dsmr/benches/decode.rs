//! Framing + CRC + full decode of real telegrams, against the `dsmr5` crate on the same bytes.
//!
//! `cargo bench -p dsmr --bench decode` runs criterion, then prints a summary table (µs per
//! telegram, µs per KiB, MB/s, ratio to dsmr5) from its own timing loop.

use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;

const TELEGRAMS: &[(&str, &str)] = &[
    ("Iskra AM550-E DSMR 5 (dsmr5 isk.txt)", "Wassasin-dsmr5__isk_ISK_AM550.txt"),
    ("Iskra AM550-T DSMR 5 (athombv isk-1)", "athombv-node-dsmr-parser__dsmr-5.0-isk-1.txt"),
    ("Fluvius e-MUCS, largest Belgian (ndokter V171_ALT)", "ndokter-dsmr_parser__TELEGRAM_FLUVIUS_V171_ALT.txt"),
];

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/telegrams/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Ours: framer (copy + line checks + CRC) and the typed decode, reusing framer and reading.
fn ours(framer: &mut dsmr::Framer<4096>, reading: &mut dsmr::Reading, bytes: &[u8]) -> u32 {
    let mut rest = bytes;
    let mut n = 0;
    while !rest.is_empty() {
        let (used, ev) = framer.feed(rest);
        rest = &rest[used..];
        if let Some(Ok(frame)) = ev {
            reading.fill(&frame.telegram());
            n += 1;
        }
    }
    n
}

/// dsmr5: its byte Reader (framing), `to_telegram` (CRC) and every object parsed; unknown OBIS
/// codes are skipped (`flatten`), as crates.md recommends.
fn theirs(bytes: &[u8]) -> Option<usize> {
    let mut reader = dsmr5::Reader::new(bytes.iter().map(|&b| Ok::<u8, ()>(b)));
    let readout = reader.next()?.ok()?;
    let telegram = readout.to_telegram().ok()?;
    let mut n = 0;
    for obj in telegram.objects().flatten() {
        black_box(&obj);
        n += 1;
    }
    Some(n)
}

fn time_per_iter(mut f: impl FnMut()) -> f64 {
    // Best of 7 runs of ~50 ms each, in seconds per call.
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        if t.elapsed().as_secs_f64() > 0.05 {
            break;
        }
        iters *= 2;
    }
    (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut framer = Box::new(dsmr::Framer::<4096>::new());
    let mut reading = Box::new(dsmr::Reading::default());
    for (label, file) in TELEGRAMS {
        let bytes = load(file);
        assert_eq!(ours(&mut framer, &mut reading, &bytes), 1, "{file} must decode");
        let mut g = c.benchmark_group(*file);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("dsmr", |b| b.iter(|| ours(&mut framer, &mut reading, black_box(&bytes))));
        if theirs(&bytes).is_some() {
            g.bench_function("dsmr5", |b| b.iter(|| theirs(black_box(&bytes))));
        }
        g.finish();
        let _ = label;
    }
    c.final_summary();
    // `cargo test --all-targets` runs this binary without `--bench`: criterion then only checks
    // that each benchmark runs once, and the timing summary is skipped.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }

    println!();
    println!("summary (framing + CRC + full decode, best of 7; this machine):");
    println!("{:<52} {:>6} {:>9} {:>9} {:>9} {:>10} {:>8}", "telegram", "bytes", "µs", "µs/KiB", "MB/s", "dsmr5 µs", "ratio");
    for (label, file) in TELEGRAMS {
        let bytes = load(file);
        let ours_s = time_per_iter(|| {
            black_box(ours(&mut framer, &mut reading, black_box(&bytes)));
        });
        let theirs_s = theirs(&bytes).map(|_| {
            time_per_iter(|| {
                black_box(theirs(black_box(&bytes)));
            })
        });
        let us = ours_s * 1e6;
        let per_kib = us * 1024.0 / bytes.len() as f64;
        let mbs = bytes.len() as f64 / ours_s / 1e6;
        let (t_us, ratio) = match theirs_s {
            Some(t) => (format!("{:.2}", t * 1e6), format!("{:.1}x", t / ours_s)),
            None => ("fails".to_string(), "-".to_string()),
        };
        println!("{label:<52} {:>6} {us:>9.2} {per_kib:>9.2} {mbs:>9.0} {t_us:>10} {ratio:>8}", bytes.len());
    }
    println!("targets: <= 2 µs per 1 KiB DSMR 5 telegram; >= 3x faster than dsmr5");
}
