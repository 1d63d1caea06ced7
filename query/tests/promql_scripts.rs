//! Runs Prometheus' own PromQL test scripts from `../shared/promql-tests/`
//! when that folder exists (it is beside the checkout on CI and developer
//! machines), and guards the pass count against regressions.

use std::path::Path;

use sextant_query::promqltest::{Report, run_file};

/// Evals passing today; raise it as the engine improves.
const MIN_PASSED: usize = 1513;

#[test]
fn prometheus_test_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/promql-tests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "notice: {} not found; PromQL scripts skipped",
            dir.display()
        );
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut total = Report::default();
    for f in files {
        let r = run_file(&f).unwrap_or_else(|e| panic!("{e}"));
        println!("{}: {}", f.display(), r.counts());
        total.merge(r);
    }
    let (passed, failed) = (total.passed, total.failed);
    println!("promql scripts: {passed} passed, {failed} failed");
    assert!(
        passed >= MIN_PASSED,
        "{passed} evals passed, fewer than the {MIN_PASSED} that passed before"
    );
}
