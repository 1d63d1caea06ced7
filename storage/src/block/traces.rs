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
