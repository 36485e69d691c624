//! Issue 12 in memory: a ring of routers with link costs (the underlay, link
//! sessions carrying loopbacks), two route reflectors with multihop sessions
//! to every router (the overlay), an anycast overlay prefix originated by two
//! routers. Every node's choice of exit is checked against Dijkstra over the
//! link costs, its kernel route against its own underlay path to that exit.
//!
//! Without ADD-PATH a reflector reflects only its own best path, chosen by
//! ITS distance; a client then chooses, by its own distance, among the exits
//! its reflectors chose. With ADD-PATH on the reflectors (RFC 7911, send on
//! the reflector, receive on the client) every client sees every exit and
//! picks the nearest overall. Both are checked.

#[path = "common/fabric.rs"]
mod fabric;

use fabric::{link_local, loopback_v4, Fabric};
use ipnet::IpNet;
use kittbgpd::config::Overlay;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

const ROUTERS: usize = 6;
const RR: [usize; 2] = [6, 7];
const EXITS: [usize; 2] = [1, 4];

fn anycast() -> IpNet {
    "10.100.0.0/24".parse().unwrap()
}

fn overlay(cluster_id: Option<Ipv4Addr>) -> Overlay {
    Overlay {
        ipv4: vec!["10.100.0.0/16".parse().unwrap()],
        ipv6: vec!["fd00:100::/32".parse().unwrap()],
        cluster_id,
        ..Overlay::default()
    }
}

/// Ring 0..5 with uneven costs; reflector 6 hangs off 3 and 5, reflector 7
/// off 4 and 5: both are nearer exit 4 than exit 1, while 0, 2 and 3 are
/// nearer exit 1 (what only ADD-PATH lets them choose). Both reflectors in one cluster (`shared_cluster`) or each
/// its own; reflectors send every path if `add_path`.
fn fabric(shared_cluster: bool, add_path: bool) -> Fabric {
    let edges = [
        (0, 1, 10, 10),
        (1, 2, 12, 12),
        (2, 3, 7, 7),
        (3, 4, 30, 30),
        (4, 5, 9, 9),
        (5, 0, 15, 15),
        (6, 3, 5, 5),
        (6, 5, 6, 6),
        (7, 4, 8, 8),
        (7, 5, 4, 4),
    ];
    let mut f = Fabric::new(ROUTERS + 2, &edges);
    f.add_path = add_path;
    f.set_overlay(&overlay(None));
    if shared_cluster {
        for rr in RR {
            f.nodes[rr]
                .rib
                .set_overlay(overlay(Some(Ipv4Addr::new(10, 254, 0, 1))));
        }
    }
    for r in 0..ROUTERS {
        for rr in RR {
            f.add_multihop(r, rr, true, false);
        }
    }
    for e in EXITS {
        f.nodes[e].rib.set_overlay_originated([anycast()].into());
    }
    f.converge_all();
    f
}

/// The exit node of `i`'s best path for the anycast prefix (itself if local).
fn exit_of(f: &Fabric, i: usize) -> Option<usize> {
    let e = f.nodes[i].rib.explain(anycast());
    let best = e.candidates.iter().find(|c| c.best)?;
    if best.peer == "self" {
        return Some(i);
    }
    let nh = best.next_hop.expect("a next hop");
    (0..f.nodes.len()).find(|&k| loopback_v4(k) == nh)
}

/// Distance from `i` to `k` over the links up (Dijkstra).
fn dist(f: &Fabric, i: usize, k: usize) -> u64 {
    f.dijkstra(k)[i].expect("connected")
}

/// Checks every node against Dijkstra: its exit is the nearest among the
/// exits it can know of (all with ADD-PATH or on a reflector, else its
/// reflectors' choices), its interior cost is the distance to it, and its
/// kernel route goes to the first hop of a shortest path to it. The
/// underlay (loopbacks on the links) still equals Dijkstra.
fn check(f: &Fabric, exits: &[usize], add_path: bool) {
    f.check_shortest_paths(&(0..f.nodes.len()).collect::<Vec<_>>());
    for i in 0..f.nodes.len() {
        let node = &f.nodes[i];
        if exits.contains(&i) {
            assert_eq!(exit_of(f, i), Some(i), "n{} originates", i + 1);
            assert!(!node.fib.contains_key(&anycast()), "local: not installed");
            continue;
        }
        let up = |a: usize, b: usize| f.mh_up.contains(&(a, b));
        let known: BTreeSet<usize> = if RR.contains(&i) {
            exits.iter().copied().filter(|&e| up(i, e)).collect()
        } else if add_path {
            let via_rr = |e: usize| RR.iter().any(|&rr| up(i, rr) && up(rr, e));
            exits.iter().copied().filter(|&e| via_rr(e)).collect()
        } else {
            RR.iter()
                .filter(|rr| f.mh_up.contains(&(i, **rr)))
                .filter_map(|rr| exit_of(f, *rr))
                .collect()
        };
        let Some(exit) = exit_of(f, i) else {
            assert!(known.is_empty(), "n{} has no route: {known:?}", i + 1);
            continue;
        };
        let nearest = known.iter().map(|&k| dist(f, i, k)).min().unwrap();
        assert_eq!(
            dist(f, i, exit),
            nearest,
            "n{} exits at n{} among {known:?}",
            i + 1,
            exit + 1
        );
        let e = node.rib.explain(anycast());
        let best = e.candidates.iter().find(|c| c.best).unwrap();
        assert_eq!(
            best.interior_cost.map(u64::from),
            Some(nearest),
            "n{}",
            i + 1
        );
        // The kernel route follows this node's own underlay path to the exit.
        let (gw, peer) = node.fib[&anycast()];
        let via = node.links[peer].0;
        assert_eq!(gw, link_local(via, i));
        assert_eq!(
            u64::from(f.cost[&(i, via)]) + if via == exit { 0 } else { dist(f, via, exit) },
            dist(f, i, exit),
            "n{} forwards to n{} towards n{}",
            i + 1,
            via + 1,
            exit + 1
        );
    }
}

fn exits_now(f: &Fabric) -> Vec<Option<usize>> {
    (0..f.nodes.len()).map(|i| exit_of(f, i)).collect()
}

fn scenario(shared_cluster: bool, add_path: bool) {
    let mut f = fabric(shared_cluster, add_path);
    assert_eq!(
        f.mh_up.len(),
        2 * ROUTERS * RR.len(),
        "every multihop session up"
    );
    check(&f, &EXITS, add_path);
    // Overlay prefixes never travel on links, loopbacks never on multihop sessions.
    for node in &f.nodes {
        for r in node.rib.routes(true, true) {
            if r.peer != "self" {
                let overlay = r.prefix.starts_with("10.100.");
                assert_eq!(overlay, r.peer.starts_with('m'), "{r:?}");
                assert!(
                    r.status == "accepted"
                        || r.reason.as_deref().is_some_and(|w| w.contains("RFC 4456")),
                    "{r:?}"
                );
            }
        }
    }
    // A cost change moves choices: exit 4's links get expensive.
    let before = exits_now(&f);
    for (a, b) in [(3, 4), (4, 5), (4, 7)] {
        for (x, y) in [(a, b), (b, a)] {
            let p = f.nodes[x].peer_of[&y];
            f.nodes[x].rib.set_link_cost(p, Some(200));
            f.cost.insert((x, y), 200);
        }
    }
    f.converge_all();
    check(&f, &EXITS, add_path);
    assert_ne!(exits_now(&f), before, "some choice moved");
    // Withdrawing one instance moves everyone to the other.
    f.nodes[1].rib.set_overlay_originated(BTreeSet::new());
    f.converge_all();
    check(&f, &[4], add_path);
    for i in 0..f.nodes.len() {
        assert_eq!(exit_of(&f, i), Some(4), "n{}", i + 1);
    }
    f.nodes[1].rib.set_overlay_originated([anycast()].into());
    f.converge_all();
    check(&f, &EXITS, add_path);
    // A reflector cut off from the underlay: its sessions go down (its
    // loopback is unreachable), nothing is lost, the other holds.
    for via in [3, 5] {
        f.link_down(6, via);
    }
    f.converge_all();
    assert!(f.mh_up.iter().all(|(x, y)| *x != 6 && *y != 6));
    check(&f, &EXITS, add_path);
    for i in 0..ROUTERS {
        assert!(exit_of(&f, i).is_some(), "n{} lost the route", i + 1);
    }
    // Its return: sessions up again, choices as before it left.
    let without = exits_now(&f);
    for via in [3, 5] {
        f.link_up(6, via);
    }
    f.converge_all();
    assert_eq!(f.mh_up.len(), 2 * ROUTERS * RR.len());
    check(&f, &EXITS, add_path);
    let routers = |e: Vec<Option<usize>>| e[..ROUTERS].to_vec();
    assert_eq!(
        routers(exits_now(&f)),
        routers(without),
        "a reflector's return changes no router's choice"
    );
}

/// Without ADD-PATH: each client chooses among its reflectors' choices.
#[test]
fn two_reflectors_in_two_clusters() {
    scenario(false, false);
}

#[test]
fn two_reflectors_in_one_cluster() {
    scenario(true, false);
}

/// Every router picks its nearest exit whatever its reflectors chose: the
/// reflectors send every path (ADD-PATH).
#[test]
fn every_router_picks_its_nearest_exit_with_add_path() {
    scenario(false, true);
    scenario(true, true);
}

/// An underlay change that keeps every exit moves kernel routes without a
/// single message on the multihop sessions.
#[test]
fn underlay_moves_without_overlay_messages() {
    let mut f = fabric(false, false);
    let exits = exits_now(&f);
    // n6 (index 5) exits at n5 (index 4) over their link (9); via the
    // reflector n8 it is 4 + 8 = 12. The link costing 13 moves its path,
    // not its exit, nor any reflector's choice.
    assert_eq!(exits[5], Some(4));
    let via = |f: &Fabric| f.nodes[5].links[f.nodes[5].fib[&anycast()].1].0;
    assert_eq!(via(&f), 4);
    let p = f.nodes[5].peer_of[&4];
    f.nodes[5].rib.set_link_cost(p, Some(13));
    f.cost.insert((5, 4), 13);
    let before = f.mh_messages;
    f.converge_all();
    assert_eq!(exits_now(&f), exits);
    check(&f, &EXITS, false);
    assert_eq!(via(&f), 7, "via n8 now");
    assert_eq!(
        f.mh_messages, before,
        "no overlay message for an underlay change"
    );
}

/// 1000 overlay prefixes over two next hops: one underlay change re-resolves
/// all of them in the same flush (the index next hop -> prefixes), moving
/// every kernel route and sending nothing on the overlay. The time is printed,
/// not asserted.
#[test]
fn a_thousand_overlay_prefixes_follow_one_underlay_change() {
    let mut f = fabric(false, false);
    let many: BTreeSet<IpNet> = (0..1000u32)
        .map(|k| {
            format!("10.100.{}.{}/32", 1 + k / 250, k % 250)
                .parse()
                .unwrap()
        })
        .collect();
    for e in EXITS {
        f.nodes[e].rib.set_overlay_originated(many.clone());
    }
    f.converge_all();
    let via = |f: &Fabric, p: &IpNet| f.nodes[5].links[f.nodes[5].fib[p].1].0;
    assert!(many.iter().all(|p| via(&f, p) == 4));
    assert_eq!(f.nodes[5].rib.dependents(loopback_v4(4)), 1000);
    let p = f.nodes[5].peer_of[&4];
    f.nodes[5].rib.set_link_cost(p, Some(13));
    f.cost.insert((5, 4), 13);
    let before = f.mh_messages;
    let t = std::time::Instant::now();
    let mut out = f.nodes[5].rib.flush();
    out.extend(f.nodes[5].rib.fib_all());
    let took = t.elapsed();
    let moved = out
        .iter()
        .filter(|o| {
            matches!(o, kittbgpd::rib::RibOutput::BestChanged { prefix, best: Some((_, p)) }
            if many.contains(prefix) && f.nodes[5].links[*p].0 == 7)
        })
        .count();
    assert_eq!(
        moved, 1000,
        "every overlay route moved in the flush of the change"
    );
    eprintln!("one underlay change: 1000 overlay prefixes re-resolved in {took:?} (debug build)");
    for o in out {
        if let kittbgpd::rib::RibOutput::BestChanged {
            prefix,
            best: Some(b),
        } = o
        {
            f.nodes[5].fib.insert(prefix, b);
        }
    }
    f.converge_all();
    assert!(many.iter().all(|p| via(&f, p) == 7));
    assert_eq!(f.mh_messages, before, "nothing sent on the overlay");
}
