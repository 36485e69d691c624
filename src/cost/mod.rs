//! Link cost from measured latency: probe samples and the time in, a bounded,
//! hysteretic cost and link up/down events out. Sans-IO like [`crate::session`]:
//! no clock, no socket; the runtime sends the probes and feeds their fate in.
//!
//! Pipeline, per link ([`Estimator`]):
//! 1. probes: sent / answered (RTT) / lost (no reply within `probe_timeout`);
//! 2. smoothing: median of the last `window` RTTs (spike-proof, one clean jump per
//!    step), loss as the median of the windowed loss over 3 windows (burst-proof);
//! 3. cost: `clamp(offset + rtt_us * factor + loss_penalty * loss, min, max)`;
//! 4. hysteresis: beyond an absolute and a relative threshold, held for
//!    `hold_down`, at most one change per `min_change_interval`;
//! 5. link state: `down_after` losses in a row -> [`CostEvent::Down`] at once;
//!    `up_after` answers in a row -> [`CostEvent::Up`] and a cost at once.
//!
//! Defaults and the reaction times they imply are on [`CostParams`].
//!
//! Why the default relative threshold is 25 % and not 10 %: with ±30 % uniform
//! jitter the median of 16 samples wanders by ~1.4 ms (1 sd) at 20 ms; any
//! threshold near 10 % is crossed for 5 s many times in 10 minutes (simulated:
//! almost every run), 25 % practically never. Clean links can run lower.

mod estimator;
mod params;

pub use estimator::{
    CostChange, CostEvent, CostSnapshot, Estimator, HistoryEntry, LinkState, HISTORY_LEN,
};
pub use params::{CostParams, MAX_WINDOW};

#[cfg(test)]
mod tests;
