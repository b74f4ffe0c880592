//! The M5StickC's 80 mAh LiPo: open-circuit voltage against state of charge, internal resistance.

/// Generic 1-cell LiPo OCV table, 0 %..100 % in 5 % steps (power.md §5, LIPO-LUT).
const OCV_V: [f64; 21] = [
    3.27, 3.61, 3.69, 3.71, 3.73, 3.75, 3.77, 3.79, 3.80, 3.82, 3.84, 3.85, 3.87, 3.91, 3.95, 3.98,
    4.02, 4.08, 4.11, 4.15, 4.20,
];

/// Battery parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatteryParams {
    /// Usable capacity, mAh.
    pub capacity_mah: f64,
    /// DC internal resistance at mid charge, Ω.
    pub r_int_ohm: f64,
    /// Extra resistance added linearly below 15 % SoC (reaching this at 0 %), Ω.
    pub r_empty_extra_ohm: f64,
}

impl Default for BatteryParams {
    fn default() -> Self {
        // 80 mAh nominal; AC impedance ≤ 430 mΩ, DC taken as 0.5 Ω (power.md §5).
        Self { capacity_mah: 80.0, r_int_ohm: 0.5, r_empty_extra_ohm: 0.3 }
    }
}

/// State of the cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Battery {
    /// Parameters.
    pub params: BatteryParams,
    /// State of charge, 0..=1.
    pub soc: f64,
}

impl Battery {
    /// A cell at `soc` (clamped to 0..=1).
    pub fn new(params: BatteryParams, soc: f64) -> Self {
        Self { params, soc: soc.clamp(0.0, 1.0) }
    }

    /// Open-circuit voltage at the current SoC, V (linear between the table's points).
    pub fn ocv(&self) -> f64 {
        ocv_at(self.soc)
    }

    /// Internal resistance, Ω (rises towards empty).
    pub fn r_int(&self) -> f64 {
        let low = ((0.15 - self.soc) / 0.15).clamp(0.0, 1.0);
        self.params.r_int_ohm + self.params.r_empty_extra_ohm * low
    }

    /// Terminal voltage for a current out of the cell (`i_ma` > 0 discharges, < 0 charges), V.
    pub fn terminal(&self, i_ma: f64) -> f64 {
        self.ocv() - self.r_int() * i_ma / 1000.0
    }

    /// The discharge current that delivers `p_mw` at the terminals, mA; `None` if the cell cannot
    /// deliver that power at all (the terminal voltage would collapse).
    pub fn current_for_power(&self, p_mw: f64) -> Option<f64> {
        if p_mw <= 0.0 {
            return Some(0.0);
        }
        // P = I (OCV − R I)  →  R I² − OCV I + P = 0, smaller root (I in A, P in W).
        let (ocv, r, p) = (self.ocv(), self.r_int(), p_mw / 1000.0);
        let disc = ocv * ocv - 4.0 * r * p;
        if disc < 0.0 {
            return None;
        }
        Some((ocv - disc.sqrt()) / (2.0 * r) * 1000.0)
    }

    /// Moves charge: `i_ma` > 0 discharges, < 0 charges, for `dt_s` seconds.
    pub fn integrate(&mut self, i_ma: f64, dt_s: f64) {
        let d = i_ma * dt_s / 3600.0 / self.params.capacity_mah;
        self.soc = (self.soc - d).clamp(0.0, 1.0);
    }
}

/// The table's 0 % (3.27 V) is a light-load end point; the last 2 % of the capacity sit on a steep
/// knee down to 3.0 V, where the AXP192's VOFF stops the stick under any load [inferred].
const KNEE: f64 = 0.02;

/// OCV at a state of charge (0..=1), V.
pub fn ocv_at(soc: f64) -> f64 {
    let soc = soc.clamp(0.0, 1.0);
    if soc < KNEE {
        return 3.0 + (OCV_V[0] - 3.0) * soc / KNEE;
    }
    let x = (soc - KNEE) / (1.0 - KNEE) * 20.0;
    let i = (x.floor() as usize).min(19);
    let f = x - i as f64;
    let lo = OCV_V.get(i).copied().unwrap_or(3.27);
    let hi = OCV_V.get(i + 1).copied().unwrap_or(4.2);
    lo + (hi - lo) * f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocv_table_ends_and_interpolates() {
        assert!((ocv_at(0.0) - 3.0).abs() < 1e-9);
        assert!((ocv_at(KNEE) - 3.27).abs() < 1e-9);
        assert!((ocv_at(1.0) - 4.20).abs() < 1e-9);
        assert!((ocv_at(KNEE + 0.525 * (1.0 - KNEE)) - 3.845).abs() < 1e-9);
    }

    #[test]
    fn power_draw_sags_the_terminal_voltage() {
        let b = Battery::new(BatteryParams::default(), 0.5);
        let i = b.current_for_power(380.0).unwrap_or(f64::NAN);
        assert!((i - 100.0).abs() < 5.0, "{i}");
        assert!((b.terminal(i) * i - 380.0).abs() < 0.5);
        assert!(b.current_for_power(1.0e5).is_none());
    }

    #[test]
    fn one_hour_at_80_ma_empties_80_mah() {
        let mut b = Battery::new(BatteryParams::default(), 1.0);
        for _ in 0..3600 {
            b.integrate(80.0, 1.0);
        }
        assert!(b.soc.abs() < 1e-9);
    }
}
