//! Which fields go into which advertisement.
//!
//! A legacy advertisement has room for 23 bytes of BTHome objects, 15 when encrypted, so the
//! values are split into groups sent in turn. Two rules keep receivers' sensors stable:
//! - a group carries whole classes ([`Field::class`]): Home Assistant names repeated objects of
//!   one kind `power_1`, `power_2` by their position in the advertisement, so both powers must
//!   always travel together and in the same order;
//! - every group fits one advertisement with all its fields present.
//!
//! [`Field::class`]: super::Field::class

use super::config::ConfigError;
use super::object::{Field, FieldSet, ObjectType};

/// Room for objects (packet id included) in a plain advertisement: 31 bytes minus the flags AD
/// (3) and the service data header (length, type, UUID, device info: 5).
pub const PLAIN_ROOM: usize = 23;
/// Room for objects in an encrypted advertisement: [`PLAIN_ROOM`] minus counter (4) and MIC (4).
pub const ENCRYPTED_ROOM: usize = 15;

/// The groups sent in turn, one per advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule(pub &'static [FieldSet]);

/// Plain: power in every advertisement; energy and battery, voltages, currents and gas in turn.
pub const DEFAULT_PLAIN: Schedule = Schedule(&[
    FieldSet::POWER.union(FieldSet::BATTERY).union(FieldSet::ENERGY),
    FieldSet::POWER.union(FieldSet::VOLTAGE),
    FieldSet::POWER.union(FieldSet::CURRENT),
    FieldSet::POWER.union(FieldSet::GAS),
]);

/// Encrypted: power in every other advertisement; energy, voltages, currents and gas in between.
pub const DEFAULT_ENCRYPTED: Schedule = Schedule(&[
    FieldSet::POWER.union(FieldSet::BATTERY),
    FieldSet::ENERGY,
    FieldSet::POWER,
    FieldSet::VOLTAGE,
    FieldSet::POWER,
    FieldSet::CURRENT,
    FieldSet::POWER,
    FieldSet::GAS,
]);

impl Schedule {
    /// Checks the two rules above for the given mode.
    pub fn validate(self, encrypted: bool) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            return Err(ConfigError::EmptySchedule);
        }
        let room = if encrypted { ENCRYPTED_ROOM } else { PLAIN_ROOM };
        for (index, group) in self.0.iter().enumerate() {
            let needs = ObjectType::PACKET_ID.encoded_len() + group.encoded_len();
            if needs > room {
                return Err(ConfigError::GroupTooLarge { index, needs, room });
            }
            for field in Field::ALL {
                let class = field.class();
                if group.contains(field) && !group.contains_all(class) {
                    return Err(ConfigError::SplitClass { index, class });
                }
            }
        }
        Ok(())
    }

    /// The groups.
    pub fn groups(self) -> &'static [FieldSet] {
        self.0
    }
}
