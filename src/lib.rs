//! Sextant: an embedded observability database.
//!
//! This crate is the embedding facade: everything a Rust service needs to
//! store and query metrics in-process, re-exported from the engine crates.
//!
//! ```no_run
//! use sextant::{Db, Labels, Matcher, Options, Sample, WriteBatch};
//!
//! let db = Db::open("./sextant-data", Options::default())?;
//! let series = Labels::new([("__name__", "http_requests_total"), ("job", "api")])?;
//! let mut batch = WriteBatch::default();
//! batch.add(series, vec![Sample::new(1_700_000_000_000, 1.0)]);
//! db.write(&batch)?; // durable when it returns (Durability::Always)
//! for s in db.select(&[Matcher::equal("job", "api")], 0, i64::MAX)? {
//!     let s = s?;
//!     println!("{} has {} samples", s.labels, s.samples.len());
//! }
//! db.close()?;
//! # Ok::<(), sextant::Error>(())
//! ```

pub use sextant_storage::{
    Block, BlockMeta, BlockStats, Db, Durability, Error, Exemplar, HOUR_MS, LabelLimits, Labels,
    METRIC_NAME, MatchOp, Matcher, Options, Result, Sample, Series, SeriesSet, SeriesWrite, Stats,
    WriteBatch, WriteSummary,
};

/// Lower layers, for tools and tests that need them (fault injection, WAL
/// inspection).
pub mod wal {
    pub use sextant_wal::*;
}
