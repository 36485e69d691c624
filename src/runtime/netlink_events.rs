//! Interface and address events from the kernel (rtnetlink multicast):
//! a tunnel going down ends its session at once, without waiting for the hold
//! timer; loopback addresses added to or removed from `lo` are originated or
//! withdrawn live.
//!
//! Interface state comes from a dump at start, again every few seconds and
//! after lost events (ENOBUFS), and from events in between: an interface not
//! seen (missing) is down, and a lost or reordered event cannot hold a
//! session down for longer than until the next dump.

use super::peer::PeerCmd;
use super::rib_task::RibMsg;
use crate::config::originate::Originated;
use crate::config::{Loopbacks, Neighbor};
use crate::session::HoldReason;
use futures::{StreamExt, TryStreamExt};
use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::Handle;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// How often the whole link table is read again, whatever the events said.
const REDUMP_EVERY: Duration = Duration::from_secs(10);

/// The neighbors and their peer tasks, and what we originate: set at start
/// and by every reload ([`WatchCmd`]).
pub struct Watch {
    pub neighbors: Vec<(Neighbor, mpsc::UnboundedSender<PeerCmd>)>,
    pub rib: mpsc::Sender<RibMsg>,
    /// The one owner of what we originate (config + `lo`).
    pub originated: Originated,
}

/// From the reload owner.
pub enum WatchCmd {
    /// The live neighbors now (added ones get their interface state at once).
    Neighbors(Vec<(Neighbor, mpsc::UnboundedSender<PeerCmd>)>),
    /// The reloaded `[loopbacks]`.
    Loopbacks(Loopbacks),
    /// The reloaded `[overlay]`.
    Overlay(crate::config::Overlay),
}

/// The up/down state of the interfaces neighbors use, as last told.
/// Sessions start not held, so every watched interface starts "up"; the
/// first dump holds down those missing or down.
#[derive(Debug)]
struct Links {
    up: HashMap<String, bool>,
}

impl Links {
    fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Links {
        Links {
            up: names.into_iter().map(|n| (n.to_string(), true)).collect(),
        }
    }

    /// Watch exactly `names` now: new ones start "up" (the next dump says),
    /// known ones keep their state. Returns the known-down ones.
    fn watch<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let names: BTreeSet<&str> = names.into_iter().collect();
        self.up.retain(|n, _| names.contains(n.as_str()));
        for n in names {
            self.up.entry(n.to_string()).or_insert(true);
        }
        self.up
            .iter()
            .filter(|(_, up)| !**up)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// An event: `Some(up)` if a watched interface changed.
    fn event(&mut self, name: &str, up: bool) -> Option<bool> {
        let was = self.up.get_mut(name)?;
        (std::mem::replace(was, up) != up).then_some(up)
    }

    /// A dump (name -> up) replaces what events said; watched interfaces not
    /// in it are missing, so down. Returns the changes.
    fn dump(&mut self, seen: &HashMap<String, bool>) -> Vec<(String, bool)> {
        let mut changes = Vec::new();
        for (name, was) in self.up.iter_mut() {
            let now = seen.get(name).copied().unwrap_or(false);
            if *was != now {
                *was = now;
                changes.push((name.clone(), now));
            }
        }
        changes.sort();
        changes
    }
}

pub async fn run(mut w: Watch, mut cmds: mpsc::UnboundedReceiver<WatchCmd>) {
    let mut links = Links::new(
        w.neighbors
            .iter()
            .filter_map(|(n, _)| n.interface.as_deref()),
    );
    let (mut connection, handle, mut messages) = match rtnetlink::new_connection() {
        Ok(c) => c,
        Err(e) => {
            warn!("no interface events (netlink): {e}");
            return commands_only(w, cmds).await;
        }
    };
    let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if let Err(e) = connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, groups))
    {
        warn!("no interface events (netlink bind): {e}");
        return commands_only(w, cmds).await;
    }
    tokio::spawn(connection);
    let lo_index = super::transport::if_index("lo").ok();
    redump(&w, &handle, &mut links).await;
    let mut tick = tokio::time::interval(REDUMP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let message = tokio::select! {
            m = messages.next() => match m {
                Some((m, _)) => m,
                None => {
                    warn!("interface events stopped");
                    return commands_only(w, cmds).await;
                }
            },
            _ = tick.tick() => {
                redump(&w, &handle, &mut links).await;
                continue;
            }
            cmd = cmds.recv() => {
                let Some(cmd) = cmd else { return };
                if command(&mut w, &mut links, cmd).await {
                    redump(&w, &handle, &mut links).await;
                }
                continue;
            }
        };
        let msg = match message.payload {
            NetlinkPayload::InnerMessage(msg) => msg,
            NetlinkPayload::Overrun(_) => {
                warn!("interface events lost (ENOBUFS): reading links and addresses again");
                redump(&w, &handle, &mut links).await;
                reoriginate(&mut w).await;
                continue;
            }
            _ => continue,
        };
        match msg {
            RouteNetlinkMessage::NewLink(link) => {
                if let Some(name) = link_name(&link) {
                    if let Some(up) = links.event(&name, is_up(&link)) {
                        on_link(&w, &name, up);
                    }
                }
            }
            RouteNetlinkMessage::DelLink(link) => {
                if let Some(name) = link_name(&link) {
                    if let Some(up) = links.event(&name, false) {
                        on_link(&w, &name, up);
                    }
                }
            }
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a)
                if Some(a.header.index) == lo_index =>
            {
                reoriginate(&mut w).await;
            }
            _ => {}
        }
    }
}

/// Without netlink events: still the owner of what we originate.
async fn commands_only(mut w: Watch, mut cmds: mpsc::UnboundedReceiver<WatchCmd>) {
    let mut links = Links::new([]);
    while let Some(cmd) = cmds.recv().await {
        command(&mut w, &mut links, cmd).await;
    }
}

/// A reload's command; `true` if the interfaces should be read again now.
async fn command(w: &mut Watch, links: &mut Links, cmd: WatchCmd) -> bool {
    match cmd {
        WatchCmd::Neighbors(now) => {
            let down = links.watch(now.iter().filter_map(|(n, _)| n.interface.as_deref()));
            // A new peer task (added, or its session restarted), or one whose
            // interface changed, learns that interface's known state at once,
            // like one configured at start (an unknown one: the dump says).
            for (n, tx) in &now {
                let before = w.neighbors.iter().find(|(_, t)| t.same_channel(tx));
                let moved = before.is_none_or(|(o, _)| o.interface != n.interface);
                if let (true, Some(i)) = (moved, n.interface.as_ref()) {
                    let up = !down.contains(i);
                    if !up {
                        info!(peer = %n.name, interface = %i, "interface down or missing: session held down");
                    }
                    let _ = tx.send(PeerCmd::Link {
                        up,
                        why: HoldReason::Interface,
                    });
                }
            }
            w.neighbors = now;
            true
        }
        WatchCmd::Loopbacks(l) => {
            let from_lo = l.from_lo;
            let set = w.originated.set_loopbacks(l);
            reloaded(w, set, from_lo).await;
            false
        }
        WatchCmd::Overlay(o) => {
            let from_lo = o.from_lo;
            let set = w.originated.set_overlay(o);
            reloaded(w, set, from_lo).await;
            false
        }
    }
}

/// After a reload of `[loopbacks]` or `[overlay]`: the new originated set
/// (if it changed) to the RIB, then `lo` read again if it matters now.
async fn reloaded(
    w: &mut Watch,
    set: Option<std::collections::BTreeSet<ipnet::IpNet>>,
    from_lo: bool,
) {
    if let Some(set) = set {
        info!(prefixes = ?set, "originating (reload)");
        let _ = w.rib.send(RibMsg::Originate(set)).await;
    }
    if from_lo {
        reoriginate(w).await;
    }
}

async fn redump(w: &Watch, handle: &Handle, links: &mut Links) {
    let seen: Result<HashMap<String, bool>, _> = handle
        .link()
        .get()
        .execute()
        .try_filter_map(|l| async move { Ok(link_name(&l).map(|n| (n, is_up(&l)))) })
        .try_collect()
        .await;
    match seen {
        Ok(seen) => {
            for (name, up) in links.dump(&seen) {
                on_link(w, &name, up);
            }
        }
        Err(e) => warn!("cannot read interfaces: {e}"),
    }
    super::code_pages::periodic_work_done();
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn is_up(link: &LinkMessage) -> bool {
    link.header.flags.contains(LinkFlags::Up) && link.header.flags.contains(LinkFlags::Running)
}

fn on_link(w: &Watch, name: &str, up: bool) {
    if up {
        info!(interface = %name, "interface up");
    }
    for (n, tx) in &w.neighbors {
        if n.interface.as_deref() == Some(name) {
            if !up {
                info!(peer = %n.name, interface = %name, "interface down or missing: ending the session now");
            }
            let _ = tx.send(PeerCmd::Link {
                up,
                why: HoldReason::Interface,
            });
        }
    }
}

/// `lo` changed (or events were lost): read it, tell the RIB if what we
/// originate changed.
async fn reoriginate(w: &mut Watch) {
    if !w.originated.from_lo() {
        return;
    }
    match super::lo::loopback_addresses().await {
        Ok(found) => {
            if let Some(set) = w.originated.set_on_lo(found) {
                info!(prefixes = ?set, "originating (lo changed)");
                let _ = w.rib.send(RibMsg::Originate(set)).await;
            }
        }
        Err(e) => warn!("cannot read addresses on lo: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::Links;
    use std::collections::HashMap;

    fn seen(v: &[(&str, bool)]) -> HashMap<String, bool> {
        v.iter().map(|(n, u)| (n.to_string(), *u)).collect()
    }

    #[test]
    fn an_interface_not_seen_is_down() {
        let mut l = Links::new(["wg1", "wg2"]);
        assert_eq!(l.dump(&seen(&[("wg1", true)])), vec![("wg2".into(), false)]);
        assert_eq!(l.event("wg2", true), Some(true), "created later: up");
        assert_eq!(l.event("eth0", false), None, "not a neighbor's");
    }

    #[test]
    fn watching_a_new_set_keeps_known_states_and_drops_the_rest() {
        let mut l = Links::new(["wg1", "wg2"]);
        l.dump(&seen(&[("wg1", true)]));
        let down = l.watch(["wg2", "wg3"]);
        assert_eq!(
            down.into_iter().collect::<Vec<_>>(),
            ["wg2"],
            "wg2 stays known down"
        );
        assert_eq!(l.event("wg1", false), None, "no longer watched");
        assert_eq!(
            l.dump(&seen(&[("wg2", true)])),
            vec![("wg2".into(), true), ("wg3".into(), false)]
        );
    }

    #[test]
    fn the_latest_dump_wins_over_lost_or_reordered_events() {
        let mut l = Links::new(["wg1"]);
        // A late "down" event after the "up" one (or the "up" lost): held down...
        assert_eq!(l.event("wg1", false), Some(false));
        assert_eq!(l.event("wg1", false), None);
        // ...only until the next dump says otherwise.
        assert_eq!(l.dump(&seen(&[("wg1", true)])), vec![("wg1".into(), true)]);
        assert!(
            l.dump(&seen(&[("wg1", true)])).is_empty(),
            "no change, no command"
        );
    }
}
