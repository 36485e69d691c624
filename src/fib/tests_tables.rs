//! Several kernel tables: each table's state is its own (routes, dumps,
//! conflicts, grace), and routes of ours in a table no longer owned go.

use super::*;

const MAIN: TableId = 254;
const VIEW: TableId = 102;

fn route(p: &str, gw: &str, dev: &str) -> FibRoute {
    FibRoute {
        prefix: p.parse().unwrap(),
        gateway: gw.parse().unwrap(),
        interface: dev.into(),
    }
}

/// Run every op and report success, as a kernel that says yes would.
fn apply_all(fibs: &mut FibTables, now: Instant) -> Vec<(TableId, FibOp)> {
    let ops = fibs.poll_max(now, usize::MAX);
    for (t, op) in &ops {
        fibs.result(*t, op, Ok(()), now);
    }
    ops
}

/// Started as the runtime does: a dump of what the kernel holds, then the grace.
fn start(tables: &[TableId], seen: Vec<(TableId, Seen)>, t: Instant) -> FibTables {
    let mut fibs = FibTables::new(tables);
    fibs.begin_dump();
    for (table, s) in seen {
        fibs.dumped(table, s);
    }
    fibs.end_dump();
    fibs.start_grace(t, Duration::from_secs(60));
    fibs
}

fn installed(fibs: &FibTables, table: TableId) -> Vec<FibRoute> {
    let v = fibs.view(Some(table));
    v.into_iter().filter_map(|k| k.installed).collect()
}

#[test]
fn the_same_prefix_in_two_tables_is_two_independent_routes() {
    let t = Instant::now();
    let mut fibs = start(&[MAIN, VIEW], vec![], t);
    let a = route("10.255.0.3/32", "fe80::1:2", "wg1");
    let b = route("10.255.0.3/32", "fe80::2:2", "wg2");
    fibs.set(MAIN, a.prefix, Some(a.clone()));
    fibs.set(VIEW, b.prefix, Some(b.clone()));
    let mut ops = apply_all(&mut fibs, t);
    ops.sort_by_key(|(t, _)| *t);
    assert_eq!(
        ops,
        vec![(VIEW, FibOp::Add(b.clone())), (MAIN, FibOp::Add(a.clone()))]
    );
    assert_eq!(installed(&fibs, MAIN), vec![a.clone()]);
    assert_eq!(installed(&fibs, VIEW), vec![b.clone()]);
    // The view loses its route: only the view's table changes.
    fibs.set(VIEW, b.prefix, None);
    assert_eq!(
        apply_all(&mut fibs, t),
        vec![(VIEW, FibOp::Delete(b.prefix))]
    );
    assert_eq!(installed(&fibs, MAIN), vec![a]);
    assert!(installed(&fibs, VIEW).is_empty());
    // `show kernel` names the table of each route.
    assert!(fibs.view(None).iter().all(|k| k.table == MAIN));
}

#[test]
fn a_route_event_or_dump_of_one_table_leaves_the_other_alone() {
    let t = Instant::now();
    let mut fibs = start(&[MAIN, VIEW], vec![], t);
    let a = route("10.255.0.3/32", "fe80::1:2", "wg1");
    let b = route("10.255.0.3/32", "fe80::2:2", "wg2");
    fibs.set(MAIN, a.prefix, Some(a.clone()));
    fibs.set(VIEW, b.prefix, Some(b.clone()));
    apply_all(&mut fibs, t);
    // Someone deletes the view's route: restored there, main untouched.
    fibs.kernel_event(VIEW, Seen::Ours(b.clone()), false);
    assert_eq!(apply_all(&mut fibs, t), vec![(VIEW, FibOp::Add(b.clone()))]);
    // A dump that finds only the view's route: main's is re-added, the
    // view's (found) needs nothing.
    fibs.begin_dump();
    fibs.dumped(VIEW, Seen::Ours(b.clone()));
    fibs.end_dump();
    assert_eq!(apply_all(&mut fibs, t), vec![(MAIN, FibOp::Add(a.clone()))]);
    // A dump of main with ours only there: the view's comes back, main's not touched.
    fibs.begin_dump();
    fibs.dumped(MAIN, Seen::Ours(a.clone()));
    fibs.end_dump();
    assert_eq!(apply_all(&mut fibs, t), vec![(VIEW, FibOp::Add(b))]);
}

#[test]
fn ours_in_a_table_no_longer_owned_is_deleted_at_start() {
    let t = Instant::now();
    let left = route("10.255.0.3/32", "fe80::1:2", "wg1");
    let kept = route("10.255.0.4/32", "fe80::1:2", "wg1");
    // Table 103 was a view's before the restart; now only main and 102.
    let mut fibs = start(
        &[MAIN, VIEW],
        vec![
            (103, Seen::Ours(left.clone())),
            (
                104,
                Seen::Foreign {
                    prefix: left.prefix,
                    protocol: 4,
                },
            ),
            (VIEW, Seen::Ours(kept.clone())),
        ],
        t,
    );
    fibs.set(VIEW, kept.prefix, Some(kept.clone()));
    assert_eq!(
        apply_all(&mut fibs, t),
        vec![(103, FibOp::Delete(left.prefix))],
        "ours in 103 goes at once; another protocol's in 104 and ours adopted in 102 stay"
    );
    assert_eq!(installed(&fibs, VIEW), vec![kept.clone()]);
    assert!(fibs.view(Some(103)).is_empty() && !fibs.has_work());
    // After start-up, ours in a table never owned in this run (another
    // instance's with the same protocol number) are left alone, whether an
    // event or a later dump shows them.
    let other = route("10.255.0.5/32", "fe80::1:2", "wg1");
    fibs.kernel_event(106, Seen::Ours(other.clone()), true);
    fibs.begin_dump();
    fibs.dumped(106, Seen::Ours(other));
    fibs.dumped(VIEW, Seen::Ours(kept));
    fibs.end_dump();
    assert!(apply_all(&mut fibs, t).is_empty());
}

#[test]
fn a_table_given_up_at_reload_has_its_routes_removed() {
    let t = Instant::now();
    let mut fibs = start(&[MAIN, VIEW], vec![], t);
    let a = route("10.255.0.3/32", "fe80::1:2", "wg1");
    fibs.set(MAIN, a.prefix, Some(a.clone()));
    fibs.set(VIEW, a.prefix, Some(a.clone()));
    apply_all(&mut fibs, t);
    fibs.set_tables(&[MAIN, 105]);
    assert!(
        fibs.wants_dump(),
        "a new table: a dump adopts what of ours it holds"
    );
    assert_eq!(
        apply_all(&mut fibs, t),
        vec![(VIEW, FibOp::Delete(a.prefix))]
    );
    assert_eq!(fibs.ids().collect::<Vec<_>>(), vec![MAIN, 105]);
    assert_eq!(installed(&fibs, MAIN), vec![a.clone()]);
    // Routes for a table not owned are ignored.
    fibs.set(VIEW, a.prefix, Some(a.clone()));
    assert!(apply_all(&mut fibs, t).is_empty());
    // Ours showing up again in the table given up (a late echo, a dump): deleted.
    fibs.kernel_event(VIEW, Seen::Ours(a.clone()), true);
    assert_eq!(
        apply_all(&mut fibs, t),
        vec![(VIEW, FibOp::Delete(a.prefix))]
    );
    fibs.begin_dump();
    fibs.dumped(VIEW, Seen::Ours(a.clone()));
    fibs.dumped(MAIN, Seen::Ours(a.clone()));
    fibs.end_dump();
    assert_eq!(
        apply_all(&mut fibs, t),
        vec![(VIEW, FibOp::Delete(a.prefix))]
    );
}

#[test]
fn a_foreign_route_in_a_view_table_is_a_conflict_there_only() {
    let t = Instant::now();
    let mine = route("10.255.0.7/32", "fe80::2:1", "wg2");
    let foreign = Seen::Foreign {
        prefix: mine.prefix,
        protocol: 4,
    };
    let mut fibs = start(&[MAIN, VIEW], vec![(VIEW, foreign)], t);
    fibs.set(MAIN, mine.prefix, Some(mine.clone()));
    fibs.set(VIEW, mine.prefix, Some(mine.clone()));
    assert_eq!(
        apply_all(&mut fibs, t),
        vec![(MAIN, FibOp::Add(mine.clone()))],
        "the view's slot is held by a static route: not touched"
    );
    assert_eq!(fibs.foreign(), vec![(VIEW, mine.prefix)]);
    let counts = fibs.counts();
    assert_eq!((counts[0].1.conflicts, counts[1].1.conflicts), (0, 1));
    let v = fibs.view(Some(VIEW));
    assert_eq!(v[0].state, PrefixState::Conflict);
    // Not forwardable in the view, forwardable in main (per-table feedback).
    assert_eq!(fibs.forwarding_changes(), vec![(VIEW, mine.prefix, false)]);
}

#[test]
fn each_table_has_its_own_grace_and_stop() {
    let t = Instant::now();
    let a = route("10.255.0.3/32", "fe80::1:2", "wg1");
    let mut fibs = start(
        &[MAIN, VIEW],
        vec![(MAIN, Seen::Ours(a.clone())), (VIEW, Seen::Ours(a.clone()))],
        t,
    );
    assert_eq!(fibs.installed(), 2);
    assert!(
        apply_all(&mut fibs, t).is_empty(),
        "both kept during the grace"
    );
    assert!(fibs.end_grace(VIEW));
    assert_eq!(
        apply_all(&mut fibs, t),
        vec![(VIEW, FibOp::Delete(a.prefix))],
        "End-of-RIB of the view: only its stale route goes"
    );
    assert!(!fibs.end_grace(103), "not owned: nothing to end");
    assert_eq!(fibs.remove_all(), vec![(MAIN, FibOp::Delete(a.prefix))]);
}
