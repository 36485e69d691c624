//! `show views`, human form: the policy rules steering packets into the
//! views' tables, one line per kernel rule (as `ip rule` would list them,
//! with the view and state), then other protocols' rules in our range.

use super::render::s;
use serde_json::Value;
use std::fmt::Write as _;

pub fn render_views(v: &Value) -> String {
    let mut out = String::new();
    let range = s(v, "rule_priority");
    let Some(r) = v.get("rules").filter(|r| !r.is_null()) else {
        let note = v.get("note").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(out, "Policy rules: none ({note}); priorities {range}");
        return out;
    };
    let _ = writeln!(
        out,
        "Policy rules: priorities {range}, protocol {}",
        s(r, "protocol")
    );
    let _ = writeln!(
        out,
        "{:>8} {:<5} {:<10} {:>5} {:>6} {:<10} Selector",
        "Priority", "Fam", "View", "Rule", "Table", "State"
    );
    for x in r
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let fam = match x.get("family").and_then(Value::as_str) {
            Some("ipv4") => "ipv4",
            Some("ipv6") => "ipv6",
            _ => "-",
        };
        let view = x.get("view").and_then(Value::as_str).unwrap_or("-");
        let _ = writeln!(
            out,
            "{:>8} {:<5} {:<10} {:>5} {:>6} {:<10} {}",
            s(x, "priority"),
            fam,
            view,
            x.get("rule")
                .and_then(Value::as_u64)
                .map_or("-".into(), |n| n.to_string()),
            s(x, "table"),
            s(x, "state"),
            s(x, "selector"),
        );
        if let Some(e) = x.get("error").and_then(Value::as_str) {
            let _ = writeln!(out, "    failed {} time(s): {e}", s(x, "failures"));
        }
    }
    for f in r
        .get("foreign")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "{:>8} {:<5} another protocol's rule (proto {}): left alone",
            s(f, "priority"),
            s(f, "family"),
            s(f, "protocol")
        );
    }
    for u in r
        .get("unplaced")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "not installed: {}", u.as_str().unwrap_or_default());
    }
    let c = &r["counts"];
    let _ = writeln!(
        out,
        "operations: {} added, {} removed, {} failed",
        s(c, "added"),
        s(c, "deleted"),
        s(c, "failed")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_foreign_and_counters() {
        let v = serde_json::json!({
            "rule_priority": "20000-20999",
            "rules": {
                "range": "20000-20999", "protocol": 200,
                "rules": [
                    { "view": "latency", "rule": 1, "family": "ipv4", "priority": 20000,
                      "table": 101, "selector": "from all fwmark 0x1", "state": "installed",
                      "failures": 0, "error": null },
                    { "view": "hops", "rule": 2, "family": "ipv6", "priority": 20011,
                      "table": 102, "selector": "from all tos 0xb8 (dscp 46)", "state": "failed",
                      "failures": 3, "error": "Invalid argument" }
                ],
                "foreign": [ { "family": "ipv4", "priority": 20005, "protocol": 99 } ],
                "unplaced": [],
                "counts": { "added": 1, "deleted": 0, "failed": 3 }
            }
        });
        let out = render_views(&v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Policy rules: priorities 20000-20999, protocol 200"
        );
        let row: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "20000",
                "ipv4",
                "latency",
                "1",
                "101",
                "installed",
                "from",
                "all",
                "fwmark",
                "0x1"
            ]
        );
        assert!(
            lines[3].contains("failed") && lines[3].contains("hops"),
            "{out}"
        );
        assert_eq!(lines[4], "    failed 3 time(s): Invalid argument");
        assert!(
            lines[5].contains("20005") && lines[5].contains("proto 99"),
            "{out}"
        );
        assert_eq!(lines[6], "operations: 1 added, 0 removed, 3 failed");
        let none = render_views(&serde_json::json!({
            "rule_priority": "20000-20999", "rules": null, "note": "no view has rules"
        }));
        assert_eq!(
            none,
            "Policy rules: none (no view has rules); priorities 20000-20999\n"
        );
    }
}
