//! The policy rules of the routing views (step 11), sans-IO: which `ip rule`
//! entries steer packets into each view's kernel table, against what the
//! kernel holds.
//!
//! In: the views' rules ([`Rules::set_views`]), the priority range kittbgpd
//! owns ([`Rules::set_range`]), the kernel's rules read by a dump
//! ([`Rules::begin_dump`], [`Rules::dumped`], [`Rules::end_dump`]) and the
//! result of each operation ([`Rules::result`], with the current time). Out:
//! [`RuleOp`]s to run ([`Rules::poll`]), when to call again
//! ([`Rules::poll_timeout`]) and the view for `show views` ([`Rules::view`]).
//!
//! Ours is a rule inside the range tagged with our protocol number
//! (FRA_PROTOCOL, `[kernel] protocol`, the one of our routes). Nothing else
//! is ever touched: a rule outside the range, or of another protocol inside
//! it, is only reported. Our rules found at start are adopted as they are
//! when wanted (a restart adds and removes nothing), removed when not.
//!
//! Placement: rule `i` (0-based, its position in the view's `rules`) of the
//! view with id `n` has priority `first + 10 x (n - 1) + i`
//! ([`PriorityRange::priority`]): fixed by the view's id and the rule's
//! position alone, the same in both families. A reload that adds a view or
//! a rule to another view moves nothing; a rule that does move is added at
//! its new priority before the old one is deleted (no gap). Where rules of
//! two views match the same packet, the lower view id wins.
//!
//! Families: a rule with `from` exists in that prefix's family only (`from
//! = "::/0"` makes an IPv6-only rule), every other rule in both.

use crate::config::view_rule::RuleMatch;
use crate::config::views::PriorityRange;
use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// One view's policy rules: what the views wiring hands in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewRules {
    pub name: String,
    /// The view's id (1..=254): places its rules in the range.
    pub id: u8,
    /// Kernel table its rules look up.
    pub table: u32,
    pub rules: Vec<RuleMatch>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// A kernel rule as kittbgpd writes and compares it; the action is always
/// "lookup `table`".
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct KernelRule {
    pub family: Family,
    pub priority: u32,
    pub table: u32,
    /// (value, mask).
    pub fwmark: Option<(u32, u32)>,
    /// The DS field (DSCP << 2) in the rule header's `tos`; 0: none.
    pub tos: u8,
    /// Source prefix (`None`: none, or a /0).
    pub from: Option<IpNet>,
    pub iif: Option<String>,
    /// Inclusive uid range.
    pub uid: Option<(u32, u32)>,
    /// A selector or action kittbgpd never writes (to, oif, ipproto, ports,
    /// goto, blackhole, ...): such a rule of ours is never the wanted one.
    pub other: bool,
}

impl KernelRule {
    /// The rules of one configured match: one per family it applies to.
    pub fn from_match(m: &RuleMatch, priority: u32, table: u32) -> Vec<KernelRule> {
        let families: &[Family] = match m.from {
            Some(IpNet::V4(_)) => &[Family::Ipv4],
            Some(IpNet::V6(_)) => &[Family::Ipv6],
            None => &[Family::Ipv4, Family::Ipv6],
        };
        families
            .iter()
            .map(|&family| KernelRule {
                family,
                priority,
                table,
                fwmark: m.fwmark,
                tos: m.dscp.map_or(0, |d| d << 2),
                from: m.from.filter(|p| p.prefix_len() > 0),
                iif: m.iif.clone(),
                // The whole uid space is the kernel's "no uid range" (never reported).
                uid: m.uid.filter(|&u| u != (0, u32::MAX)),
                other: false,
            })
            .collect()
    }

    /// The selector as `ip rule` writes it (`from all fwmark 0x2 ...`).
    pub fn selector(&self) -> String {
        let mut s = match &self.from {
            Some(p) => format!("from {p}"),
            None => "from all".to_string(),
        };
        if let Some(i) = &self.iif {
            let _ = write!(s, " iif {i}");
        }
        match self.fwmark {
            Some((v, u32::MAX)) => {
                let _ = write!(s, " fwmark {v:#x}");
            }
            Some((v, m)) => {
                let _ = write!(s, " fwmark {v:#x}/{m:#x}");
            }
            None => {}
        }
        if self.tos != 0 {
            let _ = write!(s, " tos {:#04x} (dscp {})", self.tos, self.tos >> 2);
        }
        if let Some((a, b)) = self.uid {
            let _ = write!(s, " uidrange {a}-{b}");
        }
        if self.other {
            s.push_str(" (and selectors kittbgpd does not write)");
        }
        s
    }
}

/// A rule the kernel reported (a dump).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dumped {
    pub rule: KernelRule,
    /// FRA_PROTOCOL (0 when absent: an older kernel's or a tool's rule).
    pub protocol: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleOp {
    /// Create (NLM_F_CREATE | NLM_F_EXCL), tagged with our protocol.
    Add(KernelRule),
    /// Remove our rule (the message names our protocol and every selector).
    Delete(KernelRule),
}

impl RuleOp {
    pub fn rule(&self) -> &KernelRule {
        match self {
            RuleOp::Add(r) | RuleOp::Delete(r) => r,
        }
    }
}

/// How an operation failed, as far as the core cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// EEXIST on an add: the kernel holds the same rule (ours unknown to us, or another's).
    Exists,
    /// ENOENT on a delete: already gone (what we wanted).
    Absent,
    /// Anything else (EINVAL for a selector the kernel refuses, ...): retried with backoff.
    Failed(String),
}

const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
struct Retry {
    /// When to try again; `None` while the retry is in flight.
    at: Option<Instant>,
    wait: Duration,
    error: String,
    failures: u32,
}

/// Operations done since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleCounts {
    pub added: u64,
    pub deleted: u64,
    pub failed: u64,
}

/// Which view and rule a wanted kernel rule stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    view: String,
    index: usize,
}

/// Another protocol's rule in the range: (family, priority, protocol).
type Other = (Family, u32, u8);

#[derive(Debug)]
pub struct Rules {
    protocol: u8,
    range: PriorityRange,
    /// Ranges of earlier configurations that still hold rules of ours.
    old_ranges: Vec<PriorityRange>,
    views: Vec<ViewRules>,
    desired: BTreeMap<KernelRule, Origin>,
    /// Our rules in an owned range, as the kernel last said (and our results since).
    installed: BTreeSet<KernelRule>,
    /// Other protocols' rules inside the range: (family, priority, protocol).
    foreign: BTreeSet<Other>,
    in_flight: BTreeSet<KernelRule>,
    retries: BTreeMap<KernelRule, Retry>,
    /// Rules that cannot be placed in the range (view and why).
    unplaced: Vec<String>,
    /// A dump under way: our rules and others' so far.
    dump: Option<(BTreeSet<KernelRule>, BTreeSet<Other>)>,
    want_dump: bool,
    counts: RuleCounts,
}

impl Rules {
    /// Nothing wanted, nothing known of the kernel yet.
    pub fn new(protocol: u8, range: PriorityRange) -> Rules {
        Rules {
            protocol,
            range,
            old_ranges: Vec::new(),
            views: Vec::new(),
            desired: BTreeMap::new(),
            installed: BTreeSet::new(),
            foreign: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            retries: BTreeMap::new(),
            unplaced: Vec::new(),
            dump: None,
            want_dump: false,
            counts: RuleCounts::default(),
        }
    }

    pub fn range(&self) -> PriorityRange {
        self.range
    }

    /// The views' rules now wanted; returns what cannot be placed (each
    /// "view NAME: why"), which stays out of the kernel.
    pub fn set_views(&mut self, views: Vec<ViewRules>) -> Vec<String> {
        self.views = views;
        self.place()
    }

    /// A new owned range (a reload): our rules left in the old one are
    /// removed, never another's; returns what cannot be placed.
    pub fn set_range(&mut self, range: PriorityRange) -> Vec<String> {
        if range != self.range {
            self.old_ranges.push(self.range);
            self.range = range;
        }
        self.forget_old_ranges();
        self.place()
    }

    fn place(&mut self) -> Vec<String> {
        let mut desired = BTreeMap::new();
        let mut unplaced = Vec::new();
        for v in &self.views {
            for (index, m) in v.rules.iter().enumerate() {
                let priority = match self.range.priority(v.id, index) {
                    Ok(p) => p,
                    Err(e) => {
                        unplaced.push(format!("view {}: {e}", v.name));
                        continue;
                    }
                };
                for k in KernelRule::from_match(m, priority, v.table) {
                    if let Some(o) = desired.get(&k) {
                        let o: &Origin = o;
                        unplaced.push(format!(
                            "view {}: rule {} is view {}'s rule {} (same id?)",
                            v.name,
                            index + 1,
                            o.view,
                            o.index + 1
                        ));
                        continue;
                    }
                    let origin = Origin {
                        view: v.name.clone(),
                        index,
                    };
                    desired.insert(k, origin);
                }
            }
        }
        self.desired = desired;
        self.settle_retries();
        self.unplaced = unplaced.clone();
        unplaced
    }

    /// A retry ends when its operation is no longer needed (a rule no longer
    /// wanted is not retried as an add, one a dump shows in place neither).
    fn settle_retries(&mut self) {
        let (desired, installed) = (&self.desired, &self.installed);
        self.retries
            .retain(|k, _| desired.contains_key(k) != installed.contains(k));
    }

    fn owned(&self, priority: u32) -> bool {
        self.range.contains(priority) || self.old_ranges.iter().any(|r| r.contains(priority))
    }

    /// An old range is forgotten once no rule of ours is left in it (outside the current one).
    fn forget_old_ranges(&mut self) {
        let (installed, range) = (&self.installed, self.range);
        self.old_ranges.retain(|r| {
            installed
                .iter()
                .any(|k| r.contains(k.priority) && !range.contains(k.priority))
        });
    }

    pub fn begin_dump(&mut self) {
        self.dump = Some((BTreeSet::new(), BTreeSet::new()));
    }

    /// One rule of the kernel (either family); rules outside the owned
    /// range are not kept at all.
    pub fn dumped(&mut self, d: Dumped) {
        if !self.owned(d.rule.priority) {
            return;
        }
        let (protocol, range) = (self.protocol, self.range);
        let Some((ours, foreign)) = self.dump.as_mut() else {
            return;
        };
        if d.protocol == protocol {
            ours.insert(d.rule);
        } else if range.contains(d.rule.priority) {
            foreign.insert((d.rule.family, d.rule.priority, d.protocol));
        }
    }

    /// The dump is complete: it replaces what was known.
    pub fn end_dump(&mut self) {
        if let Some((ours, foreign)) = self.dump.take() {
            self.installed = ours;
            self.foreign = foreign;
            self.want_dump = false;
            self.forget_old_ranges();
            self.settle_retries();
        }
    }

    /// A dump failed midway: what was known stands; ask again.
    pub fn abort_dump(&mut self) {
        self.dump = None;
        self.want_dump = true;
    }

    /// An EEXIST made the kernel's view doubtful: the runtime should dump again.
    pub fn wants_dump(&self) -> bool {
        self.want_dump
    }

    /// Operations due now: additions first, then deletions (a rule that
    /// moves is in place at its new priority before it leaves the old one).
    pub fn poll(&mut self, now: Instant) -> Vec<RuleOp> {
        let due = |k: &KernelRule, retries: &BTreeMap<KernelRule, Retry>| {
            retries
                .get(k)
                .is_none_or(|r| r.at.is_some_and(|at| at <= now))
        };
        let mut ops = Vec::new();
        for k in self.desired.keys() {
            if !self.installed.contains(k) && !self.in_flight.contains(k) && due(k, &self.retries) {
                ops.push(RuleOp::Add(k.clone()));
            }
        }
        for k in &self.installed {
            if !self.desired.contains_key(k) && !self.in_flight.contains(k) && due(k, &self.retries)
            {
                ops.push(RuleOp::Delete(k.clone()));
            }
        }
        for op in &ops {
            self.in_flight.insert(op.rule().clone());
            if let Some(r) = self.retries.get_mut(op.rule()) {
                r.at = None;
            }
        }
        ops
    }

    /// The next retry, if one waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retries.values().filter_map(|r| r.at).min()
    }

    /// The kernel's answer to an operation from [`Rules::poll`].
    pub fn result(&mut self, op: &RuleOp, result: Result<(), RuleError>, now: Instant) {
        let k = op.rule();
        self.in_flight.remove(k);
        let error = match (op, result) {
            (RuleOp::Add(_), Ok(())) => {
                self.counts.added += 1;
                self.installed.insert(k.clone());
                None
            }
            (RuleOp::Delete(_), Ok(()) | Err(RuleError::Absent)) => {
                self.counts.deleted += 1;
                self.installed.remove(k);
                self.forget_old_ranges();
                None
            }
            (RuleOp::Add(_), Err(RuleError::Exists)) => {
                // Ours from a run we did not see (a dump tells), or another
                // protocol's identical rule (then it stays and we retry).
                self.want_dump = true;
                Some("the kernel already holds this rule (another protocol's?)".to_string())
            }
            (_, Err(RuleError::Absent)) => None,
            (_, Err(RuleError::Exists)) => Some("exists".to_string()),
            (_, Err(RuleError::Failed(e))) => Some(e),
        };
        match error {
            None => {
                self.retries.remove(k);
            }
            Some(error) => {
                self.counts.failed += 1;
                let r = self.retries.entry(k.clone()).or_insert(Retry {
                    at: None,
                    wait: RETRY_MIN / 2,
                    error: String::new(),
                    failures: 0,
                });
                r.wait = (r.wait * 2).min(RETRY_MAX);
                r.at = Some(now + r.wait);
                r.error = error;
                r.failures += 1;
            }
        }
    }

    /// Everything of ours to delete (a stop with `on_stop = "remove"`).
    pub fn remove_all(&mut self) -> Vec<RuleOp> {
        self.views.clear();
        self.desired.clear();
        self.retries.clear();
        self.installed.iter().cloned().map(RuleOp::Delete).collect()
    }

    /// Failures of one rule in a row (to log the first and then every so often).
    pub fn failures(&self, k: &KernelRule) -> u32 {
        self.retries.get(k).map_or(0, |r| r.failures)
    }

    pub fn counts(&self) -> RuleCounts {
        self.counts
    }

    /// Our rules in the kernel now.
    pub fn installed(&self) -> usize {
        self.installed.len()
    }

    /// `show views`: every wanted rule and its state, ours being removed,
    /// other protocols' rules in the range, what cannot be placed.
    pub fn view(&self) -> RulesView {
        let state = |k: &KernelRule| {
            let retry = self.retries.get(k);
            let s = if self.in_flight.contains(k) {
                "in flight"
            } else if retry.is_some() {
                "failed"
            } else if self.installed.contains(k) {
                "installed"
            } else {
                "pending"
            };
            (s, retry)
        };
        let mut rules: Vec<RuleView> = self
            .desired
            .iter()
            .map(|(k, o)| {
                let (s, retry) = state(k);
                RuleView::new(k, Some(o), s, retry)
            })
            .collect();
        for k in self
            .installed
            .iter()
            .filter(|k| !self.desired.contains_key(*k))
        {
            let (_, retry) = state(k);
            let s = if retry.is_some() {
                "failed"
            } else {
                "removing"
            };
            rules.push(RuleView::new(k, None, s, retry));
        }
        rules.sort_by_key(|r| (r.priority, r.family));
        RulesView {
            range: self.range.to_string(),
            protocol: self.protocol,
            rules,
            foreign: (self.foreign.iter())
                .map(|&(family, priority, protocol)| ForeignRule {
                    family,
                    priority,
                    protocol,
                })
                .collect(),
            unplaced: self.unplaced.clone(),
            counts: self.counts,
        }
    }
}

/// `show views`, the rules part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RulesView {
    /// `[views] rule_priority`.
    pub range: String,
    /// FRA_PROTOCOL of our rules.
    pub protocol: u8,
    pub rules: Vec<RuleView>,
    /// Rules of other protocols inside the range: left alone.
    pub foreign: Vec<ForeignRule>,
    pub unplaced: Vec<String>,
    pub counts: RuleCounts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleView {
    /// The view it steers into; `None`: ours, no longer wanted.
    pub view: Option<String>,
    /// 1-based position in the view's `rules`.
    pub rule: Option<usize>,
    pub family: Family,
    pub priority: u32,
    pub table: u32,
    pub selector: String,
    /// installed, pending, in flight, failed, removing.
    pub state: &'static str,
    pub failures: u32,
    pub error: Option<String>,
}

impl RuleView {
    fn new(k: &KernelRule, o: Option<&Origin>, state: &'static str, r: Option<&Retry>) -> Self {
        RuleView {
            view: o.map(|o| o.view.clone()),
            rule: o.map(|o| o.index + 1),
            family: k.family,
            priority: k.priority,
            table: k.table,
            selector: k.selector(),
            state,
            failures: r.map_or(0, |r| r.failures),
            error: r.map(|r| r.error.clone()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ForeignRule {
    pub family: Family,
    pub priority: u32,
    pub protocol: u8,
}
