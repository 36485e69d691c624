//! Table-driven FSM tests: events and times in, actions out. No sockets, no clock.

use super::*;
use crate::wire::{AfiSafi, Capability};
use Direction::{Inbound, Outbound};

const LOCAL_AS: u32 = 4242421945;

fn cfg() -> SessionConfig {
    SessionConfig {
        local_as: LOCAL_AS,
        remote_as: LOCAL_AS,
        router_id: "10.255.0.2".parse().unwrap(),
        hold_time: 9,
        keepalive: 3,
        connect_retry: Duration::from_secs(5),
        error_wait_min: Duration::from_secs(2),
        error_wait_max: Duration::from_secs(16),
        passive: false,
        send_hold_time: None,
        capabilities: vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(LOCAL_AS),
        ],
    }
}

fn peer_open(id: &str, hold: u16) -> Message {
    Message::Open(Open::new(
        LOCAL_AS,
        hold,
        id.parse().unwrap(),
        vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(LOCAL_AS),
        ],
    ))
}

/// A compact spelling of actions, so that tables read like the RFC.
fn spell(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Connect => "connect".to_string(),
            Action::Send(d, m) => format!("send {d:?} {}", kind(m)),
            Action::Close(d) => format!("close {d:?}"),
            Action::Established { direction, .. } => format!("established {direction:?}"),
            Action::Update(_) => "update".to_string(),
            Action::RouteRefresh(_) => "route-refresh".to_string(),
            Action::Down(r) => format!("down: {r}"),
        })
        .collect()
}

fn kind(m: &Message) -> String {
    match m {
        Message::Open(_) => "OPEN".into(),
        Message::Update(_) => "UPDATE".into(),
        Message::Keepalive => "KEEPALIVE".into(),
        Message::RouteRefresh(_) => "ROUTE-REFRESH".into(),
        Message::Notification(n) => format!("NOTIFICATION {}/{}", n.code, n.subcode),
    }
}

struct Run {
    s: Session,
    t0: Instant,
}

impl Run {
    fn new(cfg: SessionConfig) -> Run {
        Run {
            s: Session::new(cfg),
            t0: Instant::now(),
        }
    }
    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }
    fn ev(&mut self, secs: f64, e: Event) -> Vec<String> {
        let now = self.at(secs);
        spell(&self.s.handle(e, now))
    }
    fn tick(&mut self, secs: f64) -> Vec<String> {
        let now = self.at(secs);
        spell(&self.s.handle_timeout(now))
    }
    /// Drive to Established on one connection; returns the time reached.
    fn establish(&mut self, dir: Direction) {
        self.ev(0.0, Event::Start);
        if dir == Inbound {
            self.ev(0.0, Event::ConnectFailed);
        }
        self.ev(0.1, Event::Connected(dir));
        self.ev(0.2, Event::Received(dir, peer_open("10.255.0.1", 9)));
        let out = self.ev(0.3, Event::Received(dir, Message::Keepalive));
        assert_eq!(out, vec![format!("established {dir:?}")]);
        assert_eq!(self.s.state(), State::Established);
    }
}

#[test]
fn table_of_transitions() {
    // (event, expected actions, expected state after)
    type Step = (fn(&mut Run) -> Vec<String>, &'static [&'static str], State);
    let table: &[Step] = &[
        (|r| r.ev(0.0, Event::Start), &["connect"], State::Connect),
        (|r| r.ev(0.1, Event::ConnectFailed), &[], State::Active),
        (|r| r.tick(4.0), &[], State::Active),
        (|r| r.tick(5.1), &["connect"], State::Connect),
        (
            |r| r.ev(5.2, Event::Connected(Outbound)),
            &["send Outbound OPEN"],
            State::OpenSent,
        ),
        (
            |r| r.ev(5.3, Event::Received(Outbound, peer_open("10.255.0.1", 30))),
            &["send Outbound KEEPALIVE"],
            State::OpenConfirm,
        ),
        (
            |r| r.ev(5.4, Event::Received(Outbound, Message::Keepalive)),
            &["established Outbound"],
            State::Established,
        ),
        // negotiated hold = min(9, 30) = 9, keepalive 3 s after the OPEN
        (
            |r| r.tick(8.3),
            &["send Outbound KEEPALIVE"],
            State::Established,
        ),
        (
            |r| r.ev(9.0, Event::Received(Outbound, Message::Keepalive)),
            &[],
            State::Established,
        ),
        (
            |r| r.tick(11.3),
            &["send Outbound KEEPALIVE"],
            State::Established,
        ),
        (
            |r| r.ev(17.9, Event::Received(Outbound, Message::Keepalive)),
            &[],
            State::Established,
        ),
        // 9 s after the last KEEPALIVE the hold timer fires: 4/0, close, down, idle hold 2 s
        (
            |r| r.tick(26.95),
            &[
                "send Outbound NOTIFICATION 4/0",
                "close Outbound",
                "down: hold timer expired",
            ],
            State::Idle,
        ),
        (|r| r.tick(28.0), &[], State::Idle),
        (|r| r.tick(29.0), &["connect"], State::Connect),
    ];
    let mut r = Run::new(cfg());
    for (i, (step, want, state)) in table.iter().enumerate() {
        // keepalives due before a step that is not a tick are flushed first
        let got = step(&mut r);
        assert_eq!(
            got,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "step {i}"
        );
        assert_eq!(r.s.state(), *state, "state after step {i}");
    }
}

#[test]
fn inbound_only_when_passive() {
    let mut r = Run::new(SessionConfig {
        passive: true,
        ..cfg()
    });
    assert!(r.ev(0.0, Event::Start).is_empty());
    assert_eq!(r.s.state(), State::Active);
    assert!(!r.s.accepts(Outbound));
    assert!(r.s.accepts(Inbound));
    assert_eq!(r.ev(1.0, Event::Connected(Inbound)), ["send Inbound OPEN"]);
    assert!(r.tick(100.0).is_empty(), "passive never connects");
}

#[test]
fn collision_keeps_connection_of_higher_identifier() {
    // Local 10.255.0.2 > remote 10.255.0.1: keep our outbound connection.
    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    r.ev(0.1, Event::Connected(Outbound));
    r.ev(0.1, Event::Connected(Inbound));
    assert_eq!(
        r.ev(0.2, Event::Received(Outbound, peer_open("10.255.0.1", 9))),
        ["send Outbound KEEPALIVE"]
    );
    assert_eq!(
        r.ev(0.2, Event::Received(Inbound, peer_open("10.255.0.1", 9))),
        ["send Inbound NOTIFICATION 6/7", "close Inbound"]
    );
    assert_eq!(
        r.ev(0.3, Event::Received(Outbound, Message::Keepalive)),
        ["established Outbound"]
    );

    // Local lower than remote: keep the peer's (inbound) connection.
    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    r.ev(0.1, Event::Connected(Outbound));
    r.ev(0.1, Event::Connected(Inbound));
    assert_eq!(
        r.ev(0.2, Event::Received(Inbound, peer_open("10.255.0.9", 9))),
        ["send Inbound KEEPALIVE"]
    );
    assert_eq!(
        r.ev(0.2, Event::Received(Outbound, peer_open("10.255.0.9", 9))),
        ["send Outbound NOTIFICATION 6/7", "close Outbound"]
    );
    assert_eq!(
        r.ev(0.3, Event::Received(Inbound, Message::Keepalive)),
        ["established Inbound"]
    );
    assert!(
        !r.s.accepts(Outbound),
        "an established session takes no second connection"
    );
}

#[test]
fn established_closes_the_other_connection() {
    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    r.ev(0.1, Event::Connected(Outbound));
    r.ev(0.2, Event::Received(Outbound, peer_open("10.255.0.1", 9)));
    r.ev(0.25, Event::Connected(Inbound));
    assert_eq!(
        r.ev(0.3, Event::Received(Outbound, Message::Keepalive)),
        [
            "send Inbound NOTIFICATION 6/7",
            "close Inbound",
            "established Outbound"
        ]
    );
}

#[test]
fn open_errors_answer_with_the_right_notification() {
    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    r.ev(0.1, Event::Connected(Outbound));
    let wrong_as = Message::Open(Open::new(65000, 9, "10.255.0.1".parse().unwrap(), vec![]));
    assert_eq!(
        r.ev(0.2, Event::Received(Outbound, wrong_as)),
        ["send Outbound NOTIFICATION 2/2", "close Outbound"]
    );
    assert_eq!(r.s.state(), State::Idle);

    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    r.ev(0.1, Event::Connected(Outbound));
    assert_eq!(
        r.ev(0.2, Event::Received(Outbound, peer_open("10.255.0.2", 9))),
        ["send Outbound NOTIFICATION 2/3", "close Outbound"],
        "same BGP identifier inside one AS (RFC 6286)"
    );
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    r.ev(0.1, Event::Connected(Outbound));
    assert_eq!(
        r.ev(0.2, Event::Received(Outbound, Message::Keepalive)),
        ["send Outbound NOTIFICATION 5/1", "close Outbound"]
    );
    let mut r = Run::new(cfg());
    r.establish(Outbound);
    let out = r.ev(1.0, Event::Received(Outbound, peer_open("10.255.0.1", 9)));
    assert_eq!(
        &out[..2],
        ["send Outbound NOTIFICATION 5/3", "close Outbound"]
    );
    assert!(out[2].starts_with("down: sent NOTIFICATION"), "{out:?}");
}

#[test]
fn stop_sends_cease_and_reports_down() {
    let mut r = Run::new(cfg());
    r.establish(Outbound);
    let cease = Notification::new(6, 2, Vec::new());
    assert_eq!(
        r.ev(1.0, Event::Stop(cease)),
        [
            "send Outbound NOTIFICATION 6/2",
            "close Outbound",
            "down: administrative stop"
        ]
    );
    assert_eq!(r.s.state(), State::Idle);
    assert_eq!(r.s.poll_timeout(), None, "a stopped session has no timers");
    assert!(!r.s.accepts(Inbound));
}

#[test]
fn notification_from_peer_ends_session_and_backs_off() {
    let mut r = Run::new(cfg());
    r.establish(Outbound);
    let out = r.ev(
        1.0,
        Event::Received(
            Outbound,
            Message::Notification(Notification::new(6, 2, Vec::new())),
        ),
    );
    assert_eq!(out[0], "close Outbound");
    assert!(out[1].starts_with("down: received NOTIFICATION"), "{out:?}");
    assert_eq!(r.s.state(), State::Idle);
    assert!(
        !r.s.accepts(Outbound),
        "no connect of ours during idle hold"
    );
    assert_eq!(
        r.s.poll_timeout(),
        Some(r.at(3.0)),
        "idle hold = error_wait_min"
    );
}

/// Two speakers that both back off after the same failure must still meet:
/// during idle hold the peer's connection is taken and leads to Established.
#[test]
fn idle_hold_still_takes_the_peers_connection() {
    let mut r = Run::new(cfg());
    r.establish(Outbound);
    let cease = Message::Notification(Notification::new(6, 2, Vec::new()));
    r.ev(1.0, Event::Received(Outbound, cease));
    assert_eq!(r.s.state(), State::Idle);
    assert!(r.s.accepts(Inbound));
    assert_eq!(r.ev(1.5, Event::Connected(Inbound)), ["send Inbound OPEN"]);
    let open = peer_open("10.255.0.1", 9);
    assert_eq!(
        r.ev(1.6, Event::Received(Inbound, open)),
        ["send Inbound KEEPALIVE"]
    );
    assert_eq!(
        r.ev(1.7, Event::Received(Inbound, Message::Keepalive)),
        ["established Inbound"]
    );
    // The idle hold running out later starts no second connection.
    assert!(r.tick(3.1).is_empty());
}

/// From `t`: a session comes up, ends by `end` 1 s later, and the idle hold
/// runs out into a new connect. Returns (the idle hold in s, when it ended).
fn flap(r: &mut Run, t: f64, end: Event) -> (u64, f64) {
    assert_eq!(
        r.ev(t + 0.1, Event::Connected(Outbound)),
        ["send Outbound OPEN"]
    );
    r.ev(
        t + 0.2,
        Event::Received(Outbound, peer_open("10.255.0.1", 9)),
    );
    r.ev(t + 0.3, Event::Received(Outbound, Message::Keepalive));
    r.ev(t + 1.0, end);
    let until = r.s.poll_timeout().unwrap();
    let wait = until.duration_since(r.at(t + 1.0)).as_secs_f64().round() as u64;
    let next = until.duration_since(r.t0).as_secs_f64();
    assert_eq!(r.tick(next), ["connect"]);
    (wait, next)
}

#[test]
fn flapping_peer_waits_longer_each_time() {
    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    let mut t = 0.0;
    let mut waits = Vec::new();
    for _ in 0..5 {
        let (wait, next) = flap(&mut r, t, Event::Closed(Outbound));
        waits.push(wait);
        t = next;
    }
    assert_eq!(waits, [2, 4, 8, 16, 16]);
    // A session that stays up longer than error_wait_max forgets the flapping.
    r.ev(t + 0.1, Event::Connected(Outbound));
    r.ev(
        t + 0.2,
        Event::Received(Outbound, peer_open("10.255.0.1", 0)),
    );
    r.ev(t + 0.3, Event::Received(Outbound, Message::Keepalive));
    r.ev(t + 100.0, Event::Closed(Outbound));
    assert_eq!(r.s.poll_timeout(), Some(r.at(t + 102.0)));
}

/// A peer that closes on purpose (Cease 6/6 after a reload, 6/4 a reset)
/// is taken back after the shortest wait, however often it flapped before;
/// other notifications still double the wait.
#[test]
fn deliberate_cease_from_the_peer_starts_the_backoff_over() {
    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    let mut t = 0.0;
    let mut waits = Vec::new();
    for (code, subcode) in [(6, 1), (4, 0), (6, 6), (6, 6), (6, 4), (6, 1)] {
        let n = Message::Notification(Notification::new(code, subcode, Vec::new()));
        let (wait, next) = flap(&mut r, t, Event::Received(Outbound, n));
        waits.push(wait);
        t = next;
    }
    assert_eq!(waits, [2, 4, 2, 2, 2, 4]);
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer() {
    let mut r = Run::new(cfg());
    r.ev(0.0, Event::Start);
    r.ev(0.1, Event::Connected(Outbound));
    r.ev(0.2, Event::Received(Outbound, peer_open("10.255.0.1", 0)));
    r.ev(0.3, Event::Received(Outbound, Message::Keepalive));
    assert_eq!(r.s.state(), State::Established);
    assert_eq!(r.s.poll_timeout(), None);
    assert!(r.tick(10_000.0).is_empty());
}

#[test]
fn updates_flow_only_when_established() {
    let mut r = Run::new(cfg());
    r.establish(Inbound);
    let u = Message::Update(Update::default());
    assert_eq!(r.ev(1.0, Event::Received(Inbound, u)), ["update"]);
    assert!(r
        .s
        .negotiated()
        .is_some_and(|n| n.four_octet_as && n.ipv4_unicast && n.route_refresh));
    let rr = Message::RouteRefresh(RouteRefresh {
        afi: 1,
        subtype: 0,
        safi: 1,
    });
    assert_eq!(r.ev(1.1, Event::Received(Inbound, rr)), ["route-refresh"]);
}

#[test]
fn malformed_message_sends_its_notification() {
    let mut r = Run::new(cfg());
    r.establish(Outbound);
    let n = Notification::new(1, 2, vec![0, 5]);
    let out = r.ev(1.0, Event::Malformed(Outbound, n));
    assert_eq!(
        &out[..2],
        ["send Outbound NOTIFICATION 1/2", "close Outbound"]
    );
    assert!(out[2].starts_with("down: sent NOTIFICATION"));
}

#[test]
fn connect_failure_retries_after_connect_retry() {
    let mut r = Run::new(cfg());
    assert_eq!(r.ev(0.0, Event::Start), ["connect"]);
    r.ev(0.5, Event::ConnectFailed);
    assert_eq!(r.s.poll_timeout(), Some(r.at(5.5)));
    assert!(r.tick(5.0).is_empty());
    assert_eq!(r.tick(5.5), ["connect"]);
}

#[test]
fn reloaded_config_is_used_by_the_next_open() {
    let mut s = Session::new(cfg());
    let now = Instant::now();
    s.handle(Event::Start, now);
    s.set_config(SessionConfig {
        hold_time: 30,
        keepalive: 10,
        ..cfg()
    });
    let actions = s.handle(Event::Connected(Outbound), now);
    let open = actions.iter().find_map(|a| match a {
        Action::Send(_, Message::Open(o)) => Some(o.hold_time),
        _ => None,
    });
    assert_eq!(open, Some(30));
}

/// RFC 9687: data waiting and none accepted for the send hold time: 8/0, close, down.
#[test]
fn send_hold_timer_drops_a_peer_that_accepts_no_data() {
    let mut r = Run::new(SessionConfig {
        hold_time: 0,
        send_hold_time: Some(Duration::from_secs(20)),
        ..cfg()
    });
    r.establish(Outbound);
    assert_eq!(r.s.poll_timeout(), None, "nothing queued, no timer");
    r.ev(1.0, Event::Queued(Outbound));
    r.ev(5.0, Event::Queued(Outbound));
    assert_eq!(
        r.s.poll_timeout(),
        Some(r.at(21.0)),
        "armed by the first queued data"
    );
    r.ev(
        15.0,
        Event::Sent {
            dir: Outbound,
            idle: false,
        },
    );
    assert!(r.tick(34.9).is_empty(), "progress restarted it");
    assert_eq!(
        r.tick(35.0),
        [
            "send Outbound NOTIFICATION 8/0",
            "close Outbound",
            "down: send hold timer expired: the peer accepts no data"
        ]
    );
}

#[test]
fn send_hold_timer_stops_when_all_is_written_and_defaults_to_8_minutes() {
    let mut r = Run::new(SessionConfig {
        hold_time: 0,
        ..cfg()
    });
    r.establish(Outbound);
    r.ev(1.0, Event::Queued(Outbound));
    assert_eq!(r.s.poll_timeout(), Some(r.at(481.0)), "max(8 min, 2 x 0)");
    r.ev(
        2.0,
        Event::Sent {
            dir: Outbound,
            idle: true,
        },
    );
    assert_eq!(r.s.poll_timeout(), None);
    assert!(r.tick(1000.0).is_empty());
    // Off when configured to zero.
    let mut r = Run::new(SessionConfig {
        hold_time: 0,
        send_hold_time: Some(Duration::ZERO),
        ..cfg()
    });
    r.establish(Outbound);
    r.ev(1.0, Event::Queued(Outbound));
    assert_eq!(r.s.poll_timeout(), None);
}
