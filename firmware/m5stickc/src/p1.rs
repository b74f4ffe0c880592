//! The P1 receiver as `firmware-app`'s byte reader.
//!
//! The UART's hardware FIFO holds 128 bytes: 11 ms of a 115200-baud telegram. The application's
//! reader shares the main executor with WiFi and MQTT work, so a task on a higher-priority
//! interrupt executor drains the FIFO into a 4 KiB pipe instead (350 ms of line time). The
//! application reads the pipe through [`P1Rx`]; the stream and its loss record are in p1_stream.rs.
//!
//! Lost bytes are never silent. A UART error (FIFO overflow, framing, parity, glitch) or a full
//! pipe is recorded at its position in the byte stream; [`P1Rx::read`] returns every byte before
//! that position first and then one `Err` per recorded error, so the application abandons exactly
//! the telegram the loss cut into and counts each error.

use embassy_executor::SendSpawner;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;
use firmware_app::console::Line;
use static_cell::StaticCell;

use crate::board::P1Uart;
use crate::net::DebugText;
use crate::p1_stream::{Losses, PumpEnd, channel};

/// Bytes buffered between the UART and the application.
pub const PIPE_SIZE: usize = 4096;

/// The application's reader.
pub type P1Rx = crate::p1_stream::P1Rx<'static, PIPE_SIZE>;

/// Starts the pump on `spawner` (an interrupt executor) and returns the application's reader.
pub fn start(spawner: SendSpawner, uart: P1Uart) -> Result<P1Rx, embassy_executor::SpawnError> {
    static PIPE: StaticCell<Pipe<CriticalSectionRawMutex, PIPE_SIZE>> = StaticCell::new();
    static LOSSES: Losses = Losses::new();
    let (pump_end, rx) = channel(PIPE.init(Pipe::new()), &LOSSES);
    spawner.spawn(pump(uart, pump_end)?);
    Ok(rx)
}

#[embassy_executor::task]
async fn pump(uart: P1Uart, mut out: PumpEnd<'static, PIPE_SIZE>) {
    let mut uart = match uart.into_async() {
        Ok(uart) => uart,
        Err(e) => {
            // Nothing arrives; the application reports the meter silent.
            let line = Line::new(embassy_time::Instant::now().as_millis(), "error").kv("kind", "p1_uart").kv("detail", DebugText(&e));
            esp_println::println!("{}", line.as_str());
            return;
        }
    };
    let mut buf = [0u8; 128];
    loop {
        match uart.read_async(&mut buf).await {
            Ok(n) => out.push(buf.get(..n).unwrap_or(&[])),
            // The driver has reset the FIFO (overflow) or dropped the bad byte; the stream goes on.
            Err(_) => out.lost(),
        }
    }
}
