//! The service graph from spans: instrumented calls, uninstrumented
//! databases and third parties, topics, server-only instrumentation.

use sextant_diagnose::graph::{Builder, NodeKind};
use sextant_storage::{AnyValue, Span, SpanKind, StatusCode};

struct Trace {
    id: [u8; 16],
    next: u8,
    spans: Vec<Span>,
}

impl Trace {
    fn new(n: u8) -> Trace {
        Trace {
            id: [n; 16],
            next: 1,
            spans: Vec::new(),
        }
    }

    /// Adds a span and returns its id.
    fn span(
        &mut self,
        parent: [u8; 8],
        service: &str,
        kind: SpanKind,
        ms: i64,
        attrs: &[(&str, AnyValue)],
    ) -> [u8; 8] {
        let id = [self.next; 8];
        self.next += 1;
        self.spans.push(Span {
            trace_id: self.id,
            span_id: id,
            parent_span_id: parent,
            name: format!("{service} op"),
            kind,
            start_ns: 1_000_000_000_000,
            end_ns: 1_000_000_000_000 + ms * 1_000_000,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            resource: vec![
                ("service.name".into(), service.into()),
                (
                    "service.instance.id".into(),
                    AnyValue::Str(format!("{service}-0")),
                ),
                ("service.version".into(), "1.4.2".into()),
            ]
            .into(),
            ..Span::default()
        });
        id
    }

    fn fail(&mut self) {
        self.spans.last_mut().unwrap().status = StatusCode::Error;
    }
}

fn s(v: &str) -> AnyValue {
    AnyValue::Str(v.into())
}

#[test]
fn calls_databases_third_parties_and_topics_become_nodes_and_edges() {
    let mut spans = Vec::new();
    for n in 0..10u8 {
        let mut t = Trace::new(n + 1);
        let root = t.span([0; 8], "gateway", SpanKind::Server, 150, &[]);
        let call = t.span(
            root,
            "gateway",
            SpanKind::Client,
            140,
            &[("peer.service", s("payments"))],
        );
        let pay = t.span(call, "payments", SpanKind::Server, 30, &[]);
        t.span(
            pay,
            "payments",
            SpanKind::Client,
            8,
            &[
                ("db.system.name", s("postgresql")),
                ("server.address", s("ledger-db")),
                ("db.namespace", s("ledger")),
            ],
        );
        t.span(
            pay,
            "payments",
            SpanKind::Client,
            12,
            &[("url.full", s("https://api.stripe.com:443/v1/charges"))],
        );
        if n < 3 {
            t.fail();
        }
        // A datastore reporting its own calls: its client spans carry its
        // name as their service (the demo's datastores do this).
        t.span(
            pay,
            "audit-db",
            SpanKind::Client,
            3,
            &[
                ("db.system", s("postgresql")),
                ("server.address", s("audit-db")),
            ],
        );
        // A cache named only by its system.
        t.span(
            pay,
            "payments",
            SpanKind::Client,
            1,
            &[("db.system", s("redis"))],
        );
        // Server-only instrumentation: inventory's server span is a child
        // of gateway's server span.
        t.span(root, "inventory", SpanKind::Server, 5, &[]);
        // Messaging: a producer and, in the same trace, its consumer.
        let prod = t.span(
            pay,
            "payments",
            SpanKind::Producer,
            1,
            &[
                ("messaging.destination.name", s("settlements")),
                ("messaging.system", s("kafka")),
            ],
        );
        t.span(
            prod,
            "settlement",
            SpanKind::Consumer,
            20,
            &[("messaging.destination.name", s("settlements"))],
        );
        spans.extend(t.spans);
    }
    let mut b = Builder::new();
    b.add(&spans);
    let g = b.finish(0, 10_000, false);

    let kinds: Vec<(&str, NodeKind)> = g.nodes.iter().map(|n| (n.name.as_str(), n.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("api.stripe.com", NodeKind::External),
            ("audit-db", NodeKind::Database),
            ("gateway", NodeKind::Service),
            ("inventory", NodeKind::Service),
            ("ledger-db", NodeKind::Database),
            ("payments", NodeKind::Service),
            ("redis", NodeKind::Database),
            ("settlement", NodeKind::Service),
            ("settlements", NodeKind::Topic),
        ]
    );
    let edges: Vec<(&str, &str)> = g
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect();
    assert_eq!(
        edges,
        vec![
            ("gateway", "inventory"),
            ("gateway", "payments"),
            ("payments", "api.stripe.com"),
            ("payments", "audit-db"),
            ("payments", "ledger-db"),
            ("payments", "redis"),
            ("payments", "settlements"),
            ("settlements", "settlement"),
        ]
    );
    assert!(g.node("gateway").unwrap().entry);
    assert!(!g.node("payments").unwrap().entry);
    assert_eq!(
        g.node("ledger-db").unwrap().system.as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        g.node("settlements").unwrap().system.as_deref(),
        Some("kafka")
    );
    assert_eq!(g.node("payments").unwrap().instances, vec!["payments-0"]);
    assert_eq!(g.node("payments").unwrap().versions, vec!["1.4.2"]);

    // The third party's errors show on it and on the edge to it.
    let stripe = g.edge("payments", "api.stripe.com").unwrap();
    assert_eq!((stripe.stats.requests, stripe.stats.errors), (10, 3));
    assert_eq!(g.node("api.stripe.com").unwrap().stats.errors, 3);
    // The self-reporting datastore is measured by its calls.
    assert_eq!(g.node("audit-db").unwrap().stats.requests, 10);
    // An edge between services is measured by the caller: 140 ms, while
    // payments' own server spans took 30 ms.
    let p50 = g
        .edge("gateway", "payments")
        .unwrap()
        .stats
        .latency
        .p50
        .unwrap();
    assert!((p50 - 0.140).abs() < 0.005, "{p50}");
    let own = g.node("payments").unwrap().stats.latency.p50.unwrap();
    assert!((own - 0.030).abs() < 0.002, "{own}");
    assert_eq!(g.node("payments").unwrap().stats.requests, 10);
    assert!(
        (g.node("gateway").unwrap().stats.rate - 1.0).abs() < 1e-9,
        "10 requests in 10 s"
    );
}

#[test]
fn http_5xx_fails_a_span_and_4xx_does_not() {
    let mut t = Trace::new(1);
    t.span(
        [0; 8],
        "api",
        SpanKind::Server,
        10,
        &[("http.response.status_code", AnyValue::Int(503))],
    );
    t.span(
        [0; 8],
        "api",
        SpanKind::Server,
        10,
        &[("http.response.status_code", AnyValue::Int(404))],
    );
    t.span(
        [0; 8],
        "api",
        SpanKind::Server,
        10,
        &[("rpc.grpc.status_code", AnyValue::Int(14))],
    );
    let mut b = Builder::new();
    b.add(&t.spans);
    let g = b.finish(0, 1000, false);
    assert_eq!(g.node("api").unwrap().stats.errors, 2);
}
