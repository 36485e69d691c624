//! The control protocol between the daemon and `kittbgpd show …`: one JSON
//! request per line on a Unix socket, one JSON response per line; plus the
//! human rendering of responses, in the birdc tradition.

mod bfd;
pub mod graceful;
mod render;
mod show;
mod tunnels;
mod views;

pub use bfd::render_bfd;
pub use render::{render_explain, render_kernel, render_links, render_neighbors, render_routes};
pub use show::{render_config, render_protocols, render_reload, render_route_detail, routes_for};
pub use tunnels::render_tunnels;
pub use views::render_views;

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "show", rename_all = "snake_case")]
pub enum Request {
    Neighbors,
    /// `all`: every candidate with its `best` flag (default best only);
    /// `filtered`: routes rejected by import policy, with the reason.
    Routes {
        #[serde(default)]
        all: bool,
        #[serde(default)]
        filtered: bool,
        /// A `[[view]]`'s table instead of the default one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<String>,
    },
    /// Links with measured cost: RTT, smoothed RTT, loss, applied cost, last changes.
    Links,
    /// Tunnels built from `[wireguard]`: peer, endpoint, handshake age, counters, link state.
    Tunnels,
    /// BFD sessions: state, remote state, discriminators, intervals, diagnostic, counters.
    Bfd,
    /// Every candidate for one prefix and the decision step each loser lost at.
    Explain {
        prefix: ipnet::IpNet,
        /// A `[[view]]`'s table: the link cost shown is the view's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<String>,
    },
    /// Kernel routes per table and prefix: desired, installed, conflict or
    /// failed (with the error); `table`: that kernel table only.
    Kernel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<u32>,
    },
    /// Routing views: the policy rules installed (priority, family, table,
    /// selector, state), other protocols' rules in our range, failure counters.
    Views,
    /// `kittbgpd enable NEIGHBOR`: clear the operator's and the import limit's hold.
    Enable {
        neighbor: String,
    },
    /// `kittbgpd disable NEIGHBOR`: hold the session down (Cease / Administrative Shutdown).
    Disable {
        neighbor: String,
    },
    /// `kittbgpd dump mrt FILE`: the Loc-RIB and Adj-RIB-In as MRT
    /// TABLE_DUMP_V2 (RFC 6396), written by the daemon to `file` (absolute).
    DumpMrt {
        file: std::path::PathBuf,
    },
    /// The configuration in force (`show config`), as `check` prints it.
    Config,
    /// `kittbgpd reload [--dry-run]`: re-read the file, apply the difference.
    Reload {
        #[serde(default)]
        dry_run: bool,
    },
}

/// One route for `show routes`: originated (peer "self") or received.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RouteView {
    pub prefix: String,
    /// Neighbor name, or "self" for an originated loopback.
    pub peer: String,
    pub next_hop: Option<String>,
    pub interface: Option<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub origin: Option<String>,
    pub as_path: String,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
    /// "accepted", "filtered" or "originated".
    pub status: String,
    pub reason: Option<String>,
    /// Path Identifier from an ADD-PATH neighbor (RFC 7911).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_id: Option<u32>,
    /// Selected as best path for the prefix (Loc-RIB).
    #[serde(default)]
    pub best: bool,
    /// MED as received, before the link cost was added (`med` is the total).
    #[serde(default)]
    pub received_med: Option<u32>,
    /// Link cost added on import (2^31 when unknown); none for our own routes.
    #[serde(default)]
    pub link_cost: Option<u32>,
    /// For a best path from a peer, with kernel routes on: "installed",
    /// "pending", "conflict (...)" or "failed: ERROR" (not exported unless installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// ATOMIC_AGGREGATE (RFC 4271 §5.1.6).
    #[serde(default)]
    pub atomic_aggregate: bool,
    /// AGGREGATOR as "AS address" (RFC 4271 §5.1.7).
    #[serde(default)]
    pub aggregator: Option<String>,
    /// COMMUNITIES (RFC 1997) as "high:low".
    #[serde(default)]
    pub communities: Vec<String>,
    /// EXTENDED_COMMUNITIES (RFC 4360), 8 octets each in hex.
    #[serde(default)]
    pub extended_communities: Vec<String>,
    /// LARGE_COMMUNITIES (RFC 8092) as "global:local1:local2".
    #[serde(default)]
    pub large_communities: Vec<String>,
    /// Attributes kittbgpd does not interpret, as received.
    #[serde(default)]
    pub unknown_attributes: Vec<UnknownAttributeView>,
}

/// An attribute kept as received: type code, flags (Extended Length bit
/// cleared) and value in hex.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnknownAttributeView {
    pub code: u8,
    pub flags: u8,
    pub value: String,
}

/// Which routes `show routes` lists: best paths only (like BIRD's `show
/// route`), every candidate with its `best` flag (`all`), or the routes
/// import policy rejected (`filtered`; with `all`, candidates and filtered).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouteQuery {
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub filtered: bool,
}

/// Send one request and read one JSON response.
pub fn query(socket: &Path, request: &Request) -> Result<serde_json::Value, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot connect to {}: {e} (is kittbgpd running?)",
            socket.display()
        )
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("cannot send request: {e}"))?;
    let mut response = String::new();
    BufReader::new(stream)
        .read_line(&mut response)
        .map_err(|e| format!("cannot read response: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(&response).map_err(|e| format!("bad response from daemon: {e}"))?;
    if let Some(err) = value.get("error").and_then(|e| e.as_str()) {
        return Err(err.to_string());
    }
    Ok(value)
}
