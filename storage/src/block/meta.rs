//! `meta`: what a block covers and where it came from.

use sextant_index::{get_uvarint, put_uvarint};

use crate::codec::{unzigzag, zigzag};
use crate::error::{Error, Result};

/// Description of a block, stored in its `meta` file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockMeta {
    /// Sequence number: unique, increasing. On equal timestamps the sample
    /// of the higher sequence wins (it was written later).
    pub seq: u64,
    /// Oldest sample timestamp (ms).
    pub min_t: i64,
    /// Newest sample timestamp (ms).
    pub max_t: i64,
    /// Series in the block.
    pub series: u64,
    /// Samples in the block.
    pub samples: u64,
    /// Chunks in the block.
    pub chunks: u64,
    /// Exemplars in the block.
    pub exemplars: u64,
    /// 0 for a flushed head, k for a block compacted to the kth range.
    pub level: u32,
    /// WAL segments below this number hold only data that is in blocks.
    pub wal_replay_from: u64,
    /// Sequences of the blocks this one replaces (compaction); if any of
    /// them is still on disk at open, it is deleted.
    pub parents: Vec<u64>,
}

impl BlockMeta {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [
            self.seq,
            zigzag(self.min_t),
            zigzag(self.max_t),
            self.series,
            self.samples,
            self.chunks,
            self.exemplars,
            u64::from(self.level),
            self.wal_replay_from,
        ] {
            put_uvarint(&mut out, v);
        }
        put_uvarint(&mut out, self.parents.len() as u64);
        for p in &self.parents {
            put_uvarint(&mut out, *p);
        }
        out
    }

    pub(crate) fn decode(buf: &[u8]) -> Result<Self> {
        let mut pos = 0;
        let mut next = || {
            get_uvarint(buf, &mut pos).ok_or_else(|| Error::Corrupt("block meta truncated".into()))
        };
        let mut m = BlockMeta {
            seq: next()?,
            min_t: unzigzag(next()?),
            max_t: unzigzag(next()?),
            series: next()?,
            samples: next()?,
            chunks: next()?,
            exemplars: next()?,
            level: u32::try_from(next()?).map_err(|_| Error::Corrupt("block level".into()))?,
            wal_replay_from: next()?,
            parents: Vec::new(),
        };
        let n = next()?;
        if n > buf.len() as u64 {
            return Err(Error::Corrupt("block meta parents".into()));
        }
        for _ in 0..n {
            m.parents.push(next()?);
        }
        Ok(m)
    }
}
