//! The diagnosis on the simulator's labelled scenarios, in process: each
//! scenario's history and window are written to a fresh database, the
//! window is diagnosed, and the answer scored. `sextant bench diagnose`
//! does the same through a real server; this is the fast loop.
//!
//! `SEXTANT_SCENARIOS=60 cargo test --release -p sextant-diagnose --test
//! scenarios -- --ignored --nocapture` runs a bigger suite and prints it.

use sextant_demo::scenario::Scenario;
use sextant_demo::score::{Outcome, score, summarise};
use sextant_diagnose::{Calendar, DiagnoseRequest, diagnose};
use sextant_storage::{Db, Durability, Options};

fn run(sc: &Scenario) -> Outcome {
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
    let d = diagnose(
        &db,
        &Calendar::nyse(),
        &DiagnoseRequest::new(sc.window.0, sc.window.1),
    )
    .unwrap();
    score(sc, &serde_json::to_value(&d).unwrap())
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
    let outcomes: Vec<Outcome> = Scenario::suite(seed, n).iter().map(run).collect();
    report(&outcomes);
}
