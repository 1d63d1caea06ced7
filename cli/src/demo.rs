//! `sextant demo`: the simulated brokerage (`sextant_demo`) fed through a
//! server's real OTLP/gRPC ingest — the server this command starts, or one
//! at `--target`.

use std::path::Path;

use sextant_demo::{DemoOptions, Plan, fed_until, feed, print_plan, wall_ms};
use sextant_server::{self as server, ServeArgs};

use crate::{CliError, CliResult};

/// Options of `sextant demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Feed the server whose OTLP/gRPC listener is at this address
    /// (`http://127.0.0.1:4317`) instead of starting one.
    #[arg(long)]
    pub target: Option<String>,
    /// What to simulate.
    #[command(flatten)]
    pub demo: DemoOptions,
    /// The server's settings (when no --target is given).
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Runs the demo: starts a server on `data_dir` and feeds it, or feeds
/// `--target`.
pub fn run(data_dir: &Path, args: DemoArgs) -> CliResult {
    let plan = Plan::new(&args.demo, args.demo.now_ms.unwrap_or_else(wall_ms))?;
    print_plan(&plan);
    if let Some(target) = args.target.clone() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
        return Ok(rt.block_on(feed(&target, plan, None))?);
    }
    server::run_with(
        data_dir,
        args.serve,
        move |l: server::Listening| async move {
            let addr = format!("http://{}", l.grpc);
            // A demo restarted on the same data resumes where the last one
            // stopped instead of sending the same times again (cumulative
            // counters would go back in time).
            let resume = fed_until(&l.db, plan.from_ms, plan.now_ms);
            println!(
                "sextant demo: query it at http://{}/api/v1/sextant/query or /api/v1/query",
                l.http
            );
            if let Err(e) = feed(&addr, plan, resume).await {
                eprintln!("sextant demo: {e}");
            }
        },
    )?;
    Ok(())
}
