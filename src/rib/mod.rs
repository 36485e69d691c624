//! Routing information, sans-IO: per peer Adj-RIB-In (kept before and after
//! import policy), Loc-RIB with the best path per prefix, per peer
//! Adj-RIB-Out; UPDATE values in, encoded UPDATEs out.
//!
//! Calls on [`Rib`] only record work and mark prefixes dirty; [`Rib::flush`]
//! runs the decision for the dirty prefixes in one batch and queues the
//! changed ones per peer; [`Rib::poll_transmit`] encodes a peer's queue, packed
//! by attribute set, when its connection can take more. No clock, no tokio.
//!
//! Files: [`adj_in`] / [`adj_out`] the per-peer tables, [`loc_rib`] the
//! candidates per prefix, [`import`] the import rules (loopbacks only, loop
//! checks, MED + link cost, import limit), [`decision`] the selection steps,
//! [`lost_routers`] paths through a router whose session just went down,
//! [`reflect`] route reflection and outgoing attributes, [`overlay`] what
//! travels on link and multihop sessions, [`resolve`] overlay next hops over
//! the underlay, [`flush`] the batch, [`fib_out`] the pull of kernel routes,
//! [`transmit`] the pull of UPDATEs per peer,
//! [`explain`] the views for operators, [`export`] encoding helpers.

mod addpath_out;
mod adj_in;
mod adj_out;
pub mod decision;
mod dump;
mod explain;
mod export;
mod fib_out;
pub use fib_out::BestRoute;
mod flush;
mod forwarding;
mod graceful;
pub use graceful::{Release, RestartGrace};
mod group;
mod huge_pages;
mod import;
mod intern;
pub(crate) use intern::FastMap;
mod loc_rib;
mod lost_routers;
pub use lost_routers::LOST_ROUTER_WINDOW;
mod nexthop;
mod overlay;
mod policy;
pub mod reflect;
mod refresh;
mod resolve;
mod transmit;

#[cfg(test)]
mod tests;

pub use adj_in::{AdjRibIn, InRoute};
pub use decision::{Candidate, Step};
pub use explain::{CandidateExplanation, Explanation, FilteredExplanation, LossExplanation};
pub use export::{
    announce_originated, count_messages, end_of_rib, originated_attributes, split_messages,
    withdraw_originated, ExportContext,
};
pub use import::Learned;
pub use loc_rib::Source;
pub use policy::{FilterReason, ImportPolicy};
pub use resolve::Resolution;

use crate::config::{Config, ImportLimitAction, Loopbacks, Neighbor, Overlay, UNKNOWN_LINK_COST};
use crate::wire::AfiSafi;
use bytes::Bytes;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Our own routes go from `old` to `now` (marked, or no longer, in the table).
fn set_local(loc: &mut loc_rib::LocRib, old: &BTreeSet<IpNet>, now: &BTreeSet<IpNet>) {
    for p in old.difference(now) {
        loc.set_local(*p, false);
    }
    for p in now.difference(old) {
        if !loc.set_local(*p, true) {
            tracing::warn!(prefix = %p, "route table full: prefix not originated");
        }
    }
}

/// Index of a peer, in the order of [`Rib::add_peer`] (the runtime uses the
/// neighbor's position in the configuration).
pub type PeerId = usize;

/// Node-wide settings of the RIB.
#[derive(Clone, Debug)]
pub struct RibConfig {
    pub router_id: Ipv4Addr,
    /// RFC 4456 §7 CLUSTER_ID; `None`: the router id.
    pub cluster_id: Option<Ipv4Addr>,
    pub local_as: u32,
    pub loopbacks: Loopbacks,
}

impl RibConfig {
    pub fn from_config(c: &Config) -> RibConfig {
        RibConfig {
            router_id: c.router_id,
            cluster_id: None,
            local_as: c.local_as,
            loopbacks: c.loopbacks.clone(),
        }
    }
}

/// What the RIB needs to know of one neighbor.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    pub address: IpAddr,
    pub interface: Option<String>,
    /// RFC 4456: a route reflection client (the fabric default).
    pub rr_client: bool,
    /// Link cost added to received MED; `None`: [`UNKNOWN_LINK_COST`].
    pub cost: Option<u32>,
    /// Accepted routes allowed before `import_limit_action`; 0: no limit.
    pub import_limit: u32,
    pub import_limit_action: ImportLimitAction,
    /// Routes kept as filtered at most; past it new ones are dropped and
    /// counted ([`PeerCounts::filtered_dropped`]); 0: no limit.
    pub filtered_limit: u32,
    /// A multihop session to or from a route reflector (issue 12): it carries
    /// the overlay, next hop unchanged; a link session carries the loopbacks.
    pub multihop: bool,
}

impl From<&Neighbor> for PeerConfig {
    fn from(n: &Neighbor) -> PeerConfig {
        PeerConfig {
            name: n.name.clone(),
            address: n.address,
            interface: n.interface.clone(),
            rr_client: n.rr_client,
            cost: n.cost,
            import_limit: n.import_limit,
            import_limit_action: n.import_limit_action,
            filtered_limit: n.filtered_limit,
            multihop: n.multihop.is_some(),
        }
    }
}

/// What [`Rib::flush`] asks the runtime to do.
#[derive(Clone, Debug, PartialEq)]
pub enum RibOutput {
    /// Encoded messages for the peer's current session, in order (only from
    /// [`Rib::transmit_all`]; the runtime pulls with [`Rib::poll_transmit`]).
    Send { peer: PeerId, messages: Vec<Bytes> },
    /// The peer went over its import limit (reported once until it drops
    /// below again). For restart and disable the runtime resets the session
    /// with Cease / Maximum Number of Prefixes Reached (RFC 4486 §4).
    LimitReached {
        peer: PeerId,
        action: ImportLimitAction,
        limit: u32,
    },
    /// The forwarding decision for `prefix` changed (`None`: no route, or our
    /// own); only from [`Rib::fib_all`] (the runtime pulls with [`Rib::poll_fib`]).
    BestChanged {
        prefix: IpNet,
        best: Option<(IpAddr, PeerId)>,
    },
}

/// Per peer route counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerCounts {
    /// Routes received and held (accepted + filtered).
    pub received: usize,
    pub accepted: usize,
    pub filtered: usize,
    pub advertised: usize,
    /// The import limit (0: none).
    pub limit: u32,
    /// The limit of routes kept as filtered (0: none).
    pub filtered_limit: u32,
    /// Filtered routes not kept because of `filtered_limit`, since start.
    pub filtered_dropped: u64,
    /// UPDATEs with routes but no LOCAL_PREF on this session (iBGP wants it).
    pub missing_local_pref: u64,
    /// End-of-RIB received on this session (RFC 4724), per family.
    pub end_of_rib_ipv4: bool,
    pub end_of_rib_ipv6: bool,
    /// Graceful restart helper (RFC 4724 §4.2): the peer's routes are kept
    /// as stale after its session dropped, until its End-of-RIB or a deadline.
    pub graceful_helper: bool,
    /// Routes marked stale (graceful restart or enhanced route refresh).
    pub stale: usize,
    /// Seconds until the stale routes are purged (set by [`Rib::counts_at`]).
    pub stale_left_s: Option<u64>,
    /// Restarting speaker (RFC 4724 §4.1): nothing is sent to this
    /// established peer until the End-of-RIBs awaited or the deferral timer
    /// (set by the RIB task, which owns our restart).
    pub output_deferred: bool,
}

/// An established session as export sees it.
#[derive(Clone, Debug)]
struct Session {
    ctx: ExportContext,
    remote_id: Ipv4Addr,
}

struct Peer {
    cfg: PeerConfig,
    session: Option<Session>,
    adj_in: AdjRibIn,
    adj_out: adj_out::AdjRibOut,
    /// ADD-PATH send side (RFC 7911): every path, on families negotiated for it.
    addpath_out: addpath_out::AddPathOut,
    /// Over the import limit and reported; cleared when the count drops below.
    limit_hit: bool,
    /// Helping a graceful restart: stale routes go at this time ([`graceful`]).
    stale_until: Option<std::time::Instant>,
    /// Filtered routes dropped by `filtered_limit` (kept across sessions).
    filtered_dropped: u64,
}

impl Peer {
    fn link_cost(&self) -> u32 {
        self.cfg.cost.unwrap_or(UNKNOWN_LINK_COST)
    }

    fn remote_id(&self) -> Ipv4Addr {
        self.session
            .as_ref()
            .map_or(Ipv4Addr::UNSPECIFIED, |s| s.remote_id)
    }
}

/// The routing table of one node. See the module documentation.
pub struct Rib {
    cfg: RibConfig,
    cluster_id: Ipv4Addr,
    policy: ImportPolicy,
    peers: Vec<Peer>,
    loc: loc_rib::LocRib,
    originated: BTreeSet<IpNet>,
    interner: intern::Interner,
    /// Attributes of our own routes (RFC 4271 §5.1; no ORIGINATOR_ID, no CLUSTER_LIST).
    local_attrs: Arc<crate::wire::PathAttributes>,
    /// Their export id (held for the life of the Rib).
    local_export: u32,
    /// Outputs recorded outside flush (import limit reports).
    pending: Vec<RibOutput>,
    /// Whether flush queues kernel route changes ([`fib_out`]).
    fib_outputs: bool,
    /// A route replacing another goes to the peers once the kernel holds it (a FIB runs).
    export_after_kernel: bool,
    /// Per batch pulled by the FIB and not yet applied: its dests whose
    /// announcement waits for it, oldest first ([`Rib::fib_applied`]).
    fib_inflight: std::collections::VecDeque<Vec<u32>>,
    /// Prefixes the kernel does not hold: not exported (see [`forwarding`]).
    forwarding: forwarding::Forwarding,
    /// `[overlay]` ranges: carried on multihop sessions only.
    overlay: Overlay,
    /// CLUSTER_ID of overlay reflection (`[overlay] cluster_id`, else [`Rib::cluster_id`]).
    overlay_cluster_id: Ipv4Addr,
    /// Overlay prefixes this node originates.
    overlay_originated: BTreeSet<IpNet>,
    /// Next hop -> overlay prefixes, watched addresses, overlay FIB state ([`resolve`]).
    resolver: resolve::Resolver,
    /// Path ids of every ADD-PATH session ([`addpath_out`]).
    path_ids: addpath_out::PathIds,
    /// Sessions whose UPDATEs are identical share their encoding ([`group`]).
    groups: Vec<group::UpdateGroup>,
    /// Outgoing attribute sets made since the last flush ([`flush::ExportCache`]).
    export_cache: flush::ExportCache,
    /// One UPDATE's announced prefixes while they are imported: (prefix,
    /// path id, from MP_REACH), kept for its buffer (up to 4096 of them).
    announced: Vec<(IpNet, Option<u32>, bool)>,
    /// Routers whose link session just went down: paths through them are
    /// avoided for a moment ([`lost_routers`]).
    lost: lost_routers::LostRouters,
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Rib {
        let mut interner = intern::Interner::default();
        let local_attrs = interner.intern(originated_attributes());
        let mut loc = loc_rib::LocRib::default();
        let local_export = loc.exports.intern(local_attrs.clone());
        loc.exports.inc(local_export);
        let cluster_id = cfg.cluster_id.unwrap_or(cfg.router_id);
        Rib {
            cluster_id,
            overlay: Overlay::default(),
            overlay_cluster_id: cluster_id,
            overlay_originated: BTreeSet::new(),
            resolver: resolve::Resolver::default(),
            path_ids: addpath_out::PathIds::default(),
            policy: ImportPolicy {
                loopbacks: cfg.loopbacks.clone(),
            },
            cfg,
            peers: Vec::new(),
            loc,
            originated: BTreeSet::new(),
            interner,
            local_attrs,
            local_export,
            pending: Vec::new(),
            fib_outputs: true,
            export_after_kernel: false,
            fib_inflight: std::collections::VecDeque::new(),
            forwarding: forwarding::Forwarding::default(),
            groups: Vec::new(),
            export_cache: flush::ExportCache::default(),
            announced: Vec::new(),
            lost: lost_routers::LostRouters::default(),
        }
    }

    /// Whether [`Rib::flush`] queues kernel route changes for [`Rib::poll_fib`]
    /// (default on); off when nothing feeds a kernel FIB.
    pub fn set_fib_outputs(&mut self, on: bool) {
        self.fib_outputs = on;
    }

    /// A new router id and local AS (reload). The CLUSTER_ID follows the
    /// router id unless configured (RFC 4456 §7), and cached outgoing sets
    /// carry the old one. The runtime restarts every session with the new
    /// OPEN, so every learned route comes back and is sent again under it.
    pub fn set_identity(&mut self, router_id: Ipv4Addr, local_as: u32) {
        self.cfg.router_id = router_id;
        self.cfg.local_as = local_as;
        self.cluster_id = self.cfg.cluster_id.unwrap_or(router_id);
        self.overlay_cluster_id = self.overlay.cluster_id.unwrap_or(self.cluster_id);
        self.export_cache.clear();
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    pub fn add_peer(&mut self, cfg: PeerConfig) -> PeerId {
        self.peers.push(Peer {
            cfg,
            session: None,
            adj_in: AdjRibIn::default(),
            adj_out: adj_out::AdjRibOut::default(),
            addpath_out: addpath_out::AddPathOut::default(),
            limit_hit: false,
            stale_until: None,
            filtered_dropped: 0,
        });
        self.peers.len() - 1
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The session with `peer` is established: the whole table, then
    /// End-of-RIB per family, is queued for [`Rib::poll_transmit`].
    pub fn peer_up(&mut self, peer: PeerId, ctx: ExportContext, remote_id: Ipv4Addr) {
        if self.peers.get(peer).is_none_or(|p| p.session.is_some()) {
            self.peer_down(peer);
        }
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.addpath_out.start(&ctx);
        // Update groups share encodings between sessions of one kind (link
        // sessions: the loopbacks; multihop: the overlay); a session with
        // ADD-PATH send is encoded alone.
        let grouped = ctx.negotiated.add_path_send == crate::wire::Families::NONE;
        let g = grouped.then(|| {
            let key = group::GroupKey::new(&ctx, p.cfg.rr_client, p.cfg.multihop);
            let g = match self.groups.iter().position(|g| g.key == key) {
                Some(g) => g,
                None => match self.groups.iter().position(|g| g.members.is_empty()) {
                    Some(g) => {
                        self.groups[g] = group::UpdateGroup::new(key, ctx.clone());
                        g
                    }
                    None => {
                        self.groups.push(group::UpdateGroup::new(key, ctx.clone()));
                        self.groups.len() - 1
                    }
                },
            };
            self.groups[g].members.push(peer);
            g
        });
        let p = &mut self.peers[peer];
        p.session = Some(Session { ctx, remote_id });
        // The first table from its own queue, then the group's stream.
        p.adj_out.group = g;
        p.adj_out.sync = Some(0);
        p.adj_out.eor = true;
    }

    /// `peer` leaves its update group (session down).
    fn leave_group(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let Some(g) = p.adj_out.group.take() else {
            return;
        };
        let group = &mut self.groups[g];
        if let Some(c) = p.adj_out.cursor.take() {
            group.following -= 1;
            let end = group.end();
            group.taken(c, end, &mut self.loc);
        }
        group.members.retain(|&m| m != peer);
        if group.members.is_empty() {
            group.clear(&mut self.loc);
        }
    }

    /// The update group of `peer`'s session, and whether it follows the
    /// group's stream (tests, `show`).
    pub fn update_group(&self, peer: PeerId) -> Option<(usize, bool)> {
        let q = &self.peers.get(peer)?.adj_out;
        Some((q.group?, q.cursor.is_some()))
    }

    /// The session ended: its routes leave the Loc-RIB (RFC 4271 §9.1).
    /// The runtime uses [`Rib::peer_down_at`], which also avoids paths
    /// through the peer's router for a moment.
    pub fn peer_down(&mut self, peer: PeerId) {
        self.leave_group(peer);
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.adj_out.clear(&mut self.loc);
        p.addpath_out.clear(&mut self.loc);
        if !p.adj_in.is_empty() {
            let loc = &mut self.loc;
            let pid = peer as u32;
            for id in 0..loc.slab.len() as u32 {
                if !loc.slab[id as usize].live() {
                    continue;
                }
                let mut any = false;
                loop {
                    // Every path of the peer (several with ADD-PATH).
                    let old = loc.remove_entry(id, pid, loc_rib::NONE);
                    if old == loc_rib::NONE {
                        break;
                    }
                    any = true;
                    if loc.routes.get(old).verdict.is_ok() {
                        loc.touch(id);
                    }
                    loc.routes.dec(old);
                }
                if any {
                    loc.release(id);
                }
            }
            loc.routes.sweep();
        }
        p.adj_in.clear();
        p.session = None;
        p.limit_hit = false;
        p.stale_until = None;
    }

    /// The loopbacks this node originates; prefixes outside the loopback
    /// ranges are ignored (only loopbacks travel).
    pub fn set_originated(&mut self, now: BTreeSet<IpNet>) {
        let now: BTreeSet<IpNet> = now
            .into_iter()
            .filter(|p| self.policy.check(*p).is_ok())
            .collect();
        if now != self.originated {
            // Our overlay routes carry one of these as next hop.
            for p in &self.overlay_originated {
                self.loc.set_local(*p, true);
            }
        }
        set_local(&mut self.loc, &self.originated, &now);
        self.originated = now;
    }

    pub fn originated(&self) -> &BTreeSet<IpNet> {
        &self.originated
    }

    /// A new link cost for `peer` (`None`: unknown): the MED of its routes
    /// changes, so only those prefixes are decided again.
    pub fn set_link_cost(&mut self, peer: PeerId, cost: Option<u32>) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.cfg.cost == cost {
            return;
        }
        p.cfg.cost = cost;
        if p.adj_in.accepted_count() == 0 {
            return;
        }
        let loc = &mut self.loc;
        for id in 0..loc.slab.len() as u32 {
            if !loc.slab[id as usize].live() {
                continue;
            }
            if loc
                .peer_routes(id, peer as u32)
                .any(|r| loc.routes.get(r).verdict.is_ok())
            {
                loc.touch(id);
            }
        }
    }

    /// A reloaded import limit (`kittbgpd reload`): a higher one admits routes
    /// held back by the old one at once; a lower one applies to new routes.
    pub fn set_import_limit(&mut self, peer: PeerId, limit: u32, action: ImportLimitAction) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.cfg.import_limit = limit;
        p.cfg.import_limit_action = action;
        if limit > 0 {
            import::admit_held(&mut self.loc, p, peer as u32);
        }
    }

    /// The link cost in force for `peer` (`None`: unknown).
    pub fn link_cost(&self, peer: PeerId) -> Option<u32> {
        self.peers.get(peer).and_then(|p| p.cfg.cost)
    }

    /// The Adj-RIB-In of `peer` (accepted and filtered routes), in prefix order.
    pub fn adj_rib_in(&self, peer: PeerId) -> Vec<(IpNet, InRoute)> {
        let mut v: Vec<(IpNet, InRoute)> = self
            .loc
            .ids()
            .flat_map(|id| {
                self.loc
                    .peer_routes(id, peer as u32)
                    .map(move |r| (self.loc.prefix(id), self.loc.routes.get(r).clone()))
            })
            .collect();
        v.sort_by_key(|(p, r)| (*p, r.path_id));
        v
    }

    pub fn counts(&self, peer: PeerId) -> PeerCounts {
        self.peers
            .get(peer)
            .map_or_else(PeerCounts::default, |p| PeerCounts {
                received: p.adj_in.len(),
                limit: p.cfg.import_limit,
                accepted: p.adj_in.accepted_count(),
                filtered: p.adj_in.filtered_count(),
                advertised: p.adj_out.len(),
                filtered_limit: p.cfg.filtered_limit,
                filtered_dropped: p.filtered_dropped,
                missing_local_pref: p.adj_in.missing_local_pref(),
                end_of_rib_ipv4: p.adj_in.end_of_rib().contains(&AfiSafi::IPV4_UNICAST),
                end_of_rib_ipv6: p.adj_in.end_of_rib().contains(&AfiSafi::IPV6_UNICAST),
                graceful_helper: p.stale_until.is_some(),
                stale: p.adj_in.stale.iter().map(|(_, s)| s.len()).sum(),
                stale_left_s: None,
                output_deferred: false,
            })
    }

    /// [`counts`](Self::counts) with the time left before the stale routes go.
    pub fn counts_at(&self, peer: PeerId, now: std::time::Instant) -> PeerCounts {
        let mut c = self.counts(peer);
        c.stale_left_s = self
            .peers
            .get(peer)
            .and_then(|p| p.stale_until)
            .map(|t| t.saturating_duration_since(now).as_secs());
        c
    }

    /// Whether a flush has work to do.
    pub fn has_work(&self) -> bool {
        self.loc.has_dirty() || !self.pending.is_empty()
    }

    /// Distinct attribute sets held (received and outgoing).
    pub fn attribute_sets(&self) -> usize {
        self.interner.len()
    }

    /// Prefixes with a best path (walks the Loc-RIB).
    pub fn len(&self) -> usize {
        self.loc
            .slab
            .iter()
            .filter(|d| d.live() && d.has_best())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn peer_name(&self, source: Source) -> String {
        match source {
            Source::Local => "self".into(),
            Source::Peer(p) => self
                .peers
                .get(p)
                .map_or_else(|| format!("peer{p}"), |p| p.cfg.name.clone()),
        }
    }
}
