//! `sextant repair`: make a damaged data directory openable again.

use std::path::Path;

use sextant_wal::{StdFs, Vfs, Wal};

use super::CliResult;

/// Truncates a damaged WAL at its first bad record and moves corrupt
/// blocks aside.
pub fn run(data_dir: &Path) -> CliResult {
    match Wal::repair(&data_dir.join("wal"), &StdFs)? {
        Some((segment, offset)) => println!(
            "WAL truncated at segment {segment} offset {offset}; records after it were removed"
        ),
        None => println!("WAL intact"),
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
