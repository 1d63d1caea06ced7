//! Query input through the real HTTP handlers (the Prometheus API and
//! Sextant's unified-language and log-search endpoints) against a small
//! database holding metrics, logs and spans: no input may panic, abort or
//! exhaust a stack, and every answer is a well-formed JSON document with
//! a 2xx, 4xx or 503 status.
//!
//! The first byte picks the endpoint, the rest is the query text.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use sextant_server::ServeArgs;
use sextant_server::http::prometheus;
use sextant_server::state::State;
use sextant_storage::{
    Db, Labels, LogRecord, Sample, Span, WriteBatch,
};
use tower::ServiceExt;

const T0: i64 = 1_700_000_000_000;

struct Fixture {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServeArgs::default().resolve(dir.path()).unwrap();
        cfg.query.timeout = Some(std::time::Duration::from_secs(2));
        cfg.query.max_samples = 1_000_000;
        let db = Arc::new(Db::open(dir.path(), cfg.db.clone()).unwrap());
        let mut b = WriteBatch::default();
        for (job, f) in [("api", 1.0), ("db", 2.0)] {
            let l = Labels::new([("__name__", "req_total"), ("job", job), ("service", job)]).unwrap();
            b.add(l, (0..60).map(|i| Sample::new(T0 + i * 15_000, i as f64 * f)).collect());
        }
        db.write(&b).unwrap();
        let trace = [7u8; 16];
        db.write_logs(
            (0..20)
                .map(|i| {
                    let mut r = LogRecord::default();
                    r.time_ns = (T0 + i * 30_000) * 1_000_000;
                    r.severity = if i % 3 == 0 { 17 } else { 9 };
                    r.body = sextant_storage::AnyValue::Str(format!("request {i} timeout user-{i}"));
                    r.resource = vec![("service.name".into(), sextant_storage::AnyValue::Str("api".into()))].into();
                    r.trace_id = trace;
                    r
                })
                .collect(),
        )
        .unwrap();
        db.write_spans(
            (0..10)
                .map(|i| {
                    let mut s = Span::default();
                    s.trace_id = trace;
                    s.span_id = [i as u8 + 1; 8];
                    s.name = "GET /x".into();
                    s.start_ns = (T0 + i * 60_000) * 1_000_000;
                    s.end_ns = s.start_ns + 5_000_000;
                    s.resource = vec![("service.name".into(), sextant_storage::AnyValue::Str("api".into()))].into();
                    s
                })
                .collect(),
        )
        .unwrap();
        let st = State::new(db, cfg).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_stack_size(sextant_query::STACK_BYTES)
            .enable_all()
            .build()
            .unwrap();
        Fixture { rt, router: prometheus(st), _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let (path, key) = match pick % 5 {
        0 => ("/api/v1/query", "query"),
        1 => ("/api/v1/query_range", "query"),
        2 => ("/api/v1/sextant/query", "query"),
        3 => ("/api/v1/sextant/query", "query"),
        _ => ("/api/v1/sextant/logs", "q"),
    };
    let t = (T0 / 1000 + 900).to_string();
    let start = (T0 / 1000).to_string();
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair(key, &text);
    match pick % 5 {
        1 | 3 => {
            form.append_pair("start", &start).append_pair("end", &t).append_pair("step", "60");
        }
        4 => {}
        _ => {
            form.append_pair("time", &t);
        }
    }
    let req = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.finish()))
        .unwrap();
    let f = fixture();
    let resp = f.rt.block_on(f.router.clone().oneshot(req)).unwrap();
    let status = resp.status().as_u16();
    assert!(
        (200..300).contains(&status) || (400..500).contains(&status) || status == 503,
        "{path} {text:?}: status {status}"
    );
    let body = f
        .rt
        .block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&body)
        .unwrap_or_else(|e| panic!("{path} {text:?}: not JSON ({e})"));
});
