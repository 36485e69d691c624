use super::*;

fn key(b: u8) -> WgKey {
    WgKey([b; 32])
}

fn desired(name: &str, peer: u8, endpoint: Option<&str>) -> Desired {
    Desired {
        name: name.into(),
        private_key: key(1),
        listen_port: 51000,
        peer: PeerSpec {
            public_key: key(peer),
            preshared_key: None,
            endpoint: endpoint.map(|e| e.parse().unwrap()),
            keepalive: 10,
        },
        mtu: 1420,
        address: "fe80::1:2".parse().unwrap(),
    }
}

/// What `desired` looks like once applied.
fn running(d: &Desired) -> Actual {
    Actual {
        wireguard: true,
        up: true,
        mtu: Some(d.mtu),
        link_local: vec![d.address],
        private_key: Some(d.private_key),
        listen_port: Some(d.listen_port),
        peers: vec![ActualPeer {
            public_key: d.peer.public_key,
            preshared_key: d.peer.preshared_key,
            endpoint: d.peer.endpoint,
            keepalive: d.peer.keepalive,
            allows_all: true,
        }],
    }
}

fn map(items: &[(&str, Actual)]) -> BTreeMap<String, Actual> {
    items
        .iter()
        .map(|(n, a)| (n.to_string(), a.clone()))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn missing_tunnel_is_built_whole_in_order() {
    let d = desired("wg2", 2, Some("172.31.2.2:51001"));
    let ops = diff(
        std::slice::from_ref(&d),
        &BTreeMap::new(),
        &BTreeSet::new(),
        true,
    );
    let n = || "wg2".to_string();
    assert_eq!(
        ops,
        vec![
            Op::Create { name: n() },
            Op::SetDevice {
                name: n(),
                private_key: Some(key(1)),
                listen_port: Some(51000)
            },
            Op::SetPeer {
                name: n(),
                public_key: key(2),
                preshared_key: None,
                endpoint: d.peer.endpoint,
                keepalive: Some(10),
                allow_all: true
            },
            Op::SetMtu {
                name: n(),
                mtu: 1420
            },
            Op::NoAddrGen { name: n() },
            Op::AddAddress {
                name: n(),
                address: d.address
            },
            Op::Up { name: n() },
        ]
    );
}

#[test]
fn a_running_tunnel_as_configured_needs_nothing() {
    let d = desired("wg2", 2, Some("172.31.2.2:51001"));
    let a = map(&[("wg2", running(&d))]);
    assert_eq!(diff(&[d], &a, &set(&["wg2"]), true), vec![]);
}

#[test]
fn endpoint_change_is_one_peer_update_and_nothing_else() {
    let old = desired("wg2", 2, Some("172.31.2.2:51001"));
    let new = desired("wg2", 2, Some("172.31.9.2:51001"));
    let a = map(&[("wg2", running(&old))]);
    assert_eq!(
        diff(std::slice::from_ref(&new), &a, &set(&["wg2"]), true),
        vec![Op::SetPeer {
            name: "wg2".into(),
            public_key: key(2),
            preshared_key: None,
            endpoint: new.peer.endpoint,
            keepalive: None,
            allow_all: false
        }]
    );
}

#[test]
fn endpoint_learned_from_the_peer_is_left_alone() {
    // We have no endpoint configured (the other end dials): WireGuard learned one.
    let d = desired("wg2", 2, None);
    let mut a = running(&d);
    a.peers[0].endpoint = Some("172.31.2.2:40000".parse().unwrap());
    assert_eq!(diff(&[d], &map(&[("wg2", a)]), &set(&[]), true), vec![]);
}

#[test]
fn drift_is_repaired_field_by_field() {
    let d = desired("wg2", 2, None);
    let mut a = running(&d);
    a.listen_port = Some(1234);
    a.peers[0].keepalive = 0;
    a.peers[0].allows_all = false;
    a.peers.push(ActualPeer {
        public_key: key(9),
        preshared_key: None,
        endpoint: None,
        keepalive: 0,
        allows_all: false,
    });
    a.link_local.push("fe80::dead".parse().unwrap());
    a.mtu = Some(1500);
    a.up = false;
    let n = || "wg2".to_string();
    assert_eq!(
        diff(
            std::slice::from_ref(&d),
            &map(&[("wg2", a)]),
            &set(&[]),
            true
        ),
        vec![
            Op::SetDevice {
                name: n(),
                private_key: None,
                listen_port: Some(51000)
            },
            Op::RemovePeer {
                name: n(),
                public_key: key(9)
            },
            Op::SetPeer {
                name: n(),
                public_key: key(2),
                preshared_key: None,
                endpoint: None,
                keepalive: Some(10),
                allow_all: true
            },
            Op::SetMtu {
                name: n(),
                mtu: 1420
            },
            Op::NoAddrGen { name: n() },
            Op::DelAddress {
                name: n(),
                address: "fe80::dead".parse().unwrap()
            },
            Op::Up { name: n() },
        ]
    );
}

#[test]
fn peer_key_change_replaces_the_peer() {
    let old = desired("wg2", 2, None);
    let new = desired("wg2", 3, None);
    let ops = diff(
        std::slice::from_ref(&new),
        &map(&[("wg2", running(&old))]),
        &set(&["wg2"]),
        true,
    );
    assert_eq!(ops.len(), 2);
    assert!(matches!(&ops[0], Op::RemovePeer { public_key, .. } if *public_key == key(2)));
    assert!(
        matches!(&ops[1], Op::SetPeer { public_key, allow_all: true, .. } if *public_key == key(3))
    );
}

#[test]
fn only_owned_tunnels_are_deleted_and_foreign_ones_never_touched() {
    let keep = desired("wg2", 2, None);
    let gone = desired("wg3", 3, None);
    let foreign = desired("wg9", 9, None);
    let actual = map(&[
        ("wg2", running(&keep)),
        ("wg3", running(&gone)),
        ("wg9", running(&foreign)),
    ]);
    // wg3 was ours and left the config; wg9 was never ours.
    let ops = diff(
        std::slice::from_ref(&keep),
        &actual,
        &set(&["wg2", "wg3"]),
        true,
    );
    assert_eq!(ops, vec![Op::Delete { name: "wg3".into() }]);
    // An owned name that no longer exists: nothing to do.
    assert_eq!(diff(&[], &BTreeMap::new(), &set(&["wg3"]), true), vec![]);
}

#[test]
fn a_configured_name_that_is_not_wireguard_is_left_alone() {
    let d = desired("eth0", 2, None);
    let a = Actual {
        wireguard: false,
        up: true,
        ..Actual::default()
    };
    let ops = diff(&[d], &map(&[("eth0", a.clone())]), &set(&["eth0"]), true);
    assert!(matches!(&ops[..], [Op::Conflict { name, .. }] if name == "eth0"));
    // Not deleted either, even if once owned and no longer configured.
    assert_eq!(
        diff(&[], &map(&[("eth0", a)]), &set(&["eth0"]), true),
        vec![]
    );
}

#[test]
fn preshared_key_added_and_removed() {
    let mut d = desired("wg2", 2, None);
    d.peer.preshared_key = Some(key(7));
    let plain = running(&desired("wg2", 2, None));
    let ops = diff(
        std::slice::from_ref(&d),
        &map(&[("wg2", plain.clone())]),
        &set(&[]),
        true,
    );
    assert!(matches!(&ops[..], [Op::SetPeer { preshared_key: Some(Some(k)), .. }] if *k == key(7)));
    let with = running(&d);
    let ops = diff(
        &[desired("wg2", 2, None)],
        &map(&[("wg2", with)]),
        &set(&[]),
        true,
    );
    assert!(matches!(
        &ops[..],
        [Op::SetPeer {
            preshared_key: Some(None),
            ..
        }]
    ));
}

#[test]
fn backend_choice() {
    let have = |kernel, userspace| Available { kernel, userspace };
    use WgBackend::*;
    assert_eq!(choose_backend(Auto, have(true, true)), Ok(Chosen::Kernel));
    assert_eq!(
        choose_backend(Auto, have(false, true)),
        Ok(Chosen::Userspace)
    );
    assert_eq!(
        choose_backend(Userspace, have(true, true)),
        Ok(Chosen::Userspace)
    );
    assert_eq!(
        choose_backend(Kernel, have(true, false)),
        Ok(Chosen::Kernel)
    );
    assert!(choose_backend(Kernel, have(false, true))
        .unwrap_err()
        .contains("kernel module"));
    assert!(choose_backend(Userspace, have(true, false))
        .unwrap_err()
        .contains("wireguard-go"));
    assert!(choose_backend(Auto, have(false, false))
        .unwrap_err()
        .contains("no WireGuard"));
}

#[test]
fn a_link_set_down_by_hand_stays_down_after_start() {
    let d = desired("wg2", 2, None);
    let mut a = running(&d);
    a.up = false;
    a.link_local.clear(); // `ip link set down` flushed it
    let actual = map(&[("wg2", a)]);
    let n = || "wg2".to_string();
    // Periodic repair: the address is put back, the link left down.
    assert_eq!(
        diff(std::slice::from_ref(&d), &actual, &set(&["wg2"]), false),
        vec![Op::AddAddress {
            name: n(),
            address: d.address
        }]
    );
    // At start it is brought up.
    let ops = diff(std::slice::from_ref(&d), &actual, &set(&["wg2"]), true);
    assert_eq!(ops.last(), Some(&Op::Up { name: n() }));
    // A tunnel created by the repair is brought up.
    let ops = diff(std::slice::from_ref(&d), &BTreeMap::new(), &set(&[]), false);
    assert_eq!(ops.last(), Some(&Op::Up { name: n() }));
}

/// A reload: the new desired set against what runs. wg2 is unchanged, wg3
/// gets a new endpoint, wg4 is new, wg5 (ours) left the config, wg9 (not
/// ours) is never touched: each only what it needs, wg2 nothing at all.
#[test]
fn a_reloaded_set_adds_updates_and_deletes_only_what_changed() {
    let wg2 = desired("wg2", 2, Some("172.31.2.2:51001"));
    let old3 = desired("wg3", 3, Some("172.31.3.2:51001"));
    let wg5 = desired("wg5", 5, None);
    let wg9 = desired("wg9", 9, None);
    let actual = map(&[
        ("wg2", running(&wg2)),
        ("wg3", running(&old3)),
        ("wg5", running(&wg5)),
        ("wg9", running(&wg9)),
    ]);
    let new3 = desired("wg3", 3, Some("172.31.3.9:51001"));
    let wg4 = desired("wg4", 4, None);
    let ops = diff(
        &[wg2, new3, wg4],
        &actual,
        &set(&["wg2", "wg3", "wg5"]),
        false,
    );
    assert!(
        ops.iter().all(|op| !format!("{op:?}").contains("\"wg2\"")),
        "{ops:?}"
    );
    assert!(
        ops.iter().all(|op| !format!("{op:?}").contains("\"wg9\"")),
        "{ops:?}"
    );
    assert!(ops.contains(&Op::SetPeer {
        name: "wg3".into(),
        public_key: key(3),
        preshared_key: None,
        endpoint: Some("172.31.3.9:51001".parse().unwrap()),
        keepalive: None,
        allow_all: false,
    }));
    let wg3_ops = ops
        .iter()
        .filter(|op| format!("{op:?}").contains("\"wg3\""))
        .count();
    assert_eq!(wg3_ops, 1, "{ops:?}");
    let wg4_first = ops.iter().find(|op| format!("{op:?}").contains("\"wg4\""));
    assert_eq!(
        wg4_first,
        Some(&Op::Create { name: "wg4".into() }),
        "{ops:?}"
    );
    assert!(
        ops.contains(&Op::Up { name: "wg4".into() }),
        "a created tunnel comes up"
    );
    assert_eq!(ops.last(), Some(&Op::Delete { name: "wg5".into() }));
}
