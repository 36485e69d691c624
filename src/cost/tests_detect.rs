//! The step detector end to end (probes in, costs out): how fast real steps
//! are applied, and how many changes pure jitter makes in a simulated day.
//!
//! The false-change simulation runs in time (`tests_burst.rs`: probes on the
//! grid, bursts of extra probes when the estimator asks, the jitter models'
//! episodes in seconds), since with bursts the samples per second vary. A day
//! at 1 probe/s is checked for <= 1 change directly. A day at 10 probes/s
//! (864 000 probes) is too slow for `cargo test` in a debug build, so `cargo
//! test` runs a tenth of one (2.4 h) and asserts none;
//! `reaction_and_false_change_table` (ignored, run with `--ignored
//! --nocapture`) runs full days over seeds at both rates and prints the tables
//! the README quotes; `false_changes_over_seeds` (ignored, best in a release
//! build) runs 20 days per model at 1 probe/s and 5 at 10 probes/s, or
//! `SEEDS` / `SEEDS10`. `reaction` (samples on the interval, no bursts) is
//! the detector alone.

use super::tests::{env_or, ms, Rng, Sim};
use super::tests_burst::{reaction_s, TimeSim};
use super::*;
use std::time::Duration;

impl Rng {
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let (a, b) = (self.unit(), self.unit());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }
}

/// Noise-only RTT models, in time (what a probe leaving at `t` s sees): the
/// true level never moves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Jitter {
    /// sd 15 % (±30 % at 2 sd).
    Gauss,
    /// ±30 % uniform.
    Uniform,
    /// ±10 %, times a Pareto tail (alpha 1.5, scale 2 %, capped at 10x), and
    /// 1 % of probes 5-10x.
    Heavy,
    /// ±10 %, with episodes of +50 % lasting 0.1-0.9 s (under `hold_down`),
    /// starting at random, one every 300 s on average (as often as the
    /// 1-3 sample episodes of the model in samples at 1 probe/s before), at
    /// least 1 s apart (two back to back are one longer episode: a step).
    Bursty,
    /// ±10 %, with bursts of loss lasting 1-3 intervals (`down_after` is 5),
    /// one every 100 intervals on average (2 % loss), each ended by an answer.
    LossBursts,
    /// ±10 % around a level wandering ±10 % over 6 hours.
    Drift,
    /// Not jitter (the table's price row): +50 % episodes lasting 1-3 s, one
    /// every 300 s on average. Longer than `hold_down`: steps.
    LongEpisodes,
}

const MODELS: [Jitter; 6] = [
    Jitter::Gauss,
    Jitter::Uniform,
    Jitter::Heavy,
    Jitter::Bursty,
    Jitter::LossBursts,
    Jitter::Drift,
];

struct Model {
    kind: Jitter,
    rng: Rng,
    /// The current episode (of latency or of loss): its end, and when the next starts (s).
    until: f64,
    next: f64,
}

impl Model {
    fn new(kind: Jitter, seed: u64) -> Model {
        Model {
            kind,
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            until: 0.0,
            next: 0.0,
        }
    }

    /// Whether `t` falls in an episode: episodes last `len.0..len.1` s, and
    /// the next starts at least `gap` s after one ends, then at random (one
    /// per `every` s on average). Probes come in the order they leave (`t`
    /// never goes back).
    fn episode(&mut self, t: f64, every: f64, len: (f64, f64), gap: f64) -> bool {
        while t >= self.next {
            let start = self.next;
            if start > 0.0 {
                self.until = start + len.0 + (len.1 - len.0) * self.rng.unit();
            }
            self.next = self.until.max(start) + gap - every * self.rng.unit().ln();
        }
        t < self.until
    }

    /// The RTT of a probe leaving at `t` s (one every `interval_s` on the grid), around `level_ms`.
    fn rtt(&mut self, t: f64, interval_s: f64, level_ms: f64) -> Option<Duration> {
        let jitter10 = |r: &mut Rng| 1.0 + 0.1 * r.sym();
        let m = match self.kind {
            Jitter::Gauss => (1.0 + 0.15 * self.rng.gauss()).max(0.2),
            Jitter::Uniform => 1.0 + 0.3 * self.rng.sym(),
            Jitter::Heavy => {
                let r = &mut self.rng;
                let tail = (0.02 * (r.unit().powf(-1.0 / 1.5) - 1.0)).min(9.0);
                let spike = if r.unit() < 0.01 {
                    5.0 + 5.0 * r.unit()
                } else {
                    1.0
                };
                jitter10(r) * (1.0 + tail) * spike
            }
            Jitter::Bursty | Jitter::LongEpisodes => {
                let len = if self.kind == Jitter::Bursty {
                    (0.1, 0.9)
                } else {
                    (1.0, 3.0)
                };
                let on = self.episode(t, 300.0, len, 1.0);
                jitter10(&mut self.rng) * if on { 1.5 } else { 1.0 }
            }
            Jitter::LossBursts => {
                let iv = interval_s;
                if self.episode(t, 100.0 * iv, (iv, 3.0 * iv), iv) {
                    return None;
                }
                jitter10(&mut self.rng)
            }
            Jitter::Drift => {
                (1.0 + 0.1 * (std::f64::consts::TAU * t / 21_600.0).sin()) * jitter10(&mut self.rng)
            }
        };
        Some(ms(level_ms * m))
    }
}

fn params(interval_s: f64) -> CostParams {
    CostParams {
        interval: Duration::from_secs_f64(interval_s),
        ..CostParams::default()
    }
}

/// Applied changes other than coming up and settling, downs, and extra
/// probes (bursts), over `secs` simulated seconds of `kind` around 20 ms, in
/// time: probes on the grid, bursts when the estimator asks (`tests_burst.rs`).
fn false_changes(kind: Jitter, interval_s: f64, secs: f64, seed: u64) -> (usize, usize, u64) {
    let mut m = Model::new(kind, seed);
    let mut s = TimeSim::new(params(interval_s));
    s.run_until(secs, |t| m.rtt(t, interval_s, 20.0));
    let changes = s
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(e, CostEvent::Cost { reason, .. }
                if !reason.starts_with("link up") && !reason.starts_with("settled"))
        })
        .count();
    (changes, s.downs(), s.extra)
}

const DAY: f64 = 86_400.0;

/// A simulated day at 1 probe/s with bursts: at most one change, no down, and
/// the bursts' extra probes a small fraction of the probes.
#[test]
fn pure_jitter_changes_nothing_in_a_simulated_day_at_1_probe_per_s() {
    for kind in MODELS {
        let (changes, downs, extra) = false_changes(kind, 1.0, DAY, 1);
        assert!(changes <= 1, "{kind:?}: {changes} changes in a day");
        assert_eq!(downs, 0, "{kind:?}");
        assert!(extra < 86_400 / 10, "{kind:?}: {extra} extra probes");
    }
}

#[test]
fn pure_jitter_changes_nothing_in_86400_samples_at_10_probes_per_s() {
    for kind in MODELS {
        let (changes, downs, extra) = false_changes(kind, 0.1, DAY / 10.0, 2);
        assert_eq!((changes, downs, extra), (0, 0, 0), "{kind:?}");
    }
}

/// When the first cost near `to_ms` is applied after a step from `from_ms`
/// at sample 200 or 40 s (±`jitter` uniform): samples after the step, and seconds.
fn reaction(
    interval_s: f64,
    from_ms: f64,
    to_ms: f64,
    jitter: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut s = Sim::new(params(interval_s));
    // 40 s or more after the first cost: min_change_interval (30 s) is out of the way.
    let step = 200.max((40.0 / interval_s) as usize);
    s.run(step + 400, |i| {
        let level = if i < step as u64 { from_ms } else { to_ms };
        Some(ms(level * (1.0 + jitter * rng.sym())))
    });
    let at = step as f64 * interval_s;
    let target = (to_ms * 1000.0) as u32;
    let (t, _) = s
        .costs()
        .into_iter()
        .find(|&(t, c)| t >= at && c.abs_diff(target) < target / 4)?;
    Some(((t - at) / interval_s, t - at))
}

/// Issue 13 item 5: a real change is applied within 5 s at 1 probe/s and
/// within 1.5 s at 10 probes/s.
#[test]
fn real_steps_are_applied_within_5_samples_at_1_per_s_and_1_5_s_at_10_per_s() {
    // (from, to, jitter): 16x both ways; +30 % and -35 %, just beyond the
    // 25 % threshold, on a clean link; 16x under ±30 % jitter.
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
            let (n, _) = reaction(1.0, from, to, jitter, seed)
                .unwrap_or_else(|| panic!("{from} -> {to} ms ±{jitter}: never applied"));
            // The 5th sample at the new level is 4 intervals after the step (+ its
            // RTT): not before (an episode of 4 samples is not a step), not after.
            assert!(
                (3.9..4.1).contains(&n),
                "{from} -> {to} ms ±{jitter} at 1/s: {n:.2} samples"
            );
            let (_, secs) = reaction(0.1, from, to, jitter, seed).unwrap();
            assert!(
                secs <= 1.5,
                "{from} -> {to} ms ±{jitter} at 10/s: {secs:.2} s"
            );
            // The 1 s hold-down floor: not before the 11th sample.
            assert!(
                secs >= 1.0,
                "{from} -> {to} ms ±{jitter} at 10/s: {secs:.2} s"
            );
        }
    }
}

/// An episode shorter than the confirmation (4 samples, or under the 1 s
/// floor at 10 probes/s), however large, changes nothing: every 30 samples,
/// 4 samples at twice the RTT, for an hour.
#[test]
fn episodes_of_4_samples_change_nothing() {
    for interval_s in [1.0, 0.1] {
        let mut s = Sim::new(params(interval_s));
        s.run(3600, |i| Some(ms(if i % 30 >= 26 { 40.0 } else { 20.0 })));
        assert_eq!(s.costs().len(), 1, "at {interval_s} s: {:?}", s.costs());
    }
}

/// Steps below the thresholds are tracked, never applied.
#[test]
fn steps_below_the_thresholds_are_never_applied() {
    for (from, to) in [(20.0, 24.0), (20.0, 17.0)] {
        for seed in 1..=3 {
            assert_eq!(reaction(1.0, from, to, 0.02, seed), None, "{from} -> {to}");
        }
    }
}

/// Prints reaction times per step size, jitter and rate (in time, with
/// bursts, the stream's echo modelled), and false changes per simulated day
/// per model at both rates over seeds (the README's tables).
#[test]
#[ignore = "~15 min in a debug build: run with --ignored --nocapture"]
fn reaction_and_false_change_table() {
    println!(
        "| step | jitter | 1 probe/s, stream: median (max) | ICMPv6 echo | 10 probes/s, stream |"
    );
    println!("|---|---|---|---|---|");
    let steps = [
        ("5 -> 80 ms", 5.0, 80.0),
        ("80 -> 5 ms", 80.0, 5.0),
        ("20 -> 40 ms", 20.0, 40.0),
        ("20 -> 30 ms (+50 %)", 20.0, 30.0),
        ("20 -> 26 ms (+30 %)", 20.0, 26.0),
        ("20 -> 13 ms (-35 %)", 20.0, 13.0),
    ];
    for (name, from, to) in steps {
        for jitter in [0.02, 0.1, 0.3] {
            let cell = |interval_s: f64, stream: bool| {
                let mut v: Vec<f64> = (1..=20)
                    .map(|seed| {
                        reaction_s(params(interval_s), stream, from, to, jitter, seed)
                            .unwrap_or(f64::INFINITY)
                    })
                    .collect();
                v.sort_by(f64::total_cmp);
                let f = |x: f64| {
                    if x.is_finite() {
                        format!("{x:.1} s")
                    } else {
                        "not within 30 s".to_string()
                    }
                };
                format!("{} ({})", f(v[10]), f(v[19]))
            };
            println!(
                "| {name} | ±{:.0} % | {} | {} | {} |",
                jitter * 100.0,
                cell(1.0, true),
                cell(1.0, false),
                cell(0.1, true)
            );
        }
    }
    println!();
    println!("| jitter model | changes per day at 1 probe/s (5 seeds) | extra probes per hour | at 10 probes/s (2 seeds) |");
    println!("|---|---|---|---|");
    for kind in MODELS.into_iter().chain([Jitter::LongEpisodes]) {
        let a: Vec<(usize, usize, u64)> = (0..5)
            .map(|k| false_changes(kind, 1.0, DAY, 11 + k))
            .collect();
        let b: Vec<(usize, usize, u64)> = (0..2)
            .map(|k| false_changes(kind, 0.1, DAY, 21 + k))
            .collect();
        let changes = |v: &[(usize, usize, u64)]| {
            v.iter()
                .map(|x| {
                    format!(
                        "{}{}",
                        x.0,
                        if x.1 > 0 {
                            format!(" ({} down)", x.1)
                        } else {
                            String::new()
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let extra = a.iter().map(|x| x.2).sum::<u64>() as f64 / (5.0 * 24.0);
        println!(
            "| {kind:?} | {} | {extra:.0} | {} |",
            changes(&a),
            changes(&b)
        );
    }
}

#[test]
#[ignore = "debugging aid"]
fn print_bursty_changes() {
    let seed: u64 = env_or("SEED", 13);
    let iv: f64 = env_or("IV", 1.0);
    let mut m = Model::new(Jitter::Bursty, seed);
    let mut s = TimeSim::new(params(iv));
    let mut log: Vec<(f64, f64)> = Vec::new();
    s.run_until(DAY, |t| {
        let r = m.rtt(t, iv, 20.0);
        log.push((t, r.map_or(0.0, |d| d.as_secs_f64() * 1e3)));
        r
    });
    for (t, e) in &s.events {
        if let CostEvent::Cost { reason, .. } = e {
            if reason.starts_with("rtt") {
                println!("{t:.2} {reason}");
                for (a, r) in log.iter().filter(|(a, _)| (*a - t).abs() < 3.0) {
                    println!("   {a:.2} {r:.1}");
                }
            }
        }
    }
}

/// Issue 13 item 5's false-change rate over many seeds: a simulated day per
/// seed, model and rate (in time, with bursts), printed per model as the
/// changes in all days, the most in one day (the bound is 1), downs and extra
/// probes an hour. `SEEDS` (default 20) days at 1 probe/s, `SEEDS10`
/// (default 5) at 10 probes/s. About a minute per 20 days at 1 probe/s in a
/// release build (`cargo test --release --lib cost::tests_detect::false_changes_over_seeds
/// -- --ignored --nocapture`).
#[test]
#[ignore = "minutes: run with --release --ignored --nocapture"]
fn false_changes_over_seeds() {
    let (n1, n10): (u64, u64) = (env_or("SEEDS", 20), env_or("SEEDS10", 5));
    println!("| jitter model | rate | days | changes in all | most in a day | downs | extra probes an hour |");
    println!("|---|---|---|---|---|---|---|");
    let mut worst = 0;
    for kind in MODELS {
        for (interval_s, n) in [(1.0, n1), (0.1, n10)] {
            let v: Vec<(usize, usize, u64)> = (0..n)
                .map(|k| false_changes(kind, interval_s, DAY, 101 + k))
                .collect();
            let most = v.iter().map(|x| x.0).max().unwrap_or(0);
            worst = worst.max(most);
            println!(
                "| {kind:?} | {:.0}/s | {n} | {} | {most} | {} | {:.0} |",
                1.0 / interval_s,
                v.iter().map(|x| x.0).sum::<usize>(),
                v.iter().map(|x| x.1).sum::<usize>(),
                v.iter().map(|x| x.2).sum::<u64>() as f64 / (n.max(1) as f64 * 24.0)
            );
        }
    }
    assert!(worst <= 1, "{worst} changes in a simulated day");
}
