//! `p1-sim decode`: frames and decodes P1 telegrams from files or stdin and prints one JSON object
//! per telegram (schema: `dsmr/README.md`, "JSON schema").

use anyhow::Context;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Decode P1 telegrams (exact bytes: a capture, a fixture, a byte stream) into JSON.
///
/// Prints one JSON object per line for every telegram found: the typed reading in SI base units
/// (W, Wh, V, A, m3, ...) with explicit unit fields, plus an `objects` array with every COSEM line
/// as written. A telegram that fails (CRC mismatch, truncated, oversize, malformed) yields an
/// error object naming the problem and where it is. The exit status is 1 when any telegram failed
/// or an input held no telegram.
#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// Files to decode; standard input when none is given (or for `-`).
    pub files: Vec<PathBuf>,
    /// Check CRC-16/X25 (some Holley meters) instead of CRC-16/ARC.
    #[arg(long)]
    pub x25: bool,
    /// Pretty-print each JSON object over several lines.
    #[arg(long)]
    pub pretty: bool,
    /// Leave out the `objects` array.
    #[arg(long)]
    pub no_objects: bool,
    /// Also decode a trailing telegram that has no `!` line (some DSMR 2.2/3 captures).
    #[arg(long)]
    pub allow_unterminated: bool,
}

/// Framer buffer: the largest real telegrams (Belgian, Lithuanian) exceed 2 KiB.
const BUFFER: usize = 16 * 1024;

/// Runs `p1-sim decode`.
pub fn run(args: DecodeArgs) -> anyhow::Result<ExitCode> {
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().map(|p| (p.as_os_str() != "-").then(|| p.clone())).collect()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for input in inputs {
        let (name, bytes) = match &input {
            Some(path) => {
                let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                (path.display().to_string(), bytes)
            }
            None => {
                let mut bytes = Vec::new();
                std::io::stdin().read_to_end(&mut bytes).context("reading standard input")?;
                ("-".to_string(), bytes)
            }
        };
        let summary = decode_bytes(&name, &bytes, &args, &mut |v| {
            let s = if args.pretty { serde_json::to_string_pretty(v) } else { serde_json::to_string(v) };
            writeln!(out, "{}", s.unwrap_or_default())
        })
        .with_context(|| format!("writing the decode of {name}"))?;
        failed |= summary.failed > 0 || summary.decoded == 0;
    }
    out.flush().context("flushing standard output")?;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Counts from one input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Telegrams decoded.
    pub decoded: usize,
    /// Telegrams that failed.
    pub failed: usize,
}

/// Decodes every telegram in `bytes`, calling `emit` with one JSON object each. `name` is the
/// `source` field of each object.
pub fn decode_bytes(
    name: &str,
    bytes: &[u8],
    args: &DecodeArgs,
    emit: &mut dyn FnMut(&serde_json::Value) -> std::io::Result<()>,
) -> std::io::Result<Summary> {
    let crc = if args.x25 { dsmr::CrcKind::X25 } else { dsmr::CrcKind::Arc };
    let mut framer = Box::new(dsmr::Framer::<BUFFER>::with_crc(crc));
    let mut summary = Summary::default();
    let mut rest = bytes;
    let mut index = 0usize;
    let mut finished = false;
    loop {
        let (value, offset) = {
            let event = if rest.is_empty() {
                if finished {
                    break;
                }
                finished = true;
                framer.finish()
            } else {
                let (used, ev) = framer.feed(rest);
                rest = &rest[used..];
                ev
            };
            let Some(event) = event else { continue };
            match event {
                Ok(frame) => {
                    let t = frame.telegram();
                    let r = dsmr::Reading::decode(&t);
                    let mut v = dsmr::json::telegram(&t, &r);
                    if args.no_objects
                        && let Some(o) = v.as_object_mut() {
                            o.remove("objects");
                        }
                    summary.decoded += 1;
                    (v, framer.telegram_offset())
                }
                Err(dsmr::FrameError::Truncated { received })
                    if finished && args.allow_unterminated =>
                {
                    let offset = framer.telegram_offset();
                    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
                    let tail = &bytes[start..];
                    match dsmr::Telegram::parse_unterminated(tail) {
                        Ok(t) => {
                            let r = dsmr::Reading::decode(&t);
                            let mut v = dsmr::json::telegram(&t, &r);
                            if let Some(o) = v.as_object_mut() {
                                o.insert("unterminated".into(), true.into());
                                if args.no_objects {
                                    o.remove("objects");
                                }
                            }
                            summary.decoded += 1;
                            (v, offset)
                        }
                        Err(_) => {
                            summary.failed += 1;
                            (dsmr::json::frame_error(&dsmr::FrameError::Truncated { received }), offset)
                        }
                    }
                }
                Err(e) => {
                    summary.failed += 1;
                    (dsmr::json::frame_error(&e), framer.telegram_offset())
                }
            }
        };
        let mut value = value;
        if let Some(o) = value.as_object_mut() {
            o.insert("source".into(), name.into());
            o.insert("index".into(), index.into());
            o.insert("offset".into(), offset.into());
        }
        index += 1;
        emit(&value)?;
    }
    if summary.decoded == 0 && summary.failed == 0 {
        summary.failed += 1;
        emit(&serde_json::json!({
            "ok": false, "source": name, "index": index, "offset": 0,
            "error": "no_telegram", "message": "no telegram (no '/') in the input",
        }))?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn args() -> DecodeArgs {
        DecodeArgs { files: vec![], x25: false, pretty: false, no_objects: false, allow_unterminated: false }
    }

    fn decode(name: &str, bytes: &[u8], args: &DecodeArgs) -> (Summary, Vec<Value>) {
        let mut out = Vec::new();
        let s = decode_bytes(name, bytes, args, &mut |v| {
            out.push(v.clone());
            Ok(())
        })
        .unwrap();
        (s, out)
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../fixtures/telegrams/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn am550_telegram_decodes_to_si_units_and_objects_as_written() {
        let (s, out) = decode("isk", &fixture("Wassasin-dsmr5__isk_ISK_AM550.txt"), &args());
        assert_eq!(s, Summary { decoded: 1, failed: 0 });
        let v = &out[0];
        assert_eq!(v["ok"], true);
        assert_eq!(v["source"], "isk");
        assert_eq!(v["offset"], 0);
        assert_eq!(v["manufacturer"], "ISK");
        assert_eq!(v["crc"], "67B1");
        let r = &v["reading"];
        assert_eq!(r["energy_import"]["t1"], serde_json::json!({"value": 576239.0, "unit": "Wh"}));
        assert_eq!(r["timestamp"]["iso"], "2019-03-20T18:14:03+01:00");
        assert_eq!(r["equipment_id"]["decoded"], "E0043007052870318");
        assert_eq!(r["power_failure_log"].as_array().unwrap().len(), 6);
        assert_eq!(r["power_failure_log"][0]["duration"], serde_json::json!({"value": 3231, "unit": "s"}));
        assert_eq!(r["power_failure_log"][0]["end"]["iso"], "2019-02-01T23:52:31+01:00");
        let objects = v["objects"].as_array().unwrap();
        let t1 = objects.iter().find(|o| o["obis"] == "1-0:1.8.1").unwrap();
        assert_eq!(t1["values"][0]["raw"], "000576.239");
        assert_eq!(t1["values"][0]["number"], 576.239);
        assert_eq!(t1["values"][0]["unit"], "kWh");
    }

    #[test]
    fn mbus_channel_is_kept_in_the_obis_as_written() {
        let (_, out) = decode("two", &fixture("ndokter-dsmr_parser__TELEGRAM_V5_TWO_MBUS.txt"), &args());
        let objects = out[0]["objects"].as_array().unwrap();
        assert!(objects.iter().any(|o| o["obis"] == "0-2:24.2.1" && o["values"][1]["number"] == 246.138));
        let gas = &out[0]["reading"]["mbus"][1];
        assert_eq!(gas["channel"], 2);
        assert_eq!(gas["kind"], "gas");
        assert_eq!(gas["value"], serde_json::json!({"value": 246.138, "unit": "m3"}));
    }

    #[test]
    fn bad_telegrams_yield_error_objects_and_count_as_failures() {
        let failed = std::cell::Cell::new(0);
        let decode = |name: &str, bytes: &[u8], args: &DecodeArgs| {
            let (s, out) = decode(name, bytes, args);
            failed.set(failed.get() + s.failed);
            (s, out)
        };
        let (s, out) = decode("crc", &fixture("dsmrreader-dsmr-reader__error__TestDataloggerCrcError.txt"), &args());
        assert_eq!(s, Summary { decoded: 0, failed: 1 });
        assert_eq!(out[0]["error"], "crc_mismatch");
        assert_eq!(out[0]["given"], "ABCD");
        assert_eq!(out[0]["computed"], "4BC6");
        let (s, out) = decode("dup", &fixture("dsmrreader-dsmr-reader__error__TestDataloggerDuplicateData_STREAM.txt"), &args());
        assert_eq!(s, Summary { decoded: 1, failed: 1 });
        assert_eq!(out[0]["error"], "truncated");
        assert_eq!(out[0]["offset"], 0);
        assert_eq!(out[1]["ok"], true);
        assert!(out[1]["offset"].as_u64().unwrap() > 0);
        let (s, out) = decode("empty", b"no telegram here", &args());
        assert_eq!(s, Summary { decoded: 0, failed: 1 });
        assert_eq!(out[0]["error"], "no_telegram");
        crate::hostile_inputs("meter bytes", failed.get(), "simulator decode::tests::bad_telegrams_yield_error_objects_and_count_as_failures");
    }

    #[test]
    fn unterminated_dsmr3_capture_decodes_only_when_allowed() {
        let bytes = fixture("athombv-node-dsmr-parser__iskra-mt-382-no-crc.txt");
        let (s, out) = decode("mt382", &bytes, &args());
        assert_eq!(s, Summary { decoded: 0, failed: 1 });
        assert_eq!(out[0]["error"], "truncated");
        let (s, out) = decode("mt382", &bytes, &DecodeArgs { allow_unterminated: true, ..args() });
        assert_eq!(s, Summary { decoded: 1, failed: 0 });
        assert_eq!(out[0]["unterminated"], true);
        assert_eq!(out[0]["reading"]["mbus"][0]["value"]["value"], 13032.85);
    }

    #[test]
    fn every_fixture_produces_json_without_panicking() {
        let dir = format!("{}/../fixtures/telegrams", env!("CARGO_MANIFEST_DIR"));
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "txt") {
                let (s, out) = decode("f", &std::fs::read(&p).unwrap(), &args());
                assert_eq!(out.len(), s.decoded + s.failed, "{}", p.display());
            }
        }
    }
}
