//! The libtest-style runner shared by `sim` and `run --rig`: one trial per scenario, filters and
//! flags as `cargo test` has them, retries with flakes reported, quarantine, shards, and the
//! summary, JUnit and HTML reports at the end. The exit code is non-zero when any scenario failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use libtest_mimic::{Arguments, Failed, Trial};

use crate::report::{self, Attempt, Record};
use crate::scenario::{self, Catalogue, Loaded};
use crate::sim::{self, Env, SimCatalogue};
use crate::{SuiteOpts, workspace};

pub type Exec = Arc<dyn Fn(&Loaded, u32) -> Attempt + Send + Sync>;

pub fn scenario_dir(opt: Option<&Path>) -> PathBuf {
    opt.map(Path::to_path_buf).unwrap_or_else(|| workspace().join("fixtures/scenarios"))
}

pub fn load(opts_dir: Option<&Path>, catalogue: &dyn Catalogue) -> anyhow::Result<(PathBuf, Vec<Loaded>)> {
    let dir = scenario_dir(opts_dir);
    let scenarios = scenario::load_dir(&dir, catalogue)?;
    Ok((dir, scenarios))
}

/// `cargo hil sim`.
pub fn sim(opts: &SuiteOpts, device: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (dir, scenarios) = load(opts.scenarios.as_deref(), &SimCatalogue)?;
    let device_exe = match device {
        Some(p) => p.to_path_buf(),
        None if std::env::var_os("HIL_DEVICE").is_some() => crate::device::locate(None)?,
        None => build_device()?,
    };
    if !device_exe.is_file() {
        anyhow::bail!("virtual device {} does not exist (build it: cargo build --release -p firmware-host)", device_exe.display());
    }
    let env = Env {
        device_exe,
        hil_exe: std::env::current_exe().context("locating the hil executable")?,
        work_dir: workspace().join("target/hil/work"),
        snapshot_dir: workspace().join("hil/snapshots"),
        sabotage: None,
        progress: true,
        login: Some(sim::Login::generate(&workspace().join("target/hil/work"))?),
    };
    let secrets = env.login.as_ref().map(|l| l.credentials.secrets()).unwrap_or_default();
    let rt = Arc::new(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?);
    let exec: Exec = Arc::new(move |sc, attempt| rt.block_on(sim::run(sc, &env, attempt)));
    run_suite("sim", &dir, scenarios, opts, exec, &secrets)
}

/// Builds the virtual device with the cargo that runs us, into the same target directory.
fn build_device() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = std::process::Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--package", "firmware-host", "--bin", "virtual-m5stickc"])
        .current_dir(workspace())
        .spawn()
        .context("running cargo to build the virtual device")?;
    let deadline = Instant::now() + Duration::from_secs(30 * 60);
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                anyhow::bail!("building virtual-m5stickc failed ({status})");
            }
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("building virtual-m5stickc took longer than 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    crate::device::locate(None)
}

/// Runs `scenarios` as libtest trials and reports.
/// `secrets` (the run's broker credentials) must not appear in the reports; if one does, the run fails.
pub fn run_suite(suite: &str, dir: &Path, scenarios: Vec<Loaded>, opts: &SuiteOpts, exec: Exec, secrets: &[crate::credentials::Secret]) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    let qpath = opts.quarantine.clone().unwrap_or_else(|| dir.join("quarantine.toml"));
    let quarantine = crate::quarantine::load(&qpath, &names)?;
    let scenarios = match opts.shard {
        Some(s) => s.select(scenarios),
        None => scenarios,
    };
    let records: Arc<Mutex<Vec<Record>>> = Arc::new(Mutex::new(Vec::new()));
    let mut trials = Vec::new();
    let include_ignored = opts.libtest.iter().any(|a| a == "--include-ignored" || a == "--ignored");
    for sc in &scenarios {
        let q = quarantine.get(&sc.name).cloned();
        if let Some(reason) = &q {
            eprintln!("note: {} is quarantined: {reason}", sc.name);
        }
        let named = opts.filter.as_deref() == Some(sc.name.as_str());
        let outside_default = !sc.scenario.default_suite && !named;
        if outside_default && !include_ignored && opts.filter.as_deref().is_none_or(|f| sc.name.contains(f)) {
            eprintln!(
                "note: {} is not in the default suite ({} of meter time); run it with `cargo hil {suite} {}` or `-- --include-ignored`",
                sc.name, sc.scenario.duration, sc.name
            );
        }
        let sc = sc.clone();
        let exec = exec.clone();
        let records = records.clone();
        let retry = opts.retry;
        let trial = Trial::test(sc.name.clone(), move || {
            let mut attempts = Vec::new();
            for n in 0..=retry {
                let a = exec(&sc, n);
                let passed = a.passed;
                attempts.push(a);
                if passed {
                    break;
                }
            }
            let rec = Record { name: sc.name.clone(), description: sc.scenario.description.clone(), attempts, quarantined: None };
            let result = if rec.passed() {
                Ok(())
            } else {
                let a = rec.last().cloned().unwrap_or_default();
                Err(Failed::from(format!("{}\n{}", a.failures.join("\n"), a.tail)))
            };
            records.lock().unwrap_or_else(|p| p.into_inner()).push(rec);
            result
        })
        .with_kind(suite)
        .with_ignored_flag(q.is_some() || outside_default);
        trials.push(trial);
    }
    let mut argv = vec!["cargo-hil".to_string()];
    if let Some(f) = &opts.filter {
        argv.push(f.clone());
    }
    argv.extend(opts.libtest.iter().cloned());
    let mut args = Arguments::from_iter(argv);
    if args.test_threads.is_none() {
        args.test_threads = Some(opts.jobs.unwrap_or(1));
    }
    let t0 = Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    if args.list {
        return Ok(ExitCode::SUCCESS);
    }
    let wall = t0.elapsed();
    let mut records = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    for sc in &scenarios {
        if let Some(reason) = quarantine.get(&sc.name)
            && !records.iter().any(|r| r.name == sc.name)
        {
            records.push(Record { name: sc.name.clone(), description: sc.scenario.description.clone(), attempts: Vec::new(), quarantined: Some(reason.clone()) });
        }
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    let summary = report::summary(&records, wall);
    println!("{summary}");
    if let Some(p) = &opts.junit {
        report::write_junit(p, suite, &records, wall)?;
        println!("JUnit report: {}", p.display());
    }
    let html = opts.html.clone().unwrap_or_else(|| workspace().join("target/hil/report.html"));
    report::write_html(&html, &format!("cargo hil {suite}"), &records, &summary)?;
    println!("HTML report: {}", html.display());
    let mut reports: Vec<&Path> = vec![&html];
    reports.extend(opts.junit.as_deref());
    if let Err(e) = crate::credentials::check_files(secrets, &reports) {
        eprintln!("error: credential leak: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let leaked_in_run = records.iter().any(|r| r.attempts.iter().any(|a| a.failures.iter().any(|f| f.starts_with("credential leak"))));
    if !secrets.is_empty() && !leaked_in_run {
        println!("credentials: the run's broker user names and passwords appear in no console line, MQTT message, snapshot or report");
    }
    Ok(conclusion.exit_code())
}

/// `cargo hil list`.
pub fn list(dir: Option<&Path>) -> anyhow::Result<()> {
    let (dir, scenarios) = load(dir, &SimCatalogue)?;
    let names: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    let quarantine = crate::quarantine::load(&dir.join("quarantine.toml"), &names)?;
    println!("{:<22} {:<18} {:>8} {:>8} {:<24} description", "scenario", "profile", "meter", "speed", "tags");
    for s in &scenarios {
        let sc = &s.scenario;
        println!(
            "{:<22} {:<18} {:>8} {:>7}x {:<24} {}{}{}",
            s.name,
            sc.profile,
            sc.duration.to_string(),
            sc.speed,
            sc.tags.join(","),
            sc.description,
            if sc.default_suite { "" } else { " [not in the default suite: run it by name]" },
            quarantine.get(&s.name).map(|r| format!(" [QUARANTINED: {r}]")).unwrap_or_default()
        );
    }
    println!("{} scenario(s): {}", scenarios.len(), scenarios.iter().map(|s| s.path.display().to_string()).next().map_or(dir.display().to_string(), |p| format!("{}/*.toml (e.g. {p})", dir.display())));
    Ok(())
}
