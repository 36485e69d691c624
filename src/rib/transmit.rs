//! Pull-based export: a peer's queued prefixes are compared with what it holds
//! and encoded only when its connection can take more (BIRD's
//! `bgp_fire_tx`, quinn-proto's `poll_transmit`). A slow peer costs a queue
//! entry per prefix, never a message per change.

use super::adj_out::{end_of_rib, OutBatch};
use super::export::split_messages;
use super::flush::eligible;
use super::loc_rib::NONE;
use super::overlay::carries;
use super::{PeerId, Rib, RibOutput};
use crate::wire::{Message, RouteRefresh, AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use tracing::warn;

/// Rough size of an attribute set's fixed part in an UPDATE (header, attributes, next hop).
const GROUP_COST: usize = 96;

fn nlri_len(p: &IpNet) -> usize {
    1 + usize::from(p.prefix_len()).div_ceil(8)
}

fn family(p: &IpNet) -> u16 {
    match p {
        IpNet::V4(_) => AFI_IPV4,
        IpNet::V6(_) => AFI_IPV6,
    }
}

impl Rib {
    /// Whether [`Rib::poll_transmit`] has something for `peer`.
    pub fn wants_transmit(&self, peer: PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| {
            p.session.is_some() && (p.adj_out.has_work() || p.addpath_out.has_work())
        })
    }

    /// Prefixes queued for `peer` (each at most once).
    pub fn queued(&self, peer: PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.adj_out.queued())
    }

    /// Encodes UPDATEs for `peer` from its queue, about `budget` bytes (at
    /// least one message when there is work): withdrawals, then packed runs
    /// by attribute set; End-of-RIB once the initial table is out. The
    /// Adj-RIB-Out records only what was encoded. An attribute set that
    /// cannot be encoded for this session becomes a withdrawal and a log
    /// line. `None`: nothing to send.
    pub fn poll_transmit(&mut self, peer: PeerId, budget: usize) -> Option<Bytes> {
        if !self.wants_transmit(peer) {
            return None;
        }
        let mut buf = BytesMut::new();
        if let Some(p) = self.peers.get_mut(peer) {
            buf.extend_from_slice(&p.adj_out.prelude.split());
        }
        // Families with ADD-PATH send go first, every path ([`super::addpath_out`]).
        let mut size = self.transmit_add_paths(peer, budget, &mut buf);
        let clients: Vec<bool> = self.peers.iter().map(|p| p.cfg.rr_client).collect();
        let Rib {
            peers,
            loc,
            forwarding,
            overlay,
            ..
        } = self;
        let p = peers.get_mut(peer)?;
        let multihop = p.cfg.multihop;
        let ctx = &p.session.as_ref()?.ctx;
        let q = &mut p.adj_out;
        let mut batch = OutBatch::default();
        // Families this session carries best paths of (a next hop self
        // exists, no ADD-PATH send).
        let add_path = ctx.negotiated.add_path_send;
        let v4_ok = ctx.v4_route_next_hop().is_some() && !add_path.ipv4_unicast;
        let v6_ok = ctx.v6_route_next_hop().is_some() && !add_path.ipv6_unicast;
        while size < budget {
            let Some(id) = q.next(loc.slab.len()) else {
                break;
            };
            let d = &loc.slab[id as usize];
            let prefix = d.prefix;
            let want = if d.live()
                && carries(multihop, overlay.contains(&prefix))
                && eligible(&clients, forwarding.exported(&prefix, d.best_src), peer)
                && match prefix {
                    IpNet::V4(_) => v4_ok,
                    IpNet::V6(_) => v6_ok,
                } {
                d.best_export
            } else {
                NONE
            };
            if want == q.get(id) {
                continue;
            }
            if want == NONE {
                batch.withdraw(prefix);
            } else if batch.announce(prefix, want, loc.exports.get(want)) {
                size += GROUP_COST;
            }
            size += nlri_len(&prefix);
            q.set(id, want, loc);
        }
        let failed = batch.encode(ctx, &mut buf);
        if !failed.is_empty() {
            warn!(peer = %p.cfg.name, "{} prefixes withdrawn: their attributes cannot be encoded for this session", failed.len());
            let mut w = OutBatch::default();
            for prefix in failed {
                if let Some(id) = loc.find(&prefix) {
                    q.set(id, NONE, loc);
                }
                w.withdraw(prefix);
            }
            w.encode(ctx, &mut buf);
        }
        if q.idle() && p.addpath_out.idle() {
            if std::mem::take(&mut q.eor) {
                end_of_rib(ctx, &mut buf);
            }
            for afi in std::mem::take(&mut q.eorr) {
                refresh_marker(ctx, afi, 2, &mut buf);
            }
        }
        (!buf.is_empty()).then(|| buf.freeze())
    }

    /// Everything queued, for every peer, as [`RibOutput::Send`] (tests and
    /// simulations that do not model a connection).
    pub fn transmit_all(&mut self) -> Vec<RibOutput> {
        (0..self.peers.len())
            .filter_map(|peer| {
                let chunk = self.poll_transmit(peer, usize::MAX)?;
                Some(RibOutput::Send {
                    peer,
                    messages: split_messages(chunk),
                })
            })
            .collect()
    }

    /// ROUTE-REFRESH from `peer` (RFC 2918): re-send our routes of `afi`,
    /// bracketed by BoRR/EoRR with enhanced route refresh (RFC 7313 §4).
    pub fn route_refresh(&mut self, peer: PeerId, afi: u16) {
        if afi != AFI_IPV4 && afi != AFI_IPV6 {
            return;
        }
        let Rib { peers, loc, .. } = self;
        let Some(p) = peers.get_mut(peer) else {
            return;
        };
        let Some(s) = &p.session else {
            return;
        };
        let q = &mut p.adj_out;
        if s.ctx.negotiated.enhanced_route_refresh {
            if q.eorr.contains(&afi) {
                return;
            }
            refresh_marker(&s.ctx, afi, 1, &mut q.prelude);
            q.eorr.push(afi);
        }
        p.addpath_out.resend(afi, loc);
        let slab = &loc.slab;
        q.resend(
            |id| family(&slab[id as usize].prefix) == afi,
            &mut loc.exports,
        );
    }
}

/// BoRR (1) or EoRR (2) for `afi` (RFC 7313 §4).
fn refresh_marker(ctx: &super::ExportContext, afi: u16, subtype: u8, buf: &mut BytesMut) {
    let m = Message::RouteRefresh(RouteRefresh {
        afi,
        subtype,
        safi: SAFI_UNICAST,
    });
    if let Err(e) = m.encode(&ctx.negotiated, buf) {
        warn!("cannot encode ROUTE-REFRESH: {e}");
    }
}

#[cfg(test)]
#[path = "transmit_tests.rs"]
mod tests;
