//! Topics and payloads: diagnostics, power, per-field values and Home Assistant discovery
//! documents. The state document itself is [`Reading::write_json`](crate::reading::Reading::write_json).

use core::fmt::{self, Write};

use heapless::String;

use crate::config::Config;
use crate::reading::{FieldSpec, FIELDS};
use crate::text::json_str;

/// Firmware version, reported in diagnostics and the HA device block.
pub const FW_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Longest topic the gateway builds.
pub const TOPIC_MAX: usize = 128;

/// A topic.
pub type Topic = String<TOPIC_MAX>;

/// `<prefix>/<device>/<leaf>`.
pub fn topic(cfg: &Config, leaf: &str) -> Topic {
    let mut t = Topic::new();
    let _ = write!(t, "{}/{}/{}", cfg.prefix, cfg.device_id, leaf);
    t
}

/// `<discovery_prefix>/sensor/<device>/<object>/config`.
pub fn discovery_topic(cfg: &Config, object: &str) -> Topic {
    let mut t = Topic::new();
    let _ = write!(t, "{}/sensor/{}/{}/config", cfg.discovery_prefix, cfg.device_id, object);
    t
}

/// `<discovery_prefix>/status`: Home Assistant's birth and will messages.
pub fn ha_status_topic(cfg: &Config) -> Topic {
    let mut t = Topic::new();
    let _ = write!(t, "{}/status", cfg.discovery_prefix);
    t
}

/// Counters and state reported on `<prefix>/<device>/diag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Diag {
    /// Uptime, ms.
    pub uptime_ms: u64,
    /// WiFi RSSI, dBm.
    pub rssi_dbm: Option<i16>,
    /// Free heap, bytes.
    pub free_heap: Option<u32>,
    /// Good telegrams.
    pub telegrams_ok: u32,
    /// CRC mismatches.
    pub crc_errors: u32,
    /// Truncated, oversize or malformed telegrams.
    pub framing_errors: u32,
    /// Bytes outside telegrams.
    pub dropped_bytes: u32,
    /// UART read errors.
    pub read_errors: u32,
    /// Readings waiting in the ring.
    pub queue_depth: u32,
    /// Ring capacity in use.
    pub queue_capacity: u32,
    /// Most readings ever waiting at once.
    pub queue_high_water: u32,
    /// Readings dropped from the full ring (oldest first).
    pub ring_dropped: u32,
    /// Readings the publish policy held back.
    pub policy_skipped: u32,
    /// Readings acknowledged by (QoS 1) or written to (QoS 0) the broker.
    pub published: u32,
    /// Raw telegrams not published because the next one came first or the link was down.
    pub raw_skipped: u32,
    /// Age of the last good telegram, ms (`None` before the first).
    pub last_telegram_age_ms: Option<u64>,
    /// The meter has been silent for longer than configured.
    pub meter_silent: bool,
    /// Successful MQTT sessions.
    pub mqtt_connects: u32,
    /// Failed MQTT connects and lost sessions.
    pub mqtt_failures: u32,
    /// Times the WiFi link went down.
    pub wifi_drops: u32,
    /// Broker connections that failed in TLS (handshake or certificate); also in `mqtt_failures`.
    pub tls_failures: u32,
    /// CONNECTs the broker refused (bad user name or password, not authorised, ...); also in
    /// `mqtt_failures`.
    pub auth_failures: u32,
    /// Subscriptions the broker refused (SUBACK 0x80).
    pub subscribe_refused: u32,
    /// Sessions in which the broker did not let the device's own status back to it (an ACL that
    /// denies the device its topic prefix; see the `publish_check` setting).
    pub publish_denied: u32,
    /// Inbound messages ignored as garbage (unknown payload or topic).
    pub inbound_ignored: u32,
    /// Inbound packets longer than the receive buffer, skipped.
    pub inbound_oversize: u32,
    /// Discovery publications.
    pub discovery_sent: u32,
    /// Power samples that failed.
    pub power_errors: u32,
    /// Why the chip last reset.
    pub reset_reason: &'static str,
}

fn opt<T: fmt::Display>(w: &mut impl Write, v: Option<T>) -> fmt::Result {
    match v {
        Some(v) => write!(w, "{v}"),
        None => w.write_str("null"),
    }
}

impl Diag {
    /// The diagnostics document.
    pub fn write_json(&self, w: &mut impl Write) -> fmt::Result {
        write!(w, "{{\"uptime_s\":{}", self.uptime_ms / 1000)?;
        w.write_str(",\"rssi_dbm\":")?;
        opt(w, self.rssi_dbm)?;
        w.write_str(",\"free_heap\":")?;
        opt(w, self.free_heap)?;
        write!(
            w,
            ",\"telegrams_ok\":{},\"crc_errors\":{},\"framing_errors\":{},\"dropped_bytes\":{},\"read_errors\":{}",
            self.telegrams_ok, self.crc_errors, self.framing_errors, self.dropped_bytes, self.read_errors
        )?;
        write!(
            w,
            ",\"queue_depth\":{},\"queue_capacity\":{},\"queue_high_water\":{},\"ring_dropped\":{},\"policy_skipped\":{},\"published\":{},\"raw_skipped\":{}",
            self.queue_depth,
            self.queue_capacity,
            self.queue_high_water,
            self.ring_dropped,
            self.policy_skipped,
            self.published,
            self.raw_skipped
        )?;
        w.write_str(",\"last_telegram_age_ms\":")?;
        opt(w, self.last_telegram_age_ms)?;
        write!(
            w,
            ",\"meter_silent\":{},\"mqtt_connects\":{},\"mqtt_failures\":{},\"tls_failures\":{},\"auth_failures\":{},\"subscribe_refused\":{},\"publish_denied\":{},\"wifi_drops\":{},\"inbound_ignored\":{},\"inbound_oversize\":{},\"discovery_sent\":{},\"power_errors\":{}",
            self.meter_silent,
            self.mqtt_connects,
            self.mqtt_failures,
            self.tls_failures,
            self.auth_failures,
            self.subscribe_refused,
            self.publish_denied,
            self.wifi_drops,
            self.inbound_ignored,
            self.inbound_oversize,
            self.discovery_sent,
            self.power_errors
        )?;
        w.write_str(",\"reset_reason\":")?;
        json_str(w, self.reset_reason)?;
        w.write_str(",\"fw_version\":")?;
        json_str(w, FW_VERSION)?;
        w.write_char('}')
    }
}

/// One Home Assistant sensor entity.
#[derive(Debug, Clone, Copy)]
pub struct Entity {
    /// Object id (unique within the device).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Leaf of the state topic (`state`, `diag`, `power`).
    pub leaf: &'static str,
    /// JSON key in that topic's document.
    pub key: &'static str,
    /// Unit of measurement.
    pub unit: Option<&'static str>,
    /// Device class.
    pub device_class: Option<&'static str>,
    /// State class.
    pub state_class: Option<&'static str>,
    /// `entity_category: diagnostic`.
    pub diagnostic: bool,
}

impl Entity {
    /// The entity for a reading field.
    pub fn from_field(f: &FieldSpec) -> Entity {
        Entity {
            id: f.id,
            name: f.name,
            leaf: "state",
            key: f.key,
            unit: f.quantity.unit(),
            device_class: f.quantity.device_class(),
            state_class: Some(f.quantity.state_class()),
            diagnostic: false,
        }
    }
}

const fn diag(id: &'static str, name: &'static str, key: &'static str, unit: Option<&'static str>, class: Option<&'static str>, state: &'static str) -> Entity {
    Entity { id, name, leaf: "diag", key, unit, device_class: class, state_class: Some(state), diagnostic: true }
}

const fn power(id: &'static str, name: &'static str, key: &'static str, unit: Option<&'static str>, class: Option<&'static str>, state: &'static str) -> Entity {
    Entity { id, name, leaf: "power", key, unit, device_class: class, state_class: Some(state), diagnostic: true }
}

/// Device telemetry entities (all `entity_category: diagnostic`).
pub const DIAG_ENTITIES: &[Entity] = &[
    diag("rssi", "WiFi signal", "rssi_dbm", Some("dBm"), Some("signal_strength"), "measurement"),
    diag("uptime", "Uptime", "uptime_s", Some("s"), Some("duration"), "total_increasing"),
    diag("free_heap", "Free heap", "free_heap", Some("B"), Some("data_size"), "measurement"),
    diag("telegrams_ok", "Telegrams received", "telegrams_ok", None, None, "total_increasing"),
    diag("crc_errors", "CRC errors", "crc_errors", None, None, "total_increasing"),
    diag("framing_errors", "Framing errors", "framing_errors", None, None, "total_increasing"),
    diag("dropped_bytes", "Dropped bytes", "dropped_bytes", Some("B"), Some("data_size"), "total_increasing"),
    diag("queue_depth", "Queue depth", "queue_depth", None, None, "measurement"),
    diag("ring_dropped", "Readings dropped", "ring_dropped", None, None, "total_increasing"),
    diag("last_telegram_age", "Last telegram age", "last_telegram_age_ms", Some("ms"), Some("duration"), "measurement"),
];

/// Supply entities (from the power policy's document, see
/// [`PowerPolicy::write_json`](crate::power_policy::PowerPolicy::write_json)), announced once a
/// power sample succeeded.
pub const POWER_ENTITIES: &[Entity] = &[
    power("acin_voltage", "P1 supply voltage", "acin_mv", Some("mV"), Some("voltage"), "measurement"),
    power("acin_current", "P1 supply current", "acin_ma", Some("mA"), Some("current"), "measurement"),
    power("battery_voltage", "Battery voltage", "battery_mv", Some("mV"), Some("voltage"), "measurement"),
    power("battery", "Battery", "battery_pct", Some("%"), Some("battery"), "measurement"),
    power("supply_trips", "P1 supply trips", "trips", None, None, "total_increasing"),
];

/// Writes the discovery document for `e`.
pub fn write_discovery(cfg: &Config, e: &Entity, w: &mut impl Write) -> fmt::Result {
    w.write_str("{\"name\":")?;
    json_str(w, e.name)?;
    write!(w, ",\"unique_id\":\"p1_{}_{}\"", cfg.device_id, e.id)?;
    w.write_str(",\"state_topic\":")?;
    json_str(w, &topic(cfg, e.leaf))?;
    write!(w, ",\"value_template\":\"{{{{ value_json.{} }}}}\"", e.key)?;
    if let Some(u) = e.unit {
        w.write_str(",\"unit_of_measurement\":")?;
        json_str(w, u)?;
    }
    if let Some(c) = e.device_class {
        write!(w, ",\"device_class\":\"{c}\"")?;
    }
    if let Some(c) = e.state_class {
        write!(w, ",\"state_class\":\"{c}\"")?;
    }
    if e.diagnostic {
        w.write_str(",\"entity_category\":\"diagnostic\"")?;
    }
    w.write_str(",\"availability_topic\":")?;
    json_str(w, &topic(cfg, "status"))?;
    w.write_str(",\"payload_available\":\"online\",\"payload_not_available\":\"offline\"")?;
    write!(w, ",\"device\":{{\"identifiers\":[\"p1_{}\"],\"name\":", cfg.device_id)?;
    let mut name: String<64> = String::new();
    let _ = write!(name, "P1 meter {}", cfg.device_id);
    json_str(w, &name)?;
    w.write_str(",\"manufacturer\":\"p1-parasitic\",\"model\":\"M5StickC P1 gateway\",\"sw_version\":")?;
    json_str(w, FW_VERSION)?;
    w.write_str("}}")
}

/// Number of discovery documents for a reading with `present_mask` (see
/// [`Reading::present_mask`](crate::reading::Reading::present_mask)) and, if `power`, the
/// supply entities.
pub fn discovery_count(present_mask: u32, power: bool) -> usize {
    present_mask.count_ones() as usize + DIAG_ENTITIES.len() + if power { POWER_ENTITIES.len() } else { 0 }
}

/// The `i`-th discovery entity: present reading fields first, then diagnostics, then power.
pub fn discovery_entity(present_mask: u32, power: bool, i: usize) -> Option<Entity> {
    let mut i = i;
    for (bit, f) in FIELDS.iter().enumerate() {
        if present_mask & (1 << bit) != 0 {
            if i == 0 {
                return Some(Entity::from_field(f));
            }
            i -= 1;
        }
    }
    if let Some(e) = DIAG_ENTITIES.get(i) {
        return Some(*e);
    }
    i -= DIAG_ENTITIES.len();
    if power { POWER_ENTITIES.get(i).copied() } else { None }
}

/// The fields announced before the first reading: import/export power and energy per tariff.
pub const DEFAULT_PRESENT_MASK: u32 = 0b0000_0000_0000_0000_0000_0000_1101_1011;
