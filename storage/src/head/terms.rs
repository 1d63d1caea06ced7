//! The head's term postings: term → rows holding it, ascending.
//!
//! A head of a million log lines holds millions of distinct terms, most
//! in one row (request ids, addresses, paths with ids), and every write
//! looks up some fifty terms a line. Looked up one after another, each
//! lookup of a rare term is two or three cache misses in a row (slot,
//! then text), and that was the largest cost of log ingest. So:
//!
//! - terms live in one text arena, not a `String` each;
//! - slots (32-bit hash, text position, first row inline, where the later
//!   rows are) sit in one open-addressed array probed linearly, 32 bytes
//!   each;
//! - the later rows of all terms share one pool of `u32` cells, in slices
//!   that double in size up to [`MAX_SLICE`] cells, each ending in the
//!   index of the next: a term seen twice costs no allocation of its own,
//!   and a flush frees the pool in a few pieces. With a vector a term,
//!   slots were 48 bytes and ingest took 4–10% more CPU (2.5M synthetic
//!   lines). The pool is chunks of [`POOL_CHUNK`] cells, each allocated
//!   once: one vector doubled its way up, copied each time, and the
//!   copies were 3% of the write path at 10M demo lines;
//! - a write adds a whole batch of terms with their hashes computed
//!   beforehand, prefetching the slot of the term [`AHEAD`] terms on, and
//!   the text and the end of the row list of the term half as far on, so
//!   the misses overlap instead of following each other.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use super::slots::{self, FIRST_SLOTS, Homes, MAX_LOAD_TENTHS};
use crate::prefetch;

/// How many terms ahead the slot is prefetched.
const AHEAD: usize = 16;
/// No term: the `len` of an empty slot.
const EMPTY: u32 = u32::MAX;
/// Rows of a term's first slice in the pool.
const FIRST_SLICE: u32 = 3;
/// Rows of the largest slices.
const MAX_SLICE: u32 = 255;
/// Bits of a cell's place in its pool chunk.
const POOL_CHUNK_BITS: u32 = 16;
/// Cells of a pool chunk (256 KiB): far more than a slice, which never
/// straddles two.
const POOL_CHUNK: u32 = 1 << POOL_CHUNK_BITS;

#[derive(Clone)]
struct Slot {
    hash: u32,
    /// Bytes of the term, or [`EMPTY`].
    len: u32,
    /// Where the term starts in the arena.
    at: u64,
    /// Its first row.
    first: u32,
    /// Where its first slice starts in the pool (0: none, one row).
    head: u32,
    /// The pool cell its next row goes to (0: none yet).
    tail: u32,
    /// The cell ending its last slice: that slice's row count until the
    /// slice is full, then the start of the next slice.
    end: u32,
}

const VACANT: Slot = Slot {
    hash: 0,
    len: EMPTY,
    at: 0,
    first: 0,
    head: 0,
    tail: 0,
    end: 0,
};

/// A term to add, with its [`TermTable::hash`] and its record's place in
/// the batch.
pub(crate) struct Pending<'t> {
    pub(crate) term: &'t str,
    pub(crate) hash: u32,
    pub(crate) record: u32,
}

/// Term → rows.
pub(crate) struct TermTable {
    text: String,
    slots: Vec<Slot>,
    /// Rows after the first, in slices (cell 0 unused: 0 means none).
    pool: Pool,
    homes: Homes,
    terms: usize,
}

impl Default for TermTable {
    fn default() -> Self {
        TermTable {
            text: String::new(),
            slots: vec![VACANT; FIRST_SLOTS],
            pool: Pool::default(),
            homes: Homes::of(FIRST_SLOTS),
            terms: 0,
        }
    }
}

/// `u32` cells in chunks of [`POOL_CHUNK`], addressed by a `u32`.
struct Pool {
    chunks: Vec<Box<[u32]>>,
    /// Cells handed out (cell 0 never is).
    len: u32,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            chunks: Vec::new(),
            len: 1,
        }
    }
}

impl std::ops::Index<u32> for Pool {
    type Output = u32;
    fn index(&self, i: u32) -> &u32 {
        &self.chunks[(i >> POOL_CHUNK_BITS) as usize][(i % POOL_CHUNK) as usize]
    }
}

impl std::ops::IndexMut<u32> for Pool {
    fn index_mut(&mut self, i: u32) -> &mut u32 {
        &mut self.chunks[(i >> POOL_CHUNK_BITS) as usize][(i % POOL_CHUNK) as usize]
    }
}

impl Pool {
    /// Asks the CPU for cell `i`, if handed out (0: none, nothing).
    fn prefetch(&self, i: u32) {
        if i != 0
            && let Some(c) = self.chunks.get((i >> POOL_CHUNK_BITS) as usize)
        {
            prefetch(c.as_ptr().wrapping_add((i % POOL_CHUNK) as usize));
        }
    }

    /// Appends a slice of `rows` rows, in one chunk; returns its start and
    /// its end cell, which holds `rows` until the slice is full. (A head
    /// is flushed by its bytes long before the pool nears 2³² cells, 16
    /// GiB.)
    fn new_slice(&mut self, rows: u32) -> (u32, u32) {
        let mut start = self.len;
        if start % POOL_CHUNK + rows + 1 > POOL_CHUNK {
            start = (start | (POOL_CHUNK - 1)) + 1;
        }
        self.len = start + rows + 1;
        while self.chunks.len() <= (start >> POOL_CHUNK_BITS) as usize {
            self.chunks
                .push(vec![0; POOL_CHUNK as usize].into_boxed_slice());
        }
        self[start + rows] = rows;
        (start, start + rows)
    }
}

/// Rows of the slice after one of `rows` rows.
fn next_slice(rows: u32) -> u32 {
    (rows * 2 + 1).min(MAX_SLICE)
}

impl TermTable {
    /// The hash a term is added and found by.
    pub(crate) fn hash(term: &str) -> u32 {
        (FxBuildHasher.hash_one(term) >> 32) as u32
    }

    fn home(&self, hash: u32) -> usize {
        self.homes.home(u64::from(hash))
    }

    fn term(&self, s: &Slot) -> &str {
        &self.text[s.at as usize..s.at as usize + s.len as usize]
    }

    /// The slot holding `term`, or the empty slot where it would go.
    fn find(&self, term: &str, hash: u32) -> usize {
        slots::probe(self.home(hash), self.slots.len(), |i| {
            let s = &self.slots[i];
            s.len == EMPTY || (s.hash == hash && self.term(s) == term)
        })
    }

    /// Adds the terms of a batch of records, the first at row `first_row`
    /// (records ascending through `batch`; a term twice in one record is
    /// one posting). Returns the bytes this added, for the head's size.
    pub(crate) fn add(&mut self, batch: &[Pending<'_>], first_row: u32) -> usize {
        // Room for the batch without passing the load limit (terms
        // placed again by their stored hashes, their text not read).
        slots::reserve(
            &mut self.slots,
            &mut self.homes,
            (self.terms, batch.len()),
            VACANT,
            |s| (s.len != EMPTY).then_some(u64::from(s.hash)),
        );
        let mut bytes = 0;
        for (j, p) in batch.iter().enumerate() {
            if let Some(q) = batch.get(j + AHEAD) {
                // A slot may straddle two cache lines.
                let s: *const Slot = &self.slots[self.home(q.hash)];
                prefetch(s);
                prefetch(s.cast::<u8>().wrapping_add(std::mem::size_of::<Slot>() - 1));
            }
            if let Some(q) = batch.get(j + AHEAD / 2) {
                let s = &self.slots[self.home(q.hash)];
                if s.len != EMPTY {
                    prefetch(self.text.as_ptr().wrapping_add(s.at as usize));
                    self.pool.prefetch(s.tail);
                }
            }
            bytes += self.add_one(p.term, p.hash, first_row + p.record);
        }
        bytes
    }

    fn add_one(&mut self, term: &str, hash: u32, row: u32) -> usize {
        let i = self.find(term, hash);
        let s = &mut self.slots[i];
        if s.len == EMPTY {
            let at = self.text.len() as u64;
            self.text.push_str(term);
            *s = Slot {
                hash,
                len: term.len() as u32,
                at,
                first: row,
                ..VACANT
            };
            self.terms += 1;
            return term.len() + std::mem::size_of::<Slot>() * 10 / MAX_LOAD_TENTHS;
        }
        let last = if s.tail == 0 {
            s.first
        } else {
            self.pool[s.tail - 1]
        };
        if row == last {
            return 0;
        }
        let pool = &mut self.pool;
        // A slice for the row: the first, or the next when this one is
        // full (its end cell holds its row count until then).
        if s.tail == 0 {
            (s.head, s.end) = pool.new_slice(FIRST_SLICE);
            s.tail = s.head;
        } else if s.tail == s.end {
            let (start, end) = pool.new_slice(next_slice(pool[s.end]));
            pool[s.end] = start;
            (s.tail, s.end) = (start, end);
        }
        pool[s.tail] = row;
        s.tail += 1;
        4
    }

    /// The rows of slot `s`, ascending.
    fn rows<'a>(&'a self, s: &'a Slot) -> impl Iterator<Item = u32> + 'a {
        let (mut at, mut end, mut rows) = (s.head, s.head + FIRST_SLICE, FIRST_SLICE);
        std::iter::once(s.first).chain(std::iter::from_fn(move || {
            if at == s.tail {
                return None;
            }
            if at == end {
                at = self.pool[end];
                rows = next_slice(rows);
                end = at + rows;
            }
            at += 1;
            Some(self.pool[at - 1])
        }))
    }

    /// The rows holding `term`, ascending.
    pub(crate) fn get(&self, term: &str) -> Option<impl Iterator<Item = u32> + '_> {
        let s = &self.slots[self.find(term, Self::hash(term))];
        (s.len != EMPTY).then(|| self.rows(s))
    }

    /// Every term with its rows (ascending), terms in no order. The text
    /// and rows of the terms [`AHEAD`] slots on are prefetched: a flush
    /// reads every term, and they lie all over the arena.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = u32> + '_)> {
        (self.slots.iter().enumerate())
            .filter(|(_, s)| s.len != EMPTY)
            .map(|(k, s)| {
                if let Some(a) = self.slots.get(k + AHEAD)
                    && a.len != EMPTY
                {
                    prefetch(self.text.as_ptr().wrapping_add(a.at as usize));
                    self.pool.prefetch(a.head);
                }
                (self.term(s), self.rows(s))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(t: &mut TermTable, terms: &[(&str, u32)]) {
        let batch: Vec<Pending<'_>> = terms
            .iter()
            .map(|&(term, row)| Pending {
                term,
                hash: TermTable::hash(term),
                record: row,
            })
            .collect();
        t.add(&batch, 0);
    }

    #[test]
    fn terms_keep_their_rows() {
        let mut t = TermTable::default();
        let ids: Vec<String> = (0..1000).map(|r| format!("id-{r}")).collect();
        for chunk in (0..1000u32).collect::<Vec<_>>().chunks(37) {
            let mut batch = Vec::new();
            for &row in chunk {
                batch.extend([
                    (ids[row as usize].as_str(), row),
                    ("common", row),
                    ("common", row),
                ]);
                if row % 7 == 0 {
                    batch.push(("seventh", row));
                }
            }
            add(&mut t, &batch);
        }
        assert_eq!(t.get("id-5").unwrap().collect::<Vec<_>>(), [5]);
        assert!(t.get("common").unwrap().eq(0..1000));
        assert!(t.get("seventh").unwrap().eq((0..1000).step_by(7)));
        assert!(t.get("absent").is_none());
        assert_eq!(t.iter().count(), 1002);
    }

    /// Enough rows for the pool's slices to fill several chunks: every
    /// term keeps all its rows, whichever chunk each slice landed in.
    #[test]
    fn rows_cross_pool_chunks() {
        let mut t = TermTable::default();
        let terms: Vec<String> = (0..300).map(|i| format!("t{i}")).collect();
        for first in (0..700u32).step_by(50) {
            let batch: Vec<Pending<'_>> = (first..first + 50)
                .flat_map(|row| {
                    (terms.iter())
                        .filter(move |term| term.len() % 2 == 0 || row % 3 == 0)
                        .map(move |term| Pending {
                            term,
                            hash: TermTable::hash(term),
                            record: row - first,
                        })
                })
                .collect();
            t.add(&batch, first);
        }
        assert!(t.pool.chunks.len() >= 3);
        for term in &terms {
            let want: Vec<u32> = (0..700)
                .filter(|row| term.len() % 2 == 0 || row % 3 == 0)
                .collect();
            assert!(t.get(term).unwrap().eq(want), "{term}");
        }
    }

    proptest::proptest! {
        /// Whatever the batches, every term has exactly the rows it was
        /// added at, once each, ascending (checked against a plain map).
        #[test]
        fn rows_are_what_was_added(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec("[a-d]{0,3}|x[0-9]{1,4}", 0..8), 0..20),
                0..12),
        ) {
            let mut t = TermTable::default();
            let mut want: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
            let mut row = 0u32;
            for records in &batches {
                let mut batch = Vec::new();
                for (i, terms) in records.iter().enumerate() {
                    for term in terms {
                        batch.push(Pending { term, hash: TermTable::hash(term), record: i as u32 });
                        let rows = want.entry(term.clone()).or_default();
                        if rows.last() != Some(&(row + i as u32)) {
                            rows.push(row + i as u32);
                        }
                    }
                }
                t.add(&batch, row);
                row += records.len() as u32;
            }
            let got: std::collections::BTreeMap<String, Vec<u32>> =
                t.iter().map(|(k, rows)| (k.to_string(), rows.collect())).collect();
            proptest::prop_assert_eq!(&got, &want);
            for (k, rows) in &want {
                proptest::prop_assert_eq!(&t.get(k).unwrap().collect::<Vec<_>>(), rows);
            }
        }
    }
}
