//! From the file model to the effective [`Config`]: defaults applied, every
//! semantic rule checked, each error naming file, line, key and why.

use super::file::FileConfig;
use super::{DEFAULT_CONTROL_SOCKET, DEFAULT_PORT};
use crate::cost::CostParams;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The effective configuration: every default resolved, every rule checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    pub listen_port: u16,
    pub control_socket: PathBuf,
    /// Group given read/write access to the control socket (mode 0660).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_group: Option<String>,
    /// `[metrics] listen`: where Prometheus scrapes `/metrics` (none: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub loopbacks: Loopbacks,
    pub kernel: Kernel,
    /// `[cost]`: pricing of links whose neighbor has `cost = "auto"`.
    pub cost: CostParams,
    /// `[bfd]`: timers of every BFD session (neighbors with `bfd = true`).
    pub bfd: crate::bfd::BfdParams,
    #[serde(rename = "neighbor")]
    pub neighbors: Vec<Neighbor>,
    /// `[wireguard]`: tunnels built by kittbgpd (none: the tunnels exist already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<super::wireguard::Wireguard>,
    /// `[bmp]`: collectors to export to (none: off).
    pub bmp: super::bmp::Bmp,
    /// `[mrt]`: live MRT log of received UPDATEs (none: off).
    pub mrt: super::mrt::Mrt,
    /// `[overlay]`: prefixes carried on multihop sessions (empty: none).
    pub overlay: super::overlay::Overlay,
    /// `[views]`: the `ip rule` priorities kittbgpd owns.
    #[serde(rename = "views")]
    pub view_settings: super::views::Views,
    /// `[[view]]`: routing views besides the default one (none: today's behaviour).
    #[serde(rename = "view", skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<super::view::View>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loopbacks {
    pub ipv4: Vec<Ipv4Net>,
    pub ipv6: Vec<Ipv6Net>,
    pub originate: Vec<IpNet>,
    pub from_lo: bool,
}

impl Loopbacks {
    /// A fabric loopback: an IPv4 /32 or IPv6 /128 inside a configured range.
    pub fn admits(&self, prefix: IpNet) -> bool {
        match prefix {
            IpNet::V4(p) => p.prefix_len() == 32 && self.ipv4.iter().any(|r| r.contains(&p)),
            IpNet::V6(p) => p.prefix_len() == 128 && self.ipv6.iter().any(|r| r.contains(&p)),
        }
    }
}

/// `[kernel]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kernel {
    pub enabled: bool,
    /// Routing table (254 = main).
    pub table: u32,
    /// Route protocol number marking kittbgpd's routes (`ip route ... proto 200`).
    pub protocol: u8,
    pub metric: u32,
    /// Keep installed routes on a clean stop (for a restart without a cut), or remove them.
    pub on_stop: OnStop,
    /// How long routes of an earlier run are kept while sessions come up.
    #[serde(with = "secs")]
    pub startup_grace: Duration,
    /// Source address for locally sent packets (default: the first loopback found on `lo`).
    pub prefsrc4: Option<std::net::Ipv4Addr>,
    pub prefsrc6: Option<std::net::Ipv6Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStop {
    Keep,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportLimitAction {
    Warn,
    Block,
    Restart,
    Disable,
}

/// `add_paths`: what we announce in the ADD-PATH capability (RFC 7911) for
/// the families of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddPaths {
    #[default]
    Off,
    /// Accept several paths per prefix from the neighbor (a reflector's client).
    Receive,
    /// Send every usable path of each prefix (a reflector to its clients).
    Send,
    Both,
}

impl AddPaths {
    /// The capability's Send/Receive value; `None` when off.
    pub fn mode(self) -> Option<crate::wire::AddPathMode> {
        use crate::wire::AddPathMode as M;
        match self {
            AddPaths::Off => None,
            AddPaths::Receive => Some(M::Receive),
            AddPaths::Send => Some(M::Send),
            AddPaths::Both => Some(M::Both),
        }
    }
}

impl std::fmt::Display for AddPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddPaths::Off => "off",
            AddPaths::Receive => "receive",
            AddPaths::Send => "send",
            AddPaths::Both => "both",
        })
    }
}

/// One BGP neighbor with its session options resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbor {
    pub name: String,
    /// Interface that scopes a link-local address (and carries a direct session).
    pub interface: Option<String>,
    pub address: IpAddr,
    pub port: u16,
    pub remote_as: u32,
    /// Static link cost added to received MED on import; `None`: unknown (2^31 is
    /// added), or not yet measured when `cost_auto`.
    pub cost: Option<u32>,
    /// `cost = "auto"`: the cost is measured ([`crate::cost`], tuned by `[cost]`).
    pub cost_auto: bool,
    /// With `cost_auto`: the probe of this link (`None`: `[cost] probe`).
    pub probe: Option<crate::probe::ProbeSetting>,
    pub hold_time: u16,
    pub keepalive: u16,
    #[serde(with = "secs")]
    pub connect_retry: Duration,
    /// RFC 9687 send hold time, s; `None`: max(480, 2 x hold time); 0: off.
    pub send_hold_time: Option<u16>,
    #[serde(with = "secs")]
    pub error_wait_min: Duration,
    #[serde(with = "secs")]
    pub error_wait_max: Duration,
    pub passive: bool,
    pub rr_client: bool,
    pub extended_next_hop: bool,
    pub ttl_security: bool,
    /// `multihop = N`: a session over loopbacks (no interface, GTSM off), sent
    /// with IP TTL / IPv6 hop limit N; `None`: a link session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multihop: Option<u8>,
    /// Our address a multihop session is sourced from (bound before connect,
    /// required as the local address of inbound connections); resolved to our
    /// loopback of the family when not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    pub import_limit: u32,
    pub import_limit_action: ImportLimitAction,
    /// Routes kept as filtered (for `show routes --filtered`) at most; past
    /// it new filtered routes are dropped and counted; 0: no limit.
    pub filtered_limit: u32,
    /// `enabled = false`: configured, but the session is held down.
    pub enabled: bool,
    /// Graceful restart (RFC 4724), both roles: the capability is announced
    /// and a dropped session's routes are kept stale for its restart time.
    pub graceful_restart: bool,
    /// The restart time we announce (RFC 4724 §3, 12 bits), in seconds.
    pub restart_time: u16,
    /// ADD-PATH (RFC 7911) announced for IPv4 and IPv6 unicast.
    pub add_paths: AddPaths,
    /// `bfd = true`: a single-hop BFD session (RFC 5881) to the neighbor;
    /// its going Down ends the BGP session and holds it until Up again.
    pub bfd: bool,
    /// `view_cost = { NAME = N }`: the link's static cost per view.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub view_cost: std::collections::BTreeMap<String, u32>,
}

/// Default of `filtered_limit`.
pub const DEFAULT_FILTERED_LIMIT: u32 = 1000;

pub(super) mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

/// One problem in a config file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one file (validation does not stop at the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: name.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse(&text, &name)
}

/// Validate config text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let mut v = Validator {
        text,
        file,
        errors: Vec::new(),
        wg_defaults: None,
    };
    let raw: FileConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let key = key_at(text, span.start);
            v.error(span, &key, e.message().to_string());
            return Err(ConfigErrors(v.errors));
        }
    };
    let config = v.check(raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(v.errors))
    }
}

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
    errors: Vec<ConfigError>,
    pub(super) wg_defaults: Option<super::wireguard::WgDefaults>,
}

impl Validator<'_> {
    pub(super) fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn check(&mut self, raw: FileConfig) -> Config {
        let router_id = *raw.router_id.get_ref();
        if router_id.is_unspecified() {
            self.error(
                raw.router_id.span(),
                "router_id",
                "must not be 0.0.0.0 (RFC 6286 §2.1)",
            );
        }
        let local_as = *raw.local_as.get_ref();
        if local_as == 0 || local_as == u32::from(crate::wire::AS_TRANS) {
            self.error(
                raw.local_as.span(),
                "local_as",
                format!("{local_as} is reserved (RFC 7607, RFC 6793)"),
            );
        }
        let listen_port = match &raw.listen_port {
            Some(p) if *p.get_ref() == 0 => {
                self.error(p.span(), "listen_port", "must not be 0");
                DEFAULT_PORT
            }
            Some(p) => *p.get_ref(),
            None => DEFAULT_PORT,
        };
        let loopbacks = self.check_loopbacks(raw.loopbacks);
        let kernel = self.check_kernel(raw.kernel);
        let cost = self.check_cost(raw.cost);
        let bfd = self.check_bfd(raw.bfd);
        let bmp = self.check_bmp(raw.bmp);
        let mrt = self.check_mrt(raw.mrt);
        let overlay = self.check_overlay(raw.overlay, &loopbacks);
        let view_settings = self.check_view_settings(raw.view_settings);
        let views = self.check_views(raw.views, kernel.table, &view_settings.rule_priority);
        let defaults = raw.defaults;
        let control_socket = raw
            .control_socket
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
        let control_group = raw.control_group.and_then(|g| {
            let ok = !g.get_ref().is_empty()
                && g.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok {
                self.error(g.span(), "control_group", "must be a group name");
            }
            ok.then(|| g.into_inner())
        });
        let metrics_listen = raw.metrics.map(|m| m.listen);
        let needed = raw.neighbors.iter().enumerate().find_map(|(i, n)| {
            let t = n.get_ref().wireguard.as_ref()?;
            Some((t.span(), format!("neighbor[{i}].wireguard")))
        });
        let mut wireguard = self.check_wireguard(raw.wireguard, needed, &control_socket);
        let mut neighbors: Vec<Neighbor> = Vec::new();
        for (i, n) in raw.neighbors.into_iter().enumerate() {
            let span = n.span();
            let mut n = n.into_inner();
            if let Some(t) = n.wireguard.take_if(|_| n.multihop.is_some()) {
                let k = format!("neighbor[{i}].wireguard");
                let m = "a tunnel is a link: a multihop session runs over loopbacks";
                self.error(t.span(), &k, m);
            }
            let tunnel = self.neighbor_tunnel(i, span.clone(), &mut n);
            let view_cost = self.check_view_cost(i, n.view_cost.take(), &views);
            let checked = self.check_neighbor(i, span.clone(), n, &defaults, local_as, &loopbacks);
            if let Some(mut nb) = checked {
                nb.view_cost = view_cost;
                if let (Some(t), Some(wg)) = (tunnel, wireguard.as_mut()) {
                    let (ifname, addr) = (nb.interface.as_deref(), nb.address);
                    let at = (neighbors.len(), nb.name.as_str());
                    self.check_tunnel(wg, i, at, span.clone(), ifname, addr, t);
                }
                if neighbors.iter().any(|o| o.name == nb.name) {
                    self.error(
                        span.clone(),
                        &format!("neighbor[{i}].name"),
                        format!("duplicate neighbor name {:?}", nb.name),
                    );
                }
                // A multihop neighbor is told apart by its address alone (listener).
                let same = |o: &Neighbor| {
                    o.interface == nb.interface || o.multihop.is_some() || nb.multihop.is_some()
                };
                if neighbors.iter().any(|o| o.address == nb.address && same(o)) {
                    self.error(
                        span,
                        &format!("neighbor[{i}].address"),
                        format!("neighbor {} is configured twice", nb.address),
                    );
                }
                neighbors.push(nb);
            }
        }
        Config {
            router_id,
            local_as,
            listen_port,
            control_socket,
            control_group,
            metrics_listen,
            loopbacks,
            kernel,
            cost,
            bfd,
            neighbors,
            wireguard,
            bmp,
            mrt,
            overlay,
            view_settings,
            views,
        }
    }

    fn check_cost(&mut self, c: Option<toml::Spanned<CostParams>>) -> CostParams {
        let Some(c) = c else {
            return CostParams::default();
        };
        let span = c.span();
        let c = c.into_inner();
        for (key, message) in c.problems() {
            let at = key_span(self.text, span.clone(), key);
            self.error(at, &format!("cost.{key}"), message);
        }
        c
    }

    fn check_kernel(&mut self, k: Option<toml::Spanned<super::file::FileKernel>>) -> Kernel {
        let k = k.map(|k| k.into_inner()).unwrap_or_default();
        let table = match &k.table {
            Some(t) if matches!(*t.get_ref(), 0 | 255) => {
                self.error(
                    t.span(),
                    "kernel.table",
                    format!("table {} is reserved (0 unspec, 255 local)", t.get_ref()),
                );
                254
            }
            Some(t) => *t.get_ref(),
            None => 254,
        };
        let protocol = match &k.protocol {
            Some(p) if *p.get_ref() <= 4 => {
                self.error(
                    p.span(),
                    "kernel.protocol",
                    format!(
                        "{} is the kernel's own (0-4: unspec, redirect, kernel, boot, static)",
                        p.get_ref()
                    ),
                );
                200
            }
            Some(p) => *p.get_ref(),
            None => 200,
        };
        let on_stop = self.on_stop(k.on_stop.as_ref(), "kernel.on_stop");
        Kernel {
            enabled: k.enabled.unwrap_or(true),
            table,
            protocol,
            metric: k.metric.unwrap_or(32),
            on_stop,
            startup_grace: Duration::from_secs(k.startup_grace.unwrap_or(30)),
            prefsrc4: k.prefsrc4,
            prefsrc6: k.prefsrc6,
        }
    }

    /// `on_stop = "keep" | "remove"` (default keep).
    pub(super) fn on_stop(&mut self, v: Option<&toml::Spanned<String>>, key: &str) -> OnStop {
        match v.map(|s| (s.span(), s.get_ref().as_str())) {
            None | Some((_, "keep")) => OnStop::Keep,
            Some((_, "remove")) => OnStop::Remove,
            Some((span, other)) => {
                self.error(
                    span,
                    key,
                    format!("{other:?}: expected \"keep\" or \"remove\""),
                );
                OnStop::Keep
            }
        }
    }

    fn check_loopbacks(&mut self, lb: toml::Spanned<super::file::FileLoopbacks>) -> Loopbacks {
        let span = lb.span();
        let lb = lb.into_inner();
        if lb.ipv4.is_empty() && lb.ipv6.is_empty() {
            self.error(
                span.clone(),
                "loopbacks",
                "no loopback range: set loopbacks.ipv4 and/or loopbacks.ipv6",
            );
        }
        let ranges = Loopbacks {
            ipv4: lb.ipv4.iter().map(|p| p.trunc()).collect(),
            ipv6: lb.ipv6.iter().map(|p| p.trunc()).collect(),
            originate: Vec::new(),
            from_lo: lb.from_lo.unwrap_or(true),
        };
        let mut originate = Vec::new();
        for (i, p) in lb.originate.into_iter().enumerate() {
            let prefix = *p.get_ref();
            if !ranges.admits(prefix) {
                self.error(
                    p.span(),
                    &format!("loopbacks.originate[{i}]"),
                    format!("{prefix} is not an IPv4 /32 or IPv6 /128 inside the loopback ranges"),
                );
            }
            originate.push(prefix);
        }
        Loopbacks {
            originate,
            ..ranges
        }
    }
}

/// The dotted key of the line holding `offset` (e.g. `neighbor[1].address`),
/// found from the table header above it; empty when there is none.
fn key_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.starts_with('['));
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for l in before[..line_start].lines() {
        let l = l.trim();
        if let Some(name) = l
            .strip_prefix("[[")
            .and_then(|r| r.split_once("]]"))
            .map(|(n, _)| n.trim())
        {
            let n = counts.entry(name.to_string()).or_insert(0);
            table = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(n, _)| n.trim())
        {
            table = name.to_string();
        }
    }
    match (table.is_empty(), key) {
        (_, None) => table,
        (true, Some(k)) => k.to_string(),
        (false, Some(k)) => format!("{table}.{k}"),
    }
}

/// Where `key = ...` is written inside the table at `span` (the table itself when
/// the key is not written there).
pub(super) fn key_span(text: &str, span: Range<usize>, key: &str) -> Range<usize> {
    let table = &text[span.start.min(text.len())..span.end.min(text.len())];
    let mut offset = span.start;
    for line in table.split_inclusive('\n') {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                let at = offset + (line.len() - t.len());
                return at..at + key.len();
            }
        }
        offset += line.len();
    }
    span
}

/// 1-based line and column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
router_id = "10.255.0.2"
local_as = 4242421945

[loopbacks]
ipv4 = ["10.255.0.0/16"]
ipv6 = ["fd00:255::/48"]
originate = ["10.255.0.2/32", "fd00:255::2/128"]

[defaults]
hold_time = 90

[[neighbor]]
interface = "wg1"
address = "fe80::1:2"
cost = 10

[[neighbor]]
name = "to-node3"
interface = "wg3"
address = "fe80::3:2"
hold_time = 9
"#;

    #[test]
    fn graceful_restart_defaults_overrides_and_range() {
        let c = parse(GOOD, "t").unwrap();
        assert!(!c.neighbors[0].graceful_restart);
        assert_eq!(c.neighbors[0].restart_time, 120);
        let text = GOOD
            .replace(
                "hold_time = 90\n",
                "hold_time = 90\ngraceful_restart = true\n",
            )
            .replace("hold_time = 9\n", "hold_time = 9\nrestart_time = 60\n");
        let c = parse(&text, "t").unwrap();
        let (a, b) = (&c.neighbors[0], &c.neighbors[1]);
        assert_eq!((a.graceful_restart, a.restart_time), (true, 120));
        assert_eq!((b.graceful_restart, b.restart_time), (true, 60));
        let text = GOOD.replace("hold_time = 90\n", "hold_time = 90\nrestart_time = 5000\n");
        assert_eq!(errors(&text)[0].key, "neighbor[0].restart_time");
    }

    #[test]
    fn defaults_and_overrides_resolve() {
        let c = parse(GOOD, "fabric.toml").unwrap();
        assert_eq!(c.local_as, 4242421945);
        assert_eq!(c.listen_port, 1790);
        assert_eq!(c.neighbors.len(), 2);
        let a = &c.neighbors[0];
        assert_eq!(
            (a.name.as_str(), a.hold_time, a.keepalive, a.cost, a.port),
            ("wg1", 90, 30, Some(10), 1790)
        );
        assert!(a.rr_client && a.extended_next_hop && !a.passive);
        assert_eq!(
            (a.import_limit, a.import_limit_action),
            (1000, ImportLimitAction::Block)
        );
        assert_eq!(a.filtered_limit, DEFAULT_FILTERED_LIMIT);
        let b = &c.neighbors[1];
        assert_eq!(
            (b.name.as_str(), b.hold_time, b.keepalive, b.cost),
            ("to-node3", 9, 3, None)
        );
        assert!(c.loopbacks.admits("10.255.7.7/32".parse().unwrap()));
        assert!(!c.loopbacks.admits("10.255.7.0/24".parse().unwrap()));
        assert!(!c.loopbacks.admits("192.0.2.1/32".parse().unwrap()));
        assert!(c.loopbacks.admits("fd00:255::9/128".parse().unwrap()));
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        parse(text, "f.toml").unwrap_err().0
    }

    #[test]
    fn unknown_key_is_located() {
        let text = GOOD.replace("hold_time = 90", "hold_tme = 90");
        let e = errors(&text);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 11, "{e:?}");
        assert!(e[0].message.contains("hold_tme"), "{}", e[0].message);
    }

    #[test]
    fn semantic_errors_name_line_and_key() {
        let text = GOOD
            .replace("hold_time = 9\n", "hold_time = 2\n")
            .replace("\"10.255.0.2/32\"", "\"192.0.2.1/32\"")
            .replace("interface = \"wg1\"\n", "");
        let e = errors(&text);
        let keys: Vec<_> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert!(keys.contains(&("loopbacks.originate[0]", 8)), "{keys:?}");
        assert!(keys.contains(&("neighbor[0].interface", 14)), "{keys:?}");
        assert!(keys.contains(&("neighbor[1].hold_time", 21)), "{keys:?}");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].to_string().starts_with("f.toml:8:"), "{}", e[0]);
    }

    #[test]
    fn filtered_limit_from_defaults_and_per_neighbor() {
        let text = format!(
            "{GOOD}\n[[neighbor]]\ninterface = \"wg9\"\naddress = \"fe80::9:1\"\nfiltered_limit = 0\n"
        )
        .replacen("[defaults]\n", "[defaults]\nfiltered_limit = 50\n", 1);
        let c = parse(&text, "f.toml").unwrap();
        let limits: Vec<u32> = c.neighbors.iter().map(|n| n.filtered_limit).collect();
        assert_eq!(limits, [50, 50, 0]);
    }

    #[test]
    fn add_paths_default_off_from_defaults_and_per_neighbor() {
        let text = format!(
            "{GOOD}\n[[neighbor]]\ninterface = \"wg9\"\naddress = \"fe80::9:1\"\nadd_paths = \"both\"\n"
        )
        .replacen("[defaults]\n", "[defaults]\nadd_paths = \"receive\"\n", 1);
        let c = parse(&text, "f.toml").unwrap();
        let modes: Vec<AddPaths> = c.neighbors.iter().map(|n| n.add_paths).collect();
        assert_eq!(
            modes,
            [AddPaths::Receive, AddPaths::Receive, AddPaths::Both]
        );
        assert!(parse(GOOD, "f.toml")
            .unwrap()
            .neighbors
            .iter()
            .all(|n| n.add_paths == AddPaths::Off));
        let text = format!(
            "{GOOD}\n[[neighbor]]\ninterface = \"wg9\"\naddress = \"fe80::9:1\"\nadd_paths = \"rx\"\n"
        );
        let e = errors(&text);
        assert!(
            e.iter().any(|e| e.key == "neighbor[2].add_paths"
                && e.line == 27
                && e.message
                    .contains("expected one of off, receive, send, both")),
            "{e:?}"
        );
    }

    #[test]
    fn duplicate_neighbors_and_bad_limit_action() {
        let text = format!("{GOOD}\n[[neighbor]]\ninterface = \"wg1\"\naddress = \"fe80::1:2\"\nimport_limit_action = \"drop\"\n");
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|e| e.message.contains("duplicate neighbor name")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.message.contains("configured twice")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.key == "neighbor[2].import_limit_action" && e.line == 27),
            "{e:?}"
        );
    }

    #[test]
    fn bad_value_names_its_key() {
        let text = GOOD.replace("address = \"fe80::3:2\"", "address = \"fe80::zz\"");
        let e = errors(&text);
        assert_eq!(
            (e[0].key.as_str(), e[0].line),
            ("neighbor[1].address", 21),
            "{e:?}"
        );
        let text = GOOD.replace("hold_time = 90", "hold_time = \"ninety\"");
        assert_eq!(errors(&text)[0].key, "defaults.hold_time");
    }

    #[test]
    fn syntax_error_is_located() {
        let e = errors("router_id = \"10.255.0.2\"\nlocal_as = \n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 2);
    }

    #[test]
    fn cost_auto_or_static() {
        let text = GOOD.replace("hold_time = 9\n", "hold_time = 9\ncost = \"auto\"\n");
        let c = parse(&text, "f.toml").unwrap();
        assert_eq!(
            (c.neighbors[0].cost, c.neighbors[0].cost_auto),
            (Some(10), false)
        );
        assert_eq!(
            (c.neighbors[1].cost, c.neighbors[1].cost_auto),
            (None, true)
        );
        assert_eq!(c.cost, CostParams::default());
        let e = errors(&GOOD.replace("cost = 10", "cost = \"fast\""));
        assert_eq!(
            (e[0].key.as_str(), e[0].line),
            ("neighbor[0].cost", 16),
            "{e:?}"
        );
        assert!(e[0].message.contains("\"auto\""), "{}", e[0].message);
        let e = errors(&GOOD.replace("cost = 10", "cost = -1"));
        assert_eq!(e[0].key, "neighbor[0].cost", "{e:?}");
    }

    #[test]
    fn cost_table_overrides_and_checks() {
        let text = format!("{GOOD}\n[cost]\ninterval = 0.5\nwindow = 8\nrel_threshold = 0.1\n");
        let c = parse(&text, "f.toml").unwrap();
        assert_eq!(c.cost.interval, Duration::from_millis(500));
        assert_eq!((c.cost.window, c.cost.rel_threshold), (8, 0.1));
        assert_eq!(c.cost.hold_down, CostParams::default().hold_down);
        let e = errors(&format!("{GOOD}\n[cost]\nmin = 10\nmax = 5\nwindow = 0\n"));
        let keys: Vec<_> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(keys, [("cost.window", 27), ("cost.min", 25)], "{e:?}");
        let e = errors(&format!("{GOOD}\n[cost]\nwindw = 8\n"));
        assert_eq!((e[0].key.as_str(), e[0].line), ("cost.windw", 25), "{e:?}");
        let e = errors(&format!("{GOOD}\n[cost]\nhold_down = -1\n"));
        assert_eq!(e[0].key, "cost.hold_down", "{e:?}");
        // Damping keys: accepted, and reuse must be below suppress.
        let text = format!(
            "{GOOD}\n[cost]\ndamping = false\ndamp_half_life = 30\ndamp_max_suppress = 600\n"
        );
        let c = parse(&text, "f.toml").unwrap();
        assert!(!c.cost.damping);
        assert_eq!(c.cost.damp_half_life, Duration::from_secs(30));
        let e = errors(&format!(
            "{GOOD}\n[cost]\ndamp_suppress = 1000\ndamp_reuse = 1500\n"
        ));
        assert_eq!(
            (e[0].key.as_str(), e[0].line),
            ("cost.damp_reuse", 26),
            "{e:?}"
        );
    }

    #[test]
    fn cost_probe_and_probe_port() {
        use crate::probe::ProbeSetting;
        let c = parse(GOOD, "f.toml").unwrap();
        assert_eq!(
            (c.cost.probe, c.cost.probe_port),
            (ProbeSetting::Auto, 1790)
        );
        let text = format!("{GOOD}\n[cost]\nprobe = \"icmp\"\nprobe_port = 4790\n");
        let c = parse(&text, "f.toml").unwrap();
        assert_eq!(
            (c.cost.probe, c.cost.probe_port),
            (ProbeSetting::Icmp, 4790)
        );
        let e = errors(&format!("{GOOD}\n[cost]\nprobe_port = 0\n"));
        assert_eq!(
            (e[0].key.as_str(), e[0].line),
            ("cost.probe_port", 25),
            "{e:?}"
        );
        let e = errors(&format!("{GOOD}\n[cost]\nprobe_port = 65536\n"));
        assert_eq!(e[0].key, "cost.probe_port", "{e:?}");
        let e = errors(&format!("{GOOD}\n[cost]\nprobe = \"bfd\"\n"));
        assert_eq!(e[0].key, "cost.probe", "{e:?}");
        // Per neighbor, with cost = "auto" only.
        let c = parse(
            &GOOD.replace("cost = 10", "cost = \"auto\"\nprobe = \"icmp\""),
            "f.toml",
        )
        .unwrap();
        assert_eq!(c.neighbors[0].probe, Some(ProbeSetting::Icmp));
        let e = errors(&GOOD.replace("cost = 10", "cost = 10\nprobe = \"icmp\""));
        assert_eq!(
            (e[0].key.as_str(), e[0].line),
            ("neighbor[0].probe", 17),
            "{e:?}"
        );
    }

    #[test]
    fn ebgp_remote_as_is_rejected() {
        let ok = GOOD.replace(
            "cost = 10
",
            "cost = 10
remote_as = 4242421945
",
        );
        assert_eq!(
            parse(&ok, "f.toml").unwrap().neighbors[0].remote_as,
            4242421945
        );
        let text = GOOD.replace(
            "cost = 10
",
            "cost = 10
remote_as = 65001
",
        );
        let e = errors(&text);
        assert_eq!(
            (e[0].key.as_str(), e[0].line),
            ("neighbor[0].remote_as", 17),
            "{e:?}"
        );
        assert!(e[0].to_string().starts_with("f.toml:17:"), "{}", e[0]);
        assert!(e[0].message.contains("only iBGP"), "{}", e[0].message);
    }

    #[test]
    fn missing_required_key() {
        let e = errors("router_id = \"10.255.0.2\"\n[loopbacks]\nipv4 = [\"10.0.0.0/8\"]\n");
        assert!(e[0].message.contains("local_as"), "{e:?}");
    }

    #[test]
    fn control_group_and_metrics() {
        let c = parse(GOOD, "f.toml").unwrap();
        assert_eq!((c.control_group, c.metrics_listen), (None, None));
        let text = GOOD.replace(
            "local_as = 4242421945\n",
            "local_as = 4242421945\ncontrol_group = \"kittbgpd\"\n[metrics]\nlisten = \"127.0.0.1:9179\"\n",
        );
        let c = parse(&text, "f.toml").unwrap();
        assert_eq!(c.control_group.as_deref(), Some("kittbgpd"));
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9179".parse().unwrap()));
        let bad = GOOD.replace(
            "local_as = 4242421945\n",
            "local_as = 4242421945\ncontrol_group = \"a b\"\n",
        );
        assert_eq!(errors(&bad)[0].key, "control_group");
        let bad = text.replace("127.0.0.1:9179", "localhost");
        assert!(
            errors(&bad)[0].message.contains("socket address"),
            "{:?}",
            errors(&bad)
        );
    }
}
