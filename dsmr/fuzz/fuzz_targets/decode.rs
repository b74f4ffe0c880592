//! Parses arbitrary bytes as one telegram (with and without CRC check, and unterminated) and
//! decodes every line and value. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let views = [
        dsmr::Telegram::parse(data),
        dsmr::Telegram::parse_with(data, None),
        dsmr::Telegram::parse_with(data, Some(dsmr::CrcKind::X25)),
        dsmr::Telegram::parse_unterminated(data),
    ];
    for t in views.into_iter().flatten() {
        let _ = (t.header(), t.manufacturer(), t.identification(), t.crc());
        let reading = dsmr::Reading::decode(&t);
        let _ = reading.gas();
        for line in t.lines().flatten() {
            let _ = line.len();
            for v in line.values() {
                let _ = (v.fixed(), v.quantity(), v.timestamp(), v.uint(), v.obis(), v.known_unit());
                if let Some(q) = v.quantity() {
                    let _ = (q.base(), q.value.milli(), q.value.to_f64());
                }
                if let Some(ts) = v.timestamp() {
                    let _ = (ts.is_valid(), ts.unix_seconds());
                }
            }
        }
    }
});
