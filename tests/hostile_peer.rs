//! A hostile peer against the real daemon: every error of RFC 4271 §6.1–6.6
//! and RFC 7606 §7 with its mandated answer. Session-reset errors: the
//! NOTIFICATION's code, subcode and data, then the close. Treat-as-withdraw and
//! attribute discard: the session stays up and the route state is read back
//! through the control socket (`show routes --json`). Unusable next hops,
//! families not negotiated, enhanced route refresh (RFC 7313) and End-of-RIB
//! are checked the same way.

mod common;

use bytes::Bytes;
use common::*;
use kittbgpd::wire::{Capability, Message, Open, RouteRefresh};
use serde_json::Value;
use std::time::{Duration, Instant};

// ---- raw UPDATE pieces ------------------------------------------------------

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, code, value.len() as u8];
    a.extend_from_slice(value);
    a
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}

fn as_path() -> Vec<u8> {
    attr(0x40, 2, &[])
}

fn next_hop(a: [u8; 4]) -> Vec<u8> {
    attr(0x40, 3, &a)
}

fn local_pref() -> Vec<u8> {
    attr(0x40, 5, &[0, 0, 0, 100])
}

fn med(m: u32) -> Vec<u8> {
    attr(0x80, 4, &m.to_be_bytes())
}

/// A next hop the daemon can use (the daemon's own address is 127.0.0.1).
const NH: [u8; 4] = [192, 0, 2, 2];

/// ORIGIN, AS_PATH, NEXT_HOP, LOCAL_PREF.
fn good_attrs() -> Vec<u8> {
    [origin(), as_path(), next_hop(NH), local_pref()].concat()
}

fn nlri(n: u8) -> Vec<u8> {
    vec![32, 10, 1, 0, n]
}

fn prefix(n: u8) -> String {
    format!("10.1.0.{n}/32")
}

fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    raw_update(&body)
}

/// MP_REACH_NLRI (RFC 4760 §3).
fn mp_reach(afi: u16, nh: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut v = afi.to_be_bytes().to_vec();
    v.push(1);
    v.push(nh.len() as u8);
    v.extend_from_slice(nh);
    v.push(0);
    v.extend_from_slice(nlri);
    attr(0x80, 14, &v)
}

// ---- what the daemon says ----------------------------------------------------

/// Waits (bounded by the read timeout) until `f` holds; the daemon handles
/// UPDATEs and control requests on different paths.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The test peer's candidate for `prefix` (accepted), if any.
fn accepted(d: &Daemon, prefix: &str) -> Option<Value> {
    d.routes(true, false)
        .into_iter()
        .find(|r| r["prefix"] == prefix && r["peer"] == "test-peer")
}

fn filtered(d: &Daemon, prefix: &str) -> Option<Value> {
    d.routes(false, true)
        .into_iter()
        .find(|r| r["prefix"] == prefix && r["peer"] == "test-peer")
}

fn wait_accepted(d: &Daemon, prefix: &str) -> Value {
    wait_for(&format!("{prefix} accepted"), || accepted(d, prefix))
}

/// Waits until `prefix` is filtered and no longer accepted; returns the reason.
fn wait_filtered(d: &Daemon, prefix: &str) -> String {
    let r = wait_for(&format!("{prefix} filtered"), || filtered(d, prefix));
    assert!(accepted(d, prefix).is_none(), "{prefix} still accepted");
    r["reason"].as_str().unwrap_or_default().to_string()
}

fn assert_established(d: &Daemon) {
    assert_eq!(d.neighbor()["state"], "Established", "session kept");
}

/// The NOTIFICATION with this code, subcode and data, then the close.
fn expect_error(p: &mut Peer, code: u8, subcode: u8, data: &[u8]) {
    let n = p.recv_notification();
    assert_eq!(
        (n.code, n.subcode, n.data.as_ref()),
        (code, subcode, data),
        "{n}"
    );
    p.expect_closed();
}

fn caps(extra: &[Capability]) -> Vec<Capability> {
    let mut c = default_caps(AS);
    c.extend_from_slice(extra);
    c
}

fn established(d: &Daemon) -> Peer {
    let mut p = Peer::ready(d.port);
    p.establish();
    p
}

// ---- RFC 4271 §6.1 -----------------------------------------------------------

#[test]
fn header_errors_are_answered_without_waiting_for_a_body() {
    let d = start_daemon();

    // A header announcing 65535 octets (more than the 4096 negotiated) and only
    // 5 octets of body: judged from the header alone, at once (1/2, data = the
    // length), not after a body that never comes, nor at the hold timer (9 s;
    // a read waits at most 5 s).
    let mut p = established(&d);
    let mut m = header(65535 - 19, 2);
    m.extend_from_slice(&[0, 0, 0, 0, 0]);
    let sent = Instant::now();
    p.send_raw(&m);
    let n = p.recv_notification();
    let took = sent.elapsed();
    eprintln!("NOTIFICATION 1/2 for a 65535-octet header answered in {took:?}");
    assert_eq!(
        (n.code, n.subcode, n.data.as_ref()),
        (1, 2, &[0xff, 0xff][..])
    );
    p.expect_closed();

    // Before OPEN the maximum is 4096 whatever will be negotiated (RFC 8654 §3).
    let mut p = Peer::ready(d.port);
    p.send_raw(&header(4097 - 19, 2));
    expect_error(&mut p, 1, 2, &[0x10, 0x01]);

    // Connection Not Synchronized: the marker is not all ones.
    let mut p = Peer::ready(d.port);
    let mut bad = header(0, 4);
    bad[7] = 0xfe;
    p.send_raw(&bad);
    expect_error(&mut p, 1, 1, &[]);

    // Lengths below the minimum of each type.
    for (len, t) in [(18u16, 4u8), (28, 1), (22, 2), (20, 3), (20, 4)] {
        let mut p = Peer::ready(d.port);
        let mut h = vec![0xff; 16];
        h.extend_from_slice(&len.to_be_bytes());
        h.push(t);
        p.send_raw(&h);
        expect_error(&mut p, 1, 2, &len.to_be_bytes());
    }

    // Bad Message Type, data = the type.
    let mut p = Peer::ready(d.port);
    p.send_raw(&header(0, 9));
    expect_error(&mut p, 1, 3, &[9]);
}

// ---- RFC 4271 §6.2 -----------------------------------------------------------

#[test]
fn open_errors() {
    let d = start_daemon();
    let open = |f: &dyn Fn(&mut Open)| {
        let mut o = Open::new(AS, 9, "10.0.0.2".parse().unwrap(), default_caps(AS));
        f(&mut o);
        o
    };

    // Unsupported Version Number, data = the largest version supported.
    let mut p = Peer::ready(d.port);
    p.send_open(open(&|o| o.version = 3));
    expect_error(&mut p, 2, 1, &[0, 4]);

    // Bad Peer AS.
    let mut p = Peer::ready(d.port);
    p.send_open(Open::new(
        64999,
        9,
        "10.0.0.2".parse().unwrap(),
        default_caps(64999),
    ));
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (2, 2), "{n}");
    p.expect_closed();

    // Bad BGP Identifier: 0.0.0.0, or ours within the AS (RFC 6286 §2.2).
    for id in ["0.0.0.0", "10.0.0.1"] {
        let mut p = Peer::ready(d.port);
        p.send_open(open(&|o| o.bgp_id = id.parse().unwrap()));
        let n = p.recv_notification();
        assert_eq!((n.code, n.subcode), (2, 3), "{id}: {n}");
        p.expect_closed();
    }

    // Unsupported Optional Parameter (type 1, the deprecated authentication).
    let mut p = Peer::ready(d.port);
    p.send_open(open(&|o| {
        o.other_params = vec![(1, Bytes::from_static(&[0]))]
    }));
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (2, 4), "{n}");
    p.expect_closed();

    // Unacceptable Hold Time (1 and 2 seconds).
    let mut p = Peer::ready(d.port);
    p.send_open(open(&|o| o.hold_time = 2));
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (2, 6), "{n}");
    p.expect_closed();
}

// ---- RFC 4271 §6.4–6.6, RFC 6608 ----------------------------------------------

#[test]
fn fsm_notification_and_hold_timer_errors() {
    let d = start_daemon();

    // KEEPALIVE before OPEN: FSM error in OpenSent (5/1).
    let mut p = Peer::ready(d.port);
    p.send(&Message::Keepalive);
    expect_error(&mut p, 5, 1, &[]);

    // UPDATE in OpenConfirm (5/2).
    let mut p = Peer::ready(d.port);
    p.open(AS, "10.0.0.2");
    assert!(matches!(p.recv(), Some(Message::Keepalive)));
    p.send_raw(&update(&[], &good_attrs(), &nlri(1)));
    expect_error(&mut p, 5, 2, &[]);

    // OPEN in Established (5/3).
    let mut p = established(&d);
    p.send(&Message::Open(Open::new(
        AS,
        9,
        "10.0.0.2".parse().unwrap(),
        default_caps(AS),
    )));
    expect_error(&mut p, 5, 3, &[]);

    // §6.4: a NOTIFICATION is never answered; the daemon closes.
    let mut p = established(&d);
    p.send(&Message::Notification(kittbgpd::wire::Notification::new(
        6,
        4,
        Vec::new(),
    )));
    p.expect_closed();
    let err = wait_for("the error recorded", || {
        let n = d.neighbor();
        (n["state"] != "Established").then(|| n["last_error"].to_string())
    });
    assert!(err.contains("received NOTIFICATION"), "{err}");

    // §6.5: Hold Timer Expired (4/0) when the peer stays silent (hold time 3 s).
    let mut p = Peer::ready(d.port);
    p.send_open(Open::new(
        AS,
        3,
        "10.0.0.2".parse().unwrap(),
        default_caps(AS),
    ));
    assert!(matches!(p.recv(), Some(Message::Keepalive)));
    p.send(&Message::Keepalive);
    let start = Instant::now();
    expect_error(&mut p, 4, 0, &[]);
    eprintln!("hold timer (3 s) expired after {:?}", start.elapsed());
}

// ---- RFC 4271 §6.3 and RFC 7606: session reset ---------------------------------

#[test]
fn update_errors_that_reset_the_session() {
    let d = start_daemon();

    // An attribute running past the attribute field and nothing to withdraw
    // (RFC 7606 §4): Malformed Attribute List.
    let mut p = established(&d);
    p.send_raw(&raw_update(&[0, 0, 0, 4, 0x40, 1, 9, 0]));
    expect_error(&mut p, 3, 1, &[]);

    // Withdrawn Routes Length past the message: Malformed Attribute List.
    let mut p = established(&d);
    p.send_raw(&raw_update(&[0, 10, 0, 0]));
    expect_error(&mut p, 3, 1, &[]);

    // Unrecognized well-known attribute (3/2), data = the attribute.
    let mut p = established(&d);
    let unknown = attr(0x40, 200, &[1]);
    p.send_raw(&update(
        &[],
        &[good_attrs(), unknown.clone()].concat(),
        &nlri(1),
    ));
    expect_error(&mut p, 3, 2, &unknown);

    // Invalid Network Field (3/10): a /33.
    let mut p = established(&d);
    p.send_raw(&update(&[], &good_attrs(), &[33, 10, 1, 0, 1, 0]));
    expect_error(&mut p, 3, 10, &[]);

    // MP_UNREACH_NLRI twice (RFC 7606 §3 g): Malformed Attribute List.
    let mut p = established(&d);
    let unreach = attr(0x80, 15, &[0, 1, 1]);
    p.send_raw(&update(&[], &[unreach.clone(), unreach].concat(), &[]));
    expect_error(&mut p, 3, 1, &[]);

    // MP_UNREACH_NLRI marked well-known: Attribute Flags Error (3/4), data = the
    // attribute (RFC 7606 §3 c leaves MP_* to their own rule, a session reset).
    let mut p = established(&d);
    let unreach = attr(0x40, 15, &[0, 1, 1]);
    p.send_raw(&update(&[], &unreach, &[]));
    expect_error(&mut p, 3, 4, &unreach);

    // Malformed MP_REACH_NLRI (RFC 7606 §7.11): Optional Attribute Error, data = the attribute.
    let mut p = established(&d);
    let reach = attr(0x80, 14, &[0, 1, 1, 4, 192, 0]);
    p.send_raw(&update(&[], &[good_attrs(), reach.clone()].concat(), &[]));
    expect_error(&mut p, 3, 9, &reach);

    // ROUTE-REFRESH of the wrong length with enhanced route refresh (RFC 7313 §5):
    // 7/1, data = the whole message.
    let mut p = Peer::ready(d.port);
    p.establish_with(caps(&[Capability::EnhancedRouteRefresh]));
    let mut rr = header(5, 5);
    rr.extend_from_slice(&[0, 1, 0, 1, 0]);
    p.send_raw(&rr);
    expect_error(&mut p, 7, 1, &rr);
}

// ---- RFC 7606 §7: treat-as-withdraw and attribute discard ----------------------

#[test]
fn malformed_attributes_withdraw_or_discard_and_keep_the_session() {
    let d = start_daemon();
    let mut p = established(&d);
    let without = |code: u8| -> Vec<u8> {
        [
            (1, origin()),
            (2, as_path()),
            (3, next_hop(NH)),
            (5, local_pref()),
        ]
        .into_iter()
        .filter(|(c, _)| *c != code)
        .flat_map(|(_, a)| a)
        .collect()
    };
    let with = |extra: Vec<u8>| [good_attrs(), extra].concat();
    // The attribute field ends inside a MED claiming 9 octets; NLRI follow (RFC 7606 §4).
    let mut past_end = good_attrs();
    past_end.extend_from_slice(&[0x80, 4, 9, 0]);
    let withdraw_cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "ORIGIN value 3 (§7.1)",
            [attr(0x40, 1, &[3]), without(1)].concat(),
        ),
        (
            "ORIGIN length 2 (§7.1)",
            [attr(0x40, 1, &[0, 0]), without(1)].concat(),
        ),
        (
            "AS_PATH segment overrun (§7.2)",
            [attr(0x40, 2, &[2, 2, 0, 0, 0, 1]), without(2)].concat(),
        ),
        (
            "NEXT_HOP length 5 (§7.3)",
            [attr(0x40, 3, &[192, 0, 2, 2, 0]), without(3)].concat(),
        ),
        ("MED length 3 (§7.4)", with(attr(0x80, 4, &[0, 0, 1]))),
        (
            "LOCAL_PREF length 2 (§7.5)",
            [attr(0x40, 5, &[0, 100]), without(5)].concat(),
        ),
        (
            "COMMUNITIES length 3 (§7.8)",
            with(attr(0xc0, 8, &[0, 0, 1])),
        ),
        (
            "ORIGINATOR_ID length 3 (§7.9)",
            with(attr(0x80, 9, &[1, 2, 3])),
        ),
        (
            "CLUSTER_LIST length 5 (§7.10)",
            with(attr(0x80, 10, &[1, 2, 3, 4, 5])),
        ),
        (
            "EXTENDED_COMMUNITIES length 7 (§7.14)",
            with(attr(0xc0, 16, &[0; 7])),
        ),
        (
            "LARGE_COMMUNITIES length 11 (RFC 8092 §6)",
            with(attr(0xc0, 32, &[0; 11])),
        ),
        ("ORIGIN missing (§3 d)", without(1)),
        ("AS_PATH missing (§3 d)", without(2)),
        ("NEXT_HOP missing (§3 d)", without(3)),
        (
            "ORIGIN with the Optional bit (§3 c)",
            [attr(0xc0, 1, &[0]), without(1)].concat(),
        ),
        ("attribute past the field, with NLRI (§4)", past_end),
    ];
    for (i, (what, bad)) in withdraw_cases.into_iter().enumerate() {
        let n = i as u8 + 1;
        p.send_raw(&update(&[], &good_attrs(), &nlri(n)));
        wait_accepted(&d, &prefix(n));
        p.send_raw(&update(&[], &bad, &nlri(n)));
        let reason = wait_filtered(&d, &prefix(n));
        assert!(reason.contains("treat-as-withdraw"), "{what}: {reason}");
    }
    assert_established(&d);

    // Attribute discard: the route stays, without the attribute.
    let r = |n: u8, extra: Vec<u8>, p: &mut Peer| {
        p.send_raw(&update(&[], &with(extra), &nlri(n)));
        wait_for(&format!("{} updated", prefix(n)), || {
            accepted(&d, &prefix(n)).filter(|v| v["received_med"] == serde_json::json!(n))
        })
    };
    // The MED marks which UPDATE the route came from.
    let v = r(100, [med(100), attr(0x40, 6, &[])].concat(), &mut p);
    assert_eq!(v["atomic_aggregate"], true, "{v}");
    let v = r(101, [med(101), attr(0x40, 6, &[0])].concat(), &mut p);
    assert_eq!(
        v["atomic_aggregate"], false,
        "ATOMIC_AGGREGATE length 1 (§7.6): {v}"
    );
    let aggregator = attr(0xc0, 7, &[0, 0, 0xfd, 0xea, 192, 0, 2, 9]);
    let v = r(102, [med(102), aggregator].concat(), &mut p);
    assert_eq!(v["aggregator"], "65002 192.0.2.9", "{v}");
    let v = r(103, [med(103), attr(0xc0, 7, &[0; 5])].concat(), &mut p);
    assert_eq!(
        v["aggregator"],
        Value::Null,
        "AGGREGATOR length 5 (§7.7): {v}"
    );
    // A duplicate: all but the first instance discarded (§3 g).
    let v = r(104, [med(104), med(7)].concat(), &mut p);
    assert_eq!(v["received_med"], 104, "{v}");
    // Unknown optional transitive: kept as received, visible with flags and value.
    let v = r(105, [med(105), attr(0xc0, 99, &[1, 2, 3])].concat(), &mut p);
    assert_eq!(
        v["unknown_attributes"],
        serde_json::json!([{"code": 99, "flags": 0xc0, "value": "010203"}]),
        "{v}"
    );
    let v = r(
        106,
        [med(106), attr(0xc0, 8, &[0xfd, 0xe8, 0, 7])].concat(),
        &mut p,
    );
    assert_eq!(v["communities"], serde_json::json!(["65000:7"]), "{v}");
    assert_established(&d);
}

// ---- RFC 4271 §6.3 NEXT_HOP, RFC 4760 families ----------------------------------

#[test]
fn unusable_next_hops_and_families_not_negotiated_are_ignored() {
    let d = start_daemon();
    // IPv4 unicast only, no extended next hop.
    let mut p = established(&d);
    for (i, (nh, why)) in [
        ([0, 0, 0, 0], "0.0.0.0"),
        ([224, 0, 0, 1], "multicast"),
        ([240, 0, 0, 1], "class E"),
        ([127, 0, 0, 1], "our own address"),
    ]
    .into_iter()
    .enumerate()
    {
        let n = i as u8 + 1;
        p.send_raw(&update(&[], &good_attrs(), &nlri(n)));
        wait_accepted(&d, &prefix(n));
        let attrs = [origin(), as_path(), next_hop(nh), local_pref()].concat();
        p.send_raw(&update(&[], &attrs, &nlri(n)));
        let reason = wait_filtered(&d, &prefix(n));
        assert_eq!(reason, format!("unusable next hop: {why}"));
    }
    let base = [origin(), as_path(), local_pref()].concat();
    // MP_REACH_NLRI with a multicast IPv4 next hop.
    let reach = mp_reach(1, &[224, 0, 0, 9], &nlri(10));
    p.send_raw(&update(&[], &[base.clone(), reach].concat(), &[]));
    assert_eq!(
        wait_filtered(&d, &prefix(10)),
        "unusable next hop: multicast"
    );
    // A 32-octet IPv6 next hop for IPv4 NLRI without RFC 8950.
    let mut ll = vec![0u8; 16];
    ll.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    let reach = mp_reach(1, &ll, &nlri(11));
    p.send_raw(&update(&[], &[base.clone(), reach].concat(), &[]));
    let reason = wait_filtered(&d, &prefix(11));
    assert!(reason.contains("RFC 8950"), "{reason}");
    // IPv6 routes, IPv6 not negotiated: ignored (not even kept as filtered).
    let mut v6: Vec<u8> = vec![128];
    v6.extend_from_slice(&"fd00::5".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let reach = mp_reach(2, &ll[16..], &v6);
    p.send_raw(&update(&[], &[base, reach].concat(), &[]));
    // Handled in order: once a later route is in, the IPv6 one was seen.
    p.send_raw(&update(&[], &good_attrs(), &nlri(12)));
    wait_accepted(&d, &prefix(12));
    let all = [d.routes(true, false), d.routes(false, true)].concat();
    assert!(
        all.iter().all(|r| r["prefix"] != "fd00::5/128"),
        "IPv6 route ignored: {all:?}"
    );
    assert_established(&d);
}

// ---- RFC 7313 enhanced route refresh, RFC 4724 End-of-RIB -----------------------

#[test]
fn enhanced_route_refresh_and_end_of_rib() {
    let d = start_daemon();
    let mut p = Peer::ready(d.port);
    p.establish_with(caps(&[Capability::EnhancedRouteRefresh]));
    // The daemon's table, up to its End-of-RIB.
    loop {
        match p.recv() {
            Some(Message::Update(u)) if u.is_end_of_rib().is_some() => break,
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    let eor = |d: &Daemon| d.neighbor()["routes"]["end_of_rib_ipv4"].clone();
    assert_eq!(eor(&d), false);
    for n in 1..=3 {
        p.send_raw(&update(&[], &good_attrs(), &nlri(n)));
    }
    // End-of-RIB for IPv4 unicast: an empty UPDATE.
    p.send_raw(&update(&[], &[], &[]));
    wait_for("End-of-RIB recorded", || (eor(&d) == true).then_some(()));
    for n in 1..=3 {
        wait_accepted(&d, &prefix(n));
    }

    // BoRR, 1 again, 2 withdrawn, 3 not refreshed, EoRR: only 1 stays.
    let rr = |subtype| {
        Message::RouteRefresh(RouteRefresh {
            afi: 1,
            subtype,
            safi: 1,
        })
    };
    p.send(&rr(RouteRefresh::BORR));
    p.send_raw(&update(&[], &good_attrs(), &nlri(1)));
    p.send_raw(&update(&nlri(2), &[], &[]));
    p.send(&rr(RouteRefresh::EORR));
    wait_for("stale route purged", || {
        accepted(&d, &prefix(3)).is_none().then_some(())
    });
    assert!(accepted(&d, &prefix(1)).is_some(), "refreshed route kept");
    assert!(accepted(&d, &prefix(2)).is_none());
    // BoRR/EoRR are not requests: the daemon sends nothing back before its
    // next KEEPALIVE (every 3 s).
    match p.recv() {
        Some(Message::Keepalive) => {}
        Some(m) => panic!("BoRR/EoRR answered with {m:?}"),
        None => panic!("closed"),
    }
    // A request for a family not negotiated is ignored; a normal request is
    // answered with BoRR, our routes, EoRR.
    p.send(&Message::RouteRefresh(RouteRefresh {
        afi: 2,
        subtype: RouteRefresh::REQUEST,
        safi: 1,
    }));
    p.send(&rr(RouteRefresh::REQUEST));
    let mut got = Vec::new();
    while got.last() != Some(&"EoRR") {
        match p.recv() {
            Some(Message::RouteRefresh(r)) if r.afi == 1 && r.subtype == RouteRefresh::BORR => {
                got.push("BoRR")
            }
            Some(Message::RouteRefresh(r)) if r.afi == 1 && r.subtype == RouteRefresh::EORR => {
                got.push("EoRR")
            }
            Some(Message::Update(u)) => {
                if u.announced().count() > 0 && got.last() != Some(&"routes") {
                    got.push("routes")
                }
            }
            Some(Message::Keepalive) => {}
            m => panic!("unexpected {m:?}"),
        }
    }
    assert_eq!(got, ["BoRR", "routes", "EoRR"]);
    // End-of-RIB is per session: shown, and cleared when the session ends.
    assert_eq!(
        d.neighbor()["routes"]["end_of_rib_ipv6"],
        false,
        "not negotiated"
    );
    assert_established(&d);
}
