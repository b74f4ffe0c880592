//! Validation of the model against the user's measurement and the acceptance figures.
//! These run the same code as `p1-sim power` (flags → [`cli::config`] → [`run`] → [`cli::summarize`]).

use clap::Parser;

use super::cli::{config, summarize, PowerArgs, Summary};
use super::firmware::run;

#[derive(Parser, Debug)]
struct Cmd {
    #[command(flatten)]
    args: PowerArgs,
}

fn power(flags: &str) -> Summary {
    let argv = std::iter::once("power").chain(flags.split_whitespace());
    let cmd = Cmd::try_parse_from(argv).unwrap_or_else(|e| panic!("flags {flags:?}: {e}"));
    let cfg = config(&cmd.args).unwrap_or_else(|e| panic!("flags {flags:?}: {e:#}"));
    let r = run(&cfg);
    let s = summarize(&cfg, &r);
    eprintln!("p1-sim power {flags}\n{}", serde_json::to_string(&s).unwrap_or_default());
    s
}

#[test]
fn battery_only_seed_loop_lasts_3_to_4_hours() {
    let s = power("--supply none --load seed-loop --cycle 10s --json");
    assert!(s.shutdown, "the battery runs flat within 24 h");
    assert!((3.0..=4.0).contains(&s.runtime_h), "runtime {} h (user measured ~3.5 h)", s.runtime_h);
    assert_eq!(s.trips, 0);
    assert!(s.acin_ma_avg == 0.0);
}

#[test]
fn dsmr5_always_on_with_the_default_policy_never_trips_and_stays_charged() {
    let s = power("--supply dsmr5 --load always-on --interval 1s --duration 24h");
    assert_eq!(s.trips, 0);
    assert_eq!(s.brownouts, 0);
    assert!(s.soc_end > 90.0, "SoC {}", s.soc_end);
    assert!(s.publish_hz > 0.99, "{} Hz", s.publish_hz);
    assert!(s.acin_ma_peak < 250.0, "peak {} mA within the port's rating", s.acin_ma_peak);
    let p = s.power.unwrap_or_default();
    assert_eq!(p["supply"], "strong");
    assert_eq!(p["mode"], "always_on");
}

#[test]
fn dsmr5_from_a_low_battery_recharges_without_trips_after_boot() {
    // A cold AXP192 charges at its 780 mA default until the firmware sets 100 mA: the boot trips
    // the port a few times (the battery rides through), then none.
    let s = power("--supply dsmr5 --load always-on --duration 6h --soc 20");
    assert!(s.trips <= 10, "{} trips", s.trips);
    assert_eq!(s.brownouts, 0);
    assert!(s.soc_end > 90.0, "SoC {}", s.soc_end);
}

#[test]
fn without_the_policy_full_tx_power_and_charging_trip_the_dsmr5_port() {
    let s = power("--supply dsmr5 --load always-on --policy fixed --tx-dbm 20 --duration 1h");
    assert!(s.trips > 1000, "{} trips", s.trips);
    assert!(s.acin_ma_peak > 280.0);
}

#[test]
fn dsmr4_always_on_stays_under_100ma_publishes_at_1hz_and_never_browns_out() {
    let s = power("--supply dsmr4 --load always-on --duration 24h --soc 50");
    assert!(s.acin_ma_avg < 100.0, "avg {} mA", s.acin_ma_avg);
    assert!(s.acin_ma_peak <= 100.0 + 1e-6, "peak {} mA", s.acin_ma_peak);
    assert_eq!(s.brownouts, 0);
    assert!(!s.shutdown);
    assert!(s.publish_hz > 0.99, "{} Hz", s.publish_hz);
    // Full, the AXP192 stops charging and restarts below 4.1 V, so the end SoC sits in 85–100 %.
    assert!(s.soc_min >= 49.0 && s.soc_end > 80.0, "SoC min {} end {}", s.soc_min, s.soc_end);
}

#[test]
fn ble_only_draws_less_and_peaks_lower_than_wifi_at_1hz_and_never_connects_wifi() {
    let wifi = power("--supply dsmr5 --load always-on --interval 1s --duration 1h");
    let ble = power("--supply dsmr5 --load ble-only --interval 1s --duration 1h");
    assert_eq!(ble.wifi_connects, 0);
    assert_eq!(ble.publishes, 0);
    assert!(ble.advert_hz > 0.99);
    assert!(ble.acin_ma_avg < wifi.acin_ma_avg, "{} vs {}", ble.acin_ma_avg, wifi.acin_ma_avg);
    assert!(ble.acin_ma_peak < 0.6 * wifi.acin_ma_peak, "{} vs {}", ble.acin_ma_peak, wifi.acin_ma_peak);
}

#[test]
fn a_strict_meter_trips_a_few_times_then_the_policy_lowers_tx_power() {
    let s = power("--supply omnia --load always-on --duration 6h");
    let fixed = power("--supply omnia --load always-on --policy fixed --duration 1h");
    assert!(s.trips <= 20 && fixed.trips > 1000, "{} vs {}", s.trips, fixed.trips);
    assert_eq!(s.brownouts, 0);
    assert!(s.soc_end > 95.0);
    let p = s.power.unwrap_or_default();
    assert!(p["tx_dbm"].as_i64().unwrap_or(99) < 17, "{p}");
}

#[test]
fn scripted_unplug_runs_on_battery_and_recharges_after() {
    let dir = std::env::temp_dir().join(format!("p1-sim-power-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("unplug.toml");
    std::fs::write(
        &file,
        "[[event]]\nat = \"1h\"\naction = \"unplug\"\n[[event]]\nat = \"4h\"\naction = \"plug\"\n\
         [[event]]\nat = \"5h\"\naction = \"brownout\"\nduration = \"200ms\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = power(&format!("--supply dsmr5 --load always-on --duration 7h --scenario {}", file.display()));
    assert!(s.on_battery_h > 0.1, "{} h on battery", s.on_battery_h);
    // On battery the policy duty-cycles (deep sleep 60 s): about 5 mA instead of 45 mA.
    assert!(s.duty_cycle_h > 2.5, "{} h duty-cycling", s.duty_cycle_h);
    assert!(s.soc_min < 88.0 && s.soc_end > 95.0, "min {} end {}", s.soc_min, s.soc_end);
    assert_eq!(s.brownouts, 0);
    let p = s.power.unwrap_or_default();
    assert_eq!(p["unplugs"], 1, "{p}");
    assert_eq!(p["trips"], 1, "the 200 ms brown-out is a short ACIN loss: {p}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_example_scenario_file_runs() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/src/power/scenarios/unplug-brownout-dsmr4.toml");
    let s = power(&format!("--load always-on --duration 12h --scenario {file}"));
    assert_eq!(s.supply, "dsmr5");
    assert_eq!(s.brownouts, 0);
    assert!(!s.shutdown);
    assert!(s.on_battery_h > 0.05 && s.duty_cycle_h > 2.5);
    let p = s.power.unwrap_or_default();
    assert_eq!(p["unplugs"], 1, "{p}");
    assert_eq!(p["trips"], 2, "brown-out + scripted trip: {p}");
    // On the DSMR 4 port with a full battery the 100 mA limit is never reached, so nothing marks
    // it as limited any more: it carries the gateway like a strong port.
    assert_eq!(p["mode"], "always_on", "{p}");
    assert!(p["acin_mv"].as_i64().unwrap_or(0) < 5000, "DSMR 4 open-circuit 5.0 V, sagging: {p}");
}

#[test]
fn runs_are_deterministic() {
    let a = power("--supply dsmr5 --load both --duration 20m --soc 60");
    let b = power("--supply dsmr5 --load both --duration 20m --soc 60");
    assert_eq!(serde_json::to_string(&a).ok(), serde_json::to_string(&b).ok());
}

#[test]
fn cli_writes_the_svg_plot() {
    let dir = std::env::temp_dir().join(format!("p1-sim-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let svg = dir.join("p.svg");
    let cmd = Cmd::try_parse_from(
        format!("power --supply dsmr4 --load ble-only --duration 30m --json --plot {}", svg.display())
            .split_whitespace(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let code = super::cli::run(cmd.args).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let text = std::fs::read_to_string(&svg).unwrap_or_default();
    assert!(text.starts_with("<svg") && text.contains("ACIN peak"), "{}", &text[..text.len().min(200)]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "exploration: prints a trace"]
fn explore_trace() {
    let flags = std::env::var("FLAGS").unwrap_or_default();
    let argv = std::iter::once("power").chain(flags.split_whitespace());
    let cmd = Cmd::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = config(&cmd.args).unwrap_or_else(|e| panic!("{e:#}"));
    cfg.keep_console = true;
    cfg.trace_step_s = 1.0;
    let r = run(&cfg);
    for l in r.console.iter().take(40) {
        eprintln!("{l}");
    }
    for p in r.trace.iter().take(40) {
        eprintln!("{p:?}");
    }
    eprintln!("{}", serde_json::to_string(&summarize(&cfg, &r)).unwrap_or_default());
}

/// `FLAGS="--supply dsmr5 --load always-on --plot x.svg" cargo test ... cli_from_env -- --ignored`
/// runs `p1-sim power` through the library (for when the binary is not at hand).
#[test]
#[ignore = "tool: runs p1-sim power with $FLAGS"]
fn cli_from_env() {
    let flags = std::env::var("FLAGS").unwrap_or_default();
    let cmd = Cmd::try_parse_from(std::iter::once("power").chain(flags.split_whitespace()))
        .unwrap_or_else(|e| panic!("{e}"));
    super::cli::run(cmd.args).unwrap_or_else(|e| panic!("{e:#}"));
}
