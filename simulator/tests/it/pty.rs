//! A reader on the other end of a real pty receives byte-identical telegrams, paced in real time;
//! data request starts and stops the meter between telegrams, never inside one.

use std::time::{Duration, Instant};

use chrono::Utc;
use simulator::run::{self, DataRequest, RunOptions, Speed};
use simulator::sinks::PtySink;
use simulator::{Meter, Profile};
use tokio::io::AsyncReadExt;

/// Reads from the pty until `deadline`, returning (arrival time, bytes) per read.
async fn read_all(path: String, deadline: Duration) -> Vec<(Instant, Vec<u8>)> {
    let mut port = tokio_serial::SerialStream::open(&tokio_serial::new(&path, 115_200)).expect("open pty slave");
    let mut out = Vec::new();
    let end = Instant::now() + deadline;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(50), port.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.push((Instant::now(), buf[..n].to_vec())),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    out
}

fn telegram_starts(reads: &[(Instant, Vec<u8>)]) -> Vec<Instant> {
    reads.iter().filter(|(_, b)| b.contains(&b'/')).map(|(t, _)| *t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_reader_gets_identical_bytes_at_real_time_pacing() {
    let _timing = crate::timing_lock();
    let mut sink = PtySink::open().expect("pty");
    let reader = tokio::spawn(read_all(sink.path().to_owned(), Duration::from_millis(4500)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut meter = Meter::new(Profile::load("iskra-am550-td2").expect("p"), 2, Utc::now() + chrono::Duration::seconds(1));
    let opts = RunOptions { speed: Speed::Factor(1.0), count: Some(3), ..RunOptions::default() };
    let mut expected = Vec::new();
    let t0 = Instant::now();
    let summary = run::run(&mut meter, &mut sink, &opts, &DataRequest::new(true), |t, _| expected.extend_from_slice(&t.bytes))
        .await
        .expect("run");
    let reads = reader.await.expect("reader");
    let got: Vec<u8> = reads.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    assert_eq!(summary.telegrams, 3);
    assert_eq!(got, expected, "byte-identical");
    assert!(t0.elapsed() >= Duration::from_millis(2000), "3 telegrams at 1 s intervals take > 2 s");

    let starts = telegram_starts(&reads);
    assert_eq!(starts.len(), 3);
    // Reader-side arrival times: a starved reader wake-up delays one start, so check the total.
    let total = starts[2] - starts[0];
    assert!(total > Duration::from_millis(1900) && total < Duration::from_millis(2100), "two intervals took {total:?}");
    // Each ~900-byte telegram takes ~80 ms at 115200 8N1: its bytes arrive spread over that time.
    // Judged on the median of the three so one starved reader wake-up on a loaded machine does
    // not decide the result.
    let mut spans = Vec::new();
    let mut seen = 0usize;
    let mut ends = Vec::new();
    for tg_end in expected.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1).filter(|&i| expected[..i].ends_with(b"\r\n") && expected[..i].iter().rev().nth(6) == Some(&b'!')) {
        ends.push(tg_end);
    }
    assert_eq!(ends.len(), 3);
    let mut ti = 0;
    let mut start = None;
    let mut begin = 0usize;
    for (t, b) in &reads {
        if start.is_none() {
            start = Some(*t);
        }
        seen += b.len();
        if ti < 3 && seen >= ends[ti] {
            let len = ends[ti] - begin;
            spans.push((*t - start.unwrap_or(*t), Duration::from_secs_f64(len as f64 * 10.0 / 115_200.0)));
            begin = ends[ti];
            start = None;
            ti += 1;
        }
    }
    spans.sort();
    let (took, wire) = spans[1];
    assert!(
        took >= wire.mul_f64(0.7) && took <= wire + Duration::from_millis(60),
        "median telegram took {took:?} on the wire side, wire time {wire:?} (all: {spans:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_request_gates_whole_telegrams() {
    let _timing = crate::timing_lock();
    let mut sink = PtySink::open().expect("pty");
    let reader = tokio::spawn(read_all(sink.path().to_owned(), Duration::from_millis(3000)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dr = DataRequest::new(false);
    let mut meter = Meter::new(Profile::load("iskra-am550-td2").expect("p"), 2, Utc::now() + chrono::Duration::seconds(1));
    // 10x: one telegram slot every 100 ms, each ~8 ms on the wire.
    let opts = RunOptions { speed: Speed::Factor(10.0), count: Some(20), ..RunOptions::default() };
    let d2 = dr.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        d2.set(true);
        tokio::time::sleep(Duration::from_millis(500)).await;
        d2.set(false);
    });
    let mut sent = Vec::new();
    let summary = run::run(&mut meter, &mut sink, &opts, &dr, |t, skipped| {
        if !skipped {
            sent.extend_from_slice(&t.bytes)
        }
    })
    .await
    .expect("run");
    let reads = reader.await.expect("reader");
    let got: Vec<u8> = reads.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    assert_eq!(got, sent, "only whole telegrams, identical");
    assert!((3..=7).contains(&summary.telegrams), "sent {} telegrams in a 500 ms window at 10 slots/s", summary.telegrams);
    assert_eq!(summary.telegrams + summary.dr_skipped, 20);
    assert_eq!(got.iter().filter(|&&b| b == b'/').count() as u64, summary.telegrams);
    assert!(got.ends_with(b"\r\n") && got.starts_with(b"/"), "never cut inside a telegram");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_stream_quirk_repeats_whole_telegrams_while_data_request_is_held() {
    let _timing = crate::timing_lock();
    let (mut sink, mut rx) = tokio::io::duplex(1 << 20);
    let mut meter = Meter::new(Profile::load("iskra-am550-td2").expect("p"), 2, Utc::now() + chrono::Duration::seconds(1));
    let opts = RunOptions { speed: Speed::Factor(2.0), count: Some(3), continuous_stream: true, ..RunOptions::default() };
    let summary = run::run(&mut meter, &mut sink, &opts, &DataRequest::new(true), |_, _| {}).await.expect("run");
    drop(sink);
    let mut got = Vec::new();
    rx.read_to_end(&mut got).await.expect("read");
    // 500 ms slots, ~80 ms per telegram at 2x baud (~40 ms): several back-to-back copies per slot.
    assert!(summary.repeats >= 6, "repeats {}", summary.repeats);
    let n = got.iter().filter(|&&b| b == b'/').count() as u64;
    assert_eq!(n, summary.telegrams + summary.repeats);
    for t in simulator::replay::split(&got) {
        dsmr::Telegram::parse(&t).expect("every copy is a whole, valid telegram");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_sink_configures_a_real_tty_with_the_profile_line_settings() {
    // A pty slave is a real tty: the serial sink's termios setup (9600 baud for DSMR 2.2) applies
    // and bytes arrive.
    let (mut master, slave) = tokio_serial::SerialStream::pair().expect("pair");
    let path = tokio_serial::SerialPort::name(&slave).expect("name");
    let profile = Profile::load("dsmr22-iskra-mt382").expect("p");
    let mut port = simulator::sinks::open_serial(&path, profile.line).expect("open serial");
    assert_eq!(tokio_serial::SerialPort::baud_rate(&port).expect("baud"), 9600);
    // (Linux ptys keep CS8 whatever is asked, so 7E1 itself is only checkable on a real UART.)
    let mut meter = Meter::new(profile, 1, Utc::now());
    let opts = RunOptions { speed: Speed::Max, count: Some(2), ..RunOptions::default() };
    let mut sent = Vec::new();
    run::run(&mut meter, &mut port, &opts, &DataRequest::new(true), |t, _| sent.extend_from_slice(&t.bytes)).await.expect("run");
    let mut got = vec![0u8; sent.len()];
    tokio::time::timeout(Duration::from_secs(5), master.read_exact(&mut got)).await.expect("in time").expect("read");
    assert_eq!(got, sent);
    drop(slave);
}
