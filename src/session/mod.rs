//! The BGP session finite state machine (RFC 4271 §8) as plain code.
//!
//! [`Session::handle`] takes an [`Event`] and the current time and returns
//! [`Action`]s; [`Session::poll_timeout`] says when to call
//! [`Session::handle_timeout`] next. No sockets, no clock: the runtime owns the
//! TCP connections, decodes messages with [`Session::negotiated`], and carries
//! out the actions. Both an outbound and an inbound connection may exist at once
//! (active and passive at the same time); [`collision`] picks one (§6.8).

mod collision;
mod fsm;
pub mod held;

pub use fsm::{Action, Direction, DownReason, Event, Session, SessionConfig, State};
pub use held::{HeldDown, HoldReason};
