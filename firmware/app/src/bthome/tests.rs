#![allow(clippy::unwrap_used)]

extern crate std;

use std::vec::Vec;

use super::*;

const ADDR: [u8; 6] = [0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF];
const KEY: BindKey = BindKey([
    0x23, 0x1D, 0x39, 0xC1, 0xD7, 0xCC, 0x1A, 0xB1, 0xAE, 0xE2, 0x24, 0xCD, 0x09, 0x6D, 0xB9, 0x32,
]);

fn full() -> Values {
    Values {
        battery_percent: Some(87),
        power_import_w: Some(193),
        power_export_w: Some(0),
        current_ma: [Some(1000), Some(2000), Some(3000)],
        voltage_dv: [Some(2361), Some(2302), Some(2299)],
        gas_l: Some(304_089),
        energy_import_wh: Some(1_041_401),
        energy_export_wh: Some(0),
    }
}

fn only(field: Field, value: u64) -> Values {
    let mut v = Values::default();
    let small = Some(value as u32);
    match field {
        Field::Battery => v.battery_percent = Some(value as u8),
        Field::PowerImport => v.power_import_w = small,
        Field::PowerExport => v.power_export_w = small,
        Field::CurrentL1 => v.current_ma[0] = small,
        Field::CurrentL2 => v.current_ma[1] = small,
        Field::CurrentL3 => v.current_ma[2] = small,
        Field::VoltageL1 => v.voltage_dv[0] = small,
        Field::VoltageL2 => v.voltage_dv[1] = small,
        Field::VoltageL3 => v.voltage_dv[2] = small,
        Field::Gas => v.gas_l = Some(value),
        Field::EnergyImport => v.energy_import_wh = Some(value),
        Field::EnergyExport => v.energy_export_wh = Some(value),
    }
    v
}

/// The object bytes (after device info and packet id) of a plain advertisement of `values`.
fn object_bytes(values: &Values) -> (Vec<u8>, FieldSet) {
    let mut enc = Encoder::new(&Config::new(ADDR)).unwrap();
    let adv = enc.encode(values).unwrap();
    let bytes = adv.as_bytes();
    // flags (3) + length, 0x16, UUID (2), device info (1) + packet id object (2)
    (bytes[10..].to_vec(), adv.clamped)
}

#[track_caller]
fn check_object(field: Field, value: u64, expected: &[u8], clamped: bool) {
    let (bytes, was_clamped) = object_bytes(&only(field, value));
    assert_eq!(bytes, expected, "{field:?} = {value}");
    assert_eq!(was_clamped.contains(field), clamped, "{field:?} = {value} clamped flag");
    assert_eq!(was_clamped.len(), usize::from(clamped));
}

#[test]
fn battery_is_whole_percent_clamped_at_100() {
    check_object(Field::Battery, 0, &[0x01, 0x00], false);
    check_object(Field::Battery, 87, &[0x01, 0x57], false);
    check_object(Field::Battery, 100, &[0x01, 0x64], false);
    check_object(Field::Battery, 101, &[0x01, 0x64], true);
    check_object(Field::Battery, 255, &[0x01, 0x64], true);
}

#[test]
fn power_is_hundredths_of_a_watt_in_24_bits() {
    for field in [Field::PowerImport, Field::PowerExport] {
        check_object(field, 0, &[0x0B, 0x00, 0x00, 0x00], false);
        check_object(field, 193, &[0x0B, 0x64, 0x4B, 0x00], false);
        check_object(field, 167_772, &[0x0B, 0xF0, 0xFF, 0xFF], false);
        check_object(field, 167_773, &[0x0B, 0xFF, 0xFF, 0xFF], true);
        check_object(field, u64::from(u32::MAX), &[0x0B, 0xFF, 0xFF, 0xFF], true);
    }
}

#[test]
fn current_is_milliamps_in_16_bits() {
    for field in [Field::CurrentL1, Field::CurrentL2, Field::CurrentL3] {
        check_object(field, 0, &[0x43, 0x00, 0x00], false);
        check_object(field, 1000, &[0x43, 0xE8, 0x03], false);
        check_object(field, 65_535, &[0x43, 0xFF, 0xFF], false);
        check_object(field, 65_536, &[0x43, 0xFF, 0xFF], true);
        check_object(field, 999_000, &[0x43, 0xFF, 0xFF], true);
    }
}

#[test]
fn voltage_is_decivolts_in_16_bits() {
    for field in [Field::VoltageL1, Field::VoltageL2, Field::VoltageL3] {
        check_object(field, 0, &[0x4A, 0x00, 0x00], false);
        check_object(field, 2361, &[0x4A, 0x39, 0x09], false);
        check_object(field, 65_535, &[0x4A, 0xFF, 0xFF], false);
        check_object(field, 65_536, &[0x4A, 0xFF, 0xFF], true);
    }
}

#[test]
fn gas_is_litres_in_32_bits() {
    check_object(Field::Gas, 0, &[0x4C, 0, 0, 0, 0], false);
    check_object(Field::Gas, 304_089, &[0x4C, 0xD9, 0xA3, 0x04, 0x00], false);
    check_object(Field::Gas, u64::from(u32::MAX), &[0x4C, 0xFF, 0xFF, 0xFF, 0xFF], false);
    check_object(Field::Gas, u64::from(u32::MAX) + 1, &[0x4C, 0xFF, 0xFF, 0xFF, 0xFF], true);
    check_object(Field::Gas, u64::MAX, &[0x4C, 0xFF, 0xFF, 0xFF, 0xFF], true);
}

#[test]
fn energy_is_watt_hours_in_32_bits() {
    for field in [Field::EnergyImport, Field::EnergyExport] {
        check_object(field, 0, &[0x4D, 0, 0, 0, 0], false);
        check_object(field, 1_041_401, &[0x4D, 0xF9, 0xE3, 0x0F, 0x00], false);
        // The largest DSMR register value, 999999.999 kWh, fits.
        check_object(field, 999_999_999, &[0x4D, 0xFF, 0xC9, 0x9A, 0x3B], false);
        check_object(field, u64::from(u32::MAX) + 1, &[0x4D, 0xFF, 0xFF, 0xFF, 0xFF], true);
    }
}

#[test]
fn scale_saturates_and_never_wraps() {
    let types = [
        ObjectType::BATTERY,
        ObjectType::POWER,
        ObjectType::CURRENT,
        ObjectType::VOLTAGE,
        ObjectType::GAS,
        ObjectType::ENERGY,
    ];
    for t in types {
        assert_eq!(t.scale(0), (0, false));
        let max = t.max_input();
        let (raw, clamped) = t.scale(max);
        assert!(!clamped && raw <= t.max_raw, "{t:?}");
        assert_eq!(u64::from(raw), max * u64::from(t.raw_per_unit));
        assert_eq!(t.scale(max + 1), (t.max_raw, true), "{t:?}");
        assert_eq!(t.scale(u64::MAX), (t.max_raw, true), "{t:?}");
        assert!(u64::from(t.max_raw) < 1u64 << (8 * u32::from(t.len)), "{t:?} max fits its bytes");
    }
}

#[test]
fn plain_advertisement_bytes() {
    let mut enc = Encoder::new(&Config::new(ADDR)).unwrap();
    let adv = enc.encode(&full()).unwrap();
    #[rustfmt::skip]
    let expected = [
        0x02, 0x01, 0x06,
        0x1A, 0x16, 0xD2, 0xFC, 0x40,
        0x00, 0x00,
        0x01, 0x57,
        0x0B, 0x64, 0x4B, 0x00,
        0x0B, 0x00, 0x00, 0x00,
        0x4D, 0xF9, 0xE3, 0x0F, 0x00,
        0x4D, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(adv.as_bytes(), expected);
    assert_eq!(adv.group, 0);
    assert_eq!(adv.packet_id, 0);
    assert_eq!(adv.counter, None);
    assert!(adv.clamped.is_empty());
}

/// Known answer from Python's `cryptography` AESCCM with bthome-ble's example key, MAC and
/// counter (bthome_v2_encryption.py): plaintext 02CA0903BF13.
#[test]
fn ccm_matches_reference_implementation() {
    let cipher = crypto::Cipher::new(&KEY);
    let mac = [0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5];
    let mut buf = [0x02, 0xCA, 0x09, 0x03, 0xBF, 0x13];
    let mic = cipher.encrypt(&mac, 0x41, 1_122_867, &mut buf).unwrap();
    assert_eq!(buf, [0xE4, 0x45, 0xF3, 0xC9, 0x96, 0x2B]);
    assert_eq!(mic, [0x6C, 0x7C, 0x45, 0x19]);
    assert_eq!(
        crypto::nonce(&mac, 0x41, 1_122_867),
        [0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5, 0xD2, 0xFC, 0x41, 0x33, 0x22, 0x11, 0x00]
    );
}

#[test]
fn encrypted_advertisement_layout() {
    let mut cfg = Config::new(ADDR);
    cfg.bind_key = Some(KEY);
    let mut enc = Encoder::new(&cfg).unwrap();
    enc.set_counter(0x0102_0304);
    let adv = enc.encode(&full()).unwrap();
    let b = adv.as_bytes();
    // group 0 of the encrypted schedule: packet id, battery, two powers = 12 bytes of objects
    assert_eq!(b.len(), 3 + 5 + 12 + 8);
    assert_eq!(&b[..8], &[0x02, 0x01, 0x06, 0x18, 0x16, 0xD2, 0xFC, 0x41]);
    assert_eq!(&b[20..24], &[0x04, 0x03, 0x02, 0x01], "counter in clear, little-endian");
    assert_ne!(&b[8..20], &[0x00, 0x00, 0x01, 0x57, 0x0B, 0x64, 0x4B, 0x00, 0x0B, 0, 0, 0], "not plaintext");
    assert_eq!(adv.counter, Some(0x0102_0304));
    assert_eq!(enc.next_counter(), Some(0x0102_0305));
    let d = decode(ADDR, b, Some(&KEY)).unwrap();
    assert_eq!(d.counter, Some(0x0102_0304));
    assert_eq!(d.packet_id, Some(0));
    assert_eq!(d.values.power_import_w, Some(193));
    assert_eq!(d.values.battery_percent, Some(87));
}

#[test]
fn wrong_key_or_address_is_rejected() {
    let tried = core::cell::Cell::new(0);
    let decode = |address: [u8; 6], ad: &[u8], key: Option<&BindKey>| {
        tried.set(tried.get() + 1);
        decode(address, ad, key)
    };
    let mut cfg = Config::new(ADDR);
    cfg.bind_key = Some(KEY);
    let adv = Encoder::new(&cfg).unwrap().encode(&full()).unwrap();
    let mut wrong = KEY;
    wrong.0[15] ^= 1;
    assert_eq!(decode(ADDR, adv.as_bytes(), Some(&wrong)), Err(DecodeError::Authentication));
    let mut other = ADDR;
    other[5] ^= 1;
    assert_eq!(decode(other, adv.as_bytes(), Some(&KEY)), Err(DecodeError::Authentication));
    assert_eq!(decode(ADDR, adv.as_bytes(), None), Err(DecodeError::KeyNeeded));
    let mut tampered = adv.as_bytes().to_vec();
    tampered[9] ^= 0x80;
    assert_eq!(decode(ADDR, &tampered, Some(&KEY)), Err(DecodeError::Authentication));
    hostile_inputs("BLE/TLS inputs", tried.get(), "firmware-app bthome::tests::wrong_key_or_address_is_rejected");
}

#[test]
fn default_schedules_fit_and_keep_classes_whole() {
    assert_eq!(DEFAULT_PLAIN.validate(false), Ok(()));
    assert_eq!(DEFAULT_ENCRYPTED.validate(true), Ok(()));
    assert_eq!(DEFAULT_ENCRYPTED.validate(false), Ok(()));
    assert!(matches!(DEFAULT_PLAIN.validate(true), Err(ConfigError::GroupTooLarge { index: 0, .. })));
    // Every field is in some group of each schedule.
    for s in [DEFAULT_PLAIN, DEFAULT_ENCRYPTED] {
        let all = s.groups().iter().fold(FieldSet::EMPTY, |a, g| a.union(*g));
        assert_eq!(all, FieldSet::ALL);
    }
}

#[test]
fn bad_schedules_are_refused() {
    let mut cfg = Config::new(ADDR);
    cfg.schedule = Some(Schedule(&[]));
    assert_eq!(Encoder::new(&cfg).err(), Some(ConfigError::EmptySchedule));
    const SPLIT: &[FieldSet] = &[FieldSet::POWER, FieldSet::of(&[Field::VoltageL1, Field::VoltageL2])];
    cfg.schedule = Some(Schedule(SPLIT));
    assert_eq!(Encoder::new(&cfg).err(), Some(ConfigError::SplitClass { index: 1, class: FieldSet::VOLTAGE }));
    cfg.schedule = Some(Schedule(&[FieldSet::ALL]));
    assert_eq!(Encoder::new(&cfg).err(), Some(ConfigError::GroupTooLarge { index: 0, needs: 2 + 43, room: 23 }));
}

#[test]
fn every_advertisement_fits_and_objects_ascend() {
    let maxed = Values {
        battery_percent: Some(u8::MAX),
        power_import_w: Some(u32::MAX),
        power_export_w: Some(u32::MAX),
        current_ma: [Some(u32::MAX); 3],
        voltage_dv: [Some(u32::MAX); 3],
        gas_l: Some(u64::MAX),
        energy_import_wh: Some(u64::MAX),
        energy_export_wh: Some(u64::MAX),
    };
    for key in [None, Some(KEY)] {
        let mut cfg = Config::new(ADDR);
        cfg.bind_key = key;
        let mut enc = Encoder::new(&cfg).unwrap();
        let groups = cfg.schedule().groups().len();
        for _ in 0..2 * groups {
            let adv = enc.encode(&maxed).unwrap();
            assert!(adv.as_bytes().len() <= ADV_MAX);
            assert_eq!(adv.clamped, adv.fields, "every maxed field is clamped");
            let d = decode(ADDR, adv.as_bytes(), key.as_ref()).unwrap();
            for f in adv.fields.iter() {
                assert_eq!(d.values.get(f), Some(f.object().max_input()), "{f:?}");
            }
            if key.is_none() {
                let mut ids = Vec::new();
                let mut rest = &adv.as_bytes()[8..];
                while let Some((&id, tail)) = rest.split_first() {
                    ids.push(id);
                    let len = if id == 0 { 1 } else { Field::ALL.iter().find(|f| f.object().id == id).unwrap().object().len };
                    rest = &tail[usize::from(len)..];
                }
                assert!(ids.windows(2).all(|w| w[0] <= w[1]), "ids ascend: {ids:02X?}");
            }
        }
    }
}

#[test]
fn groups_rotate_and_packet_id_advances() {
    let mut enc = Encoder::new(&Config::new(ADDR)).unwrap();
    let v = full();
    let seen: Vec<(usize, u8)> = (0..6).map(|_| enc.encode(&v).unwrap()).map(|a| (a.group, a.packet_id)).collect();
    assert_eq!(seen, [(0, 0), (1, 1), (2, 2), (3, 3), (0, 4), (1, 5)]);
    let mut enc = Encoder::new(&Config::new(ADDR)).unwrap();
    let ids: Vec<u8> = (0..300).map(|_| enc.encode(&v).unwrap().packet_id).collect();
    assert_eq!(&ids[254..258], &[254, 255, 0, 1], "packet id wraps");
}

#[test]
fn groups_without_values_are_skipped() {
    let mut enc = Encoder::new(&Config::new(ADDR)).unwrap();
    // Single-phase meter without gas, battery unknown: gas group (3) is skipped.
    let v = Values {
        power_import_w: Some(500),
        power_export_w: Some(0),
        voltage_dv: [Some(2300), None, None],
        current_ma: [Some(2000), None, None],
        energy_import_wh: Some(1),
        energy_export_wh: Some(2),
        ..Values::default()
    };
    let groups: Vec<usize> = (0..5).map(|_| enc.encode(&v).unwrap().group).collect();
    assert_eq!(groups, [0, 1, 2, 3, 0]);
    let mut cfg = Config::new(ADDR);
    cfg.bind_key = Some(KEY);
    let mut enc = Encoder::new(&cfg).unwrap();
    let v = Values { energy_import_wh: Some(5), ..Values::default() };
    let groups: Vec<usize> = (0..3).map(|_| enc.encode(&v).unwrap().group).collect();
    assert_eq!(groups, [1, 1, 1]);
    // Nothing at all: the packet id alone.
    let adv = enc.encode(&Values::default()).unwrap();
    assert!(adv.fields.is_empty());
    assert_eq!(decode(ADDR, adv.as_bytes(), Some(&KEY)).unwrap().packet_id, Some(adv.packet_id));
}

#[test]
fn clamped_values_are_counted() {
    let mut enc = Encoder::new(&Config::new(ADDR)).unwrap();
    let mut v = full();
    v.power_import_w = Some(200_000);
    v.battery_percent = Some(120);
    let adv = enc.encode(&v).unwrap();
    assert_eq!(adv.clamped, FieldSet::of(&[Field::Battery, Field::PowerImport]));
    assert_eq!(enc.clamped_total(), 2);
    enc.encode(&v).unwrap();
    assert_eq!(enc.clamped_total(), 3, "power again, battery not in group 1");
}

#[test]
fn counter_is_never_reused() {
    let mut cfg = Config::new(ADDR);
    cfg.bind_key = Some(KEY);
    let mut enc = Encoder::new(&cfg).unwrap();
    enc.set_counter(u32::MAX - 1);
    assert_eq!(enc.encode(&full()).unwrap().counter, Some(u32::MAX - 1));
    assert_eq!(enc.encode(&full()).unwrap().counter, Some(u32::MAX));
    assert_eq!(enc.next_counter(), None);
    assert_eq!(enc.encode(&full()), Err(EncodeError::CounterExhausted));
    assert_eq!(enc.encode(&full()), Err(EncodeError::CounterExhausted));
    // Plain advertisements have no counter to run out of.
    let mut plain = Encoder::new(&Config::new(ADDR)).unwrap();
    plain.set_counter(u32::MAX);
    plain.encode(&full()).unwrap();
    assert!(plain.encode(&full()).is_ok());
}

#[test]
fn name_is_added_only_where_it_fits() {
    let mut cfg = Config::new(ADDR);
    cfg.name = Some(Name::new("P1").unwrap());
    let mut enc = Encoder::new(&cfg).unwrap();
    let mut with_name = Vec::new();
    for _ in 0..4 {
        let adv = enc.encode(&full()).unwrap();
        assert!(adv.as_bytes().len() <= ADV_MAX);
        let d = decode(ADDR, adv.as_bytes(), None).unwrap();
        with_name.push(d.name.map(|n| n.as_bytes().to_vec()));
    }
    // group 0 (30 bytes) has no room for 4 more; the others do.
    let p1 = Some(b"P1".to_vec());
    assert_eq!(with_name, [None, p1.clone(), p1.clone(), p1]);
}

#[test]
fn interval_limits() {
    assert_eq!(AdvInterval::from_millis(19), Err(ConfigError::IntervalOutOfRange));
    assert_eq!(AdvInterval::from_millis(10_241), Err(ConfigError::IntervalOutOfRange));
    assert_eq!(AdvInterval::from_millis(20).unwrap().as_units(), 32);
    assert_eq!(AdvInterval::from_millis(10_240).unwrap().as_units(), 0x4000);
    assert_eq!(AdvInterval::default().as_units(), 1600);
    assert_eq!(AdvInterval::default().as_millis(), 1000);
}

#[test]
fn key_and_name_parsing() {
    assert_eq!(BindKey::from_hex("231d39c1d7cc1ab1aee224cd096db932"), Ok(KEY));
    assert_eq!(BindKey::from_hex("231D39C1D7CC1AB1AEE224CD096DB932"), Ok(KEY));
    assert_eq!(BindKey::from_hex("231d39c1d7cc1ab1aee224cd096db93"), Err(ConfigError::BadKey));
    assert_eq!(BindKey::from_hex("231d39c1d7cc1ab1aee224cd096db93g"), Err(ConfigError::BadKey));
    assert_eq!(BindKey::from_hex("é31d39c1d7cc1ab1aee224cd096db93"), Err(ConfigError::BadKey));
    assert_eq!(std::format!("{KEY:?}"), "BindKey(..)");
    assert!(Name::new(&"x".repeat(29)).is_ok());
    assert_eq!(Name::new(&"x".repeat(30)), Err(ConfigError::BadName));
    assert_eq!(Name::new(""), Err(ConfigError::BadName));
}

#[test]
fn decode_refuses_malformed_input() {
    let tried = core::cell::Cell::new(0);
    let decode = |address: [u8; 6], ad: &[u8], key: Option<&BindKey>| {
        tried.set(tried.get() + 1);
        decode(address, ad, key)
    };
    assert_eq!(decode(ADDR, &[0x05, 0x16, 0xD2], None), Err(DecodeError::Malformed));
    assert_eq!(decode(ADDR, &[0x02, 0x01, 0x06], None), Err(DecodeError::NoServiceData));
    assert_eq!(decode(ADDR, &[0x04, 0x16, 0xD2, 0xFC, 0x20], None), Err(DecodeError::NotVersion2));
    assert_eq!(decode(ADDR, &[0x05, 0x16, 0xD2, 0xFC, 0x40, 0x0B], None), Err(DecodeError::Truncated));
    assert_eq!(decode(ADDR, &[0x06, 0x16, 0xD2, 0xFC, 0x40, 0x02, 0x00], None), Err(DecodeError::UnknownObject(0x02)));
    assert_eq!(
        decode(ADDR, &[0x08, 0x16, 0xD2, 0xFC, 0x40, 0x01, 0x01, 0x01, 0x02], None),
        Err(DecodeError::TooMany(0x01))
    );
    assert_eq!(decode(ADDR, &[0x04, 0x16, 0xD2, 0xFC, 0x41], Some(&KEY)), Err(DecodeError::Truncated));
    hostile_inputs("BLE/TLS inputs", tried.get(), "firmware-app bthome::tests::decode_refuses_malformed_input");
}

/// Appends `category<TAB>count<TAB>test` to `$HOSTILE_INPUTS_LOG` (ci/checks/92-hostile-inputs.sh).
fn hostile_inputs(category: &str, count: usize, test: &str) {
    if let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("HOSTILE_INPUTS_LOG");
        f.write_all(std::format!("{category}\t{count}\t{test}\n").as_bytes()).expect("HOSTILE_INPUTS_LOG");
    }
}
