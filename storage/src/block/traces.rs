//! A block's trace table: which rows of its `logs` or `spans` file may
//! belong to a trace. Sorted `(key, row)` entries, memory-mapped and
//! searched by bisection, behind a Bloom filter of the whole ids held in
//! memory, so looking a trace up in a block that lacks it costs a few
//! hashes and touches no page.
//!
//! The key is the id's first [`KEY_LEN`] bytes: the records hold the whole
//! id, so readers check it there, and a table of whole ids repeated every
//! id a second time (10 bytes a log line, more than its index of terms).
//! Two traces of a block share a key about once in 10⁴ lookups; the cost
//! is a frame read for nothing. Tables written before version 4 key by
//! the whole id and still read.
//!
//! ```text
//! body = bloom | count u32le | (key [KEY_LEN] | row u32le) * count
//! ```

use std::path::{Path, PathBuf};

use sextant_index::Bloom;
use sextant_wal::{Mapped, Vfs};

use super::file::{self, HEADER_LEN};
use crate::error::{Error, Result};
use crate::model::TraceId;

/// Bytes of an id that key the table.
const KEY_LEN: usize = 4;
/// Key bytes in tables written before version 4: the whole id.
const OLD_KEY_LEN: usize = 16;

/// Serialises a trace table from `(trace, row)` pairs (any order; rows
/// without a trace must be left out).
pub(crate) fn encode(mut entries: Vec<(TraceId, u32)>, magic: &[u8; 4]) -> Vec<u8> {
    entries.sort_unstable();
    let mut distinct: Vec<&[u8]> = entries.iter().map(|(t, _)| &t[..]).collect();
    distinct.dedup();
    let mut body = Vec::with_capacity(entries.len() * (KEY_LEN + 4) + distinct.len() * 2 + 16);
    Bloom::build(distinct.into_iter()).encode(&mut body);
    body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    // Sorted by whole id, so by key, and rows ascending within a key.
    let mut keyed: Vec<([u8; KEY_LEN], u32)> = entries
        .iter()
        .map(|(t, row)| {
            let mut k = [0; KEY_LEN];
            k.copy_from_slice(&t[..KEY_LEN]);
            (k, *row)
        })
        .collect();
    keyed.sort_unstable();
    for (k, row) in &keyed {
        body.extend_from_slice(k);
        body.extend_from_slice(&row.to_le_bytes());
    }
    file::seal(magic, &body)
}

/// An opened trace table.
#[derive(Debug)]
pub(crate) struct TraceTable {
    bloom: Bloom,
    map: Mapped,
    /// Offset of the first entry in `map`.
    start: usize,
    count: usize,
    /// Bytes of an entry's key.
    key_len: usize,
    path: PathBuf,
    magic: [u8; 4],
}

impl TraceTable {
    pub(crate) fn open(vfs: &dyn Vfs, path: &Path, magic: &[u8; 4]) -> Result<Self> {
        let map = vfs.map(path).map_err(|e| Error::io("mmap", path, e))?;
        let body = file::unseal(&map, magic, path, false)?;
        let key_len = if file::version(&map) < 4 {
            OLD_KEY_LEN
        } else {
            KEY_LEN
        };
        let bad = |what: &str| Error::corrupt(path, what);
        let (bloom, used) = Bloom::decode(body).map_err(|e| bad(&e.to_string()))?;
        let count = body
            .get(used..used + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("truncated"))? as usize;
        if Some(body.len()) != count.checked_mul(key_len + 4).map(|n| n + used + 4) {
            return Err(bad("entry count does not match the file size"));
        }
        Ok(TraceTable {
            bloom,
            start: HEADER_LEN + used + 4,
            count,
            key_len,
            map,
            path: path.to_path_buf(),
            magic: *magic,
        })
    }

    fn entry(&self, i: usize) -> (&[u8], u32) {
        let len = self.key_len + 4;
        let e = &self.map[self.start + i * len..self.start + (i + 1) * len];
        let (key, row) = e.split_at(self.key_len);
        (key, u32::from_le_bytes([row[0], row[1], row[2], row[3]]))
    }

    /// Rows that may hold `trace` (all that do), ascending: the caller
    /// checks the id of each record.
    pub(crate) fn rows(&self, trace: &TraceId) -> Vec<u32> {
        if !self.bloom.may_contain(trace) {
            return Vec::new();
        }
        let key = &trace[..self.key_len];
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).0 < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.count)
            .map(|i| self.entry(i))
            .take_while(|(k, _)| *k == key)
            .map(|(_, r)| r)
            .collect()
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

    /// A table as blocks before version 4 wrote it: whole ids as keys.
    fn encode_v3(mut entries: Vec<(TraceId, u32)>) -> Vec<u8> {
        entries.sort_unstable();
        let mut distinct: Vec<&[u8]> = entries.iter().map(|(t, _)| &t[..]).collect();
        distinct.dedup();
        let mut body = Vec::new();
        Bloom::build(distinct.into_iter()).encode(&mut body);
        body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (t, row) in &entries {
            body.extend_from_slice(t);
            body.extend_from_slice(&row.to_le_bytes());
        }
        let mut out = file::seal(b"SXLT", &body);
        out[4..6].copy_from_slice(&3u16.to_le_bytes());
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
        /// candidate shares its key (the whole id in old tables).
        #[test]
        fn rows_of_a_trace_are_all_found(
            entries in prop::collection::vec((id(), 0u32..1000), 0..200),
            other in id(),
        ) {
            for (bytes, key_len) in [(encode(entries.clone(), b"SXLT"), KEY_LEN), (encode_v3(entries.clone()), OLD_KEY_LEN)] {
                let table = open(&bytes).unwrap();
                for (t, row) in &entries {
                    let rows = table.rows(t);
                    prop_assert!(rows.contains(row));
                    prop_assert!(rows.windows(2).all(|w| w[0] <= w[1]));
                    for r in rows {
                        prop_assert!(entries.iter().any(|(u, q)| *q == r && u[..key_len] == t[..key_len]));
                    }
                }
                if !entries.iter().any(|(t, _)| *t == other) {
                    for r in table.rows(&other) {
                        prop_assert!(entries.iter().any(|(u, q)| *q == r && u[..key_len] == other[..key_len]));
                    }
                }
            }
        }

        /// Cut or altered tables open to an error or answer without
        /// panicking.
        #[test]
        fn damaged_tables_never_panic(
            entries in prop::collection::vec((id(), any::<u32>()), 0..50),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
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
