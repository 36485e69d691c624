//! [`Stream`]: one end of the probe stream of one link, sans-IO. Times are
//! nanoseconds of one clock of this host (the runtime uses the kernel's
//! CLOCK_REALTIME receive timestamps and reads the same clock just before each
//! send); the other end's times are only copied back, never compared with ours.
//!
//! Each end sends at its own pace; what a packet echoes is the highest sequence
//! number received from the other end, how long it was held, and a bitmap of
//! the 32 below it. So drift between the two ends' send times changes nothing:
//! - an echo of a sequence number already answered (the other end sent twice
//!   between two of ours) is no second sample;
//! - a sequence number not echoed (two of ours arrived between two of its
//!   sends) is acknowledged by the bitmap: delivered, not lost, just no sample.
//!
//! Loss per direction: ours -> theirs from their report (`rx count`, `rx lost`:
//! gaps below the highest they received), theirs -> ours from our own gaps.

use super::packet::{Packet, FLAG_ANSWER, FLAG_ECHO_NOW};
use serde::Serialize;
use std::time::Duration;

/// Our sent packets remembered for matching echoes (their seq modulo this).
pub const RING: usize = 64;
/// Bits of the echo bitmap: how far below the highest a late packet still counts.
const WINDOW: u32 = 32;
/// Echo requests ([`FLAG_ECHO_NOW`]) answered at once: at most this many in a
/// row, and this many per second (a token bucket); beyond, they wait for our
/// next packet like any other.
pub const ANSWER_NOW_PER_S: u32 = 10;

/// One of our packets acknowledged by the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub seq: u32,
    /// Round-trip time (kernel receive - our send - time held there): for the
    /// echoed packet only; `None` for one acknowledged by the bitmap.
    pub rtt: Option<Duration>,
}

/// What a received packet was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// New (possibly late): the neighbor is alive; these packets of ours are answered now.
    Fresh {
        answers: Vec<Answer>,
    },
    /// Seen already (a duplicate), or too old to tell: ignored.
    Duplicate,
    TooOld,
}

/// Counters for `show links`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    pub sent: u64,
    /// Distinct packets received from the other end (current stream of theirs).
    pub received: u64,
    pub duplicates: u64,
    pub too_old: u64,
    /// Echoes whose tx time is not what we sent with that seq (ignored).
    pub bad_echoes: u64,
    pub rtt_samples: u64,
    /// Theirs -> ours: missing below the highest received.
    pub rx_lost: u64,
    /// Ours -> theirs, as they report it (their `rx count` and `rx lost`).
    pub tx_delivered: u64,
    pub tx_lost: u64,
    /// Streams of the other end seen (a new sender id = it restarted).
    pub peer_streams: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Sent {
    seq: u32,
    tx: u64,
    answered: bool,
}

/// What we know of the other end's stream (one sender id).
#[derive(Clone, Copy, Debug)]
struct Peer {
    id: u32,
    first: u32,
    highest: u32,
    /// Bit i: seq `highest - 1 - i` received.
    bitmap: u32,
    received: u64,
    /// Kernel receive time and the tx time of `highest`.
    highest_rx: u64,
    highest_tx: u64,
}

impl Peer {
    fn lost(&self) -> u64 {
        (u64::from(self.highest - self.first) + 1).saturating_sub(self.received)
    }
}

#[derive(Debug)]
pub struct Stream {
    id: u32,
    next_seq: u32,
    /// Our interval in µs (0: we only answer), told to the other end.
    interval_us: u32,
    sent: [Sent; RING],
    peer: Option<Peer>,
    stats: StreamStats,
    /// Tokens for answering echo requests at once, and when they were counted (our clock, ns).
    answer_tokens: f64,
    answer_tokens_at: Option<u64>,
}

impl Stream {
    /// `id`: random per stream (a restart must pick another), not 0.
    pub fn new(id: u32, interval: Duration) -> Stream {
        Stream {
            id: id.max(1),
            next_seq: 1,
            interval_us: u32::try_from(interval.as_micros()).unwrap_or(u32::MAX),
            sent: [Sent::default(); RING],
            peer: None,
            stats: StreamStats::default(),
            answer_tokens: f64::from(ANSWER_NOW_PER_S),
            answer_tokens_at: None,
        }
    }

    pub fn set_interval(&mut self, interval: Duration) {
        self.interval_us = u32::try_from(interval.as_micros()).unwrap_or(u32::MAX);
    }

    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Whether a packet of the other end's was ever received.
    pub fn heard_any(&self) -> bool {
        self.peer.is_some()
    }

    /// The packet to send at `tx` (our clock, as late before the send as
    /// possible): its seq is what the other end will echo. `answer`: sent in
    /// answer to a packet, not on our own timer (see [`FLAG_ANSWER`]).
    pub fn send(&mut self, tx: u64, answer: bool) -> Packet {
        let seq = self.next_seq;
        // 2^32 packets are 13 years at 10/s; then wrap over 0 (a new stream would be cleaner).
        self.next_seq = self.next_seq.checked_add(1).unwrap_or(1);
        self.sent[seq as usize % RING] = Sent {
            seq,
            tx,
            answered: false,
        };
        self.stats.sent += 1;
        let mut p = Packet {
            flags: if answer { FLAG_ANSWER } else { 0 },
            sender_id: self.id,
            seq,
            tx_time: tx,
            interval_us: if answer { 0 } else { self.interval_us },
            ..Packet::default()
        };
        if let Some(peer) = &self.peer {
            p.your_id = peer.id;
            p.rx_count = peer.received.min(u64::from(u32::MAX)) as u32;
            p.rx_lost = peer.lost().min(u64::from(u32::MAX)) as u32;
            p.echo_seq = peer.highest;
            p.echo_bitmap = peer.bitmap;
            p.echo_tx_time = peer.highest_tx;
            p.echo_held = tx.saturating_sub(peer.highest_rx);
        }
        p
    }

    /// An echo request ([`FLAG_ECHO_NOW`]): the packet to send at `tx`, outside
    /// our interval; the other end answers it at once if it knows the flag.
    pub fn send_echo_request(&mut self, tx: u64) -> Packet {
        let mut p = self.send(tx, false);
        p.flags |= FLAG_ECHO_NOW;
        p
    }

    /// Whether `p` (just received at `rx` as [`Received::Fresh`]) is an echo
    /// request to answer at once (with `send(tx, true)`): it asks for it, is
    /// not itself an answer (no ping-pong), and the rate limit allows it.
    pub fn answer_now(&mut self, p: &Packet, rx: u64) -> bool {
        if p.flags & FLAG_ECHO_NOW == 0 || p.flags & FLAG_ANSWER != 0 {
            return false;
        }
        let rate = f64::from(ANSWER_NOW_PER_S);
        let gained = self
            .answer_tokens_at
            .map_or(0.0, |t| rx.saturating_sub(t) as f64 / 1e9 * rate);
        self.answer_tokens = (self.answer_tokens + gained).min(rate);
        self.answer_tokens_at = Some(self.answer_tokens_at.map_or(rx, |t| t.max(rx)));
        if self.answer_tokens < 1.0 {
            return false;
        }
        self.answer_tokens -= 1.0;
        true
    }

    /// A packet from the other end, received by the kernel at `rx` (our clock).
    pub fn receive(&mut self, p: &Packet, rx: u64) -> Received {
        let newest = match &mut self.peer {
            Some(peer) if peer.id == p.sender_id => {
                if p.seq > peer.highest {
                    let shift = p.seq - peer.highest;
                    peer.bitmap = if shift > WINDOW {
                        0
                    } else {
                        ((u64::from(peer.bitmap) << shift) | (1u64 << (shift - 1))) as u32
                    };
                    peer.highest = p.seq;
                    peer.highest_rx = rx;
                    peer.highest_tx = p.tx_time;
                    peer.received += 1;
                    true
                } else if p.seq == peer.highest {
                    self.stats.duplicates += 1;
                    return Received::Duplicate;
                } else if peer.highest - p.seq > WINDOW {
                    self.stats.too_old += 1;
                    return Received::TooOld;
                } else {
                    let bit = 1u32 << (peer.highest - p.seq - 1);
                    if peer.bitmap & bit != 0 {
                        self.stats.duplicates += 1;
                        return Received::Duplicate;
                    }
                    peer.bitmap |= bit;
                    peer.received += 1;
                    // The stream's first packets may come late too.
                    peer.first = peer.first.min(p.seq);
                    false
                }
            }
            _ => {
                // First packet, or the other end started a new stream (restart).
                self.peer = Some(Peer {
                    id: p.sender_id,
                    first: p.seq,
                    highest: p.seq,
                    bitmap: 0,
                    received: 1,
                    highest_rx: rx,
                    highest_tx: p.tx_time,
                });
                self.stats.peer_streams += 1;
                true
            }
        };
        let peer = self.peer.expect("set above");
        self.stats.received = peer.received;
        self.stats.rx_lost = peer.lost();
        let mut answers = Vec::new();
        if p.your_id == self.id && p.echo_seq != 0 {
            if newest {
                self.stats.tx_delivered = u64::from(p.rx_count);
                self.stats.tx_lost = u64::from(p.rx_lost);
            }
            self.answered(p, rx, &mut answers);
        }
        Received::Fresh { answers }
    }

    /// The echo in `p`: its seq with an RTT, the bitmap's without.
    fn answered(&mut self, p: &Packet, rx: u64, answers: &mut Vec<Answer>) {
        let slot = self.sent[p.echo_seq as usize % RING];
        if slot.seq != p.echo_seq {
            return; // older than we remember, or never sent
        }
        if slot.tx != p.echo_tx_time {
            self.stats.bad_echoes += 1;
            return;
        }
        if !slot.answered {
            let rtt = rx
                .checked_sub(slot.tx)
                .and_then(|d| d.checked_sub(p.echo_held))
                .map(Duration::from_nanos);
            if rtt.is_some() {
                self.stats.rtt_samples += 1;
            }
            self.sent[p.echo_seq as usize % RING].answered = true;
            answers.push(Answer {
                seq: p.echo_seq,
                rtt,
            });
        }
        for i in 0..WINDOW {
            if p.echo_bitmap & (1 << i) == 0 {
                continue;
            }
            let Some(seq) = p.echo_seq.checked_sub(1 + i).filter(|&s| s != 0) else {
                break;
            };
            let s = &mut self.sent[seq as usize % RING];
            if s.seq == seq && !s.answered {
                s.answered = true;
                answers.push(Answer { seq, rtt: None });
            }
        }
    }
}
