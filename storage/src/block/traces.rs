//! A block's trace table: which rows of its `logs` or `spans` file may
//! belong to a trace, behind a Bloom filter of the whole ids held in
//! memory, so looking a trace up in a block that lacks it costs a few
//! hashes and touches no page.
//!
//! From version 5 the entries are grouped by trace
//! ([`crate::codec::trace_rows`]), memory-mapped, a bucket decoded a
//! lookup. From version 9 they list units of `2^unit_shift` rows instead
//! of rows: a unit is a frame of the record file (256 log records, 128
//! spans), which a lookup decompresses whole anyway and whose rows it
//! tells apart by their ids. A trace's rows in one frame are then one
//! value, and a value of a block of a million rows fits two varint bytes
//! instead of three: at 1M lines the synthetic corpus's log tables went
//! from 3.26 to 2.71 bytes a line, the demo's from 6.06 to 4.92. From
//! version 10 an entry's fingerprint is one byte, not two.
//! Version 4 wrote `(key, row)` pairs sorted, the key being the
//! id's first [`KEY_LEN`] bytes, searched by bisection; versions before
//! it keyed by the whole id. Every layout gives candidates: the records
//! hold the whole id, and readers check it there.
//!
//! ```text
//! body = bloom | unit_shift u8 | trace rows (of units)    (version 9 on)
//! body = bloom | trace rows                               (versions 5–8)
//! body = bloom | count u32le | (key [key_len] | row u32le) * count
//! ```

use std::path::{Path, PathBuf};

use sextant_index::{Bloom, RoaringBitmap};
use sextant_wal::{Mapped, Vfs};

use super::file::{self, HEADER_LEN};
use crate::codec::trace_rows::{self, TraceRows};
use crate::error::{Error, Result};
use crate::model::TraceId;

/// Bytes of an id that key the table in version 4.
const KEY_LEN: usize = 4;
/// Key bytes in tables written before version 4: the whole id.
const OLD_KEY_LEN: usize = 16;

/// Largest unit a reader accepts: 2^16 rows.
const MAX_UNIT_SHIFT: u8 = 16;

/// The unit shift of a table listing frames of `rows_per_frame` rows,
/// which must be a power of two: evaluated in a constant, a frame size
/// that is not one fails the build.
pub(crate) const fn unit_shift(rows_per_frame: usize) -> u8 {
    assert!(rows_per_frame.is_power_of_two());
    rows_per_frame.ilog2() as u8
}

/// Serialises a trace table from `(trace, row)` pairs (any order; rows
/// without a trace must be left out), listing units of `2^unit_shift`
/// rows (the record file's rows a frame).
pub(crate) fn encode(mut entries: Vec<(TraceId, u32)>, unit_shift: u8, magic: &[u8; 4]) -> Vec<u8> {
    // A trace's rows of one unit become one pair, listed once.
    for e in &mut entries {
        e.1 >>= unit_shift;
    }
    let mut rows = Vec::with_capacity(entries.len() * 3 + 16);
    // Sorts the entries by trace: the filter's distinct ids come from the
    // same order, not from a second sort.
    trace_rows::encode(&mut entries, trace_rows::FINGERPRINT_LEN, &mut rows);
    let mut distinct: Vec<&[u8]> = entries.iter().map(|(t, _)| &t[..]).collect();
    distinct.dedup();
    let mut body = Vec::with_capacity(distinct.len() * 2 + rows.len() + 16);
    Bloom::build(distinct.into_iter()).encode(&mut body);
    body.push(unit_shift);
    body.extend_from_slice(&rows);
    file::seal(magic, &body)
}

/// How the entries are laid out.
#[derive(Debug)]
enum Entries {
    /// Grouped by trace (version 5 on); `at` is where they start in the
    /// map; each lists units of `2^unit_shift` rows (0 before version 9).
    Grouped {
        rows: TraceRows,
        at: usize,
        unit_shift: u8,
    },
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
            let (unit_shift, used) = if version >= 9 {
                match body.get(used) {
                    Some(&shift) if shift <= MAX_UNIT_SHIFT => (shift, used + 1),
                    _ => return Err(bad("unit of rows")),
                }
            } else {
                (0, used)
            };
            let fingerprint_len = match version {
                10.. => trace_rows::FINGERPRINT_LEN,
                _ => trace_rows::OLD_FINGERPRINT_LEN,
            };
            let rows = TraceRows::parse(&body[used..], fingerprint_len).map_err(|e| bad(&e))?;
            Entries::Grouped {
                rows,
                at: HEADER_LEN + used,
                unit_shift,
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

    /// Adds to `out` the rows that may hold `trace` (all that do; whole
    /// units from version 9, which may reach past the file's rows): the
    /// caller checks the id of each record.
    pub(crate) fn rows(&self, trace: &TraceId, out: &mut RoaringBitmap) -> Result<()> {
        if !self.bloom.may_contain(trace) {
            return Ok(());
        }
        match self.entries {
            Entries::Grouped {
                rows,
                at,
                unit_shift,
            } => {
                let body = &self.map[at..self.map.len() - file::FOOTER_LEN];
                let units = rows
                    .lookup(body, trace)
                    .map_err(|e| Error::corrupt(&self.path, e))?;
                for u in units {
                    let first = u64::from(u) << unit_shift;
                    let end = (first + (1 << unit_shift)).min(u64::from(u32::MAX));
                    out.insert_range(first.min(end) as u32..end as u32);
                }
                Ok(())
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
                out.extend(
                    (lo..count)
                        .map(entry)
                        .take_while(|(k, _)| *k == key)
                        .map(|(_, r)| r),
                );
                Ok(())
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

    /// A table with fingerprints of two bytes, as blocks of version 9
    /// wrote it (units of `2^shift` rows, `Some(shift)`) or of versions 5
    /// to 8 (rows, no unit byte, `None`).
    fn encode_old(mut entries: Vec<(TraceId, u32)>, unit_shift: Option<u8>) -> Vec<u8> {
        let shift = unit_shift.unwrap_or(0);
        entries.iter_mut().for_each(|e| e.1 >>= shift);
        let mut rows = Vec::new();
        trace_rows::encode(&mut entries, trace_rows::OLD_FINGERPRINT_LEN, &mut rows);
        let mut distinct: Vec<&[u8]> = entries.iter().map(|(t, _)| &t[..]).collect();
        distinct.dedup();
        let mut body = Vec::new();
        Bloom::build(distinct.into_iter()).encode(&mut body);
        body.extend(unit_shift);
        body.extend_from_slice(&rows);
        let mut out = file::seal(b"SXLT", &body);
        let version: u16 = if unit_shift.is_some() { 9 } else { 8 };
        out[4..6].copy_from_slice(&version.to_le_bytes());
        out
    }

    fn rows_of(table: &TraceTable, t: &TraceId) -> Vec<u32> {
        let mut out = RoaringBitmap::new();
        table.rows(t, &mut out).unwrap();
        out.iter().collect()
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

    #[test]
    fn a_unit_past_the_largest_is_refused() {
        let entries = vec![([7; 16], 3), ([7; 16], 700)];
        let good = encode(entries.clone(), 8, b"SXLT");
        let body = &good[HEADER_LEN..];
        let (_, used) = Bloom::decode(body).unwrap();
        let at = HEADER_LEN + used;
        assert_eq!(good[at], 8);
        let mut bad = good.clone();
        bad[at] = MAX_UNIT_SHIFT + 1;
        let err = open(&bad).unwrap_err().to_string();
        assert!(err.contains("unit of rows"), "{err}");
        // A unit of the largest size reads, and gives whole units: the
        // table's units 0 and 2.
        bad[at] = MAX_UNIT_SHIFT;
        let rows = rows_of(&open(&bad).unwrap(), &[7; 16]);
        assert_eq!(rows.len(), 2 << MAX_UNIT_SHIFT);
        assert_eq!(rows[0], 0);
        assert_eq!(rows[1 << MAX_UNIT_SHIFT], 2 << MAX_UNIT_SHIFT);
    }

    proptest! {
        /// Every row of a trace is among its candidates, and every
        /// candidate is in the unit of a row of a trace that shares the
        /// bytes its layout keys by: the fingerprint (byte 4 from version
        /// 10, bytes 4 and 5 in versions 5 to 9), the first 4 (version 4)
        /// or all; units are rows before version 9.
        #[test]
        fn rows_of_a_trace_are_all_found(
            pairs in prop::collection::btree_set((id(), 0u32..1000), 0..200),
            other in id(),
            shift in 0u8..4,
        ) {
            let entries: Vec<_> = pairs.into_iter().collect();
            for (bytes, keyed, shift) in [
                (encode(entries.clone(), shift, b"SXLT"), 4..5, shift),
                (encode_old(entries.clone(), Some(shift)), 4..6, shift),
                (encode_old(entries.clone(), None), 4..6, 0),
                (encode_pairs(entries.clone(), KEY_LEN, 4), 0..KEY_LEN, 0),
                (encode_pairs(entries.clone(), OLD_KEY_LEN, 3), 0..OLD_KEY_LEN, 0),
            ] {
                let table = open(&bytes).unwrap();
                let listed = |r: u32, t: &TraceId| {
                    entries.iter().any(|(u, q)| q >> shift == r >> shift && u[keyed.clone()] == t[keyed.clone()])
                };
                for (t, row) in &entries {
                    let rows = rows_of(&table, t);
                    prop_assert!(rows.contains(row));
                    for r in rows {
                        prop_assert!(listed(r, t));
                    }
                }
                if !entries.iter().any(|(t, _)| *t == other) {
                    for r in rows_of(&table, &other) {
                        prop_assert!(listed(r, &other));
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
            let good = encode(entries.clone(), 8, b"SXLT");
            let mut short = good.clone();
            short.truncate(cut.index(good.len()));
            prop_assert!(open(&short).is_err());
            let mut bad = good.clone();
            bad[flip.index(good.len())] ^= 0x41;
            if let Ok(t) = open(&bad) {
                for (id, _) in &entries {
                    let _ = t.rows(id, &mut RoaringBitmap::new());
                }
                let _ = t.verify();
            }
        }
    }
}
