//! A block's spans: `spans` (record file ordered by start minute, then
//! trace: a time range reads the frames of its minutes and a trace is
//! read from one or two frames), `spans.idx` (its frame index, then the
//! postings of the span fields) and `spans.traces` (trace table).

use std::path::Path;

use sextant_index::BlockPostings;
use sextant_wal::Vfs;

use super::file;
use super::records::{self, RecordFile, Records};
use super::traces::{self, TraceTable};
use crate::error::{Error, Result};
use crate::model::Span;
use crate::spans::{SpanSearch, newest_first, span_labels};

pub(crate) const SPANS: &str = "spans";
pub(crate) const SPANS_IDX: &str = "spans.idx";
pub(crate) const SPANS_TRACES: &str = "spans.traces";

/// Spans per frame: a trace lookup decompresses about one frame.
const ROWS_PER_FRAME: usize = 128;
/// The trace table lists frames: units of `ROWS_PER_FRAME` rows.
const UNIT_SHIFT: u8 = traces::unit_shift(ROWS_PER_FRAME);

/// Writes the span files of a block into `dir`; `rows` in block order
/// (`Record::block_order`: by start minute, then trace).
pub(crate) fn write(vfs: &dyn Vfs, dir: &Path, rows: &[&Span], level: i32) -> Result<()> {
    // Spans share nothing between frames.
    let (mut idx, _) = records::write(
        vfs,
        &dir.join(SPANS),
        b"SXSP",
        rows,
        ROWS_PER_FRAME,
        level,
        |s: &Span| s.start_ns,
    )?;
    let labels: Vec<_> = rows.iter().map(|s| span_labels(s)).collect();
    let postings = BlockPostings::build(labels.iter().map(|l| l.iter().map(|(k, v)| (*k, &**v))));
    idx.extend_from_slice(&postings.encode());
    file::write_durable(
        vfs,
        &dir.join(SPANS_IDX),
        &file::seal(b"SXSI", &file::compress(&idx, level)?),
    )?;
    let trace_rows = rows
        .iter()
        .enumerate()
        .map(|(i, s)| (s.trace_id, i as u32))
        .collect();
    file::write_durable(
        vfs,
        &dir.join(SPANS_TRACES),
        &traces::encode(trace_rows, UNIT_SHIFT, b"SXST"),
    )
}

/// The opened spans of a block.
#[derive(Debug)]
pub(crate) struct BlockSpans {
    pub(crate) records: Records<Span>,
    postings: BlockPostings,
}

impl BlockSpans {
    pub(crate) fn open(vfs: &dyn Vfs, dir: &Path) -> Result<Self> {
        let idx_path = dir.join(SPANS_IDX);
        let raw = vfs
            .read(&idx_path)
            .map_err(|e| Error::io("read", &idx_path, e))?;
        let body = file::decompress(file::unseal(&raw, b"SXSI", &idx_path, true)?, &idx_path)?;
        let (file, used) = RecordFile::open(vfs, &dir.join(SPANS), b"SXSP", &body)?;
        let postings =
            BlockPostings::decode(&body[used..]).map_err(|e| Error::corrupt(&idx_path, e))?;
        let traces = TraceTable::open(vfs, &dir.join(SPANS_TRACES), b"SXST")?;
        Ok(BlockSpans {
            records: Records::new(file, traces),
            postings,
        })
    }

    pub(crate) fn search(&self, q: &SpanSearch) -> Result<Vec<Span>> {
        let mut rows = sextant_index::select(&self.postings, &q.indexed());
        let file = &self.records.file;
        file.prune(&mut rows, q.start_ns, q.end_ns);
        // Within a frame rows are by trace, not time: check every candidate.
        let mut out = file.fetch(rows.iter(), |s| q.accepts(s), usize::MAX)?;
        newest_first(&mut out, q.limit);
        Ok(out)
    }
}
