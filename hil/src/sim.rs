//! `cargo hil sim`: one scenario against the virtual M5StickC. The meter (the `simulator` crate)
//! writes into a pty, the device reads the other end and publishes through a cuttable proxy to a
//! broker child process, and a capture client records everything. Every wait is bounded; when the
//! scenario fails, the last console lines and MQTT messages come with the failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use simulator::faults::{FaultParams, When};
use simulator::run::{DataRequest, RunOptions, Speed};
use simulator::{FaultKind, FaultPlan, FaultRule, Meter, Profile};
use tokio::sync::{mpsc, watch};

use crate::broker::{self, BrokerChild};
use crate::capture::Capture;
use crate::device::{Device, DeviceArgs, Exit};
use crate::expect::{self, Figures, RunFacts};
use crate::observe::{Ledger, Observer};
use crate::report::Attempt;
use crate::scenario::{Action, Catalogue, Event, Loaded, Scenario};

/// Fault kinds and profiles, straight from the simulator.
#[derive(Debug)]
pub struct SimCatalogue;

impl Catalogue for SimCatalogue {
    fn fault_kinds(&self) -> Vec<String> {
        FaultKind::ALL.iter().map(|k| k.name().to_string()).collect()
    }
    fn profile_exists(&self, name: &str) -> bool {
        Profile::load(name).is_ok()
    }
}

/// Settings shared by all scenarios of a run.
#[derive(Debug, Clone)]
pub struct Env {
    pub device_exe: PathBuf,
    pub hil_exe: PathBuf,
    /// Where per-scenario files go (device config).
    pub work_dir: PathBuf,
    pub snapshot_dir: PathBuf,
    /// Sabotage for harness self-tests.
    pub sabotage: Option<Sabotage>,
    pub progress: bool,
    /// Broker credentials for this run (the broker then requires them), with their files.
    pub login: Option<Login>,
}

/// The run's broker credentials and where they are written.
#[derive(Debug, Clone)]
pub struct Login {
    pub credentials: crate::credentials::Credentials,
    pub broker_auth_file: PathBuf,
    pub device_password_file: PathBuf,
}

impl Login {
    /// Fresh credentials, written (0600) into `dir`.
    pub fn generate(dir: &Path) -> anyhow::Result<Login> {
        let credentials = crate::credentials::Credentials::generate()?;
        let (broker_auth_file, device_password_file) = credentials.write_files(dir, "login")?;
        Ok(Login { credentials, broker_auth_file, device_password_file })
    }
}

/// Ways the harness's own robustness is tested (`cargo hil selftest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// Something else already listens on the broker port.
    BrokerPortTaken,
}

/// One timed action, after `for` expansion and the random mix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    pub meter_s: f64,
    pub action: Action,
}

/// The meter-time windows `[start, end)` in which the P1 cable is out. The meter source silences
/// these slots itself, so which telegrams fall in a window does not depend on how fast the event
/// loop reacts.
pub(crate) fn unplugged_windows(events: &[Timed]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<Timed> = events.iter().filter(|e| matches!(e.action, Action::P1Unplug | Action::P1Plug)).copied().collect();
    sorted.sort_by(|a, b| a.meter_s.total_cmp(&b.meter_s));
    let mut windows = Vec::new();
    let mut start = None;
    for e in sorted {
        match (e.action, start) {
            (Action::P1Unplug, None) => start = Some(e.meter_s),
            (Action::P1Plug, Some(s)) => {
                windows.push((s, e.meter_s));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        windows.push((s, f64::INFINITY));
    }
    windows
}

/// Seeded random events and fault rules for a `[random]` section.
pub fn schedule(s: &Scenario, interval_s: u32) -> (Vec<Timed>, Vec<FaultRule>) {
    let mut events: Vec<Timed> = Vec::new();
    let mut push = |e: &Event| {
        events.push(Timed { meter_s: e.at.as_secs_f64(), action: e.action });
        if let (Some(d), Some(inv)) = (e.for_, e.action.inverse()) {
            events.push(Timed { meter_s: e.at.as_secs_f64() + d.as_secs_f64(), action: inv });
        }
    };
    for e in &s.events {
        push(e);
    }
    let mut rules: Vec<FaultRule> = s.faults.iter().filter_map(|f| fault_rule(f, interval_s)).collect();
    if let Some(r) = &s.random {
        let days = s.duration.as_secs_f64() / 86_400.0;
        let mut rng = simulator::rng::Rng::derive(s.seed, 0x50A4);
        let (lo, hi) = (r.outage_min.as_secs_f64(), r.outage_max.as_secs_f64());
        let end = s.duration.as_secs_f64();
        // Outages of one kind never overlap: each starts after the previous one ended.
        let outages = |per_day: f64, down: Action, up: Option<Action>, rng: &mut simulator::rng::Rng, events: &mut Vec<Timed>| {
            let n = (per_day * days).round() as u64;
            if n == 0 {
                return;
            }
            let slot = end / n as f64;
            for i in 0..n {
                let len = if up.is_some() { rng.range_f64(lo, hi).min(slot * 0.5) } else { 0.0 };
                let start = i as f64 * slot + rng.range_f64(0.05, 0.95) * (slot - len);
                events.push(Timed { meter_s: start, action: down });
                if let Some(up) = up {
                    events.push(Timed { meter_s: start + len, action: up });
                }
            }
        };
        outages(r.broker_restarts_per_day, Action::BrokerRestart, None, &mut rng, &mut events);
        outages(r.broker_outages_per_day, Action::BrokerDown, Some(Action::BrokerUp), &mut rng, &mut events);
        outages(r.wifi_drops_per_day, Action::WifiDown, Some(Action::WifiUp), &mut rng, &mut events);
        outages(r.supply_trips_per_day, Action::SupplyUnplug, Some(Action::SupplyPlug), &mut rng, &mut events);
        let kinds: Vec<FaultKind> = FaultKind::ALL
            .into_iter()
            .filter(|k| r.fault_kinds.is_empty() || r.fault_kinds.iter().any(|n| n == k.name()))
            .filter(|k| !r.exclude_kinds.iter().any(|n| n == k.name()))
            .collect();
        if !kinds.is_empty() && r.faults_per_day > 0.0 {
            let per_day_each = r.faults_per_day / kinds.len() as f64;
            let telegrams_per_day = 86_400.0 / f64::from(interval_s.max(1));
            for k in kinds {
                rules.push(FaultRule::random(k, (per_day_each / telegrams_per_day).min(1.0)));
            }
        }
    }
    events.sort_by(|a, b| a.meter_s.total_cmp(&b.meter_s));
    (events, rules)
}

fn fault_rule(f: &crate::scenario::Fault, interval_s: u32) -> Option<FaultRule> {
    let kind = FaultKind::ALL.into_iter().find(|k| k.name() == f.kind)?;
    let iv = f64::from(interval_s.max(1));
    let first = (f.at.as_secs_f64() / iv).floor() as u64;
    let when = match f.every {
        Some(every) if f.count > 1 => When {
            every: ((every.as_secs_f64() / iv).round() as u64).max(1),
            offset: first,
            limit: Some(u64::from(f.count)),
            ..When::default()
        },
        _ => When { at: vec![first], ..When::default() },
    };
    let p = |k: &str| f.params.get(k).and_then(|v| v.as_integer());
    let params = FaultParams {
        bytes: p("bytes").map(|v| v as usize),
        gap_ms: p("gap_ms").map(|v| v as u64),
        chunks: p("chunks").map(|v| v as usize),
        seconds: p("seconds"),
        baud: p("baud").map(|v| v as u32),
    };
    Some(FaultRule { kind, when, params })
}

pub(crate) struct World {
    pub(crate) obs: Observer,
    pub(crate) ledger: Ledger,
    /// Console lines after the meter stopped are not part of the snapshot (timing-dependent).
    pub(crate) meter_done: Option<Instant>,
    /// Ledger entry per telegram slot index.
    pub(crate) slot_of: Vec<usize>,
}

/// Keeps virtual time from outrunning the device: while no outage is scripted, the meter waits
/// whenever the device reports more than `high` readings in its ring, until it is back under
/// `low` (see [`Throttle::for_ring`]). The device's clock keeps running meanwhile (a pause in meter time, as if the replay
/// after an outage took no meter time at all). Outages are never throttled: filling the ring is
/// their point. Each wait is bounded.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Outages in progress (broker, WiFi, supply), counted by the event loop.
    pub(crate) outages: std::sync::atomic::AtomicI64,
    pub(crate) stalls: std::sync::atomic::AtomicU64,
    pub(crate) stalled_us: std::sync::atomic::AtomicU64,
    high: u64,
    low: u64,
}

impl Throttle {
    /// Thresholds for a device whose ring holds `ring_capacity` readings: the meter waits well
    /// before the ring could overflow (a third of it, at most 1000), until a fifth of that is left.
    /// Few, long holds rather than many short ones: the device's clock runs on during a hold.
    pub(crate) fn for_ring(ring_capacity: u64) -> Self {
        let high = (ring_capacity / 3).clamp(1, 1000);
        Throttle { high, low: high / 5, ..Throttle::default() }
    }
}

/// The firmware's default `ring_capacity`, for scenarios that do not set it.
const DEVICE_DEFAULT_RING: u64 = 600;
const THROTTLE_MAX_WAIT: Duration = Duration::from_secs(30);

/// Runs one attempt of a scenario. Never hangs: the whole attempt is bounded by the scenario's
/// wall timeout plus a fixed teardown allowance.
pub async fn run(sc: &Loaded, env: &Env, attempt: u32) -> Attempt {
    let t0 = Instant::now();
    let s = &sc.scenario;
    let device_id = format!("hil-{}", sc.name.replace('_', "-"));
    let root = format!("p1/{device_id}/");
    let mut forbid: Vec<String> = vec!["panic".into()];
    forbid.extend(s.expect.console_forbid.iter().cloned());
    let world = Arc::new(Mutex::new(World {
        obs: Observer::new(root.clone(), forbid, s.expect.console_require.clone()),
        ledger: Ledger::default(),
        meter_done: None,
        slot_of: Vec::new(),
    }));
    if let Some(l) = &env.login {
        world.lock().unwrap_or_else(|p| p.into_inner()).obs.secrets = l.credentials.secrets();
    }
    let mut facts = RunFacts::default();
    let timeout = sc.wall_timeout();
    let result = tokio::time::timeout(timeout, body(sc, env, attempt, &device_id, world.clone(), &mut facts)).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => facts.harness_errors.push(format!("{e:#}")),
        Err(_) => facts.harness_errors.push(format!("scenario did not finish within its timeout of {timeout:?} (wall)")),
    }
    facts.wall_s = t0.elapsed().as_secs_f64();
    let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
    let World { obs, ledger, .. } = &mut *w;
    obs.classify_duplicates(ledger);
    finish(sc, env, &w, facts, t0.elapsed())
}

pub(crate) fn finish(sc: &Loaded, env: &Env, w: &World, facts: RunFacts, wall: Duration) -> Attempt {
    let s = &sc.scenario;
    // Mark replayed readings: sent before a reconnect that happened before they arrived.
    let mut replayed = 0u64;
    let mut latency = Vec::new();
    let mut live: Vec<f64> = Vec::new();
    for e in &w.ledger.entries {
        if let (Some(l), Some(sent_at), Some(arrived)) = (e.latency_ms(), e.at, e.delivered_at) {
            let was_replayed = w.obs.connects.iter().any(|c| *c > sent_at && *c <= arrived);
            if was_replayed {
                replayed += 1;
            } else {
                live.push(l);
            }
            latency.push((e.meter_s, l));
        }
    }
    let mut figures: Figures = expect::figures(&w.obs, &w.ledger, &facts);
    let live_only = s.expect.latency.as_ref().is_none_or(|l| l.live_only);
    if live_only {
        figures.latency_p50_ms = crate::observe::percentile(&mut live.clone(), 50.0);
        figures.latency_p99_ms = crate::observe::percentile(&mut live, 99.0);
    }
    let _ = replayed;
    let mut failures = expect::check(&s.expect, &w.obs, &w.ledger, &facts, &figures);
    if failures.is_empty() {
        let snap = expect::snapshot(
            &sc.name,
            &s.profile,
            s.seed,
            crate::duration::format(s.duration.0),
            &w.obs,
            &w.ledger,
            &figures,
            // With a ring that overflows, how many readings fit depends on wall-clock timing
            // (the reconnect after the outage); the expectations check the accounting instead.
            s.expect.delivery != Some(crate::scenario::Delivery::Accounted),
        );
        let text = serde_json::to_string(&snap).unwrap_or_default();
        let leak = crate::credentials::leaked(&w.obs.secrets, &text).next();
        if let Some(label) = leak {
            // Not compared: a mismatch would write the secret into a `.snap.new`.
            failures.push(format!("credential leak: {label} appears in the snapshot"));
        } else if let Err(e) = compare_snapshot(&env.snapshot_dir, sc.snapshot_name(), &snap) {
            failures.push(e);
        }
    }
    let passed = failures.is_empty();
    Attempt {
        passed,
        tail: if passed { String::new() } else { w.obs.tail() },
        failures,
        figures,
        wall,
        power: w.obs.power.iter().map(|p| (p.t_s, p.acin_ma, p.battery_pct)).collect(),
        latency,
    }
}

/// Compares with the committed snapshot through insta (CI=true: mismatches fail and nothing is
/// written; locally a `.snap.new` is left for `cargo insta review`).
pub fn compare_snapshot(dir: &Path, name: &str, snap: &expect::Snapshot) -> Result<(), String> {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(format!("fixtures/scenarios/{name}.toml"));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_yaml_snapshot!(name.to_string(), snap));
    }));
    r.map_err(|p| {
        let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        format!(
            "snapshot `{name}` does not match {}/{name}.snap ({}); review the diff above, accept with INSTA_UPDATE=always or `cargo insta review`",
            dir.display(),
            msg.lines().next().unwrap_or("mismatch")
        )
    })
}

async fn body(sc: &Loaded, env: &Env, attempt: u32, device_id: &str, world: Arc<Mutex<World>>, facts: &mut RunFacts) -> anyhow::Result<()> {
    let s = &sc.scenario;
    let profile = Profile::load(&s.profile).map_err(|e| anyhow::anyhow!("{e}"))?;
    let interval_s = profile.interval_s;
    let (events, rules) = schedule(s, interval_s);
    let start = match &s.start {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t).with_context(|| format!("start `{t}`"))?.with_timezone(&chrono::Utc),
        None => chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00+02:00")?.with_timezone(&chrono::Utc),
    };
    let meter = Meter::new(profile, s.seed, start).with_faults(FaultPlan { seed: Some(s.seed), rules }, s.seed);

    // Broker child and the proxy in front of it.
    let broker_port = broker::free_port()?;
    let _squatter = match env.sabotage {
        Some(Sabotage::BrokerPortTaken) => Some(std::net::TcpListener::bind(("127.0.0.1", broker_port))?),
        None => None,
    };
    let auth_file = env.login.as_ref().map(|l| l.broker_auth_file.as_path());
    let mut broker = BrokerChild::start(&env.hil_exe, broker_port, auth_file, Duration::from_secs(10)).await?;
    let proxy = crate::proxy::Proxy::start(0, broker_port).await?;

    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel();
    let capture_login = env.login.as_ref().map(|l| (l.credentials.capture_user.as_str(), l.credentials.capture_password()));
    let capture = Capture::start(broker_port, &format!("hil-capture-{}-{attempt}", sc.name), capture_login, msg_tx);
    capture.wait_subscribed(0, Duration::from_secs(10)).await?;

    // The serial line: a pty pair; the device opens the slave by path.
    let (master, slave) = tokio_serial::SerialStream::pair().context("opening a pty pair")?;
    let slave_path = tokio_serial::SerialPort::name(&slave).context("pty slave has no name")?;

    let config = write_device_config(&env.work_dir, &sc.name, &s.device.config)?;
    let args = DeviceArgs {
        exe: env.device_exe.clone(),
        p1: slave_path,
        broker_port: proxy.port,
        device_id: device_id.to_string(),
        prefix: "p1".into(),
        raw_telegrams: s.device.raw_telegrams,
        supply: s.device.supply,
        time_scale: s.speed,
        config,
        login: env.login.as_ref().map(|l| (l.credentials.device_user.clone(), l.device_password_file.clone())),
    };
    let (line_tx, mut line_rx) = mpsc::unbounded_channel();
    let mut device = Device::spawn(&args, line_tx)?;

    // Fold console lines and messages into the world as they arrive.
    let w2 = world.clone();
    let folder = tokio::spawn(async move {
        loop {
            tokio::select! {
                l = line_rx.recv() => match l {
                    Some(l) => {
                        let mut w = w2.lock().unwrap_or_else(|p| p.into_inner());
                        if w.meter_done.is_some_and(|d| l.at > d) && l.ev.as_deref() == Some("error") {
                            w.obs.remember(&l.text);
                            continue;
                        }
                        w.obs.line(&l);
                    }
                    None => break,
                },
                m = msg_rx.recv() => match m {
                    Some(m) => {
                        let mut w = w2.lock().unwrap_or_else(|p| p.into_inner());
                        let World { obs, ledger, .. } = &mut *w;
                        obs.message(&m, ledger);
                    }
                    None => break,
                },
            }
        }
    });

    // Wait for the device to come up and connect before the meter starts.
    wait_console(&world, &mut device, Duration::from_secs(10), "a boot line (ev=boot)", |o| !o.boots.is_empty()).await?;
    wait_console(&world, &mut device, Duration::from_secs(10), "an MQTT connection (ev=mqtt state=connected)", |o| !o.connects.is_empty()).await?;

    // Meter and events.
    let dr = DataRequest::new(true);
    let (meter_time_tx, meter_time_rx) = watch::channel(0.0f64);
    let opts = RunOptions {
        speed: Speed::Factor(s.speed),
        duration: Some(chrono::Duration::milliseconds(s.duration.0.as_millis() as i64)),
        pace_bytes: true,
        ..RunOptions::default()
    };
    let bar = progress_bar(env.progress, sc, s.duration.as_secs_f64());
    let w3 = world.clone();
    let bar2 = bar.clone();
    let dr2 = dr.clone();
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ring_capacity = s.device.config.get("ring_capacity").and_then(toml::Value::as_integer).and_then(|c| u64::try_from(c).ok());
    let throttle = Arc::new(Throttle::for_ring(ring_capacity.unwrap_or(DEVICE_DEFAULT_RING)));
    let throttle2 = throttle.clone();
    let mut line = Cuttable { inner: Some(master), cut: cut.clone() };
    let unplugged = unplugged_windows(&events);
    let meter_task = tokio::spawn(async move {
        let mut master = &mut line;
        let mut first: Option<chrono::DateTime<chrono::Utc>> = None;
        let mut source = Recorded { meter, world: w3.clone(), start: None, throttle: Some(throttle2), held: Duration::ZERO, unplugged };
        let r = simulator::run::run(&mut source, &mut master, &opts, &dr2, |tg, skipped| {
            let at = Instant::now();
            let t0 = *first.get_or_insert(tg.due);
            let meter_s = (tg.due - t0).num_milliseconds() as f64 / 1000.0;
            let _ = meter_time_tx.send(meter_s);
            if let Some(b) = &bar2 {
                b.set_position(meter_s as u64);
            }
            let mut w = w3.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(idx) = source_slot(&w, tg.index) {
                w.ledger.written(idx, at, skipped, tg.bytes.is_empty());
            }
        })
        .await;
        w3.lock().unwrap_or_else(|p| p.into_inner()).ledger.close();
        let counts = source.meter.fault_counts().clone();
        (r, counts, line)
    });

    let mut events_done = 0usize;
    let mut meter_time_rx = meter_time_rx;
    let mut proxy = proxy;
    let mut meter_task = meter_task;
    let outcome: anyhow::Result<()> = loop {
        // Execute the events that are due.
        let now_meter = *meter_time_rx.borrow();
        let mut failed = None;
        while events_done < events.len() && events[events_done].meter_s <= now_meter {
            let ev = events[events_done];
            events_done += 1;
            let delta = match ev.action {
                Action::BrokerDown | Action::WifiDown | Action::SupplyUnplug | Action::P1Unplug => 1,
                Action::BrokerUp | Action::WifiUp | Action::SupplyPlug | Action::P1Plug => -1,
                _ => 0,
            };
            if delta > 0 {
                throttle.outages.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let restart = ev.action == Action::BrokerRestart;
            if restart {
                throttle.outages.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let r = act(ev.action, &mut device, &mut proxy, &mut broker, &capture, env, broker_port, &cut).await;
            if delta < 0 || restart {
                throttle.outages.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
            if let Err(e) = r {
                failed = Some(e.context(format!("event `{}` at meter time {:.0} s", ev.action.name(), ev.meter_s)));
                break;
            }
        }
        if let Some(e) = failed {
            break Err(e);
        }
        tokio::select! {
            r = &mut meter_task => {
                match r {
                    Ok((Ok(summary), counts, master)) => {
                        let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
                        w.ledger.injected = counts.0.iter().map(|(k, n)| (k.name().to_string(), *n)).collect();
                        w.meter_done = Some(Instant::now());
                        facts.meter_s = summary.meter_end.zip(summary.meter_start).map_or(0.0, |(e, s)| (e - s).num_milliseconds() as f64 / 1000.0 + f64::from(interval_s));
                        drop(w);
                        // Keep the line open while the device drains.
                        let _keep = master;
                        break drain(&world, &mut device, s.speed).await;
                    }
                    Ok((Err(e), _, _)) => break Err(anyhow::anyhow!("the meter could not write to the serial line: {e}")),
                    Err(e) => break Err(anyhow::anyhow!("meter task failed: {e}")),
                }
            }
            _ = device.exited() => {
                break Err(anyhow::anyhow!("the device (pid {}) exited mid-scenario ({})", device.pid, device_exit_text(&device)));
            }
            r = meter_time_rx.changed() => {
                if r.is_err() {
                    continue;
                }
            }
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    facts.throttle_stalls = throttle.stalls.load(std::sync::atomic::Ordering::SeqCst);
    facts.throttle_s = throttle.stalled_us.load(std::sync::atomic::Ordering::SeqCst) as f64 / 1e6;
    if let Exit::Exited(status) = device.exit() {
        facts.device_exit = Some(status);
    }
    meter_task.abort();
    facts.peak_rss_kib = device.peak_rss_kib();
    device.kill().await;
    facts.peak_rss_kib = facts.peak_rss_kib.max(device.peak_rss_kib());
    drop(capture);
    broker.stop().await;
    drop(proxy);
    drop(slave);
    // Let the folder take the last lines.
    let _ = tokio::time::timeout(Duration::from_millis(500), folder).await;
    outcome
}

fn device_exit_text(d: &Device) -> String {
    match d.exit() {
        Exit::Exited(s) => s,
        Exit::Running => "still running".into(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn act(
    action: Action,
    device: &mut Device,
    proxy: &mut crate::proxy::Proxy,
    broker: &mut BrokerChild,
    capture: &Capture,
    env: &Env,
    broker_port: u16,
    cut: &Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    match action {
        Action::WifiDown => device.control("wifi down").await,
        Action::WifiUp => device.control("wifi up").await,
        Action::SupplyUnplug => device.control("supply unplug").await,
        Action::SupplyPlug => device.control("supply plug").await,
        // The meter source silences the unplugged slots (see `unplugged_windows`); here only
        // the device loses its supply.
        Action::P1Unplug => device.control("supply unplug").await,
        Action::P1Plug => device.control("supply plug").await,
        Action::BrokerDown => {
            proxy.down();
            Ok(())
        }
        Action::BrokerUp => {
            proxy.up();
            Ok(())
        }
        Action::BrokerRestart => {
            // The device is cut off first, so nothing is in flight when the broker dies; it comes
            // back only once the capture client has subscribed to the new broker.
            proxy.down();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let seen = capture.subscriptions();
            broker.stop().await;
            *broker = BrokerChild::start(&env.hil_exe, broker_port, env.login.as_ref().map(|l| l.broker_auth_file.as_path()), Duration::from_secs(10)).await?;
            capture.wait_subscribed(seen, Duration::from_secs(10)).await?;
            proxy.up();
            Ok(())
        }
        Action::DeviceKill => {
            device.kill().await;
            Ok(())
        }
        Action::PtyClose => {
            cut.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }
}

/// After the meter stopped: wait until every deliverable reading has arrived (or been counted as
/// dropped) and a diag message newer than the last reading came in, bounded.
pub(crate) async fn drain(world: &Arc<Mutex<World>>, device: &mut Device, speed: f64) -> anyhow::Result<()> {
    // Generous: a replay of a full ring plus two diag intervals at the scenario speed.
    let limit = Duration::from_secs_f64((3600.0 / speed).clamp(10.0, 60.0));
    let deadline = Instant::now() + limit;
    let mut last_progress = (u64::MAX, Instant::now());
    loop {
        let (done, delivered) = {
            let w = world.lock().unwrap_or_else(|p| p.into_inner());
            let sent = w.ledger.deliverable();
            let delivered = w.obs.delivered_order.len() as u64;
            let dropped = w.obs.last_diag.as_ref().and_then(|d| d.get("ring_dropped")).and_then(|v| v.as_u64()).unwrap_or(0);
            let diag_after = w.obs.recent_msgs.iter().rev().take_while(|m| !m.topic.ends_with("/state")).any(|m| m.topic.ends_with("/diag"));
            ((delivered + dropped >= sent) && diag_after, delivered)
        };
        if done {
            return Ok(());
        }
        if delivered != last_progress.0 {
            last_progress = (delivered, Instant::now());
        }
        if Instant::now() > deadline {
            // Not an error by itself: the expectations say what was missing.
            return Ok(());
        }
        if let Exit::Exited(s) = device.exit() {
            anyhow::bail!("the device exited while draining ({s})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn wait_console(
    world: &Arc<Mutex<World>>,
    device: &mut Device,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Observer) -> bool,
) -> anyhow::Result<()> {
    wait_until(world, device, timeout, what, |w| pred(&w.obs)).await
}

pub(crate) async fn wait_until(
    world: &Arc<Mutex<World>>,
    device: &mut Device,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&World) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if pred(&world.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        if let Exit::Exited(s) = device.exit() {
            anyhow::bail!("the device exited ({s}) while waiting for {what}");
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) fn write_device_config(dir: &Path, name: &str, table: &toml::Table) -> anyhow::Result<Option<PathBuf>> {
    if table.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{name}.device.toml"));
    let text = toml::to_string(table).context("writing the device config")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(path))
}

pub(crate) fn progress_bar(enabled: bool, sc: &Loaded, meter_s: f64) -> Option<indicatif::ProgressBar> {
    if !enabled || meter_s < 2.0 * 86_400.0 {
        return None;
    }
    let b = indicatif::ProgressBar::with_draw_target(Some(meter_s as u64), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {percent}% meter time, eta {eta}") {
        b.set_style(style);
    }
    b.set_message(sc.name.clone());
    Some(b)
}

/// The meter's end of the pty, which a self-test can close under the running meter.
struct Cuttable {
    inner: Option<tokio_serial::SerialStream>,
    cut: Arc<std::sync::atomic::AtomicBool>,
}

impl Cuttable {
    fn live(&mut self) -> std::io::Result<&mut tokio_serial::SerialStream> {
        if self.cut.load(std::sync::atomic::Ordering::SeqCst) {
            self.inner = None;
        }
        self.inner.as_mut().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the pty was closed"))
    }
}

impl tokio::io::AsyncWrite for Cuttable {
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match this.live() {
            Ok(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match this.live() {
            Ok(s) => std::pin::Pin::new(s).poll_flush(cx),
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match this.live() {
            Ok(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }
}

/// The meter as a telegram source that enters each telegram in the ledger before it is written.
pub(crate) struct Recorded {
    pub(crate) meter: Meter,
    pub(crate) world: Arc<Mutex<World>>,
    pub(crate) start: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) throttle: Option<Arc<Throttle>>,
    /// Wall time held back for the device since the runner last asked.
    pub(crate) held: Duration,
    /// Meter-time windows with the P1 cable out: those slots stay silent.
    pub(crate) unplugged: Vec<(f64, f64)>,
}

impl Recorded {
    fn wait_for_device(&mut self) {
        let Some(t) = &self.throttle else { return };
        let queue = || self.world.lock().unwrap_or_else(|p| p.into_inner()).obs.device_queue;
        let outage = || t.outages.load(std::sync::atomic::Ordering::SeqCst) > 0;
        if outage() || queue() <= t.high {
            return;
        }
        let t0 = Instant::now();
        tokio::task::block_in_place(|| {
            while !outage() && queue() > t.low && t0.elapsed() < THROTTLE_MAX_WAIT {
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let waited = t0.elapsed();
        t.stalls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        t.stalled_us.fetch_add(waited.as_micros() as u64, std::sync::atomic::Ordering::SeqCst);
        self.held += waited;
    }
}

/// Ledger entry of telegram slot `index` (slots and entries are created one for one).
pub(crate) fn source_slot(w: &World, index: u64) -> Option<usize> {
    w.slot_of.get(usize::try_from(index).ok()?).copied()
}

impl simulator::run::TelegramSource for Recorded {
    fn next(&mut self) -> Option<simulator::Telegram> {
        self.wait_for_device();
        let mut tg = self.meter.next_telegram();
        let t0 = *self.start.get_or_insert(tg.due);
        let meter_s = (tg.due - t0).num_milliseconds() as f64 / 1000.0;
        if self.unplugged.iter().any(|&(a, b)| (a..b).contains(&meter_s)) {
            tg.bytes.clear();
            tg.chunks.clear();
        }
        let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
        let idx = w.ledger.prepare(meter_s, &tg.bytes, !tg.intact);
        let slot = usize::try_from(tg.index).unwrap_or(usize::MAX);
        if w.slot_of.len() <= slot {
            w.slot_of.resize(slot + 1, usize::MAX);
        }
        w.slot_of[slot] = idx;
        Some(tg)
    }
    fn line(&self) -> simulator::profile::LineSettings {
        self.meter.profile().line
    }
    fn interval_s(&self) -> u32 {
        self.meter.profile().interval_s
    }
    fn take_hold(&mut self) -> Duration {
        std::mem::take(&mut self.held)
    }
    fn faults(&self) -> simulator::FaultCounts {
        self.meter.fault_counts().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soak() -> Scenario {
        let path = crate::workspace().join("fixtures/scenarios/soak.toml");
        let (s, _): (Scenario, String) = crate::toml_file::load(&path).unwrap();
        s
    }

    #[test]
    fn unplugged_windows_pair_each_unplug_with_the_next_plug() {
        let at = |meter_s, action| Timed { meter_s, action };
        let events = [
            at(900.0, Action::P1Plug),
            at(60.0, Action::WifiDown),
            at(600.0, Action::P1Unplug),
            at(1800.0, Action::P1Unplug),
        ];
        assert_eq!(unplugged_windows(&events), vec![(600.0, 900.0), (1800.0, f64::INFINITY)]);
        assert!(unplugged_windows(&[at(5.0, Action::P1Plug)]).is_empty());
    }

    #[test]
    fn the_throttle_holds_the_meter_well_before_the_ring_overflows() {
        let t = Throttle::for_ring(600);
        assert_eq!((t.high, t.low), (200, 40));
        let t = Throttle::for_ring(16_000);
        assert_eq!((t.high, t.low), (1000, 200));
        let t = Throttle::for_ring(1);
        assert!(t.high >= 1 && t.low < t.high);
    }

    #[test]
    fn the_random_mix_is_seeded_and_outages_do_not_overlap() {
        let s = soak();
        let (a, rules_a) = schedule(&s, 1);
        let (b, _) = schedule(&s, 1);
        assert_eq!(a, b, "same seed, same schedule");
        assert_eq!(rules_a.len(), FaultKind::ALL.len(), "every fault kind is in the mix");
        let mut other = s.clone();
        other.seed += 1;
        assert_ne!(schedule(&other, 1).0, a);
        for (down, up) in [(Action::WifiDown, Action::WifiUp), (Action::BrokerDown, Action::BrokerUp), (Action::SupplyUnplug, Action::SupplyPlug)] {
            let mut open = false;
            for e in a.iter().filter(|e| e.action == down || e.action == up) {
                assert_eq!(e.action == down, !open, "{down:?} outages overlap at {}", e.meter_s);
                open = e.action == down;
            }
            assert!(!open);
        }
        let restarts = a.iter().filter(|e| e.action == Action::BrokerRestart).count();
        assert_eq!(restarts, 7);
        assert!(a.iter().all(|e| e.meter_s <= s.duration.as_secs_f64()));
    }

    #[test]
    fn faults_at_meter_times_become_telegram_indexes() {
        let path = crate::workspace().join("fixtures/scenarios/faults_each_kind.toml");
        let (s, _): (Scenario, String) = crate::toml_file::load(&path).unwrap();
        let (_, rules) = schedule(&s, 1);
        let crc = rules.iter().find(|r| r.kind == FaultKind::CorruptCrc).unwrap();
        assert_eq!((crc.when.offset, crc.when.every, crc.when.limit), (180, 3600, Some(2)));
        let jump = rules.iter().find(|r| r.kind == FaultKind::ClockJump).unwrap();
        assert_eq!(jump.params.seconds, Some(3600));
        // A 10 s meter (DSMR 4): the same times are a tenth of the indexes.
        let (_, rules) = schedule(&s, 10);
        assert_eq!(rules.iter().find(|r| r.kind == FaultKind::CorruptCrc).unwrap().when.offset, 18);
    }
}
