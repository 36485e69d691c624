//! What travels where (issue 12 part 2, RFC 4456): link sessions carry the
//! loopbacks (next hop self, link cost added to MED); multihop sessions to and
//! from route reflectors carry the overlay (`[overlay]` ranges), with the next
//! hop unchanged and the MED as received. Neither kind accepts the other's
//! prefixes (filtered with the reason).
//!
//! Our own overlay routes carry our own loopback as next hop: for an IPv4
//! prefix the lowest IPv4 loopback we originate, else (RFC 8950, on sessions
//! that negotiated it) the lowest IPv6 one; for an IPv6 prefix the lowest IPv6
//! loopback. The same next hop on every session, so every reflector and client
//! sees one exit per originating node.
//!
//! The next hop an overlay route is sent with travels inside its outgoing
//! attribute set, as an MP_REACH_NLRI without prefixes ([`next_hop_carrier`]);
//! export encodes it instead of next hop self ([`route_next_hop`]).

use super::export::ExportContext;
use super::policy::{FilterReason, ImportPolicy};
use super::reflect::reflected_attributes;
use super::{set_local, Rib};
use crate::config::Overlay;
use crate::wire::{AfiSafi, MpNextHop, MpReach, PathAttributes};
use bytes::Bytes;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// May a session of this kind carry this kind of prefix?
pub(super) fn carries(multihop: bool, overlay_prefix: bool) -> bool {
    multihop == overlay_prefix
}

/// Import verdict of `prefix` on a link (`multihop` false) or multihop session.
pub(super) fn session_check(
    policy: &ImportPolicy,
    overlay: &Overlay,
    prefix: IpNet,
    multihop: bool,
) -> Result<(), FilterReason> {
    match (multihop, overlay.contains(&prefix)) {
        (true, true) => Ok(()),
        (false, false) => policy.check(prefix),
        (false, true) => Err(FilterReason::OverlayOnLinkSession),
        (true, false) if policy.check(prefix).is_ok() => {
            Err(FilterReason::LoopbackOnMultihopSession)
        }
        (true, false) => Err(FilterReason::OutsideOverlayRanges),
    }
}

/// An MP_REACH_NLRI holding only `next_hop`, kept in an outgoing attribute set.
pub(super) fn next_hop_carrier(next_hop: IpAddr) -> MpReach {
    match next_hop {
        IpAddr::V4(a) => MpReach {
            afi_safi: AfiSafi::IPV4_UNICAST,
            next_hop: MpNextHop::V4(a),
            nlri: Bytes::new(),
            add_path: false,
        },
        IpAddr::V6(a) => MpReach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: a,
                link_local: None,
            },
            nlri: Bytes::new(),
            add_path: false,
        },
    }
}

/// The next hop a route of family `v4`/IPv6 with outgoing attributes `attrs`
/// is sent with on the session of `ctx`: the carried one (overlay), else next
/// hop self; `None` if it cannot be sent there.
pub(crate) fn route_next_hop(
    attrs: &PathAttributes,
    ctx: &ExportContext,
    v4: bool,
) -> Option<MpNextHop> {
    let Some(carried) = attrs.mp_reach.as_ref() else {
        return if v4 {
            ctx.v4_route_next_hop()
        } else {
            ctx.v6_route_next_hop()
        };
    };
    let neg = &ctx.negotiated;
    let ok = match (&carried.next_hop, v4) {
        (MpNextHop::V4(_), true) => neg.ipv4_unicast,
        (MpNextHop::V6 { .. }, true) => neg.ipv4_unicast && neg.ipv4_extended_next_hop,
        (MpNextHop::V6 { .. }, false) => neg.ipv6_unicast,
        (MpNextHop::V4(_), false) => false,
    };
    ok.then_some(carried.next_hop)
}

/// Attributes an overlay path is sent on with (RFC 4456 §8): next hop
/// `next_hop` unchanged, MED as received, LOCAL_PREF kept (default 100),
/// ORIGINATOR_ID set if absent, `cluster_id` prepended to CLUSTER_LIST.
pub(super) fn overlay_attributes(
    received: &PathAttributes,
    peer_router_id: Ipv4Addr,
    cluster_id: Ipv4Addr,
    next_hop: IpAddr,
) -> PathAttributes {
    let mut a = reflected_attributes(received, 0, peer_router_id, cluster_id);
    a.med = received.med;
    a.mp_reach = Some(Box::new(next_hop_carrier(next_hop)));
    a
}

/// Our next hop for an overlay prefix of family `v4`/IPv6 (see the module doc).
pub(super) fn local_next_hop(loopbacks: &BTreeSet<IpNet>, v4: bool) -> Option<IpAddr> {
    let first = |want_v4: bool| {
        loopbacks
            .iter()
            .find(|p| matches!(p, IpNet::V4(_)) == want_v4)
            .map(IpNet::addr)
    };
    if v4 {
        first(true).or_else(|| first(false))
    } else {
        first(false)
    }
}

impl Rib {
    /// The `[overlay]` of this node, at start or by reload. Routes already
    /// received keep the verdict they got: link sessions carry loopbacks
    /// whatever the overlay (the ranges are disjoint), and a reload changing
    /// the ranges restarts the multihop sessions (config::diff). What we
    /// originate outside the new ranges is withdrawn here; what comes inside
    /// arrives with the next originated set.
    pub fn set_overlay(&mut self, overlay: Overlay) {
        self.overlay_cluster_id = overlay.cluster_id.unwrap_or(self.cluster_id);
        // Cached outgoing sets carry the old CLUSTER_ID.
        self.export_cache.clear();
        self.overlay = overlay;
        let kept = self.overlay_originated.clone();
        self.set_overlay_originated(kept);
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// The overlay prefixes this node originates (`[overlay] originate`, and
    /// the `lo` addresses inside the ranges with `from_lo`: see
    /// [`Overlay::originated`]); prefixes outside the ranges are ignored.
    /// Announced on multihop sessions with our loopback as next hop.
    pub fn set_overlay_originated(&mut self, now: BTreeSet<IpNet>) {
        let now: BTreeSet<IpNet> = now
            .into_iter()
            .filter(|p| self.overlay.contains(p))
            .collect();
        set_local(&mut self.loc, &self.overlay_originated, &now);
        self.overlay_originated = now;
    }

    pub fn overlay_originated(&self) -> &BTreeSet<IpNet> {
        &self.overlay_originated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loopbacks;
    use crate::wire::Negotiated;

    fn overlay() -> Overlay {
        Overlay {
            ipv4: vec!["10.100.0.0/16".parse().unwrap()],
            ipv6: vec!["fd00:100::/32".parse().unwrap()],
            ..Overlay::default()
        }
    }

    #[test]
    fn each_session_kind_carries_its_own_prefixes() {
        let policy = ImportPolicy {
            loopbacks: Loopbacks {
                ipv4: vec!["10.255.0.0/16".parse().unwrap()],
                ipv6: vec![],
                originate: vec![],
                from_lo: false,
            },
        };
        let o = overlay();
        let check = |p: &str, mh| session_check(&policy, &o, p.parse().unwrap(), mh);
        assert_eq!(check("10.255.0.1/32", false), Ok(()));
        assert_eq!(
            check("10.100.1.0/24", false),
            Err(FilterReason::OverlayOnLinkSession)
        );
        assert_eq!(check("10.100.1.0/24", true), Ok(()));
        assert_eq!(
            check("10.255.0.1/32", true),
            Err(FilterReason::LoopbackOnMultihopSession)
        );
        assert_eq!(
            check("192.0.2.0/24", true),
            Err(FilterReason::OutsideOverlayRanges)
        );
        assert!(carries(true, true) && carries(false, false));
        assert!(!carries(true, false) && !carries(false, true));
    }

    #[test]
    fn carried_next_hop_is_sent_unchanged_where_the_session_can() {
        let ctx = ExportContext::new(
            Negotiated::FABRIC,
            Some("[fd00:255::1]:1790".parse().unwrap()),
        );
        let with = |nh: &str| PathAttributes {
            mp_reach: Some(Box::new(next_hop_carrier(nh.parse().unwrap()))),
            ..Default::default()
        };
        assert_eq!(
            route_next_hop(&with("10.255.0.7"), &ctx, true),
            Some(MpNextHop::V4("10.255.0.7".parse().unwrap()))
        );
        let v6 = MpNextHop::V6 {
            global: "fd00:255::7".parse().unwrap(),
            link_local: None,
        };
        assert_eq!(route_next_hop(&with("fd00:255::7"), &ctx, false), Some(v6));
        assert_eq!(route_next_hop(&with("fd00:255::7"), &ctx, true), Some(v6));
        assert_eq!(route_next_hop(&with("10.255.0.7"), &ctx, false), None);
        let mut neg = Negotiated::FABRIC;
        neg.ipv4_extended_next_hop = false;
        let no_enh = ExportContext::new(neg, Some("[fd00:255::1]:1790".parse().unwrap()));
        assert_eq!(route_next_hop(&with("fd00:255::7"), &no_enh, true), None);
        // Without a carried next hop: next hop self.
        assert_eq!(
            route_next_hop(&PathAttributes::default(), &ctx, false),
            ctx.v6_route_next_hop()
        );
    }

    #[test]
    fn our_next_hop_is_our_lowest_loopback_of_the_family() {
        let lb: BTreeSet<IpNet> = ["10.255.0.9/32", "10.255.0.3/32", "fd00:255::3/128"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            local_next_hop(&lb, true),
            Some("10.255.0.3".parse().unwrap())
        );
        assert_eq!(
            local_next_hop(&lb, false),
            Some("fd00:255::3".parse().unwrap())
        );
        let only6: BTreeSet<IpNet> = ["fd00:255::3/128".parse().unwrap()].into();
        assert_eq!(
            local_next_hop(&only6, true),
            Some("fd00:255::3".parse().unwrap()),
            "RFC 8950"
        );
        let only4: BTreeSet<IpNet> = ["10.255.0.3/32".parse().unwrap()].into();
        assert_eq!(local_next_hop(&only4, false), None);
    }
}
