//! Console lines from the device: `t=<uptime ms> ev=<event> key=value ...` (logfmt; values with
//! spaces are double-quoted). Lines that are not logfmt (a panic message, a bootloader banner)
//! are kept as text with no event.

use std::collections::BTreeMap;
use std::time::Instant;

/// One parsed console line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub at: Instant,
    pub text: String,
    pub t_ms: Option<u64>,
    pub ev: Option<String>,
    pub fields: BTreeMap<String, String>,
}

impl Line {
    pub fn parse(at: Instant, text: &str) -> Line {
        let text = text.trim_end_matches(['\r', '\n']).to_string();
        let fields = logfmt(&text).unwrap_or_default();
        let t_ms = fields.get("t").and_then(|v| v.parse().ok());
        let ev = fields.get("ev").cloned();
        Line { at, text, t_ms, ev, fields }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    pub fn num(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.parse().ok())
    }
}

/// Splits a logfmt line into key/value pairs; `None` when it is not logfmt.
pub fn logfmt(line: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' || i == ks {
            return None;
        }
        let key = &line[ks..i];
        i += 1;
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            loop {
                match b.get(i) {
                    None => return None,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        match b.get(i + 1) {
                            Some(b'n') => v.push('\n'),
                            Some(&c) => v.push(c as char),
                            None => return None,
                        }
                        i += 2;
                    }
                    Some(_) => {
                        let ch = line[i..].chars().next()?;
                        v.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            line[vs..i].to_string()
        };
        out.insert(key.to_string(), value);
    }
    if out.contains_key("ev") { Some(out) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_quoted_values() {
        let l = Line::parse(Instant::now(), "t=1200 ev=mqtt state=disconnected error=\"connection reset\" queue=3\n");
        assert_eq!(l.t_ms, Some(1200));
        assert_eq!(l.ev.as_deref(), Some("mqtt"));
        assert_eq!(l.get("error"), Some("connection reset"));
        assert_eq!(l.num("queue"), Some(3.0));
    }

    #[test]
    fn other_text_has_no_event() {
        let l = Line::parse(Instant::now(), "thread 'main' panicked at src/app.rs:12:5:");
        assert_eq!(l.ev, None);
        assert!(l.text.contains("panicked"));
        assert_eq!(logfmt("t=1 ev=x broken=\"no end"), None);
        assert_eq!(logfmt("t=1 =x ev=y"), None);
    }

    #[test]
    fn escaped_quotes_survive() {
        let f = logfmt(r#"t=5 ev=error detail="said \"hi\"""#).unwrap();
        assert_eq!(f["detail"], "said \"hi\"");
    }
}
