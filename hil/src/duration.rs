//! Human durations for scenario files: `500ms`, `30s`, `15m`, `24h`, `7d`, and sums such as `1h30m`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written as text in a scenario or rig file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Human(pub Duration);

impl Human {
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

/// Parses `1h30m`, `250ms`, `7d`, `0s`. Units: ms, s, m, h, d. A bare number is rejected so that
/// nobody has to guess the unit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration (write e.g. `30s`, `15m`, `24h`, `7d`)".into());
    }
    let mut total_ms: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}`: expected a number at `{rest}`"));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let ms_per = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{text}`: missing unit after {n} (ms, s, m, h or d)")),
            other => return Err(format!("`{text}`: unknown unit `{other}` (ms, s, m, h or d)")),
        };
        total_ms = n
            .checked_mul(ms_per)
            .and_then(|v| v.checked_add(total_ms))
            .ok_or_else(|| format!("`{text}`: too long"))?;
        rest = &rest[unit_len..];
    }
    let ms = u64::try_from(total_ms).map_err(|_| format!("`{text}`: too long"))?;
    Ok(Duration::from_millis(ms))
}

/// Formats the way [`parse`] reads it, largest units first.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl<'de> Deserialize<'de> for Human {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Human;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"15m\", \"24h\" or \"7d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Human, E> {
                parse(v).map(Human).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Human {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(text: &str, ms: u64) {
        assert_eq!(parse(text), Ok(Duration::from_millis(ms)), "{text}");
        assert_eq!(parse(&format(Duration::from_millis(ms))), Ok(Duration::from_millis(ms)));
    }

    #[test]
    fn reads_units_and_sums() {
        ok("500ms", 500);
        ok("30s", 30_000);
        ok("15m", 900_000);
        ok("24h", 86_400_000);
        ok("7d", 604_800_000);
        ok("1h30m", 5_400_000);
        ok("0s", 0);
    }

    #[test]
    fn rejects_bare_numbers_and_unknown_units() {
        assert!(parse("30").unwrap_err().contains("missing unit"));
        assert!(parse("3w").unwrap_err().contains("unknown unit `w`"));
        assert!(parse("").is_err());
        assert!(parse("h").is_err());
        assert!(parse("99999999999999999999999d").is_err());
    }

    #[test]
    fn formats_largest_units_first() {
        assert_eq!(format(Duration::from_millis(90_061_001)), "1d1h1m1s1ms");
    }
}
