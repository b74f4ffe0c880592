//! The seams: everything the application needs from the board, as small traits.
//!
//! The P1 UART is any [`embedded_io_async::Read`] and the data-request line any
//! [`embedded_hal::digital::OutputPin`]; the traits below cover the rest. Every async method here may
//! be cancelled (its future dropped before completion) when a timeout or another event wins a
//! `select`; implementations must not lose data when that happens (`read` on a UART or a TCP socket
//! keeps unread bytes buffered, which is all this asks).
#![allow(async_fn_in_trait)]

use embedded_io_async::{Read, Write};

/// Monotonic time since boot, in milliseconds, and a way to wait for it.
///
/// This is the only clock the application reads: keep-alive, back-off, silence detection, publish
/// intervals and uptime all come from it. A host may run it faster than wall time.
pub trait Clock {
    /// Milliseconds since boot; never decreases.
    fn now_ms(&self) -> u64;
    /// Completes once `now_ms() >= deadline_ms` (at once if that is already so).
    async fn sleep_until(&self, deadline_ms: u64);
}

/// Why the network link (WiFi) or a TCP connection is not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetError {
    /// The link (WiFi association, DHCP) is down.
    LinkDown,
    /// The broker's host name did not resolve.
    Dns,
    /// The TCP connection was refused or reset.
    Refused,
    /// The operation did not complete in time.
    Timeout,
    /// The TLS handshake failed (refused by the broker, malformed, or the broker did not prove
    /// it holds its certificate's key).
    Tls,
    /// The broker's certificate is not issued by the configured CA.
    TlsUnknownIssuer,
    /// The broker's certificate has expired.
    TlsExpired,
    /// The broker's certificate is not valid yet (often: the device's clock is wrong).
    TlsNotYetValid,
    /// The broker's certificate does not name the configured broker host.
    TlsHostname,
    /// The broker's certificate is malformed or uses an unsupported algorithm, or the configured
    /// CA is unusable.
    TlsCertificate,
    /// Anything else the board reports.
    Other,
}

impl NetError {
    /// Short, stable name for console lines and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            NetError::LinkDown => "link_down",
            NetError::Dns => "dns",
            NetError::Refused => "refused",
            NetError::Timeout => "timeout",
            NetError::Tls => "tls",
            NetError::TlsUnknownIssuer => "tls_unknown_issuer",
            NetError::TlsExpired => "tls_expired",
            NetError::TlsNotYetValid => "tls_not_yet_valid",
            NetError::TlsHostname => "tls_hostname_mismatch",
            NetError::TlsCertificate => "tls_bad_certificate",
            NetError::Other => "other",
        }
    }

    /// True for every TLS failure (handshake or certificate).
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            NetError::Tls
                | NetError::TlsUnknownIssuer
                | NetError::TlsExpired
                | NetError::TlsNotYetValid
                | NetError::TlsHostname
                | NetError::TlsCertificate
        )
    }
}

/// The application's name for a firmware-tls failure: one variant per certificate problem, so the
/// console line and the counters name the cause; I/O during the handshake is a refused connection.
#[cfg(feature = "tls")]
impl From<firmware_tls::Error> for NetError {
    fn from(e: firmware_tls::Error) -> Self {
        use firmware_tls::Error as E;
        match e {
            E::UnknownIssuer => NetError::TlsUnknownIssuer,
            E::Expired => NetError::TlsExpired,
            E::NotYetValid => NetError::TlsNotYetValid,
            E::HostnameMismatch => NetError::TlsHostname,
            E::BadCa | E::BadCertificate | E::UnsupportedCertificate => NetError::TlsCertificate,
            E::Io(_) | E::Closed => NetError::Refused,
            _ => NetError::Tls,
        }
    }
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for NetError {}

/// The network link: WiFi on the device, a virtual link on the host.
pub trait Link {
    /// Brings the link up (associate, DHCP). Returns once it is up or has failed; the application
    /// applies its own timeout and back-off around it.
    async fn connect(&mut self) -> Result<(), NetError>;
    /// Takes the link down (to save power, or before a deep sleep).
    async fn disconnect(&mut self);
    /// True while the link is up.
    fn is_up(&self) -> bool;
    /// Completes when the link goes down (at once if it is down).
    async fn wait_down(&mut self);
    /// Received signal strength of the access point, in dBm, when the link is up.
    fn rssi_dbm(&self) -> Option<i16>;
}

/// TCP (or TLS) connections to the broker.
///
/// The board resolves the host name; TLS, when configured, is the board's to wrap around the
/// socket (the same application code runs over either).
pub trait Connector {
    /// A connected byte stream. Dropping it closes the connection.
    type Conn<'a>: Read + Write
    where
        Self: 'a;
    /// Opens a connection to `host:port`.
    async fn connect<'a>(&'a mut self, host: &str, port: u16, tls: bool) -> Result<Self::Conn<'a>, NetError>;
}

/// One measurement of the supply, from the AXP192 (or its emulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PowerSample {
    /// ACIN (the P1 port's 5 V) voltage, mV.
    pub acin_mv: u16,
    /// ACIN current, mA.
    pub acin_ma: u16,
    /// VBUS (USB) voltage, mV.
    pub vbus_mv: u16,
    /// Battery voltage, mV.
    pub battery_mv: u16,
    /// Battery charge current, mA.
    pub charge_ma: u16,
    /// Battery discharge current, mA.
    pub discharge_ma: u16,
    /// AXP192 internal temperature, 0.1 °C.
    pub temp_dc: i16,
    /// ACIN present and usable.
    pub acin_present: bool,
    /// The charger is charging the battery.
    pub charging: bool,
}

fn saturate_u16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

impl From<&firmware_axp192::Measurements> for PowerSample {
    /// The chip's readings in the app's units (mV, mA, 0.1 °C), saturating rather than wrapping.
    fn from(m: &firmware_axp192::Measurements) -> Self {
        PowerSample {
            acin_mv: saturate_u16(m.acin_voltage.0),
            acin_ma: saturate_u16(m.acin_current.0 / 1000),
            vbus_mv: saturate_u16(m.vbus_voltage.0),
            battery_mv: saturate_u16(m.battery_voltage.0),
            charge_ma: saturate_u16(m.battery_charge_current.0 / 1000),
            discharge_ma: saturate_u16(m.battery_discharge_current.0 / 1000),
            temp_dc: m.temperature.0,
            acin_present: m.power_status.acin_present && m.power_status.acin_usable,
            charging: m.charge_status.charging,
        }
    }
}

/// Why a power sample could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PowerError {
    /// The I2C transaction failed (no ACK, bus error, arbitration loss).
    I2c,
    /// No power monitor on this board.
    Absent,
}

impl core::fmt::Display for PowerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PowerError::I2c => "i2c",
            PowerError::Absent => "absent",
        })
    }
}

impl core::error::Error for PowerError {}

/// What the firmware is doing, as far as its current draw is concerned. The board forwards it to
/// the power model (host) or ignores it (device); the power policy reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadState {
    /// Booting, radio off.
    Boot,
    /// Radio off, reading the meter.
    Idle,
    /// Associating with the access point / DHCP.
    WifiConnecting,
    /// Associated, modem sleep between transmissions.
    WifiConnected,
    /// Sending (a burst of MQTT traffic).
    Transmitting,
    /// BLE advertising burst.
    BleAdvertising,
}

impl LoadState {
    /// Short, stable name for console lines.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadState::Boot => "boot",
            LoadState::Idle => "idle",
            LoadState::WifiConnecting => "wifi_connecting",
            LoadState::WifiConnected => "wifi_connected",
            LoadState::Transmitting => "transmitting",
            LoadState::BleAdvertising => "ble_advertising",
        }
    }
}

/// The power monitor (the AXP192 through `firmware-axp192`, or a fixed supply).
pub trait PowerMonitor {
    /// Takes one sample.
    async fn sample(&mut self) -> Result<PowerSample, PowerError>;
    /// Told whenever the firmware's load state changes.
    fn load_state(&mut self, _state: LoadState) {}
    /// Caps the battery charge current (the power policy's lever), mA.
    async fn set_charge_limit_ma(&mut self, _ma: u16) -> Result<(), PowerError> {
        Err(PowerError::Absent)
    }
    /// Told the WiFi TX power the power policy decided on, dBm (the host's power model scales its
    /// radio peaks with it; the device applies it to the radio).
    fn tx_power_dbm(&mut self, _dbm: i8) {}
    /// Supply events the chip latched since the previous call (the AXP192's IRQ status), cleared
    /// by reading. A trip shorter than the sampling period shows up only here. Boards without
    /// such latches report none; the firmware then sees only what its samples show.
    async fn take_events(&mut self) -> Result<crate::power_policy::SupplyEvents, PowerError> {
        Ok(crate::power_policy::SupplyEvents::default())
    }
}

/// A board without a power monitor: every sample reports [`PowerError::Absent`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPowerMonitor;

impl PowerMonitor for NoPowerMonitor {
    async fn sample(&mut self) -> Result<PowerSample, PowerError> {
        Err(PowerError::Absent)
    }
}

/// Why an advertisement could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RadioError;

impl core::fmt::Display for RadioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("radio")
    }
}

impl core::error::Error for RadioError {}

/// The BLE radio: sends one legacy (≤ 31-byte) advertisement.
pub trait Radio {
    /// Sends `adv_data` (raw AD structures) once, from the device address `addr` (most significant
    /// byte first).
    async fn advertise(&mut self, addr: [u8; 6], adv_data: &[u8]) -> Result<(), RadioError>;
}

/// A board without a BLE radio.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRadio;

impl Radio for NoRadio {
    async fn advertise(&mut self, _addr: [u8; 6], _adv_data: &[u8]) -> Result<(), RadioError> {
        Err(RadioError)
    }
}

/// The console (UART on the device, stdout on the host). Each call is one whole line, without the
/// line terminator.
pub trait Console {
    /// Writes one line.
    fn line(&mut self, line: &str);
}

/// Facts about the system that only the board knows.
pub trait SystemInfo {
    /// Free heap in bytes (the radio stack's heap on the device), if the board has one.
    fn free_heap_bytes(&self) -> Option<u32>;
    /// Why the chip last reset: a short stable word (`power_on`, `brownout`, `watchdog`, ...).
    fn reset_reason(&self) -> &'static str;
}
