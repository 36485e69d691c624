//! [`CostParams`]: what the estimator is tuned by, with the `[cost]` table as its
//! TOML form (every key optional, unknown keys rejected), and the cost function.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Tuning of one link's cost estimator. Durations are written in seconds in the
/// file (`interval = 1`, `probe_timeout = 0.5`).
///
/// Reaction times with the defaults (probe every 1 s, window 16, hold-down 5 s):
/// - an RTT step moves the median after 8-9 new samples (the median of an even
///   window is the midpoint once half the window is new, and the hold-down starts
///   there), and is applied ~13 s after the step: 8 s + 5 s hold-down;
///   later if the last change was less than `min_change_interval` (30 s) ago;
/// - a dead link is `Down` 5 s (`down_after` x `interval`) after the last
///   packet heard from it, as BFD's detection time (RFC 5880 §6.8.4);
/// - a link that answers again is `Up`, with a cost, at the 3rd answer (~2 s + RTT);
/// - sustained loss enters the cost once it has been seen for more than half of
///   3 windows (~24 s), plus the hold-down.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostParams {
    /// Time between two probes (default 1 s). The estimator says when the next is due.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// A probe not answered within this counts as lost in the loss fraction
    /// (default 2 s). A later reply still counts: as liveness and as an RTT
    /// sample, and the loss is taken back. Not a bound on the RTT.
    #[serde(with = "secs")]
    pub probe_timeout: Duration,
    /// RTT samples in the median (default 16); also the span of the loss fraction.
    pub window: usize,
    /// Cost per microsecond of smoothed RTT (default 1.0: 10 ms costs 10000).
    pub factor: f64,
    /// Added to every cost (default 0).
    pub offset: u32,
    /// Lowest and highest cost (defaults 1 and 1 000 000).
    pub min: u32,
    pub max: u32,
    /// Cost added at 100 % sustained loss, proportionally below (default 100 000:
    /// 10 % loss costs like 10 ms more RTT).
    pub loss_penalty: u32,
    /// A new cost must differ from the reference by more than this (default 500) ...
    pub abs_threshold: u32,
    /// ... and by more than this fraction of it (default 0.25, see the module docs).
    pub rel_threshold: f64,
    /// ... for this long without interruption (default 5 s).
    #[serde(with = "secs")]
    pub hold_down: Duration,
    /// Least time between two changes of the applied cost (default 30 s); not
    /// applied to the first cost after the link comes up.
    #[serde(with = "secs")]
    pub min_change_interval: Duration,
    /// The link is down when nothing was heard for this many `interval`s
    /// (default 5), counted from the last packet received; a probe unanswered
    /// that long (or `probe_timeout` if longer) is forgotten.
    pub down_after: u32,
    /// Consecutive answered probes that bring it back up (default 3).
    pub up_after: u32,
    /// What a measured link sends: `"auto"` (default: the stream to kittbgpd
    /// neighbors, ICMPv6 echo to others), `"stream"` or `"icmp"` ([`crate::probe`]).
    pub probe: crate::probe::ProbeSetting,
    /// UDP port of the stream on every link, both ends (default 1790: BGP's number).
    pub probe_port: u16,
}

impl Default for CostParams {
    fn default() -> Self {
        CostParams {
            interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(2),
            window: 16,
            factor: 1.0,
            offset: 0,
            min: 1,
            max: 1_000_000,
            loss_penalty: 100_000,
            abs_threshold: 500,
            rel_threshold: 0.25,
            hold_down: Duration::from_secs(5),
            min_change_interval: Duration::from_secs(30),
            down_after: 5,
            up_after: 3,
            probe: crate::probe::ProbeSetting::Auto,
            probe_port: 1790,
        }
    }
}

/// Largest window accepted (the median sorts a copy at each sample).
pub const MAX_WINDOW: usize = 1024;

impl CostParams {
    /// `clamp(offset + rtt_us * factor + loss_penalty * loss, min, max)`, saturating.
    pub fn cost(&self, rtt: Duration, loss: f64) -> u32 {
        let rtt_us = rtt.as_secs_f64() * 1e6;
        let raw = f64::from(self.offset)
            + rtt_us * self.factor
            + f64::from(self.loss_penalty) * loss.clamp(0.0, 1.0);
        // `as` saturates (and maps NaN to 0); the clamp then bounds it.
        (raw.round() as u32).clamp(self.min, self.max)
    }

    /// Semantic problems, as (key, message); empty when the parameters are usable.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.interval.is_zero() {
            v.push(("interval", "must be more than 0 s".to_string()));
        }
        if self.probe_timeout.is_zero() {
            v.push(("probe_timeout", "must be more than 0 s".to_string()));
        }
        if self.window == 0 || self.window > MAX_WINDOW {
            v.push(("window", format!("must be 1 to {MAX_WINDOW} samples")));
        }
        if !(self.factor.is_finite() && self.factor >= 0.0) {
            v.push(("factor", "must be a number >= 0".to_string()));
        }
        if self.min > self.max {
            v.push(("min", format!("{} is above max ({})", self.min, self.max)));
        }
        if !(self.rel_threshold.is_finite() && self.rel_threshold >= 0.0) {
            v.push((
                "rel_threshold",
                "must be a fraction >= 0 (0.25 = 25 %)".to_string(),
            ));
        }
        if self.down_after == 0 {
            v.push(("down_after", "must be at least 1 probe".to_string()));
        }
        if self.up_after == 0 {
            v.push(("up_after", "must be at least 1 probe".to_string()));
        }
        if self.probe_port == 0 {
            v.push(("probe_port", "must be a UDP port, 1 to 65535".to_string()));
        }
        v
    }
}

/// Durations as seconds (integer or fractional) in the file and in JSON.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        Duration::try_from_secs_f64(s).map_err(|_| {
            serde::de::Error::custom(format!("{s}: expected a duration in seconds (>= 0)"))
        })
    }
}
