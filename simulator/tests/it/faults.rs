//! Each fault kind produces what it claims, as seen by the `dsmr` framer, and is counted.

use chrono::{DateTime, Utc};
use dsmr::{FrameError, Framer, Reading};
use simulator::faults::{FaultParams, FaultPlan, FaultRule};
use simulator::{FaultKind, Meter, Profile, Telegram};

fn meter(profile: &str, plan: FaultPlan) -> Meter {
    let start: DateTime<Utc> = "2026-02-10T10:00:00+01:00".parse().expect("t");
    Meter::new(Profile::load(profile).expect("profile"), 5, start).with_faults(plan, 5)
}

/// Feeds a telegram (plus a clean follower, so truncation is visible) to a fresh framer and
/// returns the framer's events.
fn frame(bytes: &[u8], follower: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut f = Framer::<4096>::new();
    let mut out = Vec::new();
    let mut input = bytes.to_vec();
    input.extend_from_slice(follower);
    let mut rest: &[u8] = &input;
    while !rest.is_empty() {
        let (used, ev) = f.feed(rest);
        if let Some(ev) = ev {
            out.push(ev.map(|fr| fr.bytes.to_vec()));
        }
        rest = &rest[used.max(1).min(rest.len())..];
    }
    out
}

fn one(kind: FaultKind, params: FaultParams) -> (Telegram, Telegram, Meter) {
    let mut m = meter("iskra-am550-td2", FaultPlan { seed: None, rules: vec![FaultRule::at(kind, &[1]).with(params)] });
    let _ = m.next_telegram();
    let t = m.next_telegram();
    let next = m.next_telegram();
    assert_eq!(t.faults, vec![kind]);
    assert_eq!(m.fault_counts().get(kind), 1, "{kind} counted once");
    (t, next, m)
}

#[test]
fn byte_faults_are_rejected_by_the_framer_for_the_right_reason() {
    let (t, next, _) = one(FaultKind::CorruptCrc, FaultParams::default());
    assert!(!t.intact);
    assert!(matches!(frame(&t.bytes, &next.bytes)[0], Err(FrameError::CrcMismatch { .. })));

    let (t, next, _) = one(FaultKind::FlipBit, FaultParams::default());
    assert!(frame(&t.bytes, &next.bytes)[0].is_err(), "flipped bit detected");

    let (t, next, _) = one(FaultKind::Truncated, FaultParams::default());
    assert!(!t.bytes.contains(&b'!'));
    let ev = frame(&t.bytes, &next.bytes);
    assert!(matches!(ev[0], Err(FrameError::Truncated { .. })), "{ev:?}");
    assert!(ev[1].is_ok(), "the next telegram is received");

    let (t, next, _) = one(FaultKind::DroppedBytes, FaultParams { bytes: Some(3), ..FaultParams::default() });
    assert!(frame(&t.bytes, &next.bytes)[0].is_err());

    let (t, next, _) = one(FaultKind::Oversize, FaultParams { bytes: Some(5000), ..FaultParams::default() });
    assert!(t.bytes.len() > 5000);
    assert!(dsmr::Telegram::parse(&t.bytes).is_ok(), "valid CRC, just big");
    assert!(matches!(frame(&t.bytes, &next.bytes)[0], Err(FrameError::Oversize { .. })));

    let (t, next, _) = one(FaultKind::X25Crc, FaultParams::default());
    assert!(matches!(frame(&t.bytes, &next.bytes)[0], Err(FrameError::CrcMismatch { .. })));
    assert!(dsmr::Telegram::parse_with(&t.bytes, Some(dsmr::CrcKind::X25)).is_ok(), "valid X25");

    let (t, _, _) = one(FaultKind::WrongBaud, FaultParams::default());
    assert!(frame(&t.bytes, b"").iter().all(|e| e.is_err()), "no valid telegram at the wrong baud");
}

#[test]
fn delivery_faults_keep_the_telegram_valid() {
    let (t, next, _) = one(FaultKind::Garbage, FaultParams { bytes: Some(40), ..FaultParams::default() });
    assert!(t.intact);
    assert!(!t.bytes[..40].contains(&b'/'));
    assert_eq!(frame(&t.bytes, &next.bytes)[0].as_ref().map(|b| b.len()).ok(), Some(t.bytes.len() - 40 - 2));

    let (t, _, _) = one(FaultKind::Chunked, FaultParams { chunks: Some(5), gap_ms: Some(40), ..FaultParams::default() });
    assert!(t.intact && t.chunks.len() >= 2);
    assert_eq!(t.chunks.last().map(|c| c.end), Some(t.bytes.len()));
    assert!(t.chunks.iter().take(t.chunks.len() - 1).all(|c| c.gap_ms == 40));

    let (t, _, _) = one(FaultKind::EmptyFailureLog, FaultParams::default());
    assert!(t.sent.lines.iter().any(|l| l == "1-0:99.97.0()"));
    let r = Reading::decode(&dsmr::Telegram::parse(&t.bytes).expect("valid"));
    assert_eq!(r.power_failure_log.map(|l| l.len()), Some(0));

    let (t, _, _) = one(FaultKind::Silence, FaultParams { seconds: Some(3), ..FaultParams::default() });
    assert!(t.bytes.is_empty() && !t.intact);
}

#[test]
fn clock_faults_move_the_meter_clock() {
    let (t, next, _) = one(FaultKind::ClockJump, FaultParams { seconds: Some(-3600), ..FaultParams::default() });
    let a = t.sent.meter_time.expect("ts");
    let b = next.sent.meter_time.expect("ts");
    assert_eq!((b - a).num_seconds(), 1);
    let (t0, _, _) = one(FaultKind::MbusSwap, FaultParams::default());
    assert_eq!(t0.sent.mbus[0].channel, 2, "gas moved to channel 2");

    let mut m = meter("iskra-am550-td2", FaultPlan { seed: None, rules: vec![FaultRule::at(FaultKind::DstChange, &[0])] });
    let flags: Vec<bool> = (0..10).map(|_| m.next_telegram().sent.dst.expect("flag")).collect();
    assert_eq!(flags, [false, false, false, false, false, true, true, true, true, true], "February: W, then S after the jump");
}

#[test]
fn scheduled_power_failure_moves_counters_and_log_and_skips_the_outage() {
    let mut m = meter("iskra-am550-td2", FaultPlan::default());
    let before = m.next_telegram();
    let mut m2 = meter(
        "iskra-am550-td2",
        FaultPlan { seed: None, rules: vec![FaultRule::at(FaultKind::PowerFailure, &[1]).with(FaultParams { seconds: Some(600), ..FaultParams::default() })] },
    );
    let _ = m2.next_telegram();
    let after = m2.next_telegram();
    assert_eq!(after.sent.power_failures, before.sent.power_failures.map(|n| n + 1));
    assert_eq!(after.sent.long_power_failures, before.sent.long_power_failures.map(|n| n + 1));
    assert_eq!(after.outage_before_s, 600);
    let log = after.sent.failure_log.expect("log");
    assert_eq!(log.last().map(|e| e.1), Some(600), "newest entry last on the AM550");
    assert_eq!((after.due - before.due).num_seconds(), 601);
}

#[test]
fn a_scenario_file_runs_every_fault_kind_and_the_summary_counts_them() {
    let text = FaultKind::ALL
        .iter()
        .enumerate()
        .map(|(i, k)| format!("[[fault]]\nkind = \"{k}\"\nat = [{}]\n", 2 * i + 1))
        .collect::<String>();
    let plan = FaultPlan::parse("all.toml", &text).expect("scenario");
    let mut m = meter("fluvius-emucs", plan);
    for _ in 0..40 {
        m.next_telegram();
    }
    for k in FaultKind::ALL {
        assert_eq!(m.fault_counts().get(k), 1, "{k}");
    }
}
