//! BMP export (RFC 7854): one task per `[bmp] collector`, reconnecting with
//! backoff. The RIB task is the one feeder ([`BmpFeed`]), so Peer Up, Route
//! Monitoring and Peer Down reach a collector in the order they happened.
//!
//! Memory is bounded: each collector has a queue of [`QUEUE`] messages. The
//! RIB task never waits on it; when it is full the RIB task drops that
//! collector's sender, the collector task writes what was queued, sends
//! Termination (out of resources), reconnects at once and gets a full resync
//! (Peer Up and the whole Adj-RIB-In, pre- and post-policy, then End-of-RIB)
//! taken by the RIB task in the same step that installs the new queue, so
//! nothing is lost or doubled between the snapshot and the live messages.

use crate::bmp::{self, PeerHeader};
use crate::rib::{PeerId, Rib};
use crate::wire::{AfiSafi, Message, Negotiated, Update, UpdateBuilder};
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

/// Messages queued per collector before it counts as too slow.
pub const QUEUE: usize = 16 * 1024;

/// The OPENs of an established session, for Peer Up (whole messages).
#[derive(Clone, Debug)]
pub struct SessionOpens {
    pub remote: Option<SocketAddr>,
    pub sent: Bytes,
    pub received: Bytes,
}

/// From a collector task to the RIB task.
#[derive(Debug)]
pub enum BmpReq {
    /// (Re)connected: the state as BMP messages; live messages go to `tx` from now on.
    Sync {
        tx: mpsc::Sender<Bytes>,
        reply: oneshot::Sender<Vec<Bytes>>,
    },
    /// A Stats Report per established peer.
    Stats { reply: oneshot::Sender<Vec<Bytes>> },
}

struct UpPeer {
    address: IpAddr,
    asn: u32,
    bgp_id: Ipv4Addr,
    negotiated: Negotiated,
    peer_up: Bytes,
}

impl UpPeer {
    fn header(&self) -> PeerHeader {
        PeerHeader {
            address: self.address,
            asn: self.asn,
            bgp_id: self.bgp_id,
            time: now(),
        }
    }
}

fn now() -> (u32, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as u32, d.subsec_micros())
}

/// The RIB task's side: what is up, and the live queues.
#[derive(Default)]
pub struct BmpFeed {
    sinks: Vec<mpsc::Sender<Bytes>>,
    up: Vec<Option<UpPeer>>,
}

impl BmpFeed {
    fn push(&mut self, msg: Bytes) {
        self.sinks.retain(|s| match s.try_send(msg.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!("BMP collector too slow: its queue is full; resync on reconnect");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub fn peer_up(
        &mut self,
        peer: PeerId,
        address: IpAddr,
        asn: u32,
        bgp_id: Ipv4Addr,
        negotiated: Negotiated,
        local: Option<SocketAddr>,
        opens: &SessionOpens,
    ) {
        if self.up.len() <= peer {
            self.up.resize_with(peer + 1, || None);
        }
        let mut p = UpPeer {
            address,
            asn,
            bgp_id,
            negotiated,
            peer_up: Bytes::new(),
        };
        let unspecified = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        p.peer_up = bmp::peer_up(
            &p.header(),
            local.map_or(unspecified, |l| l.ip().to_canonical()),
            local.map_or(0, |l| l.port()),
            opens.remote.map_or(0, |r| r.port()),
            &opens.sent,
            &opens.received,
        );
        if !self.sinks.is_empty() {
            self.push(p.peer_up.clone());
        }
        self.up[peer] = Some(p);
    }

    pub fn peer_down(&mut self, peer: PeerId, reason: Option<&crate::session::DownReason>) {
        let Some(p) = self.up.get_mut(peer).and_then(Option::take) else {
            return;
        };
        let reason = down_reason(reason);
        self.push(bmp::peer_down(&p.header(), &reason));
    }

    /// An UPDATE from `peer` that `rib` has just applied: pre-policy as
    /// received, post-policy (L flag) as the accepted routes plus withdrawals
    /// of what was withdrawn or filtered.
    pub fn update(&mut self, rib: &Rib, peer: PeerId, update: &Update) {
        if self.sinks.is_empty() {
            return;
        }
        let Some(p) = self.up.get(peer).and_then(Option::as_ref) else {
            return;
        };
        let header = p.header();
        let neg = p.negotiated;
        let mut msgs = Vec::new();
        if let Ok(pre) = Message::Update(update.clone()).to_bytes(&neg) {
            msgs.push(bmp::route_monitoring(&header, false, &pre));
        }
        let mut gone: Vec<(Option<u32>, IpNet)> = update.withdrawn_paths().collect();
        let mut accepted = Vec::new();
        for (path, prefix) in update.announced_paths() {
            match rib.received_path(peer, &prefix, path) {
                Some(r) if r.verdict.is_ok() => accepted.push((prefix, r)),
                _ => gone.push((path, prefix)),
            }
        }
        for u in bmp::route_monitoring_updates(accepted, &neg)
            .into_iter()
            .chain(withdrawals(&gone, &neg))
        {
            msgs.push(bmp::route_monitoring(&header, true, &u));
        }
        for m in msgs {
            self.push(m);
        }
    }

    pub fn handle(&mut self, rib: &Rib, req: BmpReq) {
        match req {
            BmpReq::Sync { tx, reply } => {
                let mut out = Vec::new();
                for (peer, p) in self.up.iter().enumerate() {
                    let Some(p) = p else { continue };
                    out.push(p.peer_up.clone());
                    let header = p.header();
                    let routes = rib.adj_rib_in(peer);
                    let pre = bmp::route_monitoring_updates(
                        routes.iter().map(|(n, r)| (*n, r)),
                        &p.negotiated,
                    );
                    let post = bmp::route_monitoring_updates(
                        routes
                            .iter()
                            .filter(|(_, r)| r.verdict.is_ok())
                            .map(|(n, r)| (*n, r)),
                        &p.negotiated,
                    );
                    for (post_policy, updates) in [(false, pre), (true, post)] {
                        out.extend(
                            updates
                                .iter()
                                .map(|u| bmp::route_monitoring(&header, post_policy, u)),
                        );
                        // End-of-RIB after the initial table (RFC 7854 §5).
                        for fam in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
                            let mut b = BytesMut::new();
                            if UpdateBuilder::new(&p.negotiated)
                                .end_of_rib(fam, &mut b)
                                .is_ok()
                            {
                                out.push(bmp::route_monitoring(&header, post_policy, &b));
                            }
                        }
                    }
                }
                if reply.send(out).is_ok() {
                    self.sinks.push(tx);
                }
            }
            BmpReq::Stats { reply } => {
                let out = self
                    .up
                    .iter()
                    .enumerate()
                    .filter_map(|(peer, p)| {
                        let p = p.as_ref()?;
                        let c = rib.counts(peer);
                        Some(bmp::stats_report(
                            &p.header(),
                            u32::try_from(c.filtered).unwrap_or(u32::MAX),
                            c.received as u64,
                            c.accepted as u64,
                        ))
                    })
                    .collect();
                let _ = reply.send(out);
            }
        }
    }
}

/// Withdrawals as the peer would send them: with Path Identifiers on the
/// families it sends ADD-PATH for (RFC 7911).
fn withdrawals(prefixes: &[(Option<u32>, IpNet)], neg: &Negotiated) -> Vec<Bytes> {
    let neg = bmp::as_received(neg);
    let b = UpdateBuilder::new(&neg);
    let mut out = BytesMut::new();
    let v4 = prefixes.iter().filter_map(|(i, p)| match p {
        IpNet::V4(p) => Some((i.unwrap_or(0), *p)),
        _ => None,
    });
    let v6 = prefixes.iter().filter_map(|(i, p)| match p {
        IpNet::V6(p) => Some((i.unwrap_or(0), *p)),
        _ => None,
    });
    if neg.add_path_send.ipv4_unicast {
        let _ = b.withdraw_v4(v4, &mut out);
    } else {
        let _ = b.withdraw_v4(v4.map(|x| x.1), &mut out);
    }
    if neg.add_path_send.ipv6_unicast {
        let _ = b.withdraw_v6(v6, &mut out);
    } else {
        let _ = b.withdraw_v6(v6.map(|x| x.1), &mut out);
    }
    crate::bmp::split_messages(out.freeze())
}

/// RFC 7854 §4.9 reason from the session's.
fn down_reason(r: Option<&crate::session::DownReason>) -> bmp::DownReason {
    use crate::session::DownReason as D;
    let encode = |n: &crate::wire::Notification| {
        Message::Notification(n.clone())
            .to_bytes(&Negotiated::default())
            .unwrap_or_default()
    };
    match r {
        Some(D::NotificationSent(n)) => bmp::DownReason::LocalNotification(encode(n)),
        Some(D::HoldTimerExpired) => bmp::DownReason::LocalNotification(encode(
            &crate::wire::Notification::new(4, 0, Vec::new()),
        )),
        // RFC 9687: Send Hold Timer Expired (code 8) was sent.
        Some(D::SendHoldTimerExpired) => bmp::DownReason::LocalNotification(encode(
            &crate::wire::Notification::new(8, 0, Vec::new()),
        )),
        Some(D::NotificationReceived(n)) => bmp::DownReason::RemoteNotification(encode(n)),
        Some(D::ConnectionClosed) => bmp::DownReason::RemoteNoNotification,
        // RFC 4271 §8.1.2 Event 2, ManualStop.
        Some(D::AdminStop) => bmp::DownReason::LocalNoNotification(2),
        // Only a reload that removed the neighbor sends no reason.
        None => bmp::DownReason::Deconfigured,
    }
}

/// One collector: connect, Initiation, sync, then live messages and periodic
/// Stats Reports; Termination on stop. Reconnects with backoff (1 s to 60 s).
pub async fn collector(
    addr: String,
    rib: mpsc::Sender<super::rib_task::RibMsg>,
    stats_interval: Duration,
    sys_name: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    let descr = format!("kittbgpd {}", env!("CARGO_PKG_VERSION"));
    loop {
        if *stop.borrow() {
            return;
        }
        let conn = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&addr)) => c,
            _ = stop.changed() => return,
        };
        let stream = match conn {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                warn!(collector = %addr, "BMP connect failed: {e}; retry in {backoff:?}");
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
            Err(_) => {
                warn!(collector = %addr, "BMP connect timed out; retry in {backoff:?}");
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        info!(collector = %addr, "BMP collector connected");
        match session(stream, &rib, stats_interval, &descr, &sys_name, &mut stop).await {
            End::Stopped => return,
            End::Overflow => backoff = Duration::from_secs(1),
            End::Lost(e) => {
                warn!(collector = %addr, "BMP session lost: {e}; retry in {backoff:?}");
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

enum End {
    Stopped,
    Overflow,
    Lost(String),
}

async fn session(
    stream: tokio::net::TcpStream,
    rib: &mpsc::Sender<super::rib_task::RibMsg>,
    stats_interval: Duration,
    descr: &str,
    sys_name: &str,
    stop: &mut watch::Receiver<bool>,
) -> End {
    use super::rib_task::RibMsg;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let lost = |e: std::io::Error| End::Lost(e.to_string());
    if let Err(e) = wr.write_all(&bmp::initiation(descr, sys_name)).await {
        return lost(e);
    }
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let (reply, snapshot) = oneshot::channel();
    if rib
        .send(RibMsg::Bmp(BmpReq::Sync { tx, reply }))
        .await
        .is_err()
    {
        return End::Stopped;
    }
    let Ok(snapshot) = snapshot.await else {
        return End::Stopped;
    };
    if let Err(e) = wr.write_all(&snapshot.concat()).await {
        return lost(e);
    }
    let mut stats = tokio::time::interval(stats_interval);
    stats.tick().await;
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => {
                    // Write what is queued in one go.
                    let mut batch = m.to_vec();
                    while let Ok(m) = rx.try_recv() {
                        batch.extend_from_slice(&m);
                        if batch.len() > 1 << 20 { break; }
                    }
                    if let Err(e) = wr.write_all(&batch).await {
                        return lost(e);
                    }
                }
                None => {
                    let _ = wr.write_all(&bmp::termination(bmp::TERM_OUT_OF_RESOURCES)).await;
                    let _ = wr.shutdown().await;
                    return End::Overflow;
                }
            },
            _ = stats.tick() => {
                let (reply, rx_stats) = oneshot::channel();
                if rib.send(RibMsg::Bmp(BmpReq::Stats { reply })).await.is_err() {
                    return End::Stopped;
                }
                if let Ok(msgs) = rx_stats.await {
                    if let Err(e) = wr.write_all(&msgs.concat()).await {
                        return lost(e);
                    }
                }
            }
            // A collector sends nothing (RFC 7854 §3.3): data or EOF both end it.
            r = rd.read(&mut buf) => {
                return End::Lost(match r {
                    Ok(0) => "closed by the collector".into(),
                    Ok(_) => "collector sent data".into(),
                    Err(e) => e.to_string(),
                });
            }
            _ = stop.changed() => {
                let mut rest = Vec::new();
                while let Ok(m) = rx.try_recv() {
                    rest.extend_from_slice(&m);
                }
                rest.extend_from_slice(&bmp::termination(bmp::TERM_ADMIN_CLOSE));
                let _ = tokio::time::timeout(Duration::from_secs(2), wr.write_all(&rest)).await;
                let _ = wr.shutdown().await;
                return End::Stopped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loopbacks;
    use crate::rib::RibConfig;

    /// A collector that cannot keep up loses its queue's sender: it writes
    /// what was queued, then sees the end (and resyncs); nothing grows.
    #[test]
    fn a_full_queue_ends_the_collector_feed() {
        let rib = Rib::new(RibConfig {
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            cluster_id: None,
            local_as: 65000,
            loopbacks: Loopbacks {
                ipv4: Vec::new(),
                ipv6: Vec::new(),
                originate: Vec::new(),
                from_lo: false,
            },
        });
        let mut feed = BmpFeed::default();
        let (tx, mut rx) = mpsc::channel(2);
        let (reply, mut snapshot) = oneshot::channel();
        feed.handle(&rib, BmpReq::Sync { tx, reply });
        assert_eq!(snapshot.try_recv().unwrap(), Vec::<Bytes>::new());
        assert_eq!(feed.sinks.len(), 1);
        for m in ["a", "b", "c", "d"] {
            feed.push(Bytes::from(m));
        }
        assert!(
            feed.sinks.is_empty(),
            "dropped at the first message that did not fit"
        );
        assert_eq!(rx.try_recv().unwrap(), "a");
        assert_eq!(rx.try_recv().unwrap(), "b");
        assert_eq!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected),
            "the collector task sees the end: Termination, reconnect, resync"
        );
    }
}
