//! The kernel FIB task against a real kernel with two tables (root only;
//! skipped otherwise), in a network namespace of the test's own thread.
//!
//! Checked: the same prefix goes into main and a view's table 102 with
//! different next hops; a route of ours left in table 103 (a view no longer
//! configured) is deleted at start; another protocol's route in 104 (not
//! ours) stays, and another protocol's route in 102 is a conflict there
//! (left alone, reported not forwardable for table 102 only); `on_stop =
//! remove` removes ours from both tables and nothing else.

use kittbgpd::fib::{KernelView, PrefixState};
use kittbgpd::runtime::fib_task::{FibMsg, FibTask};
use kittbgpd::runtime::rib_task::RibMsg;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[path = "common/netns.rs"]
mod netns;
use netns::sh;

/// `ip route show table N` for our loopback range, one line per route.
fn table(n: u32) -> Vec<String> {
    let out = sh(&format!("ip -N route show table {n} root 10.255.0.0/16"));
    out.lines().map(|l| l.trim().to_string()).collect()
}

const CONFIG: &str = "router_id = \"10.255.0.1\"\nlocal_as = 65000\n[loopbacks]\n\
    ipv4 = [\"10.255.0.0/16\"]\noriginate = [\"10.255.0.1/32\"]\n\
    [kernel]\non_stop = \"remove\"\nstartup_grace = 600\n";

fn setup() {
    for c in [
        "ip link set lo up",
        "ip link add a1 type veth peer name b1",
        "ip link add a2 type veth peer name b2",
        "for i in a1 b1 a2 b2; do ip link set $i up; done",
        "ip addr add 192.0.2.1/25 dev a1",
        "ip addr add 192.0.2.129/25 dev a2",
        // Ours in a table no view owns any more.
        "ip route add 10.255.0.9/32 via 192.0.2.2 dev a1 table 103 proto 200 metric 32",
        // Another protocol's in a table not ours, and in the view's table.
        "ip route add 10.255.0.8/32 via 192.0.2.2 dev a1 table 104 proto 4 metric 32",
        "ip route add 10.255.0.7/32 via 192.0.2.2 dev a1 table 102 proto 99 metric 32",
    ] {
        sh(c);
    }
}

async fn view(fib: &mpsc::UnboundedSender<FibMsg>, table: Option<u32>) -> Vec<KernelView> {
    let (reply, rx) = oneshot::channel();
    fib.send(FibMsg::View { table, reply }).unwrap();
    rx.await.unwrap()
}

fn route(p: &str, gw: &str, dev: &str) -> kittbgpd::runtime::fib_task::Route {
    let via = (gw.parse().unwrap(), Some(dev.into()));
    (p.parse().unwrap(), Some(via))
}

async fn scenario() {
    setup();
    let config = kittbgpd::config::parse(CONFIG, "t").unwrap();
    let (rib_tx, mut rib_rx) = mpsc::channel(64);
    let task = FibTask::start(
        config.kernel.clone(),
        &[254, 102],
        &config.loopbacks,
        &config.overlay,
        rib_tx,
    )
    .await
    .unwrap();
    let (fib, rx) = mpsc::unbounded_channel();
    let running = tokio::spawn(task.run(rx));
    fib.send(FibMsg::Routes {
        table: 254,
        routes: vec![route("10.255.0.3/32", "192.0.2.2", "a1")],
    })
    .unwrap();
    fib.send(FibMsg::Routes {
        table: 102,
        routes: vec![
            route("10.255.0.3/32", "192.0.2.130", "a2"),
            route("10.255.0.7/32", "192.0.2.130", "a2"),
        ],
    })
    .unwrap();
    // Both batches taken and run: room given back, and the conflict reported.
    let (mut ready, mut blocked) = (0, Vec::new());
    while ready < 2 || blocked.is_empty() {
        match tokio::time::timeout(Duration::from_secs(10), rib_rx.recv()).await {
            Ok(Some(RibMsg::FibReady { batches })) => ready += batches,
            Ok(Some(RibMsg::Forwarding { table, prefix, ok })) => {
                blocked.push((table, prefix.to_string(), ok))
            }
            Ok(Some(_)) => {}
            other => panic!("FIB task: {other:?}"),
        }
    }
    assert_eq!(blocked, [(102, "10.255.0.7/32".to_string(), false)]);
    assert_eq!(
        table(254),
        ["10.255.0.3 via 192.0.2.2 dev a1 proto 200 metric 32"]
    );
    assert_eq!(
        table(102),
        [
            "10.255.0.3 via 192.0.2.130 dev a2 proto 200 metric 32",
            "10.255.0.7 via 192.0.2.2 dev a1 proto 99 metric 32",
        ]
    );
    assert!(table(103).is_empty(), "ours in 103: deleted");
    assert_eq!(table(104).len(), 1, "another protocol's in 104: left alone");
    let v = view(&fib, Some(102)).await;
    let states: Vec<_> = v
        .iter()
        .map(|k| (k.table, k.prefix.to_string(), k.state))
        .collect();
    assert_eq!(
        states,
        [
            (102, "10.255.0.3/32".to_string(), PrefixState::Installed),
            (102, "10.255.0.7/32".to_string(), PrefixState::Conflict),
        ]
    );
    assert_eq!(view(&fib, None).await.len(), 3);
    // Stop with on_stop = remove: ours go from both tables, nothing else.
    let (done, stopped) = oneshot::channel();
    fib.send(FibMsg::Stop { done }).unwrap();
    stopped.await.unwrap();
    running.await.unwrap();
    assert!(table(254).is_empty());
    assert_eq!(
        table(102),
        ["10.255.0.7 via 192.0.2.2 dev a1 proto 99 metric 32"]
    );
    assert_eq!(table(104).len(), 1);
}

#[test]
fn two_kernel_tables_in_a_fresh_network_namespace() {
    netns::in_fresh_netns(scenario);
}
