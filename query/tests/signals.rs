//! The cross-signal language over a small, fully known data set: log and
//! span selectors, records → series, structure, joins and trace lookups,
//! with the same answers from the head and from blocks.

use sextant_query::value::Value;
use sextant_query::{Engine, EngineOptions, parse};
use sextant_storage::{AnyValue, Db, LogRecord, Options, Span, SpanKind, StatusCode};

const MS: i64 = 1_000_000;
const SERVICES: [&str; 3] = ["checkout", "payment", "db"];
/// Traces, one a second from T0.
const N: u64 = 60;
const T0: i64 = 1_700_000_000_000;

fn trace_id(i: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&(i + 1).to_le_bytes());
    t
}

fn span_id(i: u64, d: u64) -> [u8; 8] {
    (i * 4 + d + 1).to_le_bytes()
}

fn failed(i: u64) -> bool {
    i % 10 == 3
}

/// checkout → payment → db per trace; the db fails in every 10th trace,
/// which then takes 900 ms; one log per span.
fn data() -> (Vec<LogRecord>, Vec<Span>) {
    let (mut logs, mut spans) = (Vec::new(), Vec::new());
    for i in 0..N {
        let t0 = (T0 + i as i64 * 1000) * MS;
        for (d, svc) in SERVICES.iter().enumerate() {
            let d = d as u64;
            let start = t0 + d as i64 * MS;
            let dur = if failed(i) { 900 } else { 20 + i as i64 } * MS / (d as i64 + 1);
            let err = failed(i) && d == 2;
            spans.push(Span {
                trace_id: trace_id(i),
                span_id: span_id(i, d),
                parent_span_id: if d == 0 { [0; 8] } else { span_id(i, d - 1) },
                name: format!("{svc}.op"),
                kind: SpanKind::Server,
                start_ns: start,
                end_ns: start + dur,
                status: if err {
                    StatusCode::Error
                } else {
                    StatusCode::Ok
                },
                attributes: vec![("route".into(), format!("/r{}", i % 2).as_str().into())],
                resource: vec![("service.name".into(), (*svc).into())].into(),
                ..Span::default()
            });
            let body = if err {
                format!(
                    "query failed: connection refused to 10.0.0.{} req={i}",
                    i % 4
                )
            } else {
                format!("{svc} handled request req={i}")
            };
            logs.push(LogRecord {
                time_ns: start + MS / 2,
                severity: if err { 17 } else { 9 },
                body: AnyValue::Str(body),
                resource: vec![("service.name".into(), (*svc).into())].into(),
                trace_id: trace_id(i),
                span_id: span_id(i, d),
                ..LogRecord::default()
            });
        }
    }
    (logs, spans)
}

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let (logs, spans) = data();
    db.write_logs(logs).unwrap();
    db.write_spans(spans).unwrap();
    (dir, db)
}

const END: i64 = T0 + N as i64 * 1000;

fn records(db: &Db, q: &str) -> Value {
    let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    Engine::new(db, EngineOptions::default())
        .records(&e, T0 - 1, END)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .0
}

fn instant(db: &Db, q: &str) -> Vec<(String, f64)> {
    let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    match Engine::new(db, EngineOptions::default())
        .instant(&e, END)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
    {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> = v
                .into_iter()
                .map(|e| (format!("{:?}", e.labels.iter().collect::<Vec<_>>()), e.v))
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{q}: not a vector: {other:?}"),
    }
}

fn failing() -> Vec<u64> {
    (0..N).filter(|i| failed(*i)).collect()
}

fn log_reqs(v: &Value) -> Vec<u64> {
    let Value::Logs(rows) = v else {
        panic!("not logs: {v:?}")
    };
    let mut out: Vec<u64> = rows
        .iter()
        .map(|r| u64::from_le_bytes(r.trace_id[..8].try_into().unwrap()) - 1)
        .collect();
    out.sort_unstable();
    out
}

fn span_names(v: &Value) -> Vec<(u64, String)> {
    let Value::Spans(spans) = v else {
        panic!("not spans: {v:?}")
    };
    spans
        .iter()
        .map(|s| {
            (
                u64::from_le_bytes(s.trace_id[..8].try_into().unwrap()) - 1,
                s.service().into_owned(),
            )
        })
        .collect()
}

fn check_all(db: &Db) {
    // Line filters and matchers.
    let v = records(
        db,
        r#"logs({service="db", level="error"} |= "connection refused")"#,
    );
    assert_eq!(log_reqs(&v), failing());
    let v = records(
        db,
        r#"logs({service="db"} |~ "10\\.0\\.0\\.[12] " != "req=13")"#,
    );
    assert_eq!(log_reqs(&v), vec![33, 53]);
    // Newest first.
    let Value::Logs(rows) = records(db, r#"logs({level="error"})"#) else {
        panic!()
    };
    assert!(rows.windows(2).all(|w| w[0].time_ns >= w[1].time_ns));

    // Records → series.
    assert_eq!(
        instant(
            db,
            r#"sum by (service) (count_over_time(spans({status="error"})[1h]))"#
        ),
        vec![(r#"[("service", "db")]"#.to_string(), 6.0)]
    );
    assert_eq!(
        instant(db, r#"error_ratio(spans({service="db"})[1h])"#),
        vec![(
            r#"[("operation", "db.op"), ("service", "db")]"#.to_string(),
            0.1
        )]
    );
    // Window (END - 30s, END]: the log of request 30 is at its left edge.
    assert_eq!(
        instant(db, r#"rate(logs({service="checkout"})[30s])"#),
        vec![(
            r#"[("level", "info"), ("service", "checkout")]"#.to_string(),
            29.0 / 30.0
        )]
    );
    let by = instant(
        db,
        r#"count_over_time(spans({service="checkout"} | by(route))[1h])"#,
    );
    assert_eq!(by.len(), 2);
    assert!(by.iter().all(|(_, v)| *v == 30.0), "{by:?}");
    assert_eq!(
        instant(db, r#"max_over_time(spans({service="checkout"})[1h])"#)[0].1,
        0.9
    );

    // Structure: payment spans whose child failed, and the reverse.
    let v = records(
        db,
        r#"spans({service="payment"} < {service="db", status="error"})"#,
    );
    assert!(span_names(&v).is_empty(), "payment is not the child of db");
    let v = records(
        db,
        r#"spans({service="db", status="error"} < {service="payment"})"#,
    );
    let mut got: Vec<u64> = span_names(&v).into_iter().map(|(i, _)| i).collect();
    got.sort_unstable();
    assert_eq!(got, failing());
    let v = records(db, r#"spans({service="checkout"} >> {status="error"})"#);
    assert_eq!(span_names(&v).len(), failing().len());
    let v = records(db, r#"spans({service="checkout"} > {service="db"})"#);
    assert!(span_names(&v).is_empty(), "db is a grandchild of checkout");

    // Joins.
    let v = records(
        db,
        r#"logs({service="checkout"}) and on(trace_id) spans({service="db", duration > 100ms})"#,
    );
    assert_eq!(log_reqs(&v), failing());
    let v = records(
        db,
        r#"logs({service="db"}) unless on(trace_id) spans({status="error"})"#,
    );
    assert_eq!(log_reqs(&v).len(), N as usize - failing().len());
    let v = records(
        db,
        r#"spans({}) and on(span_id) logs({} |= "connection refused")"#,
    );
    assert!(span_names(&v).iter().all(|(_, s)| s == "db"));
    assert_eq!(span_names(&v).len(), failing().len());

    // The more selective left side first, the right read in its traces.
    let v = records(
        db,
        r#"spans({service="db", status="error"}) and on(trace_id) logs({service="checkout"})"#,
    );
    assert_eq!(span_names(&v).len(), failing().len());
    let v = records(
        db,
        r#"spans({service="db", status="error"}) unless on(span_id) logs({level="error"})"#,
    );
    assert!(
        span_names(&v).is_empty(),
        "every failing db span logged its error"
    );
    let v = records(
        db,
        r#"spans({service="db", status="error"}) unless on(span_id) logs({level="info"})"#,
    );
    assert_eq!(span_names(&v).len(), failing().len());

    // Records aggregated into vectors, ranged selectors in joins.
    assert_eq!(
        instant(db, r#"count by (service) (spans({status="error"})[1h])"#),
        vec![(r#"[("service", "db")]"#.to_string(), 6.0)]
    );
    assert_eq!(
        instant(
            db,
            r#"count by (service) (logs({}) and on(trace_id) spans({status="error"})[1h])"#
        ),
        ["checkout", "db", "payment"]
            .iter()
            .map(|s| (format!(r#"[("service", "{s}")]"#), 6.0))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        instant(db, r#"max by (name) (spans({service="checkout"})[1h])"#),
        vec![(r#"[("name", "checkout.op")]"#.to_string(), 0.9)]
    );
    // Grouping by ids forms one group per trace (issue 19: it formed one
    // empty group); a field that is no group key is an error.
    let per_trace = instant(db, r#"count by (trace_id) (spans({status="error"})[1h])"#);
    assert_eq!(per_trace.len(), 6, "{per_trace:?}");
    assert!(
        per_trace.iter().all(|(k, _)| k.contains("trace_id")),
        "{per_trace:?}"
    );
    let err = sextant_query::parse(r#"count by (duration) (spans({})[1h])"#).unwrap_err();
    assert!(err.message.contains("cannot group by"), "{}", err.message);

    // Ranking and traces.
    let v = records(db, r#"topk(2, spans({service="checkout"}))"#);
    let top: Vec<u64> = span_names(&v).into_iter().map(|(i, _)| i).collect();
    // Ties (all failing requests take 900 ms) go newest first.
    assert_eq!(top, vec![53, 43]);
    let Value::Traces(ts) = records(db, r#"traces(topk(1, spans({service="checkout"})))"#) else {
        panic!()
    };
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].spans.len(), 3);
    assert_eq!(ts[0].parents, vec![None, Some(0), Some(1)]);
    let Value::Traces(ts) = records(db, r#"trace("04000000000000000000000000000000")"#) else {
        panic!()
    };
    assert_eq!(ts[0].spans[2].status, StatusCode::Error);

    // A trace's records selected by its id, as a person pastes it.
    let id = sextant_storage::hex(&trace_id(3));
    let v = records(db, &format!(r#"spans({{trace_id="{id}"}})"#));
    assert_eq!(span_names(&v).len(), 3, "{v:?}");
    assert!(span_names(&v).iter().all(|(i, _)| *i == 3));
    let v = records(db, &format!(r#"logs({{trace_id="{id}", service="db"}})"#));
    assert_eq!(log_reqs(&v), vec![3]);
    let span = sextant_storage::hex(&span_id(3, 1));
    let v = records(db, &format!(r#"spans({{span_id="{span}"}})"#));
    assert_eq!(span_names(&v), vec![(3, "payment".to_string())]);
    // An id that is not one selects nothing, and is no error.
    let v = records(db, r#"spans({trace_id="not-a-trace-id"})"#);
    assert!(span_names(&v).is_empty());
    let v = records(db, r#"logs({trace_id=~"zz.*", span_id!=""})"#);
    assert!(log_reqs(&v).is_empty());
}

#[test]
fn head_and_blocks_answer_alike() {
    let (_dir, db) = db();
    check_all(&db);
    db.flush().unwrap();
    check_all(&db);
}

#[test]
fn printing_parses_back() {
    for q in [
        r#"logs({service="db", level=~"error|warn"} |= "timeout" != "retry" |~ "5\\d\\d" !~ "x" | by(route, "http.method"))"#,
        r#"spans({service="checkout", duration > 500ms, duration <= 2s} >> {status="error"} < {kind="server"} << {} | by(route))"#,
        r#"sum by (service) (rate(spans({kind="server"})[5m]))"#,
        r#"logs({}) and on(trace_id) topk(5, spans({service="checkout"}))"#,
        r#"traces(spans({"http.route"="/pay"}))"#,
        r#"exemplar_traces(http_requests_total{code=~"5.."}[15m])"#,
        r#"spans({http.route="/pay", net.peer.name!=""})"#,
    ] {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let printed = e.to_string();
        assert_eq!(parse(&printed).unwrap(), e, "{q} printed as {printed}");
    }
}

#[test]
fn promql_keeps_its_meaning() {
    // A metric called logs or spans is still a metric.
    assert!(matches!(
        parse(r#"logs{job="x"}"#).unwrap(),
        sextant_query::ast::Expr::Vector(_)
    ));
    assert!(matches!(
        parse("spans").unwrap(),
        sextant_query::ast::Expr::Vector(_)
    ));
    // Dots and pipes stay errors outside signal selectors.
    assert!(parse("foo.bar").is_err());
    assert!(parse("a | b").is_err());
}

#[test]
fn malformed_queries_say_where_and_how() {
    for (q, want) in [
        (r#"logs(service="x")"#, "expected \"{\" opening a selector"),
        (r#"logs({service="x"} |= 5)"#, "expected a string"),
        (
            r#"logs({service="x"} |~ "(")"#,
            "invalid regular expression",
        ),
        (r#"spans({service > 5})"#, "only a span's duration compares"),
        (r#"spans({service="x"} | count)"#, "expected \"by(...)\""),
        (r#"rate(logs({})[5m]) + logs({})"#, "do not combine"),
        (r#"logs({}) and spans({})"#, "needs on(trace_id)"),
        (r#"stddev(spans({}))"#, "cannot aggregate a span set"),
        (r#"sum(logs({}))"#, "cannot aggregate a log stream"),
        (r#"topk by (service) (3, spans({}))"#, "takes no by/without"),
        (r#"error_ratio(logs({})[5m])"#, "does not take a log range"),
        (r#"bytes_rate(up[5m])"#, "takes a log range"),
        (r#"irate(spans({})[5m])"#, "does not take a span range"),
    ] {
        let err = parse(q).expect_err(q).to_string();
        assert!(err.contains(want), "{q}: {err}");
        assert!(err.contains("1:"), "{q}: no position in {err}");
    }
}

#[test]
fn structured_bodies_match_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let row = |user: &str, code: i64| LogRecord {
        time_ns: T0 * MS,
        severity: 9,
        body: AnyValue::Map(vec![
            ("user".into(), user.into()),
            (
                "http".into(),
                AnyValue::Map(vec![("status".into(), AnyValue::Int(code))]),
            ),
        ]),
        resource: vec![("service.name".into(), "api".into())].into(),
        ..LogRecord::default()
    };
    db.write_logs(vec![row("alice", 200), row("bob", 503), row("carol", 502)])
        .unwrap();
    let users = |q: &str| {
        let Value::Logs(rows) = records(&db, q) else {
            panic!("{q}")
        };
        let mut u: Vec<String> = rows
            .iter()
            .map(|r| match &r.body {
                AnyValue::Map(m) => m[0].1.to_text().into_owned(),
                _ => String::new(),
            })
            .collect();
        u.sort();
        u
    };
    assert_eq!(users(r#"logs({body.user="bob"})"#), ["bob"]);
    assert_eq!(
        users(r#"logs({body.http.status=~"5.."})"#),
        ["bob", "carol"]
    );
    assert_eq!(
        users(r#"logs({body.missing=""})"#),
        ["alice", "bob", "carol"]
    );
}
