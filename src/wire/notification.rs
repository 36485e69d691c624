//! NOTIFICATION message (RFC 4271 §4.5) and the error codes of RFC 4271 §6,
//! RFC 4486 (Cease subcodes), RFC 5492, RFC 6608, RFC 7313, RFC 8203/9003.

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// Error codes (RFC 4271 §4.5).
pub const MESSAGE_HEADER_ERROR: u8 = 1;
pub const OPEN_MESSAGE_ERROR: u8 = 2;
pub const UPDATE_MESSAGE_ERROR: u8 = 3;
pub const HOLD_TIMER_EXPIRED: u8 = 4;
pub const FSM_ERROR: u8 = 5;
pub const CEASE: u8 = 6;
/// RFC 7313 §5.
pub const ROUTE_REFRESH_MESSAGE_ERROR: u8 = 7;
/// RFC 9687 §4.
pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;

/// Message Header Error subcodes (RFC 4271 §6.1).
pub mod header {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492 §5).
pub mod open {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    // 5 (Authentication Failure) is deprecated.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
pub mod update {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    // 7 (AS Routing Loop) is deprecated.
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// FSM Error subcodes (RFC 6608 §4).
pub mod fsm {
    pub const UNSPECIFIED: u8 = 0;
    pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
    pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486 §4, RFC 8203, RFC 9003).
pub mod cease {
    pub const MAX_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    /// RFC 8538.
    pub const HARD_RESET: u8 = 9;
    /// RFC 9384.
    pub const BFD_DOWN: u8 = 10;
}

/// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
pub mod route_refresh {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// A NOTIFICATION: error code, subcode and data (RFC 4271 §4.5).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    #[serde(serialize_with = "super::serde_util::hex")]
    pub data: Bytes,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: impl Into<Bytes>) -> Notification {
        Notification {
            code,
            subcode,
            data: data.into(),
        }
    }

    pub fn connection_not_synchronized() -> Notification {
        Notification::new(
            MESSAGE_HEADER_ERROR,
            header::CONNECTION_NOT_SYNCHRONIZED,
            Bytes::new(),
        )
    }
    /// Data: the erroneous Length field (RFC 4271 §6.1).
    pub fn bad_message_length(len: u16) -> Notification {
        Notification::new(
            MESSAGE_HEADER_ERROR,
            header::BAD_MESSAGE_LENGTH,
            len.to_be_bytes().to_vec(),
        )
    }
    /// Data: the erroneous Type field (RFC 4271 §6.1).
    pub fn bad_message_type(t: u8) -> Notification {
        Notification::new(MESSAGE_HEADER_ERROR, header::BAD_MESSAGE_TYPE, vec![t])
    }
    /// OPEN error with no data.
    pub fn open_error(subcode: u8) -> Notification {
        Notification::new(OPEN_MESSAGE_ERROR, subcode, Bytes::new())
    }
    /// Data: the largest supported version, 2 octets (RFC 4271 §6.2).
    pub fn unsupported_version(max: u8) -> Notification {
        Notification::new(
            OPEN_MESSAGE_ERROR,
            open::UNSUPPORTED_VERSION_NUMBER,
            vec![0, max],
        )
    }
    pub fn update_error(subcode: u8, data: impl Into<Bytes>) -> Notification {
        Notification::new(UPDATE_MESSAGE_ERROR, subcode, data)
    }
    pub fn hold_timer_expired() -> Notification {
        Notification::new(HOLD_TIMER_EXPIRED, 0, Bytes::new())
    }
    pub fn fsm_error(subcode: u8) -> Notification {
        Notification::new(FSM_ERROR, subcode, Bytes::new())
    }
    pub fn cease(subcode: u8) -> Notification {
        Notification::new(CEASE, subcode, Bytes::new())
    }
    /// Cease with a shutdown communication (RFC 8203 / RFC 9003 §2): length
    /// octet then UTF-8, at most 255 octets (cut at a character boundary).
    pub fn cease_with_message(subcode: u8, message: &str) -> Notification {
        if message.is_empty() {
            return Notification::cease(subcode);
        }
        let mut end = message.len().min(255);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        data.push(end as u8);
        data.extend_from_slice(&message.as_bytes()[..end]);
        Notification::new(CEASE, subcode, data)
    }
    pub fn admin_shutdown(message: &str) -> Notification {
        Notification::cease_with_message(cease::ADMINISTRATIVE_SHUTDOWN, message)
    }
    pub fn admin_reset(message: &str) -> Notification {
        Notification::cease_with_message(cease::ADMINISTRATIVE_RESET, message)
    }

    /// The shutdown communication of an Administrative Shutdown/Reset Cease
    /// (RFC 9003 §2), if present and valid UTF-8.
    pub fn shutdown_communication(&self) -> Option<&str> {
        if self.code != CEASE
            || !matches!(
                self.subcode,
                cease::ADMINISTRATIVE_SHUTDOWN | cease::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        if text.is_empty() {
            return None;
        }
        std::str::from_utf8(text).ok()
    }

    /// Decodes a NOTIFICATION body (after the header). RFC 4271 §4.5: at least code and subcode.
    pub fn decode(body: Bytes) -> Option<Notification> {
        let (&code, rest) = body.split_first()?;
        let &subcode = rest.first()?;
        Some(Notification {
            code,
            subcode,
            data: body.slice(2..),
        })
    }

    /// Appends the body (code, subcode, data).
    pub fn encode_body(&self, out: &mut BytesMut) {
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }

    /// Name of the error code.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            MESSAGE_HEADER_ERROR => "Message Header Error",
            OPEN_MESSAGE_ERROR => "OPEN Message Error",
            UPDATE_MESSAGE_ERROR => "UPDATE Message Error",
            HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            FSM_ERROR => "Finite State Machine Error",
            CEASE => "Cease",
            ROUTE_REFRESH_MESSAGE_ERROR => "ROUTE-REFRESH Message Error",
            SEND_HOLD_TIMER_EXPIRED => "Send Hold Timer Expired",
            _ => "Unknown Error",
        }
    }

    /// Name of the subcode, if it has one.
    pub fn subcode_name(&self) -> Option<&'static str> {
        Some(match (self.code, self.subcode) {
            (MESSAGE_HEADER_ERROR, 1) => "Connection Not Synchronized",
            (MESSAGE_HEADER_ERROR, 2) => "Bad Message Length",
            (MESSAGE_HEADER_ERROR, 3) => "Bad Message Type",
            (OPEN_MESSAGE_ERROR, 1) => "Unsupported Version Number",
            (OPEN_MESSAGE_ERROR, 2) => "Bad Peer AS",
            (OPEN_MESSAGE_ERROR, 3) => "Bad BGP Identifier",
            (OPEN_MESSAGE_ERROR, 4) => "Unsupported Optional Parameter",
            (OPEN_MESSAGE_ERROR, 5) => "Authentication Failure",
            (OPEN_MESSAGE_ERROR, 6) => "Unacceptable Hold Time",
            (OPEN_MESSAGE_ERROR, 7) => "Unsupported Capability",
            (UPDATE_MESSAGE_ERROR, 1) => "Malformed Attribute List",
            (UPDATE_MESSAGE_ERROR, 2) => "Unrecognized Well-known Attribute",
            (UPDATE_MESSAGE_ERROR, 3) => "Missing Well-known Attribute",
            (UPDATE_MESSAGE_ERROR, 4) => "Attribute Flags Error",
            (UPDATE_MESSAGE_ERROR, 5) => "Attribute Length Error",
            (UPDATE_MESSAGE_ERROR, 6) => "Invalid ORIGIN Attribute",
            (UPDATE_MESSAGE_ERROR, 7) => "AS Routing Loop",
            (UPDATE_MESSAGE_ERROR, 8) => "Invalid NEXT_HOP Attribute",
            (UPDATE_MESSAGE_ERROR, 9) => "Optional Attribute Error",
            (UPDATE_MESSAGE_ERROR, 10) => "Invalid Network Field",
            (UPDATE_MESSAGE_ERROR, 11) => "Malformed AS_PATH",
            (FSM_ERROR, 1) => "Receive Unexpected Message in OpenSent State",
            (FSM_ERROR, 2) => "Receive Unexpected Message in OpenConfirm State",
            (FSM_ERROR, 3) => "Receive Unexpected Message in Established State",
            (CEASE, 1) => "Maximum Number of Prefixes Reached",
            (CEASE, 2) => "Administrative Shutdown",
            (CEASE, 3) => "Peer De-configured",
            (CEASE, 4) => "Administrative Reset",
            (CEASE, 5) => "Connection Rejected",
            (CEASE, 6) => "Other Configuration Change",
            (CEASE, 7) => "Connection Collision Resolution",
            (CEASE, 8) => "Out of Resources",
            (CEASE, 9) => "Hard Reset",
            (CEASE, 10) => "BFD Down",
            (ROUTE_REFRESH_MESSAGE_ERROR, 1) => "Invalid Message Length",
            _ => return None,
        })
    }
}

/// "Cease / Administrative Shutdown: \"maintenance\"", or "Code 9 / subcode 1".
impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code_name())?;
        if self.code_name() == "Unknown Error" {
            write!(f, " {}", self.code)?;
        }
        match self.subcode_name() {
            Some(s) => write!(f, " / {s}")?,
            None if self.subcode != 0 => write!(f, " / subcode {}", self.subcode)?,
            None => {}
        }
        if let Some(msg) = self.shutdown_communication() {
            write!(f, ": {msg:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_shutdown_communication() {
        let n = Notification::admin_shutdown("maintenance");
        assert_eq!(n.data[0], 11);
        assert_eq!(n.shutdown_communication(), Some("maintenance"));
        assert_eq!(
            n.to_string(),
            "Cease / Administrative Shutdown: \"maintenance\""
        );
        assert_eq!(
            Notification::cease(cease::PEER_DECONFIGURED).to_string(),
            "Cease / Peer De-configured"
        );
        assert_eq!(
            Notification::hold_timer_expired().to_string(),
            "Hold Timer Expired"
        );
        assert_eq!(
            Notification::new(3, 1, Bytes::new()).to_string(),
            "UPDATE Message Error / Malformed Attribute List"
        );
        assert_eq!(
            Notification::new(42, 3, Bytes::new()).to_string(),
            "Unknown Error 42 / subcode 3"
        );
        // A length octet longer than the data: no communication, no panic.
        assert_eq!(
            Notification::new(6, 2, vec![9, b'a']).shutdown_communication(),
            None
        );
        let long = "é".repeat(200);
        let n = Notification::admin_reset(&long);
        assert_eq!(n.data[0], 254);
        assert_eq!(
            n.shutdown_communication().map(|s| s.chars().count()),
            Some(127)
        );
    }

    #[test]
    fn decode_encode() {
        assert_eq!(Notification::decode(Bytes::from_static(&[6])), None);
        let n = Notification::decode(Bytes::from_static(&[1, 2, 0, 5])).unwrap();
        assert_eq!(n, Notification::bad_message_length(5));
        let mut out = BytesMut::new();
        n.encode_body(&mut out);
        assert_eq!(&out[..], &[1, 2, 0, 5]);
    }
}
