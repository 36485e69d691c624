//! Export only what this node can forward: a path learned from a peer whose
//! kernel route cannot be installed (another protocol holds the slot, or the
//! kernel refuses it) is not advertised onward — withdrawn if it was sent —
//! until it is installed. Our own loopbacks are always exported. Without a
//! kernel FIB (`[kernel] enabled = false`) nothing is ever reported, so
//! nothing is held back.

use super::loc_rib::{LOCAL, NONE};
use super::Rib;
use ipnet::IpNet;
use std::collections::HashSet;

#[derive(Debug, Default)]
pub(super) struct Forwarding {
    /// Prefixes the FIB reports as not in the kernel.
    not_forwardable: HashSet<IpNet>,
    /// Prefixes whose best path was held back from export at the last flush.
    withheld: HashSet<IpNet>,
}

impl Forwarding {
    /// The source export uses for `prefix` after a decision: none while a
    /// peer's path cannot be forwarded. Returns (as exported before, as now).
    pub(super) fn decide(&mut self, prefix: IpNet, old_src: u32, src: u32) -> (u32, u32) {
        // Nothing held back and nothing unforwardable (the usual case, and
        // always without a kernel FIB): no hashing per decision.
        if self.withheld.is_empty() && self.not_forwardable.is_empty() {
            return (old_src, src);
        }
        let old = if self.withheld.contains(&prefix) {
            NONE
        } else {
            old_src
        };
        let hold = src != NONE && src != LOCAL && self.not_forwardable.contains(&prefix);
        if hold {
            self.withheld.insert(prefix);
            (old, NONE)
        } else {
            self.withheld.remove(&prefix);
            (old, src)
        }
    }

    /// The source as exported now (after the last decision of `prefix`).
    pub(super) fn exported(&self, prefix: &IpNet, src: u32) -> u32 {
        if self.withheld.contains(prefix) {
            NONE
        } else {
            src
        }
    }
}

impl Rib {
    /// Whether the kernel holds the route of `prefix` (from the FIB). A change
    /// marks the prefix for the next flush and every session's queue;
    /// [`Rib::poll_transmit`] withdraws or announces it.
    pub fn set_forwarding(&mut self, prefix: IpNet, ok: bool) {
        let changed = if ok {
            self.forwarding.not_forwardable.remove(&prefix)
        } else {
            self.forwarding.not_forwardable.insert(prefix)
        };
        if changed {
            if let Some(id) = self.loc.find(&prefix) {
                self.loc.touch(id);
                // The decision may not change: let every session compare again.
                for p in self.peers.iter_mut().filter(|p| p.session.is_some()) {
                    p.adj_out.mark(id);
                }
            }
        }
    }

    /// Prefixes not exported because the kernel does not hold their route.
    pub fn withheld(&self) -> impl Iterator<Item = &IpNet> {
        self.forwarding.withheld.iter()
    }
}
