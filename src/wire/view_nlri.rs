//! NLRI of a routing view's family (ARCHITECTURE.md "Routing views"): AFI 1
//! or 2, SAFI 241 (RFC 4760 §6 private use). Each entry is
//!
//! ```text
//! length (1 octet, bits: 8 view-id bits + the prefix length) | view id (1 octet) | prefix (⌈len/8⌉ octets)
//! ```
//!
//! as labeled families put their label before the prefix (RFC 8277 §2).
//! Lists are validated once and iterated lazily, trailing host bits cleared.
//! A length below 8 (no view id) or above 8 + the address size is malformed:
//! the caller answers as for any malformed MP_REACH/MP_UNREACH list.

use super::nlri::NlriError;
use super::{AfiSafi, AFI_IPV4, AFI_IPV6};
use bytes::{BufMut, Bytes};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// SAFI of the view families (private use, RFC 4760 §6).
pub const SAFI_VIEW: u8 = 241;
/// Bits of the view id in the length.
const ID_BITS: u8 = 8;

pub const IPV4_VIEW: AfiSafi = AfiSafi {
    afi: AFI_IPV4,
    safi: SAFI_VIEW,
};
pub const IPV6_VIEW: AfiSafi = AfiSafi {
    afi: AFI_IPV6,
    safi: SAFI_VIEW,
};

fn max_bits(afi: u16) -> u8 {
    if afi == AFI_IPV4 {
        32
    } else {
        128
    }
}

/// Checks a list of `afi` (1 or 2); returns the number of entries.
pub fn validate(afi: u16, buf: &[u8]) -> Result<usize, NlriError> {
    let max = max_bits(afi) + ID_BITS;
    let (mut pos, mut count) = (0, 0);
    while let Some(&bits) = buf.get(pos) {
        if !(ID_BITS..=max).contains(&bits) {
            return Err(NlriError::BadLength(bits));
        }
        pos += 1 + usize::from(bits).div_ceil(8);
        count += 1;
    }
    if pos > buf.len() {
        return Err(NlriError::Truncated);
    }
    Ok(count)
}

/// Octets one entry with a prefix of `bits` takes.
pub fn encoded_len(bits: u8) -> usize {
    2 + usize::from(bits).div_ceil(8)
}

/// Appends one entry of view `id`.
pub fn put(out: &mut impl BufMut, id: u8, p: IpNet) {
    let bits = p.prefix_len();
    out.put_u8(bits + ID_BITS);
    out.put_u8(id);
    let n = usize::from(bits).div_ceil(8);
    match p {
        IpNet::V4(p) => out.put_slice(&p.network().octets()[..n]),
        IpNet::V6(p) => out.put_slice(&p.network().octets()[..n]),
    }
}

/// The (view id, prefix) entries of a validated list.
#[derive(Clone, Debug)]
pub struct ViewPrefixes {
    afi: u16,
    buf: Bytes,
    pos: usize,
}

impl ViewPrefixes {
    /// Iterates a list already checked with [`validate`] (or an empty one).
    pub fn validated(afi: u16, buf: Bytes) -> ViewPrefixes {
        ViewPrefixes { afi, buf, pos: 0 }
    }

    /// Validates `buf` and iterates it.
    pub fn new(afi: u16, buf: Bytes) -> Result<ViewPrefixes, NlriError> {
        validate(afi, &buf)?;
        Ok(Self::validated(afi, buf))
    }
}

impl Iterator for ViewPrefixes {
    type Item = (u8, IpNet);

    fn next(&mut self) -> Option<(u8, IpNet)> {
        let &bits = self.buf.get(self.pos)?;
        let &id = self.buf.get(self.pos + 1)?;
        let plen = bits.checked_sub(ID_BITS)?;
        let n = usize::from(plen).div_ceil(8);
        let bytes = self.buf.get(self.pos + 2..self.pos + 2 + n)?;
        self.pos += 2 + n;
        let p = if self.afi == AFI_IPV4 {
            let mut o = [0u8; 4];
            o[..n].copy_from_slice(bytes);
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(o), plen).ok()?.trunc())
        } else {
            let mut o = [0u8; 16];
            o[..n].copy_from_slice(bytes);
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(o), plen).ok()?.trunc())
        };
        Some((id, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_v4_and_v6() {
        let v4 = [
            (2, net("10.255.0.3/32")),
            (7, net("10.9.0.0/16")),
            (254, net("0.0.0.0/0")),
        ];
        let mut b = BytesMut::new();
        for (id, p) in v4 {
            put(&mut b, id, p);
        }
        // 10.255.0.3/32 in view 2: length 40, id, 4 octets.
        assert_eq!(&b[..6], &[40, 2, 10, 255, 0, 3]);
        assert_eq!(b.len(), 6 + 4 + 2);
        let got: Vec<_> = ViewPrefixes::new(AFI_IPV4, b.freeze()).unwrap().collect();
        assert_eq!(got, v4);
        let v6 = [(1, net("fd00:255::3/128")), (9, net("fd00:9::/32"))];
        let mut b = BytesMut::new();
        for (id, p) in v6 {
            put(&mut b, id, p);
            assert_eq!(
                encoded_len(p.prefix_len()),
                b.len() - (b.len() - encoded_len(p.prefix_len()))
            );
        }
        assert_eq!(b[0], 136);
        assert_eq!(b.len(), encoded_len(128) + encoded_len(32));
        let got: Vec<_> = ViewPrefixes::new(AFI_IPV6, b.freeze()).unwrap().collect();
        assert_eq!(got, v6);
    }

    #[test]
    fn host_bits_are_cleared() {
        let b = Bytes::from_static(&[8 + 24, 3, 10, 1, 2]);
        let got: Vec<_> = ViewPrefixes::new(AFI_IPV4, b).unwrap().collect();
        assert_eq!(got, [(3, net("10.1.2.0/24"))]);
        let b = Bytes::from_static(&[8 + 23, 3, 10, 1, 3]);
        let got: Vec<_> = ViewPrefixes::new(AFI_IPV4, b).unwrap().collect();
        assert_eq!(got, [(3, net("10.1.2.0/23"))]);
    }

    #[test]
    fn malformed_lengths_are_errors() {
        // No room for the view id.
        assert_eq!(validate(AFI_IPV4, &[7, 1]), Err(NlriError::BadLength(7)));
        assert_eq!(validate(AFI_IPV4, &[0]), Err(NlriError::BadLength(0)));
        // Longer than view id + address.
        assert_eq!(
            validate(AFI_IPV4, &[41, 1, 1, 2, 3, 4, 5]),
            Err(NlriError::BadLength(41))
        );
        assert!(validate(AFI_IPV6, &[136 + 1]).is_err());
        assert_eq!(
            validate(AFI_IPV6, &[136, 1, 0xfd]),
            Err(NlriError::Truncated)
        );
        assert_eq!(
            validate(AFI_IPV4, &[40, 2, 10, 255, 0]),
            Err(NlriError::Truncated)
        );
        // A bare view id (length 8: the whole address space of the view).
        assert_eq!(validate(AFI_IPV4, &[8, 5]), Ok(1));
        assert_eq!(validate(AFI_IPV4, &[]), Ok(0));
    }

    #[test]
    fn any_bytes_never_panic() {
        // Every short list over a few interesting octets: validate, and iterate what validates.
        let vals = [0u8, 7, 8, 9, 16, 40, 41, 136, 137, 255];
        for a in vals {
            for b in vals {
                for c in vals {
                    for afi in [AFI_IPV4, AFI_IPV6] {
                        let buf = Bytes::from(vec![a, b, c]);
                        if let Ok(n) = validate(afi, &buf) {
                            assert_eq!(ViewPrefixes::validated(afi, buf).count(), n);
                        }
                    }
                }
            }
        }
    }

    // UPDATEs of a view, through UpdateBuilder and Message::decode.
    use crate::wire::{Message, MpNextHop, Negotiated, PathAttributes, UpdateBuilder};
    use std::net::Ipv6Addr;

    fn view_neg(id: u8) -> Negotiated {
        Negotiated {
            views: crate::wire::Families {
                ipv4_unicast: true,
                ipv6_unicast: true,
            },
            view: Some(id),
            ..Negotiated::FABRIC
        }
    }

    fn ll() -> MpNextHop {
        MpNextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: Some("fe80::1".parse().unwrap()),
        }
    }

    fn attrs() -> PathAttributes {
        crate::rib::originated_attributes()
    }

    fn decode_all(mut run: bytes::Bytes) -> Vec<crate::wire::Update> {
        let mut v = Vec::new();
        while !run.is_empty() {
            let len = usize::from(u16::from_be_bytes([run[16], run[17]]));
            match Message::decode(run.split_to(len), &view_neg(1)).unwrap() {
                Message::Update(u) => v.push(u),
                m => panic!("{m:?}"),
            }
        }
        v
    }

    #[test]
    fn builder_encodes_a_view_and_the_codec_reads_it_back() {
        let b = UpdateBuilder::new(&view_neg(7));
        let mut out = BytesMut::new();
        let v4: Vec<Ipv4Net> = vec!["10.255.0.3/32".parse().unwrap()];
        b.announce_v4(&attrs(), ll(), v4.clone(), &mut out).unwrap();
        let v6: Vec<Ipv6Net> = vec!["fd00:255::3/128".parse().unwrap()];
        b.announce_v6(&attrs(), ll(), v6.clone(), &mut out).unwrap();
        b.withdraw_v4(v4.clone(), &mut out).unwrap();
        b.withdraw_v6(v6.clone(), &mut out).unwrap();
        b.end_of_rib(AfiSafi::IPV4_UNICAST, &mut out).unwrap();
        let u = decode_all(out.freeze());
        assert_eq!(u.len(), 5);
        let r = u[0].attrs.mp_reach.as_ref().unwrap();
        assert_eq!(r.afi_safi, IPV4_VIEW);
        assert_eq!(r.next_hop, ll());
        assert_eq!(
            r.view_prefixes().collect::<Vec<_>>(),
            [(7, IpNet::V4(v4[0]))]
        );
        // Nothing of it reaches the default view's prefix lists.
        assert_eq!(u[0].announced().count(), 0);
        assert!(u[0].issues.is_empty(), "{:?}", u[0].issues);
        let r = u[1].attrs.mp_reach.as_ref().unwrap();
        assert_eq!(
            (r.afi_safi, r.view_prefixes().collect::<Vec<_>>()),
            (IPV6_VIEW, vec![(7, IpNet::V6(v6[0]))])
        );
        // IPv4 withdrawals leave the Withdrawn Routes field for MP_UNREACH_NLRI.
        assert!(u[2].withdrawn.is_empty());
        let w = u[2].attrs.mp_unreach.as_ref().unwrap();
        assert_eq!(
            (w.afi_safi, w.view_prefixes().collect::<Vec<_>>()),
            (IPV4_VIEW, vec![(7, IpNet::V4(v4[0]))])
        );
        let w = u[3].attrs.mp_unreach.as_ref().unwrap();
        assert_eq!(
            w.view_prefixes().collect::<Vec<_>>(),
            [(7, IpNet::V6(v6[0]))]
        );
        assert_eq!(u[4].is_end_of_rib(), Some(IPV4_VIEW));
    }

    #[test]
    fn view_packing_respects_the_message_size() {
        let b = UpdateBuilder::new(&view_neg(1));
        let mut out = BytesMut::new();
        let many: Vec<Ipv4Net> = (0..2000u32)
            .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0aff_0000 + i), 32).unwrap())
            .collect();
        let n = b
            .announce_v4(&attrs(), ll(), many.clone(), &mut out)
            .unwrap();
        let run = out.freeze();
        let u = decode_all(run.clone());
        assert_eq!(u.len(), n);
        assert!(n > 1);
        let mut at = 0;
        while at < run.len() {
            let len = usize::from(u16::from_be_bytes([run[at + 16], run[at + 17]]));
            assert!(len <= 4096, "{len}");
            at += len;
        }
        let got: Vec<IpNet> = u
            .iter()
            .flat_map(|u| u.attrs.mp_reach.as_ref().unwrap().view_prefixes())
            .map(|(id, p)| {
                assert_eq!(id, 1);
                p
            })
            .collect();
        assert_eq!(got, many.into_iter().map(IpNet::V4).collect::<Vec<_>>());
    }

    #[test]
    fn a_builder_without_view_is_unchanged() {
        // The default view: the same bytes with or without the view fields.
        let v4: Vec<Ipv4Net> = vec!["10.255.0.3/32".parse().unwrap()];
        let with_views = Negotiated {
            views: crate::wire::Families {
                ipv4_unicast: true,
                ipv6_unicast: true,
            },
            ..Negotiated::FABRIC
        };
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        UpdateBuilder::new(&Negotiated::FABRIC)
            .announce_v4(&attrs(), ll(), v4.clone(), &mut a)
            .unwrap();
        UpdateBuilder::new(&with_views)
            .announce_v4(&attrs(), ll(), v4.clone(), &mut b)
            .unwrap();
        assert_eq!(a, b);
        let r = decode_all(a.freeze())[0].attrs.mp_reach.clone().unwrap();
        assert_eq!(r.afi_safi, AfiSafi::IPV4_UNICAST);
    }

    /// An UPDATE whose only attribute is MP_REACH_NLRI / MP_UNREACH_NLRI `value`.
    fn update_with(code: u8, value: &[u8]) -> bytes::Bytes {
        let mut body = vec![0, 0];
        let attr_len = 3 + value.len();
        body.extend_from_slice(&(attr_len as u16).to_be_bytes());
        body.extend_from_slice(&[0x80, code, value.len() as u8]);
        body.extend_from_slice(value);
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(2);
        m.extend_from_slice(&body);
        bytes::Bytes::from(m)
    }

    #[test]
    fn malformed_view_lists_reset_the_session_as_other_families_do() {
        let nh: [u8; 16] = "fe80::1".parse::<Ipv6Addr>().unwrap().octets();
        let reach = |safi: u8, nlri: &[u8]| {
            let mut v = vec![0, 1, safi, 16];
            v.extend_from_slice(&nh);
            v.push(0);
            v.extend_from_slice(nlri);
            update_with(14, &v)
        };
        let neg = view_neg(2);
        // Well formed: decoded.
        assert!(Message::decode(reach(241, &[40, 2, 10, 255, 0, 3]), &neg).is_ok());
        for bad in [&[7u8, 2][..], &[41, 2, 10, 255, 0, 3, 0], &[40, 2, 10, 255]] {
            let e = Message::decode(reach(241, bad), &neg).unwrap_err();
            let n = e.notification;
            // UPDATE Message Error / Optional Attribute Error (RFC 4760 §7, RFC 7606 §7.11).
            assert_eq!((n.code, n.subcode), (3, 9), "{bad:?}");
        }
        // An IPv4 next hop in a view family: the same.
        let mut v = vec![0, 1, 241, 4, 10, 0, 0, 1, 0, 40, 2, 10, 255, 0, 3];
        assert!(Message::decode(update_with(14, &v), &neg).is_err());
        v.truncate(3);
        v.extend_from_slice(&[40, 2, 10, 255, 0]);
        assert!(Message::decode(update_with(15, &v), &neg).is_err());
        // Not negotiated: SAFI 241 is private use and may mean anything
        // elsewhere (RFC 4760 §6): discarded as any unsupported family.
        for bad in [&[7u8, 2][..], &[41, 2, 10, 255, 0, 3, 0]] {
            match Message::decode(reach(241, bad), &Negotiated::FABRIC) {
                Ok(Message::Update(u)) => {
                    assert!(u.attrs.mp_reach.is_none() && !u.issues.is_empty())
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        // Another private SAFI is still discarded as before.
        let u = match Message::decode(reach(242, &[40, 2, 10, 255, 0, 3]), &Negotiated::FABRIC) {
            Ok(Message::Update(u)) => u,
            other => panic!("{other:?}"),
        };
        assert!(u.attrs.mp_reach.is_none() && !u.issues.is_empty());
    }
}
