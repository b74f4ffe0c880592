use firmware_app::config::Config;
use firmware_app::policy::{Backoff, PublishPolicy};
use firmware_app::reading::Reading;

fn reading(power: i32, volt_dv: u16) -> Reading {
    Reading { power_import_w: Some(power), voltage_dv: [Some(volt_dv), None, None], energy_import_wh: [None, Some(1000), None], ..Reading::default() }
}

fn policy(kvs: &[(&str, &str)]) -> PublishPolicy {
    let mut c = Config::default();
    for (k, v) in kvs {
        c.set(k, v).unwrap();
    }
    PublishPolicy::new(&c)
}

#[test]
fn every_publishes_every_telegram() {
    let mut p = policy(&[("policy", "every")]);
    assert!((0..10).all(|t| p.admit(t * 1000, &reading(100, 2300))));
}

#[test]
fn interval_publishes_at_most_once_per_interval() {
    let mut p = policy(&[("policy", "interval"), ("min_interval_ms", "5000")]);
    let admitted: Vec<u64> = (0..12).map(|s| s * 1000).filter(|&t| p.admit(t, &reading(100, 2300))).collect();
    assert_eq!(admitted, [0, 5000, 10_000]);
}

#[test]
fn deadband_publishes_on_change_and_heartbeat() {
    let mut p = policy(&[("policy", "deadband"), ("min_interval_ms", "1000"), ("max_interval_ms", "10000"), ("deadband_w", "50"), ("deadband_v", "2")]);
    assert!(p.admit(0, &reading(100, 2300)));
    assert!(!p.admit(1000, &reading(140, 2300)), "within 50 W");
    assert!(p.admit(2000, &reading(151, 2300)), "51 W from the last published");
    assert!(!p.admit(2500, &reading(500, 2300)), "min interval");
    assert!(p.admit(3000, &reading(500, 2300)));
    assert!(!p.admit(4000, &reading(500, 2315)), "1.5 V");
    assert!(p.admit(5000, &reading(500, 2321)), "2.1 V");
    assert!(!p.admit(14_000, &reading(500, 2321)));
    assert!(p.admit(15_000, &reading(500, 2321)), "heartbeat");
}

#[test]
fn backoff_doubles_and_is_capped() {
    let mut b = Backoff::new(1000, 60_000);
    let d: Vec<u32> = (0..9).map(|_| b.next_delay()).collect();
    assert_eq!(d, [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    b.reset();
    assert_eq!(b.next_delay(), 1000);
}

/// The ring holds `Copy` readings; their size bounds the device's RAM for store-and-forward.
#[test]
fn reading_and_memory_sizes() {
    let reading = std::mem::size_of::<Reading>();
    let memory = std::mem::size_of::<firmware_app::Memory<601>>();
    println!("Reading: {reading} B; Memory<601> (600 waiting + 1 in flight): {memory} B");
    assert!(reading <= 200, "Reading grew to {reading} B");
    assert!(memory <= 601 * reading + 20 * 1024, "Memory<601> is {memory} B");
}
