//! Results of a run: the summary table on stdout, JUnit XML (quick-junit) and an HTML report with
//! inline SVG plots of power and latency per scenario.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

use crate::expect::Figures;

/// One attempt of one scenario.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub passed: bool,
    pub failures: Vec<String>,
    /// Last console lines and MQTT messages (filled on failure).
    pub tail: String,
    pub figures: Figures,
    pub wall: Duration,
    /// (meter time s, ACIN mA, battery %) per power sample.
    pub power: Vec<(f64, f64, Option<f64>)>,
    /// (meter time s, latency ms) per delivered reading.
    pub latency: Vec<(f64, f64)>,
}

/// All attempts of one scenario.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub description: String,
    pub attempts: Vec<Attempt>,
    pub quarantined: Option<String>,
}

impl Record {
    pub fn passed(&self) -> bool {
        self.attempts.last().is_some_and(|a| a.passed)
    }
    /// Passed, but only after a failed attempt.
    pub fn flaky(&self) -> bool {
        self.passed() && self.attempts.len() > 1
    }
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// One line per scenario: readings, latency, speed, memory.
pub fn report_line(r: &Record) -> String {
    let Some(a) = r.last() else { return format!("{}: not run", r.name) };
    let f = &a.figures;
    let status = if r.flaky() {
        format!("FLAKY (passed on attempt {})", r.attempts.len())
    } else if a.passed {
        "ok".into()
    } else {
        "FAILED".into()
    };
    let faults: u64 = f.injected.values().sum();
    format!(
        "{:<22} {:<8} sent {} delivered {} dropped {} dup {} (QoS 1 redelivered {}) | faults {} | latency p50 {} ms p99 {} ms | meter/wall {:.0}x ({} meter in {:.1} s, meter waited {:.1} s in {} stalls) | peak RSS {} KiB, ring high-water {}",
        r.name,
        status,
        f.sent,
        f.delivered,
        f.dropped.map_or("-".into(), |d| d.to_string()),
        f.duplicates,
        f.redeliveries,
        faults,
        opt(f.latency_p50_ms, 2),
        opt(f.latency_p99_ms, 2),
        f.speedup,
        crate::duration::format(Duration::from_secs_f64(f.meter_s.max(0.0))),
        f.wall_s,
        f.throttle_s,
        f.throttle_stalls,
        f.peak_rss_kib,
        f.ring_high_water.map_or("-".into(), |d| d.to_string()),
    )
}

pub fn summary(records: &[Record], wall: Duration) -> String {
    let mut s = String::from("\ncargo hil summary\n");
    for r in records {
        if let Some(q) = &r.quarantined {
            let _ = writeln!(s, "{:<22} QUARANTINED: {q}", r.name);
        } else {
            let _ = writeln!(s, "{}", report_line(r));
            if let Some(a) = r.last()
                && !a.figures.injected.is_empty()
            {
                let kinds: Vec<String> = a.figures.injected.iter().map(|(k, n)| format!("{k}={n}")).collect();
                let _ = writeln!(s, "{:<22}   injected: {}", "", kinds.join(" "));
            }
        }
    }
    let flaky: Vec<&str> = records.iter().filter(|r| r.flaky()).map(|r| r.name.as_str()).collect();
    if !flaky.is_empty() {
        let _ = writeln!(s, "flaky (passed on retry): {}", flaky.join(", "));
    }
    let meter: f64 = records.iter().filter_map(|r| r.last()).map(|a| a.figures.meter_s).sum();
    let _ = writeln!(
        s,
        "suite wall time {:.1} s for {} of meter time ({:.0}x)",
        wall.as_secs_f64(),
        crate::duration::format(Duration::from_secs_f64(meter)),
        if wall.as_secs_f64() > 0.0 { meter / wall.as_secs_f64() } else { 0.0 }
    );
    s
}

pub fn write_junit(path: &Path, suite: &str, records: &[Record], wall: Duration) -> anyhow::Result<()> {
    let mut ts = TestSuite::new(suite);
    for r in records {
        let mut status = if let Some(q) = &r.quarantined {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("quarantined: {q}"));
            s
        } else if r.passed() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            if let Some(a) = r.last() {
                s.set_message(a.failures.first().cloned().unwrap_or_default());
                s.set_description(format!("{}\n{}", a.failures.join("\n"), a.tail));
            }
            s
        };
        let reruns = if r.passed() { &r.attempts[..r.attempts.len().saturating_sub(1)] } else { &r.attempts[1.min(r.attempts.len())..] };
        for a in reruns.iter().filter(|a| !a.passed) {
            let mut rr = TestRerun::new(NonSuccessKind::Failure);
            rr.set_message(a.failures.first().cloned().unwrap_or_default());
            rr.set_time(a.wall);
            rr.set_system_err(a.tail.clone());
            status.add_rerun(rr);
        }
        let mut tc = TestCase::new(r.name.clone(), status);
        tc.set_classname(format!("hil.{suite}"));
        if let Some(a) = r.last() {
            tc.set_time(a.wall);
            tc.set_system_out(report_line(r));
            if !a.passed {
                tc.set_system_err(a.tail.clone());
            }
        }
        ts.add_test_case(tc);
    }
    let mut report = Report::new("cargo-hil");
    report.set_time(wall);
    report.add_test_suite(ts);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let xml = report.to_string().context("serialising JUnit")?;
    std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An SVG line plot; at most `max_points` points per series (evenly thinned).
pub fn svg_plot(title: &str, x_label: &str, series: &[(&str, &str, Vec<(f64, f64)>)], y_label: &str) -> String {
    const W: f64 = 640.0;
    const H: f64 = 220.0;
    const L: f64 = 56.0;
    const B: f64 = 30.0;
    const T: f64 = 24.0;
    let pts: Vec<&(f64, f64)> = series.iter().flat_map(|s| s.2.iter()).collect();
    let mut out = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\">");
    let _ = write!(out, "<text x=\"{L}\" y=\"14\" font-weight=\"bold\">{}</text>", esc(title));
    if pts.is_empty() {
        let _ = write!(out, "<text x=\"{L}\" y=\"{}\">no data</text></svg>", H / 2.0);
        return out;
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for (x, y) in pts.iter().map(|p| **p) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let sx = |x: f64| L + (x - x0) / (x1 - x0) * (W - L - 10.0);
    let sy = |y: f64| H - B - (y - y0) / (y1 - y0) * (H - B - T);
    let _ = write!(out, "<rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>", W - L - 10.0, H - B - T);
    for (v, y) in [(y0, sy(y0)), (y1, sy(y1)), ((y0 + y1) / 2.0, sy((y0 + y1) / 2.0))] {
        let _ = write!(out, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", L - 4.0, y + 4.0, fmt_num(v));
    }
    let _ = write!(out, "<text x=\"{L}\" y=\"{}\">{}</text>", H - 8.0, fmt_num(x0));
    let _ = write!(out, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} {}</text>", W - 10.0, H - 8.0, fmt_num(x1), esc(x_label));
    let _ = write!(out, "<text x=\"4\" y=\"{}\" transform=\"rotate(-90 10,{})\">{}</text>", H / 2.0, H / 2.0, esc(y_label));
    for (i, (name, colour, data)) in series.iter().enumerate() {
        let step = (data.len() / 1500).max(1);
        let mut d = String::new();
        for (k, (x, y)) in data.iter().step_by(step).enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if k == 0 { "M" } else { " L" }, sx(*x), sy(*y));
        }
        let _ = write!(out, "<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1\"/>");
        let _ = write!(out, "<text x=\"{}\" y=\"14\" fill=\"{colour}\">{}</text>", W - 200.0 + i as f64 * 90.0, esc(name));
    }
    out.push_str("</svg>");
    out
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

pub fn write_html(path: &Path, title: &str, records: &[Record], summary_text: &str) -> anyhow::Result<()> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}\
         .ok{{color:#070}}.fail{{color:#b00}}.flaky{{color:#b60}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}\
         pre{{background:#f6f6f6;padding:6px;overflow-x:auto;font-size:12px}}</style></head><body><h1>{t}</h1><pre>{s}</pre>",
        t = esc(title),
        s = esc(summary_text)
    );
    for r in records {
        let (class, status) = if r.quarantined.is_some() {
            ("flaky", "quarantined")
        } else if r.flaky() {
            ("flaky", "flaky")
        } else if r.passed() {
            ("ok", "passed")
        } else {
            ("fail", "FAILED")
        };
        let _ = write!(h, "<h2 id=\"{n}\">{n} <span class=\"{class}\">{status}</span></h2><p>{d}</p>", n = esc(&r.name), d = esc(&r.description));
        if let Some(q) = &r.quarantined {
            let _ = write!(h, "<p>Quarantined: {}</p>", esc(q));
            continue;
        }
        let Some(a) = r.last() else { continue };
        let f = &a.figures;
        let _ = write!(
            h,
            "<table><tr><th>sent</th><th>delivered</th><th>dropped</th><th>duplicates</th><th>latency p50 ms</th><th>latency p99 ms</th><th>meter time</th><th>wall s</th><th>meter/wall</th><th>peak RSS KiB</th><th>ring high-water</th><th>attempts</th></tr>\
             <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
            f.sent,
            f.delivered,
            f.dropped.map_or("-".into(), |d| d.to_string()),
            f.duplicates,
            opt(f.latency_p50_ms, 2),
            opt(f.latency_p99_ms, 2),
            crate::duration::format(Duration::from_secs_f64(f.meter_s.max(0.0))),
            f.wall_s,
            f.speedup,
            f.peak_rss_kib,
            f.ring_high_water.map_or("-".into(), |d| d.to_string()),
            r.attempts.len()
        );
        if !f.injected.is_empty() {
            let kinds: Vec<String> = f.injected.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let _ = write!(h, "<p>Faults injected: {}</p>", esc(&kinds.join(", ")));
        }
        let acin: Vec<(f64, f64)> = a.power.iter().map(|p| (p.0 / 3600.0, p.1)).collect();
        let soc: Vec<(f64, f64)> = a.power.iter().filter_map(|p| p.2.map(|s| (p.0 / 3600.0, s))).collect();
        h.push_str(&svg_plot("Power", "h (device time)", &[("ACIN mA", "#c33", acin), ("battery %", "#36c", soc)], "mA / %"));
        let lat: Vec<(f64, f64)> = a.latency.iter().map(|p| (p.0 / 3600.0, p.1)).collect();
        h.push_str(&svg_plot("Latency, line to subscriber", "h (meter time)", &[("ms", "#393", lat)], "ms"));
        if !a.passed {
            let _ = write!(h, "<pre class=\"fail\">{}</pre><pre>{}</pre>", esc(&a.failures.join("\n")), esc(&a.tail));
        }
    }
    h.push_str("</body></html>\n");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, h).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, results: &[bool]) -> Record {
        Record {
            name: name.into(),
            description: "d".into(),
            attempts: results
                .iter()
                .map(|&p| Attempt { passed: p, failures: if p { vec![] } else { vec!["boom".into()] }, tail: "last lines".into(), ..Default::default() })
                .collect(),
            quarantined: None,
        }
    }

    #[test]
    fn flakes_are_reported_as_such_in_junit() {
        let dir = std::env::temp_dir().join(format!("hil-junit-{}", std::process::id()));
        let p = dir.join("j.xml");
        let records = vec![rec("steady", &[true]), rec("wobbly", &[false, true]), rec("broken", &[false, false])];
        write_junit(&p, "sim", &records, Duration::from_secs(1)).unwrap();
        let xml = std::fs::read_to_string(&p).unwrap();
        assert!(xml.contains("tests=\"3\"") && xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("flakyFailure"), "{xml}");
        assert!(xml.contains("rerunFailure"), "{xml}");
        assert!(summary(&records, Duration::from_secs(1)).contains("flaky (passed on retry): wobbly"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plots_are_svg_with_a_path_per_series() {
        let svg = svg_plot("P", "h", &[("a", "#000", vec![(0.0, 1.0), (1.0, 2.0)]), ("b", "#111", vec![(0.5, 3.0)])], "mA");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg_plot("P", "h", &[], "mA").contains("no data"));
    }
}
