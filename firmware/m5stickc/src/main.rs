//! The P1 gateway on an ESP32 board: `firmware-app` with its seams bound to esp-hal.
//!
//! Feature `esp32c3` (default) builds for an ESP32-C3 board on stable Rust; feature `esp32` builds
//! for the original M5StickC with Espressif's `esp` toolchain (see README.md). The configuration
//! is baked in at build time (`P1GW_CONFIG=path/to/gateway.toml`, see build.rs).
#![no_std]
#![no_main]

#[cfg(all(feature = "esp32", feature = "esp32c3"))]
compile_error!("features `esp32` and `esp32c3` are exclusive: build with --no-default-features --features esp32");
#[cfg(not(any(feature = "esp32", feature = "esp32c3")))]
compile_error!("select a chip: feature `esp32c3` (default) or `esp32`");

extern crate alloc;

#[cfg(feature = "ble")]
mod ble;
mod board;
mod config;
mod net;
mod p1;
mod p1_stream;
mod seams;

use embassy_executor::Spawner;
use esp_backtrace as _;
use esp_hal::interrupt::Priority;
use esp_hal::timer::timg::TimerGroup;
use esp_rtos::embassy::InterruptExecutor;
use firmware_app::console::Line;
use firmware_app::seams::PowerError;
use firmware_app::{Board, Memory};
use static_cell::StaticCell;

use crate::seams::{Axp192Monitor, EspClock, EspConsole, EspSystem};

esp_bootloader_esp_idf::esp_app_desc!();

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(esp_hal::clock::CpuClock::max()));

    // esp-radio's blobs (WiFi, BLE, coexistence) allocate; see board.rs for the budget per chip.
    #[cfg(feature = "esp32c3")]
    {
        esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
        esp_alloc::heap_allocator!(size: board::EXTRA_HEAP);
    }
    #[cfg(feature = "esp32")]
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 96 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    // The chip revision goes on the first line: the M5StickC runs below esp-hal's supported
    // minimum (see esp32.toml), and a bench log must show which silicon it was.
    let rev = esp_hal::efuse::chip_revision();
    board_line(
        Line::new(now_ms(), "boot")
            .kv("stage", "board")
            .kv("board", board::NAME)
            .kv("chip_rev", format_args!("v{}.{}", rev.major, rev.minor))
            .kv("reset", seams::reset_reason()),
    );

    let config = match config::load(config::TEXT) {
        Ok(config) => config,
        Err(e) => {
            let l = Line::new(now_ms(), "error").kv("kind", "config");
            halt(match e {
                config::LoadError::Syntax { line } => l.kv("line", line).kv("detail", "expected key = value"),
                config::LoadError::UnknownKey { line } => l.kv("line", line).kv("detail", "unknown key"),
                config::LoadError::Invalid { line, error } => {
                    l.kv("line", line).kv("field", error.field.key()).kv("detail", error.problem)
                }
            })
            .await
        }
    };

    if config.transport.uses_ble() && cfg!(not(feature = "ble")) {
        let line = Line::new(now_ms(), "error").kv("kind", "config").kv("field", "transport").kv("detail", "BLE is not in this build (feature ble)");
        if config.transport.uses_wifi() {
            board_line(line);
        } else {
            halt(line).await;
        }
    }

    // TLS to an mqtts:// broker: the baked-in CA (P1GW_CA) is checked now, so a missing or bad
    // one is reported at boot rather than as a failure on every connect. The TRNG (SAR ADC
    // entropy source, kept enabled for the whole run) seeds the handshakes.
    let tls = if config.transport.uses_wifi() && config.broker.as_ref().is_some_and(|b| b.tls) {
        static TRNG_SOURCE: StaticCell<esp_hal::rng::TrngSource<'static>> = StaticCell::new();
        TRNG_SOURCE.init(esp_hal::rng::TrngSource::new(peripherals.RNG, peripherals.ADC1));
        let setup = match esp_hal::rng::Trng::try_new() {
            Ok(rng) => net::Tls::new(config::CA, rng).map_err(|e| {
                Line::new(now_ms(), "error")
                    .kv("kind", "config")
                    .kv("field", "ca")
                    .kv("detail", e)
                    .kv("hint", "build with P1GW_CA=path/to/ca.crt")
            }),
            Err(e) => Err(Line::new(now_ms(), "error").kv("kind", "setup").kv("detail", net::DebugText(&e))),
        };
        match setup {
            Ok(tls) => {
                board_line(
                    Line::new(now_ms(), "boot")
                        .kv("stage", "tls")
                        .kv("ca_bytes", config::CA.len())
                        .kv("clock_floor_unix_s", config::BUILD_UNIX_S),
                );
                Some(tls)
            }
            // BLE still has work to do; every broker connect is then refused (tls_certificate),
            // with the application's capped back-off.
            Err(line) if config.transport.uses_ble() => {
                board_line(line);
                None
            }
            Err(line) => halt(line).await,
        }
    } else {
        None
    };

    let io = match board::Io::new(peripherals.UART1, peripherals.I2C0, board::pins!(peripherals), config.rx_inverted) {
        Ok(io) => io,
        Err(e) => halt(Line::new(now_ms(), "error").kv("kind", "setup").kv("detail", net::DebugText(&e))).await,
    };

    // The P1 pump runs on an interrupt executor above the main one: see p1.rs. Software interrupt 2:
    // esp-rtos owns 0, and 1 on the dual-core ESP32 (its second core's scheduler).
    static P1_EXECUTOR: StaticCell<InterruptExecutor<2>> = StaticCell::new();
    let p1_spawner = P1_EXECUTOR.init(InterruptExecutor::new(peripherals.FROM_CPU_INTR2)).start(Priority::Priority2);
    let p1 = match p1::start(p1_spawner, io.p1) {
        Ok(p1) => p1,
        Err(e) => halt(Line::new(now_ms(), "error").kv("kind", "setup").kv("detail", net::DebugText(&e))).await,
    };

    // Set the PMIC up at once: it switches the LCD backlight off (about 28 mA).
    let mut power = Axp192Monitor::new(io.i2c);
    match power.init().await {
        Ok(()) => {}
        Err(PowerError::Absent) if cfg!(feature = "esp32c3") => {}
        Err(e) => board_line(Line::new(now_ms(), "error").kv("kind", "axp192").kv("detail", e)),
    }

    let (link, tcp) = if config.transport.uses_wifi() {
        match net::start(spawner, peripherals.WIFI, &config.wifi_ssid, &config.wifi_password, tls) {
            Ok(parts) => parts,
            Err(e) => halt(Line::new(now_ms(), "error").kv("kind", "wifi_setup").kv("detail", e)).await,
        }
    } else {
        (net::WifiLink::absent(), net::TcpConnector::absent())
    };

    #[cfg(feature = "ble")]
    let radio = ble::BoardRadio(if config.transport.uses_ble() {
        match ble::start(spawner, peripherals.BT, firmware_app::app::ble_address(&config.device_id)) {
            Ok(radio) => Some(radio),
            Err(e) => halt(Line::new(now_ms(), "error").kv("kind", "ble_setup").kv("detail", net::DebugText(&e))).await,
        }
    } else {
        None
    });
    #[cfg(not(feature = "ble"))]
    let radio = firmware_app::seams::NoRadio;

    static MEMORY: StaticCell<Memory<{ board::RING }>> = StaticCell::new();
    let memory = MEMORY.init_with(Memory::new);
    static CONFIG: StaticCell<firmware_app::Config> = StaticCell::new();
    let config = CONFIG.init(config);

    let board = Board {
        p1,
        data_request: io.data_request,
        link,
        net: tcp,
        clock: EspClock,
        power,
        console: EspConsole,
        system: EspSystem,
    };
    match firmware_app::app::run_with_radio(config, board, radio, memory).await {}
}

fn now_ms() -> u64 {
    embassy_time::Instant::now().as_millis()
}

fn board_line(line: Line) {
    esp_println::println!("{}", line.as_str());
}

/// Reports a failure that leaves nothing to run, then idles with the radio off: the firmware
/// never panics. The lines repeat every 10 s so a console attached late still sees them.
async fn halt(line: Line) -> ! {
    loop {
        board_line(Line::new(now_ms(), "error").kv("kind", "halted"));
        esp_println::println!("{}", line.as_str());
        embassy_time::Timer::after(embassy_time::Duration::from_secs(10)).await;
    }
}
