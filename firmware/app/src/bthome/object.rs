//! The BTHome v2 objects the gateway sends: ids, sizes, scaling and ranges.
//!
//! Every object is an unsigned little-endian integer. An input value is multiplied by the object's
//! scale and saturates at the object's largest raw value: a value outside the range is sent as the
//! nearest value the object can carry and reported as clamped, never wrapped around.

/// A BTHome v2 object type as the gateway uses it.
///
/// Inputs are fixed-point integers in the unit named by each constant; `raw = input × raw_per_unit`.
/// A receiver shows `raw × factor` in the object's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectType {
    /// BTHome object id.
    pub id: u8,
    /// Payload size in bytes (the id byte not counted).
    pub len: u8,
    /// Raw steps per input unit.
    pub raw_per_unit: u32,
    /// Largest raw value sent; larger inputs are clamped to it.
    pub max_raw: u32,
}

impl ObjectType {
    /// 0x00 packet id, uint8. Not a measurement: it counts advertisements and wraps by design.
    pub const PACKET_ID: ObjectType = ObjectType { id: 0x00, len: 1, raw_per_unit: 1, max_raw: 0xFF };
    /// 0x01 battery, uint8, 1 %; input in percent, range 0..=100 %.
    pub const BATTERY: ObjectType = ObjectType { id: 0x01, len: 1, raw_per_unit: 1, max_raw: 100 };
    /// 0x0B power, uint24, 0.01 W; input in W, range 0..=167 772.15 W.
    pub const POWER: ObjectType = ObjectType { id: 0x0B, len: 3, raw_per_unit: 100, max_raw: 0xFF_FFFF };
    /// 0x43 current, uint16, 0.001 A; input in mA, range 0..=65.535 A.
    pub const CURRENT: ObjectType = ObjectType { id: 0x43, len: 2, raw_per_unit: 1, max_raw: 0xFFFF };
    /// 0x4A voltage, uint16, 0.1 V; input in dV, range 0..=6553.5 V.
    pub const VOLTAGE: ObjectType = ObjectType { id: 0x4A, len: 2, raw_per_unit: 1, max_raw: 0xFFFF };
    /// 0x4C gas, uint32, 0.001 m³; input in litres (dm³), range 0..=4 294 967.295 m³.
    pub const GAS: ObjectType = ObjectType { id: 0x4C, len: 4, raw_per_unit: 1, max_raw: u32::MAX };
    /// 0x4D energy, uint32, 0.001 kWh; input in Wh, range 0..=4 294 967.295 kWh.
    pub const ENERGY: ObjectType = ObjectType { id: 0x4D, len: 4, raw_per_unit: 1, max_raw: u32::MAX };

    /// Scales `value` (in the input unit) to the raw value. The flag is `true` when the value was
    /// outside the range and has been clamped to `max_raw`.
    pub const fn scale(self, value: u64) -> (u32, bool) {
        let raw = value.saturating_mul(self.raw_per_unit as u64);
        if raw > self.max_raw as u64 {
            (self.max_raw, true)
        } else {
            // Fits: raw <= max_raw <= u32::MAX.
            (raw as u32, false)
        }
    }

    /// The largest input value that is sent without clamping.
    pub const fn max_input(self) -> u64 {
        self.max_raw as u64 / self.raw_per_unit as u64
    }

    /// Bytes the object takes in an advertisement: id plus payload.
    pub const fn encoded_len(self) -> usize {
        1 + self.len as usize
    }
}

/// One value the gateway advertises.
///
/// Declaration order is ascending object id, the order objects take in an advertisement (BTHome
/// receivers expect ids from low to high, and number repeated objects of one kind `_1`, `_2`, ...
/// in the order they appear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    /// Battery charge, percent.
    Battery,
    /// Power drawn from the grid (DSMR 1-0:1.7.0), W.
    PowerImport,
    /// Power returned to the grid (DSMR 1-0:2.7.0), W.
    PowerExport,
    /// Phase L1 current (1-0:31.7.0), mA.
    CurrentL1,
    /// Phase L2 current (1-0:51.7.0), mA.
    CurrentL2,
    /// Phase L3 current (1-0:71.7.0), mA.
    CurrentL3,
    /// Phase L1 voltage (1-0:32.7.0), dV.
    VoltageL1,
    /// Phase L2 voltage (1-0:52.7.0), dV.
    VoltageL2,
    /// Phase L3 voltage (1-0:72.7.0), dV.
    VoltageL3,
    /// Gas meter reading (0-n:24.2.1), litres.
    Gas,
    /// Imported energy, all tariffs summed (1-0:1.8.x), Wh.
    EnergyImport,
    /// Exported energy, all tariffs summed (1-0:2.8.x), Wh.
    EnergyExport,
}

impl Field {
    /// Every field, in advertisement order.
    pub const ALL: [Field; 12] = [
        Field::Battery,
        Field::PowerImport,
        Field::PowerExport,
        Field::CurrentL1,
        Field::CurrentL2,
        Field::CurrentL3,
        Field::VoltageL1,
        Field::VoltageL2,
        Field::VoltageL3,
        Field::Gas,
        Field::EnergyImport,
        Field::EnergyExport,
    ];

    /// The object type this field is sent as.
    pub const fn object(self) -> ObjectType {
        match self {
            Field::Battery => ObjectType::BATTERY,
            Field::PowerImport | Field::PowerExport => ObjectType::POWER,
            Field::CurrentL1 | Field::CurrentL2 | Field::CurrentL3 => ObjectType::CURRENT,
            Field::VoltageL1 | Field::VoltageL2 | Field::VoltageL3 => ObjectType::VOLTAGE,
            Field::Gas => ObjectType::GAS,
            Field::EnergyImport | Field::EnergyExport => ObjectType::ENERGY,
        }
    }

    /// The fields sent as the same kind of object. A receiver keys repeated objects by their
    /// position, so a group that carries one field of a class must carry the whole class.
    pub const fn class(self) -> FieldSet {
        match self {
            Field::Battery => FieldSet::BATTERY,
            Field::PowerImport | Field::PowerExport => FieldSet::POWER,
            Field::CurrentL1 | Field::CurrentL2 | Field::CurrentL3 => FieldSet::CURRENT,
            Field::VoltageL1 | Field::VoltageL2 | Field::VoltageL3 => FieldSet::VOLTAGE,
            Field::Gas => FieldSet::GAS,
            Field::EnergyImport | Field::EnergyExport => FieldSet::ENERGY,
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A set of [`Field`]s: one advertisement group, or the fields that were clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FieldSet(u16);

impl FieldSet {
    /// No field.
    pub const EMPTY: FieldSet = FieldSet(0);
    /// Battery percentage.
    pub const BATTERY: FieldSet = FieldSet::of(&[Field::Battery]);
    /// Imported and exported power.
    pub const POWER: FieldSet = FieldSet::of(&[Field::PowerImport, Field::PowerExport]);
    /// The three phase currents.
    pub const CURRENT: FieldSet = FieldSet::of(&[Field::CurrentL1, Field::CurrentL2, Field::CurrentL3]);
    /// The three phase voltages.
    pub const VOLTAGE: FieldSet = FieldSet::of(&[Field::VoltageL1, Field::VoltageL2, Field::VoltageL3]);
    /// Gas.
    pub const GAS: FieldSet = FieldSet::of(&[Field::Gas]);
    /// Imported and exported energy totals.
    pub const ENERGY: FieldSet = FieldSet::of(&[Field::EnergyImport, Field::EnergyExport]);
    /// Every field.
    pub const ALL: FieldSet = FieldSet::of(&Field::ALL);

    /// The set holding `fields`.
    pub const fn of(fields: &[Field]) -> FieldSet {
        let mut bits = 0;
        let mut rest = fields;
        while let [first, tail @ ..] = rest {
            bits |= first.bit();
            rest = tail;
        }
        FieldSet(bits)
    }

    /// Both sets together.
    pub const fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    /// Whether `field` is in the set.
    pub const fn contains(self, field: Field) -> bool {
        self.0 & field.bit() != 0
    }

    /// Whether every field of `other` is in the set.
    pub const fn contains_all(self, other: FieldSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set and `other` share a field.
    pub const fn intersects(self, other: FieldSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Adds `field`.
    pub fn insert(&mut self, field: Field) {
        self.0 |= field.bit();
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of fields in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The fields in the set, in advertisement order.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    /// Bytes the fields' objects take when all are present.
    pub fn encoded_len(self) -> usize {
        self.iter().map(|f| f.object().encoded_len()).sum()
    }
}
