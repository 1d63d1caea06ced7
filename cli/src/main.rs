//! `sextant`: the server and its command-line tools.

use sextant_cli as cli;
use sextant_cli::demo;
use sextant_server as serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: ingest decodes and indexes
/// millions of small strings a second; glibc malloc took a fifth of the
/// remote_write path's CPU (measured with `sextant bench remote-write`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sextant: one embedded database for metrics, logs and traces.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Data directory.
    #[arg(
        long,
        global = true,
        env = "SEXTANT_DATA_DIR",
        default_value = "./sextant-data"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: OTLP over gRPC (4317) and HTTP (4318), the
    /// Prometheus HTTP API and remote_write (9090), on loopback by default.
    Serve(Box<serve::ServeArgs>),
    /// Run the server with a simulated 26-service system feeding it
    /// metrics, logs and traces (history first, then live), optionally
    /// with an injected fault.
    Demo(Box<demo::DemoArgs>),
    /// Run a query (PromQL, logs, spans, joins) against a server (--url)
    /// or the data directory; print a table, JSON or CSV.
    Query(Box<cli::query::QueryArgs>),
    /// Diagnose a window: is there an incident, what is its likely root
    /// cause, and the evidence (against a server with --url, or the data
    /// directory).
    Diagnose(Box<cli::diagnose::DiagnoseArgs>),
    /// Backfill data from a file.
    Import {
        #[command(subcommand)]
        format: cli::import::Format,
    },
    /// Series, samples and bytes on disk, per block (like `promtool tsdb analyze`).
    Stats(cli::stats::StatsArgs),
    /// Make a damaged data directory openable, keeping everything that verifies.
    Repair,
    /// Run Prometheus PromQL test scripts against a temporary database.
    PromqlTest(cli::promql_test::PromqlTestArgs),
    /// Benchmarks of the storage engine.
    Bench {
        #[command(subcommand)]
        what: cli::bench::Bench,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEXTANT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let res = match args.command {
        Command::Serve(a) => serve::run(&args.data_dir, *a).map_err(cli::CliError::from),
        Command::Demo(a) => demo::run(&args.data_dir, *a),
        Command::Query(a) => cli::query::run(&args.data_dir, &a),
        Command::Diagnose(a) => cli::diagnose::run(&args.data_dir, &a),
        Command::Import { format } => cli::import::run(&args.data_dir, format),
        Command::Stats(a) => cli::stats::run(&args.data_dir, &a),
        Command::Repair => cli::repair::run(&args.data_dir),
        Command::PromqlTest(a) => cli::promql_test::run(&a),
        Command::Bench { what } => cli::bench::run(&args.data_dir, what),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
