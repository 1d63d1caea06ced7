//! The database: opening (recovery), the write path and the shared state
//! that flush, compaction, retention and reads work on.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use sextant_wal::{StdFs, Vfs, Wal};

use crate::block::{Block, FrameCache, block_dir, is_debris, remove_block_dirs};
use crate::codec::{HistogramSample, Sample};
use crate::error::{Error, Result};
use crate::exemplar::Exemplar;
use crate::head::{Head, MemSeries, SeriesRef};
use crate::labels::Labels;
use crate::options::Options;
use crate::walrec::{self, WalRecord};

/// Samples and exemplars of one series in a [`WriteBatch`].
#[derive(Debug, Clone)]
pub struct SeriesWrite {
    /// The series.
    pub labels: Labels,
    /// Its samples, in any order.
    pub samples: Vec<Sample>,
    /// Its native-histogram samples, in any order.
    pub histograms: Vec<HistogramSample>,
    /// Its exemplars.
    pub exemplars: Vec<Exemplar>,
}

/// A batch of writes, logged and applied together.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// The series written.
    pub series: Vec<SeriesWrite>,
}

impl WriteBatch {
    /// Adds samples of a series.
    pub fn add(&mut self, labels: Labels, samples: Vec<Sample>) {
        self.series.push(SeriesWrite {
            labels,
            samples,
            histograms: Vec::new(),
            exemplars: Vec::new(),
        });
    }

    /// Adds native-histogram samples of a series.
    pub fn add_histograms(&mut self, labels: Labels, histograms: Vec<HistogramSample>) {
        self.series.push(SeriesWrite {
            labels,
            samples: Vec::new(),
            histograms,
            exemplars: Vec::new(),
        });
    }

    /// Samples in the batch, float and histogram.
    pub fn num_samples(&self) -> usize {
        self.series
            .iter()
            .map(|s| s.samples.len() + s.histograms.len())
            .sum()
    }
}

/// What a write stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Samples stored.
    pub samples: usize,
    /// Exemplars stored.
    pub exemplars: usize,
    /// Series created by this write.
    pub series_created: usize,
}

/// A series of a write and where its accepted samples sit in the write's
/// sample lists.
struct Target {
    series: Arc<MemSeries>,
    floats: std::ops::Range<usize>,
    histograms: std::ops::Range<usize>,
    /// Its index in the batch.
    index: usize,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) blocks_dir: PathBuf,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) opts: Options,
    pub(crate) wal: Wal,
    /// Writers hold a read guard for a whole write, so a flush (write guard)
    /// rotates the log and swaps heads between writes, never inside one.
    pub(crate) head: RwLock<Arc<Head>>,
    /// Heads being flushed (or whose flush failed), oldest first, each with
    /// the WAL segment that started after it.
    pub(crate) frozen: RwLock<Vec<(Arc<Head>, u64)>>,
    /// Open blocks ordered by (min_t, seq).
    pub(crate) blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    pub(crate) next_seq: AtomicU64,
    /// Decompressed chunk frames shared by all queries.
    pub(crate) frames: Arc<FrameCache>,
    /// One flush, compaction or retention pass at a time.
    pub(crate) maintenance: Mutex<()>,
    poisoned: Mutex<Option<String>>,
    wake: (Mutex<bool>, Condvar),
    _lock: File,
}

/// An embedded Sextant database. `Send + Sync`: share it in an `Arc` (or
/// by reference) between any number of writer and reader threads.
pub struct Db {
    pub(crate) inner: Arc<Inner>,
    background: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish()
    }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: loads blocks,
    /// removes what an interrupted flush or compaction left behind, and
    /// replays the WAL into a fresh head.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        Db::open_with_vfs(dir, opts, Arc::new(StdFs))
    }

    /// [`Db::open`] over another file system (tests inject faults here).
    pub fn open_with_vfs(dir: impl AsRef<Path>, opts: Options, vfs: Arc<dyn Vfs>) -> Result<Db> {
        let dir = dir.as_ref().to_path_buf();
        let blocks_dir = dir.join("blocks");
        sextant_wal::create_dir_durable(vfs.as_ref(), &blocks_dir)
            .map_err(|e| Error::io("create dir", &blocks_dir, e))?;
        let lock = lock_dir(&dir)?;
        let blocks = load_blocks(vfs.as_ref(), &blocks_dir)?;
        let next_seq = blocks
            .iter()
            .flat_map(|b| std::iter::once(b.meta().seq).chain(b.meta().parents.iter().copied()))
            .max()
            .map_or(1, |s| s + 1);
        let replay_from = blocks
            .iter()
            .map(|b| b.meta().wal_replay_from)
            .max()
            .unwrap_or(0);

        let head = Head::new(opts.max_series);
        let mut unknown = 0u64;
        // WAL id → series of the replayed head, for the current epoch.
        // Every head's ids start at 0 and the segments of more than one
        // head can be on disk (a flush that never finished), so ids are
        // translated per epoch, never used as the replayed head's own.
        let mut ids: rustc_hash::FxHashMap<u32, Arc<MemSeries>> = Default::default();
        let wal_opts = sextant_wal::Options {
            segment_size: opts.wal_segment_size,
            durability: opts.durability,
        };
        let (wal, stats) = Wal::open(
            &dir.join("wal"),
            Arc::clone(&vfs),
            wal_opts,
            replay_from,
            |rec| {
                match walrec::decode(rec.typ, rec.payload)? {
                    WalRecord::Epoch => ids.clear(),
                    WalRecord::Series(v) => {
                        for (id, labels) in v {
                            match ids.get(&id) {
                                // Writers log a series until its record lands:
                                // repeats name the same labels.
                                Some(s) if s.labels == labels => {}
                                Some(s) => {
                                    return Err(format!(
                                        "two series records for id {id}: {} and {labels}",
                                        s.labels
                                    ));
                                }
                                None => {
                                    let s =
                                        head.restore_series(&labels).map_err(|e| e.to_string())?;
                                    ids.insert(id, s);
                                }
                            }
                        }
                    }
                    WalRecord::Samples(v) => {
                        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
                        for (id, s) in &v {
                            match ids.get(id) {
                                Some(series) => {
                                    series.append([*s]);
                                    lo = lo.min(s.t);
                                    hi = hi.max(s.t);
                                }
                                None => unknown += 1,
                            }
                        }
                        head.add_samples(v.len() as u64);
                        if lo <= hi {
                            head.note_time(lo, hi);
                        }
                    }
                    WalRecord::Histograms(v) => {
                        head.add_samples(v.len() as u64);
                        for (id, h) in v {
                            match ids.get(&id) {
                                Some(series) => {
                                    head.note_time(h.t, h.t);
                                    series.append_histograms([h]);
                                }
                                None => unknown += 1,
                            }
                        }
                    }
                    WalRecord::Exemplars(v) => {
                        for (id, e) in v {
                            match ids.get(&id) {
                                Some(series) => {
                                    head.note_time(e.t, e.t);
                                    series.add_exemplars([e]);
                                }
                                None => unknown += 1,
                            }
                        }
                    }
                    WalRecord::Logs(v) => head.add_logs(v),
                    WalRecord::Spans(v) => head.add_spans(v),
                }
                Ok(())
            },
        )?;
        drop(ids);
        // What is written from now on uses the replayed head's ids.
        wal.append(&[(walrec::EPOCH, &[][..])])?;
        if unknown > 0 {
            tracing::warn!(unknown, "WAL replay skipped samples of unknown series");
        }
        tracing::info!(
            segments = stats.segments,
            records = stats.records,
            series = head.num_series(),
            blocks = blocks.len(),
            "opened database"
        );

        let inner = Arc::new(Inner {
            dir,
            blocks_dir,
            vfs,
            wal,
            head: RwLock::new(Arc::new(head)),
            frozen: RwLock::default(),
            blocks: RwLock::new(Arc::new(blocks)),
            next_seq: AtomicU64::new(next_seq),
            frames: Arc::new(FrameCache::new(opts.frame_cache_bytes)),
            maintenance: Mutex::new(()),
            poisoned: Mutex::new(None),
            wake: (Mutex::new(false), Condvar::new()),
            _lock: lock,
            opts,
        });
        let db = Db {
            background: Mutex::new(None),
            inner,
        };
        if db.inner.opts.background {
            let inner = Arc::clone(&db.inner);
            let h = std::thread::Builder::new()
                .name("sextant-maintenance".into())
                .spawn(move || inner.background_loop())
                .map_err(|e| Error::io("spawn", &db.inner.dir, e))?;
            *db.background.lock() = Some(h);
        }
        Ok(db)
    }

    /// Logs and applies a batch. Label sets are checked first (a bad one
    /// fails the whole batch, nothing stored). Samples older than the
    /// out-of-order window are rejected with [`Error::OutOfOrder`] after the
    /// rest of the batch is stored; duplicates of a timestamp overwrite it.
    pub fn write(&self, batch: &WriteBatch) -> Result<WriteSummary> {
        self.write_limited(batch, usize::MAX)
    }

    /// [`Db::write`], refusing the whole batch with
    /// [`Error::TooManyNewSeries`] if it would create more than
    /// `max_new_series` head series: a server's guard against a client that
    /// floods it with label sets (a cardinality explosion).
    pub fn write_limited(&self, batch: &WriteBatch, max_new_series: usize) -> Result<WriteSummary> {
        self.write_with_refs(batch, &mut vec![None; batch.series.len()], max_new_series)
    }

    /// [`Db::write_limited`] for writers that send the same series again
    /// and again: `refs[i]` is the [`SeriesRef`] a previous write gave for
    /// `batch.series[i]`'s labels, or `None`; once the batch is stored
    /// (also when it returns [`Error::OutOfOrder`]) every `refs[i]` is set
    /// to the series' current reference, to keep for the next write.
    /// A valid reference skips the head's label lookup, which for
    /// remote_write is one cache miss per sample; a stale one (the head
    /// was flushed since) or one for other labels is looked up as usual.
    ///
    /// # Panics
    /// If `refs` and `batch.series` differ in length.
    pub fn write_with_refs(
        &self,
        batch: &WriteBatch,
        refs: &mut [Option<SeriesRef>],
        max_new_series: usize,
    ) -> Result<WriteSummary> {
        assert_eq!(refs.len(), batch.series.len(), "one ref per series");
        self.inner.check_writable()?;
        for s in &batch.series {
            self.inner.check_labels(&s.labels)?;
            for e in &s.exemplars {
                self.inner.check_labels(&e.labels)?;
            }
            for h in &s.histograms {
                h.h.validate().map_err(|e| Error::InvalidHistogram {
                    series: s.labels.to_string(),
                    t: h.t,
                    reason: e.to_string(),
                })?;
            }
        }
        let head_guard = self.inner.head.read();
        let head = Arc::clone(&head_guard);
        let mut known = head.resolve(refs, |i| &batch.series[i].labels);
        // Count the batch's new series up front when a limit could be hit,
        // so that a refused batch creates none of them.
        let may_hit_total =
            head.num_series().saturating_add(batch.series.len()) > head.max_series();
        if max_new_series < batch.series.len() || may_hit_total {
            let new = batch
                .series
                .iter()
                .zip(&known)
                .filter(|(s, k)| k.is_none() && !head.contains(&s.labels))
                .count();
            if new > max_new_series {
                return Err(Error::TooManyNewSeries {
                    new,
                    limit: max_new_series,
                });
            }
            if head.num_series().saturating_add(new) > head.max_series() {
                return Err(Error::TooManySeries {
                    limit: head.max_series(),
                });
            }
        }
        let mut summary = WriteSummary::default();
        let mut series_rec = Vec::new();
        let mut samples: Vec<(u32, Sample)> = Vec::with_capacity(batch.num_samples());
        let mut histograms: Vec<(u32, HistogramSample)> = Vec::new();
        let mut exemplar_rec = Vec::new();
        let mut targets: Vec<Target> = Vec::with_capacity(batch.series.len());
        // Series whose record this write logs (created here, or created by
        // a writer whose own append has not landed yet).
        let mut logging: Vec<Arc<MemSeries>> = Vec::new();
        let mut rejected: Option<(String, i64, i64)> = None;
        let mut n_rejected = 0;
        for (sw, known) in batch.series.iter().zip(&mut known) {
            let (s, created) = match known.take() {
                Some(s) => (s, false),
                None => head.get_or_create(&sw.labels)?,
            };
            summary.series_created += usize::from(created);
            if !s.is_logged() {
                walrec::encode_series(&mut series_rec, s.id, &s.labels);
                logging.push(Arc::clone(&s));
            }
            let max_t = s.max_t();
            let min_allowed = if max_t == i64::MIN {
                i64::MIN
            } else {
                max_t.saturating_sub(self.inner.opts.ooo_window_ms)
            };
            let start = samples.len();
            let mut refuse = |t: i64| {
                n_rejected += 1;
                rejected.get_or_insert_with(|| (sw.labels.to_string(), t, min_allowed));
            };
            for smp in &sw.samples {
                if smp.t < min_allowed {
                    refuse(smp.t);
                } else {
                    samples.push((s.id, *smp));
                }
            }
            let hstart = histograms.len();
            for h in &sw.histograms {
                if h.t < min_allowed {
                    refuse(h.t);
                } else {
                    histograms.push((s.id, h.clone()));
                }
            }
            for e in &sw.exemplars {
                walrec::encode_exemplar(&mut exemplar_rec, s.id, e);
            }
            summary.exemplars += sw.exemplars.len();
            targets.push(Target {
                series: s,
                floats: start..samples.len(),
                histograms: hstart..histograms.len(),
                index: targets.len(),
            });
        }
        summary.samples = samples.len() + histograms.len();

        let mut payloads: Vec<(u8, Vec<u8>)> = Vec::new();
        if !series_rec.is_empty() {
            payloads.push((walrec::SERIES, series_rec));
        }
        // 30 bytes bound one encoded sample; split to respect the record limit.
        let per_record = (self.inner.wal.max_record_len() / 30).max(1);
        for part in samples.chunks(per_record) {
            let mut buf = Vec::with_capacity(part.len() * 12 + 8);
            walrec::encode_samples(&mut buf, part);
            payloads.push((walrec::SAMPLES, buf));
        }
        for rec in walrec::histogram_records(&histograms, self.inner.wal.max_record_len()) {
            payloads.push((walrec::HISTOGRAMS, rec));
        }
        if !exemplar_rec.is_empty() {
            payloads.push((walrec::EXEMPLARS, exemplar_rec));
        }
        let records: Vec<(u8, &[u8])> = payloads.iter().map(|(t, p)| (*t, p.as_slice())).collect();
        if let Err(e) = self.inner.wal.append(&records) {
            self.inner.poison(&e);
            return Err(e.into());
        }
        for s in logging {
            s.set_logged();
        }

        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (i, t) in targets.iter().enumerate() {
            let s = &t.series;
            // The WAL append may have waited on an fsync while other
            // threads ran: bring each series back, then its open chunk.
            if let Some(far) = targets.get(i + 8) {
                far.series.prefetch();
            }
            if let Some(next) = targets.get(i + 4) {
                next.series.prefetch_open_chunk();
            }
            refs[t.index] = Some(head.series_ref(s));
            let part = &samples[t.floats.clone()];
            for (_, smp) in part {
                lo = lo.min(smp.t);
                hi = hi.max(smp.t);
            }
            s.append(part.iter().map(|(_, smp)| *smp));
            if !t.histograms.is_empty() {
                let part = &histograms[t.histograms.clone()];
                for (_, h) in part {
                    lo = lo.min(h.t);
                    hi = hi.max(h.t);
                }
                s.append_histograms(part.iter().map(|(_, h)| h.clone()));
            }
            let ex = &batch.series[t.index].exemplars;
            if !ex.is_empty() {
                s.add_exemplars(ex.iter().cloned());
                for e in ex {
                    lo = lo.min(e.t);
                    hi = hi.max(e.t);
                }
            }
        }
        if lo <= hi {
            head.note_time(lo, hi);
        }
        head.add_samples(summary.samples as u64);
        drop(head_guard);
        if self.inner.needs_flush(&head) {
            self.inner.wake();
        }
        if let Some((series, timestamp, min_allowed)) = rejected {
            return Err(Error::OutOfOrder {
                series,
                timestamp,
                min_allowed,
                rejected: n_rejected,
                accepted: summary.samples,
            });
        }
        Ok(summary)
    }

    /// One pass of the background thread's work: a flush if the head is
    /// over its bounds, compaction (closed windows, and blocks of one size
    /// piling up in open ones), retention. For embedders that open with
    /// `background: false` and schedule maintenance themselves.
    pub fn maintain(&self) -> Result<()> {
        self.inner.maintain()
    }

    /// Whether writes are accepted: an error if the database was closed or
    /// is read-only after a failed write or flush (a server's readiness).
    pub fn check_writable(&self) -> Result<()> {
        self.inner.check_writable()
    }

    /// The directory of the database.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Stops background work and syncs the log. Later writes fail.
    pub fn close(&self) -> Result<()> {
        {
            let (lock, cv) = &self.inner.wake;
            *lock.lock() = true;
            cv.notify_all();
        }
        if let Some(h) = self.background.lock().take() {
            let _ = h.join();
        }
        *self.inner.poisoned.lock() = Some("closed".into());
        Ok(self.inner.wal.close()?)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}

/// Opens every block, removing temporary directories of interrupted writes
/// and blocks that a finished compaction replaced.
fn load_blocks(vfs: &dyn Vfs, blocks_dir: &Path) -> Result<Vec<Arc<Block>>> {
    let mut blocks = Vec::new();
    let mut entries = vfs
        .list(blocks_dir)
        .map_err(|e| Error::io("list", blocks_dir, e))?;
    entries.sort();
    let mut removed = false;
    for p in entries {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if is_debris(name) {
            tracing::warn!(dir = %p.display(), "removing unfinished block write or delete");
            vfs.remove_dir_all(&p)
                .map_err(|e| Error::io("remove", &p, e))?;
            removed = true;
        } else if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
            blocks.push(Arc::new(Block::open(vfs, &p)?));
        }
    }
    // Blocks of a flush that did not complete: their data is replayed from
    // the WAL, so keeping them would store it twice.
    let covered = blocks
        .iter()
        .map(|b| b.meta().wal_replay_from)
        .max()
        .unwrap_or(0);
    let unfinished: Vec<&Path> = blocks
        .iter()
        .filter(|b| b.meta().flush_segment > covered)
        .map(|b| b.dir())
        .collect();
    if !unfinished.is_empty() {
        tracing::warn!(
            blocks = unfinished.len(),
            "removing blocks of an interrupted flush (the WAL holds their data)"
        );
        remove_block_dirs(vfs, blocks_dir, &unfinished)?;
    }
    blocks.retain(|b| b.meta().flush_segment <= covered);
    let replaced: std::collections::HashSet<u64> = blocks
        .iter()
        .flat_map(|b| b.meta().parents.clone())
        .collect();
    let stale: Vec<&Path> = blocks
        .iter()
        .filter(|b| replaced.contains(&b.meta().seq))
        .map(|b| b.dir())
        .collect();
    if !stale.is_empty() {
        tracing::warn!(
            blocks = stale.len(),
            "removing blocks already replaced by compaction"
        );
        remove_block_dirs(vfs, blocks_dir, &stale)?;
    }
    blocks.retain(|b| !replaced.contains(&b.meta().seq));
    if removed {
        vfs.sync_dir(blocks_dir)
            .map_err(|e| Error::io("fsync dir", blocks_dir, e))?;
    }
    sort_blocks(&mut blocks);
    Ok(blocks)
}

pub(crate) fn sort_blocks(blocks: &mut [Arc<Block>]) {
    blocks.sort_by_key(|b| (b.meta().min_t, b.meta().seq));
}

impl Inner {
    pub(crate) fn check_writable(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(why) if why == "closed" => Err(Error::Closed),
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn poison(&self, e: &dyn std::fmt::Display) {
        let mut p = self.poisoned.lock();
        if p.is_none() {
            tracing::error!("refusing further writes: {e}");
            *p = Some(e.to_string());
        }
    }

    fn check_labels(&self, labels: &Labels) -> Result<()> {
        let lim = &self.opts.limits;
        // A pair takes at least 4 bytes: short label sets pass every limit
        // without being walked (the common case, on the write hot path).
        let len = labels.as_bytes().len();
        if len <= lim.max_name_len.min(lim.max_value_len) && len / 4 <= lim.max_labels {
            return Ok(());
        }
        let mut n = 0;
        for (name, value) in labels.iter_bytes() {
            n += 1;
            if name.len() > lim.max_name_len {
                return Err(Error::InvalidLabels(format!(
                    "label name of {} bytes exceeds the limit of {} (`limits.max_name_len`)",
                    name.len(),
                    lim.max_name_len
                )));
            }
            if value.len() > lim.max_value_len {
                return Err(Error::InvalidLabels(format!(
                    "value of label {:?} has {} bytes, over the limit of {} (`limits.max_value_len`)",
                    String::from_utf8_lossy(name),
                    value.len(),
                    lim.max_value_len
                )));
            }
        }
        if n > lim.max_labels {
            return Err(Error::InvalidLabels(format!(
                "{n} labels exceed the limit of {} per series (`limits.max_labels`)",
                lim.max_labels
            )));
        }
        Ok(())
    }

    pub(crate) fn needs_flush(&self, head: &Head) -> bool {
        if head.num_samples() >= self.opts.max_head_samples
            || head.logs.bytes() + head.spans.bytes() >= self.opts.max_head_record_bytes
        {
            return true;
        }
        head.time_range().is_some_and(|(lo, hi)| {
            hi.saturating_sub(lo) > self.opts.block_range_ms.saturating_mul(3) / 2
        })
    }

    /// Runs the embedder's [`Options::release_memory`] hook.
    pub(crate) fn release_memory(&self) {
        if let Some(f) = self.opts.release_memory {
            f();
        }
    }

    pub(crate) fn wake(&self) {
        self.wake.1.notify_all();
    }

    pub(crate) fn block_path(&self, seq: u64) -> PathBuf {
        block_dir(&self.blocks_dir, seq)
    }

    fn background_loop(self: Arc<Self>) {
        loop {
            {
                let mut stop = self.wake.0.lock();
                if *stop {
                    return;
                }
                self.wake.1.wait_for(&mut stop, Duration::from_secs(1));
                if *stop {
                    return;
                }
            }
            if self.check_writable().is_err() {
                continue;
            }
            // A panic here (a bug) must not vanish with the thread while
            // writes go on unflushed: the database refuses writes with the
            // reason, and reads keep working.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.maintain())) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("background maintenance failed: {e}"),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    self.poison(&format!(
                        "background maintenance panicked ({what}); writes are refused, reads \
                         keep working; reopen the database"
                    ));
                    return;
                }
            }
        }
    }

    pub(crate) fn maintain(&self) -> Result<()> {
        // The head is not held across the flush: the flushed one is freed
        // before compaction needs memory of its own.
        let flush = self.needs_flush(&self.head.read());
        if flush {
            self.flush()?;
        }
        self.compact(false)?;
        self.apply_retention()?;
        Ok(())
    }
}
