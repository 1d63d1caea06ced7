//! Flush: the head becomes immutable blocks, one per time partition it
//! touches, and the WAL segments it came from are deleted.
//!
//! Crash order: (1) the WAL is rotated, so the frozen head's records are all
//! in segments below S; (2) each block is written into `<seq>.tmp/`, its
//! files and the directory fsynced, renamed, and `blocks/` fsynced; (3) only
//! then are segments below S deleted. A crash before (3) replays the frozen
//! head's records again on open; reads deduplicate equal timestamps, and the
//! next compaction merges the copies, so nothing is lost or doubled.
//!
//! Only the last block of a flush records that segments below S are
//! covered; the others keep the previous mark. A crash between two blocks
//! of one flush therefore replays the whole frozen head again instead of
//! deleting segments whose data is in a block not yet written.
//! Every block of the flush records S as its `flush_segment`; open deletes
//! blocks of a flush whose last block never landed, so that replay does
//! not store their data twice.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::block::{Block, BlockMeta, BlockWriter, Compression, Written};
use crate::db::{Db, Inner, sort_blocks};
use crate::error::Result;
use crate::head::Head;
use crate::walrec;

/// zstd level of flushed blocks. Flushes run while ingest goes on and
/// compaction recompresses every flushed block at level 9 once its window
/// merges (the open window's size tiers, then 2 h → 6 h): level 9 here
/// cost ~3% of remote_write ingest CPU to save ~2% of the bytes of blocks
/// that are rewritten soon after.
const FLUSH_LEVEL: i32 = 3;
/// zstd level of flushed log and span files. Records are larger than
/// samples, so level 9 would cost most of the flush (about 6 µs a span);
/// level 3 runs ~5× faster and compaction recompresses at level 9.
const FLUSH_RECORDS_LEVEL: i32 = 3;

impl Db {
    /// Writes everything in the head to blocks and truncates the WAL.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

impl Inner {
    pub(crate) fn flush(&self) -> Result<()> {
        let res = self.flush_head();
        self.release_memory();
        res
    }

    fn flush_head(&self) -> Result<()> {
        let _m = self.maintenance.lock();
        self.check_writable()?;
        let (old, segment) = {
            let mut head = self.head.write();
            if head.is_empty() {
                return Ok(());
            }
            // The new head's ids start at 0 again: its segment begins with
            // an epoch record, so a replay that also reads the old head's
            // segments (this flush not finishing) keeps the two apart.
            let segment = match self
                .wal
                .rotate()
                .and_then(|s| self.wal.append(&[(walrec::EPOCH, &[][..])]).map(|()| s))
            {
                Ok(s) => s,
                Err(e) => {
                    self.poison(&e);
                    return Err(e.into());
                }
            };
            let old = std::mem::replace(&mut *head, Arc::new(Head::new(self.opts.max_series)));
            self.frozen.write().push((Arc::clone(&old), segment));
            (old, segment)
        };
        let written = match self.write_head(&old, segment) {
            Ok(m) => m,
            Err(e) => {
                // The frozen head stays readable; its WAL segments stay on
                // disk, so reopening recovers it.
                self.poison(&e);
                return Err(e);
            }
        };
        let mut opened = Vec::with_capacity(written.len());
        let mut metas = Vec::with_capacity(written.len());
        for w in written {
            let dir = self.block_path(w.meta.seq);
            opened.push(Arc::new(Block::open_written(
                self.vfs.as_ref(),
                &dir,
                &w.labels,
            )?));
            metas.push(w.meta);
        }
        {
            let mut blocks = self.blocks.write();
            let mut next: Vec<Arc<Block>> = blocks.iter().cloned().chain(opened).collect();
            sort_blocks(&mut next);
            *blocks = Arc::new(next);
        }
        self.frozen.write().retain(|(h, _)| !Arc::ptr_eq(h, &old));
        if let Err(e) = self.wal.remove_segments_before(segment) {
            self.poison(&e);
            return Err(e.into());
        }
        tracing::info!(
            blocks = metas.len(),
            samples = metas.iter().map(|m| m.samples).sum::<u64>(),
            "flushed head"
        );
        Ok(())
    }

    /// Writes one block per time partition of `head`.
    fn write_head(&self, head: &Head, segment: u64) -> Result<Vec<Written>> {
        let range = self.opts.block_range_ms.max(1);
        let series = head.all_sorted();
        let Some((lo, hi)) = head.time_range() else {
            return Ok(Vec::new());
        };
        let mut partitions: BTreeSet<i64> = if lo.div_euclid(range) == hi.div_euclid(range) {
            BTreeSet::from([lo.div_euclid(range)])
        } else {
            // Only partitions that hold data: a stray sample far away must
            // not make the flush walk every partition in between.
            let mut set = BTreeSet::new();
            for s in &series {
                set.extend(
                    s.samples(i64::MIN, i64::MAX)
                        .iter()
                        .map(|x| x.t.div_euclid(range)),
                );
                set.extend(
                    s.histograms(i64::MIN, i64::MAX)
                        .iter()
                        .map(|x| x.t.div_euclid(range)),
                );
                set.extend(
                    s.exemplars(i64::MIN, i64::MAX)
                        .iter()
                        .map(|e| e.t.div_euclid(range)),
                );
            }
            set
        };
        partitions.extend(head.logs.partitions(range));
        partitions.extend(head.spans.partitions(range));
        let covered_before = self
            .blocks
            .read()
            .iter()
            .map(|b| b.meta().wal_replay_from)
            .max()
            .unwrap_or(0);
        let last = partitions.last().copied();
        let mut metas = Vec::new();
        for p in partitions {
            let start = p.saturating_mul(range);
            let end = start.saturating_add(range - 1);
            let meta = BlockMeta {
                seq: self
                    .next_seq
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                wal_replay_from: if Some(p) == last {
                    segment
                } else {
                    covered_before
                },
                flush_segment: segment,
                ..BlockMeta::default()
            };
            let mut w = BlockWriter::new(
                self.vfs.as_ref(),
                &self.blocks_dir,
                meta,
                Compression {
                    level: FLUSH_LEVEL,
                    records: FLUSH_RECORDS_LEVEL,
                },
            )?;
            for s in &series {
                w.add(
                    &s.labels,
                    &s.samples(start, end),
                    &s.histograms(start, end),
                    &s.exemplars(start, end),
                )?;
            }
            head.logs
                .with_range(start, end, |rows, index| w.add_indexed_logs(rows, index))?;
            head.spans
                .with_range(start, end, |rows| w.add_spans(rows))?;
            if w.is_empty() {
                w.discard()?;
                continue;
            }
            metas.push(w.finish()?);
        }
        Ok(metas)
    }
}
