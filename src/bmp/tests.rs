//! Each message read back by an independent BMP parser (bgpkit-parser).

use super::*;
use crate::rib::InRoute;
use crate::wire::{AsPath, Message, Negotiated, Open, Origin, PathAttributes};
use bgpkit_parser::parse_bmp_msg;
use ipnet::IpNet;
use std::sync::Arc;

fn peer() -> PeerHeader {
    PeerHeader {
        address: "fe80::1:2".parse().unwrap(),
        asn: 65000,
        bgp_id: Ipv4Addr::new(10, 0, 0, 2),
        time: (1_700_000_000, 5),
    }
}

fn parse(b: &Bytes) -> String {
    let mut data = b.clone();
    let m = parse_bmp_msg(&mut data).unwrap_or_else(|e| panic!("{e:?}: {b:02x?}"));
    assert!(data.is_empty(), "whole message consumed");
    assert_eq!(m.common_header.msg_len as usize, b.len());
    format!("{m:?}")
}

#[test]
fn initiation_and_termination() {
    let m = parse(&initiation("kittbgpd 0.1.0", "node1"));
    assert!(
        m.contains("InitiationMessage") && m.contains("kittbgpd 0.1.0") && m.contains("node1"),
        "{m}"
    );
    let m = parse(&termination(TERM_ADMIN_CLOSE));
    assert!(m.contains("TerminationMessage"), "{m}");
}

#[test]
fn peer_up_carries_both_opens() {
    let open = |id: &str| {
        Message::Open(Open {
            version: 4,
            my_as: 65000,
            hold_time: 9,
            bgp_id: id.parse().unwrap(),
            capabilities: Vec::new(),
            other_params: Vec::new(),
        })
        .to_bytes(&Negotiated::default())
        .unwrap()
    };
    let b = peer_up(
        &peer(),
        "fe80::1:1".parse().unwrap(),
        179,
        40000,
        &open("10.0.0.1"),
        &open("10.0.0.2"),
    );
    let m = parse(&b);
    assert!(m.contains("PeerUpNotification"), "{m}");
    assert!(m.contains("10.0.0.1") && m.contains("10.0.0.2"), "{m}");
    assert!(m.contains("40000"), "{m}");
}

#[test]
fn peer_down_reasons() {
    let m = parse(&peer_down(&peer(), &DownReason::RemoteNoNotification));
    assert!(m.contains("PeerDownNotification"), "{m}");
    let n = Message::Notification(crate::wire::Notification::new(6, 2, Bytes::new()))
        .to_bytes(&Negotiated::default())
        .unwrap();
    let m = parse(&peer_down(&peer(), &DownReason::LocalNotification(n)));
    assert!(m.contains("PeerDownNotification"), "{m}");
}

#[test]
fn route_monitoring_pre_and_post_policy() {
    let r = InRoute {
        peer: 0,
        next_hop: Some("fe80::1:2".parse().unwrap()),
        attrs: Arc::new(PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            med: Some(7),
            ..Default::default()
        }),
        verdict: Ok(()),
        path_id: 0,
    };
    let routes = [
        ("10.255.0.2/32".parse().unwrap(), &r),
        ("fd00:255::2/128".parse().unwrap(), &r),
    ];
    let updates = route_monitoring_updates(routes, &Negotiated::FABRIC);
    assert_eq!(updates.len(), 2, "one UPDATE per family");
    for (post, flags) in [(false, FLAG_V), (true, FLAG_V | FLAG_L)] {
        let b = route_monitoring(&peer(), post, &updates[0]);
        assert_eq!(b[7], flags, "peer flags");
        let m = parse(&b);
        assert!(
            m.contains("RouteMonitoring") && m.contains("fe80::1:2"),
            "{m}"
        );
    }
    let all: String = updates
        .iter()
        .map(|u| parse(&route_monitoring(&peer(), false, u)))
        .collect();
    assert!(
        all.contains("10.255.0.2/32") && all.contains("fd00:255::2/128"),
        "{all}"
    );
}

#[test]
fn stats_report_counts() {
    let b = stats_report(&peer(), 3, 10, 4);
    let m = parse(&b);
    assert!(m.contains("StatsReport"), "{m}");
    assert_eq!(&b[48..52], &[0, 0, 0, 3], "three counters");
}

#[test]
fn route_monitoring_keeps_the_path_ids_of_an_add_path_peer() {
    let attrs = Arc::new(PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(100),
        ..Default::default()
    });
    let route = |path_id| InRoute {
        peer: 0,
        next_hop: Some("fe80::1:2".parse().unwrap()),
        attrs: attrs.clone(),
        verdict: Ok(()),
        path_id,
    };
    let (a, b) = (route(1), route(2));
    let p: IpNet = "fd00:255::7/128".parse().unwrap();
    // We receive ADD-PATH for IPv6 (and send it for IPv4: irrelevant here).
    let session = Negotiated {
        add_path_receive: crate::wire::Families {
            ipv4_unicast: false,
            ipv6_unicast: true,
        },
        add_path_send: crate::wire::Families {
            ipv4_unicast: true,
            ipv6_unicast: false,
        },
        ..Negotiated::FABRIC
    };
    let updates = route_monitoring_updates([(p, &a), (p, &b)], &session);
    assert_eq!(updates.len(), 1);
    // Decoded as the collector does, from the peer's side: with path ids.
    let Message::Update(u) = Message::decode(updates[0].clone(), &session).unwrap() else {
        panic!()
    };
    let paths: Vec<_> = u.announced_paths().collect();
    assert_eq!(paths, [(Some(1), p), (Some(2), p)]);
    // An IPv4 route of that session goes without (the peer sends none).
    let v4: IpNet = "10.255.0.7/32".parse().unwrap();
    let updates = route_monitoring_updates([(v4, &a)], &session);
    let Message::Update(u) = Message::decode(updates[0].clone(), &session).unwrap() else {
        panic!()
    };
    assert_eq!(u.announced_paths().collect::<Vec<_>>(), [(None, v4)]);
}
