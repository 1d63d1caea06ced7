//! A block's logs: `logs` (record file, rows in time order), `logs.idx`
//! (its frame index), `logs.traces` (trace table) and `logs.text/` (the
//! Tantivy index of every row's terms, row = position in `logs`).

use std::path::Path;

use sextant_index::text::{TextIndex, TextIndexWriter};
use sextant_wal::Vfs;

use super::file;
use super::records::{self, RecordFile, Records};
use super::traces::{self, TraceTable};
use crate::error::{Error, Result};
use crate::logs::{LogSearch, log_terms, newest_first, trace_rows};
use crate::model::LogRecord;

pub(crate) const LOGS: &str = "logs";
pub(crate) const LOGS_IDX: &str = "logs.idx";
pub(crate) const LOGS_TRACES: &str = "logs.traces";
pub(crate) const LOGS_TEXT: &str = "logs.text";

/// Records per frame: small enough that fetching the newest matches of a
/// query decompresses little, large enough for zstd to find repetition.
const ROWS_PER_FRAME: usize = 1024;

fn text_err(e: sextant_index::Error) -> Error {
    Error::corrupt("", e)
}

/// Writes the log files of a block into `dir`; `rows` in time order.
pub(crate) fn write(vfs: &dyn Vfs, dir: &Path, rows: &[&LogRecord], level: i32) -> Result<()> {
    let idx = records::write(
        vfs,
        &dir.join(LOGS),
        b"SXLG",
        rows,
        ROWS_PER_FRAME,
        level,
        |r: &LogRecord| r.time_ns,
    )?;
    file::write_durable(vfs, &dir.join(LOGS_IDX), &file::seal(b"SXLI", &idx))?;
    file::write_durable(
        vfs,
        &dir.join(LOGS_TRACES),
        &traces::encode(trace_rows(rows), b"SXLT"),
    )?;
    let text_dir = dir.join(LOGS_TEXT);
    vfs.create_dir_all(&text_dir)
        .map_err(|e| Error::io("create dir", &text_dir, e))?;
    let mut w = TextIndexWriter::create(&text_dir).map_err(text_err)?;
    for r in rows {
        w.add(&log_terms(r)).map_err(text_err)?;
    }
    w.finish().map_err(text_err)?;
    vfs.sync_dir(&text_dir)
        .map_err(|e| Error::io("fsync dir", &text_dir, e))
}

/// The opened logs of a block.
#[derive(Debug)]
pub(crate) struct BlockLogs {
    pub(crate) records: Records<LogRecord>,
    text: TextIndex,
}

impl BlockLogs {
    /// Opens the logs of block `dir` (which has some, says its meta).
    pub(crate) fn open(vfs: &dyn Vfs, dir: &Path) -> Result<Self> {
        let idx_path = dir.join(LOGS_IDX);
        let raw = vfs
            .read(&idx_path)
            .map_err(|e| Error::io("read", &idx_path, e))?;
        let idx = file::unseal(&raw, b"SXLI", &idx_path, true)?;
        let (file, _) = RecordFile::open(vfs, &dir.join(LOGS), b"SXLG", idx)?;
        let text = TextIndex::open(&dir.join(LOGS_TEXT))
            .map_err(|e| text_err(e).in_file(&dir.join(LOGS_TEXT)))?;
        if text.rows() != file.rows() {
            return Err(Error::corrupt(
                dir.join(LOGS_TEXT),
                format!(
                    "full-text index covers {} rows, the log file {}",
                    text.rows(),
                    file.rows()
                ),
            ));
        }
        let traces = TraceTable::open(vfs, &dir.join(LOGS_TRACES), b"SXLT")?;
        Ok(BlockLogs {
            records: Records::new(file, traces),
            text,
        })
    }

    /// Matching records, newest first.
    pub(crate) fn search(&self, q: &LogSearch) -> Result<Vec<LogRecord>> {
        let (mut rows, exact) = q.candidates(&self.text)?;
        let file = &self.records.file;
        file.prune(&mut rows, q.start_ns, q.end_ns);
        // Rows are in time order: the newest matches come first from the end.
        let mut out = file.fetch(rows.iter().rev(), |r| q.accepts(r, exact), q.limit)?;
        newest_first(&mut out, q.limit);
        Ok(out)
    }
}
