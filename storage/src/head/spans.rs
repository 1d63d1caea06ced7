//! Spans of the head with in-memory postings and a trace map.

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use sextant_index::MemPostings;

use crate::model::{Span, TraceId};
use crate::spans::{SpanSearch, newest_first, span_labels};

#[derive(Default)]
struct Inner {
    rows: Vec<Span>,
    traces: FxHashMap<TraceId, Vec<u32>>,
    bytes: usize,
}

/// The head's spans.
#[derive(Default)]
pub(crate) struct HeadSpans {
    inner: RwLock<Inner>,
    postings: MemPostings,
}

fn span_bytes(s: &Span) -> usize {
    std::mem::size_of::<Span>()
        + s.name.len()
        + s.status_message.len()
        + (s.attributes.len() + s.resource.len()) * 64
        + s.events.len() * 96
}

impl HeadSpans {
    pub(crate) fn append(&self, spans: Vec<Span>) {
        let mut g = self.inner.write();
        for s in spans {
            let row = g.rows.len() as u32;
            let labels = span_labels(&s);
            self.postings
                .add(row, labels.iter().map(|(k, v)| (*k, &**v)));
            g.bytes += span_bytes(&s);
            g.traces.entry(s.trace_id).or_default().push(row);
            g.rows.push(s);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.read().rows.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.inner.read().bytes
    }

    pub(crate) fn search(&self, q: &SpanSearch) -> Vec<Span> {
        let rows = sextant_index::select(&self.postings, &q.indexed());
        let g = self.inner.read();
        let mut out: Vec<Span> = rows
            .iter()
            .filter_map(|r| g.rows.get(r as usize))
            .filter(|s| q.accepts(s))
            .cloned()
            .collect();
        newest_first(&mut out, q.limit);
        out
    }

    pub(crate) fn trace(&self, id: &TraceId) -> Vec<Span> {
        let g = self.inner.read();
        g.traces.get(id).map_or_else(Vec::new, |rows| {
            rows.iter().map(|r| g.rows[*r as usize].clone()).collect()
        })
    }

    /// Calls `f` with the spans with `start <= start_ms <= end`, by trace
    /// then start (the block order), without copying them.
    pub(crate) fn with_range<R>(&self, start: i64, end: i64, f: impl FnOnce(&[&Span]) -> R) -> R {
        let g = self.inner.read();
        let mut rows: Vec<&Span> = g
            .rows
            .iter()
            .filter(|s| (start..=end).contains(&s.start_ms()))
            .collect();
        sort_for_block(&mut rows);
        f(&rows)
    }

    pub(crate) fn partitions(&self, range: i64) -> Vec<i64> {
        let mut p: Vec<i64> = self
            .inner
            .read()
            .rows
            .iter()
            .map(|s| s.start_ms().div_euclid(range))
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

/// Block order of spans: by trace, so a trace's spans are neighbours.
pub(crate) fn sort_for_block<S: std::borrow::Borrow<Span>>(spans: &mut [S]) {
    spans.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        (a.trace_id, a.start_ns, a.span_id).cmp(&(b.trace_id, b.start_ns, b.span_id))
    });
}
