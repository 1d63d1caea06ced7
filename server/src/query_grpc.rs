//! `sextant.v1.Query` (`proto/sextant/v1/query.proto`): the query language
//! (PromQL plus records) with typed, streamed results, label and series metadata, and traces by id, for
//! programs that want numbers rather than Prometheus' JSON. Parameters are
//! checked exactly as the HTTP API checks them (shared helpers), and every
//! call runs in a query slot like an HTTP query.

use std::sync::Arc;
use std::time::Duration;

use sextant_query::value::Value;
use sextant_query::{Engine, When, parse_with};
use sextant_storage::{AnyValue, Attributes, Labels, LogRecord, Matcher, Span, Trace, TraceId};
use tonic::{Request, Response, Status};

use super::error::{ApiError, ApiResult};
use super::prom_api::{matching_series, now_ms, options_with_timeout, selector, truncate, union};
use super::sextant_api::find_trace;
use super::state::State;

/// The generated messages, the service trait and the client.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/sextant.v1.rs"));
}

use pb::query_server::Query;
use pb::run_frame::Frame;
use pb::run_request::At;

/// The encoded descriptors of `sextant.v1`, for gRPC reflection.
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sextant_descriptor.bin"));

/// Most series in one `SeriesBatch` frame: frames stay well under the 4 MiB
/// default message limit of gRPC clients for typical label sets.
const SERIES_PER_FRAME: usize = 1_000;

/// Most log records or spans in one frame.
const RECORDS_PER_FRAME: usize = 500;

/// Most traces in one frame.
const TRACES_PER_FRAME: usize = 20;

/// The service over the shared state.
pub struct QueryService(pub Arc<State>);

#[tonic::async_trait]
impl Query for QueryService {
    type RunStream = tokio_stream::Iter<Frames>;

    async fn run(&self, req: Request<pb::RunRequest>) -> Result<Response<Self::RunStream>, Status> {
        let r = req.into_inner();
        let asked = (r.timeout_ms > 0).then(|| Duration::from_millis(r.timeout_ms));
        let opts = options_with_timeout(&self.0, asked);
        let when = match r.at {
            None => When::Instant(now_ms()),
            Some(At::Instant(i)) => When::Instant(i.time_ms),
            Some(At::Range(g)) => When::Range {
                start: g.start_ms,
                end: g.end_ms,
                // 0 (unset) is refused for a PromQL result, as a bad step.
                step: Some(g.step_ms),
            },
        };
        let expr = parse_with(&r.expr, when.durations()).map_err(ApiError::from)?;
        let limit = match r.limit {
            0 => 100,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let frames = self
            .0
            .query(move |st| {
                let a = Engine::new(&st.db, opts).run(&expr, when)?;
                Ok(Frames::new(a.value, a.at, a.warnings, limit))
            })
            .await?;
        Ok(Response::new(tokio_stream::iter(frames)))
    }

    async fn label_names(
        &self,
        req: Request<pb::LabelsRequest>,
    ) -> Result<Response<pb::Strings>, Status> {
        let f = Filter::new(req.into_inner())?;
        let out = self
            .0
            .query(move |st| {
                let names = union(&f.sets, |m| st.db.label_names(m, f.start, f.end))?;
                Ok(strings(names, f.limit))
            })
            .await?;
        Ok(Response::new(out))
    }

    async fn label_values(
        &self,
        req: Request<pb::LabelValuesRequest>,
    ) -> Result<Response<pb::Strings>, Status> {
        let r = req.into_inner();
        if r.name.is_empty() {
            return Err(ApiError::bad("label name is empty: set LabelValuesRequest.name").into());
        }
        let f = Filter::new(r.filter.unwrap_or_default())?;
        let out = self
            .0
            .query(move |st| {
                let values = union(&f.sets, |m| st.db.label_values(&r.name, m, f.start, f.end))?;
                Ok(strings(values, f.limit))
            })
            .await?;
        Ok(Response::new(out))
    }

    async fn series(
        &self,
        req: Request<pb::LabelsRequest>,
    ) -> Result<Response<pb::SeriesReply>, Status> {
        let f = Filter::new(req.into_inner())?;
        if f.sets.is_empty() {
            return Err(ApiError::bad("no match selector given: Series needs at least one").into());
        }
        let out = self
            .0
            .query(move |st| {
                let mut all = matching_series(st, &f.sets, f.start, f.end)?;
                let truncated = !truncate(&mut all, f.limit).is_empty();
                Ok(pb::SeriesReply {
                    series: all
                        .iter()
                        .map(|l| pb::LabelSet { labels: labels(l) })
                        .collect(),
                    truncated,
                })
            })
            .await?;
        Ok(Response::new(out))
    }

    async fn trace(
        &self,
        req: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceReply>, Status> {
        let raw = req.into_inner().trace_id;
        let id: TraceId = raw.as_slice().try_into().map_err(|_| {
            ApiError::bad(format!(
                "trace_id has {} bytes: a trace id is 16 bytes",
                raw.len()
            ))
        })?;
        let out = self
            .0
            .query(move |st| Ok(trace(&find_trace(st, &id)?)))
            .await?;
        Ok(Response::new(out))
    }

    async fn diagnose(
        &self,
        req: Request<pb::DiagnoseRequest>,
    ) -> Result<Response<pb::DiagnoseReply>, Status> {
        let r = req.into_inner();
        let (start, end) = if r.start_ms == 0 && r.end_ms == 0 {
            let now = now_ms();
            (now - super::continuous::WINDOW_MS, now)
        } else {
            (r.start_ms, r.end_ms)
        };
        let json = self
            .0
            .query(move |st| super::diagnose_api::diagnosis_json(st, start, end))
            .await?;
        Ok(Response::new(pb::DiagnoseReply { json }))
    }
}

/// The selectors, time range and limit of a metadata request.
struct Filter {
    sets: Vec<Vec<Matcher>>,
    start: i64,
    end: i64,
    limit: Option<usize>,
}

impl Filter {
    fn new(r: pb::LabelsRequest) -> ApiResult<Filter> {
        let sets = r
            .r#match
            .iter()
            .map(|s| selector(s))
            .collect::<ApiResult<_>>()?;
        // 0 leaves that side of the range open.
        let start = if r.start_ms == 0 {
            i64::MIN
        } else {
            r.start_ms
        };
        let end = if r.end_ms == 0 { i64::MAX } else { r.end_ms };
        if end < start {
            return Err(ApiError::bad("end_ms is before start_ms"));
        }
        let limit = (r.limit > 0).then(|| usize::try_from(r.limit).unwrap_or(usize::MAX));
        Ok(Filter {
            sets,
            start,
            end,
            limit,
        })
    }
}

fn strings(mut values: Vec<String>, limit: Option<usize>) -> pb::Strings {
    let truncated = !truncate(&mut values, limit).is_empty();
    pb::Strings { values, truncated }
}

/// A query result as frames: a header, the body in batches, a trailer.
/// Converted lazily, one frame per poll, so only the engine's result and
/// one encoded frame are in memory at once.
pub struct Frames {
    value: Value,
    /// The instant of scalar and string results.
    t: i64,
    stage: Stage,
    warnings: Vec<String>,
    series: u64,
    points: u64,
    records: u64,
    /// Most records sent.
    limit: usize,
}

/// What a [`Frames`] sends next.
enum Stage {
    Header,
    /// The body, from this series of a vector or matrix on.
    Body(usize),
    Trailer,
    Done,
}

impl Frames {
    fn new(value: Value, t: i64, mut warnings: Vec<String>, limit: usize) -> Frames {
        let total = match &value {
            Value::Logs(r) => r.len(),
            Value::Spans(s) => s.len(),
            Value::Traces(t) => t.len(),
            _ => 0,
        };
        if total > limit {
            warnings.push(format!(
                "{total} records matched; the first {limit} are sent (raise RunRequest.limit)"
            ));
        }
        Frames {
            value,
            t,
            stage: Stage::Header,
            warnings,
            series: 0,
            points: 0,
            records: 0,
            limit,
        }
    }

    /// The next frame of records, from record `from` on.
    fn records(&mut self, from: usize) -> (Option<Frame>, Stage) {
        let room = self.limit.saturating_sub(from);
        let (frame, n) = match &self.value {
            Value::Logs(rows) => {
                let b: Vec<pb::LogRecord> = rows
                    .iter()
                    .skip(from)
                    .take(RECORDS_PER_FRAME.min(room))
                    .map(log_record)
                    .collect();
                let n = b.len();
                (Frame::Logs(pb::LogBatch { records: b }), n)
            }
            Value::Spans(spans) => {
                let b: Vec<pb::Span> = spans
                    .iter()
                    .skip(from)
                    .take(RECORDS_PER_FRAME.min(room))
                    .map(|s| span(s, None))
                    .collect();
                let n = b.len();
                (Frame::Spans(pb::SpanBatch { spans: b }), n)
            }
            Value::Traces(traces) => {
                let b: Vec<pb::TraceReply> = traces
                    .iter()
                    .skip(from)
                    .take(TRACES_PER_FRAME.min(room))
                    .map(trace)
                    .collect();
                let n = b.len();
                (Frame::Traces(pb::TraceBatch { traces: b }), n)
            }
            _ => return (None, Stage::Trailer),
        };
        if n == 0 {
            return (None, Stage::Trailer);
        }
        self.records += n as u64;
        (Some(frame), Stage::Body(from + n))
    }

    /// The next body frame and the stage after it.
    fn body(&mut self, from: usize) -> (Option<Frame>, Stage) {
        let t = self.t;
        let batch = match &self.value {
            Value::Scalar(v) => {
                let frame = Frame::Scalar(pb::Scalar {
                    timestamp_ms: t,
                    value: *v,
                });
                return (Some(frame), Stage::Trailer);
            }
            Value::Str(s) => {
                let frame = Frame::String(pb::StringResult {
                    timestamp_ms: t,
                    value: s.clone(),
                });
                return (Some(frame), Stage::Trailer);
            }
            Value::Vector(elems) => batch(elems, from, |e| match &e.h {
                Some(h) => pb::Series {
                    labels: labels(&e.labels),
                    timestamps_ms: Vec::new(),
                    values: Vec::new(),
                    histograms: vec![histogram_point(t, h)],
                },
                None => pb::Series {
                    labels: labels(&e.labels),
                    timestamps_ms: vec![t],
                    values: vec![e.v],
                    histograms: Vec::new(),
                },
            }),
            Value::Matrix(series) => batch(series, from, |s| pb::Series {
                labels: labels(&s.labels),
                timestamps_ms: s.points.iter().map(|p| p.t).collect(),
                values: s.points.iter().map(|p| p.v).collect(),
                histograms: s
                    .histograms
                    .iter()
                    .map(|p| histogram_point(p.t, &p.h))
                    .collect(),
            }),
            Value::Logs(_) | Value::Spans(_) | Value::Traces(_) => return self.records(from),
        };
        if batch.is_empty() {
            return (None, Stage::Trailer);
        }
        self.series += batch.len() as u64;
        self.points += batch
            .iter()
            .map(|s| (s.values.len() + s.histograms.len()) as u64)
            .sum::<u64>();
        let next = Stage::Body(from + batch.len());
        (Some(Frame::Series(pb::SeriesBatch { series: batch })), next)
    }
}

/// A native-histogram point as its frame.
fn histogram_point(t: i64, h: &sextant_storage::Histogram) -> pb::HistogramPoint {
    use sextant_storage::CounterReset;
    let buckets = |b: &[(i32, f64)]| {
        b.iter()
            .filter(|x| x.1 != 0.0)
            .map(|&(index, count)| pb::Bucket { index, count })
            .collect()
    };
    pb::HistogramPoint {
        timestamp_ms: t,
        count: h.count,
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count,
        positive: buckets(&h.positive),
        negative: buckets(&h.negative),
        custom_values: h.custom_values.clone(),
        hint: match h.hint {
            CounterReset::Unknown => pb::CounterResetHint::Unknown,
            CounterReset::Reset => pb::CounterResetHint::Reset,
            CounterReset::NotReset => pb::CounterResetHint::NotReset,
            CounterReset::Gauge => pb::CounterResetHint::Gauge,
        } as i32,
    }
}

/// Up to [`SERIES_PER_FRAME`] items from `from` on, converted.
fn batch<T>(items: &[T], from: usize, f: impl Fn(&T) -> pb::Series) -> Vec<pb::Series> {
    items
        .iter()
        .skip(from)
        .take(SERIES_PER_FRAME)
        .map(f)
        .collect()
}

impl Iterator for Frames {
    type Item = Result<pb::RunFrame, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (frame, next) = match self.stage {
                Stage::Header => {
                    let result_type = match &self.value {
                        Value::Scalar(_) => pb::ResultType::Scalar,
                        Value::Str(_) => pb::ResultType::String,
                        Value::Vector(_) => pb::ResultType::Vector,
                        Value::Matrix(_) => pb::ResultType::Matrix,
                        Value::Logs(_) => pb::ResultType::Logs,
                        Value::Spans(_) => pb::ResultType::Spans,
                        Value::Traces(_) => pb::ResultType::Traces,
                    };
                    let header = Frame::Header(pb::Header {
                        result_type: result_type as i32,
                    });
                    (Some(header), Stage::Body(0))
                }
                Stage::Body(from) => self.body(from),
                Stage::Trailer => {
                    let trailer = Frame::Trailer(pb::Trailer {
                        warnings: std::mem::take(&mut self.warnings),
                        series: self.series,
                        points: self.points,
                        records: self.records,
                    });
                    (Some(trailer), Stage::Done)
                }
                Stage::Done => return None,
            };
            self.stage = next;
            if let Some(frame) = frame {
                return Some(Ok(pb::RunFrame { frame: Some(frame) }));
            }
        }
    }
}

fn labels(l: &Labels) -> Vec<pb::Label> {
    l.iter()
        .map(|(name, value)| pb::Label {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
}

fn trace(t: &Trace) -> pb::TraceReply {
    let spans = t
        .spans
        .iter()
        .zip(&t.parents)
        .map(|(s, parent)| span(s, parent.map(|p| p as u32)))
        .collect();
    pb::TraceReply { spans }
}

/// An id as bytes, empty when all zeros (none).
fn id_bytes(id: &[u8]) -> Vec<u8> {
    if id.iter().all(|b| *b == 0) {
        Vec::new()
    } else {
        id.to_vec()
    }
}

fn log_record(r: &LogRecord) -> pb::LogRecord {
    pb::LogRecord {
        time_unix_nano: r.time_ns.max(0) as u64,
        severity_number: u32::from(r.severity),
        severity_text: r.severity_text.clone(),
        body: r.body.to_text().into_owned(),
        service: r.service().into_owned(),
        attributes: key_values(&r.attributes),
        resource: key_values(&r.resource),
        trace_id: id_bytes(&r.trace_id),
        span_id: id_bytes(&r.span_id),
    }
}

fn span(s: &Span, parent_index: Option<u32>) -> pb::Span {
    pb::Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        parent_span_id: id_bytes(&s.parent_span_id),
        parent_index,
        name: s.name.clone(),
        kind: s.kind.as_str().into(),
        start_time_unix_nano: s.start_ns.max(0) as u64,
        end_time_unix_nano: s.end_ns.max(0) as u64,
        status_code: s.status.as_str().into(),
        status_message: s.status_message.clone(),
        service: s.service().into_owned(),
        attributes: key_values(&s.attributes),
        resource: key_values(&s.resource),
        events: s
            .events
            .iter()
            .map(|e| pb::Event {
                time_unix_nano: e.time_ns.max(0) as u64,
                name: e.name.clone(),
                attributes: key_values(&e.attributes),
            })
            .collect(),
        links: s
            .links
            .iter()
            .map(|l| pb::Link {
                trace_id: l.trace_id.to_vec(),
                span_id: l.span_id.to_vec(),
                attributes: key_values(&l.attributes),
            })
            .collect(),
    }
}

fn key_values(a: &Attributes) -> Vec<pb::KeyValue> {
    a.iter()
        .map(|(k, v)| pb::KeyValue {
            key: k.clone(),
            value: Some(any_value(v)),
        })
        .collect()
}

fn any_value(v: &AnyValue) -> pb::AnyValue {
    use pb::any_value::Value as V;
    let value = match v {
        AnyValue::Str(s) => V::StringValue(s.clone()),
        AnyValue::Bool(b) => V::BoolValue(*b),
        AnyValue::Int(i) => V::IntValue(*i),
        AnyValue::Double(d) => V::DoubleValue(*d),
        AnyValue::Bytes(b) => V::BytesValue(b.clone()),
        AnyValue::Array(a) => V::ArrayValue(pb::ArrayValue {
            values: a.iter().map(any_value).collect(),
        }),
        AnyValue::Map(m) => V::KvlistValue(pb::KeyValueList {
            values: key_values(m),
        }),
    };
    pb::AnyValue { value: Some(value) }
}
