//! One BFD session (RFC 5880), asynchronous mode, sans-IO: packets and the
//! time in, packets to send, one deadline and events out. No Demand mode
//! (D is never set), no Echo function (Required Min Echo RX is 0), no
//! authentication.

use super::packet::{Diag, Discard, Packet, State};
use super::params::BfdParams;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What a session needs to start.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub params: BfdParams,
    /// bfd.LocalDiscr: nonzero, unique on this system (§6.8.1).
    pub local_discr: u32,
    /// Seeds the jitter of §6.8.7 (tests pass a constant).
    pub seed: u64,
}

/// What the client (the BGP session) is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BfdEvent {
    Up,
    /// Up -> Down: the path failed (RFC 5882 §3.2: the client takes its session down).
    Down {
        diag: Diag,
        reason: String,
    },
    /// Up -> Down because the neighbor said AdminDown: not a failure of the
    /// path (RFC 5882 §3.2), the client keeps its session.
    AdminDown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Poll {
    Idle,
    Active,
    /// Active, and the values changed again: a new sequence follows (§6.5).
    ActiveAgain,
}

/// What `show bfd` prints of one session.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Snapshot {
    pub state: State,
    pub remote_state: State,
    pub local_discr: u32,
    pub remote_discr: u32,
    /// Interval we send at now (before jitter), ms.
    pub tx_ms: f64,
    /// Interval the neighbor sends at (max of our Required Min RX and its Desired Min TX), ms.
    pub rx_ms: f64,
    /// Detection time: silence this long takes the session down, ms (0: not running).
    pub detect_ms: f64,
    pub multiplier: u8,
    pub remote_multiplier: u8,
    /// Diagnostic we send now.
    pub diag: Diag,
    pub diag_text: &'static str,
    /// Why the session last left Up, if it ever did.
    pub last_down: Option<String>,
    /// Seconds since Up (none: not Up).
    pub uptime_s: Option<f64>,
    /// Since the last valid packet, ms.
    pub last_rx_ms: Option<f64>,
    pub packets_in: u64,
    pub packets_out: u64,
    pub discarded: u64,
    pub poll: bool,
}

pub struct Session {
    params: BfdParams,
    local_discr: u32,
    remote_discr: u32,
    state: State,
    remote_state: State,
    diag: Diag,
    /// bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval as advertised.
    desired_tx: Duration,
    required_rx: Duration,
    /// The same as used for timing: during a Poll Sequence an increased TX
    /// and a reduced RX wait for the Final (§6.8.3).
    tx_in_use: Duration,
    rx_in_use: Duration,
    /// From the neighbor's last packet (bfd.RemoteMinRxInterval starts at 1 µs, §6.8.1).
    remote_min_rx: Duration,
    remote_desired_tx: Duration,
    remote_mult: u8,
    poll: Poll,
    final_due: bool,
    /// Next periodic packet (`None`: the neighbor asked for none, Required Min RX 0).
    next_tx: Option<Instant>,
    /// Detection deadline, counted from the last packet received (§6.8.4).
    detect_at: Option<Instant>,
    last_rx: Option<Instant>,
    up_since: Option<Instant>,
    last_down: Option<String>,
    rng: u64,
    events: VecDeque<BfdEvent>,
    packets_in: u64,
    packets_out: u64,
    discarded: u64,
}

fn us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Session {
    pub fn new(cfg: SessionConfig, now: Instant) -> Session {
        let idle = cfg.params.idle();
        let rx = cfg.params.rx();
        Session {
            local_discr: cfg.local_discr.max(1),
            remote_discr: 0,
            state: State::Down,
            remote_state: State::Down,
            diag: Diag::NONE,
            desired_tx: idle,
            required_rx: rx,
            tx_in_use: idle,
            rx_in_use: rx,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            remote_mult: 0,
            poll: Poll::Idle,
            final_due: false,
            next_tx: Some(now),
            detect_at: None,
            last_rx: None,
            up_since: None,
            last_down: None,
            // xorshift64 needs a nonzero state.
            rng: cfg.seed | 1,
            events: VecDeque::new(),
            packets_in: 0,
            packets_out: 0,
            discarded: 0,
            params: cfg.params,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    /// A packet that passed [`Packet::decode`] (and the hop-limit check):
    /// the session part of §6.8.6. Discarded packets are counted and change nothing.
    pub fn on_packet(&mut self, p: &Packet, now: Instant) -> Result<(), Discard> {
        let checked = if p.your_discr != 0 && p.your_discr != self.local_discr {
            Err(Discard::NoSession)
        } else if self.state == State::AdminDown {
            Err(Discard::AdminDown)
        } else {
            Ok(())
        };
        if let Err(e) = checked {
            self.discarded += 1;
            return Err(e);
        }
        self.packets_in += 1;
        self.last_rx = Some(now);
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_mult = p.detect_mult;
        self.remote_desired_tx = Duration::from_micros(p.desired_min_tx_us.into());
        self.remote_min_rx = Duration::from_micros(p.required_min_rx_us.into());
        if p.final_ {
            self.on_final();
        }
        if p.state == State::AdminDown {
            if self.state != State::Down {
                self.set_state(State::Down, Diag::NEIGHBOR_SIGNALED_DOWN, true, now);
            }
        } else {
            match (self.state, p.state) {
                (State::Down, State::Down) => self.set_state(State::Init, Diag::NONE, false, now),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.set_state(State::Up, Diag::NONE, false, now)
                }
                (State::Up, State::Down) => {
                    self.set_state(State::Down, Diag::NEIGHBOR_SIGNALED_DOWN, false, now)
                }
                _ => {}
            }
        }
        if p.poll {
            self.final_due = true;
        }
        self.detect_at = match self.state {
            State::Init | State::Up => self.detect_time().map(|d| now + d),
            _ => None,
        };
        self.reschedule(now);
        Ok(())
    }

    /// A deadline of [`Session::poll_timeout`] passed.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.detect_at.is_some_and(|t| t <= now) {
            self.detect_at = None;
            // §6.8.1: bfd.RemoteDiscr is reset when the Detection Time
            // expires; what the neighbor said is forgotten with it (as BIRD does).
            self.remote_discr = 0;
            self.remote_state = State::Down;
            self.poll = Poll::Idle;
            self.set_state(State::Down, Diag::DETECTION_TIME_EXPIRED, false, now);
            self.remote_min_rx = Duration::from_micros(1);
            self.remote_desired_tx = Duration::ZERO;
            self.remote_mult = 0;
        }
    }

    /// The next packet to send now, if any: a Final answers a Poll at once
    /// (§6.8.6), periodic packets go at the jittered interval (§6.8.7).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        if self.final_due {
            self.final_due = false;
            self.packets_out += 1;
            return Some(self.packet(false, true));
        }
        if self.next_tx.is_some_and(|t| t <= now) {
            let interval = self.jittered(self.tx_interval());
            self.next_tx = Some(now + interval);
            self.packets_out += 1;
            return Some(self.packet(self.poll != Poll::Idle, false));
        }
        None
    }

    /// The earliest deadline: next packet or detection.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.final_due {
            return self.last_rx;
        }
        match (self.next_tx, self.detect_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_event(&mut self) -> Option<BfdEvent> {
        self.events.pop_front()
    }

    /// New timers (a reload): advertised at once with a Poll Sequence (§6.8.3).
    pub fn set_params(&mut self, params: BfdParams, now: Instant) {
        self.params = params;
        self.update_intervals(now);
    }

    /// Stop administratively: the neighbor is told AdminDown (diag 7) with the
    /// next packet, which goes at once; nothing received counts any more.
    pub fn admin_down(&mut self, now: Instant) {
        self.detect_at = None;
        self.final_due = false;
        self.set_state(State::AdminDown, Diag::ADMIN_DOWN, false, now);
    }

    pub fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            state: self.state,
            remote_state: self.remote_state,
            local_discr: self.local_discr,
            remote_discr: self.remote_discr,
            tx_ms: ms(self.tx_interval()),
            rx_ms: ms(self.rx_in_use.max(self.remote_desired_tx)),
            detect_ms: self.detect_at.and(self.detect_time()).map_or(0.0, ms),
            multiplier: self.params.detect_mult(),
            remote_multiplier: self.remote_mult,
            diag: self.diag,
            diag_text: self.diag.as_str(),
            last_down: self.last_down.clone(),
            uptime_s: self.up_since.map(|t| now.duration_since(t).as_secs_f64()),
            last_rx_ms: self.last_rx.map(|t| ms(now.duration_since(t))),
            packets_in: self.packets_in,
            packets_out: self.packets_out,
            discarded: self.discarded,
            poll: self.poll != Poll::Idle,
        }
    }

    /// Count a packet the runtime discarded before the session saw it.
    pub fn count_discarded(&mut self) {
        self.discarded += 1;
    }

    /// §6.8.4: the neighbor's Detect Mult times the agreed interval it sends at.
    fn detect_time(&self) -> Option<Duration> {
        (self.remote_mult > 0)
            .then(|| self.rx_in_use.max(self.remote_desired_tx) * u32::from(self.remote_mult))
    }

    /// §6.8.7: the larger of our Desired Min TX and the neighbor's Required Min RX.
    fn tx_interval(&self) -> Duration {
        self.tx_in_use.max(self.remote_min_rx)
    }

    /// §6.8.7: reduced by 0-25 % at random (10-25 % when Detect Mult is 1).
    fn jittered(&mut self, d: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let r = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let span = if self.params.detect_mult() == 1 {
            0.15
        } else {
            0.25
        };
        d.mul_f64(1.0 - 0.25 + span * r)
    }

    fn packet(&self, poll: bool, final_: bool) -> Packet {
        Packet {
            diag: self.diag,
            state: self.state,
            poll,
            final_,
            cpi: false,
            demand: false,
            detect_mult: self.params.detect_mult(),
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: us(self.desired_tx),
            required_min_rx_us: us(self.required_rx),
            required_min_echo_rx_us: 0,
        }
    }

    fn set_state(&mut self, new: State, diag: Diag, remote_admin: bool, now: Instant) {
        let old = self.state;
        if old == new {
            return;
        }
        self.state = new;
        self.diag = diag;
        if new == State::Up {
            self.up_since = Some(now);
            self.events.push_back(BfdEvent::Up);
        } else if old == State::Up {
            self.up_since = None;
            let reason = match diag {
                Diag::DETECTION_TIME_EXPIRED => format!(
                    "nothing heard for {:.0} ms ({} x {:.0} ms)",
                    self.detect_time().map_or(0.0, ms),
                    self.remote_mult,
                    ms(self.rx_in_use.max(self.remote_desired_tx))
                ),
                d => d.as_str().to_string(),
            };
            self.last_down = Some(reason.clone());
            self.events.push_back(match (remote_admin, new) {
                (true, _) => BfdEvent::AdminDown,
                (false, State::AdminDown) => BfdEvent::AdminDown,
                (false, _) => BfdEvent::Down { diag, reason },
            });
        }
        if new != State::Up && new != State::Init {
            self.detect_at = None;
        }
        self.update_intervals(now);
        // A state change is told at once (as BIRD does), not at the next interval.
        if self.remote_min_rx > Duration::ZERO {
            self.next_tx = Some(now);
        }
    }

    /// Bring the advertised intervals to the state: `idle_tx` while not Up
    /// (§6.8.3 slow start), the configured ones once Up. A change starts a
    /// Poll Sequence (once the neighbor is known); while Up, a slower TX or a faster RX take effect
    /// for timing only at its Final (§6.8.3).
    fn update_intervals(&mut self, now: Instant) {
        let tx = if self.state == State::Up {
            self.params.tx()
        } else {
            self.params.idle()
        };
        let rx = self.params.rx();
        if (tx, rx) == (self.desired_tx, self.required_rx) {
            return;
        }
        let up = self.state == State::Up;
        self.desired_tx = tx;
        self.required_rx = rx;
        if !(up && tx > self.tx_in_use) {
            self.tx_in_use = tx;
        }
        if !(up && rx < self.rx_in_use) {
            self.rx_in_use = rx;
        }
        // No neighbor known yet: nobody to poll (BIRD does the same).
        self.poll = match (self.poll, self.remote_discr) {
            (Poll::Idle, 0) => Poll::Idle,
            (Poll::Idle, _) => Poll::Active,
            _ => Poll::ActiveAgain,
        };
        self.reschedule(now);
    }

    /// §6.5: the Final ends the Poll Sequence; deferred values take effect.
    fn on_final(&mut self) {
        self.tx_in_use = self.desired_tx;
        self.rx_in_use = self.required_rx;
        self.poll = match self.poll {
            Poll::ActiveAgain => Poll::Active,
            _ => Poll::Idle,
        };
    }

    /// After a change of either side's intervals: no periodic packets while
    /// the neighbor asks for none; never wait longer than the new interval.
    fn reschedule(&mut self, now: Instant) {
        if self.remote_min_rx.is_zero() {
            self.next_tx = None;
            return;
        }
        let latest = now + self.tx_interval();
        self.next_tx = Some(self.next_tx.map_or(now, |t| t.min(latest)));
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
