//! The electrical model: P1 supply → AXP192 power path (ACIN / battery, linear charger) → rails,
//! stepped in virtual time with piecewise-constant loads. Deterministic: no clock, no randomness
//! except the emulator's seeded ADC noise.

use super::axp192::{Axp192, Electrical};
use super::battery::{Battery, BatteryParams};
use super::supply::{P1Supply, SupplyKind};

/// Board-level constants (power.md §1, §3.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoardParams {
    /// DCDC1 output, V.
    pub rail_v: f64,
    /// Buck efficiency from the battery (~3.8 V).
    pub eta_bat: f64,
    /// Buck efficiency from IPSOUT at ~5 V.
    pub eta_ext: f64,
    /// AXP192 own consumption while on, mA at IPSOUT (LANGSHIP-SAVE: 1.4 mA).
    pub axp_quiescent_ma: f64,
    /// LCD backlight (LDO2 at 3.0 V, ScreenBreath 12), mA.
    pub ldo2_ma: f64,
    /// LCD logic (LDO3), mA.
    pub ldo3_ma: f64,
    /// 5 V boost quiescent (EXTEN), mA.
    pub exten_ma: f64,
    /// Microphone (LDOio0), mA.
    pub ldoio0_ma: f64,
    /// ACIN ideal diode, Ω.
    pub r_acin: f64,
    /// Battery → IPSOUT ideal diode, Ω.
    pub r_bat_path: f64,
    /// ACIN under-voltage lock-out, V.
    pub acin_uvlo_v: f64,
    /// IPSOUT level the charger backs off to hold on a weak source, V [inferred from AXP-DS §9.2].
    pub ips_hold_v: f64,
    /// Extra resistance in the charge path for the CV phase, Ω.
    pub charge_path_ohm: f64,
    /// Ambient temperature, °C.
    pub ambient_c: f64,
    /// After an ACIN under-voltage drop-out, time until the AXP192 uses ACIN again, s [unknown;
    /// the port recovers at once because the AXP192 stopped drawing].
    pub acin_redetect_s: f64,
}

impl Default for BoardParams {
    fn default() -> Self {
        Self {
            rail_v: 3.3,
            eta_bat: 0.90,
            eta_ext: 0.88,
            axp_quiescent_ma: 1.4,
            ldo2_ma: 20.4,
            ldo3_ma: 2.0,
            exten_ma: 1.3,
            ldoio0_ma: 0.1,
            r_acin: 0.2,
            r_bat_path: 0.1,
            acin_uvlo_v: 3.8,
            ips_hold_v: 4.5,
            charge_path_ohm: 0.1,
            ambient_c: 30.0,
            acin_redetect_s: 0.01,
        }
    }
}

/// A scripted supply event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SupplyAction {
    /// Cable out.
    Unplug,
    /// Cable in.
    Plug,
    /// Replace the port (e.g. move to a DSMR 4 meter).
    Supply(SupplyKind),
    /// The port's output collapses for this long, s.
    Brownout(f64),
    /// The port's over-current protection fires now.
    Trip,
    /// USB-C (VBUS) supply connected (true) or removed (false).
    Usb(bool),
}

/// One point of the downsampled trace.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TracePoint {
    /// End of the bucket, h.
    pub t_h: f64,
    /// State of charge at the end, %.
    pub soc_pct: f64,
    /// Average ACIN current in the bucket, mA.
    pub acin_ma_avg: f64,
    /// Peak ACIN current in the bucket, mA.
    pub acin_ma_peak: f64,
    /// Average battery current, mA (+ discharge, − charge).
    pub battery_ma_avg: f64,
    /// Trips so far.
    pub trips: u32,
}

/// Totals over a run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    /// Simulated time, s.
    pub t_s: f64,
    /// ∫ ACIN current dt, mA·s.
    pub acin_mas: f64,
    /// Peak ACIN current, mA.
    pub acin_peak_ma: f64,
    /// ∫ battery discharge − charge dt, mA·s.
    pub battery_mas: f64,
    /// ∫ 3.3 V load dt while powered, mA·s.
    pub load_mas: f64,
    /// Time powered, s.
    pub powered_s: f64,
    /// Time on battery (no usable ACIN) while powered, s.
    pub on_battery_s: f64,
    /// AXP192 power-offs at VOFF (brown-outs of the stick).
    pub brownouts: u32,
    /// First power-off, s.
    pub first_shutdown_s: Option<f64>,
    /// `battery_mas` at the first power-off.
    pub battery_mas_at_shutdown: Option<f64>,
    /// ACIN lost because a current-limited port sagged below UVLO.
    pub acin_dropouts: u32,
    /// Lowest SoC, 0..=1.
    pub soc_min: f64,
    /// Lowest APS voltage while powered, V.
    pub aps_min_v: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    start: f64,
    acin_mas: f64,
    bat_mas: f64,
    peak: f64,
}

#[derive(Debug, Clone, Copy)]
struct Solved {
    e: Electrical,
    /// Current out of the battery (+) / into it (−), mA.
    bat_ma: f64,
    ext: bool,
}

/// The stick's power system in virtual time.
#[derive(Debug, Clone)]
pub struct PowerSim {
    /// Virtual time, s.
    pub t: f64,
    /// The P1 port.
    pub supply: P1Supply,
    /// The LiPo.
    pub battery: Battery,
    /// The AXP192 register file (the firmware talks to it over I2C).
    pub axp: Axp192,
    /// Board constants.
    pub board: BoardParams,
    /// Totals.
    pub stats: Stats,
    /// USB-C (VBUS) connected to a 5 V supply.
    pub usb: bool,
    charge_done: bool,
    acin_dropped_until: f64,
    events: Vec<(f64, SupplyAction)>,
    next_event: usize,
    trace_step_s: f64,
    bucket: Bucket,
    trace: Vec<TracePoint>,
}

impl PowerSim {
    /// A stick on `supply` with the battery at `soc` (0..=1).
    pub fn new(supply: SupplyKind, soc: f64, battery: BatteryParams) -> Self {
        let battery = Battery::new(battery, soc);
        Self {
            t: 0.0,
            supply: P1Supply::new(supply),
            battery,
            axp: Axp192::new(),
            board: BoardParams::default(),
            stats: Stats { soc_min: battery.soc, aps_min_v: f64::INFINITY, ..Stats::default() },
            usb: false,
            charge_done: false,
            acin_dropped_until: f64::NEG_INFINITY,
            events: Vec::new(),
            next_event: 0,
            trace_step_s: 60.0,
            bucket: Bucket::default(),
            trace: Vec::new(),
        }
    }

    /// Scripts supply events (any order).
    pub fn with_events(mut self, mut events: Vec<(f64, SupplyAction)>) -> Self {
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.events = events;
        self.next_event = 0;
        self
    }

    /// Sets the trace bucket length, s.
    pub fn with_trace_step(mut self, step_s: f64) -> Self {
        self.trace_step_s = step_s.max(1e-3);
        self
    }

    /// The trace so far (closed buckets).
    pub fn trace(&self) -> &[TracePoint] {
        &self.trace
    }

    /// True while the stick (AXP192 + ESP32) is powered.
    pub fn powered(&self) -> bool {
        self.axp.powered()
    }

    /// ACIN can supply the stick right now.
    pub fn acin_available(&self) -> bool {
        self.supply.available(self.t) && self.t >= self.acin_dropped_until
    }

    fn apply_events(&mut self) {
        while let Some(&(at, action)) = self.events.get(self.next_event) {
            if at > self.t {
                break;
            }
            match action {
                SupplyAction::Unplug => self.supply.set_plugged(false),
                SupplyAction::Plug => self.supply.set_plugged(true),
                SupplyAction::Supply(k) => self.supply.set_kind(k),
                SupplyAction::Brownout(d) => self.supply.brownout(self.t, d),
                SupplyAction::Trip => {
                    if self.supply.available(self.t) {
                        self.supply.force_trip(self.t);
                    }
                }
                SupplyAction::Usb(on) => self.usb = on,
            }
            self.next_event += 1;
        }
    }

    fn rails_ma(&self) -> f64 {
        let a = &self.axp;
        let b = &self.board;
        let mut ma = b.axp_quiescent_ma;
        if a.ldo2_on() {
            ma += b.ldo2_ma;
        }
        if a.ldo3_on() {
            ma += b.ldo3_ma;
        }
        if a.exten_on() {
            ma += b.exten_ma;
        }
        if a.ldoio0_on() {
            ma += b.ldoio0_ma;
        }
        ma
    }

    /// What the linear charger asks for, mA (CC/CV, termination, recharge; power.md §5.1).
    fn charger_request(&mut self) -> f64 {
        let c = self.axp.charger();
        if !c.enabled {
            return 0.0;
        }
        let ocv = self.battery.ocv();
        if self.charge_done {
            if ocv < c.target_v - 0.1 {
                self.charge_done = false;
            } else {
                return 0.0;
            }
        }
        if ocv < 3.0 {
            return 0.1 * c.cc_ma;
        }
        let i_cv = (c.target_v - ocv) / (self.battery.r_int() + self.board.charge_path_ohm) * 1000.0;
        if i_cv < c.end_fraction * c.cc_ma {
            self.charge_done = true;
            return 0.0;
        }
        i_cv.min(c.cc_ma)
    }

    fn on_battery(&self, rail_mw: f64, rails_ma: f64) -> Option<(f64, f64)> {
        // I = P_rail/(η V) + I_ldo with V = OCV − R I; a few fixed-point rounds converge.
        let mut i = rail_mw / self.board.eta_bat / self.battery.ocv() + rails_ma;
        for _ in 0..6 {
            let v = self.battery.terminal(i);
            if v <= 0.5 {
                return None;
            }
            i = rail_mw / self.board.eta_bat / v + rails_ma;
        }
        let v = self.battery.terminal(i);
        (v > 0.5).then_some((i, v))
    }

    fn solve(&mut self, load_ma: f64) -> Solved {
        let b = self.board;
        let rail_mw = b.rail_v * load_ma;
        let rails_ma = self.rails_ma();
        let temp_c = b.ambient_c + 0.01 * rail_mw;
        let ext = self.acin_available();
        let base = Electrical {
            acin_present: self.supply.available(self.t),
            vbus_present: false,
            temp_c,
            ..Electrical::default()
        };
        let battery_only = |sim: &Self, base: Electrical, acin_v: f64| -> Solved {
            let (i, v) = sim.on_battery(rail_mw, rails_ma).unwrap_or((1.0e4, 0.0));
            Solved {
                e: Electrical {
                    acin_v,
                    bat_v: v,
                    bat_discharge_ma: i,
                    aps_v: v - b.r_bat_path * i / 1000.0,
                    ..base
                },
                bat_ma: i,
                ext: false,
            }
        };
        if !ext {
            let acin_v = if base.acin_present { self.supply.voltage(0.0) } else { 0.0 };
            if self.usb {
                return self.solve_vbus(rail_mw, rails_ma, Electrical { acin_v, ..base });
            }
            return battery_only(self, base, acin_v);
        }
        let req = self.charger_request();
        let cc = self.axp.charger().cc_ma;
        // IPSOUT from ACIN: the system current depends on V_IPS; iterate.
        let mut v_ips = self.supply.voltage(0.0);
        let mut i_sys = 0.0;
        for _ in 0..4 {
            i_sys = rail_mw / b.eta_ext / v_ips + rails_ma;
            let i_acin = i_sys + req;
            v_ips = self.supply.voltage(i_acin) - b.r_acin * i_acin / 1000.0;
        }
        let full = |i_chg: f64, i_acin: f64, v_acin: f64, v_ips: f64, starved: bool| -> Solved {
            let bat_v = self.battery.terminal(-i_chg);
            Solved {
                e: Electrical {
                    acin_usable: true,
                    acin_v: v_acin,
                    acin_ma: i_acin,
                    bat_v,
                    bat_charge_ma: i_chg,
                    aps_v: v_ips,
                    charging: req > 0.0,
                    charge_starved: starved,
                    charge_below_65: starved && i_chg < 0.65 * cc,
                    ..base
                },
                bat_ma: -i_chg,
                ext: true,
            }
        };
        match self.supply.current_limit_ma() {
            Some(lim) if i_sys + req > lim => {
                let i_sys_hold = rail_mw / b.eta_ext / b.ips_hold_v + rails_ma;
                if i_sys_hold <= lim {
                    // The charger takes what is left; IPSOUT held at ips_hold_v.
                    let i_chg = (lim - i_sys_hold).min(req);
                    full(i_chg, lim, b.ips_hold_v + b.r_acin * lim / 1000.0, b.ips_hold_v, true)
                } else {
                    // The port gives its limit at IPSOUT ≈ battery voltage; the battery covers the rest.
                    let ocv = self.battery.ocv();
                    let v_ips = ocv; // first guess, refined below
                    let deficit_mw = (rail_mw / b.eta_ext + rails_ma * v_ips) - lim * v_ips;
                    let i_bat = self.battery.current_for_power(deficit_mw.max(0.0)).unwrap_or(1.0e4);
                    let bat_v = self.battery.terminal(i_bat);
                    let v_ips = bat_v - b.r_bat_path * i_bat / 1000.0;
                    let v_acin = v_ips + b.r_acin * lim / 1000.0;
                    if v_acin < b.acin_uvlo_v {
                        self.acin_dropped_until = self.t + b.acin_redetect_s;
                        self.stats.acin_dropouts += 1;
                        return battery_only(self, base, v_acin);
                    }
                    Solved {
                        e: Electrical {
                            acin_usable: true,
                            acin_v: v_acin,
                            acin_ma: lim,
                            bat_v,
                            bat_discharge_ma: i_bat,
                            aps_v: v_ips,
                            charging: req > 0.0,
                            charge_starved: req > 0.0,
                            charge_below_65: req > 0.0,
                            ..base
                        },
                        bat_ma: i_bat,
                        ext: true,
                    }
                }
            }
            _ => {
                let i_acin = i_sys + req;
                full(req, i_acin, self.supply.voltage(i_acin), v_ips, false)
            }
        }
    }

    /// USB-C (VBUS) feeds IPSOUT when ACIN cannot (ACIN has priority). 5.0 V behind 0.3 Ω; REG30
    /// bit 1 enables its input limit (bit 0: 100 mA, else 500 mA); over the limit the charger backs
    /// off first and then the battery supplements (AXP-DS §9.2).
    fn solve_vbus(&mut self, rail_mw: f64, rails_ma: f64, base: Electrical) -> Solved {
        let b = self.board;
        let (v_open, r_out) = (5.0, 0.3);
        let r30 = self.axp.read_reg(0x30);
        let limit = (r30 & 0x02 != 0).then_some(if r30 & 0x01 != 0 { 100.0 } else { 500.0 });
        let req = self.charger_request();
        let cc = self.axp.charger().cc_ma;
        let mut v_ips = v_open;
        let mut i_sys = 0.0;
        for _ in 0..4 {
            i_sys = rail_mw / b.eta_ext / v_ips + rails_ma;
            v_ips = v_open - (r_out + b.r_acin) * (i_sys + req) / 1000.0;
        }
        let lim = limit.unwrap_or(f64::INFINITY);
        let i_chg = req.min((lim - i_sys).max(0.0));
        let deficit_ma = (i_sys - lim).max(0.0);
        let i_vbus = i_sys.min(lim) + i_chg;
        let i_bat = if deficit_ma > 0.0 {
            self.battery.current_for_power(deficit_ma * v_ips).unwrap_or(1.0e4)
        } else {
            -i_chg
        };
        let bat_v = self.battery.terminal(i_bat);
        let starved = i_chg + 1e-9 < req;
        Solved {
            e: Electrical {
                vbus_present: true,
                vbus_v: v_open - r_out * i_vbus / 1000.0,
                vbus_ma: i_vbus,
                bat_v,
                bat_charge_ma: i_chg,
                bat_discharge_ma: i_bat.max(0.0),
                aps_v: if deficit_ma > 0.0 { bat_v - b.r_bat_path * i_bat / 1000.0 } else { v_ips },
                charging: req > 0.0,
                charge_starved: starved,
                charge_below_65: starved && i_chg < 0.65 * cc,
                ..base
            },
            bat_ma: i_bat,
            ext: true,
        }
    }

    fn close_buckets(&mut self) {
        while self.t >= self.bucket.start + self.trace_step_s - 1e-9 {
            let len = self.trace_step_s;
            self.trace.push(TracePoint {
                t_h: (self.bucket.start + len) / 3600.0,
                soc_pct: self.battery.soc * 100.0,
                acin_ma_avg: self.bucket.acin_mas / len,
                acin_ma_peak: self.bucket.peak,
                battery_ma_avg: self.bucket.bat_mas / len,
                trips: self.supply.trips,
            });
            self.bucket = Bucket { start: self.bucket.start + len, ..Bucket::default() };
        }
    }

    fn commit(&mut self, s: &Solved, load_ma: f64, dt: f64) {
        let acin = if s.ext { s.e.acin_ma } else { 0.0 };
        self.battery.integrate(s.bat_ma, dt);
        self.supply.draw(acin, dt);
        let st = &mut self.stats;
        st.t_s += dt;
        st.acin_mas += acin * dt;
        st.battery_mas += s.bat_ma * dt;
        if dt > 0.0 {
            st.acin_peak_ma = st.acin_peak_ma.max(acin);
            self.bucket.peak = self.bucket.peak.max(acin);
        }
        st.load_mas += load_ma * dt;
        st.powered_s += dt;
        if !s.ext {
            st.on_battery_s += dt;
        }
        st.soc_min = st.soc_min.min(self.battery.soc);
        st.aps_min_v = st.aps_min_v.min(s.e.aps_v);
        self.bucket.acin_mas += acin * dt;
        self.bucket.bat_mas += s.bat_ma * dt;
        self.axp.sample(&s.e, dt);
        self.t += dt;
        self.close_buckets();
    }

    /// Runs the powered stick with a 3.3 V load of `load_ma` for `dt` seconds. Returns false if the
    /// stick shut down (APS below VOFF) during the step; the rest of the step is then spent off.
    pub fn step(&mut self, load_ma: f64, dt: f64) -> bool {
        let end = self.t + dt;
        while self.t < end - 1e-12 {
            self.apply_events();
            if !self.axp.powered() {
                self.idle_off(end - self.t);
                return false;
            }
            let mut seg = end - self.t;
            if let Some(back) = self.supply.back_at(self.t) {
                seg = seg.min(back - self.t);
            }
            if let Some(&(at, _)) = self.events.get(self.next_event) {
                seg = seg.min(at - self.t);
            }
            let bucket_end = self.bucket.start + self.trace_step_s;
            if bucket_end > self.t {
                seg = seg.min(bucket_end - self.t);
            }
            if self.acin_dropped_until > self.t {
                seg = seg.min(self.acin_dropped_until - self.t);
            }
            let s = self.solve(load_ma);
            if self.acin_dropped_until > self.t {
                // ACIN just dropped out: this segment runs on battery until re-detection.
                seg = seg.min(self.acin_dropped_until - self.t);
            }
            let trip_at = if s.ext { self.supply.time_to_trip(s.e.acin_ma, seg) } else { None };
            let trip_now = trip_at.is_some();
            if let Some(x) = trip_at {
                seg = x;
            }
            self.commit(&s, load_ma, seg.max(0.0));
            if trip_now {
                self.supply.force_trip(self.t);
            }
            if s.e.aps_v < self.axp.voff_v() {
                self.axp.power_off();
                self.stats.brownouts += 1;
                if self.stats.first_shutdown_s.is_none() {
                    self.stats.first_shutdown_s = Some(self.t);
                    self.stats.battery_mas_at_shutdown = Some(self.stats.battery_mas);
                }
                self.idle_off(end - self.t);
                return false;
            }
        }
        true
    }

    /// Time passes with the stick off (or not yet rebooted): the AXP192 restarts when ACIN appears.
    fn idle_off(&mut self, dt: f64) {
        let end = self.t + dt;
        while self.t < end - 1e-12 {
            self.apply_events();
            if !self.axp.powered() && (self.supply.available(self.t) || self.usb) {
                self.axp.power_on();
                return;
            }
            let mut seg = end - self.t;
            if let Some(back) = self.supply.back_at(self.t) {
                seg = seg.min(back - self.t);
            }
            if let Some(&(at, _)) = self.events.get(self.next_event) {
                seg = seg.min(at - self.t);
            }
            let bucket_end = self.bucket.start + self.trace_step_s;
            if bucket_end > self.t {
                seg = seg.min(bucket_end - self.t);
            }
            // Off: 27 µA from the battery (AXP-DS).
            self.battery.integrate(0.027, seg);
            self.stats.battery_mas += 0.027 * seg;
            self.stats.t_s += seg;
            self.bucket.bat_mas += 0.027 * seg;
            self.stats.soc_min = self.stats.soc_min.min(self.battery.soc);
            self.t += seg;
            self.close_buckets();
        }
    }

    /// While off: waits until the AXP192 powers up again (ACIN back) or `until` (virtual s).
    /// Returns true if powered.
    pub fn wait_for_power(&mut self, until: f64) -> bool {
        while !self.axp.powered() && self.t < until - 1e-12 {
            let step = (until - self.t).min(1.0);
            self.idle_off(step);
        }
        self.axp.powered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(kind: SupplyKind, soc: f64) -> PowerSim {
        let mut s = PowerSim::new(kind, soc, BatteryParams::default());
        s.axp.write_reg(0x12, 0x01); // headless: DCDC1 only
        s.axp.write_reg(0x33, 0xC0); // 100 mA, 4.2 V
        s.axp.write_reg(0x31, 0x04); // VOFF 3.0 V
        s
    }

    #[test]
    fn dsmr5_charges_at_the_set_current_and_carries_the_load() {
        let mut s = sim(SupplyKind::Dsmr5, 0.5);
        assert!(s.step(30.0, 60.0));
        // 100 mA into the cell plus 30 mA · 3.3 V / (0.88 · ~4.9 V) + 1.4 mA.
        let acin = s.stats.acin_mas / 60.0;
        assert!((acin - 124.4).abs() < 2.0, "{acin}");
        assert!(s.battery.soc > 0.5 + 100.0 / 60.0 / 80.0 * 0.99);
        assert_eq!(s.supply.trips, 0);
    }

    #[test]
    fn a_peak_above_the_window_trips_and_the_battery_rides_through() {
        let mut s = sim(SupplyKind::Dsmr5, 0.9);
        // 368 mA on 3.3 V ≈ 280 mA at ACIN + 100 mA charging → over 280 mA.
        assert!(s.step(368.0, 0.001));
        assert_eq!(s.supply.trips, 1);
        assert!(!s.acin_available());
        assert!(s.step(30.0, 0.1));
        assert!(s.acin_available());
        assert!(s.stats.on_battery_s > 0.04 && s.stats.on_battery_s < 0.06);
    }

    #[test]
    fn dsmr4_holds_100_ma_and_the_battery_covers_the_rest() {
        let mut s = sim(SupplyKind::Dsmr4, 0.8);
        assert!(s.step(125.0, 1.0));
        assert!((s.stats.acin_peak_ma - 100.0).abs() < 1e-9);
        assert!(s.stats.battery_mas > 0.0);
        // Light load: the charger gets the remainder, the port stays at its limit.
        let before = s.battery.soc;
        assert!(s.step(20.0, 60.0));
        assert!(s.battery.soc > before);
        assert!(s.stats.acin_peak_ma <= 100.0 + 1e-9);
    }

    #[test]
    fn usb_feeds_the_stick_when_acin_is_absent_and_acin_has_priority() {
        let mut s = sim(SupplyKind::None, 0.5);
        s.usb = true;
        assert!(s.step(30.0, 60.0));
        assert_eq!(s.stats.acin_mas, 0.0);
        assert!(s.battery.soc > 0.5 + 0.9 * 100.0 / 60.0 / 80.0, "charges from VBUS");
        assert_eq!(s.axp.read_reg(0x00) & 0x30, 0x30, "VBUS present and usable");
        // REG30 100 mA limit: the charger gets what the load leaves.
        s.axp.write_reg(0x30, 0x83);
        let before = s.battery.soc;
        assert!(s.step(30.0, 60.0));
        let gained_mah = (s.battery.soc - before) * 80.0;
        assert!(gained_mah > 0.9 && gained_mah < 1.3, "{gained_mah} mAh in a minute at ~75 mA");
        // ACIN wins when both are there.
        s.supply.set_kind(SupplyKind::Dsmr5);
        assert!(s.step(30.0, 1.0));
        assert!(s.stats.acin_mas > 100.0);
    }

    #[test]
    fn battery_only_browns_out_at_voff_and_restarts_on_acin() {
        let mut s = sim(SupplyKind::None, 0.02).with_events(vec![(100.0, SupplyAction::Supply(SupplyKind::Dsmr5))]);
        let mut alive = true;
        while alive && s.t < 100.0 {
            alive = s.step(125.0, 1.0);
        }
        assert!(!alive, "shuts down near empty");
        assert_eq!(s.stats.brownouts, 1);
        assert!(s.wait_for_power(200.0));
        assert!((s.t - 100.0).abs() < 1e-9);
    }
}
