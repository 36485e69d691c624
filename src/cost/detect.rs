//! [`StepDetector`]: is the RTT level of a link still the one its cost was
//! computed from? A two-sided CUSUM (Page 1954) on log-RTT, in units of a
//! robust scale (MAD), with each sample's weight clipped.
//!
//! Why this and not a median crossing thresholds plus a fixed hold-down (what
//! it replaces): the hold-down was a time, the same for a 16x step and for a
//! step at the noise level, so it made every change late (14 s with 1 probe/s)
//! and still had to be long because it did not know how noisy the link was.
//! The CUSUM weighs each sample by how far it is from the reference *in units
//! of this link's own jitter*, so a step far above the jitter is confirmed in a
//! few samples and one within the jitter needs many, and one rule gives a false
//! alarm rate that does not depend on how noisy the link is.
//!
//! Per sample `y = ln(rtt)`, `z = clamp((y - reference) / scale, -CLIP, CLIP)`,
//! `up = max(0, up + z - K)`, `down = max(0, down - z - K)`. The evidence for a
//! shift is `up` or `down`; past [`H`] the samples since that sum last left 0
//! (the change point, as CUSUM estimates it) are a candidate new level: their
//! median, with a margin of [`MARGIN`] standard errors. Whether it is *worth*
//! applying (the `[cost]` thresholds, timers) is the estimator's decision.
//!
//! - Spikes: the clip bounds what one sample adds (`CLIP - K` = 2.5 with H = 10),
//!   so it takes at least 5 far samples in a short run; and the candidate is a
//!   median, so a run of spikes among normal samples gives a normal level.
//! - Scale: `1.4826 * MAD` of the residuals (sample minus the reference of the
//!   time) of the last [`SCALE_WINDOW`] samples taken while no evidence is
//!   building: neither a step nor the levels before it inflate the scale it is
//!   measured in. Floored at [`SCALE_FLOOR`] (1 %: timestamping granularity,
//!   and a clean link still needs a real step).
//! - Reaction: a step far beyond the jitter adds `CLIP - K` per sample: 5
//!   samples; one of `d` scales adds about `d - K`: `H / (d - K)` samples.
//!   Figures (with the estimator's gate) are in the module docs of [`super`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples in the robust scale estimate.
pub const SCALE_WINDOW: usize = 64;
/// CUSUM reference value, in scales: drift below half a scale is noise.
pub const K: f64 = 0.5;
/// CUSUM decision interval, in scales.
pub const H: f64 = 10.0;
/// Largest weight of one sample, in scales.
pub const CLIP: f64 = 3.0;
/// Least scale, as a fraction of the level (1 %).
pub const SCALE_FLOOR: f64 = 0.01;
/// The candidate level's uncertainty band, in standard errors of a median.
pub const MARGIN: f64 = 2.0;
/// A candidate needs at least this many samples since its change point.
pub const MIN_SAMPLES: usize = 5;
/// Below this many samples, the candidate is also held to its 20 % quantile
/// (towards the reference): at least 4 of 5, 9 of 10... samples must show the
/// shift, so a few bursts that happen to cluster are not a level.
pub const CONSISTENT_BELOW: usize = 32;
const CONSISTENT_QUANTILE: f64 = 0.2;
/// Evidence (in scales) at which a shift is suspected: one sample at the clip
/// (`CLIP - K`), or several smaller ones. The estimator may then probe faster
/// ([`super::burst`]), so that the confirmation does not wait for the interval.
pub const SUSPECT: f64 = CLIP - K;
/// Samples kept since the oldest change point (the candidate's median).
const RECENT: usize = 64;
/// The scale is recomputed after this many new scale samples.
const SCALE_EVERY: usize = 4;

/// A sustained shift of the RTT level, as seen so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shift {
    /// Median of the samples since the change point.
    pub level: Duration,
    /// `level` shifted by [`MARGIN`] standard errors towards the reference:
    /// the least the level has moved, what the thresholds are checked on.
    pub cautious: Duration,
    /// Samples since the change point.
    pub samples: usize,
    /// When the first of them arrived.
    pub since: Instant,
    /// When the latest of them arrived.
    pub last: Instant,
    /// Since when it has held without a break: `since`, or the sample after
    /// the latest one back on the reference's side of the midpoint between
    /// the reference and the new level, and more than [`CLIP`] scales from it
    /// (an episode that ended and one that began again are not one shift; a
    /// real step's samples scatter by the link's own jitter around the new
    /// level). The new level: the median since the change point or that of
    /// the latest [`MIN_SAMPLES`], whichever makes the stricter test (jitter
    /// that started the evidence just before a step is a break from what
    /// came after the step, not a part of the step until outvoted).
    pub steady_since: Instant,
    /// The latest sample is on the shifted side of the midpoint between the
    /// reference and `level` (the shift still holds).
    pub holds: bool,
    /// Upwards (a longer RTT).
    pub up: bool,
}

/// Evidence of a shift building up, not yet confirmed: worth a closer look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suspicion {
    /// Upwards (a longer RTT).
    pub up: bool,
    /// Number of the first sample of the evidence after the last one back
    /// from the latest sample (see [`Shift::steady_since`]): one suspicion,
    /// one number, and a step just after jitter is a suspicion of its own.
    pub start: u64,
    /// The latest sample.
    pub latest: Duration,
}

/// What `show links` shows of the detector.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DetectorView {
    /// The level the detector compares samples with (ms).
    pub level_ms: Option<f64>,
    /// Jitter scale, as a fraction of the level.
    pub scale: f64,
    /// Evidence of a shift, in units of the decision interval (1.0 = confirmed).
    pub evidence: f64,
    /// The level a shift would be applied at, once there is evidence (ms).
    pub candidate_ms: Option<f64>,
    pub candidate_samples: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct Side {
    sum: f64,
    /// Number of the first sample after the sum last was 0.
    start: u64,
}

#[derive(Clone, Debug)]
pub struct StepDetector {
    /// ln(seconds) of the level samples are compared with; `None` until based.
    reference: Option<f64>,
    scale: f64,
    /// Residuals from the reference of their time (raw ln samples before the first).
    scale_samples: VecDeque<f64>,
    scale_pushed: usize,
    up: Side,
    down: Side,
    /// Samples counted since creation (the number of the next one).
    count: u64,
    /// The last [`RECENT`] samples: (arrival, ln seconds).
    recent: VecDeque<(Instant, f64)>,
}

impl Default for StepDetector {
    fn default() -> Self {
        StepDetector::new()
    }
}

impl StepDetector {
    pub fn new() -> StepDetector {
        StepDetector {
            reference: None,
            scale: SCALE_FLOOR,
            scale_samples: VecDeque::new(),
            scale_pushed: 0,
            up: Side::default(),
            down: Side::default(),
            count: 0,
            recent: VecDeque::new(),
        }
    }

    /// Forget everything (the link went down).
    pub fn clear(&mut self) {
        *self = StepDetector::new();
    }

    /// The level samples are now compared with: the one just applied (or
    /// tracked); the evidence starts again from nothing.
    pub fn rebase(&mut self, level: Duration) {
        let r = ln(level);
        if self.reference.is_none() {
            // Samples taken before there was a level become residuals from it.
            for y in self.scale_samples.iter_mut() {
                *y -= r;
            }
            self.update_scale();
        }
        self.reference = Some(r);
        self.up = Side {
            sum: 0.0,
            start: self.count,
        };
        self.down = self.up;
    }

    pub fn reference(&self) -> Option<Duration> {
        self.reference.map(exp)
    }

    /// One RTT sample at `at`; the shift it confirms, if any.
    pub fn push(&mut self, at: Instant, rtt: Duration) -> Option<Shift> {
        let y = ln(rtt);
        let n = self.count;
        self.count += 1;
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((at, y));
        let Some(r) = self.reference else {
            self.push_scale(y);
            return None;
        };
        let z = ((y - r) / self.scale).clamp(-CLIP, CLIP);
        step(&mut self.up, z - K, n);
        step(&mut self.down, -z - K, n);
        if self.up.sum < H / 2.0 && self.down.sum < H / 2.0 {
            self.push_scale(y - r);
        }
        self.shift()
    }

    /// Evidence of at least [`SUSPECT`] in the direction of the latest sample
    /// (`None`: no shift suspected).
    pub fn suspicion(&self) -> Option<Suspicion> {
        let r = self.reference?;
        let &(_, y) = self.recent.back()?;
        let (side, up) = if y >= r {
            (self.up, true)
        } else {
            (self.down, false)
        };
        if side.sum < SUSPECT {
            return None;
        }
        // Its first sample: after the last one back from the latest (a
        // spike or an episode before a step started the evidence; the step
        // is a new suspicion, worth a burst of its own, at its first sample).
        let first = self.count - self.recent.len() as u64;
        let skip = (side.start.max(first) - first) as usize;
        let back = self.back_from(y, up);
        let start = self
            .recent
            .iter()
            .skip(skip)
            .rposition(|s| if up { s.1 < back } else { s.1 > back })
            .map_or(side.start.max(first), |i| first + (skip + i + 1) as u64);
        Some(Suspicion {
            up,
            start,
            latest: exp(y),
        })
    }

    /// The shift the evidence so far confirms (`None`: not enough).
    pub fn shift(&self) -> Option<Shift> {
        let (side, up) = self.leading();
        if side.sum <= H {
            return None;
        }
        let c = self.candidate(side, up)?;
        (c.samples >= MIN_SAMPLES).then_some(c)
    }

    /// The side judged: the one the latest sample is on, once its evidence
    /// is past [`H`], else the other one past it, else the larger. Not the
    /// larger alone: evidence that kept growing the other way (a level a
    /// little off, too little to apply, broken too often to be tracked)
    /// would hold a step back until the step's own evidence outgrew it.
    fn leading(&self) -> (Side, bool) {
        let latest_up = match (self.reference, self.recent.back()) {
            (Some(r), Some(&(_, y))) => y >= r,
            _ => self.up.sum >= self.down.sum,
        };
        let (toward, away) = if latest_up {
            ((self.up, true), (self.down, false))
        } else {
            ((self.down, false), (self.up, true))
        };
        if toward.0.sum > H {
            toward
        } else if away.0.sum > H {
            away
        } else if self.up.sum >= self.down.sum {
            (self.up, true)
        } else {
            (self.down, false)
        }
    }

    /// The samples since the change point: the median, and the cautious end.
    /// Leading samples still on the reference side of the midpoint between the
    /// reference and the latest [`MIN_SAMPLES`] are dropped (the sum may have
    /// left 0 on noise a little before a real step).
    fn candidate(&self, side: Side, up: bool) -> Option<Shift> {
        let first = self.count - self.recent.len() as u64;
        let skip = (side.start.max(first) - first) as usize;
        let ys: Vec<f64> = self.recent.iter().skip(skip).map(|s| s.1).collect();
        let mut latest = ys[ys.len().saturating_sub(MIN_SAMPLES)..].to_vec();
        let now_level = median_sorted(&mut latest)?;
        let mid = (self.reference.unwrap_or(now_level) + now_level) / 2.0;
        let lead = ys
            .iter()
            .take_while(|&&y| if up { y < mid } else { y > mid })
            .count();
        let since = self.recent.get(skip + lead)?.0;
        let &(last, latest) = self.recent.back()?;
        let mut v = ys[lead..].to_vec();
        let mut med = median_sorted(&mut v)?;
        // Back at the old level: past the midpoint, and further from the new
        // level than its own jitter goes (the jitter at a new, lower level
        // may be larger in log terms than the scale measured at the old one);
        // from the level of all the samples since the change point or from
        // the latest ones, whichever is stricter: jitter that started the
        // evidence before a real step (and kept it from falling back to 0)
        // is a break from the level after the step, and does not hold it
        // back until the step's samples outnumber it.
        let (a, b) = (self.back_from(med, up), self.back_from(now_level, up));
        let back = if up { a.max(b) } else { a.min(b) };
        // The candidate is what came after the last break: an episode that
        // ended (or a spike) before a real step is not part of its level.
        let broke = ys[lead..]
            .iter()
            .rposition(|&y| if up { y < back } else { y > back })
            .filter(|&i| i > 0)
            .map_or(0, |i| i + 1);
        let steady_since = match broke {
            0 => since,
            i => self.recent.get(skip + lead + i)?.0,
        };
        if broke > 0 {
            v = ys[lead + broke..].to_vec();
            med = median_sorted(&mut v)?;
        }
        let mid_level = (self.reference.unwrap_or(med) + med) / 2.0;
        let holds = if up {
            latest > mid_level
        } else {
            latest < mid_level
        };
        let n = v.len();
        // Standard error of a median: sqrt(pi / 2) sigma / sqrt(n).
        let se = 1.2533 * self.scale / (n as f64).sqrt();
        let mut cautious = if up {
            med - MARGIN * se
        } else {
            med + MARGIN * se
        };
        if n < CONSISTENT_BELOW {
            let q = ((n - 1) as f64 * CONSISTENT_QUANTILE).floor() as usize;
            cautious = if up {
                cautious.min(v[q])
            } else {
                cautious.max(v[n - 1 - q])
            };
        }
        Some(Shift {
            level: exp(med),
            cautious: exp(cautious),
            samples: n,
            since,
            last,
            steady_since,
            holds,
            up,
        })
    }

    /// Where a sample is back from `level` (ln): past the midpoint between
    /// the reference and `level`, and further from `level` than [`CLIP`]
    /// scales (a new level's own jitter is no break).
    fn back_from(&self, level: f64, up: bool) -> f64 {
        let mid = (self.reference.unwrap_or(level) + level) / 2.0;
        if up {
            (level - CLIP * self.scale).min(mid)
        } else {
            (level + CLIP * self.scale).max(mid)
        }
    }

    pub fn view(&self) -> DetectorView {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (side, up) = self.leading();
        let c = (side.sum > 0.0).then(|| self.candidate(side, up)).flatten();
        DetectorView {
            level_ms: self.reference().map(ms),
            scale: self.scale,
            evidence: side.sum / H,
            candidate_ms: c.map(|c| ms(c.level)),
            candidate_samples: c.map_or(0, |c| c.samples),
        }
    }

    fn push_scale(&mut self, y: f64) {
        if self.scale_samples.len() >= SCALE_WINDOW {
            self.scale_samples.pop_front();
        }
        self.scale_samples.push_back(y);
        self.scale_pushed += 1;
        if self.scale_samples.len() < SCALE_WINDOW || self.scale_pushed % SCALE_EVERY == 0 {
            self.update_scale();
        }
    }

    fn update_scale(&mut self) {
        self.scale =
            mad(&self.scale_samples).map_or(SCALE_FLOOR, |m| (1.4826 * m).max(SCALE_FLOOR));
    }
}

fn step(side: &mut Side, inc: f64, n: u64) {
    if side.sum <= 0.0 {
        side.start = n;
    }
    side.sum = (side.sum + inc).max(0.0);
}

fn ln(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-6).ln()
}

fn exp(y: f64) -> Duration {
    Duration::try_from_secs_f64(y.exp()).unwrap_or(Duration::MAX)
}

/// Median absolute deviation from the median.
fn mad(xs: &VecDeque<f64>) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().collect();
    let m = median_sorted(&mut v)?;
    for x in &mut v {
        *x = (*x - m).abs();
    }
    median_sorted(&mut v)
}

pub(super) fn median_sorted(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}
