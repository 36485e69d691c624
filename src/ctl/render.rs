//! Human-readable tables for the CLI.

use super::RouteView;
use serde_json::Value;
use std::fmt::Write;

fn s(v: &Value, key: &str) -> String {
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
        "{:<12} {:<26} {:<12} {:<20} {:>8} {:>8}  {}",
        "Name", "Address", "State", "Since", "Rcvd", "Sent", "Info"
    );
    for n in list.as_array().into_iter().flatten() {
        let addr = match n.get("interface").and_then(Value::as_str) {
            Some(i) => format!("{}%{}", s(n, "address"), i),
            None => s(n, "address"),
        };
        let since = n
            .get("since")
            .and_then(Value::as_u64)
            .map_or("-".into(), format_age);
        let info = if s(n, "state") == "Established" {
            format!("router id {}", s(n, "remote_id"))
        } else {
            n.get("last_error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let _ = writeln!(
            out,
            "{:<12} {:<26} {:<12} {:<20} {:>8} {:>8}  {}",
            s(n, "name"),
            addr,
            s(n, "state"),
            since,
            s(n, "updates_received"),
            s(n, "updates_sent"),
            info
        );
    }
    out
}

fn format_age(unix: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let age = now.saturating_sub(unix);
    format!("{}h{:02}m{:02}s ago", age / 3600, age / 60 % 60, age % 60)
}

pub fn render_routes(list: &[RouteView]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:<10} {:<28} {:>11} {:>6}  {}",
        "Prefix", "From", "Next hop", "MED", "LPref", "Status"
    );
    for r in list {
        let nh = match (&r.next_hop, &r.interface) {
            (Some(nh), Some(i)) => format!("{nh}%{i}"),
            (Some(nh), None) => nh.clone(),
            _ => "-".into(),
        };
        let status = match &r.reason {
            Some(reason) => format!("{} ({reason})", r.status),
            None => r.status.clone(),
        };
        let med = r.med.map_or("-".into(), |m| m.to_string());
        let lp = r.local_pref.map_or("-".into(), |m| m.to_string());
        let _ = writeln!(
            out,
            "{:<22} {:<10} {:<28} {:>11} {:>6}  {}",
            r.prefix, r.peer, nh, med, lp, status
        );
    }
    out
}
