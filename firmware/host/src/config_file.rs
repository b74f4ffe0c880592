//! The configuration file: flat TOML, one key per [`Config`] field (`broker = "mqtt://..."`,
//! `ring_capacity = 600`, `raw_telegrams = true`). Every error names the file, the line and the
//! field. Values are never echoed, so secrets cannot leak into error messages.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use firmware_app::config::{ConfigError, SetError};
use firmware_app::Config;
use toml::de::{DeTable, DeValue};

/// A bad configuration file or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field (key), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.field {
            write!(f, ": field `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigFileError {}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|&&b| b == b'\n').count() + 1
}

/// Where each field was set, so that cross-field validation errors can name a line.
#[derive(Debug, Default, Clone)]
pub struct FieldLines(HashMap<String, usize>);

impl FieldLines {
    /// The line of `key`, if the file set it.
    pub fn line(&self, key: &str) -> Option<usize> {
        self.0.get(key).copied()
    }
}

/// Applies the TOML `text` (read from `file`) to `cfg`.
pub fn apply_toml(cfg: &mut Config, file: &Path, text: &str) -> Result<FieldLines, ConfigFileError> {
    let error = |line: Option<usize>, field: Option<&str>, message: String| ConfigFileError {
        file: file.to_owned(),
        line,
        field: field.map(str::to_owned),
        message,
    };
    let table = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        error(line, None, format!("not valid TOML: {}", e.message().trim()))
    })?;
    let mut lines = FieldLines::default();
    for (key, value) in table.get_ref().iter() {
        let k: &str = key.get_ref();
        let span = value.span();
        let line = line_of(text, key.span().start);
        let raw = text.get(span.clone()).unwrap_or("");
        let v: String = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(_) => raw.replace('_', ""),
            DeValue::Boolean(b) => b.to_string(),
            _ => return Err(error(Some(line), Some(k), "expected a string, a whole number or a boolean".into())),
        };
        match cfg.set(k, &v) {
            Ok(()) => {}
            Err(SetError::UnknownKey) => return Err(error(Some(line), Some(k), "unknown setting".into())),
            Err(SetError::Invalid(e)) => return Err(error(Some(line), Some(k), e.problem.to_string())),
        }
        lines.0.insert(k.to_owned(), line);
    }
    Ok(lines)
}

/// Reads and applies a configuration file.
pub fn load(cfg: &mut Config, file: &Path) -> Result<FieldLines, ConfigFileError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigFileError {
        file: file.to_owned(),
        line: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    apply_toml(cfg, file, &text)
}

/// Turns a validation error into one naming the file and line where the field was set (if it
/// was set in the file).
pub fn locate(err: ConfigError, file: Option<&Path>, lines: &FieldLines) -> ConfigFileError {
    let key = err.field.key();
    ConfigFileError {
        file: file.map_or_else(|| PathBuf::from("<command line>"), Path::to_owned),
        line: lines.line(key),
        field: Some(key.to_owned()),
        message: err.problem.to_string(),
    }
}
