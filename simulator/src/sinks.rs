//! Where telegram bytes go: a pseudo-terminal, a real serial port, a TCP server for any number
//! of clients, stdout or a file. Every sink is a `tokio::io::AsyncWrite`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_serial::{SerialPort, SerialPortBuilderExt, SerialStream};

use crate::profile::{LineSettings, Parity};
use crate::run::DataRequest;

/// The meter end of a pseudo-terminal pair. The other end's path is [`PtySink::path`]; open it as a
/// serial port. While no process has that end open, bytes are dropped (as a meter's are when
/// nothing is plugged in) instead of piling up in the kernel's buffer.
#[derive(Debug)]
pub struct PtySink {
    master: SerialStream,
    path: String,
    dropped: u64,
}

impl PtySink {
    /// Creates the pair.
    pub fn open() -> io::Result<PtySink> {
        let (master, slave) = SerialStream::pair().map_err(io::Error::other)?;
        let path = slave.name().ok_or_else(|| io::Error::other("pty has no slave name"))?;
        drop(slave);
        Ok(PtySink { master, path, dropped: 0 })
    }

    /// The device path for the reader (e.g. `/dev/pts/7`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Bytes dropped because no reader had the device open.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether some process has the reader end open (the master reads EIO when none has).
    fn reader_present(&mut self) -> bool {
        let mut scratch = [0u8; 256];
        // EIO (5): no process has the other end open.
        !matches!(io::Read::read(&mut self.master, &mut scratch), Err(e) if e.raw_os_error() == Some(5))
    }
}

impl AsyncWrite for PtySink {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if !self.reader_present() {
            self.dropped += buf.len() as u64;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.master).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.master).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.master).poll_shutdown(cx)
    }
}

/// Which modem-status input carries data request on a real serial port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModemLine {
    /// Clear To Send.
    Cts,
    /// Data Set Ready.
    Dsr,
    /// Data Carrier Detect.
    Dcd,
}

/// Opens a real serial port with the profile's line settings (optionally another baud).
pub fn open_serial(device: &str, line: LineSettings) -> io::Result<SerialStream> {
    let data_bits = if line.data_bits == 7 { tokio_serial::DataBits::Seven } else { tokio_serial::DataBits::Eight };
    let parity = match line.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stop = if line.stop_bits == 2 { tokio_serial::StopBits::Two } else { tokio_serial::StopBits::One };
    let mut port = tokio_serial::new(device, line.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(|e| io::Error::other(format!("{device}: {e}")))?;
    // A second handle polls the modem-status input (see `watch_modem_line`).
    port.set_exclusive(false).map_err(|e| io::Error::other(format!("{device}: {e}")))?;
    Ok(port)
}

/// Polls `line` on `device` every 2 ms in a thread and mirrors it into `dr` (asserted = line
/// active). Returns when the device disappears. Bench wiring: the gateway's data-request output
/// (through a level shifter or opto-coupler) to the adapter's CTS/DSR/DCD input.
pub fn watch_modem_line(device: &str, line: ModemLine, dr: DataRequest) -> io::Result<std::thread::JoinHandle<()>> {
    let mut port = tokio_serial::new(device, 9600)
        .open_native()
        .map_err(|e| io::Error::other(format!("{device} (modem status): {e}")))?;
    let first = match line {
        ModemLine::Cts => port.read_clear_to_send(),
        ModemLine::Dsr => port.read_data_set_ready(),
        ModemLine::Dcd => port.read_carrier_detect(),
    };
    let first = first.map_err(|e| io::Error::other(format!("{device}: cannot read {line:?}: {e}")))?;
    dr.set(first);
    Ok(std::thread::spawn(move || loop {
        let v = match line {
            ModemLine::Cts => port.read_clear_to_send(),
            ModemLine::Dsr => port.read_data_set_ready(),
            ModemLine::Dcd => port.read_carrier_detect(),
        };
        match v {
            Ok(v) => {
                if v != dr.is_asserted() {
                    dr.set(v);
                }
            }
            Err(e) => {
                eprintln!("p1-sim: modem status lost ({e}); data request stays {}", if dr.is_asserted() { "asserted" } else { "released" });
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }))
}

type Clients = Arc<Mutex<Vec<mpsc::Sender<Arc<[u8]>>>>>;

/// A ser2net-style TCP server: every connected client receives the same bytes from the moment
/// it connects. A client that falls more than `backlog` writes behind is disconnected rather than
/// slowing the meter down.
#[derive(Debug, Clone)]
pub struct TcpFanout {
    clients: Clients,
    addr: SocketAddr,
    stats: Arc<Mutex<FanoutStats>>,
}

/// Counters of a [`TcpFanout`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanoutStats {
    /// Clients accepted so far.
    pub accepted: u64,
    /// Clients dropped for falling behind.
    pub dropped_slow: u64,
}

impl TcpFanout {
    /// Binds `addr` (port 0 picks a free port) and starts accepting clients.
    pub async fn bind(addr: &str) -> io::Result<TcpFanout> {
        let listener = TcpListener::bind(addr).await.map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
        TcpFanout::from_listener(listener, 64)
    }

    /// Serves on an already bound listener; `backlog` is the per-client queue in writes.
    pub fn from_listener(listener: TcpListener, backlog: usize) -> io::Result<TcpFanout> {
        let addr = listener.local_addr()?;
        let clients: Clients = Arc::default();
        let stats: Arc<Mutex<FanoutStats>> = Arc::default();
        let (c2, s2) = (clients.clone(), stats.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { continue };
                let _ = sock.set_nodelay(true);
                let (tx, mut rx) = mpsc::channel::<Arc<[u8]>>(backlog);
                if let Ok(mut v) = c2.lock() {
                    v.push(tx);
                }
                if let Ok(mut s) = s2.lock() {
                    s.accepted += 1;
                }
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    while let Some(b) = rx.recv().await {
                        if sock.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(TcpFanout { clients, addr, stats })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Clients currently connected.
    pub fn client_count(&self) -> usize {
        self.clients.lock().map(|mut v| {
            v.retain(|c| !c.is_closed());
            v.len()
        }).unwrap_or(0)
    }

    /// Counters.
    pub fn stats(&self) -> FanoutStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Waits until at least `n` clients are connected, at most `timeout`.
    pub async fn wait_for_clients(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.client_count() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

impl AsyncWrite for TcpFanout {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let data: Arc<[u8]> = Arc::from(buf);
        let mut slow = 0;
        if let Ok(mut v) = self.clients.lock() {
            v.retain(|c| match c.try_send(data.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slow += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
        if slow > 0
            && let Ok(mut s) = self.stats.lock()
        {
            s.dropped_slow += slow;
        }
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Ok(mut v) = self.clients.lock() {
            v.clear();
        }
        Poll::Ready(Ok(()))
    }
}

/// A sink that discards everything (benchmarks).
#[derive(Debug, Default)]
pub struct NullSink;

impl AsyncWrite for NullSink {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
