//! [`BfdParams`]: the `[bfd]` table (BIRD's `protocol bfd` interface options
//! under the same names), every key optional, unknown keys rejected.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Timers of every BFD session of this node. Durations are written in seconds
/// in the file (`interval = 0.1`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BfdParams {
    /// Desired Min TX and Required Min RX once Up (default 0.1 s).
    #[serde(with = "crate::cost::secs")]
    pub interval: Duration,
    /// Required Min RX Interval, overriding `interval`.
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub min_rx: Option<Duration>,
    /// Desired Min TX Interval once Up, overriding `interval`.
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub min_tx: Option<Duration>,
    /// Desired Min TX Interval while not Up (default 1 s; RFC 5880 §6.8.3
    /// asks for at least 1 s).
    #[serde(with = "crate::cost::secs")]
    pub idle_tx: Duration,
    /// Detect Mult: the session is down after this many intervals of silence (default 3).
    pub multiplier: u32,
}

impl Default for BfdParams {
    fn default() -> Self {
        BfdParams {
            interval: Duration::from_millis(100),
            min_rx: None,
            min_tx: None,
            idle_tx: Duration::from_secs(1),
            multiplier: 3,
        }
    }
}

/// Longest interval the 32-bit microsecond fields can carry.
const MAX_INTERVAL: Duration = Duration::from_micros(u32::MAX as u64);

impl BfdParams {
    /// bfd.DesiredMinTxInterval while Up.
    pub fn tx(&self) -> Duration {
        self.min_tx.unwrap_or(self.interval)
    }

    /// bfd.RequiredMinRxInterval.
    pub fn rx(&self) -> Duration {
        self.min_rx.unwrap_or(self.interval)
    }

    /// bfd.DesiredMinTxInterval while not Up: never faster than once Up.
    pub fn idle(&self) -> Duration {
        self.idle_tx.max(self.tx())
    }

    /// Detect Mult as sent (validated to 1-255; clamped here all the same).
    pub fn detect_mult(&self) -> u8 {
        self.multiplier.clamp(1, 255) as u8
    }

    /// Semantic problems, as (key, message); empty when usable.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut check = |key, d: Option<Duration>| {
            if let Some(d) = d {
                if d < Duration::from_micros(1) || d > MAX_INTERVAL {
                    v.push((key, "must be more than 0 s and at most 4294 s".to_string()));
                }
            }
        };
        check("interval", Some(self.interval));
        check("min_rx", self.min_rx);
        check("min_tx", self.min_tx);
        check("idle_tx", Some(self.idle_tx));
        if !(1..=255).contains(&self.multiplier) {
            v.push(("multiplier", "must be 1 to 255".to_string()));
        }
        v
    }
}

mod opt_secs {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => crate::cost::secs::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        crate::cost::secs::deserialize(d).map(Some)
    }
}
