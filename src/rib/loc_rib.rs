//! Loc-RIB (RFC 4271 §3.2): per prefix, every usable path and the selected
//! best one. Changes only mark prefixes dirty; the decision runs in batches.

use super::intern::PrefixMap;
use super::PeerId;
use crate::wire::PathAttributes;
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// Where a path comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Originated by this node.
    Local,
    Peer(PeerId),
}

/// A path accepted from a peer (the post-policy Adj-RIB-In entry).
#[derive(Clone, Debug)]
pub(crate) struct Path {
    pub peer: PeerId,
    pub next_hop: IpAddr,
    pub attrs: Arc<PathAttributes>,
}

/// The selected path, with the attributes it is advertised with.
#[derive(Clone, Debug)]
pub(crate) struct Best {
    pub source: Source,
    /// Outgoing attributes (shared with every peer it goes to).
    pub export: Arc<PathAttributes>,
    /// What the kernel FIB needs: next hop and peer; `None` for our own routes.
    pub fib: Option<(IpAddr, PeerId)>,
}

#[derive(Debug, Default)]
pub(crate) struct Dest {
    pub local: bool,
    pub paths: Vec<Path>,
    pub best: Option<Best>,
    dirty: bool,
}

impl Dest {
    pub fn is_empty(&self) -> bool {
        !self.local && self.paths.is_empty()
    }
}

#[derive(Debug, Default)]
pub(crate) struct LocRib {
    pub dests: PrefixMap<Dest>,
    dirty: Vec<IpNet>,
}

impl LocRib {
    fn touch(&mut self, prefix: IpNet) -> &mut Dest {
        let d = self.dests.entry(prefix).or_default();
        if !d.dirty {
            d.dirty = true;
            self.dirty.push(prefix);
        }
        d
    }

    /// Marks `prefix` for the next decision run.
    pub fn mark(&mut self, prefix: IpNet) {
        if self.dests.contains_key(&prefix) {
            self.touch(prefix);
        }
    }

    /// Adds or replaces the path of `path.peer`.
    pub fn upsert(&mut self, prefix: IpNet, path: Path) {
        let d = self.touch(prefix);
        match d.paths.iter_mut().find(|p| p.peer == path.peer) {
            Some(p) => *p = path,
            None => d.paths.push(path),
        }
    }

    pub fn remove(&mut self, prefix: IpNet, peer: PeerId) {
        if let Some(d) = self.dests.get_mut(&prefix) {
            if let Some(i) = d.paths.iter().position(|p| p.peer == peer) {
                d.paths.swap_remove(i);
                self.touch(prefix);
            }
        }
    }

    pub fn set_local(&mut self, prefix: IpNet, local: bool) {
        let d = self.touch(prefix);
        d.local = local;
    }

    /// The dirty prefixes, sorted, with their flags cleared.
    pub fn take_dirty(&mut self) -> Vec<IpNet> {
        let mut dirty = std::mem::take(&mut self.dirty);
        for p in &dirty {
            if let Some(d) = self.dests.get_mut(p) {
                d.dirty = false;
            }
        }
        dirty.sort_unstable();
        dirty
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }
}
