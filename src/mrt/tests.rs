//! Record layout of RFC 6396, byte by byte.

use super::*;
use crate::wire::{AsPath, Origin};

#[test]
fn peer_index_table_and_ipv4_rib_record() {
    let view = View {
        name: "v".into(),
        peers: vec![DumpPeer {
            bgp_id: Ipv4Addr::new(1, 2, 3, 4),
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            asn: 65000,
        }],
        prefixes: vec![DumpPrefix {
            prefix: "10.0.0.0/8".parse().unwrap(),
            entries: vec![DumpEntry {
                peer: 0,
                next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                attrs: Arc::new(PathAttributes {
                    origin: Some(Origin::Igp),
                    as_path: Some(AsPath::sequence(vec![70000])),
                    ..Default::default()
                }),
            }],
        }],
    };
    let mut out = BytesMut::new();
    let mut seq = 7;
    encode_view(&view, Ipv4Addr::new(9, 9, 9, 9), 100, &mut seq, &mut out);
    assert_eq!(seq, 8);
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        // header: time, TABLE_DUMP_V2, PEER_INDEX_TABLE, length
        0, 0, 0, 100, 0, 13, 0, 1, 0, 0, 0, 22,
        9, 9, 9, 9, 0, 1, b'v', 0, 1,
        // peer: type (AS4, IPv4), bgp id, address, AS
        2, 1, 2, 3, 4, 192, 0, 2, 1, 0, 0, 0xfd, 0xe8,
        // header: RIB_IPV4_UNICAST
        0, 0, 0, 100, 0, 13, 0, 2, 0, 0, 0, 36,
        0, 0, 0, 7, 8, 10, 0, 1,
        // entry: peer 0, originated time, attribute length
        0, 0, 0, 0, 0, 100, 0, 20,
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 6, 2, 1, 0, 1, 0x11, 0x70, // AS_PATH, 4-octet AS 70000
        0x40, 3, 4, 192, 0, 2, 1, // NEXT_HOP
    ];
    assert_eq!(out.to_vec(), expected);
}

#[test]
fn ipv6_next_hop_is_abbreviated_mp_reach() {
    let e = DumpEntry {
        peer: 0,
        next_hop: Some("2001:db8::1".parse().unwrap()),
        attrs: Arc::new(PathAttributes::default()),
    };
    let a = rib_entry_attributes("10.0.0.0/8".parse().unwrap(), &e);
    let mut expected = vec![0x80, 14, 17, 16];
    expected.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    assert_eq!(a.to_vec(), expected);
}

#[test]
fn bgp4mp_message_as4_layout() {
    let mut out = BytesMut::new();
    let msg = [0xffu8; 19];
    encode_bgp4mp_message(
        &mut out,
        5,
        65001,
        65000,
        3,
        "fe80::1".parse().unwrap(),
        "fe80::2".parse().unwrap(),
        &msg,
    );
    assert_eq!(&out[4..8], &[0, 16, 0, 4]);
    assert_eq!(
        u32::from_be_bytes(out[8..12].try_into().unwrap()),
        4 + 4 + 2 + 2 + 32 + 19
    );
    assert_eq!(
        &out[12..24],
        &[0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xe8, 0, 3, 0, 2]
    );
}
