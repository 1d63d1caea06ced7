//! `sextant stats`: what is stored and what it costs on disk.

use std::path::Path;

use clap::Args;
use serde_json::json;

use crate::CliResult;

/// Options of `sextant stats`.
#[derive(Args)]
pub struct StatsArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also re-read every block and check every checksum.
    #[arg(long)]
    verify: bool,
}

/// Prints the database's statistics, optionally verifying every checksum.
pub fn run(data_dir: &Path, args: &StatsArgs) -> CliResult {
    let db = crate::open_data_dir(data_dir)?;
    let stats = db.stats();
    let series = db.series(&[], i64::MIN, i64::MAX)?.len() as u64;
    let samples = stats.block_samples() + stats.head_samples;
    let bytes = stats.block_bytes() + stats.wal_bytes;
    if args.verify {
        for b in &stats.blocks {
            let dir = data_dir.join("blocks").join(format!("{:020}", b.meta.seq));
            sextant_storage::Block::open(&sextant_wal::StdFs, &dir)?.verify()?;
        }
    }
    let per = |b: u64, n: u64| if n == 0 { 0.0 } else { b as f64 / n as f64 };
    if args.json {
        let blocks: Vec<_> = stats
            .blocks
            .iter()
            .map(|b| {
                json!({
                    "seq": b.meta.seq, "min_t": b.meta.min_t, "max_t": b.meta.max_t, "level": b.meta.level,
                    "series": b.meta.series, "samples": b.meta.samples, "chunks": b.meta.chunks,
                    "exemplars": b.meta.exemplars, "logs": b.meta.logs, "spans": b.meta.spans,
                    "bytes": b.bytes, "chunk_bytes": b.chunk_bytes,
                    "bytes_per_sample": per(b.bytes, b.meta.samples),
                })
            })
            .collect();
        let out = json!({
            "series": series, "samples": samples, "bytes": bytes,
            "bytes_per_sample": per(bytes, samples),
            "block_bytes": stats.block_bytes(), "block_samples": stats.block_samples(),
            "wal_bytes": stats.wal_bytes, "head_series": stats.head_series,
            "head_samples": stats.head_samples, "head_bytes": stats.head_bytes,
            "head_logs": stats.head_logs, "head_spans": stats.head_spans,
            "logs": stats.head_logs + stats.blocks.iter().map(|b| b.meta.logs).sum::<u64>(),
            "spans": stats.head_spans + stats.blocks.iter().map(|b| b.meta.spans).sum::<u64>(),
            "verified": args.verify, "blocks": blocks,
        });
        println!("{out}");
    } else {
        println!(
            "series {series}  samples {samples}  bytes on disk {bytes}  ({:.3} bytes/sample)",
            per(bytes, samples)
        );
        println!(
            "head: {} series, {} samples, {} logs, {} spans, ~{} bytes in memory; WAL {} bytes",
            stats.head_series,
            stats.head_samples,
            stats.head_logs,
            stats.head_spans,
            stats.head_bytes,
            stats.wal_bytes
        );
        println!(
            "{:>8} {:>15} {:>15} {:>5} {:>9} {:>12} {:>10} {:>10} {:>12} {:>9}",
            "block",
            "min_t",
            "max_t",
            "level",
            "series",
            "samples",
            "logs",
            "spans",
            "bytes",
            "B/sample"
        );
        for b in &stats.blocks {
            println!(
                "{:>8} {:>15} {:>15} {:>5} {:>9} {:>12} {:>10} {:>10} {:>12} {:>9.3}",
                b.meta.seq,
                b.meta.min_t,
                b.meta.max_t,
                b.meta.level,
                b.meta.series,
                b.meta.samples,
                b.meta.logs,
                b.meta.spans,
                b.bytes,
                per(b.bytes, b.meta.samples)
            );
        }
        if args.verify {
            println!("all blocks verified");
        }
    }
    db.close()?;
    Ok(())
}
