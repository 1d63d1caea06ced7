//! Span search and traces: what a query means, shared by head and blocks.
//!
//! Spans are indexed (label postings) under their intrinsic fields
//! `service`, `name`, `kind` (`server`, `client`, …) and `status` (`unset`,
//! `ok`, `error`: the outcome, [`Span::outcome`]). A matcher on any other
//! name is checked on the span: `trace_id`, `span_id` and `parent_span_id`
//! against its ids (hex; `""` for none), others against its attributes,
//! then its resource attributes (an absent attribute is the empty string,
//! as in Prometheus).

use std::borrow::Cow;

use sextant_index::Matcher;

use crate::model::{Span, SpanId, TraceId, id_value};

/// Span fields held in postings.
pub const SPAN_FIELDS: [&str; 4] = ["service", "name", "kind", "status"];

/// A span search: spans starting in `[start_ns, end_ns]` that match every
/// matcher and the duration bounds, newest first, at most `limit`.
#[derive(Debug, Clone)]
pub struct SpanSearch {
    /// Matchers on fields and attributes.
    pub matchers: Vec<Matcher>,
    /// Shortest duration, ns (inclusive).
    pub min_duration_ns: Option<i64>,
    /// Longest duration, ns (inclusive).
    pub max_duration_ns: Option<i64>,
    /// Oldest start, ns (inclusive).
    pub start_ns: i64,
    /// Newest start, ns (inclusive).
    pub end_ns: i64,
    /// Most spans returned.
    pub limit: usize,
}

impl Default for SpanSearch {
    fn default() -> Self {
        SpanSearch {
            matchers: Vec::new(),
            min_duration_ns: None,
            max_duration_ns: None,
            start_ns: i64::MIN,
            end_ns: i64::MAX,
            limit: 100,
        }
    }
}

/// The postings labels of a span.
pub(crate) fn span_labels(s: &Span) -> [(&'static str, Cow<'_, str>); 4] {
    [
        ("service", s.service()),
        ("name", Cow::Borrowed(&s.name)),
        ("kind", Cow::Borrowed(s.kind.as_str())),
        ("status", Cow::Borrowed(s.outcome().as_str())),
    ]
}

impl SpanSearch {
    /// Matchers the postings answer.
    pub(crate) fn indexed(&self) -> Vec<Matcher> {
        self.matchers
            .iter()
            .filter(|m| SPAN_FIELDS.contains(&m.name.as_str()))
            .cloned()
            .collect()
    }

    /// Whether a span the postings selected matches the rest.
    pub(crate) fn accepts(&self, s: &Span) -> bool {
        let d = s.duration_ns();
        s.start_ns >= self.start_ns
            && s.start_ns <= self.end_ns
            && self.min_duration_ns.is_none_or(|m| d >= m)
            && self.max_duration_ns.is_none_or(|m| d <= m)
            && self
                .matchers
                .iter()
                .filter(|m| !SPAN_FIELDS.contains(&m.name.as_str()))
                .all(|m| m.matches(field(s, &m.name).as_deref().unwrap_or("")))
    }

    /// Whether a span matches the whole search, the matchers the postings
    /// answer included (for spans read without them: a trace's).
    pub(crate) fn matches(&self, s: &Span) -> bool {
        let labels = span_labels(s);
        self.accepts(s)
            && self.indexed().iter().all(|m| {
                let v = labels.iter().find(|(k, _)| *k == m.name);
                m.matches(v.map_or("", |(_, v)| v))
            })
    }
}

/// A field a matcher names that the postings do not hold: an id, else an
/// attribute, else a resource attribute.
fn field<'s>(s: &'s Span, name: &str) -> Option<Cow<'s, str>> {
    let id = match name {
        "trace_id" => &s.trace_id[..],
        "span_id" => &s.span_id[..],
        "parent_span_id" => &s.parent_span_id[..],
        _ => {
            return s
                .attributes
                .iter()
                .chain(s.resource.iter())
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_text());
        }
    };
    Some(Cow::Owned(id_value(id)))
}

/// Sorts spans newest first (ties by trace and span id) and keeps `limit`.
pub(crate) fn newest_first(spans: &mut Vec<Span>, limit: usize) {
    spans.sort_by(|a, b| {
        b.start_ns
            .cmp(&a.start_ns)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
            .then_with(|| a.span_id.cmp(&b.span_id))
    });
    spans.truncate(limit);
}

/// A whole trace as a tree: spans in start order, each with its parent's
/// index. A span whose parent is not stored is a root too (an orphan).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Spans ordered by start time (then span id).
    pub spans: Vec<Span>,
    /// Index of each span's parent in `spans`.
    pub parents: Vec<Option<usize>>,
}

impl Trace {
    /// Builds the tree; duplicate span ids (a span stored twice) keep one.
    pub(crate) fn build(mut spans: Vec<Span>) -> Trace {
        spans.sort_by(|a, b| a.span_id.cmp(&b.span_id).then(a.start_ns.cmp(&b.start_ns)));
        spans.dedup_by(|a, b| a.span_id == b.span_id);
        spans.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(a.span_id.cmp(&b.span_id)));
        let ids: rustc_hash::FxHashMap<SpanId, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        let parents = spans
            .iter()
            .map(|s| ids.get(&s.parent_span_id).copied())
            .collect();
        Trace { spans, parents }
    }

    /// The trace id.
    pub fn id(&self) -> Option<TraceId> {
        self.spans.first().map(|s| s.trace_id)
    }

    /// Indices of the spans without a stored parent.
    pub fn roots(&self) -> Vec<usize> {
        (0..self.spans.len())
            .filter(|i| self.parents[*i].is_none())
            .collect()
    }

    /// Indices of the children of span `i`, in start order.
    pub fn children(&self, i: usize) -> Vec<usize> {
        (0..self.spans.len())
            .filter(|c| self.parents[*c] == Some(i))
            .collect()
    }
}

/// Drops spans present twice (same trace and span id), keeping the first.
pub(crate) fn dedup(spans: &mut Vec<Span>) {
    let mut seen = std::collections::HashSet::new();
    spans.retain(|s| seen.insert((s.trace_id, s.span_id)));
}
