//! The pull: what a slow peer costs, what a fast one sees, how churn collapses.

use super::super::tests::{announce, announce_with, attrs, flush, got, net, rib_with, withdraw};
use super::*;
use crate::wire::{Message, Update};
use std::net::Ipv4Addr;

fn prefixes(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.255.{}.{}/32", i / 256, i % 256))
        .collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// All that `peer` has queued, as one [`RibOutput::Send`].
fn pull(rib: &mut Rib, peer: PeerId) -> Vec<RibOutput> {
    rib.poll_transmit(peer, usize::MAX)
        .map(|chunk| {
            vec![RibOutput::Send {
                peer,
                messages: split_messages(chunk),
            }]
        })
        .unwrap_or_default()
}

#[test]
fn slow_peer_queue_is_bounded_by_prefixes_and_gets_only_the_last_state() {
    // p1 announces, p2 pulls after every flush (fast), p3 never does (slow).
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let ps = prefixes(200);
    let ps = refs(&ps);
    let mut fast_changes = 0;
    for round in 0..500u32 {
        if round % 2 == 0 {
            rib.update(0, &announce(Some(round), &ps));
        } else {
            rib.update(0, &withdraw(&ps));
        }
        rib.flush();
        let g = got(&pull(&mut rib, 1), 1);
        fast_changes += g.announced.len() + g.withdrawn.len();
        assert!(
            rib.queued(2) <= ps.len(),
            "round {round}: {}",
            rib.queued(2)
        );
    }
    assert_eq!(
        fast_changes,
        500 * ps.len(),
        "the fast peer saw every change"
    );
    assert_eq!(rib.queued(1), 0);
    // Last round withdrew everything: the slow peer, which was never sent the
    // routes, gets neither announcements nor withdrawals, only End-of-RIB.
    let g = got(&pull(&mut rib, 2), 2);
    assert!(g.announced.is_empty() && g.withdrawn.is_empty(), "{g:?}");
    assert!(g
        .messages
        .iter()
        .all(|m| matches!(m, Message::Update(u) if u.is_end_of_rib().is_some())));
    // Announced again: one announcement per prefix with the latest MED.
    rib.update(0, &announce(Some(7), &ps));
    rib.update(0, &announce(Some(9), &ps));
    rib.flush();
    let g = got(&pull(&mut rib, 2), 2);
    assert_eq!(g.announced.len(), ps.len());
    assert!(g.announced.iter().all(|(_, a)| a.med == Some(10)));
    assert_eq!(rib.counts(2).advertised, ps.len());
}

#[test]
fn announce_then_withdraw_before_the_pull_sends_nothing_and_flaps_collapse() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(Some(1), &["10.255.0.1/32"]));
    rib.flush();
    rib.update(0, &withdraw(&["10.255.0.1/32"]));
    rib.flush();
    assert!(
        pull(&mut rib, 1).is_empty(),
        "never advertised, nothing to say"
    );
    // Advertised, then withdrawn and announced again with the same attributes.
    rib.update(0, &announce(Some(1), &["10.255.0.1/32"]));
    flush(&mut rib);
    rib.update(0, &withdraw(&["10.255.0.1/32"]));
    rib.flush();
    rib.update(0, &announce(Some(1), &["10.255.0.1/32"]));
    rib.flush();
    assert!(pull(&mut rib, 1).is_empty(), "the peer holds this already");
    assert_eq!(rib.counts(1).advertised, 1);
}

#[test]
fn end_of_rib_follows_every_queued_route_and_chunks_keep_to_the_budget() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let ps = prefixes(900); // under the import limit of 1000
    let ps = refs(&ps);
    rib.update(0, &announce(Some(1), &ps));
    rib.flush();
    // A new session: the table is queued, pulled in small chunks.
    rib.peer_down(2);
    super::super::tests::up(&mut rib, 2);
    rib.flush();
    let mut chunks = Vec::new();
    while let Some(c) = rib.poll_transmit(2, 300) {
        // The budget is passed by at most one message.
        assert!(c.len() < 300 + 4096, "{}", c.len());
        chunks.push(c);
    }
    assert!(chunks.len() > 5);
    let mut seen = 0;
    for (i, c) in chunks.iter().enumerate() {
        for m in split_messages(c.clone()) {
            let Ok(Message::Update(u)) = Message::decode(m, &super::super::tests::neg()) else {
                panic!("not an UPDATE");
            };
            if u.is_end_of_rib().is_some() {
                assert_eq!(i, chunks.len() - 1, "End-of-RIB only in the last chunk");
                assert_eq!(seen, ps.len(), "after every route");
            }
            seen += u.announced().count();
        }
    }
    assert_eq!(rib.counts(2).advertised, ps.len());
    assert!(!rib.wants_transmit(2));
}

#[test]
fn attributes_too_long_to_encode_become_a_withdrawal() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(Some(1), &["10.255.0.1/32"]));
    flush(&mut rib);
    // Reflection adds ORIGINATOR_ID and our CLUSTER_ID: 1100 * 4 octets of
    // CLUSTER_LIST no longer fit a 4096-octet UPDATE.
    let mut a = attrs(Some(1));
    a.cluster_list = (0..1100u32)
        .map(|i| Ipv4Addr::from(0x0b00_0000 + i))
        .collect();
    let big: Update = announce_with(a, &["10.255.0.1/32"], 77);
    rib.update(0, &big);
    let out = flush(&mut rib);
    let g = got(&out, 1);
    assert!(g.announced.is_empty(), "{:?}", g.announced.len());
    assert_eq!(g.withdrawn, vec![net("10.255.0.1/32")]);
    assert_eq!(rib.counts(1).advertised, 0);
    // A normal path again: announced.
    rib.update(0, &announce(Some(1), &["10.255.0.1/32"]));
    let g = got(&flush(&mut rib), 1);
    assert_eq!(g.announced.len(), 1);
}
