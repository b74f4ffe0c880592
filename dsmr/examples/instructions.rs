//! Runs one decoder in a loop so that `valgrind --tool=callgrind` can count instructions per
//! telegram, a measure that does not depend on machine load (wall-clock benches on a shared
//! 2-core machine vary by ±30%).
//!
//! `N=1000 valgrind --tool=callgrind target/release/examples/instructions ours FILE` and again
//! with `N=3000`; the difference of the two totals / 2000 is instructions per telegram.
//! Modes: `ours` (framer + decode), `frame` (framer only), `theirs` (the dsmr5 crate).
use std::hint::black_box;
fn main() {
    let mode = std::env::args().nth(1).unwrap();
    let file = std::env::args().nth(2).unwrap();
    let bytes = std::fs::read(file).unwrap();
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let mut framer = Box::new(dsmr::Framer::<4096>::new());
    let mut reading = Box::new(dsmr::Reading::default());
    for _ in 0..n {
        match mode.as_str() {
            "ours" => {
                let mut rest = black_box(&bytes[..]);
                while !rest.is_empty() {
                    let (used, ev) = framer.feed(rest);
                    rest = &rest[used..];
                    if let Some(Ok(frame)) = ev { reading.fill(&frame.telegram()); }
                }
                black_box(&reading);
            }
            "frame" => {
                let mut rest = black_box(&bytes[..]);
                while !rest.is_empty() {
                    let (used, ev) = framer.feed(rest);
                    rest = &rest[used..];
                    black_box(ev.is_some());
                }
            }
            "lines" => {
                let end = bytes.iter().rposition(|&b| b == b'!').unwrap_or(0);
                let t = dsmr::Telegram::parse_with(black_box(&bytes[..=end]), None).unwrap();
                for l in t.lines() {
                    black_box(&l);
                }
            }
            "parse" => {
                let t = dsmr::Telegram::parse_with(black_box(&bytes[..]), None).unwrap();
                black_box(&t);
            }
            "theirs" => {
                let mut reader = dsmr5::Reader::new(black_box(&bytes).iter().map(|&b| Ok::<u8, ()>(b)));
                let readout = reader.next().unwrap().unwrap();
                let t = readout.to_telegram().unwrap();
                for o in t.objects().flatten() { black_box(&o); }
            }
            _ => {}
        }
    }
}
