//! `sextant bench diagnose`: the diagnosis scored on the simulator's
//! labelled scenarios, end to end. For each scenario a server is started
//! on a scratch directory, fed the scenario's history and window through
//! OTLP/gRPC, and asked `GET /api/v1/sextant/diagnose` for the window, as a
//! user would; the answer is scored against the injected faults (AC@1,
//! AC@3, Avg@5), the negatives (false alarms) and the evidence. With
//! `--history-days`, one more 60-service scenario is fed that many days of
//! continuous, thinly sampled history, and its diagnosis is timed.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use sextant_demo::otlp::Sender;
use sextant_demo::scenario::{FaultKind, Scenario};
use sextant_demo::score::{Outcome, score, summarise};
use sextant_server::{self as serve, ServeArgs};

use super::print_summary;
use crate::{CliError, CliResult};

/// Options of `sextant bench diagnose`.
#[derive(Args)]
pub struct DiagnoseArgs {
    /// Scenarios (two faults for every negative).
    #[arg(long, default_value_t = 60)]
    scenarios: usize,
    /// Seed of the suite.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days of continuous history for the timed 60-service scenario (0:
    /// skip it).
    #[arg(long, default_value_t = 0)]
    history_days: u32,
    /// Diagnoses timed on that scenario.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Feeds `ranges` of `sc` (from, to, share of traces kept) into a fresh
/// server and returns its diagnosis of the window, `runs` times.
fn serve_and_diagnose(
    data_dir: &Path,
    sc: Scenario,
    ranges: Vec<(i64, i64, f64)>,
    runs: usize,
) -> Result<Vec<serde_json::Value>, CliError> {
    let io = |source| CliError::Io {
        path: data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let scratch = tempfile::Builder::new()
        .prefix("bench-diagnose")
        .tempdir_in(data_dir)
        .map_err(io)?;
    let loopback = "127.0.0.1:0".parse().ok();
    let args = ServeArgs {
        grpc_addr: loopback,
        otlp_http_addr: loopback,
        http_addr: loopback,
        durability: Some("never".into()),
        diagnose_every: Some("off".into()),
        ..ServeArgs::default()
    };
    let outcome = Arc::new(parking_lot::Mutex::new(None));
    let out = Arc::clone(&outcome);
    let sc = Arc::new(sc);
    serve::run_with(
        scratch.path(),
        args,
        move |l: serve::Listening| async move {
            let res = async {
                let mut tx = Sender::connect(&format!("http://{}", l.grpc))
                    .await
                    .map_err(CliError::Usage)?;
                for (from, to, share) in ranges {
                    // A day at a time, so memory stays flat over weeks.
                    let mut t = from;
                    while t < to {
                        let end = (t + 86_400_000).min(to);
                        let s = Arc::clone(&sc);
                        let b = tokio::task::spawn_blocking(move || s.generate(t, end, share))
                            .await
                            .map_err(|e| CliError::Usage(format!("generator failed: {e}")))?;
                        tx.send(&b, t)
                            .await
                            .map_err(|e| CliError::Usage(format!("OTLP export: {e}")))?;
                        t = end;
                    }
                }
                let url = format!(
                    "http://{}/api/v1/sextant/diagnose?start={}&end={}",
                    l.http,
                    sc.window.0 as f64 / 1000.0,
                    sc.window.1 as f64 / 1000.0
                );
                tokio::task::spawn_blocking(move || {
                    let client = reqwest::blocking::Client::builder()
                        .timeout(std::time::Duration::from_secs(120))
                        .build()
                        .map_err(|e| CliError::Usage(e.to_string()))?;
                    (0..runs.max(1))
                        .map(|_| {
                            let began = Instant::now();
                            let text = client
                                .get(&url)
                                .send()
                                .and_then(|r| r.text())
                                .map_err(|e| CliError::Usage(format!("{url}: {e}")))?;
                            let mut v: serde_json::Value = serde_json::from_str(&text)
                                .map_err(|e| CliError::Usage(format!("{url}: {e}: {text}")))?;
                            // The time a user waits, request and answer included.
                            v["data"]["took_ms"] = json!(began.elapsed().as_secs_f64() * 1e3);
                            Ok(v["data"].take())
                        })
                        .collect::<Result<Vec<_>, CliError>>()
                })
                .await
                .map_err(|e| CliError::Usage(format!("diagnosis task failed: {e}")))?
            }
            .await;
            *out.lock() = Some(res);
            let _ = l.stop.send(true);
        },
    )?;
    outcome
        .lock()
        .take()
        .unwrap_or_else(|| Err(CliError::Usage("the benchmark did not finish".into())))
}

/// Runs the suite (and the timed scenario) in scratch directories under
/// `data_dir`.
pub fn run(data_dir: &Path, a: DiagnoseArgs) -> CliResult {
    let began = Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for sc in Scenario::suite(a.seed, a.scenarios) {
        let ranges = sc.ranges();
        let d = serve_and_diagnose(data_dir, sc.clone(), ranges, 1)?;
        let o = score(&sc, &d[0]);
        if !a.json {
            eprintln!(
                "{:<64} incident={:<5} ranks={:?} evidence={:?} top={} {:.0} ms",
                o.label, o.incident, o.ranks, o.evidence, o.top, o.took_ms
            );
        }
        outcomes.push(o);
    }
    let s = summarise(&outcomes);
    let mut summary = json!({
        "benchmark": "diagnose",
        "scenarios": outcomes.len(),
        "faults": s.faults,
        "negatives": s.negatives,
        "seed": a.seed,
        "top1": s.top1,
        "top3": s.top3,
        "avg5": s.avg5,
        "false_alarm_rate": s.false_alarms,
        "missed_rate": s.missed,
        "evidence_accuracy": s.evidence,
        "diagnosis_ms_p50": s.took_ms.0,
        "diagnosis_ms_p99": s.took_ms.1,
        "misses": outcomes
            .iter()
            .filter(|o| if o.fault { o.ranks.first() != Some(&Some(0)) } else { o.incident })
            .map(|o| json!({"label": o.label, "ranks": format!("{:?}", o.ranks), "top": o.top}))
            .collect::<Vec<_>>(),
    });
    if a.history_days > 0 {
        let sc = Scenario::fault(a.seed, 60, FaultKind::DbLatency, None, false);
        let days = i64::from(a.history_days) * 86_400_000;
        // History as stores keep it: every log, a thin sample of traces
        // (about one trace in 50); the window whole.
        let ranges = vec![
            (sc.window.0 - days, sc.window.0, 0.02),
            (sc.window.0, sc.window.1, 1.0),
        ];
        let fed = Instant::now();
        let d = serve_and_diagnose(data_dir, sc.clone(), ranges, a.runs)?;
        let mut took: Vec<f64> = d
            .iter()
            .map(|d| d["took_ms"].as_f64().unwrap_or(0.0))
            .collect();
        took.sort_by(f64::total_cmp);
        let q = |p: f64| took[((took.len() - 1) as f64 * p).round() as usize];
        let o = score(&sc, &d[0]);
        summary["history"] = json!({
            "services": 60,
            "days": a.history_days,
            "label": o.label,
            "top": o.top,
            "right": o.ranks.first() == Some(&Some(0)),
            "runs": took.len(),
            "diagnosis_ms_p50": q(0.5),
            "diagnosis_ms_p99": q(0.99),
            "feed_and_runs_s": fed.elapsed().as_secs_f64(),
        });
    }
    summary["wall_s"] = json!(began.elapsed().as_secs_f64());
    print_summary(&summary, a.json);
    Ok(())
}
