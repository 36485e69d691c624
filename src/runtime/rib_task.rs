//! The one task that owns routing state. Peers send it what they learn; it
//! feeds the sans-IO [`Rib`], and after draining its queue flushes once and
//! carries out the outputs (forwarding changes, session resets for import
//! limits). UPDATEs are pulled: each established peer has a few credits, one
//! per chunk in flight to its writer; a chunk is encoded only with a credit,
//! and the writer gives it back once written. The task never waits on a peer.

use super::peer::{PeerCmd, PeerId};
use crate::config::{Config, ImportLimitAction};
use crate::ctl::{RouteQuery, RouteView};
use crate::fib::TableId;
use crate::rib::{Explanation, ExportContext, PeerConfig, RestartGrace, Rib, RibConfig, RibOutput};
use crate::views::Views;
use crate::wire::open::GracefulRestart;
use crate::wire::{notification, AfiSafi, Negotiated, Notification, RouteRefresh, Update};
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

/// How long a GR peer back up may take to send End-of-RIB before its stale
/// routes go (RFC 4724 §4.2's stale-path time; FRR's default).
const STALE_PATH_TIME: u64 = 360;

/// Most messages handled before a flush, so a flood cannot delay sending forever.
const MAX_BATCH: usize = 4096;
/// Messages queued to the RIB task, at most (senders wait).
pub const RIB_QUEUE: usize = 1024;
/// Chunks in flight to one peer's writer, and the bytes of each.
const CREDITS: u32 = 4;
const CHUNK: usize = 64 * 1024;
/// Batches of kernel routes the FIB task can hold at once (its room at
/// start), and the routes of each: what it runs over netlink at a time.
/// One pool for every kernel table: the views take batches in turn, so the
/// FIB task's memory does not grow with the number of views.
pub const FIB_CREDITS: u32 = 2;
pub const FIB_BATCH: usize = 1024;

#[derive(Debug)]
// Messages from peers, the prober (`LinkCost`) and the control socket.
pub enum RibMsg {
    PeerUp {
        peer: PeerId,
        epoch: u64,
        negotiated: Negotiated,
        local: Option<SocketAddr>,
        remote_id: Ipv4Addr,
        /// Both OPENs, for BMP Peer Up.
        opens: Box<super::bmp::SessionOpens>,
        /// Graceful restart negotiated on the session (RFC 4724).
        graceful: Option<GracefulRestart>,
    },
    PeerDown {
        peer: PeerId,
        /// Why (for BMP Peer Down); `None`: removed from the configuration.
        reason: Option<crate::session::DownReason>,
        /// Set when the peer's routes are kept stale (RFC 4724 §4.2).
        graceful: Option<GracefulRestart>,
    },
    Update {
        peer: PeerId,
        update: Box<Update>,
    },
    /// A reloaded `[overlay]` (before the originated set it changes).
    Overlay(crate::config::Overlay),
    /// ROUTE-REFRESH (RFC 2918) with RFC 7313's `subtype`: request, BoRR, EoRR.
    RouteRefresh {
        peer: PeerId,
        epoch: u64,
        afi: u16,
        safi: u8,
        subtype: u8,
    },
    /// The writer of session `epoch` sent `credits` chunks: room for as many more.
    Credit {
        peer: PeerId,
        epoch: u64,
        credits: u32,
    },
    /// The full set of loopbacks this node originates (config plus `lo`).
    Originate(BTreeSet<IpNet>),
    /// A reload of `[mrt] updates`: log to this file from now on (`None`: stop).
    MrtLogFile(Option<std::path::PathBuf>),
    /// A new link cost for a neighbor (`None`: unknown); sent by the latency
    /// prober with the smoothed RTT and loss behind it (the views' metrics).
    LinkCost {
        peer: PeerId,
        cost: Option<u32>,
        rtt: Option<std::time::Duration>,
        loss: f64,
    },
    /// A neighbor added by `kittbgpd reload`: its id is the next one.
    AddPeer {
        cfg: PeerConfig,
        peer: RibPeer,
    },
    /// A reloaded import limit for a neighbor (`kittbgpd reload`).
    ImportLimit {
        peer: PeerId,
        limit: u32,
        action: crate::config::ImportLimitAction,
    },
    /// The FIB task took `batches` batches of kernel routes into its core
    /// and ran them: room for as many more ([`FibMsg::Routes`]).
    ///
    /// [`FibMsg::Routes`]: super::fib_task::FibMsg::Routes
    FibReady {
        batches: u32,
    },
    /// Whether the kernel holds our route for `prefix` in `table` (from the
    /// FIB task): a path that cannot be installed is not exported (by the
    /// view whose table it is).
    Forwarding {
        table: TableId,
        prefix: IpNet,
        ok: bool,
    },
    /// Best routes, all candidates, or filtered routes (see [`RouteQuery`]).
    RouteList {
        query: RouteQuery,
        reply: oneshot::Sender<Vec<RouteView>>,
    },
    /// Route counts of every peer, in neighbor order.
    Counts {
        reply: oneshot::Sender<Vec<crate::rib::PeerCounts>>,
    },
    /// Best-path changes since start (metrics).
    BestChanges {
        reply: oneshot::Sender<u64>,
    },
    /// Per `[[view]]` (metrics): its best routes by family and each
    /// neighbor's link cost under its metric.
    ViewMetrics {
        reply: oneshot::Sender<Vec<serde_json::Value>>,
    },
    /// Every candidate path for `prefix`, and why the losers lost.
    Explain {
        prefix: IpNet,
        reply: oneshot::Sender<Explanation>,
    },
    /// [`RibMsg::RouteList`] of a `[[view]]`'s table (`None`: no such view).
    ViewRoutes {
        view: String,
        query: RouteQuery,
        reply: oneshot::Sender<Option<Vec<RouteView>>>,
    },
    /// [`RibMsg::Explain`] in a `[[view]]`'s table (`None`: no such view).
    ViewExplain {
        view: String,
        prefix: IpNet,
        reply: oneshot::Sender<Option<Explanation>>,
    },
    /// A new router id / local AS by reload (every session restarts after it).
    Identity {
        router_id: std::net::Ipv4Addr,
        local_as: u32,
    },
    /// Answered once every kernel route change decided so far is in the
    /// kernel: nothing queued for the FIB and every batch it took is done
    /// (at once without `[kernel]`). Reload waits for it before deleting a
    /// removed neighbor's tunnel: routes leave an interface before it goes.
    KernelSettled {
        reply: oneshot::Sender<()>,
    },
    /// From a BMP collector task.
    Bmp(super::bmp::BmpReq),
    /// The tables as MRT TABLE_DUMP_V2, stamped `time` (seconds since the epoch).
    MrtDump {
        time: u32,
        reply: oneshot::Sender<bytes::Bytes>,
    },
}

#[derive(Debug)]
pub struct RibPeer {
    pub name: String,
    /// Shared with every best-route change sent to the kernel FIB.
    pub interface: Option<std::sync::Arc<str>>,
    /// The neighbor's address; for a multihop one, watched in the underlay.
    pub address: IpAddr,
    pub multihop: bool,
    /// `view_cost` by view name (routing views).
    pub view_cost: std::collections::BTreeMap<String, u32>,
    pub tx: mpsc::UnboundedSender<PeerCmd>,
}

impl RibPeer {
    pub fn new(n: &crate::config::Neighbor, tx: mpsc::UnboundedSender<PeerCmd>) -> RibPeer {
        RibPeer {
            name: n.name.clone(),
            interface: n.interface.as_deref().map(Into::into),
            address: n.address,
            multihop: n.multihop.is_some(),
            view_cost: n.view_cost.clone(),
            tx,
        }
    }
}

/// Underlay reachability of watched addresses (`(address, reachable)`, as
/// the RIB reports them) to every multihop peer with that address: its
/// session is held down while there is no route ([`PeerCmd::Reachable`]).
/// A removed peer's closed channel is skipped.
fn forward_reachability(peers: &[RibPeer], changes: impl IntoIterator<Item = (IpAddr, bool)>) {
    for (address, reachable) in changes {
        for p in peers.iter().filter(|p| p.multihop && p.address == address) {
            let _ = p.tx.send(PeerCmd::Reachable(reachable));
        }
    }
}

struct RibTask {
    rib: Rib,
    /// The `[[view]]` tables (none configured: empty, and the default
    /// table's traffic is exactly what it was without views).
    views: Views,
    peers: Vec<RibPeer>,
    /// Epoch of each peer's established session; output for others is dropped.
    epochs: Vec<Option<u64>>,
    /// Chunks each peer's writer can take now.
    credits: Vec<u32>,
    /// Kernel routes for the FIB task, when `[kernel] enabled`.
    fib: Option<mpsc::UnboundedSender<super::fib_task::FibMsg>>,
    /// Batches the FIB task can take now (see [`RibMsg::FibReady`]).
    fib_credits: u32,
    /// Per batch the FIB task took and has not applied yet, oldest first: the
    /// table it came from (an index of `fib_views`).
    fib_batches: std::collections::VecDeque<usize>,
    /// `[kernel] table`: the default view's best routes go there.
    kernel_table: TableId,
    /// Our restart is over: `FibMsg::EndGrace` goes to each of these
    /// tables once the FIB has pulled every route of its view queued before it.
    end_grace_owed: Vec<TableId>,
    best_changes: u64,
    /// BMP: peers up and the collectors' queues.
    bmp: super::bmp::BmpFeed,
    /// `[mrt] updates`: live BGP4MP log.
    mrt_log: super::mrt_log::MrtLog,
    /// Restarting speaker (RFC 4724 §4.1): GR neighbors whose End-of-RIB is
    /// awaited before the kernel routes of the previous run not re-learned go
    /// and OPENs stop carrying the R bit.
    restart: RestartGrace,
    /// The same per view, over the view's table (its End-of-RIB): a view's
    /// kernel table is swept once its own routes are back.
    view_restart: Vec<RestartGrace>,
    /// `true` while our restart lasts (read by the reload owner for the R bit).
    restarting: watch::Sender<bool>,
    /// [`RibMsg::KernelSettled`] waiting for the FIB to catch up.
    settle_waiters: Vec<oneshot::Sender<()>>,
}

pub async fn run(
    config: Config,
    peers: Vec<RibPeer>,
    mut rx: mpsc::Receiver<RibMsg>,
    fib: Option<mpsc::UnboundedSender<super::fib_task::FibMsg>>,
    restarting: watch::Sender<bool>,
) {
    let mut task = RibTask::new(&config, peers, fib, restarting);
    task.restart_progress();
    loop {
        // Helper side of graceful restart: stale routes have a deadline.
        // And our own restart has a deadline, and the avoidance of paths
        // through a router whose session just went down an end.
        let timer = [
            task.rib.stale_timeout(),
            task.views.stale_timeout(),
            task.rib.lost_router_timeout(),
            task.views.lost_router_timeout(),
        ]
        .into_iter()
        .chain(
            std::iter::once(&task.restart)
                .chain(&task.view_restart)
                .map(|r| r.poll_timeout()),
        )
        .flatten()
        .min();
        let msg = match timer {
            Some(t) => tokio::select! {
                m = rx.recv() => m,
                () = tokio::time::sleep_until(t.into()) => {
                    let now = std::time::Instant::now();
                    task.rib.expire_stale(now);
                    task.views.expire_stale(now);
                    task.rib.expire_lost_routers(now);
                    task.views.expire_lost_routers(now);
                    task.flush();
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(msg) = msg else { break };
        task.handle(msg);
        let mut n = 1;
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(msg) => task.handle(msg),
                Err(_) => break,
            }
            n += 1;
        }
        task.flush();
    }
}

impl RibTask {
    /// The RIB of `config` with its neighbors (`peers`, in the same order)
    /// and our restart (`restarting`: the R bit is sent, RFC 4724 §4.1).
    fn new(
        config: &Config,
        peers: Vec<RibPeer>,
        fib: Option<mpsc::UnboundedSender<super::fib_task::FibMsg>>,
        restarting: watch::Sender<bool>,
    ) -> RibTask {
        let mut rib = Rib::new(RibConfig::from_config(config));
        let mut views = Views::new(&config.views, &RibConfig::from_config(config));
        // Each view's best routes go to its own kernel table (`feed_fib`).
        views.set_fib_outputs(fib.is_some());
        // What is originated (loopbacks and overlay) comes in `RibMsg::Originate`.
        rib.set_overlay(config.overlay.clone());
        // Forwarding changes only matter to the kernel FIB.
        rib.set_fib_outputs(fib.is_some());
        // With a FIB, a route replacing another is announced once the kernel holds it.
        rib.set_export_after_kernel(fib.is_some());
        views.set_export_after_kernel(fib.is_some());
        for n in &config.neighbors {
            rib.add_peer(PeerConfig::from(n));
            views.add_peer(&PeerConfig::from(n), &n.view_cost);
            if n.multihop.is_some() {
                // Reported by the first flush: the session starts once a route exists.
                rib.watch_address(n.address);
            }
        }
        let (restart, view_restart) =
            restart::our_restart(config, views.tables().len(), *restarting.borrow());
        RibTask {
            rib,
            views,
            epochs: vec![None; peers.len()],
            credits: vec![0; peers.len()],
            peers,
            fib,
            fib_credits: FIB_CREDITS,
            fib_batches: std::collections::VecDeque::new(),
            kernel_table: config.kernel.table,
            end_grace_owed: Vec::new(),
            best_changes: 0,
            bmp: Default::default(),
            mrt_log: super::mrt_log::MrtLog::start(config.mrt.updates.clone()),
            restart,
            view_restart,
            restarting,
            settle_waiters: Vec::new(),
        }
    }

    fn handle(&mut self, msg: RibMsg) {
        match msg {
            RibMsg::PeerUp {
                peer,
                epoch,
                negotiated,
                local,
                remote_id,
                opens,
                graceful,
            } => {
                let Some(p) = self.peers.get(peer) else {
                    return;
                };
                let ctx = ExportContext::new(negotiated, local);
                if negotiated.ipv4_unicast
                    && !negotiated.ipv4_extended_next_hop
                    && ctx.local_v4.is_none()
                {
                    warn!(peer = %p.name, "extended next hop (RFC 8950) not negotiated and no IPv4 session address: IPv4 loopbacks are not sent");
                }
                debug!(peer = %p.name, interface = ?p.interface, %remote_id, "session up: sending the table");
                self.epochs[peer] = Some(epoch);
                self.credits[peer] = CREDITS;
                self.rib.peer_up(peer, ctx, remote_id);
                self.views.peer_up(peer, &negotiated, local, remote_id);
                if negotiated.views.any() && !self.views.is_empty() {
                    debug!(peer = %p.name, views = self.views.tables().len(), "session up with the view families");
                }
                let address = self
                    .rib
                    .peer_address(peer)
                    .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
                let asn = self.rib.config().local_as;
                self.bmp
                    .peer_up(peer, address, asn, remote_id, negotiated, local, &opens);
                self.mrt_log.peer_up(peer, negotiated, local);
                // RFC 4724 §4.2: stale routes of families the peer did not
                // preserve go now; the rest wait for its End-of-RIB.
                let (preserved, time) = graceful
                    .as_ref()
                    .map_or((&[][..], 0), |g| (&g.preserved[..], g.restart_time));
                let stale_time =
                    std::time::Duration::from_secs(u64::from(time).max(STALE_PATH_TIME));
                self.rib.graceful_session_up(
                    peer,
                    preserved,
                    std::time::Instant::now() + stale_time,
                );
                self.views.graceful_session_up(
                    peer,
                    preserved,
                    std::time::Instant::now() + stale_time,
                );
                self.restart_session_up(peer, graceful.as_ref(), negotiated.views.any());
            }
            RibMsg::PeerDown {
                peer,
                reason,
                graceful,
            } => {
                self.bmp.peer_down(peer, reason.as_ref());
                self.mrt_log.peer_down(peer);
                if reason.is_none() {
                    // De-configured by a reload: its End-of-RIB is not awaited.
                    self.restart.forget(peer);
                    for r in &mut self.view_restart {
                        r.forget(peer);
                    }
                }
                if let Some(p) = self.peers.get(peer) {
                    let c = self.rib.counts(peer);
                    self.epochs[peer] = None;
                    self.credits[peer] = 0;
                    match graceful {
                        Some(g) => {
                            let until = std::time::Instant::now()
                                + std::time::Duration::from_secs(g.restart_time.into());
                            info!(peer = %p.name, restart_time = g.restart_time, families = ?g.families, "graceful restart: keeping {} routes as stale", c.accepted + c.filtered);
                            self.rib.peer_down_graceful(peer, &g.families, until);
                            self.views.peer_down_graceful(peer, &g.families, until);
                        }
                        None => {
                            if c.accepted + c.filtered > 0 {
                                info!(peer = %p.name, "removing {} routes of the closed session", c.accepted + c.filtered);
                            }
                            // Paths through its router are avoided a moment.
                            let now = std::time::Instant::now();
                            self.rib.peer_down_at(peer, now);
                            self.views.peer_down_at(peer, now);
                        }
                    }
                }
            }
            RibMsg::Update { peer, update } => {
                let Some(p) = self.peers.get(peer) else {
                    return;
                };
                for issue in &update.issues {
                    warn!(peer = %p.name, "UPDATE attribute {}: {:?} ({})", issue.code, issue.action, issue.reason);
                }
                // View routes go to their tables; the rest (all of it
                // without views) to the default one.
                let l = match self.views.update(peer, &update) {
                    Some(default) => self.rib.update(peer, &default),
                    None => Default::default(),
                };
                self.bmp.update(&self.rib, peer, &update);
                self.mrt_log.update(&self.rib, peer, &update);
                debug!(peer = %p.name, accepted = l.accepted, filtered = l.filtered, withdrawn = l.withdrawn, "update");
            }
            RibMsg::RouteRefresh {
                peer,
                epoch,
                afi,
                safi,
                subtype,
            } => {
                if self.epochs.get(peer).copied().flatten() != Some(epoch) {
                    return;
                }
                let family = AfiSafi { afi, safi };
                if !self.rib.family_negotiated(peer, family) {
                    // RFC 7313 §5 / RFC 2918 §4: a family not negotiated is ignored.
                    debug!(peer = %self.peers[peer].name, %family, subtype, "ROUTE-REFRESH for a family not negotiated: ignored");
                    return;
                }
                match subtype {
                    RouteRefresh::REQUEST => self.rib.route_refresh(peer, afi),
                    RouteRefresh::BORR => self.rib.begin_refresh(peer, family),
                    RouteRefresh::EORR => {
                        self.rib.end_refresh(peer, family);
                    }
                    // RFC 7313 §5: other subtypes are ignored.
                    _ => {
                        debug!(peer = %self.peers[peer].name, subtype, "ROUTE-REFRESH subtype ignored")
                    }
                }
            }
            RibMsg::Credit {
                peer,
                epoch,
                credits,
            } => {
                if self.epochs.get(peer).copied().flatten() == Some(epoch) {
                    self.credits[peer] = (self.credits[peer] + credits).min(CREDITS);
                }
            }
            RibMsg::MrtLogFile(file) => self.mrt_log.reopen(file),
            RibMsg::Overlay(overlay) => {
                info!(?overlay, "[overlay] reloaded");
                if let Some(fib) = &self.fib {
                    let _ = fib.send(super::fib_task::FibMsg::Overlay(Box::new(overlay.clone())));
                }
                self.rib.set_overlay(overlay);
            }
            RibMsg::Originate(now) => {
                // One set from `config::originate`: the overlay's prefixes by range.
                let (overlay, now): (BTreeSet<IpNet>, BTreeSet<IpNet>) = now
                    .into_iter()
                    .partition(|p| self.rib.overlay().contains(p));
                if &overlay != self.rib.overlay_originated() {
                    info!(prefixes = ?overlay, "originated overlay prefixes");
                    self.rib.set_overlay_originated(overlay);
                }
                let old = self.rib.originated();
                let added: Vec<_> = now.difference(old).collect();
                let removed: Vec<_> = old.difference(&now).collect();
                if !added.is_empty() || !removed.is_empty() {
                    info!(?added, ?removed, "originated loopbacks changed");
                }
                self.views.set_originated(&now);
                self.rib.set_originated(now);
            }
            RibMsg::LinkCost {
                peer,
                cost,
                rtt,
                loss,
            } => {
                self.rib.set_link_cost(peer, cost);
                let measure = crate::views::LinkMeasure { cost, rtt, loss };
                self.views.set_link_measure(peer, measure);
            }
            RibMsg::AddPeer { cfg, peer } => {
                self.views.add_peer(&cfg, &peer.view_cost);
                self.rib.add_peer(cfg);
                if peer.multihop {
                    // Already watched (a restarted session): no change would be reported.
                    self.rib.watch_address(peer.address);
                    let _ = peer
                        .tx
                        .send(PeerCmd::Reachable(self.rib.reachable(peer.address)));
                }
                self.peers.push(peer);
                self.epochs.push(None);
                self.credits.push(0);
            }
            RibMsg::ImportLimit {
                peer,
                limit,
                action,
            } => {
                self.rib.set_import_limit(peer, limit, action);
                self.views.set_import_limit(peer, limit, action);
            }
            RibMsg::FibReady { batches } => {
                self.fib_credits = (self.fib_credits + batches).min(FIB_CREDITS);
                // Applied in the order taken: their routes may be announced now.
                let applied: Vec<usize> = (0..batches)
                    .map_while(|_| self.fib_batches.pop_front())
                    .collect();
                let mut views = self.fib_views();
                for i in applied {
                    if let Some((_, rib)) = views.get_mut(i) {
                        rib.fib_applied();
                    }
                }
            }
            RibMsg::KernelSettled { reply } => {
                // A reload that gave up waiting (no FIB progress) left its own.
                self.settle_waiters.retain(|w| !w.is_closed());
                self.settle_waiters.push(reply);
            }
            RibMsg::Identity {
                router_id,
                local_as,
            } => {
                info!(%router_id, local_as, "identity reloaded");
                self.rib.set_identity(router_id, local_as);
                self.views.set_identity(router_id, local_as);
            }
            RibMsg::Forwarding { table, prefix, ok } => {
                // A table no view has (any more): a late answer, nothing to do.
                for (_, rib) in self.fib_views().into_iter().filter(|(t, _)| *t == table) {
                    rib.set_forwarding(prefix, ok);
                }
            }
            RibMsg::Counts { reply } => {
                self.flush();
                let now = std::time::Instant::now();
                let held = self.output_deferred() || self.views_deferred();
                let counts = (0..self.peers.len()).map(|p| crate::rib::PeerCounts {
                    output_deferred: held && self.epochs[p].is_some(),
                    ..self.rib.counts_at(p, now)
                });
                let _ = reply.send(counts.collect());
            }
            RibMsg::RouteList { query, reply } => {
                self.flush();
                let _ = reply.send(self.rib.routes(query.all, query.filtered));
            }
            RibMsg::BestChanges { reply } => {
                self.flush();
                let _ = reply.send(self.best_changes);
            }
            RibMsg::ViewMetrics { reply } => {
                self.flush();
                let _ = reply.send(self.view_metrics());
            }
            RibMsg::Explain { prefix, reply } => {
                self.flush();
                let _ = reply.send(self.rib.explain(prefix));
            }
            RibMsg::ViewRoutes { view, query, reply } => {
                self.flush();
                let t = self.views.by_name(&view);
                let _ = reply.send(t.map(|t| t.rib.routes(query.all, query.filtered)));
            }
            RibMsg::ViewExplain {
                view,
                prefix,
                reply,
            } => {
                self.flush();
                let _ = reply.send(self.views.by_name(&view).map(|t| t.rib.explain(prefix)));
            }
            RibMsg::Bmp(req) => {
                self.flush();
                self.bmp.handle(&self.rib, req);
            }
            RibMsg::MrtDump { time, reply } => {
                self.flush();
                let _ = reply.send(self.rib.mrt_dump(time).freeze());
            }
        }
    }

    /// Each view's RIB with the kernel table of its best routes, the default
    /// view's first, then each `[[view]]`'s with its `table` (the tables of
    /// `fib_task::fib_tables`, in the same order); the FIB feed, the
    /// forwarding feedback and the end of our restart's grace follow it.
    fn fib_views(&mut self) -> Vec<(TableId, &mut Rib)> {
        let mut list = vec![(self.kernel_table, &mut self.rib)];
        list.extend(self.views.fib_ribs());
        list
    }

    /// Kernel routes are pulled: a batch of the routes in force for the
    /// prefixes whose kernel route changed, per batch the FIB task has room
    /// for ([`RibMsg::FibReady`]); the rest waits as a bit per prefix. The
    /// views take batches in turn from one pool of credits.
    fn feed_fib(&mut self) {
        let Some(fib) = self.fib.clone() else {
            return;
        };
        let mut credits = self.fib_credits;
        let mut changes = 0;
        let mut owed = std::mem::take(&mut self.end_grace_owed);
        let peers = std::mem::take(&mut self.peers);
        let mut taken = std::mem::take(&mut self.fib_batches);
        let mut views = self.fib_views();
        while credits > 0 {
            let mut sent = false;
            for (i, (table, rib)) in views.iter_mut().enumerate() {
                if credits == 0 {
                    break;
                }
                if rib.fib_queued() == 0 {
                    continue;
                }
                let routes = fib_batch(rib, &peers);
                taken.push_back(i);
                changes += routes.len() as u64;
                credits -= 1;
                sent = true;
                let table = *table;
                let _ = fib.send(super::fib_task::FibMsg::Routes { table, routes });
            }
            if !sent {
                break;
            }
        }
        for (table, rib) in &views {
            if rib.fib_queued() == 0 && owed.contains(table) {
                owed.retain(|t| t != table);
                let table = *table;
                let _ = fib.send(super::fib_task::FibMsg::EndGrace { table });
            }
        }
        drop(views);
        self.fib_batches = taken;
        self.peers = peers;
        self.end_grace_owed = owed;
        self.fib_credits = credits;
        self.best_changes += changes;
    }

    /// Decide what changed, then encode for every peer that can take more.
    /// While our restart defers output (RFC 4724 §4.1) nothing is pulled;
    /// the credits stay, so the first flush after the release sends.
    fn flush(&mut self) {
        self.decide();
        forward_reachability(&self.peers, self.rib.take_address_changes());
        self.restart_progress();
        let (rib_held, views_held) = (self.output_deferred(), self.views_deferred());
        for peer in 0..self.peers.len() {
            let Some(epoch) = self.epochs[peer] else {
                continue;
            };
            // A chunk is often shared with the peer's update group (one
            // encoding, refcounted), in one or a few parts: one credit each.
            let mut parts = Vec::new();
            while self.credits[peer] > 0 {
                // The default table first, then the views in turn.
                if (rib_held || !self.rib.poll_transmit_parts(peer, CHUNK, &mut parts))
                    && (views_held || !self.views.poll_transmit_parts(peer, CHUNK, &mut parts))
                {
                    break;
                }
                for chunk in parts.drain(..) {
                    self.credits[peer] = self.credits[peer].saturating_sub(1);
                    let _ = self.peers[peer].tx.send(PeerCmd::Send { epoch, chunk });
                }
            }
        }
        self.feed_fib();
        if !self.settle_waiters.is_empty() && self.kernel_settled() {
            for w in self.settle_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    /// Nothing waits to be pulled by the FIB task and it has handed back
    /// every batch it took (it does so once they are applied).
    fn kernel_settled(&mut self) -> bool {
        self.fib.is_none()
            || (self.fib_credits == FIB_CREDITS
                && self.fib_views().iter().all(|(_, r)| r.fib_queued() == 0))
    }

    /// [`RibMsg::ViewMetrics`]: per view, best routes by family and the
    /// link cost of each neighbor (`null`: unknown).
    fn view_metrics(&self) -> Vec<serde_json::Value> {
        let views = self.views.tables().iter().enumerate();
        views
            .map(|(i, t)| {
                let best = t.rib.routes(false, false);
                let v6 = best.iter().filter(|r| r.prefix.contains(':')).count();
                let costs: Vec<serde_json::Value> = (0..self.peers.len())
                    .map(|p| {
                        serde_json::json!({
                            "neighbor": self.peers[p].name,
                            "cost": self.views.link_cost(i, p),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "view": t.view.name,
                    "table": t.view.table,
                    "ipv4": best.len() - v6,
                    "ipv6": v6,
                    "link_costs": costs,
                })
            })
            .collect()
    }

    fn decide(&mut self) {
        if !self.rib.has_work() && !self.views.has_work() {
            return;
        }
        // The views' outputs: import limits as the default table's; their
        // kernel routes are pulled like the default table's (`feed_fib`).
        let views = self.views.flush().into_iter().map(|(_, o)| o);
        let views = views.filter(|o| matches!(o, RibOutput::LimitReached { .. }));
        let outputs: Vec<RibOutput> = if self.rib.has_work() {
            self.rib.flush()
        } else {
            Vec::new()
        };
        for out in outputs.into_iter().chain(views) {
            match out {
                RibOutput::Send { .. } => {}
                RibOutput::LimitReached {
                    peer,
                    action,
                    limit,
                } => {
                    let (Some(p), Some(Some(epoch))) =
                        (self.peers.get(peer), self.epochs.get(peer))
                    else {
                        continue;
                    };
                    warn!(peer = %p.name, limit, ?action, "import limit reached");
                    let restart = match action {
                        ImportLimitAction::Warn | ImportLimitAction::Block => continue,
                        ImportLimitAction::Restart => true,
                        ImportLimitAction::Disable => false,
                    };
                    // RFC 4486 §4: Cease / Maximum Number of Prefixes Reached.
                    let _ = p.tx.send(PeerCmd::Reset {
                        epoch: *epoch,
                        notification: Notification::cease(
                            notification::cease::MAX_PREFIXES_REACHED,
                        ),
                        restart,
                    });
                }
                // Pulled in batches instead (`feed_fib`).
                RibOutput::BestChanged { .. } => {}
            }
        }
    }
}

/// The next batch of `rib`'s kernel routes, each out of the interface of
/// the peer it came from.
fn fib_batch(rib: &mut Rib, peers: &[RibPeer]) -> Vec<super::fib_task::Route> {
    let mut batch = Vec::with_capacity(FIB_BATCH.min(rib.fib_queued()));
    rib.poll_fib(FIB_BATCH, &mut batch);
    batch
        .into_iter()
        .map(|b| {
            debug!(prefix = %b.prefix, best = ?b.best, "kernel route changed");
            let route = b.best.map(|(gateway, peer)| {
                (gateway, peers.get(peer).and_then(|p| p.interface.clone()))
            });
            (b.prefix, route)
        })
        .collect()
}

#[path = "rib_task_restart.rs"]
mod restart;

#[cfg(test)]
#[path = "rib_task_tests.rs"]
mod restart_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachability_goes_to_the_multihop_peers_of_that_address_only() {
        // The same address on a link and a multihop neighbor: two files (one
        // file with both is refused), so the link one is seen to be skipped.
        let neighbor = |keys: &str| {
            let text = format!(
                "router_id = \"10.255.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.255.0.0/16\"]\n\
                 originate = [\"10.255.0.1/32\"]\n[[neighbor]]\naddress = \"10.255.0.3\"\n{keys}"
            );
            crate::config::parse(&text, "t")
                .unwrap()
                .neighbors
                .remove(0)
        };
        let (link, rr) = (neighbor("interface = \"wg2\""), neighbor("multihop = 2"));
        assert!(link.multihop.is_none() && rr.multihop.is_some());
        let (tx0, mut rx0) = mpsc::unbounded_channel();
        let (tx1, mut rx1) = mpsc::unbounded_channel();
        let peers = [RibPeer::new(&link, tx0), RibPeer::new(&rr, tx1)];
        let other: IpAddr = "10.255.0.9".parse().unwrap();
        forward_reachability(
            &peers,
            [(rr.address, false), (other, true), (rr.address, true)],
        );
        assert!(
            rx0.try_recv().is_err(),
            "a link session ignores the underlay"
        );
        assert!(matches!(rx1.try_recv(), Ok(PeerCmd::Reachable(false))));
        assert!(matches!(rx1.try_recv(), Ok(PeerCmd::Reachable(true))));
        assert!(rx1.try_recv().is_err());
    }
}
