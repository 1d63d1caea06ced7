//! The OpenTelemetry Rust SDK's own OTLP exporters (gRPC with gzip,
//! HTTP/protobuf, HTTP/JSON) send traces, metrics and logs to a real
//! `sextant serve`; everything is read back through the HTTP query APIs
//! and compared field by field.

mod common;

use common::{Server, client, enc, eventually};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

struct Exporters {
    spans: SpanExporter,
    metrics: MetricExporter,
    logs: LogExporter,
}

fn exporters(s: &Server, t: Transport) -> Exporters {
    use opentelemetry_otlp::WithTonicConfig;
    match t {
        Transport::Grpc => {
            let ep = format!("http://{}", s.grpc);
            let gz = opentelemetry_otlp::Compression::Gzip;
            Exporters {
                spans: SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(&ep)
                    .with_compression(gz)
                    .build()
                    .unwrap(),
                metrics: MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(&ep)
                    .with_compression(gz)
                    .build()
                    .unwrap(),
                logs: LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(&ep)
                    .with_compression(gz)
                    .build()
                    .unwrap(),
            }
        }
        Transport::HttpProtobuf | Transport::HttpJson => {
            use opentelemetry_otlp::WithHttpConfig;
            let p = match t {
                Transport::HttpJson => Protocol::HttpJson,
                _ => Protocol::HttpBinary,
            };
            let ep = |path: &str| format!("http://{}{path}", s.otlp_http);
            let gz = opentelemetry_otlp::Compression::Gzip;
            Exporters {
                spans: SpanExporter::builder()
                    .with_http()
                    .with_protocol(p)
                    .with_endpoint(ep("/v1/traces"))
                    .with_compression(gz)
                    .build()
                    .unwrap(),
                metrics: MetricExporter::builder()
                    .with_http()
                    .with_protocol(p)
                    .with_endpoint(ep("/v1/metrics"))
                    .build()
                    .unwrap(),
                logs: LogExporter::builder()
                    .with_http()
                    .with_protocol(p)
                    .with_endpoint(ep("/v1/logs"))
                    .build()
                    .unwrap(),
            }
        }
    }
}

fn resource(service: &str) -> Resource {
    Resource::builder()
        .with_service_name(service.to_string())
        .with_attributes([
            KeyValue::new("service.instance.id", "pod-1"),
            KeyValue::new("deployment.environment", "test"),
        ])
        .build()
}

/// The runtime the exporters run on (the caller enters it before they
/// are built).
fn exporter_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends one trace (server span with a failing client child), one error
/// log inside it, a counter, a histogram and a gauge; returns the trace id.
fn send_all(s: &Server, t: Transport, service: &str) -> String {
    let rt = exporter_runtime();
    // Tonic channels spawn their workers on the runtime entered here.
    let _guard = rt.enter();
    let ex = exporters(s, t);

    let tp = SdkTracerProvider::builder()
        .with_simple_exporter(ex.spans)
        .with_resource(resource(service))
        .build();
    let tracer = tp.tracer("otlp-test");
    let mut root = tracer
        .span_builder("GET /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.route", "/checkout"),
            KeyValue::new("http.status_code", 500),
        ])
        .start(&tracer);
    let trace_id = root.span_context().trace_id();
    let root_id = root.span_context().span_id();
    root.set_status(Status::error("payment failed"));
    let cx = Context::current().with_remote_span_context(root.span_context().clone());
    let mut child = tracer
        .span_builder("POST payments")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("peer.service", "payments"),
            KeyValue::new("retry", true),
        ])
        .start_with_context(&tracer, &cx);
    child.add_event("retrying", vec![KeyValue::new("attempt", 2)]);
    let child_id = child.span_context().span_id();

    let lp = SdkLoggerProvider::builder()
        .with_simple_exporter(ex.logs)
        .with_resource(resource(service))
        .build();
    let logger = lp.logger("otlp-test");
    let mut rec = logger.create_log_record();
    rec.set_body(AnyValue::from("payment declined: card expired".to_string()));
    rec.set_severity_number(Severity::Error);
    rec.set_severity_text("ERROR");
    rec.set_timestamp(std::time::SystemTime::now());
    rec.add_attribute("order_id", 4711);
    rec.set_trace_context(trace_id, child_id, None);
    logger.emit(rec);

    child.set_status(Status::error("card expired"));
    child.end();
    root.end();

    let mp = SdkMeterProvider::builder()
        .with_periodic_exporter(ex.metrics)
        .with_resource(resource(service))
        .build();
    let meter = mp.meter("otlp-test");
    let requests = meter
        .u64_counter("http.server.requests")
        .with_unit("{request}")
        .with_description("Requests served")
        .build();
    requests.add(3, &[KeyValue::new("http.route", "/checkout")]);
    requests.add(4, &[KeyValue::new("http.route", "/cart")]);
    let latency = meter
        .f64_histogram("http.server.duration")
        .with_unit("ms")
        .with_boundaries(vec![10.0, 100.0, 1000.0])
        .build();
    for v in [5.0, 50.0, 60.0, 5000.0] {
        latency.record(v, &[KeyValue::new("http.route", "/checkout")]);
    }
    let queue = meter.i64_gauge("queue.depth").build();
    queue.record(17, &[]);

    tp.force_flush().unwrap();
    lp.force_flush().unwrap();
    mp.force_flush().unwrap();
    tp.shutdown().unwrap();
    lp.shutdown().unwrap();
    mp.shutdown().unwrap();
    let _ = root_id;
    trace_id.to_string()
}

fn attr<'a>(v: &'a Value, k: &str) -> &'a Value {
    &v["attributes"][k]
}

fn check_round_trip(t: Transport) {
    let s = Server::start(&[]);
    let service = format!("checkout-{t:?}").to_lowercase();
    let trace_id = send_all(&s, t, &service);

    // Traces: both spans, parent link, kinds, status, attributes, events.
    let (status, v) = s.get_json(&format!("/api/v1/sextant/traces/{trace_id}"));
    assert_eq!(status, 200, "{v}");
    let spans = v["data"]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{v}");
    let root = spans.iter().find(|s| s["name"] == "GET /checkout").unwrap();
    let child = spans.iter().find(|s| s["name"] == "POST payments").unwrap();
    assert_eq!(root["traceId"], trace_id);
    assert_eq!(root["parentSpanId"], "");
    assert_eq!(child["parentSpanId"], root["spanId"]);
    assert_eq!(root["kind"], "server");
    assert_eq!(child["kind"], "client");
    assert_eq!(root["service"], service);
    assert_eq!(root["status"]["code"], "error");
    assert_eq!(root["status"]["message"], "payment failed");
    assert_eq!(attr(root, "http.route"), "/checkout");
    assert_eq!(attr(root, "http.status_code"), 500);
    assert_eq!(attr(child, "retry"), true);
    assert_eq!(child["events"][0]["name"], "retrying");
    assert_eq!(child["events"][0]["attributes"]["attempt"], 2);
    assert_eq!(root["resource"]["service.instance.id"], "pod-1");
    let start: i64 = root["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: i64 = root["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 1_600_000_000_000_000_000 && end >= start);

    // Logs: the error log of the trace, by service and by text.
    let sel = enc(&format!("{{service=\"{service}\",level=\"error\"}}"));
    let (status, v) = s.get_json(&format!("/api/v1/sextant/logs?match[]={sel}&q=expired"));
    assert_eq!(status, 200, "{v}");
    let logs = v["data"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{v}");
    let log = &logs[0];
    assert_eq!(log["body"], "payment declined: card expired");
    assert_eq!(log["severityNumber"], 17);
    assert_eq!(log["severityText"], "ERROR");
    assert_eq!(log["traceId"], trace_id);
    assert_eq!(log["spanId"], child["spanId"]);
    assert_eq!(attr(log, "order_id"), 4711);
    assert_eq!(log["resource"]["service.name"], service);

    // Metrics, as the Prometheus-compatibility rules name them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let job = format!("job=\"{service}\"");
    let value = |q: &str| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = s
            .query(q, now)
            .iter()
            .map(|r| {
                (
                    r["metric"].to_string(),
                    r["value"][1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let counter = value(&format!("http_server_requests_total{{{job}}}"));
    assert_eq!(counter.len(), 2, "{counter:?}");
    assert!(
        counter[0].0.contains("\"http_route\":\"/cart\"") && counter[0].1 == "4",
        "{counter:?}"
    );
    assert!(
        counter[1].0.contains("\"instance\":\"pod-1\"") && counter[1].1 == "3",
        "{counter:?}"
    );
    assert!(
        counter[1].0.contains("\"otel_scope_name\":\"otlp-test\""),
        "{counter:?}"
    );
    let buckets = value(&format!(
        "http_server_duration_milliseconds_bucket{{{job}}}"
    ));
    let by_le: Vec<(bool, &str)> = ["\"10\"", "\"100\"", "\"1000\"", "\"+Inf\""]
        .iter()
        .map(|le| {
            let b = buckets
                .iter()
                .find(|(m, _)| m.contains(&format!("\"le\":{le}")))
                .unwrap();
            (true, b.1.as_str())
        })
        .collect();
    assert_eq!(
        by_le.iter().map(|b| b.1).collect::<Vec<_>>(),
        ["1", "3", "3", "4"]
    );
    assert_eq!(
        value(&format!("http_server_duration_milliseconds_count{{{job}}}"))[0].1,
        "4"
    );
    assert_eq!(
        value(&format!("http_server_duration_milliseconds_sum{{{job}}}"))[0].1,
        "5115"
    );
    assert_eq!(value(&format!("queue_depth{{{job}}}"))[0].1, "17");
    let info = value(&format!("target_info{{{job}}}"));
    assert!(
        info[0].0.contains("\"deployment_environment\":\"test\""),
        "{info:?}"
    );
    let (status, v) = s.get_json("/api/v1/metadata?metric=http_server_requests_total");
    assert_eq!(status, 200);
    assert_eq!(
        v["data"]["http_server_requests_total"][0]["type"],
        "counter"
    );
    assert_eq!(
        v["data"]["http_server_requests_total"][0]["help"],
        "Requests served"
    );

    // A clean stop, a restart: everything is still there (WAL replay).
    let dir = s.stop();
    let s = Server::start_in(dir, &[]);
    let (status, v) = s.get_json(&format!("/api/v1/sextant/traces/{trace_id}"));
    assert_eq!(
        (status, v["data"]["spans"].as_array().unwrap().len()),
        (200, 2)
    );
    assert_eq!(value_after_restart(&s, &job, now), "17");
}

fn value_after_restart(s: &Server, job: &str, now: f64) -> String {
    s.query(&format!("queue_depth{{{job}}}"), now)[0]["value"][1]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn otlp_grpc_exporter_round_trip() {
    check_round_trip(Transport::Grpc);
}

#[test]
fn otlp_http_protobuf_exporter_round_trip() {
    check_round_trip(Transport::HttpProtobuf);
}

#[test]
fn otlp_http_json_exporter_round_trip() {
    check_round_trip(Transport::HttpJson);
}

#[test]
fn health_and_self_metrics() {
    let s = Server::start(&[]);
    let r = client().get(s.url("/healthz")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client().get(s.url("/readyz")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = eventually("self metrics", || {
        client().get(s.url("/metrics")).send().ok()?.text().ok()
    });
    assert!(
        text.contains("# TYPE sextant_ingest_requests_total counter"),
        "{text}"
    );
    assert!(text.contains("sextant_head_series "), "{text}");
}

/// OTLP/JSON is read by the protobuf JSON mapping, strictly: valid
/// encodings of a value (numeric strings, "NaN", "Infinity") are stored as
/// that value, and a field of the wrong type is a 400 naming its path,
/// never a silent NaN or a dropped point (issue 19, finding 5).
#[test]
fn otlp_json_values_follow_the_protobuf_json_mapping() {
    let s = Server::start(&[]);
    let t0 = 1_700_000_000_000_000_000u64;
    let body = |name: &str, points: Value| {
        serde_json::json!({"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]},
            "scopeMetrics": [{"metrics": [{"name": name, "gauge": {"dataPoints": points}}]}],
        }]})
        .to_string()
    };
    let post = |b: String| {
        let r = client()
            .post(format!("http://{}/v1/metrics", s.otlp_http))
            .header("content-type", "application/json")
            .body(b)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let good = serde_json::json!([
        {"timeUnixNano": t0.to_string(), "asDouble": "1.5", "attributes": [{"key": "k", "value": {"stringValue": "str"}}]},
        {"timeUnixNano": t0.to_string(), "asDouble": "Infinity", "attributes": [{"key": "k", "value": {"stringValue": "inf"}}]},
        {"timeUnixNano": t0, "asInt": "-7", "attributes": [{"key": "k", "value": {"stringValue": "int"}}]},
        {"time_unix_nano": t0.to_string(), "as_double": 2.5, "attributes": [{"key": "k", "value": {"stringValue": "snake"}}]},
    ]);
    let (status, text) = post(body("typed", good));
    assert_eq!(status, 200, "{text}");
    let t = (t0 / 1_000_000_000) as f64;
    let mut got: Vec<(String, String)> = s
        .query("typed", t)
        .iter()
        .map(|r| {
            (
                r["metric"]["k"].as_str().unwrap().to_string(),
                r["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("inf", "+Inf"),
            ("int", "-7"),
            ("snake", "2.5"),
            ("str", "1.5")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    for (points, path, why) in [
        (
            serde_json::json!([{"timeUnixNano": t0.to_string(), "asDouble": true}]),
            "dataPoints[0].asDouble",
            "a number",
        ),
        (
            serde_json::json!([{"timeUnixNano": t0.to_string(), "asInt": "five"}]),
            "dataPoints[0].asInt",
            "an integer",
        ),
        (
            serde_json::json!([{"timeUnixNano": true, "asDouble": 1}]),
            "dataPoints[0].timeUnixNano",
            "an unsigned integer",
        ),
        (
            serde_json::json!([{"timeUnixNano": t0.to_string(), "asDouble": 1, "asInt": "1"}]),
            "dataPoints[0]",
            "both asDouble and asInt",
        ),
        (serde_json::json!("oops"), "gauge.dataPoints", "an array"),
    ] {
        let (status, text) = post(body("bad", points));
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains(path) && text.contains(why), "{path}: {text}");
    }
    assert!(
        s.query("bad", t).is_empty(),
        "a refused request stores nothing"
    );
    let (status, text) =
        post(r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}"#.into());
    assert_eq!(status, 200, "metrics ignore unknown fields: {text}");
    let r = client()
        .post(format!("http://{}/v1/traces", s.otlp_http))
        .header("content-type", "application/json")
        .body(r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("spans[0].traceId"));
}

/// Records `values` into an exponential histogram `latency` with the
/// OpenTelemetry SDK and exports it over `t`.
fn send_exponential(s: &Server, t: Transport, service: &str, name: &str, values: &[f64]) {
    use opentelemetry_sdk::metrics::{Aggregation, Instrument, Stream};
    let rt = exporter_runtime();
    // Tonic channels spawn their workers on the runtime entered here.
    let _guard = rt.enter();
    let ex = exporters(s, t);
    let exponential = |i: &Instrument| {
        (i.kind() == opentelemetry_sdk::metrics::InstrumentKind::Histogram)
            .then(|| {
                Stream::builder()
                    .with_aggregation(Aggregation::Base2ExponentialHistogram {
                        max_size: 160,
                        max_scale: 20,
                        record_min_max: true,
                    })
                    .build()
                    .ok()
            })
            .flatten()
    };
    let mp = SdkMeterProvider::builder()
        .with_periodic_exporter(ex.metrics)
        .with_resource(resource(service))
        .with_view(exponential)
        .build();
    let h = mp
        .meter("otlp-test")
        .f64_histogram(name.to_string())
        .with_unit("s")
        .build();
    for v in values {
        h.record(*v, &[KeyValue::new("route", "/pay")]);
    }
    mp.force_flush().unwrap();
    mp.shutdown().unwrap();
}

/// `[lower, upper, count]` of every bucket of a histogram in Prometheus'
/// JSON, and its count and sum.
fn buckets_of(h: &Value) -> (f64, f64, Vec<(f64, f64, f64)>) {
    let f = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    let buckets = h["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (f(&b[1]), f(&b[2]), f(&b[3])))
        .collect();
    (f(&h["count"]), f(&h["sum"]), buckets)
}

/// The OpenTelemetry SDK's exponential histograms arrive as native
/// histograms (gRPC, HTTP protobuf, HTTP JSON): every recorded value lies
/// in a returned bucket holding as many values as were recorded there;
/// count and sum match; `histogram_quantile` equals the quantile computed
/// here from the buckets (log-linear inside a bucket); a scale finer than
/// 8 arrives downscaled to schema 8.
#[test]
fn otlp_exponential_histograms_from_the_sdk() {
    let s = Server::start(&[]);
    for t in [
        Transport::Grpc,
        Transport::HttpProtobuf,
        Transport::HttpJson,
    ] {
        let service = format!("expo-{t:?}").to_lowercase();
        let spread = [0.0015, 0.003, 0.003, 0.007, 0.1, 2.5];
        send_exponential(&s, t, &service, "pay.latency", &spread);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let sel = format!("pay_latency_seconds{{job=\"{service}\"}}");
        let got = eventually("exponential histogram", || {
            let r = s.query(&sel, now + 1.0);
            (!r.is_empty()).then_some(r)
        });
        assert_eq!(got.len(), 1, "{got:?}");
        let (count, sum, buckets) = buckets_of(&got[0]["histogram"][1]);
        assert_eq!(count, spread.len() as f64);
        assert!((sum - spread.iter().sum::<f64>()).abs() < 1e-9, "{sum}");
        for b in &buckets {
            let inside = spread.iter().filter(|v| **v > b.0 && **v <= b.1).count();
            assert_eq!(b.2, inside as f64, "bucket {b:?} of {buckets:?}");
        }
        assert_eq!(
            buckets.iter().map(|b| b.2).sum::<f64>(),
            count,
            "every value in a bucket"
        );
        // Ranks inside buckets, not on a boundary between buckets with
        // empty ones between (where either side is an answer).
        for q in [0.25, 0.6, 0.9] {
            let rank = q * count;
            let mut before = 0.0;
            let mut want = f64::NAN;
            for (lo, hi, c) in &buckets {
                if before + c >= rank {
                    want = lo * (hi / lo).powf((rank - before) / c);
                    break;
                }
                before += c;
            }
            let r = s.query(&format!("histogram_quantile({q}, {sel})"), now + 1.0);
            let v: f64 = r[0]["value"][1].as_str().unwrap().parse().unwrap();
            assert!((v - want).abs() <= 1e-9 * want, "q={q}: {v} vs {want}");
        }

        // Values 1.0001…1.0003 make the SDK choose a scale above 8.
        let narrow = [1.0001, 1.0002, 1.0003];
        send_exponential(&s, t, &service, "narrow", &narrow);
        let sel = format!("narrow_seconds{{job=\"{service}\"}}");
        let got = eventually("narrow histogram", || {
            let r = s.query(&sel, now + 1.0);
            (!r.is_empty()).then_some(r)
        });
        let (count, _, buckets) = buckets_of(&got[0]["histogram"][1]);
        assert_eq!(count, 3.0);
        // Schema 8: bucket 1 is (1, 2^(1/256)].
        assert_eq!(buckets.len(), 1, "{buckets:?}");
        assert_eq!(buckets[0].0, 1.0);
        assert!((buckets[0].1 - 2f64.powf(1.0 / 256.0)).abs() < 1e-12);
        assert_eq!(buckets[0].2, 3.0);
    }
}
