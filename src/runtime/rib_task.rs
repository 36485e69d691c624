//! The one task that owns routing state. Peers send it what they learn; it
//! answers with UPDATEs to send. The tables and encoding live in [`crate::rib`].

use super::peer::{PeerCmd, PeerId};
use crate::ctl::RouteView;
use crate::rib::{
    announce_originated, end_of_rib, withdraw_originated, AdjRibIn, ExportContext, ImportPolicy,
};
use crate::wire::{Message, Negotiated, Origin, RouteRefresh, Update};
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

#[derive(Debug)]
pub enum RibMsg {
    PeerUp {
        peer: PeerId,
        epoch: u64,
        negotiated: Negotiated,
        local: Option<SocketAddr>,
        remote_id: Ipv4Addr,
    },
    PeerDown {
        peer: PeerId,
    },
    Update {
        peer: PeerId,
        update: Box<Update>,
    },
    RouteRefresh {
        peer: PeerId,
        epoch: u64,
        afi: u16,
    },
    /// The full set of loopbacks this node originates (config plus `lo`).
    Originate(BTreeSet<IpNet>),
    Routes {
        filtered: bool,
        reply: oneshot::Sender<Vec<RouteView>>,
    },
}

pub struct RibPeer {
    pub name: String,
    pub interface: Option<String>,
    pub tx: mpsc::UnboundedSender<PeerCmd>,
}

struct PeerState {
    info: RibPeer,
    adj_in: AdjRibIn,
    up: Option<(u64, ExportContext)>,
}

pub async fn run(
    peers: Vec<RibPeer>,
    policy: ImportPolicy,
    mut rx: mpsc::UnboundedReceiver<RibMsg>,
) {
    let mut peers: Vec<PeerState> = peers
        .into_iter()
        .map(|info| PeerState {
            info,
            adj_in: AdjRibIn::default(),
            up: None,
        })
        .collect();
    let mut originated: BTreeSet<IpNet> = BTreeSet::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            RibMsg::PeerUp {
                peer,
                epoch,
                negotiated,
                local,
                remote_id,
            } => {
                let p = &mut peers[peer];
                let ctx = ExportContext::new(negotiated, local);
                if negotiated.ipv4_unicast
                    && !negotiated.ipv4_extended_next_hop
                    && ctx.local_v4.is_none()
                {
                    warn!(peer = %p.info.name, "extended next hop (RFC 8950) not negotiated and no IPv4 session address: IPv4 loopbacks are not sent");
                }
                debug!(peer = %p.info.name, %remote_id, "exporting {} originated routes", originated.len());
                let mut msgs = announce_originated(&originated, &ctx);
                msgs.extend(end_of_rib(&ctx));
                send(p, epoch, msgs);
                p.up = Some((epoch, ctx));
            }
            RibMsg::PeerDown { peer } => {
                let p = &mut peers[peer];
                if !p.adj_in.is_empty() {
                    info!(peer = %p.info.name, "removing {} routes of the closed session", p.adj_in.len());
                }
                p.adj_in.clear();
                p.up = None;
            }
            RibMsg::Update { peer, update } => {
                let p = &mut peers[peer];
                for issue in &update.issues {
                    warn!(peer = %p.info.name, "UPDATE attribute {}: {:?} ({})", issue.code, issue.action, issue.reason);
                }
                let learned = p.adj_in.apply(&update, &policy);
                for prefix in &learned.filtered {
                    if let Some(Err(reason)) = p.adj_in.get(prefix).map(|r| &r.verdict) {
                        debug!(peer = %p.info.name, %prefix, "filtered: {reason}");
                    }
                }
                debug!(peer = %p.info.name, accepted = learned.accepted.len(), filtered = learned.filtered.len(), withdrawn = learned.withdrawn.len(), "update");
            }
            RibMsg::RouteRefresh { peer, epoch, afi } => {
                let p = &peers[peer];
                if let Some((e, ctx)) = &p.up {
                    if *e == epoch {
                        let only: BTreeSet<IpNet> = originated
                            .iter()
                            .copied()
                            .filter(|n| afi_of(n) == afi)
                            .collect();
                        let mut msgs = Vec::new();
                        // RFC 7313 §4: with enhanced route refresh, bracket the re-sent table by BoRR / EoRR.
                        let enhanced = ctx.negotiated.enhanced_route_refresh;
                        let marker = |subtype| {
                            Message::RouteRefresh(RouteRefresh {
                                afi,
                                subtype,
                                safi: crate::wire::SAFI_UNICAST,
                            })
                            .to_bytes(&ctx.negotiated)
                            .ok()
                        };
                        if enhanced {
                            msgs.extend(marker(1));
                        }
                        msgs.extend(announce_originated(&only, ctx));
                        if enhanced {
                            msgs.extend(marker(2));
                        }
                        send(p, epoch, msgs);
                    }
                }
            }
            RibMsg::Originate(now) => {
                let added: BTreeSet<IpNet> = now.difference(&originated).copied().collect();
                let removed: BTreeSet<IpNet> = originated.difference(&now).copied().collect();
                if !added.is_empty() || !removed.is_empty() {
                    info!(added = ?added, removed = ?removed, "originated loopbacks changed");
                }
                for p in &peers {
                    if let Some((epoch, ctx)) = &p.up {
                        let mut msgs = withdraw_originated(&removed, ctx);
                        msgs.extend(announce_originated(&added, ctx));
                        send(p, *epoch, msgs);
                    }
                }
                originated = now;
            }
            RibMsg::Routes { filtered, reply } => {
                let _ = reply.send(route_views(&peers, &originated, filtered));
            }
        }
    }
}

fn afi_of(n: &IpNet) -> u16 {
    match n {
        IpNet::V4(_) => crate::wire::AFI_IPV4,
        IpNet::V6(_) => crate::wire::AFI_IPV6,
    }
}

fn send(p: &PeerState, epoch: u64, messages: Vec<bytes::Bytes>) {
    if !messages.is_empty() {
        let _ = p.info.tx.send(PeerCmd::Send { epoch, messages });
    }
}

fn route_views(
    peers: &[PeerState],
    originated: &BTreeSet<IpNet>,
    filtered_only: bool,
) -> Vec<RouteView> {
    let mut out = Vec::new();
    if !filtered_only {
        for prefix in originated {
            out.push(RouteView {
                prefix: prefix.to_string(),
                peer: "self".into(),
                next_hop: None,
                interface: None,
                med: None,
                local_pref: None,
                origin: Some("IGP".into()),
                as_path: String::new(),
                originator_id: None,
                cluster_list: Vec::new(),
                status: "originated".into(),
                reason: None,
            });
        }
    }
    for p in peers {
        for (prefix, route) in p.adj_in.iter() {
            if filtered_only && route.verdict.is_ok() {
                continue;
            }
            let a = &route.attrs;
            out.push(RouteView {
                prefix: prefix.to_string(),
                peer: p.info.name.clone(),
                next_hop: route.next_hop.map(|n| n.to_string()),
                interface: p.info.interface.clone(),
                med: a.med,
                local_pref: a.local_pref,
                origin: a.origin.map(|o| match o {
                    Origin::Igp => "IGP".to_string(),
                    Origin::Egp => "EGP".to_string(),
                    Origin::Incomplete => "incomplete".to_string(),
                }),
                as_path: a
                    .as_path
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                originator_id: a.originator_id.map(|o| o.to_string()),
                cluster_list: a.cluster_list.iter().map(|c| c.to_string()).collect(),
                status: if route.verdict.is_ok() {
                    "accepted".into()
                } else {
                    "filtered".into()
                },
                reason: route.verdict.as_ref().err().map(|r| r.to_string()),
            });
        }
    }
    out.sort_by(|a, b| (&a.prefix, &a.peer).cmp(&(&b.prefix, &b.peer)));
    out
}
