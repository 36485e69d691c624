//! The tokio side: sockets, timers, netlink, the control socket. It moves
//! bytes and events between the sans-IO cores and decides nothing.

mod bfd;
mod bmp;
mod code_pages;
mod conn;
mod control;
pub mod fib_task;
mod heard;
mod icmp;
mod lo;
mod metrics;
mod mrt_log;
mod netlink_events;
mod peer;
mod probe;
mod reload;
pub mod rib_task;
pub mod rules_task;
mod services;
mod stream_socket;
pub mod transport;
mod tunnels;

use crate::config::originate::Originated;
use crate::config::Config;
use crate::session::SessionConfig;
use crate::wire::{AfiSafi, Capability, Notification};
use peer::{PeerCmd, PeerHandle};
use rib_task::{RibMsg, RibPeer};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

/// What this run says about graceful restart (RFC 4724 §3) in its OPENs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestartState {
    /// R bit: kittbgpd restarted (it found its own routes in the kernel).
    pub restarted: bool,
    /// F bits: kernel routes survive a stop (`[kernel] enabled`, `on_stop = "keep"`).
    pub forwarding: bool,
}

/// The capabilities kittbgpd announces (RFC 5492).
pub fn local_capabilities(
    config: &Config,
    neighbor: &crate::config::Neighbor,
    restart: RestartState,
) -> Vec<Capability> {
    let mut caps = vec![
        Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
        Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::FourOctetAs(config.local_as),
        Capability::ExtendedMessage,
    ];
    // Routing views (SAFI 241) on link sessions, only when views exist: a
    // node without views sends exactly the OPEN it always sent.
    let views = !config.views.is_empty() && neighbor.multihop.is_none();
    if views {
        caps.push(Capability::Multiprotocol(crate::wire::view_nlri::IPV4_VIEW));
        caps.push(Capability::Multiprotocol(crate::wire::view_nlri::IPV6_VIEW));
    }
    if neighbor.extended_next_hop {
        caps.push(Capability::ExtendedNextHop(vec![
            crate::wire::capability::ExtNhEntry {
                nlri: AfiSafi::IPV4_UNICAST,
                nexthop_afi: crate::wire::AFI_IPV6,
            },
        ]));
    }
    if let Some(mode) = neighbor.add_paths.mode() {
        caps.push(Capability::AddPath(vec![
            (AfiSafi::IPV4_UNICAST, mode),
            (AfiSafi::IPV6_UNICAST, mode),
        ]));
    }
    if neighbor.graceful_restart {
        let flags = if restart.forwarding { 0x80 } else { 0 };
        let mut families = vec![
            (AfiSafi::IPV4_UNICAST, flags),
            (AfiSafi::IPV6_UNICAST, flags),
        ];
        if views {
            families.push((crate::wire::view_nlri::IPV4_VIEW, flags));
            families.push((crate::wire::view_nlri::IPV6_VIEW, flags));
        }
        caps.push(Capability::GracefulRestart {
            restart_state: restart.restarted,
            notification: false,
            restart_time: neighbor.restart_time,
            families,
        });
    }
    caps
}

pub fn session_config(
    config: &Config,
    n: &crate::config::Neighbor,
    restart: RestartState,
) -> SessionConfig {
    SessionConfig {
        local_as: config.local_as,
        remote_as: n.remote_as,
        router_id: config.router_id,
        hold_time: n.hold_time,
        keepalive: n.keepalive,
        connect_retry: n.connect_retry,
        send_hold_time: n.send_hold_time.map(|s| Duration::from_secs(s.into())),
        error_wait_min: n.error_wait_min,
        error_wait_max: n.error_wait_max,
        passive: n.passive,
        capabilities: local_capabilities(config, n, restart),
    }
}

/// Run the daemon until SIGINT or SIGTERM; then send every peer a Cease.
/// SIGHUP and `kittbgpd reload` re-read `path` ([`reload`]).
pub async fn run(config: Config, path: std::path::PathBuf) -> Result<(), String> {
    let started = std::time::Instant::now();
    let gtsm = transport::listener_gtsm(&config.neighbors);
    let listener = transport::listen(config.listen_port, gtsm)
        .map_err(|e| format!("cannot listen on port {}: {e}", config.listen_port))?;
    info!(port = config.listen_port, router_id = %config.router_id, local_as = config.local_as, "kittbgpd listening");

    // Tunnels from [wireguard] first: sessions bind to their interfaces.
    let tunnels = match config.wireguard.clone() {
        Some(wg) => Some(tunnels::Tunnels::start(wg).await?),
        None => None,
    };
    let (rib_tx, rib_rx) = mpsc::channel(rib_task::RIB_QUEUE);
    // Originated loopbacks: configured ones plus addresses on `lo` inside the ranges.
    // With `[overlay] from_lo`, also the addresses inside the overlay ranges.
    let mut on_lo = Vec::new();
    let mut all_on_lo = Vec::new();
    if config.loopbacks.from_lo || config.overlay.from_lo {
        match lo::loopback_addresses().await {
            Ok(found) => {
                on_lo = found
                    .iter()
                    .copied()
                    .filter(|p| config.loopbacks.from_lo && config.loopbacks.admits(*p))
                    .collect();
                all_on_lo = found;
            }
            Err(e) => warn!("cannot read addresses on lo: {e}"),
        }
    }
    let originated = Originated::new(config.loopbacks.clone(), config.overlay.clone(), all_on_lo);

    // The kernel FIB worker; locally sent packets take the node's loopback as source.
    let mut kernel = config.kernel.clone();
    kernel.prefsrc4 = kernel.prefsrc4.or_else(|| {
        on_lo.iter().find_map(|p| match p.addr() {
            std::net::IpAddr::V4(a) => Some(a),
            _ => None,
        })
    });
    kernel.prefsrc6 = kernel.prefsrc6.or_else(|| {
        on_lo.iter().find_map(|p| match p.addr() {
            std::net::IpAddr::V6(a) => Some(a),
            _ => None,
        })
    });
    // No kernel routes although enabled is fatal: a node that advertises
    // routes it cannot forward is a black hole (`[kernel] enabled = false` to run without).
    // Graceful restart (RFC 4724 §4.1): adopted routes are kept until every
    // GR neighbor's End-of-RIB, or at most the longest restart time.
    if let Some(t) = config
        .neighbors
        .iter()
        .filter(|n| n.graceful_restart)
        .map(|n| n.restart_time)
        .max()
    {
        kernel.startup_grace = Duration::from_secs(t.into());
    }
    let mut restart = RestartState {
        restarted: false,
        forwarding: kernel.enabled && kernel.on_stop == crate::config::OnStop::Keep,
    };
    let fib_tx = if kernel.enabled {
        // The default view's table, then each view's (`view_tables`).
        let tables = fib_task::fib_tables(&config);
        let task = fib_task::FibTask::start(
            kernel,
            &tables,
            &config.loopbacks,
            &config.overlay,
            rib_tx.clone(),
        )
        .await
        .map_err(|e| {
            format!("cannot manage kernel routes: {e} ([kernel] enabled = false to run without)")
        })?;
        restart.restarted = task.adopted() > 0;
        if restart.restarted {
            info!("restarted with kernel routes kept: announcing graceful restart with the R bit");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(task.run(rx));
        Some(tx)
    } else {
        None
    };
    // The views' policy rules, once the routes of their tables are in hand.
    let mut rules = None;
    rules_task::sync(&mut rules, &config)
        .await
        .map_err(|e| format!("cannot manage policy rules: {e}"))?;
    let mut peers: Vec<PeerHandle> = Vec::new();
    for (id, n) in config.neighbors.iter().enumerate() {
        if let Some(ifname) = &n.interface {
            if let Err(e) = transport::if_index(ifname) {
                warn!(peer = %n.name, "{e}; will keep trying to connect");
            }
        }
        peers.push(peer::spawn(
            id,
            n.clone(),
            session_config(&config, n, restart),
            rib_tx.clone(),
        ));
    }
    let rib_peers = config
        .neighbors
        .iter()
        .zip(&peers)
        .map(|(n, h)| RibPeer::new(n, h.tx.clone()))
        .collect();
    // RFC 4724 §3: the R bit only while our restart lasts (the RIB task says when it is over).
    let (restarting_tx, restarting) = tokio::sync::watch::channel(restart.restarted);
    tokio::spawn(rib_task::run(
        config.clone(),
        rib_peers,
        rib_rx,
        fib_tx.clone(),
        restarting_tx,
    ));

    info!(prefixes = ?originated.current(), "originating");
    let _ = rib_tx
        .send(RibMsg::Originate(originated.current().clone()))
        .await;

    let (reload_tx, mut reload_rx) = mpsc::unbounded_channel();
    let views = control::Views {
        peers: peers.iter().map(|p| p.status.clone()).collect(),
        links: Vec::new(),
        bfd: Vec::new(),
        tunnels: None,
        peer_cmds: peers.iter().map(|p| p.tx.clone()).collect(),
        fib: fib_tx.clone(),
        rules: rules.clone(),
        removed: vec![false; peers.len()],
        config: config.clone(),
        reload: reload_tx,
    };
    let (views_tx, views_rx) = tokio::sync::watch::channel(views);
    let control = control::serve(
        &config.control_socket,
        config.control_group.as_deref(),
        views_rx.clone(),
        rib_tx.clone(),
    )
    .map_err(|e| {
        format!(
            "cannot open control socket {}: {e}",
            config.control_socket.display()
        )
    })?;

    // Metrics and BMP collectors (RFC 7854, fed by the RIB task).
    let mut services = services::Services::new(
        started,
        rib_tx.clone(),
        views_rx,
        config.router_id.to_string(),
    );
    services.set_metrics(config.metrics_listen).await?;
    services.set_bmp(&config.bmp);

    // Interface state and `lo`; neighbors are given by sync_links below.
    let (watch_tx, watch_rx) = mpsc::unbounded_channel();
    tokio::spawn(netlink_events::run(
        netlink_events::Watch {
            neighbors: Vec::new(),
            rib: rib_tx.clone(),
            originated,
        },
        watch_rx,
    ));
    let peer_txs: Vec<_> = peers.iter().map(|p| p.tx.clone()).collect();
    let (accepting, accepting_rx) =
        tokio::sync::watch::channel((config.neighbors.clone(), peer_txs));
    let (listener_tx, listener_rx) = mpsc::unbounded_channel();
    let mut running = reload::Running {
        path,
        ids: config
            .neighbors
            .iter()
            .map(|n| Some(n.name.clone()))
            .collect(),
        config,
        peers,
        rib: rib_tx.clone(),
        accepting,
        listener: listener_tx,
        views: views_tx,
        restart,
        probes: Default::default(),
        bfd: Default::default(),
        watch: watch_tx,
        tunnels: tunnels.map(tunnels::Tunnels::spawn),
        services,
        rules,
    };
    // Probers, interface and handshake tracking: the same path as a reload's.
    running.sync_links();
    running.publish();

    // systemd (Type=notify): ready once the control socket answers and the
    // kernel routes of an earlier run are adopted (FibTask::start read them).
    notify(&[sd_notify::NotifyState::Ready]);
    tokio::spawn(code_pages::release_when_quiet());
    code_pages::rare_code_ran();
    if let Some(period) = sd_notify::watchdog_enabled() {
        tokio::spawn(watchdog(period, rib_tx.clone()));
    }

    let accept = tokio::spawn(accept_loop(listener, accepting_rx, listener_rx));
    wait_for_signal(&mut running, &mut reload_rx, restarting).await;
    let peers = std::mem::take(&mut running.peers);
    info!("shutting down: sending Cease to every neighbor");
    notify(&[sd_notify::NotifyState::Stopping]);
    accept.abort();
    // The kernel table first: with on_stop = keep it must not follow the
    // withdrawals that closing the sessions causes (a restart cuts no traffic).
    // Policy rules go the way of the routes (kept or removed), before them.
    if let Some(r) = running.rules.take() {
        r.stop(Duration::from_secs(5)).await;
    }
    if let Some(fib) = fib_tx {
        let (tx, rx) = oneshot::channel();
        if fib.send(fib_task::FibMsg::Stop { done: tx }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
    // BFD before BGP: AdminDown first, so no neighbor sees a path failure.
    let bfd = std::mem::take(&mut running.bfd);
    futures::future::join_all(
        bfd.into_values()
            .map(|h| h.stop(Duration::from_millis(500))),
    )
    .await;
    let mut done = Vec::new();
    for p in &peers {
        let (tx, rx) = oneshot::channel();
        // RFC 4486 §4: Cease / Administrative Shutdown.
        let notification = Notification::new(6, 2, Vec::new());
        if p.tx
            .send(PeerCmd::Stop {
                notification,
                graceful: restart.forwarding,
                done: tx,
            })
            .is_ok()
        {
            done.push(rx);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), futures::future::join_all(done)).await;
    // BMP: the Peer Downs are queued; then Termination (RFC 7854 §4.5).
    running.services.stop().await;
    // Tunnels last (kept by default: a restart cuts no traffic).
    if let Some((t, _)) = running.tunnels.take() {
        let (tx, rx) = oneshot::channel();
        if t.send(tunnels::TunnelMsg::Stop { done: tx }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
    control.shutdown();
    Ok(())
}

/// A message to systemd's NOTIFY_SOCKET (nothing without one).
fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        warn!("cannot notify systemd: {e}");
    }
}

/// WATCHDOG=1 at half the period, only while the routing task answers:
/// a wedged RIB owner gets the daemon restarted (`WatchdogSec=` in the unit).
async fn watchdog(period: Duration, rib: mpsc::Sender<RibMsg>) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tick.tick().await;
        let asked = async {
            let (tx, rx) = oneshot::channel();
            rib.send(RibMsg::BestChanges { reply: tx }).await.ok()?;
            rx.await.ok()
        };
        match tokio::time::timeout(period / 2, asked).await {
            // A blocking send: a full NOTIFY_SOCKET queue must not stall a runtime worker.
            Ok(Some(_)) => {
                let _ = tokio::task::spawn_blocking(|| notify(&[sd_notify::NotifyState::Watchdog]))
                    .await;
            }
            Ok(None) => return,
            Err(_) => warn!("routing task did not answer: no watchdog ping"),
        }
    }
}

/// Until SIGTERM or SIGINT; SIGHUP and `kittbgpd reload` re-read the file.
async fn wait_for_signal(
    running: &mut reload::Running,
    requests: &mut mpsc::UnboundedReceiver<reload::ReloadReq>,
    mut restarting: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => {
            error!("cannot watch SIGTERM/SIGHUP: {e}");
            return std::future::pending().await;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => {
                info!("SIGHUP: reloading {}", running.path.display());
                running.reload(false).await;
            }
            Some(req) = requests.recv() => {
                let _ = req.reply.send(running.reload(req.dry_run).await);
            }
            Ok(()) = restarting.changed() => {
                if !*restarting.borrow_and_update() {
                    running.restart_over();
                }
            }
        }
    }
}

/// Hand each inbound connection to its neighbor's task; refuse strangers.
/// A reload changing who may connect may turn the listener's GTSM on or off
/// (a multihop neighbor's handshake arrives with a hop limit below 255).
/// A reload changing `listen_port` hands over a listener bound to it.
async fn accept_loop(
    mut listener: tokio::net::TcpListener,
    mut neighbors: tokio::sync::watch::Receiver<reload::Accepting>,
    mut rebound: mpsc::UnboundedReceiver<tokio::net::TcpListener>,
) {
    let mut gtsm = transport::listener_gtsm(&neighbors.borrow().0);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(l) = rebound.recv() => {
                info!(port = l.local_addr().map(|a| a.port()).unwrap_or(0), "listening on the reloaded port");
                listener = l;
                continue;
            }
            Ok(()) = neighbors.changed() => {
                let now = transport::listener_gtsm(&neighbors.borrow().0);
                if now != gtsm {
                    match transport::set_listener_gtsm(&listener, now) {
                        Ok(()) => gtsm = now,
                        Err(e) => warn!("cannot change GTSM on the listener: {e}"),
                    }
                }
                continue;
            }
        };
        match accepted {
            Ok((stream, addr)) => {
                let local = stream.local_addr().unwrap_or(addr);
                let found = transport::match_neighbor(&neighbors.borrow().0, addr, local);
                match found {
                    Ok(i) => {
                        let _ = neighbors.borrow().1[i].send(PeerCmd::Inbound(stream));
                    }
                    Err(why) => warn!("refused connection: {why}"),
                }
            }
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{view_nlri, Negotiated, Open};

    const BASE: &str = "router_id = \"10.255.0.1\"\nlocal_as = 65000\n[loopbacks]\n\
        ipv4 = [\"10.255.0.0/16\"]\noriginate = [\"10.255.0.1/32\"]\n\
        [[neighbor]]\ninterface = \"wg1\"\naddress = \"fe80::1:2\"\n\
        [[neighbor]]\naddress = \"10.255.0.9\"\nmultihop = 3\n";
    const VIEW: &str = "[[view]]\nname = \"fast\"\nid = 1\ntable = 101\n";

    fn config(text: &str) -> Config {
        crate::config::parse(text, "t").unwrap()
    }

    fn open_of(c: &Config, n: usize) -> Open {
        let caps = local_capabilities(c, &c.neighbors[n], RestartState::default());
        Open::new(65000, 240, c.router_id, caps)
    }

    fn encoded(o: &Open) -> Vec<u8> {
        let mut b = bytes::BytesMut::new();
        o.encode_body(&mut b).unwrap();
        b.to_vec()
    }

    #[test]
    fn view_families_are_announced_only_with_views_and_on_link_sessions() {
        let plain = config(BASE);
        // Without views: the capabilities (and OPEN bytes) of before views.
        let caps = local_capabilities(&plain, &plain.neighbors[0], RestartState::default());
        let before = vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::FourOctetAs(65000),
            Capability::ExtendedMessage,
            Capability::ExtendedNextHop(vec![crate::wire::capability::ExtNhEntry {
                nlri: AfiSafi::IPV4_UNICAST,
                nexthop_afi: crate::wire::AFI_IPV6,
            }]),
        ];
        assert_eq!(caps, before);
        let bytes = encoded(&open_of(&plain, 0));
        assert!(!bytes.windows(4).any(|w| w == [0, 1, 0, 241]), "{bytes:?}");
        let views = config(&format!("{BASE}{VIEW}"));
        let link = open_of(&views, 0);
        assert!(link.families().contains(&view_nlri::IPV4_VIEW));
        assert!(link.families().contains(&view_nlri::IPV6_VIEW));
        assert!(encoded(&link).windows(4).any(|w| w == [0, 1, 0, 241]));
        // A multihop session carries no view.
        assert_eq!(encoded(&open_of(&views, 1)), encoded(&open_of(&plain, 1)));
        // Negotiated only when both sides announce them.
        let n = Negotiated::from_opens(&link, &link);
        assert!(n.views.ipv4_unicast && n.views.ipv6_unicast && n.view.is_none());
        let bird_like = open_of(&plain, 0);
        let n = Negotiated::from_opens(&link, &bird_like);
        assert!(!n.views.any());
        // Everything else negotiates as it does between two nodes without views.
        assert_eq!(n, Negotiated::from_opens(&bird_like, &bird_like));
        // Graceful restart lists the view families with views.
        let gr = config(&format!("{BASE}{VIEW}").replace(
            "address = \"fe80::1:2\"\n",
            "address = \"fe80::1:2\"\ngraceful_restart = true\n",
        ));
        let caps = local_capabilities(&gr, &gr.neighbors[0], RestartState::default());
        let families = caps.iter().find_map(|c| match c {
            Capability::GracefulRestart { families, .. } => Some(families.clone()),
            _ => None,
        });
        assert_eq!(families.unwrap().len(), 4);
    }
}
