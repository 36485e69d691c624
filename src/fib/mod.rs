//! The kernel forwarding table as kittbgpd wants it, against what is
//! installed: desired routes in, replace/delete operations out, results back.
//!
//! Sans-IO: the runtime dumps the kernel, runs the operations over rtnetlink
//! and reports each result with the current time. Only routes of kittbgpd's
//! own protocol are ever in `installed`; a prefix that another protocol holds
//! at our metric is a conflict and is left alone.

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibOp {
    /// Install or change, in one netlink operation (NLM_F_REPLACE): no window without a route.
    Replace(FibRoute),
    Delete(IpNet),
}

impl FibOp {
    pub fn prefix(&self) -> IpNet {
        match self {
            FibOp::Replace(r) => r.prefix,
            FibOp::Delete(p) => *p,
        }
    }
}

/// How an operation failed, as far as the retry policy cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibError {
    /// Another protocol's route holds the prefix at our metric (EEXIST).
    Conflict,
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
    installed: HashMap<IpNet, FibRoute>,
    /// Prefixes held by another protocol at our metric: never touched.
    conflicts: BTreeSet<IpNet>,
    /// Prefixes whose kernel state may differ from the desired one.
    dirty: BTreeSet<IpNet>,
    retries: BTreeMap<IpNet, Retry>,
    /// Routes adopted from an earlier run are kept until then even if not desired.
    grace_until: Option<Instant>,
    in_flight: BTreeSet<IpNet>,
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
    /// `existing`: kittbgpd's routes found in the kernel at start (an earlier run's).
    /// They are kept while they are right, and those still not wanted after
    /// `grace` are removed (RFC 4724's spirit: a restart does not cut traffic).
    pub fn new(
        existing: Vec<FibRoute>,
        foreign: impl IntoIterator<Item = IpNet>,
        now: Instant,
        grace: Duration,
    ) -> Fib {
        let installed: HashMap<IpNet, FibRoute> =
            existing.into_iter().map(|r| (r.prefix, r)).collect();
        let grace_until = (!installed.is_empty()).then_some(now + grace);
        Fib {
            desired: HashMap::new(),
            installed,
            conflicts: foreign.into_iter().collect(),
            dirty: BTreeSet::new(),
            retries: BTreeMap::new(),
            grace_until,
            in_flight: BTreeSet::new(),
        }
    }

    pub fn counts(&self) -> FibCounts {
        FibCounts {
            desired: self.desired.len(),
            installed: self.installed.len(),
            conflicts: self.conflicts.len(),
            retrying: self.retries.len(),
        }
    }

    pub fn installed(&self) -> impl Iterator<Item = &FibRoute> {
        self.installed.values()
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &IpNet> {
        self.conflicts.iter()
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
    }

    /// A prefix another protocol holds at our metric; kittbgpd stops touching it.
    pub fn mark_conflict(&mut self, prefix: IpNet) {
        self.conflicts.insert(prefix);
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
            self.grace_until = None;
            let stale: Vec<IpNet> = self
                .installed
                .keys()
                .filter(|p| !self.desired.contains_key(*p))
                .copied()
                .collect();
            self.dirty.extend(stale);
        }
        let mut ops = Vec::new();
        let dirty = std::mem::take(&mut self.dirty);
        for prefix in dirty {
            if self.in_flight.contains(&prefix) {
                self.dirty.insert(prefix);
                continue;
            }
            if self.conflicts.contains(&prefix) {
                continue;
            }
            let op = match (self.desired.get(&prefix), self.installed.get(&prefix)) {
                (Some(want), Some(have)) if want == have => None,
                (Some(want), _) => Some(FibOp::Replace(want.clone())),
                (None, Some(_)) if self.grace_until.is_some() => None,
                (None, Some(_)) => Some(FibOp::Delete(prefix)),
                (None, None) => None,
            };
            if let Some(op) = op {
                self.in_flight.insert(prefix);
                ops.push(op);
            }
        }
        ops
    }

    /// The outcome of an operation from [`Fib::poll`].
    pub fn result(&mut self, op: &FibOp, result: Result<(), FibError>, now: Instant) {
        let prefix = op.prefix();
        self.in_flight.remove(&prefix);
        match result {
            Ok(()) => {
                match op {
                    FibOp::Replace(r) => self.installed.insert(prefix, r.clone()),
                    FibOp::Delete(_) => self.installed.remove(&prefix),
                };
                self.retries.remove(&prefix);
            }
            Err(FibError::Conflict) => {
                self.conflicts.insert(prefix);
            }
            Err(FibError::Failed(why)) => {
                if matches!(op, FibOp::Delete(_)) && why.contains("No such process") {
                    // ESRCH on delete: already gone, which is what we wanted.
                    self.installed.remove(&prefix);
                    return;
                }
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
        }
    }

    /// When [`Fib::poll`] has work without new input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retries
            .values()
            .filter_map(|r| r.at)
            .chain(self.grace_until)
            .min()
    }

    /// The last error of each prefix being retried (for logs and `show`).
    pub fn retrying(&self) -> impl Iterator<Item = (&IpNet, &str)> {
        self.retries.iter().map(|(p, r)| (p, r.last_error.as_str()))
    }

    /// On a clean stop with `on_stop = "remove"`: delete everything installed.
    pub fn remove_all(&mut self) -> Vec<FibOp> {
        self.desired.clear();
        self.installed.keys().map(|p| FibOp::Delete(*p)).collect()
    }
}

#[cfg(test)]
mod tests;
