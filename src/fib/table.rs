//! The FIB's per-prefix state in one compact record (5 bytes next to its
//! prefix, unaligned: a /32 costs 10 bytes, ~11 in its shard), and the next hops it names by
//! a small id. A fabric has few distinct next hops (one per link), so a
//! route is two ids, not a gateway and an interface name twice.

use super::shards::Sharded;
use crate::rib::FastMap;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::VecDeque;
use std::net::IpAddr;

/// A next hop's id in [`NextHops`]; 0 is "no route".
pub(super) type Nh = u16;
pub(super) const NO_NH: Nh = 0;

/// Queued in `Fib::dirty`: the kernel state may differ from the desired one.
pub(super) const DIRTY: u8 = 1;
/// An operation for the prefix runs.
pub(super) const IN_FLIGHT: u8 = 2;
/// Queued in `Fib::touched`: whether it is blocked may have changed.
pub(super) const TOUCHED: u8 = 4;
/// Reported to the RIB as not forwardable.
pub(super) const BLOCKED: u8 = 8;

/// Packed: next to a 5-byte IPv4 prefix an aligned record would take 6
/// bytes and the pair 12 (2 MiB more per 1M buckets each); fields are read
/// and written by value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, packed)]
pub(super) struct Slot {
    pub desired: Nh,
    /// Our route in the kernel, as far as results, events and dumps tell.
    pub installed: Nh,
    pub flags: u8,
}

impl Slot {
    fn is_empty(&self) -> bool {
        *self == Slot::default()
    }
}

/// Slots by prefix, IPv4 and IPv6 apart (an IPv4 key is 5 bytes, an `IpNet` 18).
#[derive(Debug, Default)]
pub(super) struct Slots {
    v4: Sharded<Ipv4Net, Slot>,
    v6: Sharded<Ipv6Net, Slot>,
}

impl Slots {
    pub fn get(&self, p: &IpNet) -> Option<&Slot> {
        match p {
            IpNet::V4(p) => self.v4.get(p),
            IpNet::V6(p) => self.v6.get(p),
        }
    }

    /// The slot of `p`, created empty if there is none.
    pub fn entry(&mut self, p: IpNet) -> &mut Slot {
        match p {
            IpNet::V4(p) => self.v4.entry(p),
            IpNet::V6(p) => self.v6.entry(p),
        }
    }

    /// Forgets `p` if its slot holds nothing.
    pub fn prune(&mut self, p: &IpNet) {
        match p {
            IpNet::V4(p) => self.v4.remove_if(p, Slot::is_empty),
            IpNet::V6(p) => self.v6.remove_if(p, Slot::is_empty),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &Slot)> {
        let v4 = self.v4.iter().map(|(p, s)| (IpNet::V4(*p), s));
        v4.chain(self.v6.iter().map(|(p, s)| (IpNet::V6(*p), s)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut Slot)> {
        let v4 = self.v4.iter_mut().map(|(p, s)| (IpNet::V4(*p), s));
        v4.chain(self.v6.iter_mut().map(|(p, s)| (IpNet::V6(*p), s)))
    }
}

/// Next hops (gateway, interface name) by id, counted by the slots naming
/// them; an id is reused once no slot names it.
#[derive(Debug, Default)]
pub(super) struct NextHops {
    /// Index `id - 1`: the next hop and how many `desired`/`installed` name it.
    list: Vec<(IpAddr, Box<str>, u32)>,
    by_gateway: FastMap<IpAddr, Vec<Nh>>,
    free: Vec<Nh>,
}

impl NextHops {
    /// The id of a next hop, added if new; `None` if every id is taken
    /// (65 535 distinct next hops in use at once).
    pub fn intern(&mut self, gateway: IpAddr, interface: &str) -> Option<Nh> {
        let ids = self.by_gateway.entry(gateway).or_default();
        if let Some(&id) = ids
            .iter()
            .find(|&&id| &*self.list[usize::from(id) - 1].1 == interface)
        {
            return Some(id);
        }
        let entry = (gateway, Box::from(interface), 0);
        let id = match self.free.pop() {
            Some(id) => {
                self.list[usize::from(id) - 1] = entry;
                id
            }
            None => {
                let id = Nh::try_from(self.list.len() + 1).ok()?;
                self.list.push(entry);
                id
            }
        };
        ids.push(id);
        Some(id)
    }

    pub fn get(&self, id: Nh) -> Option<(IpAddr, &str)> {
        let i = usize::from(id).checked_sub(1)?;
        self.list.get(i).map(|(g, name, _)| (*g, &**name))
    }

    /// A field naming `old` now names `new` (returned), counting the names
    /// (an id no slot names is freed).
    pub fn assign(&mut self, old: Nh, new: Nh) -> Nh {
        if old == new {
            return new;
        }
        if new != NO_NH {
            self.list[usize::from(new) - 1].2 += 1;
        }
        if old != NO_NH {
            let (gateway, _, refs) = &mut self.list[usize::from(old) - 1];
            *refs -= 1;
            if *refs == 0 {
                let gateway = *gateway;
                if let Some(ids) = self.by_gateway.get_mut(&gateway) {
                    ids.retain(|&i| i != old);
                    if ids.is_empty() {
                        self.by_gateway.remove(&gateway);
                    }
                }
                self.free.push(old);
            }
        }
        new
    }

    /// Next hops in use (tests: ids are given back).
    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        self.list.len() - self.free.len()
    }
}

/// Prefixes in line, IPv4 and IPv6 apart (5 bytes an IPv4 prefix, not 18).
#[derive(Debug, Default)]
pub(super) struct PrefixQueue {
    v4: VecDeque<Ipv4Net>,
    v6: VecDeque<Ipv6Net>,
}

impl PrefixQueue {
    pub fn push_back(&mut self, p: IpNet) {
        match p {
            IpNet::V4(p) => self.v4.push_back(p),
            IpNet::V6(p) => self.v6.push_back(p),
        }
    }

    pub fn push_front(&mut self, p: IpNet) {
        match p {
            IpNet::V4(p) => self.v4.push_front(p),
            IpNet::V6(p) => self.v6.push_front(p),
        }
    }

    pub fn pop_front(&mut self) -> Option<IpNet> {
        let p = match self.v4.pop_front() {
            Some(p) => Some(IpNet::V4(p)),
            None => self.v6.pop_front().map(IpNet::V6),
        };
        if p.is_none() {
            // A full table's queue is not kept once drained.
            self.v4 = VecDeque::new();
            self.v6 = VecDeque::new();
        }
        p
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_slot_and_its_prefix_take_ten_bytes() {
        assert_eq!(std::mem::size_of::<(Ipv4Net, Slot)>(), 10);
    }

    #[test]
    fn slots_are_found_iterated_and_pruned() {
        let mut slots = Slots::default();
        let v4 = |i: u32| IpNet::V4(Ipv4Net::new(i.into(), 32).unwrap());
        let v6 = |i: u32| IpNet::V6(Ipv6Net::new((u128::from(i) << 64).into(), 128).unwrap());
        for i in 0..2000 {
            slots.entry(v4(i)).desired = 1;
            slots.entry(v6(i)).installed = 2;
        }
        assert_eq!(slots.iter().count(), 4000);
        assert_eq!(slots.get(&v4(7)).map(|s| s.desired), Some(1));
        assert_eq!(slots.get(&v6(7)).map(|s| s.installed), Some(2));
        for i in 0..1000 {
            slots.entry(v4(i)).desired = NO_NH;
            slots.prune(&v4(i));
            slots.prune(&v6(i)); // not empty: kept
        }
        assert_eq!(slots.get(&v4(7)), None);
        assert_eq!(slots.iter().count(), 3000);
        for (_, s) in slots.iter_mut() {
            s.flags = DIRTY;
        }
        assert!(slots.iter().all(|(_, s)| s.flags == DIRTY));
    }
}
