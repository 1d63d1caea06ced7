//! `sextant promql-test FILE...`: runs Prometheus test scripts and prints
//! per-file counts and a final `N passed, N failed` line.

use std::path::PathBuf;

use clap::Args;
use sextant_query::promqltest::{Report, run_file};

use crate::{CliError, CliResult};

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

/// Runs the test scripts and prints per-file counts and the totals line.
pub fn run(a: &PromqlTestArgs) -> CliResult {
    let mut total = Report::default();
    for f in &a.files {
        let r = match run_file(f) {
            Ok(r) => r,
            Err(e) => {
                // An unreadable file fails, and the others still run.
                println!("{e}");
                total.failed += 1;
                continue;
            }
        };
        println!("{}: {}", f.display(), r.counts());
        if a.verbose {
            for (line, q, why) in &r.failures {
                println!("  {}:{line}: {q}\n      {why}", f.display());
            }
        }
        total.merge(r);
    }
    println!("{}", total.counts());
    if total.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} eval(s) failed (-v lists them)",
            total.failed
        )));
    }
    Ok(())
}
