//! Values an expression evaluates to: PromQL's, and records.

use std::sync::Arc;

use sextant_storage::{
    Histogram, HistogramSample, Labels, LogRecord, METRIC_NAME, Sample, Span, Trace,
};

/// The bit pattern Prometheus uses to mark a series as stale.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the staleness marker.
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}

/// One element of an instant vector: a float, or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Elem {
    /// Its labels.
    pub labels: Labels,
    /// Its value (0 and meaningless when `h` is set).
    pub v: f64,
    /// Its native histogram, if it holds one instead of a float.
    pub h: Option<Arc<Histogram>>,
    /// Whether its `__name__` is to be dropped when the query's result is
    /// complete (see [`NameCache`]).
    pub drop_name: bool,
}

impl Elem {
    /// A float element.
    pub fn float(labels: Labels, v: f64) -> Self {
        Elem {
            labels,
            v,
            h: None,
            drop_name: false,
        }
    }

    /// A histogram element.
    pub fn histogram(labels: Labels, h: Arc<Histogram>) -> Self {
        Elem {
            labels,
            v: 0.0,
            h: Some(h),
            drop_name: false,
        }
    }

    /// This element as an operation that drops the name leaves it.
    pub(crate) fn unnamed(mut self, names: &mut NameCache) -> Self {
        self.labels = names.drop_name(&self.labels);
        self.drop_name = true;
        self
    }
}

/// A series of a range vector (or of a range query's result).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Its labels.
    pub labels: Labels,
    /// Its points, ascending by time.
    pub points: Vec<Sample>,
    /// Its native-histogram points, ascending by time.
    pub histograms: Vec<HistogramSample>,
    /// Whether its `__name__` is to be dropped when the query's result is
    /// complete (see [`NameCache`]).
    pub drop_name: bool,
}

/// A typed query result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// A string.
    Str(String),
    /// An instant vector.
    Vector(Vec<Elem>),
    /// A range vector, or a range query's result.
    Matrix(Vec<RangeSeries>),
    /// Log records, newest first.
    Logs(Vec<LogRecord>),
    /// Spans, newest first (by duration after `topk`/`bottomk`).
    Spans(Vec<Span>),
    /// Whole traces.
    Traces(Vec<Trace>),
}

/// The metadata labels Prometheus' type-and-unit labels put beside the
/// name: they describe the metric, so they go wherever the name goes.
pub const METADATA_LABELS: [&str; 2] = ["__type__", "__unit__"];

/// `labels` without `__name__` (and the `__type__` and `__unit__` that
/// describe it).
pub fn drop_name(labels: &Labels) -> Labels {
    labels.retain(|n| n != METRIC_NAME && !METADATA_LABELS.contains(&n))
}

/// How an operation that drops `__name__` (`rate`, `abs`, `x * 2`, …)
/// drops it, memoised per query: a range query drops the name of the same
/// series at every step, and building a label set allocates.
///
/// Eagerly (Prometheus' default), the name goes at once. Delayed
/// (Prometheus' `promql-delayed-name-removal`, which its test files
/// assume), the element keeps its name, flagged `drop_name`, until the
/// query's result is complete: `label_replace` can still read or keep it,
/// `sum by (__name__)` still sees it, and series of different names do not
/// collide half way.
#[derive(Default)]
pub(crate) struct NameCache {
    delayed: bool,
    memo: rustc_hash::FxHashMap<Labels, Labels>,
}

impl NameCache {
    /// A cache for eager (`delayed == false`) or delayed removal.
    pub(crate) fn new(delayed: bool) -> Self {
        NameCache {
            delayed,
            memo: Default::default(),
        }
    }

    /// Whether names are removed when the result is complete.
    pub(crate) fn delayed(&self) -> bool {
        self.delayed
    }

    /// The labels of an element whose name an operation drops: without it
    /// (eager) or unchanged (delayed; the caller flags the element).
    pub(crate) fn drop_name(&mut self, labels: &Labels) -> Labels {
        if self.delayed {
            return labels.clone();
        }
        self.dropped(labels)
    }

    /// `labels` without the name, in either mode.
    pub(crate) fn dropped(&mut self, labels: &Labels) -> Labels {
        if let Some(l) = self.memo.get(labels) {
            return l.clone();
        }
        let l = drop_name(labels);
        self.memo.insert(labels.clone(), l.clone());
        l
    }
}

/// The result of a query with the names flagged for removal removed
/// (only needed when names are removed late: eagerly, flagged elements
/// have lost their names already). Series that then share their labels
/// are one series if their times do not overlap (`-a or -b` over a
/// range), an error otherwise.
pub(crate) fn remove_flagged_names(v: Value) -> crate::error::Result<Value> {
    const SAME: &str = "vector cannot contain metrics with the same labelset";
    let flagged = match &v {
        Value::Vector(v) => v.iter().any(|e| e.drop_name),
        Value::Matrix(m) => m.iter().any(|s| s.drop_name),
        _ => false,
    };
    if !flagged {
        return Ok(v);
    }
    match v {
        Value::Vector(mut v) => {
            let mut seen = std::collections::HashSet::with_capacity(v.len());
            for e in &mut v {
                if e.drop_name {
                    e.labels = drop_name(&e.labels);
                    e.drop_name = false;
                }
            }
            if !v.iter().all(|e| seen.insert(&e.labels)) {
                return Err(crate::error::Error::Eval(SAME.into()));
            }
            Ok(Value::Vector(v))
        }
        Value::Matrix(m) => {
            let mut merged: Vec<RangeSeries> = Vec::with_capacity(m.len());
            let mut index: std::collections::HashMap<Labels, usize> = Default::default();
            for mut s in m {
                if s.drop_name {
                    s.labels = drop_name(&s.labels);
                    s.drop_name = false;
                }
                match index.get(&s.labels) {
                    None => {
                        index.insert(s.labels.clone(), merged.len());
                        merged.push(s);
                    }
                    Some(&i) => {
                        let into = &mut merged[i];
                        into.points.append(&mut s.points);
                        into.histograms.append(&mut s.histograms);
                        into.points.sort_by_key(|p| p.t);
                        into.histograms.sort_by_key(|p| p.t);
                        if into.points.windows(2).any(|w| w[0].t == w[1].t)
                            || into.histograms.windows(2).any(|w| w[0].t == w[1].t)
                        {
                            return Err(crate::error::Error::Eval(SAME.into()));
                        }
                    }
                }
            }
            merged.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
            Ok(Value::Matrix(merged))
        }
        other => Ok(other),
    }
}

/// `labels` restricted to (`keep`) or without (`!keep`) the names given.
pub fn filter_labels(labels: &Labels, names: &[String], keep: bool) -> Labels {
    labels.retain(|n| names.iter().any(|x| x == n) == keep)
}

/// `labels` with `name` set to `value` (removed when `value` is empty).
pub fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    Labels::new(
        labels
            .iter()
            .filter(|(n, _)| *n != name)
            .chain(std::iter::once((name, value))),
    )
    .unwrap_or_else(|_| labels.clone())
}
