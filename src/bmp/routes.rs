//! A table of routes as the UPDATEs Route Monitoring carries (RFC 7854 §4.6):
//! routes sharing attributes and next hop packed together.

use crate::rib::InRoute;
use crate::wire::{MpNextHop, Negotiated, UpdateBuilder};
use bytes::Bytes;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

/// Attribute set (interned pointer), next hop, IPv6.
type GroupKey = (usize, Option<IpAddr>, bool);
/// A route of the group (for its attributes) and its (path id, prefix)s.
type Group<'a> = (&'a InRoute, Vec<(u32, IpNet)>);

/// `neg` of a session turned around: messages encoded as the peer sends
/// them, with Path Identifiers where it sends ADD-PATH (RFC 7911).
pub fn as_received(neg: &Negotiated) -> Negotiated {
    Negotiated {
        add_path_send: neg.add_path_receive,
        ..*neg
    }
}

/// UPDATEs announcing `routes` (whole messages), encoded as on a session with
/// `neg` (RFC 7854 §4.6: as received, with the path ids of an ADD-PATH
/// peer). A route without a usable next hop or one the session could not
/// carry is left out.
pub fn route_monitoring_updates<'a>(
    routes: impl IntoIterator<Item = (IpNet, &'a InRoute)>,
    neg: &Negotiated,
) -> Vec<Bytes> {
    let neg = &as_received(neg);
    // Group by (attribute set, next hop, family): the attributes are interned,
    // so pointer equality is attribute equality.
    let mut groups: BTreeMap<GroupKey, Group<'_>> = BTreeMap::new();
    for (prefix, r) in routes {
        let key = (
            std::sync::Arc::as_ptr(&r.attrs) as usize,
            r.next_hop,
            prefix.addr().is_ipv6(),
        );
        groups
            .entry(key)
            .or_insert_with(|| (r, Vec::new()))
            .1
            .push((r.path_id, prefix));
    }
    let b = UpdateBuilder::new(neg);
    let mut out = Vec::new();
    for ((_, nh, v6), (r, prefixes)) in groups {
        let Some(nh) = nh else { continue };
        let next_hop = match nh {
            IpAddr::V4(a) => MpNextHop::V4(a),
            IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => MpNextHop::V6 {
                global: Ipv6Addr::UNSPECIFIED,
                link_local: Some(a),
            },
            IpAddr::V6(a) => MpNextHop::V6 {
                global: a,
                link_local: None,
            },
        };
        let mut buf = bytes::BytesMut::new();
        let ap = &neg.add_path_send;
        let written = if v6 {
            let p = prefixes.iter().filter_map(|(i, p)| match p {
                IpNet::V6(p) => Some((*i, *p)),
                _ => None,
            });
            if ap.ipv6_unicast {
                b.announce_v6(&r.attrs, next_hop, p, &mut buf)
            } else {
                b.announce_v6(&r.attrs, next_hop, p.map(|x| x.1), &mut buf)
            }
        } else {
            let p = prefixes.iter().filter_map(|(i, p)| match p {
                IpNet::V4(p) => Some((*i, *p)),
                _ => None,
            });
            if ap.ipv4_unicast {
                b.announce_v4(&r.attrs, next_hop, p, &mut buf)
            } else {
                b.announce_v4(&r.attrs, next_hop, p.map(|x| x.1), &mut buf)
            }
        };
        if written.is_err() {
            continue;
        }
        out.extend(split_messages(buf.freeze()));
    }
    out
}

/// Whole BGP messages out of a buffer of them.
pub fn split_messages(mut b: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while b.len() >= 19 {
        let len = usize::from(u16::from_be_bytes([b[16], b[17]]));
        if len < 19 || len > b.len() {
            break;
        }
        out.push(b.split_to(len));
    }
    out
}
