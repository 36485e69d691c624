//! Interface and address events from the kernel (rtnetlink multicast):
//! a tunnel going down ends its session at once, without waiting for the hold
//! timer; loopback addresses added to or removed from `lo` are originated or
//! withdrawn live.

use super::peer::PeerCmd;
use super::rib_task::RibMsg;
use crate::config::{Loopbacks, Neighbor};
use futures::StreamExt;
use ipnet::IpNet;
use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use std::collections::{BTreeSet, HashMap};
use tokio::sync::mpsc;
use tracing::{info, warn};

pub struct Watch {
    pub neighbors: Vec<Neighbor>,
    pub peers: Vec<mpsc::UnboundedSender<PeerCmd>>,
    pub rib: mpsc::Sender<RibMsg>,
    pub loopbacks: Loopbacks,
    /// Originated from the config, whatever `lo` holds.
    pub configured: BTreeSet<IpNet>,
}

pub async fn run(w: Watch) {
    let (mut connection, _, mut messages) = match rtnetlink::new_connection() {
        Ok(c) => c,
        Err(e) => return warn!("no interface events (netlink): {e}"),
    };
    let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if let Err(e) = connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, groups))
    {
        return warn!("no interface events (netlink bind): {e}");
    }
    tokio::spawn(connection);
    let lo_index = super::transport::if_index("lo").ok();
    let mut up: HashMap<String, bool> = HashMap::new();
    while let Some((message, _)) = messages.next().await {
        let NetlinkPayload::InnerMessage(msg) = message.payload else {
            continue;
        };
        match msg {
            RouteNetlinkMessage::NewLink(link) => on_link(&w, &mut up, &link, is_up(&link)),
            RouteNetlinkMessage::DelLink(link) => on_link(&w, &mut up, &link, false),
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a)
                if Some(a.header.index) == lo_index =>
            {
                if w.loopbacks.from_lo {
                    reoriginate(&w).await;
                }
            }
            _ => {}
        }
    }
}

fn is_up(link: &LinkMessage) -> bool {
    link.header.flags.contains(LinkFlags::Up) && link.header.flags.contains(LinkFlags::Running)
}

fn on_link(w: &Watch, up: &mut HashMap<String, bool>, link: &LinkMessage, now_up: bool) {
    let Some(name) = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    }) else {
        return;
    };
    let was_up = up.insert(name.clone(), now_up).unwrap_or(true);
    if was_up && !now_up {
        for (n, tx) in w.neighbors.iter().zip(&w.peers) {
            if n.interface.as_deref() == Some(name.as_str()) {
                info!(peer = %n.name, interface = %name, "interface down: ending the session now");
                let _ = tx.send(PeerCmd::Link {
                    up: false,
                    why: "interface",
                });
            }
        }
    } else if !was_up && now_up {
        info!(interface = %name, "interface up");
        for (n, tx) in w.neighbors.iter().zip(&w.peers) {
            if n.interface.as_deref() == Some(name.as_str()) {
                let _ = tx.send(PeerCmd::Link {
                    up: true,
                    why: "interface",
                });
            }
        }
    }
}

async fn reoriginate(w: &Watch) {
    match super::lo::loopback_addresses().await {
        Ok(found) => {
            let mut set = w.configured.clone();
            set.extend(found.into_iter().filter(|p| w.loopbacks.admits(*p)));
            let _ = w.rib.send(RibMsg::Originate(set)).await;
        }
        Err(e) => warn!("cannot read addresses on lo: {e}"),
    }
}
