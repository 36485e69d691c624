//! Capabilities advertisement (RFC 5492) and the capabilities kittbgpd knows.
//!
//! Unknown capabilities are kept as [`Capability::Unknown`] and never fatal.
//! A known capability with a malformed value (wrong length) is an OPEN Message
//! Error with subcode 0 (Unspecific, RFC 4271 §6.2 "recognized but malformed");
//! the data is the offending capability (code, length, value).

use super::notification::{open as sub, Notification};
use super::{AfiSafi, EncodeError};
use bytes::{BufMut, Bytes, BytesMut};

pub const MULTIPROTOCOL: u8 = 1;
pub const ROUTE_REFRESH: u8 = 2;
pub const EXTENDED_NEXT_HOP: u8 = 5;
pub const EXTENDED_MESSAGE: u8 = 6;
pub const GRACEFUL_RESTART: u8 = 64;
pub const FOUR_OCTET_AS: u8 = 65;
pub const ADD_PATH: u8 = 69;
pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
pub const FQDN: u8 = 73;

/// One tuple of the Extended Next Hop Encoding capability (RFC 8950 §3):
/// NLRI of `nlri` may carry a next hop of `nexthop_afi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ExtNhEntry {
    pub nlri: AfiSafi,
    pub nexthop_afi: u16,
}

/// Send/Receive field of the ADD-PATH capability (RFC 7911 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddPathMode {
    Receive = 1,
    Send = 2,
    Both = 3,
}

impl AddPathMode {
    pub fn from_u8(v: u8) -> Option<AddPathMode> {
        match v {
            1 => Some(AddPathMode::Receive),
            2 => Some(AddPathMode::Send),
            3 => Some(AddPathMode::Both),
            _ => None,
        }
    }

    pub fn receives(self) -> bool {
        self as u8 & 1 != 0
    }

    pub fn sends(self) -> bool {
        self as u8 & 2 != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Capability {
    /// Code 1, RFC 4760 §8.
    Multiprotocol(AfiSafi),
    /// Code 2, RFC 2918.
    RouteRefresh,
    /// Code 5, RFC 8950.
    ExtendedNextHop(Vec<ExtNhEntry>),
    /// Code 6, RFC 8654.
    ExtendedMessage,
    /// Code 64, RFC 4724 (N bit: RFC 8538). `restart_time` is 12 bits; each
    /// family has its flags octet (0x80: forwarding state preserved).
    GracefulRestart {
        restart_state: bool,
        notification: bool,
        restart_time: u16,
        families: Vec<(AfiSafi, u8)>,
    },
    /// Code 65, RFC 6793.
    FourOctetAs(u32),
    /// Code 69, RFC 7911: per family, whether the speaker can send and/or
    /// receive several paths (a Path Identifier before each prefix).
    AddPath(Vec<(AfiSafi, AddPathMode)>),
    /// Code 70, RFC 7313.
    EnhancedRouteRefresh,
    /// Anything else (LLGR 71, FQDN 73, ...), kept verbatim.
    Unknown {
        code: u8,
        #[serde(serialize_with = "super::serde_util::hex")]
        value: Bytes,
    },
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => MULTIPROTOCOL,
            Capability::RouteRefresh => ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => EXTENDED_MESSAGE,
            Capability::GracefulRestart { .. } => GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => FOUR_OCTET_AS,
            Capability::AddPath(_) => ADD_PATH,
            Capability::EnhancedRouteRefresh => ENHANCED_ROUTE_REFRESH,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decodes one capability value. `raw` is the whole TLV, used as NOTIFICATION data.
    pub fn decode(code: u8, value: Bytes, raw: &Bytes) -> Result<Capability, Notification> {
        let bad = || {
            Notification::new(
                super::notification::OPEN_MESSAGE_ERROR,
                sub::UNSPECIFIC,
                raw.clone(),
            )
        };
        let v = &value[..];
        Ok(match code {
            MULTIPROTOCOL => match *v {
                [a, b, _reserved, safi] => Capability::Multiprotocol(AfiSafi {
                    afi: u16::from_be_bytes([a, b]),
                    safi,
                }),
                _ => return Err(bad()),
            },
            ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
            EXTENDED_MESSAGE if v.is_empty() => Capability::ExtendedMessage,
            ENHANCED_ROUTE_REFRESH if v.is_empty() => Capability::EnhancedRouteRefresh,
            ROUTE_REFRESH | EXTENDED_MESSAGE | ENHANCED_ROUTE_REFRESH => return Err(bad()),
            FOUR_OCTET_AS => match *v {
                [a, b, c, d] => Capability::FourOctetAs(u32::from_be_bytes([a, b, c, d])),
                _ => return Err(bad()),
            },
            EXTENDED_NEXT_HOP => {
                if v.len() % 6 != 0 {
                    return Err(bad());
                }
                let mut entries = Vec::with_capacity(v.len() / 6);
                for e in v.chunks_exact(6) {
                    let safi = u16::from_be_bytes([e[2], e[3]]);
                    // A SAFI above 255 cannot be an AfiSafi: keep the capability verbatim.
                    let Ok(safi) = u8::try_from(safi) else {
                        return Ok(Capability::Unknown { code, value });
                    };
                    entries.push(ExtNhEntry {
                        nlri: AfiSafi {
                            afi: u16::from_be_bytes([e[0], e[1]]),
                            safi,
                        },
                        nexthop_afi: u16::from_be_bytes([e[4], e[5]]),
                    });
                }
                Capability::ExtendedNextHop(entries)
            }
            GRACEFUL_RESTART => {
                let [a, b, rest @ ..] = v else {
                    return Err(bad());
                };
                if rest.len() % 4 != 0 {
                    return Err(bad());
                }
                let families = rest
                    .chunks_exact(4)
                    .map(|e| {
                        (
                            AfiSafi {
                                afi: u16::from_be_bytes([e[0], e[1]]),
                                safi: e[2],
                            },
                            e[3],
                        )
                    })
                    .collect();
                Capability::GracefulRestart {
                    restart_state: a & 0x80 != 0,
                    notification: a & 0x40 != 0,
                    restart_time: u16::from_be_bytes([a & 0x0f, *b]),
                    families,
                }
            }
            ADD_PATH => {
                if v.is_empty() || v.len() % 4 != 0 {
                    return Err(bad());
                }
                let mut families = Vec::with_capacity(v.len() / 4);
                for e in v.chunks_exact(4) {
                    // RFC 7911 §4: another Send/Receive value makes the
                    // capability not understood: kept verbatim, ignored.
                    let Some(mode) = AddPathMode::from_u8(e[3]) else {
                        return Ok(Capability::Unknown { code, value });
                    };
                    let afi = AfiSafi {
                        afi: u16::from_be_bytes([e[0], e[1]]),
                        safi: e[2],
                    };
                    families.push((afi, mode));
                }
                Capability::AddPath(families)
            }
            _ => Capability::Unknown { code, value },
        })
    }

    /// Appends the capability TLV (code, length, value).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.code());
        let len_at = out.len();
        out.put_u8(0);
        match self {
            Capability::Multiprotocol(f) => {
                out.put_u16(f.afi);
                out.put_u8(0);
                out.put_u8(f.safi);
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    out.put_u16(e.nlri.afi);
                    out.put_u16(u16::from(e.nlri.safi));
                    out.put_u16(e.nexthop_afi);
                }
            }
            Capability::GracefulRestart {
                restart_state,
                notification,
                restart_time,
                families,
            } => {
                let flags = if *restart_state { 0x8000 } else { 0 }
                    | if *notification { 0x4000 } else { 0 };
                out.put_u16(flags | (restart_time & 0x0fff));
                for (f, flags) in families {
                    out.put_u16(f.afi);
                    out.put_u8(f.safi);
                    out.put_u8(*flags);
                }
            }
            Capability::FourOctetAs(asn) => out.put_u32(*asn),
            Capability::AddPath(families) => {
                for (f, mode) in families {
                    out.put_u16(f.afi);
                    out.put_u8(f.safi);
                    out.put_u8(*mode as u8);
                }
            }
            Capability::Unknown { value, .. } => out.put_slice(value),
        }
        let len = out.len() - len_at - 1;
        let Ok(len) = u8::try_from(len) else {
            out.truncate(len_at - 1);
            return Err(EncodeError::ValueTooLong("capability"));
        };
        out[len_at] = len;
        Ok(())
    }
}

/// Parses the value of a Capabilities optional parameter (RFC 5492 §4): a
/// sequence of (code, length, value). A length past the end is 2/0.
pub fn decode_list(param: &Bytes, out: &mut Vec<Capability>) -> Result<(), Notification> {
    let mut pos = 0;
    while pos < param.len() {
        let hdr = param
            .get(pos..pos + 2)
            .ok_or_else(|| malformed_param(param))?;
        let (code, len) = (hdr[0], usize::from(hdr[1]));
        let end = pos + 2 + len;
        if end > param.len() {
            return Err(malformed_param(param));
        }
        out.push(Capability::decode(
            code,
            param.slice(pos + 2..end),
            &param.slice(pos..end),
        )?);
        pos = end;
    }
    Ok(())
}

fn malformed_param(param: &Bytes) -> Notification {
    Notification::new(
        super::notification::OPEN_MESSAGE_ERROR,
        sub::UNSPECIFIC,
        param.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: Capability) -> Vec<u8> {
        let mut out = BytesMut::new();
        c.encode(&mut out).unwrap();
        let b = out.freeze();
        let mut caps = Vec::new();
        decode_list(&b, &mut caps).unwrap();
        assert_eq!(caps, vec![c]);
        b.to_vec()
    }

    #[test]
    fn known_capabilities() {
        assert_eq!(
            roundtrip(Capability::Multiprotocol(AfiSafi::IPV6_UNICAST)),
            [1, 4, 0, 2, 0, 1]
        );
        assert_eq!(roundtrip(Capability::RouteRefresh), [2, 0]);
        assert_eq!(roundtrip(Capability::EnhancedRouteRefresh), [70, 0]);
        assert_eq!(roundtrip(Capability::ExtendedMessage), [6, 0]);
        assert_eq!(
            roundtrip(Capability::FourOctetAs(4242421945)),
            [65, 4, 252, 222, 56, 185]
        );
        assert_eq!(
            roundtrip(Capability::ExtendedNextHop(vec![ExtNhEntry {
                nlri: AfiSafi::IPV4_UNICAST,
                nexthop_afi: 2
            }])),
            [5, 6, 0, 1, 0, 1, 0, 2]
        );
        assert_eq!(
            roundtrip(Capability::GracefulRestart {
                restart_state: true,
                notification: true,
                restart_time: 120,
                families: vec![(AfiSafi::IPV4_UNICAST, 0x80)],
            }),
            [64, 6, 0xc0, 120, 0, 1, 1, 0x80]
        );
        assert_eq!(
            roundtrip(Capability::AddPath(vec![
                (AfiSafi::IPV4_UNICAST, AddPathMode::Receive),
                (AfiSafi::IPV6_UNICAST, AddPathMode::Both),
            ])),
            [69, 8, 0, 1, 1, 1, 0, 2, 1, 3]
        );
        assert_eq!(
            roundtrip(Capability::Unknown {
                code: 73,
                value: Bytes::from_static(b"\x03abc\x00")
            }),
            b"\x49\x05\x03abc\x00"
        );
    }

    #[test]
    fn malformed_known_capability_is_open_error_unspecific() {
        for bad in [
            &[1u8, 3, 0, 1, 0][..],
            &[65, 2, 0, 1],
            &[2, 1, 0],
            &[5, 4, 0, 1, 0, 1],
            &[64, 1, 0],
            &[64, 3, 0, 0, 1],
            &[69, 0],
            &[69, 3, 0, 1, 1],
            &[69, 5, 0, 1, 1, 1, 0],
        ] {
            let mut caps = Vec::new();
            let e = decode_list(&Bytes::copy_from_slice(bad), &mut caps).unwrap_err();
            assert_eq!((e.code, e.subcode), (2, 0), "{bad:?}");
            assert_eq!(&e.data[..], bad);
        }
        let mut caps = Vec::new();
        let e = decode_list(&Bytes::from_static(&[65, 4, 0]), &mut caps).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 0));
    }

    #[test]
    fn unknown_is_kept() {
        let mut caps = Vec::new();
        decode_list(&Bytes::from_static(&[69, 4, 0, 1, 1, 4, 71, 0]), &mut caps).unwrap();
        assert_eq!(caps.len(), 2);
        // ADD-PATH with a Send/Receive value other than 1..3 (RFC 7911 §4).
        assert_eq!(
            caps[0],
            Capability::Unknown {
                code: 69,
                value: Bytes::from_static(&[0, 1, 1, 4])
            }
        );
        assert_eq!(caps[1].code(), 71);
    }
}
