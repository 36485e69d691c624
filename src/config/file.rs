//! The TOML file as written by the operator. Every key is optional where a default
//! exists; unknown keys are errors (`deny_unknown_fields`) so typos never pass silently.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub router_id: Spanned<Ipv4Addr>,
    pub local_as: Spanned<u32>,
    pub listen_port: Option<Spanned<u16>>,
    pub control_socket: Option<PathBuf>,
    /// Group owning the control socket (mode 0660); none: root only (0600).
    pub control_group: Option<Spanned<String>>,
    /// `[metrics]`: the Prometheus endpoint (off unless present).
    pub metrics: Option<FileMetrics>,
    pub loopbacks: Spanned<FileLoopbacks>,
    #[serde(default)]
    pub defaults: SessionOptions,
    pub kernel: Option<Spanned<FileKernel>>,
    /// `[cost]`: how measured links are priced (every key optional).
    pub cost: Option<Spanned<crate::cost::CostParams>>,
    /// `[bfd]`: timers of the BFD sessions of neighbors with `bfd = true`.
    pub bfd: Option<Spanned<crate::bfd::BfdParams>>,
    /// `[wireguard]`: the tunnels this node builds (step 6).
    pub wireguard: Option<Spanned<super::wireguard::FileWireguard>>,
    /// `[bmp]`: BMP collectors (RFC 7854).
    pub bmp: Option<Spanned<super::bmp::FileBmp>>,
    /// `[mrt]`: live MRT log of received UPDATEs.
    pub mrt: Option<Spanned<super::mrt::FileMrt>>,
    /// `[overlay]`: prefixes carried on multihop sessions (issue 12).
    pub overlay: Option<Spanned<super::overlay::FileOverlay>>,
    /// `[views]`: what the routing views share (rule priority range).
    #[serde(rename = "views")]
    pub view_settings: Option<Spanned<super::views::FileViews>>,
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<Spanned<FileNeighbor>>,
    /// `[[view]]`: routing views (step 11).
    #[serde(default, rename = "view")]
    pub views: Vec<Spanned<super::view::FileView>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMetrics {
    /// Address serving `GET /metrics`, e.g. "127.0.0.1:9179".
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLoopbacks {
    #[serde(default)]
    pub ipv4: Vec<Ipv4Net>,
    #[serde(default)]
    pub ipv6: Vec<Ipv6Net>,
    /// Prefixes originated in addition to the addresses found on `lo`.
    #[serde(default)]
    pub originate: Vec<Spanned<IpNet>>,
    /// Originate addresses on `lo` that fall inside the ranges (default true).
    pub from_lo: Option<bool>,
}

/// Declares a struct holding the per-session options plus `$extra` fields.
/// In `[defaults]` the options apply to every neighbor; in a `[[neighbor]]` they
/// override the defaults (BIRD's template, in TOML). A macro because serde's
/// `flatten` does not combine with `deny_unknown_fields`.
macro_rules! with_session_options {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Debug, Default, Deserialize, Clone)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($extra)*
            pub port: Option<u16>,
            pub hold_time: Option<Spanned<u16>>,
            pub keepalive: Option<Spanned<u16>>,
            pub connect_retry: Option<Spanned<u16>>,
            pub send_hold_time: Option<u16>,
            pub error_wait_min: Option<u16>,
            pub error_wait_max: Option<u16>,
            pub passive: Option<bool>,
            pub rr_client: Option<bool>,
            pub extended_next_hop: Option<bool>,
            pub ttl_security: Option<bool>,
            pub import_limit: Option<u32>,
            pub import_limit_action: Option<Spanned<String>>,
            pub graceful_restart: Option<bool>,
            pub restart_time: Option<Spanned<u16>>,
            pub filtered_limit: Option<u32>,
            pub add_paths: Option<Spanned<String>>,
            /// BFD (RFC 5880/5881) to the neighbor; its Down ends the session.
            pub bfd: Option<Spanned<bool>>,
        }
    };
}

with_session_options!(
    /// `[defaults]`.
    SessionOptions {}
);

with_session_options!(
    /// One `[[neighbor]]`.
    FileNeighbor {
        pub name: Option<String>,
        pub interface: Option<String>,
        pub address: Option<Spanned<IpAddr>>,
        pub remote_as: Option<Spanned<u32>>,
        pub cost: Option<LinkCost>,
        /// With `cost = "auto"`: what this link sends (else `[cost] probe`).
        pub probe: Option<crate::probe::ProbeSetting>,
        /// false: configured but held down (the session never starts).
        pub enabled: Option<bool>,
        pub wireguard: Option<Spanned<super::wireguard::FileTunnel>>,
        /// Hop limit of a multihop session over loopbacks (1-255); absent: a link session.
        pub multihop: Option<Spanned<u8>>,
        /// Our address a multihop session leaves from (default: our loopback of the family).
        pub source: Option<Spanned<IpAddr>>,
        /// Static cost of this link per view (`static` views, an expression's weight).
        pub view_cost: Option<Spanned<std::collections::BTreeMap<String, u32>>>,
    }
);

/// A neighbor's `cost`: a static number, or `"auto"` (measured, `[cost]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCost {
    Static(u32),
    Auto,
}

/// By hand rather than `#[serde(untagged)]`, whose error ("data did not match
/// any variant") would not say what is expected.
impl<'de> Deserialize<'de> for LinkCost {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = LinkCost;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a cost from 0 to 4294967295, or \"auto\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LinkCost, E> {
                u32::try_from(v)
                    .map(LinkCost::Static)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LinkCost, E> {
                u32::try_from(v)
                    .map(LinkCost::Static)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LinkCost, E> {
                match v {
                    "auto" => Ok(LinkCost::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `[kernel]`: how best routes go into the kernel.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKernel {
    pub enabled: Option<bool>,
    pub table: Option<Spanned<u32>>,
    pub protocol: Option<Spanned<u8>>,
    pub metric: Option<u32>,
    pub on_stop: Option<Spanned<String>>,
    pub startup_grace: Option<u64>,
    pub prefsrc4: Option<std::net::Ipv4Addr>,
    pub prefsrc6: Option<std::net::Ipv6Addr>,
}
