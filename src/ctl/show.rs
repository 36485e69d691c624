//! The birdc-like summaries: `show protocols`, `show route PREFIX`, and the
//! answer of `kittbgpd reload`.

use super::render::format_age;
use super::RouteView;
use serde_json::Value;
use std::fmt::Write;

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// `show protocols`: one line per session (the `show neighbors` data): name,
/// state, since, the last error and why it is held down.
pub fn render_protocols(list: &Value) -> String {
    let mut out = format!(
        "{:<12} {:<12} {:<16} {:<24} {:<34} {}\n",
        "Name", "State", "Since", "Held down", "Graceful restart", "Last error"
    );
    for n in list.as_array().into_iter().flatten() {
        let since = n
            .get("since")
            .and_then(Value::as_u64)
            .map_or("-".into(), format_age);
        let held: Vec<String> = n
            .get("held_down")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect();
        let held = if held.is_empty() {
            "-".into()
        } else {
            held.join(",")
        };
        let _ = writeln!(
            out,
            "{:<12} {:<12} {:<16} {:<24} {:<34} {}",
            text(n, "name"),
            text(n, "state"),
            since,
            held,
            super::graceful::gr_summary(n),
            text(n, "last_error")
        );
    }
    out
}

/// The candidates for exactly `prefix` (a bare address: /32 or /128).
pub fn routes_for(routes: Vec<RouteView>, prefix: ipnet::IpNet) -> Vec<RouteView> {
    routes
        .into_iter()
        .filter(|r| r.prefix.parse::<ipnet::IpNet>().ok() == Some(prefix))
        .collect()
}

/// `show route PREFIX`: every attribute of every candidate, best first.
pub fn render_route_detail(routes: &[RouteView]) -> String {
    let mut out = String::new();
    let mut sorted: Vec<&RouteView> = routes.iter().collect();
    sorted.sort_by_key(|r| !r.best);
    for r in sorted {
        let best = if r.best { " [best]" } else { "" };
        let _ = writeln!(out, "{} from {} ({}){best}", r.prefix, r.peer, r.status);
        let mut line = |k: &str, v: String| {
            let _ = writeln!(out, "    {k:<22} {v}");
        };
        let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let n = |v: Option<u32>| v.map_or("-".into(), |v| v.to_string());
        if let Some(reason) = &r.reason {
            line("reason", reason.clone());
        }
        line("next_hop", o(&r.next_hop));
        line("interface", o(&r.interface));
        line("med", n(r.med));
        line("received_med", n(r.received_med));
        line("link_cost", n(r.link_cost));
        line("local_pref", n(r.local_pref));
        line("origin", o(&r.origin));
        line("as_path", r.as_path.clone());
        line("originator_id", o(&r.originator_id));
        line("cluster_list", r.cluster_list.join(" "));
        line("atomic_aggregate", r.atomic_aggregate.to_string());
        line("aggregator", o(&r.aggregator));
        line("communities", r.communities.join(" "));
        line("extended_communities", r.extended_communities.join(" "));
        line("large_communities", r.large_communities.join(" "));
        for u in &r.unknown_attributes {
            line(
                &format!("attribute {}", u.code),
                format!("flags {:#04x} value {}", u.flags, u.value),
            );
        }
        if let Some(k) = &r.kernel {
            line("kernel", k.clone());
        }
    }
    out
}

/// The answer of `kittbgpd reload [--dry-run]`: one line per change.
pub fn render_reload(v: &Value) -> String {
    let dry = v.get("dry_run").and_then(Value::as_bool) == Some(true);
    let changes = v.get("changes").and_then(Value::as_array);
    let mut out = String::new();
    let n = changes.map_or(0, Vec::len);
    let _ = writeln!(
        out,
        "{}: {n} change(s){}",
        text(v, "file"),
        if dry { ", none applied (dry run)" } else { "" }
    );
    for c in changes.into_iter().flatten() {
        let line = match c.get("neighbor").and_then(Value::as_str) {
            Some(name) => format!("neighbor {name}: {}", text(c, "what")),
            None => text(c, "what"),
        };
        let _ = writeln!(out, "  [{}] {line}", text(c, "apply"));
    }
    // Applied all the same, except these (e.g. an address that cannot be bound).
    for f in v
        .get("failed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "  [failed] {}", f.as_str().unwrap_or_default());
    }
    out
}

/// `show config`: the JSON of the running [`crate::config::Config`] as the
/// TOML `check` prints (TOML has no null: absent options are left out).
pub fn render_config(v: &Value) -> Result<String, String> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = v.clone();
    strip(&mut v);
    let t: toml::Value = serde_json::from_value(v).map_err(|e| e.to_string())?;
    toml::to_string_pretty(&t).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_renders_as_check_prints_it() {
        let text = "router_id = \"10.0.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.255.0.0/24\"]\n[kernel]\nenabled = false\n\
            [[neighbor]]\nname = \"a\"\ninterface = \"wg0\"\naddress = \"fe80::2\"\nremote_as = 65000\n";
        let cfg = crate::config::parse(text, "t.toml").unwrap();
        let via_socket = render_config(&serde_json::to_value(&cfg).unwrap()).unwrap();
        let reparsed: toml::Value = toml::from_str(&via_socket).unwrap();
        let direct: toml::Value = toml::from_str(&toml::to_string_pretty(&cfg).unwrap()).unwrap();
        assert_eq!(reparsed, direct);
    }

    fn route(prefix: &str, peer: &str, best: bool) -> RouteView {
        serde_json::from_value(serde_json::json!({
            "prefix": prefix, "peer": peer, "next_hop": "fe80::2", "interface": "wg0",
            "med": 150, "local_pref": 100, "origin": "IGP", "as_path": "",
            "originator_id": null, "cluster_list": ["10.0.0.9"], "status": "accepted",
            "reason": null, "best": best, "received_med": 50, "link_cost": 100,
            "communities": ["65000:1"],
        }))
        .unwrap()
    }

    #[test]
    fn route_detail_lists_every_candidate_best_first() {
        let routes = vec![
            route("10.255.0.1/32", "b", false),
            route("10.255.0.1/32", "a", true),
            route("10.255.0.2/32", "a", true),
        ];
        let only = routes_for(routes, "10.255.0.1/32".parse().unwrap());
        assert_eq!(only.len(), 2);
        let out = render_route_detail(&only);
        assert!(
            out.starts_with("10.255.0.1/32 from a (accepted) [best]\n"),
            "{out}"
        );
        assert!(out.contains("10.255.0.1/32 from b (accepted)\n"), "{out}");
        for line in [
            "received_med           50",
            "link_cost              100",
            "cluster_list           10.0.0.9",
            "communities            65000:1",
        ] {
            assert!(out.contains(line), "{line} missing in\n{out}");
        }
    }

    #[test]
    fn protocols_one_line_per_session_with_reasons() {
        let list = serde_json::json!([
            {"name": "a", "state": "Established", "since": 0, "held_down": [], "last_error": null},
            {"name": "b", "state": "Idle", "since": 0, "held_down": ["interface", "operator"],
             "last_error": "hold timer expired"},
        ]);
        let out = render_protocols(&list);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("b "), "{out}");
        assert!(lines[2].contains("interface,operator"), "{out}");
        assert!(lines[2].ends_with("hold timer expired"), "{out}");
    }

    #[test]
    fn protocols_show_graceful_restart_helper_state() {
        let list = serde_json::json!([
            {"name": "a", "state": "Idle", "since": 0, "held_down": [], "last_error": "connection closed",
             "routes": {"graceful_helper": true, "stale": 4, "stale_left_s": 30}},
        ]);
        let out = render_protocols(&list);
        assert!(
            out.lines().next().unwrap().contains("Graceful restart"),
            "{out}"
        );
        assert!(out.contains("helper: 4 stale, 30 s left"), "{out}");
    }

    #[test]
    fn reload_answer_one_line_per_change() {
        let v = serde_json::json!({"file": "k.toml", "dry_run": true, "changes": [
            {"apply": "live", "neighbor": "a", "what": "cost 1 -> 2"},
            {"apply": "add", "neighbor": "c", "what": "new neighbor"},
        ]});
        assert_eq!(
            render_reload(&v),
            "k.toml: 2 change(s), none applied (dry run)\n  [live] neighbor a: cost 1 -> 2\n  [add] neighbor c: new neighbor\n"
        );
    }

    #[test]
    fn reload_answer_lists_what_failed() {
        let v = serde_json::json!({"file": "k.toml", "dry_run": false, "changes": [
            {"apply": "live", "what": "[metrics] listen - -> 127.0.0.1:1"},
        ], "failed": ["cannot serve metrics on 127.0.0.1:1: denied"]});
        assert!(
            render_reload(&v).ends_with("  [failed] cannot serve metrics on 127.0.0.1:1: denied\n")
        );
    }
}
