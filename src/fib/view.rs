//! `show kernel`: per prefix, what kittbgpd wants in the kernel, what is
//! there, and why not when they differ.

use super::{Fib, FibRoute, NO_NH};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixState {
    /// Our route is in the kernel as desired.
    Installed,
    /// An operation is due or running.
    Pending,
    /// Another protocol holds the slot at our metric: ours stays out.
    Conflict,
    /// The kernel refused the route; retried with backoff.
    Failed,
    /// Ours is in the kernel but no longer desired (kept during the startup grace).
    Stale,
}

/// One prefix of `show kernel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelView {
    /// The kernel table (`[kernel] table` for the default view, a view's own otherwise).
    pub table: u32,
    pub prefix: IpNet,
    pub state: PrefixState,
    pub desired: Option<FibRoute>,
    pub installed: Option<FibRoute>,
    /// The protocol number of the route holding the slot (conflict); `None` if not known yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign_protocol: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Fib {
    /// Every prefix desired or installed, in prefix order; this core is `table`'s.
    pub fn view(&self, table: u32) -> Vec<KernelView> {
        let prefixes: BTreeSet<IpNet> = self
            .slots
            .iter()
            .filter(|(_, s)| s.desired != NO_NH || s.installed != NO_NH)
            .map(|(p, _)| p)
            .collect();
        prefixes
            .into_iter()
            .map(|p| {
                let slot = self.slots.get(&p).copied().unwrap_or_default();
                let desired = self.route(p, slot.desired);
                let installed = self.route(p, slot.installed);
                let foreign = self.foreign.get(&p);
                let error = self.retries.get(&p).map(|r| r.last_error.clone());
                let state = if desired.is_none() {
                    PrefixState::Stale
                } else if foreign.is_some() {
                    PrefixState::Conflict
                } else if error.is_some() {
                    PrefixState::Failed
                } else if desired == installed {
                    PrefixState::Installed
                } else {
                    PrefixState::Pending
                };
                KernelView {
                    table,
                    prefix: p,
                    state,
                    desired,
                    installed,
                    foreign_protocol: foreign.copied().flatten(),
                    error,
                }
            })
            .collect()
    }
}
