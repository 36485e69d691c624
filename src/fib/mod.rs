//! The kernel forwarding table as kittbgpd wants it, against what the kernel
//! holds: desired routes in, add/replace/delete operations out, results and
//! kernel route events back.
//!
//! Sans-IO: the runtime dumps the kernel, listens to its route events, runs
//! the operations over rtnetlink and reports each result with the current
//! time. The core keeps the kernel's view of every slot kittbgpd uses (prefix
//! at our table and metric): our route, another protocol's, or none. A slot
//! held by another protocol (an operator's static route, another daemon) is a
//! conflict: never replaced; our route is taken out of the way (from the
//! kernel only, the BGP state is untouched) and comes back when the slot is
//! free again.

mod shards;
mod table;
mod tables;
mod view;

pub use tables::{FibTables, TableId};
pub use view::{KernelView, PrefixState};

use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use table::{NextHops, Nh, PrefixQueue, Slot, Slots, BLOCKED, DIRTY, IN_FLIGHT, NO_NH, TOUCHED};

/// One kernel route: prefix via a gateway (for IPv4 possibly an IPv6 link-local, RTA_VIA) on an interface.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct FibRoute {
    pub prefix: IpNet,
    pub gateway: IpAddr,
    pub interface: String,
}

/// A route the kernel holds at our table and metric, as a dump or an event shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Of our protocol.
    Ours(FibRoute),
    /// Of another protocol (its number: `ip route ... proto N`).
    Foreign { prefix: IpNet, protocol: u8 },
}

impl Seen {
    pub fn prefix(&self) -> IpNet {
        match self {
            Seen::Ours(r) => r.prefix,
            Seen::Foreign { prefix, .. } => *prefix,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibOp {
    /// Install where the kernel holds nothing at our metric (NLM_F_CREATE |
    /// NLM_F_EXCL): if something appeared meanwhile, the kernel says EEXIST
    /// instead of overwriting it.
    Add(FibRoute),
    /// Change our own route in one operation (NLM_F_REPLACE): no window without a route.
    Replace(FibRoute),
    /// Remove our route (the message names our protocol: another's is never matched).
    Delete(IpNet),
}

impl FibOp {
    pub fn prefix(&self) -> IpNet {
        match self {
            FibOp::Add(r) | FibOp::Replace(r) => r.prefix,
            FibOp::Delete(p) => *p,
        }
    }
}

/// How an operation failed, as far as the core cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibError {
    /// EEXIST on an add: something holds the slot at our metric.
    Conflict,
    /// ESRCH on a delete: our route is not there (already what we wanted).
    Absent,
    /// Anything else (ENETUNREACH, ENODEV, interface missing, ...): retried with backoff.
    Failed(String),
}

const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Retry {
    /// When to try again; `None` while the retry is in flight (the backoff is kept).
    at: Option<Instant>,
    wait: Duration,
    last_error: String,
}

#[derive(Debug)]
pub struct Fib {
    /// Per prefix: desired and installed next hop, state bits (one record).
    slots: Slots,
    next_hops: NextHops,
    /// Slots another protocol holds at our metric (its number; `None`: known
    /// only from an EEXIST, until a dump tells).
    foreign: BTreeMap<IpNet, Option<u8>>,
    /// Prefixes whose kernel state may differ from the desired one (flag `DIRTY`).
    dirty: PrefixQueue,
    retries: BTreeMap<IpNet, Retry>,
    /// Routes adopted from an earlier run are kept until then even if not desired.
    grace_until: Option<Instant>,
    /// The kernel's view is in doubt (an EEXIST we did not expect): dump again.
    want_dump: bool,
    /// Prefixes whose blocked state may have changed since the last report (flag `TOUCHED`).
    touched: Vec<IpNet>,
    desired_count: usize,
    installed_count: usize,
}

/// Counts for operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FibCounts {
    pub desired: usize,
    pub installed: usize,
    pub conflicts: usize,
    pub retrying: usize,
}

impl Fib {
    /// `seen`: what the kernel holds at our table and metric at start. Our
    /// routes (an earlier run's) are kept while they are right, and those
    /// still not wanted after `grace` are removed (RFC 4724's spirit: a
    /// restart does not cut traffic).
    pub fn new(seen: Vec<Seen>, now: Instant, grace: Duration) -> Fib {
        let mut fib = Fib::empty();
        fib.reconcile(seen);
        fib.start_grace(now, grace);
        fib
    }

    /// Nothing desired, nothing known of the kernel (then [`Fib::begin_dump`],
    /// [`Fib::dumped`] per route, [`Fib::end_dump`], [`Fib::start_grace`]).
    pub fn empty() -> Fib {
        Fib {
            slots: Slots::default(),
            next_hops: NextHops::default(),
            foreign: BTreeMap::new(),
            dirty: PrefixQueue::default(),
            retries: BTreeMap::new(),
            grace_until: None,
            want_dump: false,
            touched: Vec::new(),
            desired_count: 0,
            installed_count: 0,
        }
    }

    /// Our routes found at start are kept until `now + grace` (if there are any).
    pub fn start_grace(&mut self, now: Instant, grace: Duration) {
        self.grace_until = (self.installed_count > 0).then_some(now + grace);
    }

    pub fn counts(&self) -> FibCounts {
        FibCounts {
            desired: self.desired_count,
            installed: self.installed_count,
            conflicts: self.conflicts().count(),
            retrying: self.retries.len(),
        }
    }

    /// Prefixes another protocol holds at our metric.
    pub fn foreign(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.foreign.keys().copied()
    }

    /// Desired prefixes another protocol holds at our metric.
    pub fn conflicts(&self) -> impl Iterator<Item = &IpNet> {
        self.foreign.keys().filter(|p| self.desired(p) != NO_NH)
    }

    fn desired(&self, p: &IpNet) -> Nh {
        self.slots.get(p).map_or(NO_NH, |s| s.desired)
    }

    fn installed_nh(&self, p: &IpNet) -> Nh {
        self.slots.get(p).map_or(NO_NH, |s| s.installed)
    }

    fn route(&self, prefix: IpNet, nh: Nh) -> Option<FibRoute> {
        let (gateway, interface) = self.next_hops.get(nh)?;
        Some(FibRoute {
            prefix,
            gateway,
            interface: interface.into(),
        })
    }

    /// The next hop id of a route; `NO_NH` if every id is taken (the route
    /// then stays out of the kernel: 65 535 distinct next hops at once).
    fn intern(&mut self, route: Option<(IpAddr, &str)>) -> Nh {
        route
            .and_then(|(g, i)| self.next_hops.intern(g, i))
            .unwrap_or(NO_NH)
    }

    fn set_desired(&mut self, p: IpNet, nh: Nh) {
        let slot = self.slots.entry(p);
        self.desired_count += usize::from(nh != NO_NH);
        self.desired_count -= usize::from(slot.desired != NO_NH);
        slot.desired = self.next_hops.assign(slot.desired, nh);
    }

    fn set_installed(&mut self, p: IpNet, nh: Nh) {
        let slot = self.slots.entry(p);
        self.installed_count += usize::from(nh != NO_NH);
        self.installed_count -= usize::from(slot.installed != NO_NH);
        slot.installed = self.next_hops.assign(slot.installed, nh);
    }

    fn mark_dirty(&mut self, p: IpNet) {
        let slot = self.slots.entry(p);
        if slot.flags & DIRTY == 0 {
            slot.flags |= DIRTY;
            self.dirty.push_back(p);
        }
    }

    fn touch(&mut self, p: IpNet) {
        let slot = self.slots.entry(p);
        if slot.flags & TOUCHED == 0 {
            slot.flags |= TOUCHED;
            self.touched.push(p);
        }
    }

    /// Touched if its blocked state may change with a change of `retries`
    /// or `foreign` for it (reported as blocked, or held by another protocol).
    fn touch_if_blocked(&mut self, p: IpNet) {
        let blocked = self.slots.get(&p).is_some_and(|s| s.flags & BLOCKED != 0);
        if blocked || self.foreign.contains_key(&p) {
            self.touch(p);
        }
    }

    /// The best route for `prefix` changed (`None`: no route, or our own loopback).
    pub fn set(&mut self, prefix: IpNet, route: Option<FibRoute>) {
        let route = route.as_ref().map(|r| (r.gateway, r.interface.as_str()));
        self.set_via(prefix, route);
    }

    /// [`Fib::set`] with the next hop as gateway and interface name.
    pub fn set_via(&mut self, prefix: IpNet, route: Option<(IpAddr, &str)>) {
        let nh = self.intern(route);
        self.set_desired(prefix, nh);
        self.retries.remove(&prefix);
        self.mark_dirty(prefix);
        self.touch_if_blocked(prefix);
    }

    /// A route event from the kernel (RTM_NEWROUTE: `present`, RTM_DELROUTE: not).
    pub fn kernel_event(&mut self, seen: Seen, present: bool) {
        let prefix = seen.prefix();
        match (seen, present) {
            (Seen::Ours(r), true) => {
                let nh = self.seen_nh(&r);
                self.set_installed(prefix, nh);
            }
            (Seen::Ours(r), false) => {
                // Only if it is the route we believe is there (a late event of
                // an older route says nothing about the current one). The
                // gateway tells: the interface may be gone, its name unknown.
                let have = self.installed_nh(&prefix);
                if self
                    .next_hops
                    .get(have)
                    .is_some_and(|(g, _)| g == r.gateway)
                {
                    self.set_installed(prefix, NO_NH);
                }
            }
            (Seen::Foreign { protocol, .. }, true) => {
                self.foreign.insert(prefix, Some(protocol));
                self.touch(prefix);
            }
            (Seen::Foreign { .. }, false) => {
                self.foreign.remove(&prefix);
                self.touch(prefix);
            }
        }
        self.mark_dirty(prefix);
    }

    /// A full dump of the slots we use: the kernel's view is replaced by it and
    /// every prefix compared again (after lost events, or a doubtful EEXIST).
    pub fn reconcile(&mut self, seen: Vec<Seen>) {
        self.begin_dump();
        for s in seen {
            self.dumped(s);
        }
        self.end_dump();
    }

    /// A dump starts: what we knew of the kernel is forgotten, every prefix
    /// will be compared again ([`Fib::reconcile`] in steps, without a list
    /// of the whole table).
    pub fn begin_dump(&mut self) {
        let known: Vec<IpNet> = self.foreign.keys().copied().collect();
        for p in known {
            self.touch(p);
        }
        self.foreign.clear();
        let next_hops = &mut self.next_hops;
        for (p, slot) in self.slots.iter_mut() {
            slot.installed = next_hops.assign(slot.installed, NO_NH);
            if slot.flags & DIRTY == 0 && slot.desired != NO_NH {
                slot.flags |= DIRTY;
                self.dirty.push_back(p);
            }
        }
        self.installed_count = 0;
        // What was installed and is not desired: such slots are empty now
        // unless flagged; the dump says again whether they are there.
        self.prune_all();
    }

    /// One route of the dump.
    pub fn dumped(&mut self, seen: Seen) {
        let prefix = seen.prefix();
        match seen {
            Seen::Ours(r) => {
                let nh = self.seen_nh(&r);
                self.set_installed(prefix, nh);
            }
            Seen::Foreign { protocol, .. } => {
                self.foreign.insert(prefix, Some(protocol));
                self.touch(prefix);
            }
        }
        self.mark_dirty(prefix);
    }

    /// The next hop of our route as the kernel shows it: the desired one if
    /// that names the same gateway and no interface (the kernel picked it;
    /// a route learned over a multihop session), else its own.
    fn seen_nh(&mut self, r: &FibRoute) -> Nh {
        let want = self.desired(&r.prefix);
        match self.next_hops.get(want) {
            Some((gateway, "")) if gateway == r.gateway => want,
            _ => self.intern(Some((r.gateway, &r.interface))),
        }
    }

    pub fn end_dump(&mut self) {
        self.want_dump = false;
    }

    fn prune_all(&mut self) {
        let empty: Vec<IpNet> = self
            .slots
            .iter()
            .filter(|(_, s)| **s == Slot::default())
            .map(|(p, _)| p)
            .collect();
        for p in empty {
            self.slots.prune(&p);
        }
    }

    /// Whether the runtime should dump the kernel and call [`Fib::reconcile`].
    /// Ends the grace before its time (RFC 4724 §4.1: every End-of-RIB is
    /// in): adopted routes nobody wants go at the next poll. False if there
    /// was no grace running.
    pub fn end_grace(&mut self) -> bool {
        if self.grace_until.is_none() {
            return false;
        }
        self.grace_until = None;
        for (p, slot) in self.slots.iter_mut() {
            if slot.installed != NO_NH && slot.desired == NO_NH && slot.flags & DIRTY == 0 {
                slot.flags |= DIRTY;
                self.dirty.push_back(p);
            }
        }
        true
    }

    pub fn wants_dump(&self) -> bool {
        self.want_dump
    }

    /// Operations to run now: changed prefixes, due retries, and after the grace
    /// time the removal of adopted routes nobody wants. Each prefix at most once
    /// until its result is reported.
    pub fn poll(&mut self, now: Instant) -> Vec<FibOp> {
        self.poll_max(now, usize::MAX)
    }

    /// [`Fib::poll`], at most `max` operations (the rest at the next call:
    /// memory for operations follows what the kernel is given, not the table).
    pub fn poll_max(&mut self, now: Instant, max: usize) -> Vec<FibOp> {
        let due: Vec<IpNet> = self
            .retries
            .iter_mut()
            .filter(|(_, r)| r.at.is_some_and(|at| at <= now))
            .map(|(p, r)| {
                r.at = None;
                *p
            })
            .collect();
        for p in due {
            self.mark_dirty(p);
        }
        if self.grace_until.is_some_and(|t| t <= now) {
            self.end_grace();
        }
        let mut ops = Vec::new();
        let mut busy = Vec::new();
        while ops.len() < max {
            let Some(prefix) = self.dirty.pop_front() else {
                break;
            };
            let slot = self.slots.entry(prefix);
            if slot.flags & IN_FLIGHT != 0 {
                // Looked at again once its result is in.
                busy.push(prefix);
                continue;
            }
            slot.flags &= !DIRTY;
            match self.op_for(prefix) {
                Some(op) => {
                    self.slots.entry(prefix).flags |= IN_FLIGHT;
                    ops.push(op);
                }
                None => self.slots.prune(&prefix),
            }
        }
        // Still dirty (flag kept): first in line next time.
        for p in busy.into_iter().rev() {
            self.dirty.push_front(p);
        }
        ops
    }

    fn op_for(&self, prefix: IpNet) -> Option<FibOp> {
        let slot = self.slots.get(&prefix).copied().unwrap_or_default();
        let (want, have) = (slot.desired, slot.installed);
        if self.foreign.contains_key(&prefix) {
            // Never touch theirs; ours (if any) out of the way.
            return (have != NO_NH).then_some(FibOp::Delete(prefix));
        }
        match (want != NO_NH, have != NO_NH) {
            (true, true) if want == have => None,
            (true, true) => Some(FibOp::Replace(self.route(prefix, want)?)),
            (true, false) => Some(FibOp::Add(self.route(prefix, want)?)),
            (false, true) if self.grace_until.is_some() => None,
            (false, true) => Some(FibOp::Delete(prefix)),
            (false, false) => None,
        }
    }

    /// The outcome of an operation from [`Fib::poll`].
    pub fn result(&mut self, op: &FibOp, result: Result<(), FibError>, now: Instant) {
        let prefix = op.prefix();
        self.slots.entry(prefix).flags &= !IN_FLIGHT;
        let failed = result.is_err();
        match result {
            Ok(()) => {
                let nh = match op {
                    FibOp::Add(r) | FibOp::Replace(r) => {
                        self.intern(Some((r.gateway, &r.interface)))
                    }
                    FibOp::Delete(_) => NO_NH,
                };
                self.set_installed(prefix, nh);
                self.touch_if_blocked(prefix);
                self.retries.remove(&prefix);
            }
            Err(FibError::Conflict) => {
                // Someone holds the slot: left alone. Whose it is, a dump will tell
                // (it may even be ours, if an event was lost).
                self.foreign.entry(prefix).or_insert(None);
                self.retries.remove(&prefix);
                self.want_dump = true;
            }
            Err(FibError::Absent) if matches!(op, FibOp::Delete(_)) => {
                self.set_installed(prefix, NO_NH);
                self.retries.remove(&prefix);
            }
            Err(FibError::Absent) => self.failed(prefix, "no such route".into(), now),
            Err(FibError::Failed(why)) => self.failed(prefix, why, now),
        }
        if failed {
            self.touch(prefix);
        }
        // Desired state may have moved while the operation ran.
        if self.op_for(prefix).is_some() && !self.retries.contains_key(&prefix) {
            self.mark_dirty(prefix);
        }
        self.slots.prune(&prefix);
    }

    fn failed(&mut self, prefix: IpNet, why: String, now: Instant) {
        let wait = self
            .retries
            .get(&prefix)
            .map_or(RETRY_MIN, |r| (r.wait * 2).min(RETRY_MAX));
        self.retries.insert(
            prefix,
            Retry {
                at: Some(now + wait),
                wait,
                last_error: why,
            },
        );
    }

    /// Whether a prefix has failed so long that the backoff is at its ceiling.
    pub fn keeps_failing(&self, prefix: &IpNet) -> bool {
        self.retries
            .get(prefix)
            .is_some_and(|r| r.wait >= RETRY_MAX)
    }

    /// When [`Fib::poll`] has work without new input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retries
            .values()
            .filter_map(|r| r.at)
            .chain(self.grace_until)
            .min()
    }

    /// Whether there is work for [`Fib::poll`] now (changed prefixes).
    pub fn has_work(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The last error of each prefix being retried (for logs and `show`).
    pub fn retrying(&self) -> impl Iterator<Item = (&IpNet, &str)> {
        self.retries.iter().map(|(p, r)| (p, r.last_error.as_str()))
    }

    /// Whether our route for `prefix` cannot be in the kernel now: its slot is
    /// held by another protocol (known even before we want it, so that a path
    /// arriving later is never exported, not even for a moment), or the kernel
    /// refused it.
    pub fn is_blocked(&self, prefix: &IpNet) -> bool {
        self.foreign.contains_key(prefix)
            || (self.desired(prefix) != NO_NH && self.retries.contains_key(prefix))
    }

    /// Prefixes whose forwarding state changed since the last call:
    /// `(prefix, true)` forwardable again, `(prefix, false)` not (for the RIB,
    /// which does not export what this node cannot forward).
    pub fn forwarding_changes(&mut self) -> Vec<(IpNet, bool)> {
        let mut out = Vec::new();
        for p in std::mem::take(&mut self.touched) {
            let blocked = self.is_blocked(&p);
            let slot = self.slots.entry(p);
            slot.flags &= !TOUCHED;
            if blocked != (slot.flags & BLOCKED != 0) {
                slot.flags ^= BLOCKED;
                out.push((p, !blocked));
            }
            self.slots.prune(&p);
        }
        out
    }

    /// On a clean stop with `on_stop = "remove"`: delete everything installed.
    pub fn remove_all(&mut self) -> Vec<FibOp> {
        let next_hops = &mut self.next_hops;
        let mut ops = Vec::new();
        for (p, slot) in self.slots.iter_mut() {
            slot.desired = next_hops.assign(slot.desired, NO_NH);
            if slot.installed != NO_NH {
                ops.push(FibOp::Delete(p));
            }
        }
        self.desired_count = 0;
        ops
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tables;
