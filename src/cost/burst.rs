//! [`Burst`]: extra probes while a shift is suspected, so that its
//! confirmation comes from more samples in less time (a child of
//! `estimator.rs`, which decides when one starts and stops).
//!
//! The step detector needs [`MIN_SAMPLES`] samples and `hold_down` of them
//! (`changes.rs`); at 1 probe/s the samples were the wait (the 5th sample, 4 s
//! after the step, plus the stream's echo at the neighbor's next packet). A
//! burst sends [`PROBES`] probes `hold_down / MIN_SAMPLES` apart (200 ms by
//! default), starting at once: the shift is confirmed `hold_down` after its
//! first sample. Bounded: one burst per suspicion (a crossing of the
//! threshold, or a sample after one back from it: a step just after a spike
//! is a suspicion of its own, `detect.rs`), stopped when the suspicion is
//! gone (a spike costs a probe or two), and at
//! most [`BUDGET`] extra probes a minute (a token bucket), so jitter costs
//! little and a link that keeps looking suspicious falls back to the interval.
//! Only where the interval is too slow for that (at least twice the burst's
//! spacing: 0.4 s and more by default); at 10 probes/s nothing changes.

use super::super::detect::MIN_SAMPLES;
use super::CostParams;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Probes in one burst: [`MIN_SAMPLES`] over `hold_down`, and one spare.
pub const PROBES: u32 = MIN_SAMPLES as u32 + 2;
/// Extra probes per minute at most (token bucket of this many, refilled over a minute).
pub const BUDGET: f64 = 30.0;
/// The least spacing of a burst's probes.
const MIN_SPACING: Duration = Duration::from_millis(20);

/// What `show links` shows of the bursts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct BurstView {
    /// Bursts started since the prober started.
    pub bursts: u64,
    /// Extra probes sent in them.
    pub probes: u64,
    /// Suspicions not followed by a burst: over the budget.
    pub over_budget: u64,
    /// A burst is under way.
    pub active: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Burst {
    /// When the next probe of the current burst is due (`None`: no burst).
    next: Option<Instant>,
    left: u32,
    /// The suspicion (direction, change point) the latest burst was for.
    last_for: Option<(bool, u64)>,
    tokens: f64,
    tokens_at: Option<Instant>,
    view: BurstView,
}

impl Burst {
    /// The spacing of a burst's probes with `p`; `None` when the interval
    /// alone brings [`MIN_SAMPLES`] within about `hold_down`, or `burst` is off.
    pub fn spacing(p: &CostParams) -> Option<Duration> {
        let s = (p.hold_down / MIN_SAMPLES as u32).max(MIN_SPACING);
        (p.burst && s * 2 <= p.interval).then_some(s)
    }

    /// A shift is suspected (`key`: its direction and change point): a burst
    /// starts at `now`, unless one ran for it already, one is under way, or
    /// the budget is short. Whether one started.
    pub fn suspect(&mut self, p: &CostParams, key: (bool, u64), now: Instant) -> bool {
        if self.next.is_some() || self.last_for == Some(key) || Burst::spacing(p).is_none() {
            return false;
        }
        self.refill(now);
        if self.tokens < f64::from(PROBES) {
            self.last_for = Some(key);
            self.view.over_budget += 1;
            return false;
        }
        self.last_for = Some(key);
        self.next = Some(now);
        self.left = PROBES;
        self.view.bursts += 1;
        true
    }

    /// When the next extra probe is due (`None`: no burst under way).
    pub fn due(&self) -> Option<Instant> {
        self.next
    }

    /// The due probe left at `now`.
    pub fn sent(&mut self, p: &CostParams, now: Instant) {
        if self.next.is_none() {
            return;
        }
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(0.0);
        self.view.probes += 1;
        self.left = self.left.saturating_sub(1);
        self.next = match Burst::spacing(p) {
            Some(s) if self.left > 0 => Some(now + s),
            _ => None,
        };
    }

    /// The suspicion is settled (applied, the link went down).
    pub fn stop(&mut self) {
        self.next = None;
        self.left = 0;
    }

    /// The suspicion is gone (the evidence fell below the threshold, or the
    /// latest sample is back within the thresholds): a later
    /// one may burst again, even before the CUSUM has come back to 0 (a spike
    /// just before a real step must not use up the step's burst).
    pub fn suspicion_gone(&mut self) {
        self.stop();
        self.last_for = None;
    }

    pub fn view(&self) -> BurstView {
        BurstView {
            active: self.next.is_some(),
            ..self.view
        }
    }

    fn refill(&mut self, now: Instant) {
        let gained = self.tokens_at.map_or(BUDGET, |t| {
            now.saturating_duration_since(t).as_secs_f64() * BUDGET / 60.0
        });
        self.tokens = (self.tokens + gained).min(BUDGET);
        self.tokens_at = Some(self.tokens_at.map_or(now, |t| t.max(now)));
    }
}
