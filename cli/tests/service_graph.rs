//! The service graph through a real server fed over OTLP/HTTP (JSON):
//! instrumented calls and an uninstrumented database, and the endpoint's
//! answers to bad windows.

mod common;

use common::{Server, client};
use serde_json::{Value, json};

const T0_MS: i64 = 1_765_000_000_000;

fn span(
    trace: usize,
    id: u8,
    parent: Option<u8>,
    kind: u8,
    ms: i64,
    attrs: Value,
    error: bool,
) -> Value {
    let start = (T0_MS + trace as i64 * 1000) * 1_000_000;
    let mut s = json!({
        "traceId": format!("{:032x}", trace + 1),
        "spanId": format!("{:016x}", id),
        "name": "op",
        "kind": kind,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + ms * 1_000_000).to_string(),
        "attributes": attrs,
        "status": {"code": if error { 2 } else { 0 }},
    });
    if let Some(p) = parent {
        s["parentSpanId"] = json!(format!("{:016x}", p));
    }
    s
}

fn resource(service: &str, spans: Vec<Value>) -> Value {
    json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}],
    })
}

fn kv(k: &str, v: &str) -> Value {
    json!({"key": k, "value": {"stringValue": v}})
}

#[test]
fn the_service_graph_of_otlp_spans() {
    let s = Server::start(&[]);
    let (mut front, mut orders) = (Vec::new(), Vec::new());
    for t in 0..20 {
        // front (server, client) → orders (server) → the orders database.
        front.push(span(t, 1, None, 2, 60, json!([]), false));
        front.push(span(t, 2, Some(1), 3, 55, json!([]), false));
        orders.push(span(t, 3, Some(2), 2, 50, json!([]), t < 5));
        orders.push(span(
            t,
            4,
            Some(3),
            3,
            40,
            json!([
                kv("db.system.name", "postgresql"),
                kv("server.address", "orders-db")
            ]),
            t < 5,
        ));
    }
    let body = json!({"resourceSpans": [resource("front", front), resource("orders", orders)]});
    let r = client()
        .post(format!("http://{}/v1/traces", s.otlp_http))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());

    let q = format!(
        "/api/v1/sextant/service-graph?start={}&end={}",
        T0_MS / 1000,
        T0_MS / 1000 + 60
    );
    let (status, v) = s.get_json(&q);
    assert_eq!(status, 200, "{v}");
    let g = &v["data"];
    let nodes: Vec<(&str, &str)> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("front", "service"),
            ("orders", "service"),
            ("orders-db", "database")
        ]
    );
    let edges: Vec<(&str, &str, u64, u64)> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
                e["stats"]["requests"].as_u64().unwrap(),
                e["stats"]["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        vec![("front", "orders", 20, 0), ("orders", "orders-db", 20, 5)]
    );
    assert_eq!(g["nodes"][0]["entry"], true);
    assert_eq!(g["truncated"], false);

    // The same window as time + window.
    let q = format!(
        "/api/v1/sextant/service-graph?time={}&window=1m",
        T0_MS / 1000 + 60
    );
    let (status, v2) = s.get_json(&q);
    assert_eq!(status, 200);
    assert_eq!(v2["data"]["edges"], g["edges"]);

    for (q, says) in [
        ("start=100&end=50", "before it starts"),
        ("start=0&end=100000000", "at most 7d"),
        ("start=yesterday&end=now", "start"),
        ("start=1", "both start and end"),
        ("start=1&end=2&window=5m", "not both"),
        ("window=-5m", "window"),
    ] {
        let (status, v) = s.get_json(&format!("/api/v1/sextant/service-graph?{q}"));
        assert_eq!(status, 400, "{q}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(says), "{q}: {msg}");
    }
}
