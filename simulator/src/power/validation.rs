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
#[ignore = "exploration: prints summaries"]
fn explore() {
    for f in [
        "--supply dsmr5 --load always-on --duration 24h",
        "--supply dsmr5 --load always-on --duration 24h --soc 20",
        "--supply dsmr5 --load always-on --policy fixed --duration 2h",
        "--supply dsmr4 --load always-on --duration 24h --soc 50",
        "--supply dsmr5 --load ble-only --duration 2h",
        "--supply dsmr4 --load ble-only --duration 24h --soc 50",
        "--supply omnia --load always-on --duration 24h",
        "--supply none --load always-on --duration 24h",
        "--supply dsmr5 --load seed-loop --duration 24h --soc 10",
    ] {
        power(f);
    }
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
