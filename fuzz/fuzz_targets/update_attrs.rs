//! UPDATE path attribute decode (RFC 4271 §4.3, RFC 7606): the input is the
//! path attribute field of an UPDATE with no withdrawals and no IPv4 NLRI.
#![no_main]

use bytes::{BufMut, BytesMut};
use kittbgpd::wire::{Families, Message, Negotiated, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, attrs)) = data.split_first() else { return };
    if attrs.len() > 65535 - HEADER_LEN - 4 {
        return;
    }
    let neg = Negotiated {
        four_octet_as: flags & 1 != 0,
        extended_message: true,
        ipv4_extended_next_hop: flags & 2 != 0,
        ipv4_unicast: true,
        ipv6_unicast: true,
        route_refresh: true,
        enhanced_route_refresh: false,
        add_path_receive: Families {
            ipv4_unicast: flags & 4 != 0,
            ipv6_unicast: flags & 8 != 0,
        },
        add_path_send: Families::NONE,
        views: Default::default(),
        view: None,
    };
    let mut m = BytesMut::with_capacity(HEADER_LEN + 4 + attrs.len());
    m.put_slice(&[0xff; 16]);
    m.put_u16((HEADER_LEN + 4 + attrs.len()) as u16);
    m.put_u8(2);
    m.put_u16(0);
    m.put_u16(attrs.len() as u16);
    m.put_slice(attrs);
    if let Ok(Message::Update(u)) = Message::decode(m.freeze(), &neg) {
        // Walk everything lazily kept, as a consumer would.
        let n = u.nlri_v4().count() + u.withdrawn_v4().count();
        let mp = u.attrs.mp_reach.iter().map(|r| r.prefixes().count()).sum::<usize>();
        std::hint::black_box((n, mp, u.treat_as_withdraw()));
    }
});
