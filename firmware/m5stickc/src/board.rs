//! Pin map and peripheral setup of each supported board.
//!
//! | signal        | M5StickC (`esp32`)              | ESP32-C3 board (`esp32c3`) |
//! |---------------|---------------------------------|----------------------------|
//! | P1 data (RX)  | G36 (input only)                | GPIO20                     |
//! | data request  | G26 (drives the 4N35 opto)      | GPIO3                      |
//! | AXP192 SDA    | G21                             | GPIO8 (no AXP192 fitted)   |
//! | AXP192 SCL    | G22                             | GPIO9                      |

use esp_hal::Async;
use esp_hal::gpio::interconnect::InputSignal;
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_hal::i2c::master::{self, I2c};
use esp_hal::peripherals::{I2C0, UART1};
use esp_hal::time::Rate;
use esp_hal::uart::{self, UartRx};

#[cfg(feature = "esp32")]
pub const NAME: &str = "m5stickc";
#[cfg(feature = "esp32c3")]
pub const NAME: &str = "esp32c3";

/// Whether the P1 data line reaches RX inverted. The user's interface board inverts it with a
/// transistor already, so the default is off; set `P1GW_INVERT_RX=1` at build time for a board
/// that wires the open-collector line straight to RX (with a pull-up).
pub const INVERT_RX: bool = match option_env!("P1GW_INVERT_RX") {
    Some(v) => matches!(v.as_bytes(), b"1" | b"true" | b"yes"),
    None => false,
};

/// The board's pins for the P1 interface and the PMIC bus.
pub struct Pins<RX, DR, SDA, SCL> {
    pub rx: RX,
    pub data_request: DR,
    pub sda: SDA,
    pub scl: SCL,
}

/// Picks the board's pins out of `esp_hal::init`'s peripherals.
#[cfg(feature = "esp32")]
macro_rules! pins {
    ($p:ident) => {
        $crate::board::Pins { rx: $p.GPIO36, data_request: $p.GPIO26, sda: $p.GPIO21, scl: $p.GPIO22 }
    };
}
#[cfg(feature = "esp32c3")]
macro_rules! pins {
    ($p:ident) => {
        $crate::board::Pins { rx: $p.GPIO20, data_request: $p.GPIO3, sda: $p.GPIO8, scl: $p.GPIO9 }
    };
}
pub(crate) use pins;

/// The P1 receiver, the data-request line and the AXP192 bus, set up for async use.
pub struct Io {
    pub p1: UartRx<'static, Async>,
    pub data_request: Output<'static>,
    pub i2c: I2c<'static, Async>,
}

/// What failed while setting up the board's peripherals.
#[derive(Debug, Clone, Copy)]
pub enum SetupError {
    Uart(uart::ConfigError),
    I2c(master::ConfigError),
}

impl Io {
    pub fn new<RX, DR, SDA, SCL>(
        uart: UART1<'static>,
        i2c: I2C0<'static>,
        pins: Pins<RX, DR, SDA, SCL>,
        invert_rx: bool,
    ) -> Result<Self, SetupError>
    where
        RX: esp_hal::gpio::InputPin + 'static,
        DR: esp_hal::gpio::OutputPin + 'static,
        SDA: esp_hal::gpio::InputPin + esp_hal::gpio::OutputPin + 'static,
        SCL: esp_hal::gpio::InputPin + esp_hal::gpio::OutputPin + 'static,
    {
        // DSMR 4+/5: 115200 8N1. Data request starts released; the app asserts it.
        let rx_signal = InputSignal::from(pins.rx).with_input_inverter(invert_rx);
        let p1 = UartRx::new(uart, uart::Config::default().with_baudrate(115_200))
            .map_err(SetupError::Uart)?
            .with_rx(rx_signal)
            .into_async();
        let data_request = Output::new(pins.data_request, Level::Low, OutputConfig::default());
        let i2c = I2c::new(i2c, master::Config::default().with_frequency(Rate::from_khz(400)))
            .map_err(SetupError::I2c)?
            .with_sda(pins.sda)
            .with_scl(pins.scl)
            .into_async();
        Ok(Self { p1, data_request, i2c })
    }
}

/// AXP192 address and its power-output control register (bit 2 = LDO2, the LCD backlight).
const AXP192_ADDR: u8 = 0x34;
const AXP192_POWER_OUT_CTRL: u8 = 0x12;
const AXP192_LDO2_ON: u8 = 1 << 2;

/// Switches the M5StickC's LCD backlight (AXP192 LDO2) off: it draws about 28 mA for a display
/// the gateway never uses. A no-op on boards without the AXP192.
pub async fn switch_off_display(i2c: &mut I2c<'static, Async>) {
    if cfg!(not(feature = "esp32")) {
        return;
    }
    let mut ctrl = [0u8; 1];
    let now = || embassy_time::Instant::now().as_millis();
    if let Err(e) = i2c.write_read_async(AXP192_ADDR, &[AXP192_POWER_OUT_CTRL], &mut ctrl).await {
        esp_println::println!("t={} ev=error what=axp192 op=read_power_out err={e:?}", now());
        return;
    }
    let [value] = ctrl;
    if let Err(e) = i2c.write_async(AXP192_ADDR, &[AXP192_POWER_OUT_CTRL, value & !AXP192_LDO2_ON]).await {
        esp_println::println!("t={} ev=error what=axp192 op=backlight_off err={e:?}", now());
    }
}
