//! A block's trace table: which rows of its `logs` or `spans` file belong to
//! a trace. Sorted `(trace id, row)` entries, memory-mapped and searched by
//! bisection, behind a Bloom filter held in memory, so looking a trace up
//! in a block that lacks it costs a few hashes and touches no page.
//!
//! ```text
//! body = bloom | count u32le | (trace_id [16] | row u32le) * count
//! ```

use std::path::{Path, PathBuf};

use sextant_index::Bloom;
use sextant_wal::{Mapped, Vfs};

use super::file::{self, HEADER_LEN};
use crate::error::{Error, Result};
use crate::model::TraceId;

const ENTRY: usize = 20;

/// Serialises a trace table from `(trace, row)` pairs (any order; rows
/// without a trace must be left out).
pub(crate) fn encode(mut entries: Vec<(TraceId, u32)>, magic: &[u8; 4]) -> Vec<u8> {
    entries.sort_unstable();
    let mut distinct: Vec<&[u8]> = entries.iter().map(|(t, _)| &t[..]).collect();
    distinct.dedup();
    let mut body = Vec::with_capacity(entries.len() * ENTRY + distinct.len() * 2 + 16);
    Bloom::build(distinct.into_iter()).encode(&mut body);
    body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (t, row) in &entries {
        body.extend_from_slice(t);
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
    path: PathBuf,
    magic: [u8; 4],
}

impl TraceTable {
    pub(crate) fn open(vfs: &dyn Vfs, path: &Path, magic: &[u8; 4]) -> Result<Self> {
        let map = vfs.map(path).map_err(|e| Error::io("mmap", path, e))?;
        let body = file::unseal(&map, magic, path, false)?;
        let bad = |what: &str| Error::corrupt(path, what);
        let (bloom, used) = Bloom::decode(body).map_err(|e| bad(&e.to_string()))?;
        let count = body
            .get(used..used + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("truncated"))? as usize;
        if body.len() != used + 4 + count * ENTRY {
            return Err(bad("entry count does not match the file size"));
        }
        Ok(TraceTable {
            bloom,
            start: HEADER_LEN + used + 4,
            count,
            map,
            path: path.to_path_buf(),
            magic: *magic,
        })
    }

    fn entry(&self, i: usize) -> (&[u8], u32) {
        let e = &self.map[self.start + i * ENTRY..self.start + (i + 1) * ENTRY];
        (&e[..16], u32::from_le_bytes([e[16], e[17], e[18], e[19]]))
    }

    /// Rows of `trace`, ascending.
    pub(crate) fn rows(&self, trace: &TraceId) -> Vec<u32> {
        if !self.bloom.may_contain(trace) {
            return Vec::new();
        }
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).0 < &trace[..] {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.count)
            .map(|i| self.entry(i))
            .take_while(|(t, _)| *t == &trace[..])
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
