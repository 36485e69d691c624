//! Update groups: one encoding shared by the members, the sender exception,
//! a slow member that leaves the stream and still ends with the same routes.

use super::super::tests::{announce, loopbacks, neg, peer_cfg, withdraw, ME};
use super::super::{split_messages, ExportContext, PeerId, Rib, RibConfig};
use crate::wire::{Message, Negotiated};
use bytes::Bytes;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Sessions from our loopback, as at a reflector: the same next hop self.
fn shared_ctx(neg: Negotiated) -> ExportContext {
    ExportContext::new(neg, Some("[fd00::1]:1790".parse().unwrap()))
}

/// A reflector with `n` clients on loopback sessions (router ids 10.0.1.x).
fn reflector(n: u16) -> Rib {
    let mut rib = Rib::new(RibConfig {
        router_id: ME,
        cluster_id: None,
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    for i in 0..n {
        let id = rib.add_peer(peer_cfg(i + 1, Some(1)));
        rib.peer_up(id, shared_ctx(neg()), Ipv4Addr::new(10, 0, 1, i as u8 + 1));
    }
    rib.flush();
    for p in 0..usize::from(n) {
        drain(&mut rib, p, usize::MAX);
    }
    rib
}

/// Everything `peer` can pull now, in parts.
fn drain(rib: &mut Rib, peer: PeerId, budget: usize) -> Vec<Bytes> {
    let mut parts = Vec::new();
    while rib.poll_transmit_parts(peer, budget, &mut parts) {}
    parts
}

/// What a receiver holds after `parts`: prefix -> MED, applied in order.
fn apply(held: &mut BTreeMap<IpNet, Option<u32>>, parts: &[Bytes]) {
    for part in parts {
        for m in split_messages(part.clone()) {
            let Ok(Message::Update(u)) = Message::decode(m, &neg()) else {
                panic!("not an UPDATE");
            };
            for p in u.withdrawn_all() {
                held.remove(&p);
            }
            for p in u.announced() {
                held.insert(p, u.attrs.med);
            }
        }
    }
}

fn prefixes(from: u32, n: u32) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("10.255.{}.{}/32", i / 256, i % 256))
        .collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn members_share_one_encoding_and_the_sender_gets_none_of_its_own() {
    let mut rib = reflector(4);
    let g: Vec<_> = (0..4).map(|p| rib.update_group(p)).collect();
    assert!(
        g.iter().all(|x| *x == Some((g[0].unwrap().0, true))),
        "{g:?}"
    );
    let ps = prefixes(0, 50);
    rib.update(0, &announce(Some(5), &refs(&ps)));
    rib.flush();
    let parts: Vec<Vec<Bytes>> = (0..4).map(|p| drain(&mut rib, p, usize::MAX)).collect();
    // p1..p3 send the very same buffer; p0, the sender, nothing of it.
    for p in 1..4 {
        assert_eq!(parts[p].len(), 1, "p{p}");
        assert_eq!(
            parts[p][0].as_ptr(),
            parts[1][0].as_ptr(),
            "p{p} shares p1's bytes"
        );
        let mut held = BTreeMap::new();
        apply(&mut held, &parts[p]);
        assert_eq!(held.len(), 50);
        assert_eq!(rib.counts(p).advertised, 50);
    }
    assert!(parts[0].is_empty(), "{:?}", parts[0]);
    assert_eq!(rib.counts(0).advertised, 0);
}

#[test]
fn a_mixed_entry_is_sent_to_a_source_without_its_own_routes() {
    let mut rib = reflector(3);
    let (a, b) = (prefixes(0, 10), prefixes(100, 10));
    rib.update(0, &announce(Some(1), &refs(&a)));
    rib.update(1, &announce(Some(2), &refs(&b)));
    rib.flush();
    let mut held: Vec<BTreeMap<IpNet, Option<u32>>> = vec![BTreeMap::new(); 3];
    let parts: Vec<Vec<Bytes>> = (0..3).map(|p| drain(&mut rib, p, usize::MAX)).collect();
    for (held, parts) in held.iter_mut().zip(&parts) {
        apply(held, parts);
    }
    // One buffer under all three: p0 and p1 get slices of p2's.
    let base = parts[2][0].as_ptr() as usize;
    let end = base + parts[2][0].len();
    for own in &parts[..2] {
        assert!(own
            .iter()
            .all(|s| (base..end).contains(&(s.as_ptr() as usize))));
    }
    let set = |v: &[String]| -> Vec<IpNet> { v.iter().map(|p| p.parse().unwrap()).collect() };
    assert_eq!(held[0].keys().copied().collect::<Vec<_>>(), set(&b));
    assert_eq!(held[1].keys().copied().collect::<Vec<_>>(), set(&a));
    assert_eq!(held[2].len(), 20);
    // The best path moves from p0 to p1 for one prefix: p1 must withdraw it.
    rib.update(1, &announce(Some(0), &refs(&a[..1])));
    rib.flush();
    for (p, held) in held.iter_mut().enumerate() {
        let parts = drain(&mut rib, p, usize::MAX);
        apply(held, &parts);
    }
    let moved: IpNet = a[0].parse().unwrap();
    assert!(held[0].contains_key(&moved), "p0 now gets p1's path");
    assert!(
        !held[1].contains_key(&moved),
        "p1 never holds its own route"
    );
    assert_eq!(rib.counts(1).advertised, 9);
    assert_eq!(held[2].get(&moved), Some(&Some(1)), "MED 0 + link cost 1");
}

#[test]
fn a_slow_member_leaves_the_stream_without_holding_back_the_others_and_catches_up() {
    let mut rib = reflector(4);
    let ps = prefixes(0, 400);
    let ps = refs(&ps);
    let mut held: Vec<BTreeMap<IpNet, Option<u32>>> = vec![BTreeMap::new(); 4];
    // p3 pulls nothing while p1 and p2 pull small chunks after every round.
    for round in 0..40u32 {
        if round % 3 == 2 {
            rib.update(0, &withdraw(&ps[(round as usize * 7) % 300..][..50]));
        } else {
            rib.update(0, &announce(Some(round), &ps));
        }
        rib.flush();
        for (p, held) in held.iter_mut().enumerate().take(3).skip(1) {
            let parts = drain(&mut rib, p, 600);
            apply(held, &parts);
        }
        let (g, _) = rib.update_group(1).unwrap();
        assert!(
            rib.groups[g].stream.len() <= super::MAX_BEHIND,
            "round {round}: the stream is bounded"
        );
    }
    assert_eq!(
        rib.update_group(3).map(|(_, f)| f),
        Some(false),
        "p3 left the stream"
    );
    assert_eq!(rib.update_group(1).map(|(_, f)| f), Some(true));
    let parts = drain(&mut rib, 3, 600);
    apply(&mut held[3], &parts);
    assert_eq!(
        held[3], held[1],
        "the slow member ends with the same routes"
    );
    assert_eq!(held[2], held[1]);
    assert_eq!(rib.counts(3).advertised, held[1].len());
    assert_eq!(
        rib.update_group(3).map(|(_, f)| f),
        Some(true),
        "and follows again"
    );
    // From now on it shares the others' bytes again.
    rib.update(0, &withdraw(&ps));
    rib.flush();
    let p1 = drain(&mut rib, 1, usize::MAX);
    let p3 = drain(&mut rib, 3, usize::MAX);
    assert_eq!(p1[0].as_ptr(), p3[0].as_ptr());
    apply(&mut held[1], &p1);
    apply(&mut held[3], &p3);
    assert!(
        held[1].is_empty() && held[3].is_empty(),
        "withdrawals through the stream"
    );
    assert_eq!(rib.counts(3).advertised, 0);
}

#[test]
fn sessions_with_other_encodings_or_next_hops_are_other_groups() {
    let mut rib = reflector(2);
    let no_v6 = Negotiated {
        ipv6_unicast: false,
        ..neg()
    };
    let two_octet = Negotiated {
        four_octet_as: false,
        ..neg()
    };
    for (i, ctx) in [
        shared_ctx(no_v6),
        shared_ctx(two_octet),
        ExportContext::new(neg(), Some("[fe80::1:9%3]:1790".parse().unwrap())),
        shared_ctx(neg()),
    ]
    .into_iter()
    .enumerate()
    {
        let id = rib.add_peer(peer_cfg(10 + i as u16, Some(1)));
        rib.peer_up(id, ctx, Ipv4Addr::new(10, 0, 2, i as u8 + 1));
    }
    let g: Vec<usize> = (0..6).map(|p| rib.update_group(p).unwrap().0).collect();
    assert_eq!(g[0], g[1]);
    assert_eq!(g[5], g[0], "same options and next hop: same group");
    for p in 2..5 {
        assert!(
            g.iter().filter(|&&x| x == g[p]).count() == 1,
            "p{p} alone: {g:?}"
        );
    }
    // A member going down leaves its group; the group goes with its last member.
    rib.peer_down(4);
    assert_eq!(rib.update_group(4), None);
    assert!(rib.groups[g[4]].members.is_empty());
}

/// A reload moving a prefix into `[overlay]`: the group's link sessions,
/// which never carry the overlay, still get the withdrawal of what they hold.
#[test]
fn a_prefix_moved_into_the_overlay_is_withdrawn_from_the_group() {
    let mut rib = reflector(3);
    rib.update(0, &announce(Some(5), &["10.255.0.77/32"]));
    rib.flush();
    let mut held = BTreeMap::new();
    apply(&mut held, &drain(&mut rib, 1, usize::MAX));
    assert!(held.contains_key(&"10.255.0.77/32".parse().unwrap()));
    rib.set_overlay(crate::config::Overlay {
        ipv4: vec!["10.255.0.64/26".parse().unwrap()],
        ..Default::default()
    });
    // The link peer sends it again: now an overlay prefix on a link session.
    rib.update(0, &announce(Some(5), &["10.255.0.77/32"]));
    rib.flush();
    for member in [1, 2] {
        let mut held = BTreeMap::new();
        held.insert("10.255.0.77/32".parse().unwrap(), None);
        apply(&mut held, &drain(&mut rib, member, usize::MAX));
        assert!(held.is_empty(), "member {member} still holds {held:?}");
    }
}

/// A reflector of the scaling phase: multihop client sessions from our
/// loopback carry the overlay in one group (one encoding for every client),
/// apart from the link sessions' group, and never a loopback.
#[test]
fn multihop_clients_share_one_group_that_carries_only_the_overlay() {
    let mut rib = Rib::new(RibConfig {
        router_id: ME,
        cluster_id: None,
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    rib.set_overlay(crate::config::Overlay {
        ipv4: vec!["10.100.0.0/16".parse().unwrap()],
        ..Default::default()
    });
    let link = rib.add_peer(peer_cfg(1, Some(1)));
    rib.peer_up(link, shared_ctx(neg()), Ipv4Addr::new(10, 0, 1, 1));
    let clients: Vec<PeerId> = (0..4u16)
        .map(|i| {
            let id = rib.add_peer(super::super::PeerConfig {
                address: format!("10.255.1.{}", i + 1).parse().unwrap(),
                interface: None,
                multihop: true,
                ..peer_cfg(10 + i, None)
            });
            let local = Some("[fd00:255::1]:1790".parse().unwrap());
            rib.peer_up(
                id,
                ExportContext::new(neg(), local),
                Ipv4Addr::new(10, 0, 2, i as u8 + 1),
            );
            id
        })
        .collect();
    rib.flush();
    for p in 0..5 {
        drain(&mut rib, p, usize::MAX);
    }
    let g: Vec<usize> = clients
        .iter()
        .map(|&p| rib.update_group(p).unwrap().0)
        .collect();
    assert!(g.iter().all(|&x| x == g[0]), "{g:?}");
    assert_ne!(
        rib.update_group(link).unwrap().0,
        g[0],
        "links: a group of their own"
    );
    // The link brings a loopback; client 0 announces overlay prefixes with
    // that loopback as next hop (resolved over the link).
    rib.update(link, &announce(Some(3), &["10.255.0.9/32"]));
    rib.flush();
    let overlay: Vec<std::net::Ipv4Addr> = (0..20).map(|i| Ipv4Addr::new(10, 100, 0, i)).collect();
    let update = crate::wire::Update::announce_v4(
        super::super::tests::attrs(Some(7)),
        "10.255.0.9".parse().unwrap(),
        overlay.iter().map(|a| ipnet::Ipv4Net::new(*a, 32).unwrap()),
    );
    rib.update(clients[0], &update);
    rib.flush();
    let parts: Vec<Vec<Bytes>> = clients
        .iter()
        .map(|&p| drain(&mut rib, p, usize::MAX))
        .collect();
    for c in 1..4 {
        assert_eq!(parts[c].len(), 1, "client {c}: {:?}", parts[c]);
        assert_eq!(
            parts[c][0].as_ptr(),
            parts[1][0].as_ptr(),
            "client {c} shares the bytes"
        );
        let mut held = BTreeMap::new();
        apply(&mut held, &parts[c]);
        assert_eq!(held.len(), 20, "client {c}: the overlay only: {held:?}");
        assert!(held.keys().all(|p| p.to_string().starts_with("10.100.")));
    }
    assert!(
        parts[0].is_empty(),
        "the sender gets none of its own: {:?}",
        parts[0]
    );
    let mut held = BTreeMap::new();
    apply(&mut held, &drain(&mut rib, link, usize::MAX));
    assert!(
        held.keys().all(|p| !p.to_string().starts_with("10.100.")),
        "{held:?}"
    );
}

#[test]
fn a_group_announces_a_changed_route_once_the_kernel_holds_it() {
    let mut rib = reflector(3);
    rib.set_export_after_kernel(true);
    let ps = prefixes(0, 10);
    rib.update(0, &announce(Some(5), &refs(&ps)));
    rib.flush();
    // A first route: at once (nothing in our kernel to loop through).
    let mut held2 = BTreeMap::new();
    apply(&mut held2, &drain(&mut rib, 2, usize::MAX));
    assert_eq!(held2.len(), 10, "a first route waits for nothing");
    drain(&mut rib, 1, usize::MAX);
    let mut routes = Vec::new();
    rib.poll_fib(usize::MAX, &mut routes);
    rib.fib_applied();
    // Peer 1's better path replaces peer 0's: not before the kernel follows.
    rib.update(1, &announce(Some(1), &refs(&ps)));
    rib.flush();
    assert!(
        drain(&mut rib, 0, usize::MAX).is_empty(),
        "not before the kernel"
    );
    routes.clear();
    rib.poll_fib(usize::MAX, &mut routes);
    assert_eq!(routes.len(), 10);
    assert!(
        drain(&mut rib, 2, usize::MAX).is_empty(),
        "pulled is not applied"
    );
    rib.fib_applied();
    apply(&mut held2, &drain(&mut rib, 2, usize::MAX));
    // MED 1 + the link cost 1.
    assert!(held2.values().all(|m| *m == Some(2)), "{held2:?}");
    let mut held0 = BTreeMap::new();
    apply(&mut held0, &drain(&mut rib, 0, usize::MAX));
    assert_eq!(held0.len(), 10);
    // Withdrawn: at once, the kernel not asked.
    rib.update(1, &withdraw(&refs(&ps[..4])));
    rib.update(0, &withdraw(&refs(&ps[..4])));
    rib.flush();
    apply(&mut held2, &drain(&mut rib, 2, usize::MAX));
    assert_eq!(held2.len(), 6);
}
