//! Runs Prometheus' own PromQL test scripts from `../shared/promql-tests/`
//! when that folder exists (it is beside the checkout on CI and developer
//! machines), and guards the pass count against regressions.

use std::path::Path;

use sextant_query::promqltest::run_script;

/// Evals passing today; raise it as the engine improves.
const MIN_PASSED: usize = 777;

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
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for f in files {
        let r = run_script(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        println!(
            "{}: {} passed, {} failed, {} skipped",
            f.display(),
            r.passed,
            r.failed,
            r.skipped
        );
        passed += r.passed;
        failed += r.failed;
        skipped += r.skipped;
    }
    println!("promql scripts: {passed} passed, {failed} failed, {skipped} skipped");
    assert!(
        passed >= MIN_PASSED,
        "{passed} evals passed, fewer than the {MIN_PASSED} that passed before"
    );
}
