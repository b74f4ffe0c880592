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
}
