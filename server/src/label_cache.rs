//! The remote_write label cache: label sets by a hash of their encoded
//! `Label` fields, each with the head reference of its last write.
//!
//! Senders encode a series' labels identically every time, so a hit skips
//! UTF-8 checks, sorting and allocation, and (with the [`SeriesRef`]) the
//! storage's own lookup of the same labels. Only the hash is kept, not the
//! encoded bytes (the label bytes live once, in the `Labels`): the caller
//! confirms a hit against the request's fields, so a hash collision, or a
//! sender whose label order differs from the sorted one, takes the full
//! check instead.
//!
//! A request touches thousands of series, each of them out of the CPU
//! cache: with a plain hash map every lookup waits on memory twice (the
//! bucket, then the label bytes). The table is an open-addressing array
//! whose slot for a key is known before the lookup, so a batch lookup
//! prefetches slots and label bytes a few series ahead.

use parking_lot::RwLock;
use sextant_storage::{Labels, SeriesRef, prefetch};

/// A cached label set and the head reference of its last write.
pub type Cached = (Labels, Option<SeriesRef>);

/// Label sets by key, bounded: emptied when it reaches its bound (the
/// next requests fill it again).
pub struct LabelCache {
    table: RwLock<Table>,
    max: usize,
}

/// Linear probing over a power-of-two array at most half full. Entries
/// are never removed one by one, so a probe ends at the first empty slot.
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    len: usize,
}

/// 32 bytes, aligned: a slot never straddles two cache lines, so one
/// prefetch brings all of it.
#[derive(Clone, Default)]
#[repr(align(32))]
struct Slot {
    key: u64,
    entry: Option<Cached>,
}

impl Table {
    /// Where the probe for `key` starts; `slots` must not be empty.
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: the key's low bits alone may be weak.
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & (self.slots.len() - 1)
    }

    /// The slot holding `key`, or the empty slot where its probe ends;
    /// `slots` must not be empty; at most half full, it always has an
    /// empty slot for the probe to end on.
    fn probe(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        while self.slots[i].entry.is_some() && self.slots[i].key != key {
            i = (i + 1) & mask;
        }
        i
    }

    fn find(&self, key: u64) -> Option<&Cached> {
        if self.slots.is_empty() {
            return None;
        }
        self.slots[self.probe(key)].entry.as_ref()
    }

    fn find_mut(&mut self, key: u64) -> Option<&mut Cached> {
        if self.slots.is_empty() {
            return None;
        }
        let i = self.probe(key);
        self.slots[i].entry.as_mut()
    }

    /// Inserts or replaces the entry of `key`.
    fn put(&mut self, key: u64, entry: Cached) {
        if (self.len + 1) * 2 > self.slots.len() {
            let old = std::mem::take(&mut self.slots);
            self.slots = vec![Slot::default(); (old.len() * 2).max(1024)];
            self.len = 0;
            for s in old {
                if let Some(e) = s.entry {
                    self.put(s.key, e);
                }
            }
        }
        let i = self.probe(key);
        let s = &mut self.slots[i];
        if s.entry.is_none() {
            self.len += 1;
        }
        *s = Slot {
            key,
            entry: Some(entry),
        };
    }
}

impl LabelCache {
    /// A cache of at most `max` label sets.
    pub fn new(max: usize) -> Self {
        LabelCache {
            table: RwLock::default(),
            max: max.max(1),
        }
    }

    /// The entry of each of `keys` for which `same(i, labels)` confirms
    /// that the cached labels are those of the request's series `i`.
    pub fn lookup(
        &self,
        keys: &[u64],
        same: impl Fn(usize, &Labels) -> bool,
    ) -> Vec<Option<Cached>> {
        // Slots two steps ahead, label bytes (found in slots prefetched
        // one step ago) one step ahead.
        const AHEAD: usize = 8;
        let t = self.table.read();
        if t.slots.is_empty() {
            return vec![None; keys.len()];
        }
        let slot = |i: usize| keys.get(i).map(|&k| &t.slots[t.home(k)]);
        (0..keys.len())
            .map(|i| {
                if let Some(s) = slot(i + 2 * AHEAD) {
                    prefetch(s);
                }
                if let Some(Slot {
                    entry: Some((l, _)),
                    ..
                }) = slot(i + AHEAD)
                {
                    prefetch(l.as_bytes().as_ptr());
                }
                t.find(keys[i]).filter(|e| same(i, &e.0)).cloned()
            })
            .collect()
    }

    /// Adds label sets under their keys (replacing what a key held).
    pub fn insert(&self, items: Vec<(u64, Labels)>) {
        if items.is_empty() {
            return;
        }
        let mut t = self.table.write();
        if t.len + items.len() > self.max {
            *t = Table::default();
        }
        for (key, labels) in items {
            t.put(key, (labels, None));
        }
    }

    /// Records the head reference a write handed back for each series
    /// `(key, labels, reference)`, where the entry still holds those labels.
    pub fn set_refs<'a>(
        &self,
        changed: impl Iterator<Item = (u64, &'a Labels, Option<SeriesRef>)>,
    ) {
        let mut changed = changed.peekable();
        if changed.peek().is_none() {
            return;
        }
        let mut t = self.table.write();
        for (key, labels, r) in changed {
            if let Some(e) = t.find_mut(key)
                && e.0 == *labels
            {
                e.1 = r;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_fits_a_cache_line() {
        assert!(std::mem::size_of::<Slot>() <= 32);
    }

    fn labels(i: usize) -> Labels {
        Labels::new([("__name__", "m"), ("i", &i.to_string())]).unwrap()
    }

    #[test]
    fn finds_what_was_put_and_respects_the_check() {
        let c = LabelCache::new(10_000);
        // Keys that share a home slot probe past each other.
        let keys: Vec<u64> = (0..3000).map(|i| i as u64 * 1024).collect();
        c.insert(
            keys.iter()
                .enumerate()
                .map(|(i, &k)| (k, labels(i)))
                .collect(),
        );
        let got = c.lookup(&keys, |_, _| true);
        for (i, e) in got.iter().enumerate() {
            assert_eq!(e.as_ref().map(|e| &e.0), Some(&labels(i)));
        }
        assert!(c.lookup(&[7], |_, _| true)[0].is_none());
        assert!(c.lookup(&keys[..1], |_, _| false)[0].is_none());
    }

    #[test]
    fn empties_at_its_bound() {
        let c = LabelCache::new(100);
        c.insert((0..100).map(|i| (i as u64, labels(i))).collect());
        assert!(c.lookup(&[5], |_, _| true)[0].is_some());
        c.insert(vec![(1000, labels(1000))]);
        assert!(c.lookup(&[5], |_, _| true)[0].is_none());
        assert!(c.lookup(&[1000], |_, _| true)[0].is_some());
    }
}
