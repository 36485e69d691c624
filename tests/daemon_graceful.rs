//! Graceful restart (RFC 4724) as operators see it: `show neighbors` carries
//! both sides' capability (restart time, R and F bits) and, once a GR peer's
//! session dropped without NOTIFICATION, the helper state (routes kept stale,
//! time left); `show protocols` prints the same in one column.

mod common;

use common::*;
use kittbgpd::ctl::Request;
use kittbgpd::wire::{AfiSafi, Capability};

#[test]
fn show_neighbors_has_both_sides_then_the_helper_state() {
    // No kernel routes: nothing adopted from an earlier run, so no restart (no
    // R bit) and no forwarding state kept (no F bits) on our side.
    let d = start_daemon_opts(
        "[kernel]\nenabled = false\n",
        "graceful_restart = true\nrestart_time = 60\n",
        &[],
    );
    let mut p = Peer::ready(d.port);
    let mut caps = default_caps(AS);
    caps.push(Capability::GracefulRestart {
        restart_state: true,
        notification: false,
        restart_time: 30,
        families: vec![(AfiSafi::IPV4_UNICAST, 0x80)],
    });
    p.establish_with(caps);
    wait_until("Established", || d.neighbor()["state"] == "Established");
    let gr = d.neighbor()["graceful_restart"].clone();
    assert_eq!(gr["negotiated"], true, "{gr}");
    // Not restarted (no kernel routes of an earlier run): no R bit from us.
    assert_eq!(gr["local"]["restart_state"], false, "{gr}");
    assert_eq!(gr["local"]["restart_time"], 60, "{gr}");
    assert_eq!(gr["local"]["forwarding"], serde_json::json!([]), "{gr}");
    assert_eq!(gr["remote"]["restart_state"], true, "{gr}");
    assert_eq!(gr["remote"]["restart_time"], 30, "{gr}");
    assert_eq!(
        gr["remote"]["forwarding"],
        serde_json::json!(["ipv4-unicast"])
    );
    let (ok, text, err) = d.cli(&["show", "protocols"]);
    assert!(
        ok && text.contains("on (peer 30 s, F ipv4-unicast, peer restarted)"),
        "{text}{err}"
    );

    // ORIGIN IGP, empty AS_PATH, NEXT_HOP 127.0.0.2, LOCAL_PREF 100; NLRI 10.0.0.7/32.
    p.send_raw(&ipv4_announce(
        &["10.0.0.7/32".parse().unwrap()],
        "127.0.0.2".parse().unwrap(),
    ));
    wait_until("route learned", || {
        d.routes(true, false)
            .iter()
            .any(|r| r["prefix"] == "10.0.0.7/32")
    });
    // The connection drops without NOTIFICATION: the route stays, stale.
    drop(p);
    wait_until("helper state", || {
        d.neighbor()["routes"]["graceful_helper"] == true
    });
    let r = d.neighbor()["routes"].clone();
    assert_eq!(r["stale"], 1, "{r}");
    assert!(r["stale_left_s"].as_u64().is_some_and(|s| s <= 30), "{r}");
    assert!(d
        .routes(true, false)
        .iter()
        .any(|r| r["prefix"] == "10.0.0.7/32"));
    let (ok, text, err) = d.cli(&["show", "protocols"]);
    assert!(ok && text.contains("helper: 1 stale, "), "{text}{err}");
    let (ok, text, err) = d.cli(&["show", "neighbors"]);
    assert!(
        ok && text.contains("graceful restart helper: 1 stale"),
        "{text}{err}"
    );
    assert!(
        d.show(&Request::Neighbors)[0]["graceful_restart"].is_null(),
        "session down"
    );
}
