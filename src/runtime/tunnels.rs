//! WireGuard tunnels built from the config: reads what runs (rtnetlink for
//! the interface, wireguard-control for the device), lets [`crate::tunnel::diff`]
//! decide, applies the operations. One task owns it after start: it re-resolves
//! endpoints and repairs drift every `reconcile_interval`, reads handshake ages
//! every few seconds (a stale handshake holds the session down, as a lost probe
//! does) and publishes what `show tunnels` / `show links` print.
//!
//! Ownership: the names of the tunnels this node built are kept in
//! `[wireguard] state_file`; at start a name in it that the config no longer
//! names is deleted. No other interface is ever touched.

use super::heard::Heard;
use super::peer::PeerCmd;
use crate::config::wireguard::{Tunnel, WgKey, Wireguard};
use crate::config::OnStop;
use crate::tunnel::liveness::{HandshakeState, Liveness};
use crate::tunnel::{self, Actual, ActualPeer, Chosen, Desired, Op, PeerSpec};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};
use wireguard_control::{Backend, DeviceUpdate, InterfaceName, Key, PeerConfigBuilder};

/// How often handshake ages and counters are read.
const STATS_EVERY: Duration = Duration::from_secs(2);
/// wireguard-go's UAPI sockets.
const UAPI_DIR: &str = "/var/run/wireguard";

pub enum TunnelMsg {
    /// Apply `on_stop`, then answer.
    Stop { done: oneshot::Sender<()> },
    /// A reload: the new `[wireguard]` (tunnels keyed by interface; the
    /// backend stays). Created, updated in place or deleted (ours only), then answered.
    Reconfigure {
        wg: Box<Wireguard>,
        done: oneshot::Sender<()>,
    },
    /// The live sessions by neighbor name (after start and every reload).
    Peers(BTreeMap<String, mpsc::UnboundedSender<PeerCmd>>),
    /// The probers' liveness marks by neighbor name (after start and every
    /// reload): a newer handshake or more bytes received is heard from it.
    Heard(BTreeMap<String, Heard>),
}

/// A tunnel's counters at the last reading: what moved since is activity.
#[derive(Clone, Copy)]
struct Activity {
    rx_bytes: u64,
    read_at: Instant,
}

/// What `show tunnels` prints of one tunnel.
pub type TunnelView = serde_json::Value;

pub struct Tunnels {
    wg: Wireguard,
    backend: Chosen,
    handle: rtnetlink::Handle,
    owned: BTreeSet<String>,
    /// Last resolved endpoint per interface (kept when a lookup fails).
    resolved: BTreeMap<String, SocketAddr>,
}

/// Which backends this host has.
fn available() -> tunnel::Available {
    let kernel = Path::new("/sys/module/wireguard").exists() || {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let dir = format!(
            "/lib/modules/{}/kernel/drivers/net/wireguard",
            release.trim()
        );
        std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
    };
    let prog = userspace_program();
    let userspace = if prog.contains('/') {
        Path::new(&prog).exists()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(&prog).is_file()))
    };
    tunnel::Available { kernel, userspace }
}

/// As wg-quick: `WG_QUICK_USERSPACE_IMPLEMENTATION`, else `wireguard-go`.
fn userspace_program() -> String {
    std::env::var("WG_USERSPACE_IMPLEMENTATION")
        .or_else(|_| std::env::var("WG_QUICK_USERSPACE_IMPLEMENTATION"))
        .unwrap_or_else(|_| "wireguard-go".to_string())
}

impl Tunnels {
    /// Choose the backend and bring the tunnels to the config (before any
    /// session starts, so sockets can bind to them).
    pub async fn start(wg: Wireguard) -> Result<Tunnels, String> {
        let backend = tunnel::choose_backend(wg.backend, available())?;
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("netlink: {e}"))?;
        tokio::spawn(connection);
        let owned = read_owned(&wg.state_file);
        info!(backend = ?backend, tunnels = wg.tunnels.len(), state_file = %wg.state_file.display(), "WireGuard tunnels from the config");
        let mut t = Tunnels {
            wg,
            backend,
            handle,
            owned,
            resolved: BTreeMap::new(),
        };
        t.reconcile(true).await;
        Ok(t)
    }

    fn wg_backend(&self) -> Backend {
        match self.backend {
            Chosen::Kernel => Backend::Kernel,
            Chosen::Userspace => Backend::Userspace,
        }
    }

    /// The tunnels as the config wants them, endpoints resolved now.
    async fn desired(&mut self) -> Vec<Desired> {
        let mut out = Vec::new();
        for t in self.wg.tunnels.clone() {
            let endpoint = match &t.endpoint {
                None => None,
                Some(e) => match tokio::net::lookup_host(e.as_str()).await {
                    Ok(mut addrs) => match addrs.next() {
                        Some(a) => {
                            self.resolved.insert(t.interface.clone(), a);
                            Some(a)
                        }
                        None => self.resolved.get(&t.interface).copied(),
                    },
                    Err(err) => {
                        warn!(tunnel = %t.interface, endpoint = %e, "cannot resolve endpoint: {err}; keeping the last one");
                        self.resolved.get(&t.interface).copied()
                    }
                },
            };
            out.push(Desired {
                name: t.interface.clone(),
                private_key: self.wg.private_key,
                listen_port: t.listen_port,
                peer: PeerSpec {
                    public_key: t.peer_public_key,
                    preshared_key: t.preshared_key,
                    endpoint,
                    keepalive: t.persistent_keepalive,
                },
                mtu: t.mtu,
                address: t.local_address,
            });
        }
        out
    }

    /// Compare and apply; remember what we own. `start`: see [`tunnel::diff`].
    pub async fn reconcile(&mut self, start: bool) {
        let desired = self.desired().await;
        let names: BTreeSet<String> = desired
            .iter()
            .map(|d| d.name.clone())
            .chain(self.owned.iter().cloned())
            .collect();
        let mut actual = BTreeMap::new();
        for name in &names {
            if let Some(a) = self.read(name).await {
                actual.insert(name.clone(), a);
            }
        }
        let ops = tunnel::diff(&desired, &actual, &self.owned, start);
        let mut failed_delete = BTreeSet::new();
        for op in ops {
            debug!(?op, "tunnel");
            let label = op_label(&op);
            if let Op::Conflict { name, why } = &op {
                warn!(tunnel = %name, "{why}: left alone");
                continue;
            }
            if let Err(e) = self.apply(&op).await {
                warn!(%label, "tunnel operation failed: {e}");
                if let Op::Delete { name } = &op {
                    failed_delete.insert(name.clone());
                }
            } else if !matches!(op, Op::NoAddrGen { .. }) {
                info!("tunnel: {label}");
            }
        }
        // Ours from now on: every configured WireGuard tunnel (built or taken
        // over), plus those we failed to delete (tried again next time).
        let mut owned: BTreeSet<String> = desired
            .iter()
            .filter(|d| actual.get(&d.name).is_none_or(|a| a.wireguard))
            .map(|d| d.name.clone())
            .collect();
        owned.extend(failed_delete);
        if owned != self.owned || !self.wg.state_file.exists() {
            if let Err(e) = write_owned(&self.wg.state_file, &owned) {
                warn!(file = %self.wg.state_file.display(), "cannot record the tunnels we own: {e}");
            }
        }
        self.owned = owned;
    }

    async fn link(&self, name: &str) -> Option<(u32, bool, Option<u32>)> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let msg = links.try_next().await.ok().flatten()?;
        let up = msg.header.flags.contains(LinkFlags::Up);
        let mtu = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        });
        Some((msg.header.index, up, mtu))
    }

    async fn link_local(&self, index: u32) -> Vec<Ipv6Addr> {
        let mut out = Vec::new();
        let mut dump = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Ok(Some(msg)) = dump.try_next().await {
            for a in &msg.attributes {
                if let AddressAttribute::Address(IpAddr::V6(ip)) = a {
                    if ip.is_unicast_link_local() && !out.contains(ip) {
                        out.push(*ip);
                    }
                }
            }
        }
        out
    }

    /// What runs under `name`; `None`: no such interface.
    async fn read(&self, name: &str) -> Option<Actual> {
        let (index, up, mtu) = self.link(name).await?;
        let link_local = self.link_local(index).await;
        let device = self.device(name).await;
        let mut a = Actual {
            wireguard: device.is_some(),
            up,
            mtu,
            link_local,
            ..Actual::default()
        };
        if let Some(d) = device {
            a.private_key = d.private_key.map(|k| WgKey(k.0));
            a.listen_port = d.listen_port;
            a.peers = d
                .peers
                .iter()
                .map(|p| ActualPeer {
                    public_key: WgKey(p.config.public_key.0),
                    preshared_key: p
                        .config
                        .preshared_key
                        .as_ref()
                        .filter(|k| k.0 != [0; 32])
                        .map(|k| WgKey(k.0)),
                    endpoint: p.config.endpoint,
                    keepalive: p.config.persistent_keepalive_interval.unwrap_or(0),
                    allows_all: allows_all(&p.config.allowed_ips),
                })
                .collect();
        }
        Some(a)
    }

    async fn device(&self, name: &str) -> Option<wireguard_control::Device> {
        let iface: InterfaceName = name.parse().ok()?;
        let backend = self.wg_backend();
        if backend == Backend::Userspace && !uapi_socket(name).exists() {
            return None;
        }
        tokio::task::spawn_blocking(move || wireguard_control::Device::get(&iface, backend).ok())
            .await
            .ok()
            .flatten()
    }

    async fn index(&self, name: &str) -> Result<u32, String> {
        self.link(name)
            .await
            .map(|(i, _, _)| i)
            .ok_or_else(|| format!("no interface {name}"))
    }

    async fn apply(&mut self, op: &Op) -> Result<(), String> {
        let nl = |e: rtnetlink::Error| e.to_string();
        match op {
            Op::Create { name } => self.create(name).await,
            Op::SetDevice {
                name,
                private_key,
                listen_port,
            } => {
                let mut u = DeviceUpdate::new();
                if let Some(k) = private_key {
                    u = u.set_private_key(Key(k.0));
                }
                if let Some(p) = listen_port {
                    u = u.set_listen_port(*p);
                }
                self.update(name, u).await
            }
            Op::SetPeer {
                name,
                public_key,
                preshared_key,
                endpoint,
                keepalive,
                allow_all,
            } => {
                let mut p = PeerConfigBuilder::new(&Key(public_key.0));
                match preshared_key {
                    Some(Some(k)) => p = p.set_preshared_key(Key(k.0)),
                    Some(None) => p = p.unset_preshared_key(),
                    None => {}
                }
                if let Some(e) = endpoint {
                    p = p.set_endpoint(*e);
                }
                if let Some(k) = keepalive {
                    p = p.set_persistent_keepalive_interval(*k);
                }
                if *allow_all {
                    p = p
                        .replace_allowed_ips()
                        .add_allowed_ip(IpAddr::from([0u8; 4]), 0)
                        .add_allowed_ip(IpAddr::from([0u16; 8]), 0);
                }
                self.update(name, DeviceUpdate::new().add_peer(p)).await
            }
            Op::RemovePeer { name, public_key } => {
                let u = DeviceUpdate::new().remove_peer_by_key(&Key(public_key.0));
                self.update(name, u).await
            }
            Op::SetMtu { name, mtu } => {
                let index = self.index(name).await?;
                let msg = rtnetlink::LinkUnspec::new_with_index(index)
                    .mtu(*mtu)
                    .build();
                self.handle.link().set(msg).execute().await.map_err(nl)
            }
            Op::NoAddrGen { name } => {
                // Pitfall: a TUN device set up gets a random link-local; only ours.
                let path = format!("/proc/sys/net/ipv6/conf/{name}/addr_gen_mode");
                std::fs::write(&path, "1").map_err(|e| format!("{path}: {e}"))
            }
            Op::AddAddress { name, address } => {
                let index = self.index(name).await?;
                let mut req = self
                    .handle
                    .address()
                    .add(index, IpAddr::V6(*address), 64)
                    .replace();
                // No duplicate address detection: the other end has another address.
                let m = req.message_mut();
                m.header.flags = AddressHeaderFlags::Nodad;
                m.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
                req.execute().await.map_err(nl)
            }
            Op::DelAddress { name, address } => {
                let index = self.index(name).await?;
                let mut dump = self
                    .handle
                    .address()
                    .get()
                    .set_link_index_filter(index)
                    .set_address_filter(IpAddr::V6(*address))
                    .execute();
                while let Ok(Some(msg)) = dump.try_next().await {
                    self.handle.address().del(msg).execute().await.map_err(nl)?;
                }
                Ok(())
            }
            Op::Up { name } => {
                let index = self.index(name).await?;
                let msg = rtnetlink::LinkUnspec::new_with_index(index).up().build();
                self.handle.link().set(msg).execute().await.map_err(nl)
            }
            Op::Delete { name } => {
                let index = self.index(name).await?;
                self.handle.link().del(index).execute().await.map_err(nl)?;
                if self.backend == Chosen::Userspace {
                    // wireguard-go exits with its TUN device; its socket may linger.
                    let _ = std::fs::remove_file(uapi_socket(name));
                }
                Ok(())
            }
            Op::Conflict { .. } => Ok(()),
        }
    }

    async fn update(&self, name: &str, u: DeviceUpdate) -> Result<(), String> {
        let iface: InterfaceName = name.parse().map_err(|e| format!("{name}: {e:?}"))?;
        let backend = self.wg_backend();
        tokio::task::spawn_blocking(move || u.apply(&iface, backend))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{name}: {e}"))
    }

    async fn create(&self, name: &str) -> Result<(), String> {
        match self.backend {
            Chosen::Kernel => {
                let msg = rtnetlink::LinkWireguard::new(name).build();
                self.handle
                    .link()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(|e| e.to_string())
            }
            Chosen::Userspace => {
                spawn_wireguard_go(name)?;
                // Its UAPI socket appears once the device is ready.
                for _ in 0..250 {
                    if std::os::unix::net::UnixStream::connect(uapi_socket(name)).is_ok() {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(format!(
                    "{} {name} did not open {}",
                    userspace_program(),
                    uapi_socket(name).display()
                ))
            }
        }
    }

    /// Run until stopped: handshake ages every few seconds, a full reconcile
    /// every `reconcile_interval`; `show tunnels` reads the returned view.
    pub fn spawn(
        self,
    ) -> (
        mpsc::UnboundedSender<TunnelMsg>,
        watch::Receiver<Vec<TunnelView>>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (vtx, vrx) = watch::channel(Vec::new());
        tokio::spawn(self.run(rx, vtx));
        (tx, vrx)
    }

    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<TunnelMsg>,
        views: watch::Sender<Vec<TunnelView>>,
    ) {
        // Per interface: its liveness and since when it is watched.
        let mut live: BTreeMap<String, (Liveness, Instant)> = BTreeMap::new();
        let mut peers: BTreeMap<String, mpsc::UnboundedSender<PeerCmd>> = BTreeMap::new();
        let mut heard: BTreeMap<String, Heard> = BTreeMap::new();
        let mut activity: BTreeMap<String, Activity> = BTreeMap::new();
        let mut stats = tokio::time::interval(STATS_EVERY);
        let mut repair = tokio::time::interval(self.wg.reconcile_interval);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        repair.tick().await; // the first tick is now: start() just reconciled
        loop {
            tokio::select! {
                _ = stats.tick() => {
                    let timeout = self.wg.handshake_timeout;
                    live.retain(|name, _| self.wg.tunnels.iter().any(|t| &t.interface == name));
                    activity.retain(|name, _| self.wg.tunnels.iter().any(|t| &t.interface == name));
                    let mut all = Vec::new();
                    for t in &self.wg.tunnels {
                        let (l, since) = live
                            .entry(t.interface.clone())
                            .or_insert_with(|| (Liveness::new(timeout), Instant::now()));
                        let watched = since.elapsed();
                        let v = self.observe(t, l, watched, peers.get(&t.neighbor_name)).await;
                        mark_activity(&v, &mut activity, &t.interface, heard.get(&t.neighbor_name));
                        all.push(v);
                    }
                    views.send_replace(all);
                }
                _ = repair.tick() => self.reconcile(false).await,
                msg = rx.recv() => match msg {
                    Some(TunnelMsg::Reconfigure { wg, done }) => {
                        let backend = self.wg.backend;
                        let period = wg.reconcile_interval;
                        self.wg = *wg;
                        self.wg.backend = backend;
                        for (l, _) in live.values_mut() {
                            l.set_bound(self.wg.handshake_timeout);
                        }
                        self.reconcile(false).await;
                        if period != repair.period() {
                            repair = tokio::time::interval(period);
                            repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            repair.tick().await;
                        }
                        let _ = done.send(());
                    }
                    Some(TunnelMsg::Peers(now)) => {
                        // A new session (added, or restarted) over a tunnel
                        // whose handshake is stale starts held down.
                        for t in &self.wg.tunnels {
                            let Some(tx) = now.get(&t.neighbor_name) else { continue };
                            let known = peers.get(&t.neighbor_name).is_some_and(|o| o.same_channel(tx));
                            let down = live.get(&t.interface).is_some_and(|(l, _)| l.state() == HandshakeState::Down);
                            if down && !known {
                                let _ = tx.send(PeerCmd::Link {
                                    up: false,
                                    why: crate::session::HoldReason::Handshake,
                                });
                            }
                        }
                        peers = now;
                    }
                    Some(TunnelMsg::Heard(now)) => heard = now,
                    stop => {
                        let done = match stop {
                            Some(TunnelMsg::Stop { done }) => Some(done),
                            _ => None,
                        };
                        self.stop().await;
                        if let Some(d) = done {
                            let _ = d.send(());
                        }
                        return;
                    }
                },
            }
        }
    }

    /// One tunnel's handshake age and counters -> liveness -> its session.
    async fn observe(
        &self,
        t: &Tunnel,
        live: &mut Liveness,
        watched: Duration,
        peer_tx: Option<&mpsc::UnboundedSender<PeerCmd>>,
    ) -> TunnelView {
        let name = t.neighbor_name.clone();
        let link = self.link(&t.interface).await;
        let device = self.device(&t.interface).await;
        let peer = device.as_ref().and_then(|d| {
            d.peers
                .iter()
                .find(|p| p.config.public_key.0 == t.peer_public_key.0)
                .cloned()
        });
        let age = peer
            .as_ref()
            .and_then(|p| p.stats.last_handshake_time)
            .map(|h| SystemTime::now().duration_since(h).unwrap_or_default());
        // Without persistent keepalive nothing makes a handshake while the
        // session is held down: the link could never come back. No liveness then.
        let change = if t.persistent_keepalive != 0 {
            live.observe(age, watched)
        } else {
            None
        };
        if let Some(up) = change {
            if up {
                info!(peer = %name, tunnel = %t.interface, "handshake again: link up");
            } else {
                warn!(peer = %name, tunnel = %t.interface, age_s = ?age.map(|a| a.as_secs()), "no handshake for {} s: link down", self.wg.handshake_timeout.as_secs());
            }
            if let Some(tx) = peer_tx {
                let _ = tx.send(PeerCmd::Link {
                    up,
                    why: crate::session::HoldReason::Handshake,
                });
            }
        }
        let interface_up = link.is_some_and(|(_, up, _)| up);
        let mut down_by = Vec::new();
        if !interface_up {
            down_by.push("interface");
        }
        if live.state() == HandshakeState::Down {
            down_by.push("handshake");
        }
        serde_json::json!({
            "name": name,
            "interface": t.interface,
            "backend": format!("{:?}", self.backend).to_lowercase(),
            "public_key": self.wg.public_key.to_base64(),
            "peer_public_key": t.peer_public_key.to_base64(),
            "listen_port": device.as_ref().and_then(|d| d.listen_port),
            "endpoint": peer.as_ref().and_then(|p| p.config.endpoint).map(|e| e.to_string()),
            "configured_endpoint": t.endpoint,
            "local_address": t.local_address,
            "peer_address": t.peer_address,
            "latest_handshake_age_s": age.map(|a| a.as_secs()),
            "latest_handshake_age_ms": age.map(|a| a.as_millis() as u64),
            "rx_bytes": peer.as_ref().map(|p| p.stats.rx_bytes),
            "tx_bytes": peer.as_ref().map(|p| p.stats.tx_bytes),
            "interface_up": interface_up,
            "handshake": live.state(),
            "link": if down_by.is_empty() { "up" } else { "down" },
            "down_by": down_by,
        })
    }

    /// `on_stop = "remove"`: delete every tunnel we own; else leave them up.
    async fn stop(&mut self) {
        if self.wg.on_stop != OnStop::Remove {
            info!("tunnels kept (wireguard.on_stop = keep)");
            return;
        }
        for name in self.owned.clone() {
            match self.apply(&Op::Delete { name: name.clone() }).await {
                Ok(()) => info!(tunnel = %name, "tunnel removed"),
                Err(e) => warn!(tunnel = %name, "cannot remove tunnel: {e}"),
            }
        }
        self.owned.clear();
        let _ = write_owned(&self.wg.state_file, &self.owned);
    }
}

/// WireGuard activity is liveness ([`Heard`]): a handshake at its time, bytes
/// received since the last reading at that reading's time (they came after it;
/// when exactly is unknown, so the earliest bound: never later than the truth).
fn mark_activity(
    view: &TunnelView,
    activity: &mut BTreeMap<String, Activity>,
    interface: &str,
    heard: Option<&Heard>,
) {
    let now = Instant::now();
    let Some(rx_bytes) = view.get("rx_bytes").and_then(|v| v.as_u64()) else {
        return;
    };
    let prev = activity.insert(
        interface.to_string(),
        Activity {
            rx_bytes,
            read_at: now,
        },
    );
    let Some(heard) = heard else { return };
    if prev.is_some_and(|p| rx_bytes > p.rx_bytes) {
        heard.mark(prev.map_or(now, |p| p.read_at));
    }
    let age = view.get("latest_handshake_age_ms").and_then(|v| v.as_u64());
    if let Some(t) = age.and_then(|ms| now.checked_sub(Duration::from_millis(ms))) {
        heard.mark(t);
    }
}

fn op_label(op: &Op) -> String {
    match op {
        Op::Create { name } => format!("{name}: created"),
        Op::SetDevice {
            name, listen_port, ..
        } => format!("{name}: key/port set (port {listen_port:?})"),
        Op::SetPeer { name, endpoint, .. } => format!("{name}: peer set (endpoint {endpoint:?})"),
        Op::RemovePeer { name, public_key } => {
            format!("{name}: foreign peer {} removed", public_key.to_base64())
        }
        Op::SetMtu { name, mtu } => format!("{name}: mtu {mtu}"),
        Op::NoAddrGen { name } => format!("{name}: no automatic link-local"),
        Op::AddAddress { name, address } => format!("{name}: address {address}/64"),
        Op::DelAddress { name, address } => format!("{name}: address {address} removed"),
        Op::Up { name } => format!("{name}: up"),
        Op::Delete { name } => format!("{name}: deleted (no longer configured)"),
        Op::Conflict { name, why } => format!("{name}: {why}"),
    }
}

fn allows_all(ips: &[wireguard_control::AllowedIp]) -> bool {
    ips.len() == 2
        && ips.iter().all(|a| a.cidr == 0)
        && ips.iter().any(|a| a.address.is_ipv4())
        && ips.iter().any(|a| a.address.is_ipv6())
}

fn uapi_socket(name: &str) -> std::path::PathBuf {
    Path::new(UAPI_DIR).join(format!("{name}.sock"))
}

/// `wireguard-go -f NAME` in its own session, so that it outlives a restart
/// of kittbgpd (the tunnel and its traffic stay); a thread reaps it.
fn spawn_wireguard_go(name: &str) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let prog = userspace_program();
    std::fs::create_dir_all(UAPI_DIR).map_err(|e| format!("{UAPI_DIR}: {e}"))?;
    let mut cmd = std::process::Command::new(&prog);
    cmd.arg("-f")
        .arg(name)
        .env("LOG_LEVEL", "error")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {prog}: {e}"))?;
    info!(tunnel = %name, pid = child.id(), "started {prog}");
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// The names recorded in the state file (one a line); none if it is missing.
fn read_owned(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn write_owned(path: &Path, owned: &BTreeSet<String>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::from(
        "# WireGuard interfaces created by kittbgpd (deleted when no longer configured)\n",
    );
    for n in owned {
        text.push_str(n);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes received since the last reading are heard at that reading's time;
    /// a handshake at its own time; nothing moved, nothing heard.
    #[test]
    fn wireguard_activity_is_heard_never_later_than_it_happened() {
        let t0 = Instant::now() - Duration::from_secs(60);
        let (heard, mut rx) = Heard::channel(Duration::ZERO, t0);
        let mut activity = BTreeMap::new();
        let view = |rx_bytes: u64| serde_json::json!({ "rx_bytes": rx_bytes });
        mark_activity(&view(100), &mut activity, "wg1", Some(&heard));
        assert!(!rx.has_changed().unwrap(), "a first reading says nothing");
        let first = activity["wg1"].read_at;
        mark_activity(&view(100), &mut activity, "wg1", Some(&heard));
        assert!(!rx.has_changed().unwrap(), "no bytes, no activity");
        let second = activity["wg1"].read_at;
        mark_activity(&view(180), &mut activity, "wg1", Some(&heard));
        assert_eq!(*rx.borrow_and_update(), second, "at the previous reading");
        assert!(first <= second);
        // (a fresh channel: a mark older than the last one never moves it back)
        let (heard, mut rx) = Heard::channel(Duration::ZERO, t0);
        let v = serde_json::json!({ "rx_bytes": 180, "latest_handshake_age_ms": 1500 });
        let before = Instant::now();
        mark_activity(&v, &mut activity, "wg1", Some(&heard));
        let at = *rx.borrow_and_update();
        assert!(at <= before - Duration::from_millis(1500) + Duration::from_millis(100));
        assert!(at >= before - Duration::from_millis(1600));
    }

    #[test]
    fn owned_names_round_trip_through_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node.tunnels");
        assert!(read_owned(&path).is_empty());
        let names: BTreeSet<String> = ["wg2", "wg3"].iter().map(|s| s.to_string()).collect();
        write_owned(&path, &names).unwrap();
        assert_eq!(read_owned(&path), names);
    }

    #[test]
    fn allowed_ips_all_means_both_families_whole() {
        let a = |s: &str, c| wireguard_control::AllowedIp {
            address: s.parse().unwrap(),
            cidr: c,
        };
        assert!(allows_all(&[a("0.0.0.0", 0), a("::", 0)]));
        assert!(!allows_all(&[a("0.0.0.0", 0)]));
        assert!(!allows_all(&[a("0.0.0.0", 0), a("fd00::", 8)]));
    }
}
