//! The power model as the virtual M5StickC's AXP192: a [`LiveModel`] follows the firmware's load
//! state and a clock, and [`SharedAxp192`] is the I2C device the firmware's `firmware-axp192`
//! driver talks to. Each I2C transaction first advances the model to the clock's current time,
//! so the registers the firmware reads reflect everything that happened since.

use std::sync::{Arc, Mutex, MutexGuard};

use embedded_hal_async::i2c::{ErrorKind, ErrorType, I2c, Operation};

use super::axp192::I2cError;
use super::battery::BatteryParams;
use super::engine::{PowerSim, Stats, SupplyAction};
use super::load::{LoadParams, StateLoad};
use super::supply::SupplyKind;

/// What the firmware is doing (mirrors `firmware_app::seams::LoadState`, plus deep sleep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceLoad {
    /// Booting, radio off.
    Boot,
    /// Radio off, reading the meter.
    Idle,
    /// WiFi association + DHCP.
    WifiConnecting,
    /// Associated, modem sleep.
    WifiConnected,
    /// An MQTT burst.
    Transmitting,
    /// A BLE advertising event.
    BleAdvertising,
    /// ESP32 deep sleep after the AXP192 sleep setup.
    DeepSleep,
}

/// The model driven by a live firmware.
#[derive(Debug)]
pub struct LiveModel {
    sim: PowerSim,
    loads: LoadParams,
    state: DeviceLoad,
    since: f64,
    tx_dbm: i8,
}

impl LiveModel {
    /// A stick on `supply` with the battery at `soc` (0..=1), at virtual time 0.
    pub fn new(supply: SupplyKind, soc: f64) -> Self {
        Self {
            sim: PowerSim::new(supply, soc, BatteryParams::default()),
            loads: LoadParams::default(),
            state: DeviceLoad::Boot,
            since: 0.0,
            tx_dbm: 17,
        }
    }

    /// Sets the WiFi TX power the load model uses, dBm.
    pub fn set_tx_dbm(&mut self, dbm: i8) {
        self.tx_dbm = dbm;
    }

    fn load(&self) -> StateLoad {
        let l = &self.loads;
        let dr = l.data_request_ma;
        match self.state {
            DeviceLoad::Boot => l.boot(),
            DeviceLoad::Idle => l.cpu_idle().plus(dr),
            DeviceLoad::WifiConnecting => l.connect(self.tx_dbm).plus(dr),
            DeviceLoad::WifiConnected => l.modem_sleep().plus(dr),
            DeviceLoad::Transmitting => l.publish(self.tx_dbm).plus(dr),
            DeviceLoad::BleAdvertising => l.ble_event().0.plus(dr + l.ble_controller_ma),
            DeviceLoad::DeepSleep => l.deep_sleep(),
        }
    }

    /// Runs the model up to virtual time `t_s` with the current load (bursts in phase with the
    /// moment the state was entered). Time never runs backwards.
    pub fn advance_to(&mut self, t_s: f64) {
        let l = self.load();
        while self.sim.t < t_s - 1e-9 {
            let now = self.sim.t;
            let (cur, until) = match l.burst {
                None => (l.avg_ma, t_s),
                Some(b) => {
                    let phase = (now - self.since).rem_euclid(b.period_s);
                    let gap = (b.period_s - b.len_s).max(0.0);
                    if phase < gap {
                        (l.base_ma(), now + (gap - phase))
                    } else {
                        (b.peak_ma, now + (b.period_s - phase))
                    }
                }
            };
            let dt = (until.min(t_s) - now).max(1e-9);
            if !self.sim.step(cur, dt) && !self.sim.wait_for_power(t_s) {
                return;
            }
        }
    }

    /// Changes the load state at virtual time `t_s` (advancing to it first).
    pub fn set_state(&mut self, t_s: f64, state: DeviceLoad) {
        self.advance_to(t_s);
        if state != self.state {
            self.state = state;
            self.since = self.sim.t;
        }
    }

    /// Applies a supply event now (`supply unplug` / `supply plug` on the virtual device's stdin).
    pub fn supply_event(&mut self, t_s: f64, action: SupplyAction) {
        self.advance_to(t_s);
        let t = self.sim.t;
        match action {
            SupplyAction::Unplug => self.sim.supply.set_plugged(false),
            SupplyAction::Plug => self.sim.supply.set_plugged(true),
            SupplyAction::Supply(k) => self.sim.supply.set_kind(k),
            SupplyAction::Brownout(d) => self.sim.supply.brownout(t, d),
            SupplyAction::Trip => self.sim.supply.force_trip(t),
            SupplyAction::Usb(on) => self.sim.usb = on,
        }
    }

    /// The stick is powered (false after a brown-out until ACIN returns).
    pub fn powered(&self) -> bool {
        self.sim.powered()
    }

    /// Battery state of charge, 0..=1.
    pub fn soc(&self) -> f64 {
        self.sim.battery.soc
    }

    /// Meter trips so far.
    pub fn trips(&self) -> u32 {
        self.sim.supply.trips
    }

    /// Electrical totals so far.
    pub fn stats(&self) -> Stats {
        self.sim.stats
    }

    /// The engine (for inspection).
    pub fn sim(&self) -> &PowerSim {
        &self.sim
    }
}

type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The virtual M5StickC's AXP192: a shared [`LiveModel`] plus the clock that says what time it is
/// (virtual seconds since the model's start). Clones share the model.
#[derive(Clone)]
pub struct SharedAxp192 {
    model: Arc<Mutex<LiveModel>>,
    clock: Clock,
}

impl std::fmt::Debug for SharedAxp192 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedAxp192").finish_non_exhaustive()
    }
}

impl SharedAxp192 {
    /// Wraps `model`; `clock` returns the current virtual time in seconds.
    pub fn new(model: LiveModel, clock: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        Self { model: Arc::new(Mutex::new(model)), clock: Arc::new(clock) }
    }

    /// Locks the model after advancing it to now. A poisoned lock is recovered: the model holds
    /// plain numbers, and a panicked holder cannot leave it half-updated in a way that matters.
    pub fn lock(&self) -> MutexGuard<'_, LiveModel> {
        let mut g = self.model.lock().unwrap_or_else(|p| p.into_inner());
        g.advance_to((self.clock)());
        g
    }

    /// Tells the model the firmware's new load state.
    pub fn set_state(&self, state: DeviceLoad) {
        let now = (self.clock)();
        self.lock().set_state(now, state);
    }

    /// Applies a supply event now.
    pub fn supply_event(&self, action: SupplyAction) {
        let now = (self.clock)();
        self.lock().supply_event(now, action);
    }
}

impl ErrorType for SharedAxp192 {
    type Error = I2cError;
}

impl I2c for SharedAxp192 {
    async fn transaction(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), Self::Error> {
        let mut g = self.lock();
        if !g.sim.powered() {
            return Err(I2cError(ErrorKind::Bus));
        }
        g.sim.axp.transact(address, operations)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use firmware_axp192 as drv;

    use super::*;

    fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn the_driver_reads_the_live_model_as_time_passes() {
        let ms = Arc::new(AtomicU64::new(0));
        let clock = {
            let ms = ms.clone();
            move || ms.load(Ordering::SeqCst) as f64 / 1000.0
        };
        let axp = SharedAxp192::new(LiveModel::new(SupplyKind::Dsmr5, 0.5), clock);
        let mut d = drv::Axp192::new(axp.clone());
        ready(d.init(&drv::Config::headless())).unwrap_or_else(|e| panic!("{e}"));
        axp.set_state(DeviceLoad::WifiConnected);
        ms.store(60_000, Ordering::SeqCst);
        let m = ready(d.measurements()).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.power_status.acin_usable && m.charge_status.charging);
        // 100 mA charging + about 35 mA of modem-sleep load at 5 V.
        let acin = m.acin_current.milliamps();
        assert!((110..=160).contains(&acin), "{acin} mA");
        assert!(m.battery_charge_current.milliamps() >= 95);
        // Unplug: the battery takes over; the driver sees ACIN gone and the IRQ latched.
        axp.supply_event(SupplyAction::Unplug);
        ms.store(61_000, Ordering::SeqCst);
        let m = ready(d.measurements()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!m.power_status.acin_present);
        assert!(m.battery_discharge_current.milliamps() > 30);
        assert!(ready(d.take_irqs()).map(|i| i.acin_removed).unwrap_or(false));
        assert!(axp.lock().soc() > 0.5 + 0.9 * 100.0 / 60.0 / 80.0);
    }
}
