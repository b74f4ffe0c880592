//! Loads a TOML file into a typed struct with errors that name the file, line, column and field.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A problem in an input file, pointing at the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `expect.power.trips` or `events[2].at`; empty for the document.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "field `{}`: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for FileError {}

/// Line and column (1-based) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = offset - before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}

/// Finds where a dotted field path is written, for errors found after parsing (semantic checks).
/// Falls back to line 1 when the key is absent (a missing field).
pub fn locate(text: &str, field: &str) -> (usize, usize) {
    let span = locate_span(text, field);
    line_col(text, span.map_or(0, |s| s.start))
}

fn locate_span(text: &str, field: &str) -> Option<Range<usize>> {
    let doc: toml::de::DeTable<'_> = toml::de::DeTable::parse(text).ok()?.into_inner();
    let mut table = &doc;
    let mut span = None;
    let parts: Vec<&str> = field.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*part, None),
        };
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == key)?;
        span = Some(k.span());
        let mut value = v;
        if let Some(i) = index {
            if let toml::de::DeValue::Array(items) = value.get_ref() {
                value = items.get(i)?;
                span = Some(value.span());
            } else {
                return span;
            }
        }
        if i + 1 < parts.len() {
            match value.get_ref() {
                toml::de::DeValue::Table(t) => table = t,
                _ => return span,
            }
        }
    }
    span
}

/// Parses `text` (read from `file`) into `T`; `deny_unknown_fields` on `T` turns typos into errors.
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, FileError> {
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(file, text, "", &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        toml_error(file, text, &field, e.inner())
    })
}

fn toml_error(file: &Path, text: &str, field: &str, e: &toml::de::Error) -> FileError {
    let (line, column) = match e.span() {
        Some(span) => line_col(text, span.start),
        None if !field.is_empty() => locate(text, field),
        None => (1, 1),
    };
    FileError {
        file: file.to_path_buf(),
        line,
        column,
        field: field.to_string(),
        message: e.message().trim().to_string(),
    }
}

/// An error for a value that parsed but is not acceptable.
pub fn invalid(file: &Path, text: &str, field: &str, message: impl Into<String>) -> FileError {
    let (line, column) = locate(text, field);
    FileError { file: file.to_path_buf(), line, column, field: field.to_string(), message: message.into() }
}

/// Reads and parses a file.
pub fn load<T: DeserializeOwned>(file: &Path) -> anyhow::Result<(T, String)> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let value = parse(file, &text)?;
    Ok((value, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        inner: Inner,
        #[serde(default)]
        list: Vec<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn wrong_type_names_file_line_and_field() {
        let text = "name = \"x\"\n[inner]\nn = \"seven\"\n";
        let e = parse::<Doc>(Path::new("a.toml"), text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "inner.n"), "{e}");
        assert!(e.to_string().starts_with("a.toml:3:5: field `inner.n`: invalid type"), "{e}");
    }

    #[test]
    fn unknown_field_in_array_of_tables_is_located() {
        let text = "name = \"x\"\n[inner]\nn = 1\n[[list]]\nn = 1\n[[list]]\nm = 2\n";
        let e = parse::<Doc>(Path::new("b.toml"), text).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.field.starts_with("list[1]"), "{e}");
        assert!(e.message.contains("unknown field `m`"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = parse::<Doc>(Path::new("c.toml"), "name = \"x\"\n[inner\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn semantic_errors_find_the_key() {
        let text = "name = \"x\"\n[inner]\nn = 1\n[[list]]\nn = 1\n[[list]]\nn = 2\n";
        let e = invalid(Path::new("d.toml"), text, "list[1].n", "too big");
        assert_eq!(e.line, 7, "{e}");
        let e = invalid(Path::new("d.toml"), text, "inner.n", "too big");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
    }
}
