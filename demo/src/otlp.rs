//! A simulated batch as OTLP export requests, sent to a running server's
//! OTLP/gRPC port with the generated collector clients — the path any
//! OpenTelemetry SDK or collector takes.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue as PbValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as PbLog, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar as PbExemplar, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, exemplar, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PbSpan, Status};
use sextant_storage::{AnyValue, Attributes, StatusCode};
use tonic::transport::Channel;

use super::sim::{BOUNDS, Batch, Exemplar, Scrape};

fn value(v: &AnyValue) -> PbValue {
    let v = match v {
        AnyValue::Str(s) => any_value::Value::StringValue(s.clone()),
        AnyValue::Int(i) => any_value::Value::IntValue(*i),
        AnyValue::Double(d) => any_value::Value::DoubleValue(*d),
        AnyValue::Bool(b) => any_value::Value::BoolValue(*b),
        other => any_value::Value::StringValue(other.to_text().into_owned()),
    };
    PbValue { value: Some(v) }
}

fn kvs(a: &Attributes) -> Vec<KeyValue> {
    a.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(value(v)),
            ..Default::default()
        })
        .collect()
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(value(&AnyValue::Str(v.into()))),
        ..Default::default()
    }
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "sextant-demo".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    })
}

fn resource(attrs: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes: attrs,
        ..Default::default()
    })
}

/// Groups items by their resource (in first-seen order).
fn by_resource<T>(items: &[T], res: impl Fn(&T) -> &Attributes) -> Vec<(&Attributes, Vec<&T>)> {
    let mut order: Vec<(&Attributes, Vec<&T>)> = Vec::new();
    for it in items {
        let r = res(it);
        match order.iter_mut().find(|(k, _)| *k == r) {
            Some((_, v)) => v.push(it),
            None => order.push((r, vec![it])),
        }
    }
    order
}

/// The spans of `b` as one trace export.
pub fn traces(b: &Batch) -> ExportTraceServiceRequest {
    let resource_spans = by_resource(&b.spans, |s| &s.resource)
        .into_iter()
        .map(|(res, spans)| ResourceSpans {
            resource: resource(kvs(res)),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: spans
                    .into_iter()
                    .map(|s| PbSpan {
                        trace_id: s.trace_id.to_vec(),
                        span_id: s.span_id.to_vec(),
                        parent_span_id: if s.parent_span_id == [0; 8] {
                            Vec::new()
                        } else {
                            s.parent_span_id.to_vec()
                        },
                        name: s.name.clone(),
                        kind: s.kind as i32,
                        start_time_unix_nano: s.start_ns as u64,
                        end_time_unix_nano: s.end_ns as u64,
                        attributes: kvs(&s.attributes),
                        status: Some(Status {
                            code: match s.status {
                                StatusCode::Unset => 0,
                                StatusCode::Ok => 1,
                                StatusCode::Error => 2,
                            },
                            message: s.status_message.clone(),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// The log records of `b` as one log export.
pub fn logs(b: &Batch) -> ExportLogsServiceRequest {
    let resource_logs = by_resource(&b.logs, |l| &l.resource)
        .into_iter()
        .map(|(res, rows)| ResourceLogs {
            resource: resource(kvs(res)),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: rows
                    .into_iter()
                    .map(|r| PbLog {
                        time_unix_nano: r.time_ns as u64,
                        observed_time_unix_nano: r.observed_ns as u64,
                        severity_number: i32::from(r.severity),
                        severity_text: r.severity_text.clone(),
                        body: Some(value(&r.body)),
                        attributes: kvs(&r.attributes),
                        flags: r.flags,
                        trace_id: r.trace_id.to_vec(),
                        span_id: r.span_id.to_vec(),
                        ..Default::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

fn exemplar(e: &Exemplar) -> PbExemplar {
    PbExemplar {
        filtered_attributes: Vec::new(),
        time_unix_nano: e.time_ns as u64,
        span_id: e.span_id.to_vec(),
        trace_id: e.trace_id.to_vec(),
        value: Some(exemplar::Value::AsDouble(e.value)),
    }
}

fn gauge(name: &str, unit: &str, t_ns: u64, v: f64, attrs: Vec<KeyValue>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: attrs,
                time_unix_nano: t_ns,
                value: Some(number_data_point::Value::AsDouble(v)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

/// One instance's request counter and duration histogram points.
type InstancePoints = (Vec<NumberDataPoint>, Vec<HistogramDataPoint>);

/// A scrape as one metrics export: per service instance, the request
/// counter and duration histogram by operation and status code (with
/// exemplars), memory, CPU, and for datastores their connection use.
/// Every point carries a `service` attribute, so metrics match series
/// derived from spans `on(service)`.
pub fn metrics(s: &Scrape, start_ms: i64) -> ExportMetricsServiceRequest {
    let t_ns = (s.t_ms * 1_000_000) as u64;
    let start_ns = (start_ms * 1_000_000) as u64;
    let mut per_instance: BTreeMap<(&str, u64), InstancePoints> = BTreeMap::new();
    for ((svc, inst, op, code), red) in &s.red {
        let attrs = vec![
            kv("service", svc),
            kv("operation", op),
            kv("status_code", &code.to_string()),
        ];
        let ex: Vec<PbExemplar> = red.exemplars.iter().flatten().map(exemplar).collect();
        let entry = per_instance.entry((svc, *inst)).or_default();
        entry.0.push(NumberDataPoint {
            attributes: attrs.clone(),
            start_time_unix_nano: start_ns,
            time_unix_nano: t_ns,
            exemplars: ex
                .iter()
                .max_by_key(|e| e.time_unix_nano)
                .cloned()
                .into_iter()
                .collect(),
            value: Some(number_data_point::Value::AsInt(red.count as i64)),
            ..Default::default()
        });
        entry.1.push(HistogramDataPoint {
            attributes: attrs,
            start_time_unix_nano: start_ns,
            time_unix_nano: t_ns,
            count: red.count,
            sum: Some(red.sum),
            bucket_counts: red.buckets.to_vec(),
            explicit_bounds: BOUNDS.to_vec(),
            exemplars: ex,
            ..Default::default()
        });
    }
    let mut resource_metrics = Vec::new();
    for ((svc, inst), (mem, cpu, version)) in &s.gauges {
        let (counts, hists) = per_instance.remove(&(*svc, *inst)).unwrap_or_default();
        let own = || vec![kv("service", svc)];
        let mut ms = vec![
            gauge("process.memory.usage", "By", t_ns, *mem, own()),
            gauge("process.cpu.utilization", "1", t_ns, *cpu, own()),
        ];
        if !counts.is_empty() {
            ms.push(Metric {
                name: "http.server.requests".into(),
                unit: "{request}".into(),
                data: Some(metric::Data::Sum(Sum {
                    data_points: counts,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                })),
                ..Default::default()
            });
            ms.push(Metric {
                name: "http.server.request.duration".into(),
                unit: "s".into(),
                data: Some(metric::Data::Histogram(Histogram {
                    data_points: hists,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                })),
                ..Default::default()
            });
        }
        resource_metrics.push(ResourceMetrics {
            resource: resource(vec![
                kv("service.name", svc),
                kv("service.instance.id", &format!("{svc}-{inst}")),
                kv("service.version", version),
            ]),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: ms,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        });
    }
    ExportMetricsServiceRequest { resource_metrics }
}

/// OTLP/gRPC clients of one server.
pub struct Sender {
    traces: TraceServiceClient<Channel>,
    logs: LogsServiceClient<Channel>,
    metrics: MetricsServiceClient<Channel>,
}

/// Largest message the sender accepts or sends (batches of a busy minute).
const MAX_MESSAGE: usize = 256 << 20;

impl Sender {
    /// Connects to `addr` (`http://host:port`).
    pub async fn connect(addr: &str) -> Result<Sender, String> {
        let ch = Channel::from_shared(addr.to_string())
            .map_err(|e| format!("bad OTLP/gRPC address {addr:?}: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        Ok(Sender {
            traces: TraceServiceClient::new(ch.clone()).max_encoding_message_size(MAX_MESSAGE),
            logs: LogsServiceClient::new(ch.clone()).max_encoding_message_size(MAX_MESSAGE),
            metrics: MetricsServiceClient::new(ch).max_encoding_message_size(MAX_MESSAGE),
        })
    }

    /// Sends a batch: spans, logs, then each scrape.
    pub async fn send(&mut self, b: &Batch, start_ms: i64) -> Result<(), tonic::Status> {
        if !b.spans.is_empty() {
            self.traces.export(traces(b)).await?;
        }
        if !b.logs.is_empty() {
            self.logs.export(logs(b)).await?;
        }
        for s in &b.scrapes {
            self.metrics.export(metrics(s, start_ms)).await?;
        }
        Ok(())
    }
}
