//! `cargo hil`: runs scenarios (`fixtures/scenarios/*.toml`) against the virtual M5StickC (`sim`)
//! or a bench rig (`run --rig`), with MQTT capture, expectations, insta snapshots, JUnit and HTML
//! reports. `cargo hil` with no arguments runs the default suite against the virtual device.

mod broker;
mod credentials;
mod capture;
mod console;
mod device;
mod doctor;
mod duration;
mod expect;
mod observe;
mod oracle;
mod proxy;
mod quarantine;
mod record;
mod report;
mod rig;
mod rigrun;
mod runner;
mod scenario;
mod selftest;
mod shard;
mod sim;
mod toml_file;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Scenarios against the virtual M5StickC or a bench rig: meter in, MQTT out, checked.
#[derive(Debug, Parser)]
#[command(name = "cargo hil", bin_name = "cargo hil", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios against the virtual M5StickC in virtual time (no hardware).
    Sim(SimCmd),
    /// Run scenarios on a bench rig: flash, reset, wait for boot, then the same scenarios in real time.
    Run(rig::RunCmd),
    /// List the scenarios (name, meter time, speed, tags, quarantine).
    List(ListCmd),
    /// Check this machine: serial ports, probes, toolchains, espflash; says what is missing.
    Doctor(doctor::DoctorCmd),
    /// Capture a real meter's telegrams from a serial port into a replay recording.
    Record(record::RecordCmd),
    /// Harness self-tests: a device that dies, a pty that closes, a taken broker port, a vanished
    /// serial port; each must end as a failure with the last lines shown, within its timeout.
    Selftest(selftest::SelftestCmd),
    /// (internal) Serve MQTT on 127.0.0.1:PORT until stdin closes; used for broker restarts.
    #[command(hide = true)]
    Broker {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Admit only the users in this file (`user password` per line).
        #[arg(long)]
        auth_file: Option<std::path::PathBuf>,
    },
}

/// Options shared by `sim` and `run`.
#[derive(Debug, Clone, Args)]
pub struct SuiteOpts {
    /// Only scenarios whose name contains FILTER (as `cargo test FILTER`); one left out of the
    /// default suite (the soak) runs when FILTER is exactly its name.
    pub filter: Option<String>,
    /// Run a failed scenario up to N more times; a pass on retry is reported as flaky.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retry: u32,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write an HTML report with power and latency plots here (default target/hil/report.html).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Run only shard I of N (scenario k goes to shard k mod N + 1), for CI matrices and rig farms.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<shard::Shard>,
    /// Scenario directory.
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Quarantine list (default: quarantine.toml in the scenario directory).
    #[arg(long, value_name = "FILE")]
    pub quarantine: Option<PathBuf>,
    /// Scenarios run at once (default 1, so latency figures are not skewed by each other).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Arguments for the libtest-style runner after `--` (e.g. `--exact`, `--skip X`, `--list`, `--include-ignored`).
    #[arg(last = true)]
    pub libtest: Vec<String>,
}

#[derive(Debug, Args)]
struct SimCmd {
    #[command(flatten)]
    suite: SuiteOpts,
    /// The virtual-m5stickc binary (default: $HIL_DEVICE, else built with cargo next to this one).
    #[arg(long, value_name = "PATH")]
    device: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ListCmd {
    /// Scenario directory.
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
}

/// The workspace root (scenarios, snapshots and `target/` are found from here).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

fn main() -> ExitCode {
    // Snapshot mismatches are reported as failures with insta's diff; a backtrace adds nothing.
    std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Sim(SimCmd {
        suite: SuiteOpts {
            filter: None,
            retry: 0,
            junit: None,
            html: None,
            shard: None,
            scenarios: None,
            quarantine: None,
            jobs: None,
            libtest: Vec::new(),
        },
        device: None,
    }));
    let result = match command {
        Command::Sim(c) => runner::sim(&c.suite, c.device.as_deref()),
        Command::List(c) => runner::list(c.scenarios.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Doctor(c) => c.run(),
        Command::Record(c) => c.run().map(|()| ExitCode::SUCCESS),
        Command::Selftest(c) => c.run(),
        Command::Run(c) => c.run(),
        Command::Broker { port, host, auth_file } => broker::serve(host, port, auth_file.as_deref()).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
