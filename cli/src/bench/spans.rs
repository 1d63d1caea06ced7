//! `sextant bench spans`: span ingest, then trace-by-id lookups over the
//! blocks of several days.
//!
//! Traces of 4–12 spans (a server root, client/server pairs below it) from
//! `--services` services start evenly over `--days` days; the head is
//! flushed at each 2 h partition, so a week gives 84 blocks for a lookup
//! to check.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use sextant_storage::{AnyValue, Span, SpanKind, StatusCode};

use super::{cpu_seconds, print_summary, quantile_ms, scratch_db, tree_bytes};
use crate::{CliError, CliResult};

/// Options of `sextant bench spans`.
#[derive(Args)]
pub struct SpansArgs {
    /// Spans written (about).
    #[arg(long, default_value_t = 1_000_000)]
    spans: u64,
    /// Days the traces are spread over.
    #[arg(long, default_value_t = 7)]
    days: u64,
    /// Services.
    #[arg(long, default_value_t = 20)]
    services: u64,
    /// Spans per write call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Trace lookups timed.
    #[arg(long, default_value_t = 2000)]
    lookups: usize,
    /// Compact the blocks before the lookups.
    #[arg(long)]
    compact: bool,
    /// WAL durability: always, never, or interval:MS.
    #[arg(long, default_value = "never")]
    sync: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

const START_NS: i64 = 1_763_800_000_000_000_000;

fn trace_id(t: u64) -> [u8; 16] {
    let mut r = fastrand::Rng::with_seed(t);
    r.u128(1..).to_le_bytes()
}

/// The spans of trace `t`, starting at `start`.
fn trace(t: u64, start: i64, services: u64, rng: &mut fastrand::Rng) -> Vec<Span> {
    let n = rng.u64(4..=12);
    let tid = trace_id(t);
    let mut out: Vec<Span> = Vec::with_capacity(n as usize);
    for k in 0..n {
        let svc = format!("svc-{:02}", (t + k / 2) % services);
        let parent = if k == 0 {
            [0; 8]
        } else {
            out[rng.usize(..k as usize)].span_id
        };
        let s = start + k as i64 * 1_000_000;
        let failed = rng.u32(..100) < 2;
        out.push(Span {
            trace_id: tid,
            span_id: ((t << 8) | (k + 1)).to_le_bytes(),
            parent_span_id: parent,
            name: format!(
                "{} /api/v1/op{}",
                if k % 2 == 1 { "GET" } else { "POST" },
                t % 7
            ),
            kind: if k % 2 == 1 {
                SpanKind::Client
            } else {
                SpanKind::Server
            },
            start_ns: s,
            end_ns: s + rng.i64(100_000..200_000_000),
            status: if failed {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            status_message: if failed {
                "deadline exceeded".into()
            } else {
                String::new()
            },
            attributes: vec![
                ("http.method".into(), AnyValue::Str("GET".into())),
                (
                    "http.status_code".into(),
                    AnyValue::Int(if failed { 504 } else { 200 }),
                ),
                (
                    "net.peer.name".into(),
                    AnyValue::Str(format!("svc-{:02}", (t + k) % services)),
                ),
            ],
            resource: vec![
                ("service.name".into(), AnyValue::Str(svc.clone())),
                (
                    "host.name".into(),
                    AnyValue::Str(format!("{svc}-{}", t % 3)),
                ),
            ]
            .into(),
            events: Vec::new(),
            links: Vec::new(),
        });
    }
    out
}

pub fn run(data_dir: &Path, a: SpansArgs) -> CliResult {
    if a.batch == 0 || a.spans == 0 || a.services == 0 || a.days == 0 {
        return Err(CliError::Usage(
            "--spans, --batch, --services and --days must be positive".into(),
        ));
    }
    let (dir, db) = scratch_db(data_dir, "bench-spans-", &a.sync)?;
    let traces = (a.spans / 8).max(1);
    let step = (a.days * 86_400_000_000_000 / traces) as i64;
    let two_hours = 2 * 3_600_000_000_000i64;
    let mut rng = fastrand::Rng::with_seed(7);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let (mut gen_time, mut flush_time, mut written) = (Duration::ZERO, Duration::ZERO, 0u64);
    let mut pending: Vec<Span> = Vec::with_capacity(a.batch + 16);
    let mut partition = START_NS.div_euclid(two_hours);
    for t in 0..traces {
        let g = Instant::now();
        let start = START_NS + t as i64 * step;
        let spans = trace(t, start, a.services, &mut rng);
        gen_time += g.elapsed();
        // Flush as each 2 h partition closes, as the background thread
        // would, so every partition becomes one block.
        if start.div_euclid(two_hours) != partition {
            partition = start.div_euclid(two_hours);
            written += pending.len() as u64;
            db.write_spans(std::mem::replace(
                &mut pending,
                Vec::with_capacity(a.batch + 16),
            ))?;
            let f = Instant::now();
            db.flush()?;
            flush_time += f.elapsed();
        }
        pending.extend(spans);
        if pending.len() >= a.batch {
            written += pending.len() as u64;
            db.write_spans(std::mem::replace(
                &mut pending,
                Vec::with_capacity(a.batch + 16),
            ))?;
        }
    }
    written += pending.len() as u64;
    db.write_spans(pending)?;
    let f = Instant::now();
    db.flush()?;
    flush_time += f.elapsed();
    let wall = (t0.elapsed() - gen_time).as_secs_f64();
    let cpu = (cpu_seconds() - cpu0 - gen_time.as_secs_f64()).max(1e-9);
    if a.compact {
        db.compact()?;
    }
    let blocks = db.stats().blocks.len();

    let mut hits = Vec::with_capacity(a.lookups);
    let mut lookup = fastrand::Rng::with_seed(99);
    for _ in 0..a.lookups {
        let t = lookup.u64(..traces);
        let q = Instant::now();
        let tr = db.trace(&trace_id(t))?;
        hits.push(q.elapsed());
        if tr.is_none_or(|tr| tr.spans.len() < 4) {
            return Err(CliError::Usage(format!("trace {t} not found whole")));
        }
    }
    hits.sort();
    let mut misses = Vec::with_capacity(a.lookups);
    for _ in 0..a.lookups {
        let id = lookup.u128(1..).to_le_bytes();
        let q = Instant::now();
        let _ = db.trace(&id)?;
        misses.push(q.elapsed());
    }
    misses.sort();
    let disk = tree_bytes(&dir.path().join("blocks"));
    let summary = json!({
        "spans": written, "traces": traces, "days": a.days, "blocks": blocks,
        "seconds": wall, "flush_seconds": flush_time.as_secs_f64(),
        "spans_per_sec": written as f64 / wall,
        "cpu_us_per_span": cpu * 1e6 / written as f64,
        "disk_bytes_per_span": disk as f64 / written as f64,
        "trace_p50_ms": quantile_ms(&hits, 0.5), "trace_p99_ms": quantile_ms(&hits, 0.99),
        "missing_trace_p50_ms": quantile_ms(&misses, 0.5),
        "missing_trace_p99_ms": quantile_ms(&misses, 0.99),
    });
    print_summary(&summary, a.json);
    db.close()?;
    Ok(())
}
