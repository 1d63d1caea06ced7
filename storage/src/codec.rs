//! Sample codecs.
//!
//! * [`gorilla`]: the Gorilla bit stream (delta-of-delta timestamps, XOR
//!   floats). Appendable one sample at a time, so the head uses it.
//! * [`chunk`]: the block chunk format: byte-aligned delta-of-delta
//!   timestamps and, when every value is a short decimal, scaled integers
//!   coded as deltas or deltas-of-deltas; otherwise XOR byte planes.
//!   Byte alignment lets zstd over a block's frames find the repetition that
//!   bit packing hides (measured in `docs/decisions.md`).
//! * [`records`]: column-wise frames of log records and spans, shared by
//!   the WAL and the blocks' record files.
//! * `template`: a log body as its template and its variables, the body
//!   column of a block's log frames.
//! * [`trace_rows`]: a trace table's rows, grouped by trace.
//! * [`histogram`]: runs of native-histogram samples: the layout written
//!   when it changes, whole counts as deltas by bucket position.

pub(crate) mod bits;
pub mod chunk;
pub mod cursor;
pub mod gorilla;
pub mod histogram;
pub mod records;
mod template;
pub mod trace_rows;

/// A sample: millisecond timestamp and float value (NaN, ±Inf and the
/// Prometheus staleness marker included, bit for bit).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }
}

/// Samples are equal when timestamps match and values are bit-identical, so
/// NaN payloads (staleness markers) and -0.0 compare exactly.
impl PartialEq for Sample {
    fn eq(&self, other: &Self) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// A native-histogram sample. The histogram is shared: a query evaluated
/// at many steps hands the same sample out many times, and a histogram is
/// a few hundred bytes where a float is eight.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The histogram.
    pub h: std::sync::Arc<sextant_histogram::Histogram>,
}

impl HistogramSample {
    /// A sample at `t` holding `h`.
    pub fn new(t: i64, h: sextant_histogram::Histogram) -> Self {
        HistogramSample {
            t,
            h: std::sync::Arc::new(h),
        }
    }
}

/// Something stamped with a time: what the read path merges by timestamp.
pub trait Timed {
    /// Milliseconds since the Unix epoch.
    fn t(&self) -> i64;
}

impl Timed for Sample {
    fn t(&self) -> i64 {
        self.t
    }
}

impl Timed for HistogramSample {
    fn t(&self) -> i64 {
        self.t
    }
}

/// Zigzag-maps a signed integer so small magnitudes become small unsigned.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
