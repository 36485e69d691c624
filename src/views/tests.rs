//! Views in memory: nodes with the default `Rib` and a `Views` each, wired
//! over encoded sessions; each view's choice is checked against Dijkstra
//! on that view's metric, and forwarding is followed hop by hop (no loop).

use super::*;
use crate::config::{ImportLimitAction, Loopbacks};
use crate::rib::split_messages;
use crate::wire::Message;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};

const ALL: Families = Families {
    ipv4_unicast: true,
    ipv6_unicast: true,
};

fn neg() -> Negotiated {
    Negotiated {
        views: ALL,
        ..Negotiated::FABRIC
    }
}

fn views_config() -> Vec<View> {
    let v = |name: &str, id, metric| View {
        name: name.into(),
        id,
        table: 100 + u32::from(id),
        metric,
        rules: Vec::new(),
    };
    vec![v("fast", 1, Metric::Latency), v("hops", 2, Metric::Hops)]
}

fn link_local(i: usize, j: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, i as u16 + 1, j as u16 + 1)
}

fn loopbacks_of(i: usize) -> [IpNet; 2] {
    [
        format!("10.255.0.{}/32", i + 1).parse().unwrap(),
        format!("fd00:255::{}/128", i + 1).parse().unwrap(),
    ]
}

struct Node {
    default: Rib,
    views: Views,
    /// Peer id -> (neighbor, our peer id there).
    links: Vec<(usize, PeerId)>,
    peer_of: HashMap<usize, PeerId>,
    /// Per table (0: default, 1 + view index): prefix -> peer of the best route.
    fib: Vec<BTreeMap<IpNet, PeerId>>,
}

struct Net {
    nodes: Vec<Node>,
    /// Default cost at node x of its link to y.
    cost: HashMap<(usize, usize), u32>,
    up: BTreeSet<(usize, usize)>,
    /// The simulated clock: links fail at this time; `converge` moves it
    /// on to the tables' deadlines (the end of a lost router's window).
    now: Instant,
}

impl Net {
    fn new(n: usize, edges: &[(usize, usize, u32)]) -> Net {
        let cfg = |i: usize| RibConfig {
            router_id: Ipv4Addr::new(10, 0, 0, i as u8 + 1),
            cluster_id: None,
            local_as: 65000,
            loopbacks: Loopbacks {
                ipv4: vec!["10.255.0.0/16".parse().unwrap()],
                ipv6: vec!["fd00:255::/48".parse().unwrap()],
                originate: Vec::new(),
                from_lo: false,
            },
        };
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| {
                let mut default = Rib::new(cfg(i));
                let mut views = Views::new(&views_config(), &cfg(i));
                default.set_fib_outputs(true);
                views.set_fib_outputs(true);
                Node {
                    default,
                    views,
                    links: Vec::new(),
                    peer_of: HashMap::new(),
                    fib: vec![BTreeMap::new(); 3],
                }
            })
            .collect();
        let mut cost = HashMap::new();
        for &(a, b, c) in edges {
            for (x, y) in [(a, b), (b, a)] {
                cost.insert((x, y), c);
                let pc = PeerConfig {
                    name: format!("n{y}"),
                    address: IpAddr::V6(link_local(y, x)),
                    interface: Some(format!("wg{y}")),
                    rr_client: true,
                    cost: Some(c),
                    import_limit: 0,
                    import_limit_action: ImportLimitAction::Block,
                    filtered_limit: 1000,
                    multihop: false,
                };
                let id = nodes[x].default.add_peer(pc.clone());
                assert_eq!(nodes[x].views.add_peer(&pc, &BTreeMap::new()), id);
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
        let mut net = Net {
            nodes,
            cost,
            up: BTreeSet::new(),
            now: Instant::now(),
        };
        for i in 0..n {
            let own: BTreeSet<IpNet> = loopbacks_of(i).into();
            net.nodes[i].default.set_originated(own.clone());
            net.nodes[i].views.set_originated(&own);
        }
        for &(a, b, _) in edges {
            net.link_up(a, b);
        }
        net
    }

    fn link_up(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let local = SocketAddr::new(IpAddr::V6(link_local(x, y)), 1790);
            let id = self.nodes[x].peer_of[&y];
            let rid = Ipv4Addr::new(10, 0, 0, y as u8 + 1);
            let node = &mut self.nodes[x];
            node.default
                .peer_up(id, ExportContext::new(neg(), Some(local)), rid);
            node.views.peer_up(id, &neg(), Some(local), rid);
            self.up.insert((x, y));
        }
    }

    fn link_down(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let id = self.nodes[x].peer_of[&y];
            self.nodes[x].default.peer_down_at(id, self.now);
            self.nodes[x].views.peer_down_at(id, self.now);
            self.up.remove(&(x, y));
        }
    }

    /// The link x -> y measures `c` (both ends see the same).
    fn set_cost(&mut self, a: usize, b: usize, c: u32) {
        for (x, y) in [(a, b), (b, a)] {
            self.cost.insert((x, y), c);
            let id = self.nodes[x].peer_of[&y];
            self.nodes[x].default.set_link_cost(id, Some(c));
            let m = LinkMeasure {
                cost: Some(c),
                ..LinkMeasure::default()
            };
            self.nodes[x].views.set_link_measure(id, m);
        }
    }

    /// Until quiet, then the clock moves on to each deadline of the tables
    /// (the end of a lost router's window), until none is left.
    fn converge(&mut self) {
        self.drive();
        while let Some(t) = self
            .nodes
            .iter()
            .flat_map(|n| {
                [
                    n.default.lost_router_timeout(),
                    n.views.lost_router_timeout(),
                ]
            })
            .flatten()
            .min()
        {
            self.now = self.now.max(t);
            for node in &mut self.nodes {
                node.default.expire_lost_routers(self.now);
                node.views.expire_lost_routers(self.now);
            }
            self.drive();
        }
    }

    fn drive(&mut self) {
        let n = self.nodes.len();
        let mut queue: VecDeque<usize> = (0..n).collect();
        let mut queued = vec![true; n];
        let mut visits = 0;
        while let Some(i) = queue.pop_front() {
            queued[i] = false;
            visits += 1;
            assert!(visits < 10_000, "did not converge");
            self.decide(i);
            let mut more = false;
            for peer in 0..self.nodes[i].links.len() {
                let node = &mut self.nodes[i];
                let mut chunks = Vec::new();
                chunks.extend(node.default.poll_transmit(peer, 512));
                chunks.extend(node.views.poll_transmit(peer, 512));
                more |= node.default.wants_transmit(peer) || node.views.wants_transmit(peer);
                let (j, at_j) = node.links[peer];
                if chunks.is_empty() {
                    continue;
                }
                for chunk in chunks {
                    for m in split_messages(chunk) {
                        let Ok(Message::Update(u)) = Message::decode(m, &neg()) else {
                            panic!("not an UPDATE");
                        };
                        let to = &mut self.nodes[j];
                        if let Some(d) = to.views.update(at_j, &u) {
                            to.default.update(at_j, &d);
                        }
                    }
                }
                if !queued[j] {
                    queued[j] = true;
                    queue.push_back(j);
                }
            }
            if more && !queued[i] {
                queued[i] = true;
                queue.push_back(i);
            }
        }
    }

    /// Node `i` decides (every table) and its kernel tables follow.
    fn decide(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut outs: Vec<(usize, RibOutput)> =
            node.default.flush().into_iter().map(|o| (0, o)).collect();
        outs.extend(node.default.fib_all().into_iter().map(|o| (0, o)));
        outs.extend(node.views.flush().into_iter().map(|(v, o)| (v + 1, o)));
        // The views' kernel routes as the RIB task pulls them: each view's
        // `Rib` by its kernel table (views_config: 101 fast, 102 hops).
        for (table, rib) in node.views.fib_ribs() {
            let mut batch = Vec::new();
            rib.poll_fib(usize::MAX, &mut batch);
            let t = (table - 100) as usize;
            outs.extend(batch.into_iter().map(|b| {
                let (prefix, best) = (b.prefix, b.best);
                (t, RibOutput::BestChanged { prefix, best })
            }));
        }
        for (table, o) in outs {
            if let RibOutput::BestChanged { prefix, best } = o {
                match best {
                    Some((_, peer)) => node.fib[table].insert(prefix, peer),
                    None => node.fib[table].remove(&prefix),
                };
            }
        }
    }

    /// Link cost at x of its link to y in `table` (0 default, 1 fast, 2 hops).
    fn table_cost(&self, table: usize, x: usize, y: usize) -> u64 {
        match table {
            0 | 1 => u64::from(self.cost[&(x, y)]),
            _ => 1,
        }
    }

    fn dijkstra(&self, table: usize, origin: usize) -> Vec<Option<u64>> {
        let n = self.nodes.len();
        let mut dist = vec![None; n];
        dist[origin] = Some(0);
        let mut heap = BinaryHeap::from([Reverse((0u64, origin))]);
        while let Some(Reverse((d, u))) = heap.pop() {
            if dist[u].is_some_and(|x| x < d) {
                continue;
            }
            for &(a, v) in &self.up {
                if a != u {
                    continue;
                }
                let d = d + self.table_cost(table, v, u);
                if dist[v].is_none_or(|x| d < x) {
                    dist[v] = Some(d);
                    heap.push(Reverse((d, v)));
                }
            }
        }
        dist
    }

    fn rib(&self, i: usize, table: usize) -> &Rib {
        match table {
            0 => &self.nodes[i].default,
            t => &self.nodes[i].views.tables()[t - 1].rib,
        }
    }

    /// The neighbor node i's `table` forwards `prefix` to.
    fn via(&self, table: usize, i: usize, prefix: &IpNet) -> Option<usize> {
        let peer = *self.nodes[i].fib[table].get(prefix)?;
        Some(self.nodes[i].links[peer].0)
    }

    /// Every node's choice in every table is a shortest path under that
    /// table's metric; forwarding reaches the origin without a loop.
    fn check(&self) {
        let n = self.nodes.len();
        for table in 0..3 {
            for o in 0..n {
                let dist = self.dijkstra(table, o);
                for prefix in loopbacks_of(o) {
                    for i in (0..n).filter(|&i| i != o) {
                        let e = self.rib(i, table).explain(prefix);
                        let Some(d) = dist[i] else {
                            assert!(e.best.is_none(), "table {table} n{i} {prefix}");
                            continue;
                        };
                        let best = e.candidates.iter().find(|c| c.best).unwrap_or_else(|| {
                            panic!("table {table}: n{i} has no route to {prefix}")
                        });
                        assert_eq!(u64::from(best.med), d, "table {table} n{i} {prefix}");
                        let via = self.via(table, i, &prefix).expect("in the FIB");
                        assert_eq!(
                            dist[via].unwrap() + self.table_cost(table, i, via),
                            d,
                            "table {table}: n{i} goes via n{via} to {prefix}"
                        );
                        let (mut at, mut hops) = (i, 0);
                        while at != o {
                            at = self.via(table, at, &prefix).expect("a route on the way");
                            hops += 1;
                            assert!(hops <= n, "table {table}: loop for {prefix} from n{i}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn latency_and_hops_views_choose_different_next_hops() {
    // n0 - n1 - n2 cheap (10 each), n0 - n2 direct but slow (100), n3 behind n2.
    let mut net = Net::new(4, &[(0, 1, 10), (1, 2, 10), (0, 2, 100), (2, 3, 5)]);
    net.converge();
    net.check();
    let p = loopbacks_of(2)[0];
    assert_eq!(net.via(0, 0, &p), Some(1), "default: lowest latency");
    assert_eq!(
        net.via(1, 0, &p),
        Some(1),
        "latency view: via n1 (20 < 100)"
    );
    assert_eq!(net.via(2, 0, &p), Some(2), "hops view: direct (1 < 2)");
    let p3 = loopbacks_of(3)[1];
    assert_eq!(net.via(1, 0, &p3), Some(1));
    assert_eq!(net.via(2, 0, &p3), Some(2));
    // The view's MED: received MED + this link's cost under the view's metric.
    let e = net.nodes[0].views.by_name("hops").unwrap().rib.explain(p3);
    let best = e.candidates.iter().find(|c| c.best).unwrap();
    assert_eq!(best.med, 2);
    // A latency change moves the latency view only.
    net.set_cost(0, 2, 15);
    net.converge();
    net.check();
    assert_eq!(net.via(1, 0, &p), Some(2), "latency view moved");
    assert_eq!(net.via(2, 0, &p), Some(2), "hops view unchanged");
    // A dead link moves both.
    net.link_down(0, 2);
    net.converge();
    net.check();
    assert_eq!(net.via(1, 0, &p), Some(1));
    assert_eq!(net.via(2, 0, &p), Some(1));
}

#[test]
fn a_view_exports_only_what_its_kernel_table_holds() {
    // Line n0 - n1 - n2: n0 reaches n2 only through n1.
    let mut net = Net::new(3, &[(0, 1, 10), (1, 2, 10)]);
    net.converge();
    net.check();
    let p = loopbacks_of(2)[0];
    // n1's kernel refused n2's loopback in table 101 (view fast) only.
    let fast = net.nodes[1].views.fib_ribs().find(|(t, _)| *t == 101);
    fast.unwrap().1.set_forwarding(p, false);
    net.converge();
    assert_eq!(net.via(1, 0, &p), None, "fast: n1 holds it back");
    assert_eq!(net.via(2, 0, &p), Some(1), "hops: still through n1");
    assert_eq!(net.via(0, 0, &p), Some(1), "default: still through n1");
    let fast = net.nodes[1].views.fib_ribs().find(|(t, _)| *t == 101);
    fast.unwrap().1.set_forwarding(p, true);
    net.converge();
    net.check();
    assert_eq!(net.via(1, 0, &p), Some(1), "fast: exported again");
}

#[test]
fn no_views_negotiated_no_view_routes() {
    // A session without the view families (a BIRD neighbor): its default
    // table works, the views know nothing through it.
    let mut net = Net::new(2, &[(0, 1, 10)]);
    let id = net.nodes[0].peer_of[&1];
    net.nodes[0].views.peer_down(id);
    let local = SocketAddr::new(IpAddr::V6(link_local(0, 1)), 1790);
    let rid = Ipv4Addr::new(10, 0, 0, 2);
    net.nodes[0]
        .views
        .peer_up(id, &Negotiated::FABRIC, Some(local), rid);
    net.converge();
    let p = loopbacks_of(1)[0];
    assert_eq!(net.via(0, 0, &p), Some(1));
    assert!(net.via(1, 0, &p).is_none() && net.via(2, 0, &p).is_none());
    // n1 sent its view routes (it negotiated them), n0 ignored them: the view
    // tables at n0 hold no session with n1.
    assert!(net.nodes[0].views.tables()[0]
        .rib
        .explain(p)
        .candidates
        .is_empty());
}

/// A small deterministic generator (xorshift), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn random_graphs_match_dijkstra_per_view_after_changes() {
    for seed in 1..=4u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let n = 6 + rng.next(3) as usize;
        // A ring (connected) plus chords, random costs.
        let mut edges: Vec<(usize, usize, u32)> = (0..n)
            .map(|i| (i, (i + 1) % n, 1 + rng.next(100) as u32))
            .collect();
        for _ in 0..n {
            let (a, b) = (rng.next(n as u64) as usize, rng.next(n as u64) as usize);
            if a != b
                && !edges
                    .iter()
                    .any(|&(x, y, _)| (x, y) == (a, b) || (x, y) == (b, a))
            {
                edges.push((a, b, 1 + rng.next(100) as u32));
            }
        }
        let mut net = Net::new(n, &edges);
        net.converge();
        net.check();
        for _ in 0..6 {
            let (a, b, _) = edges[rng.next(edges.len() as u64) as usize];
            match rng.next(3) {
                0 if net.up.contains(&(a, b)) => net.link_down(a, b),
                0 => net.link_up(a, b),
                _ => net.set_cost(a, b, 1 + rng.next(200) as u32),
            }
            net.converge();
            net.check();
        }
    }
}

/// interop/test_fabric5.sh's ring and chord (n3-n2 costs 12 both ways): n1
/// stops. Before any UPDATE crosses, no table loops n2 <-> n3 (n3's path via
/// n2 runs through n1: avoided for a moment in every table); after the
/// window, Dijkstra per view.
#[test]
fn a_stopped_router_is_avoided_in_every_view_table() {
    let edges = [
        (0, 1, 10),
        (1, 2, 12),
        (2, 3, 30),
        (3, 4, 10),
        (4, 0, 10),
        (0, 2, 15),
    ];
    let mut net = Net::new(5, &edges);
    net.converge();
    net.check();
    for x in [1, 2, 4] {
        net.link_down(0, x);
    }
    for i in 1..5 {
        net.decide(i);
        let lost = Ipv4Addr::new(10, 0, 0, 1);
        for table in 1..3 {
            if i != 3 {
                assert_eq!(net.rib(i, table).lost_routers(), vec![lost], "n{i}");
            }
        }
    }
    assert!(net.nodes[2].views.lost_router_timeout().is_some());
    for table in 0..3 {
        for prefix in loopbacks_of(4) {
            for from in 1..4 {
                let (mut at, mut hops) = (from, 0);
                while let Some(next) = net.via(table, at, &prefix) {
                    at = next;
                    hops += 1;
                    assert!(hops <= 5, "table {table}: loop for {prefix} from n{from}");
                }
            }
            assert_eq!(net.via(table, 2, &prefix), Some(3), "table {table}");
        }
    }
    net.converge();
    net.check();
    assert!(net.nodes[2].views.lost_router_timeout().is_none());
}

#[test]
fn graceful_restart_keeps_view_routes_only_for_the_view_families() {
    let mut net = Net::new(2, &[(0, 1, 10)]);
    net.converge();
    let p = loopbacks_of(1)[0];
    let id = net.nodes[0].peer_of[&1];
    let has = |net: &Net| {
        !net.nodes[0].views.tables()[1]
            .rib
            .explain(p)
            .candidates
            .is_empty()
    };
    assert!(has(&net));
    let until = Instant::now() + std::time::Duration::from_secs(60);
    let unicast = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST];
    let all = [
        AfiSafi::IPV4_UNICAST,
        AfiSafi::IPV6_UNICAST,
        crate::wire::view_nlri::IPV4_VIEW,
        crate::wire::view_nlri::IPV6_VIEW,
    ];
    // The view families in the GR capability: the view's routes stay, stale.
    net.nodes[0].views.peer_down_graceful(id, &all, until);
    net.converge();
    assert!(has(&net), "kept while the peer restarts");
    // Back without preserving the view families: purged.
    net.nodes[0].views.graceful_session_up(id, &unicast, until);
    net.converge();
    assert!(!has(&net), "not preserved: gone");
    // Without the view families in the capability, a drop removes them at once.
    let mut net = Net::new(2, &[(0, 1, 10)]);
    net.converge();
    net.nodes[0].views.peer_down_graceful(id, &unicast, until);
    net.converge();
    assert!(!has(&net));
}

#[test]
fn one_end_of_rib_per_view_family_after_every_view_table() {
    let mut net = Net::new(2, &[(0, 1, 10)]);
    let views = &mut net.nodes[0].views;
    views.flush();
    let mut kinds = Vec::new();
    while let Some(chunk) = views.poll_transmit(0, 512) {
        for m in split_messages(chunk) {
            let Ok(Message::Update(u)) = Message::decode(m, &neg()) else {
                panic!("not an UPDATE");
            };
            kinds.push(match u.is_end_of_rib() {
                Some(f) => format!("eor {f}"),
                None => "routes".to_string(),
            });
        }
    }
    let eors: Vec<&String> = kinds.iter().filter(|k| k.starts_with("eor")).collect();
    assert_eq!(eors, ["eor afi1/safi241", "eor afi2/safi241"], "{kinds:?}");
    // Both views' routes (2 views x 2 families) before the first End-of-RIB.
    let first = kinds.iter().position(|k| k.starts_with("eor")).unwrap();
    assert_eq!(kinds[..first].len(), 4, "{kinds:?}");
    assert!(
        kinds[first..].iter().all(|k| k.starts_with("eor")),
        "{kinds:?}"
    );
}
