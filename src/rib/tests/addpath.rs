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

fn pack<P: Pfx>(ps: &[P]) -> bytes::Bytes {
    let mut b = BytesMut::new();
    ps.iter().for_each(|p| p.put(&mut b));
    b.freeze()
}

/// IPv6 paths (path id, prefix) announced with next hop fe80::1:`nh` and MED `med`.
pub(super) fn announce_paths(med: u32, paths: &[(u32, &str)], nh: u16) -> Update {
    let ps: Vec<(u32, ipnet::Ipv6Net)> = paths
        .iter()
        .map(|(i, p)| (*i, p.parse().unwrap()))
        .collect();
    Update {
        attrs: PathAttributes {
            mp_reach: Some(MpReach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                next_hop: MpNextHop::V6 {
                    global: Ipv6Addr::UNSPECIFIED,
                    link_local: Some(ll(nh)),
                },
                nlri: pack(&ps),
                add_path: true,
            }),
            ..attrs(Some(med))
        },
        ..Default::default()
    }
}

pub(super) fn withdraw_paths(paths: &[(u32, &str)]) -> Update {
    let ps: Vec<(u32, ipnet::Ipv6Net)> = paths
        .iter()
        .map(|(i, p)| (*i, p.parse().unwrap()))
        .collect();
    Update {
        attrs: PathAttributes {
            mp_unreach: Some(MpUnreach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                withdrawn: pack(&ps),
                add_path: true,
            }),
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
