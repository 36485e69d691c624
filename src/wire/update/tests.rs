//! UPDATE-level behaviour: End-of-RIB, constructors, and the packing builder.

use super::*;
use crate::wire::attr::{AsPath, Origin};
use crate::wire::split_frame;
use crate::wire::Message;
use std::net::Ipv6Addr;

fn neg(ext: bool) -> Negotiated {
    Negotiated {
        four_octet_as: true,
        extended_message: ext,
        ipv4_extended_next_hop: true,
        ipv4_unicast: true,
        ipv6_unicast: true,
        route_refresh: true,
        enhanced_route_refresh: true,
        add_path_receive: crate::wire::Families::NONE,
        add_path_send: crate::wire::Families::NONE,
        views: Default::default(),
        view: None,
    }
}

fn attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(100),
        med: Some(7),
        ..Default::default()
    }
}

/// Splits `out` into messages and decodes each as an UPDATE.
fn updates(out: BytesMut, n: &Negotiated) -> Vec<Update> {
    let mut buf = out;
    let mut v = Vec::new();
    while let Some(f) = split_frame(&mut buf, n.max_message_len()).unwrap() {
        assert!(f.len() <= n.max_message_len());
        match Message::decode(f, n).unwrap() {
            Message::Update(u) => v.push(u),
            m => panic!("{m:?}"),
        }
    }
    assert!(buf.is_empty());
    v
}

fn v4s(n: u32) -> Vec<Ipv4Net> {
    (0..n)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap())
        .collect()
}

fn v6s(n: u32) -> Vec<Ipv6Net> {
    (0..n)
        .map(|i| Ipv6Net::new(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i)), 128).unwrap())
        .collect()
}

#[test]
fn end_of_rib() {
    let n = neg(false);
    for f in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
        let mut out = BytesMut::new();
        UpdateBuilder::new(&n).end_of_rib(f, &mut out).unwrap();
        let u = updates(out, &n).remove(0);
        assert_eq!(u.is_end_of_rib(), Some(f));
    }
    assert_eq!(Update::withdraw_v4(v4s(1)).is_end_of_rib(), None);
    let mut u = Update::end_of_rib(AfiSafi::IPV6_UNICAST);
    u.attrs.origin = Some(Origin::Igp);
    assert_eq!(u.is_end_of_rib(), None);
}

#[test]
fn announce_v4_in_nlri_field_packs_into_few_messages() {
    let n = neg(false);
    let ps = v4s(2000);
    let mut out = BytesMut::new();
    let count = UpdateBuilder::new(&n)
        .announce_v4(
            &attrs(),
            MpNextHop::V4(Ipv4Addr::new(10, 255, 0, 1)),
            ps.iter().copied(),
            &mut out,
        )
        .unwrap();
    let us = updates(out, &n);
    assert_eq!(us.len(), count);
    // 2000 × 5 octets in messages of at most 4096: 3 messages.
    assert_eq!(count, 3);
    let got: Vec<Ipv4Net> = us.iter().flat_map(|u| u.nlri_v4()).collect();
    assert_eq!(got, ps);
    for u in &us {
        assert!(u.issues.is_empty());
        assert_eq!(u.attrs.next_hop, Some(Ipv4Addr::new(10, 255, 0, 1)));
        assert_eq!(u.attrs.local_pref, Some(100));
        assert!(u.attrs.mp_reach.is_none());
    }
}

#[test]
fn announce_v4_with_extended_next_hop() {
    let n = neg(true);
    let nh = MpNextHop::V6 {
        global: Ipv6Addr::UNSPECIFIED,
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let ps = v4s(20000);
    let mut out = BytesMut::new();
    let count = UpdateBuilder::new(&n)
        .announce_v4(&attrs(), nh, ps.iter().copied(), &mut out)
        .unwrap();
    assert_eq!(count, 2); // 100000 octets in ≤65535-octet messages
    let us = updates(out, &n);
    let got: Vec<IpNet> = us.iter().flat_map(|u| u.announced()).collect();
    assert_eq!(got, ps.iter().map(|p| IpNet::V4(*p)).collect::<Vec<_>>());
    let r = us[0].attrs.mp_reach.as_ref().unwrap();
    assert_eq!((r.afi_safi, r.next_hop), (AfiSafi::IPV4_UNICAST, nh));
    assert!(us[0].issues.is_empty() && us[0].nlri.is_empty() && us[0].attrs.next_hop.is_none());
    // Without the capability it is refused.
    let plain = Negotiated {
        ipv4_extended_next_hop: false,
        ..n
    };
    assert_eq!(
        UpdateBuilder::new(&plain).announce_v4(&attrs(), nh, ps, &mut BytesMut::new()),
        Err(EncodeError::NextHopFamily)
    );
}

#[test]
fn announce_and_withdraw_v6() {
    let n = neg(false);
    let nh = MpNextHop::V6 {
        global: "fd00::1".parse().unwrap(),
        link_local: None,
    };
    let ps = v6s(500);
    let b = UpdateBuilder::new(&n);
    let mut out = BytesMut::new();
    let count = b
        .announce_v6(&attrs(), nh, ps.iter().copied(), &mut out)
        .unwrap();
    let us = updates(out, &n);
    assert_eq!((count, us.len()), (3, 3)); // 500 × 17 octets
    let got: Vec<IpNet> = us.iter().flat_map(|u| u.announced()).collect();
    assert_eq!(got, ps.iter().map(|p| IpNet::V6(*p)).collect::<Vec<_>>());
    assert!(us.iter().all(|u| u.issues.is_empty()));

    let mut out = BytesMut::new();
    let count = b.withdraw_v6(ps.iter().copied(), &mut out).unwrap();
    let us = updates(out, &n);
    assert_eq!(count, us.len());
    let got: Vec<IpNet> = us.iter().flat_map(|u| u.withdrawn_all()).collect();
    assert_eq!(got.len(), 500);
    assert!(us
        .iter()
        .all(|u| u.is_end_of_rib().is_none() && !u.has_reachability()));
    assert_eq!(
        b.announce_v6(
            &attrs(),
            MpNextHop::V4(Ipv4Addr::LOCALHOST),
            ps,
            &mut BytesMut::new()
        ),
        Err(EncodeError::NextHopFamily)
    );
}

#[test]
fn withdraw_v4_and_small_messages() {
    let n = neg(false);
    let ps: Vec<Ipv4Net> = (0..300u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap())
        .collect();
    let b = UpdateBuilder::new(&n).with_max_len(100);
    let mut out = BytesMut::new();
    let count = b.withdraw_v4(ps.iter().copied(), &mut out).unwrap();
    // 100 - 23 = 77 octets of 4-octet prefixes per message: 19 each.
    assert_eq!(count, 300usize.div_ceil(19));
    let us = updates(out, &n);
    let got: Vec<Ipv4Net> = us.iter().flat_map(|u| u.withdrawn_v4()).collect();
    assert_eq!(got, ps);
    // Nothing to send: no message.
    assert_eq!(
        b.withdraw_v4(std::iter::empty::<Ipv4Net>(), &mut BytesMut::new()),
        Ok(0)
    );
    // Attributes too large for the message: error, nothing written.
    let mut big = attrs();
    big.communities = vec![1; 40].into();
    let mut out = BytesMut::new();
    assert!(matches!(
        b.announce_v4(&big, MpNextHop::V4(Ipv4Addr::LOCALHOST), ps, &mut out),
        Err(EncodeError::TooLong { .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn treat_as_withdraw_and_constructors() {
    let n = neg(false);
    let u = Update::announce_v4(attrs(), Ipv4Addr::new(10, 0, 0, 1), v4s(3));
    let b = Message::Update(u.clone()).to_bytes(&n).unwrap();
    let d = updates(BytesMut::from(&b[..]), &n).remove(0);
    assert_eq!(d, u);
    assert!(!d.treat_as_withdraw() && d.has_reachability());
    let mut bad = u;
    bad.attrs.origin = None;
    let d = updates(
        BytesMut::from(&Message::Update(bad).to_bytes(&n).unwrap()[..]),
        &n,
    )
    .remove(0);
    assert!(d.treat_as_withdraw());
    assert_eq!(d.issues[0].code, 1);
}

fn add_path_neg(rx: bool) -> Negotiated {
    let f = if rx {
        crate::wire::Families {
            ipv4_unicast: true,
            ipv6_unicast: true,
        }
    } else {
        crate::wire::Families::NONE
    };
    Negotiated {
        add_path_receive: f,
        ..neg(false)
    }
}

/// UPDATE body with `withdrawn` and `nlri` fields and ORIGIN, AS_PATH, NEXT_HOP.
fn body(withdrawn: &[u8], nlri: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u16(withdrawn.len() as u16);
    b.put_slice(withdrawn);
    let attrs = [
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 0, // AS_PATH empty
        0x40, 3, 4, 192, 0, 2, 1, // NEXT_HOP
    ];
    b.put_u16(attrs.len() as u16);
    b.put_slice(&attrs);
    b.put_slice(nlri);
    b.freeze()
}

#[test]
fn add_path_nlri_fields_decode_with_path_ids() {
    let n = add_path_neg(true);
    // Path 7 of 10.0.0.1/32 withdrawn, paths 1 and 2 of 10.1.0.0/16 announced.
    let u = Update::decode(
        body(
            &[0, 0, 0, 7, 32, 10, 0, 0, 1],
            &[0, 0, 0, 1, 16, 10, 1, 0, 0, 0, 2, 16, 10, 1],
        ),
        &n,
    )
    .unwrap();
    assert!(u.add_path && u.issues.is_empty());
    let mut w = u.withdrawn_v4();
    assert_eq!(w.next_path(), Some((7, "10.0.0.1/32".parse().unwrap())));
    assert_eq!(w.next_path(), None);
    let ps: Vec<_> = std::iter::from_fn({
        let mut it = u.nlri_v4();
        move || it.next_path()
    })
    .collect();
    let p: Ipv4Net = "10.1.0.0/16".parse().unwrap();
    assert_eq!(ps, [(1, p), (2, p)]);
    assert_eq!(u.announced().count(), 2);
    // Encoding gives back the same bytes.
    let mut out = BytesMut::new();
    u.encode_body(&n, &mut out).unwrap();
    assert_eq!(Update::decode(out.freeze(), &n).unwrap().nlri, u.nlri);
}

#[test]
fn malformed_path_id_nlri_is_a_session_reset() {
    let n = add_path_neg(true);
    // RFC 7606 §5.3 / RFC 7911: a prefix list that does not parse with Path
    // Identifiers is an Invalid Network Field (3/10).
    for (w, nlri) in [
        (&[0u8, 0, 0][..], &[][..]),                     // path id cut short
        (&[0, 0, 0, 1][..], &[][..]),                    // no length after the id
        (&[][..], &[0, 0, 0, 1, 33, 1, 2, 3, 4, 5][..]), // length > 32
        (&[][..], &[0, 0, 0, 1, 24, 10, 0][..]),         // prefix cut short
        // A plain prefix list on an ADD-PATH session.
        (&[][..], &[32, 10, 0, 0, 1][..]),
    ] {
        let e = Update::decode(body(w, nlri), &n).unwrap_err();
        assert_eq!((e.code, e.subcode), (3, 10), "{w:?} {nlri:?}");
    }
    // The same lists are plain prefixes without ADD-PATH: the path-id form
    // of /32 10.0.0.1 is refused there.
    assert!(Update::decode(body(&[], &[32, 10, 0, 0, 1]), &neg(false)).is_ok());
    let e = Update::decode(body(&[], &[0, 0, 0, 1, 32, 10, 0, 0, 1]), &neg(false)).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 10));
    // MP_UNREACH_NLRI (IPv6) with a truncated path id: 3/9 (RFC 7606 §7.11).
    let mut b = BytesMut::new();
    b.put_u16(0);
    let unreach = [0x80, 15, 6, 0, 2, 1, 0, 0, 0];
    b.put_u16(unreach.len() as u16);
    b.put_slice(&unreach);
    let e = Update::decode(b.freeze(), &n).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 9));
}
