//! The frame every block file shares: an 8-byte header and a 16-byte footer.
//!
//! ```text
//! magic[4] | version u16le | 0u16 | body … | body_len u64le | crc u32le | magic[4]
//! ```
//!
//! `crc` is the masked CRC32C of header and body. Files are written whole,
//! fsynced, and only become visible through the rename of their block
//! directory, so a reader never sees a half-written file.

use std::path::Path;

use sextant_wal::{Vfs, masked_crc};

use crate::error::{Error, Result};

pub(crate) const HEADER_LEN: usize = 8;
pub(crate) const FOOTER_LEN: usize = 16;
/// The version written. Version 2 added histogram chunks to `series`,
/// version 3 the paged full-text index `logs.terms`, version 4 trace
/// tables keyed by id prefix, version 5 log frames with bodies as template
/// and variables (a frame's column count tells its layout), text index
/// page lists by density and trace tables grouped by trace, version 6
/// text index page lists in Elias–Fano coding, version 7 log frames that
/// list their resources once, version 8 log frames that list their
/// templates once, version 9 trace tables that list frames rather than
/// rows, version 10 log frames that list their attribute sets once and
/// trace tables with one-byte fingerprints, version 11 log frames with
/// their trace flags apart from the ids; every other file reads the same
/// in all.
pub(crate) const VERSION: u16 = 11;
/// The oldest version read.
const MIN_VERSION: u16 = 1;

pub(crate) fn header(magic: &[u8; 4]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(magic);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h
}

pub(crate) fn footer(magic: &[u8; 4], body_len: u64, crc: u32) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[..8].copy_from_slice(&body_len.to_le_bytes());
    f[8..12].copy_from_slice(&crc.to_le_bytes());
    f[12..].copy_from_slice(magic);
    f
}

/// Header, body and footer of a small file written in one piece.
pub(crate) fn seal(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let h = header(magic);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + FOOTER_LEN);
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    out.extend_from_slice(&footer(magic, body.len() as u64, masked_crc(&[&h, body])));
    out
}

/// Checks header and footer (and, when `verify_crc`, the checksum) and
/// returns the body.
pub(crate) fn unseal<'a>(
    bytes: &'a [u8],
    magic: &[u8; 4],
    path: &Path,
    verify_crc: bool,
) -> Result<&'a [u8]> {
    let bad = |what: &str| Error::corrupt(path, what);
    if bytes.len() < HEADER_LEN + FOOTER_LEN {
        return Err(bad("file too short"));
    }
    let (h, rest) = bytes.split_at(HEADER_LEN);
    let (body, f) = rest.split_at(rest.len() - FOOTER_LEN);
    if &h[..4] != magic || &f[12..] != magic {
        return Err(bad("bad magic"));
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(bad(&format!("unsupported version {version}")));
    }
    let len = u64::from_le_bytes(f[..8].try_into().map_err(|_| bad("footer"))?);
    if len != body.len() as u64 {
        return Err(bad("length in footer does not match file size"));
    }
    let crc = u32::from_le_bytes(f[8..12].try_into().map_err(|_| bad("footer"))?);
    if verify_crc && crc != masked_crc(&[h, body]) {
        return Err(bad("checksum mismatch"));
    }
    Ok(body)
}

/// The version in the header of a file [`unseal`] accepted.
pub(crate) fn version(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[4], bytes[5]])
}

/// Writes a whole file and fsyncs it.
pub(crate) fn write_durable(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = vfs.create(path).map_err(|e| Error::io("create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))?;
    f.sync().map_err(|e| Error::io("fsync", path, e))
}

/// zstd-compresses a body, prefixed with its raw length so decompression
/// can refuse sizes beyond `MAX_RAW` before allocating.
pub(crate) fn compress(body: &[u8], level: i32) -> Result<Vec<u8>> {
    let mut out = (body.len() as u64).to_le_bytes().to_vec();
    // zstd only fails here for want of memory or a bad level: not corruption.
    let c = zstd::bulk::compress(body, level).map_err(|e| Error::io("zstd compress", "", e))?;
    out.extend_from_slice(&c);
    Ok(out)
}

/// The largest decompressed body accepted (guards against decompression bombs).
pub(crate) const MAX_RAW: u64 = 4 << 30;

pub(crate) fn decompress(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let bad = |what: String| Error::corrupt(path, what);
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("missing length".into()))?;
    let len = u64::from_le_bytes(len_bytes);
    if len > MAX_RAW {
        return Err(bad(format!("declared size {len} too large")));
    }
    let out =
        zstd::bulk::decompress(&bytes[8..], len as usize).map_err(|e| bad(format!("zstd: {e}")))?;
    if out.len() as u64 != len {
        return Err(bad("decompressed size mismatch".into()));
    }
    Ok(out)
}
