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
    /// Oldest timestamp of a sample, exemplar, log or span start (ms).
    pub min_t: i64,
    /// Newest such timestamp (ms).
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
    /// Log records in the block.
    pub logs: u64,
    /// Spans in the block.
    pub spans: u64,
    /// For a flushed block, the WAL segment its flush started (the frozen
    /// head's records are all below it). Open deletes a flushed block
    /// whose flush never completed (`flush_segment` above every block's
    /// `wal_replay_from`): its data is replayed from the WAL instead, so a
    /// crash mid-flush stores nothing twice. 0 for compacted blocks.
    pub flush_segment: u64,
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
        for v in [self.logs, self.spans, self.flush_segment] {
            put_uvarint(&mut out, v);
        }
        out
    }

    pub(crate) fn decode(buf: &[u8]) -> Result<Self> {
        let mut pos = 0;
        let mut next =
            || get_uvarint(buf, &mut pos).ok_or_else(|| Error::corrupt("", "block meta truncated"));
        let mut m = BlockMeta {
            seq: next()?,
            min_t: unzigzag(next()?),
            max_t: unzigzag(next()?),
            series: next()?,
            samples: next()?,
            chunks: next()?,
            exemplars: next()?,
            level: u32::try_from(next()?).map_err(|_| Error::corrupt("", "block level"))?,
            wal_replay_from: next()?,
            parents: Vec::new(),
            ..BlockMeta::default()
        };
        let n = next()?;
        if n > buf.len() as u64 {
            return Err(Error::corrupt("", "block meta parents"));
        }
        for _ in 0..n {
            m.parents.push(next()?);
        }
        m.logs = next()?;
        m.spans = next()?;
        m.flush_segment = next()?;
        if pos != buf.len() {
            return Err(Error::corrupt("", "block meta: trailing bytes"));
        }
        Ok(m)
    }
}
