//! The gateway: the P1 reader, the MQTT publisher with store-and-forward, and the power sampler,
//! as one future (`join` of three loops sharing state through a `RefCell`; no task spawning).

use core::cell::RefCell;
use core::fmt::Write as _;

use embassy_futures::join::join4;
use embassy_futures::select::{select, select4, Either, Either4};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embedded_hal::digital::OutputPin;
use embedded_io_async::{Read, Write};
use heapless::{Deque, Vec};

use crate::config::Config;
use crate::console::Line;
use crate::mqtt::{self, Decoded, Packet};
use crate::p1::{convert, P1Event, P1Reader, TELEGRAM_MAX};
use crate::payload::{self, Diag, DEFAULT_PRESENT_MASK};
use crate::policy::{Backoff, PublishPolicy};
use crate::reading::{Reading, FIELDS};
use crate::bthome;
use crate::power_policy::{BootCause, PowerConfig, PowerPolicy, RadioActivity, SupplyEvents};
use crate::seams::{Clock, Connector, Console, Link, LoadState, NetError, NoRadio, PowerMonitor, PowerSample, Radio, SystemInfo};

/// Transmit buffer: the largest packet is a raw telegram plus its topic.
pub const TX_MAX: usize = TELEGRAM_MAX + 256;
/// QoS 1 readings published ahead of their acknowledgements (brokers acknowledge in order).
pub const INFLIGHT_MAX: usize = 8;
/// Receive buffer: inbound messages longer than this are skipped and counted.
pub const RX_MAX: usize = 512;
/// Shortest time between two discovery publications (floods of HA birth messages).
const DISCOVERY_MIN_GAP_MS: u64 = 5_000;

/// State shared by the three loops.
struct Shared<const RING: usize> {
    ring: Deque<Reading, RING>,
    ring_cap: usize,
    diag: Diag,
    last_telegram_ms: Option<u64>,
    present_mask: u32,
    raw: Vec<u8, TELEGRAM_MAX>,
    raw_pending: bool,
    power: Option<PowerSample>,
    power_pending: bool,
    have_power: bool,
    /// How many readings at the front of the ring are in flight (published, not yet acked).
    inflight: usize,
    /// How many readings at the front of the ring were published in a session that ended before
    /// their PUBACK: the broker may have them, so they are sent again rather than dropped, and
    /// the drop counter only ever counts readings that never left the device.
    unconfirmed: usize,
    /// Power policy's verdict: may the radio be used for WiFi now?
    wifi_allowed: bool,
    /// The firmware's load state, forwarded to the power monitor by the power loop.
    load: LoadState,
    /// The newest reading (whatever the publish policy decided), for BLE advertisements.
    latest: Option<Reading>,
    /// Battery state of charge from the last power sample.
    battery_pct: Option<u8>,
    /// The power document of the last sample (the power policy's rendering).
    power_doc: Vec<u8, 512>,
}

impl<const RING: usize> Shared<RING> {
    /// Queues a reading. When the ring is full the oldest reading that is not in flight is
    /// dropped (and counted); returns its seq.
    fn enqueue(&mut self, r: Reading) -> Option<u32> {
        let inflight = self.inflight.max(self.unconfirmed).min(self.ring.len());
        let queued = self.ring.len() - inflight;
        let mut dropped = None;
        if queued >= self.ring_cap || self.ring.is_full() {
            // Lift the in-flight readings off, drop the next one, put them back in order.
            let mut held: Vec<Reading, INFLIGHT_MAX> = Vec::new();
            for _ in 0..inflight {
                if let Some(x) = self.ring.pop_front() {
                    let _ = held.push(x);
                }
            }
            dropped = self.ring.pop_front().map(|o| o.seq);
            while let Some(x) = held.pop() {
                let _ = self.ring.push_front(x);
            }
        }
        if let Err(r) = self.ring.push_back(r) {
            // Only when every slot holds a reading in flight: the new one cannot wait.
            dropped = Some(r.seq);
        }
        if dropped.is_some() {
            self.diag.ring_dropped = self.diag.ring_dropped.wrapping_add(1);
        }
        let depth = self.ring.len() as u32;
        if depth > self.diag.queue_high_water {
            self.diag.queue_high_water = depth;
        }
        dropped
    }

    /// The broker acknowledged the reading `seq` (or it was written at QoS 0).
    fn acked(&mut self, seq: u32, was_inflight: bool) {
        if self.ring.front().map(|r| r.seq) == Some(seq) {
            let _ = self.ring.pop_front();
            self.unconfirmed = self.unconfirmed.saturating_sub(1);
        }
        if was_inflight {
            self.inflight = self.inflight.saturating_sub(1);
        }
        self.diag.published = self.diag.published.wrapping_add(1);
    }
}

/// All of the application's memory, provided by the caller (a `static` on the device) so nothing
/// is allocated. `RING` is the ring's storage in readings: one slot holds the reading in flight,
/// so at most `RING - 1` wait (the configured `ring_capacity` may use fewer).
pub struct Memory<const RING: usize> {
    shared: RefCell<Shared<RING>>,
    reader: P1Reader,
    scratch: dsmr::Reading,
    chunk: [u8; 512],
    tx: [u8; TX_MAX],
    rx: [u8; RX_MAX],
    wake: Signal<NoopRawMutex, ()>,
    load_changed: Signal<NoopRawMutex, ()>,
    ble_wake: Signal<NoopRawMutex, ()>,
}

impl<const RING: usize> core::fmt::Debug for Memory<RING> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Memory").field("ring", &RING).finish_non_exhaustive()
    }
}

impl<const RING: usize> Default for Memory<RING> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const RING: usize> Memory<RING> {
    /// Empty memory.
    pub fn new() -> Self {
        Memory {
            shared: RefCell::new(Shared {
                ring: Deque::new(),
                ring_cap: RING,
                diag: Diag::default(),
                last_telegram_ms: None,
                present_mask: 0,
                raw: Vec::new(),
                raw_pending: false,
                power: None,
                power_pending: false,
                have_power: false,
                inflight: 0,
                unconfirmed: 0,
                wifi_allowed: true,
                load: LoadState::Boot,
                latest: None,
                battery_pct: None,
                power_doc: Vec::new(),
            }),
            reader: P1Reader::new(),
            scratch: dsmr::Reading::default(),
            chunk: [0; 512],
            tx: [0; TX_MAX],
            rx: [0; RX_MAX],
            wake: Signal::new(),
            load_changed: Signal::new(),
            ble_wake: Signal::new(),
        }
    }
}

/// The board's parts, handed to [`run`].
#[derive(Debug)]
pub struct Board<R, D, L, N, C, P, O, S> {
    /// P1 UART receive side (115200 8N1; inversion applied by the board per `Config::rx_inverted`).
    pub p1: R,
    /// Data-request output (G26 on the M5StickC).
    pub data_request: D,
    /// WiFi (or virtual) link.
    pub link: L,
    /// TCP/TLS connections to the broker.
    pub net: N,
    /// The clock.
    pub clock: C,
    /// The power monitor.
    pub power: P,
    /// The console.
    pub console: O,
    /// System facts.
    pub system: S,
}

struct Ctx<'a, C, O, S, const RING: usize> {
    cfg: &'a Config,
    clock: &'a C,
    console: &'a RefCell<O>,
    system: &'a S,
    shared: &'a RefCell<Shared<RING>>,
    wake: &'a Signal<NoopRawMutex, ()>,
    load_changed: &'a Signal<NoopRawMutex, ()>,
    ble_wake: &'a Signal<NoopRawMutex, ()>,
}

impl<C: Clock, O: Console, S: SystemInfo, const RING: usize> Ctx<'_, C, O, S, RING> {
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }
    fn line(&self, ev: &str) -> Line {
        Line::new(self.now(), ev)
    }
    fn emit(&self, l: Line) {
        if let Ok(mut c) = self.console.try_borrow_mut() {
            c.line(l.as_str());
        }
    }
    fn count(&self, counter: impl FnOnce(&mut Diag) -> &mut u32) {
        let mut sh = self.shared.borrow_mut();
        let c = counter(&mut sh.diag);
        *c = c.wrapping_add(1);
    }
    /// The publish check failed: one error line and one count per session (reconnecting would not
    /// change the broker's mind).
    fn publish_denied(&self, detail: &str) {
        self.count(|d| &mut d.publish_denied);
        self.emit(self.line("error").kv("kind", "mqtt_publish_denied").kv("topic", payload::topic(self.cfg, "status").as_str()).kv("detail", detail));
    }
    fn set_load(&self, s: LoadState) {
        let mut sh = self.shared.borrow_mut();
        if sh.load != s {
            sh.load = s;
            self.load_changed.signal(());
        }
    }
    fn diag(&self) -> Diag {
        let now = self.now();
        let sh = self.shared.borrow();
        let mut d = sh.diag;
        d.uptime_ms = now;
        d.queue_depth = sh.ring.len() as u32;
        d.queue_capacity = sh.ring_cap as u32;
        d.last_telegram_age_ms = sh.last_telegram_ms.map(|t| now.saturating_sub(t));
        d.free_heap = self.system.free_heap_bytes();
        d.reset_reason = self.system.reset_reason();
        d
    }
}

/// Runs the gateway forever, without a BLE radio (see [`run_with_radio`]).
pub async fn run<R, D, L, N, C, P, O, S, const RING: usize>(
    config: &Config,
    board: Board<R, D, L, N, C, P, O, S>,
    memory: &mut Memory<RING>,
) -> core::convert::Infallible
where
    R: Read,
    D: OutputPin,
    L: Link,
    N: Connector,
    C: Clock,
    P: PowerMonitor,
    O: Console,
    S: SystemInfo,
{
    run_with_radio(config, board, NoRadio, memory).await
}

/// Runs the gateway forever; with `transport = ble|both`, readings also go out as BTHome
/// advertisements through `radio`.
///
/// Never panics and never allocates; every failure becomes a counter and a console line. The
/// returned future is the whole application: the board polls it from its executor (on the device
/// inside `#[esp_rtos::main]`, on the host from a tokio current-thread runtime). `config` must have
/// passed [`Config::validate`].
pub async fn run_with_radio<R, D, L, N, C, P, O, S, X, const RING: usize>(
    config: &Config,
    board: Board<R, D, L, N, C, P, O, S>,
    mut radio: X,
    memory: &mut Memory<RING>,
) -> core::convert::Infallible
where
    R: Read,
    D: OutputPin,
    L: Link,
    N: Connector,
    C: Clock,
    P: PowerMonitor,
    O: Console,
    S: SystemInfo,
    X: Radio,
{
    let Board { mut p1, mut data_request, mut link, mut net, clock, mut power, console, system } = board;
    let Memory { shared, reader, scratch, chunk, tx, rx, wake, load_changed, ble_wake } = memory;
    shared.borrow_mut().ring_cap = (config.ring_capacity as usize).clamp(1, RING.saturating_sub(1).max(1));
    let console = RefCell::new(console);
    let ctx = Ctx { cfg: config, clock: &clock, console: &console, system: &system, shared, wake, load_changed, ble_wake };

    ctx.emit(
        ctx.line("boot")
            .kv("fw", payload::FW_VERSION)
            .kv("device", &config.device_id)
            .kv("reset", system.reset_reason())
            .kv("transport", match config.transport {
                crate::config::Transport::Wifi => "wifi",
                crate::config::Transport::Ble => "ble",
                crate::config::Transport::Both => "both",
            })
            .kv("ring", shared.borrow().ring_cap),
    );
    power.load_state(LoadState::Boot);

    let (never, _, _, _) = join4(
        p1_loop(&ctx, &mut p1, &mut data_request, reader, scratch, chunk),
        net_loop(&ctx, &mut link, &mut net, tx, rx),
        power_loop(&ctx, &mut power),
        ble_loop(&ctx, &mut radio),
    )
    .await;
    never
}

async fn p1_loop<R: Read, D: OutputPin, C: Clock, O: Console, S: SystemInfo, const RING: usize>(
    ctx: &Ctx<'_, C, O, S, RING>,
    p1: &mut R,
    dr: &mut D,
    reader: &mut P1Reader,
    scratch: &mut dsmr::Reading,
    chunk: &mut [u8; 512],
) -> core::convert::Infallible {
    let cfg = ctx.cfg;
    let level = cfg.data_request != cfg.data_request_active_low;
    let dr_ok = if level { dr.set_high().is_ok() } else { dr.set_low().is_ok() };
    ctx.emit(ctx.line("p1").kv("data_request", cfg.data_request).kv("ok", dr_ok));

    let mut policy = PublishPolicy::new(cfg);
    let mut seq: u32 = 0;
    let mut next_tick = ctx.now() + 1000;
    let mut next_stats = ctx.now() + u64::from(cfg.stats_interval_s) * 1000;
    let mut silent_reported = false;
    let mut read_failing = false;
    let mut decode_issues: u32 = 0;
    loop {
        match select(p1.read(chunk), ctx.clock.sleep_until(next_tick)).await {
            Either::First(Ok(n)) if n > 0 => {
                read_failing = false;
                let now = ctx.now();
                let mut input = chunk.get(..n).unwrap_or(&[]);
                while !input.is_empty() {
                    let (used, ev) = reader.feed(input);
                    match ev {
                        Some(P1Event::Telegram(frame)) => {
                            scratch.fill(&frame.telegram());
                            seq = seq.wrapping_add(1);
                            let reading = convert(seq, now, scratch);
                            let issues = u32::from(scratch.issue_count);
                            decode_issues = decode_issues.wrapping_add(issues);
                            let admitted = policy.admit(now, &reading);
                            let mut sh = ctx.shared.borrow_mut();
                            sh.last_telegram_ms = Some(now);
                            sh.latest = Some(reading);
                            if cfg.raw_telegrams {
                                if sh.raw_pending {
                                    sh.diag.raw_skipped = sh.diag.raw_skipped.wrapping_add(1);
                                }
                                sh.raw.clear();
                                let _ = sh.raw.extend_from_slice(frame.bytes);
                                let _ = sh.raw.extend_from_slice(b"\r\n");
                                sh.raw_pending = true;
                            }
                            let dropped = if admitted {
                                sh.enqueue(reading)
                            } else {
                                sh.diag.policy_skipped = sh.diag.policy_skipped.wrapping_add(1);
                                None
                            };
                            let ring_dropped = sh.diag.ring_dropped;
                            let depth = sh.ring.len();
                            drop(sh);
                            
                            if silent_reported {
                                silent_reported = false;
                                ctx.emit(ctx.line("p1").kv("state", "ok"));
                            }
                            ctx.emit(
                                ctx.line("telegram")
                                    .kv("seq", seq)
                                    .opt("ts", reading.ts)
                                    .opt("power_import_w", reading.power_import_w)
                                    .opt("power_export_w", reading.power_export_w)
                                    .kv("bytes", frame.bytes.len())
                                    .kv("issues", issues)
                                    .kv("published", admitted)
                                    .kv("queue", depth),
                            );
                            if let Some(old) = dropped {
                                ctx.emit(ctx.line("error").kv("kind", "ring_overflow").kv("dropped_seq", old).kv("ring_dropped", ring_dropped));
                            }
                            ctx.wake.signal(());
                            ctx.ble_wake.signal(());
                        }
                        Some(P1Event::Error(e)) => {
                            let kind = match e {
                                dsmr::FrameError::CrcMismatch { .. } => "crc",
                                dsmr::FrameError::Oversize { .. } => "oversize",
                                dsmr::FrameError::Truncated { .. } => "truncated",
                                _ => "malformed",
                            };
                            ctx.emit(ctx.line("error").kv("kind", kind).kv("detail", e));
                        }
                        None => {}
                    }
                    if used == 0 {
                        break;
                    }
                    input = input.get(used..).unwrap_or(&[]);
                }
                reader.decode_issues = decode_issues;
                sync_counters(ctx, reader);
            }
            Either::First(res) => {
                reader.read_errors = reader.read_errors.wrapping_add(1);
                let abandoned = reader.abandon();
                sync_counters(ctx, reader);
                if !read_failing {
                    read_failing = true;
                    let what = if res.is_ok() { "eof" } else { "read" };
                    ctx.emit(ctx.line("error").kv("kind", "p1_read").kv("detail", what).kv("abandoned", abandoned));
                }
                ctx.clock.sleep_until(ctx.now() + 200).await;
            }
            Either::Second(()) => {}
        }
        let now = ctx.now();
        if now >= next_tick {
            next_tick = now + 1000;
            let age = ctx.shared.borrow().last_telegram_ms.map_or(now, |t| now.saturating_sub(t));
            let silent = age >= u64::from(cfg.meter_silent_s) * 1000;
            ctx.shared.borrow_mut().diag.meter_silent = silent;
            if silent && !silent_reported {
                silent_reported = true;
                ctx.emit(ctx.line("error").kv("kind", "meter_silent").kv("age_ms", age));
            }
        }
        if now >= next_stats {
            next_stats = now + u64::from(cfg.stats_interval_s) * 1000;
            let d = ctx.diag();
            ctx.emit(
                ctx.line("stats")
                    .kv("telegrams", d.telegrams_ok)
                    .kv("crc_errors", d.crc_errors)
                    .kv("framing_errors", d.framing_errors)
                    .kv("dropped_bytes", d.dropped_bytes)
                    .kv("read_errors", d.read_errors)
                    .kv("queue", d.queue_depth)
                    .kv("queue_high_water", d.queue_high_water)
                    .kv("ring_dropped", d.ring_dropped)
                    .kv("published", d.published)
                    .kv("policy_skipped", d.policy_skipped)
                    .kv("publish_denied", d.publish_denied)
                    .opt("last_telegram_age_ms", d.last_telegram_age_ms),
            );
        }
    }
}

fn sync_counters<C, O, S, const RING: usize>(ctx: &Ctx<'_, C, O, S, RING>, reader: &P1Reader) {
    let c = reader.counters();
    let mut sh = ctx.shared.borrow_mut();
    sh.diag.telegrams_ok = c.telegrams_ok;
    sh.diag.crc_errors = c.crc_errors;
    sh.diag.framing_errors = c.framing_errors;
    sh.diag.dropped_bytes = c.dropped_bytes;
    sh.diag.read_errors = c.read_errors;
}

async fn power_loop<P: PowerMonitor, C: Clock, O: Console, S: SystemInfo, const RING: usize>(
    ctx: &Ctx<'_, C, O, S, RING>,
    power: &mut P,
) -> core::convert::Infallible {
    let period = u64::from(ctx.cfg.power_interval_s) * 1000;
    let pcfg = PowerConfig { transport: ctx.cfg.transport, ..PowerConfig::default() };
    let mut policy = PowerPolicy::new(pcfg, BootCause::PowerOn, None);
    let mut next = ctx.now();
    let mut absent_reported = false;
    let mut load = LoadState::Boot;
    let mut prev: Option<PowerSample> = None;
    let mut charge_ma: Option<u16> = None;
    loop {
        if let Either::Second(()) = select(ctx.clock.sleep_until(next), ctx.load_changed.wait()).await {
            let now_load = ctx.shared.borrow().load;
            if now_load != load {
                load = now_load;
                power.load_state(load);
                let cmd = match load {
                    LoadState::WifiConnecting => policy.radio_busy(RadioActivity::WifiConnect),
                    LoadState::Transmitting => policy.radio_busy(RadioActivity::WifiTx),
                    LoadState::BleAdvertising => policy.radio_busy(RadioActivity::BleAdvertise),
                    _ => policy.radio_idle(),
                };
                let want = if cmd.enabled { cmd.ma } else { 0 };
                if prev.is_some() && charge_ma != Some(want) && power.set_charge_limit_ma(want).await.is_ok() {
                    charge_ma = Some(want);
                }
            }
            continue;
        }
        next = next.saturating_add(period);
        match power.sample().await {
            Ok(s) => {
                let was = prev.map(|p| p.acin_present);
                let latched = power.take_events().await.unwrap_or_default();
                let ev = SupplyEvents {
                    acin_removed: (was == Some(true) && !s.acin_present) || latched.acin_removed,
                    acin_inserted: (was == Some(false) && s.acin_present) || latched.acin_inserted,
                    charge_starved: latched.charge_starved,
                };
                prev = Some(s);
                let d = policy.on_sample(ctx.now(), &s, ev);
                power.tx_power_dbm(d.tx_dbm);
                let mut line: heapless::String<{ crate::console::LINE_MAX }> = heapless::String::new();
                let _ = policy.write_console(ctx.now(), &mut line);
                {
                    let mut sh = ctx.shared.borrow_mut();
                    sh.power = Some(s);
                    sh.power_pending = true;
                    sh.have_power = true;
                    sh.wifi_allowed = d.wifi_enabled && d.wifi_start_allowed;
                    sh.battery_pct = Some(PowerPolicy::battery_percent(s.battery_mv));
                    sh.power_doc.clear();
                    sh.power_doc.resize_default(512).ok();
                    let mut c = crate::text::Cursor::new(&mut sh.power_doc);
                    let n = if policy.write_json(&mut c).is_ok() { c.len() } else { 0 };
                    sh.power_doc.truncate(n);
                }
                if let Ok(mut c) = ctx.console.try_borrow_mut() {
                    c.line(&line);
                }
                ctx.wake.signal(());
            }
            Err(crate::seams::PowerError::Absent) => {
                if !absent_reported {
                    absent_reported = true;
                    ctx.emit(ctx.line("power").kv("state", "absent"));
                }
            }
            Err(e) => {
                ctx.count(|d| &mut d.power_errors);
                ctx.emit(ctx.line("error").kv("kind", "power").kv("detail", e));
            }
        }
    }
}

/// A BTHome device address from the device id: stable across boots, a static random address
/// (two top bits set).
pub fn ble_address(device_id: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in device_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [b[2] | 0xC0, b[3], b[4], b[5], b[6], b[7]]
}

fn ble_values(r: &Reading, battery_pct: Option<u8>) -> bthome::Values {
    let sum = |a: &[Option<u32>; 3]| match (a[0], a[1], a[2]) {
        (Some(total), _, _) => Some(u64::from(total)),
        (None, None, None) => None,
        (None, t1, t2) => Some(u64::from(t1.unwrap_or(0)) + u64::from(t2.unwrap_or(0))),
    };
    let nonneg = |v: Option<i32>| v.map(|w| u32::try_from(w).unwrap_or(0));
    bthome::Values {
        battery_percent: battery_pct,
        power_import_w: nonneg(r.power_import_w),
        power_export_w: nonneg(r.power_export_w),
        current_ma: r.current_ma,
        voltage_dv: r.voltage_dv.map(|v| v.map(u32::from)),
        gas_l: r.gas_dm3.map(u64::from),
        energy_import_wh: sum(&r.energy_import_wh),
        energy_export_wh: sum(&r.energy_export_wh),
    }
}

async fn ble_loop<X: Radio, C: Clock, O: Console, S: SystemInfo, const RING: usize>(
    ctx: &Ctx<'_, C, O, S, RING>,
    radio: &mut X,
) -> core::convert::Infallible {
    let cfg = ctx.cfg;
    let setup = || -> Result<bthome::Encoder, bthome::ConfigError> {
        let interval = bthome::AdvInterval::from_millis(cfg.ble_interval_ms)?;
        let c = bthome::Config {
            interval,
            bind_key: cfg.bind_key.map(bthome::BindKey),
            ..bthome::Config::new(ble_address(&cfg.device_id))
        };
        bthome::Encoder::new(&c)
    };
    let encoder = if cfg.transport.uses_ble() {
        match setup() {
            Ok(e) => Some(e),
            Err(e) => {
                ctx.emit(ctx.line("error").kv("kind", "ble_setup").kv("detail", e));
                None
            }
        }
    } else {
        None
    };
    let Some(mut encoder) = encoder else {
        loop {
            ctx.clock.sleep_until(u64::MAX).await;
        }
    };
    let interval = u64::from(cfg.ble_interval_ms);
    let mut counter_set = false;
    let mut last_adv: Option<u64> = None;
    let mut adverts: u32 = 0;
    loop {
        match last_adv {
            // Nothing to advertise before the first reading.
            None => ctx.ble_wake.wait().await,
            Some(t) => {
                let _ = select(ctx.ble_wake.wait(), ctx.clock.sleep_until(t + interval)).await;
            }
        }
        // Never faster than the interval.
        if let Some(t) = last_adv {
            ctx.clock.sleep_until(t + interval).await;
        }
        let (reading, battery) = {
            let sh = ctx.shared.borrow();
            (sh.latest, sh.battery_pct)
        };
        let Some(reading) = reading else { continue };
        if encoder.encrypted() && !counter_set {
            // A counter that keeps rising across reboots: seconds of meter time since 2020.
            if let Some(secs) = reading.ts.map(|t| {
                let days = u32::from(t.year.saturating_sub(2020)) * 366 + u32::from(t.month) * 31 + u32::from(t.day);
                days * 86_400 + u32::from(t.hour) * 3600 + u32::from(t.minute) * 60 + u32::from(t.second)
            }) {
                encoder.set_counter(secs);
            }
            counter_set = true;
        }
        let adv = match encoder.encode(&ble_values(&reading, battery)) {
            Ok(a) => a,
            Err(e) => {
                ctx.emit(ctx.line("error").kv("kind", "ble_encode").kv("detail", e));
                last_adv = Some(ctx.now());
                continue;
            }
        };
        ctx.set_load(LoadState::BleAdvertising);
        let res = radio.advertise(encoder.address(), adv.as_bytes()).await;
        ctx.set_load(LoadState::Idle);
        last_adv = Some(ctx.now());
        adverts = adverts.wrapping_add(1);
        let l = ctx.line("ble").kv("seq", reading.seq).kv("bytes", adv.as_bytes().len()).kv("adverts", adverts);
        ctx.emit(match res {
            Ok(()) => l,
            Err(e) => l.kv("error", e),
        });
    }
}

async fn net_loop<L: Link, N: Connector, C: Clock, O: Console, S: SystemInfo, const RING: usize>(
    ctx: &Ctx<'_, C, O, S, RING>,
    link: &mut L,
    net: &mut N,
    tx: &mut [u8; TX_MAX],
    rx: &mut [u8; RX_MAX],
) -> core::convert::Infallible {
    let cfg = ctx.cfg;
    let mut backoff = Backoff::new(cfg.reconnect_min_ms, cfg.reconnect_max_ms);
    let Some(broker) = cfg.broker.as_ref().filter(|_| cfg.transport.uses_wifi()) else {
        ctx.emit(ctx.line("wifi").kv("state", "off").kv("reason", "transport"));
        loop {
            ctx.clock.sleep_until(u64::MAX).await;
        }
    };
    let mut link_was_up = false;
    loop {
        while !ctx.shared.borrow().wifi_allowed {
            ctx.clock.sleep_until(ctx.now() + 1000).await;
        }
        if !link.is_up() {
            if link_was_up {
                link_was_up = false;
                ctx.count(|d| &mut d.wifi_drops);
            }
            ctx.set_load(LoadState::WifiConnecting);
            ctx.emit(ctx.line("wifi").kv("state", "connecting"));
            let deadline = ctx.now() + u64::from(cfg.connect_timeout_ms);
            let res = match select(link.connect(), ctx.clock.sleep_until(deadline)).await {
                Either::First(r) => r,
                Either::Second(()) => Err(NetError::Timeout),
            };
            if let Err(e) = res {
                ctx.set_load(LoadState::Idle);
                let delay = backoff.next_delay();
                ctx.emit(ctx.line("wifi").kv("state", "down").kv("error", e).kv("retry_ms", delay));
                ctx.clock.sleep_until(ctx.now() + u64::from(delay)).await;
                continue;
            }
        }
        if !link_was_up {
            link_was_up = true;
            ctx.set_load(LoadState::WifiConnected);
            ctx.emit(ctx.line("wifi").kv("state", "up").opt("rssi", link.rssi_dbm()));
        }
        ctx.emit(ctx.line("mqtt").kv("state", "connecting").kv("host", &broker.host).kv("port", broker.port).kv("tls", broker.tls));
        let deadline = ctx.now() + u64::from(cfg.connect_timeout_ms);
        let conn = match select(net.connect(&broker.host, broker.port, broker.tls), ctx.clock.sleep_until(deadline)).await {
            Either::First(r) => r,
            Either::Second(()) => Err(NetError::Timeout),
        };
        let outcome = match conn {
            Ok(mut conn) => session(ctx, link, &mut conn, tx, rx, &mut backoff).await,
            Err(e) => Err(SessionEnd::Net(e)),
        };
        ctx.set_load(if link.is_up() { LoadState::WifiConnected } else { LoadState::Idle });
        {
            let mut sh = ctx.shared.borrow_mut();
            sh.diag.mqtt_failures = sh.diag.mqtt_failures.wrapping_add(1);
            sh.unconfirmed = sh.unconfirmed.max(sh.inflight);
            sh.inflight = 0;
        }
        // Failures a retry will not cure get an error line of their own (and a counter), so they
        // stand out from ordinary disconnects; the back-off below still applies.
        match outcome {
            Err(SessionEnd::Net(e)) if e.is_tls() => {
                ctx.shared.borrow_mut().diag.tls_failures += 1;
                ctx.emit(ctx.line("error").kv("kind", "tls").kv("detail", e).kv("host", &broker.host).kv("port", broker.port));
            }
            Err(SessionEnd::Refused(code)) => {
                ctx.shared.borrow_mut().diag.auth_failures += 1;
                let detail = match code {
                    1 => "protocol_version",
                    2 => "client_id_rejected",
                    3 => "server_unavailable",
                    4 => "bad_username_or_password",
                    5 => "not_authorized",
                    _ => "unknown",
                };
                ctx.emit(ctx.line("error").kv("kind", "mqtt_refused").kv("code", code).kv("detail", detail));
            }
            _ => {}
        }
        let delay = backoff.next_delay();
        let l = ctx.line("mqtt").kv("state", "disconnected");
        let l = match outcome {
            Err(SessionEnd::Net(e)) => l.kv("error", e),
            Err(SessionEnd::Refused(code)) => l.kv("error", "refused").kv("code", code),
            Err(SessionEnd::Protocol(what)) => l.kv("error", what),
            Err(SessionEnd::LinkDown) => l.kv("error", "link_down"),
            Ok(()) => l,
        };
        ctx.emit(l.kv("queue", ctx.shared.borrow().ring.len()).kv("retry_ms", delay));
        ctx.clock.sleep_until(ctx.now() + u64::from(delay)).await;
    }
}

enum SessionEnd {
    Net(NetError),
    Refused(u8),
    Protocol(&'static str),
    LinkDown,
}

impl From<NetError> for SessionEnd {
    fn from(e: NetError) -> Self {
        SessionEnd::Net(e)
    }
}

async fn send<W: Write>(conn: &mut W, bytes: &[u8]) -> Result<(), SessionEnd> {
    conn.write_all(bytes).await.map_err(|_| SessionEnd::Net(NetError::Refused))?;
    conn.flush().await.map_err(|_| SessionEnd::Net(NetError::Refused))
}

/// The publish check in progress: whether the broker lets the device publish under its prefix.
/// MQTT 3.1.1 has no negative acknowledgement for a publish (a broker enforcing an ACL
/// acknowledges and drops it), so the device subscribes to its own status topic and expects its
/// "online" back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PublishCheck {
    since_ms: u64,
    /// Packet id of the subscription to the status topic.
    pid: u16,
}

struct Session {
    next_pid: u16,
    /// Waiting for the publish check; `None` once it passed or failed, or when it is off.
    publish_check: Option<PublishCheck>,
    inflight: Deque<(u16, u32, u64), INFLIGHT_MAX>,
    last_tx_ms: u64,
    ping_sent_ms: Option<u64>,
    discovery_due: Option<u64>,
    last_discovery_ms: Option<u64>,
    announced_mask: u32,
    announced_power: bool,
    next_diag_ms: u64,
    rx_len: usize,
    skip: usize,
}

impl Session {
    fn pid(&mut self) -> u16 {
        self.next_pid = self.next_pid.wrapping_add(1).max(1);
        self.next_pid
    }
}

#[allow(clippy::too_many_arguments)]
async fn session<T: Read + Write, L: Link, C: Clock, O: Console, S: SystemInfo, const RING: usize>(
    ctx: &Ctx<'_, C, O, S, RING>,
    link: &mut L,
    conn: &mut T,
    tx: &mut [u8; TX_MAX],
    rx: &mut [u8; RX_MAX],
    backoff: &mut Backoff,
) -> Result<(), SessionEnd> {
    let cfg = ctx.cfg;
    let status = payload::topic(cfg, "status");
    let state_topic = payload::topic(cfg, "state");
    let keepalive_ms = u64::from(cfg.keepalive_s) * 1000;
    let response_ms = u64::from(cfg.response_timeout_ms);

    let c = mqtt::Connect {
        client_id: &cfg.device_id,
        keepalive_s: cfg.keepalive_s,
        clean_session: true,
        will: Some(mqtt::Will { topic: &status, payload: b"offline", qos: 1, retain: true }),
        username: (!cfg.username.is_empty()).then_some(cfg.username.as_str()),
        password: (!cfg.password.is_empty()).then_some(cfg.password.as_bytes()),
    };
    let r = mqtt::connect(tx, &c).map_err(|_| SessionEnd::Protocol("encode"))?;
    send(conn, tx.get(r).unwrap_or(&[])).await?;

    // CONNACK.
    let deadline = ctx.now() + u64::from(cfg.connect_timeout_ms);
    let mut len = 0;
    loop {
        let buf = rx.get_mut(len..).unwrap_or(&mut []);
        let n = match select(conn.read(buf), ctx.clock.sleep_until(deadline)).await {
            Either::First(Ok(0)) | Either::First(Err(_)) => return Err(SessionEnd::Net(NetError::Refused)),
            Either::First(Ok(n)) => n,
            Either::Second(()) => return Err(SessionEnd::Net(NetError::Timeout)),
        };
        len += n;
        match mqtt::decode(rx.get(..len).unwrap_or(&[]), RX_MAX) {
            Decoded::NeedMore => continue,
            Decoded::Packet(Packet::ConnAck { code: 0, .. }, used) => {
                rx.copy_within(used..len, 0);
                len -= used;
                break;
            }
            Decoded::Packet(Packet::ConnAck { code, .. }, _) => return Err(SessionEnd::Refused(code)),
            _ => return Err(SessionEnd::Protocol("expected connack")),
        }
    }
    backoff.reset();
    ctx.count(|d| &mut d.mqtt_connects);
    ctx.emit(ctx.line("mqtt").kv("state", "connected").kv("queue", ctx.shared.borrow().ring.len()));

    let now = ctx.now();
    let mut s = Session {
        next_pid: 0,
        publish_check: None,
        inflight: Deque::new(),
        last_tx_ms: now,
        ping_sent_ms: None,
        discovery_due: cfg.discovery.then_some(now),
        last_discovery_ms: None,
        announced_mask: 0,
        announced_power: false,
        next_diag_ms: now,
        rx_len: len,
        skip: 0,
    };

    if cfg.publish_check {
        // Subscribed before "online" goes out, so the broker forwards it live (retain flag clear),
        // which tells it apart from a retained copy of an earlier session.
        let pid = s.pid();
        let r = mqtt::subscribe(tx, pid, &status, 0).map_err(|_| SessionEnd::Protocol("encode"))?;
        send(conn, tx.get(r).unwrap_or(&[])).await?;
        s.publish_check = Some(PublishCheck { since_ms: ctx.now(), pid });
    }
    let r = mqtt::publish(tx, &status, 0, true, false, 0, |w| w.write_str("online")).map_err(|_| SessionEnd::Protocol("encode"))?;
    send(conn, tx.get(r).unwrap_or(&[])).await?;
    if cfg.discovery {
        let pid = s.pid();
        let r = mqtt::subscribe(tx, pid, &payload::ha_status_topic(cfg), 0).map_err(|_| SessionEnd::Protocol("encode"))?;
        send(conn, tx.get(r).unwrap_or(&[])).await?;
    }
    s.last_tx_ms = ctx.now();

    loop {
        let now = ctx.now();
        // Discovery: on connect, on HA's birth message (debounced), and when new fields appear.
        if cfg.discovery {
            let (mask, have_power) = {
                let sh = ctx.shared.borrow();
                (sh.present_mask, sh.have_power)
            };
            let mask = if mask == 0 { DEFAULT_PRESENT_MASK } else { mask };
            if (mask & !s.announced_mask != 0 && s.announced_mask != 0) || (have_power && !s.announced_power && s.announced_mask != 0) {
                s.discovery_due = Some(now);
            }
            if let Some(due) = s.discovery_due {
                let gap_ok = s.last_discovery_ms.is_none_or(|t| now.saturating_sub(t) >= DISCOVERY_MIN_GAP_MS);
                if now >= due && gap_ok {
                    s.discovery_due = None;
                    s.last_discovery_ms = Some(now);
                    s.announced_mask = mask;
                    s.announced_power = have_power;
                    ctx.set_load(LoadState::Transmitting);
                    let n = payload::discovery_count(mask, have_power);
                    for i in 0..n {
                        let Some(e) = payload::discovery_entity(mask, have_power, i) else { break };
                        let t = payload::discovery_topic(cfg, e.id);
                        let r = mqtt::publish(tx, &t, 0, true, false, 0, |w| payload::write_discovery(cfg, &e, w))
                            .map_err(|_| SessionEnd::Protocol("encode"))?;
                        send(conn, tx.get(r).unwrap_or(&[])).await?;
                    }
                    ctx.count(|d| &mut d.discovery_sent);
                    ctx.emit(ctx.line("mqtt").kv("discovery", n));
                    s.last_tx_ms = ctx.now();
                } else if now >= due {
                    s.discovery_due = s.last_discovery_ms.map(|t| t + DISCOVERY_MIN_GAP_MS);
                }
            }
        }

        // The next readings from the ring, up to INFLIGHT_MAX ahead of their acknowledgements:
        // QoS 1, unless it is the only (live) reading and QoS 0 is configured.
        while !s.inflight.is_full() {
            let next = {
                let sh = ctx.shared.borrow();
                sh.ring.iter().nth(s.inflight.len()).copied().map(|r| (r, sh.ring.len()))
            };
            let Some((reading, depth)) = next else { break };
            {
                let live = depth == 1;
                let qos = if live && cfg.qos == 0 && s.inflight.is_empty() { 0 } else { 1 };
                let pid = if qos == 1 { s.pid() } else { 0 };
                ctx.set_load(LoadState::Transmitting);
                let r = mqtt::publish(tx, &state_topic, qos, false, false, pid, |w| reading.write_json(w))
                    .map_err(|_| SessionEnd::Protocol("encode"))?;
                send(conn, tx.get(r).unwrap_or(&[])).await?;
                s.last_tx_ms = ctx.now();
                if qos == 1 {
                    let _ = s.inflight.push_back((pid, reading.seq, s.last_tx_ms));
                    ctx.shared.borrow_mut().inflight = s.inflight.len();
                } else {
                    ctx.shared.borrow_mut().acked(reading.seq, false);
                }
                {
                    let mut sh = ctx.shared.borrow_mut();
                    let m = reading.present_mask();
                    sh.present_mask |= m;
                }
                if live && cfg.per_field_topics {
                    for f in FIELDS {
                        if let Some(v) = (f.get)(&reading) {
                            let t = payload::topic(cfg, f.id);
                            let r = mqtt::publish(tx, &t, 0, false, false, 0, |w| write!(w, "{v}"))
                                .map_err(|_| SessionEnd::Protocol("encode"))?;
                            send(conn, tx.get(r).unwrap_or(&[])).await?;
                        }
                    }
                }
            }
        }

        // The raw telegram, live only.
        let raw_pending = ctx.shared.borrow().raw_pending;
        if raw_pending {
            let t = payload::topic(cfg, "telegram");
            let r = {
                let mut sh = ctx.shared.borrow_mut();
                sh.raw_pending = false;
                mqtt::publish(tx, &t, 0, false, false, 0, |w| w.put(&sh.raw).map_err(|_| core::fmt::Error))
            };
            let r = r.map_err(|_| SessionEnd::Protocol("encode"))?;
            send(conn, tx.get(r).unwrap_or(&[])).await?;
            s.last_tx_ms = ctx.now();
        }

        // Power sample (the power policy's document).
        let pending = core::mem::take(&mut ctx.shared.borrow_mut().power_pending);
        if pending {
            let t = payload::topic(cfg, "power");
            let r = {
                let sh = ctx.shared.borrow();
                mqtt::publish(tx, &t, 0, false, false, 0, |w| w.put(&sh.power_doc).map_err(|_| core::fmt::Error))
            };
            let r = r.map_err(|_| SessionEnd::Protocol("encode"))?;
            send(conn, tx.get(r).unwrap_or(&[])).await?;
            s.last_tx_ms = ctx.now();
        }

        // Diagnostics.
        let now = ctx.now();
        if now >= s.next_diag_ms {
            s.next_diag_ms = now + u64::from(cfg.diag_interval_s) * 1000;
            let mut d = ctx.diag();
            d.rssi_dbm = link.rssi_dbm();
            let t = payload::topic(cfg, "diag");
            let r = mqtt::publish(tx, &t, 0, false, false, 0, |w| d.write_json(w)).map_err(|_| SessionEnd::Protocol("encode"))?;
            send(conn, tx.get(r).unwrap_or(&[])).await?;
            s.last_tx_ms = ctx.now();
        }

        // Keep-alive and acknowledgement deadlines.
        let now = ctx.now();
        if let Some(sent) = s.ping_sent_ms {
            if now.saturating_sub(sent) >= response_ms {
                return Err(SessionEnd::Protocol("ping_timeout"));
            }
        } else if now.saturating_sub(s.last_tx_ms) >= keepalive_ms / 2 {
            send(conn, &mqtt::PINGREQ).await?;
            s.ping_sent_ms = Some(now);
            s.last_tx_ms = now;
        }
        if s.inflight.front().is_some_and(|(_, _, sent)| now.saturating_sub(*sent) >= response_ms) {
            return Err(SessionEnd::Protocol("puback_timeout"));
        }
        if s.publish_check.is_some_and(|c| now.saturating_sub(c.since_ms) >= response_ms) {
            s.publish_check = None;
            ctx.publish_denied("own_status_not_echoed");
        }
        ctx.set_load(LoadState::WifiConnected);

        let mut deadline = s.next_diag_ms.min(s.last_tx_ms + keepalive_ms / 2);
        if let Some(t) = s.ping_sent_ms {
            deadline = deadline.min(t + response_ms);
        }
        if let Some((_, _, t)) = s.inflight.front() {
            deadline = deadline.min(t + response_ms);
        }
        if let Some(c) = s.publish_check {
            deadline = deadline.min(c.since_ms + response_ms);
        }
        if let Some(t) = s.discovery_due {
            deadline = deadline.min(t);
        }
        let work_waiting = !s.inflight.is_full() && ctx.shared.borrow().ring.len() > s.inflight.len();
        if work_waiting {
            continue;
        }

        let buf = rx.get_mut(s.rx_len..).unwrap_or(&mut []);
        match select4(conn.read(buf), ctx.wake.wait(), ctx.clock.sleep_until(deadline), link.wait_down()).await {
            Either4::First(Ok(0)) | Either4::First(Err(_)) => return Err(SessionEnd::Net(NetError::Refused)),
            Either4::First(Ok(n)) => {
                s.rx_len += n;
                handle_inbound(ctx, conn, &mut s, rx).await?;
            }
            Either4::Second(()) => {}
            Either4::Third(()) => {}
            Either4::Fourth(()) => return Err(SessionEnd::LinkDown),
        }
    }
}

async fn handle_inbound<T: Write, C: Clock, O: Console, S: SystemInfo, const RING: usize>(
    ctx: &Ctx<'_, C, O, S, RING>,
    conn: &mut T,
    s: &mut Session,
    rx: &mut [u8; RX_MAX],
) -> Result<(), SessionEnd> {
    loop {
        if s.skip > 0 {
            let n = s.skip.min(s.rx_len);
            rx.copy_within(n..s.rx_len, 0);
            s.rx_len -= n;
            s.skip -= n;
            if s.skip > 0 {
                return Ok(());
            }
        }
        let (used, ack) = match mqtt::decode(rx.get(..s.rx_len).unwrap_or(&[]), RX_MAX) {
            Decoded::NeedMore => return Ok(()),
            Decoded::Corrupt => return Err(SessionEnd::Protocol("corrupt_stream")),
            Decoded::TooLong { header, body } => {
                ctx.count(|d| &mut d.inbound_oversize);
                ctx.emit(ctx.line("error").kv("kind", "mqtt_oversize").kv("bytes", header + body));
                s.skip = header + body;
                continue;
            }
            Decoded::Malformed(used) => {
                ctx.count(|d| &mut d.inbound_ignored);
                (used, None)
            }
            Decoded::Packet(p, used) => {
                let mut ack = None;
                match p {
                    Packet::PubAck(pid) => {
                        match s.inflight.front() {
                            Some(&(want, seq, _)) if want == pid => {
                                let _ = s.inflight.pop_front();
                                ctx.shared.borrow_mut().acked(seq, true);
                            }
                            // MQTT 3.1.1 §4.6: QoS 1 acknowledgements come in order.
                            Some(_) => return Err(SessionEnd::Protocol("puback_out_of_order")),
                            None => {}
                        }
                    }
                    Packet::PingResp => s.ping_sent_ms = None,
                    Packet::Publish { topic, payload, qos, packet_id, retain } => {
                        if qos == 1 {
                            ack = Some(packet_id);
                        }
                        let is_ha = topic == payload::ha_status_topic(ctx.cfg).as_bytes();
                        let is_own_status = topic == payload::topic(ctx.cfg, "status").as_bytes();
                        if is_own_status {
                            if !retain && payload == b"online" {
                                s.publish_check = None;
                            }
                        } else if is_ha && payload == b"online" {
                            if s.discovery_due.is_none() {
                                s.discovery_due = Some(ctx.now());
                            }
                        } else if !(is_ha && payload == b"offline") {
                            ctx.count(|d| &mut d.inbound_ignored);
                        }
                    }
                    Packet::SubAck(pid, 0x80) if s.publish_check.is_some_and(|c| c.pid == pid) => {
                        s.publish_check = None;
                        ctx.publish_denied("own_status_not_readable");
                    }
                    Packet::SubAck(_, 0x80) => {
                        ctx.shared.borrow_mut().diag.subscribe_refused += 1;
                        ctx.emit(ctx.line("error").kv("kind", "mqtt_subscribe_refused"));
                    }
                    _ => {}
                }
                (used, ack)
            }
        };
        rx.copy_within(used..s.rx_len, 0);
        s.rx_len -= used;
        if let Some(pid) = ack {
            send(conn, &mqtt::puback(pid)).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(seq: u32) -> Reading {
        Reading { seq, ..Reading::default() }
    }

    #[test]
    fn a_full_ring_never_drops_what_a_lost_session_may_have_delivered() {
        let memory: Memory<8> = Memory::new();
        let mut sh = memory.shared.borrow_mut();
        sh.ring_cap = 4;
        for seq in 1..=4 {
            assert_eq!(sh.enqueue(reading(seq)), None);
        }
        // 1 and 2 were published; the session died before their PUBACKs.
        sh.inflight = 2;
        sh.unconfirmed = sh.unconfirmed.max(sh.inflight);
        sh.inflight = 0;
        // Readings that left the device do not count against the capacity.
        assert_eq!(sh.enqueue(reading(5)), None);
        assert_eq!(sh.enqueue(reading(6)), None);
        assert_eq!(sh.enqueue(reading(7)), Some(3), "the oldest reading that never left is dropped");
        assert_eq!(sh.enqueue(reading(8)), Some(4));
        assert!(sh.ring.iter().map(|r| r.seq).eq([1, 2, 5, 6, 7, 8]));
        assert_eq!(sh.diag.ring_dropped, 2);
        // Sent again in the next session and acknowledged: no longer protected.
        sh.acked(1, false);
        sh.acked(2, false);
        assert_eq!(sh.unconfirmed, 0);
        assert_eq!(sh.enqueue(reading(9)), Some(5));
        assert!(sh.ring.iter().map(|r| r.seq).eq([6, 7, 8, 9]));
    }
}
