//! BGP-4 message codec (RFC 4271 §4) with the extensions the fabric uses.
//!
//! Sans-IO: bytes in, values out, and back. No tokio, no clock.
//! Decoding validates a message once; UPDATE prefix lists stay as validated
//! byte ranges (`Bytes`) and are iterated lazily without copying.
//!
//! Layout: [`frame`] splits a byte stream into messages, [`open`] and
//! [`capability`] handle OPEN, [`update`] and [`attr`] handle UPDATE with the
//! RFC 7606 error actions, [`nlri`] packs and unpacks prefixes,
//! [`notification`] has the error codes of RFC 4271 §4.5 / §6.

pub mod attr;
pub mod capability;
pub mod frame;
pub mod message;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod update;
pub mod view_nlri;

mod serde_util;
pub use serde_util::hex_string;

pub use attr::{
    Aggregator, AsPath, AsSegment, AsSegmentKind, MpNextHop, MpReach, MpUnreach, Origin,
    PathAttributes, RawAttribute, ThinVec,
};
pub use capability::{AddPathMode, Capability};
pub use frame::{split_frame, FrameError};
pub use message::{DecodeError, EncodeError, Message, MessageType, RouteRefresh};
pub use nlri::{Ipv4Prefixes, Ipv6Prefixes};
pub use notification::Notification;
pub use open::Open;
pub use update::{AttrErrorAction, AttrIssue, Pfx, Update, UpdateBuilder};

/// Length of the fixed BGP header: marker (16), length (2), type (1).
pub const HEADER_LEN: usize = 19;
/// Largest message without RFC 8654 extended messages.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message with RFC 8654 extended messages negotiated.
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
/// AS_TRANS (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;

/// Address family identifier (IANA). Only IPv4 and IPv6 are routed; others are kept as numbers.
pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
/// Subsequent address family identifier: unicast.
pub const SAFI_UNICAST: u8 = 1;

/// An (AFI, SAFI) pair as carried in capabilities, MP_REACH/MP_UNREACH and ROUTE-REFRESH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct AfiSafi {
    pub afi: u16,
    pub safi: u8,
}

impl AfiSafi {
    pub const IPV4_UNICAST: AfiSafi = AfiSafi {
        afi: AFI_IPV4,
        safi: SAFI_UNICAST,
    };
    pub const IPV6_UNICAST: AfiSafi = AfiSafi {
        afi: AFI_IPV6,
        safi: SAFI_UNICAST,
    };
}

impl std::fmt::Display for AfiSafi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.afi, self.safi) {
            (AFI_IPV4, SAFI_UNICAST) => f.write_str("ipv4-unicast"),
            (AFI_IPV6, SAFI_UNICAST) => f.write_str("ipv6-unicast"),
            (afi, safi) => write!(f, "afi{afi}/safi{safi}"),
        }
    }
}

/// What both ends agreed on in OPEN; it decides how UPDATEs are parsed and built.
/// Built with [`Negotiated::from_opens`] once the session is established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Negotiated {
    /// RFC 6793: AS numbers in AS_PATH and AGGREGATOR are 4 octets.
    pub four_octet_as: bool,
    /// RFC 8654: messages up to 65535 octets (UPDATE, and ROUTE-REFRESH/NOTIFICATION as allowed).
    pub extended_message: bool,
    /// RFC 8950: IPv4 unicast NLRI may carry an IPv6 next hop (in MP_REACH_NLRI).
    pub ipv4_extended_next_hop: bool,
    /// RFC 4760: which families are exchanged.
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
    /// RFC 2918 / RFC 7313.
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// RFC 7911 §5: families whose received NLRI carry a Path Identifier
    /// (we announced receive, the peer send).
    pub add_path_receive: Families,
    /// Families whose NLRI we send with a Path Identifier (we announced
    /// send, the peer receive).
    pub add_path_send: Families,
    /// Routing views (ARCHITECTURE.md): the view families both OPENs carry,
    /// `ipv4_unicast` standing for (1, 241) and `ipv6_unicast` for (2, 241).
    pub views: Families,
    /// `Some(id)`: what is built with this value is view `id`'s table: IPv4
    /// and IPv6 routes go out in the view families (SAFI 241, the id before
    /// each prefix, an IPv6 next hop), End-of-RIB too. `None`: the default view.
    pub view: Option<u8>,
}

/// A flag per family the daemon routes (IPv4 and IPv6 unicast).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct Families {
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
}

impl Families {
    pub const NONE: Families = Families {
        ipv4_unicast: false,
        ipv6_unicast: false,
    };

    /// The flag of `f` (false for families other than IPv4/IPv6 unicast).
    pub fn get(&self, f: AfiSafi) -> bool {
        match f {
            AfiSafi::IPV4_UNICAST => self.ipv4_unicast,
            AfiSafi::IPV6_UNICAST => self.ipv6_unicast,
            _ => false,
        }
    }

    /// The flag of the unicast family of `afi` (1: IPv4, 2: IPv6).
    pub fn afi(&self, afi: u16) -> bool {
        self.get(AfiSafi {
            afi,
            safi: SAFI_UNICAST,
        })
    }

    pub fn any(&self) -> bool {
        self.ipv4_unicast || self.ipv6_unicast
    }
}

impl Negotiated {
    /// What a fabric session negotiates between kittbgpd and BIRD 2 with the
    /// fabric's config (tests/golden/bird_open.bin): every option but extended
    /// messages, which BIRD does not offer by default.
    pub const FABRIC: Negotiated = Negotiated {
        four_octet_as: true,
        extended_message: false,
        ipv4_extended_next_hop: true,
        ipv4_unicast: true,
        ipv6_unicast: true,
        route_refresh: true,
        enhanced_route_refresh: true,
        add_path_receive: Families::NONE,
        add_path_send: Families::NONE,
        views: Families::NONE,
        view: None,
    };

    /// Capabilities in force on a session: those both OPENs carry (RFC 5492 §3).
    /// A speaker that sends no Multiprotocol capability at all gets IPv4 unicast (RFC 4760 §8).
    pub fn from_opens(local: &Open, remote: &Open) -> Negotiated {
        open::negotiate(local, remote)
    }

    /// Largest message we may send and must accept.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
}
