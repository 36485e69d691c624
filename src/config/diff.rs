//! What a reload changes: the running [`Config`] against a newly validated one,
//! as a list of [`Change`]s, each saying how it is applied. Neighbors are
//! matched by name (unique in a file), never by their position.
//!
//! Sans-IO: the runtime applies the list; `kittbgpd reload --dry-run` prints it.

use super::wireguard::{Tunnel, Wireguard};
use super::{Config, Neighbor};
use serde::Serialize;

/// How a change takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Apply {
    /// Applied to the running state; no session is touched.
    Live,
    /// Only this neighbor's session is restarted (Cease / Other Configuration
    /// Change, RFC 4486 §4).
    Restart,
    /// A new neighbor: its session starts; no other is touched.
    Add,
    /// A neighbor no longer configured: its session stops (Cease / Peer
    /// De-configured, RFC 4486 §4) and its routes are withdrawn.
    Remove,
    /// Not applied by a reload: takes effect at the next daemon start.
    NeedsDaemonRestart,
}

/// One difference between the running and the new configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub apply: Apply,
    /// The neighbor concerned (by name), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbor: Option<String>,
    /// For people: what changed, old and new values.
    pub what: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.apply {
            Apply::Live => "live",
            Apply::Restart => "restart session",
            Apply::Add => "add",
            Apply::Remove => "remove",
            Apply::NeedsDaemonRestart => "needs daemon restart",
        };
        match &self.neighbor {
            Some(n) => write!(f, "[{how}] neighbor {n}: {}", self.what),
            None => write!(f, "[{how}] {}", self.what),
        }
    }
}

/// Every difference, global ones first, then neighbors in the new file's order,
/// then removed ones.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    let global = |out: &mut Vec<Change>, apply, what: String| {
        out.push(Change {
            apply,
            neighbor: None,
            what,
        })
    };
    // Every session announces these in OPEN (BGP Identifier, My AS): each
    // restarts (below); the listener and the control socket are bound once.
    let identity = (old.router_id, old.local_as) != (new.router_id, new.local_as);
    if old.router_id != new.router_id {
        let w = format!(
            "router_id {} -> {} (every session restarts)",
            old.router_id, new.router_id
        );
        global(&mut out, Apply::Live, w);
    }
    if old.local_as != new.local_as {
        let w = format!(
            "local_as {} -> {} (every session restarts)",
            old.local_as, new.local_as
        );
        global(&mut out, Apply::Live, w);
    }
    if old.listen_port != new.listen_port {
        let w = format!(
            "listen_port {} -> {} (listener bound again; sessions kept)",
            old.listen_port, new.listen_port
        );
        global(&mut out, Apply::Live, w);
    }
    if old.control_socket != new.control_socket {
        let w = format!(
            "control_socket {} -> {}",
            old.control_socket.display(),
            new.control_socket.display()
        );
        global(&mut out, Apply::NeedsDaemonRestart, w);
    }
    if old.control_group != new.control_group {
        let w = format!(
            "control_group {} -> {} (socket re-owned)",
            opt(&old.control_group),
            opt(&new.control_group)
        );
        global(&mut out, Apply::Live, w);
    }
    if old.metrics_listen != new.metrics_listen {
        let w = format!(
            "[metrics] listen {} -> {} (endpoint re-bound)",
            opt(&old.metrics_listen),
            opt(&new.metrics_listen)
        );
        global(&mut out, Apply::Live, w);
    }
    // Moving installed routes to another table or protocol number live would
    // briefly leave both or neither in place; like BIRD restarting its kernel
    // protocol, this takes a daemon restart (graceful: routes are kept).
    if old.kernel != new.kernel {
        let w = "[kernel] changed (installed routes stay as they are until a daemon restart)";
        global(&mut out, Apply::NeedsDaemonRestart, w.into());
    }
    if old.bmp != new.bmp {
        let w = "[bmp] changed (collectors reconnected: added ones connect, removed ones end)";
        global(&mut out, Apply::Live, w.into());
    }
    if old.view_settings != new.view_settings {
        let w = format!(
            "[views] rule_priority {} -> {} (policy rules moved)",
            old.view_settings.rule_priority, new.view_settings.rule_priority
        );
        global(&mut out, Apply::Live, w);
    }
    if old.mrt != new.mrt {
        let w = "[mrt] changed (update log reopened)".into();
        global(&mut out, Apply::Live, w);
    }
    let (oo, no) = (&old.overlay, &new.overlay);
    if oo != no {
        let w = format!(
            "[overlay] ranges {} {} -> {} {}, originate {} -> {}, from_lo {} -> {}, cluster_id {} -> {}",
            list(&oo.ipv4),
            list(&oo.ipv6),
            list(&no.ipv4),
            list(&no.ipv6),
            list(&oo.originate),
            list(&no.originate),
            oo.from_lo,
            no.from_lo,
            opt(&oo.cluster_id),
            opt(&no.cluster_id)
        );
        global(&mut out, Apply::Live, w);
    }
    let ranges_changed = (&oo.ipv4, &oo.ipv6) != (&no.ipv4, &no.ipv6);
    // Views change the capabilities of every OPEN and the tables of the RIB.
    if old.views != new.views {
        let w = "[[view]] changed (views are built at daemon start)".into();
        global(&mut out, Apply::NeedsDaemonRestart, w);
    }
    wireguard(old.wireguard.as_ref(), new.wireguard.as_ref(), &mut out);
    if old.cost != new.cost {
        let w = "[cost] changed (probers take the new parameters)".into();
        global(&mut out, Apply::Live, w);
    }
    if old.bfd != new.bfd {
        let w = "[bfd] changed (BFD sessions take the new timers with a poll sequence)".into();
        global(&mut out, Apply::Live, w);
    }
    let (lo, ln) = (&old.loopbacks, &new.loopbacks);
    if lo.originate != ln.originate {
        let w = format!(
            "loopbacks.originate {} -> {}",
            list(&lo.originate),
            list(&ln.originate)
        );
        global(&mut out, Apply::Live, w);
    }
    if lo.ipv4 != ln.ipv4 || lo.ipv6 != ln.ipv6 {
        let w = format!(
            "loopback ranges {} {} -> {} {}",
            list(&lo.ipv4),
            list(&lo.ipv6),
            list(&ln.ipv4),
            list(&ln.ipv6)
        );
        global(&mut out, Apply::Live, w);
    }
    if lo.from_lo != ln.from_lo {
        let w = format!("loopbacks.from_lo {} -> {}", lo.from_lo, ln.from_lo);
        global(&mut out, Apply::Live, w);
    }

    for n in &new.neighbors {
        match old.neighbors.iter().find(|o| o.name == n.name) {
            None => out.push(Change {
                apply: Apply::Add,
                neighbor: Some(n.name.clone()),
                what: format!("new neighbor {}", endpoint(n)),
            }),
            Some(o) => {
                neighbor(o, n, &mut out);
                if identity && !restarts(&out, &n.name) {
                    out.push(Change {
                        apply: Apply::Restart,
                        neighbor: Some(n.name.clone()),
                        what: "our router_id / local_as changed (OPEN carries them)".into(),
                    });
                }
                // What a multihop session may carry is the overlay: its
                // routes are taken again under the new ranges. Link sessions
                // carry loopbacks only, whatever the overlay (disjoint ranges).
                if ranges_changed && n.multihop.is_some() && !restarts(&out, &n.name) {
                    out.push(Change {
                        apply: Apply::Restart,
                        neighbor: Some(n.name.clone()),
                        what: "[overlay] ranges changed: the multihop session restarts to take its routes under them".into(),
                    });
                }
            }
        }
    }
    for o in &old.neighbors {
        if !new.neighbors.iter().any(|n| n.name == o.name) {
            out.push(Change {
                apply: Apply::Remove,
                neighbor: Some(o.name.clone()),
                what: format!("no longer configured ({})", endpoint(o)),
            });
        }
    }
    out
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn endpoint(n: &Neighbor) -> String {
    match (&n.interface, n.multihop) {
        (Some(i), _) => format!("{}%{i} port {} AS {}", n.address, n.port, n.remote_as),
        (None, Some(hops)) => format!(
            "{} port {} AS {} multihop {hops} from {}",
            n.address,
            n.port,
            n.remote_as,
            opt(&n.source)
        ),
        (None, None) => format!("{} port {} AS {}", n.address, n.port, n.remote_as),
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".into(), ToString::to_string)
}

/// The differences of one neighbor present in both files.
fn neighbor(o: &Neighbor, n: &Neighbor, out: &mut Vec<Change>) {
    let mut push = |apply, what: String| {
        out.push(Change {
            apply,
            neighbor: Some(n.name.clone()),
            what,
        })
    };
    if o.view_cost != n.view_cost {
        let what = format!(
            "view_cost {:?} -> {:?} (at daemon start)",
            o.view_cost, n.view_cost
        );
        push(Apply::NeedsDaemonRestart, what);
    }
    // What the session is: where it connects, what OPEN carries, how it is secured.
    if o.interface != n.interface {
        push(
            Apply::Restart,
            format!("interface {} -> {}", opt(&o.interface), opt(&n.interface)),
        );
    }
    macro_rules! restart_if_changed {
        ($($field:ident),*) => {$(
            if o.$field != n.$field {
                let what = format!("{} {} -> {}", stringify!($field), o.$field, n.$field);
                push(Apply::Restart, what);
            }
        )*};
    }
    restart_if_changed!(
        address,
        port,
        remote_as,
        extended_next_hop,
        ttl_security,
        rr_client,
        passive,
        add_paths
    );
    // A link session becoming multihop (or back), a new hop limit or source:
    // the transport of the session changes.
    if o.multihop != n.multihop {
        let w = format!("multihop {} -> {}", opt(&o.multihop), opt(&n.multihop));
        push(Apply::Restart, w);
    }
    if o.source != n.source {
        let w = format!("source {} -> {}", opt(&o.source), opt(&n.source));
        push(Apply::Restart, w);
    }
    if o.cost_auto != n.cost_auto {
        let how = |auto: bool, cost: Option<u32>| match (auto, cost) {
            (true, _) => "\"auto\"".to_string(),
            (false, c) => opt(&c),
        };
        push(
            Apply::Live,
            format!(
                "cost {} -> {}",
                how(o.cost_auto, o.cost),
                how(n.cost_auto, n.cost)
            ),
        );
    } else if o.cost != n.cost && !n.cost_auto {
        push(
            Apply::Live,
            format!("cost {} -> {}", opt(&o.cost), opt(&n.cost)),
        );
    }
    if o.probe != n.probe {
        let how = |p: Option<crate::probe::ProbeSetting>| {
            p.map_or("([cost] probe)".to_string(), |p| {
                format!("{p:?}").to_lowercase()
            })
        };
        push(
            Apply::Live,
            format!("probe {} -> {}", how(o.probe), how(n.probe)),
        );
    }
    if o.import_limit != n.import_limit || o.import_limit_action != n.import_limit_action {
        push(
            Apply::Live,
            format!(
                "import_limit {} ({:?}) -> {} ({:?})",
                o.import_limit, o.import_limit_action, n.import_limit, n.import_limit_action
            ),
        );
    }
    if o.hold_time != n.hold_time || o.keepalive != n.keepalive {
        push(
            Apply::Live,
            format!(
                "hold_time/keepalive {}/{} -> {}/{} (from the next session)",
                o.hold_time, o.keepalive, n.hold_time, n.keepalive
            ),
        );
    }
    if (o.graceful_restart, o.restart_time) != (n.graceful_restart, n.restart_time) {
        push(
            Apply::Live,
            format!(
                "graceful_restart/restart_time {}/{} -> {}/{} (from the next session)",
                o.graceful_restart, o.restart_time, n.graceful_restart, n.restart_time
            ),
        );
    }
    if (o.connect_retry, o.error_wait_min, o.error_wait_max)
        != (n.connect_retry, n.error_wait_min, n.error_wait_max)
    {
        push(
            Apply::Live,
            "connect_retry/error_wait timers (from the next connection)".into(),
        );
    }
    // Applied by restarting only this session: the fresh peer takes the new value.
    if o.filtered_limit != n.filtered_limit {
        push(
            Apply::Restart,
            format!(
                "filtered_limit {} -> {}",
                o.filtered_limit, n.filtered_limit
            ),
        );
    }
    if o.send_hold_time != n.send_hold_time {
        push(
            Apply::Restart,
            format!(
                "send_hold_time {} -> {}",
                opt(&o.send_hold_time),
                opt(&n.send_hold_time)
            ),
        );
    }
    if o.bfd != n.bfd {
        push(Apply::Live, format!("bfd {} -> {}", o.bfd, n.bfd));
    }
    if o.enabled != n.enabled {
        push(
            Apply::Live,
            format!("enabled {} -> {}", o.enabled, n.enabled),
        );
    }
}

/// Whether the neighbor's session must restart for `changes`.
pub fn restarts(changes: &[Change], name: &str) -> bool {
    changes
        .iter()
        .any(|c| c.apply == Apply::Restart && c.neighbor.as_deref() == Some(name))
}

/// `[wireguard]`: node-wide settings, then tunnels matched by interface (a
/// tunnel moved in the file, or renumbered, is the same tunnel).
fn wireguard(old: Option<&Wireguard>, new: Option<&Wireguard>, out: &mut Vec<Change>) {
    let ot: &[Tunnel] = old.map_or(&[], |w| &w.tunnels);
    let nt: &[Tunnel] = new.map_or(&[], |w| &w.tunnels);
    if let (Some(o), Some(n)) = (old, new) {
        if o.backend != n.backend {
            out.push(Change {
                apply: Apply::NeedsDaemonRestart,
                neighbor: None,
                what: format!(
                    "[wireguard] backend {:?} -> {:?} (tunnels keep their implementation)",
                    o.backend, n.backend
                ),
            });
        }
        let node = |w: &Wireguard| {
            (
                w.private_key,
                w.on_stop,
                w.state_file.clone(),
                w.handshake_timeout,
                w.reconcile_interval,
            )
        };
        if node(o) != node(n) {
            out.push(Change {
                apply: Apply::Live,
                neighbor: None,
                what: "[wireguard] node settings changed (key, on_stop, state_file or timers)"
                    .into(),
            });
        }
    }
    for t in nt {
        let what = match ot.iter().find(|o| o.interface == t.interface) {
            None => format!("tunnel {} created", t.interface),
            Some(o) if same_tunnel(o, t) => continue,
            Some(_) => format!("tunnel {} updated in place", t.interface),
        };
        out.push(Change {
            apply: Apply::Live,
            neighbor: Some(t.neighbor_name.clone()),
            what,
        });
    }
    for o in ot {
        if !nt.iter().any(|t| t.interface == o.interface) {
            out.push(Change {
                apply: Apply::Live,
                neighbor: Some(o.neighbor_name.clone()),
                what: format!("tunnel {} deleted", o.interface),
            });
        }
    }
}

/// Equal as WireGuard sees them (not where they are written in the file).
fn same_tunnel(a: &Tunnel, b: &Tunnel) -> bool {
    let key = |t: &Tunnel| {
        (
            t.neighbor_name.clone(),
            t.peer_public_key,
            t.endpoint.clone(),
            t.listen_port,
            t.preshared_key,
            t.local_address,
            t.peer_address,
            t.persistent_keepalive,
            t.mtu,
        )
    };
    key(a) == key(b)
}

/// The configuration in force after a reload that applied `new` to `old`:
/// `new`, except what only a daemon restart applies (kept from `old`), so the
/// next reload reports it again and `show config` shows what really runs.
/// Neighbors keep the running order (their ids); added ones come last.
pub fn effective(old: &Config, new: &Config) -> Config {
    let mut wireguard = new.wireguard.clone();
    if let (Some(w), Some(o)) = (wireguard.as_mut(), old.wireguard.as_ref()) {
        w.backend = o.backend;
    }
    let mut eff = Config {
        router_id: new.router_id,
        local_as: new.local_as,
        listen_port: new.listen_port,
        control_socket: old.control_socket.clone(),
        control_group: new.control_group.clone(),
        metrics_listen: new.metrics_listen,
        kernel: old.kernel.clone(),
        wireguard,
        cost: new.cost.clone(),
        bfd: new.bfd.clone(),
        bmp: new.bmp.clone(),
        mrt: new.mrt.clone(),
        overlay: new.overlay.clone(),
        view_settings: new.view_settings.clone(),
        loopbacks: new.loopbacks.clone(),
        neighbors: Vec::new(),
        views: old.views.clone(),
    };
    for o in &old.neighbors {
        if let Some(n) = new.neighbors.iter().find(|n| n.name == o.name) {
            let mut n = n.clone();
            n.view_cost = o.view_cost.clone();
            eff.neighbors.push(n);
        }
    }
    for n in &new.neighbors {
        if !old.neighbors.iter().any(|o| o.name == n.name) {
            eff.neighbors.push(n.clone());
        }
    }
    if let Some(w) = eff.wireguard.as_mut() {
        for t in &mut w.tunnels {
            if let Some(i) = eff.neighbors.iter().position(|n| n.name == t.neighbor_name) {
                t.neighbor = i;
            }
        }
    }
    eff
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
router_id = "10.0.0.1"
local_as = 65000
[loopbacks]
ipv4 = ["10.255.0.0/24"]
originate = ["10.255.0.1/32"]
[kernel]
enabled = false
[[neighbor]]
name = "a"
interface = "wg-a"
address = "fe80::2"
remote_as = 65000
cost = 100
[[neighbor]]
name = "b"
interface = "wg-b"
address = "fe80::3"
remote_as = 65000
cost = 200
"#;

    fn cfg(text: &str) -> Config {
        super::super::parse(text, "t.toml").expect("valid config")
    }

    #[test]
    fn same_file_no_change() {
        assert!(diff(&cfg(BASE), &cfg(BASE)).is_empty());
    }

    #[test]
    fn neighbors_matched_by_name_not_position() {
        // The same two neighbors, in the other order: nothing changes.
        let (a, b) = BASE.split_at(BASE.find("[[neighbor]]\nname = \"b\"").unwrap());
        let head_end = a.find("[[neighbor]]").unwrap();
        let swapped = format!("{}{}\n{}", &a[..head_end], b, &a[head_end..]);
        assert_eq!(cfg(&swapped).neighbors[0].name, "b");
        assert!(diff(&cfg(BASE), &cfg(&swapped)).is_empty());
    }

    #[test]
    fn add_and_remove() {
        let new = BASE.replace("name = \"b\"", "name = \"c\"");
        let d = diff(&cfg(BASE), &cfg(&new));
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].apply, Apply::Add);
        assert_eq!(d[0].neighbor.as_deref(), Some("c"));
        assert_eq!(d[1].apply, Apply::Remove);
        assert_eq!(d[1].neighbor.as_deref(), Some("b"));
    }

    #[test]
    fn cost_limit_hold_time_are_live() {
        let new = BASE.replace("cost = 100", "cost = 150\nimport_limit = 10\nhold_time = 9");
        let d = diff(&cfg(BASE), &cfg(&new));
        assert!(d.iter().all(|c| c.apply == Apply::Live), "{d:?}");
        assert!(d.iter().all(|c| c.neighbor.as_deref() == Some("a")));
        assert!(d.iter().any(|c| c.what == "cost 100 -> 150"), "{d:?}");
        assert!(
            d.iter().any(|c| c.what.starts_with("import_limit 1000")),
            "{d:?}"
        );
        assert!(d.iter().any(|c| c.what.starts_with("hold_time/keepalive")));
        assert!(!restarts(&d, "a"));
    }

    #[test]
    fn filtered_limit_and_send_hold_time_restart_only_that_neighbor() {
        let new = BASE.replacen(
            "cost = 100",
            "cost = 100\nfiltered_limit = 5\nsend_hold_time = 60",
            1,
        );
        let d = diff(&cfg(BASE), &cfg(&new));
        assert!(restarts(&d, "a") && !restarts(&d, "b"), "{d:?}");
        assert!(
            d.iter().any(|c| c.what == "filtered_limit 1000 -> 5"),
            "{d:?}"
        );
        assert!(
            d.iter().any(|c| c.what == "send_hold_time - -> 60"),
            "{d:?}"
        );
    }

    #[test]
    fn port_and_address_restart_only_that_neighbor() {
        let new = BASE
            .replacen("remote_as = 65000", "remote_as = 65000\nport = 1791", 1)
            .replace("fe80::3", "fe80::33");
        let d = diff(&cfg(BASE), &cfg(&new));
        assert!(d.iter().all(|c| c.apply == Apply::Restart), "{d:?}");
        assert!(restarts(&d, "a") && restarts(&d, "b"));
        assert!(d.iter().any(|c| c.what == "port 1790 -> 1791"));
        assert!(d.iter().any(|c| c.what == "address fe80::3 -> fe80::33"));
    }

    #[test]
    fn multihop_neighbor_added_removed_and_its_transport_restarts_only_it() {
        let mh = "[[neighbor]]\nname = \"rr\"\naddress = \"10.255.0.9\"\nmultihop = 4\n";
        let with = format!("{BASE}{mh}");
        let d = diff(&cfg(BASE), &cfg(&with));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].apply, d[0].neighbor.as_deref()),
            (Apply::Add, Some("rr"))
        );
        assert_eq!(
            d[0].what,
            "new neighbor 10.255.0.9 port 1790 AS 65000 multihop 4 from 10.255.0.1"
        );
        let d = diff(&cfg(&with), &cfg(BASE));
        assert_eq!((d.len(), d[0].apply), (1, Apply::Remove), "{d:?}");
        let changed = with.replace("multihop = 4", "multihop = 2\nsource = \"10.255.0.7\"");
        let d = diff(&cfg(&with), &cfg(&changed));
        assert!(restarts(&d, "rr") && !restarts(&d, "a") && !restarts(&d, "b"));
        let what: Vec<&str> = d.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(what, ["multihop 4 -> 2", "source 10.255.0.1 -> 10.255.0.7"]);
    }

    #[test]
    fn originated_prefixes_and_ranges_are_live() {
        let new = BASE
            .replace(
                "\"10.255.0.1/32\"]",
                "\"10.255.0.1/32\", \"10.255.0.9/32\"]",
            )
            .replace("10.255.0.0/24", "10.255.0.0/23");
        let d = diff(&cfg(BASE), &cfg(&new));
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d
            .iter()
            .all(|c| c.apply == Apply::Live && c.neighbor.is_none()));
        assert!(d[0].to_string().contains("10.255.0.9/32"), "{}", d[0]);
    }

    #[test]
    fn identity_changes_restart_every_session() {
        let new = BASE.replace("10.0.0.1", "10.0.0.2");
        let d = diff(&cfg(BASE), &cfg(&new));
        let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "[live] router_id 10.0.0.1 -> 10.0.0.2 (every session restarts)",
                "[restart session] neighbor a: our router_id / local_as changed (OPEN carries them)",
                "[restart session] neighbor b: our router_id / local_as changed (OPEN carries them)",
            ]
        );
        let eff = effective(&cfg(BASE), &cfg(&new));
        assert_eq!(eff.router_id, cfg(&new).router_id);
        // A new AS (iBGP only: the neighbors' too): one restart per session.
        let new_as = BASE.replace("65000", "65001");
        let d = diff(&cfg(BASE), &cfg(&new_as));
        assert_eq!(
            d[0].to_string(),
            "[live] local_as 65000 -> 65001 (every session restarts)"
        );
        let a: Vec<&str> = d
            .iter()
            .filter(|c| c.neighbor.as_deref() == Some("a"))
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(a, ["remote_as 65000 -> 65001"]);
        assert!(restarts(&d, "b"));
        assert_eq!(effective(&cfg(BASE), &cfg(&new_as)).local_as, 65001);
    }

    #[test]
    fn overlay_is_live_and_new_ranges_restart_only_multihop_sessions() {
        // Phase one -> two of the fabric: a multihop neighbor "rr" already
        // there, then [overlay] ranges added (issue 12 part 6).
        let mh = "[[neighbor]]\nname = \"rr\"\naddress = \"10.255.0.9\"\nremote_as = 65000\nmultihop = 4\n";
        let one = format!("{BASE}{mh}");
        let ov = "[overlay]\nipv4 = [\"10.77.0.0/16\"]\nfrom_lo = true\n";
        let two = one.replace("[kernel]", &format!("{ov}[kernel]"));
        let d = diff(&cfg(&one), &cfg(&two));
        let global: Vec<_> = d.iter().filter(|c| c.neighbor.is_none()).collect();
        assert_eq!(global.len(), 1, "{d:?}");
        assert_eq!(global[0].apply, Apply::Live);
        assert!(global[0].what.starts_with("[overlay] ranges"), "{d:?}");
        assert!(restarts(&d, "rr"), "{d:?}");
        assert!(
            !restarts(&d, "a") && !restarts(&d, "b"),
            "link sessions kept: {d:?}"
        );
        assert_eq!(effective(&cfg(&one), &cfg(&two)).overlay, cfg(&two).overlay);
        // from_lo alone: live, no session restarts.
        let lo_off = two.replace("from_lo = true", "from_lo = false");
        let d = diff(&cfg(&two), &cfg(&lo_off));
        assert!(d.iter().all(|c| c.apply == Apply::Live), "{d:?}");
    }

    #[test]
    fn effective_keeps_what_needs_a_daemon_restart() {
        let new = BASE
            .replace(
                "local_as = 65000",
                "local_as = 65000\ncontrol_socket = \"/run/kb-t.sock\"",
            )
            .replace("cost = 100", "cost = 5")
            .replace("name = \"a\"", "name = \"z\"");
        let (old, new) = (cfg(BASE), cfg(&new));
        let eff = effective(&old, &new);
        assert_eq!(eff.control_socket, old.control_socket);
        let names: Vec<&str> = eff.neighbors.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["b", "z"], "running order kept, added last");
        assert_eq!(eff.neighbors[1].cost, Some(5));
        // Only the control socket is left for the next reload.
        let again = diff(&eff, &new);
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(again[0].apply, Apply::NeedsDaemonRestart);
    }

    #[test]
    fn cost_auto_switch_and_cost_table_are_live() {
        let new = BASE.replace("cost = 100", "cost = \"auto\"") + "[cost]\nfactor = 2.0\n";
        let d = diff(&cfg(BASE), &cfg(&new));
        assert!(d.iter().all(|c| c.apply == Apply::Live), "{d:?}");
        assert!(d
            .iter()
            .any(|c| c.what == "[cost] changed (probers take the new parameters)"));
        assert!(
            d.iter()
                .any(|c| c.neighbor.as_deref() == Some("a") && c.what == "cost 100 -> \"auto\""),
            "{d:?}"
        );
        let eff = effective(&cfg(BASE), &cfg(&new));
        assert!(eff.neighbors[0].cost_auto && eff.cost.factor == 2.0);
        assert!(
            diff(&eff, &cfg(&new)).is_empty(),
            "nothing left for the next reload"
        );
    }

    #[test]
    fn a_neighbors_probe_is_live() {
        let auto = BASE.replace("cost = 100", "cost = \"auto\"");
        let icmp = BASE.replace("cost = 100", "cost = \"auto\"\nprobe = \"icmp\"");
        let d = diff(&cfg(&auto), &cfg(&icmp));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].apply, Apply::Live);
        assert_eq!(d[0].what, "probe ([cost] probe) -> icmp");
        assert!(diff(&effective(&cfg(&auto), &cfg(&icmp)), &cfg(&icmp)).is_empty());
    }

    #[test]
    fn kernel_needs_a_daemon_restart_metrics_and_group_do_not() {
        let new = BASE.replace("enabled = false", "enabled = false\ntable = 100")
            + "[metrics]\nlisten = \"127.0.0.1:9179\"\n";
        let d = diff(&cfg(BASE), &cfg(&new));
        let kernel: Vec<_> = d
            .iter()
            .filter(|c| c.what.starts_with("[kernel]"))
            .collect();
        assert_eq!(kernel.len(), 1, "{d:?}");
        assert_eq!(kernel[0].apply, Apply::NeedsDaemonRestart);
        assert!(d
            .iter()
            .any(|c| c.apply == Apply::Live && c.what.starts_with("[metrics] listen")));
        let eff = effective(&cfg(BASE), &cfg(&new));
        assert_eq!(eff.kernel, cfg(BASE).kernel, "kept until a restart");
        assert!(eff.metrics_listen.is_some());
    }

    fn tunnel(name: &str, interface: &str, port: u16) -> Tunnel {
        Tunnel {
            neighbor: 0,
            neighbor_name: name.into(),
            interface: interface.into(),
            peer_public_key: super::super::wireguard::WgKey([7; 32]),
            endpoint: None,
            listen_port: port,
            preshared_key_file: None,
            preshared_key: None,
            local_address: "fe80::1".parse().unwrap(),
            peer_address: "fe80::2".parse().unwrap(),
            persistent_keepalive: 10,
            mtu: 1420,
            at: (1, 1),
        }
    }

    #[test]
    fn tunnels_by_interface_not_position_each_change_live() {
        let wg = |tunnels: Vec<Tunnel>| Wireguard {
            private_key_file: "/k".into(),
            private_key: super::super::wireguard::WgKey([1; 32]),
            public_key: super::super::wireguard::WgKey([2; 32]),
            backend: super::super::wireguard::WgBackend::Auto,
            on_stop: crate::config::OnStop::Keep,
            state_file: "/s".into(),
            handshake_timeout: std::time::Duration::from_secs(180),
            reconcile_interval: std::time::Duration::from_secs(60),
            tunnels,
        };
        let old = wg(vec![tunnel("a", "wg-a", 1), tunnel("b", "wg-b", 2)]);
        // Moved in the file (another index and line): no change.
        let mut moved = vec![tunnel("b", "wg-b", 2), tunnel("a", "wg-a", 1)];
        moved[0].neighbor = 5;
        moved[0].at = (40, 1);
        let mut out = Vec::new();
        wireguard(Some(&old), Some(&wg(moved)), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // a's port changes, b goes, c comes.
        let new = wg(vec![tunnel("a", "wg-a", 9), tunnel("c", "wg-c", 3)]);
        wireguard(Some(&old), Some(&new), &mut out);
        let seen: Vec<(Option<&str>, &str)> = out
            .iter()
            .map(|c| (c.neighbor.as_deref(), c.what.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Some("a"), "tunnel wg-a updated in place"),
                (Some("c"), "tunnel wg-c created"),
                (Some("b"), "tunnel wg-b deleted"),
            ]
        );
        assert!(out.iter().all(|c| c.apply == Apply::Live));
        // All tunnels gone with the table: each one deleted.
        out.clear();
        wireguard(Some(&old), None, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
    }
}
