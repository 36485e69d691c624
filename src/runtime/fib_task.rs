//! The kernel FIB worker: runs what [`crate::fib::Fib`] decides over rtnetlink.
//! Best-route changes come from the RIB task; operations of one batch run
//! concurrently on one netlink socket; results go back to the core.

use crate::config::{Kernel, Loopbacks, OnStop};
use crate::fib::{Fib, FibError, FibOp, FibRoute};
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteVia,
};
use rtnetlink::{Handle, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

#[derive(Debug)]
pub enum FibMsg {
    /// The best route of `prefix`: via `gateway` on `interface`, or none.
    Best {
        prefix: IpNet,
        route: Option<(IpAddr, Option<String>)>,
    },
    /// Clean stop: keep or remove what is installed, then answer.
    Stop { done: oneshot::Sender<()> },
}

pub struct FibTask {
    cfg: Kernel,
    handle: Handle,
    fib: Fib,
}

impl FibTask {
    /// Open netlink and read what an earlier run left in the table.
    pub async fn start(cfg: Kernel, loopbacks: &Loopbacks) -> Result<FibTask, String> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("netlink: {e}"))?;
        tokio::spawn(connection);
        let mut ours = Vec::new();
        let mut foreign = Vec::new();
        for msg in dump(&handle).await? {
            let Some(kr) = parse_route(&msg) else {
                continue;
            };
            if kr.table != cfg.table || !loopbacks.admits(kr.prefix) {
                continue;
            }
            if kr.protocol == cfg.protocol {
                if let (Some(gateway), Some(interface)) = (kr.gateway, kr.interface) {
                    ours.push(FibRoute {
                        prefix: kr.prefix,
                        gateway,
                        interface,
                    });
                }
            } else if kr.metric == cfg.metric {
                warn!(prefix = %kr.prefix, protocol = kr.protocol, metric = kr.metric, "conflict: another protocol holds this loopback at our metric; left alone");
                foreign.push(kr.prefix);
            } else {
                // e.g. the kernel's own route for an address on lo: another metric, no clash.
                debug!(prefix = %kr.prefix, protocol = kr.protocol, metric = kr.metric, "another protocol's route for a loopback, at another metric");
            }
        }
        if !ours.is_empty() {
            info!(routes = ours.len(), grace = ?cfg.startup_grace, "kernel routes of an earlier run kept while sessions come up");
        }
        let fib = Fib::new(ours, foreign, Instant::now(), cfg.startup_grace);
        Ok(FibTask { cfg, handle, fib })
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<FibMsg>) {
        loop {
            let deadline = self.fib.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => Some(m),
                    None => return,
                },
                () = sleep => None,
            };
            // Take everything queued, then act once: many changes, one batch.
            let mut msgs: Vec<FibMsg> = first.into_iter().collect();
            while let Ok(m) = rx.try_recv() {
                msgs.push(m);
            }
            for m in msgs {
                match m {
                    FibMsg::Best { prefix, route } => {
                        let r = route.map(|(gateway, interface)| FibRoute {
                            prefix,
                            gateway,
                            interface: interface.unwrap_or_default(),
                        });
                        self.fib.set(prefix, r);
                    }
                    FibMsg::Stop { done } => {
                        if self.cfg.on_stop == OnStop::Remove {
                            let ops = self.fib.remove_all();
                            info!(
                                routes = ops.len(),
                                "removing kernel routes (on_stop = remove)"
                            );
                            self.execute(ops).await;
                        } else {
                            info!(
                                routes = self.fib.counts().installed,
                                "keeping kernel routes (on_stop = keep)"
                            );
                        }
                        let _ = done.send(());
                        return;
                    }
                }
            }
            let ops = self.fib.poll(Instant::now());
            self.execute(ops).await;
        }
    }

    async fn execute(&mut self, ops: Vec<FibOp>) {
        if ops.is_empty() {
            return;
        }
        let results = futures::future::join_all(ops.iter().map(|op| self.apply(op))).await;
        let now = Instant::now();
        for (op, result) in ops.iter().zip(results) {
            match &result {
                Ok(()) => debug!(?op, "kernel route done"),
                Err(FibError::Conflict) => {
                    warn!(prefix = %op.prefix(), "conflict: the kernel has another route at our metric; left alone")
                }
                Err(FibError::Failed(e)) => {
                    warn!(prefix = %op.prefix(), "kernel route failed, will retry: {e}")
                }
            }
            self.fib.result(op, result, now);
        }
    }

    async fn apply(&self, op: &FibOp) -> Result<(), FibError> {
        let result = match op {
            FibOp::Replace(r) => {
                let msg = self.message(r.prefix, Some(r))?;
                self.handle.route().add(msg).replace().execute().await
            }
            FibOp::Delete(prefix) => {
                let msg = self.message(*prefix, None)?;
                self.handle.route().del(msg).execute().await
            }
        };
        result.map_err(|e| match &e {
            rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::EEXIST => {
                FibError::Conflict
            }
            _ => FibError::Failed(e.to_string()),
        })
    }

    /// The netlink message for a route (with `r`) or for its deletion (without).
    fn message(&self, prefix: IpNet, r: Option<&FibRoute>) -> Result<RouteMessage, FibError> {
        let oif = match r.map(|r| r.interface.as_str()) {
            Some("") | None => None,
            Some(name) => Some(
                super::transport::if_index(name).map_err(|e| FibError::Failed(e.to_string()))?,
            ),
        };
        let protocol = RouteProtocol::from(self.cfg.protocol);
        let msg = match prefix {
            IpNet::V4(p) => {
                let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(p.addr(), p.prefix_len())
                    .table_id(self.cfg.table)
                    .protocol(protocol)
                    .priority(self.cfg.metric);
                if let Some(r) = r {
                    b = match r.gateway {
                        IpAddr::V4(g) => b.gateway(g),
                        // RFC 8950 next hop: IPv4 via an IPv6 gateway (RTA_VIA), no IPv4 on the tunnel needed.
                        IpAddr::V6(g) => b.via(g),
                    };
                    if let Some(src) = self.cfg.prefsrc4 {
                        b = b.pref_source(src);
                    }
                }
                if let Some(i) = oif {
                    b = b.output_interface(i);
                }
                b.build()
            }
            IpNet::V6(p) => {
                let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
                    .destination_prefix(p.addr(), p.prefix_len())
                    .table_id(self.cfg.table)
                    .protocol(protocol)
                    .priority(self.cfg.metric);
                if let Some(r) = r {
                    if let IpAddr::V6(g) = r.gateway {
                        b = b.gateway(g);
                    }
                    if let Some(src) = self.cfg.prefsrc6 {
                        b = b.pref_source(src);
                    }
                }
                if let Some(i) = oif {
                    b = b.output_interface(i);
                }
                b.build()
            }
        };
        Ok(msg)
    }
}

async fn dump(handle: &Handle) -> Result<Vec<RouteMessage>, String> {
    let mut out = Vec::new();
    let v4 = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    out.extend(
        v4.try_collect::<Vec<_>>()
            .await
            .map_err(|e| format!("route dump: {e}"))?,
    );
    let v6 = handle
        .route()
        .get(RouteMessageBuilder::<Ipv6Addr>::new().build())
        .execute();
    out.extend(
        v6.try_collect::<Vec<_>>()
            .await
            .map_err(|e| format!("route dump: {e}"))?,
    );
    Ok(out)
}

struct KernelRoute {
    prefix: IpNet,
    table: u32,
    protocol: u8,
    metric: u32,
    gateway: Option<IpAddr>,
    interface: Option<String>,
}

fn parse_route(msg: &RouteMessage) -> Option<KernelRoute> {
    let mut dst = None;
    let mut table = u32::from(msg.header.table);
    let mut metric = 0;
    let mut gateway = None;
    let mut interface = None;
    for a in &msg.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(IpAddr::V4(*d)),
            RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = Some(IpAddr::V6(*d)),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
            RouteAttribute::Via(RouteVia::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
            RouteAttribute::Via(RouteVia::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
            RouteAttribute::Oif(i) => interface = super::transport::if_name(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let prefix = IpNet::new(dst?, msg.header.destination_prefix_length).ok()?;
    Some(KernelRoute {
        prefix,
        table,
        protocol: u8::from(msg.header.protocol),
        metric,
        gateway,
        interface,
    })
}
