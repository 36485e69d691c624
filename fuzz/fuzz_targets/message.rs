//! Whole-message decode: a byte stream cut into frames and decoded under every
//! negotiated combination. Must never panic, and what decodes round-trips:
//!
//! - `decode(encode(m)) == m` for OPEN, NOTIFICATION, KEEPALIVE and
//!   ROUTE-REFRESH, and for UPDATE except `issues`: the first encoding is a
//!   normal form (attributes in type order, minimal length octets, attributes
//!   dropped by RFC 7606 attribute-discard gone), so the issues that came from
//!   how the input was written may disappear; none is added, except that a
//!   treat-as-withdraw UPDATE stays one under another reason (a malformed
//!   ORIGIN, dropped, comes back as a missing ORIGIN).
//! - The normal form is a fixed point: `encode(decode(encode(m))) == encode(m)`.
//! - Encoding may only fail with a length error (an OPEN grown past 4096 octets
//!   by normalisation cannot happen: it is re-encoded as received).
#![no_main]

use bytes::BytesMut;
use kittbgpd::wire::{
    split_frame, AttrErrorAction, EncodeError, Message, Families, Negotiated, MAX_EXTENDED_MESSAGE_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let neg = Negotiated {
        four_octet_as: flags & 1 != 0,
        extended_message: flags & 2 != 0,
        ipv4_extended_next_hop: flags & 4 != 0,
        ipv4_unicast: true,
        ipv6_unicast: true,
        route_refresh: true,
        enhanced_route_refresh: flags & 8 != 0,
        // ADD-PATH (RFC 7911) the same both ways, so decoded messages re-encode.
        add_path_receive: Families {
            ipv4_unicast: flags & 16 != 0,
            ipv6_unicast: flags & 32 != 0,
        },
        add_path_send: Families {
            ipv4_unicast: flags & 16 != 0,
            ipv6_unicast: flags & 32 != 0,
        },
        // Routing views (SAFI 241): decoded only where negotiated.
        views: Families {
            ipv4_unicast: flags & 64 != 0,
            ipv6_unicast: flags & 64 != 0,
        },
        view: None,
    };
    // Re-encoded messages may be longer than the input (4-octet AS_PATH of a
    // 2-octet session is not longer, but extended length octets are), so
    // encode and decode with extended messages on.
    let ext = Negotiated {
        extended_message: true,
        ..neg
    };
    let mut buf = BytesMut::from(rest);
    while let Ok(Some(frame)) = split_frame(&mut buf, MAX_EXTENDED_MESSAGE_LEN) {
        let Ok(msg) = Message::decode(frame, &neg) else {
            continue;
        };
        let bytes = match msg.to_bytes(&ext) {
            Ok(b) => b,
            Err(EncodeError::TooLong { .. } | EncodeError::ValueTooLong(_)) => continue,
            Err(e) => panic!("decoded message does not re-encode: {e}: {msg:?}"),
        };
        let again = Message::decode(bytes.clone(), &ext)
            .unwrap_or_else(|e| panic!("re-encoded message does not decode: {e}: {msg:?}"));
        match (&msg, &again) {
            (Message::Update(a), Message::Update(b)) => {
                assert_eq!(a.withdrawn, b.withdrawn, "withdrawn routes");
                assert_eq!(a.nlri, b.nlri, "NLRI");
                assert_eq!(a.attrs, b.attrs, "path attributes");
                // A treat-as-withdraw may be reported under another reason
                // (a malformed ORIGIN dropped becomes a missing ORIGIN).
                for i in &b.issues {
                    let same = a.issues.contains(i)
                        || (i.action == AttrErrorAction::TreatAsWithdraw && a.treat_as_withdraw());
                    assert!(same, "issue {i:?} appeared on re-encode");
                }
            }
            _ => assert_eq!(msg, again, "round trip"),
        }
        let fixed = again.to_bytes(&ext).expect("normal form re-encodes");
        assert_eq!(bytes, fixed, "normal form is a fixed point");
    }
});
