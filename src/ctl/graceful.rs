//! Graceful restart (RFC 4724) figures for `show neighbors` and `show
//! protocols`: what each OPEN of the session carried (restart time, R bit,
//! families and their F bits), and the helper state the RIB reports (routes
//! kept stale, time left).

use crate::wire::{Capability, Open};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One side's Graceful Restart capability (RFC 4724 §3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrSide {
    pub restart_time: u16,
    /// R bit: this side had just restarted when it opened the session.
    pub restart_state: bool,
    pub families: Vec<String>,
    /// Families whose forwarding state this side kept (F bit).
    pub forwarding: Vec<String>,
}

/// Graceful restart on an established session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrStatus {
    /// Both OPENs carry the capability.
    pub negotiated: bool,
    pub local: Option<GrSide>,
    pub remote: Option<GrSide>,
}

fn side(open: &Open) -> Option<GrSide> {
    open.capabilities.iter().find_map(|c| match c {
        Capability::GracefulRestart {
            restart_state,
            restart_time,
            families,
            ..
        } => Some(GrSide {
            restart_time: *restart_time,
            restart_state: *restart_state,
            families: families.iter().map(|(f, _)| f.to_string()).collect(),
            forwarding: families
                .iter()
                .filter(|(_, flags)| flags & 0x80 != 0)
                .map(|(f, _)| f.to_string())
                .collect(),
        }),
        _ => None,
    })
}

/// From the OPEN we sent and the one received.
pub fn gr_status(local: &Open, remote: &Open) -> GrStatus {
    let (local, remote) = (side(local), side(remote));
    GrStatus {
        negotiated: local.is_some() && remote.is_some(),
        local,
        remote,
    }
}

/// `show neighbors` / `show protocols` text: "-", "on (peer 120 s, F ipv4 ipv6; R sent)",
/// or, helping a restarting peer, "helper: 12 stale, 80 s left". While our
/// own restart defers the output (RFC 4724 §4.1), ", output deferred" follows.
pub fn gr_summary(neighbor: &Value) -> String {
    let routes = neighbor.get("routes").cloned().unwrap_or_default();
    if routes.get("graceful_helper").and_then(Value::as_bool) == Some(true) {
        let stale = routes.get("stale").and_then(Value::as_u64).unwrap_or(0);
        return match routes.get("stale_left_s").and_then(Value::as_u64) {
            Some(left) => format!("helper: {stale} stale, {left} s left"),
            None => format!("helper: {stale} stale"),
        };
    }
    let session = session_summary(neighbor);
    if routes.get("output_deferred").and_then(Value::as_bool) != Some(true) {
        session
    } else if session == "-" {
        "output deferred (our restart)".into()
    } else {
        format!("{session}, output deferred")
    }
}

/// What the OPENs of the session carried.
fn session_summary(neighbor: &Value) -> String {
    let Some(gr) = neighbor
        .get("graceful_restart")
        .and_then(|g| serde_json::from_value::<GrStatus>(g.clone()).ok())
    else {
        return "-".into();
    };
    match (&gr.local, &gr.remote) {
        (Some(l), Some(r)) => {
            let mut s = format!("on (peer {} s", r.restart_time);
            if !r.forwarding.is_empty() {
                s += &format!(", F {}", r.forwarding.join(" "));
            }
            if r.restart_state {
                s += ", peer restarted";
            }
            if l.restart_state {
                s += "; R sent";
            }
            s + ")"
        }
        (Some(_), None) => "off (peer lacks it)".into(),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AfiSafi;
    use std::net::Ipv4Addr;

    fn open(gr: Option<(bool, u16, u8)>) -> Open {
        let mut caps = vec![Capability::RouteRefresh];
        if let Some((r, time, flags)) = gr {
            caps.push(Capability::GracefulRestart {
                restart_state: r,
                notification: false,
                restart_time: time,
                families: vec![(AfiSafi::IPV4_UNICAST, flags), (AfiSafi::IPV6_UNICAST, 0)],
            });
        }
        Open::new(65000, 90, Ipv4Addr::new(10, 0, 0, 1), caps)
    }

    #[test]
    fn both_sides_with_r_and_f_bits() {
        let g = gr_status(
            &open(Some((true, 120, 0x80))),
            &open(Some((false, 90, 0x80))),
        );
        assert!(g.negotiated);
        let (l, r) = (g.local.clone().unwrap(), g.remote.clone().unwrap());
        assert!(l.restart_state && !r.restart_state);
        assert_eq!(r.restart_time, 90);
        assert_eq!(r.forwarding, [AfiSafi::IPV4_UNICAST.to_string()]);
        assert_eq!(r.families.len(), 2);
        let n = serde_json::json!({ "graceful_restart": g, "routes": {} });
        assert_eq!(gr_summary(&n), "on (peer 90 s, F ipv4-unicast; R sent)");
    }

    #[test]
    fn one_side_only_is_not_negotiated_and_helper_state_wins() {
        let g = gr_status(&open(Some((false, 120, 0))), &open(None));
        assert!(!g.negotiated && g.remote.is_none());
        let n = serde_json::json!({ "graceful_restart": g });
        assert_eq!(gr_summary(&n), "off (peer lacks it)");
        let helping = serde_json::json!({ "routes": {"graceful_helper": true, "stale": 12, "stale_left_s": 80} });
        assert_eq!(gr_summary(&helping), "helper: 12 stale, 80 s left");
        assert_eq!(gr_summary(&serde_json::json!({})), "-");
    }

    #[test]
    fn our_deferred_output_is_said_on_every_established_session() {
        let g = gr_status(&open(Some((true, 120, 0x80))), &open(Some((false, 90, 0))));
        let routes = serde_json::json!({ "output_deferred": true });
        let n = serde_json::json!({ "graceful_restart": g, "routes": routes });
        assert_eq!(gr_summary(&n), "on (peer 90 s; R sent), output deferred");
        let plain = serde_json::json!({ "routes": routes });
        assert_eq!(gr_summary(&plain), "output deferred (our restart)");
    }
}
