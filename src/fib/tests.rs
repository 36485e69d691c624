//! FIB diff rules: one operation per change, replace not delete+add, adoption
//! of an earlier run's routes with a grace time, conflicts left alone, retries.

use super::*;

fn route(p: &str, gw: &str, dev: &str) -> FibRoute {
    FibRoute {
        prefix: p.parse().unwrap(),
        gateway: gw.parse().unwrap(),
        interface: dev.into(),
    }
}

fn p(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Run every op and report success, as a kernel that says yes would.
fn apply_all(fib: &mut Fib, now: Instant) -> Vec<FibOp> {
    let ops = fib.poll(now);
    for op in &ops {
        fib.result(op, Ok(()), now);
    }
    ops
}

#[test]
fn install_change_and_withdraw() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let a = route("10.255.0.3/32", "fe80::3:2", "wg3");
    fib.set(a.prefix, Some(a.clone()));
    assert_eq!(
        apply_all(&mut fib, t),
        vec![FibOp::Add(a.clone())],
        "nothing there: an exclusive add, which never overwrites"
    );
    assert!(apply_all(&mut fib, t).is_empty(), "nothing more to do");
    // A better path: one replace, never a delete first.
    let b = route("10.255.0.3/32", "fe80::1:2", "wg1");
    fib.set(b.prefix, Some(b.clone()));
    assert_eq!(apply_all(&mut fib, t), vec![FibOp::Replace(b)]);
    // Same route again: no operation.
    fib.set(a.prefix, Some(route("10.255.0.3/32", "fe80::1:2", "wg1")));
    assert!(apply_all(&mut fib, t).is_empty());
    fib.set(a.prefix, None);
    assert_eq!(apply_all(&mut fib, t), vec![FibOp::Delete(a.prefix)]);
    assert_eq!(fib.counts().installed, 0);
}

#[test]
fn many_changes_come_out_as_one_batch() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    for i in 1..=200u32 {
        let r = route(
            &format!("10.255.{}.{}/32", i / 256, i % 256),
            "fe80::2:1",
            "wg2",
        );
        fib.set(r.prefix, Some(r));
    }
    assert_eq!(apply_all(&mut fib, t).len(), 200);
}

#[test]
fn restart_keeps_right_routes_and_removes_stale_after_grace() {
    let t = Instant::now();
    let keep = route("10.255.0.3/32", "fe80::3:2", "wg3");
    let moved = route("10.255.0.4/32", "fe80::3:2", "wg3");
    let stale = route("10.255.0.9/32", "fe80::3:2", "wg3");
    let mut fib = Fib::new(
        [&keep, &moved, &stale]
            .map(|r| Seen::Ours(r.clone()))
            .to_vec(),
        t,
        Duration::from_secs(30),
    );
    // Sessions come up: the RIB says what it wants.
    fib.set(keep.prefix, Some(keep.clone()));
    let moved_now = route("10.255.0.4/32", "fe80::5:2", "wg5");
    fib.set(moved.prefix, Some(moved_now.clone()));
    let ops = apply_all(&mut fib, t + Duration::from_secs(1));
    assert_eq!(
        ops,
        vec![FibOp::Replace(moved_now)],
        "the right route is kept untouched, no delete during grace"
    );
    assert_eq!(fib.poll_timeout(), Some(t + Duration::from_secs(30)));
    let ops = apply_all(&mut fib, t + Duration::from_secs(30));
    assert_eq!(
        ops,
        vec![FibOp::Delete(stale.prefix)],
        "after the grace time, only what nobody wants goes"
    );
    assert_eq!(fib.counts().installed, 2);
}

#[test]
fn end_of_rib_ends_the_grace_before_its_time() {
    let t = Instant::now();
    let keep = route("10.255.0.3/32", "fe80::3:2", "wg3");
    let stale = route("10.255.0.9/32", "fe80::3:2", "wg3");
    let mut fib = Fib::new(
        [&keep, &stale].map(|r| Seen::Ours(r.clone())).to_vec(),
        t,
        Duration::from_secs(120),
    );
    fib.set(keep.prefix, Some(keep.clone()));
    assert!(apply_all(&mut fib, t).is_empty(), "kept during the grace");
    assert!(fib.end_grace());
    assert_eq!(
        apply_all(&mut fib, t + Duration::from_secs(1)),
        vec![FibOp::Delete(stale.prefix)],
        "every End-of-RIB in: only the stale route goes, long before 120 s"
    );
    assert_eq!(fib.poll_timeout(), None);
    assert!(!fib.end_grace(), "once");
}

#[test]
fn conflicts_are_left_alone() {
    let t = Instant::now();
    let mut fib = Fib::new(
        vec![Seen::Foreign {
            prefix: p("10.255.0.7/32"),
            protocol: 4,
        }],
        t,
        Duration::from_secs(30),
    );
    let r = route("10.255.0.7/32", "fe80::2:1", "wg2");
    fib.set(r.prefix, Some(r.clone()));
    assert!(
        fib.poll(t).is_empty(),
        "a prefix held by a static route at our metric is not touched"
    );
    let s = route("10.255.0.8/32", "fe80::2:1", "wg2");
    fib.set(s.prefix, Some(s.clone()));
    let ops = fib.poll(t);
    fib.result(&ops[0], Err(FibError::Conflict), t);
    assert_eq!(fib.counts().conflicts, 2);
    fib.set(s.prefix, None);
    assert!(fib.poll(t).is_empty(), "and is not deleted either");
}

#[test]
fn failures_retry_with_backoff_and_state_is_kept() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let r = route("fd00:255::3/128", "fe80::3:2", "wg3");
    fib.set(r.prefix, Some(r.clone()));
    let ops = fib.poll(t);
    fib.result(&ops[0], Err(FibError::Failed("No such device".into())), t);
    assert_eq!(fib.poll_timeout(), Some(t + RETRY_MIN));
    assert!(
        fib.poll(t + RETRY_MIN / 2).is_empty(),
        "not before the backoff"
    );
    let ops = fib.poll(t + RETRY_MIN);
    assert_eq!(ops, vec![FibOp::Add(r.clone())]);
    fib.result(
        &ops[0],
        Err(FibError::Failed("No such device".into())),
        t + RETRY_MIN,
    );
    assert_eq!(
        fib.poll_timeout(),
        Some(t + RETRY_MIN * 3),
        "the wait doubles"
    );
    let ops = fib.poll(t + RETRY_MIN * 3);
    fib.result(&ops[0], Ok(()), t + RETRY_MIN * 3);
    assert_eq!(
        fib.counts(),
        FibCounts {
            desired: 1,
            installed: 1,
            conflicts: 0,
            retrying: 0
        }
    );
}

#[test]
fn one_operation_in_flight_per_prefix() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let a = route("10.255.0.3/32", "fe80::3:2", "wg3");
    let b = route("10.255.0.3/32", "fe80::1:2", "wg1");
    fib.set(a.prefix, Some(a.clone()));
    let first = fib.poll(t);
    fib.set(b.prefix, Some(b.clone()));
    assert!(fib.poll(t).is_empty(), "waits for the first result");
    fib.result(&first[0], Ok(()), t);
    assert_eq!(fib.poll(t), vec![FibOp::Replace(b)]);
}

#[test]
fn remove_all_on_stop() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    for s in ["10.255.0.3/32", "fd00:255::3/128"] {
        let r = route(s, "fe80::3:2", "wg3");
        fib.set(r.prefix, Some(r));
    }
    apply_all(&mut fib, t);
    let mut ops = fib.remove_all();
    ops.sort_by_key(|o| o.prefix());
    assert_eq!(
        ops,
        vec![
            FibOp::Delete(p("10.255.0.3/32")),
            FibOp::Delete(p("fd00:255::3/128"))
        ]
    );
}

fn foreign(prefix: &str, protocol: u8) -> Seen {
    Seen::Foreign {
        prefix: p(prefix),
        protocol,
    }
}

fn state(fib: &Fib, prefix: &str) -> Option<PrefixState> {
    fib.view(254)
        .into_iter()
        .find(|v| v.prefix == p(prefix))
        .map(|v| v.state)
}

#[test]
fn a_foreign_route_added_later_is_a_conflict_and_ours_steps_aside() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let r = route("10.255.0.3/32", "fe80::3:2", "wg3");
    fib.set(r.prefix, Some(r.clone()));
    apply_all(&mut fib, t);
    assert!(
        fib.forwarding_changes().is_empty(),
        "installed: forwardable"
    );
    // An operator adds a static route at our metric (`ip route append`: both there).
    fib.kernel_event(foreign("10.255.0.3/32", 4), true);
    assert_eq!(
        fib.poll(t),
        vec![FibOp::Delete(r.prefix)],
        "ours withdrawn from the kernel, theirs never replaced"
    );
    fib.result(&FibOp::Delete(r.prefix), Ok(()), t);
    assert_eq!(state(&fib, "10.255.0.3/32"), Some(PrefixState::Conflict));
    assert_eq!(fib.forwarding_changes(), vec![(r.prefix, false)]);
    // Another best path: still nothing touches their slot.
    let b = route("10.255.0.3/32", "fe80::1:2", "wg1");
    fib.set(b.prefix, Some(b.clone()));
    assert!(fib.poll(t).is_empty());
    assert!(fib.forwarding_changes().is_empty(), "still blocked");
}

#[test]
fn a_foreign_route_that_replaced_ours_is_kept_and_ours_forgotten() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let r = route("10.255.0.3/32", "fe80::3:2", "wg3");
    fib.set(r.prefix, Some(r.clone()));
    apply_all(&mut fib, t);
    // `ip route replace ... metric 32`: the kernel overwrote ours, no DELROUTE for it.
    fib.kernel_event(foreign("10.255.0.3/32", 4), true);
    let ops = fib.poll(t);
    assert_eq!(ops, vec![FibOp::Delete(r.prefix)]);
    fib.result(&ops[0], Err(FibError::Absent), t);
    assert_eq!(fib.counts().installed, 0);
    assert!(fib.poll(t).is_empty(), "no retry, no replace");
}

#[test]
fn a_conflict_that_goes_away_lets_ours_in() {
    let t = Instant::now();
    let mut fib = Fib::new(
        vec![foreign("10.255.0.3/32", 4)],
        t,
        Duration::from_secs(30),
    );
    let r = route("10.255.0.3/32", "fe80::3:2", "wg3");
    fib.set(r.prefix, Some(r.clone()));
    assert!(fib.poll(t).is_empty());
    assert_eq!(fib.forwarding_changes(), vec![(r.prefix, false)]);
    fib.kernel_event(foreign("10.255.0.3/32", 4), false);
    assert_eq!(apply_all(&mut fib, t), vec![FibOp::Add(r.clone())]);
    assert_eq!(state(&fib, "10.255.0.3/32"), Some(PrefixState::Installed));
    assert_eq!(fib.forwarding_changes(), vec![(r.prefix, true)]);
}

#[test]
fn our_route_deleted_from_outside_is_restored() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let r = route("fd00:255::3/128", "fe80::3:2", "wg3");
    fib.set(r.prefix, Some(r.clone()));
    apply_all(&mut fib, t);
    // `ip route flush proto 200`: RTM_DELROUTE of ours.
    fib.kernel_event(Seen::Ours(r.clone()), false);
    assert_eq!(apply_all(&mut fib, t), vec![FibOp::Add(r.clone())]);
    // The event of our own add comes back: nothing more to do.
    fib.kernel_event(Seen::Ours(r.clone()), true);
    assert!(fib.poll(t).is_empty());
}

#[test]
fn a_late_delete_event_of_an_older_route_changes_nothing() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let r = route("10.255.0.3/32", "fe80::3:2", "wg3");
    fib.set(r.prefix, Some(r.clone()));
    apply_all(&mut fib, t);
    fib.kernel_event(
        Seen::Ours(route("10.255.0.3/32", "fe80::1:2", "wg1")),
        false,
    );
    assert!(fib.poll(t).is_empty());
    assert_eq!(fib.counts().installed, 1);
}

#[test]
fn eexist_on_add_is_a_conflict_and_asks_for_a_dump() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let r = route("10.255.0.3/32", "fe80::3:2", "wg3");
    fib.set(r.prefix, Some(r.clone()));
    let ops = fib.poll(t);
    assert_eq!(ops, vec![FibOp::Add(r.clone())]);
    fib.result(&ops[0], Err(FibError::Conflict), t);
    assert_eq!(state(&fib, "10.255.0.3/32"), Some(PrefixState::Conflict));
    assert!(fib.wants_dump());
    assert!(fib.poll(t).is_empty(), "no retry over someone's route");
    assert_eq!(fib.forwarding_changes(), vec![(r.prefix, false)]);
}

#[test]
fn a_dump_reconciles_after_lost_events() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let a = route("10.255.0.3/32", "fe80::3:2", "wg3");
    let b = route("10.255.0.4/32", "fe80::3:2", "wg3");
    let c = route("10.255.0.5/32", "fe80::3:2", "wg3");
    for r in [&a, &b, &c] {
        fib.set(r.prefix, Some(r.clone()));
    }
    apply_all(&mut fib, t);
    // The EEXIST case above, or ENOBUFS: events were lost. The dump says: a
    // is gone, b is held by a static route, c is ours but via another gateway,
    // and an old conflict on d has gone.
    let d = route("10.255.0.6/32", "fe80::3:2", "wg3");
    fib.set(d.prefix, Some(d.clone()));
    let ops = fib.poll(t);
    fib.result(&ops[0], Err(FibError::Conflict), t);
    let c_other = route("10.255.0.5/32", "fe80::1:2", "wg1");
    fib.reconcile(vec![foreign("10.255.0.4/32", 4), Seen::Ours(c_other)]);
    assert!(!fib.wants_dump());
    let mut ops = apply_all(&mut fib, t);
    ops.sort_by_key(|o| o.prefix());
    assert_eq!(
        ops,
        vec![
            FibOp::Add(a.clone()),
            FibOp::Replace(c.clone()),
            FibOp::Add(d.clone())
        ]
    );
    assert_eq!(state(&fib, "10.255.0.4/32"), Some(PrefixState::Conflict));
    assert_eq!(fib.forwarding_changes(), vec![(b.prefix, false)]);
}

#[test]
fn a_route_without_interface_is_matched_by_the_kernels_with_its_interface() {
    // A route learned over a multihop session names no interface: the kernel
    // picks it, and dumps and events then show it. That is the route we
    // wanted, not one to replace (at every dump: the whole table).
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let a = route("10.0.0.1/32", "192.0.2.2", "");
    let b = route("10.0.0.2/32", "192.0.2.2", "");
    fib.set(a.prefix, Some(a.clone()));
    fib.set(b.prefix, Some(b.clone()));
    assert_eq!(apply_all(&mut fib, t).len(), 2);
    fib.kernel_event(Seen::Ours(route("10.0.0.1/32", "192.0.2.2", "eth1")), true);
    fib.reconcile(vec![Seen::Ours(route("10.0.0.2/32", "192.0.2.2", "eth1"))]);
    assert_eq!(
        apply_all(&mut fib, t),
        vec![FibOp::Add(a.clone())],
        "a gone, b there"
    );
    fib.reconcile(vec![
        Seen::Ours(route("10.0.0.1/32", "192.0.2.2", "eth1")),
        Seen::Ours(route("10.0.0.2/32", "192.0.2.3", "eth1")),
    ]);
    assert_eq!(
        apply_all(&mut fib, t),
        vec![FibOp::Replace(b.clone())],
        "another gateway is another route"
    );
    assert_eq!(
        fib.next_hops.in_use(),
        1,
        "no next hop per kernel interface kept"
    );
}

#[test]
fn refused_routes_are_not_forwardable_until_installed() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let r = route("10.255.0.3/32", "fe80::3:2", "wg3");
    fib.set(r.prefix, Some(r.clone()));
    let ops = fib.poll(t);
    fib.result(
        &ops[0],
        Err(FibError::Failed("Network is unreachable".into())),
        t,
    );
    assert_eq!(fib.forwarding_changes(), vec![(r.prefix, false)]);
    let v = fib.view(254);
    assert_eq!(v[0].state, PrefixState::Failed);
    assert_eq!(v[0].error.as_deref(), Some("Network is unreachable"));
    let ops = fib.poll(t + RETRY_MIN);
    fib.result(&ops[0], Ok(()), t + RETRY_MIN);
    assert_eq!(fib.forwarding_changes(), vec![(r.prefix, true)]);
    // A slot held by someone else is reported whether we want it or not:
    // a path that arrives later is held back from the start.
    fib.kernel_event(foreign("10.255.0.3/32", 4), true);
    apply_all(&mut fib, t + RETRY_MIN);
    assert_eq!(fib.forwarding_changes(), vec![(r.prefix, false)]);
    fib.set(r.prefix, None);
    apply_all(&mut fib, t + RETRY_MIN);
    assert!(fib.forwarding_changes().is_empty());
    fib.kernel_event(foreign("10.255.0.3/32", 4), false);
    assert_eq!(fib.forwarding_changes(), vec![(r.prefix, true)]);
    let mut fresh = Fib::new(
        vec![foreign("10.255.0.9/32", 4)],
        t,
        Duration::from_secs(30),
    );
    assert_eq!(
        fresh.forwarding_changes(),
        vec![(p("10.255.0.9/32"), false)],
        "known at start, before any path"
    );
}

#[test]
fn a_bounded_poll_hands_out_the_rest_later_and_waits_for_busy_prefixes() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    let routes: Vec<FibRoute> = (1..=10u32)
        .map(|i| route(&format!("10.255.0.{i}/32"), "fe80::2:1", "wg2"))
        .collect();
    for r in &routes {
        fib.set(r.prefix, Some(r.clone()));
    }
    let first = fib.poll_max(t, 4);
    assert_eq!(first.len(), 4);
    // A change of a prefix in flight waits for its result, not lost.
    let moved = route("10.255.0.1/32", "fe80::3:1", "wg3");
    fib.set(moved.prefix, Some(moved.clone()));
    let second = fib.poll_max(t, 100);
    assert_eq!(second.len(), 6, "the rest, not the busy prefix again");
    assert!(second.iter().all(|op| !first.contains(op)));
    for op in first.iter().chain(&second) {
        fib.result(op, Ok(()), t);
    }
    assert_eq!(fib.poll_max(t, 100), vec![FibOp::Replace(moved)]);
}

#[test]
fn next_hops_are_shared_and_given_back_and_empty_prefixes_forgotten() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], t, Duration::from_secs(30));
    for i in 1..=50u32 {
        let r = route(&format!("10.255.0.{i}/32"), "fe80::2:1", "wg2");
        fib.set(r.prefix, Some(r));
    }
    // Same gateway, another interface: another next hop.
    let other = route("2001:db8::1/128", "fe80::2:1", "wg3");
    fib.set(other.prefix, Some(other.clone()));
    apply_all(&mut fib, t);
    assert_eq!(fib.next_hops.in_use(), 2);
    assert_eq!(
        fib.view(254)[0].installed.as_ref().unwrap().interface,
        "wg2"
    );
    for i in 1..=50u32 {
        fib.set(p(&format!("10.255.0.{i}/32")), None);
    }
    fib.set(other.prefix, None);
    assert_eq!(apply_all(&mut fib, t).len(), 51);
    fib.forwarding_changes();
    assert_eq!(fib.next_hops.in_use(), 0);
    assert_eq!(
        fib.slots.iter().count(),
        0,
        "no state left for gone prefixes"
    );
    assert_eq!(fib.counts(), FibCounts::default());
}
