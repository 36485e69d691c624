//! The batch: decide the dirty prefixes, then bring every established peer's
//! Adj-RIB-Out in line (full table + End-of-RIB for new sessions, only the
//! changed prefixes otherwise, ROUTE-REFRESH answers), packed by attribute set.

use super::adj_out::{end_of_rib, OutBatch};
use super::decision::{select, Candidate};
use super::export::split_messages;
use super::intern::{FastMap, Interner};
use super::loc_rib::{Best, Dest, Path, Source};
use super::reflect::{may_send, reflected_attributes, total_med, DEFAULT_LOCAL_PREF};
use super::{Peer, Rib, RibOutput};
use crate::wire::{
    Message, Origin, PathAttributes, RouteRefresh, AFI_IPV4, AFI_IPV6, SAFI_UNICAST,
};
use bytes::BytesMut;
use ipnet::IpNet;
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
pub(super) fn path_candidate(path: &Path, peer: &Peer) -> Candidate {
    let a = &path.attrs;
    Candidate {
        source: Source::Peer(path.peer),
        local_pref: a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
        origin: a.origin.unwrap_or(Origin::Incomplete),
        med: total_med(a.med, peer.link_cost()),
        cluster_len: a.cluster_list.len(),
        originator: a.originator_id.unwrap_or_else(|| peer.remote_id()),
        address: peer.cfg.address,
    }
}

/// Candidates of `dest` into `out`: our own route first, then the paths in order.
pub(super) fn candidates(
    dest: &Dest,
    peers: &[Peer],
    router_id: Ipv4Addr,
    out: &mut Vec<Candidate>,
) {
    out.clear();
    if dest.local {
        out.push(local_candidate(router_id));
    }
    out.extend(
        dest.paths
            .iter()
            .filter_map(|p| peers.get(p.peer).map(|peer| path_candidate(p, peer))),
    );
}

/// A prefix whose advertised best changed, with what is advertised now.
type Changed = (IpNet, Option<(Source, Arc<PathAttributes>)>);

type ExportCache = FastMap<(usize, u32, Ipv4Addr), Arc<PathAttributes>>;

struct Decider<'a> {
    peers: &'a [Peer],
    router_id: Ipv4Addr,
    cluster_id: Ipv4Addr,
    local_attrs: &'a Arc<PathAttributes>,
    interner: &'a mut Interner,
    /// Outgoing attributes per (received set, MED, originator) within one flush.
    cache: ExportCache,
    scratch: Vec<Candidate>,
}

impl Decider<'_> {
    fn decide(&mut self, dest: &Dest) -> Option<Best> {
        candidates(dest, self.peers, self.router_id, &mut self.scratch);
        let i = select(&self.scratch)?;
        let c = self.scratch[i];
        let Source::Peer(id) = c.source else {
            return Some(Best {
                source: Source::Local,
                export: self.local_attrs.clone(),
                fib: None,
            });
        };
        let path = dest.paths.iter().find(|p| p.peer == id)?;
        let remote_id = self.peers.get(path.peer)?.remote_id();
        let key = (Arc::as_ptr(&path.attrs) as usize, c.med, remote_id);
        let (interner, cluster_id) = (&mut *self.interner, self.cluster_id);
        let export = self
            .cache
            .entry(key)
            .or_insert_with(|| {
                interner.intern(reflected_attributes(
                    &path.attrs,
                    c.med,
                    remote_id,
                    cluster_id,
                ))
            })
            .clone();
        Some(Best {
            source: c.source,
            export,
            fib: Some((path.next_hop, path.peer)),
        })
    }
}

fn same_export(a: &Option<Best>, b: &Option<Best>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.source == b.source && Arc::ptr_eq(&a.export, &b.export),
        (None, None) => true,
        _ => false,
    }
}

impl Rib {
    /// Runs the decision for every dirty prefix in one batch and returns what
    /// to send, per peer, plus forwarding changes and import limit reports.
    pub fn flush(&mut self) -> Vec<RibOutput> {
        let mut out = std::mem::take(&mut self.pending);
        let Rib {
            cfg,
            cluster_id,
            peers,
            loc,
            interner,
            local_attrs,
            ..
        } = self;
        let dirty = loc.take_dirty();
        let mut changed: Vec<Changed> = Vec::new();
        let mut decider = Decider {
            peers: &*peers,
            router_id: cfg.router_id,
            cluster_id: *cluster_id,
            local_attrs: &*local_attrs,
            interner: &mut *interner,
            cache: ExportCache::default(),
            scratch: Vec::new(),
        };
        for prefix in dirty {
            let Some(dest) = loc.dests.get_mut(&prefix) else {
                continue;
            };
            let new = decider.decide(dest);
            let fib = new.as_ref().and_then(|b| b.fib);
            if dest.best.as_ref().and_then(|b| b.fib) != fib {
                out.push(RibOutput::BestChanged { prefix, best: fib });
            }
            if !same_export(&dest.best, &new) {
                changed.push((prefix, new.as_ref().map(|b| (b.source, b.export.clone()))));
            }
            dest.best = new;
            if dest.is_empty() {
                loc.dests.remove(&prefix);
            }
        }

        let clients: Vec<bool> = peers.iter().map(|p| p.cfg.rr_client).collect();
        let eligible = |source: Source, to: usize| {
            let from_client = match source {
                Source::Peer(p) => clients.get(p).copied().unwrap_or(false),
                Source::Local => true,
            };
            may_send(source, from_client, to, clients[to])
        };
        for (id, p) in peers.iter_mut().enumerate() {
            let Some(session) = &p.session else {
                continue;
            };
            let ctx = &session.ctx;
            let mut buf = BytesMut::new();
            let mut batch = OutBatch::default();
            if p.full_sync {
                p.full_sync = false;
                p.refresh.clear();
                for (prefix, dest) in &loc.dests {
                    let desired = dest
                        .best
                        .as_ref()
                        .filter(|b| eligible(b.source, id) && ctx.next_hop_for(prefix).is_some());
                    p.adj_out
                        .set(*prefix, desired.map(|b| &b.export), &mut batch);
                }
                batch.encode(ctx, &mut buf);
                end_of_rib(ctx, &mut buf);
            } else {
                for (prefix, best) in &changed {
                    let desired = best.as_ref().filter(|(source, _)| {
                        eligible(*source, id) && ctx.next_hop_for(prefix).is_some()
                    });
                    p.adj_out.set(*prefix, desired.map(|(_, a)| a), &mut batch);
                }
                batch.encode(ctx, &mut buf);
                for afi in std::mem::take(&mut p.refresh) {
                    if afi != AFI_IPV4 && afi != AFI_IPV6 {
                        continue;
                    }
                    // RFC 7313 §4: bracket the re-sent routes by BoRR (1) / EoRR (2).
                    let enhanced = ctx.negotiated.enhanced_route_refresh;
                    let marker = |subtype, buf: &mut BytesMut| {
                        let m = Message::RouteRefresh(RouteRefresh {
                            afi,
                            subtype,
                            safi: SAFI_UNICAST,
                        });
                        if let Err(e) = m.encode(&ctx.negotiated, buf) {
                            tracing::warn!("cannot encode ROUTE-REFRESH: {e}");
                        }
                    };
                    if enhanced {
                        marker(1, &mut buf);
                    }
                    let mut again = OutBatch::default();
                    for (prefix, attrs) in &p.adj_out.sent {
                        let family = match prefix {
                            IpNet::V4(_) => AFI_IPV4,
                            IpNet::V6(_) => AFI_IPV6,
                        };
                        if family == afi {
                            again.announce(*prefix, attrs);
                        }
                    }
                    again.encode(ctx, &mut buf);
                    if enhanced {
                        marker(2, &mut buf);
                    }
                }
            }
            if !buf.is_empty() {
                out.push(RibOutput::Send {
                    peer: id,
                    messages: split_messages(buf.freeze()),
                });
            }
        }
        interner.maybe_purge();
        out
    }
}
