//! A block's trace table: which rows of its `logs` or `spans` file may
//! belong to a trace, behind a Bloom filter of the whole ids held in
//! memory, so looking a trace up in a block that lacks it costs a few
//! hashes and touches no page.
//!
//! From version 5 the entries are grouped by trace
//! ([`crate::codec::trace_rows`]), memory-mapped, a bucket decoded a
//! lookup. Version 4 wrote `(key, row)` pairs sorted, the key being the
//! id's first [`KEY_LEN`] bytes, searched by bisection; versions before
//! it keyed by the whole id. Every layout gives candidates: the records
//! hold the whole id, and readers check it there.
//!
//! ```text
//! body = bloom | trace rows                               (version 5)
//! body = bloom | count u32le | (key [key_len] | row u32le) * count
//! ```

use std::path::{Path, PathBuf};

use sextant_index::Bloom;
use sextant_wal::{Mapped, Vfs};

use super::file::{self, HEADER_LEN};
use crate::codec::trace_rows::{self, TraceRows};
use crate::error::{Error, Result};
use crate::model::TraceId;

/// Bytes of an id that key the table in version 4.
const KEY_LEN: usize = 4;
/// Key bytes in tables written before version 4: the whole id.
const OLD_KEY_LEN: usize = 16;

/// Serialises a trace table from `(trace, row)` pairs (any order; rows
/// without a trace must be left out).
pub(crate) fn encode(mut entries: Vec<(TraceId, u32)>, magic: &[u8; 4]) -> Vec<u8> {
    let mut rows = Vec::with_capacity(entries.len() * 3 + 16);
    // Sorts the entries by trace: the filter's distinct ids come from the
    // same order, not from a second sort.
    trace_rows::encode(&mut entries, &mut rows);
    let mut distinct: Vec<&[u8]> = entries.iter().map(|(t, _)| &t[..]).collect();
    distinct.dedup();
    let mut body = Vec::with_capacity(distinct.len() * 2 + rows.len() + 16);
    Bloom::build(distinct.into_iter()).encode(&mut body);
    body.extend_from_slice(&rows);
    file::seal(magic, &body)
}

/// How the entries are laid out.
#[derive(Debug)]
enum Entries {
    /// Grouped by trace (version 5 on); `at` is where they start in the map.
    Grouped { rows: TraceRows, at: usize },
    /// Sorted `(key, row)` pairs of `key_len`-byte keys (versions 1 to 4).
    Pairs {
        start: usize,
        count: usize,
        key_len: usize,
    },
}

/// An opened trace table.
#[derive(Debug)]
pub(crate) struct TraceTable {
    bloom: Bloom,
    map: Mapped,
    entries: Entries,
    path: PathBuf,
    magic: [u8; 4],
}

impl TraceTable {
    pub(crate) fn open(vfs: &dyn Vfs, path: &Path, magic: &[u8; 4]) -> Result<Self> {
        let map = vfs.map(path).map_err(|e| Error::io("mmap", path, e))?;
        let body = file::unseal(&map, magic, path, false)?;
        let version = file::version(&map);
        let bad = |what: &str| Error::corrupt(path, what);
        let (bloom, used) = Bloom::decode(body).map_err(|e| bad(&e.to_string()))?;
        let entries = if version >= 5 {
            let rows = TraceRows::parse(&body[used..]).map_err(|e| bad(&e))?;
            Entries::Grouped {
                rows,
                at: HEADER_LEN + used,
            }
        } else {
            let key_len = if version < 4 { OLD_KEY_LEN } else { KEY_LEN };
            let count = body
                .get(used..used + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| bad("truncated"))? as usize;
            if Some(body.len()) != count.checked_mul(key_len + 4).map(|n| n + used + 4) {
                return Err(bad("entry count does not match the file size"));
            }
            Entries::Pairs {
                start: HEADER_LEN + used + 4,
                count,
                key_len,
            }
        };
        Ok(TraceTable {
            bloom,
            map,
            entries,
            path: path.to_path_buf(),
            magic: *magic,
        })
    }

    /// Rows that may hold `trace` (all that do), ascending: the caller
    /// checks the id of each record.
    pub(crate) fn rows(&self, trace: &TraceId) -> Result<Vec<u32>> {
        if !self.bloom.may_contain(trace) {
            return Ok(Vec::new());
        }
        match self.entries {
            Entries::Grouped { rows, at } => {
                let body = &self.map[at..self.map.len() - file::FOOTER_LEN];
                rows.lookup(body, trace)
                    .map_err(|e| Error::corrupt(&self.path, e))
            }
            Entries::Pairs {
                start,
                count,
                key_len,
            } => {
                let entry = |i: usize| {
                    let e = &self.map[start + i * (key_len + 4)..start + (i + 1) * (key_len + 4)];
                    let (key, row) = e.split_at(key_len);
                    (key, u32::from_le_bytes([row[0], row[1], row[2], row[3]]))
                };
                let key = &trace[..key_len];
                let (mut lo, mut hi) = (0, count);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if entry(mid).0 < key {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                Ok((lo..count)
                    .map(entry)
                    .take_while(|(k, _)| *k == key)
                    .map(|(_, r)| r)
                    .collect())
            }
        }
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    pub(crate) fn verify(&self) -> Result<()> {
        file::unseal(&self.map, &self.magic, &self.path, true).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sextant_wal::StdFs;

    use super::*;

    /// A table as blocks before version 5 wrote it: `(key, row)` pairs,
    /// keys of `key_len` bytes (the whole id before version 4).
    fn encode_pairs(mut entries: Vec<(TraceId, u32)>, key_len: usize, version: u16) -> Vec<u8> {
        let mut distinct: Vec<TraceId> = entries.iter().map(|(t, _)| *t).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut body = Vec::new();
        Bloom::build(distinct.iter().map(|t| &t[..])).encode(&mut body);
        entries.sort_unstable_by(|a, b| (&a.0[..key_len], a.1).cmp(&(&b.0[..key_len], b.1)));
        body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (t, row) in &entries {
            body.extend_from_slice(&t[..key_len]);
            body.extend_from_slice(&row.to_le_bytes());
        }
        let mut out = file::seal(b"SXLT", &body);
        out[4..6].copy_from_slice(&version.to_le_bytes());
        out
    }

    fn open(bytes: &[u8]) -> Result<TraceTable> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, bytes).unwrap();
        TraceTable::open(&StdFs, &path, b"SXLT")
    }

    /// Ids from a few keys, so traces share keys.
    fn id() -> impl Strategy<Value = TraceId> {
        (0u8..3, any::<[u8; 4]>()).prop_map(|(k, tail)| {
            let mut t = [0u8; 16];
            t[..4].copy_from_slice(&[k; 4]);
            t[12..].copy_from_slice(&tail);
            t
        })
    }

    proptest! {
        /// Every row of a trace is among its candidates, and every
        /// candidate shares the bytes its layout keys by: the
        /// fingerprint (version 5), the first 4 (version 4) or all.
        #[test]
        fn rows_of_a_trace_are_all_found(
            pairs in prop::collection::btree_set((id(), 0u32..1000), 0..200),
            other in id(),
        ) {
            let entries: Vec<_> = pairs.into_iter().collect();
            for (bytes, keyed) in [
                (encode(entries.clone(), b"SXLT"), 4..6),
                (encode_pairs(entries.clone(), KEY_LEN, 4), 0..KEY_LEN),
                (encode_pairs(entries.clone(), OLD_KEY_LEN, 3), 0..OLD_KEY_LEN),
            ] {
                let table = open(&bytes).unwrap();
                for (t, row) in &entries {
                    let rows = table.rows(t).unwrap();
                    prop_assert!(rows.contains(row));
                    prop_assert!(rows.windows(2).all(|w| w[0] <= w[1]));
                    for r in rows {
                        prop_assert!(entries.iter().any(|(u, q)| *q == r && u[keyed.clone()] == t[keyed.clone()]));
                    }
                }
                if !entries.iter().any(|(t, _)| *t == other) {
                    for r in table.rows(&other).unwrap() {
                        prop_assert!(entries.iter().any(|(u, q)| *q == r && u[keyed.clone()] == other[keyed.clone()]));
                    }
                }
            }
        }

        /// Cut or altered tables open to an error or answer without
        /// panicking.
        #[test]
        fn damaged_tables_never_panic(
            pairs in prop::collection::btree_set((id(), any::<u32>()), 0..50),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let entries: Vec<_> = pairs.into_iter().collect();
            let good = encode(entries.clone(), b"SXLT");
            let mut short = good.clone();
            short.truncate(cut.index(good.len()));
            prop_assert!(open(&short).is_err());
            let mut bad = good.clone();
            bad[flip.index(good.len())] ^= 0x41;
            if let Ok(t) = open(&bad) {
                for (id, _) in &entries {
                    let _ = t.rows(id);
                }
                let _ = t.verify();
            }
        }
    }
}
