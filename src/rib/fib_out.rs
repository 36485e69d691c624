//! Kernel routes are pulled, as UPDATEs are: [`Rib::flush`] marks each dest
//! whose kernel route changed in one bitset (`LocRib::fib_queue`, one bit per
//! dest, however often it changed), and the FIB asks for the next batch when
//! it can take more ([`Rib::poll_fib`]); the answer is the route in force at
//! that moment, not the history of changes. Memory follows the table, never
//! the churn: a burst over the whole table holds a bit per prefix, and at
//! most the batch the FIB asked for as values. A dest stays allocated while
//! queued (`LocRib::release`), so its id names its prefix until the FIB has
//! been told that the route is gone.

use super::loc_rib::{LocRib, LOCAL, NONE};
use super::{PeerId, Rib, RibOutput};
use ipnet::IpNet;
use std::net::IpAddr;

/// The kernel route of one prefix as the FIB should install it: via the
/// next hop, out of the interface of the peer it came from (`None`: no
/// route, or our own loopback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BestRoute {
    pub prefix: IpNet,
    pub best: Option<(IpAddr, PeerId)>,
}

impl Rib {
    /// At most `max` prefixes whose kernel route changed since they were last
    /// pulled, each with its route now, appended to `out`; returns how many.
    pub fn poll_fib(&mut self, max: usize, out: &mut Vec<BestRoute>) -> usize {
        let mut n = 0;
        while n < max {
            let Some(id) = self.loc.fib_queue.next() else {
                break;
            };
            let d = &self.loc.slab[id as usize];
            let prefix = self.loc.prefix(id);
            let best = if !d.live() {
                continue;
            } else if self.overlay.contains(&prefix) {
                // Via the underlay route to the next hop, as the last decision resolved it.
                self.resolver.fib.get(&prefix).copied()
            } else {
                underlay_route(&self.loc, self.loc.best_src(id), d.best_route())
            };
            out.push(BestRoute { prefix, best });
            n += 1;
            // Held for this answer only: a dest without paths goes now.
            self.loc.release(id);
        }
        n
    }

    /// Prefixes waiting for [`Rib::poll_fib`].
    pub fn fib_queued(&self) -> usize {
        self.loc.fib_queue.len()
    }

    /// Every queued kernel route change as [`RibOutput::BestChanged`] (tests
    /// and simulations; the runtime pulls batches with [`Rib::poll_fib`]).
    pub fn fib_all(&mut self) -> Vec<RibOutput> {
        let mut routes = Vec::new();
        self.poll_fib(usize::MAX, &mut routes);
        routes
            .into_iter()
            .map(|r| RibOutput::BestChanged {
                prefix: r.prefix,
                best: r.best,
            })
            .collect()
    }
}

/// The kernel route of an underlay dest whose selected path is (`src`, `route`).
pub(super) fn underlay_route(loc: &LocRib, src: u32, route: u32) -> Option<(IpAddr, PeerId)> {
    match src {
        NONE | LOCAL => None,
        p => loc.routes.get(route).next_hop.map(|nh| (nh, p as PeerId)),
    }
}
