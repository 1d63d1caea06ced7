//! Decompressed chunk frames, kept between queries.
//!
//! A block's chunks sit in zstd frames of 128 KiB; a query touching a few
//! thousand series decompresses tens of them, and dashboards repeat the
//! same queries every refresh. One bounded cache per database keeps the
//! frames read recently (quick_cache's CLOCK-PRO, so one large scan does
//! not push out what is read again and again). Compaction and `verify`
//! read past it: they touch every frame once.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::frames::FrameReader;
use crate::error::Result;

/// A decompressed frame.
type Frame = Arc<Vec<u8>>;

/// Frames by (block sequence, frame number): sequences are never reused
/// while a database is open, so a compacted-away block's frames can only
/// age out.
type Key = (u64, u32);

#[derive(Clone)]
struct ByLen;

impl Weighter<Key, Frame> for ByLen {
    fn weight(&self, _: &Key, frame: &Frame) -> u64 {
        frame.len().max(1) as u64
    }
}

/// The shared cache of decompressed frames (`Options::frame_cache_bytes`;
/// 0 turns it off).
pub(crate) struct FrameCache(Option<Cache<Key, Frame, ByLen>>);

impl std::fmt::Debug for FrameCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCache")
            .field("bytes", &self.0.as_ref().map_or(0, |c| c.weight()))
            .finish()
    }
}

impl FrameCache {
    /// A cache holding up to `bytes` of decompressed frames.
    pub(crate) fn new(bytes: u64) -> FrameCache {
        // The item estimate only sizes the table up front (frames are up
        // to 128 KiB raw): bounded, so an absurd budget cannot make the
        // table itself an allocation bomb at start-up.
        let items = (bytes / (64 << 10)).clamp(16, 1 << 16) as usize;
        FrameCache((bytes > 0).then(|| Cache::with_weighter(items, bytes, ByLen)))
    }
}

/// One reader's position: the frame it read last (consecutive series
/// mostly share a frame), in front of the shared cache.
pub(crate) struct FrameCursor {
    shared: Option<Arc<FrameCache>>,
    current: Option<(Key, Frame)>,
}

impl FrameCursor {
    pub(crate) fn new(shared: &Arc<FrameCache>) -> Self {
        FrameCursor {
            shared: Some(Arc::clone(shared)),
            current: None,
        }
    }

    /// A cursor that reads past the shared cache.
    pub(crate) fn uncached() -> Self {
        FrameCursor {
            shared: None,
            current: None,
        }
    }

    /// Frame `n` of `reader` (block `seq`), decompressed at most once
    /// while it stays cached.
    pub(crate) fn frame(&mut self, seq: u64, reader: &FrameReader, n: u32) -> Result<&[u8]> {
        let key = (seq, n);
        if self.current.as_ref().is_none_or(|(k, _)| *k != key) {
            self.current = None;
            let shared = self.shared.as_deref().and_then(|s| s.0.as_ref());
            let cached = shared.and_then(|c| c.get(&key));
            let frame = match cached {
                Some(f) => f,
                None => {
                    let mut data = Vec::new();
                    reader.read_into(n, &mut data)?;
                    let f = Arc::new(data);
                    if let Some(c) = shared {
                        c.insert(key, Arc::clone(&f));
                    }
                    f
                }
            };
            self.current = Some((key, frame));
        }
        Ok(self.current.as_ref().map_or(&[][..], |(_, f)| f.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_budget_builds_a_cache() {
        for bytes in [0, 1, 32 << 20, u64::MAX] {
            let c = FrameCache::new(bytes);
            assert_eq!(c.0.is_some(), bytes > 0);
            if let Some(c) = &c.0 {
                c.insert((1, 0), Arc::new(vec![7; 100]));
                assert_eq!(c.get(&(1, 0)).is_some(), bytes >= 100, "{bytes}");
            }
        }
    }
}
