//! BMP (RFC 7854) messages, sans-IO: encoders only, time passed in. The
//! runtime (`runtime/bmp.rs`) moves them to collectors; the RIB task, the one
//! owner of routes and of the order of peer events, builds them.

mod routes;
#[cfg(test)]
mod tests;

pub use routes::{as_received, route_monitoring_updates, split_messages};

use bytes::{BufMut, Bytes, BytesMut};
use std::net::{IpAddr, Ipv4Addr};

pub const VERSION: u8 = 3;

/// Message types (RFC 7854 §4.1).
pub const ROUTE_MONITORING: u8 = 0;
pub const STATISTICS_REPORT: u8 = 1;
pub const PEER_DOWN: u8 = 2;
pub const PEER_UP: u8 = 3;
pub const INITIATION: u8 = 4;
pub const TERMINATION: u8 = 5;

/// Peer flags (§4.2): V = IPv6 address, L = post-policy Adj-RIB-In.
pub const FLAG_V: u8 = 0x80;
pub const FLAG_L: u8 = 0x40;

/// Termination reasons (§4.5).
pub const TERM_ADMIN_CLOSE: u16 = 0;
pub const TERM_OUT_OF_RESOURCES: u16 = 2;

/// Statistics types (§4.8).
pub const STAT_REJECTED: u16 = 0;
pub const STAT_ADJ_RIB_IN: u16 = 7;
pub const STAT_LOC_RIB: u16 = 8;

/// Who a per-peer message is about (§4.2 per-peer header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerHeader {
    pub address: IpAddr,
    pub asn: u32,
    pub bgp_id: Ipv4Addr,
    /// Seconds and microseconds since the epoch.
    pub time: (u32, u32),
}

/// Why a session went down (§4.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// 1: we sent this NOTIFICATION (the whole message, header included).
    LocalNotification(Bytes),
    /// 2: we closed without a NOTIFICATION; the FSM event code (0: none).
    LocalNoNotification(u16),
    /// 3: the peer sent this NOTIFICATION.
    RemoteNotification(Bytes),
    /// 4: the peer closed the connection without a NOTIFICATION.
    RemoteNoNotification,
    /// 5: the neighbor was removed from the configuration.
    Deconfigured,
}

fn header(out: &mut BytesMut, kind: u8, body_len: usize) {
    out.put_u8(VERSION);
    out.put_u32((6 + body_len) as u32);
    out.put_u8(kind);
}

fn per_peer(out: &mut BytesMut, p: &PeerHeader, flags: u8) {
    out.put_u8(0); // Global Instance Peer
    let v6 = matches!(p.address, IpAddr::V6(_));
    out.put_u8(flags | if v6 { FLAG_V } else { 0 });
    out.put_u64(0); // Peer Distinguisher
    put_address(out, p.address);
    out.put_u32(p.asn);
    out.put_slice(&p.bgp_id.octets());
    out.put_u32(p.time.0);
    out.put_u32(p.time.1);
}

/// 16 octets: an IPv4 address in the last 4, zeros before (§4.2).
fn put_address(out: &mut BytesMut, a: IpAddr) {
    match a {
        IpAddr::V4(a) => {
            out.put_bytes(0, 12);
            out.put_slice(&a.octets());
        }
        IpAddr::V6(a) => out.put_slice(&a.octets()),
    }
}

fn message(kind: u8, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::new();
    body(&mut b);
    let mut out = BytesMut::with_capacity(6 + b.len());
    header(&mut out, kind, b.len());
    out.extend_from_slice(&b);
    out.freeze()
}

fn tlv(out: &mut BytesMut, t: u16, v: &[u8]) {
    out.put_u16(t);
    out.put_u16(v.len().min(u16::MAX as usize) as u16);
    out.put_slice(&v[..v.len().min(u16::MAX as usize)]);
}

/// Initiation (§4.3) with sysDescr (1) and sysName (2), both required.
pub fn initiation(sys_descr: &str, sys_name: &str) -> Bytes {
    message(INITIATION, |b| {
        tlv(b, 1, sys_descr.as_bytes());
        tlv(b, 2, sys_name.as_bytes());
    })
}

/// Termination (§4.5) with a reason TLV (1).
pub fn termination(reason: u16) -> Bytes {
    message(TERMINATION, |b| tlv(b, 1, &reason.to_be_bytes()))
}

/// Peer Up (§4.10): local address and ports, then the OPEN we sent and the one
/// we received, whole messages.
pub fn peer_up(
    p: &PeerHeader,
    local: IpAddr,
    local_port: u16,
    remote_port: u16,
    sent_open: &[u8],
    received_open: &[u8],
) -> Bytes {
    message(PEER_UP, |b| {
        per_peer(b, p, 0);
        put_address(b, local);
        b.put_u16(local_port);
        b.put_u16(remote_port);
        b.put_slice(sent_open);
        b.put_slice(received_open);
    })
}

/// Peer Down (§4.9).
pub fn peer_down(p: &PeerHeader, reason: &DownReason) -> Bytes {
    message(PEER_DOWN, |b| {
        per_peer(b, p, 0);
        match reason {
            DownReason::LocalNotification(n) => {
                b.put_u8(1);
                b.put_slice(n);
            }
            DownReason::LocalNoNotification(event) => {
                b.put_u8(2);
                b.put_u16(*event);
            }
            DownReason::RemoteNotification(n) => {
                b.put_u8(3);
                b.put_slice(n);
            }
            DownReason::RemoteNoNotification => b.put_u8(4),
            DownReason::Deconfigured => b.put_u8(5),
        }
    })
}

/// Route Monitoring (§4.6): one whole UPDATE; `post_policy` sets the L flag.
pub fn route_monitoring(p: &PeerHeader, post_policy: bool, update: &[u8]) -> Bytes {
    message(ROUTE_MONITORING, |b| {
        per_peer(b, p, if post_policy { FLAG_L } else { 0 });
        b.put_slice(update);
    })
}

/// Statistics Report (§4.8): prefixes rejected by import policy (32-bit
/// counter), routes in the Adj-RIB-In and in the Loc-RIB from this peer (64-bit gauges).
pub fn stats_report(p: &PeerHeader, rejected: u32, adj_rib_in: u64, loc_rib: u64) -> Bytes {
    message(STATISTICS_REPORT, |b| {
        per_peer(b, p, 0);
        b.put_u32(3);
        tlv(b, STAT_REJECTED, &rejected.to_be_bytes());
        tlv(b, STAT_ADJ_RIB_IN, &adj_rib_in.to_be_bytes());
        tlv(b, STAT_LOC_RIB, &loc_rib.to_be_bytes());
    })
}
