//! Which received next hops can be used (RFC 4271 §6.3, RFC 7606 §7.3,
//! RFC 4760 §3, RFC 2545 §3, RFC 8950 §3). An unusable next hop makes the
//! route treat-as-withdraw: kept as filtered with the reason, session up.

use super::export::ExportContext;
use super::policy::FilterReason;
use crate::wire::{MpNextHop, MpReach, AFI_IPV4};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The next hop of a route, as received (for display), and whether it can be used.
pub(crate) type Checked = (Option<IpAddr>, Result<(), FilterReason>);

fn bad(why: &'static str) -> Result<(), FilterReason> {
    Err(FilterReason::BadNextHop(why))
}

/// An IPv4 next hop: not 0.0.0.0, not multicast (224/4), not class E
/// (240/4, broadcast included), not our own address on the session.
fn check_v4(a: Ipv4Addr, ctx: &ExportContext) -> Result<(), FilterReason> {
    if a.is_unspecified() {
        bad("0.0.0.0")
    } else if a.is_multicast() {
        bad("multicast")
    } else if a.octets()[0] >= 240 {
        bad("class E")
    } else if ctx.local_v4 == Some(a) {
        bad("our own address")
    } else {
        Ok(())
    }
}

fn check_v6(a: Ipv6Addr, ctx: &ExportContext) -> Result<(), FilterReason> {
    if a.is_unspecified() {
        bad("::")
    } else if a.is_multicast() {
        bad("multicast")
    } else if ctx.local_v6 == Some(a) {
        bad("our own address")
    } else {
        Ok(())
    }
}

/// The NEXT_HOP attribute of IPv4 routes in the NLRI field.
pub(crate) fn next_hop_attr(a: Option<Ipv4Addr>, ctx: &ExportContext) -> Checked {
    match a {
        Some(a) => (Some(IpAddr::V4(a)), check_v4(a, ctx)),
        None => (None, Err(FilterReason::NoNextHop)),
    }
}

/// The next hop of MP_REACH_NLRI: the link-local address when present (RFC
/// 2545 §3), else the global one; for IPv4 NLRI an IPv6 next hop only with
/// RFC 8950 negotiated.
pub(crate) fn mp_next_hop(r: &MpReach, ctx: &ExportContext) -> Checked {
    match r.next_hop {
        MpNextHop::V4(a) => (Some(IpAddr::V4(a)), check_v4(a, ctx)),
        MpNextHop::V6 { global, link_local } => {
            let used = match link_local {
                Some(ll) if !ll.is_unspecified() => ll,
                _ => global,
            };
            let shown = Some(IpAddr::V6(used));
            if r.afi_safi.afi == AFI_IPV4 && !ctx.negotiated.ipv4_extended_next_hop {
                return (shown, Err(FilterReason::ExtendedNextHopNotNegotiated));
            }
            if let Some(ll) = link_local.filter(|ll| !ll.is_unspecified()) {
                if !ll.is_unicast_link_local() {
                    return (shown, bad("second next hop is not link-local"));
                }
            }
            if link_local.is_some() && !global.is_unspecified() && global.is_multicast() {
                return (shown, bad("multicast"));
            }
            (shown, check_v6(used, ctx))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AfiSafi, Negotiated};
    use bytes::Bytes;

    fn ctx() -> ExportContext {
        ExportContext::new(Negotiated::FABRIC, Some("[fe80::1]:179".parse().unwrap()))
    }

    fn v4_ctx() -> ExportContext {
        ExportContext::new(
            Negotiated::default(),
            Some("192.0.2.1:179".parse().unwrap()),
        )
    }

    fn verdict(a: &str) -> Result<(), FilterReason> {
        next_hop_attr(Some(a.parse().unwrap()), &v4_ctx()).1
    }

    #[test]
    fn ipv4_next_hops() {
        assert_eq!(verdict("192.0.2.2"), Ok(()));
        assert_eq!(verdict("0.0.0.0"), bad("0.0.0.0"));
        assert_eq!(verdict("224.0.0.5"), bad("multicast"));
        assert_eq!(verdict("239.255.255.255"), bad("multicast"));
        assert_eq!(verdict("240.0.0.1"), bad("class E"));
        assert_eq!(verdict("255.255.255.255"), bad("class E"));
        assert_eq!(verdict("192.0.2.1"), bad("our own address"));
        assert_eq!(
            next_hop_attr(None, &v4_ctx()),
            (None, Err(FilterReason::NoNextHop))
        );
    }

    fn mp(afi_safi: AfiSafi, next_hop: MpNextHop) -> MpReach {
        MpReach {
            afi_safi,
            next_hop,
            nlri: Bytes::new(),
            add_path: false,
        }
    }

    fn v6(global: &str, ll: Option<&str>) -> MpNextHop {
        MpNextHop::V6 {
            global: global.parse().unwrap(),
            link_local: ll.map(|l| l.parse().unwrap()),
        }
    }

    #[test]
    fn mp_reach_next_hops() {
        let c = ctx();
        let v6u = AfiSafi::IPV6_UNICAST;
        let ok = mp_next_hop(&mp(v6u, v6("::", Some("fe80::2"))), &c);
        assert_eq!(ok, (Some("fe80::2".parse().unwrap()), Ok(())));
        assert_eq!(mp_next_hop(&mp(v6u, v6("fd00::2", None)), &c).1, Ok(()));
        // Unspecified without a link-local address.
        assert_eq!(mp_next_hop(&mp(v6u, v6("::", None)), &c).1, bad("::"));
        assert_eq!(mp_next_hop(&mp(v6u, v6("::", Some("::"))), &c).1, bad("::"));
        assert_eq!(
            mp_next_hop(&mp(v6u, v6("ff02::1", None)), &c).1,
            bad("multicast")
        );
        assert_eq!(
            mp_next_hop(&mp(v6u, v6("::", Some("ff02::2"))), &c).1,
            bad("second next hop is not link-local")
        );
        assert_eq!(
            mp_next_hop(&mp(v6u, v6("::", Some("fe80::1"))), &c).1,
            bad("our own address")
        );
        // IPv4 NLRI with an IPv6 next hop: only under RFC 8950.
        let v4u = AfiSafi::IPV4_UNICAST;
        assert_eq!(
            mp_next_hop(&mp(v4u, v6("::", Some("fe80::2"))), &c).1,
            Ok(())
        );
        assert_eq!(
            mp_next_hop(&mp(v4u, v6("::", Some("fe80::2"))), &v4_ctx()).1,
            Err(FilterReason::ExtendedNextHopNotNegotiated)
        );
        assert_eq!(
            mp_next_hop(&mp(v4u, v6("fd00::2", None)), &v4_ctx()).1,
            Err(FilterReason::ExtendedNextHopNotNegotiated)
        );
        assert_eq!(
            mp_next_hop(&mp(v4u, MpNextHop::V4("224.0.0.1".parse().unwrap())), &c).1,
            bad("multicast")
        );
    }
}
