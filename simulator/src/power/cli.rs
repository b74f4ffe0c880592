//! `p1-sim power`: runs the power model and answers "does the P1 port carry the stick?".

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::battery::BatteryParams;
use super::firmware::{run as run_model, LoadProfile, RunConfig, RunResult};
use super::scenario::Scenario;
use super::supply::{Limit, SupplyKind, SupplyParams};

/// Power policy used by the gateway loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyChoice {
    /// The firmware's power policy (`firmware_app::power_policy`, default settings).
    Firmware,
    /// No policy: always-on, charging at --charge-ma throughout, TX at --tx-dbm.
    Fixed,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (write e.g. 10s, 90m, 24h)"))
}

/// Simulate the M5StickC's supply, AXP192, battery and load in virtual time.
///
/// Prints battery state of charge, ACIN (P1 port) current average and peak, meter trips and the
/// runtime (until the stick shuts down, or --duration). Deterministic: the same flags give the
/// same numbers.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    p1-sim power --supply none --load seed-loop --cycle 10s --json\n  \
    p1-sim power --supply dsmr5 --load always-on --duration 24h --plot dsmr5.svg\n  \
    p1-sim power --supply dsmr4 --load ble-only --interval 1s\n  \
    p1-sim power --supply dsmr5 --load always-on --policy fixed --tx-dbm 20")]
pub struct PowerArgs {
    /// The P1 port: dsmr5 (250 mA, trips at 260–300 mA), dsmr4 (100 mA limit), none, omnia
    /// (a strict meter that cuts out on short peaks).
    #[arg(long, value_enum, default_value_t = SupplyKind::Dsmr5)]
    pub supply: SupplyKind,
    /// Charge current asked of the AXP192, mA (rounded down to its steps: 100, 190, 280, ...; 0 = off).
    #[arg(long, default_value_t = 100)]
    pub charge_ma: u16,
    /// What the stick runs: seed-loop (the user's test program: wake, WiFi DHCP, MQTT publish,
    /// deep sleep --cycle), always-on (gateway over WiFi, modem sleep, publish every --interval),
    /// ble-only (BTHome advertisements every --interval, no WiFi), both.
    #[arg(long, value_enum, default_value_t = LoadProfile::SeedLoop)]
    pub load: LoadProfile,
    /// Deep-sleep time per seed-loop cycle.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub cycle: Duration,
    /// Publish / advertising interval of the gateway loads.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Simulated time.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub duration: Duration,
    /// Scripted supply events (TOML: [[event]] at = "2h", action = "unplug" | "plug" | "brownout"
    /// (+ duration) | "trip" | "supply" (+ supply) | "usb-plug" | "usb-unplug").
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Print one JSON summary object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG plot of SoC and currents against time.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Power policy for the gateway loads (the seed loop never has one).
    #[arg(long, value_enum, default_value_t = PolicyChoice::Firmware)]
    pub policy: PolicyChoice,
    /// WiFi TX power for the seed loop and --policy fixed, dBm (Arduino default ≈ 20).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i8).range(0..=21))]
    pub tx_dbm: i8,
    /// LCD (backlight + logic) on while awake.
    #[arg(long)]
    pub lcd: bool,
    /// WiFi with a static IP (0.73 s connect) instead of DHCP (1.6 s).
    #[arg(long)]
    pub static_ip: bool,
    /// USB-C connected to a 5 V supply from the start (VBUS; ACIN has priority when both are there).
    #[arg(long)]
    pub usb: bool,
    /// Battery state of charge at the start, %.
    #[arg(long, default_value_t = 100.0)]
    pub soc: f64,
    /// Battery capacity, mAh (80 nominal; plan for 70–80 on a used cell).
    #[arg(long, default_value_t = 80.0)]
    pub capacity_mah: f64,
    /// Seed for the AXP192 ADC noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the firmware policy's console lines (`t=.. ev=power ...`) every 10 s of virtual time.
    #[arg(long)]
    pub console: bool,
}

/// The summary `--json` prints.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// Port.
    pub supply: String,
    /// Load profile.
    pub load: LoadProfile,
    /// "firmware", "fixed" or "none" (seed loop).
    pub policy: &'static str,
    /// Charge current asked for, mA.
    pub charge_ma: u16,
    /// Simulated time, h.
    pub duration_h: f64,
    /// Until the stick first shut down, or the duration, h.
    pub runtime_h: f64,
    /// The stick shut down (APS below VOFF) at least once.
    pub shutdown: bool,
    /// Meter over-current trips.
    pub trips: u32,
    /// Stick brown-outs (AXP192 power-offs).
    pub brownouts: u32,
    /// SoC at the start, %.
    pub soc_start: f64,
    /// SoC at the end, %.
    pub soc_end: f64,
    /// Lowest SoC, %.
    pub soc_min: f64,
    /// Average ACIN (P1) current, mA.
    pub acin_ma_avg: f64,
    /// Peak ACIN current, mA.
    pub acin_ma_peak: f64,
    /// Average battery current over the runtime, mA (+ discharge, − charge).
    pub battery_ma_avg: f64,
    /// Average 3.3 V load while powered, mA.
    pub load_ma_avg: f64,
    /// Time on the battery alone (no usable ACIN or VBUS) while powered, h.
    pub on_battery_h: f64,
    /// MQTT publishes.
    pub publishes: u64,
    /// Publishes per second of runtime.
    pub publish_hz: f64,
    /// BLE advertising events.
    pub adverts: u64,
    /// Advertising events per second of runtime.
    pub advert_hz: f64,
    /// WiFi connects.
    pub wifi_connects: u64,
    /// ESP32 boots.
    pub boots: u64,
    /// Time in always-on mode, h.
    pub always_on_h: f64,
    /// Time in duty-cycle mode, h.
    pub duty_cycle_h: f64,
    /// Last `<prefix>/<device>/power` payload of the firmware policy.
    pub power: Option<serde_json::Value>,
}

/// Builds the summary of a run.
pub fn summarize(cfg: &RunConfig, r: &RunResult) -> Summary {
    let s = &r.stats;
    let dur = s.t_s.max(1e-9);
    let runtime_s = s.first_shutdown_s.unwrap_or(s.t_s);
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    Summary {
        supply: cfg.supply.to_string(),
        load: cfg.load,
        policy: match (cfg.load, cfg.policy) {
            (LoadProfile::SeedLoop, _) => "none",
            (_, true) => "firmware",
            (_, false) => "fixed",
        },
        charge_ma: cfg.charge_ma,
        duration_h: round(s.t_s / 3600.0, 3),
        runtime_h: round(runtime_s / 3600.0, 3),
        shutdown: s.first_shutdown_s.is_some(),
        trips: r.trips,
        brownouts: s.brownouts,
        soc_start: round(cfg.soc_start * 100.0, 2),
        soc_end: round(r.soc_end * 100.0, 2),
        soc_min: round(s.soc_min * 100.0, 2),
        acin_ma_avg: round(s.acin_mas / dur, 2),
        acin_ma_peak: round(s.acin_peak_ma, 1),
        battery_ma_avg: round(s.battery_mas_at_shutdown.unwrap_or(s.battery_mas) / runtime_s.max(1e-9), 2),
        load_ma_avg: round(s.load_mas / s.powered_s.max(1e-9), 2),
        on_battery_h: round(s.on_battery_s / 3600.0, 3),
        publishes: r.publishes,
        publish_hz: round(r.publishes as f64 / runtime_s.max(1e-9), 4),
        adverts: r.adverts,
        advert_hz: round(r.adverts as f64 / runtime_s.max(1e-9), 4),
        wifi_connects: r.wifi_connects,
        boots: r.boots,
        always_on_h: round(r.always_on_s / 3600.0, 3),
        duty_cycle_h: round(r.duty_cycle_s / 3600.0, 3),
        power: r.power_json.as_deref().and_then(|j| serde_json::from_str(j).ok()),
    }
}

/// Builds the run configuration from the flags (and the scenario file).
pub fn config(args: &PowerArgs) -> anyhow::Result<RunConfig> {
    anyhow::ensure!((0.0..=100.0).contains(&args.soc), "--soc {}: must be 0..=100", args.soc);
    anyhow::ensure!(args.capacity_mah > 0.0, "--capacity-mah {}: must be > 0", args.capacity_mah);
    anyhow::ensure!(!args.interval.is_zero(), "--interval must be > 0");
    let mut cfg = RunConfig::new(args.supply, args.load);
    if let Some(path) = &args.scenario {
        let sc = Scenario::load(path).with_context(|| format!("scenario {}", path.display()))?;
        if let Some(k) = sc.supply {
            cfg.supply = k;
        }
        cfg.events = sc.events;
    }
    cfg.charge_ma = args.charge_ma;
    cfg.cycle_s = args.cycle.as_secs_f64();
    cfg.interval_s = args.interval.as_secs_f64();
    cfg.duration_s = args.duration.as_secs_f64();
    cfg.policy = args.policy == PolicyChoice::Firmware && args.load != LoadProfile::SeedLoop;
    cfg.policy_config.charge_ma = args.charge_ma;
    cfg.lcd = args.lcd;
    cfg.static_ip = args.static_ip;
    cfg.tx_dbm = args.tx_dbm;
    cfg.soc_start = args.soc / 100.0;
    if args.usb {
        cfg.events.insert(0, (0.0, super::engine::SupplyAction::Usb(true)));
    }
    cfg.battery = BatteryParams { capacity_mah: args.capacity_mah, ..BatteryParams::default() };
    cfg.seed = args.seed;
    cfg.keep_console = args.console;
    // About 1500 points whatever the duration, never finer than 1 s.
    cfg.trace_step_s = (cfg.duration_s / 1500.0).max(1.0);
    Ok(cfg)
}

/// Runs `p1-sim power`.
pub fn run(args: PowerArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(&args)?;
    let r = run_model(&cfg);
    let sum = summarize(&cfg, &r);
    if let Some(path) = &args.plot {
        let title = format!(
            "{} · {} · charge {} mA · {}",
            cfg.supply,
            serde_json::to_value(cfg.load).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            cfg.charge_ma,
            sum.policy
        );
        let mut limits = Vec::new();
        if let Some(p) = SupplyParams::for_kind(cfg.supply) {
            limits.push(("port rating", p.i_cont_ma));
            if let Limit::Trip { trip_ma, .. } = p.limit {
                limits.push(("trip threshold", trip_ma));
            }
        }
        super::plot::write_svg(path, &title, &r.trace, &limits)
            .with_context(|| format!("writing plot {}", path.display()))?;
    }
    if args.console {
        for l in &r.console {
            println!("{l}");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&sum).context("serializing the summary")?);
    } else {
        print_text(&sum);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(s: &Summary) {
    println!(
        "p1-sim power: supply={} load={} policy={} charge={} mA, {:.2} h simulated",
        s.supply,
        serde_json::to_value(s.load).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        s.policy,
        s.charge_ma,
        s.duration_h
    );
    let end = if s.shutdown { "then the stick shut down: APS < 3.0 V" } else { "no shutdown" };
    println!("  runtime        {:.2} h ({end})", s.runtime_h);
    println!("  battery SoC    {:.1} % -> {:.1} % (min {:.1} %)", s.soc_start, s.soc_end, s.soc_min);
    println!("  ACIN (P1)      avg {:.1} mA, peak {:.1} mA", s.acin_ma_avg, s.acin_ma_peak);
    println!("  battery        avg {:+.1} mA (+ = discharge), {:.2} h on the battery alone", s.battery_ma_avg, s.on_battery_h);
    println!("  trips          {} meter trips, {} stick brown-outs", s.trips, s.brownouts);
    println!(
        "  radio          {} MQTT publishes ({:.3} Hz), {} BLE adverts ({:.3} Hz), {} WiFi connects, {} boots",
        s.publishes, s.publish_hz, s.adverts, s.advert_hz, s.wifi_connects, s.boots
    );
    if s.always_on_h > 0.0 || s.duty_cycle_h > 0.0 {
        println!("  modes          always-on {:.2} h, duty-cycle {:.2} h", s.always_on_h, s.duty_cycle_h);
    }
}
