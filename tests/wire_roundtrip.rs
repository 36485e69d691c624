//! Property tests of the wire codec: encode → decode gives the same value for
//! every kind of message and every combination of 4-octet AS and extended
//! messages, and with ADD-PATH Path Identifiers (RFC 7911); decoding arbitrary
//! or mutated bytes never panics.

use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use kittbgpd::wire::attr::{
    Aggregator, AsPath, AsSegment, AsSegmentKind, MpNextHop, MpReach, MpUnreach, Origin,
    PathAttributes, RawAttribute,
};
use kittbgpd::wire::capability::{AddPathMode, Capability, ExtNhEntry};
use kittbgpd::wire::{
    split_frame, AfiSafi, Families, Message, Negotiated, Notification, Open, Pfx, RouteRefresh,
    Update, UpdateBuilder,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn negs() -> Vec<Negotiated> {
    let mut v = Vec::new();
    for four_octet_as in [false, true] {
        for extended_message in [false, true] {
            v.push(Negotiated {
                four_octet_as,
                extended_message,
                ipv4_extended_next_hop: true,
                ipv4_unicast: true,
                ipv6_unicast: true,
                route_refresh: true,
                enhanced_route_refresh: true,
                ..Default::default()
            });
        }
    }
    v
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn afi_safi() -> impl Strategy<Value = AfiSafi> {
    (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| AfiSafi { afi, safi })
}

const KNOWN_CAPS: [u8; 8] = [1, 2, 5, 6, 64, 65, 69, 70];

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        afi_safi().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        vec((afi_safi(), any::<u16>()), 0..5).prop_map(|v| Capability::ExtendedNextHop(
            v.into_iter()
                .map(|(nlri, nexthop_afi)| ExtNhEntry { nlri, nexthop_afi })
                .collect()
        )),
        Just(Capability::ExtendedMessage),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            vec((afi_safi(), any::<u8>()), 0..4)
        )
            .prop_map(|(restart_state, notification, restart_time, families)| {
                Capability::GracefulRestart {
                    restart_state,
                    notification,
                    restart_time,
                    families,
                }
            }),
        any::<u32>().prop_map(Capability::FourOctetAs),
        Just(Capability::EnhancedRouteRefresh),
        vec(
            (
                afi_safi(),
                prop_oneof![
                    Just(AddPathMode::Receive),
                    Just(AddPathMode::Send),
                    Just(AddPathMode::Both)
                ]
            ),
            1..4
        )
        .prop_map(Capability::AddPath),
        (
            any::<u8>().prop_filter("unknown code", |c| !KNOWN_CAPS.contains(c)),
            bytes(20)
        )
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn router_id() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("unicast id", |a| {
            !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast()
        })
}

fn open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        any::<u16>().prop_filter("hold", |h| *h != 1 && *h != 2),
        router_id(),
        vec(capability(), 0..50),
    )
        .prop_map(|(my_as, hold_time, bgp_id, capabilities)| Open {
            version: 4,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
            other_params: Vec::new(),
        })
}

fn v4net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn v6net() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

fn pack_v4(ps: &[Ipv4Net]) -> Bytes {
    Update::withdraw_v4(ps.iter().copied()).withdrawn
}

fn v6nh() -> impl Strategy<Value = MpNextHop> {
    (any::<u128>(), of(any::<u128>())).prop_map(|(g, ll)| MpNextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    prop_oneof![
        (
            prop_oneof![
                any::<u32>().prop_map(|a| MpNextHop::V4(Ipv4Addr::from(a))),
                v6nh()
            ],
            vec(v4net(), 0..20)
        )
            .prop_map(|(nh, ps)| MpReach::new(
                AfiSafi::IPV4_UNICAST,
                nh,
                ps.into_iter().map(IpNet::V4)
            )),
        (v6nh(), vec(v6net(), 0..20)).prop_map(|(nh, ps)| MpReach::new(
            AfiSafi::IPV6_UNICAST,
            nh,
            ps.into_iter().map(IpNet::V6)
        )),
    ]
}

fn mp_unreach() -> impl Strategy<Value = MpUnreach> {
    prop_oneof![
        vec(v4net(), 0..20)
            .prop_map(|ps| MpUnreach::new(AfiSafi::IPV4_UNICAST, ps.into_iter().map(IpNet::V4))),
        vec(v6net(), 0..20)
            .prop_map(|ps| MpUnreach::new(AfiSafi::IPV6_UNICAST, ps.into_iter().map(IpNet::V6))),
    ]
}

/// AS paths valid in both encodings: confederation segments only at the front
/// and with 2-octet members (RFC 6793 §4.2.2 keeps them out of AS4_PATH).
fn as_path() -> impl Strategy<Value = AsPath> {
    let confed = (
        prop_oneof![
            Just(AsSegmentKind::ConfedSequence),
            Just(AsSegmentKind::ConfedSet)
        ],
        vec(0u32..=65535, 1..6),
    )
        .prop_map(|(kind, asns)| AsSegment { kind, asns });
    let plain = (
        prop_oneof![Just(AsSegmentKind::Sequence), Just(AsSegmentKind::Set)],
        vec(prop_oneof![0u32..=65535, any::<u32>()], 1..12),
    )
        .prop_map(|(kind, asns)| AsSegment { kind, asns });
    (vec(confed, 0..2), vec(plain, 0..4)).prop_map(|(mut c, p)| {
        c.extend(p);
        AsPath { segments: c.into() }
    })
}

const KNOWN_ATTRS: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32];

fn unknown_attrs() -> impl Strategy<Value = Vec<RawAttribute>> {
    vec(
        (
            any::<u8>().prop_filter("unknown", |c| !KNOWN_ATTRS.contains(c)),
            prop_oneof![Just(0x80u8), Just(0xc0), Just(0xe0), Just(0xa0)],
            bytes(300),
        ),
        0..3,
    )
    .prop_map(|v| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter()
            .filter(|(c, _, _)| seen.insert(*c))
            .map(|(code, flags, value)| RawAttribute { flags, code, value })
            .collect()
    })
}

fn attrs() -> impl Strategy<Value = PathAttributes> {
    let a = (
        of(prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ]),
        of(as_path()),
        of(any::<u32>().prop_map(Ipv4Addr::from)),
        of(any::<u32>()),
        of(any::<u32>()),
        any::<bool>(),
        of(
            (any::<u32>(), any::<u32>()).prop_map(|(asn, a)| Aggregator {
                asn,
                address: Ipv4Addr::from(a),
            }),
        ),
        vec(any::<u32>(), 0..5),
    );
    let b = (
        of(any::<u32>().prop_map(Ipv4Addr::from)),
        vec(any::<u32>().prop_map(Ipv4Addr::from), 0..4),
        of(mp_reach()),
        of(mp_unreach()),
        vec(any::<[u8; 8]>(), 0..3),
        vec(any::<[u32; 3]>(), 0..3),
        unknown_attrs(),
    );
    (a, b).prop_map(
        |(
            (origin, as_path, next_hop, med, local_pref, atomic_aggregate, aggregator, communities),
            (
                originator_id,
                cluster_list,
                mp_reach,
                mp_unreach,
                extended_communities,
                large_communities,
                unknown,
            ),
        )| PathAttributes {
            origin,
            as_path,
            next_hop,
            med,
            local_pref,
            atomic_aggregate,
            aggregator,
            communities: communities.into(),
            originator_id,
            cluster_list: cluster_list.into(),
            mp_reach: mp_reach.map(Box::new),
            mp_unreach: mp_unreach.map(Box::new),
            extended_communities: extended_communities.into(),
            large_communities: large_communities.into(),
            unknown: unknown.into(),
        },
    )
}

fn update() -> impl Strategy<Value = Update> {
    (vec(v4net(), 0..20), attrs(), vec(v4net(), 0..20)).prop_map(|(w, mut attrs, n)| {
        // Keep the mandatory attributes present where RFC 7606 §3 d requires them.
        if !n.is_empty() || attrs.mp_reach.is_some() {
            attrs.origin.get_or_insert(Origin::Igp);
            attrs.as_path.get_or_insert_with(AsPath::default);
        }
        if !n.is_empty() {
            attrs.next_hop.get_or_insert(Ipv4Addr::new(192, 0, 2, 1));
        }
        Update {
            withdrawn: pack_v4(&w),
            attrs,
            nlri: pack_v4(&n),
            issues: Vec::new(),
            add_path: false,
        }
    })
}

/// A session with ADD-PATH both ways for both families (RFC 7911): what is
/// sent is decoded with Path Identifiers.
fn add_path_neg(extended_message: bool) -> Negotiated {
    let all = Families {
        ipv4_unicast: true,
        ipv6_unicast: true,
    };
    Negotiated {
        extended_message,
        add_path_receive: all,
        add_path_send: all,
        ..negs()[1]
    }
}

fn pack_paths<P: Pfx>(ps: &[P]) -> Bytes {
    let mut b = BytesMut::new();
    ps.iter().for_each(|p| p.put(&mut b));
    b.freeze()
}

/// An UPDATE with a Path Identifier before every prefix, in every field.
fn add_path_update() -> impl Strategy<Value = Update> {
    let v4 = || vec((any::<u32>(), v4net()), 0..20);
    let v6 = || vec((any::<u32>(), v6net()), 0..20);
    (v4(), v4(), of((v6nh(), v6())), of(v6()), attrs()).prop_map(
        |(w, n, reach, unreach, mut attrs)| {
            attrs.mp_reach = reach.map(|(next_hop, ps)| {
                Box::new(MpReach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    next_hop,
                    nlri: pack_paths(&ps),
                    add_path: true,
                })
            });
            attrs.mp_unreach = unreach.map(|ps| {
                Box::new(MpUnreach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    withdrawn: pack_paths(&ps),
                    add_path: true,
                })
            });
            attrs.origin.get_or_insert(Origin::Igp);
            attrs.as_path.get_or_insert_with(AsPath::default);
            attrs.next_hop.get_or_insert(Ipv4Addr::new(192, 0, 2, 1));
            Update {
                withdrawn: pack_paths(&w),
                attrs,
                nlri: pack_paths(&n),
                issues: Vec::new(),
                add_path: true,
            }
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update().prop_map(Message::Update),
        (any::<u8>(), any::<u8>(), bytes(100))
            .prop_map(|(c, s, d)| Message::Notification(Notification::new(c, s, d))),
        Just(Message::Keepalive),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(afi, subtype, safi)| {
            Message::RouteRefresh(RouteRefresh { afi, subtype, safi })
        }),
    ]
}

fn decode_all(mut buf: BytesMut, neg: &Negotiated) {
    loop {
        match split_frame(&mut buf, neg.max_message_len()) {
            Ok(Some(frame)) => {
                let _ = Message::decode(frame, neg).map(|m| {
                    if let Message::Update(u) = &m {
                        // Iterating the validated prefix lists must not panic either.
                        let _ = u.announced().count() + u.withdrawn_all().count();
                        let _ = u.is_end_of_rib();
                    }
                    let _ = serde_json::to_string(&m);
                });
            }
            Ok(None) | Err(_) => return,
        }
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(msg in message()) {
        for neg in negs() {
            let bytes = msg.to_bytes(&neg).unwrap();
            let mut buf = BytesMut::from(&bytes[..]);
            let frame = split_frame(&mut buf, neg.max_message_len()).unwrap().unwrap();
            prop_assert!(buf.is_empty());
            let back = Message::decode(frame, &neg).unwrap();
            prop_assert_eq!(&back, &msg, "negotiated {:?}", neg);
            // And once more: encoding is deterministic.
            prop_assert_eq!(back.to_bytes(&neg).unwrap(), bytes);
        }
    }

    #[test]
    fn add_path_encode_then_decode_is_identity(u in add_path_update(), ext in any::<bool>()) {
        let neg = add_path_neg(ext);
        let msg = Message::Update(u);
        let bytes = msg.to_bytes(&neg).unwrap();
        let back = Message::decode(bytes.clone(), &neg).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(back.to_bytes(&neg).unwrap(), bytes);
    }

    /// What `UpdateBuilder` packs with Path Identifiers decodes to the same
    /// (path id, prefix) pairs, in order, over as many messages as needed.
    #[test]
    fn add_path_builder_roundtrip(
        v4 in vec((any::<u32>(), v4net()), 1..600),
        v6 in vec((any::<u32>(), v6net()), 1..300),
        nh in v6nh(),
    ) {
        let neg = add_path_neg(false);
        let b = UpdateBuilder::new(&neg);
        let a = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        b.announce_v4(&a, MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)), v4.iter().copied(), &mut out).unwrap();
        b.announce_v4(&a, nh, v4.iter().copied(), &mut out).unwrap();
        b.announce_v6(&a, nh, v6.iter().copied(), &mut out).unwrap();
        b.withdraw_v4(v4.iter().copied(), &mut out).unwrap();
        b.withdraw_v6(v6.iter().copied(), &mut out).unwrap();
        let (mut ann, mut wd) = (Vec::new(), Vec::new());
        while let Some(f) = split_frame(&mut out, neg.max_message_len()).unwrap() {
            let Message::Update(u) = Message::decode(f, &neg).unwrap() else { panic!() };
            prop_assert!(u.issues.is_empty());
            let mut it = u.nlri_v4();
            while let Some((id, p)) = it.next_path() { ann.push((id, IpNet::V4(p))); }
            if let Some(r) = &u.attrs.mp_reach { ann.extend(r.prefixes().with_path_ids()); }
            let mut it = u.withdrawn_v4();
            while let Some((id, p)) = it.next_path() { wd.push((id, IpNet::V4(p))); }
            if let Some(r) = &u.attrs.mp_unreach { wd.extend(r.prefixes().with_path_ids()); }
        }
        let v4s: Vec<(u32, IpNet)> = v4.iter().map(|(i, p)| (*i, IpNet::V4(*p))).collect();
        let v6s: Vec<(u32, IpNet)> = v6.iter().map(|(i, p)| (*i, IpNet::V6(*p))).collect();
        let want: Vec<_> = v4s.iter().chain(&v4s).chain(&v6s).copied().collect();
        prop_assert_eq!(ann, want);
        prop_assert_eq!(wd, v4s.iter().chain(&v6s).copied().collect::<Vec<_>>());
        // Plain prefixes on an ADD-PATH session (and the reverse) are refused.
        prop_assert_eq!(
            b.withdraw_v4(v4.iter().map(|x| x.1), &mut out),
            Err(kittbgpd::wire::EncodeError::AddPath)
        );
        prop_assert_eq!(
            UpdateBuilder::new(&negs()[1]).withdraw_v6(v6.iter().copied(), &mut out),
            Err(kittbgpd::wire::EncodeError::AddPath)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..300)) {
        for neg in negs().into_iter().chain([add_path_neg(false)]) {
            decode_all(BytesMut::from(&data[..]), &neg);
            let _ = Message::decode(Bytes::from(data.clone()), &neg);
        }
    }

    #[test]
    fn valid_header_with_arbitrary_body_never_panics(t in 1u8..=5, body in vec(any::<u8>(), 0..300)) {
        let mut b = vec![0xff; 16];
        b.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        b.push(t);
        b.extend_from_slice(&body);
        for neg in negs().into_iter().chain([add_path_neg(true)]) {
            decode_all(BytesMut::from(&b[..]), &neg);
        }
    }

    #[test]
    fn mutated_messages_never_panic(msg in message(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        for neg in negs().into_iter().chain([add_path_neg(false)]) {
            let mut b = msg.to_bytes(&neg).unwrap().to_vec();
            for (i, x) in &flips {
                // Keep the header intact so the body parsers are exercised.
                if b.len() > 19 {
                    let at = 19 + i.index(b.len() - 19);
                    b[at] = *x;
                }
            }
            decode_all(BytesMut::from(&b[..]), &neg);
        }
    }
}
