//! Scenarios on a bench rig, in real time: the meter is a USB-UART (data request read from a modem
//! line), the device is the flashed board (its console comes from the rig's console port), MQTT
//! goes through an embedded broker on the LAN or an external one. Power comes from the device's
//! own AXP192 console lines and is compared within the scenario's `rig_tolerance`. Events that
//! only a virtual device supports (WiFi, supply, pty) make a scenario ignored on a rig, with the
//! reason.

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use simulator::run::{DataRequest, RunOptions, Speed};
use simulator::{FaultPlan, Meter, Profile};
use tokio::sync::mpsc;

use crate::broker::BrokerChild;
use crate::capture::Capture;
use crate::console::Line;
use crate::expect::RunFacts;
use crate::observe::{Ledger, Observer};
use crate::report::Attempt;
use crate::rig::{Resolved, Rig};
use crate::scenario::{Action, Loaded, PowerBounds};
use crate::sim::{self, Recorded, World};
use crate::SuiteOpts;

/// Why a scenario cannot run on a rig, if it cannot.
pub fn unsupported(sc: &Loaded, rig: &Rig) -> Option<String> {
    let (events, _) = sim::schedule(&sc.scenario, 1);
    for e in events {
        let ok = match e.action {
            Action::BrokerDown | Action::BrokerUp => false,
            Action::BrokerRestart => rig.broker.kind == "embedded",
            Action::P1Unplug | Action::P1Plug => false,
            _ => false,
        };
        if !ok {
            return Some(format!("`{}` needs the virtual device (or a rig with a switchable supply/WiFi)", e.action.name()));
        }
    }
    None
}

/// Widens power bounds by the rig tolerance: a real AXP192 reads its ADCs with error.
pub fn tolerant(p: &PowerBounds) -> PowerBounds {
    let t = p.rig_tolerance;
    PowerBounds {
        acin_ma_peak_max: p.acin_ma_peak_max.map(|v| v * (1.0 + t)),
        soc_min: p.soc_min.map(|v| (v - 100.0 * t).max(0.0)),
        soc_max: p.soc_max.map(|v| (v + 100.0 * t).min(100.0)),
        ..p.clone()
    }
}

pub fn run(rig: Rig, ports: Resolved, console: mpsc::UnboundedReceiver<Line>, dir: std::path::PathBuf, scenarios: Vec<Loaded>, opts: &SuiteOpts) -> anyhow::Result<ExitCode> {
    let mut runnable = Vec::new();
    for sc in scenarios {
        match unsupported(&sc, &rig) {
            Some(why) => eprintln!("note: {} is not run on a rig: {why}", sc.name),
            None => runnable.push(sc),
        }
    }
    let rt = Arc::new(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?);
    let console = Arc::new(Mutex::new(console));
    let hil_exe = std::env::current_exe()?;
    let snapshot_dir = crate::workspace().join("hil/snapshots");
    let exec: crate::runner::Exec = Arc::new(move |sc, _attempt| {
        let console = console.clone();
        rt.block_on(attempt(sc, &rig, &ports, console, &hil_exe, &snapshot_dir))
    });
    crate::runner::run_suite("rig", &dir, runnable, opts, exec, &[])
}

async fn attempt(sc: &Loaded, rig: &Rig, ports: &Resolved, console: Arc<Mutex<mpsc::UnboundedReceiver<Line>>>, hil_exe: &Path, snapshot_dir: &Path) -> Attempt {
    let t0 = Instant::now();
    let mut scenario = sc.clone();
    scenario.scenario.speed = 1.0;
    if let Some(p) = &scenario.scenario.expect.power {
        scenario.scenario.expect.power = Some(tolerant(p));
    }
    let root = format!("{}/{}/", rig.device.prefix, rig.device.id);
    let mut forbid = vec!["panic".to_string()];
    forbid.extend(scenario.scenario.expect.console_forbid.iter().cloned());
    let world = Arc::new(Mutex::new(World {
        obs: Observer::new(root, forbid, scenario.scenario.expect.console_require.clone()),
        ledger: Ledger::default(),
        meter_done: None,
        slot_of: Vec::new(),
    }));
    let mut facts = RunFacts::default();
    let timeout = scenario.wall_timeout();
    match tokio::time::timeout(timeout, body(&scenario, rig, ports, console, hil_exe, world.clone(), &mut facts)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => facts.harness_errors.push(format!("{e:#}")),
        Err(_) => facts.harness_errors.push(format!("scenario did not finish within {timeout:?}")),
    }
    facts.wall_s = t0.elapsed().as_secs_f64();
    let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
    let World { obs, ledger, .. } = &mut *w;
    obs.classify_duplicates(ledger);
    // A real board booted before the scenario: its boot line is not part of this run.
    if obs.boots.is_empty() {
        obs.boots.push("(booted before the scenario)".into());
    }
    let env = sim::Env {
        device_exe: Default::default(),
        hil_exe: hil_exe.to_path_buf(),
        work_dir: Default::default(),
        snapshot_dir: snapshot_dir.to_path_buf(),
        sabotage: None,
        progress: true,
        login: None,
    };
    sim::finish(&scenario, &env, &w, facts, t0.elapsed())
}

async fn body(
    sc: &Loaded,
    rig: &Rig,
    ports: &Resolved,
    console: Arc<Mutex<mpsc::UnboundedReceiver<Line>>>,
    hil_exe: &Path,
    world: Arc<Mutex<World>>,
    facts: &mut RunFacts,
) -> anyhow::Result<()> {
    let s = &sc.scenario;
    let profile = Profile::load(&s.profile).map_err(|e| anyhow::anyhow!("{e}"))?;
    let interval_s = profile.interval_s;
    let (_, rules) = sim::schedule(s, interval_s);
    let start = chrono::Utc::now();
    let meter = Meter::new(profile, s.seed, start).with_faults(FaultPlan { seed: Some(s.seed), rules }, s.seed);

    let (broker, capture_port, capture_host) = match rig.broker.kind.as_str() {
        "embedded" => {
            let listen: std::net::SocketAddr = rig.broker.listen.as_deref().unwrap_or("0.0.0.0:1883").parse()?;
            let b = BrokerChild::start_on(hil_exe, listen.ip(), listen.port(), Duration::from_secs(10)).await?;
            (Some(b), listen.port(), "127.0.0.1".to_string())
        }
        _ => {
            let url = rig.broker.url.as_deref().unwrap_or_default();
            let hostport = url.trim_start_matches("mqtt://");
            let (h, p) = hostport.rsplit_once(':').context("broker.url needs HOST:PORT")?;
            (None, p.parse()?, h.to_string())
        }
    };
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel();
    let capture = Capture::start_host(&capture_host, capture_port, &format!("hil-rig-{}", sc.name), msg_tx);
    capture.wait_subscribed(0, Duration::from_secs(15)).await?;

    // The device must reconnect to this broker before the meter starts.
    let w2 = world.clone();
    let folder = tokio::spawn(async move {
        while let Some(m) = msg_rx.recv().await {
            let mut w = w2.lock().unwrap_or_else(|p| p.into_inner());
            let World { obs, ledger, .. } = &mut *w;
            obs.message(&m, ledger);
        }
    });
    let w3 = world.clone();
    let console_task = tokio::task::spawn_blocking(move || {
        loop {
            let line = {
                let mut rx = console.lock().unwrap_or_else(|p| p.into_inner());
                rx.try_recv()
            };
            match line {
                Ok(l) => {
                    let vanished = l.text.starts_with("hil: console port vanished");
                    w3.lock().unwrap_or_else(|p| p.into_inner()).obs.line(&l);
                    if vanished {
                        return Some(l.text);
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return Some("console reader stopped".to_string()),
                Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(10)),
            }
            if Arc::strong_count(&w3) == 1 {
                return None;
            }
        }
    });

    let port = tokio_serial::SerialStream::open(&tokio_serial::new(&ports.meter, rig.meter.baud))
        .with_context(|| format!("opening the meter port {}", ports.meter))?;
    let dr = DataRequest::new(rig.meter.data_request == "none");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = if rig.meter.data_request == "none" {
        None
    } else {
        // The modem-status input is read through a second handle of the same port, polled every
        // 5 ms (well inside a 1 s telegram interval).
        let mut status = tokio_serial::SerialPort::try_clone(&port).context("second handle on the meter port for data request")?;
        let which = rig.meter.data_request.clone();
        let (dr, stop) = (dr.clone(), stop.clone());
        Some(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let level = match which.as_str() {
                    "cts" => status.read_clear_to_send(),
                    "dsr" => status.read_data_set_ready(),
                    _ => status.read_carrier_detect(),
                };
                match level {
                    Ok(v) => dr.set(v),
                    Err(_) => return,
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }))
    };
    let opts = RunOptions { speed: Speed::Factor(1.0), duration: Some(chrono::Duration::milliseconds(s.duration.0.as_millis() as i64)), pace_bytes: true, ..RunOptions::default() };
    let mut line = port;
    let w4 = world.clone();
    let dr2 = dr.clone();
    let meter_task = tokio::spawn(async move {
        let mut source = Recorded { meter, world: w4.clone(), start: None, throttle: None, held: std::time::Duration::ZERO, unplugged: Vec::new() };
        let r = simulator::run::run(&mut source, &mut line, &opts, &dr2, |tg, skipped| {
            let at = Instant::now();
            let mut w = w4.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(idx) = sim::source_slot(&w, tg.index) {
                w.ledger.written(idx, at, skipped, tg.bytes.is_empty());
            }
        })
        .await;
        w4.lock().unwrap_or_else(|p| p.into_inner()).ledger.close();
        (r, source.meter.fault_counts().clone())
    });
    let r = meter_task.await;
    match r {
        Ok((Ok(summary), counts)) => {
            let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
            w.ledger.injected = counts.0.iter().map(|(k, n)| (k.name().to_string(), *n)).collect();
            w.meter_done = Some(Instant::now());
            facts.meter_s = summary.meter_end.zip(summary.meter_start).map_or(0.0, |(e, s)| (e - s).num_milliseconds() as f64 / 1000.0);
        }
        Ok((Err(e), _)) => anyhow::bail!("the meter port failed: {e}"),
        Err(e) => anyhow::bail!("meter task failed: {e}"),
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(p) = poller {
        let _ = tokio::task::spawn_blocking(move || p.join()).await;
    }
    // Real time: the last reading needs a moment to come back over WiFi.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(capture);
    if let Some(mut b) = broker {
        b.stop().await;
    }
    folder.abort();
    if console_task.is_finished()
        && let Ok(Some(why)) = console_task.await
    {
        anyhow::bail!("{why}");
    }
    Ok(())
}
