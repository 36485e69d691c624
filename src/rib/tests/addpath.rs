//! ADD-PATH (RFC 7911) in the RIB: several paths per peer and prefix on the
//! receive side; every usable path, each with its own stable path id, on the
//! send side; peers without ADD-PATH still get the best path only.

use super::*;
use crate::wire::{Families, Pfx};
use bytes::BytesMut;

pub(super) const ALL: Families = Families {
    ipv4_unicast: true,
    ipv6_unicast: true,
};

/// The session of an ADD-PATH peer: `rx` paths received, `tx` sent.
pub(super) fn ap_neg(rx: bool, tx: bool) -> Negotiated {
    Negotiated {
        add_path_receive: if rx { ALL } else { Families::NONE },
        add_path_send: if tx { ALL } else { Families::NONE },
        ..neg()
    }
}

pub(super) fn up_with(rib: &mut Rib, id: PeerId, n: Negotiated) {
    rib.peer_down(id);
    let local = format!("[fe80::9:{}%3]:1790", id + 1).parse().unwrap();
    let remote_id = Ipv4Addr::new(10, 0, 0, 11 + id as u8);
    rib.peer_up(id, ExportContext::new(n, Some(local)), remote_id);
}

/// IPv6 (path id, prefix) pairs packed as an ADD-PATH prefix list.
fn v6_paths(paths: &[(u32, &str)]) -> bytes::Bytes {
    let mut b = BytesMut::new();
    for (i, p) in paths {
        (*i, p.parse::<ipnet::Ipv6Net>().unwrap()).put(&mut b);
    }
    b.freeze()
}

/// IPv6 paths (path id, prefix) announced with next hop fe80::1:`nh` and MED `med`.
pub(super) fn announce_paths(med: u32, paths: &[(u32, &str)], nh: u16) -> Update {
    Update {
        attrs: PathAttributes {
            mp_reach: Some(Box::new(MpReach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                next_hop: MpNextHop::V6 {
                    global: Ipv6Addr::UNSPECIFIED,
                    link_local: Some(ll(nh)),
                },
                nlri: v6_paths(paths),
                add_path: true,
            })),
            ..attrs(Some(med))
        },
        ..Default::default()
    }
}

pub(super) fn withdraw_paths(paths: &[(u32, &str)]) -> Update {
    Update {
        attrs: PathAttributes {
            mp_unreach: Some(Box::new(MpUnreach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                withdrawn: v6_paths(paths),
                add_path: true,
            })),
            ..Default::default()
        },
        ..Default::default()
    }
}

const P: &str = "fd00:255::7/128";

#[test]
fn two_paths_from_one_peer_are_both_candidates() {
    let mut rib = rib_with([Some(10), Some(1), Some(1)]);
    up_with(&mut rib, 0, ap_neg(true, false));
    rib.update(0, &announce_paths(50, &[(1, P)], 5));
    let l = rib.update(0, &announce_paths(20, &[(2, P)], 6));
    assert_eq!(l.accepted, 1);
    flush(&mut rib);
    let e = rib.explain(net(P));
    assert_eq!(e.candidates.len(), 2, "{e:?}");
    let best: Vec<_> = e.candidates.iter().filter(|c| c.best).collect();
    assert_eq!(best.len(), 1);
    assert_eq!(
        (best[0].path_id, best[0].med),
        (Some(2), 30),
        "lower MED path wins"
    );
    let loser = e.candidates.iter().find(|c| !c.best).unwrap();
    assert_eq!(loser.path_id, Some(1));
    assert_eq!(loser.lost.as_ref().unwrap().against, "p1 path 2");
    // Import counts paths; the route views show both with their ids.
    assert_eq!(rib.counts(0).accepted, 2);
    let ids: Vec<_> = rib.adj_rib_in(0).iter().map(|(_, r)| r.path_id).collect();
    assert_eq!(ids, [1, 2]);
    let all = rib.routes(true, false);
    assert_eq!(all.iter().filter(|r| r.path_id.is_some()).count(), 2);
    assert_eq!(rib.routes(false, false)[0].path_id, Some(2));
    // The same path announced again replaces only itself.
    rib.update(0, &announce_paths(5, &[(1, P)], 5));
    flush(&mut rib);
    let e = rib.explain(net(P));
    assert_eq!(e.candidates.len(), 2);
    assert_eq!(
        e.candidates.iter().find(|c| c.best).unwrap().path_id,
        Some(1)
    );
}

#[test]
fn withdraw_by_path_id_leaves_the_other_path() {
    let mut rib = rib_with([Some(10), Some(1), Some(1)]);
    up_with(&mut rib, 0, ap_neg(true, false));
    rib.update(0, &announce_paths(50, &[(1, P), (2, P)], 5));
    flush(&mut rib);
    // Withdrawing an unknown path id changes nothing.
    assert_eq!(rib.update(0, &withdraw_paths(&[(3, P)])).withdrawn, 0);
    assert_eq!(rib.update(0, &withdraw_paths(&[(1, P)])).withdrawn, 1);
    let out = flush(&mut rib);
    let e = rib.explain(net(P));
    assert_eq!(e.candidates.len(), 1);
    assert_eq!(e.candidates[0].path_id, Some(2));
    // The prefix stays announced to the other peers (no withdrawal).
    assert!(got(&out, 1).withdrawn.is_empty());
    assert_eq!(rib.counts(0).accepted, 1);
    rib.update(0, &withdraw_paths(&[(2, P)]));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, [net(P)]);
    assert!(rib.explain(net(P)).candidates.is_empty());
}

#[test]
fn equal_paths_tie_break_on_path_id_and_peer_down_removes_all() {
    let mut rib = rib_with([Some(10), Some(1), Some(1)]);
    up_with(&mut rib, 0, ap_neg(true, false));
    // Same attributes and next hop: only the path id tells them apart.
    rib.update(0, &announce_paths(50, &[(9, P), (4, P), (7, P)], 5));
    flush(&mut rib);
    let e = rib.explain(net(P));
    assert_eq!(e.candidates.len(), 3);
    let best = e.candidates.iter().find(|c| c.best).unwrap();
    assert_eq!(best.path_id, Some(4));
    assert!(e
        .candidates
        .iter()
        .filter(|c| !c.best)
        .all(|c| c.lost.as_ref().unwrap().step == Step::PathId));
    rib.peer_down(0);
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, [net(P)]);
    assert_eq!(rib.counts(0).received, 0);
    assert!(rib.explain(net(P)).candidates.is_empty());
}

#[test]
fn import_limit_counts_paths() {
    let mut rib = rib_with([Some(10), Some(1), Some(1)]);
    rib.set_import_limit(0, 2, ImportLimitAction::Block);
    up_with(&mut rib, 0, ap_neg(true, false));
    let l = rib.update(0, &announce_paths(50, &[(1, P), (2, P), (3, P)], 5));
    assert_eq!((l.accepted, l.filtered), (2, 1));
    assert_eq!(rib.counts(0).filtered, 1);
    // A withdrawn path makes room: the held one is taken in.
    rib.update(0, &withdraw_paths(&[(1, P)]));
    flush(&mut rib);
    let ids: Vec<_> = rib
        .explain(net(P))
        .candidates
        .iter()
        .filter_map(|c| c.path_id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&3) && ids.contains(&2), "{ids:?}");
}

/// What an ADD-PATH receiver got: announced (path id, prefix, attrs), withdrawn (path id, prefix), End-of-RIBs.
#[derive(Debug, Default)]
pub(super) struct GotPaths {
    pub announced: Vec<(u32, IpNet, PathAttributes)>,
    pub withdrawn: Vec<(u32, IpNet)>,
    pub eor: usize,
}

pub(super) fn got_paths(outputs: &[RibOutput], peer: PeerId) -> GotPaths {
    let mut g = GotPaths::default();
    for m in sent_to(outputs, peer, ap_neg(true, false)) {
        let Message::Update(u) = m else {
            continue;
        };
        if u.is_end_of_rib().is_some() {
            g.eor += 1;
            continue;
        }
        let mut w = u.withdrawn_v4();
        while let Some((i, n)) = w.next_path() {
            g.withdrawn.push((i, IpNet::V4(n)));
        }
        if let Some(r) = &u.attrs.mp_unreach {
            g.withdrawn.extend(r.prefixes().with_path_ids());
        }
        let mut n = u.nlri_v4();
        while let Some((i, p)) = n.next_path() {
            g.announced.push((i, IpNet::V4(p), u.attrs.without_reach()));
        }
        if let Some(r) = &u.attrs.mp_reach {
            for (i, p) in r.prefixes().with_path_ids() {
                g.announced.push((i, p, u.attrs.without_reach()));
            }
        }
    }
    g
}

/// p1..p3 plain clients, p4 (id 3) an ADD-PATH client we send every path to.
fn reflector() -> Rib {
    let mut rib = rib_with([Some(10), Some(20), Some(1)]);
    let id = rib.add_peer(peer_cfg(4, Some(1)));
    up_with(&mut rib, id, ap_neg(false, true));
    flush(&mut rib);
    rib
}

/// A reflector's path ids are one table for all its ADD-PATH sessions: one
/// entry per (source, received path id), not one per client and path (a
/// reflector of 1000 clients originating a path each held a million).
#[test]
fn path_ids_are_shared_by_every_add_path_session() {
    let mut rib = reflector();
    for i in 5..8 {
        let id = rib.add_peer(peer_cfg(i, Some(1)));
        up_with(&mut rib, id, ap_neg(false, true));
    }
    flush(&mut rib);
    rib.update(0, &announce(Some(5), &[P]));
    rib.update(1, &announce(Some(1), &[P]));
    let out = flush(&mut rib);
    let ids = |peer| {
        let mut v: Vec<(u32, Option<u32>)> = got_paths(&out, peer)
            .announced
            .iter()
            .map(|(i, _, a)| (*i, a.med))
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(3).len(), 2);
    for peer in 4..7 {
        assert_eq!(ids(peer), ids(3), "the same path, the same id");
    }
    assert_eq!(rib.path_ids(), 2, "one per path, whatever the sessions");
}

#[test]
fn every_path_goes_to_an_add_path_peer_the_best_to_others() {
    let mut rib = reflector();
    rib.update(0, &announce(Some(5), &[P]));
    rib.update(1, &announce(Some(1), &[P]));
    let out = flush(&mut rib);
    let g = got_paths(&out, 3);
    assert_eq!(g.announced.len(), 2, "{g:?}");
    let (a, b) = (&g.announced[0], &g.announced[1]);
    assert_ne!(a.0, b.0, "distinct path ids");
    assert!(a.1 == net(P) && b.1 == net(P));
    // Reflected attributes per path (RFC 4456 §8): originator, cluster list, MED + link cost.
    let mut per_origin: Vec<_> = g
        .announced
        .iter()
        .map(|(_, _, a)| (a.originator_id, a.med, a.cluster_list.to_vec()))
        .collect();
    per_origin.sort();
    assert_eq!(
        per_origin,
        [
            (Some(Ipv4Addr::new(10, 0, 0, 11)), Some(15), vec![ME]),
            (Some(Ipv4Addr::new(10, 0, 0, 12)), Some(21), vec![ME])
        ]
    );
    // A plain peer gets the best path only (p1: 5 + 10 < 1 + 20).
    let plain = got(&out, 2);
    assert_eq!(plain.announced.len(), 1);
    assert_eq!(plain.announced[0].1.med, Some(15));
    // Withdrawing one source withdraws its path id only, best or not.
    let p1_id = g.announced.iter().find(|x| x.2.med == Some(15)).unwrap().0;
    let p2_id = g.announced.iter().find(|x| x.2.med == Some(21)).unwrap().0;
    rib.update(0, &withdraw(&[P]));
    let out = flush(&mut rib);
    let g = got_paths(&out, 3);
    assert_eq!(g.withdrawn, [(p1_id, net(P))]);
    assert!(g.announced.is_empty(), "p2's path is unchanged: {g:?}");
    // A changed path keeps its id (implicit replacement, RFC 7911 §3).
    rib.update(1, &announce(Some(7), &[P]));
    let out = flush(&mut rib);
    let g = got_paths(&out, 3);
    assert_eq!(g.announced.len(), 1);
    assert_eq!((g.announced[0].0, g.announced[0].2.med), (p2_id, Some(27)));
    assert!(g.withdrawn.is_empty());
    // The last path gone: withdrawn by its id.
    rib.update(1, &withdraw(&[P]));
    let g = got_paths(&flush(&mut rib), 3);
    assert_eq!(g.withdrawn, [(p2_id, net(P))]);
}

#[test]
fn add_path_peer_gets_no_path_back_and_sees_paths_of_an_add_path_source() {
    let mut rib = reflector();
    // p1 sends two paths with ADD-PATH; p4 announces one itself.
    up_with(&mut rib, 0, ap_neg(true, false));
    rib.update(0, &announce_paths(5, &[(1, P), (2, P)], 5));
    rib.update(3, &announce(Some(1), &[P]));
    let out = flush(&mut rib);
    let g = got_paths(&out, 3);
    // p1's two paths, each with its own id; p4's own path not sent back.
    assert_eq!(g.announced.len(), 2, "{g:?}");
    assert_ne!(g.announced[0].0, g.announced[1].0);
    assert!(g
        .announced
        .iter()
        .all(|(_, _, a)| a.originator_id == Some(Ipv4Addr::new(10, 0, 0, 11))));
}

#[test]
fn initial_table_route_refresh_and_end_of_rib_with_add_path() {
    let mut rib = rib_with([Some(10), Some(20), Some(1)]);
    rib.update(0, &announce(Some(5), &[P]));
    rib.update(0, &announce(Some(5), &["10.255.0.7/32"]));
    rib.update(1, &announce(Some(1), &[P]));
    rib.set_originated([net("10.255.0.1/32")].into());
    flush(&mut rib);
    let id = rib.add_peer(peer_cfg(4, Some(1)));
    up_with(&mut rib, id, ap_neg(false, true));
    let g = got_paths(&flush(&mut rib), id);
    let mut got: Vec<(u32, IpNet)> = g.announced.iter().map(|x| (x.0, x.1)).collect();
    got.sort_unstable_by_key(|x| (x.1, x.0));
    assert_eq!(got.len(), 4, "{g:?}");
    assert_eq!(g.eor, 2, "End-of-RIB per family, after the paths");
    // ROUTE-REFRESH for IPv6: both paths of P again, same ids.
    rib.route_refresh(id, crate::wire::AFI_IPV6);
    let g = got_paths(&flush(&mut rib), id);
    let mut again: Vec<(u32, IpNet)> = g.announced.iter().map(|x| (x.0, x.1)).collect();
    again.sort_unstable_by_key(|x| (x.1, x.0));
    let v6: Vec<_> = got.iter().filter(|x| x.1 == net(P)).copied().collect();
    assert_eq!(again, v6);
    // Session down and up: everything again.
    rib.peer_down(id);
    up_with(&mut rib, id, ap_neg(false, true));
    let g = got_paths(&flush(&mut rib), id);
    assert_eq!(g.announced.len(), 4);
}
