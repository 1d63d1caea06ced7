//! OTLP/JSON decoded strictly, per the protobuf JSON mapping with OTLP's
//! own rules (ids as hex, enums as integers or names).
//!
//! `opentelemetry-proto`'s serde derive is lenient where it matters most:
//! a `oneof` is a flattened `Option`, so `"asDouble": "1.5"` (valid JSON
//! mapping) or `"asDouble": true` (invalid) silently become "no value" and
//! were stored as NaN, and `"gauge": {"dataPoints": "oops"}` became "no
//! data" with a 200. Here every field is read by its declared type: a
//! 64-bit integer as a number or a decimal string, a double as a number, a
//! numeric string, `"NaN"`, `"Infinity"` or `"-Infinity"`; anything else
//! is a 400 naming the field's path. Unknown fields are ignored, as OTLP
//! requires of receivers; `null` means the default; both the lowerCamelCase
//! and the proto field name are accepted.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point, metric,
    number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, span::SpanKind, status::StatusCode,
};
use serde_json::{Map, Value};

use super::MAX_DEPTH;
use crate::error::{ApiError, ApiResult};

/// Where a value sits in the document, built on the stack and only turned
/// into text for an error message.
#[derive(Clone, Copy)]
struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    key: &'p str,
    index: Option<usize>,
}

impl Path<'_> {
    const ROOT: Path<'static> = Path {
        parent: None,
        key: "",
        index: None,
    };

    fn render(&self) -> String {
        let mut parts = Vec::new();
        let mut at = Some(self);
        while let Some(p) = at {
            match p.index {
                Some(i) => parts.push(format!("[{i}]")),
                None if !p.key.is_empty() => parts.push(format!(".{}", p.key)),
                None => {}
            }
            at = p.parent;
        }
        parts.reverse();
        let s = parts.concat();
        s.strip_prefix('.').unwrap_or(&s).to_string()
    }

    fn err(&self, what: &str, got: &Value) -> ApiError {
        let got = match got {
            Value::String(s) if s.len() > 40 => format!("a string of {} bytes", s.len()),
            Value::Array(_) => "an array".into(),
            Value::Object(_) => "an object".into(),
            other => other.to_string(),
        };
        ApiError::bad(format!(
            "malformed OTLP JSON: {}: expected {what}, got {got}",
            self.render()
        ))
    }
}

/// An object being read, with its path.
struct Obj<'a, 'p> {
    map: &'a Map<String, Value>,
    path: &'p Path<'p>,
}

impl<'a, 'p> Obj<'a, 'p> {
    fn new(v: &'a Value, path: &'p Path<'p>) -> ApiResult<Option<Self>> {
        match v {
            Value::Null => Ok(None),
            Value::Object(map) => Ok(Some(Obj { map, path })),
            other => Err(path.err("an object", other)),
        }
    }

    /// The field by its JSON name or its proto name; `null` is absent.
    fn get(&self, camel: &'static str) -> Option<(&'a Value, Path<'_>)> {
        let v = self
            .map
            .get(camel)
            .or_else(|| self.map.get(&snake(camel)))?;
        (!v.is_null()).then_some((
            v,
            Path {
                parent: Some(self.path),
                key: camel,
                index: None,
            },
        ))
    }

    fn read<T: Default>(
        &self,
        camel: &'static str,
        f: impl FnOnce(&'a Value, &Path) -> ApiResult<T>,
    ) -> ApiResult<T> {
        match self.get(camel) {
            Some((v, p)) => f(v, &p),
            None => Ok(T::default()),
        }
    }

    fn str(&self, camel: &'static str) -> ApiResult<String> {
        self.read(camel, string)
    }

    fn u64(&self, camel: &'static str) -> ApiResult<u64> {
        self.read(camel, uint64)
    }

    fn u32(&self, camel: &'static str) -> ApiResult<u32> {
        self.read(camel, |v, p| {
            u32::try_from(uint64(v, p)?).map_err(|_| p.err("a 32-bit unsigned integer", v))
        })
    }

    fn i32(&self, camel: &'static str) -> ApiResult<i32> {
        self.read(camel, |v, p| {
            i32::try_from(int64(v, p)?).map_err(|_| p.err("a 32-bit integer", v))
        })
    }

    fn f64(&self, camel: &'static str) -> ApiResult<f64> {
        self.read(camel, double)
    }

    fn opt_f64(&self, camel: &'static str) -> ApiResult<Option<f64>> {
        self.read(camel, |v, p| double(v, p).map(Some))
    }

    fn bool(&self, camel: &'static str) -> ApiResult<bool> {
        self.read(camel, |v, p| {
            v.as_bool().ok_or_else(|| p.err("true or false", v))
        })
    }

    fn hex_id(&self, camel: &'static str) -> ApiResult<Vec<u8>> {
        self.read(camel, hex_id)
    }

    fn list<T>(
        &self,
        camel: &'static str,
        f: impl Fn(&'a Value, &Path) -> ApiResult<T>,
    ) -> ApiResult<Vec<T>> {
        self.read(camel, |v, p| list(v, p, f))
    }

    fn msg<T>(
        &self,
        camel: &'static str,
        f: impl FnOnce(Obj<'a, '_>) -> ApiResult<T>,
    ) -> ApiResult<Option<T>> {
        self.read(camel, |v, p| Obj::new(v, p)?.map(f).transpose())
    }

    fn attributes(&self, camel: &'static str) -> ApiResult<Vec<KeyValue>> {
        self.list(camel, |v, p| key_value(v, p, 0))
    }

    /// An enum given as its number or its name.
    fn enumeration(
        &self,
        camel: &'static str,
        by_name: impl FnOnce(&str) -> Option<i32>,
    ) -> ApiResult<i32> {
        self.read(camel, |v, p| match v {
            Value::String(s) => by_name(s)
                .or_else(|| s.parse().ok())
                .ok_or_else(|| p.err("an enum value (number or name)", v)),
            _ => i32::try_from(int64(v, p)?).map_err(|_| p.err("an enum value", v)),
        })
    }
}

/// `aggregationTemporality` → `aggregation_temporality`.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn string(v: &Value, p: &Path) -> ApiResult<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| p.err("a string", v))
}

fn uint64(v: &Value, p: &Path) -> ApiResult<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| p.err("an unsigned integer (a number or a decimal string)", v))
}

fn int64(v: &Value, p: &Path) -> ApiResult<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| p.err("an integer (a number or a decimal string)", v))
}

fn double(v: &Value, p: &Path) -> ApiResult<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            s => s.parse::<f64>().ok().filter(|x| x.is_finite()),
        },
        _ => None,
    }
    .ok_or_else(|| {
        p.err(
            "a number (or a numeric string, \"NaN\", \"Infinity\", \"-Infinity\")",
            v,
        )
    })
}

/// A trace or span id: hex in OTLP/JSON (not base64 as in the plain
/// protobuf mapping).
fn hex_id(v: &Value, p: &Path) -> ApiResult<Vec<u8>> {
    let s = v.as_str().ok_or_else(|| p.err("a hex string", v))?;
    if s.len() % 2 != 0 {
        return Err(p.err("an even number of hex digits", v));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| p.err("hex digits", v))
        })
        .collect()
}

fn list<'a, T>(
    v: &'a Value,
    p: &Path,
    f: impl Fn(&'a Value, &Path) -> ApiResult<T>,
) -> ApiResult<Vec<T>> {
    let items = v.as_array().ok_or_else(|| p.err("an array", v))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            f(
                item,
                &Path {
                    parent: Some(p),
                    key: "",
                    index: Some(i),
                },
            )
        })
        .collect()
}

/// Reads an element of a list that must be an object.
fn each<'a, T>(
    v: &'a Value,
    p: &Path,
    f: impl FnOnce(Obj<'a, '_>) -> ApiResult<T>,
) -> ApiResult<T> {
    match Obj::new(v, p)? {
        Some(o) => f(o),
        None => Err(p.err("an object", v)),
    }
}

fn key_value(v: &Value, p: &Path, depth: usize) -> ApiResult<KeyValue> {
    each(v, p, |o| {
        Ok(KeyValue {
            key: o.str("key")?,
            value: o.read("value", |v, p| {
                Obj::new(v, p)?
                    .map(|o| any_value(&o, depth + 1))
                    .transpose()
            })?,
            ..KeyValue::default()
        })
    })
}

fn any_value(o: &Obj, depth: usize) -> ApiResult<AnyValue> {
    use any_value::Value as V;
    if depth > MAX_DEPTH {
        return Err(ApiError::bad(format!(
            "malformed OTLP JSON: {}: values nested deeper than {MAX_DEPTH} levels",
            o.path.render()
        )));
    }
    let mut found = None;
    for name in [
        "stringValue",
        "boolValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
    ] {
        let Some((v, p)) = o.get(name) else { continue };
        if found.is_some() {
            return Err(ApiError::bad(format!(
                "malformed OTLP JSON: {}: more than one value field",
                o.path.render()
            )));
        }
        found = Some(match name {
            "stringValue" => V::StringValue(string(v, &p)?),
            "boolValue" => V::BoolValue(v.as_bool().ok_or_else(|| p.err("true or false", v))?),
            "intValue" => V::IntValue(int64(v, &p)?),
            "doubleValue" => V::DoubleValue(double(v, &p)?),
            "bytesValue" => V::BytesValue(
                v.as_str()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                    .ok_or_else(|| p.err("base64", v))?,
            ),
            "arrayValue" => V::ArrayValue(each(v, &p, |a| {
                Ok(ArrayValue {
                    values: a.list("values", |v, p| {
                        each(v, p, |item| any_value(&item, depth + 1))
                    })?,
                })
            })?),
            _ => V::KvlistValue(each(v, &p, |kv| {
                Ok(KeyValueList {
                    values: kv.list("values", |v, p| key_value(v, p, depth + 1))?,
                })
            })?),
        });
    }
    Ok(AnyValue { value: found })
}

fn resource(o: Obj) -> ApiResult<Resource> {
    Ok(Resource {
        attributes: o.attributes("attributes")?,
        dropped_attributes_count: o.u32("droppedAttributesCount")?,
        ..Resource::default()
    })
}

fn scope(o: Obj) -> ApiResult<InstrumentationScope> {
    Ok(InstrumentationScope {
        name: o.str("name")?,
        version: o.str("version")?,
        attributes: o.attributes("attributes")?,
        dropped_attributes_count: o.u32("droppedAttributesCount")?,
    })
}

/// The top-level object of a request body.
fn root(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(Path::ROOT.err("an object", &other)),
        Err(e) => Err(ApiError::bad(format!("malformed OTLP JSON: {e}"))),
    }
}

/// The resource → scope → item nesting all three signals share:
/// `{outer: [{resource, inner: [{scope, items: [..]}]}]}` at the top of
/// `bytes`, each level built by its `make_*`.
#[allow(clippy::too_many_arguments)]
fn nested<R, S, I>(
    bytes: &[u8],
    outer: &'static str,
    inner: &'static str,
    items: &'static str,
    item: fn(Obj) -> ApiResult<I>,
    make_scope: fn(Option<InstrumentationScope>, Vec<I>, String) -> S,
    make_resource: fn(Option<Resource>, Vec<S>, String) -> R,
) -> ApiResult<Vec<R>> {
    let map = root(bytes)?;
    let o = Obj {
        map: &map,
        path: &Path::ROOT,
    };
    o.list(outer, |v, p| {
        each(v, p, |r| {
            let scopes = r.list(inner, |v, p| {
                each(v, p, |sc| {
                    Ok(make_scope(
                        sc.msg("scope", scope)?,
                        sc.list(items, |v, p| each(v, p, item))?,
                        sc.str("schemaUrl")?,
                    ))
                })
            })?;
            Ok(make_resource(
                r.msg("resource", resource)?,
                scopes,
                r.str("schemaUrl")?,
            ))
        })
    })
}

/// An `ExportTraceServiceRequest` from OTLP/JSON.
pub fn traces(bytes: &[u8]) -> ApiResult<ExportTraceServiceRequest> {
    Ok(ExportTraceServiceRequest {
        resource_spans: nested(
            bytes,
            "resourceSpans",
            "scopeSpans",
            "spans",
            span,
            |scope, spans, schema_url| ScopeSpans {
                scope,
                spans,
                schema_url,
            },
            |resource, scope_spans, schema_url| ResourceSpans {
                resource,
                scope_spans,
                schema_url,
            },
        )?,
    })
}

fn span(o: Obj) -> ApiResult<Span> {
    Ok(Span {
        trace_id: o.hex_id("traceId")?,
        span_id: o.hex_id("spanId")?,
        trace_state: o.str("traceState")?,
        parent_span_id: o.hex_id("parentSpanId")?,
        flags: o.u32("flags")?,
        name: o.str("name")?,
        kind: o.enumeration("kind", |s| SpanKind::from_str_name(s).map(|k| k as i32))?,
        start_time_unix_nano: o.u64("startTimeUnixNano")?,
        end_time_unix_nano: o.u64("endTimeUnixNano")?,
        attributes: o.attributes("attributes")?,
        dropped_attributes_count: o.u32("droppedAttributesCount")?,
        events: o.list("events", |v, p| {
            each(v, p, |e| {
                Ok(span::Event {
                    time_unix_nano: e.u64("timeUnixNano")?,
                    name: e.str("name")?,
                    attributes: e.attributes("attributes")?,
                    dropped_attributes_count: e.u32("droppedAttributesCount")?,
                })
            })
        })?,
        dropped_events_count: o.u32("droppedEventsCount")?,
        links: o.list("links", |v, p| {
            each(v, p, |l| {
                Ok(span::Link {
                    trace_id: l.hex_id("traceId")?,
                    span_id: l.hex_id("spanId")?,
                    trace_state: l.str("traceState")?,
                    attributes: l.attributes("attributes")?,
                    dropped_attributes_count: l.u32("droppedAttributesCount")?,
                    flags: l.u32("flags")?,
                })
            })
        })?,
        dropped_links_count: o.u32("droppedLinksCount")?,
        status: o.msg("status", |s| {
            Ok(Status {
                message: s.str("message")?,
                code: s.enumeration("code", |n| StatusCode::from_str_name(n).map(|c| c as i32))?,
            })
        })?,
    })
}

/// An `ExportLogsServiceRequest` from OTLP/JSON.
pub fn logs(bytes: &[u8]) -> ApiResult<ExportLogsServiceRequest> {
    Ok(ExportLogsServiceRequest {
        resource_logs: nested(
            bytes,
            "resourceLogs",
            "scopeLogs",
            "logRecords",
            log_record,
            |scope, log_records, schema_url| ScopeLogs {
                scope,
                log_records,
                schema_url,
            },
            |resource, scope_logs, schema_url| ResourceLogs {
                resource,
                scope_logs,
                schema_url,
            },
        )?,
    })
}

fn log_record(o: Obj) -> ApiResult<LogRecord> {
    Ok(LogRecord {
        time_unix_nano: o.u64("timeUnixNano")?,
        observed_time_unix_nano: o.u64("observedTimeUnixNano")?,
        severity_number: o.enumeration("severityNumber", |s| {
            SeverityNumber::from_str_name(s).map(|n| n as i32)
        })?,
        severity_text: o.str("severityText")?,
        body: o.msg("body", |b| any_value(&b, 0))?,
        attributes: o.attributes("attributes")?,
        dropped_attributes_count: o.u32("droppedAttributesCount")?,
        flags: o.u32("flags")?,
        trace_id: o.hex_id("traceId")?,
        span_id: o.hex_id("spanId")?,
        event_name: o.str("eventName")?,
    })
}

/// An `ExportMetricsServiceRequest` from OTLP/JSON.
pub fn metrics(bytes: &[u8]) -> ApiResult<ExportMetricsServiceRequest> {
    Ok(ExportMetricsServiceRequest {
        resource_metrics: nested(
            bytes,
            "resourceMetrics",
            "scopeMetrics",
            "metrics",
            metric,
            |scope, metrics, schema_url| ScopeMetrics {
                scope,
                metrics,
                schema_url,
            },
            |resource, scope_metrics, schema_url| ResourceMetrics {
                resource,
                scope_metrics,
                schema_url,
            },
        )?,
    })
}

fn temporality(o: &Obj) -> ApiResult<i32> {
    o.enumeration("aggregationTemporality", |s| {
        AggregationTemporality::from_str_name(s).map(|t| t as i32)
    })
}

fn metric(o: Obj) -> ApiResult<Metric> {
    use metric::Data;
    let mut data = None;
    for kind in [
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
    ] {
        let Some(d) = o.msg(kind, |d| {
            Ok(match kind {
                "gauge" => Data::Gauge(Gauge {
                    data_points: d.list("dataPoints", |v, p| each(v, p, number_point))?,
                }),
                "sum" => Data::Sum(Sum {
                    data_points: d.list("dataPoints", |v, p| each(v, p, number_point))?,
                    aggregation_temporality: temporality(&d)?,
                    is_monotonic: d.bool("isMonotonic")?,
                }),
                "histogram" => Data::Histogram(Histogram {
                    data_points: d.list("dataPoints", |v, p| each(v, p, histogram_point))?,
                    aggregation_temporality: temporality(&d)?,
                }),
                "exponentialHistogram" => Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: d.list("dataPoints", |v, p| each(v, p, exp_point))?,
                    aggregation_temporality: temporality(&d)?,
                }),
                _ => Data::Summary(Summary {
                    data_points: d.list("dataPoints", |v, p| each(v, p, summary_point))?,
                }),
            })
        })?
        else {
            continue;
        };
        if data.is_some() {
            return Err(ApiError::bad(format!(
                "malformed OTLP JSON: {}: a metric has one of gauge, sum, histogram, \
                 exponentialHistogram and summary, not several",
                o.path.render()
            )));
        }
        data = Some(d);
    }
    Ok(Metric {
        name: o.str("name")?,
        description: o.str("description")?,
        unit: o.str("unit")?,
        metadata: o.attributes("metadata")?,
        data,
    })
}

/// The `asDouble` / `asInt` oneof of a point or exemplar.
fn number<T>(o: &Obj, double_: fn(f64) -> T, int: fn(i64) -> T) -> ApiResult<Option<T>> {
    match (o.get("asDouble"), o.get("asInt")) {
        (Some(_), Some(_)) => Err(ApiError::bad(format!(
            "malformed OTLP JSON: {}: both asDouble and asInt",
            o.path.render()
        ))),
        (Some((v, p)), None) => Ok(Some(double_(double(v, &p)?))),
        (None, Some((v, p))) => Ok(Some(int(int64(v, &p)?))),
        (None, None) => Ok(None),
    }
}

fn exemplars(o: &Obj) -> ApiResult<Vec<Exemplar>> {
    o.list("exemplars", |v, p| {
        each(v, p, |e| {
            Ok(Exemplar {
                filtered_attributes: e.attributes("filteredAttributes")?,
                time_unix_nano: e.u64("timeUnixNano")?,
                span_id: e.hex_id("spanId")?,
                trace_id: e.hex_id("traceId")?,
                value: number(&e, exemplar::Value::AsDouble, exemplar::Value::AsInt)?,
            })
        })
    })
}

fn number_point(o: Obj) -> ApiResult<NumberDataPoint> {
    use number_data_point::Value as V;
    Ok(NumberDataPoint {
        attributes: o.attributes("attributes")?,
        start_time_unix_nano: o.u64("startTimeUnixNano")?,
        time_unix_nano: o.u64("timeUnixNano")?,
        exemplars: exemplars(&o)?,
        flags: o.u32("flags")?,
        value: number(&o, V::AsDouble, V::AsInt)?,
    })
}

fn histogram_point(o: Obj) -> ApiResult<HistogramDataPoint> {
    Ok(HistogramDataPoint {
        attributes: o.attributes("attributes")?,
        start_time_unix_nano: o.u64("startTimeUnixNano")?,
        time_unix_nano: o.u64("timeUnixNano")?,
        count: o.u64("count")?,
        sum: o.opt_f64("sum")?,
        bucket_counts: o.list("bucketCounts", uint64)?,
        explicit_bounds: o.list("explicitBounds", double)?,
        exemplars: exemplars(&o)?,
        flags: o.u32("flags")?,
        min: o.opt_f64("min")?,
        max: o.opt_f64("max")?,
    })
}

fn exp_point(o: Obj) -> ApiResult<ExponentialHistogramDataPoint> {
    let buckets = |b: Obj| {
        Ok(exponential_histogram_data_point::Buckets {
            offset: b.i32("offset")?,
            bucket_counts: b.list("bucketCounts", uint64)?,
        })
    };
    Ok(ExponentialHistogramDataPoint {
        attributes: o.attributes("attributes")?,
        start_time_unix_nano: o.u64("startTimeUnixNano")?,
        time_unix_nano: o.u64("timeUnixNano")?,
        count: o.u64("count")?,
        sum: o.opt_f64("sum")?,
        scale: o.i32("scale")?,
        zero_count: o.u64("zeroCount")?,
        positive: o.msg("positive", buckets)?,
        negative: o.msg("negative", buckets)?,
        flags: o.u32("flags")?,
        exemplars: exemplars(&o)?,
        min: o.opt_f64("min")?,
        max: o.opt_f64("max")?,
        zero_threshold: o.f64("zeroThreshold")?,
    })
}

fn summary_point(o: Obj) -> ApiResult<SummaryDataPoint> {
    Ok(SummaryDataPoint {
        attributes: o.attributes("attributes")?,
        start_time_unix_nano: o.u64("startTimeUnixNano")?,
        time_unix_nano: o.u64("timeUnixNano")?,
        count: o.u64("count")?,
        sum: o.f64("sum")?,
        quantile_values: o.list("quantileValues", |v, p| {
            each(v, p, |q| {
                Ok(summary_data_point::ValueAtQuantile {
                    quantile: q.f64("quantile")?,
                    value: q.f64("value")?,
                })
            })
        })?,
        flags: o.u32("flags")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/seeds/otlp_json_decode/"
        );
        std::fs::read(format!("{dir}{name}")).unwrap()
    }

    /// The fuzz seeds are valid requests covering every message kind, so
    /// the fuzzer starts from the decoder's whole grammar.
    #[test]
    fn the_fuzz_seeds_decode_with_every_field() {
        use metric::Data;
        let m = metrics(&seed("metrics.json")).unwrap();
        let ms = &m.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(ms.len(), 5);
        let Some(Data::Gauge(g)) = &ms[0].data else {
            panic!()
        };
        assert_eq!(
            g.data_points[0].value,
            Some(number_data_point::Value::AsDouble(1.5))
        );
        let Some(Data::Sum(s)) = &ms[2].data else {
            panic!()
        };
        assert_eq!(
            s.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        assert_eq!(
            s.data_points[0].value,
            Some(number_data_point::Value::AsInt(7))
        );
        let Some(Data::Summary(q)) = &ms[4].data else {
            panic!()
        };
        assert!(q.data_points[0].sum.is_infinite());
        assert!(q.data_points[0].quantile_values[0].value.is_nan());
        let t = traces(&seed("traces.json")).unwrap();
        let sp = &t.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((sp.kind, sp.trace_id.len(), sp.links.len()), (2, 16, 1));
        let l = logs(&seed("logs.json")).unwrap();
        assert_eq!(
            l.resource_logs[0].scope_logs[0].log_records[0].severity_number,
            17
        );
    }
}
