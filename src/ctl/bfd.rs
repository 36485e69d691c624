//! `show bfd`, human form: one line per neighbor's BFD session (as BIRD's
//! `show bfd sessions`), then its discriminators, diagnostic and counters.

use super::render::s;
use serde_json::Value;
use std::fmt::Write as _;

fn num(v: &Value, k: &str, decimals: usize) -> String {
    v.get(k)
        .and_then(Value::as_f64)
        .map_or("-".to_string(), |x| format!("{x:.decimals$}"))
}

pub fn render_bfd(list: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<10} {:<10} {:<10} {:>10} {:>8} {:>8} {:>10}",
        "Neighbor", "Interface", "State", "Remote", "Uptime s", "Tx ms", "Rx ms", "Detect ms"
    );
    for b in list.as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:<10} {:<10} {:>10} {:>8} {:>8} {:>10}",
            s(b, "name"),
            s(b, "interface"),
            s(b, "state"),
            s(b, "remote_state"),
            num(b, "uptime_s", 0),
            num(b, "tx_ms", 0),
            num(b, "rx_ms", 0),
            num(b, "detect_ms", 0),
        );
        let _ = writeln!(
            out,
            "    discriminators {} / {}, multiplier {} / {}, diag {} ({}), packets in {} out {} discarded {}",
            s(b, "local_discr"),
            s(b, "remote_discr"),
            s(b, "multiplier"),
            s(b, "remote_multiplier"),
            s(b, "diag"),
            s(b, "diag_text"),
            s(b, "packets_in"),
            s(b, "packets_out"),
            s(b, "discarded"),
        );
        if let Some(d) = b.get("last_down").and_then(Value::as_str) {
            let _ = writeln!(out, "    last down: {d}");
        }
        if let Some(e) = b.get("socket_error").and_then(Value::as_str) {
            let _ = writeln!(out, "    sockets not open: {e}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_line_shows_state_timers_and_why_it_last_went_down() {
        let v = serde_json::json!([{
            "name": "n2", "interface": "wg2", "address": "fe80::2",
            "state": "up", "remote_state": "up", "local_discr": 7, "remote_discr": 9,
            "tx_ms": 100.0, "rx_ms": 100.0, "detect_ms": 300.0, "multiplier": 3,
            "remote_multiplier": 3, "diag": 0, "diag_text": "no diagnostic",
            "last_down": "nothing heard for 300 ms (3 x 100 ms)", "uptime_s": 12.4,
            "packets_in": 120, "packets_out": 118, "discarded": 0, "discards": {}
        }]);
        let out = render_bfd(&v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(row, ["n2", "wg2", "up", "up", "12", "100", "100", "300"]);
        assert!(lines[2].contains("discriminators 7 / 9"), "{out}");
        assert_eq!(
            lines[3],
            "    last down: nothing heard for 300 ms (3 x 100 ms)"
        );
    }
}
