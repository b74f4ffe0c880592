//! Broker credentials for a `cargo hil sim` run, and the check that they never leak.
//!
//! Every run makes fresh random credentials: the broker requires them, the device gets its
//! password through a file (never the command line), and the capture client logs in with its own.
//! Console lines, MQTT messages, snapshots and the JUnit and HTML reports are searched for them;
//! a hit fails the run and names where, never what.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// One secret: what it is, and its value.
#[derive(Clone)]
pub struct Secret {
    pub label: &'static str,
    value: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, ..)", self.label)
    }
}

/// The run's credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub device_user: String,
    device_password: String,
    pub capture_user: String,
    capture_password: String,
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).context("reading /dev/urandom for broker credentials")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Credentials {
    /// Fresh random user names and passwords.
    pub fn generate() -> anyhow::Result<Self> {
        Ok(Credentials {
            device_user: format!("hil-device-{}", random_hex(4)?),
            device_password: random_hex(16)?,
            capture_user: format!("hil-capture-{}", random_hex(4)?),
            capture_password: random_hex(16)?,
        })
    }

    pub fn capture_password(&self) -> &str {
        &self.capture_password
    }

    /// What must never appear in the output.
    pub fn secrets(&self) -> Vec<Secret> {
        vec![
            Secret { label: "the device's MQTT user name", value: self.device_user.clone() },
            Secret { label: "the device's MQTT password", value: self.device_password.clone() },
            Secret { label: "the capture client's MQTT user name", value: self.capture_user.clone() },
            Secret { label: "the capture client's MQTT password", value: self.capture_password.clone() },
        ]
    }

    /// Writes the broker's `user password` file and the device's password file (both 0600) into
    /// `dir`; returns (broker auth file, device password file).
    pub fn write_files(&self, dir: &Path, tag: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let auth = dir.join(format!("{tag}.broker-auth"));
        let pw = dir.join(format!("{tag}.device-password"));
        write_private(&auth, &format!("{} {}\n{} {}\n", self.device_user, self.device_password, self.capture_user, self.capture_password))?;
        write_private(&pw, &format!("{}\n", self.device_password))?;
        Ok((auth, pw))
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Reads a broker auth file: one `user password` pair per line.
pub fn read_auth_file(path: &Path) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading broker auth file {}", path.display()))?;
    let mut users = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(u), Some(p), None) => {
                users.insert(u.to_string(), p.to_string());
            }
            _ => anyhow::bail!("{}:{}: expected `user password`", path.display(), i + 1),
        }
    }
    Ok(users)
}

/// The labels of the secrets that occur in `text`.
pub fn leaked<'a>(secrets: &'a [Secret], text: &'a str) -> impl Iterator<Item = &'static str> + 'a {
    secrets.iter().filter(move |s| !s.value.is_empty() && text.contains(&s.value)).map(|s| s.label)
}

/// `text` with every secret replaced by its label, for failure printouts.
pub fn redact(secrets: &[Secret], mut text: String) -> String {
    for s in secrets.iter().filter(|s| !s.value.is_empty()) {
        if text.contains(&s.value) {
            text = text.replace(&s.value, &format!("[{} redacted]", s.label));
        }
    }
    text
}

/// Fails if any secret occurs in one of `files` (reports written after the run).
pub fn check_files(secrets: &[Secret], files: &[&Path]) -> anyhow::Result<()> {
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        if let Some(label) = leaked(secrets, &text).next() {
            anyhow::bail!("{label} appears in {}", f.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaks_are_found_and_named_without_the_value() {
        let c = Credentials::generate().unwrap();
        let secrets = c.secrets();
        assert_eq!(leaked(&secrets, "ev=boot id=x").count(), 0);
        let line = format!("ev=mqtt user={} state=connected", c.device_user);
        assert_eq!(leaked(&secrets, &line).collect::<Vec<_>>(), ["the device's MQTT user name"]);
        assert!(!format!("{:?}", secrets).contains(&c.device_password));
        let shown = redact(&secrets, format!("password={}", c.device_password));
        assert_eq!(shown, "password=[the device's MQTT password redacted]");
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.html");
        std::fs::write(&report, format!("<pre>{}</pre>", c.capture_password())).unwrap();
        let err = check_files(&secrets, &[&report]).unwrap_err().to_string();
        assert!(err.contains("capture client's MQTT password") && !err.contains(c.capture_password()), "{err}");
    }

    #[test]
    fn credential_files_are_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let c = Credentials::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (auth, pw) = c.write_files(dir.path(), "t").unwrap();
        for f in [&auth, &pw] {
            assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let users = read_auth_file(&auth).unwrap();
        assert_eq!(users.get(&c.device_user).map(String::as_str), Some(std::fs::read_to_string(&pw).unwrap().trim()));
        std::fs::write(&auth, "only-a-user\n").unwrap();
        let e = read_auth_file(&auth).unwrap_err().to_string();
        assert!(e.contains(":1: expected `user password`"), "{e}");
    }
}
