//! A backfill the way an OpenTelemetry collector pipeline sends one:
//! files of a few hours each, sent by concurrent workers in any order,
//! with flushes in between. Nothing within retention may be refused, and
//! every sample must be stored (issue 19, finding 4).

mod common;

use common::{Server, client};
use serde_json::{Value, json};

const T0_MS: i64 = 1_700_000_000_000;
const FILES: i64 = 8;
const FILE_MS: i64 = 3 * 3_600_000;
const STEP_MS: i64 = 60_000;
const SERIES: usize = 20;

/// One OTLP/JSON metrics request: every series' gauge points of file `f`.
fn file(f: i64) -> Value {
    let metrics: Vec<Value> = (0..SERIES)
        .map(|s| {
            let points: Vec<Value> = (0..FILE_MS / STEP_MS)
                .map(|i| {
                    let t = T0_MS + f * FILE_MS + i * STEP_MS;
                    json!({
                        "timeUnixNano": (t * 1_000_000).to_string(),
                        "asDouble": (f * 1000 + i) as f64,
                        "attributes": [{"key": "s", "value": {"stringValue": s.to_string()}}],
                    })
                })
                .collect();
            json!({"name": "backfill", "gauge": {"dataPoints": points}})
        })
        .collect();
    json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "loader"}}]},
        "scopeMetrics": [{"metrics": metrics}],
    }]})
}

/// Sends the files from 4 workers, flushing after each; returns each
/// file's (status, OTLP response).
fn backfill(s: &Server) -> Vec<(i64, u16, Value)> {
    // Newest first, then oldest, then the middle: every file after the
    // first is hours older than data already stored (and flushed).
    let mut order: Vec<i64> = (0..FILES).rev().collect();
    order.swap(1, FILES as usize - 1);
    let queue = std::sync::Mutex::new(order);
    let url = format!("http://{}/v1/metrics", s.otlp_http);
    let flush = s.url("/api/v1/admin/flush");
    let answers = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let Some(f) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let r = client()
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(file(f).to_string())
                        .send()
                        .unwrap();
                    let status = r.status().as_u16();
                    let body: Value = serde_json::from_str(&r.text().unwrap()).unwrap();
                    answers.lock().unwrap().push((f, status, body));
                    let r = client().post(&flush).send().unwrap();
                    assert!(r.status().is_success(), "flush");
                }
            });
        }
    });
    answers.into_inner().unwrap()
}

fn rejected(body: &Value) -> i64 {
    body.pointer("/partialSuccess/rejectedDataPoints")
        .map_or(0, |n| {
            n.as_i64().or_else(|| n.as_str()?.parse().ok()).unwrap()
        })
}

#[test]
fn concurrent_workers_backfilling_in_any_order_lose_nothing() {
    let s = Server::start(&[]);
    for (f, status, body) in backfill(&s) {
        assert_eq!((status, rejected(&body)), (200, 0), "file {f}: {body}");
    }
    let end = (T0_MS + FILES * FILE_MS) / 1000;
    let per_series = FILES * FILE_MS / STEP_MS;
    let q = format!("count_over_time(backfill[{}h])", FILES * 3 + 1);
    let got = s.query(&q, end as f64);
    assert_eq!(got.len(), SERIES, "{got:?}");
    for r in &got {
        assert_eq!(r["value"][1], per_series.to_string(), "{r}");
    }
    // And after merging the overlapping blocks, still each exactly once.
    let r = client()
        .post(s.url("/api/v1/admin/compact"))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let got = s.query(&format!("sum({q})"), end as f64);
    assert_eq!(got[0]["value"][1], (per_series * SERIES as i64).to_string());
}

/// With Prometheus' strictness asked for, older samples are refused one by
/// one and reported as OTLP's partial success (a 200 that senders do not
/// retry), never as a 400 that would drop the stored rest with them.
#[test]
fn a_configured_out_of_order_window_reports_partial_success() {
    let s = Server::start(&["--ooo-window", "10m"]);
    let url = format!("http://{}/v1/metrics", s.otlp_http);
    // Two 20-minute slices an hour apart, the newer first: the head spans
    // well under the 3 h that would make the server flush it (a flushed
    // head starts empty, and the window counts from the head's newest).
    let slice = |from_min: i64| {
        let points: Vec<Value> = (0..20)
            .map(|i| {
                let t = T0_MS + (from_min + i) * STEP_MS;
                json!({"timeUnixNano": (t * 1_000_000).to_string(), "asDouble": 1.0})
            })
            .collect();
        json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "strict", "gauge": {"dataPoints": points}}
        ]}]}]})
        .to_string()
    };
    let mut answers = Vec::new();
    for from in [60, 0] {
        let r = client()
            .post(&url)
            .header("content-type", "application/json")
            .body(slice(from))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        answers.push((
            status,
            serde_json::from_str::<Value>(&r.text().unwrap()).unwrap(),
        ));
    }
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    assert_eq!(rejected(&answers[0].1), 0, "{answers:?}");
    assert_eq!(
        rejected(&answers[1].1),
        20,
        "the older slice is refused: {answers:?}"
    );
    let msg = answers[1]
        .1
        .pointer("/partialSuccess/errorMessage")
        .unwrap();
    assert!(
        msg.as_str().unwrap().contains("out-of-order window"),
        "{msg}"
    );
    let end = (T0_MS + 80 * STEP_MS) / 1000;
    let got = s.query("count_over_time(strict[2h])", end as f64);
    assert_eq!(got[0]["value"][1], "20", "only the newer slice is stored");
}
