//! The rows of the head's logs or spans: the records in arrival order, a
//! trace → rows map and a byte count for the flush trigger.

use std::cmp::Ordering;

use rustc_hash::FxHashMap;
use sextant_index::Ascending;

use crate::model::TraceId;

/// What the head needs of a log record or span.
pub(crate) trait Record: Clone {
    /// Its trace (zeros: none).
    fn trace(&self) -> TraceId;
    /// The time that places it in a partition, ms.
    fn time_ms(&self) -> i64;
    /// Order of rows in a block file.
    fn block_order(a: &Self, b: &Self) -> Ordering;
    /// Rough heap bytes, for the flush trigger.
    fn heap_bytes(&self) -> usize;
}

pub(crate) struct Rows<T> {
    pub(crate) rows: Vec<T>,
    /// Trace → rows (most traces a head holds have one log line or a few).
    traces: FxHashMap<TraceId, Ascending>,
    bytes: usize,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows {
            rows: Vec::new(),
            traces: FxHashMap::default(),
            bytes: 0,
        }
    }
}

impl<T: Record> Rows<T> {
    /// Appends a record; returns its row.
    pub(crate) fn push(&mut self, r: T) -> u32 {
        let row = self.rows.len() as u32;
        self.bytes += r.heap_bytes();
        let t = r.trace();
        if t != [0; 16] {
            match self.traces.get_mut(&t) {
                Some(rows) => {
                    rows.push(row);
                }
                None => {
                    self.traces.insert(t, Ascending::new(row));
                }
            }
        }
        self.rows.push(r);
        row
    }

    /// Counts bytes held beside the rows (postings).
    pub(crate) fn add_bytes(&mut self, n: usize) {
        self.bytes += n;
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records of a trace.
    pub(crate) fn trace(&self, id: &TraceId) -> Vec<T> {
        self.traces.get(id).map_or_else(Vec::new, |rows| {
            rows.iter().map(|r| self.rows[r as usize].clone()).collect()
        })
    }

    /// The records of all of `ids`.
    pub(crate) fn traces(&self, ids: &[TraceId]) -> Vec<T> {
        ids.iter().flat_map(|id| self.trace(id)).collect()
    }

    /// Records with `start <= time_ms <= end`, in block order.
    pub(crate) fn in_range(&self, start: i64, end: i64) -> Vec<&T> {
        self.in_range_with_rows(start, end).0
    }

    /// [`Rows::in_range`], with the head row of each record.
    pub(crate) fn in_range_with_rows(&self, start: i64, end: i64) -> (Vec<&T>, Vec<u32>) {
        let mut rows: Vec<u32> = (0..self.rows.len() as u32)
            .filter(|&i| (start..=end).contains(&self.rows[i as usize].time_ms()))
            .collect();
        // Stable: records of one time keep their arrival order.
        rows.sort_by(|&a, &b| T::block_order(&self.rows[a as usize], &self.rows[b as usize]));
        (rows.iter().map(|&i| &self.rows[i as usize]).collect(), rows)
    }

    /// Time partitions (`time_ms / range`) holding records.
    pub(crate) fn partitions(&self, range: i64) -> Vec<i64> {
        let mut p: Vec<i64> = self
            .rows
            .iter()
            .map(|r| r.time_ms().div_euclid(range))
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}
