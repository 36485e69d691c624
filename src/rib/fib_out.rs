//! Kernel routes are pulled, as UPDATEs are: [`Rib::flush`] marks each dest
//! whose kernel route changed in one bitset (`LocRib::fib_queue`, one bit per
//! dest, however often it changed), and the FIB asks for the next batch when
//! it can take more ([`Rib::poll_fib`]); the answer is the route in force at
//! that moment, not the history of changes. Memory follows the table, never
//! the churn: a burst over the whole table holds a bit per prefix, and at
//! most the batch the FIB asked for as values. A dest stays allocated while
//! queued (`LocRib::release`), so its id names its prefix until the FIB has
//! been told that the route is gone.
//!
//! With [`Rib::set_export_after_kernel`] (the runtime, whenever a FIB runs),
//! a route replacing another is announced only once the kernel holds it: the flush marks
//! the dest in `LocRib::kernel_wait`, encoding skips its announcement (a
//! withdrawal goes at once), and when the FIB says the batch that carried it
//! is applied ([`Rib::fib_applied`]) it is queued for the peers again. A
//! neighbor therefore never sends us traffic for a path our kernel does not
//! follow yet (BIRD writes its kernel routes before it sends UPDATEs, too).
//! A session's initial table is sent as it stands, and a prefix's first
//! route at once: no old path to loop through, and a table learned in bulk
//! is not held to the kernel's pace.

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
    /// With [`Rib::set_export_after_kernel`], every call is one batch for
    /// [`Rib::fib_applied`].
    pub fn poll_fib(&mut self, max: usize, out: &mut Vec<BestRoute>) -> usize {
        let mut n = 0;
        let mut waiting = Vec::new();
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
            if self.loc.kernel_wait.contains(id) {
                waiting.push(id);
            }
            n += 1;
            // Held for this answer only: a dest without paths goes now.
            self.loc.release(id);
        }
        if self.export_after_kernel {
            self.fib_inflight.push_back(waiting);
        }
        n
    }

    /// Whether a route replacing another waits for the kernel before it is announced
    /// (off by default: tests and simulations without a FIB).
    pub fn set_export_after_kernel(&mut self, on: bool) {
        self.export_after_kernel = on;
        if !on {
            while !self.fib_inflight.is_empty() {
                self.fib_applied();
            }
            while let Some(id) = self.loc.kernel_wait.next() {
                self.queue_export(id);
            }
        }
    }

    /// The FIB applied the oldest batch it pulled ([`Rib::poll_fib`]): its
    /// routes that waited for the kernel are queued for the peers, unless a
    /// newer change of theirs is still to be pulled.
    pub fn fib_applied(&mut self) {
        let Some(ids) = self.fib_inflight.pop_front() else {
            return;
        };
        for id in ids {
            if !self.loc.fib_queue.contains(id) && self.loc.kernel_wait.remove(id) {
                self.queue_export(id);
            }
        }
    }

    /// Batches pulled and not yet applied.
    pub fn fib_in_flight(&self) -> usize {
        self.fib_inflight.len()
    }

    /// Dest `id` for every established session and update group: encoding
    /// compares it with what each holds, so a peer it does not concern sends nothing.
    fn queue_export(&mut self, id: u32) {
        for p in self.peers.iter_mut().filter(|p| p.session.is_some()) {
            if p.adj_out.cursor.is_none() {
                p.adj_out.mark(id);
            }
        }
        for g in self.groups.iter_mut().filter(|g| g.following > 0) {
            g.queue.mark(id);
        }
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
        // Taken and applied at once.
        self.fib_applied();
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
