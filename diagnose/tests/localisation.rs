//! Localisation on the simulator's scenarios, small enough for every
//! `cargo test`: propagation up the call graph (a slow database), a link,
//! one bad pod, a retry storm (the caller, not the overloaded callee), two
//! concurrent roots, and a benign deploy elsewhere (not a cause). The long
//! suite is `tests/scenarios.rs`.

use sextant_demo::scenario::{Component, FaultKind, NegativeKind, Scenario};
use sextant_diagnose::{Calendar, DiagnoseRequest, Diagnosis, diagnose};
use sextant_storage::{Db, Durability, Options};

fn diagnosed(sc: &Scenario) -> Diagnosis {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            durability: Durability::Never,
            ..Options::default()
        },
    )
    .unwrap();
    for (from, to, share) in sc.ranges() {
        let b = sc.generate(from, to, share);
        db.write_spans(b.spans).unwrap();
        db.write_logs(b.logs).unwrap();
    }
    diagnose(
        &db,
        &Calendar::nyse(),
        &DiagnoseRequest::new(sc.window.0, sc.window.1),
    )
    .unwrap()
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

fn assert_top(kind: FaultKind) -> Diagnosis {
    let sc = fault(kind, None);
    let d = diagnosed(&sc);
    let e = &sc.expected[0];
    assert!(d.incident, "{}: {d:?}", sc.label);
    assert_eq!(
        names(&d).first(),
        Some(&(e.name.clone(), e.kind.to_string())),
        "{}: {:?}",
        sc.label,
        names(&d)
    );
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

#[test]
fn a_dropped_link_is_the_link() {
    assert_top(FaultKind::LinkLoss);
}

#[test]
fn one_bad_pod_is_the_instance() {
    assert_top(FaultKind::BadPod);
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
