//! Reads a BTHome v2 advertisement made by [`Encoder`](super::Encoder) back into [`Values`].
//!
//! Objects of one kind are assigned to fields by position, the way Home Assistant keys them
//! (first power object = import, second = export; first voltage = L1, ...). Never panics.

use core::fmt;

use super::config::{BindKey, Name};
use super::crypto::Cipher;
use super::encoder::SERVICE_UUID;
use super::object::{Field, ObjectType};
use super::schedule::PLAIN_ROOM;
use super::values::Values;

/// A decoded advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoded {
    /// The values carried, in [`Values`] units (power rounded down to whole W).
    pub values: Values,
    /// The packet id object, if present.
    pub packet_id: Option<u8>,
    /// The encryption counter, if encrypted.
    pub counter: Option<u32>,
    /// The Complete or Shortened Local Name, if present and valid.
    pub name: Option<Name>,
}

/// Why an advertisement could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// An AD structure's length runs past the end of the data.
    Malformed,
    /// No service data for UUID 0xFCD2.
    NoServiceData,
    /// The device info byte does not say BTHome version 2.
    NotVersion2,
    /// Encrypted, and no key was given.
    KeyNeeded,
    /// The MIC does not match: wrong key, wrong address, or tampered data.
    Authentication,
    /// An object runs past the end of the payload.
    Truncated,
    /// An object id this decoder does not know (its size is unknown, so decoding stops).
    UnknownObject(u8),
    /// More objects of one kind than there are fields for it.
    TooMany(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed => f.write_str("AD structure length past end of data"),
            DecodeError::NoServiceData => f.write_str("no BTHome (0xFCD2) service data"),
            DecodeError::NotVersion2 => f.write_str("not BTHome version 2"),
            DecodeError::KeyNeeded => f.write_str("encrypted and no bind key given"),
            DecodeError::Authentication => f.write_str("MIC mismatch (wrong key or address)"),
            DecodeError::Truncated => f.write_str("object truncated"),
            DecodeError::UnknownObject(id) => write!(f, "unknown object id 0x{id:02X}"),
            DecodeError::TooMany(id) => write!(f, "too many objects with id 0x{id:02X}"),
        }
    }
}

impl core::error::Error for DecodeError {}

const KINDS: [(ObjectType, &[Field]); 6] = [
    (ObjectType::BATTERY, &[Field::Battery]),
    (ObjectType::POWER, &[Field::PowerImport, Field::PowerExport]),
    (ObjectType::CURRENT, &[Field::CurrentL1, Field::CurrentL2, Field::CurrentL3]),
    (ObjectType::VOLTAGE, &[Field::VoltageL1, Field::VoltageL2, Field::VoltageL3]),
    (ObjectType::GAS, &[Field::Gas]),
    (ObjectType::ENERGY, &[Field::EnergyImport, Field::EnergyExport]),
];

/// Decodes the AD structures `ad` sent from `address` (most significant byte first).
pub fn decode(address: [u8; 6], ad: &[u8], key: Option<&BindKey>) -> Result<Decoded, DecodeError> {
    let mut decoded = Decoded::default();
    let mut service = None;
    let mut rest = ad;
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            break;
        }
        let (structure, next) = tail.split_at_checked(usize::from(len)).ok_or(DecodeError::Malformed)?;
        rest = next;
        match structure {
            [0x16, lo, hi, data @ ..] if u16::from_le_bytes([*lo, *hi]) == SERVICE_UUID => service = Some(data),
            [0x08 | 0x09, name @ ..] => decoded.name = core::str::from_utf8(name).ok().and_then(|n| Name::new(n).ok()),
            _ => {}
        }
    }
    let (&info, payload) = service.ok_or(DecodeError::NoServiceData)?.split_first().ok_or(DecodeError::Truncated)?;
    if info >> 5 != 2 {
        return Err(DecodeError::NotVersion2);
    }
    let mut buf = [0u8; PLAIN_ROOM];
    let objects: &[u8] = if info & 0x01 != 0 {
        let key = key.ok_or(DecodeError::KeyNeeded)?;
        let split = payload.len().checked_sub(8).ok_or(DecodeError::Truncated)?;
        let (cipher_text, trailer) = payload.split_at_checked(split).ok_or(DecodeError::Truncated)?;
        let (counter, mic) = trailer.split_at_checked(4).ok_or(DecodeError::Truncated)?;
        let counter = u32::from_le_bytes(counter.try_into().map_err(|_| DecodeError::Truncated)?);
        let mic: [u8; 4] = mic.try_into().map_err(|_| DecodeError::Truncated)?;
        let plain = buf.get_mut(..cipher_text.len()).ok_or(DecodeError::Truncated)?;
        plain.copy_from_slice(cipher_text);
        Cipher::new(key).decrypt(&address, info, counter, plain, mic).map_err(|_| DecodeError::Authentication)?;
        decoded.counter = Some(counter);
        plain
    } else {
        payload
    };

    let mut seen = [0usize; KINDS.len()];
    let mut rest = objects;
    while let Some((&id, tail)) = rest.split_first() {
        let object = if id == ObjectType::PACKET_ID.id {
            ObjectType::PACKET_ID
        } else {
            KINDS.iter().map(|(o, _)| *o).find(|o| o.id == id).ok_or(DecodeError::UnknownObject(id))?
        };
        let (bytes, next) = tail.split_at_checked(usize::from(object.len)).ok_or(DecodeError::Truncated)?;
        rest = next;
        let mut le = [0u8; 4];
        le.get_mut(..bytes.len()).ok_or(DecodeError::Truncated)?.copy_from_slice(bytes);
        let raw = u32::from_le_bytes(le);
        if id == ObjectType::PACKET_ID.id {
            decoded.packet_id = u8::try_from(raw).ok();
            continue;
        }
        let kind = KINDS.iter().position(|(o, _)| o.id == id).ok_or(DecodeError::UnknownObject(id))?;
        let count = seen.get_mut(kind).ok_or(DecodeError::UnknownObject(id))?;
        let field = KINDS.get(kind).and_then(|(_, fields)| fields.get(*count)).ok_or(DecodeError::TooMany(id))?;
        *count += 1;
        set(&mut decoded.values, *field, u64::from(raw) / u64::from(object.raw_per_unit));
    }
    Ok(decoded)
}

fn set(values: &mut Values, field: Field, value: u64) {
    let small = u32::try_from(value).unwrap_or(u32::MAX);
    let [i1, i2, i3] = &mut values.current_ma;
    let [u1, u2, u3] = &mut values.voltage_dv;
    match field {
        Field::Battery => values.battery_percent = Some(u8::try_from(value).unwrap_or(u8::MAX)),
        Field::PowerImport => values.power_import_w = Some(small),
        Field::PowerExport => values.power_export_w = Some(small),
        Field::CurrentL1 => *i1 = Some(small),
        Field::CurrentL2 => *i2 = Some(small),
        Field::CurrentL3 => *i3 = Some(small),
        Field::VoltageL1 => *u1 = Some(small),
        Field::VoltageL2 => *u2 = Some(small),
        Field::VoltageL3 => *u3 = Some(small),
        Field::Gas => values.gas_l = Some(value),
        Field::EnergyImport => values.energy_import_wh = Some(value),
        Field::EnergyExport => values.energy_export_wh = Some(value),
    }
}
