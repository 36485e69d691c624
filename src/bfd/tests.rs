//! Two sessions driven against each other in memory with a simulated clock.

use super::*;
use crate::bfd::{BfdParams, Diag, Discard, Packet, State};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

struct Pair {
    a: Session,
    b: Session,
    now: Instant,
    /// Whether each direction delivers.
    a_to_b: bool,
    b_to_a: bool,
    /// Every packet sent: (time, from 'a' or 'b', packet).
    sent: Vec<(Instant, char, Packet)>,
    events: Vec<(Instant, char, BfdEvent)>,
}

fn cfg(discr: u32, params: BfdParams) -> SessionConfig {
    SessionConfig {
        params,
        local_discr: discr,
        seed: u64::from(discr) * 7919,
    }
}

impl Pair {
    fn new() -> Pair {
        let now = Instant::now();
        Pair {
            a: Session::new(cfg(11, BfdParams::default()), now),
            b: Session::new(cfg(22, BfdParams::default()), now),
            now,
            a_to_b: true,
            b_to_a: true,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Deliver what is due now, both ways, until neither has anything to send.
    fn exchange(&mut self) {
        loop {
            let mut moved = false;
            while let Some(p) = self.a.poll_transmit(self.now) {
                if self.a_to_b {
                    let _ = self.b.on_packet(&p, self.now);
                }
                self.sent.push((self.now, 'a', p));
                moved = true;
            }
            while let Some(p) = self.b.poll_transmit(self.now) {
                if self.b_to_a {
                    let _ = self.a.on_packet(&p, self.now);
                }
                self.sent.push((self.now, 'b', p));
                moved = true;
            }
            if !moved {
                break;
            }
        }
        while let Some(e) = self.a.poll_event() {
            self.events.push((self.now, 'a', e));
        }
        while let Some(e) = self.b.poll_event() {
            self.events.push((self.now, 'b', e));
        }
    }

    /// Run every deadline up to `now + d`.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        self.exchange();
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.on_timeout(self.now);
                    self.b.on_timeout(self.now);
                    self.exchange();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Gaps between the periodic packets of `who` sent in [from, to].
    fn gaps(&self, who: char, from: Instant, to: Instant) -> Vec<Duration> {
        let times: Vec<Instant> = self
            .sent
            .iter()
            .filter(|(t, w, p)| *w == who && !p.final_ && *t >= from && *t <= to)
            .map(|(t, _, _)| *t)
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn events_of(&self, who: char) -> Vec<BfdEvent> {
        self.events
            .iter()
            .filter(|(_, w, _)| *w == who)
            .map(|(_, _, e)| e.clone())
            .collect()
    }
}

#[test]
fn two_sessions_come_up_then_send_at_the_configured_interval() {
    let mut p = Pair::new();
    p.run(3000 * MS);
    assert_eq!((p.a.state(), p.b.state()), (State::Up, State::Up));
    assert_eq!(p.events_of('a'), vec![BfdEvent::Up]);
    assert_eq!(p.events_of('b'), vec![BfdEvent::Up]);
    let s = p.a.snapshot(p.now);
    assert_eq!((s.remote_discr, s.remote_state), (22, State::Up));
    assert_eq!((s.tx_ms, s.rx_ms, s.detect_ms), (100.0, 100.0, 300.0));
    assert!(!s.poll, "the poll of going Up is answered");
    // Steady state: 75-100 ms apart (§6.8.7 jitter), not all the same.
    let start = p.now - 2000 * MS;
    let gaps = p.gaps('a', start, p.now);
    assert!(gaps.len() >= 19, "{gaps:?}");
    assert!(
        gaps.iter().all(|g| (75 * MS..=100 * MS).contains(g)),
        "{gaps:?}"
    );
    assert!(gaps.iter().any(|g| *g != gaps[0]), "jitter: {gaps:?}");
    // Up packets carry 100 ms and no P once the sequence is over.
    let last = &p.sent.iter().rev().find(|(_, w, _)| *w == 'a').unwrap().2;
    assert_eq!((last.desired_min_tx_us, last.poll), (100_000, false));
}

#[test]
fn while_not_up_packets_go_at_most_once_a_second() {
    let mut p = Pair::new();
    p.a_to_b = false;
    p.b_to_a = false;
    p.run(5000 * MS);
    let gaps = p.gaps('a', p.now - 5000 * MS, p.now);
    assert!(gaps.len() >= 4, "{gaps:?}");
    assert!(
        gaps.iter().all(|g| (750 * MS..=1000 * MS).contains(g)),
        "{gaps:?}"
    );
    let (_, _, last) = p.sent.iter().rev().find(|(_, w, _)| *w == 'a').unwrap();
    assert_eq!(last.state, State::Down);
    assert_eq!(last.desired_min_tx_us, 1_000_000, "slow start (§6.8.3)");
    assert_eq!(last.required_min_rx_us, 100_000);
    assert_eq!(last.your_discr, 0);
    assert!(p.events.is_empty(), "never Up, so never Down");
}

#[test]
fn silence_for_the_detection_time_is_down_with_diag_1_at_that_instant() {
    let mut p = Pair::new();
    p.run(2000 * MS);
    p.b_to_a = false;
    let heard = p.sent.iter().rev().find(|(_, w, _)| *w == 'b').unwrap().0;
    p.run(1000 * MS);
    let (t, _, e) = p
        .events
        .iter()
        .find(|(_, w, _)| *w == 'a')
        .cloned()
        .unwrap();
    // The first event of a is its Up at the start; the Down follows.
    assert_eq!(e, BfdEvent::Up);
    let down: Vec<_> = p
        .events
        .iter()
        .filter(|(_, w, _)| *w == 'a')
        .skip(1)
        .collect();
    assert_eq!(down.len(), 1, "{down:?}");
    let (at, _, e) = down[0].clone();
    assert!(t < at);
    assert_eq!(
        at - heard,
        300 * MS,
        "3 x 100 ms after the last packet received"
    );
    let BfdEvent::Down { diag, reason } = e else {
        panic!("{e:?}")
    };
    assert_eq!(diag, Diag::DETECTION_TIME_EXPIRED);
    assert!(reason.contains("300 ms"), "{reason}");
    // b still hears a, which now says Down: b goes down too (diag 3).
    let b_down = p.events_of('b');
    assert_eq!(
        b_down.last(),
        Some(&BfdEvent::Down {
            diag: Diag::NEIGHBOR_SIGNALED_DOWN,
            reason: "neighbor signaled session down".into()
        })
    );
    assert_eq!(
        p.a.snapshot(p.now).remote_discr,
        0,
        "§6.8.1: reset on expiry"
    );
    let (_, _, told) = p
        .sent
        .iter()
        .find(|(t, w, _)| *w == 'a' && *t >= at)
        .unwrap();
    assert_eq!(
        (told.state, told.diag),
        (State::Down, Diag::DETECTION_TIME_EXPIRED)
    );
    assert_eq!(told.desired_min_tx_us, 1_000_000, "back to the slow rate");
    assert!(!told.poll, "no poll to a neighbor no longer known");
    // The path heals: both come up again.
    p.b_to_a = true;
    p.run(3000 * MS);
    assert_eq!((p.a.state(), p.b.state()), (State::Up, State::Up));
    assert_eq!(p.events_of('a').last(), Some(&BfdEvent::Up));
}

#[test]
fn remote_admin_down_is_not_a_failure() {
    let mut p = Pair::new();
    p.run(1000 * MS);
    p.a.admin_down(p.now);
    p.run(500 * MS);
    assert_eq!(p.b.state(), State::Down);
    assert_eq!(p.b.snapshot(p.now).diag, Diag::NEIGHBOR_SIGNALED_DOWN);
    assert_eq!(p.events_of('b'), vec![BfdEvent::Up, BfdEvent::AdminDown]);
    let (_, _, last) = p.sent.iter().rev().find(|(_, w, _)| *w == 'a').unwrap();
    assert_eq!(
        (last.state, last.diag),
        (State::AdminDown, Diag::ADMIN_DOWN)
    );
    assert_eq!(p.a.state(), State::AdminDown, "it ignores what b says");
    assert!(p.a.snapshot(p.now).discarded > 0);
}

#[test]
fn a_slower_interval_takes_effect_at_the_final_of_its_poll_sequence() {
    let mut p = Pair::new();
    p.run(1000 * MS);
    p.a_to_b = false;
    let slower = BfdParams {
        interval: 300 * MS,
        ..BfdParams::default()
    };
    p.a.set_params(slower, p.now);
    let s = p.a.snapshot(p.now);
    assert!(s.poll);
    assert_eq!(s.tx_ms, 100.0, "an increase waits for the Final (§6.8.3)");
    p.run(100 * MS);
    let (_, _, polled) = p.sent.iter().rev().find(|(_, w, _)| *w == 'a').unwrap();
    assert!(polled.poll && !polled.final_);
    assert_eq!(polled.desired_min_tx_us, 300_000, "advertised at once");
    assert!(p.a.snapshot(p.now).poll, "no Final yet");
    p.a_to_b = true;
    p.run(100 * MS);
    let s = p.a.snapshot(p.now);
    assert!(!s.poll, "b answered with F");
    assert_eq!(s.tx_ms, 300.0);
    assert!(p
        .sent
        .iter()
        .any(|(_, w, q)| *w == 'b' && q.final_ && !q.poll));
    let settled = p.now + 400 * MS;
    p.run(2000 * MS);
    let gaps = p.gaps('a', settled, p.now);
    assert!(
        gaps.iter().all(|g| (225 * MS..=300 * MS).contains(g)),
        "{gaps:?}"
    );
    let sb = p.b.snapshot(p.now);
    assert_eq!((sb.rx_ms, sb.detect_ms), (300.0, 900.0));
    assert_eq!((p.a.state(), p.b.state()), (State::Up, State::Up));
}

#[test]
fn a_packet_for_another_discriminator_is_discarded_and_counted() {
    let now = Instant::now();
    let mut s = Session::new(cfg(5, BfdParams::default()), now);
    let mut pkt = Session::new(cfg(9, BfdParams::default()), now)
        .poll_transmit(now)
        .unwrap();
    pkt.your_discr = 6;
    assert_eq!(s.on_packet(&pkt, now), Err(Discard::NoSession));
    assert_eq!(s.state(), State::Down);
    let snap = s.snapshot(now);
    assert_eq!(
        (snap.discarded, snap.packets_in, snap.remote_discr),
        (1, 0, 0)
    );
    pkt.your_discr = 0;
    assert_eq!(s.on_packet(&pkt, now), Ok(()));
    assert_eq!(s.state(), State::Init);
}

#[test]
fn no_periodic_packets_while_the_neighbor_asks_for_none() {
    let now = Instant::now();
    let mut s = Session::new(cfg(5, BfdParams::default()), now);
    assert!(s.poll_transmit(now).is_some(), "the first goes at once");
    let mut pkt = Session::new(cfg(9, BfdParams::default()), now)
        .poll_transmit(now)
        .unwrap();
    pkt.required_min_rx_us = 0;
    s.on_packet(&pkt, now).unwrap();
    // The state change (Init) is not sent either: §6.8.7, no packets at all.
    assert!(s.poll_transmit(now + 5000 * MS).is_none());
    assert_eq!(s.poll_timeout(), Some(now + 3000 * MS), "detection only");
}

#[test]
fn a_faster_rx_counts_for_detection_only_after_the_final() {
    let now = Instant::now();
    let fast = BfdParams {
        interval: 50 * MS,
        min_rx: Some(100 * MS),
        ..BfdParams::default()
    };
    let mut p = Pair {
        a: Session::new(cfg(11, fast.clone()), now),
        b: Session::new(cfg(22, fast), now),
        ..Pair::new()
    };
    p.run(1000 * MS);
    let s = p.a.snapshot(p.now);
    assert_eq!((s.tx_ms, s.rx_ms, s.detect_ms), (100.0, 100.0, 300.0));
    p.a_to_b = false;
    let faster = BfdParams {
        interval: 50 * MS,
        ..BfdParams::default()
    };
    p.a.set_params(faster, p.now);
    p.run(100 * MS);
    let (_, _, polled) = p.sent.iter().rev().find(|(_, w, _)| *w == 'a').unwrap();
    assert_eq!((polled.poll, polled.required_min_rx_us), (true, 50_000));
    assert_eq!(
        p.a.snapshot(p.now).detect_ms,
        300.0,
        "§6.8.3: the old RX counts until the Final"
    );
    p.a_to_b = true;
    p.run(200 * MS);
    let s = p.a.snapshot(p.now);
    assert!(!s.poll);
    assert_eq!((s.rx_ms, s.detect_ms), (50.0, 150.0));
    assert_eq!(p.b.snapshot(p.now).tx_ms, 50.0, "b sends faster at once");
}

#[test]
fn admin_down_while_init_goes_down_without_an_event() {
    let now = Instant::now();
    let mut s = Session::new(cfg(5, BfdParams::default()), now);
    let mut pkt = Session::new(cfg(9, BfdParams::default()), now)
        .poll_transmit(now)
        .unwrap();
    s.on_packet(&pkt, now).unwrap();
    assert_eq!(s.state(), State::Init);
    pkt.state = State::AdminDown;
    pkt.your_discr = 5;
    s.on_packet(&pkt, now).unwrap();
    assert_eq!(s.state(), State::Down);
    assert_eq!(s.snapshot(now).diag, Diag::NEIGHBOR_SIGNALED_DOWN);
    assert_eq!(s.poll_event(), None, "never Up: nothing for the client");
}
