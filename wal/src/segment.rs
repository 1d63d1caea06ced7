//! Segment files: `<number:020>.wal` in the log directory, each starting with
//! a 16-byte header (magic `SXWAL\0`, u16le version, u64le segment number).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::Vfs;

pub(crate) const MAGIC: &[u8; 6] = b"SXWAL\0";
pub(crate) const VERSION: u16 = 1;
pub(crate) const HEADER_LEN: usize = 16;

/// Path of segment `n` in `dir`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.wal"))
}

/// Segment numbers present in `dir`, ascending. Files that are not segments
/// are ignored.
pub fn list_segments(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = vfs
        .list(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let num = name.strip_suffix(".wal")?;
            (num.len() == 20).then(|| num.parse().ok())?
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

pub(crate) fn header(n: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..6].copy_from_slice(MAGIC);
    h[6..8].copy_from_slice(&VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&n.to_le_bytes());
    h
}

/// Checks a segment's header; `Err` carries the reason.
pub(crate) fn check_header(buf: &[u8], n: u64) -> std::result::Result<(), &'static str> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err("segment shorter than its header");
    };
    if &h[..6] != MAGIC {
        return Err("bad segment magic");
    }
    if u16::from_le_bytes([h[6], h[7]]) != VERSION {
        return Err("unsupported segment version");
    }
    if u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]) != n {
        return Err("segment number in header does not match file name");
    }
    Ok(())
}
