//! `sextant.v1.Query` over gRPC against the real server: typed, streamed
//! results equal to what the Prometheus HTTP API answers, metadata calls,
//! traces by id, errors with their codes, and server reflection read by
//! tonic-reflection's own client (what `grpcurl` asks for).

mod common;

use common::{Server, client, pb as rw, remote_write, write_histograms};
use tonic::Code;
use tonic::transport::Channel;

use pb::query_client::QueryClient;
use pb::run_frame::Frame;
use sextant_server::query_grpc::pb;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const T0: i64 = 1_700_000_000_000;

/// `reqs_total{job, pod}` for 3 jobs × `pods` pods, 5 samples 15 s apart.
fn load(s: &Server, pods: usize) {
    let mut series = Vec::new();
    for (j, job) in ["a", "b", "c"].iter().enumerate() {
        for p in 0..pods {
            let samples: Vec<(i64, f64)> = (0..5)
                .map(|k| (T0 + k * 15_000, ((j + 1) * (k as usize + 1)) as f64))
                .collect();
            let pod = format!("pod-{p:04}");
            series.push(rw::series(
                &[
                    (b"__name__", b"reqs_total"),
                    (b"job", job.as_bytes()),
                    (b"pod", pod.as_bytes()),
                ],
                &samples,
            ));
        }
    }
    for chunk in series.chunks(2000) {
        assert_eq!(remote_write(s, rw::write_request(chunk)).0, 204);
    }
}

/// A trace of three spans: root → child → grandchild.
fn load_trace(s: &Server) {
    let span = |id: &str, parent: &str, name: &str, start: i64| {
        serde_json::json!({
            "traceId": "0102030405060708090a0b0c0d0e0f10",
            "spanId": id,
            "parentSpanId": parent,
            "name": name,
            "kind": 2,
            "startTimeUnixNano": (start * 1_000_000).to_string(),
            "endTimeUnixNano": ((start + 5) * 1_000_000).to_string(),
            "status": {"code": if name == "db" { 2 } else { 0 }, "message": ""},
            "attributes": [{"key": "http.status_code", "value": {"intValue": "500"}}],
        })
    };
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"spans": [
            span("1111111111111111", "", "GET /cart", T0),
            span("2222222222222222", "1111111111111111", "cart.load", T0 + 1),
            span("3333333333333333", "2222222222222222", "db", T0 + 2),
        ]}],
    }]});
    let r = client()
        .post(format!("http://{}/v1/traces", s.otlp_http))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(s: &Server) -> Channel {
    Channel::from_shared(format!("http://{}", s.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Every frame of a Run call.
async fn run(
    c: &mut QueryClient<Channel>,
    req: impl tonic::IntoRequest<pb::RunRequest>,
) -> Result<Vec<Frame>, tonic::Status> {
    let mut stream = c.run(req).await?.into_inner();
    let mut frames = Vec::new();
    while let Some(f) = stream.message().await? {
        frames.push(f.frame.unwrap());
    }
    Ok(frames)
}

fn instant(expr: &str, t: i64) -> pb::RunRequest {
    pb::RunRequest {
        expr: expr.into(),
        at: Some(pb::run_request::At::Instant(pb::Instant { time_ms: t })),
        timeout_ms: 0,
        limit: 0,
    }
}

fn range(expr: &str, start: i64, end: i64, step: i64) -> pb::RunRequest {
    pb::RunRequest {
        expr: expr.into(),
        at: Some(pb::run_request::At::Range(pb::Range {
            start_ms: start,
            end_ms: end,
            step_ms: step,
        })),
        timeout_ms: 0,
        limit: 0,
    }
}

/// Series of the frames as `(labels "k=v,...", [(t, v)])`, in order.
fn series_of(frames: &[Frame]) -> Vec<(String, Vec<(i64, f64)>)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Series(b) => Some(b.series.iter()),
            _ => None,
        })
        .flatten()
        .map(|s| {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            let points = s
                .timestamps_ms
                .iter()
                .copied()
                .zip(s.values.iter().copied())
                .collect();
            (labels.join(","), points)
        })
        .collect()
}

/// The same result read over the Prometheus HTTP API, in the same shape.
fn http_series(result: &[serde_json::Value]) -> Vec<(String, Vec<(i64, f64)>)> {
    let mut out: Vec<(String, Vec<(i64, f64)>)> = result
        .iter()
        .map(|r| {
            let mut labels: Vec<String> = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            labels.sort();
            let point = |p: &serde_json::Value| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
            };
            let points = match r.get("values") {
                Some(vs) => vs.as_array().unwrap().iter().map(point).collect(),
                None => vec![point(&r["value"])],
            };
            (labels.join(","), points)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn run_streams_typed_results_equal_to_the_http_api() {
    let s = Server::start(&[]);
    // 3 × 700 series: a matrix over all of them needs three batch frames.
    load(&s, 700);
    let rt = rt();
    let mut c = rt.block_on(async { QueryClient::new(connect(&s).await) });
    // The blocking HTTP client must not run inside the async runtime.
    let mut call = |req| rt.block_on(run(&mut c, req)).unwrap();
    {
        let t = T0 + 60_000;

        let frames = call(instant("sum by (job) (reqs_total)", t));
        assert!(
            matches!(&frames[0], Frame::Header(h) if h.result_type == pb::ResultType::Vector as i32)
        );
        let mut got = series_of(&frames);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("job=a".to_string(), vec![(t, 3500.0)]),
                ("job=b".to_string(), vec![(t, 7000.0)]),
                ("job=c".to_string(), vec![(t, 10500.0)]),
            ]
        );
        let (_, http) = s.get_json(&format!(
            "/api/v1/query?query=sum+by+(job)+(reqs_total)&time={}",
            t as f64 / 1000.0
        ));
        assert_eq!(got, http_series(http["data"]["result"].as_array().unwrap()));
        let Some(Frame::Trailer(tr)) = frames.last() else {
            panic!("no trailer: {frames:?}")
        };
        assert_eq!((tr.series, tr.points), (3, 3));

        // A range query over all 2,100 series: header, 3 batches, trailer.
        let frames = call(range("reqs_total", T0, T0 + 60_000, 30_000));
        assert!(
            matches!(&frames[0], Frame::Header(h) if h.result_type == pb::ResultType::Matrix as i32)
        );
        let batches: Vec<usize> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Series(b) => Some(b.series.len()),
                _ => None,
            })
            .collect();
        assert_eq!(batches, [1000, 1000, 100]);
        let got = series_of(&frames);
        assert_eq!(got.len(), 2100);
        let (_, http) = s.get_json(&format!(
            "/api/v1/query_range?query=reqs_total&start={}&end={}&step=30",
            T0 / 1000,
            (T0 + 60_000) / 1000
        ));
        let mut sorted = got.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            sorted,
            http_series(http["data"]["result"].as_array().unwrap())
        );
        let (name, points) = &got[0];
        assert_eq!(name, "__name__=reqs_total,job=a,pod=pod-0000");
        assert_eq!(points, &[(T0, 1.0), (T0 + 30_000, 3.0), (T0 + 60_000, 5.0)]);
        let Some(Frame::Trailer(tr)) = frames.last() else {
            panic!("no trailer")
        };
        assert_eq!((tr.series, tr.points), (2100, 6300));

        // Scalars and strings: one frame each.
        let frames = call(instant("1 + 2", t));
        assert!(matches!(&frames[1], Frame::Scalar(sc) if sc.value == 3.0 && sc.timestamp_ms == t));
        let frames = call(instant("\"hello\"", t));
        assert!(matches!(&frames[1], Frame::String(st) if st.value == "hello"));
        // An empty result: header and trailer only.
        let frames = call(instant("nothing_here", t));
        assert_eq!(frames.len(), 2, "{frames:?}");
        // Annotations travel in the trailer.
        let frames = call(instant("quantile(2, reqs_total)", t));
        let Some(Frame::Trailer(tr)) = frames.last() else {
            panic!("no trailer")
        };
        assert_eq!(tr.warnings.len(), 1, "{tr:?}");
    }
}

#[test]
fn errors_carry_codes_and_say_what_to_change() {
    let s = Server::start(&["--query-max-samples", "100"]);
    load(&s, 50);
    rt().block_on(async {
        let mut c = QueryClient::new(connect(&s).await);
        let e = run(&mut c, instant("sum(reqs_total", T0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(
            e.message().contains("1:"),
            "position missing: {}",
            e.message()
        );
        let e = run(&mut c, range("reqs_total", T0, T0 + 60_000, 0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("step"), "{}", e.message());
        let e = run(&mut c, range("reqs_total", T0 + 1, T0, 1000))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        // 150 series × 5 samples is over the server's sample limit.
        let e = run(&mut c, range("reqs_total", T0, T0 + 60_000, 15_000))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("query-max-samples"), "{}", e.message());
        let e = c
            .trace(pb::TraceRequest {
                trace_id: vec![1, 2, 3],
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("16 bytes"), "{}", e.message());
        let e = c
            .trace(pb::TraceRequest {
                trace_id: vec![9; 16],
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = c.series(pb::LabelsRequest::default()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = c
            .series(pb::LabelsRequest {
                r#match: vec!["rate(reqs_total[5m])".into()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            e.message().contains("not a series selector"),
            "{}",
            e.message()
        );
        let e = c
            .label_values(pb::LabelValuesRequest {
                name: String::new(),
                filter: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(
            e.message().contains("label name is empty"),
            "{}",
            e.message()
        );
        let e = c
            .label_names(pb::LabelsRequest {
                start_ms: T0,
                end_ms: T0 - 1,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("before start_ms"), "{}", e.message());
    });
}

#[test]
fn metadata_and_traces() {
    let s = Server::start(&[]);
    load(&s, 2);
    load_trace(&s);
    rt().block_on(async {
        let mut c = QueryClient::new(connect(&s).await);
        let names = c
            .label_names(pb::LabelsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(names.values, ["__name__", "job", "pod"]);
        let values = c
            .label_values(pb::LabelValuesRequest {
                name: "job".into(),
                filter: Some(pb::LabelsRequest {
                    r#match: vec!["reqs_total{job!=\"b\"}".into()],
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(values.values, ["a", "c"]);
        assert!(!values.truncated);
        let limited = c
            .label_values(pb::LabelValuesRequest {
                name: "pod".into(),
                filter: Some(pb::LabelsRequest {
                    limit: 1,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (limited.values.as_slice(), limited.truncated),
            (&["pod-0000".to_string()][..], true)
        );
        let series = c
            .series(pb::LabelsRequest {
                r#match: vec!["reqs_total{job=\"c\"}".into()],
                start_ms: T0,
                end_ms: T0 + 60_000,
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let pods: Vec<&str> = series
            .series
            .iter()
            .map(|l| {
                l.labels
                    .iter()
                    .find(|l| l.name == "pod")
                    .unwrap()
                    .value
                    .as_str()
            })
            .collect();
        assert_eq!(pods, ["pod-0000", "pod-0001"]);

        let id: Vec<u8> = (1..=16).collect();
        let t = c
            .trace(pb::TraceRequest {
                trace_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = t.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["GET /cart", "cart.load", "db"]);
        let parents: Vec<Option<u32>> = t.spans.iter().map(|s| s.parent_index).collect();
        assert_eq!(parents, [None, Some(0), Some(1)]);
        let db = &t.spans[2];
        assert_eq!(db.trace_id, id);
        assert_eq!(db.span_id, vec![0x33; 8]);
        assert_eq!(db.parent_span_id, vec![0x22; 8]);
        assert_eq!(
            (db.kind.as_str(), db.status_code.as_str()),
            ("server", "error")
        );
        assert_eq!(db.service, "checkout");
        assert_eq!(db.start_time_unix_nano, ((T0 + 2) * 1_000_000) as u64);
        assert_eq!(db.end_time_unix_nano, ((T0 + 7) * 1_000_000) as u64);
        assert_eq!(db.attributes[0].key, "http.status_code");
        assert_eq!(
            db.attributes[0].value.as_ref().unwrap().value,
            Some(pb::any_value::Value::IntValue(500))
        );
        assert!(t.spans[0].parent_span_id.is_empty());
    });
}

#[test]
fn reflection_lists_the_query_service_and_describes_it() {
    let s = Server::start(&[]);
    rt().block_on(async {
        let mut c = ServerReflectionClient::new(connect(&s).await);
        let ask = |m: MessageRequest| {
            tokio_stream::iter([ServerReflectionRequest {
                host: String::new(),
                message_request: Some(m),
            }])
        };
        let mut reply = c
            .server_reflection_info(ask(MessageRequest::ListServices(String::new())))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            reply.message().await.unwrap().unwrap().message_response
        else {
            panic!("not a service list")
        };
        let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "sextant.v1.Query"
            ]
        );

        // The older v1alpha protocol (grpcio-reflection, older grpcurl)
        // answers too (issue 19: it got UNIMPLEMENTED).
        use tonic_reflection::pb::v1alpha as alpha;
        let mut old = alpha::server_reflection_client::ServerReflectionClient::new(
            connect(&s).await,
        );
        let mut reply = old
            .server_reflection_info(tokio_stream::iter([alpha::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(
                    alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
                ),
            }]))
            .await
            .unwrap()
            .into_inner();
        let got = reply.message().await.unwrap().unwrap().message_response;
        assert!(
            matches!(
                got,
                Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(ref l))
                    if l.service.iter().any(|s| s.name == "sextant.v1.Query")
            ),
            "{got:?}"
        );

        // Health answers for the server and for each service by name.
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
        let mut health = tonic_health::pb::health_client::HealthClient::new(connect(&s).await);
        for service in [
            "",
            "sextant.v1.Query",
            "opentelemetry.proto.collector.trace.v1.TraceService",
            "opentelemetry.proto.collector.metrics.v1.MetricsService",
            "opentelemetry.proto.collector.logs.v1.LogsService",
        ] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap_or_else(|e| panic!("{service:?}: {e}"));
            assert_eq!(r.into_inner().status(), ServingStatus::Serving, "{service:?}");
        }

        let mut reply = c
            .server_reflection_info(ask(MessageRequest::FileContainingSymbol(
                "sextant.v1.Query".into(),
            )))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::FileDescriptorResponse(files)) =
            reply.message().await.unwrap().unwrap().message_response
        else {
            panic!("no descriptor")
        };
        let file = <prost_types::FileDescriptorProto as prost::Message>::decode(
            files.file_descriptor_proto[0].as_slice(),
        )
        .unwrap();
        assert_eq!(file.name(), "sextant/v1/query.proto");
        let methods: Vec<&str> = file.service[0].method.iter().map(|m| m.name()).collect();
        assert_eq!(
            methods,
            ["Run", "LabelNames", "LabelValues", "Series", "Trace", "Diagnose"]
        );
    });
}

#[test]
fn the_bearer_token_guards_query_and_reflection() {
    let s = Server::start(&["--auth-token", "s3cret"]);
    rt().block_on(async {
        let mut c = QueryClient::new(connect(&s).await);
        let e = run(&mut c, instant("reqs_total", T0)).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        let e = run(&mut c, with_token(instant("reqs_total", T0), "wrong"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        let mut r = ServerReflectionClient::new(connect(&s).await);
        let list = r
            .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            }]))
            .await;
        let e = match list {
            Err(e) => e,
            Ok(stream) => stream.into_inner().message().await.unwrap_err(),
        };
        assert_eq!(e.code(), Code::Unauthenticated);
        let req = with_token(instant("vector(7)", T0), "s3cret");
        let frames = run(&mut c, req).await.unwrap();
        assert_eq!(series_of(&frames), [(String::new(), vec![(T0, 7.0)])]);
    });
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

#[test]
fn times_that_would_overflow_are_refused_and_the_server_keeps_serving() {
    let s = Server::start(&[]);
    load(&s, 1);
    rt().block_on(async {
        let mut c = QueryClient::new(connect(&s).await);
        for req in [
            range("reqs_total", i64::MIN, i64::MAX, 1_000_000_000_000_000_000),
            range("reqs_total", i64::MAX - 10, i64::MAX, 1),
            instant("reqs_total", i64::MIN),
            instant("reqs_total", i64::MAX),
            instant("rate(reqs_total[5m] offset 1y)", i64::MIN + 1),
            instant("rate(reqs_total[5m] offset 290000000y)", T0),
            instant(
                "max_over_time((max_over_time(reqs_total[200000000y:1y]))[200000000y:1y])",
                T0,
            ),
        ] {
            let expr = req.expr.clone();
            let e = run(&mut c, req).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{expr}: {e:?}");
            assert!(e.message().contains("supported"), "{expr}: {}", e.message());
        }
        // The largest `@` the parser accepts evaluates (to nothing).
        let frames = run(&mut c, instant("reqs_total @ 9000000000000", T0))
            .await
            .unwrap();
        assert_eq!(frames.len(), 2, "{frames:?}");
        // Still serving, with the data intact.
        let frames = run(&mut c, instant("count(reqs_total)", T0 + 60_000))
            .await
            .unwrap();
        assert_eq!(
            series_of(&frames),
            [(String::new(), vec![(T0 + 60_000, 3.0)])]
        );
    });
}

#[test]
fn run_streams_records_of_the_query_language() {
    let s = Server::start(&[]);
    load_trace(&s);
    rt().block_on(async {
        let mut c = QueryClient::new(connect(&s).await);
        let over = |expr: &str, limit: u64| pb::RunRequest {
            expr: expr.into(),
            at: Some(pb::run_request::At::Range(pb::Range {
                start_ms: T0 - 1,
                end_ms: T0 + 60_000,
                step_ms: 0,
            })),
            timeout_ms: 0,
            limit,
        };
        let header = |f: &Frame| match f {
            Frame::Header(h) => h.result_type,
            other => panic!("not a header: {other:?}"),
        };
        // Spans, newest first, with a trailer counting them.
        let frames = run(&mut c, over(r#"spans({service="checkout"})"#, 0))
            .await
            .unwrap();
        assert_eq!(header(&frames[0]), pb::ResultType::Spans as i32);
        let Frame::Spans(b) = &frames[1] else {
            panic!("{:?}", frames[1])
        };
        let names: Vec<&str> = b.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "cart.load", "GET /cart"]);
        let Some(Frame::Trailer(t)) = frames.last() else {
            panic!("no trailer")
        };
        assert_eq!(t.records, 3);
        // The limit caps what is sent and says so.
        let frames = run(&mut c, over(r#"spans({})"#, 2)).await.unwrap();
        let Frame::Spans(b) = &frames[1] else {
            panic!()
        };
        assert_eq!(b.spans.len(), 2);
        let Some(Frame::Trailer(t)) = frames.last() else {
            panic!()
        };
        assert!(
            t.warnings[0].contains("3 records matched"),
            "{:?}",
            t.warnings
        );
        // Structure, then whole traces with parent indexes.
        let frames = run(
            &mut c,
            over(r#"traces(spans({name="cart.load"} > {status="error"}))"#, 0),
        )
        .await
        .unwrap();
        assert_eq!(header(&frames[0]), pb::ResultType::Traces as i32);
        let Frame::Traces(b) = &frames[1] else {
            panic!()
        };
        assert_eq!(b.traces.len(), 1);
        let parents: Vec<Option<u32>> = b.traces[0].spans.iter().map(|s| s.parent_index).collect();
        assert_eq!(parents, [None, Some(0), Some(1)]);
        // Records → series come as ordinary series frames.
        let frames = run(
            &mut c,
            pb::RunRequest {
                expr: r#"sum by (service) (count_over_time(spans({})[1m]))"#.into(),
                at: Some(pb::run_request::At::Instant(pb::Instant {
                    time_ms: T0 + 30_000,
                })),
                timeout_ms: 0,
                limit: 0,
            },
        )
        .await
        .unwrap();
        assert_eq!(header(&frames[0]), pb::ResultType::Vector as i32);
        assert_eq!(
            series_of(&frames),
            vec![("service=checkout".to_string(), vec![(T0 + 30_000, 3.0)])]
        );
        // Malformed: INVALID_ARGUMENT with position and hint.
        let e = run(&mut c, over(r#"spans({duration = 5})"#, 0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(
            e.message().contains("expected a quoted string"),
            "{}",
            e.message()
        );
    });
}

/// A client that keeps an idle gRPC connection open (its runtime no longer
/// polled) does not hold the server's shutdown: SIGTERM still ends it, with
/// the WAL closed, once the grace period is over.
#[test]
fn an_idle_open_connection_does_not_hold_the_shutdown() {
    let s = Server::start(&["--diagnose-every", "off"]);
    let rt = rt();
    rt.block_on(async {
        let mut c = QueryClient::new(connect(&s).await);
        c.label_names(pb::LabelsRequest::default()).await.unwrap();
        // The channel stays open in `rt`, which nobody drives any more.
        std::mem::forget(c);
    });
    // `stop` asserts a clean exit; before the grace period it waited forever.
    s.stop();
    drop(rt);
}

/// Native histograms written with remote_write 2.0 come back from Run as
/// typed histogram points (instant and range), with what the HTTP API
/// says; the 2.0 response tells how much was written.
#[test]
fn histograms_travel_as_typed_points() {
    let s = Server::start(&[]);
    let t0 = 1_700_000_000_000i64;
    let (status, written) = write_histograms(&s, "lat_seconds", &[t0, t0 + 15_000, t0 + 30_000]);
    assert_eq!((status, written.as_str()), (204, "3"));
    rt().block_on(async {
        let mut c = QueryClient::new(connect(&s).await);
        let frames = run(&mut c, instant("lat_seconds", t0 + 30_000))
            .await
            .unwrap();
        let series: Vec<&pb::Series> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Series(b) => Some(&b.series),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(series.len(), 1);
        let h = &series[0].histograms[0];
        assert_eq!(
            (h.timestamp_ms, h.count, h.sum, h.schema),
            (t0 + 30_000, 9.0, 13.5, 1)
        );
        assert_eq!(
            h.positive
                .iter()
                .map(|b| (b.index, b.count))
                .collect::<Vec<_>>(),
            vec![(0, 3.0), (1, 6.0)]
        );
        assert!(series[0].values.is_empty());
        let frames = run(&mut c, range("lat_seconds", t0, t0 + 30_000, 15_000))
            .await
            .unwrap();
        let points: usize = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Series(b) => {
                    Some(b.series.iter().map(|s| s.histograms.len()).sum::<usize>())
                }
                _ => None,
            })
            .sum();
        assert_eq!(points, 3);
    });
    let http = s.query(
        "histogram_count(lat_seconds)",
        (t0 + 30_000) as f64 / 1000.0,
    );
    assert_eq!(http[0]["value"][1], "9");
}
