//! Native histograms as Prometheus defines them: a histogram is a sample
//! of its own (count, sum, a zero bucket and sparse buckets at any
//! resolution), not a family of `_bucket` series. OpenTelemetry's
//! exponential histograms map onto them; PromQL computes with them.
//!
//! One representation serves everything: float counts, buckets kept
//! sparse as `(index, count)` pairs in ascending index order. Integer
//! histograms (what clients send and chunks store) are float histograms
//! whose counts happen to be whole; the wire and storage encodings decide
//! how to write them. Spans (Prometheus' run-length form) exist only at
//! those boundaries: [`Histogram::buckets_from_spans`], [`Histogram::spans`].
//!
//! Bucket `i` of exponential schema `s` holds observations in
//! `(2^((i-1)·2^-s), 2^(i·2^-s)]` (and its mirror for negative buckets);
//! schema [`CUSTOM_BUCKETS_SCHEMA`] has explicit upper bounds instead
//! (bucket `j` ends at `custom_values[j]`, the last at +Inf).

mod bucket;
mod error;
mod kahan;
mod notation;
mod ops;
mod stats;

pub use bucket::{Bucket, upper_bound};
pub use error::{Error, Result};
pub use kahan::KahanSum;
pub use notation::{parse_notation, to_notation};
pub use ops::Combined;
pub use stats::Note;

/// The schema of histograms with custom bucket bounds (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// The coarsest exponential schema (bucket bounds grow 65536× per bucket).
pub const MIN_SCHEMA: i32 = -4;
/// The finest exponential schema (bucket bounds grow 2^(1/256)× per bucket).
pub const MAX_SCHEMA: i32 = 8;

/// What the producer said about counter resets, which `rate` and friends
/// honour before looking at the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterReset {
    /// Nothing said: a reset is detected from the counts.
    #[default]
    Unknown,
    /// This sample starts a new count.
    Reset,
    /// This sample continues the previous one's count.
    NotReset,
    /// Not a counter: each sample is a snapshot (`delta` works, `rate` does
    /// not).
    Gauge,
}

/// A native histogram with float counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// What the producer said about counter resets.
    pub hint: CounterReset,
    /// Resolution: −4…8, or [`CUSTOM_BUCKETS_SCHEMA`].
    pub schema: i32,
    /// Observations with absolute value at most this land in the zero
    /// bucket (exponential schemas only).
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// Observations in all (NaN observations count here but in no bucket).
    pub count: f64,
    /// Sum of the observations.
    pub sum: f64,
    /// Positive buckets (all buckets of a custom-bucket histogram) as
    /// `(index, count)`, ascending by index, each index once.
    pub positive: Vec<(i32, f64)>,
    /// Negative buckets as `(index, count)`, ascending by index; index `i`
    /// holds observations in `[-2^(i·2^-s), -2^((i-1)·2^-s))`.
    pub negative: Vec<(i32, f64)>,
    /// Upper bounds of the custom buckets, ascending, without +Inf.
    pub custom_values: Vec<f64>,
}

/// One run of consecutive buckets in Prometheus' span encoding: `offset`
/// buckets skipped after the previous run (the first run's offset is its
/// starting index), then `length` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Gap before the run (the starting index for the first run).
    pub offset: i32,
    /// Buckets in the run.
    pub length: u32,
}

impl Histogram {
    /// Whether the buckets have explicit bounds.
    pub fn custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Buckets from Prometheus' span encoding (`counts` in bucket
    /// order, absolute), checking that the spans and counts agree.
    pub fn buckets_from_spans(spans: &[Span], counts: &[f64]) -> Result<Vec<(i32, f64)>> {
        let mut out = Vec::with_capacity(counts.len());
        let mut idx: i64 = 0;
        let mut it = counts.iter();
        for (n, s) in spans.iter().enumerate() {
            if n > 0 && s.offset < 0 {
                return Err(Error::Invalid(format!(
                    "span {n} has a negative offset {}: spans must not overlap",
                    s.offset
                )));
            }
            idx += i64::from(s.offset);
            for _ in 0..s.length {
                let c = it.next().ok_or_else(|| {
                    Error::Invalid(format!(
                        "the spans describe more buckets than the {} counts given",
                        counts.len()
                    ))
                })?;
                let i = i32::try_from(idx)
                    .map_err(|_| Error::Invalid(format!("bucket index {idx} out of range")))?;
                out.push((i, *c));
                idx += 1;
            }
        }
        if it.next().is_some() {
            return Err(Error::Invalid(format!(
                "{} counts given for spans describing {} buckets",
                counts.len(),
                out.len()
            )));
        }
        Ok(out)
    }

    /// Buckets as spans and counts (runs broken at gaps; empty buckets
    /// kept where they are listed). The indexes of a histogram that passes
    /// [`Histogram::validate`] are far inside `i32`, so every gap fits a
    /// span's offset; for others a gap too wide is clamped, never a panic.
    pub fn spans(buckets: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
        let mut spans: Vec<Span> = Vec::new();
        let mut next = 0i64;
        for (n, &(i, _)) in buckets.iter().enumerate() {
            let i = i64::from(i);
            match spans.last_mut() {
                Some(s) if i == next => s.length += 1,
                _ => {
                    let offset = if n == 0 { i } else { i - next };
                    spans.push(Span {
                        offset: offset.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
                        length: 1,
                    });
                }
            }
            next = i + 1;
        }
        (spans, buckets.iter().map(|b| b.1).collect())
    }

    /// Whether `self` and `other` hold the same observations in the same
    /// layout, whatever their counter-reset hints say (PromQL's `==`).
    pub fn same_as(&self, other: &Histogram) -> bool {
        let mut a = self.clone();
        let mut b = other.clone();
        a.hint = CounterReset::Unknown;
        b.hint = CounterReset::Unknown;
        a.compact();
        b.compact();
        a == b
    }

    /// Checks what any stored histogram must satisfy: a known schema,
    /// ascending custom bounds, buckets in order, no negative or NaN
    /// count. As for Prometheus' float histograms, the count is not
    /// compared with the buckets' total: computed histograms drift (see
    /// [`Histogram::validate_observed`] for what clients send).
    pub fn validate(&self) -> Result<()> {
        let custom = self.custom_buckets();
        if !custom && !(MIN_SCHEMA..=MAX_SCHEMA).contains(&self.schema) {
            return Err(Error::Invalid(format!(
                "schema {} out of range: {MIN_SCHEMA}..={MAX_SCHEMA}, or {CUSTOM_BUCKETS_SCHEMA} \
                 for custom buckets",
                self.schema
            )));
        }
        if custom {
            if !self.negative.is_empty() || self.zero_count != 0.0 || self.zero_threshold != 0.0 {
                return Err(Error::Invalid(
                    "a histogram with custom buckets has no negative buckets and no zero bucket"
                        .into(),
                ));
            }
            if self.custom_values.iter().any(|v| v.is_nan())
                || self.custom_values.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(Error::Invalid(
                    "custom bucket bounds must be ascending numbers".into(),
                ));
            }
            if self.custom_values.last() == Some(&f64::INFINITY) {
                return Err(Error::Invalid(
                    "custom bucket bounds must not list +Inf (the last bucket is implicit)".into(),
                ));
            }
            if let Some(&(i, _)) = self
                .positive
                .iter()
                .find(|(i, _)| *i < 0 || *i as usize > self.custom_values.len())
            {
                return Err(Error::Invalid(format!(
                    "bucket {i} outside the {} custom buckets",
                    self.custom_values.len() + 1
                )));
            }
        } else if !self.custom_values.is_empty() {
            return Err(Error::Invalid(format!(
                "custom bucket bounds given with exponential schema {}",
                self.schema
            )));
        }
        if self.zero_threshold.is_nan() || self.zero_threshold < 0.0 {
            return Err(Error::Invalid(format!(
                "zero threshold {} must be a non-negative number",
                self.zero_threshold
            )));
        }
        let (lo, hi) = bucket::index_range(self.schema);
        if let Some(&(i, _)) = self
            .positive
            .iter()
            .chain(&self.negative)
            .find(|(i, _)| !custom && !(lo..=hi).contains(i))
        {
            return Err(Error::Invalid(format!(
                "bucket index {i} at schema {}: bounds beyond any float (indexes {lo}..={hi})",
                self.schema
            )));
        }
        for (side, buckets) in [("positive", &self.positive), ("negative", &self.negative)] {
            if buckets.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err(Error::Invalid(format!(
                    "{side} buckets overlap or are out of order"
                )));
            }
            for &(i, c) in buckets.iter() {
                if c.is_nan() || c < 0.0 {
                    return Err(Error::Invalid(format!(
                        "{side} bucket {i} has count {c}: counts must be non-negative"
                    )));
                }
            }
        }
        if self.zero_count.is_nan() || self.zero_count < 0.0 {
            return Err(Error::Invalid(format!(
                "zero bucket count {} must be non-negative",
                self.zero_count
            )));
        }
        if self.count.is_nan() || self.count < 0.0 {
            return Err(Error::Invalid(format!(
                "count {} must be non-negative",
                self.count
            )));
        }
        Ok(())
    }

    /// [`Histogram::validate`] for a histogram a client observed (OTLP,
    /// remote_write): its count must also cover the observations in its
    /// buckets (NaN observations count without a bucket; a little float
    /// error is allowed).
    pub fn validate_observed(&self) -> Result<()> {
        self.validate()?;
        let total = self.zero_count
            + self
                .positive
                .iter()
                .chain(&self.negative)
                .map(|b| b.1)
                .sum::<f64>();
        if self.count < total * (1.0 - 1e-9) - 1e-9 {
            return Err(Error::Invalid(format!(
                "count {} is less than the {} observations in the buckets",
                self.count, total
            )));
        }
        Ok(())
    }
}
