//! Adj-RIB-In of one peer (RFC 4271 §3.2): every route it sent, before import
//! policy, with the verdict; the accepted ones are the post-policy view.
//! Filtered routes stay inspectable (BIRD's `import keep filtered`).

use super::intern::PrefixMap;
use super::policy::FilterReason;
use crate::wire::{MpNextHop, PathAttributes};
use ipnet::IpNet;
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

#[derive(Debug, Default)]
pub struct AdjRibIn {
    routes: PrefixMap<InRoute>,
    accepted: usize,
    /// Routes filtered only because of the import limit.
    held: usize,
}

fn is_held(r: &InRoute) -> bool {
    r.verdict == Err(FilterReason::ImportLimit)
}

impl AdjRibIn {
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn accepted_count(&self) -> usize {
        self.accepted
    }

    pub fn filtered_count(&self) -> usize {
        self.routes.len() - self.accepted
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&InRoute> {
        self.routes.get(prefix)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &InRoute)> {
        self.routes.iter()
    }

    /// Accepted prefixes (the post-policy Adj-RIB-In).
    pub fn accepted(&self) -> impl Iterator<Item = &IpNet> {
        self.routes
            .iter()
            .filter(|(_, r)| r.verdict.is_ok())
            .map(|(p, _)| p)
    }

    /// Routes held back by the import limit.
    pub fn held_count(&self) -> usize {
        self.held
    }

    pub(crate) fn clear(&mut self) -> PrefixMap<InRoute> {
        self.accepted = 0;
        self.held = 0;
        std::mem::take(&mut self.routes)
    }

    /// Stores `route`, returning the one it replaces.
    pub(crate) fn insert(&mut self, prefix: IpNet, route: InRoute) -> Option<InRoute> {
        self.accepted += usize::from(route.verdict.is_ok());
        self.held += usize::from(is_held(&route));
        let old = self.routes.insert(prefix, route);
        self.forget(old.as_ref());
        old
    }

    fn forget(&mut self, old: Option<&InRoute>) {
        if let Some(o) = old {
            self.accepted -= usize::from(o.verdict.is_ok());
            self.held -= usize::from(is_held(o));
        }
    }

    /// Up to `room` routes held by the import limit, in prefix order, accepted
    /// now; returns them.
    pub(crate) fn promote_held(&mut self, room: usize) -> Vec<(IpNet, InRoute)> {
        let mut held: Vec<IpNet> = self
            .routes
            .iter()
            .filter(|(_, r)| is_held(r))
            .map(|(p, _)| *p)
            .collect();
        held.sort_unstable();
        held.truncate(room);
        let mut out = Vec::with_capacity(held.len());
        for p in held {
            if let Some(r) = self.routes.get_mut(&p) {
                r.verdict = Ok(());
                self.held -= 1;
                self.accepted += 1;
                out.push((p, r.clone()));
            }
        }
        out
    }

    pub(crate) fn remove(&mut self, prefix: &IpNet) -> Option<InRoute> {
        let old = self.routes.remove(prefix);
        self.forget(old.as_ref());
        old
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
