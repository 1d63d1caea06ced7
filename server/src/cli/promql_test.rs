//! `sextant promql-test FILE...`: runs Prometheus test scripts and prints
//! per-file counts and a final `N passed, N failed, N skipped` line.

use std::path::PathBuf;

use clap::Args;
use sextant_query::promqltest::run_script;

use super::{CliError, CliResult};

/// Options of `sextant promql-test`.
#[derive(Args)]
pub struct PromqlTestArgs {
    /// Test scripts.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print every failing eval with the reason.
    #[arg(short, long)]
    verbose: bool,
}

pub fn run(a: &PromqlTestArgs) -> CliResult {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for f in &a.files {
        let text = std::fs::read_to_string(f).map_err(|source| CliError::Io {
            path: f.display().to_string(),
            source,
        })?;
        let r = run_script(&text).map_err(|e| CliError::Usage(format!("{}: {e}", f.display())))?;
        println!(
            "{}: {} passed, {} failed, {} skipped",
            f.display(),
            r.passed,
            r.failed,
            r.skipped
        );
        if a.verbose {
            for (line, q, why) in &r.failures {
                println!("  {}:{line}: {q}\n      {why}", f.display());
            }
        }
        passed += r.passed;
        failed += r.failed;
        skipped += r.skipped;
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(())
}
