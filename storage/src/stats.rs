//! Numbers about a database, for `sextant stats` and `/metrics`.

use crate::block::BlockMeta;
use crate::db::Db;

/// Size and content of one block.
#[derive(Debug, Clone)]
pub struct BlockStats {
    /// The block's meta.
    pub meta: BlockMeta,
    /// Bytes of all its files.
    pub bytes: u64,
    /// Bytes of its chunks file.
    pub chunk_bytes: u64,
}

/// Size and content of a database.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Series in the head(s).
    pub head_series: u64,
    /// Samples in the head(s).
    pub head_samples: u64,
    /// Estimated heap bytes of the head(s).
    pub head_bytes: u64,
    /// Log records in the head(s).
    pub head_logs: u64,
    /// Spans in the head(s).
    pub head_spans: u64,
    /// Every block, oldest first.
    pub blocks: Vec<BlockStats>,
    /// Bytes of WAL segments.
    pub wal_bytes: u64,
    /// WAL fsyncs since open and their total time.
    pub wal_sync: sextant_wal::SyncStats,
}

impl Stats {
    /// Samples in blocks.
    pub fn block_samples(&self) -> u64 {
        self.blocks.iter().map(|b| b.meta.samples).sum()
    }

    /// Bytes of all blocks.
    pub fn block_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.bytes).sum()
    }
}

impl Db {
    /// Walks the head and the block list (cost grows with the head).
    pub fn stats(&self) -> Stats {
        let snap_blocks = std::sync::Arc::clone(&self.inner.blocks.read());
        let mut s = Stats::default();
        let mut heads = vec![std::sync::Arc::clone(&self.inner.head.read())];
        heads.extend(
            self.inner
                .frozen
                .read()
                .iter()
                .map(|(h, _)| std::sync::Arc::clone(h)),
        );
        for h in heads {
            let (samples, bytes) = h.footprint();
            s.head_series += h.num_series() as u64;
            s.head_samples += samples;
            s.head_bytes += (bytes + h.logs.bytes() + h.spans.bytes()) as u64;
            s.head_logs += h.logs.len() as u64;
            s.head_spans += h.spans.len() as u64;
        }
        s.blocks = snap_blocks
            .iter()
            .map(|b| BlockStats {
                meta: b.meta().clone(),
                bytes: b.size_bytes(),
                chunk_bytes: b.chunk_bytes(),
            })
            .collect();
        s.wal_sync = self.inner.wal.sync_stats();
        s.wal_bytes = std::fs::read_dir(self.inner.dir.join("wal"))
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        s
    }
}
