//! MRT export (RFC 6396), sans-IO: a table snapshot in, TABLE_DUMP_V2 records
//! out. No clock: the caller passes the timestamp.
//!
//! A dump holds two views, each a PEER_INDEX_TABLE (§4.3.1, view name
//! "loc-rib" / "adj-rib-in") followed by its RIB_IPV4_UNICAST and
//! RIB_IPV6_UNICAST records (§4.3.2), one per prefix with one RIB entry per
//! peer. Attributes follow §4.3.4: AS_PATH always with 4-octet AS numbers;
//! MP_REACH_NLRI carries only the next hop length and address (used for IPv6
//! next hops of IPv4 prefixes too, RFC 8950); no NEXT_HOP beside it.

#[cfg(test)]
mod tests;

use crate::wire::PathAttributes;
use bytes::{BufMut, BytesMut};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// MRT type TABLE_DUMP_V2 (RFC 6396 §4.3) and its subtypes.
pub const TABLE_DUMP_V2: u16 = 13;
pub const PEER_INDEX_TABLE: u16 = 1;
pub const RIB_IPV4_UNICAST: u16 = 2;
pub const RIB_IPV6_UNICAST: u16 = 4;
/// MRT type BGP4MP (§4.4) and subtype BGP4MP_MESSAGE_AS4 (§4.4.3).
pub const BGP4MP: u16 = 16;
pub const BGP4MP_MESSAGE_AS4: u16 = 4;

/// One peer of a view (§4.3.1 peer entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpPeer {
    pub bgp_id: Ipv4Addr,
    pub address: IpAddr,
    pub asn: u32,
}

/// One route of a prefix, from `peer` (an index into [`View::peers`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DumpEntry {
    pub peer: u16,
    pub next_hop: Option<IpAddr>,
    pub attrs: Arc<PathAttributes>,
}

/// Every route of one prefix in a view.
#[derive(Clone, Debug, PartialEq)]
pub struct DumpPrefix {
    pub prefix: IpNet,
    pub entries: Vec<DumpEntry>,
}

/// A named view: its peers and its routes.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub name: String,
    pub peers: Vec<DumpPeer>,
    pub prefixes: Vec<DumpPrefix>,
}

/// Appends the records of `view`: PEER_INDEX_TABLE then one RIB record per
/// prefix (IPv4 first, then IPv6). `seq` is the RIB sequence number (§4.3.2),
/// carried over between views. Every entry's originated time is `time`: the
/// RIB keeps no per-route learn time.
pub fn encode_view(
    view: &View,
    collector_id: Ipv4Addr,
    time: u32,
    seq: &mut u32,
    out: &mut BytesMut,
) {
    record(out, time, TABLE_DUMP_V2, PEER_INDEX_TABLE, |b| {
        b.put_slice(&collector_id.octets());
        let name = &view.name.as_bytes()[..view.name.len().min(u16::MAX as usize)];
        b.put_u16(name.len() as u16);
        b.put_slice(name);
        b.put_u16(view.peers.len().min(u16::MAX as usize) as u16);
        for p in view.peers.iter().take(u16::MAX as usize) {
            // Bit 0: IPv6 address; bit 1: 4-octet AS (§4.3.1).
            let v6 = p.address.is_ipv6();
            b.put_u8(u8::from(v6) | 2);
            b.put_slice(&p.bgp_id.octets());
            match p.address {
                IpAddr::V4(a) => b.put_slice(&a.octets()),
                IpAddr::V6(a) => b.put_slice(&a.octets()),
            }
            b.put_u32(p.asn);
        }
    });
    let mut sorted: Vec<&DumpPrefix> = view.prefixes.iter().collect();
    sorted.sort_by_key(|p| (p.prefix.addr().is_ipv6(), p.prefix));
    for p in sorted {
        let subtype = match p.prefix {
            IpNet::V4(_) => RIB_IPV4_UNICAST,
            IpNet::V6(_) => RIB_IPV6_UNICAST,
        };
        let s = *seq;
        *seq = seq.wrapping_add(1);
        record(out, time, TABLE_DUMP_V2, subtype, |b| {
            b.put_u32(s);
            crate::wire::nlri::put(b, p.prefix);
            let entries: Vec<&DumpEntry> = p.entries.iter().take(u16::MAX as usize).collect();
            b.put_u16(entries.len() as u16);
            for e in entries {
                b.put_u16(e.peer);
                b.put_u32(time);
                let attrs = rib_entry_attributes(p.prefix, e);
                b.put_u16(attrs.len().min(u16::MAX as usize) as u16);
                b.put_slice(&attrs[..attrs.len().min(u16::MAX as usize)]);
            }
        });
    }
}

/// The attributes of one RIB entry (§4.3.4).
fn rib_entry_attributes(prefix: IpNet, e: &DumpEntry) -> BytesMut {
    let mut a = PathAttributes {
        mp_reach: None,
        mp_unreach: None,
        next_hop: None,
        ..(*e.attrs).clone()
    };
    let mut mp_next_hop: Option<Vec<u8>> = None;
    match (prefix, e.next_hop) {
        (IpNet::V4(_), Some(IpAddr::V4(nh))) => a.next_hop = Some(nh),
        (IpNet::V6(_), Some(IpAddr::V4(nh))) => mp_next_hop = Some(nh.octets().to_vec()),
        (_, Some(IpAddr::V6(nh))) => mp_next_hop = Some(v6_next_hop(nh)),
        (_, None) => {}
    }
    let mut out = BytesMut::new();
    if let Some(nh) = mp_next_hop {
        // Optional non-transitive, type 14: next hop length and address only.
        out.put_u8(0x80);
        out.put_u8(14);
        out.put_u8(nh.len() as u8 + 1);
        out.put_u8(nh.len() as u8);
        out.put_slice(&nh);
    }
    // Attributes the codec cannot encode (an AS_PATH segment too long) are
    // left out of the entry rather than failing the whole dump.
    let mut rest = BytesMut::new();
    if a.encode_common(true, &mut rest).is_err() {
        rest.clear();
        a.as_path = None;
        let _ = a.encode_common(true, &mut rest);
    }
    out.extend_from_slice(&rest);
    out
}

/// A link-local next hop is sent as `::` plus the link-local address (32
/// octets, RFC 2545 §3), as BIRD sends it on link-local sessions.
fn v6_next_hop(nh: Ipv6Addr) -> Vec<u8> {
    let mut v = Vec::with_capacity(32);
    if nh.segments()[0] & 0xffc0 == 0xfe80 {
        v.extend_from_slice(&Ipv6Addr::UNSPECIFIED.octets());
    }
    v.extend_from_slice(&nh.octets());
    v
}

/// One BGP4MP_MESSAGE_AS4 record (§4.4.3): a whole BGP message (with its
/// header) as exchanged between `peer` and `local`.
#[allow(clippy::too_many_arguments)]
pub fn encode_bgp4mp_message(
    out: &mut BytesMut,
    time: u32,
    peer_as: u32,
    local_as: u32,
    if_index: u16,
    peer: IpAddr,
    local: IpAddr,
    message: &[u8],
) {
    record(out, time, BGP4MP, BGP4MP_MESSAGE_AS4, |b| {
        b.put_u32(peer_as);
        b.put_u32(local_as);
        b.put_u16(if_index);
        // An IPv4-mapped address (a dual-stack socket) is its IPv4 address.
        match (peer.to_canonical(), local.to_canonical()) {
            (IpAddr::V4(p), IpAddr::V4(l)) => {
                b.put_u16(1);
                b.put_slice(&p.octets());
                b.put_slice(&l.octets());
            }
            (p, l) => {
                b.put_u16(2);
                b.put_slice(&to_v6(p).octets());
                b.put_slice(&to_v6(l).octets());
            }
        }
        b.put_slice(message);
    });
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// MRT common header (§2) around the body `f` writes.
fn record(out: &mut BytesMut, time: u32, kind: u16, subtype: u16, f: impl FnOnce(&mut BytesMut)) {
    let mut body = BytesMut::new();
    f(&mut body);
    out.put_u32(time);
    out.put_u16(kind);
    out.put_u16(subtype);
    out.put_u32(body.len() as u32);
    out.extend_from_slice(&body);
}
