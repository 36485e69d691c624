//! The kernel FIB worker: runs what [`crate::fib::FibTables`] decides over
//! rtnetlink, one core per kernel table it owns (`[kernel] table` for the
//! default view, then each view's table: [`view_tables`]).
//! Best-route changes come from the RIB task; route events of the kernel
//! (RTNLGRP_IPV4_ROUTE / RTNLGRP_IPV6_ROUTE) tell it what others do to the
//! table; operations of one batch run concurrently on one netlink socket;
//! results go back to the core, and whether each prefix is forwardable goes
//! back to the RIB (which does not export what this node cannot forward).

use super::rib_task::RibMsg;
use crate::config::{Config, Kernel, Loopbacks, OnStop, Overlay};
use crate::fib::{FibError, FibOp, FibRoute, FibTables, KernelView, Seen, TableId};
use futures::channel::mpsc::UnboundedReceiver as EventRx;
use futures::StreamExt;
use ipnet::IpNet;
use rtnetlink::constants::{RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE};
use rtnetlink::packet_core::{
    NetlinkBuffer, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteVia,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::protocols::NETLINK_ROUTE;
use rtnetlink::sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};
use rtnetlink::{Handle, RouteMessageBuilder};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// A full dump now and then, whatever the events said: the kernel does not
/// announce every removal (IPv4 routes of an interface going down).
const REDUMP_EVERY: Duration = Duration::from_secs(30);
/// Receive buffer of the periodic dump (a datagram of a dump is at most 32 KiB).
const DUMP_RECV: usize = 64 * 1024;
/// Kernel route operations awaiting their answer at once (see `execute`).
const IN_FLIGHT: usize = 256;
/// Operations taken from the core at once: the core keeps the rest as
/// compact per-prefix state, not as operations.
const BATCH: usize = 4 * IN_FLIGHT;

/// A prefix's kernel route: via `gateway` on `interface`, or none.
pub type Route = (IpNet, Option<(IpAddr, Option<Arc<str>>)>);

/// The kernel tables of the routing views (`[[view]] table`, in view
/// order), besides `[kernel] table` (the default view's). Every list works
/// (a table repeated, or equal to `[kernel] table`, is one table).
pub fn view_tables(config: &Config) -> Vec<TableId> {
    config.views.iter().map(|v| v.table).collect()
}

/// Every table the FIB owns: the default view's first.
pub fn fib_tables(config: &Config) -> Vec<TableId> {
    let mut tables = vec![config.kernel.table];
    tables.extend(view_tables(config));
    tables
}

#[derive(Debug)]
pub enum FibMsg {
    /// The routes now in force for prefixes whose kernel route changed, at
    /// most [`FIB_BATCH`](super::rib_task::FIB_BATCH): the RIB sends one per
    /// batch of room ([`RibMsg::FibReady`]), the rest waits in the RIB as a
    /// bit per prefix. Batches of every table share the credits.
    Routes { table: TableId, routes: Vec<Route> },
    /// `show kernel`: every prefix desired or installed and its state, in
    /// every table or in `table`.
    View {
        table: Option<TableId>,
        reply: oneshot::Sender<Vec<KernelView>>,
    },
    /// Kernel route operations done and failed since start (metrics).
    Ops { reply: oneshot::Sender<OpCounts> },
    /// A reloaded `[overlay]`: its ranges are ours in the kernel table too
    /// (boxed: every queued `Best` is as large as the largest variant).
    Overlay(Box<Overlay>),
    /// The tables owned from now on ([`fib_tables`] of a reloaded config;
    /// not sent yet: `[[view]]` changes need a restart today). A table
    /// given up has its routes of ours removed; a new one is dumped and
    /// what of ours it holds adopted.
    Tables(Vec<TableId>),
    /// Clean stop: keep or remove what is installed, then answer.
    Stop { done: oneshot::Sender<()> },
    /// Every graceful-restart neighbor sent End-of-RIB (RFC 4724 §4.1) for
    /// the view of `table`: the routes of the previous run not re-learned
    /// there go now, not at the grace time.
    EndGrace { table: TableId },
}

/// Route operations sent to the kernel since start, and how many it refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OpCounts {
    pub done: u64,
    pub failed: u64,
}

type Events = EventRx<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

pub struct FibTask {
    cfg: Kernel,
    loopbacks: Loopbacks,
    /// Overlay prefixes are installed too (via their next hop's underlay route).
    overlay: Overlay,
    handle: Handle,
    /// `None` once the event socket failed (then only the periodic dump sees changes).
    events: Option<Events>,
    /// One core per owned table (state apart), and ours in tables not owned.
    fib: FibTables,
    rib: mpsc::Sender<RibMsg>,
    next_dump: Instant,
    ops: OpCounts,
    /// Route events read while a batch of operations ran, already reduced to
    /// what the core needs (the kernel's echo of a whole table of our own adds,
    /// kept as parsed netlink messages until the batch ended, cost ~300 B per route).
    early: Vec<Event>,
    /// Batches of routes taken from the RIB since room was last given back.
    taken: u32,
}

/// A kernel route event as the core sees it.
#[derive(Debug)]
enum Event {
    /// Events were lost (ENOBUFS): read the table again.
    Overrun,
    /// A route at our metric in a table of ours (or ours in another
    /// table) appeared (`true`) or went away.
    Route(TableId, Seen, bool),
}

impl FibTask {
    /// Open netlink, listen to route events, and read what the table holds
    /// (an earlier run's routes, other protocols' at our metric). An error
    /// here is fatal: a daemon that cannot install routes must say so.
    /// `tables`: the tables owned ([`fib_tables`]).
    pub async fn start(
        cfg: Kernel,
        tables: &[TableId],
        loopbacks: &Loopbacks,
        overlay: &Overlay,
        rib: mpsc::Sender<RibMsg>,
    ) -> Result<FibTask, String> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("netlink: {e}"))?;
        tokio::spawn(connection);
        // Subscribed before the dump, so no change falls between the two.
        let (mut econn, _, events) =
            rtnetlink::new_connection().map_err(|e| format!("netlink (route events): {e}"))?;
        econn
            .socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE))
            .map_err(|e| format!("netlink (route events): {e}"))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(econn.socket_mut().socket_mut());
        skip_own_additions(fd, cfg.protocol)
            .map_err(|e| format!("netlink (route events filter): {e}"))?;
        tokio::spawn(econn);
        let mut task = FibTask {
            fib: FibTables::new(tables),
            cfg,
            loopbacks: loopbacks.clone(),
            overlay: overlay.clone(),
            handle,
            events: Some(events),
            rib,
            next_dump: Instant::now() + REDUMP_EVERY,
            ops: OpCounts::default(),
            early: Vec::new(),
            taken: 0,
        };
        task.dump().await?;
        for (table, prefix) in task.fib.foreign() {
            warn!(%prefix, table, metric = task.cfg.metric, "conflict: another protocol holds this loopback at our metric; left alone");
        }
        for (table, c) in task.fib.counts() {
            if c.installed > 0 {
                info!(table, routes = c.installed, grace = ?task.cfg.startup_grace, "kernel routes of an earlier run kept while sessions come up");
            }
        }
        task.fib.start_grace(Instant::now(), task.cfg.startup_grace);
        Ok(task)
    }

    /// Routes of an earlier run found in the kernel at start.
    pub fn adopted(&self) -> usize {
        self.fib.installed()
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<FibMsg>) {
        loop {
            let deadline = if self.fib.has_work() || self.fib.wants_dump() {
                Instant::now()
            } else {
                self.fib
                    .poll_timeout()
                    .map_or(self.next_dump, |t| t.min(self.next_dump))
            };
            let mut msgs = Vec::new();
            let mut events = Vec::new();
            let mut ifs = Interfaces::default();
            let next_event = async {
                match self.events.as_mut() {
                    Some(ev) => ev.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => msgs.extend(self.take_best(m)),
                    None => return,
                },
                e = next_event => match e {
                    Some((e, _)) => events.push(e),
                    None => {
                        error!("kernel route events stopped: changes by others are seen only by the periodic dump");
                        self.events = None;
                    }
                },
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
            // Take everything queued, then act once: many changes, one batch.
            // Best routes go straight into the core (compact), not into a list.
            while let Ok(m) = rx.try_recv() {
                msgs.extend(self.take_best(m));
            }
            if let Some(ev) = self.events.as_mut() {
                while let Ok((e, _)) = ev.try_recv() {
                    events.push(e);
                }
            }
            let mut redump = Instant::now() >= self.next_dump;
            let mut reduced = std::mem::take(&mut self.early);
            reduced.extend(events.iter().filter_map(|e| self.event(e, &mut ifs)));
            drop(events);
            for e in reduced {
                redump |= self.on_event(e);
            }
            if redump || self.fib.wants_dump() {
                self.redump().await;
            }
            for m in msgs {
                match m {
                    FibMsg::Routes { .. } => {}
                    FibMsg::Overlay(o) => self.overlay = *o,
                    FibMsg::Tables(tables) => {
                        info!(?tables, "kernel tables owned");
                        self.fib.set_tables(&tables);
                    }
                    FibMsg::EndGrace { table } => {
                        if self.fib.end_grace(table) {
                            info!(table, "End-of-RIB from every graceful-restart neighbor: kernel routes of the previous run not re-learned are removed");
                        }
                    }
                    FibMsg::View { table, reply } => {
                        let _ = reply.send(self.fib.view(table));
                    }
                    FibMsg::Ops { reply } => {
                        let _ = reply.send(self.ops);
                    }
                    FibMsg::Stop { done } => {
                        if self.cfg.on_stop == OnStop::Remove {
                            let ops = self.fib.remove_all();
                            info!(
                                routes = ops.len(),
                                "removing kernel routes (on_stop = remove)"
                            );
                            self.execute(ops).await;
                        } else {
                            info!(
                                routes = self.fib.installed(),
                                "keeping kernel routes (on_stop = keep)"
                            );
                        }
                        let _ = done.send(());
                        return;
                    }
                }
            }
            let ops = self.fib.poll_max(Instant::now(), BATCH);
            self.execute(ops).await;
            for (table, prefix, ok) in self.fib.forwarding_changes() {
                if ok {
                    info!(%prefix, table, "kernel route in place: exported again");
                } else {
                    warn!(%prefix, table, "not in the kernel: not exported to peers until it is");
                }
                let msg = RibMsg::Forwarding { table, prefix, ok };
                let _ = self.rib.send(msg).await;
            }
            // The routes taken are in the kernel (or retrying): room for more.
            if self.taken > 0 && !self.fib.has_work() {
                let batches = std::mem::take(&mut self.taken);
                let _ = self.rib.send(RibMsg::FibReady { batches }).await;
            }
        }
    }

    /// Routes pulled from the RIB into the core; other messages back.
    fn take_best(&mut self, m: FibMsg) -> Option<FibMsg> {
        match m {
            FibMsg::Routes { table, routes } => {
                for (prefix, route) in &routes {
                    let route = route
                        .as_ref()
                        .map(|(g, i)| (*g, i.as_deref().unwrap_or("")));
                    self.fib.set_via(table, *prefix, route);
                }
                self.taken += 1;
                None
            }
            m => Some(m),
        }
    }

    /// What a route event means to us, if anything.
    fn event(
        &self,
        e: &NetlinkMessage<RouteNetlinkMessage>,
        ifs: &mut Interfaces,
    ) -> Option<Event> {
        let (msg, present) = match &e.payload {
            NetlinkPayload::Overrun(_) => return Some(Event::Overrun),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) => (m, true),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(m)) => (m, false),
            _ => return None,
        };
        let (table, seen) = self.classify(msg, ifs)?;
        Some(Event::Route(table, seen, present))
    }

    /// One route event; true if events were lost (ENOBUFS) and a dump is needed.
    fn on_event(&mut self, e: Event) -> bool {
        match e {
            Event::Overrun => {
                warn!("kernel route events lost (ENOBUFS): reading the table again");
                true
            }
            Event::Route(table, seen, present) => {
                self.on_route_event(table, seen, present);
                false
            }
        }
    }

    fn on_route_event(&mut self, table: TableId, seen: Seen, present: bool) {
        match &seen {
            Seen::Foreign { prefix, protocol } if present => {
                warn!(%prefix, table, protocol, "conflict: another protocol's route at our metric; ours stays out of the kernel")
            }
            Seen::Foreign { prefix, protocol } => {
                info!(%prefix, table, protocol, "the conflicting route is gone")
            }
            Seen::Ours(r) if !present => {
                debug!(prefix = %r.prefix, table, "our kernel route removed")
            }
            Seen::Ours(r) if !self.fib.owns(table) => {
                warn!(prefix = %r.prefix, table, "our route in a table no longer ours: removed")
            }
            Seen::Ours(_) => {}
        }
        self.fib.kernel_event(table, seen, present);
    }

    async fn redump(&mut self) {
        self.next_dump = Instant::now() + REDUMP_EVERY;
        if let Err(e) = self.dump().await {
            warn!("cannot read the kernel table: {e}");
        }
        super::code_pages::periodic_work_done();
    }

    /// Reads what the kernel holds at our metric in our tables, for admitted
    /// loopbacks, into the cores route by route (a table of parsed
    /// messages at once would cost hundreds of bytes per route). One dump
    /// of all tables serves every core; routes of ours in other tables
    /// (a view removed) are found too, and deleted.
    async fn dump(&mut self) -> Result<(), String> {
        let mut ifs = Interfaces::default();
        self.fib.begin_dump();
        // One dump at a time: the kernel answers EBUSY to a second on the same socket.
        for request in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            if let Err(e) = self.dump_family(request, &mut ifs).await {
                // What was read stands; the rest is learned by events,
                // results, or the next dump.
                self.fib.end_dump();
                return Err(format!("route dump: {e}"));
            }
        }
        self.fib.end_dump();
        Ok(())
    }

    /// One family's routes, read on a socket of its own one receive at a
    /// time into the core: the kernel makes the next part of a dump as the
    /// last is read, so the dump holds one buffer. (Through `Handle`,
    /// netlink-proto's connection task read ahead until its task budget ran
    /// out, ~25 000 parsed routes queued at a time: +20 MiB at 1M.)
    async fn dump_family(
        &mut self,
        request: RouteMessage,
        ifs: &mut Interfaces,
    ) -> Result<(), String> {
        let e = |e: std::io::Error| e.to_string();
        let socket = TokioSocket::new(NETLINK_ROUTE).map_err(e)?;
        socket
            .socket_ref()
            .connect(&SocketAddr::new(0, 0))
            .map_err(e)?;
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetRoute(request));
        req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        req.header.sequence_number = 1;
        req.finalize();
        let mut buf = vec![0; req.buffer_len()];
        req.serialize(&mut buf);
        socket.send(&buf).await.map_err(e)?;
        // A dump's datagram is at most 32 KiB (the kernel's cap).
        let mut rx: Vec<u8> = Vec::with_capacity(DUMP_RECV);
        loop {
            rx.clear();
            socket.recv(&mut rx).await.map_err(e)?;
            let mut at = 0;
            while at < rx.len() {
                let len = NetlinkBuffer::new_checked(&rx[at..])
                    .map_err(|e| e.to_string())?
                    .length() as usize;
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[at..at + len]);
                at += (len + 3) & !3;
                match msg.map(|m| m.payload) {
                    Ok(NetlinkPayload::Done(_)) => return Ok(()),
                    Ok(NetlinkPayload::Error(err)) => return Err(err.to_string()),
                    Ok(NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m))) => {
                        if let Some((table, seen)) = self.classify(&m, ifs) {
                            self.fib.dumped(table, seen);
                        }
                    }
                    Ok(_) => {}
                    Err(err) => debug!(%err, "route dump: a message not understood, skipped"),
                }
            }
        }
    }

    /// Ours (in any table: our protocol number at our metric, for an
    /// admitted prefix), another protocol's at our metric in a table of
    /// ours, or of no concern (another metric, another protocol's route in
    /// another table, the kernel's own route for an address on lo).
    fn classify(&self, msg: &RouteMessage, ifs: &mut Interfaces) -> Option<(TableId, Seen)> {
        let kr = parse_route(msg, ifs)?;
        if !(self.loopbacks.admits(kr.prefix) || self.overlay.contains(&kr.prefix))
            || kr.metric != self.cfg.metric
        {
            return None;
        }
        if kr.protocol != self.cfg.protocol {
            let seen = Seen::Foreign {
                prefix: kr.prefix,
                protocol: kr.protocol,
            };
            return self.fib.owns(kr.table).then_some((kr.table, seen));
        }
        let ours = Seen::Ours(FibRoute {
            prefix: kr.prefix,
            gateway: kr.gateway?,
            interface: kr.interface.unwrap_or_default(),
        });
        Some((kr.table, ours))
    }

    async fn execute(&mut self, ops: Vec<(TableId, FibOp)>) {
        if ops.is_empty() {
            return;
        }
        // At most IN_FLIGHT requests at a time, results in order: each request
        // holds its netlink message and reply channel until the kernel answers
        // (a whole table at once cost ~250 B per route).
        // Events (the kernel's echo of these very operations) are read
        // meanwhile and kept reduced; they are handled after the results, as
        // if read then.
        let mut events = self.events.take();
        let mut early = std::mem::take(&mut self.early);
        let mut ifs = Interfaces::default();
        let mut results = Vec::with_capacity(ops.len());
        {
            let mut pending = futures::stream::FuturesOrdered::new();
            let mut next = ops.iter();
            loop {
                while pending.len() < IN_FLIGHT {
                    let Some((table, op)) = next.next() else {
                        break;
                    };
                    let oif = self.oif(op, &mut ifs);
                    pending.push_back(self.apply(*table, op, oif));
                }
                let Some(result) = pending.next().await else {
                    break;
                };
                results.push(result);
                if let Some(ev) = events.as_mut() {
                    while let Ok((e, _)) = ev.try_recv() {
                        early.extend(self.event(&e, &mut ifs));
                    }
                }
            }
        }
        self.events = events;
        self.early = early;
        let now = Instant::now();
        for ((table, op), result) in ops.iter().zip(results) {
            let (table, prefix) = (*table, op.prefix());
            self.ops.done += 1;
            if matches!(result, Err(FibError::Failed(_) | FibError::Conflict)) {
                self.ops.failed += 1;
            }
            match &result {
                Ok(()) => debug!(?op, table, "kernel route done"),
                Err(FibError::Conflict) => {
                    warn!(%prefix, table, "conflict: the kernel has another route at our metric; left alone")
                }
                Err(FibError::Absent) => {
                    debug!(%prefix, table, "our kernel route was already gone")
                }
                Err(FibError::Failed(e)) => {
                    if self.fib.keeps_failing(table, &prefix) {
                        error!(%prefix, table, "the kernel keeps refusing this route: {e}")
                    } else {
                        warn!(%prefix, table, "kernel route failed, will retry: {e}")
                    }
                }
            }
            self.fib.result(table, op, result, now);
        }
    }

    /// The output interface of an add or replace (`None`: none named).
    fn oif(&self, op: &FibOp, ifs: &mut Interfaces) -> Result<Option<u32>, FibError> {
        match op {
            FibOp::Add(r) | FibOp::Replace(r) if !r.interface.is_empty() => {
                ifs.index(&r.interface).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn apply(
        &self,
        table: TableId,
        op: &FibOp,
        oif: Result<Option<u32>, FibError>,
    ) -> Result<(), FibError> {
        let oif = oif?;
        let result = match op {
            FibOp::Add(r) => {
                let msg = self.message(table, r.prefix, Some(r), oif);
                // NLM_F_CREATE | NLM_F_EXCL: never over another protocol's route.
                match self.handle.route().add(msg.clone()).execute().await {
                    // Taken: if by a route of ours the core no longer knows of
                    // (a late echo of our own deletion cleared what it knew;
                    // the echo of our additions is filtered out), the delete
                    // naming our protocol removes it and the add goes in;
                    // another protocol's route makes the delete fail (ESRCH)
                    // and stays: a conflict.
                    Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::EEXIST => {
                        let ours = self.message(table, r.prefix, None, None);
                        match self.handle.route().del(ours).execute().await {
                            Ok(()) => self.handle.route().add(msg).execute().await,
                            Err(_) => Err(rtnetlink::Error::NetlinkError(m)),
                        }
                    }
                    other => other,
                }
            }
            FibOp::Replace(r) => {
                let msg = self.message(table, r.prefix, Some(r), oif);
                self.handle.route().add(msg).replace().execute().await
            }
            FibOp::Delete(prefix) => {
                // Names our protocol: the kernel matches it, another's route stays.
                let msg = self.message(table, *prefix, None, None);
                self.handle.route().del(msg).execute().await
            }
        };
        result.map_err(|e| match &e {
            rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::EEXIST => {
                FibError::Conflict
            }
            rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::ESRCH => FibError::Absent,
            _ => FibError::Failed(e.to_string()),
        })
    }

    /// The netlink message for a route in `table` (with `r`) or for its deletion (without).
    fn message(
        &self,
        table: TableId,
        prefix: IpNet,
        r: Option<&FibRoute>,
        oif: Option<u32>,
    ) -> RouteMessage {
        let protocol = RouteProtocol::from(self.cfg.protocol);
        match prefix {
            IpNet::V4(p) => {
                let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(p.addr(), p.prefix_len())
                    .table_id(table)
                    .protocol(protocol)
                    .priority(self.cfg.metric);
                if let Some(r) = r {
                    b = match r.gateway {
                        IpAddr::V4(g) => b.gateway(g),
                        // RFC 8950 next hop: IPv4 via an IPv6 gateway (RTA_VIA), no IPv4 on the tunnel needed.
                        IpAddr::V6(g) => b.via(g),
                    };
                    if let Some(src) = self.cfg.prefsrc4 {
                        b = b.pref_source(src);
                    }
                }
                if let Some(i) = oif {
                    b = b.output_interface(i);
                }
                b.build()
            }
            IpNet::V6(p) => {
                let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
                    .destination_prefix(p.addr(), p.prefix_len())
                    .table_id(table)
                    .protocol(protocol)
                    .priority(self.cfg.metric);
                if let Some(r) = r {
                    if let IpAddr::V6(g) = r.gateway {
                        b = b.gateway(g);
                    }
                    if let Some(src) = self.cfg.prefsrc6 {
                        b = b.pref_source(src);
                    }
                }
                if let Some(i) = oif {
                    b = b.output_interface(i);
                }
                b.build()
            }
        }
    }
}

/// A socket filter (classic BPF) on the route event socket: the kernel's
/// echo of our own additions (RTM_NEWROUTE of our protocol) is dropped in the
/// kernel, not read and parsed one by one (a full table is as many events
/// as routes; each result already says what it did). Removals of ours by
/// others, and every route of another protocol, still come in; an addition
/// of ours by someone else is seen by the periodic dump.
fn skip_own_additions(fd: std::os::fd::RawFd, protocol: u8) -> std::io::Result<()> {
    use libc::{
        sock_filter, sock_fprog, BPF_ABS, BPF_B, BPF_H, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET,
    };
    let op = |code: u32, jt: u8, jf: u8, k: u32| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // Offsets: nlmsghdr.nlmsg_type at 4 (host order; BPF loads big-endian),
    // then struct rtmsg from 16, its rtm_protocol at 16 + 5.
    let new_route = u32::from(u16::from_be_bytes(libc::RTM_NEWROUTE.to_ne_bytes()));
    let mut program = [
        op(BPF_LD | BPF_B | BPF_ABS, 0, 0, 21),
        op(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, u32::from(protocol)),
        op(BPF_LD | BPF_H | BPF_ABS, 0, 0, 4),
        op(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, new_route),
        op(BPF_RET | BPF_K, 0, 0, 0),
        op(BPF_RET | BPF_K, 0, 0, u32::MAX),
    ];
    let prog = sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: prog points to `program`, alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::addr_of!(prog).cast(),
            std::mem::size_of::<sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

struct KernelRoute {
    prefix: IpNet,
    table: u32,
    protocol: u8,
    metric: u32,
    gateway: Option<IpAddr>,
    interface: Option<String>,
}

/// Interface names and indexes, each looked up once per batch of
/// operations or events (a lookup is a few system calls; once per route
/// it was a good part of the CPU time of a full table).
#[derive(Default)]
struct Interfaces {
    names: HashMap<u32, Option<String>>,
    indexes: HashMap<String, Result<u32, String>>,
}

impl Interfaces {
    fn name(&mut self, index: u32) -> Option<String> {
        self.names
            .entry(index)
            .or_insert_with(|| super::transport::if_name(index))
            .clone()
    }

    fn index(&mut self, name: &str) -> Result<u32, FibError> {
        if !self.indexes.contains_key(name) {
            let i = super::transport::if_index(name).map_err(|e| e.to_string());
            self.indexes.insert(name.to_string(), i);
        }
        self.indexes[name].clone().map_err(FibError::Failed)
    }
}

fn parse_route(msg: &RouteMessage, ifs: &mut Interfaces) -> Option<KernelRoute> {
    let mut dst = None;
    let mut table = u32::from(msg.header.table);
    let mut metric = 0;
    let mut gateway = None;
    let mut interface = None;
    for a in &msg.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(IpAddr::V4(*d)),
            RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = Some(IpAddr::V6(*d)),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
            RouteAttribute::Via(RouteVia::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
            RouteAttribute::Via(RouteVia::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
            RouteAttribute::Oif(i) => interface = ifs.name(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let prefix = IpNet::new(dst?, msg.header.destination_prefix_length).ok()?;
    Some(KernelRoute {
        prefix,
        table,
        protocol: u8::from(msg.header.protocol),
        metric,
        gateway,
        interface,
    })
}
