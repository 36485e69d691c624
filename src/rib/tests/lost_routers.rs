//! Paths through a router whose session just went down ([`super::super::lost_routers`]).
//! The RIB of n3 in interop/test_fabric5.sh's ring-and-chord, for n5's
//! loopback: via n1 (15 + 10 = 25, CLUSTER_LIST [n1]), via n2 (12 + 20 = 32,
//! n2's best goes through n1: CLUSTER_LIST [n2, n1]), via n4 (30 + 10 = 40).

use super::*;
use crate::rib::LOST_ROUTER_WINDOW;
use std::time::{Duration, Instant};

const N5: &str = "10.255.0.5/32";
const N5_V6: &str = "fd00:255::5/128";
const N5_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const BOTH: [AfiSafi; 2] = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST];

fn id(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// Node `n`'s peer id at n3.
fn peer(n: u8) -> PeerId {
    match n {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => unreachable!(),
    }
}

/// n5's loopbacks as n3 hears them from `n` with `med` and `clusters`.
fn from(rib: &mut Rib, n: u8, med: u32, clusters: &[u8]) {
    let a = PathAttributes {
        originator_id: Some(N5_ID),
        cluster_list: clusters.iter().map(|&c| id(c)).collect(),
        ..attrs(Some(med))
    };
    rib.update(peer(n), &announce_with(a.clone(), &[N5], u16::from(n)));
    rib.update(peer(n), &announce_with(a, &[N5_V6], u16::from(n)));
}

/// n3 (router id 10.0.0.3) with its three neighbors, n5's loopbacks learned.
fn node3() -> Rib {
    let mut rib = Rib::new(RibConfig {
        router_id: id(3),
        cluster_id: None,
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    for (n, cost) in [(1, 15), (2, 12), (4, 30)] {
        let p = rib.add_peer(peer_cfg(u16::from(n), Some(cost)));
        let local = format!("[fe80::3:{n}%3]:1790").parse().unwrap();
        rib.peer_up(p, ExportContext::new(neg(), Some(local)), id(n));
    }
    from(&mut rib, 1, 10, &[1]);
    from(&mut rib, 2, 20, &[2, 1]);
    from(&mut rib, 4, 10, &[4]);
    flush(&mut rib);
    rib
}

fn best(rib: &Rib, prefix: &str) -> Option<String> {
    rib.explain(net(prefix)).best
}

/// The step the candidate from `peer_name` lost at.
fn lost_at(rib: &Rib, prefix: &str, peer_name: &str) -> Option<Step> {
    let e = rib.explain(net(prefix));
    let c = e.candidates.iter().find(|c| c.peer == peer_name)?;
    c.lost.as_ref().map(|l| l.step)
}

/// The kernel route changes of a flush: prefix -> peer of the new route.
fn kernel(out: &[RibOutput]) -> Vec<(IpNet, Option<PeerId>)> {
    out.iter()
        .filter_map(|o| match o {
            RibOutput::BestChanged { prefix, best } => Some((*prefix, best.map(|(_, p)| p))),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lost_session_avoids_paths_through_its_router_until_the_window_ends() {
    let now = Instant::now();
    let mut rib = node3();
    assert_eq!(best(&rib, N5).as_deref(), Some("p1"));
    assert_eq!(lost_at(&rib, N5, "p2"), Some(Step::Med));
    rib.peer_down_at(peer(1), now);
    assert_eq!(rib.lost_routers(), vec![id(1)]);
    assert_eq!(rib.lost_router_timeout(), Some(now + LOST_ROUTER_WINDOW));
    let out = flush(&mut rib);
    // Via n4, not back towards n2 (whose path still runs through n1).
    for p in [N5, N5_V6] {
        assert_eq!(best(&rib, p).as_deref(), Some("p4"));
        assert_eq!(lost_at(&rib, p, "p2"), Some(Step::LostRouter));
        assert!(kernel(&out).contains(&(net(p), Some(peer(4)))), "{out:?}");
    }
    // The explanation names the step.
    let e = rib.explain(net(N5));
    let loss = e.candidates.iter().find(|c| c.peer == "p2").unwrap();
    let reason = &loss.lost.as_ref().unwrap().reason;
    assert!(reason.contains("session just went down"), "{reason}");
    // Not yet over.
    let early = now + LOST_ROUTER_WINDOW - Duration::from_millis(1);
    assert_eq!(rib.expire_lost_routers(early), 0);
    assert!(!rib.has_work());
    assert_eq!(best(&rib, N5).as_deref(), Some("p4"));
    // Over: decided again, the usual decision (MED) is back.
    assert_eq!(rib.expire_lost_routers(now + LOST_ROUTER_WINDOW), 2);
    assert!(rib.lost_routers().is_empty() && rib.lost_router_timeout().is_none());
    let out = flush(&mut rib);
    for p in [N5, N5_V6] {
        assert_eq!(best(&rib, p).as_deref(), Some("p2"));
        assert_eq!(lost_at(&rib, p, "p4"), Some(Step::Med));
        assert!(kernel(&out).contains(&(net(p), Some(peer(2)))), "{out:?}");
    }
}

#[test]
fn a_prefix_first_decided_in_the_window_is_decided_again_at_its_end() {
    let now = Instant::now();
    let mut rib = node3();
    rib.peer_down_at(peer(1), now);
    flush(&mut rib);
    // n6's loopback arrives meanwhile: the cheaper path runs through n1.
    let via = |clusters: &[u8], med| PathAttributes {
        originator_id: Some(id(6)),
        cluster_list: clusters.iter().map(|&c| id(c)).collect(),
        ..attrs(Some(med))
    };
    rib.update(
        peer(2),
        &announce_with(via(&[2, 1], 5), &["10.255.0.6/32"], 2),
    );
    rib.update(
        peer(4),
        &announce_with(via(&[4], 50), &["10.255.0.6/32"], 4),
    );
    flush(&mut rib);
    assert_eq!(best(&rib, "10.255.0.6/32").as_deref(), Some("p4"));
    assert_eq!(rib.expire_lost_routers(now + LOST_ROUTER_WINDOW), 3);
    flush(&mut rib);
    assert_eq!(best(&rib, "10.255.0.6/32").as_deref(), Some("p2"));
}

#[test]
fn the_originator_counts_and_local_pref_still_wins() {
    let now = Instant::now();
    let mut rib = node3();
    // n1's own loopback: every path names n1 (originator): they tie there.
    let own = |clusters: &[u8], med| PathAttributes {
        originator_id: Some(id(1)),
        cluster_list: clusters.iter().map(|&c| id(c)).collect(),
        ..attrs(Some(med))
    };
    rib.update(
        peer(2),
        &announce_with(own(&[2], 10), &["10.255.0.1/32"], 2),
    );
    rib.update(
        peer(4),
        &announce_with(own(&[4, 5], 20), &["10.255.0.1/32"], 4),
    );
    // A higher LOCAL_PREF through n1 beats the others.
    let preferred = PathAttributes {
        local_pref: Some(200),
        ..own(&[2, 1], 90)
    };
    rib.update(peer(2), &announce_with(preferred, &["10.255.0.7/32"], 2));
    rib.update(
        peer(4),
        &announce_with(own(&[4], 10), &["10.255.0.7/32"], 4),
    );
    flush(&mut rib);
    rib.peer_down_at(peer(1), now);
    flush(&mut rib);
    assert_eq!(best(&rib, "10.255.0.1/32").as_deref(), Some("p2"));
    assert_eq!(lost_at(&rib, "10.255.0.1/32", "p4"), Some(Step::Med));
    assert_eq!(best(&rib, "10.255.0.7/32").as_deref(), Some("p2"));
    assert_eq!(lost_at(&rib, "10.255.0.7/32", "p4"), Some(Step::LocalPref));
}

#[test]
fn a_graceful_restart_or_a_multihop_session_is_no_loss() {
    let now = Instant::now();
    let mut rib = node3();
    // Kept stale (RFC 4724 §4.2): n1 still forwards, nothing is avoided.
    rib.peer_down_graceful(peer(1), &BOTH, now + Duration::from_secs(120));
    assert!(rib.lost_routers().is_empty());
    assert_eq!(rib.lost_router_timeout(), None);
    flush(&mut rib);
    assert_eq!(best(&rib, N5).as_deref(), Some("p1"));
    // Its stale routes purged at the deadline: no window either.
    rib.expire_stale(now + Duration::from_secs(120));
    flush(&mut rib);
    assert!(rib.lost_routers().is_empty());
    assert_eq!(best(&rib, N5).as_deref(), Some("p2"));
    // A multihop session down does not mean the router is gone.
    let mh = rib.add_peer(PeerConfig {
        multihop: true,
        interface: None,
        ..peer_cfg(9, None)
    });
    rib.peer_up(mh, ExportContext::new(neg(), None), id(2));
    rib.peer_down_at(mh, now);
    assert!(rib.lost_routers().is_empty());
}

#[test]
fn the_lost_router_back_with_a_new_session_is_used_at_once() {
    let now = Instant::now();
    let mut rib = node3();
    rib.peer_down_at(peer(1), now);
    flush(&mut rib);
    assert_eq!(best(&rib, N5).as_deref(), Some("p4"));
    // n1 restarts within the window: its fresh paths win on MED at once,
    // while n2's (through the old n1) are still avoided.
    let local = "[fe80::3:1%3]:1790".parse().unwrap();
    rib.peer_up(peer(1), ExportContext::new(neg(), Some(local)), id(1));
    from(&mut rib, 1, 10, &[1]);
    let out = flush(&mut rib);
    for p in [N5, N5_V6] {
        assert_eq!(best(&rib, p).as_deref(), Some("p1"));
        assert_eq!(lost_at(&rib, p, "p4"), Some(Step::Med));
        assert_eq!(lost_at(&rib, p, "p2"), Some(Step::LostRouter));
        assert!(kernel(&out).contains(&(net(p), Some(peer(1)))), "{out:?}");
    }
    assert_eq!(rib.lost_routers(), vec![id(1)]);
}
