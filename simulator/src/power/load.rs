//! Device load per firmware state: the current on the 3.3 V rail (DCDC1), averages and peaks.
//!
//! Numbers from power.md §3–4 and §7.3. A state is an average current plus optional periodic
//! bursts (TX or RX) at a peak current; the base between bursts is chosen so the average holds.
//! Trips are decided on the bursts, so they are stepped explicitly, never averaged away.

/// A periodic burst inside a state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Current during the burst, mA on 3.3 V.
    pub peak_ma: f64,
    /// Burst length, s.
    pub len_s: f64,
    /// Burst period, s.
    pub period_s: f64,
}

/// The load of one firmware state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateLoad {
    /// Average current, mA on 3.3 V (including the bursts).
    pub avg_ma: f64,
    /// Bursts, if any.
    pub burst: Option<Burst>,
}

impl StateLoad {
    /// A flat load.
    pub const fn flat(avg_ma: f64) -> Self {
        Self { avg_ma, burst: None }
    }

    /// The current between bursts, mA.
    pub fn base_ma(&self) -> f64 {
        match self.burst {
            Some(b) if b.period_s > b.len_s => {
                ((self.avg_ma * b.period_s - b.peak_ma * b.len_s) / (b.period_s - b.len_s)).max(0.0)
            }
            _ => self.avg_ma,
        }
    }

    /// The highest current in the state, mA.
    pub fn peak_ma(&self) -> f64 {
        self.burst.map_or(self.avg_ma, |b| b.peak_ma.max(self.avg_ma))
    }

    /// Adds a constant current (e.g. the data-request opto-coupler LED).
    pub fn plus(mut self, ma: f64) -> Self {
        self.avg_ma += ma;
        if let Some(b) = self.burst.as_mut() {
            b.peak_ma += ma;
        }
        self
    }
}

/// ESP32 WiFi TX peak on 3.3 V against TX power, 802.11b bursts (power.md §3.1: 368 mA peak at
/// ~20 dBm, 120 mA at 0 dBm, 160–260 mA across 13–21 dBm; the curve between is [inferred]).
pub fn wifi_tx_peak_ma(dbm: i8) -> f64 {
    const PTS: [(f64, f64); 5] = [(0.0, 130.0), (8.0, 170.0), (13.0, 210.0), (17.0, 280.0), (20.0, 368.0)];
    let x = f64::from(dbm).clamp(0.0, 20.0);
    for w in PTS.windows(2) {
        if let [(x0, y0), (x1, y1)] = *w
            && x <= x1
        {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    368.0
}

/// Load parameters for the firmware states. Defaults reproduce power.md's scenario B.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadParams {
    /// Boot (ROM, bootloader, init up to WiFi start): duration s, average mA.
    pub boot_s: f64,
    /// Boot average, mA.
    pub boot_ma: f64,
    /// WiFi connect with DHCP: duration s (GLENN20: 1626 ms at ~126 mA).
    pub connect_dhcp_s: f64,
    /// WiFi connect with a static IP: duration s (GLENN20: 734 ms at ~137 mA).
    pub connect_static_s: f64,
    /// WiFi connect average, mA.
    pub connect_ma: f64,
    /// MQTT connect + publish + disconnect: duration s, average mA.
    pub mqtt_s: f64,
    /// MQTT average, mA.
    pub mqtt_ma: f64,
    /// Gap between TX bursts while connecting / in MQTT, s.
    pub tx_burst_period_s: f64,
    /// TX burst length (1 Mbps management frames), s.
    pub tx_burst_s: f64,
    /// Deep sleep after `prepare_sleep`, 3.3 V rail, mA (with AXP192 quiescent: 2–3 mA total).
    pub deep_sleep_ma: f64,
    /// Modem sleep connected (DTIM1, 160 MHz) average, mA (IDF-SLEEP: 31.1 mA).
    pub modem_sleep_ma: f64,
    /// Beacon RX burst in modem sleep: current, mA.
    pub beacon_ma: f64,
    /// Beacon RX burst length, s.
    pub beacon_s: f64,
    /// Beacon interval, s (102.4 ms, DTIM1).
    pub beacon_period_s: f64,
    /// One MQTT publish on an open connection: awake window, s.
    pub publish_s: f64,
    /// Publish window current, mA (RX/awake).
    pub publish_ma: f64,
    /// TX bursts per publish.
    pub publish_tx_bursts: u32,
    /// Radio off, CPU idle at 160 MHz, mA (BLE mode base).
    pub cpu_idle_ma: f64,
    /// BLE controller overhead while advertising is enabled, mA [inferred from LANGSHIP-3].
    pub ble_controller_ma: f64,
    /// BLE TX current (0 dBm), mA (ESP32 datasheet: 130 mA).
    pub ble_tx_ma: f64,
    /// TX time per advertising channel (31-byte legacy PDU at 1 Mbps ≈ 0.38 ms), s.
    pub ble_tx_s: f64,
    /// Channels per advertising event.
    pub ble_channels: u32,
    /// Radio wake-up/turnaround per advertising event at `ble_wake_ma`, s.
    pub ble_wake_s: f64,
    /// Radio wake-up current, mA.
    pub ble_wake_ma: f64,
    /// Data-request opto-coupler LED on G26 via 220 Ω, mA, while the meter is read.
    pub data_request_ma: f64,
    /// Reading one telegram in duty-cycle mode (DSMR 5 sends every second): awake, s.
    pub read_telegram_s: f64,
}

impl Default for LoadParams {
    fn default() -> Self {
        Self {
            boot_s: 0.35,
            boot_ma: 50.0,
            connect_dhcp_s: 1.6,
            connect_static_s: 0.73,
            connect_ma: 125.0,
            mqtt_s: 0.3,
            mqtt_ma: 125.0,
            tx_burst_period_s: 0.05,
            tx_burst_s: 0.001,
            deep_sleep_ma: 1.0,
            modem_sleep_ma: 31.1,
            beacon_ma: 110.0,
            beacon_s: 0.003,
            beacon_period_s: 0.1024,
            publish_s: 0.02,
            publish_ma: 100.0,
            publish_tx_bursts: 2,
            cpu_idle_ma: 27.0,
            ble_controller_ma: 2.0,
            ble_tx_ma: 130.0,
            ble_tx_s: 0.00038,
            ble_channels: 3,
            ble_wake_s: 0.0015,
            ble_wake_ma: 60.0,
            data_request_ma: 9.5,
            read_telegram_s: 1.0,
        }
    }
}

impl LoadParams {
    /// Boot.
    pub fn boot(&self) -> StateLoad {
        StateLoad::flat(self.boot_ma)
    }
    /// WiFi connect at `dbm`.
    pub fn connect(&self, dbm: i8) -> StateLoad {
        StateLoad {
            avg_ma: self.connect_ma,
            burst: Some(Burst {
                peak_ma: wifi_tx_peak_ma(dbm),
                len_s: self.tx_burst_s,
                period_s: self.tx_burst_period_s,
            }),
        }
    }
    /// MQTT session at `dbm`.
    pub fn mqtt(&self, dbm: i8) -> StateLoad {
        StateLoad {
            avg_ma: self.mqtt_ma,
            burst: Some(Burst {
                peak_ma: wifi_tx_peak_ma(dbm),
                len_s: self.tx_burst_s,
                period_s: self.tx_burst_period_s,
            }),
        }
    }
    /// Deep sleep.
    pub fn deep_sleep(&self) -> StateLoad {
        StateLoad::flat(self.deep_sleep_ma)
    }
    /// Connected, modem sleep, between publishes.
    pub fn modem_sleep(&self) -> StateLoad {
        StateLoad {
            avg_ma: self.modem_sleep_ma,
            burst: Some(Burst {
                peak_ma: self.beacon_ma,
                len_s: self.beacon_s,
                period_s: self.beacon_period_s,
            }),
        }
    }
    /// Radio off, CPU idle (reading the meter).
    pub fn cpu_idle(&self) -> StateLoad {
        StateLoad::flat(self.cpu_idle_ma)
    }
    /// One MQTT publish window at `dbm`: `publish_tx_bursts` TX bursts spread over the window.
    pub fn publish(&self, dbm: i8) -> StateLoad {
        let n = f64::from(self.publish_tx_bursts.max(1));
        let peak = wifi_tx_peak_ma(dbm);
        StateLoad {
            avg_ma: (self.publish_ma * (self.publish_s - n * self.tx_burst_s) + peak * n * self.tx_burst_s)
                / self.publish_s,
            burst: Some(Burst { peak_ma: peak, len_s: self.tx_burst_s, period_s: self.publish_s / n }),
        }
    }
    /// One BLE advertising event (wake + TX on each channel), as a state of its own length.
    pub fn ble_event(&self) -> (StateLoad, f64) {
        let n = f64::from(self.ble_channels.max(1));
        let tx = n * self.ble_tx_s;
        let len = tx + self.ble_wake_s;
        let avg = (self.ble_tx_ma * tx + self.ble_wake_ma * self.ble_wake_s) / len;
        (
            StateLoad {
                avg_ma: avg,
                burst: Some(Burst { peak_ma: self.ble_tx_ma, len_s: self.ble_tx_s, period_s: len / n }),
            },
            len,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_keeps_the_average() {
        let l = LoadParams::default().connect(20);
        let b = l.burst.unwrap_or(Burst { peak_ma: 0.0, len_s: 0.0, period_s: 1.0 });
        let avg = (l.base_ma() * (b.period_s - b.len_s) + b.peak_ma * b.len_s) / b.period_s;
        assert!((avg - 125.0).abs() < 1e-9);
        assert!((l.peak_ma() - 368.0).abs() < 1e-9);
    }

    #[test]
    fn tx_peak_curve_is_monotonic() {
        let mut last = 0.0;
        for dbm in 0..=20 {
            let p = wifi_tx_peak_ma(dbm);
            assert!(p >= last);
            last = p;
        }
        assert!((wifi_tx_peak_ma(20) - 368.0).abs() < 1e-9);
    }
}
