//! Configuration: the TOML file model ([`file`]), validation into the effective
//! [`Config`] with precise errors ([`validate`]).
//!
//! No I/O beyond reading the file named by the caller; no clock.

mod bfd;
pub mod bmp;
pub mod diff;
mod file;
pub mod mrt;
mod neighbor;
pub mod originate;
pub mod overlay;
mod validate;
pub mod view_rule;
pub mod wireguard;

pub use overlay::Overlay;
pub use validate::{
    load, parse, AddPaths, Config, ConfigError, ConfigErrors, ImportLimitAction, Kernel, Loopbacks,
    Neighbor, OnStop,
};

/// Default TCP port of the fabric (both sides listen and connect here).
pub const DEFAULT_PORT: u16 = 1790;
/// Default control socket path.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/kittbgpd/kittbgpd.sock";
/// MED added on a link with no configured or measured cost, as BIRD's reference template does.
pub const UNKNOWN_LINK_COST: u32 = 2_147_483_648;
