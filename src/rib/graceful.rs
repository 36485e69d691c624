//! Graceful restart, helper side (RFC 4724 §4.2): when a GR-capable peer's
//! session drops without a NOTIFICATION, its routes stay (still forwarded and
//! advertised) but marked stale, with the same per-family stale sets as an
//! enhanced route refresh ([`super::refresh`]). A re-learned or withdrawn
//! route loses its mark; the peer's End-of-RIB, a family it no longer
//! preserves, or the deadline purges what is still stale. Time is passed in.

use super::{PeerId, Rib};
use crate::wire::AfiSafi;
use std::collections::BTreeSet;
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
///
/// With [`defer_output`](Self::defer_output) it also defers route selection
/// towards the neighbors (§4.1): nothing is sent to any peer, not even
/// End-of-RIB, until End-of-RIB came from every awaited GR neighbor except
/// those restarting too (R bit in their OPEN: they wait for ours, §4.1), or
/// until the deadline, which is the selection-deferral timer. A table sent
/// earlier would lack what those neighbors still have to send, and a helper
/// flushes the stale routes it kept for us on our End-of-RIB (§4.2).
#[derive(Debug, Clone)]
pub struct RestartGrace {
    waiting: BTreeSet<PeerId>,
    /// Of `waiting`, the peers whose session's OPEN carried the R bit: still
    /// awaited for the end of the restart (the sweep), not for the deferral.
    restarting: BTreeSet<PeerId>,
    deadline: Option<Instant>,
    over: bool,
    /// Some GR neighbor was awaited (see [`RestartGrace::sweeps`]).
    awaited: bool,
    deferral: Deferral,
}

/// Output of the restarting speaker (RFC 4724 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deferral {
    /// Not deferred (we did not restart), or released and reported.
    Off,
    Holding,
    /// Released by the last [`RestartGrace::progress`], not reported yet.
    Released(Release),
}

/// Why the deferred output was released (RFC 4724 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// End-of-RIB came from every graceful-restart neighbor awaited.
    EndOfRib,
    /// The deadline passed (the selection-deferral timer).
    Timer,
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Release::EndOfRib => "End-of-RIB from every graceful-restart neighbor",
            Release::Timer => "deferral timer (restart_time) expired",
        })
    }
}

impl RestartGrace {
    /// `waiting`: the GR neighbors (enabled ones); `deadline`: when the
    /// restart is over whatever they send.
    pub fn new(waiting: impl IntoIterator<Item = PeerId>, deadline: Option<Instant>) -> Self {
        let waiting: BTreeSet<PeerId> = waiting.into_iter().collect();
        RestartGrace {
            awaited: !waiting.is_empty(),
            waiting,
            restarting: BTreeSet::new(),
            deadline,
            over: false,
            deferral: Deferral::Off,
        }
    }

    /// We restarted with forwarding state kept: defer our output (RFC 4724
    /// §4.1) until the awaited End-of-RIBs or the deadline.
    pub fn defer_output(mut self) -> Self {
        self.deferral = Deferral::Holding;
        self
    }

    /// Whether output to the peers is held back now.
    pub fn holds_output(&self) -> bool {
        self.deferral == Deferral::Holding
    }

    /// The deferral just ended in [`progress`](Self::progress): why (once).
    pub fn take_release(&mut self) -> Option<Release> {
        match self.deferral {
            Deferral::Released(why) => {
                self.deferral = Deferral::Off;
                Some(why)
            }
            _ => None,
        }
    }

    /// The neighbors whose End-of-RIB the deferral still waits for.
    pub fn deferral_waits_for(&self) -> impl Iterator<Item = PeerId> + '_ {
        let holding = self.holds_output();
        self.waiting
            .iter()
            .copied()
            .filter(move |p| holding && !self.restarting.contains(p))
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
        self.restarting.remove(&peer);
        self.waiting.remove(&peer)
    }

    /// A session of `peer` came up with graceful restart; `restarting`: the
    /// R bit of its OPEN. A restarting peer defers its output until our
    /// End-of-RIB (RFC 4724 §4.1), so our deferral does not wait for it (two
    /// restarting speakers would wait for each other until the deadline); the
    /// end of our restart still does (its routes must be back before the sweep).
    pub fn session_with_gr(&mut self, peer: PeerId, restarting: bool) {
        if restarting {
            self.restarting.insert(peer);
        } else {
            self.restarting.remove(&peer);
        }
    }

    /// A neighbor removed by a reload is not awaited.
    pub fn forget(&mut self, peer: PeerId) {
        self.restarting.remove(&peer);
        self.waiting.remove(&peer);
    }

    /// After routes were taken in (or at the deadline): `true` exactly once,
    /// when the restart just ended. A neighbor counts once established and
    /// End-of-RIB arrived for every family negotiated on its session.
    /// The deferred output is released on the way ([`take_release`](Self::take_release)).
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
        let timer = self.deadline.is_some_and(|t| t <= now);
        if self.holds_output() {
            if self.waiting.iter().all(|p| self.restarting.contains(p)) {
                self.deferral = Deferral::Released(Release::EndOfRib);
            } else if timer {
                self.deferral = Deferral::Released(Release::Timer);
            }
        }
        if self.waiting.is_empty() || timer {
            self.over = true;
        }
        self.over
    }
}
