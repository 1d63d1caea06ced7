//! The diagnosis as every interface returns it (JSON: `docs/diagnosis.md`).
//! Field names are the stable schema; add fields, never rename.

use serde::{Deserialize, Serialize};

/// What to diagnose.
#[derive(Debug, Clone)]
pub struct DiagnoseRequest {
    /// Start of the window, ms.
    pub start: i64,
    /// End of the window, ms.
    pub end: i64,
    /// Causes returned at most.
    pub max_causes: usize,
}

impl DiagnoseRequest {
    /// The window `[start, end]` (ms) with the default limits.
    pub fn new(start: i64, end: i64) -> DiagnoseRequest {
        DiagnoseRequest {
            start,
            end,
            max_causes: 5,
        }
    }
}

/// The window diagnosed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    /// Start, ms.
    pub start: i64,
    /// End, ms.
    pub end: i64,
    /// Kind of day in the market's calendar (`trading`, `month_end`, …).
    pub day_kind: String,
    /// Starts of the comparable windows the baseline was read from, ms.
    pub baseline_starts: Vec<i64>,
    /// Spans read in the window (0: none was stored, and RED metrics were
    /// read instead, if any).
    #[serde(default)]
    pub spans: u64,
}

/// A user-facing indicator that left its normal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Symptom {
    /// The entry point (or topic) showing it.
    pub node: String,
    /// `error_ratio`, `latency_mean`, `latency_p99` or `consumer_lag`.
    pub indicator: String,
    /// Its normal at this time (median of the comparable windows).
    pub baseline: f64,
    /// Its value in the window.
    pub observed: f64,
    /// How far outside normal, in robust deviations.
    pub score: f64,
}

/// The metric proving a cause.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricEvidence {
    /// What is measured (`self_time_ms_per_call`, `failed_requests_started`).
    pub name: String,
    /// The labels selecting it.
    pub labels: std::collections::BTreeMap<String, String>,
    /// A query a user can run (Sextant's query language) to see it.
    pub query: String,
    /// Its normal at this time.
    pub baseline: f64,
    /// Its value in the window.
    pub observed: f64,
    /// When it left its normal, ms.
    pub onset: Option<i64>,
}

/// A log template surging at the cause.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEvidence {
    /// The template (`connection pool exhausted (max=<*>) waiting <*>ms`).
    pub template: String,
    /// Lines in the window.
    pub count: u64,
    /// Lines expected in a window as long, from the baseline.
    pub baseline_count: f64,
    /// Up to three example lines.
    pub examples: Vec<LogExample>,
}

/// One log line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogExample {
    /// When, ms.
    pub time: i64,
    /// The line.
    pub body: String,
    /// The service that wrote it.
    pub service: String,
    /// Its trace (hex; empty when none).
    pub trace_id: String,
}

/// A trace crossing the cause.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceEvidence {
    /// The trace (hex).
    pub trace_id: String,
    /// The span where the failure or the delay is (hex).
    pub span_id: String,
}

/// A change at the cause just before or during the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeEvidence {
    /// `deploy`.
    pub kind: String,
    /// What changed (`service.version 1.4.2 → 2.0.0`).
    pub description: String,
    /// When it was first seen, ms.
    pub at: i64,
}

/// Everything that supports a cause.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    /// The proving metric.
    pub metric: Option<MetricEvidence>,
    /// The surging log template.
    pub log: Option<LogEvidence>,
    /// Example traces.
    pub traces: Vec<TraceEvidence>,
    /// The change, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeEvidence>,
}

/// A root-cause candidate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cause {
    /// The service, instance, peer (as spans name it) or `caller->callee`.
    pub name: String,
    /// `service`, `instance`, `database`, `external` or `link`.
    pub kind: String,
    /// The service it is or belongs to; for a peer or a link, its caller.
    pub service: String,
    /// The instance, for an instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Services calling it directly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<String>,
    /// Share of the window's anomaly it explains, 0–1.
    pub score: f64,
    /// One paragraph a person can check.
    pub explanation: String,
    /// The evidence.
    pub evidence: Evidence,
}

/// A service affected, and how the fault reached it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Affected {
    /// The service.
    pub service: String,
    /// From the top cause up to this service.
    pub path: Vec<String>,
}

/// The answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Whether the window holds an incident.
    pub incident: bool,
    /// The window and its baseline.
    pub window: Window,
    /// Indicators outside their normal.
    pub symptoms: Vec<Symptom>,
    /// Ranked causes (empty without an incident).
    pub causes: Vec<Cause>,
    /// Entry points and callers on the propagation path.
    pub affected: Vec<Affected>,
    /// What the store lacked to diagnose fully.
    pub lacking: Vec<String>,
    /// Time taken, ms.
    pub took_ms: u64,
}
