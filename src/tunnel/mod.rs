//! WireGuard tunnels, sans-IO: the tunnels the config wants vs the ones
//! running -> operations ([`diff`]); which backend to use ([`choose_backend`]);
//! link liveness from handshake age ([`liveness`]). The calls to WireGuard and
//! rtnetlink live in `runtime/tunnels.rs`.
//!
//! Rules the diff keeps:
//! - only interfaces named in the config, or created by this node earlier
//!   (`owned`, remembered in a state file), are ever touched;
//! - only what differs is set: a changed endpoint is one peer update, the
//!   tunnel, its keys and its session are left alone;
//! - an endpoint not configured (the other end dials us) is never overwritten
//!   with nothing: WireGuard learns it from the peer's packets.

pub mod liveness;
#[cfg(test)]
mod tests;

use crate::config::wireguard::{WgBackend, WgKey};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv6Addr, SocketAddr};

/// What one tunnel should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub private_key: WgKey,
    pub listen_port: u16,
    pub peer: PeerSpec,
    pub mtu: u32,
    /// Our link-local address (a /64 on the interface).
    pub address: Ipv6Addr,
}

/// The single peer of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub public_key: WgKey,
    pub preshared_key: Option<WgKey>,
    /// Resolved endpoint; `None`: not configured (learned from the peer).
    pub endpoint: Option<SocketAddr>,
    /// Persistent keepalive, s (0: off).
    pub keepalive: u16,
}

/// What runs under one name (read from the kernel / wireguard-go).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actual {
    /// A WireGuard device answers under that name (else: some other interface).
    pub wireguard: bool,
    pub up: bool,
    pub mtu: Option<u32>,
    /// IPv6 link-local addresses on the interface.
    pub link_local: Vec<Ipv6Addr>,
    pub private_key: Option<WgKey>,
    pub listen_port: Option<u16>,
    pub peers: Vec<ActualPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualPeer {
    pub public_key: WgKey,
    pub preshared_key: Option<WgKey>,
    pub endpoint: Option<SocketAddr>,
    pub keepalive: u16,
    /// Exactly `0.0.0.0/0` and `::/0`.
    pub allows_all: bool,
}

/// One step to bring the running tunnels to the desired ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create the interface (start `wireguard-go`, or a kernel link).
    Create {
        name: String,
    },
    /// Set the device's private key and/or listen port.
    SetDevice {
        name: String,
        private_key: Option<WgKey>,
        listen_port: Option<u16>,
    },
    /// Add the peer or change some of its settings (`None`: leave as is).
    SetPeer {
        name: String,
        public_key: WgKey,
        /// `Some(None)`: remove the preshared key.
        preshared_key: Option<Option<WgKey>>,
        endpoint: Option<SocketAddr>,
        keepalive: Option<u16>,
        /// Replace the allowed IPs with `0.0.0.0/0, ::/0`.
        allow_all: bool,
    },
    /// A peer that is not the configured one.
    RemovePeer {
        name: String,
        public_key: WgKey,
    },
    SetMtu {
        name: String,
        mtu: u32,
    },
    /// No automatic link-local address: only ours (before the link goes up).
    NoAddrGen {
        name: String,
    },
    AddAddress {
        name: String,
        address: Ipv6Addr,
    },
    DelAddress {
        name: String,
        address: Ipv6Addr,
    },
    Up {
        name: String,
    },
    /// A tunnel this node created that the config no longer names.
    Delete {
        name: String,
    },
    /// The name is configured but holds something that is not WireGuard: left alone.
    Conflict {
        name: String,
        why: String,
    },
}

/// The operations that turn `actual` into `desired`. `actual` holds every
/// desired or owned name that exists; `owned`: names this node created.
/// `start`: every tunnel is brought up; later (periodic repair) only a tunnel
/// just created is: a link set down by hand stays down (the operator's way to
/// take it out of service; its session stays held down meanwhile).
pub fn diff(
    desired: &[Desired],
    actual: &BTreeMap<String, Actual>,
    owned: &BTreeSet<String>,
    start: bool,
) -> Vec<Op> {
    let mut ops = Vec::new();
    for d in desired {
        let name = || d.name.clone();
        let fresh = Actual {
            wireguard: true,
            ..Actual::default()
        };
        let created = !actual.contains_key(&d.name);
        let a = match actual.get(&d.name) {
            None => {
                ops.push(Op::Create { name: name() });
                &fresh
            }
            Some(a) if !a.wireguard => {
                ops.push(Op::Conflict {
                    name: name(),
                    why: "an interface of that name exists and is not a WireGuard device".into(),
                });
                continue;
            }
            Some(a) => a,
        };
        let private_key = (a.private_key != Some(d.private_key)).then_some(d.private_key);
        let listen_port = (a.listen_port != Some(d.listen_port)).then_some(d.listen_port);
        if private_key.is_some() || listen_port.is_some() {
            ops.push(Op::SetDevice {
                name: name(),
                private_key,
                listen_port,
            });
        }
        for p in &a.peers {
            if p.public_key != d.peer.public_key {
                ops.push(Op::RemovePeer {
                    name: name(),
                    public_key: p.public_key,
                });
            }
        }
        let want = &d.peer;
        match a.peers.iter().find(|p| p.public_key == want.public_key) {
            None => ops.push(Op::SetPeer {
                name: name(),
                public_key: want.public_key,
                preshared_key: want.preshared_key.map(Some),
                endpoint: want.endpoint,
                keepalive: Some(want.keepalive),
                allow_all: true,
            }),
            Some(p) => {
                let op = Op::SetPeer {
                    name: name(),
                    public_key: want.public_key,
                    preshared_key: (p.preshared_key != want.preshared_key)
                        .then_some(want.preshared_key),
                    endpoint: want.endpoint.filter(|e| p.endpoint != Some(*e)),
                    keepalive: (p.keepalive != want.keepalive).then_some(want.keepalive),
                    allow_all: !p.allows_all,
                };
                let changes = !matches!(
                    op,
                    Op::SetPeer {
                        preshared_key: None,
                        endpoint: None,
                        keepalive: None,
                        allow_all: false,
                        ..
                    }
                );
                if changes {
                    ops.push(op);
                }
            }
        }
        if a.mtu != Some(d.mtu) {
            ops.push(Op::SetMtu {
                name: name(),
                mtu: d.mtu,
            });
        }
        let bring_up = !a.up && (start || created);
        if bring_up {
            ops.push(Op::NoAddrGen { name: name() });
        }
        for addr in &a.link_local {
            if *addr != d.address {
                ops.push(Op::DelAddress {
                    name: name(),
                    address: *addr,
                });
            }
        }
        if !a.link_local.contains(&d.address) {
            ops.push(Op::AddAddress {
                name: name(),
                address: d.address,
            });
        }
        if bring_up {
            ops.push(Op::Up { name: name() });
        }
    }
    for name in owned {
        let wanted = desired.iter().any(|d| &d.name == name);
        if !wanted && actual.get(name).is_some_and(|a| a.wireguard) {
            ops.push(Op::Delete { name: name.clone() });
        }
    }
    ops
}

/// The backends this host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    /// The kernel module is loaded or installed.
    pub kernel: bool,
    /// `wireguard-go` (or `$WG_USERSPACE_IMPLEMENTATION`) is on the PATH.
    pub userspace: bool,
}

/// The backend actually used, or why none can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    Kernel,
    Userspace,
}

pub fn choose_backend(want: WgBackend, have: Available) -> Result<Chosen, String> {
    match (want, have.kernel, have.userspace) {
        (WgBackend::Kernel, true, _) | (WgBackend::Auto, true, _) => Ok(Chosen::Kernel),
        (WgBackend::Userspace, _, true) | (WgBackend::Auto, false, true) => Ok(Chosen::Userspace),
        (WgBackend::Kernel, false, _) => Err(
            "backend = \"kernel\" but the wireguard kernel module is neither loaded nor installed (modprobe wireguard; or backend = \"userspace\" with wireguard-go)".into(),
        ),
        (WgBackend::Userspace, _, false) => Err(
            "backend = \"userspace\" but wireguard-go is not on the PATH (install wireguard-go, or set WG_USERSPACE_IMPLEMENTATION)".into(),
        ),
        (WgBackend::Auto, false, false) => Err(
            "no WireGuard: no kernel module (modprobe wireguard) and no wireguard-go on the PATH".into(),
        ),
    }
}
