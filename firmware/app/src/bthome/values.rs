//! The values to advertise, as plain fixed-point integers.

use super::object::Field;

/// One reading to advertise. `None` leaves the object out (e.g. a single-phase meter has no L2/L3,
/// a meter without a gas meter has no gas).
///
/// Units are those of the DSMR register's resolution, so a telegram value maps without rounding:
/// kW with 3 decimals → W, kWh with 3 decimals → Wh, V with 1 decimal → dV, A → mA, m³ with 3
/// decimals → litres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Values {
    /// Battery charge in percent (0..=100).
    pub battery_percent: Option<u8>,
    /// Power drawn from the grid (1-0:1.7.0), W.
    pub power_import_w: Option<u32>,
    /// Power returned to the grid (1-0:2.7.0), W.
    pub power_export_w: Option<u32>,
    /// Phase currents L1, L2, L3 (1-0:31.7.0, 51.7.0, 71.7.0), mA.
    pub current_ma: [Option<u32>; 3],
    /// Phase voltages L1, L2, L3 (1-0:32.7.0, 52.7.0, 72.7.0), dV (0.1 V).
    pub voltage_dv: [Option<u32>; 3],
    /// Gas meter reading (0-n:24.2.1), litres (0.001 m³).
    pub gas_l: Option<u64>,
    /// Imported energy, sum of the tariff registers 1-0:1.8.x, Wh.
    pub energy_import_wh: Option<u64>,
    /// Exported energy, sum of the tariff registers 1-0:2.8.x, Wh.
    pub energy_export_wh: Option<u64>,
}

impl Values {
    /// The value of `field` in its input unit.
    pub fn get(&self, field: Field) -> Option<u64> {
        let [i1, i2, i3] = self.current_ma;
        let [u1, u2, u3] = self.voltage_dv;
        match field {
            Field::Battery => self.battery_percent.map(u64::from),
            Field::PowerImport => self.power_import_w.map(u64::from),
            Field::PowerExport => self.power_export_w.map(u64::from),
            Field::CurrentL1 => i1.map(u64::from),
            Field::CurrentL2 => i2.map(u64::from),
            Field::CurrentL3 => i3.map(u64::from),
            Field::VoltageL1 => u1.map(u64::from),
            Field::VoltageL2 => u2.map(u64::from),
            Field::VoltageL3 => u3.map(u64::from),
            Field::Gas => self.gas_l,
            Field::EnergyImport => self.energy_import_wh,
            Field::EnergyExport => self.energy_export_wh,
        }
    }
}
