//! The head: the mutable, in-memory part of the database that every write
//! lands in, until a flush turns it into immutable blocks.

mod by_trace;
mod logs;
pub(crate) mod rows;
mod series;
mod slots;
mod spans;
mod terms;

use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;
use rustc_hash::{FxHashMap, FxHasher};
use sextant_index::{Matcher, MemPostings, Postings};

pub(crate) use logs::HeadLogs;
pub(crate) use series::MemSeries;
pub(crate) use spans::HeadSpans;

use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::model::{LogRecord, Span};

fn min_max(ts: impl Iterator<Item = i64>) -> Option<(i64, i64)> {
    ts.fold(None, |acc, t| match acc {
        None => Some((t, t)),
        Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
    })
}

const SHARDS: usize = 32;

/// Source of head epochs: unique per head in the process, so a
/// [`SeriesRef`] of one head (or of another database) is never taken for a
/// series of another.
static EPOCHS: AtomicU32 = AtomicU32::new(1);

/// Where a series lives in the head that was current when it was written:
/// a writer that sends the same series again and again (the server's
/// remote_write path) keeps it beside the labels and skips the label
/// lookup next time.
/// It is only a hint: after a flush, or for other labels, the write looks
/// the labels up as usual and hands back a fresh one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesRef {
    // Small (`Option<SeriesRef>` is 8 bytes) so that a cache slot holding
    // one stays within a cache line.
    epoch: NonZeroU32,
    id: u32,
}

/// One lock stripe of the label → series map.
type Shard = RwLock<FxHashMap<Labels, Arc<MemSeries>>>;

/// Series of the head, found by labels (sharded map) or by id (postings).
pub(crate) struct Head {
    epoch: NonZeroU32,
    shards: Box<[Shard]>,
    by_id: RwLock<Vec<Arc<MemSeries>>>,
    /// `by_id`'s length, readable without its lock: every write checks it
    /// against `max_series`.
    series: AtomicUsize,
    postings: MemPostings,
    min_t: AtomicI64,
    max_t: AtomicI64,
    samples: AtomicU64,
    max_series: usize,
    /// Log records of the head.
    pub(crate) logs: HeadLogs,
    /// Spans of the head.
    pub(crate) spans: HeadSpans,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Head({} series)", self.num_series())
    }
}

impl Head {
    pub(crate) fn new(max_series: usize) -> Self {
        Head {
            // 2^32 heads would take centuries of flushes; a wrap to 0
            // would only share an epoch with the first head.
            epoch: NonZeroU32::new(EPOCHS.fetch_add(1, Ordering::Relaxed))
                .unwrap_or(NonZeroU32::MIN),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            by_id: RwLock::default(),
            series: AtomicUsize::new(0),
            postings: MemPostings::default(),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            samples: AtomicU64::new(0),
            max_series,
            logs: HeadLogs::default(),
            spans: HeadSpans::default(),
        }
    }

    fn shard(&self, labels: &Labels) -> &Shard {
        let mut h = FxHasher::default();
        labels.hash(&mut h);
        &self.shards[(h.finish() >> 32) as usize % SHARDS]
    }

    /// Whether the head holds the series.
    pub(crate) fn contains(&self, labels: &Labels) -> bool {
        self.shard(labels).read().contains_key(labels)
    }

    /// The series limit of this head.
    pub(crate) fn max_series(&self) -> usize {
        self.max_series
    }

    /// The series with these labels, creating it if needed; `true` when it
    /// was created. A created series is not yet logged: whoever writes its
    /// samples logs its record first (see [`MemSeries::is_logged`]).
    pub(crate) fn get_or_create(&self, labels: &Labels) -> Result<(Arc<MemSeries>, bool)> {
        self.find_or_insert(labels, self.max_series)
    }

    /// The series with these labels during WAL replay, created if needed
    /// whatever `max_series` says: what was acknowledged comes back. It is
    /// not logged in the current WAL epoch (its record carried an id of an
    /// earlier head), so the next write of it logs it again.
    pub(crate) fn restore_series(&self, labels: &Labels) -> Result<Arc<MemSeries>> {
        self.find_or_insert(labels, usize::MAX).map(|(s, _)| s)
    }

    fn find_or_insert(&self, labels: &Labels, limit: usize) -> Result<(Arc<MemSeries>, bool)> {
        let shard = self.shard(labels);
        if let Some(s) = shard.read().get(labels) {
            return Ok((Arc::clone(s), false));
        }
        let mut map = shard.write();
        if let Some(s) = map.get(labels) {
            return Ok((Arc::clone(s), false));
        }
        let s = {
            let mut by_id = self.by_id.write();
            if by_id.len() >= limit {
                return Err(Error::TooManySeries {
                    limit: self.max_series,
                });
            }
            let s = Arc::new(MemSeries::new(by_id.len() as u32, labels.clone()));
            by_id.push(Arc::clone(&s));
            self.series.store(by_id.len(), Ordering::Relaxed);
            s
        };
        map.insert(labels.clone(), Arc::clone(&s));
        drop(map);
        self.postings.add(s.id, labels.iter());
        Ok((s, true))
    }

    /// The reference a writer keeps for `s`, a series of this head.
    pub(crate) fn series_ref(&self, s: &MemSeries) -> SeriesRef {
        SeriesRef {
            epoch: self.epoch,
            id: s.id,
        }
    }

    /// The series that `refs` point to in this head, where they still do
    /// and the series has exactly `labels(i)` (a pointer comparison when
    /// the writer passes the `Labels` it wrote before); `None` for the
    /// rest. One read of the id table for the whole batch, and each series
    /// is prefetched a few ahead: a batch touches thousands of series that
    /// are all out of the CPU cache.
    pub(crate) fn resolve<'a>(
        &self,
        refs: &[Option<SeriesRef>],
        labels: impl Fn(usize) -> &'a Labels,
    ) -> Vec<Option<Arc<MemSeries>>> {
        const AHEAD: usize = 8;
        if refs.iter().all(Option::is_none) {
            // Writers without references (OTLP, embedders): no lock taken.
            return vec![None; refs.len()];
        }
        let by_id = self.by_id.read();
        let at = |i: usize| {
            refs.get(i)
                .copied()
                .flatten()
                .filter(|r| r.epoch == self.epoch)
                .and_then(|r| by_id.get(r.id as usize))
        };
        (0..refs.len())
            .map(|i| {
                if let Some(next) = at(i + AHEAD) {
                    next.prefetch();
                }
                at(i).filter(|s| s.labels == *labels(i)).map(Arc::clone)
            })
            .collect()
    }

    /// Widens the head's time range to include `t`.
    pub(crate) fn note_time(&self, min: i64, max: i64) {
        self.min_t.fetch_min(min, Ordering::AcqRel);
        self.max_t.fetch_max(max, Ordering::AcqRel);
    }

    /// (min, max) timestamp, `None` when the head holds no samples.
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        let (lo, hi) = (
            self.min_t.load(Ordering::Acquire),
            self.max_t.load(Ordering::Acquire),
        );
        (lo <= hi).then_some((lo, hi))
    }

    /// Counts samples applied (for the flush trigger).
    pub(crate) fn add_samples(&self, n: u64) {
        self.samples.fetch_add(n, Ordering::Relaxed);
    }

    /// Samples applied since the head was created.
    pub(crate) fn num_samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    pub(crate) fn num_series(&self) -> usize {
        self.series.load(Ordering::Relaxed)
    }

    /// Adds log records (already logged) and widens the time range.
    pub(crate) fn add_logs(&self, rows: Vec<LogRecord>) {
        if let Some((lo, hi)) = min_max(rows.iter().map(LogRecord::time_ms)) {
            self.note_time(lo, hi);
        }
        self.logs.append(rows);
    }

    /// Adds spans (already logged) and widens the time range.
    pub(crate) fn add_spans(&self, rows: Vec<Span>) {
        if let Some((lo, hi)) = min_max(rows.iter().map(Span::start_ms)) {
            self.note_time(lo, hi);
        }
        self.spans.append(rows);
    }

    /// True when the head holds no series, logs or spans.
    pub(crate) fn is_empty(&self) -> bool {
        self.num_series() == 0 && self.logs.len() == 0 && self.spans.len() == 0
    }

    /// Series matching `matchers`, sorted by labels.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let ids = sextant_index::select(&self.postings, matchers);
        let by_id = self.by_id.read();
        let mut out: Vec<Arc<MemSeries>> = ids
            .iter()
            .filter_map(|id| by_id.get(id as usize).cloned())
            .collect();
        drop(by_id);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Every series, sorted by labels (for flush).
    pub(crate) fn all_sorted(&self) -> Vec<Arc<MemSeries>> {
        self.select(&[])
    }

    pub(crate) fn label_names(&self) -> Vec<String> {
        self.postings.label_names()
    }

    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.postings
            .for_each_value(name, &mut |v, _| out.push(v.to_string()));
        out
    }

    /// (samples, bytes) held, walking every series (for stats, not hot paths).
    pub(crate) fn footprint(&self) -> (u64, usize) {
        let by_id = self.by_id.read();
        let (mut samples, mut bytes) = (0u64, 0usize);
        for s in by_id.iter() {
            let (n, b) = s.footprint();
            samples += n;
            bytes += b + std::mem::size_of::<MemSeries>() + 16;
        }
        // Map entries (key + value + control byte) and the id vector.
        bytes += by_id.len() * (2 * std::mem::size_of::<usize>() + 1) * 8 / 7;
        bytes += by_id.capacity() * std::mem::size_of::<usize>();
        bytes += self.postings.bitmap_bytes();
        (samples, bytes)
    }
}
