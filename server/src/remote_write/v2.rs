//! Prometheus remote_write 2.0: `io.prometheus.write.v2.Request`, whose
//! series name their labels, help and unit by index into one symbol
//! table, carry floats and native histograms side by side, and may give
//! each sample the time its counter started.
//!
//! A start time before a sample is stored as a zero sample at that time
//! (what Prometheus' created-timestamp zero ingestion stores), so `rate`
//! counts the first increase of a new counter.

use prost::Message;
use sextant_storage::{
    Exemplar, Histogram, HistogramSample, Labels, Sample, SeriesWrite, WriteBatch,
};

use super::histogram::PbHistogram;
use super::{Decoded, check_time, invalid_histogram, metric_type, series_error_text};
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::state::MetricMeta;

/// `io.prometheus.write.v2.Request`.
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    /// The symbol table: every string of the request once; entry 0 is "".
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    /// The series.
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// `io.prometheus.write.v2.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Label names and values as symbol indexes, pairwise.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PbSample>,
    /// Native-histogram samples.
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<PbHistogram>,
    /// Exemplars.
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<PbExemplar>,
    /// Type, help and unit of the metric.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
}

/// `io.prometheus.write.v2.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct PbSample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
    /// When the counter started (0: not given).
    #[prost(int64, tag = "3")]
    pub start_timestamp: i64,
}

/// `io.prometheus.write.v2.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub struct PbExemplar {
    /// Labels as symbol indexes, pairwise.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// The value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `io.prometheus.write.v2.Metadata`.
#[derive(Clone, PartialEq, Message)]
pub struct Metadata {
    /// `MetricType`, as in 1.0.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Help text, a symbol index.
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    /// Unit, a symbol index.
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// Decodes a snappy-compressed 2.0 request, checking every series before
/// anything is stored.
pub fn decode(raw: &[u8], max: usize) -> ApiResult<Decoded> {
    let mut buf = Vec::new();
    let bytes = body::unsnappy(raw, max, &mut buf)?;
    let req = Request::decode(bytes)
        .map_err(|e| ApiError::bad(format!("malformed remote_write 2.0 protobuf: {e}")))?;
    convert(&req)
}

/// A request's series as a batch.
pub fn convert(req: &Request) -> ApiResult<Decoded> {
    let symbols = &req.symbols;
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad(
            "remote_write 2.0 symbol table must start with the empty string",
        ));
    }
    let symbol = |r: u32| -> ApiResult<&str> {
        symbols.get(r as usize).map(String::as_str).ok_or_else(|| {
            ApiError::bad(format!(
                "symbol reference {r} outside the table of {} symbols",
                symbols.len()
            ))
        })
    };
    let pairs = |refs: &[u32]| -> ApiResult<Vec<(&str, &str)>> {
        if !refs.len().is_multiple_of(2) {
            return Err(ApiError::bad(
                "labels_refs must hold name and value references in pairs",
            ));
        }
        refs.chunks(2)
            .map(|p| Ok((symbol(p[0])?, symbol(p[1])?)))
            .collect()
    };
    let mut out = Decoded {
        batch: WriteBatch::default(),
        refs: Vec::new(),
        keys: Vec::new(),
        metadata: Vec::new(),
    };
    for ts in &req.timeseries {
        let p = pairs(&ts.labels_refs)?;
        let labels = Labels::new(p.iter().copied())
            .map_err(|e| ApiError::bad(format!("{e} in series {}", series_error_text(&p))))?;
        let Some(name) = labels.metric_name() else {
            return Err(ApiError::bad(format!(
                "series {} has no metric name: every series needs a non-empty __name__ label",
                series_error_text(&p)
            )));
        };
        if let Some(m) = &ts.metadata
            && (m.r#type != 0 || m.help_ref != 0 || m.unit_ref != 0)
        {
            out.metadata.push((
                name.to_string(),
                MetricMeta {
                    kind: metric_type(m.r#type).into(),
                    help: symbol(m.help_ref)?.to_string(),
                    unit: symbol(m.unit_ref)?.to_string(),
                },
            ));
        }
        let mut samples = Vec::with_capacity(ts.samples.len());
        for s in &ts.samples {
            check_time(&labels, s.timestamp)?;
            if s.start_timestamp > 0 && s.start_timestamp < s.timestamp {
                samples.push(Sample::new(s.start_timestamp, 0.0));
            }
            samples.push(Sample::new(s.timestamp, s.value));
        }
        let mut histograms = Vec::with_capacity(ts.histograms.len());
        for h in &ts.histograms {
            check_time(&labels, h.timestamp)?;
            let sample = h
                .to_sample()
                .map_err(|e| invalid_histogram(&labels, h.timestamp, &e))?;
            if h.start_timestamp > 0 && h.start_timestamp < h.timestamp {
                histograms.push(HistogramSample::new(
                    h.start_timestamp,
                    Histogram {
                        schema: sample.h.schema,
                        zero_threshold: sample.h.zero_threshold,
                        custom_values: sample.h.custom_values.clone(),
                        ..Histogram::default()
                    },
                ));
            }
            histograms.push(sample);
        }
        let exemplars = ts
            .exemplars
            .iter()
            .map(|e| {
                check_time(&labels, e.timestamp)?;
                let legacy = super::PbExemplar {
                    labels: pairs(&e.labels_refs)?
                        .into_iter()
                        .map(|(n, v)| super::Label {
                            name: n.to_string(),
                            value: v.to_string(),
                        })
                        .collect(),
                    value: e.value,
                    timestamp: e.timestamp,
                };
                super::exemplar(&legacy)
            })
            .collect::<ApiResult<Vec<Exemplar>>>()?;
        out.batch.series.push(SeriesWrite {
            labels,
            samples,
            histograms,
            exemplars,
        });
        out.refs.push(None);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::histogram::{Count, PbSpan};
    use proptest::prelude::*;

    fn symbols(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn request() -> Request {
        Request {
            symbols: symbols(&[
                "",
                "__name__",
                "rpc_seconds",
                "job",
                "api",
                "Latency.",
                "seconds",
                "trace_id",
                "0102030405060708090a0b0c0d0e0f10",
            ]),
            timeseries: vec![TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![PbSample {
                    value: 3.0,
                    timestamp: 2_000,
                    start_timestamp: 1_000,
                }],
                histograms: vec![PbHistogram {
                    count: Some(Count::Float(3.0)),
                    sum: 4.5,
                    schema: 0,
                    positive_spans: vec![PbSpan {
                        offset: 1,
                        length: 2,
                    }],
                    positive_counts: vec![1.0, 2.0],
                    timestamp: 3_000,
                    start_timestamp: 1_500,
                    ..Default::default()
                }],
                exemplars: vec![PbExemplar {
                    labels_refs: vec![7, 8],
                    value: 0.2,
                    timestamp: 2_000,
                }],
                metadata: Some(Metadata {
                    r#type: 3,
                    help_ref: 5,
                    unit_ref: 6,
                }),
            }],
        }
    }

    #[test]
    fn symbols_metadata_start_times_and_exemplars() {
        let d = convert(&request()).unwrap();
        let s = &d.batch.series[0];
        assert_eq!(s.labels.to_string(), "rpc_seconds{job=\"api\"}");
        // The start time becomes a zero sample before the first one.
        assert_eq!(
            s.samples,
            vec![Sample::new(1_000, 0.0), Sample::new(2_000, 3.0)]
        );
        assert_eq!(s.histograms.len(), 2);
        assert_eq!((s.histograms[0].t, s.histograms[0].h.count), (1_500, 0.0));
        assert_eq!(s.histograms[1].h.positive, vec![(1, 1.0), (2, 2.0)]);
        assert_eq!(s.exemplars[0].trace_id[15], 0x10);
        let (name, meta) = &d.metadata[0];
        assert_eq!(
            (
                name.as_str(),
                meta.kind.as_str(),
                meta.help.as_str(),
                meta.unit.as_str()
            ),
            ("rpc_seconds", "histogram", "Latency.", "seconds")
        );
    }

    #[test]
    fn bad_requests_are_refused_with_their_reason() {
        type Change = fn(&mut Request);
        let cases: [(Change, &str); 6] = [
            (
                |r| r.symbols[0] = "x".into(),
                "must start with the empty string",
            ),
            (|r| r.timeseries[0].labels_refs.push(1), "in pairs"),
            (|r| r.timeseries[0].labels_refs[3] = 99, "outside the table"),
            (
                |r| r.timeseries[0].labels_refs = vec![3, 4],
                "no metric name",
            ),
            (|r| r.timeseries[0].histograms[0].schema = -9, "schema -9"),
            (
                |r| r.timeseries[0].histograms[0].positive_counts[0] = -1.0,
                "non-negative",
            ),
        ];
        for (change, needle) in cases {
            let mut r = request();
            change(&mut r);
            let e = convert(&r).err().unwrap();
            assert!(e.message.contains(needle), "{needle}: {}", e.message);
        }
    }

    #[test]
    fn the_snappy_layer_is_read_and_guarded() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(&request().encode_to_vec())
            .unwrap();
        assert_eq!(decode(&raw, 1 << 20).unwrap().batch.series.len(), 1);
        assert!(decode(&raw, 10).is_err());
        assert!(decode(b"not snappy", 1 << 20).is_err());
    }

    proptest! {
        /// Any bytes: an error or a batch, never a panic.
        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(r) = Request::decode(bytes.as_slice()) {
                let _ = convert(&r);
            }
        }

        /// Requests built from a symbol table of valid names keep every
        /// label, sample and float histogram.
        #[test]
        fn valid_requests_keep_everything(
            names in prop::collection::btree_set("[a-z]{1,6}", 1..4),
            samples in prop::collection::vec((1i64..1 << 40, any::<f64>()), 0..5),
            counts in prop::collection::vec(0u32..1000, 0..6),
        ) {
            let mut syms = vec![String::new(), "__name__".to_string(), "m".to_string()];
            let mut refs = vec![1, 2];
            for n in &names {
                syms.push(format!("l_{n}"));
                syms.push(n.clone());
                refs.extend([syms.len() as u32 - 2, syms.len() as u32 - 1]);
            }
            let total: f64 = counts.iter().map(|c| f64::from(*c)).sum();
            let req = Request {
                symbols: syms,
                timeseries: vec![TimeSeries {
                    labels_refs: refs,
                    samples: samples
                        .iter()
                        .map(|&(t, v)| PbSample { value: v, timestamp: t, start_timestamp: 0 })
                        .collect(),
                    histograms: vec![PbHistogram {
                        count: Some(Count::Float(total)),
                        schema: 2,
                        positive_spans: vec![PbSpan { offset: -3, length: counts.len() as u32 }],
                        positive_counts: counts.iter().map(|c| f64::from(*c)).collect(),
                        timestamp: 5,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            let again = Request::decode(req.encode_to_vec().as_slice()).unwrap();
            let d = convert(&again).unwrap();
            let s = &d.batch.series[0];
            prop_assert_eq!(s.labels.len(), names.len() + 1);
            // Against prost's reading (proto3 does not encode -0.0).
            let sent = &again.timeseries[0].samples;
            prop_assert_eq!(s.samples.len(), sent.len());
            for (a, b) in s.samples.iter().zip(sent) {
                prop_assert_eq!(a.t, b.timestamp);
                prop_assert_eq!(a.v.to_bits(), b.value.to_bits());
            }
            let h = &s.histograms[0].h;
            prop_assert_eq!(h.count, total);
            let nonzero: Vec<(i32, f64)> = counts
                .iter()
                .enumerate()
                .map(|(i, c)| (i as i32 - 3, f64::from(*c)))
                .collect();
            prop_assert_eq!(&h.positive, &nonzero);
        }
    }
}
