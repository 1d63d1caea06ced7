//! Records → series: `count_over_time(logs(...)[5m])`, `rate(spans(...)[1m])`,
//! `quantile_over_time(0.99, spans(...)[5m])`, `error_ratio(...)`. A log
//! series is one per `service` and `level`, a span series one per
//! `service` and `operation` (the span name), each further split by the
//! selector's `| by(...)` attributes; their samples are the records, so
//! the series then take part in PromQL like any other (aggregations,
//! `on(service)` matching against stored metrics).

use std::rc::Rc;

use rustc_hash::FxHashMap;
use sextant_storage::{Labels, LogRecord, Sample, Span};

use super::eval::{Fetched, log_field, node, span_field};
use crate::ast::Expr;
use crate::engine::Eval;
use crate::error::{Error, Result};
use crate::functions::range_function;
use crate::records::RecordSelector;
use crate::typing::{Measure, measure, record_arg};
use crate::value::{Elem, Value};

/// Derived series of one selector: labels and points, oldest first.
pub(crate) type DerivedSet = Vec<(Labels, Vec<Sample>)>;

/// Whether a call reads a record range (and is evaluated here).
pub(crate) fn is_derived(args: &[Expr]) -> bool {
    record_arg(args).is_some()
}

fn series_labels(base: [(&str, &str); 2], by: &[(String, Option<String>)]) -> Labels {
    Labels::new(
        base.into_iter()
            .chain(
                by.iter()
                    .filter_map(|(n, v)| Some((n.as_str(), v.as_deref()?))),
            )
            .filter(|(_, v)| !v.is_empty()),
    )
    .unwrap_or_else(|_| Labels::empty())
}

fn point(t: i64, m: Measure, bytes: impl FnOnce() -> usize, secs: f64, err: bool) -> Sample {
    let v = match m {
        Measure::Count => 1.0,
        Measure::Bytes => bytes() as f64,
        Measure::Seconds => secs,
        Measure::Error => f64::from(u8::from(err)),
    };
    Sample::new(t, v)
}

fn group<T>(rows: &[T], key: impl Fn(&T) -> Labels, sample: impl Fn(&T) -> Sample) -> DerivedSet {
    let mut by: FxHashMap<Labels, Vec<Sample>> = FxHashMap::default();
    for r in rows {
        by.entry(key(r)).or_default().push(sample(r));
    }
    let mut out: DerivedSet = by.into_iter().collect();
    for (_, pts) in &mut out {
        pts.sort_by_key(|p| p.t);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn log_series(rows: &[LogRecord], by: &[String], m: Measure) -> DerivedSet {
    group(
        rows,
        |r| {
            let extra: Vec<(String, Option<String>)> = by
                .iter()
                .map(|n| (n.clone(), log_field(r, n).map(|v| v.into_owned())))
                .collect();
            let level = sextant_storage::level_of(r.severity, &r.severity_text);
            series_labels([("service", &r.service()), ("level", &level)], &extra)
        },
        |r| point(r.time_ms(), m, || r.body.to_text().len(), 0.0, false),
    )
}

fn span_series(spans: &[Span], by: &[String], m: Measure) -> DerivedSet {
    group(
        spans,
        |s| {
            let extra: Vec<(String, Option<String>)> = by
                .iter()
                .map(|n| (n.clone(), span_field(s, n).map(|v| v.into_owned())))
                .collect();
            series_labels([("service", &s.service()), ("operation", &s.name)], &extra)
        },
        |s| {
            point(
                s.start_ms(),
                m,
                || 0,
                s.duration_ns() as f64 / 1e9,
                s.failed(),
            )
        },
    )
}

impl Eval<'_> {
    fn derived(&mut self, e: &Expr, m: Measure) -> Result<Rc<DerivedSet>> {
        let key = (node(e), m as u8);
        if let Some(d) = self.records.derived.get(&key) {
            return Ok(d.clone());
        }
        let Expr::Records { selector, .. } = e else {
            return Err(Error::Eval("not a record selector".into()));
        };
        let f = self.fetched(e)?;
        let set = Rc::new(match (&*f, &**selector) {
            (Fetched::Logs(rows), RecordSelector::Logs(sel)) => log_series(rows, &sel.by, m),
            (Fetched::Spans(spans), RecordSelector::Spans(sel)) => span_series(spans, &sel.by, m),
            _ => return Err(Error::Eval("record selector read the wrong records".into())),
        });
        self.records.derived.insert(key, set.clone());
        Ok(set)
    }

    /// A function over a log or span range at time `t`.
    pub(crate) fn derived_call(&mut self, func: &str, args: &[Expr], t: i64) -> Result<Value> {
        let Some((at, logs)) = record_arg(args) else {
            return Err(Error::Eval(format!("{func}() has no record range")));
        };
        let Some(m) = measure(func, logs) else {
            return Err(Error::Eval(format!("{func}() does not take this range")));
        };
        let Expr::Records {
            range: Some(range), ..
        } = &args[at]
        else {
            return Err(Error::Eval("not a record range".into()));
        };
        let mut params = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != at {
                match self.eval(a, t)? {
                    Value::Scalar(v) => params.push(v),
                    _ => {
                        return Err(Error::Eval(format!(
                            "{func}() takes numbers besides the range"
                        )));
                    }
                }
            }
        }
        if func == "quantile_over_time" {
            self.warn_quantile(params.first().copied().unwrap_or(f64::NAN));
        }
        let secs = *range as f64 / 1000.0;
        let general = match func {
            "count_over_time" | "rate" | "bytes_over_time" | "bytes_rate" | "error_ratio"
            | "present_over_time" | "absent_over_time" => None,
            _ => Some(range_function(func, &params)?.0),
        };
        let set = self.derived(&args[at], m)?;
        let mut out = Vec::new();
        for (labels, pts) in set.iter() {
            let lo = pts.partition_point(|p| p.t <= t - range);
            let hi = pts.partition_point(|p| p.t <= t);
            let w = &pts[lo..hi];
            if w.is_empty() {
                continue;
            }
            let sum = || w.iter().map(|p| p.v).sum::<f64>();
            let v = match func {
                "count_over_time" => w.len() as f64,
                "rate" => w.len() as f64 / secs,
                "bytes_over_time" => sum(),
                "bytes_rate" => sum() / secs,
                "error_ratio" => sum() / w.len() as f64,
                "present_over_time" | "absent_over_time" => 1.0,
                _ => match general.as_ref().and_then(|f| f(w, t - range, t, t)) {
                    Some(v) => v,
                    None => continue,
                },
            };
            out.push(Elem::float(labels.clone(), v));
        }
        if func == "absent_over_time" {
            out = if out.is_empty() {
                vec![Elem::float(Labels::empty(), 1.0)]
            } else {
                Vec::new()
            };
        }
        Ok(Value::Vector(out))
    }
}
