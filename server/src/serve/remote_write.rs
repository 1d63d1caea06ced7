//! Prometheus remote_write 1.0: a snappy-compressed `WriteRequest`
//! protobuf, turned into one [`WriteBatch`]. The messages are declared here
//! (a handful of fields) rather than generated.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use sextant_storage::{Exemplar, Labels, Sample, SeriesWrite, WriteBatch};

use super::body;
use super::error::{ApiError, ApiResult, Kind};
use super::state::{MetricMeta, State};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric family metadata.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PbSample>,
    /// Exemplars.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<PbExemplar>,
    /// Native histogram samples: kept as raw bytes only to count them, as
    /// Sextant does not store native histograms.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct PbSample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub struct PbExemplar {
    /// Labels (`trace_id`, `span_id`, …).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// `MetricType` enum.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    /// Family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Help text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Unit.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `POST /api/v1/write`
pub async fn write(AxState(st): AxState<Arc<State>>, headers: HeaderMap, b: Body) -> Response {
    let t0 = Instant::now();
    let res = handle(&st, &headers, b).await;
    let m = &st.metrics.remote_write;
    match res {
        Ok(()) => {
            m.requests.fetch_add(1, Relaxed);
            m.latency.observe(t0.elapsed());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            m.failed.fetch_add(1, Relaxed);
            // remote_write senders log the body: plain text, as Prometheus.
            (e.status(), e.message).into_response()
        }
    }
}

async fn handle(st: &Arc<State>, headers: &HeaderMap, b: Body) -> ApiResult<()> {
    let media = body::media_type(headers);
    if !media.is_empty() && media != "application/x-protobuf" {
        return Err(ApiError::new(
            Kind::UnsupportedMedia,
            format!("remote_write expects Content-Type application/x-protobuf, got {media:?}"),
        ));
    }
    let raw = body::read(b, st.cfg.max_body_bytes).await?;
    let max = st.cfg.max_decompressed_bytes;
    st.blocking(move |st| {
        let bytes = body::unsnappy(&raw, max)?;
        let req = WriteRequest::decode(bytes.as_slice())
            .map_err(|e| ApiError::bad(format!("malformed remote_write protobuf: {e}")))?;
        let (batch, histograms) = to_batch(&req)?;
        st.note_metadata(req.metadata.iter().map(|m| {
            let meta = MetricMeta {
                kind: metric_type(m.kind).into(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            };
            (m.metric_family_name.clone(), meta)
        }));
        let summary = st.db.write_limited(&batch, st.cfg.max_series_per_write)?;
        let m = &st.metrics;
        m.remote_write
            .samples
            .fetch_add(summary.samples as u64, Relaxed);
        m.series_created
            .fetch_add(summary.series_created as u64, Relaxed);
        if histograms > 0 {
            return Err(ApiError::bad(format!(
                "{histograms} native histogram sample(s) dropped: Sextant stores classic \
                 histograms only (the float samples of the request were stored)"
            )));
        }
        Ok(())
    })
    .await
}

/// Converts a request, checking every series before anything is stored.
/// Returns the batch and the number of native histogram samples skipped.
pub fn to_batch(req: &WriteRequest) -> ApiResult<(WriteBatch, usize)> {
    let mut batch = WriteBatch::default();
    let mut histograms = 0;
    for ts in &req.timeseries {
        let labels = series_labels(&ts.labels)?;
        let mut samples = Vec::with_capacity(ts.samples.len());
        for s in &ts.samples {
            check_time(&labels, s.timestamp)?;
            samples.push(Sample::new(s.timestamp, s.value));
        }
        let mut exemplars = Vec::with_capacity(ts.exemplars.len());
        for e in &ts.exemplars {
            check_time(&labels, e.timestamp)?;
            exemplars.push(exemplar(e)?);
        }
        histograms += ts.histograms.len();
        batch.series.push(SeriesWrite {
            labels,
            samples,
            exemplars,
        });
    }
    Ok((batch, histograms))
}

fn series_labels(pairs: &[Label]) -> ApiResult<Labels> {
    let labels = Labels::new(pairs.iter().map(|l| (&l.name, &l.value)))
        .map_err(|e| ApiError::bad(format!("{e} in series {}", show(pairs))))?;
    if labels.metric_name().is_none() {
        return Err(ApiError::bad(format!(
            "series {} has no metric name: every series needs a non-empty __name__ label",
            show(pairs)
        )));
    }
    Ok(labels)
}

fn check_time(labels: &Labels, t: i64) -> ApiResult<()> {
    if t < 0 {
        return Err(ApiError::bad(format!(
            "negative timestamp {t} in series {labels}: timestamps are milliseconds since \
             1970-01-01; nothing of the request was stored"
        )));
    }
    Ok(())
}

fn exemplar(e: &PbExemplar) -> ApiResult<Exemplar> {
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut rest = Vec::new();
    for l in &e.labels {
        match l.name.as_str() {
            "trace_id" | "traceID" | "traceId" if decode_hex(&l.value, &mut trace_id) => {}
            "span_id" | "spanID" | "spanId" if decode_hex(&l.value, &mut span_id) => {}
            _ => rest.push((l.name.as_str(), l.value.as_str())),
        }
    }
    Ok(Exemplar {
        t: e.timestamp,
        value: e.value,
        trace_id,
        span_id,
        labels: Labels::new(rest).map_err(|e| ApiError::bad(format!("exemplar: {e}")))?,
    })
}

/// Fills `out` from exactly `2 * out.len()` hex digits.
fn decode_hex(s: &str, out: &mut [u8]) -> bool {
    if s.len() != out.len() * 2 || !s.is_ascii() {
        return false;
    }
    for (i, b) in out.iter_mut().enumerate() {
        match u8::from_str_radix(&s[2 * i..2 * i + 2], 16) {
            Ok(v) => *b = v,
            Err(_) => return false,
        }
    }
    true
}

fn show(pairs: &[Label]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn metric_type(v: i32) -> &'static str {
    match v {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn series_exemplars_and_refusals() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![label("job", "api"), label("__name__", "up")],
                samples: vec![PbSample {
                    value: f64::NAN,
                    timestamp: 5,
                }],
                exemplars: vec![PbExemplar {
                    labels: vec![
                        label("trace_id", "0102030405060708090a0b0c0d0e0f10"),
                        label("user", "x"),
                    ],
                    value: 1.5,
                    timestamp: 6,
                }],
                histograms: vec![vec![1, 2]],
            }],
            metadata: vec![],
        };
        let (batch, hist) = to_batch(&req).unwrap();
        assert_eq!(hist, 1);
        let s = &batch.series[0];
        assert_eq!(s.labels.to_string(), "{__name__=\"up\", job=\"api\"}");
        assert!(s.samples[0].v.is_nan());
        assert_eq!(s.exemplars[0].trace_id[15], 0x10);
        assert_eq!(s.exemplars[0].labels.get("user"), Some("x"));

        let mut bad = req.clone();
        bad.timeseries[0].labels[1].value.clear();
        assert!(
            to_batch(&bad)
                .unwrap_err()
                .message
                .contains("no metric name")
        );
        let mut bad = req.clone();
        bad.timeseries[0].samples[0].timestamp = -1;
        assert!(
            to_batch(&bad)
                .unwrap_err()
                .message
                .contains("negative timestamp")
        );
        let mut bad = req;
        bad.timeseries[0].labels.push(label("job", "b"));
        assert!(
            to_batch(&bad)
                .unwrap_err()
                .message
                .contains("duplicate label")
        );
    }
}
