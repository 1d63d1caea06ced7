//! Immutable, time-partitioned blocks: `blocks/<seq:020>/` holding
//! `meta`, `series`, `postings`, `exemplars` and `chunks` (formats in
//! `docs/format.md`). Blocks are written whole into `<seq>.tmp/` and made
//! visible by one rename, so a crash never leaves a half-written block in
//! view; `chunks` is memory-mapped and every frame is checked on read.

mod cache;
mod file;
mod frames;
mod logs;
mod meta;
mod records;
mod spans;
mod traces;
mod writer;

use std::ops::Range;
use std::path::{Path, PathBuf};

use sextant_index::{BlockPostings, Matcher, get_uvarint};
use sextant_wal::Vfs;

pub(crate) use cache::FrameCache;
pub(crate) use cache::FrameCursor;
pub(crate) use file::unseal;
use frames::{FrameReader, MAX_FRAME_RAW};
pub(crate) use logs::BlockLogs;
pub use meta::BlockMeta;
pub(crate) use spans::BlockSpans;
pub(crate) use writer::{BlockWriter, Compression, Written};

use crate::codec::{HistogramSample, Sample, chunk, histogram, unzigzag};
use crate::error::{Error, Result};
use crate::exemplar::Exemplar;
use crate::labels::Labels;
use crate::walrec::{self, WalRecord};

pub(crate) const META: &str = "meta";
pub(crate) const SERIES: &str = "series";
pub(crate) const POSTINGS: &str = "postings";
pub(crate) const EXEMPLARS: &str = "exemplars";
pub(crate) const CHUNKS: &str = "chunks";

pub(crate) fn block_dir(blocks: &Path, seq: u64) -> PathBuf {
    blocks.join(format!("{seq:020}"))
}

pub(crate) fn tmp_dir(blocks: &Path, seq: u64) -> PathBuf {
    blocks.join(format!("{seq:020}.tmp"))
}

/// Whether a directory name in `blocks/` is debris of an interrupted write
/// (`.tmp`) or delete (`.deleting`), to be removed at open.
pub(crate) fn is_debris(name: &str) -> bool {
    name.ends_with(".tmp") || name.ends_with(".deleting")
}

/// Deletes block directories so a crash never leaves a half-deleted block
/// under its real name: each is renamed to `<seq>.deleting`, `blocks/` is
/// fsynced, and only then are the files removed.
pub(crate) fn remove_block_dirs(vfs: &dyn Vfs, blocks: &Path, dirs: &[&Path]) -> Result<()> {
    if dirs.is_empty() {
        return Ok(());
    }
    let mut doomed = Vec::with_capacity(dirs.len());
    for d in dirs {
        let mut name = d.file_name().unwrap_or_default().to_os_string();
        name.push(".deleting");
        let to = blocks.join(name);
        vfs.rename(d, &to).map_err(|e| Error::io("rename", *d, e))?;
        doomed.push(to);
    }
    vfs.sync_dir(blocks)
        .map_err(|e| Error::io("fsync dir", blocks, e))?;
    for d in doomed {
        vfs.remove_dir_all(&d)
            .map_err(|e| Error::io("remove", &d, e))?;
    }
    vfs.sync_dir(blocks)
        .map_err(|e| Error::io("fsync dir", blocks, e))
}

#[derive(Debug, Clone, Copy)]
struct ChunkRef {
    min_t: i64,
    max_t: i64,
    frame: u32,
    offset: u32,
    len: u32,
}

#[derive(Debug)]
struct SeriesEntry {
    labels: Labels,
    chunks: Range<u32>,
    /// Histogram chunks, in the same table as the float ones.
    hist_chunks: Range<u32>,
}

/// An open block.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    series: Vec<SeriesEntry>,
    chunk_refs: Vec<ChunkRef>,
    postings: BlockPostings,
    exemplars: Vec<(u32, Exemplar)>,
    chunks: FrameReader,
    logs: Option<BlockLogs>,
    spans: Option<BlockSpans>,
    bytes: u64,
}

/// In repair, a small file that does not verify and that the rest of the
/// block can stand in for is replaced by its stand-in.
fn stand_in<T>(r: Result<T>, repair: bool, stand_in: impl FnOnce() -> T) -> Result<T> {
    match r {
        Err(_) if repair => Ok(stand_in()),
        r => r,
    }
}

impl Block {
    /// Opens and checks a block directory (all small files are verified
    /// against their CRC; chunk frames are verified when read).
    pub fn open(vfs: &dyn Vfs, dir: &Path) -> Result<Block> {
        Block::open_known(vfs, dir, None, false)
    }

    /// Opens a damaged block for repair: a `meta`, `postings` or
    /// `exemplars` file that does not verify is replaced by what the rest
    /// implies (the sequence from the directory name, no postings, no
    /// exemplars), so every series and record that still reads can be
    /// rewritten. The series table and the chunk index cannot be done
    /// without.
    pub(crate) fn open_for_repair(vfs: &dyn Vfs, dir: &Path) -> Result<Block> {
        Block::open_known(vfs, dir, None, true)
    }

    /// Opens a block just written by [`BlockWriter`], reusing its label
    /// sets (the head's, during a flush) after checking that the series
    /// table holds the same bytes, instead of allocating them again.
    pub(crate) fn open_written(vfs: &dyn Vfs, dir: &Path, labels: &[Labels]) -> Result<Block> {
        Block::open_known(vfs, dir, Some(labels), false)
    }

    fn open_known(
        vfs: &dyn Vfs,
        dir: &Path,
        known: Option<&[Labels]>,
        repair: bool,
    ) -> Result<Block> {
        let mut bytes = 0u64;
        let mut version = file::VERSION;
        let mut read = |name: &str, magic: &[u8; 4]| -> Result<Vec<u8>> {
            let p = dir.join(name);
            let raw = vfs.read(&p).map_err(|e| Error::io("read", &p, e))?;
            bytes += raw.len() as u64;
            let body = unseal(&raw, magic, &p, true)?.to_vec();
            if name == SERIES {
                version = file::version(&raw);
            }
            Ok(body)
        };
        let mut meta_lost = false;
        let meta = stand_in(
            read(META, b"SXMT")
                .and_then(|b| BlockMeta::decode(&b).map_err(|e| e.in_file(&dir.join(META)))),
            repair,
            || {
                meta_lost = true;
                BlockMeta {
                    seq: dir
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                    ..BlockMeta::default()
                }
            },
        )?;
        let series_raw = file::decompress(&read(SERIES, b"SXSR")?, &dir.join(SERIES))?;
        let postings = stand_in(
            read(POSTINGS, b"SXPS")
                .and_then(|b| file::decompress(&b, &dir.join(POSTINGS)))
                .and_then(|raw| {
                    BlockPostings::decode(&raw).map_err(|e| Error::corrupt(dir.join(POSTINGS), e))
                }),
            repair,
            BlockPostings::default,
        )?;
        let exemplars = stand_in(
            read(EXEMPLARS, b"SXEX")
                .and_then(|b| file::decompress(&b, &dir.join(EXEMPLARS)))
                .and_then(|raw| match walrec::decode(walrec::EXEMPLARS, &raw) {
                    Ok(WalRecord::Exemplars(v)) => Ok(v),
                    Ok(_) => Ok(Vec::new()),
                    Err(e) => Err(Error::corrupt(dir.join(EXEMPLARS), e)),
                }),
            repair,
            Vec::new,
        )?;
        let chunks = FrameReader::open(vfs, &dir.join(CHUNKS), b"SXCK")?;
        let (series, chunk_refs) =
            parse_series(&series_raw, version, chunks.len(), &dir.join(SERIES), known)?;
        drop(series_raw);
        if series.len() as u64 != meta.series && !meta_lost {
            return Err(Error::corrupt(
                dir.join(META),
                "series count differs from the series table",
            ));
        }
        // Without the meta, whether the block has logs and spans is
        // learned by trying to open them.
        let logs = if meta.logs > 0 {
            Some(BlockLogs::open(vfs, dir)?)
        } else if meta_lost {
            BlockLogs::open(vfs, dir).ok()
        } else {
            None
        };
        let spans = if meta.spans > 0 {
            Some(BlockSpans::open(vfs, dir)?)
        } else if meta_lost {
            BlockSpans::open(vfs, dir).ok()
        } else {
            None
        };
        let bytes = bytes
            + chunks.file_len()
            + logs
                .as_ref()
                .map_or(0, |l| l.records.file_bytes() + l.terms_bytes())
            + spans.as_ref().map_or(0, |s| s.records.file_bytes())
            + dir_bytes(&dir.join(logs::LOGS_TEXT));
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            series,
            chunk_refs,
            postings,
            exemplars,
            chunks,
            logs,
            spans,
            bytes,
        })
    }

    /// The block's description.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of its files on disk.
    pub fn size_bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes of its chunks file alone.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunks.file_len()
    }

    pub(crate) fn overlaps(&self, start: i64, end: i64) -> bool {
        self.meta.min_t <= end && self.meta.max_t >= start
    }

    /// Series indices matching `matchers`, in label order.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Vec<u32> {
        sextant_index::select(&self.postings, matchers)
            .iter()
            .collect()
    }

    pub(crate) fn labels(&self, idx: u32) -> &Labels {
        &self.series[idx as usize].labels
    }

    pub(crate) fn num_series(&self) -> u32 {
        self.series.len() as u32
    }

    pub(crate) fn label_names(&self) -> Vec<String> {
        sextant_index::Postings::label_names(&self.postings)
    }

    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        self.postings
            .label_values(name)
            .map(str::to_string)
            .collect()
    }

    /// Samples of series `idx` with `start <= t <= end`.
    pub(crate) fn samples(
        &self,
        idx: u32,
        start: i64,
        end: i64,
        cursor: &mut FrameCursor,
    ) -> Result<Vec<Sample>> {
        let entry = &self.series[idx as usize];
        let mut out = Vec::new();
        self.each_chunk(&entry.chunks, start, end, cursor, |bytes| {
            chunk::decode_range(bytes, start, end, &mut out).map_err(|e| e.to_string())
        })?;
        Ok(out)
    }

    /// Native-histogram samples of series `idx` with `start <= t <= end`.
    pub(crate) fn histograms(
        &self,
        idx: u32,
        start: i64,
        end: i64,
        cursor: &mut FrameCursor,
    ) -> Result<Vec<HistogramSample>> {
        let entry = &self.series[idx as usize];
        let mut out = Vec::new();
        self.each_chunk(&entry.hist_chunks, start, end, cursor, |bytes| {
            let run = histogram::decode(bytes).map_err(|e| e.to_string())?;
            out.extend(run.into_iter().filter(|s| s.t >= start && s.t <= end));
            Ok(())
        })?;
        Ok(out)
    }

    /// Hands the bytes of each chunk of `refs` overlapping `[start, end]`
    /// to `decode`.
    fn each_chunk(
        &self,
        refs: &Range<u32>,
        start: i64,
        end: i64,
        cursor: &mut FrameCursor,
        mut decode: impl FnMut(&[u8]) -> std::result::Result<(), String>,
    ) -> Result<()> {
        for c in &self.chunk_refs[refs.start as usize..refs.end as usize] {
            if c.max_t < start || c.min_t > end {
                continue;
            }
            let frame = cursor.frame(self.meta.seq, &self.chunks, c.frame)?;
            let bytes = frame
                .get(c.offset as usize..(c.offset as usize + c.len as usize))
                .ok_or_else(|| self.corrupt("chunk outside its frame"))?;
            decode(bytes).map_err(|e| self.corrupt(&e))?;
        }
        Ok(())
    }

    /// Exemplars of series `idx` with `start <= t <= end`.
    pub(crate) fn exemplars(&self, idx: u32, start: i64, end: i64) -> Vec<Exemplar> {
        let lo = self.exemplars.partition_point(|(i, _)| *i < idx);
        self.exemplars[lo..]
            .iter()
            .take_while(|(i, _)| *i == idx)
            .filter(|(_, e)| e.t >= start && e.t <= end)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn corrupt(&self, what: &str) -> Error {
        self.chunks.corrupt(what)
    }

    /// The block's logs, if it has any.
    pub(crate) fn logs(&self) -> Option<&BlockLogs> {
        self.logs.as_ref()
    }

    /// The block's spans, if it has any.
    pub(crate) fn spans(&self) -> Option<&BlockSpans> {
        self.spans.as_ref()
    }

    /// Re-reads every file and checks every checksum, chunk and record (for
    /// `sextant stats --verify` and tests).
    pub fn verify(&self) -> Result<()> {
        self.chunks.verify()?;
        if let Some(l) = &self.logs {
            l.verify()?;
        }
        if let Some(s) = &self.spans {
            s.records.verify()?;
        }
        let mut cursor = FrameCursor::uncached();
        for idx in 0..self.num_series() {
            self.samples(idx, i64::MIN, i64::MAX, &mut cursor)?;
            self.histograms(idx, i64::MIN, i64::MAX, &mut cursor)?;
        }
        Ok(())
    }
}

/// Bytes of the files directly in `dir` (0 if it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

/// Parses the series table (`version` 1 has no histogram chunks); label
/// sets equal to `known`'s (same index, same bytes) are shared instead of
/// decoded.
fn parse_series(
    buf: &[u8],
    version: u16,
    frames: usize,
    path: &Path,
    known: Option<&[Labels]>,
) -> Result<(Vec<SeriesEntry>, Vec<ChunkRef>)> {
    let bad = |what: &str| Error::corrupt(path, what);
    let mut pos = 0;
    let next = |pos: &mut usize| get_uvarint(buf, pos).ok_or_else(|| bad("truncated"));
    let n = next(&mut pos)?;
    if n > buf.len() as u64 {
        return Err(bad("series count"));
    }
    let mut series = Vec::with_capacity(n as usize);
    let mut refs = Vec::new();
    for _ in 0..n {
        let len = next(&mut pos)? as usize;
        let lb = buf
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| bad("labels"))?;
        pos += len;
        let labels = match known.and_then(|k| k.get(series.len())) {
            Some(l) if l.as_bytes() == lb => l.clone(),
            _ => Labels::decode(lb)?,
        };
        if series
            .last()
            .is_some_and(|s: &SeriesEntry| s.labels >= labels)
        {
            return Err(bad("series not in label order"));
        }
        let mut chunk_list = |pos: &mut usize| -> Result<Range<u32>> {
            let nc = next(pos)?;
            if nc > buf.len() as u64 {
                return Err(bad("chunk count"));
            }
            let start = refs.len() as u32;
            for _ in 0..nc {
                let min_t = unzigzag(next(pos)?);
                let max_t = min_t.wrapping_add(next(pos)? as i64);
                let frame = next(pos)?;
                let offset = next(pos)?;
                let len = next(pos)?;
                if frame >= frames as u64
                    || offset > MAX_FRAME_RAW as u64
                    || len > MAX_FRAME_RAW as u64
                {
                    return Err(bad("chunk reference out of range"));
                }
                refs.push(ChunkRef {
                    min_t,
                    max_t,
                    frame: frame as u32,
                    offset: offset as u32,
                    len: len as u32,
                });
            }
            Ok(start..refs.len() as u32)
        };
        let chunks = chunk_list(&mut pos)?;
        let hist_chunks = if version >= 2 {
            chunk_list(&mut pos)?
        } else {
            chunks.end..chunks.end
        };
        series.push(SeriesEntry {
            labels,
            chunks,
            hist_chunks,
        });
    }
    if pos != buf.len() {
        return Err(bad("trailing bytes"));
    }
    Ok((series, refs))
}
