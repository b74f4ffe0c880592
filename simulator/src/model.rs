//! The physical meter: a seeded household behind a meter that integrates what it measures.
//!
//! Guarantees, for one profile, seed and start time:
//! - the sequence of states is deterministic (no wall clock, no global RNG);
//! - energy registers only grow, by exactly the sent import/export power times the interval
//!   (before the register's own rounding down);
//! - per-phase current = |per-phase power| / per-phase voltage; total power = the netted sum of the
//!   phases (Dutch and Belgian meters net across phases);
//! - the register that counts is the tariff in force at the telegram's local time;
//! - M-Bus readings and their capture timestamps change only at the device's update boundary;
//! - the power-failure counts never decrease, the long count never exceeds the total count, and the
//!   log holds the most recent long failures (end time, duration);
//! - the meter sends nothing while the power is off: the next telegram comes after the outage.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

use crate::clock::{self, Zone};
use crate::profile::{MbusKind, Profile};
use crate::rng::Rng;

/// A long power failure as the log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureEntry {
    /// When the power came back (the log's timestamp is the end time).
    pub end: DateTime<Utc>,
    /// How long the power was off, in seconds.
    pub duration_s: u64,
}

/// One month's peak in the e-MUCS 13-month history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonthPeak {
    /// Start of the month after the one the peak belongs to (how Fluvius stamps entries).
    pub month: DateTime<Utc>,
    /// When the peak quarter-hour ended.
    pub at: DateTime<Utc>,
    /// Peak quarter-hour average in W.
    pub watts: f64,
}

/// Live state of one M-Bus device.
#[derive(Debug, Clone, PartialEq)]
pub struct MbusState {
    /// Index into the profile's `mbus` list.
    pub device: usize,
    /// Running total (m3 or GJ), continuous.
    pub total: f64,
    /// Value at the last capture boundary (what the meter shows).
    pub captured: f64,
    /// Capture time shown with it.
    pub captured_at: DateTime<Utc>,
}

/// Everything the meter displays, in SI-ish units (W, Wh, V, A).
#[derive(Debug, Clone, PartialEq)]
pub struct MeterState {
    /// Physical time of this state (UTC).
    pub now: DateTime<Utc>,
    /// Displayed clock offset from faults (clock jump, DST change), seconds.
    pub clock_offset_s: i64,
    /// Tariff in force, 1 or 2.
    pub tariff: u8,
    /// Import energy registers, tariff 1 and 2, Wh.
    pub import_wh: [f64; 2],
    /// Export energy registers, Wh.
    pub export_wh: [f64; 2],
    /// Reactive import / export, varh.
    pub reactive_varh: [f64; 2],
    /// Netted total power: import W (>= 0).
    pub import_w: f64,
    /// Netted total power: export W (>= 0).
    pub export_w: f64,
    /// Per-phase net power (load minus PV), W; positive = import.
    pub phase_net_w: [f64; 3],
    /// Per-phase voltage, V.
    pub voltage: [f64; 3],
    /// Per-phase current, A (|P| / V).
    pub current: [f64; 3],
    /// Power factor.
    pub power_factor: f64,
    /// Grid frequency, Hz.
    pub frequency: f64,
    /// Power failures in any phase (short and long).
    pub power_failures: u64,
    /// Long power failures (>= 180 s).
    pub long_power_failures: u64,
    /// Long failure log, oldest first.
    pub failure_log: Vec<FailureEntry>,
    /// Voltage sag counters per phase.
    pub sags: [u64; 3],
    /// Voltage swell counters per phase.
    pub swells: [u64; 3],
    /// M-Bus devices.
    pub mbus: Vec<MbusState>,
    /// Energy imported in the running quarter hour, Wh, and its start.
    pub quarter_wh: f64,
    /// Start of the running quarter hour.
    pub quarter_start: DateTime<Utc>,
    /// Highest quarter-hour average this month: (end of quarter, W).
    pub month_peak: (DateTime<Utc>, f64),
    /// Start of the month the running peak belongs to.
    pub month: DateTime<Utc>,
    /// 13-month peak history, newest first.
    pub history: Vec<MonthPeak>,
    /// Seconds of outage just before this state (0 if none).
    pub outage_before_s: u64,
}

impl MeterState {
    /// The clock the meter displays (physical time plus fault offsets).
    pub fn display_time(&self) -> DateTime<Utc> {
        self.now + Duration::seconds(self.clock_offset_s)
    }

    /// Running quarter-hour average import in W (e-MUCS 1.4.0).
    pub fn average_demand_w(&self) -> f64 {
        let elapsed = (self.now - self.quarter_start).num_seconds().max(1) as f64;
        self.quarter_wh * 3600.0 / elapsed
    }
}

#[derive(Debug, Clone, Copy)]
struct Event {
    end: i64,
    watts: [f64; 3],
}

/// The household behind the meter: base load, fridge, appliances, PV, EV, gas and water use.
#[derive(Debug, Clone)]
struct House {
    phases: usize,
    base_w: f64,
    fridge_offset_s: i64,
    fridge_phase: usize,
    pv_wp: f64,
    has_ev: bool,
    ev_day: i64,
    events: Vec<Event>,
    cloud: f64,
    base_noise: f64,
    drift: [f64; 3],
    freq_dev: f64,
    sag_until: [i64; 3],
    sag_depth: [f64; 3],
    swell_until: [i64; 3],
    swell_height: [f64; 3],
    hot_water_until: i64,
    water_flow_until: i64,
    water_flow_lpm: f64,
}

/// Appliances: (watts, minutes, relative frequency, spread over all phases).
const APPLIANCES: &[(f64, f64, f64, bool)] = &[
    (2000.0, 3.0, 4.0, false),  // kettle
    (1000.0, 4.0, 2.0, false),  // microwave
    (2400.0, 40.0, 0.7, false), // oven
    (2000.0, 25.0, 0.6, false), // washing machine heating
    (1800.0, 30.0, 0.5, false), // dishwasher
    (120.0, 120.0, 1.0, false), // television
    (150.0, 180.0, 1.0, false), // lighting
    (1200.0, 15.0, 0.4, false), // vacuum cleaner
    (2500.0, 60.0, 0.3, false), // tumble dryer
    (3500.0, 45.0, 0.3, true),  // induction hob (two phases on 3-phase meters)
];

/// Mean appliance events per hour by local hour.
fn activity(hour: f64) -> f64 {
    match hour as u32 {
        0..=5 => 0.03,
        6 => 0.4,
        7..=8 => 1.0,
        9..=11 => 0.4,
        12..=13 => 0.6,
        14..=16 => 0.3,
        17..=20 => 1.3,
        21..=22 => 0.6,
        _ => 0.2,
    }
}

/// Solar output as a fraction of peak at time `t` (latitude ~52 N), before clouds.
fn solar_fraction(t: DateTime<Utc>) -> f64 {
    let doy = t.ordinal() as f64;
    let hour_utc = t.hour() as f64 + t.minute() as f64 / 60.0 + t.second() as f64 / 3600.0;
    let day_len = 12.2 + 4.3 * (std::f64::consts::TAU * (doy - 80.0) / 365.0).sin();
    let noon = 11.7; // solar noon in UTC at ~5 E
    let x = (hour_utc - (noon - day_len / 2.0)) / day_len;
    if !(0.0..=1.0).contains(&x) {
        return 0.0;
    }
    let season = 0.55 + 0.45 * (std::f64::consts::TAU * (doy - 80.0) / 365.0).sin().max(-1.0);
    (std::f64::consts::PI * x).sin().powf(1.5) * season
}

/// Outdoor temperature estimate, deg C (seasonal plus daily swing).
fn outdoor_temp(t: DateTime<Utc>, hour_local: f64) -> f64 {
    let doy = t.ordinal() as f64;
    10.5 - 7.5 * (std::f64::consts::TAU * (doy - 15.0) / 365.0).cos() + 3.0 * (std::f64::consts::TAU * (hour_local - 9.0) / 24.0).sin()
}

impl House {
    fn new(profile: &Profile, rng: &mut Rng) -> House {
        let h = &profile.household;
        let phases = profile.phases as usize;
        House {
            phases,
            base_w: rng.range_f64(h.base_w.0, h.base_w.1.max(h.base_w.0)),
            fridge_offset_s: rng.below(3000) as i64,
            fridge_phase: rng.below(phases as u64) as usize,
            pv_wp: 1000.0 * rng.range_f64(h.pv_kwp.0, h.pv_kwp.1.max(h.pv_kwp.0)),
            has_ev: rng.chance(h.ev_probability),
            ev_day: i64::MIN,
            events: Vec::new(),
            cloud: rng.range_f64(0.3, 1.0),
            base_noise: 0.0,
            drift: [rng.normal() * 2.0, rng.normal() * 2.0, rng.normal() * 2.0],
            freq_dev: 0.0,
            sag_until: [i64::MIN; 3],
            sag_depth: [0.0; 3],
            swell_until: [i64::MIN; 3],
            swell_height: [0.0; 3],
            hot_water_until: i64::MIN,
            water_flow_until: i64::MIN,
            water_flow_lpm: 0.0,
        }
    }

    /// Advances the household by `dt` seconds ending at `t`, returning per-phase load and PV in W.
    fn step(&mut self, t: DateTime<Utc>, dt: f64, zone: Zone, rng: &mut Rng) -> ([f64; 3], [f64; 3]) {
        let ts = t.timestamp();
        let hour = clock::local_hour(zone, t);
        self.events.retain(|e| e.end > ts);

        let rate = activity(hour) + if clock::is_weekend(zone, t) { 0.3 } else { 0.0 };
        if rng.chance((rate * dt / 3600.0).min(1.0)) {
            let total: f64 = APPLIANCES.iter().map(|a| a.2).sum();
            let mut pick = rng.f64() * total;
            let mut chosen = APPLIANCES[0];
            for a in APPLIANCES {
                if pick < a.2 {
                    chosen = *a;
                    break;
                }
                pick -= a.2;
            }
            let (w, minutes, _, spread) = chosen;
            let w = w * rng.range_f64(0.85, 1.1);
            let dur = (minutes * 60.0 * rng.range_f64(0.6, 1.5)) as i64;
            let mut watts = [0.0; 3];
            if spread && self.phases == 3 {
                let skip = rng.below(3) as usize;
                for (p, slot) in watts.iter_mut().enumerate() {
                    if p != skip {
                        *slot = w / 2.0;
                    }
                }
            } else {
                watts[rng.below(self.phases as u64) as usize] = w;
            }
            self.events.push(Event { end: ts + dur.max(1), watts });
        }
        let day = ts.div_euclid(86_400);
        // At most one charging session a day, on about half the evenings, ~6-14 kWh.
        if self.has_ev
            && self.ev_day != day
            && !(1.0..18.0).contains(&hour)
            && rng.chance((0.12 * dt / 3600.0).min(1.0))
        {
            self.ev_day = day;
            let w = if self.phases == 3 { 11_000.0 } else { 3_700.0 };
            let n = self.phases as f64;
            let mut watts = [0.0; 3];
            for slot in watts.iter_mut().take(self.phases) {
                *slot = w / n;
            }
            let dur = (rng.range_f64(6_000.0, 14_000.0) / w * 3600.0) as i64;
            self.events.push(Event { end: ts + dur, watts });
        }

        let a = (-dt / 600.0).exp();
        self.base_noise = self.base_noise * a + (1.0 - a * a).sqrt() * rng.normal() * 0.05;
        let base = self.base_w * (1.0 + self.base_noise).max(0.5);
        let mut load = [0.0; 3];
        for slot in load.iter_mut().take(self.phases) {
            *slot = base / self.phases as f64;
        }
        if (ts + self.fridge_offset_s).rem_euclid(3000) < 1080 {
            load[self.fridge_phase] += 90.0;
        }
        for e in &self.events {
            for p in 0..3 {
                load[p] += e.watts[p];
            }
        }

        let ac = (-dt / 900.0).exp();
        self.cloud = (self.cloud * ac + (1.0 - ac) * rng.range_f64(0.15, 1.0) + rng.normal() * 0.02 * dt.sqrt().min(5.0)).clamp(0.1, 1.0);
        let pv_total = self.pv_wp * 0.85 * solar_fraction(t) * self.cloud;
        let mut pv = [0.0; 3];
        for slot in pv.iter_mut().take(self.phases) {
            *slot = pv_total / self.phases as f64;
        }
        (load, pv)
    }
}

/// Seeded physical meter state plus its household; see the module docs for the guarantees.
#[derive(Debug, Clone)]
pub struct Physics {
    zone: Zone,
    interval_s: u32,
    profile_mbus: Vec<(MbusKind, u32, u32, bool)>,
    low_register: u8,
    low_start: u32,
    low_end: u32,
    weekend_low: bool,
    nominal_v: f64,
    failures_per_day: f64,
    long_fraction: f64,
    sags_per_day: f64,
    swells_per_day: f64,
    max_log: usize,
    house: House,
    rng: Rng,
    pending_outage_s: u64,
    /// The current state (the last telegram's).
    pub state: MeterState,
}

impl Physics {
    /// A meter for `profile` whose first state is at `start`, seeded by `seed`.
    pub fn new(profile: &Profile, seed: u64, start: DateTime<Utc>) -> Physics {
        let mut init = Rng::derive(seed, 1);
        let house = House::new(profile, &mut init);
        let zone = profile.zone;
        let phases = profile.phases as usize;

        let years = init.range_f64(0.5, 8.0);
        let annual = init.range_f64(2200.0, 4800.0) * 1000.0;
        let low_share = init.range_f64(0.38, 0.55);
        let import_total = annual * years;
        let export_total = house.pv_wp * 900.0 * years.min(6.0) * init.range_f64(0.3, 0.6);
        let lr = profile.tariff.low_register as usize - 1;
        let mut import_wh = [0.0; 2];
        import_wh[lr] = import_total * low_share;
        import_wh[1 - lr] = import_total * (1.0 - low_share);
        let mut export_wh = [0.0; 2];
        export_wh[lr] = export_total * 0.3;
        export_wh[1 - lr] = export_total * 0.7;

        let power_failures = init.below(20);
        let long_power_failures = init.below(power_failures.min(12) + 1);
        let max_log = profile.failure_log.max_entries;
        let mut failure_log: Vec<FailureEntry> = (0..long_power_failures.min(max_log as u64))
            .map(|_| FailureEntry {
                end: start - Duration::seconds(init.below(2 * 365 * 86_400) as i64 + 3600),
                duration_s: 180 + init.below(20_000),
            })
            .collect();
        failure_log.sort_by_key(|e| e.end);

        let mut sags = [0u64; 3];
        let mut swells = [0u64; 3];
        for p in 0..phases {
            sags[p] = init.below(12);
            swells[p] = init.below(4);
        }

        let mbus = profile
            .mbus
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let total = if m.unused {
                    0.0
                } else {
                    match m.kind {
                        MbusKind::Gas => init.range_f64(400.0, 9000.0),
                        MbusKind::Water => init.range_f64(40.0, 900.0),
                        MbusKind::Heat => init.range_f64(10.0, 300.0),
                    }
                };
                let cap = capture_boundary(start, m.update_s);
                MbusState { device: i, total, captured: total, captured_at: cap + Duration::seconds(m.capture_offset_s as i64) }
            })
            .collect();

        let quarter_start = quarter_boundary(start);
        let month_start = month_start(zone, start);
        let month_peak = if start - month_start > Duration::minutes(15) {
            let span = (start - month_start).num_minutes() / 15;
            (month_start + Duration::minutes(15 * (1 + init.below(span as u64) as i64)), init.range_f64(1500.0, 6000.0))
        } else {
            (month_start, 0.0)
        };
        let (hm0, hm1) = profile.household.history_months;
        let months = hm0 + init.below(u64::from(hm1.saturating_sub(hm0)) + 1) as u32;
        let mut history = Vec::new();
        let mut m_end = month_start;
        for _ in 0..months {
            let m_begin = month_start_of_prev(zone, m_end);
            let span_q = ((m_end - m_begin).num_minutes() / 15).max(1);
            let at = m_begin + Duration::minutes(15 * (1 + init.below(span_q as u64 - 1) as i64));
            history.push(MonthPeak { month: m_end, at, watts: init.range_f64(2500.0, 9000.0) });
            m_end = m_begin;
        }

        let state = MeterState {
            now: start,
            clock_offset_s: 0,
            tariff: 1,
            import_wh,
            export_wh,
            reactive_varh: [import_total * 0.12, export_total * 0.05],
            import_w: 0.0,
            export_w: 0.0,
            phase_net_w: [0.0; 3],
            voltage: [profile.household.nominal_v; 3],
            current: [0.0; 3],
            power_factor: 1.0,
            frequency: 50.0,
            power_failures,
            long_power_failures,
            failure_log,
            sags,
            swells,
            mbus,
            quarter_wh: 0.0,
            quarter_start,
            month_peak,
            month: month_start,
            history,
            outage_before_s: 0,
        };
        let h = &profile.household;
        let mut physics = Physics {
            zone,
            interval_s: profile.interval_s,
            profile_mbus: profile.mbus.iter().map(|m| (m.kind, m.update_s, m.capture_offset_s, m.unused)).collect(),
            low_register: profile.tariff.low_register,
            low_start: profile.tariff.low_start_min,
            low_end: profile.tariff.low_end_min,
            weekend_low: profile.tariff.weekend_low,
            nominal_v: h.nominal_v,
            failures_per_day: h.failures_per_day,
            long_fraction: h.long_failure_fraction,
            sags_per_day: h.sags_per_day,
            swells_per_day: h.swells_per_day,
            max_log,
            house,
            rng: Rng::derive(seed, 2),
            pending_outage_s: 0,
            state,
        };
        physics.measure(start, 0.0);
        physics
    }

    /// The tariff register (1 or 2) in force at `t`.
    pub fn tariff_at(&self, t: DateTime<Utc>) -> u8 {
        let l = self.zone.local(t);
        let min = l.hour() * 60 + l.minute();
        let in_low = if self.low_start <= self.low_end {
            (self.low_start..self.low_end).contains(&min)
        } else {
            min >= self.low_start || min < self.low_end
        };
        let low = in_low || (self.weekend_low && clock::is_weekend(self.zone, t));
        if low { self.low_register } else { 3 - self.low_register }
    }

    /// Advances one interval. Returns the new state. May first pass through a power outage, in which
    /// case the state's `now` is later than one interval and `outage_before_s` is set.
    pub fn advance(&mut self) -> &MeterState {
        let interval = self.interval_s as i64;
        let mut next = self.state.now + Duration::seconds(interval);
        if self.rng.chance((self.failures_per_day * interval as f64 / 86_400.0).min(1.0)) {
            let long = self.rng.chance(self.long_fraction);
            let dur = if long { 180 + self.rng.exp(2400.0) as u64 } else { 1 + self.rng.below(170) };
            self.power_failure(dur);
            next = self.state.now + Duration::seconds(interval);
        }
        self.measure(next, interval as f64);
        self.state.outage_before_s = std::mem::take(&mut self.pending_outage_s);
        &self.state
    }

    /// Applies a power failure of `duration_s` starting now: counters, log, and the meter's clock
    /// moves past the outage (nothing is metered or sent during it). Rounded up to whole intervals.
    pub fn power_failure(&mut self, duration_s: u64) {
        let iv = self.interval_s as u64;
        let dur = duration_s.div_ceil(iv) * iv;
        let end = self.state.now + Duration::seconds(dur as i64);
        self.state.power_failures += 1;
        if dur >= 180 {
            self.state.long_power_failures += 1;
            self.state.failure_log.push(FailureEntry { end, duration_s: dur });
            if self.state.failure_log.len() > self.max_log {
                self.state.failure_log.remove(0);
            }
        }
        // Capture boundaries and demand periods passed while off keep their last values.
        self.state.now = end;
        self.pending_outage_s += dur;
        self.house.events.clear();
    }

    fn measure(&mut self, t: DateTime<Utc>, dt: f64) {
        let tariff = self.tariff_at(t);
        let rng = &mut self.rng;
        let (load, pv) = self.house.step(t, dt.max(1.0), self.zone, rng);
        let ts = t.timestamp();
        let s = &mut self.state;
        let phases = self.house.phases;

        let mut net = [0.0; 3];
        for p in 0..phases {
            net[p] = load[p] - pv[p];
        }
        let total: f64 = net.iter().sum();
        // Whole watts: the meter's power resolution (DSMR: 1 W).
        let import_w = total.max(0.0).round();
        let export_w = (-total).max(0.0).round();

        // Voltage: slow drift, noise, load drop, PV rise, and rare sag/swell events.
        let a = (-dt / 1800.0).exp();
        for p in 0..phases {
            let h = &mut self.house;
            h.drift[p] = h.drift[p] * a + (1.0 - a * a).sqrt() * rng.normal() * 2.0;
            if rng.chance((self.sags_per_day * dt / 86_400.0).min(1.0)) {
                h.sag_until[p] = ts + 1 + rng.below(3) as i64;
                h.sag_depth[p] = rng.range_f64(25.0, 60.0);
                s.sags[p] += 1;
            }
            if rng.chance((self.swells_per_day * dt / 86_400.0).min(1.0)) {
                h.swell_until[p] = ts + 1 + rng.below(3) as i64;
                h.swell_height[p] = rng.range_f64(24.0, 32.0);
                s.swells[p] += 1;
            }
            let mut v = self.nominal_v + h.drift[p] + rng.normal() * 0.3 - 0.0012 * net[p].max(0.0) + 0.0016 * (-net[p]).max(0.0);
            if h.sag_until[p] >= ts {
                v -= h.sag_depth[p];
            }
            if h.swell_until[p] >= ts {
                v += h.swell_height[p];
            }
            s.voltage[p] = v.clamp(150.0, 280.0);
            s.phase_net_w[p] = net[p].round();
            s.current[p] = s.phase_net_w[p].abs() / s.voltage[p];
        }
        let fa = (-dt / 60.0).exp();
        self.house.freq_dev = self.house.freq_dev * fa + (1.0 - fa * fa).sqrt() * rng.normal() * 0.015;
        s.frequency = 50.0 + self.house.freq_dev;
        s.power_factor = (0.93 + 0.06 * (import_w.max(export_w) / 3000.0).min(1.0)).min(0.999);

        let ti = tariff as usize - 1;
        let hours = dt / 3600.0;
        s.tariff = tariff;
        s.import_wh[ti] += import_w * hours;
        s.export_wh[ti] += export_w * hours;
        let q_ratio = (1.0 / (s.power_factor * s.power_factor) - 1.0).max(0.0).sqrt();
        s.reactive_varh[0] += import_w * q_ratio * hours;
        s.reactive_varh[1] += export_w * q_ratio * hours;
        s.import_w = import_w;
        s.export_w = export_w;

        // Quarter-hour demand (e-MUCS): close the running quarter when t crosses its end.
        let qs = quarter_boundary(t);
        if qs != s.quarter_start {
            let elapsed = (t - s.quarter_start).num_seconds().max(1) as f64;
            let avg = s.quarter_wh * 3600.0 / elapsed.min(900.0);
            let q_end = s.quarter_start + Duration::minutes(15);
            let ms = month_start(self.zone, t);
            if ms != s.month {
                s.month = ms;
                // A new month: the finished month's peak goes into the history, newest first.
                if s.month_peak.1 > 0.0 {
                    s.history.insert(0, MonthPeak { month: ms, at: s.month_peak.0, watts: s.month_peak.1 });
                    s.history.truncate(13);
                }
                s.month_peak = (ms, 0.0);
            }
            if q_end <= t && avg > s.month_peak.1 {
                s.month_peak = (q_end, avg);
            }
            s.quarter_start = qs;
            s.quarter_wh = 0.0;
        }
        s.quarter_wh += import_w * hours;

        // Gas and water: continuous use, shown at capture boundaries.
        let hour_local = clock::local_hour(self.zone, t);
        let temp = outdoor_temp(t, hour_local);
        let heating_m3h = if (6.0..23.0).contains(&hour_local) { (17.5 - temp).max(0.0) * 0.022 } else { (15.0 - temp).max(0.0) * 0.01 };
        if self.house.hot_water_until < ts && rng.chance((activity(hour_local) * 0.2 * dt / 3600.0).min(1.0)) {
            self.house.hot_water_until = ts + 300 + rng.below(600) as i64;
        }
        let hot_water_m3h = if self.house.hot_water_until >= ts { 1.4 } else { 0.0 };
        if self.house.water_flow_until < ts && rng.chance((activity(hour_local) * 0.8 * dt / 3600.0).min(1.0)) {
            self.house.water_flow_until = ts + 30 + rng.below(500) as i64;
            self.house.water_flow_lpm = rng.range_f64(4.0, 12.0);
        }
        let water_m3h = if self.house.water_flow_until >= ts { self.house.water_flow_lpm * 0.06 } else { 0.0 };
        for m in s.mbus.iter_mut() {
            let (kind, update_s, offset_s, unused) = self.profile_mbus[m.device];
            if unused {
                continue;
            }
            m.total += hours
                * match kind {
                    MbusKind::Gas => heating_m3h + hot_water_m3h,
                    MbusKind::Water => water_m3h,
                    MbusKind::Heat => heating_m3h * 0.03,
                };
            let cap = capture_boundary(t, update_s);
            let shown = cap + Duration::seconds(offset_s as i64);
            if shown <= t && shown > m.captured_at {
                m.captured = m.total;
                m.captured_at = shown;
            }
        }
        s.now = t;
    }
}

fn capture_boundary(t: DateTime<Utc>, every_s: u32) -> DateTime<Utc> {
    let ts = t.timestamp();
    let b = ts - ts.rem_euclid(every_s as i64);
    Utc.timestamp_opt(b, 0).single().unwrap_or(t)
}

fn quarter_boundary(t: DateTime<Utc>) -> DateTime<Utc> {
    capture_boundary(t, 900)
}

/// Local midnight on the first of the month containing `t`, as UTC.
fn month_start(zone: Zone, t: DateTime<Utc>) -> DateTime<Utc> {
    let l = zone.local(t);
    let naive = chrono::NaiveDate::from_ymd_opt(l.year(), l.month(), 1).and_then(|d| d.and_hms_opt(0, 0, 0));
    local_to_utc(zone, naive).unwrap_or(t)
}

fn month_start_of_prev(zone: Zone, month_start_utc: DateTime<Utc>) -> DateTime<Utc> {
    month_start(zone, month_start_utc - Duration::hours(1))
}

fn local_to_utc(zone: Zone, naive: Option<chrono::NaiveDateTime>) -> Option<DateTime<Utc>> {
    let naive = naive?;
    [3600i64, 7200, 0].iter().find_map(|&o| {
        let utc = Utc.from_utc_datetime(&(naive - Duration::seconds(o)));
        (zone.offset_secs(utc) as i64 == o).then_some(utc)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-15T10:00:00+02:00").map(|t| t.with_timezone(&Utc)).expect("time")
    }

    #[test]
    fn energy_grows_by_power_times_interval() {
        let p = Profile::load("iskra-am550-td2").expect("profile");
        let mut m = Physics::new(&p, 3, start());
        for _ in 0..5000 {
            let before = m.state.clone();
            let s = m.advance().clone();
            if s.outage_before_s > 0 {
                continue;
            }
            let ti = s.tariff as usize - 1;
            let d_import = s.import_wh[ti] - before.import_wh[ti];
            assert!((d_import - s.import_w / 3600.0).abs() < 1e-6);
            assert!(s.import_w == 0.0 || s.export_w == 0.0);
            let net: f64 = s.phase_net_w.iter().sum();
            assert!((net - (s.import_w - s.export_w)).abs() <= 2.0, "{net} vs {} {}", s.import_w, s.export_w);
            for ph in 0..3 {
                assert!((s.current[ph] * s.voltage[ph] - s.phase_net_w[ph].abs()).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn tariffs_follow_time_of_day_and_weekends() {
        let p = Profile::load("iskra-am550-td2").expect("profile");
        let m = Physics::new(&p, 1, start());
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).expect("time");
        assert_eq!(m.tariff_at(at("2026-06-15T12:00:00+02:00")), 2, "Monday noon: normal");
        assert_eq!(m.tariff_at(at("2026-06-15T23:30:00+02:00")), 1, "Monday night: low");
        assert_eq!(m.tariff_at(at("2026-06-16T06:59:00+02:00")), 1);
        assert_eq!(m.tariff_at(at("2026-06-16T07:00:00+02:00")), 2);
        assert_eq!(m.tariff_at(at("2026-06-13T12:00:00+02:00")), 1, "Saturday: low");
        let be = Profile::load("fluvius-emucs").expect("profile");
        let m = Physics::new(&be, 1, start());
        assert_eq!(m.tariff_at(at("2026-06-15T12:00:00+02:00")), 1, "BE day tariff is register 1");
        assert_eq!(m.tariff_at(at("2026-06-15T22:30:00+02:00")), 2);
    }

    #[test]
    fn pv_exports_at_noon_in_summer_and_never_at_night() {
        let mut p = Profile::load("iskra-am550-td2").expect("profile");
        p.household.pv_kwp = (8.0, 8.0);
        p.household.base_w = (80.0, 80.0);
        p.household.ev_probability = 0.0;
        let noon = DateTime::parse_from_rfc3339("2026-06-21T13:00:00+02:00").map(|t| t.with_timezone(&Utc)).expect("t");
        let mut exported = 0;
        for seed in 0..20 {
            let mut m = Physics::new(&p, seed, noon);
            if m.advance().export_w > 0.0 {
                exported += 1;
            }
        }
        assert!(exported >= 15, "only {exported}/20 exported at noon");
        let night = DateTime::parse_from_rfc3339("2026-06-21T02:00:00+02:00").map(|t| t.with_timezone(&Utc)).expect("t");
        let mut m = Physics::new(&p, 1, night);
        for _ in 0..600 {
            assert_eq!(m.advance().export_w, 0.0);
        }
    }

    #[test]
    fn gas_capture_changes_only_on_five_minute_boundaries() {
        let p = Profile::load("iskra-am550-td2").expect("profile");
        let mut m = Physics::new(&p, 9, start());
        let mut last = m.state.mbus[0].captured_at;
        for _ in 0..3600 {
            let s = m.advance();
            let g = &s.mbus[0];
            if g.captured_at != last {
                assert_eq!(g.captured_at.timestamp() % 300, 10, "AM550 captures at hh:m5:10");
                last = g.captured_at;
            }
        }
    }
}
