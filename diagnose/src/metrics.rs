//! Diagnosis from metrics alone, for a window without spans: each
//! service's own RED from OpenTelemetry's HTTP server duration histogram
//! (`http_server_request_duration_seconds` or `_milliseconds`, as Sextant
//! names OTLP metrics, one `job` per `service.namespace/service.name`),
//! compared with the same comparable windows as the span path. Without the
//! call graph nothing tells a cause from the callers it fails, so services
//! rank by how far their own indicators left their normal (the NSigma
//! rule), and the answer says what it lacked.

use rustc_hash::FxHashMap;
use sextant_query::value::Value;
use sextant_query::{Engine, EngineOptions, When, parse};
use sextant_storage::Db;

use crate::detect::{MIN_EXCESS_ERRORS, MIN_SCORE, median_spread};
use crate::error::{Error, Result};
use crate::report::{MetricEvidence, Symptom};

const FAMILY: &str = "http_server_request_duration_(seconds|milliseconds)";

/// One service's RED over a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Red {
    /// Requests.
    pub requests: f64,
    /// 5xx answers.
    pub errors: f64,
    /// Mean duration, seconds.
    pub mean: Option<f64>,
}

/// The service a `job` label names (`namespace/name` → `name`).
fn service(job: &str) -> &str {
    job.rsplit('/').next().unwrap_or(job)
}

fn vector(db: &Db, q: &str, at: i64) -> Result<Vec<(String, f64)>> {
    let expr = parse(q).map_err(|e| Error::Request(format!("{q}: {e}")))?;
    let v = Engine::new(db, EngineOptions::default())
        .run(&expr, When::Instant(at))
        .map_err(|e| Error::Request(format!("{q}: {e}")))?
        .value;
    Ok(match v {
        Value::Vector(v) => v
            .into_iter()
            .filter(|e| e.v.is_finite())
            .map(|e| (e.labels.get("job").unwrap_or("").to_string(), e.v))
            .collect(),
        _ => Vec::new(),
    })
}

/// Each service's RED over `[end - len, end]`.
pub fn red(db: &Db, end: i64, len: i64) -> Result<FxHashMap<String, Red>> {
    let range = format!("{}s", (len / 1000).max(1));
    let count = format!("{{__name__=~\"{FAMILY}_count\"}}");
    let mut out: FxHashMap<String, Red> = FxHashMap::default();
    for (job, v) in vector(
        db,
        &format!("sum by (job) (increase({count}[{range}]))"),
        end,
    )? {
        out.entry(service(&job).to_string()).or_default().requests += v;
    }
    let failed = format!("{{__name__=~\"{FAMILY}_count\", http_response_status_code=~\"5..\"}}");
    for (job, v) in vector(
        db,
        &format!("sum by (job) (increase({failed}[{range}]))"),
        end,
    )? {
        out.entry(service(&job).to_string()).or_default().errors += v;
    }
    for unit in ["seconds", "milliseconds"] {
        let scale = if unit == "seconds" { 1.0 } else { 1e-3 };
        let q = format!(
            "sum by (job) (increase(http_server_request_duration_{unit}_sum[{range}])) / \
             sum by (job) (increase(http_server_request_duration_{unit}_count[{range}]))"
        );
        for (job, v) in vector(db, &q, end)? {
            out.entry(service(&job).to_string()).or_default().mean = Some(v * scale);
        }
    }
    Ok(out)
}

/// A service whose metrics left their normal.
#[derive(Debug, Clone)]
pub struct Anomaly {
    /// The service.
    pub service: String,
    /// Its symptoms.
    pub symptoms: Vec<Symptom>,
    /// The larger deviation, for ranking.
    pub score: f64,
    /// The proving metric.
    pub metric: MetricEvidence,
}

/// Services whose RED in `w` is outside their normal in `bases`, most
/// deviant first.
pub fn anomalies(w: &FxHashMap<String, Red>, bases: &[FxHashMap<String, Red>]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let mut services: Vec<&String> = w.keys().collect();
    services.sort();
    for svc in services {
        let now = w[svc];
        let (nb, kb) = bases
            .iter()
            .filter_map(|b| b.get(svc))
            .fold((0.0, 0.0), |a, r| (a.0 + r.requests, a.1 + r.errors));
        let p0 = (kb + 0.5) / (nb + 50.0);
        let excess = now.errors - now.requests * p0;
        let z = excess / (now.requests * p0 * (1.0 - p0) + 1.0).sqrt();
        let ratio = if now.requests > 0.0 {
            now.errors / now.requests
        } else {
            0.0
        };
        let mut symptoms = Vec::new();
        let mut metric = None;
        let mut score: f64 = 0.0;
        let job = format!("{{job=~\".*/?{svc}\"}}");
        if excess >= MIN_EXCESS_ERRORS && z >= MIN_SCORE && ratio >= 1.5 * p0 + 0.002 {
            symptoms.push(Symptom {
                node: svc.clone(),
                indicator: "error_ratio".into(),
                baseline: p0,
                observed: ratio,
                score: z,
            });
            score = score.max(z);
            metric = Some(MetricEvidence {
                name: "error_ratio".into(),
                labels: [("job".to_string(), svc.clone())].into_iter().collect(),
                query: format!(
                    "sum(rate(http_server_request_duration_seconds_count{{job=~\".*/?{svc}\", http_response_status_code=~\"5..\"}}[5m])) / sum(rate(http_server_request_duration_seconds_count{job}[5m]))"
                ),
                baseline: p0,
                observed: ratio,
                onset: None,
            });
        }
        let mut means: Vec<f64> = bases
            .iter()
            .filter_map(|b| b.get(svc))
            .filter(|r| r.requests >= 20.0)
            .filter_map(|r| r.mean)
            .collect();
        if let (Some(o), Some((med, spread))) = (now.mean, median_spread(&mut means))
            && now.requests >= 20.0
        {
            let s = (o - med) / spread.max(0.15 * med).max(0.001);
            if s >= MIN_SCORE && o >= 1.3 * med {
                symptoms.push(Symptom {
                    node: svc.clone(),
                    indicator: "latency_mean".into(),
                    baseline: med,
                    observed: o,
                    score: s,
                });
                if s > score {
                    metric = Some(MetricEvidence {
                        name: "latency_mean_seconds".into(),
                        labels: [("job".to_string(), svc.clone())].into_iter().collect(),
                        query: format!(
                            "sum(rate(http_server_request_duration_seconds_sum{job}[5m])) / sum(rate(http_server_request_duration_seconds_count{job}[5m]))"
                        ),
                        baseline: med,
                        observed: o,
                        onset: None,
                    });
                }
                score = score.max(s);
            }
        }
        if let Some(metric) = metric {
            out.push(Anomaly {
                service: svc.clone(),
                symptoms,
                score,
                metric,
            });
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.service.cmp(&b.service)));
    out
}
