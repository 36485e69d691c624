//! One prober per link with `cost = "auto"`: ICMPv6 echo to the neighbor's
//! link-local address every interval, samples into the sans-IO estimator
//! ([`crate::cost`]), and what it decides straight into the routing task (new
//! link cost) or the session (link down / up). No config rewrite, no reload.

use super::icmp::Pinger;
use super::peer::{PeerCmd, PeerId};
use super::rib_task::RibMsg;
use crate::cost::{CostEvent, CostParams, Estimator};
use crate::session::HoldReason;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

pub struct Probe {
    pub peer: PeerId,
    pub name: String,
    pub interface: String,
    pub address: Ipv6Addr,
    pub params: CostParams,
}

/// What `show links` shows of one link.
pub type LinkView = serde_json::Value;

/// A running prober: stops (its task aborted) when dropped.
pub struct Handle {
    /// Where it pings: a change of either is a new prober.
    pub target: (String, Ipv6Addr),
    pub view: watch::Receiver<LinkView>,
    params: watch::Sender<CostParams>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// A reload of `[cost]`: the estimator takes them now ([`Estimator::set_params`]).
    pub fn set_params(&self, params: &CostParams) {
        self.params.send_if_modified(|p| {
            let changed = p != params;
            *p = params.clone();
            changed
        });
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn spawn(
    probe: Probe,
    peer: mpsc::UnboundedSender<PeerCmd>,
    rib: mpsc::Sender<RibMsg>,
) -> Handle {
    let (tx, rx) =
        watch::channel(serde_json::json!({ "name": probe.name, "interface": probe.interface }));
    let (params_tx, params_rx) = watch::channel(probe.params.clone());
    let target = (probe.interface.clone(), probe.address);
    let task = tokio::spawn(run(probe, peer, rib, tx, params_rx));
    Handle {
        target,
        view: rx,
        params: params_tx,
        task,
    }
}

async fn run(
    probe: Probe,
    peer: mpsc::UnboundedSender<PeerCmd>,
    rib: mpsc::Sender<RibMsg>,
    view: watch::Sender<LinkView>,
    mut params: watch::Receiver<CostParams>,
) {
    let mut est = Estimator::new(probe.params.clone(), Instant::now());
    // Identifier: tells our replies from other pingers' on the same host.
    let ident = (std::process::id() as u16) ^ ((probe.peer as u16) << 8);
    let mut pinger: Option<Pinger> = None;
    let mut seq: u16 = 0;
    let mut cost_changes: u64 = 0;
    let mut last_wake = Instant::now() - Duration::from_secs(1);
    loop {
        let reply = async {
            match &pinger {
                Some(p) => p.recv().await,
                None => std::future::pending().await,
            }
        };
        // The estimator says when the next probe is due and when a probe
        // times out or a held change matures; the first probe goes out at once.
        // (At most one wake per 10 ms whatever it says: a safety net against spinning.)
        let deadline = est
            .poll_timeout()
            .unwrap_or_else(Instant::now)
            .max(last_wake + Duration::from_millis(10));
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                last_wake = now;
                if est.next_probe_at().is_none_or(|t| t <= now) {
                    if pinger.is_none() {
                        // The tunnel may not exist yet, or came back: (re)open the socket.
                        match Pinger::new(&probe.interface, probe.address, ident) {
                            Ok(p) => pinger = Some(p),
                            Err(e) => tracing::debug!(link = %probe.name, "probe socket: {e}"),
                        }
                    }
                    seq = seq.wrapping_add(1);
                    if let Some(p) = &pinger {
                        if let Err(e) = p.send(seq) {
                            tracing::debug!(link = %probe.name, "probe not sent: {e}");
                            pinger = None;
                        }
                    }
                    // A probe that could not be sent counts as sent and lost.
                    est.on_probe_sent(seq, now);
                }
                est.on_tick(now);
            }
            Ok(()) = params.changed() => {
                let p = params.borrow_and_update().clone();
                info!(link = %probe.name, "[cost] reloaded: new parameters");
                est.set_params(p, Instant::now());
            }
            r = reply => match r {
                Ok(r) => est.on_reply(r.seq, Instant::now()),
                Err(e) => {
                    warn!(link = %probe.name, "probe socket failed: {e}");
                    pinger = None;
                }
            },
        }
        while let Some(event) = est.poll_event() {
            match event {
                CostEvent::Cost { cost, reason } => {
                    cost_changes += 1;
                    info!(link = %probe.name, cost, "link cost: {reason}");
                    let _ = rib
                        .send(RibMsg::LinkCost {
                            peer: probe.peer,
                            cost: Some(cost),
                        })
                        .await;
                }
                CostEvent::Down { reason } => {
                    warn!(link = %probe.name, "link down: {reason}");
                    let _ = peer.send(PeerCmd::Link {
                        up: false,
                        why: HoldReason::Probe,
                    });
                }
                CostEvent::Up => {
                    info!(link = %probe.name, "link up: probes answered again");
                    for why in [HoldReason::Damped, HoldReason::Probe] {
                        let _ = peer.send(PeerCmd::Link { up: true, why });
                    }
                }
                CostEvent::Damped { reason } => {
                    // Held as damped (first, so the session never starts in between), no longer as dead.
                    warn!(link = %probe.name, "link answers but stays down: {reason}");
                    for (up, why) in [(false, HoldReason::Damped), (true, HoldReason::Probe)] {
                        let _ = peer.send(PeerCmd::Link { up, why });
                    }
                }
            }
        }
        let mut v = serde_json::to_value(est.snapshot()).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("name".into(), probe.name.clone().into());
            o.insert("interface".into(), probe.interface.clone().into());
            o.insert("cost_changes".into(), cost_changes.into());
        }
        view.send_replace(v);
    }
}
