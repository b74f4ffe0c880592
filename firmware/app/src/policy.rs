//! The publish policy: which readings go out.

use crate::config::{Config, PolicyKind};
use crate::reading::{Quantity, Reading, FIELDS};

/// Decides, reading by reading, whether to publish. Time is the clock's, in ms.
#[derive(Debug, Clone)]
pub struct PublishPolicy {
    kind: PolicyKind,
    min_interval_ms: u64,
    max_interval_ms: u64,
    deadband_w: i64,
    deadband_dv: i64,
    deadband_ma: i64,
    last: Option<(u64, Reading)>,
}

impl PublishPolicy {
    /// A policy from the configuration.
    pub fn new(cfg: &Config) -> Self {
        PublishPolicy {
            kind: cfg.policy,
            min_interval_ms: u64::from(cfg.min_interval_ms),
            max_interval_ms: u64::from(cfg.max_interval_ms),
            deadband_w: i64::from(cfg.deadband_w),
            deadband_dv: i64::from(cfg.deadband_v) * 10,
            deadband_ma: i64::from(cfg.deadband_a) * 1000,
            last: None,
        }
    }

    /// True if `r` (arriving at `now_ms`) should be published; the policy then remembers it.
    pub fn admit(&mut self, now_ms: u64, r: &Reading) -> bool {
        let ok = match (&self.last, self.kind) {
            (None, _) | (_, PolicyKind::Every) => true,
            (Some((t, _)), PolicyKind::Interval) => now_ms.saturating_sub(*t) >= self.min_interval_ms,
            (Some((t, prev)), PolicyKind::Deadband) => {
                let age = now_ms.saturating_sub(*t);
                age >= self.min_interval_ms && (age >= self.max_interval_ms || self.moved(prev, r))
            }
        };
        if ok {
            self.last = Some((now_ms, *r));
        }
        ok
    }

    /// Did any power, voltage or current field move beyond its deadband, or appear or vanish?
    fn moved(&self, prev: &Reading, r: &Reading) -> bool {
        FIELDS.iter().any(|f| {
            let band = match f.quantity {
                Quantity::Power => self.deadband_w,
                Quantity::Voltage => self.deadband_dv,
                Quantity::Current => self.deadband_ma,
                _ => return false,
            };
            match ((f.get)(prev), (f.get)(r)) {
                (Some(a), Some(b)) => (b.value - a.value).abs() > band,
                (None, None) => false,
                _ => true,
            }
        })
    }
}

/// Exponential back-off, capped: `min`, `2·min`, `4·min`, ... up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    min_ms: u32,
    max_ms: u32,
    next_ms: u32,
}

impl Backoff {
    /// A back-off between `min_ms` and `max_ms`.
    pub fn new(min_ms: u32, max_ms: u32) -> Self {
        let min_ms = min_ms.max(1);
        Backoff { min_ms, max_ms: max_ms.max(min_ms), next_ms: min_ms }
    }
    /// The delay before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> u32 {
        let d = self.next_ms;
        self.next_ms = self.next_ms.saturating_mul(2).min(self.max_ms);
        d
    }
    /// Back to the shortest delay (after a success).
    pub fn reset(&mut self) {
        self.next_ms = self.min_ms;
    }
}
