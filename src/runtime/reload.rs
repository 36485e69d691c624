//! `kittbgpd reload` and SIGHUP: re-read the file, validate it, and hand each
//! change of [`crate::config::diff`] to the task that owns that state. A
//! neighbor keeps its id (its slot in the RIB) for the life of the daemon; a
//! removed one's slot stays empty, an added one gets a new slot.

use super::bfd;
use super::netlink_events::WatchCmd;
use super::peer::{self, PeerCmd, PeerHandle};
use super::probe;
use super::rib_task::{RibMsg, RibPeer};
use super::services::Services;
use super::tunnels::{TunnelMsg, TunnelView, Tunnels};
use crate::config::diff::{self, Apply};
use crate::config::{Config, Neighbor};
use crate::rib::PeerConfig;
use crate::session::HoldReason;
use crate::wire::Notification;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

/// How long a reload waits for a removed neighbor's routes to leave the
/// kernel's next hops over its tunnel before deleting that tunnel.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A reload request from the control socket: the answer goes back as JSON.
pub struct ReloadReq {
    pub dry_run: bool,
    pub reply: oneshot::Sender<serde_json::Value>,
}

/// Neighbors the listener hands connections to (live ones only).
pub type Accepting = (Vec<Neighbor>, Vec<mpsc::UnboundedSender<PeerCmd>>);

/// The owner of the running configuration and of the set of peer tasks, and
/// of what goes with each neighbor: its prober (`cost = "auto"`), its BFD
/// session (`bfd = true`), its
/// interface tracking and its tunnel's handshake tracking. A neighbor added by
/// a reload gets exactly what one configured at start gets ([`Running::sync_links`]).
pub struct Running {
    pub path: PathBuf,
    /// The configuration in force ([`diff::effective`]).
    pub config: Config,
    /// Neighbor name of each peer id (`None`: removed by a reload).
    pub ids: Vec<Option<String>>,
    pub peers: Vec<PeerHandle>,
    pub rib: mpsc::Sender<RibMsg>,
    pub accepting: watch::Sender<Accepting>,
    /// A listener bound to a new `listen_port` for the accept loop.
    pub listener: mpsc::UnboundedSender<tokio::net::TcpListener>,
    pub views: watch::Sender<super::control::Views>,
    /// What OPENs say about graceful restart in this run (RFC 4724).
    pub restart: super::RestartState,
    /// Per peer id with `cost = "auto"`: its prober.
    pub probes: BTreeMap<usize, probe::Handle>,
    /// Per peer id with `bfd = true`: its BFD task.
    pub bfd: BTreeMap<usize, bfd::Handle>,
    /// Interface tracking and the owner of what we originate.
    pub watch: mpsc::UnboundedSender<WatchCmd>,
    /// The tunnel task (`None`: no `[wireguard]` yet).
    pub tunnels: Option<(
        mpsc::UnboundedSender<TunnelMsg>,
        watch::Receiver<Vec<TunnelView>>,
    )>,
    /// Metrics endpoint and BMP collectors.
    pub services: Services,
    /// The views' policy rules (`None`: no view has rules, or no kernel routes).
    pub rules: Option<super::rules_task::RulesHandle>,
}

impl Running {
    /// Each live peer id with its neighbor's running configuration.
    fn live(&self) -> Vec<(usize, Neighbor)> {
        self.ids
            .iter()
            .enumerate()
            .filter_map(|(id, name)| {
                let name = name.as_ref()?;
                let n = self.config.neighbors.iter().find(|n| &n.name == name)?;
                Some((id, n.clone()))
            })
            .collect()
    }

    fn id_of(&self, name: &str) -> Option<usize> {
        self.ids.iter().position(|n| n.as_deref() == Some(name))
    }

    /// Load, validate, diff and (unless `dry_run`) apply. Errors leave
    /// everything as it was.
    pub async fn reload(&mut self, dry_run: bool) -> serde_json::Value {
        let new = match crate::config::load(&self.path) {
            Ok(c) => c,
            Err(errors) => {
                warn!(file = %self.path.display(), "reload refused:\n{errors}");
                super::code_pages::rare_code_ran();
                return serde_json::json!({
                    "error": format!("{errors}\n{}: {} error(s); running configuration unchanged",
                        self.path.display(), errors.0.len()),
                });
            }
        };
        let changes = diff::diff(&self.config, &new);
        let mut failed = Vec::new();
        if !dry_run {
            for c in &changes {
                info!("reload: {c}");
            }
            failed = self.apply(&new, &changes).await;
            self.publish();
        }
        let mut answer = serde_json::json!({
            "file": self.path.display().to_string(),
            "dry_run": dry_run,
            "changes": changes,
        });
        if !failed.is_empty() {
            answer["failed"] = failed.into();
        }
        // The parser and the diff ran once more; they need not stay mapped.
        super::code_pages::rare_code_ran();
        answer
    }

    /// Hand each change to its owner; what could not be applied is returned
    /// (the rest is applied all the same).
    async fn apply(&mut self, new: &Config, changes: &[diff::Change]) -> Vec<String> {
        let old = self.config.clone();
        // What will run: sessions (re)started below take their OPEN from it.
        let mut eff = diff::effective(&old, new);
        let mut failed = Vec::new();
        // The new port is bound before the old listener goes: a port taken
        // keeps the old one listening, and says so.
        if eff.listen_port != old.listen_port {
            let gtsm = super::transport::listener_gtsm(&eff.neighbors);
            match super::transport::listen(eff.listen_port, gtsm) {
                Ok(l) => {
                    let _ = self.listener.send(l);
                }
                Err(e) => {
                    let e = format!(
                        "cannot listen on port {}: {e} (still on {})",
                        eff.listen_port, old.listen_port
                    );
                    warn!("reload: {e}");
                    failed.push(e);
                    eff.listen_port = old.listen_port;
                }
            }
        }
        // Removed neighbors first: RFC 4486 §4 Cease / Peer De-configured.
        let mut removed = false;
        for c in changes.iter().filter(|c| c.apply == Apply::Remove) {
            if let Some(id) = c.neighbor.as_deref().and_then(|n| self.id_of(n)) {
                self.stop(id, 3).await;
                removed = true;
            }
        }
        // Make before break: their routes move to other next hops in the
        // kernel before their tunnels are deleted (a route over a deleted
        // interface is gone at once, leaving no route until the new one).
        if removed {
            let (reply, settled) = oneshot::channel();
            let rib = self.rib.clone();
            let wait = async move {
                let _ = rib.send(RibMsg::KernelSettled { reply }).await;
                settled.await
            };
            if tokio::time::timeout(SETTLE_WAIT, wait).await.is_err() {
                warn!("reload: kernel routes still moving after {SETTLE_WAIT:?}; tunnels reconfigured anyway");
            }
        }
        // Tunnels before sessions: an added neighbor's session binds to its tunnel.
        if let Err(e) = self.reconfigure_tunnels(&old, new).await {
            failed.push(e);
        }
        // Before the sessions restart with it: the RIB's CLUSTER_ID follows.
        if (old.router_id, old.local_as) != (eff.router_id, eff.local_as) {
            let msg = RibMsg::Identity {
                router_id: eff.router_id,
                local_as: eff.local_as,
            };
            let _ = self.rib.send(msg).await;
        }
        // The RIB takes the new overlay before the sessions it restarts come
        // back and before the originated set it changes (the watcher's).
        if old.overlay != new.overlay {
            let _ = self.rib.send(RibMsg::Overlay(new.overlay.clone())).await;
            let _ = self.watch.send(WatchCmd::Overlay(new.overlay.clone()));
        }
        let mut costs = Vec::new();
        for n in &new.neighbors {
            let Some(o) = old.neighbors.iter().find(|o| o.name == n.name) else {
                self.add(&eff, n).await;
                continue;
            };
            let Some(id) = self.id_of(&n.name) else {
                continue;
            };
            if o == n && !diff::restarts(changes, &n.name) {
                continue;
            }
            // A session restart: a fresh peer (task and RIB slot) with the new
            // configuration, Cease / Other Configuration Change to the old one.
            // A measured link staying measured keeps its task (and its prober's
            // estimate), restarted in place.
            let restart = diff::restarts(changes, &n.name);
            if restart && !(o.cost_auto && n.cost_auto) {
                info!(peer = %n.name, "configuration changed: restarting this session only");
                self.stop(id, 6).await;
                self.add(&eff, n).await;
                continue;
            }
            let _ = self.peers[id].tx.send(PeerCmd::Reconfigure {
                neighbor: Box::new(n.clone()),
                session: Box::new(super::session_config(&eff, n, self.restart)),
                restart,
            });
            if !n.cost_auto && (o.cost != n.cost || o.cost_auto) {
                costs.push((id, n.cost));
            }
            if (o.import_limit, o.import_limit_action) != (n.import_limit, n.import_limit_action) {
                let _ = self
                    .rib
                    .send(RibMsg::ImportLimit {
                        peer: id,
                        limit: n.import_limit,
                        action: n.import_limit_action,
                    })
                    .await;
            }
        }
        self.config = eff;
        // Probers (started, stopped, new [cost]) before the static costs:
        // a prober stopped now sends no measured cost after them.
        self.sync_links();
        for (peer, cost) in costs {
            let msg = RibMsg::LinkCost {
                peer,
                cost,
                rtt: None,
                loss: 0.0,
            };
            let _ = self.rib.send(msg).await;
        }
        if old.loopbacks != new.loopbacks {
            let _ = self.watch.send(WatchCmd::Loopbacks(new.loopbacks.clone()));
        }
        if old.mrt.updates != new.mrt.updates {
            let _ = self
                .rib
                .send(RibMsg::MrtLogFile(new.mrt.updates.clone()))
                .await;
        }
        if old.bmp != new.bmp {
            self.services.set_bmp(&new.bmp);
        }
        // The views' rules follow the new views and range (started by the
        // first view with rules; `[kernel]` itself waits for a restart).
        let mut rules_cfg = new.clone();
        rules_cfg.kernel = self.config.kernel.clone();
        if let Err(e) = super::rules_task::sync(&mut self.rules, &rules_cfg).await {
            let e = format!("policy rules: {e}");
            warn!("reload: {e}");
            failed.push(e);
        }
        if let Err(e) = self.services.set_metrics(new.metrics_listen).await {
            warn!("reload: {e}");
            failed.push(e);
        }
        if old.control_group != new.control_group {
            let path = &self.config.control_socket;
            if let Err(e) = super::control::set_group(path, new.control_group.as_deref()) {
                let e = format!("control socket {}: {e}", path.display());
                warn!("reload: {e}");
                failed.push(e);
            }
        }
        failed
    }

    /// The new `[wireguard]` to the tunnel task (started if this is the
    /// first); no table any more: every tunnel we own is deleted.
    async fn reconfigure_tunnels(&mut self, old: &Config, new: &Config) -> Result<(), String> {
        let wg = match (&new.wireguard, &old.wireguard) {
            (Some(w), _) => w.clone(),
            (None, Some(o)) => crate::config::wireguard::Wireguard {
                tunnels: Vec::new(),
                ..o.clone()
            },
            (None, None) => return Ok(()),
        };
        match &self.tunnels {
            Some((tx, _)) => {
                let (done, wait) = oneshot::channel();
                let wg = Box::new(wg);
                if tx.send(TunnelMsg::Reconfigure { wg, done }).is_ok() {
                    let _ = wait.await;
                }
            }
            None => {
                let t = Tunnels::start(wg)
                    .await
                    .map_err(|e| format!("[wireguard]: {e}"))?;
                self.tunnels = Some(t.spawn());
            }
        }
        Ok(())
    }

    /// Bring what goes with each live neighbor to the running config:
    /// probers for `cost = "auto"` (a stopped one releases its hold),
    /// `[cost]` to every prober, the neighbor list to the interface and
    /// handshake trackers. At start and after every reload.
    pub fn sync_links(&mut self) {
        let live = self.live();
        let mut want = BTreeMap::new();
        for (id, n) in &live {
            match (n.cost_auto, &n.interface, n.address) {
                // Measured, or (a static cost) answering the neighbor's stream.
                (measure, Some(ifname), std::net::IpAddr::V6(addr)) => {
                    want.insert(*id, (ifname.clone(), addr, measure));
                }
                (true, _, _) => {
                    warn!(peer = %n.name, "cost = \"auto\" needs an interface and an IPv6 neighbor address; no probing")
                }
                _ => {}
            }
        }
        let stale: Vec<usize> = self
            .probes
            .iter()
            .filter(|(id, h)| want.get(id) != Some(&h.target))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            let was_measuring = self.probes.remove(&id).is_some_and(|h| h.target.2);
            let _ = self.peers[id].tx.send(PeerCmd::Heard(None));
            if was_measuring && !want.get(&id).is_some_and(|w| w.2) {
                // No prober any more: it no longer holds the session down.
                let _ = self.peers[id].tx.send(PeerCmd::Link {
                    up: true,
                    why: HoldReason::Probe,
                });
            }
        }
        for (id, (interface, address, measure)) in want {
            // `[cost]`, with the neighbor's own `probe` if it has one.
            let mut params = self.config.cost.clone();
            if let Some(p) = live
                .iter()
                .find(|(i, _)| *i == id)
                .and_then(|(_, n)| n.probe)
            {
                params.probe = p;
            }
            match self.probes.get(&id) {
                Some(h) => h.set_params(&params),
                None => {
                    let name = live
                        .iter()
                        .find(|(i, _)| *i == id)
                        .map(|(_, n)| n.name.clone());
                    let p = probe::Probe {
                        peer: id,
                        name: name.unwrap_or_default(),
                        interface,
                        address,
                        params,
                        measure,
                    };
                    let h = probe::spawn(p, self.peers[id].tx.clone(), self.rib.clone());
                    let heard = measure.then(|| h.heard.clone());
                    let _ = self.peers[id].tx.send(PeerCmd::Heard(heard));
                    self.probes.insert(id, h);
                }
            }
        }
        self.sync_bfd(&live);
        let with_tx: Vec<_> = live
            .iter()
            .map(|(id, n)| (n.clone(), self.peers[*id].tx.clone()))
            .collect();
        if let Some((tx, _)) = &self.tunnels {
            let by_name = with_tx
                .iter()
                .map(|(n, t)| (n.name.clone(), t.clone()))
                .collect();
            let _ = tx.send(TunnelMsg::Peers(by_name));
            let heard = live
                .iter()
                .filter_map(|(id, n)| {
                    let h = self.probes.get(id).filter(|h| h.target.2)?;
                    Some((n.name.clone(), h.heard.clone()))
                })
                .collect();
            let _ = tx.send(TunnelMsg::Heard(heard));
        }
        let _ = self.watch.send(WatchCmd::Neighbors(with_tx));
    }

    /// A BFD task per live neighbor with `bfd = true` (an interface and an
    /// IPv6 address, checked by the config); a stopped one says AdminDown to
    /// the neighbor and releases its hold; `[bfd]` to every running one.
    fn sync_bfd(&mut self, live: &[(usize, Neighbor)]) {
        let mut want = BTreeMap::new();
        for (id, n) in live.iter().filter(|(_, n)| n.bfd) {
            if let (Some(ifname), std::net::IpAddr::V6(addr)) = (&n.interface, n.address) {
                want.insert(*id, (n.name.clone(), ifname.clone(), addr));
            }
        }
        let stale: Vec<usize> = self
            .bfd
            .iter()
            .filter(|(id, h)| {
                want.get(id).map(|(_, i, a)| (i.clone(), *a)) != Some(h.target.clone())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            drop(self.bfd.remove(&id));
            if !want.contains_key(&id) {
                let _ = self.peers[id].tx.send(PeerCmd::Link {
                    up: true,
                    why: HoldReason::Bfd,
                });
            }
        }
        for (id, (name, interface, address)) in want {
            // Its packets are liveness for the link's prober (one that measures).
            let heard = self
                .probes
                .get(&id)
                .filter(|p| p.target.2)
                .map(|p| p.heard.sender());
            match self.bfd.get(&id) {
                Some(h) => {
                    h.set_params(&self.config.bfd);
                    h.set_heard(heard);
                }
                None => {
                    let b = bfd::Bfd {
                        name,
                        interface,
                        address,
                        params: self.config.bfd.clone(),
                    };
                    let h = bfd::spawn(b, self.peers[id].tx.clone(), heard);
                    self.bfd.insert(id, h);
                }
            }
        }
    }

    /// Our graceful restart is over (RFC 4724 §3): sessions opened from now
    /// on carry no R bit. Those established keep going; a connection being
    /// opened takes the new OPEN at its next attempt.
    pub fn restart_over(&mut self) {
        if !self.restart.restarted {
            return;
        }
        info!("graceful restart over: OPENs no longer carry the Restart State bit");
        self.restart.restarted = false;
        for (id, n) in self.live() {
            let _ = self.peers[id].tx.send(PeerCmd::Reconfigure {
                session: Box::new(super::session_config(&self.config, &n, self.restart)),
                neighbor: Box::new(n),
                restart: false,
            });
        }
    }

    /// Stop peer `id` with Cease subcode `subcode` (RFC 4486 §4) and free its slot.
    async fn stop(&mut self, id: usize, subcode: u8) {
        let (done, _) = oneshot::channel();
        let _ = self.peers[id].tx.send(PeerCmd::Stop {
            notification: Notification::new(6, subcode, Vec::new()),
            graceful: false,
            done,
        });
        // The task's own PeerDown may be lost with its channel: withdraw here too.
        // (reason None: BMP Peer Down "de-configured", RFC 7854 §4.9 reason 5)
        let _ = self
            .rib
            .send(RibMsg::PeerDown {
                peer: id,
                reason: None,
                graceful: None,
            })
            .await;
        self.ids[id] = None;
    }

    /// A new neighbor: a new peer id in the RIB and a new task; nothing else moves.
    async fn add(&mut self, running: &Config, n: &Neighbor) {
        let id = self.peers.len();
        let handle = peer::spawn(
            id,
            n.clone(),
            super::session_config(running, n, self.restart),
            self.rib.clone(),
        );
        let _ = self
            .rib
            .send(RibMsg::AddPeer {
                cfg: PeerConfig::from(n),
                peer: RibPeer::new(n, handle.tx.clone()),
            })
            .await;
        self.peers.push(handle);
        self.ids.push(Some(n.name.clone()));
    }

    /// Tell the listener and the control socket which peers exist now.
    pub fn publish(&self) {
        let mut neighbors = Vec::new();
        let mut txs = Vec::new();
        for (id, n) in self.live() {
            neighbors.push(n);
            txs.push(self.peers[id].tx.clone());
        }
        let _ = self.accepting.send((neighbors, txs));
        self.views.send_modify(|v| {
            v.peers = self.peers.iter().map(|p| p.status.clone()).collect();
            v.peer_cmds = self.peers.iter().map(|p| p.tx.clone()).collect();
            v.removed = self.ids.iter().map(Option::is_none).collect();
            v.config = self.config.clone();
            v.links = self.probes.values().map(|h| h.view.clone()).collect();
            v.bfd = self.bfd.values().map(|h| h.view.clone()).collect();
            v.tunnels = self.tunnels.as_ref().map(|(_, views)| views.clone());
            v.rules = self.rules.clone();
        });
    }
}
