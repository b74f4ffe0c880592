use std::path::Path;

use firmware_app::Config;
use firmware_host::config_file::{apply_toml, ConfigFileError};

fn apply(text: &str) -> Result<Config, ConfigFileError> {
    let mut c = Config::default();
    apply_toml(&mut c, Path::new("gw.toml"), text)?;
    Ok(c)
}

#[test]
fn a_good_file_sets_every_kind_of_value() {
    let c = apply("broker = \"mqtt://10.0.0.2:1883\"\ndevice_id = \"meter1\"\nring_capacity = 1_200\nraw_telegrams = true\npolicy = \"deadband\"\n").unwrap();
    assert_eq!(c.broker.unwrap().port, 1883);
    assert_eq!(c.ring_capacity, 1200);
    assert!(c.raw_telegrams);
}

#[test]
fn errors_name_file_line_and_field() {
    let tried = std::cell::Cell::new(0);
    let apply = |text: &str| {
        tried.set(tried.get() + 1);
        apply(text)
    };
    let e = apply("device_id = \"meter1\"\n\nqos = 2\n").unwrap_err();
    assert_eq!(e.to_string(), "gw.toml:3: field `qos`: out of range 0..=1");
    let e = apply("device_id = \"m\"\nbrokr = \"mqtt://x\"\n").unwrap_err();
    assert_eq!(e.to_string(), "gw.toml:2: field `brokr`: unknown setting");
    let e = apply("keepalive_s = 1.5\n").unwrap_err();
    assert_eq!(e.to_string(), "gw.toml:1: field `keepalive_s`: expected a string, a whole number or a boolean");
    let e = apply("x = = 1\n").unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (Some(1), None));
    assert!(e.to_string().starts_with("gw.toml:1: not valid TOML"), "{e}");
    let e = apply("password = \"hunter2hunter2\"\nwifi_password = \"abc\"\nbroker = \"ftp://x\"\n").unwrap_err();
    assert_eq!(e.to_string(), "gw.toml:3: field `broker`: expected mqtt://HOST:PORT or mqtts://HOST:PORT");
    assert!(!e.to_string().contains("hunter2"));
    crate::hostile_inputs("device config file", tried.get(), "firmware-host it::config_file::errors_name_file_line_and_field");
}

/// The binary reports a bad file with its name, line and field, and exits non-zero.
#[test]
fn binary_rejects_a_bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gw.toml");
    let mut tried = 0;
    for (text, want) in [
        ("broker = \"mqtt://127.0.0.1:1883\"\ndevice_id = \"Bad Id\"\n", "gw.toml:2: field `device_id`"),
        ("broker = \"mqtt://127.0.0.1:1883\"\ndevice_id = \"m1\"\nring_capacity = \"many\"\n", "gw.toml:3: field `ring_capacity`"),
    ] {
        std::fs::write(&f, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtual-m5stickc"))
            .args(["--p1", "/dev/null", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
        tried += 1;
    }
    crate::hostile_inputs("device config file", tried, "firmware-host it::config_file::binary_rejects_a_bad_config_file");
}
