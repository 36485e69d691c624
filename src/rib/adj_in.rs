//! Adj-RIB-In of one peer (RFC 4271 §3.2): every route it sent, before import
//! policy, with the verdict; the accepted ones are the post-policy view.
//! Filtered routes stay inspectable (BIRD's `import keep filtered`).

use super::policy::FilterReason;
use crate::wire::{MpNextHop, PathAttributes};
use std::net::IpAddr;
use std::sync::Arc;

/// One route as received. `attrs` are the received attributes (shared); the
/// import adjustment (MED + link cost) is applied at decision time so a new
/// link cost needs no rewrite.
#[derive(Clone, Debug, PartialEq)]
pub struct InRoute {
    pub next_hop: Option<IpAddr>,
    pub attrs: Arc<PathAttributes>,
    /// `Ok` if accepted by import policy, else why it was filtered.
    pub verdict: Result<(), FilterReason>,
}

/// Counts of one peer's Adj-RIB-In. The routes themselves live in the route
/// table ([`super::loc_rib`]), one entry per (prefix, peer), pointing at an
/// interned [`InRoute`].
#[derive(Debug, Default)]
pub struct AdjRibIn {
    len: usize,
    accepted: usize,
    /// Routes filtered only because of the import limit.
    held: usize,
}

pub(crate) fn is_held(r: &InRoute) -> bool {
    r.verdict == Err(FilterReason::ImportLimit)
}

impl AdjRibIn {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn accepted_count(&self) -> usize {
        self.accepted
    }

    pub fn filtered_count(&self) -> usize {
        self.len.saturating_sub(self.accepted)
    }

    /// Routes held back by the import limit.
    pub fn held_count(&self) -> usize {
        self.held
    }

    pub(crate) fn clear(&mut self) {
        *self = AdjRibIn::default();
    }

    /// Counts a stored route.
    pub(crate) fn add(&mut self, route: &InRoute) {
        self.len += 1;
        self.accepted += usize::from(route.verdict.is_ok());
        self.held += usize::from(is_held(route));
    }

    /// Uncounts a route that left (saturating: a miscount must not take the
    /// RIB down; the stateful fuzz target checks the counts against the table).
    pub(crate) fn forget(&mut self, route: &InRoute) {
        self.len = self.len.saturating_sub(1);
        self.accepted = self
            .accepted
            .saturating_sub(usize::from(route.verdict.is_ok()));
        self.held = self.held.saturating_sub(usize::from(is_held(route)));
    }
}

/// The address packets are forwarded to: the link-local one when present
/// (RFC 2545 §3), else the global one; `::`/`0.0.0.0` are not usable.
pub fn usable_next_hop(nh: &MpNextHop) -> Option<IpAddr> {
    match *nh {
        MpNextHop::V4(a) => (!a.is_unspecified()).then_some(IpAddr::V4(a)),
        MpNextHop::V6 { global, link_local } => match link_local {
            Some(ll) if !ll.is_unspecified() => Some(IpAddr::V6(ll)),
            _ => (!global.is_unspecified()).then_some(IpAddr::V6(global)),
        },
    }
}
