//! `sextant bench write`: sample ingest throughput of the storage engine,
//! like `promtool tsdb bench write`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use sextant_storage::{Labels, Sample, SeriesWrite, WriteBatch};

use super::{cpu_seconds, rss_bytes, scratch_db};
use crate::{CliError, CliResult};

/// Options of `sextant bench write`.
#[derive(Args)]
pub struct WriteArgs {
    /// Series written.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Samples per series.
    #[arg(long, default_value_t = 300)]
    scrapes: usize,
    /// Samples per write call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Writer threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// WAL durability: always, never, or interval:MS.
    #[arg(long, default_value = "always")]
    sync: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

const NAMES: [&str; 10] = [
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "go_goroutines",
    "node_network_receive_bytes_total",
    "node_cpu_seconds_total",
    "grpc_server_handled_total",
    "db_query_duration_seconds_sum",
    "up",
];

fn series_labels(i: usize) -> Labels {
    let pod = i / 50;
    let inst = format!(
        "10.{}.{}.{}:9100",
        pod / 65_536 % 256,
        pod / 256 % 256,
        pod % 256
    );
    let pod_name = format!(
        "svc-{:03}-{:08x}",
        pod % 200,
        (pod as u64).wrapping_mul(0x9e37_79b9) as u32
    );
    let svc = format!("svc-{:03}", pod % 200);
    let series = (i % 50).to_string();
    Labels::new([
        ("__name__", NAMES[i % NAMES.len()]),
        ("cluster", "prod-eu-1"),
        ("instance", inst.as_str()),
        ("job", "kubernetes-pods"),
        ("namespace", "payments"),
        ("pod", pod_name.as_str()),
        ("service", svc.as_str()),
        ("series", series.as_str()),
    ])
    .unwrap_or_else(|_| Labels::empty())
}

pub fn run(data_dir: &Path, a: WriteArgs) -> CliResult {
    if a.batch == 0 || a.threads == 0 || a.series == 0 {
        return Err(CliError::Usage(
            "--series, --batch and --threads must be positive".into(),
        ));
    }
    let (_dir, db) = scratch_db(data_dir, "bench-write-", &a.sync)?;
    let db = Arc::new(db);
    let labels: Arc<Vec<Labels>> = Arc::new((0..a.series).map(series_labels).collect());
    let rss0 = rss_bytes();
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let start_ms = 1_700_000_000_000i64;
    let handles: Vec<_> = (0..a.threads)
        .map(|t| {
            let (db, labels) = (Arc::clone(&db), Arc::clone(&labels));
            let (threads, batch, scrapes) = (a.threads, a.batch, a.scrapes);
            std::thread::spawn(move || -> Result<u64, sextant_storage::Error> {
                let mine: Vec<usize> = (t..labels.len()).step_by(threads).collect();
                let mut written = 0u64;
                for k in 0..scrapes {
                    let ts = start_ms + k as i64 * 15_000;
                    for group in mine.chunks(batch) {
                        let b = WriteBatch {
                            series: group
                                .iter()
                                .map(|&i| SeriesWrite {
                                    labels: labels[i].clone(),
                                    samples: vec![Sample::new(ts, (k * (i % 17 + 1)) as f64)],
                                    histograms: Vec::new(),
                                    exemplars: Vec::new(),
                                })
                                .collect(),
                        };
                        written += db.write(&b)?.samples as u64;
                    }
                }
                Ok(written)
            })
        })
        .collect();
    let mut samples = 0;
    for h in handles {
        samples += h
            .join()
            .map_err(|_| CliError::Usage("writer thread panicked".into()))??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let rss_per_series = rss_bytes().saturating_sub(rss0) as f64 / a.series as f64;
    let stats = db.stats();
    let per_series = stats.head_bytes as f64 / stats.head_series.max(1) as f64;
    let chunk_share = stats.head_samples as f64 * 1.4 / stats.head_series.max(1) as f64;
    let rate = samples as f64 / secs.max(1e-9);
    if a.json {
        println!(
            "{}",
            json!({
                "samples": samples, "series": a.series, "threads": a.threads, "batch": a.batch,
                "sync": a.sync, "seconds": secs, "samples_per_sec": rate,
                "cpu_us_per_sample": cpu * 1e6 / samples.max(1) as f64,
                "head_bytes": stats.head_bytes, "head_bytes_per_series": per_series,
                "rss_growth_per_series": rss_per_series,
            })
        );
    } else {
        println!(
            "{samples} samples, {} series, {} thread(s), batch {}, sync {}: {secs:.2}s, {rate:.0} samples/s, {:.3} CPU-µs/sample",
            a.series,
            a.threads,
            a.batch,
            a.sync,
            cpu * 1e6 / samples.max(1) as f64
        );
        println!(
            "head: {} bytes for {} series = {per_series:.0} bytes/series (of which ~{chunk_share:.0} sample data); \
             process RSS grew {rss_per_series:.0} bytes/series",
            stats.head_bytes, stats.head_series
        );
    }
    db.close()?;
    Ok(())
}
