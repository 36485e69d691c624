//! [`Heard`]: "something came from this neighbor at this time", from whoever
//! sees it (the peer task for BGP messages, the tunnel task for WireGuard
//! activity, the BFD task for its packets) to the link's prober, whose estimator counts liveness
//! from the last packet heard ([`crate::cost::Estimator::on_heard`]).
//!
//! A `tokio::sync::watch` channel: the prober awaits `changed()`; a mark costs
//! a clock comparison, and a store only every `min_gap` (a quarter interval),
//! so a busy BGP session does not wake the prober per message.

use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The sending side, clonable; [`sender`](Self::sender) is the plain
/// `watch::Sender<Instant>` for a task that marks with `send_replace(now)`.
#[derive(Clone, Debug)]
pub struct Heard {
    tx: watch::Sender<Instant>,
    min_gap: Duration,
    /// This clone's last stored mark: most marks end at this comparison,
    /// without touching the channel's lock.
    last: std::cell::Cell<Option<Instant>>,
}

impl Heard {
    /// A new channel: the sender side, and the receiver for the prober.
    pub fn channel(min_gap: Duration, now: Instant) -> (Heard, watch::Receiver<Instant>) {
        let (tx, rx) = watch::channel(now);
        let last = std::cell::Cell::new(None);
        (Heard { tx, min_gap, last }, rx)
    }

    /// Heard from the neighbor at `now` (stored if `min_gap` passed since the last mark).
    pub fn mark(&self, now: Instant) {
        let gap = self.min_gap;
        // Not newer by the gap (an older mark never moves it back).
        let near = |t: Instant| now <= t || now.duration_since(t) < gap;
        if self.last.get().is_some_and(near) {
            return;
        }
        let mut current = now;
        self.tx.send_if_modified(|t| {
            if near(*t) {
                current = *t; // another marker's, recent enough
                false
            } else {
                *t = now;
                true
            }
        });
        self.last.set(Some(current));
    }

    /// The channel itself: `send_replace(now)` marks without the gap (a BFD
    /// session's received packets, at most a few per interval).
    pub fn sender(&self) -> watch::Sender<Instant> {
        self.tx.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_closer_than_the_gap_wake_nobody() {
        let t0 = Instant::now();
        let (h, mut rx) = Heard::channel(Duration::from_millis(25), t0);
        rx.borrow_and_update();
        h.mark(t0 + Duration::from_millis(10));
        assert!(!rx.has_changed().unwrap());
        h.mark(t0 + Duration::from_millis(30));
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), t0 + Duration::from_millis(30));
        h.clone()
            .sender()
            .send_replace(t0 + Duration::from_millis(31));
        assert_eq!(*rx.borrow_and_update(), t0 + Duration::from_millis(31));
    }
}
