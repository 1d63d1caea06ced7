//! Writes one block into `<seq>.tmp/`, then publishes it by rename.

use std::path::{Path, PathBuf};

use sextant_index::{BlockPostings, put_uvarint};
use sextant_wal::Vfs;

use super::file;
use super::frames::FrameWriter;
use super::meta::BlockMeta;
use super::{CHUNKS, EXEMPLARS, META, POSTINGS, SERIES, block_dir, tmp_dir};
use crate::codec::{HistogramSample, Sample, chunk, histogram, zigzag};
use crate::error::{Error, Result};
use crate::exemplar::Exemplar;
use crate::labels::Labels;
use crate::model::{LogRecord, Span};
use crate::walrec;

/// Most samples in one block chunk.
pub(crate) const CHUNK_SAMPLES: usize = 4096;
/// Most histogram samples in one block chunk: a read decodes a whole
/// chunk, and a histogram sample is a bucket list, not a float.
pub(crate) const HIST_CHUNK_SAMPLES: usize = 256;
/// Raw bytes gathered before a frame of the chunks file is compressed.
pub(crate) const FRAME_RAW: usize = 128 << 10;
/// Room kept in front of the series table for its count varint, so the
/// table is compressed in place instead of copied behind it.
const COUNT_ROOM: usize = 10;

/// A finished block: its meta, and its series' label sets (shared with
/// whatever the writer was given, so opening the block allocates none).
pub(crate) struct Written {
    pub(crate) meta: BlockMeta,
    pub(crate) labels: Vec<Labels>,
}

/// How hard to compress: flushes favour speed, compactions size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compression {
    /// zstd level of chunks and the small files.
    pub(crate) level: i32,
    /// zstd level of log and span record files.
    pub(crate) records: i32,
}

pub(crate) struct BlockWriter<'a> {
    vfs: &'a dyn Vfs,
    blocks_dir: PathBuf,
    tmp: PathBuf,
    meta: BlockMeta,
    compression: Compression,
    chunks: FrameWriter,
    frame: Vec<u8>,
    series: Vec<u8>,
    labels: Vec<Labels>,
    exemplars: Vec<u8>,
}

impl<'a> BlockWriter<'a> {
    /// Starts a block; `meta` gives seq, level, parents and WAL coverage,
    /// the rest is counted as series are added.
    pub(crate) fn new(
        vfs: &'a dyn Vfs,
        blocks_dir: &Path,
        meta: BlockMeta,
        compression: Compression,
    ) -> Result<Self> {
        let tmp = tmp_dir(blocks_dir, meta.seq);
        let _ = vfs.remove_dir_all(&tmp);
        vfs.create_dir_all(&tmp)
            .map_err(|e| Error::io("create dir", &tmp, e))?;
        let chunks = FrameWriter::create(vfs, &tmp.join(CHUNKS), b"SXCK", compression.level)?;
        Ok(BlockWriter {
            vfs,
            blocks_dir: blocks_dir.to_path_buf(),
            chunks,
            tmp,
            meta: BlockMeta {
                min_t: i64::MAX,
                max_t: i64::MIN,
                ..meta
            },
            compression,
            frame: Vec::with_capacity(FRAME_RAW * 2),
            series: vec![0; COUNT_ROOM],
            labels: Vec::new(),
            exemplars: Vec::new(),
        })
    }

    /// Adds a series. Calls must come in label order; `samples` and
    /// `histograms` must each be in time order with unique timestamps.
    /// Series with no data are skipped.
    pub(crate) fn add(
        &mut self,
        labels: &Labels,
        samples: &[Sample],
        histograms: &[HistogramSample],
        exemplars: &[Exemplar],
    ) -> Result<()> {
        if samples.is_empty() && histograms.is_empty() && exemplars.is_empty() {
            return Ok(());
        }
        debug_assert!(self.labels.last().is_none_or(|l| l < labels));
        let idx = self.labels.len() as u32;
        self.labels.push(labels.clone());
        put_uvarint(&mut self.series, labels.as_bytes().len() as u64);
        self.series.extend_from_slice(labels.as_bytes());
        put_uvarint(
            &mut self.series,
            samples.len().div_ceil(CHUNK_SAMPLES) as u64,
        );
        for c in samples.chunks(CHUNK_SAMPLES) {
            self.put_chunk(c[0].t, c[c.len() - 1].t, |out| chunk::encode(c, out))?;
        }
        put_uvarint(
            &mut self.series,
            histograms.len().div_ceil(HIST_CHUNK_SAMPLES) as u64,
        );
        for c in histograms.chunks(HIST_CHUNK_SAMPLES) {
            self.put_chunk(c[0].t, c[c.len() - 1].t, |out| histogram::encode(c, out))?;
        }
        self.meta.samples += (samples.len() + histograms.len()) as u64;
        for e in exemplars {
            walrec::encode_exemplar(&mut self.exemplars, idx, e);
            self.meta.min_t = self.meta.min_t.min(e.t);
            self.meta.max_t = self.meta.max_t.max(e.t);
        }
        self.meta.exemplars += exemplars.len() as u64;
        self.meta.series += 1;
        Ok(())
    }

    /// Appends one chunk to the current frame and its reference to the
    /// series table.
    fn put_chunk(
        &mut self,
        min_t: i64,
        max_t: i64,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        if self.frame.len() >= FRAME_RAW {
            self.flush_frame()?;
        }
        let offset = self.frame.len();
        encode(&mut self.frame);
        put_uvarint(&mut self.series, zigzag(min_t));
        put_uvarint(&mut self.series, max_t.wrapping_sub(min_t) as u64);
        put_uvarint(&mut self.series, u64::from(self.chunks.frames()));
        put_uvarint(&mut self.series, offset as u64);
        put_uvarint(&mut self.series, (self.frame.len() - offset) as u64);
        self.meta.min_t = self.meta.min_t.min(min_t);
        self.meta.max_t = self.meta.max_t.max(max_t);
        self.meta.chunks += 1;
        Ok(())
    }

    /// Adds the block's log records, in time order (once per block).
    pub(crate) fn add_logs(&mut self, rows: &[&LogRecord]) -> Result<()> {
        self.add_indexed_logs(rows, super::logs::index_of(rows))
    }

    /// [`BlockWriter::add_logs`] with the index of their terms already
    /// gathered (from the head's postings).
    pub(crate) fn add_indexed_logs(
        &mut self,
        rows: &[&LogRecord],
        index: sextant_index::text::PagedIndexWriter<'_>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        super::logs::write(self.vfs, &self.tmp, rows, index, self.compression.records)?;
        for r in rows {
            self.note_time(r.time_ms());
        }
        self.meta.logs = rows.len() as u64;
        Ok(())
    }

    /// Adds the block's spans, in block order (once per block).
    pub(crate) fn add_spans(&mut self, rows: &[&Span]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        super::spans::write(self.vfs, &self.tmp, rows, self.compression.records)?;
        for s in rows {
            self.note_time(s.start_ms());
        }
        self.meta.spans = rows.len() as u64;
        Ok(())
    }

    fn note_time(&mut self, t: i64) {
        self.meta.min_t = self.meta.min_t.min(t);
        self.meta.max_t = self.meta.max_t.max(t);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.meta.logs == 0 && self.meta.spans == 0
    }

    /// Abandons the block, removing its temporary directory.
    pub(crate) fn discard(self) -> Result<()> {
        drop(self.chunks);
        self.vfs
            .remove_dir_all(&self.tmp)
            .map_err(|e| Error::io("remove", &self.tmp, e))
    }

    fn flush_frame(&mut self) -> Result<()> {
        if self.frame.is_empty() {
            return Ok(());
        }
        self.chunks.write(&self.frame)?;
        self.frame.clear();
        Ok(())
    }

    /// Writes the remaining files, fsyncs them and the directory, and
    /// renames the directory into place. Each table is written and its
    /// buffer freed before the next is built: a flush runs beside the
    /// whole head, so its own peak is what counts.
    pub(crate) fn finish(mut self) -> Result<Written> {
        self.flush_frame()?;
        self.chunks.finish()?;
        self.frame = Vec::new();

        let level = self.compression.level;
        let (vfs, tmp) = (self.vfs, &self.tmp);
        let write_file = |name: &str, magic: &[u8; 4], body: &[u8]| {
            file::write_durable(vfs, &tmp.join(name), &file::seal(magic, body))
        };
        let mut count = Vec::new();
        put_uvarint(&mut count, self.meta.series);
        let at = COUNT_ROOM - count.len();
        self.series[at..COUNT_ROOM].copy_from_slice(&count);
        let series = file::compress(&self.series[at..], level)?;
        self.series = Vec::new();
        write_file(SERIES, b"SXSR", &series)?;
        drop(series);
        let postings = BlockPostings::build(self.labels.iter().map(|l| l.iter())).encode();
        write_file(POSTINGS, b"SXPS", &file::compress(&postings, level)?)?;
        drop(postings);
        write_file(EXEMPLARS, b"SXEX", &file::compress(&self.exemplars, level)?)?;
        write_file(META, b"SXMT", &self.meta.encode())?;
        vfs.sync_dir(&self.tmp)
            .map_err(|e| Error::io("fsync dir", &self.tmp, e))?;
        let dest = block_dir(&self.blocks_dir, self.meta.seq);
        vfs.rename(&self.tmp, &dest)
            .map_err(|e| Error::io("rename", &dest, e))?;
        vfs.sync_dir(&self.blocks_dir)
            .map_err(|e| Error::io("fsync dir", &self.blocks_dir, e))?;
        Ok(Written {
            meta: self.meta,
            labels: self.labels,
        })
    }
}
