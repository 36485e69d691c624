//! Why a session is held down. Each reason is set and cleared by its own
//! owner (the interface watcher, the prober, the import limit, the operator,
//! the RIB's reachability of a multihop neighbor's address);
//! the session runs only when none holds. A link coming back therefore does
//! not restart a session the import limit disabled: only the operator does
//! (`kittbgpd enable NEIGHBOR`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// `enabled = false` in the neighbor's configuration.
    Config,
    /// `import_limit_action = "disable"` fired (RFC 4486 Cease 6/1 sent).
    ImportLimit,
    /// The tunnel interface is down or missing (netlink).
    Interface,
    /// The latency prober declared the link dead.
    Probe,
    /// The link answers again but flapped too often: damped until its penalty
    /// decays (`[cost]` damping, `show links` says when).
    Damped,
    /// The tunnel's latest WireGuard handshake is too old (`[wireguard] handshake_timeout`).
    Handshake,
    /// `kittbgpd disable NEIGHBOR`.
    Operator,
    /// A multihop neighbor's address has no route in the underlay (the RIB
    /// watches it): no connection is attempted until one is learned.
    NoRoute,
    /// The neighbor's BFD session went from Up to Down (RFC 5882 §3.2); held
    /// until BFD is Up again. `show bfd` and the log give the diagnostic.
    Bfd,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::Config => "disabled in the configuration (enabled = false)",
            HoldReason::ImportLimit => "import limit reached (disabled until `kittbgpd enable`)",
            HoldReason::Interface => "interface down",
            HoldReason::Probe => "link dead (probes unanswered)",
            HoldReason::Damped => "link flapping (damped, see show links)",
            HoldReason::Handshake => "link dead (no recent WireGuard handshake)",
            HoldReason::Operator => "disabled by operator",
            HoldReason::NoRoute => "no route to its address in the underlay",
            HoldReason::Bfd => "BFD session down",
        }
    }

    /// Cleared by `kittbgpd enable` (the others clear when their cause does).
    pub fn operator_clears(self) -> bool {
        matches!(self, HoldReason::ImportLimit | HoldReason::Operator)
    }
}

impl std::fmt::Display for HoldReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a change of the held-down set asks of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The first reason appeared: stop the session.
    Stop,
    /// The last reason cleared: start it again.
    Start,
    /// Held before and after, or free before and after.
    None,
}

/// The reasons holding a session down; empty: it may run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HeldDown(BTreeSet<HoldReason>);

impl HeldDown {
    pub fn is_held(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn contains(&self, r: HoldReason) -> bool {
        self.0.contains(&r)
    }

    pub fn reasons(&self) -> impl Iterator<Item = HoldReason> + '_ {
        self.0.iter().copied()
    }

    /// Set (`held`) or clear one reason.
    pub fn set(&mut self, reason: HoldReason, held: bool) -> Transition {
        let was = self.is_held();
        if held {
            self.0.insert(reason);
        } else {
            self.0.remove(&reason);
        }
        self.transition(was)
    }

    /// `kittbgpd enable`: clears the operator's and the import limit's reasons.
    pub fn enable(&mut self) -> Transition {
        let was = self.is_held();
        self.0.retain(|r| !r.operator_clears());
        self.transition(was)
    }

    fn transition(&self, was: bool) -> Transition {
        match (was, self.is_held()) {
            (false, true) => Transition::Stop,
            (true, false) => Transition::Start,
            _ => Transition::None,
        }
    }
}

impl std::fmt::Display for HeldDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<&str> = self.0.iter().map(|r| r.as_str()).collect();
        f.write_str(&v.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HoldReason::*;

    #[test]
    fn a_link_coming_back_does_not_restart_a_session_the_import_limit_disabled() {
        let mut h = HeldDown::default();
        assert_eq!(h.set(ImportLimit, true), Transition::Stop);
        assert_eq!(h.set(Interface, true), Transition::None);
        assert_eq!(h.set(Interface, false), Transition::None, "still disabled");
        assert!(h.contains(ImportLimit));
        assert_eq!(h.enable(), Transition::Start, "the operator re-enables it");
    }

    #[test]
    fn enable_does_not_override_a_dead_link_or_the_config() {
        let mut h = HeldDown::default();
        h.set(Config, true);
        assert_eq!(h.enable(), Transition::None, "the config says so");
        h.set(Config, false);
        h.set(Operator, true);
        h.set(Probe, true);
        assert_eq!(h.enable(), Transition::None);
        assert_eq!(h.reasons().collect::<Vec<_>>(), vec![Probe]);
        assert_eq!(h.set(Probe, false), Transition::Start);
    }

    #[test]
    fn reasons_are_independent_and_shown() {
        let mut h = HeldDown::default();
        assert_eq!(h.set(Interface, true), Transition::Stop);
        assert_eq!(h.set(Probe, true), Transition::None);
        assert_eq!(
            h.to_string(),
            "interface down, link dead (probes unanswered)"
        );
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            serde_json::json!(["interface", "probe"])
        );
        assert_eq!(h.set(Interface, false), Transition::None);
        assert_eq!(h.set(Probe, false), Transition::Start);
        assert_eq!(
            h.set(Probe, false),
            Transition::None,
            "clearing twice is harmless"
        );
    }
}
