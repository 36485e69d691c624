//! Link probes, sans-IO: the stream protocol between kittbgpd nodes and the
//! choice between it and ICMPv6 echo. No clock, no socket: times come in as
//! arguments (nanoseconds of one host clock for the stream's arithmetic).
//!
//! The stream (UDP, `[cost] probe_port`, default 1790): each end sends one
//! packet per interval with its seq and transmit time, and the echo of the
//! latest packet received from the other end with the time it was held there
//! (TWAMP-light's reflector, RFC 5357 Appendix I, folded into each end's own
//! stream as in BFD echo, RFC 5880 §6.4). Each end thus gets an RTT per interval
//! from kernel timestamps, liveness from every packet, and loss per direction,
//! with one packet per direction per interval: 20/s per tunnel at 100 ms.
//! See [`packet`] for the format and [`stream`] for the arithmetic.

pub mod mode;
pub mod packet;
pub mod stream;

pub use mode::{Due, Mode, ModeSelect, ProbeSetting};
pub use packet::{DecodeError, Packet};
pub use stream::{Answer, Received, Stream, StreamStats};

/// Estimator sequence numbers of stream packets: above every ICMPv6 one (u16),
/// so one estimator takes both while a link switches.
pub const STREAM_SEQ_BASE: u64 = 1 << 32;

#[cfg(test)]
mod tests;
