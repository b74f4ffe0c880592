//! The gateway's reading: the values it publishes, in integer base units, small and `Copy` so the
//! store-and-forward ring can hold hundreds of them.

use core::fmt::{self, Write};

use crate::text::Fixed;

/// A meter timestamp: local wall-clock time with its UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Full year.
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
    /// Offset from UTC in minutes (+60 for CET, +120 for CEST).
    pub offset_min: i16,
}

impl Timestamp {
    /// Builds a timestamp from a DSMR `YYMMDDhhmmss` time and its DST flag (`Some(true)` = `S`,
    /// summer time, +02:00; `Some(false)` = `W`, +01:00). Without a flag, the EU rule for
    /// Central European Time decides.
    pub fn from_dsmr(yy: u8, month: u8, day: u8, hour: u8, minute: u8, second: u8, dst: Option<bool>) -> Self {
        let year = 2000 + u16::from(yy);
        let summer = match dst {
            Some(s) => s,
            None => eu_summer_time(year, month, day, hour),
        };
        Timestamp { year, month, day, hour, minute, second, offset_min: if summer { 120 } else { 60 } }
    }
}

/// Day of week, 0 = Sunday (Sakamoto).
fn weekday(year: u16, month: u8, day: u8) -> u8 {
    const T: [u16; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = if month < 3 { year.saturating_sub(1) } else { year };
    let t = T.get(usize::from(month.clamp(1, 12)) - 1).copied().unwrap_or(0);
    ((y + y / 4 - y / 100 + y / 400 + t + u16::from(day)) % 7) as u8
}

/// Local CET wall time in summer time? Summer time runs from the last Sunday of March 02:00 CET
/// to the last Sunday of October 03:00 CEST.
fn eu_summer_time(year: u16, month: u8, day: u8, hour: u8) -> bool {
    let last_sunday = |m: u8| 31 - weekday(year, m, 31);
    match month {
        4..=9 => true,
        3 => {
            let ls = last_sunday(3);
            day > ls || (day == ls && hour >= 2)
        }
        10 => {
            let ls = last_sunday(10);
            day < ls || (day == ls && hour < 3)
        }
        _ => false,
    }
}

impl fmt::Display for Timestamp {
    /// ISO 8601 with offset: `2017-01-02T19:20:02+01:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.offset_min < 0 { '-' } else { '+' };
        let off = self.offset_min.unsigned_abs();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            sign,
            off / 60,
            off % 60
        )
    }
}

/// One reading from one good telegram. Values are integers in small units; `None` when the meter
/// did not send that object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// Per-boot sequence number of the good telegram this came from (1, 2, ...).
    pub seq: u32,
    /// Uptime (clock ms) when the telegram's last byte arrived.
    pub rx_ms: u64,
    /// Meter time (0-0:1.0.0).
    pub ts: Option<Timestamp>,
    /// Tariff indicator (0-0:96.14.0).
    pub tariff: Option<u8>,
    /// Power imported from the grid, W (1-0:1.7.0).
    pub power_import_w: Option<i32>,
    /// Power exported to the grid, W (1-0:2.7.0).
    pub power_export_w: Option<i32>,
    /// Energy imported: total, tariff 1, tariff 2; Wh (1-0:1.8.0, 1-0:1.8.1, 1-0:1.8.2).
    pub energy_import_wh: [Option<u32>; 3],
    /// Energy exported: total, tariff 1, tariff 2; Wh (1-0:2.8.0, 1-0:2.8.1, 1-0:2.8.2).
    pub energy_export_wh: [Option<u32>; 3],
    /// Voltage per phase, 0.1 V (1-0:32/52/72.7.0).
    pub voltage_dv: [Option<u16>; 3],
    /// Current per phase, mA (1-0:31/51/71.7.0).
    pub current_ma: [Option<u32>; 3],
    /// Power imported per phase, W (1-0:21/41/61.7.0).
    pub phase_import_w: [Option<i32>; 3],
    /// Power exported per phase, W (1-0:22/42/62.7.0).
    pub phase_export_w: [Option<i32>; 3],
    /// Gas meter reading, dm³ (litres), from the first M-Bus gas device.
    pub gas_dm3: Option<u32>,
    /// When the gas meter was last read.
    pub gas_ts: Option<Timestamp>,
}

/// What kind of quantity a field is; the deadband policy and Home Assistant care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Power, W.
    Power,
    /// Energy, kWh.
    Energy,
    /// Voltage, V.
    Voltage,
    /// Current, A.
    Current,
    /// Gas volume, m³.
    Gas,
    /// A plain number.
    Number,
}

impl Quantity {
    /// Home Assistant unit of measurement.
    pub fn unit(self) -> Option<&'static str> {
        match self {
            Quantity::Power => Some("W"),
            Quantity::Energy => Some("kWh"),
            Quantity::Voltage => Some("V"),
            Quantity::Current => Some("A"),
            Quantity::Gas => Some("m³"),
            Quantity::Number => None,
        }
    }
    /// Home Assistant device class.
    pub fn device_class(self) -> Option<&'static str> {
        match self {
            Quantity::Power => Some("power"),
            Quantity::Energy => Some("energy"),
            Quantity::Voltage => Some("voltage"),
            Quantity::Current => Some("current"),
            Quantity::Gas => Some("gas"),
            Quantity::Number => None,
        }
    }
    /// Home Assistant state class.
    pub fn state_class(self) -> &'static str {
        match self {
            Quantity::Energy | Quantity::Gas => "total_increasing",
            _ => "measurement",
        }
    }
}

/// One published field of a [`Reading`].
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Short id: per-field topic name and HA object id.
    pub id: &'static str,
    /// JSON key in the state document (the unit is in the name).
    pub key: &'static str,
    /// Human name (Home Assistant entity name).
    pub name: &'static str,
    /// What it measures.
    pub quantity: Quantity,
    /// Reads the value.
    pub get: fn(&Reading) -> Option<Fixed>,
}

fn w(v: Option<i32>) -> Option<Fixed> {
    v.map(|x| Fixed::new(i64::from(x), 0))
}
fn kwh(v: Option<u32>) -> Option<Fixed> {
    v.map(|x| Fixed::new(i64::from(x), 3))
}
fn volt(v: Option<u16>) -> Option<Fixed> {
    v.map(|x| Fixed::new(i64::from(x), 1))
}
fn amp(v: Option<u32>) -> Option<Fixed> {
    v.map(|x| Fixed::new(i64::from(x), 3))
}

macro_rules! arr {
    ($r:ident . $f:ident [$i:literal]) => {
        $r.$f.get($i).copied().flatten()
    };
}

/// Every field the state document can carry, in document order.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec { id: "power_import", key: "power_import_w", name: "Power import", quantity: Quantity::Power, get: |r| w(r.power_import_w) },
    FieldSpec { id: "power_export", key: "power_export_w", name: "Power export", quantity: Quantity::Power, get: |r| w(r.power_export_w) },
    FieldSpec { id: "energy_import", key: "energy_import_kwh", name: "Energy import total", quantity: Quantity::Energy, get: |r| kwh(arr!(r.energy_import_wh[0])) },
    FieldSpec { id: "energy_import_t1", key: "energy_import_t1_kwh", name: "Energy import tariff 1", quantity: Quantity::Energy, get: |r| kwh(arr!(r.energy_import_wh[1])) },
    FieldSpec { id: "energy_import_t2", key: "energy_import_t2_kwh", name: "Energy import tariff 2", quantity: Quantity::Energy, get: |r| kwh(arr!(r.energy_import_wh[2])) },
    FieldSpec { id: "energy_export", key: "energy_export_kwh", name: "Energy export total", quantity: Quantity::Energy, get: |r| kwh(arr!(r.energy_export_wh[0])) },
    FieldSpec { id: "energy_export_t1", key: "energy_export_t1_kwh", name: "Energy export tariff 1", quantity: Quantity::Energy, get: |r| kwh(arr!(r.energy_export_wh[1])) },
    FieldSpec { id: "energy_export_t2", key: "energy_export_t2_kwh", name: "Energy export tariff 2", quantity: Quantity::Energy, get: |r| kwh(arr!(r.energy_export_wh[2])) },
    FieldSpec { id: "voltage_l1", key: "voltage_l1_v", name: "Voltage L1", quantity: Quantity::Voltage, get: |r| volt(arr!(r.voltage_dv[0])) },
    FieldSpec { id: "voltage_l2", key: "voltage_l2_v", name: "Voltage L2", quantity: Quantity::Voltage, get: |r| volt(arr!(r.voltage_dv[1])) },
    FieldSpec { id: "voltage_l3", key: "voltage_l3_v", name: "Voltage L3", quantity: Quantity::Voltage, get: |r| volt(arr!(r.voltage_dv[2])) },
    FieldSpec { id: "current_l1", key: "current_l1_a", name: "Current L1", quantity: Quantity::Current, get: |r| amp(arr!(r.current_ma[0])) },
    FieldSpec { id: "current_l2", key: "current_l2_a", name: "Current L2", quantity: Quantity::Current, get: |r| amp(arr!(r.current_ma[1])) },
    FieldSpec { id: "current_l3", key: "current_l3_a", name: "Current L3", quantity: Quantity::Current, get: |r| amp(arr!(r.current_ma[2])) },
    FieldSpec { id: "power_import_l1", key: "power_import_l1_w", name: "Power import L1", quantity: Quantity::Power, get: |r| w(arr!(r.phase_import_w[0])) },
    FieldSpec { id: "power_import_l2", key: "power_import_l2_w", name: "Power import L2", quantity: Quantity::Power, get: |r| w(arr!(r.phase_import_w[1])) },
    FieldSpec { id: "power_import_l3", key: "power_import_l3_w", name: "Power import L3", quantity: Quantity::Power, get: |r| w(arr!(r.phase_import_w[2])) },
    FieldSpec { id: "power_export_l1", key: "power_export_l1_w", name: "Power export L1", quantity: Quantity::Power, get: |r| w(arr!(r.phase_export_w[0])) },
    FieldSpec { id: "power_export_l2", key: "power_export_l2_w", name: "Power export L2", quantity: Quantity::Power, get: |r| w(arr!(r.phase_export_w[1])) },
    FieldSpec { id: "power_export_l3", key: "power_export_l3_w", name: "Power export L3", quantity: Quantity::Power, get: |r| w(arr!(r.phase_export_w[2])) },
    FieldSpec { id: "gas", key: "gas_m3", name: "Gas", quantity: Quantity::Gas, get: |r| r.gas_dm3.map(|x| Fixed::new(i64::from(x), 3)) },
    FieldSpec { id: "tariff", key: "tariff", name: "Tariff", quantity: Quantity::Number, get: |r| r.tariff.map(|x| Fixed::new(i64::from(x), 0)) },
];

impl Reading {
    /// Bit `i` set when `FIELDS[i]` has a value.
    pub fn present_mask(&self) -> u32 {
        FIELDS
            .iter()
            .enumerate()
            .fold(0u32, |m, (i, f)| if (f.get)(self).is_some() { m | (1 << i) } else { m })
    }

    /// Writes the state document: one JSON object, units in the key names, the meter timestamp in
    /// ISO 8601 with offset, and the per-boot sequence number.
    ///
    /// `{"seq":1,"ts":"2017-01-02T19:20:02+01:00","power_import_w":244,...,"gas_m3":0.107,"gas_ts":"..."}`
    pub fn write_json(&self, out: &mut impl Write) -> fmt::Result {
        write!(out, "{{\"seq\":{}", self.seq)?;
        match &self.ts {
            Some(ts) => write!(out, ",\"ts\":\"{ts}\"")?,
            None => out.write_str(",\"ts\":null")?,
        }
        for f in FIELDS {
            if let Some(v) = (f.get)(self) {
                write!(out, ",\"{}\":{}", f.key, v)?;
            }
        }
        if let Some(ts) = &self.gas_ts {
            write!(out, ",\"gas_ts\":\"{ts}\"")?;
        }
        out.write_char('}')
    }
}
