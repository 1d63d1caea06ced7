//! `sextant repair`: make a damaged data directory openable again.

use std::path::Path;

use sextant_wal::{StdFs, Vfs, Wal};

use super::CliResult;

/// Drops the damaged records of a WAL (keeping every intact one) and
/// moves corrupt blocks aside.
pub fn run(data_dir: &Path) -> CliResult {
    let report = Wal::repair(&data_dir.join("wal"), &StdFs)?;
    if report.segments.is_empty() {
        println!("WAL intact");
    }
    for s in &report.segments {
        match (s.first_bad, s.recreated) {
            (_, true) if s.kept == 0 && s.dropped_bytes == 0 => {
                println!("WAL segment {} was missing; recreated empty", s.segment)
            }
            (first_bad, recreated) => println!(
                "WAL segment {}: {}kept {} intact record(s), dropped {} damaged byte(s){}",
                s.segment,
                if recreated { "header rewritten; " } else { "" },
                s.kept,
                s.dropped_bytes,
                first_bad.map_or(String::new(), |o| format!(" (first damage at offset {o})"))
            ),
        }
    }
    let blocks = data_dir.join("blocks");
    let mut entries = StdFs.list(&blocks).unwrap_or_default();
    entries.sort();
    let mut bad = 0;
    for dir in entries {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let check = sextant_storage::Block::open(&StdFs, &dir).and_then(|b| b.verify());
        if let Err(e) = check {
            let aside = blocks.join(format!("{name}.corrupt"));
            std::fs::rename(&dir, &aside).map_err(|source| super::CliError::Io {
                path: dir.display().to_string(),
                source,
            })?;
            println!(
                "block {name} is corrupt ({e}); moved to {}",
                aside.display()
            );
            bad += 1;
        }
    }
    println!("{bad} corrupt block(s) set aside");
    Ok(())
}
