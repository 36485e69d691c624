//! Recursive next-hop resolution of overlay paths over the underlay (issue 12
//! part 3), sans-IO. An overlay path's next hop (the originating node's
//! loopback) resolves through the underlay's best path to it: the Loc-RIB's
//! best route of that loopback (the underlay holds only host routes, so the
//! longest match is the host route itself), or our own loopback (local,
//! cost 0). Unresolvable: the path stays in the Adj-RIB-In, shown with the
//! reason, and is no candidate.
//!
//! The [`Resolver`] keeps an index next hop -> overlay dests using it, so that
//! when the underlay best path of a loopback changes (cost, withdrawal, dead
//! link), [`Rib::flush`] decides exactly those overlay prefixes again in the
//! same batch, after the underlay ones. The FIB then gets the new gateway;
//! nothing is sent on the overlay sessions unless the overlay best changed.
//! The same index answers [`Rib::watch_address`] (the runtime starts a
//! multihop session only while its neighbor's address is reachable).

use super::intern::FastMap;
use super::loc_rib::{LocRib, LOCAL, NONE};
use super::reflect::total_med;
use super::{Peer, PeerId, Rib};
use crate::config::Loopbacks;
use ipnet::IpNet;
use serde::Serialize;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

type FastSet<T> = HashSet<T, BuildHasherDefault<super::intern::FastHasher>>;

/// How a next hop resolves over the underlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Our own loopback: the exit is this node (cost 0, nothing to install).
    Local,
    /// Through the underlay best path to the loopback: its gateway and peer
    /// (as the underlay route is installed) and its total cost (MED after
    /// link cost), the interior cost of RFC 4271 §9.1.2.2 (e).
    Via {
        gateway: IpAddr,
        peer: PeerId,
        cost: u32,
    },
    /// No underlay route covers it: the path is unusable.
    Unresolved,
}

impl Resolution {
    /// The interior cost to the next hop, `None` if unresolved.
    pub fn cost(&self) -> Option<u32> {
        match self {
            Resolution::Local => Some(0),
            Resolution::Via { cost, .. } => Some(*cost),
            Resolution::Unresolved => None,
        }
    }

    /// What the kernel route of an overlay prefix using it is (`None`: local or unresolved).
    pub fn fib(&self) -> Option<(IpAddr, PeerId)> {
        match self {
            Resolution::Via { gateway, peer, .. } => Some((*gateway, *peer)),
            _ => None,
        }
    }
}

/// The underlay as resolution sees it: host routes inside the loopback ranges.
#[derive(Clone, Copy)]
pub(super) struct Underlay<'a> {
    pub loopbacks: &'a Loopbacks,
}

impl Underlay<'_> {
    /// Resolves `next_hop` through the current Loc-RIB selection.
    pub fn resolve(&self, loc: &LocRib, peers: &[Peer], next_hop: IpAddr) -> Resolution {
        let host = IpNet::from(next_hop);
        if !self.loopbacks.admits(host) {
            return Resolution::Unresolved;
        }
        let Some(id) = loc.find(&host) else {
            return Resolution::Unresolved;
        };
        let d = &loc.slab[id as usize];
        match loc.best_src(id) {
            NONE => Resolution::Unresolved,
            LOCAL => Resolution::Local,
            p => {
                let r = loc.routes.get(d.best_route());
                match (r.next_hop, peers.get(p as usize)) {
                    (Some(gateway), Some(peer)) => Resolution::Via {
                        gateway,
                        peer: p as PeerId,
                        cost: total_med(r.attrs.med, peer.link_cost()),
                    },
                    _ => Resolution::Unresolved,
                }
            }
        }
    }
}

/// The overlay dests using one next hop, and its resolution when they were
/// last decided.
#[derive(Debug)]
struct Dependents {
    dests: FastSet<u32>,
    last: Resolution,
}

/// Next hop -> dependent overlay dests, watched addresses, and the overlay
/// FIB state. Memory: one entry per (overlay dest, distinct next hop).
#[derive(Debug, Default)]
pub(super) struct Resolver {
    deps: FastMap<IpAddr, Dependents>,
    /// The next hops each overlay dest was registered under at its last decision.
    by_dest: FastMap<u32, Vec<IpAddr>>,
    /// Watched addresses and the reachability last reported.
    watched: FastMap<IpAddr, bool>,
    changes: Vec<(IpAddr, bool)>,
    /// What the FIB was last told per overlay prefix (absent: nothing).
    pub fib: FastMap<IpNet, (IpAddr, PeerId)>,
}

impl Resolver {
    /// Dest `id` (overlay) now uses `next_hops` (sorted, deduplicated); a
    /// next hop new to the index is resolved with `resolve`.
    pub fn register(
        &mut self,
        id: u32,
        next_hops: &[IpAddr],
        resolve: impl Fn(IpAddr) -> Resolution,
    ) {
        let old = self.by_dest.get(&id).map_or(&[][..], Vec::as_slice);
        if old == next_hops {
            return;
        }
        for nh in old {
            if !next_hops.contains(nh) {
                if let Some(d) = self.deps.get_mut(nh) {
                    d.dests.remove(&id);
                    if d.dests.is_empty() {
                        self.deps.remove(nh);
                    }
                }
            }
        }
        for nh in next_hops {
            self.deps
                .entry(*nh)
                .or_insert_with(|| Dependents {
                    dests: FastSet::default(),
                    last: resolve(*nh),
                })
                .dests
                .insert(id);
        }
        if next_hops.is_empty() {
            self.by_dest.remove(&id);
        } else {
            self.by_dest.insert(id, next_hops.to_vec());
        }
    }

    /// Host route `addr` of the underlay was just decided: if the resolution
    /// of `addr` (as `resolve` computes it now) moved, its dependent overlay
    /// dests are marked for decision; a watched address is re-checked.
    pub fn underlay_decided(
        &mut self,
        addr: IpAddr,
        loc: &mut LocRib,
        resolve: impl Fn(&LocRib) -> Resolution,
    ) {
        if let Some(d) = self.deps.get_mut(&addr) {
            let now = resolve(loc);
            if now != d.last {
                d.last = now;
                for &id in &d.dests {
                    if loc.slab.get(id as usize).is_some_and(|d| d.live()) {
                        loc.touch(id);
                    }
                }
            }
        }
        if let Some(last) = self.watched.get_mut(&addr) {
            let now = resolve(loc) != Resolution::Unresolved;
            if *last != now {
                *last = now;
                self.changes.push((addr, now));
            }
        }
    }

    /// Overlay dests depending on `next_hop` (tests, views).
    pub fn dependents(&self, next_hop: &IpAddr) -> usize {
        self.deps.get(next_hop).map_or(0, |d| d.dests.len())
    }
}

impl Rib {
    pub(super) fn underlay(&self) -> Underlay<'_> {
        Underlay {
            loopbacks: &self.cfg.loopbacks,
        }
    }

    /// How `next_hop` resolves over the underlay now.
    pub fn resolve(&self, next_hop: IpAddr) -> Resolution {
        self.underlay().resolve(&self.loc, &self.peers, next_hop)
    }

    /// Reachable over the underlay: an underlay best route covers it, or it
    /// is one of our loopbacks.
    pub fn reachable(&self, addr: IpAddr) -> bool {
        self.resolve(addr) != Resolution::Unresolved
    }

    /// Reports the reachability of `addr` ([`Rib::take_address_changes`]):
    /// its current state at once, then every change (the runtime starts a
    /// multihop session to a loopback only while it is reachable).
    pub fn watch_address(&mut self, addr: IpAddr) {
        if self.resolver.watched.contains_key(&addr) {
            return;
        }
        let now = self.reachable(addr);
        self.resolver.watched.insert(addr, now);
        self.resolver.changes.push((addr, now));
    }

    pub fn unwatch_address(&mut self, addr: IpAddr) {
        self.resolver.watched.remove(&addr);
        self.resolver.changes.retain(|(a, _)| *a != addr);
    }

    /// Watched addresses whose reachability changed (true: reachable), in
    /// order, since the last call; updated by [`Rib::flush`].
    pub fn take_address_changes(&mut self) -> Vec<(IpAddr, bool)> {
        std::mem::take(&mut self.resolver.changes)
    }

    /// Overlay prefixes whose paths use `next_hop` (as of the last flush).
    pub fn dependents(&self, next_hop: IpAddr) -> usize {
        self.resolver.dependents(&next_hop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_follows_the_next_hops_of_a_dest() {
        let mut r = Resolver::default();
        let a: IpAddr = "10.255.0.1".parse().unwrap();
        let b: IpAddr = "10.255.0.2".parse().unwrap();
        let unresolved = |_| Resolution::Unresolved;
        r.register(1, &[a, b], unresolved);
        r.register(2, &[a], unresolved);
        assert_eq!((r.dependents(&a), r.dependents(&b)), (2, 1));
        r.register(1, &[b], unresolved);
        assert_eq!((r.dependents(&a), r.dependents(&b)), (1, 1));
        r.register(1, &[], unresolved);
        r.register(2, &[], unresolved);
        assert!(
            r.deps.is_empty() && r.by_dest.is_empty(),
            "nothing left behind"
        );
    }
}
