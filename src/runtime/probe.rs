//! One prober per link with an interface and an IPv6 neighbor address. With
//! `cost = "auto"` it measures: the stream to a kittbgpd neighbor (UDP,
//! kernel timestamps, [`crate::probe`]) or ICMPv6 echo to others, chosen per
//! `[cost] probe`; samples into the sans-IO estimator ([`crate::cost`]), and
//! what it decides straight into the routing task (new link cost) or the
//! session (link down / up). Anything else heard from the neighbor (BGP
//! messages, WireGuard activity, later BFD: [`Heard`]) is liveness too.
//! With a static cost it only answers the neighbor's stream (one packet per
//! packet received), so every kittbgpd node serves its neighbors' measurements.

use super::heard::Heard;
use super::icmp::Pinger;
use super::peer::{PeerCmd, PeerId};
use super::rib_task::RibMsg;
use super::stream_socket::{realtime_ns, StreamSocket};
use crate::cost::{CostEvent, CostParams, Estimator};
use crate::probe::{packet::FLAG_ANSWER, Mode, ModeSelect, Packet, Stream, STREAM_SEQ_BASE};
use crate::session::HoldReason;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// The longest a link's `show links` view lags behind its estimator.
const VIEW_EVERY: Duration = Duration::from_millis(500);

pub struct Probe {
    pub peer: PeerId,
    pub name: String,
    pub interface: String,
    pub address: Ipv6Addr,
    pub params: CostParams,
    /// `cost = "auto"`: measure; else only answer the neighbor's stream.
    pub measure: bool,
}

/// What `show links` shows of one link.
pub type LinkView = serde_json::Value;

/// A running prober: stops (its task aborted) when dropped.
pub struct Handle {
    /// Where it probes and whether it measures: a change of any is a new prober.
    pub target: (String, Ipv6Addr, bool),
    pub view: watch::Receiver<LinkView>,
    /// Marks "heard from the neighbor" for this prober (see [`Heard`]).
    pub heard: Heard,
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
    let (heard, heard_rx) = Heard::channel(probe.params.interval / 4, Instant::now());
    let target = (probe.interface.clone(), probe.address, probe.measure);
    let task = tokio::spawn(run(probe, peer, rib, tx, params_rx, heard_rx));
    Handle {
        target,
        view: rx,
        heard,
        params: params_tx,
        task,
    }
}

/// A stream id: random per prober (a restart must not continue the old stream).
fn random_id() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: b is valid for 4 bytes.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        (realtime_ns() as u32) ^ std::process::id()
    }
}

/// The prober's sockets and counters beside the estimator.
struct Link {
    name: String,
    interface: String,
    address: Ipv6Addr,
    port: u16,
    stream: Stream,
    select: ModeSelect,
    socket: Option<StreamSocket>,
    pinger: Option<Pinger>,
    ident: u16,
    icmp_seq: u16,
    icmp_sent: u64,
    icmp_received: u64,
    /// Datagrams on the stream port that are not the neighbor's stream packets.
    foreign: u64,
    malformed: u64,
    /// Datagrams the kernel gave no receive timestamp (stamped when read instead).
    late_stamps: u64,
    last_stream_rtt: Option<Duration>,
}

impl Link {
    /// The stream socket, (re)opened if needed (the tunnel may not exist yet).
    fn socket(&mut self) -> Option<&StreamSocket> {
        if self.socket.is_none() {
            match StreamSocket::new(&self.interface, self.address, self.port) {
                Ok(s) => self.socket = Some(s),
                Err(e) => debug!(link = %self.name, "stream socket: {e}"),
            }
        }
        self.socket.as_ref()
    }

    /// Sends a stream packet now; its seq, whether or not it left.
    fn send_stream(&mut self, answer: bool) -> u32 {
        self.socket();
        let p = self.stream.send(realtime_ns(), answer);
        self.send_packet(&p);
        p.seq
    }

    /// Sends an echo request now (a burst: the estimator suspects a shift); its seq.
    fn send_echo_request(&mut self) -> u32 {
        self.socket();
        let p = self.stream.send_echo_request(realtime_ns());
        self.send_packet(&p);
        p.seq
    }

    fn send_packet(&mut self, p: &Packet) {
        if let Some(s) = &self.socket {
            if let Err(e) = s.send(&p.encode()) {
                debug!(link = %self.name, "stream packet not sent: {e}");
                self.socket = None;
            }
        }
    }

    fn send_icmp(&mut self) -> u16 {
        if self.pinger.is_none() {
            match Pinger::new(&self.interface, self.address, self.ident) {
                Ok(p) => self.pinger = Some(p),
                Err(e) => debug!(link = %self.name, "probe socket: {e}"),
            }
        }
        self.icmp_seq = self.icmp_seq.wrapping_add(1);
        self.icmp_sent += 1;
        if let Some(p) = &self.pinger {
            if let Err(e) = p.send(self.icmp_seq) {
                debug!(link = %self.name, "probe not sent: {e}");
                self.pinger = None;
            }
        }
        self.icmp_seq
    }

    fn view(&self) -> serde_json::Value {
        let s = self.stream.stats();
        serde_json::json!({
            "probe": self.select.mode(),
            "probe_setting": self.select.setting(),
            "stream": {
                "port": self.port,
                "sent": s.sent,
                "received": s.received,
                "rtt_samples": s.rtt_samples,
                "last_rtt_ms": self.last_stream_rtt.map(|d| d.as_secs_f64() * 1e3),
                "lost_to_neighbor": s.tx_lost,
                "delivered_to_neighbor": s.tx_delivered,
                "lost_from_neighbor": s.rx_lost,
                "duplicates": s.duplicates,
                "too_old": s.too_old,
                "bad_echoes": s.bad_echoes,
                "malformed": self.malformed,
                "late_stamps": self.late_stamps,
                "foreign": self.foreign,
                "neighbor_restarts": s.peer_streams.saturating_sub(1),
            },
            "icmp": { "sent": self.icmp_sent, "received": self.icmp_received },
        })
    }
}

/// A stream datagram, read from the socket if there is one.
async fn recv_stream(
    socket: Option<&StreamSocket>,
    buf: &mut [u8],
) -> std::io::Result<super::stream_socket::Datagram> {
    match socket {
        Some(s) => s.recv(buf).await,
        None => std::future::pending().await,
    }
}

async fn recv_icmp(pinger: Option<&Pinger>) -> std::io::Result<super::icmp::Reply> {
    match pinger {
        Some(p) => p.recv().await,
        None => std::future::pending().await,
    }
}

async fn run(
    probe: Probe,
    peer: mpsc::UnboundedSender<PeerCmd>,
    rib: mpsc::Sender<RibMsg>,
    view: watch::Sender<LinkView>,
    mut params: watch::Receiver<CostParams>,
    mut heard: watch::Receiver<Instant>,
) {
    let mut est = Estimator::new(probe.params.clone(), Instant::now());
    let mut link = Link {
        name: probe.name.clone(),
        interface: probe.interface.clone(),
        address: probe.address,
        port: probe.params.probe_port,
        stream: Stream::new(random_id(), probe.params.interval),
        select: ModeSelect::new(probe.params.probe),
        socket: None,
        pinger: None,
        // Identifier: tells our replies from other pingers' on the same host.
        ident: (std::process::id() as u16) ^ ((probe.peer as u16) << 8),
        icmp_seq: 0,
        icmp_sent: 0,
        icmp_received: 0,
        foreign: 0,
        malformed: 0,
        late_stamps: 0,
        last_stream_rtt: None,
    };
    let measure = probe.measure;
    let mut cost_changes: u64 = 0;
    let mut last_view: Option<Instant> = None;
    let mut interval = probe.params.interval;
    let mut last_wake = Instant::now() - Duration::from_secs(1);
    let mut buf = [0u8; 128];
    // An answering prober retries its socket every second; a measuring one on its schedule.
    let mut retry_at = Instant::now();
    loop {
        // The estimator says when the next probe is due and when a probe
        // times out or a held change matures; the first probe goes out at once.
        // (At most one wake per 10 ms whatever it says: a safety net against spinning.)
        let deadline = if measure {
            est.poll_timeout().unwrap_or_else(Instant::now)
        } else {
            retry_at
        }
        .max(last_wake + Duration::from_millis(10));
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                last_wake = now;
                if !measure {
                    link.socket();
                    retry_at = now + Duration::from_secs(1);
                } else if est.next_probe_at().is_none_or(|t| t <= now) {
                    // Probes go on the wall clock's grid of the interval: every
                    // link of this node sends in the same wake (one timer wake
                    // per interval for all of them, not one per link). A burst
                    // probe due as well waits for the next wake (10 ms).
                    let sent_at = on_grid(now, interval);
                    let due = link.select.on_due();
                    // A probe that could not be sent counts as sent and lost.
                    if due.probe == Mode::Stream || due.hello {
                        let seq = link.send_stream(false);
                        if due.probe == Mode::Stream {
                            est.on_probe_sent(STREAM_SEQ_BASE + u64::from(seq), sent_at);
                        }
                    }
                    if due.probe == Mode::Icmp {
                        let seq = link.send_icmp();
                        est.on_probe_sent(seq, sent_at);
                    }
                } else if est.burst_at().is_some_and(|t| t <= now) {
                    // A shift is suspected: an extra probe, answered at once
                    // (an echo request; ICMPv6 echo is answered at once anyway).
                    match link.select.mode() {
                        Mode::Stream => {
                            let seq = link.send_echo_request();
                            est.on_burst_probe_sent(STREAM_SEQ_BASE + u64::from(seq), now);
                        }
                        Mode::Icmp => {
                            let seq = link.send_icmp();
                            est.on_burst_probe_sent(seq, now);
                        }
                    }
                }
                if measure {
                    est.on_tick(now);
                }
            }
            Ok(()) = params.changed() => {
                let p = params.borrow_and_update().clone();
                info!(link = %probe.name, "[cost] reloaded: new parameters");
                if p.probe_port != link.port {
                    link.port = p.probe_port;
                    link.socket = None;
                    link.socket();
                }
                link.select.set_setting(p.probe);
                link.stream.set_interval(p.interval);
                interval = p.interval;
                est.set_params(p, Instant::now());
            }
            Ok(()) = heard.changed(), if measure => {
                let t = *heard.borrow_and_update();
                est.on_heard(t.min(Instant::now()));
            }
            r = recv_icmp(link.pinger.as_ref()) => match r {
                Ok(r) => {
                    link.icmp_received += 1;
                    match r.rtt {
                        Some(rtt) => est.on_answer(r.seq, Some(rtt), Instant::now()),
                        None => est.on_reply(r.seq, Instant::now()),
                    }
                }
                Err(e) => {
                    warn!(link = %probe.name, "probe socket failed: {e}");
                    link.pinger = None;
                }
            },
            r = recv_stream(link.socket.as_ref(), &mut buf) => match r {
                Ok(d) => {
                    let now = Instant::now();
                    link.late_stamps += u64::from(d.late_stamp);
                    if *d.from.ip() != probe.address {
                        link.foreign += 1;
                    } else {
                        match Packet::decode(&buf[..d.len.min(buf.len())]) {
                            Err(_) => link.malformed += 1,
                            Ok(p) => on_stream_packet(&mut link, &mut est, &p, d.rx_ns, now, measure),
                        }
                    }
                }
                Err(e) => {
                    warn!(link = %probe.name, "stream socket failed: {e}");
                    link.socket = None;
                }
            },
        }
        let mut decided = false;
        while let Some(event) = est.poll_event() {
            decided = true;
            match event {
                CostEvent::Cost { cost, reason } => {
                    cost_changes += 1;
                    info!(link = %probe.name, cost, "link cost: {reason}");
                    let _ = rib
                        .send(RibMsg::LinkCost {
                            peer: probe.peer,
                            cost: Some(cost),
                            rtt: est.smoothed_rtt(),
                            loss: est.sustained_loss(),
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
        // `show links` reads the view: rebuilt when the estimator decided
        // something, else at most once a VIEW_EVERY (at 10 probes/s per link,
        // serializing the snapshot per packet was most of the daemon's idle CPU).
        let now = Instant::now();
        if !decided && last_view.is_some_and(|t| now.duration_since(t) < VIEW_EVERY) {
            continue;
        }
        last_view = Some(now);
        let mut v = if measure {
            serde_json::to_value(est.snapshot()).unwrap_or_default()
        } else {
            // A static cost: no state of the estimator's (`show links` takes the tunnel's).
            serde_json::json!({})
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("name".into(), probe.name.clone().into());
            o.insert("interface".into(), probe.interface.clone().into());
            if measure {
                o.insert("cost_changes".into(), cost_changes.into());
            }
            if let Some(l) = link.view().as_object() {
                o.extend(l.clone());
            }
            if !measure {
                o.insert("probe".into(), "answer".into());
            }
        }
        view.send_replace(v);
    }
}

/// A stream packet from the neighbor: answers of ours into the estimator
/// (kernel-time RTTs), liveness, and an answer of our own if we do not stream.
fn on_stream_packet(
    link: &mut Link,
    est: &mut Estimator,
    p: &Packet,
    rx_ns: u64,
    now: Instant,
    measure: bool,
) {
    let crate::probe::Received::Fresh { answers } = link.stream.receive(p, rx_ns) else {
        return;
    };
    // Not streaming on our own timer: answer this packet (never an answer, so
    // two answering ends never ping-pong). Streaming: answer an echo request
    // at once (rate-limited); it is a probe of ours too (its echo comes back
    // in the neighbor's next request), so both ends see a shift sooner.
    let streaming = measure && link.select.mode() == Mode::Stream;
    let answer_now = link.stream.answer_now(p, rx_ns);
    if p.flags & FLAG_ANSWER == 0 && (!streaming || answer_now) {
        let seq = link.send_stream(true);
        if streaming {
            est.on_extra_probe_sent(STREAM_SEQ_BASE + u64::from(seq), now);
        }
    }
    if !measure {
        return;
    }
    link.select.on_stream_packet();
    est.on_heard(now);
    for a in answers {
        if let Some(rtt) = a.rtt {
            link.last_stream_rtt = Some(rtt);
        }
        est.on_answer(STREAM_SEQ_BASE + u64::from(a.seq), a.rtt, now);
    }
}

/// The latest instant at or before `t` that is a whole multiple of `interval`
/// on the wall clock (CLOCK_REALTIME): a probe sent on time is stamped with
/// it, so the estimator schedules the next one on the grid as well.
fn on_grid(t: Instant, interval: Duration) -> Instant {
    let iv = interval.as_nanos();
    if iv == 0 {
        return t;
    }
    let now = Instant::now();
    let rt = u128::from(super::stream_socket::realtime_ns());
    // The wall clock at `t` (t is at most `now`).
    let rt_t = rt.saturating_sub(now.saturating_duration_since(t).as_nanos());
    let past = u64::try_from(rt_t % iv).unwrap_or(0);
    t.checked_sub(Duration::from_nanos(past)).unwrap_or(t)
}
