//! A sans-IO fabric: N `Rib`s wired in memory. Each node's UPDATEs are encoded,
//! decoded with `wire::Message::decode` and delivered to the neighbor's `Rib`
//! for that link, round after round until nothing moves. Checked against
//! Dijkstra over the link costs (each node's import adds the cost of the link
//! the route came in on), with loop, withdrawal, link-down and import-limit
//! scenarios.

use ipnet::IpNet;
use kittbgpd::config::{ImportLimitAction, Loopbacks};
use kittbgpd::rib::{
    split_messages, ExportContext, FilterReason, PeerConfig, PeerId, Rib, RibConfig, RibOutput,
};

/// Bytes pulled per peer per round: a few UPDATEs, so pulls interleave.
const CHUNK: usize = 512;
use kittbgpd::wire::{
    AfiSafi, AsPath, Message, MpNextHop, MpReach, Negotiated, Origin, PathAttributes, Update,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

fn neg() -> Negotiated {
    Negotiated::FABRIC
}

/// Node `i`'s (0-based) address on its link to `j`: fe80::(i+1):(j+1).
fn link_local(i: usize, j: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, i as u16 + 1, j as u16 + 1)
}

fn router_id(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i as u8 + 1)
}

fn loopbacks_of(i: usize) -> [IpNet; 2] {
    [
        format!("10.255.0.{}/32", i + 1).parse().unwrap(),
        format!("fd00:255::{}/128", i + 1).parse().unwrap(),
    ]
}

struct Node {
    rib: Rib,
    /// Peer id -> (neighbor node, our peer id at the neighbor).
    links: Vec<(usize, PeerId)>,
    peer_of: HashMap<usize, PeerId>,
    /// Kernel FIB as the BestChanged outputs describe it.
    fib: BTreeMap<IpNet, (IpAddr, PeerId)>,
    limits: Vec<RibOutput>,
}

struct Fabric {
    nodes: Vec<Node>,
    /// Cost at node i of its link to j.
    cost: HashMap<(usize, usize), u32>,
    up: BTreeSet<(usize, usize)>,
    messages: usize,
}

impl Fabric {
    /// `edges`: (a, b, cost at a, cost at b).
    fn new(n: usize, edges: &[(usize, usize, u32, u32)]) -> Fabric {
        Fabric::with_limits(n, edges, &HashMap::new())
    }

    fn with_limits(
        n: usize,
        edges: &[(usize, usize, u32, u32)],
        limits: &HashMap<(usize, usize), u32>,
    ) -> Fabric {
        let loopbacks = Loopbacks {
            ipv4: vec!["10.255.0.0/16".parse().unwrap()],
            ipv6: vec!["fd00:255::/48".parse().unwrap()],
            originate: Vec::new(),
            from_lo: false,
        };
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                rib: Rib::new(RibConfig {
                    router_id: router_id(i),
                    cluster_id: None,
                    local_as: 65000,
                    loopbacks: loopbacks.clone(),
                }),
                links: Vec::new(),
                peer_of: HashMap::new(),
                fib: BTreeMap::new(),
                limits: Vec::new(),
            })
            .collect();
        let mut cost = HashMap::new();
        for &(a, b, ca, cb) in edges {
            cost.insert((a, b), ca);
            cost.insert((b, a), cb);
            for (x, y, c) in [(a, b, ca), (b, a, cb)] {
                let id = nodes[x].rib.add_peer(PeerConfig {
                    name: format!("n{}", y + 1),
                    address: IpAddr::V6(link_local(y, x)),
                    interface: Some(format!("wg{}", y + 1)),
                    rr_client: true,
                    cost: Some(c),
                    import_limit: limits.get(&(x, y)).copied().unwrap_or(1000),
                    import_limit_action: ImportLimitAction::Block,
                    filtered_limit: 1000,
                    multihop: false,
                });
                nodes[x].peer_of.insert(y, id);
                nodes[x].links.push((y, usize::MAX));
            }
        }
        for x in 0..n {
            for k in 0..nodes[x].links.len() {
                let y = nodes[x].links[k].0;
                nodes[x].links[k].1 = nodes[y].peer_of[&x];
            }
        }
        let mut f = Fabric {
            nodes,
            cost,
            up: BTreeSet::new(),
            messages: 0,
        };
        for i in 0..n {
            f.nodes[i].rib.set_originated(loopbacks_of(i).into());
        }
        for &(a, b, _, _) in edges {
            f.link_up(a, b);
        }
        f
    }

    fn link_up(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let local = SocketAddr::new(IpAddr::V6(link_local(x, y)), 1790);
            let id = self.nodes[x].peer_of[&y];
            self.nodes[x]
                .rib
                .peer_up(id, ExportContext::new(neg(), Some(local)), router_id(y));
            self.up.insert((x, y));
        }
    }

    fn link_down(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let id = self.nodes[x].peer_of[&y];
            self.nodes[x].rib.peer_down(id);
            self.up.remove(&(x, y));
        }
    }

    /// Flush every node, then pull at most one small chunk per peer and
    /// deliver it (as a connection that takes little at a time would), until
    /// a whole round sends nothing.
    fn converge(&mut self) -> usize {
        for round in 0..100_000 {
            let mut sent = false;
            for i in 0..self.nodes.len() {
                for out in self.nodes[i].rib.flush() {
                    match out {
                        RibOutput::BestChanged { prefix, best } => match best {
                            Some(b) => {
                                self.nodes[i].fib.insert(prefix, b);
                            }
                            None => {
                                self.nodes[i].fib.remove(&prefix);
                            }
                        },
                        o @ RibOutput::LimitReached { .. } => self.nodes[i].limits.push(o),
                        o @ RibOutput::Send { .. } => panic!("flush sends nothing: {o:?}"),
                    }
                }
                for peer in 0..self.nodes[i].links.len() {
                    let Some(chunk) = self.nodes[i].rib.poll_transmit(peer, CHUNK) else {
                        continue;
                    };
                    sent = true;
                    let (j, at_j) = self.nodes[i].links[peer];
                    for m in split_messages(chunk) {
                        self.messages += 1;
                        match Message::decode(m, &neg()) {
                            Ok(Message::Update(u)) => {
                                self.nodes[j].rib.update(at_j, &u);
                            }
                            Ok(Message::RouteRefresh(_)) => {}
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
            }
            if !sent {
                return round;
            }
        }
        panic!("fabric did not converge");
    }

    /// Shortest distance from every node to `origin`: a route crossing link
    /// u -> v gets the cost configured at v.
    fn dijkstra(&self, origin: usize) -> Vec<Option<u64>> {
        let n = self.nodes.len();
        let mut dist: Vec<Option<u64>> = vec![None; n];
        let mut done = vec![false; n];
        dist[origin] = Some(0);
        loop {
            let u = (0..n)
                .filter(|&u| !done[u] && dist[u].is_some())
                .min_by_key(|&u| dist[u]);
            let Some(u) = u else { break };
            done[u] = true;
            for &(u2, v) in &self.up {
                if u2 != u {
                    continue;
                }
                let d = dist[u].unwrap() + u64::from(self.cost[&(v, u)]);
                if dist[v].is_none_or(|x| d < x) {
                    dist[v] = Some(d);
                }
            }
        }
        dist
    }

    /// Every node reaches every loopback at the Dijkstra distance, through a
    /// neighbor on a shortest path; FIB agrees; forwarding has no loops.
    fn check_shortest_paths(&self, originating: &[usize]) {
        let n = self.nodes.len();
        for &o in originating {
            let dist = self.dijkstra(o);
            for prefix in loopbacks_of(o) {
                for i in 0..n {
                    let node = &self.nodes[i];
                    let e = node.rib.explain(prefix);
                    if i == o {
                        assert_eq!(e.best.as_deref(), Some("self"), "n{} own {prefix}", i + 1);
                        assert!(!node.fib.contains_key(&prefix));
                        continue;
                    }
                    let Some(d) = dist[i] else {
                        assert!(e.best.is_none(), "n{} unreachable {prefix}", i + 1);
                        assert!(!node.fib.contains_key(&prefix));
                        continue;
                    };
                    let best = e
                        .candidates
                        .iter()
                        .find(|c| c.best)
                        .unwrap_or_else(|| panic!("n{} has no route to {prefix}", i + 1));
                    assert_eq!(u64::from(best.med), d, "n{} MED to {prefix}: {e:#?}", i + 1);
                    let via: usize = best.peer[1..].parse::<usize>().unwrap() - 1;
                    assert_eq!(
                        dist[via].unwrap() + u64::from(self.cost[&(i, via)]),
                        d,
                        "n{} goes via n{} for {prefix}",
                        i + 1,
                        via + 1
                    );
                    let (nh, peer) = node.fib[&prefix];
                    assert_eq!(nh, IpAddr::V6(link_local(via, i)));
                    assert_eq!(node.links[peer].0, via);
                    // Follow the FIB hop by hop to the origin.
                    let mut at = i;
                    let mut hops = 0;
                    while at != o {
                        let (_, p) = self.nodes[at].fib[&prefix];
                        at = self.nodes[at].links[p].0;
                        hops += 1;
                        assert!(hops <= n, "forwarding loop for {prefix} from n{}", i + 1);
                    }
                }
            }
        }
    }
}

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
            mp_reach: Some(MpReach::new(
                AfiSafi::IPV4_UNICAST,
                MpNextHop::V6 {
                    global: Ipv6Addr::UNSPECIFIED,
                    link_local: Some(link_local(0, 1)),
                },
                bogus,
            )),
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
