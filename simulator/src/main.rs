//! `p1-sim`: a P1 smart-meter simulator (Iskra AM550-TD2 by default) for gateways and parsers.
//!
//! Telegram bytes go to a pty, a serial port, a TCP server, stdout or a file; progress and the
//! summary go to stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use simulator::clock;
use simulator::faults::FaultPlan;
use simulator::meter::Meter;
use simulator::profile::{DEFAULT_PROFILE, Profile};
use simulator::replay::Replay;
use simulator::run::{self, DataRequest, RunOptions, RunSummary, Speed};
use simulator::sinks::{self, ModemLine, PtySink, TcpFanout};
use tokio::io::AsyncWrite;

#[derive(Parser, Debug)]
#[command(name = "p1-sim", version, about = "A P1 smart-meter simulator: seeded meter model, faults, real or virtual time, data request", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a meter (or a fleet) and send its telegrams to a sink.
    Run(RunArgs),
    /// List the built-in meter profiles.
    Profiles(ProfilesArgs),
    /// Decode telegrams (files or stdin) to one JSON object per telegram.
    Decode(simulator::decode::DecodeArgs),
    /// The P1 supply / AXP192 / LiPo power model.
    Power(simulator::power::cli::PowerArgs),
    /// Print performance figures: render rate, a 1000-meter TCP fleet, real-time jitter.
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("sink").required(true).args(["pty", "serial", "tcp", "stdout", "file"])))]
struct RunArgs {
    /// Profile name (see `p1-sim profiles`) or path to a profile TOML file.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Create a pseudo-terminal; its device path is the FIRST line on stdout (one per meter).
    #[arg(long)]
    pty: bool,
    /// Write to this serial device (e.g. /dev/ttyUSB0) with the profile's line settings.
    #[arg(long, value_name = "DEV")]
    serial: Option<String>,
    /// Serve telegrams over TCP on ADDR (e.g. 127.0.0.1:2001; port 0 picks one) to any number of
    /// clients; the bound address is the first line on stdout. With --meters N, ports ADDR..ADDR+N-1.
    #[arg(long, value_name = "ADDR")]
    tcp: Option<String>,
    /// Write telegram bytes to stdout (and nothing else).
    #[arg(long)]
    stdout: bool,
    /// Write telegram bytes to a file.
    #[arg(long, value_name = "F")]
    file: Option<PathBuf>,
    /// Time scale: a factor (1 = real time, 10 = ten times faster) or `max` (virtual time: as fast
    /// as the sink accepts, one interval of meter time per telegram).
    #[arg(long, default_value = "1")]
    speed: Speed,
    /// Seed for the household, the meter's history and the faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many telegram slots.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this much meter time: `90s`, `15m`, `2h`, `7d` or plain seconds.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<chrono::Duration>,
    /// Meter clock at the first telegram: RFC 3339 or local wall time in the profile's zone
    /// (`2026-10-25T02:59:30`). Default: now.
    #[arg(long)]
    start: Option<String>,
    /// Scenario TOML with seeded, scheduled faults (see the crate docs, `faults` module).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Replay recorded telegram files (with their original timing) instead of the meter model.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    replay: Vec<PathBuf>,
    /// Loop the replay.
    #[arg(long, requires = "replay")]
    replay_loop: bool,
    /// Run N independent meters (seeds seed..seed+N-1): one TCP port or one pty each.
    #[arg(long, default_value_t = 1, value_name = "N")]
    meters: usize,
    /// Initial data-request state. Change it at run time with `dr on`, `dr off` or `dr toggle`
    /// lines on stdin (pty, TCP, stdout and file sinks).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    dr: String,
    /// On --serial: read data request from this modem-status input of the adapter instead of
    /// stdin. Bench wiring: gateway DR output -> (opto/level shifter) -> adapter CTS/DSR/DCD; the
    /// adapter's TX -> gateway RX (inverted as the P1 line is, if the gateway expects that).
    #[arg(long, value_enum)]
    dr_line: Option<ModemLine>,
    /// AM550 quirk: while data request is held, repeat the telegram back to back until the next
    /// one is due (default: the profile's setting).
    #[arg(long)]
    continuous_stream: bool,
    /// Write each telegram at once instead of pacing bytes at the baud.
    #[arg(long)]
    no_pace: bool,
    /// Use tokio's 1 ms timer only. By default a single meter sleeps the last 3 ms before each
    /// telegram with an OS high-resolution sleep plus a 150 us spin, for sub-millisecond start
    /// accuracy (fleets always use the coarse timer). For the best figures also run under
    /// `chrt -f 50` so other processes cannot preempt the meter.
    #[arg(long)]
    coarse_timing: bool,
    /// Progress line on stderr every SECS seconds (0: off).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    progress: u64,
    /// Print each telegram's typed record (what was sent) as JSON lines to this file.
    #[arg(long, value_name = "F")]
    record: Option<PathBuf>,
    /// Also write the final summary (counts, faults per kind, lateness) as JSON to this file.
    #[arg(long, value_name = "F")]
    summary_json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ProfilesArgs {
    /// Also print each profile's objects.
    #[arg(long)]
    verbose: bool,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Which figure: render, fleet, jitter or all.
    #[arg(default_value = "all", value_parser = ["render", "fleet", "jitter", "all"])]
    what: String,
    /// Fleet size.
    #[arg(long, default_value_t = 1000)]
    meters: usize,
    /// Fleet seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds per profile for the render figure.
    #[arg(long, default_value_t = 1.0)]
    render_seconds: f64,
    /// Telegrams for the jitter figure.
    #[arg(long, default_value_t = 200)]
    jitter_count: u64,
    /// Speed factor for the jitter figure (10: 100 ms intervals).
    #[arg(long, default_value_t = 10.0)]
    jitter_speed: f64,
}

impl RunArgs {
    fn speed_factor(&self) -> f64 {
        match self.speed {
            Speed::Factor(k) => k,
            Speed::Max => 1.0,
        }
    }
}

fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration like 90s, 15m, 2h, 7d"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (s, m, h, d)")),
    };
    Ok(chrono::Duration::milliseconds((secs * 1000.0) as i64))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Profiles(a) => profiles(a).map(|_| ExitCode::SUCCESS),
        Cmd::Decode(a) => simulator::decode::run(a),
        Cmd::Power(a) => simulator::power::cli::run(a),
        Cmd::Run(a) => runtime().and_then(|rt| rt.block_on(run_cmd(a))).map(|_| ExitCode::SUCCESS),
        Cmd::Bench(a) => runtime().and_then(|rt| rt.block_on(bench(a))).map(|_| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("p1-sim: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")
}

fn profiles(a: ProfilesArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for p in Profile::builtins()? {
        writeln!(
            out,
            "{:<20} {:<13} {} every {}s, {}-phase, CRC {:?}, header /{}\n{:<20} {}",
            p.name,
            p.version,
            p.line,
            p.interval_s,
            p.phases,
            p.crc,
            p.header,
            "",
            p.description
        )?;
        for q in &p.quirks {
            writeln!(out, "{:<20} quirk: {q}", "")?;
        }
        if a.verbose {
            for o in &p.objects {
                writeln!(out, "{:<22} {:<12} {:?}", "", o.obis, o.value)?;
            }
        }
    }
    Ok(())
}

fn stdin_control(dr: DataRequest) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            match line.trim() {
                "dr on" => dr.set(true),
                "dr off" => dr.set(false),
                "dr toggle" => dr.set(!dr.is_asserted()),
                "" => continue,
                other => {
                    eprintln!("p1-sim: unknown control `{other}` (dr on | dr off | dr toggle)");
                    continue;
                }
            }
            eprintln!("p1-sim: data request {}", if dr.is_asserted() { "asserted" } else { "released" });
        }
    });
}

async fn run_cmd(a: RunArgs) -> Result<()> {
    let profile = Profile::load(&a.profile)?;
    let plan = match &a.scenario {
        Some(p) => FaultPlan::load(p)?,
        None => FaultPlan::default(),
    };
    let start = match &a.start {
        Some(s) => clock::parse_start(profile.zone, s)
            .with_context(|| format!("--start `{s}`: not RFC 3339 or a valid local time in {}", profile.timezone))?,
        None => {
            let now = Utc::now();
            let iv = profile.interval_s as i64;
            let ts = now.timestamp();
            chrono::DateTime::from_timestamp(ts - ts.rem_euclid(iv) + iv, 0).unwrap_or(now)
        }
    };
    if a.meters == 0 {
        bail!("--meters must be at least 1");
    }
    if a.meters > 1 && !(a.pty || a.tcp.is_some()) {
        bail!("--meters N needs --tcp (one port per meter) or --pty (one pty per meter)");
    }
    if a.dr_line.is_some() && a.serial.is_none() {
        bail!("--dr-line applies to --serial only; on other sinks use `dr on|off` lines on stdin");
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let opts = RunOptions {
        speed: a.speed,
        count: a.count,
        duration: a.duration,
        pace_bytes: !a.no_pace,
        pace_tick: Duration::from_millis(if a.meters > 1 { 8 } else { 2 }),
        precise: a.meters == 1 && !a.coarse_timing,
        continuous_stream: a.continuous_stream || profile.continuous_stream,
        progress: (a.progress > 0).then(|| Duration::from_secs(a.progress)),
        stop: Some(stop),
        phase: Duration::ZERO,
    };
    let dr = DataRequest::new(a.dr == "on");
    let mut record = match &a.record {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("{}", p.display()))?)),
        None => None,
    };

    // Sinks, one per meter.
    let mut sinks: Vec<Box<dyn AsyncWrite + Unpin + Send>> = Vec::new();
    let mut announce = Vec::new();
    if a.pty {
        for _ in 0..a.meters {
            let p = PtySink::open().context("creating a pseudo-terminal")?;
            announce.push(p.path().to_owned());
            sinks.push(Box::new(p));
        }
    } else if let Some(addr) = &a.tcp {
        let base: std::net::SocketAddr = addr.parse().with_context(|| format!("--tcp `{addr}`: not HOST:PORT"))?;
        for i in 0..a.meters {
            let mut sa = base;
            if base.port() != 0 {
                sa.set_port(base.port().checked_add(i as u16).context("--tcp: port range overflows")?);
            }
            let f = TcpFanout::bind(&sa.to_string()).await.with_context(|| format!("binding TCP {sa}"))?;
            announce.push(f.local_addr().to_string());
            sinks.push(Box::new(f));
        }
    } else if let Some(dev) = &a.serial {
        let port = sinks::open_serial(dev, profile.line).with_context(|| format!("opening serial port {dev}"))?;
        if let Some(line) = a.dr_line {
            sinks::watch_modem_line(dev, line, dr.clone()).with_context(|| format!("{dev}: modem status"))?;
            eprintln!("p1-sim: data request follows {line:?} on {dev}");
        }
        sinks.push(Box::new(port));
    } else if a.stdout {
        sinks.push(Box::new(tokio::io::BufWriter::with_capacity(1 << 16, tokio::io::stdout())));
    } else if let Some(f) = &a.file {
        let file = tokio::fs::File::create(f).await.with_context(|| format!("creating {}", f.display()))?;
        sinks.push(Box::new(tokio::io::BufWriter::with_capacity(1 << 16, file)));
    }
    if !announce.is_empty() {
        let mut out = std::io::stdout().lock();
        for l in &announce {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
    }
    if a.serial.is_none() || a.dr_line.is_none() {
        stdin_control(dr.clone());
    }
    eprintln!(
        "p1-sim: {} ({}), {} meter(s), seed {}, speed {:?}, start {}",
        profile.name,
        profile.line,
        a.meters,
        a.seed,
        a.speed,
        profile.zone.local(start).to_rfc3339()
    );

    let mut total = RunSummary::default();
    if !a.replay.is_empty() {
        let mut src = Replay::from_files(&a.replay, profile.line, profile.interval_s, a.replay_loop)?;
        let mut sink = sinks.pop().context("no sink")?;
        total = run::run(&mut src, &mut sink, &opts, &dr, |_, _| {}).await?;
    } else if sinks.len() == 1 {
        let mut meter = Meter::new(profile, a.seed, start).with_faults(plan, a.seed);
        let mut sink = sinks.pop().context("no sink")?;
        total = run::run(&mut meter, &mut sink, &opts, &dr, |t, skipped| {
            if let Some(r) = record.as_mut() {
                let _ = serde_json::to_writer(&mut *r, &RecordLine { index: t.index, skipped, intact: t.intact, faults: &t.faults, sent: &t.sent });
                let _ = r.write_all(b"\n");
            }
        })
        .await?;
    } else {
        let mut tasks = Vec::new();
        for (i, mut sink) in sinks.into_iter().enumerate() {
            let seed = a.seed + i as u64;
            let mut meter = Meter::new(profile.clone(), seed, start).with_faults(plan.clone(), seed);
            let phase = Duration::from_secs_f64(f64::from(profile.interval_s) / a.speed_factor() * i as f64 / a.meters as f64);
            let opts = RunOptions { progress: None, phase, precise: false, ..opts.clone() };
            let dr = dr.clone();
            tasks.push(tokio::spawn(async move { run::run(&mut meter, &mut sink, &opts, &dr, |_, _| {}).await }));
        }
        let mut samples = Vec::new();
        for t in tasks {
            let s = t.await.context("meter task")??;
            total.slots += s.slots;
            total.telegrams += s.telegrams;
            total.bytes += s.bytes;
            total.dr_skipped += s.dr_skipped;
            total.repeats += s.repeats;
            total.faults.merge(&s.faults);
            total.wall_s = total.wall_s.max(s.wall_s);
            total.meter_start = total.meter_start.or(s.meter_start);
            total.meter_end = total.meter_end.max(s.meter_end);
            samples.extend(s.lateness_samples_us);
        }
        total.lateness = run::Lateness::from_samples(samples);
    }
    if let Some(mut r) = record {
        r.flush()?;
    }
    if let Some(p) = &a.summary_json {
        std::fs::write(p, serde_json::to_vec_pretty(&total)?).with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!("p1-sim: summary: {total}");
    for (k, v) in &total.faults.0 {
        eprintln!("p1-sim: fault {k:<18} {v}");
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct RecordLine<'a> {
    index: u64,
    skipped: bool,
    intact: bool,
    faults: &'a [simulator::FaultKind],
    sent: &'a simulator::Sent,
}

fn print_load() {
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("  (load average while measuring: {})", l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    }
}

async fn bench(a: BenchArgs) -> Result<()> {
    let all = a.what == "all";
    let am550 = Profile::load(DEFAULT_PROFILE)?;
    if all || a.what == "render" {
        let profiles = Profile::builtins()?;
        let figures = tokio::task::spawn_blocking(move || simulator::bench::render(&profiles, a.render_seconds)).await?;
        println!("render (model step + dsmr writer + CRC, one thread):");
        for f in figures {
            println!(
                "  {:<20} {:>5} B  {:>9.0} telegrams/s wall  {:>9.0} telegrams/s per CPU-second  {:>6.1} MB/s",
                f.profile,
                f.bytes,
                f.per_s,
                f.per_cpu_s.unwrap_or(f64::NAN),
                f.mb_per_s
            );
        }
        print_load();
    }
    if all || a.what == "jitter" {
        for precise in [false, true] {
            let l = simulator::bench::jitter(&am550, a.jitter_count, a.jitter_speed, precise).await?;
            println!(
                "jitter (1 meter, speed {}x, {} telegrams, precise={precise}): start lateness p50 {} us, p99 {} us, max {} us",
                a.jitter_speed, l.count, l.p50_us, l.p99_us, l.max_us
            );
        }
    }
    if all || a.what == "jitter" {
        print_load();
    }
    if all || a.what == "fleet" {
        let f = simulator::bench::fleet(&am550, a.meters, a.seconds).await?;
        println!(
            "fleet ({} meters at 1 Hz over loopback TCP, paced at 115200 baud, {:.1} s): {} telegrams, {} bytes received, CPU {:.1}% of one core ({} cores), start lateness p50 {} us, p99 {} us, max {} us",
            f.meters,
            f.seconds,
            f.telegrams,
            f.bytes_received,
            f.cpu_share * 100.0,
            f.cores,
            f.lateness.p50_us,
            f.lateness.p99_us,
            f.lateness.max_us
        );
        print_load();
    }
    Ok(())
}
