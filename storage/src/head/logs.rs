//! Log records of the head with in-memory postings, so a record is
//! searchable as soon as its write is acknowledged.

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use sextant_index::RoaringBitmap;
use sextant_index::text::TermSource;

use crate::error::Result;
use crate::logs::{LogSearch, log_terms, newest_first};
use crate::model::{LogRecord, TraceId};

#[derive(Default)]
struct Inner {
    rows: Vec<LogRecord>,
    /// Term → rows holding it, ascending.
    terms: FxHashMap<Box<str>, Vec<u32>>,
    traces: FxHashMap<TraceId, Vec<u32>>,
    /// Rough bytes held (records, terms, postings), for the flush trigger.
    bytes: usize,
}

/// The head's logs.
#[derive(Default)]
pub(crate) struct HeadLogs {
    inner: RwLock<Inner>,
}

fn record_bytes(r: &LogRecord) -> usize {
    std::mem::size_of::<LogRecord>()
        + r.body.to_text().len()
        + r.severity_text.len()
        + (r.attributes.len() + r.resource.len()) * 64
}

impl HeadLogs {
    /// Adds records (tokenized before the lock is taken).
    pub(crate) fn append(&self, records: Vec<LogRecord>) {
        let terms: Vec<Vec<String>> = records.iter().map(log_terms).collect();
        let mut g = self.inner.write();
        let inner = &mut *g;
        for (r, ts) in records.into_iter().zip(terms) {
            let row = inner.rows.len() as u32;
            inner.bytes += record_bytes(&r);
            for t in ts {
                match inner.terms.get_mut(t.as_str()) {
                    Some(rows) => {
                        rows.push(row);
                        inner.bytes += 4;
                    }
                    None => {
                        inner.bytes += t.len() + 64;
                        inner.terms.insert(t.into_boxed_str(), vec![row]);
                    }
                }
            }
            if r.trace_id != [0; 16] {
                inner.traces.entry(r.trace_id).or_default().push(row);
            }
            inner.rows.push(r);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.read().rows.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.inner.read().bytes
    }

    /// Matching records, newest first.
    pub(crate) fn search(&self, q: &LogSearch) -> Result<Vec<LogRecord>> {
        let g = self.inner.read();
        let (rows, exact) = q.candidates(&*g)?;
        let mut out: Vec<LogRecord> = rows
            .iter()
            .map(|r| &g.rows[r as usize])
            .filter(|r| q.accepts(r, exact))
            .cloned()
            .collect();
        newest_first(&mut out, q.limit);
        Ok(out)
    }

    /// Records of a trace.
    pub(crate) fn trace(&self, id: &TraceId) -> Vec<LogRecord> {
        let g = self.inner.read();
        g.traces.get(id).map_or_else(Vec::new, |rows| {
            rows.iter().map(|r| g.rows[*r as usize].clone()).collect()
        })
    }

    /// Calls `f` with the records with `start <= time_ms <= end`, oldest
    /// first (for flush), without copying them.
    pub(crate) fn with_range<R>(
        &self,
        start: i64,
        end: i64,
        f: impl FnOnce(&[&LogRecord]) -> R,
    ) -> R {
        let g = self.inner.read();
        let mut rows: Vec<&LogRecord> = g
            .rows
            .iter()
            .filter(|r| (start..=end).contains(&r.time_ms()))
            .collect();
        rows.sort_by_key(|r| r.time_ns);
        f(&rows)
    }

    /// Time partitions (`time_ms / range`) holding records.
    pub(crate) fn partitions(&self, range: i64) -> Vec<i64> {
        let mut p: Vec<i64> = self
            .inner
            .read()
            .rows
            .iter()
            .map(|r| r.time_ms().div_euclid(range))
            .collect();
        p.sort_unstable();
        p.dedup();
        p
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
                RoaringBitmap::from_sorted_iter(rows.iter().copied()).unwrap_or_default()
            }))
    }

    fn rows_where(
        &self,
        prefix: &str,
        pred: &dyn Fn(&str) -> bool,
    ) -> sextant_index::Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        for (t, rows) in &self.terms {
            if t.starts_with(prefix) && pred(t) {
                out.extend(rows.iter().copied());
            }
        }
        Ok(out)
    }
}
