//! Adj-RIB-In of one peer: every route it sent, with the import verdict, so
//! filtered routes stay inspectable (BIRD's `import keep filtered`).

use super::policy::{FilterReason, ImportPolicy};
use crate::wire::{MpNextHop, PathAttributes, Update};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// One route as received.
#[derive(Clone, Debug, PartialEq)]
pub struct InRoute {
    pub next_hop: Option<IpAddr>,
    pub attrs: Arc<PathAttributes>,
    /// `Ok` if accepted by import policy, else why it was filtered.
    pub verdict: Result<(), FilterReason>,
}

/// What one UPDATE changed in a peer's table.
#[derive(Debug, Default, PartialEq)]
pub struct Learned {
    pub accepted: Vec<IpNet>,
    pub filtered: Vec<IpNet>,
    pub withdrawn: Vec<IpNet>,
}

#[derive(Debug, Default)]
pub struct AdjRibIn {
    routes: BTreeMap<IpNet, InRoute>,
    accepted: usize,
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

    pub fn clear(&mut self) {
        self.routes.clear();
        self.accepted = 0;
    }

    fn insert(&mut self, prefix: IpNet, route: InRoute) {
        let ok = route.verdict.is_ok();
        if let Some(old) = self.routes.insert(prefix, route) {
            if old.verdict.is_ok() {
                self.accepted -= 1;
            }
        }
        if ok {
            self.accepted += 1;
        }
    }

    fn remove(&mut self, prefix: &IpNet) -> bool {
        match self.routes.remove(prefix) {
            Some(old) => {
                if old.verdict.is_ok() {
                    self.accepted -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// Apply one UPDATE: withdrawals first, then announcements (RFC 4271 §9.1).
    /// With RFC 7606 treat-as-withdraw, announced prefixes are withdrawn instead.
    pub fn apply(&mut self, update: &Update, policy: &ImportPolicy) -> Learned {
        let mut learned = Learned::default();
        let withdrawn = update
            .withdrawn_v4()
            .map(IpNet::V4)
            .chain(update.attrs.mp_unreach.iter().flat_map(|u| u.prefixes()));
        for prefix in withdrawn {
            if self.remove(&prefix) {
                learned.withdrawn.push(prefix);
            }
        }
        let v4_next_hop = update.attrs.next_hop.map(IpAddr::V4);
        let mp_next_hop = update
            .attrs
            .mp_reach
            .as_ref()
            .and_then(|r| usable_next_hop(&r.next_hop));
        let announced = update.nlri_v4().map(|p| (IpNet::V4(p), v4_next_hop)).chain(
            update
                .attrs
                .mp_reach
                .iter()
                .flat_map(|r| r.prefixes())
                .map(|p| (p, mp_next_hop)),
        );
        if update.treat_as_withdraw() {
            for (prefix, _) in announced {
                if self.remove(&prefix) {
                    learned.withdrawn.push(prefix);
                }
            }
            return learned;
        }
        let attrs = Arc::new(update.attrs.without_reach());
        for (prefix, next_hop) in announced {
            let verdict = match next_hop {
                None => Err(FilterReason::NoNextHop),
                Some(_) => policy.check(prefix),
            };
            if verdict.is_ok() {
                learned.accepted.push(prefix);
            } else {
                learned.filtered.push(prefix);
            }
            self.insert(
                prefix,
                InRoute {
                    next_hop,
                    attrs: attrs.clone(),
                    verdict,
                },
            );
        }
        learned
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
