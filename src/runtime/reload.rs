//! `kittbgpd reload` and SIGHUP: re-read the file, validate it, and hand each
//! change of [`crate::config::diff`] to the task that owns that state. A
//! neighbor keeps its id (its slot in the RIB) for the life of the daemon; a
//! removed one's slot stays empty, an added one gets a new slot.

use super::peer::{self, PeerCmd, PeerHandle};
use super::rib_task::{RibMsg, RibPeer};
use crate::config::diff::{self, Apply};
use crate::config::{Config, Neighbor};
use crate::rib::PeerConfig;
use crate::wire::Notification;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

/// A reload request from the control socket: the answer goes back as JSON.
pub struct ReloadReq {
    pub dry_run: bool,
    pub reply: oneshot::Sender<serde_json::Value>,
}

/// Neighbors the listener hands connections to (live ones only).
pub type Accepting = (Vec<Neighbor>, Vec<mpsc::UnboundedSender<PeerCmd>>);

/// The owner of the running configuration and of the set of peer tasks.
pub struct Running {
    pub path: PathBuf,
    /// The configuration in force ([`diff::effective`]).
    pub config: Config,
    /// Neighbor name of each peer id (`None`: removed by a reload).
    pub ids: Vec<Option<String>>,
    pub peers: Vec<PeerHandle>,
    pub rib: mpsc::Sender<RibMsg>,
    /// Loopbacks found on `lo` at start (originated when inside the ranges).
    pub on_lo: Vec<IpNet>,
    pub accepting: watch::Sender<Accepting>,
    pub views: watch::Sender<super::control::Views>,
    /// What OPENs say about graceful restart in this run (RFC 4724).
    pub restart: super::RestartState,
}

impl Running {
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
                return serde_json::json!({
                    "error": format!("{errors}\n{}: {} error(s); running configuration unchanged",
                        self.path.display(), errors.0.len()),
                });
            }
        };
        let changes = diff::diff(&self.config, &new);
        if !dry_run {
            for c in &changes {
                info!("reload: {c}");
            }
            self.apply(&new, &changes).await;
            self.config = diff::effective(&self.config, &new);
            self.publish();
        }
        serde_json::json!({
            "file": self.path.display().to_string(),
            "dry_run": dry_run,
            "changes": changes,
        })
    }

    async fn apply(&mut self, new: &Config, changes: &[diff::Change]) {
        let old = self.config.clone();
        // Removed neighbors first: RFC 4486 §4 Cease / Peer De-configured.
        for c in changes.iter().filter(|c| c.apply == Apply::Remove) {
            if let Some(id) = c.neighbor.as_deref().and_then(|n| self.id_of(n)) {
                self.stop(id, 3).await;
            }
        }
        for n in &new.neighbors {
            let Some(o) = old.neighbors.iter().find(|o| o.name == n.name) else {
                self.add(&old, n).await;
                continue;
            };
            let Some(id) = self.id_of(&n.name) else {
                continue;
            };
            if o == n {
                continue;
            }
            // A session restart: a fresh peer (task and RIB slot) with the new
            // configuration, Cease / Other Configuration Change to the old one.
            // A measured link keeps its task (its prober and link tracking
            // talk to it), restarted in place.
            if diff::restarts(changes, &n.name) && !o.cost_auto {
                info!(peer = %n.name, "configuration changed: restarting this session only");
                self.stop(id, 6).await;
                self.add(&old, n).await;
                continue;
            }
            let mut n = n.clone();
            if n.cost_auto != o.cost_auto {
                (n.cost_auto, n.cost) = (o.cost_auto, o.cost);
            }
            let _ = self.peers[id].tx.send(PeerCmd::Reconfigure {
                neighbor: Box::new(n.clone()),
                session: Box::new(super::session_config(&old, &n, self.restart)),
                restart: diff::restarts(changes, &n.name),
            });
            if o.cost != n.cost && !n.cost_auto {
                let _ = self
                    .rib
                    .send(RibMsg::LinkCost {
                        peer: id,
                        cost: n.cost,
                    })
                    .await;
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
        if old.loopbacks != new.loopbacks {
            let mut set: BTreeSet<IpNet> = new.loopbacks.originate.iter().copied().collect();
            if new.loopbacks.from_lo {
                set.extend(self.on_lo.iter().filter(|p| new.loopbacks.admits(**p)));
            }
            let _ = self.rib.send(RibMsg::Originate(set)).await;
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
        if n.cost_auto {
            warn!(peer = %n.name, "cost = \"auto\" on a neighbor added by reload: no prober until the daemon restarts");
        }
        self.peers.push(handle);
        self.ids.push(Some(n.name.clone()));
    }

    /// Tell the listener and the control socket which peers exist now.
    fn publish(&self) {
        let mut neighbors = Vec::new();
        let mut txs = Vec::new();
        for (id, name) in self.ids.iter().enumerate() {
            if let Some(n) = name
                .as_ref()
                .and_then(|name| self.config.neighbors.iter().find(|n| &n.name == name))
            {
                neighbors.push(n.clone());
                txs.push(self.peers[id].tx.clone());
            }
        }
        let _ = self.accepting.send((neighbors, txs));
        self.views.send_modify(|v| {
            v.peers = self.peers.iter().map(|p| p.status.clone()).collect();
            v.peer_cmds = self.peers.iter().map(|p| p.tx.clone()).collect();
            v.removed = self.ids.iter().map(Option::is_none).collect();
            v.config = self.config.clone();
        });
    }
}
