//! BFD Control packet (RFC 5880 §4.1): the 24-byte mandatory section, and the
//! stateless reception checks of §6.8.6. No authentication is supported: a
//! packet with the A bit is discarded (and counted by the caller).

use serde::Serialize;

/// Version of the protocol (RFC 5880 §4.1).
pub const VERSION: u8 = 1;
/// Length of a Control packet without an authentication section.
pub const LEN: usize = 24;

/// Session states (§4.1, "Sta").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "admin-down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Diagnostic code (§4.1, "Diag"): why the local system last left Up.
/// Values 9-31 are reserved and kept as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diag(pub u8);

impl Diag {
    pub const NONE: Diag = Diag(0);
    pub const DETECTION_TIME_EXPIRED: Diag = Diag(1);
    pub const ECHO_FAILED: Diag = Diag(2);
    pub const NEIGHBOR_SIGNALED_DOWN: Diag = Diag(3);
    pub const FORWARDING_PLANE_RESET: Diag = Diag(4);
    pub const PATH_DOWN: Diag = Diag(5);
    pub const CONCATENATED_PATH_DOWN: Diag = Diag(6);
    pub const ADMIN_DOWN: Diag = Diag(7);
    pub const REVERSE_CONCATENATED_PATH_DOWN: Diag = Diag(8);

    pub fn as_str(self) -> &'static str {
        match self.0 {
            0 => "no diagnostic",
            1 => "control detection time expired",
            2 => "echo function failed",
            3 => "neighbor signaled session down",
            4 => "forwarding plane reset",
            5 => "path down",
            6 => "concatenated path down",
            7 => "administratively down",
            8 => "reverse concatenated path down",
            _ => "reserved diagnostic",
        }
    }
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Control packet; intervals in microseconds as on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub diag: Diag,
    pub state: State,
    /// P: a Poll Sequence is in progress (§6.5).
    pub poll: bool,
    /// F: the answer to a Poll.
    pub final_: bool,
    /// C: control plane independent (we say false: we run in the daemon).
    pub cpi: bool,
    /// D: Demand mode (never set by us, §6.6 not supported).
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

/// Why a received packet was discarded (§6.8.6), one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Discard {
    /// Shorter than the length field or than 24 bytes.
    Truncated,
    /// Version other than 1.
    Version,
    /// Length field below the minimum (24, or 26 with A).
    Length,
    /// Detect Mult of zero.
    DetectMult,
    /// Multipoint (M) bit set.
    Multipoint,
    /// My Discriminator of zero.
    MyDiscr,
    /// Your Discriminator of zero in a state other than Down or AdminDown.
    YourDiscrZero,
    /// Authentication present: not supported.
    Auth,
    /// Your Discriminator not ours (session-level check).
    NoSession,
    /// Hop limit not 255 (RFC 5881 §5).
    HopLimit,
    /// Received while the local session is AdminDown.
    AdminDown,
}

impl Discard {
    pub fn as_str(self) -> &'static str {
        match self {
            Discard::Truncated => "truncated",
            Discard::Version => "bad version",
            Discard::Length => "bad length",
            Discard::DetectMult => "detect mult 0",
            Discard::Multipoint => "multipoint bit",
            Discard::MyDiscr => "my discriminator 0",
            Discard::YourDiscrZero => "your discriminator 0 while not down",
            Discard::Auth => "authentication not supported",
            Discard::NoSession => "your discriminator unknown",
            Discard::HopLimit => "hop limit not 255",
            Discard::AdminDown => "session admin-down",
        }
    }
}

impl Packet {
    /// Decode and apply the checks of §6.8.6 that need no session state.
    pub fn decode(b: &[u8]) -> Result<Packet, Discard> {
        if b.len() < LEN {
            return Err(Discard::Truncated);
        }
        if b[0] >> 5 != VERSION {
            return Err(Discard::Version);
        }
        let flags = b[1];
        let auth = flags & 0x04 != 0;
        let length = usize::from(b[3]);
        if length < if auth { LEN + 2 } else { LEN } {
            return Err(Discard::Length);
        }
        if length > b.len() {
            return Err(Discard::Truncated);
        }
        let detect_mult = b[2];
        if detect_mult == 0 {
            return Err(Discard::DetectMult);
        }
        if flags & 0x01 != 0 {
            return Err(Discard::Multipoint);
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let state = State::from_bits(flags >> 6);
        let (my_discr, your_discr) = (word(4), word(8));
        if my_discr == 0 {
            return Err(Discard::MyDiscr);
        }
        if your_discr == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(Discard::YourDiscrZero);
        }
        if auth {
            return Err(Discard::Auth);
        }
        Ok(Packet {
            diag: Diag(b[0] & 0x1f),
            state,
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            cpi: flags & 0x08 != 0,
            demand: flags & 0x02 != 0,
            detect_mult,
            my_discr,
            your_discr,
            desired_min_tx_us: word(12),
            required_min_rx_us: word(16),
            required_min_echo_rx_us: word(20),
        })
    }

    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = (VERSION << 5) | (self.diag.0 & 0x1f);
        b[1] = ((self.state as u8) << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.cpi) << 3)
            | (u8::from(self.demand) << 1);
        b[2] = self.detect_mult;
        b[3] = LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn up() -> Packet {
        Packet {
            diag: Diag::NONE,
            state: State::Up,
            poll: true,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_discr: 0x0102_0304,
            your_discr: 7,
            desired_min_tx_us: 100_000,
            required_min_rx_us: 100_000,
            required_min_echo_rx_us: 0,
        }
    }

    #[test]
    fn encodes_the_wire_layout_of_section_4_1() {
        let b = up().encode();
        assert_eq!(
            b[..12],
            [0x20, 0xe0, 3, 24, 1, 2, 3, 4, 0, 0, 0, 7],
            "version 1, diag 0, Up with P, mult 3, length 24, discriminators"
        );
        assert_eq!(b[12..16], 100_000u32.to_be_bytes());
        assert_eq!(Packet::decode(&b), Ok(up()));
    }

    #[test]
    fn each_rule_of_6_8_6_discards() {
        let good = up().encode();
        let with = |f: &dyn Fn(&mut [u8; LEN])| {
            let mut b = good;
            f(&mut b);
            Packet::decode(&b)
        };
        assert_eq!(with(&|b| b[0] = 0x40), Err(Discard::Version));
        assert_eq!(with(&|b| b[3] = 23), Err(Discard::Length));
        assert_eq!(with(&|b| b[3] = 25), Err(Discard::Truncated));
        assert_eq!(with(&|b| b[2] = 0), Err(Discard::DetectMult));
        assert_eq!(with(&|b| b[1] |= 1), Err(Discard::Multipoint));
        assert_eq!(with(&|b| b[4..8].fill(0)), Err(Discard::MyDiscr));
        assert_eq!(with(&|b| b[8..12].fill(0)), Err(Discard::YourDiscrZero));
        assert_eq!(
            with(&|b| {
                b[8..12].fill(0);
                b[1] = 0x40; // Down: your discr 0 is fine
            })
            .map(|p| p.state),
            Ok(State::Down)
        );
        assert_eq!(with(&|b| b[1] |= 0x04), Err(Discard::Length), "A needs 26+");
        let mut long = [0u8; 28];
        long[..LEN].copy_from_slice(&good);
        long[1] |= 0x04;
        long[3] = 28;
        assert_eq!(Packet::decode(&long), Err(Discard::Auth));
        assert_eq!(Packet::decode(&good[..23]), Err(Discard::Truncated));
        let mut trailing = [0u8; 30];
        trailing[..LEN].copy_from_slice(&good);
        assert_eq!(
            Packet::decode(&trailing),
            Ok(up()),
            "bytes past the length ignored"
        );
    }

    proptest! {
        #[test]
        fn decoder_never_panics_and_what_it_accepts_round_trips(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::decode(&b) {
                prop_assert_eq!(Packet::decode(&p.encode()), Ok(p));
            }
        }
    }
}
