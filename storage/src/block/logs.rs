//! A block's logs: `logs` (record file, rows in time order), `logs.idx`
//! (its frame index), `logs.traces` (trace table) and `logs.terms` (the
//! paged full-text index of every row's terms, row = position in `logs`;
//! blocks written before it have a Tantivy index in `logs.text/`, still
//! read).

use std::path::Path;

use sextant_index::text::{PageLists, PagedIndex, PagedIndexWriter, TermSource, Terms, TextIndex};
use sextant_wal::{Mapped, Vfs};

use super::file;
use super::records::{self, RecordFile, Records};
use super::traces::{self, TraceTable};
use crate::codec::records::SharedTemplates;
use crate::error::{Error, Result};
use crate::logs::{LogSearch, LogTerms, newest_first, trace_rows};
use crate::model::{AnyValue, LogRecord};

pub(crate) const LOGS: &str = "logs";
pub(crate) const LOGS_IDX: &str = "logs.idx";
pub(crate) const LOGS_TRACES: &str = "logs.traces";
pub(crate) const LOGS_TERMS: &str = "logs.terms";
pub(crate) const LOGS_TEXT: &str = "logs.text";
const TERMS_MAGIC: &[u8; 4] = b"SXLX";

/// Records per frame: small enough that fetching the newest matches of a
/// query decompresses little, large enough for zstd to find repetition.
const ROWS_PER_FRAME: usize = 256;
/// The trace table lists frames: units of `ROWS_PER_FRAME` rows.
const UNIT_SHIFT: u8 = traces::unit_shift(ROWS_PER_FRAME);

fn text_err(e: sextant_index::Error) -> Error {
    Error::corrupt("", e)
}

/// The paged index of `rows` (in block order), tokenizing each.
pub(crate) fn index_of(rows: &[&LogRecord]) -> PagedIndexWriter<'static> {
    let mut w = PagedIndexWriter::new();
    let (mut builder, mut terms) = (LogTerms::default(), Terms::default());
    for r in rows {
        terms.clear();
        builder.push(r, &mut terms);
        w.add(terms.iter());
    }
    w
}

/// Writes the log files of a block into `dir`: `rows` in time order and
/// the index of their terms.
pub(crate) fn write(
    vfs: &dyn Vfs,
    dir: &Path,
    rows: &[&LogRecord],
    index: PagedIndexWriter<'_>,
    level: i32,
) -> Result<()> {
    let (mut idx, templates) = records::write(
        vfs,
        &dir.join(LOGS),
        b"SXLG",
        rows,
        ROWS_PER_FRAME,
        level,
        |r: &LogRecord| r.time_ns,
    )?;
    // The templates the frames share follow the frame index.
    templates
        .finish(&mut idx)
        .map_err(|e| Error::io("compress", dir.join(LOGS_IDX), e))?;
    file::write_durable(vfs, &dir.join(LOGS_IDX), &file::seal(b"SXLI", &idx))?;
    file::write_durable(
        vfs,
        &dir.join(LOGS_TRACES),
        &traces::encode(trace_rows(rows), UNIT_SHIFT, b"SXLT"),
    )?;
    file::write_durable(
        vfs,
        &dir.join(LOGS_TERMS),
        &file::seal(TERMS_MAGIC, &index.finish()),
    )
}

/// A block's full-text index, in either format.
#[derive(Debug)]
enum Text {
    Paged(PagedIndex<Mapped>),
    Tantivy(TextIndex),
}

impl Text {
    fn source(&self) -> &dyn TermSource {
        match self {
            Text::Paged(p) => p,
            Text::Tantivy(t) => t,
        }
    }

    fn rows(&self) -> u32 {
        match self {
            Text::Paged(p) => p.rows(),
            Text::Tantivy(t) => t.rows(),
        }
    }
}

/// The opened logs of a block.
#[derive(Debug)]
pub(crate) struct BlockLogs {
    pub(crate) records: Records<LogRecord>,
    text: Text,
    /// Where the paged index is, for `verify` and its size.
    terms_path: std::path::PathBuf,
}

impl BlockLogs {
    /// Opens the logs of block `dir` (which has some, says its meta).
    pub(crate) fn open(vfs: &dyn Vfs, dir: &Path) -> Result<Self> {
        let idx_path = dir.join(LOGS_IDX);
        let raw = vfs
            .read(&idx_path)
            .map_err(|e| Error::io("read", &idx_path, e))?;
        let idx = file::unseal(&raw, b"SXLI", &idx_path, true)?;
        let (mut file, used) = RecordFile::open(vfs, &dir.join(LOGS), b"SXLG", idx)?;
        file.set_templates(
            SharedTemplates::read(&idx[used..])
                .map_err(|e| Error::corrupt(&idx_path, format!("shared templates: {e}")))?,
        );
        let terms_path = dir.join(LOGS_TERMS);
        let text = match vfs.map(&terms_path) {
            Ok(map) => {
                let body_len = file::unseal(&map, TERMS_MAGIC, &terms_path, false)?.len();
                let start = file::HEADER_LEN;
                let lists = match file::version(&map) {
                    6.. => PageLists::EliasFano,
                    5 => PageLists::ByDensity,
                    _ => PageLists::Gaps,
                };
                Text::Paged(
                    PagedIndex::open(map, start, start + body_len, lists)
                        .map_err(|e| text_err(e).in_file(&terms_path))?,
                )
            }
            // Written before the paged index.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Text::Tantivy(
                TextIndex::open(&dir.join(LOGS_TEXT))
                    .map_err(|e| text_err(e).in_file(&dir.join(LOGS_TEXT)))?,
            ),
            Err(e) => return Err(Error::io("mmap", &terms_path, e)),
        };
        if text.rows() != file.rows() {
            return Err(Error::corrupt(
                dir,
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
            terms_path,
        })
    }

    /// Matching records, newest first.
    pub(crate) fn search(&self, q: &LogSearch) -> Result<Vec<LogRecord>> {
        let (mut rows, exact) = q.candidates(self.text.source())?;
        let file = &self.records.file;
        file.prune(&mut rows, q.start_ns, q.end_ns);
        // Rows are in time order: the newest matches come first from the end.
        // Candidates are whole pages: most fail the text, tested on the
        // body before the rest of the row is built.
        let body = |b: &AnyValue| q.body_accepts(b);
        let body: Option<&dyn Fn(&AnyValue) -> bool> = (!exact).then_some(&body);
        let mut out = file.fetch_picked(
            rows.iter().rev(),
            None,
            body,
            |r| q.accepts_besides_body(r, exact),
            q.limit,
        )?;
        newest_first(&mut out, q.limit);
        Ok(out)
    }

    /// Checks the checksums of every log file.
    pub(crate) fn verify(&self) -> Result<()> {
        self.records.verify()?;
        if let Text::Paged(p) = &self.text {
            file::unseal(p.bytes(), TERMS_MAGIC, &self.terms_path, true)?;
        }
        Ok(())
    }

    /// Bytes of the paged index (0 for a Tantivy one, counted as its
    /// directory).
    pub(crate) fn terms_bytes(&self) -> u64 {
        match &self.text {
            Text::Paged(p) => p.bytes().len() as u64,
            Text::Tantivy(_) => 0,
        }
    }
}
