//! [`Damping`] of a flapping link, after RFC 2439's figure of merit (§4.2):
//! each `Down` adds [`FLAP_PENALTY`] to a penalty that halves every
//! `damp_half_life`; at `damp_suppress` the link is suppressed (it stays down
//! even when it answers) until the penalty decays below `damp_reuse`. The
//! penalty is capped (§4.8.6: the ceiling) so suppression never lasts longer
//! than `damp_max_suppress`.

use super::params::CostParams;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Added to the penalty by each `Down`.
pub const FLAP_PENALTY: f64 = 1000.0;
/// Below this the penalty is forgotten, and the flaps counted with it.
const FORGOTTEN: f64 = 0.1 * FLAP_PENALTY;

#[derive(Clone, Debug, Default)]
pub struct Damping {
    /// The penalty as of `at`.
    penalty: f64,
    at: Option<Instant>,
    /// Flaps since the penalty was last forgotten.
    flaps: u32,
    suppressed: bool,
}

/// What `show links` shows of the damping (`None` there when no penalty).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DampingView {
    pub flaps: u32,
    pub penalty: u32,
    pub suppressed: bool,
    /// Seconds until the penalty is below `damp_reuse` (suppressed only).
    pub reuse_in_s: Option<f64>,
}

impl Damping {
    /// The penalty at `now`.
    pub fn penalty(&self, p: &CostParams, now: Instant) -> f64 {
        let Some(at) = self.at else {
            return 0.0;
        };
        let dt = now.saturating_duration_since(at).as_secs_f64();
        self.penalty * 0.5f64.powf(dt / p.damp_half_life.as_secs_f64().max(1e-3))
    }

    /// The link went down at `now`.
    pub fn flap(&mut self, p: &CostParams, now: Instant) {
        let mut penalty = self.penalty(p, now);
        if penalty < FORGOTTEN {
            self.flaps = 0;
        }
        // §4.8.6: the ceiling is what decays to the reuse level within the
        // longest suppression.
        let ceiling = f64::from(p.damp_reuse)
            * 2f64.powf(p.damp_max_suppress.as_secs_f64() / p.damp_half_life.as_secs_f64());
        penalty = (penalty + FLAP_PENALTY).min(ceiling.max(FLAP_PENALTY));
        self.penalty = penalty;
        self.at = Some(now);
        self.flaps += 1;
        if p.damping && penalty >= f64::from(p.damp_suppress) {
            self.suppressed = true;
        }
    }

    /// Whether the link must stay down at `now` (suppression ends once the
    /// penalty is below the reuse level).
    pub fn suppressed(&mut self, p: &CostParams, now: Instant) -> bool {
        if self.suppressed && (!p.damping || self.penalty(p, now) < f64::from(p.damp_reuse)) {
            self.suppressed = false;
        }
        self.suppressed
    }

    /// More than one flap in memory (the penalty is above one flap's): the
    /// link comes up with its loss history and a cautious cost.
    pub fn flapping(&self, p: &CostParams, now: Instant) -> bool {
        self.penalty(p, now) > FLAP_PENALTY
    }

    /// When the penalty decays below the reuse level (suppressed only).
    pub fn reuse_at(&self, p: &CostParams) -> Option<Instant> {
        let at = self.at.filter(|_| self.suppressed)?;
        let halvings = (self.penalty / f64::from(p.damp_reuse)).log2().max(0.0);
        // Just past the crossing, so that a check then finds it below.
        let wait = p.damp_half_life.as_secs_f64() * halvings + 1e-3;
        Some(at + Duration::try_from_secs_f64(wait).unwrap_or(p.damp_max_suppress))
    }

    /// "link damped: 3 flaps, penalty 2400, reuse in 41 s"
    pub fn reason(&self, p: &CostParams, now: Instant) -> String {
        let reuse = self.reuse_at(p).map_or(0.0, |t| {
            t.saturating_duration_since(now).as_secs_f64().ceil()
        });
        format!(
            "link damped: {} flaps, penalty {:.0}, reuse in {reuse:.0} s",
            self.flaps,
            self.penalty(p, now)
        )
    }

    pub fn view(&self, p: &CostParams, now: Instant) -> Option<DampingView> {
        let penalty = self.penalty(p, now);
        if penalty < FORGOTTEN && !self.suppressed {
            return None;
        }
        Some(DampingView {
            flaps: self.flaps,
            penalty: penalty.round() as u32,
            suppressed: self.suppressed,
            reuse_in_s: self
                .reuse_at(p)
                .map(|t| t.saturating_duration_since(now).as_secs_f64()),
        })
    }
}
