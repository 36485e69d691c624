//! Adj-RIB-Out of one peer (RFC 4271 §3.2): what we last sent, so only changes
//! go out; and the batch of changes of one flush, packed into UPDATEs by
//! attribute set.

use super::export::ExportContext;
use super::intern::FastMap;
use crate::wire::{AfiSafi, PathAttributes, UpdateBuilder};
use bytes::BytesMut;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::sync::Arc;
use tracing::warn;

/// What a peer was sent is not stored per prefix: it is the export of the
/// best path whenever the peer may receive it (kept so by every flush), so a
/// flush compares the old and new best to find what to send. Per peer only
/// the count of advertised prefixes is kept.
#[derive(Debug, Default)]
pub(crate) struct AdjRibOut {
    pub advertised: usize,
}

impl AdjRibOut {
    pub fn len(&self) -> usize {
        self.advertised
    }
}

struct Group {
    attrs: Arc<PathAttributes>,
    v4: Vec<Ipv4Net>,
    v6: Vec<Ipv6Net>,
}

/// Changes for one peer, grouped by outgoing attribute set (export id).
#[derive(Default)]
pub(crate) struct OutBatch {
    index: FastMap<u32, usize>,
    /// The last (export id, group), a cache: neighbouring prefixes share sets.
    last: Option<(u32, usize)>,
    groups: Vec<Group>,
    withdraw_v4: Vec<Ipv4Net>,
    withdraw_v6: Vec<Ipv6Net>,
}

impl OutBatch {
    pub fn announce(&mut self, prefix: IpNet, export: u32, attrs: &Arc<PathAttributes>) {
        let i = match self.last {
            Some((e, i)) if e == export => i,
            _ => {
                let groups = &mut self.groups;
                let i = *self.index.entry(export).or_insert_with(|| {
                    groups.push(Group {
                        attrs: attrs.clone(),
                        v4: Vec::new(),
                        v6: Vec::new(),
                    });
                    groups.len() - 1
                });
                self.last = Some((export, i));
                i
            }
        };
        match prefix {
            IpNet::V4(p) => self.groups[i].v4.push(p),
            IpNet::V6(p) => self.groups[i].v6.push(p),
        }
    }

    pub fn withdraw(&mut self, prefix: IpNet) {
        match prefix {
            IpNet::V4(p) => self.withdraw_v4.push(p),
            IpNet::V6(p) => self.withdraw_v6.push(p),
        }
    }

    /// Appends the UPDATEs: withdrawals first, then one packed run per
    /// attribute set and family, in prefix order (deterministic output).
    pub fn encode(mut self, ctx: &ExportContext, out: &mut BytesMut) {
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
        let first = |g: &Group| (g.v4.first().copied(), g.v6.first().copied());
        if !self.groups.is_sorted_by_key(first) {
            self.groups.sort_unstable_by_key(first);
        }
        for g in self.groups {
            if !g.v4.is_empty() {
                if let Some(nh) = ctx.v4_route_next_hop() {
                    report(b.announce_v4(&g.attrs, nh, g.v4, out), "IPv4 UPDATE");
                }
            }
            if !g.v6.is_empty() {
                if let Some(nh) = ctx.v6_route_next_hop() {
                    report(b.announce_v6(&g.attrs, nh, g.v6, out), "IPv6 UPDATE");
                }
            }
        }
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
