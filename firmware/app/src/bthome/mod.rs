//! BTHome v2 advertisements of a meter reading: the low-power alternative to WiFi.
//!
//! Home Assistant (and any BTHome receiver) reads these without pairing or a broker. The
//! [`Encoder`] packs [`Values`] into the service data of UUID 0xFCD2 inside one legacy
//! advertisement (31 bytes: flags AD, service data AD, and the [`Name`] when it fits). Values do
//! not all fit one advertisement, so a [`Schedule`] of groups is sent in turn, one group per call
//! to [`Encoder::encode`]. With a [`BindKey`], advertisements are encrypted with BTHome's AES-CCM.
//!
//! | field | object | resolution | range |
//! |---|---|---|---|
//! | packet id | 0x00 uint8 | 1 | wraps 255 → 0 |
//! | battery | 0x01 uint8 | 1 % | 0..=100 % |
//! | power import, export | 0x0B uint24 | 0.01 W | 0..=167 772.15 W |
//! | current L1..L3 | 0x43 uint16 | 0.001 A | 0..=65.535 A |
//! | voltage L1..L3 | 0x4A uint16 | 0.1 V | 0..=6553.5 V |
//! | gas | 0x4C uint32 | 0.001 m³ | 0..=4 294 967.295 m³ |
//! | energy import, export | 0x4D uint32 | 0.001 kWh | 0..=4 294 967.295 kWh |
//!
//! A value outside its range is sent clamped to the nearest end and reported
//! ([`Advertisement::clamped`], [`Encoder::clamped_total`]); it never wraps.
//!
//! The radio seam takes [`Advertisement::as_bytes`], [`Encoder::address`] and
//! [`Encoder::interval`]. [`decode`] reads advertisements back (for tests and the harness).

mod config;
mod crypto;
mod decode;
mod encoder;
mod object;
mod schedule;
mod values;

pub use config::{AdvInterval, BindKey, Config, ConfigError, Name};
pub use decode::{decode, DecodeError, Decoded};
pub use encoder::{Advertisement, EncodeError, Encoder, ADV_MAX, SERVICE_UUID};
pub use object::{Field, FieldSet, ObjectType};
pub use schedule::{Schedule, DEFAULT_ENCRYPTED, DEFAULT_PLAIN, ENCRYPTED_ROOM, PLAIN_ROOM};
pub use values::Values;

#[cfg(test)]
mod tests;
