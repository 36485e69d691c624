//! `kittbgpd dump mrt`: the RIB's TABLE_DUMP_V2 dump read back by an
//! independent MRT reader (bgpkit-parser).

mod common;

use bgpkit_parser::models::{ElemType, MrtMessage, TableDumpV2Message};
use bgpkit_parser::BgpkitParser;
use ipnet::IpNet;
use kittbgpd::config::{ImportLimitAction, Loopbacks};
use kittbgpd::rib::{ExportContext, PeerConfig, Rib, RibConfig};
use kittbgpd::wire::{
    AfiSafi, AsPath, MpNextHop, MpReach, Negotiated, Origin, PathAttributes, Update,
};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn ll(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, i)
}

fn announce(prefixes: &[&str], nh: u16, med: u32) -> Update {
    let family = if prefixes[0].contains(':') {
        AfiSafi::IPV6_UNICAST
    } else {
        AfiSafi::IPV4_UNICAST
    };
    Update {
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            med: Some(med),
            mp_reach: Some(Box::new(MpReach::new(
                family,
                MpNextHop::V6 {
                    global: Ipv6Addr::UNSPECIFIED,
                    link_local: Some(ll(nh)),
                },
                prefixes.iter().map(|p| p.parse::<IpNet>().unwrap()),
            ))),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Two peers (cost 10 and 20) both announce 10.255.0.9/32 and fd00:255::9/128;
/// p1 also sends 192.0.2.0/24 (filtered: not a loopback); we originate
/// 10.255.0.1/32.
fn rib() -> Rib {
    let mut rib = Rib::new(RibConfig {
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        cluster_id: None,
        local_as: 65000,
        loopbacks: Loopbacks {
            ipv4: vec!["10.255.0.0/16".parse().unwrap()],
            ipv6: vec!["fd00:255::/48".parse().unwrap()],
            originate: Vec::new(),
            from_lo: false,
        },
    });
    for i in 0..2u16 {
        let id = rib.add_peer(PeerConfig {
            name: format!("p{}", i + 1),
            address: IpAddr::V6(ll(i + 1)),
            interface: Some(format!("wg{}", i + 1)),
            rr_client: true,
            cost: Some(10 * (u32::from(i) + 1)),
            import_limit: 0,
            import_limit_action: ImportLimitAction::Block,
            filtered_limit: 0,
            multihop: false,
        });
        let local = format!("[fe80::9:{}%3]:1790", i + 1).parse().unwrap();
        rib.peer_up(
            id,
            ExportContext::new(Negotiated::FABRIC, Some(local)),
            Ipv4Addr::new(10, 0, 0, 11 + i as u8),
        );
        rib.update(id, &announce(&["10.255.0.9/32"], i + 1, 5));
        rib.update(id, &announce(&["fd00:255::9/128"], i + 1, 5));
    }
    rib.update(0, &announce(&["192.0.2.0/24"], 1, 0));
    rib.set_originated(BTreeSet::from(["10.255.0.1/32".parse().unwrap()]));
    rib.flush();
    rib
}

#[test]
fn dump_reads_back_with_bgpkit_parser() {
    let bytes = rib().mrt_dump(1_700_000_000).freeze();

    // Two views, each opened by its PEER_INDEX_TABLE: this router + 2 peers.
    let mut views = Vec::new();
    for rec in BgpkitParser::from_reader(std::io::Cursor::new(bytes.to_vec())).into_record_iter() {
        assert_eq!(rec.common_header.timestamp, 1_700_000_000);
        if let MrtMessage::TableDumpV2Message(TableDumpV2Message::PeerIndexTable(t)) = rec.message {
            assert_eq!(t.collector_bgp_id, Ipv4Addr::new(10, 0, 0, 1));
            assert_eq!(t.id_peer_map.len(), 3);
            assert_eq!(t.id_peer_map[&1].peer_ip, IpAddr::V6(ll(1)));
            assert_eq!(t.id_peer_map[&2].peer_bgp_id, Ipv4Addr::new(10, 0, 0, 12));
            views.push(t.view_name);
        }
    }
    assert_eq!(views, ["loc-rib", "adj-rib-in"]);

    let elems: Vec<_> = BgpkitParser::from_reader(std::io::Cursor::new(bytes.to_vec()))
        .into_elem_iter()
        .collect();
    assert!(elems.iter().all(|e| e.elem_type == ElemType::ANNOUNCE));
    let rows: Vec<(String, IpAddr, Option<IpAddr>, Option<u32>)> = elems
        .iter()
        .map(|e| (e.prefix.to_string(), e.peer_ip, e.next_hop, e.med))
        .collect();
    let me = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let p1 = IpAddr::V6(ll(1));
    let p2 = IpAddr::V6(ll(2));
    let g = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let expected = vec![
        // Loc-RIB: our own route; the best path (p1, lower cost) with MED 5 + 10;
        // IPv4 over an IPv6 next hop (RFC 8950) is in MP_REACH_NLRI as `::` +
        // link-local (32 octets); bgpkit reports the first address.
        ("10.255.0.1/32".to_string(), me, None, Some(0)),
        ("10.255.0.9/32".into(), p1, Some(g), Some(15)),
        ("fd00:255::9/128".into(), p1, Some(g), Some(15)),
        // Adj-RIB-In: every received route as received, the filtered one too.
        ("10.255.0.9/32".into(), p1, Some(g), Some(5)),
        ("10.255.0.9/32".into(), p2, Some(g), Some(5)),
        ("192.0.2.0/24".into(), p1, Some(g), Some(0)),
        ("fd00:255::9/128".into(), p1, Some(g), Some(5)),
        ("fd00:255::9/128".into(), p2, Some(g), Some(5)),
    ];
    assert_eq!(rows, expected);
    assert!(elems.iter().all(|e| e.local_pref == Some(100)));
    // The abbreviated MP_REACH_NLRI of RFC 6396 §4.3.4 with p2's link-local.
    let mut nh = vec![0x80, 14, 33, 32];
    nh.extend_from_slice(&[0; 16]);
    nh.extend_from_slice(&ll(2).octets());
    assert!(bytes.windows(nh.len()).any(|w| w == nh.as_slice()));

    // bgpdump (Debian `bgpdump`), when installed: a second independent reader.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rib.mrt");
    std::fs::write(&file, &bytes).unwrap();
    match std::process::Command::new("bgpdump")
        .arg("-m")
        .arg(&file)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            eprintln!("{text}");
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 8, "{text}");
            assert!(
                lines[1]
                    .starts_with("TABLE_DUMP2|1700000000|B|fe80::1:1|65000|10.255.0.9/32||IGP|"),
                "{text}"
            );
            assert!(lines[1].contains("|100|15|"), "{text}");
            assert!(
                lines[7].contains("|fe80::1:2|65000|fd00:255::9/128||IGP|"),
                "{text}"
            );
        }
        Err(_) => eprintln!("bgpdump not installed: second reader skipped"),
    }
}

/// An UPDATE with these path attributes and IPv4 NLRI, no withdrawals.
/// The real daemon: a peer announces 10.0.0.7/32; `kittbgpd dump mrt FILE`
/// (relative path, from the CLI) writes a file bgpkit-parser reads back with
/// our own route and the peer's, in both views.
#[test]
fn daemon_dumps_mrt_over_the_control_socket() {
    use common::*;
    let d = start_daemon();
    let mut p = Peer::ready(d.port);
    p.establish();
    // ORIGIN IGP, empty AS_PATH, NEXT_HOP 127.0.0.2, LOCAL_PREF 100; NLRI 10.0.0.7/32.
    p.send_raw(&common::ipv4_announce(
        &["10.0.0.7/32".parse().unwrap()],
        "127.0.0.2".parse().unwrap(),
    ));
    // The peer task hands the UPDATE to the RIB task: wait until it is there.
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    while !d
        .routes(true, false)
        .iter()
        .any(|r| r["prefix"] == "10.0.0.7/32")
    {
        assert!(std::time::Instant::now() < deadline, "route not learned");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kittbgpd"))
        .args(["dump", "mrt", "rib.mrt", "-s"])
        .arg(&d.socket)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let file = dir.path().join("rib.mrt");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&file.display().to_string()), "{text}");
    let bytes = std::fs::read(&file).unwrap();
    let rows: Vec<(String, IpAddr)> = BgpkitParser::from_reader(std::io::Cursor::new(bytes))
        .into_elem_iter()
        .map(|e| (e.prefix.to_string(), e.peer_ip))
        .collect();
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let me = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        rows,
        [
            ("10.0.0.1/32".to_string(), me),
            ("10.0.0.7/32".into(), peer),
            ("10.0.0.7/32".into(), peer),
        ]
    );
}

/// `[mrt] updates = FILE`: a received UPDATE is appended as
/// BGP4MP_MESSAGE_AS4, read back by bgpkit-parser.
#[test]
fn received_updates_are_logged_as_bgp4mp() {
    use common::*;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("updates.mrt");
    let d = start_daemon_with(&format!("\n[mrt]\nupdates = \"{}\"\n", log.display()));
    let mut p = Peer::ready(d.port);
    p.establish();
    // ORIGIN IGP, empty AS_PATH, NEXT_HOP 127.0.0.2, LOCAL_PREF 100, MED 9; NLRI 10.0.0.7/32.
    let attrs = [
        0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 127, 0, 0, 2, 0x80, 4, 4, 0, 0, 0, 9, 0x40, 5, 4, 0,
        0, 0, 100,
    ];
    p.send_raw(&common::announce_raw(&attrs, &[32, 10, 0, 0, 7]));
    // The writer task appends: wait until the record is in the file.
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    let elems = loop {
        let bytes = std::fs::read(&log).unwrap_or_default();
        let elems: Vec<_> = BgpkitParser::from_reader(std::io::Cursor::new(bytes))
            .into_elem_iter()
            .collect();
        if !elems.is_empty() {
            break elems;
        }
        assert!(std::time::Instant::now() < deadline, "no record in {log:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(elems.len(), 1, "{elems:?}");
    let e = &elems[0];
    assert_eq!(e.elem_type, ElemType::ANNOUNCE);
    assert_eq!(e.prefix.to_string(), "10.0.0.7/32");
    assert_eq!(e.peer_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(e.peer_asn.to_u32(), 65000);
    assert_eq!(e.next_hop, Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
    assert_eq!(e.med, Some(9));
}
