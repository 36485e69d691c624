//! Attribute decoders and RFC 7606 actions, driven through `Update::decode`.

use super::*;
use crate::wire::Update;

const N4: Negotiated = Negotiated {
    four_octet_as: true,
    extended_message: false,
    ipv4_extended_next_hop: true,
    ipv4_unicast: true,
    ipv6_unicast: true,
    route_refresh: true,
    enhanced_route_refresh: true,
    add_path_receive: crate::wire::Families::NONE,
    add_path_send: crate::wire::Families::NONE,
    views: crate::wire::Families::NONE,
    view: None,
};
const N2: Negotiated = Negotiated {
    four_octet_as: false,
    ..N4
};

/// UPDATE body: no withdrawn routes, `attrs`, NLRI 10.0.0.1/32 if `nlri`.
fn body(attrs: &[u8], nlri: bool) -> Bytes {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    if nlri {
        b.extend_from_slice(&[32, 10, 0, 0, 1]);
    }
    Bytes::from(b)
}

const ORIGIN_IGP: [u8; 4] = [0x40, 1, 1, 0];
const AS_PATH_EMPTY: [u8; 3] = [0x40, 2, 0];
const NEXT_HOP: [u8; 7] = [0x40, 3, 4, 10, 0, 0, 254];

/// Mandatory attributes followed by `extra`.
fn with(extra: &[u8]) -> Vec<u8> {
    [&ORIGIN_IGP[..], &AS_PATH_EMPTY, &NEXT_HOP, extra].concat()
}

fn ok(attrs: &[u8], neg: &Negotiated) -> Update {
    Update::decode(body(attrs, true), neg).unwrap()
}

fn actions(u: &Update) -> Vec<(u8, AttrErrorAction)> {
    u.issues.iter().map(|i| (i.code, i.action)).collect()
}

fn reset(attrs: &[u8], neg: &Negotiated) -> Notification {
    Update::decode(body(attrs, true), neg).unwrap_err()
}

use AttrErrorAction::{AttributeDiscard as AD, TreatAsWithdraw as TAW};

#[test]
fn well_formed_attributes() {
    let extra = [
        &[0x80, 4, 4, 0, 0, 0, 50][..],               // MED 50
        &[0x40, 5, 4, 0, 0, 0, 100],                  // LOCAL_PREF 100
        &[0x40, 6, 0],                                // ATOMIC_AGGREGATE
        &[0xc0, 7, 8, 0, 1, 0x11, 0x70, 10, 0, 0, 9], // AGGREGATOR 70000 10.0.0.9
        &[0xc0, 8, 8, 0xff, 0xff, 0xff, 0x01, 0, 1, 0, 2],
        &[0x80, 9, 4, 10, 0, 0, 7],
        &[0x80, 10, 8, 10, 0, 0, 8, 10, 0, 0, 9],
        &[0xc0, 16, 8, 0, 2, 0, 1, 0, 0, 0, 5],
        &[0xc0, 32, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
        &[0xc0, 99, 2, 0xab, 0xcd], // unknown optional transitive
        &[0x90, 100, 0, 1, 0xee],   // unknown optional non-transitive, extended length
    ]
    .concat();
    let u = ok(&with(&extra), &N4);
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    let a = &u.attrs;
    assert_eq!(a.origin, Some(Origin::Igp));
    assert_eq!(a.as_path, Some(AsPath::default()));
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(10, 0, 0, 254)));
    assert_eq!(
        (a.med, a.local_pref, a.atomic_aggregate),
        (Some(50), Some(100), true)
    );
    assert_eq!(
        a.aggregator,
        Some(Aggregator {
            asn: 70000,
            address: Ipv4Addr::new(10, 0, 0, 9)
        })
    );
    assert_eq!(a.communities, [0xffffff01, 0x00010002]);
    assert_eq!(a.originator_id, Some(Ipv4Addr::new(10, 0, 0, 7)));
    assert_eq!(
        a.cluster_list,
        [Ipv4Addr::new(10, 0, 0, 8), Ipv4Addr::new(10, 0, 0, 9)]
    );
    assert_eq!(a.extended_communities, [[0, 2, 0, 1, 0, 0, 0, 5]]);
    assert_eq!(a.large_communities, [[1, 2, 3]]);
    assert_eq!(
        a.unknown,
        [
            RawAttribute {
                flags: 0xc0,
                code: 99,
                value: Bytes::from_static(&[0xab, 0xcd])
            },
            RawAttribute {
                flags: 0x80,
                code: 100,
                value: Bytes::from_static(&[0xee])
            }
        ]
    );
    // Re-encoding gives the same bytes except the extended length of the last one.
    let mut out = BytesMut::new();
    a.encode(&N4, &mut out).unwrap();
    let mut expect = with(&extra);
    let n = expect.len();
    expect.splice(n - 5..n, [0x80, 100, 1, 0xee]);
    assert_eq!(&out[..], &expect[..]);
    // Re-advertisement: non-transitive unknown dropped, Partial set on transitive.
    let r = a.for_readvertise();
    assert_eq!(
        r.unknown,
        [RawAttribute {
            flags: 0xe0,
            code: 99,
            value: Bytes::from_static(&[0xab, 0xcd])
        }]
    );
}

#[test]
fn origin_malformed_is_treat_as_withdraw() {
    for bad in [&[0x40, 1, 1, 3][..], &[0x40, 1, 2, 0, 0], &[0x40, 1, 0]] {
        let u = ok(&[bad, &AS_PATH_EMPTY, &NEXT_HOP].concat(), &N4);
        assert_eq!(actions(&u), [(1, TAW)]);
        assert!(u.treat_as_withdraw() && u.attrs.origin.is_none());
    }
}

#[test]
fn as_path_decoding_and_malformations() {
    // 4-octet: SEQUENCE 65001 4242421945, SET {1 2}.
    let path = [
        0x40, 2, 20, 2, 2, 0, 0, 0xfd, 0xe9, 0xfc, 0xde, 0x38, 0xb9, 1, 2, 0, 0, 0, 1, 0, 0, 0, 2,
    ];
    let u = ok(&[&ORIGIN_IGP[..], &path, &NEXT_HOP].concat(), &N4);
    let p = u.attrs.as_path.unwrap();
    assert_eq!(p.to_string(), "65001 4242421945 {1 2}");
    assert_eq!(p.len_for_decision(), 3);
    // Malformed: zero-length segment, bad type, overrun, underrun (RFC 7606 §7.2).
    for bad in [
        &[0x40, 2, 2, 2, 0][..],
        &[0x40, 2, 6, 7, 1, 0, 0, 0, 1],
        &[0x40, 2, 6, 2, 2, 0, 0, 0, 1],
        &[0x40, 2, 7, 2, 1, 0, 0, 0, 1, 2],
    ] {
        let u = ok(&[&ORIGIN_IGP[..], bad, &NEXT_HOP].concat(), &N4);
        assert_eq!(actions(&u), [(2, TAW)], "{bad:?}");
    }
    // 2-octet encoding.
    let u = ok(
        &[
            &ORIGIN_IGP[..],
            &[0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0x5b, 0xa0],
            &NEXT_HOP,
        ]
        .concat(),
        &N2,
    );
    assert_eq!(u.attrs.as_path, Some(AsPath::sequence(vec![65001, 23456])));
}

#[test]
fn as_path_display_and_decision_length() {
    let p = AsPath {
        segments: vec![
            AsSegment {
                kind: AsSegmentKind::ConfedSequence,
                asns: vec![64512],
            },
            AsSegment {
                kind: AsSegmentKind::Sequence,
                asns: vec![1, 2],
            },
            AsSegment {
                kind: AsSegmentKind::Set,
                asns: vec![3, 4],
            },
            AsSegment {
                kind: AsSegmentKind::ConfedSet,
                asns: vec![5],
            },
        ]
        .into(),
    };
    assert_eq!(p.to_string(), "(64512) 1 2 {3 4} [5]");
    assert_eq!(p.len_for_decision(), 3);
    let mut q = AsPath::default();
    q.prepend(65000);
    q.prepend(65001);
    assert_eq!(q, AsPath::sequence(vec![65001, 65000]));
    assert_eq!(q.first_asn(), Some(65001));
}

#[test]
fn as4_path_merge_for_two_octet_sessions() {
    // AS_PATH 65001 AS_TRANS AS_TRANS, AS4_PATH 70000 80000: 65001 70000 80000.
    let as_path = [0x40, 2, 8, 2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0x5b, 0xa0];
    let as4 = [0xc0, 17, 10, 2, 2, 0, 1, 0x11, 0x70, 0, 1, 0x38, 0x80];
    let u = ok(&[&ORIGIN_IGP[..], &as_path, &NEXT_HOP, &as4].concat(), &N2);
    assert!(u.issues.is_empty());
    assert_eq!(
        u.attrs.as_path,
        Some(AsPath::sequence(vec![65001, 70000, 80000]))
    );
    // AS4_PATH longer than AS_PATH: ignored.
    let short = [0x40, 2, 4, 2, 1, 0x5b, 0xa0];
    let u = ok(&[&ORIGIN_IGP[..], &short, &NEXT_HOP, &as4].concat(), &N2);
    assert_eq!(u.attrs.as_path, Some(AsPath::sequence(vec![23456])));
    // From a 4-octet speaker AS4_PATH is discarded.
    let u = ok(&with(&as4), &N4);
    assert_eq!(actions(&u), [(17, AD)]);
    // Malformed AS4_PATH: discarded.
    let u = ok(
        &[&ORIGIN_IGP[..], &as_path, &NEXT_HOP, &[0xc0, 17, 2, 2, 0]].concat(),
        &N2,
    );
    assert_eq!(actions(&u), [(17, AD)]);
    assert_eq!(u.attrs.as_path.unwrap().len_for_decision(), 3);
}

#[test]
fn as4_aggregator() {
    let agg = [0xc0, 7, 6, 0x5b, 0xa0, 10, 0, 0, 1];
    let agg4 = [0xc0, 18, 8, 0, 1, 0x11, 0x70, 10, 0, 0, 1];
    let u = ok(&with(&[&agg[..], &agg4].concat()), &N2);
    assert_eq!(
        u.attrs.aggregator,
        Some(Aggregator {
            asn: 70000,
            address: Ipv4Addr::new(10, 0, 0, 1)
        })
    );
    // AGGREGATOR not AS_TRANS: AS4_AGGREGATOR ignored.
    let agg = [0xc0, 7, 6, 0xfd, 0xe9, 10, 0, 0, 1];
    let u = ok(&with(&[&agg[..], &agg4].concat()), &N2);
    assert_eq!(u.attrs.aggregator.unwrap().asn, 65001);
    let u = ok(&with(&[0xc0, 18, 6, 0, 1, 10, 0, 0, 1]), &N2);
    assert_eq!(actions(&u), [(18, AD)]);
}

#[test]
fn length_errors_take_the_rfc7606_action() {
    let cases: &[(&[u8], u8, AttrErrorAction)] = &[
        (&[0x80, 4, 3, 0, 0, 0], 4, TAW),
        (&[0x40, 5, 5, 0, 0, 0, 0, 0], 5, TAW),
        (&[0x40, 6, 1, 0], 6, AD),
        (&[0xc0, 7, 6, 0, 1, 10, 0, 0, 1], 7, AD), // 6 octets on a 4-octet session
        (&[0xc0, 8, 0], 8, TAW),
        (&[0xc0, 8, 3, 0, 0, 1], 8, TAW),
        (&[0x80, 9, 3, 1, 2, 3], 9, TAW),
        (&[0x80, 10, 0], 10, TAW),
        (&[0x80, 10, 6, 1, 2, 3, 4, 5, 6], 10, TAW),
        (&[0xc0, 16, 4, 0, 0, 0, 0], 16, TAW),
        (&[0xc0, 32, 8, 0, 0, 0, 0, 0, 0, 0, 0], 32, TAW),
    ];
    for (attr, code, action) in cases {
        let u = ok(&with(attr), &N4);
        assert_eq!(actions(&u), [(*code, *action)], "{attr:?}");
    }
    // NEXT_HOP of the wrong length: treat-as-withdraw (and it then counts as missing).
    let u = ok(
        &[&ORIGIN_IGP[..], &AS_PATH_EMPTY, &[0x40, 3, 3, 1, 2, 3]].concat(),
        &N4,
    );
    assert_eq!(actions(&u), [(3, TAW)]);
    // AGGREGATOR of 8 octets on a 2-octet session.
    let u = ok(&with(&[0xc0, 7, 8, 0, 0, 0, 1, 10, 0, 0, 1]), &N2);
    assert_eq!(actions(&u), [(7, AD)]);
}

#[test]
fn flag_errors() {
    // ORIGIN marked optional: treat-as-withdraw.
    let u = ok(
        &[&[0xc0, 1, 1, 0][..], &AS_PATH_EMPTY, &NEXT_HOP].concat(),
        &N4,
    );
    assert_eq!(actions(&u), [(1, TAW)]);
    // MED marked transitive: treat-as-withdraw.
    let u = ok(&with(&[0xc0, 4, 4, 0, 0, 0, 1]), &N4);
    assert_eq!(actions(&u), [(4, TAW)]);
    // ATOMIC_AGGREGATE marked optional: discard.
    let u = ok(&with(&[0x80, 6, 0]), &N4);
    assert_eq!(actions(&u), [(6, AD)]);
    // MP_UNREACH_NLRI marked transitive: session reset 3/4 with the attribute.
    let n = reset(&with(&[0xc0, 15, 3, 0, 2, 1]), &N4);
    assert_eq!(
        (n.code, n.subcode, &n.data[..]),
        (3, 4, &[0xc0, 15, 3, 0, 2, 1][..])
    );
    // Partial and extended length bits do not matter for known attributes.
    let u = ok(
        &[&[0x70, 1, 0, 1, 0][..], &AS_PATH_EMPTY, &NEXT_HOP].concat(),
        &N4,
    );
    assert!(u.issues.is_empty());
}

#[test]
fn missing_mandatory_attributes() {
    let u = ok(&[&AS_PATH_EMPTY[..], &NEXT_HOP].concat(), &N4);
    assert_eq!(actions(&u), [(1, TAW)]);
    let u = ok(&[&ORIGIN_IGP[..], &NEXT_HOP].concat(), &N4);
    assert_eq!(actions(&u), [(2, TAW)]);
    let u = ok(&[&ORIGIN_IGP[..], &AS_PATH_EMPTY].concat(), &N4);
    assert_eq!(actions(&u), [(3, TAW)]);
    // No NLRI: nothing is mandatory.
    let u = Update::decode(body(&[], false), &N4).unwrap();
    assert!(u.issues.is_empty());
    // MP_REACH only: NEXT_HOP not needed, ORIGIN and AS_PATH are.
    let reach = [
        0x80, 14, 22, 0, 2, 1, 16, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
    ];
    let u = Update::decode(
        body(&[&ORIGIN_IGP[..], &AS_PATH_EMPTY, &reach].concat(), false),
        &N4,
    )
    .unwrap();
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    let u = Update::decode(body(&reach, false), &N4).unwrap();
    assert_eq!(actions(&u), [(1, TAW), (2, TAW)]);
}

#[test]
fn duplicates() {
    let u = ok(&with(&[0x40, 1, 1, 2]), &N4);
    assert_eq!(actions(&u), [(1, AD)]);
    assert_eq!(u.attrs.origin, Some(Origin::Igp));
    let unreach = [0x80, 15, 3, 0, 2, 1];
    let n = reset(&with(&[&unreach[..], &unreach].concat()), &N4);
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn mp_reach_and_unreach() {
    // IPv4 NLRI with an RFC 8950 next hop ":: fe80::1" (as BIRD sends on link-local sessions).
    let mut reach = vec![0x90, 14, 0, 0, 0, 1, 1, 32];
    reach.extend_from_slice(&[0; 16]);
    reach.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    reach.extend_from_slice(&[0, 32, 10, 0, 0, 1, 24, 10, 1, 2]);
    let len = (reach.len() - 4) as u16;
    reach[2..4].copy_from_slice(&len.to_be_bytes());
    let u = Update::decode(
        body(&[&reach[..], &ORIGIN_IGP, &AS_PATH_EMPTY].concat(), false),
        &N4,
    )
    .unwrap();
    assert!(u.issues.is_empty());
    let r = u.attrs.mp_reach.as_ref().unwrap();
    assert_eq!(r.afi_safi, AfiSafi::IPV4_UNICAST);
    assert_eq!(
        r.next_hop,
        MpNextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: Some("fe80::1".parse().unwrap())
        }
    );
    let ps: Vec<IpNet> = r.prefixes().collect();
    assert_eq!(
        ps,
        [
            "10.0.0.1/32".parse::<IpNet>().unwrap(),
            "10.1.2.0/24".parse().unwrap()
        ]
    );
    assert_eq!(u.announced().count(), 2);
    // Bad next hop length for IPv6: session reset 3/9 with the attribute.
    let bad = [0x80, 14, 10, 0, 2, 1, 4, 10, 0, 0, 1, 0, 0];
    let n = reset(&with(&bad), &N4);
    assert_eq!((n.code, n.subcode, &n.data[..]), (3, 9, &bad[..]));
    // Bad prefix inside: 3/9.
    let bad = [0x80, 15, 5, 0, 2, 1, 129, 0];
    assert_eq!(reset(&with(&bad), &N4).subcode, 9);
    // Too short: 3/9.
    assert_eq!(reset(&with(&[0x80, 15, 2, 0, 2]), &N4).subcode, 9);
    assert_eq!(reset(&with(&[0x80, 14, 5, 0, 2, 1, 16, 0]), &N4).subcode, 9);
    // Unsupported family: discarded.
    let u = ok(&with(&[0x80, 15, 3, 0, 25, 70]), &N4);
    assert_eq!(actions(&u), [(15, AD)]);
    assert!(u.attrs.mp_unreach.is_none());
    // MP_UNREACH for IPv6.
    let u = Update::decode(body(&[0x80, 15, 6, 0, 2, 1, 16, 0x20, 0x01], false), &N4).unwrap();
    assert_eq!(
        u.withdrawn_all().collect::<Vec<_>>(),
        ["2001::/16".parse::<IpNet>().unwrap()]
    );
}

#[test]
fn framing_errors() {
    // Last attribute's length runs past the field: treat-as-withdraw (RFC 7606 §4).
    let u = ok(&with(&[0xc0, 8, 9, 0, 0, 0, 1]), &N4);
    assert_eq!(actions(&u), [(0, TAW)]);
    // Fewer than 3 octets left.
    let u = ok(&with(&[0xc0, 8]), &N4);
    assert_eq!(actions(&u), [(0, TAW)]);
    // Extended length with only 3 octets left.
    let u = ok(&with(&[0xd0, 8, 0]), &N4);
    assert_eq!(actions(&u), [(0, TAW)]);
    // Nothing locatable to withdraw: session reset 3/1.
    let n = Update::decode(body(&[0x40, 1, 9], false), &N4).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn unrecognized_well_known_is_session_reset() {
    let n = reset(&with(&[0x40, 99, 1, 7]), &N4);
    assert_eq!(
        (n.code, n.subcode, &n.data[..]),
        (3, 2, &[0x40, 99, 1, 7][..])
    );
}

#[test]
fn field_length_errors() {
    // Withdrawn length past the end.
    let n = Update::decode(Bytes::from_static(&[0, 5, 0, 0]), &N4).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 1));
    // Attribute length past the end.
    let n = Update::decode(Bytes::from_static(&[0, 0, 0, 9, 0x40]), &N4).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 1));
    assert_eq!(
        Update::decode(Bytes::from_static(&[0]), &N4)
            .unwrap_err()
            .subcode,
        1
    );
    // Bad prefixes: 3/10.
    let n = Update::decode(Bytes::from_static(&[0, 2, 33, 0, 0, 0]), &N4).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 10));
    let mut b = body(&with(&[]), false).to_vec();
    b.extend_from_slice(&[24, 10, 0]);
    assert_eq!(Update::decode(Bytes::from(b), &N4).unwrap_err().subcode, 10);
}

#[test]
fn two_octet_encoding_adds_as4_attributes() {
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![65001, 4242421945])),
        aggregator: Some(Aggregator {
            asn: 4242421945,
            address: Ipv4Addr::new(10, 0, 0, 1),
        }),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 254)),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    attrs.encode(&N2, &mut out).unwrap();
    let codes: Vec<u8> = {
        let mut v = Vec::new();
        let mut i = 0;
        while i < out.len() {
            v.push(out[i + 1]);
            i += 3 + usize::from(out[i + 2]);
        }
        v
    };
    assert_eq!(codes, [1, 2, 3, 7, 17, 18]);
    let u = ok(&out, &N2);
    assert!(u.issues.is_empty());
    assert_eq!(u.attrs, attrs);
}

#[test]
fn serializes_to_json() {
    let u = ok(&with(&[0xc0, 99, 2, 0xab, 0xcd]), &N4);
    let j = serde_json::to_string(&u).unwrap();
    assert!(j.contains("\"nlri\":[\"10.0.0.1/32\"]"), "{j}");
    assert!(j.contains("\"value\":\"abcd\""), "{j}");
}

/// An interned attribute set is one allocation per distinct set (a million
/// routes share tens of thousands): lists are one pointer, MP_REACH and
/// MP_UNREACH (never in an interned received set) are boxed.
#[test]
fn path_attributes_stay_small() {
    let size = std::mem::size_of::<PathAttributes>();
    println!("size_of::<PathAttributes>() = {size}");
    assert!(size <= 112, "PathAttributes grew to {size} bytes");
}
