//! Sextant: an embedded observability database.
//!
//! This crate is the embedding facade: everything a Rust service needs to
//! store and query metrics, logs and spans in-process, re-exported from
//! the engine crates.
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
//! use sextant::QueryExt;
//! let v = db.query_instant("sum by (job) (http_requests_total)", 1_700_000_000_000)?;
//! let errors = db.search_logs(&sextant::LogSearch {
//!     matchers: vec![Matcher::equal("service", "checkout"), Matcher::equal("level", "error")],
//!     text: Some(sextant::TextQuery::parse("\"connection refused\" OR timeout")?),
//!     ..Default::default()
//! })?;
//! for log in &errors {
//!     if let Some(trace) = db.trace(&log.trace_id)? {
//!         println!("{} spans in the trace of {:?}", trace.spans.len(), log.body);
//!     }
//! }
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use sextant_storage::{
    AnyValue, Attributes, Block, BlockMeta, BlockOutcome, BlockRepair, BlockStats, Db, Durability,
    Error, Exemplar, HOUR_MS, LabelLimits, Labels, LogRecord, LogSearch, METRIC_NAME, MatchOp,
    Matcher, Options, RecordLimits, RecordSummary, RepairReport, Resource, Result, SERVICE_NAME,
    Sample, Series, SeriesSet, SeriesWrite, Span, SpanEvent, SpanId, SpanKind, SpanLink,
    SpanSearch, Stats, StatusCode, TextQuery, Trace, TraceId, WriteBatch, WriteSummary, hex,
    parse_trace_id, repair,
};

pub use sextant_query::value::{Elem, RangeSeries, Value};
pub use sextant_query::{Answer, Engine, EngineOptions, ParseError, When, parse};

/// Automatic diagnosis: the exchange calendar, the service graph from
/// spans, log templates (`sextant::diagnose::service_graph(&db, start, end)`).
pub use sextant_diagnose as diagnose;

/// PromQL on an embedded database: `use sextant::QueryExt` and call
/// `db.query_instant(...)` / `db.query_range(...)`. Times are ms since the
/// epoch; results are typed ([`Value`]: scalar, string, vector, matrix).
pub trait QueryExt {
    /// Evaluates `expr` at `t`.
    fn query_instant(&self, expr: &str, t: i64)
    -> std::result::Result<Value, sextant_query::Error>;
    /// Evaluates `expr` at every `step` from `start` to `end`.
    fn query_range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> std::result::Result<Value, sextant_query::Error>;
}

impl QueryExt for Db {
    fn query_instant(
        &self,
        expr: &str,
        t: i64,
    ) -> std::result::Result<Value, sextant_query::Error> {
        Engine::new(self, EngineOptions::default()).instant(&parse(expr)?, t)
    }

    fn query_range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> std::result::Result<Value, sextant_query::Error> {
        Engine::new(self, EngineOptions::default()).range(&parse(expr)?, start, end, step)
    }
}

/// Lower layers, for tools and tests that need them (fault injection, WAL
/// inspection).
pub mod wal {
    pub use sextant_wal::*;
}
