//! esp-hal implementations of `firmware-app`'s board seams that need no radio: clock, console,
//! system facts and the AXP192 power monitor.

use embassy_time::{Instant, Timer};
use embedded_hal_async::i2c::{ErrorKind, NoAcknowledgeSource};
use esp_hal::Async;
use esp_hal::i2c::master::I2c;
use firmware_app::power_policy::SupplyEvents;
use firmware_app::seams::{Clock, Console, PowerError, PowerMonitor, PowerSample, SystemInfo};
use firmware_axp192::{Axp192, Config as AxpConfig, Error as AxpError};

/// embassy-time, driven by esp-rtos's timer: milliseconds since boot.
#[derive(Debug, Clone, Copy, Default)]
pub struct EspClock;

impl Clock for EspClock {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        // Clamped so the tick conversion cannot overflow on "never" (u64::MAX): 584 years.
        Timer::at(Instant::from_millis(deadline_ms.min(u64::MAX / 1_000_000))).await
    }
}

/// The console UART (UART0 through the USB bridge on the M5StickC; USB-Serial-JTAG or UART0 on
/// an ESP32-C3 board), through esp-println.
#[derive(Debug, Clone, Copy, Default)]
pub struct EspConsole;

impl Console for EspConsole {
    fn line(&mut self, line: &str) {
        esp_println::println!("{line}");
    }
}

/// Heap statistics from esp-alloc and the chip's reset reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct EspSystem;

impl SystemInfo for EspSystem {
    fn free_heap_bytes(&self) -> Option<u32> {
        Some(u32::try_from(esp_alloc::HEAP.free()).unwrap_or(u32::MAX))
    }

    fn reset_reason(&self) -> &'static str {
        reset_reason()
    }
}

/// The last reset's cause as a short stable word.
pub fn reset_reason() -> &'static str {
    use esp_hal::rtc_cntl::SocResetReason as R;
    match esp_hal::system::reset_reason() {
        Some(R::ChipPowerOn) => "power_on",
        Some(R::SysBrownOut) => "brownout",
        Some(R::CoreDeepSleep) => "deep_sleep",
        Some(R::CoreSw | R::Cpu0Sw) => "software",
        Some(R::CoreMwdt0 | R::CoreMwdt1 | R::CoreRtcWdt | R::Cpu0RtcWdt | R::SysRtcWdt) => "watchdog",
        #[cfg(feature = "esp32")]
        Some(R::CpuMwdt0) => "watchdog",
        #[cfg(feature = "esp32c3")]
        Some(R::Cpu0Mwdt0 | R::Cpu0Mwdt1 | R::SysSuperWdt) => "watchdog",
        Some(_) => "other",
        None => "unknown",
    }
}

/// The AXP192 on the board's I2C bus, through `firmware-axp192`.
///
/// The chip is set up (headless: LCD backlight LDO2 and LCD logic LDO3 off, 100 mA charging to
/// 4.2 V, ADCs on) on the first successful contact. A bus where nobody acknowledges the address
/// (an ESP32-C3 board, or a stick whose PMIC does not answer) reports [`PowerError::Absent`];
/// other bus failures report [`PowerError::I2c`] and are retried on the next sample.
///
/// The power policy's WiFi TX power goes to the radio through [`crate::net::set_tx_power_dbm`].
pub struct Axp192Monitor {
    axp: Axp192<I2c<'static, Async>>,
    ready: bool,
    /// The last sample saw the charger unable to reach its set current (the supply sagging).
    charge_starved: bool,
}

impl Axp192Monitor {
    pub fn new(i2c: I2c<'static, Async>) -> Self {
        Self { axp: Axp192::new(i2c), ready: false, charge_starved: false }
    }

    /// Applies the gateway's AXP192 settings; switches the display off.
    pub async fn init(&mut self) -> Result<(), PowerError> {
        self.axp.init(&AxpConfig::headless()).await.map_err(power_error)?;
        self.ready = true;
        Ok(())
    }
}

fn power_error(e: AxpError) -> PowerError {
    match e {
        AxpError::I2c(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address | NoAcknowledgeSource::Unknown)) => {
            PowerError::Absent
        }
        AxpError::WrongChip(_) => PowerError::Absent,
        _ => PowerError::I2c,
    }
}

impl PowerMonitor for Axp192Monitor {
    async fn sample(&mut self) -> Result<PowerSample, PowerError> {
        if !self.ready {
            self.init().await?;
        }
        let m = self.axp.measurements().await.map_err(power_error)?;
        self.charge_starved = m.charge_starved();
        Ok(PowerSample::from(&m))
    }

    /// See [`Axp192::limit_charging`]: off below 100 mA, else the largest step not above.
    async fn set_charge_limit_ma(&mut self, ma: u16) -> Result<(), PowerError> {
        if !self.ready {
            self.init().await?;
        }
        self.axp.limit_charging(ma).await.map_err(power_error)
    }

    fn tx_power_dbm(&mut self, dbm: i8) {
        crate::net::set_tx_power_dbm(dbm);
    }

    /// The AXP192's latched IRQ status (cleared by reading): an ACIN trip shorter than the
    /// sampling period is seen here even when no sample caught it.
    async fn take_events(&mut self) -> Result<SupplyEvents, PowerError> {
        if !self.ready {
            self.init().await?;
        }
        let irq = self.axp.take_irqs().await.map_err(power_error)?;
        Ok(SupplyEvents {
            acin_removed: irq.acin_removed,
            acin_inserted: irq.acin_inserted,
            charge_starved: self.charge_starved,
        })
    }
}
