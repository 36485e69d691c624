//! Routing views (step 11, ARCHITECTURE.md "Routing views"), sans-IO: one
//! [`Rib`] per configured `[[view]]`, beside the default view's `Rib`
//! (which stays as it is: byte for byte today's behaviour). Each view's
//! routes travel in the view families (AFI 1/2, SAFI 241, the view id before
//! each prefix: `wire::view_nlri`) on the link sessions that negotiated
//! them; a view's table is an ordinary BGP table: its own decision, MED =
//! received MED + the link's cost under the view's metric ([`cost`]), next
//! hop self, RFC 4456 rules, import limit, graceful restart.
//!
//! Inbound, [`Views::update`] cuts an UPDATE by view ([`split`]) and returns
//! the default view's part; outbound, each view's `Rib` encodes its UPDATEs
//! in its family (`Negotiated::view`) and [`Views::poll_transmit_parts`]
//! pulls from the views in turn.

pub mod cost;
pub mod split;

pub use cost::{link_cost, LinkMeasure};

use crate::config::{Metric, View};
use crate::rib::{ExportContext, PeerConfig, PeerId, Rib, RibConfig, RibOutput};
use crate::wire::attr::is_view;
use crate::wire::{AfiSafi, Families, Negotiated, Update, SAFI_UNICAST};
use bytes::Bytes;
use ipnet::IpNet;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

/// One view: its configuration and its table.
pub struct ViewTable {
    pub view: View,
    pub rib: Rib,
}

/// What the views know of one neighbor.
#[derive(Clone, Debug, Default)]
struct Link {
    /// `view_cost` per view, in view order.
    view_cost: Vec<Option<u32>>,
    measure: LinkMeasure,
    multihop: bool,
}

/// Every configured view's table (none: nothing to do, every call is cheap).
#[derive(Default)]
pub struct Views {
    tables: Vec<ViewTable>,
    links: Vec<Link>,
    /// Where each peer's next pull starts (views take turns).
    turn: Vec<usize>,
    /// Per peer: view tables whose End-of-RIB for IPv4 / IPv6 went by in
    /// this session (only the last is sent: see [`Views::poll_transmit_parts`]).
    eor: Vec<[usize; 2]>,
}

/// The whole messages of an encoded run.
fn messages(mut run: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_be_bytes([*run.get(16)?, *run.get(17)?]));
        if len < crate::wire::HEADER_LEN || len > run.len() {
            return None;
        }
        let (msg, rest) = run.split_at(len);
        run = rest;
        Some(msg)
    })
}

/// The AFI index (0: IPv4, 1: IPv6) of `msg` if it is the End-of-RIB of a
/// view family as `UpdateBuilder` writes it (an UPDATE holding only an empty
/// MP_UNREACH_NLRI of SAFI 241, 30 octets).
fn view_end_of_rib(msg: &[u8]) -> Option<usize> {
    match msg.get(18..)? {
        [2, 0, 0, 0, 6, 0x80, 15, 3, 0, afi @ (1 | 2), crate::wire::view_nlri::SAFI_VIEW] => {
            Some(usize::from(*afi) - 1)
        }
        _ => None,
    }
}

/// How a session's values read for view `id`'s table: the view families as
/// its IPv4/IPv6 unicast, an IPv6 next hop for IPv4 (RFC 8950's form), no
/// ADD-PATH, no route refresh (not carried for views).
pub fn view_negotiated(n: &Negotiated, id: u8) -> Negotiated {
    Negotiated {
        four_octet_as: n.four_octet_as,
        extended_message: n.extended_message,
        ipv4_extended_next_hop: true,
        ipv4_unicast: n.views.ipv4_unicast,
        ipv6_unicast: n.views.ipv6_unicast,
        route_refresh: false,
        enhanced_route_refresh: false,
        add_path_receive: Families::NONE,
        add_path_send: Families::NONE,
        views: n.views,
        view: Some(id),
    }
}

/// A view family as its table's unicast family; others unchanged.
fn as_unicast(f: AfiSafi) -> AfiSafi {
    if is_view(f) {
        AfiSafi {
            afi: f.afi,
            safi: SAFI_UNICAST,
        }
    } else {
        f
    }
}

fn view_families(families: &[AfiSafi]) -> Vec<AfiSafi> {
    families
        .iter()
        .filter(|f| is_view(**f))
        .map(|f| as_unicast(*f))
        .collect()
}

impl Views {
    /// One table per view, with the node's RIB settings.
    pub fn new(views: &[View], cfg: &RibConfig) -> Views {
        let tables = views
            .iter()
            .map(|v| ViewTable {
                view: v.clone(),
                rib: Rib::new(cfg.clone()),
            })
            .collect();
        Views {
            tables,
            links: Vec::new(),
            turn: Vec::new(),
            eor: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    pub fn tables(&self) -> &[ViewTable] {
        &self.tables
    }

    /// The table of the view named `name`.
    pub fn by_name(&self, name: &str) -> Option<&ViewTable> {
        self.tables.iter().find(|t| t.view.name == name)
    }

    /// Each view's kernel table (`[[view]] table`) and its `Rib`, in view
    /// order: what the kernel FIB is fed from.
    pub fn fib_ribs(&mut self) -> impl Iterator<Item = (u32, &mut Rib)> {
        self.tables.iter_mut().map(|t| (t.view.table, &mut t.rib))
    }

    /// Forwarding changes are reported only when a FIB takes them.
    pub fn set_fib_outputs(&mut self, on: bool) {
        for t in &mut self.tables {
            t.rib.set_fib_outputs(on);
        }
    }

    /// Routes replacing others wait for the kernel before they are announced ([`Rib::set_export_after_kernel`]).
    pub fn set_export_after_kernel(&mut self, on: bool) {
        for t in &mut self.tables {
            t.rib.set_export_after_kernel(on);
        }
    }

    /// A neighbor, in the default `Rib`'s order (same peer ids);
    /// `view_cost`: its `view_cost` by view name.
    pub fn add_peer(&mut self, cfg: &PeerConfig, view_cost: &BTreeMap<String, u32>) -> PeerId {
        let link = Link {
            view_cost: self
                .tables
                .iter()
                .map(|t| view_cost.get(&t.view.name).copied())
                .collect(),
            measure: LinkMeasure {
                cost: cfg.cost,
                ..LinkMeasure::default()
            },
            multihop: cfg.multihop,
        };
        for (i, t) in self.tables.iter_mut().enumerate() {
            let cost = link_cost(t.view.metric, &link.measure, link.view_cost[i]);
            t.rib.add_peer(PeerConfig {
                cost,
                ..cfg.clone()
            });
        }
        self.links.push(link);
        self.turn.push(0);
        self.eor.push([0; 2]);
        self.links.len() - 1
    }

    /// A session is up: the views it negotiated start sending their tables
    /// (link sessions only: views carry loopbacks).
    pub fn peer_up(
        &mut self,
        peer: PeerId,
        negotiated: &Negotiated,
        local: Option<SocketAddr>,
        remote_id: Ipv4Addr,
    ) {
        let Some(link) = self.links.get(peer) else {
            return;
        };
        if link.multihop || !negotiated.views.any() {
            // A session without views: nothing of an earlier one stays.
            for t in &mut self.tables {
                t.rib.peer_down(peer);
            }
            return;
        }
        self.eor[peer] = [0; 2];
        for t in &mut self.tables {
            let mut ctx = ExportContext::new(view_negotiated(negotiated, t.view.id), local);
            // A view's next hop is always IPv6.
            ctx.local_v4 = None;
            t.rib.peer_up(peer, ctx, remote_id);
        }
    }

    pub fn peer_down(&mut self, peer: PeerId) {
        for t in &mut self.tables {
            t.rib.peer_down(peer);
        }
    }

    /// [`Rib::peer_down_at`] in every table: a session lost without
    /// graceful restart at `now`.
    pub fn peer_down_at(&mut self, peer: PeerId, now: Instant) {
        for t in &mut self.tables {
            t.rib.peer_down_at(peer, now);
        }
    }

    /// RFC 4724 §4.2 per table: `families` of the session's GR capability;
    /// the view families among them keep each view's routes stale.
    pub fn peer_down_graceful(&mut self, peer: PeerId, families: &[AfiSafi], deadline: Instant) {
        let kept = view_families(families);
        for t in &mut self.tables {
            t.rib.peer_down_graceful(peer, &kept, deadline);
        }
    }

    pub fn graceful_session_up(&mut self, peer: PeerId, preserved: &[AfiSafi], deadline: Instant) {
        let kept = view_families(preserved);
        for t in &mut self.tables {
            t.rib.graceful_session_up(peer, &kept, deadline);
        }
    }

    /// An UPDATE from `peer`: view routes go to their tables (unknown view
    /// ids are ignored); returns what the default view's table takes.
    pub fn update<'a>(&mut self, peer: PeerId, u: &'a Update) -> Option<Cow<'a, Update>> {
        if !split::has_views(u) {
            return Some(Cow::Borrowed(u));
        }
        let s = split::split(u);
        if let Some(f) = s.end_of_rib {
            let eor = Update::end_of_rib(f);
            for t in &mut self.tables {
                t.rib.update(peer, &eor);
            }
        }
        for (id, v) in &s.views {
            if let Some(t) = self.tables.iter_mut().find(|t| t.view.id == *id) {
                t.rib.update(peer, v);
            }
        }
        s.default.map(Cow::Owned)
    }

    /// A new measurement of `peer`'s link: each view prices it by its metric.
    pub fn set_link_measure(&mut self, peer: PeerId, measure: LinkMeasure) {
        let Some(link) = self.links.get_mut(peer) else {
            return;
        };
        link.measure = measure;
        for (i, t) in self.tables.iter_mut().enumerate() {
            let cost = link_cost(t.view.metric, &link.measure, link.view_cost[i]);
            t.rib.set_link_cost(peer, cost);
        }
    }

    /// The cost of `peer`'s link in view `index` (`None`: unknown).
    pub fn link_cost(&self, index: usize, peer: PeerId) -> Option<u32> {
        self.tables.get(index)?.rib.link_cost(peer)
    }

    /// Our loopbacks, originated into every view.
    pub fn set_originated(&mut self, now: &BTreeSet<IpNet>) {
        for t in &mut self.tables {
            t.rib.set_originated(now.clone());
        }
    }

    /// [`Rib::set_identity`] in every view.
    pub fn set_identity(&mut self, router_id: std::net::Ipv4Addr, local_as: u32) {
        for t in &mut self.tables {
            t.rib.set_identity(router_id, local_as);
        }
    }

    pub fn set_import_limit(
        &mut self,
        peer: PeerId,
        limit: u32,
        action: crate::config::ImportLimitAction,
    ) {
        for t in &mut self.tables {
            t.rib.set_import_limit(peer, limit, action);
        }
    }

    pub fn has_work(&self) -> bool {
        self.tables.iter().any(|t| t.rib.has_work())
    }

    /// Each table's decision; outputs with the index of their view.
    pub fn flush(&mut self) -> Vec<(usize, RibOutput)> {
        let mut out = Vec::new();
        for (i, t) in self.tables.iter_mut().enumerate() {
            if t.rib.has_work() {
                out.extend(t.rib.flush().into_iter().map(|o| (i, o)));
            }
        }
        out
    }

    /// Every forwarding change queued in every view, as outputs (tests and
    /// simulations; the runtime pulls them with [`Rib::poll_fib`]).
    pub fn fib_all(&mut self) -> Vec<(usize, RibOutput)> {
        let mut out = Vec::new();
        for (i, t) in self.tables.iter_mut().enumerate() {
            out.extend(t.rib.fib_all().into_iter().map(|o| (i, o)));
        }
        out
    }

    pub fn wants_transmit(&self, peer: PeerId) -> bool {
        self.tables.iter().any(|t| t.rib.wants_transmit(peer))
    }

    /// The next UPDATEs of some view for `peer` (views take turns).
    ///
    /// End-of-RIB is per (AFI, 241), one family for every view: each view's
    /// table ends its initial table with one, and only the last of them goes
    /// out, so the neighbor's End-of-RIB (graceful restart: the end of the
    /// stale routes) comes after every view's routes.
    pub fn poll_transmit_parts(
        &mut self,
        peer: PeerId,
        budget: usize,
        out: &mut Vec<Bytes>,
    ) -> bool {
        let n = self.tables.len();
        if self.turn.get(peer).is_none() {
            return false;
        }
        loop {
            let mut any = false;
            for k in 0..n {
                let i = (self.turn[peer] + k) % n;
                let start = out.len();
                if !self.tables[i].rib.poll_transmit_parts(peer, budget, out) {
                    continue;
                }
                any = true;
                self.hold_end_of_rib(peer, start, out);
                if out.len() > start {
                    self.turn[peer] = (i + 1) % n;
                    return true;
                }
            }
            // Only held End-of-RIB markers came out (or nothing): pull again.
            if !any {
                return false;
            }
        }
    }

    /// Drops from `out[start..]` each view End-of-RIB but the last view's.
    fn hold_end_of_rib(&mut self, peer: PeerId, start: usize, out: &mut Vec<Bytes>) {
        let n = self.tables.len();
        let mut k = start;
        while k < out.len() {
            // The usual part holds none: no copy.
            if !messages(&out[k]).any(|m| view_end_of_rib(m).is_some()) {
                k += 1;
                continue;
            }
            let mut kept = Vec::with_capacity(out[k].len());
            for msg in messages(&out[k]) {
                match view_end_of_rib(msg) {
                    Some(afi) => {
                        self.eor[peer][afi] += 1;
                        if self.eor[peer][afi] >= n {
                            kept.extend_from_slice(msg);
                        }
                    }
                    None => kept.extend_from_slice(msg),
                }
            }
            if kept.is_empty() {
                out.remove(k);
            } else {
                out[k] = Bytes::from(kept);
                k += 1;
            }
        }
    }

    /// As [`Views::poll_transmit_parts`], one buffer.
    pub fn poll_transmit(&mut self, peer: PeerId, budget: usize) -> Option<Bytes> {
        let mut parts = Vec::new();
        if !self.poll_transmit_parts(peer, budget, &mut parts) {
            return None;
        }
        Some(Bytes::from(parts.concat()))
    }

    /// Earliest stale-route deadline of any table.
    pub fn stale_timeout(&self) -> Option<Instant> {
        self.tables
            .iter()
            .filter_map(|t| t.rib.stale_timeout())
            .min()
    }

    pub fn expire_stale(&mut self, now: Instant) {
        for t in &mut self.tables {
            t.rib.expire_stale(now);
        }
    }

    /// Earliest end of a lost router's window in any table.
    pub fn lost_router_timeout(&self) -> Option<Instant> {
        self.tables
            .iter()
            .filter_map(|t| t.rib.lost_router_timeout())
            .min()
    }

    pub fn expire_lost_routers(&mut self, now: Instant) {
        for t in &mut self.tables {
            t.rib.expire_lost_routers(now);
        }
    }

    /// The metric of view `index`.
    pub fn metric(&self, index: usize) -> Option<Metric> {
        self.tables.get(index).map(|t| t.view.metric)
    }
}

#[cfg(test)]
mod tests;
