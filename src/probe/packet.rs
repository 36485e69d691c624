//! The stream packet: one fixed 64-byte UDP payload, big-endian, that carries
//! the sender's own sequence number and transmit time and the echo of the
//! latest packet it received from the other end (TWAMP-light, RFC 5357
//! Appendix I, and BFD echo, RFC 5880 §6.4, in one packet per interval).
//!
//! ```text
//!  0  magic "KBst"                    4  version 1 | flags | length (= 64, u16)
//!  8  sender id (random per stream)  12  your id (the other end's sender id, 0 = none yet)
//! 16  seq (from 1)                   20  rx count: your packets received (distinct)
//! 24  tx time (ns, sender's clock, opaque to the receiver)
//! 32  echo seq (highest of yours received, 0 = none)
//! 36  echo bitmap: bit i set = your seq (echo seq - 1 - i) received too
//! 40  echo tx time: the tx time of echo seq, copied
//! 48  echo held (ns): between the kernel's receive of echo seq and this send
//! 56  interval (µs) the sender sends at (0: it only answers)
//! 60  rx lost: your packets missing below echo seq (gaps, late arrivals taken back)
//! ```
//!
//! Decoding is strict: magic, version, length field = datagram length = 64,
//! a non-zero seq; echo fields are used only when `your id` is the receiver's.
//! Flags: [`FLAG_ANSWER`], [`FLAG_ECHO_NOW`]; others are ignored (reserved, sent as 0).

/// First four bytes of every packet.
pub const MAGIC: [u8; 4] = *b"KBst";
pub const VERSION: u8 = 1;
/// Total length of a version 1 packet.
pub const LEN: usize = 64;
/// Flag: sent in answer to a packet (by an end that does not stream on its own
/// timer); such a packet is never answered, so two answering ends never ping-pong.
pub const FLAG_ANSWER: u8 = 0x01;
/// Flag: an echo request, sent outside the sender's interval while it
/// suspects a latency change: please answer at once (a packet with
/// [`FLAG_ANSWER`], echoing this one), within a rate limit. An end that does not
/// know the flag ignores it (flags it does not know change nothing): it then
/// echoes the packet in its next one, as any other.
pub const FLAG_ECHO_NOW: u8 = 0x02;

/// One decoded packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    pub flags: u8,
    pub sender_id: u32,
    pub your_id: u32,
    pub seq: u32,
    pub rx_count: u32,
    pub tx_time: u64,
    pub echo_seq: u32,
    pub echo_bitmap: u32,
    pub echo_tx_time: u64,
    pub echo_held: u64,
    pub interval_us: u32,
    pub rx_lost: u32,
}

/// Why a datagram is not a stream packet (counted, never answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Length,
    Magic,
    Version,
    /// The length field differs from the datagram's length.
    LengthField,
    /// Sequence number 0 (numbers start at 1; 0 means "none" in the echo).
    ZeroSeq,
}

impl Packet {
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[5] = self.flags;
        b[6..8].copy_from_slice(&(LEN as u16).to_be_bytes());
        b[8..12].copy_from_slice(&self.sender_id.to_be_bytes());
        b[12..16].copy_from_slice(&self.your_id.to_be_bytes());
        b[16..20].copy_from_slice(&self.seq.to_be_bytes());
        b[20..24].copy_from_slice(&self.rx_count.to_be_bytes());
        b[24..32].copy_from_slice(&self.tx_time.to_be_bytes());
        b[32..36].copy_from_slice(&self.echo_seq.to_be_bytes());
        b[36..40].copy_from_slice(&self.echo_bitmap.to_be_bytes());
        b[40..48].copy_from_slice(&self.echo_tx_time.to_be_bytes());
        b[48..56].copy_from_slice(&self.echo_held.to_be_bytes());
        b[56..60].copy_from_slice(&self.interval_us.to_be_bytes());
        b[60..64].copy_from_slice(&self.rx_lost.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Packet, DecodeError> {
        if b.len() < 8 {
            return Err(DecodeError::Length);
        }
        if b[0..4] != MAGIC {
            return Err(DecodeError::Magic);
        }
        if b[4] != VERSION {
            return Err(DecodeError::Version);
        }
        if usize::from(u16::from_be_bytes([b[6], b[7]])) != b.len() {
            return Err(DecodeError::LengthField);
        }
        if b.len() != LEN {
            return Err(DecodeError::Length);
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
        let p = Packet {
            flags: b[5],
            sender_id: u32_at(8),
            your_id: u32_at(12),
            seq: u32_at(16),
            rx_count: u32_at(20),
            tx_time: u64_at(24),
            echo_seq: u32_at(32),
            echo_bitmap: u32_at(36),
            echo_tx_time: u64_at(40),
            echo_held: u64_at(48),
            interval_us: u32_at(56),
            rx_lost: u32_at(60),
        };
        if p.seq == 0 {
            return Err(DecodeError::ZeroSeq);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_bytes() {
        let p = Packet {
            flags: FLAG_ANSWER,
            sender_id: 0x0102_0304,
            your_id: 0x0506_0708,
            seq: 9,
            rx_count: 10,
            tx_time: 0x1112_1314_1516_1718,
            echo_seq: 11,
            echo_bitmap: 0x8000_0001,
            echo_tx_time: 12,
            echo_held: 13,
            interval_us: 100_000,
            rx_lost: 14,
        };
        let b = p.encode();
        assert_eq!(&b[..8], b"KBst\x01\x01\x00\x40");
        assert_eq!(&b[8..20], &[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9]);
        assert_eq!(
            &b[24..32],
            &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
        assert_eq!(&b[56..64], &[0, 1, 0x86, 0xa0, 0, 0, 0, 14]);
        assert_eq!(Packet::decode(&b), Ok(p));
    }

    #[test]
    fn strict() {
        let good = Packet {
            seq: 1,
            ..Packet::default()
        }
        .encode();
        let mut b = good;
        b[0] = b'k';
        assert_eq!(Packet::decode(&b), Err(DecodeError::Magic));
        let mut b = good;
        b[4] = 2;
        assert_eq!(Packet::decode(&b), Err(DecodeError::Version));
        let mut b = good;
        b[7] = 65;
        assert_eq!(Packet::decode(&b), Err(DecodeError::LengthField));
        assert_eq!(Packet::decode(&good[..63]), Err(DecodeError::LengthField));
        assert_eq!(Packet::decode(&good[..7]), Err(DecodeError::Length));
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(Packet::decode(&long), Err(DecodeError::LengthField));
        let zero = Packet::default().encode();
        assert_eq!(Packet::decode(&zero), Err(DecodeError::ZeroSeq));
    }

    proptest! {
        /// Any bytes: an error or a packet, never a panic; a packet re-encodes to the same bytes.
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(p) = Packet::decode(&b) {
                prop_assert_eq!(&p.encode()[..], &b[..]);
            }
        }

        /// Valid headers with random bodies: decoded, then encoded back byte for byte.
        #[test]
        fn round_trip(mut body in proptest::array::uniform32(any::<u8>()), flags in any::<u8>(), tail in proptest::array::uniform24(any::<u8>())) {
            let mut b = [0u8; LEN];
            b[0..4].copy_from_slice(&MAGIC);
            b[4] = VERSION;
            b[5] = flags;
            b[6..8].copy_from_slice(&64u16.to_be_bytes());
            body[8] |= 1; // seq (bytes 16..20) non-zero
            b[8..40].copy_from_slice(&body);
            b[40..64].copy_from_slice(&tail);
            let p = Packet::decode(&b).unwrap();
            prop_assert_eq!(p.encode(), b);
        }
    }
}
