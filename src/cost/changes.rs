//! When the applied cost of an up link changes (a child of `estimator.rs`):
//! - settling: the provisional cost from coming up is replaced once by the
//!   median of `window` samples, whatever the thresholds;
//! - RTT: a shift the step detector ([`super::super::detect`]) confirms, if it
//!   is worth it (beyond both thresholds from the applied cost and from the
//!   level tracked so far, at its cautious end), once it has held for
//!   `hold_down` and, unless it is by a factor of 2 or more,
//!   `min_change_interval` after the last change. A confirmed shift not worth
//!   applying becomes the tracked level (after [`TRACK_AFTER`] samples);
//! - loss: the burst-proof sustained loss moving the cost beyond the thresholds
//!   for `hold_down`, at the applied RTT level, and the loss over 16 windows
//!   (less 3 times the square root of its count, see `long_loss_bounds`)
//!   moving it as far: 2 % average loss in bursts of 1-3 probes gives a
//!   sustained loss (3 windows) of 0 to ~19 % at random and up to 22 losses
//!   in 256 probes, which must not be a change each time (simulated, 86 400
//!   probes: 39 changes without the long span, 7 with 8 windows and one
//!   square root, 3 with 16 windows and one, 2 with two, none with three).
//!   The price: loss is priced when it is well above that (25 % loss after
//!   ~110 probes; 10 % at 20 ms hardly), and loss going away is seen over up
//!   to 16 windows (~4 min at 1 probe/s) before the cost comes down.

use super::{fmt_ms, median, Applied, Estimator, LinkState, Pending};
use crate::cost::detect::Shift;
use std::time::{Duration, Instant};

/// A confirmed shift not worth applying, seen for this many samples, becomes
/// the level the detector compares with (the link moved a little).
pub const TRACK_AFTER: usize = 32;
/// A change by this factor or more is not held back by `min_change_interval`.
pub const LARGE_FACTOR: f64 = 2.0;

impl Estimator {
    /// A new RTT sample of an up link.
    pub(super) fn on_sample(&mut self, now: Instant, rtt: Duration) {
        if self.provisional {
            self.detector.push(now, rtt);
            if self.rtts.len() >= self.p.window {
                self.settle(now, "settled");
            }
            return;
        }
        self.detector.push(now, rtt);
        self.evaluate(now);
        self.look_closer(now, rtt);
    }

    /// A burst of extra probes (`burst.rs`) while the detector suspects a
    /// shift that would be worth applying: the latest sample is beyond the
    /// thresholds from the applied cost, in the direction of the evidence.
    /// The burst stops as soon as either fails (a spike: a probe or two, even
    /// while evidence from a level a little off keeps the suspicion alive:
    /// in the lab, relay spikes on a 6 ms link ran every burst to its 7
    /// probes and drained the budget before a step, which then waited for the
    /// 5th sample on the interval); a later sample beyond them may burst again.
    fn look_closer(&mut self, now: Instant, rtt: Duration) {
        let Some(applied) = self.applied else {
            return;
        };
        let latest = self.p.cost(rtt, applied.loss);
        let beyond = |up: bool| (latest > applied.cost) == up && self.exceeds(latest, applied.cost);
        match self.detector.suspicion() {
            Some(s) if beyond(s.up) => {
                self.burst.suspect(&self.p, (s.up, s.start), now);
            }
            _ => self.burst.suspicion_gone(),
        }
    }

    /// The provisional cost is replaced by the median of the window (once).
    pub(super) fn settle(&mut self, now: Instant, what: &str) {
        let Some(rtt) = median(self.rtts.iter().copied()) else {
            return;
        };
        self.provisional = false;
        self.detector.rebase(rtt);
        // A burst among the first samples is not yet a loss rate.
        let loss = self.sustained_loss().min(self.long_loss_bounds().0);
        let cost = self.p.cost(rtt, loss);
        let prov = self.applied;
        if prov.is_some_and(|a| a.cost == cost) {
            self.applied = Some(Applied { cost, rtt, loss });
            return;
        }
        let mut reason = format!(
            "{what}: rtt {} (median of {})",
            fmt_ms(rtt),
            self.rtts.len()
        );
        if loss > 0.0 {
            reason += &format!(", loss {:.0} %", loss * 100.0);
        }
        if let Some(a) = prov {
            reason += &format!(
                ", cost {} -> {cost} (provisional was rtt {})",
                a.cost,
                fmt_ms(a.rtt)
            );
        }
        self.apply(now, cost, rtt, loss, reason);
    }

    /// Applies what is due: a confirmed RTT shift or a held change of the loss.
    pub(super) fn evaluate(&mut self, now: Instant) {
        if self.state != LinkState::Up || self.provisional {
            return;
        }
        self.shift_due = None;
        if let Some(shift) = self.detector.shift() {
            if self.judge(now, shift) {
                return;
            }
        }
        self.evaluate_loss(now);
    }

    /// Applies `shift` if it is worth it and due; `true` if it was applied.
    fn judge(&mut self, now: Instant, shift: Shift) -> bool {
        let Some(applied) = self.applied else {
            return false;
        };
        let reference = self.detector.reference().unwrap_or(applied.rtt);
        let at = |rtt: Duration| self.p.cost(rtt, applied.loss);
        let cautious = at(shift.cautious);
        let toward = (cautious > applied.cost) == shift.up;
        let worth =
            toward && self.exceeds(cautious, applied.cost) && self.exceeds(cautious, at(reference));
        if !worth {
            // Tracked, not applied, once well estimated, unless at face value
            // it is a change worth making (more samples will tell), or the
            // latest sample is (a rebase would drop the evidence of a step
            // that has just begun: its burst, its first samples).
            let latest_beyond = self
                .last_rtt
                .is_some_and(|r| self.exceeds(at(r), applied.cost));
            if shift.samples >= TRACK_AFTER
                && !self.exceeds(at(shift.level), applied.cost)
                && !latest_beyond
            {
                self.detector.rebase(shift.level);
            }
            return false;
        }
        // It has lasted `hold_down`: its samples span it without a break, and
        // the latest still shows it (an episode that ended, or two with a
        // gap, is no step, however many samples a burst took of it).
        let lasted = shift.last.saturating_duration_since(shift.steady_since) >= self.p.hold_down;
        if !(lasted && shift.holds) {
            return false;
        }
        let ratio = f64::from(cautious.max(1)) / f64::from(applied.cost.max(1));
        let large = !(1.0 / LARGE_FACTOR..LARGE_FACTOR).contains(&ratio);
        if let (false, Some(t)) = (large, self.last_change) {
            let due = t + self.p.min_change_interval;
            if now < due {
                self.shift_due = Some(due);
                return false;
            }
        }
        // The loss part moves only by its own rule (`evaluate_loss`).
        let loss = applied.loss;
        let cost = self.p.cost(shift.level, loss);
        let mut reason = format!(
            "rtt {} -> {} (shift confirmed by {} samples over {:.1} s)",
            fmt_ms(applied.rtt),
            fmt_ms(shift.level),
            shift.samples,
            now.saturating_duration_since(shift.since).as_secs_f64()
        );
        if loss > 0.0 {
            reason += &format!(", loss {:.0} %", loss * 100.0);
        }
        reason += &pct(applied.cost, cost);
        self.detector.rebase(shift.level);
        self.apply(now, cost, shift.level, loss, reason);
        true
    }

    /// The loss moving the cost at the applied RTT: beyond the thresholds, in
    /// the same direction and settled (near the level it had when the
    /// hold-down started: a loss fraction still ramping up over a window
    /// restarts it, so one change of loss gives one change of cost) for
    /// `hold_down`, spaced by `min_change_interval` unless large.
    fn evaluate_loss(&mut self, now: Instant) {
        let Some(applied) = self.applied else {
            return;
        };
        let loss = self.sustained_loss();
        let candidate = self.p.cost(applied.rtt, loss);
        let up = candidate > applied.cost;
        let (low, high) = self.long_loss_bounds();
        let cautious = if up { loss.min(low) } else { loss.max(high) };
        let cautious_cost = self.p.cost(applied.rtt, cautious);
        if !self.exceeds(candidate, applied.cost)
            || !self.exceeds(cautious_cost, applied.cost)
            || (cautious_cost > applied.cost) != up
        {
            self.pending = None;
            return;
        }
        let since = match self.pending {
            Some(pd) if pd.up == up && !self.exceeds(candidate, pd.level) => pd.since,
            _ => {
                self.pending = Some(Pending {
                    since: now,
                    up,
                    level: candidate,
                });
                now
            }
        };
        let ratio = f64::from(candidate.max(1)) / f64::from(applied.cost.max(1));
        let large = !(1.0 / LARGE_FACTOR..LARGE_FACTOR).contains(&ratio);
        let held = now.saturating_duration_since(since) >= self.p.hold_down;
        let spaced = large
            || self
                .last_change
                .is_none_or(|t| now.saturating_duration_since(t) >= self.p.min_change_interval);
        if !(held && spaced) {
            return;
        }
        let reason = format!(
            "loss {:.0} % -> {:.0} % at rtt {}{}",
            applied.loss * 100.0,
            loss * 100.0,
            fmt_ms(applied.rtt),
            pct(applied.cost, candidate)
        );
        self.apply(now, candidate, applied.rtt, loss, reason);
    }

    /// `a` differs from `b` by more than both thresholds (relative to `b`).
    pub(super) fn exceeds(&self, a: u32, b: u32) -> bool {
        let diff = (i64::from(a) - i64::from(b)).unsigned_abs();
        diff > u64::from(self.p.abs_threshold) && diff as f64 > self.p.rel_threshold * f64::from(b)
    }

    pub(super) fn apply(
        &mut self,
        now: Instant,
        cost: u32,
        rtt: Duration,
        loss: f64,
        reason: String,
    ) {
        let old = self.applied.map(|a| a.cost);
        self.applied = Some(Applied { cost, rtt, loss });
        self.pending = None;
        self.shift_due = None;
        self.burst.stop();
        self.last_change = Some(now);
        self.record_history(now, old, Some(cost), &reason);
        self.events
            .push_back(super::CostEvent::Cost { cost, reason });
    }
}

fn pct(old: u32, new: u32) -> String {
    let pct = (f64::from(new) / f64::from(old.max(1)) - 1.0) * 100.0;
    format!(", cost {old} -> {new} ({pct:+.0} %)")
}
