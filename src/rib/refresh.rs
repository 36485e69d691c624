//! Enhanced route refresh on the receiving side (RFC 7313 §4.2), and what the
//! peer said about the completeness of its routes (End-of-RIB, RFC 4724 §2).
//!
//! BoRR marks every route of the family the peer sent as stale; a route it
//! announces or withdraws afterwards is no longer stale; EoRR purges the routes
//! still stale. Only the Adj-RIB-In side: re-sending our own table on request
//! is export's business ([`Rib::route_refresh`]).

use super::import::{admit_held, family_negotiated, withdraw};
use super::{PeerId, Rib};
use crate::wire::AfiSafi;
use ipnet::IpNet;
use std::collections::HashSet;
use tracing::{info, warn};

impl Rib {
    /// Whether `afi_safi` was negotiated on `peer`'s current session.
    pub fn family_negotiated(&self, peer: PeerId, afi_safi: AfiSafi) -> bool {
        self.peers
            .get(peer)
            .and_then(|p| p.session.as_ref())
            .is_some_and(|s| family_negotiated(&s.ctx.negotiated, afi_safi))
    }

    /// BoRR from `peer` (RFC 7313 §4.2): its routes of `afi_safi` become stale.
    /// A second BoRR before EoRR starts over.
    pub fn begin_refresh(&mut self, peer: PeerId, afi_safi: AfiSafi) {
        if !self.family_negotiated(peer, afi_safi) {
            return;
        }
        self.mark_stale(peer, afi_safi);
        let p = &self.peers[peer];
        info!(peer = %p.cfg.name, family = %afi_safi, stale = self.stale_count(peer, afi_safi), "Beginning of Route Refresh");
    }

    /// Marks every route of `afi_safi` from `peer` stale (BoRR, or a graceful
    /// restart: [`super::graceful`]), replacing an earlier mark of the family.
    pub(super) fn mark_stale(&mut self, peer: PeerId, afi_safi: AfiSafi) {
        let pid = peer as u32;
        let loc = &self.loc;
        let stale: HashSet<IpNet> = loc
            .ids()
            .filter(|&id| loc.entry(id, pid).is_some())
            .map(|id| loc.prefix(id))
            .filter(|p| family_of(p) == afi_safi)
            .collect();
        let p = &mut self.peers[peer];
        p.adj_in.stale.retain(|(f, _)| *f != afi_safi);
        p.adj_in.stale.push((afi_safi, stale));
    }

    /// EoRR from `peer`: its routes of `afi_safi` not re-announced since BoRR
    /// are withdrawn. Returns how many. Without a BoRR before, nothing happens.
    pub fn end_refresh(&mut self, peer: PeerId, afi_safi: AfiSafi) -> usize {
        let Some(p) = self.peers.get(peer) else {
            return 0;
        };
        if !p.adj_in.stale.iter().any(|(f, _)| *f == afi_safi) {
            if p.session.is_some() {
                warn!(peer = %p.cfg.name, family = %afi_safi, "End of Route Refresh without a beginning: ignored");
            }
            return 0;
        }
        let purged = self.purge_stale(peer, afi_safi);
        info!(peer = %self.peers[peer].cfg.name, family = %afi_safi, purged, "End of Route Refresh");
        purged
    }

    /// Withdraws `peer`'s routes of `afi_safi` still marked stale; how many.
    pub(super) fn purge_stale(&mut self, peer: PeerId, afi_safi: AfiSafi) -> usize {
        let Some(p) = self.peers.get_mut(peer) else {
            return 0;
        };
        let Some(i) = p.adj_in.stale.iter().position(|(f, _)| *f == afi_safi) else {
            return 0;
        };
        let (_, stale) = p.adj_in.stale.swap_remove(i);
        let pid = peer as u32;
        let mut purged = 0;
        let mut stale: Vec<IpNet> = stale.into_iter().collect();
        stale.sort_unstable();
        for prefix in stale {
            // Every path of the prefix (several with ADD-PATH).
            while withdraw(&mut self.loc, &mut p.adj_in, pid, prefix, None) {
                purged += 1;
            }
        }
        admit_held(&mut self.loc, p, pid);
        self.loc.routes.sweep();
        purged
    }

    /// End-of-RIB of `f` from `peer` (RFC 4724 §2): recorded; while helping a
    /// graceful restart, the routes still stale go.
    pub(super) fn end_of_rib_marker(&mut self, peer: PeerId, f: AfiSafi) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.session.is_none() {
            return;
        }
        if p.adj_in.end_of_rib.insert(f) {
            info!(peer = %p.cfg.name, family = %f, "End-of-RIB received");
        }
        self.graceful_end_of_rib(peer, f);
    }

    /// Routes of `afi_safi` from `peer` marked stale by a BoRR and not yet refreshed.
    pub fn stale_count(&self, peer: PeerId, afi_safi: AfiSafi) -> usize {
        self.peers.get(peer).map_or(0, |p| {
            p.adj_in
                .stale
                .iter()
                .filter(|(f, _)| *f == afi_safi)
                .map(|(_, s)| s.len())
                .sum()
        })
    }

    /// Families whose End-of-RIB `peer` sent on its current session (RFC 4724 §2).
    pub fn end_of_rib_received(&self, peer: PeerId) -> Vec<AfiSafi> {
        self.peers.get(peer).map_or_else(Vec::new, |p| {
            p.adj_in.end_of_rib().iter().copied().collect()
        })
    }
}

fn family_of(p: &IpNet) -> AfiSafi {
    match p {
        IpNet::V4(_) => AfiSafi::IPV4_UNICAST,
        IpNet::V6(_) => AfiSafi::IPV6_UNICAST,
    }
}
