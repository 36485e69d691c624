//! Views for operators: why a prefix has the best path it has (every
//! candidate, the step each loser lost at, filtered routes with the reason),
//! and route listings for `show routes`.

use super::adj_in::InRoute;
use super::decision::{lost_at, select, Candidate, Step};
use super::flush::{candidates, paths};
use super::loc_rib::{Source, NONE};
use super::policy::FilterReason;
use super::resolve::Resolution;
use super::Rib;
use crate::ctl::{RouteQuery, RouteView, UnknownAttributeView};
use crate::wire::{hex_string, Origin, PathAttributes};
use ipnet::IpNet;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};

/// Everything the decision saw for one prefix.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub prefix: IpNet,
    /// Peer of the best path ("self" for our own route), if any.
    pub best: Option<String>,
    pub candidates: Vec<CandidateExplanation>,
    pub filtered: Vec<FilteredExplanation>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CandidateExplanation {
    /// Neighbor name, or "self".
    pub peer: String,
    pub peer_address: Option<IpAddr>,
    pub interface: Option<String>,
    pub next_hop: Option<IpAddr>,
    pub received_med: Option<u32>,
    /// Link cost added on import; `None` for our own route.
    pub link_cost: Option<u32>,
    /// No cost configured or measured: 2^31 was added.
    pub link_cost_unknown: bool,
    /// MED used by the decision and sent on: received MED + link cost
    /// (overlay paths: as received).
    pub med: u32,
    /// Overlay paths: the underlay cost to the next hop (RFC 4271 §9.1.2.2 e).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interior_cost: Option<u32>,
    /// Overlay paths: the exit's underlay route, "via NEIGHBOR GATEWAY" or "local".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_via: Option<String>,
    pub local_pref: u32,
    pub origin: &'static str,
    pub as_path: String,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Path Identifier from an ADD-PATH neighbor (RFC 7911).
    pub path_id: Option<u32>,
    pub best: bool,
    /// Why it is not the best path.
    pub lost: Option<LossExplanation>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LossExplanation {
    pub step: Step,
    /// The path it lost against (the best one).
    pub against: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FilteredExplanation {
    pub peer: String,
    pub next_hop: Option<IpAddr>,
    pub received_med: Option<u32>,
    pub local_pref: Option<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub reason: FilterReason,
    pub reason_text: String,
}

fn origin_str(o: Option<Origin>) -> &'static str {
    match o {
        Some(Origin::Igp) => "IGP",
        Some(Origin::Egp) => "EGP",
        Some(Origin::Incomplete) => "incomplete",
        None => "-",
    }
}

fn as_path_str(a: &PathAttributes) -> String {
    a.as_path
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_default()
}

impl Rib {
    /// Explains the decision for `prefix` as the Loc-RIB holds it.
    pub fn explain(&self, prefix: IpNet) -> Explanation {
        let mut out = Explanation {
            prefix,
            best: None,
            candidates: Vec::new(),
            filtered: Vec::new(),
        };
        let Some(id) = self.loc.find(&prefix) else {
            return out;
        };
        let loc = &self.loc;
        let overlay = self.overlay.contains(&prefix);
        let underlay = overlay.then(|| self.underlay());
        let mut cands: Vec<Candidate> = Vec::new();
        let mut route_ids: Vec<u32> = Vec::new();
        candidates(
            loc,
            id,
            &self.peers,
            self.cfg.router_id,
            underlay,
            &self.lost,
            &mut cands,
            &mut route_ids,
        );
        let best = select(&cands);
        let winner = best.map(|i| cands[i]);
        out.best = winner.map(|w| self.peer_name(w.source));
        for (i, (c, &r)) in cands.iter().zip(&route_ids).enumerate() {
            let (route, a) = if r == NONE {
                (None, &self.local_attrs)
            } else {
                let route = loc.routes.get(r);
                (Some(route), &route.attrs)
            };
            let peer = match c.source {
                Source::Peer(p) => self.peers.get(p),
                Source::Local => None,
            };
            let lost = winner.filter(|_| best != Some(i)).and_then(|w| {
                let w_route = best.map(|b| route_ids[b]).filter(|&r| r != NONE);
                let w_path =
                    self.shown_path_id(w.source, w_route.map(|r| loc.routes.get(r)), prefix);
                lost_at(c, &w).map(|step| LossExplanation {
                    step,
                    against: match w_path {
                        Some(id) => format!("{} path {id}", self.peer_name(w.source)),
                        None => self.peer_name(w.source),
                    },
                    reason: step.to_string(),
                })
            });
            out.candidates.push(CandidateExplanation {
                peer: self.peer_name(c.source),
                peer_address: peer.map(|p| p.cfg.address),
                interface: peer.and_then(|p| p.cfg.interface.clone()),
                next_hop: route.and_then(|r| r.next_hop),
                received_med: a.med,
                link_cost: peer.filter(|_| !overlay).map(|p| p.link_cost()),
                link_cost_unknown: !overlay && peer.is_some_and(|p| p.cfg.cost.is_none()),
                med: c.med,
                interior_cost: overlay.then_some(c.interior_cost),
                resolved_via: match route.and_then(|r| r.next_hop).filter(|_| overlay) {
                    Some(nh) => Some(self.via(self.resolve(nh))),
                    None => overlay.then(|| "local".to_string()),
                },
                local_pref: c.local_pref,
                origin: origin_str(a.origin),
                as_path: as_path_str(a),
                originator_id: a.originator_id,
                cluster_list: a.cluster_list.to_vec(),
                path_id: self.shown_path_id(c.source, route, prefix),
                best: best == Some(i),
                lost,
            });
        }
        let mut filtered: Vec<(u32, &InRoute, FilterReason)> = loc
            .entries(id)
            .map(|e| (e.peer(), loc.routes.get(e.route())))
            .filter_map(|(p, r)| Some((p, r, self.unusable(overlay, r)?)))
            .collect();
        filtered.sort_by_key(|(p, _, _)| *p);
        for (peer, r, reason) in filtered {
            let Some(p) = self.peers.get(peer as usize) else {
                continue;
            };
            out.filtered.push(FilteredExplanation {
                peer: p.cfg.name.clone(),
                next_hop: r.next_hop,
                received_med: r.attrs.med,
                local_pref: r.attrs.local_pref,
                originator_id: r.attrs.originator_id,
                cluster_list: r.attrs.cluster_list.to_vec(),
                reason_text: reason.to_string(),
                reason,
            });
        }
        out
    }

    /// Why a received route is no candidate: its import verdict, or (overlay)
    /// its next hop does not resolve; `None`: usable.
    fn unusable(&self, overlay: bool, r: &InRoute) -> Option<FilterReason> {
        match (&r.verdict, r.next_hop) {
            (Err(reason), _) => Some(reason.clone()),
            (Ok(()), Some(nh)) if overlay && self.resolve(nh) == Resolution::Unresolved => {
                Some(FilterReason::UnresolvedNextHop)
            }
            _ => None,
        }
    }

    /// An exit's underlay route, for operators.
    fn via(&self, r: Resolution) -> String {
        match r {
            Resolution::Local => "local".into(),
            Resolution::Via { gateway, peer, .. } => {
                format!("{} {gateway}", self.peer_name(Source::Peer(peer)))
            }
            Resolution::Unresolved => "unresolved".into(),
        }
    }

    /// Route listing: best paths only (default), every candidate with its
    /// `best` flag (`all`), filtered routes (`filtered`), or both.
    pub fn routes(&self, all: bool, filtered: bool) -> Vec<RouteView> {
        let query = RouteQuery { all, filtered };
        let mut rows: Vec<(IpNet, bool, RouteView)> = Vec::new();
        let loc = &self.loc;
        for id in loc.ids() {
            let dest = &loc.slab[id as usize];
            let prefix = loc.prefix(id);
            let overlay = self.overlay.contains(&prefix);
            if query.all || !query.filtered {
                let best = loc.best_source(id);
                if dest.local() && (query.all || best == Some(Source::Local)) {
                    let v = self.view(prefix, Source::Local, None, &self.local_attrs);
                    rows.push((prefix, best == Some(Source::Local), v));
                }
                for (e, r) in paths(loc, id) {
                    let source = Source::Peer(e.peer() as usize);
                    let is_best = best == Some(source) && e.route() == dest.best_route();
                    if query.all || is_best {
                        let mut v = self.view(prefix, source, r.next_hop, &r.attrs);
                        v.path_id = self.shown_path_id(source, Some(r), prefix);
                        if overlay {
                            // Next hop unchanged, MED as received (no link cost).
                            v.med = r.attrs.med;
                            v.link_cost = None;
                            if let Some(reason) = self.unusable(true, r) {
                                v.status = "unresolved".into();
                                v.reason = Some(reason.to_string());
                            }
                        }
                        rows.push((prefix, is_best, v));
                    }
                }
            }
            if query.filtered && overlay && !query.all {
                for (e, r) in paths(loc, id) {
                    if let Some(reason) = self.unusable(true, r) {
                        let v = self.unusable_view(prefix, e.peer(), r, "unresolved", &reason);
                        rows.push((prefix, false, v));
                    }
                }
            }
            if query.filtered {
                for e in loc.entries(id) {
                    let r = loc.routes.get(e.route());
                    if let Err(reason) = &r.verdict {
                        let v = self.unusable_view(prefix, e.peer(), r, "filtered", reason);
                        rows.push((prefix, false, v));
                    }
                }
            }
        }
        rows.sort_by(|a, b| {
            (a.0, !a.1, &a.2.peer, a.2.path_id).cmp(&(b.0, !b.1, &b.2.peer, b.2.path_id))
        });
        rows.into_iter()
            .map(|(_, best, mut v)| {
                v.best = best;
                v
            })
            .collect()
    }

    /// A route that is no candidate, as listed: MED as received, with the reason.
    fn unusable_view(
        &self,
        prefix: IpNet,
        peer: u32,
        r: &InRoute,
        status: &str,
        reason: &FilterReason,
    ) -> RouteView {
        let mut v = self.view(prefix, Source::Peer(peer as usize), r.next_hop, &r.attrs);
        v.path_id = self.shown_path_id(Source::Peer(peer as usize), Some(r), prefix);
        v.status = status.into();
        v.reason = Some(reason.to_string());
        v.med = r.attrs.med;
        v.link_cost = None;
        v
    }

    /// The path id of a route to show: only from a session that receives
    /// ADD-PATH for the prefix's family (elsewhere it is always 0).
    fn shown_path_id(&self, source: Source, route: Option<&InRoute>, prefix: IpNet) -> Option<u32> {
        let (Source::Peer(p), Some(r)) = (source, route) else {
            return None;
        };
        let family = match prefix {
            IpNet::V4(_) => crate::wire::AfiSafi::IPV4_UNICAST,
            IpNet::V6(_) => crate::wire::AfiSafi::IPV6_UNICAST,
        };
        let session = self.peers.get(p)?.session.as_ref()?;
        session
            .ctx
            .negotiated
            .add_path_receive
            .get(family)
            .then_some(r.path_id)
    }

    fn view(
        &self,
        prefix: IpNet,
        source: Source,
        next_hop: Option<IpAddr>,
        a: &PathAttributes,
    ) -> RouteView {
        let peer = match source {
            Source::Peer(p) => self.peers.get(p),
            Source::Local => None,
        };
        let link_cost = peer.map(|p| p.link_cost());
        RouteView {
            prefix: prefix.to_string(),
            peer: self.peer_name(source),
            next_hop: next_hop.map(|n| n.to_string()),
            interface: peer.and_then(|p| p.cfg.interface.clone()),
            med: match link_cost {
                Some(c) => Some(super::reflect::total_med(a.med, c)),
                None => a.med,
            },
            local_pref: a.local_pref,
            origin: a.origin.map(|o| origin_str(Some(o)).to_string()),
            as_path: as_path_str(a),
            originator_id: a.originator_id.map(|o| o.to_string()),
            cluster_list: a.cluster_list.iter().map(|c| c.to_string()).collect(),
            status: if peer.is_some() {
                "accepted"
            } else {
                "originated"
            }
            .into(),
            reason: None,
            path_id: None,
            best: false,
            received_med: a.med,
            link_cost,
            kernel: None,
            atomic_aggregate: a.atomic_aggregate,
            aggregator: a.aggregator.map(|g| format!("{} {}", g.asn, g.address)),
            communities: a
                .communities
                .iter()
                .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
                .collect(),
            extended_communities: a
                .extended_communities
                .iter()
                .map(|c| hex_string(c))
                .collect(),
            large_communities: a
                .large_communities
                .iter()
                .map(|[g, l1, l2]| format!("{g}:{l1}:{l2}"))
                .collect(),
            unknown_attributes: a
                .unknown
                .iter()
                .map(|u| UnknownAttributeView {
                    code: u.code,
                    flags: u.flags,
                    value: hex_string(&u.value),
                })
                .collect(),
        }
    }
}
