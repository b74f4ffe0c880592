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

    // The CA the broker's certificate must chain to, for `mqtts://` brokers:
    // `P1GW_CA=path/to/ca.crt` (PEM or DER). PEM is decoded here, so the image carries DER and the
    // device needs no decode buffer; the device checks the certificate itself at boot. Without
    // it the image carries none, and a configuration with an `mqtts://` broker stops at boot.
    println!("cargo:rerun-if-env-changed=P1GW_CA");
    let ca_out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ca.der");
    let ca = match env::var_os("P1GW_CA") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            let bytes = fs::read(&path)
                .unwrap_or_else(|e| panic!("P1GW_CA={}: cannot read the CA certificate: {e}", path.display()));
            ca_der(&bytes).unwrap_or_else(|e| panic!("P1GW_CA={}: {e}", path.display()))
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

/// The DER certificate in `input`: DER as it is (a SEQUENCE, 0x30), or the first
/// `CERTIFICATE` block of a PEM file, base64-decoded.
fn ca_der(input: &[u8]) -> Result<Vec<u8>, String> {
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(input).map_err(|_| "neither DER nor PEM text (not UTF-8)".to_string())?;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = text.find(BEGIN).ok_or("no DER and no PEM `-----BEGIN CERTIFICATE-----` line")? + BEGIN.len();
    let len = text[start..].find(END).ok_or("PEM certificate without its `-----END CERTIFICATE-----` line")?;
    let mut der = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for (line_index, line) in text[start..start + len].lines().enumerate() {
        for c in line.trim().bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => continue,
                _ => {
                    let line = text[..start].matches('\n').count() + 1 + line_index;
                    return Err(format!("line {line}: {:?} in the PEM certificate is not base64", char::from(c)));
                }
            };
            acc = ((acc & 0xff) << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                der.push((acc >> bits) as u8);
            }
        }
    }
    if der.first() != Some(&0x30) {
        return Err("the PEM CERTIFICATE block does not decode to a DER certificate".to_string());
    }
    Ok(der)
}
