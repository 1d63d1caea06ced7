//! Repair of a damaged data directory, keeping everything that verifies:
//! what `sextant repair` runs, and what an embedder runs when
//! [`crate::Db::open`] reports corruption.
//!
//! - The WAL: damaged frames are dropped and every frame that verifies
//!   (and decodes as a record of this engine) is kept
//!   ([`sextant_wal::Wal::repair`]).
//! - Blocks: a block whose `chunks`, `logs` or `spans` file has damaged
//!   frames, or whose `meta`, `postings` or `exemplars` file does not
//!   verify, is rewritten with every series and record that still reads
//!   (postings rebuilt; a lost meta's WAL marks taken as none, which only
//!   makes a replay read more); the damaged copy is kept beside it as
//!   `<seq>.corrupt`. A block whose `series` table does not verify is set
//!   aside whole as `<seq>.corrupt`: without it the chunks cannot be told
//!   apart.

use std::path::Path;

use sextant_wal::{Vfs, Wal};

use crate::block::{Block, BlockMeta, BlockWriter, Compression, FrameCursor, block_dir};
use crate::compact::COMPACT_LEVEL;
use crate::error::{Error, Result};
use crate::walrec;

/// What [`repair`] did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// The WAL's segments rewritten.
    pub wal: sextant_wal::RepairReport,
    /// Blocks that did not verify, in sequence order.
    pub blocks: Vec<BlockRepair>,
}

/// One damaged block and what became of it.
#[derive(Debug)]
pub struct BlockRepair {
    /// Its sequence number.
    pub seq: u64,
    /// What was wrong.
    pub damage: String,
    /// What was done.
    pub outcome: BlockOutcome,
}

/// What [`repair`] did with a damaged block.
#[derive(Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Rewritten with everything that still reads.
    Salvaged {
        /// Series kept whole.
        series_kept: u64,
        /// Series lost (a chunk of theirs did not verify).
        series_lost: u64,
        /// Samples kept.
        samples_kept: u64,
        /// Samples the block held before.
        samples_before: u64,
        /// Log records and spans kept.
        records_kept: u64,
        /// Log and span frames lost.
        record_frames_lost: usize,
    },
    /// Moved to `<seq>.corrupt` whole.
    SetAside,
}

/// Repairs the data directory `dir` (the server must not be running).
pub fn repair(dir: &Path, vfs: &dyn Vfs) -> Result<RepairReport> {
    let wal = Wal::repair(&dir.join("wal"), vfs, &|typ, payload| {
        walrec::decode(typ, payload).is_ok()
    })?;
    let blocks_dir = dir.join("blocks");
    let mut entries = vfs.list(&blocks_dir).unwrap_or_default();
    entries.sort();
    let mut blocks = Vec::new();
    for path in entries {
        let Some(seq) = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let (damage, outcome) = match Block::open(vfs, &path) {
            Ok(block) => match block.verify() {
                Ok(()) => continue,
                Err(e) => (e.to_string(), salvage(vfs, &blocks_dir, &block)?),
            },
            Err(e) => match Block::open_for_repair(vfs, &path) {
                Ok(block) => (e.to_string(), salvage(vfs, &blocks_dir, &block)?),
                Err(_) => {
                    set_aside(vfs, &blocks_dir, seq)?;
                    (e.to_string(), BlockOutcome::SetAside)
                }
            },
        };
        blocks.push(BlockRepair {
            seq,
            damage,
            outcome,
        });
    }
    Ok(RepairReport { wal, blocks })
}

/// Renames block `seq` to `<seq>.corrupt`, durably.
fn set_aside(vfs: &dyn Vfs, blocks_dir: &Path, seq: u64) -> Result<()> {
    let from = block_dir(blocks_dir, seq);
    let to = blocks_dir.join(format!("{seq:020}.corrupt"));
    vfs.rename(&from, &to)
        .map_err(|e| Error::io("rename", &from, e))?;
    vfs.sync_dir(blocks_dir)
        .map_err(|e| Error::io("fsync dir", blocks_dir, e))
}

/// Rewrites `block` with what still reads. The new block is written in
/// full under `<seq>.tmp` before the damaged one is set aside and the new
/// one renamed into place.
fn salvage(vfs: &dyn Vfs, blocks_dir: &Path, block: &Block) -> Result<BlockOutcome> {
    let old = block.meta();
    let mut w = BlockWriter::new(
        vfs,
        blocks_dir,
        BlockMeta {
            seq: old.seq,
            level: old.level,
            wal_replay_from: old.wal_replay_from,
            parents: old.parents.clone(),
            flush_segment: old.flush_segment,
            ..BlockMeta::default()
        },
        // A rewritten block is as a compaction writes it.
        Compression {
            level: COMPACT_LEVEL,
            records: COMPACT_LEVEL,
        },
    )?;
    let mut cursor = FrameCursor::uncached();
    let (mut series_kept, mut series_lost, mut samples_kept) = (0, 0, 0);
    for idx in 0..block.num_series() {
        match (
            block.samples(idx, i64::MIN, i64::MAX, &mut cursor),
            block.histograms(idx, i64::MIN, i64::MAX, &mut cursor),
        ) {
            (Ok(samples), Ok(histograms)) => {
                series_kept += 1;
                samples_kept += (samples.len() + histograms.len()) as u64;
                w.add(
                    block.labels(idx),
                    &samples,
                    &histograms,
                    &block.exemplars(idx, i64::MIN, i64::MAX),
                )?;
            }
            _ => series_lost += 1,
        }
    }
    let (mut records_kept, mut record_frames_lost) = (0, 0);
    if let Some(l) = block.logs() {
        let (rows, bad) = l.records.file.salvage();
        records_kept += rows.len() as u64;
        record_frames_lost += bad;
        w.add_logs(&rows.iter().collect::<Vec<_>>())?;
    }
    if let Some(s) = block.spans() {
        let (rows, bad) = s.records.file.salvage();
        records_kept += rows.len() as u64;
        record_frames_lost += bad;
        w.add_spans(&rows.iter().collect::<Vec<_>>())?;
    }
    let outcome = BlockOutcome::Salvaged {
        series_kept,
        series_lost,
        samples_kept,
        samples_before: old.samples,
        records_kept,
        record_frames_lost,
    };
    if w.is_empty() {
        w.discard()?;
        set_aside(vfs, blocks_dir, old.seq)?;
    } else {
        set_aside(vfs, blocks_dir, old.seq)?;
        w.finish()?;
    }
    Ok(outcome)
}
