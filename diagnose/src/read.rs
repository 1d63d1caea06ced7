//! What diagnosis reads from the database, with the limits that keep one
//! request from reading without end.

use sextant_storage::{Db, Span, SpanSearch};

use crate::error::{Error, Result};
use crate::graph::{Builder, ServiceGraph};

/// The longest window one request reads spans for.
pub const MAX_WINDOW_MS: i64 = 7 * 24 * 3_600_000;
/// Most spans one service-graph request reads; past it the graph is built
/// from the newest spans and says it is partial.
pub const MAX_SPANS: usize = 2_000_000;

/// Checks a window's bounds (ms): a clear message for each way it is wrong.
pub fn check_window(start: i64, end: i64, max_ms: i64) -> Result<()> {
    if end < start {
        return Err(Error::Request(format!(
            "the window ends ({end}) before it starts ({start})"
        )));
    }
    if end - start > max_ms {
        return Err(Error::Request(format!(
            "the window is {} long; at most {} is allowed",
            human(end - start),
            human(max_ms)
        )));
    }
    Ok(())
}

fn human(ms: i64) -> String {
    if ms >= 86_400_000 && ms % 86_400_000 == 0 {
        format!("{}d", ms / 86_400_000)
    } else if ms >= 3_600_000 {
        format!("{:.1}h", ms as f64 / 3_600_000.0)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// The spans starting in `[start, end)` (ms), at most [`MAX_SPANS`] (the
/// newest), and whether there were more.
pub(crate) fn spans(db: &Db, start: i64, end: i64) -> Result<(Vec<Span>, bool)> {
    let mut v = db.find_spans(&SpanSearch {
        start_ns: start.saturating_mul(1_000_000),
        end_ns: end.saturating_mul(1_000_000).saturating_sub(1),
        limit: MAX_SPANS + 1,
        ..SpanSearch::default()
    })?;
    let truncated = v.len() > MAX_SPANS;
    v.truncate(MAX_SPANS);
    Ok((v, truncated))
}

/// The service graph of `[start, end)` (ms) from the spans stored.
pub fn service_graph(db: &Db, start: i64, end: i64) -> Result<ServiceGraph> {
    check_window(start, end, MAX_WINDOW_MS)?;
    let (spans, truncated) = spans(db, start, end)?;
    let mut b = Builder::new();
    b.add(&spans);
    Ok(b.finish(start, end, truncated))
}
