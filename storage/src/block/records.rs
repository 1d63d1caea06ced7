//! Record files: a block's logs or spans in zstd frames of column-encoded
//! rows, plus the frame index (row count and time range of each frame)
//! that the block keeps in a small sealed file next to it.
//!
//! ```text
//! frame index = count uvarint | (rows uvarint | min_ns i64le | max_ns i64le) * count
//! ```

use std::borrow::Borrow;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::path::Path;

use sextant_index::{RoaringBitmap, put_uvarint};
use sextant_wal::Vfs;

use super::frames::{FrameReader, FrameWriter};
use super::traces::TraceTable;
use crate::codec::cursor::Cursor;
use crate::codec::records::{
    BodyPick, Columnar, IdPick, Pick, SharedTemplates, SharedTemplatesWriter, decode_frame_rows,
    encode_block_frame,
};
use crate::error::Result;
use crate::model::{AnyValue, SpanId, TraceId};

/// Writes `rows` as a record file at `path`, `per_frame` rows per frame;
/// returns the frame index (`time` gives the time each frame's range is
/// of) and what the frames share, for the caller to store.
pub(crate) fn write<T: Columnar, R: Borrow<T>>(
    vfs: &dyn Vfs,
    path: &Path,
    magic: &[u8; 4],
    rows: &[R],
    per_frame: usize,
    level: i32,
    time: impl Fn(&T) -> i64,
) -> Result<(Vec<u8>, SharedTemplatesWriter)> {
    let shared = SharedTemplatesWriter::of::<T, R>(rows);
    let mut frames = FrameWriter::create(vfs, path, magic, level)?;
    let mut idx = Vec::new();
    let mut raw = Vec::new();
    put_uvarint(&mut idx, rows.len().div_ceil(per_frame) as u64);
    for part in rows.chunks(per_frame) {
        raw.clear();
        let starts = encode_block_frame::<T, R>(part, &shared, &mut raw);
        frames.write_parts(&raw, &starts, T::RANDOM_COLS)?;
        put_uvarint(&mut idx, part.len() as u64);
        let (lo, hi) = part
            .iter()
            .map(|r| time(r.borrow()))
            .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        idx.extend_from_slice(&lo.to_le_bytes());
        idx.extend_from_slice(&hi.to_le_bytes());
    }
    frames.finish()?;
    Ok((idx, shared))
}

#[derive(Debug, Clone, Copy)]
struct FrameInfo {
    first_row: u32,
    rows: u32,
    min_ns: i64,
    max_ns: i64,
}

/// An opened record file.
#[derive(Debug)]
pub(crate) struct RecordFile<T> {
    frames: FrameReader,
    info: Vec<FrameInfo>,
    /// What the frames share (log blocks from version 8; none before).
    templates: SharedTemplates,
    _rows: PhantomData<T>,
}

impl<T: Columnar + Clone + Default> RecordFile<T> {
    /// Maps the file at `path`; `index` starts with its frame index.
    /// Returns the file and the bytes of `index` used.
    pub(crate) fn open(
        vfs: &dyn Vfs,
        path: &Path,
        magic: &[u8; 4],
        index: &[u8],
    ) -> Result<(Self, usize)> {
        let frames = FrameReader::open(vfs, path, magic)?;
        let (info, used) =
            parse_index(index).map_err(|e| frames.corrupt(&format!("frame index: {e}")))?;
        if info.len() != frames.len() {
            return Err(frames.corrupt("frame count differs from the frame index"));
        }
        Ok((
            RecordFile {
                frames,
                info,
                templates: SharedTemplates::default(),
                _rows: PhantomData,
            },
            used,
        ))
    }

    /// Sets what the frames share, read from beside the frame index.
    pub(crate) fn set_templates(&mut self, templates: SharedTemplates) {
        self.templates = templates;
    }

    /// Rows in the file.
    pub(crate) fn rows(&self) -> u32 {
        self.info.last().map_or(0, |f| f.first_row + f.rows)
    }

    fn frame(&self, n: usize) -> Result<Vec<T>> {
        self.frame_rows(n, Pick::default())
    }

    /// Frame `n`, with only the rows `pick` keeps built (see
    /// [`decode_frame_rows`]).
    fn frame_rows(&self, n: usize, pick: Pick<'_>) -> Result<Vec<T>> {
        let mut raw = Vec::new();
        self.frames.read_into(n as u32, &mut raw)?;
        let rows: Vec<T> = decode_frame_rows(&raw, pick, &self.templates)
            .map_err(|e| self.frames.corrupt(&format!("frame {n}: {e}")))?;
        if rows.len() != pick.rows_read(self.info[n].rows as usize) {
            return Err(self.frames.corrupt(&format!("frame {n}: row count")));
        }
        Ok(rows)
    }

    /// Removes from `rows` the frames whose time range misses `[start, end]`.
    pub(crate) fn prune(&self, rows: &mut RoaringBitmap, start: i64, end: i64) {
        for f in &self.info {
            if f.max_ns < start || f.min_ns > end {
                rows.remove_range(f.first_row..f.first_row + f.rows);
            }
        }
    }

    /// The rows given (in frame order, either direction, each once) that
    /// `accept` takes, stopping after `limit`. Each frame is decoded once,
    /// building only the rows asked for, and accepted records are moved
    /// out of it, not copied.
    pub(crate) fn fetch(
        &self,
        rows: impl Iterator<Item = u32>,
        accept: impl Fn(&T) -> bool,
        limit: usize,
    ) -> Result<Vec<T>> {
        self.fetch_picked(rows, None, None, accept, limit)
    }

    /// [`RecordFile::fetch`] of the rows whose (trace id, span id) `ids`
    /// accepts (the others are never built) and, for log records, whose
    /// body `body` accepts (the others are built no further than their
    /// body, and `accept` is not asked about them).
    pub(crate) fn fetch_picked(
        &self,
        rows: impl Iterator<Item = u32>,
        ids: Option<IdPick<'_>>,
        body: Option<&dyn Fn(&AnyValue) -> bool>,
        accept: impl Fn(&T) -> bool,
        limit: usize,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut rows = rows.peekable();
        while let Some(&first) = rows.peek() {
            if out.len() >= limit {
                break;
            }
            let n = self.info.partition_point(|f| f.first_row + f.rows <= first);
            let Some(info) = self.info.get(n) else {
                return Err(self.frames.corrupt(&format!("row {first} out of range")));
            };
            let in_frame = |r: &u32| (info.first_row..info.first_row + info.rows).contains(r);
            let mut offsets = Vec::new();
            while let Some(r) = rows.next_if(in_frame) {
                offsets.push((r - info.first_row) as usize);
            }
            let mut wanted = vec![false; info.rows as usize];
            for &o in &offsets {
                wanted[o] = true;
            }
            // Which rows' bodies passed, by index in the frame.
            let passed = RefCell::new(vec![body.is_none(); wanted.len()]);
            let noted = |i: usize, b: &AnyValue| {
                let ok = body.is_none_or(|f| f(b));
                if let Some(p) = passed.borrow_mut().get_mut(i) {
                    *p = ok;
                }
                ok
            };
            let pick = Pick {
                mask: Some(&wanted),
                ids,
                body: body.is_some().then_some(&noted as BodyPick),
            };
            let mut recs = self.frame_rows(n, pick)?;
            let passed = passed.into_inner();
            for o in offsets {
                if out.len() >= limit {
                    break;
                }
                if let Some(r) = recs.get_mut(o)
                    && passed[o]
                    && ids.is_none_or(|f| {
                        let (t, s) = r.ids();
                        f(&t, &s)
                    })
                    && accept(r)
                {
                    out.push(std::mem::take(r));
                }
            }
        }
        Ok(out)
    }

    /// Every row, in file order.
    pub(crate) fn all(&self) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(self.rows() as usize);
        for n in 0..self.info.len() {
            out.extend(self.frame(n)?);
        }
        Ok(out)
    }

    /// Every row of the frames that still decode, and how many frames
    /// did not (repair keeps what verifies).
    pub(crate) fn salvage(&self) -> (Vec<T>, usize) {
        let mut out = Vec::new();
        let mut bad = 0;
        for n in 0..self.info.len() {
            match self.frame(n) {
                Ok(rows) => out.extend(rows),
                Err(_) => bad += 1,
            }
        }
        (out, bad)
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.frames.file_len()
    }

    /// Checks the file checksum and decodes every frame.
    pub(crate) fn verify(&self) -> Result<()> {
        self.frames.verify()?;
        self.all().map(|_| ())
    }
}

/// A block's logs or spans: the record file and the trace table over it.
#[derive(Debug)]
pub(crate) struct Records<T> {
    pub(crate) file: RecordFile<T>,
    traces: TraceTable,
}

impl<T: Columnar + Clone + Default> Records<T> {
    pub(crate) fn new(file: RecordFile<T>, traces: TraceTable) -> Self {
        Records { file, traces }
    }

    /// The rows of all of `ids` (only those whose ids `pick` accepts, when
    /// given), in file order: each frame holding any of them is
    /// decompressed once, however many of the traces it holds.
    pub(crate) fn traces(&self, ids: &[TraceId], pick: Option<IdPick<'_>>) -> Result<Vec<T>> {
        let mut rows = RoaringBitmap::new();
        for id in ids {
            self.traces.rows(id, &mut rows)?;
        }
        // A table lists whole frames (and keys by id prefix): candidates,
        // of which only the rows of the traces are built.
        rows.remove_range(self.file.rows()..);
        let mut wanted = ids.to_vec();
        wanted.sort_unstable();
        let of_trace = |t: &TraceId, s: &SpanId| {
            wanted.binary_search(t).is_ok() && pick.is_none_or(|f| f(t, s))
        };
        self.file
            .fetch_picked(rows.iter(), Some(&of_trace), None, |_| true, usize::MAX)
    }

    /// Every row, in file order.
    pub(crate) fn all(&self) -> Result<Vec<T>> {
        self.file.all()
    }

    /// Bytes of the record file and trace table.
    pub(crate) fn file_bytes(&self) -> u64 {
        self.file.file_len() + self.traces.file_len()
    }

    pub(crate) fn verify(&self) -> Result<()> {
        self.traces.verify()?;
        self.file.verify()
    }
}

fn parse_index(buf: &[u8]) -> std::result::Result<(Vec<FrameInfo>, usize), String> {
    let mut c = Cursor::new(buf);
    let n = c.count()?;
    let mut out = Vec::with_capacity(n);
    let mut first_row = 0u32;
    for _ in 0..n {
        let rows = u32::try_from(c.uvarint()?).map_err(|_| "row count")?;
        let min_ns = i64::from_le_bytes(c.array()?);
        let max_ns = i64::from_le_bytes(c.array()?);
        out.push(FrameInfo {
            first_row,
            rows,
            min_ns,
            max_ns,
        });
        first_row = first_row.checked_add(rows).ok_or("row count overflow")?;
    }
    Ok((out, buf.len() - c.remaining()))
}
