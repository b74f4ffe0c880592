//! The quarantine list (`fixtures/scenarios/quarantine.toml`): scenarios that are known to be
//! broken, each with the reason. They are listed as ignored with the reason, not silently dropped;
//! `--include-ignored` runs them anyway.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::toml_file;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    quarantine: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Scenario name.
    pub name: String,
    /// Why it is quarantined (an issue link, the symptom).
    pub reason: String,
}

/// Reads the list; a missing file is an empty list. Names must be scenarios that exist.
pub fn load(path: &Path, known: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let (f, text): (File, String) = toml_file::load(path)?;
    let mut out = BTreeMap::new();
    for (i, e) in f.quarantine.iter().enumerate() {
        if !known.contains(&e.name) {
            return Err(toml_file::invalid(path, &text, &format!("quarantine[{i}].name"), format!("no scenario named `{}`", e.name)).into());
        }
        if e.reason.trim().is_empty() {
            return Err(toml_file::invalid(path, &text, &format!("quarantine[{i}].reason"), "give the reason").into());
        }
        out.insert(e.name.clone(), e.reason.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_need_a_known_name_and_a_reason() {
        let dir = std::env::temp_dir().join(format!("hil-q-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("quarantine.toml");
        let known = vec!["soak".to_string()];
        std::fs::write(&p, "[[quarantine]]\nname = \"soak\"\nreason = \"issue 7: flaky\"\n").unwrap();
        assert_eq!(load(&p, &known).unwrap()["soak"], "issue 7: flaky");
        std::fs::write(&p, "[[quarantine]]\nname = \"soak\"\nreason = \"x\"\n[[quarantine]]\nname = \"nope\"\nreason = \"x\"\n").unwrap();
        let e = load(&p, &known).unwrap_err().to_string();
        assert!(e.contains(":5:") && e.contains("quarantine[1].name") && e.contains("`nope`"), "{e}");
        std::fs::write(&p, "[[quarantine]]\nname = \"soak\"\nreason = \" \"\n").unwrap();
        assert!(load(&p, &known).unwrap_err().to_string().contains("give the reason"));
        assert!(load(&dir.join("absent.toml"), &known).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
