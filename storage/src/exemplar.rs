//! Exemplars: a sample of one request behind a metric, carrying the trace
//! and span that produced it — the bridge from a metric to its traces.

use crate::labels::Labels;

/// An exemplar. A zero `trace_id`/`span_id` means none was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The observed value.
    pub value: f64,
    /// W3C trace id.
    pub trace_id: [u8; 16],
    /// W3C span id.
    pub span_id: [u8; 8],
    /// Further labels of the exemplar (without trace and span ids).
    pub labels: Labels,
}
