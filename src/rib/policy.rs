//! Import policy of the fabric: only loopbacks travel, and nothing that would
//! loop back to us (RFC 4456 §8).

use crate::config::Loopbacks;
use ipnet::IpNet;
use serde::Serialize;

/// Why a received route was kept as filtered instead of accepted
/// (BIRD's `import keep filtered`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterReason {
    /// Not an IPv4 /32 or IPv6 /128.
    NotHostRoute,
    /// A host route outside the configured loopback ranges.
    OutsideLoopbackRanges,
    /// RFC 7606 treat-as-withdraw: the attributes were malformed.
    MalformedAttributes(&'static str),
    /// The route has no next hop.
    NoNextHop,
    /// RFC 4271 §6.3 / RFC 7606 §7.3 treat-as-withdraw: the next hop cannot
    /// be used (0.0.0.0, multicast, class E, our own address, …).
    BadNextHop(&'static str),
    /// RFC 8950: an IPv6 next hop for IPv4 routes without the capability.
    ExtendedNextHopNotNegotiated,
    /// RFC 4456 §8: ORIGINATOR_ID is our router id, the route is our own.
    OriginatorIsUs,
    /// RFC 4456 §8: our cluster id is in CLUSTER_LIST, the route looped.
    ClusterLoop,
    /// Over the neighbor's import limit (action block, restart or disable).
    ImportLimit,
    /// An `[overlay]` prefix on a link session: the overlay travels only on
    /// multihop sessions (issue 12).
    OverlayOnLinkSession,
    /// A loopback on a multihop session: loopbacks travel only on links.
    LoopbackOnMultihopSession,
    /// On a multihop session, a prefix outside the `[overlay]` ranges.
    OutsideOverlayRanges,
    /// Accepted, but its next hop has no underlay route (never stored as a
    /// verdict: shown for overlay paths that are no candidate now).
    UnresolvedNextHop,
}

impl std::fmt::Display for FilterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterReason::NotHostRoute => f.write_str("not a /32 or /128 loopback"),
            FilterReason::OutsideLoopbackRanges => f.write_str("outside the loopback ranges"),
            FilterReason::MalformedAttributes(why) => write!(
                f,
                "malformed attributes (RFC 7606 treat-as-withdraw): {why}"
            ),
            FilterReason::NoNextHop => f.write_str("no usable next hop"),
            FilterReason::BadNextHop(why) => write!(f, "unusable next hop: {why}"),
            FilterReason::ExtendedNextHopNotNegotiated => {
                f.write_str("IPv6 next hop for IPv4 routes without RFC 8950 extended next hop")
            }
            FilterReason::OriginatorIsUs => {
                f.write_str("ORIGINATOR_ID is our router id (RFC 4456 §8)")
            }
            FilterReason::ClusterLoop => {
                f.write_str("our cluster id is in CLUSTER_LIST (RFC 4456 §8)")
            }
            FilterReason::ImportLimit => f.write_str("import limit reached"),
            FilterReason::OverlayOnLinkSession => f.write_str(
                "overlay prefix on a link session (multihop sessions carry the overlay)",
            ),
            FilterReason::LoopbackOnMultihopSession => {
                f.write_str("loopback on a multihop session (link sessions carry the loopbacks)")
            }
            FilterReason::OutsideOverlayRanges => f.write_str("outside the overlay ranges"),
            FilterReason::UnresolvedNextHop => {
                f.write_str("next hop unresolvable: no underlay route to it")
            }
        }
    }
}

/// The loopback-only filter, applied to imports and exports alike.
#[derive(Clone, Debug)]
pub struct ImportPolicy {
    pub loopbacks: Loopbacks,
}

impl ImportPolicy {
    pub fn check(&self, prefix: IpNet) -> Result<(), FilterReason> {
        let host = match prefix {
            IpNet::V4(p) => p.prefix_len() == 32,
            IpNet::V6(p) => p.prefix_len() == 128,
        };
        if !host {
            Err(FilterReason::NotHostRoute)
        } else if !self.loopbacks.admits(prefix) {
            Err(FilterReason::OutsideLoopbackRanges)
        } else {
            Ok(())
        }
    }
}
