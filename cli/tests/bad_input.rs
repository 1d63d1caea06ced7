//! Bad input over every ingest path gets a 4xx (or INVALID_ARGUMENT /
//! UNAUTHENTICATED) with a message saying what is wrong, the server keeps
//! serving, and data stored before is intact.

mod common;

use common::{Server, client, pb, remote_write};
use std::io::Write;

const T0: i64 = 1_700_000_000_000;

fn good_write(s: &Server) {
    let series = pb::series(
        &[(b"__name__", b"kept"), (b"job", b"a")],
        &[(T0, 1.0), (T0 + 15_000, 2.0)],
    );
    assert_eq!(remote_write(s, pb::write_request(&[series])).0, 204);
}

fn assert_intact(s: &Server) {
    let r = s.query("kept", (T0 + 15_000) as f64 / 1000.0);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["value"][1], "2");
    let (status, _) = s.get_json("/api/v1/labels");
    assert_eq!(status, 200);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn remote_write_refuses_bad_bodies_and_keeps_serving() {
    let s = Server::start(&[
        "--max-body-bytes",
        "100000",
        "--max-decompressed-bytes",
        "1000000",
    ]);
    good_write(&s);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("garbage", b"definitely not snappy".to_vec(), 400, "snappy"),
        (
            "truncated snappy",
            {
                let mut b = pb::write_request(&[pb::series(&[(b"__name__", b"x")], &[(T0, 1.0)])]);
                b.truncate(b.len() - 3);
                b
            },
            400,
            "snappy",
        ),
        (
            "malformed protobuf",
            snap::raw::Encoder::new()
                .compress_vec(&[0x0a, 0xff, 0xff, 0x01])
                .unwrap(),
            400,
            "protobuf",
        ),
        (
            "invalid UTF-8 label value",
            pb::write_request(&[pb::series(
                &[(b"__name__", b"x"), (b"job", b"\xff\xfe")],
                &[(T0, 1.0)],
            )]),
            400,
            "UTF-8",
        ),
        (
            "empty metric name",
            pb::write_request(&[pb::series(
                &[(b"__name__", b""), (b"job", b"a")],
                &[(T0, 1.0)],
            )]),
            400,
            "no metric name",
        ),
        (
            "empty label name",
            pb::write_request(&[pb::series(
                &[(b"__name__", b"x"), (b"", b"a")],
                &[(T0, 1.0)],
            )]),
            400,
            "empty label name",
        ),
        (
            "negative timestamp",
            pb::write_request(&[pb::series(&[(b"__name__", b"x")], &[(-5, 1.0)])]),
            400,
            "negative timestamp",
        ),
        (
            "oversized body",
            vec![0u8; 200_000],
            413,
            "--max-body-bytes",
        ),
        (
            "snappy bomb",
            // Announces 4 GiB of output in six bytes.
            vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x00],
            413,
            "--max-decompressed-bytes",
        ),
        (
            "real snappy of 2 MB zeros",
            snap::raw::Encoder::new()
                .compress_vec(&vec![0u8; 2_000_000])
                .unwrap(),
            413,
            "--max-decompressed-bytes",
        ),
    ];
    for (what, body, want, needle) in cases {
        let (status, text) = remote_write(&s, body);
        assert_eq!(status, want, "{what}: {text}");
        assert!(text.contains(needle), "{what}: {text:?} lacks {needle:?}");
    }
    // Wrong content type.
    let r = client()
        .post(s.url("/api/v1/write"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // None of the refused series exists.
    let (_, v) = s.get_json("/api/v1/label/__name__/values");
    assert_eq!(v["data"], serde_json::json!(["kept"]));
    assert_intact(&s);
}

#[test]
fn otlp_http_refuses_bad_bodies_and_keeps_serving() {
    let s = Server::start(&["--max-decompressed-bytes", "1000000"]);
    good_write(&s);
    let post = |path: &str, ctype: &str, gz: bool, body: Vec<u8>| {
        let mut r = client()
            .post(format!("http://{}{path}", s.otlp_http))
            .header("Content-Type", ctype);
        if gz {
            r = r.header("Content-Encoding", "gzip");
        }
        let r = r.body(body).send().unwrap();
        (r.status().as_u16(), r.bytes().unwrap().to_vec())
    };
    let pbuf = "application/x-protobuf";
    type Case<'a> = (&'a str, &'a str, bool, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("malformed protobuf", pbuf, false, vec![0x0a, 0xff, 0xff, 0x01], 400, "protobuf"),
        ("malformed JSON", "application/json", false, b"{\"resourceSpans\":[".to_vec(), 400, "JSON"),
        ("wrong content type", "text/plain", false, b"hello".to_vec(), 415, "Content-Type"),
        ("gzip bomb", pbuf, true, gzip(&vec![0u8; 5_000_000]), 413, "--max-decompressed-bytes"),
        ("not gzip", pbuf, true, b"plain".to_vec(), 400, "gzip"),
        (
            "all-zero trace id",
            "application/json",
            false,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000000","spanId":"0102030405060708","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#.to_vec(),
            400,
            "trace id",
        ),
        (
            "short span id",
            "application/json",
            false,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#.to_vec(),
            400,
            "span_id has 2 bytes",
        ),
    ];
    for (what, ctype, gz, body, want, needle) in cases {
        let (status, body) = post("/v1/traces", ctype, gz, body);
        assert_eq!(status, want, "{what}: {}", String::from_utf8_lossy(&body));
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(needle), "{what}: {text:?} lacks {needle:?}");
    }
    let (status, _) = s.get_json("/api/v1/sextant/logs");
    assert_eq!(status, 200);
    assert_intact(&s);
}

#[test]
fn query_api_errors_have_prometheus_shapes() {
    let s = Server::start(&[]);
    good_write(&s);
    let cases = [
        ("/api/v1/query?query=sum(", 400, "bad_data", "parse error"),
        (
            "/api/v1/query?query=up&time=NaN",
            400,
            "bad_data",
            "invalid parameter \"time\"",
        ),
        (
            "/api/v1/query?query=up&time=tomorrow",
            400,
            "bad_data",
            "cannot parse \"tomorrow\"",
        ),
        // The UI's band endpoint: the same checks, and records refused.
        (
            "/api/v1/sextant/query_band?query=up&start=10",
            400,
            "bad_data",
            "invalid parameter \"end\": missing",
        ),
        (
            "/api/v1/sextant/query_band?query=up&start=10&end=5",
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/sextant/query_band?query=sum(&start=0&end=60",
            400,
            "bad_data",
            "parse error",
        ),
        (
            "/api/v1/sextant/query_band?query=logs(%7Blevel%3D%22error%22%7D)&start=0&end=600",
            400,
            "bad_data",
            "a band needs a query giving series",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=5&step=1",
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100&step=0",
            400,
            "bad_data",
            "zero or negative query resolution step",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1",
            400,
            "bad_data",
            "11,000 points",
        ),
        (
            // end - start does not fit in an i64.
            "/api/v1/query_range?query=up&start=-9000000000000000&end=9000000000000000&step=1000000000000",
            400,
            "bad_data",
            "11,000 points",
        ),
        (
            "/api/v1/query?query=up&time=9000000000000000",
            400,
            "bad_data",
            "supported range",
        ),
        (
            "/api/v1/query?query=up%20offset%20290000000y&time=1700000000",
            400,
            "bad_data",
            "offsets and ranges",
        ),
        (
            "/api/v1/query_range?query=up&end=100&step=1",
            400,
            "bad_data",
            "invalid parameter \"start\"",
        ),
        (
            "/api/v1/series",
            400,
            "bad_data",
            "no match[] parameter provided",
        ),
        (
            "/api/v1/series?match[]=rate(x[5m])",
            400,
            "bad_data",
            "not a series selector",
        ),
        (
            "/api/v1/query?query=label_replace(kept,\"a\",\"$1\",\"job\",\"(\")",
            422,
            "execution",
            "regex",
        ),
        // The Logs page's volume: a range and a step it can count in.
        (
            "/api/v1/sextant/logs/volume?start=0&end=60",
            400,
            "bad_data",
            "invalid parameter \"step\": missing",
        ),
        (
            "/api/v1/sextant/logs/volume?start=0&end=100000&step=1",
            400,
            "bad_data",
            "11,000 points",
        ),
        (
            "/api/v1/sextant/logs/volume?start=-9000000000000000&end=9000000000000000&step=1000000000000",
            400,
            "bad_data",
            "11,000 points",
        ),
        (
            "/api/v1/sextant/logs/volume?start=60&end=0&step=1",
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        ("/api/v1/nope", 404, "not_found", "no such endpoint"),
    ];
    for (path, status, etype, needle) in cases {
        let (got, v) = s.get_json(path);
        assert_eq!(got, status, "{path}: {v}");
        assert_eq!(v["status"], "error", "{path}");
        assert_eq!(v["errorType"], etype, "{path}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{path}: {msg:?} lacks {needle:?}");
    }
    assert_intact(&s);
}

#[test]
fn query_limits_answer_with_what_to_change() {
    let s = Server::start(&["--query-max-series", "1"]);
    good_write(&s);
    let series = pb::series(&[(b"__name__", b"kept"), (b"job", b"b")], &[(T0, 1.0)]);
    assert_eq!(remote_write(&s, pb::write_request(&[series])).0, 204);
    let (status, v) = s.get_json(&format!("/api/v1/query?query=kept&time={}", T0 / 1000));
    // Prometheus answers limits with 422 `execution`: a 503 would be
    // retried by clients although the same query can never pass.
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errorType"], "execution");
    assert!(v["error"].as_str().unwrap().contains("series"), "{v}");
    // A subquery of billions of steps is refused at once, not after the
    // query timeout with a slot held (issue 19, finding 8).
    let (status, v) = s.get_json(&format!(
        "/api/v1/query?query={}&time={}",
        common::enc(r#"count_over_time(kept{job="a"}[10y:1ms])"#),
        T0 / 1000
    ));
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("subquery"), "{v}");
}

#[test]
fn series_creation_limit_per_write() {
    let s = Server::start(&["--max-series-per-write", "2"]);
    let many: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let v = format!("{i}");
            pb::series(&[(b"__name__", b"x"), (b"i", v.as_bytes())], &[(T0, 1.0)])
        })
        .collect();
    let (status, text) = remote_write(&s, pb::write_request(&many));
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("max_series_per_write") || text.contains("max-series-per-write"),
        "{text}"
    );
    let (_, v) = s.get_json("/api/v1/series?match[]=x");
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
    assert_eq!(remote_write(&s, pb::write_request(&many[..2])).0, 204);
}

#[test]
fn bearer_token_is_required_on_every_listener() {
    let s = Server::start(&["--auth-token", "s3cret"]);
    let r = client().get(s.url("/api/v1/labels")).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: serde_json::Value = serde_json::from_str(&r.text().unwrap()).unwrap();
    assert_eq!(v["errorType"], "unauthorized");
    let r = client()
        .get(s.url("/api/v1/labels"))
        .header("Authorization", "Bearer wrong")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The scheme is case-insensitive (RFC 7235); the token is not.
    for (value, want) in [
        ("Bearer s3cret", 200),
        ("bearer s3cret", 200),
        ("BEARER s3cret", 200),
        ("Bearer S3CRET", 401),
        ("Basic s3cret", 401),
        ("Bearers3cret", 401),
    ] {
        let r = client()
            .get(s.url("/api/v1/labels"))
            .header("Authorization", value)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{value}");
    }
    let r = client()
        .post(format!("http://{}/v1/logs", s.otlp_http))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Health stays open for probes.
    assert_eq!(
        client()
            .get(s.url("/healthz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // gRPC: UNAUTHENTICATED without the token, OK with it.
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = LogsServiceClient::connect(format!("http://{}", s.grpc))
            .await
            .unwrap();
        let e = c
            .export(ExportLogsServiceRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e}");
        let mut req = tonic::Request::new(ExportLogsServiceRequest::default());
        req.metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        c.export(req).await.unwrap();
    });
}

#[test]
fn grpc_refuses_invalid_records_with_invalid_argument() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let s = Server::start(&[]);
    good_write(&s);
    let span = |trace: Vec<u8>, start: u64, end: u64| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: trace,
                    span_id: vec![1; 8],
                    name: "op".into(),
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = TraceServiceClient::connect(format!("http://{}", s.grpc))
            .await
            .unwrap();
        for (what, req) in [
            ("zero trace id", span(vec![0; 16], 1, 2)),
            ("short trace id", span(vec![1; 3], 1, 2)),
            ("end before start", span(vec![1; 16], 5, 2)),
        ] {
            let e = c.export(req).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{what}: {e}");
            assert!(!e.message().is_empty());
        }
        c.export(span(
            vec![2; 16],
            1_700_000_000_000_000_000,
            1_700_000_000_100_000_000,
        ))
        .await
        .unwrap();
    });
    let (status, v) = s.get_json("/api/v1/sextant/traces/02020202020202020202020202020202");
    assert_eq!(status, 200, "{v}");
    assert_intact(&s);
}

/// Reads one `name value` line of `/metrics`.
fn self_metric(s: &Server, name: &str) -> f64 {
    let text = client()
        .get(s.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[test]
fn writes_beyond_the_slots_wait_then_get_a_retryable_503() {
    use std::io::Read;
    let s = Server::start(&["--max-concurrent-writes", "1", "--max-write-wait", "300ms"]);
    // A sender that stalls halfway through its body holds the only slot.
    let body = pb::write_request(&[pb::series(&[(b"__name__", b"slow")], &[(T0, 1.0)])]);
    let mut slow = std::net::TcpStream::connect(s.http).unwrap();
    write!(
        slow,
        "POST /api/v1/write HTTP/1.1\r\nHost: sextant\r\nContent-Type: application/x-protobuf\r\n\
         Content-Encoding: snappy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let half = body.len() / 2;
    slow.write_all(&body[..half]).unwrap();
    common::eventually("the slow write to take the slot", || {
        (self_metric(&s, "sextant_writes_in_progress") == 1.0).then_some(())
    });
    // The next write waits --max-write-wait, then is told to retry.
    let (status, text) = remote_write(
        &s,
        pb::write_request(&[pb::series(&[(b"__name__", b"fast")], &[(T0, 1.0)])]),
    );
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("--max-concurrent-writes"), "{text}");
    assert_eq!(self_metric(&s, "sextant_writes_refused_total"), 1.0);
    // The stalled body completes: it is stored, and the slot frees up.
    slow.write_all(&body[half..]).unwrap();
    let mut reply = String::new();
    slow.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 204"), "{reply}");
    good_write(&s);
    assert_intact(&s);
    assert_eq!(s.query("slow", (T0 / 1000) as f64).len(), 1);
    assert_eq!(self_metric(&s, "sextant_writes_in_progress"), 0.0);
}

/// Issue 19: one short query aborted the whole process (a stack overflow
/// on a server thread). Every query path answers too-deep input with a
/// 400 naming the limit, and the deepest accepted query is answered.
#[test]
fn deep_queries_get_a_clear_400_and_the_server_keeps_serving() {
    let s = Server::start(&[]);
    good_write(&s);
    let post = |path: &str, form: &[(&str, &str)]| {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = client()
            .post(s.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let t = ((T0 + 15_000) / 1000).to_string();
    let plus = vec!["1"; 3000].join("+");
    let or = vec!["kept"; 50_000].join(" or ");
    let parens = format!("{}timeout{}", "(".repeat(5000), ")".repeat(5000));
    for (path, form) in [
        (
            "/api/v1/query",
            vec![("query", plus.as_str()), ("time", &t)],
        ),
        (
            "/api/v1/query_range",
            vec![("query", &plus), ("start", &t), ("end", &t), ("step", "15")],
        ),
        ("/api/v1/sextant/query", vec![("query", &or), ("time", &t)]),
        ("/api/v1/sextant/logs", vec![("q", &parens)]),
    ] {
        let (status, body) = post(path, &form);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("nested too deeply"), "{path}: {body}");
    }
    let deepest = vec!["kept"; 256].join(" or ");
    let (status, body) = post("/api/v1/query", &[("query", &deepest), ("time", &t)]);
    assert_eq!(status, 200, "{body}");
    assert_intact(&s);
}
