//! Path attributes (RFC 4271 §4.3, §5) with RFC 7606 error actions, RFC 4760
//! MP_REACH/MP_UNREACH, RFC 6793 4-octet AS, RFC 1997/4360/8092 communities,
//! RFC 4456 route reflection attributes.
//!
//! Decisions:
//! - Unknown *optional* attributes are kept in [`PathAttributes::unknown`] with
//!   their flags (Extended Length bit cleared: it is an encoding detail).
//!   [`PathAttributes::encode`] writes them as they are; call
//!   [`PathAttributes::for_readvertise`] before re-advertising, which drops unknown
//!   non-transitive ones and sets Partial on unknown transitive ones (RFC 4271 §5).
//! - An unknown *well-known* attribute is 3/2 Unrecognized Well-known Attribute
//!   (RFC 4271 §6.3, not revised by RFC 7606).
//! - MP_REACH_NLRI / MP_UNREACH_NLRI for families other than IPv4/IPv6 unicast
//!   are dropped (attribute discard, RFC 4760 §7 lets a speaker ignore them).

use super::nlri::{self, Ipv4Prefixes, Ipv6Prefixes, Prefixes};
use super::notification::{update as sub, Notification};
use super::update::{AttrErrorAction, AttrIssue};
use super::view_nlri;
use super::{
    AfiSafi, EncodeError, Families, Negotiated, AFI_IPV4, AFI_IPV6, AS_TRANS, SAFI_UNICAST,
};
use bytes::{BufMut, Bytes, BytesMut};
use ipnet::IpNet;
use serde::ser::SerializeStruct;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
pub use thin_vec::{thin_vec, ThinVec};

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
}

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

const WELL_KNOWN: u8 = flag::TRANSITIVE;
const OPT_TRANS: u8 = flag::OPTIONAL | flag::TRANSITIVE;
const OPT_NON_TRANS: u8 = flag::OPTIONAL;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum AsSegmentKind {
    Set = 1,
    Sequence = 2,
    /// RFC 5065.
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl AsSegmentKind {
    fn from_u8(t: u8) -> Option<Self> {
        Some(match t {
            1 => Self::Set,
            2 => Self::Sequence,
            3 => Self::ConfedSequence,
            4 => Self::ConfedSet,
            _ => return None,
        })
    }
    fn is_confed(self) -> bool {
        matches!(self, Self::ConfedSequence | Self::ConfedSet)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct AsSegment {
    pub kind: AsSegmentKind,
    pub asns: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct AsPath {
    pub segments: ThinVec<AsSegment>,
}

impl AsPath {
    /// One AS_SEQUENCE (empty path if `asns` is empty).
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: thin_vec![AsSegment {
                kind: AsSegmentKind::Sequence,
                asns,
            }],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.asns.is_empty())
    }

    /// Path length for route selection (RFC 4271 §9.1.2.2 a): an AS_SET counts
    /// 1, confederation segments count 0 (RFC 5065 §5.3).
    pub fn len_for_decision(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                AsSegmentKind::Sequence => s.asns.len(),
                AsSegmentKind::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// Every AS number in the path, in order.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.iter().flat_map(|s| s.asns.iter().copied())
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.asns().any(|a| a == asn)
    }

    /// The neighbouring AS: first AS of a leading AS_SEQUENCE.
    pub fn first_asn(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsSegment {
                kind: AsSegmentKind::Sequence,
                asns,
            }) => asns.first().copied(),
            _ => None,
        }
    }

    /// Prepends `asn` to the leading AS_SEQUENCE (RFC 4271 §5.1.2).
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(s) if s.kind == AsSegmentKind::Sequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: AsSegmentKind::Sequence,
                    asns: vec![asn],
                },
            ),
        }
    }

    /// Parses AS_PATH / AS4_PATH with `width`-octet AS numbers. Malformed per
    /// RFC 7606 §7.2: unknown segment type, zero segment length, overrun, underrun.
    fn decode(v: &[u8], width: usize) -> Option<AsPath> {
        let mut segments = ThinVec::new();
        let mut pos = 0;
        while pos < v.len() {
            let &[t, n] = v.get(pos..pos + 2)? else {
                return None;
            };
            let kind = AsSegmentKind::from_u8(t)?;
            if n == 0 {
                return None;
            }
            let body = v.get(pos + 2..pos + 2 + usize::from(n) * width)?;
            let asns = if width == 4 {
                body.chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            } else {
                body.chunks_exact(2)
                    .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                    .collect()
            };
            segments.push(AsSegment { kind, asns });
            pos += 2 + body.len();
        }
        Some(AsPath { segments })
    }

    /// Writes the segments; sequences longer than 255 are split, empty segments skipped.
    /// With `four == false`, AS numbers above 65535 become AS_TRANS.
    fn check_encodable(&self) -> Result<(), EncodeError> {
        if self.segments.iter().any(|s| {
            s.asns.len() > 255 && matches!(s.kind, AsSegmentKind::Set | AsSegmentKind::ConfedSet)
        }) {
            return Err(EncodeError::ValueTooLong(
                "AS_SET with more than 255 members",
            ));
        }
        Ok(())
    }

    fn encode(&self, out: &mut BytesMut, four: bool, skip_confed: bool) {
        for s in &self.segments {
            if skip_confed && s.kind.is_confed() {
                continue;
            }
            for chunk in s.asns.chunks(255) {
                out.put_u8(s.kind as u8);
                out.put_u8(chunk.len() as u8);
                for &a in chunk {
                    if four {
                        out.put_u32(a);
                    } else {
                        out.put_u16(u16::try_from(a).unwrap_or(AS_TRANS));
                    }
                }
            }
        }
    }

    /// RFC 6793 §4.2.3: rebuild the path from a 2-octet AS_PATH and an AS4_PATH.
    fn merge_as4(self, as4: AsPath) -> AsPath {
        let (n, n4) = (self.len_for_decision(), as4.len_for_decision());
        if n < n4 {
            return self;
        }
        let mut need = n - n4;
        let mut segments = ThinVec::with_capacity(self.segments.len() + as4.segments.len());
        for s in self.segments {
            if s.kind.is_confed() {
                segments.push(s);
            } else if need == 0 {
                break;
            } else if s.kind == AsSegmentKind::Set {
                need -= 1;
                segments.push(s);
            } else {
                let take = need.min(s.asns.len());
                need -= take;
                let mut s = s;
                s.asns.truncate(take);
                segments.push(s);
            }
        }
        let mut rest = as4.segments.into_iter();
        // Join the kept head and AS4_PATH into one sequence where they meet.
        if let (Some(last), Some(next)) = (segments.last_mut(), rest.as_slice().first()) {
            if last.kind == AsSegmentKind::Sequence && next.kind == AsSegmentKind::Sequence {
                last.asns.extend_from_slice(&next.asns);
                rest.next();
            }
        }
        segments.extend(rest);
        AsPath { segments }
    }
}

/// "65001 65002 {65003 65004} (65010) [65020]": sets in braces, confederation
/// sequences in parentheses, confederation sets in brackets.
impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.segments {
            let (open, close) = match s.kind {
                AsSegmentKind::Sequence => ("", ""),
                AsSegmentKind::Set => ("{", "}"),
                AsSegmentKind::ConfedSequence => ("(", ")"),
                AsSegmentKind::ConfedSet => ("[", "]"),
            };
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(open)?;
            for (i, a) in s.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// Next hop of MP_REACH_NLRI (RFC 4760 §3). IPv6 next hops (RFC 2545 §3, and
/// for IPv4 NLRI RFC 8950 §3) are 16 octets, or 32 with a link-local second
/// address. Kept exactly as received: BIRD on a link-local-only session sends
/// global `::` plus the link-local address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MpNextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl MpNextHop {
    /// Octets on the wire (4, 16 or 32).
    pub fn wire_len(&self) -> usize {
        match self {
            MpNextHop::V4(_) => 4,
            MpNextHop::V6 {
                link_local: None, ..
            } => 16,
            MpNextHop::V6 {
                link_local: Some(_),
                ..
            } => 32,
        }
    }

    pub(crate) fn put(&self, out: &mut impl BufMut) {
        match self {
            MpNextHop::V4(a) => out.put_slice(&a.octets()),
            MpNextHop::V6 { global, link_local } => {
                out.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.put_slice(&ll.octets());
                }
            }
        }
    }

    fn decode(afi: u16, nh: &[u8]) -> Option<MpNextHop> {
        let v6 = |b: &[u8]| <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from);
        match (afi, nh.len()) {
            (AFI_IPV4, 4) => <[u8; 4]>::try_from(nh)
                .ok()
                .map(|o| MpNextHop::V4(Ipv4Addr::from(o))),
            (AFI_IPV4 | AFI_IPV6, 16) => Some(MpNextHop::V6 {
                global: v6(nh)?,
                link_local: None,
            }),
            (AFI_IPV4 | AFI_IPV6, 32) => Some(MpNextHop::V6 {
                global: v6(nh.get(..16)?)?,
                link_local: Some(v6(nh.get(16..)?)?),
            }),
            _ => None,
        }
    }
}

/// MP_REACH_NLRI (RFC 4760 §3). `nlri` is the validated prefix list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    pub afi_safi: AfiSafi,
    pub next_hop: MpNextHop,
    pub nlri: Bytes,
    /// `nlri` has a Path Identifier before each prefix (RFC 7911 §3).
    pub add_path: bool,
}

/// MP_UNREACH_NLRI (RFC 4760 §4). `withdrawn` is the validated prefix list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    pub afi_safi: AfiSafi,
    pub withdrawn: Bytes,
    /// `withdrawn` has a Path Identifier before each prefix (RFC 7911 §3).
    pub add_path: bool,
}

fn prefixes_of(afi_safi: AfiSafi, b: &Bytes, add_path: bool) -> Prefixes {
    match (afi_safi.afi, afi_safi.safi) {
        (AFI_IPV4, SAFI_UNICAST) => Prefixes::V4(Ipv4Prefixes::validated_as(b.clone(), add_path)),
        (AFI_IPV6, SAFI_UNICAST) => Prefixes::V6(Ipv6Prefixes::validated_as(b.clone(), add_path)),
        _ => Prefixes::None,
    }
}

fn view_entries(afi_safi: AfiSafi, b: &Bytes) -> view_nlri::ViewPrefixes {
    let list = if is_view(afi_safi) {
        b.clone()
    } else {
        Bytes::new()
    };
    view_nlri::ViewPrefixes::validated(afi_safi.afi, list)
}

/// A prefix list as serialized: prefixes, or (path id, prefix) pairs with ADD-PATH.
pub(crate) struct PrefixList(pub Prefixes, pub bool);

impl serde::Serialize for PrefixList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.1 {
            s.collect_seq(self.0.clone().with_path_ids())
        } else {
            s.collect_seq(self.0.clone())
        }
    }
}

/// Packs prefixes of one family into a prefix list (RFC 4271 §4.3 encoding).
fn pack(prefixes: impl IntoIterator<Item = IpNet>) -> Bytes {
    let mut b = BytesMut::new();
    for p in prefixes {
        nlri::put(&mut b, p);
    }
    b.freeze()
}

impl MpReach {
    /// The announced prefixes (IPv4 or IPv6 unicast; other families yield nothing).
    pub fn prefixes(&self) -> Prefixes {
        prefixes_of(self.afi_safi, &self.nlri, self.add_path)
    }

    /// The announced (view id, prefix) entries of a view family (else none).
    pub fn view_prefixes(&self) -> view_nlri::ViewPrefixes {
        view_entries(self.afi_safi, &self.nlri)
    }

    /// Builds an MP_REACH_NLRI; `prefixes` must all be of the family of `afi_safi`.
    pub fn new(
        afi_safi: AfiSafi,
        next_hop: MpNextHop,
        prefixes: impl IntoIterator<Item = IpNet>,
    ) -> MpReach {
        MpReach {
            afi_safi,
            next_hop,
            nlri: pack(prefixes),
            add_path: false,
        }
    }
}

impl MpUnreach {
    pub fn prefixes(&self) -> Prefixes {
        prefixes_of(self.afi_safi, &self.withdrawn, self.add_path)
    }

    /// The withdrawn (view id, prefix) entries of a view family (else none).
    pub fn view_prefixes(&self) -> view_nlri::ViewPrefixes {
        view_entries(self.afi_safi, &self.withdrawn)
    }

    pub fn new(afi_safi: AfiSafi, prefixes: impl IntoIterator<Item = IpNet>) -> MpUnreach {
        MpUnreach {
            afi_safi,
            withdrawn: pack(prefixes),
            add_path: false,
        }
    }
}

impl serde::Serialize for MpReach {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("MpReach", 3)?;
        st.serialize_field("afi_safi", &self.afi_safi)?;
        st.serialize_field("next_hop", &self.next_hop)?;
        st.serialize_field("nlri", &PrefixList(self.prefixes(), self.add_path))?;
        st.end()
    }
}

impl serde::Serialize for MpUnreach {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("MpUnreach", 2)?;
        st.serialize_field("afi_safi", &self.afi_safi)?;
        st.serialize_field("withdrawn", &PrefixList(self.prefixes(), self.add_path))?;
        st.end()
    }
}

/// An attribute the codec does not interpret, kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RawAttribute {
    /// Flags as received, Extended Length bit cleared.
    pub flags: u8,
    pub code: u8,
    #[serde(serialize_with = "super::serde_util::hex")]
    pub value: Bytes,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: ThinVec<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: ThinVec<Ipv4Addr>,
    pub mp_reach: Option<Box<MpReach>>,
    pub mp_unreach: Option<Box<MpUnreach>>,
    pub extended_communities: ThinVec<[u8; 8]>,
    pub large_communities: ThinVec<[u32; 3]>,
    pub unknown: ThinVec<RawAttribute>,
}

enum Bad {
    /// RFC 7606 action for a malformed attribute.
    Act(AttrErrorAction, &'static str),
    /// Session reset with this UPDATE Message Error subcode, data = the attribute.
    Reset(u8),
}

fn issue(code: u8, action: AttrErrorAction, reason: &'static str) -> AttrIssue {
    AttrIssue {
        code,
        action,
        reason,
    }
}

/// Expected Optional/Transitive bits and the RFC 7606 action for a malformed
/// instance of each known attribute (§7), `None` for unknown codes.
fn known(c: u8) -> Option<(u8, Option<AttrErrorAction>)> {
    use AttrErrorAction::*;
    Some(match c {
        code::ORIGIN | code::AS_PATH | code::NEXT_HOP | code::LOCAL_PREF => {
            (WELL_KNOWN, Some(TreatAsWithdraw))
        }
        code::ATOMIC_AGGREGATE => (WELL_KNOWN, Some(AttributeDiscard)),
        code::MULTI_EXIT_DISC | code::ORIGINATOR_ID | code::CLUSTER_LIST => {
            (OPT_NON_TRANS, Some(TreatAsWithdraw))
        }
        code::MP_REACH_NLRI | code::MP_UNREACH_NLRI => (OPT_NON_TRANS, None),
        code::COMMUNITIES | code::EXTENDED_COMMUNITIES | code::LARGE_COMMUNITIES => {
            (OPT_TRANS, Some(TreatAsWithdraw))
        }
        code::AGGREGATOR | code::AS4_PATH | code::AS4_AGGREGATOR => {
            (OPT_TRANS, Some(AttributeDiscard))
        }
        _ => return None,
    })
}

fn u32_at(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

fn ipv4_at(v: &[u8]) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?))
}

/// Non-empty whole multiple of `n` octets (RFC 7606 §7.8, §7.10, §7.14; RFC 8092 §6).
fn multiple(v: &[u8], n: usize) -> bool {
    !v.is_empty() && v.len() % n == 0
}

fn decode_aggregator(v: &[u8], four: bool) -> Option<Aggregator> {
    match (four, v.len()) {
        (true, 8) => Some(Aggregator {
            asn: u32_at(&v[..4])?,
            address: ipv4_at(&v[4..])?,
        }),
        (false, 6) => Some(Aggregator {
            asn: u32::from(u16::from_be_bytes([v[0], v[1]])),
            address: ipv4_at(&v[2..])?,
        }),
        _ => None,
    }
}

/// A routing view's family (AFI 1 or 2, SAFI 241; see [`view_nlri`]).
pub fn is_view(f: AfiSafi) -> bool {
    f == view_nlri::IPV4_VIEW || f == view_nlri::IPV6_VIEW
}

/// A view family (SAFI 241) this session negotiated. SAFI 241 is for private
/// use (RFC 4760 §6): where it was not negotiated it may mean anything, so it
/// is ignored as any other family the session does not carry.
fn is_negotiated_view(f: AfiSafi, views: Families) -> bool {
    (f == view_nlri::IPV4_VIEW && views.ipv4_unicast)
        || (f == view_nlri::IPV6_VIEW && views.ipv6_unicast)
}

/// MP_REACH_NLRI whose value is `buf[range]`; only the prefix list is sliced
/// off as `Bytes` (each slice is an atomic reference count update).
/// `rx`: the families received with ADD-PATH ids, and the view families.
fn decode_mp_reach(
    buf: &Bytes,
    range: std::ops::Range<usize>,
    (rx, views): (Families, Families),
) -> Result<Option<MpReach>, Bad> {
    let v = &buf[range.clone()];
    let reset = Bad::Reset(sub::OPTIONAL_ATTRIBUTE_ERROR);
    let &[a1, a2, safi, nh_len, ..] = v else {
        return Err(reset);
    };
    let afi_safi = AfiSafi {
        afi: u16::from_be_bytes([a1, a2]),
        safi,
    };
    let nh_end = 4 + usize::from(nh_len);
    // Next hop, then one reserved octet (RFC 4760 §3).
    let (Some(nh), Some(_reserved)) = (v.get(4..nh_end), v.get(nh_end)) else {
        return Err(reset);
    };
    let view = is_negotiated_view(afi_safi, views);
    if afi_safi != AfiSafi::IPV4_UNICAST && afi_safi != AfiSafi::IPV6_UNICAST && !view {
        return Ok(None);
    }
    let next_hop =
        MpNextHop::decode(afi_safi.afi, nh).ok_or(Bad::Reset(sub::OPTIONAL_ATTRIBUTE_ERROR))?;
    let nlri = buf.slice(range.start + nh_end + 1..range.end);
    if view {
        // A view's next hop is always IPv6 (RFC 8950's form for IPv4 too).
        let ok = matches!(next_hop, MpNextHop::V6 { .. })
            && view_nlri::validate(afi_safi.afi, &nlri).is_ok();
        if !ok {
            return Err(Bad::Reset(sub::OPTIONAL_ATTRIBUTE_ERROR));
        }
        return Ok(Some(MpReach {
            afi_safi,
            next_hop,
            nlri,
            add_path: false,
        }));
    }
    let add_path = rx.get(afi_safi);
    let ok = if afi_safi.afi == AFI_IPV4 {
        nlri::validate_v4_as(&nlri, add_path)
    } else {
        nlri::validate_v6_as(&nlri, add_path)
    };
    ok.map_err(|_| Bad::Reset(sub::OPTIONAL_ATTRIBUTE_ERROR))?;
    Ok(Some(MpReach {
        afi_safi,
        next_hop,
        nlri,
        add_path,
    }))
}

/// MP_UNREACH_NLRI whose value is `buf[range]` (see [`decode_mp_reach`]).
fn decode_mp_unreach(
    buf: &Bytes,
    range: std::ops::Range<usize>,
    (rx, views): (Families, Families),
) -> Result<Option<MpUnreach>, Bad> {
    let &[a1, a2, safi, ..] = &buf[range.clone()] else {
        return Err(Bad::Reset(sub::OPTIONAL_ATTRIBUTE_ERROR));
    };
    let afi_safi = AfiSafi {
        afi: u16::from_be_bytes([a1, a2]),
        safi,
    };
    let view = is_negotiated_view(afi_safi, views);
    if afi_safi != AfiSafi::IPV4_UNICAST && afi_safi != AfiSafi::IPV6_UNICAST && !view {
        return Ok(None);
    }
    let withdrawn = buf.slice(range.start + 3..range.end);
    if view {
        view_nlri::validate(afi_safi.afi, &withdrawn)
            .map_err(|_| Bad::Reset(sub::OPTIONAL_ATTRIBUTE_ERROR))?;
        return Ok(Some(MpUnreach {
            afi_safi,
            withdrawn,
            add_path: false,
        }));
    }
    let add_path = rx.get(afi_safi);
    let ok = if afi_safi.afi == AFI_IPV4 {
        nlri::validate_v4_as(&withdrawn, add_path)
    } else {
        nlri::validate_v6_as(&withdrawn, add_path)
    };
    ok.map_err(|_| Bad::Reset(sub::OPTIONAL_ATTRIBUTE_ERROR))?;
    Ok(Some(MpUnreach {
        afi_safi,
        withdrawn,
        add_path,
    }))
}

/// Appends one attribute: header with a 2-octet length, value, then shrinks to a
/// 1-octet length when the value fits in 255 octets, unless `flags` asks for
/// Extended Length.
fn put_attr(
    out: &mut BytesMut,
    flags: u8,
    code: u8,
    value: impl FnOnce(&mut BytesMut),
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u8(flags | flag::EXTENDED_LENGTH);
    out.put_u8(code);
    out.put_u16(0);
    value(out);
    let len = out.len() - start - 4;
    if len <= 255 && flags & flag::EXTENDED_LENGTH == 0 {
        out[start] = flags & !flag::EXTENDED_LENGTH;
        out[start + 2] = len as u8;
        let end = out.len();
        out.copy_within(start + 4..end, start + 3);
        out.truncate(end - 1);
    } else if let Ok(l) = u16::try_from(len) {
        out[start + 2..start + 4].copy_from_slice(&l.to_be_bytes());
    } else {
        out.truncate(start);
        return Err(EncodeError::ValueTooLong("path attribute"));
    }
    Ok(())
}

/// MP_REACH_NLRI / MP_UNREACH_NLRI carrying prefixes always use the Extended
/// Length flag, empty ones (End-of-RIB) do not: BIRD's encoding, so that
/// re-encoding what BIRD sent gives the same bytes. Both are valid.
fn mp_flags(empty: bool) -> u8 {
    if empty {
        OPT_NON_TRANS
    } else {
        OPT_NON_TRANS | flag::EXTENDED_LENGTH
    }
}

impl PathAttributes {
    /// Copy without MP_REACH_NLRI / MP_UNREACH_NLRI (not cloned): the attributes a route keeps.
    pub fn without_reach(&self) -> PathAttributes {
        let PathAttributes {
            origin,
            as_path,
            next_hop,
            med,
            local_pref,
            atomic_aggregate,
            aggregator,
            communities,
            originator_id,
            cluster_list,
            mp_reach: _,
            mp_unreach: _,
            extended_communities,
            large_communities,
            unknown,
        } = self;
        PathAttributes {
            origin: *origin,
            as_path: as_path.clone(),
            next_hop: *next_hop,
            med: *med,
            local_pref: *local_pref,
            atomic_aggregate: *atomic_aggregate,
            aggregator: *aggregator,
            communities: communities.clone(),
            originator_id: *originator_id,
            cluster_list: cluster_list.clone(),
            mp_reach: None,
            mp_unreach: None,
            extended_communities: extended_communities.clone(),
            large_communities: large_communities.clone(),
            unknown: unknown.clone(),
        }
    }

    /// Copy for re-advertisement (RFC 4271 §5, §9.1.3): unknown optional
    /// non-transitive attributes are dropped, unknown optional transitive ones
    /// get the Partial bit.
    pub fn for_readvertise(&self) -> PathAttributes {
        PathAttributes {
            unknown: self.readvertised_unknown(),
            ..self.clone()
        }
    }

    /// The unknown attributes of [`PathAttributes::for_readvertise`].
    pub fn readvertised_unknown(&self) -> ThinVec<RawAttribute> {
        self.unknown
            .iter()
            .filter(|a| a.flags & flag::TRANSITIVE != 0)
            .map(|a| RawAttribute {
                flags: a.flags | flag::PARTIAL,
                ..a.clone()
            })
            .collect()
    }

    /// Decodes the path attributes field of an UPDATE (RFC 4271 §4.3) into
    /// `self` (empty: `PathAttributes::default()`), in place inside the
    /// `Update` being built rather than moved there, applying RFC 7606.
    /// Issues (treat-as-withdraw, attribute discard) go to `issues`;
    /// session-reset errors are returned as the NOTIFICATION to send. Returns
    /// whether an attribute's length ran past the field (RFC 7606 §4). The
    /// field is `buf[field]`: positions stay in `buf`, which is not sliced.
    pub(crate) fn decode_into(
        &mut self,
        buf: &Bytes,
        field: std::ops::Range<usize>,
        neg: &Negotiated,
        issues: &mut Vec<AttrIssue>,
    ) -> Result<bool, Notification> {
        let four = neg.four_octet_as;
        let a = self;
        let mut seen = [0u64; 4];
        let mut as4_path: Option<AsPath> = None;
        let mut as4_aggregator: Option<Aggregator> = None;
        let mut framing_error = false;
        let (mut pos, end) = (field.start, field.end.min(buf.len()));
        while pos < end {
            // RFC 7606 §4: attribute header or value running past the field.
            let rest = &buf[pos..end];
            let (flags, c) = match *rest {
                [f, c, _, ..] => (f, c),
                _ => {
                    framing_error = true;
                    break;
                }
            };
            let (hlen, vlen) = if flags & flag::EXTENDED_LENGTH != 0 {
                match rest.get(2..4) {
                    Some(&[x, y]) => (4, usize::from(u16::from_be_bytes([x, y]))),
                    _ => {
                        framing_error = true;
                        break;
                    }
                }
            } else {
                (3, usize::from(rest[2]))
            };
            if hlen + vlen > rest.len() {
                framing_error = true;
                break;
            }
            // Ranges, not `Bytes`: slicing costs an atomic refcount update,
            // paid only where a `Bytes` is kept (MP_*, unknown) or on error.
            let raw = pos..pos + hlen + vlen;
            let value = pos + hlen..pos + hlen + vlen;
            pos += hlen + vlen;
            let reset = |subcode: u8| Notification::update_error(subcode, buf.slice(raw.clone()));

            // RFC 7606 §3 g: duplicates.
            let (w, bit) = (usize::from(c / 64), 1u64 << (c % 64));
            if seen[w] & bit != 0 {
                if c == code::MP_REACH_NLRI || c == code::MP_UNREACH_NLRI {
                    return Err(Notification::update_error(
                        sub::MALFORMED_ATTRIBUTE_LIST,
                        Bytes::new(),
                    ));
                }
                issues.push(issue(
                    c,
                    AttrErrorAction::AttributeDiscard,
                    "duplicate attribute",
                ));
                continue;
            }
            seen[w] |= bit;

            let Some((expect, action)) = known(c) else {
                if flags & flag::OPTIONAL == 0 {
                    return Err(reset(sub::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE));
                }
                a.unknown.push(RawAttribute {
                    flags: flags & !flag::EXTENDED_LENGTH,
                    code: c,
                    value: buf.slice(value),
                });
                continue;
            };
            // RFC 7606 §3 c: Optional/Transitive bits in conflict.
            if flags & (flag::OPTIONAL | flag::TRANSITIVE) != expect {
                match action {
                    Some(act) => {
                        issues.push(issue(c, act, "attribute flags error"));
                        continue;
                    }
                    None => return Err(reset(sub::ATTRIBUTE_FLAGS_ERROR)),
                }
            }
            let rx = (neg.add_path_receive, neg.views);
            match a.apply(
                c,
                buf,
                value,
                (four, rx),
                &mut as4_path,
                &mut as4_aggregator,
            ) {
                Ok(()) => {}
                Err(Bad::Act(act, why)) => issues.push(issue(c, act, why)),
                Err(Bad::Reset(subcode)) => return Err(reset(subcode)),
            }
        }

        // RFC 6793 §4.2.3: a NEW speaker talking to an OLD one.
        if !four {
            match (a.aggregator, as4_aggregator) {
                (Some(agg), Some(_)) if agg.asn != u32::from(AS_TRANS) => as4_path = None,
                (Some(_), Some(agg4)) => a.aggregator = Some(agg4),
                _ => {}
            }
            // Without AS_PATH, AS4_PATH is ignored (and the UPDATE lacks a mandatory attribute).
            if let Some(path4) = as4_path {
                if let Some(path) = a.as_path.take() {
                    a.as_path = Some(path.merge_as4(path4));
                }
            }
        }
        Ok(framing_error)
    }

    fn apply(
        &mut self,
        c: u8,
        buf: &Bytes,
        range: std::ops::Range<usize>,
        (four, rx): (bool, (Families, Families)),
        as4_path: &mut Option<AsPath>,
        as4_aggregator: &mut Option<Aggregator>,
    ) -> Result<(), Bad> {
        use AttrErrorAction::*;
        let v = &buf[range.clone()];
        let taw = |why| Err(Bad::Act(TreatAsWithdraw, why));
        match c {
            code::ORIGIN => match *v {
                [0] => self.origin = Some(Origin::Igp),
                [1] => self.origin = Some(Origin::Egp),
                [2] => self.origin = Some(Origin::Incomplete),
                _ => return taw("malformed ORIGIN"),
            },
            code::AS_PATH => match AsPath::decode(v, if four { 4 } else { 2 }) {
                Some(p) => self.as_path = Some(p),
                None => return taw("malformed AS_PATH"),
            },
            code::NEXT_HOP => match ipv4_at(v) {
                Some(nh) => self.next_hop = Some(nh),
                None => return taw("NEXT_HOP length is not 4"),
            },
            code::MULTI_EXIT_DISC => match u32_at(v) {
                Some(x) => self.med = Some(x),
                None => return taw("MULTI_EXIT_DISC length is not 4"),
            },
            code::LOCAL_PREF => match u32_at(v) {
                Some(x) => self.local_pref = Some(x),
                None => return taw("LOCAL_PREF length is not 4"),
            },
            code::ATOMIC_AGGREGATE => {
                if !v.is_empty() {
                    return Err(Bad::Act(
                        AttributeDiscard,
                        "ATOMIC_AGGREGATE length is not 0",
                    ));
                }
                self.atomic_aggregate = true;
            }
            code::AGGREGATOR => match decode_aggregator(v, four) {
                Some(agg) => self.aggregator = Some(agg),
                None => {
                    return Err(Bad::Act(
                        AttributeDiscard,
                        "AGGREGATOR has the wrong length",
                    ))
                }
            },
            code::COMMUNITIES => {
                if !multiple(v, 4) {
                    return taw("COMMUNITIES length is not a non-zero multiple of 4");
                }
                self.communities = v
                    .chunks_exact(4)
                    .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
                    .collect();
            }
            code::ORIGINATOR_ID => match ipv4_at(v) {
                Some(x) => self.originator_id = Some(x),
                None => return taw("ORIGINATOR_ID length is not 4"),
            },
            code::CLUSTER_LIST => {
                if !multiple(v, 4) {
                    return taw("CLUSTER_LIST length is not a non-zero multiple of 4");
                }
                self.cluster_list = v
                    .chunks_exact(4)
                    .map(|x| Ipv4Addr::new(x[0], x[1], x[2], x[3]))
                    .collect();
            }
            code::MP_REACH_NLRI => match decode_mp_reach(buf, range, rx)? {
                Some(r) => self.mp_reach = Some(Box::new(r)),
                None => {
                    return Err(Bad::Act(
                        AttributeDiscard,
                        "MP_REACH_NLRI of an unsupported family",
                    ))
                }
            },
            code::MP_UNREACH_NLRI => match decode_mp_unreach(buf, range, rx)? {
                Some(u) => self.mp_unreach = Some(Box::new(u)),
                None => {
                    return Err(Bad::Act(
                        AttributeDiscard,
                        "MP_UNREACH_NLRI of an unsupported family",
                    ))
                }
            },
            code::EXTENDED_COMMUNITIES => {
                if !multiple(v, 8) {
                    return taw("EXTENDED_COMMUNITIES length is not a non-zero multiple of 8");
                }
                self.extended_communities = v
                    .chunks_exact(8)
                    .filter_map(|x| <[u8; 8]>::try_from(x).ok())
                    .collect();
            }
            code::LARGE_COMMUNITIES => {
                if !multiple(v, 12) {
                    return taw("LARGE_COMMUNITIES length is not a non-zero multiple of 12");
                }
                self.large_communities = v
                    .chunks_exact(12)
                    .map(|x| {
                        [0, 4, 8].map(|i| u32::from_be_bytes([x[i], x[i + 1], x[i + 2], x[i + 3]]))
                    })
                    .collect();
            }
            code::AS4_PATH => {
                // RFC 6793 §3: a NEW speaker discards AS4_PATH from a NEW speaker;
                // §6: malformed, or with confederation segments, is attribute discard.
                if four {
                    return Err(Bad::Act(
                        AttributeDiscard,
                        "AS4_PATH from a 4-octet AS speaker",
                    ));
                }
                match AsPath::decode(v, 4) {
                    Some(p) if !p.segments.iter().any(|s| s.kind.is_confed()) => {
                        *as4_path = Some(p)
                    }
                    _ => return Err(Bad::Act(AttributeDiscard, "malformed AS4_PATH")),
                }
            }
            code::AS4_AGGREGATOR => {
                if four {
                    return Err(Bad::Act(
                        AttributeDiscard,
                        "AS4_AGGREGATOR from a 4-octet AS speaker",
                    ));
                }
                match decode_aggregator(v, true) {
                    Some(agg) => *as4_aggregator = Some(agg),
                    None => {
                        return Err(Bad::Act(AttributeDiscard, "AS4_AGGREGATOR length is not 8"))
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Appends the path attributes. MP_REACH_NLRI and MP_UNREACH_NLRI come first
    /// (RFC 7606 §5.1), the others in type code order, unknown ones last as
    /// given. Without 4-octet AS, AS numbers above 65535 are written as AS_TRANS
    /// and AS4_PATH / AS4_AGGREGATOR are added (RFC 6793 §4.2.2).
    pub fn encode(&self, neg: &Negotiated, out: &mut BytesMut) -> Result<(), EncodeError> {
        let four = neg.four_octet_as;
        if let Some(r) = &self.mp_reach {
            put_attr(out, mp_flags(r.nlri.is_empty()), code::MP_REACH_NLRI, |o| {
                o.put_u16(r.afi_safi.afi);
                o.put_u8(r.afi_safi.safi);
                o.put_u8(r.next_hop.wire_len() as u8);
                r.next_hop.put(o);
                o.put_u8(0);
                o.put_slice(&r.nlri);
            })?;
        }
        if let Some(u) = &self.mp_unreach {
            put_attr(
                out,
                mp_flags(u.withdrawn.is_empty()),
                code::MP_UNREACH_NLRI,
                |o| {
                    o.put_u16(u.afi_safi.afi);
                    o.put_u8(u.afi_safi.safi);
                    o.put_slice(&u.withdrawn);
                },
            )?;
        }
        self.encode_common(four, out)
    }

    /// Everything but MP_REACH_NLRI / MP_UNREACH_NLRI.
    pub(crate) fn encode_common(&self, four: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_common_with(self.next_hop, four, out)
    }

    /// [`PathAttributes::encode_common`] with `next_hop` as NEXT_HOP (`None`:
    /// none), as export sends a shared set without copying it.
    pub(crate) fn encode_common_with(
        &self,
        next_hop: Option<Ipv4Addr>,
        four: bool,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if let Some(o) = self.origin {
            put_attr(out, WELL_KNOWN, code::ORIGIN, |b| b.put_u8(o as u8))?;
        }
        if let Some(p) = &self.as_path {
            p.check_encodable()?;
            put_attr(out, WELL_KNOWN, code::AS_PATH, |b| p.encode(b, four, false))?;
        }
        if let Some(nh) = next_hop {
            put_attr(out, WELL_KNOWN, code::NEXT_HOP, |b| {
                b.put_slice(&nh.octets())
            })?;
        }
        if let Some(m) = self.med {
            put_attr(out, OPT_NON_TRANS, code::MULTI_EXIT_DISC, |b| b.put_u32(m))?;
        }
        if let Some(lp) = self.local_pref {
            put_attr(out, WELL_KNOWN, code::LOCAL_PREF, |b| b.put_u32(lp))?;
        }
        if self.atomic_aggregate {
            put_attr(out, WELL_KNOWN, code::ATOMIC_AGGREGATE, |_| {})?;
        }
        if let Some(agg) = self.aggregator {
            put_attr(out, OPT_TRANS, code::AGGREGATOR, |b| {
                if four {
                    b.put_u32(agg.asn);
                } else {
                    b.put_u16(u16::try_from(agg.asn).unwrap_or(AS_TRANS));
                }
                b.put_slice(&agg.address.octets());
            })?;
        }
        if !self.communities.is_empty() {
            put_attr(out, OPT_TRANS, code::COMMUNITIES, |b| {
                self.communities.iter().for_each(|&x| b.put_u32(x))
            })?;
        }
        if let Some(id) = self.originator_id {
            put_attr(out, OPT_NON_TRANS, code::ORIGINATOR_ID, |b| {
                b.put_slice(&id.octets())
            })?;
        }
        if !self.cluster_list.is_empty() {
            put_attr(out, OPT_NON_TRANS, code::CLUSTER_LIST, |b| {
                self.cluster_list
                    .iter()
                    .for_each(|x| b.put_slice(&x.octets()))
            })?;
        }
        if !self.extended_communities.is_empty() {
            put_attr(out, OPT_TRANS, code::EXTENDED_COMMUNITIES, |b| {
                self.extended_communities
                    .iter()
                    .for_each(|x| b.put_slice(x))
            })?;
        }
        if !four {
            if let Some(p) = &self.as_path {
                let big = p
                    .segments
                    .iter()
                    .any(|s| !s.kind.is_confed() && s.asns.iter().any(|&a| a > 0xffff));
                if big {
                    put_attr(out, OPT_TRANS, code::AS4_PATH, |b| p.encode(b, true, true))?;
                }
            }
            if let Some(agg) = self.aggregator.filter(|a| a.asn > 0xffff) {
                put_attr(out, OPT_TRANS, code::AS4_AGGREGATOR, |b| {
                    b.put_u32(agg.asn);
                    b.put_slice(&agg.address.octets());
                })?;
            }
        }
        if !self.large_communities.is_empty() {
            put_attr(out, OPT_TRANS, code::LARGE_COMMUNITIES, |b| {
                self.large_communities
                    .iter()
                    .flatten()
                    .for_each(|&x| b.put_u32(x))
            })?;
        }
        for u in &self.unknown {
            put_attr(out, u.flags & !flag::EXTENDED_LENGTH, u.code, |b| {
                b.put_slice(&u.value)
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
