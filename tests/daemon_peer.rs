//! The real daemon on loopback TCP, against a scripted peer: session set-up,
//! the originated loopback arriving, the RFC-mandated NOTIFICATION for
//! malformed input, refusal of strangers, and a Cease on SIGTERM.

mod common;

use common::*;
use kittbgpd::wire::{Message, Notification};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn daemon_speaks_bgp_and_answers_errors_with_notifications() {
    let d = start_daemon();

    // 1. Session up, our originated loopback arrives with next hop self.
    let mut p = Peer::connect(d.port);
    p.establish();
    let mut announced = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while announced.is_empty() && Instant::now() < deadline {
        if let Some(Message::Update(u)) = p.recv() {
            announced.extend(u.announced());
            if !announced.is_empty() {
                assert_eq!(
                    u.attrs.next_hop,
                    Some("127.0.0.1".parse().unwrap()),
                    "next hop self"
                );
                assert_eq!(u.attrs.local_pref, Some(100));
            }
        }
    }
    assert_eq!(
        announced,
        vec!["10.0.0.1/32".parse::<ipnet::IpNet>().unwrap()]
    );

    // 2. An attribute whose length runs past the attribute field, with no NLRI to
    //    withdraw: RFC 7606 §4 leaves only a session reset, UPDATE Message Error /
    //    Malformed Attribute List (3/1).
    p.send_raw(&raw_update(&[0u8, 0, 0, 4, 0x40, 1, 9, 0]));
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (3, 1), "{n}");
    assert!(p.recv().is_none(), "closed after the NOTIFICATION");

    // 3. A broken marker: Message Header Error / Connection Not Synchronized (1/1).
    std::thread::sleep(Duration::from_millis(1300)); // idle hold (error_wait 1 s)
    let mut p = Peer::connect(d.port);
    let mut bad = vec![0xff; 16];
    bad[3] = 0;
    bad.extend_from_slice(&[0, 19, 4]);
    p.send_raw(&bad);
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (1, 1), "{n}");

    // 4. A wrong AS in OPEN: OPEN Message Error / Bad Peer AS (2/2).
    std::thread::sleep(Duration::from_millis(1300));
    let mut p = Peer::connect(d.port);
    p.open(64999, "10.0.0.2");
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (2, 2), "{n}");

    // 5. A KEEPALIVE of the wrong length: Bad Message Length (1/2) with the length as data.
    std::thread::sleep(Duration::from_millis(1300));
    let mut p = Peer::connect(d.port);
    p.establish();
    let mut ka = vec![0xff; 16];
    ka.extend_from_slice(&[0, 20, 4, 0]);
    p.send_raw(&ka);
    let n = p.recv_notification();
    assert_eq!(
        (n.code, n.subcode, n.data.as_ref()),
        (1, 2, &[0u8, 20][..]),
        "{n}"
    );

    // 6. Established again, then SIGTERM: the daemon says Cease / Administrative Shutdown.
    std::thread::sleep(Duration::from_millis(1300));
    let mut p = Peer::connect(d.port);
    p.establish();
    let pid = d.child.id() as libc::pid_t;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (6, 2), "{n}");
}

#[test]
fn strangers_are_refused() {
    let d = start_daemon();
    // 127.0.0.2 is on lo but is not a configured neighbor: accepted by TCP, closed at once, no OPEN.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], d.port)).into())
        .unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 64];
    // EOF or reset: closed. A timeout panics (the daemon must close, not hang).
    assert_eq!(
        read_or_closed(&mut s, &mut buf),
        None,
        "a stranger gets nothing, not even an OPEN"
    );
}

/// RFC 5082: with ttl_security the daemon sends with TTL 255 and ignores
/// segments that arrive with less, so only a peer sending 255 gets a session.
#[test]
fn gtsm_accepts_only_ttl_255() {
    let d = start_daemon_with("ttl_security = true");
    let mut p = Peer::connect_ttl(d.port, 255);
    p.establish();
    drop(p);
    // With every neighbor under GTSM the listener itself drops the SYN sent with TTL 64.
    std::thread::sleep(Duration::from_millis(1300));
    // The SYN is dropped: the connect times out (refused would mean no listener).
    let err = try_connect(d.port, 64).expect_err("a handshake with TTL 64 must not complete");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        "dropped, not refused: {err}"
    );
    // And the daemon is alive: TTL 255 still gets a session.
    let mut p = Peer::ready_ttl(d.port, 255);
    p.establish();
}

/// `kittbgpd ARGS -s SOCKET` against the test daemon: its stdout (it must succeed).
fn ctl(d: &Daemon, args: &[&str]) -> String {
    let (ok, out, err) = d.cli(args);
    assert!(ok, "kittbgpd {args:?}: {out}{err}");
    out
}

fn held_down(d: &Daemon) -> serde_json::Value {
    d.neighbor()["held_down"].clone()
}

/// import_limit_action = "disable": the session stays down (connections are
/// not taken) until the operator enables it; `disable` holds it down again.
#[test]
fn a_session_disabled_by_the_import_limit_stays_down_until_enabled() {
    let d = start_daemon_with("import_limit = 1\nimport_limit_action = \"disable\"");
    let mut p = Peer::ready(d.port);
    p.establish();
    // Two IPv4 /32s, one over the limit.
    let prefixes = [
        "10.0.0.7/32".parse().unwrap(),
        "10.0.0.8/32".parse().unwrap(),
    ];
    p.send_raw(&ipv4_announce(&prefixes, "127.0.0.2".parse().unwrap()));
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (6, 1), "Cease / max prefixes: {n}");
    assert_eq!(held_down(&d), serde_json::json!(["import_limit"]));
    let text = ctl(&d, &["show", "neighbors"]);
    assert!(text.contains("held down: import limit reached"), "{text}");

    // Past the idle hold time a new connection is still not taken: no OPEN.
    std::thread::sleep(Duration::from_millis(1300));
    let mut p = Peer::connect(d.port);
    // (A read timeout panics: never taken for a close.)
    assert!(p.recv().is_none(), "disabled: connection closed, no OPEN");

    assert_eq!(
        ctl(&d, &["enable", "test-peer"]).trim(),
        "test-peer: enabled"
    );
    assert_eq!(held_down(&d), serde_json::json!([]));
    let mut p = Peer::ready(d.port);
    p.establish();

    ctl(&d, &["disable", "test-peer"]);
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (6, 2), "Administrative Shutdown: {n}");
    assert_eq!(held_down(&d), serde_json::json!(["operator"]));
}

/// `enabled = false`: configured, held down from the start, shown with its reason.
#[test]
fn a_neighbor_disabled_in_the_config_takes_no_connection() {
    let d = start_daemon_with("enabled = false");
    assert_eq!(held_down(&d), serde_json::json!(["config"]));
    let mut p = Peer::connect(d.port);
    // (A read timeout panics: never taken for a close.)
    assert!(p.recv().is_none(), "held down: connection closed, no OPEN");
    assert_eq!(
        ctl(&d, &["enable", "test-peer"]).trim(),
        "test-peer: enabled"
    );
    assert_eq!(
        held_down(&d),
        serde_json::json!(["config"]),
        "the operator's enable does not override the configuration"
    );
}

/// A peer that restarts connects again before its Cease on the old
/// connection is processed: the new connection is held and taken as soon as
/// the old session ends, not refused (which would cost a connect-retry).
#[test]
fn reconnect_racing_the_old_sessions_cease_is_taken() {
    let d = start_daemon();
    let mut old = Peer::connect(d.port);
    old.establish();
    assert!(
        matches!(old.recv(), Some(Message::Update(_))),
        "Established"
    );
    // The new connection arrives while the old session is still Established...
    let mut new = Peer::connect(d.port);
    std::thread::sleep(Duration::from_millis(300));
    // ...then the old one says Cease / Administrative Reset and goes away.
    old.send(&Message::Notification(Notification::new(6, 4, Vec::new())));
    drop(old);
    new.establish();
    // Established: the table follows.
    let mut announced = Vec::new();
    while announced.is_empty() {
        match new.recv() {
            Some(Message::Update(u)) => announced.extend(u.announced()),
            Some(_) => {}
            None => panic!("closed"),
        }
    }
}
