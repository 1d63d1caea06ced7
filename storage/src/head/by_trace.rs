//! The head's trace → rows index, for trace-id lookups of records not yet
//! flushed.
//!
//! Nearly every log line of a traced estate carries a trace of its own
//! or of a few lines, so a head of a million lines indexes most of a
//! million traces, and each write inserts one key a line into a table far
//! larger than the CPU's caches. A `HashMap<TraceId, Ascending>` took a
//! cache miss per line, one after another (8% of the log write path at
//! 10M demo lines). So, as the head's term table does
//! ([`super::terms`]):
//!
//! - slots are 16 bytes (a 64-bit hash of the trace id, its first row,
//!   its last further row), in one array probed linearly;
//! - the further rows of a trace are a chain of links, newest first, in
//!   one pool: no allocation a trace;
//! - a batch's keys are inserted together, prefetching the slot of the key
//!   [`AHEAD`] on, so the misses overlap.
//!
//! Slots hold hashes, not trace ids: two traces whose ids hash alike share
//! a slot, and [`ByTrace::rows`] may give rows of either. The caller keeps
//! the rows whose record has the trace asked for.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use super::slots::{self, FIRST_SLOTS, Homes};
use crate::model::TraceId;
use crate::prefetch;

/// How many keys ahead a slot is prefetched.
const AHEAD: usize = 16;
/// The key of an empty slot ([`key`] never gives it).
const EMPTY: u64 = 0;
/// No further row: a slot's `last` or a link's `prev`.
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Slot {
    key: u64,
    first: u32,
    /// The link of its last further row, or [`NONE`].
    last: u32,
}

const VACANT: Slot = Slot {
    key: EMPTY,
    first: 0,
    last: NONE,
};

/// A further row of a trace: the row, and the link of the row before it
/// (after the first), or [`NONE`].
#[derive(Clone, Copy)]
struct Link {
    row: u32,
    prev: u32,
}

/// The key a trace is inserted and found by: never [`EMPTY`].
pub(crate) fn key(trace: &TraceId) -> u64 {
    FxBuildHasher.hash_one(trace) | 1
}

/// Trace (by its [`key`]) → rows.
pub(crate) struct ByTrace {
    slots: Vec<Slot>,
    links: Vec<Link>,
    homes: Homes,
    keys: usize,
}

impl Default for ByTrace {
    fn default() -> Self {
        ByTrace {
            slots: vec![VACANT; FIRST_SLOTS],
            links: Vec::new(),
            homes: Homes::of(FIRST_SLOTS),
            keys: 0,
        }
    }
}

impl ByTrace {
    fn home(&self, key: u64) -> usize {
        self.homes.home(key)
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: u64) -> usize {
        slots::probe(self.home(key), self.slots.len(), |i| {
            self.slots[i].key == EMPTY || self.slots[i].key == key
        })
    }

    /// Adds rows by their traces' [`key`]s, rows ascending through the
    /// batch and above every row added before.
    pub(crate) fn add(&mut self, batch: &[(u64, u32)]) {
        // Room for the batch without passing the load limit.
        slots::reserve(
            &mut self.slots,
            &mut self.homes,
            (self.keys, batch.len()),
            VACANT,
            |s| (s.key != EMPTY).then_some(s.key),
        );
        for (j, &(key, row)) in batch.iter().enumerate() {
            if let Some(&(ahead, _)) = batch.get(j + AHEAD) {
                prefetch(&self.slots[self.home(ahead)]);
            }
            let i = self.find(key);
            let s = &mut self.slots[i];
            if s.key == EMPTY {
                *s = Slot {
                    key,
                    first: row,
                    last: NONE,
                };
                self.keys += 1;
            } else {
                self.links.push(Link { row, prev: s.last });
                s.last = (self.links.len() - 1) as u32;
            }
        }
    }

    /// The rows added under `trace`'s key, ascending: its own, and those
    /// of any trace whose key is the same.
    pub(crate) fn rows(&self, trace: &TraceId) -> Vec<u32> {
        let s = self.slots[self.find(key(trace))];
        if s.key == EMPTY {
            return Vec::new();
        }
        let mut rows = vec![s.first];
        let mut at = s.last;
        while let Some(l) = self.links.get(at as usize) {
            rows.push(l.row);
            at = l.prev;
        }
        // The first, then the further rows newest first.
        rows[1..].reverse();
        rows
    }

    /// Bytes held, for the head's size.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.links.capacity() * std::mem::size_of::<Link>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever the batches, a trace's rows are every row added under
        /// it, ascending (checked against a plain map; the few traces are
        /// distinct keys here).
        #[test]
        fn rows_are_what_was_added(
            batches in proptest::collection::vec(
                proptest::collection::vec(0u8..40, 0..60), 0..12),
        ) {
            let mut t = ByTrace::default();
            let mut want: std::collections::BTreeMap<u8, Vec<u32>> = Default::default();
            let mut row = 0u32;
            for traces in &batches {
                let batch: Vec<(u64, u32)> = traces
                    .iter()
                    .map(|&n| {
                        want.entry(n).or_default().push(row);
                        row += 1;
                        (key(&[n; 16]), row - 1)
                    })
                    .collect();
                t.add(&batch);
            }
            for n in 0u8..40 {
                proptest::prop_assert_eq!(t.rows(&[n; 16]), want.get(&n).cloned().unwrap_or_default());
            }
        }
    }
}
