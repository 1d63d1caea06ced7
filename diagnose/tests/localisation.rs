//! Localisation on the simulator's scenarios, small enough for every
//! `cargo test`: propagation up the call graph (a slow database), a link,
//! one bad pod, a retry storm (the caller, not the overloaded callee), two
//! concurrent roots, and a benign deploy elsewhere (not a cause). The long
//! suite is `tests/scenarios.rs`.

mod common;

use common::diagnosed_with;
use sextant_demo::scenario::{Component, FaultKind, NegativeKind, Scenario};
use sextant_diagnose::{Calendar, DiagnoseRequest, Diagnosis, diagnose};
use sextant_query::value::Value;
use sextant_query::{Engine, EngineOptions, When};
use sextant_storage::{AnyValue, Db, Options, Resource, SpanKind};

fn diagnosed(sc: &Scenario) -> Diagnosis {
    diagnosed_with(sc, |_| {})
}

/// A fault scenario of a small estate whose fault lands (not every estate
/// has every kind of component).
fn fault(kind: FaultKind, second: Option<FaultKind>) -> Scenario {
    (1..200)
        .map(|seed| Scenario::fault(seed, 15, kind, second, false))
        .find(|s| s.faults.len() == 1 + usize::from(second.is_some()))
        .unwrap()
}

fn names(d: &Diagnosis) -> Vec<(String, String)> {
    d.causes
        .iter()
        .map(|c| (c.name.clone(), c.kind.clone()))
        .collect()
}

/// The diagnosis of the scenario's window in `db`.
fn diagnosed_in(db: &Db, sc: &Scenario) -> Diagnosis {
    diagnose(
        db,
        &Calendar::nyse(),
        &DiagnoseRequest::new(sc.window.0, sc.window.1),
    )
    .unwrap()
}

/// The top cause is the scenario's first expected one, as `kind`.
fn assert_first(sc: &Scenario, d: &Diagnosis, kind: &str, what: &str) {
    let e = &sc.expected[0];
    assert_eq!(
        names(d).first(),
        Some(&(e.name.clone(), kind.to_string())),
        "{what} {}: {:?}",
        sc.label,
        names(d)
    );
}

fn assert_top(kind: FaultKind) -> Diagnosis {
    let sc = fault(kind, None);
    let d = diagnosed(&sc);
    assert!(d.incident, "{}: {d:?}", sc.label);
    assert_first(&sc, &d, sc.expected[0].kind, "");
    d
}

#[test]
fn a_slow_database_is_named_not_its_callers() {
    let d = assert_top(FaultKind::DbLatency);
    let top = &d.causes[0];
    // The callers it slowed are on the propagation path, not causes.
    assert!(
        d.affected.iter().all(|a| a.path.first() == Some(&top.name)),
        "{:?}",
        d.affected
    );
    let m = top.evidence.metric.as_ref().unwrap();
    assert!(m.observed > 10.0 * m.baseline, "{m:?}");
    assert!(m.onset.is_some());
}

/// A datastore that reports its calls as client spans under its own
/// service name (as the demo's databases do) is still a database, and the
/// query its metric is shown with selects those spans: the chart beside
/// the cause has its line.
#[test]
fn a_datastore_reporting_its_own_calls_is_a_database_with_its_spans_charted() {
    let sc = fault(FaultKind::DbLatency, None);
    let e = &sc.expected[0];
    let name = e.name.clone();
    let (_dir, db) = common::load(&sc, |s| {
        let peer = s
            .attributes
            .iter()
            .any(|(k, v)| k == "server.address" && matches!(v, AnyValue::Str(a) if *a == name));
        if s.kind == SpanKind::Client && peer {
            let mut r = (*s.resource).clone();
            r.retain(|(k, _)| k != "service.name");
            r.push(("service.name".into(), name.as_str().into()));
            s.resource = Resource::new(r);
        }
    });
    let d = diagnosed_in(&db, &sc);
    assert_first(&sc, &d, "database", "");
    let m = d.causes[0].evidence.metric.as_ref().unwrap();
    assert!(m.query.contains("kind=\"client\""), "{}", m.query);
    assert_charted(&db, &sc, &d);
}

/// The top cause's metric query, run over the window, has its line.
fn assert_charted(db: &Db, sc: &Scenario, d: &Diagnosis) {
    let m = d.causes[0].evidence.metric.as_ref().unwrap();
    let expr = sextant_query::parse(&m.query).unwrap();
    let answer = Engine::new(db, EngineOptions::default())
        .run(
            &expr,
            When::Range {
                start: sc.window.0,
                end: sc.window.1,
                step: Some(60_000),
            },
        )
        .unwrap();
    let Value::Matrix(series) = answer.value else {
        panic!("{}: {:?}", m.query, answer.value)
    };
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    assert!(points >= 10, "{}: {points} points", m.query);
    // The line shows what the diagnosis saw: an error ratio counts the
    // failures the diagnosis counted (a duration is in other units).
    let peak = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.v)
        .fold(0.0, f64::max);
    let least = if m.name == "error_ratio" {
        m.observed / 2.0
    } else {
        f64::MIN_POSITIVE
    };
    assert!(peak >= least, "{}: peak {peak}, {m:?}", m.query);
}

/// Estates instrumented otherwise than the simulator: conventions before
/// 1.21, instances known by their pod's name, failures told by
/// `error.type` or an `exception` event alone. The fault is still named,
/// and its chart selects by the attribute the estate wrote.
#[test]
fn other_instrumentation_is_diagnosed_and_charted() {
    for (variant, kind, attribute) in [
        ("legacy", FaultKind::LinkLatency, "net.peer.name="),
        ("legacy", FaultKind::ConsumerLag, "kind="),
        ("pods", FaultKind::BadPod, "k8s.pod.name="),
        ("unset", FaultKind::BadDeploy, "kind=\"server\""),
        ("events", FaultKind::ExternalTimeout, "kind=\"client\""),
    ] {
        let sc = fault(kind, None);
        let (_dir, db) = common::load(&sc, common::variant(variant));
        let d = diagnosed_in(&db, &sc);
        assert_first(&sc, &d, sc.expected[0].kind, variant);
        let query = &d.causes[0].evidence.metric.as_ref().unwrap().query;
        assert!(query.contains(attribute), "{variant}: {query}");
        assert_charted(&db, &sc, &d);
    }
}

/// Each node of the service graph, selected as the graph says (the
/// service page charts that selector), has spans: a worker that only
/// consumes, a database named by `net.peer.name`, a topic.
#[test]
fn every_graph_node_is_selected_by_its_selector() {
    let sc = fault(FaultKind::ConsumerLag, None);
    let (_dir, db) = common::load(&sc, common::variant("legacy"));
    let (start, end) = sc.window;
    let g = sextant_diagnose::service_graph(&db, start, end).unwrap();
    let engine = Engine::new(&db, EngineOptions::default());
    let selectors: Vec<&str> = g.nodes.iter().map(|n| n.selector.as_str()).collect();
    assert!(
        selectors
            .iter()
            .any(|s| s.contains("kind=~\"server|consumer\"")),
        "{selectors:?}"
    );
    assert!(
        selectors.iter().any(|s| s.contains("net.peer.name=")),
        "{selectors:?}"
    );
    assert!(
        selectors
            .iter()
            .any(|s| s.contains("kind=\"producer\", messaging.destination=")),
        "{selectors:?}"
    );
    for n in &g.nodes {
        let q = format!(
            "count_over_time(spans({{{}}})[{}ms])",
            n.selector,
            end - start
        );
        let answer = engine
            .run(&sextant_query::parse(&q).unwrap(), When::Instant(end))
            .unwrap();
        let Value::Vector(v) = answer.value else {
            panic!("{q}: {:?}", answer.value)
        };
        assert!(!v.is_empty(), "{}: {q} selects nothing", n.name);
    }
}

#[test]
fn requests_behind_an_uninstrumented_proxy_are_still_requests() {
    // The ingress propagates a trace context but exports no spans: every
    // entry span has a parent that is never stored.
    let sc = fault(FaultKind::CacheOutage, None);
    let d = diagnosed_with(&sc, |s| {
        if s.parent_span_id == [0; 8] {
            s.parent_span_id = [7; 8];
        }
    });
    assert!(d.incident, "{d:?}");
    assert_eq!(d.causes[0].name, sc.expected[0].name, "{:?}", names(&d));
}

#[test]
fn a_dropped_link_is_the_link() {
    assert_top(FaultKind::LinkLoss);
}

#[test]
fn one_bad_pod_is_the_instance() {
    assert_top(FaultKind::BadPod);
}

/// A bad pod of a service with two, each with half the traffic (the
/// suite's seed 5 had it named as its service): the instance.
#[test]
fn one_bad_pod_of_two_is_the_instance() {
    let sc = Scenario::suite(5, 20)
        .into_iter()
        .find(|s| s.label.starts_with("bad-pod journal-api-1"))
        .unwrap();
    let Component::Instance(svc, _) = sc.faults[0].at else {
        panic!("{:?}", sc.faults)
    };
    assert_eq!(sc.estate.services[svc].instances, 2);
    let d = diagnosed(&sc);
    assert_first(&sc, &d, "instance", "");
}

#[test]
fn a_retry_storm_names_the_retrying_caller() {
    let sc = fault(FaultKind::RetryStorm, None);
    let Component::Link(_, callee) = sc.faults[0].at else {
        unreachable!()
    };
    let d = diagnosed(&sc);
    assert_eq!(d.causes[0].name, sc.expected[0].name, "{:?}", names(&d));
    assert_ne!(d.causes[0].name, sc.estate.services[callee].name);
    assert!(
        d.causes[0].explanation.contains("retries"),
        "{}",
        d.causes[0].explanation
    );
}

#[test]
fn two_concurrent_roots_are_both_in_the_top_three() {
    let sc = fault(FaultKind::BadDeploy, Some(FaultKind::CacheOutage));
    let d = diagnosed(&sc);
    let top3: Vec<String> = d.causes.iter().take(3).map(|c| c.name.clone()).collect();
    for e in &sc.expected {
        assert!(top3.contains(&e.name), "{}: {top3:?}", e.name);
    }
}

#[test]
fn a_bad_deploy_shows_its_change_and_a_benign_one_is_no_incident() {
    let d = assert_top(FaultKind::BadDeploy);
    let change = d.causes[0].evidence.change.as_ref().expect("the deploy");
    assert!(change.description.contains("2.0.0"), "{change:?}");
    let benign = diagnosed(&Scenario::negative(3, 15, NegativeKind::BenignDeploy));
    assert!(!benign.incident, "{benign:?}");
    assert!(benign.causes.is_empty());
}

#[test]
fn a_benign_deploy_elsewhere_during_a_fault_is_not_a_cause() {
    let mut sc = fault(FaultKind::ExternalTimeout, None);
    let caller = sc.estate.service(&sc.expected[0].service).unwrap();
    let other = (0..sc.estate.services.len())
        .find(|&s| s != caller)
        .unwrap();
    sc.deploys
        .push((other, sc.faults[0].start_ms - 60_000, "9.9.9".into()));
    let d = diagnosed(&sc);
    assert_eq!(d.causes[0].name, sc.expected[0].name, "{:?}", names(&d));
    let deployed = &sc.estate.services[other].name;
    assert!(
        d.causes
            .iter()
            .all(|c| &c.name != deployed || c.score < 0.1),
        "{deployed}: {:?}",
        d.causes
            .iter()
            .map(|c| (&c.name, c.score))
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_open_and_a_month_end_are_normal() {
    for k in [NegativeKind::OpenBurst, NegativeKind::MonthEnd] {
        let d = diagnosed(&Scenario::negative(4, 15, k));
        assert!(!d.incident, "{k:?}: {:?}", d.symptoms);
    }
}

#[test]
fn a_store_without_spans_says_what_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let d = diagnose(&db, &Calendar::nyse(), &DiagnoseRequest::new(0, 900_000)).unwrap();
    assert!(!d.incident);
    assert!(
        d.lacking.iter().any(|l| l.contains("no spans")),
        "{:?}",
        d.lacking
    );
}

/// A metrics-only store: five services' OpenTelemetry HTTP server
/// histograms (count and sum, by status code), one of which starts failing.
#[test]
fn a_metrics_only_store_still_diagnoses_and_says_what_it_lacked() {
    use sextant_storage::{Labels, Sample, WriteBatch};
    let cal = Calendar::nyse();
    // Tuesday 24 November 2026, 16:00 to 16:15 in New York (the close).
    let start = 1_795_550_400_000 + 3_600_000;
    let end = start + 900_000;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let services = ["gateway", "orders", "payments", "stock", "users"];
    let mut windows: Vec<i64> = cal.comparable(start, 35, 5);
    windows.push(start);
    for &w in &windows {
        let mut batch = WriteBatch::default();
        for svc in services {
            let job = format!("shop/{svc}");
            let series = |name: &str, code: &str| {
                Labels::new([
                    ("__name__", name),
                    ("job", job.as_str()),
                    ("http_response_status_code", code),
                ])
                .unwrap()
            };
            let (mut ok, mut failed, mut sum) = (Vec::new(), Vec::new(), Vec::new());
            let (mut n_ok, mut n_failed, mut secs) = (0.0, 0.0, 0.0);
            for k in 0..=80 {
                let t = w - 300_000 + k * 15_000;
                let broken = w == start && svc == "payments" && t > start + 300_000;
                let failing = if broken {
                    18.0
                } else {
                    f64::from(u8::from(k % 20 == 0))
                };
                n_ok += 60.0 - failing;
                n_failed += failing;
                secs += 60.0 * 0.05;
                ok.push(Sample::new(t, n_ok));
                failed.push(Sample::new(t, n_failed));
                sum.push(Sample::new(t, secs));
            }
            batch.add(
                series("http_server_request_duration_seconds_count", "200"),
                ok,
            );
            batch.add(
                series("http_server_request_duration_seconds_count", "500"),
                failed,
            );
            batch.add(
                Labels::new([
                    ("__name__", "http_server_request_duration_seconds_sum"),
                    ("job", job.as_str()),
                ])
                .unwrap(),
                sum,
            );
        }
        db.write(&batch).unwrap();
    }
    let d = diagnose(&db, &cal, &DiagnoseRequest::new(start, end)).unwrap();
    assert!(d.incident, "{d:?}");
    assert_eq!(d.causes[0].name, "payments", "{:?}", names(&d));
    assert!(
        d.causes[0]
            .evidence
            .metric
            .as_ref()
            .unwrap()
            .query
            .contains("payments")
    );
    assert!(
        d.lacking
            .iter()
            .any(|l| l.contains("without the call graph")),
        "{:?}",
        d.lacking
    );
    assert_eq!(d.window.baseline_starts.len(), 5);
}
