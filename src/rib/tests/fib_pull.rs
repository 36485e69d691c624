//! Kernel routes pulled from the RIB ([`super::super::fib_out`]): a bit per
//! changed prefix, the route in force when pulled, at most a batch at a time.

use super::*;
use crate::fib::{Fib, FibOp};
use std::time::{Duration, Instant};

fn prefixes(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.255.{}.{}/32", i / 256, i % 256))
        .collect()
}

fn pull(rib: &mut Rib, max: usize) -> Vec<BestRoute> {
    let mut out = Vec::new();
    rib.poll_fib(max, &mut out);
    out
}

fn via(peer: PeerId) -> Option<(IpAddr, PeerId)> {
    Some((IpAddr::V6(ll(peer as u16 + 1)), peer))
}

/// Peer `peer` announces `prefixes` with itself (`ll(peer + 1)`) as next hop.
fn from(rib: &mut Rib, peer: PeerId, prefixes: &[&str]) {
    rib.update(peer, &announce_with(attrs(None), prefixes, peer as u16 + 1));
}

#[test]
fn a_burst_over_the_table_is_a_bit_per_prefix_and_pulled_a_batch_at_a_time() {
    // 900: under the peers' import limit (1000).
    let mut rib = rib_with([Some(10), Some(20), Some(30)]);
    let all = prefixes(900);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    from(&mut rib, 0, &all);
    // The decision of the whole table outputs nothing per prefix.
    let out = rib.flush();
    assert!(out.is_empty(), "{} outputs", out.len());
    assert_eq!(rib.fib_queued(), 900);
    let first = pull(&mut rib, 256);
    assert_eq!(first.len(), 256, "never more than asked for");
    assert_eq!(rib.fib_queued(), 900 - 256);
    let mut seen: Vec<IpNet> = first.iter().map(|r| r.prefix).collect();
    loop {
        let batch = pull(&mut rib, 256);
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 256);
        assert!(batch.iter().all(|r| r.best == via(0)));
        seen.extend(batch.iter().map(|r| r.prefix));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 900, "each prefix once");
    assert_eq!(rib.fib_queued(), 0);
}

#[test]
fn a_prefix_changed_many_times_is_pulled_once_with_its_route_now() {
    let mut rib = rib_with([Some(10), Some(20), Some(30)]);
    let p = "10.255.0.7/32";
    from(&mut rib, 0, &[p]);
    rib.flush();
    from(&mut rib, 1, &[p]); // loses on cost: no change
    rib.flush();
    rib.update(0, &withdraw(&[p])); // now via p2
    rib.flush();
    from(&mut rib, 2, &[p]); // loses on cost
    rib.flush();
    assert_eq!(
        pull(&mut rib, 1024),
        [BestRoute {
            prefix: net(p),
            best: via(1)
        }],
        "one answer: the route in force, not the history"
    );
    // Back and forth before the next pull: asked again, the same route.
    rib.update(1, &withdraw(&[p]));
    rib.flush();
    from(&mut rib, 1, &[p]);
    rib.flush();
    assert_eq!(pull(&mut rib, 1024).len(), 1);
    assert!(pull(&mut rib, 1024).is_empty());
}

#[test]
fn a_withdrawn_prefix_keeps_its_id_until_the_fib_is_told() {
    let mut rib = rib_with([Some(10), Some(20), Some(30)]);
    let (p, q) = ("10.255.0.7/32", "10.255.0.8/32");
    from(&mut rib, 0, &[p]);
    rib.flush();
    assert_eq!(pull(&mut rib, 1024)[0].best, via(0));
    from(&mut rib, 1, &[p]);
    rib.flush();
    rib.update(0, &withdraw(&[p]));
    rib.update(1, &withdraw(&[p]));
    rib.flush();
    // A new prefix now must not take the id of the one still to be told.
    from(&mut rib, 2, &[q]);
    rib.flush();
    let mut got = pull(&mut rib, 1024);
    got.sort_by_key(|r| r.prefix);
    let want = [
        BestRoute {
            prefix: net(p),
            best: None,
        },
        BestRoute {
            prefix: net(q),
            best: via(2),
        },
    ];
    assert_eq!(got, want);
    // Told: the withdrawn prefix's dest is free now.
    assert_eq!(rib.loc.len(), 1);
}

#[test]
fn without_a_kernel_fib_nothing_is_queued_or_held() {
    let mut rib = rib_with([Some(10), Some(20), Some(30)]);
    rib.set_fib_outputs(false);
    from(&mut rib, 0, &["10.255.0.7/32"]);
    rib.flush();
    rib.update(0, &withdraw(&["10.255.0.7/32"]));
    rib.flush();
    assert_eq!(rib.fib_queued(), 0);
    assert_eq!(rib.loc.len(), 0);
}

#[test]
fn pulled_into_the_fib_core_a_flapping_prefix_is_installed_once_with_its_last_route() {
    let mut rib = rib_with([Some(10), Some(20), Some(30)]);
    let now = Instant::now();
    let mut fib = Fib::new(Vec::new(), now, Duration::ZERO);
    let p = "10.255.0.7/32";
    // Five changes of the best route before the FIB has room.
    for (peer, withdrawn) in [(2, None), (1, None), (0, None), (0, Some(0)), (0, Some(1))] {
        match withdrawn {
            None => from(&mut rib, peer, &[p]),
            Some(w) => {
                rib.update(w, &withdraw(&[p]));
            }
        }
        rib.flush();
    }
    for r in pull(&mut rib, 1024) {
        let gw = r.best.map(|(g, peer)| (g, format!("wg{}", peer + 1)));
        fib.set_via(r.prefix, gw.as_ref().map(|(g, i)| (*g, i.as_str())));
    }
    let ops = fib.poll(now);
    assert_eq!(ops.len(), 1, "{ops:?}");
    let FibOp::Add(r) = &ops[0] else {
        panic!("{ops:?}")
    };
    assert_eq!(
        (r.prefix, r.gateway, r.interface.as_str()),
        (net(p), IpAddr::V6(ll(3)), "wg3")
    );
}

/// The prefixes announced to `peer` in `out`.
fn announced_to(out: &[RibOutput], peer: PeerId) -> Vec<IpNet> {
    got(out, peer)
        .announced
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// A rib whose changed routes wait for the kernel, `10.255.0.7/32` learned
/// from peer 0: a first route, announced to peers 1 and 2 at once, then
/// pulled and applied.
fn kernel_first_rib() -> Rib {
    let mut rib = rib_with([Some(10), Some(20), Some(30)]);
    rib.set_export_after_kernel(true);
    from(&mut rib, 0, &["10.255.0.7/32"]);
    rib.flush();
    let out = rib.transmit_all();
    assert_eq!(announced_to(&out, 1), vec![net("10.255.0.7/32")]);
    assert_eq!(announced_to(&out, 2), vec![net("10.255.0.7/32")]);
    assert_eq!(pull(&mut rib, 16)[0].best, via(0));
    rib.fib_applied();
    assert_eq!(rib.fib_in_flight(), 0);
    rib
}

/// Peer 1's path for `10.255.0.7/32`, better than peer 0's.
fn better_via_1(rib: &mut Rib) {
    rib.update(1, &announce_with(attrs(Some(0)), &["10.255.0.7/32"], 2));
    rib.update(0, &announce_with(attrs(Some(50)), &["10.255.0.7/32"], 1));
    rib.flush();
}

#[test]
fn with_the_kernel_first_a_route_replacing_another_is_announced_once_its_batch_is_applied() {
    let mut rib = kernel_first_rib();
    better_via_1(&mut rib);
    let out = rib.transmit_all();
    assert!(announced_to(&out, 0).is_empty() && announced_to(&out, 2).is_empty());
    assert!(
        got(&out, 2).withdrawn.is_empty(),
        "the old path stays meanwhile"
    );
    assert_eq!(pull(&mut rib, 16)[0].best, via(1));
    assert!(
        announced_to(&rib.transmit_all(), 2).is_empty(),
        "pulled is not applied"
    );
    rib.fib_applied();
    let out = rib.transmit_all();
    assert_eq!(announced_to(&out, 0), vec![net("10.255.0.7/32")]);
    assert_eq!(announced_to(&out, 2), vec![net("10.255.0.7/32")]);
}

#[test]
fn with_the_kernel_first_a_withdrawal_goes_at_once() {
    let mut rib = kernel_first_rib();
    rib.update(0, &withdraw(&["10.255.0.7/32"]));
    rib.flush();
    let out = rib.transmit_all();
    assert_eq!(got(&out, 1).withdrawn, vec![net("10.255.0.7/32")]);
    assert_eq!(got(&out, 2).withdrawn, vec![net("10.255.0.7/32")]);
    assert_eq!(pull(&mut rib, 16)[0].best, None);
}

#[test]
fn a_route_changed_again_after_its_pull_waits_for_the_newer_batch() {
    let mut rib = kernel_first_rib();
    better_via_1(&mut rib);
    assert_eq!(pull(&mut rib, 16)[0].best, via(1));
    // Changed again before that batch is applied: to peer 2's path.
    rib.update(2, &announce_with(attrs(Some(0)), &["10.255.0.7/32"], 3));
    rib.update(1, &announce_with(attrs(Some(90)), &["10.255.0.7/32"], 2));
    rib.flush();
    rib.fib_applied();
    let out = rib.transmit_all();
    assert!(
        announced_to(&out, 0).is_empty(),
        "the kernel holds peer 1's path, the selection is peer 2's"
    );
    assert_eq!(pull(&mut rib, 16)[0].best, via(2));
    rib.fib_applied();
    assert_eq!(
        announced_to(&rib.transmit_all(), 0),
        vec![net("10.255.0.7/32")]
    );
}

#[test]
fn a_session_coming_up_gets_the_table_as_it_stands() {
    let mut rib = kernel_first_rib();
    rib.peer_down(2);
    rib.flush();
    rib.transmit_all();
    better_via_1(&mut rib);
    up(&mut rib, 2);
    rib.flush();
    let out = rib.transmit_all();
    assert_eq!(announced_to(&out, 2), vec![net("10.255.0.7/32")]);
    assert!(announced_to(&out, 0).is_empty(), "a change for the others");
}

#[test]
fn turning_the_kernel_first_off_announces_what_waited() {
    let mut rib = kernel_first_rib();
    better_via_1(&mut rib);
    assert_eq!(pull(&mut rib, 1).len(), 1);
    assert!(announced_to(&rib.transmit_all(), 2).is_empty());
    rib.set_export_after_kernel(false);
    assert_eq!(
        announced_to(&rib.transmit_all(), 2),
        vec![net("10.255.0.7/32")]
    );
}
