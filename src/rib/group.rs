//! Update groups: peers whose UPDATEs are byte-identical share one encoding.
//!
//! Peers with the same export key (same negotiated session options, same
//! next hop self addresses, same client role, same kind of session: link or
//! multihop; at a reflector over loopback sessions, every client) form a
//! group. Sessions with ADD-PATH send are encoded alone (their paths come
//! from [`super::addpath_out`]). The flush queues a changed prefix
//! once for the group instead of once per member; when a member that follows
//! the group's stream can take more, the group encodes the next entry (one
//! chunk of UPDATEs, at most `budget` bytes, what the Loc-RIB says now) and
//! every following member sends the same [`Bytes`] (refcounted, never
//! copied). The only per-member difference at a reflector is "never back to
//! the sender" (RFC 4456 §6): an entry records which byte ranges carry which
//! source's routes, and that source's member sends the entry without them.
//!
//! A member that falls [`MAX_BEHIND`] entries behind the newest leaves the
//! stream: the prefixes of the entries it has not taken, and those queued
//! for the group, go to its own queue, and it catches up from its own
//! Adj-RIB-Out diff like a peer outside any group (the first table of a new
//! session is sent that way too). Once its own queue is empty it follows the
//! stream again from its newest entry. Entries stay until every following
//! member took them, so the stream holds at most [`MAX_BEHIND`] chunks per
//! group whatever the number of members, and a slow member never holds back
//! the others.

use super::adj_out::{AdjRibOut, DestQueue};
use super::export::ExportContext;
use super::loc_rib::{LocRib, NONE};
use super::PeerId;
use crate::wire::Negotiated;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// Entries a following member may be behind the newest before it leaves the stream.
pub(crate) const MAX_BEHIND: usize = 8;

/// What makes two peers' UPDATEs identical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupKey {
    negotiated: Negotiated,
    local_v4: Option<Ipv4Addr>,
    local_v6: Option<Ipv6Addr>,
    rr_client: bool,
    /// Multihop sessions carry the overlay, link sessions the loopbacks.
    multihop: bool,
}

impl GroupKey {
    pub fn rr_client(&self) -> bool {
        self.rr_client
    }

    pub fn multihop(&self) -> bool {
        self.multihop
    }

    pub fn new(ctx: &ExportContext, rr_client: bool, multihop: bool) -> GroupKey {
        GroupKey {
            negotiated: ctx.negotiated,
            local_v4: ctx.local_v4,
            local_v6: ctx.local_v6,
            rr_client,
            multihop,
        }
    }
}

/// One chunk of the group's stream.
#[derive(Debug)]
pub(crate) struct Entry {
    pub bytes: Bytes,
    /// Byte ranges of announcements per source peer (sorted by source).
    pub sources: Vec<(u32, Range<usize>)>,
    /// What the entry tells: (dest id, export id, source). Each holds a
    /// reference on the export and on the dest until the entry goes.
    pub changes: Vec<(u32, u32, u32)>,
    /// Following members that have not taken it yet.
    pending: usize,
}

#[derive(Debug)]
pub(crate) struct UpdateGroup {
    pub key: GroupKey,
    /// An export context of the key (every member's encodes the same).
    pub ctx: ExportContext,
    pub members: Vec<PeerId>,
    /// Members following the stream.
    pub following: usize,
    /// Prefixes changed since the last entry was encoded.
    pub queue: DestQueue,
    /// What the stream last said per prefix: a change back to it is no change.
    pub sent: AdjRibOut,
    pub stream: VecDeque<Entry>,
    /// Sequence number of `stream[0]`.
    pub base: u64,
}

impl UpdateGroup {
    pub fn new(key: GroupKey, ctx: ExportContext) -> UpdateGroup {
        UpdateGroup {
            key,
            ctx,
            members: Vec::new(),
            following: 0,
            queue: DestQueue::default(),
            sent: AdjRibOut::default(),
            stream: VecDeque::new(),
            base: 0,
        }
    }

    /// Whether its sessions carry IPv4, IPv6, go to clients, are multihop.
    pub fn families(&self) -> (bool, bool, bool, bool) {
        (
            self.ctx.v4_route_next_hop().is_some(),
            self.ctx.v6_route_next_hop().is_some(),
            self.key.rr_client,
            self.key.multihop,
        )
    }

    /// Sequence number after the newest entry.
    pub fn end(&self) -> u64 {
        self.base + self.stream.len() as u64
    }

    pub fn entry(&self, seq: u64) -> Option<&Entry> {
        self.stream.get(seq.checked_sub(self.base)? as usize)
    }

    /// Appends an entry every following member is to take.
    pub fn push(
        &mut self,
        bytes: Bytes,
        sources: Vec<(u32, Range<usize>)>,
        changes: Vec<(u32, u32, u32)>,
        loc: &mut LocRib,
    ) {
        for &(id, export, _) in &changes {
            hold(loc, id, export);
        }
        self.stream.push_back(Entry {
            bytes,
            sources,
            changes,
            pending: self.following,
        });
        self.trim(loc);
    }

    /// A following member took (or gave up) entries `from..to`.
    pub fn taken(&mut self, from: u64, to: u64, loc: &mut LocRib) {
        for seq in from..to {
            if let Some(i) = seq.checked_sub(self.base) {
                if let Some(e) = self.stream.get_mut(i as usize) {
                    e.pending = e.pending.saturating_sub(1);
                }
            }
        }
        self.trim(loc);
    }

    /// Drops the entries no following member still needs.
    fn trim(&mut self, loc: &mut LocRib) {
        // A withdrawal's last hold going frees its dest: its index slot is
        // fetched a few changes ahead (a session's whole table at its end).
        const AHEAD: usize = 8;
        while self.stream.front().is_some_and(|e| e.pending == 0) {
            let e = self.stream.pop_front().expect("front");
            self.base += 1;
            for (k, &(id, export, _)) in e.changes.iter().enumerate() {
                if let Some(&(next, NONE, _)) = e.changes.get(k + AHEAD) {
                    loc.prefetch_index_of(next);
                }
                unhold(loc, id, export);
            }
        }
    }

    /// The group has no member left: its stream and queue go.
    pub fn clear(&mut self, loc: &mut LocRib) {
        for e in std::mem::take(&mut self.stream) {
            for (id, export, _) in e.changes {
                unhold(loc, id, export);
            }
        }
        self.queue = DestQueue::default();
        self.sent.clear(loc);
        self.following = 0;
    }
}

fn hold(loc: &mut LocRib, id: u32, export: u32) {
    loc.exports.inc(export);
    loc.hold(id);
}

fn unhold(loc: &mut LocRib, id: u32, export: u32) {
    loc.exports.dec(export);
    loc.unhold(id);
}

/// The parts of `entry` member `peer` sends: everything but the
/// announcements of its own routes (RFC 4456 §6: never back to the sender).
pub(crate) fn member_view(entry: &Entry, peer: PeerId, out: &mut Vec<Bytes>) {
    let own: Vec<&Range<usize>> = entry
        .sources
        .iter()
        .filter(|(s, _)| *s as usize == peer)
        .map(|(_, r)| r)
        .collect();
    let mut at = 0;
    for r in own {
        if r.start > at {
            out.push(entry.bytes.slice(at..r.start));
        }
        at = r.end;
    }
    if at < entry.bytes.len() {
        out.push(entry.bytes.slice(at..));
    }
}

/// Whether the group's members may see a best path from `source` (RFC 4456
/// §6 without the sender exception, which [`member_view`] applies).
pub(crate) fn group_eligible(source: u32, from_client: bool, to_client: bool) -> bool {
    match source {
        NONE => false,
        super::loc_rib::LOCAL => true,
        _ => to_client || from_client,
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
