//! `sextant bench`: throughput and latency of the storage engine, printed
//! as comparable figures (CPU-µs per unit of work besides wall time).

mod cookbook;
mod diagnose;
mod histograms;
mod logs;
mod remote_write;
mod spans;
mod ui;
mod write;

use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use sextant_storage::{Db, Options};

use crate::{CliError, CliResult};

/// Benchmarks.
#[derive(Subcommand)]
pub enum Bench {
    /// Write samples as scrapes would: every series gets one sample per
    /// round, `--batch` samples per write call.
    Write(write::WriteArgs),
    /// Ingest ~200-byte log lines, flush them into indexed blocks, then
    /// time full-text term queries.
    Logs(logs::LogsArgs),
    /// Ingest traces spread over days of blocks, then time trace-by-id
    /// lookups.
    Spans(spans::SpansArgs),
    /// Native histograms beside Prometheus: OTLP exponential histograms
    /// into `sextant serve`, the same as remote_write into Prometheus;
    /// server CPU per histogram and bytes per stored histogram.
    Histograms(histograms::HistogramsArgs),
    /// Feed pre-encoded remote_write requests (from the bench harness'
    /// dataset cache) through the server's decode and write path.
    RemoteWrite(remote_write::RemoteWriteArgs),
    /// Run the incident cookbook's queries over a day of demo data fed
    /// through a server's OTLP ingest.
    Cookbook(cookbook::CookbookArgs),
    /// Score the diagnosis on labelled scenarios (faults and normal-but-
    /// unusual moments) fed through a server's OTLP ingest.
    Diagnose(diagnose::DiagnoseArgs),
    /// Time every request the web UI's pages make against a running
    /// server (`--url`; the demo with `--backfill 24h` is the reference).
    Ui(ui::UiArgs),
}

/// Runs one benchmark, in a scratch database under `data_dir`.
pub fn run(data_dir: &Path, what: Bench) -> CliResult {
    match what {
        Bench::Write(a) => write::run(data_dir, a),
        Bench::Logs(a) => logs::run(data_dir, a),
        Bench::Spans(a) => spans::run(data_dir, a),
        Bench::RemoteWrite(a) => remote_write::run(data_dir, a),
        Bench::Histograms(a) => histograms::run(data_dir, a),
        Bench::Cookbook(a) => cookbook::run(data_dir, a),
        Bench::Diagnose(a) => diagnose::run(data_dir, a),
        Bench::Ui(a) => ui::run(a),
    }
}

/// User+system CPU seconds of this process (Linux, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let f = proc_stat();
    (f[PROC_STAT_UTIME] + f[PROC_STAT_STIME]) as f64 / 100.0
}

/// Page faults of this process that waited for the disk (Linux): a query
/// run much slower than its others with faults read its files from disk,
/// not from the page cache.
fn major_faults() -> u64 {
    proc_stat()[PROC_STAT_MAJFLT]
}

/// Fields of `/proc/self/stat` after the command name, as numbers (0 where
/// not one): `PROC_STAT_*` name those used.
fn proc_stat() -> [u64; 13] {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let mut out = [0; 13];
    for (o, v) in out.iter_mut().zip(after.split_whitespace()) {
        *o = v.parse().unwrap_or(0);
    }
    out
}

const PROC_STAT_MAJFLT: usize = 9;
const PROC_STAT_UTIME: usize = 11;
const PROC_STAT_STIME: usize = 12;

/// Resident set size of this process in bytes (Linux `VmRSS`).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A database in a temporary directory inside `data_dir` (removed when
/// the returned guard drops), without background work, with the WAL
/// durability `sync` names.
fn scratch_db(
    data_dir: &Path,
    prefix: &str,
    sync: &str,
) -> Result<(tempfile::TempDir, Db), CliError> {
    let io = |source| CliError::Io {
        path: data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(data_dir)
        .map_err(io)?;
    let opts = Options {
        durability: sextant_server::parse_durability("--sync", sync)?,
        background: false,
        release_memory: Some(sextant_server::alloc::release_freed_pages),
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts)?;
    Ok((dir, db))
}

/// The `q`-quantile of sorted durations, in ms.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Bytes of all files under `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.filter_map(Result::ok).map(|e| entry_bytes(&e)).sum()
    })
}

/// Bytes of a file, or of everything under a directory.
fn entry_bytes(e: &std::fs::DirEntry) -> u64 {
    match e.metadata() {
        Ok(m) if m.is_dir() => tree_bytes(&e.path()),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Bytes under `blocks`, by the name of each block's top-level entry
/// (`logs`, `logs.text`, …), summed over blocks: where the disk goes.
fn bytes_by_entry(blocks: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let entries = |d: &Path| {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
    };
    for block in entries(blocks) {
        for e in entries(&block.path()) {
            *out.entry(e.file_name().to_string_lossy().into_owned())
                .or_default() += entry_bytes(&e);
        }
    }
    out
}

/// Prints a benchmark's figures: one JSON line, or indented JSON for people.
fn print_summary(summary: &serde_json::Value, one_line: bool) {
    if one_line {
        println!("{summary}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).unwrap_or_default()
        );
    }
}
