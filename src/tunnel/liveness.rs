//! Link liveness from WireGuard itself: the age of the peer's latest
//! handshake. WireGuard re-keys every 120 s while packets flow (persistent
//! keepalive makes sure some do), so a healthy tunnel's handshake is never much
//! older than that; past the bound the link is down (as when probes are lost),
//! and it is up again with the next handshake. Sans-IO: ages come in.

use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HandshakeState {
    /// No handshake yet, and the tunnel is younger than the bound.
    Waiting,
    Up,
    Down,
}

#[derive(Debug, Clone)]
pub struct Liveness {
    bound: Duration,
    state: HandshakeState,
}

impl Liveness {
    pub fn new(bound: Duration) -> Self {
        Liveness {
            bound,
            state: HandshakeState::Waiting,
        }
    }

    pub fn state(&self) -> HandshakeState {
        self.state
    }

    /// A reloaded `handshake_timeout`: the state stays, the next
    /// [`observe`](Self::observe) judges by the new bound.
    pub fn set_bound(&mut self, bound: Duration) {
        self.bound = bound;
    }

    /// `age`: since the latest handshake (`None`: never); `watched`: since this
    /// tunnel has been watched. Returns `Some(up)` when the link changes state
    /// for the session (down, or up again after down).
    pub fn observe(&mut self, age: Option<Duration>, watched: Duration) -> Option<bool> {
        let fresh = age.is_some_and(|a| a <= self.bound);
        let next = if fresh {
            HandshakeState::Up
        } else if age.is_none() && watched <= self.bound && self.state == HandshakeState::Waiting {
            HandshakeState::Waiting
        } else {
            HandshakeState::Down
        };
        let before = std::mem::replace(&mut self.state, next);
        match (before, next) {
            (HandshakeState::Down, HandshakeState::Up) => Some(true),
            (HandshakeState::Waiting | HandshakeState::Up, HandshakeState::Down) => Some(false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn stale_handshake_takes_the_link_down_and_the_next_brings_it_back() {
        let mut l = Liveness::new(S(180));
        assert_eq!(
            l.observe(Some(S(5)), S(10)),
            None,
            "up from the start: nothing to say"
        );
        assert_eq!(l.state(), HandshakeState::Up);
        assert_eq!(
            l.observe(Some(S(125)), S(130)),
            None,
            "a normal re-key interval"
        );
        assert_eq!(
            l.observe(Some(S(180)), S(185)),
            None,
            "at the bound: still up"
        );
        assert_eq!(l.observe(Some(S(181)), S(186)), Some(false));
        assert_eq!(l.observe(Some(S(400)), S(400)), None, "said once");
        assert_eq!(l.state(), HandshakeState::Down);
        assert_eq!(l.observe(Some(S(1)), S(401)), Some(true));
        assert_eq!(l.state(), HandshakeState::Up);
    }

    #[test]
    fn a_new_bound_keeps_the_state_and_judges_the_next_age() {
        let mut l = Liveness::new(S(180));
        assert_eq!(l.observe(Some(S(200)), S(300)), Some(false));
        l.set_bound(S(300));
        assert_eq!(l.state(), HandshakeState::Down);
        assert_eq!(
            l.observe(Some(S(200)), S(302)),
            Some(true),
            "within the new bound"
        );
        l.set_bound(S(150));
        assert_eq!(l.observe(Some(S(160)), S(304)), Some(false));
    }

    #[test]
    fn no_handshake_ever_waits_for_the_bound_then_is_down() {
        let mut l = Liveness::new(S(180));
        assert_eq!(l.observe(None, S(0)), None);
        assert_eq!(l.observe(None, S(180)), None);
        assert_eq!(l.state(), HandshakeState::Waiting);
        assert_eq!(l.observe(None, S(181)), Some(false));
        assert_eq!(l.observe(Some(S(0)), S(200)), Some(true));
    }
}
