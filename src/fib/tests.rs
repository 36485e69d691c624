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
    let mut fib = Fib::new(vec![], [], t, Duration::from_secs(30));
    let a = route("10.255.0.3/32", "fe80::3:2", "wg3");
    fib.set(a.prefix, Some(a.clone()));
    assert_eq!(apply_all(&mut fib, t), vec![FibOp::Replace(a.clone())]);
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
    let mut fib = Fib::new(vec![], [], t, Duration::from_secs(30));
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
        vec![keep.clone(), moved.clone(), stale.clone()],
        [],
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
fn conflicts_are_left_alone() {
    let t = Instant::now();
    let mut fib = Fib::new(vec![], [p("10.255.0.7/32")], t, Duration::from_secs(30));
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
    let mut fib = Fib::new(vec![], [], t, Duration::from_secs(30));
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
    assert_eq!(ops, vec![FibOp::Replace(r.clone())]);
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
    let mut fib = Fib::new(vec![], [], t, Duration::from_secs(30));
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
    let mut fib = Fib::new(vec![], [], t, Duration::from_secs(30));
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
