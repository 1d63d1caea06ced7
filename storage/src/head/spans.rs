//! Spans of the head with in-memory label postings and a trace map.

use std::cmp::Ordering;

use parking_lot::RwLock;
use sextant_index::MemPostings;

use super::rows::{Record, Rows};
use crate::model::{Span, TraceId};
use crate::spans::{SpanSearch, newest_first, span_labels};

/// The time buckets spans are grouped by in a block: a minute, in ns.
const SPAN_ORDER_BUCKET_NS: i64 = 60_000_000_000;

impl Record for Span {
    fn trace(&self) -> TraceId {
        self.trace_id
    }
    fn time_ms(&self) -> i64 {
        self.start_ms()
    }
    /// By start minute, then by trace: a time range reads only the frames
    /// of its minutes, and the spans of a trace (which start within
    /// moments of each other) stay neighbours, in one or two frames.
    fn block_order(a: &Self, b: &Self) -> Ordering {
        let minute = |s: &Span| s.start_ns.div_euclid(SPAN_ORDER_BUCKET_NS);
        (minute(a), a.trace_id, a.start_ns, a.span_id).cmp(&(
            minute(b),
            b.trace_id,
            b.start_ns,
            b.span_id,
        ))
    }
    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Span>()
            + self.name.len()
            + self.status_message.len()
            + (self.attributes.len() + self.resource.len()) * 64
            + self.events.len() * 96
    }
}

/// The head's spans.
#[derive(Default)]
pub(crate) struct HeadSpans {
    rows: RwLock<Rows<Span>>,
    postings: MemPostings,
}

impl HeadSpans {
    pub(crate) fn append(&self, spans: Vec<Span>) {
        let mut g = self.rows.write();
        let first = g.len() as u32;
        for (row, s) in (first..).zip(&spans) {
            let labels = span_labels(s);
            self.postings
                .add(row, labels.iter().map(|(k, v)| (*k, &**v)));
        }
        g.extend(spans);
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.read().len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.rows.read().bytes()
    }

    pub(crate) fn search(&self, q: &SpanSearch) -> Vec<Span> {
        let rows = sextant_index::select(&self.postings, &q.indexed());
        let g = self.rows.read();
        let mut out: Vec<Span> = rows
            .iter()
            .filter_map(|r| g.get(r as usize))
            .filter(|s| q.accepts(s))
            .cloned()
            .collect();
        newest_first(&mut out, q.limit);
        out
    }

    pub(crate) fn traces(&self, ids: &[TraceId]) -> Vec<Span> {
        self.rows.read().traces(ids)
    }

    /// Calls `f` with the spans with `start <= start_ms <= end`, in block
    /// order, without copying them.
    pub(crate) fn with_range<R>(&self, start: i64, end: i64, f: impl FnOnce(&[&Span]) -> R) -> R {
        f(&self.rows.read().in_range(start, end))
    }

    pub(crate) fn partitions(&self, range: i64) -> Vec<i64> {
        self.rows.read().partitions(range)
    }
}
