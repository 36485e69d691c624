//! Shared attribute sets: identical path attributes are stored once and
//! compared by pointer, so grouping prefixes for UPDATE packing is cheap.
//! Also a small fast hasher for prefix-keyed maps (keys come from iBGP peers
//! of our own fabric, so flooding resistance is not needed there).

use crate::wire::PathAttributes;
use hashbrown::HashTable;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// FxHash-style multiply-rotate hasher with a murmur3 finalizer.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(K);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        // murmur3's fmix64: the multiply-rotate state only carries changes
        // upwards, and hashbrown indexes by the low bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

fn attrs_hash(a: &PathAttributes) -> u64 {
    let mut h = FastHasher::default();
    a.origin.hash(&mut h);
    a.as_path.hash(&mut h);
    a.next_hop.hash(&mut h);
    a.med.hash(&mut h);
    a.local_pref.hash(&mut h);
    a.atomic_aggregate.hash(&mut h);
    a.aggregator.hash(&mut h);
    a.communities.hash(&mut h);
    a.originator_id.hash(&mut h);
    a.cluster_list.hash(&mut h);
    a.extended_communities.hash(&mut h);
    a.large_communities.hash(&mut h);
    for u in &a.unknown {
        (u.flags, u.code, &u.value).hash(&mut h);
    }
    h.finish()
}

/// `held` (an interned set) is `attrs` without its reach attributes: no
/// MP_REACH/MP_UNREACH of its own, every other attribute equal. The values
/// that differ most between sets are compared first.
fn same_without_reach(held: &PathAttributes, attrs: &PathAttributes) -> bool {
    let PathAttributes {
        origin,
        as_path,
        next_hop,
        med,
        local_pref,
        atomic_aggregate,
        aggregator,
        communities,
        originator_id,
        cluster_list,
        mp_reach: _,
        mp_unreach: _,
        extended_communities,
        large_communities,
        unknown,
    } = attrs;
    held.mp_reach.is_none()
        && held.mp_unreach.is_none()
        && held.med == *med
        && held.originator_id == *originator_id
        && held.next_hop == *next_hop
        && held.local_pref == *local_pref
        && held.origin == *origin
        && held.atomic_aggregate == *atomic_aggregate
        && held.cluster_list == *cluster_list
        && held.as_path == *as_path
        && held.aggregator == *aggregator
        && held.communities == *communities
        && held.extended_communities == *extended_communities
        && held.large_communities == *large_communities
        && held.unknown == *unknown
}

/// Interns attribute sets: received ones without MP_REACH/MP_UNREACH
/// ([`Interner::intern_received`]), outgoing ones as they are (an overlay
/// route's carries its next hop in an MP_REACH without prefixes).
/// The table holds the shared copies themselves: a set costs its `Arc` and
/// a table slot (a pointer and a control byte); hashes are recomputed from
/// the values when the table grows.
#[derive(Default)]
pub struct Interner {
    sets: HashTable<Arc<PathAttributes>>,
    live_after_purge: usize,
}

impl Interner {
    /// The shared copy of `attrs`.
    pub fn intern(&mut self, attrs: PathAttributes) -> Arc<PathAttributes> {
        let hash = attrs_hash(&attrs);
        if let Some(a) = self.sets.find(hash, |a| **a == attrs) {
            return a.clone();
        }
        self.insert(hash, Arc::new(attrs))
    }

    /// The shared copy of received `attrs` without their reach attributes
    /// (the prefixes are kept apart): copied only when no set matches, so a
    /// route received again costs a hash and a comparison.
    pub fn intern_received(&mut self, attrs: &PathAttributes) -> Arc<PathAttributes> {
        let hash = attrs_hash(attrs);
        if let Some(a) = self.sets.find(hash, |a| same_without_reach(a, attrs)) {
            return a.clone();
        }
        self.insert(hash, Arc::new(attrs.without_reach()))
    }

    fn insert(&mut self, hash: u64, a: Arc<PathAttributes>) -> Arc<PathAttributes> {
        self.sets
            .insert_unique(hash, a.clone(), |held| attrs_hash(held));
        a
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Drops sets nobody else holds, once the table has doubled since the last purge.
    pub fn maybe_purge(&mut self) {
        if self.sets.len() < 2 * self.live_after_purge + 1024 {
            return;
        }
        self.sets.retain(|a| Arc::strong_count(a) > 1);
        self.live_after_purge = self.sets.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_share_one_arc_and_unused_ones_are_purged() {
        let mut i = Interner::default();
        let a = i.intern(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let b = i.intern(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        assert!(Arc::ptr_eq(&a, &b));
        let received = PathAttributes {
            med: Some(1),
            mp_reach: Some(Box::new(crate::rib::overlay::next_hop_carrier(
                std::net::Ipv4Addr::LOCALHOST.into(),
            ))),
            ..Default::default()
        };
        let r = i.intern_received(&received);
        assert!(
            Arc::ptr_eq(&a, &r),
            "the same set once the prefixes are apart"
        );
        let carrier = i.intern(received.clone());
        assert!(
            !Arc::ptr_eq(&a, &carrier),
            "an outgoing set keeps its next hop"
        );
        assert!(
            Arc::ptr_eq(&i.intern_received(&received), &a),
            "a received set never matches an outgoing set with MP_REACH"
        );
        drop((r, carrier));
        for m in 2..3000 {
            i.intern(PathAttributes {
                med: Some(m),
                ..Default::default()
            });
        }
        i.maybe_purge();
        assert_eq!(i.len(), 1, "only the set still held survives");
    }
}
