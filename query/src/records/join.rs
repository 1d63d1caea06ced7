//! Joins between records: `L and on(trace_id) R` keeps the records of L
//! whose trace also holds a record of R, `unless` those whose trace does
//! not, `on(span_id)` pairs a log with the span that wrote it; `or` is the
//! union of two selections of one kind. PromQL's set operators, with
//! records in place of series.
//!
//! Planning: the side that looks more selective (more conditions; a
//! ranking or a nested join counts as most) is evaluated first, and when
//! it names few traces the other side is not searched at all but read by
//! trace id (each block's trace-id table behind its bloom filter), then
//! checked against its own selector; otherwise both are read by their own
//! searches and intersected.

use rustc_hash::FxHashSet;
use sextant_storage::{LogRecord, Span, TraceId};

use super::eval::{TRACES_PER_READ, node, structural};
use crate::ast::{BinOp, Expr, VectorMatching};
use crate::engine::Eval;
use crate::error::{Error, Result};
use crate::records::RecordSelector;
use crate::typing::{Key, key_of};
use crate::value::Value;

/// Most distinct traces of R for which L is read by trace id instead of
/// by its own search.
const LOOKUP_MAX_TRACES: usize = 10_000;

/// How selective a join operand looks: the conditions of a selector (line
/// filters and structure count double); anything else is taken as already
/// narrow (a ranking, another join), so it goes first.
fn weight(e: &Expr) -> usize {
    match e {
        Expr::Records { selector, .. } => match &**selector {
            RecordSelector::Logs(l) => l.matchers.len() + 2 * l.filters.len(),
            RecordSelector::Spans(s) => {
                let cond = |c: &crate::records::SpanCond| c.matchers.len() + c.durations.len();
                cond(&s.first) + s.steps.iter().map(|(_, c)| 2 + cond(c)).sum::<usize>()
            }
        },
        Expr::Paren(x) => weight(x),
        _ => usize::MAX,
    }
}

/// A record's join keys.
trait Keyed {
    fn trace_id(&self) -> TraceId;
    fn span_id(&self) -> [u8; 8];
    fn time_ms(&self) -> i64;
}

/// Implements [`Keyed`] for a record type with `trace_id` and `span_id`
/// fields, given the method that gives its time in ms.
macro_rules! keyed {
    ($t:ty, $time:ident) => {
        impl Keyed for $t {
            fn trace_id(&self) -> TraceId {
                self.trace_id
            }
            fn span_id(&self) -> [u8; 8] {
                self.span_id
            }
            fn time_ms(&self) -> i64 {
                <$t>::$time(self)
            }
        }
    };
}

keyed!(LogRecord, time_ms);
keyed!(Span, start_ms);

/// The keys of R: trace ids, and span ids (as trace id + span id).
#[derive(Default)]
struct Keys {
    traces: FxHashSet<TraceId>,
    spans: FxHashSet<(TraceId, [u8; 8])>,
}

impl Keys {
    fn of<T: Keyed>(rows: &[T]) -> Keys {
        let mut k = Keys::default();
        for r in rows {
            if r.trace_id() != [0; 16] {
                k.traces.insert(r.trace_id());
                k.spans.insert((r.trace_id(), r.span_id()));
            }
        }
        k
    }

    fn of_value(v: &Value) -> Result<Keys> {
        match v {
            Value::Logs(rows) => Ok(Keys::of(rows)),
            Value::Spans(spans) => Ok(Keys::of(spans)),
            _ => Err(Error::Eval("join with a non-record operand".into())),
        }
    }

    fn holds<T: Keyed>(&self, key: Key, r: &T) -> bool {
        match key {
            Key::Trace => self.traces.contains(&r.trace_id()),
            Key::Span => self.spans.contains(&(r.trace_id(), r.span_id())),
        }
    }
}

/// The records of `v` whose key `keys` holds (`and`) or does not.
fn keep(v: Value, keys: &Keys, key: Key, and: bool) -> Result<Value> {
    fn filter<T: Keyed>(rows: Vec<T>, keys: &Keys, key: Key, and: bool) -> Vec<T> {
        rows.into_iter()
            .filter(|r| keys.holds(key, r) == and)
            .collect()
    }
    Ok(match v {
        Value::Logs(rows) => Value::Logs(filter(rows, keys, key, and)),
        Value::Spans(spans) => Value::Spans(filter(spans, keys, key, and)),
        _ => return Err(Error::Eval("join with a non-record operand".into())),
    })
}

/// Newest first, ties by trace and span id; no record twice.
fn newest_first<T: Keyed>(rows: &mut Vec<T>) {
    rows.sort_by(|a, b| {
        b.time_ms()
            .cmp(&a.time_ms())
            .then_with(|| a.trace_id().cmp(&b.trace_id()))
            .then_with(|| a.span_id().cmp(&b.span_id()))
    });
    rows.dedup_by(|a, b| {
        a.trace_id() == b.trace_id() && a.span_id() == b.span_id() && a.time_ms() == b.time_ms()
    });
}

impl Eval<'_> {
    /// `lhs op rhs` over records at time `t`.
    pub(crate) fn join(
        &mut self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        m: Option<&VectorMatching>,
        t: i64,
    ) -> Result<Value> {
        if op != BinOp::Or && weight(lhs) > weight(rhs) {
            return self.join_from_left(op, lhs, rhs, m, t);
        }
        let r = self.eval(rhs, t)?;
        if op == BinOp::Or {
            return Ok(match (self.eval(lhs, t)?, r) {
                (Value::Logs(mut a), Value::Logs(b)) => {
                    a.extend(b);
                    newest_first(&mut a);
                    Value::Logs(a)
                }
                (Value::Spans(mut a), Value::Spans(b)) => {
                    a.extend(b);
                    newest_first(&mut a);
                    Value::Spans(a)
                }
                _ => return Err(Error::Eval("\"or\" of records of two kinds".into())),
            });
        }
        let key = key_of(m).ok_or_else(|| Error::Eval("join without on(trace_id)".into()))?;
        let keys = Keys::of_value(&r)?;
        let and = op == BinOp::And;
        let l = match self.lookup(lhs, &keys, key, t, and)? {
            Some(v) => v,
            None => self.eval(lhs, t)?,
        };
        keep(l, &keys, key, and)
    }

    /// `lhs op rhs` when L looks the more selective: L is evaluated first
    /// and R read only in L's traces (all a join can use of R).
    fn join_from_left(
        &mut self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        m: Option<&VectorMatching>,
        t: i64,
    ) -> Result<Value> {
        let key = key_of(m).ok_or_else(|| Error::Eval("join without on(trace_id)".into()))?;
        let l = self.eval(lhs, t)?;
        let traces = Keys::of_value(&l)?;
        let r = match self.lookup(rhs, &traces, Key::Trace, t, true)? {
            Some(v) => v,
            None => self.eval(rhs, t)?,
        };
        keep(l, &Keys::of_value(&r)?, key, op == BinOp::And)
    }

    /// L read by R's trace ids, when L is a selector, the join keeps
    /// matches (`and`) and R names few traces; `None` otherwise.
    fn lookup(
        &mut self,
        lhs: &Expr,
        keys: &Keys,
        key: Key,
        t: i64,
        and: bool,
    ) -> Result<Option<Value>> {
        let Expr::Records { selector, range } = lhs else {
            return Ok(None);
        };
        if !and || keys.traces.len() > LOOKUP_MAX_TRACES {
            return Ok(None);
        }
        let (lo, hi) = match range {
            Some(r) => (t - r, t),
            None => self
                .records
                .windows
                .get(&node(lhs))
                .copied()
                .unwrap_or((0, -1)),
        };
        let mut ids: Vec<TraceId> = keys.traces.iter().copied().collect();
        ids.sort_unstable();
        let inside = |ms: i64| ms > lo && ms <= hi;
        // On span ids, only the records with a wanted span are built.
        let by_span = |t: &TraceId, s: &[u8; 8]| keys.spans.contains(&(*t, *s));
        let pick: Option<sextant_storage::IdPick<'_>> = match key {
            Key::Span => Some(&by_span),
            Key::Trace => None,
        };
        Ok(Some(match &**selector {
            RecordSelector::Logs(sel) => {
                let test = sel.test();
                let mut rows = Vec::new();
                for chunk in ids.chunks(TRACES_PER_READ) {
                    self.check_deadline()?;
                    rows.extend(
                        self.db.traces_logs(chunk, pick)?.into_iter().filter(|r| {
                            inside(r.time_ms()) && test.accepts(r) && keys.holds(key, r)
                        }),
                    );
                }
                newest_first(&mut rows);
                Value::Logs(rows)
            }
            // No structure: the picked spans themselves, not whole traces.
            RecordSelector::Spans(sel) if sel.steps.is_empty() && pick.is_some() => {
                let mut spans = Vec::new();
                for chunk in ids.chunks(TRACES_PER_READ) {
                    self.check_deadline()?;
                    spans.extend(
                        self.db
                            .traces_spans(chunk, pick)?
                            .into_iter()
                            .filter(|s| inside(s.start_ms()) && sel.first.accepts(s)),
                    );
                }
                newest_first(&mut spans);
                Value::Spans(spans)
            }
            RecordSelector::Spans(sel) => {
                let mut spans = Vec::new();
                for chunk in ids.chunks(TRACES_PER_READ) {
                    self.check_deadline()?;
                    for tr in self.db.traces(chunk)? {
                        spans.extend(structural(tr, sel, |s| {
                            inside(s.start_ms()) && keys.holds(key, s)
                        }));
                    }
                }
                newest_first(&mut spans);
                Value::Spans(spans)
            }
        }))
    }
}
