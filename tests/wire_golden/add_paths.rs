//! Golden vectors with ADD-PATH (RFC 7911): a real BIRD 2.0.12 with `add paths
//! tx` talking to a speaker that announced ADD-PATH receive
//! (`KB_CAPTURE_ADD_PATHS=1 interop/capture_bird.sh tests/golden/add_paths`).
//! Decoded with path ids, re-encoded and rebuilt to the identical bytes.
//! A module of `wire_golden.rs` (its `golden` and `our_open`).

use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use kittbgpd::wire::capability::{AddPathMode, Capability};
use kittbgpd::wire::{AfiSafi, Families, Message, Negotiated, Open, Update, UpdateBuilder};

const ALL: Families = Families {
    ipv4_unicast: true,
    ipv6_unicast: true,
};
/// The path id BIRD gave its own routes in the capture.
const BIRD_PATH_ID: u32 = 5;

fn golden(name: &str) -> Bytes {
    super::golden(&format!("add_paths/{name}"))
}

/// The speaker's OPEN (interop/capture_bird.py `our_open`, `--add-paths`).
fn our_open() -> Open {
    let mut o = super::our_open();
    o.capabilities.push(Capability::AddPath(vec![
        (AfiSafi::IPV4_UNICAST, AddPathMode::Receive),
        (AfiSafi::IPV6_UNICAST, AddPathMode::Receive),
    ]));
    o
}

fn bird_open() -> Open {
    match Message::decode(golden("bird_open.bin"), &Negotiated::default()).unwrap() {
        Message::Open(o) => o,
        m => panic!("not an OPEN: {m:?}"),
    }
}

/// Our side: paths received with ids.
fn ours() -> Negotiated {
    Negotiated::from_opens(&our_open(), &bird_open())
}

/// BIRD's side: paths sent with ids (what our builder must do to match it).
fn birds() -> Negotiated {
    Negotiated::from_opens(&bird_open(), &our_open())
}

fn update(name: &str) -> (Bytes, Update) {
    let b = golden(name);
    match Message::decode(b.clone(), &ours()).unwrap() {
        Message::Update(u) => (b, u),
        m => panic!("{name}: not an UPDATE: {m:?}"),
    }
}

use super::{bird_next_hop, ibgp_attrs as attrs};

#[test]
fn bird_announces_add_path_send_and_negotiation_is_one_way() {
    let o = bird_open();
    assert!(o.capabilities.contains(&Capability::AddPath(vec![
        (AfiSafi::IPV4_UNICAST, AddPathMode::Send),
        (AfiSafi::IPV6_UNICAST, AddPathMode::Send),
    ])));
    let n = ours();
    assert_eq!((n.add_path_receive, n.add_path_send), (ALL, Families::NONE));
    let b = birds();
    assert_eq!((b.add_path_receive, b.add_path_send), (Families::NONE, ALL));
    // Our OPEN round-trips through the codec.
    let bytes = Message::Open(our_open())
        .to_bytes(&Negotiated::default())
        .unwrap();
    assert_eq!(
        Message::decode(bytes, &Negotiated::default()).unwrap(),
        Message::Open(our_open())
    );
}

#[test]
fn updates_carry_path_ids_and_rebuild_to_birds_bytes() {
    let (bytes, u) = update("bird_update_v4.bin");
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    let r = u.attrs.mp_reach.as_ref().unwrap();
    assert!(r.add_path && r.afi_safi == AfiSafi::IPV4_UNICAST);
    let paths: Vec<(u32, IpNet)> = r.prefixes().with_path_ids().collect();
    let v4: Vec<(u32, Ipv4Net)> = ["10.255.0.11/32", "10.255.0.1/32"]
        .iter()
        .map(|s| (BIRD_PATH_ID, s.parse().unwrap()))
        .collect();
    assert_eq!(
        paths,
        v4.iter()
            .map(|(i, p)| (*i, IpNet::V4(*p)))
            .collect::<Vec<_>>()
    );
    assert_eq!(Message::Update(u).to_bytes(&ours()).unwrap(), bytes);
    let mut out = BytesMut::new();
    UpdateBuilder::new(&birds())
        .announce_v4(&attrs(), bird_next_hop(), v4.iter().copied(), &mut out)
        .unwrap();
    assert_eq!(out.freeze(), bytes);

    let (bytes, u) = update("bird_update_v6.bin");
    let v6: Vec<(u32, Ipv6Net)> = ["fd00:255::1/128", "fd00:255::11/128"]
        .iter()
        .map(|s| (BIRD_PATH_ID, s.parse().unwrap()))
        .collect();
    let got: Vec<(u32, IpNet)> = u
        .attrs
        .mp_reach
        .as_ref()
        .unwrap()
        .prefixes()
        .with_path_ids()
        .collect();
    assert_eq!(
        got,
        v6.iter()
            .map(|(i, p)| (*i, IpNet::V6(*p)))
            .collect::<Vec<_>>()
    );
    let mut out = BytesMut::new();
    UpdateBuilder::new(&birds())
        .announce_v6(&attrs(), bird_next_hop(), v6.iter().copied(), &mut out)
        .unwrap();
    assert_eq!(out.freeze(), bytes);
    // Without ADD-PATH negotiated the same bytes do not parse as prefixes.
    assert!(Message::decode(bytes, &Negotiated::FABRIC).is_err());
}

#[test]
fn withdrawals_carry_path_ids() {
    let (bytes, u) = update("bird_withdraw_v4.bin");
    let w = u.attrs.mp_unreach.as_ref().unwrap();
    assert_eq!(
        w.prefixes().with_path_ids().collect::<Vec<_>>(),
        [(BIRD_PATH_ID, "10.255.0.11/32".parse::<IpNet>().unwrap())]
    );
    assert_eq!(Message::Update(u).to_bytes(&ours()).unwrap(), bytes);
    let (bytes, u) = update("bird_withdraw_v6.bin");
    let gone: Ipv6Net = "fd00:255::11/128".parse().unwrap();
    assert_eq!(
        u.attrs
            .mp_unreach
            .as_ref()
            .unwrap()
            .prefixes()
            .with_path_ids()
            .collect::<Vec<_>>(),
        [(BIRD_PATH_ID, IpNet::V6(gone))]
    );
    let mut out = BytesMut::new();
    UpdateBuilder::new(&birds())
        .withdraw_v6([(BIRD_PATH_ID, gone)], &mut out)
        .unwrap();
    assert_eq!(out.freeze(), bytes);
}

#[test]
fn session_stream_decodes_whole() {
    let mut buf = BytesMut::from(&golden("bird_session_stream.bin")[..]);
    let n = ours();
    let mut announced = 0;
    while let Some(f) = kittbgpd::wire::split_frame(&mut buf, n.max_message_len()).unwrap() {
        if let Message::Update(u) = Message::decode(f, &n).unwrap() {
            announced += u.announced().count();
        }
    }
    assert!(buf.is_empty());
    assert_eq!(announced, 4);
}
