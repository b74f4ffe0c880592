//! The virtual firmware that loads the model: the user's seed loop, or the gateway in always-on /
//! BLE / both modes, with the firmware's own AXP192 driver (`firmware-axp192`) and power policy
//! (`firmware_app::power_policy`) talking to the emulated AXP192 over I2C.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use firmware_app::config::Transport;
use firmware_app::power_policy::{
    BootCause, ChargeCommand, Counters, Mode, PowerConfig, PowerPolicy, RadioActivity, SupplyEvents,
};
use firmware_app::seams::PowerSample;
use firmware_axp192 as drv;

use super::axp192::Axp192 as Emulator;
use super::battery::BatteryParams;
use super::engine::{PowerSim, Stats, SupplyAction, TracePoint};
use super::load::{LoadParams, StateLoad};
use super::supply::SupplyKind;

/// What the stick runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadProfile {
    /// The user's test program: boot, WiFi (DHCP), MQTT connect + publish battery stats, deep
    /// sleep for `--cycle`; no policy.
    SeedLoop,
    /// The gateway over WiFi: modem sleep, one MQTT publish per `--interval` (1 Hz).
    #[value(alias = "wifi")]
    AlwaysOn,
    /// The gateway over BLE only: one BTHome advertising event per `--interval`, WiFi never on.
    #[value(alias = "ble")]
    BleOnly,
    /// The gateway over WiFi and BLE.
    Both,
}

impl LoadProfile {
    /// The gateway transport this profile uses (None for the seed loop).
    pub fn transport(self) -> Option<Transport> {
        match self {
            LoadProfile::SeedLoop => None,
            LoadProfile::AlwaysOn => Some(Transport::Wifi),
            LoadProfile::BleOnly => Some(Transport::Ble),
            LoadProfile::Both => Some(Transport::Both),
        }
    }
}

/// A run's inputs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The P1 port.
    pub supply: SupplyKind,
    /// Charge current asked of the AXP192, mA (0: charging off).
    pub charge_ma: u16,
    /// Firmware load.
    pub load: LoadProfile,
    /// Deep-sleep time per seed-loop cycle, s.
    pub cycle_s: f64,
    /// Publish / advertising interval of the gateway, s.
    pub interval_s: f64,
    /// Simulated time, s.
    pub duration_s: f64,
    /// Gateway: apply the firmware power policy (else fixed settings: always-on, charging at
    /// `charge_ma` throughout, TX at `tx_dbm`).
    pub policy: bool,
    /// Policy tunables (its transport is taken from `load`).
    pub policy_config: PowerConfig,
    /// LCD on while awake.
    pub lcd: bool,
    /// WiFi with a static IP (0.73 s connect) instead of DHCP (1.6 s).
    pub static_ip: bool,
    /// WiFi TX power without the policy, dBm (Arduino default ≈ 20).
    pub tx_dbm: i8,
    /// Battery state of charge at the start, 0..=1.
    pub soc_start: f64,
    /// Battery parameters.
    pub battery: BatteryParams,
    /// Load parameters.
    pub loads: LoadParams,
    /// Scripted supply events (time s, action).
    pub events: Vec<(f64, SupplyAction)>,
    /// Trace bucket, s.
    pub trace_step_s: f64,
    /// ADC noise amplitude, LSB (0: exact codes).
    pub adc_noise_lsb: u16,
    /// Seed for the ADC noise.
    pub seed: u64,
    /// Keep every policy console line (else only the last).
    pub keep_console: bool,
}

impl RunConfig {
    /// Defaults for a profile on a supply.
    pub fn new(supply: SupplyKind, load: LoadProfile) -> Self {
        Self {
            supply,
            charge_ma: 100,
            load,
            cycle_s: 10.0,
            interval_s: 1.0,
            duration_s: 24.0 * 3600.0,
            policy: load != LoadProfile::SeedLoop,
            policy_config: PowerConfig::default(),
            lcd: false,
            static_ip: false,
            tx_dbm: 20,
            soc_start: 1.0,
            battery: BatteryParams::default(),
            loads: LoadParams::default(),
            events: Vec::new(),
            trace_step_s: 60.0,
            adc_noise_lsb: 2,
            seed: 1,
            keep_console: false,
        }
    }
}

/// A run's outputs.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Electrical totals.
    pub stats: Stats,
    /// Downsampled trace.
    pub trace: Vec<TracePoint>,
    /// SoC at the end, 0..=1.
    pub soc_end: f64,
    /// MQTT publishes that went out.
    pub publishes: u64,
    /// BLE advertising events.
    pub adverts: u64,
    /// WiFi connects.
    pub wifi_connects: u64,
    /// ESP32 boots (power-on, brown-out recovery, deep-sleep wakes).
    pub boots: u64,
    /// Time in always-on mode, s.
    pub always_on_s: f64,
    /// Time in duty-cycle mode (awake and asleep), s.
    pub duty_cycle_s: f64,
    /// The policy's counters at the end.
    pub counters: Option<Counters>,
    /// The last `<prefix>/<device>/power` JSON.
    pub power_json: Option<String>,
    /// Policy console lines (all with `keep_console`, else the last one).
    pub console: Vec<String>,
    /// Driver errors seen (I2C to a powered-off chip).
    pub driver_errors: u64,
    /// Meter over-current trips.
    pub trips: u32,
}

/// Drives an async call to completion: the emulator never waits, so one poll suffices.
fn ready<T>(f: impl Future<Output = T>) -> T {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

struct Fw<'c> {
    sim: PowerSim,
    cfg: &'c RunConfig,
    res: RunResult,
    applied: Option<ChargeCommand>,
}

enum Exit {
    Died,
    Sleep,
    Done,
}

impl Fw<'_> {
    fn done(&self) -> bool {
        self.sim.t >= self.cfg.duration_s - 1e-9
    }

    fn drv(&mut self) -> drv::Axp192<&mut Emulator> {
        drv::Axp192::new(&mut self.sim.axp)
    }

    /// Runs a state for `dur` (clipped to the run's end), bursts stepped one by one.
    fn run(&mut self, l: StateLoad, dur: f64) -> bool {
        let dur = dur.min(self.cfg.duration_s - self.sim.t).max(0.0);
        match l.burst {
            None => self.sim.step(l.avg_ma, dur),
            Some(b) => {
                let base = l.base_ma();
                let mut left = dur;
                while left > 1e-12 {
                    let gap = (b.period_s - b.len_s).max(0.0).min(left);
                    if gap > 0.0 && !self.sim.step(base, gap) {
                        return false;
                    }
                    left -= gap;
                    let bl = b.len_s.min(left);
                    if bl > 0.0 && !self.sim.step(b.peak_ma, bl) {
                        return false;
                    }
                    left -= bl;
                }
                true
            }
        }
    }

    fn init_axp(&mut self) -> bool {
        let charge_ma = self.cfg.charge_ma;
        let config = drv::Config {
            charge_current: drv::ChargeCurrent::at_most(charge_ma),
            charging: charge_ma > 0,
            headless: !self.cfg.lcd,
            ..drv::Config::headless()
        };
        self.applied = None;
        let ok = ready(self.drv().init(&config)).is_ok();
        if !ok {
            self.res.driver_errors += 1;
        }
        ok
    }

    fn apply_charge(&mut self, c: ChargeCommand) {
        if self.applied == Some(c) {
            return;
        }
        let ctrl = drv::ChargeControl {
            enabled: c.enabled && c.ma > 0,
            target: drv::ChargeTarget::V4_20,
            current: drv::ChargeCurrent::at_most(c.ma),
            end_at_15_percent: false,
        };
        if ready(self.drv().write_charge_control(ctrl)).is_ok() {
            self.applied = Some(c);
        } else {
            self.res.driver_errors += 1;
        }
    }

    fn connect_load(&self, dbm: i8) -> (StateLoad, f64) {
        let l = &self.cfg.loads;
        let dur = if self.cfg.static_ip { l.connect_static_s } else { l.connect_dhcp_s };
        (l.connect(dbm), dur)
    }

    /// The user's program, one wake cycle.
    fn seed_cycle(&mut self) -> Exit {
        let l = self.cfg.loads;
        let (connect, dur) = self.connect_load(self.cfg.tx_dbm);
        if !self.run(connect, dur) || !self.run(l.mqtt(self.cfg.tx_dbm), l.mqtt_s) {
            return Exit::Died;
        }
        self.res.wifi_connects += 1;
        // "publish battery stats": the program reads the AXP192.
        if ready(self.drv().measurements()).is_err() {
            self.res.driver_errors += 1;
        }
        self.res.publishes += 1;
        if ready(self.drv().prepare_sleep()).is_err() {
            self.res.driver_errors += 1;
        }
        let t0 = self.sim.t;
        let ok = self.run(l.deep_sleep(), self.cfg.cycle_s);
        self.res.duty_cycle_s += self.sim.t - t0;
        if !ok {
            return Exit::Died;
        }
        if self.done() { Exit::Done } else { Exit::Sleep }
    }

    fn sample(&mut self) -> Option<(PowerSample, SupplyEvents)> {
        let m = ready(self.drv().measurements());
        let irq = ready(self.drv().take_irqs());
        let (Ok(m), Ok(irq)) = (m, irq) else {
            self.res.driver_errors += 1;
            return None;
        };
        let ma = |u: drv::Microamps| u16::try_from(u.milliamps()).unwrap_or(u16::MAX);
        let mv = |v: drv::Millivolts| u16::try_from(v.millivolts()).unwrap_or(u16::MAX);
        Some((
            PowerSample {
                acin_mv: mv(m.acin_voltage),
                acin_ma: ma(m.acin_current),
                vbus_mv: mv(m.vbus_voltage),
                battery_mv: mv(m.battery_voltage),
                charge_ma: ma(m.battery_charge_current),
                discharge_ma: ma(m.battery_discharge_current),
                temp_dc: m.temperature.0,
                acin_present: m.power_status.acin_usable,
                charging: m.charge_status.charging,
            },
            SupplyEvents {
                acin_removed: irq.acin_removed,
                acin_inserted: irq.acin_inserted,
                charge_starved: m.charge_status.charge_current_below_set,
            },
        ))
    }

    fn busy(&mut self, pol: &mut Option<PowerPolicy>, a: RadioActivity) {
        if let Some(p) = pol.as_mut() {
            let c = p.radio_busy(a);
            self.apply_charge(c);
        }
    }

    fn idle(&mut self, pol: &mut Option<PowerPolicy>) {
        if let Some(p) = pol.as_mut() {
            let c = p.radio_idle();
            self.apply_charge(c);
        }
    }

    fn record(&mut self, pol: &PowerPolicy) {
        let now = (self.sim.t * 1000.0) as u64;
        let mut line = String::new();
        if pol.write_console(now, &mut line).is_ok() {
            if !self.cfg.keep_console {
                self.res.console.clear();
            }
            self.res.console.push(line);
        }
        let mut json = String::new();
        if pol.write_json(&mut json).is_ok() {
            self.res.power_json = Some(json);
        }
        self.res.counters = Some(pol.counters());
    }

    /// The gateway from boot until it sleeps, dies or the run ends.
    fn gateway(&mut self, boot: BootCause) -> Exit {
        let transport = self.cfg.load.transport().unwrap_or(Transport::Wifi);
        let l = self.cfg.loads;
        let mut pol = if self.cfg.policy {
            let persisted = ready(self.drv().read_data_buffer()).ok().and_then(Counters::from_buffer);
            let pc = PowerConfig { transport, ..self.cfg.policy_config };
            Some(PowerPolicy::new(pc, boot, persisted))
        } else {
            self.apply_charge(ChargeCommand { enabled: self.cfg.charge_ma > 0, ma: self.cfg.charge_ma });
            None
        };
        let mut wifi_up = false;
        let mut next_pub = self.sim.t;
        let mut next_adv = self.sim.t;
        let mut last_record = f64::NEG_INFINITY;
        let mut persisted = None;
        loop {
            if self.done() {
                if let Some(p) = &pol {
                    self.record(p);
                }
                return Exit::Done;
            }
            let tick_start = self.sim.t;
            let (mode, tx, wifi_en, wifi_ok, ble_en) = match pol.as_mut() {
                Some(p) => {
                    let Some((s, ev)) = self.sample() else { return Exit::Died };
                    let d = p.on_sample((tick_start * 1000.0) as u64, &s, ev);
                    self.apply_charge(d.charge);
                    let c = p.counters();
                    if persisted != Some(c) && ready(self.drv().write_data_buffer(&c.to_buffer())).is_ok() {
                        persisted = Some(c);
                    }
                    if tick_start - last_record >= 10.0 {
                        let pc = p.clone();
                        self.record(&pc);
                        last_record = tick_start;
                    }
                    (d.mode, d.tx_dbm, d.wifi_enabled, d.wifi_start_allowed, d.ble_enabled)
                }
                None => (Mode::AlwaysOn, self.cfg.tx_dbm, transport.uses_wifi(), true, transport.uses_ble()),
            };
            let extra = l.data_request_ma + if ble_en { l.ble_controller_ma } else { 0.0 };
            match mode {
                Mode::AlwaysOn => {
                    if wifi_en && !wifi_up && wifi_ok {
                        self.busy(&mut pol, RadioActivity::WifiConnect);
                        let (connect, dur) = self.connect_load(tx);
                        let ok = self.run(connect.plus(extra), dur) && self.run(l.mqtt(tx).plus(extra), l.mqtt_s);
                        self.idle(&mut pol);
                        if !ok {
                            return Exit::Died;
                        }
                        wifi_up = true;
                        self.res.wifi_connects += 1;
                        next_pub = next_pub.max(self.sim.t);
                    }
                    let tick_end = tick_start + 1.0;
                    while self.sim.t < tick_end - 1e-9 && !self.done() {
                        if wifi_up && self.sim.t >= next_pub - 1e-9 {
                            self.busy(&mut pol, RadioActivity::WifiTx);
                            let ok = self.run(l.publish(tx).plus(extra), l.publish_s);
                            self.idle(&mut pol);
                            if !ok {
                                return Exit::Died;
                            }
                            self.res.publishes += 1;
                            next_pub += self.cfg.interval_s;
                        }
                        if ble_en && self.sim.t >= next_adv - 1e-9 {
                            self.busy(&mut pol, RadioActivity::BleAdvertise);
                            let (ev, len) = l.ble_event();
                            let ok = self.run(ev.plus(extra), len);
                            self.idle(&mut pol);
                            if !ok {
                                return Exit::Died;
                            }
                            self.res.adverts += 1;
                            next_adv += self.cfg.interval_s;
                        }
                        let mut next = tick_end;
                        if wifi_up {
                            next = next.min(next_pub);
                        }
                        if ble_en {
                            next = next.min(next_adv);
                        }
                        let idle = if wifi_up { l.modem_sleep() } else { l.cpu_idle() };
                        let dt = (next - self.sim.t).max(0.0);
                        if dt > 0.0 && !self.run(idle.plus(extra), dt) {
                            return Exit::Died;
                        }
                    }
                    self.res.always_on_s += self.sim.t - tick_start;
                }
                Mode::DutyCycle { sleep_s } => {
                    let ok = self.run(l.cpu_idle().plus(l.data_request_ma), l.read_telegram_s);
                    if !ok {
                        return Exit::Died;
                    }
                    if wifi_en && wifi_ok {
                        self.busy(&mut pol, RadioActivity::WifiConnect);
                        let (connect, dur) = self.connect_load(tx);
                        let ok = self.run(connect, dur) && self.run(l.mqtt(tx), l.mqtt_s);
                        self.idle(&mut pol);
                        if !ok {
                            return Exit::Died;
                        }
                        self.res.wifi_connects += 1;
                        self.res.publishes += 1;
                    }
                    if ble_en {
                        let (ev, len) = l.ble_event();
                        if !self.run(ev.plus(l.ble_controller_ma), len) {
                            return Exit::Died;
                        }
                        self.res.adverts += 1;
                    }
                    if let Some(p) = &pol {
                        let p = p.clone();
                        self.record(&p);
                        let _ = ready(self.drv().write_data_buffer(&p.counters().to_buffer()));
                    }
                    if ready(self.drv().prepare_sleep()).is_err() {
                        self.res.driver_errors += 1;
                    }
                    let ok = self.run(l.deep_sleep(), f64::from(sleep_s));
                    self.res.duty_cycle_s += self.sim.t - tick_start;
                    if !ok {
                        return Exit::Died;
                    }
                    return if self.done() { Exit::Done } else { Exit::Sleep };
                }
            }
        }
    }
}

/// Runs the model for `cfg.duration_s` of virtual time.
pub fn run(cfg: &RunConfig) -> RunResult {
    let mut sim = PowerSim::new(cfg.supply, cfg.soc_start, cfg.battery)
        .with_events(cfg.events.clone())
        .with_trace_step(cfg.trace_step_s);
    sim.axp = Emulator::new().with_noise(cfg.adc_noise_lsb, cfg.seed);
    let mut fw = Fw {
        sim,
        cfg,
        res: RunResult {
            stats: Stats::default(),
            trace: Vec::new(),
            soc_end: cfg.soc_start,
            publishes: 0,
            adverts: 0,
            wifi_connects: 0,
            boots: 0,
            always_on_s: 0.0,
            duty_cycle_s: 0.0,
            counters: None,
            power_json: None,
            console: Vec::new(),
            driver_errors: 0,
            trips: 0,
        },
        applied: None,
    };
    let mut cause = BootCause::PowerOn;
    while !fw.done() {
        if !fw.sim.powered() {
            if !fw.sim.wait_for_power(cfg.duration_s) {
                break;
            }
            cause = BootCause::BrownOut;
        }
        fw.res.boots += 1;
        if !fw.run(cfg.loads.boot(), cfg.loads.boot_s) {
            continue;
        }
        if !fw.init_axp() {
            continue;
        }
        let exit = match cfg.load {
            LoadProfile::SeedLoop => fw.seed_cycle(),
            _ => fw.gateway(cause),
        };
        match exit {
            Exit::Died | Exit::Done => {}
            Exit::Sleep => cause = BootCause::DeepSleepWake,
        }
    }
    // Close the trace at the end of the run.
    let mut res = fw.res;
    res.soc_end = fw.sim.battery.soc;
    res.trips = fw.sim.supply.trips;
    res.stats = fw.sim.stats;
    res.trace = fw.sim.trace().to_vec();
    res
}
