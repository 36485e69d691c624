//! Cutting a TCP byte stream into BGP messages and checking the header
//! (RFC 4271 §4.1, §6.1; RFC 8654 §4).
//!
//! [`split_frame`] returns each message whole, header included, as a zero-copy
//! `Bytes`; the type is octet 18 and [`Message::decode`](super::Message::decode)
//! takes the frame as is.

use super::message::MessageType;
use super::notification::Notification;
use super::{HEADER_LEN, MAX_MESSAGE_LEN};
use bytes::{Bytes, BytesMut};

/// A message header error: the connection cannot continue (RFC 4271 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Marker is not all ones: 1/1.
    #[error("connection not synchronized (bad marker)")]
    NotSynchronized,
    /// Length out of range for the message type: 1/2, data = the length field.
    #[error("bad message length {0}")]
    BadLength(u16),
    /// Unknown message type: 1/3, data = the type.
    #[error("bad message type {0}")]
    BadType(u8),
}

impl FrameError {
    /// The NOTIFICATION to send.
    pub fn notification(&self) -> Notification {
        match *self {
            FrameError::NotSynchronized => Notification::connection_not_synchronized(),
            FrameError::BadLength(l) => Notification::bad_message_length(l),
            FrameError::BadType(t) => Notification::bad_message_type(t),
        }
    }
}

impl From<FrameError> for Notification {
    fn from(e: FrameError) -> Notification {
        e.notification()
    }
}

/// Checks a complete 19-octet header (at the start of `buf`): marker, length
/// (per-type bounds of RFC 4271 §6.1; OPEN and KEEPALIVE never above 4096 even
/// with extended messages, RFC 8654 §4), type.
pub(crate) fn check_header(buf: &[u8], max_len: usize) -> Result<MessageType, FrameError> {
    let Some(hdr) = buf.get(..HEADER_LEN) else {
        if buf.iter().take(16).any(|&b| b != 0xff) {
            return Err(FrameError::NotSynchronized);
        }
        return Err(FrameError::BadLength(buf.len() as u16));
    };
    if hdr[..16].iter().any(|&b| b != 0xff) {
        return Err(FrameError::NotSynchronized);
    }
    let len = u16::from_be_bytes([hdr[16], hdr[17]]);
    let l = usize::from(len);
    let max = max_len.max(MAX_MESSAGE_LEN);
    if l < HEADER_LEN || l > max {
        return Err(FrameError::BadLength(len));
    }
    let t = MessageType::from_u8(hdr[18]).ok_or(FrameError::BadType(hdr[18]))?;
    let ok = match t {
        MessageType::Open => (29..=MAX_MESSAGE_LEN).contains(&l),
        MessageType::Update => (23..=max_len).contains(&l),
        MessageType::Notification => (21..=max_len).contains(&l),
        MessageType::Keepalive => l == HEADER_LEN,
        // Exactly 23 is checked when decoding, with RFC 7313's own error.
        MessageType::RouteRefresh => (23..=max_len).contains(&l),
    };
    if ok {
        Ok(t)
    } else {
        Err(FrameError::BadLength(len))
    }
}

/// Takes the next whole message off the front of `buf`.
///
/// `Ok(None)`: not enough bytes yet (nothing consumed). `Ok(Some(frame))`: the
/// whole message, header included. The header is checked as soon as its 19
/// octets are in, and the marker as soon as any of it is, so garbage is
/// rejected early. `max_len` is the largest UPDATE/NOTIFICATION/ROUTE-REFRESH
/// accepted (4096, or 65535 once extended messages are negotiated); OPEN is
/// accepted up to 4096 whatever `max_len`.
pub fn split_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < HEADER_LEN {
        if buf.iter().take(16).any(|&b| b != 0xff) {
            return Err(FrameError::NotSynchronized);
        }
        return Ok(None);
    }
    check_header(buf, max_len)?;
    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(buf.split_to(len).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u16, t: u8) -> Vec<u8> {
        let mut b = vec![0xff; 16];
        b.extend_from_slice(&len.to_be_bytes());
        b.push(t);
        b
    }

    fn split(b: &[u8], max: usize) -> Result<Option<Bytes>, FrameError> {
        split_frame(&mut BytesMut::from(b), max)
    }

    #[test]
    fn splits_whole_messages() {
        let mut stream = hdr(19, 4);
        stream.extend(hdr(23, 5));
        stream.extend([0, 1, 0, 1]);
        stream.extend(&hdr(19, 4)[..10]);
        let mut buf = BytesMut::from(&stream[..]);
        assert_eq!(
            split_frame(&mut buf, 4096).unwrap().unwrap(),
            Bytes::from(hdr(19, 4))
        );
        assert_eq!(split_frame(&mut buf, 4096).unwrap().unwrap().len(), 23);
        assert_eq!(split_frame(&mut buf, 4096).unwrap(), None);
        assert_eq!(buf.len(), 10);
        // Header complete, body not yet.
        assert_eq!(split(&hdr(30, 2), 4096), Ok(None));
    }

    #[test]
    fn header_errors_map_to_notifications() {
        let mut b = hdr(19, 4);
        b[0] = 0;
        assert_eq!(split(&b, 4096), Err(FrameError::NotSynchronized));
        assert_eq!(split(&b[..5], 4096), Err(FrameError::NotSynchronized));
        assert_eq!(
            FrameError::NotSynchronized.notification(),
            Notification::new(1, 1, Vec::new())
        );
        assert_eq!(split(&hdr(18, 4), 4096), Err(FrameError::BadLength(18)));
        assert_eq!(split(&hdr(20, 4), 4096), Err(FrameError::BadLength(20)));
        assert_eq!(split(&hdr(28, 1), 4096), Err(FrameError::BadLength(28)));
        assert_eq!(split(&hdr(22, 2), 4096), Err(FrameError::BadLength(22)));
        assert_eq!(split(&hdr(20, 3), 4096), Err(FrameError::BadLength(20)));
        assert_eq!(split(&hdr(22, 5), 4096), Err(FrameError::BadLength(22)));
        assert_eq!(split(&hdr(4097, 2), 4096), Err(FrameError::BadLength(4097)));
        assert_eq!(
            FrameError::BadLength(4097).notification(),
            Notification::new(1, 2, vec![0x10, 0x01])
        );
        assert_eq!(split(&hdr(19, 6), 4096), Err(FrameError::BadType(6)));
        assert_eq!(
            FrameError::BadType(6).notification(),
            Notification::new(1, 3, vec![6])
        );
    }

    #[test]
    fn extended_lengths() {
        // UPDATE above 4096 only with extended messages; OPEN never.
        assert_eq!(split(&hdr(5000, 2), 65535), Ok(None));
        assert_eq!(
            split(&hdr(5000, 1), 65535),
            Err(FrameError::BadLength(5000))
        );
        // OPEN up to 4096 even if the caller's limit is lower.
        assert_eq!(split(&hdr(4000, 1), 1000), Ok(None));
        assert_eq!(split(&hdr(4000, 2), 1000), Err(FrameError::BadLength(4000)));
    }
}
