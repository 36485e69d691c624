//! Human-readable tables for the CLI.

use super::RouteView;
use crate::session::HoldReason;
use serde_json::Value;
use std::fmt::Write;

pub(super) fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(x) => x.to_string(),
    }
}

pub fn render_neighbors(list: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<26} {:<12} {:<16} {:>19} {:>8}  Info",
        "Name", "Address", "State", "Since", "Routes acc/filt/lim", "Adv"
    );
    for n in list.as_array().into_iter().flatten() {
        let addr = match (
            n.get("interface").and_then(Value::as_str),
            n.get("multihop"),
        ) {
            (Some(i), _) => format!("{}%{}", s(n, "address"), i),
            (None, Some(_)) => format!("{} multihop", s(n, "address")),
            (None, None) => s(n, "address"),
        };
        let since = n
            .get("since")
            .and_then(Value::as_u64)
            .map_or("-".into(), format_age);
        let r = n.get("routes").cloned().unwrap_or_default();
        let held: Vec<String> = n
            .get("held_down")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_value::<HoldReason>(r.clone()).ok())
            .map(|r| match r {
                HoldReason::NoRoute => format!("no route to {} in the underlay", s(n, "address")),
                HoldReason::Bfd => match n.pointer("/bfd/last_down").and_then(Value::as_str) {
                    Some(why) => format!("{} ({why})", r.as_str()),
                    None => r.as_str().to_string(),
                },
                HoldReason::Probe => match n.pointer("/link/last_down").and_then(Value::as_str) {
                    Some(why) => format!("{} ({why})", r.as_str()),
                    None => r.as_str().to_string(),
                },
                HoldReason::Damped => match n.pointer("/link/damping").filter(|d| d.is_object()) {
                    Some(d) => format!(
                        "{} ({} flaps, penalty {}, reuse in {:.0} s)",
                        r.as_str(),
                        s(d, "flaps"),
                        s(d, "penalty"),
                        d.get("reuse_in_s").and_then(Value::as_f64).unwrap_or(0.0)
                    ),
                    None => r.as_str().to_string(),
                },
                r => r.as_str().to_string(),
            })
            .collect();
        let info = if !held.is_empty() {
            format!("held down: {}", held.join(", "))
        } else if s(n, "state") == "Established" {
            let mut info = format!("router id {}", s(n, "remote_id"));
            // End-of-RIB received (RFC 4724), per family.
            let eor: Vec<&str> = [("end_of_rib_ipv4", "ipv4"), ("end_of_rib_ipv6", "ipv6")]
                .into_iter()
                .filter(|(k, _)| r.get(*k).and_then(Value::as_bool) == Some(true))
                .map(|(_, f)| f)
                .collect();
            if !eor.is_empty() {
                let _ = write!(info, ", end-of-rib {}", eor.join(" "));
            }
            let gr = super::graceful::gr_summary(n);
            if gr != "-" {
                let _ = write!(info, ", graceful restart {gr}");
            }
            // Routing views: the view families (SAFI 241) of the session.
            let views: Vec<&str> = [("ipv4_unicast", "ipv4"), ("ipv6_unicast", "ipv6")]
                .into_iter()
                .filter(|(k, _)| {
                    n.pointer(&format!("/negotiated/views/{k}"))
                        .and_then(Value::as_bool)
                        == Some(true)
                })
                .map(|(_, f)| f)
                .collect();
            if !views.is_empty() {
                let _ = write!(info, ", views {}", views.join(" "));
            }
            if let Some(m) = r
                .get("missing_local_pref")
                .and_then(Value::as_u64)
                .filter(|m| *m > 0)
            {
                let _ = write!(info, ", {m} updates without local-pref");
            }
            info
        } else if r.get("graceful_helper").and_then(Value::as_bool) == Some(true) {
            format!("graceful restart {}", super::graceful::gr_summary(n))
        } else {
            n.get("last_error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let info = match r.get("filtered_dropped").and_then(Value::as_u64) {
            Some(d) if d > 0 => format!(
                "{info}{}{d} filtered dropped (filtered_limit {})",
                if info.is_empty() { "" } else { ", " },
                s(&r, "filtered_limit")
            ),
            _ => info,
        };
        let limit = match r.get("limit").and_then(Value::as_u64) {
            Some(0) | None => "-".to_string(),
            Some(l) => l.to_string(),
        };
        let routes = format!("{}/{}/{}", s(&r, "accepted"), s(&r, "filtered"), limit);
        let _ = writeln!(
            out,
            "{:<12} {:<26} {:<12} {:<16} {:>19} {:>8}  {}",
            s(n, "name"),
            addr,
            s(n, "state"),
            since,
            routes,
            s(&r, "advertised"),
            info
        );
    }
    out
}

pub(super) fn format_age(unix: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let age = now.saturating_sub(unix);
    format!("{}h{:02}m{:02}s", age / 3600, age / 60 % 60, age % 60)
}

pub fn render_routes(list: &[RouteView]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:<10} {:<28} {:>11} {:>6}  Status",
        "Prefix", "From", "Next hop", "MED", "LPref"
    );
    for r in list {
        let nh = match (&r.next_hop, &r.interface) {
            (Some(nh), Some(i)) => format!("{nh}%{i}"),
            (Some(nh), None) => nh.clone(),
            _ => "-".into(),
        };
        let mut status = match &r.reason {
            Some(reason) => format!("{} ({reason})", r.status),
            None => r.status.clone(),
        };
        if let Some(k) = r.kernel.as_deref().filter(|k| *k != "installed") {
            let _ = write!(status, ", kernel: {k}, not exported");
        }
        let med = r.med.map_or("-".into(), |m| m.to_string());
        let lp = r.local_pref.map_or("-".into(), |m| m.to_string());
        if let Some(id) = r.path_id {
            let _ = write!(status, ", path {id}");
        }
        let _ = writeln!(
            out,
            "{:<22} {:<10} {:<28} {:>11} {:>6}  {}",
            r.prefix, r.peer, nh, med, lp, status
        );
    }
    out
}

/// `show explain PREFIX`: every candidate, the MED breakdown, why each loser lost.
pub fn render_explain(e: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: best path {}",
        s(e, "prefix"),
        e.get("best").and_then(Value::as_str).unwrap_or("none")
    );
    for c in e
        .get("candidates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let best = c.get("best").and_then(Value::as_bool).unwrap_or(false);
        let cost = if c
            .get("link_cost_unknown")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            format!("{} (no cost known)", s(c, "link_cost"))
        } else {
            s(c, "link_cost")
        };
        let path = match c.get("path_id").and_then(Value::as_u64) {
            Some(id) => format!(" path {id}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{} from {}{path} via {}",
            if best { "*" } else { " " },
            s(c, "peer"),
            s(c, "next_hop")
        );
        match c.get("interior_cost").filter(|v| !v.is_null()) {
            // An overlay path: MED as received, the exit's underlay cost decides.
            Some(_) => {
                let _ = writeln!(
                    out,
                    "    exit {}: underlay cost {}, resolved via {}; MED {} (as received)",
                    s(c, "next_hop"),
                    s(c, "interior_cost"),
                    s(c, "resolved_via"),
                    s(c, "med")
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "    MED {} = received {} + link cost {}",
                    s(c, "med"),
                    s(c, "received_med"),
                    cost
                );
            }
        }
        let cl: Vec<&str> = c
            .get("cluster_list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let _ = writeln!(
            out,
            "    local pref {}, origin {}, originator {}, cluster list [{}]",
            s(c, "local_pref"),
            s(c, "origin"),
            s(c, "originator_id"),
            cl.join(" ")
        );
        match c.get("lost") {
            Some(l) if !l.is_null() => {
                let _ = writeln!(
                    out,
                    "    lost to {} at step {}: {}",
                    s(l, "against"),
                    s(l, "step"),
                    s(l, "reason")
                );
            }
            _ if best => {
                let _ = writeln!(out, "    best path");
            }
            _ => {}
        }
    }
    for f in e
        .get("filtered")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  filtered from {} via {}: {}",
            s(f, "peer"),
            s(f, "next_hop"),
            s(f, "reason_text")
        );
    }
    out
}

/// `show links`: per measured link, RTT and cost now, and the last cost changes.
pub fn render_links(list: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<8} {:>10} {:>12} {:>7} {:>10}",
        "Link", "State", "RTT ms", "Smoothed ms", "Loss", "Cost"
    );
    let ms = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |x| format!("{x:.2}"))
    };
    for l in list.as_array().into_iter().flatten() {
        let loss = l
            .get("loss")
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |x| format!("{:.0}%", x * 100.0));
        let _ = writeln!(
            out,
            "{:<12} {:<8} {:>10} {:>12} {:>7} {:>10}",
            s(l, "name"),
            s(l, "state"),
            ms(l, "last_rtt_ms"),
            ms(l, "smoothed_rtt_ms"),
            loss,
            s(l, "cost")
        );
        for line in [detector_line(l), damping_line(l)].into_iter().flatten() {
            let _ = writeln!(out, "    {line}");
        }
        for h in l
            .get("history")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .rev()
            .take(5)
        {
            let ago = h
                .get("ago_s")
                .and_then(Value::as_f64)
                .map_or("-".to_string(), |a| format!("{a:.0} s ago"));
            let (old, new) = (s(h, "old"), s(h, "new"));
            let (old, new) = (
                if old == "-" { "down".to_string() } else { old },
                if new == "-" { "down".to_string() } else { new },
            );
            let _ = writeln!(out, "    {ago}: {old} -> {new}  {}", s(h, "reason"));
        }
        if let Some(p) = probe_line(l) {
            let _ = writeln!(out, "    {p}");
        }
        if let Some(t) = l.get("tunnel") {
            let _ = writeln!(out, "    {}", super::tunnels::tunnel_line(t));
        }
    }
    out
}

/// The step detector of a link: the level it tracks, the link's jitter, the
/// evidence of a shift (1.0 confirms it) and where that shift would land.
fn detector_line(l: &Value) -> Option<String> {
    let d = l.get("detector")?;
    let provisional = l.get("provisional").and_then(Value::as_bool) == Some(true);
    let Some(level) = d.get("level_ms").and_then(Value::as_f64) else {
        return provisional.then(|| "cost provisional (until the window is full)".to_string());
    };
    let mut line = format!(
        "detector: level {level:.2} ms, jitter {:.1} %, evidence {:.2}",
        d.get("scale").and_then(Value::as_f64).unwrap_or(0.0) * 100.0,
        d.get("evidence").and_then(Value::as_f64).unwrap_or(0.0)
    );
    if let Some(c) = d.get("candidate_ms").and_then(Value::as_f64) {
        let _ = write!(
            line,
            ", candidate {c:.2} ms ({} samples)",
            s(d, "candidate_samples")
        );
    }
    // Bursts of extra probes (a shift suspected), once there was one.
    if let Some(b) = l
        .get("burst")
        .filter(|b| b.get("bursts").and_then(Value::as_u64).unwrap_or(0) > 0)
    {
        let _ = write!(
            line,
            "; bursts {} ({} extra probes, {} over budget){}",
            s(b, "bursts"),
            s(b, "probes"),
            s(b, "over_budget"),
            if b.get("active").and_then(Value::as_bool) == Some(true) {
                ", one under way"
            } else {
                ""
            }
        );
    }
    Some(line)
}

/// Flap damping of a link, when it has a penalty.
fn damping_line(l: &Value) -> Option<String> {
    let d = l.get("damping").filter(|d| !d.is_null())?;
    let mut line = format!(
        "damping: {} flaps, penalty {}",
        s(d, "flaps"),
        s(d, "penalty")
    );
    if d.get("suppressed").and_then(Value::as_bool) == Some(true) {
        let reuse = d.get("reuse_in_s").and_then(Value::as_f64).unwrap_or(0.0);
        let _ = write!(line, ", suppressed: stays down, reuse in {reuse:.0} s");
    }
    Some(line)
}

/// The probe in use on a link and its counters: the stream's (kernel-time
/// RTT, loss per direction) or ICMPv6 echo's.
fn probe_line(l: &Value) -> Option<String> {
    let probe = l.get("probe")?.as_str()?;
    let n = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_u64);
    let st = l.get("stream");
    let pct = |lost: Option<u64>, of: Option<u64>| match (lost, of) {
        (Some(l), Some(o)) if l + o > 0 => format!("{:.1}%", l as f64 * 100.0 / (l + o) as f64),
        _ => "-".into(),
    };
    let stream = format!(
        "stream sent {} received {} rtt(kernel) {} ms, loss to neighbor {} from neighbor {}",
        n(st, "sent").unwrap_or(0),
        n(st, "received").unwrap_or(0),
        st.and_then(|v| v.get("last_rtt_ms"))
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |x| format!("{x:.3}")),
        pct(n(st, "lost_to_neighbor"), n(st, "delivered_to_neighbor")),
        pct(n(st, "lost_from_neighbor"), n(st, "received")),
    );
    let ic = l.get("icmp");
    Some(match probe {
        "icmp" => format!(
            "probe icmp: echo sent {} answered {}",
            n(ic, "sent").unwrap_or(0),
            n(ic, "received").unwrap_or(0)
        ),
        "answer" => format!("probe answer (static cost): {stream}"),
        other => format!("probe {other}: {stream}"),
    })
}

/// `show kernel`: per prefix, the state of its kernel route and why when not installed.
pub fn render_kernel(list: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:<22} {:<10} {:<28} {:<28} Info",
        "Table", "Prefix", "State", "Desired", "Installed"
    );
    let route = |r: Option<&Value>| match r {
        Some(r) if !r.is_null() => format!("{}%{}", s(r, "gateway"), s(r, "interface")),
        _ => "-".into(),
    };
    for k in list.as_array().into_iter().flatten() {
        let info = match (s(k, "state").as_str(), k.get("foreign_protocol")) {
            ("conflict", Some(p)) if !p.is_null() => {
                format!("another route at our metric (proto {p}) holds it")
            }
            ("conflict", _) => "another route at our metric holds it".into(),
            ("failed", _) => s(k, "error"),
            ("stale", _) => "not desired (earlier run's, kept during the startup grace)".into(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<6} {:<22} {:<10} {:<28} {:<28} {}",
            k.get("table").map_or(String::new(), Value::to_string),
            s(k, "prefix"),
            s(k, "state"),
            route(k.get("desired")),
            route(k.get("installed")),
            info
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_show_the_probe_in_use() {
        let out = render_links(&json!([
            { "name": "n2", "state": "up", "probe": "stream",
              "stream": { "sent": 100, "received": 98, "last_rtt_ms": 0.123456,
                          "lost_to_neighbor": 1, "delivered_to_neighbor": 99,
                          "lost_from_neighbor": 2 },
              "icmp": { "sent": 0, "received": 0 } },
            { "name": "bird", "state": "up", "probe": "icmp",
              "stream": { "sent": 5 }, "icmp": { "sent": 40, "received": 39 } },
        ]));
        assert!(
            out.contains("probe stream: stream sent 100 received 98 rtt(kernel) 0.123 ms, loss to neighbor 1.0% from neighbor 2.0%"),
            "{out}"
        );
        assert!(
            out.contains("probe icmp: echo sent 40 answered 39"),
            "{out}"
        );
    }

    #[test]
    fn explain_names_the_exit_and_its_underlay_cost() {
        let out = render_explain(&json!({
            "prefix": "10.100.0.0/24", "best": "m2",
            "candidates": [
                { "peer": "m2", "next_hop": "10.255.0.2", "med": 0, "received_med": null,
                  "interior_cost": 15, "resolved_via": "n1 fe80::1:7", "local_pref": 100,
                  "origin": "IGP", "originator_id": null, "cluster_list": [], "best": true,
                  "lost": null },
                { "peer": "m5", "next_hop": "10.255.0.5", "med": 0, "received_med": null,
                  "interior_cost": 29, "resolved_via": "n1 fe80::1:7", "local_pref": 100,
                  "origin": "IGP", "originator_id": null, "cluster_list": [], "best": false,
                  "lost": { "against": "m2", "step": "interior_cost",
                            "reason": "lower underlay cost to the next hop preferred" } }
            ],
            "filtered": []
        }));
        assert!(
            out.contains("exit 10.255.0.2: underlay cost 15, resolved via n1 fe80::1:7"),
            "{out}"
        );
        assert!(out.contains("lost to m2 at step interior_cost"), "{out}");
        assert!(!out.contains("link cost"), "{out}");
    }

    #[test]
    fn links_show_the_detector_and_the_damping() {
        let l = serde_json::json!([{
            "name": "b", "state": "down", "last_rtt_ms": 10.2, "smoothed_rtt_ms": 10.0,
            "loss": 0.0, "cost": null, "provisional": false,
            "detector": {"level_ms": 10.0, "scale": 0.021, "evidence": 0.4,
                         "candidate_ms": 14.5, "candidate_samples": 3},
            "damping": {"flaps": 3, "penalty": 2412, "suppressed": true, "reuse_in_s": 41.2},
            "history": []
        }, {
            "name": "c", "state": "up", "cost": 20000, "provisional": true,
            "detector": {"level_ms": null, "scale": 0.01, "evidence": 0.0,
                         "candidate_ms": null, "candidate_samples": 0},
            "damping": null, "history": []
        }]);
        let out = render_links(&l);
        assert!(
            out.contains("    detector: level 10.00 ms, jitter 2.1 %, evidence 0.40, candidate 14.50 ms (3 samples)\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "    damping: 3 flaps, penalty 2412, suppressed: stays down, reuse in 41 s\n"
            ),
            "{out}"
        );
        // Not based yet: provisional; no penalty: no damping line.
        assert_eq!(out.matches("detector:").count(), 1, "{out}");
        assert!(
            out.contains("    cost provisional (until the window is full)\n"),
            "{out}"
        );
        assert_eq!(out.matches("damping:").count(), 1, "{out}");
    }

    #[test]
    fn kernel_view_says_why_a_route_is_not_installed() {
        let out = render_kernel(&json!([
            { "table": 102, "prefix": "10.255.0.3/32", "state": "conflict", "foreign_protocol": 3,
              "desired": { "prefix": "10.255.0.3/32", "gateway": "fe80::3:2", "interface": "wg3" },
              "installed": null },
            { "prefix": "10.255.0.4/32", "state": "failed", "error": "Network is unreachable",
              "desired": { "prefix": "10.255.0.4/32", "gateway": "fe80::3:2", "interface": "wg3" },
              "installed": null }
        ]));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[1].contains("conflict") && lines[1].contains("fe80::3:2%wg3"));
        assert!(lines[1].starts_with("102    10.255.0.3/32 "), "{out}");
        assert!(lines[1].ends_with("another route at our metric (proto 3) holds it"));
        assert!(lines[2].ends_with("Network is unreachable"));
    }

    #[test]
    fn neighbors_say_why_a_session_is_held_down() {
        let out = render_neighbors(&json!([
            { "name": "wg1", "address": "fe80::1:2", "state": "Idle",
              "last_error": "administrative stop", "held_down": ["import_limit", "interface"] }
        ]));
        assert!(out.lines().nth(1).unwrap().ends_with(
            "held down: import limit reached (disabled until `kittbgpd enable`), interface down"
        ));
        let out = render_neighbors(&json!([
            { "name": "rr", "address": "10.255.0.3", "multihop": 4, "state": "Idle", "held_down": ["no_route"] }
        ]));
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .contains(" 10.255.0.3 multihop "),
            "{out}"
        );
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .ends_with("held down: no route to 10.255.0.3 in the underlay"),
            "{out}"
        );
        let out = render_neighbors(&json!([
            { "name": "wg2", "address": "fe80::2:1", "state": "Idle", "held_down": ["bfd"],
              "bfd": { "state": "down", "last_down": "nothing heard for 300 ms (3 x 100 ms)" } }
        ]));
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .ends_with("held down: BFD session down (nothing heard for 300 ms (3 x 100 ms))"),
            "{out}"
        );
        let out = render_neighbors(&json!([
            { "name": "wg3", "address": "fe80::3:1", "state": "Idle", "held_down": ["probe"],
              "link": { "last_down": "nothing heard for 0.3 s (3 x 0.1 s), 3 probes unanswered", "damping": null } },
            { "name": "wg4", "address": "fe80::4:1", "state": "Idle", "held_down": ["damped"],
              "link": { "last_down": "x", "damping": { "flaps": 3, "penalty": 2412, "suppressed": true, "reuse_in_s": 41.2 } } }
        ]));
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[1].ends_with("held down: link dead (probes unanswered) (nothing heard for 0.3 s (3 x 0.1 s), 3 probes unanswered)"),
            "{out}"
        );
        assert!(
            lines[2].contains("(3 flaps, penalty 2412, reuse in 41 s)"),
            "{out}"
        );
    }

    #[test]
    fn neighbors_show_filtered_drops() {
        let list = serde_json::json!([{
            "name": "wg1", "address": "fe80::1", "interface": "wg1", "state": "Established",
            "remote_id": "10.0.0.2",
            "routes": { "accepted": 3, "filtered": 2, "limit": 1000, "advertised": 4,
                        "filtered_limit": 2, "filtered_dropped": 7 }
        }]);
        let text = render_neighbors(&list);
        assert!(
            text.contains("router id 10.0.0.2, 7 filtered dropped (filtered_limit 2)"),
            "{text}"
        );
    }

    #[test]
    fn neighbors_show_end_of_rib_and_missing_local_pref() {
        let v = serde_json::json!([{
            "name": "n1", "address": "fe80::1", "interface": "wg0", "state": "Established",
            "since": 0, "remote_id": "10.0.0.2",
            "routes": {"accepted": 1, "filtered": 0, "limit": 0, "advertised": 2,
                       "end_of_rib_ipv4": true, "end_of_rib_ipv6": false, "missing_local_pref": 3}
        }]);
        let text = render_neighbors(&v);
        assert!(
            text.contains("router id 10.0.0.2, end-of-rib ipv4, 3 updates without local-pref"),
            "{text}"
        );
    }

    #[test]
    fn neighbors_show_the_view_families() {
        let n = |views: serde_json::Value| {
            serde_json::json!([{
                "name": "n1", "address": "fe80::1", "interface": "wg0", "state": "Established",
                "since": 0, "remote_id": "10.0.0.2", "routes": {"accepted": 1},
                "negotiated": {"views": views}
            }])
        };
        let text = render_neighbors(&n(json!({"ipv4_unicast": true, "ipv6_unicast": true})));
        assert!(
            text.contains("router id 10.0.0.2, views ipv4 ipv6"),
            "{text}"
        );
        let text = render_neighbors(&n(serde_json::Value::Null));
        assert!(!text.contains("views"), "{text}");
    }
}
