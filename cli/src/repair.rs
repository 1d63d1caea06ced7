//! `sextant repair`: make a damaged data directory openable again,
//! keeping everything that verifies (the engine's `repair` does the work;
//! this prints what it did).

use std::path::Path;

use sextant_storage::BlockOutcome;
use sextant_wal::StdFs;

use crate::CliResult;

/// Repairs the WAL and the blocks of `data_dir` and says what was kept.
pub fn run(data_dir: &Path) -> CliResult {
    let report = sextant_storage::repair(data_dir, &StdFs)?;
    if report.wal.segments.is_empty() {
        println!("WAL intact");
    }
    for s in &report.wal.segments {
        if s.recreated && s.kept == 0 && s.dropped_bytes == 0 {
            println!("WAL segment {} was missing; recreated empty", s.segment);
            continue;
        }
        println!(
            "WAL segment {}: {}kept {} intact record(s), dropped {} damaged byte(s){}",
            s.segment,
            if s.recreated {
                "header rewritten; "
            } else {
                ""
            },
            s.kept,
            s.dropped_bytes,
            s.first_bad
                .map_or(String::new(), |o| format!(" (first damage at offset {o})"))
        );
    }
    for b in &report.blocks {
        match &b.outcome {
            BlockOutcome::Salvaged {
                series_kept,
                series_lost,
                samples_kept,
                samples_before,
                records_kept,
                record_frames_lost,
            } => println!(
                "block {:020}: {}; rewritten with {series_kept} series ({series_lost} lost), \
                 {samples_kept} of {samples_before} samples, {records_kept} log records and \
                 spans ({record_frames_lost} frame(s) lost); the damaged copy is {:020}.corrupt",
                b.seq, b.damage, b.seq
            ),
            BlockOutcome::SetAside => println!(
                "block {:020}: {}; set aside whole as {:020}.corrupt",
                b.seq, b.damage, b.seq
            ),
        }
    }
    println!("{} damaged block(s)", report.blocks.len());
    Ok(())
}
