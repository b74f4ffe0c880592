//! Figures for the BTHome encoder: advertisement sizes per group and encode time.
//!
//! `cargo run --release -p firmware-app --example bthome_figures`
//!
//! Values are the ISKRA AM550 fixture telegram's, all fields present (3 phases, gas, battery).

use std::hint::black_box;
use std::time::Instant;

use firmware_app::bthome::{BindKey, Config, Encoder, FieldSet, Name, Values, ADV_MAX};

fn values() -> Values {
    Values {
        battery_percent: Some(73),
        power_import_w: Some(193),
        power_export_w: Some(0),
        current_ma: [Some(1000), Some(0), Some(0)],
        voltage_dv: [Some(2361), Some(2326), Some(2351)],
        gas_l: Some(304_089),
        energy_import_wh: Some(1_041_401),
        energy_export_wh: Some(0),
    }
}

fn group_name(g: FieldSet) -> String {
    let mut parts = Vec::new();
    for (set, name) in [
        (FieldSet::POWER, "power"),
        (FieldSet::BATTERY, "battery"),
        (FieldSet::ENERGY, "energy"),
        (FieldSet::VOLTAGE, "voltage"),
        (FieldSet::CURRENT, "current"),
        (FieldSet::GAS, "gas"),
    ] {
        if g.contains_all(set) {
            parts.push(name);
        }
    }
    parts.join("+")
}

fn main() {
    let key = BindKey::from_hex("231d39c1d7cc1ab1aee224cd096db932").expect("key");
    let address = [0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5];
    let v = values();
    println!("advertisement sizes (legacy limit {ADV_MAX} bytes; name \"P1\" added where it fits)");
    println!("airtime: LE 1M PHY, ADV_NONCONN_IND = preamble 1 + access address 4 + header 2 + AdvA 6");
    println!("         + AD + CRC 3 bytes at 8 us/byte, per channel; an advertising event uses 3 channels");
    println!(
        "{:<10} {:>5} {:<24} {:>8} {:>9} {:>9} {:>11} {:>11}",
        "mode", "group", "contents", "objects", "AD bytes", "with name", "us/channel", "us/event"
    );
    for (mode, bind_key) in [("plain", None), ("encrypted", Some(key))] {
        let mut cfg = Config::new(address);
        cfg.bind_key = bind_key;
        let mut bare = Encoder::new(&cfg).expect("encoder");
        cfg.name = Some(Name::new("P1").expect("name"));
        let mut named = Encoder::new(&cfg).expect("encoder");
        for (i, g) in cfg.schedule().groups().iter().enumerate() {
            let a = bare.encode(&v).expect("encode");
            let b = named.encode(&v).expect("encode");
            let objects = 2 + g.encoded_len();
            let airtime = (16 + a.as_bytes().len()) * 8;
            println!(
                "{:<10} {:>5} {:<24} {:>8} {:>9} {:>9} {:>11} {:>11}",
                mode,
                i,
                group_name(*g),
                objects,
                a.as_bytes().len(),
                b.as_bytes().len(),
                airtime,
                3 * airtime
            );
        }
    }

    println!();
    println!("encode time per advertisement (this host, release build, mean of N calls)");
    for (mode, bind_key) in [("plain", None), ("encrypted", Some(key))] {
        let mut cfg = Config::new(address);
        cfg.bind_key = bind_key;
        let mut enc = Encoder::new(&cfg).expect("encoder");
        let n = 1_000_000u32;
        let mut sink = 0usize;
        let start = Instant::now();
        for _ in 0..n {
            let adv = enc.encode(black_box(&v)).expect("encode");
            sink = sink.wrapping_add(adv.as_bytes().len());
        }
        let elapsed = start.elapsed();
        black_box(sink);
        println!("{:<10} N={n} {:>8.1} ns/advertisement", mode, elapsed.as_nanos() as f64 / f64::from(n));
    }
    println!("encoder state: {} bytes (plain and encrypted alike)", std::mem::size_of::<Encoder>());
}
