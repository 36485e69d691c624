//! One task per neighbor: owns the [`Session`] state machine and its TCP
//! connections, turns bytes into events and actions into bytes. Decides nothing.

use super::conn::{self, ConnEvent, ConnIo};
use super::rib_task::RibMsg;
use super::transport;
use crate::config::Neighbor;
use crate::rib::count_messages;
use crate::session::held::Transition;
use crate::session::{
    Action, Direction, DownReason, Event, HeldDown, HoldReason, Session, SessionConfig, State,
};
use crate::wire::{Message, Negotiated, Notification};
use bytes::Bytes;
use serde::Serialize;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

pub type PeerId = usize;

/// How long an inbound connection that came while established waits for the
/// old session to end.
const PARK_TIME: Duration = Duration::from_secs(10);

/// Commands to a peer task.
#[derive(Debug)]
pub enum PeerCmd {
    /// A connection the listener accepted for this neighbor.
    Inbound(TcpStream),
    /// Encoded UPDATEs from the RIB for session `epoch` (one chunk per credit).
    Send { epoch: u64, chunk: Bytes },
    /// Close session `epoch` with this NOTIFICATION (import limit, RFC 4486
    /// Cease 6/1); `restart`: reconnect after the idle hold time, else stay
    /// down (disable) until the operator enables it again.
    Reset {
        epoch: u64,
        notification: Notification,
        restart: bool,
    },
    /// The tunnel is down (`why`: interface from netlink, probe from the
    /// latency prober) or up again. While any reason holds (see [`HeldDown`]),
    /// the session is down and makes no connection: routes are withdrawn at
    /// once, not after the hold time. When the last reason clears, the session
    /// starts again at once.
    Link { up: bool, why: HoldReason },
    /// A multihop neighbor's address became reachable (`true`) or unreachable
    /// through the underlay (from the RIB, which watches the address). While
    /// unreachable the session is held down ([`HoldReason::NoRoute`]): an
    /// established one ends at once with a Cease, not at the hold timer; a
    /// route coming back starts it (connect retry as usual). Link sessions
    /// ignore it. A multihop session starts as reachable until told otherwise.
    Reachable(bool),
    /// `kittbgpd enable|disable NEIGHBOR`: disable holds the session down
    /// (Cease / Administrative Shutdown, RFC 4486); enable clears the
    /// operator's and the import limit's reasons.
    Admin { enable: bool },
    /// `kittbgpd reload`: the neighbor's new configuration. `restart`: the
    /// session restarts now (Cease / Other Configuration Change, RFC 4486
    /// §4); else the next connection uses it.
    Reconfigure {
        neighbor: Box<Neighbor>,
        session: Box<SessionConfig>,
        restart: bool,
    },
    /// Administrative stop: send this NOTIFICATION, then end the task. With
    /// `graceful` (forwarding state kept) a session with graceful restart
    /// is closed without NOTIFICATION, so the peer keeps our routes (RFC 4724 §4.1).
    Stop {
        notification: Notification,
        graceful: bool,
        done: oneshot::Sender<()>,
    },
    /// Where to mark "heard from the neighbor" (its prober's liveness): every
    /// BGP message received marks it. `None`: no prober any more.
    Heard(Option<super::heard::Heard>),
}

/// What operators see of a neighbor (`show neighbors`).
#[derive(Clone, Debug, Serialize)]
pub struct PeerStatus {
    pub name: String,
    pub address: IpAddr,
    pub interface: Option<String>,
    /// Hop limit of a multihop session over loopbacks (`None`: a link session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multihop: Option<u8>,
    pub state: State,
    /// Seconds since the UNIX epoch when the current state was entered.
    pub since: u64,
    pub remote_id: Option<std::net::Ipv4Addr>,
    pub remote_as: u32,
    pub local_address: Option<SocketAddr>,
    pub remote_address: Option<SocketAddr>,
    pub hold_time: Option<u16>,
    pub negotiated: Option<NegotiatedView>,
    /// Graceful restart (RFC 4724) as both OPENs of the session carried it.
    pub graceful_restart: Option<crate::ctl::graceful::GrStatus>,
    pub last_error: Option<String>,
    /// Why the session is held down (empty: it may run).
    pub held_down: HeldDown,
    pub updates_received: u64,
    pub updates_sent: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NegotiatedView {
    pub four_octet_as: bool,
    pub extended_message: bool,
    pub ipv4_extended_next_hop: bool,
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// RFC 7911: families on which we receive / send several paths.
    pub add_path_receive: crate::wire::Families,
    pub add_path_send: crate::wire::Families,
}

impl From<Negotiated> for NegotiatedView {
    fn from(n: Negotiated) -> Self {
        NegotiatedView {
            four_octet_as: n.four_octet_as,
            extended_message: n.extended_message,
            ipv4_extended_next_hop: n.ipv4_extended_next_hop,
            ipv4_unicast: n.ipv4_unicast,
            ipv6_unicast: n.ipv6_unicast,
            route_refresh: n.route_refresh,
            enhanced_route_refresh: n.enhanced_route_refresh,
            add_path_receive: n.add_path_receive,
            add_path_send: n.add_path_send,
        }
    }
}

pub struct PeerHandle {
    pub tx: mpsc::UnboundedSender<PeerCmd>,
    pub status: watch::Receiver<PeerStatus>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Start the task of one neighbor.
pub fn spawn(
    id: PeerId,
    neighbor: Neighbor,
    session_cfg: SessionConfig,
    rib: mpsc::Sender<RibMsg>,
) -> PeerHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut status = PeerStatus {
        name: neighbor.name.clone(),
        address: neighbor.address,
        interface: neighbor.interface.clone(),
        multihop: neighbor.multihop,
        state: State::Idle,
        since: unix_now(),
        remote_id: None,
        remote_as: neighbor.remote_as,
        local_address: None,
        remote_address: None,
        hold_time: None,
        negotiated: None,
        graceful_restart: None,
        last_error: None,
        held_down: HeldDown::default(),
        updates_received: 0,
        updates_sent: 0,
    };
    let mut held = HeldDown::default();
    held.set(HoldReason::Config, !neighbor.enabled);
    // A multihop session waits for the RIB to report a route to its neighbor.
    held.set(HoldReason::NoRoute, neighbor.multihop.is_some());
    status.held_down = held.clone();
    let (status_tx, status_rx) = watch::channel(status);
    let (conn_tx, conn_rx) = mpsc::channel(conn::EVENT_QUEUE);
    let task = PeerTask {
        id,
        neighbor,
        session: Session::new(session_cfg),
        conns: [None, None],
        closing: Vec::new(),
        held,
        conn_tx,
        rib,
        to_rib: VecDeque::new(),
        parked: None,
        status: status_tx,
        epoch: 0,
        generation: 0,
        graceful: None,
        heard: None,
    };
    tokio::spawn(task.run(rx, conn_rx));
    PeerHandle {
        tx,
        status: status_rx,
    }
}

struct PeerTask {
    id: PeerId,
    neighbor: Neighbor,
    session: Session,
    conns: [Option<ConnIo>; 2],
    /// Why the session is held down (link, import limit, operator); empty: it may run.
    held: HeldDown,
    /// Writers of closed connections still sending their last bytes (a NOTIFICATION).
    closing: Vec<tokio::task::JoinHandle<()>>,
    conn_tx: mpsc::Sender<ConnEvent>,
    rib: mpsc::Sender<RibMsg>,
    /// Messages for the RIB while its queue is full; connection events are
    /// not read until they are out (so TCP pushes back on the peer).
    to_rib: VecDeque<RibMsg>,
    /// An inbound connection that came while the last one was still up (the
    /// peer restarted and reconnected before its old connection's end was
    /// processed): taken as soon as the session accepts it, else dropped at
    /// the deadline. A connection colliding with a closing session wins.
    parked: Option<(TcpStream, Instant)>,
    status: watch::Sender<PeerStatus>,
    /// Counts established sessions, so late RIB output for an old session is dropped.
    epoch: u64,
    /// Counts connections, so events of a closed connection are dropped.
    generation: u64,
    /// Graceful restart negotiated on the current session (RFC 4724).
    graceful: Option<crate::wire::open::GracefulRestart>,
    /// The link's prober: every message received is heard from the neighbor.
    heard: Option<super::heard::Heard>,
}

fn slot(dir: Direction) -> usize {
    match dir {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

impl PeerTask {
    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<PeerCmd>,
        mut conn_rx: mpsc::Receiver<ConnEvent>,
    ) {
        if self.held.is_held() {
            info!(peer = %self.neighbor.name, "not started: held down ({})", self.held);
        } else {
            let start = self.session.handle(Event::Start, Instant::now());
            self.execute(start);
        }
        loop {
            self.take_parked();
            let deadline = [
                self.session.poll_timeout(),
                self.parked.as_ref().map(|p| p.1),
            ]
            .into_iter()
            .flatten()
            .min();
            let rib = self.rib.clone();
            let backlog = !self.to_rib.is_empty();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(PeerCmd::Stop { notification, graceful, done }) => {
                        if graceful && self.graceful.is_some() {
                            info!(peer = %self.neighbor.name, "stopping with graceful restart: connection closed without NOTIFICATION");
                        } else {
                            let actions = self.session.handle(Event::Stop(notification), Instant::now());
                            self.execute(actions);
                        }
                        self.flush_closing().await;
                        self.publish();
                        let _ = done.send(());
                        return;
                    }
                    Some(cmd) => self.on_cmd(cmd),
                    None => return,
                },
                Some(ev) = conn_rx.recv(), if !backlog => self.on_conn_event(ev),
                Ok(permit) = rib.reserve(), if backlog => {
                    if let Some(msg) = self.to_rib.pop_front() {
                        permit.send(msg);
                    }
                }
                () = sleep => {
                    let actions = self.session.handle_timeout(Instant::now());
                    self.execute(actions);
                }
            }
            self.publish();
        }
    }

    fn on_cmd(&mut self, cmd: PeerCmd) {
        match cmd {
            PeerCmd::Heard(h) => self.heard = h,
            PeerCmd::Inbound(stream) => {
                let remote = stream.peer_addr().ok();
                if !self.session.accepts(Direction::Inbound) {
                    if self.session.state() >= State::OpenSent {
                        // A restarted peer: its old connection ends soon (Cease or EOF queued).
                        debug!(peer = %self.neighbor.name, ?remote, "inbound connection while one is up: held until it ends");
                        self.parked = Some((stream, Instant::now() + PARK_TIME));
                    } else {
                        debug!(peer = %self.neighbor.name, ?remote, state = %self.session.state(), "inbound connection not taken in this state");
                    }
                    return;
                }
                if let Err(e) = transport::prepare_accepted(&stream, &self.neighbor) {
                    warn!(peer = %self.neighbor.name, "cannot set socket options on inbound connection: {e}");
                    return;
                }
                self.attach(Direction::Inbound, stream);
            }
            PeerCmd::Send { epoch, chunk } => {
                if epoch != self.epoch || self.session.state() != State::Established {
                    return;
                }
                let Some(dir) = self.established_dir() else {
                    return;
                };
                let n = count_messages(&chunk) as u64;
                self.status.send_modify(|s| s.updates_sent += n);
                if let Some(conn) = &self.conns[slot(dir)] {
                    if !conn.send_rib(chunk) {
                        warn!(peer = %self.neighbor.name, "writer queue full: UPDATEs dropped");
                    }
                }
                let actions = self.session.handle(Event::Queued(dir), Instant::now());
                self.execute(actions);
            }
            PeerCmd::Reset {
                epoch,
                notification,
                restart,
            } => {
                if epoch != self.epoch || self.session.state() != State::Established {
                    return;
                }
                let Some(dir) = self.established_dir() else {
                    return;
                };
                info!(peer = %self.neighbor.name, restart, "closing session: {notification}");
                // Restart: as after a sent error, idle hold then reconnect. Disable:
                // held down until the operator enables it again.
                if restart {
                    let actions = self
                        .session
                        .handle(Event::Malformed(dir, notification), Instant::now());
                    self.execute(actions);
                } else {
                    self.hold(HoldReason::ImportLimit, true, Some(notification));
                }
            }
            PeerCmd::Link { up, why } => {
                match (up, self.held.contains(why)) {
                    (false, false) => info!(peer = %self.neighbor.name, "{why}: session held down"),
                    (true, true) => info!(peer = %self.neighbor.name, "{why} no more"),
                    _ => {}
                }
                // Nothing can be sent over a dead link: a stop without NOTIFICATION.
                self.hold(why, !up, None);
            }
            PeerCmd::Reachable(up) => {
                if self.neighbor.multihop.is_none() {
                    return;
                }
                match (up, self.held.contains(HoldReason::NoRoute)) {
                    (false, false) => {
                        info!(peer = %self.neighbor.name, address = %self.neighbor.address, "no route to the neighbor in the underlay: session held down")
                    }
                    (true, true) => {
                        info!(peer = %self.neighbor.name, address = %self.neighbor.address, "route to the neighbor learned")
                    }
                    _ => {}
                }
                // Cease (RFC 4271 §6.7) with no subcode: none of RFC 4486's
                // fits a lost route; sent best effort before the close.
                self.hold(
                    HoldReason::NoRoute,
                    !up,
                    Some(Notification::new(6, 0, Vec::new())),
                );
            }
            PeerCmd::Admin { enable } => {
                if enable {
                    info!(peer = %self.neighbor.name, "enabled by operator");
                    let t = self.held.enable();
                    self.apply_hold(t, None);
                } else {
                    info!(peer = %self.neighbor.name, "disabled by operator");
                    // RFC 4486 §4: Cease / Administrative Shutdown.
                    self.hold(
                        HoldReason::Operator,
                        true,
                        Some(Notification::new(6, 2, Vec::new())),
                    );
                }
            }
            PeerCmd::Reconfigure {
                neighbor,
                session,
                restart,
            } => {
                self.neighbor = *neighbor;
                self.status.send_modify(|s| {
                    s.address = self.neighbor.address;
                    s.interface = self.neighbor.interface.clone();
                    s.multihop = self.neighbor.multihop;
                    s.remote_as = self.neighbor.remote_as;
                });
                if restart && !self.held.is_held() {
                    info!(peer = %self.neighbor.name, "configuration changed: restarting the session");
                    // RFC 4486 §4: Cease / Other Configuration Change.
                    let stop = Event::Stop(Notification::new(6, 6, Vec::new()));
                    let actions = self.session.handle(stop, Instant::now());
                    self.execute(actions);
                    self.session = Session::new(*session);
                    let actions = self.session.handle(Event::Start, Instant::now());
                    self.execute(actions);
                } else {
                    self.session.set_config(*session);
                }
                self.hold(HoldReason::Config, !self.neighbor.enabled, None);
                if self.neighbor.multihop.is_none() {
                    self.hold(HoldReason::NoRoute, false, None);
                }
            }
            PeerCmd::Stop { .. } => unreachable!("handled in run"),
        }
    }

    /// The connection the session is established on.
    fn established_dir(&self) -> Option<Direction> {
        [Direction::Outbound, Direction::Inbound]
            .into_iter()
            .find(|d| self.conns[slot(*d)].as_ref().is_some_and(|c| c.established))
    }

    /// Take the parked inbound connection once the session accepts it;
    /// drop it at its deadline.
    fn take_parked(&mut self) {
        let Some((_, deadline)) = &self.parked else {
            return;
        };
        if self.session.accepts(Direction::Inbound) {
            if let Some((stream, _)) = self.parked.take() {
                info!(peer = %self.neighbor.name, "taking the connection that came while the old session was ending");
                self.on_cmd(PeerCmd::Inbound(stream));
            }
        } else if *deadline <= Instant::now() {
            debug!(peer = %self.neighbor.name, "dropping the inbound connection held while established");
            self.parked = None;
        }
    }

    /// To the RIB task, in order; never waits (see `to_rib`).
    fn send_rib(&mut self, msg: RibMsg) {
        if self.to_rib.is_empty() {
            if let Err(mpsc::error::TrySendError::Full(msg)) = self.rib.try_send(msg) {
                self.to_rib.push_back(msg);
            }
        } else {
            self.to_rib.push_back(msg);
        }
    }

    /// Set or clear one reason for holding the session down; the first reason
    /// stops it (sending `notification`, if any, on open connections), the
    /// last one cleared starts it.
    fn hold(&mut self, reason: HoldReason, held: bool, notification: Option<Notification>) {
        let t = self.held.set(reason, held);
        self.apply_hold(t, notification);
    }

    fn apply_hold(&mut self, t: Transition, notification: Option<Notification>) {
        match t {
            Transition::Stop => {
                if notification.is_none() {
                    // Closed here, so the session sends nothing on them.
                    for c in self.conns.iter_mut().filter_map(Option::take) {
                        c.close();
                    }
                }
                let n = notification.unwrap_or_else(|| Notification::new(6, 2, Vec::new()));
                let actions = self.session.handle(Event::Stop(n), Instant::now());
                self.execute(actions);
                self.session.held_down(&self.held.to_string());
                self.publish();
            }
            Transition::Start => {
                info!(peer = %self.neighbor.name, "no longer held down: starting the session");
                let actions = self.session.handle(Event::Start, Instant::now());
                self.execute(actions);
            }
            Transition::None => {}
        }
        let held = self.held.clone();
        self.status.send_modify(|s| s.held_down = held);
    }

    fn attach(&mut self, dir: Direction, stream: TcpStream) {
        self.generation += 1;
        let io = conn::start(stream, dir, self.generation, self.conn_tx.clone());
        info!(peer = %self.neighbor.name, local = ?io.local, remote = ?io.remote, ?dir, "connected");
        self.conns[slot(dir)] = Some(io);
        let actions = self.session.handle(Event::Connected(dir), Instant::now());
        self.execute(actions);
    }

    fn on_conn_event(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::ConnectDone(Ok(stream)) => {
                if self.session.accepts(Direction::Outbound) {
                    self.attach(Direction::Outbound, stream);
                } else {
                    let actions = self.session.handle(Event::ConnectFailed, Instant::now());
                    self.execute(actions);
                }
            }
            ConnEvent::ConnectDone(Err(e)) => {
                debug!(peer = %self.neighbor.name, "connect failed: {e}");
                let actions = self.session.handle(Event::ConnectFailed, Instant::now());
                self.execute(actions);
            }
            ConnEvent::Frame {
                dir,
                generation,
                frame,
            } => {
                if !self.current(dir, generation) {
                    return;
                }
                let now = Instant::now();
                if let Some(h) = &self.heard {
                    h.mark(now);
                }
                let event = self.decode(dir, frame);
                let actions = self.session.handle(event, now);
                self.execute(actions);
            }
            ConnEvent::BadFrame {
                dir,
                generation,
                notification,
            } => {
                if self.current(dir, generation) {
                    warn!(peer = %self.neighbor.name, "malformed message: {notification}");
                    let actions = self
                        .session
                        .handle(Event::Malformed(dir, notification), Instant::now());
                    self.execute(actions);
                }
            }
            ConnEvent::Sent {
                dir,
                generation,
                idle,
                credits,
            } => {
                if !self.current(dir, generation) {
                    return;
                }
                let actions = self
                    .session
                    .handle(Event::Sent { dir, idle }, Instant::now());
                self.execute(actions);
                let established = self.conns[slot(dir)]
                    .as_ref()
                    .is_some_and(|c| c.established);
                if credits > 0 && established {
                    self.send_rib(RibMsg::Credit {
                        peer: self.id,
                        epoch: self.epoch,
                        credits,
                    });
                }
            }
            ConnEvent::Closed {
                dir,
                generation,
                error,
            } => {
                if !self.current(dir, generation) {
                    return;
                }
                match &error {
                    Some(e) => info!(peer = %self.neighbor.name, ?dir, "connection lost: {e}"),
                    None => info!(peer = %self.neighbor.name, ?dir, "connection closed by peer"),
                }
                self.conns[slot(dir)] = None;
                let actions = self.session.handle(Event::Closed(dir), Instant::now());
                self.execute(actions);
            }
        }
    }

    fn current(&self, dir: Direction, generation: u64) -> bool {
        self.conns[slot(dir)]
            .as_ref()
            .is_some_and(|c| c.generation == generation)
    }

    /// Bytes to event: length against what was negotiated, then the codec.
    fn decode(&self, dir: Direction, frame: Bytes) -> Event {
        let max = self.session.max_message_len();
        if frame.len() > max {
            // RFC 4271 §6.1 / RFC 8654 §4: Bad Message Length, data = the length field.
            let len = (frame.len() as u16).to_be_bytes().to_vec();
            return Event::Malformed(dir, Notification::new(1, 2, len));
        }
        let negotiated = self.session.negotiated().unwrap_or_default();
        match Message::decode(frame, &negotiated) {
            Ok(msg) => {
                if let Message::Notification(n) = &msg {
                    info!(peer = %self.neighbor.name, "received NOTIFICATION: {n}");
                }
                Event::Received(dir, msg)
            }
            Err(e) => {
                let n = e.notification();
                warn!(peer = %self.neighbor.name, "bad message, sending NOTIFICATION {n}");
                Event::Malformed(dir, n)
            }
        }
    }

    fn execute(&mut self, actions: Vec<Action>) {
        // The readers judge lengths from the header alone (RFC 4271 §6.1).
        for dir in [Direction::Outbound, Direction::Inbound] {
            if let Some(c) = &self.conns[slot(dir)] {
                c.set_max_len(self.session.max_message_len_on(dir));
            }
        }
        for action in actions {
            match action {
                Action::Connect => {
                    let neighbor = self.neighbor.clone();
                    let tx = self.conn_tx.clone();
                    let timeout = neighbor.connect_retry.max(Duration::from_secs(1));
                    tokio::spawn(async move {
                        let result = transport::connect(&neighbor, timeout).await;
                        let _ = tx.send(ConnEvent::ConnectDone(result)).await;
                    });
                }
                Action::Send(dir, msg) => {
                    let negotiated = self.session.negotiated().unwrap_or_default();
                    if let Message::Notification(n) = &msg {
                        info!(peer = %self.neighbor.name, "sending NOTIFICATION: {n}");
                    }
                    match msg.to_bytes(&negotiated) {
                        Ok(bytes) => {
                            if let Some(c) = &self.conns[slot(dir)] {
                                if !c.send(bytes) {
                                    debug!(peer = %self.neighbor.name, ?dir, "writer queue full: message dropped");
                                }
                                // Starts the send hold timer; no actions follow.
                                let _ = self.session.handle(Event::Queued(dir), Instant::now());
                            }
                        }
                        Err(e) => warn!(peer = %self.neighbor.name, "cannot encode message: {e}"),
                    }
                }
                Action::Close(dir) => {
                    if let Some(c) = self.conns[slot(dir)].take() {
                        self.closing.retain(|w| !w.is_finished());
                        self.closing.push(c.close());
                    }
                }
                Action::Established {
                    direction,
                    negotiated,
                    remote,
                } => {
                    self.epoch += 1;
                    let Some(conn) = self.conns[slot(direction)].as_mut() else {
                        continue;
                    };
                    conn.established = true;
                    let (local, remote_addr) = (conn.local, conn.remote);
                    info!(peer = %self.neighbor.name, remote_id = %remote.bgp_id, ?direction, "session established");
                    super::code_pages::rare_code_ran();
                    self.graceful = self.session.graceful_restart(&remote);
                    self.send_rib(RibMsg::PeerUp {
                        peer: self.id,
                        epoch: self.epoch,
                        negotiated,
                        local,
                        remote_id: remote.bgp_id,
                        opens: Box::new(super::bmp::SessionOpens {
                            remote: remote_addr,
                            sent: Message::Open(self.session.local_open())
                                .to_bytes(&negotiated)
                                .unwrap_or_default(),
                            received: Message::Open((*remote).clone())
                                .to_bytes(&negotiated)
                                .unwrap_or_default(),
                        }),
                        graceful: self.graceful.clone(),
                    });
                    self.status.send_modify(|s| {
                        s.remote_id = Some(remote.bgp_id);
                        s.negotiated = Some(negotiated.into());
                        s.graceful_restart = Some(crate::ctl::graceful::gr_status(
                            &self.session.local_open(),
                            &remote,
                        ));
                        s.hold_time = Some(self.neighbor.hold_time.min(remote.hold_time));
                        s.local_address = local;
                        s.remote_address = remote_addr;
                    });
                }
                Action::Update(update) => {
                    self.status.send_modify(|s| s.updates_received += 1);
                    self.send_rib(RibMsg::Update {
                        peer: self.id,
                        update,
                    });
                }
                Action::RouteRefresh(rr) => {
                    self.send_rib(RibMsg::RouteRefresh {
                        peer: self.id,
                        epoch: self.epoch,
                        afi: rr.afi,
                        safi: rr.safi,
                        subtype: rr.subtype,
                    });
                }
                Action::Down(reason) => {
                    if self.held.is_held() {
                        info!(peer = %self.neighbor.name, "session down: held down ({})", self.held);
                    } else {
                        info!(peer = %self.neighbor.name, "session down: {reason}");
                    }
                    // RFC 4724 §4.2: the routes of a GR peer survive a drop
                    // without NOTIFICATION (a hold timer expiry counts as one
                    // lost connection, as in BIRD and FRR); not an operator's stop.
                    let graceful = match reason {
                        DownReason::ConnectionClosed | DownReason::HoldTimerExpired => {
                            self.graceful.take()
                        }
                        _ => None,
                    };
                    self.graceful = None;
                    self.send_rib(RibMsg::PeerDown {
                        peer: self.id,
                        reason: Some(reason),
                        graceful,
                    });
                }
            }
        }
    }

    /// On stop: give the writers a moment to send the NOTIFICATION before exit.
    async fn flush_closing(&mut self) {
        let mut writers = std::mem::take(&mut self.closing);
        writers.extend(
            self.conns
                .iter_mut()
                .filter_map(Option::take)
                .map(ConnIo::close),
        );
        conn::wait_all(writers, Duration::from_secs(2)).await;
    }

    fn publish(&self) {
        let state = self.session.state();
        let last_error = self.session.last_error().map(str::to_string);
        self.status.send_if_modified(|s| {
            let changed = s.state != state || s.last_error != last_error;
            if s.state != state {
                s.state = state;
                s.since = unix_now();
                if state != State::Established {
                    s.negotiated = None;
                    s.graceful_restart = None;
                    s.remote_id = None;
                    s.hold_time = None;
                }
            }
            s.last_error = last_error;
            changed
        });
    }
}

#[cfg(test)]
mod tests;
