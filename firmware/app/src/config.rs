//! Configuration, with validation that names the bad field.
//!
//! Every setting can be set from text through [`Config::set`] (`key`, `value`), which is how the
//! host's CLI and TOML file and the device's stored settings feed it; [`Config::validate`] then
//! checks the combination. Each error is a [`ConfigError`] naming the [`Field`] and the [`Problem`].

use heapless::String;

/// Longest WiFi SSID (IEEE 802.11).
pub const SSID_MAX: usize = 32;
/// Longest WiFi passphrase (WPA2-PSK).
pub const WIFI_PASSWORD_MAX: usize = 63;
/// Longest broker host name.
pub const HOST_MAX: usize = 64;
/// Longest MQTT user name or password.
pub const CREDENTIAL_MAX: usize = 64;
/// Longest topic prefix.
pub const PREFIX_MAX: usize = 32;
/// Longest device id.
pub const DEVICE_ID_MAX: usize = 32;

/// A configuration field. [`Field::key`] is the name used in files and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Field {
    WifiSsid,
    WifiPassword,
    Broker,
    Username,
    Password,
    Prefix,
    DeviceId,
    DiscoveryPrefix,
    Discovery,
    PublishCheck,
    PerFieldTopics,
    RawTelegrams,
    Qos,
    KeepaliveS,
    Policy,
    MinIntervalMs,
    MaxIntervalMs,
    DeadbandW,
    DeadbandV,
    DeadbandA,
    RingCapacity,
    DiagIntervalS,
    StatsIntervalS,
    PowerIntervalS,
    MeterSilentS,
    ReconnectMinMs,
    ReconnectMaxMs,
    ConnectTimeoutMs,
    ResponseTimeoutMs,
    DataRequest,
    DataRequestActiveLow,
    RxInverted,
    Transport,
    BleIntervalMs,
    BindKey,
}

/// All fields, in documentation order.
pub const FIELDS: &[Field] = &[
    Field::WifiSsid,
    Field::WifiPassword,
    Field::Broker,
    Field::Username,
    Field::Password,
    Field::Prefix,
    Field::DeviceId,
    Field::DiscoveryPrefix,
    Field::Discovery,
    Field::PublishCheck,
    Field::PerFieldTopics,
    Field::RawTelegrams,
    Field::Qos,
    Field::KeepaliveS,
    Field::Policy,
    Field::MinIntervalMs,
    Field::MaxIntervalMs,
    Field::DeadbandW,
    Field::DeadbandV,
    Field::DeadbandA,
    Field::RingCapacity,
    Field::DiagIntervalS,
    Field::StatsIntervalS,
    Field::PowerIntervalS,
    Field::MeterSilentS,
    Field::ReconnectMinMs,
    Field::ReconnectMaxMs,
    Field::ConnectTimeoutMs,
    Field::ResponseTimeoutMs,
    Field::DataRequest,
    Field::DataRequestActiveLow,
    Field::RxInverted,
    Field::Transport,
    Field::BleIntervalMs,
    Field::BindKey,
];

impl Field {
    /// The field's key in configuration files and `set`.
    pub fn key(self) -> &'static str {
        match self {
            Field::WifiSsid => "wifi_ssid",
            Field::WifiPassword => "wifi_password",
            Field::Broker => "broker",
            Field::Username => "username",
            Field::Password => "password",
            Field::Prefix => "prefix",
            Field::DeviceId => "device_id",
            Field::DiscoveryPrefix => "discovery_prefix",
            Field::Discovery => "discovery",
            Field::PublishCheck => "publish_check",
            Field::PerFieldTopics => "per_field_topics",
            Field::RawTelegrams => "raw_telegrams",
            Field::Qos => "qos",
            Field::KeepaliveS => "keepalive_s",
            Field::Policy => "policy",
            Field::MinIntervalMs => "min_interval_ms",
            Field::MaxIntervalMs => "max_interval_ms",
            Field::DeadbandW => "deadband_w",
            Field::DeadbandV => "deadband_v",
            Field::DeadbandA => "deadband_a",
            Field::RingCapacity => "ring_capacity",
            Field::DiagIntervalS => "diag_interval_s",
            Field::StatsIntervalS => "stats_interval_s",
            Field::PowerIntervalS => "power_interval_s",
            Field::MeterSilentS => "meter_silent_s",
            Field::ReconnectMinMs => "reconnect_min_ms",
            Field::ReconnectMaxMs => "reconnect_max_ms",
            Field::ConnectTimeoutMs => "connect_timeout_ms",
            Field::ResponseTimeoutMs => "response_timeout_ms",
            Field::DataRequest => "data_request",
            Field::DataRequestActiveLow => "data_request_active_low",
            Field::RxInverted => "rx_inverted",
            Field::Transport => "transport",
            Field::BleIntervalMs => "ble_interval_ms",
            Field::BindKey => "bind_key",
        }
    }

    /// Looks a field up by its key.
    pub fn from_key(key: &str) -> Option<Field> {
        FIELDS.iter().copied().find(|f| f.key() == key)
    }

    /// True for fields whose value is a secret: never echo it.
    pub fn is_secret(self) -> bool {
        matches!(self, Field::WifiPassword | Field::Password | Field::BindKey)
    }
}

/// What is wrong with a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Required but empty.
    Empty,
    /// Longer than the field allows (the limit is given).
    TooLong(usize),
    /// Shorter than the field allows (the limit is given).
    TooShort(usize),
    /// Not a number.
    NotANumber,
    /// Not `true` or `false`.
    NotABool,
    /// A number outside the allowed range (inclusive bounds).
    OutOfRange(u32, u32),
    /// Contains a character that is not allowed.
    BadCharacter,
    /// Not one of the allowed words.
    NotOneOf(&'static str),
    /// The broker URL has no `mqtt://` or `mqtts://` scheme.
    BadScheme,
    /// The broker URL's port is missing or invalid.
    BadPort,
    /// Must not be less than another field (named).
    LessThan(Field),
    /// Only ASCII hex digits, with the given number of bytes.
    NotHex(usize),
    /// TLS (`mqtts://`) is not supported by this build yet.
    TlsUnsupported,
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Problem::Empty => f.write_str("must not be empty"),
            Problem::TooLong(n) => write!(f, "longer than {n} bytes"),
            Problem::TooShort(n) => write!(f, "shorter than {n} bytes"),
            Problem::NotANumber => f.write_str("not a whole number"),
            Problem::NotABool => f.write_str("expected true or false"),
            Problem::OutOfRange(lo, hi) => write!(f, "out of range {lo}..={hi}"),
            Problem::BadCharacter => f.write_str("contains a character that is not allowed"),
            Problem::NotOneOf(words) => write!(f, "expected one of {words}"),
            Problem::BadScheme => f.write_str("expected mqtt://HOST:PORT or mqtts://HOST:PORT"),
            Problem::BadPort => f.write_str("missing or invalid port (1..=65535)"),
            Problem::LessThan(other) => write!(f, "must not be less than {}", other.key()),
            Problem::NotHex(n) => write!(f, "expected {n} bytes as {} hex digits", n * 2),
            Problem::TlsUnsupported => f.write_str("TLS (mqtts://) is not supported by this build yet"),
        }
    }
}

/// A bad configuration value: which field, and what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// The field.
    pub field: Field,
    /// The problem.
    pub problem: Problem,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.field.key(), self.problem)
    }
}

impl core::error::Error for ConfigError {}

/// Why [`Config::set`] refused a key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetError {
    /// There is no setting with that key.
    UnknownKey,
    /// The value is bad.
    Invalid(ConfigError),
}

impl core::fmt::Display for SetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetError::UnknownKey => f.write_str("unknown setting"),
            SetError::Invalid(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for SetError {}

fn err(field: Field, problem: Problem) -> ConfigError {
    ConfigError { field, problem }
}

/// When readings are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Every good telegram (1 Hz on a DSMR 5 meter).
    Every,
    /// At most one per `min_interval_ms`.
    Interval,
    /// When a power, voltage or current value moved by more than its deadband since the last
    /// published reading, or `max_interval_ms` has passed (a heartbeat), but never more often
    /// than `min_interval_ms`.
    Deadband,
}

/// Which radios carry the readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// MQTT over WiFi.
    Wifi,
    /// BLE (BTHome) advertisements only; WiFi stays off.
    Ble,
    /// Both.
    Both,
}

impl Transport {
    /// True when readings go out over MQTT.
    pub fn uses_wifi(self) -> bool {
        matches!(self, Transport::Wifi | Transport::Both)
    }
    /// True when readings go out as BLE advertisements.
    pub fn uses_ble(self) -> bool {
        matches!(self, Transport::Ble | Transport::Both)
    }
}

/// The broker's address, parsed from `mqtt://HOST:PORT` or `mqtts://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or IP address.
    pub host: String<HOST_MAX>,
    /// TCP port.
    pub port: u16,
    /// `mqtts://`: TLS.
    pub tls: bool,
}

/// The whole configuration. Defaults ([`Config::default`]) are the device's factory settings,
/// except the fields marked required, which [`Config::validate`] insists on.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// WiFi network name (required on the device; ignored by the virtual device).
    pub wifi_ssid: String<SSID_MAX>,
    /// WiFi passphrase: empty (open network) or 8..=63 bytes. Secret.
    pub wifi_password: String<WIFI_PASSWORD_MAX>,
    /// Broker (required).
    pub broker: Option<Broker>,
    /// MQTT user name; empty means none.
    pub username: String<CREDENTIAL_MAX>,
    /// MQTT password; empty means none. Secret.
    pub password: String<CREDENTIAL_MAX>,
    /// Topic prefix, default `p1`.
    pub prefix: String<PREFIX_MAX>,
    /// Device id (required): `[a-z0-9_-]`, used in topics, the MQTT client id and HA unique ids.
    pub device_id: String<DEVICE_ID_MAX>,
    /// Home Assistant discovery prefix, default `homeassistant`.
    pub discovery_prefix: String<PREFIX_MAX>,
    /// Publish Home Assistant discovery documents.
    pub discovery: bool,
    /// On each connect, subscribe to the device's own status topic and expect its "online" back
    /// within `response_timeout_ms`; if it does not come, report `mqtt_publish_denied` (the broker's
    /// ACL drops what the device publishes, which MQTT 3.1.1 does not otherwise tell it).
    pub publish_check: bool,
    /// Also publish each field to its own topic `<prefix>/<device>/<field>`.
    pub per_field_topics: bool,
    /// Also publish each raw telegram, unchanged, to `<prefix>/<device>/telegram`.
    pub raw_telegrams: bool,
    /// QoS of live readings: 0 or 1. Replayed readings always go at QoS 1.
    pub qos: u8,
    /// MQTT keep-alive, seconds.
    pub keepalive_s: u16,
    /// Publish policy.
    pub policy: PolicyKind,
    /// Minimum time between published readings (policies `interval` and `deadband`).
    pub min_interval_ms: u32,
    /// Heartbeat: longest time without a published reading (policy `deadband`).
    pub max_interval_ms: u32,
    /// Deadband on power, W.
    pub deadband_w: u32,
    /// Deadband on voltage, whole volts.
    pub deadband_v: u32,
    /// Deadband on current, whole amperes.
    pub deadband_a: u32,
    /// Readings kept while the broker is away (at most the ring's compiled capacity).
    pub ring_capacity: u32,
    /// Period of `<prefix>/<device>/diag`, seconds.
    pub diag_interval_s: u32,
    /// Period of `ev=stats` console lines, seconds.
    pub stats_interval_s: u32,
    /// Period of power samples, seconds.
    pub power_interval_s: u32,
    /// Seconds without a good telegram before the meter is reported silent.
    pub meter_silent_s: u32,
    /// First reconnect delay, ms; doubles per failure.
    pub reconnect_min_ms: u32,
    /// Longest reconnect delay, ms.
    pub reconnect_max_ms: u32,
    /// Longest wait for a WiFi association, a TCP connect or a CONNACK, ms.
    pub connect_timeout_ms: u32,
    /// Longest wait for a PINGRESP or PUBACK before the session is considered dead, ms.
    pub response_timeout_ms: u32,
    /// Assert the P1 data-request line.
    pub data_request: bool,
    /// The data-request line is active low (an open-collector driver in between).
    pub data_request_active_low: bool,
    /// The P1 RX signal is inverted in the UART (the board applies it).
    pub rx_inverted: bool,
    /// Which radios carry the readings.
    pub transport: Transport,
    /// BLE advertising interval, ms.
    pub ble_interval_ms: u32,
    /// BTHome bind key (AES-CCM); `None` sends unencrypted. Secret.
    pub bind_key: Option<[u8; 16]>,
}

impl core::fmt::Debug for Config {
    /// Secrets are shown as `***`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("wifi_ssid", &self.wifi_ssid)
            .field("wifi_password", &"***")
            .field("broker", &self.broker)
            .field("username", &self.username)
            .field("password", &"***")
            .field("prefix", &self.prefix)
            .field("device_id", &self.device_id)
            .field("transport", &self.transport)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        let mut prefix = String::new();
        let _ = prefix.push_str("p1");
        let mut discovery_prefix = String::new();
        let _ = discovery_prefix.push_str("homeassistant");
        Config {
            wifi_ssid: String::new(),
            wifi_password: String::new(),
            broker: None,
            username: String::new(),
            password: String::new(),
            prefix,
            device_id: String::new(),
            discovery_prefix,
            discovery: true,
            publish_check: true,
            per_field_topics: false,
            raw_telegrams: false,
            qos: 1,
            keepalive_s: 30,
            policy: PolicyKind::Every,
            min_interval_ms: 10_000,
            max_interval_ms: 60_000,
            deadband_w: 10,
            deadband_v: 2,
            deadband_a: 1,
            ring_capacity: 600,
            diag_interval_s: 60,
            stats_interval_s: 60,
            power_interval_s: 10,
            meter_silent_s: 10,
            reconnect_min_ms: 1_000,
            reconnect_max_ms: 60_000,
            connect_timeout_ms: 10_000,
            response_timeout_ms: 15_000,
            data_request: true,
            data_request_active_low: false,
            rx_inverted: false,
            transport: Transport::Wifi,
            ble_interval_ms: 1_000,
            bind_key: None,
        }
    }
}

fn set_str<const N: usize>(dst: &mut String<N>, field: Field, value: &str) -> Result<(), ConfigError> {
    dst.clear();
    dst.push_str(value).map_err(|_| err(field, Problem::TooLong(N)))
}

fn parse_u32(field: Field, value: &str, lo: u32, hi: u32) -> Result<u32, ConfigError> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(field, Problem::NotANumber));
    }
    let n: u32 = v.parse().map_err(|_| err(field, Problem::OutOfRange(lo, hi)))?;
    if n < lo || n > hi {
        return Err(err(field, Problem::OutOfRange(lo, hi)));
    }
    Ok(n)
}

fn parse_bool(field: Field, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(err(field, Problem::NotABool)),
    }
}

/// Parses `mqtt://HOST:PORT` or `mqtts://HOST:PORT` (port optional: 1883 / 8883).
pub fn parse_broker(value: &str) -> Result<Broker, ConfigError> {
    let f = Field::Broker;
    let (tls, rest) = if let Some(r) = value.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = value.strip_prefix("mqtts://") {
        (true, r)
    } else {
        return Err(err(f, Problem::BadScheme));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => {
            let port: u16 = p.parse().map_err(|_| err(f, Problem::BadPort))?;
            if port == 0 {
                return Err(err(f, Problem::BadPort));
            }
            (h, port)
        }
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(err(f, Problem::Empty));
    }
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        return Err(err(f, Problem::BadCharacter));
    }
    let mut h = String::new();
    h.push_str(host).map_err(|_| err(f, Problem::TooLong(HOST_MAX)))?;
    Ok(Broker { host: h, port, tls })
}

fn parse_hex16(field: Field, value: &str) -> Result<[u8; 16], ConfigError> {
    let b = value.trim().as_bytes();
    if b.len() != 32 {
        return Err(err(field, Problem::NotHex(16)));
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let hi = hex_val(pair.first().copied()).ok_or(err(field, Problem::NotHex(16)))?;
        let lo = hex_val(pair.get(1).copied()).ok_or(err(field, Problem::NotHex(16)))?;
        *o = (hi << 4) | lo;
    }
    Ok(out)
}

fn hex_val(c: Option<u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn topic_segment_ok(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() && b != b'+' && b != b'#')
}

impl Config {
    /// Sets one field from its text form. The value is checked on its own here; cross-field rules
    /// are checked by [`Config::validate`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SetError> {
        let field = Field::from_key(key).ok_or(SetError::UnknownKey)?;
        self.set_field(field, value).map_err(SetError::Invalid)
    }

    /// Sets one field from its text form.
    pub fn set_field(&mut self, field: Field, value: &str) -> Result<(), ConfigError> {
        match field {
            Field::WifiSsid => set_str(&mut self.wifi_ssid, field, value)?,
            Field::WifiPassword => set_str(&mut self.wifi_password, field, value)?,
            Field::Broker => self.broker = Some(parse_broker(value)?),
            Field::Username => set_str(&mut self.username, field, value)?,
            Field::Password => set_str(&mut self.password, field, value)?,
            Field::Prefix => set_str(&mut self.prefix, field, value)?,
            Field::DeviceId => set_str(&mut self.device_id, field, value)?,
            Field::DiscoveryPrefix => set_str(&mut self.discovery_prefix, field, value)?,
            Field::Discovery => self.discovery = parse_bool(field, value)?,
            Field::PublishCheck => self.publish_check = parse_bool(field, value)?,
            Field::PerFieldTopics => self.per_field_topics = parse_bool(field, value)?,
            Field::RawTelegrams => self.raw_telegrams = parse_bool(field, value)?,
            Field::Qos => self.qos = parse_u32(field, value, 0, 1)? as u8,
            Field::KeepaliveS => self.keepalive_s = parse_u32(field, value, 5, 3600)? as u16,
            Field::Policy => {
                self.policy = match value.trim() {
                    "every" => PolicyKind::Every,
                    "interval" => PolicyKind::Interval,
                    "deadband" => PolicyKind::Deadband,
                    _ => return Err(err(field, Problem::NotOneOf("every, interval, deadband"))),
                }
            }
            Field::MinIntervalMs => self.min_interval_ms = parse_u32(field, value, 0, 86_400_000)?,
            Field::MaxIntervalMs => self.max_interval_ms = parse_u32(field, value, 1_000, 86_400_000)?,
            Field::DeadbandW => self.deadband_w = parse_u32(field, value, 0, 100_000)?,
            Field::DeadbandV => self.deadband_v = parse_u32(field, value, 0, 100)?,
            Field::DeadbandA => self.deadband_a = parse_u32(field, value, 0, 100)?,
            Field::RingCapacity => self.ring_capacity = parse_u32(field, value, 1, 1_000_000)?,
            Field::DiagIntervalS => self.diag_interval_s = parse_u32(field, value, 1, 86_400)?,
            Field::StatsIntervalS => self.stats_interval_s = parse_u32(field, value, 1, 86_400)?,
            Field::PowerIntervalS => self.power_interval_s = parse_u32(field, value, 1, 86_400)?,
            Field::MeterSilentS => self.meter_silent_s = parse_u32(field, value, 2, 86_400)?,
            Field::ReconnectMinMs => self.reconnect_min_ms = parse_u32(field, value, 100, 600_000)?,
            Field::ReconnectMaxMs => self.reconnect_max_ms = parse_u32(field, value, 100, 3_600_000)?,
            Field::ConnectTimeoutMs => self.connect_timeout_ms = parse_u32(field, value, 100, 600_000)?,
            Field::ResponseTimeoutMs => self.response_timeout_ms = parse_u32(field, value, 100, 3_600_000)?,
            Field::DataRequest => self.data_request = parse_bool(field, value)?,
            Field::DataRequestActiveLow => self.data_request_active_low = parse_bool(field, value)?,
            Field::RxInverted => self.rx_inverted = parse_bool(field, value)?,
            Field::Transport => {
                self.transport = match value.trim() {
                    "wifi" => Transport::Wifi,
                    "ble" => Transport::Ble,
                    "both" => Transport::Both,
                    _ => return Err(err(field, Problem::NotOneOf("wifi, ble, both"))),
                }
            }
            Field::BleIntervalMs => self.ble_interval_ms = parse_u32(field, value, 20, 60_000)?,
            Field::BindKey => {
                self.bind_key = if value.trim().is_empty() { None } else { Some(parse_hex16(field, value)?) }
            }
        }
        Ok(())
    }

    /// Checks every field and the rules between them; the first problem found is returned.
    /// `require_wifi` is false on the virtual device, which has no WiFi credentials.
    pub fn validate(&self, require_wifi: bool) -> Result<(), ConfigError> {
        if require_wifi && self.transport.uses_wifi() {
            if self.wifi_ssid.is_empty() {
                return Err(err(Field::WifiSsid, Problem::Empty));
            }
            let n = self.wifi_password.len();
            if n != 0 && n < 8 {
                return Err(err(Field::WifiPassword, Problem::TooShort(8)));
            }
        }
        if self.transport.uses_wifi() && self.broker.is_none() {
            return Err(err(Field::Broker, Problem::Empty));
        }
        if !self.password.is_empty() && self.username.is_empty() {
            return Err(err(Field::Username, Problem::Empty));
        }
        if self.username.bytes().any(|b| b.is_ascii_control()) {
            return Err(err(Field::Username, Problem::BadCharacter));
        }
        check_topic(Field::Prefix, &self.prefix)?;
        check_topic(Field::DiscoveryPrefix, &self.discovery_prefix)?;
        if self.device_id.is_empty() {
            return Err(err(Field::DeviceId, Problem::Empty));
        }
        if !self
            .device_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(err(Field::DeviceId, Problem::BadCharacter));
        }
        if self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(err(Field::ReconnectMaxMs, Problem::LessThan(Field::ReconnectMinMs)));
        }
        if self.policy == PolicyKind::Deadband && self.max_interval_ms < self.min_interval_ms {
            return Err(err(Field::MaxIntervalMs, Problem::LessThan(Field::MinIntervalMs)));
        }
        Ok(())
    }
}

fn check_topic(field: Field, s: &str) -> Result<(), ConfigError> {
    if s.is_empty() {
        return Err(err(field, Problem::Empty));
    }
    if s.starts_with('/') || s.ends_with('/') || s.contains("//") || !topic_segment_ok(s) {
        return Err(err(field, Problem::BadCharacter));
    }
    Ok(())
}
