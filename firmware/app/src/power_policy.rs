//! The power policy: keeps the stick's draw on the P1 port inside the port's budget.
//!
//! ## Why
//! The P1 +5 V reaches the AXP192's ACIN input, which has no programmable current limit. A DSMR 5
//! port cuts its output ("fold-back") somewhere between 260 and 300 mA; a DSMR 4 port limits at
//! 100 mA; some meters (Kamstrup Omnia) cut out on short peaks. WiFi TX bursts reach 250–370 mA on
//! the 3.3 V rail, so *peaks*, not averages, decide whether the meter trips. The firmware's levers
//! are the charge current (and pausing it), the WiFi TX power, how often the radio runs, and not
//! starting WiFi when the battery could not carry a connect if the port trips again.
//!
//! ## What it does
//! - Classifies the supply from the AXP192's measurements: [`SupplyClass::Strong`] (DSMR 5-like),
//!   [`SupplyClass::Limited`] (current-limited, DSMR 4-like: ACIN sags or the battery supplements
//!   while ACIN is present), [`SupplyClass::Tripping`] (ACIN drops out briefly, repeatedly) or
//!   [`SupplyClass::Absent`] (battery only).
//! - Chooses [`Mode::AlwaysOn`] (modem sleep, readings at the meter's 1 Hz) on any usable supply and
//!   a [`Mode::DutyCycle`] (deep sleep between publishes) on battery or on a port that keeps
//!   tripping at the lowest TX power.
//! - Pauses charging while the radio is busy when the radio's peak plus the charge current would
//!   exceed the budget ([`PowerPolicy::radio_busy`] / [`PowerPolicy::radio_idle`]).
//! - Lowers the WiFi TX power by 3 dB per trip, down to a floor.
//! - Gates WiFi starts on the battery voltage while on battery or shortly after a trip.
//! - Counts trips, unplug events and brown-outs, and renders the `<prefix>/<device>/power` JSON and
//!   the `t=.. ev=power ...` console line.
//! - In [`Transport::Ble`] mode it never allows a WiFi connect.
//!
//! ## Guarantees
//! Pure data in, data out: no I/O, no clock, no allocation, no panics. The same code runs in the
//! firmware and drives the power model in `p1-sim power`.

use core::fmt::{self, Write};

use crate::config::Transport;
use crate::seams::PowerSample;

/// Tunables. [`PowerConfig::default`] is the firmware's default policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerConfig {
    /// Which radios carry the readings.
    pub transport: Transport,
    /// Current the P1 port may supply continuously, mA (DSMR 5: 250).
    pub budget_ma: u16,
    /// Headroom kept below the budget for peaks, mA.
    pub margin_ma: u16,
    /// Charge current to ask for, mA (the AXP192's smallest step is 100 mA).
    pub charge_ma: u16,
    /// Estimated ACIN peak of a WiFi TX burst at `tx_dbm_max`, mA at 5 V.
    pub wifi_peak_ma: u16,
    /// Estimated ACIN peak of a BLE advertising burst, mA at 5 V.
    pub ble_peak_ma: u16,
    /// Battery voltage needed to start WiFi while on battery or after a trip, mV (the AXP192's
    /// warning level 1; a connect's peaks sag a loaded cell by 0.1–0.25 V, VOFF is 3.0 V).
    pub wifi_gate_mv: u16,
    /// How long after a trip the WiFi gate applies, ms.
    pub trip_holdoff_ms: u32,
    /// Trips within `trip_window_ms` that make the supply [`SupplyClass::Tripping`].
    pub trips_to_tripping: u8,
    /// Window for counting trips, ms.
    pub trip_window_ms: u32,
    /// ACIN loss longer than this is an unplug, not a trip, ms.
    pub unplug_after_ms: u32,
    /// Deep-sleep time between publishes in duty-cycle mode, s.
    pub duty_cycle_s: u16,
    /// Highest WiFi TX power, dBm.
    pub tx_dbm_max: i8,
    /// Lowest WiFi TX power the policy steps down to, dBm.
    pub tx_dbm_min: i8,
    /// ACIN voltage below which a present supply counts as limited, mV.
    pub limited_below_mv: u16,
    /// Battery discharge while ACIN is present above which the supply counts as limited, mA.
    pub limited_discharge_ma: u16,
}

impl Default for PowerConfig {
    fn default() -> Self {
        Self {
            transport: Transport::Wifi,
            budget_ma: 250,
            margin_ma: 30,
            charge_ma: 100,
            wifi_peak_ma: 215,
            ble_peak_ma: 105,
            wifi_gate_mv: 3450,
            trip_holdoff_ms: 60_000,
            trips_to_tripping: 3,
            trip_window_ms: 3_600_000,
            unplug_after_ms: 10_000,
            duty_cycle_s: 60,
            tx_dbm_max: 17,
            tx_dbm_min: 8,
            limited_below_mv: 4600,
            limited_discharge_ma: 5,
        }
    }
}

/// What the supply looks like from the measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupplyClass {
    /// No sample yet.
    Unknown,
    /// ACIN present, full voltage, carries the load and the charger.
    Strong,
    /// ACIN present but current-limited (DSMR 4): it sags, or the battery supplements it.
    Limited,
    /// ACIN drops out repeatedly (the meter's over-current protection).
    Tripping,
    /// No external supply: battery only.
    Absent,
}

impl SupplyClass {
    /// Stable name for JSON and console lines.
    pub fn as_str(self) -> &'static str {
        match self {
            SupplyClass::Unknown => "unknown",
            SupplyClass::Strong => "strong",
            SupplyClass::Limited => "limited",
            SupplyClass::Tripping => "tripping",
            SupplyClass::Absent => "absent",
        }
    }
}

/// How the radio runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stay connected (WiFi modem sleep / BLE advertising) and publish every reading.
    AlwaysOn,
    /// Wake, publish, deep-sleep for `sleep_s`.
    DutyCycle {
        /// Deep-sleep time, s.
        sleep_s: u16,
    },
}

impl Mode {
    /// Stable name for JSON and console lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::AlwaysOn => "always_on",
            Mode::DutyCycle { .. } => "duty_cycle",
        }
    }
}

/// Why the ESP32 started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootCause {
    /// First power-up.
    PowerOn,
    /// The supply sagged below the ESP32's or the AXP192's threshold.
    BrownOut,
    /// Timer wake from deep sleep.
    DeepSleepWake,
    /// Software or watchdog reset.
    Reset,
}

/// A radio burst the firmware is about to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadioActivity {
    /// WiFi association + DHCP (many TX bursts).
    WifiConnect,
    /// MQTT traffic over an existing connection.
    WifiTx,
    /// One BLE advertising event.
    BleAdvertise,
}

/// Latched AXP192 interrupt flags since the previous sample (registers 0x44/0x01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SupplyEvents {
    /// ACIN went away (REG44 bit 5): a trip, a brown-out or an unplug.
    pub acin_removed: bool,
    /// ACIN came (back) (REG44 bit 6).
    pub acin_inserted: bool,
    /// The charger gets less than it was set to (REG01 bit 2): the source is weak.
    pub charge_starved: bool,
}

/// The charger setting to apply (REG33 bit 7 and the CC current).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeCommand {
    /// Charging on.
    pub enabled: bool,
    /// CC current, mA (map with `firmware_axp192::ChargeCurrent::at_most`).
    pub ma: u16,
}

/// The policy's output after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Supply classification.
    pub supply: SupplyClass,
    /// Radio mode.
    pub mode: Mode,
    /// Charger setting while the radio is idle.
    pub charge: ChargeCommand,
    /// WiFi TX power cap, dBm.
    pub tx_dbm: i8,
    /// WiFi may be used at all (false in BLE mode).
    pub wifi_enabled: bool,
    /// A WiFi connect may start now.
    pub wifi_start_allowed: bool,
    /// BLE advertising on.
    pub ble_enabled: bool,
}

/// Counters kept across deep sleep in the AXP192's data buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// ACIN losses that came back within `unplug_after_ms` (meter trips, brown-outs of the port).
    pub trips: u16,
    /// Boots caused by a brown-out.
    pub brownouts: u16,
    /// ACIN losses longer than `unplug_after_ms`.
    pub unplugs: u16,
    /// Short ACIN losses of a current-limited port (DSMR 4 sagging below the AXP192's 3.8 V
    /// threshold while the battery supplements it). Not kept across deep sleep.
    pub sags: u16,
}

const PERSIST_MAGIC: u8 = 0xB7;

impl Counters {
    /// Packs into the AXP192's 6-byte data buffer (magic, trips, brownouts, unplugs low byte,
    /// check byte).
    pub fn to_buffer(self) -> [u8; 6] {
        let [t0, t1] = self.trips.to_le_bytes();
        let [b0, b1] = self.brownouts.to_le_bytes();
        let u = self.unplugs.min(255) as u8;
        let check = PERSIST_MAGIC ^ t0 ^ t1 ^ b0 ^ b1 ^ u;
        [t0, t1, b0, b1, u, check]
    }
    /// Unpacks a buffer written by [`Counters::to_buffer`]; `None` for anything else (first boot,
    /// or the battery ran flat and the buffer holds the chip's defaults).
    pub fn from_buffer(b: [u8; 6]) -> Option<Self> {
        let [t0, t1, b0, b1, u, check] = b;
        if PERSIST_MAGIC ^ t0 ^ t1 ^ b0 ^ b1 ^ u != check {
            return None;
        }
        Some(Self {
            trips: u16::from_le_bytes([t0, t1]),
            brownouts: u16::from_le_bytes([b0, b1]),
            unplugs: u16::from(u),
            sags: 0,
        })
    }
}

/// The policy state.
#[derive(Debug, Clone)]
pub struct PowerPolicy {
    cfg: PowerConfig,
    counters: Counters,
    class: SupplyClass,
    last: Option<(u64, PowerSample)>,
    acin_lost_at: Option<u64>,
    last_trip_ms: Option<u64>,
    trip_times: [u64; 8],
    trip_count_ring: usize,
    limited_until_ms: u64,
    tx_dbm: i8,
    radio_busy: bool,
    boot: BootCause,
}

impl PowerPolicy {
    /// A policy after a boot; `persisted` is what [`Counters::from_buffer`] found in the AXP192.
    pub fn new(cfg: PowerConfig, boot: BootCause, persisted: Option<Counters>) -> Self {
        let mut counters = persisted.unwrap_or_default();
        if boot == BootCause::BrownOut {
            counters.brownouts = counters.brownouts.saturating_add(1);
        }
        Self {
            cfg,
            counters,
            class: SupplyClass::Unknown,
            last: None,
            acin_lost_at: None,
            last_trip_ms: None,
            trip_times: [0; 8],
            trip_count_ring: 0,
            limited_until_ms: 0,
            tx_dbm: cfg.tx_dbm_max,
            radio_busy: false,
            boot,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PowerConfig {
        &self.cfg
    }

    /// The counters (persist them with [`Counters::to_buffer`]).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    fn trips_in_window(&self, now_ms: u64) -> usize {
        let n = self.trip_count_ring.min(self.trip_times.len());
        self.trip_times
            .iter()
            .take(n)
            .filter(|t| now_ms.saturating_sub(**t) <= u64::from(self.cfg.trip_window_ms))
            .count()
    }

    fn record_trip(&mut self, now_ms: u64) {
        self.last_trip_ms = Some(now_ms);
        if now_ms < self.limited_until_ms {
            // A sag of a current-limited port, not an over-current trip; less TX power would not
            // change it (the limit is below any WiFi peak).
            self.counters.sags = self.counters.sags.saturating_add(1);
            return;
        }
        self.counters.trips = self.counters.trips.saturating_add(1);
        let slot = self.trip_count_ring % self.trip_times.len();
        if let Some(t) = self.trip_times.get_mut(slot) {
            *t = now_ms;
        }
        self.trip_count_ring = self.trip_count_ring.wrapping_add(1);
        // Less TX power, smaller peaks.
        self.tx_dbm = self.tx_dbm.saturating_sub(3).max(self.cfg.tx_dbm_min);
    }

    /// Feeds one sample (taken at `now_ms`) and the latched events since the previous one.
    pub fn on_sample(&mut self, now_ms: u64, s: &PowerSample, ev: SupplyEvents) -> Decision {
        if self.last.is_none() && !s.acin_present && self.boot != BootCause::DeepSleepWake {
            // First look after a cold boot or brown-out: the port may be in fold-back from the
            // boot's inrush. Give it `unplug_after_ms` before calling it absent.
            self.acin_lost_at = Some(now_ms);
        }
        // ACIN losses: a short one is a trip, a long one an unplug.
        if ev.acin_removed && self.acin_lost_at.is_none() {
            if s.acin_present {
                // Already back by the time we looked: the port tripped and recovered.
                self.record_trip(now_ms);
            } else {
                self.acin_lost_at = Some(now_ms);
            }
        }
        if let Some(lost) = self.acin_lost_at {
            if s.acin_present {
                self.acin_lost_at = None;
                if now_ms.saturating_sub(lost) <= u64::from(self.cfg.unplug_after_ms) {
                    self.record_trip(lost);
                }
            } else if now_ms.saturating_sub(lost) > u64::from(self.cfg.unplug_after_ms) {
                self.counters.unplugs = self.counters.unplugs.saturating_add(1);
                self.acin_lost_at = None;
            }
        }

        let limited_now = s.acin_present
            && (s.acin_mv < self.cfg.limited_below_mv
                || (!self.radio_busy && s.discharge_ma > self.cfg.limited_discharge_ma)
                || ev.charge_starved);
        if limited_now {
            // Sticky for 10 min: a limited port does not become strong between samples.
            self.limited_until_ms = now_ms.saturating_add(600_000);
        }
        let external = s.acin_present || s.vbus_mv >= 4000;
        // ACIN missing but lost less than `unplug_after_ms` ago: a trip or a sag in progress, not
        // an unplug; keep the classification rather than flap to battery mode.
        let transient = !external && self.acin_lost_at.is_some();
        self.class = if !external && !transient {
            SupplyClass::Absent
        } else if now_ms < self.limited_until_ms {
            // A current-limited port (DSMR 4) drops ACIN whenever the load exceeds its limit and
            // the battery is below ~3.8 V; those losses are sags, not over-current trips.
            SupplyClass::Limited
        } else if self.trips_in_window(now_ms) >= usize::from(self.cfg.trips_to_tripping) {
            SupplyClass::Tripping
        } else if transient {
            match self.class {
                SupplyClass::Unknown | SupplyClass::Absent => SupplyClass::Strong,
                c => c,
            }
        } else {
            SupplyClass::Strong
        };
        self.last = Some((now_ms, *s));
        self.decision()
    }

    fn on_battery_or_recent_trip(&self) -> bool {
        let (now, acin) = match &self.last {
            Some((t, s)) => (*t, s.acin_present),
            None => (0, false),
        };
        let recent_trip = self
            .last_trip_ms
            .is_some_and(|t| now.saturating_sub(t) < u64::from(self.cfg.trip_holdoff_ms));
        !acin || recent_trip || self.acin_lost_at.is_some()
    }

    /// True when a WiFi connect may start: WiFi is in use and, while on battery or within the
    /// hold-off after a trip, the battery is at or above `wifi_gate_mv`.
    pub fn wifi_start_allowed(&self) -> bool {
        if !self.cfg.transport.uses_wifi() {
            return false;
        }
        if !self.on_battery_or_recent_trip() {
            return true;
        }
        self.last.as_ref().is_some_and(|(_, s)| s.battery_mv >= self.cfg.wifi_gate_mv)
    }

    fn idle_charge(&self) -> ChargeCommand {
        // Left on even on battery: the charger only runs from an external supply, and the setting
        // is then already right when the port comes back.
        ChargeCommand { enabled: self.cfg.charge_ma > 0, ma: self.cfg.charge_ma }
    }

    /// The current decision.
    pub fn decision(&self) -> Decision {
        let now = self.last.as_ref().map_or(0, |(t, _)| *t);
        let mode = match self.class {
            SupplyClass::Absent => Mode::DutyCycle { sleep_s: self.cfg.duty_cycle_s },
            SupplyClass::Tripping
                if self.tx_dbm <= self.cfg.tx_dbm_min
                    && self.cfg.transport.uses_wifi()
                    && self.trips_in_window(now) > usize::from(self.cfg.trips_to_tripping) =>
            {
                Mode::DutyCycle { sleep_s: self.cfg.duty_cycle_s }
            }
            _ => Mode::AlwaysOn,
        };
        Decision {
            supply: self.class,
            mode,
            charge: self.idle_charge(),
            tx_dbm: self.tx_dbm,
            wifi_enabled: self.cfg.transport.uses_wifi(),
            wifi_start_allowed: self.wifi_start_allowed(),
            ble_enabled: self.cfg.transport.uses_ble(),
        }
    }

    fn activity_peak_ma(&self, a: RadioActivity) -> u16 {
        match a {
            RadioActivity::WifiConnect | RadioActivity::WifiTx => {
                // Roughly 10 mA less per dB below the cap the estimate was made at.
                let below = i16::from(self.cfg.tx_dbm_max) - i16::from(self.tx_dbm);
                let less = u16::try_from(below.max(0) * 10).unwrap_or(0);
                self.cfg.wifi_peak_ma.saturating_sub(less)
            }
            RadioActivity::BleAdvertise => self.cfg.ble_peak_ma,
        }
    }

    /// Call before a radio burst; apply the returned charger setting first. Charging pauses when
    /// the burst's peak plus the charge current would exceed `budget_ma − margin_ma`.
    pub fn radio_busy(&mut self, a: RadioActivity) -> ChargeCommand {
        self.radio_busy = true;
        let idle = self.idle_charge();
        let limit = self.cfg.budget_ma.saturating_sub(self.cfg.margin_ma);
        let peak = self.activity_peak_ma(a).saturating_add(if idle.enabled { idle.ma } else { 0 });
        let pause = idle.enabled && (peak > limit || self.class == SupplyClass::Limited);
        ChargeCommand { enabled: idle.enabled && !pause, ma: idle.ma }
    }

    /// Call after the burst; apply the returned charger setting.
    pub fn radio_idle(&mut self) -> ChargeCommand {
        self.radio_busy = false;
        self.idle_charge()
    }

    /// Battery state of charge estimated from its voltage (XPowersLib's AXP192 table), percent.
    pub fn battery_percent(battery_mv: u16) -> u8 {
        const MV: [u16; 11] = [3000, 3650, 3700, 3740, 3760, 3795, 3840, 3910, 3980, 4070, 4150];
        if battery_mv <= MV[0] {
            return 0;
        }
        let mut prev = MV[0];
        for (i, &hi) in MV.iter().enumerate().skip(1) {
            if battery_mv < hi {
                let frac = u32::from(battery_mv - prev) * 10 / u32::from(hi - prev);
                return ((i as u32 - 1) * 10 + frac).min(100) as u8;
            }
            prev = hi;
        }
        100
    }

    /// Writes the `<prefix>/<device>/power` JSON object.
    pub fn write_json<W: Write>(&self, w: &mut W) -> fmt::Result {
        let d = self.decision();
        let s = self.last.map(|(_, s)| s).unwrap_or_default();
        let bat_ma = i32::from(s.charge_ma) - i32::from(s.discharge_ma);
        write!(
            w,
            "{{\"supply\":\"{}\",\"mode\":\"{}\",\"transport\":\"{}\",\"acin_present\":{},\
             \"acin_mv\":{},\"acin_ma\":{},\"vbus_mv\":{},\"battery_mv\":{},\"battery_ma\":{},\
             \"battery_pct\":{},\"temp_c\":{}{}.{},\"charging\":{},\"charge_enabled\":{},\
             \"charge_ma\":{},\"tx_dbm\":{},\"wifi_gated\":{},\"trips\":{},\"brownouts\":{},\
             \"unplugs\":{},\"sags\":{}}}",
            d.supply.as_str(),
            d.mode.as_str(),
            transport_str(self.cfg.transport),
            s.acin_present,
            s.acin_mv,
            s.acin_ma,
            s.vbus_mv,
            s.battery_mv,
            bat_ma,
            Self::battery_percent(s.battery_mv),
            if s.temp_dc < 0 { "-" } else { "" },
            s.temp_dc.unsigned_abs() / 10,
            s.temp_dc.unsigned_abs() % 10,
            s.charging,
            d.charge.enabled,
            d.charge.ma,
            d.tx_dbm,
            d.wifi_enabled && !d.wifi_start_allowed,
            self.counters.trips,
            self.counters.brownouts,
            self.counters.unplugs,
            self.counters.sags,
        )
    }

    /// Writes the console line `t=<now_ms> ev=power ...` (no newline).
    pub fn write_console<W: Write>(&self, now_ms: u64, w: &mut W) -> fmt::Result {
        let d = self.decision();
        let s = self.last.map(|(_, s)| s).unwrap_or_default();
        let bat_ma = i32::from(s.charge_ma) - i32::from(s.discharge_ma);
        write!(
            w,
            "t={} ev=power supply={} mode={} acin_mv={} acin_ma={} bat_mv={} bat_ma={} bat_pct={} \
             charging={} charge_ma={} tx_dbm={} wifi_gated={} trips={} brownouts={} unplugs={} sags={}",
            now_ms,
            d.supply.as_str(),
            d.mode.as_str(),
            s.acin_mv,
            s.acin_ma,
            s.battery_mv,
            bat_ma,
            Self::battery_percent(s.battery_mv),
            s.charging,
            if d.charge.enabled { d.charge.ma } else { 0 },
            d.tx_dbm,
            d.wifi_enabled && !d.wifi_start_allowed,
            self.counters.trips,
            self.counters.brownouts,
            self.counters.unplugs,
            self.counters.sags,
        )
    }
}

fn transport_str(t: Transport) -> &'static str {
    match t {
        Transport::Wifi => "wifi",
        Transport::Ble => "ble",
        Transport::Both => "both",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Buf {
        b: [u8; 512],
        n: usize,
    }
    impl Buf {
        fn new() -> Self {
            Self { b: [0; 512], n: 0 }
        }
        fn as_str(&self) -> &str {
            core::str::from_utf8(&self.b[..self.n]).unwrap_or("<utf8>")
        }
    }
    impl Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.n + s.len();
            self.b.get_mut(self.n..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
            self.n = end;
            Ok(())
        }
    }

    fn p1(acin_ma: u16) -> PowerSample {
        PowerSample {
            acin_mv: 5050,
            acin_ma,
            vbus_mv: 0,
            battery_mv: 4100,
            charge_ma: 60,
            discharge_ma: 0,
            temp_dc: 412,
            acin_present: true,
            charging: true,
        }
    }

    fn battery(mv: u16) -> PowerSample {
        PowerSample {
            acin_mv: 0,
            acin_ma: 0,
            battery_mv: mv,
            charge_ma: 0,
            discharge_ma: 40,
            acin_present: false,
            charging: false,
            ..p1(0)
        }
    }

    #[test]
    fn strong_supply_is_always_on_and_charges() {
        let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::PowerOn, None);
        let d = p.on_sample(1000, &p1(120), SupplyEvents::default());
        assert_eq!(d.supply, SupplyClass::Strong);
        assert_eq!(d.mode, Mode::AlwaysOn);
        assert_eq!(d.charge, ChargeCommand { enabled: true, ma: 100 });
        assert!(d.wifi_start_allowed);
        // 215 mA WiFi peak + 100 mA charge > 220 mA: pause while transmitting, resume after.
        assert!(!p.radio_busy(RadioActivity::WifiTx).enabled);
        assert!(p.radio_idle().enabled);
        // BLE: 105 + 100 fits.
        assert!(p.radio_busy(RadioActivity::BleAdvertise).enabled);
    }

    #[test]
    fn battery_only_duty_cycles_and_gates_wifi_on_voltage() {
        let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::DeepSleepWake, None);
        let d = p.on_sample(1000, &battery(3400), SupplyEvents::default());
        assert_eq!(d.supply, SupplyClass::Absent);
        assert_eq!(d.mode, Mode::DutyCycle { sleep_s: 60 });
        assert!(!d.wifi_start_allowed);
        let d = p.on_sample(2000, &battery(3500), SupplyEvents::default());
        assert!(d.wifi_start_allowed);
    }

    #[test]
    fn after_a_cold_boot_missing_acin_gets_the_unplug_time_before_battery_mode() {
        let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::PowerOn, None);
        let d = p.on_sample(350, &battery(4000), SupplyEvents::default());
        assert_eq!(d.mode, Mode::AlwaysOn);
        let d = p.on_sample(1350, &p1(100), SupplyEvents::default());
        assert_eq!(d.supply, SupplyClass::Strong);
        assert_eq!(p.counters().trips, 1, "the boot inrush tripped the port");
        let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::PowerOn, None);
        p.on_sample(350, &battery(4000), SupplyEvents::default());
        let d = p.on_sample(10_400, &battery(4000), SupplyEvents::default());
        assert_eq!(d.supply, SupplyClass::Absent);
        assert_eq!(p.counters().unplugs, 1);
    }

    #[test]
    fn short_acin_loss_is_a_trip_long_is_an_unplug() {
        let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::PowerOn, None);
        p.on_sample(0, &p1(100), SupplyEvents::default());
        // Came back before the sample: a trip; TX power steps down; WiFi gated on battery mV.
        let ev = SupplyEvents { acin_removed: true, acin_inserted: true, ..Default::default() };
        let mut low = p1(100);
        low.battery_mv = 3400;
        let d = p.on_sample(1000, &low, ev);
        assert_eq!(p.counters().trips, 1);
        assert_eq!(d.tx_dbm, 14);
        assert!(!d.wifi_start_allowed);
        // After the hold-off, no gate.
        let d = p.on_sample(62_000, &low, SupplyEvents::default());
        assert!(d.wifi_start_allowed);
        // Gone for longer than 10 s: an unplug.
        let ev = SupplyEvents { acin_removed: true, ..Default::default() };
        p.on_sample(70_000, &battery(4000), ev);
        p.on_sample(85_000, &battery(4000), SupplyEvents::default());
        assert_eq!(p.counters(), Counters { trips: 1, brownouts: 0, unplugs: 1, sags: 0 });
    }

    #[test]
    fn repeated_trips_make_a_tripping_supply_then_duty_cycle() {
        let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::PowerOn, None);
        let ev = SupplyEvents { acin_removed: true, acin_inserted: true, ..Default::default() };
        let mut d = p.on_sample(0, &p1(100), SupplyEvents::default());
        for i in 1..=3u64 {
            d = p.on_sample(i * 1000, &p1(100), ev);
        }
        assert_eq!(d.supply, SupplyClass::Tripping);
        assert_eq!(d.tx_dbm, 8);
        assert_eq!(d.mode, Mode::AlwaysOn);
        d = p.on_sample(4000, &p1(100), ev);
        assert_eq!(d.mode, Mode::DutyCycle { sleep_s: 60 });
        // An hour later the window is empty again.
        d = p.on_sample(4000 + 3_700_000, &p1(100), SupplyEvents::default());
        assert_eq!(d.supply, SupplyClass::Strong);
    }

    #[test]
    fn sagging_acin_is_limited_and_charging_pauses_for_any_radio() {
        let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::PowerOn, None);
        let mut s = p1(100);
        s.acin_mv = 4450;
        let d = p.on_sample(0, &s, SupplyEvents::default());
        assert_eq!(d.supply, SupplyClass::Limited);
        assert_eq!(d.mode, Mode::AlwaysOn);
        assert!(!p.radio_busy(RadioActivity::BleAdvertise).enabled);
        // Still limited for a while even when a sample looks fine.
        let d = p.on_sample(60_000, &p1(40), SupplyEvents::default());
        assert_eq!(d.supply, SupplyClass::Limited);
        // A short ACIN loss on a limited port is a sag, not a trip: TX power stays.
        let ev = SupplyEvents { acin_removed: true, acin_inserted: true, ..Default::default() };
        let d = p.on_sample(61_000, &p1(40), ev);
        assert_eq!((p.counters().trips, p.counters().sags, d.tx_dbm), (0, 1, 17));
    }

    #[test]
    fn ble_mode_never_allows_wifi() {
        let cfg = PowerConfig { transport: Transport::Ble, ..PowerConfig::default() };
        let mut p = PowerPolicy::new(cfg, BootCause::PowerOn, None);
        let d = p.on_sample(0, &p1(50), SupplyEvents::default());
        assert!(!d.wifi_enabled && !d.wifi_start_allowed && d.ble_enabled);
        let d = p.on_sample(1000, &battery(4200), SupplyEvents::default());
        assert!(!d.wifi_start_allowed);
    }

    #[test]
    fn counters_survive_the_data_buffer_and_count_brownouts() {
        let c = Counters { trips: 300, brownouts: 2, unplugs: 7, sags: 0 };
        assert_eq!(Counters::from_buffer(c.to_buffer()), Some(c));
        assert_eq!(Counters::from_buffer([0; 6]), None);
        let p = PowerPolicy::new(PowerConfig::default(), BootCause::BrownOut, Some(c));
        assert_eq!(p.counters().brownouts, 3);
    }

    #[test]
    fn battery_percent_table() {
        assert_eq!(PowerPolicy::battery_percent(2900), 0);
        assert_eq!(PowerPolicy::battery_percent(3650), 10);
        assert_eq!(PowerPolicy::battery_percent(3840), 60);
        assert_eq!(PowerPolicy::battery_percent(4110), 95);
        assert_eq!(PowerPolicy::battery_percent(4200), 100);
    }

    #[test]
    fn json_and_console_lines() {
        let mut p = PowerPolicy::new(PowerConfig::default(), BootCause::PowerOn, None);
        p.on_sample(5000, &p1(123), SupplyEvents::default());
        let mut b = Buf::new();
        p.write_json(&mut b).unwrap_or(());
        assert_eq!(
            b.as_str(),
            "{\"supply\":\"strong\",\"mode\":\"always_on\",\"transport\":\"wifi\",\"acin_present\":true,\
             \"acin_mv\":5050,\"acin_ma\":123,\"vbus_mv\":0,\"battery_mv\":4100,\"battery_ma\":60,\
             \"battery_pct\":93,\"temp_c\":41.2,\"charging\":true,\"charge_enabled\":true,\
             \"charge_ma\":100,\"tx_dbm\":17,\"wifi_gated\":false,\"trips\":0,\"brownouts\":0,\
             \"unplugs\":0,\"sags\":0}"
        );
        let mut b = Buf::new();
        p.write_console(5000, &mut b).unwrap_or(());
        assert_eq!(
            b.as_str(),
            "t=5000 ev=power supply=strong mode=always_on acin_mv=5050 acin_ma=123 bat_mv=4100 \
             bat_ma=60 bat_pct=93 charging=true charge_ma=100 tx_dbm=17 wifi_gated=false trips=0 \
             brownouts=0 unplugs=0 sags=0"
        );
    }
}
