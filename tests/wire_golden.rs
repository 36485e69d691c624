//! Golden vectors: messages captured from a real BIRD 2.0.12 session
//! (tests/golden/README.md). Each is decoded and checked field by field, and
//! re-encoded (or rebuilt with `UpdateBuilder`) to the identical bytes.

use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use kittbgpd::wire::attr::{AsPath, MpNextHop, Origin, PathAttributes};
use kittbgpd::wire::capability::{Capability, ExtNhEntry};
use kittbgpd::wire::notification::cease;
use kittbgpd::wire::{
    split_frame, AfiSafi, Message, Negotiated, Notification, Open, Update, UpdateBuilder, AFI_IPV6,
    AS_TRANS,
};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

#[path = "wire_golden/add_paths.rs"]
mod add_paths;

const BIRD_AS: u32 = 4242421945;

fn golden(name: &str) -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The OPEN the capture speaker sent BIRD (interop/capture_bird.py `our_open`).
fn our_open() -> Open {
    Open::new(
        BIRD_AS,
        240,
        Ipv4Addr::new(10, 255, 0, 2),
        vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedNextHop(vec![ExtNhEntry {
                nlri: AfiSafi::IPV4_UNICAST,
                nexthop_afi: AFI_IPV6,
            }]),
            Capability::ExtendedMessage,
            Capability::GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: vec![],
            },
            Capability::FourOctetAs(BIRD_AS),
        ],
    )
}

fn bird_open() -> Open {
    match Message::decode(golden("bird_open.bin"), &Negotiated::default()).unwrap() {
        Message::Open(o) => o,
        m => panic!("not an OPEN: {m:?}"),
    }
}

fn session() -> Negotiated {
    Negotiated::from_opens(&our_open(), &bird_open())
}

fn decode(name: &str) -> (Bytes, Message) {
    let b = golden(name);
    let mut buf = BytesMut::from(&b[..]);
    let frame = split_frame(&mut buf, session().max_message_len())
        .unwrap()
        .unwrap();
    assert!(buf.is_empty(), "{name}: one whole message");
    (b, Message::decode(frame, &session()).unwrap())
}

fn update(name: &str) -> (Bytes, Update) {
    match decode(name) {
        (b, Message::Update(u)) => (b, u),
        (_, m) => panic!("{name}: not an UPDATE: {m:?}"),
    }
}

fn reencode(m: &Message) -> Bytes {
    m.to_bytes(&session()).unwrap()
}

fn bird_next_hop() -> MpNextHop {
    MpNextHop::V6 {
        global: Ipv6Addr::UNSPECIFIED,
        link_local: Some("fe80::1:2".parse().unwrap()),
    }
}

fn ibgp_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(100),
        ..Default::default()
    }
}

#[test]
fn open() {
    let (bytes, m) = decode("bird_open.bin");
    let Message::Open(o) = &m else { panic!() };
    assert_eq!(o.version, 4);
    assert_eq!(o.my_as, AS_TRANS);
    assert_eq!(o.asn(), BIRD_AS);
    assert_eq!(o.hold_time, 240);
    assert_eq!(o.bgp_id, Ipv4Addr::new(10, 255, 0, 1));
    assert_eq!(
        o.capabilities,
        [
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::ExtendedNextHop(vec![ExtNhEntry {
                nlri: AfiSafi::IPV4_UNICAST,
                nexthop_afi: AFI_IPV6
            }]),
            Capability::GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: vec![]
            },
            Capability::FourOctetAs(BIRD_AS),
            Capability::EnhancedRouteRefresh,
            // Long-lived graceful restart, kept as unknown.
            Capability::Unknown {
                code: 71,
                value: Bytes::new()
            },
        ]
    );
    assert!(o.other_params.is_empty());
    // BIRD puts all capabilities in one parameter, as we do: identical bytes.
    assert_eq!(reencode(&m), bytes);
}

#[test]
fn negotiated_with_bird() {
    assert_eq!(
        session(),
        Negotiated {
            four_octet_as: true,
            // BIRD does not offer extended messages by default.
            extended_message: false,
            ipv4_extended_next_hop: true,
            ipv4_unicast: true,
            ipv6_unicast: true,
            route_refresh: true,
            enhanced_route_refresh: true,
            add_path_receive: kittbgpd::wire::Families::NONE,
            add_path_send: kittbgpd::wire::Families::NONE,
            views: Default::default(),
            view: None,
        }
    );
    assert_eq!(session().max_message_len(), 4096);
}

#[test]
fn keepalive() {
    let (bytes, m) = decode("bird_keepalive.bin");
    assert_eq!(m, Message::Keepalive);
    assert_eq!(reencode(&m), bytes);
}

#[test]
fn update_v4_with_extended_next_hop() {
    let (bytes, u) = update("bird_update_v4.bin");
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    assert!(u.withdrawn.is_empty() && u.nlri.is_empty());
    assert_eq!(u.attrs.without_reach(), ibgp_attrs());
    assert!(u.attrs.med.is_none() && u.attrs.next_hop.is_none());
    let r = u.attrs.mp_reach.as_ref().unwrap();
    assert_eq!(r.afi_safi, AfiSafi::IPV4_UNICAST);
    assert_eq!(r.next_hop, bird_next_hop());
    let ps: Vec<IpNet> = u.announced().collect();
    assert_eq!(
        ps,
        [
            "10.255.0.11/32".parse::<IpNet>().unwrap(),
            "10.255.0.1/32".parse().unwrap()
        ]
    );
    assert!(!u.treat_as_withdraw() && u.has_reachability() && u.is_end_of_rib().is_none());
    assert_eq!(reencode(&Message::Update(u)), bytes);
    // The builder produces BIRD's bytes from the same routes.
    let mut out = BytesMut::new();
    let v4: Vec<Ipv4Net> = ["10.255.0.11/32", "10.255.0.1/32"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        UpdateBuilder::new(&session()).announce_v4(&ibgp_attrs(), bird_next_hop(), v4, &mut out),
        Ok(1)
    );
    assert_eq!(out.freeze(), bytes);
}

#[test]
fn update_v6() {
    let (bytes, u) = update("bird_update_v6.bin");
    assert!(u.issues.is_empty());
    assert_eq!(u.attrs.without_reach(), ibgp_attrs());
    let r = u.attrs.mp_reach.as_ref().unwrap();
    assert_eq!(
        (r.afi_safi, r.next_hop),
        (AfiSafi::IPV6_UNICAST, bird_next_hop())
    );
    let ps: Vec<IpNet> = r.prefixes().collect();
    assert_eq!(
        ps,
        [
            "fd00:255::1/128".parse::<IpNet>().unwrap(),
            "fd00:255::11/128".parse().unwrap()
        ]
    );
    assert_eq!(reencode(&Message::Update(u)), bytes);
    let mut out = BytesMut::new();
    let v6: Vec<Ipv6Net> = ["fd00:255::1/128", "fd00:255::11/128"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        UpdateBuilder::new(&session()).announce_v6(&ibgp_attrs(), bird_next_hop(), v6, &mut out),
        Ok(1)
    );
    assert_eq!(out.freeze(), bytes);
}

#[test]
fn end_of_rib_markers() {
    let (bytes, u) = update("bird_eor_v4.bin");
    assert_eq!(u.is_end_of_rib(), Some(AfiSafi::IPV4_UNICAST));
    assert_eq!(reencode(&Message::Update(u)), bytes);
    let (bytes, u) = update("bird_eor_v6.bin");
    assert_eq!(u.is_end_of_rib(), Some(AfiSafi::IPV6_UNICAST));
    assert_eq!(reencode(&Message::Update(u)), bytes);
    let mut out = BytesMut::new();
    let b = UpdateBuilder::new(&session());
    b.end_of_rib(AfiSafi::IPV4_UNICAST, &mut out).unwrap();
    b.end_of_rib(AfiSafi::IPV6_UNICAST, &mut out).unwrap();
    assert_eq!(out.freeze(), [golden("bird_eor_v4.bin"), bytes].concat());
}

#[test]
fn withdrawals_in_mp_unreach() {
    let (bytes, u) = update("bird_withdraw_v4.bin");
    assert!(u.issues.is_empty() && u.withdrawn.is_empty() && !u.has_reachability());
    assert_eq!(
        u.attrs.mp_unreach.as_ref().unwrap().afi_safi,
        AfiSafi::IPV4_UNICAST
    );
    assert_eq!(
        u.withdrawn_all().collect::<Vec<_>>(),
        ["10.255.0.11/32".parse::<IpNet>().unwrap()]
    );
    assert_eq!(u.is_end_of_rib(), None);
    assert_eq!(reencode(&Message::Update(u)), bytes);

    let (bytes, u) = update("bird_withdraw_v6.bin");
    assert_eq!(
        u.withdrawn_all().collect::<Vec<_>>(),
        ["fd00:255::11/128".parse::<IpNet>().unwrap()]
    );
    assert_eq!(reencode(&Message::Update(u)), bytes);
    let mut out = BytesMut::new();
    let gone: Ipv6Net = "fd00:255::11/128".parse().unwrap();
    assert_eq!(
        UpdateBuilder::new(&session()).withdraw_v6([gone], &mut out),
        Ok(1)
    );
    assert_eq!(out.freeze(), bytes);
}

#[test]
fn notifications() {
    let (bytes, m) = decode("bird_notification_cease.bin");
    let Message::Notification(n) = &m else {
        panic!()
    };
    assert_eq!((n.code, n.subcode), (6, cease::ADMINISTRATIVE_SHUTDOWN));
    assert_eq!(n.shutdown_communication(), Some("maintenance"));
    assert_eq!(
        n.to_string(),
        "Cease / Administrative Shutdown: \"maintenance\""
    );
    assert_eq!(*n, Notification::admin_shutdown("maintenance"));
    assert_eq!(reencode(&m), bytes);

    let (bytes, m) = decode("bird_notification_cease_nomsg.bin");
    assert_eq!(
        m,
        Message::Notification(Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN))
    );
    assert_eq!(reencode(&m), bytes);

    let (bytes, m) = decode("bird_notification_hold_expired.bin");
    assert_eq!(m, Message::Notification(Notification::hold_timer_expired()));
    let Message::Notification(n) = &m else {
        panic!()
    };
    assert_eq!(n.to_string(), "Hold Timer Expired");
    assert_eq!(reencode(&m), bytes);
}

/// The whole first session as one byte stream, cut by `split_frame` in arbitrary chunk sizes.
#[test]
fn session_stream() {
    let stream = golden("bird_session_stream.bin");
    for chunk in [1, 7, 19, 64, 453] {
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(f) = split_frame(&mut buf, session().max_message_len()).unwrap() {
                frames.push(f);
            }
        }
        assert!(buf.is_empty());
        let offsets: Vec<usize> = frames
            .iter()
            .scan(0, |at, f| Some(std::mem::replace(at, *at + f.len())))
            .collect();
        assert_eq!(offsets, [0, 67, 86, 174, 197, 309, 338, 373, 420]);
        let kinds: Vec<String> = frames
            .into_iter()
            .map(|f| match Message::decode(f.clone(), &session()).unwrap() {
                Message::Open(_) => "open".into(),
                Message::Keepalive => "keepalive".into(),
                Message::Update(u) => match u.is_end_of_rib() {
                    Some(f) => format!("eor {f}"),
                    None => format!(
                        "update {}+{}-",
                        u.announced().count(),
                        u.withdrawn_all().count()
                    ),
                },
                Message::Notification(n) => n.to_string(),
                Message::RouteRefresh(_) => "route-refresh".into(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "open",
                "keepalive",
                "update 2+0-",
                "eor ipv4-unicast",
                "update 2+0-",
                "eor ipv6-unicast",
                "update 0+1-",
                "update 0+1-",
                "Cease / Administrative Shutdown: \"maintenance\""
            ]
        );
    }
}
