//! The batch: decide the dirty prefixes, then queue each changed one for the
//! established peers that may see it (sent by [`super::transmit`]).

use super::adj_in::InRoute;
use super::adj_out::AdjRibOut;
use super::decision::{select, Candidate};
use super::group::group_eligible;
use super::intern::{FastMap, Interner};
use super::loc_rib::{Entry, LocRib, Source, LOCAL, NONE};
use super::reflect::{may_send, reflected_attributes, total_med, DEFAULT_LOCAL_PREF};
use super::{Peer, PeerId, Rib, RibOutput};
use crate::wire::{Origin, PathAttributes};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The candidate for our own route.
pub(super) fn local_candidate(router_id: Ipv4Addr) -> Candidate {
    Candidate {
        source: Source::Local,
        local_pref: DEFAULT_LOCAL_PREF,
        origin: Origin::Igp,
        med: 0,
        cluster_len: 0,
        originator: router_id,
        address: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// What the decision sees of a path from `peer`: its MED is the received one
/// plus the link cost in force now.
pub(super) fn path_candidate(peer_id: PeerId, a: &PathAttributes, peer: &Peer) -> Candidate {
    Candidate {
        source: Source::Peer(peer_id),
        local_pref: a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
        origin: a.origin.unwrap_or(Origin::Incomplete),
        med: total_med(a.med, peer.link_cost()),
        cluster_len: a.cluster_list.len(),
        originator: a.originator_id.unwrap_or_else(|| peer.remote_id()),
        address: peer.cfg.address,
    }
}

/// Accepted entries of dest `id` (the Loc-RIB paths), in order.
pub(super) fn paths<'a>(
    loc: &'a LocRib,
    id: u32,
) -> impl Iterator<Item = (Entry, &'a InRoute)> + 'a {
    let routes = &loc.routes;
    loc.entries(id)
        .iter()
        .map(move |e| (*e, routes.get(e.route)))
        .filter(|(_, r)| r.verdict.is_ok() && r.next_hop.is_some())
}

/// Candidates of dest `id` into `out`: our own route first, then the paths in
/// order; `routes` gets the route id of each.
pub(super) fn candidates(
    loc: &LocRib,
    id: u32,
    peers: &[Peer],
    router_id: Ipv4Addr,
    out: &mut Vec<Candidate>,
    routes: &mut Vec<u32>,
) {
    out.clear();
    routes.clear();
    if loc.slab[id as usize].local() {
        out.push(local_candidate(router_id));
        routes.push(NONE);
    }
    for (e, r) in paths(loc, id) {
        if let Some(peer) = peers.get(e.peer as usize) {
            out.push(path_candidate(e.peer as usize, &r.attrs, peer));
            routes.push(e.route);
        }
    }
}

/// The selected path: (source, route, export), [`NONE`]s for none.
type Selected = (u32, u32, u32);

const NO_BEST: Selected = (NONE, NONE, NONE);

type ExportCache = FastMap<(usize, u32, Ipv4Addr), u32>;

struct Decider<'a> {
    peers: &'a [Peer],
    router_id: Ipv4Addr,
    cluster_id: Ipv4Addr,
    local_export: u32,
    interner: &'a mut Interner,
    /// Outgoing attributes per (received set, MED, originator) within one flush.
    cache: ExportCache,
    last: Option<((usize, u32, Ipv4Addr), u32)>,
    scratch: Vec<Candidate>,
    scratch_routes: Vec<u32>,
}

impl Decider<'_> {
    fn decide(&mut self, loc: &mut LocRib, id: u32) -> Selected {
        candidates(
            loc,
            id,
            self.peers,
            self.router_id,
            &mut self.scratch,
            &mut self.scratch_routes,
        );
        let Some(i) = select(&self.scratch) else {
            return NO_BEST;
        };
        let c = self.scratch[i];
        let Source::Peer(peer) = c.source else {
            return (LOCAL, NONE, self.local_export);
        };
        let route = self.scratch_routes[i];
        let Some(p) = self.peers.get(peer) else {
            return NO_BEST;
        };
        let remote_id = p.remote_id();
        let attrs = &loc.routes.get(route).attrs;
        let key = (Arc::as_ptr(attrs) as usize, c.med, remote_id);
        let export = match self.last {
            Some((k, e)) if k == key => e,
            _ => {
                let e = match self.cache.get(&key) {
                    Some(&e) => e,
                    None => {
                        let a = self.interner.intern(reflected_attributes(
                            attrs,
                            c.med,
                            remote_id,
                            self.cluster_id,
                        ));
                        let e = loc.exports.intern(a);
                        self.cache.insert(key, e);
                        e
                    }
                };
                self.last = Some((key, e));
                e
            }
        };
        (peer as u32, route, export)
    }
}

/// RFC 4456 §6 with the configured clients.
pub(super) fn eligible(clients: &[bool], source: u32, to: usize) -> bool {
    let source = match source {
        NONE => return false,
        LOCAL => Source::Local,
        p => Source::Peer(p as usize),
    };
    let from_client = match source {
        Source::Peer(p) => clients.get(p).copied().unwrap_or(false),
        Source::Local => true,
    };
    may_send(source, from_client, to, clients[to])
}

impl Rib {
    /// Runs the decision for every dirty prefix in one batch: returns the
    /// forwarding changes and import limit reports, and queues each changed
    /// prefix for the peers that may see it; [`Rib::poll_transmit`] encodes.
    pub fn flush(&mut self) -> Vec<RibOutput> {
        let mut out = std::mem::take(&mut self.pending);
        let Rib {
            cfg,
            cluster_id,
            peers,
            loc,
            interner,
            local_export,
            fib_outputs,
            forwarding,
            groups,
            ..
        } = self;
        let fib_outputs = *fib_outputs;
        let dirty = loc.take_dirty();
        let clients: Vec<bool> = peers.iter().map(|p| p.cfg.rr_client).collect();
        // The queues of established peers not following an update group's
        // stream, out while the decider reads `peers`; the groups with
        // followers get one mark per prefix for all of them.
        let mut queues: Vec<(usize, AdjRibOut)> = peers
            .iter_mut()
            .enumerate()
            .filter(|(_, p)| p.session.is_some() && p.adj_out.cursor.is_none())
            .map(|(i, p)| (i, std::mem::take(&mut p.adj_out)))
            .collect();
        let from_client = |src: u32| clients.get(src as usize).copied().unwrap_or(false);
        let mut decider = Decider {
            peers: &*peers,
            router_id: cfg.router_id,
            cluster_id: *cluster_id,
            local_export: *local_export,
            interner: &mut *interner,
            cache: ExportCache::default(),
            last: None,
            scratch: Vec::new(),
            scratch_routes: Vec::new(),
        };
        for id in dirty {
            let (src, route, export) = decider.decide(loc, id);
            let d = &loc.slab[id as usize];
            let prefix = d.prefix;
            let (old_src, old_route, old_export) = (d.best_src, d.best_route, d.best_export);
            let fib = |src: u32, route: u32| match src {
                NONE | LOCAL => None,
                p => loc.routes.get(route).next_hop.map(|nh| (nh, p as usize)),
            };
            if fib_outputs && (old_src, old_route) != (src, route) {
                let new_fib = fib(src, route);
                if fib(old_src, old_route) != new_fib {
                    out.push(RibOutput::BestChanged {
                        prefix,
                        best: new_fib,
                    });
                }
            }
            // What export sees: no peer's path while the kernel cannot hold it.
            let (old_x, x) = forwarding.decide(prefix, old_src, src);
            if (old_x, old_export) != (x, export) {
                for (q, adj_out) in &mut queues {
                    if eligible(&clients, old_x, *q) || eligible(&clients, x, *q) {
                        adj_out.mark(id);
                    }
                }
                for g in groups.iter_mut().filter(|g| g.following > 0) {
                    let to = g.key.rr_client();
                    if group_eligible(old_x, from_client(old_x), to)
                        || group_eligible(x, from_client(x), to)
                    {
                        g.queue.mark(id);
                    }
                }
            }
            loc.routes.inc(route);
            loc.routes.dec(old_route);
            loc.exports.inc(export);
            loc.exports.dec(old_export);
            let d = &mut loc.slab[id as usize];
            d.best_src = src;
            d.best_route = route;
            d.best_export = export;
            loc.release(id);
        }
        drop(decider);
        for (q, adj_out) in queues {
            peers[q].adj_out = adj_out;
        }
        loc.routes.sweep();
        loc.exports.sweep();
        interner.maybe_purge();
        out
    }
}
