//! Issue 12: the overlay on multihop sessions, next hops resolved over the
//! underlay, the interior cost step, the FIB via the underlay route.

use super::*;
use crate::wire::Update;

const NH: &str = "10.255.0.7";
const ANYCAST: &str = "10.100.1.0/24";

fn overlay() -> Overlay {
    Overlay {
        ipv4: vec!["10.100.0.0/16".parse().unwrap()],
        ipv6: vec!["fd00:100::/32".parse().unwrap()],
        ..Overlay::default()
    }
}

/// p1 (cost 10), p2 (cost 20): links; p3 (non-client) and p4 (client):
/// multihop sessions. Our loopback 10.255.0.1 is originated.
fn overlay_rib() -> Rib {
    let mut rib = Rib::new(RibConfig {
        router_id: ME,
        cluster_id: None,
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    rib.set_overlay(overlay());
    for (i, cost) in [(1, Some(10)), (2, Some(20))] {
        let id = rib.add_peer(peer_cfg(i, cost));
        up(&mut rib, id);
    }
    for (i, client) in [(3u16, false), (4, true)] {
        let id = rib.add_peer(PeerConfig {
            address: format!("10.255.0.{}", 40 + i).parse().unwrap(),
            interface: None,
            rr_client: client,
            cost: None,
            multihop: true,
            ..peer_cfg(i, None)
        });
        let local = "[fd00:255::1]:1790".parse().unwrap();
        let remote_id = Ipv4Addr::new(10, 0, 0, 10 + i as u8);
        rib.peer_up(id, ExportContext::new(neg(), Some(local)), remote_id);
    }
    rib.set_originated([net("10.255.0.1/32")].into());
    flush(&mut rib);
    rib
}

fn overlay_route(nh: &str, med: Option<u32>, prefixes: &[&str]) -> Update {
    Update::announce_v4(
        attrs(med),
        nh.parse().unwrap(),
        prefixes.iter().map(|p| p.parse().unwrap()),
    )
}

fn fib(out: &[RibOutput], prefix: &str) -> Option<Option<(IpAddr, PeerId)>> {
    out.iter().find_map(|o| match o {
        RibOutput::BestChanged { prefix: p, best } if *p == net(prefix) => Some(*best),
        _ => None,
    })
}

fn link(p: u16) -> IpAddr {
    IpAddr::V6(ll(p))
}

#[test]
fn next_hop_resolves_over_the_underlay_and_follows_it() {
    let mut rib = overlay_rib();
    rib.watch_address(NH.parse().unwrap());
    assert_eq!(rib.take_address_changes(), [(NH.parse().unwrap(), false)]);
    // Unresolvable: kept, shown with the reason, no candidate, not installed.
    rib.update(2, &overlay_route(NH, Some(3), &[ANYCAST]));
    let out = flush(&mut rib);
    assert_eq!(fib(&out, ANYCAST), None, "nothing installed");
    assert!(got(&out, 3).announced.is_empty(), "nothing reflected");
    let e = rib.explain(net(ANYCAST));
    assert!(e.best.is_none() && e.candidates.is_empty(), "{e:#?}");
    assert_eq!(e.filtered[0].reason, FilterReason::UnresolvedNextHop);
    let shown = rib.routes(false, true);
    assert_eq!(
        (shown[0].status.as_str(), shown[0].reason.as_deref()),
        (
            "unresolved",
            Some("next hop unresolvable: no underlay route to it")
        )
    );
    assert_eq!(rib.dependents(NH.parse().unwrap()), 1);
    // The underlay learns the loopback: resolved in the same flush, installed
    // via the underlay route's gateway, reflected to the client with the next
    // hop and MED unchanged.
    rib.update(0, &announce_with(attrs(Some(5)), &["10.255.0.7/32"], 1));
    let out = flush(&mut rib);
    assert_eq!(fib(&out, "10.255.0.7/32"), Some(Some((link(1), 0))));
    assert_eq!(fib(&out, ANYCAST), Some(Some((link(1), 0))));
    assert_eq!(rib.take_address_changes(), [(NH.parse().unwrap(), true)]);
    let sent = got(&out, 3);
    let (p, a) = &sent.announced[0];
    assert_eq!(*p, net(ANYCAST));
    assert_eq!(a.next_hop, Some(NH.parse().unwrap()), "next hop unchanged");
    assert_eq!(a.med, Some(3), "MED unchanged: no link cost on the overlay");
    assert_eq!(a.originator_id, Some(Ipv4Addr::new(10, 0, 0, 13)));
    assert_eq!(a.cluster_list, [ME]);
    for link_peer in [0, 1] {
        assert!(
            got(&out, link_peer)
                .announced
                .iter()
                .all(|(p, _)| *p != net(ANYCAST)),
            "never on a link session"
        );
    }
    let e = rib.explain(net(ANYCAST));
    let best = &e.candidates[0];
    assert_eq!(best.interior_cost, Some(15), "5 + link cost 10");
    assert_eq!(best.med, 3);
    assert_eq!(best.resolved_via.as_deref(), Some("p1 fe80::1:1"));
    // The underlay moves (cost change): the overlay route moves with it in the
    // same flush, and nothing is sent on the multihop sessions.
    rib.update(1, &announce_with(attrs(Some(0)), &["10.255.0.7/32"], 2));
    flush(&mut rib);
    rib.set_link_cost(0, Some(30));
    let out = flush(&mut rib);
    assert_eq!(fib(&out, ANYCAST), Some(Some((link(2), 1))));
    assert!(got(&out, 2).messages.is_empty() && got(&out, 3).messages.is_empty());
    assert_eq!(
        rib.explain(net(ANYCAST)).candidates[0].interior_cost,
        Some(20)
    );
    assert!(rib.take_address_changes().is_empty(), "still reachable");
    // The underlay loses it: unresolvable, uninstalled, withdrawn.
    rib.update(0, &withdraw(&["10.255.0.7/32"]));
    rib.update(1, &withdraw(&["10.255.0.7/32"]));
    let out = flush(&mut rib);
    assert_eq!(fib(&out, ANYCAST), Some(None));
    assert_eq!(got(&out, 3).withdrawn, [net(ANYCAST)]);
    assert_eq!(rib.take_address_changes(), [(NH.parse().unwrap(), false)]);
}

#[test]
fn each_session_kind_refuses_the_other_kind() {
    let mut rib = overlay_rib();
    rib.update(0, &announce(None, &[ANYCAST]));
    rib.update(2, &overlay_route(NH, None, &["10.255.0.9/32"]));
    flush(&mut rib);
    let f = rib.explain(net(ANYCAST)).filtered;
    assert_eq!(f[0].reason, FilterReason::OverlayOnLinkSession);
    let f = rib.explain(net("10.255.0.9/32")).filtered;
    assert_eq!(f[0].reason, FilterReason::LoopbackOnMultihopSession);
}

#[test]
fn interior_cost_picks_the_nearest_exit() {
    let mut rib = overlay_rib();
    // Two exits of one anycast prefix: 10.255.0.7 behind p1, 10.255.0.8 behind p2.
    rib.update(0, &announce_with(attrs(Some(5)), &["10.255.0.7/32"], 1));
    rib.update(1, &announce_with(attrs(Some(1)), &["10.255.0.8/32"], 2));
    rib.update(2, &overlay_route("10.255.0.7", None, &[ANYCAST]));
    rib.update(3, &overlay_route("10.255.0.8", None, &[ANYCAST]));
    let out = flush(&mut rib);
    // 15 against 21: the exit behind p1.
    assert_eq!(fib(&out, ANYCAST), Some(Some((link(1), 0))));
    let e = rib.explain(net(ANYCAST));
    assert_eq!(e.best.as_deref(), Some("p3"));
    let loser = e.candidates.iter().find(|c| !c.best).unwrap();
    assert_eq!(loser.lost.as_ref().unwrap().step, Step::InteriorCost);
    assert_eq!(loser.interior_cost, Some(21));
    // The client's route wins when the other exit gets nearer; reflected to p3.
    rib.set_link_cost(0, Some(100));
    let out = flush(&mut rib);
    assert_eq!(fib(&out, ANYCAST), Some(Some((link(2), 1))));
    let to_p3 = got(&out, 2);
    assert_eq!(
        to_p3.announced[0].1.next_hop,
        Some("10.255.0.8".parse().unwrap())
    );
    // p4 held p3's route; its own never goes back to it: withdrawn.
    assert_eq!(got(&out, 3).withdrawn, [net(ANYCAST)]);
    assert!(got(&out, 3).announced.is_empty());
}

#[test]
fn our_overlay_prefixes_go_to_multihop_sessions_with_our_loopback() {
    let mut rib = overlay_rib();
    rib.set_overlay_originated([net(ANYCAST), net("192.0.2.0/24")].into());
    assert_eq!(
        rib.overlay_originated().len(),
        1,
        "outside the ranges: ignored"
    );
    let out = flush(&mut rib);
    for mh in [2, 3] {
        let g = got(&out, mh);
        assert_eq!(g.announced.len(), 1);
        assert_eq!(
            g.announced[0].1.next_hop,
            Some("10.255.0.1".parse().unwrap())
        );
        assert!(g.announced[0].1.cluster_list.is_empty());
    }
    assert!(got(&out, 0).announced.is_empty() && got(&out, 1).announced.is_empty());
    assert_eq!(fib(&out, ANYCAST), None, "local: not installed");
    // A new lowest loopback becomes the next hop.
    rib.set_originated([net("10.255.0.1/32"), net("10.255.0.0/32")].into());
    let out = flush(&mut rib);
    let g = got(&out, 2);
    let (_, a) = g
        .announced
        .iter()
        .find(|(p, _)| *p == net(ANYCAST))
        .unwrap();
    assert_eq!(a.next_hop, Some("10.255.0.0".parse().unwrap()));
    rib.set_overlay_originated(BTreeSet::new());
    let out = flush(&mut rib);
    assert_eq!(got(&out, 2).withdrawn, [net(ANYCAST)]);
}

#[test]
fn own_loopback_next_hop_is_local_and_not_installed() {
    let mut rib = overlay_rib();
    rib.watch_address("10.255.0.1".parse().unwrap());
    assert_eq!(
        rib.take_address_changes(),
        [("10.255.0.1".parse().unwrap(), true)],
        "our own loopback is reachable"
    );
    assert_eq!(
        rib.resolve("10.255.0.1".parse().unwrap()),
        Resolution::Local
    );
    assert_eq!(
        rib.resolve("10.100.0.1".parse().unwrap()),
        Resolution::Unresolved
    );
    rib.update(2, &overlay_route("10.255.0.1", None, &["10.100.2.0/24"]));
    let out = flush(&mut rib);
    assert_eq!(
        rib.explain(net("10.100.2.0/24")).best.as_deref(),
        Some("p3")
    );
    assert_eq!(fib(&out, "10.100.2.0/24"), None, "the exit is this node");
}

/// The resolution itself is compared, not what the underlay route is
/// advertised with: above the advertised MED cap (2^31-1) two costs send the
/// same UPDATE, yet the nearer exit must still win.
#[test]
fn exits_are_compared_by_cost_even_above_the_advertised_med_cap() {
    let mut rib = overlay_rib();
    let far = 3_000_000_000;
    rib.set_link_cost(0, Some(far));
    rib.set_link_cost(1, Some(far + 10));
    rib.update(0, &announce_with(attrs(Some(5)), &["10.255.0.7/32"], 1));
    rib.update(1, &announce_with(attrs(Some(5)), &["10.255.0.8/32"], 2));
    rib.update(2, &overlay_route("10.255.0.7", None, &[ANYCAST]));
    rib.update(3, &overlay_route("10.255.0.8", None, &[ANYCAST]));
    let out = flush(&mut rib);
    assert_eq!(fib(&out, ANYCAST), Some(Some((link(1), 0))));
    rib.set_link_cost(0, Some(far + 20));
    let out = flush(&mut rib);
    assert_eq!(fib(&out, ANYCAST), Some(Some((link(2), 1))), "{out:?}");
}

#[test]
fn overlay_reloaded_live_takes_effect_without_a_link_session() {
    // Phase one: no overlay; a multihop session's overlay route is refused.
    let mut rib = overlay_rib();
    rib.set_overlay(Overlay::default());
    rib.update(2, &overlay_route(NH, None, &[ANYCAST]));
    flush(&mut rib);
    let f = rib.explain(net(ANYCAST)).filtered;
    assert_eq!(f[0].reason, FilterReason::OutsideOverlayRanges);
    // The reload adding [overlay]: our own prefix goes out at once, and what
    // the (restarted) multihop session sends again is taken.
    rib.set_overlay(overlay());
    rib.set_overlay_originated([net("10.100.2.0/24")].into());
    rib.update(2, &overlay_route(NH, None, &[ANYCAST]));
    let out = flush(&mut rib);
    assert_eq!(
        got(&out, 2).announced.len(),
        1,
        "ours on the multihop sessions"
    );
    assert!(got(&out, 0).announced.is_empty(), "never on a link session");
    let f = rib.explain(net(ANYCAST)).filtered;
    assert!(
        f.iter()
            .all(|f| f.reason != FilterReason::OutsideOverlayRanges),
        "{f:?}"
    );
    // A reload narrowing the ranges withdraws what we originate outside them.
    rib.set_overlay(Overlay {
        ipv4: vec!["10.200.0.0/16".parse().unwrap()],
        ..Overlay::default()
    });
    assert!(rib.overlay_originated().is_empty());
    let out = flush(&mut rib);
    assert_eq!(got(&out, 2).withdrawn, [net("10.100.2.0/24")]);
}

/// A reflector with ADD-PATH send towards a multihop client (RFC 7911):
/// every resolvable exit of an overlay prefix goes out with its own path id
/// and its next hop unchanged; an exit whose next hop stops resolving is
/// withdrawn by its path id; the link sessions get none of it.
#[test]
fn add_path_sends_every_resolvable_exit_with_its_next_hop() {
    use super::addpath::{ap_neg, got_paths};
    let mut rib = overlay_rib();
    let p5 = rib.add_peer(PeerConfig {
        address: "10.255.0.45".parse().unwrap(),
        interface: None,
        rr_client: true,
        cost: None,
        multihop: true,
        ..peer_cfg(5, None)
    });
    let local = "[fd00:255::1]:1790".parse().unwrap();
    rib.peer_up(
        p5,
        ExportContext::new(ap_neg(false, true), Some(local)),
        Ipv4Addr::new(10, 0, 0, 15),
    );
    flush(&mut rib);
    rib.update(0, &announce_with(attrs(Some(5)), &["10.255.0.7/32"], 1));
    rib.update(1, &announce_with(attrs(Some(1)), &["10.255.0.8/32"], 2));
    rib.update(2, &overlay_route("10.255.0.7", None, &[ANYCAST]));
    rib.update(3, &overlay_route("10.255.0.8", None, &[ANYCAST]));
    let out = flush(&mut rib);
    let g = got_paths(&out, p5);
    let mut exits: Vec<(u32, Option<Ipv4Addr>)> = g
        .announced
        .iter()
        .filter(|(_, p, _)| *p == net(ANYCAST))
        .map(|(id, _, a)| (*id, a.next_hop))
        .collect();
    exits.sort_by_key(|e| e.1);
    assert_eq!(exits.len(), 2, "{g:?}");
    assert_ne!(exits[0].0, exits[1].0, "one path id per exit");
    assert_eq!(
        exits.iter().map(|e| e.1).collect::<Vec<_>>(),
        [
            Some("10.255.0.7".parse().unwrap()),
            Some("10.255.0.8".parse().unwrap())
        ]
    );
    assert!(got(&out, 0)
        .announced
        .iter()
        .all(|(p, _)| *p != net(ANYCAST)));
    // The underlay loses 10.255.0.8: that exit no longer resolves.
    rib.update(1, &withdraw(&["10.255.0.8/32"]));
    let out = flush(&mut rib);
    let g = got_paths(&out, p5);
    assert_eq!(g.withdrawn, [(exits[1].0, net(ANYCAST))], "{g:?}");
    assert!(g.announced.iter().all(|(_, p, _)| *p != net(ANYCAST)));
}
