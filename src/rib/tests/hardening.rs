//! Hardening of [`Rib`] against peer input: resource limits, counters,
//! MED arithmetic in mixed fabrics.

use super::*;

#[test]
fn full_route_table_drops_new_prefixes_without_panicking() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.loc.max_dests = Some(2);
    let l = rib.update(
        0,
        &announce(Some(1), &["10.255.0.7/32", "10.255.0.8/32", "10.255.0.9/32"]),
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
