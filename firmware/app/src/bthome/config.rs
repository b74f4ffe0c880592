//! What the encoder and the radio seam are configured with.

use core::fmt;

use super::object::FieldSet;
use super::schedule::{Schedule, DEFAULT_ENCRYPTED, DEFAULT_PLAIN};

/// How often the radio sends the current advertisement.
///
/// The radio seam hands this to the BLE controller as the advertising interval (min = max). The
/// range is the Bluetooth Core limit for legacy advertising, 20 ms to 10.24 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdvInterval {
    millis: u16,
}

impl AdvInterval {
    /// Shortest interval Bluetooth allows, 20 ms.
    pub const MIN_MILLIS: u16 = 20;
    /// Longest interval for legacy advertising, 10.24 s.
    pub const MAX_MILLIS: u16 = 10_240;
    /// One advertisement per second, the DSMR 5 telegram rate.
    pub const ONE_SECOND: AdvInterval = AdvInterval { millis: 1000 };

    /// An interval of `millis` milliseconds, or [`ConfigError::IntervalOutOfRange`].
    pub const fn from_millis(millis: u32) -> Result<AdvInterval, ConfigError> {
        if millis < Self::MIN_MILLIS as u32 || millis > Self::MAX_MILLIS as u32 {
            return Err(ConfigError::IntervalOutOfRange);
        }
        Ok(AdvInterval { millis: millis as u16 })
    }

    /// The interval in milliseconds.
    pub const fn as_millis(self) -> u32 {
        self.millis as u32
    }

    /// The interval in the controller's 0.625 ms units (32..=16384), rounded down.
    pub const fn as_units(self) -> u32 {
        self.millis as u32 * 8 / 5
    }
}

impl Default for AdvInterval {
    fn default() -> Self {
        Self::ONE_SECOND
    }
}

/// A device name for the Complete Local Name AD structure, at most 29 bytes of UTF-8.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    bytes: [u8; Name::MAX_LEN],
    len: u8,
}

impl Name {
    /// Longest name that fits a legacy advertisement on its own.
    pub const MAX_LEN: usize = 29;

    /// `name`, or [`ConfigError::BadName`] if it is empty or longer than [`Name::MAX_LEN`] bytes.
    pub fn new(name: &str) -> Result<Name, ConfigError> {
        let src = name.as_bytes();
        let mut bytes = [0; Name::MAX_LEN];
        let dst = bytes.get_mut(..src.len()).ok_or(ConfigError::BadName)?;
        if src.is_empty() {
            return Err(ConfigError::BadName);
        }
        dst.copy_from_slice(src);
        Ok(Name { bytes, len: src.len() as u8 })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) => fmt::Debug::fmt(s, f),
            Err(_) => fmt::Debug::fmt(self.as_bytes(), f),
        }
    }
}

/// A BTHome bind key (AES-128). Its `Debug` output never shows the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BindKey(pub [u8; 16]);

impl BindKey {
    /// Parses 32 hex digits, or [`ConfigError::BadKey`].
    pub fn from_hex(hex: &str) -> Result<BindKey, ConfigError> {
        let hex = hex.as_bytes();
        if hex.len() != 32 {
            return Err(ConfigError::BadKey);
        }
        let mut key = [0; 16];
        for (byte, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
            let (hi, lo) = match pair {
                [hi, lo] => (hex_digit(*hi), hex_digit(*lo)),
                _ => (None, None),
            };
            *byte = match (hi, lo) {
                (Some(hi), Some(lo)) => hi << 4 | lo,
                _ => return Err(ConfigError::BadKey),
            };
        }
        Ok(BindKey(key))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for BindKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BindKey(..)")
    }
}

/// The BTHome advertiser's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The device address the radio advertises with, most significant byte first (as printed,
    /// `AA:BB:CC:DD:EE:FF`). Encryption binds to it: it is part of the nonce.
    pub address: [u8; 6],
    /// Encrypt with this key (BTHome AES-CCM), or send plain advertisements.
    pub bind_key: Option<BindKey>,
    /// Advertising interval for the radio.
    pub interval: AdvInterval,
    /// Name added to an advertisement when it fits next to the service data.
    pub name: Option<Name>,
    /// Groups sent in turn; `None` picks [`DEFAULT_PLAIN`] or [`DEFAULT_ENCRYPTED`].
    pub schedule: Option<Schedule>,
}

impl Config {
    /// Plain advertisements from `address` at one per second, default schedule, no name.
    pub const fn new(address: [u8; 6]) -> Config {
        Config { address, bind_key: None, interval: AdvInterval::ONE_SECOND, name: None, schedule: None }
    }

    /// The schedule in effect.
    pub const fn schedule(&self) -> Schedule {
        match (self.schedule, self.bind_key) {
            (Some(s), _) => s,
            (None, Some(_)) => DEFAULT_ENCRYPTED,
            (None, None) => DEFAULT_PLAIN,
        }
    }
}

/// A configuration the encoder refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The advertising interval is outside 20 ms..=10.24 s.
    IntervalOutOfRange,
    /// The name is empty or longer than 29 bytes.
    BadName,
    /// The bind key is not 32 hex digits.
    BadKey,
    /// The schedule has no group.
    EmptySchedule,
    /// Group `index` does not fit one advertisement with every field present.
    GroupTooLarge {
        /// Position in the schedule.
        index: usize,
        /// Bytes of objects the group needs, packet id included.
        needs: usize,
        /// Bytes available.
        room: usize,
    },
    /// Group `index` holds part of a class of same-kind objects (e.g. one phase's voltage):
    /// receivers would key its objects by position and mix them up.
    SplitClass {
        /// Position in the schedule.
        index: usize,
        /// The class that is split.
        class: FieldSet,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::IntervalOutOfRange => f.write_str("BLE advertising interval must be 20..=10240 ms"),
            ConfigError::BadName => f.write_str("BLE name must be 1..=29 bytes"),
            ConfigError::BadKey => f.write_str("BTHome bind key must be 32 hex digits"),
            ConfigError::EmptySchedule => f.write_str("BTHome schedule has no group"),
            ConfigError::GroupTooLarge { index, needs, room } => {
                write!(f, "BTHome group {index} needs {needs} bytes, {room} fit")
            }
            ConfigError::SplitClass { index, class } => {
                write!(f, "BTHome group {index} holds part of {class:?}, needs all of it")
            }
        }
    }
}

impl core::error::Error for ConfigError {}
