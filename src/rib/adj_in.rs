//! Adj-RIB-In of one peer (RFC 4271 §3.2): every route it sent, before import
//! policy, with the verdict; the accepted ones are the post-policy view.
//! Filtered routes stay inspectable (BIRD's `import keep filtered`).

use super::policy::FilterReason;
use crate::wire::{AfiSafi, PathAttributes};
use ipnet::IpNet;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// One route as received. `attrs` are the received attributes (shared); the
/// import adjustment (MED + link cost) is applied at decision time so a new
/// link cost needs no rewrite.
#[derive(Clone, Debug, PartialEq)]
pub struct InRoute {
    /// The peer it came from (a route id thus names its source).
    pub peer: u32,
    pub next_hop: Option<IpAddr>,
    pub attrs: Arc<PathAttributes>,
    /// `Ok` if accepted by import policy, else why it was filtered.
    pub verdict: Result<(), FilterReason>,
    /// Path Identifier (RFC 7911) on an ADD-PATH session, else 0: a peer's
    /// routes for one prefix are told apart by it.
    pub path_id: u32,
}

/// Counts of one peer's Adj-RIB-In, and what the current session told about
/// it. The routes themselves live in the route table ([`super::loc_rib`]),
/// one entry per (prefix, peer, path id), pointing at an interned [`InRoute`].
/// Counts are of paths (an import limit counts each path of an ADD-PATH peer).
#[derive(Debug, Default)]
pub struct AdjRibIn {
    len: usize,
    accepted: usize,
    /// Routes filtered only because of the import limit.
    held: usize,
    /// Families whose End-of-RIB marker arrived (RFC 4724 §2).
    pub(crate) end_of_rib: BTreeSet<AfiSafi>,
    /// RFC 7313 §4.2: per family in an enhanced route refresh (after BoRR),
    /// the prefixes not re-announced yet; purged at EoRR.
    pub(crate) stale: Vec<(AfiSafi, HashSet<IpNet>)>,
    /// Families not negotiated whose NLRI were ignored (logged once each).
    pub(crate) ignored_families: BTreeSet<AfiSafi>,
    /// UPDATEs announcing routes without LOCAL_PREF (RFC 4271 §5.1.5 wants it on iBGP).
    pub(crate) missing_local_pref: u64,
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

    /// A new session begins with the routes kept (graceful restart): what the
    /// old session told is forgotten, the routes and stale marks stay.
    pub(crate) fn new_session(&mut self) {
        self.end_of_rib.clear();
        self.ignored_families.clear();
        self.missing_local_pref = 0;
    }

    /// Families whose End-of-RIB arrived on the current session.
    pub fn end_of_rib(&self) -> &BTreeSet<AfiSafi> {
        &self.end_of_rib
    }

    /// UPDATEs with routes but no LOCAL_PREF on the current session.
    pub fn missing_local_pref(&self) -> u64 {
        self.missing_local_pref
    }

    /// A route of `prefix` arrived or left: it is no longer stale (RFC 7313 §4.2).
    pub(crate) fn refreshed(&mut self, prefix: &IpNet) {
        for (_, set) in &mut self.stale {
            set.remove(prefix);
        }
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
