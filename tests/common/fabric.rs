//! The in-memory fabric shared by the simulations (fabric_sim.rs,
//! overlay_sim.rs, scale_sim.rs) and the scale benchmark
//! (benches/fabric_scale.rs): N `Rib`s wired in memory. Each node's UPDATEs
//! are encoded, decoded with `wire::Message::decode` and delivered to the
//! neighbor's `Rib` for that session, event-driven (a node is visited when it
//! received something or still has output) until nothing moves; Dijkstra
//! over the link costs is the reference. Link sessions (the underlay) and
//! multihop sessions over loopbacks (the overlay, to and from route
//! reflectors). [`CURRENT_NODE`] names the node whose `Rib` runs, so a
//! counting allocator can attribute memory per node.

#![allow(dead_code)] // each simulation uses its own part

use ipnet::IpNet;
use kittbgpd::config::{ImportLimitAction, Loopbacks, Overlay};
use kittbgpd::rib::{split_messages, ExportContext, PeerConfig, PeerId, Rib, RibConfig, RibOutput};
use kittbgpd::wire::{Families, Message, Negotiated};
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

/// Bytes pulled per peer per visit by default: a few UPDATEs, so pulls interleave.
pub const CHUNK: usize = 512;

/// No node: the harness itself runs.
pub const NO_NODE: usize = usize::MAX;

thread_local! {
    /// The node whose `Rib` is running now ([`NO_NODE`]: the harness).
    pub static CURRENT_NODE: Cell<usize> = const { Cell::new(NO_NODE) };
}

/// Marks `node` as running (for per-node memory accounting).
fn enter(node: usize) {
    CURRENT_NODE.set(node);
}

pub fn neg() -> Negotiated {
    Negotiated::FABRIC
}

/// Both families.
const ALL: Families = Families {
    ipv4_unicast: true,
    ipv6_unicast: true,
};

/// Node `i`'s (0-based) address on its link to `j`: fe80::(i+1):(j+1).
pub fn link_local(i: usize, j: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, i as u16 + 1, j as u16 + 1)
}

/// 10.0.0.(i+1) for the first 254 nodes; 10.0.x.y beyond.
pub fn router_id(i: usize) -> Ipv4Addr {
    let [_, _, x, y] = (i as u32 + 1).to_be_bytes();
    Ipv4Addr::new(10, 0, x, y)
}

/// 10.255.0.(i+1)/32 (10.255.x.y beyond 254 nodes) and fd00:255::(i+1)/128.
pub fn loopbacks_of(i: usize) -> [IpNet; 2] {
    let [_, _, x, y] = (i as u32 + 1).to_be_bytes();
    [
        format!("10.255.{x}.{y}/32").parse().unwrap(),
        format!("fd00:255::{}/128", i + 1).parse().unwrap(),
    ]
}

pub struct Node {
    pub rib: Rib,
    /// Peer id -> (neighbor node, our peer id at the neighbor).
    pub links: Vec<(usize, PeerId)>,
    pub peer_of: HashMap<usize, PeerId>,
    /// Kernel FIB as the BestChanged outputs describe it.
    pub fib: BTreeMap<IpNet, (IpAddr, PeerId)>,
    pub limits: Vec<RibOutput>,
    /// Multihop peers: neighbor node -> our peer id.
    pub mh_peer_of: HashMap<usize, PeerId>,
    /// Per peer id: what its session negotiated (decoding what it sends us).
    pub negotiated: Vec<Negotiated>,
}

pub struct Fabric {
    pub nodes: Vec<Node>,
    /// Cost at node i of its link to j.
    pub cost: HashMap<(usize, usize), u32>,
    pub up: BTreeSet<(usize, usize)>,
    pub messages: usize,
    /// Bytes of UPDATEs delivered.
    pub bytes: usize,
    /// Bytes pulled per peer per visit ([`CHUNK`] unless set).
    pub chunk: usize,
    /// Multihop sessions established, both directions.
    pub mh_up: BTreeSet<(usize, usize)>,
    /// Messages delivered on multihop sessions.
    pub mh_messages: usize,
    /// (x, y): y is x's route reflection client on their multihop session.
    pub mh_client: BTreeSet<(usize, usize)>,
    /// Reflectors send every path to their clients (RFC 7911 ADD-PATH, send
    /// on the reflector, receive on the client), as negotiated when a
    /// multihop session comes up.
    pub add_path: bool,
    /// The simulated clock: link failures happen at this time, and
    /// [`Fabric::converge`] moves it on to the RIBs' deadlines.
    pub now: Instant,
}

impl Fabric {
    /// `edges`: (a, b, cost at a, cost at b).
    pub fn new(n: usize, edges: &[(usize, usize, u32, u32)]) -> Fabric {
        Fabric::with_limits(n, edges, &HashMap::new())
    }

    pub fn with_limits(
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
                rib: {
                    enter(i);
                    let rib = Rib::new(RibConfig {
                        router_id: router_id(i),
                        cluster_id: None,
                        local_as: 65000,
                        loopbacks: loopbacks.clone(),
                    });
                    enter(NO_NODE);
                    rib
                },
                links: Vec::new(),
                peer_of: HashMap::new(),
                fib: BTreeMap::new(),
                limits: Vec::new(),
                mh_peer_of: HashMap::new(),
                negotiated: Vec::new(),
            })
            .collect();
        let mut cost = HashMap::new();
        for &(a, b, ca, cb) in edges {
            cost.insert((a, b), ca);
            cost.insert((b, a), cb);
            for (x, y, c) in [(a, b, ca), (b, a, cb)] {
                enter(x);
                let id = nodes[x].rib.add_peer(PeerConfig {
                    name: format!("n{}", y + 1),
                    address: IpAddr::V6(link_local(y, x)),
                    interface: Some(format!("wg{}", y + 1)),
                    rr_client: true,
                    cost: Some(c),
                    import_limit: limits.get(&(x, y)).copied().unwrap_or(0),
                    import_limit_action: ImportLimitAction::Block,
                    filtered_limit: 1000,
                    multihop: false,
                });
                enter(NO_NODE);
                nodes[x].peer_of.insert(y, id);
                nodes[x].links.push((y, usize::MAX));
                nodes[x].negotiated.push(neg());
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
            bytes: 0,
            chunk: CHUNK,
            mh_up: BTreeSet::new(),
            mh_messages: 0,
            mh_client: BTreeSet::new(),
            add_path: false,
            now: Instant::now(),
        };
        for i in 0..n {
            enter(i);
            f.nodes[i].rib.set_originated(loopbacks_of(i).into());
        }
        enter(NO_NODE);
        for &(a, b, _, _) in edges {
            f.link_up(a, b);
        }
        f
    }

    pub fn link_up(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let local = SocketAddr::new(IpAddr::V6(link_local(x, y)), 1790);
            let id = self.nodes[x].peer_of[&y];
            enter(x);
            self.nodes[x]
                .rib
                .peer_up(id, ExportContext::new(neg(), Some(local)), router_id(y));
            enter(NO_NODE);
            self.up.insert((x, y));
        }
    }

    pub fn link_down(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let id = self.nodes[x].peer_of[&y];
            enter(x);
            // As the runtime does: a lost session, no graceful restart.
            self.nodes[x].rib.peer_down_at(id, self.now);
            enter(NO_NODE);
            self.up.remove(&(x, y));
        }
    }

    /// Drives the fabric until quiet ([`Fabric::drive`]), then moves the
    /// clock to each RIB deadline (the end of a lost router's window:
    /// `Rib::lost_router_timeout`), expires it and drives again, until no
    /// deadline is left. Returns the messages delivered (0: nothing moved).
    pub fn converge(&mut self) -> usize {
        let mut messages = self.drive();
        while let Some(t) = self
            .nodes
            .iter()
            .filter_map(|n| n.rib.lost_router_timeout())
            .min()
        {
            self.now = self.now.max(t);
            for (i, n) in self.nodes.iter_mut().enumerate() {
                enter(i);
                n.rib.expire_lost_routers(self.now);
            }
            enter(NO_NODE);
            messages += self.drive();
        }
        messages
    }

    /// Every node decides what it has learned (its kernel routes follow)
    /// and nothing is delivered: the moment after a failure when each node
    /// has seen only its own sessions go down.
    pub fn decide_all(&mut self) {
        for i in 0..self.nodes.len() {
            enter(i);
            let mut outputs = self.nodes[i].rib.flush();
            outputs.extend(self.nodes[i].rib.fib_all());
            enter(NO_NODE);
            self.take_outputs(i, outputs);
        }
    }

    /// The path of packets from `from` to `prefix` over the kernel routes:
    /// the nodes visited, `Err` with them on a loop.
    pub fn forwarding_path(&self, from: usize, prefix: IpNet) -> Result<Vec<usize>, Vec<usize>> {
        let mut path = vec![from];
        let mut at = from;
        while let Some((_, p)) = self.nodes[at].fib.get(&prefix) {
            at = self.nodes[at].links[*p].0;
            if path.contains(&at) {
                path.push(at);
                return Err(path);
            }
            path.push(at);
        }
        Ok(path)
    }

    fn take_outputs(&mut self, i: usize, outputs: Vec<RibOutput>) {
        for out in outputs {
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
    }

    /// Drives the fabric until quiet, the clock standing still: every node
    /// is visited once, then a node again whenever it received something or
    /// still has output. A visit flushes the node and pulls at most `chunk`
    /// bytes per peer (as a connection that takes that much at a time
    /// would), each chunk copied into the receiver's buffer, decoded and
    /// given to its `Rib`. Returns the messages delivered.
    pub fn drive(&mut self) -> usize {
        let before = self.messages;
        let n = self.nodes.len();
        let mut queue: VecDeque<usize> = (0..n).collect();
        let mut queued = vec![true; n];
        let mut visits = 0usize;
        while let Some(i) = queue.pop_front() {
            queued[i] = false;
            visits += 1;
            assert!(visits < 1000 * n.max(100), "fabric did not converge");
            enter(i);
            let mut outputs = self.nodes[i].rib.flush();
            outputs.extend(self.nodes[i].rib.fib_all());
            enter(NO_NODE);
            self.take_outputs(i, outputs);
            let mut more = false;
            for peer in 0..self.nodes[i].links.len() {
                enter(i);
                let chunk = self.nodes[i].rib.poll_transmit(peer, self.chunk);
                more |= self.nodes[i].rib.wants_transmit(peer);
                enter(NO_NODE);
                let Some(chunk) = chunk else {
                    continue;
                };
                let (j, at_j) = self.nodes[i].links[peer];
                let multihop = self.nodes[i].mh_peer_of.get(&j) == Some(&peer);
                self.bytes += chunk.len();
                enter(j);
                let received = bytes::Bytes::copy_from_slice(&chunk);
                for m in split_messages(received) {
                    self.messages += 1;
                    self.mh_messages += usize::from(multihop);
                    match Message::decode(m, &self.nodes[j].negotiated[at_j]) {
                        Ok(Message::Update(u)) => {
                            self.nodes[j].rib.update(at_j, &u);
                        }
                        Ok(Message::RouteRefresh(_)) => {}
                        other => panic!("unexpected {other:?}"),
                    }
                }
                enter(NO_NODE);
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
        self.messages - before
    }

    /// Shortest distance from every node to `origin`: a route crossing link
    /// u -> v gets the cost configured at v.
    pub fn dijkstra(&self, origin: usize) -> Vec<Option<u64>> {
        let n = self.nodes.len();
        let mut adjacent: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(u, v) in &self.up {
            adjacent[u].push(v);
        }
        let mut dist: Vec<Option<u64>> = vec![None; n];
        let mut heap = BinaryHeap::from([Reverse((0u64, origin))]);
        dist[origin] = Some(0);
        while let Some(Reverse((d, u))) = heap.pop() {
            if dist[u].is_some_and(|x| x < d) {
                continue;
            }
            for &v in &adjacent[u] {
                let d = d + u64::from(self.cost[&(v, u)]);
                if dist[v].is_none_or(|x| d < x) {
                    dist[v] = Some(d);
                    heap.push(Reverse((d, v)));
                }
            }
        }
        dist
    }

    /// [`Fabric::dijkstra`] from every node: `[origin][node]`.
    pub fn all_distances(&self) -> Vec<Vec<Option<u64>>> {
        (0..self.nodes.len()).map(|o| self.dijkstra(o)).collect()
    }

    /// Every node reaches every loopback at the Dijkstra distance, through a
    /// neighbor on a shortest path; FIB agrees; forwarding has no loops.
    pub fn check_shortest_paths(&self, originating: &[usize]) {
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

    /// `[overlay]` on every node.
    pub fn set_overlay(&mut self, overlay: &Overlay) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            enter(i);
            n.rib.set_overlay(overlay.clone());
        }
        enter(NO_NODE);
    }

    /// A multihop session between `a` and `b` over their IPv6 loopbacks
    /// (configured, not started); `a_client`: `a` is `b`'s route reflection
    /// client, and the other way round. Each end watches the other's address.
    pub fn add_multihop(&mut self, a: usize, b: usize, a_client: bool, b_client: bool) {
        for (x, y, y_client) in [(a, b, b_client), (b, a, a_client)] {
            enter(x);
            let id = self.nodes[x].rib.add_peer(PeerConfig {
                name: format!("m{}", y + 1),
                address: loopback_v6(y),
                interface: None,
                rr_client: y_client,
                cost: None,
                import_limit: 0,
                import_limit_action: ImportLimitAction::Block,
                filtered_limit: 1000,
                multihop: true,
            });
            self.nodes[x].mh_peer_of.insert(y, id);
            self.nodes[x].links.push((y, usize::MAX));
            self.nodes[x].negotiated.push(neg());
            if y_client {
                self.mh_client.insert((x, y));
            }
            self.nodes[x].rib.watch_address(loopback_v6(y));
            enter(NO_NODE);
        }
        let (ia, ib) = (self.nodes[a].mh_peer_of[&b], self.nodes[b].mh_peer_of[&a]);
        self.nodes[a].links[ia].1 = ib;
        self.nodes[b].links[ib].1 = ia;
    }

    fn multihop_session(&mut self, a: usize, b: usize, up: bool) {
        if self.mh_up.contains(&(a, b)) == up {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            let id = self.nodes[x].mh_peer_of[&y];
            let ap = |on: bool| {
                if on && self.add_path {
                    ALL
                } else {
                    Families::NONE
                }
            };
            let n = Negotiated {
                add_path_send: ap(self.mh_client.contains(&(x, y))),
                add_path_receive: ap(self.mh_client.contains(&(y, x))),
                ..neg()
            };
            self.nodes[x].negotiated[id] = n;
            enter(x);
            if up {
                let local = SocketAddr::new(loopback_v6(x), 1790);
                self.nodes[x]
                    .rib
                    .peer_up(id, ExportContext::new(n, Some(local)), router_id(y));
                self.mh_up.insert((x, y));
            } else {
                self.nodes[x].rib.peer_down(id);
                self.mh_up.remove(&(x, y));
            }
            enter(NO_NODE);
        }
    }

    /// Converges, starting each multihop session while both ends reach the
    /// other's loopback over the underlay and tearing it down when either
    /// loses it (as the runtime does with `Rib::take_address_changes`), until
    /// nothing moves.
    pub fn converge_all(&mut self) {
        let owner: HashMap<IpAddr, usize> =
            (0..self.nodes.len()).map(|y| (loopback_v6(y), y)).collect();
        let mut reach: BTreeMap<(usize, usize), bool> = BTreeMap::new();
        for _ in 0..100 {
            self.converge();
            let mut changed = false;
            for x in 0..self.nodes.len() {
                for (addr, ok) in self.nodes[x].rib.take_address_changes() {
                    let y = owner[&addr];
                    reach.insert((x, y), ok);
                    changed = true;
                }
            }
            if !changed {
                return;
            }
            let pairs: Vec<(usize, usize)> = reach.keys().copied().filter(|(x, y)| x < y).collect();
            for (x, y) in pairs {
                let up = reach.get(&(x, y)) == Some(&true) && reach.get(&(y, x)) == Some(&true);
                self.multihop_session(x, y, up);
            }
        }
        panic!("multihop sessions did not settle");
    }
}

/// Node `i`'s IPv6 loopback, where its multihop sessions run.
pub fn loopback_v6(i: usize) -> IpAddr {
    loopbacks_of(i)[1].addr()
}

/// Node `i`'s IPv4 loopback: the next hop of the IPv4 overlay prefixes it originates.
pub fn loopback_v4(i: usize) -> IpAddr {
    loopbacks_of(i)[0].addr()
}
