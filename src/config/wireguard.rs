//! `[wireguard]` and `[neighbor.wireguard]`: the tunnels kittbgpd builds itself
//! (one interface, one peer, `AllowedIPs = 0.0.0.0/0, ::/0` per neighbor).
//!
//! Reads the key files the config names (their mode is checked: nobody but
//! the owner may read a key); nothing else. Link-local addresses not written
//! in the file are derived from public keys: see [`link_local_of`].

use super::validate::{key_span, line_col, Validator};
use super::OnStop;
use super::{Config, ConfigError};
use serde::{Deserialize, Serialize};
use std::net::Ipv6Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Default persistent keepalive, s (keeps NAT state and handshakes warm).
pub const DEFAULT_KEEPALIVE: u16 = 10;
/// Default tunnel MTU (WireGuard's own default over an IPv6 underlay).
pub const DEFAULT_MTU: u32 = 1420;
/// Default first UDP port: the n-th tunnel without `listen_port` listens on base + n.
pub const DEFAULT_LISTEN_PORT_BASE: u16 = 51820;
/// A handshake older than this marks the link down. WireGuard re-keys every
/// 120 s while packets flow (the keepalive makes sure they do) and gives up a
/// session after 180 s (REJECT_AFTER_TIME): older than that, nothing passes.
pub const DEFAULT_HANDSHAKE_TIMEOUT: u64 = 180;
/// Smallest accepted bound: below 120 s + retries a healthy link would flap.
pub const MIN_HANDSHAKE_TIMEOUT: u64 = 135;

/// `[wireguard]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWireguard {
    pub private_key_file: Option<Spanned<PathBuf>>,
    pub backend: Option<Spanned<String>>,
    pub persistent_keepalive: Option<u16>,
    pub mtu: Option<Spanned<u32>>,
    pub listen_port_base: Option<Spanned<u16>>,
    pub on_stop: Option<Spanned<String>>,
    pub state_file: Option<PathBuf>,
    pub handshake_timeout: Option<Spanned<u64>>,
    pub reconcile_interval: Option<Spanned<u64>>,
}

/// `[neighbor.wireguard]` as written.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileTunnel {
    pub public_key: Option<Spanned<String>>,
    pub endpoint: Option<Spanned<String>>,
    pub listen_port: Option<Spanned<u16>>,
    pub preshared_key_file: Option<Spanned<PathBuf>>,
    pub local_address: Option<Spanned<Ipv6Addr>>,
    pub persistent_keepalive: Option<u16>,
}

/// Which WireGuard implementation carries the tunnels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WgBackend {
    /// Kernel module if present, else `wireguard-go`.
    Auto,
    Kernel,
    Userspace,
}

/// A WireGuard key (private, public or preshared): 32 bytes, base64 in files.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WgKey(pub [u8; 32]);

impl WgKey {
    pub fn from_base64(s: &str) -> Option<WgKey> {
        wireguard_control::Key::from_base64(s.trim())
            .ok()
            .map(|k| WgKey(k.0))
    }
    pub fn to_base64(self) -> String {
        wireguard_control::Key(self.0).to_base64()
    }
    /// The public key of this private key (X25519).
    pub fn public(self) -> WgKey {
        WgKey(wireguard_control::Key(self.0).get_public().0)
    }
}

/// Never prints the bytes (a private key must not reach a log).
impl std::fmt::Debug for WgKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WgKey(..)")
    }
}

impl Serialize for WgKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

/// The effective `[wireguard]`: node-wide settings and one [`Tunnel`] per
/// neighbor with a `[neighbor.wireguard]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wireguard {
    pub private_key_file: PathBuf,
    /// Never serialized: `check` prints the effective config.
    #[serde(skip)]
    pub private_key: WgKey,
    pub public_key: WgKey,
    pub backend: WgBackend,
    pub on_stop: OnStop,
    /// Names of the interfaces this node created (so a tunnel dropped from the
    /// config is deleted at the next start, and nothing else ever is).
    pub state_file: PathBuf,
    #[serde(with = "super::validate::secs")]
    pub handshake_timeout: Duration,
    #[serde(with = "super::validate::secs")]
    pub reconcile_interval: Duration,
    #[serde(rename = "tunnel")]
    pub tunnels: Vec<Tunnel>,
}

/// One tunnel: interface, its single peer, both link-local addresses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tunnel {
    /// Index of its neighbor in [`super::Config::neighbors`] (of this file:
    /// a reload keeps the running order, so the runtime goes by name).
    pub neighbor: usize,
    /// Its neighbor's name: what a reload matches tunnels and sessions by.
    pub neighbor_name: String,
    pub interface: String,
    pub peer_public_key: WgKey,
    /// `host:port` as written; hostnames are resolved (and re-resolved) at run time.
    pub endpoint: Option<String>,
    pub listen_port: u16,
    pub preshared_key_file: Option<PathBuf>,
    #[serde(skip)]
    pub preshared_key: Option<WgKey>,
    pub local_address: Ipv6Addr,
    pub peer_address: Ipv6Addr,
    pub persistent_keepalive: u16,
    pub mtu: u32,
    /// Where `[neighbor.wireguard]` is written (line, column), for errors found later.
    #[serde(skip)]
    pub at: (usize, usize),
}

/// The link-local address of a node on a tunnel, from its public key:
/// `fe80::/64` followed by the first 8 bytes of the key. Both ends know both
/// keys, so both derive the same pair of addresses; the keys are random, so
/// the two differ (the validator refuses a peer key equal to our own).
pub fn link_local_of(key: &WgKey) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[0] = 0xfe;
    b[1] = 0x80;
    b[8..].copy_from_slice(&key.0[..8]);
    Ipv6Addr::from(b)
}

/// `host:port` or `[v6]:port`: the host part and the port, or why not.
pub fn split_endpoint(s: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or("expected [IPv6]:port".to_string())?;
        (h, p)
    } else {
        s.rsplit_once(':')
            .ok_or("expected host:port (e.g. \"203.0.113.7:51820\")".to_string())?
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{host:?} is not a host name or address"));
    }
    if !s.starts_with('[') && host.contains(':') {
        return Err("an IPv6 address needs brackets: \"[2001:db8::1]:51820\"".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((host, p)),
        _ => Err(format!("{port:?} is not a port (1-65535)")),
    }
}

/// Per neighbor, what the validator needs before the neighbor itself is checked.
pub(super) struct NeighborWg {
    pub table: Spanned<FileTunnel>,
    pub peer_key: Option<WgKey>,
}

impl Validator<'_> {
    /// A key file: readable, mode with no group/other bits, one base64 key.
    fn read_key(&mut self, span: Range<usize>, key: &str, path: &Path) -> Option<WgKey> {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.error(span, key, format!("{}: {e}", path.display()));
                return None;
            }
        };
        if meta.mode() & 0o077 != 0 {
            self.error(
                span.clone(),
                key,
                format!(
                    "{} has mode {:o}: a key must be readable by its owner only (chmod 600)",
                    path.display(),
                    meta.mode() & 0o777
                ),
            );
        }
        match std::fs::read_to_string(path) {
            Ok(text) => match WgKey::from_base64(&text) {
                Some(k) => Some(k),
                None => {
                    self.error(
                        span,
                        key,
                        format!("{}: not a WireGuard key (32 bytes in base64, as `kittbgpd wg genkey` writes)", path.display()),
                    );
                    None
                }
            },
            Err(e) => {
                self.error(span, key, format!("{}: {e}", path.display()));
                None
            }
        }
    }

    /// Relative key paths are taken from the config file's directory.
    fn beside_config(&self, p: &Path) -> PathBuf {
        match Path::new(self.file).parent() {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// `[wireguard]` without its tunnels; `None` (and an error) if absent but needed.
    pub(super) fn check_wireguard(
        &mut self,
        w: Option<Spanned<FileWireguard>>,
        needed_at: Option<(Range<usize>, String)>,
        control_socket: &Path,
    ) -> Option<Wireguard> {
        let Some(w) = w else {
            if let Some((span, key)) = needed_at {
                self.error(
                    span,
                    &key,
                    "a tunnel needs the node's [wireguard] table (private_key_file)",
                );
            }
            return None;
        };
        let span = w.span();
        let w = w.into_inner();
        let Some(pk) = &w.private_key_file else {
            self.error(
                span,
                "wireguard.private_key_file",
                "missing: the node's private key (`kittbgpd wg genkey -o FILE`)",
            );
            return None;
        };
        let private_key_file = self.beside_config(pk.get_ref());
        let private_key =
            self.read_key(pk.span(), "wireguard.private_key_file", &private_key_file)?;
        let backend = match &w.backend {
            None => WgBackend::Auto,
            Some(b) => match b.get_ref().as_str() {
                "auto" => WgBackend::Auto,
                "kernel" => WgBackend::Kernel,
                "userspace" => WgBackend::Userspace,
                other => {
                    self.error(
                        b.span(),
                        "wireguard.backend",
                        format!("{other:?}: expected \"auto\", \"kernel\" or \"userspace\""),
                    );
                    WgBackend::Auto
                }
            },
        };
        let on_stop = self.on_stop(w.on_stop.as_ref(), "wireguard.on_stop");
        let handshake_timeout = match &w.handshake_timeout {
            Some(t) if *t.get_ref() < MIN_HANDSHAKE_TIMEOUT => {
                self.error(
                    t.span(),
                    "wireguard.handshake_timeout",
                    format!("{} s is below {MIN_HANDSHAKE_TIMEOUT} s: WireGuard re-keys every 120 s, a healthy link would be taken down", t.get_ref()),
                );
                DEFAULT_HANDSHAKE_TIMEOUT
            }
            Some(t) => *t.get_ref(),
            None => DEFAULT_HANDSHAKE_TIMEOUT,
        };
        let reconcile_interval = match &w.reconcile_interval {
            Some(t) if *t.get_ref() == 0 => {
                self.error(
                    t.span(),
                    "wireguard.reconcile_interval",
                    "must be at least 1 s",
                );
                30
            }
            Some(t) => *t.get_ref(),
            None => 30,
        };
        if let Some(m) = &w.mtu {
            if !(1280..=65535).contains(m.get_ref()) {
                self.error(
                    m.span(),
                    "wireguard.mtu",
                    format!("{}: an IPv6 link needs 1280 to 65535", m.get_ref()),
                );
            }
        }
        let state_file = w
            .state_file
            .clone()
            .unwrap_or_else(|| control_socket.with_extension("tunnels"));
        // Node-wide values each tunnel inherits; `tunnels` is filled by `check_tunnel`.
        self.wg_defaults = Some(WgDefaults {
            keepalive: w.persistent_keepalive.unwrap_or(DEFAULT_KEEPALIVE),
            mtu: w.mtu.as_ref().map_or(DEFAULT_MTU, |m| *m.get_ref()),
            port_base: w
                .listen_port_base
                .as_ref()
                .map_or(DEFAULT_LISTEN_PORT_BASE, |p| *p.get_ref()),
        });
        Some(Wireguard {
            private_key_file,
            public_key: private_key.public(),
            private_key,
            backend,
            on_stop,
            state_file,
            handshake_timeout: Duration::from_secs(handshake_timeout),
            reconcile_interval: Duration::from_secs(reconcile_interval),
            tunnels: Vec::new(),
        })
    }

    /// The peer's public key of a `[neighbor.wireguard]` table, if well formed.
    pub(super) fn peer_key(
        &mut self,
        i: usize,
        nb_span: Range<usize>,
        t: &FileTunnel,
    ) -> Option<WgKey> {
        let key = format!("neighbor[{i}].wireguard.public_key");
        match &t.public_key {
            None => {
                self.error(nb_span, &key, "missing: the peer's WireGuard public key");
                None
            }
            Some(k) => {
                let parsed = WgKey::from_base64(k.get_ref());
                if parsed.is_none() {
                    self.error(
                        k.span(),
                        &key,
                        format!(
                            "{:?} is not a WireGuard key (32 bytes in base64)",
                            k.get_ref()
                        ),
                    );
                }
                parsed
            }
        }
    }

    /// One neighbor's tunnel, after the neighbor itself was checked.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_tunnel(
        &mut self,
        wg: &mut Wireguard,
        i: usize,
        (neighbor, neighbor_name): (usize, &str),
        nb_span: Range<usize>,
        interface: Option<&str>,
        peer_address: std::net::IpAddr,
        t: NeighborWg,
    ) {
        let key = |k: &str| format!("neighbor[{i}].wireguard.{k}");
        let d = self.wg_defaults.clone().unwrap_or_default();
        let table_span = t.table.span();
        let f = t.table.into_inner();
        let Some(peer_key) = t.peer_key else { return };
        let Some(interface) = interface else {
            self.error(
                nb_span,
                &format!("neighbor[{i}].interface"),
                "a tunnel needs its interface name (e.g. \"wg2\")",
            );
            return;
        };
        let peer_address = match peer_address {
            std::net::IpAddr::V6(a) if a.is_unicast_link_local() => a,
            other => {
                self.error(
                    nb_span,
                    &format!("neighbor[{i}].address"),
                    format!("{other}: a tunnel's neighbor is reached on its link-local address"),
                );
                return;
            }
        };
        let pk_span = f
            .public_key
            .as_ref()
            .map_or(table_span.clone(), |k| k.span());
        if peer_key == wg.public_key {
            self.error(
                pk_span.clone(),
                &key("public_key"),
                "is this node's own public key",
            );
        }
        if let Some(o) = wg.tunnels.iter().find(|o| o.peer_public_key == peer_key) {
            self.error(
                pk_span,
                &key("public_key"),
                format!(
                    "the same peer key as the tunnel {}: one tunnel per peer",
                    o.interface
                ),
            );
        }
        if let Some(o) = wg.tunnels.iter().find(|o| o.interface == interface) {
            self.error(
                table_span.clone(),
                &format!("neighbor[{i}].interface"),
                format!(
                    "interface {} already carries a tunnel (neighbor {})",
                    o.interface, o.neighbor
                ),
            );
        }
        let endpoint = f
            .endpoint
            .as_ref()
            .and_then(|e| match split_endpoint(e.get_ref()) {
                Ok(_) => Some(e.get_ref().clone()),
                Err(why) => {
                    self.error(
                        e.span(),
                        &key("endpoint"),
                        format!("{:?}: {why}", e.get_ref()),
                    );
                    None
                }
            });
        let (port_span, listen_port) = match &f.listen_port {
            Some(p) if *p.get_ref() == 0 => {
                self.error(p.span(), &key("listen_port"), "must not be 0");
                (p.span(), 0)
            }
            Some(p) => (p.span(), *p.get_ref()),
            None => {
                let n = wg.tunnels.len() as u32;
                let port = u32::from(d.port_base) + n;
                if port > 65535 {
                    self.error(
                        table_span.clone(),
                        &key("listen_port"),
                        format!("listen_port_base + {n} is past 65535: set listen_port"),
                    );
                }
                (
                    key_span(self.text, table_span.clone(), "listen_port"),
                    port as u16,
                )
            }
        };
        if let Some(o) = wg
            .tunnels
            .iter()
            .find(|o| o.listen_port == listen_port && listen_port != 0)
        {
            self.error(
                port_span,
                &key("listen_port"),
                format!(
                    "UDP port {listen_port} is already the tunnel {}'s",
                    o.interface
                ),
            );
        }
        let (preshared_key_file, preshared_key) = match &f.preshared_key_file {
            Some(p) => {
                let path = self.beside_config(p.get_ref());
                let k = self.read_key(p.span(), &key("preshared_key_file"), &path);
                (Some(path), k)
            }
            None => (None, None),
        };
        let local_address = match &f.local_address {
            Some(a) if !a.get_ref().is_unicast_link_local() => {
                self.error(
                    a.span(),
                    &key("local_address"),
                    format!("{} is not link-local (fe80::/10)", a.get_ref()),
                );
                link_local_of(&wg.public_key)
            }
            Some(a) => *a.get_ref(),
            None => link_local_of(&wg.public_key),
        };
        if local_address == peer_address {
            self.error(
                table_span.clone(),
                &key("local_address"),
                format!("{local_address} is also the neighbor's address"),
            );
        }
        wg.tunnels.push(Tunnel {
            neighbor,
            neighbor_name: neighbor_name.to_string(),
            interface: interface.to_string(),
            peer_public_key: peer_key,
            endpoint,
            listen_port,
            preshared_key_file,
            preshared_key,
            local_address,
            peer_address,
            persistent_keepalive: f.persistent_keepalive.unwrap_or(d.keepalive),
            mtu: d.mtu,
            at: line_col(self.text, table_span.start),
        });
    }
}

/// Across the files of one fabric (`kittbgpd check -c A.toml B.toml ...`):
/// a tunnel whose peer key is another of these nodes must have a tunnel back,
/// the same pair of link-local addresses seen from both ends, and an endpoint
/// on at least one end (else neither side can start a handshake).
pub fn cross_check(nodes: &[(&str, &Config)]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (a, (file, cfg)) in nodes.iter().enumerate() {
        let Some(me) = cfg.wireguard.as_ref() else {
            continue;
        };
        for t in &me.tunnels {
            let err = |message: String| ConfigError {
                file: file.to_string(),
                line: t.at.0,
                column: t.at.1,
                key: format!("neighbor[{}].wireguard", t.neighbor),
                message,
            };
            let Some((b, (other, peer))) = nodes.iter().enumerate().find_map(|(b, (f, c))| {
                c.wireguard
                    .as_ref()
                    .filter(|w| w.public_key == t.peer_public_key)
                    .map(|w| (b, (f, w)))
            }) else {
                continue; // a node outside these files
            };
            let Some(back) = peer
                .tunnels
                .iter()
                .find(|u| u.peer_public_key == me.public_key)
            else {
                errors.push(err(format!(
                    "{other} has the peer key but no tunnel back to this node"
                )));
                continue;
            };
            if t.peer_address != back.local_address || t.local_address != back.peer_address {
                errors.push(err(format!(
                    "addresses differ between the ends: here {} -> {}, in {other} ({}) {} -> {}",
                    t.local_address,
                    t.peer_address,
                    back.interface,
                    back.local_address,
                    back.peer_address
                )));
            }
            if t.endpoint.is_none() && back.endpoint.is_none() && a < b {
                errors.push(err(format!(
                    "no endpoint on either end (here nor in {other}, {}): neither side can start a handshake",
                    back.interface
                )));
            }
        }
    }
    errors
}

/// Node-wide values each tunnel inherits.
#[derive(Debug, Clone)]
pub(super) struct WgDefaults {
    pub keepalive: u16,
    pub mtu: u32,
    pub port_base: u16,
}

impl Default for WgDefaults {
    fn default() -> Self {
        WgDefaults {
            keepalive: DEFAULT_KEEPALIVE,
            mtu: DEFAULT_MTU,
            port_base: DEFAULT_LISTEN_PORT_BASE,
        }
    }
}

impl Validator<'_> {
    /// Takes a neighbor's `[neighbor.wireguard]` out of it; a missing `address`
    /// becomes the one derived from the peer's key ([`link_local_of`]).
    pub(super) fn neighbor_tunnel(
        &mut self,
        i: usize,
        span: Range<usize>,
        n: &mut super::file::FileNeighbor,
    ) -> Option<NeighborWg> {
        let table = n.wireguard.take()?;
        let peer_key = self.peer_key(i, span.clone(), table.get_ref());
        if n.address.is_none() {
            if let Some(k) = &peer_key {
                n.address = Some(Spanned::new(span, std::net::IpAddr::V6(link_local_of(k))));
            }
        }
        Some(NeighborWg { table, peer_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, ConfigError};
    use std::os::unix::fs::PermissionsExt;

    const PEER2: &str = "46IvYiIKWqzQZR3fudvojFj3sVutKa/YLRz3ENyM+Eg=";
    const PEER3: &str = "IaB+M2282bFOKcdhAbAx+2BUApJuAfdxJzKCRRdb7ww=";

    /// A private key file of mode `mode` in a fresh directory; the config beside it.
    fn node(mode: u32, key: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.key");
        std::fs::write(&p, format!("{key}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }
    const KEY1: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    fn config(neighbors: &str) -> String {
        format!(
            "router_id = \"10.255.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.255.0.0/16\"]\n\
             [wireguard]\nprivate_key_file = \"node.key\"\n{neighbors}"
        )
    }

    fn run(dir: &tempfile::TempDir, text: &str) -> Result<crate::config::Config, Vec<ConfigError>> {
        let file = dir.path().join("fabric.toml");
        parse(text, file.to_str().unwrap()).map_err(|e| e.0)
    }

    #[test]
    fn tunnels_resolve_with_derived_addresses_and_ports() {
        let dir = node(0o600, KEY1);
        let text = config(&format!(
            "[[neighbor]]\ninterface = \"wg2\"\n[neighbor.wireguard]\npublic_key = \"{PEER2}\"\n\
             endpoint = \"172.31.2.2:51001\"\n\
             [[neighbor]]\ninterface = \"wg3\"\n[neighbor.wireguard]\npublic_key = \"{PEER3}\"\n\
             local_address = \"fe80::1:3\"\npersistent_keepalive = 0\n"
        ));
        let cfg = run(&dir, &text).unwrap();
        let wg = cfg.wireguard.as_ref().unwrap();
        let me = WgKey::from_base64(KEY1).unwrap();
        assert_eq!(wg.public_key, me.public());
        assert_eq!(wg.backend, WgBackend::Auto);
        assert_eq!(wg.tunnels.len(), 2);
        let (t2, t3) = (&wg.tunnels[0], &wg.tunnels[1]);
        let p2 = WgKey::from_base64(PEER2).unwrap();
        // The neighbor's address comes from its key; ours from our key.
        assert_eq!(
            cfg.neighbors[0].address,
            std::net::IpAddr::V6(link_local_of(&p2))
        );
        assert_eq!(t2.peer_address, link_local_of(&p2));
        assert_eq!(t2.local_address, link_local_of(&me.public()));
        assert_eq!(link_local_of(&p2).segments()[..4], [0xfe80, 0, 0, 0]);
        assert_eq!((t2.listen_port, t3.listen_port), (51820, 51821));
        assert_eq!((t2.persistent_keepalive, t3.persistent_keepalive), (10, 0));
        assert_eq!(t3.local_address, "fe80::1:3".parse::<Ipv6Addr>().unwrap());
        assert_eq!(t2.endpoint.as_deref(), Some("172.31.2.2:51001"));
        assert_eq!(t2.mtu, 1420);
        assert_eq!(
            wg.state_file,
            PathBuf::from("/run/kittbgpd/kittbgpd.tunnels")
        );
        // `check` prints the effective config: never the private key.
        let shown = toml::to_string_pretty(&cfg).unwrap();
        assert!(!shown.contains(KEY1), "{shown}");
        assert!(shown.contains(&me.public().to_base64()));
    }

    fn find<'a>(errs: &'a [ConfigError], key: &str) -> &'a ConfigError {
        errs.iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("no error on {key}: {errs:#?}"))
    }

    #[test]
    fn key_file_must_be_private_and_well_formed() {
        let dir = node(0o644, KEY1);
        let errs = run(&dir, &config("")).unwrap_err();
        let e = find(&errs, "wireguard.private_key_file");
        assert_eq!(e.line, 6);
        assert!(e.message.contains("chmod 600"), "{}", e.message);

        let dir = node(0o600, "not a key");
        let errs = run(&dir, &config("")).unwrap_err();
        assert!(find(&errs, "wireguard.private_key_file")
            .message
            .contains("base64"));
    }

    #[test]
    fn duplicate_ports_keys_and_bad_values_are_located() {
        let dir = node(0o600, KEY1);
        let text = config(&format!(
            "[[neighbor]]\ninterface = \"wg2\"\n[neighbor.wireguard]\npublic_key = \"{PEER2}\"\nlisten_port = 51001\n\
             [[neighbor]]\ninterface = \"wg3\"\n[neighbor.wireguard]\npublic_key = \"{PEER2}\"\nlisten_port = 51001\n\
             endpoint = \"2001:db8::1:51820\"\n\
             [[neighbor]]\ninterface = \"wg4\"\n[neighbor.wireguard]\npublic_key = \"abc\"\n"
        ));
        let errs = run(&dir, &text).unwrap_err();
        let e = find(&errs, "neighbor[1].wireguard.listen_port");
        assert_eq!(e.line, 16);
        assert!(e.message.contains("wg2"));
        let e = find(&errs, "neighbor[1].wireguard.public_key");
        assert_eq!(e.line, 15);
        assert!(e.message.contains("one tunnel per peer"));
        assert!(find(&errs, "neighbor[1].wireguard.endpoint")
            .message
            .contains("brackets"));
        assert_eq!(find(&errs, "neighbor[2].wireguard.public_key").line, 21);
    }

    #[test]
    fn tunnel_without_node_table_or_interface() {
        let dir = node(0o600, KEY1);
        let text = format!(
            "router_id = \"10.255.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.255.0.0/16\"]\n\
             [[neighbor]]\naddress = \"fe80::2\"\ninterface = \"wg2\"\n[neighbor.wireguard]\npublic_key = \"{PEER2}\"\n"
        );
        let errs = run(&dir, &text).unwrap_err();
        assert!(find(&errs, "neighbor[0].wireguard")
            .message
            .contains("[wireguard]"));

        let text = config(&format!(
            "[[neighbor]]\n[neighbor.wireguard]\npublic_key = \"{PEER2}\"\n"
        ));
        let errs = run(&dir, &text).unwrap_err();
        assert!(find(&errs, "neighbor[0].interface")
            .message
            .contains("interface"));
    }

    #[test]
    fn fabric_files_checked_together() {
        // Two nodes with each other's keys; node 2 has no endpoint, node 1 none either.
        let (d1, d2) = (node(0o600, KEY1), tempfile::tempdir().unwrap());
        let k2 = WgKey(wireguard_control::Key::generate_private().0);
        let p2 = d2.path().join("node.key");
        std::fs::write(&p2, k2.to_base64()).unwrap();
        std::fs::set_permissions(&p2, std::fs::Permissions::from_mode(0o600)).unwrap();
        let k1 = WgKey::from_base64(KEY1).unwrap().public().to_base64();
        let t1 = config(&format!(
            "[[neighbor]]\ninterface = \"wg2\"\n[neighbor.wireguard]\npublic_key = \"{}\"\n",
            k2.public().to_base64()
        ));
        let t2 = config(&format!(
            "[[neighbor]]\ninterface = \"wg1\"\n[neighbor.wireguard]\npublic_key = \"{k1}\"\n"
        ));
        let c1 = run(&d1, &t1).unwrap();
        let c2 = run(&d2, &t2).unwrap();
        let errs = cross_check(&[("n1.toml", &c1), ("n2.toml", &c2)]);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!((errs[0].file.as_str(), errs[0].line), ("n1.toml", 9));
        assert!(errs[0].message.contains("no endpoint on either end"));
        // An endpoint on one end is enough; derived addresses agree.
        let t1 = t1 + "endpoint = \"192.0.2.2:51820\"\n";
        let c1 = run(&d1, &t1).unwrap();
        assert_eq!(cross_check(&[("n1.toml", &c1), ("n2.toml", &c2)]), vec![]);
        // A configured address the other end does not use; and no tunnel back.
        let c2b = run(&d2, &(t2 + "local_address = \"fe80::9\"\n")).unwrap();
        let errs = cross_check(&[("n1.toml", &c1), ("n2.toml", &c2b)]);
        assert!(
            errs.iter().any(|e| e.message.contains("addresses differ")),
            "{errs:#?}"
        );
        let lone = run(&d2, &config("")).unwrap();
        let errs = cross_check(&[("n1.toml", &c1), ("n2.toml", &lone)]);
        assert!(errs[0].message.contains("no tunnel back"), "{errs:#?}");
    }

    #[test]
    fn endpoints() {
        assert_eq!(split_endpoint("a.example:51820"), Ok(("a.example", 51820)));
        assert_eq!(split_endpoint("[2001:db8::1]:1"), Ok(("2001:db8::1", 1)));
        assert!(split_endpoint("host").is_err());
        assert!(split_endpoint("host:0").is_err());
        assert!(split_endpoint(":51820").is_err());
    }
}
