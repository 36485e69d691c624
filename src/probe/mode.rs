//! [`ModeSelect`]: which probe a link sends, the stream or ICMPv6 echo, sans-IO.
//!
//! `[cost] probe = "auto"` (default): the stream first. A neighbor that sent no
//! stream packet within [`FALLBACK_AFTER`] intervals does not speak it (a BIRD
//! node): ICMPv6 echo from then on, plus one stream packet every
//! [`HELLO_EVERY`] intervals, so two kittbgpd ends that both fell back (the
//! tunnel was down when they started) still find each other. The first stream
//! packet received switches to the stream; a stream silent for
//! [`REPROBE_AFTER`] intervals (a dead link, or the neighbor now runs BIRD)
//! goes back to the choice: ICMPv6 echo with hellos until a stream packet
//! comes. `"stream"` and `"icmp"` force one.

use serde::{Deserialize, Serialize};

/// Intervals without a stream packet before auto falls back to ICMPv6 echo.
pub const FALLBACK_AFTER: u32 = 3;
/// In the fallback, one stream packet every this many intervals.
pub const HELLO_EVERY: u32 = 10;
/// Intervals of a silent stream after which auto chooses again.
pub const REPROBE_AFTER: u32 = 50;

/// `[cost] probe`: what a link with `cost = "auto"` sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeSetting {
    #[default]
    Auto,
    Stream,
    Icmp,
}

/// The probe in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Stream,
    Icmp,
}

/// What to send when a probe is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// The estimator's probe: one of the stream or an echo request.
    pub probe: Mode,
    /// A stream packet besides an echo request (the fallback's hello).
    pub hello: bool,
}

#[derive(Clone, Debug)]
pub struct ModeSelect {
    setting: ProbeSetting,
    mode: Mode,
    stream_heard: bool,
    /// Probes due so far without a stream packet received (auto), or in the fallback.
    due_count: u32,
    /// Probes due since the last stream packet.
    silent: u32,
}

impl ModeSelect {
    pub fn new(setting: ProbeSetting) -> ModeSelect {
        ModeSelect {
            setting,
            mode: match setting {
                ProbeSetting::Icmp => Mode::Icmp,
                _ => Mode::Stream,
            },
            stream_heard: false,
            due_count: 0,
            silent: 0,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn setting(&self) -> ProbeSetting {
        self.setting
    }

    /// A reload changed `[cost] probe`.
    pub fn set_setting(&mut self, setting: ProbeSetting) {
        if setting != self.setting {
            let heard = self.stream_heard;
            *self = ModeSelect::new(setting);
            if heard {
                self.on_stream_packet();
            }
        }
    }

    /// A valid stream packet from the neighbor (switches auto to the stream).
    pub fn on_stream_packet(&mut self) {
        self.stream_heard = true;
        self.silent = 0;
        if self.setting != ProbeSetting::Icmp {
            self.mode = Mode::Stream;
        }
    }

    /// A probe is due: what to send.
    pub fn on_due(&mut self) -> Due {
        self.silent = self.silent.saturating_add(1);
        if self.setting == ProbeSetting::Auto && self.stream_heard && self.silent > REPROBE_AFTER {
            // Silent that long: choose again (to ICMPv6 echo at once).
            self.stream_heard = false;
            self.due_count = FALLBACK_AFTER;
        }
        if self.setting == ProbeSetting::Auto && !self.stream_heard {
            self.due_count = self.due_count.saturating_add(1);
            if self.mode == Mode::Stream && self.due_count > FALLBACK_AFTER {
                self.mode = Mode::Icmp;
                self.due_count = 1;
            }
            if self.mode == Mode::Icmp {
                return Due {
                    probe: Mode::Icmp,
                    hello: self.due_count % HELLO_EVERY == 0,
                };
            }
        }
        Due {
            probe: self.mode,
            hello: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_and_comes_back() {
        let mut m = ModeSelect::new(ProbeSetting::Auto);
        for _ in 0..FALLBACK_AFTER {
            assert_eq!(m.on_due().probe, Mode::Stream);
        }
        let dues: Vec<Due> = (0..2 * HELLO_EVERY).map(|_| m.on_due()).collect();
        assert!(dues.iter().all(|d| d.probe == Mode::Icmp));
        assert_eq!(dues.iter().filter(|d| d.hello).count(), 2);
        m.on_stream_packet();
        assert_eq!(m.mode(), Mode::Stream);
        for _ in 0..REPROBE_AFTER {
            assert_eq!(
                m.on_due(),
                Due {
                    probe: Mode::Stream,
                    hello: false
                }
            );
        }
    }

    #[test]
    fn a_stream_heard_stays_until_silent_long() {
        let mut m = ModeSelect::new(ProbeSetting::Auto);
        m.on_due();
        for _ in 0..100 {
            m.on_stream_packet();
            assert_eq!(m.on_due().probe, Mode::Stream);
        }
        // Silent (dead link, or a BIRD node now): the stream for REPROBE_AFTER intervals, then echo.
        // (the last due of the loop above was the first silent one)
        assert!((1..REPROBE_AFTER).all(|_| m.on_due().probe == Mode::Stream));
        assert_eq!(m.on_due().probe, Mode::Icmp);
        let dues: Vec<Due> = (0..HELLO_EVERY).map(|_| m.on_due()).collect();
        assert!(dues.iter().all(|d| d.probe == Mode::Icmp));
        assert_eq!(dues.iter().filter(|d| d.hello).count(), 1);
        m.on_stream_packet();
        assert_eq!(m.on_due().probe, Mode::Stream);
    }

    #[test]
    fn forced_modes() {
        let mut s = ModeSelect::new(ProbeSetting::Stream);
        assert!((0..100).all(|_| s.on_due().probe == Mode::Stream));
        let mut i = ModeSelect::new(ProbeSetting::Icmp);
        i.on_stream_packet();
        assert!((0..100).all(|_| i.on_due()
            == Due {
                probe: Mode::Icmp,
                hello: false
            }));
    }
}
