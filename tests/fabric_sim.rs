//! A sans-IO fabric: N `Rib`s wired in memory. Each node's UPDATEs are encoded,
//! decoded with `wire::Message::decode` and delivered to the neighbor's `Rib`
//! for that link, round after round until nothing moves. Checked against
//! Dijkstra over the link costs (each node's import adds the cost of the link
//! the route came in on), with loop, withdrawal, link-down and import-limit
//! scenarios.

#[path = "common/fabric.rs"]
mod fabric;

use fabric::{link_local, loopbacks_of, router_id, Fabric};
use ipnet::IpNet;
use kittbgpd::rib::FilterReason;
use kittbgpd::wire::{AfiSafi, AsPath, MpNextHop, MpReach, Origin, PathAttributes, Update};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

#[test]
fn ring_of_five_takes_the_cheaper_way_round() {
    // 0-1-2-3-4-0 with one expensive link (4-0) and an asymmetric one (1-2).
    let edges = [
        (0, 1, 10, 10),
        (1, 2, 10, 30),
        (2, 3, 10, 10),
        (3, 4, 10, 10),
        (4, 0, 100, 100),
    ];
    let mut f = Fabric::new(5, &edges);
    f.converge();
    f.check_shortest_paths(&all(5));
    // 4 reaches 0 the long way round (60) rather than over the 100 link.
    let e = f.nodes[4].rib.explain(loopbacks_of(0)[0]);
    let best = e.candidates.iter().find(|c| c.best).unwrap();
    assert_eq!(
        (best.peer.as_str(), best.med),
        ("n4", 60),
        "10 + 30 + 10 + 10"
    );
    let loser = e.candidates.iter().find(|c| !c.best).unwrap();
    assert_eq!(loser.lost.as_ref().unwrap().step, kittbgpd::rib::Step::Med);
}

#[test]
fn full_mesh_of_four_prefers_cheap_indirect_paths() {
    let edges = [
        (0, 1, 5, 5),
        (0, 2, 100, 100),
        (0, 3, 7, 7),
        (1, 2, 5, 5),
        (1, 3, 50, 50),
        (2, 3, 9, 9),
    ];
    let mut f = Fabric::new(4, &edges);
    f.converge();
    f.check_shortest_paths(&all(4));
    // 2 reaches 0 through 1 (5 + 5), not directly (100).
    let best = f.nodes[2].rib.routes(false, false);
    let r = best.iter().find(|r| r.prefix == "10.255.0.1/32").unwrap();
    assert_eq!((r.peer.as_str(), r.med), ("n2", Some(10)));
    assert!(r.best);
}

#[test]
fn line_of_six_reaches_both_ends() {
    let edges: Vec<_> = (0..5)
        .map(|i| (i, i + 1, 1 + i as u32, 2 + i as u32))
        .collect();
    let mut f = Fabric::new(6, &edges);
    f.converge();
    f.check_shortest_paths(&all(6));
    // Reflected along the line: ORIGINATOR_ID is the first hop's router id,
    // CLUSTER_LIST grows by one per reflecting node.
    let e = f.nodes[5].rib.explain(loopbacks_of(0)[1]);
    let best = &e.candidates[0];
    assert_eq!(best.originator_id, Some(router_id(0)));
    assert_eq!(
        best.cluster_list,
        (1..5).rev().map(router_id).collect::<Vec<_>>()
    );
    // Route refresh: nothing changes.
    assert_eq!(f.converge(), 0);
}

#[test]
fn own_routes_never_come_back_as_best_and_loops_are_filtered() {
    let edges = [(0, 1, 1, 1), (1, 2, 1, 1), (2, 0, 1, 1)];
    let mut f = Fabric::new(3, &edges);
    f.converge();
    f.check_shortest_paths(&all(3));
    for i in 0..3 {
        for prefix in loopbacks_of(i) {
            let e = f.nodes[i].rib.explain(prefix);
            assert_eq!(e.best.as_deref(), Some("self"));
            // What came back carries our ORIGINATOR_ID or cluster id: kept as filtered.
            for fl in &e.filtered {
                assert!(
                    matches!(
                        fl.reason,
                        FilterReason::OriginatorIsUs | FilterReason::ClusterLoop
                    ),
                    "{fl:?}"
                );
            }
        }
    }
}

#[test]
fn removing_a_loopback_withdraws_it_everywhere() {
    let edges = [
        (0, 1, 10, 10),
        (1, 2, 10, 10),
        (2, 3, 10, 10),
        (3, 4, 10, 10),
        (4, 0, 10, 10),
    ];
    let mut f = Fabric::new(5, &edges);
    f.converge();
    let [gone, kept] = loopbacks_of(0);
    f.nodes[0].rib.set_originated([kept].into());
    f.converge();
    for node in &f.nodes {
        let e = node.rib.explain(gone);
        assert!(e.best.is_none() && e.candidates.is_empty(), "{e:#?}");
        assert!(!node.fib.contains_key(&gone));
        assert!(node
            .rib
            .routes(true, true)
            .iter()
            .all(|r| r.prefix != gone.to_string()));
    }
    f.check_shortest_paths(&[1, 2, 3, 4]);
}

#[test]
fn link_down_reroutes_and_link_up_restores() {
    let edges = [
        (0, 1, 10, 10),
        (1, 2, 10, 10),
        (2, 3, 10, 10),
        (3, 4, 10, 10),
        (4, 0, 10, 10),
    ];
    let mut f = Fabric::new(5, &edges);
    f.converge();
    f.check_shortest_paths(&all(5));
    f.link_down(0, 1);
    f.converge();
    f.check_shortest_paths(&all(5));
    let e = f.nodes[1].rib.explain(loopbacks_of(0)[0]);
    assert_eq!(e.candidates.iter().find(|c| c.best).unwrap().med, 40);
    f.link_up(0, 1);
    f.converge();
    f.check_shortest_paths(&all(5));
    // Partition: 0 alone.
    f.link_down(0, 4);
    f.link_down(0, 1);
    f.converge();
    f.check_shortest_paths(&all(5));
}

/// interop/test_fabric5.sh's fabric (lib.sh `KB_FABRIC5_COSTS`): the ring
/// n1..n5 with the chord n1-n3; (a, b, cost at a, cost at b).
const FABRIC5: [(usize, usize, u32, u32); 6] = [
    (0, 1, 10, 10),
    (1, 2, 10, 12),
    (2, 3, 30, 30),
    (3, 4, 10, 10),
    (4, 0, 10, 10),
    (0, 2, 15, 15),
];

/// n1 stops (a Cease on every session). Before any UPDATE crosses, n3's
/// second best to n5 is via n2 (32), whose path goes through n1, and n2's
/// only one left is via n3: a loop n2 <-> n3 until they hear each other.
/// A path through a router whose session just went down loses to one that
/// is not (n3 goes via n4 a moment); once the window is over, Dijkstra.
#[test]
fn a_stopped_router_is_not_routed_through_before_the_news_spreads() {
    let mut f = Fabric::new(5, &FABRIC5);
    f.converge();
    f.check_shortest_paths(&all(5));
    for prefix in loopbacks_of(4) {
        assert_eq!(f.forwarding_path(2, prefix), Ok(vec![2, 0, 4]));
    }
    for x in [1, 2, 4] {
        f.link_down(0, x);
    }
    f.decide_all();
    for prefix in loopbacks_of(4) {
        for from in 1..4 {
            let path = f.forwarding_path(from, prefix);
            assert!(path.is_ok(), "n{} to {prefix}: loop {path:?}", from + 1);
        }
        assert_eq!(f.forwarding_path(2, prefix), Ok(vec![2, 3, 4]));
        let e = f.nodes[2].rib.explain(prefix);
        let via_n2 = e.candidates.iter().find(|c| c.peer == "n2").unwrap();
        assert_eq!(
            via_n2.lost.as_ref().unwrap().step,
            kittbgpd::rib::Step::LostRouter,
            "{e:#?}"
        );
    }
    f.converge();
    f.check_shortest_paths(&all(5));
}

#[test]
fn link_cost_change_moves_traffic() {
    let edges = [(0, 1, 10, 10), (1, 2, 10, 10), (0, 2, 15, 15)];
    let mut f = Fabric::new(3, &edges);
    f.converge();
    f.check_shortest_paths(&all(3));
    let p = f.nodes[2].peer_of[&0];
    f.nodes[2].rib.set_link_cost(p, Some(50));
    f.cost.insert((2, 0), 50);
    f.converge();
    f.check_shortest_paths(&all(3));
    assert_eq!(
        f.nodes[2].fib[&loopbacks_of(0)[0]].0,
        IpAddr::V6(link_local(1, 2))
    );
}

#[test]
fn import_limit_blocks_and_recovers_in_the_fabric() {
    // Line 0-1-2; node 2 accepts at most 3 routes from 1.
    let edges = [(0, 1, 1, 1), (1, 2, 1, 1)];
    let limits = HashMap::from([((2, 1), 3)]);
    let mut f = Fabric::with_limits(3, &edges, &limits);
    f.converge();
    let p = f.nodes[2].peer_of[&1];
    let c = f.nodes[2].rib.counts(p);
    assert_eq!((c.accepted, c.filtered), (3, 1));
    assert_eq!(f.nodes[2].limits.len(), 1, "reported once");
    let filtered = f.nodes[2].rib.routes(false, true);
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].reason.as_deref(), Some("import limit reached"));
    // Node 0 stops originating: room again; a new loopback is accepted.
    f.nodes[0].rib.set_originated(BTreeSet::new());
    f.converge();
    // The route held back by the limit is accepted now.
    let c = f.nodes[2].rib.counts(p);
    assert_eq!((c.accepted, c.filtered), (2, 0));
    assert!(loopbacks_of(1)
        .iter()
        .all(|l| f.nodes[2].fib.contains_key(l)));
    let new: IpNet = "10.255.0.99/32".parse().unwrap();
    f.nodes[0].rib.set_originated([new].into());
    f.converge();
    assert!(f.nodes[2].fib.contains_key(&new));
    assert_eq!(f.nodes[2].rib.counts(p).accepted, 3);
}

#[test]
fn filtered_routes_are_kept_and_not_propagated() {
    let edges = [(0, 1, 1, 1), (1, 2, 1, 1)];
    let mut f = Fabric::new(3, &edges);
    f.converge();
    // Node 0 misbehaves towards 1: a non-loopback and a covering prefix.
    let bogus: [IpNet; 2] = [
        "192.0.2.1/32".parse().unwrap(),
        "10.255.0.0/24".parse().unwrap(),
    ];
    let u = Update {
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            mp_reach: Some(Box::new(MpReach::new(
                AfiSafi::IPV4_UNICAST,
                MpNextHop::V6 {
                    global: Ipv6Addr::UNSPECIFIED,
                    link_local: Some(link_local(0, 1)),
                },
                bogus,
            ))),
            ..Default::default()
        },
        ..Default::default()
    };
    let p = f.nodes[1].peer_of[&0];
    f.nodes[1].rib.update(p, &u);
    f.converge();
    let filtered = f.nodes[1].rib.routes(false, true);
    assert_eq!(filtered.len(), 2);
    assert!(filtered
        .iter()
        .all(|r| r.status == "filtered" && r.peer == "n1"));
    for b in bogus {
        assert!(f.nodes[2].rib.explain(b).candidates.is_empty());
        assert!(f.nodes[2].rib.explain(b).filtered.is_empty());
    }
    f.check_shortest_paths(&all(3));
}

#[test]
fn bigger_ring_converges_with_packed_updates() {
    // 12 nodes, 20 extra loopbacks each: checks batching keeps message counts sane.
    let n = 12;
    let edges: Vec<_> = (0..n)
        .map(|i| (i, (i + 1) % n, 1 + (i as u32 % 3), 2))
        .collect();
    let mut f = Fabric::new(n, &edges);
    for i in 0..n {
        let mut set: BTreeSet<IpNet> = loopbacks_of(i).into();
        for k in 0..20 {
            set.insert(format!("10.255.{}.{}/32", i + 1, k + 1).parse().unwrap());
        }
        f.nodes[i].rib.set_originated(set);
    }
    f.converge();
    f.check_shortest_paths(&all(n));
    for node in &f.nodes {
        assert_eq!(node.rib.routes(false, false).len(), n * 22);
    }
    assert!(f.messages < 20_000, "{} messages", f.messages);
}

mod laws {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Any connected graph with any positive costs, after any link flaps
        /// and cost changes: every node ends on a shortest path, loop-free.
        #[test]
        fn converges_to_shortest_paths(
            n in 3usize..7,
            chords in proptest::collection::vec((0usize..7, 0usize..7), 0..5),
            costs in proptest::collection::vec(1u32..60, 24),
            flaps in proptest::collection::vec((0usize..12, any::<bool>(), 1u32..60), 0..4),
        ) {
            let mut edges: Vec<(usize, usize, u32, u32)> = Vec::new();
            let mut seen = BTreeSet::new();
            let mut k = 0;
            let mut cost = || { k += 1; costs[k % costs.len()] };
            for i in 0..n {
                let j = (i + 1) % n;
                seen.insert((i.min(j), i.max(j)));
                edges.push((i, j, cost(), cost()));
            }
            for (a, b) in chords {
                let (a, b) = (a % n, b % n);
                if a != b && seen.insert((a.min(b), a.max(b))) {
                    edges.push((a, b, cost(), cost()));
                }
            }
            let mut f = Fabric::new(n, &edges);
            f.converge();
            f.check_shortest_paths(&all(n));
            for (e, down, c) in flaps {
                let (a, b, _, _) = edges[e % edges.len()];
                if down {
                    f.link_down(a, b);
                } else {
                    let p = f.nodes[a].peer_of[&b];
                    f.nodes[a].rib.set_link_cost(p, Some(c));
                    f.cost.insert((a, b), c);
                }
                f.converge();
                f.check_shortest_paths(&all(n));
            }
        }
    }
}
