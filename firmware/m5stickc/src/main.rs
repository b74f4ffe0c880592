//! The P1 gateway on an ESP32 board: binds `firmware-app`'s seams to esp-hal.
//!
//! Feature `esp32c3` (default) builds for an ESP32-C3 board on stable Rust; feature `esp32` builds
//! for the original M5StickC with Espressif's `esp` toolchain (see README.md).
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
mod net;

use embassy_executor::Spawner;
use embassy_time::{Duration, Timer};
use esp_backtrace as _;
use esp_hal::timer::timg::TimerGroup;
use esp_println::println;

esp_bootloader_esp_idf::esp_app_desc!();

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(esp_hal::clock::CpuClock::max()));

    // esp-radio's blobs allocate; 64 KiB of the second-stage bootloader's RAM is free after boot.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    let rev = esp_hal::efuse::chip_revision();
    println!(
        "t={} ev=boot board={} chip_rev=v{}.{} fw={}",
        embassy_time::Instant::now().as_millis(),
        board::NAME,
        rev.major,
        rev.minor,
        env!("CARGO_PKG_VERSION"),
    );

    let io = board::Io::new(
        peripherals.UART1,
        peripherals.I2C0,
        board::pins!(peripherals),
        board::INVERT_RX,
    );
    let mut io = match io {
        Ok(io) => io,
        Err(e) => halt(e),
    };
    board::switch_off_display(&mut io.i2c).await;

    let stack = match net::start(spawner, peripherals.WIFI) {
        Ok(stack) => stack,
        Err(e) => halt(e),
    };

    #[cfg(feature = "ble")]
    let mut radio = match ble::start(spawner, peripherals.BT) {
        Ok(radio) => radio,
        Err(e) => halt(e),
    };
    #[cfg(feature = "ble")]
    if let Err(e) = radio.advertise(ble::default_address(), &[0x02, 0x01, 0x06]).await {
        println!("t={} ev=error what=ble err=\"{e:?}\"", embassy_time::Instant::now().as_millis());
    }

    let mut buf = [0u8; 256];
    loop {
        match embedded_io_async::Read::read(&mut io.p1, &mut buf).await {
            Ok(n) => println!("t={} ev=p1 bytes={n} link={}", embassy_time::Instant::now().as_millis(), stack.is_link_up()),
            Err(e) => println!("t={} ev=error what=uart err={e:?}", embassy_time::Instant::now().as_millis()),
        }
        Timer::after(Duration::from_millis(1)).await;
    }
}

/// Reports a setup failure that leaves nothing to run, then idles (the firmware never panics).
fn halt(what: impl core::fmt::Debug) -> ! {
    println!("t={} ev=error what=setup err=\"{what:?}\"", embassy_time::Instant::now().as_millis());
    loop {
        core::hint::spin_loop();
    }
}
