//! Resource limits of [`Rib`] against peer input: a full route table, the
//! cap on routes kept as filtered.

use super::*;

#[test]
fn full_route_table_drops_new_prefixes_without_panicking() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.loc.max_dests = Some(2);
    let l = rib.update(
        0,
        &announce(
            Some(1),
            &["10.255.0.7/32", "10.255.0.8/32", "10.255.0.9/32"],
        ),
    );
    assert_eq!((l.accepted, l.filtered), (2, 1), "third prefix has no room");
    let c = rib.counts(0);
    assert_eq!((c.received, c.accepted), (2, 2));
    assert_eq!(rib.adj_rib_in(0).len(), 2);
    // Known prefixes still update, and withdrawals make room again.
    rib.update(0, &withdraw(&["10.255.0.7/32"]));
    rib.flush();
    let l = rib.update(0, &announce(Some(1), &["10.255.0.9/32"]));
    assert_eq!(l.accepted, 1);
    rib.set_originated([net("10.255.0.1/32")].into());
    rib.flush();
    assert_eq!(rib.len(), 2, "own loopback did not fit either, no panic");
}

#[test]
fn filtered_routes_are_capped_and_drops_counted() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let a = rib.add_peer(PeerConfig {
        filtered_limit: 2,
        multihop: false,
        ..peer_cfg(4, Some(1))
    });
    up(&mut rib, a);
    // Outside the loopback ranges: filtered. Two kept, two dropped.
    let l = rib.update(
        a,
        &announce(
            None,
            &[
                "192.0.2.1/32",
                "192.0.2.2/32",
                "192.0.2.3/32",
                "192.0.2.4/32",
            ],
        ),
    );
    assert_eq!(l.filtered, 4, "all four were filtered");
    let c = rib.counts(a);
    assert_eq!(
        (c.filtered, c.filtered_dropped, c.filtered_limit),
        (2, 2, 2)
    );
    assert_eq!(rib.adj_rib_in(a).len(), 2);
    // The same filtered routes again replace what is kept: no new drop.
    rib.update(a, &announce(Some(3), &["192.0.2.1/32"]));
    assert_eq!(rib.counts(a).filtered_dropped, 2);
    // An accepted route replaced by one that cannot be kept is withdrawn.
    rib.update(a, &announce(None, &["10.255.0.5/32"]));
    rib.flush();
    assert_eq!(rib.len(), 1);
    let mut looped = attrs(None);
    looped.originator_id = Some(ME);
    rib.update(a, &announce_with(looped, &["10.255.0.5/32"], 77));
    rib.flush();
    let c = rib.counts(a);
    assert_eq!((c.accepted, c.filtered, c.filtered_dropped), (0, 2, 3));
    assert_eq!(rib.len(), 0, "the replaced route is gone");
    // Accepted routes are not limited by it; a withdrawal makes room.
    let l = rib.update(
        a,
        &announce(None, &["10.255.0.6/32", "10.255.0.7/32", "10.255.0.8/32"]),
    );
    assert_eq!(l.accepted, 3);
    rib.update(a, &withdraw(&["192.0.2.1/32"]));
    rib.update(a, &announce(None, &["192.0.2.9/32"]));
    let c = rib.counts(a);
    assert_eq!((c.accepted, c.filtered, c.filtered_dropped), (3, 2, 3));
    // The count survives the session (it is a since-start counter).
    rib.peer_down(a);
    assert_eq!(rib.counts(a).filtered_dropped, 3);
}
