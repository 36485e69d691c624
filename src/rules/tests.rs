use super::*;
use crate::config::view_rule::FileRule;

const PROTO: u8 = 200;

fn rule(text: &str) -> RuleMatch {
    let r: FileRule = toml::from_str(text).unwrap();
    r.check().unwrap()
}

fn view(name: &str, id: u8, table: u32, rules: &[&str]) -> ViewRules {
    ViewRules {
        name: name.into(),
        id,
        table,
        rules: rules.iter().map(|r| rule(r)).collect(),
    }
}

/// latency (id 1, table 101): fwmark 0x1 (both families), from an IPv4
/// prefix (IPv4 only); hops (id 2, table 102): uid range (both families).
fn two_views() -> Vec<ViewRules> {
    vec![
        view(
            "latency",
            1,
            101,
            &["fwmark = \"0x1\"", "from = \"10.9.0.0/16\"\niif = \"eth0\""],
        ),
        view("hops", 2, 102, &["uid = \"1000-1999\""]),
    ]
}

fn core() -> Rules {
    let mut r = Rules::new(PROTO, PriorityRange::default());
    assert!(r.set_views(two_views()).is_empty());
    r
}

/// Feed a dump of `rules` (ours unless a protocol is given).
fn dump(r: &mut Rules, rules: &[(KernelRule, u8)]) {
    r.begin_dump();
    for (k, p) in rules {
        r.dumped(Dumped {
            rule: k.clone(),
            protocol: *p,
        });
    }
    r.end_dump();
}

/// Run every op successfully; returns them.
fn run(r: &mut Rules, now: Instant) -> Vec<RuleOp> {
    let ops = r.poll(now);
    for op in &ops {
        r.result(op, Ok(()), now);
    }
    ops
}

/// The core with its rules installed, beside another program's rule at
/// 20003 (protocol 99) inside our range; the rule and the time used.
fn installed_beside_a_foreign_rule() -> (Rules, (KernelRule, u8), Instant) {
    let mut r = core();
    let now = Instant::now();
    let foreign = (
        KernelRule::from_match(&rule("fwmark = \"0x9\""), 20003, 109).remove(0),
        99,
    );
    dump(&mut r, std::slice::from_ref(&foreign));
    run(&mut r, now);
    (r, foreign, now)
}

fn added(ops: &[RuleOp]) -> Vec<(Family, u32, u32)> {
    ops.iter()
        .filter_map(|o| match o {
            RuleOp::Add(k) => Some((k.family, k.priority, k.table)),
            _ => None,
        })
        .collect()
}

fn deleted(ops: &[RuleOp]) -> Vec<(Family, u32, u32)> {
    ops.iter()
        .filter_map(|o| match o {
            RuleOp::Delete(k) => Some((k.family, k.priority, k.table)),
            _ => None,
        })
        .collect()
}

fn installed_now(r: &Rules) -> Vec<(KernelRule, u8)> {
    r.installed.iter().map(|k| (k.clone(), PROTO)).collect()
}

use Family::{Ipv4, Ipv6};

#[test]
fn fresh_start_adds_each_rule_in_its_families_at_its_priority() {
    let mut r = core();
    let now = Instant::now();
    dump(&mut r, &[]);
    let ops = run(&mut r, now);
    assert_eq!(
        added(&ops),
        [
            (Ipv4, 20000, 101),
            (Ipv4, 20001, 101),
            (Ipv4, 20010, 102),
            (Ipv6, 20000, 101),
            (Ipv6, 20010, 102),
        ]
    );
    assert!(deleted(&ops).is_empty());
    let RuleOp::Add(k) = &ops[1] else { panic!() };
    assert_eq!(k.from, Some("10.9.0.0/16".parse().unwrap()));
    assert_eq!(k.iif.as_deref(), Some("eth0"));
    assert_eq!(k.selector(), "from 10.9.0.0/16 iif eth0");
    assert!(r.poll(now).is_empty(), "nothing more once installed");
    assert_eq!(r.counts().added, 5);
    assert!(r.view().rules.iter().all(|v| v.state == "installed"));
}

#[test]
fn restart_adopts_our_rules_without_touching_them() {
    let mut first = core();
    let now = Instant::now();
    dump(&mut first, &[]);
    run(&mut first, now);
    // A new run: the kernel holds the first run's rules.
    let mut r = core();
    dump(&mut r, &installed_now(&first));
    assert!(r.poll(now).is_empty(), "no flap: nothing added or deleted");
    assert_eq!(r.installed(), 5);
}

#[test]
fn foreign_rules_and_rules_outside_the_range_are_never_touched() {
    let mut r = core();
    let now = Instant::now();
    let mut odd = KernelRule::from_match(&rule("fwmark = \"0x9\""), 20005, 109);
    let foreign_in_range = (odd.remove(0), 99);
    let ours_outside = (
        KernelRule::from_match(&rule("fwmark = \"0x9\""), 19999, 109).remove(0),
        PROTO,
    );
    let main_rule = (
        KernelRule {
            family: Ipv4,
            priority: 32766,
            table: 254,
            fwmark: None,
            tos: 0,
            from: None,
            iif: None,
            uid: None,
            other: false,
        },
        2,
    );
    dump(&mut r, &[foreign_in_range, ours_outside, main_rule]);
    let ops = run(&mut r, now);
    assert_eq!(added(&ops).len(), 5);
    assert!(deleted(&ops).is_empty(), "{ops:?}");
    let v = r.view();
    assert_eq!(
        v.foreign,
        [ForeignRule {
            family: Ipv4,
            priority: 20005,
            protocol: 99
        }]
    );
    // A later dump still shows them: still untouched.
    let mut again = installed_now(&r);
    again.push((
        KernelRule::from_match(&rule("fwmark = \"0x9\""), 20005, 109).remove(0),
        99,
    ));
    dump(&mut r, &again);
    assert!(r.poll(now).is_empty());
}

#[test]
fn our_unwanted_or_odd_rules_in_the_range_are_deleted() {
    let mut r = core();
    let now = Instant::now();
    let mut stale = KernelRule::from_match(&rule("fwmark = \"0x7\""), 20500, 150).remove(0);
    let mut odd = KernelRule::from_match(&rule("fwmark = \"0x1\""), 20000, 101).remove(0);
    odd.other = true;
    stale.family = Ipv6;
    dump(&mut r, &[(stale, PROTO), (odd, PROTO)]);
    let ops = r.poll(now);
    assert_eq!(deleted(&ops), [(Ipv4, 20000, 101), (Ipv6, 20500, 150)]);
    // Additions come before deletions (make before break).
    let first_delete = ops
        .iter()
        .position(|o| matches!(o, RuleOp::Delete(_)))
        .unwrap();
    assert!(ops[first_delete..]
        .iter()
        .all(|o| matches!(o, RuleOp::Delete(_))));
    assert_eq!(added(&ops).len(), 5);
}

#[test]
fn reload_removing_a_view_removes_exactly_its_rules() {
    let mut r = core();
    let now = Instant::now();
    dump(&mut r, &[]);
    run(&mut r, now);
    let mut views = two_views();
    views.retain(|v| v.name != "hops");
    assert!(r.set_views(views).is_empty());
    let ops = run(&mut r, now);
    assert_eq!(deleted(&ops), [(Ipv4, 20010, 102), (Ipv6, 20010, 102)]);
    assert!(added(&ops).is_empty());
    assert_eq!(r.counts().deleted, 2);
    assert_eq!(r.installed(), 3);
}

#[test]
fn a_rule_added_to_one_view_moves_no_rule_of_another() {
    let mut r = core();
    let now = Instant::now();
    dump(&mut r, &[]);
    run(&mut r, now);
    let mut views = two_views();
    views[0].rules.insert(0, rule("dscp = 1"));
    r.set_views(views);
    let ops = run(&mut r, now);
    // Latency's rules shift by one (added at the new place, then deleted at
    // the old one); hops' rule at 20010 is not touched.
    assert!(
        ops.iter().all(|o| o.rule().table == 101),
        "only the latency view moves: {ops:?}"
    );
    assert_eq!(
        added(&ops),
        [
            (Ipv4, 20000, 101),
            (Ipv4, 20001, 101),
            (Ipv4, 20002, 101),
            (Ipv6, 20000, 101),
            (Ipv6, 20001, 101),
        ]
    );
    assert_eq!(
        deleted(&ops),
        [(Ipv4, 20000, 101), (Ipv4, 20001, 101), (Ipv6, 20000, 101)]
    );
    let RuleOp::Add(k) = &ops[0] else { panic!() };
    assert_eq!(k.tos, 0x04, "DSCP 1 in the header's tos");
}

#[test]
fn a_refused_rule_is_counted_and_retried_with_backoff() {
    let mut r = core();
    let t0 = Instant::now();
    dump(&mut r, &[]);
    let ops = r.poll(t0);
    for op in &ops {
        let res = if op.rule().table == 102 {
            Err(RuleError::Failed("Invalid argument (os error 22)".into()))
        } else {
            Ok(())
        };
        r.result(op, res, t0);
    }
    assert_eq!(r.counts().failed, 2);
    assert!(r.poll(t0).is_empty(), "not before the backoff");
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    let failed: Vec<_> = (r.view().rules.into_iter())
        .filter(|v| v.state == "failed")
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].view.as_deref(), Some("hops"));
    assert_eq!(
        failed[0].error.as_deref(),
        Some("Invalid argument (os error 22)")
    );
    let t1 = t0 + Duration::from_secs(1);
    let again = r.poll(t1);
    assert_eq!(added(&again), [(Ipv4, 20010, 102), (Ipv6, 20010, 102)]);
    for op in &again {
        r.result(op, Err(RuleError::Failed("still".into())), t1);
    }
    assert_eq!(r.poll_timeout(), Some(t1 + Duration::from_secs(2)));
    assert_eq!(r.failures(again[0].rule()), 2);
    let t2 = t1 + Duration::from_secs(2);
    run(&mut r, t2);
    assert!(r.view().rules.iter().all(|v| v.state == "installed"));
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn eexist_asks_for_a_dump_that_settles_it() {
    let mut r = core();
    let now = Instant::now();
    dump(&mut r, &[]);
    let ops = r.poll(now);
    for op in &ops {
        r.result(op, Err(RuleError::Exists), now);
    }
    assert!(r.wants_dump());
    // The dump shows they are ours after all (an earlier run's, missed).
    let ours: Vec<_> = ops.iter().map(|o| (o.rule().clone(), PROTO)).collect();
    dump(&mut r, &ours);
    assert!(!r.wants_dump());
    let later = now + Duration::from_secs(120);
    assert!(r.poll(later).is_empty(), "adopted: no retry of the adds");
    assert!(r.view().rules.iter().all(|v| v.state == "installed"));
}

#[test]
fn a_new_range_moves_our_rules_and_forgets_the_old_one() {
    let (mut r, foreign, now) = installed_beside_a_foreign_rule();
    let to = PriorityRange {
        first: 5000,
        last: 5999,
    };
    assert!(r.set_range(to).is_empty());
    let mut kernel = installed_now(&r);
    kernel.push(foreign.clone());
    dump(&mut r, &kernel);
    let ops = run(&mut r, now);
    assert_eq!(added(&ops).len(), 5);
    assert!(added(&ops).iter().all(|a| to.contains(a.1)));
    assert_eq!(deleted(&ops).len(), 5);
    assert!(deleted(&ops).iter().all(|d| d.1 >= 20000 && d.1 != 20003));
    assert!(r.old_ranges.is_empty(), "nothing of ours left there");
    // The foreign rule at 20003 is now outside every owned range: not even reported.
    let mut kernel = installed_now(&r);
    kernel.push(foreign);
    dump(&mut r, &kernel);
    assert!(r.poll(now).is_empty());
    assert!(r.view().foreign.is_empty());
}

#[test]
fn rules_that_do_not_fit_are_reported_not_installed() {
    let mut r = Rules::new(
        PROTO,
        PriorityRange {
            first: 100,
            last: 119,
        },
    );
    let mut views = two_views();
    views.push(view("mgmt", 3, 103, &["fwmark = \"0x3\""]));
    let unplaced = r.set_views(views);
    assert_eq!(unplaced.len(), 1, "{unplaced:?}");
    assert!(
        unplaced[0].starts_with("view mgmt: view id 3"),
        "{unplaced:?}"
    );
    dump(&mut r, &[]);
    let ops = run(&mut r, Instant::now());
    assert_eq!(added(&ops).len(), 5);
    assert_eq!(r.view().unplaced, unplaced);
}

#[test]
fn families_follow_from_and_ipv6_only_by_the_null_prefix() {
    let v6only = KernelRule::from_match(&rule("dscp = 46\nfrom = \"::/0\""), 7, 101);
    assert_eq!(v6only.len(), 1);
    assert_eq!(v6only[0].family, Ipv6);
    assert_eq!(v6only[0].from, None, "a /0 is no source selector");
    assert_eq!(v6only[0].tos, 46 << 2);
    let both = KernelRule::from_match(&rule("fwmark = \"0x20/0xf0\""), 7, 101);
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].selector(), "from all fwmark 0x20/0xf0");
    let every_uid = KernelRule::from_match(&rule("uid = \"0-4294967295\"\niif = \"lo\""), 7, 1);
    assert_eq!(every_uid[0].uid, None, "as the kernel reports it: no range");
}

#[test]
fn stop_with_remove_deletes_every_rule_of_ours_and_nothing_else() {
    let (mut r, _, _) = installed_beside_a_foreign_rule();
    let ops = r.remove_all();
    assert_eq!(deleted(&ops).len(), 5);
    assert!(ops.iter().all(|o| o.rule().priority != 20003));
}
