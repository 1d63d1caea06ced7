//! Log search: what a query means, shared by the head and the blocks.
//!
//! Every log row is indexed under its body's tokens and under *field
//! terms* `\u{1}name=value` for `service` (the resource's `service.name`),
//! `level` (from the severity number, else the lowercased severity text)
//! and every attribute and resource attribute whose value is a scalar of
//! at most [`MAX_FIELD_VALUE_LEN`] bytes. Matchers on fields run on those
//! terms with Prometheus semantics (a matcher accepting `""` also accepts
//! rows without the field); the text query runs on the body tokens.

use std::borrow::Cow;

use sextant_index::text::{FIELD_MARK, TermSource, Terms, TextQuery, push_index_tokens};
use sextant_index::{MatchOp, Matcher, RoaringBitmap};

use crate::codec::records::{Layout, encode_frame};
use crate::error::Result;
use crate::model::{AnyValue, Attributes, ByResource, LogRecord, TraceId, id_value, service_of};

/// Longer attribute values are stored but not indexed as field terms.
pub const MAX_FIELD_VALUE_LEN: usize = 256;

/// A log search: rows in `[start_ns, end_ns]` matching every matcher and
/// the text query, newest first, at most `limit`.
#[derive(Debug, Clone)]
pub struct LogSearch {
    /// Field matchers (`service`, `level`, attribute names).
    pub matchers: Vec<Matcher>,
    /// Full-text query on the body (syntax in [`TextQuery`]).
    pub text: Option<TextQuery>,
    /// Oldest time, ns (inclusive).
    pub start_ns: i64,
    /// Newest time, ns (inclusive).
    pub end_ns: i64,
    /// Most rows returned.
    pub limit: usize,
}

impl Default for LogSearch {
    fn default() -> Self {
        LogSearch {
            matchers: Vec::new(),
            text: None,
            start_ns: i64::MIN,
            end_ns: i64::MAX,
            limit: 100,
        }
    }
}

/// The level name of a severity number (OpenTelemetry ranges).
pub fn level_of(severity: u8, text: &str) -> String {
    level_name(severity).map_or_else(|| text.to_ascii_lowercase(), String::from)
}

/// [`level_of`] for severities in the OpenTelemetry ranges.
fn level_name(severity: u8) -> Option<&'static str> {
    Some(match severity {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

fn field_term(name: &str, value: &str) -> String {
    format!("{FIELD_MARK}{name}={value}")
}

/// The fields a log row is indexed under: (name, value).
fn fields(r: &LogRecord) -> Vec<(&str, Cow<'_, str>)> {
    let mut out = Vec::with_capacity(2 + r.attributes.len() + r.resource.len());
    record_fields(r, &mut out);
    resource_fields(&r.resource, &mut out);
    out
}

/// The fields of a row's own: its level and attributes.
fn record_fields<'a>(r: &'a LogRecord, out: &mut Vec<(&'a str, Cow<'a, str>)>) {
    let level = level_name(r.severity).map_or_else(
        || Cow::Owned(r.severity_text.to_ascii_lowercase()),
        Cow::Borrowed,
    );
    out.push(("level", level));
    scalar_fields(&r.attributes, out);
}

/// The fields a row takes from its resource: `service` and the resource's
/// attributes.
fn resource_fields<'a>(resource: &'a Attributes, out: &mut Vec<(&'a str, Cow<'a, str>)>) {
    out.push(("service", service_of(resource)));
    scalar_fields(resource, out);
}

/// The attributes indexed as fields: scalars of at most
/// [`MAX_FIELD_VALUE_LEN`] bytes.
fn scalar_fields<'a>(attrs: &'a Attributes, out: &mut Vec<(&'a str, Cow<'a, str>)>) {
    for (k, v) in attrs {
        if matches!(v, AnyValue::Array(_) | AnyValue::Map(_)) {
            continue;
        }
        let v = v.to_text();
        if v.len() <= MAX_FIELD_VALUE_LEN {
            out.push((k, v));
        }
    }
}

/// Appends the field terms of `fields`.
fn push_field_terms(fields: &[(&str, Cow<'_, str>)], terms: &mut Terms) {
    let mut mark = [0u8; 4];
    let mark = FIELD_MARK.encode_utf8(&mut mark);
    for (k, v) in fields {
        terms.push_joined(&[mark, k, "=", v]);
    }
}

/// Builds the terms of a batch's log rows. Each resource's field terms
/// are built once per allocation and copied in one piece into each record
/// that shares it; one fields buffer serves every row.
#[derive(Default)]
pub(crate) struct LogTerms<'a> {
    resources: ByResource<Terms>,
    fields: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> LogTerms<'a> {
    /// Appends every term `r` is indexed under to `terms` (a term may come
    /// twice; the indexes keep one posting).
    pub(crate) fn push(&mut self, r: &'a LogRecord, terms: &mut Terms) {
        push_index_tokens(&r.body.to_text(), terms);
        self.fields.clear();
        record_fields(r, &mut self.fields);
        push_field_terms(&self.fields, terms);
        let shared = self.resources.get_or_try_insert(&r.resource, || {
            let mut fields = Vec::with_capacity(1 + r.resource.len());
            resource_fields(&r.resource, &mut fields);
            let mut terms = Terms::default();
            push_field_terms(&fields, &mut terms);
            Ok::<_, std::convert::Infallible>(terms)
        });
        let Ok(shared) = shared;
        terms.extend(shared);
    }
}

/// Rows a matcher accepts. From an index that answers a superset of the
/// rows holding a term, a matcher that accepts rows without the field
/// cannot narrow anything: it keeps every row ([`matcher_accepts`] then
/// decides).
fn matcher_rows(src: &dyn TermSource, m: &Matcher) -> Result<RoaringBitmap> {
    let prefix = field_term(&m.name, "");
    if m.op == MatchOp::Equal && !m.value.is_empty() {
        return Ok(src.term_rows(&field_term(&m.name, &m.value))?);
    }
    let value_of = |t: &str| t[prefix.len()..].to_string();
    if m.matches_empty() {
        if !src.exact() {
            return Ok(src.all_rows());
        }
        let rejected = src.rows_where(&prefix, &|t| !m.matches(&value_of(t)))?;
        Ok(src.all_rows() - rejected)
    } else {
        Ok(src.rows_where(&prefix, &|t| m.matches(&value_of(t)))?)
    }
}

/// The ids of a row a matcher may name: `trace_id`, `span_id`.
fn id_field(r: &LogRecord, name: &str) -> Option<String> {
    match name {
        "trace_id" => Some(id_value(&r.trace_id)),
        "span_id" => Some(id_value(&r.span_id)),
        _ => None,
    }
}

fn is_id(m: &Matcher) -> bool {
    matches!(m.name.as_str(), "trace_id" | "span_id")
}

/// Whether a row's fields satisfy a matcher, as [`matcher_rows`] means it
/// over the field terms.
fn matcher_accepts(m: &Matcher, fields: &[(&str, Cow<'_, str>)]) -> bool {
    let mut values = fields.iter().filter(|(k, _)| *k == m.name).map(|(_, v)| v);
    if m.matches_empty() {
        values.all(|v| m.matches(v))
    } else {
        values.any(|v| m.matches(v))
    }
}

impl LogSearch {
    /// Rows of `src` that may match, and whether they all do (when not,
    /// [`LogSearch::accepts`] decides).
    pub(crate) fn candidates(&self, src: &dyn TermSource) -> Result<(RoaringBitmap, bool)> {
        let mut acc: Option<RoaringBitmap> = None;
        let ids = self.matchers.iter().any(is_id);
        let mut exact = (src.exact() || self.matchers.is_empty()) && !ids;
        for m in self.matchers.iter().filter(|m| !is_id(m)) {
            let rows = matcher_rows(src, m)?;
            acc = Some(acc.map_or(rows.clone(), |a| a & rows));
        }
        if let Some(t) = &self.text {
            let (rows, e) = t.candidates(src)?;
            exact &= e;
            acc = Some(acc.map_or(rows.clone(), |a| a & rows));
        }
        Ok((acc.unwrap_or_else(|| src.all_rows()), exact))
    }

    /// Whether `body` matches the text query (any body, without one).
    pub(crate) fn body_accepts(&self, body: &AnyValue) -> bool {
        self.text
            .as_ref()
            .is_none_or(|t| t.matches(&body.to_text()))
    }

    /// Whether a candidate row matches: its time is in range and, when the
    /// candidates were not exact, its fields match the matchers and its
    /// body the text query.
    pub(crate) fn accepts(&self, r: &LogRecord, exact: bool) -> bool {
        self.accepts_besides_body(r, exact) && (exact || self.body_accepts(&r.body))
    }

    /// [`LogSearch::accepts`] but for the body, which the caller tested.
    pub(crate) fn accepts_besides_body(&self, r: &LogRecord, exact: bool) -> bool {
        r.time_ns >= self.start_ns
            && r.time_ns <= self.end_ns
            && (exact || self.matchers.is_empty() || {
                let fields = fields(r);
                self.matchers.iter().all(|m| match id_field(r, &m.name) {
                    Some(id) => m.matches(&id),
                    None => matcher_accepts(m, &fields),
                })
            })
    }
}

/// Sorts rows newest first (ties: by trace and span id, so answers are
/// deterministic) and keeps `limit`.
pub(crate) fn newest_first(rows: &mut Vec<LogRecord>, limit: usize) {
    rows.sort_by(|a, b| {
        b.time_ns
            .cmp(&a.time_ns)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
            .then_with(|| a.span_id.cmp(&b.span_id))
    });
    rows.truncate(limit);
}

/// The trace ids rows carry, with their row numbers (zero ids left out).
pub(crate) fn trace_rows(rows: &[&LogRecord]) -> Vec<(TraceId, u32)> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.trace_id != [0; 16])
        .map(|(i, r)| (r.trace_id, i as u32))
        .collect()
}

/// Drops records present twice, keeping the first (a flush finishing
/// during a read shows a record in its head and its block; compaction may
/// meet a record in two parents).
pub(crate) fn dedup(rows: &mut Vec<LogRecord>) {
    let mut seen = std::collections::HashSet::new();
    rows.retain(|r| {
        let mut key = Vec::new();
        encode_frame::<LogRecord, _>(std::slice::from_ref(r), Layout::Plain, &mut key);
        seen.insert(key)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resource;

    proptest::proptest! {
        /// A row's terms are its body's tokens and one field term a field,
        /// whichever resource the record before it had (the same
        /// allocation, an equal copy, another one).
        #[test]
        fn terms_are_the_body_tokens_and_the_fields(
            rows in proptest::collection::vec((0usize..3, 0u8..30, "[a-z =]{0,12}", proptest::option::of("[a-z]{1,3}")), 1..12),
        ) {
            let service = |s: &str| -> Attributes { vec![("service.name".into(), s.into()), ("host".into(), AnyValue::Int(7))] };
            let resources = [Resource::new(service("a")), Resource::new(service("a")), Resource::new(service("b"))];
            let records: Vec<LogRecord> = rows.iter().map(|(res, severity, body, attr)| LogRecord {
                severity: *severity,
                severity_text: "Notice".into(),
                body: AnyValue::Str(body.clone()),
                attributes: attr.iter().map(|a| ("k".to_string(), AnyValue::from(a.as_str()))).collect(),
                resource: Resource::clone(&resources[*res]),
                ..LogRecord::default()
            }).collect();
            // One builder and one buffer for the batch, as a write has.
            let (mut builder, mut terms) = (LogTerms::default(), Terms::default());
            for r in &records {
                let before = terms.len();
                builder.push(r, &mut terms);
                let mut got: Vec<String> = terms.iter().skip(before).map(String::from).collect();
                let mut want = sextant_index::text::index_tokens(&r.body.to_text());
                want.extend(fields(r).iter().map(|(k, v)| field_term(k, v)));
                got.sort_unstable();
                got.dedup();
                want.sort_unstable();
                want.dedup();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
