//! The byte stream between the P1 pump and the application, with losses kept in stream order.
//!
//! The pump ([`PumpEnd`]) pushes what the UART received into a pipe and records every loss (a
//! UART error, or bytes that did not fit the pipe) at its position in the stream. The reader
//! ([`P1Rx`], the application's `embedded_io_async::Read`) returns every byte before a loss, then
//! one `Err` per recorded loss, then the bytes after it. Losses recorded before the reader reached
//! the first one are reported at the first one's position.
//!
//! Free of esp-hal so the host can test it (`tests-host/`).

use core::cell::Cell;

use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::{Pipe, Reader, Writer};
use embassy_sync::signal::Signal;

/// Losses not yet returned to the reader: how many, and the stream position (bytes pushed so
/// far, wrapping) of the first.
#[derive(Clone, Copy)]
struct Pending {
    count: u32,
    at: u32,
}

/// The loss record shared by the two ends.
pub struct Losses {
    pending: Mutex<CriticalSectionRawMutex, Cell<Pending>>,
    /// Wakes a reader waiting for bytes when a loss is recorded instead.
    raised: Signal<CriticalSectionRawMutex, ()>,
}

impl Losses {
    pub const fn new() -> Self {
        Self { pending: Mutex::new(Cell::new(Pending { count: 0, at: 0 })), raised: Signal::new() }
    }

    fn record(&self, at: u32) {
        self.pending.lock(|p| {
            let mut v = p.get();
            if v.count == 0 {
                v.at = at;
            }
            v.count = v.count.saturating_add(1);
            p.set(v);
        });
        self.raised.signal(());
    }

    fn get(&self) -> Pending {
        self.pending.lock(|p| p.get())
    }

    fn take_one(&self) {
        self.pending.lock(|p| {
            let mut v = p.get();
            v.count = v.count.saturating_sub(1);
            p.set(v);
        });
    }
}

impl Default for Losses {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits `pipe` into the pump's end and the application's reader.
pub fn channel<'a, const N: usize>(
    pipe: &'a mut Pipe<CriticalSectionRawMutex, N>,
    losses: &'a Losses,
) -> (PumpEnd<'a, N>, P1Rx<'a, N>) {
    let (reader, writer) = pipe.split();
    (PumpEnd { writer, losses, pushed: 0 }, P1Rx { reader, losses, read: 0 })
}

/// The pump's end: never waits.
pub struct PumpEnd<'a, const N: usize> {
    writer: Writer<'a, CriticalSectionRawMutex, N>,
    losses: &'a Losses,
    pushed: u32,
}

impl<const N: usize> PumpEnd<'_, N> {
    /// Queues received bytes; what does not fit is recorded as a loss after the bytes that did.
    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let taken = self.writer.try_write(bytes).unwrap_or(0);
        self.pushed = self.pushed.wrapping_add(taken as u32);
        if taken < bytes.len() {
            self.losses.record(self.pushed);
        }
    }

    /// Records a loss at the current position (a UART error).
    pub fn lost(&mut self) {
        self.losses.record(self.pushed);
    }
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

/// The application's end.
pub struct P1Rx<'a, const N: usize> {
    reader: Reader<'a, CriticalSectionRawMutex, N>,
    losses: &'a Losses,
    /// Bytes returned so far (wrapping), comparable with `Pending::at`.
    read: u32,
}

impl<const N: usize> embedded_io_async::ErrorType for P1Rx<'_, N> {
    type Error = P1LineError;
}

impl<const N: usize> embedded_io_async::Read for P1Rx<'_, N> {
    /// Cancellation safe: bytes leave the pipe only after the last await.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, P1LineError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let pending = self.losses.get();
            if pending.count > 0 && pending.at == self.read {
                self.losses.take_one();
                return Err(P1LineError);
            }
            let available = match select(self.reader.fill_buf(), self.losses.raised.wait()).await {
                Either::First(bytes) => bytes,
                Either::Second(()) => continue,
            };
            // The pump records a loss before it pushes the bytes after it, so the record read
            // after this wait bounds what may be returned now.
            let pending = self.losses.get();
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
