//! Compaction: blocks that fall in one aligned window of a larger range are
//! merged into one block, so a query touches fewer files and long series
//! compress better. Ranges grow by 3× from the block range up to
//! `max_block_range_ms` (2 h, 6 h, 18 h, 54 h by default).
//!
//! A window that may still receive samples is left alone, except that
//! flushes bounded by head size pile blocks up in the open 2 h window: once
//! [`TIER_FANOUT`] of them are of about one size they are merged, so a busy
//! window holds O(log n) blocks and each sample is rewritten O(log n) times.
//!
//! Crash order: the merged block is written and renamed into place (as in
//! flush) listing its parents in `meta`; then the parents are deleted and
//! `blocks/` fsynced. A crash in between leaves parents that open() deletes
//! because a live block names them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::block::{
    Block, BlockMeta, BlockWriter, Compression, FrameCursor, Written, remove_block_dirs,
};
use crate::db::{Db, Inner, sort_blocks};
use crate::error::Result;
use crate::exemplar::Exemplar;
use crate::head::rows::Record;
use crate::labels::Labels;
use crate::model::{LogRecord, Span};
use crate::select::merge_samples;

/// zstd level of compacted blocks: they are written once and read for
/// their whole life, so size matters more than write speed.
pub(crate) const COMPACT_LEVEL: i32 = 9;
/// Blocks of about one size merged together in a still-open window.
const TIER_FANOUT: usize = 4;

/// The [`TIER_FANOUT`] smallest blocks of `group` whose sizes (samples,
/// log records and spans; bytes would be dominated by the series table in
/// small blocks) are within a factor of two of each other, if there are
/// that many. The factor is below the fanout, so a merged block is not
/// merged again until [`TIER_FANOUT`] of its size exist: each sample is
/// rewritten once per tier.
fn same_size_tier(mut group: Vec<Arc<Block>>) -> Option<Vec<Arc<Block>>> {
    let rows = |b: &Arc<Block>| {
        let m = b.meta();
        m.samples + m.logs + m.spans
    };
    group.sort_by_key(rows);
    let start = group
        .windows(TIER_FANOUT)
        .position(|w| rows(&w[TIER_FANOUT - 1]) <= rows(&w[0]).saturating_mul(2))?;
    group.truncate(start + TIER_FANOUT);
    Some(group.split_off(start))
}

impl Db {
    /// Merges every group of blocks that shares a compaction window,
    /// including the newest, still-open window. The background thread does
    /// the same but leaves windows that may still receive samples.
    pub fn compact(&self) -> Result<()> {
        self.inner.compact(true)
    }
}

/// How far the newest data must have moved past a window before the
/// window counts as closed and its blocks are merged. Samples may still
/// arrive for it later (out-of-order writes of any age are accepted): they
/// land in blocks of their own, which the next pass merges in.
const SETTLE_MS: i64 = 10 * 60_000;

impl Inner {
    /// Compaction ranges. With age retention the largest is capped at a
    /// tenth of it, so retention can delete data in small steps.
    fn ranges(&self) -> Vec<i64> {
        let mut max = self.opts.max_block_range_ms;
        if let Some(keep) = self.opts.retention {
            max = max.min(i64::try_from(keep.as_millis() / 10).unwrap_or(i64::MAX));
        }
        let mut r = vec![self.opts.block_range_ms.max(1)];
        while let Some(&last) = r.last() {
            let next = last.saturating_mul(3);
            if next > max {
                break;
            }
            r.push(next);
        }
        r
    }

    /// The next group of blocks to merge and the level of the result.
    fn plan(&self, blocks: &[Arc<Block>], force: bool) -> Option<(Vec<Arc<Block>>, u32)> {
        let head_max = self.head.read().time_range().map(|(_, hi)| hi);
        let newest = blocks
            .iter()
            .map(|b| b.meta().max_t)
            .chain(head_max)
            .max()?;
        for (level, range) in self.ranges().into_iter().enumerate() {
            let mut windows: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
            for b in blocks {
                let w = b.meta().min_t.div_euclid(range);
                if b.meta().max_t.div_euclid(range) == w {
                    windows.entry(w).or_default().push(Arc::clone(b));
                }
            }
            for (w, group) in windows {
                let window_end = w.saturating_add(1).saturating_mul(range);
                let settle = self.opts.ooo_window_ms.min(SETTLE_MS);
                let closed = window_end.saturating_add(settle) <= newest;
                if group.len() >= 2 && (force || closed) {
                    return Some((group, level as u32));
                }
                if level == 0
                    && let Some(tier) = same_size_tier(group)
                {
                    return Some((tier, 0));
                }
            }
        }
        None
    }

    pub(crate) fn compact(&self, force: bool) -> Result<()> {
        loop {
            // The background pass lets a flush the head has come to need
            // go first, between two merges: a merge can take seconds while
            // ingest goes on, and the head overshot its limit by a third
            // when compactions ran back to back (issue 19).
            if !force && self.needs_flush(&self.head.read()) {
                self.flush()?;
            }
            let _m = self.maintenance.lock();
            self.check_writable()?;
            let blocks = Arc::clone(&self.blocks.read());
            let Some((group, level)) = self.plan(&blocks, force) else {
                return Ok(());
            };
            let res = self.merge(&group, level);
            drop((blocks, group));
            self.release_memory();
            res?;
        }
    }

    fn merge(&self, group: &[Arc<Block>], level: u32) -> Result<()> {
        let mut sorted: Vec<&Arc<Block>> = group.iter().collect();
        sorted.sort_by_key(|b| b.meta().seq);
        let meta = BlockMeta {
            seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
            level,
            wal_replay_from: sorted
                .iter()
                .map(|b| b.meta().wal_replay_from)
                .max()
                .unwrap_or(0),
            parents: sorted.iter().map(|b| b.meta().seq).collect(),
            ..BlockMeta::default()
        };
        let mut w = BlockWriter::new(
            self.vfs.as_ref(),
            &self.blocks_dir,
            meta,
            Compression {
                level: COMPACT_LEVEL,
                records: COMPACT_LEVEL,
            },
        )?;
        // (labels, rank) of every series of every parent, merged by labels.
        let mut all: Vec<(&Labels, usize, u32)> = Vec::new();
        for (rank, b) in sorted.iter().enumerate() {
            all.extend((0..b.num_series()).map(|i| (b.labels(i), rank, i)));
        }
        all.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
        // Every frame is read once: past the shared cache.
        let mut caches: Vec<FrameCursor> = sorted.iter().map(|_| FrameCursor::uncached()).collect();
        let mut i = 0;
        while i < all.len() {
            let labels = all[i].0;
            let (mut parts, mut hparts) = (Vec::new(), Vec::new());
            let mut ex: Vec<Exemplar> = Vec::new();
            while i < all.len() && all[i].0 == labels {
                let (_, rank, idx) = all[i];
                parts.push(sorted[rank].samples(idx, i64::MIN, i64::MAX, &mut caches[rank])?);
                hparts.push(sorted[rank].histograms(idx, i64::MIN, i64::MAX, &mut caches[rank])?);
                ex.extend(sorted[rank].exemplars(idx, i64::MIN, i64::MAX));
                i += 1;
            }
            ex.sort_by(|a, b| a.t.cmp(&b.t).then(a.trace_id.cmp(&b.trace_id)));
            ex.dedup_by(|a, b| a.t == b.t && a.trace_id == b.trace_id && a.span_id == b.span_id);
            w.add(labels, &merge_samples(parts), &merge_samples(hparts), &ex)?;
        }
        let (logs, spans) = merge_records(&sorted)?;
        w.add_logs(&logs.iter().collect::<Vec<_>>())?;
        w.add_spans(&spans.iter().collect::<Vec<_>>())?;
        let Written { meta, labels } = match w.finish() {
            Ok(w) => w,
            Err(e) => {
                self.poison(&e);
                return Err(e);
            }
        };
        let merged = Arc::new(Block::open_written(
            self.vfs.as_ref(),
            &self.block_path(meta.seq),
            &labels,
        )?);
        drop(labels);
        {
            let mut blocks = self.blocks.write();
            let mut next: Vec<Arc<Block>> = blocks
                .iter()
                .filter(|b| !meta.parents.contains(&b.meta().seq))
                .cloned()
                .chain([merged])
                .collect();
            sort_blocks(&mut next);
            *blocks = Arc::new(next);
        }
        self.remove_blocks(group)?;
        tracing::info!(seq = meta.seq, level, parents = ?meta.parents, samples = meta.samples, "compacted blocks");
        Ok(())
    }

    /// Deletes block directories (already out of the live list). Readers
    /// that still hold a block keep working: its files are mapped or read.
    pub(crate) fn remove_blocks(&self, gone: &[Arc<Block>]) -> Result<()> {
        let dirs: Vec<&std::path::Path> = gone.iter().map(|b| b.dir()).collect();
        remove_block_dirs(self.vfs.as_ref(), &self.blocks_dir, &dirs)
    }

    /// Deletes blocks past the age or size retention; returns how many.
    pub(crate) fn apply_retention(&self) -> Result<usize> {
        let _m = self.maintenance.lock();
        let blocks = Arc::clone(&self.blocks.read());
        let head_max = self.head.read().time_range().map(|(_, hi)| hi);
        let Some(newest) = blocks.iter().map(|b| b.meta().max_t).chain(head_max).max() else {
            return Ok(0);
        };
        let mut by_age: Vec<Arc<Block>> = blocks.iter().cloned().collect();
        by_age.sort_by_key(|b| (b.meta().max_t, b.meta().seq));
        let mut gone: Vec<Arc<Block>> = Vec::new();
        if let Some(keep) = self.opts.retention {
            let cutoff = newest.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
            gone.extend(by_age.iter().filter(|b| b.meta().max_t < cutoff).cloned());
        }
        if let Some(max) = self.opts.max_bytes {
            let mut total: u64 = by_age.iter().map(|b| b.size_bytes()).sum::<u64>()
                - gone.iter().map(|b| b.size_bytes()).sum::<u64>();
            for b in &by_age {
                if total <= max {
                    break;
                }
                if !gone.iter().any(|g| Arc::ptr_eq(g, b)) {
                    total -= b.size_bytes();
                    gone.push(Arc::clone(b));
                }
            }
        }
        if gone.is_empty() {
            return Ok(0);
        }
        {
            let mut live = self.blocks.write();
            let next: Vec<Arc<Block>> = live
                .iter()
                .filter(|b| !gone.iter().any(|g| Arc::ptr_eq(g, b)))
                .cloned()
                .collect();
            *live = Arc::new(next);
        }
        self.remove_blocks(&gone)?;
        tracing::info!(blocks = gone.len(), "retention deleted blocks");
        Ok(gone.len())
    }
}

/// Logs (time order) and spans (block order) of the parents, in memory,
/// without the copies a crash could have left in two parents.
fn merge_records(parents: &[&Arc<Block>]) -> Result<(Vec<LogRecord>, Vec<Span>)> {
    let mut logs = Vec::new();
    let mut spans = Vec::new();
    for b in parents {
        if let Some(l) = b.logs() {
            logs.extend(l.records.all()?);
        }
        if let Some(s) = b.spans() {
            spans.extend(s.records.all()?);
        }
    }
    logs.sort_by_key(|r| r.time_ns);
    crate::logs::dedup(&mut logs);
    spans.sort_by(Span::block_order);
    crate::spans::dedup(&mut spans);
    Ok((logs, spans))
}

impl Db {
    /// Deletes blocks outside the configured retention (age and size) now;
    /// the background thread also does this every second.
    pub fn apply_retention(&self) -> Result<usize> {
        self.inner.apply_retention()
    }
}
