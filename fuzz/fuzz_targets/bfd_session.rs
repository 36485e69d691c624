//! BFD: arbitrary datagrams and clock steps into one session (RFC 5880).
//! Must never panic, and:
//! - what the decoder accepts round-trips through encode;
//! - every packet sent decodes, never carries both P and F (§6.5), never D
//!   (no Demand mode), and carries our discriminator;
//! - the client hears Down (or AdminDown) only after an Up, and never two Ups
//!   in a row.
//!
//! Input: records of one byte of clock step (ms) and one of length, then
//! that many bytes (at most 40) as a datagram.
#![no_main]

use kittbgpd::bfd::{BfdEvent, BfdParams, Packet, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let cfg = SessionConfig {
        params: BfdParams::default(),
        local_discr: 7,
        seed: 1,
    };
    let mut s = Session::new(cfg, now);
    let mut up = false;
    let mut rest = data;
    while let [step, len, tail @ ..] = rest {
        now += Duration::from_millis(u64::from(*step));
        let n = usize::from(*len % 41).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        rest = next;
        if let Ok(p) = Packet::decode(datagram) {
            assert_eq!(Packet::decode(&p.encode()), Ok(p.clone()));
            let _ = s.on_packet(&p, now);
        }
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.on_timeout(now);
        }
        while let Some(p) = s.poll_transmit(now) {
            assert!(!(p.poll && p.final_), "P and F together");
            assert!(!p.demand);
            assert_eq!(p.my_discr, 7);
            assert_eq!(Packet::decode(&p.encode()), Ok(p));
        }
        while let Some(e) = s.poll_event() {
            match e {
                BfdEvent::Up => {
                    assert!(!up, "Up twice");
                    up = true;
                }
                BfdEvent::Down { .. } | BfdEvent::AdminDown => {
                    assert!(up, "Down without Up");
                    up = false;
                }
            }
        }
    }
});
