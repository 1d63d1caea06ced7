//! The log: group commit on append, replay and torn-tail repair on open,
//! rotation and checkpoint deletion for the flush path.

use std::mem;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::frame::{self, Decoded, FRAME_HEADER_LEN, MAX_RECORD_LEN};
use crate::fs::{FileWrite, Vfs};
use crate::segment::{self, HEADER_LEN};

/// When an append counts as acknowledged, i.e. when [`Wal::append`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged after `fdatasync`: survives a power cut. Concurrent
    /// writers share one fsync (group commit).
    Always,
    /// Acknowledged once written to the operating system; a background
    /// thread fsyncs every interval. Survives a process crash; a power cut
    /// may lose up to one interval.
    Interval(Duration),
    /// Acknowledged once written to the operating system; fsync only on
    /// segment rotation and close. Survives a process crash, not a power cut.
    Never,
}

/// Settings of the log.
#[derive(Debug, Clone)]
pub struct Options {
    /// Size at which a segment is closed and the next one started.
    pub segment_size: u64,
    /// What an acknowledged append survives.
    pub durability: Durability,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: 64 << 20,
            durability: Durability::Always,
        }
    }
}

/// A record handed to the replay callback.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record type given to [`Wal::append`].
    pub typ: u8,
    /// The payload bytes.
    pub payload: &'a [u8],
    /// Segment holding the record.
    pub segment: u64,
    /// Offset of the record's frame in that segment.
    pub offset: u64,
}

/// What replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayStats {
    /// Segments read.
    pub segments: usize,
    /// Records handed to the callback.
    pub records: u64,
    /// Where a torn tail was cut off: (segment, offset, bytes removed).
    pub torn_tail: Option<(u64, u64, u64)>,
}

/// Largest group-commit buffer kept for reuse.
const MAX_SPARE: usize = 8 << 20;

struct State {
    /// Segment the next append goes to, and its length including buffered bytes.
    segment: u64,
    seg_len: u64,
    /// Bytes appended but not yet written, grouped by segment, in order.
    pending: Vec<(u64, Vec<u8>)>,
    /// The largest buffer of the last group commit, emptied, for the next:
    /// a fresh buffer per commit was regrown (and its pages faulted in)
    /// every time.
    spare: Vec<u8>,
    appended: u64,
    written: u64,
    synced: u64,
    sync_wanted: u64,
    leader_busy: bool,
    file: Option<(u64, Box<dyn FileWrite>)>,
    poisoned: Option<String>,
    closing: bool,
}

struct Inner {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    opts: Options,
    state: Mutex<State>,
    /// Wakes waiters of a group commit.
    cond: Condvar,
    /// Wakes the interval syncer early, on close.
    stop: Condvar,
    /// fsyncs of segment data, and their total duration in µs.
    fsyncs: AtomicU64,
    fsync_us: AtomicU64,
}

/// fsync counters of a log, for monitoring its latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// fsyncs of segment data since the log was opened.
    pub fsyncs: u64,
    /// Their total duration, µs.
    pub fsync_us: u64,
}

/// A segmented write-ahead log. `Send + Sync`: many threads append at once
/// and share fsyncs.
pub struct Wal {
    inner: Arc<Inner>,
    syncer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("dir", &self.inner.dir).finish()
    }
}

impl Wal {
    /// Opens the log in `dir`, deleting segments below `first` (their data is
    /// already in blocks) and replaying the rest into `apply`, one segment in
    /// memory at a time. A torn tail of the last segment is cut off with a
    /// warning; any other damage is [`Error::Corrupt`].
    pub fn open(
        dir: &Path,
        vfs: Arc<dyn Vfs>,
        opts: Options,
        first: u64,
        mut apply: impl FnMut(Record<'_>) -> std::result::Result<(), String>,
    ) -> Result<(Wal, ReplayStats)> {
        crate::fs::create_dir_durable(vfs.as_ref(), dir)
            .map_err(|e| Error::io("create dir", dir, e))?;
        let first = first.max(1);
        let mut segments = segment::list_segments(vfs.as_ref(), dir)?;
        let covered: Vec<u64> = segments.iter().copied().filter(|&s| s < first).collect();
        if !covered.is_empty() {
            for s in &covered {
                let p = segment::segment_path(dir, *s);
                vfs.remove_file(&p).map_err(|e| Error::io("remove", p, e))?;
            }
            vfs.sync_dir(dir)
                .map_err(|e| Error::io("fsync dir", dir, e))?;
            segments.retain(|&s| s >= first);
        }

        let mut stats = ReplayStats::default();
        let mut tail: Option<(u64, u64)> = None;
        for (i, &seg) in segments.iter().enumerate() {
            if i > 0 && seg != segments[i - 1] + 1 {
                return Err(Error::Corrupt {
                    segment: segments[i - 1] + 1,
                    offset: 0,
                    reason: "segment file is missing".into(),
                });
            }
            let last = i + 1 == segments.len();
            let len = replay_segment(vfs.as_ref(), dir, seg, last, &mut stats, &mut apply)?;
            tail = Some((seg, len));
        }

        let mut state = State {
            segment: 0,
            seg_len: 0,
            pending: Vec::new(),
            spare: Vec::new(),
            appended: 0,
            written: 0,
            synced: 0,
            sync_wanted: 0,
            leader_busy: false,
            file: None,
            poisoned: None,
            closing: false,
        };
        match tail {
            Some((seg, len)) if len >= HEADER_LEN as u64 => {
                let p = segment::segment_path(dir, seg);
                let f = vfs.open_append(&p).map_err(|e| Error::io("open", &p, e))?;
                state.segment = seg;
                state.seg_len = len;
                state.file = Some((seg, f));
            }
            _ => {
                // No usable segment: start one (a segment whose header was
                // torn was removed by replay_segment).
                let seg = tail.map_or(first, |(s, _)| s);
                state.segment = seg;
                state.seg_len = HEADER_LEN as u64;
                state.pending.push((seg, segment::header(seg).to_vec()));
                state.appended = HEADER_LEN as u64;
            }
        }

        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            vfs,
            opts,
            state: Mutex::new(state),
            cond: Condvar::new(),
            stop: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            fsync_us: AtomicU64::new(0),
        });
        // Make the first segment exist on disk before anyone relies on it.
        let target = inner.state.lock().appended;
        inner.drive(target, true)?;
        let wal = Wal {
            syncer: Mutex::new(None),
            inner,
        };
        if let Durability::Interval(every) = wal.inner.opts.durability {
            let inner = Arc::clone(&wal.inner);
            let handle = std::thread::Builder::new()
                .name("sextant-wal-sync".into())
                .spawn(move || inner.sync_loop(every))
                .map_err(|e| Error::io("spawn syncer", dir, e))?;
            *wal.syncer.lock() = Some(handle);
        }
        Ok((wal, stats))
    }

    /// Appends records and returns once they are acknowledged under the
    /// log's [`Durability`]. All records of one call land in order; a
    /// record never spans segments.
    pub fn append(&self, records: &[(u8, &[u8])]) -> Result<()> {
        let max = self.max_record_len();
        if let Some((_, p)) = records.iter().find(|(_, p)| p.len() > max) {
            return Err(Error::RecordTooLarge { len: p.len(), max });
        }
        let target = {
            let mut guard = self.inner.state.lock();
            let st = &mut *guard;
            if let Some(why) = &st.poisoned {
                return Err(Error::Poisoned(why.clone()));
            }
            for (typ, payload) in records {
                let frame_len = (FRAME_HEADER_LEN + payload.len()) as u64;
                if st.seg_len + frame_len > self.inner.opts.segment_size {
                    start_segment(st);
                }
                let seg = st.segment;
                match st.pending.last_mut() {
                    Some((s, buf)) if *s == seg => frame::encode(buf, *typ, payload),
                    _ => {
                        let mut buf = mem::take(&mut st.spare);
                        buf.reserve(FRAME_HEADER_LEN + payload.len());
                        frame::encode(&mut buf, *typ, payload);
                        st.pending.push((seg, buf));
                    }
                }
                st.seg_len += frame_len;
                st.appended += frame_len;
            }
            st.appended
        };
        let sync = self.inner.opts.durability == Durability::Always;
        self.inner.drive(target, sync)
    }

    /// The largest payload [`Wal::append`] accepts with these options.
    pub fn max_record_len(&self) -> usize {
        let room = self.inner.opts.segment_size as usize - HEADER_LEN - FRAME_HEADER_LEN;
        room.min(MAX_RECORD_LEN)
    }

    /// Closes the current segment and starts a new one, returning its
    /// number: every record appended before this call is in a lower segment.
    /// Flush uses it to mark what a new block covers.
    pub fn rotate(&self) -> Result<u64> {
        let (seg, target) = {
            let mut st = self.inner.state.lock();
            if let Some(why) = &st.poisoned {
                return Err(Error::Poisoned(why.clone()));
            }
            start_segment(&mut st);
            (st.segment, st.appended)
        };
        self.inner.drive(target, true)?;
        Ok(seg)
    }

    /// Deletes segments below `segment`, whose records are all in blocks.
    pub fn remove_segments_before(&self, segment: u64) -> Result<usize> {
        let current = self.inner.state.lock().segment;
        let dir = &self.inner.dir;
        let vfs = self.inner.vfs.as_ref();
        let mut removed = 0;
        for s in segment::list_segments(vfs, dir)? {
            if s < segment && s < current {
                let p = segment::segment_path(dir, s);
                vfs.remove_file(&p).map_err(|e| Error::io("remove", p, e))?;
                removed += 1;
            }
        }
        if removed > 0 {
            vfs.sync_dir(dir)
                .map_err(|e| Error::io("fsync dir", dir, e))?;
        }
        Ok(removed)
    }

    /// Writes and fsyncs everything appended so far.
    pub fn sync(&self) -> Result<()> {
        let target = self.inner.state.lock().appended;
        self.inner.drive(target, true)
    }

    /// fsync count and total time since open (group commit makes one fsync
    /// serve many appends).
    pub fn sync_stats(&self) -> SyncStats {
        SyncStats {
            fsyncs: self.inner.fsyncs.load(Ordering::Relaxed),
            fsync_us: self.inner.fsync_us.load(Ordering::Relaxed),
        }
    }

    /// The segment that appends currently go to.
    pub fn current_segment(&self) -> u64 {
        self.inner.state.lock().segment
    }

    /// Syncs and stops the background syncer. Appends after close fail.
    pub fn close(&self) -> Result<()> {
        let res = self.sync();
        {
            let mut st = self.inner.state.lock();
            st.closing = true;
            if st.poisoned.is_none() {
                st.poisoned = Some("the log is closed".into());
            }
        }
        self.inner.cond.notify_all();
        self.inner.stop.notify_all();
        if let Some(h) = self.syncer.lock().take() {
            let _ = h.join();
        }
        res
    }

    /// Makes a damaged log in `dir` replayable again while keeping every
    /// record that still verifies: a segment with damaged frames is
    /// rewritten without them (scanning past the damage for the next frame
    /// whose header and payload checksums both verify), a damaged segment
    /// header is rewritten, and a segment missing from the sequence is
    /// recreated empty so the ones after it still replay. Each rewrite is
    /// write-temp, fsync, rename, fsync the directory. This is what
    /// `sextant repair` runs; the report says what was dropped. `keep`
    /// judges each verified record's content (the storage engine drops
    /// records it cannot decode, so that replay can run).
    pub fn repair(
        dir: &Path,
        vfs: &dyn Vfs,
        keep: &dyn Fn(u8, &[u8]) -> bool,
    ) -> Result<RepairReport> {
        let segments = segment::list_segments(vfs, dir)?;
        let mut report = RepairReport::default();
        let (Some(&first), Some(&last)) = (segments.first(), segments.last()) else {
            return Ok(report);
        };
        for seg in first..=last {
            let p = segment::segment_path(dir, seg);
            if !segments.contains(&seg) {
                report.segments.push(SegmentRepair {
                    segment: seg,
                    kept: 0,
                    dropped_bytes: 0,
                    first_bad: None,
                    recreated: true,
                });
                write_segment(vfs, dir, seg, &[])?;
                continue;
            }
            let buf = vfs.read(&p).map_err(|e| Error::io("read", &p, e))?;
            let header_bad = match segment::check_header(&buf, seg) {
                Ok(()) => false,
                Err(reason @ "unsupported segment version") => {
                    return Err(Error::Corrupt {
                        segment: seg,
                        offset: 0,
                        reason: format!("{reason}: written by a newer Sextant; repair refused"),
                    });
                }
                Err(_) => true,
            };
            let (kept, frames, first_bad) = salvage(&buf, keep);
            let body_len = buf.len().saturating_sub(HEADER_LEN);
            if !header_bad && first_bad.is_none() {
                continue;
            }
            report.segments.push(SegmentRepair {
                segment: seg,
                kept,
                dropped_bytes: (body_len - frames.len()) as u64,
                first_bad: first_bad.map(|o| o as u64),
                recreated: header_bad,
            });
            write_segment(vfs, dir, seg, &frames)?;
        }
        Ok(report)
    }
}

/// What [`Wal::repair`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The segments it rewrote or recreated, in order; empty when the log
    /// was intact.
    pub segments: Vec<SegmentRepair>,
}

/// One segment [`Wal::repair`] rewrote.
#[derive(Debug, PartialEq, Eq)]
pub struct SegmentRepair {
    /// Segment number.
    pub segment: u64,
    /// Records kept.
    pub kept: usize,
    /// Bytes of damaged frames dropped.
    pub dropped_bytes: u64,
    /// Offset of the first damaged frame, if any.
    pub first_bad: Option<u64>,
    /// Whether its header was rewritten (damaged, or the file was missing).
    pub recreated: bool,
}

/// The frames of a segment body that verify and that `keep` accepts, in
/// order, as (count, bytes, offset of the first damage).
fn salvage(buf: &[u8], keep: &dyn Fn(u8, &[u8]) -> bool) -> (usize, Vec<u8>, Option<usize>) {
    let (mut kept, mut out, mut first_bad) = (0, Vec::with_capacity(buf.len()), None);
    let mut pos = HEADER_LEN.min(buf.len());
    loop {
        match frame::decode(buf, pos) {
            Decoded::Record { typ, payload, next } => {
                if keep(typ, payload) {
                    out.extend_from_slice(&buf[pos..next]);
                    kept += 1;
                } else {
                    first_bad.get_or_insert(pos);
                }
                pos = next;
            }
            Decoded::End => break,
            Decoded::Bad(_) => {
                first_bad.get_or_insert(pos);
                match (pos + 1..buf.len())
                    .find(|&p| matches!(frame::decode(buf, p), Decoded::Record { .. }))
                {
                    Some(p) => pos = p,
                    None => break,
                }
            }
        }
    }
    (kept, out, first_bad)
}

/// Replaces segment `seg` by a header and `frames`, crash-safely.
fn write_segment(vfs: &dyn Vfs, dir: &Path, seg: u64, frames: &[u8]) -> Result<()> {
    let p = segment::segment_path(dir, seg);
    let tmp = p.with_extension("wal.repair");
    let mut f = vfs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(&segment::header(seg))
        .and_then(|()| f.write_all(frames))
        .and_then(|()| f.sync())
        .map_err(|e| Error::io("write", &tmp, e))?;
    drop(f);
    vfs.rename(&tmp, &p)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, e))
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn start_segment(st: &mut State) {
    st.segment += 1;
    st.seg_len = HEADER_LEN as u64;
    st.pending
        .push((st.segment, segment::header(st.segment).to_vec()));
    st.appended += HEADER_LEN as u64;
}

/// Replays one segment; returns its valid length (after any tail cut).
fn replay_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    seg: u64,
    last: bool,
    stats: &mut ReplayStats,
    apply: &mut impl FnMut(Record<'_>) -> std::result::Result<(), String>,
) -> Result<u64> {
    let p = segment::segment_path(dir, seg);
    let buf = vfs.read(&p).map_err(|e| Error::io("read", &p, e))?;
    stats.segments += 1;
    if let Err(reason) = segment::check_header(&buf, seg) {
        if last && buf.len() <= HEADER_LEN {
            // Crashed while creating the segment: nothing in it was acknowledged.
            tracing::warn!(segment = seg, "removing WAL segment with a torn header");
            vfs.remove_file(&p)
                .map_err(|e| Error::io("remove", &p, e))?;
            vfs.sync_dir(dir)
                .map_err(|e| Error::io("fsync dir", dir, e))?;
            stats.torn_tail = Some((seg, 0, buf.len() as u64));
            return Ok(0);
        }
        return Err(Error::Corrupt {
            segment: seg,
            offset: 0,
            reason: reason.into(),
        });
    }
    let mut pos = HEADER_LEN;
    loop {
        match frame::decode(&buf, pos) {
            Decoded::Record { typ, payload, next } => {
                let rec = Record {
                    typ,
                    payload,
                    segment: seg,
                    offset: pos as u64,
                };
                apply(rec).map_err(|message| Error::Replay {
                    segment: seg,
                    offset: pos as u64,
                    message,
                })?;
                stats.records += 1;
                pos = next;
            }
            Decoded::End => return Ok(pos as u64),
            Decoded::Bad(reason) => {
                if last && !frame::valid_frame_after(&buf, pos) {
                    let cut = (buf.len() - pos) as u64;
                    tracing::warn!(
                        segment = seg,
                        offset = pos,
                        bytes = cut,
                        "cutting off torn WAL tail ({reason})"
                    );
                    vfs.truncate(&p, pos as u64)
                        .map_err(|e| Error::io("truncate", &p, e))?;
                    stats.torn_tail = Some((seg, pos as u64, cut));
                    return Ok(pos as u64);
                }
                return Err(Error::Corrupt {
                    segment: seg,
                    offset: pos as u64,
                    reason: reason.into(),
                });
            }
        }
    }
}

impl Inner {
    /// Returns once everything up to `target` is written (and fsynced if
    /// `sync`). The first waiter becomes the leader and writes the pending
    /// bytes of all waiters at once; the others wait on the condvar.
    fn drive(&self, target: u64, sync: bool) -> Result<()> {
        let mut st = self.state.lock();
        if sync {
            st.sync_wanted = st.sync_wanted.max(target);
        }
        loop {
            if st.written >= target && (!sync || st.synced >= target) {
                return Ok(());
            }
            if let Some(why) = &st.poisoned {
                return Err(Error::Poisoned(why.clone()));
            }
            if st.leader_busy {
                self.cond.wait(&mut st);
                continue;
            }
            st.leader_busy = true;
            let pending = mem::take(&mut st.pending);
            let upto = st.appended;
            let do_sync = st.sync_wanted > st.synced;
            let mut file = st.file.take();
            drop(st);
            let res = self.write_out(&mut file, &pending, do_sync);
            st = self.state.lock();
            st.leader_busy = false;
            st.file = file;
            match res {
                Ok(()) => {
                    if let Some(mut buf) = pending
                        .into_iter()
                        .map(|(_, b)| b)
                        .filter(|b| b.capacity() <= MAX_SPARE)
                        .max_by_key(Vec::capacity)
                        && buf.capacity() > st.spare.capacity()
                    {
                        buf.clear();
                        st.spare = buf;
                    }
                    st.written = upto;
                    if do_sync {
                        st.synced = upto;
                    }
                }
                Err(e) => {
                    tracing::error!("WAL write failed, refusing further writes: {e}");
                    st.poisoned = Some(e.to_string());
                    self.cond.notify_all();
                    return Err(e);
                }
            }
            self.cond.notify_all();
        }
    }

    fn write_out(
        &self,
        file: &mut Option<(u64, Box<dyn FileWrite>)>,
        pending: &[(u64, Vec<u8>)],
        sync: bool,
    ) -> Result<()> {
        for &(seg, ref bytes) in pending {
            if file.as_ref().map(|(s, _)| *s) != Some(seg) {
                if let Some((old, mut f)) = file.take() {
                    let p = segment::segment_path(&self.dir, old);
                    f.sync().map_err(|e| Error::io("fsync", p, e))?;
                }
                let p = segment::segment_path(&self.dir, seg);
                let f = self
                    .vfs
                    .create(&p)
                    .map_err(|e| Error::io("create", &p, e))?;
                *file = Some((seg, f));
                self.vfs
                    .sync_dir(&self.dir)
                    .map_err(|e| Error::io("fsync dir", &self.dir, e))?;
            }
            if let Some((s, f)) = file.as_mut() {
                f.write_all(bytes)
                    .map_err(|e| Error::io("write", segment::segment_path(&self.dir, *s), e))?;
            }
        }
        if sync && let Some((s, f)) = file.as_mut() {
            let t0 = Instant::now();
            f.sync()
                .map_err(|e| Error::io("fsync", segment::segment_path(&self.dir, *s), e))?;
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.fsync_us
                .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    fn sync_loop(&self, every: Duration) {
        loop {
            {
                let mut st = self.state.lock();
                if st.closing {
                    return;
                }
                self.stop.wait_for(&mut st, every);
                if st.closing {
                    return;
                }
            }
            let target = self.state.lock().appended;
            if self.drive(target, true).is_err() {
                return;
            }
        }
    }
}
