//! BFD (RFC 5880), single hop (RFC 5881), sans-IO: the Control packet codec
//! ([`packet`]), one session's state machine and timers ([`session`]), and
//! the `[bfd]` parameters ([`params`]). The runtime (`runtime/bfd.rs`) owns
//! the sockets and the clock; a session Down holds the BGP session down
//! (RFC 5882 §3.2), Up releases it.

pub mod packet;
pub mod params;
pub mod session;

pub use packet::{Diag, Discard, Packet, State};
pub use params::BfdParams;
pub use session::{BfdEvent, Session, SessionConfig, Snapshot};
