//! Graceful restart, helper side (RFC 4724 §4.2).

use super::*;
use std::time::{Duration, Instant};

const BOTH: [AfiSafi; 2] = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST];

/// Peer 0 announced a, b (IPv4) and c (IPv6), then its session dropped gracefully.
fn helping(now: Instant) -> Rib {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(None, &["10.255.0.1/32", "10.255.0.2/32"]));
    rib.update(0, &announce(None, &["fd00:255::3/128"]));
    flush(&mut rib);
    rib.peer_down_graceful(0, &BOTH, now + Duration::from_secs(120));
    rib
}

fn best_of(rib: &Rib, prefix: &str) -> usize {
    rib.explain(net(prefix)).candidates.len()
}

#[test]
fn routes_stay_stale_while_the_peer_restarts_and_are_still_advertised() {
    let now = Instant::now();
    let mut rib = helping(now);
    let out = flush(&mut rib);
    // Nothing withdrawn anywhere, nothing taken out of the kernel.
    assert!(got(&out, 1).withdrawn.is_empty(), "{:?}", got(&out, 1));
    assert!(!out
        .iter()
        .any(|o| matches!(o, RibOutput::BestChanged { best: None, .. })));
    assert_eq!(rib.stale_count(0, AfiSafi::IPV4_UNICAST), 2);
    assert_eq!(rib.stale_count(0, AfiSafi::IPV6_UNICAST), 1);
    assert_eq!(best_of(&rib, "10.255.0.1/32"), 1);
    assert!(rib.graceful_pending(0));
    assert_eq!(rib.stale_timeout(), Some(now + Duration::from_secs(120)));
    // A peer coming up meanwhile gets the stale routes too.
    rib.peer_down(2);
    up(&mut rib, 2);
    let out = flush(&mut rib);
    assert_eq!(got(&out, 2).announced.len(), 3);
}

#[test]
fn relearned_routes_lose_the_mark_and_end_of_rib_purges_the_rest() {
    let now = Instant::now();
    let mut rib = helping(now);
    flush(&mut rib);
    up(&mut rib, 0);
    rib.graceful_session_up(0, &BOTH, now + Duration::from_secs(300));
    rib.update(0, &announce(Some(5), &["10.255.0.1/32"]));
    assert_eq!(rib.stale_count(0, AfiSafi::IPV4_UNICAST), 1);
    rib.update(0, &Update::end_of_rib(AfiSafi::IPV4_UNICAST));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, vec![net("10.255.0.2/32")]);
    assert_eq!(best_of(&rib, "10.255.0.1/32"), 1);
    assert_eq!(best_of(&rib, "10.255.0.2/32"), 0);
    // IPv6 still waits for its own End-of-RIB.
    assert!(rib.graceful_pending(0));
    rib.update(0, &Update::end_of_rib(AfiSafi::IPV6_UNICAST));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, vec![net("fd00:255::3/128")]);
    assert!(!rib.graceful_pending(0));
    assert_eq!(rib.stale_timeout(), None);
}

#[test]
fn the_deadline_purges_what_is_still_stale() {
    let now = Instant::now();
    let mut rib = helping(now);
    flush(&mut rib);
    assert_eq!(rib.expire_stale(now + Duration::from_secs(119)), 0);
    assert_eq!(rib.expire_stale(now + Duration::from_secs(120)), 3);
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn.len(), 3);
    assert!(rib.is_empty() || best_of(&rib, "10.255.0.1/32") == 0);
    assert!(!rib.graceful_pending(0));
}

#[test]
fn a_family_not_preserved_on_return_or_at_the_drop_is_purged() {
    let now = Instant::now();
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(None, &["10.255.0.1/32"]));
    rib.update(0, &announce(None, &["fd00:255::3/128"]));
    flush(&mut rib);
    // Only IPv6 forwarding state is preserved: IPv4 goes at once.
    rib.peer_down_graceful(0, &[AfiSafi::IPV6_UNICAST], now + Duration::from_secs(60));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, vec![net("10.255.0.1/32")]);
    // Back without the forwarding bit for IPv6 (RFC 4724 §4.2): purged.
    up(&mut rib, 0);
    rib.graceful_session_up(0, &[], now + Duration::from_secs(60));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, vec![net("fd00:255::3/128")]);
    assert!(!rib.graceful_pending(0));
}

#[test]
fn a_plain_peer_down_during_the_restart_drops_everything() {
    let now = Instant::now();
    let mut rib = helping(now);
    flush(&mut rib);
    rib.peer_down(0);
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn.len(), 3);
    assert!(!rib.graceful_pending(0));
}

#[test]
fn counts_show_the_helper_state_stale_routes_and_time_left() {
    let now = Instant::now();
    let mut rib = helping(now);
    flush(&mut rib);
    let c = rib.counts_at(0, now + Duration::from_secs(20));
    assert!(c.graceful_helper);
    assert_eq!(c.stale, 3);
    assert_eq!(c.stale_left_s, Some(100));
    let other = rib.counts_at(1, now);
    assert!(!other.graceful_helper && other.stale == 0 && other.stale_left_s.is_none());
    rib.expire_stale(now + Duration::from_secs(121));
    let c = rib.counts_at(0, now + Duration::from_secs(121));
    assert!(
        !c.graceful_helper && c.stale == 0 && c.stale_left_s.is_none(),
        "{c:?}"
    );
}

#[test]
fn our_restart_ends_when_every_gr_neighbor_sent_end_of_rib_for_its_families() {
    let now = Instant::now();
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.peer_down(1);
    let mut g = RestartGrace::new([0, 1, 2], Some(now + Duration::from_secs(120)));
    assert!(!g.progress(&rib, now));
    // Peer 2's session came up without graceful restart: not awaited.
    assert!(g.session_without_gr(2));
    // Peer 0: End-of-RIB for IPv4 only, then IPv6 too.
    rib.update(0, &Update::end_of_rib(AfiSafi::IPV4_UNICAST));
    assert!(!g.progress(&rib, now));
    rib.update(0, &Update::end_of_rib(AfiSafi::IPV6_UNICAST));
    assert!(!g.progress(&rib, now), "peer 1 is not even up yet");
    up(&mut rib, 1);
    assert!(!g.progress(&rib, now));
    rib.update(1, &Update::end_of_rib(AfiSafi::IPV4_UNICAST));
    rib.update(1, &Update::end_of_rib(AfiSafi::IPV6_UNICAST));
    assert!(g.progress(&rib, now), "over");
    assert!(g.is_over() && g.poll_timeout().is_none());
    assert!(!g.progress(&rib, now), "said once");
}

#[test]
fn our_restart_ends_at_the_deadline_without_end_of_rib() {
    let now = Instant::now();
    let rib = rib_with([Some(1), Some(1), Some(1)]);
    let deadline = now + Duration::from_secs(120);
    let mut g = RestartGrace::new([0], Some(deadline));
    assert_eq!(g.poll_timeout(), Some(deadline));
    assert!(!g.progress(&rib, deadline - Duration::from_secs(1)));
    assert!(g.progress(&rib, deadline));
    assert!(
        g.sweeps(),
        "GR neighbors were awaited: the FIB sweeps at the end"
    );
    // Nobody to wait for: over at once, and no sweep (nothing re-learned yet:
    // the FIB's startup grace keeps the previous run's routes meanwhile).
    let mut none = RestartGrace::new([], None);
    assert!(none.progress(&rib, now));
    assert!(!none.sweeps());
}

/// Both End-of-RIBs of `peer`'s session.
fn end_of_rib(rib: &mut Rib, peer: PeerId) {
    for f in BOTH {
        rib.update(peer, &Update::end_of_rib(f));
    }
}

#[test]
fn a_restarted_node_defers_its_output_until_end_of_rib_from_every_gr_neighbor() {
    let now = Instant::now();
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let mut g = RestartGrace::new([0, 1], Some(now + Duration::from_secs(120))).defer_output();
    assert!(g.holds_output());
    assert!(!g.progress(&rib, now));
    assert!(g.holds_output() && g.take_release().is_none());
    assert_eq!(g.deferral_waits_for().collect::<Vec<_>>(), [0, 1]);
    // Peer 0's End-of-RIB alone (and only one family of peer 1's) is not enough.
    end_of_rib(&mut rib, 0);
    rib.update(1, &Update::end_of_rib(AfiSafi::IPV4_UNICAST));
    assert!(!g.progress(&rib, now));
    assert!(g.holds_output(), "peer 1's IPv6 End-of-RIB is missing");
    assert_eq!(g.deferral_waits_for().collect::<Vec<_>>(), [1]);
    rib.update(1, &Update::end_of_rib(AfiSafi::IPV6_UNICAST));
    assert!(g.progress(&rib, now));
    assert!(!g.holds_output());
    assert_eq!(g.take_release(), Some(Release::EndOfRib));
    assert_eq!(g.take_release(), None, "said once");
    assert_eq!(g.deferral_waits_for().count(), 0);
}

#[test]
fn the_deferral_timer_releases_the_output_without_end_of_rib() {
    let now = Instant::now();
    let rib = rib_with([Some(1), Some(1), Some(1)]);
    let deadline = now + Duration::from_secs(120);
    let mut g = RestartGrace::new([0, 1], Some(deadline)).defer_output();
    assert_eq!(g.poll_timeout(), Some(deadline));
    assert!(!g.progress(&rib, deadline - Duration::from_secs(1)));
    assert!(g.holds_output());
    assert!(g.progress(&rib, deadline));
    assert!(!g.holds_output());
    assert_eq!(g.take_release(), Some(Release::Timer));
}

#[test]
fn a_restarting_peer_is_not_awaited_for_the_deferral_but_still_for_the_sweep() {
    let now = Instant::now();
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let mut g = RestartGrace::new([0, 1], Some(now + Duration::from_secs(120))).defer_output();
    // Peer 1 restarted too (R bit): it waits for our End-of-RIB.
    g.session_with_gr(1, true);
    g.session_with_gr(0, false);
    assert!(!g.progress(&rib, now));
    assert!(g.holds_output(), "peer 0 is awaited");
    end_of_rib(&mut rib, 0);
    assert!(!g.progress(&rib, now), "the restart still waits for peer 1");
    assert_eq!(g.take_release(), Some(Release::EndOfRib));
    assert!(!g.holds_output() && !g.is_over());
    end_of_rib(&mut rib, 1);
    assert!(g.progress(&rib, now), "over: peer 1's routes are back");
    assert!(g.sweeps());
    assert_eq!(g.take_release(), None);
}

#[test]
fn a_peer_back_without_the_r_bit_is_awaited_for_the_deferral_again() {
    let now = Instant::now();
    let rib = rib_with([Some(1), Some(1), Some(1)]);
    let mut g = RestartGrace::new([0], Some(now + Duration::from_secs(120))).defer_output();
    g.session_with_gr(0, true);
    g.session_with_gr(0, false);
    assert!(!g.progress(&rib, now));
    assert!(g.holds_output());
    // Without graceful restart at all: not awaited.
    assert!(g.session_without_gr(0));
    assert!(g.progress(&rib, now));
    assert_eq!(g.take_release(), Some(Release::EndOfRib));
}

#[test]
fn without_a_restart_of_this_node_nothing_is_held() {
    let now = Instant::now();
    let rib = rib_with([Some(1), Some(1), Some(1)]);
    let mut g = RestartGrace::new([0, 1], Some(now + Duration::from_secs(120)));
    assert!(!g.holds_output());
    assert!(!g.progress(&rib, now));
    assert!(!g.holds_output() && g.take_release().is_none());
    assert!(g.progress(&rib, now + Duration::from_secs(120)));
    assert!(g.take_release().is_none());
}
