//! ADD-PATH send side (RFC 7911 §3): on a session where we may send several
//! paths of a family, every usable path of a prefix is advertised (not only
//! the best), so a reflector's client decides by its own distance to each
//! exit. Each path has a Path Identifier: one per (source, path id the source
//! gave), so the same path keeps its id across prefixes and changes of
//! attributes (an implicit replacement). One table of ids ([`PathIds`]) serves
//! every ADD-PATH session: a reflector holds one entry per path source, not
//! one per client and source.
//!
//! Kept apart from the best-path export ([`super::transmit`]): a family with
//! ADD-PATH send is not carried there (no next hop for it), and this module
//! has its own queue, Adj-RIB-Out and encoder. Hooks: [`AddPathOut::start`] at
//! session up, [`mark_dirty`] after each decision batch, [`Rib::transmit_add_paths`]
//! first in each pull, [`AddPathOut::clear`] at session down,
//! [`AddPathOut::resend`] on ROUTE-REFRESH. Memory is per advertised path,
//! only on ADD-PATH sessions.
//!
//! What travels where follows [`super::overlay`]: on a multihop session only
//! overlay prefixes, each path with its next hop unchanged (MED as received),
//! and only paths whose next hop resolves over the underlay; on a link
//! session only loopbacks, next hop self.

use super::adj_out::AdjRibOut;
use super::export::ExportContext;
use super::flush::{eligible, paths};
use super::intern::FastMap;
use super::loc_rib::{LocRib, LOCAL, NONE};
use super::overlay::{carries, overlay_attributes, route_next_hop};
use super::reflect::{reflected_attributes, total_med};
use super::resolve::Underlay;
use super::{Peer, PeerId, Rib};
use crate::wire::{EncodeError, Families, PathAttributes, UpdateBuilder};
use bytes::BytesMut;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::sync::Arc;
use tracing::warn;

/// In [`AddPathOut`]: a path advertised but asked for again (ROUTE-REFRESH).
const RESEND: u32 = NONE - 2;

/// What one ADD-PATH peer holds, and what may be stale.
#[derive(Debug, Default)]
pub(crate) struct AddPathOut {
    /// Families sent with path ids on the current session.
    families: Families,
    /// Dests to compare (only its queue and initial-table cursor are used).
    queue: AdjRibOut,
    /// Per dest id: the paths the peer holds, (path id, export id), by path id.
    /// Each export id holds a reference; a dest with paths is held (`LocRib::held`).
    adv: FastMap<u32, Vec<(u32, u32)>>,
    /// Paths advertised.
    pub advertised: usize,
}

/// Path ids given out on every ADD-PATH session: (source peer or [`LOCAL`],
/// received path id) -> id. Distinct paths of a prefix differ in that key,
/// so their ids differ on every session (RFC 7911 §3).
#[derive(Debug, Default)]
pub(crate) struct PathIds(FastMap<(u32, u32), u32>);

impl PathIds {
    /// The path id of a path from `source` ([`LOCAL`] or a peer) that it named `received`.
    fn get(&mut self, source: u32, received: u32) -> u32 {
        let next = self.0.len() as u32 + 1;
        *self.0.entry((source, received)).or_insert(next)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl AddPathOut {
    /// A session is up: with ADD-PATH send for some family, the whole table is compared.
    pub fn start(&mut self, ctx: &ExportContext) {
        self.families = ctx.negotiated.add_path_send;
        if self.families.any() {
            self.queue.sync = Some(0);
        }
    }

    pub fn active(&self) -> bool {
        self.families.any()
    }

    pub fn carries(&self, prefix: &IpNet) -> bool {
        match prefix {
            IpNet::V4(_) => self.families.ipv4_unicast,
            IpNet::V6(_) => self.families.ipv6_unicast,
        }
    }

    pub fn has_work(&self) -> bool {
        self.active() && !self.queue.idle()
    }

    /// The initial table and every queued change are out (End-of-RIB may follow).
    pub fn idle(&self) -> bool {
        !self.active() || self.queue.idle()
    }

    /// The peer holds `paths` for dest `id` (counted references).
    fn set(&mut self, id: u32, paths: Vec<(u32, u32)>, loc: &mut LocRib) {
        for &(_, e) in &paths {
            if e != RESEND {
                loc.exports.inc(e);
            }
        }
        let new_len = paths.len();
        let old = if paths.is_empty() {
            self.adv.remove(&id).unwrap_or_default()
        } else {
            self.adv.insert(id, paths).unwrap_or_default()
        };
        for &(_, e) in &old {
            if e != RESEND {
                loc.exports.dec(e);
            }
        }
        self.advertised = (self.advertised + new_len).saturating_sub(old.len());
        match (old.is_empty(), new_len == 0) {
            (true, false) => loc.hold(id),
            (false, true) => loc.unhold(id),
            _ => {}
        }
    }

    /// ROUTE-REFRESH for `afi`: every advertised path of it is sent again.
    pub fn resend(&mut self, afi: u16, loc: &mut LocRib) {
        let slab = &loc.slab;
        let afi_of = |id: u32| {
            if slab[id as usize].is_v6() {
                crate::wire::AFI_IPV6
            } else {
                crate::wire::AFI_IPV4
            }
        };
        for (&id, paths) in self.adv.iter_mut() {
            if afi_of(id) != afi {
                continue;
            }
            for (_, e) in paths.iter_mut() {
                if *e != RESEND {
                    loc.exports.dec(*e);
                    *e = RESEND;
                }
            }
            self.queue.mark(id);
        }
    }

    /// The session ended: the peer holds nothing.
    pub fn clear(&mut self, loc: &mut LocRib) {
        let ids: Vec<u32> = self.adv.keys().copied().collect();
        for id in ids {
            self.set(id, Vec::new(), loc);
        }
        *self = AddPathOut::default();
    }
}

/// After a decision batch: every changed dest may change what an ADD-PATH
/// peer holds (any path, not only the best).
pub(super) fn mark_dirty(peers: &mut [Peer], dirty: &[u32]) {
    for p in peers.iter_mut().filter(|p| p.addpath_out.active()) {
        for &id in dirty {
            p.addpath_out.queue.mark(id);
        }
    }
}

/// Paths sharing one outgoing attribute set.
struct Group {
    attrs: Arc<PathAttributes>,
    v4: Vec<(u32, Ipv4Net)>,
    v6: Vec<(u32, Ipv6Net)>,
}

/// Changes for one peer: (path id, prefix) by export id, and withdrawals.
#[derive(Default)]
struct Batch {
    groups: Vec<Group>,
    index: FastMap<u32, usize>,
    withdraw_v4: Vec<(u32, Ipv4Net)>,
    withdraw_v6: Vec<(u32, Ipv6Net)>,
}

impl Batch {
    fn announce(&mut self, path: u32, prefix: IpNet, export: u32, attrs: &Arc<PathAttributes>) {
        let groups = &mut self.groups;
        let i = *self.index.entry(export).or_insert_with(|| {
            groups.push(Group {
                attrs: attrs.clone(),
                v4: Vec::new(),
                v6: Vec::new(),
            });
            groups.len() - 1
        });
        match prefix {
            IpNet::V4(p) => self.groups[i].v4.push((path, p)),
            IpNet::V6(p) => self.groups[i].v6.push((path, p)),
        }
    }

    fn withdraw(&mut self, path: u32, prefix: IpNet) {
        match prefix {
            IpNet::V4(p) => self.withdraw_v4.push((path, p)),
            IpNet::V6(p) => self.withdraw_v6.push((path, p)),
        }
    }

    /// Withdrawals, then one packed run per attribute set and family. Returns
    /// the paths whose attributes cannot be encoded for this session.
    fn encode(self, ctx: &ExportContext, out: &mut BytesMut) -> Vec<(u32, IpNet)> {
        let b = UpdateBuilder::new(&ctx.negotiated);
        let log = |r: Result<usize, EncodeError>| {
            if let Err(e) = r {
                warn!("cannot encode ADD-PATH withdrawals: {e}");
            }
        };
        if !self.withdraw_v4.is_empty() {
            log(b.withdraw_v4(self.withdraw_v4, out));
        }
        if !self.withdraw_v6.is_empty() {
            log(b.withdraw_v6(self.withdraw_v6, out));
        }
        let mut failed = Vec::new();
        for Group { attrs, v4, v6 } in self.groups {
            if let (false, Some(nh)) = (v4.is_empty(), route_next_hop(&attrs, ctx, true)) {
                if let Err(e) = b.announce_v4(&attrs, nh, v4.iter().copied(), out) {
                    warn!(
                        "cannot encode IPv4 ADD-PATH UPDATE ({e}): withdrawing {} paths",
                        v4.len()
                    );
                    failed.extend(v4.into_iter().map(|(i, p)| (i, IpNet::V4(p))));
                }
            }
            if let (false, Some(nh)) = (v6.is_empty(), route_next_hop(&attrs, ctx, false)) {
                if let Err(e) = b.announce_v6(&attrs, nh, v6.iter().copied(), out) {
                    warn!(
                        "cannot encode IPv6 ADD-PATH UPDATE ({e}): withdrawing {} paths",
                        v6.len()
                    );
                    failed.extend(v6.into_iter().map(|(i, p)| (i, IpNet::V6(p))));
                }
            }
        }
        failed
    }
}

impl Rib {
    /// Path ids given out on ADD-PATH sessions (entries held).
    pub fn path_ids(&self) -> usize {
        self.path_ids.len()
    }

    /// The ADD-PATH part of a pull for `peer`: compares queued dests with
    /// what the peer holds and appends the UPDATEs to `buf`; returns about
    /// how many bytes (at most around `budget`).
    pub(super) fn transmit_add_paths(
        &mut self,
        peer: PeerId,
        budget: usize,
        buf: &mut BytesMut,
    ) -> usize {
        let clients: Vec<bool> = self.peers.iter().map(|p| p.cfg.rr_client).collect();
        let Rib {
            cfg,
            peers,
            loc,
            forwarding,
            interner,
            cluster_id,
            overlay,
            overlay_cluster_id,
            path_ids,
            export_cache: cache,
            ..
        } = self;
        let underlay = Underlay {
            loopbacks: &cfg.loopbacks,
        };
        let Some(ctx) = peers
            .get(peer)
            .filter(|p| p.addpath_out.has_work())
            .and_then(|p| p.session.as_ref())
            .map(|s| s.ctx.clone())
        else {
            return 0;
        };
        let mut out = std::mem::take(&mut peers[peer].addpath_out);
        let families_ok = (
            ctx.v4_route_next_hop().is_some(),
            ctx.v6_route_next_hop().is_some(),
        );
        let mut batch = Batch::default();
        let mut found: Vec<(u32, u32)> = Vec::new();
        let mut size = 0;
        while size < budget {
            let Some(id) = out.queue.next(loc.slab.len()) else {
                break;
            };
            let d = &loc.slab[id as usize];
            let prefix = loc.prefix(id);
            let is_overlay = overlay.contains(&prefix);
            if !out.carries(&prefix) || !carries(peers[peer].cfg.multihop, is_overlay) {
                continue;
            }
            let family_ok = match prefix {
                IpNet::V4(_) => families_ok.0,
                IpNet::V6(_) => families_ok.1,
            };
            // Every usable path the peer may see (RFC 4456 §6 per path), by path id.
            let mut want: Vec<(u32, u32)> = Vec::new();
            if d.live()
                && (is_overlay || family_ok)
                && forwarding.exported(&prefix, loc.best_src(id)) != NONE
            {
                // Our own route is the selected one (step 1): its export as decided.
                if d.local() && loc.best_src(id) == LOCAL && eligible(&clients, LOCAL, peer) {
                    want.push((path_ids.get(LOCAL, 0), d.best_export()));
                }
                // (source, route id): the routes are read again below, as
                // making an outgoing set needs the table mutably.
                found.clear();
                found.extend(
                    paths(loc, id)
                        .filter(|(e, _)| eligible(&clients, e.peer(), peer))
                        .map(|(e, _)| (e.peer(), e.route())),
                );
                for &(from, route) in &found {
                    let Some(src) = peers.get(from as usize) else {
                        continue;
                    };
                    let r = loc.routes.get(route);
                    let (received_id, next_hop) = (r.path_id, r.next_hop);
                    // An overlay path: next hop unchanged, only if it resolves.
                    let next_hop = match (is_overlay, next_hop) {
                        (false, _) => None,
                        (true, Some(nh)) if underlay.resolve(loc, peers, nh).cost().is_some() => {
                            Some(nh)
                        }
                        (true, _) => continue,
                    };
                    let attrs = &loc.routes.get(route).attrs;
                    let med = total_med(attrs.med, src.link_cost());
                    let key = (Arc::as_ptr(attrs) as usize, med, src.remote_id(), next_hop);
                    let export = match cache.get(&key) {
                        Some(&x) => x,
                        None => {
                            let a = interner.intern(match next_hop {
                                Some(nh) => overlay_attributes(
                                    attrs,
                                    src.remote_id(),
                                    *overlay_cluster_id,
                                    nh,
                                ),
                                None => {
                                    reflected_attributes(attrs, med, src.remote_id(), *cluster_id)
                                }
                            });
                            let x = loc.exports.intern(a);
                            cache.insert(key, x);
                            x
                        }
                    };
                    want.push((path_ids.get(from, received_id), export));
                }
                want.sort_unstable();
            }
            let held = out.adv.get(&id).map_or(&[][..], Vec::as_slice);
            if held == want.as_slice() {
                continue;
            }
            for &(path, _) in held {
                if want.binary_search_by_key(&path, |w| w.0).is_err() {
                    batch.withdraw(path, prefix);
                    size += 20;
                }
            }
            for &(path, export) in &want {
                if !held.contains(&(path, export)) {
                    batch.announce(path, prefix, export, loc.exports.get(export));
                    size += 24;
                }
            }
            out.set(id, want, loc);
        }
        let failed = batch.encode(&ctx, buf);
        if !failed.is_empty() {
            let mut w = Batch::default();
            for (path, prefix) in failed {
                if let Some(id) = loc.find(&prefix) {
                    let mut paths = out.adv.get(&id).cloned().unwrap_or_default();
                    paths.retain(|(i, _)| *i != path);
                    out.set(id, paths, loc);
                }
                w.withdraw(path, prefix);
            }
            w.encode(&ctx, buf);
        }
        peers[peer].addpath_out = out;
        size
    }
}
