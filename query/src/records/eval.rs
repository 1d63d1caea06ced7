//! Reading record selectors: pushing their filters into the storage
//! searches (label postings, the full-text index, time pruning of blocks),
//! checking what the indexes cannot answer in memory, and resolving span
//! structure within whole traces.

use std::collections::HashMap;

use rustc_hash::FxHashSet;
use sextant_storage::{
    AnyValue, LogRecord, LogSearch, Matcher, Span, SpanSearch, TextQuery, Trace, TraceId, level_of,
};

use crate::ast::{AggOp, Expr};
use crate::engine::Eval;
use crate::error::{Error, Result};
use crate::records::{LineFilter, LogSelector, RecordSelector, Relation, SpanCond, SpanSelector};
use crate::value::Value;

/// Most traces a structural span selector opens (each is read whole).
pub const MAX_STRUCTURAL_TRACES: usize = 10_000;

/// Traces read together (one pass over the blocks; the deadline is checked
/// between passes).
pub(crate) const TRACES_PER_READ: usize = 500;

/// What the evaluator keeps of record selectors: the window each must
/// cover (from the pre-pass) and what was read for it, by node.
#[derive(Default)]
pub(crate) struct RecordsState {
    pub(crate) windows: HashMap<usize, (i64, i64)>,
    pub(crate) fetched: HashMap<usize, std::rc::Rc<Fetched>>,
    pub(crate) derived: HashMap<(usize, u8), std::rc::Rc<super::derive::DerivedSet>>,
}

/// Records of one selector over its whole window, oldest first.
pub(crate) enum Fetched {
    Logs(Vec<LogRecord>),
    Spans(Vec<Span>),
}

pub(crate) fn node(e: &Expr) -> usize {
    e as *const Expr as usize
}

/// The value of an attribute among `attrs` then `resource`, as text.
fn attr<'r>(
    attrs: &'r [(String, AnyValue)],
    resource: &'r [(String, AnyValue)],
    name: &str,
) -> Option<std::borrow::Cow<'r, str>> {
    attrs
        .iter()
        .chain(resource)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.to_text())
}

/// An id as a field value: lowercase hex, none when all zero (unset).
fn id_field(id: &[u8]) -> Option<std::borrow::Cow<'static, str>> {
    id.iter()
        .any(|&b| b != 0)
        .then(|| sextant_storage::hex(id).into())
}

/// A log field or attribute by name: `service`, `level`, `trace_id`,
/// `span_id`, `body.KEY` (a key of a structured body, dots going down
/// nested maps), or an attribute.
pub(crate) fn log_field<'r>(r: &'r LogRecord, name: &str) -> Option<std::borrow::Cow<'r, str>> {
    match name {
        "service" => Some(r.service()),
        "level" => Some(level_of(r.severity, &r.severity_text).into()),
        "trace_id" => id_field(&r.trace_id),
        "span_id" => id_field(&r.span_id),
        _ => match name.strip_prefix("body.") {
            Some(path) => body_field(&r.body, path),
            None => attr(&r.attributes, &r.resource, name),
        },
    }
}

/// The value at `path` (`a` or `a.b`) in a structured log body.
fn body_field<'r>(body: &'r AnyValue, path: &str) -> Option<std::borrow::Cow<'r, str>> {
    let AnyValue::Map(m) = body else { return None };
    if let Some((_, v)) = m.iter().find(|(k, _)| k == path) {
        return Some(v.to_text());
    }
    let (head, rest) = path.split_once('.')?;
    let (_, v) = m.iter().find(|(k, _)| k == head)?;
    body_field(v, rest)
}

/// A span field or attribute by name: `service`, `name`, `kind`,
/// `status`, `trace_id`, `span_id`, `parent_span_id`, or an attribute.
pub(crate) fn span_field<'s>(s: &'s Span, name: &str) -> Option<std::borrow::Cow<'s, str>> {
    match name {
        "service" => Some(s.service()),
        "trace_id" => id_field(&s.trace_id),
        "span_id" => id_field(&s.span_id),
        "parent_span_id" => id_field(&s.parent_span_id),
        "name" => Some(s.name.as_str().into()),
        "kind" => Some(s.kind.as_str().into()),
        "status" => Some(s.outcome().as_str().into()),
        _ => attr(&s.attributes, &s.resource, name),
    }
}

fn all_match<'r>(
    ms: &[Matcher],
    field: impl Fn(&str) -> Option<std::borrow::Cow<'r, str>>,
) -> bool {
    ms.iter()
        .all(|m| m.matches(field(&m.name).as_deref().unwrap_or("")))
}

/// A log selector ready to test records: its regexes compiled once per
/// read, not once per record.
pub(crate) struct LogTest<'s> {
    sel: &'s LogSelector,
    /// Per line filter, its compiled regex (regex filters only).
    regexes: Vec<Option<regex::Regex>>,
}

impl LogTest<'_> {
    /// Whether a record matches every matcher and line filter.
    pub(crate) fn accepts(&self, r: &LogRecord) -> bool {
        if !all_match(&self.sel.matchers, |n| log_field(r, n)) {
            return false;
        }
        if self.sel.filters.is_empty() {
            return true;
        }
        let body = r.body.to_text();
        self.sel
            .filters
            .iter()
            .zip(&self.regexes)
            .all(|(f, re)| match f {
                LineFilter::Contains(s) => body.contains(s.as_str()),
                LineFilter::NotContains(s) => !body.contains(s.as_str()),
                // Patterns were checked when parsed; one that does not compile
                // matches nothing either way.
                LineFilter::Regex(_) => re.as_ref().is_some_and(|r| r.is_match(&body)),
                LineFilter::NotRegex(_) => re.as_ref().is_some_and(|r| !r.is_match(&body)),
            })
    }
}

impl LogSelector {
    /// The selector as a record test.
    pub(crate) fn test(&self) -> LogTest<'_> {
        let regexes = self
            .filters
            .iter()
            .map(|f| match f {
                LineFilter::Regex(re) | LineFilter::NotRegex(re) => regex::Regex::new(re).ok(),
                _ => None,
            })
            .collect();
        LogTest { sel: self, regexes }
    }

    /// A full-text query every line holding the `|=` texts matches: the
    /// whole words inside each text, and the last word as a prefix (the
    /// line's token may go on after it; the first word may be the end of a
    /// longer token, so it is left out). Lines it selects are then checked
    /// exactly.
    fn text_prefilter(&self) -> Option<TextQuery> {
        let mut words = Vec::new();
        for f in &self.filters {
            let LineFilter::Contains(s) = f else { continue };
            let pieces: Vec<&str> = s.split(' ').collect();
            for (i, w) in pieces.iter().enumerate() {
                let starts_token = i > 0 || s.starts_with(' ');
                if !starts_token || w.is_empty() || !w.chars().all(|c| c.is_ascii_alphanumeric()) {
                    continue;
                }
                if i + 1 < pieces.len() {
                    words.push(w.to_string());
                } else {
                    words.push(format!("{w}*"));
                }
            }
        }
        (!words.is_empty())
            .then(|| TextQuery::parse(&words.join(" ")).ok())
            .flatten()
    }
}

impl SpanCond {
    /// Whether a span meets every matcher and duration bound.
    pub(crate) fn accepts(&self, s: &Span) -> bool {
        let (lo, hi) = self.duration_bounds_ns();
        let d = s.duration_ns();
        lo.is_none_or(|lo| d >= lo)
            && hi.is_none_or(|hi| d <= hi)
            && all_match(&self.matchers, |n| span_field(s, n))
    }

    fn search(&self, start_ns: i64, end_ns: i64, limit: usize) -> SpanSearch {
        let (min_duration_ns, max_duration_ns) = self.duration_bounds_ns();
        SpanSearch {
            matchers: self.matchers.clone(),
            min_duration_ns,
            max_duration_ns,
            start_ns,
            end_ns,
            limit,
        }
    }
}

fn too_many(what: &str, limit: usize) -> Error {
    Error::Limit(format!(
        "the {what} selector reads more than {limit} records; narrow its matchers or the time \
         range, or raise max_samples (sextant serve: --query-max-samples)"
    ))
}

/// ms window → ns bounds, inclusive of both ends of `(lo, hi]`.
fn ns_window(lo: i64, hi: i64) -> (i64, i64) {
    (
        lo.saturating_add(1).saturating_mul(1_000_000),
        hi.saturating_mul(1_000_000).saturating_add(999_999),
    )
}

impl Eval<'_> {
    /// The records of a selector node over the window the pre-pass gave it,
    /// read once per evaluation chunk.
    pub(crate) fn fetched(&mut self, e: &Expr) -> Result<std::rc::Rc<Fetched>> {
        let k = node(e);
        if let Some(f) = self.records.fetched.get(&k) {
            return Ok(f.clone());
        }
        let Expr::Records { selector, .. } = e else {
            return Err(Error::Eval("not a record selector".into()));
        };
        let (lo, hi) = self.records.windows.get(&k).copied().unwrap_or((0, -1));
        let (start_ns, end_ns) = ns_window(lo, hi);
        let limit = self.opts.max_samples;
        let f = match &**selector {
            RecordSelector::Logs(sel) => {
                Fetched::Logs(self.read_logs(sel, start_ns, end_ns, limit)?)
            }
            RecordSelector::Spans(sel) => {
                Fetched::Spans(self.read_spans(sel, start_ns, end_ns, limit)?)
            }
        };
        let f = std::rc::Rc::new(f);
        self.records.fetched.insert(k, f.clone());
        Ok(f)
    }

    fn read_logs(
        &self,
        sel: &LogSelector,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
    ) -> Result<Vec<LogRecord>> {
        let q = LogSearch {
            // Structured-body keys are not indexed: checked on the rows.
            matchers: sel
                .matchers
                .iter()
                .filter(|m| !m.name.starts_with("body."))
                .cloned()
                .collect(),
            text: sel.text_prefilter(),
            start_ns,
            end_ns,
            limit: limit.saturating_add(1),
        };
        let mut rows = self.db.search_logs(&q)?;
        if rows.len() > limit {
            return Err(too_many("log", limit));
        }
        let test = sel.test();
        rows.retain(|r| test.accepts(r));
        rows.reverse();
        Ok(rows)
    }

    fn read_spans(
        &self,
        sel: &SpanSelector,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
    ) -> Result<Vec<Span>> {
        let mut first =
            self.db
                .find_spans(&sel.first.search(start_ns, end_ns, limit.saturating_add(1)))?;
        if first.len() > limit {
            return Err(too_many("span", limit));
        }
        if sel.steps.is_empty() {
            first.reverse();
            return Ok(first);
        }
        let mut ids: Vec<TraceId> = first.iter().map(|s| s.trace_id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > MAX_STRUCTURAL_TRACES {
            return Err(Error::Limit(format!(
                "the structural span selector would open {} traces, more than \
                 {MAX_STRUCTURAL_TRACES}; narrow its first condition or the time range",
                ids.len()
            )));
        }
        let mut out = Vec::new();
        for chunk in ids.chunks(TRACES_PER_READ) {
            self.check_deadline()?;
            for t in self.db.traces(chunk)? {
                out.extend(structural(t, sel, |s| {
                    s.start_ns >= start_ns && s.start_ns <= end_ns
                }));
            }
        }
        out.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(a.span_id.cmp(&b.span_id)));
        Ok(out)
    }

    /// Every trace of `ids`, in the order given, at most `limit`.
    pub(crate) fn read_traces(&self, ids: &[TraceId], limit: usize) -> Result<Vec<Trace>> {
        let mut out = Vec::new();
        for chunk in ids[..ids.len().min(limit)].chunks(TRACES_PER_READ) {
            self.check_deadline()?;
            out.extend(self.db.traces(chunk)?);
        }
        Ok(out)
    }

    /// A selector node's value at `t`: its records in `(t - range, t]`, or in
    /// its whole window when it has no range, newest first.
    pub(crate) fn records_value(&mut self, e: &Expr, t: i64) -> Result<Value> {
        let Expr::Records { range, .. } = e else {
            return Err(Error::Eval("not a record selector".into()));
        };
        let f = self.fetched(e)?;
        let (lo, hi) = match range {
            Some(r) => (t - r, t),
            None => (i64::MIN, i64::MAX),
        };
        Ok(match &*f {
            Fetched::Logs(rows) => Value::Logs(
                rows.iter()
                    .rev()
                    .filter(|r| r.time_ms() > lo && r.time_ms() <= hi)
                    .cloned()
                    .collect(),
            ),
            Fetched::Spans(spans) => Value::Spans(
                spans
                    .iter()
                    .rev()
                    .filter(|s| s.start_ms() > lo && s.start_ms() <= hi)
                    .cloned()
                    .collect(),
            ),
        })
    }

    /// `trace("id")`, `traces(spans)` and `exemplar_traces(metric[range])`.
    pub(crate) fn trace_call(&mut self, func: &str, args: &[Expr], t: i64) -> Result<Value> {
        let limit = self.opts.max_traces;
        let ids: Vec<TraceId> = match (func, args) {
            ("trace", [Expr::Str(id)]) => {
                vec![sextant_storage::parse_trace_id(id).map_err(|e| Error::Eval(e.to_string()))?]
            }
            ("traces", [arg]) => {
                let Value::Spans(spans) = self.eval(arg, t)? else {
                    return Err(Error::Eval("traces() takes a span set".into()));
                };
                first_seen(spans.iter().map(|s| s.trace_id))
            }
            ("exemplar_traces", [arg]) => {
                let mut reads = Vec::new();
                windows(arg, self.opts.lookback_ms, 0, &mut reads);
                let mut ex: Vec<(i64, TraceId)> = Vec::new();
                for (vs, back) in reads {
                    let te = self.effective(vs.at, vs.offset, t);
                    ex.extend(
                        self.db
                            .exemplars(&vs.matchers, te - back + 1, te)?
                            .into_iter()
                            .flat_map(|(_, e)| e.into_iter().map(|e| (e.t, e.trace_id)))
                            .filter(|(_, id)| *id != [0; 16]),
                    );
                }
                ex.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                first_seen(ex.into_iter().map(|(_, id)| id))
            }
            _ => return Err(Error::Eval(format!("bad arguments to {func}()"))),
        };
        if ids.len() > limit {
            self.warnings.insert(format!(
                "{func}() found {} traces and returns the first {limit} (raise max_traces)",
                ids.len()
            ));
        }
        Ok(Value::Traces(self.read_traces(&ids, limit)?))
    }
}

/// Every metric selector of `e` with how far back from its evaluation
/// time it reads (its range, or the lookback; enclosing subqueries add
/// theirs): the windows whose exemplars are "behind" the expression.
fn windows<'e>(
    e: &'e Expr,
    lookback: i64,
    extra: i64,
    out: &mut Vec<(&'e crate::ast::VectorSelector, i64)>,
) {
    match e {
        Expr::Vector(vs) => out.push((vs, lookback + extra)),
        Expr::Matrix(vs, r) => out.push((vs, r + extra)),
        Expr::Subquery { expr, range, .. } => windows(expr, lookback, extra + range, out),
        e => e
            .children()
            .into_iter()
            .for_each(|c| windows(c, lookback, extra, out)),
    }
}

/// Ids in first-seen order, without repeats.
fn first_seen(ids: impl Iterator<Item = TraceId>) -> Vec<TraceId> {
    let mut seen = FxHashSet::default();
    ids.filter(|id| seen.insert(*id)).collect()
}

/// The spans of trace `t` that `sel` selects and `also` accepts, moved out
/// of it: each step keeps the spans meeting its condition that stand in
/// its relation to a span kept by the step before.
pub(crate) fn structural(t: Trace, sel: &SpanSelector, also: impl Fn(&Span) -> bool) -> Vec<Span> {
    let n = t.spans.len();
    let mut keep: Vec<bool> = t.spans.iter().map(|s| sel.first.accepts(s)).collect();
    for (rel, cond) in &sel.steps {
        let mut next = vec![false; n];
        for (i, s) in t.spans.iter().enumerate() {
            if !cond.accepts(s) {
                continue;
            }
            next[i] = match rel {
                Relation::Child => t.parents[i].is_some_and(|p| keep[p]),
                Relation::Descendant => {
                    let mut p = t.parents[i];
                    let mut found = false;
                    let mut hops = 0;
                    while let Some(j) = p {
                        if keep[j] {
                            found = true;
                            break;
                        }
                        hops += 1;
                        if hops > n {
                            break;
                        }
                        p = t.parents[j];
                    }
                    found
                }
                Relation::Parent => (0..n).any(|c| keep[c] && t.parents[c] == Some(i)),
                Relation::Ancestor => (0..n).any(|c| {
                    let mut p = t.parents[c];
                    let mut hops = 0;
                    while let Some(j) = p {
                        if j == i {
                            return keep[c];
                        }
                        hops += 1;
                        if hops > n {
                            break;
                        }
                        p = t.parents[j];
                    }
                    false
                }),
            };
        }
        keep = next;
    }
    t.spans
        .into_iter()
        .zip(keep)
        .filter(|(s, k)| *k && also(s))
        .map(|(s, _)| s)
        .collect()
}

/// An aggregation over records (given newest first).
pub(crate) fn aggregate(
    op: AggOp,
    param: Option<f64>,
    grouping: &[String],
    v: Value,
) -> Result<Value> {
    let k = param.unwrap_or(f64::NAN);
    if matches!(op, AggOp::Topk | AggOp::Bottomk | AggOp::Limitk) {
        if !k.is_finite() || k < 0.0 {
            return Err(Error::Eval(format!(
                "{}: k must be a non-negative number, got {k}",
                op.name()
            )));
        }
        let k = k as usize;
        return Ok(match v {
            Value::Spans(mut spans) => {
                match op {
                    AggOp::Topk => spans.sort_by_key(|s| std::cmp::Reverse(s.duration_ns())),
                    AggOp::Bottomk => spans.sort_by_key(Span::duration_ns),
                    _ => {}
                }
                spans.truncate(k);
                Value::Spans(spans)
            }
            Value::Logs(mut rows) => {
                rows.truncate(k);
                Value::Logs(rows)
            }
            other => other,
        });
    }
    // Group key → durations (s) of its spans, or one 0 per log record.
    let mut groups: std::collections::BTreeMap<Vec<(String, String)>, Vec<f64>> =
        Default::default();
    let key = |field: &dyn Fn(&str) -> Option<String>| -> Vec<(String, String)> {
        grouping
            .iter()
            .filter_map(|n| Some((n.clone(), field(n).filter(|v| !v.is_empty())?)))
            .collect()
    };
    match &v {
        Value::Spans(spans) => {
            for s in spans {
                let k = key(&|n| span_field(s, n).map(|v| v.into_owned()));
                groups
                    .entry(k)
                    .or_default()
                    .push(s.duration_ns() as f64 / 1e9);
            }
        }
        Value::Logs(rows) => {
            for r in rows {
                let k = key(&|n| log_field(r, n).map(|v| v.into_owned()));
                groups.entry(k).or_default().push(0.0);
            }
        }
        _ => return Err(Error::Eval("aggregation over a non-record value".into())),
    }
    let mut out = Vec::with_capacity(groups.len());
    for (labels, mut vals) in groups {
        let v = match op {
            AggOp::Count => vals.len() as f64,
            AggOp::Sum => vals.iter().sum(),
            AggOp::Avg => crate::aggregate::mean(&vals),
            AggOp::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
            AggOp::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            AggOp::Quantile => crate::aggregate::quantile(k, &mut vals),
            _ => continue,
        };
        let labels =
            sextant_storage::Labels::new(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                .map_err(|e| Error::Eval(e.to_string()))?;
        out.push(crate::value::Elem::float(labels, v));
    }
    Ok(Value::Vector(out))
}
