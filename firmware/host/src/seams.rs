//! Host implementations of the application's seams.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use firmware_app::seams::{
    Clock, Connector, Console, Link, LoadState, NetError, PowerError, PowerMonitor, PowerSample, Radio, RadioError,
    SystemInfo,
};

use crate::ble_sink::BleSink;
use firmware_app::power_policy::SupplyEvents;
use firmware_axp192::{Axp192, Config as AxpConfig, Error as AxpError};
use simulator::power::live::{DeviceLoad, LiveModel, SharedAxp192};
use simulator::power::SupplyKind;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// The application's clock: milliseconds since start, `scale` times faster than wall time.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    start: Instant,
    scale: f64,
}

impl ScaledClock {
    /// A clock starting at 0 now. `scale` must be positive (1.0 = real time).
    pub fn new(scale: f64) -> Self {
        ScaledClock { start: Instant::now(), scale }
    }

    /// Seconds of clock time since start (sub-millisecond resolution, for the power model).
    pub fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.scale
    }

    /// Wall-clock duration of `ms` clock milliseconds.
    pub fn wall(&self, ms: u64) -> Duration {
        Duration::from_secs_f64(ms as f64 / 1000.0 / self.scale)
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> u64 {
        (self.start.elapsed().as_secs_f64() * 1000.0 * self.scale) as u64
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        loop {
            let now = self.now_ms();
            if now >= deadline_ms {
                return;
            }
            // Long waits are cut into hours so `u64::MAX` ("forever") cannot overflow.
            let wait = self.wall(deadline_ms - now).min(Duration::from_secs(3600));
            tokio::time::sleep(wait.max(Duration::from_micros(50))).await;
        }
    }
}

/// An I/O error for the P1 port (the port is reopened on the next read).
#[derive(Debug)]
pub struct PortError(pub std::io::ErrorKind);

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "serial port: {:?}", self.0)
    }
}

impl std::error::Error for PortError {}

impl embedded_io::Error for PortError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// The P1 UART: a serial device path, opened at 115200 8N1 and reopened after errors (a pty
/// whose writer restarted, a USB-UART unplugged and plugged back).
pub struct P1Port {
    path: String,
    port: Option<FromTokio<tokio_serial::SerialStream>>,
    data_request: DataRequestPin,
    applied: Option<bool>,
}

impl std::fmt::Debug for P1Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P1Port").field("path", &self.path).field("open", &self.port.is_some()).finish()
    }
}

impl P1Port {
    /// Opens `path` (fails if it cannot be opened now). The data-request level set on
    /// `data_request` is driven on the port's RTS line (a USB-UART's modem control; a pty has
    /// none, and the level is then only recorded).
    pub fn open(path: &str, data_request: DataRequestPin) -> std::io::Result<Self> {
        let port = Self::open_port(path)?;
        Ok(P1Port { path: path.to_owned(), port: Some(port), data_request, applied: None })
    }

    fn open_port(path: &str) -> std::io::Result<FromTokio<tokio_serial::SerialStream>> {
        use tokio_serial::SerialPortBuilderExt;
        let s = tokio_serial::new(path, 115_200)
            .data_bits(tokio_serial::DataBits::Eight)
            .parity(tokio_serial::Parity::None)
            .stop_bits(tokio_serial::StopBits::One)
            .open_native_async()
            .map_err(std::io::Error::from)?;
        Ok(FromTokio::new(s))
    }
}

impl embedded_io::ErrorType for P1Port {
    type Error = PortError;
}

impl embedded_io_async::Read for P1Port {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PortError> {
        let level = self.data_request.high.lock().map(|h| *h).unwrap_or(false);
        if self.applied != Some(level) {
            if let Some(p) = &mut self.port {
                use tokio_serial::SerialPort;
                // A pty refuses modem control; that is expected there.
                let _ = p.inner_mut().write_request_to_send(level);
            }
            self.applied = Some(level);
        }
        let port = match &mut self.port {
            Some(p) => p,
            None => match Self::open_port(&self.path) {
                Ok(p) => {
                    self.applied = None;
                    self.port.insert(p)
                }
                Err(e) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return Err(PortError(e.kind()));
                }
            },
        };
        match embedded_io_async::Read::read(port, buf).await {
            Ok(0) => {
                self.port = None;
                Err(PortError(std::io::ErrorKind::UnexpectedEof))
            }
            Ok(n) => Ok(n),
            Err(e) => {
                self.port = None;
                Err(PortError(e.kind()))
            }
        }
    }
}

/// The data-request line: the P1 port drives it on RTS (see [`P1Port::open`]). A pty has no
/// modem-control lines, so there the level is only recorded (the application logs it); the
/// simulator's data request is driven through its own control.
#[derive(Debug, Default, Clone)]
pub struct DataRequestPin {
    /// The current level.
    pub high: Arc<Mutex<bool>>,
}

impl embedded_hal::digital::ErrorType for DataRequestPin {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for DataRequestPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        if let Ok(mut h) = self.high.lock() {
            *h = false;
        }
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        if let Ok(mut h) = self.high.lock() {
            *h = true;
        }
        Ok(())
    }
}

/// The state of the virtual access point, as set by `wifi up` / `wifi down` on stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WifiState {
    /// The access point is reachable.
    pub up: bool,
    /// How many times it went down since start. A drop is an event, as a disconnect event is on
    /// the ESP32: a drop shorter than the app's next look at the link is still seen.
    pub drops: u64,
}

impl WifiState {
    /// Up, never dropped.
    pub const UP: WifiState = WifiState { up: true, drops: 0 };

    /// Applies `wifi down` (`up == false`) or `wifi up`.
    pub fn set(&mut self, up: bool) {
        if self.up && !up {
            self.drops += 1;
        }
        self.up = up;
    }
}

/// The virtual WiFi link, following a [`WifiState`].
#[derive(Debug, Clone)]
pub struct VirtualLink {
    state: watch::Receiver<WifiState>,
    seen_drops: u64,
    /// RSSI reported while up, dBm.
    pub rssi_dbm: i16,
}

impl VirtualLink {
    /// A link following `state`.
    pub fn new(state: watch::Receiver<WifiState>) -> Self {
        let seen_drops = state.borrow().drops;
        VirtualLink { state, seen_drops, rssi_dbm: -58 }
    }
}

impl Link for VirtualLink {
    async fn connect(&mut self) -> Result<(), NetError> {
        // Associating succeeds once the access point is "up"; the app bounds the wait.
        match self.state.wait_for(|s| s.up).await {
            Ok(s) => {
                self.seen_drops = s.drops;
                Ok(())
            }
            Err(_) => Err(NetError::Other),
        }
    }
    async fn disconnect(&mut self) {}
    fn is_up(&self) -> bool {
        let s = *self.state.borrow();
        s.up && s.drops == self.seen_drops
    }
    async fn wait_down(&mut self) {
        let seen = self.seen_drops;
        if self.state.wait_for(|s| !s.up || s.drops != seen).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
    fn rssi_dbm(&self) -> Option<i16> {
        self.is_up().then_some(self.rssi_dbm)
    }
}

/// TLS for the broker connection: the CA the broker's certificate must chain to, and the record
/// buffers (the same firmware-tls code as on the ESP32).
pub struct TlsSettings {
    ca_der: Vec<u8>,
    buffers: Box<firmware_tls::Buffers<{ firmware_tls::RECORD_BUFFER_MAX }, 4096>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings").field("ca_der_len", &self.ca_der.len()).finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Settings trusting the CA certificate `ca` (PEM or DER); fails if it is not a usable one.
    pub fn new(ca: &[u8]) -> Result<Self, firmware_tls::Error> {
        let mut scratch = vec![0u8; ca.len()];
        let ca_der = firmware_tls::TrustAnchor::from_pem_or_der(ca, &mut scratch)?.der().to_vec();
        Ok(TlsSettings { ca_der, buffers: Box::new(firmware_tls::Buffers::new()) })
    }
}

/// Real TCP (or TLS over TCP) to the broker; refuses while the virtual link is down.
#[derive(Debug)]
pub struct TcpConnector {
    link: watch::Receiver<WifiState>,
    tls: Option<TlsSettings>,
}

impl TcpConnector {
    /// A connector gated by the virtual link `link`, without TLS.
    pub fn new(link: watch::Receiver<WifiState>) -> Self {
        TcpConnector { link, tls: None }
    }

    /// The same, able to connect with TLS (`mqtts://` brokers).
    pub fn with_tls(mut self, tls: Option<TlsSettings>) -> Self {
        self.tls = tls;
        self
    }
}

impl Connector for TcpConnector {
    type Conn<'a> = firmware_tls::Stream<'a, FromTokio<TcpStream>>;

    async fn connect<'a>(&'a mut self, host: &str, port: u16, tls: bool) -> Result<Self::Conn<'a>, NetError> {
        if !self.link.borrow().up {
            return Err(NetError::LinkDown);
        }
        let s = TcpStream::connect((host, port)).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => NetError::Refused,
            std::io::ErrorKind::TimedOut => NetError::Timeout,
            _ if e.to_string().contains("lookup") => NetError::Dns,
            _ => NetError::Other,
        })?;
        let _ = s.set_nodelay(true);
        let s = FromTokio::new(s);
        if !tls {
            return Ok(firmware_tls::Stream::Plain(s));
        }
        let Some(settings) = self.tls.as_mut() else { return Err(NetError::TlsCertificate) };
        let options = firmware_tls::Options {
            ca: firmware_tls::TrustAnchor::from_der(&settings.ca_der).map_err(NetError::from)?,
            server_name: host,
            // Certificate dates are wall-clock dates, whatever --time-scale does to the app's clock.
            now_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            now_is_lower_bound: false,
            max_fragment_length: None,
        };
        settings.buffers.connect(s, &options, rand_core::OsRng).await.map(firmware_tls::Stream::Tls).map_err(NetError::from)
    }
}

/// The virtual M5StickC's AXP192: the real `firmware-axp192` driver over the simulator's AXP192
/// emulator ([`SharedAxp192`]), whose P1-supply/charger/LiPo model runs on the firmware's scaled
/// clock. The firmware's load states drive the model's load, and the power policy's charge limit
/// becomes REG33 writes, as on the device.
///
/// The chip is set up (headless, 100 mA charging, ADCs on) on the first successful contact; until
/// then it charges at its power-on default (780 mA), as a cold AXP192 does. While the model is
/// browned out the bus does not answer ([`PowerError::I2c`]).
pub struct Axp192Supply {
    clock: ScaledClock,
    chip: SharedAxp192,
    axp: Axp192<SharedAxp192>,
    ready: bool,
    charge_starved: bool,
}

impl std::fmt::Debug for Axp192Supply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Axp192Supply").field("ready", &self.ready).finish_non_exhaustive()
    }
}

impl Axp192Supply {
    /// A stick on `supply` with the battery at `soc` (0..=1), its model following `clock`.
    pub fn new(supply: SupplyKind, soc: f64, clock: ScaledClock) -> Self {
        let chip = SharedAxp192::new(LiveModel::new(supply, soc.clamp(0.0, 1.0)), move || clock.now_s());
        Axp192Supply { clock, axp: Axp192::new(chip.clone()), chip, ready: false, charge_starved: false }
    }

    /// The emulated chip (for supply events from the control channel).
    pub fn chip(&self) -> SharedAxp192 {
        self.chip.clone()
    }

    async fn init(&mut self) -> Result<(), PowerError> {
        let cfg = AxpConfig::headless();
        self.axp.init(&cfg).await.map_err(axp_error)?;
        self.ready = true;
        // The ADCs were just switched on: their registers hold 0 until the first conversion.
        let period_ms = 2000 / u64::from(cfg.adc_rate.hz().max(1));
        tokio::time::sleep(self.clock.wall(period_ms)).await;
        Ok(())
    }
}

fn axp_error(e: AxpError) -> PowerError {
    match e {
        AxpError::WrongChip(_) => PowerError::Absent,
        _ => PowerError::I2c,
    }
}

impl PowerMonitor for Axp192Supply {
    async fn sample(&mut self) -> Result<PowerSample, PowerError> {
        if !self.ready {
            self.init().await?;
        }
        let m = self.axp.measurements().await.map_err(axp_error)?;
        self.charge_starved = m.charge_starved();
        Ok(PowerSample::from(&m))
    }

    fn load_state(&mut self, state: LoadState) {
        self.chip.set_state(match state {
            LoadState::Boot => DeviceLoad::Boot,
            LoadState::Idle => DeviceLoad::Idle,
            LoadState::WifiConnecting => DeviceLoad::WifiConnecting,
            LoadState::WifiConnected => DeviceLoad::WifiConnected,
            LoadState::Transmitting => DeviceLoad::Transmitting,
            LoadState::BleAdvertising => DeviceLoad::BleAdvertising,
        });
    }

    /// See [`Axp192::limit_charging`]: off below 100 mA, else the largest step not above.
    async fn set_charge_limit_ma(&mut self, ma: u16) -> Result<(), PowerError> {
        if !self.ready {
            self.init().await?;
        }
        self.axp.limit_charging(ma).await.map_err(axp_error)
    }

    fn tx_power_dbm(&mut self, dbm: i8) {
        self.chip.lock().set_tx_dbm(dbm);
    }

    async fn take_events(&mut self) -> Result<SupplyEvents, PowerError> {
        let irq = self.axp.take_irqs().await.map_err(axp_error)?;
        Ok(SupplyEvents {
            acin_removed: irq.acin_removed,
            acin_inserted: irq.acin_inserted,
            charge_starved: self.charge_starved,
        })
    }
}

/// Console lines on stdout, one `write` per line.
#[derive(Debug, Default)]
pub struct StdoutConsole;

impl Console for StdoutConsole {
    fn line(&mut self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

/// The host's system facts: no heap figure of the device's kind, a power-on reset.
#[derive(Debug, Default)]
pub struct HostSystem;

impl SystemInfo for HostSystem {
    fn free_heap_bytes(&self) -> Option<u32> {
        None
    }
    fn reset_reason(&self) -> &'static str {
        "power_on"
    }
}

/// The virtual BLE radio: one UDP datagram per advertisement (see [`crate::ble_sink`]).
#[derive(Debug)]
pub struct UdpRadio {
    sink: BleSink,
}

impl UdpRadio {
    /// A radio sending to `sink`.
    pub fn new(sink: BleSink) -> Self {
        UdpRadio { sink }
    }
}

impl Radio for UdpRadio {
    async fn advertise(&mut self, addr: [u8; 6], adv_data: &[u8]) -> Result<(), RadioError> {
        self.sink.send(addr, adv_data).map_err(|_| RadioError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wifi_drop_shorter_than_a_look_at_the_link_is_still_seen() {
        let (tx, rx) = watch::channel(WifiState::UP);
        let mut link = VirtualLink::new(rx);
        assert!(link.is_up());
        tx.send_modify(|s| s.set(false));
        tx.send_modify(|s| s.set(true));
        assert!(!link.is_up(), "the drop happened, though the access point is back");
        tokio::time::timeout(Duration::from_secs(1), link.wait_down()).await.expect("wait_down sees the past drop");
        link.connect().await.expect("the access point is up");
        assert!(link.is_up());
        let pending = tokio::time::timeout(Duration::from_millis(20), link.wait_down()).await;
        assert!(pending.is_err(), "no new drop after reconnecting");
    }

    #[test]
    fn only_an_up_to_down_change_counts_as_a_drop() {
        let mut s = WifiState::UP;
        s.set(true);
        s.set(false);
        s.set(false);
        assert_eq!(s, WifiState { up: false, drops: 1 });
        s.set(true);
        s.set(false);
        assert_eq!(s.drops, 2);
    }
}
