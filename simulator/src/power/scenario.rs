//! Scripted supply events, from a TOML file:
//!
//! ```toml
//! # Optional: the port at the start (overrides --supply).
//! supply = "dsmr5"
//!
//! [[event]]
//! at = "2h"            # virtual time since the start (humantime: 90s, 1h30m, 250ms)
//! action = "unplug"    # unplug | plug | brownout | trip | supply | usb-plug | usb-unplug
//!
//! [[event]]
//! at = "2h30m"
//! action = "plug"
//!
//! [[event]]
//! at = "5h"
//! action = "brownout"
//! duration = "300ms"   # brownout only
//!
//! [[event]]
//! at = "6h"
//! action = "supply"
//! supply = "dsmr4"     # supply only: dsmr5 | dsmr4 | none | omnia
//! ```

use std::path::{Path, PathBuf};

use super::engine::SupplyAction;
use super::supply::SupplyKind;

/// A parsed scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Port at the start, if the file sets one.
    pub supply: Option<SupplyKind>,
    /// Events, in file order (time s, action).
    pub events: Vec<(f64, SupplyAction)>,
}

/// A scenario file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields (the message names line and column).
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An event is inconsistent.
    #[error("{path}: event {index} (at = {at:?}), field `{field}`: {message}")]
    Event {
        /// The file.
        path: PathBuf,
        /// 1-based event number.
        index: usize,
        /// The event's `at`.
        at: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    supply: Option<SupplyKind>,
    #[serde(default, rename = "event")]
    events: Vec<RawEvent>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum ActionName {
    Unplug,
    Plug,
    Brownout,
    Trip,
    Supply,
    #[serde(rename = "usb-plug")]
    UsbPlug,
    #[serde(rename = "usb-unplug")]
    UsbUnplug,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: String,
    action: ActionName,
    duration: Option<String>,
    supply: Option<SupplyKind>,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Io { path: path.to_owned(), source })?;
        Self::parse(path, &text)
    }

    /// Parses scenario text; `path` only names the source in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let file: File = toml::from_str(text)
            .map_err(|e| ScenarioError::Toml { path: path.to_owned(), message: e.to_string() })?;
        let mut events = Vec::with_capacity(file.events.len());
        for (i, e) in file.events.into_iter().enumerate() {
            let err = |field: &'static str, message: String| ScenarioError::Event {
                path: path.to_owned(),
                index: i + 1,
                at: e.at.clone(),
                field,
                message,
            };
            let at = humantime::parse_duration(e.at.trim())
                .map_err(|x| err("at", format!("not a duration ({x}); write e.g. 90s, 2h30m")))?
                .as_secs_f64();
            let action = match e.action {
                ActionName::Unplug => SupplyAction::Unplug,
                ActionName::Plug => SupplyAction::Plug,
                ActionName::Trip => SupplyAction::Trip,
                ActionName::UsbPlug => SupplyAction::Usb(true),
                ActionName::UsbUnplug => SupplyAction::Usb(false),
                ActionName::Brownout => {
                    let d = e.duration.as_deref().ok_or_else(|| {
                        err("duration", "a brownout needs `duration`, e.g. \"300ms\"".into())
                    })?;
                    let d = humantime::parse_duration(d.trim())
                        .map_err(|x| err("duration", format!("not a duration ({x})")))?;
                    SupplyAction::Brownout(d.as_secs_f64())
                }
                ActionName::Supply => SupplyAction::Supply(e.supply.ok_or_else(|| {
                    err("supply", "action \"supply\" needs `supply` (dsmr5|dsmr4|none|omnia)".into())
                })?),
            };
            if e.duration.is_some() && !matches!(action, SupplyAction::Brownout(_)) {
                return Err(err("duration", "only a brownout takes a duration".into()));
            }
            if e.supply.is_some() && !matches!(action, SupplyAction::Supply(_)) {
                return Err(err("supply", "only action \"supply\" takes a supply".into()));
            }
            events.push((at, action));
        }
        Ok(Scenario { supply: file.supply, events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_action() {
        let s = Scenario::parse(
            Path::new("t.toml"),
            "supply = \"dsmr4\"\n[[event]]\nat = \"1h\"\naction = \"unplug\"\n[[event]]\nat = \"90m\"\naction = \"plug\"\n\
             [[event]]\nat = \"2h\"\naction = \"brownout\"\nduration = \"300ms\"\n[[event]]\nat = \"3h\"\naction = \"trip\"\n\
             [[event]]\nat = \"4h\"\naction = \"supply\"\nsupply = \"omnia\"\n",
        );
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.supply, Some(SupplyKind::Dsmr4));
        assert_eq!(
            s.events,
            vec![
                (3600.0, SupplyAction::Unplug),
                (5400.0, SupplyAction::Plug),
                (7200.0, SupplyAction::Brownout(0.3)),
                (10800.0, SupplyAction::Trip),
                (14400.0, SupplyAction::Supply(SupplyKind::Omnia)),
            ]
        );
    }

    #[test]
    fn errors_name_file_event_and_field() {
        let e = Scenario::parse(Path::new("s.toml"), "[[event]]\nat = \"1h\"\naction = \"brownout\"\n")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("s.toml: event 1 (at = \"1h\"), field `duration`: a brownout needs `duration`, e.g. \"300ms\"")
        );
        let e = Scenario::parse(Path::new("s.toml"), "[[event]]\nat = \"soon\"\naction = \"trip\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("s.toml: event 1 (at = \"soon\"), field `at`"), "{e}");
        let e = Scenario::parse(Path::new("s.toml"), "[[event]]\nat = \"1h\"\naction = \"explode\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("s.toml: ") && e.contains("line 3"), "{e}");
    }
}
