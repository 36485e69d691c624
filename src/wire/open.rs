//! OPEN message (RFC 4271 §4.2, §6.2), optional parameters with the RFC 9072
//! extended length, and capability negotiation.
//!
//! The peer AS and "BGP Identifier equals ours" checks need configuration and
//! are done by the session FSM, not here.

use super::capability::{self, AddPathMode, Capability};
use super::notification::{open as sub, Notification, OPEN_MESSAGE_ERROR};
use super::{AfiSafi, EncodeError, Families, Negotiated, AFI_IPV6, AS_TRANS};
use bytes::{BufMut, Bytes, BytesMut};
use std::net::Ipv4Addr;

/// Optional parameter type: Capabilities (RFC 5492 §4).
pub const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 §2: Non-Ext OP Type marking the extended encoding.
const PARAM_EXTENDED: u8 = 255;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Open {
    pub version: u8,
    /// 2-octet My AS; AS_TRANS when the real AS needs 4 octets (RFC 6793 §4.1).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
    /// Optional parameters other than Capabilities. Decoding rejects them
    /// (2/4 Unsupported Optional Parameter), so this is only ever non-empty on
    /// OPENs built locally; they are encoded after the capabilities.
    #[serde(skip)]
    pub other_params: Vec<(u8, Bytes)>,
}

impl Open {
    /// BGP-4 OPEN; `my_as` is AS_TRANS when `asn` needs 4 octets. Pass the
    /// `Capability::FourOctetAs(asn)` in `capabilities` yourself.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Open {
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
        Open {
            version: 4,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
            other_params: Vec::new(),
        }
    }

    /// The speaker's AS: the 4-octet AS capability if present (RFC 6793 §4.1), else My AS.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub fn has(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }

    /// Families of the Multiprotocol capabilities; none at all means IPv4 unicast (RFC 4760 §8).
    pub fn families(&self) -> Vec<AfiSafi> {
        let mut v: Vec<AfiSafi> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect();
        if v.is_empty() {
            v.push(AfiSafi::IPV4_UNICAST);
        }
        v
    }

    fn ext_next_hop(&self, nlri: AfiSafi, nexthop_afi: u16) -> bool {
        self.capabilities.iter().any(|c| match c {
            Capability::ExtendedNextHop(es) => es
                .iter()
                .any(|e| e.nlri == nlri && e.nexthop_afi == nexthop_afi),
            _ => false,
        })
    }

    /// What the ADD-PATH capability says of `f` (RFC 7911 §4); the last
    /// entry for a family counts.
    pub fn add_path(&self, f: AfiSafi) -> Option<AddPathMode> {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::AddPath(es) => es.iter().rev().find(|(g, _)| *g == f).map(|e| e.1),
                _ => None,
            })
            .next_back()
    }

    /// Decodes and validates an OPEN body (RFC 4271 §6.2).
    pub fn decode(body: Bytes) -> Result<Open, Notification> {
        let unspecific = || Notification::open_error(sub::UNSPECIFIC);
        let b = &body[..];
        let [version, a1, a2, h1, h2, i1, i2, i3, i4, opt_len, ..] = *b else {
            return Err(unspecific());
        };
        if version != 4 {
            return Err(Notification::unsupported_version(4));
        }
        let hold_time = u16::from_be_bytes([h1, h2]);
        if hold_time == 1 || hold_time == 2 {
            return Err(Notification::open_error(sub::UNACCEPTABLE_HOLD_TIME));
        }
        let bgp_id = Ipv4Addr::new(i1, i2, i3, i4);
        if bgp_id.is_unspecified() || bgp_id.is_multicast() || bgp_id.is_broadcast() {
            return Err(Notification::open_error(sub::BAD_BGP_IDENTIFIER));
        }
        let mut open = Open {
            version,
            my_as: u16::from_be_bytes([a1, a2]),
            hold_time,
            bgp_id,
            capabilities: Vec::new(),
            other_params: Vec::new(),
        };

        // RFC 9072: Non-Ext OP Len 255 and Non-Ext OP Type 255 introduce a 2-octet
        // total length and 2-octet parameter lengths.
        let (extended, params) = if opt_len == 255 && b.get(10) == Some(&PARAM_EXTENDED) {
            let Some(&[l1, l2]) = b.get(11..13) else {
                return Err(unspecific());
            };
            (true, (13, usize::from(u16::from_be_bytes([l1, l2]))))
        } else {
            (false, (10, usize::from(opt_len)))
        };
        let (start, len) = params;
        if start + len != b.len() {
            return Err(unspecific());
        }
        let hdr = if extended { 3 } else { 2 };
        let mut pos = start;
        while pos < b.len() {
            let Some(h) = b.get(pos..pos + hdr) else {
                return Err(unspecific());
            };
            let ptype = h[0];
            let plen = if extended {
                usize::from(u16::from_be_bytes([h[1], h[2]]))
            } else {
                usize::from(h[1])
            };
            let end = pos + hdr + plen;
            if end > b.len() {
                return Err(unspecific());
            }
            if ptype != PARAM_CAPABILITIES {
                return Err(Notification::new(
                    OPEN_MESSAGE_ERROR,
                    sub::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Bytes::new(),
                ));
            }
            capability::decode_list(&body.slice(pos + hdr..end), &mut open.capabilities)?;
            pos = end;
        }
        Ok(open)
    }

    /// Appends the OPEN body. All capabilities go in one Capabilities parameter;
    /// the RFC 9072 extended encoding is used only when the parameters exceed 255 octets.
    pub fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.version);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        let mut caps = BytesMut::new();
        for c in &self.capabilities {
            c.encode(&mut caps)?;
        }
        let mut params: Vec<(u8, &[u8])> = Vec::with_capacity(1 + self.other_params.len());
        if !caps.is_empty() {
            params.push((PARAM_CAPABILITIES, &caps));
        }
        params.extend(self.other_params.iter().map(|(t, v)| (*t, &v[..])));
        let short: usize = params.iter().map(|(_, v)| 2 + v.len()).sum();
        if short <= 255 && params.iter().all(|(_, v)| v.len() <= 255) {
            out.put_u8(short as u8);
            for (t, v) in params {
                out.put_u8(t);
                out.put_u8(v.len() as u8);
                out.put_slice(v);
            }
        } else {
            let long: usize = params.iter().map(|(_, v)| 3 + v.len()).sum();
            let long = u16::try_from(long)
                .map_err(|_| EncodeError::ValueTooLong("optional parameters"))?;
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED);
            out.put_u16(long);
            for (t, v) in params {
                out.put_u8(t);
                out.put_u16(v.len() as u16);
                out.put_slice(v);
            }
        }
        Ok(())
    }
}

/// What a session runs with: the capabilities both OPENs carry (RFC 5492 §3).
/// Families: both advertise them, a speaker without Multiprotocol capability
/// having IPv4 unicast only (RFC 4760 §8). Extended next hop: both advertise
/// (IPv4 unicast, IPv6 next hop) and IPv4 unicast is negotiated (RFC 8950).
/// Enhanced route refresh requires route refresh too (RFC 7313 §3).
/// ADD-PATH per negotiated family (RFC 7911 §5): we receive paths if we
/// announced receive and the peer send, we send them if the reverse.
pub fn negotiate(local: &Open, remote: &Open) -> Negotiated {
    let both = |code| local.has(code) && remote.has(code);
    let (lf, rf) = (local.families(), remote.families());
    let family = |f: AfiSafi| lf.contains(&f) && rf.contains(&f);
    let ipv4_unicast = family(AfiSafi::IPV4_UNICAST);
    let route_refresh = both(capability::ROUTE_REFRESH);
    let ipv6_unicast = family(AfiSafi::IPV6_UNICAST);
    let add_path = |ours: fn(AddPathMode) -> bool, theirs: fn(AddPathMode) -> bool| {
        let one = |f: AfiSafi| {
            local.add_path(f).is_some_and(ours) && remote.add_path(f).is_some_and(theirs)
        };
        Families {
            ipv4_unicast: ipv4_unicast && one(AfiSafi::IPV4_UNICAST),
            ipv6_unicast: ipv6_unicast && one(AfiSafi::IPV6_UNICAST),
        }
    };
    Negotiated {
        four_octet_as: both(capability::FOUR_OCTET_AS),
        extended_message: both(capability::EXTENDED_MESSAGE),
        ipv4_extended_next_hop: ipv4_unicast
            && local.ext_next_hop(AfiSafi::IPV4_UNICAST, AFI_IPV6)
            && remote.ext_next_hop(AfiSafi::IPV4_UNICAST, AFI_IPV6),
        ipv4_unicast,
        ipv6_unicast,
        route_refresh,
        enhanced_route_refresh: route_refresh && both(capability::ENHANCED_ROUTE_REFRESH),
        add_path_receive: add_path(AddPathMode::receives, AddPathMode::sends),
        add_path_send: add_path(AddPathMode::sends, AddPathMode::receives),
        views: Families {
            ipv4_unicast: family(super::view_nlri::IPV4_VIEW),
            ipv6_unicast: family(super::view_nlri::IPV6_VIEW),
        },
        view: None,
    }
}

/// Graceful restart on one session (RFC 4724 §3, §4): what the peer said,
/// when both OPENs carry the capability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// The peer's restart time: how long to keep its routes after a drop.
    pub restart_time: u16,
    /// R bit: the peer has just restarted.
    pub restarting: bool,
    /// Families of the session the capability lists: their routes are kept
    /// when the session drops (RFC 4724 §4.2).
    pub families: Vec<AfiSafi>,
    /// Of those, the ones whose forwarding state the peer preserved (F bit):
    /// on a new session, stale routes of the others go at once.
    pub preserved: Vec<AfiSafi>,
}

/// Graceful restart in force on a session: `None` unless both OPENs carry
/// the capability (code 64). Families are those both sides exchange.
pub fn negotiate_graceful_restart(local: &Open, remote: &Open) -> Option<GracefulRestart> {
    if !local.has(capability::GRACEFUL_RESTART) {
        return None;
    }
    let (lf, rf) = (local.families(), remote.families());
    remote.capabilities.iter().find_map(|c| match c {
        Capability::GracefulRestart {
            restart_state,
            restart_time,
            families,
            ..
        } => {
            let common = |(f, _): &&(AfiSafi, u8)| lf.contains(f) && rf.contains(f);
            Some(GracefulRestart {
                restart_time: *restart_time,
                restarting: *restart_state,
                families: families.iter().filter(common).map(|(f, _)| *f).collect(),
                preserved: families
                    .iter()
                    .filter(common)
                    .filter(|(_, flags)| flags & 0x80 != 0)
                    .map(|(f, _)| *f)
                    .collect(),
            })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::capability::ExtNhEntry;

    fn body(open: &Open) -> Bytes {
        let mut out = BytesMut::new();
        open.encode_body(&mut out).unwrap();
        out.freeze()
    }

    fn err(b: &[u8]) -> (u8, u8, Vec<u8>) {
        let n = Open::decode(Bytes::copy_from_slice(b)).unwrap_err();
        (n.code, n.subcode, n.data.to_vec())
    }

    const BASE: [u8; 10] = [4, 0xfd, 0xe8, 0, 90, 10, 0, 0, 1, 0];

    #[test]
    fn new_uses_as_trans() {
        let o = Open::new(
            4242421945,
            90,
            Ipv4Addr::new(10, 0, 0, 1),
            vec![Capability::FourOctetAs(4242421945)],
        );
        assert_eq!(o.my_as, AS_TRANS);
        assert_eq!(o.asn(), 4242421945);
        let o = Open::new(65000, 90, Ipv4Addr::new(10, 0, 0, 1), vec![]);
        assert_eq!((o.my_as, o.asn()), (65000, 65000));
    }

    #[test]
    fn roundtrip_short_and_extended_params() {
        let caps = vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(70000),
        ];
        let o = Open::new(70000, 90, Ipv4Addr::new(10, 0, 0, 1), caps);
        let b = body(&o);
        assert_eq!(b[9] as usize, b.len() - 10);
        assert_eq!(Open::decode(b).unwrap(), o);
        // 60 capabilities of 6 octets: more than 255 octets, RFC 9072 encoding.
        let many = (0..60)
            .map(|i| Capability::Multiprotocol(AfiSafi { afi: i, safi: 1 }))
            .collect();
        let o = Open::new(65000, 0, Ipv4Addr::new(10, 0, 0, 1), many);
        let b = body(&o);
        assert_eq!(&b[9..11], &[255, 255]);
        assert_eq!(Open::decode(b).unwrap(), o);
    }

    #[test]
    fn validation_errors() {
        let mut b = BASE;
        b[0] = 3;
        assert_eq!(err(&b), (2, 1, vec![0, 4]));
        let mut b = BASE;
        b[4] = 2;
        assert_eq!(err(&b), (2, 6, vec![]));
        let mut b = BASE;
        b[4] = 1;
        assert_eq!(err(&b), (2, 6, vec![]));
        let mut b = BASE;
        b[5..9].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(err(&b), (2, 3, vec![]));
        b[5..9].copy_from_slice(&[224, 0, 0, 5]);
        assert_eq!(err(&b), (2, 3, vec![]));
        // Truncated body.
        assert_eq!(err(&BASE[..9]), (2, 0, vec![]));
        // Optional parameters length disagreeing with the body.
        let mut b = BASE.to_vec();
        b[9] = 3;
        b.extend_from_slice(&[2, 0]);
        assert_eq!(err(&b), (2, 0, vec![]));
        // Unsupported optional parameter type (1 = authentication).
        let mut b = BASE.to_vec();
        b[9] = 3;
        b.extend_from_slice(&[1, 1, 0]);
        assert_eq!(err(&b), (2, 4, vec![]));
        // Parameter length past the end.
        let mut b = BASE.to_vec();
        b[9] = 2;
        b.extend_from_slice(&[2, 5]);
        assert_eq!(err(&b), (2, 0, vec![]));
        // Malformed capability inside.
        let mut b = BASE.to_vec();
        b[9] = 4;
        b.extend_from_slice(&[2, 2, 65, 0]);
        assert_eq!(err(&b), (2, 0, vec![65, 0]));
        // Hold time 0 and 3 are fine; no parameters is fine.
        assert!(Open::decode(Bytes::copy_from_slice(&BASE)).is_ok());
    }

    #[test]
    fn negotiation() {
        let id = Ipv4Addr::new(10, 0, 0, 1);
        let enh = Capability::ExtendedNextHop(vec![ExtNhEntry {
            nlri: AfiSafi::IPV4_UNICAST,
            nexthop_afi: AFI_IPV6,
        }]);
        let full = vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::FourOctetAs(65000),
            Capability::ExtendedMessage,
            enh.clone(),
        ];
        let a = Open::new(65000, 90, id, full.clone());
        let n = negotiate(&a, &a);
        assert_eq!(
            n,
            Negotiated {
                four_octet_as: true,
                extended_message: true,
                ipv4_extended_next_hop: true,
                ipv4_unicast: true,
                ipv6_unicast: true,
                route_refresh: true,
                enhanced_route_refresh: true,
                add_path_receive: Families::NONE,
                add_path_send: Families::NONE,
                views: Default::default(),
                view: None,
            }
        );
        // A speaker with no capabilities: IPv4 unicast only, nothing else.
        let bare = Open::new(65000, 90, id, vec![]);
        let n = negotiate(&a, &bare);
        assert_eq!(
            n,
            Negotiated {
                ipv4_unicast: true,
                ..Default::default()
            }
        );
        // IPv6 only on one side.
        let v6 = Open::new(
            65000,
            90,
            id,
            vec![
                Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
                enh,
                Capability::EnhancedRouteRefresh,
            ],
        );
        let n = negotiate(&a, &v6);
        assert!(
            !n.ipv4_unicast
                && n.ipv6_unicast
                && !n.ipv4_extended_next_hop
                && !n.enhanced_route_refresh
        );
    }

    #[test]
    fn add_path_negotiation_matrix() {
        use AddPathMode::*;
        let id = Ipv4Addr::new(10, 0, 0, 1);
        let v4 = AfiSafi::IPV4_UNICAST;
        let v6 = AfiSafi::IPV6_UNICAST;
        let open = |ap: Vec<(AfiSafi, AddPathMode)>| {
            let mut caps = vec![Capability::Multiprotocol(v4), Capability::Multiprotocol(v6)];
            if !ap.is_empty() {
                caps.push(Capability::AddPath(ap));
            }
            Open::new(65000, 90, id, caps)
        };
        let modes = [None, Some(Receive), Some(Send), Some(Both)];
        for ours in modes {
            for theirs in modes {
                let l = open(ours.map(|m| vec![(v4, m)]).unwrap_or_default());
                let r = open(theirs.map(|m| vec![(v4, m)]).unwrap_or_default());
                let n = negotiate(&l, &r);
                let rx = ours.is_some_and(|m| m.receives()) && theirs.is_some_and(|m| m.sends());
                let tx = ours.is_some_and(|m| m.sends()) && theirs.is_some_and(|m| m.receives());
                assert_eq!(n.add_path_receive.ipv4_unicast, rx, "{ours:?} {theirs:?}");
                assert_eq!(n.add_path_send.ipv4_unicast, tx, "{ours:?} {theirs:?}");
                assert!(!n.add_path_receive.ipv6_unicast && !n.add_path_send.ipv6_unicast);
                // The peer's view is the mirror image.
                let m = negotiate(&r, &l);
                assert_eq!(
                    (m.add_path_receive, m.add_path_send),
                    (n.add_path_send, n.add_path_receive)
                );
            }
        }
        // Per family: IPv6 both ways, IPv4 not at all.
        let n = negotiate(&open(vec![(v6, Both)]), &open(vec![(v6, Both), (v4, Both)]));
        assert_eq!(
            (n.add_path_receive, n.add_path_send),
            (
                Families {
                    ipv4_unicast: false,
                    ipv6_unicast: true
                },
                Families {
                    ipv4_unicast: false,
                    ipv6_unicast: true
                }
            )
        );
        // A family not negotiated has no ADD-PATH even if both announce it.
        let only4 = Open::new(
            65000,
            90,
            id,
            vec![
                Capability::Multiprotocol(v4),
                Capability::AddPath(vec![(v4, Both), (v6, Both)]),
            ],
        );
        let n = negotiate(&only4, &open(vec![(v4, Both), (v6, Both)]));
        assert!(n.add_path_receive.ipv4_unicast && !n.add_path_receive.ipv6_unicast);
    }

    #[test]
    fn graceful_restart_needs_both_and_keeps_preserved_common_families() {
        let gr = |r, fams: Vec<(AfiSafi, u8)>| Capability::GracefulRestart {
            restart_state: r,
            notification: false,
            restart_time: 90,
            families: fams,
        };
        let mp4 = Capability::Multiprotocol(AfiSafi::IPV4_UNICAST);
        let mp6 = Capability::Multiprotocol(AfiSafi::IPV6_UNICAST);
        let id = Ipv4Addr::new(10, 0, 0, 1);
        let local = Open::new(
            65000,
            90,
            id,
            vec![mp4.clone(), mp6.clone(), gr(false, vec![])],
        );
        let remote = Open::new(
            65000,
            90,
            id,
            vec![
                mp4.clone(),
                gr(
                    true,
                    vec![(AfiSafi::IPV4_UNICAST, 0x80), (AfiSafi::IPV6_UNICAST, 0x80)],
                ),
            ],
        );
        assert_eq!(
            negotiate_graceful_restart(&local, &remote),
            Some(GracefulRestart {
                restart_time: 90,
                restarting: true,
                families: vec![AfiSafi::IPV4_UNICAST],
                preserved: vec![AfiSafi::IPV4_UNICAST],
            })
        );
        let plain = Open::new(65000, 90, id, vec![mp4.clone(), mp6]);
        assert_eq!(negotiate_graceful_restart(&plain, &remote), None);
        assert_eq!(negotiate_graceful_restart(&local, &plain), None);
        let no_f = Open::new(
            65000,
            90,
            id,
            vec![mp4, gr(false, vec![(AfiSafi::IPV4_UNICAST, 0)])],
        );
        assert_eq!(
            negotiate_graceful_restart(&local, &no_f).unwrap().preserved,
            vec![]
        );
    }
}
