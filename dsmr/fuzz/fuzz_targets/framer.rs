//! Feeds arbitrary bytes to the framer in chunks (sizes taken from the input), decodes and
//! re-emits every telegram it delivers. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let chunk = usize::from(split % 64) + 1;
    let mut framer = dsmr::Framer::<2048>::new();
    let mut out = [0u8; 4096];
    for piece in bytes.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (used, ev) = framer.feed(rest);
            assert!(used <= rest.len());
            assert!(used > 0 || ev.is_some(), "no progress without an event");
            rest = &rest[used..];
            if let Some(Ok(frame)) = ev {
                let reading = dsmr::Reading::decode(&frame.telegram());
                // What the writer makes of any decoded reading must parse again.
                if let Ok(n) = reading.emit(&mut out) {
                    assert!(dsmr::Telegram::parse(&out[..n]).is_ok(), "emitted telegram does not parse");
                }
            }
        }
    }
    let _ = framer.finish();
    let _ = framer.stats();
});
