//! Import (RFC 4271 §9.1.1 as the fabric configures it): withdrawals, then
//! announcements; each route is stored with its verdict. Accepted: fabric
//! loopbacks with a usable next hop, not looping back to us (RFC 4456 §8),
//! within the neighbor's import limit (routes held back by the limit are
//! accepted, in prefix order, once the count drops below it). The MED used for the decision is the
//! received MED plus the link cost (see [`super::reflect::total_med`]),
//! computed at decision time from the two values stored apart.

use super::adj_in::{is_held, usable_next_hop, InRoute};
use super::loc_rib::NONE;
use super::policy::FilterReason;
use super::{PeerId, Rib, RibOutput};
use crate::config::ImportLimitAction;
use crate::wire::{AttrErrorAction, Update};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;
use tracing::warn;

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
        let Rib {
            peers,
            loc,
            interner,
            policy,
            cfg,
            cluster_id,
            pending,
            ..
        } = self;
        let Some(p) = peers.get_mut(peer) else {
            return learned;
        };
        if p.session.is_none() || update.is_end_of_rib().is_some() {
            return learned;
        }
        let pid = peer as u32;
        for prefix in update.withdrawn_all() {
            let Some(id) = loc.find(&prefix) else {
                continue;
            };
            let old = loc.remove_entry(id, pid);
            if old == NONE {
                continue;
            }
            learned.withdrawn += 1;
            let r = loc.routes.get(old);
            p.adj_in.forget(r);
            if r.verdict.is_ok() {
                loc.touch(id);
            }
            loc.routes.dec(old);
            loc.release(id);
        }
        if update.has_reachability() {
            let a = &update.attrs;
            // Verdicts shared by every prefix of the UPDATE.
            let common: Result<(), FilterReason> = if let Some(issue) = update
                .issues
                .iter()
                .find(|i| i.action == AttrErrorAction::TreatAsWithdraw)
            {
                Err(FilterReason::MalformedAttributes(issue.reason))
            } else if a.originator_id == Some(cfg.router_id) {
                Err(FilterReason::OriginatorIsUs)
            } else if a.cluster_list.contains(cluster_id) {
                Err(FilterReason::ClusterLoop)
            } else {
                Ok(())
            };
            let attrs = interner.intern(a.without_reach());
            let v4_nh = a.next_hop.map(IpAddr::V4);
            let mp_nh = a
                .mp_reach
                .as_ref()
                .and_then(|r| usable_next_hop(&r.next_hop));
            let announced: Vec<(IpNet, Option<IpAddr>)> = update
                .nlri_v4()
                .map(|n| (IpNet::V4(n), v4_nh))
                .chain(
                    a.mp_reach
                        .iter()
                        .flat_map(|r| r.prefixes())
                        .map(|n| (n, mp_nh)),
                )
                .collect();
            // The table lookups miss the cache: start them all at once.
            for (prefix, _) in &announced {
                loc.prefetch(prefix);
            }
            // Route ids of this UPDATE by (next hop, verdict): mostly one.
            let mut ids: Vec<(Option<IpAddr>, Result<(), FilterReason>, u32)> = Vec::new();
            for (prefix, next_hop) in announced {
                let mut verdict = common
                    .clone()
                    .and_then(|()| policy.check(prefix))
                    .and_then(|()| next_hop.map(|_| ()).ok_or(FilterReason::NoNextHop));
                let Some(id) = loc.dest(prefix) else {
                    // Nowhere to keep it: lost like a route over the import limit.
                    warn!(peer = %p.cfg.name, %prefix, "route table full: route dropped");
                    learned.filtered += 1;
                    continue;
                };
                let old = loc.entry(id, pid).unwrap_or(NONE);
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
                    && !old_route.is_some_and(|o| o.verdict.is_err())
                    && filtered_full(p.cfg.filtered_limit, p.adj_in.filtered_count())
                {
                    // No room to keep it as filtered: the prefix is as withdrawn.
                    p.filtered_dropped = p.filtered_dropped.saturating_add(1);
                    if old != NONE {
                        p.adj_in.forget(loc.routes.get(old));
                        loc.remove_entry(id, pid);
                        loc.routes.dec(old);
                        if was_accepted {
                            loc.touch(id);
                        }
                    }
                    loc.release(id);
                    continue;
                }
                let accepted = verdict.is_ok();
                let route = match ids.iter().find(|(n, v, _)| *n == next_hop && *v == verdict) {
                    Some(&(_, _, r)) => r,
                    None => {
                        let r = loc.routes.intern(InRoute {
                            next_hop,
                            attrs: attrs.clone(),
                            verdict: verdict.clone(),
                        });
                        ids.push((next_hop, verdict, r));
                        r
                    }
                };
                if old != NONE {
                    p.adj_in.forget(loc.routes.get(old));
                }
                p.adj_in.add(loc.routes.get(route));
                loc.routes.inc(route);
                loc.set_entry(id, pid, route);
                loc.routes.dec(old);
                if accepted || was_accepted {
                    loc.touch(id);
                }
                loc.release(id);
            }
        }
        let limit = p.cfg.import_limit as usize;
        if p.adj_in.accepted_count() < limit {
            p.limit_hit = false;
            // Room again: routes held back by the limit are accepted, in prefix order.
            if p.adj_in.held_count() > 0 {
                let room = limit - p.adj_in.accepted_count();
                let mut held: Vec<(IpNet, u32, u32)> = loc
                    .ids()
                    .filter_map(|id| {
                        let r = loc.entry(id, pid)?;
                        is_held(loc.routes.get(r)).then(|| (loc.slab[id as usize].prefix, id, r))
                    })
                    .collect();
                held.sort_unstable();
                held.truncate(room);
                for (_, id, old) in held {
                    let r = loc.routes.get(old);
                    let ok = InRoute {
                        verdict: Ok(()),
                        ..r.clone()
                    };
                    p.adj_in.forget(r);
                    p.adj_in.add(&ok);
                    let route = loc.routes.intern(ok);
                    loc.routes.inc(route);
                    loc.set_entry(id, pid, route);
                    loc.routes.dec(old);
                    loc.touch(id);
                }
            }
        }
        loc.routes.sweep();
        learned
    }
}

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
