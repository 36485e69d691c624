//! Bursts (`burst.rs`) in a simulation in time: probes on the interval's grid,
//! extra probes when the estimator asks, each answered after the RTT of the
//! moment it left; with the stream, a probe on the grid is answered only at
//! the neighbor's next packet (one interval later), a burst's at once.

use super::estimator::burst::{self, Burst};
use super::tests::{env_or, ms, Rng};
use super::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

pub(super) struct TimeSim {
    pub(super) est: Estimator,
    t0: Instant,
    seq: u64,
    grid: u32,
    /// (arrival, seq, rtt) of the replies on their way.
    replies: BinaryHeap<Reverse<(Duration, u64, Duration)>>,
    /// Grid probes answered one interval late (the stream's echo).
    pub(super) stream: bool,
    pub(super) events: Vec<(f64, CostEvent)>,
    pub(super) probes: u64,
    pub(super) extra: u64,
}

impl TimeSim {
    pub(super) fn new(p: CostParams) -> TimeSim {
        let t0 = Instant::now();
        TimeSim {
            est: Estimator::new(p, t0),
            t0,
            seq: 0,
            grid: 0,
            replies: BinaryHeap::new(),
            stream: false,
            events: Vec::new(),
            probes: 0,
            extra: 0,
        }
    }

    fn send(&mut self, at: Duration, rtt: Option<Duration>, late: Duration) {
        if let Some(r) = rtt {
            self.replies.push(Reverse((at + r + late, self.seq, r)));
        }
        self.seq += 1;
    }

    /// Runs until `secs` after the start; `rtt(t)`: the RTT of a probe that
    /// leaves at `t` seconds (`None`: lost).
    pub(super) fn run_until(&mut self, secs: f64, mut rtt: impl FnMut(f64) -> Option<Duration>) {
        let end = Duration::from_secs_f64(secs);
        let interval = self.est.params().interval;
        let mut last = Duration::ZERO;
        let mut same = 0;
        loop {
            let grid = interval * self.grid;
            let reply = self.replies.peek().map(|r| r.0 .0);
            let since = |t: Instant| t.saturating_duration_since(self.t0);
            let burst = self.est.burst_at().map(since);
            let tick = self.est.poll_timeout().map(since);
            let t = [Some(grid), reply, burst, tick]
                .into_iter()
                .flatten()
                .min()
                .expect("the grid");
            if t >= end {
                break;
            }
            same = if t == last { same + 1 } else { 0 };
            assert!(same < 1000, "stuck at {t:?}");
            last = t;
            let now = self.t0 + t;
            if reply == Some(t) {
                let Reverse((_, seq, r)) = self.replies.pop().expect("peeked");
                self.est.on_answer(seq, Some(r), now);
            } else if burst == Some(t) {
                self.est.on_burst_probe_sent(self.seq, now);
                self.extra += 1;
                let r = rtt(t.as_secs_f64());
                self.send(t, r, Duration::ZERO);
            } else if grid == t {
                self.est.on_tick(now);
                self.est.on_probe_sent(self.seq, now);
                self.probes += 1;
                self.grid += 1;
                let r = rtt(t.as_secs_f64());
                let late = if self.stream {
                    interval
                } else {
                    Duration::ZERO
                };
                self.send(t, r, late);
            } else {
                self.est.on_tick(now);
            }
            while let Some(e) = self.est.poll_event() {
                self.events.push((t.as_secs_f64(), e));
            }
        }
    }

    /// Applied costs, with when (s).
    pub(super) fn costs(&self) -> Vec<(f64, u32)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                CostEvent::Cost { cost, .. } => Some((*t, *cost)),
                _ => None,
            })
            .collect()
    }

    pub(super) fn downs(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, CostEvent::Down { .. }))
            .count()
    }
}

fn params(interval_s: f64) -> CostParams {
    CostParams {
        interval: Duration::from_secs_f64(interval_s),
        ..CostParams::default()
    }
}

/// Seconds from a step `from_ms` -> `to_ms` (±`jitter` uniform) at 60 s plus
/// a phase within the interval until the first cost near `to_ms`.
pub(super) fn reaction_s(
    p: CostParams,
    stream: bool,
    from_ms: f64,
    to_ms: f64,
    jitter: f64,
    seed: u64,
) -> Option<f64> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let phase = (rng.sym() + 1.0) / 2.0;
    let at = 60.0 + phase * p.interval.as_secs_f64();
    let mut s = TimeSim::new(p);
    s.stream = stream;
    s.run_until(at + 30.0, |t| {
        let level = if t < at { from_ms } else { to_ms };
        Some(ms(level * (1.0 + jitter * rng.sym())))
    });
    let target = (to_ms * 1000.0) as u32;
    s.costs()
        .into_iter()
        .find(|&(t, c)| t >= at && c.abs_diff(target) < target / 4)
        .map(|(t, _)| t - at)
}

/// Issue 13 item 5 at 1 probe/s: with bursts, a step is applied about
/// `hold_down` after its first sample: under 2.5 s with ICMPv6 echo, under
/// 3.5 s with the stream (its first sample waits for the neighbor's next
/// packet), where it took the 5th sample on the interval (4-6 s) before.
#[test]
fn at_1_probe_per_s_a_burst_applies_a_step_about_hold_down_after_its_first_sample() {
    let steps = [
        (5.0, 80.0, 0.02),
        (80.0, 5.0, 0.02),
        (20.0, 26.0, 0.02),
        (20.0, 13.0, 0.02),
        (5.0, 80.0, 0.3),
        (80.0, 5.0, 0.3),
    ];
    for (from, to, jitter) in steps {
        for seed in 1..=5 {
            for stream in [false, true] {
                let t = reaction_s(params(1.0), stream, from, to, jitter, seed)
                    .unwrap_or_else(|| panic!("{from} -> {to} ms ±{jitter}: never applied"));
                let bound = if stream { 3.5 } else { 2.5 };
                assert!(
                    (1.0..bound).contains(&t),
                    "{from} -> {to} ms ±{jitter}, stream {stream}: {t:.2} s"
                );
            }
            // Without bursts: the 5th sample on the interval.
            let p = CostParams {
                burst: false,
                ..params(1.0)
            };
            let t = reaction_s(p, false, from, to, jitter, seed).unwrap();
            assert!(t >= 4.0, "{from} -> {to} ms ±{jitter}, no burst: {t:.2} s");
        }
    }
}

/// At 10 probes/s the interval is fast enough: no burst, ever.
#[test]
fn at_10_probes_per_s_there_is_no_burst() {
    assert!(Burst::spacing(&params(0.1)).is_none());
    assert!(Burst::spacing(&params(1.0)).is_some());
    let mut rng = Rng(3);
    let mut s = TimeSim::new(params(0.1));
    s.run_until(120.0, |t| {
        let level = if t < 60.0 { 5.0 } else { 80.0 };
        Some(ms(level * (1.0 + 0.3 * rng.sym())))
    });
    assert_eq!(s.extra, 0);
    assert_eq!(s.costs().len(), 3, "{:?}", s.costs());
}

/// An episode shorter than `hold_down`, however many samples a burst takes of
/// it, is no step; one longer is (at every rate).
#[test]
fn an_episode_shorter_than_hold_down_changes_nothing() {
    for interval_s in [1.0, 0.5, 0.1] {
        for (len, changes) in [(0.9, 0), (1.6, 2)] {
            let mut s = TimeSim::new(params(interval_s));
            // Every 60 s from 90 s, at a phase that moves: twice the RTT for `len` s.
            s.run_until(95.0, |t| {
                let k = ((t - 90.0) / 60.0).floor().max(0.0);
                let start = 90.0 + 60.0 * k + 0.37 * k;
                let on = t >= 90.0 && (start..start + len).contains(&t);
                Some(ms(if on { 40.0 } else { 20.0 }))
            });
            let before = s.costs().len();
            s.run_until(90.0 + 60.0 * 10.0, |t| {
                let k = ((t - 90.0) / 60.0).floor().max(0.0);
                let start = 90.0 + 60.0 * k + 0.37 * k;
                let on = t >= 90.0 && (start..start + len).contains(&t);
                Some(ms(if on { 40.0 } else { 20.0 }))
            });
            let n = s.costs().len() - before;
            if changes == 0 {
                assert_eq!(n, 0, "{len} s at {interval_s} s: {:?}", s.costs());
            } else {
                assert!(n >= changes, "{len} s at {interval_s} s: {:?}", s.costs());
            }
        }
    }
}

/// A burst is bounded: at most `PROBES` per suspicion and `BUDGET` a minute;
/// a spike costs a probe or two.
#[test]
fn bursts_are_bounded_per_suspicion_and_per_minute() {
    // A spike every 10 s: each a short burst, stopped at the next sample.
    let mut s = TimeSim::new(params(1.0));
    s.run_until(600.0, |t| {
        Some(ms(
            if t >= 60.0 && (t as u64) % 10 == 3 && t.fract() < 0.01 {
                200.0
            } else {
                20.0
            },
        ))
    });
    let v = s.est.snapshot().burst;
    assert!(v.bursts >= 50, "{v:?}");
    assert!(v.probes <= 2 * v.bursts, "{v:?}");
    assert_eq!(s.costs().len(), 1, "{:?}", s.costs());
    // A level that keeps looking shifted and never settles (alternating
    // 20 / 60 ms every 0.7 s): no more than the budget.
    let mut s = TimeSim::new(params(1.0));
    s.run_until(60.0, |_| Some(ms(20.0)));
    let before = s.extra;
    s.run_until(660.0, |t| {
        Some(ms(if (t / 0.7) as u64 % 2 == 1 {
            60.0
        } else {
            20.0
        }))
    });
    let extra = s.extra - before;
    assert!(
        extra as f64 <= burst::BUDGET * 11.0,
        "{extra} extra probes in 10 min"
    );
}

#[test]
#[ignore = "debugging aid: prints the events of one reaction"]
fn print_one_reaction() {
    let seed: u64 = env_or("SEED", 1);
    let from: f64 = env_or("FROM", 20.0);
    let to: f64 = env_or("TO", 40.0);
    let jitter = 0.3;
    for k in 1..=20 {
        println!(
            "seed {k}: {:?}",
            reaction_s(params(1.0), true, from, to, jitter, k)
        );
    }
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let phase = (rng.sym() + 1.0) / 2.0;
    let at = 60.0 + phase;
    let mut s = TimeSim::new(params(1.0));
    s.stream = true;
    s.run_until(at + 30.0, |t| {
        let level = if t < at { from } else { to };
        Some(ms(level * (1.0 + jitter * rng.sym())))
    });
    println!("step at {at:.2}");
    for (t, e) in &s.events {
        println!("{t:.2} {e:?}");
    }
    println!("{:?}", s.est.snapshot().burst);
}

/// Two episodes with a short gap are not one shift: it must hold for
/// `hold_down` without a sample back at the old level (a burst samples the gap).
#[test]
fn two_short_episodes_with_a_gap_are_not_a_step() {
    let mut s = TimeSim::new(params(1.0));
    // Every 60 s from 89.9 s: +50 % for 0.5 s, 0.15 s back (a burst probe
    // falls in it), +50 % for 0.75 s: 1.4 s in all, 0.75 s at most in one.
    let on = |t: f64| {
        let x = (t - 89.9).rem_euclid(60.0);
        t >= 89.9 && (x < 0.5 || (0.65..1.4).contains(&x))
    };
    s.run_until(90.0 + 60.0 * 10.0, |t| {
        Some(ms(if on(t) { 30.0 } else { 20.0 }))
    });
    assert_eq!(s.costs().len(), 1, "{:?}", s.costs());
    assert!(s.est.snapshot().burst.bursts >= 10);
}

/// A step down to a level where the link's jitter is larger in log terms
/// (a few ms of absolute jitter on 6 ms, measured as 1 % at 42 ms) is
/// applied as fast: its jittery samples are no break, only a return past the
/// midpoint is.
#[test]
fn a_step_down_into_larger_relative_jitter_is_not_held_up() {
    let mut rng = Rng(5);
    for interval_s in [0.1, 1.0] {
        let mut s = TimeSim::new(params(interval_s));
        s.stream = true;
        let at = 60.05;
        s.run_until(at + 20.0, |t| {
            let spike = if rng.sym() > 0.4 {
                3.0 * (rng.sym() + 1.0) / 2.0
            } else {
                0.0
            };
            Some(ms(if t < at {
                42.0 * (1.0 + 0.01 * rng.sym())
            } else {
                6.6 + spike
            }))
        });
        let (t, c) = *s.costs().last().unwrap();
        assert!(c < 10_000, "{:?}", s.costs());
        let bound = if interval_s < 0.5 { 1.5 } else { 3.5 };
        assert!(t - at < bound, "at {interval_s} s: {:.2} s", t - at);
    }
}

/// A spike shortly before a real step (the CUSUM has not come back to 0
/// since): the step still gets its burst (a burst per crossing of the
/// suspicion threshold, not per change point).
#[test]
fn a_spike_just_before_a_step_does_not_use_up_its_burst() {
    let mut s = TimeSim::new(params(1.0));
    s.run_until(90.0, |t| {
        Some(ms(if (58.0..58.5).contains(&t) {
            40.0
        } else if t >= 60.5 {
            80.0
        } else {
            20.0
        }))
    });
    let (t, c) = *s.costs().last().unwrap();
    assert_eq!(c, 80_000, "{:?}", s.costs());
    assert!(
        t - 60.5 < 2.5,
        "{:.2} s {:?} {:?}",
        t - 60.5,
        s.events,
        s.est.snapshot().burst
    );
}

/// Seconds from `at` until the first cost within 25 % of `target_ms`, over a
/// run to `at + 30` s of `rtt(t)` (`None`: never).
fn reaction_to(
    interval_s: f64,
    stream: bool,
    at: f64,
    target_ms: f64,
    rtt: impl FnMut(f64) -> Option<Duration>,
) -> Option<f64> {
    let mut s = TimeSim::new(params(interval_s));
    s.stream = stream;
    s.run_until(at + 30.0, rtt);
    let target = (target_ms * 1000.0) as u32;
    s.costs()
        .into_iter()
        .find(|&(t, c)| t >= at && c.abs_diff(target) < target / 4)
        .map(|(t, _)| t - at)
}

/// Issue 13 item 5, the lab's outliers (9.95 s at 1 probe/s, 8.22 s at 0.1 s
/// for 4 -> 40 ms): jitter before a step kept the evidence from falling back
/// to 0 (the level a few % up, within the thresholds, and a spike past the
/// midpoint to the new level), and the step was held back: its samples were
/// measured against that episode's level until they outnumbered it, its
/// burst was taken for the episode's, and the episode's level was tracked
/// (a rebase) as the step's first samples came in. The step is applied
/// within the bursts' bound at 1 probe/s (its first sample plus `hold_down`,
/// plus the stream's echo: 2.5 s, 3.5 s; the target is 5 s) and within the
/// target at 10 probes/s (1.5 s).
#[test]
fn jitter_just_before_a_step_up_does_not_hold_it_back() {
    let mut failed = Vec::new();
    for (interval_s, bound_icmp, bound_stream) in [(1.0, 2.5, 3.5), (0.1, 1.5, 1.5)] {
        for seed in 1..=3u64 {
            // The spike this long before the step, the level up by `drift`
            // from 10 s before the spike.
            for lead_s in [2.0, 5.0, 8.0, 15.0] {
                for drift in [1.01, 1.02, 1.05] {
                    for stream in [false, true] {
                        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                        let at = 90.0 + (rng.sym() + 1.0) / 2.0 * interval_s;
                        let spike = at - lead_s;
                        let t = reaction_to(interval_s, stream, at, 40.0, |t| {
                            let level = if t >= at {
                                40.0
                            } else if (spike..spike + interval_s.max(0.3)).contains(&t) {
                                16.0
                            } else if t >= spike - 10.0 {
                                4.0 * drift
                            } else {
                                4.0
                            };
                            Some(ms(level * (1.0 + 0.02 * rng.sym())))
                        });
                        let bound = if stream { bound_stream } else { bound_icmp };
                        if !t.is_some_and(|t| t < bound) {
                            failed.push(format!(
                                "interval {interval_s} s, stream {stream}, seed {seed}, \
                                 spike {lead_s} s before, drift {drift}: {t:?}"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The lab's other outlier (4.8 s at 0.1 s for 7 -> 42 ms, "confirmed by 49
/// samples"): the level had settled ~10 % below the applied one, too little
/// to apply, and spikes kept breaking that shift so it was never tracked; the
/// evidence downwards grew for half a minute, and the step up waited until
/// its own evidence outgrew it. The evidence in the direction of the latest
/// samples is judged first.
#[test]
fn evidence_the_other_way_does_not_hold_a_step_back() {
    let mut failed = Vec::new();
    for (interval_s, bound_icmp, bound_stream) in [(1.0, 2.5, 3.5), (0.1, 1.5, 1.5)] {
        for seed in 1..=3u64 {
            for (from, to) in [(7.0, 42.0), (42.0, 7.0)] {
                // The level 10 % towards the step's opposite side from 60 s
                // (after settling), a sample +-15 % off that every 1.7 s.
                let drift: f64 = if to > from { 0.9 } else { 1.1 };
                for stream in [false, true] {
                    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                    let at = 120.0 + (rng.sym() + 1.0) / 2.0 * interval_s;
                    let t = reaction_to(interval_s, stream, at, to, |t| {
                        let level = if t >= at {
                            to
                        } else if t >= 60.0 {
                            let off = if t % 1.7 < interval_s.min(0.5) {
                                1.0 / drift.powf(1.5)
                            } else {
                                1.0
                            };
                            from * drift * off
                        } else {
                            from
                        };
                        Some(ms(level * (1.0 + 0.02 * rng.sym())))
                    });
                    let bound = if stream { bound_stream } else { bound_icmp };
                    if !t.is_some_and(|t| t < bound) {
                        failed.push(format!(
                            "interval {interval_s} s, stream {stream}, seed {seed}, \
                             {from} -> {to} ms: {t:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The lab's 5-6 s steps at 1 probe/s after the fixes above ("confirmed by
/// 5 samples over 4.0 s", 15 suspicions over the budget): the level was a
/// little off the applied one (its evidence kept the suspicion alive) and
/// relay spikes beyond the thresholds each ran a burst to its 7 probes,
/// draining the budget before the step. A burst stops at its first sample
/// back within the thresholds, suspicion or not: a spike costs a probe or two.
#[test]
fn a_spike_costs_a_probe_or_two_while_evidence_lasts() {
    let mut s = TimeSim::new(params(1.0));
    s.run_until(60.0, |_| Some(ms(20.0)));
    // The level 15 % up (too little to apply: evidence that lasts until it
    // is tracked), a
    // spike of one probe every 3 s (+60 %), for 14 s.
    s.run_until(74.0, |t| {
        Some(ms(if t.fract() < 0.01 && (t as u64) % 3 == 0 {
            36.8
        } else {
            23.0
        }))
    });
    let v = s.est.snapshot().burst;
    assert!(v.bursts >= 3, "{v:?}");
    assert!(v.probes <= 2 * v.bursts, "{v:?}");
    assert_eq!(s.costs().len(), 1, "{:?}", s.costs());
}
