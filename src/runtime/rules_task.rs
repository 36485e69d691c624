//! The policy-rule worker: runs what [`crate::rules::Rules`] decides over
//! rtnetlink (`ip rule` entries steering packets into the views' tables).
//!
//! Started only when some view has rules and `[kernel] enabled`: without
//! views, no task and no netlink traffic. It reads the kernel's rules of
//! both families at start (adopting ours), again every `REDUMP_EVERY` (a
//! rule removed by hand comes back) and after an EEXIST; operations run one
//! at a time, additions before deletions. A rule the kernel refuses is
//! logged, counted and retried with backoff, never fatal.
//!
//! On a clean stop the rules follow the routes (`[kernel] on_stop`): kept
//! with `keep` (a restart adopts them: traffic keeps its view), removed with
//! `remove` (with the routes of the views' tables gone, rules would only
//! steer into empty tables).

use crate::config::views::PriorityRange;
use crate::config::{Config, OnStop};
use crate::rules::{Dumped, Family, KernelRule, RuleError, RuleOp, Rules, RulesView, ViewRules};
use futures::channel::mpsc::UnboundedReceiver as EventRx;
use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use rtnetlink::packet_core::NetlinkMessage;
use rtnetlink::packet_route::route::RouteProtocol;
use rtnetlink::packet_route::rule::{
    RuleAction, RuleAttribute, RuleFlags, RuleMessage, RuleUidRange,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, IpVersion};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// A dump now and then: rules removed or added by others are seen (a
/// handful of messages: the rules of a host are few).
const REDUMP_EVERY: Duration = Duration::from_secs(10);

enum RulesMsg {
    Views(Vec<ViewRules>),
    Range(PriorityRange),
    View(oneshot::Sender<RulesView>),
    Stop(oneshot::Sender<()>),
}

/// The views wiring's side of the task.
#[derive(Clone, Debug)]
pub struct RulesHandle {
    tx: mpsc::UnboundedSender<RulesMsg>,
}

impl RulesHandle {
    /// The views' rules now wanted (a reload): what changed is applied.
    pub fn set_desired(&self, views: Vec<ViewRules>) {
        let _ = self.tx.send(RulesMsg::Views(views));
    }

    /// A reloaded `[views] rule_priority`: our rules move into it.
    pub fn set_range(&self, range: PriorityRange) {
        let _ = self.tx.send(RulesMsg::Range(range));
    }

    /// `show views`: the rules, their state and the counters (None: task gone).
    pub async fn view(&self) -> Option<RulesView> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(RulesMsg::View(tx)).ok()?;
        rx.await.ok()
    }

    /// Clean stop: keep or remove our rules (as `on_stop` given at spawn),
    /// then return (at most `wait`).
    pub async fn stop(&self, wait: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(RulesMsg::Stop(tx)).is_ok() {
            let _ = tokio::time::timeout(wait, rx).await;
        }
    }
}

/// The views' rules of a configuration: each `[[view]]`'s name, id, table
/// and checked rules.
pub fn view_rules(config: &Config) -> Vec<ViewRules> {
    config
        .views
        .iter()
        .map(|v| ViewRules {
            name: v.name.clone(),
            id: v.id,
            table: v.table,
            rules: v.rules.clone(),
        })
        .collect()
}

/// Start, update or leave alone the rules task for `config` (at start and
/// after each reload): no view with rules and no task yet, or `[kernel]
/// enabled = false` (hands off the kernel): nothing, no netlink traffic.
pub async fn sync(current: &mut Option<RulesHandle>, config: &Config) -> Result<(), String> {
    let views = view_rules(config);
    match current {
        Some(h) => {
            h.set_range(config.view_settings.rule_priority);
            h.set_desired(views);
        }
        None if !config.kernel.enabled || views.iter().all(|v| v.rules.is_empty()) => {}
        None => {
            let k = &config.kernel;
            let range = config.view_settings.rule_priority;
            *current = Some(spawn(k.protocol, range, views, k.on_stop).await?);
        }
    }
    Ok(())
}

/// Open netlink, read the kernel's rules, put the views' rules in place and
/// keep them there. `protocol`: `[kernel] protocol` (that of our routes).
pub async fn spawn(
    protocol: u8,
    range: PriorityRange,
    views: Vec<ViewRules>,
    on_stop: OnStop,
) -> Result<RulesHandle, String> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| format!("netlink (rules): {e}"))?;
    tokio::spawn(connection);
    // Rule events of both families (RTNLGRP_IPV4_RULE = 8, RTNLGRP_IPV6_RULE
    // = 19): a change by anyone is answered by a dump at once. Subscribed
    // before the first dump, so no change falls between the two.
    let events = match rtnetlink::new_connection() {
        Ok((mut econn, _, events)) => {
            let groups = (1 << (8 - 1)) | (1 << (19 - 1));
            match econn
                .socket_mut()
                .socket_mut()
                .bind(&SocketAddr::new(0, groups))
            {
                Ok(()) => {
                    tokio::spawn(econn);
                    Some(events)
                }
                Err(e) => {
                    warn!("netlink (rule events): {e}; changes by others are seen by the periodic dump");
                    None
                }
            }
        }
        Err(e) => {
            warn!("netlink (rule events): {e}; changes by others are seen by the periodic dump");
            None
        }
    };
    let mut task = RulesTask {
        core: Rules::new(protocol, range),
        protocol,
        handle,
        on_stop,
        raw: HashMap::new(),
        next_dump: Instant::now(),
        events,
    };
    for why in task.core.set_views(views) {
        error!("policy rule not installed: {why}");
    }
    task.dump().await;
    let adopted = task.core.installed();
    if adopted > 0 {
        info!(
            rules = adopted,
            "policy rules of an earlier run found in the kernel"
        );
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(task.run(rx));
    Ok(RulesHandle { tx })
}

struct RulesTask {
    core: Rules,
    protocol: u8,
    handle: Handle,
    on_stop: OnStop,
    /// Our rules as the last dump gave them: a deletion sends back exactly
    /// what the kernel showed.
    raw: HashMap<KernelRule, RuleMessage>,
    next_dump: Instant,
    /// `None` once the event socket failed (then only the periodic dump sees changes).
    events: Option<Events>,
}

type Events = EventRx<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

impl RulesTask {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<RulesMsg>) {
        loop {
            let now = Instant::now();
            if self.core.wants_dump() || now >= self.next_dump {
                self.dump().await;
            }
            let ops = self.core.poll(Instant::now());
            self.execute(ops).await;
            let deadline = self
                .core
                .poll_timeout()
                .map_or(self.next_dump, |t| t.min(self.next_dump));
            let next_event = async {
                match self.events.as_mut() {
                    Some(ev) => ev.next().await,
                    None => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => Some(m),
                    None => return,
                },
                e = next_event => {
                    match e {
                        // Ours or another's: a dump tells which (a few messages).
                        Some(_) => self.next_dump = Instant::now(),
                        None => {
                            warn!("kernel rule events stopped: changes by others are seen by the periodic dump");
                            self.events = None;
                        }
                    }
                    None
                }
                () = tokio::time::sleep_until(deadline.into()) => None,
            };
            if let Some(ev) = self.events.as_mut() {
                while ev.try_recv().is_ok() {}
            }
            let mut msgs: Vec<RulesMsg> = first.into_iter().collect();
            while let Ok(m) = rx.try_recv() {
                msgs.push(m);
            }
            // A reload sends the range and the views together: what cannot
            // be placed is said once, for the two.
            let mut reconfigured = false;
            for m in msgs {
                match m {
                    RulesMsg::Views(v) => {
                        self.core.set_views(v);
                        reconfigured = true;
                    }
                    RulesMsg::Range(r) => {
                        if r != self.core.range() {
                            info!(range = %r, "policy rules move to a new priority range");
                            self.core.set_range(r);
                            // Our rules in the new range are known only from a
                            // dump made while it was owned: read again.
                            self.next_dump = Instant::now();
                        }
                        reconfigured = true;
                    }
                    RulesMsg::View(reply) => {
                        let _ = reply.send(self.core.view());
                    }
                    RulesMsg::Stop(done) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                }
            }
            if reconfigured {
                for why in self.core.view().unplaced {
                    error!("policy rule not installed: {why}");
                }
            }
        }
    }

    async fn stop(&mut self) {
        if self.on_stop == OnStop::Remove {
            let ops = self.core.remove_all();
            info!(
                rules = ops.len(),
                "removing policy rules (on_stop = remove)"
            );
            self.execute(ops).await;
        } else {
            info!(
                rules = self.core.installed(),
                "keeping policy rules (on_stop = keep)"
            );
        }
    }

    /// Both families' rules into the core, ours kept raw for deletion.
    async fn dump(&mut self) {
        self.next_dump = Instant::now() + REDUMP_EVERY;
        self.core.begin_dump();
        let mut raw = HashMap::new();
        for family in [IpVersion::V4, IpVersion::V6] {
            let mut rules = self.handle.rule().get(family).execute();
            loop {
                match rules.try_next().await {
                    Ok(Some(m)) => {
                        if let Some(d) = parse_rule(&m) {
                            if d.protocol == self.protocol {
                                raw.insert(d.rule.clone(), m);
                            }
                            self.core.dumped(d);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!("cannot read the kernel's policy rules: {e}");
                        self.core.abort_dump();
                        // Not at once again: at the next retry or dump time.
                        return;
                    }
                }
            }
        }
        self.core.end_dump();
        self.raw = raw;
    }

    /// One at a time, in order: an addition is in place before the
    /// deletion of the rule it replaces.
    async fn execute(&mut self, ops: Vec<RuleOp>) {
        for op in ops {
            let result = self.apply(&op).await;
            let k = op.rule();
            let now = Instant::now();
            match &result {
                Ok(()) => info!(
                    family = ?k.family, priority = k.priority, table = k.table,
                    "policy rule {}: {}",
                    if matches!(op, RuleOp::Add(_)) { "added" } else { "removed" },
                    k.selector()
                ),
                Err(RuleError::Absent) => debug!(priority = k.priority, "policy rule already gone"),
                Err(e) => {
                    let failures = self.core.failures(k) + 1;
                    let what = match e {
                        RuleError::Exists => "the kernel holds the same rule already".to_string(),
                        RuleError::Failed(e) => e.clone(),
                        RuleError::Absent => String::new(),
                    };
                    if failures == 1 {
                        warn!(family = ?k.family, priority = k.priority, table = k.table,
                            "policy rule {} failed, will retry: {what}", k.selector());
                    } else if failures == 5 {
                        error!(family = ?k.family, priority = k.priority, table = k.table,
                            "the kernel keeps refusing policy rule {}: {what}", k.selector());
                    }
                }
            }
            if matches!(result, Err(RuleError::Exists)) {
                // Ours after all, or another's: the next dump says, at once.
                self.next_dump = now;
            }
            if matches!(op, RuleOp::Delete(_)) && matches!(result, Ok(()) | Err(RuleError::Absent))
            {
                self.raw.remove(k);
            }
            self.core.result(&op, result, now);
        }
    }

    async fn apply(&self, op: &RuleOp) -> Result<(), RuleError> {
        let result = match op {
            RuleOp::Add(k) => {
                let mut req = self.handle.rule().add();
                *req.message_mut() = message(k, self.protocol);
                req.execute().await
            }
            RuleOp::Delete(k) => {
                let msg = (self.raw.get(k).cloned()).unwrap_or_else(|| message(k, self.protocol));
                self.handle.rule().del(msg).execute().await
            }
        };
        result.map_err(|e| match &e {
            rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::EEXIST => RuleError::Exists,
            rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::ENOENT => RuleError::Absent,
            _ => RuleError::Failed(e.to_string()),
        })
    }
}

/// The netlink message of one of our rules: "lookup `table`", tagged with
/// our protocol, every selector it has (the mark always with its mask: a
/// mark of 0 then matches unmarked packets, not every packet).
pub(crate) fn message(k: &KernelRule, protocol: u8) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = match k.family {
        Family::Ipv4 => AddressFamily::Inet,
        Family::Ipv6 => AddressFamily::Inet6,
    };
    m.header.action = RuleAction::ToTable;
    m.header.tos = k.tos;
    m.header.table = u8::try_from(k.table).unwrap_or(0);
    let a = &mut m.attributes;
    a.push(RuleAttribute::Priority(k.priority));
    a.push(RuleAttribute::Table(k.table));
    a.push(RuleAttribute::Protocol(RouteProtocol::from(protocol)));
    if let Some((v, mask)) = k.fwmark {
        a.push(RuleAttribute::FwMark(v));
        a.push(RuleAttribute::FwMask(mask));
    }
    if let Some(p) = k.from {
        m.header.src_len = p.prefix_len();
        a.push(RuleAttribute::Source(p.addr()));
    }
    if let Some(i) = &k.iif {
        a.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some((start, end)) = k.uid {
        a.push(RuleAttribute::UidRange(RuleUidRange { start, end }));
    }
    m
}

/// A rule of the kernel as the core compares it; `None` for another family.
pub(crate) fn parse_rule(m: &RuleMessage) -> Option<Dumped> {
    let family = match m.header.family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    let mut k = KernelRule {
        family,
        priority: 0,
        table: u32::from(m.header.table),
        fwmark: None,
        tos: m.header.tos,
        from: None,
        iif: None,
        uid: None,
        other: m.header.action != RuleAction::ToTable
            || m.header.dst_len != 0
            || m.header.flags.contains(RuleFlags::Invert),
    };
    let (mut mark, mut mask, mut protocol) = (None, None, 0);
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => k.priority = *p,
            RuleAttribute::Table(t) => k.table = *t,
            RuleAttribute::FwMark(v) => mark = Some(*v),
            RuleAttribute::FwMask(v) => mask = Some(*v),
            RuleAttribute::Source(addr) => {
                k.from = IpNet::new(*addr, m.header.src_len)
                    .ok()
                    .filter(|p| p.prefix_len() > 0);
            }
            RuleAttribute::Iifname(i) => k.iif = Some(i.clone()),
            RuleAttribute::UidRange(u) => k.uid = Some((u.start, u.end)),
            RuleAttribute::Protocol(p) => protocol = u8::from(*p),
            // -1 is "none": Linux 6.x reports FRA_SUPPRESS_PREFIXLEN so on every rule.
            RuleAttribute::L3MDev(false)
            | RuleAttribute::SuppressPrefixLen(u32::MAX)
            | RuleAttribute::SuppressIfGroup(u32::MAX) => {}
            // Selectors and actions kittbgpd never writes. Unknown
            // attributes (a newer kernel's) are left out of the comparison:
            // one reported on every rule must not make ours look unwanted.
            RuleAttribute::Destination(_)
            | RuleAttribute::Oifname(_)
            | RuleAttribute::Goto(_)
            | RuleAttribute::Realm(_)
            | RuleAttribute::TunId(_)
            | RuleAttribute::SuppressIfGroup(_)
            | RuleAttribute::SuppressPrefixLen(_)
            | RuleAttribute::L3MDev(true)
            | RuleAttribute::IpProtocol(_)
            | RuleAttribute::SourcePortRange(_)
            | RuleAttribute::DestinationPortRange(_) => k.other = true,
            _ => {}
        }
    }
    // The kernel leaves out a zero mark (a mark of 0 under a mask) and
    // reports the mask whenever there is a mark.
    k.fwmark = match (mark, mask) {
        (None, None) => None,
        (v, m) => Some((v.unwrap_or(0), m.unwrap_or(u32::MAX))),
    };
    Some(Dumped { rule: k, protocol })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::view_rule::FileRule;

    fn rule(text: &str, priority: u32, table: u32) -> Vec<KernelRule> {
        let r: FileRule = toml::from_str(text).unwrap();
        KernelRule::from_match(&r.check().unwrap(), priority, table)
    }

    /// What we send comes back equal from a dump (the kernel echoes the
    /// same attributes): adoption after a restart depends on it.
    #[test]
    fn message_and_parse_agree() {
        let rules = [
            rule("fwmark = \"0x2\"", 20000, 101),
            rule("fwmark = \"0x0/0xf0\"", 20001, 101),
            rule(
                "from = \"10.9.0.0/16\"\niif = \"eth0\"\ndscp = 1",
                20002,
                300,
            ),
            rule("uid = \"1000-1999\"\nfrom = \"fd00::/8\"", 20003, 102),
            rule("dscp = 46\nfrom = \"::/0\"", 20004, 102),
        ];
        for k in rules.iter().flatten() {
            let mut m = message(k, 200);
            if k.fwmark == Some((0, 0xf0)) {
                // As the kernel reports it: no FRA_FWMARK for a zero mark.
                m.attributes
                    .retain(|a| !matches!(a, RuleAttribute::FwMark(_)));
            }
            let d = parse_rule(&m).unwrap();
            assert_eq!((&d.rule, d.protocol), (k, 200));
            // As Linux 6.x dumps every rule: suppress_prefixlen -1 (none).
            m.attributes
                .push(RuleAttribute::SuppressPrefixLen(u32::MAX));
            assert_eq!(parse_rule(&m).unwrap().rule, *k);
        }
        let mut m = message(&rules[0][0], 200);
        m.attributes.push(RuleAttribute::Oifname("wg0".into()));
        assert!(parse_rule(&m).unwrap().rule.other);
        let mut m = message(&rules[0][0], 200);
        m.header.action = RuleAction::Blackhole;
        assert!(parse_rule(&m).unwrap().rule.other);
    }
}
