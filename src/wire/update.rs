//! UPDATE message (RFC 4271 §4.3) with RFC 7606 revised error handling, and
//! [`UpdateBuilder`], which packs many prefixes into as few UPDATEs as fit.
//!
//! RFC 7606 decisions (see also [`attr`](super::attr)):
//! - Withdrawn Routes Length / Total Path Attribute Length inconsistent with the
//!   message: session reset 3/1. A malformed prefix in the withdrawn routes or
//!   NLRI field: session reset 3/10 (§5.3). MP_REACH/MP_UNREACH malformed
//!   (bad next hop length, bad prefixes, too short): session reset 3/9 with the
//!   attribute as data (RFC 4760 §7, RFC 7606 §7.11); appearing twice: 3/1 (§3 g).
//! - An attribute running past the path attributes field (§4): treat-as-withdraw,
//!   unless neither the NLRI field nor an MP_REACH/MP_UNREACH seen before the
//!   error has any route to withdraw: then the routes cannot be located and it is
//!   session reset 3/1.
//! - Flags (Optional/Transitive bits) wrong: the attribute's malformed action (§3 c).
//! - ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES, ORIGINATOR_ID,
//!   CLUSTER_LIST, EXTENDED_COMMUNITIES, LARGE_COMMUNITIES malformed:
//!   treat-as-withdraw. ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR
//!   malformed: attribute discard. Other duplicates: first kept, later ones
//!   discarded.
//! - Missing ORIGIN or AS_PATH when there is NLRI (field or MP_REACH), or
//!   NEXT_HOP when the NLRI field is non-empty: treat-as-withdraw (§3 d).
//!   LOCAL_PREF is mandatory only on iBGP, which the codec does not know: the
//!   caller checks `attrs.local_pref` for iBGP (see [`Update::has_reachability`]).
//! - Semantic checks (next hop is ours, AS loops, first AS) are the caller's, and
//!   so is checking the families against `Negotiated` (IPv4/IPv6 unicast are
//!   always decoded; other families' MP attributes are discarded).
//! - [`UpdateBuilder::withdraw_v4`] uses the classic Withdrawn Routes field even
//!   with RFC 8950 (BIRD sends MP_UNREACH_NLRI AFI 1 there; both are valid and BIRD
//!   accepts either).

use super::attr::{MpNextHop, MpUnreach, PathAttributes};
use super::message::EncodeError;
use super::nlri::{self, Ipv4Prefixes, Prefixes};
use super::notification::{update as sub, Notification};
use super::{AfiSafi, Negotiated, AFI_IPV4, AFI_IPV6, HEADER_LEN, SAFI_UNICAST};
use bytes::{BufMut, Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::Ipv4Addr;

/// RFC 7606 §2 approaches short of a session reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum AttrErrorAction {
    /// Handle the UPDATE's announced routes as withdrawn.
    TreatAsWithdraw,
    /// The attribute was dropped; the UPDATE is otherwise fine.
    AttributeDiscard,
}

/// A non-fatal attribute error found while decoding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AttrIssue {
    /// Attribute type code.
    pub code: u8,
    pub action: AttrErrorAction,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// Withdrawn Routes field (IPv4), validated.
    pub withdrawn: Bytes,
    pub attrs: PathAttributes,
    /// NLRI field (IPv4), validated.
    pub nlri: Bytes,
    /// Attribute errors handled per RFC 7606 without a session reset.
    pub issues: Vec<AttrIssue>,
    /// `withdrawn` and `nlri` have a Path Identifier before each prefix
    /// (RFC 7911 §3: ADD-PATH negotiated for IPv4 unicast in this direction).
    pub add_path: bool,
}

impl serde::Serialize for Update {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use super::attr::PrefixList;
        use serde::ser::SerializeStruct;
        let list = |b: &Bytes| {
            PrefixList(
                Prefixes::V4(Ipv4Prefixes::validated_as(b.clone(), self.add_path)),
                self.add_path,
            )
        };
        let mut st = s.serialize_struct("Update", 4)?;
        st.serialize_field("withdrawn", &list(&self.withdrawn))?;
        st.serialize_field("attrs", &self.attrs)?;
        st.serialize_field("nlri", &list(&self.nlri))?;
        st.serialize_field("issues", &self.issues)?;
        st.end()
    }
}

fn reset(subcode: u8) -> Notification {
    Notification::update_error(subcode, Bytes::new())
}

impl Update {
    /// Decodes an UPDATE body (after the header). Errors are the NOTIFICATION for a session reset.
    pub fn decode(body: Bytes, neg: &Negotiated) -> Result<Update, Notification> {
        let b = &body[..];
        let Some(&[w1, w2]) = b.get(..2) else {
            return Err(reset(sub::MALFORMED_ATTRIBUTE_LIST));
        };
        let wend = 2 + usize::from(u16::from_be_bytes([w1, w2]));
        let Some(&[a1, a2]) = b.get(wend..wend + 2) else {
            return Err(reset(sub::MALFORMED_ATTRIBUTE_LIST));
        };
        let aend = wend + 2 + usize::from(u16::from_be_bytes([a1, a2]));
        if aend > b.len() {
            return Err(reset(sub::MALFORMED_ATTRIBUTE_LIST));
        }
        let withdrawn = body.slice(2..wend);
        let nlri = body.slice(aend..);
        let add_path = neg.add_path_receive.ipv4_unicast;
        if nlri::validate_v4_as(&withdrawn, add_path).is_err()
            || nlri::validate_v4_as(&nlri, add_path).is_err()
        {
            return Err(reset(sub::INVALID_NETWORK_FIELD));
        }
        // Built in place: the attributes are decoded into the returned value.
        let mut u = Update {
            withdrawn,
            attrs: PathAttributes::default(),
            nlri,
            issues: Vec::new(),
            add_path,
        };
        let framing_error = u
            .attrs
            .decode_into(&body, wend + 2..aend, neg, &mut u.issues)?;
        let (attrs, issues) = (&u.attrs, &mut u.issues);
        if framing_error {
            let locatable =
                !u.nlri.is_empty() || attrs.mp_reach.is_some() || attrs.mp_unreach.is_some();
            if !locatable {
                return Err(reset(sub::MALFORMED_ATTRIBUTE_LIST));
            }
            issues.push(AttrIssue {
                code: 0,
                action: AttrErrorAction::TreatAsWithdraw,
                reason: "attribute length runs past the path attributes",
            });
        }
        // RFC 7606 §3 d: missing well-known mandatory attributes.
        if !u.nlri.is_empty() || attrs.mp_reach.is_some() {
            let mut missing = |present: bool, code: u8, reason| {
                if !present && !issues.iter().any(|i| i.code == code) {
                    issues.push(AttrIssue {
                        code,
                        action: AttrErrorAction::TreatAsWithdraw,
                        reason,
                    });
                }
            };
            missing(
                attrs.origin.is_some(),
                super::attr::code::ORIGIN,
                "missing ORIGIN",
            );
            missing(
                attrs.as_path.is_some(),
                super::attr::code::AS_PATH,
                "missing AS_PATH",
            );
            missing(
                u.nlri.is_empty() || attrs.next_hop.is_some(),
                super::attr::code::NEXT_HOP,
                "missing NEXT_HOP",
            );
        }
        Ok(u)
    }

    /// Appends the UPDATE body.
    pub fn encode_body(&self, neg: &Negotiated, out: &mut BytesMut) -> Result<(), EncodeError> {
        let wlen = u16::try_from(self.withdrawn.len())
            .map_err(|_| EncodeError::ValueTooLong("withdrawn routes"))?;
        out.put_u16(wlen);
        out.put_slice(&self.withdrawn);
        let at = out.len();
        out.put_u16(0);
        self.attrs.encode(neg, out)?;
        let alen = u16::try_from(out.len() - at - 2)
            .map_err(|_| EncodeError::ValueTooLong("path attributes"))?;
        out[at..at + 2].copy_from_slice(&alen.to_be_bytes());
        out.put_slice(&self.nlri);
        Ok(())
    }

    /// IPv4 routes of the Withdrawn Routes field.
    pub fn withdrawn_v4(&self) -> Ipv4Prefixes {
        Ipv4Prefixes::validated_as(self.withdrawn.clone(), self.add_path)
    }

    /// IPv4 routes of the NLRI field.
    pub fn nlri_v4(&self) -> Ipv4Prefixes {
        Ipv4Prefixes::validated_as(self.nlri.clone(), self.add_path)
    }

    /// All announced routes: NLRI field, then MP_REACH_NLRI.
    pub fn announced(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.nlri_v4().map(IpNet::V4).chain(
            self.attrs
                .mp_reach
                .as_ref()
                .map_or(Prefixes::None, |r| r.prefixes()),
        )
    }

    /// All announced routes with their Path Identifier (`None` in a field
    /// without ADD-PATH, RFC 7911): NLRI field, then MP_REACH_NLRI.
    pub fn announced_paths(&self) -> impl Iterator<Item = (Option<u32>, IpNet)> + '_ {
        let mp = self.attrs.mp_reach.as_ref();
        self.paths(
            self.nlri_v4(),
            mp.map_or((Prefixes::None, false), |r| (r.prefixes(), r.add_path)),
        )
    }

    /// All withdrawn routes with their Path Identifier (see [`Update::announced_paths`]).
    pub fn withdrawn_paths(&self) -> impl Iterator<Item = (Option<u32>, IpNet)> + '_ {
        let mp = self.attrs.mp_unreach.as_ref();
        self.paths(
            self.withdrawn_v4(),
            mp.map_or((Prefixes::None, false), |u| (u.prefixes(), u.add_path)),
        )
    }

    /// A field's prefixes then an MP attribute's, each with its path id if it has them.
    fn paths(
        &self,
        field: Ipv4Prefixes,
        (mp, mp_add_path): (Prefixes, bool),
    ) -> impl Iterator<Item = (Option<u32>, IpNet)> + 'static {
        let v4 = self.add_path;
        field
            .with_path_ids()
            .map(move |(i, p)| (v4.then_some(i), IpNet::V4(p)))
            .chain(
                mp.with_path_ids()
                    .map(move |(i, p)| (mp_add_path.then_some(i), p)),
            )
    }

    /// All withdrawn routes: Withdrawn Routes field, then MP_UNREACH_NLRI.
    pub fn withdrawn_all(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.withdrawn_v4().map(IpNet::V4).chain(
            self.attrs
                .mp_unreach
                .as_ref()
                .map_or(Prefixes::None, |u| u.prefixes()),
        )
    }

    /// Announces any route (where LOCAL_PREF matters for iBGP, RFC 4271 §5.1.5).
    pub fn has_reachability(&self) -> bool {
        !self.nlri.is_empty()
            || self
                .attrs
                .mp_reach
                .as_ref()
                .is_some_and(|r| !r.nlri.is_empty())
    }

    /// RFC 7606: the announced routes must be handled as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.action == AttrErrorAction::TreatAsWithdraw)
    }

    /// End-of-RIB marker (RFC 4724 §2): an empty UPDATE for IPv4 unicast, or one
    /// with only an empty MP_UNREACH_NLRI for that family.
    pub fn is_end_of_rib(&self) -> Option<AfiSafi> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || !self.issues.is_empty() {
            return None;
        }
        match &self.attrs.mp_unreach {
            None if self.attrs == PathAttributes::default() => Some(AfiSafi::IPV4_UNICAST),
            Some(u)
                if u.withdrawn.is_empty()
                    && self.attrs.mp_reach.is_none()
                    && self.attrs.without_reach() == PathAttributes::default() =>
            {
                Some(u.afi_safi)
            }
            _ => None,
        }
    }

    /// The End-of-RIB marker for `afi_safi`.
    pub fn end_of_rib(afi_safi: AfiSafi) -> Update {
        let mut u = Update::default();
        if afi_safi != AfiSafi::IPV4_UNICAST {
            u.attrs.mp_unreach = Some(Box::new(MpUnreach {
                afi_safi,
                withdrawn: Bytes::new(),
                add_path: false,
            }));
        }
        u
    }

    /// One UPDATE announcing IPv4 `prefixes` in the NLRI field with `next_hop`.
    /// For many prefixes use [`UpdateBuilder`], which splits by message size.
    pub fn announce_v4(
        mut attrs: PathAttributes,
        next_hop: Ipv4Addr,
        prefixes: impl IntoIterator<Item = Ipv4Net>,
    ) -> Update {
        attrs.next_hop = Some(next_hop);
        let mut b = BytesMut::new();
        prefixes.into_iter().for_each(|p| nlri::put_v4(&mut b, p));
        Update {
            attrs,
            nlri: b.freeze(),
            ..Update::default()
        }
    }

    /// One UPDATE withdrawing IPv4 `prefixes` in the Withdrawn Routes field.
    pub fn withdraw_v4(prefixes: impl IntoIterator<Item = Ipv4Net>) -> Update {
        let mut b = BytesMut::new();
        prefixes.into_iter().for_each(|p| nlri::put_v4(&mut b, p));
        Update {
            withdrawn: b.freeze(),
            ..Update::default()
        }
    }
}

/// A prefix type the builder can pack: a prefix, or (Path Identifier,
/// prefix) for ADD-PATH (RFC 7911 §3).
pub trait Pfx: Copy {
    const AFI: u16;
    /// Carries a Path Identifier.
    const PATH: bool;
    fn wire_len(&self) -> usize;
    fn put(&self, out: &mut BytesMut);
}

impl Pfx for Ipv4Net {
    const AFI: u16 = AFI_IPV4;
    const PATH: bool = false;
    fn wire_len(&self) -> usize {
        nlri::encoded_len(self.prefix_len())
    }
    fn put(&self, out: &mut BytesMut) {
        nlri::put_v4(out, *self)
    }
}

impl Pfx for Ipv6Net {
    const AFI: u16 = AFI_IPV6;
    const PATH: bool = false;
    fn wire_len(&self) -> usize {
        nlri::encoded_len(self.prefix_len())
    }
    fn put(&self, out: &mut BytesMut) {
        nlri::put_v6(out, *self)
    }
}

impl<P: Pfx> Pfx for (u32, P) {
    const AFI: u16 = P::AFI;
    const PATH: bool = true;
    fn wire_len(&self) -> usize {
        4 + self.1.wire_len()
    }
    fn put(&self, out: &mut BytesMut) {
        out.put_u32(self.0);
        self.1.put(out)
    }
}

/// A prefix of view `.0`'s family (`view_nlri`): the view id goes between
/// the length octet (8 bits more) and the prefix.
#[derive(Clone, Copy)]
struct InView<P>(u8, P);

impl<P: Pfx> Pfx for InView<P> {
    const AFI: u16 = P::AFI;
    const PATH: bool = P::PATH;
    fn wire_len(&self) -> usize {
        self.1.wire_len() + 1
    }
    fn put(&self, out: &mut BytesMut) {
        let start = out.len();
        self.1.put(out);
        // The length octet, after a Path Identifier if there is one.
        let at = start + if P::PATH { 4 } else { 0 };
        out.put_u8(0);
        let end = out.len();
        out.copy_within(at + 1..end - 1, at + 2);
        out[at] += 8;
        out[at + 1] = self.0;
    }
}

/// Where the prefixes go in the message.
enum Layout<'a> {
    Withdrawn,
    /// IPv4 NLRI field after `common` (which includes NEXT_HOP).
    Nlri(&'a [u8]),
    /// MP_REACH_NLRI (first attribute, RFC 7606 §5.1), then `common`.
    Reach(MpNextHop, &'a [u8]),
    Unreach,
}

/// Packs prefixes sharing one attribute set into as few UPDATEs as fit in the
/// maximum message length, writing whole wire messages (header included)
/// straight into a `BytesMut`. Each call returns how many messages it wrote.
///
/// ```ignore
/// let b = UpdateBuilder::new(&neg);
/// let mut out = BytesMut::new();
/// b.announce_v4(&attrs, MpNextHop::V6 { global: Ipv6Addr::UNSPECIFIED, link_local: Some(ll) }, loopbacks, &mut out)?;
/// b.announce_v6(&attrs, MpNextHop::V6 { global, link_local: None }, v6_prefixes, &mut out)?;
/// b.withdraw_v4(gone, &mut out)?;
/// conn.send(out.freeze());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct UpdateBuilder {
    neg: Negotiated,
    max_len: usize,
}

impl UpdateBuilder {
    pub fn new(neg: &Negotiated) -> UpdateBuilder {
        UpdateBuilder {
            neg: *neg,
            max_len: neg.max_message_len(),
        }
    }

    /// Use smaller messages (at most the negotiated maximum).
    pub fn with_max_len(mut self, max_len: usize) -> UpdateBuilder {
        self.max_len = max_len.min(self.neg.max_message_len());
        self
    }

    /// Announces IPv4 unicast prefixes. A `V4` next hop goes in NEXT_HOP with
    /// the prefixes in the NLRI field; a `V6` one (RFC 8950, needs
    /// `ipv4_extended_next_hop`) in MP_REACH_NLRI with AFI 1. `attrs`' own
    /// NEXT_HOP, MP_REACH_NLRI and MP_UNREACH_NLRI are ignored.
    ///
    /// Prefixes are `Ipv4Net`, or `(path id, Ipv4Net)` when ADD-PATH send is
    /// negotiated for IPv4 unicast (one or the other, else
    /// [`EncodeError::AddPath`]); the same holds for every method.
    pub fn announce_v4<P: Pfx>(
        &self,
        attrs: &PathAttributes,
        next_hop: MpNextHop,
        prefixes: impl IntoIterator<Item = P>,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        debug_assert_eq!(P::AFI, AFI_IPV4);
        let mut common = BytesMut::with_capacity(128);
        let four = self.neg.four_octet_as;
        if let Some(id) = self.neg.view {
            // A view's family: always MP_REACH_NLRI with an IPv6 next hop.
            if !matches!(next_hop, MpNextHop::V6 { .. }) {
                return Err(EncodeError::NextHopFamily);
            }
            attrs.encode_common_with(None, four, &mut common)?;
            let layout = Layout::Reach(next_hop, &common);
            return self.pack(layout, prefixes.into_iter().map(|p| InView(id, p)), out);
        }
        match next_hop {
            MpNextHop::V4(nh) => {
                attrs.encode_common_with(Some(nh), four, &mut common)?;
                self.pack(Layout::Nlri(&common), prefixes, out)
            }
            MpNextHop::V6 { .. } if self.neg.ipv4_extended_next_hop => {
                attrs.encode_common_with(None, four, &mut common)?;
                self.pack(Layout::Reach(next_hop, &common), prefixes, out)
            }
            MpNextHop::V6 { .. } => Err(EncodeError::NextHopFamily),
        }
    }

    /// Announces IPv6 unicast prefixes in MP_REACH_NLRI (RFC 4760, RFC 2545).
    pub fn announce_v6<P: Pfx>(
        &self,
        attrs: &PathAttributes,
        next_hop: MpNextHop,
        prefixes: impl IntoIterator<Item = P>,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        debug_assert_eq!(P::AFI, AFI_IPV6);
        if !matches!(next_hop, MpNextHop::V6 { .. }) {
            return Err(EncodeError::NextHopFamily);
        }
        let mut common = BytesMut::with_capacity(128);
        attrs.encode_common_with(None, self.neg.four_octet_as, &mut common)?;
        let layout = Layout::Reach(next_hop, &common);
        match self.neg.view {
            Some(id) => self.pack(layout, prefixes.into_iter().map(|p| InView(id, p)), out),
            None => self.pack(layout, prefixes, out),
        }
    }

    /// Withdraws IPv4 unicast prefixes in the Withdrawn Routes field.
    pub fn withdraw_v4<P: Pfx>(
        &self,
        prefixes: impl IntoIterator<Item = P>,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        debug_assert_eq!(P::AFI, AFI_IPV4);
        match self.neg.view {
            // A view's family: MP_UNREACH_NLRI (AFI 1, SAFI 241).
            Some(id) => self.pack(
                Layout::Unreach,
                prefixes.into_iter().map(|p| InView(id, p)),
                out,
            ),
            None => self.pack(Layout::Withdrawn, prefixes, out),
        }
    }

    /// Withdraws IPv6 unicast prefixes in MP_UNREACH_NLRI.
    pub fn withdraw_v6<P: Pfx>(
        &self,
        prefixes: impl IntoIterator<Item = P>,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        debug_assert_eq!(P::AFI, AFI_IPV6);
        match self.neg.view {
            Some(id) => self.pack(
                Layout::Unreach,
                prefixes.into_iter().map(|p| InView(id, p)),
                out,
            ),
            None => self.pack(Layout::Unreach, prefixes, out),
        }
    }

    /// Appends the End-of-RIB marker for `afi_safi` (RFC 4724 §2).
    /// Built for a view (`Negotiated::view`), (AFI, 1) becomes (AFI, 241).
    pub fn end_of_rib(&self, afi_safi: AfiSafi, out: &mut BytesMut) -> Result<(), EncodeError> {
        let family = match self.neg.view {
            Some(_) => AfiSafi {
                afi: afi_safi.afi,
                safi: super::view_nlri::SAFI_VIEW,
            },
            None => afi_safi,
        };
        super::Message::Update(Update::end_of_rib(family)).encode(&self.neg, out)
    }

    fn pack<P: Pfx>(
        &self,
        layout: Layout<'_>,
        prefixes: impl IntoIterator<Item = P>,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        // RFC 7911 §3: Path Identifiers exactly when negotiated for the family.
        if self.neg.add_path_send.afi(P::AFI) != P::PATH {
            return Err(EncodeError::AddPath);
        }
        let safi = match self.neg.view {
            Some(_) => super::view_nlri::SAFI_VIEW,
            None => SAFI_UNICAST,
        };
        let mut it = prefixes.into_iter().peekable();
        let mut messages = 0;
        while let Some(first) = it.peek() {
            let first_len = first.wire_len();
            let start = out.len();
            out.put_bytes(0xff, 16);
            out.put_u16(0);
            out.put_u8(super::MessageType::Update as u8);
            // Fixed part; `patch` is where a 2-octet length of the prefixes (plus `extra`) goes.
            let (patch, extra, tail): (usize, usize, &[u8]) = match &layout {
                Layout::Withdrawn => (out.len(), 0, &[]),
                Layout::Nlri(common) => {
                    out.put_u16(0);
                    out.put_u16(common.len() as u16);
                    out.put_slice(common);
                    (usize::MAX, 0, &[])
                }
                Layout::Reach(nh, common) => {
                    out.put_u16(0);
                    out.put_u16(0);
                    out.put_u8(0x90); // optional, extended length
                    out.put_u8(super::attr::code::MP_REACH_NLRI);
                    let at = out.len();
                    out.put_u16(0);
                    out.put_u16(P::AFI);
                    out.put_u8(safi);
                    out.put_u8(nh.wire_len() as u8);
                    nh.put(out);
                    out.put_u8(0);
                    (at, 5 + nh.wire_len(), common)
                }
                Layout::Unreach => {
                    out.put_u16(0);
                    out.put_u16(0);
                    out.put_u8(0x90);
                    out.put_u8(super::attr::code::MP_UNREACH_NLRI);
                    let at = out.len();
                    out.put_u16(0);
                    out.put_u16(P::AFI);
                    out.put_u8(safi);
                    (at, 3, &[])
                }
            };
            if matches!(layout, Layout::Withdrawn) {
                out.put_u16(0);
            }
            // Room left for prefixes: whole message minus what is written and what follows.
            let trailer = tail.len()
                + if matches!(layout, Layout::Withdrawn) {
                    2
                } else {
                    0
                };
            let used = out.len() - start + trailer;
            let room = self.max_len.saturating_sub(used);
            if room < first_len {
                out.truncate(start);
                return Err(EncodeError::TooLong {
                    len: used + first_len,
                    max: self.max_len,
                });
            }
            let limit = out.len() + room;
            let nlri_start = out.len();
            while let Some(p) = it.peek() {
                if out.len() + p.wire_len() > limit {
                    break;
                }
                p.put(out);
                it.next();
            }
            let plen = out.len() - nlri_start;
            if patch != usize::MAX {
                out[patch..patch + 2].copy_from_slice(&((plen + extra) as u16).to_be_bytes());
            }
            match layout {
                Layout::Withdrawn => out.put_u16(0),
                Layout::Reach(..) | Layout::Unreach => {
                    out.put_slice(tail);
                    // Total Path Attribute Length: everything after it.
                    let alen = out.len() - (start + HEADER_LEN + 4);
                    out[start + HEADER_LEN + 2..start + HEADER_LEN + 4]
                        .copy_from_slice(&(alen as u16).to_be_bytes());
                }
                Layout::Nlri(_) => {}
            }
            let len = out.len() - start;
            out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
            messages += 1;
        }
        Ok(messages)
    }
}

#[cfg(test)]
mod tests;
