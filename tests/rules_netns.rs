//! The views' policy rules against a real kernel (root only; skipped
//! otherwise): the rules task of `runtime::rules_task`, driven directly, in
//! a network namespace of the test's own thread (gone with the thread).
//!
//! Checked: two views' rules appear in `ip rule` / `ip -6 rule` at their
//! priorities with our protocol; another protocol's rule in the range and
//! ours outside it are left alone; a restart adopts the rules (nothing added
//! or removed); a reload removing a view removes exactly its rules; packets
//! marked with `ping -m` leave by the view's table, unmarked ones by main;
//! DSCP rules follow the kernel's semantics (IPv4: DSCP modulo 8; IPv6: the
//! whole DSCP, ECN bits left out).

use kittbgpd::config::view_rule::FileRule;
use kittbgpd::config::views::PriorityRange;
use kittbgpd::config::OnStop;
use kittbgpd::rules::{RulesView, ViewRules};
use kittbgpd::runtime::rules_task::{self, RulesHandle};
use std::process::Command;
use std::time::Duration;

#[path = "common/netns.rs"]
mod netns;
use netns::sh;

const PROTO: u8 = 200;

fn view(name: &str, id: u8, table: u32, rules: &[&str]) -> ViewRules {
    let rules = rules
        .iter()
        .map(|r| toml::from_str::<FileRule>(r).unwrap().check().unwrap())
        .collect();
    ViewRules {
        name: name.into(),
        id,
        table,
        rules,
    }
}

fn views() -> Vec<ViewRules> {
    vec![
        view(
            "latency",
            1,
            101,
            &[
                "fwmark = \"0x1\"",
                "dscp = 1",
                "from = \"10.9.0.0/16\"\niif = \"a1\"",
            ],
        ),
        view(
            "hops",
            2,
            102,
            &["uid = \"1000-1999\"", "dscp = 46\nfrom = \"::/0\""],
        ),
    ]
}

/// (priority, table, protocol, selector) of each rule of a family, from `ip -j rule`.
fn rules(family: &str) -> Vec<(u64, String, String, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&sh(&format!("ip {family} -j rule show"))).unwrap();
    let s = |r: &serde_json::Value, k: &str| r.get(k).and_then(|x| x.as_str()).map(String::from);
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut sel = format!("from {}", s(r, "src").unwrap_or_default());
            if let Some(len) = r.get("srclen") {
                sel.push_str(&format!("/{len}"));
            }
            for k in ["iif", "fwmark", "tos", "uid_start", "uid_end"] {
                if let Some(x) = r.get(k) {
                    sel.push_str(&format!(" {k} {}", x.to_string().trim_matches('"')));
                }
            }
            (
                r["priority"].as_u64().unwrap(),
                s(r, "table").unwrap_or_default(),
                s(r, "protocol").unwrap_or_default(),
                sel,
            )
        })
        .collect()
}

fn in_range(family: &str) -> Vec<(u64, String, String, String)> {
    rules(family)
        .into_iter()
        .filter(|r| (20000..=20999).contains(&r.0))
        .collect()
}

fn tx_packets(dev: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&sh(&format!("ip -j -s link show dev {dev}"))).unwrap();
    v[0]["stats64"]["tx"]["packets"].as_u64().unwrap()
}

/// Packets sent by `ping ARGS` leaving by a1 and by a2.
fn ping_out(args: &str) -> (u64, u64) {
    let (a1, a2) = (tx_packets("a1"), tx_packets("a2"));
    // No one answers: only what leaves counts.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ping -q -c 20 -i 0.005 -W 0.2 {args} >/dev/null 2>&1"
        ))
        .status();
    (tx_packets("a1") - a1, tx_packets("a2") - a2)
}

async fn settled(h: &RulesHandle) -> RulesView {
    // Until every wanted rule is installed (the task works at once; the
    // bound only keeps a broken run from hanging).
    for _ in 0..200 {
        let v = h.view().await.expect("rules task alive");
        if v.rules.iter().all(|r| r.state == "installed") {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("rules not installed: {:?}", h.view().await);
}

fn setup() {
    for c in [
        "ip link set lo up",
        "ip link add a1 type veth peer name b1",
        "ip link add a2 type veth peer name b2",
        "for i in a1 b1 a2 b2; do ip link set $i up; done",
        "ip addr add 192.0.2.1/25 dev a1",
        "ip addr add 192.0.2.129/25 dev a2",
        "ip -6 addr add 2001:db8:1::1/64 dev a1 nodad",
        "ip -6 addr add 2001:db8:2::1/64 dev a2 nodad",
        "ip neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 dev a1 nud permanent",
        "ip neigh add 192.0.2.130 lladdr 02:00:00:00:00:03 dev a2 nud permanent",
        "ip -6 neigh add 2001:db8:1::2 lladdr 02:00:00:00:00:02 dev a1 nud permanent",
        "ip -6 neigh add 2001:db8:2::2 lladdr 02:00:00:00:00:03 dev a2 nud permanent",
        // main: by a2; the latency view's table 101: by a1.
        "ip route add 203.0.113.1 via 192.0.2.130 dev a2",
        "ip route add 203.0.113.1 via 192.0.2.2 dev a1 table 101",
        "ip -6 route add 2001:db8:99::1 via 2001:db8:2::2 dev a2",
        "ip -6 route add 2001:db8:99::1 via 2001:db8:1::2 dev a1 table 101",
        // The hops view's table 102: by a1 too, for IPv6 (its DSCP rule).
        "ip -6 route add 2001:db8:99::1 via 2001:db8:1::2 dev a1 table 102",
        // Not ours: another protocol in the range, ours outside it.
        "ip rule add pref 20005 fwmark 0x9 lookup 109 proto 99",
        "ip -6 rule add pref 20006 fwmark 0x9 lookup 109 proto 99",
        "ip rule add pref 19999 fwmark 0x9 lookup 109 proto 200",
    ] {
        sh(c);
    }
}

async fn scenario() {
    setup();
    let foreign4 = (20005, "109".to_string(), "openr".to_string());
    let range = PriorityRange::default();
    let h = rules_task::spawn(PROTO, range, views(), OnStop::Keep)
        .await
        .unwrap();
    let v = settled(&h).await;
    assert_eq!(v.counts.added, 8, "{v:?}");
    let v4: Vec<_> = in_range("")
        .into_iter()
        .map(|r| (r.0, r.1, r.2, r.3))
        .collect();
    let ours = |rules: &[(u64, String, String, String)]| -> Vec<(u64, String, String)> {
        (rules.iter())
            .filter(|r| r.2 == "200")
            .map(|r| (r.0, r.1.clone(), r.3.clone()))
            .collect()
    };
    assert_eq!(
        ours(&v4),
        [
            (20000, "101".into(), "from all fwmark 0x1".into()),
            (20001, "101".into(), "from all tos 0x04".into()),
            (20002, "101".into(), "from 10.9.0.0/16 iif a1".into()),
            (
                20010,
                "102".into(),
                "from all uid_start 1000 uid_end 1999".into()
            ),
        ],
        "{v4:?}"
    );
    let v6 = in_range("-6");
    assert_eq!(
        ours(&v6),
        [
            (20000, "101".into(), "from all fwmark 0x1".into()),
            (20001, "101".into(), "from all tos 0x04".into()),
            (
                20010,
                "102".into(),
                "from all uid_start 1000 uid_end 1999".into()
            ),
            (20011, "102".into(), "from all tos EF".into()),
        ],
        "{v6:?}"
    );
    // Left alone, and reported.
    assert!(v4
        .iter()
        .any(|r| (r.0, r.1.clone(), r.2.clone()) == foreign4));
    assert!(v6.iter().any(|r| r.0 == 20006 && r.2 == "openr"));
    assert!(rules("").iter().any(|r| r.0 == 19999 && r.2 == "200"));
    assert_eq!(v.foreign.len(), 2, "{v:?}");

    // Packets: marked ones take the view's table (a1), others main (a2).
    let (a1, a2) = ping_out("-m 1 203.0.113.1");
    assert!(a1 >= 20 && a2 < 20, "IPv4 marked: a1 {a1}, a2 {a2}");
    let (a1, a2) = ping_out("203.0.113.1");
    assert!(a2 >= 20 && a1 < 20, "IPv4 unmarked: a1 {a1}, a2 {a2}");
    let (a1, a2) = ping_out("-6 -m 1 2001:db8:99::1");
    assert!(a1 >= 20 && a2 < 20, "IPv6 marked: a1 {a1}, a2 {a2}");
    let (a1, a2) = ping_out("-6 2001:db8:99::1");
    assert!(a2 >= 20 && a1 < 20, "IPv6 unmarked: a1 {a1}, a2 {a2}");
    // IPv4 DSCP: the kernel compares DSCP modulo 8 (dscp = 1 takes 9, not 8).
    let (a1, _) = ping_out("-Q 0x04 203.0.113.1");
    assert!(a1 >= 20, "DSCP 1: a1 {a1}");
    let (a1, _) = ping_out("-Q 0x24 203.0.113.1");
    assert!(a1 >= 20, "DSCP 9 (1 modulo 8): a1 {a1}");
    let (a1, a2) = ping_out("-Q 0x20 203.0.113.1");
    assert!(a2 >= 20 && a1 < 20, "DSCP 8: a1 {a1}, a2 {a2}");
    // IPv6 DSCP: the whole code point, ECN bits left out (EF = 46 = 0xb8).
    let (a1, _) = ping_out("-6 -Q 0xb8 2001:db8:99::1");
    assert!(a1 >= 20, "IPv6 DSCP 46: a1 {a1}");
    let (a1, _) = ping_out("-6 -Q 0xb9 2001:db8:99::1");
    assert!(a1 >= 20, "IPv6 DSCP 46 with ECT(1): a1 {a1}");
    let (a1, a2) = ping_out("-6 -Q 0xb0 2001:db8:99::1");
    assert!(a2 >= 20 && a1 < 20, "IPv6 DSCP 44: a1 {a1}, a2 {a2}");

    // Restart: a new task adopts every rule, adds and removes nothing.
    h.stop(Duration::from_secs(5)).await;
    let before = (in_range(""), in_range("-6"));
    let h = rules_task::spawn(PROTO, range, views(), OnStop::Keep)
        .await
        .unwrap();
    let v = settled(&h).await;
    assert_eq!((v.counts.added, v.counts.deleted), (0, 0), "{v:?}");
    assert_eq!((in_range(""), in_range("-6")), before);

    // A rule removed by hand comes back at the next dump.
    sh("ip rule del pref 20010 proto 200");
    let mut back = false;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if in_range("") == before.0 {
            back = true;
            break;
        }
    }
    assert!(back, "{:?}", in_range(""));

    // Reload without the hops view: exactly its rules go.
    h.set_desired(views().into_iter().filter(|v| v.name != "hops").collect());
    let v = settled(&h).await;
    let gone = |b: &[(u64, String, String, String)], now: &[(u64, String, String, String)]| {
        b.iter()
            .filter(|r| !now.contains(r))
            .map(|r| (r.0, r.1.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(gone(&before.0, &in_range("")), [(20010, "102".into())]);
    assert_eq!(
        gone(&before.1, &in_range("-6")),
        [(20010, "102".into()), (20011, "102".into())]
    );
    assert!(before.0.len() - 1 == in_range("").len());
    assert_eq!(v.counts.deleted, 3, "{v:?}");

    // on_stop = remove: every rule of ours goes, nothing else.
    h.stop(Duration::from_secs(5)).await;
    let h = rules_task::spawn(PROTO, range, views(), OnStop::Remove)
        .await
        .unwrap();
    settled(&h).await;
    h.stop(Duration::from_secs(5)).await;
    assert!(
        in_range("").iter().all(|r| r.2 != "200"),
        "{:?}",
        in_range("")
    );
    assert!(in_range("-6").iter().all(|r| r.2 != "200"));
    assert!(rules("").iter().any(|r| r.0 == 19999 && r.2 == "200"));
    assert!(rules("").iter().any(|r| r.0 == 20005));
}

#[test]
fn rules_in_a_fresh_network_namespace() {
    netns::in_fresh_netns(scenario);
}
