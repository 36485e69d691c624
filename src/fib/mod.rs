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

mod view;

pub use view::{KernelView, PrefixState};

use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

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
    desired: HashMap<IpNet, FibRoute>,
    /// Our routes in the kernel, as far as results, events and dumps tell.
    installed: HashMap<IpNet, FibRoute>,
    /// Slots another protocol holds at our metric (its number; `None`: known
    /// only from an EEXIST, until a dump tells).
    foreign: BTreeMap<IpNet, Option<u8>>,
    /// Prefixes whose kernel state may differ from the desired one.
    dirty: BTreeSet<IpNet>,
    retries: BTreeMap<IpNet, Retry>,
    /// Routes adopted from an earlier run are kept until then even if not desired.
    grace_until: Option<Instant>,
    in_flight: BTreeSet<IpNet>,
    /// The kernel's view is in doubt (an EEXIST we did not expect): dump again.
    want_dump: bool,
    /// Desired prefixes not in the kernel (conflict, refused), as last reported.
    blocked: BTreeSet<IpNet>,
    /// Prefixes whose blocked state may have changed since the last report.
    touched: BTreeSet<IpNet>,
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
        let mut fib = Fib {
            desired: HashMap::new(),
            installed: HashMap::new(),
            foreign: BTreeMap::new(),
            dirty: BTreeSet::new(),
            retries: BTreeMap::new(),
            grace_until: None,
            in_flight: BTreeSet::new(),
            want_dump: false,
            blocked: BTreeSet::new(),
            touched: BTreeSet::new(),
        };
        fib.reconcile(seen);
        fib.grace_until = (!fib.installed.is_empty()).then_some(now + grace);
        fib
    }

    pub fn counts(&self) -> FibCounts {
        FibCounts {
            desired: self.desired.len(),
            installed: self.installed.len(),
            conflicts: self.conflicts().count(),
            retrying: self.retries.len(),
        }
    }

    pub fn installed(&self) -> impl Iterator<Item = &FibRoute> {
        self.installed.values()
    }

    /// Desired prefixes another protocol holds at our metric.
    pub fn conflicts(&self) -> impl Iterator<Item = &IpNet> {
        self.foreign
            .keys()
            .filter(|p| self.desired.contains_key(*p))
    }

    /// The best route for `prefix` changed (`None`: no route, or our own loopback).
    pub fn set(&mut self, prefix: IpNet, route: Option<FibRoute>) {
        match route {
            Some(r) => {
                self.desired.insert(prefix, r);
            }
            None => {
                self.desired.remove(&prefix);
            }
        }
        self.retries.remove(&prefix);
        self.dirty.insert(prefix);
        self.touched.insert(prefix);
    }

    /// A route event from the kernel (RTM_NEWROUTE: `present`, RTM_DELROUTE: not).
    pub fn kernel_event(&mut self, seen: Seen, present: bool) {
        let prefix = seen.prefix();
        match (seen, present) {
            (Seen::Ours(r), true) => {
                self.installed.insert(prefix, r);
            }
            (Seen::Ours(r), false) => {
                // Only if it is the route we believe is there (a late event of
                // an older route says nothing about the current one). The
                // gateway tells: the interface may be gone, its name unknown.
                if self
                    .installed
                    .get(&prefix)
                    .is_some_and(|h| h.gateway == r.gateway)
                {
                    self.installed.remove(&prefix);
                }
            }
            (Seen::Foreign { protocol, .. }, true) => {
                self.foreign.insert(prefix, Some(protocol));
            }
            (Seen::Foreign { .. }, false) => {
                self.foreign.remove(&prefix);
            }
        }
        self.dirty.insert(prefix);
        self.touched.insert(prefix);
    }

    /// A full dump of the slots we use: the kernel's view is replaced by it and
    /// every prefix compared again (after lost events, or a doubtful EEXIST).
    pub fn reconcile(&mut self, seen: Vec<Seen>) {
        let old: Vec<IpNet> = self
            .installed
            .keys()
            .chain(self.foreign.keys())
            .copied()
            .collect();
        self.installed.clear();
        self.foreign.clear();
        for s in seen {
            match s {
                Seen::Ours(r) => {
                    self.installed.insert(r.prefix, r);
                }
                Seen::Foreign { prefix, protocol } => {
                    self.foreign.insert(prefix, Some(protocol));
                }
            }
        }
        let all: Vec<IpNet> = old
            .into_iter()
            .chain(self.desired.keys().copied())
            .chain(self.installed.keys().copied())
            .chain(self.foreign.keys().copied())
            .collect();
        self.dirty.extend(all.iter().copied());
        self.touched.extend(all);
        self.want_dump = false;
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
        let stale: Vec<IpNet> = self
            .installed
            .keys()
            .filter(|p| !self.desired.contains_key(*p))
            .copied()
            .collect();
        self.dirty.extend(stale);
        true
    }

    pub fn wants_dump(&self) -> bool {
        self.want_dump
    }

    /// Operations to run now: changed prefixes, due retries, and after the grace
    /// time the removal of adopted routes nobody wants. Each prefix at most once
    /// until its result is reported.
    pub fn poll(&mut self, now: Instant) -> Vec<FibOp> {
        for (p, r) in self.retries.iter_mut() {
            if r.at.is_some_and(|at| at <= now) {
                r.at = None;
                self.dirty.insert(*p);
            }
        }
        if self.grace_until.is_some_and(|t| t <= now) {
            self.end_grace();
        }
        let mut ops = Vec::new();
        let dirty = std::mem::take(&mut self.dirty);
        for prefix in dirty {
            if self.in_flight.contains(&prefix) {
                self.dirty.insert(prefix);
                continue;
            }
            if let Some(op) = self.op_for(prefix) {
                self.in_flight.insert(prefix);
                ops.push(op);
            }
        }
        ops
    }

    fn op_for(&self, prefix: IpNet) -> Option<FibOp> {
        let want = self.desired.get(&prefix);
        let have = self.installed.get(&prefix);
        if self.foreign.contains_key(&prefix) {
            // Never touch theirs; ours (if any) out of the way.
            return have.map(|_| FibOp::Delete(prefix));
        }
        match (want, have) {
            (Some(want), Some(have)) if want == have => None,
            (Some(want), Some(_)) => Some(FibOp::Replace(want.clone())),
            (Some(want), None) => Some(FibOp::Add(want.clone())),
            (None, Some(_)) if self.grace_until.is_some() => None,
            (None, Some(_)) => Some(FibOp::Delete(prefix)),
            (None, None) => None,
        }
    }

    /// The outcome of an operation from [`Fib::poll`].
    pub fn result(&mut self, op: &FibOp, result: Result<(), FibError>, now: Instant) {
        let prefix = op.prefix();
        self.in_flight.remove(&prefix);
        self.touched.insert(prefix);
        match result {
            Ok(()) => {
                match op {
                    FibOp::Add(r) | FibOp::Replace(r) => self.installed.insert(prefix, r.clone()),
                    FibOp::Delete(_) => self.installed.remove(&prefix),
                };
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
                self.installed.remove(&prefix);
                self.retries.remove(&prefix);
            }
            Err(FibError::Absent) => self.failed(prefix, "no such route".into(), now),
            Err(FibError::Failed(why)) => self.failed(prefix, why, now),
        }
        // Desired state may have moved while the operation ran.
        if self.op_for(prefix).is_some() && !self.retries.contains_key(&prefix) {
            self.dirty.insert(prefix);
        }
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
            || (self.desired.contains_key(prefix) && self.retries.contains_key(prefix))
    }

    /// Prefixes whose forwarding state changed since the last call:
    /// `(prefix, true)` forwardable again, `(prefix, false)` not (for the RIB,
    /// which does not export what this node cannot forward).
    pub fn forwarding_changes(&mut self) -> Vec<(IpNet, bool)> {
        let mut out = Vec::new();
        for p in std::mem::take(&mut self.touched) {
            let blocked = self.is_blocked(&p);
            if blocked != self.blocked.contains(&p) {
                if blocked {
                    self.blocked.insert(p);
                } else {
                    self.blocked.remove(&p);
                }
                out.push((p, !blocked));
            }
        }
        out
    }

    /// On a clean stop with `on_stop = "remove"`: delete everything installed.
    pub fn remove_all(&mut self) -> Vec<FibOp> {
        self.desired.clear();
        self.installed.keys().map(|p| FibOp::Delete(*p)).collect()
    }
}

#[cfg(test)]
mod tests;
