//! Turns [`Values`] into BTHome v2 advertisements, one group per call.

use core::fmt;

use super::config::{AdvInterval, Config, ConfigError, Name};
use super::crypto::Cipher;
use super::object::{FieldSet, ObjectType};
use super::schedule::{Schedule, PLAIN_ROOM};
use super::values::Values;

/// Largest legacy advertising payload.
pub const ADV_MAX: usize = 31;
/// The BTHome service UUID.
pub const SERVICE_UUID: u16 = 0xFCD2;
/// Flags AD: LE General Discoverable, BR/EDR not supported.
const FLAGS_AD: [u8; 3] = [0x02, 0x01, 0x06];
const AD_SERVICE_DATA_16: u8 = 0x16;
const AD_COMPLETE_NAME: u8 = 0x09;
/// Device info byte: BTHome version 2 in bits 5..7; bit 0 = encrypted.
const DEVICE_INFO_V2: u8 = 0x40;
const DEVICE_INFO_ENCRYPTED: u8 = 0x01;

/// One advertisement: the raw AD structures for the radio, and what went into them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Advertisement {
    data: [u8; ADV_MAX],
    len: u8,
    /// Fields carried (those of the group that had a value).
    pub fields: FieldSet,
    /// Fields whose value was out of range and sent clamped.
    pub clamped: FieldSet,
    /// Position of the group in the schedule.
    pub group: usize,
    /// The packet id object's value.
    pub packet_id: u8,
    /// The encryption counter, if encrypted.
    pub counter: Option<u32>,
}

impl Advertisement {
    /// The AD structures, at most 31 bytes: flags, BTHome service data, optionally the name.
    pub fn as_bytes(&self) -> &[u8] {
        self.data.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl fmt::Debug for Advertisement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Advertisement")
            .field("data", &self.as_bytes())
            .field("fields", &self.fields)
            .field("clamped", &self.clamped)
            .field("group", &self.group)
            .field("packet_id", &self.packet_id)
            .field("counter", &self.counter)
            .finish()
    }
}

/// Why no advertisement was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// Every encryption counter value has been used with this key; going on would reuse a
    /// nonce. Change the bind key.
    CounterExhausted,
    /// The AES-CCM implementation refused the input (not expected for BTHome sizes).
    Encryption,
    /// The objects did not fit (not expected: schedules are checked when the encoder is made).
    Overflow,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::CounterExhausted => "BTHome encryption counter exhausted",
            EncodeError::Encryption => "BTHome encryption failed",
            EncodeError::Overflow => "BTHome objects do not fit the advertisement",
        })
    }
}

impl core::error::Error for EncodeError {}

/// Builds BTHome v2 advertisements, rotating through the schedule's groups.
///
/// Guarantees: never panics, never allocates; every advertisement is at most 31 bytes, objects in
/// ascending id order; a value outside its object's range is clamped and reported in
/// [`Advertisement::clamped`] and [`Encoder::clamped_total`]; the packet id changes with every
/// advertisement; an encryption counter value is never used twice by one encoder.
#[derive(Debug, Clone)]
pub struct Encoder {
    address: [u8; 6],
    cipher: Option<Cipher>,
    name: Option<Name>,
    interval: AdvInterval,
    schedule: Schedule,
    next_group: usize,
    packet_id: u8,
    /// Next encryption counter; above `u32::MAX` once all are used.
    counter: u64,
    clamped_total: u32,
}

impl Encoder {
    /// An encoder for `config`, or why the configuration cannot work.
    pub fn new(config: &Config) -> Result<Encoder, ConfigError> {
        let schedule = config.schedule();
        schedule.validate(config.bind_key.is_some())?;
        Ok(Encoder {
            address: config.address,
            cipher: config.bind_key.as_ref().map(Cipher::new),
            name: config.name,
            interval: config.interval,
            schedule,
            next_group: 0,
            packet_id: 0,
            counter: 0,
            clamped_total: 0,
        })
    }

    /// Continues encryption counting at `counter`.
    ///
    /// Receivers reject a counter lower than the last one they accepted (unless it is below
    /// 100, which they take as a restart), and a counter reused with the same key reuses the
    /// AES-CCM nonce. A device that reboots should start from a value it has not used, e.g. one
    /// derived from the meter's clock or stored before the reboot.
    pub fn set_counter(&mut self, counter: u32) {
        self.counter = u64::from(counter);
    }

    /// The next encryption counter value, or `None` once all are used.
    pub fn next_counter(&self) -> Option<u32> {
        u32::try_from(self.counter).ok()
    }

    /// Whether advertisements are encrypted.
    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// The device address, most significant byte first.
    pub fn address(&self) -> [u8; 6] {
        self.address
    }

    /// The advertising interval the radio should use.
    pub fn interval(&self) -> AdvInterval {
        self.interval
    }

    /// Values clamped so far (one per object sent clamped).
    pub fn clamped_total(&self) -> u32 {
        self.clamped_total
    }

    /// The next advertisement: the next group in the schedule that has a value in `values`
    /// (groups without any are skipped; if no group has one, the packet id goes alone).
    pub fn encode(&mut self, values: &Values) -> Result<Advertisement, EncodeError> {
        let groups = self.schedule.groups();
        let count = groups.len().max(1);
        let start = self.next_group % count;
        let mut chosen = start;
        for step in 0..count {
            let index = (start + step) % count;
            if groups.get(index).is_some_and(|g| g.iter().any(|f| values.get(f).is_some())) {
                chosen = index;
                break;
            }
        }
        let group = groups.get(chosen).copied().unwrap_or(FieldSet::EMPTY);

        let counter = match self.cipher {
            Some(_) => Some(u32::try_from(self.counter).map_err(|_| EncodeError::CounterExhausted)?),
            None => None,
        };

        let mut objects = [0u8; PLAIN_ROOM];
        let mut w = Writer::new(&mut objects);
        let mut fields = FieldSet::EMPTY;
        let mut clamped = FieldSet::EMPTY;
        w.object(ObjectType::PACKET_ID, u32::from(self.packet_id))?;
        for field in group.iter() {
            let Some(value) = values.get(field) else { continue };
            let (raw, was_clamped) = field.object().scale(value);
            w.object(field.object(), raw)?;
            fields.insert(field);
            if was_clamped {
                clamped.insert(field);
            }
        }
        let objects_len = w.len;

        let mut device_info = DEVICE_INFO_V2;
        let mut mic = [0u8; 4];
        if let (Some(cipher), Some(counter)) = (&self.cipher, counter) {
            device_info |= DEVICE_INFO_ENCRYPTED;
            let plain = objects.get_mut(..objects_len).ok_or(EncodeError::Overflow)?;
            mic = cipher
                .encrypt(&self.address, device_info, counter, plain)
                .map_err(|_| EncodeError::Encryption)?;
        }

        let mut data = [0u8; ADV_MAX];
        let mut w = Writer::new(&mut data);
        w.extend(&FLAGS_AD)?;
        let length_at = w.len;
        w.push(0)?;
        w.push(AD_SERVICE_DATA_16)?;
        w.extend(&SERVICE_UUID.to_le_bytes())?;
        w.push(device_info)?;
        w.extend(objects.get(..objects_len).ok_or(EncodeError::Overflow)?)?;
        if let Some(counter) = counter {
            w.extend(&counter.to_le_bytes())?;
            w.extend(&mic)?;
        }
        let service_len = u8::try_from(w.len.saturating_sub(length_at + 1)).map_err(|_| EncodeError::Overflow)?;
        w.set(length_at, service_len)?;
        if let Some(name) = &self.name {
            let name = name.as_bytes();
            if w.room() >= name.len() + 2 {
                w.push(u8::try_from(name.len() + 1).map_err(|_| EncodeError::Overflow)?)?;
                w.push(AD_COMPLETE_NAME)?;
                w.extend(name)?;
            }
        }
        let len = u8::try_from(w.len).map_err(|_| EncodeError::Overflow)?;

        // Commit state only once the advertisement exists.
        if counter.is_some() {
            self.counter += 1;
        }
        let packet_id = self.packet_id;
        self.packet_id = self.packet_id.wrapping_add(1);
        self.next_group = (chosen + 1) % count;
        self.clamped_total = self.clamped_total.saturating_add(clamped.len() as u32);
        Ok(Advertisement { data, len, fields, clamped, group: chosen, packet_id, counter })
    }
}

/// Appends bytes to a fixed buffer; running out of room is an error, not a panic.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    fn room(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    fn push(&mut self, byte: u8) -> Result<(), EncodeError> {
        self.set(self.len, byte)?;
        self.len += 1;
        Ok(())
    }

    fn set(&mut self, at: usize, byte: u8) -> Result<(), EncodeError> {
        *self.buf.get_mut(at).ok_or(EncodeError::Overflow)? = byte;
        Ok(())
    }

    fn extend(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        bytes.iter().try_for_each(|b| self.push(*b))
    }

    fn object(&mut self, object: ObjectType, raw: u32) -> Result<(), EncodeError> {
        self.push(object.id)?;
        let bytes = raw.to_le_bytes();
        self.extend(bytes.get(..usize::from(object.len)).ok_or(EncodeError::Overflow)?)
    }
}
