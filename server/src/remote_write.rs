//! Prometheus remote_write: a snappy-compressed protobuf turned into one
//! [`WriteBatch`], version 1.0 (`prometheus.WriteRequest`, this module)
//! or 2.0 (`io.prometheus.write.v2.Request`, [`v2`]) as the Content-Type's
//! `proto` parameter says. Version 1.0's top level is walked without
//! copying (labels are the hot part); the rare exemplar, histogram and
//! metadata messages are declared for prost.

pub mod histogram;
pub mod v2;

use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use prost::Message;
use rustc_hash::FxHasher;
use sextant_storage::{
    Db, Exemplar, Labels, Sample, SeriesRef, SeriesWrite, WriteBatch, WriteSummary,
};

use super::body;
use super::error::{ApiError, ApiResult, Kind};
pub use super::label_cache::LabelCache;
use super::state::{MetricMeta, State};
use super::wire::{Value, Wire};

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.WriteRequest` (remote_write 1.0), for clients: tests and
/// benchmarks encode requests with it. The server decodes requests with
/// its own parser (`parse`), which borrows label strings from the body.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series written.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Its labels, the name as `__name__`.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PbSample>,
    /// Exemplars.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<PbExemplar>,
    /// Native histogram samples.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<histogram::PbHistogram>,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct PbSample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub struct PbExemplar {
    /// Labels (`trace_id`, `span_id`, …).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// `MetricType` enum.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    /// Family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Help text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Unit.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `POST /api/v1/write`
pub async fn write(AxState(st): AxState<Arc<State>>, headers: HeaderMap, b: Body) -> Response {
    let t0 = Instant::now();
    let res = handle(&st, &headers, b).await;
    let m = &st.metrics.remote_write;
    match res {
        Ok(written) => {
            m.requests.fetch_add(1, Relaxed);
            m.latency.observe(t0.elapsed());
            let mut r = StatusCode::NO_CONTENT.into_response();
            if let Some(w) = written {
                // Remote-write 2.0 tells the sender what was stored.
                for (name, n) in [
                    ("x-prometheus-remote-write-samples-written", w.samples),
                    ("x-prometheus-remote-write-histograms-written", w.histograms),
                    ("x-prometheus-remote-write-exemplars-written", w.exemplars),
                ] {
                    r.headers_mut().insert(name, n.into());
                }
            }
            r
        }
        Err(e) => {
            m.failed.fetch_add(1, Relaxed);
            // remote_write senders log the body: plain text, as Prometheus.
            (e.status(), e.message).into_response()
        }
    }
}

/// The protobuf messages remote_write can carry.
#[derive(Clone, Copy, PartialEq)]
enum Proto {
    V1,
    V2,
}

/// The message a request carries, from its Content-Type (`proto=`
/// parameter; none means 1.0, as senders of 1.0 write it).
fn proto(headers: &HeaderMap) -> ApiResult<Proto> {
    let media = body::media_type(headers);
    let full = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let param = full
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("proto"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string());
    match (media.as_str(), param.as_deref()) {
        ("" | "application/x-protobuf", None | Some("prometheus.WriteRequest")) => Ok(Proto::V1),
        ("application/x-protobuf", Some("io.prometheus.write.v2.Request")) => Ok(Proto::V2),
        _ => Err(ApiError::new(
            Kind::UnsupportedMedia,
            format!(
                "remote_write takes Content-Type application/x-protobuf with \
                 proto=prometheus.WriteRequest (1.0, the default) or \
                 proto=io.prometheus.write.v2.Request (2.0); got {full:?}"
            ),
        )),
    }
}

/// What a stored request wrote, for remote_write 2.0's response headers.
#[derive(Default)]
struct Written {
    samples: usize,
    histograms: usize,
    exemplars: usize,
}

async fn handle(st: &Arc<State>, headers: &HeaderMap, b: Body) -> ApiResult<Option<Written>> {
    let proto = proto(headers)?;
    let _slot = st.write_slot().await?;
    let raw = body::read(b, st.cfg.max_body_bytes).await?;
    let max = st.cfg.max_decompressed_bytes;
    st.blocking(move |st| {
        let mut d = match proto {
            Proto::V1 => decode(&raw, max, &st.label_cache)?,
            Proto::V2 => v2::decode(&raw, max)?,
        };
        st.note_metadata(std::mem::take(&mut d.metadata));
        let summary = d.store(&st.db, &st.label_cache, st.cfg.max_series_per_write)?;
        let m = &st.metrics;
        m.remote_write
            .samples
            .fetch_add(summary.samples as u64, Relaxed);
        m.series_created
            .fetch_add(summary.series_created as u64, Relaxed);
        Ok((proto == Proto::V2).then(|| {
            let histograms = d.batch.series.iter().map(|s| s.histograms.len()).sum();
            Written {
                samples: summary.samples - histograms,
                histograms,
                exemplars: summary.exemplars,
            }
        }))
    })
    .await
}

/// A decoded request.
pub struct Decoded {
    /// The series and samples.
    pub batch: WriteBatch,
    /// The head reference of each series, where the cache knew it.
    pub refs: Vec<Option<SeriesRef>>,
    /// The cache key of each series.
    pub keys: Vec<u64>,
    /// Metadata per metric family.
    pub metadata: Vec<(String, MetricMeta)>,
}

impl Decoded {
    /// Writes the batch, with the cache's head references, and keeps the
    /// references the write hands back.
    pub fn store(
        &mut self,
        db: &Db,
        cache: &LabelCache,
        max_new_series: usize,
    ) -> sextant_storage::Result<WriteSummary> {
        let known = self.refs.clone();
        let res = db.write_with_refs(&self.batch, &mut self.refs, max_new_series);
        cache.set_refs(
            known
                .iter()
                .zip(&self.refs)
                .zip(self.keys.iter().zip(&self.batch.series))
                .filter(|((was, is), _)| was != is)
                .map(|((_, is), (key, sw))| (*key, &sw.labels, *is)),
        );
        res
    }
}

/// Whether the encoded `Label` messages are exactly `labels`' pairs, in
/// order (a sorted, valid set: no check of the bytes is needed on a match).
fn same_pairs(msgs: &[&[u8]], labels: &Labels) -> bool {
    // Bytes, not `str`s: the set's UTF-8 was checked when it was built,
    // and checking it again was ~8% of ingest CPU.
    //
    // What senders write, `0a n name 12 v value` with one-byte lengths,
    // is the stored `n name v value` with two tag bytes: two slice
    // comparisons a label, no parsing of the stored side.
    let mut rest = labels.as_bytes();
    let fast = msgs.iter().all(|m| {
        let Some((name, value)) = standard_label(m) else {
            return false;
        };
        let Some((here, tail)) = rest.split_at_checked(name.len() + value.len()) else {
            return false;
        };
        rest = tail;
        here[..name.len()] == *name && here[name.len()..] == *value
    });
    if fast {
        return rest.is_empty();
    }
    let mut pairs = labels.iter_bytes();
    for m in msgs {
        let Ok((name, value)) = label_fields(m) else {
            return false;
        };
        match pairs.next() {
            Some((n, v)) if n == name && v == value => {}
            _ => return false,
        }
    }
    pairs.next().is_none()
}

/// What every sender writes for a `Label`: field 1 then field 2, each
/// under 128 bytes: `0a n name 12 v value`. Gives `n name` and `v value`
/// (the stored form of a pair), or `None` for any other encoding.
fn standard_label(m: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&tag, rest) = m.split_first()?;
    let n = usize::from(*rest.first()?);
    if tag != 0x0a || n >= 0x80 {
        return None;
    }
    let (name, rest) = rest.split_at_checked(n + 1)?;
    let (&tag, value) = rest.split_first()?;
    let v = usize::from(*value.first()?);
    (tag == 0x12 && v < 0x80 && value.len() == v + 1).then_some((name, value))
}

/// Name and value of one encoded `Label`.
fn label_fields(m: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if let Some((name, value)) = standard_label(m) {
        return Ok((&name[1..], &value[1..]));
    }
    let (mut name, mut value) = (&b""[..], &b""[..]);
    let mut w = Wire::new(m);
    while let Some((field, v)) = w.next_field()? {
        match (field, v) {
            (1, Value::Bytes(b)) => name = b,
            (2, Value::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((name, value))
}

thread_local! {
    /// Each request thread's decompression scratch.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Scratch above this size is freed after its request, so that one huge
/// request does not pin its memory on a thread for good.
const KEEP_SCRATCH: usize = 8 << 20;

/// Decodes a snappy-compressed `WriteRequest`, checking every series
/// before anything is stored.
pub fn decode(raw: &[u8], max: usize, cache: &LabelCache) -> ApiResult<Decoded> {
    SCRATCH.with_borrow_mut(|buf| {
        let out = body::unsnappy(raw, max, buf).and_then(|bytes| decode_request(bytes, cache));
        if buf.capacity() > KEEP_SCRATCH {
            *buf = Vec::new();
        }
        out
    })
}

fn decode_request(bytes: &[u8], cache: &LabelCache) -> ApiResult<Decoded> {
    let malformed = |e: String| ApiError::bad(format!("malformed remote_write protobuf: {e}"));
    let mut req = Parsed::default();
    let mut metadata = Vec::new();
    let mut w = Wire::new(bytes);
    while let Some((field, v)) = w.next_field().map_err(malformed)? {
        match (field, v) {
            (1, Value::Bytes(ts)) => req.series(ts).map_err(malformed)?,
            (3, Value::Bytes(m)) => {
                let m = MetricMetadata::decode(m).map_err(|e| malformed(e.to_string()))?;
                let meta = MetricMeta {
                    kind: metric_type(m.kind).into(),
                    help: m.help,
                    unit: m.unit,
                };
                metadata.push((m.metric_family_name, meta));
            }
            _ => {}
        }
    }
    // All lookups together, so the cache can prefetch ahead of them.
    let found = cache.lookup(&req.keys, |i, l| same_pairs(req.label_msgs(i), l));
    let mut fresh = Vec::new();
    let mut out = Decoded {
        batch: WriteBatch {
            series: Vec::with_capacity(found.len()),
        },
        refs: Vec::with_capacity(found.len()),
        keys: Vec::new(),
        metadata,
    };
    let series = std::mem::take(&mut req.series);
    for (i, (hit, ps)) in found.into_iter().zip(series).enumerate() {
        let (labels, sref) = match hit {
            Some(c) => c,
            None => {
                let l = series_labels(req.label_msgs(i)).map_err(|e| match e {
                    SeriesError::Wire(e) => malformed(e),
                    SeriesError::Api(e) => e,
                })?;
                fresh.push((req.keys[i], l.clone()));
                (l, None)
            }
        };
        for s in &ps.samples {
            check_time(&labels, s.t)?;
        }
        let exemplars = ps
            .exemplars
            .iter()
            .map(|e| {
                check_time(&labels, e.timestamp)?;
                exemplar(e)
            })
            .collect::<ApiResult<_>>()?;
        let histograms = ps
            .histograms
            .iter()
            .map(|h| {
                check_time(&labels, h.timestamp)?;
                h.to_sample()
                    .map_err(|e| invalid_histogram(&labels, h.timestamp, &e))
            })
            .collect::<ApiResult<_>>()?;
        out.batch.series.push(SeriesWrite {
            labels,
            samples: ps.samples,
            histograms,
            exemplars,
        });
        out.refs.push(sref);
    }
    cache.insert(fresh);
    out.keys = req.keys;
    Ok(out)
}

enum SeriesError {
    Wire(String),
    Api(ApiError),
}

impl From<String> for SeriesError {
    fn from(e: String) -> Self {
        SeriesError::Wire(e)
    }
}

impl From<ApiError> for SeriesError {
    fn from(e: ApiError) -> Self {
        SeriesError::Api(e)
    }
}

/// A request's `TimeSeries`, parsed but not yet checked.
#[derive(Default)]
struct Parsed<'a> {
    /// The encoded `Label` messages of every series, in order.
    msgs: Vec<&'a [u8]>,
    /// The cache key of each series: a hash of its encoded Label fields,
    /// tag and length included.
    keys: Vec<u64>,
    /// Where each series' messages end in `msgs`.
    ends: Vec<usize>,
    series: Vec<ParsedSeries>,
}

struct ParsedSeries {
    samples: Vec<Sample>,
    exemplars: Vec<PbExemplar>,
    histograms: Vec<histogram::PbHistogram>,
}

impl<'a> Parsed<'a> {
    /// Parses one `TimeSeries`.
    fn series(&mut self, ts: &'a [u8]) -> Result<(), String> {
        let mut key = FxHasher::default();
        let mut samples = Vec::with_capacity(1);
        let (mut exemplars, mut histograms) = (Vec::new(), Vec::new());
        let mut w = Wire::new(ts);
        loop {
            let at = w.pos();
            let Some((field, v)) = w.next_field()? else {
                break;
            };
            match (field, v) {
                (1, Value::Bytes(l)) => {
                    key.write(&ts[at..w.pos()]);
                    self.msgs.push(l);
                }
                (2, Value::Bytes(s)) => samples.push(sample(s)?),
                (3, Value::Bytes(e)) => {
                    exemplars.push(PbExemplar::decode(e).map_err(|e| e.to_string())?)
                }
                (4, Value::Bytes(h)) => {
                    histograms.push(histogram::PbHistogram::decode(h).map_err(|e| e.to_string())?)
                }
                _ => {}
            }
        }
        self.keys.push(key.finish());
        self.ends.push(self.msgs.len());
        self.series.push(ParsedSeries {
            samples,
            exemplars,
            histograms,
        });
        Ok(())
    }

    fn label_msgs(&self, i: usize) -> &[&'a [u8]] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.msgs[start..self.ends[i]]
    }
}

fn sample(b: &[u8]) -> Result<Sample, String> {
    let (mut t, mut v) = (0i64, 0f64);
    let mut w = Wire::new(b);
    while let Some((field, val)) = w.next_field()? {
        match (field, val) {
            (1, Value::Fixed64(bits)) => v = f64::from_bits(bits),
            (2, Value::Varint(x)) => t = x as i64,
            _ => {}
        }
    }
    Ok(Sample::new(t, v))
}

/// Label pairs from encoded `Label` messages, checked: UTF-8, a metric
/// name, no empty or duplicate names.
fn series_labels(msgs: &[&[u8]]) -> Result<Labels, SeriesError> {
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(msgs.len());
    for m in msgs {
        let (name, value) = label_fields(m)?;
        pairs.push((utf8(name, "name")?, utf8(value, "value")?));
    }
    let show = || series_error_text(&pairs);
    let labels = Labels::new(pairs.iter().copied())
        .map_err(|e| ApiError::bad(format!("{e} in series {}", show())))?;
    if labels.metric_name().is_none() {
        return Err(ApiError::bad(format!(
            "series {} has no metric name: every series needs a non-empty __name__ label",
            show()
        ))
        .into());
    }
    Ok(labels)
}

/// Label pairs as an error message shows a series that failed its checks.
fn series_error_text(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn utf8<'a>(b: &'a [u8], what: &str) -> ApiResult<&'a str> {
    std::str::from_utf8(b).map_err(|_| {
        ApiError::bad(format!(
            "label {what} {:?} is not valid UTF-8",
            String::from_utf8_lossy(b)
        ))
    })
}

fn invalid_histogram(labels: &Labels, t: i64, why: &str) -> ApiError {
    ApiError::bad(format!(
        "invalid native histogram in series {labels} at t={t}: {why}; nothing of the request \
         was stored"
    ))
}

fn check_time(labels: &Labels, t: i64) -> ApiResult<()> {
    if t < 0 {
        return Err(ApiError::bad(format!(
            "negative timestamp {t} in series {labels}: timestamps are milliseconds since \
             1970-01-01; nothing of the request was stored"
        )));
    }
    Ok(())
}

fn exemplar(e: &PbExemplar) -> ApiResult<Exemplar> {
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut rest = Vec::new();
    for l in &e.labels {
        match l.name.as_str() {
            "trace_id" | "traceID" | "traceId" if decode_hex(&l.value, &mut trace_id) => {}
            "span_id" | "spanID" | "spanId" if decode_hex(&l.value, &mut span_id) => {}
            _ => rest.push((l.name.as_str(), l.value.as_str())),
        }
    }
    Ok(Exemplar {
        t: e.timestamp,
        value: e.value,
        trace_id,
        span_id,
        labels: Labels::new(rest).map_err(|e| ApiError::bad(format!("exemplar: {e}")))?,
    })
}

/// Fills `out` from exactly `2 * out.len()` hex digits.
fn decode_hex(s: &str, out: &mut [u8]) -> bool {
    if s.len() != out.len() * 2 || !s.is_ascii() {
        return false;
    }
    for (i, b) in out.iter_mut().enumerate() {
        match u8::from_str_radix(&s[2 * i..2 * i + 2], 16) {
            Ok(v) => *b = v,
            Err(_) => return false,
        }
    }
    true
}

fn metric_type(v: i32) -> &'static str {
    match v {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An integer histogram of schema 1: buckets −1, 0 (one span), then
    /// 2 (after a gap of one), counts given as deltas.
    fn int_histogram(deltas: &[i64], t: i64) -> histogram::PbHistogram {
        let mut c = 0;
        let total: i64 = deltas
            .iter()
            .map(|d| {
                c += d;
                c
            })
            .sum();
        histogram::PbHistogram {
            count: Some(histogram::Count::Int(total.max(0) as u64 + 1)),
            sum: 12.5,
            schema: 1,
            zero_threshold: 1e-128,
            zero_count: Some(histogram::ZeroCount::Int(1)),
            positive_spans: vec![
                histogram::PbSpan {
                    offset: -1,
                    length: 2,
                },
                histogram::PbSpan {
                    offset: 1,
                    length: deltas.len().saturating_sub(2) as u32,
                },
            ],
            positive_deltas: deltas.to_vec(),
            timestamp: t,
            ..Default::default()
        }
    }

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: n.into(),
            value: v.into(),
        }
    }

    fn run(req: &WriteRequest, cache: &LabelCache) -> ApiResult<Decoded> {
        let raw = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        decode(&raw, 1 << 20, cache)
    }

    #[test]
    fn series_exemplars_and_refusals() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![label("job", "api"), label("__name__", "up")],
                samples: vec![PbSample {
                    value: f64::NAN,
                    timestamp: 5,
                }],
                exemplars: vec![PbExemplar {
                    labels: vec![
                        label("trace_id", "0102030405060708090a0b0c0d0e0f10"),
                        label("user", "x"),
                    ],
                    value: 1.5,
                    timestamp: 6,
                }],
                histograms: vec![int_histogram(&[2, -1, 1], 7)],
            }],
        };
        let cache = LabelCache::new(100);
        for _ in 0..2 {
            // The second round is served from the label cache.
            let d = run(&req, &cache).unwrap();
            let s = &d.batch.series[0];
            let h = &s.histograms[0];
            assert_eq!((h.t, h.h.count, h.h.schema), (7, 6.0, 1));
            assert_eq!(h.h.positive, vec![(-1, 2.0), (0, 1.0), (2, 2.0)]);
            assert_eq!(s.labels.to_string(), "up{job=\"api\"}");
            assert!(s.samples[0].v.is_nan());
            assert_eq!(s.samples[0].t, 5);
            assert_eq!(s.exemplars[0].trace_id[15], 0x10);
            assert_eq!(s.exemplars[0].labels.get("user"), Some("x"));
        }

        type Change = fn(&mut TimeSeries);
        let cases: [(Change, &str); 8] = [
            (|ts| ts.labels[1].value.clear(), "no metric name"),
            (|ts| ts.samples[0].timestamp = -1, "negative timestamp"),
            (|ts| ts.labels.push(label("job", "b")), "duplicate label"),
            (|ts| ts.labels.push(label("", "b")), "empty label name"),
            (
                |ts| ts.histograms[0] = int_histogram(&[2, -3], 7),
                "counts must be non-negative",
            ),
            (|ts| ts.histograms[0].schema = 9, "schema 9 out of range"),
            (
                |ts| ts.histograms[0].count = Some(histogram::Count::Int(1)),
                "count 1 is less than",
            ),
            (
                |ts| {
                    ts.histograms[0].positive_spans[1].offset = -3;
                },
                "overlap",
            ),
        ];
        for (change, needle) in cases {
            let mut bad = req.clone();
            change(&mut bad.timeseries[0]);
            let e = run(&bad, &cache).err().unwrap();
            assert!(e.message.contains(needle), "{e}");
        }
    }

    #[test]
    fn a_cache_hit_needs_the_exact_pairs() {
        let enc = |pairs: &[(&str, &str)]| -> Vec<Vec<u8>> {
            pairs
                .iter()
                .map(|(n, v)| label(n, v).encode_to_vec())
                .collect()
        };
        let set = Labels::new([("__name__", "up"), ("job", "a")]).unwrap();
        let check = |pairs: &[(&str, &str)]| {
            let msgs = enc(pairs);
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            same_pairs(&refs, &set)
        };
        assert!(check(&[("__name__", "up"), ("job", "a")]));
        // Another set under a colliding hash, another order, a subset or a
        // superset: all fall back to the full check.
        assert!(!check(&[("__name__", "up"), ("job", "b")]));
        assert!(!check(&[("job", "a"), ("__name__", "up")]));
        assert!(!check(&[("__name__", "up")]));
        assert!(!check(&[("__name__", "up"), ("job", "a"), ("x", "y")]));
    }

    #[test]
    fn label_fields_fast_path_agrees_with_the_walk() {
        let long = "v".repeat(300);
        for (n, v) in [("job", "a"), ("__name__", ""), ("k", long.as_str())] {
            let m = label(n, v).encode_to_vec();
            assert_eq!(label_fields(&m).unwrap(), (n.as_bytes(), v.as_bytes()));
        }
        // Value before name, and an unknown field: the walk reads them.
        let m = [0x12, 1, b'v', 0x4a, 1, b'x', 0x0a, 1, b'n'];
        assert_eq!(label_fields(&m).unwrap(), (&b"n"[..], &b"v"[..]));
    }

    proptest::proptest! {
        /// The byte-level comparison agrees with comparing decoded pairs,
        /// for long names and values (two-byte lengths) and field orders
        /// no sender uses.
        #[test]
        fn same_pairs_is_pair_equality(
            stored in proptest::collection::btree_map("[a-c]{1,3}", "[x-z]{1,3}|[x-z]{130}", 1..4),
            sent in proptest::collection::vec(("[a-c]{1,3}", "[x-z]{1,3}|[x-z]{130}", proptest::bool::ANY), 0..4),
        ) {
            let set = Labels::new(stored.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            let msgs: Vec<Vec<u8>> = sent
                .iter()
                .map(|(n, v, swapped)| {
                    let mut m = label(n, v).encode_to_vec();
                    if *swapped {
                        // Field 2 first: the same label, encoded otherwise.
                        let at = 2 + n.len();
                        m.rotate_left(at);
                    }
                    m
                })
                .collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let want = sent.len() == stored.len()
                && sent.iter().zip(&stored).all(|((n, v, _), (sn, sv))| n == sn && v == sv);
            proptest::prop_assert_eq!(same_pairs(&refs, &set), want);
        }

        /// Whatever prost encodes, the borrowing decoder reads back.
        #[test]
        fn decoder_agrees_with_prost(
            series in proptest::collection::vec(
                (proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..5),
                 proptest::collection::vec((0i64..1i64 << 50, proptest::num::f64::ANY), 0..4)),
                0..6)
        ) {
            let req = WriteRequest {
                timeseries: series
                    .iter()
                    .map(|(labels, samples)| TimeSeries {
                        labels: std::iter::once(label("__name__", "m"))
                            .chain(labels.iter().map(|(n, v)| label(&format!("l_{n}"), v)))
                            .collect(),
                        samples: samples
                            .iter()
                            .map(|&(t, v)| PbSample { value: v, timestamp: t })
                            .collect(),
                        exemplars: vec![],
                        histograms: vec![],
                    })
                    .collect(),
            };
            let got = run(&req, &LabelCache::new(10));
            // The oracle is prost's reading of the same bytes (proto3 does
            // not encode a default value such as -0.0).
            let req = WriteRequest::decode(req.encode_to_vec().as_slice()).unwrap();
            let want: Result<Vec<Labels>, _> = req
                .timeseries
                .iter()
                .map(|ts| Labels::new(ts.labels.iter().map(|l| (&l.name, &l.value))))
                .collect();
            match (got, want) {
                (Ok(d), Ok(want)) => {
                    proptest::prop_assert_eq!(d.batch.series.len(), want.len());
                    for ((s, w), ts) in d.batch.series.iter().zip(&want).zip(&req.timeseries) {
                        proptest::prop_assert_eq!(&s.labels, w);
                        proptest::prop_assert_eq!(s.samples.len(), ts.samples.len());
                        for (a, b) in s.samples.iter().zip(&ts.samples) {
                            proptest::prop_assert_eq!(a.t, b.timestamp);
                            proptest::prop_assert_eq!(a.v.to_bits(), b.value.to_bits());
                        }
                    }
                }
                (Err(_), Err(_)) => {}
                (got, want) => proptest::prop_assert!(false, "{:?} vs {:?}", got.err(), want.err()),
            }
        }
    }
}
