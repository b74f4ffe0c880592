//! WiFi station and the embassy-net stack, as `firmware-app`'s link and connector seams.
//!
//! The application drives the link: nothing here reconnects on its own, so in the `ble`
//! transport (WiFi never created) and between the application's back-off attempts the radio
//! stays off.

use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicI8, Ordering};

use embassy_executor::Spawner;
use embassy_futures::select::select;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::{ConnectError, State, TcpSocket};
use embassy_net::{IpAddress, Runner, Stack, StackResources};
use embassy_time::{Duration, Timer};
use esp_hal::peripherals::WIFI;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ConnectionError, ControllerConfig, Interface, PowerSaveMode, WifiController, WifiError,
};
use firmware_app::console::Line;
use firmware_app::seams::{Connector, Link, NetError};
use firmware_tls::{Buffers, Options, Stream, TrustAnchor, RECORD_BUFFER_MAX};
use static_cell::{ConstStaticCell, StaticCell};

/// MQTT socket buffers. The largest packet the application sends is a raw telegram plus its
/// topic (`firmware_app::app::TX_MAX`); it writes through the socket in pieces, so the TX buffer
/// only bounds how much is in flight.
const TCP_RX: usize = 1024;
const TCP_TX: usize = 2048;

/// TLS record buffers: incoming records up to the protocol maximum (the broker picks the record
/// size), outgoing ones up to this size (longer writes go out as several records).
const TLS_WRITE: usize = 4096;

/// Why WiFi could not be set up.
#[derive(Debug, Clone, Copy)]
pub enum NetSetupError {
    /// The SSID does not fit the driver (over 32 bytes).
    Ssid,
    /// The passphrase does not fit the driver (over 64 bytes).
    Password,
    /// The WiFi driver refused to start.
    Wifi(WifiError),
    /// The network task could not be spawned.
    Spawn,
}

impl core::fmt::Display for NetSetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetSetupError::Ssid => f.write_str("wifi_ssid too long for the driver"),
            NetSetupError::Password => f.write_str("wifi_password too long for the driver"),
            NetSetupError::Wifi(e) => write!(f, "wifi driver: {e:?}"),
            NetSetupError::Spawn => f.write_str("cannot spawn the network task"),
        }
    }
}

/// Creates the WiFi controller (station, not yet connecting) and the IP stack, and spawns the
/// stack's runner.
pub fn start(
    spawner: Spawner,
    wifi: WIFI<'static>,
    ssid: &str,
    password: &str,
    tls: Option<Tls>,
) -> Result<(WifiLink, TcpConnector), NetSetupError> {
    let ssid = ssid.try_into().map_err(|_| NetSetupError::Ssid)?;
    let authentication = if password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(password.try_into().map_err(|_| NetSetupError::Password)?)
    };
    let station = StationConfig::default().with_ssid(ssid).with_authentication(authentication);
    let controller = WifiController::new(wifi, ControllerConfig::default().with_initial_config(Config::Station(station)))
        .map_err(NetSetupError::Wifi)?;
    // Modem sleep between DTIM beacons: about 31 mA instead of 100+ mA of constant receive on a
    // supply that is the meter's P1 port and an 80 mAh cell (hardware.md). WiFi/BLE coexistence
    // needs it too. Incoming packets (PUBACKs) wait up to one beacon interval; sending does not.
    let mut controller = controller;
    controller.set_power_saving(PowerSaveMode::Minimum).map_err(NetSetupError::Wifi)?;

    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let seed = {
        let rng = esp_hal::rng::Rng::new();
        (u64::from(rng.random()) << 32) | u64::from(rng.random())
    };
    let (stack, runner) = embassy_net::new(
        Interface::station(),
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(net_task(runner).map_err(|_| NetSetupError::Spawn)?);

    static RX: StaticCell<[u8; TCP_RX]> = StaticCell::new();
    static TX: StaticCell<[u8; TCP_TX]> = StaticCell::new();
    Ok((
        WifiLink { wifi: Some((controller, stack)), tx_dbm: i8::MIN },
        TcpConnector { stack: Some(stack), socket: None, buffers: Some((RX.init([0; TCP_RX]), TX.init([0; TCP_TX]))), tls },
    ))
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}

/// The WiFi TX power the power policy asked for, dBm; `i8::MIN` until it has (the driver's
/// default applies until then).
static TX_POWER_DBM: AtomicI8 = AtomicI8::new(i8::MIN);

/// Sets the WiFi TX power the link applies (at its next connect, or within a second while up).
pub fn set_tx_power_dbm(dbm: i8) {
    TX_POWER_DBM.store(dbm, Ordering::Relaxed);
}

/// The highest TX power applied, dBm: esp-radio reports association failures on some boards
/// above about 16 dBm, and a gateway that cannot associate is worse than a weaker signal.
const TX_DBM_MAX: i8 = 16;

/// Applies a TX power request not yet applied. The driver takes 0.25 dBm steps, 2 dBm at least.
fn apply_tx_power(controller: &mut WifiController<'static>, applied: &mut i8) {
    let dbm = TX_POWER_DBM.load(Ordering::Relaxed);
    if dbm == i8::MIN || dbm == *applied {
        return;
    }
    let quarter_dbm = dbm.clamp(2, TX_DBM_MAX).saturating_mul(4);
    match controller.set_max_tx_power(quarter_dbm) {
        Ok(()) => *applied = dbm,
        Err(e) => {
            // Not retried until the policy asks for another power: one line, not one per second.
            *applied = dbm;
            let line = board_line("error").kv("kind", "wifi_tx_power").kv("dbm", dbm).kv("detail", DebugText(&e));
            esp_println::println!("{}", line.as_str());
        }
    }
}

fn board_line(event: &str) -> Line {
    Line::new(embassy_time::Instant::now().as_millis(), event)
}

/// The WiFi station as the application's link: up = associated and holding a DHCP lease.
pub struct WifiLink {
    wifi: Option<(WifiController<'static>, Stack<'static>)>,
    /// The TX power last given to the driver, dBm (`i8::MIN`: none yet).
    tx_dbm: i8,
}

impl WifiLink {
    /// A board running without WiFi (transport `ble`): the link never comes up.
    pub fn absent() -> Self {
        Self { wifi: None, tx_dbm: i8::MIN }
    }
}

impl Link for WifiLink {
    async fn connect(&mut self) -> Result<(), NetError> {
        let Some((controller, stack)) = self.wifi.as_mut() else {
            return Err(NetError::LinkDown);
        };
        apply_tx_power(controller, &mut self.tx_dbm);
        if !controller.is_connected()
            && let Err(e) = controller.connect_async().await
        {
            // The app reports `link_down`; the driver's reason (no AP, wrong password, ...) is
            // only known here.
            let line = board_line("error").kv("kind", "wifi_connect");
            let line = match e {
                ConnectionError::Failed(info) => line.kv("reason", DebugText(&info.reason)).kv("rssi", info.rssi),
                other => line.kv("detail", DebugText(&other)),
            };
            esp_println::println!("{}", line.as_str());
            return Err(NetError::LinkDown);
        }
        stack.wait_config_up().await;
        Ok(())
    }

    async fn disconnect(&mut self) {
        if let Some((controller, _)) = self.wifi.as_mut() {
            let _ = controller.disconnect_async().await;
        }
    }

    fn is_up(&self) -> bool {
        self.wifi.as_ref().is_some_and(|(c, s)| c.is_connected() && s.is_config_up())
    }

    async fn wait_down(&mut self) {
        // The disconnect event is the fast path; the periodic re-check covers a disconnect that
        // happened before the event subscription.
        while self.is_up() {
            if let Some((controller, _)) = self.wifi.as_mut() {
                apply_tx_power(controller, &mut self.tx_dbm);
                select(controller.wait_for_disconnect_async(), Timer::after(Duration::from_secs(1))).await;
            }
        }
    }

    fn rssi_dbm(&self) -> Option<i16> {
        let (controller, _) = self.wifi.as_ref()?;
        if !controller.is_connected() {
            return None;
        }
        controller.rssi().ok().and_then(|r| i16::try_from(r).ok())
    }
}

/// TCP connections to the broker over embassy-net, one at a time (the application holds at most
/// one broker session). The socket lives here, not in the connection: when the application drops
/// a connection the socket is aborted, so the broker gets a reset at once instead of holding a
/// half-open session until its keep-alive expires.
pub struct TcpConnector {
    stack: Option<Stack<'static>>,
    socket: Option<TcpSocket<'static>>,
    buffers: Option<(&'static mut [u8], &'static mut [u8])>,
    tls: Option<Tls>,
}

impl TcpConnector {
    /// A board running without WiFi: every connect fails with `link_down`.
    pub fn absent() -> Self {
        Self { stack: None, socket: None, buffers: None, tls: None }
    }
}

/// What TLS to the broker needs: the CA, record buffers and a cryptographic RNG.
pub struct Tls {
    ca: TrustAnchor<'static>,
    buffers: &'static mut Buffers<RECORD_BUFFER_MAX, TLS_WRITE>,
    rng: esp_hal::rng::Trng,
}

impl Tls {
    /// TLS trusting the CA certificate `ca` (DER), or why it cannot be set up. Once only: the
    /// record buffers are static.
    pub fn new(ca: &'static [u8], rng: esp_hal::rng::Trng) -> Result<Self, TlsSetupError> {
        // Const-initialised in .bss: 20 KiB never pass through the stack.
        static BUFFERS: ConstStaticCell<Buffers<RECORD_BUFFER_MAX, TLS_WRITE>> = ConstStaticCell::new(Buffers::new());
        if ca.is_empty() {
            return Err(TlsSetupError::NoCa);
        }
        let ca = TrustAnchor::from_der(ca).map_err(|_| TlsSetupError::BadCa)?;
        let buffers = BUFFERS.try_take().ok_or(TlsSetupError::Again)?;
        Ok(Tls { ca, buffers, rng })
    }
}

/// Why TLS could not be set up at boot.
#[derive(Debug, Clone, Copy)]
pub enum TlsSetupError {
    /// The image has no CA certificate (built without `P1GW_CA`).
    NoCa,
    /// The baked-in CA is not an X.509 certificate with a P-256 key.
    BadCa,
    /// `Tls::new` was called twice.
    Again,
}

impl core::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TlsSetupError::NoCa => "mqtts:// broker but no CA certificate in this image",
            TlsSetupError::BadCa => "the CA is not an X.509 certificate with a P-256 key",
            TlsSetupError::Again => "TLS set up twice",
        })
    }
}

impl Connector for TcpConnector {
    type Conn<'a>
        = Stream<'a, TcpConn<'a>>
    where
        Self: 'a;

    async fn connect<'a>(&'a mut self, host: &str, port: u16, tls: bool) -> Result<Self::Conn<'a>, NetError> {
        let Some(stack) = self.stack else {
            return Err(NetError::LinkDown);
        };
        if tls && self.tls.is_none() {
            // No CA baked in (P1GW_CA): refuse rather than send plain text or trust anyone.
            return Err(NetError::TlsCertificate);
        }
        if !stack.is_config_up() {
            return Err(NetError::LinkDown);
        }
        let addr = match host.parse::<Ipv4Addr>() {
            Ok(ip) => IpAddress::Ipv4(ip),
            Err(_) => {
                let addrs = stack.dns_query(host, DnsQueryType::A).await.map_err(|_| NetError::Dns)?;
                *addrs.first().ok_or(NetError::Dns)?
            }
        };
        if self.socket.is_none() {
            let (rx, tx) = self.buffers.take().ok_or(NetError::Other)?;
            self.socket = Some(TcpSocket::new(stack, rx, tx));
        }
        let socket = self.socket.as_mut().ok_or(NetError::Other)?;
        if socket.state() != State::Closed {
            // A connect the application gave up on (timeout) left the socket mid-handshake.
            socket.abort();
            Timer::after(Duration::from_millis(20)).await;
        }
        socket.connect((addr, port)).await.map_err(|e| match e {
            ConnectError::ConnectionReset => NetError::Refused,
            ConnectError::TimedOut => NetError::Timeout,
            ConnectError::NoRoute => NetError::LinkDown,
            _ => NetError::Other,
        })?;
        let conn = TcpConn { socket };
        let Some(t) = self.tls.as_mut().filter(|_| tls) else {
            return Ok(Stream::Plain(conn));
        };
        let options = Options {
            ca: t.ca,
            server_name: host,
            // No network time yet: the build time plus the uptime is a lower bound of the date, so a
            // certificate issued after the build is accepted and only expiry is checked.
            now_unix_s: crate::config::BUILD_UNIX_S + embassy_time::Instant::now().as_secs(),
            now_is_lower_bound: true,
            max_fragment_length: None,
        };
        t.buffers.connect(conn, &options, &mut t.rng).await.map(Stream::Tls).map_err(NetError::from)
    }
}

/// A broker connection; dropping it aborts the TCP connection (RST).
pub struct TcpConn<'a> {
    socket: &'a mut TcpSocket<'static>,
}

impl Drop for TcpConn<'_> {
    fn drop(&mut self) {
        self.socket.abort();
    }
}

impl embedded_io_async::ErrorType for TcpConn<'_> {
    type Error = embassy_net::tcp::Error;
}

impl embedded_io_async::Read for TcpConn<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        embedded_io_async::Read::read(self.socket, buf).await
    }
}

impl embedded_io_async::Write for TcpConn<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        embedded_io_async::Write::write(self.socket, buf).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        embedded_io_async::Write::flush(self.socket).await
    }
}

/// Formats a `Debug` value with `Display`, for console values.
pub struct DebugText<'a, T: core::fmt::Debug>(pub &'a T);

impl<T: core::fmt::Debug> core::fmt::Display for DebugText<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
