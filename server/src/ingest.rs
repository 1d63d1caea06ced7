//! OTLP ingest shared by gRPC and HTTP: convert, store, count, and answer
//! with OTLP's partial-success report.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use super::error::ApiResult;
use super::otlp;
use super::state::State;

/// Stores the log records of a request.
pub async fn logs(
    st: &Arc<State>,
    req: ExportLogsServiceRequest,
) -> ApiResult<ExportLogsServiceResponse> {
    counted(st, move |st| {
        let rows = otlp::logs::convert(&req)?;
        let s = st.db.write_logs(rows)?;
        st.metrics.otlp.logs.fetch_add(s.stored as u64, Relaxed);
        Ok(ExportLogsServiceResponse {
            partial_success: (s.truncated > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: 0,
                error_message: truncated_note(s.truncated),
            }),
        })
    })
    .await
}

/// Stores the spans of a request.
pub async fn traces(
    st: &Arc<State>,
    req: ExportTraceServiceRequest,
) -> ApiResult<ExportTraceServiceResponse> {
    counted(st, move |st| {
        let rows = otlp::traces::convert(&req)?;
        let s = st.db.write_spans(rows)?;
        st.metrics.otlp.spans.fetch_add(s.stored as u64, Relaxed);
        Ok(ExportTraceServiceResponse {
            partial_success: (s.truncated > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: 0,
                error_message: truncated_note(s.truncated),
            }),
        })
    })
    .await
}

/// Stores the data points of a request as Prometheus series.
pub async fn metrics(
    st: &Arc<State>,
    req: ExportMetricsServiceRequest,
) -> ApiResult<ExportMetricsServiceResponse> {
    counted(st, move |st| {
        let c = otlp::metrics::convert(&req, &st.delta_totals)?;
        st.note_metadata(c.metadata);
        let (mut rejected, mut why) = c.rejected;
        // Samples older than a configured out-of-order window are refused
        // one by one and the rest stored: OTLP reports that as a partial
        // success (senders must not retry the stored part), not as a 400.
        let s = match st.db.write_limited(&c.batch, st.cfg.max_series_per_write) {
            Ok(s) => s,
            Err(e) => match &e {
                sextant_storage::Error::OutOfOrder {
                    rejected: n,
                    accepted,
                    ..
                } => {
                    rejected += *n as u64;
                    let samples = *accepted;
                    why = Some(e.to_string());
                    sextant_storage::WriteSummary {
                        samples,
                        ..Default::default()
                    }
                }
                _ => return Err(e.into()),
            },
        };
        st.metrics.otlp.samples.fetch_add(s.samples as u64, Relaxed);
        st.metrics
            .series_created
            .fetch_add(s.series_created as u64, Relaxed);
        Ok(ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected as i64,
                error_message: why.unwrap_or_default(),
            }),
        })
    })
    .await
}

fn truncated_note(n: usize) -> String {
    format!("{n} value(s) were longer than the configured record limits and were cut")
}

async fn counted<T, F>(st: &Arc<State>, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&State) -> ApiResult<T> + Send + 'static,
{
    let t0 = Instant::now();
    let res = st.blocking(f).await;
    let m = &st.metrics.otlp;
    match &res {
        Ok(_) => {
            m.requests.fetch_add(1, Relaxed);
            m.latency.observe(t0.elapsed());
        }
        Err(_) => {
            m.failed.fetch_add(1, Relaxed);
        }
    }
    res
}
