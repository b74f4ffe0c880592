//! Meter wall-clock time: Central European Time with the EU summer-time rule.
//!
//! Europe/Amsterdam and Europe/Brussels have followed the EU rule since 1996: summer time (UTC+2, the
//! DSMR `S` flag) from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of
//! October, winter time (UTC+1, `W`) otherwise. The rule is small enough to state here, which keeps
//! the meter independent of a time-zone database. Earlier years are out of scope for a meter model.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc, Weekday};

/// The zone rule a profile's clock follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Central European Time with EU summer time (Europe/Amsterdam, Europe/Brussels, ...).
    CentralEurope,
    /// A fixed UTC offset in seconds with no summer time.
    Fixed(i32),
}

impl Zone {
    /// Parses a profile's `timezone` value.
    pub fn parse(s: &str) -> Option<Zone> {
        match s {
            "Europe/Amsterdam" | "Europe/Brussels" | "Europe/Luxembourg" | "Europe/Budapest" | "Europe/Vienna"
            | "Europe/Berlin" | "CET" => Some(Zone::CentralEurope),
            "UTC" => Some(Zone::Fixed(0)),
            _ => None,
        }
    }

    /// Whether summer time applies at `t`.
    pub fn is_dst(self, t: DateTime<Utc>) -> bool {
        match self {
            Zone::Fixed(_) => false,
            Zone::CentralEurope => {
                let (start, end) = summer_span(t.year());
                let ts = t.timestamp();
                ts >= start && ts < end
            }
        }
    }

    /// The UTC offset in seconds at `t`.
    pub fn offset_secs(self, t: DateTime<Utc>) -> i32 {
        match self {
            Zone::Fixed(o) => o,
            Zone::CentralEurope => {
                if self.is_dst(t) {
                    7200
                } else {
                    3600
                }
            }
        }
    }

    /// `t` as local time with its offset.
    pub fn local(self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        let off = FixedOffset::east_opt(self.offset_secs(t)).unwrap_or(Utc.fix());
        t.with_timezone(&off)
    }

    /// The next summer/winter transition strictly after `t`, if the zone has any.
    pub fn next_transition(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Zone::Fixed(_) => None,
            Zone::CentralEurope => {
                let y = t.year();
                [last_sunday_0100_utc(y, 3), last_sunday_0100_utc(y, 10), last_sunday_0100_utc(y + 1, 3)]
                    .into_iter()
                    .find(|c| *c > t)
            }
        }
    }
}

thread_local! {
    static SPAN: std::cell::Cell<(i32, i64, i64)> = const { std::cell::Cell::new((i32::MIN, 0, 0)) };
}

/// Summer time of `year` as Unix seconds [start, end), cached per thread (the meter asks every step).
fn summer_span(year: i32) -> (i64, i64) {
    SPAN.with(|c| {
        let (y, a, b) = c.get();
        if y == year {
            return (a, b);
        }
        let span = (last_sunday_0100_utc(year, 3).timestamp(), last_sunday_0100_utc(year, 10).timestamp());
        c.set((year, span.0, span.1));
        span
    })
}

fn last_sunday_0100_utc(year: i32, month: u32) -> DateTime<Utc> {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .unwrap_or_default();
    let last = first_next - Duration::days(1);
    let back = last.weekday().num_days_from_sunday() as i64;
    let sunday = last - Duration::days(back);
    Utc.from_utc_datetime(&sunday.and_hms_opt(1, 0, 0).unwrap_or_default())
}

/// The 13-byte DSMR timestamp `YYMMDDhhmmssX` for `t` in `zone`, X = `S` (summer) or `W` (winter).
/// With `flag = false` the X is left out (DSMR 2.2/3 profile lines, the Iskra IE.5).
pub fn tst(zone: Zone, t: DateTime<Utc>, flag: bool) -> String {
    let l = zone.local(t);
    let mut s = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}",
        l.year().rem_euclid(100),
        l.month(),
        l.day(),
        l.hour(),
        l.minute(),
        l.second()
    );
    if flag {
        s.push(if zone.is_dst(t) { 'S' } else { 'W' });
    }
    s
}

/// Parses a start time given as RFC 3339 (`2026-03-29T01:59:50+01:00`) or as local wall time in the
/// zone (`2026-03-29T01:59:50`, `2026-03-29 01:59:50`); ambiguous local times take the summer-time
/// reading, and times inside the spring-forward gap are rejected.
pub fn parse_start(zone: Zone, s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .ok()?;
    let offsets = match zone {
        Zone::Fixed(o) => vec![o],
        Zone::CentralEurope => vec![7200, 3600],
    };
    offsets.into_iter().find_map(|o| {
        let utc = Utc.from_utc_datetime(&(naive - Duration::seconds(o as i64)));
        (zone.offset_secs(utc) == o).then_some(utc)
    })
}

/// Whether `t` (local) falls on a Saturday or Sunday.
pub fn is_weekend(zone: Zone, t: DateTime<Utc>) -> bool {
    matches!(zone.local(t).weekday(), Weekday::Sat | Weekday::Sun)
}

/// Local hour of day as a fraction, 0.0 ..< 24.0.
pub fn local_hour(zone: Zone, t: DateTime<Utc>) -> f64 {
    let l = zone.local(t);
    l.hour() as f64 + l.minute() as f64 / 60.0 + l.second() as f64 / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).expect("test time")
    }

    #[test]
    fn spring_forward_2026_switches_at_0100_utc() {
        let z = Zone::CentralEurope;
        assert_eq!(tst(z, utc("2026-03-29T00:59:59Z"), true), "260329015959W");
        assert_eq!(tst(z, utc("2026-03-29T01:00:00Z"), true), "260329030000S");
    }

    #[test]
    fn fall_back_2026_repeats_the_hour_with_the_other_flag() {
        let z = Zone::CentralEurope;
        assert_eq!(tst(z, utc("2026-10-25T00:59:59Z"), true), "261025025959S");
        assert_eq!(tst(z, utc("2026-10-25T01:00:00Z"), true), "261025020000W");
    }

    #[test]
    fn start_times_parse_in_local_time() {
        let z = Zone::CentralEurope;
        assert_eq!(parse_start(z, "2026-01-10T12:00:00"), Some(utc("2026-01-10T11:00:00Z")));
        assert_eq!(parse_start(z, "2026-07-10 12:00:00"), Some(utc("2026-07-10T10:00:00Z")));
        assert_eq!(parse_start(z, "2026-03-29T02:30:00"), None, "inside the spring-forward gap");
        assert_eq!(z.next_transition(utc("2026-05-01T00:00:00Z")), Some(utc("2026-10-25T01:00:00Z")));
    }
}
