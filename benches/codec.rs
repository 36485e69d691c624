//! UPDATE decode / encode throughput, in ns per prefix, against two other Rust
//! BGP codecs (`rustbgpd-wire`, `bgpkit-parser`).
//!
//! Inputs (built once with kittbgpd's `UpdateBuilder`, 4096-octet messages):
//! - `packed_v4`: classic NLRI full of /32s, one attribute set (ORIGIN, empty
//!   AS_PATH, NEXT_HOP, MED, LOCAL_PREF);
//! - `packed_v6`: MP_REACH_NLRI full of /128s, next hop `::` + link-local (as BIRD);
//! - `mix`: varied sizes, both families, RFC 8950 IPv4 over an IPv6 next hop,
//!   communities, large communities, AS paths of 1-5 hops, ORIGINATOR_ID /
//!   CLUSTER_LIST, withdrawals (alone and next to announcements).
//!
//! Every decoder visits every prefix (withdrawn and announced, both families)
//! and every attribute value and folds them into a checksum; the checksums and
//! prefix counts are asserted equal before anything is timed.
//!
//! ```text
//! cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3   # criterion groups + table
//! cargo bench --bench codec -- table                                    # only the ns/prefix table
//! cargo bench --bench codec -- decode/packed_v4                          # one criterion group/input
//! ```

use bytes::{Bytes, BytesMut};
use criterion::{black_box, BenchmarkId, Criterion, SamplingMode, Throughput};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use kittbgpd::wire::{AfiSafi, AsSegmentKind};
use kittbgpd::wire::{
    AsPath, Message, MpNextHop, MpReach, MpUnreach, Negotiated, Origin, PathAttributes, Update,
    UpdateBuilder,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

// ---------------------------------------------------------------------------
// Inputs

/// The session the inputs are built for and decoded with.
fn negotiated() -> Negotiated {
    Negotiated {
        four_octet_as: true,
        extended_message: false,
        ipv4_extended_next_hop: true,
        ipv4_unicast: true,
        ipv6_unicast: true,
        route_refresh: true,
        enhanced_route_refresh: false,
        add_path_receive: kittbgpd::wire::Families::NONE,
        add_path_send: kittbgpd::wire::Families::NONE,
        views: Default::default(),
        view: None,
    }
}

/// One UpdateBuilder call (or, for UPDATEs mixing withdrawals and
/// announcements, which the builder does not make, one `Message::encode`).
enum Op {
    AnnounceV4(PathAttributes, MpNextHop, Vec<Ipv4Net>),
    AnnounceV6(PathAttributes, MpNextHop, Vec<Ipv6Net>),
    WithdrawV4(Vec<Ipv4Net>),
    WithdrawV6(Vec<Ipv6Net>),
    Raw(Message),
}

struct Input {
    name: &'static str,
    ops: Vec<Op>,
    /// Whole messages, header included, each its own `Bytes` (slices of one buffer).
    frames: Vec<Bytes>,
    /// Announced + withdrawn, both families.
    prefixes: u64,
}

/// Runs the plan: the encode benchmark.
fn encode(ops: &[Op], b: &UpdateBuilder, neg: &Negotiated, out: &mut BytesMut) -> usize {
    let mut n = 0;
    for op in ops {
        n += match op {
            Op::AnnounceV4(a, nh, p) => b.announce_v4(a, *nh, p.iter().copied(), out).unwrap(),
            Op::AnnounceV6(a, nh, p) => b.announce_v6(a, *nh, p.iter().copied(), out).unwrap(),
            Op::WithdrawV4(p) => b.withdraw_v4(p.iter().copied(), out).unwrap(),
            Op::WithdrawV6(p) => b.withdraw_v6(p.iter().copied(), out).unwrap(),
            Op::Raw(m) => {
                m.encode(neg, out).unwrap();
                1
            }
        };
    }
    n
}

fn op_prefixes(op: &Op) -> u64 {
    (match op {
        Op::AnnounceV4(_, _, p) | Op::WithdrawV4(p) => p.len(),
        Op::AnnounceV6(_, _, p) | Op::WithdrawV6(p) => p.len(),
        Op::Raw(Message::Update(u)) => {
            u.withdrawn_v4().count()
                + u.nlri_v4().count()
                + u.attrs
                    .mp_reach
                    .as_ref()
                    .map_or(0, |r| r.prefixes().count())
                + u.attrs
                    .mp_unreach
                    .as_ref()
                    .map_or(0, |r| r.prefixes().count())
        }
        Op::Raw(_) => 0,
    }) as u64
}

fn make_input(name: &'static str, ops: Vec<Op>) -> Input {
    let neg = negotiated();
    let b = UpdateBuilder::new(&neg);
    let mut out = BytesMut::new();
    encode(&ops, &b, &neg, &mut out);
    let all = out.freeze();
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < all.len() {
        let len = usize::from(u16::from_be_bytes([all[pos + 16], all[pos + 17]]));
        frames.push(all.slice(pos..pos + len));
        pos += len;
    }
    let prefixes = ops.iter().map(op_prefixes).sum();
    Input {
        name,
        ops,
        frames,
        prefixes,
    }
}

const TOTAL: usize = 100_000;
const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x1);

fn base_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        med: Some(10),
        local_pref: Some(100),
        ..PathAttributes::default()
    }
}

fn packed_v4() -> Input {
    let p: Vec<Ipv4Net> = (0..TOTAL as u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap())
        .collect();
    let nh = MpNextHop::V4(Ipv4Addr::new(10, 255, 0, 1));
    make_input("packed_v4", vec![Op::AnnounceV4(base_attrs(), nh, p)])
}

fn packed_v6() -> Input {
    let p: Vec<Ipv6Net> = (0..TOTAL as u128)
        .map(|i| Ipv6Net::new(Ipv6Addr::from((0xfd00u128 << 112) | (i * 7919)), 128).unwrap())
        .collect();
    let nh = MpNextHop::V6 {
        global: Ipv6Addr::UNSPECIFIED,
        link_local: Some(LL),
    };
    make_input("packed_v6", vec![Op::AnnounceV6(base_attrs(), nh, p)])
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn v4_prefix(r: &mut Rng) -> Ipv4Net {
    let len = match r.below(10) {
        0..=3 => 32,
        4..=6 => 24,
        _ => r.range(8, 31) as u8,
    };
    Ipv4Net::new(Ipv4Addr::from(r.next() as u32), len)
        .unwrap()
        .trunc()
}

fn v6_prefix(r: &mut Rng) -> Ipv6Net {
    let len = match r.below(10) {
        0..=3 => 128,
        4..=5 => 64,
        6..=7 => 48,
        _ => r.range(16, 127) as u8,
    };
    let a = (u128::from(r.next()) << 64) | u128::from(r.next());
    Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc()
}

fn prefix_count(r: &mut Rng) -> usize {
    match r.below(10) {
        0..=3 => r.range(1, 8) as usize,
        4..=7 => r.range(9, 120) as usize,
        _ => r.range(121, 1500) as usize,
    }
}

fn mix_attrs(r: &mut Rng) -> PathAttributes {
    let hops = r.range(1, 5) as usize;
    let asns = (0..hops)
        .map(|_| {
            if r.chance(50) {
                r.range(64512, 65534) as u32
            } else {
                r.range(4_200_000_000, 4_294_967_294) as u32
            }
        })
        .collect();
    let mut a = PathAttributes {
        origin: Some([Origin::Igp, Origin::Egp, Origin::Incomplete][r.below(3) as usize]),
        as_path: Some(AsPath::sequence(asns)),
        med: r.chance(70).then(|| r.below(1 << 20) as u32),
        local_pref: Some(r.range(50, 300) as u32),
        ..PathAttributes::default()
    };
    let nc = r.below(9) as usize;
    // Communities outside the RFC 1997 well-known range (0xFFFF0000..): one
    // of the parsers turns those into named variants.
    a.communities = (0..nc)
        .map(|_| (r.range(1, 65000) as u32) << 16 | r.below(65536) as u32)
        .collect();
    if r.chance(15) {
        a.large_communities = (0..r.range(1, 3))
            .map(|_| [r.next() as u32, r.next() as u32, r.next() as u32])
            .collect();
    }
    if r.chance(35) {
        a.originator_id = Some(Ipv4Addr::from(r.next() as u32));
        a.cluster_list = (0..r.range(1, 3))
            .map(|_| Ipv4Addr::from(r.next() as u32))
            .collect();
    }
    a
}

fn v6_next_hop(r: &mut Rng) -> MpNextHop {
    if r.chance(60) {
        MpNextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: Some(Ipv6Addr::from((0xfe80u128 << 112) | u128::from(r.next()))),
        }
    } else {
        MpNextHop::V6 {
            global: Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(r.next())),
            link_local: None,
        }
    }
}

fn pack_v4(p: &[Ipv4Net]) -> Bytes {
    let mut b = BytesMut::new();
    p.iter()
        .for_each(|p| kittbgpd::wire::nlri::put_v4(&mut b, *p));
    b.freeze()
}

fn mix() -> Input {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut ops = Vec::new();
    let mut n = 0;
    while n < TOTAL {
        let op = match r.below(100) {
            // Classic IPv4 NLRI with NEXT_HOP.
            0..=29 => {
                let p = (0..prefix_count(&mut r))
                    .map(|_| v4_prefix(&mut r))
                    .collect();
                let nh = MpNextHop::V4(Ipv4Addr::from(r.next() as u32));
                Op::AnnounceV4(mix_attrs(&mut r), nh, p)
            }
            // RFC 8950: IPv4 NLRI in MP_REACH_NLRI with an IPv6 next hop.
            30..=49 => {
                let p = (0..prefix_count(&mut r))
                    .map(|_| v4_prefix(&mut r))
                    .collect();
                Op::AnnounceV4(mix_attrs(&mut r), v6_next_hop(&mut r), p)
            }
            50..=79 => {
                let p = (0..prefix_count(&mut r))
                    .map(|_| v6_prefix(&mut r))
                    .collect();
                Op::AnnounceV6(mix_attrs(&mut r), v6_next_hop(&mut r), p)
            }
            80..=86 => Op::WithdrawV4((0..r.range(1, 60)).map(|_| v4_prefix(&mut r)).collect()),
            87..=92 => Op::WithdrawV6((0..r.range(1, 60)).map(|_| v6_prefix(&mut r)).collect()),
            // One UPDATE withdrawing (classic field and MP_UNREACH IPv6) and
            // announcing (classic NLRI, or IPv6 in MP_REACH).
            _ => {
                let mut attrs = mix_attrs(&mut r);
                let wd: Vec<Ipv4Net> = (0..r.range(1, 30)).map(|_| v4_prefix(&mut r)).collect();
                let wd6: Vec<IpNet> = (0..r.range(0, 20))
                    .map(|_| IpNet::V6(v6_prefix(&mut r)))
                    .collect();
                if !wd6.is_empty() {
                    attrs.mp_unreach = Some(Box::new(MpUnreach::new(AfiSafi::IPV6_UNICAST, wd6)));
                }
                let nlri = if r.chance(50) {
                    attrs.next_hop = Some(Ipv4Addr::from(r.next() as u32));
                    let p: Vec<Ipv4Net> = (0..r.range(1, 100)).map(|_| v4_prefix(&mut r)).collect();
                    pack_v4(&p)
                } else {
                    let p: Vec<IpNet> = (0..r.range(1, 60))
                        .map(|_| IpNet::V6(v6_prefix(&mut r)))
                        .collect();
                    let nh = v6_next_hop(&mut r);
                    attrs.mp_reach = Some(Box::new(MpReach::new(AfiSafi::IPV6_UNICAST, nh, p)));
                    Bytes::new()
                };
                Op::Raw(Message::Update(Update {
                    withdrawn: pack_v4(&wd),
                    attrs,
                    nlri,
                    issues: Vec::new(),
                    add_path: false,
                }))
            }
        };
        n += op_prefixes(&op) as usize;
        ops.push(op);
    }
    make_input("mix", ops)
}

// ---------------------------------------------------------------------------
// Equal work: fold every prefix and attribute value into a checksum.

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Sum {
    h: u64,
    prefixes: u64,
}

// Per-kind multipliers (odd), so values of different kinds do not cancel.
const K_ANN: u64 = 1;
const K_WD: u64 = 3;
const K_ORIGIN: u64 = 0x101;
const K_ASN: u64 = 0x1_0003;
const K_SEG: u64 = 0x7f_0001;
const K_NH: u64 = 0x11;
const K_MED: u64 = 0x21;
const K_LP: u64 = 0x41;
const K_COMM: u64 = 0x81;
const K_LCOMM: u64 = 0x2_0001;
const K_ORIG_ID: u64 = 0x201;
const K_CLUSTER: u64 = 0x401;
const K_NH6: u64 = 0x801;
const K_LL: u64 = 0x1001;

impl Sum {
    #[inline(always)]
    fn add(&mut self, k: u64, x: u64) {
        self.h = self.h.wrapping_add(x.wrapping_mul(k));
    }
    #[inline(always)]
    fn v4(&mut self, k: u64, addr: Ipv4Addr, len: u8) {
        self.add(k, u64::from(u32::from(addr)) | (u64::from(len) << 40));
        self.prefixes += 1;
    }
    #[inline(always)]
    fn v6(&mut self, k: u64, addr: Ipv6Addr, len: u8) {
        self.add(k, fold128(addr) ^ (u64::from(len) << 56));
        self.prefixes += 1;
    }
    #[inline(always)]
    fn net(&mut self, k: u64, p: IpNet) {
        match p {
            IpNet::V4(p) => self.v4(k, p.addr(), p.prefix_len()),
            IpNet::V6(p) => self.v6(k, p.addr(), p.prefix_len()),
        }
    }
    #[inline(always)]
    fn segment(&mut self, kind: u64, asns: impl Iterator<Item = u32>) {
        let mut n = 0;
        for a in asns {
            self.add(K_ASN, u64::from(a));
            n += 1;
        }
        self.add(K_SEG, kind << 16 | n);
    }
    #[inline(always)]
    fn mp_next_hop(&mut self, global: IpAddr, ll: Option<Ipv6Addr>) {
        match global {
            IpAddr::V4(a) => self.add(K_NH, u64::from(u32::from(a))),
            IpAddr::V6(a) => self.add(K_NH6, fold128(a)),
        }
        if let Some(ll) = ll {
            self.add(K_LL, fold128(ll));
        }
    }
}

#[inline(always)]
fn fold128(a: Ipv6Addr) -> u64 {
    let x = u128::from(a);
    (x as u64).wrapping_add(((x >> 64) as u64).rotate_left(17))
}

/// kittbgpd: `Message::decode`, then the lazy prefix iterators and the decoded attributes.
fn fold_kitt(frames: &[Bytes], neg: &Negotiated) -> Sum {
    let mut s = Sum::default();
    for f in frames {
        let Ok(Message::Update(u)) = Message::decode(f.clone(), neg) else {
            panic!("kittbgpd: not a valid UPDATE");
        };
        assert!(u.issues.is_empty(), "kittbgpd: {:?}", u.issues);
        for p in u.withdrawn_v4() {
            s.v4(K_WD, p.addr(), p.prefix_len());
        }
        for p in u.nlri_v4() {
            s.v4(K_ANN, p.addr(), p.prefix_len());
        }
        let a = &u.attrs;
        if let Some(r) = &a.mp_reach {
            match r.next_hop {
                MpNextHop::V4(nh) => s.mp_next_hop(IpAddr::V4(nh), None),
                MpNextHop::V6 { global, link_local } => {
                    s.mp_next_hop(IpAddr::V6(global), link_local)
                }
            }
            for p in r.prefixes() {
                s.net(K_ANN, p);
            }
        }
        if let Some(r) = &a.mp_unreach {
            for p in r.prefixes() {
                s.net(K_WD, p);
            }
        }
        if let Some(o) = a.origin {
            s.add(K_ORIGIN, o as u64 + 1);
        }
        if let Some(p) = &a.as_path {
            for seg in &p.segments {
                let kind = match seg.kind {
                    AsSegmentKind::Set => 1,
                    AsSegmentKind::Sequence => 2,
                    AsSegmentKind::ConfedSequence => 3,
                    AsSegmentKind::ConfedSet => 4,
                };
                s.segment(kind, seg.asns.iter().copied());
            }
        }
        if let Some(nh) = a.next_hop {
            s.add(K_NH, u64::from(u32::from(nh)));
        }
        if let Some(x) = a.med {
            s.add(K_MED, u64::from(x));
        }
        if let Some(x) = a.local_pref {
            s.add(K_LP, u64::from(x));
        }
        if !a.communities.is_empty() {
            s.add(K_COMM, a.communities.len() as u64);
            for &c in &a.communities {
                s.add(K_COMM, u64::from(c));
            }
        }
        for lc in &a.large_communities {
            s.add(
                K_LCOMM,
                u64::from(lc[0]) ^ u64::from(lc[1]) << 20 ^ u64::from(lc[2]) << 40,
            );
        }
        if let Some(x) = a.originator_id {
            s.add(K_ORIG_ID, u64::from(u32::from(x)));
        }
        if !a.cluster_list.is_empty() {
            s.add(K_CLUSTER, a.cluster_list.len() as u64);
            for &c in &a.cluster_list {
                s.add(K_CLUSTER, u64::from(u32::from(c)));
            }
        }
    }
    s
}

/// rustbgpd-wire: `decode_message`, then `parse_revised` (RFC 7606, as kittbgpd;
/// four-octet AS, iBGP, no Add-Path).
fn fold_rustbgpd(frames: &[Bytes]) -> Sum {
    use rustbgpd_wire::{AsPathSegment, PathAttribute, Prefix};
    let mut s = Sum::default();
    for f in frames {
        let mut b = f.clone();
        let Ok(rustbgpd_wire::Message::Update(m)) =
            rustbgpd_wire::decode_message(&mut b, rustbgpd_wire::MAX_MESSAGE_LEN)
        else {
            panic!("rustbgpd-wire: not a valid UPDATE");
        };
        let r = m
            .parse_revised(true, true, false, &[])
            .expect("rustbgpd-wire parse");
        assert!(r.malformed.is_empty(), "rustbgpd-wire: {:?}", r.malformed);
        let u = &r.update;
        for e in &u.withdrawn {
            s.v4(K_WD, e.prefix.addr, e.prefix.len);
        }
        for e in &u.announced {
            s.v4(K_ANN, e.prefix.addr, e.prefix.len);
        }
        let pfx = |s: &mut Sum, k, p: &Prefix| match p {
            Prefix::V4(p) => s.v4(k, p.addr, p.len),
            Prefix::V6(p) => s.v6(k, p.addr, p.len),
        };
        for a in &u.attributes {
            match a {
                PathAttribute::MpReachNlri(r) => {
                    s.mp_next_hop(r.next_hop, r.link_local_next_hop);
                    for e in &r.announced {
                        pfx(&mut s, K_ANN, &e.prefix);
                    }
                }
                PathAttribute::MpUnreachNlri(r) => {
                    for e in &r.withdrawn {
                        pfx(&mut s, K_WD, &e.prefix);
                    }
                }
                PathAttribute::Origin(o) => s.add(
                    K_ORIGIN,
                    match o {
                        rustbgpd_wire::Origin::Igp => 1,
                        rustbgpd_wire::Origin::Egp => 2,
                        rustbgpd_wire::Origin::Incomplete => 3,
                    },
                ),
                PathAttribute::AsPath(p) => {
                    for seg in &p.segments {
                        let (kind, asns) = match seg {
                            AsPathSegment::AsSet(v) => (1, v),
                            AsPathSegment::AsSequence(v) => (2, v),
                        };
                        s.segment(kind, asns.iter().copied());
                    }
                }
                PathAttribute::NextHop(nh) => s.add(K_NH, u64::from(u32::from(*nh))),
                PathAttribute::Med(x) => s.add(K_MED, u64::from(*x)),
                PathAttribute::LocalPref(x) => s.add(K_LP, u64::from(*x)),
                PathAttribute::Communities(c) => {
                    s.add(K_COMM, c.len() as u64);
                    for &c in c {
                        s.add(K_COMM, u64::from(c));
                    }
                }
                PathAttribute::LargeCommunities(v) => {
                    for lc in v {
                        s.add(
                            K_LCOMM,
                            u64::from(lc.global_admin)
                                ^ u64::from(lc.local_data1) << 20
                                ^ u64::from(lc.local_data2) << 40,
                        );
                    }
                }
                PathAttribute::OriginatorId(x) => s.add(K_ORIG_ID, u64::from(u32::from(*x))),
                PathAttribute::ClusterList(c) => {
                    s.add(K_CLUSTER, c.len() as u64);
                    for &c in c {
                        s.add(K_CLUSTER, u64::from(u32::from(c)));
                    }
                }
                other => panic!("rustbgpd-wire: unexpected attribute {other:?}"),
            }
        }
    }
    s
}

/// bgpkit-parser: `parse_bgp_message` (four-octet AS, no Add-Path).
fn fold_bgpkit(frames: &[Bytes]) -> Sum {
    use bgpkit_parser::models::{
        AsPathSegment, AsnLength, AttributeValue, BgpMessage, Community, NextHopAddress, Origin,
    };
    use bgpkit_parser::parser::bgp::messages::parse_bgp_message;
    let mut s = Sum::default();
    for f in frames {
        let mut b = f.clone();
        let Ok(BgpMessage::Update(u)) = parse_bgp_message(&mut b, false, &AsnLength::Bits32) else {
            panic!("bgpkit-parser: not a valid UPDATE");
        };
        assert!(
            !u.attributes.has_validation_warnings(),
            "bgpkit-parser: {:?}",
            u.attributes.validation_warnings()
        );
        for p in &u.withdrawn_prefixes {
            s.net(K_WD, p.prefix);
        }
        for p in &u.announced_prefixes {
            s.net(K_ANN, p.prefix);
        }
        for a in &u.attributes {
            match a {
                AttributeValue::MpReachNlri(n) => {
                    match n.next_hop {
                        Some(NextHopAddress::Ipv4(a)) => s.mp_next_hop(IpAddr::V4(a), None),
                        Some(NextHopAddress::Ipv6(a)) => s.mp_next_hop(IpAddr::V6(a), None),
                        Some(NextHopAddress::Ipv6LinkLocal(g, ll)) => {
                            s.mp_next_hop(IpAddr::V6(g), Some(ll))
                        }
                        other => panic!("bgpkit-parser: next hop {other:?}"),
                    }
                    for p in &n.prefixes {
                        s.net(K_ANN, p.prefix);
                    }
                }
                AttributeValue::MpUnreachNlri(n) => {
                    for p in &n.prefixes {
                        s.net(K_WD, p.prefix);
                    }
                }
                AttributeValue::Origin(o) => s.add(
                    K_ORIGIN,
                    match o {
                        Origin::IGP => 1,
                        Origin::EGP => 2,
                        Origin::INCOMPLETE => 3,
                    },
                ),
                AttributeValue::AsPath(p) => {
                    for seg in &p.segments {
                        let (kind, asns) = match seg {
                            AsPathSegment::AsSet(v) => (1, v),
                            AsPathSegment::AsSequence(v) => (2, v),
                            AsPathSegment::ConfedSequence(v) => (3, v),
                            AsPathSegment::ConfedSet(v) => (4, v),
                        };
                        s.segment(kind, asns.iter().map(|a| a.to_u32()));
                    }
                }
                AttributeValue::NextHop(IpAddr::V4(nh)) => s.add(K_NH, u64::from(u32::from(*nh))),
                AttributeValue::MultiExitDiscriminator(x) => s.add(K_MED, u64::from(*x)),
                AttributeValue::LocalPreference(x) => s.add(K_LP, u64::from(*x)),
                AttributeValue::Communities(c) => {
                    s.add(K_COMM, c.len() as u64);
                    for c in c {
                        let v = match c {
                            Community::NoExport => 0xffff_ff01,
                            Community::NoAdvertise => 0xffff_ff02,
                            Community::NoExportSubConfed => 0xffff_ff03,
                            Community::Custom(asn, v) => asn.to_u32() << 16 | u32::from(*v),
                        };
                        s.add(K_COMM, u64::from(v));
                    }
                }
                AttributeValue::LargeCommunities(v) => {
                    for lc in v {
                        s.add(
                            K_LCOMM,
                            u64::from(lc.global_admin)
                                ^ u64::from(lc.local_data[0]) << 20
                                ^ u64::from(lc.local_data[1]) << 40,
                        );
                    }
                }
                AttributeValue::OriginatorId(x) => s.add(K_ORIG_ID, u64::from(u32::from(*x))),
                AttributeValue::Clusters(c) => {
                    s.add(K_CLUSTER, c.len() as u64);
                    for &c in c {
                        s.add(K_CLUSTER, u64::from(c));
                    }
                }
                other => panic!("bgpkit-parser: unexpected attribute {other:?}"),
            }
        }
    }
    s
}

const PARSERS: [&str; 3] = ["kittbgpd", "rustbgpd-wire", "bgpkit-parser"];

fn fold(parser: &str, input: &Input, neg: &Negotiated) -> Sum {
    match parser {
        "kittbgpd" => fold_kitt(&input.frames, neg),
        "rustbgpd-wire" => fold_rustbgpd(&input.frames),
        "bgpkit-parser" => fold_bgpkit(&input.frames),
        _ => unreachable!(),
    }
}

/// Outside any timing: every parser sees every prefix and the same values.
fn verify(inputs: &[Input], neg: &Negotiated) {
    for i in inputs {
        let sums: Vec<Sum> = PARSERS.iter().map(|p| fold(p, i, neg)).collect();
        for (p, s) in PARSERS.iter().zip(&sums) {
            assert_eq!(s.prefixes, i.prefixes, "{}: {p} prefix count", i.name);
            assert_eq!(
                *s, sums[0],
                "{}: {p} checksum differs from kittbgpd",
                i.name
            );
        }
        // Encoding is deterministic: the plan gives the same bytes again.
        let mut out = BytesMut::new();
        encode(&i.ops, &UpdateBuilder::new(neg), neg, &mut out);
        assert_eq!(out.len(), i.frames.iter().map(Bytes::len).sum::<usize>());
    }
}

// ---------------------------------------------------------------------------
// Criterion groups

fn bench_decode(c: &mut Criterion, inputs: &[Input], neg: &Negotiated) {
    let mut g = c.benchmark_group("decode");
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    for i in inputs {
        g.throughput(Throughput::Elements(i.prefixes));
        for p in PARSERS {
            g.bench_with_input(BenchmarkId::new(i.name, p), i, |b, i| {
                b.iter(|| black_box(fold(p, i, neg).h))
            });
        }
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion, inputs: &[Input], neg: &Negotiated) {
    let mut g = c.benchmark_group("encode");
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    let builder = UpdateBuilder::new(neg);
    for i in inputs {
        g.throughput(Throughput::Elements(i.prefixes));
        let cap = i.frames.iter().map(Bytes::len).sum::<usize>();
        let mut out = BytesMut::with_capacity(cap);
        g.bench_with_input(BenchmarkId::new(i.name, "kittbgpd"), i, |b, i| {
            b.iter(|| {
                out.clear();
                black_box(encode(&i.ops, &builder, neg, &mut out));
                black_box(out.len())
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------
// Plain table: own timing, median of repetitions.

/// CPU time of this thread: on the shared build machine the table's figures
/// should not include the time the thread spent waiting for a core (every
/// codec is measured the same way).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Median ns (thread CPU time) per prefix of `run`, which processes `prefixes` prefixes.
fn time_ns_per_prefix(prefixes: u64, mut run: impl FnMut()) -> f64 {
    // Calibrate: enough passes for ~30 ms per repetition.
    let t = thread_cpu_time();
    run();
    let one = (thread_cpu_time() - t).max(Duration::from_micros(1));
    let passes = (Duration::from_millis(30).as_nanos() / one.as_nanos()).clamp(1, 10_000) as u32;
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let t = thread_cpu_time();
            for _ in 0..passes {
                run();
            }
            (thread_cpu_time() - t).as_nanos() as f64 / (f64::from(passes) * prefixes as f64)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn table(inputs: &[Input], neg: &Negotiated) {
    println!();
    println!("UPDATE codec, ns of thread CPU time per prefix (median of 15 repetitions of ~30 ms)");
    println!(
        "{:<10} {:>8} {:>7} | {:>9} {:>13} {:>13} | {:>12} | {:>9}",
        "input",
        "prefixes",
        "msgs",
        "kittbgpd",
        "rustbgpd-wire",
        "bgpkit-parser",
        "speedup vs",
        "kitt enc"
    );
    println!(
        "{:<10} {:>8} {:>7} | {:>9} {:>13} {:>13} | {:>12} | {:>9}",
        "", "", "", "decode", "decode", "decode", "fastest other", ""
    );
    let builder = UpdateBuilder::new(neg);
    for i in inputs {
        let ns: Vec<f64> = PARSERS
            .iter()
            .map(|p| {
                time_ns_per_prefix(i.prefixes, || {
                    black_box(fold(p, black_box(i), neg).h);
                })
            })
            .collect();
        let mut out = BytesMut::with_capacity(i.frames.iter().map(Bytes::len).sum());
        let enc = time_ns_per_prefix(i.prefixes, || {
            out.clear();
            black_box(encode(black_box(&i.ops), &builder, neg, &mut out));
        });
        let fastest_other = ns[1].min(ns[2]);
        println!(
            "{:<10} {:>8} {:>7} | {:>9.2} {:>13.2} {:>13.2} | {:>11.2}x | {:>9.2}",
            i.name,
            i.prefixes,
            i.frames.len(),
            ns[0],
            ns[1],
            ns[2],
            fastest_other / ns[0],
            enc
        );
    }
    println!("(speedup = fastest of rustbgpd-wire/bgpkit-parser ns ÷ kittbgpd ns; target ≥ 2x, and ≤ 3 ns for packed_v4)");
}

/// The positional (filter) arguments criterion was given.
fn filters() -> Vec<String> {
    const WITH_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--load-baseline",
        "--baseline-lenient",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "--output-format",
        "--color",
        "-c",
        "--profile-time",
        "--plotting-backend",
        "--format",
        "--logfile",
    ];
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            out.push(a);
        }
    }
    out
}

fn main() {
    let neg = negotiated();
    let inputs = [packed_v4(), packed_v6(), mix()];
    verify(&inputs, &neg);
    for i in &inputs {
        eprintln!(
            "input {:<10} {:>7} prefixes in {:>5} messages ({} octets); checksums agree",
            i.name,
            i.prefixes,
            i.frames.len(),
            i.frames.iter().map(Bytes::len).sum::<usize>()
        );
    }
    let mut c = Criterion::default().configure_from_args();
    bench_decode(&mut c, &inputs, &neg);
    bench_encode(&mut c, &inputs, &neg);
    c.final_summary();

    let args: Vec<String> = std::env::args().collect();
    let f = filters();
    let bench_mode = args.iter().any(|a| a == "--bench");
    let listing = args.iter().any(|a| a == "--list");
    if bench_mode && !listing && (f.is_empty() || f.iter().any(|x| x == "table")) {
        table(&inputs, &neg);
    }
}
