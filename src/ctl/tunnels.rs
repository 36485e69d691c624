//! `show tunnels` (and the tunnel line of `show links`), human form.

use super::render::s;
use serde_json::Value;
use std::fmt::Write as _;

/// Link state with the reasons it is down, e.g. `up` or `down (handshake)`.
fn link_state(t: &Value) -> String {
    let by: Vec<&str> = t
        .get("down_by")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if by.is_empty() {
        s(t, "link")
    } else {
        format!("{} ({})", s(t, "link"), by.join(", "))
    }
}

fn age(t: &Value) -> String {
    t.get("latest_handshake_age_s")
        .and_then(Value::as_u64)
        .map_or("never".to_string(), |a| format!("{a} s ago"))
}

/// One line: endpoint, handshake age, counters, link state and its source.
pub(super) fn tunnel_line(t: &Value) -> String {
    format!(
        "tunnel {}: endpoint {}, handshake {}, rx {} B, tx {} B, link {}",
        s(t, "interface"),
        s(t, "endpoint"),
        age(t),
        s(t, "rx_bytes"),
        s(t, "tx_bytes"),
        link_state(t)
    )
}

pub fn render_tunnels(list: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<10} {:<22} {:>12} {:>12} {:>12}  Link",
        "Tunnel", "Neighbor", "Endpoint", "Handshake", "Rx bytes", "Tx bytes"
    );
    for t in list.as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<10} {:<10} {:<22} {:>12} {:>12} {:>12}  {}",
            s(t, "interface"),
            s(t, "name"),
            s(t, "endpoint"),
            age(t),
            s(t, "rx_bytes"),
            s(t, "tx_bytes"),
            link_state(t)
        );
        let _ = writeln!(
            out,
            "    port {}, peer {}, {} -> {}",
            s(t, "listen_port"),
            s(t, "peer_public_key"),
            s(t, "local_address"),
            s(t, "peer_address")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_rows_show_age_counters_and_the_source_of_a_down_link() {
        let v = serde_json::json!([{
            "interface": "wg2", "name": "n2", "endpoint": "172.31.2.2:51001",
            "latest_handshake_age_s": 200, "rx_bytes": 10, "tx_bytes": 20,
            "link": "down", "down_by": ["handshake"], "listen_port": 51002,
            "peer_public_key": "K=", "local_address": "fe80::1", "peer_address": "fe80::2"
        }, {"interface": "wg3", "link": "up", "down_by": []}]);
        let text = render_tunnels(&v);
        assert!(text.contains("200 s ago"), "{text}");
        assert!(text.contains("down (handshake)"), "{text}");
        assert!(text.contains("never"), "{text}");
        let line = tunnel_line(&v[0]);
        assert!(
            line.contains("endpoint 172.31.2.2:51001, handshake 200 s ago, rx 10 B, tx 20 B"),
            "{line}"
        );
    }
}
