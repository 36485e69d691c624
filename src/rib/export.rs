//! Building what we send a peer: our loopbacks with next hop self, encoded
//! as BIRD does on a link-local session (RFC 8950 for IPv4, RFC 2545 for IPv6:
//! a 32-byte next hop, global `::` plus our link-local address).

use crate::wire::{AfiSafi, AsPath, MpNextHop, Negotiated, Origin, PathAttributes, UpdateBuilder};
use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What export needs to know of one established session.
#[derive(Clone, Debug)]
pub struct ExportContext {
    pub negotiated: Negotiated,
    /// Our address on the session, the next hop we announce ("next hop self").
    pub local_v6: Option<Ipv6Addr>,
    pub local_v4: Option<Ipv4Addr>,
}

impl ExportContext {
    pub fn new(negotiated: Negotiated, local: Option<SocketAddr>) -> ExportContext {
        let (mut local_v4, mut local_v6) = (None, None);
        match local.map(|a| a.ip()) {
            Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
                Some(v4) => local_v4 = Some(v4),
                None => local_v6 = Some(a),
            },
            Some(IpAddr::V4(a)) => local_v4 = Some(a),
            None => {}
        }
        ExportContext {
            negotiated,
            local_v6,
            local_v4,
        }
    }

    /// Next hop self for a route of `prefix`'s family, `None` if that family
    /// cannot be sent on this session (not negotiated, or no usable address).
    pub fn next_hop_for(&self, prefix: &IpNet) -> Option<MpNextHop> {
        match prefix {
            IpNet::V4(_) => self.v4_route_next_hop(),
            IpNet::V6(_) => self.v6_route_next_hop(),
        }
    }

    /// IPv4 routes: our IPv4 session address, else (RFC 8950) the IPv6 one.
    pub fn v4_route_next_hop(&self) -> Option<MpNextHop> {
        if !self.negotiated.ipv4_unicast {
            return None;
        }
        match (self.local_v4, self.negotiated.ipv4_extended_next_hop) {
            (Some(a), _) => Some(MpNextHop::V4(a)),
            (None, true) => self.v6_next_hop(),
            (None, false) => None,
        }
    }

    pub fn v6_route_next_hop(&self) -> Option<MpNextHop> {
        if !self.negotiated.ipv6_unicast {
            return None;
        }
        self.v6_next_hop()
    }

    /// Next hop self for IPv6 routes, and for IPv4 routes under RFC 8950.
    fn v6_next_hop(&self) -> Option<MpNextHop> {
        let a = self.local_v6?;
        Some(if a.is_unicast_link_local() {
            MpNextHop::V6 {
                global: Ipv6Addr::UNSPECIFIED,
                link_local: Some(a),
            }
        } else {
            MpNextHop::V6 {
                global: a,
                link_local: None,
            }
        })
    }
}

/// Attributes of a loopback this node originates into iBGP (RFC 4271 §5.1):
/// ORIGIN IGP, empty AS_PATH, LOCAL_PREF 100, no MED.
pub fn originated_attributes() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(100),
        ..Default::default()
    }
}

fn split(prefixes: &BTreeSet<IpNet>) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for p in prefixes {
        match p {
            IpNet::V4(p) => v4.push(*p),
            IpNet::V6(p) => v6.push(*p),
        }
    }
    (v4, v6)
}

/// UPDATEs announcing `prefixes` as originated by us, packed per family.
/// IPv4 goes out with our IPv4 session address, else with the IPv6 next hop when
/// RFC 8950 was negotiated, else not at all (the caller warns).
pub fn announce_originated(prefixes: &BTreeSet<IpNet>, ctx: &ExportContext) -> Vec<Bytes> {
    let neg = &ctx.negotiated;
    let builder = UpdateBuilder::new(neg);
    let attrs = originated_attributes();
    let (v4, v6) = split(prefixes);
    let mut out = BytesMut::new();
    if !v4.is_empty() {
        if let Some(nh) = ctx.v4_route_next_hop() {
            let _ = builder.announce_v4(&attrs, nh, v4, &mut out);
        }
    }
    if !v6.is_empty() {
        if let Some(nh) = ctx.v6_route_next_hop() {
            let _ = builder.announce_v6(&attrs, nh, v6, &mut out);
        }
    }
    split_messages(out.freeze())
}

/// End-of-RIB for every negotiated family (RFC 4724 §2), after the initial table.
pub fn end_of_rib(ctx: &ExportContext) -> Vec<Bytes> {
    let builder = UpdateBuilder::new(&ctx.negotiated);
    let mut out = BytesMut::new();
    for (on, family) in [
        (ctx.negotiated.ipv4_unicast, AfiSafi::IPV4_UNICAST),
        (ctx.negotiated.ipv6_unicast, AfiSafi::IPV6_UNICAST),
    ] {
        if on {
            let _ = builder.end_of_rib(family, &mut out);
        }
    }
    split_messages(out.freeze())
}

/// UPDATEs withdrawing `prefixes`.
pub fn withdraw_originated(prefixes: &BTreeSet<IpNet>, ctx: &ExportContext) -> Vec<Bytes> {
    let builder = UpdateBuilder::new(&ctx.negotiated);
    let (v4, v6) = split(prefixes);
    let mut out = BytesMut::new();
    if ctx.negotiated.ipv4_unicast && !v4.is_empty() {
        let _ = builder.withdraw_v4(v4, &mut out);
    }
    if ctx.negotiated.ipv6_unicast && !v6.is_empty() {
        let _ = builder.withdraw_v6(v6, &mut out);
    }
    split_messages(out.freeze())
}

/// How many whole messages a run of encoded messages holds.
pub fn count_messages(mut run: &[u8]) -> usize {
    let mut n = 0;
    while run.len() >= crate::wire::HEADER_LEN {
        let len = usize::from(u16::from_be_bytes([run[16], run[17]]));
        if len < crate::wire::HEADER_LEN || len > run.len() {
            break;
        }
        run = &run[len..];
        n += 1;
    }
    n
}

/// Cut a run of encoded messages into one `Bytes` per message (zero-copy).
pub fn split_messages(mut run: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while run.len() >= crate::wire::HEADER_LEN {
        let len = usize::from(u16::from_be_bytes([run[16], run[17]]));
        if len < crate::wire::HEADER_LEN || len > run.len() {
            break;
        }
        out.push(run.split_to(len));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Message, Update};

    fn bird_golden(name: &str) -> Update {
        let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = Bytes::from(std::fs::read(path).unwrap());
        match Message::decode(bytes, &fabric_negotiated()).unwrap() {
            Message::Update(u) => u,
            other => panic!("not an UPDATE: {other:?}"),
        }
    }

    fn fabric_negotiated() -> Negotiated {
        Negotiated::FABRIC
    }

    fn decode_all(msgs: &[Bytes]) -> Vec<Update> {
        msgs.iter()
            .map(
                |m| match Message::decode(m.clone(), &fabric_negotiated()).unwrap() {
                    Message::Update(u) => u,
                    other => panic!("not an UPDATE: {other:?}"),
                },
            )
            .collect()
    }

    /// Our export of the same loopbacks carries what BIRD's captured UPDATEs carry:
    /// same attributes, same 32-byte next hop (:: + link-local), same prefixes.
    #[test]
    fn originated_routes_match_what_bird_sends() {
        let ctx = ExportContext::new(
            fabric_negotiated(),
            Some("[fe80::1:2%3]:1790".parse().unwrap()),
        );
        let ours: BTreeSet<IpNet> = [
            "10.255.0.1/32",
            "10.255.0.11/32",
            "fd00:255::1/128",
            "fd00:255::11/128",
        ]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
        let sent = decode_all(&announce_originated(&ours, &ctx));
        assert_eq!(sent.len(), 2, "one UPDATE per family");
        for (ours, golden) in sent
            .iter()
            .zip(["bird_update_v4.bin", "bird_update_v6.bin"])
        {
            let bird = bird_golden(golden);
            assert_eq!(
                ours.attrs.without_reach(),
                bird.attrs.without_reach(),
                "{golden}"
            );
            let (a, b) = (
                ours.attrs.mp_reach.as_ref().unwrap(),
                bird.attrs.mp_reach.as_ref().unwrap(),
            );
            assert_eq!(
                (a.afi_safi, &a.next_hop),
                (b.afi_safi, &b.next_hop),
                "{golden}"
            );
            let mut pa: Vec<_> = a.prefixes().collect();
            let mut pb: Vec<_> = b.prefixes().collect();
            pa.sort();
            pb.sort();
            assert_eq!(pa, pb, "{golden}");
        }
    }

    #[test]
    fn end_of_rib_matches_bird_bytes() {
        let ctx = ExportContext::new(
            fabric_negotiated(),
            Some("[fe80::1:2%3]:1790".parse().unwrap()),
        );
        let eor = end_of_rib(&ctx);
        for (ours, golden) in eor.iter().zip(["bird_eor_v4.bin", "bird_eor_v6.bin"]) {
            let path = format!("{}/tests/golden/{golden}", env!("CARGO_MANIFEST_DIR"));
            assert_eq!(
                ours.as_ref(),
                std::fs::read(path).unwrap().as_slice(),
                "{golden}"
            );
        }
    }

    #[test]
    fn withdrawals_and_families() {
        let mut neg = fabric_negotiated();
        let ctx = ExportContext::new(neg, Some("[fe80::1:2%3]:1790".parse().unwrap()));
        let set: BTreeSet<IpNet> = ["10.255.0.1/32", "fd00:255::1/128"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        let w = decode_all(&withdraw_originated(&set, &ctx));
        let gone: Vec<IpNet> = w
            .iter()
            .flat_map(|u| u.withdrawn_all().collect::<Vec<_>>())
            .collect();
        assert_eq!(gone.len(), 2);
        assert!(set.iter().all(|p| gone.contains(p)));
        // Without RFC 8950 and without an IPv4 session address, IPv4 cannot be sent.
        neg.ipv4_extended_next_hop = false;
        let ctx = ExportContext::new(neg, Some("[fe80::1:2%3]:1790".parse().unwrap()));
        let sent = decode_all(&announce_originated(&set, &ctx));
        let fams: Vec<_> = sent
            .iter()
            .map(|u| u.attrs.mp_reach.as_ref().unwrap().afi_safi)
            .collect();
        assert_eq!(fams, [AfiSafi::IPV6_UNICAST]);
    }
}
