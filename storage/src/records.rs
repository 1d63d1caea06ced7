//! Logs and spans on the database: the write path (checked, normalised,
//! logged, then applied to the head) and the reads that merge the head,
//! heads being flushed and the blocks.

use std::sync::Arc;

use sextant_index::{MatchOp, Matcher};

use crate::block::Block;
pub use crate::codec::records::IdPick;
use crate::codec::records::{Columnar, Layout, encode_frame};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::head::Head;
use crate::logs::{LogSearch, newest_first};
use crate::model::{CheckedResources, LogRecord, Span, SpanId, TraceId};
use crate::spans::{self, SpanSearch, Trace};
use crate::walrec;

/// What a write of logs or spans stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Records stored.
    pub stored: usize,
    /// Values cut to the configured limits (`RecordLimits`).
    pub truncated: usize,
}

/// Rows per WAL record: a frame of them stays far below the record limit.
const ROWS_PER_RECORD: usize = 256;

impl Db {
    /// Checks, normalises, logs and stores log records. A record that is
    /// not acceptable fails the whole batch with
    /// [`Error::InvalidRecord`]; nothing of it is stored.
    pub fn write_logs(&self, mut rows: Vec<LogRecord>) -> Result<RecordSummary> {
        let lim = self.inner.opts.record_limits;
        let (mut truncated, mut checked) = (0, CheckedResources::default());
        for r in &mut rows {
            truncated += r.normalize(&lim, &mut checked)?;
        }
        self.log_and_apply(walrec::LOGS, rows, Head::add_logs)
            .map(|stored| RecordSummary { stored, truncated })
    }

    /// Checks, normalises, logs and stores spans (all-zero ids and spans
    /// that end before they start are refused, failing the batch).
    pub fn write_spans(&self, mut rows: Vec<Span>) -> Result<RecordSummary> {
        let lim = self.inner.opts.record_limits;
        let (mut truncated, mut checked) = (0, CheckedResources::default());
        for s in &mut rows {
            truncated += s.normalize(&lim, &mut checked)?;
        }
        self.log_and_apply(walrec::SPANS, rows, Head::add_spans)
            .map(|stored| RecordSummary { stored, truncated })
    }

    fn log_and_apply<T: Columnar>(
        &self,
        typ: u8,
        rows: Vec<T>,
        apply: fn(&Head, Vec<T>),
    ) -> Result<usize> {
        self.inner.check_writable()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let max = self.inner.wal.max_record_len();
        let mut payloads = Vec::new();
        let mut pending: &[T] = &rows;
        // Each record's buffer starts at the size of the one before: grown
        // from empty, every record reallocated its way up through fresh
        // pages.
        let mut size_hint = 0;
        while !pending.is_empty() {
            let mut n = pending.len().min(ROWS_PER_RECORD);
            loop {
                let mut buf = Vec::with_capacity(size_hint);
                encode_frame(&pending[..n], Layout::Plain, &mut buf);
                if buf.len() <= max {
                    size_hint = buf.len();
                    payloads.push(buf);
                    break;
                }
                if n == 1 {
                    return Err(Error::InvalidRecord(format!(
                        "one record encodes to {} bytes, over the WAL record limit of {max}",
                        buf.len()
                    )));
                }
                n /= 2;
            }
            pending = &pending[n..];
        }
        let records: Vec<(u8, &[u8])> = payloads.iter().map(|p| (typ, p.as_slice())).collect();
        let head_guard = self.inner.head.read();
        if let Err(e) = self.inner.wal.append(&records) {
            self.inner.poison(&e);
            return Err(e.into());
        }
        let n = rows.len();
        apply(&head_guard, rows);
        let head = Arc::clone(&head_guard);
        drop(head_guard);
        if self.inner.needs_flush(&head) {
            self.inner.wake();
        }
        Ok(n)
    }

    /// Heads (current and being flushed) and the blocks overlapping
    /// `[start_ns, end_ns]`, newest block first.
    fn sources(&self, start_ns: i64, end_ns: i64) -> (Vec<Arc<Head>>, Vec<Arc<Block>>) {
        let snap = self.snapshot();
        let (lo, hi) = (start_ns.div_euclid(1_000_000), end_ns.div_euclid(1_000_000));
        let mut blocks: Vec<Arc<Block>> = snap
            .blocks
            .iter()
            .filter(|b| b.overlaps(lo, hi))
            .cloned()
            .collect();
        blocks.sort_by_key(|b| std::cmp::Reverse((b.meta().max_t, b.meta().seq)));
        (snap.heads, blocks)
    }

    /// What `head` and `block` give for every head and every block
    /// overlapping `[start_ns, end_ns]`, concatenated.
    fn gather<T>(
        &self,
        start_ns: i64,
        end_ns: i64,
        head: impl Fn(&Head) -> Result<Vec<T>>,
        block: impl Fn(&Block) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let (heads, blocks) = self.sources(start_ns, end_ns);
        let mut out = Vec::new();
        for h in &heads {
            out.extend(head(h)?);
        }
        for b in &blocks {
            out.extend(block(b)?);
        }
        Ok(out)
    }

    /// Log records matching `q`, newest first: searched in the head (as
    /// soon as a write returns) and in every block of the time range.
    pub fn search_logs(&self, q: &LogSearch) -> Result<Vec<LogRecord>> {
        // One trace's records: read through the trace tables.
        if let Some(id) = one_trace(&q.matchers) {
            let mut out = self.traces_logs(&[id], None)?;
            out.retain(|r| q.accepts(r, false));
            newest_first(&mut out, q.limit);
            return Ok(out);
        }
        let (heads, blocks) = self.sources(q.start_ns, q.end_ns);
        let mut out = Vec::new();
        for h in &heads {
            out.extend(h.logs.search(q)?);
        }
        for b in &blocks {
            let Some(logs) = b.logs() else { continue };
            // Blocks come newest first: once `limit` rows are newer than
            // everything in this block, older blocks cannot contribute.
            if out.len() >= q.limit {
                newest_first(&mut out, q.limit);
                let oldest_ms = out.last().map_or(i64::MIN, LogRecord::time_ms);
                if b.meta().max_t < oldest_ms {
                    break;
                }
            }
            out.extend(logs.search(q)?);
        }
        crate::logs::dedup(&mut out);
        newest_first(&mut out, q.limit);
        Ok(out)
    }

    /// Log records of a trace, oldest first, from the head and every block
    /// (no time window: a trace is found wherever it is stored).
    pub fn trace_logs(&self, trace: &TraceId) -> Result<Vec<LogRecord>> {
        self.traces_logs(std::slice::from_ref(trace), None)
    }

    /// The log records of every trace of `ids` (only those whose trace and
    /// span ids `pick` accepts, when given), oldest first: one read of each
    /// block for all of them (a frame holding several of the traces is
    /// decompressed once, and records not picked are never built), for
    /// joins that start from many traces.
    pub fn traces_logs(&self, ids: &[TraceId], pick: Option<IdPick<'_>>) -> Result<Vec<LogRecord>> {
        let mut out = self.gather(
            i64::MIN,
            i64::MAX,
            |h| {
                Ok(picked(h.logs.traces(ids), pick, |r| {
                    (&r.trace_id, &r.span_id)
                }))
            },
            |b| {
                b.logs()
                    .map_or(Ok(Vec::new()), |l| l.records.traces(ids, pick))
            },
        )?;
        crate::logs::dedup(&mut out);
        newest_first(&mut out, usize::MAX);
        out.reverse();
        Ok(out)
    }

    /// Spans matching `q`, newest first.
    pub fn find_spans(&self, q: &SpanSearch) -> Result<Vec<Span>> {
        if let Some(id) = one_trace(&q.matchers) {
            let mut out = self.traces_spans(&[id], None)?;
            out.retain(|s| q.matches(s));
            crate::spans::dedup(&mut out);
            spans::newest_first(&mut out, q.limit);
            return Ok(out);
        }
        let mut out = self.gather(
            q.start_ns,
            q.end_ns,
            |h| Ok(h.spans.search(q)),
            |b| b.spans().map_or(Ok(Vec::new()), |s| s.search(q)),
        )?;
        crate::spans::dedup(&mut out);
        spans::newest_first(&mut out, q.limit);
        Ok(out)
    }

    /// The whole trace as a tree, from the head and every block (no time
    /// window); `None` when no span of it is stored.
    pub fn trace(&self, trace: &TraceId) -> Result<Option<Trace>> {
        Ok(self.traces(std::slice::from_ref(trace))?.pop())
    }

    /// The whole traces of `ids` that are stored, in the order of `ids`,
    /// read together (see [`Db::traces_logs`]).
    pub fn traces(&self, ids: &[TraceId]) -> Result<Vec<Trace>> {
        let spans = self.traces_spans(ids, None)?;
        let mut by_trace: rustc_hash::FxHashMap<TraceId, Vec<Span>> = Default::default();
        for s in spans {
            by_trace.entry(s.trace_id).or_default().push(s);
        }
        Ok(ids
            .iter()
            .filter_map(|id| by_trace.remove(id).map(Trace::build))
            .collect())
    }

    /// The spans of the traces of `ids` whose trace and span ids `pick`
    /// accepts (all, when not given), unordered and not deduplicated
    /// across sources; spans not picked are never built.
    pub fn traces_spans(&self, ids: &[TraceId], pick: Option<IdPick<'_>>) -> Result<Vec<Span>> {
        self.gather(
            i64::MIN,
            i64::MAX,
            |h| {
                Ok(picked(h.spans.traces(ids), pick, |s| {
                    (&s.trace_id, &s.span_id)
                }))
            },
            |b| {
                b.spans()
                    .map_or(Ok(Vec::new()), |s| s.records.traces(ids, pick))
            },
        )
    }
}

/// The trace a search's matchers name with `trace_id="…"`, if any: its
/// records are read through the trace tables, not the whole time range.
fn one_trace(matchers: &[Matcher]) -> Option<TraceId> {
    matchers
        .iter()
        .filter(|m| m.name == "trace_id" && m.op == MatchOp::Equal)
        .find_map(|m| crate::model::parse_trace_id(&m.value).ok())
        .filter(|id| *id != [0; 16])
}

fn picked<T>(
    mut rows: Vec<T>,
    pick: Option<IdPick<'_>>,
    ids: impl Fn(&T) -> (&TraceId, &SpanId),
) -> Vec<T> {
    if let Some(f) = pick {
        rows.retain(|r| {
            let (t, s) = ids(r);
            f(t, s)
        });
    }
    rows
}
