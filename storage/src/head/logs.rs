//! Log records of the head with in-memory term postings, so a record is
//! searchable as soon as its write is acknowledged.

use std::cmp::Ordering;

use parking_lot::RwLock;
use sextant_index::RoaringBitmap;
use sextant_index::text::{PagedIndexWriter, TermSource, Terms};

use super::rows::{Record, Rows};
use super::terms::{Pending, TermTable};
use crate::error::Result;
use crate::logs::{LogSearch, LogTerms, newest_first};
use crate::model::{LogRecord, TraceId};

impl Record for LogRecord {
    fn trace(&self) -> TraceId {
        self.trace_id
    }
    fn time_ms(&self) -> i64 {
        LogRecord::time_ms(self)
    }
    fn block_order(a: &Self, b: &Self) -> Ordering {
        a.time_ns.cmp(&b.time_ns)
    }
    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<LogRecord>()
            + self.body.to_text().len()
            + self.severity_text.len()
            + (self.attributes.len() + self.resource.len()) * 64
    }
    fn prefetch_heap(&self) {
        LogRecord::prefetch_heap(self);
    }
    fn prefetch_inner(&self) {
        self.prefetch_attr_strings();
    }
}

/// Bytes of terms text a write indexes at a time: term offsets are 32-bit.
const MAX_TERMS_TEXT: usize = 1 << 30;

/// Room for a record's field terms beside its body's tokens, bytes.
const TERMS_BESIDE_BODY: usize = 128;

#[derive(Default)]
struct Inner {
    rows: Rows<LogRecord>,
    terms: TermTable,
}

impl Drop for Inner {
    /// A flushed head's records are freed with their memory asked for
    /// ahead (2M demo lines: freeing them was 5% of ingest CPU).
    fn drop(&mut self) {
        self.rows.drop_prefetching();
    }
}

/// The head's logs.
#[derive(Default)]
pub(crate) struct HeadLogs {
    inner: RwLock<Inner>,
}

impl HeadLogs {
    /// Adds records (tokenized and their terms hashed before the lock is
    /// taken).
    pub(crate) fn append(&self, mut records: Vec<LogRecord>) {
        while !records.is_empty() {
            self.append_part(&mut records);
        }
    }

    /// Adds the first records of `records`, as many as have at most
    /// [`MAX_TERMS_TEXT`] bytes of terms (all but always every one), and
    /// removes them from `records`.
    fn append_part(&self, records: &mut Vec<LogRecord>) {
        // The terms of every record in one buffer: a buffer a record cost
        // three allocations of each. Sized up front, as a record's was:
        // grown from empty, it is copied its way up.
        let bytes = (records.iter())
            .map(|r| r.body.to_text().len() + TERMS_BESIDE_BODY)
            .sum::<usize>()
            .min(MAX_TERMS_TEXT);
        let mut terms = Terms::with_capacity(bytes, bytes / 4);
        let mut ends = Vec::with_capacity(records.len());
        let mut builder = LogTerms::default();
        for r in records.iter() {
            if terms.text_len() >= MAX_TERMS_TEXT {
                break;
            }
            builder.push(r, &mut terms);
            ends.push(terms.len());
        }
        drop(builder);
        let mut pending = Vec::with_capacity(terms.len());
        let mut record = 0;
        for (i, term) in terms.iter().enumerate() {
            // Records without terms are stepped over.
            while ends[record] <= i {
                record += 1;
            }
            pending.push(Pending {
                term,
                hash: TermTable::hash(term),
                record: record as u32,
            });
        }
        let mut g = self.inner.write();
        let inner = &mut *g;
        let first_row = inner.rows.len() as u32;
        inner.rows.extend(records.drain(..ends.len()));
        let bytes = inner.terms.add(&pending, first_row);
        inner.rows.add_bytes(bytes);
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.read().rows.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.inner.read().rows.bytes()
    }

    /// Matching records, newest first.
    pub(crate) fn search(&self, q: &LogSearch) -> Result<Vec<LogRecord>> {
        let g = self.inner.read();
        let (rows, exact) = q.candidates(&*g)?;
        let mut out: Vec<LogRecord> = rows
            .iter()
            .filter_map(|r| g.rows.get(r as usize))
            .filter(|r| q.accepts(r, exact))
            .cloned()
            .collect();
        newest_first(&mut out, q.limit);
        Ok(out)
    }

    /// Records of a trace.
    pub(crate) fn traces(&self, ids: &[TraceId]) -> Vec<LogRecord> {
        self.inner.read().rows.traces(ids)
    }

    /// Calls `f` with the records with `start <= time_ms <= end` in block
    /// order (for flush), without copying them, and the paged index of
    /// their terms built from the head's postings: a flush does not
    /// tokenize the records again.
    pub(crate) fn with_range<R>(
        &self,
        start: i64,
        end: i64,
        f: impl FnOnce(&[&LogRecord], PagedIndexWriter<'_>) -> R,
    ) -> R {
        let g = self.inner.read();
        let (records, head_rows) = g.rows.in_range_with_rows(start, end);
        let mut index = PagedIndexWriter::with_rows(records.len() as u32);
        // Usually every row is flushed, in arrival order: a term's head
        // rows are then its block rows.
        if head_rows.iter().copied().eq(0..g.rows.len() as u32) {
            for (term, head) in g.terms.iter() {
                index.add_rows(term, head);
            }
            return f(&records, index);
        }
        // Head row → block row (u32::MAX: outside the range).
        let mut block_row = vec![u32::MAX; g.rows.len()];
        for (b, &h) in head_rows.iter().enumerate() {
            block_row[h as usize] = b as u32;
        }
        // Rows kept in arrival order keep each term's rows ascending.
        let ordered = head_rows.is_sorted();
        let mut rows = Vec::new();
        for (term, head) in g.terms.iter() {
            rows.clear();
            rows.extend(
                head.map(|h| block_row[h as usize])
                    .filter(|&b| b != u32::MAX),
            );
            if !ordered {
                rows.sort_unstable();
            }
            index.add_rows(term, rows.iter().copied());
        }
        f(&records, index)
    }

    /// Time partitions (`time_ms / range`) holding records.
    pub(crate) fn partitions(&self, range: i64) -> Vec<i64> {
        self.inner.read().rows.partitions(range)
    }
}

impl TermSource for Inner {
    fn all_rows(&self) -> RoaringBitmap {
        let mut b = RoaringBitmap::new();
        b.insert_range(0..self.rows.len() as u32);
        b
    }

    fn term_rows(&self, token: &str) -> sextant_index::Result<RoaringBitmap> {
        Ok(self
            .terms
            .get(token)
            .map_or_else(RoaringBitmap::new, |rows| {
                RoaringBitmap::from_sorted_iter(rows).unwrap_or_default()
            }))
    }

    fn rows_where(
        &self,
        prefix: &str,
        pred: &dyn Fn(&str) -> bool,
    ) -> sextant_index::Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        for (t, rows) in self.terms.iter() {
            if t.starts_with(prefix) && pred(t) {
                out.extend(rows);
            }
        }
        Ok(out)
    }
}
