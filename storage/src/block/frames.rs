//! Files of zstd-compressed frames: a block's `chunks`, `logs` and `spans`.
//!
//! ```text
//! header | (raw_len u32le | comp_len u32le | crc u32le | zstd bytes)* | footer
//! ```
//!
//! `crc` is the masked CRC32C of the compressed bytes, checked on every
//! read; the footer's CRC covers the whole file and is checked by
//! `stats --verify`. Files are written as a stream and fsynced at the end.

use std::path::{Path, PathBuf};

use sextant_wal::{FileWrite, Mapped, Vfs, masked_crc};

use super::file::{self, HEADER_LEN};
use crate::error::{Error, Result};

thread_local! {
    /// One zstd context per thread, reused for every frame: creating one
    /// per frame was ~2% of a query's CPU.
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Smallest part of a frame [`FrameWriter::write_parts`] compresses on
/// its own: a zstd frame costs about ten bytes of header, and tiny columns
/// (a byte a row) compress as well beside their neighbours.
const MIN_PART: usize = 1024;

/// zstd level of the columns of random ids (trace and span ids of log
/// records): zstd's fastest level that still looks for matches. On the
/// benchmarks' log records it compressed them 2.8 times as fast as level 3,
/// to 0.3% more bytes (ids repeat only where one trace logs again).
const RANDOM_LEVEL: i32 = -1;

/// Largest raw frame a reader accepts.
pub(crate) const MAX_FRAME_RAW: usize = 16 << 20;

/// Writes a frame file.
pub(crate) struct FrameWriter {
    file: Box<dyn FileWrite>,
    path: PathBuf,
    magic: [u8; 4],
    crc: u32,
    len: u64,
    frames: u32,
    /// One zstd context for every frame of the file: creating one per
    /// frame (`zstd::bulk::compress`) allocated and freed its MiBs of
    /// tables 128 KiB at a time.
    cctx: zstd::bulk::Compressor<'static>,
    /// Another at [`RANDOM_LEVEL`]: one context switched from level to
    /// level cleared its tables at every switch (3% more ingest CPU).
    random_cctx: zstd::bulk::Compressor<'static>,
    /// The compressed bytes of the frame being written, kept for the next.
    comp: Vec<u8>,
}

impl FrameWriter {
    pub(crate) fn create(vfs: &dyn Vfs, path: &Path, magic: &[u8; 4], level: i32) -> Result<Self> {
        let mut f = vfs.create(path).map_err(|e| Error::io("create", path, e))?;
        let h = file::header(magic);
        f.write_all(&h).map_err(|e| Error::io("write", path, e))?;
        Ok(FrameWriter {
            file: f,
            path: path.to_path_buf(),
            magic: *magic,
            crc: crc32c::crc32c(&h),
            len: 0,
            frames: 0,
            cctx: zstd::bulk::Compressor::new(level)
                .map_err(|e| Error::io("zstd compressor", path, e))?,
            random_cctx: zstd::bulk::Compressor::new(RANDOM_LEVEL)
                .map_err(|e| Error::io("zstd compressor", path, e))?,
            comp: Vec::new(),
        })
    }

    /// Frames written so far (the number the next frame gets).
    pub(crate) fn frames(&self) -> u32 {
        self.frames
    }

    /// Compresses and appends one frame.
    pub(crate) fn write(&mut self, raw: &[u8]) -> Result<()> {
        self.write_parts(raw, &[], &[])
    }

    /// Compresses and appends one frame whose bytes fall into parts of
    /// different kinds (the columns of a column frame, starting at
    /// `starts`): each part of at least [`MIN_PART`] bytes is compressed
    /// on its own, as the next zstd frame of the frame's bytes (a smaller
    /// one joins the next part, the last one the part before). zstd reads
    /// concatenated frames as one stream, so readers see the same bytes;
    /// compressed apart, the match finder and entropy tables of one
    /// column are not spent on another (7% fewer bytes of log records,
    /// measured on both benchmark corpora at level 3).
    ///
    /// A part that ends with one of the columns `random` lists (indexes
    /// into `starts`: random ids) is compressed at [`RANDOM_LEVEL`]: a
    /// deeper match search finds nothing more in random bytes.
    pub(crate) fn write_parts(
        &mut self,
        raw: &[u8],
        starts: &[usize],
        random: &[usize],
    ) -> Result<()> {
        let mut comp = std::io::Cursor::new(std::mem::take(&mut self.comp));
        comp.get_mut().clear();
        let mut from = 0;
        // Part `k` ends where column `k` starts: it holds column `k - 1`
        // (and smaller ones before it); the last part holds the last
        // column with bytes (empty ones at the end are no part).
        let ends = (starts.iter().copied())
            .filter(|&e| e < raw.len())
            .chain([raw.len()]);
        for (k, end) in ends.enumerate() {
            let last = end == raw.len();
            if !last && (end < from + MIN_PART || raw.len() - end < MIN_PART) {
                continue;
            }
            let part = &raw[from..end];
            let cctx = match random.contains(&k.wrapping_sub(1)) {
                true => &mut self.random_cctx,
                false => &mut self.cctx,
            };
            comp.get_mut()
                .reserve(zstd::zstd_safe::compress_bound(part.len()));
            let at = comp.get_ref().len() as u64;
            comp.set_position(at);
            cctx.compress_to_buffer(part, &mut comp)
                .map_err(|e| Error::io("zstd compress", &self.path, e))?;
            from = end;
        }
        let comp = comp.into_inner();
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&(comp.len() as u32).to_le_bytes());
        head[8..].copy_from_slice(&masked_crc(&[&comp]).to_le_bytes());
        for part in [&head[..], &comp] {
            self.file
                .write_all(part)
                .map_err(|e| Error::io("write", &self.path, e))?;
            self.crc = crc32c::crc32c_append(self.crc, part);
            self.len += part.len() as u64;
        }
        self.comp = comp;
        self.frames += 1;
        Ok(())
    }

    /// Writes the footer and fsyncs.
    pub(crate) fn finish(mut self) -> Result<()> {
        let footer = file::footer(&self.magic, self.len, sextant_wal::mask_crc(self.crc));
        self.file
            .write_all(&footer)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.file
            .sync()
            .map_err(|e| Error::io("fsync", &self.path, e))
    }
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    offset: usize,
    raw_len: u32,
    comp_len: u32,
    crc: u32,
}

/// A memory-mapped frame file.
#[derive(Debug)]
pub(crate) struct FrameReader {
    map: Mapped,
    frames: Vec<Frame>,
    path: PathBuf,
    magic: [u8; 4],
}

impl FrameReader {
    /// Maps the file and indexes its frames (header and footer checked; the
    /// whole-file checksum only by [`FrameReader::verify`]).
    pub(crate) fn open(vfs: &dyn Vfs, path: &Path, magic: &[u8; 4]) -> Result<Self> {
        let map = vfs.map(path).map_err(|e| Error::io("mmap", path, e))?;
        let body_len = file::unseal(&map, magic, path, false)?.len();
        let body = &map[HEADER_LEN..HEADER_LEN + body_len];
        let mut frames = Vec::new();
        let mut pos = 0;
        while pos < body.len() {
            let head = body
                .get(pos..pos + 12)
                .ok_or_else(|| Error::corrupt(path, "truncated frame header").at(pos as u64))?;
            let word =
                |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
            let f = Frame {
                offset: HEADER_LEN + pos + 12,
                raw_len: word(0),
                comp_len: word(4),
                crc: word(8),
            };
            pos += 12 + f.comp_len as usize;
            if pos > body.len() || f.raw_len as usize > MAX_FRAME_RAW {
                return Err(
                    Error::corrupt(path, format!("frame {} out of bounds", frames.len()))
                        .at((pos - 12 - f.comp_len as usize) as u64),
                );
            }
            frames.push(f);
        }
        // The walk touched every frame header; keep none of it resident
        // (queries read a few frames each).
        map.release_pages();
        Ok(FrameReader {
            map,
            frames,
            path: path.to_path_buf(),
            magic: *magic,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Bytes of the file.
    pub(crate) fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    pub(crate) fn corrupt(&self, what: &str) -> Error {
        Error::corrupt(&self.path, what)
    }

    /// Checks and decompresses frame `n` into `out`.
    pub(crate) fn read_into(&self, n: u32, out: &mut Vec<u8>) -> Result<()> {
        let f = *self
            .frames
            .get(n as usize)
            .ok_or_else(|| self.corrupt("frame index"))?;
        let comp = &self.map[f.offset..f.offset + f.comp_len as usize];
        if masked_crc(&[comp]) != f.crc {
            return Err(self
                .corrupt(&format!("frame {n} checksum mismatch"))
                .at(f.offset as u64));
        }
        out.clear();
        out.reserve(f.raw_len as usize);
        let got = DCTX
            .with_borrow_mut(|d| {
                let d = match d {
                    Some(d) => d,
                    None => d.insert(zstd::bulk::Decompressor::new()?),
                };
                d.decompress_to_buffer(comp, out)
            })
            .map_err(|e| self.corrupt(&format!("frame {n}: zstd: {e}")))?;
        if got != f.raw_len as usize {
            return Err(self.corrupt(&format!(
                "frame {n}: {got} bytes decompressed, header says {}",
                f.raw_len
            )));
        }
        Ok(())
    }

    /// Checks the whole-file checksum.
    pub(crate) fn verify(&self) -> Result<()> {
        file::unseal(&self.map, &self.magic, &self.path, true).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sextant_wal::StdFs;

    use super::*;

    proptest! {
        /// Frames written in parts, cut anywhere, read back byte for byte,
        /// and a part of at least `MIN_PART` bytes is a zstd frame of its
        /// own, at the file's level or, for columns of random ids, at
        /// `RANDOM_LEVEL`.
        #[test]
        fn frames_in_parts_read_back(
            frames in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..5000),
                 proptest::collection::vec(any::<usize>(), 0..12),
                 proptest::collection::vec(0usize..12, 0..4)),
                1..5),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let mut w = FrameWriter::create(&StdFs, &path, b"TEST", 3).unwrap();
            for (raw, cuts, random) in &frames {
                let mut starts: Vec<usize> = cuts.iter().map(|c| c % (raw.len() + 1)).collect();
                starts.sort_unstable();
                w.write_parts(raw, &starts, random).unwrap();
            }
            w.finish().unwrap();
            let r = FrameReader::open(&StdFs, &path, b"TEST").unwrap();
            r.verify().unwrap();
            prop_assert_eq!(r.len(), frames.len());
            let mut out = Vec::new();
            for (n, (raw, _, _)) in frames.iter().enumerate() {
                r.read_into(n as u32, &mut out).unwrap();
                prop_assert_eq!(&out, raw);
            }
        }
    }

    proptest! {
        /// A frame whose concatenated zstd frames are damaged past its
        /// checksum (the checksum rewritten to match) reads as an error or
        /// as exactly `raw_len` bytes, never a panic; with the checksum
        /// left alone the damage is a checksum error.
        #[test]
        fn damaged_parts_are_errors_not_panics(
            raw in proptest::collection::vec(0u8..4, 2048..6000),
            flip in any::<(prop::sample::Index, u8)>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let mut w = FrameWriter::create(&StdFs, &path, b"TEST", 3).unwrap();
            w.write_parts(&raw, &[1500, 3000, 4500], &[1]).unwrap();
            w.finish().unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            let comp_len = u32::from_le_bytes(bytes[HEADER_LEN + 4..HEADER_LEN + 8].try_into().unwrap()) as usize;
            let comp_at = HEADER_LEN + 12;
            bytes[comp_at + flip.0.index(comp_len)] ^= flip.1 | 1;
            std::fs::write(&path, &bytes).unwrap();
            let r = FrameReader::open(&StdFs, &path, b"TEST").unwrap();
            let mut out = Vec::new();
            prop_assert!(r.read_into(0, &mut out).is_err(), "checksum catches it");
            let crc = masked_crc(&[&bytes[comp_at..comp_at + comp_len]]);
            bytes[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&crc.to_le_bytes());
            std::fs::write(&path, &bytes).unwrap();
            let r = FrameReader::open(&StdFs, &path, b"TEST").unwrap();
            if r.read_into(0, &mut out).is_ok() {
                prop_assert_eq!(out.len(), raw.len());
            }
        }
    }

    /// Columns of a kilobyte or more are zstd frames of their own; smaller
    /// ones join the next, a small last one the one before.
    #[test]
    fn parts_under_the_minimum_join_a_neighbour() {
        let raw: Vec<u8> = (0..3 * MIN_PART).map(|i| (i / 7) as u8).collect();
        // Cuts at 10 (too soon), MIN_PART + 10 and 2 * MIN_PART (too soon
        // after): two zstd frames; cuts at MIN_PART + 10 and 10 bytes from
        // the end (too little after): two.
        for starts in [
            [10, MIN_PART + 10, 2 * MIN_PART],
            [MIN_PART + 10, 3 * MIN_PART - 10, 3 * MIN_PART],
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let mut w = FrameWriter::create(&StdFs, &path, b"TEST", 3).unwrap();
            w.write_parts(&raw, &starts, &[]).unwrap();
            w.finish().unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let magic = 0xFD2F_B528u32.to_le_bytes();
            let zstd_frames = bytes.windows(4).filter(|w| *w == magic).count();
            assert_eq!(zstd_frames, 2, "cut at {starts:?}");
            let r = FrameReader::open(&StdFs, &path, b"TEST").unwrap();
            let mut out = Vec::new();
            r.read_into(0, &mut out).unwrap();
            assert_eq!(out, raw);
        }
    }
}
