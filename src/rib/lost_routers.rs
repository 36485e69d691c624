//! Path hunting after a session loss. When a neighbor's session goes down
//! without graceful restart, its routes leave at once, but the paths our
//! other neighbors advertised *through* it (its router id in their
//! ORIGINATOR_ID or CLUSTER_LIST: every node reflects with its router id as
//! cluster id, RFC 4456 §7, BIRD's default too) are still there until those
//! neighbors have processed the same loss. Choosing one of them sends traffic
//! to a neighbor that may be choosing us at the same moment: a micro-loop
//! until both UPDATEs cross (the ring-and-chord lab lost echoes to it).
//!
//! So for [`LOST_ROUTER_WINDOW`] after the loss, the decision prefers a path
//! that names none of the lost routers (a step after ORIGIN, before MED:
//! [`super::decision`]); when the window ends, every prefix decided while
//! such a path was present is decided again, so the steady state is exactly
//! the usual decision. Only the underlay (link sessions, next hop self,
//! forwarding hop by hop) is concerned: an overlay path keeps its next hop
//! and cannot loop this way, and a multihop session going down does not mean
//! the router is gone. Time is passed in.

use super::{PeerId, Rib};
use crate::wire::PathAttributes;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tracing::debug;

/// How long paths through a lost router are avoided. Long enough for the
/// withdrawals and replacements caused by the loss to cross the neighbors
/// (a few UPDATE round trips: milliseconds on a quiet fabric, the lab saw a
/// loop last past 180 ms under load), short enough that a path through a
/// router that is only unreachable over one link (it is alive, the avoided
/// path was fine) is back in use before anyone notices: a link failure costs
/// at most this long on a path that is not the cheapest.
pub const LOST_ROUTER_WINDOW: Duration = Duration::from_secs(1);

/// Router ids whose session just went down, and the dests decided while a
/// path through one of them was a candidate.
#[derive(Debug, Default)]
pub(super) struct LostRouters {
    /// (router id, end of its window); a few at most.
    routers: Vec<(Ipv4Addr, Instant)>,
    /// Dest ids to decide again when a window ends (may repeat).
    affected: Vec<u32>,
    /// Length of `affected` after its last deduplication.
    compacted: usize,
}

/// Below this many entries `affected` is left as it comes.
const AFFECTED_COMPACT: usize = 4096;

impl LostRouters {
    /// Nothing lost: the decision is the usual one (the common case costs
    /// this check only).
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
    }

    /// Whether a path with these attributes, from a peer whose router id is
    /// `peer_id`, goes through a lost router. A path heard from the lost
    /// router itself came over a session established after the loss (the
    /// old one's paths left with it): fresh, not avoided, so a router coming
    /// back is used again at once.
    pub fn through(&self, attrs: &PathAttributes, peer_id: Ipv4Addr) -> bool {
        let originator = attrs.originator_id.unwrap_or(peer_id);
        self.routers
            .iter()
            .any(|(id, _)| *id != peer_id && (*id == originator || attrs.cluster_list.contains(id)))
    }

    /// Dests decided while a path through a lost router was a candidate.
    /// Kept at most about twice the distinct dests: a window extended again
    /// and again (a session lost over and over) decides the same dests many
    /// times, so the list is sorted and deduplicated whenever it has doubled.
    pub fn note_affected(&mut self, ids: &mut Vec<u32>) {
        if self.routers.is_empty() {
            return;
        }
        self.affected.append(ids);
        if self.affected.len() >= AFFECTED_COMPACT.max(2 * self.compacted) {
            self.affected.sort_unstable();
            self.affected.dedup();
            self.compacted = self.affected.len();
        }
    }

    /// `id` is lost until `until` (a later loss of the same router extends it).
    fn lose(&mut self, id: Ipv4Addr, until: Instant) {
        match self.routers.iter_mut().find(|(r, _)| *r == id) {
            Some((_, t)) => *t = (*t).max(until),
            None => self.routers.push((id, until)),
        }
    }

    fn timeout(&self) -> Option<Instant> {
        self.routers.iter().map(|(_, t)| *t).min()
    }

    /// Drops the routers whose window ended by `now`; if any did, returns
    /// every affected dest (sorted, once each) to decide again.
    fn expire(&mut self, now: Instant) -> Option<Vec<u32>> {
        let before = self.routers.len();
        self.routers.retain(|(_, t)| *t > now);
        if self.routers.len() == before {
            return None;
        }
        let mut ids = std::mem::take(&mut self.affected);
        self.compacted = 0;
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }
}

impl Rib {
    /// [`Rib::peer_down`] for a session that ended without graceful restart
    /// at `now`: if it was a link session, paths through the peer's router
    /// are avoided until `now` + [`LOST_ROUTER_WINDOW`] (see the module).
    pub fn peer_down_at(&mut self, peer: PeerId, now: Instant) {
        let lost = self
            .peers
            .get(peer)
            .filter(|p| !p.cfg.multihop)
            .and_then(|p| p.session.as_ref())
            .map(|s| s.remote_id)
            .filter(|id| !id.is_unspecified());
        self.peer_down(peer);
        if let Some(id) = lost {
            debug!(peer = %self.peers[peer].cfg.name, router_id = %id, window = ?LOST_ROUTER_WINDOW, "session lost: paths through its router avoided");
            self.lost.lose(id, now + LOST_ROUTER_WINDOW);
        }
    }

    /// When [`Rib::expire_lost_routers`] must run (the runtime's timer).
    pub fn lost_router_timeout(&self) -> Option<Instant> {
        self.lost.timeout()
    }

    /// Ends the windows that are over by `now`: the prefixes decided while a
    /// path through one of those routers was a candidate are decided again
    /// at the next flush. Returns how many.
    pub fn expire_lost_routers(&mut self, now: Instant) -> usize {
        let Some(ids) = self.lost.expire(now) else {
            return 0;
        };
        let mut n = 0;
        for id in ids {
            // A dest freed since (or reused: deciding it again is harmless).
            if self.loc.slab.get(id as usize).is_some_and(|d| d.live()) {
                self.loc.touch(id);
                n += 1;
            }
        }
        debug!(
            prefixes = n,
            "lost router window over: prefixes decided again"
        );
        n
    }

    /// The routers whose paths are avoided now (operators, tests).
    pub fn lost_routers(&self) -> Vec<Ipv4Addr> {
        self.lost.routers.iter().map(|(id, _)| *id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_affected_list_stays_near_the_distinct_dests() {
        let now = Instant::now();
        let mut lost = LostRouters::default();
        lost.lose(Ipv4Addr::new(10, 0, 0, 1), now + LOST_ROUTER_WINDOW);
        // The same 5000 dests decided 100 times within one (extended) window.
        for _ in 0..100 {
            let mut ids: Vec<u32> = (0..5000).collect();
            lost.note_affected(&mut ids);
            assert!(ids.is_empty());
            assert!(
                lost.affected.len() <= 2 * 5000 + 5000,
                "{}",
                lost.affected.len()
            );
        }
        let ids = lost.expire(now + LOST_ROUTER_WINDOW).unwrap();
        assert_eq!(ids, (0..5000).collect::<Vec<u32>>());
        // Nothing lost: nothing noted.
        lost.note_affected(&mut vec![7]);
        assert!(lost.affected.is_empty());
    }
}
