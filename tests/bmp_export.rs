//! BMP export (RFC 7854) from the real daemon to a collector played by the
//! test, each message read by an independent parser (bgpkit-parser).

mod common;

use bgpkit_parser::parse_bmp_msg;
use bgpkit_parser::parser::bmp::messages::{BmpMessage, BmpMessageBody, BmpMsgType};
use common::*;
use std::io::Read;
use std::net::TcpListener;

/// The next BMP message from the daemon (a read timeout fails the test).
fn next(s: &mut std::net::TcpStream) -> (u8, BmpMessage, Vec<u8>) {
    let mut head = [0u8; 6];
    s.read_exact(&mut head).expect("BMP header");
    assert_eq!(head[0], 3, "BMP version 3");
    let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
    let mut msg = head.to_vec();
    msg.resize(len, 0);
    s.read_exact(&mut msg[6..]).expect("BMP body");
    let mut b = bytes::Bytes::from(msg.clone());
    let m = parse_bmp_msg(&mut b).unwrap_or_else(|e| panic!("{e:?}: {msg:02x?}"));
    (head[5], m, msg)
}

/// Skips Stats Reports (periodic), returns the next other message.
fn next_event(s: &mut std::net::TcpStream) -> (BmpMessage, Vec<u8>) {
    loop {
        let (t, m, raw) = next(s);
        if t != 1 {
            return (m, raw);
        }
        assert!(matches!(m.message_body, BmpMessageBody::StatsReport(_)));
    }
}

#[test]
fn initiation_peer_up_route_monitoring_pre_and_post_policy_peer_down() {
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = collector.local_addr().unwrap().port();
    let d = start_daemon_with(&format!(
        "\n[bmp]\ncollector = [\"127.0.0.1:{port}\"]\nstats_interval = 1\n"
    ));
    let (mut s, _) = collector.accept().unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (t, m, _) = next(&mut s);
    assert_eq!(t, 4, "Initiation first");
    let text = format!("{m:?}");
    assert!(
        text.contains("kittbgpd") && text.contains("10.0.0.1"),
        "{text}"
    );

    let mut p = Peer::ready(d.port);
    p.establish();
    let (m, _) = next_event(&mut s);
    assert_eq!(m.common_header.msg_type, BmpMsgType::PeerUpNotification);
    let pph = m.per_peer_header.as_ref().unwrap();
    assert_eq!(pph.peer_ip.to_string(), "127.0.0.1");
    assert!(format!("{m:?}").contains("10.0.0.1"), "our OPEN in Peer Up");

    // 10.0.0.7/32 is a loopback (accepted); 10.0.1.0/24 is not (filtered).
    let prefixes = [
        "10.0.0.7/32".parse().unwrap(),
        "10.0.1.0/24".parse().unwrap(),
    ];
    p.send_raw(&ipv4_announce(&prefixes, "127.0.0.2".parse().unwrap()));

    let (pre, raw) = next_event(&mut s);
    assert_eq!(pre.common_header.msg_type, BmpMsgType::RouteMonitoring);
    assert_eq!(raw[7] & 0x40, 0, "pre-policy: L flag clear");
    let text = format!("{pre:?}");
    assert!(
        text.contains("10.0.0.7/32") && text.contains("10.0.1.0/24"),
        "{text}"
    );

    let (post, raw) = next_event(&mut s);
    assert_eq!(post.common_header.msg_type, BmpMsgType::RouteMonitoring);
    assert_eq!(raw[7] & 0x40, 0x40, "post-policy: L flag set");
    let BmpMessageBody::RouteMonitoring(rm) = &post.message_body else {
        panic!("{post:?}")
    };
    let text = format!("{rm:?}");
    assert!(
        text.contains("10.0.0.7/32") && !text.contains("10.0.1.0/24"),
        "{text}"
    );
    let (post2, raw) = next_event(&mut s);
    assert_eq!(raw[7] & 0x40, 0x40);
    let text = format!("{post2:?}");
    assert!(
        text.contains("10.0.1.0/24") && text.contains("withdrawn"),
        "filtered = withdrawn post-policy: {text}"
    );

    // Stats Reports come periodically.
    loop {
        let (t, m, _) = next(&mut s);
        if t == 1 {
            let text = format!("{m:?}");
            assert!(text.contains("StatsReport"), "{text}");
            break;
        }
    }

    drop(p); // closed without NOTIFICATION
    let (m, raw) = next_event(&mut s);
    assert_eq!(
        m.common_header.msg_type,
        BmpMsgType::PeerDownNotification,
        "{m:?}"
    );
    assert_eq!(raw[48], 4, "reason 4: remote closed without NOTIFICATION");
}
