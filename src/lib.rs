//! kittbgpd: a BGP daemon for WireGuard routing fabrics.
//!
//! Sans-IO cores ([`wire`], [`session`], [`config`], [`rib`], [`cost`]) hold all protocol logic and
//! take time as an argument; [`runtime`] moves bytes, timers and events around them;
//! [`ctl`] is the control protocol and its rendering.
//! See ARCHITECTURE.md for the module map and the path of one UPDATE.

pub mod bfd;
pub mod bmp;
pub mod config;
pub mod cost;
pub mod ctl;
pub mod fib;
pub mod metrics;
pub mod mrt;
pub mod probe;
pub mod rib;
pub mod rules;
pub mod runtime;
pub mod session;
pub mod tunnel;
pub mod views;
pub mod wire;
