//! Prometheus' `Histogram` message, shared by remote_write 1.0
//! (`prometheus.Histogram`) and 2.0 (`io.prometheus.write.v2.Histogram`):
//! decoded with prost and turned into a native histogram sample, checked.

use prost::Message;
use sextant_storage::{CounterReset, Histogram, HistogramSample, HistogramSpan};

/// `BucketSpan`.
#[derive(Clone, PartialEq, Message)]
pub struct PbSpan {
    /// Gap to the previous span (the first: its start index).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Consecutive buckets.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Integer (`*_int`, deltas) or float (`*_float`, absolute counts).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Count {
    /// Integer histogram.
    #[prost(uint64, tag = "1")]
    Int(u64),
    /// Float histogram.
    #[prost(double, tag = "2")]
    Float(f64),
}

/// The zero bucket's count, integer or float.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ZeroCount {
    /// Integer histogram.
    #[prost(uint64, tag = "6")]
    Int(u64),
    /// Float histogram.
    #[prost(double, tag = "7")]
    Float(f64),
}

/// `Histogram`.
#[derive(Clone, PartialEq, Message)]
pub struct PbHistogram {
    /// Observations.
    #[prost(oneof = "Count", tags = "1, 2")]
    pub count: Option<Count>,
    /// Their sum.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Resolution.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Width of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    #[prost(oneof = "ZeroCount", tags = "6, 7")]
    pub zero_count: Option<ZeroCount>,
    /// Negative bucket runs.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<PbSpan>,
    /// Integer negative buckets, each as the difference to the one before.
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Float negative buckets.
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Positive bucket runs.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<PbSpan>,
    /// Integer positive buckets, as differences.
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Float positive buckets.
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// 0 unknown, 1 reset, 2 not a reset, 3 gauge.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Upper bounds of custom buckets (schema −53).
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
    /// When the counter started (remote_write 2.0).
    #[prost(int64, tag = "17")]
    pub start_timestamp: i64,
}

impl PbHistogram {
    /// The sample, checked: an integer histogram as a client observed it
    /// (its count covers its buckets), a float one as any stored one.
    pub fn to_sample(&self) -> Result<HistogramSample, String> {
        let integer = matches!(self.count, Some(Count::Int(_)))
            || !self.positive_deltas.is_empty()
            || !self.negative_deltas.is_empty();
        let side = |spans: &[PbSpan], deltas: &[i64], counts: &[f64]| {
            let spans: Vec<HistogramSpan> = spans
                .iter()
                .map(|s| HistogramSpan {
                    offset: s.offset,
                    length: s.length,
                })
                .collect();
            let counts: Vec<f64> = if integer {
                let mut c = 0i64;
                deltas
                    .iter()
                    .map(|d| {
                        c = c.wrapping_add(*d);
                        c as f64
                    })
                    .collect()
            } else {
                counts.to_vec()
            };
            Histogram::buckets_from_spans(&spans, &counts).map_err(|e| e.to_string())
        };
        let h = Histogram {
            hint: match self.reset_hint {
                1 => CounterReset::Reset,
                2 => CounterReset::NotReset,
                3 => CounterReset::Gauge,
                _ => CounterReset::Unknown,
            },
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: match self.zero_count {
                Some(ZeroCount::Int(n)) => n as f64,
                Some(ZeroCount::Float(f)) => f,
                None => 0.0,
            },
            count: match self.count {
                Some(Count::Int(n)) => n as f64,
                Some(Count::Float(f)) => f,
                None => 0.0,
            },
            sum: self.sum,
            positive: side(
                &self.positive_spans,
                &self.positive_deltas,
                &self.positive_counts,
            )?,
            negative: side(
                &self.negative_spans,
                &self.negative_deltas,
                &self.negative_counts,
            )?,
            custom_values: self.custom_values.clone(),
        };
        let checked = if integer {
            h.validate_observed()
        } else {
            h.validate()
        };
        checked.map_err(|e| e.to_string())?;
        Ok(HistogramSample::new(self.timestamp, h))
    }
}
