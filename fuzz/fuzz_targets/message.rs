//! Whole-message decode: a byte stream cut into frames and decoded under every
//! negotiated combination. Must never panic; whatever decodes must re-encode.
#![no_main]

use bytes::BytesMut;
use kittbgpd::wire::{split_frame, Message, Negotiated, MAX_EXTENDED_MESSAGE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let neg = Negotiated {
        four_octet_as: flags & 1 != 0,
        extended_message: flags & 2 != 0,
        ipv4_extended_next_hop: flags & 4 != 0,
        ipv4_unicast: true,
        ipv6_unicast: true,
        route_refresh: true,
        enhanced_route_refresh: flags & 8 != 0,
    };
    let mut buf = BytesMut::from(rest);
    while let Ok(Some(frame)) = split_frame(&mut buf, MAX_EXTENDED_MESSAGE_LEN) {
        if let Ok(msg) = Message::decode(frame, &neg) {
            // Re-encoding a decoded message must not panic either.
            let _ = msg.to_bytes(&Negotiated { extended_message: true, ..neg });
        }
    }
});
