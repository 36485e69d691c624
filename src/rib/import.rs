//! Import (RFC 4271 §9.1.1 as the fabric configures it): withdrawals, then
//! announcements; each route is stored with its verdict. Accepted: fabric
//! loopbacks with a usable next hop, not looping back to us (RFC 4456 §8),
//! within the neighbor's import limit (routes held back by the limit are
//! accepted, in prefix order, once the count drops below it). The MED used for the decision is the
//! received MED plus the link cost (see [`super::reflect::total_med`]),
//! computed at decision time from the two values stored apart.

use super::adj_in::{is_held, InRoute};
use super::loc_rib::{LocRib, NONE};
use super::nexthop::{mp_next_hop, next_hop_attr, Checked};
use super::overlay::session_check;
use super::policy::FilterReason;
use super::{PeerId, Rib, RibOutput};
use crate::config::ImportLimitAction;
use crate::wire::{AfiSafi, AttrErrorAction, Negotiated, Update};
use ipnet::IpNet;
use smallvec::SmallVec;
use std::net::IpAddr;
use std::sync::Arc;
use tracing::warn;

/// Whether routes of `f` may be exchanged on the session (RFC 4760 §6).
pub(crate) fn family_negotiated(n: &Negotiated, f: AfiSafi) -> bool {
    match f {
        AfiSafi::IPV4_UNICAST => n.ipv4_unicast,
        AfiSafi::IPV6_UNICAST => n.ipv6_unicast,
        _ => false,
    }
}

/// What one UPDATE changed in a peer's Adj-RIB-In.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    pub accepted: usize,
    pub filtered: usize,
    pub withdrawn: usize,
}

impl Rib {
    /// Applies one UPDATE from `peer` (ignored unless its session is up).
    pub fn update(&mut self, peer: PeerId, update: &Update) -> Learned {
        let mut learned = Learned::default();
        if let Some(f) = update.is_end_of_rib() {
            self.end_of_rib_marker(peer, f);
            return learned;
        }
        let Rib {
            peers,
            loc,
            interner,
            policy,
            cfg,
            cluster_id,
            overlay,
            overlay_cluster_id,
            pending,
            announced,
            ..
        } = self;
        let Some(p) = peers.get_mut(peer) else {
            return learned;
        };
        let Some(ctx) = p.session.as_ref().map(|s| s.ctx.clone()) else {
            return learned;
        };
        let neg = ctx.negotiated;
        // RFC 4760 §6: NLRI of a family not negotiated are ignored (logged once per session).
        let mut negotiated = |f: AfiSafi| {
            let ok = family_negotiated(&neg, f);
            if !ok && p.adj_in.ignored_families.insert(f) {
                warn!(peer = %p.cfg.name, family = %f, "ignoring routes of a family not negotiated");
            }
            ok
        };
        let v4_field = !update.nlri.is_empty() || !update.withdrawn.is_empty();
        let use_v4_field = !v4_field || negotiated(AfiSafi::IPV4_UNICAST);
        let a = &update.attrs;
        let use_mp_reach = a.mp_reach.as_ref().is_some_and(|r| negotiated(r.afi_safi));
        let use_mp_unreach = a
            .mp_unreach
            .as_ref()
            .is_some_and(|u| negotiated(u.afi_safi));
        // (prefix, path id): the id only on an ADD-PATH session (RFC 7911 §3).
        let v4_ap = update.add_path;
        let withdrawn = update
            .withdrawn_v4()
            .with_path_ids()
            .map(|(i, n)| (IpNet::V4(n), v4_ap.then_some(i)))
            .filter(|_| use_v4_field)
            .chain(
                a.mp_unreach
                    .iter()
                    .filter(|_| use_mp_unreach)
                    .flat_map(|u| {
                        let ap = u.add_path;
                        u.prefixes()
                            .with_path_ids()
                            .map(move |(i, n)| (n, ap.then_some(i)))
                    }),
            );
        let pid = peer as u32;
        for (prefix, path) in withdrawn {
            if !p.adj_in.stale.is_empty() {
                p.adj_in.refreshed(&prefix);
            }
            learned.withdrawn += usize::from(withdraw(loc, &mut p.adj_in, pid, prefix, path));
        }
        if update.has_reachability() {
            if a.local_pref.is_none() {
                // RFC 4271 §5.1.5: iBGP routes carry LOCAL_PREF; the decision uses 100.
                p.adj_in.missing_local_pref += 1;
                if p.adj_in.missing_local_pref == 1 {
                    warn!(peer = %p.cfg.name, "UPDATE without LOCAL_PREF on iBGP: 100 is used (counted in show neighbors)");
                }
            }
            // Verdicts shared by every prefix of the UPDATE.
            let common: Result<(), FilterReason> = if let Some(issue) = update
                .issues
                .iter()
                .find(|i| i.action == AttrErrorAction::TreatAsWithdraw)
            {
                Err(FilterReason::MalformedAttributes(issue.reason))
            } else if a.originator_id == Some(cfg.router_id) {
                Err(FilterReason::OriginatorIsUs)
            } else if a.cluster_list.contains(if p.cfg.multihop {
                overlay_cluster_id
            } else {
                cluster_id
            }) {
                Err(FilterReason::ClusterLoop)
            } else {
                Ok(())
            };
            let attrs = interner.intern_received(a);
            // RFC 4271 §6.3, RFC 7606 §7.3: an unusable next hop is treat-as-withdraw.
            let v4_nh = next_hop_attr(a.next_hop, &ctx);
            let mp_nh: Option<Checked> = a.mp_reach.as_ref().map(|r| mp_next_hop(r, &ctx));
            // Plain loops into a buffer kept across UPDATEs: the prefixes are
            // walked once more below, with their lookups started ahead.
            announced.clear();
            if use_v4_field {
                let mut it = update.nlri_v4();
                while let Some((i, n)) = it.next_path() {
                    announced.push((IpNet::V4(n), v4_ap.then_some(i), false));
                }
            }
            if let Some(r) = a
                .mp_reach
                .as_ref()
                .filter(|_| use_mp_reach && mp_nh.is_some())
            {
                let (ap, mut it) = (r.add_path, r.prefixes());
                while let Some((i, n)) = it.next_path() {
                    announced.push((n, ap.then_some(i), true));
                }
            }
            // The table lookups miss the cache: keep a few in flight, each
            // started `AHEAD` prefixes before it is needed (more at once
            // only queue up behind the CPU's miss buffers).
            const AHEAD: usize = 8;
            for (prefix, _, _) in announced.iter().take(AHEAD) {
                loc.prefetch(prefix);
            }
            // Route ids of this UPDATE by (next hop, verdict, path id): mostly one.
            let mut ids: SmallVec<[RouteIdOf; 2]> = SmallVec::new();
            for (i, &(prefix, path, mp)) in announced.iter().enumerate() {
                if let Some((next, _, _)) = announced.get(i + AHEAD) {
                    loc.prefetch(next);
                }
                let (next_hop, nh_verdict) = match (mp, &mp_nh) {
                    (true, Some(c)) => c,
                    _ => &v4_nh,
                };
                let path_id = path.unwrap_or(0);
                let next_hop: Option<IpAddr> = *next_hop;
                if !p.adj_in.stale.is_empty() {
                    p.adj_in.refreshed(&prefix);
                }
                let mut verdict = common
                    .clone()
                    .and_then(|()| session_check(policy, overlay, prefix, p.cfg.multihop))
                    .and_then(|()| nh_verdict.clone());
                let Some(id) = loc.dest(prefix) else {
                    // Nowhere to keep it: lost like a route over the import limit.
                    warn!(peer = %p.cfg.name, %prefix, "route table full: route dropped");
                    learned.filtered += 1;
                    continue;
                };
                let old = loc.path_entry(id, pid, path).unwrap_or(NONE);
                let old_route = (old != NONE).then(|| loc.routes.get(old));
                if old_route.is_some_and(|o| {
                    o.next_hop == next_hop && Arc::ptr_eq(&o.attrs, &attrs) && o.verdict == verdict
                }) {
                    // Same route again (e.g. a refresh): nothing to decide.
                    count(&mut learned, &verdict);
                    continue;
                }
                let was_accepted = old_route.is_some_and(|o| o.verdict.is_ok());
                let limit = p.cfg.import_limit;
                if verdict.is_ok() && limit > 0 {
                    let others = p
                        .adj_in
                        .accepted_count()
                        .saturating_sub(usize::from(was_accepted));
                    if others >= limit as usize {
                        let action = p.cfg.import_limit_action;
                        if action != ImportLimitAction::Warn {
                            verdict = Err(FilterReason::ImportLimit);
                        }
                        if !p.limit_hit {
                            p.limit_hit = true;
                            warn!(peer = %p.cfg.name, limit, ?action, "import limit reached");
                            pending.push(RibOutput::LimitReached {
                                peer,
                                action,
                                limit,
                            });
                        }
                    }
                }
                count(&mut learned, &verdict);
                if verdict.is_err()
                    && old_route.is_none_or(|o| o.verdict.is_ok())
                    && filtered_full(p.cfg.filtered_limit, p.adj_in.filtered_count())
                {
                    // No room to keep it as filtered: the prefix is as withdrawn.
                    p.filtered_dropped = p.filtered_dropped.saturating_add(1);
                    if old != NONE {
                        p.adj_in.forget(loc.routes.get(old));
                        loc.remove_entry(id, pid, old);
                        loc.routes.dec(old);
                        if was_accepted {
                            loc.touch(id);
                        }
                    }
                    loc.release(id);
                    continue;
                }
                let accepted = verdict.is_ok();
                let route = match ids
                    .iter()
                    .find(|(n, v, i, _)| *n == next_hop && *v == verdict && *i == path_id)
                {
                    Some(&(_, _, _, r)) => r,
                    None => {
                        let r = loc.routes.intern(InRoute {
                            peer: pid,
                            next_hop,
                            attrs: attrs.clone(),
                            verdict: verdict.clone(),
                            path_id,
                        });
                        ids.push((next_hop, verdict, path_id, r));
                        r
                    }
                };
                if old != NONE {
                    p.adj_in.forget(loc.routes.get(old));
                }
                p.adj_in.add(loc.routes.get(route));
                loc.routes.inc(route);
                loc.set_entry(id, old, route);
                loc.routes.dec(old);
                if accepted || was_accepted {
                    loc.touch(id);
                }
                loc.release(id);
            }
        }
        // An UPDATE of an extended length (RFC 8654) with tiny prefixes
        // leaves no big buffer behind.
        if announced.capacity() > 4096 {
            *announced = Vec::new();
        }
        admit_held(loc, p, pid);
        loc.routes.sweep();
        learned
    }
}

/// A route id of one UPDATE by (next hop, verdict, path id).
type RouteIdOf = (Option<IpAddr>, Result<(), FilterReason>, u32, u32);

/// Whether `filtered` routes fill a `filtered_limit` (0: no limit).
fn filtered_full(limit: u32, filtered: usize) -> bool {
    limit > 0 && filtered >= limit as usize
}

fn count(learned: &mut Learned, verdict: &Result<(), FilterReason>) {
    if verdict.is_ok() {
        learned.accepted += 1;
    } else {
        learned.filtered += 1;
    }
}

/// Removes `peer`'s route of `prefix` with Path Identifier `path` (`None`:
/// its first, the only one without ADD-PATH); false if there was none.
pub(crate) fn withdraw(
    loc: &mut LocRib,
    adj_in: &mut super::AdjRibIn,
    pid: u32,
    prefix: IpNet,
    path: Option<u32>,
) -> bool {
    let Some(id) = loc.find(&prefix) else {
        return false;
    };
    let Some(old) = loc.path_entry(id, pid, path) else {
        return false;
    };
    loc.remove_entry(id, pid, old);
    let r = loc.routes.get(old);
    adj_in.forget(r);
    if r.verdict.is_ok() {
        loc.touch(id);
    }
    loc.routes.dec(old);
    loc.release(id);
    true
}

/// Below the import limit again: routes held back by it are accepted, in prefix order.
pub(crate) fn admit_held(loc: &mut LocRib, p: &mut super::Peer, pid: u32) {
    let limit = p.cfg.import_limit as usize;
    if p.adj_in.accepted_count() < limit {
        p.limit_hit = false;
        // Room again: routes held back by the limit are accepted, in prefix order.
        if p.adj_in.held_count() > 0 {
            let room = limit - p.adj_in.accepted_count();
            let view: &LocRib = loc;
            let mut held: Vec<(IpNet, u32, u32, u32)> = view
                .ids()
                .flat_map(|id| {
                    view.peer_routes(id, pid).filter_map(move |r| {
                        let route = view.routes.get(r);
                        is_held(route).then(|| (view.prefix(id), route.path_id, id, r))
                    })
                })
                .collect();
            held.sort_unstable();
            held.truncate(room);
            for (_, _, id, old) in held {
                let r = loc.routes.get(old);
                let ok = InRoute {
                    verdict: Ok(()),
                    ..r.clone()
                };
                p.adj_in.forget(r);
                p.adj_in.add(&ok);
                let route = loc.routes.intern(ok);
                loc.routes.inc(route);
                loc.set_entry(id, old, route);
                loc.routes.dec(old);
                loc.touch(id);
            }
        }
    }
}
