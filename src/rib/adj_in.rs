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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AfiSafi, AsPath, MpReach, MpUnreach, Origin};

    fn policy() -> ImportPolicy {
        let cfg = crate::config::parse(
            "router_id = \"10.255.0.2\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.255.0.0/16\"]\nipv6 = [\"fd00:255::/48\"]\n",
            "t",
        )
        .unwrap();
        ImportPolicy {
            loopbacks: cfg.loopbacks,
        }
    }

    fn announce(prefixes: &[&str], family: AfiSafi) -> Update {
        let nh = MpNextHop::V6 {
            global: std::net::Ipv6Addr::UNSPECIFIED,
            link_local: Some("fe80::1:2".parse().unwrap()),
        };
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            mp_reach: Some(MpReach::new(
                family,
                nh,
                prefixes.iter().map(|p| p.parse::<IpNet>().unwrap()),
            )),
            ..Default::default()
        };
        Update {
            attrs,
            ..Default::default()
        }
    }

    #[test]
    fn loopbacks_accepted_others_kept_as_filtered() {
        let mut rib = AdjRibIn::default();
        let u = announce(
            &["10.255.0.1/32", "10.255.0.0/24", "192.0.2.1/32"],
            AfiSafi::IPV4_UNICAST,
        );
        let l = rib.apply(&u, &policy());
        assert_eq!(l.accepted, vec!["10.255.0.1/32".parse::<IpNet>().unwrap()]);
        assert_eq!(l.filtered.len(), 2);
        assert_eq!((rib.accepted_count(), rib.filtered_count()), (1, 2));
        let r = |p: &str| rib.get(&p.parse().unwrap()).unwrap().clone();
        assert_eq!(r("10.255.0.0/24").verdict, Err(FilterReason::NotHostRoute));
        assert_eq!(
            r("192.0.2.1/32").verdict,
            Err(FilterReason::OutsideLoopbackRanges)
        );
        assert_eq!(
            r("10.255.0.1/32").next_hop,
            Some("fe80::1:2".parse().unwrap()),
            "link-local next hop preferred"
        );
    }

    #[test]
    fn withdraw_and_reannounce_keep_counts_right() {
        let mut rib = AdjRibIn::default();
        rib.apply(
            &announce(
                &["fd00:255::1/128", "fd00:255::2/128"],
                AfiSafi::IPV6_UNICAST,
            ),
            &policy(),
        );
        rib.apply(
            &announce(&["fd00:255::1/128"], AfiSafi::IPV6_UNICAST),
            &policy(),
        );
        assert_eq!(rib.accepted_count(), 2, "re-announcement replaces");
        let w = Update {
            attrs: PathAttributes {
                mp_unreach: Some(MpUnreach::new(
                    AfiSafi::IPV6_UNICAST,
                    ["fd00:255::1/128".parse::<IpNet>().unwrap()],
                )),
                ..Default::default()
            },
            ..Default::default()
        };
        let l = rib.apply(&w, &policy());
        assert_eq!(l.withdrawn.len(), 1);
        assert_eq!((rib.len(), rib.accepted_count()), (1, 1));
    }

    #[test]
    fn treat_as_withdraw_removes_instead_of_adding() {
        let mut rib = AdjRibIn::default();
        rib.apply(
            &announce(&["10.255.0.1/32"], AfiSafi::IPV4_UNICAST),
            &policy(),
        );
        let mut bad = announce(&["10.255.0.1/32"], AfiSafi::IPV4_UNICAST);
        bad.issues.push(crate::wire::AttrIssue {
            code: 1,
            action: crate::wire::AttrErrorAction::TreatAsWithdraw,
            reason: "test".into(),
        });
        let l = rib.apply(&bad, &policy());
        assert_eq!(l.withdrawn.len(), 1);
        assert!(rib.is_empty());
    }
}
