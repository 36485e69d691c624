//! Prometheus metrics: a snapshot of what `show` prints (neighbors, links,
//! kernel) rendered in the text exposition format by `prometheus-client`.
//! Sans-IO: the runtime asks each owner for its view and passes the time in;
//! nothing here is shared with the hot path, a scrape builds a fresh registry.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use serde_json::Value;
use std::sync::atomic::AtomicU64;

/// What one scrape shows: the control socket's JSON views, as `show --json` prints them.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub uptime_s: f64,
    /// Seconds since the UNIX epoch (session `since` is one too).
    pub now_unix: u64,
    /// `show neighbors`: one object per neighbor, with "routes" counts.
    pub neighbors: Vec<Value>,
    /// `show links`: measured links, tunnels under "tunnel".
    pub links: Vec<Value>,
    /// `show bfd`: one object per BFD session.
    pub bfd: Vec<Value>,
    /// `show kernel` (None: `[kernel] enabled = false`).
    pub kernel: Option<Vec<Value>>,
    /// Kernel route operations done and refused since start.
    pub kernel_ops: Option<(u64, u64)>,
    pub best_changes: u64,
    /// Per `[[view]]`: "view", "table", best routes "ipv4" / "ipv6",
    /// "link_costs" [{"neighbor", "cost" (null: unknown)}].
    pub views: Vec<Value>,
}

const STATES: [&str; 6] = [
    "Idle",
    "Connect",
    "Active",
    "OpenSent",
    "OpenConfirm",
    "Established",
];

type Labels = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// A family of gauges, or of counters, registered under `name`.
struct Gauges(Family<Labels, FGauge>);
struct Counters(Family<Labels, Counter>);

impl Gauges {
    fn new(reg: &mut Registry, name: &str, help: &str, unit: Option<Unit>) -> Self {
        let f = Family::<Labels, FGauge>::default();
        match unit {
            Some(u) => reg.register_with_unit(name, help, u, f.clone()),
            None => reg.register(name, help, f.clone()),
        }
        Gauges(f)
    }
    fn set(&self, l: &[(&str, &str)], v: f64) {
        self.0.get_or_create(&labels(l)).set(v);
    }
}

impl Counters {
    fn new(reg: &mut Registry, name: &str, help: &str) -> Self {
        let f = Family::<Labels, Counter>::default();
        reg.register(name, help, f.clone());
        Counters(f)
    }
    fn set(&self, l: &[(&str, &str)], v: u64) {
        self.0.get_or_create(&labels(l)).inc_by(v);
    }
}

/// The text exposition of `snap` (OpenMetrics text, `# EOF` last).
pub fn render(snap: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("kittbgpd");
    Gauges::new(
        &mut reg,
        "uptime",
        "Time since the daemon started",
        Some(Unit::Seconds),
    )
    .set(&[], snap.uptime_s);
    neighbors(&mut reg, snap);
    links(&mut reg, snap);
    probes(&mut reg, snap);
    bfd(&mut reg, snap);
    Counters::new(
        &mut reg,
        "best_path_changes",
        "Best-path changes in the Loc-RIB",
    )
    .set(&[], snap.best_changes);
    kernel(&mut reg, snap);
    views(&mut reg, snap);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// The same exposition in the classic Prometheus text format (0.0.4), for
/// clients that do not ask for OpenMetrics (curl, promtool): a counter's
/// HELP/TYPE name carries its `_total`, no `# UNIT`, no `# EOF`.
pub fn to_classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{p}{name}{total} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn neighbors(reg: &mut Registry, snap: &Snapshot) {
    let up = Gauges::new(
        reg,
        "session_up",
        "1 if the BGP session is Established",
        None,
    );
    let state = Gauges::new(
        reg,
        "session_state",
        "1 for the session's current FSM state (RFC 4271 8.2.2)",
        None,
    );
    let age = Gauges::new(
        reg,
        "session_state_age",
        "Time in the current FSM state (uptime when Established)",
        Some(Unit::Seconds),
    );
    let held = Gauges::new(
        reg,
        "session_held_down",
        "1 per reason holding the session down (interface, probe, handshake, limit, operator)",
        None,
    );
    let upd_in = Counters::new(reg, "updates_received", "UPDATE messages received");
    let upd_out = Counters::new(reg, "updates_sent", "UPDATE messages sent");
    let prefixes = Gauges::new(
        reg,
        "prefixes",
        "Routes per neighbor: received, accepted, filtered (Adj-RIB-In), advertised (Adj-RIB-Out)",
        None,
    );
    let limit = Gauges::new(reg, "prefix_limit", "Import limit (0: none)", None);
    for n in &snap.neighbors {
        let name = str_of(n, "name");
        let l = [("neighbor", name)];
        let st = str_of(n, "state");
        up.set(&l, f64::from(u8::from(st == "Established")));
        for s in STATES {
            state.set(
                &[("neighbor", name), ("state", s)],
                f64::from(u8::from(st == s)),
            );
        }
        if let Some(since) = n.get("since").and_then(Value::as_u64) {
            age.set(&l, snap.now_unix.saturating_sub(since) as f64);
        }
        for r in n
            .get("held_down")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str() {
                held.set(&[("neighbor", name), ("reason", r)], 1.0);
            }
        }
        let count = |k| n.get(k).and_then(Value::as_u64).unwrap_or(0);
        upd_in.set(&l, count("updates_received"));
        upd_out.set(&l, count("updates_sent"));
        if let Some(r) = n.get("routes") {
            for k in ["received", "accepted", "filtered", "advertised"] {
                if let Some(v) = num(r, k) {
                    prefixes.set(&[("neighbor", name), ("kind", k)], v);
                }
            }
            if let Some(v) = num(r, "limit") {
                limit.set(&l, v);
            }
        }
    }
}

fn links(reg: &mut Registry, snap: &Snapshot) {
    let up = Gauges::new(reg, "link_up", "1 if the measured link is up", None);
    let rtt = Gauges::new(
        reg,
        "link_rtt",
        "Smoothed probe round-trip time",
        Some(Unit::Seconds),
    );
    let loss = Gauges::new(
        reg,
        "link_loss_ratio",
        "Lost fraction of recent probes",
        None,
    );
    let cost = Gauges::new(reg, "link_cost", "Applied link cost (the MED)", None);
    let changes = Counters::new(reg, "link_cost_changes", "Applied link cost changes");
    let reply = Gauges::new(
        reg,
        "link_probe_reply_age",
        "Time since the last probe reply",
        Some(Unit::Seconds),
    );
    let handshake = Gauges::new(
        reg,
        "tunnel_handshake_age",
        "Time since the WireGuard tunnel's latest handshake",
        Some(Unit::Seconds),
    );
    let rx = Counters::new(reg, "tunnel_received_bytes", "Bytes received on the tunnel");
    let tx = Counters::new(reg, "tunnel_sent_bytes", "Bytes sent on the tunnel");
    for link in &snap.links {
        let l = [
            ("link", str_of(link, "name")),
            ("interface", str_of(link, "interface")),
        ];
        // A tunnel without a prober has no "state" of the estimator's.
        if link.get("smoothed_rtt_ms").is_some() || link.get("loss").is_some() {
            up.set(&l, f64::from(u8::from(str_of(link, "state") == "up")));
            if let Some(v) = num(link, "smoothed_rtt_ms") {
                rtt.set(&l, v / 1000.0);
            }
            if let Some(v) = num(link, "sustained_loss") {
                loss.set(&l, v);
            }
            if let Some(v) = num(link, "cost") {
                cost.set(&l, v);
            }
            if let Some(v) = num(link, "last_reply_ago_s") {
                reply.set(&l, v);
            }
            changes.set(
                &l,
                link.get("cost_changes")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            );
        }
        if let Some(t) = link.get("tunnel") {
            if let Some(v) = num(t, "latest_handshake_age_s") {
                handshake.set(&l, v);
            }
            if let Some(v) = t.get("rx_bytes").and_then(Value::as_u64) {
                rx.set(&l, v);
            }
            if let Some(v) = t.get("tx_bytes").and_then(Value::as_u64) {
                tx.set(&l, v);
            }
        }
    }
}

/// Probe packets per link (stream and ICMPv6 echo) and the stream's loss per direction.
fn probes(reg: &mut Registry, snap: &Snapshot) {
    let packets = Counters::new(
        reg,
        "link_probe_packets",
        "Probe packets sent and received, by probe (stream, icmp)",
    );
    let lost = Counters::new(
        reg,
        "link_stream_lost_packets",
        "Stream packets lost, by direction (to_neighbor as it reports, from_neighbor)",
    );
    for link in &snap.links {
        let (name, ifname) = (str_of(link, "name"), str_of(link, "interface"));
        for probe in ["stream", "icmp"] {
            let Some(p) = link.get(probe) else { continue };
            for dir in ["sent", "received"] {
                if let Some(v) = p.get(dir).and_then(Value::as_u64) {
                    let l = [
                        ("link", name),
                        ("interface", ifname),
                        ("probe", probe),
                        ("direction", dir),
                    ];
                    packets.set(&l, v);
                }
            }
        }
        let Some(st) = link.get("stream") else {
            continue;
        };
        for (key, dir) in [
            ("lost_to_neighbor", "to_neighbor"),
            ("lost_from_neighbor", "from_neighbor"),
        ] {
            if let Some(v) = st.get(key).and_then(Value::as_u64) {
                lost.set(
                    &[("link", name), ("interface", ifname), ("direction", dir)],
                    v,
                );
            }
        }
    }
}

/// BFD sessions: Up or not, packets each way.
fn bfd(reg: &mut Registry, snap: &Snapshot) {
    let up = Gauges::new(reg, "bfd_up", "1 if the neighbor's BFD session is Up", None);
    let rx = Counters::new(reg, "bfd_packets_received", "Valid BFD packets received");
    let tx = Counters::new(reg, "bfd_packets_sent", "BFD packets sent");
    for b in &snap.bfd {
        let l = [("neighbor", str_of(b, "name"))];
        up.set(&l, f64::from(u8::from(str_of(b, "state") == "up")));
        rx.set(&l, b.get("packets_in").and_then(Value::as_u64).unwrap_or(0));
        tx.set(
            &l,
            b.get("packets_out").and_then(Value::as_u64).unwrap_or(0),
        );
    }
}

/// Routing views: best routes per view and family, link cost per view and
/// neighbor (absent while unknown). Nothing without `[[view]]`.
fn views(reg: &mut Registry, snap: &Snapshot) {
    if snap.views.is_empty() {
        return;
    }
    let routes = Gauges::new(
        reg,
        "view_routes",
        "Best routes in a routing view's table, by family",
        None,
    );
    let cost = Gauges::new(
        reg,
        "view_link_cost",
        "A neighbor's link cost under a view's metric (MED added on import)",
        None,
    );
    for v in &snap.views {
        let view = str_of(v, "view");
        for family in ["ipv4", "ipv6"] {
            routes.set(
                &[("view", view), ("family", family)],
                num(v, family).unwrap_or(0.0),
            );
        }
        let links = v.get("link_costs").and_then(Value::as_array);
        for l in links.into_iter().flatten() {
            if let Some(c) = num(l, "cost") {
                cost.set(&[("view", view), ("neighbor", str_of(l, "neighbor"))], c);
            }
        }
    }
}

fn kernel(reg: &mut Registry, snap: &Snapshot) {
    let (Some(routes), Some((done, failed))) = (&snap.kernel, snap.kernel_ops) else {
        return;
    };
    let by_state = Gauges::new(
        reg,
        "kernel_routes",
        "Kernel routes by table and state (installed, pending, conflict, failed, ...)",
        None,
    );
    let mut counts = std::collections::BTreeMap::<(String, &str), u64>::new();
    for r in routes {
        let table = r.get("table").map_or(String::new(), Value::to_string);
        *counts.entry((table, str_of(r, "state"))).or_default() += 1;
    }
    for ((table, state), n) in counts {
        by_state.set(&[("table", &table), ("state", state)], n as f64);
    }
    Counters::new(
        reg,
        "kernel_route_operations",
        "Route add/replace/delete sent to the kernel",
    )
    .set(&[], done);
    Counters::new(
        reg,
        "kernel_route_failures",
        "Kernel route operations refused",
    )
    .set(&[], failed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot() -> Snapshot {
        Snapshot {
            uptime_s: 12.5,
            now_unix: 1000,
            neighbors: vec![
                json!({"name": "bird", "state": "Established", "since": 990,
                       "held_down": [], "updates_received": 3, "updates_sent": 4,
                       "routes": {"received": 5, "accepted": 4, "filtered": 1,
                                  "advertised": 2, "limit": 100}}),
                json!({"name": "down", "state": "Idle", "since": 400,
                       "held_down": ["interface"], "updates_received": 0, "updates_sent": 0}),
            ],
            links: vec![
                json!({"name": "bird", "interface": "wg0", "state": "up", "cost": 12,
                       "smoothed_rtt_ms": 1.5, "loss": 0.0, "sustained_loss": 0.25,
                       "last_reply_ago_s": 0.5, "cost_changes": 2, "probe": "stream",
                       "stream": {"sent": 30, "received": 29, "lost_to_neighbor": 2, "lost_from_neighbor": 1},
                       "icmp": {"sent": 3, "received": 0},
                       "tunnel": {"latest_handshake_age_s": 7, "rx_bytes": 10, "tx_bytes": 20}}),
                json!({"name": "t2", "interface": "wg9", "state": "down",
                       "tunnel": {"latest_handshake_age_s": null}}),
            ],
            bfd: vec![
                json!({"name": "bird", "state": "up", "packets_in": 40, "packets_out": 41}),
                json!({"name": "down", "state": "init"}),
            ],
            kernel: Some(vec![
                json!({"table": 254, "prefix": "10.0.0.1/32", "state": "installed"}),
                json!({"table": 254, "prefix": "10.0.0.2/32", "state": "installed"}),
                json!({"table": 254, "prefix": "10.0.0.3/32", "state": "failed"}),
                json!({"table": 102, "prefix": "10.0.0.3/32", "state": "installed"}),
            ]),
            kernel_ops: Some((7, 1)),
            best_changes: 9,
            views: vec![json!({"view": "hops", "table": 102, "ipv4": 4, "ipv6": 3,
                "link_costs": [{"neighbor": "bird", "cost": 1}, {"neighbor": "down", "cost": null}]})],
        }
    }

    #[test]
    fn renders_every_family_from_a_snapshot() {
        let text = render(&snapshot());
        for line in [
            "kittbgpd_uptime_seconds 12.5",
            "kittbgpd_session_up{neighbor=\"bird\"} 1",
            "kittbgpd_session_up{neighbor=\"down\"} 0",
            "kittbgpd_session_state{neighbor=\"down\",state=\"Idle\"} 1",
            "kittbgpd_session_state{neighbor=\"down\",state=\"Established\"} 0",
            "kittbgpd_session_state_age_seconds{neighbor=\"bird\"} 10",
            "kittbgpd_session_held_down{neighbor=\"down\",reason=\"interface\"} 1",
            "kittbgpd_updates_received_total{neighbor=\"bird\"} 3",
            "kittbgpd_updates_sent_total{neighbor=\"bird\"} 4",
            "kittbgpd_prefixes{neighbor=\"bird\",kind=\"filtered\"} 1",
            "kittbgpd_prefix_limit{neighbor=\"bird\"} 100",
            "kittbgpd_best_path_changes_total 9",
            "kittbgpd_link_rtt_seconds{link=\"bird\",interface=\"wg0\"} 0.0015",
            "kittbgpd_link_loss_ratio{link=\"bird\",interface=\"wg0\"} 0.25",
            "kittbgpd_link_cost{link=\"bird\",interface=\"wg0\"} 12",
            "kittbgpd_link_cost_changes_total{link=\"bird\",interface=\"wg0\"} 2",
            "kittbgpd_link_probe_reply_age_seconds{link=\"bird\",interface=\"wg0\"} 0.5",
            "kittbgpd_tunnel_handshake_age_seconds{link=\"bird\",interface=\"wg0\"} 7",
            "kittbgpd_link_probe_packets_total{link=\"bird\",interface=\"wg0\",probe=\"stream\",direction=\"received\"} 29",
            "kittbgpd_link_probe_packets_total{link=\"bird\",interface=\"wg0\",probe=\"icmp\",direction=\"sent\"} 3",
            "kittbgpd_link_stream_lost_packets_total{link=\"bird\",interface=\"wg0\",direction=\"to_neighbor\"} 2",
            "kittbgpd_tunnel_sent_bytes_total{link=\"bird\",interface=\"wg0\"} 20",
            "kittbgpd_bfd_up{neighbor=\"bird\"} 1",
            "kittbgpd_bfd_up{neighbor=\"down\"} 0",
            "kittbgpd_bfd_packets_received_total{neighbor=\"bird\"} 40",
            "kittbgpd_bfd_packets_sent_total{neighbor=\"bird\"} 41",
            "kittbgpd_kernel_routes{table=\"254\",state=\"installed\"} 2",
            "kittbgpd_kernel_routes{table=\"254\",state=\"failed\"} 1",
            "kittbgpd_kernel_routes{table=\"102\",state=\"installed\"} 1",
            "kittbgpd_kernel_route_operations_total 7",
            "kittbgpd_kernel_route_failures_total 1",
            "kittbgpd_view_routes{view=\"hops\",family=\"ipv4\"} 4",
            "kittbgpd_view_routes{view=\"hops\",family=\"ipv6\"} 3",
            "kittbgpd_view_link_cost{view=\"hops\",neighbor=\"bird\"} 1",
            "# TYPE kittbgpd_updates_received counter",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(line)),
                "missing {line:?} in\n{text}"
            );
        }
        // A tunnel without a prober gives no link gauges, and a missing age no sample.
        assert!(!text.contains("link=\"t2\""), "{text}");
        // An unknown view cost is no sample.
        assert!(
            !text.contains("view_link_cost{view=\"hops\",neighbor=\"down\"}"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn classic_text_names_counters_with_total() {
        let text = to_classic_text(&render(&snapshot()));
        assert!(
            text.contains("# TYPE kittbgpd_updates_received_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP kittbgpd_updates_received_total UPDATE messages received.\n"));
        assert!(text.contains("# TYPE kittbgpd_uptime_seconds gauge\n"));
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
        assert!(text.contains("kittbgpd_updates_received_total{neighbor=\"bird\"} 3\n"));
    }

    #[test]
    fn kernel_off_and_odd_input_never_panic() {
        let mut s = snapshot();
        s.kernel = None;
        s.neighbors.push(json!("not an object"));
        s.links.push(json!({"loss": "NaN?", "tunnel": 3}));
        let text = render(&s);
        assert!(!text.contains("kittbgpd_kernel_routes"), "{text}");
        assert!(
            text.contains("kittbgpd_session_up{neighbor=\"\"} 0"),
            "{text}"
        );
    }
}
