//! The rows of the head's logs or spans: the records in arrival order, a
//! trace → rows map and a byte count for the flush trigger.

use std::cmp::Ordering;

use super::by_trace::{self, ByTrace};
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
    /// Asks the CPU for the memory freeing the record touches first, and
    /// ([`Record::prefetch_inner`]) for what that memory points to: see
    /// [`Rows::drop_prefetching`]. Nothing by default.
    fn prefetch_heap(&self) {}
    /// The second step of [`Record::prefetch_heap`], some records later.
    fn prefetch_inner(&self) {}
}

/// Records ahead whose memory a drop asks for ([`Rows::drop_prefetching`]).
const DROP_AHEAD: usize = 8;

/// Rows a chunk holds: 2¹² records, a few hundred KiB.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

pub(crate) struct Rows<T> {
    /// The records in chunks of [`CHUNK`], each allocated once at its
    /// full size: one vector of a million records was copied at every
    /// doubling and faulted in again (measured on the demo corpus: 2.7%
    /// of ingest CPU).
    chunks: Vec<Vec<T>>,
    len: usize,
    /// Trace → rows (most traces a head holds have one log line or a few).
    traces: ByTrace,
    /// The (trace key, row) pairs of the records being added, kept for
    /// the next batch.
    keyed: Vec<(u64, u32)>,
    bytes: usize,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows {
            chunks: Vec::new(),
            len: 0,
            traces: ByTrace::default(),
            keyed: Vec::new(),
            bytes: 0,
        }
    }
}

impl<T: Record> Rows<T> {
    /// Appends records, in order.
    pub(crate) fn extend(&mut self, records: impl IntoIterator<Item = T>) {
        let mut keyed = std::mem::take(&mut self.keyed);
        for r in records {
            let row = self.len as u32;
            self.bytes += r.heap_bytes();
            let t = r.trace();
            if t != [0; 16] {
                keyed.push((by_trace::key(&t), row));
            }
            if self.len.is_multiple_of(CHUNK) {
                self.chunks.push(Vec::with_capacity(CHUNK));
            }
            if let Some(chunk) = self.chunks.last_mut() {
                chunk.push(r);
            }
            self.len += 1;
        }
        let before = self.traces.bytes();
        self.traces.add(&keyed);
        self.bytes += self.traces.bytes() - before;
        keyed.clear();
        self.keyed = keyed;
    }

    /// The record at `row`, if there is one.
    pub(crate) fn get(&self, row: usize) -> Option<&T> {
        self.chunks.get(row >> CHUNK_BITS)?.get(row % CHUNK)
    }

    /// The record at `row` (`row < len`).
    fn at(&self, row: u32) -> &T {
        &self.chunks[(row >> CHUNK_BITS) as usize][row as usize % CHUNK]
    }

    /// Every record, in arrival order.
    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Frees the records, asking for the memory of those a few on before
    /// freeing each: a flushed head's records were written minutes before,
    /// and freeing a string writes to its memory (the allocator's free
    /// list), a cache miss each in turn otherwise.
    pub(crate) fn drop_prefetching(&mut self) {
        for chunk in std::mem::take(&mut self.chunks) {
            let mut records = chunk.into_iter();
            loop {
                let rest = records.as_slice();
                if let Some(r) = rest.get(DROP_AHEAD) {
                    r.prefetch_heap();
                }
                if let Some(r) = rest.get(DROP_AHEAD / 2) {
                    r.prefetch_inner();
                }
                if records.next().is_none() {
                    break;
                }
            }
        }
        self.len = 0;
        self.traces = ByTrace::default();
        self.bytes = 0;
    }

    /// Counts bytes held beside the rows (postings).
    pub(crate) fn add_bytes(&mut self, n: usize) {
        self.bytes += n;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records of a trace.
    pub(crate) fn trace(&self, id: &TraceId) -> Vec<T> {
        (self.traces.rows(id).into_iter())
            .map(|r| self.at(r))
            // A trace whose id hashes as this one's may share its rows.
            .filter(|r| r.trace() == *id)
            .cloned()
            .collect()
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
        let mut rows: Vec<u32> = (self.iter().enumerate())
            .filter(|(_, r)| (start..=end).contains(&r.time_ms()))
            .map(|(i, _)| i as u32)
            .collect();
        // Stable: records of one time keep their arrival order.
        rows.sort_by(|&a, &b| T::block_order(self.at(a), self.at(b)));
        (rows.iter().map(|&i| self.at(i)).collect(), rows)
    }

    /// Time partitions (`time_ms / range`) holding records.
    pub(crate) fn partitions(&self, range: i64) -> Vec<i64> {
        let mut p: Vec<i64> = self.iter().map(|r| r.time_ms().div_euclid(range)).collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LogRecord;

    /// Rows across several chunks come back by row, by trace and by time
    /// range as a single vector of them would give them.
    #[test]
    fn rows_span_chunks() {
        let n = 3 * CHUNK + 17;
        let mut rows = Rows::default();
        let resource = crate::model::Resource::default();
        let record = |i: usize| LogRecord {
            // Out of order now and then: the range is sorted by time.
            time_ns: ((i ^ 1) as i64) * 1_000_000,
            trace_id: [(i % 7) as u8 + 1; 16],
            attributes: vec![("k".into(), crate::model::AnyValue::Str(i.to_string()))],
            resource: resource.clone(),
            ..LogRecord::default()
        };
        for batch in (0..n).collect::<Vec<_>>().chunks(1000) {
            rows.extend(batch.iter().map(|&i| record(i)));
        }
        assert_eq!(rows.len(), n);
        assert!((0..n).all(|i| rows.get(i).map(|r| r.time_ns) == Some(record(i).time_ns)));
        assert!(rows.get(n).is_none());
        let third = rows.trace(&[3; 16]);
        assert_eq!(third.len(), (0..n).filter(|i| i % 7 == 2).count());
        assert!(third.iter().all(|r| r.trace_id == [3; 16]));
        let (got, head_rows) = rows.in_range_with_rows(CHUNK as i64 - 5, 2 * CHUNK as i64 + 5);
        let times: Vec<i64> = got.iter().map(|r| r.time_ms()).collect();
        assert!(
            times
                .iter()
                .copied()
                .eq(CHUNK as i64 - 5..=2 * CHUNK as i64 + 5)
        );
        assert!(
            (head_rows.iter()).all(|&h| rows.get(h as usize).unwrap().time_ms() == (h ^ 1) as i64)
        );
        assert_eq!(rows.partitions(CHUNK as i64), [0, 1, 2, 3]);
        // Every record is freed (each held the resource), and none is left.
        drop((third, got));
        rows.drop_prefetching();
        assert_eq!(std::sync::Arc::strong_count(&resource), 1);
        assert_eq!((rows.len(), rows.trace(&[3; 16]).len()), (0, 0));
        assert!(rows.get(0).is_none());
    }
}
