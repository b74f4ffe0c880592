//! Bakes the device configuration into the image: the file named by `P1GW_CONFIG` (a `key = value`
//! file, the same keys as `virtual-m5stickc`'s TOML) is copied to `$OUT_DIR/config.txt`, which
//! the firmware parses and validates at boot. Without `P1GW_CONFIG` the image carries an empty
//! configuration and reports the missing fields on its console.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=P1GW_CONFIG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("config.txt");
    let text = match env::var_os("P1GW_CONFIG") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => panic!("P1GW_CONFIG={}: cannot read the configuration file: {e}", path.display()),
            }
        }
        None => String::new(),
    };
    if let Err(e) = fs::write(&out, text) {
        panic!("cannot write {}: {e}", out.display());
    }

    // The CA the broker's certificate must chain to (PEM or DER), for `mqtts://` brokers:
    // `P1GW_CA=path/to/ca.crt`. Checked at boot; without it TLS connections are refused.
    println!("cargo:rerun-if-env-changed=P1GW_CA");
    let ca_out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ca.bin");
    let ca = match env::var_os("P1GW_CA") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            fs::read(&path).unwrap_or_else(|e| panic!("P1GW_CA={}: cannot read the CA certificate: {e}", path.display()))
        }
        None => Vec::new(),
    };
    if let Err(e) = fs::write(&ca_out, ca) {
        panic!("cannot write {}: {e}", ca_out.display());
    }
    // A lower bound for the wall clock, for certificate dates until the device has network time:
    // the build time (or SOURCE_DATE_EPOCH, for reproducible builds).
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let built = env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    });
    let time_out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("build_unix_s.rs");
    if let Err(e) = fs::write(&time_out, format!("{built}")) {
        panic!("cannot write {}: {e}", time_out.display());
    }
}
