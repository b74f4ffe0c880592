//! Replay plays recorded telegrams byte for byte with their original timing.

use std::time::{Duration, Instant};

use simulator::replay::Replay;
use simulator::run::{self, DataRequest, RunOptions, Speed};
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_stream_replays_byte_for_byte_at_its_recorded_pace() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/telegrams/dsmrreader-dsmr-reader__error__TestDataloggerDuplicateData_STREAM.txt");
    let original = std::fs::read(path).expect("fixture");
    let line = simulator::Profile::load("iskra-am550-td2").expect("p").line;
    let mut replay = Replay::from_files(&[path], line, 1, false).expect("replay");
    assert_eq!(replay.len(), 2, "a cut-off telegram, then a whole one");
    let (mut sink, mut rx) = tokio::io::duplex(1 << 16);
    let opts = RunOptions { speed: Speed::Factor(4.0), ..RunOptions::default() };
    let t0 = Instant::now();
    let mut dues = Vec::new();
    let summary = run::run(&mut replay, &mut sink, &opts, &DataRequest::new(true), |t, _| dues.push((t.due, t.intact))).await.expect("run");
    drop(sink);
    let mut got = Vec::new();
    rx.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, original, "byte for byte, including the truncated first telegram");
    assert_eq!(summary.telegrams, 2);
    // The recording's timestamps are 1 s apart; the first has none (cut off), so the interval applies.
    assert_eq!((dues[1].0 - dues[0].0).num_seconds(), 1);
    assert_eq!(dues.iter().map(|d| d.1).collect::<Vec<_>>(), [false, true]);
    assert!(t0.elapsed() >= Duration::from_millis(240), "1 s of meter time at 4x");
}
