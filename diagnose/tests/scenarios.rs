//! The diagnosis on the simulator's labelled scenarios, in process: each
//! scenario's history and window are written to a fresh database, the
//! window is diagnosed, and the answer scored. `sextant bench diagnose`
//! does the same through a real server; this is the fast loop.
//!
//! `SEXTANT_SCENARIOS=60 cargo test --release -p sextant-diagnose --test
//! scenarios -- --ignored --nocapture` runs a bigger suite and prints it.

mod common;

use sextant_demo::scenario::Scenario;
use sextant_demo::score::{Outcome, score, summarise};
use sextant_diagnose::{Calendar, DiagnoseRequest, diagnose};

fn run(sc: &Scenario) -> Outcome {
    // `SEXTANT_VARIANT`: the spans as another instrumentation writes them
    // (`common::variant`).
    let v = std::env::var("SEXTANT_VARIANT").unwrap_or_default();
    let d = common::diagnosed_with(sc, common::variant(&v));
    let json = serde_json::to_value(&d).unwrap();
    if std::env::var("SEXTANT_SHOW").is_ok_and(|s| sc.label.contains(&s)) {
        println!("{}", serde_json::to_string_pretty(&json).unwrap());
    }
    score(sc, &json)
}

fn report(outcomes: &[Outcome]) {
    for o in outcomes {
        println!(
            "{:<60} incident={:<5} ranks={:?} evidence={:?} top={} {:.0}ms",
            o.label, o.incident, o.ranks, o.evidence, o.top, o.took_ms
        );
    }
    println!("{:?}", summarise(outcomes));
}

#[test]
#[ignore = "a long run; see the module doc"]
fn suite() {
    let n: usize = std::env::var("SEXTANT_SCENARIOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("SEXTANT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let only = std::env::var("SEXTANT_ONLY").unwrap_or_default();
    let outcomes: Vec<Outcome> = Scenario::suite(seed, n)
        .iter()
        .filter(|s| s.label.contains(&only))
        .map(run)
        .collect();
    report(&outcomes);
}

/// Diagnosis time on one 60-service scenario, repeated: the figure to
/// look at under a profiler (`perf record` on this test).
#[test]
#[ignore = "a long run; see the module doc"]
fn latency() {
    let sc = Scenario::fault(
        11,
        60,
        sextant_demo::scenario::FaultKind::DbLatency,
        None,
        false,
    );
    let (_dir, db) = common::load(&sc, |_| {});
    let req = DiagnoseRequest::new(sc.window.0, sc.window.1);
    let cal = Calendar::nyse();
    let mut took = Vec::new();
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let d = diagnose(&db, &cal, &req).unwrap();
        took.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(d.incident);
    }
    took.sort_by(f64::total_cmp);
    println!(
        "diagnosis ms: min {:.0} median {:.0} max {:.0}",
        took[0], took[5], took[9]
    );
}
