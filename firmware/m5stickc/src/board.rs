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
use esp_hal::gpio::{AnyPin, Level, Output, OutputConfig};
use esp_hal::i2c::master::{self, I2c};
use esp_hal::peripherals::{I2C0, UART1};
use esp_hal::time::Rate;
use esp_hal::uart::{self, UartRx};

#[cfg(feature = "esp32")]
pub const NAME: &str = "m5stickc";
#[cfg(feature = "esp32c3")]
pub const NAME: &str = "esp32c3";

// RAM budget. The ESP32's static data, bss and main stack share one 192 KiB segment, of which
// the BLE controller reserves the first 64 KiB; its heap lives in the 96 KiB the ROM bootloader
// used (`ram(reclaimed)`). On the ESP32-C3, IRAM code, data, bss and stack share 313 KiB, with
// 64 KiB more reclaimed from the bootloader for the heap and a second heap in .bss.

/// Readings the store-and-forward ring can hold while the broker is away (the configured
/// `ring_capacity` may use fewer). 200 bytes each.
#[cfg(feature = "esp32")]
pub const RING: usize = 128;
#[cfg(feature = "esp32c3")]
pub const RING: usize = 256;

/// Heap in .bss on top of the 64 KiB reclaimed from the bootloader (ESP32-C3).
#[cfg(all(feature = "esp32c3", not(feature = "ble")))]
pub const EXTRA_HEAP: usize = 36 * 1024;
#[cfg(all(feature = "esp32c3", feature = "ble"))]
pub const EXTRA_HEAP: usize = 64 * 1024;

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

/// The P1 UART before it is set up: it becomes an async driver inside the task that owns it
/// (esp-hal's async drivers cannot move between executors).
pub struct P1Uart {
    uart: UART1<'static>,
    rx: AnyPin<'static>,
    invert_rx: bool,
}

impl P1Uart {
    /// UART1 receiving at 115200 8N1 (DSMR 4+/5).
    ///
    /// `invert_rx` is for boards that wire the meter's open-collector, inverted data line
    /// straight to RX; the user's board inverts it with a transistor already.
    pub fn into_async(self) -> Result<UartRx<'static, Async>, uart::ConfigError> {
        let rx_signal = InputSignal::from(self.rx).with_input_inverter(self.invert_rx);
        // Wake the reader when 32 of the FIFO's 128 bytes are filled, leaving 96 bytes (8 ms at
        // 115200 baud) for it to run; the default (120) would leave 0.7 ms before an overflow.
        let rx_config = uart::RxConfig::default().with_fifo_full_threshold(32);
        Ok(UartRx::new(self.uart, uart::Config::default().with_baudrate(115_200).with_rx(rx_config))?
            .with_rx(rx_signal)
            .into_async())
    }
}

/// The P1 UART, the data-request line and the AXP192 bus.
pub struct Io {
    pub p1: P1Uart,
    pub data_request: Output<'static>,
    pub i2c: I2c<'static, Async>,
}

impl Io {
    pub fn new<RX, DR, SDA, SCL>(
        uart: UART1<'static>,
        i2c: I2C0<'static>,
        pins: Pins<RX, DR, SDA, SCL>,
        invert_rx: bool,
    ) -> Result<Self, master::ConfigError>
    where
        RX: esp_hal::gpio::InputPin + Into<AnyPin<'static>> + 'static,
        DR: esp_hal::gpio::OutputPin + 'static,
        SDA: esp_hal::gpio::InputPin + esp_hal::gpio::OutputPin + 'static,
        SCL: esp_hal::gpio::InputPin + esp_hal::gpio::OutputPin + 'static,
    {
        let p1 = P1Uart { uart, rx: pins.rx.into(), invert_rx };
        // Released until the application asserts it.
        let data_request = Output::new(pins.data_request, Level::Low, OutputConfig::default());
        let i2c = I2c::new(i2c, master::Config::default().with_frequency(Rate::from_khz(400)))?
            .with_sda(pins.sda)
            .with_scl(pins.scl)
            .into_async();
        Ok(Self { p1, data_request, i2c })
    }
}
