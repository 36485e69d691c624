//! [`Estimator`]: one link's probes in, [`CostEvent`]s out. Link state and
//! probes here; what the applied cost follows in `changes.rs`.

use super::damping::{Damping, DampingView};
use super::detect::{DetectorView, StepDetector};
use super::params::CostParams;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Applied changes kept for the CLI.
pub const HISTORY_LEN: usize = 32;
/// The sustained loss is the median of the windowed loss over this many windows.
const LOSS_SPAN_WINDOWS: usize = 3;
/// A change of loss must also show over this many windows of probes (256 by default) (`changes.rs`).
const LONG_LOSS_WINDOWS: usize = 16;
#[path = "burst.rs"]
pub(super) mod burst;
#[path = "changes.rs"]
mod changes;
use burst::Burst;
pub use burst::BurstView;
/// At most this many probes are remembered while unanswered (a bound on the
/// table whatever the timers): a reply to one forgotten is ignored.
pub const MAX_OUTSTANDING: usize = 256;

/// A probe awaiting its reply.
#[derive(Clone, Copy, Debug)]
struct Outstanding {
    seq: u64,
    sent: Instant,
    /// Past `probe_timeout`: counted lost in the loss fraction until it is
    /// answered (a late reply corrects that), but still matched.
    overdue: bool,
}

/// Whether the link carries traffic, as the probes see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Not yet `up_after` answers in a row, nor silent for `down_after` intervals: no cost yet.
    Probing,
    Up,
    Down,
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkState::Probing => "probing",
            LinkState::Up => "up",
            LinkState::Down => "down",
        })
    }
}

/// Output, to be carried out by the runtime in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CostEvent {
    /// Use this link cost from now on.
    Cost { cost: u32, reason: String },
    /// Nothing heard from the link for `down_after` x `interval`: withdraw what
    /// was learnt over it at once.
    Down { reason: String },
    /// The link answers again; a `Cost` follows immediately.
    Up,
    /// The link answers again but flapped too often: it stays down (no `Up`)
    /// until the reason's reuse time. It was `Down` before.
    Damped { reason: String },
}

/// One entry of [`Estimator::changes`]; `None` means no cost (not up).
#[derive(Clone, Debug, PartialEq)]
pub struct CostChange {
    pub at: Instant,
    pub old: Option<u32>,
    pub new: Option<u32>,
    pub reason: String,
}

/// What `show` needs, ready to serialize; times as ages in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostSnapshot {
    pub state: LinkState,
    /// Applied cost (`None` unless up).
    pub cost: Option<u32>,
    /// What the cost would be from the current samples.
    pub candidate: Option<u32>,
    pub last_rtt_ms: Option<f64>,
    pub smoothed_rtt_ms: Option<f64>,
    /// Lost fraction of the last `window` probes.
    pub loss: f64,
    /// What enters the cost (burst-resistant).
    pub sustained_loss: f64,
    pub samples: usize,
    pub in_flight: usize,
    /// A change waiting out its hold-down or the change interval, for this long.
    pub pending_s: Option<f64>,
    /// The cost is the provisional one given when the link came up (the
    /// highest of the first RTTs), until `window` samples settle it.
    pub provisional: bool,
    /// The step detector: the level it tracks, the evidence of a shift.
    pub detector: DetectorView,
    /// Flap damping (`None`: no penalty).
    pub damping: Option<DampingView>,
    /// Extra probes while a shift is suspected.
    pub burst: BurstView,
    pub last_reply_ago_s: Option<f64>,
    /// Since the last packet of any kind from the neighbor: liveness counts from it.
    pub last_heard_ago_s: Option<f64>,
    pub history: Vec<HistoryEntry>,
}

/// One applied change as `show` renders it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub ago_s: f64,
    pub old: Option<u32>,
    pub new: Option<u32>,
    pub reason: String,
}

#[derive(Clone, Copy, Debug)]
struct Applied {
    cost: u32,
    rtt: Duration,
    loss: f64,
}

/// A change of the loss waiting out its hold-down.
#[derive(Clone, Copy, Debug)]
struct Pending {
    since: Instant,
    up: bool,
    /// The candidate when the hold-down (re)started: it must stay near this level.
    level: u32,
}

/// Latency-based cost of one link. Sans-IO: the runtime sends the probes,
/// reports them with the time, calls [`on_tick`](Self::on_tick) at
/// [`poll_timeout`](Self::poll_timeout), and carries out [`poll_event`](Self::poll_event).
#[derive(Debug)]
pub struct Estimator {
    p: CostParams,
    /// The latest time given in any input: what snapshot ages are counted from.
    now: Instant,
    state: LinkState,
    /// Probes awaiting a reply, in the order sent (overdue ones first), at most
    /// [`MAX_OUTSTANDING`], none older than [`forget_after`](Self::forget_after).
    in_flight: VecDeque<Outstanding>,
    last_sent: Option<Instant>,
    /// The last packet received from the neighbor (a reply, late or not, or
    /// anything reported by [`on_heard`](Self::on_heard)): liveness counts from it.
    last_heard: Option<Instant>,
    /// Last `window` RTT samples (up only).
    rtts: VecDeque<Duration>,
    /// Last `window` outcomes, `true` = lost.
    outcomes: VecDeque<bool>,
    /// Windowed loss after each of the last `LOSS_SPAN_WINDOWS * window` outcomes.
    loss_hist: VecDeque<f64>,
    /// Last `LONG_LOSS_WINDOWS * window` outcomes, `true` = lost.
    long_outcomes: VecDeque<bool>,
    /// Whether the RTT level moved: samples in, confirmed shifts out.
    detector: StepDetector,
    /// A confirmed shift worth applying, waiting for the hold-down floor or the
    /// change interval until then.
    shift_due: Option<Instant>,
    /// The applied cost is still the provisional one from coming up.
    provisional: bool,
    /// Extra probes while the detector suspects a shift (`burst.rs`).
    burst: Burst,
    damping: Damping,
    /// Down, answering again, but damped: silence makes it `Down` again.
    alive_damped: bool,
    last_rtt: Option<Duration>,
    last_reply: Option<Instant>,
    /// When the most recently sent of the answered probes left.
    last_answered_sent: Option<Instant>,
    /// RTTs of the answers in a row while not up.
    streak: Vec<Duration>,
    applied: Option<Applied>,
    pending: Option<Pending>,
    last_change: Option<Instant>,
    events: VecDeque<CostEvent>,
    history: VecDeque<CostChange>,
}

impl Estimator {
    /// `params` must have no [`problems`](CostParams::problems) (config validation checks).
    /// `now` only starts the clock that [`snapshot`](Self::snapshot) counts ages on.
    pub fn new(params: CostParams, now: Instant) -> Estimator {
        let mut p = params;
        p.window = p.window.clamp(1, super::params::MAX_WINDOW);
        p.down_after = p.down_after.max(1);
        p.up_after = p.up_after.max(1);
        Estimator {
            p,
            now,
            state: LinkState::Probing,
            in_flight: VecDeque::new(),
            last_sent: None,
            last_heard: None,
            rtts: VecDeque::new(),
            outcomes: VecDeque::new(),
            loss_hist: VecDeque::new(),
            long_outcomes: VecDeque::new(),
            detector: StepDetector::new(),
            shift_due: None,
            provisional: false,
            burst: Burst::default(),
            damping: Damping::default(),
            alive_damped: false,
            last_rtt: None,
            last_reply: None,
            last_answered_sent: None,
            streak: Vec::new(),
            applied: None,
            pending: None,
            last_change: None,
            events: VecDeque::new(),
            history: VecDeque::new(),
        }
    }

    pub fn params(&self) -> &CostParams {
        &self.p
    }

    /// New parameters (a reload of `[cost]`), keeping the samples and the
    /// link state. Windows shrink to the new size. A changed cost function
    /// (factor, offset, bounds, loss penalty) is the operator's decision, not
    /// noise: an up link gets the new function's cost at once, without
    /// hysteresis. Thresholds and timers apply from the next evaluation.
    pub fn set_params(&mut self, params: CostParams, now: Instant) {
        let mut p = params;
        p.window = p.window.clamp(1, super::params::MAX_WINDOW);
        p.down_after = p.down_after.max(1);
        p.up_after = p.up_after.max(1);
        let function_changed = (self.p.factor, self.p.offset, self.p.min, self.p.max)
            != (p.factor, p.offset, p.min, p.max)
            || self.p.loss_penalty != p.loss_penalty;
        self.p = p;
        self.now = self.now.max(now);
        let w = self.p.window;
        trim_front(&mut self.rtts, w);
        trim_front(&mut self.outcomes, w);
        trim_front(&mut self.loss_hist, LOSS_SPAN_WINDOWS * w);
        trim_front(&mut self.long_outcomes, LONG_LOSS_WINDOWS * w);
        self.pending = None;
        self.shift_due = None;
        if let (true, Some(applied), Some(rtt)) =
            (function_changed, self.applied, self.smoothed_rtt())
        {
            let loss = self.sustained_loss();
            let cost = self.p.cost(rtt, loss);
            if cost != applied.cost {
                let reason = format!(
                    "[cost] parameters changed: cost {} -> {cost} at rtt {}",
                    applied.cost,
                    fmt_ms(rtt)
                );
                self.apply(now, cost, rtt, loss, reason);
            }
        }
        self.expire(now);
        self.evaluate(now);
    }

    /// A probe with this sequence number left at `now`.
    pub fn on_probe_sent(&mut self, seq: impl Into<u64>, now: Instant) {
        let seq = seq.into();
        self.expire(now);
        if self.in_flight.len() >= MAX_OUTSTANDING {
            if let Some(o) = self.in_flight.pop_front() {
                self.forgotten(o, now);
            }
        }
        self.in_flight.push_back(Outstanding {
            seq,
            sent: now,
            overdue: false,
        });
        self.last_sent = Some(now);
        self.check_liveness(now);
    }

    /// The reply to probe `seq` arrived at `now`: liveness, and an RTT sample
    /// even when it comes after `probe_timeout` (a slow link is not a dead
    /// one). Replies to unknown, already answered or forgotten probes are ignored.
    pub fn on_reply(&mut self, seq: impl Into<u64>, now: Instant) {
        let seq = seq.into();
        self.expire(now);
        let Some(i) = self.in_flight.iter().position(|o| o.seq == seq) else {
            self.check_liveness(now);
            return;
        };
        let o = self.in_flight.remove(i).expect("position is in range");
        self.answered(o, now);
        self.evaluate(now);
    }

    /// Something else came from the neighbor at `now` (a BGP message, a
    /// WireGuard handshake...): it is alive, so the link is not declared down
    /// before `down_after` x `interval` from now. No RTT sample, and a down
    /// link still needs `up_after` answered probes to come up.
    pub fn on_heard(&mut self, now: Instant) {
        self.expire(now);
        self.heard(now);
        self.check_liveness(now);
    }

    /// Time passes: detects lost probes and silence, applies held changes,
    /// lets a damped link that answers come up once its penalty allows.
    pub fn on_tick(&mut self, now: Instant) {
        self.expire(now);
        self.check_liveness(now);
        if self.alive_damped && !self.damping.suppressed(&self.p, now) {
            self.go_up(now);
        }
        self.evaluate(now);
    }

    /// How long without hearing anything takes the link down: `down_after` x `interval`.
    pub fn detect_time(&self) -> Duration {
        self.p.interval.saturating_mul(self.p.down_after)
    }

    /// How long an unanswered probe is remembered: a reply later than this is
    /// not matched, and the probe breaks a run of answers. At least the
    /// detection time: a reply within it is always an RTT sample.
    fn forget_after(&self) -> Duration {
        self.detect_time().max(self.p.probe_timeout)
    }

    /// When silence takes the link down (`None`: down already, or never up).
    /// A link that never answered since the prober started is `Probing`, not
    /// `Down`: at start-up the tunnel may still be being made, and a session
    /// that came up over it meanwhile must not be ended for that.
    fn silence_deadline(&self) -> Option<Instant> {
        let watched = self.state == LinkState::Up || self.alive_damped;
        watched.then_some(self.last_heard? + self.detect_time())
    }

    /// When the next probe is due (`None`: now, none was sent yet).
    pub fn next_probe_at(&self) -> Option<Instant> {
        self.last_sent.map(|t| t + self.p.interval)
    }

    /// The earliest time [`on_tick`](Self::on_tick) or a probe is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self
            .in_flight
            .iter()
            .find(|o| !o.overdue)
            .map(|o| o.sent + self.p.probe_timeout);
        let forget = self.in_flight.front().map(|o| o.sent + self.forget_after());
        let held = self.pending.map(|pd| {
            let hold = pd.since + self.p.hold_down;
            match self.last_change {
                Some(t) => hold.max(t + self.p.min_change_interval),
                None => hold,
            }
        });
        // A damped link answering comes up when the penalty allows.
        let reuse = (self.alive_damped)
            .then(|| self.damping.reuse_at(&self.p))
            .flatten();
        [
            self.next_probe_at(),
            expiry,
            forget,
            self.silence_deadline(),
            held,
            self.shift_due,
            reuse,
            self.burst_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When an extra probe is due: a burst while the detector suspects a
    /// shift (`burst.rs`). The runtime sends it (a stream packet asking for an
    /// immediate answer, or an echo request) and reports it with
    /// [`on_burst_probe_sent`](Self::on_burst_probe_sent). `None`: no burst.
    pub fn burst_at(&self) -> Option<Instant> {
        self.burst.due()
    }

    /// The due extra probe `seq` left at `now` (the interval's schedule stays).
    pub fn on_burst_probe_sent(&mut self, seq: impl Into<u64>, now: Instant) {
        self.burst.sent(&self.p, now);
        self.on_extra_probe_sent(seq, now);
    }

    /// A probe outside the interval's schedule left at `now`: awaited like any
    /// other, without moving the next one due (e.g. a stream packet sent at
    /// once in answer to the neighbor's burst, which its echo answers in turn).
    pub fn on_extra_probe_sent(&mut self, seq: impl Into<u64>, now: Instant) {
        let seq = seq.into();
        self.expire(now);
        if self.in_flight.len() >= MAX_OUTSTANDING {
            if let Some(o) = self.in_flight.pop_front() {
                self.forgotten(o, now);
            }
        }
        // In the order sent (a probe on the grid may be stamped a little before `now`).
        let i = self.in_flight.partition_point(|o| o.sent <= now);
        self.in_flight.insert(
            i,
            Outstanding {
                seq,
                sent: now,
                overdue: false,
            },
        );
        self.check_liveness(now);
    }

    pub fn poll_event(&mut self) -> Option<CostEvent> {
        self.events.pop_front()
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// The applied cost (`None` unless up).
    pub fn cost(&self) -> Option<u32> {
        self.applied.map(|a| a.cost)
    }

    pub fn last_rtt(&self) -> Option<Duration> {
        self.last_rtt
    }

    /// Median of the last `window` RTT samples.
    ///
    /// Why a median and not an EWMA: one spike moves an EWMA by `alpha * spike`
    /// (a ×10 sample with alpha 0.1 adds 90 %), and it reaches a new level only
    /// asymptotically, so a step would cross the thresholds, be applied half-way,
    /// and be applied again later: two changes for one step. The median ignores
    /// anything short of half the window and jumps to a new level within one
    /// sample once half the window has seen it, so a step gives one clean change.
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        median(self.rtts.iter().copied())
    }

    /// Lost fraction of the last `window` probes.
    pub fn loss(&self) -> f64 {
        if self.outcomes.is_empty() {
            return 0.0;
        }
        self.outcomes.iter().filter(|&&l| l).count() as f64 / self.outcomes.len() as f64
    }

    /// The loss that enters the cost: the median of [`loss`](Self::loss) over the
    /// last 3 windows of probes. A burst stays in the windowed loss for a window
    /// (long enough to pass the hold-down); it moves this median only when it is
    /// seen for more than half of those 3 windows, so a burst shorter than about
    /// half a window (which is also shorter than `down_after`) never changes the cost.
    pub fn sustained_loss(&self) -> f64 {
        median_f64(self.loss_hist.iter().copied()).unwrap_or(0.0)
    }

    /// Bounds of the lost fraction of the last 16 windows of probes, which a
    /// change of loss must show too (`changes.rs`): the count of losses less
    /// (more) three times its square root, over the whole span (over the probes seen).
    /// Cautious both ways: a short history, or a few bursts, prove little.
    fn long_loss_bounds(&self) -> (f64, f64) {
        let lost = self.long_outcomes.iter().filter(|&&l| l).count() as f64;
        let span = (LONG_LOSS_WINDOWS * self.p.window) as f64;
        let seen = self.long_outcomes.len().max(1) as f64;
        (
            (lost - 3.0 * lost.sqrt()).max(0.0) / span,
            ((lost + 3.0 * lost.sqrt()) / seen).min(1.0),
        )
    }

    /// The cost the current samples give (`None` without an RTT sample).
    pub fn candidate(&self) -> Option<u32> {
        Some(self.p.cost(self.smoothed_rtt()?, self.sustained_loss()))
    }

    /// The last applied changes, oldest first (at most [`HISTORY_LEN`]).
    pub fn changes(&self) -> impl Iterator<Item = &CostChange> {
        self.history.iter()
    }

    /// [`changes`](Self::changes) for the CLI: ages counted from the latest input.
    pub fn history(&self) -> Vec<HistoryEntry> {
        let now = self.now;
        self.history
            .iter()
            .map(|c| HistoryEntry {
                ago_s: now.saturating_duration_since(c.at).as_secs_f64(),
                old: c.old,
                new: c.new,
                reason: c.reason.clone(),
            })
            .collect()
    }

    /// State for `show`, as of the latest input (sans-IO: no clock is read).
    pub fn snapshot(&self) -> CostSnapshot {
        let now = self.now;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let ago = |t: Instant| now.saturating_duration_since(t).as_secs_f64();
        CostSnapshot {
            state: self.state,
            cost: self.cost(),
            candidate: self.candidate(),
            last_rtt_ms: self.last_rtt.map(ms),
            smoothed_rtt_ms: self.smoothed_rtt().map(ms),
            loss: self.loss(),
            sustained_loss: self.sustained_loss(),
            samples: self.rtts.len(),
            in_flight: self.in_flight.len(),
            pending_s: self.pending.map(|pd| ago(pd.since)),
            provisional: self.provisional && self.state == LinkState::Up,
            detector: self.detector.view(),
            damping: self.damping.view(&self.p, now),
            burst: self.burst.view(),
            last_reply_ago_s: self.last_reply.map(ago),
            last_heard_ago_s: self.last_heard.map(ago),
            history: self.history(),
        }
    }

    /// Probes unanswered for `probe_timeout` become overdue: lost in the loss
    /// fraction until answered. Unanswered for [`forget_after`](Self::forget_after),
    /// they are forgotten: lost for good, in the order sent.
    fn expire(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let forget = self.forget_after();
        while let Some(&o) = self.in_flight.front() {
            if o.sent + forget > now {
                break;
            }
            self.in_flight.pop_front();
            self.forgotten(o, now);
        }
        let timeout = self.p.probe_timeout;
        let mut newly_overdue = 0;
        for o in self.in_flight.iter_mut().filter(|o| !o.overdue) {
            if o.sent + timeout > now {
                break;
            }
            o.overdue = true;
            newly_overdue += 1;
        }
        for _ in 0..newly_overdue {
            self.record_outcome(true);
        }
        if newly_overdue > 0 {
            self.evaluate(now);
        }
    }

    /// Silence for the detection time takes the link down: only silence, never
    /// a slow answer.
    fn check_liveness(&mut self, now: Instant) {
        if self.silence_deadline().is_some_and(|t| now >= t) {
            self.go_down(now);
        }
    }

    fn heard(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.last_heard = Some(self.last_heard.map_or(now, |t| t.max(now)));
    }

    fn record_outcome(&mut self, lost: bool) {
        push_bounded(&mut self.outcomes, lost, self.p.window);
        let loss = self.loss();
        push_bounded(&mut self.loss_hist, loss, LOSS_SPAN_WINDOWS * self.p.window);
        push_bounded(
            &mut self.long_outcomes,
            lost,
            LONG_LOSS_WINDOWS * self.p.window,
        );
    }

    /// A late answer was no loss: the most recent loss in the window becomes an
    /// answer (the fraction counts, not which probe), and the latest windowed loss follows.
    fn unrecord_loss(&mut self) {
        if let Some(l) = self.outcomes.iter_mut().rev().find(|l| **l) {
            *l = false;
        }
        if let Some(l) = self.long_outcomes.iter_mut().rev().find(|l| **l) {
            *l = false;
        }
        let loss = self.loss();
        if let Some(last) = self.loss_hist.back_mut() {
            *last = loss;
        }
    }

    /// A probe forgotten unanswered (its loss was counted when it became
    /// overdue). One sent before a probe that was answered breaks no run of
    /// answers: runs are in the order sent (the probes still in flight when a
    /// link comes back are forgotten after the first answers).
    fn forgotten(&mut self, o: Outstanding, now: Instant) {
        if !o.overdue {
            self.record_outcome(true);
        }
        if self.last_answered_sent.is_some_and(|t| o.sent < t) {
            return;
        }
        self.streak.clear();
        self.evaluate(now);
    }

    fn answered(&mut self, o: Outstanding, now: Instant) {
        let sent = o.sent;
        let rtt = now.saturating_duration_since(sent);
        self.heard(now);
        self.last_answered_sent = Some(self.last_answered_sent.map_or(sent, |t| t.max(sent)));
        self.last_rtt = Some(rtt);
        self.last_reply = Some(now);
        if o.overdue {
            self.unrecord_loss();
        } else {
            self.record_outcome(false);
        }
        if self.state == LinkState::Up {
            push_bounded(&mut self.rtts, rtt, self.p.window);
            self.on_sample(now, rtt);
            return;
        }
        // Answers in a row while not up (at most a window of them).
        if self.streak.len() >= self.p.window.max(self.p.up_after as usize) {
            self.streak.remove(0);
        }
        self.streak.push(rtt);
        if self.streak.len() < self.p.up_after as usize {
            return;
        }
        if !self.damping.suppressed(&self.p, now) {
            self.go_up(now);
        } else if !self.alive_damped {
            // It answers, but it flapped too often: it stays down until the
            // penalty decays (RFC 2439 §4.2 "suppressed").
            self.alive_damped = true;
            let reason = self.damping.reason(&self.p, now);
            self.record_history(now, None, None, &reason);
            self.events.push_back(CostEvent::Damped { reason });
        }
    }

    fn go_down(&mut self, now: Instant) {
        let since = match self.last_reply {
            Some(t) => format!(
                "last reply {:.1} s ago",
                now.saturating_duration_since(t).as_secs_f64()
            ),
            None => "never answered".to_string(),
        };
        let unanswered = self
            .in_flight
            .iter()
            .filter(|o| self.last_answered_sent.is_none_or(|t| o.sent > t))
            .count();
        let mut reason = format!(
            "nothing heard for {:.1} s ({} x {:.1} s), {unanswered} probes unanswered, {since}",
            self.detect_time().as_secs_f64(),
            self.p.down_after,
            self.p.interval.as_secs_f64()
        );
        self.damping.flap(&self.p, now);
        if self.damping.suppressed(&self.p, now) {
            reason += &format!("; {}", self.damping.reason(&self.p, now));
        }
        self.state = LinkState::Down;
        self.alive_damped = false;
        self.pending = None;
        self.shift_due = None;
        self.burst.stop();
        let old = self.applied.take().map(|a| a.cost);
        self.rtts.clear();
        self.streak.clear();
        self.detector.clear();
        self.record_history(now, old, None, &reason);
        self.events.push_back(CostEvent::Down { reason });
    }

    /// Fresh RTT windows from the answers in a row; a provisional cost at
    /// once (no hold-down, no change interval): the highest of those RTTs, so
    /// a link is not made attractive by its few first samples; it settles at
    /// the median once `window` samples are in (`changes.rs`). A link that
    /// flapped more than once keeps its loss history: its outages weigh on
    /// its cost until the loss windows have seen it answer.
    fn go_up(&mut self, now: Instant) {
        let flapping = self.damping.flapping(&self.p, now);
        self.state = LinkState::Up;
        self.alive_damped = false;
        self.rtts.clear();
        self.detector.clear();
        if !flapping {
            self.outcomes.clear();
            self.loss_hist.clear();
            self.long_outcomes.clear();
        }
        let streak = std::mem::take(&mut self.streak);
        for &rtt in &streak {
            push_bounded(&mut self.rtts, rtt, self.p.window);
            self.detector.push(now, rtt);
            if !flapping {
                self.record_outcome(false);
            }
        }
        self.pending = None;
        self.shift_due = None;
        self.events.push_back(CostEvent::Up);
        let loss = if flapping { self.sustained_loss() } else { 0.0 };
        if self.rtts.len() >= self.p.window {
            self.provisional = true;
            self.settle(now, "link up");
            return;
        }
        let rtt = streak.iter().copied().max().expect("up_after >= 1 sample");
        let cost = self.p.cost(rtt, loss);
        let mut reason = format!(
            "link up: rtt {} (highest of {}, provisional until {} samples)",
            fmt_ms(rtt),
            streak.len(),
            self.p.window
        );
        if flapping {
            reason += &format!(", loss {:.0} % (flapping: loss history kept)", loss * 100.0);
        }
        self.provisional = true;
        self.apply(now, cost, rtt, loss, reason);
    }

    fn record_history(&mut self, at: Instant, old: Option<u32>, new: Option<u32>, reason: &str) {
        push_bounded(
            &mut self.history,
            CostChange {
                at,
                old,
                new,
                reason: reason.to_string(),
            },
            HISTORY_LEN,
        );
    }

    /// The stream ([`crate::probe`]) answered probe `seq` at `now`: with the RTT
    /// it measured from kernel timestamps (`Some`, used instead of `now - sent`),
    /// or acknowledged without an echo of its own (`None`: delivered, not lost,
    /// no sample). Unknown or already answered probes are ignored, as in
    /// [`on_reply`](Self::on_reply).
    pub fn on_answer(&mut self, seq: impl Into<u64>, rtt: Option<Duration>, now: Instant) {
        let seq = seq.into();
        self.expire(now);
        let Some(i) = self.in_flight.iter().position(|o| o.seq == seq) else {
            self.check_liveness(now);
            return;
        };
        let mut o = self.in_flight.remove(i).expect("position is in range");
        match rtt {
            Some(rtt) => {
                o.sent = now.checked_sub(rtt).unwrap_or(o.sent);
                self.answered(o, now);
            }
            None => {
                self.heard(now);
                if o.overdue {
                    self.unrecord_loss();
                } else {
                    self.record_outcome(false);
                }
            }
        }
        self.evaluate(now);
    }
}

fn trim_front<T>(q: &mut VecDeque<T>, cap: usize) {
    while q.len() > cap {
        q.pop_front();
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    while q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}

/// Median; the mean of the two middle values for an even count.
pub(super) fn median(xs: impl Iterator<Item = Duration>) -> Option<Duration> {
    let mut v: Vec<Duration> = xs.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    })
}

fn median_f64(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = xs.collect();
    super::detect::median_sorted(&mut v)
}

pub(super) fn fmt_ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
