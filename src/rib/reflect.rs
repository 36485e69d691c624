//! Route reflection (RFC 4456) and the outgoing attributes of a best path.

use super::loc_rib::Source;
use super::PeerId;
use crate::config::UNKNOWN_LINK_COST;
use crate::wire::{PathAttributes, ThinVec};
use std::net::Ipv4Addr;

/// LOCAL_PREF assumed when an iBGP route carries none (BIRD's default).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// RFC 4456 §6: may the best path from `source` go to peer `to`?
/// Our own routes go everywhere; a client's route to every other peer; a
/// non-client's route only to clients; never back to the peer it came from.
pub fn may_send(source: Source, from_client: bool, to: PeerId, to_client: bool) -> bool {
    match source {
        Source::Local => true,
        Source::Peer(from) => from != to && (from_client || to_client),
    }
}

/// MED after import: the received MED plus the link cost, saturating at
/// 2^32-1 (never wrapping to a small, attractive value).
pub fn total_med(received: Option<u32>, link_cost: u32) -> u32 {
    received.unwrap_or(0).saturating_add(link_cost)
}

/// Largest MED we advertise: 2^31-1, so that a neighbor adding any link cost
/// up to [`UNKNOWN_LINK_COST`] (2^31) with wrapping 32-bit arithmetic, as a
/// BIRD node running the fabric's `bgp_med = bgp_med + cost` does, gets at
/// most 2^31-1 + 2^31 = 2^32-1 and never wraps to a small value.
pub const MAX_ADVERTISED_MED: u32 = UNKNOWN_LINK_COST - 1;

/// The MED a path of total cost `total` is advertised with: `total` capped at
/// [`MAX_ADVERTISED_MED`]. Every path up to the cap keeps its order; the paths
/// above it (they crossed a link of unknown cost, or sum to 2^31 or more) are
/// sent as equal, still more expensive than any path under the cap.
pub fn advertised_med(total: u32) -> u32 {
    total.min(MAX_ADVERTISED_MED)
}

/// Attributes a reflected path is sent with (RFC 4456 §8): MED set to the
/// total path cost `med` as [`advertised_med`] caps it, LOCAL_PREF kept (default 100), ORIGIN and AS_PATH kept
/// (iBGP: no prepend), ORIGINATOR_ID set to the originating peer's router id
/// if absent, our cluster id prepended to CLUSTER_LIST. Unknown attributes
/// follow RFC 4271 §5 (optional non-transitive dropped, transitive Partial).
pub fn reflected_attributes(
    received: &PathAttributes,
    med: u32,
    peer_router_id: Ipv4Addr,
    cluster_id: Ipv4Addr,
) -> PathAttributes {
    // Built field by field: the reach attributes and the next hop are not
    // copied only to be dropped, the CLUSTER_LIST is allocated once.
    let PathAttributes {
        origin,
        as_path,
        next_hop: _,
        med: _,
        local_pref,
        atomic_aggregate,
        aggregator,
        communities,
        originator_id,
        cluster_list,
        mp_reach: _,
        mp_unreach: _,
        extended_communities,
        large_communities,
        unknown: _,
    } = received;
    let mut clusters = ThinVec::with_capacity(cluster_list.len() + 1);
    clusters.push(cluster_id);
    clusters.extend_from_slice(cluster_list);
    PathAttributes {
        origin: *origin,
        as_path: as_path.clone(),
        next_hop: None,
        med: Some(advertised_med(med)),
        local_pref: Some(local_pref.unwrap_or(DEFAULT_LOCAL_PREF)),
        atomic_aggregate: *atomic_aggregate,
        aggregator: *aggregator,
        communities: communities.clone(),
        originator_id: Some(originator_id.unwrap_or(peer_router_id)),
        cluster_list: clusters,
        mp_reach: None,
        mp_unreach: None,
        extended_communities: extended_communities.clone(),
        large_communities: large_communities.clone(),
        unknown: received.readvertised_unknown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_routes_go_everywhere_else_non_client_routes_only_to_clients() {
        assert!(may_send(Source::Peer(1), true, 2, false));
        assert!(may_send(Source::Peer(1), true, 2, true));
        assert!(may_send(Source::Peer(1), false, 2, true));
        assert!(!may_send(Source::Peer(1), false, 2, false));
        assert!(
            !may_send(Source::Peer(1), true, 1, true),
            "never back to sender"
        );
        assert!(may_send(Source::Local, false, 1, false));
    }

    #[test]
    fn med_sum_saturates() {
        assert_eq!(total_med(Some(10), 5), 15);
        assert_eq!(total_med(None, 5), 5);
        assert_eq!(total_med(Some(u32::MAX - 1), 5), u32::MAX);
        assert_eq!(total_med(Some(1 << 31), 1 << 31), u32::MAX);
    }

    /// A BIRD node adds its link cost (at most 2^31, the unknown cost) with
    /// wrapping u32 arithmetic: what we advertise plus any such cost never
    /// wraps, and the order of totals under the cap is kept.
    #[test]
    fn advertised_med_never_wraps_at_a_bird_neighbor() {
        let bird_add = |med: u32, cost: u32| med.wrapping_add(cost);
        let totals = [
            0,
            1,
            1000,
            MAX_ADVERTISED_MED - 1,
            MAX_ADVERTISED_MED,
            UNKNOWN_LINK_COST,
            UNKNOWN_LINK_COST + 5,
            u32::MAX - 1,
            u32::MAX,
        ];
        for &t in &totals {
            let sent = advertised_med(t);
            assert!(sent <= t && sent <= MAX_ADVERTISED_MED);
            for cost in [0, 1, 10, 1 << 30, UNKNOWN_LINK_COST - 1, UNKNOWN_LINK_COST] {
                let at_bird = bird_add(sent, cost);
                assert_eq!(
                    u64::from(at_bird),
                    u64::from(sent) + u64::from(cost),
                    "{t} + {cost} wrapped"
                );
            }
            for &u in &totals {
                if t < u && t < MAX_ADVERTISED_MED {
                    assert!(
                        advertised_med(t) < advertised_med(u),
                        "order of {t} < {u} kept"
                    );
                }
            }
        }
        // The wrap the cap prevents: two unknown-cost links, the second at BIRD.
        let two_unknown = total_med(None, UNKNOWN_LINK_COST);
        assert_eq!(
            bird_add(two_unknown, UNKNOWN_LINK_COST),
            0,
            "uncapped wraps to 0"
        );
        assert_eq!(
            bird_add(advertised_med(two_unknown), UNKNOWN_LINK_COST),
            u32::MAX
        );
        let a = reflected_attributes(
            &PathAttributes::default(),
            two_unknown,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
        );
        assert_eq!(a.med, Some(MAX_ADVERTISED_MED));
    }

    #[test]
    fn reflection_sets_originator_once_and_prepends_cluster() {
        let r = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let received = PathAttributes {
            med: Some(3),
            ..Default::default()
        };
        let a = reflected_attributes(&received, 13, r("10.0.0.2"), r("10.0.0.1"));
        assert_eq!(a.med, Some(13));
        assert_eq!(a.local_pref, Some(100));
        assert_eq!(a.originator_id, Some(r("10.0.0.2")));
        assert_eq!(a.cluster_list, vec![r("10.0.0.1")]);
        let again = reflected_attributes(&a, 20, r("10.0.0.1"), r("10.0.0.3"));
        assert_eq!(again.originator_id, Some(r("10.0.0.2")), "kept");
        assert_eq!(again.cluster_list, vec![r("10.0.0.3"), r("10.0.0.1")]);
    }
}
