//! Best path selection: RFC 4271 §9.1.2.2 as the fabric uses it, with the
//! route reflection tie-breaks of RFC 4456 §9. One function per step; each
//! says which of two candidates it prefers, or that they tie. The steps form a
//! lexicographic order ending in a unique key, so the result does not depend
//! on arrival order (MED is always compared, so the RFC's MED-by-neighbor-AS
//! non-transitivity cannot arise).
//!
//! Order: locally originated, highest LOCAL_PREF, (AS_PATH length is not
//! compared: one AS, next hop self), lowest ORIGIN, not through a router
//! whose session just went down ([`super::lost_routers`]; BIRD has no such
//! step: all paths tie there but during a second after a session loss), lowest MED, (all iBGP: no
//! eBGP step), lowest interior cost to the next hop (§9.1.2.2 (e): the
//! underlay cost of an overlay path, 0 for loopback paths, whose MED is
//! already the path cost), shortest CLUSTER_LIST, lowest ORIGINATOR_ID (or the peer's router id), lowest peer
//! address, then the lowest peer index (same link-local address on two
//! interfaces), then the lowest path id (RFC 7911: several paths from one
//! ADD-PATH peer). CLUSTER_LIST before the router id follows BIRD.

use super::loc_rib::Source;
use crate::wire::Origin;
use serde::Serialize;
use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

/// What the decision looks at in one candidate path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub source: Source,
    /// LOCAL_PREF, 100 when absent.
    pub local_pref: u32,
    /// ORIGIN, INCOMPLETE when absent.
    pub origin: Origin,
    /// Its ORIGINATOR_ID or CLUSTER_LIST names a router whose session with
    /// us just went down ([`super::lost_routers`]): the path is likely being
    /// withdrawn, and it may lead back through us (a micro-loop).
    pub through_lost: bool,
    /// MED after import (received MED + link cost; as received on the overlay).
    pub med: u32,
    /// Interior cost to the next hop (RFC 4271 §9.1.2.2 (e)): the resolved
    /// underlay cost of an overlay path; 0 for loopback paths and our own.
    pub interior_cost: u32,
    pub cluster_len: usize,
    /// ORIGINATOR_ID, or the router id of the peer (RFC 4456 §9 a).
    pub originator: Ipv4Addr,
    /// The peer's address (unspecified for our own routes).
    pub address: IpAddr,
    /// The Path Identifier (RFC 7911) the peer gave the path; 0 without ADD-PATH.
    pub path_id: u32,
}

/// A step of the decision, named in explanations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    LocallyOriginated,
    LocalPref,
    Origin,
    LostRouter,
    Med,
    InteriorCost,
    ClusterListLength,
    OriginatorId,
    PeerAddress,
    PeerIndex,
    PathId,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::LocallyOriginated => "locally originated route preferred",
            Step::LocalPref => "higher LOCAL_PREF preferred (RFC 4271 §9.1.2.2)",
            Step::Origin => "lower ORIGIN preferred (RFC 4271 §9.1.2.2 b)",
            Step::LostRouter => {
                "path not through a router whose session just went down preferred (its paths are being withdrawn)"
            }
            Step::Med => "lower MED (path cost) preferred (RFC 4271 §9.1.2.2 c)",
            Step::InteriorCost => {
                "lower underlay cost to the next hop preferred (RFC 4271 §9.1.2.2 e)"
            }
            Step::ClusterListLength => "shorter CLUSTER_LIST preferred (RFC 4456 §9)",
            Step::OriginatorId => "lower ORIGINATOR_ID / router id preferred (RFC 4456 §9)",
            Step::PeerAddress => "lower peer address preferred (RFC 4271 §9.1.2.2 g)",
            Step::PeerIndex => "lower neighbor index preferred (same address)",
            Step::PathId => "lower path id preferred (same neighbor, RFC 7911)",
        })
    }
}

/// `Less`: `a` is better at this step; `Equal`: tie, next step.
type StepFn = fn(&Candidate, &Candidate) -> Ordering;

fn locally_originated(a: &Candidate, b: &Candidate) -> Ordering {
    let local = |c: &Candidate| c.source != Source::Local;
    local(a).cmp(&local(b))
}

fn local_pref(a: &Candidate, b: &Candidate) -> Ordering {
    b.local_pref.cmp(&a.local_pref)
}

fn origin(a: &Candidate, b: &Candidate) -> Ordering {
    a.origin.cmp(&b.origin)
}

fn lost_router(a: &Candidate, b: &Candidate) -> Ordering {
    a.through_lost.cmp(&b.through_lost)
}

fn med(a: &Candidate, b: &Candidate) -> Ordering {
    a.med.cmp(&b.med)
}

fn interior_cost(a: &Candidate, b: &Candidate) -> Ordering {
    a.interior_cost.cmp(&b.interior_cost)
}

fn cluster_list_length(a: &Candidate, b: &Candidate) -> Ordering {
    a.cluster_len.cmp(&b.cluster_len)
}

fn originator_id(a: &Candidate, b: &Candidate) -> Ordering {
    a.originator.cmp(&b.originator)
}

fn peer_address(a: &Candidate, b: &Candidate) -> Ordering {
    a.address.cmp(&b.address)
}

fn peer_index(a: &Candidate, b: &Candidate) -> Ordering {
    a.source.cmp(&b.source)
}

fn path_id(a: &Candidate, b: &Candidate) -> Ordering {
    a.path_id.cmp(&b.path_id)
}

const STEPS: [(Step, StepFn); 11] = [
    (Step::LocallyOriginated, locally_originated),
    (Step::LocalPref, local_pref),
    (Step::Origin, origin),
    (Step::LostRouter, lost_router),
    (Step::Med, med),
    (Step::InteriorCost, interior_cost),
    (Step::ClusterListLength, cluster_list_length),
    (Step::OriginatorId, originator_id),
    (Step::PeerAddress, peer_address),
    (Step::PeerIndex, peer_index),
    (Step::PathId, path_id),
];

/// Compares two candidates: `Less` if `a` is better, with the deciding step.
/// `None` only for the same path of the same source.
pub fn compare(a: &Candidate, b: &Candidate) -> Option<(Ordering, Step)> {
    STEPS.iter().find_map(|(step, f)| match f(a, b) {
        Ordering::Equal => None,
        o => Some((o, *step)),
    })
}

/// The step at which `loser` is ruled out against `winner`.
pub fn lost_at(loser: &Candidate, winner: &Candidate) -> Option<Step> {
    match compare(loser, winner) {
        Some((Ordering::Greater, step)) => Some(step),
        _ => None,
    }
}

/// Index of the best candidate.
pub fn select(candidates: &[Candidate]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, c) in candidates.iter().enumerate() {
        best = match best {
            Some(b) if !matches!(compare(c, &candidates[b]), Some((Ordering::Less, _))) => Some(b),
            _ => Some(i),
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(i: usize) -> Candidate {
        Candidate {
            source: Source::Peer(i),
            local_pref: 100,
            origin: Origin::Igp,
            through_lost: false,
            med: 10,
            interior_cost: 0,
            cluster_len: 1,
            originator: Ipv4Addr::new(10, 0, 0, 9),
            address: IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, i as u16)),
            path_id: 0,
        }
    }

    fn decides(a: Candidate, b: Candidate, step: Step) {
        assert_eq!(compare(&a, &b), Some((Ordering::Less, step)));
        assert_eq!(lost_at(&b, &a), Some(step));
        assert_eq!(select(&[b, a]), Some(1));
        assert_eq!(select(&[a, b]), Some(0));
    }

    #[test]
    fn locally_originated_wins_over_everything() {
        let local = Candidate {
            source: Source::Local,
            local_pref: 0,
            med: u32::MAX,
            ..peer(0)
        };
        decides(local, peer(1), Step::LocallyOriginated);
    }

    #[test]
    fn higher_local_pref_wins() {
        decides(
            Candidate {
                local_pref: 200,
                med: 999,
                ..peer(2)
            },
            peer(1),
            Step::LocalPref,
        );
    }

    #[test]
    fn lower_origin_wins() {
        decides(
            peer(2),
            Candidate {
                origin: Origin::Incomplete,
                ..peer(1)
            },
            Step::Origin,
        );
    }

    #[test]
    fn a_path_not_through_a_lost_router_wins_after_origin_before_med() {
        let through = Candidate {
            through_lost: true,
            ..peer(1)
        };
        decides(
            Candidate {
                med: 999,
                ..peer(2)
            },
            through,
            Step::LostRouter,
        );
        // LOCAL_PREF and ORIGIN still come first.
        decides(
            Candidate {
                local_pref: 200,
                ..through
            },
            peer(2),
            Step::LocalPref,
        );
        decides(
            through,
            Candidate {
                origin: Origin::Incomplete,
                ..peer(2)
            },
            Step::Origin,
        );
    }

    #[test]
    fn lower_med_wins() {
        decides(
            Candidate {
                med: 5,
                cluster_len: 9,
                ..peer(2)
            },
            peer(1),
            Step::Med,
        );
    }

    #[test]
    fn lower_interior_cost_wins_after_med() {
        decides(
            Candidate {
                interior_cost: 5,
                cluster_len: 9,
                originator: Ipv4Addr::new(10, 0, 0, 200),
                ..peer(2)
            },
            Candidate {
                interior_cost: 6,
                ..peer(1)
            },
            Step::InteriorCost,
        );
        // MED first: a far exit with a lower MED still wins.
        decides(
            Candidate {
                med: 9,
                interior_cost: 100,
                ..peer(2)
            },
            Candidate {
                interior_cost: 1,
                ..peer(1)
            },
            Step::Med,
        );
    }

    #[test]
    fn shorter_cluster_list_wins() {
        decides(
            Candidate {
                cluster_len: 0,
                originator: Ipv4Addr::new(10, 0, 0, 200),
                ..peer(2)
            },
            peer(1),
            Step::ClusterListLength,
        );
    }

    #[test]
    fn lower_originator_wins() {
        decides(
            Candidate {
                originator: Ipv4Addr::new(10, 0, 0, 1),
                ..peer(2)
            },
            peer(1),
            Step::OriginatorId,
        );
    }

    #[test]
    fn lower_peer_address_wins_then_index() {
        decides(peer(1), peer(2), Step::PeerAddress);
        let same = Candidate {
            address: peer(1).address,
            ..peer(2)
        };
        decides(peer(1), same, Step::PeerIndex);
        // Two paths of one ADD-PATH peer that tie everywhere else.
        let second = Candidate {
            path_id: 9,
            ..peer(1)
        };
        decides(
            Candidate {
                path_id: 2,
                ..peer(1)
            },
            second,
            Step::PathId,
        );
    }

    fn candidate() -> impl Strategy<Value = Candidate> {
        (
            any::<bool>(),
            prop_oneof![Just(100u32), Just(200), any::<u32>()],
            0u8..3,
            prop_oneof![Just(10u32), Just(20), any::<u32>()],
            0usize..3,
            0u8..3,
            0u16..3,
            0u32..3,
            any::<bool>(),
        )
            .prop_map(|(local, lp, o, med, cl, orig, addr, ic, lost)| Candidate {
                source: if local {
                    Source::Local
                } else {
                    Source::Peer(0)
                },
                local_pref: lp,
                origin: [Origin::Igp, Origin::Egp, Origin::Incomplete][usize::from(o)],
                through_lost: lost && !local,
                med,
                interior_cost: ic,
                cluster_len: cl,
                originator: Ipv4Addr::new(10, 0, 0, orig),
                address: IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, addr)),
                path_id: 0,
            })
    }

    proptest! {
        /// Law: the same candidates in any order give the same best.
        #[test]
        fn best_does_not_depend_on_arrival_order(
            mut cands in proptest::collection::vec(candidate(), 1..8),
            seed in any::<u64>(),
        ) {
            // At most one local route; other paths from peers 0 and 1 with
            // distinct path ids (ADD-PATH).
            let mut seen_local = false;
            for (i, c) in cands.iter_mut().enumerate() {
                if c.source == Source::Local && !seen_local {
                    seen_local = true;
                } else {
                    c.source = Source::Peer(i % 2);
                    c.path_id = i as u32;
                }
            }
            let best = cands[select(&cands).unwrap()];
            let mut shuffled = cands.clone();
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(shuffled[select(&shuffled).unwrap()], best);
            // And the winner beats every other candidate.
            for c in &cands {
                if *c != best {
                    prop_assert!(lost_at(c, &best).is_some());
                }
            }
        }
    }
}
