//! Typing of the query language in one place: the type of every
//! expression (PromQL's and the records'), and the checks of what records
//! combine with. The parser runs these on each node it builds, so a parsed
//! tree is well-typed; the evaluator asks the same functions what a node
//! is, so the two never disagree.

use crate::ast::{AggOp, BinOp, Expr, VectorMatching};
use crate::records::RecordSelector;
use crate::types::{ValueType, signature};

/// The value type of a well-typed expression. Each node is visited at
/// most once (a parser calls this at every level, and a tree may be 256
/// levels deep).
pub fn value_type(e: &Expr) -> ValueType {
    match e {
        Expr::Number(_) => ValueType::Scalar,
        Expr::Str(_) => ValueType::String,
        Expr::Vector(_) => ValueType::Vector,
        Expr::Matrix(..) | Expr::Subquery { .. } => ValueType::Matrix,
        Expr::Paren(e) | Expr::Neg(e) => value_type(e),
        Expr::Binary { lhs, rhs, .. } => match record_type(lhs) {
            // A join has the type of its left side.
            Some(t) => t,
            None if value_type(lhs) == ValueType::Scalar
                && value_type(rhs) == ValueType::Scalar =>
            {
                ValueType::Scalar
            }
            None => ValueType::Vector,
        },
        Expr::Aggregate {
            op: AggOp::Topk | AggOp::Bottomk | AggOp::Limitk,
            expr,
            ..
        } => record_type(expr).unwrap_or(ValueType::Vector),
        Expr::Aggregate { .. } => ValueType::Vector,
        Expr::Call { func, .. } => signature(func).map_or(ValueType::Vector, |s| s.ret),
        Expr::Records { range: Some(_), .. } => ValueType::Matrix,
        Expr::Records { selector, .. } => match **selector {
            RecordSelector::Logs(_) => ValueType::Logs,
            RecordSelector::Spans(_) => ValueType::Spans,
        },
    }
}

/// The record type `e` yields where records are expected (a join's side,
/// an aggregation's operand, `traces`' argument): a log or span selector
/// with or without `[range]`, or an expression of record type.
pub(crate) fn record_type(e: &Expr) -> Option<ValueType> {
    match e {
        Expr::Records { selector, .. } => Some(match **selector {
            RecordSelector::Logs(_) => ValueType::Logs,
            RecordSelector::Spans(_) => ValueType::Spans,
        }),
        Expr::Paren(x) => record_type(x),
        // Only these shapes can yield records; anything else is PromQL,
        // answered without walking down the tree.
        Expr::Binary { op, lhs, .. } if op.is_set() => record_type(lhs),
        Expr::Aggregate {
            op: AggOp::Topk | AggOp::Bottomk | AggOp::Limitk,
            expr,
            ..
        } => record_type(expr),
        Expr::Call { .. } => Some(value_type(e)).filter(|t| is_records(*t)),
        _ => None,
    }
}

/// Whether values of this type are records (logs, spans, traces).
pub(crate) fn is_records(t: ValueType) -> bool {
    matches!(t, ValueType::Logs | ValueType::Spans | ValueType::Traces)
}

/// The join key named by `on(...)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Trace,
    Span,
}

pub(crate) fn key_of(m: Option<&VectorMatching>) -> Option<Key> {
    match m {
        Some(m) if m.on && m.group.is_none() && m.labels.len() == 1 => match m.labels[0].as_str() {
            "trace_id" => Some(Key::Trace),
            "span_id" => Some(Key::Span),
            _ => None,
        },
        _ => None,
    }
}

/// Parse-time checks of a binary operation with records on either side.
pub(crate) fn check_join(
    op: BinOp,
    lt: ValueType,
    rt: ValueType,
    m: Option<&VectorMatching>,
) -> std::result::Result<(), String> {
    let records = |t| t == ValueType::Logs || t == ValueType::Spans;
    if m.is_some_and(|m| m.fill_left.is_some() || m.fill_right.is_some()) {
        return Err("fill modifiers fill in missing series; records have none to fill".into());
    }
    if !records(lt) || !records(rt) {
        return Err(format!(
            "a {} and a {} do not combine with \"{}\"; records join records (logs(...) and \
             on(trace_id) spans(...)), and metrics compare with series derived from records, \
             e.g. rate(spans({{...}})[5m])",
            lt.name(),
            rt.name(),
            format!("{op:?}").to_lowercase()
        ));
    }
    match op {
        BinOp::And | BinOp::Unless => {
            if key_of(m).is_none() {
                return Err(format!(
                    "\"{}\" between records needs on(trace_id) or on(span_id)",
                    format!("{op:?}").to_lowercase()
                ));
            }
            Ok(())
        }
        BinOp::Or if lt == rt && m.is_none() => Ok(()),
        BinOp::Or => Err("\"or\" joins two selections of the same kind, without on(...)".into()),
        _ => Err(format!(
            "records combine only with and, unless and or, not \"{}\"",
            format!("{op:?}").to_lowercase()
        )),
    }
}

/// What a derived point's value is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    /// Only the count matters.
    Count,
    /// The log body's length in bytes.
    Bytes,
    /// The span's duration in seconds.
    Seconds,
    /// 1 for a span with error status, else 0.
    Error,
}

/// The functions that take a log or span range, and what they measure.
pub(crate) fn measure(func: &str, logs: bool) -> Option<Measure> {
    Some(match func {
        "count_over_time" | "rate" | "present_over_time" | "absent_over_time" => Measure::Count,
        "bytes_over_time" | "bytes_rate" if logs => Measure::Bytes,
        "error_ratio" if !logs => Measure::Error,
        "avg_over_time" | "min_over_time" | "max_over_time" | "sum_over_time"
        | "quantile_over_time" | "stddev_over_time" | "stdvar_over_time"
            if !logs =>
        {
            Measure::Seconds
        }
        _ => return None,
    })
}

/// The record range among `args`: its index and whether it is of logs.
pub(crate) fn record_arg(args: &[Expr]) -> Option<(usize, bool)> {
    args.iter().enumerate().find_map(|(i, a)| match a {
        Expr::Records {
            selector,
            range: Some(_),
        } => Some((i, matches!(**selector, RecordSelector::Logs(_)))),
        _ => None,
    })
}

/// Parse-time checks of calls with a record range, and of the functions
/// that need one.
pub(crate) fn check_call(func: &str, args: &[Expr]) -> std::result::Result<(), String> {
    match record_arg(args) {
        Some((_, logs)) if measure(func, logs).is_none() => Err(format!(
            "{func}() does not take a {} range; it takes count_over_time, rate, {}",
            if logs { "log" } else { "span" },
            if logs {
                "bytes_over_time, bytes_rate, present_over_time or absent_over_time"
            } else {
                "error_ratio, present_over_time, absent_over_time and the duration functions \
                 avg/min/max/sum/stddev/stdvar/quantile_over_time"
            }
        )),
        Some(_) => Ok(()),
        None => match func {
            "bytes_over_time" | "bytes_rate" => Err(format!(
                "{func}() takes a log range, e.g. {func}(logs({{service=\"api\"}})[5m])"
            )),
            "error_ratio" => Err(
                "error_ratio() takes a span range, e.g. error_ratio(spans({service=\"api\"})[5m])"
                    .into(),
            ),
            "exemplar_traces" if args.first().is_none_or(|a| a.selectors().is_empty()) => Err(
                "exemplar_traces() takes a metric expression or range selector, e.g. \
                 exemplar_traces(http_requests_total{code=~\"5..\"}[15m])"
                    .into(),
            ),
            "trace" => match args {
                [Expr::Str(id)] => sextant_storage::parse_trace_id(id)
                    .map(|_| ())
                    .map_err(|e| format!("{e}; e.g. trace(\"4bf92f3577b34da6a3ce929d0e0e4736\")")),
                _ => Err("trace() takes a trace id as a string literal".into()),
            },
            _ => Ok(()),
        },
    }
}

/// Checks an aggregation over records. `topk`/`bottomk` rank spans by
/// duration and `limitk` keeps the newest records (records out);
/// `count by (...)` counts records and `sum`/`avg`/`min`/`max`/`quantile`
/// `by (...)` aggregate span durations in seconds (a vector out), grouped
/// by fields and attributes.
pub(crate) fn check_aggregate(
    op: AggOp,
    t: ValueType,
    param: Option<&Expr>,
    grouping: &[String],
    without: bool,
) -> std::result::Result<(), String> {
    let spans = t == ValueType::Spans;
    let ok = match op {
        AggOp::Topk | AggOp::Bottomk => spans,
        AggOp::Limitk | AggOp::Count => spans || t == ValueType::Logs,
        AggOp::Sum | AggOp::Avg | AggOp::Min | AggOp::Max | AggOp::Quantile => spans,
        _ => false,
    };
    if !ok {
        return Err(format!(
            "{} cannot aggregate a {}: spans take topk, bottomk, limitk (records out) and count, \
             sum, avg, min, max, quantile of durations (by fields, a vector out); logs take \
             limitk and count",
            op.name(),
            t.name()
        ));
    }
    // Fields every record has but that are no group key: grouping by them
    // would silently form one group of records lacking such an attribute.
    if let Some(f) = grouping.iter().find(|g| {
        matches!(
            g.as_str(),
            "duration" | "start" | "end" | "time" | "timestamp" | "body" | "events" | "links"
        )
    }) {
        return Err(format!(
            "{} over records cannot group by {f:?}: group by service, name, kind, status, \
             level, trace_id, span_id or an attribute",
            op.name()
        ));
    }
    let ranking = matches!(op, AggOp::Topk | AggOp::Bottomk | AggOp::Limitk);
    if without || (ranking && !grouping.is_empty()) {
        return Err(format!(
            "{} over records takes {}",
            op.name(),
            if ranking {
                "no by/without"
            } else {
                "by (...), not without"
            }
        ));
    }
    match (op.has_param(), param.map(value_type)) {
        (true, Some(ValueType::Scalar)) | (false, None) => Ok(()),
        _ => Err(format!(
            "{} takes a number first, e.g. {}(5, spans({{}}))",
            op.name(),
            op.name()
        )),
    }
}
