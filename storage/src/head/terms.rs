//! The head's term postings: term → rows holding it, ascending.
//!
//! A head of a million log lines holds millions of distinct terms, most
//! in one row (request ids, addresses, paths with ids). So terms live in
//! one text arena instead of a `String` each, a term's first row is kept
//! inline (no vector until a second row), and the table stores each
//! term's hash: growing it never reads the terms again.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// A term: where its text is in the arena, its first row, and where its
/// later rows are (24 bytes: the table of a large head is mostly cache
/// misses, fewer the smaller it is).
struct Entry {
    /// The high half of the term's hash (see [`TermTable::spread`]).
    hash: u32,
    len: u32,
    at: u64,
    first: u32,
    /// Index of the term's later rows in [`TermTable::more`], or [`NONE`].
    more: u32,
}

const NONE: u32 = u32::MAX;

/// Term → rows.
#[derive(Default)]
pub(crate) struct TermTable {
    text: String,
    table: HashTable<Entry>,
    more: Vec<Vec<u32>>,
}

impl TermTable {
    fn hash(term: &str) -> u32 {
        (FxBuildHasher.hash_one(term) >> 32) as u32
    }

    /// The table's hash of a stored 32-bit hash: multiplied out so the
    /// bucket (low bits) and tag (high bits) both vary.
    fn spread(h: u32) -> u64 {
        u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn term(&self, e: &Entry) -> &str {
        &self.text[e.at as usize..e.at as usize + e.len as usize]
    }

    /// Notes that `row` holds `term` (rows come in ascending order; a
    /// term twice in one row is one posting). Returns the bytes this
    /// added, for the head's size.
    pub(crate) fn add(&mut self, term: &str, row: u32) -> usize {
        let hash = Self::hash(term);
        let text = &self.text;
        let found = self.table.find_mut(Self::spread(hash), |e| {
            e.hash == hash && &text[e.at as usize..e.at as usize + e.len as usize] == term
        });
        match found {
            Some(e) if e.more == NONE => {
                if e.first == row {
                    return 0;
                }
                e.more = self.more.len() as u32;
                self.more.push(vec![row]);
                4
            }
            Some(e) => {
                let more = &mut self.more[e.more as usize];
                if more.last() == Some(&row) {
                    return 0;
                }
                more.push(row);
                4
            }
            None => {
                let at = self.text.len() as u64;
                self.text.push_str(term);
                let e = Entry {
                    hash,
                    len: term.len() as u32,
                    at,
                    first: row,
                    more: NONE,
                };
                self.table
                    .insert_unique(Self::spread(hash), e, |e| Self::spread(e.hash));
                term.len() + std::mem::size_of::<Entry>()
            }
        }
    }

    fn rows(&self, e: &Entry) -> impl Iterator<Item = u32> + '_ {
        let more = self
            .more
            .get(e.more as usize)
            .map_or(&[][..], Vec::as_slice);
        std::iter::once(e.first).chain(more.iter().copied())
    }

    /// The rows holding `term`, ascending.
    pub(crate) fn get(&self, term: &str) -> Option<impl Iterator<Item = u32> + '_> {
        let hash = Self::hash(term);
        self.table
            .find(Self::spread(hash), |e| {
                e.hash == hash && self.term(e) == term
            })
            .map(|e| self.rows(e))
    }

    /// Every term with its rows (ascending), terms in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = u32> + '_)> {
        self.table.iter().map(|e| (self.term(e), self.rows(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_keep_their_rows() {
        let mut t = TermTable::default();
        for row in 0..1000u32 {
            t.add(&format!("id-{row}"), row);
            t.add("common", row);
            t.add("common", row);
            if row % 7 == 0 {
                t.add("seventh", row);
            }
        }
        assert_eq!(t.get("id-5").unwrap().collect::<Vec<_>>(), [5]);
        assert!(t.get("common").unwrap().eq(0..1000));
        assert!(t.get("seventh").unwrap().eq((0..1000).step_by(7)));
        assert!(t.get("absent").is_none());
        assert_eq!(t.iter().count(), 1002);
    }
}
