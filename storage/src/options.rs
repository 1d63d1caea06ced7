//! Settings of a database.

use std::time::Duration;

pub use sextant_wal::Durability;

use crate::model::RecordLimits;

/// Hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// Settings of [`crate::Db`]. `Default` gives what `sextant serve` uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// What an acknowledged write survives (default: `Always`, fsync with
    /// group commit).
    pub durability: Durability,
    /// WAL segment size in bytes.
    pub wal_segment_size: u64,
    /// Time partition of flushed blocks, ms (default 2 h). Blocks never
    /// cross a multiple of it.
    pub block_range_ms: i64,
    /// Largest range compaction builds, ms (default 54 h: 2 h × 3³).
    pub max_block_range_ms: i64,
    /// How far behind the newest sample of its series a sample may be and
    /// still be accepted, ms. Default: no limit (`i64::MAX`), as backfills
    /// by parallel workers send every age in any order; late samples land
    /// in their own blocks and compaction merges them. Set it (Prometheus
    /// uses 0 to a few hours) to reject older samples instead.
    pub ooo_window_ms: i64,
    /// Delete blocks whose newest sample is older than this, relative to
    /// the newest sample in the database. `None` keeps everything.
    pub retention: Option<Duration>,
    /// Delete the oldest blocks while all blocks together are larger.
    pub max_bytes: Option<u64>,
    /// Most series the head holds; creating more fails until a flush.
    pub max_series: usize,
    /// Samples in the head that trigger a flush (default 16M, about 48 MiB
    /// of Gorilla chunks at ~3 B a sample for scrape data). Each series
    /// written since the last flush costs another ~400 B (labels, postings,
    /// maps) that a flush cannot shed while it stays active. The blocks
    /// such flushes leave in the current time partition are merged by size
    /// as they pile up.
    pub max_head_samples: u64,
    /// Bytes of log records and spans in the head (with their in-memory
    /// postings) that trigger a flush.
    pub max_head_record_bytes: usize,
    /// Limits and normalisation of written logs and spans.
    pub record_limits: RecordLimits,
    /// Run flush, compaction and retention in a background thread.
    pub background: bool,
    /// Limits on label sets, so one bad client cannot bloat the index.
    pub limits: LabelLimits,
    /// Bytes of decompressed block chunk frames kept for queries that read
    /// them again (default 32 MiB; 0: none).
    pub frame_cache_bytes: u64,
    /// Called on the thread that ran a flush or compaction once it has
    /// freed the head or blocks it dropped: the hook for an allocator that
    /// returns freed pages lazily, per thread (mimalloc's `mi_collect`),
    /// since the background thread then sleeps and makes no further
    /// allocator calls that would. `None`: nothing.
    pub release_memory: Option<fn()>,
}

/// Limits applied to every written label set.
#[derive(Debug, Clone, Copy)]
pub struct LabelLimits {
    /// Longest label name, bytes.
    pub max_name_len: usize,
    /// Longest label value, bytes.
    pub max_value_len: usize,
    /// Most labels per series.
    pub max_labels: usize,
}

impl Default for LabelLimits {
    fn default() -> Self {
        LabelLimits {
            max_name_len: 1024,
            max_value_len: 16 * 1024,
            max_labels: 128,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Always,
            wal_segment_size: 64 << 20,
            block_range_ms: 2 * HOUR_MS,
            max_block_range_ms: 54 * HOUR_MS,
            ooo_window_ms: i64::MAX,
            retention: None,
            max_bytes: None,
            max_series: 10_000_000,
            max_head_samples: 16_000_000,
            max_head_record_bytes: 512 << 20,
            record_limits: RecordLimits::default(),
            background: true,
            limits: LabelLimits::default(),
            frame_cache_bytes: 32 << 20,
            release_memory: None,
        }
    }
}
