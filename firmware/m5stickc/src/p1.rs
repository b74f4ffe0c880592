//! The P1 receiver as `firmware-app`'s byte reader.
//!
//! The UART's hardware FIFO holds 128 bytes: 11 ms of a 115200-baud telegram. The application's
//! reader shares the main executor with WiFi and MQTT work, so a task on a higher-priority
//! interrupt executor drains the FIFO into a 4 KiB pipe instead (350 ms of line time). The
//! application reads the pipe through [`P1Rx`].
//!
//! Lost bytes are never silent. A UART error (FIFO overflow, framing, parity, glitch) or a full
//! pipe is recorded at its position in the byte stream; [`P1Rx::read`] returns every byte before
//! that position first and then one `Err` per recorded error, so the application abandons exactly
//! the telegram the loss cut into and counts each error.

use core::cell::Cell;

use embassy_executor::SendSpawner;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::{Pipe, Reader, Writer};
use embassy_sync::signal::Signal;
use firmware_app::console::Line;

use crate::board::P1Uart;
use crate::net::DebugText;
use static_cell::StaticCell;

/// Bytes buffered between the UART and the application.
pub const PIPE_SIZE: usize = 4096;

type P1Pipe = Pipe<CriticalSectionRawMutex, PIPE_SIZE>;

/// Errors recorded by the pump and not yet returned to the reader: how many, and the stream
/// position (bytes written to the pipe so far, wrapping) of the first. Later errors that arrive
/// before the first is delivered are reported at the first one's position.
#[derive(Clone, Copy)]
struct Pending {
    count: u32,
    at: u32,
}

static PENDING: Mutex<CriticalSectionRawMutex, Cell<Pending>> = Mutex::new(Cell::new(Pending { count: 0, at: 0 }));
/// Wakes a reader that waits for bytes when an error is recorded instead.
static ERROR_RAISED: Signal<CriticalSectionRawMutex, ()> = Signal::new();

fn record_error(at: u32) {
    PENDING.lock(|p| {
        let mut v = p.get();
        if v.count == 0 {
            v.at = at;
        }
        v.count = v.count.saturating_add(1);
        p.set(v);
    });
    ERROR_RAISED.signal(());
}

/// Starts the pump on `spawner` (an interrupt executor) and returns the application's reader.
pub fn start(spawner: SendSpawner, uart: P1Uart) -> Result<P1Rx, embassy_executor::SpawnError> {
    static PIPE: StaticCell<P1Pipe> = StaticCell::new();
    let (reader, writer) = PIPE.init(Pipe::new()).split();
    spawner.spawn(pump(uart, writer)?);
    Ok(P1Rx { reader, read: 0 })
}

#[embassy_executor::task]
async fn pump(uart: P1Uart, writer: Writer<'static, CriticalSectionRawMutex, PIPE_SIZE>) {
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
    let mut written: u32 = 0;
    loop {
        match uart.read_async(&mut buf).await {
            Ok(n) => {
                let bytes = buf.get(..n).unwrap_or(&[]);
                let taken = writer.try_write(bytes).unwrap_or(0);
                written = written.wrapping_add(taken as u32);
                if taken < bytes.len() {
                    record_error(written);
                }
            }
            // The driver has reset the FIFO (overflow) or dropped the bad byte; the stream goes on.
            Err(_) => record_error(written),
        }
    }
}

/// The application's end of the P1 pipe.
pub struct P1Rx {
    reader: Reader<'static, CriticalSectionRawMutex, PIPE_SIZE>,
    /// Bytes returned so far (wrapping), comparable with `Pending::at`.
    read: u32,
}

/// Bytes were lost on the P1 line here (UART error or full pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct P1LineError;

impl core::fmt::Display for P1LineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("bytes lost on the P1 line")
    }
}

impl core::error::Error for P1LineError {}

impl embedded_io_async::Error for P1LineError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::Other
    }
}

impl embedded_io_async::ErrorType for P1Rx {
    type Error = P1LineError;
}

impl embedded_io_async::Read for P1Rx {
    /// Cancellation safe: bytes leave the pipe only after the last await.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, P1LineError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Bytes before a recorded error are returned first, then the error.
            let pending = PENDING.lock(|p| p.get());
            let until_error = (pending.count > 0).then(|| pending.at.wrapping_sub(self.read) as usize);
            if until_error == Some(0) {
                PENDING.lock(|p| {
                    let mut v = p.get();
                    v.count = v.count.saturating_sub(1);
                    p.set(v);
                });
                return Err(P1LineError);
            }
            let available = match select(self.reader.fill_buf(), ERROR_RAISED.wait()).await {
                Either::First(bytes) => bytes,
                Either::Second(()) => continue,
            };
            // The pump records an error before writing the bytes after it, so `until_error` read
            // after this wait bounds what may be returned now.
            let pending = PENDING.lock(|p| p.get());
            let mut n = available.len().min(buf.len());
            if pending.count > 0 {
                n = n.min(pending.at.wrapping_sub(self.read) as usize);
            }
            if n == 0 {
                continue;
            }
            let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) else {
                continue;
            };
            dst.copy_from_slice(src);
            self.reader.consume(n);
            self.read = self.read.wrapping_add(n as u32);
            return Ok(n);
        }
    }
}
