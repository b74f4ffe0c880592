//! Property tests: emit→parse round-trips for random readings; arbitrary bytes never panic.

use dsmr::reading::{MonthlyPeak, Peak, PowerFailure, TextMessage};
use dsmr::{Dst, Fixed, Framer, MBusDevice, MBusValue, MBusValueKind, Quantity, Reading, Telegram, Timestamp, Unit};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A small deterministic generator so one proptest seed builds a whole reading.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn fixed(&mut self, max_int_digits: u32) -> Fixed {
        let decimals = self.below(4) as u8;
        let digits = u32::from(decimals) + 1 + self.below(u64::from(max_int_digits)) as u32;
        let raw = (self.below(10u64.pow(digits))) as i64;
        let raw = if self.chance(5) { -raw } else { raw };
        Fixed::new(raw, decimals)
    }
    fn qty(&mut self, units: &[Unit]) -> Option<Quantity> {
        if self.chance(30) {
            return None;
        }
        let u = units[self.below(units.len() as u64) as usize];
        Some(Quantity::new(self.fixed(6), Some(u)))
    }
    fn ts(&mut self) -> Timestamp {
        let dst = match self.below(3) {
            0 => None,
            1 => Some(Dst::Summer),
            _ => Some(Dst::Winter),
        };
        Timestamp {
            year: self.below(100) as u8,
            month: 1 + self.below(12) as u8,
            day: 1 + self.below(28) as u8,
            hour: self.below(24) as u8,
            minute: self.below(60) as u8,
            second: self.below(60) as u8,
            dst,
        }
    }
    fn hex<const N: usize>(&mut self) -> heapless::Vec<u8, N> {
        let mut v = heapless::Vec::new();
        let n = 2 * self.below((N / 2) as u64 + 1) as usize;
        for _ in 0..n {
            v.push(b"0123456789ABCDEF"[self.below(16) as usize]).unwrap();
        }
        v
    }
    fn text<const N: usize>(&mut self) -> TextMessage<N> {
        let mut m = TextMessage { bytes: heapless::Vec::new(), was_hex: self.chance(50) };
        if m.was_hex {
            for _ in 0..self.below(N as u64 + 1) {
                m.bytes.push(self.below(256) as u8).unwrap();
            }
        } else {
            // Plain text that is not hex: printable except ( ) * ! / and line ends (`/XXX5` inside
            // a line is how the framer recognises a telegram cut off mid-line).
            m.bytes.push(b'z').unwrap();
            const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789-.,:;_\\";
            for _ in 0..self.below(N as u64) {
                m.bytes.push(ALPHA[self.below(ALPHA.len() as u64) as usize]).unwrap();
            }
        }
        m
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.chance(70) { Some(f(self)) } else { None }
    }
}

fn random_reading(seed: u64) -> Reading {
    let mut g = Gen(seed | 1);
    let mut r = Reading::default();
    let m: &[u8] = [&b"ISK"[..], b"KFM", b"FLU", b"XMX", b"Ene"][g.below(5) as usize];
    r.header.extend_from_slice(m).unwrap();
    r.header.extend_from_slice(b"5\\2M550T-1012").unwrap();
    for _ in 0..g.below(20) {
        r.header.push(b"ABC -_\\0123"[g.below(11) as usize]).unwrap();
    }
    r.version = g.opt(|g| heapless::Vec::from_slice(if g.chance(50) { b"50" } else { b"42" }).unwrap());
    r.be_version = g.opt(|g| g.hex());
    r.timestamp = g.opt(Gen::ts);
    r.equipment_id = g.opt(|g| g.hex());
    r.meter_serial = g.opt(|g| g.hex());
    r.device_name = g.opt(|g| g.hex());
    for i in 0..5 {
        r.energy_import[i] = g.qty(&[Unit::KWh, Unit::Wh]);
        r.energy_export[i] = g.qty(&[Unit::KWh, Unit::Wh]);
        r.reactive_energy_import[i] = g.qty(&[Unit::Kvarh, Unit::Varh]);
        r.reactive_energy_export[i] = g.qty(&[Unit::Kvarh, Unit::Varh]);
    }
    r.tariff = g.opt(|g| g.below(10_000) as u16);
    r.power_import = g.qty(&[Unit::KW, Unit::W]);
    r.power_export = g.qty(&[Unit::KW, Unit::W]);
    r.reactive_power_import = g.qty(&[Unit::Kvar]);
    r.reactive_power_export = g.qty(&[Unit::Var]);
    r.apparent_power_import = g.qty(&[Unit::KVA]);
    r.apparent_power_export = g.qty(&[Unit::VA]);
    r.power_factor = g.opt(|g| g.fixed(1));
    r.frequency = g.qty(&[Unit::Hz]);
    r.threshold = g.qty(&[Unit::KW, Unit::A, Unit::KVA]);
    r.switch_position = g.opt(|g| g.below(256) as u8);
    r.power_failures = g.opt(|g| g.next() as u32);
    r.long_power_failures = g.opt(|g| g.next() as u32);
    r.power_failure_log = g.opt(|g| {
        let mut v = heapless::Vec::new();
        for _ in 0..g.below(11) {
            let end = g.ts();
            v.push(PowerFailure { end, duration_s: g.below(10_000_000_000) }).unwrap();
        }
        v
    });
    for p in 0..3 {
        r.voltage_sags[p] = g.opt(|g| g.next() as u32);
        r.voltage_swells[p] = g.opt(|g| g.next() as u32);
        r.voltage[p] = g.qty(&[Unit::V]);
        r.current[p] = g.qty(&[Unit::A]);
        r.power_import_phase[p] = g.qty(&[Unit::KW]);
        r.power_export_phase[p] = g.qty(&[Unit::KW]);
        r.fuse_threshold[p] = g.qty(&[Unit::A]);
    }
    r.text_message = g.opt(Gen::text);
    r.text_code = g.opt(Gen::text);
    r.average_demand = g.qty(&[Unit::KW]);
    r.max_demand_month = g.opt(|g| Peak { occurred: g.ts(), value: Quantity::new(g.fixed(2), Some(Unit::KW)) });
    r.max_demand_history = g.opt(|g| {
        let mut v = heapless::Vec::new();
        for _ in 0..g.below(14) {
            let (month, occurred) = (g.ts(), g.ts());
            v.push(MonthlyPeak { month, occurred, value: Quantity::new(g.fixed(2), Some(Unit::KW)) }).unwrap();
        }
        v
    });
    for ch in 0..4 {
        r.mbus[ch] = g.opt(|g| MBusDevice {
            device_type: g.opt(|g| g.below(1000) as u16),
            equipment_id: g.opt(|g| g.hex()),
            value: g.opt(|g| {
                let kind = [MBusValueKind::Corrected, MBusValueKind::Uncorrected, MBusValueKind::Legacy][g.below(3) as usize];
                let unit = [Unit::M3, Unit::GJ, Unit::KWh][g.below(3) as usize];
                MBusValue { kind, timestamp: g.opt(Gen::ts), value: Quantity::new(g.fixed(5), Some(unit)) }
            }),
            valve: g.opt(|g| g.below(10) as u8),
            switch_position: g.opt(|g| g.below(10) as u8),
        });
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn emitted_readings_frame_and_decode_to_the_same_reading(seed in any::<u64>(), chunk in 1usize..200) {
        let r = random_reading(seed);
        let mut buf = vec![0u8; 16 * 1024];
        let n = r.emit(&mut buf).expect("16 KiB is enough");
        let bytes = &buf[..n];
        // Direct parse.
        let t = Telegram::parse(bytes).expect("emitted telegram parses");
        prop_assert_eq!(&Reading::decode(&t), &r);
        // Through the framer in chunks, when it fits the framer's buffer.
        let mut f = Framer::<8192>::new();
        let mut got = None;
        for piece in bytes.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, ev) = f.feed(rest);
                rest = &rest[used..];
                if let Some(ev) = ev {
                    prop_assert!(got.is_none());
                    got = Some(ev.map(|fr| Reading::decode(&fr.telegram())));
                }
            }
        }
        if n <= 8192 {
            prop_assert_eq!(got, Some(Ok(r)));
        } else {
            prop_assert_eq!(got, Some(Err(dsmr::FrameError::Oversize { limit: 8192 })));
        }
    }

    #[test]
    fn any_split_of_a_fixture_gives_the_same_events(idx in any::<prop::sample::Index>(), cuts in proptest::collection::vec(1usize..300, 0..20)) {
        let files = fixtures();
        let bytes = &files[idx.index(files.len())];
        let whole = events(bytes, &[usize::MAX]);
        let split = events(bytes, &cuts);
        prop_assert_eq!(whole, split);
    }
}

/// Random bytes, fed in random chunks to the framer, the parser and the decoder: none panics.
#[test]
fn arbitrary_bytes_never_panic() {
    let tried = AtomicUsize::new(0);
    proptest!(ProptestConfig::with_cases(512), |(bytes in proptest::collection::vec(any::<u8>(), 0..3000), chunk in 1usize..64)| {
        tried.fetch_add(1, Ordering::Relaxed);
        let mut f = Framer::<1024>::new();
        for piece in bytes.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, ev) = f.feed(rest);
                prop_assert!(used <= rest.len());
                prop_assert!(used > 0 || ev.is_some());
                rest = &rest[used..];
                if let Some(Ok(fr)) = ev {
                    let r = Reading::decode(&fr.telegram());
                    let mut out = vec![0u8; 8192];
                    let _ = r.emit(&mut out);
                }
            }
        }
        let _ = f.finish();
        for t in [Telegram::parse(&bytes), Telegram::parse_with(&bytes, None), Telegram::parse_unterminated(&bytes)].into_iter().flatten() {
            let _ = Reading::decode(&t);
            for l in t.lines().flatten() {
                for v in l.values() {
                    let _ = (v.quantity(), v.timestamp(), v.uint(), v.obis());
                }
            }
        }
    });
    hostile_inputs("meter bytes", tried.into_inner(), "dsmr properties::arbitrary_bytes_never_panic");
}

/// Fixtures with up to 7 bytes overwritten: framing and decoding them never panics.
#[test]
fn mutated_fixtures_never_panic() {
    let tried = AtomicUsize::new(0);
    proptest!(ProptestConfig::with_cases(512), |(idx in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8))| {
        tried.fetch_add(1, Ordering::Relaxed);
        let files = fixtures();
        let mut bytes = files[idx.index(files.len())].clone();
        for (at, b) in edits {
            let i = at.index(bytes.len().max(1));
            if i < bytes.len() { bytes[i] = b; }
        }
        let mut f = Framer::<4096>::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (used, ev) = f.feed(rest);
            rest = &rest[used..];
            if let Some(Ok(fr)) = ev {
                let _ = Reading::decode(&fr.telegram());
            }
        }
        if let Ok(t) = Telegram::parse_with(&bytes, None) {
            let _ = Reading::decode(&t);
        }
    });
    hostile_inputs("meter bytes", tried.into_inner(), "dsmr properties::mutated_fixtures_never_panic");
}

/// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
fn hostile_inputs(category: &str, count: usize, test: &str) {
    if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
        f.write_all(format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
    }
}

fn events(bytes: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut f = Framer::<4096>::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut k = 0;
    while start < bytes.len() {
        let len = cuts.get(k % cuts.len().max(1)).copied().unwrap_or(usize::MAX).min(bytes.len() - start);
        k += 1;
        let mut rest = &bytes[start..start + len];
        start += len;
        while !rest.is_empty() {
            let (used, ev) = f.feed(rest);
            rest = &rest[used..];
            if let Some(ev) = ev {
                out.push(format!("{:?}", ev.map(|fr| fr.bytes.to_vec())));
            }
        }
    }
    out.push(format!("{:?}", f.finish().map(|e| e.map(|fr| fr.bytes.to_vec()))));
    out
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/telegrams");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    v.sort();
    v.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn lf_only_lowercase_and_unpadded_crc_telegrams_frame() {
    use dsmr::emit::{Finish, LineEnding, NumFormat, Writer};
    for (eol, finish) in [
        (LineEnding::Lf, Finish::ARC),
        (LineEnding::CrLf, Finish { lowercase: true, ..Finish::ARC }),
        (LineEnding::CrLf, Finish { unpadded: true, ..Finish::ARC }),
        (LineEnding::Lf, Finish { crc: Some(dsmr::CrcKind::X25), ..Finish::ARC }),
        (LineEnding::CrLf, Finish::NONE),
    ] {
        for extra in 0u8..40 {
            let mut buf = [0u8; 512];
            let mut w = Writer::with_line_ending(&mut buf, eol);
            w.header(b"ISK5\\2M550T-1012").unwrap();
            w.register(dsmr::Obis::new(1, 0, 1, 8, 1), Fixed::new(1000 + i64::from(extra), 3), NumFormat::dsmr(9, 3), Some("kWh")).unwrap();
            let n = w.finish(finish).unwrap();
            let crc_kind = finish.crc.unwrap_or(dsmr::CrcKind::Arc);
            let mut f = Framer::<512>::with_crc(crc_kind);
            let (_, ev) = f.feed(&buf[..n]);
            let owned = ev.map(|e| e.map(|fr| (fr.crc, Reading::decode(&fr.telegram()))));
            let owned = match owned {
                Some(o) => o,
                None => f.finish().expect("an event").map(|fr| (fr.crc, Reading::decode(&fr.telegram()))),
            };
            let (crc, r) = owned.expect("a valid telegram");
            assert_eq!(r.energy_import[1].unwrap().value, Fixed::new(1000 + i64::from(extra), 3));
            assert_eq!(crc.is_some(), finish.crc.is_some());
        }
    }
}

#[test]
fn framer_reports_each_problem_distinctly_and_counts_it() {
    let good = b"/ISK5\\2M550E-1012\r\n\r\n1-0:1.8.1(000576.239*kWh)\r\n!D69C\r\n";
    let mut f = Framer::<64>::new();
    let mut input = Vec::new();
    input.extend_from_slice(b"garbage");
    input.extend_from_slice(b"/ISK5\\2M550E-1012\r\n\r\n1-0:1.8.1(0005"); // truncated by the next '/'
    input.extend_from_slice(good);
    input.extend_from_slice(&good[..good.len() - 6]);
    input.extend_from_slice(b"0000\r\n"); // CRC mismatch
    input.extend_from_slice(b"/ISK5\\2M550E-1012\r\n\r\n1-0:1.8.1(000576.239*kWh)\r\nxx\r\n!\r\n"); // malformed line
    input.extend_from_slice(b"/ISK5\\2M550E-1012\r\n\r\n1-0:1.8.1(000576.239*kWh)\r\n1-0:1.8.2(000576.239*kWh)\r\n!"); // oversize
    input.extend_from_slice(good);
    let mut rest = &input[..];
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let (n, ev) = f.feed(rest);
        rest = &rest[n..];
        if let Some(ev) = ev {
            seen.push(ev.map(|fr| fr.crc));
        }
    }
    use dsmr::{FrameError as E, MalformedKind as M};
    assert_eq!(
        seen,
        vec![
            Err(E::Truncated { received: 35 }),
            Ok(Some(0xD69C)),
            Err(E::CrcMismatch { given: 0, computed: 0xD69C }),
            Err(E::Malformed { line: 4, kind: M::Line }),
            Err(E::Oversize { limit: 64 }),
            Ok(Some(0xD69C)),
        ]
    );
    let s = f.stats();
    assert_eq!((s.telegrams, s.truncated, s.crc_mismatch, s.malformed, s.oversize, s.garbage_bytes), (2, 1, 1, 1, 1, 7));
    hostile_inputs("meter bytes", seen.iter().filter(|e| e.is_err()).count(), "dsmr properties::framer_reports_each_problem_distinctly_and_counts_it");
}

#[test]
fn framer_reports_stream_offsets_and_ends_unterminated_input() {
    let good = b"/ISK5\\2M550E-1012\r\n\r\n1-0:1.8.1(000576.239*kWh)\r\n!D69C\r\n";
    let mut input = b"xx\r\n".to_vec();
    input.extend_from_slice(good);
    input.extend_from_slice(b"junk");
    input.extend_from_slice(&good[..good.len() - 3]); // `...!D69`: a 3-digit CRC field so far
    let mut f = Framer::<256>::new();
    let mut rest = &input[..];
    let mut offsets = Vec::new();
    while !rest.is_empty() {
        let (n, ev) = f.feed(rest);
        rest = &rest[n..];
        if let Some(ev) = ev {
            offsets.push((ev.is_ok(), f.telegram_offset()));
        }
    }
    assert_eq!(offsets, vec![(true, 4)]);
    assert!(f.in_telegram());
    // At the end of input the pending 3-digit CRC (0xD69 != 0xD69C) is checked as written.
    let end = f.finish().map(|e| e.map(|fr| fr.crc));
    assert_eq!(end, Some(Err(dsmr::FrameError::CrcMismatch { given: 0xD69, computed: 0xD69C })));
    assert_eq!(f.telegram_offset(), 4 + good.len() as u64 + 4);
}
