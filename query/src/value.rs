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
}

impl Elem {
    /// A float element.
    pub fn float(labels: Labels, v: f64) -> Self {
        Elem { labels, v, h: None }
    }

    /// A histogram element.
    pub fn histogram(labels: Labels, h: Arc<Histogram>) -> Self {
        Elem {
            labels,
            v: 0.0,
            h: Some(h),
        }
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

/// Per-query memo of [`drop_name`]: a range query drops the name of the
/// same series at every step, and building a label set allocates.
#[derive(Default)]
pub(crate) struct NameCache(rustc_hash::FxHashMap<Labels, Labels>);

impl NameCache {
    pub(crate) fn drop_name(&mut self, labels: &Labels) -> Labels {
        if let Some(l) = self.0.get(labels) {
            return l.clone();
        }
        let l = drop_name(labels);
        self.0.insert(labels.clone(), l.clone());
        l
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
