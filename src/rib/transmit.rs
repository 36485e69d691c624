//! Pull-based export: a peer's queued prefixes are compared with what it holds
//! and encoded only when its connection can take more (BIRD's
//! `bgp_fire_tx`, quinn-proto's `poll_transmit`). A slow peer costs a queue
//! entry per prefix, never a message per change.

use super::adj_out::{end_of_rib, OutBatch};
use super::export::split_messages;
use super::flush::eligible;
use super::group::{group_eligible, member_view, MAX_BEHIND};
use super::loc_rib::NONE;
use super::overlay::carries;
use super::{PeerId, Rib, RibOutput};
use crate::wire::{Message, RouteRefresh, AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use tracing::warn;

/// Rough size of an attribute set's fixed part in an UPDATE (header, attributes, next hop).
const GROUP_COST: usize = 96;

fn nlri_len(p: &IpNet) -> usize {
    1 + usize::from(p.prefix_len()).div_ceil(8)
}

impl Rib {
    /// Whether [`Rib::poll_transmit`] has something for `peer`.
    pub fn wants_transmit(&self, peer: PeerId) -> bool {
        let Some(p) = self.peers.get(peer) else {
            return false;
        };
        if p.session.is_none() {
            return false;
        }
        if p.adj_out.has_work() || p.addpath_out.has_work() {
            return true;
        }
        p.adj_out.group.is_some_and(|g| {
            let g = &self.groups[g];
            match p.adj_out.cursor {
                Some(c) => c < g.end() || g.queue.len() > 0,
                // Joins the stream on the next pull, if there is anyone to share with.
                None => g.members.len() > 1,
            }
        })
    }

    /// Prefixes queued for `peer` (each at most once).
    pub fn queued(&self, peer: PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.adj_out.queued())
    }

    /// Encodes UPDATEs for `peer`, about `budget` bytes (at least one message
    /// when there is work), as one buffer. See [`Rib::poll_transmit_parts`].
    pub fn poll_transmit(&mut self, peer: PeerId, budget: usize) -> Option<Bytes> {
        let mut parts = Vec::new();
        if !self.poll_transmit_parts(peer, budget, &mut parts) {
            return None;
        }
        if parts.len() == 1 {
            return parts.pop();
        }
        let mut buf = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
        for part in parts {
            buf.extend_from_slice(&part);
        }
        Some(buf.freeze())
    }

    /// Encodes UPDATEs for `peer` into `out` (one or a few buffers, shared
    /// with the other members of its update group where possible): first
    /// what its own queue holds (the initial table, ROUTE-REFRESH, a member
    /// catching up), compared with its Adj-RIB-Out: withdrawals, then packed
    /// runs by attribute set; End-of-RIB once the initial table is out. Then
    /// the next entry of its group's stream ([`super::group`]). The
    /// Adj-RIB-Out records only what was encoded. An attribute set that
    /// cannot be encoded for this session becomes a withdrawal and a log
    /// line. `false`: nothing to send.
    pub fn poll_transmit_parts(
        &mut self,
        peer: PeerId,
        budget: usize,
        out: &mut Vec<Bytes>,
    ) -> bool {
        if !self.wants_transmit(peer) {
            return false;
        }
        loop {
            if let Some(own) = self.transmit_own(peer, budget) {
                out.push(own);
                self.join_stream(peer);
                return true;
            }
            match self.transmit_stream(peer, budget, out) {
                None => return false,
                Some(()) if !out.is_empty() => return true,
                // An entry of nothing but its own routes: on to the next.
                Some(()) => {}
            }
        }
    }

    /// The diff of `peer`'s own queue against its Adj-RIB-Out.
    fn transmit_own(&mut self, peer: PeerId, budget: usize) -> Option<Bytes> {
        let p = self.peers.get(peer)?;
        if !p.adj_out.has_work() && !p.addpath_out.has_work() {
            return None;
        }
        let mut buf = BytesMut::new();
        if let Some(p) = self.peers.get_mut(peer) {
            buf.extend_from_slice(&p.adj_out.prelude.split());
        }
        // Families with ADD-PATH send go first, every path ([`super::addpath_out`]).
        let mut size = self.transmit_add_paths(peer, budget, &mut buf);
        let clients: Vec<bool> = self.peers.iter().map(|p| p.cfg.rr_client).collect();
        let Rib {
            peers,
            loc,
            forwarding,
            overlay,
            ..
        } = self;
        let p = peers.get_mut(peer)?;
        let multihop = p.cfg.multihop;
        let ctx = &p.session.as_ref()?.ctx;
        let q = &mut p.adj_out;
        let mut batch = OutBatch::default();
        // Families this session carries best paths of (a next hop self
        // exists, no ADD-PATH send).
        let add_path = ctx.negotiated.add_path_send;
        let v4_ok = ctx.v4_route_next_hop().is_some() && !add_path.ipv4_unicast;
        let v6_ok = ctx.v6_route_next_hop().is_some() && !add_path.ipv6_unicast;
        while size < budget {
            // The initial table goes as it stands; later changes wait for the kernel.
            let initial = q.in_initial_table(loc.slab.len());
            let Some(id) = q.next(loc.slab.len()) else {
                break;
            };
            let d = &loc.slab[id as usize];
            let prefix = loc.prefix(id);
            let want = if d.live()
                && carries(multihop, overlay.contains(&prefix))
                && eligible(
                    &clients,
                    forwarding.exported(&prefix, loc.best_src(id)),
                    peer,
                )
                && match prefix {
                    IpNet::V4(_) => v4_ok,
                    IpNet::V6(_) => v6_ok,
                } {
                d.best_export()
            } else {
                NONE
            };
            if want == q.get(id) || (want != NONE && !initial && loc.kernel_wait.contains(id)) {
                continue;
            }
            if want == NONE {
                batch.withdraw(prefix);
            } else if batch.announce(prefix, want, NONE, loc.exports.get(want)) {
                size += GROUP_COST;
            }
            size += nlri_len(&prefix);
            q.set(id, want, loc);
        }
        let failed = batch.encode(ctx, &mut buf, &mut Vec::new());
        if !failed.is_empty() {
            warn!(peer = %p.cfg.name, "{} prefixes withdrawn: their attributes cannot be encoded for this session", failed.len());
            let mut w = OutBatch::default();
            for prefix in failed {
                if let Some(id) = loc.find(&prefix) {
                    q.set(id, NONE, loc);
                }
                w.withdraw(prefix);
            }
            w.encode(ctx, &mut buf, &mut Vec::new());
        }
        if q.idle() && p.addpath_out.idle() {
            if std::mem::take(&mut q.eor) {
                end_of_rib(ctx, &mut buf);
            }
            for afi in std::mem::take(&mut q.eorr) {
                refresh_marker(ctx, afi, 2, &mut buf);
            }
        }
        (!buf.is_empty()).then(|| buf.freeze())
    }

    /// The next entry of `peer`'s group stream, encoded first if `peer` is
    /// the first to ask for it. A member whose own queue is empty follows the
    /// stream again from its newest entry.
    /// `None`: no entry to take.
    fn transmit_stream(&mut self, peer: PeerId, budget: usize, out: &mut Vec<Bytes>) -> Option<()> {
        let g = self.peers.get(peer)?.adj_out.group?;
        if !self.peers[peer].adj_out.idle() {
            return None;
        }
        self.join_stream(peer);
        let group = &self.groups[g];
        let cursor = self.peers[peer].adj_out.cursor.unwrap_or(group.end());
        if cursor == group.end() {
            if group.queue.len() == 0 {
                return None;
            }
            self.encode_entry(g, budget);
        }
        let Rib {
            peers, loc, groups, ..
        } = self;
        let group = &mut groups[g];
        let q = &mut peers[peer].adj_out;
        // None: this member fell behind and left the stream while the entry was made.
        let cursor = q.cursor?;
        let e = group.entry(cursor)?;
        member_view(e, peer, out);
        for &(id, export, source) in &e.changes {
            if source as usize == peer {
                // Its own route: it must hold nothing there (RFC 4456 §6).
                if q.get(id) != NONE {
                    q.mark(id);
                }
                continue;
            }
            q.set(id, export, loc);
        }
        q.cursor = Some(cursor + 1);
        group.taken(cursor, cursor + 1, loc);
        Some(())
    }

    /// A member whose own queue is empty follows its group's stream from
    /// the newest entry on, once the group has another member.
    fn join_stream(&mut self, peer: PeerId) {
        let q = &self.peers[peer].adj_out;
        let Some(g) = q.group else {
            return;
        };
        // Alone in its group (a link session), a peer keeps to its own
        // queue: nothing to share, no second Adj-RIB-Out for the stream.
        if q.cursor.is_some() || !q.idle() || self.groups[g].members.len() < 2 {
            return;
        }
        if self.groups[g].following == 0 {
            self.restart_stream(g);
        }
        let group = &mut self.groups[g];
        group.following += 1;
        self.peers[peer].adj_out.cursor = Some(group.end());
    }

    /// What encoding for a group reads and writes, borrowed apart.
    fn export_parts(
        &mut self,
    ) -> (
        &mut [super::Peer],
        &mut super::loc_rib::LocRib,
        &super::forwarding::Forwarding,
        &mut [super::group::UpdateGroup],
        &crate::config::Overlay,
    ) {
        (
            &mut self.peers,
            &mut self.loc,
            &self.forwarding,
            &mut self.groups,
            &self.overlay,
        )
    }

    /// Nobody followed group `g`'s stream: it starts again from the Loc-RIB
    /// as it is, which a member whose own queue is empty holds.
    fn restart_stream(&mut self, g: usize) {
        let (peers, loc, forwarding, groups, overlay) = self.export_parts();
        let group = &mut groups[g];
        group.queue = Default::default();
        group.sent.clear(loc);
        let fams = group.families();
        for id in 0..loc.slab.len() as u32 {
            let (want, _) = group_want(peers, loc, forwarding, overlay, fams, id);
            if want != NONE {
                group.sent.set(id, want, loc);
            }
        }
    }

    /// Encodes the group's queue, about `budget` bytes, as a new entry of its
    /// stream. Members [`MAX_BEHIND`] entries behind leave the stream first.
    fn encode_entry(&mut self, g: usize, budget: usize) {
        let (peers, loc, forwarding, groups, overlay) = self.export_parts();
        let group = &mut groups[g];
        if group.stream.len() >= MAX_BEHIND {
            let oldest = group.base;
            let slow: Vec<PeerId> = group
                .members
                .iter()
                .copied()
                .filter(|&m| peers[m].adj_out.cursor == Some(oldest))
                .collect();
            for m in slow {
                let q = &mut peers[m].adj_out;
                q.cursor = None;
                for e in &group.stream {
                    for &(id, _, _) in &e.changes {
                        q.mark(id);
                    }
                }
                q.mark_all(&group.queue);
                group.following -= 1;
                let end = group.end();
                group.taken(oldest, end, loc);
            }
        }
        let ctx = &group.ctx;
        let fams = group.families();
        let mut batch = OutBatch::default();
        let mut changes = Vec::new();
        let mut size = 0;
        while size < budget {
            let Some(id) = group.queue.next() else {
                break;
            };
            let prefix = loc.prefix(id);
            let (want, source) = group_want(peers, loc, forwarding, overlay, fams, id);
            // A route replacing another waits for the kernel ([`Rib::fib_applied`] queues it again).
            if want == group.sent.get(id) || (want != NONE && loc.kernel_wait.contains(id)) {
                continue;
            }
            group.sent.set(id, want, loc);
            if want == NONE {
                batch.withdraw(prefix);
                changes.push((id, NONE, NONE));
            } else {
                if batch.announce(prefix, want, source, loc.exports.get(want)) {
                    size += GROUP_COST;
                }
                changes.push((id, want, source));
            }
            size += nlri_len(&prefix);
        }
        let mut buf = BytesMut::new();
        let mut sources = Vec::new();
        let failed = batch.encode(ctx, &mut buf, &mut sources);
        if !failed.is_empty() {
            warn!("{} prefixes withdrawn from an update group: their attributes cannot be encoded for its sessions", failed.len());
            let mut w = OutBatch::default();
            for prefix in failed {
                if let Some(id) = loc.find(&prefix) {
                    group.sent.set(id, NONE, loc);
                    for c in changes.iter_mut().filter(|c| c.0 == id) {
                        *c = (id, NONE, NONE);
                    }
                }
                w.withdraw(prefix);
            }
            w.encode(ctx, &mut buf, &mut Vec::new());
        }
        if !changes.is_empty() {
            group.push(buf.freeze(), sources, changes, loc);
        }
    }

    /// Everything queued, for every peer, as [`RibOutput::Send`] (tests and
    /// simulations that do not model a connection).
    pub fn transmit_all(&mut self) -> Vec<RibOutput> {
        (0..self.peers.len())
            .filter_map(|peer| {
                let chunk = self.poll_transmit(peer, usize::MAX)?;
                Some(RibOutput::Send {
                    peer,
                    messages: split_messages(chunk),
                })
            })
            .collect()
    }

    /// ROUTE-REFRESH from `peer` (RFC 2918): re-send our routes of `afi`,
    /// bracketed by BoRR/EoRR with enhanced route refresh (RFC 7313 §4).
    pub fn route_refresh(&mut self, peer: PeerId, afi: u16) {
        if afi != AFI_IPV4 && afi != AFI_IPV6 {
            return;
        }
        let Rib { peers, loc, .. } = self;
        let Some(p) = peers.get_mut(peer) else {
            return;
        };
        let Some(s) = &p.session else {
            return;
        };
        let q = &mut p.adj_out;
        if s.ctx.negotiated.enhanced_route_refresh {
            if q.eorr.contains(&afi) {
                return;
            }
            refresh_marker(&s.ctx, afi, 1, &mut q.prelude);
            q.eorr.push(afi);
        }
        p.addpath_out.resend(afi, loc);
        let slab = &loc.slab;
        let afi_of = |id: u32| {
            if slab[id as usize].is_v6() {
                AFI_IPV6
            } else {
                AFI_IPV4
            }
        };
        q.resend(|id| afi_of(id) == afi, &mut loc.exports);
    }
}

/// What a member of a group that may carry (IPv4, IPv6, to a client)
/// holds for dest `id` when the best path is not its own: (export, source).
fn group_want(
    peers: &[super::Peer],
    loc: &super::loc_rib::LocRib,
    forwarding: &super::forwarding::Forwarding,
    overlay: &crate::config::Overlay,
    (v4_ok, v6_ok, to_client, multihop): (bool, bool, bool, bool),
    id: u32,
) -> (u32, u32) {
    let d = &loc.slab[id as usize];
    let prefix = loc.prefix(id);
    // Link groups carry no overlay prefix, multihop groups only those
    // ([`super::overlay`]).
    if !carries(multihop, overlay.contains(&prefix)) {
        return (NONE, NONE);
    }
    let source = forwarding.exported(&prefix, loc.best_src(id));
    let from_client = peers.get(source as usize).is_some_and(|p| p.cfg.rr_client);
    let family_ok = match prefix {
        IpNet::V4(_) => v4_ok,
        IpNet::V6(_) => v6_ok,
    };
    if d.live() && family_ok && group_eligible(source, from_client, to_client) {
        (d.best_export(), source)
    } else {
        (NONE, NONE)
    }
}

/// BoRR (1) or EoRR (2) for `afi` (RFC 7313 §4).
fn refresh_marker(ctx: &super::ExportContext, afi: u16, subtype: u8, buf: &mut BytesMut) {
    let m = Message::RouteRefresh(RouteRefresh {
        afi,
        subtype,
        safi: SAFI_UNICAST,
    });
    if let Err(e) = m.encode(&ctx.negotiated, buf) {
        warn!("cannot encode ROUTE-REFRESH: {e}");
    }
}

#[cfg(test)]
#[path = "transmit_tests.rs"]
mod tests;
