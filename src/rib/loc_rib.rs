//! The route table: Loc-RIB and every peer's Adj-RIB-In in one compact slab.
//!
//! One [`Dest`] (20 bytes) per prefix, found through [`PrefixIndex`] (4 bytes a
//! slot). A dest holds the routes received for it as route ids; a route id
//! names an interned [`InRoute`] (peer, next hop, shared attribute set,
//! import verdict) in [`Routes`], so a million prefixes announced with a few
//! thousand attribute sets cost a few thousand `InRoute`s. Accepted entries
//! are the Loc-RIB candidates, filtered ones stay for the operator views. The
//! selected path is kept as (route id, export id), its source being the
//! route's peer (or a flag for our own route); an export id names an
//! interned outgoing attribute set in [`Exports`]. What each peer was sent is
//! an export id per prefix in its Adj-RIB-Out (`adj_out`), so a peer that
//! takes UPDATEs slowly can lag behind the selection.
//! Changes only mark prefixes dirty; the decision runs in batches.

use super::adj_in::InRoute;
use super::adj_out::DestQueue;
use super::intern::FastHasher;
use super::policy::FilterReason;
use super::PeerId;
use crate::wire::PathAttributes;
use hashbrown::HashTable;
use ipnet::IpNet;
use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Where a path comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Originated by this node.
    Local,
    Peer(PeerId),
}

/// No peer / route / export.
pub(crate) const NONE: u32 = u32::MAX;
/// `best_src` of our own route.
pub(crate) const LOCAL: u32 = u32::MAX - 1;

/// A route received from a peer for a prefix: the route id indexes
/// [`Routes`], whose [`InRoute`] names the peer. Dests store route ids only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    route: u32,
    peer: u32,
}

impl Entry {
    /// The peer id.
    pub fn peer(&self) -> u32 {
        self.peer
    }

    pub fn route(&self) -> u32 {
        self.route
    }
}

const F_LOCAL: u8 = 1;
const F_DIRTY: u8 = 2;
/// More than one entry: their route ids live in `LocRib::more`, in the slot `first` names.
const F_MORE: u8 = 4;
const F_LIVE: u8 = 8;
/// An IPv6 prefix: `addr` indexes `LocRib::v6`.
const F_V6: u8 = 16;
/// The selected path is our own route.
const F_BEST_LOCAL: u8 = 32;

/// One prefix. 20 bytes: the prefix (an IPv4 address in place, an IPv6 one
/// by index), the routes received for it (route ids: an [`InRoute`] names
/// its peer), the selected path, and how many Adj-RIB-Outs hold the prefix
/// advertised.
#[derive(Clone, Debug)]
pub(crate) struct Dest {
    /// The IPv4 address, or the index of the IPv6 one in `LocRib::v6`.
    addr: u32,
    /// The only route received ([`NONE`]: none), or with [`F_MORE`] the
    /// slot of `LocRib::more` holding them.
    first: u32,
    /// Route of the selected path ([`NONE`] for none or our own route,
    /// [`F_BEST_LOCAL`]); its peer is the source.
    best_route: u32,
    /// Outgoing attributes of the selected path.
    best_export: u32,
    /// Adj-RIB-Outs (sessions and update groups) holding the prefix
    /// advertised: such a dest is not freed (its id must keep naming the
    /// prefix until withdrawn).
    held: u16,
    len: u8,
    flags: u8,
}

impl Dest {
    pub fn local(&self) -> bool {
        self.flags & F_LOCAL != 0
    }

    pub fn live(&self) -> bool {
        self.flags & F_LIVE != 0
    }

    pub fn is_v6(&self) -> bool {
        self.flags & F_V6 != 0
    }

    /// Whether a path is selected.
    pub fn has_best(&self) -> bool {
        self.best_route != NONE || self.flags & F_BEST_LOCAL != 0
    }

    /// Route of the selected path ([`NONE`] for our own route or none).
    pub fn best_route(&self) -> u32 {
        self.best_route
    }

    /// Outgoing attributes of the selected path.
    pub fn best_export(&self) -> u32 {
        self.best_export
    }

    /// Whether this dest is `p` (IPv6 addresses read in `v6`).
    fn is(&self, p: &IpNet, v6: &[Ipv6Addr]) -> bool {
        match p {
            IpNet::V4(n) => {
                self.flags & F_V6 == 0
                    && self.len == n.prefix_len()
                    && self.addr == u32::from(n.addr())
            }
            IpNet::V6(n) => {
                self.flags & F_V6 != 0
                    && self.len == n.prefix_len()
                    && v6.get(self.addr as usize) == Some(&n.addr())
            }
        }
    }

    /// The prefix; a freed dest keeps naming its last one (its IPv6
    /// address stays its own until the slot is reused).
    fn prefix(&self, v6: &[Ipv6Addr]) -> IpNet {
        if self.flags & F_V6 == 0 {
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(self.addr), self.len).unwrap_or_default())
        } else {
            let a = v6
                .get(self.addr as usize)
                .copied()
                .unwrap_or(Ipv6Addr::UNSPECIFIED);
            IpNet::V6(Ipv6Net::new(a, self.len).unwrap_or_default())
        }
    }
}

/// What the index reads to compare keys: the dests and the IPv6 addresses.
#[derive(Clone, Copy)]
struct Keys<'a> {
    slab: &'a [Dest],
    v6: &'a [Ipv6Addr],
}

/// prefix -> dest id: open addressing with linear probing over `u32` slots,
/// each an id (low [`ID_BITS`]) and a few hash bits, so probing rarely
/// touches the slab. Keys are compared in the slab. A removal leaves a
/// tombstone (one probe, nothing moved: a session of a million routes goes
/// without re-hashing the runs behind each); an insert reuses the first
/// tombstone on its way, and the table is rebuilt once live keys and
/// tombstones fill it to 3/4.
#[derive(Debug, Default)]
pub(crate) struct PrefixIndex {
    slots: Vec<u32>,
    len: usize,
    tombs: usize,
}

/// An empty slot: all zero, so a new table is fresh zeroed memory (no
/// fill); a slot holds its id plus one.
const EMPTY: u32 = 0;
/// A removed key's slot: no id (0) under a non-zero tag.
const TOMB: u32 = 1 << ID_BITS;
/// 16.7M prefixes at most; the other 8 bits of a slot are hash bits, so a
/// probe passing an occupied slot reads the slab once in 256 times.
const ID_BITS: u32 = 24;
const ID_MASK: u32 = (1 << ID_BITS) - 1;
/// Most prefixes the table holds (the id field, minus the empty marker).
pub(crate) const MAX_DESTS: usize = ID_MASK as usize;

fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

pub(crate) fn prefix_hash(p: &IpNet) -> u64 {
    match p {
        IpNet::V4(n) => fmix((u64::from(u32::from(n.addr())) << 8) | u64::from(n.prefix_len())),
        IpNet::V6(n) => {
            let a = u128::from(n.addr());
            fmix(
                (a as u64)
                    ^ fmix((a >> 64) as u64 ^ 0x9e37_79b9_7f4a_7c15)
                    ^ (u64::from(n.prefix_len()) << 56),
            )
        }
    }
}

/// Hint that `slots[i]` is read soon (a miss per prefix on big tables;
/// issuing several at once overlaps them).
#[inline(always)]
fn prefetch<T>(slots: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = slots.get(i) {
        // SAFETY: a prefetch is only a hint; the address is inside `slots`.
        #[allow(unused_unsafe)]
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast::<i8>());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slots, i);
}

/// The home slot of hash `h` in a table of `n` slots (the high bits of
/// `h * n`: any `n`, so the table grows by half, not by doubling).
fn home(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
}

impl PrefixIndex {
    fn home(&self, h: u64) -> usize {
        home(h, self.slots.len())
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    fn prefetch(&self, p: &IpNet) {
        if !self.slots.is_empty() {
            prefetch(&self.slots, self.home(prefix_hash(p)));
        }
    }

    /// Hash bits kept in a slot: the low ones (the home slot comes from the high ones).
    fn tag(h: u64) -> u32 {
        (h as u32) << ID_BITS
    }

    /// The slot of dest `id` whose prefix hashes to `h` (never [`EMPTY`]:
    /// ids are below [`MAX_DESTS`]).
    fn slot(h: u64, id: u32) -> u32 {
        Self::tag(h) | (id + 1)
    }

    /// The dest id in occupied slot `s`.
    fn id(s: u32) -> u32 {
        (s & ID_MASK) - 1
    }

    fn find(&self, p: &IpNet, keys: Keys<'_>) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        self.probe(p, prefix_hash(p), keys).ok()
    }

    fn place(&mut self, h: u64, id: u32) {
        let mut i = self.home(h);
        while self.slots[i] != EMPTY {
            i = self.next(i);
        }
        self.slots[i] = Self::slot(h, id);
    }

    /// Room for one more key: rebuilt from the slab when keys and
    /// tombstones fill 3/4 (linear probing gets slow beyond): half as big
    /// again if live keys fill 5/8, else as big (the tombstones go, and at
    /// least 1/8 of the table is free until the next rebuild).
    fn reserve_one(&mut self, keys: Keys<'_>) {
        let slab = keys.slab;
        if (self.len + self.tombs + 1) * 4 > self.slots.len() * 3 {
            let cap = if (self.len + 1) * 8 > self.slots.len() * 5 {
                (self.slots.len() * 3 / 2).max(64)
            } else {
                self.slots.len()
            };
            self.tombs = 0;
            // Zeroed (EMPTY) by the kernel as pages are first touched.
            let slots = vec![EMPTY; cap];
            super::huge_pages::advise(&slots);
            self.slots = slots;
            // Hash a few dests ahead and prefetch their slots.
            const AHEAD: usize = 16;
            let mut hashes = [0u64; AHEAD];
            for (i, d) in slab.iter().enumerate().take(AHEAD) {
                hashes[i] = prefix_hash(&d.prefix(keys.v6));
                prefetch(&self.slots, home(hashes[i], cap));
            }
            for i in 0..slab.len() {
                let h = hashes[i % AHEAD];
                if let Some(next) = slab.get(i + AHEAD) {
                    let nh = prefix_hash(&next.prefix(keys.v6));
                    hashes[i % AHEAD] = nh;
                    prefetch(&self.slots, home(nh, cap));
                }
                if slab[i].live() {
                    self.place(h, i as u32);
                }
            }
        }
    }

    /// One probe: `Ok(id)` of `p`, or `Err(slot)` where it would go (call
    /// [`PrefixIndex::reserve_one`] first).
    fn probe(&self, p: &IpNet, h: u64, keys: Keys<'_>) -> Result<u32, usize> {
        self.probe_slot(p, h, keys)
            .map(|slot| Self::id(self.slots[slot]))
    }

    /// One probe: `Ok(slot)` holding `p`, or `Err(slot)` where it would go
    /// (the first tombstone passed, else the empty slot that ends the run).
    fn probe_slot(&self, p: &IpNet, h: u64, keys: Keys<'_>) -> Result<usize, usize> {
        let tag = Self::tag(h);
        let mut i = self.home(h);
        let mut tomb = None;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return Err(tomb.unwrap_or(i));
            }
            if s & ID_MASK == 0 {
                tomb.get_or_insert(i);
            } else if s & !ID_MASK == tag && keys.slab[Self::id(s) as usize].is(p, keys.v6) {
                return Ok(i);
            }
            i = self.next(i);
        }
    }

    fn fill(&mut self, slot: usize, h: u64, id: u32) {
        if self.slots[slot] == TOMB {
            self.tombs -= 1;
        }
        self.slots[slot] = Self::slot(h, id);
        self.len += 1;
    }

    fn prev(&self, i: usize) -> usize {
        if i == 0 {
            self.slots.len() - 1
        } else {
            i - 1
        }
    }

    /// Removes `p` (present): a tombstone, unless its slot ends the run;
    /// then it and the tombstones just before it are empty again.
    fn remove(&mut self, p: &IpNet, keys: Keys<'_>) {
        let Ok(i) = self.probe_slot(p, prefix_hash(p), keys) else {
            return;
        };
        self.len -= 1;
        if self.slots[self.next(i)] != EMPTY {
            self.slots[i] = TOMB;
            self.tombs += 1;
            return;
        }
        self.slots[i] = EMPTY;
        let mut j = self.prev(i);
        while self.slots[j] == TOMB {
            self.slots[j] = EMPTY;
            self.tombs -= 1;
            j = self.prev(j);
        }
    }
}

/// What makes two values the same for [`Interned`].
pub(crate) trait InternKey {
    type Key: std::hash::Hash + Eq;
    fn key(&self) -> Self::Key;
}

/// What makes two received routes the same: attribute set (by address), next
/// hop, verdict, Path Identifier (RFC 7911; peers number paths per source,
/// so a few ids are shared by many prefixes).
type RouteKey = (usize, Option<IpAddr>, Result<(), FilterReason>, u32, u32);

impl InternKey for InRoute {
    type Key = RouteKey;
    fn key(&self) -> RouteKey {
        (
            Arc::as_ptr(&self.attrs) as usize,
            self.next_hop,
            self.verdict.clone(),
            self.path_id,
            self.peer,
        )
    }
}

/// Outgoing attribute sets are already interned by the attribute interner: the address is the key.
impl InternKey for Arc<PathAttributes> {
    type Key = usize;
    fn key(&self) -> usize {
        Arc::as_ptr(self) as usize
    }
}

/// Values shared by id and reference counted. Ids whose count drops to zero
/// are freed by [`Interned::sweep`], so ids cached during a batch stay valid.
pub(crate) struct Interned<T: InternKey> {
    /// Value and reference count (64 bits: entries times peers can pass 2^32).
    slots: Vec<(Option<T>, u64)>,
    /// Ids by the hash of their value's key; the keys are read in `slots`,
    /// so an entry costs 4 bytes and a control byte, not a copy of the key.
    index: HashTable<u32>,
    free: Vec<u32>,
    zero: Vec<u32>,
}

impl<T: InternKey> Default for Interned<T> {
    fn default() -> Self {
        Interned {
            slots: Vec::new(),
            index: HashTable::new(),
            free: Vec::new(),
            zero: Vec::new(),
        }
    }
}

impl<T: InternKey> std::fmt::Debug for Interned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interned")
            .field("values", &self.index.len())
            .field("free", &self.free.len())
            .finish()
    }
}

fn key_hash<K: Hash>(key: &K) -> u64 {
    let mut h = FastHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// The hash of the key of the value in `slot` (live).
fn slot_hash<T: InternKey>(slots: &[(Option<T>, u64)], id: u32) -> u64 {
    key_hash(&slots[id as usize].0.as_ref().expect("indexed id").key())
}

/// Interned received routes (next hop, attributes, verdict), counted by entries and selected paths.
pub(crate) type Routes = Interned<InRoute>;
/// Interned outgoing attribute sets, counted by selected paths.
pub(crate) type Exports = Interned<Arc<PathAttributes>>;

impl<T: InternKey> Interned<T> {
    pub fn get(&self, id: u32) -> &T {
        self.slots[id as usize]
            .0
            .as_ref()
            .expect("live interned id")
    }

    /// The id of `value` (not counted: call [`Interned::inc`] when stored).
    pub fn intern(&mut self, value: T) -> u32 {
        let key = value.key();
        let hash = key_hash(&key);
        let slots = &self.slots;
        let same = |&id: &u32| {
            slots[id as usize]
                .0
                .as_ref()
                .is_some_and(|v| v.key() == key)
        };
        if let Some(&id) = self.index.find(hash, same) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = (Some(value), 0);
                id
            }
            None => {
                self.slots.push((Some(value), 0));
                (self.slots.len() - 1) as u32
            }
        };
        self.zero.push(id);
        let slots = &self.slots;
        self.index.insert_unique(hash, id, |&i| slot_hash(slots, i));
        id
    }

    pub fn inc(&mut self, id: u32) {
        if id != NONE {
            self.slots[id as usize].1 += 1;
        }
    }

    pub fn dec(&mut self, id: u32) {
        if id != NONE {
            let c = &mut self.slots[id as usize].1;
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.zero.push(id);
            }
        }
    }

    /// Frees values nothing refers to.
    pub fn sweep(&mut self) {
        for id in std::mem::take(&mut self.zero) {
            let (value, refs) = &self.slots[id as usize];
            if *refs != 0 {
                continue;
            }
            let Some(v) = value else {
                continue;
            };
            if let Ok(e) = self.index.find_entry(key_hash(&v.key()), |&i| i == id) {
                e.remove();
            }
            self.slots[id as usize].0 = None;
            self.free.push(id);
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct LocRib {
    pub slab: Vec<Dest>,
    /// The addresses of IPv6 dests, by the index in their `addr`.
    v6: Vec<Ipv6Addr>,
    v6_free: Vec<u32>,
    index: PrefixIndex,
    /// Entries of dests with more than one, by slot (a dest's `first.route`
    /// names its slot while it has [`F_MORE`]): found without a map lookup.
    more: Vec<Vec<u32>>,
    /// Slots of `more` free for reuse.
    more_free: Vec<u32>,
    free: Vec<u32>,
    dirty: Vec<u32>,
    live: usize,
    /// Dests whose kernel route changed, until the FIB pulls them
    /// ([`super::fib_out`]): not freed meanwhile either.
    pub fib_queue: DestQueue,
    /// Dests whose new route is announced once the kernel holds it
    /// ([`super::fib_out`], `Rib::set_export_after_kernel`).
    pub kernel_wait: DestQueue,
    pub routes: Routes,
    pub exports: Exports,
    /// A smaller table limit than [`MAX_DESTS`], for tests.
    pub max_dests: Option<usize>,
}

impl LocRib {
    fn keys(&self) -> Keys<'_> {
        Keys {
            slab: &self.slab,
            v6: &self.v6,
        }
    }

    pub fn find(&self, prefix: &IpNet) -> Option<u32> {
        self.index.find(prefix, self.keys())
    }

    /// The prefix of dest `id`.
    pub fn prefix(&self, id: u32) -> IpNet {
        self.slab[id as usize].prefix(&self.v6)
    }

    /// Whether dest `id` is an IPv6 prefix.
    pub fn is_v6(&self, id: u32) -> bool {
        self.slab[id as usize].is_v6()
    }

    /// Live dests.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Hint that `prefix` is looked up soon.
    pub fn prefetch(&self, prefix: &IpNet) {
        self.index.prefetch(prefix);
    }

    /// Hint that dest `id`'s index slot is read soon (it may be freed).
    pub fn prefetch_index_of(&self, id: u32) {
        if let Some(d) = self.slab.get(id as usize) {
            self.index.prefetch(&d.prefix(&self.v6));
        }
    }

    /// The dest of `prefix`, created if absent; `None` if the table is full
    /// ([`MAX_DESTS`] prefixes).
    pub fn dest(&mut self, prefix: IpNet) -> Option<u32> {
        self.index.reserve_one(Keys {
            slab: &self.slab,
            v6: &self.v6,
        });
        let h = prefix_hash(&prefix);
        let slot = match self.index.probe(&prefix, h, self.keys()) {
            Ok(id) => return Some(id),
            Err(slot) => slot,
        };
        let full = self.free.is_empty()
            && self.slab.len() >= self.max_dests.unwrap_or(MAX_DESTS).min(MAX_DESTS);
        if full {
            return None;
        }
        let id = self.free.pop();
        // The IPv6 address slot of the freed dest reused, if it had one.
        let old_v6 = id
            .map(|id| &self.slab[id as usize])
            .filter(|d| d.flags & F_V6 != 0)
            .map(|d| d.addr);
        let (addr, flags) = match prefix {
            IpNet::V4(n) => {
                self.v6_free.extend(old_v6);
                (u32::from(n.addr()), F_LIVE)
            }
            IpNet::V6(n) => {
                let i = match old_v6.or_else(|| self.v6_free.pop()) {
                    Some(i) => {
                        self.v6[i as usize] = n.addr();
                        i
                    }
                    None => {
                        self.v6.push(n.addr());
                        (self.v6.len() - 1) as u32
                    }
                };
                (i, F_LIVE | F_V6)
            }
        };
        let d = Dest {
            addr,
            first: NONE,
            best_route: NONE,
            best_export: NONE,
            held: 0,
            len: prefix.prefix_len(),
            flags,
        };
        let id = match id {
            Some(id) => {
                self.slab[id as usize] = d;
                id
            }
            None => {
                super::huge_pages::push(&mut self.slab, d);
                (self.slab.len() - 1) as u32
            }
        };
        self.index.fill(slot, h, id);
        self.live += 1;
        Some(id)
    }

    /// Route ids received for dest `id`.
    fn route_ids(&self, id: u32) -> &[u32] {
        let d = &self.slab[id as usize];
        if d.flags & F_MORE != 0 {
            self.more.get(d.first as usize).map_or(&[], Vec::as_slice)
        } else if d.first != NONE {
            std::slice::from_ref(&d.first)
        } else {
            &[]
        }
    }

    /// The routes received for dest `id`, with their peers.
    pub fn entries(&self, id: u32) -> impl Iterator<Item = Entry> + '_ {
        self.route_ids(id).iter().map(|&route| Entry {
            route,
            peer: self.routes.get(route).peer,
        })
    }

    /// The (first) route of `peer` for dest `id`, if any: its only one
    /// unless the session has ADD-PATH.
    pub fn entry(&self, id: u32, peer: u32) -> Option<u32> {
        self.peer_routes(id, peer).next()
    }

    /// The route of `peer` for dest `id` with Path Identifier `path` (RFC
    /// 7911); `None` as `path`: the session has no ADD-PATH, see [`LocRib::entry`].
    pub fn path_entry(&self, id: u32, peer: u32, path: Option<u32>) -> Option<u32> {
        let Some(path) = path else {
            return self.entry(id, peer);
        };
        self.route_ids(id).iter().copied().find(|&r| {
            let route = self.routes.get(r);
            route.peer == peer && route.path_id == path
        })
    }

    /// Routes of `peer` for dest `id` (several with ADD-PATH).
    pub fn peer_routes(&self, id: u32, peer: u32) -> impl Iterator<Item = u32> + '_ {
        self.route_ids(id)
            .iter()
            .copied()
            .filter(move |&r| self.routes.get(r).peer == peer)
    }

    /// Replaces route `old` by `route` (of the same peer), or adds `route`
    /// when `old` is [`NONE`] (counted by the caller). A peer has one entry
    /// per path.
    pub fn set_entry(&mut self, id: u32, old: u32, route: u32) {
        let d = &mut self.slab[id as usize];
        if d.flags & F_MORE != 0 {
            let v = &mut self.more[d.first as usize];
            match v.iter_mut().find(|r| **r == old).filter(|_| old != NONE) {
                Some(r) => *r = route,
                None => v.push(route),
            }
        } else if d.first == NONE || (old != NONE && d.first == old) {
            d.first = route;
        } else {
            let entries = vec![d.first, route];
            let slot = match self.more_free.pop() {
                Some(s) => {
                    self.more[s as usize] = entries;
                    s
                }
                None => {
                    self.more.push(entries);
                    (self.more.len() - 1) as u32
                }
            };
            d.first = slot;
            d.flags |= F_MORE;
        }
    }

    /// Removes `peer`'s route `route`, or its first one when `route` is
    /// [`NONE`] (the caller uncounts it); returns it or [`NONE`].
    pub fn remove_entry(&mut self, id: u32, peer: u32, route: u32) -> u32 {
        let routes = &self.routes;
        let hit = |r: &u32| {
            if route == NONE {
                routes.get(*r).peer == peer
            } else {
                *r == route
            }
        };
        let d = &mut self.slab[id as usize];
        if d.flags & F_MORE != 0 {
            let slot = d.first;
            let Some(v) = self.more.get_mut(slot as usize) else {
                return NONE;
            };
            let Some(i) = v.iter().position(hit) else {
                return NONE;
            };
            let old = v.swap_remove(i);
            if let [last] = v[..] {
                d.first = last;
                d.flags &= !F_MORE;
                self.more[slot as usize] = Vec::new();
                self.more_free.push(slot);
            }
            old
        } else if d.first != NONE && hit(&d.first) {
            std::mem::replace(&mut d.first, NONE)
        } else {
            NONE
        }
    }

    /// Source of the selected path of dest `id`: a peer id, [`LOCAL`] or [`NONE`].
    pub fn best_src(&self, id: u32) -> u32 {
        let d = &self.slab[id as usize];
        if d.flags & F_BEST_LOCAL != 0 {
            LOCAL
        } else if d.best_route == NONE {
            NONE
        } else {
            self.routes.get(d.best_route).peer
        }
    }

    pub fn best_source(&self, id: u32) -> Option<Source> {
        match self.best_src(id) {
            NONE => None,
            LOCAL => Some(Source::Local),
            p => Some(Source::Peer(p as PeerId)),
        }
    }

    /// The selected path of dest `id` is now (source, route, export).
    /// `route` names its source; [`LOCAL`] as `src`: our own route.
    pub fn set_best(&mut self, id: u32, src: u32, route: u32, export: u32) {
        let d = &mut self.slab[id as usize];
        debug_assert!(src == LOCAL || route == NONE || self.routes.get(route).peer == src);
        if src == LOCAL {
            d.flags |= F_BEST_LOCAL;
        } else {
            d.flags &= !F_BEST_LOCAL;
        }
        d.best_route = route;
        d.best_export = export;
    }

    /// One more Adj-RIB-Out holds dest `id` advertised.
    pub fn hold(&mut self, id: u32) {
        let d = &mut self.slab[id as usize];
        // One per session and update group: never near 65535.
        debug_assert!(d.held < u16::MAX, "hold count of dest {id}");
        d.held = d.held.saturating_add(1);
    }

    /// One Adj-RIB-Out less holds dest `id` advertised (freed if that was
    /// the last thing keeping it).
    pub fn unhold(&mut self, id: u32) {
        let d = &mut self.slab[id as usize];
        d.held = d.held.saturating_sub(1);
        self.release(id);
    }

    /// Frees dest `id` if it holds nothing and awaits no decision.
    pub fn release(&mut self, id: u32) {
        let d = &self.slab[id as usize];
        if d.live()
            && d.flags & (F_LOCAL | F_DIRTY | F_MORE | F_BEST_LOCAL) == 0
            && d.first == NONE
            && d.best_route == NONE
            && d.held == 0
            && !self.fib_queue.contains(id)
        {
            let prefix = d.prefix(&self.v6);
            let keys = Keys {
                slab: &self.slab,
                v6: &self.v6,
            };
            self.index.remove(&prefix, keys);
            // Only the family stays: the dest names its prefix until reused.
            self.slab[id as usize].flags &= F_V6;
            self.free.push(id);
            self.live -= 1;
        }
    }

    /// Marks dest `id` for the next decision run.
    pub fn touch(&mut self, id: u32) {
        let d = &mut self.slab[id as usize];
        if d.flags & F_DIRTY == 0 {
            d.flags |= F_DIRTY;
            self.dirty.push(id);
        }
    }

    /// Marks `prefix` as our own (`false` if the table is full).
    pub fn set_local(&mut self, prefix: IpNet, local: bool) -> bool {
        let Some(id) = self.dest(prefix) else {
            return false;
        };
        let d = &mut self.slab[id as usize];
        if local {
            d.flags |= F_LOCAL;
        } else {
            d.flags &= !F_LOCAL;
        }
        self.touch(id);
        true
    }

    /// The dirty dests, in id order (slab order: sequential reads; the
    /// peers' queues take them in that order too), with their flags cleared.
    pub fn take_dirty(&mut self) -> Vec<u32> {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            self.slab[id as usize].flags &= !F_DIRTY;
        }
        if !dirty.is_sorted() {
            dirty.sort_unstable();
        }
        dirty
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Live dest ids.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slab
            .iter()
            .enumerate()
            .filter(|(_, d)| d.live())
            .map(|(i, _)| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_is_twenty_bytes() {
        assert_eq!(std::mem::size_of::<Dest>(), 20);
    }

    #[test]
    fn ipv6_dests_keep_their_addresses_through_release_and_reuse() {
        let mut loc = LocRib::default();
        let v6 = |i: u32| {
            let a = std::net::Ipv6Addr::from(
                0xfd00_0000_0000_0000_0000_0000_0000_0000u128 | u128::from(i),
            );
            IpNet::V6(ipnet::Ipv6Net::new(a, 128).unwrap())
        };
        let v4 = |i: u32| IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(i), 32).unwrap());
        let ids: Vec<u32> = (0..300).map(|i| loc.dest(v6(i)).unwrap()).collect();
        for i in (0..300).step_by(2) {
            loc.release(ids[i as usize]);
        }
        // A freed dest still names its prefix (queued ids are read before their liveness).
        assert_eq!(loc.prefix(ids[4]), v6(4));
        assert!(!loc.slab[ids[4] as usize].live());
        // Freed slots and freed IPv6 addresses are reused by other prefixes.
        let later: Vec<u32> = (1000..1150).map(|i| loc.dest(v6(i)).unwrap()).collect();
        let four = loc.dest(v4(7)).unwrap();
        for i in 0..300u32 {
            let found = loc.find(&v6(i));
            if i % 2 == 0 {
                assert_eq!(found, None, "{i}");
            } else {
                assert_eq!(found, Some(ids[i as usize]));
                assert_eq!(loc.prefix(ids[i as usize]), v6(i));
            }
        }
        for (k, &id) in later.iter().enumerate() {
            assert_eq!(loc.prefix(id), v6(1000 + k as u32));
            assert_eq!(loc.find(&v6(1000 + k as u32)), Some(id));
        }
        assert_eq!(loc.prefix(four), v4(7));
        assert!(loc.is_v6(later[0]) && !loc.is_v6(four));
        // The same address as IPv4 and IPv6, and two lengths: four dests.
        let short = IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(7), 31).unwrap());
        assert_ne!(loc.dest(short), Some(four));
    }

    #[test]
    fn ipv6_address_slots_are_reused_across_families() {
        let mut loc = LocRib::default();
        let v6 = |i: u32| {
            let a = std::net::Ipv6Addr::from(0xfd00u128 << 112 | u128::from(i));
            IpNet::V6(ipnet::Ipv6Net::new(a, 128).unwrap())
        };
        let v4 = |i: u32| IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(i), 32).unwrap());
        let six: Vec<u32> = (0..100).map(|i| loc.dest(v6(i)).unwrap()).collect();
        for &id in &six {
            loc.release(id);
        }
        // IPv4 prefixes take the freed dests: their IPv6 slots become free...
        let four: Vec<u32> = (0..100).map(|i| loc.dest(v4(i)).unwrap()).collect();
        assert_eq!(loc.slab.len(), 100);
        assert_eq!(loc.v6_free.len(), 100);
        // ... and new IPv6 prefixes (in new dests) take those slots.
        let again: Vec<u32> = (500..600).map(|i| loc.dest(v6(i)).unwrap()).collect();
        assert_eq!(loc.v6.len(), 100, "no new address slot");
        assert!(loc.v6_free.is_empty());
        for (i, &id) in four.iter().enumerate() {
            assert_eq!(loc.prefix(id), v4(i as u32));
            assert_eq!(loc.find(&v4(i as u32)), Some(id));
        }
        for (i, &id) in again.iter().enumerate() {
            assert_eq!(loc.prefix(id), v6(500 + i as u32));
            assert_eq!(loc.find(&v6(500 + i as u32)), Some(id));
        }
        assert_eq!(loc.find(&v6(3)), None);
    }

    #[test]
    fn index_runs_wrap_past_the_last_slot() {
        // Prefixes whose home is one of the last two slots of a 64-slot
        // table: their run wraps to slot 0; removals shift across the end.
        let p = |i: u32| IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(i), 32).unwrap());
        let wrapping: Vec<IpNet> = (0..)
            .map(p)
            .filter(|q| home(prefix_hash(q), 64) >= 62)
            .take(6)
            .collect();
        let mut loc = LocRib::default();
        let ids: Vec<u32> = wrapping.iter().map(|q| loc.dest(*q).unwrap()).collect();
        assert_eq!(loc.index.slots.len(), 64);
        assert!(
            loc.index.slots[..4].iter().all(|&s| s != EMPTY),
            "the run wraps to the first slots"
        );
        for (q, id) in wrapping.iter().zip(&ids) {
            assert_eq!(loc.find(q), Some(*id));
        }
        for k in [0, 3] {
            loc.release(ids[k]);
        }
        for (k, q) in wrapping.iter().enumerate() {
            let want = (k != 0 && k != 3).then_some(ids[k]);
            assert_eq!(loc.find(q), want, "{q}");
        }
        assert_eq!(loc.index.len, 4);
    }

    #[test]
    fn index_finds_inserts_and_removes_through_tombstones() {
        let mut loc = LocRib::default();
        let p = |i: u32| IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(i), 32).unwrap());
        let ids: Vec<u32> = (0..5000).map(|i| loc.dest(p(i)).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(loc.find(&p(i as u32)), Some(*id));
        }
        for i in (0..5000).step_by(3) {
            let id = loc.find(&p(i)).unwrap();
            loc.release(id);
            assert_eq!(loc.find(&p(i)), None);
        }
        for i in 0..5000u32 {
            assert_eq!(loc.find(&p(i)).is_some(), i % 3 != 0, "{i}");
        }
        assert_eq!(loc.len(), 5000 - 1667);
        assert!(loc.index.tombs > 0, "removals inside runs leave tombstones");
        let again = loc.dest(p(3)).unwrap();
        assert_eq!(loc.find(&p(3)), Some(again));
        // Everything removed and put back, twice: tombstones are reused or
        // swept by a rebuild at the same size, the table does not grow.
        let size = loc.index.slots.len();
        for _ in 0..2 {
            for i in 0..5000 {
                if let Some(id) = loc.find(&p(i)) {
                    loc.release(id);
                }
            }
            assert_eq!((loc.len(), loc.index.len), (0, 0));
            assert!((0..5000).all(|i| loc.find(&p(i)).is_none()));
            for i in 0..5000 {
                loc.dest(p(i)).unwrap();
            }
            assert!((0..5000).all(|i| loc.find(&p(i)).is_some()));
            assert_eq!(loc.index.slots.len(), size);
            let used = loc.index.slots.iter().filter(|&&s| s != EMPTY).count();
            assert_eq!(used, loc.index.len + loc.index.tombs);
            assert!((loc.index.len + loc.index.tombs) * 4 <= size * 3);
        }
    }

    proptest::proptest! {
        /// Any mix of inserts and removals over a small key space (long
        /// runs, tombstones, rebuilds in place and growth) finds exactly
        /// what a plain set holds.
        #[test]
        fn index_agrees_with_a_set(ops in proptest::collection::vec((proptest::bool::ANY, 0u32..300), 1..3000)) {
            let mut loc = LocRib::default();
            let mut model = std::collections::BTreeSet::new();
            let p = |i: u32| IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(i), 32).unwrap());
            for (insert, k) in ops {
                if insert {
                    loc.dest(p(k)).unwrap();
                    model.insert(k);
                } else if let Some(id) = loc.find(&p(k)) {
                    loc.release(id);
                    model.remove(&k);
                }
                proptest::prop_assert_eq!(loc.index.len, model.len());
            }
            for k in 0..300 {
                proptest::prop_assert_eq!(loc.find(&p(k)).is_some(), model.contains(&k));
            }
            let used = loc.index.slots.iter().filter(|&&s| s != EMPTY).count();
            proptest::prop_assert_eq!(used, loc.index.len + loc.index.tombs);
        }
    }
}
