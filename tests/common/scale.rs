//! The fabric at scale (issue 12 part 7a), shared by scale_sim.rs (a small
//! one in `cargo test`) and benches/fabric_scale.rs (100, 300, 1000 routers):
//! a ring of routers plus random chords (deterministic seed), varied link
//! costs, two loopbacks per router on the link sessions, two route
//! reflectors with multihop sessions to every router, and overlay prefixes
//! (IPv4 and IPv6, several lengths), each originated by 2 or 3 routers
//! (anycast). [`check`] compares every node's choices with Dijkstra.
//!
//! Ties: an exit (or a first hop) is right when its distance equals the
//! shortest one; which of several equal-cost ones wins is the RIB's
//! tie-break (router id, peer address) and is not checked.

#![allow(dead_code)] // the test and the bench each use their own part

use crate::fabric::{link_local, loopback_v4, loopback_v6, Fabric, NO_NODE};
use ipnet::IpNet;
use kittbgpd::config::Overlay;
use kittbgpd::rib::CandidateExplanation;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// SplitMix64: a deterministic sequence from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub struct Scale {
    pub f: Fabric,
    /// The two reflectors' node indices (after the routers).
    pub reflectors: [usize; 2],
    /// Overlay prefix -> the routers originating it.
    pub overlay: Vec<(IpNet, Vec<usize>)>,
    /// Link sessions (both directions count once).
    pub links: usize,
}

fn ranges() -> Overlay {
    Overlay {
        ipv4: vec!["10.100.0.0/15".parse().unwrap()],
        ipv6: vec!["fd00:100::/32".parse().unwrap()],
        ..Overlay::default()
    }
}

/// Overlay prefix `k`: a quarter each 10.100.k.0/24, 10.101.x.y/32,
/// fd00:100:k::/48 and fd00:100:k::1/128.
pub fn overlay_prefix(k: usize, total: usize) -> IpNet {
    let q = total.div_ceil(4).max(1);
    let (part, i) = (k / q, k % q);
    let [_, _, x, y] = (i as u32).to_be_bytes();
    let s = match part {
        0 => format!("10.100.{x}.{y}/32"),
        1 => format!("10.101.{}.0/24", i % 256),
        2 => format!("fd00:100:{i:x}::/48"),
        _ => format!("fd00:100:{:x}::1/128", 0x8000 + i),
    };
    s.parse().unwrap()
}

/// `routers` routers in a ring, `routers / 2` random chords, costs 1..=100
/// chosen per end; reflector A hangs off three routers a third of the ring
/// apart, B off three others; `prefixes` overlay prefixes, each originated
/// by 2 or 3 distinct routers. Not converged yet.
/// With `add_path` the reflectors send every path (RFC 7911): each router
/// then chooses by its own underlay distance.
pub fn build(routers: usize, prefixes: usize, seed: u64, add_path: bool) -> Scale {
    assert!(routers >= 6);
    let mut rng = Rng::new(seed);
    let cost = |rng: &mut Rng| 1 + rng.below(100) as u32;
    let mut seen = BTreeSet::new();
    let mut edges = Vec::new();
    let mut link = |a: usize, b: usize, rng: &mut Rng, edges: &mut Vec<_>| {
        if a != b && seen.insert((a.min(b), a.max(b))) {
            edges.push((a, b, cost(rng), cost(rng)));
        }
    };
    for i in 0..routers {
        link(i, (i + 1) % routers, &mut rng, &mut edges);
    }
    for _ in 0..routers / 2 {
        let (a, b) = (rng.below(routers), rng.below(routers));
        link(a, b, &mut rng, &mut edges);
    }
    let reflectors = [routers, routers + 1];
    for (r, offset) in reflectors.iter().zip([0, routers / 6]) {
        for k in 0..3 {
            link(*r, offset + k * routers / 3, &mut rng, &mut edges);
        }
    }
    let links = edges.len();
    let mut f = Fabric::new(routers + 2, &edges);
    f.add_path = add_path;
    f.set_overlay(&ranges());
    for r in 0..routers {
        for rr in reflectors {
            f.add_multihop(r, rr, true, false);
        }
    }
    let mut overlay = Vec::new();
    let mut originated: BTreeMap<usize, BTreeSet<IpNet>> = BTreeMap::new();
    for k in 0..prefixes {
        let prefix = overlay_prefix(k, prefixes);
        let mut by = BTreeSet::new();
        while by.len() < 2 + usize::from(k % 3 == 0) {
            by.insert(rng.below(routers));
        }
        for &o in &by {
            originated.entry(o).or_default().insert(prefix);
        }
        overlay.push((prefix, by.into_iter().collect()));
    }
    for (o, set) in originated {
        crate::fabric::CURRENT_NODE.set(o);
        f.nodes[o].rib.set_overlay_originated(set);
        crate::fabric::CURRENT_NODE.set(NO_NODE);
    }
    Scale {
        f,
        reflectors,
        overlay,
        links,
    }
}

/// What [`check`] found besides failures.
#[derive(Debug, Default)]
pub struct Checked {
    /// (node, overlay prefix) choices checked.
    pub choices: usize,
    /// Of those, with more than one exit at the shortest distance.
    pub ties: usize,
}

/// Every loopback route equals Dijkstra ([`Fabric::check_shortest_paths`]);
/// every node's exit for every overlay prefix is the nearest (by its own
/// underlay distance) among the exits it can know of: all originators on a
/// reflector or with ADD-PATH, else the exits its reflectors chose; its
/// interior cost is that distance and its kernel route goes to the first hop
/// of a shortest path to the exit.
pub fn check(s: &Scale) -> Checked {
    let f = &s.f;
    let n = f.nodes.len();
    f.check_shortest_paths(&(0..n).collect::<Vec<_>>());
    let dist = f.all_distances();
    let d = |from: usize, to: usize| dist[to][from].expect("connected");
    let owner: HashMap<IpAddr, usize> = (0..n)
        .flat_map(|k| [(loopback_v4(k), k), (loopback_v6(k), k)])
        .collect();
    let mut out = Checked::default();
    for (prefix, exits) in &s.overlay {
        let exit_of = |best: Option<&CandidateExplanation>, i: usize| -> Option<usize> {
            let best = best?;
            if best.peer == "self" {
                return Some(i);
            }
            Some(owner[&best.next_hop.expect("a next hop")])
        };
        let chosen: Vec<Option<usize>> = s
            .reflectors
            .iter()
            .map(|&rr| {
                let e = f.nodes[rr].rib.explain(*prefix);
                exit_of(e.candidates.iter().find(|c| c.best), rr)
            })
            .collect();
        for i in 0..n {
            out.choices += 1;
            let e = f.nodes[i].rib.explain(*prefix);
            let best = e.candidates.iter().find(|c| c.best);
            let exit =
                exit_of(best, i).unwrap_or_else(|| panic!("n{} has no route to {prefix}", i + 1));
            if exits.contains(&i) {
                assert_eq!(exit, i, "n{} originates {prefix}", i + 1);
                assert!(!f.nodes[i].fib.contains_key(prefix), "local: not installed");
                continue;
            }
            let known: BTreeSet<usize> = if s.reflectors.contains(&i) || f.add_path {
                exits.iter().copied().collect()
            } else {
                chosen.iter().flatten().copied().collect()
            };
            let nearest = known.iter().map(|&k| d(i, k)).min().unwrap();
            out.ties += usize::from(known.iter().filter(|&&k| d(i, k) == nearest).count() > 1);
            assert_eq!(
                d(i, exit),
                nearest,
                "n{} exits at n{} for {prefix} among {known:?}",
                i + 1,
                exit + 1
            );
            let best = best.unwrap();
            assert_eq!(
                best.interior_cost.map(u64::from),
                Some(nearest),
                "n{} {prefix}",
                i + 1
            );
            let (gw, peer) = f.nodes[i].fib[prefix];
            let via = f.nodes[i].links[peer].0;
            assert_eq!(gw, IpAddr::V6(link_local(via, i)));
            let rest = if via == exit { 0 } else { d(via, exit) };
            assert_eq!(
                u64::from(f.cost[&(i, via)]) + rest,
                nearest,
                "n{} forwards {prefix} to n{} towards n{}",
                i + 1,
                via + 1,
                exit + 1
            );
        }
    }
    out
}
