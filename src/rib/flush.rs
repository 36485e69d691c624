//! The batch: decide the dirty prefixes, then queue each changed one for the
//! established peers that may see it (sent by [`super::transmit`]).

use super::adj_in::InRoute;
use super::adj_out::AdjRibOut;
use super::decision::{select, Candidate};
use super::export::originated_attributes;
use super::fib_out::underlay_route;
use super::group::group_eligible;
use super::intern::{FastMap, Interner};
use super::loc_rib::{Entry, LocRib, Source, LOCAL, NONE};
use super::lost_routers::LostRouters;
use super::overlay::{carries, local_next_hop, next_hop_carrier, overlay_attributes};
use super::reflect::{may_send, reflected_attributes, total_med, DEFAULT_LOCAL_PREF};
use super::resolve::{Resolver, Underlay};
use super::{Peer, PeerId, Rib, RibOutput};
use crate::wire::Origin;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The candidate for our own route.
pub(super) fn local_candidate(router_id: Ipv4Addr) -> Candidate {
    Candidate {
        source: Source::Local,
        local_pref: DEFAULT_LOCAL_PREF,
        origin: Origin::Igp,
        through_lost: false,
        med: 0,
        interior_cost: 0,
        cluster_len: 0,
        originator: router_id,
        address: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        path_id: 0,
    }
}

/// What the decision sees of a path from `peer`: its MED is the received one
/// plus the link cost in force now; an overlay path (`interior_cost` given)
/// keeps its MED and carries the underlay cost to its next hop. `lost`:
/// routers whose session just went down, if any ([`super::lost_routers`]).
pub(super) fn path_candidate(
    peer_id: PeerId,
    r: &InRoute,
    peer: &Peer,
    interior_cost: Option<u32>,
    lost: Option<&LostRouters>,
) -> Candidate {
    let a = &r.attrs;
    Candidate {
        source: Source::Peer(peer_id),
        local_pref: a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
        origin: a.origin.unwrap_or(Origin::Incomplete),
        through_lost: lost.is_some_and(|l| l.through(a, peer.remote_id())),
        med: match interior_cost {
            Some(_) => a.med.unwrap_or(0),
            None => total_med(a.med, peer.link_cost()),
        },
        interior_cost: interior_cost.unwrap_or(0),
        cluster_len: a.cluster_list.len(),
        originator: a.originator_id.unwrap_or_else(|| peer.remote_id()),
        address: peer.cfg.address,
        path_id: r.path_id,
    }
}

/// Accepted entries of dest `id` (the Loc-RIB paths), in order.
pub(super) fn paths<'a>(
    loc: &'a LocRib,
    id: u32,
) -> impl Iterator<Item = (Entry, &'a InRoute)> + 'a {
    let routes = &loc.routes;
    loc.entries(id)
        .map(move |e| (e, routes.get(e.route())))
        .filter(|(_, r)| r.verdict.is_ok() && r.next_hop.is_some())
}

/// Candidates of dest `id` into `out`: our own route first, then the paths in
/// order; `routes` gets the route id of each. For an overlay dest
/// (`underlay` given) each path's next hop is resolved: unresolvable paths
/// are no candidates. Paths through a router in `lost` (underlay dests
/// only) are marked; returns whether there was one.
#[allow(clippy::too_many_arguments)]
pub(super) fn candidates(
    loc: &LocRib,
    id: u32,
    peers: &[Peer],
    router_id: Ipv4Addr,
    underlay: Option<Underlay<'_>>,
    lost: &LostRouters,
    out: &mut Vec<Candidate>,
    routes: &mut Vec<u32>,
) -> bool {
    out.clear();
    routes.clear();
    let lost = (underlay.is_none() && !lost.is_empty()).then_some(lost);
    if loc.slab[id as usize].local() {
        out.push(local_candidate(router_id));
        routes.push(NONE);
    }
    for (e, r) in paths(loc, id) {
        if let Some(peer) = peers.get(e.peer() as usize) {
            let cost = match (underlay, r.next_hop) {
                (Some(u), Some(nh)) => {
                    let Some(c) = u.resolve(loc, peers, nh).cost() else {
                        continue; // unresolvable: no candidate
                    };
                    Some(c)
                }
                _ => None,
            };
            out.push(path_candidate(e.peer() as usize, r, peer, cost, lost));
            routes.push(e.route());
        }
    }
    lost.is_some() && out.iter().any(|c| c.through_lost)
}

/// The selected path: (source, route, export), [`NONE`]s for none.
type Selected = (u32, u32, u32);

const NO_BEST: Selected = (NONE, NONE, NONE);

/// Outgoing attributes per (received set, MED, originator, overlay next hop),
/// shared by the decision and the ADD-PATH pulls (a reflector's clients all
/// get the same sets). The received set is named by its address: the
/// interner keeps it until a purge, and export ids live until a sweep; both
/// run only at the end of [`Rib::flush`], where the cache is emptied.
/// The overlay's sets ignore the MED (an entry per MED value at worst).
pub(super) type ExportKey = (usize, u32, Ipv4Addr, Option<IpAddr>);
pub(super) type ExportCache = FastMap<ExportKey, u32>;

struct Decider<'a> {
    peers: &'a [Peer],
    router_id: Ipv4Addr,
    cluster_id: Ipv4Addr,
    overlay_cluster_id: Ipv4Addr,
    local_export: u32,
    /// Our own overlay routes' outgoing attributes, IPv4 and IPv6 prefixes
    /// ([`NONE`]: no loopback to use as next hop).
    overlay_local: [u32; 2],
    underlay: Underlay<'a>,
    lost: &'a LostRouters,
    /// Dests decided with a path through a lost router among the candidates.
    through_lost: Vec<u32>,
    interner: &'a mut Interner,
    cache: &'a mut ExportCache,
    last: Option<(ExportKey, u32)>,
    scratch: Vec<Candidate>,
    scratch_routes: Vec<u32>,
}

impl Decider<'_> {
    fn decide(&mut self, loc: &mut LocRib, id: u32, overlay: bool) -> Selected {
        if candidates(
            loc,
            id,
            self.peers,
            self.router_id,
            overlay.then_some(self.underlay),
            self.lost,
            &mut self.scratch,
            &mut self.scratch_routes,
        ) {
            self.through_lost.push(id);
        }
        let Some(i) = select(&self.scratch) else {
            return NO_BEST;
        };
        let c = self.scratch[i];
        let Source::Peer(peer) = c.source else {
            let export = if overlay {
                let v6 = loc.is_v6(id);
                self.overlay_local[usize::from(v6)]
            } else {
                self.local_export
            };
            return (LOCAL, NONE, export);
        };
        let route = self.scratch_routes[i];
        let Some(p) = self.peers.get(peer) else {
            return NO_BEST;
        };
        let remote_id = p.remote_id();
        let r = loc.routes.get(route);
        let (attrs, next_hop) = (&r.attrs, if overlay { r.next_hop } else { None });
        let key = (Arc::as_ptr(attrs) as usize, c.med, remote_id, next_hop);
        let export = match self.last {
            Some((k, e)) if k == key => e,
            _ => {
                let e = match self.cache.get(&key) {
                    Some(&e) => e,
                    None => {
                        let out = match next_hop {
                            Some(nh) => {
                                overlay_attributes(attrs, remote_id, self.overlay_cluster_id, nh)
                            }
                            None => reflected_attributes(attrs, c.med, remote_id, self.cluster_id),
                        };
                        let a = self.interner.intern(out);
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

/// The decision of one batch, applied dest by dest.
struct Batch<'a> {
    clients: Vec<bool>,
    multihop: Vec<bool>,
    /// The queues of established peers, out while the decider reads `peers`.
    queues: Vec<(usize, AdjRibOut)>,
    fib_outputs: bool,
    /// A kernel route replacing another holds its announcement back until
    /// applied ([`Batch::kernel_first`]).
    export_after_kernel: bool,
    forwarding: &'a mut super::forwarding::Forwarding,
    resolver: &'a mut Resolver,
    next_hops: Vec<IpAddr>,
    /// Update groups (link sessions only: never an overlay prefix).
    groups: &'a mut Vec<super::group::UpdateGroup>,
}

impl Batch<'_> {
    /// Dest `id`'s kernel route just changed: a route that replaces another
    /// one is announced once the kernel holds it ([`Rib::fib_applied`]), so
    /// no neighbor sends us traffic our kernel would still forward the old
    /// way (a loop while the two disagree). A withdrawal goes at once, and so
    /// does a first route: there is no old way to loop through (and a table
    /// learned in bulk is not slowed to the kernel's pace).
    fn kernel_first(&self, loc: &mut LocRib, id: u32, installs: bool, replaces: bool) {
        if !self.export_after_kernel {
            return;
        }
        if installs && replaces {
            loc.kernel_wait.mark(id);
        } else {
            loc.kernel_wait.remove(id);
        }
    }

    /// Decides dest `id` (an overlay prefix if `overlay`), queues it for the
    /// peers that may see it and, if its kernel route changed, for the FIB.
    fn apply(
        &mut self,
        decider: &mut Decider<'_>,
        loc: &mut LocRib,
        id: u32,
        prefix: IpNet,
        overlay: bool,
    ) {
        let (src, route, export) = decider.decide(loc, id, overlay);
        let d = &loc.slab[id as usize];
        let (old_src, old_route, old_export) = (loc.best_src(id), d.best_route(), d.best_export());
        if overlay {
            // Register the next hops of every path (resolved or not) and
            // report the FIB route: via the underlay route to the next hop.
            self.next_hops.clear();
            self.next_hops
                .extend(paths(loc, id).filter_map(|(_, r)| r.next_hop));
            self.next_hops.sort_unstable();
            self.next_hops.dedup();
            let (underlay, peers) = (decider.underlay, decider.peers);
            self.resolver
                .register(id, &self.next_hops, |nh| underlay.resolve(loc, peers, nh));
            let new_fib = match src {
                NONE | LOCAL => None,
                _ => loc
                    .routes
                    .get(route)
                    .next_hop
                    .and_then(|nh| decider.underlay.resolve(loc, decider.peers, nh).fib()),
            };
            let old_fib = self.resolver.fib.get(&prefix).copied();
            if self.fib_outputs && old_fib != new_fib {
                match new_fib {
                    Some(f) => self.resolver.fib.insert(prefix, f),
                    None => self.resolver.fib.remove(&prefix),
                };
                loc.fib_queue.mark(id);
                self.kernel_first(loc, id, new_fib.is_some(), old_fib.is_some());
            }
        } else if self.fib_outputs
            && (old_src, old_route) != (src, route)
            && underlay_route(loc, old_src, old_route) != underlay_route(loc, src, route)
        {
            // Pulled by the FIB ([`super::fib_out`]): one bit, however
            // often the route changes before it is taken.
            loc.fib_queue.mark(id);
            let installs = underlay_route(loc, src, route).is_some();
            let replaces = underlay_route(loc, old_src, old_route).is_some();
            self.kernel_first(loc, id, installs, replaces);
        }
        // What export sees: no peer's path while the kernel cannot hold it.
        let (old_x, x) = self.forwarding.decide(prefix, old_src, src);
        if (old_x, old_export) != (x, export) {
            for (q, adj_out) in &mut self.queues {
                // A prefix that left its kind of session (`[overlay]` reloaded)
                // is still withdrawn from the peers that hold it.
                let holds = adj_out.get(id) != NONE;
                if (carries(self.multihop[*q], overlay) || holds)
                    && (eligible(&self.clients, old_x, *q) || eligible(&self.clients, x, *q))
                {
                    adj_out.mark(id);
                }
            }
            let clients = &self.clients;
            let from_client = |src: u32| clients.get(src as usize).copied().unwrap_or(false);
            // A group gets the prefixes of its kind of session, and a
            // prefix that left that kind only to withdraw what it still
            // holds (`[overlay]` reloaded).
            for g in self.groups.iter_mut().filter(|g| g.following > 0) {
                if carries(g.key.multihop(), overlay) || g.sent.get(id) != NONE {
                    let to = g.key.rr_client();
                    if group_eligible(old_x, from_client(old_x), to)
                        || group_eligible(x, from_client(x), to)
                    {
                        g.queue.mark(id);
                    }
                }
            }
        }
        loc.routes.inc(route);
        loc.routes.dec(old_route);
        loc.exports.inc(export);
        loc.exports.dec(old_export);
        loc.set_best(id, src, route, export);
        loc.release(id);
    }
}

impl Rib {
    /// Runs the decision for every dirty prefix in one batch: returns the
    /// import limit reports, queues each changed prefix for the peers that
    /// may see it ([`Rib::poll_transmit`] encodes) and each whose kernel
    /// route changed for the FIB ([`Rib::poll_fib`] answers).
    /// Underlay prefixes first; then the overlay ones, with those whose next
    /// hops' underlay paths just changed ([`super::resolve`]).
    pub fn flush(&mut self) -> Vec<RibOutput> {
        let out = std::mem::take(&mut self.pending);
        let Rib {
            cfg,
            cluster_id,
            overlay_cluster_id,
            overlay,
            originated,
            overlay_originated,
            resolver,
            peers,
            loc,
            interner,
            local_export,
            fib_outputs,
            export_after_kernel,
            forwarding,
            groups,
            export_cache,
            lost,
            ..
        } = self;
        let dirty = loc.take_dirty();
        let (mut over, under): (Vec<u32>, Vec<u32>) = if overlay.is_empty() {
            (Vec::new(), dirty)
        } else {
            dirty
                .into_iter()
                .partition(|&id| overlay.contains(&loc.prefix(id)))
        };
        let mut batch = Batch {
            clients: peers.iter().map(|p| p.cfg.rr_client).collect(),
            multihop: peers.iter().map(|p| p.cfg.multihop).collect(),
            queues: peers
                .iter_mut()
                .enumerate()
                // Peers following an update group's stream: one mark per
                // prefix in the group's queue for all of them.
                .filter(|(_, p)| p.session.is_some() && p.adj_out.cursor.is_none())
                .map(|(i, p)| (i, std::mem::take(&mut p.adj_out)))
                .collect(),
            groups,
            fib_outputs: *fib_outputs,
            export_after_kernel: *export_after_kernel,
            forwarding,
            resolver,
            next_hops: Vec::new(),
        };
        let overlay_local = [true, false].map(|v4| {
            if overlay_originated.is_empty() {
                return NONE;
            }
            let Some(nh) = local_next_hop(originated, v4) else {
                return NONE;
            };
            let mut a = originated_attributes();
            a.mp_reach = Some(Box::new(next_hop_carrier(nh)));
            loc.exports.intern(interner.intern(a))
        });
        let underlay = Underlay {
            loopbacks: &cfg.loopbacks,
        };
        let mut decider = Decider {
            peers: &*peers,
            router_id: cfg.router_id,
            cluster_id: *cluster_id,
            overlay_cluster_id: *overlay_cluster_id,
            local_export: *local_export,
            overlay_local,
            underlay,
            lost: &*lost,
            through_lost: Vec::new(),
            interner: &mut *interner,
            cache: export_cache,
            last: None,
            scratch: Vec::new(),
            scratch_routes: Vec::new(),
        };
        // Underlay first; a next hop whose resolution moved marks its
        // overlay prefixes, decided below with the dirty ones.
        let peers_now = decider.peers;
        let mut decided = Vec::with_capacity(under.len() + over.len());
        for id in under {
            let prefix = loc.prefix(id);
            batch.apply(&mut decider, loc, id, prefix, false);
            decided.push(id);
            let addr = prefix.addr();
            batch
                .resolver
                .underlay_decided(addr, loc, |loc| underlay.resolve(loc, peers_now, addr));
        }
        if loc.has_dirty() {
            over.extend(loc.take_dirty());
            over.sort_unstable();
            over.dedup();
        }
        for id in over {
            let prefix = loc.prefix(id);
            batch.apply(&mut decider, loc, id, prefix, true);
            decided.push(id);
        }
        let mut through_lost = std::mem::take(&mut decider.through_lost);
        drop(decider);
        lost.note_affected(&mut through_lost);
        for (q, adj_out) in batch.queues {
            peers[q].adj_out = adj_out;
        }
        super::addpath_out::mark_dirty(peers, &decided);
        loc.routes.sweep();
        loc.exports.sweep();
        interner.maybe_purge();
        export_cache.clear();
        out
    }
}
