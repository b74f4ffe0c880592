//! Prints what the framer and decoder make of each file given (development aid).
fn main() {
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).expect("read");
        let mut f = dsmr::Framer::<4096>::new();
        let mut rest = &data[..];
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        loop {
            let (n, ev) = f.feed(rest);
            let done = n == rest.len() && ev.is_none();
            match ev {
                Some(Ok(fr)) => {
                    let r = dsmr::Reading::decode(&fr.telegram());
                    println!("{name}: OK crc={:?} unknown={} issues={} {:?}", fr.crc, r.unknown_objects, r.issue_count, r.issues);
                    let mut buf = [0u8; 8192];
                    let n = r.emit(&mut buf).expect("emit");
                    let t2 = dsmr::Telegram::parse(&buf[..n]).expect("reparse");
                    let r2 = dsmr::Reading::decode(&t2);
                    let mut r1 = r.clone(); r1.issues.clear(); r1.issue_count = 0; r1.unknown_objects = 0;
                    let mut r2c = r2.clone(); r2c.issues.clear(); r2c.issue_count = 0;
                    if r1 != r2c { println!("  ROUNDTRIP DIFF\n{}", String::from_utf8_lossy(&buf[..n])); }
                }
                Some(Err(e)) => println!("{name}: ERR {e}"),
                None => {}
            }
            rest = &rest[n..];
            if done { break; }
        }
        if let Some(ev) = f.finish() { println!("{name}: at end {:?}", ev.map(|f| f.bytes.len())); }
    }
}
