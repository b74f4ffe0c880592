//! An independent reading of the telegrams the meter sent: CRC-16/ARC, the timestamp as ISO 8601
//! with its DST offset, and the values the gateway must publish, mapped to the state document's
//! keys. It shares no code with the `dsmr` crate or the firmware on purpose: it is the oracle the
//! device's output is compared with.

/// CRC-16/ARC (poly 0xA001 reflected, init 0).
pub fn crc16_arc(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

/// A telegram found in a chunk of line bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The frame from `/` through the CRC line has a valid CRC-16/ARC.
    pub crc_ok: bool,
    /// Meter timestamp (`0-0:1.0.0`) as the state document writes it, e.g. `2026-06-01T12:00:00+02:00`.
    pub ts: Option<String>,
    /// State-document key and value in thousandths (W, kWh, V, A, m³ or plain numbers × 1000).
    pub values: Vec<(&'static str, i64)>,
}

/// Finds the last complete `/ ... !XXXX` frame in `bytes` and reads it.
pub fn read(bytes: &[u8]) -> Option<Seen> {
    let start = bytes.iter().rposition(|&b| b == b'/')?;
    let frame = &bytes[start..];
    let bang = frame.iter().position(|&b| b == b'!')?;
    let crc_text = frame.get(bang + 1..)?;
    let hex: String = crc_text.iter().take_while(|b| b.is_ascii_hexdigit()).map(|&b| b as char).collect();
    let crc_ok = !hex.is_empty()
        && hex.len() <= 4
        && u16::from_str_radix(&hex, 16).ok() == Some(crc16_arc(&frame[..=bang]));
    let text = String::from_utf8_lossy(&frame[..bang]);
    let mut ts = None;
    let mut values = Vec::new();
    // M-Bus channel -> (device type, reading): gas is the channel whose type is 3.
    let mut mbus: std::collections::BTreeMap<String, (Option<u32>, Option<i64>)> = std::collections::BTreeMap::new();
    for line in text.split("\r\n") {
        let Some(open) = line.find('(') else { continue };
        let obis = &line[..open];
        let obis = obis.split_once(':').map_or(obis, |(_, rest)| rest);
        let channel = line[..open].split_once(':').map(|(c, _)| c);
        let args: Vec<&str> = line[open..]
            .split(')')
            .filter_map(|a| a.strip_prefix('('))
            .collect();
        if obis == "1.0.0" && channel == Some("0-0") {
            ts = args.first().and_then(|a| iso(a));
            continue;
        }
        if let Some(ch) = channel.filter(|c| c.starts_with("0-") && *c != "0-0") {
            match obis {
                "24.1.0" => mbus.entry(ch.to_string()).or_default().0 = args.first().and_then(|a| a.parse().ok()),
                "24.2.1" | "24.2.3" => mbus.entry(ch.to_string()).or_default().1 = args.get(1).and_then(|a| milli(a)),
                _ => {}
            }
            continue;
        }
        let key = match obis {
            "1.7.0" => "power_import_w",
            "2.7.0" => "power_export_w",
            "1.8.1" => "energy_import_t1_kwh",
            "1.8.2" => "energy_import_t2_kwh",
            "2.8.1" => "energy_export_t1_kwh",
            "2.8.2" => "energy_export_t2_kwh",
            "32.7.0" => "voltage_l1_v",
            "52.7.0" => "voltage_l2_v",
            "72.7.0" => "voltage_l3_v",
            "31.7.0" => "current_l1_a",
            "51.7.0" => "current_l2_a",
            "71.7.0" => "current_l3_a",
            "21.7.0" => "power_import_l1_w",
            "41.7.0" => "power_import_l2_w",
            "61.7.0" => "power_import_l3_w",
            "22.7.0" => "power_export_l1_w",
            "42.7.0" => "power_export_l2_w",
            "62.7.0" => "power_export_l3_w",
            "96.14.0" => "tariff",
            _ => continue,
        };
        let Some(arg) = args.first() else { continue };
        let Some(mut v) = milli(arg) else { continue };
        // kW on the line, W in the state document.
        if key.ends_with("_w") && arg.ends_with("*kW") {
            v *= 1000;
        }
        values.push((key, v));
    }
    let gas = mbus
        .values()
        .find(|(kind, _)| *kind == Some(3))
        .or_else(|| mbus.values().find(|(kind, _)| kind.is_none()))
        .and_then(|(_, v)| *v);
    if let Some(v) = gas {
        values.push(("gas_m3", v));
    }
    Some(Seen { crc_ok, ts, values })
}

/// `001.234*kWh` → 1234 (thousandths); `0002` → 2000.
fn milli(arg: &str) -> Option<i64> {
    let num = arg.split('*').next()?.trim();
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut f = frac.to_string();
    if f.len() > 3 {
        return None;
    }
    while f.len() < 3 {
        f.push('0');
    }
    Some(int.parse::<i64>().ok()? * 1000 + f.parse::<i64>().ok()?)
}

/// `YYMMDDhhmmssX` (X = S summer, W winter) → ISO 8601 with offset.
pub fn iso(arg: &str) -> Option<String> {
    let b = arg.as_bytes();
    if b.len() != 13 || !b[..12].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let off = match b[12] {
        b'S' => "+02:00",
        b'W' => "+01:00",
        _ => return None,
    };
    let d = |i: usize| &arg[i..i + 2];
    Some(format!("20{}-{}-{}T{}:{}:{}{off}", d(0), d(2), d(4), d(6), d(8), d(10)))
}

/// Reads a number from the state document into thousandths (rounded), the oracle's scale.
pub fn json_milli(v: &serde_json::Value) -> Option<i64> {
    v.as_f64().map(|f| (f * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/telegrams").join(name);
        std::fs::read(p).unwrap()
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
    }

    #[test]
    fn reads_an_am550_telegram() {
        let t = fixture("Wassasin-dsmr5__isk_ISK_AM550.txt");
        let s = read(&t).unwrap();
        assert!(s.crc_ok);
        assert!(s.ts.as_deref().is_some_and(|ts| ts.len() == 25), "{:?}", s.ts);
        let keys: Vec<_> = s.values.iter().map(|(k, _)| *k).collect();
        for k in ["power_import_w", "energy_import_t1_kwh", "voltage_l1_v", "current_l1_a"] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
    }

    #[test]
    fn gas_comes_from_the_gas_channel_not_the_water_one() {
        let t = fixture("ndokter-dsmr_parser__TELEGRAM_FLUVIUS_V171.txt");
        let s = read(&t).unwrap();
        let gas = s.values.iter().find(|(k, _)| *k == "gas_m3").map(|(_, v)| *v);
        assert_eq!(gas, Some(112_384), "{:?}", s.values);
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let mut t = fixture("Wassasin-dsmr5__isk_ISK_AM550.txt");
        t[40] ^= 0x04;
        assert!(!read(&t).unwrap().crc_ok);
    }

    #[test]
    fn values_and_timestamps_convert() {
        assert_eq!(milli("00123.456*kWh"), Some(123_456));
        assert_eq!(milli("0002"), Some(2000));
        assert_eq!(milli("12.3456"), None);
        assert_eq!(iso("260329030000S").as_deref(), Some("2026-03-29T03:00:00+02:00"));
        assert_eq!(iso("261025025959W").as_deref(), Some("2026-10-25T02:59:59+01:00"));
        assert_eq!(iso("26102502595"), None);
    }
}
