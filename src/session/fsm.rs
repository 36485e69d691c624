//! Session states, events, actions and transitions (RFC 4271 §8.2).

use super::collision;
use crate::wire::{Capability, Message, Negotiated, Notification, Open, RouteRefresh, Update};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Hold time used while waiting for the peer's OPEN (RFC 4271 §8.2.2: "large", 4 minutes suggested).
const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// Session state as RFC 4271 §8.2.2 names it; with two connections the more advanced one counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Which TCP connection an event or action is about: the one we opened, or the one the peer opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Outbound => 0,
            Direction::Inbound => 1,
        }
    }
    fn other(self) -> Direction {
        match self {
            Direction::Outbound => Direction::Inbound,
            Direction::Inbound => Direction::Outbound,
        }
    }
}

/// What the session needs to know of its configuration.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub local_as: u32,
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0 = no keepalives, no hold timer).
    pub hold_time: u16,
    /// Keepalive interval in seconds; capped at a third of the negotiated hold time.
    pub keepalive: u16,
    pub connect_retry: Duration,
    /// Idle hold after an error; doubles on each error that follows quickly, up to the max.
    pub error_wait_min: Duration,
    pub error_wait_max: Duration,
    /// Never connect out; only accept.
    pub passive: bool,
    /// RFC 9687 send hold time: a connection with data to send that accepts
    /// none for this long is closed with NOTIFICATION 8. `None`: the RFC's
    /// suggestion, max(8 min, 2 x hold time); zero: off.
    pub send_hold_time: Option<Duration>,
    /// Capabilities of our OPEN.
    pub capabilities: Vec<Capability>,
}

/// Input to the state machine.
#[derive(Clone, Debug)]
pub enum Event {
    /// Administrative start (ManualStart, RFC 4271 §8.1.2).
    Start,
    /// Administrative stop: send this NOTIFICATION (normally Cease) on every open connection.
    Stop(Notification),
    /// A TCP connection is up (our connect succeeded, or we accepted the peer's).
    Connected(Direction),
    /// Our outbound connect attempt failed.
    ConnectFailed,
    /// The TCP connection closed or failed.
    Closed(Direction),
    /// A whole, decoded message arrived.
    Received(Direction, Message),
    /// A message could not be decoded: send this NOTIFICATION and close (RFC 4271 §6).
    Malformed(Direction, Notification),
    /// Bytes were handed to the connection's writer (RFC 9687: starts the
    /// send hold timer when it is not running).
    Queued(Direction),
    /// The socket accepted bytes (progress; restarts the send hold timer);
    /// `idle`: nothing is left to write (stops it).
    Sent { dir: Direction, idle: bool },
}

/// Why an established session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    AdminStop,
    HoldTimerExpired,
    SendHoldTimerExpired,
    NotificationReceived(Notification),
    NotificationSent(Notification),
    ConnectionClosed,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::AdminStop => f.write_str("administrative stop"),
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::SendHoldTimerExpired => {
                f.write_str("send hold timer expired: the peer accepts no data")
            }
            DownReason::NotificationReceived(n) => write!(f, "received NOTIFICATION: {n}"),
            DownReason::NotificationSent(n) => write!(f, "sent NOTIFICATION: {n}"),
            DownReason::ConnectionClosed => f.write_str("connection closed by peer"),
        }
    }
}

/// Output of the state machine, to be carried out by the runtime in order.
#[derive(Clone, Debug)]
pub enum Action {
    /// Open an outbound TCP connection; report `Connected(Outbound)` or `ConnectFailed`.
    Connect,
    /// Send a message on a connection.
    Send(Direction, Message),
    /// Close a connection once what was queued before has been sent.
    Close(Direction),
    /// The session is up on this connection with these parameters.
    Established {
        direction: Direction,
        negotiated: Negotiated,
        remote: Box<Open>,
    },
    /// Routes arrived (only in Established).
    Update(Box<Update>),
    /// The peer asks for our routes again (RFC 2918, RFC 7313).
    RouteRefresh(RouteRefresh),
    /// The established session ended: withdraw what it taught us.
    Down(DownReason),
}

#[derive(Debug)]
enum ConnState {
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for the first KEEPALIVE.
    OpenConfirm {
        remote: Box<Open>,
        negotiated: Negotiated,
    },
    Established,
}

#[derive(Debug)]
struct Conn {
    state: ConnState,
    hold_time: Duration,
    hold_deadline: Option<Instant>,
    keepalive_every: Option<Duration>,
    keepalive_deadline: Option<Instant>,
    /// RFC 9687: set while data waits to be written and none was accepted since.
    send_deadline: Option<Instant>,
}

/// One BGP session with one neighbor.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    admin_up: bool,
    conns: [Option<Conn>; 2],
    /// An outbound connect is in progress.
    connecting: bool,
    connect_retry_at: Option<Instant>,
    /// Idle hold after an error: no connection until then.
    idle_until: Option<Instant>,
    error_wait: Duration,
    established_at: Option<Instant>,
    negotiated: Option<Negotiated>,
    remote: Option<Box<Open>>,
    last_error: Option<String>,
}

impl Session {
    pub fn new(cfg: SessionConfig) -> Session {
        let error_wait = cfg.error_wait_min;
        Session {
            cfg,
            admin_up: false,
            conns: [None, None],
            connecting: false,
            connect_retry_at: None,
            idle_until: None,
            error_wait,
            established_at: None,
            negotiated: None,
            remote: None,
            last_error: None,
        }
    }

    /// A reloaded configuration: the timers and OPEN of the next connection
    /// use it; a session in progress keeps what it negotiated.
    pub fn set_config(&mut self, cfg: SessionConfig) {
        self.error_wait = self
            .error_wait
            .clamp(cfg.error_wait_min, cfg.error_wait_max);
        self.cfg = cfg;
    }

    pub fn state(&self) -> State {
        let best = self
            .conns
            .iter()
            .flatten()
            .map(|c| match c.state {
                ConnState::OpenSent => State::OpenSent,
                ConnState::OpenConfirm { .. } => State::OpenConfirm,
                ConnState::Established => State::Established,
            })
            .max();
        match best {
            Some(s) => s,
            None if !self.admin_up || self.idle_until.is_some() => State::Idle,
            None if self.connecting => State::Connect,
            None => State::Active,
        }
    }

    /// How to parse and build UPDATEs on the established session.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// The peer's OPEN on the established session.
    pub fn remote_open(&self) -> Option<&Open> {
        self.remote.as_deref()
    }

    pub fn established_since(&self) -> Option<Instant> {
        self.established_at
    }

    /// What ended the last session or attempt, for operators.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The runtime stopped the session because something holds it down
    /// ([`super::HoldReason`]: a dead link, the interface, the operator...):
    /// the last error says so, not what the closed connection looked like
    /// from here. Call it after [`Event::Stop`].
    pub fn held_down(&mut self, why: &str) {
        self.last_error = Some(format!("held down: {why}"));
    }

    /// Largest message the peer may send us now (before Established: 4096, RFC 8654 §3).
    pub fn max_message_len(&self) -> usize {
        self.negotiated
            .map_or(crate::wire::MAX_MESSAGE_LEN, |n| n.max_message_len())
    }

    /// Largest message the peer may send on the connection `dir` now: the
    /// negotiated maximum once its OPEN is in (OpenConfirm), else 4096.
    pub fn max_message_len_on(&self, dir: Direction) -> usize {
        match self.conns[dir.index()].as_ref().map(|c| &c.state) {
            Some(ConnState::OpenConfirm { negotiated, .. }) => negotiated.max_message_len(),
            Some(ConnState::Established) => self.max_message_len(),
            _ => crate::wire::MAX_MESSAGE_LEN,
        }
    }

    /// Should a new connection in this direction be taken? The runtime asks before
    /// handing a connection over and refuses it (closes the socket) when not.
    /// A connection colliding with an Established session is refused (§6.8).
    /// The idle hold after an error holds back only our own connects: a peer
    /// connecting to us is taken, or two speakers that both back off after the
    /// same failure could keep missing each other.
    pub fn accepts(&self, dir: Direction) -> bool {
        let free = self.admin_up
            && self.conns[dir.index()].is_none()
            && self.state() != State::Established;
        free && match dir {
            Direction::Outbound => !self.cfg.passive && self.idle_until.is_none(),
            Direction::Inbound => true,
        }
    }

    /// The earliest time at which [`Session::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conn_timers = self
            .conns
            .iter()
            .flatten()
            .flat_map(|c| [c.hold_deadline, c.keepalive_deadline, c.send_deadline]);
        [self.connect_retry_at, self.idle_until]
            .into_iter()
            .chain(conn_timers)
            .flatten()
            .min()
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => {
                if !self.admin_up {
                    self.admin_up = true;
                    self.idle_until = None;
                    self.error_wait = self.cfg.error_wait_min;
                    self.try_connect(&mut out);
                }
            }
            Event::Stop(notification) => {
                self.admin_up = false;
                self.connect_retry_at = None;
                self.idle_until = None;
                self.connecting = false;
                let was_established = self.state() == State::Established;
                for dir in [Direction::Outbound, Direction::Inbound] {
                    if self.conns[dir.index()].take().is_some() {
                        out.push(Action::Send(
                            dir,
                            Message::Notification(notification.clone()),
                        ));
                        out.push(Action::Close(dir));
                    }
                }
                if was_established {
                    self.session_down(DownReason::AdminStop, &mut out);
                }
            }
            Event::Connected(dir) => self.on_connected(dir, now, &mut out),
            Event::ConnectFailed => {
                self.connecting = false;
                if self.admin_up && self.idle_until.is_none() && !self.cfg.passive {
                    self.connect_retry_at = Some(now + self.cfg.connect_retry);
                }
            }
            Event::Closed(dir) => {
                if let Some(conn) = self.conns[dir.index()].take() {
                    if dir == Direction::Outbound {
                        self.connecting = false;
                    }
                    if matches!(conn.state, ConnState::Established) {
                        self.last_error = Some(DownReason::ConnectionClosed.to_string());
                        self.session_down(DownReason::ConnectionClosed, &mut out);
                        self.start_idle_hold(now);
                    } else if self.conns[dir.other().index()].is_none() {
                        self.last_error = Some("connection closed before Established".into());
                        self.start_idle_hold(now);
                    }
                }
            }
            Event::Received(dir, msg) => self.on_message(dir, msg, now, &mut out),
            Event::Malformed(dir, notification) => {
                if self.conns[dir.index()].is_some() {
                    self.fail(dir, notification, now, &mut out);
                }
            }
            Event::Queued(dir) => {
                let send_hold = self.send_hold_time(dir);
                if let Some(c) = self.conns[dir.index()].as_mut() {
                    if c.send_deadline.is_none() {
                        c.send_deadline = send_hold.map(|t| now + t);
                    }
                }
            }
            Event::Sent { dir, idle } => {
                let send_hold = self.send_hold_time(dir);
                if let Some(c) = self.conns[dir.index()].as_mut() {
                    c.send_deadline = if idle {
                        None
                    } else {
                        send_hold.map(|t| now + t)
                    };
                }
            }
        }
        out
    }

    /// RFC 9687 §4 send hold time of connection `dir` (`None`: off).
    fn send_hold_time(&self, dir: Direction) -> Option<Duration> {
        let hold = self.conns[dir.index()].as_ref()?.hold_time;
        match self.cfg.send_hold_time {
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t),
            None => Some((2 * hold).max(Duration::from_secs(480))),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.idle_until.is_some_and(|t| t <= now) {
            self.idle_until = None;
            if self.admin_up {
                self.try_connect(&mut out);
            }
        }
        if self.connect_retry_at.is_some_and(|t| t <= now) {
            self.connect_retry_at = None;
            self.try_connect(&mut out);
        }
        for dir in [Direction::Outbound, Direction::Inbound] {
            let Some(conn) = self.conns[dir.index()].as_mut() else {
                continue;
            };
            if conn.hold_deadline.is_some_and(|t| t <= now) {
                // RFC 4271 §6.5: Hold Timer Expired, no subcode.
                self.fail(dir, Notification::new(4, 0, Vec::new()), now, &mut out);
                continue;
            }
            if conn.send_deadline.is_some_and(|t| t <= now) {
                // RFC 9687 §4: Send Hold Timer Expired (8), then drop the connection.
                self.fail(dir, Notification::new(8, 0, Vec::new()), now, &mut out);
                continue;
            }
            if let Some(t) = conn.keepalive_deadline.filter(|t| *t <= now) {
                let every = conn.keepalive_every.unwrap_or(Duration::from_secs(1));
                // Catch up without a burst if the runtime was late.
                conn.keepalive_deadline = Some(if t + every <= now {
                    now + every
                } else {
                    t + every
                });
                out.push(Action::Send(dir, Message::Keepalive));
            }
        }
        out
    }

    fn try_connect(&mut self, out: &mut Vec<Action>) {
        if self.cfg.passive || self.connecting || self.conns[Direction::Outbound.index()].is_some()
        {
            return;
        }
        if self.state() == State::Established {
            return;
        }
        self.connecting = true;
        out.push(Action::Connect);
    }

    /// Graceful restart in force with `remote`'s OPEN (RFC 4724), if both offer it.
    pub fn graceful_restart(&self, remote: &Open) -> Option<crate::wire::open::GracefulRestart> {
        crate::wire::open::negotiate_graceful_restart(&self.local_open(), remote)
    }

    /// The OPEN this session sends.
    pub fn local_open(&self) -> Open {
        Open::new(
            self.cfg.local_as,
            self.cfg.hold_time,
            self.cfg.router_id,
            self.cfg.capabilities.clone(),
        )
    }

    fn on_connected(&mut self, dir: Direction, now: Instant, out: &mut Vec<Action>) {
        if dir == Direction::Outbound {
            self.connecting = false;
            self.connect_retry_at = None;
        }
        if !self.accepts(dir) {
            out.push(Action::Close(dir));
            return;
        }
        // RFC 4271 §8.2.2 Connect/Active: send OPEN, set a large hold timer, go to OpenSent.
        self.conns[dir.index()] = Some(Conn {
            state: ConnState::OpenSent,
            hold_time: OPEN_HOLD_TIME,
            hold_deadline: Some(now + OPEN_HOLD_TIME),
            keepalive_every: None,
            keepalive_deadline: None,
            send_deadline: None,
        });
        out.push(Action::Send(dir, Message::Open(self.local_open())));
    }

    fn on_message(&mut self, dir: Direction, msg: Message, now: Instant, out: &mut Vec<Action>) {
        let Some(conn) = self.conns[dir.index()].as_mut() else {
            return;
        };
        // RFC 4271 §4.4: every KEEPALIVE or UPDATE restarts the hold timer.
        if conn.hold_time > Duration::ZERO && !matches!(conn.state, ConnState::OpenSent) {
            conn.hold_deadline = Some(now + conn.hold_time);
        }
        match (&conn.state, msg) {
            (_, Message::Notification(n)) => {
                self.last_error = Some(DownReason::NotificationReceived(n.clone()).to_string());
                if is_deliberate_cease(&n) {
                    // The peer closed on purpose (an operator, a reload):
                    // no flapping to back off from, it is expected back.
                    self.error_wait = self.cfg.error_wait_min;
                }
                let established = matches!(conn.state, ConnState::Established);
                self.conns[dir.index()] = None;
                out.push(Action::Close(dir));
                if established {
                    self.session_down(DownReason::NotificationReceived(n), out);
                }
                if established || self.conns[dir.other().index()].is_none() {
                    self.start_idle_hold(now);
                }
            }
            (ConnState::OpenSent, Message::Open(open)) => self.on_open(dir, open, now, out),
            (ConnState::OpenConfirm { .. }, Message::Keepalive) => {
                self.on_established(dir, now, out)
            }
            (ConnState::Established, Message::Keepalive) => {}
            (ConnState::Established, Message::Update(u)) => out.push(Action::Update(Box::new(u))),
            (ConnState::Established, Message::RouteRefresh(rr)) => {
                if self
                    .negotiated
                    .is_some_and(|n| n.route_refresh || n.enhanced_route_refresh)
                {
                    out.push(Action::RouteRefresh(rr));
                }
                // RFC 2918 §4: not negotiated, ignore (logged by the runtime from the state).
            }
            (state, _) => {
                // RFC 6608 §4: unexpected message, subcode by state.
                let subcode = match state {
                    ConnState::OpenSent => 1,
                    ConnState::OpenConfirm { .. } => 2,
                    ConnState::Established => 3,
                };
                self.fail(dir, Notification::new(5, subcode, Vec::new()), now, out);
            }
        }
    }

    /// RFC 4271 §6.2 checks that need the configuration, then collision detection (§6.8).
    fn on_open(&mut self, dir: Direction, open: Open, now: Instant, out: &mut Vec<Action>) {
        let remote_as = open.asn();
        if remote_as != self.cfg.remote_as {
            // Bad Peer AS: data is the 2-octet My AS field (RFC 4271 §6.2).
            return self.fail(
                dir,
                Notification::new(2, 2, open.my_as.to_be_bytes().to_vec()),
                now,
                out,
            );
        }
        if open.bgp_id == self.cfg.router_id && remote_as == self.cfg.local_as {
            // RFC 6286 §2.2: identifiers must differ within an AS.
            return self.fail(
                dir,
                Notification::new(2, 3, open.bgp_id.octets().to_vec()),
                now,
                out,
            );
        }
        // §6.8: collision with a connection in OpenConfirm (one still in OpenSent is
        // resolved when its own OPEN arrives).
        if let Some(other) = self.conns[dir.other().index()].as_ref() {
            if matches!(other.state, ConnState::OpenConfirm { .. }) {
                let keep = collision::survivor(self.cfg.router_id, open.bgp_id);
                let loser = keep.other();
                // Cease / Connection Collision Resolution (RFC 4486 §4).
                self.conns[loser.index()] = None;
                out.push(Action::Send(
                    loser,
                    Message::Notification(Notification::new(6, 7, Vec::new())),
                ));
                out.push(Action::Close(loser));
                if loser == Direction::Outbound {
                    self.connecting = false;
                }
                if loser == dir {
                    return;
                }
            }
        }
        let local = self.local_open();
        let negotiated = Negotiated::from_opens(&local, &open);
        // RFC 4271 §4.2: the smaller hold time; keepalive at most a third of it.
        let hold = self.cfg.hold_time.min(open.hold_time);
        let keepalive = if hold == 0 {
            0
        } else {
            self.cfg.keepalive.min(hold / 3).max(1)
        };
        let Some(conn) = self.conns[dir.index()].as_mut() else {
            return;
        };
        conn.hold_time = Duration::from_secs(hold.into());
        conn.hold_deadline = (hold > 0).then(|| now + conn.hold_time);
        conn.keepalive_every = (keepalive > 0).then(|| Duration::from_secs(keepalive.into()));
        conn.keepalive_deadline = conn.keepalive_every.map(|k| now + k);
        conn.state = ConnState::OpenConfirm {
            remote: Box::new(open),
            negotiated,
        };
        out.push(Action::Send(dir, Message::Keepalive));
    }

    fn on_established(&mut self, dir: Direction, now: Instant, out: &mut Vec<Action>) {
        let Some(conn) = self.conns[dir.index()].as_mut() else {
            return;
        };
        let ConnState::OpenConfirm { remote, negotiated } =
            std::mem::replace(&mut conn.state, ConnState::Established)
        else {
            return;
        };
        self.established_at = Some(now);
        self.negotiated = Some(negotiated);
        self.remote = Some(remote.clone());
        self.connect_retry_at = None;
        self.last_error = None;
        // §6.8: the other connection, if any, loses to the established one.
        let other = dir.other();
        if self.conns[other.index()].take().is_some() {
            out.push(Action::Send(
                other,
                Message::Notification(Notification::new(6, 7, Vec::new())),
            ));
            out.push(Action::Close(other));
            if other == Direction::Outbound {
                self.connecting = false;
            }
        }
        out.push(Action::Established {
            direction: dir,
            negotiated,
            remote,
        });
    }

    /// An error on one connection: send the NOTIFICATION, close, and hold off.
    fn fail(
        &mut self,
        dir: Direction,
        notification: Notification,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(conn) = self.conns[dir.index()].take() else {
            return;
        };
        if dir == Direction::Outbound {
            self.connecting = false;
        }
        let reason = match notification.code {
            4 => DownReason::HoldTimerExpired,
            8 => DownReason::SendHoldTimerExpired,
            _ => DownReason::NotificationSent(notification.clone()),
        };
        self.last_error = Some(reason.to_string());
        out.push(Action::Send(dir, Message::Notification(notification)));
        out.push(Action::Close(dir));
        let established = matches!(conn.state, ConnState::Established);
        if established {
            self.session_down(reason, out);
        }
        if established || self.conns[dir.other().index()].is_none() {
            self.start_idle_hold(now);
        }
    }

    fn session_down(&mut self, reason: DownReason, out: &mut Vec<Action>) {
        self.negotiated = None;
        self.remote = None;
        out.push(Action::Down(reason));
    }

    /// Idle hold with exponential backoff for a flapping peer: each error that comes
    /// before the session has been up for `error_wait_max` doubles the wait.
    fn start_idle_hold(&mut self, now: Instant) {
        if !self.admin_up {
            return;
        }
        let stable = self
            .established_at
            .is_some_and(|t| now.duration_since(t) >= self.cfg.error_wait_max);
        if stable {
            self.error_wait = self.cfg.error_wait_min;
        }
        self.established_at = None;
        self.connect_retry_at = None;
        self.idle_until = Some(now + self.error_wait);
        self.error_wait = (self.error_wait * 2).min(self.cfg.error_wait_max);
    }
}

/// A Cease the peer sends on purpose (RFC 4486 §4): Administrative Shutdown
/// (2), Peer De-configured (3), Administrative Reset (4), Other Configuration
/// Change (6).
fn is_deliberate_cease(n: &Notification) -> bool {
    n.code == 6 && matches!(n.subcode, 2 | 3 | 4 | 6)
}

#[cfg(test)]
mod tests;
