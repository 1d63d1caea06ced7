//! `sextant bench cookbook`: the incident cookbook's queries over a day of
//! demo data. A server is started on a scratch directory and fed
//! `--history` of the 26-service demo through OTLP/gRPC, ending at the
//! cookbook's incident (a slow ledger database, a failing compliance
//! service); blocks are flushed and compacted, then every query of
//! docs/query-language.md runs `--runs` times through the embedded engine.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use sextant_query::value::Value;
use sextant_query::{Engine, EngineOptions, parse};
use sextant_storage::{Db, hex};

use super::{cpu_seconds, print_summary, quantile_ms};
use crate::{CliError, CliResult};
use sextant_demo::cookbook::{DOC, entries, incident};
use sextant_demo::season::days_from_civil;
use sextant_demo::{Plan, feed};
use sextant_server::{self as serve, ServeArgs};

/// Options of `sextant bench cookbook`.
#[derive(Args)]
pub struct CookbookArgs {
    /// History fed before the incident (`24h`).
    #[arg(long, default_value = "24h")]
    history: String,
    /// Root requests per second at market-hours load.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Runs of each query.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Keep the fed database in this directory, and when it already holds
    /// one from an earlier run, time the queries on it without feeding.
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The incident's time: Tuesday 1 December 2026, 15:10 UTC (10:10 in New
/// York), so the day before holds a full market day and its open.
fn incident_ms() -> i64 {
    days_from_civil(2026, 12, 1) * 86_400_000 + (15 * 60 + 10) * 60_000
}

/// Runs the benchmark in a scratch directory under `data_dir`.
pub fn run(data_dir: &Path, a: CookbookArgs) -> CliResult {
    let history = sextant_query::parse_duration(&a.history)
        .filter(|h| *h > 0)
        .ok_or_else(|| {
            CliError::Usage(format!("--history {:?}: a duration like 24h", a.history))
        })?;
    let io = |source| CliError::Io {
        path: data_dir.display().to_string(),
        source,
    };
    let now = incident_ms();
    if let Some(k) = a.keep.as_ref().filter(|k| k.join("blocks").is_dir()) {
        let db = Db::open(k, sextant_storage::Options::default())?;
        let summary = measure(&db, now, a.runs, 0.0)?;
        db.close()?;
        print_summary(&summary, a.json);
        return Ok(());
    }
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let scratch = tempfile::Builder::new()
        .prefix("bench-cookbook")
        .tempdir_in(data_dir)
        .map_err(io)?;
    let dir = a
        .keep
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    let plan = Plan {
        seed: 42,
        rate: a.rate,
        faults: incident(now),
        from_ms: now - history,
        now_ms: now,
        live: false,
    };
    let loopback = "127.0.0.1:0".parse().ok();
    let args = ServeArgs {
        grpc_addr: loopback,
        otlp_http_addr: loopback,
        http_addr: loopback,
        durability: Some("never".into()),
        ..ServeArgs::default()
    };
    let outcome = Arc::new(parking_lot::Mutex::new(None));
    let out = Arc::clone(&outcome);
    serve::run_with(&dir, args, move |l: serve::Listening| async move {
        let began = Instant::now();
        let fed = feed(&format!("http://{}", l.grpc), plan, None).await;
        let ingest_s = began.elapsed().as_secs_f64();
        let db = Arc::clone(&l.db);
        let res = match fed {
            Ok(()) => tokio::task::spawn_blocking(move || measure(&db, now, a.runs, ingest_s))
                .await
                .unwrap_or_else(|e| Err(CliError::Usage(format!("benchmark task failed: {e}")))),
            Err(e) => Err(e.into()),
        };
        *out.lock() = Some(res);
        let _ = l.stop.send(true);
    })?;
    let summary = outcome
        .lock()
        .take()
        .unwrap_or_else(|| Err(CliError::Usage("the benchmark did not finish".into())))?;
    print_summary(&summary, a.json);
    Ok(())
}

/// Flushes and compacts, then times every cookbook query at `now`.
fn measure(db: &Db, now: i64, runs: usize, ingest_s: f64) -> Result<serde_json::Value, CliError> {
    db.flush()?;
    db.compact()?;
    let engine = Engine::new(db, EngineOptions::default());
    // The cookbook names a trace of its own data; use this data's slowest.
    let slowest = parse(r#"topk(1, spans({service="web-gateway"})[15m])"#)?;
    let trace_id = match engine.instant(&slowest, now)? {
        Value::Spans(s) => s.first().map(|s| hex(&s.trace_id)).unwrap_or_default(),
        _ => String::new(),
    };
    let mut rows = Vec::new();
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    for e in entries(DOC) {
        let text = if e.query.starts_with("trace(") {
            format!("trace(\"{trace_id}\")")
        } else {
            e.query.clone()
        };
        let expr = parse(&text)?;
        let mut times = Vec::with_capacity(runs);
        let mut size = 0;
        let cpu0 = cpu_seconds();
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            let v = engine.instant(&expr, now)?;
            times.push(t.elapsed());
            size = result_size(&v);
        }
        let cpu_ms = (cpu_seconds() - cpu0) * 1e3 / runs.max(1) as f64;
        times.sort();
        let (p50, p99) = (quantile_ms(&times, 0.5), quantile_ms(&times, 0.99));
        p50s.push(p50);
        p99s.push(p99);
        eprintln!(
            "{:>3}  p50 {p50:8.2} ms  p99 {p99:8.2} ms  {size:>5} rows  {}",
            e.number, e.title
        );
        rows.push(json!({
            "number": e.number,
            "title": e.title,
            "p50_ms": p50,
            "p99_ms": p99,
            "cpu_ms_per_run": cpu_ms,
            "rows": size,
        }));
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let stats = db.stats();
    let sum = |f: fn(&sextant_storage::BlockMeta) -> u64| {
        stats.blocks.iter().map(|b| f(&b.meta)).sum::<u64>()
    };
    Ok(json!({
        "benchmark": "cookbook",
        "ingest_seconds": ingest_s,
        "blocks": stats.blocks.len(),
        "samples": sum(|m| m.samples) + stats.head_samples,
        "spans": sum(|m| m.spans) + stats.head_spans,
        "logs": sum(|m| m.logs) + stats.head_logs,
        "queries": rows,
        "worst_p50_ms": max(&p50s),
        "worst_p99_ms": max(&p99s),
        "target": "p50 < 100 ms, p99 < 300 ms for every query",
    }))
}

/// Rows of a result: series, records or traces.
fn result_size(v: &Value) -> usize {
    match v {
        Value::Vector(v) => v.len(),
        Value::Matrix(m) => m.len(),
        Value::Logs(r) => r.len(),
        Value::Spans(s) => s.len(),
        Value::Traces(t) => t.len(),
        Value::Scalar(_) | Value::Str(_) => 1,
    }
}
