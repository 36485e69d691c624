//! Received input the RIB must not trust: unusable next hops (RFC 4271 §6.3,
//! RFC 7606 §7.3), families not negotiated, missing LOCAL_PREF, enhanced
//! route refresh (RFC 7313 §4.2) and End-of-RIB (RFC 4724).

use super::*;

fn v4_next_hop(a: &str, prefixes: &[&str]) -> Update {
    Update::announce_v4(
        attrs(None),
        a.parse().unwrap(),
        prefixes.iter().map(|p| p.parse().unwrap()),
    )
}

fn reason(rib: &Rib, peer: PeerId, prefix: &str) -> Option<Result<(), FilterReason>> {
    rib.adj_rib_in(peer)
        .into_iter()
        .find(|(p, _)| *p == net(prefix))
        .map(|(_, r)| r.verdict)
}

/// A Rib whose peer 0 has an IPv4 session at 192.0.2.1 without RFC 8950.
fn v4_session() -> Rib {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.peer_down(0);
    let n = Negotiated {
        ipv4_extended_next_hop: false,
        ipv6_unicast: false,
        ..neg()
    };
    let local = "192.0.2.1:179".parse().unwrap();
    rib.peer_up(
        0,
        ExportContext::new(n, Some(local)),
        Ipv4Addr::new(10, 0, 0, 11),
    );
    flush(&mut rib);
    rib
}

#[test]
fn unusable_ipv4_next_hops_are_treat_as_withdraw() {
    let mut rib = v4_session();
    rib.update(0, &v4_next_hop("192.0.2.2", &["10.255.0.1/32"]));
    let out = flush(&mut rib);
    assert_eq!(
        got(&out, 1).announced.len(),
        1,
        "a good next hop is accepted"
    );
    for (nh, why) in [
        ("0.0.0.0", "0.0.0.0"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "class E"),
        ("192.0.2.1", "our own address"),
    ] {
        rib.update(0, &v4_next_hop(nh, &["10.255.0.1/32", "10.255.0.2/32"]));
        let out = flush(&mut rib);
        assert_eq!(
            reason(&rib, 0, "10.255.0.2/32"),
            Some(Err(FilterReason::BadNextHop(why))),
            "{nh}"
        );
        assert_eq!(rib.counts(0).accepted, 0, "{nh}");
        if why == "0.0.0.0" {
            // The route it replaced is withdrawn everywhere (treat-as-withdraw).
            assert_eq!(got(&out, 1).withdrawn, vec![net("10.255.0.1/32")]);
        }
        assert!(rib.routes(false, false).is_empty(), "{nh}: never best");
    }
    let filtered = rib.routes(false, true);
    assert_eq!(filtered[0].next_hop.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        filtered[0].reason.as_deref(),
        Some("unusable next hop: our own address")
    );
}

#[test]
fn ipv6_next_hop_for_ipv4_needs_extended_next_hop() {
    let mut rib = v4_session();
    rib.update(0, &announce(None, &["10.255.0.1/32"]));
    flush(&mut rib);
    assert_eq!(
        reason(&rib, 0, "10.255.0.1/32"),
        Some(Err(FilterReason::ExtendedNextHopNotNegotiated))
    );
    // With RFC 8950 (the fabric's sessions) the same UPDATE is accepted.
    rib.update(1, &announce(None, &["10.255.0.1/32"]));
    flush(&mut rib);
    assert_eq!(reason(&rib, 1, "10.255.0.1/32"), Some(Ok(())));
}

#[test]
fn routes_of_a_family_not_negotiated_are_ignored() {
    let mut rib = v4_session();
    rib.update(0, &announce(None, &["fd00:255::1/128"]));
    rib.update(0, &withdraw(&["fd00:255::1/128"]));
    let out = flush(&mut rib);
    assert!(rib.adj_rib_in(0).is_empty(), "not even kept as filtered");
    assert_eq!(rib.counts(0).received, 0);
    assert!(got(&out, 1).announced.is_empty());
}

#[test]
fn missing_local_pref_is_counted() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let a = PathAttributes {
        local_pref: None,
        ..attrs(None)
    };
    rib.update(0, &announce_with(a.clone(), &["10.255.0.1/32"], 7));
    rib.update(0, &announce_with(a, &["10.255.0.2/32"], 7));
    rib.update(0, &announce(None, &["10.255.0.3/32"]));
    flush(&mut rib);
    assert_eq!(rib.counts(0).missing_local_pref, 2);
    assert_eq!(rib.counts(0).accepted, 3, "still used, with 100");
    rib.peer_down(0);
    assert_eq!(rib.counts(0).missing_local_pref, 0, "per session");
}

#[test]
fn enhanced_route_refresh_purges_what_was_not_announced_again() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let v4 = AfiSafi::IPV4_UNICAST;
    rib.update(
        0,
        &announce(None, &["10.255.0.1/32", "10.255.0.2/32", "10.255.0.3/32"]),
    );
    rib.update(0, &announce(None, &["fd00:255::1/128"]));
    flush(&mut rib);
    // EoRR without BoRR: nothing happens.
    assert_eq!(rib.end_refresh(0, v4), 0);
    rib.begin_refresh(0, v4);
    assert_eq!(rib.stale_count(0, v4), 3, "IPv6 routes are not stale");
    // Re-announced unchanged, re-announced with new attributes, withdrawn.
    rib.update(0, &announce(None, &["10.255.0.1/32"]));
    rib.update(0, &announce(Some(5), &["10.255.0.2/32"]));
    rib.update(0, &withdraw(&["10.255.0.3/32"]));
    assert_eq!(rib.stale_count(0, v4), 0);
    flush(&mut rib);
    rib.begin_refresh(0, v4);
    rib.update(0, &announce(None, &["10.255.0.1/32"]));
    assert_eq!(rib.end_refresh(0, v4), 1, "10.255.0.2/32 was not refreshed");
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, vec![net("10.255.0.2/32")]);
    let kept: Vec<IpNet> = rib.adj_rib_in(0).into_iter().map(|(p, _)| p).collect();
    assert_eq!(kept, vec![net("10.255.0.1/32"), net("fd00:255::1/128")]);
    // A family not negotiated: BoRR ignored.
    let mut v4only = v4_session();
    v4only.begin_refresh(0, AfiSafi::IPV6_UNICAST);
    assert_eq!(v4only.stale_count(0, AfiSafi::IPV6_UNICAST), 0);
    assert!(!v4only.family_negotiated(0, AfiSafi::IPV6_UNICAST));
}

#[test]
fn end_of_rib_is_recorded_per_family_and_session() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &Update::end_of_rib(AfiSafi::IPV6_UNICAST));
    assert_eq!(rib.end_of_rib_received(0), vec![AfiSafi::IPV6_UNICAST]);
    let c = rib.counts(0);
    assert!(c.end_of_rib_ipv6 && !c.end_of_rib_ipv4);
    rib.update(0, &Update::end_of_rib(AfiSafi::IPV4_UNICAST));
    assert_eq!(
        rib.end_of_rib_received(0),
        vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]
    );
    assert!(rib.end_of_rib_received(1).is_empty());
    rib.peer_down(0);
    assert!(rib.end_of_rib_received(0).is_empty());
}

#[test]
fn route_views_show_every_attribute() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let a = PathAttributes {
        atomic_aggregate: true,
        aggregator: Some(crate::wire::Aggregator {
            asn: 65010,
            address: Ipv4Addr::new(192, 0, 2, 9),
        }),
        communities: vec![(65000 << 16) | 7].into(),
        extended_communities: vec![[0, 2, 0xfd, 0xe8, 0, 0, 0, 1]].into(),
        large_communities: vec![[65000, 1, 2]].into(),
        unknown: vec![crate::wire::RawAttribute {
            flags: 0xc0,
            code: 99,
            value: bytes::Bytes::from_static(&[1, 2, 0xab]),
        }]
        .into(),
        ..attrs(None)
    };
    rib.update(0, &announce_with(a, &["10.255.0.1/32"], 7));
    flush(&mut rib);
    let v = &rib.routes(false, false)[0];
    assert!(v.atomic_aggregate);
    assert_eq!(v.aggregator.as_deref(), Some("65010 192.0.2.9"));
    assert_eq!(v.communities, ["65000:7"]);
    assert_eq!(v.extended_communities, ["0002fde800000001"]);
    assert_eq!(v.large_communities, ["65000:1:2"]);
    assert_eq!(
        v.unknown_attributes,
        [crate::ctl::UnknownAttributeView {
            code: 99,
            flags: 0xc0,
            value: "0102ab".into()
        }]
    );
}
