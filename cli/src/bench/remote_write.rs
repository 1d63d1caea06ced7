//! `sextant bench remote-write`: the server's remote_write path (snappy,
//! protobuf, label checks, the storage write) in-process, over a dataset
//! of pre-encoded requests made by `../shared/bench/gen.py remote-write`,
//! so its CPU cost per sample can be profiled without HTTP or a client.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde_json::json;

use super::{cpu_seconds, print_summary, rss_bytes, scratch_db, tree_bytes};
use crate::{CliError, CliResult};
use sextant_server::remote_write::{LabelCache, decode};

/// Options of `sextant bench remote-write`.
#[derive(Args)]
pub struct RemoteWriteArgs {
    /// Directory with `requests.bin` and `index.npy` (gen.py remote-write).
    #[arg(long)]
    dataset: PathBuf,
    /// Only the first N requests.
    #[arg(long)]
    requests: Option<usize>,
    /// Decode only; do not write.
    #[arg(long)]
    decode_only: bool,
    /// WAL durability: always, never, or interval:MS.
    #[arg(long, default_value = "always")]
    sync: String,
    /// Print one JSON line.
    #[arg(long)]
    json: bool,
}

/// `(offset, length)` of each request, from the `.npy` index (int64 rows
/// of offset, length, window, chunk, samples).
fn index(path: &Path) -> Result<Vec<(usize, usize)>, CliError> {
    let bytes = std::fs::read(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let bad = || CliError::Usage(format!("{}: not an int64 .npy index", path.display()));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad());
    }
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header =
        std::str::from_utf8(bytes.get(10..10 + header_len).ok_or_else(bad)?).map_err(|_| bad())?;
    let cols: usize = header
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|shape| shape.split(',').nth(1))
        .and_then(|c| c.trim().parse().ok())
        .ok_or_else(bad)?;
    let data = &bytes[10 + header_len..];
    let int = |i: usize| -> usize {
        i64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8])) as usize
    };
    Ok((0..data.len() / 8 / cols)
        .map(|r| (int(r * cols), int(r * cols + 1)))
        .collect())
}

pub fn run(data_dir: &Path, a: RemoteWriteArgs) -> CliResult {
    let mut idx = index(&a.dataset.join("index.npy"))?;
    if let Some(n) = a.requests {
        idx.truncate(n);
    }
    let path = a.dataset.join("requests.bin");
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    // Only the requests used, not the whole (possibly GB) file.
    let used = idx.iter().map(|(o, l)| o + l).max().unwrap_or(0);
    let mut requests = Vec::with_capacity(used);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(&path).map_err(io)?, used as u64),
        &mut requests,
    )
    .map_err(io)?;
    let (dir, db) = scratch_db(data_dir, "bench-rw-", &a.sync)?;
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let (mut samples, mut decode_s) = (0usize, 0.0);
    let cache = LabelCache::new(2_000_000);
    for (off, len) in idx.iter().copied() {
        let body = requests
            .get(off..off + len)
            .ok_or_else(|| CliError::Usage("index beyond requests.bin".into()))?;
        let td = Instant::now();
        let mut d = decode(body, 1 << 30, &cache).map_err(|e| CliError::Usage(e.to_string()))?;
        decode_s += td.elapsed().as_secs_f64();
        samples += d.batch.num_samples();
        if !a.decode_only {
            d.store(&db, &cache, usize::MAX)?;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let stats = db.stats();
    let summary = json!({
        "head_bytes_per_sample": stats.head_bytes as f64 / stats.head_samples.max(1) as f64,
        "requests": idx.len(),
        "samples": samples,
        "samples_per_sec": (samples as f64 / wall).round(),
        "cpu_us_per_sample": cpu * 1e6 / samples.max(1) as f64,
        "decode_us_per_sample": decode_s * 1e6 / samples.max(1) as f64,
        // The requests are held in memory by the bench, not by a server.
        "rss_mib": rss_bytes() / (1 << 20),
        "rss_mib_without_requests": rss_bytes().saturating_sub(requests.capacity() as u64) / (1 << 20),
        "wal_bytes": tree_bytes(dir.path()),
    });
    print_summary(&summary, a.json);
    db.close()?;
    Ok(())
}
