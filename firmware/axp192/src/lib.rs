//! Async driver for the X-Powers AXP192 power-management chip, as wired on the M5StickC.
//!
//! ## Overview
//! The M5StickC's AXP192 sits on I2C (SDA G21, SCL G22) at 7-bit address [`ADDRESS`] (0x34). The P1
//! port's +5 V enters its **ACIN** input, USB-C its **VBUS** input, and the 80 mAh LiPo its battery
//! input. This driver reads what the chip measures (with the datasheet's ADC scales, as typed values
//! with units) and writes the few settings the gateway needs: ADC enables, the charger (target
//! voltage, current, on/off), the LCD rails and the sleep setup.
//!
//! ## Guarantees
//! - `no_std`, no allocation, no panics: every register access goes through
//!   [`embedded_hal_async::i2c::I2c`] and every bus failure comes back as [`Error::I2c`] with the
//!   bus's [`ErrorKind`]. Nothing is unwrapped or indexed out of bounds.
//! - Writes are single-register writes (`[reg, value]`), the one write form every AXP192 accepts;
//!   reads of several registers use one auto-incrementing burst, so a 12-bit ADC value's two halves
//!   come from the same transaction.
//! - Read-modify-write is used where a register holds bits the driver does not own.
//!
//! ## Usage
//! ```ignore
//! let mut axp = Axp192::new(i2c);
//! axp.init(&Config::headless()).await?;
//! let m = axp.measurements().await?;
//! let acin_ma = m.acin_current.milliamps();
//! ```
#![no_std]

use embedded_hal_async::i2c::{Error as _, I2c};
pub use embedded_hal_async::i2c::ErrorKind;

/// The AXP192's 7-bit I2C address (the datasheet's 0x68/0x69 are the 8-bit write/read forms).
pub const ADDRESS: u8 = 0x34;
/// Value of register 0x03 on an AXP192 (an AXP2101 reads differently).
pub const CHIP_ID: u8 = 0x03;

/// Register addresses used by this driver (AXP192 datasheet §9.11).
pub mod reg {
    /// Power-supply status (read only).
    pub const POWER_STATUS: u8 = 0x00;
    /// Charge status (read only).
    pub const CHARGE_STATUS: u8 = 0x01;
    /// Chip id, 0x03 on the AXP192.
    pub const CHIP_ID: u8 = 0x03;
    /// Start of the 6-byte data buffer kept while any power source is present.
    pub const DATA_BUFFER: u8 = 0x06;
    /// EXTEN & DCDC2 control (EXTEN in bit 2).
    pub const EXTEN_DCDC2: u8 = 0x10;
    /// Output enables: 6 EXTEN, 4 DCDC2, 3 LDO3, 2 LDO2, 1 DCDC3, 0 DCDC1.
    pub const OUTPUT_ENABLE: u8 = 0x12;
    /// LDO2 [7:4] / LDO3 [3:0] voltage, 1.8 V + 0.1 V·n.
    pub const LDO23_VOLTAGE: u8 = 0x28;
    /// VBUS-IPSOUT path control.
    pub const VBUS_IPSOUT: u8 = 0x30;
    /// VOFF (power-off voltage) and PEK wake.
    pub const VOFF: u8 = 0x31;
    /// Power-off / battery detection / CHGLED.
    pub const SHUTDOWN: u8 = 0x32;
    /// Charge control 1: enable, target voltage, end current, CC current.
    pub const CHARGE_CONTROL_1: u8 = 0x33;
    /// Charge control 2: timers.
    pub const CHARGE_CONTROL_2: u8 = 0x34;
    /// IRQ status 1..4 (write 1 to clear).
    pub const IRQ_STATUS_1: u8 = 0x44;
    /// IRQ enables 1–4 (0x40–0x43): a status flag latches only while its enable bit is set.
    pub const IRQ_ENABLE_1: u8 = 0x40;
    /// ACIN voltage, 12 bit, 1.7 mV/LSB.
    pub const ACIN_VOLTAGE: u8 = 0x56;
    /// ACIN current, 12 bit, 0.625 mA/LSB.
    pub const ACIN_CURRENT: u8 = 0x58;
    /// VBUS voltage, 12 bit, 1.7 mV/LSB.
    pub const VBUS_VOLTAGE: u8 = 0x5A;
    /// VBUS current, 12 bit, 0.375 mA/LSB.
    pub const VBUS_CURRENT: u8 = 0x5C;
    /// Internal temperature, 12 bit, 0.1 °C/LSB, offset −144.7 °C.
    pub const TEMPERATURE: u8 = 0x5E;
    /// Battery voltage, 12 bit, 1.1 mV/LSB.
    pub const BATTERY_VOLTAGE: u8 = 0x78;
    /// Battery charge current, 13 bit, 0.5 mA/LSB.
    pub const BATTERY_CHARGE_CURRENT: u8 = 0x7A;
    /// Battery discharge current, 13 bit, 0.5 mA/LSB.
    pub const BATTERY_DISCHARGE_CURRENT: u8 = 0x7C;
    /// APS (IPSOUT) voltage, 12 bit, 1.4 mV/LSB.
    pub const APS_VOLTAGE: u8 = 0x7E;
    /// ADC enable 1: 7 Vbat, 6 Ibat, 5 V_ACIN, 4 I_ACIN, 3 V_VBUS, 2 I_VBUS, 1 V_APS, 0 TS.
    pub const ADC_ENABLE_1: u8 = 0x82;
    /// ADC enable 2: 7 internal temperature.
    pub const ADC_ENABLE_2: u8 = 0x83;
    /// ADC sample rate [7:6] and TS settings.
    pub const ADC_RATE: u8 = 0x84;
    /// GPIO0 function (LDOio0 for the microphone).
    pub const GPIO0_FUNCTION: u8 = 0x90;
    /// Coulomb counter: charge count, 32 bit, MSB first.
    pub const COULOMB_CHARGE: u8 = 0xB0;
    /// Coulomb counter: discharge count, 32 bit, MSB first.
    pub const COULOMB_DISCHARGE: u8 = 0xB4;
    /// Coulomb counter control: 7 on, 6 pause, 5 clear.
    pub const COULOMB_CONTROL: u8 = 0xB8;
}

/// A driver error. Small and `Copy` so firmware can count and log it without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The I2C transaction failed (no acknowledge, arbitration loss, bus error, ...).
    I2c(ErrorKind),
    /// Register 0x03 did not read [`CHIP_ID`]: the chip is not an AXP192 (an AXP2101, or nothing).
    WrongChip(u8),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::I2c(kind) => write!(f, "AXP192 I2C error: {kind}"),
            Error::WrongChip(id) => write!(f, "not an AXP192: chip id 0x{id:02x}, expected 0x03"),
        }
    }
}

impl core::error::Error for Error {}

/// A voltage in millivolts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Millivolts(pub u32);

impl Millivolts {
    /// The value in millivolts.
    pub const fn millivolts(self) -> u32 {
        self.0
    }
    /// The value in volts.
    pub fn volts(self) -> f32 {
        self.0 as f32 / 1000.0
    }
}

/// A current in microamps (the ADC LSBs are 0.375–0.625 mA, so whole milliamps would lose them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Microamps(pub u32);

impl Microamps {
    /// The value in microamps.
    pub const fn microamps(self) -> u32 {
        self.0
    }
    /// The value in milliamps, rounded down.
    pub const fn milliamps(self) -> u32 {
        self.0 / 1000
    }
    /// The value in milliamps.
    pub fn milliamps_f32(self) -> f32 {
        self.0 as f32 / 1000.0
    }
}

/// A temperature in tenths of a degree Celsius.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct DeciCelsius(pub i16);

impl DeciCelsius {
    /// The value in °C.
    pub fn celsius(self) -> f32 {
        self.0 as f32 / 10.0
    }
}

/// Register 0x00: which inputs are present and usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PowerStatus {
    /// ACIN (the P1 +5 V on the M5StickC) is present.
    pub acin_present: bool,
    /// ACIN is usable (above UVLO, below over-voltage).
    pub acin_usable: bool,
    /// VBUS (USB-C) is present.
    pub vbus_present: bool,
    /// VBUS is usable.
    pub vbus_usable: bool,
    /// The battery current flows into the battery (charging).
    pub battery_charging: bool,
    /// The chip was powered up by ACIN/VBUS (not by the power key).
    pub started_by_external: bool,
}

impl PowerStatus {
    /// Decodes register 0x00.
    pub const fn from_bits(b: u8) -> Self {
        Self {
            acin_present: b & 0x80 != 0,
            acin_usable: b & 0x40 != 0,
            vbus_present: b & 0x20 != 0,
            vbus_usable: b & 0x10 != 0,
            battery_charging: b & 0x04 != 0,
            started_by_external: b & 0x01 != 0,
        }
    }
}

/// Register 0x01: charger state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChargeStatus {
    /// The chip is over temperature.
    pub over_temperature: bool,
    /// The charger is charging.
    pub charging: bool,
    /// A battery is connected.
    pub battery_present: bool,
    /// The battery is in "active mode" (the safety timer ran out).
    pub battery_active_mode: bool,
    /// The achieved charge current is below the set value (source too weak, or CV phase).
    pub charge_current_below_set: bool,
}

impl ChargeStatus {
    /// Decodes register 0x01.
    pub const fn from_bits(b: u8) -> Self {
        Self {
            over_temperature: b & 0x80 != 0,
            charging: b & 0x40 != 0,
            battery_present: b & 0x20 != 0,
            battery_active_mode: b & 0x08 != 0,
            charge_current_below_set: b & 0x04 != 0,
        }
    }
}

/// Latched interrupt flags (registers 0x44..0x47) the power policy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IrqStatus {
    /// ACIN over-voltage.
    pub acin_over_voltage: bool,
    /// ACIN was connected (or came back after a meter trip).
    pub acin_inserted: bool,
    /// ACIN was removed (unplugged, or the meter's over-current protection cut it).
    pub acin_removed: bool,
    /// VBUS was connected.
    pub vbus_inserted: bool,
    /// VBUS was removed.
    pub vbus_removed: bool,
    /// Charging started.
    pub charge_started: bool,
    /// Charging finished.
    pub charge_done: bool,
    /// The charge current fell below 65 % of the set value.
    pub charge_current_low: bool,
    /// APS fell below warning level 2.
    pub aps_low: bool,
    /// The raw register bytes 0x44..0x47.
    pub raw: [u8; 4],
}

impl IrqStatus {
    /// Decodes registers 0x44..0x47.
    pub const fn from_bytes(r: [u8; 4]) -> Self {
        Self {
            acin_over_voltage: r[0] & 0x80 != 0,
            acin_inserted: r[0] & 0x40 != 0,
            acin_removed: r[0] & 0x20 != 0,
            vbus_inserted: r[0] & 0x08 != 0,
            vbus_removed: r[0] & 0x04 != 0,
            charge_started: r[1] & 0x08 != 0,
            charge_done: r[1] & 0x04 != 0,
            charge_current_low: r[2] & 0x40 != 0,
            aps_low: r[3] & 0x01 != 0,
            raw: r,
        }
    }
}

/// The constant-current charge setting (register 0x33 bits 3:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum ChargeCurrent {
    Ma100 = 0,
    Ma190,
    Ma280,
    Ma360,
    Ma450,
    Ma550,
    Ma630,
    Ma700,
    Ma780,
    Ma880,
    Ma960,
    Ma1000,
    Ma1080,
    Ma1160,
    Ma1240,
    Ma1320,
}

const CHARGE_MA: [u16; 16] = [
    100, 190, 280, 360, 450, 550, 630, 700, 780, 880, 960, 1000, 1080, 1160, 1240, 1320,
];
const CHARGE_STEPS: [ChargeCurrent; 16] = [
    ChargeCurrent::Ma100,
    ChargeCurrent::Ma190,
    ChargeCurrent::Ma280,
    ChargeCurrent::Ma360,
    ChargeCurrent::Ma450,
    ChargeCurrent::Ma550,
    ChargeCurrent::Ma630,
    ChargeCurrent::Ma700,
    ChargeCurrent::Ma780,
    ChargeCurrent::Ma880,
    ChargeCurrent::Ma960,
    ChargeCurrent::Ma1000,
    ChargeCurrent::Ma1080,
    ChargeCurrent::Ma1160,
    ChargeCurrent::Ma1240,
    ChargeCurrent::Ma1320,
];

impl ChargeCurrent {
    /// The current in mA.
    pub fn milliamps(self) -> u16 {
        CHARGE_MA.get(self as usize).copied().unwrap_or(100)
    }
    /// The largest setting not above `ma`; 100 mA (the chip's minimum) when `ma` is below 100.
    pub fn at_most(ma: u16) -> Self {
        let mut best = ChargeCurrent::Ma100;
        for (step, limit) in CHARGE_STEPS.iter().zip(CHARGE_MA.iter()) {
            if *limit <= ma {
                best = *step;
            }
        }
        best
    }
    /// Decodes register 0x33 bits 3:0.
    pub fn from_bits(b: u8) -> Self {
        CHARGE_STEPS.get(usize::from(b & 0x0F)).copied().unwrap_or(ChargeCurrent::Ma100)
    }
}

/// The charge target voltage (register 0x33 bits 6:5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeTarget {
    /// 4.10 V.
    V4_10 = 0,
    /// 4.15 V.
    V4_15 = 1,
    /// 4.20 V (a LiPo's full charge; what the M5 libraries set).
    V4_20 = 2,
    /// 4.36 V.
    V4_36 = 3,
}

impl ChargeTarget {
    /// The target in millivolts.
    pub fn millivolts(self) -> u16 {
        match self {
            ChargeTarget::V4_10 => 4100,
            ChargeTarget::V4_15 => 4150,
            ChargeTarget::V4_20 => 4200,
            ChargeTarget::V4_36 => 4360,
        }
    }
    fn from_bits(b: u8) -> Self {
        match (b >> 5) & 0x03 {
            0 => ChargeTarget::V4_10,
            1 => ChargeTarget::V4_15,
            2 => ChargeTarget::V4_20,
            _ => ChargeTarget::V4_36,
        }
    }
}

/// Charger settings as read back from register 0x33.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeControl {
    /// Charging is enabled.
    pub enabled: bool,
    /// Target voltage.
    pub target: ChargeTarget,
    /// Constant-current setting.
    pub current: ChargeCurrent,
    /// Charging ends below 15 % (true) or 10 % (false) of the CC current.
    pub end_at_15_percent: bool,
}

impl ChargeControl {
    /// Encodes register 0x33.
    pub fn bits(self) -> u8 {
        (u8::from(self.enabled) << 7)
            | ((self.target as u8) << 5)
            | (u8::from(self.end_at_15_percent) << 4)
            | (self.current as u8)
    }
    /// Decodes register 0x33.
    pub fn from_bits(b: u8) -> Self {
        Self {
            enabled: b & 0x80 != 0,
            target: ChargeTarget::from_bits(b),
            current: ChargeCurrent::from_bits(b),
            end_at_15_percent: b & 0x10 != 0,
        }
    }
}

/// ADC sample rate (register 0x84 bits 7:6). It also sets the coulomb counter's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdcRate {
    /// 25 Hz (datasheet default).
    Hz25 = 0,
    /// 50 Hz.
    Hz50 = 1,
    /// 100 Hz.
    Hz100 = 2,
    /// 200 Hz (what the M5StickC library sets).
    Hz200 = 3,
}

impl AdcRate {
    /// The rate in Hz.
    pub fn hz(self) -> u16 {
        25 << (self as u16)
    }
    fn from_bits(b: u8) -> Self {
        match b >> 6 {
            0 => AdcRate::Hz25,
            1 => AdcRate::Hz50,
            2 => AdcRate::Hz100,
            _ => AdcRate::Hz200,
        }
    }
}

/// Coulomb counter state (registers 0xB0..0xB7) and the ADC rate that scales it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoulombCounter {
    /// Raw charge count.
    pub charge: u32,
    /// Raw discharge count.
    pub discharge: u32,
    /// ADC rate when read (one count = 65536 · 0.5 mA / 3600 / rate mAh).
    pub rate: AdcRate,
}

impl CoulombCounter {
    /// Net charge into the battery since the counter was cleared, in µAh (negative: net discharge).
    pub fn net_microamp_hours(&self) -> i64 {
        let counts = i64::from(self.charge) - i64::from(self.discharge);
        // 65536 counts of 0.5 mA per ADC sample = 32_768_000 µA·samples; / 3600 s/h / rate.
        counts * 32_768_000 / (3600 * i64::from(self.rate.hz()))
    }
}

/// One consistent set of ADC readings (three burst reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measurements {
    /// ACIN voltage (P1 +5 V).
    pub acin_voltage: Millivolts,
    /// ACIN current (what the stick draws from P1).
    pub acin_current: Microamps,
    /// VBUS voltage (USB-C).
    pub vbus_voltage: Millivolts,
    /// VBUS current.
    pub vbus_current: Microamps,
    /// Chip temperature.
    pub temperature: DeciCelsius,
    /// Battery voltage.
    pub battery_voltage: Millivolts,
    /// Current into the battery.
    pub battery_charge_current: Microamps,
    /// Current out of the battery.
    pub battery_discharge_current: Microamps,
    /// APS (IPSOUT) voltage, the system rail the VOFF cut-off compares against.
    pub aps_voltage: Millivolts,
    /// Register 0x00.
    pub power_status: PowerStatus,
    /// Register 0x01.
    pub charge_status: ChargeStatus,
}

impl Measurements {
    /// Charging, but at less than 65 % of the set current: the supply cannot give the charger
    /// what it was asked for (a weak P1 port).
    pub const fn charge_starved(&self) -> bool {
        self.charge_status.charging && self.charge_status.charge_current_below_set
    }
}

/// Settings applied by [`Axp192::init`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Constant-current charge setting.
    pub charge_current: ChargeCurrent,
    /// Charging on at start.
    pub charging: bool,
    /// Charge target; 4.2 V for the M5StickC's LiPo.
    pub charge_target: ChargeTarget,
    /// No LCD: LDO2 (backlight) and LDO3 (LCD logic) off, microphone LDO off.
    pub headless: bool,
    /// 5 V boost for the Grove/HAT output (EXTEN).
    pub exten: bool,
    /// ADC sample rate.
    pub adc_rate: AdcRate,
    /// Run the coulomb counter.
    pub coulomb_counter: bool,
}

impl Config {
    /// The gateway's default: 100 mA to 4.2 V, headless, no 5 V boost, 25 Hz ADC, counter on.
    pub const fn headless() -> Self {
        Self {
            charge_current: ChargeCurrent::Ma100,
            charging: true,
            charge_target: ChargeTarget::V4_20,
            headless: true,
            exten: false,
            adc_rate: AdcRate::Hz25,
            coulomb_counter: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::headless()
    }
}

fn adc12(h: u8, l: u8) -> u32 {
    (u32::from(h) << 4) | u32::from(l & 0x0F)
}

fn adc13(h: u8, l: u8) -> u32 {
    (u32::from(h) << 5) | u32::from(l & 0x1F)
}

/// Scales a raw ADC value by `num / den` (integer, no overflow for 13-bit raws).
fn scale(raw: u32, num: u32, den: u32) -> u32 {
    raw * num / den
}

/// The AXP192 driver over an async I2C bus.
#[derive(Debug)]
pub struct Axp192<I> {
    i2c: I,
    address: u8,
}

impl<I: I2c> Axp192<I> {
    /// A driver at the standard address 0x34.
    pub fn new(i2c: I) -> Self {
        Self { i2c, address: ADDRESS }
    }

    /// A driver at another address (for boards with an address strap, or tests).
    pub fn with_address(i2c: I, address: u8) -> Self {
        Self { i2c, address }
    }

    /// Gives the bus back.
    pub fn release(self) -> I {
        self.i2c
    }

    async fn read(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), Error> {
        self.i2c
            .write_read(self.address, &[reg], buf)
            .await
            .map_err(|e| Error::I2c(e.kind()))
    }

    /// Reads one register.
    pub async fn read_u8(&mut self, reg: u8) -> Result<u8, Error> {
        let mut b = [0u8; 1];
        self.read(reg, &mut b).await?;
        Ok(b[0])
    }

    /// Writes one register.
    pub async fn write_u8(&mut self, reg: u8, value: u8) -> Result<(), Error> {
        self.i2c
            .write(self.address, &[reg, value])
            .await
            .map_err(|e| Error::I2c(e.kind()))
    }

    async fn modify(&mut self, reg: u8, clear: u8, set: u8) -> Result<(), Error> {
        let v = self.read_u8(reg).await?;
        self.write_u8(reg, (v & !clear) | set).await
    }

    async fn read_pair(&mut self, reg: u8) -> Result<[u8; 2], Error> {
        let mut b = [0u8; 2];
        self.read(reg, &mut b).await?;
        Ok(b)
    }

    /// Checks the chip id and applies `config`: VBUS path, VOFF 3.0 V, charger, all ADCs on at the
    /// configured rate, output rails, coulomb counter, and clears stale IRQ flags.
    pub async fn init(&mut self, config: &Config) -> Result<(), Error> {
        let id = self.read_u8(reg::CHIP_ID).await?;
        if id != CHIP_ID {
            return Err(Error::WrongChip(id));
        }
        // VBUS to IPSOUT regardless of N_VBUSEN, no VHOLD or current limit (as the M5 libraries).
        self.write_u8(reg::VBUS_IPSOUT, 0x80).await?;
        // VOFF = 2.6 V + 0.1 V·4 = 3.0 V; also clears the sleep bit set by `prepare_sleep`.
        self.modify(reg::VOFF, 0x0F, 0x04).await?;
        self.write_charge_control(ChargeControl {
            enabled: config.charging,
            target: config.charge_target,
            current: config.charge_current,
            end_at_15_percent: false,
        })
        .await?;
        self.enable_adcs(config.adc_rate).await?;
        self.set_outputs(!config.headless, config.exten).await?;
        if config.headless {
            // GPIO0 floating: the microphone's LDOio0 off.
            self.modify(reg::GPIO0_FUNCTION, 0x07, 0x07).await?;
        } else {
            self.write_u8(reg::LDO23_VOLTAGE, 0xCC).await?;
            self.write_u8(reg::GPIO0_FUNCTION, 0x02).await?;
        }
        self.write_u8(reg::COULOMB_CONTROL, if config.coulomb_counter { 0x80 } else { 0x00 })
            .await?;
        // The power-on enables leave out ACIN and VBUS removal (REG40 = D8h) and a starved
        // charger (REG42 = 3Bh); without them those flags never latch.
        self.modify(reg::IRQ_ENABLE_1, 0x6C, 0x6C).await?;
        self.modify(reg::IRQ_ENABLE_1 + 2, 0x40, 0x40).await?;
        self.take_irqs().await?;
        Ok(())
    }

    /// Turns every ADC channel we read on (0x82 = 0xFF, 0x83 = 0x80) at `rate`. Needed again after
    /// [`Axp192::prepare_sleep`], which turns them off.
    pub async fn enable_adcs(&mut self, rate: AdcRate) -> Result<(), Error> {
        self.write_u8(reg::ADC_ENABLE_1, 0xFF).await?;
        self.write_u8(reg::ADC_ENABLE_2, 0x80).await?;
        self.modify(reg::ADC_RATE, 0xC0, (rate as u8) << 6).await
    }

    /// The configured ADC rate.
    pub async fn adc_rate(&mut self) -> Result<AdcRate, Error> {
        Ok(AdcRate::from_bits(self.read_u8(reg::ADC_RATE).await?))
    }

    /// Switches the LCD rails (LDO2 backlight, LDO3 logic) and the 5 V boost (EXTEN). DCDC1, the
    /// ESP32's own supply, always stays on.
    pub async fn set_outputs(&mut self, lcd: bool, exten: bool) -> Result<(), Error> {
        let lcd_bits = if lcd { 0x0C } else { 0x00 };
        let exten_bit = if exten { 0x40 } else { 0x00 };
        self.modify(reg::OUTPUT_ENABLE, 0x4C, lcd_bits | exten_bit | 0x01).await?;
        // Some libraries use 0x10 bit 2 for EXTEN; keep the two in step.
        self.modify(reg::EXTEN_DCDC2, 0x04, if exten { 0x04 } else { 0x00 }).await
    }

    /// Reads the charger settings.
    pub async fn charge_control(&mut self) -> Result<ChargeControl, Error> {
        Ok(ChargeControl::from_bits(self.read_u8(reg::CHARGE_CONTROL_1).await?))
    }

    /// Writes the charger settings.
    pub async fn write_charge_control(&mut self, c: ChargeControl) -> Result<(), Error> {
        self.write_u8(reg::CHARGE_CONTROL_1, c.bits()).await
    }

    /// Sets the constant-current charge setting, keeping the other charger bits.
    pub async fn set_charge_current(&mut self, current: ChargeCurrent) -> Result<(), Error> {
        self.modify(reg::CHARGE_CONTROL_1, 0x0F, current as u8).await
    }

    /// Turns charging on or off, keeping the other charger bits.
    pub async fn set_charging(&mut self, enabled: bool) -> Result<(), Error> {
        self.modify(reg::CHARGE_CONTROL_1, 0x80, if enabled { 0x80 } else { 0 }).await
    }

    /// ACIN (P1 +5 V) voltage, 1.7 mV/LSB.
    pub async fn acin_voltage(&mut self) -> Result<Millivolts, Error> {
        let [h, l] = self.read_pair(reg::ACIN_VOLTAGE).await?;
        Ok(Millivolts(scale(adc12(h, l), 17, 10)))
    }

    /// ACIN current, 0.625 mA/LSB.
    pub async fn acin_current(&mut self) -> Result<Microamps, Error> {
        let [h, l] = self.read_pair(reg::ACIN_CURRENT).await?;
        Ok(Microamps(scale(adc12(h, l), 625, 1)))
    }

    /// VBUS (USB-C) voltage, 1.7 mV/LSB.
    pub async fn vbus_voltage(&mut self) -> Result<Millivolts, Error> {
        let [h, l] = self.read_pair(reg::VBUS_VOLTAGE).await?;
        Ok(Millivolts(scale(adc12(h, l), 17, 10)))
    }

    /// VBUS current, 0.375 mA/LSB.
    pub async fn vbus_current(&mut self) -> Result<Microamps, Error> {
        let [h, l] = self.read_pair(reg::VBUS_CURRENT).await?;
        Ok(Microamps(scale(adc12(h, l), 375, 1)))
    }

    /// Chip temperature, 0.1 °C/LSB from −144.7 °C.
    pub async fn temperature(&mut self) -> Result<DeciCelsius, Error> {
        let [h, l] = self.read_pair(reg::TEMPERATURE).await?;
        Ok(temperature(adc12(h, l)))
    }

    /// Battery voltage, 1.1 mV/LSB.
    pub async fn battery_voltage(&mut self) -> Result<Millivolts, Error> {
        let [h, l] = self.read_pair(reg::BATTERY_VOLTAGE).await?;
        Ok(Millivolts(scale(adc12(h, l), 11, 10)))
    }

    /// Current into the battery, 0.5 mA/LSB (13 bit).
    pub async fn battery_charge_current(&mut self) -> Result<Microamps, Error> {
        let [h, l] = self.read_pair(reg::BATTERY_CHARGE_CURRENT).await?;
        Ok(Microamps(scale(adc13(h, l), 500, 1)))
    }

    /// Current out of the battery, 0.5 mA/LSB (13 bit).
    pub async fn battery_discharge_current(&mut self) -> Result<Microamps, Error> {
        let [h, l] = self.read_pair(reg::BATTERY_DISCHARGE_CURRENT).await?;
        Ok(Microamps(scale(adc13(h, l), 500, 1)))
    }

    /// APS (IPSOUT) voltage, 1.4 mV/LSB.
    pub async fn aps_voltage(&mut self) -> Result<Millivolts, Error> {
        let [h, l] = self.read_pair(reg::APS_VOLTAGE).await?;
        Ok(Millivolts(scale(adc12(h, l), 14, 10)))
    }

    /// Register 0x00.
    pub async fn power_status(&mut self) -> Result<PowerStatus, Error> {
        Ok(PowerStatus::from_bits(self.read_u8(reg::POWER_STATUS).await?))
    }

    /// Register 0x01.
    pub async fn charge_status(&mut self) -> Result<ChargeStatus, Error> {
        Ok(ChargeStatus::from_bits(self.read_u8(reg::CHARGE_STATUS).await?))
    }

    /// All measurements in three burst reads (status, 0x56..0x5F, 0x78..0x7F).
    pub async fn measurements(&mut self) -> Result<Measurements, Error> {
        let mut st = [0u8; 2];
        self.read(reg::POWER_STATUS, &mut st).await?;
        let mut a = [0u8; 10];
        self.read(reg::ACIN_VOLTAGE, &mut a).await?;
        let mut b = [0u8; 8];
        self.read(reg::BATTERY_VOLTAGE, &mut b).await?;
        let [s0, s1] = st;
        let [av_h, av_l, ai_h, ai_l, vv_h, vv_l, vi_h, vi_l, t_h, t_l] = a;
        let [bv_h, bv_l, bc_h, bc_l, bd_h, bd_l, ap_h, ap_l] = b;
        Ok(Measurements {
            acin_voltage: Millivolts(scale(adc12(av_h, av_l), 17, 10)),
            acin_current: Microamps(scale(adc12(ai_h, ai_l), 625, 1)),
            vbus_voltage: Millivolts(scale(adc12(vv_h, vv_l), 17, 10)),
            vbus_current: Microamps(scale(adc12(vi_h, vi_l), 375, 1)),
            temperature: temperature(adc12(t_h, t_l)),
            battery_voltage: Millivolts(scale(adc12(bv_h, bv_l), 11, 10)),
            battery_charge_current: Microamps(scale(adc13(bc_h, bc_l), 500, 1)),
            battery_discharge_current: Microamps(scale(adc13(bd_h, bd_l), 500, 1)),
            aps_voltage: Millivolts(scale(adc12(ap_h, ap_l), 14, 10)),
            power_status: PowerStatus::from_bits(s0),
            charge_status: ChargeStatus::from_bits(s1),
        })
    }

    /// Reads the coulomb counter (two 32-bit counts, one 8-byte burst) and the ADC rate.
    pub async fn coulomb_counter(&mut self) -> Result<CoulombCounter, Error> {
        let mut b = [0u8; 8];
        self.read(reg::COULOMB_CHARGE, &mut b).await?;
        let [c0, c1, c2, c3, d0, d1, d2, d3] = b;
        let rate = self.adc_rate().await?;
        Ok(CoulombCounter {
            charge: u32::from_be_bytes([c0, c1, c2, c3]),
            discharge: u32::from_be_bytes([d0, d1, d2, d3]),
            rate,
        })
    }

    /// Clears both coulomb counts and keeps the counter running.
    pub async fn clear_coulomb_counter(&mut self) -> Result<(), Error> {
        self.write_u8(reg::COULOMB_CONTROL, 0xA0).await
    }

    /// Charges at no more than `ma`: the largest current step not above it, or charging off below
    /// the smallest step (100 mA), since the chip cannot charge more gently.
    pub async fn limit_charging(&mut self, ma: u16) -> Result<(), Error> {
        if ma < ChargeCurrent::Ma100.milliamps() {
            return self.set_charging(false).await;
        }
        self.set_charge_current(ChargeCurrent::at_most(ma)).await?;
        self.set_charging(true).await
    }

    /// Reads the latched IRQ flags and clears exactly the ones read (write 1 to clear), so an
    /// event between the read and the clear is not lost.
    pub async fn take_irqs(&mut self) -> Result<IrqStatus, Error> {
        let mut r = [0u8; 4];
        self.read(reg::IRQ_STATUS_1, &mut r).await?;
        for (i, v) in r.iter().enumerate() {
            if *v != 0 {
                self.write_u8(reg::IRQ_STATUS_1 + i as u8, *v).await?;
            }
        }
        Ok(IrqStatus::from_bytes(r))
    }

    /// Reads the 6-byte data buffer, which survives ESP32 resets and deep sleep while any power
    /// source is present (the policy keeps its counters there).
    pub async fn read_data_buffer(&mut self) -> Result<[u8; 6], Error> {
        let mut b = [0u8; 6];
        self.read(reg::DATA_BUFFER, &mut b).await?;
        Ok(b)
    }

    /// Writes the 6-byte data buffer.
    pub async fn write_data_buffer(&mut self, data: &[u8; 6]) -> Result<(), Error> {
        for (i, v) in data.iter().enumerate() {
            self.write_u8(reg::DATA_BUFFER + i as u8, *v).await?;
        }
        Ok(())
    }

    /// Prepares the chip for ESP32 deep sleep: PEK wake on, microphone LDO floating, all ADCs off,
    /// LDO2/LDO3/EXTEN/DCDC2/DCDC3 off (DCDC1 stays on). The board then draws 2–3 mA. Call
    /// [`Axp192::init`] (or [`Axp192::enable_adcs`]) after waking, or the readings stop updating.
    pub async fn prepare_sleep(&mut self) -> Result<(), Error> {
        self.modify(reg::VOFF, 0x00, 0x08).await?;
        self.modify(reg::GPIO0_FUNCTION, 0x00, 0x07).await?;
        self.write_u8(reg::ADC_ENABLE_1, 0x00).await?;
        self.modify(reg::OUTPUT_ENABLE, 0x5E, 0x00).await?;
        self.modify(reg::EXTEN_DCDC2, 0x04, 0x00).await
    }

    /// Powers the whole system off (register 0x32 bit 7); only the RTC's LDO1 stays on.
    pub async fn power_off(&mut self) -> Result<(), Error> {
        self.modify(reg::SHUTDOWN, 0x00, 0x80).await
    }
}

fn temperature(raw: u32) -> DeciCelsius {
    // raw ≤ 4095, so the result fits in i16.
    DeciCelsius((raw as i32 - 1447) as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_current_steps_round_down() {
        assert_eq!(ChargeCurrent::at_most(0), ChargeCurrent::Ma100);
        assert_eq!(ChargeCurrent::at_most(189), ChargeCurrent::Ma100);
        assert_eq!(ChargeCurrent::at_most(190), ChargeCurrent::Ma190);
        assert_eq!(ChargeCurrent::at_most(5000), ChargeCurrent::Ma1320);
        for b in 0..16u8 {
            assert_eq!(ChargeCurrent::from_bits(b) as u8, b);
        }
    }

    #[test]
    fn charge_control_round_trips_and_matches_m5_default() {
        let c = ChargeControl {
            enabled: true,
            target: ChargeTarget::V4_20,
            current: ChargeCurrent::Ma100,
            end_at_15_percent: false,
        };
        assert_eq!(c.bits(), 0xC0);
        assert_eq!(ChargeControl::from_bits(0xC8).current.milliamps(), 780);
        assert_eq!(ChargeControl::from_bits(c.bits()), c);
    }

    #[test]
    fn adc_encodings_match_datasheet_examples() {
        // power.md §2.2 examples.
        assert_eq!(scale(adc12(0xB7, 0x0D), 17, 10), 4999); // 2941 · 1.7 mV
        assert_eq!(scale(adc12(0x0C, 0x00), 625, 1), 120_000);
        assert_eq!(scale(adc12(0xEE, 0x0A), 11, 10), 4199);
        assert_eq!(scale(adc13(0x06, 0x08), 500, 1), 100_000);
        assert_eq!(temperature(adc12(0x73, 0x07)), DeciCelsius(400));
        // Unused high bits of the low register are masked, not added.
        assert_eq!(adc12(0x00, 0xF1), 1);
        assert_eq!(adc13(0x00, 0xE1), 1);
    }

    #[test]
    fn coulomb_scale_matches_formula() {
        // One count at 25 Hz is 0.3641 mAh.
        let c = CoulombCounter { charge: 1, discharge: 0, rate: AdcRate::Hz25 };
        assert_eq!(c.net_microamp_hours(), 364);
        let c = CoulombCounter { charge: 0, discharge: 1758, rate: AdcRate::Hz200 };
        assert_eq!(c.net_microamp_hours() / 1000, -80); // power.md: 80 mAh ≈ 1758 counts at 200 Hz
    }
}
