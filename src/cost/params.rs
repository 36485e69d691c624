//! [`CostParams`]: what the estimator is tuned by, with the `[cost]` table as its
//! TOML form (every key optional, unknown keys rejected), and the cost function.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Tuning of one link's cost estimator. Durations are written in seconds in the
/// file (`interval = 1`, `probe_timeout = 0.5`).
///
/// Reaction times with the defaults (window 16, hold-down 1 s): the step
/// detector ([`super::detect`]) needs 5 samples at least, and a shift is
/// applied once it has lasted `hold_down`:
/// - a latency step well above the link's jitter (any step on a clean link,
///   e.g. 5 -> 80 ms, 20 -> 26 ms with ±2 % jitter) is applied `hold_down` after
///   its first sample: at 10 probes/s the 11th sample (1 s); at 1 probe/s a
///   burst of extra probes (`burst`) brings the samples, 1 s after the first
///   (without bursts: the 5th sample, 4 s). A step within the jitter needs
///   more samples, as many as it takes to tell it from the jitter (with ±30 %
///   uniform jitter: +50 % after ~30 samples);
/// - a change smaller than `abs_threshold` and `rel_threshold` is never applied
///   (it is tracked, not applied: later steps are measured from the applied cost);
/// - `min_change_interval` (30 s) spaces changes, except a change by a factor of
///   2 or more, applied as soon as confirmed;
/// - a dead link is `Down` 5 s (`down_after` x `interval`) after the last
///   packet heard from it, as BFD's detection time (RFC 5880 §6.8.4); a link
///   never up since the prober started is not declared down (it is `probing`);
/// - a link that answers again is `Up` at the 3rd answer (~2 s + RTT), with a
///   provisional cost (the highest of those RTTs), settled to the median once
///   `window` samples are in (one correction, whatever the thresholds);
/// - flapping: each `Down` adds 1000 to a penalty that halves every
///   `damp_half_life`; at `damp_suppress` the link is damped: it stays down until
///   the penalty is below `damp_reuse` (at most `damp_max_suppress`). With the
///   defaults one or two flaps are never damped, three within a minute always;
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
    /// The least change worth applying: a new cost must differ from the applied
    /// one (and from the level the detector tracks) by more than this (default
    /// 500) ...
    pub abs_threshold: u32,
    /// ... and by more than this fraction of it (default 0.25). A shift the
    /// detector confirms below these is tracked, never applied.
    pub rel_threshold: f64,
    /// How long a shift must have lasted to be applied (default 1 s): its
    /// samples span this, and the latest still shows it (the detector also
    /// needs 5 samples): an episode shorter than this is no step, at any
    /// probe rate and however many samples a burst takes of it. Also how long
    /// a change of the loss must hold.
    #[serde(with = "secs")]
    pub hold_down: Duration,
    /// Least time between two changes of the applied cost (default 30 s), except
    /// for a change by a factor of 2 or more, the first cost after the link comes
    /// up, and its settling correction.
    #[serde(with = "secs")]
    pub min_change_interval: Duration,
    /// While a shift is suspected, send a short burst of extra probes
    /// (default true): `hold_down / 5` apart, 7 at most per suspicion, at most
    /// 30 a minute, only where `interval` is at least twice that spacing
    /// (0.4 s and more with the defaults). A shift is then applied `hold_down`
    /// after its first sample instead of at the 5th sample on the interval.
    pub burst: bool,
    /// The link is down when nothing was heard for this many `interval`s
    /// (default 5), counted from the last packet received; a probe unanswered
    /// that long (or `probe_timeout` if longer) is forgotten.
    pub down_after: u32,
    /// Consecutive answered probes that bring it back up (default 3).
    pub up_after: u32,
    /// Damping of flapping links (default true), like RFC 2439's figure of merit:
    /// each `Down` adds 1000 to a penalty that decays exponentially.
    pub damping: bool,
    /// Time for the penalty to halve (default 60 s).
    #[serde(with = "secs")]
    pub damp_half_life: Duration,
    /// A penalty at or above this damps the link (default 2000): it stays down,
    /// even answering, ...
    pub damp_suppress: u32,
    /// ... until the penalty decays below this (default 750) ...
    pub damp_reuse: u32,
    /// ... but never longer than this (default 300 s): the penalty is capped
    /// at what decays to `damp_reuse` within it.
    #[serde(with = "secs")]
    pub damp_max_suppress: Duration,
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
            hold_down: Duration::from_secs(1),
            min_change_interval: Duration::from_secs(30),
            burst: true,
            down_after: 5,
            up_after: 3,
            damping: true,
            damp_half_life: Duration::from_secs(60),
            damp_suppress: 2000,
            damp_reuse: 750,
            damp_max_suppress: Duration::from_secs(300),
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
        if self.damp_half_life.is_zero() {
            v.push(("damp_half_life", "must be more than 0 s".to_string()));
        }
        if self.damp_reuse == 0 || self.damp_reuse >= self.damp_suppress {
            v.push((
                "damp_reuse",
                format!(
                    "must be more than 0 and below damp_suppress ({})",
                    self.damp_suppress
                ),
            ));
        }
        if self.probe_port == 0 {
            v.push(("probe_port", "must be a UDP port, 1 to 65535".to_string()));
        }
        v
    }
}

/// Durations as seconds (integer or fractional) in the file and in JSON
/// (`[cost]` and `[bfd]`).
pub(crate) mod secs {
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
