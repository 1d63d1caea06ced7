//! `sextant import openmetrics FILE`: backfill from OpenMetrics text.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use sextant_storage::{Db, Durability, Labels, Options, Sample, SeriesWrite, WriteBatch};

use crate::openmetrics;
use crate::{CliError, CliResult};

/// Input formats.
#[derive(Subcommand)]
pub enum Format {
    /// OpenMetrics text, one sample per line (as promtool backfill takes).
    Openmetrics {
        /// The file to read.
        file: PathBuf,
        /// Leave blocks uncompacted after the import.
        #[arg(long)]
        no_compact: bool,
    },
}

/// Samples per write batch.
const BATCH: usize = 20_000;
/// Samples in the head before the importer flushes it to blocks.
const FLUSH_EVERY: u64 = 40_000_000;

/// Imports a file into the database at `data_dir`, then flushes and compacts.
pub fn run(data_dir: &Path, format: Format) -> CliResult {
    let Format::Openmetrics { file, no_compact } = format;
    let opts = Options {
        // Backfill: durability comes from the final flush.
        durability: Durability::Never,
        background: false,
        ..Options::default()
    };
    let db = Db::open(data_dir, opts)?;
    let path_s = file.display().to_string();
    let io_err = |source| CliError::Io {
        path: path_s.clone(),
        source,
    };
    let f = File::open(&file).map_err(io_err)?;
    let size = f.metadata().map_err(io_err)?.len();
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, f);
    let mut line = String::new();
    let (mut lineno, mut read, mut samples, mut since_flush) = (0u64, 0u64, 0u64, 0u64);
    let mut batch = WriteBatch::default();
    let mut pending = 0usize;
    let mut current: Option<(String, Labels)> = None;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(io_err)?;
        if n == 0 {
            break;
        }
        lineno += 1;
        read += n as u64;
        if lineno % 65_536 == 0 {
            bar.set_position(read);
        }
        let parse_err = |message: String| CliError::Parse {
            path: path_s.clone(),
            line: lineno,
            message,
        };
        let Some(l) = openmetrics::parse_line(&line).map_err(parse_err)? else {
            continue;
        };
        let ts = l
            .ts_ms
            .ok_or_else(|| parse_err("backfill needs a timestamp on every sample".into()))?;
        let same = current.as_ref().is_some_and(|(s, _)| s == l.series);
        if !same {
            let labels = openmetrics::parse_series(l.series).map_err(parse_err)?;
            current = Some((l.series.to_string(), labels.clone()));
            batch.series.push(SeriesWrite {
                labels,
                samples: Vec::new(),
                histograms: Vec::new(),
                exemplars: Vec::new(),
            });
        }
        let Some(sw) = batch.series.last_mut() else {
            continue;
        };
        sw.samples.push(Sample::new(ts, l.value));
        sw.exemplars.extend(l.exemplar);
        pending += 1;
        if pending >= BATCH {
            db.write(&batch)?;
            samples += pending as u64;
            since_flush += pending as u64;
            pending = 0;
            // Keep the current series open in the next batch.
            let last = batch.series.pop();
            batch.series.clear();
            if let Some(mut s) = last {
                s.samples.clear();
                s.exemplars.clear();
                batch.series.push(s);
            }
            if since_flush >= FLUSH_EVERY {
                db.flush()?;
                since_flush = 0;
            }
        }
    }
    if pending > 0 {
        db.write(&batch)?;
        samples += pending as u64;
    }
    bar.finish_and_clear();
    db.flush()?;
    if !no_compact {
        db.compact()?;
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = db.stats();
    let bytes = stats.block_bytes();
    println!(
        "imported {samples} samples from {lineno} lines in {secs:.1}s ({:.0} samples/s); {} blocks, {bytes} bytes, {:.3} bytes/sample",
        samples as f64 / secs.max(1e-9),
        stats.blocks.len(),
        bytes as f64 / samples.max(1) as f64
    );
    db.close()?;
    Ok(())
}
