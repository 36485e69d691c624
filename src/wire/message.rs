//! BGP messages (RFC 4271 §4): header, type, and the dispatch to each body codec.
//! ROUTE-REFRESH (RFC 2918 §3, RFC 7313 §3) is small enough to live here.

use super::frame::{check_header, FrameError};
use super::notification::{self as n, Notification};
use super::{Negotiated, Open, Update, HEADER_LEN, MAX_MESSAGE_LEN};
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    /// RFC 2918.
    RouteRefresh = 5,
}

impl MessageType {
    pub fn from_u8(t: u8) -> Option<MessageType> {
        Some(match t {
            1 => MessageType::Open,
            2 => MessageType::Update,
            3 => MessageType::Notification,
            4 => MessageType::Keepalive,
            5 => MessageType::RouteRefresh,
            _ => return None,
        })
    }
}

/// ROUTE-REFRESH (RFC 2918 §3); `subtype` is RFC 7313's: 0 normal request,
/// 1 Beginning of Route Refresh, 2 End of Route Refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct RouteRefresh {
    pub afi: u16,
    pub subtype: u8,
    pub safi: u8,
}

impl RouteRefresh {
    pub const REQUEST: u8 = 0;
    pub const BORR: u8 = 1;
    pub const EORR: u8 = 2;
}

/// A decoded message. UPDATE is by far the largest variant; messages are
/// short-lived (decoded, then moved on), so it is not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// A received message is malformed; send `notification` and close (RFC 4271 §6).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {notification}")]
pub struct DecodeError {
    pub notification: Notification,
    pub reason: &'static str,
}

impl DecodeError {
    pub fn new(notification: Notification, reason: &'static str) -> DecodeError {
        DecodeError {
            notification,
            reason,
        }
    }
    /// The NOTIFICATION to send.
    pub fn notification(&self) -> Notification {
        self.notification.clone()
    }
}

impl From<FrameError> for DecodeError {
    fn from(e: FrameError) -> DecodeError {
        DecodeError::new(e.notification(), "bad message header")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} octets exceeds the maximum of {max}")]
    TooLong { len: usize, max: usize },
    #[error("{0} too long to encode")]
    ValueTooLong(&'static str),
    #[error("next hop does not fit the address family or the negotiated capabilities")]
    NextHopFamily,
    #[error(
        "path identifiers given where ADD-PATH send is not negotiated, or missing where it is"
    )]
    AddPath,
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Decodes one whole message (header included), as returned by
    /// [`split_frame`](super::split_frame). The header is checked again, so any
    /// byte string is safe to pass. `neg` decides the UPDATE encoding and the
    /// largest acceptable length; before the session is established use
    /// `Negotiated::default()`.
    pub fn decode(frame: Bytes, neg: &Negotiated) -> Result<Message, DecodeError> {
        let t = check_header(&frame, neg.max_message_len())?;
        if frame.len() != usize::from(u16::from_be_bytes([frame[16], frame[17]])) {
            return Err(DecodeError::new(
                Notification::bad_message_length(frame.len() as u16),
                "length field disagrees with frame",
            ));
        }
        let body = frame.slice(HEADER_LEN..);
        Ok(match t {
            MessageType::Open => {
                Message::Open(Open::decode(body).map_err(|n| DecodeError::new(n, "bad OPEN"))?)
            }
            MessageType::Update => Message::Update(
                Update::decode(body, neg).map_err(|n| DecodeError::new(n, "bad UPDATE"))?,
            ),
            MessageType::Notification => {
                Message::Notification(Notification::decode(body).ok_or_else(|| {
                    DecodeError::new(
                        Notification::bad_message_length(frame.len() as u16),
                        "short NOTIFICATION",
                    )
                })?)
            }
            MessageType::Keepalive => Message::Keepalive,
            MessageType::RouteRefresh => {
                let &[a1, a2, subtype, safi] = &body[..] else {
                    // RFC 7313 §5: with enhanced route refresh, 7/1 carrying the whole message.
                    let n = if neg.enhanced_route_refresh {
                        Notification::new(
                            n::ROUTE_REFRESH_MESSAGE_ERROR,
                            n::route_refresh::INVALID_MESSAGE_LENGTH,
                            frame.clone(),
                        )
                    } else {
                        Notification::bad_message_length(frame.len() as u16)
                    };
                    return Err(DecodeError::new(n, "bad ROUTE-REFRESH length"));
                };
                Message::RouteRefresh(RouteRefresh {
                    afi: u16::from_be_bytes([a1, a2]),
                    subtype,
                    safi,
                })
            }
        })
    }

    /// Appends the whole message. OPEN and KEEPALIVE are limited to 4096 octets
    /// (RFC 8654 §3), the others to `neg.max_message_len()`. On error `out` is unchanged.
    pub fn encode(&self, neg: &Negotiated, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_bytes(0xff, 16);
        out.put_u16(0);
        out.put_u8(self.message_type() as u8);
        let r = match self {
            Message::Open(o) => o.encode_body(out),
            Message::Update(u) => u.encode_body(neg, out),
            Message::Notification(n) => {
                n.encode_body(out);
                Ok(())
            }
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(rr) => {
                out.put_u16(rr.afi);
                out.put_u8(rr.subtype);
                out.put_u8(rr.safi);
                Ok(())
            }
        };
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => neg.max_message_len(),
        };
        let len = out.len() - start;
        if let Err(e) = r {
            out.truncate(start);
            return Err(e);
        }
        if len > max {
            out.truncate(start);
            return Err(EncodeError::TooLong { len, max });
        }
        out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(())
    }

    /// The message as one `Bytes`.
    pub fn to_bytes(&self, neg: &Negotiated) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(64);
        self.encode(neg, &mut out)?;
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(t: u8, body: &[u8]) -> Bytes {
        let mut b = vec![0xff; 16];
        b.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        b.push(t);
        b.extend_from_slice(body);
        Bytes::from(b)
    }

    #[test]
    fn keepalive_and_route_refresh() {
        let neg = Negotiated::default();
        let k = Message::Keepalive.to_bytes(&neg).unwrap();
        assert_eq!(k, wire(4, &[]));
        assert_eq!(Message::decode(k, &neg).unwrap(), Message::Keepalive);
        let rr = Message::RouteRefresh(RouteRefresh {
            afi: 2,
            subtype: RouteRefresh::BORR,
            safi: 1,
        });
        let b = rr.to_bytes(&neg).unwrap();
        assert_eq!(b, wire(5, &[0, 2, 1, 1]));
        assert_eq!(Message::decode(b, &neg).unwrap(), rr);
    }

    #[test]
    fn header_errors() {
        let neg = Negotiated::default();
        let mut bad = wire(4, &[]).to_vec();
        bad[3] = 0;
        assert_eq!(
            Message::decode(Bytes::from(bad), &neg)
                .unwrap_err()
                .notification,
            Notification::connection_not_synchronized()
        );
        assert_eq!(
            Message::decode(wire(9, &[]), &neg)
                .unwrap_err()
                .notification,
            Notification::bad_message_type(9)
        );
        assert_eq!(
            Message::decode(wire(4, &[0]), &neg)
                .unwrap_err()
                .notification,
            Notification::bad_message_length(20)
        );
        // Length field disagreeing with the frame given.
        let mut b = wire(4, &[]).to_vec();
        b.push(0);
        assert_eq!(
            Message::decode(Bytes::from(b), &neg)
                .unwrap_err()
                .notification
                .subcode,
            2
        );
        assert_eq!(
            Message::decode(Bytes::from_static(&[0xff; 5]), &neg)
                .unwrap_err()
                .notification
                .subcode,
            2
        );
    }

    #[test]
    fn route_refresh_bad_length() {
        let mut neg = Negotiated::default();
        let m = wire(5, &[0, 1, 0, 1, 0]);
        assert_eq!(
            Message::decode(m.clone(), &neg).unwrap_err().notification,
            Notification::bad_message_length(24)
        );
        neg.enhanced_route_refresh = true;
        let e = Message::decode(m.clone(), &neg).unwrap_err().notification;
        assert_eq!((e.code, e.subcode, e.data), (7, 1, m));
    }

    #[test]
    fn notification_roundtrip_and_limits() {
        let neg = Negotiated::default();
        let n = Message::Notification(Notification::admin_shutdown("bye"));
        let b = n.to_bytes(&neg).unwrap();
        assert_eq!(Message::decode(b, &neg).unwrap(), n);
        let big = Message::Notification(Notification::new(6, 0, vec![0; 5000]));
        assert_eq!(
            big.to_bytes(&neg),
            Err(EncodeError::TooLong {
                len: 5021,
                max: 4096
            })
        );
        let ext = Negotiated {
            extended_message: true,
            ..neg
        };
        assert_eq!(
            Message::decode(big.to_bytes(&ext).unwrap(), &ext).unwrap(),
            big
        );
        assert_eq!(
            Message::decode(wire(3, &[6]), &neg)
                .unwrap_err()
                .notification
                .subcode,
            2
        );
    }
}
