//! The device configuration, baked in at build time (see build.rs) and checked at boot.
//!
//! Format: one `key = value` per line; `#` starts a comment line; a value may be written in
//! double quotes (so a flat TOML file with the same keys works). Keys and rules are
//! `firmware_app::config`'s.

use firmware_app::config::{ConfigError, SetError};
use firmware_app::Config;

/// The configuration text baked into this image.
pub const TEXT: &str = include_str!(concat!(env!("OUT_DIR"), "/config.txt"));

/// The broker CA certificate baked into this image (`P1GW_CA`), DER; empty without one.
pub const CA: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ca.der"));

/// When this image was built, seconds since the Unix epoch: the device's lower bound for the
/// wall clock when it checks certificate dates.
pub const BUILD_UNIX_S: u64 = include!(concat!(env!("OUT_DIR"), "/build_unix_s.rs"));

/// What is wrong with the baked-in configuration: the line (1-based; 0 for a rule between
/// fields) and the reason.
#[derive(Debug, Clone, Copy)]
pub enum LoadError {
    /// A line that is not `key = value`.
    Syntax { line: usize },
    /// A key the firmware does not know.
    UnknownKey { line: usize },
    /// A bad value, or a rule between fields that does not hold (`line` 0).
    Invalid { line: usize, error: ConfigError },
}

/// Parses and validates `text`.
pub fn load(text: &str) -> Result<Config, LoadError> {
    let mut config = Config::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('[') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(LoadError::Syntax { line });
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match config.set(key.trim(), value) {
            Ok(()) => {}
            Err(SetError::UnknownKey) => return Err(LoadError::UnknownKey { line }),
            Err(SetError::Invalid(error)) => return Err(LoadError::Invalid { line, error }),
        }
    }
    config.validate(true).map_err(|error| LoadError::Invalid { line: 0, error })?;
    Ok(config)
}
