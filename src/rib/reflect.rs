//! Route reflection (RFC 4456) and the outgoing attributes of a best path.

use super::loc_rib::Source;
use super::PeerId;
use crate::wire::PathAttributes;
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

/// Attributes a reflected path is sent with (RFC 4456 §8): MED set to the
/// total path cost, LOCAL_PREF kept (default 100), ORIGIN and AS_PATH kept
/// (iBGP: no prepend), ORIGINATOR_ID set to the originating peer's router id
/// if absent, our cluster id prepended to CLUSTER_LIST. Unknown attributes
/// follow RFC 4271 §5 (optional non-transitive dropped, transitive Partial).
pub fn reflected_attributes(
    received: &PathAttributes,
    med: u32,
    peer_router_id: Ipv4Addr,
    cluster_id: Ipv4Addr,
) -> PathAttributes {
    let mut a = received.for_readvertise();
    a.next_hop = None;
    a.mp_reach = None;
    a.mp_unreach = None;
    a.med = Some(med);
    a.local_pref = Some(received.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
    a.originator_id = Some(received.originator_id.unwrap_or(peer_router_id));
    a.cluster_list.insert(0, cluster_id);
    a
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
