//! Sextant's storage engine for metrics, logs and spans: a
//! write-ahead-logged in-memory head, flushed into immutable,
//! time-partitioned, compressed blocks that are compacted into larger
//! ranges and deleted by retention — the three signals together.
//!
//! Metrics follow Prometheus' model: a series is a sorted label set
//! including `__name__`; samples are (i64 ms, f64), the staleness NaN
//! included; each series may carry exemplars that point at traces. Logs
//! and spans follow OpenTelemetry's ([`LogRecord`], [`Span`]); logs are
//! searchable by full text and fields ([`LogSearch`]), spans by fields
//! ([`SpanSearch`]), and both by trace id.
//!
//! Start at [`Db`]; `docs/architecture.md` walks the write and read paths
//! and lists every fsync in crash order, `docs/format.md` every byte.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod block;
pub mod codec;
mod compact;
mod db;
mod error;
mod exemplar;
mod flush;
mod head;
mod labels;
mod logs;
mod model;
mod options;
mod records;
mod repair;
mod select;
mod spans;
mod stats;
pub mod walrec;

pub use block::{Block, BlockMeta};
pub use codec::{HistogramSample, Sample};
pub use db::{Db, SeriesWrite, WriteBatch, WriteSummary};
pub use error::{Error, Result};
pub use exemplar::Exemplar;
pub use head::SeriesRef;
pub use labels::{Labels, METRIC_NAME};
pub use logs::{LogSearch, MAX_FIELD_VALUE_LEN, level_of};
pub use model::{
    AnyValue, Attributes, LogRecord, RecordLimits, Resource, SERVICE_NAME, Span, SpanEvent, SpanId,
    SpanKind, SpanLink, StatusCode, TraceId, hex, parse_trace_id, service_of,
};
pub use options::{Durability, HOUR_MS, LabelLimits, Options};
pub use records::{IdPick, RecordSummary};
pub use repair::{BlockOutcome, BlockRepair, RepairReport, repair};
pub use select::{Series, SeriesSet};
pub use sextant_histogram::{
    CounterReset, Histogram, MAX_SCHEMA as HISTOGRAM_MAX_SCHEMA,
    MIN_SCHEMA as HISTOGRAM_MIN_SCHEMA, Span as HistogramSpan,
};
pub use sextant_index::text::TextQuery;
pub use sextant_index::{MatchOp, Matcher};
pub use spans::{SPAN_FIELDS, SpanSearch, Trace};
pub use stats::{BlockStats, Stats};

/// Asks the CPU to start loading the cache line at `p`, so that a later
/// read of it does not wait on memory. Writes that touch thousands of
/// series (remote_write) issue these a few series ahead: each series
/// is otherwise one cache miss after another. A hint only: any address is
/// allowed, nothing is read.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch never faults and does not access memory
    // architecturally, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
