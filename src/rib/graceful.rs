//! Graceful restart, helper side (RFC 4724 §4.2): when a GR-capable peer's
//! session drops without a NOTIFICATION, its routes stay (still forwarded and
//! advertised) but marked stale, with the same per-family stale sets as an
//! enhanced route refresh ([`super::refresh`]). A re-learned or withdrawn
//! route loses its mark; the peer's End-of-RIB, a family it no longer
//! preserves, or the deadline purges what is still stale. Time is passed in.

use super::{PeerId, Rib};
use crate::wire::AfiSafi;
use std::time::Instant;
use tracing::info;

impl Rib {
    /// `peer`'s session dropped and it keeps forwarding state for `families`
    /// (RFC 4724 §4.2): its routes of those families stay, marked stale,
    /// until `deadline`; routes of other families leave as in [`Rib::peer_down`].
    pub fn peer_down_graceful(&mut self, peer: PeerId, families: &[AfiSafi], deadline: Instant) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        if families.is_empty() {
            return self.peer_down(peer);
        }
        let name = p.cfg.name.clone();
        // A BoRR in progress is superseded: everything of the family is stale.
        for &f in families {
            self.mark_stale(peer, f);
        }
        let p = &mut self.peers[peer];
        // Families not preserved lose their routes now (RFC 4724 §4.2).
        let drop: Vec<AfiSafi> = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]
            .into_iter()
            .filter(|f| !families.contains(f))
            .collect();
        p.adj_in.new_session();
        self.leave_group(peer);
        let p = &mut self.peers[peer];
        p.adj_out.clear(&mut self.loc);
        p.addpath_out.clear(&mut self.loc);
        p.session = None;
        p.stale_until = Some(deadline);
        for f in drop {
            self.mark_stale(peer, f);
            self.purge_stale(peer, f);
        }
        let stale: usize = families.iter().map(|&f| self.stale_count(peer, f)).sum();
        info!(peer = %name, stale, "graceful restart: routes kept as stale");
    }

    /// The GR peer is back (RFC 4724 §4.2): stale routes of families whose
    /// forwarding state it did not preserve (`preserved`) are purged; the rest
    /// wait for its End-of-RIB until `deadline` (the stale-path time).
    pub fn graceful_session_up(&mut self, peer: PeerId, preserved: &[AfiSafi], deadline: Instant) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.stale_until.is_none() {
            return;
        }
        let gone: Vec<AfiSafi> = p
            .adj_in
            .stale
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| !preserved.contains(f))
            .collect();
        p.stale_until = Some(deadline);
        for f in gone {
            self.purge_stale(peer, f);
        }
        self.settle_stale(peer);
    }

    /// The earliest stale deadline, for the runtime's timer.
    pub fn stale_timeout(&self) -> Option<Instant> {
        self.peers.iter().filter_map(|p| p.stale_until).min()
    }

    /// Purges the stale routes of every peer whose deadline passed; how many.
    pub fn expire_stale(&mut self, now: Instant) -> usize {
        let mut purged = 0;
        for peer in 0..self.peers.len() {
            if self.peers[peer].stale_until.is_some_and(|t| t <= now) {
                let families: Vec<AfiSafi> = self.peers[peer]
                    .adj_in
                    .stale
                    .iter()
                    .map(|(f, _)| *f)
                    .collect();
                for f in families {
                    purged += self.purge_stale(peer, f);
                }
                self.peers[peer].stale_until = None;
                info!(peer = %self.peers[peer].cfg.name, purged, "graceful restart: stale routes purged at the deadline");
            }
        }
        purged
    }

    /// Whether `peer` still has routes kept by graceful restart.
    pub fn graceful_pending(&self, peer: PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| p.stale_until.is_some())
    }

    /// End-of-RIB of `f` from `peer` while helping: purge what is still stale.
    pub(super) fn graceful_end_of_rib(&mut self, peer: PeerId, f: AfiSafi) {
        if self
            .peers
            .get(peer)
            .is_some_and(|p| p.stale_until.is_some())
        {
            let purged = self.purge_stale(peer, f);
            info!(peer = %self.peers[peer].cfg.name, family = %f, purged, "graceful restart: End-of-RIB, stale routes purged");
            self.settle_stale(peer);
        }
    }

    /// No stale family left: the restart is over.
    fn settle_stale(&mut self, peer: PeerId) {
        let p = &mut self.peers[peer];
        if p.adj_in.stale.is_empty() {
            p.stale_until = None;
        }
    }
}

/// Restarting speaker (RFC 4724 §4.1): this node restarted with its
/// forwarding state kept. The restart lasts until every awaited GR neighbor
/// sent End-of-RIB for each family of its session, or until the deadline
/// (the longest restart time); meanwhile OPENs carry the R bit (§3), after
/// it they do not, and the previous run's kernel routes not re-learned go.
#[derive(Debug, Clone)]
pub struct RestartGrace {
    waiting: std::collections::BTreeSet<PeerId>,
    deadline: Option<Instant>,
    over: bool,
    /// Some GR neighbor was awaited (see [`RestartGrace::sweeps`]).
    awaited: bool,
}

impl RestartGrace {
    /// `waiting`: the GR neighbors (enabled ones); `deadline`: when the
    /// restart is over whatever they send.
    pub fn new(waiting: impl IntoIterator<Item = PeerId>, deadline: Option<Instant>) -> Self {
        let waiting: std::collections::BTreeSet<PeerId> = waiting.into_iter().collect();
        RestartGrace {
            awaited: !waiting.is_empty(),
            waiting,
            deadline,
            over: false,
        }
    }

    /// Whether the end of this restart sweeps the previous run's kernel
    /// routes not re-learned. Only when GR neighbors were awaited: with none,
    /// nothing has been re-learned when the restart "ends" at start, and the
    /// FIB's own startup grace keeps those routes while the sessions come up
    /// (a restart without graceful restart neighbors must not cut forwarding).
    pub fn sweeps(&self) -> bool {
        self.awaited
    }

    pub fn is_over(&self) -> bool {
        self.over
    }

    /// When [`progress`](Self::progress) must run even without news.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.filter(|_| !self.over)
    }

    /// A session of `peer` came up without graceful restart: its End-of-RIB is not awaited.
    pub fn session_without_gr(&mut self, peer: PeerId) -> bool {
        self.waiting.remove(&peer)
    }

    /// A neighbor removed by a reload is not awaited.
    pub fn forget(&mut self, peer: PeerId) {
        self.waiting.remove(&peer);
    }

    /// After routes were taken in (or at the deadline): `true` exactly once,
    /// when the restart just ended. A neighbor counts once established and
    /// End-of-RIB arrived for every family negotiated on its session.
    pub fn progress(&mut self, rib: &Rib, now: Instant) -> bool {
        if self.over {
            return false;
        }
        self.waiting.retain(|&peer| {
            let families: Vec<AfiSafi> = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]
                .into_iter()
                .filter(|f| rib.family_negotiated(peer, *f))
                .collect();
            if families.is_empty() {
                return true; // not established (yet)
            }
            let eor = rib.end_of_rib_received(peer);
            !families.iter().all(|f| eor.contains(f))
        });
        if self.waiting.is_empty() || self.deadline.is_some_and(|t| t <= now) {
            self.over = true;
        }
        self.over
    }
}
