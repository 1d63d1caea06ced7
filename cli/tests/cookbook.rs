//! Every query of the incident cookbook in docs/query-language.md, run
//! through the real `sextant serve` against demo data with two known
//! faults (a slow ledger database and a failing compliance service) that
//! `sextant demo`'s feeder sent over OTLP/gRPC. Each answer is recomputed
//! from the simulator's own records (same seed, same times) and compared
//! exactly: the expected rows, not "something came back".

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::{Server, enc};
use serde_json::Value as Json;
use sextant_demo::cookbook::{DOC, entries, incident};
use sextant_demo::season::days_from_civil;
use sextant_demo::sim::{Batch, Fault, Sim};
use sextant_demo::{Plan, feed};
use sextant_storage::{LogRecord, Span, StatusCode, hex};

const SEED: u64 = 7;
const RATE: f64 = 3.0;
/// Tuesday 1 December 2026, 15:10 UTC: 10:10 in New York, market hours.
fn now_ms() -> i64 {
    days_from_civil(2026, 12, 1) * 86_400_000 + (15 * 60 + 10) * 60_000
}
const MIN: i64 = 60_000;

fn faults() -> Vec<Fault> {
    incident(now_ms())
}

fn plan() -> Plan {
    Plan {
        seed: SEED,
        rate: RATE,
        faults: faults(),
        from_ms: now_ms() - 40 * MIN,
        now_ms: now_ms(),
        live: false,
    }
}

struct Fixture {
    server: Server,
    data: Batch,
    now: i64,
}

impl Fixture {
    fn start() -> Fixture {
        let server = Server::start(&[]);
        let addr = format!("http://{}", server.grpc);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(feed(&addr, plan(), None))
            .unwrap();
        let data = Sim::new(SEED, RATE, faults()).run(plan().from_ms, now_ms());
        Fixture {
            server,
            data,
            now: now_ms(),
        }
    }

    fn query(&self, endpoint: &str, q: &str) -> Json {
        let t = self.now as f64 / 1000.0;
        let (status, v) = self
            .server
            .get_json(&format!("{endpoint}?query={}&time={t}&limit=10000", enc(q)));
        assert_eq!(status, 200, "{q}: {v}");
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"].clone()
    }

    fn unified(&self, q: &str) -> Json {
        self.query("/api/v1/sextant/query", q)
    }

    /// (now - range, now], as span starts and log times in ms.
    fn within(&self, t_ms: i64, range_min: i64) -> bool {
        t_ms > self.now - range_min * MIN && t_ms <= self.now
    }

    fn spans_in(&self, range_min: i64) -> impl Iterator<Item = &Span> {
        self.data
            .spans
            .iter()
            .filter(move |s| self.within(s.start_ms(), range_min))
    }

    fn logs_in(&self, range_min: i64) -> impl Iterator<Item = &LogRecord> {
        self.data
            .logs
            .iter()
            .filter(move |r| self.within(r.time_ms(), range_min))
    }

    fn trace_spans(&self) -> HashMap<[u8; 16], Vec<&Span>> {
        let mut m: HashMap<[u8; 16], Vec<&Span>> = HashMap::new();
        for s in &self.data.spans {
            m.entry(s.trace_id).or_default().push(s);
        }
        m
    }
}

/// A vector result as label set (`k=v,...`) → value.
fn vector(data: &Json) -> BTreeMap<String, f64> {
    assert_eq!(data["resultType"], "vector", "{data}");
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let labels: Vec<String> = e["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            let v: f64 = e["value"][1].as_str().unwrap().parse().unwrap();
            (labels.join(","), v)
        })
        .collect()
}

fn counts(keys: impl Iterator<Item = String>) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0.0) += 1.0;
    }
    m
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_vectors_close(got: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: series differ"
    );
    for (k, v) in want {
        assert!(close(got[k], *v), "{what}: {k}: got {}, want {v}", got[k]);
    }
}

fn err(s: &Span) -> bool {
    s.status == StatusCode::Error
}

fn svc(s: &Span) -> String {
    format!("service={}", s.service())
}

/// TraceQL's structural operators, recomputed: traces holding a span that
/// meets `a` in the window; in them, spans meeting `b` in the window that
/// stand in `rel` to some span meeting `a` (anywhere in the trace).
fn structural<'a>(
    f: &'a Fixture,
    range_min: i64,
    a: impl Fn(&Span) -> bool,
    rel: &str,
    b: impl Fn(&Span) -> bool,
) -> Vec<&'a Span> {
    let traces = f.trace_spans();
    let mut out = Vec::new();
    for spans in traces.values() {
        if !spans
            .iter()
            .any(|s| a(s) && f.within(s.start_ms(), range_min))
        {
            continue;
        }
        let by_id: HashMap<[u8; 8], &Span> = spans.iter().map(|s| (s.span_id, *s)).collect();
        let ancestors = |s: &Span| {
            let mut out = Vec::new();
            let mut p = by_id.get(&s.parent_span_id);
            while let Some(x) = p {
                out.push(*x);
                p = by_id.get(&x.parent_span_id);
            }
            out
        };
        for s in spans {
            if !b(s) || !f.within(s.start_ms(), range_min) {
                continue;
            }
            let keep = match rel {
                ">" => by_id.get(&s.parent_span_id).is_some_and(|p| a(p)),
                ">>" => ancestors(s).iter().any(|p| a(p)),
                "<" => spans.iter().any(|c| a(c) && c.parent_span_id == s.span_id),
                "<<" => spans
                    .iter()
                    .any(|c| a(c) && ancestors(c).iter().any(|p| p.span_id == s.span_id)),
                _ => unreachable!(),
            };
            if keep {
                out.push(*s);
            }
        }
    }
    out
}

/// The `n` longest spans meeting `pick` in the window, longest first.
fn slowest(f: &Fixture, range_min: i64, n: usize, pick: impl Fn(&Span) -> bool) -> Vec<&Span> {
    let mut v: Vec<&Span> = f.spans_in(range_min).filter(|s| pick(s)).collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.duration_ns()));
    v.truncate(n);
    v
}

/// PromQL's quantile: linear interpolation between order statistics.
fn quantile(q: f64, v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = q * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
}

fn check(f: &Fixture, n: usize, q: &str) {
    let is_portfolio = |s: &Span| s.service() == "web-gateway" && s.name == "GET /portfolio";
    match n {
        1 => {
            let got = f.unified(q);
            let want = counts(f.spans_in(15).filter(|s| err(s)).map(svc));
            assert_vectors_close(&vector(&got), &want, q);
            let order: Vec<f64> = got["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["value"][1].as_str().unwrap().parse().unwrap())
                .collect();
            assert!(order.windows(2).all(|w| w[0] >= w[1]), "sorted: {order:?}");
        }
        2 => {
            let failing_parents: BTreeSet<[u8; 8]> = structural(f, 15, err, "<", err)
                .into_iter()
                .map(|s| s.span_id)
                .collect();
            let want = counts(
                f.spans_in(15)
                    .filter(|s| err(s) && !failing_parents.contains(&s.span_id))
                    .map(svc),
            );
            let got = vector(&f.unified(q));
            assert_vectors_close(&got, &want, q);
            let top = got.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
            assert_eq!(top.0, "service=compliance", "the root cause leads");
        }
        3 => {
            let payments_err = |s: &Span| s.service() == "payments" && err(s);
            let want = counts(
                structural(f, 15, payments_err, ">", err)
                    .into_iter()
                    .map(svc),
            );
            assert_vectors_close(&vector(&f.unified(q)), &want, q);
            assert!(want.contains_key("service=compliance"));
        }
        4 => {
            let top: BTreeSet<[u8; 16]> = slowest(f, 15, 5, is_portfolio)
                .iter()
                .map(|s| s.trace_id)
                .collect();
            let want: BTreeSet<(String, String)> = f
                .logs_in(15)
                .filter(|r| (13..=20).contains(&r.severity) && top.contains(&r.trace_id))
                .map(|r| (hex(&r.trace_id), r.body.to_text().into_owned()))
                .collect();
            let got = f.unified(q);
            assert_eq!(got["resultType"], "logs");
            let got: BTreeSet<(String, String)> = got["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["traceId"].as_str().unwrap().to_string(),
                        r["body"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{q}");
            assert!(
                !want.is_empty(),
                "the slowest portfolio requests logged slow queries"
            );
        }
        5 => {
            let top = slowest(f, 15, 3, |s| s.service() == "web-gateway");
            let traces = f.trace_spans();
            let got = f.unified(q);
            assert_eq!(got["resultType"], "traces");
            let got: Vec<(String, usize)> = got["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["traceId"].as_str().unwrap().to_string(),
                        t["spans"].as_array().unwrap().len(),
                    )
                })
                .collect();
            let want: Vec<(String, usize)> = top
                .iter()
                .map(|s| (hex(&s.trace_id), traces[&s.trace_id].len()))
                .collect();
            assert_eq!(got, want, "{q}");
        }
        6 => {
            // Left side (spans) recomputed; the join checked against both
            // sides run on their own.
            let (left_q, right_q) = q.split_once(" / on(service) ").expect("a ratio");
            let mut per_op: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
            for s in f
                .spans_in(5)
                .filter(|s| s.kind == sextant_storage::SpanKind::Server)
            {
                per_op
                    .entry((s.service().into_owned(), s.name.clone()))
                    .or_default()
                    .push(s.duration_ns() as f64 / 1e9);
            }
            let mut want: BTreeMap<String, f64> = BTreeMap::new();
            for ((service, _), mut v) in per_op {
                let p = quantile(0.99, &mut v);
                let e = want.entry(format!("service={service}")).or_insert(p);
                *e = e.max(p);
            }
            let left = vector(&f.unified(left_q));
            assert_vectors_close(&left, &want, left_q);
            let right = vector(&f.unified(right_q));
            let joined = vector(&f.unified(q));
            let expect: BTreeMap<String, f64> = left
                .iter()
                .filter_map(|(k, l)| Some((k.clone(), l / right.get(k)?)))
                .collect();
            assert_vectors_close(&joined, &expect, q);
            assert!(
                joined["service=ledger"] > 5.0,
                "the slow database shows: {joined:?}"
            );
            // PromQL gives the same through the Prometheus API.
            assert_eq!(f.query("/api/v1/query", right_q), f.unified(right_q));
        }
        7 => {
            let lo = f.now - 5 * MIN + 1;
            let mut want = BTreeSet::new();
            for sc in &f.data.scrapes {
                for ((service, _, _, code), red) in &sc.red {
                    if *service != "payments" || *code < 500 {
                        continue;
                    }
                    if let Some(e) = red.exemplars.iter().flatten().max_by_key(|e| e.time_ns) {
                        let t = e.time_ns / 1_000_000;
                        if t >= lo && t <= f.now && sc.t_ms <= f.now {
                            want.insert(hex(&e.trace_id));
                        }
                    }
                }
            }
            let got = f.unified(q);
            assert_eq!(got["resultType"], "traces");
            let got: BTreeSet<String> = got["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["traceId"].as_str().unwrap().to_string())
                .collect();
            assert!(!want.is_empty() && want.len() <= 100, "{}", want.len());
            assert_eq!(got, want, "{q}");
        }
        8 => {
            let want = counts(
                f.logs_in(15)
                    .filter(|r| r.severity == 17 && r.body.to_text().contains("connection refused"))
                    .map(|r| format!("service={}", r.service())),
            );
            assert_vectors_close(&vector(&f.unified(q)), &want, q);
            assert_eq!(want.keys().collect::<Vec<_>>(), ["service=compliance"]);
        }
        9 => {
            let slow_db = |s: &Span| s.service() == "ledger-db" && s.duration_ns() > 100_000_000;
            let entry = |s: &Span| matches!(&*s.service(), "web-gateway" | "mobile-bff");
            let want = counts(
                structural(f, 15, slow_db, "<<", entry)
                    .into_iter()
                    .map(|s| format!("name={}", s.name)),
            );
            assert_vectors_close(&vector(&f.unified(q)), &want, q);
            assert!(want.contains_key("name=GET /portfolio"));
        }
        10 => {
            let mut per_op: BTreeMap<String, (f64, f64)> = BTreeMap::new();
            for s in f.spans_in(15).filter(|s| s.service() == "payments") {
                let e = per_op
                    .entry(format!("operation={},service=payments", s.name))
                    .or_default();
                e.0 += f64::from(u8::from(err(s)));
                e.1 += 1.0;
            }
            let want = per_op.into_iter().map(|(k, (e, n))| (k, e / n)).collect();
            assert_vectors_close(&vector(&f.unified(q)), &want, q);
        }
        11 => {
            let logged: BTreeSet<([u8; 16], [u8; 8])> = f
                .logs_in(15)
                .filter(|r| r.body.to_text().contains("slow query"))
                .map(|r| (r.trace_id, r.span_id))
                .collect();
            let want = counts(
                f.spans_in(15)
                    .filter(|s| logged.contains(&(s.trace_id, s.span_id)))
                    .map(svc),
            );
            assert_vectors_close(&vector(&f.unified(q)), &want, q);
            assert_eq!(want.keys().collect::<Vec<_>>(), ["service=ledger-db"]);
        }
        12 => {
            // The query names a trace id; it is the slowest request's.
            let id = q.split('"').nth(1).unwrap();
            let slowest_id = hex(&slowest(f, 15, 1, |s| s.service() == "web-gateway")[0].trace_id);
            assert_eq!(
                id, slowest_id,
                "the cookbook names the slowest request's trace"
            );
            let spans: Vec<&Span> = f
                .data
                .spans
                .iter()
                .filter(|s| hex(&s.trace_id) == id)
                .collect();
            assert!(
                !spans.is_empty(),
                "the cookbook's trace id is in the demo data"
            );
            let got = f.unified(q);
            let t = &got["result"][0];
            assert_eq!(t["traceId"], id);
            let got_spans = t["spans"].as_array().unwrap();
            assert_eq!(got_spans.len(), spans.len());
            for s in got_spans {
                let parent = s["parentSpanId"].as_str().unwrap();
                match s["parentIndex"].as_u64() {
                    None => assert_eq!(parent, ""),
                    Some(i) => assert_eq!(got_spans[i as usize]["spanId"], parent),
                }
            }
        }
        13 => {
            let unified = f.unified(q);
            assert_eq!(f.query("/api/v1/query", q), unified);
            let v = vector(&unified);
            assert!(v["service=compliance"] > 0.3, "{v:?}");
            assert!(v.get("service=quotes").is_none_or(|r| *r < 0.05), "{v:?}");
        }
        other => panic!("cookbook query {other} has no check"),
    }
}

#[test]
fn every_cookbook_query_returns_the_expected_rows() {
    let book = entries(DOC);
    assert!(book.len() >= 10, "{} cookbook queries", book.len());
    let f = Fixture::start();
    for e in &book {
        eprintln!("cookbook {}", e.title);
        check(&f, e.number, &e.query);
    }
    promql_answers_the_same_on_both_endpoints(&f);
}

/// PromQL through `/api/v1/sextant/query` gives exactly what the
/// Prometheus endpoints give, instant and range, on the demo's metrics.
fn promql_answers_the_same_on_both_endpoints(f: &Fixture) {
    let queries = [
        "sum by (service) (rate(http_server_requests_total[5m]))",
        "histogram_quantile(0.9, sum by (le) (rate(http_server_request_duration_seconds_bucket[5m])))",
        "topk(3, process_memory_usage_bytes)",
        "count(target_info)",
        r#"sum by (service) (rate(spans({kind="server"})[5m])) - on(service) sum by (service) (rate(http_server_requests_total[5m]))"#,
        "nonexistent_metric",
    ];
    let (start, end) = (f.now as f64 / 1000.0 - 1800.0, f.now as f64 / 1000.0);
    for q in queries {
        assert_eq!(f.query("/api/v1/query", q), f.unified(q), "{q}");
        let range = |endpoint: &str| {
            let (status, v) = f.server.get_json(&format!(
                "{endpoint}?query={}&start={start}&end={end}&step=60",
                enc(q)
            ));
            assert_eq!(status, 200, "{q}: {v}");
            v["data"].clone()
        };
        let prom = range("/api/v1/query_range");
        assert_eq!(prom["resultType"], "matrix");
        assert_eq!(prom, range("/api/v1/sextant/query"), "{q}");
    }
}

/// Bad requests to the unified endpoint, and record queries sent to the
/// Prometheus endpoints: 400 with a message that says what to change.
#[test]
fn the_unified_endpoint_refuses_bad_requests_clearly() {
    let s = Server::start(&[]);
    for (path, want) in [
        ("/api/v1/sextant/query?query=", "no expression found"),
        (
            "/api/v1/sextant/query?query=logs(%7B%7D%20%7C%3D%205)",
            "expected a string",
        ),
        (
            "/api/v1/sextant/query?query=up&start=1",
            "give both start and end",
        ),
        ("/api/v1/sextant/query?query=up&start=1&end=2", "needs step"),
        (
            "/api/v1/sextant/query?query=logs(%7B%7D)&limit=0",
            "limit \"0\"",
        ),
        (
            "/api/v1/query?query=spans(%7B%7D)",
            "send it to /api/v1/sextant/query",
        ),
        (
            "/api/v1/query_range?query=logs(%7B%7D)&start=1&end=2&step=1",
            "send it to /api/v1/sextant/query",
        ),
        ("/api/v1/sextant/query?query=trace(%22zz%22)", "trace"),
    ] {
        let (status, v) = s.get_json(path);
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["status"], "error", "{path}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(want), "{path}: {msg}");
    }
    // Records over a range of an empty database: an empty result, not an error.
    let (status, v) = s.get_json("/api/v1/sextant/query?query=spans(%7B%7D)&start=0&end=60");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "spans");
    assert_eq!(v["data"]["result"], serde_json::json!([]));
}
