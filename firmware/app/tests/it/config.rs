use firmware_app::config::{parse_broker, Config, ConfigError, Field, PolicyKind, Problem, SetError};

fn base() -> Config {
    let mut c = Config::default();
    c.set("broker", "mqtt://broker.lan:1883").unwrap();
    c.set("device_id", "meter1").unwrap();
    c.set("wifi_ssid", "home").unwrap();
    c.set("wifi_password", "correct horse").unwrap();
    c
}

#[track_caller]
fn bad(key: &str, value: &str, field: Field, problem: Problem) {
    let mut c = base();
    let got = match c.set(key, value) {
        Err(SetError::Invalid(e)) => e,
        Err(SetError::UnknownKey) => panic!("unknown key {key}"),
        Ok(()) => c.validate(true).expect_err(&format!("{key}={value:?} accepted")),
    };
    assert_eq!(got, ConfigError { field, problem }, "{key}={value:?}");
}

#[test]
fn defaults_plus_required_fields_validate() {
    let c = base();
    c.validate(true).unwrap();
    assert_eq!(c.prefix.as_str(), "p1");
    assert_eq!(c.policy, PolicyKind::Every);
    // The virtual device needs no WiFi credentials.
    let mut v = Config::default();
    v.set("broker", "mqtt://127.0.0.1:1883").unwrap();
    v.set("device_id", "x").unwrap();
    v.validate(false).unwrap();
    assert_eq!(v.validate(true), Err(ConfigError { field: Field::WifiSsid, problem: Problem::Empty }));
}

#[test]
fn each_bad_field_is_named() {
    let tried = std::cell::Cell::new(0);
    let bad = |key: &str, value: &str, field: Field, problem: Problem| {
        tried.set(tried.get() + 1);
        bad(key, value, field, problem)
    };
    bad("wifi_password", "short", Field::WifiPassword, Problem::TooShort(8));
    bad("wifi_ssid", &"s".repeat(33), Field::WifiSsid, Problem::TooLong(32));
    bad("broker", "http://x", Field::Broker, Problem::BadScheme);
    bad("broker", "mqtt://host:0", Field::Broker, Problem::BadPort);
    bad("broker", "mqtt://host:99999", Field::Broker, Problem::BadPort);
    bad("broker", "mqtt://:1883", Field::Broker, Problem::Empty);
    bad("broker", "mqtt://ho st:1", Field::Broker, Problem::BadCharacter);
    bad("password", "secret", Field::Username, Problem::Empty);
    bad("prefix", "a/#", Field::Prefix, Problem::BadCharacter);
    bad("prefix", "/p1", Field::Prefix, Problem::BadCharacter);
    bad("prefix", "", Field::Prefix, Problem::Empty);
    bad("device_id", "Meter 1", Field::DeviceId, Problem::BadCharacter);
    bad("device_id", "", Field::DeviceId, Problem::Empty);
    bad("qos", "2", Field::Qos, Problem::OutOfRange(0, 1));
    bad("qos", "one", Field::Qos, Problem::NotANumber);
    bad("keepalive_s", "1", Field::KeepaliveS, Problem::OutOfRange(5, 3600));
    bad("policy", "sometimes", Field::Policy, Problem::NotOneOf("every, interval, deadband"));
    bad("ring_capacity", "0", Field::RingCapacity, Problem::OutOfRange(1, 1_000_000));
    bad("reconnect_max_ms", "200", Field::ReconnectMaxMs, Problem::LessThan(Field::ReconnectMinMs));
    bad("data_request", "maybe", Field::DataRequest, Problem::NotABool);
    bad("rx_inverted", "2", Field::RxInverted, Problem::NotABool);
    bad("transport", "lora", Field::Transport, Problem::NotOneOf("wifi, ble, both"));
    bad("bind_key", "00112233", Field::BindKey, Problem::NotHex(16));
    let mut c = base();
    c.set("policy", "deadband").unwrap();
    c.set("min_interval_ms", "70000").unwrap();
    tried.set(tried.get() + 1);
    assert_eq!(c.validate(true), Err(ConfigError { field: Field::MaxIntervalMs, problem: Problem::LessThan(Field::MinIntervalMs) }));
    tried.set(tried.get() + 1);
    assert_eq!(base().set("no_such_key", "1"), Err(SetError::UnknownKey));
    crate::hostile_inputs("device config file", tried.get(), "firmware-app it::config::each_bad_field_is_named");
}

#[test]
fn broker_urls() {
    let b = parse_broker("mqtt://127.0.0.1:18830").unwrap();
    assert_eq!((b.host.as_str(), b.port, b.tls), ("127.0.0.1", 18830, false));
    let b = parse_broker("mqtts://broker.example.org").unwrap();
    assert_eq!((b.host.as_str(), b.port, b.tls), ("broker.example.org", 8883, true));
    assert_eq!(parse_broker("mqtt://h/").unwrap().port, 1883);
}

#[test]
fn secrets_are_not_in_debug_output() {
    let mut c = base();
    c.set("username", "user").unwrap();
    c.set("password", "hunter2hunter2").unwrap();
    let s = format!("{c:?}");
    assert!(!s.contains("hunter2") && !s.contains("correct horse"), "{s}");
    // Error messages never carry the value either.
    let mut c = base();
    let e = c.set("wifi_password", "hunter2").err();
    assert!(e.is_none());
    let e = c.validate(true).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    for f in firmware_app::config::FIELDS {
        assert_eq!(Field::from_key(f.key()), Some(*f));
    }
}
