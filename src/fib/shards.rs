//! A map by prefix for a whole table of FIB slots, in sorted vectors: the
//! key's mix picks a shard, and each shard is a vector of (key, value)
//! sorted by key, searched by bisection. A hash map's buckets cost 2 to 2.3
//! times the entries right after it doubles (1M IPv4 slots: 23 MiB for 10
//! MiB of entries); here an entry costs its size plus a few percent (each
//! shard grows by a sixteenth), whatever the table size. Shards are
//! split in two when their mean length passes [`SHARD_MAX`] (the insertion
//! that triggers it rewrites the table once per doubling, holding the table
//! plus one shard at the peak; any other moves at most a few KiB); never
//! merged (a shard emptied by a shrinking table costs 24 bytes).

use ipnet::{Ipv4Net, Ipv6Net};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Mean entries per shard above which every shard is split in two (so a
/// shard holds about 64 to 128 entries, a few cache lines: an insertion
/// moves half of one, a bisection takes 6 or 7 steps).
const SHARD_MAX: usize = 128;
/// Shards of a new map: 2^FIRST_BITS.
const FIRST_BITS: u32 = 4;

/// A prefix's mix: its top bits pick the shard.
pub(super) trait ShardKey: Ord + Copy {
    fn mix(&self) -> u64;
}

impl ShardKey for Ipv4Net {
    fn mix(&self) -> u64 {
        let x = (u64::from(u32::from(self.addr())) << 8) | u64::from(self.prefix_len());
        x.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

impl ShardKey for Ipv6Net {
    fn mix(&self) -> u64 {
        let a = u128::from(self.addr());
        let x = (a as u64) ^ ((a >> 64) as u64).rotate_left(29) ^ u64::from(self.prefix_len());
        x.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

#[derive(Debug)]
pub(super) struct Sharded<K, V> {
    /// Shard `i` holds the keys whose mix has `i` in its top `bits` bits;
    /// empty until the first entry (a fabric's table is small).
    shards: Vec<Vec<(K, V)>>,
    bits: u32,
    len: usize,
    /// Where the last key looked up was in its shard: the FIB looks a
    /// prefix up several times in a row (checked before use, never trusted;
    /// atomic only so that the FIB task's state stays `Sync`, one owner).
    hint: AtomicUsize,
}

impl<K, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            shards: Vec::new(),
            bits: 0,
            len: 0,
            hint: AtomicUsize::new(0),
        }
    }
}

impl<K: ShardKey, V: Default> Sharded<K, V> {
    fn shard_of(&self, k: &K) -> usize {
        // bits >= FIRST_BITS >= 1 once there are shards.
        (k.mix() >> (64 - self.bits)) as usize
    }

    fn find(&self, k: &K) -> Option<(usize, Result<usize, usize>)> {
        if self.shards.is_empty() {
            return None;
        }
        let s = self.shard_of(k);
        let shard = &self.shards[s];
        let hint = self.hint.load(Relaxed);
        if shard.get(hint).is_some_and(|(x, _)| x == k) {
            return Some((s, Ok(hint)));
        }
        let found = shard.binary_search_by(|(x, _)| x.cmp(k));
        if let Ok(i) = found {
            self.hint.store(i, Relaxed);
        }
        Some((s, found))
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        let (s, Ok(i)) = self.find(k)? else {
            return None;
        };
        Some(&self.shards[s][i].1)
    }

    /// The value of `k`, inserted as `V::default()` if absent.
    pub fn entry(&mut self, k: K) -> &mut V {
        if let Some((s, Ok(i))) = self.find(&k) {
            return &mut self.shards[s][i].1;
        }
        if self.shards.is_empty() {
            self.bits = FIRST_BITS;
            self.shards.resize_with(1 << FIRST_BITS, Vec::new);
        } else if self.len >= self.shards.len() * SHARD_MAX {
            self.split();
        }
        let s = self.shard_of(&k);
        let shard = &mut self.shards[s];
        let i = shard.binary_search_by(|(x, _)| x.cmp(&k)).unwrap_err();
        if shard.len() == shard.capacity() {
            shard.reserve_exact(shard.len() / 16 + 2);
        }
        shard.insert(i, (k, V::default()));
        self.len += 1;
        self.hint.store(i, Relaxed);
        &mut shard[i].1
    }

    /// Removes `k` if `remove(value)` says so.
    pub fn remove_if(&mut self, k: &K, remove: impl FnOnce(&V) -> bool) {
        let Some((s, Ok(i))) = self.find(k) else {
            return;
        };
        let shard = &mut self.shards[s];
        if !remove(&shard[i].1) {
            return;
        }
        shard.remove(i);
        self.len -= 1;
        if shard.capacity() > 2 * shard.len() + 8 {
            // A table that shrank gives its memory back.
            shard.shrink_to(shard.len() + shard.len() / 8);
        }
    }

    /// Every shard in two by the next bit of the mix, one shard at a time
    /// (a sorted shard splits into two sorted halves).
    fn split(&mut self) {
        let bits = self.bits + 1;
        let old = std::mem::take(&mut self.shards);
        let mut shards = Vec::with_capacity(old.len() * 2);
        for shard in old {
            let high = |k: &K| (k.mix() >> (64 - bits)) & 1 == 1;
            let n_high = shard.iter().filter(|(k, _)| high(k)).count();
            let with_room = |n: usize| Vec::with_capacity(n + n / 8);
            let (mut lo, mut hi) = (with_room(shard.len() - n_high), with_room(n_high));
            for (k, v) in shard {
                if high(&k) { &mut hi } else { &mut lo }.push((k, v));
            }
            shards.push(lo);
            shards.push(hi);
        }
        self.shards = shards;
        self.bits = bits;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flatten().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.shards.iter_mut().flatten().map(|(k, v)| (&*k, v))
    }

    /// Bytes held by the entries' vectors (tests: the overhead stays small).
    #[cfg(test)]
    pub fn capacity_bytes(&self) -> usize {
        let entries: usize = self.shards.iter().map(Vec::capacity).sum();
        entries * std::mem::size_of::<(K, V)>()
            + self.shards.capacity() * std::mem::size_of::<Vec<(K, V)>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn v4(i: u32) -> Ipv4Net {
        Ipv4Net::new((0x0a00_0000 + i).into(), 32).unwrap()
    }

    #[test]
    fn entries_are_found_updated_and_removed_as_in_a_map() {
        let mut m: Sharded<Ipv4Net, u32> = Sharded::default();
        let mut model = BTreeMap::new();
        // A scrambled order over more than one split.
        for i in 0..40_000u32 {
            let k = v4(i.wrapping_mul(2_654_435_761) % 50_000);
            *m.entry(k) += i;
            *model.entry(k).or_insert(0) += i;
        }
        for i in (0..50_000).step_by(3) {
            let k = v4(i);
            m.remove_if(&k, |v| v % 2 == 0);
            if model.get(&k).is_some_and(|v| v % 2 == 0) {
                model.remove(&k);
            }
        }
        assert_eq!(m.len(), model.len());
        for i in 0..50_000 {
            assert_eq!(m.get(&v4(i)), model.get(&v4(i)), "{i}");
        }
        let mut all: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort();
        assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        assert!(m.shards.len() > 1 << FIRST_BITS, "split");
        assert!(m.shards.iter().all(|s| s.is_sorted_by_key(|(k, _)| *k)));
    }

    #[test]
    fn a_million_ipv4_slots_cost_at_most_an_eighth_over_their_size() {
        let mut m: Sharded<Ipv4Net, [u8; 5]> = Sharded::default();
        let n = 1_000_000;
        for i in 0..n {
            m.entry(v4(i))[0] = 1;
        }
        let entry = std::mem::size_of::<(Ipv4Net, [u8; 5])>();
        assert_eq!(entry, 10);
        let used = m.capacity_bytes();
        assert!(used <= n as usize * entry * 9 / 8, "{used} bytes");
        // The shards stay short: an insertion moves a few KiB at most.
        let longest = m.shards.iter().map(Vec::len).max().unwrap();
        assert!(longest <= 2 * SHARD_MAX + SHARD_MAX / 2, "{longest}");
    }

    #[test]
    fn a_table_that_shrinks_gives_memory_back() {
        let mut m: Sharded<Ipv6Net, u8> = Sharded::default();
        let k = |i: u32| Ipv6Net::new((u128::from(i) << 64).into(), 64).unwrap();
        for i in 0..100_000 {
            *m.entry(k(i)) = 1;
        }
        let full = m.capacity_bytes();
        for i in 0..100_000 {
            m.remove_if(&k(i), |_| true);
        }
        assert_eq!(m.len(), 0);
        assert!(
            m.capacity_bytes() < full / 10,
            "{} of {full}",
            m.capacity_bytes()
        );
    }
}
