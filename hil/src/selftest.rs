//! `cargo hil selftest`: the harness's own robustness. Each case sabotages a run in one way (the
//! device dies, the pty closes, the broker port is taken, the console port vanishes) and passes
//! only if the harness reports the scenario as failed, names the cause, shows the last console
//! lines and MQTT messages, and does so within its time limit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use libtest_mimic::{Arguments, Failed, Trial};

use crate::report::Attempt;
use crate::scenario::{self, Loaded};
use crate::sim::{self, Env, Sabotage, SimCatalogue};
use crate::toml_file;

#[derive(Debug, Args)]
pub struct SelftestCmd {
    /// The virtual-m5stickc binary (default: next to this one).
    #[arg(long, value_name = "PATH")]
    device: Option<PathBuf>,
    /// Arguments for the libtest-style runner.
    #[arg(last = true)]
    libtest: Vec<String>,
}

const BASE: &str = r#"
description = "harness self-test"
profile = "iskra-am550-td2"
seed = 11
duration = "20m"
speed = 100
timeout = "60s"
[device.config]
keepalive_s = 3600
connect_timeout_ms = 600000
[expect]
delivery = "exactly_once_in_order"
"#;

fn scenario(name: &str, extra: &str) -> anyhow::Result<Loaded> {
    let text = format!("{BASE}{extra}");
    let path = PathBuf::from(format!("selftest/{name}.toml"));
    let s: scenario::Scenario = toml_file::parse(&path, &text)?;
    scenario::validate(&path, &text, &s, &SimCatalogue)?;
    Ok(Loaded { name: name.into(), path, scenario: s })
}

/// What a sabotaged attempt must look like.
fn judge(a: &Attempt, elapsed: Duration, limit: Duration, cause: &str, want_console: bool, want_mqtt: bool) -> Result<(), Failed> {
    let text = a.failures.join("\n");
    if a.passed {
        return Err("the sabotaged scenario was reported as passed".into());
    }
    if !text.contains(cause) {
        return Err(format!("failure does not name the cause `{cause}`:\n{text}").into());
    }
    if elapsed > limit {
        return Err(format!("took {elapsed:?}, limit {limit:?}").into());
    }
    let (console, mqtt) = a.tail.split_once("--- last MQTT messages ---").unwrap_or((&a.tail, ""));
    if want_console && console.lines().filter(|l| l.starts_with("  t=") || l.starts_with("  stderr")).count() == 0 {
        return Err(format!("no console lines shown:\n{}", a.tail).into());
    }
    if want_mqtt && !mqtt.lines().any(|l| l.contains("/state ") || l.contains("/status ")) {
        return Err(format!("no MQTT messages shown:\n{}", a.tail).into());
    }
    Ok(())
}

impl SelftestCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let device_exe = crate::device::locate(self.device.as_deref())?;
        if !device_exe.is_file() {
            anyhow::bail!("virtual device {} does not exist (run `cargo hil sim` once, or build firmware-host)", device_exe.display());
        }
        let env = Env {
            device_exe,
            hil_exe: std::env::current_exe().context("locating the hil executable")?,
            work_dir: crate::workspace().join("target/hil/selftest"),
            snapshot_dir: crate::workspace().join("target/hil/selftest/snapshots"),
            sabotage: None,
            progress: false,
            login: None,
        };
        let rt = Arc::new(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?);
        let mut trials = Vec::new();
        let case = |name: &str, extra: &str, sabotage: Option<Sabotage>, limit: Duration, cause: &'static str, console: bool, mqtt: bool| -> anyhow::Result<Trial> {
            let sc = scenario(name, extra)?;
            let mut env = env.clone();
            env.sabotage = sabotage;
            let rt = rt.clone();
            Ok(Trial::test(name.to_string(), move || {
                let t0 = Instant::now();
                let a = rt.block_on(sim::run(&sc, &env, 0));
                judge(&a, t0.elapsed(), limit, cause, console, mqtt)
            })
            .with_kind("selftest"))
        };
        trials.push(case(
            "device_dies_mid_scenario",
            "[[events]]\nat = \"5m\"\ndo = \"device_kill\"\n",
            None,
            Duration::from_secs(30),
            "exited mid-scenario",
            true,
            true,
        )?);
        trials.push(case(
            "pty_closes_mid_scenario",
            "[[events]]\nat = \"5m\"\ndo = \"pty_close\"\n",
            None,
            Duration::from_secs(30),
            "the pty was closed",
            true,
            true,
        )?);
        trials.push(case("broker_port_already_taken", "", Some(Sabotage::BrokerPortTaken), Duration::from_secs(20), "is already taken", false, false)?);
        trials.push(Trial::test("serial_port_vanishes", || {
            let (master, slave) = serialport::TTYPort::pair().map_err(|e| format!("pty: {e}"))?;
            let path = serialport::SerialPort::name(&slave).ok_or("pty without a name")?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let reader = crate::rig::console_reader(&path, 115_200, tx).map_err(|e| format!("{e:#}"))?;
            let mut master = master;
            std::io::Write::write_all(&mut master, b"t=0 ev=wifi state=connecting\n").map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(100));
            drop(slave);
            drop(master);
            let t0 = Instant::now();
            match crate::rig::wait_for_line(&mut rx, "ev=boot", Duration::from_secs(20)) {
                Ok(_) => Err("a boot line appeared on a vanished port".into()),
                Err((why, lines)) => {
                    if !why.contains("vanished") {
                        return Err(format!("wrong cause: {why}").into());
                    }
                    if !lines.iter().any(|l| l.contains("ev=wifi")) {
                        return Err(format!("the last console lines were not kept: {lines:?}").into());
                    }
                    if t0.elapsed() > Duration::from_secs(5) {
                        return Err(format!("noticed after {:?}", t0.elapsed()).into());
                    }
                    let _ = reader.join();
                    Ok(())
                }
            }
        })
        .with_kind("selftest"));
        let mut argv = vec!["cargo-hil-selftest".to_string()];
        argv.extend(self.libtest);
        let mut args = Arguments::from_iter(argv);
        args.test_threads.get_or_insert(1);
        let conclusion = libtest_mimic::run(&args, trials);
        if !conclusion.has_failed() {
            log_hostile_inputs(conclusion.num_passed)?;
        }
        Ok(conclusion.exit_code())
    }
}

/// With `HOSTILE_INPUTS_LOG` set (ci/checks/92-hostile-inputs.sh), appends the number of
/// sabotaged runs that ended as required, as `harness faults<TAB>count<TAB>test`.
fn log_hostile_inputs(passed: u64) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("HOSTILE_INPUTS_LOG") else { return Ok(()) };
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("opening {}", path.to_string_lossy()))?;
    writeln!(f, "harness faults\t{passed}\thil selftest (cargo hil selftest)").with_context(|| format!("writing {}", path.to_string_lossy()))?;
    Ok(())
}
