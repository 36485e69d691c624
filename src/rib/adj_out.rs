//! Adj-RIB-Out of one peer (RFC 4271 §3.2): what we last sent and which
//! prefixes may be stale, so only changes go out, when the peer can take them;
//! and one batch of changes, packed into UPDATEs by attribute set.

use super::export::ExportContext;
use super::intern::FastMap;
use super::loc_rib::{Exports, LocRib, NONE};
use super::overlay::route_next_hop;
use crate::wire::{AfiSafi, PathAttributes, UpdateBuilder};
use bytes::BytesMut;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use smallvec::SmallVec;
use std::ops::Range;
use std::sync::Arc;
use tracing::warn;

/// Marker in [`AdjRibOut`]: advertised, but asked for again (ROUTE-REFRESH),
/// so whatever is selected is sent even if unchanged.
pub(crate) const RESEND: u32 = NONE - 2;

/// What one peer holds and what it still has to be told (BIRD's per-peer
/// buckets, pulled when the connection can take more). Memory is per prefix,
/// never per change: a prefix is queued at most once however often it flaps,
/// and what goes out is compared with what the peer holds at encoding time.
#[derive(Debug, Default)]
pub(crate) struct AdjRibOut {
    /// Per dest id: the export id the peer was sent, [`NONE`] or [`RESEND`].
    /// Each export id here holds a reference on it, each non-[`NONE`] entry
    /// one on the dest (`LocRib::held`), so neither id changes meaning.
    adv: Vec<u32>,
    pub advertised: usize,
    /// Dests whose advertised state may be stale.
    queue: DestQueue,
    /// The update group of the session ([`super::group`]).
    pub group: Option<usize>,
    /// Following the group's stream: the next entry to take (`None`: not
    /// following, the own queue catches up first).
    pub cursor: Option<u64>,
    /// The initial table: the next dest id to compare (`None`: done).
    pub sync: Option<u32>,
    /// End-of-RIB owed once the initial table is out (RFC 4724 §2).
    pub eor: bool,
    /// Sent before anything else (BoRR markers).
    pub prelude: BytesMut,
    /// AFIs whose EoRR (RFC 7313 §4) follows the re-sent routes.
    pub eorr: Vec<u16>,
}

impl AdjRibOut {
    pub fn len(&self) -> usize {
        self.advertised
    }

    /// What the peer holds for dest `id`.
    pub fn get(&self, id: u32) -> u32 {
        self.adv.get(id as usize).copied().unwrap_or(NONE)
    }

    /// The peer now holds `export` for dest `id` (counted references).
    pub fn set(&mut self, id: u32, export: u32, loc: &mut LocRib) {
        let old = self.get(id);
        if old == export {
            return;
        }
        let i = id as usize;
        if i >= self.adv.len() {
            super::huge_pages::resize(&mut self.adv, loc.slab.len().max(i + 1), NONE);
        }
        self.adv[i] = export;
        if export != RESEND {
            loc.exports.inc(export);
        }
        if old != RESEND {
            loc.exports.dec(old);
        }
        match (old != NONE, export != NONE) {
            (false, true) => {
                self.advertised += 1;
                loc.hold(id);
            }
            (true, false) => {
                self.advertised = self.advertised.saturating_sub(1);
                loc.unhold(id);
            }
            _ => {}
        }
    }

    /// Dest `id` may be stale for this peer.
    pub fn mark(&mut self, id: u32) {
        self.queue.mark(id);
    }

    /// Every dest of `q` may be stale for this peer.
    pub fn mark_all(&mut self, q: &DestQueue) {
        self.queue.merge(q);
    }

    /// Whether [`AdjRibOut::next`] still walks the initial table.
    pub fn in_initial_table(&self, dests: usize) -> bool {
        self.sync.is_some_and(|c| (c as usize) < dests)
    }

    /// The next dest to compare: the initial table first, then the queue.
    pub fn next(&mut self, dests: usize) -> Option<u32> {
        if let Some(c) = self.sync {
            if (c as usize) < dests {
                self.sync = Some(c + 1);
                return Some(c);
            }
            self.sync = None;
        }
        self.queue.next()
    }

    /// Prefixes queued (at most one entry per prefix, whatever the churn).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Nothing left to compare: routes are in line with the selection.
    pub fn idle(&self) -> bool {
        self.sync.is_none() && self.queue.len() == 0
    }

    pub fn has_work(&self) -> bool {
        !self.idle() || self.eor || !self.prelude.is_empty() || !self.eorr.is_empty()
    }

    /// Re-send what is advertised in `family` (ROUTE-REFRESH).
    pub fn resend(&mut self, mut family: impl FnMut(u32) -> bool, exports: &mut Exports) {
        for id in 0..self.adv.len() as u32 {
            let e = self.adv[id as usize];
            if e != NONE && e != RESEND && family(id) {
                self.adv[id as usize] = RESEND;
                exports.dec(e);
                self.mark(id);
            }
        }
    }

    /// The session ended: the peer holds nothing.
    pub fn clear(&mut self, loc: &mut LocRib) {
        for id in 0..self.adv.len() as u32 {
            self.set(id, NONE, loc);
        }
        *self = AdjRibOut::default();
    }
}

/// Dests queued for comparison: one bit each, taken in id order (slab
/// order: sequential reads) from a cursor that wraps.
#[derive(Debug, Default)]
pub(crate) struct DestQueue {
    bits: Vec<u64>,
    count: usize,
    /// The word of `bits` the next search starts at.
    scan: usize,
}

impl DestQueue {
    pub fn mark(&mut self, id: u32) {
        let (w, b) = (id as usize / 64, id % 64);
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        if self.bits[w] & (1 << b) == 0 {
            self.bits[w] |= 1 << b;
            self.count += 1;
        }
    }

    /// Adds every dest of `other`.
    pub fn merge(&mut self, other: &DestQueue) {
        if other.count == 0 {
            return;
        }
        if self.bits.len() < other.bits.len() {
            self.bits.resize(other.bits.len(), 0);
        }
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            self.count += (*b & !*a).count_ones() as usize;
            *a |= *b;
        }
    }

    pub fn next(&mut self) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        let words = self.bits.len();
        let mut w = self.scan % words;
        while self.bits[w] == 0 {
            w = (w + 1) % words;
        }
        let b = self.bits[w].trailing_zeros();
        self.bits[w] &= !(1 << b);
        self.count -= 1;
        self.scan = w;
        Some((w * 64) as u32 + b)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Takes dest `id` out of the queue; whether it was in.
    pub fn remove(&mut self, id: u32) -> bool {
        let present = self.contains(id);
        if present {
            self.bits[id as usize / 64] &= !(1 << (id % 64));
            self.count -= 1;
        }
        present
    }

    pub fn contains(&self, id: u32) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

struct Group {
    /// The source peer of the routes ([`NONE`] when it does not matter).
    source: u32,
    attrs: Arc<PathAttributes>,
    /// Inline for one: each loopback's path has a set of its own.
    v4: SmallVec<[Ipv4Net; 1]>,
    v6: SmallVec<[Ipv6Net; 1]>,
}

/// Changes for one peer, grouped by outgoing attribute set (export id).
#[derive(Default)]
pub(crate) struct OutBatch {
    index: FastMap<(u32, u32), usize>,
    /// The last ((export id, source), group), a cache: neighbouring prefixes share sets.
    last: Option<((u32, u32), usize)>,
    groups: Vec<Group>,
    withdraw_v4: Vec<Ipv4Net>,
    withdraw_v6: Vec<Ipv6Net>,
}

impl OutBatch {
    /// Returns whether this opened a new attribute set. `source`: the peer
    /// the route came from, kept apart when an update group shares the bytes
    /// ([`NONE`] otherwise).
    pub fn announce(
        &mut self,
        prefix: IpNet,
        export: u32,
        source: u32,
        attrs: &Arc<PathAttributes>,
    ) -> bool {
        let mut new = false;
        let key = (export, source);
        let i = match self.last {
            Some((e, i)) if e == key => i,
            _ => {
                let groups = &mut self.groups;
                let i = *self.index.entry(key).or_insert_with(|| {
                    new = true;
                    groups.push(Group {
                        source,
                        attrs: attrs.clone(),
                        v4: SmallVec::new(),
                        v6: SmallVec::new(),
                    });
                    groups.len() - 1
                });
                self.last = Some((key, i));
                i
            }
        };
        match prefix {
            IpNet::V4(p) => self.groups[i].v4.push(p),
            IpNet::V6(p) => self.groups[i].v6.push(p),
        }
        new
    }

    pub fn withdraw(&mut self, prefix: IpNet) {
        match prefix {
            IpNet::V4(p) => self.withdraw_v4.push(p),
            IpNet::V6(p) => self.withdraw_v6.push(p),
        }
    }

    /// Appends the UPDATEs: withdrawals first, then one packed run per
    /// attribute set and family, in prefix order (deterministic output).
    /// Returns the prefixes whose attribute set cannot be encoded for this
    /// session (e.g. grown past the message size by reflection): nothing of
    /// them was written. `sources`: the byte ranges of each source's
    /// announcements in `out` (runs are ordered by source, so each source's
    /// are contiguous).
    pub fn encode(
        mut self,
        ctx: &ExportContext,
        out: &mut BytesMut,
        sources: &mut Vec<(u32, Range<usize>)>,
    ) -> Vec<IpNet> {
        let mut failed = Vec::new();
        let b = UpdateBuilder::new(&ctx.negotiated);
        if !self.withdraw_v4.is_sorted() {
            self.withdraw_v4.sort_unstable();
        }
        if !self.withdraw_v6.is_sorted() {
            self.withdraw_v6.sort_unstable();
        }
        if !self.withdraw_v4.is_empty() && ctx.negotiated.ipv4_unicast {
            report(b.withdraw_v4(self.withdraw_v4, out), "IPv4 withdrawals");
        }
        if !self.withdraw_v6.is_empty() && ctx.negotiated.ipv6_unicast {
            report(b.withdraw_v6(self.withdraw_v6, out), "IPv6 withdrawals");
        }
        for g in &mut self.groups {
            if !g.v4.is_sorted() {
                g.v4.sort_unstable();
            }
            if !g.v6.is_sorted() {
                g.v6.sort_unstable();
            }
        }
        let first = |g: &Group| (g.source, g.v4.first().copied(), g.v6.first().copied());
        if !self.groups.is_sorted_by_key(first) {
            self.groups.sort_unstable_by_key(first);
        }
        for g in self.groups {
            let start = out.len();
            if !g.v4.is_empty() {
                if let Some(nh) = route_next_hop(&g.attrs, ctx, true) {
                    if let Err(e) = b.announce_v4(&g.attrs, nh, g.v4.iter().copied(), out) {
                        warn!(
                            "cannot encode IPv4 UPDATE ({e}): withdrawing {} prefixes instead",
                            g.v4.len()
                        );
                        failed.extend(g.v4.into_iter().map(IpNet::V4));
                    }
                }
            }
            if !g.v6.is_empty() {
                if let Some(nh) = route_next_hop(&g.attrs, ctx, false) {
                    if let Err(e) = b.announce_v6(&g.attrs, nh, g.v6.iter().copied(), out) {
                        warn!(
                            "cannot encode IPv6 UPDATE ({e}): withdrawing {} prefixes instead",
                            g.v6.len()
                        );
                        failed.extend(g.v6.into_iter().map(IpNet::V6));
                    }
                }
            }
            if g.source != NONE && out.len() > start {
                match sources.last_mut() {
                    Some((s, r)) if *s == g.source && r.end == start => r.end = out.len(),
                    _ => sources.push((g.source, start..out.len())),
                }
            }
        }
        failed
    }
}

/// End-of-RIB for every negotiated family (RFC 4724 §2).
pub(crate) fn end_of_rib(ctx: &ExportContext, out: &mut BytesMut) {
    let b = UpdateBuilder::new(&ctx.negotiated);
    for (on, family) in [
        (ctx.negotiated.ipv4_unicast, AfiSafi::IPV4_UNICAST),
        (ctx.negotiated.ipv6_unicast, AfiSafi::IPV6_UNICAST),
    ] {
        if on {
            report(b.end_of_rib(family, out).map(|()| 1), "End-of-RIB");
        }
    }
}

fn report(r: Result<usize, crate::wire::EncodeError>, what: &str) {
    if let Err(e) = r {
        warn!("cannot encode {what}: {e}");
    }
}
