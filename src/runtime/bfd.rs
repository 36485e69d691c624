//! One BFD task per neighbor with `bfd = true` (RFC 5881, single hop over the
//! tunnel's IPv6 link-local addresses): it owns the sans-IO
//! [`crate::bfd::Session`] and two UDP sockets, and tells the peer task when
//! BFD goes Down (the session is held down, RFC 5882 §3.2) or Up again.
//!
//! Sockets: one per neighbor, each bound to its interface (SO_BINDTODEVICE),
//! rather than one shared listener demultiplexing by interface and Your
//! Discriminator. A tunnel interface carries one neighbor, so the kernel does
//! the demultiplexing, the task owns everything of its session (no shared
//! table), and a neighbor added or removed by a reload opens or closes only
//! its own sockets. Receive: [::]:3784 with SO_REUSEADDR (every task binds the
//! same port, each on its own device); packets from another address are
//! ignored. Send: from a port in 49152-65535 (RFC 5881 §4), hop limit 255;
//! received hop limit must be 255 (§5, read with IPV6_RECVHOPLIMIT).

use super::peer::PeerCmd;
use crate::bfd::{BfdEvent, BfdParams, Discard, Packet, Session, SessionConfig};
use crate::session::HoldReason;
use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// Control packets are received on this port (RFC 5881 §4).
pub const PORT: u16 = 3784;

pub struct Bfd {
    pub name: String,
    pub interface: String,
    pub address: Ipv6Addr,
    pub params: BfdParams,
}

/// What `show bfd` shows of one neighbor's session.
#[derive(Clone, Debug, Serialize, Default)]
pub struct BfdView {
    pub name: String,
    pub interface: String,
    pub address: Option<Ipv6Addr>,
    #[serde(flatten)]
    pub session: Option<crate::bfd::Snapshot>,
    /// Packets discarded before the session saw them, by reason.
    pub discards: BTreeMap<Discard, u64>,
    /// Why the sockets are not open (the interface may not exist yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_error: Option<String>,
}

/// A running BFD task. Dropping it stops the session: the neighbor is told
/// AdminDown (diag 7) and the task ends.
pub struct Handle {
    /// Where it runs: a change of either is a new task.
    pub target: (String, Ipv6Addr),
    pub view: watch::Receiver<BfdView>,
    params: watch::Sender<BfdParams>,
    /// Where valid packets are reported (the link prober's [`super::heard::Heard`] channel).
    heard: watch::Sender<Option<watch::Sender<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stop the session and wait (at most `within`) until the neighbor was
    /// sent AdminDown: on daemon stop, before the BGP sessions close, so the
    /// neighbor's BFD does not take the stop for a path failure (RFC 5882
    /// §3.2) and a graceful restart keeps its routes.
    pub async fn stop(self, within: Duration) {
        let Handle { params, task, .. } = self;
        drop(params);
        let _ = tokio::time::timeout(within, task).await;
    }

    /// A reload of `[bfd]`: new intervals with a Poll Sequence.
    pub fn set_params(&self, params: &BfdParams) {
        self.params.send_if_modified(|p| {
            let changed = p != params;
            *p = params.clone();
            changed
        });
    }

    /// Report every valid packet from now on to `heard` (the link's prober,
    /// which a reload may have replaced), or nowhere.
    pub fn set_heard(&self, heard: Option<watch::Sender<Instant>>) {
        self.heard.send_if_modified(|h| {
            let changed = match (&*h, &heard) {
                (Some(a), Some(b)) => !a.same_channel(b),
                (None, None) => false,
                _ => true,
            };
            *h = heard;
            changed
        });
    }
}

/// `heard`: every valid packet from the neighbor is reported there (liveness
/// for the link's prober); `None`: not reported ([`Handle::set_heard`] changes it).
pub fn spawn(
    bfd: Bfd,
    peer: mpsc::UnboundedSender<PeerCmd>,
    heard: Option<watch::Sender<Instant>>,
) -> Handle {
    let view = BfdView {
        name: bfd.name.clone(),
        interface: bfd.interface.clone(),
        address: Some(bfd.address),
        ..BfdView::default()
    };
    let (view_tx, view_rx) = watch::channel(view);
    let (params_tx, params_rx) = watch::channel(bfd.params.clone());
    let (heard_tx, heard_rx) = watch::channel(heard);
    let target = (bfd.interface.clone(), bfd.address);
    let task = tokio::spawn(run(bfd, peer, heard_rx, view_tx, params_rx));
    Handle {
        target,
        view: view_rx,
        params: params_tx,
        heard: heard_tx,
        task,
    }
}

/// A random nonzero 32-bit value and a jitter seed (std's per-process random keys).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

async fn run(
    bfd: Bfd,
    peer: mpsc::UnboundedSender<PeerCmd>,
    heard: watch::Receiver<Option<watch::Sender<Instant>>>,
    view: watch::Sender<BfdView>,
    mut params: watch::Receiver<BfdParams>,
) {
    let r = random();
    let cfg = SessionConfig {
        params: bfd.params.clone(),
        local_discr: (r as u32).max(1),
        seed: r.rotate_left(32),
    };
    let mut session = Session::new(cfg, Instant::now());
    let mut sockets: Option<Sockets> = None;
    let mut socket_error = None;
    let mut reopen_at = Instant::now();
    let mut discards: BTreeMap<Discard, u64> = BTreeMap::new();
    let mut buf = [0u8; 128];
    loop {
        let now = Instant::now();
        if sockets.is_none() && reopen_at <= now {
            // The tunnel may not exist yet, or came back: (re)open.
            match Sockets::open(&bfd.interface, bfd.address) {
                Ok(s) => {
                    debug!(peer = %bfd.name, port = s.source_port, "BFD sockets open");
                    sockets = Some(s);
                    socket_error = None;
                }
                Err(e) => {
                    debug!(peer = %bfd.name, "BFD sockets: {e}");
                    socket_error = Some(e.to_string());
                    reopen_at = now + Duration::from_secs(1);
                }
            }
        }
        let mut send_error = None;
        while let Some(p) = session.poll_transmit(now) {
            if let Some(s) = &sockets {
                if let Err(e) = s.send(&p) {
                    debug!(peer = %bfd.name, "BFD packet not sent: {e}");
                    send_error = Some(e);
                }
            }
        }
        if let Some(e) = send_error {
            // The interface went down or was made anew (the sockets are bound
            // to the old one): open them again in a second.
            socket_error = Some(e.to_string());
            sockets = None;
            reopen_at = now + Duration::from_secs(1);
        }
        while let Some(event) = session.poll_event() {
            report(&bfd.name, &peer, event);
        }
        view.send_modify(|v| {
            v.session = Some(session.snapshot(now));
            v.discards.clone_from(&discards);
            v.socket_error.clone_from(&socket_error);
        });
        let mut deadline = session
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1));
        if sockets.is_none() {
            deadline = deadline.min(reopen_at);
        }
        // A safety net against spinning: at most one wake per millisecond.
        let deadline = deadline.max(now + Duration::from_millis(1));
        let received = async {
            match &sockets {
                Some(s) => s.recv(&mut buf).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => session.on_timeout(Instant::now()),
            r = received => {
                let now = Instant::now();
                match r {
                    Ok((len, from, hops)) => {
                        if *from.ip() != bfd.address {
                            continue;
                        }
                        let checked = if hops != Some(255) {
                            Err(Discard::HopLimit)
                        } else {
                            Packet::decode(&buf[..len])
                        };
                        match checked {
                            Ok(p) => {
                                if session.on_packet(&p, now).is_ok() {
                                    if let Some(h) = &*heard.borrow() {
                                        h.send_replace(now);
                                    }
                                }
                            }
                            Err(d) => {
                                *discards.entry(d).or_default() += 1;
                                session.count_discarded();
                                debug!(peer = %bfd.name, "BFD packet discarded: {}", d.as_str());
                            }
                        }
                    }
                    Err(e) => {
                        warn!(peer = %bfd.name, "BFD socket failed: {e}");
                        socket_error = Some(e.to_string());
                        sockets = None;
                        reopen_at = now + Duration::from_secs(1);
                    }
                }
            }
            changed = params.changed() => match changed {
                Ok(()) => {
                    let p = params.borrow_and_update().clone();
                    info!(peer = %bfd.name, "[bfd] reloaded: new intervals (poll sequence)");
                    session.set_params(p, Instant::now());
                }
                Err(_) => {
                    // Stopped (bfd = false, neighbor removed): say AdminDown (RFC 5880 §6.8.16).
                    let now = Instant::now();
                    session.admin_down(now);
                    if let (Some(s), Some(p)) = (&sockets, session.poll_transmit(now)) {
                        // Three copies 30 ms apart, well inside the neighbor's
                        // detection time: one lost packet does not turn a stop
                        // into a path failure (a repeat in Down is ignored).
                        for copy in 0..3 {
                            if copy > 0 {
                                tokio::time::sleep(Duration::from_millis(30)).await;
                            }
                            let _ = s.send(&p);
                        }
                    }
                    info!(peer = %bfd.name, "BFD session stopped (admin down sent)");
                    return;
                }
            },
        }
    }
}

/// A session event to the peer task: Down holds the BGP session, Up releases it.
fn report(name: &str, peer: &mpsc::UnboundedSender<PeerCmd>, event: BfdEvent) {
    let up = match event {
        BfdEvent::Up => {
            info!(peer = %name, "BFD session up");
            true
        }
        BfdEvent::Down { diag, reason } => {
            warn!(peer = %name, diag = diag.0, "BFD session down ({diag}): {reason}");
            false
        }
        BfdEvent::AdminDown => {
            info!(peer = %name, "BFD: the neighbor set the session admin down; not a failure, the BGP session is kept (RFC 5882 §3.2)");
            true
        }
    };
    let _ = peer.send(PeerCmd::Link {
        up,
        why: HoldReason::Bfd,
    });
}

/// The two sockets of one session.
struct Sockets {
    rx: AsyncFd<Socket>,
    tx: Socket,
    to: SockAddr,
    source_port: u16,
}

impl Sockets {
    fn open(interface: &str, address: Ipv6Addr) -> io::Result<Sockets> {
        let scope = if address.is_unicast_link_local() {
            super::transport::if_index(interface)?
        } else {
            0
        };
        let udp = || -> io::Result<Socket> {
            let s = Socket::new(Domain::IPV6, Type::DGRAM.nonblocking(), Some(Protocol::UDP))?;
            s.set_only_v6(true)?;
            s.bind_device(Some(interface.as_bytes()))?;
            s.set_unicast_hops_v6(255)?;
            Ok(s)
        };
        let rx = udp()?;
        rx.set_reuse_address(true)?;
        super::stream_socket::set_int(&rx, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        rx.bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            PORT,
            0,
            0,
        )))?;
        let tx = udp()?;
        // RFC 5881 §4: a source port in 49152-65535, the same for the whole session.
        let mut port = 49152 + (random() % 16384) as u16;
        let mut tries = 0;
        loop {
            let at = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
            match tx.bind(&SockAddr::from(at)) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 64 => {
                    tries += 1;
                    port = if port == u16::MAX { 49152 } else { port + 1 };
                }
                Err(e) => return Err(e),
            }
        }
        // SAFETY: the Socket owns its descriptor for the life of the AsyncFd.
        let rx = unsafe { AsyncFd::register(rx) }.map_err(|e| e.into_parts().1)?;
        Ok(Sockets {
            rx,
            tx,
            to: SockAddr::from(SocketAddrV6::new(address, PORT, 0, scope)),
            source_port: port,
        })
    }

    fn send(&self, p: &Packet) -> io::Result<()> {
        self.tx.send_to(&p.encode(), &self.to).map(|_| ())
    }

    /// The next datagram: its length, source and hop limit (none: not reported).
    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV6, Option<u8>)> {
        loop {
            let mut guard = self.rx.readable().await?;
            match guard.try_io(|s| recv_with_hop_limit(s.get_ref().as_raw_fd(), buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

/// recvmsg(2) with the IPV6_HOPLIMIT ancillary data (RFC 3542 §6.3).
fn recv_with_hop_limit(
    fd: libc::c_int,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddrV6, Option<u8>)> {
    let mut hops = None;
    let (n, from) =
        super::stream_socket::recvmsg_with(fd, buf, libc::MSG_DONTWAIT, |level, kind, data| {
            if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_HOPLIMIT {
                if let Some(v) = data.get(..4) {
                    let v = libc::c_int::from_ne_bytes([v[0], v[1], v[2], v[3]]);
                    hops = u8::try_from(v).ok();
                }
            }
        })?;
    Ok((n, from, hops))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hop limit the sender set is what the receiver reads (no root needed: ::1).
    #[test]
    fn hop_limit_is_read_from_ancillary_data() {
        let rx = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        crate::runtime::stream_socket::set_int(&rx, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)
            .unwrap();
        rx.bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::LOCALHOST,
            0,
            0,
            0,
        )))
        .unwrap();
        let to = rx.local_addr().unwrap();
        let tx = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        let mut buf = [0u8; 64];
        for hops in [255, 7] {
            tx.set_unicast_hops_v6(hops).unwrap();
            tx.send_to(b"bfd", &to).unwrap();
            rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut got = None;
            for _ in 0..200 {
                match recv_with_hop_limit(rx.as_raw_fd(), &mut buf) {
                    Ok(r) => {
                        got = Some(r);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            let (n, from, h) = got.expect("datagram");
            assert_eq!((&buf[..n], *from.ip()), (&b"bfd"[..], Ipv6Addr::LOCALHOST));
            assert_eq!(h, Some(hops as u8));
        }
    }
}
