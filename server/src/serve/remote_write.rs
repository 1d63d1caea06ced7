//! Prometheus remote_write 1.0: a snappy-compressed `WriteRequest`
//! protobuf, turned into one [`WriteBatch`]. The top level is walked
//! without copying (labels are the hot part); the rare exemplar and
//! metadata messages are declared here for prost.

use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use parking_lot::RwLock;
use prost::Message;
use rustc_hash::{FxHashMap, FxHasher};
use sextant_storage::{Exemplar, Labels, Sample, SeriesWrite, WriteBatch};

use super::body;
use super::error::{ApiError, ApiResult, Kind};
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
        Ok(()) => {
            m.requests.fetch_add(1, Relaxed);
            m.latency.observe(t0.elapsed());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            m.failed.fetch_add(1, Relaxed);
            // remote_write senders log the body: plain text, as Prometheus.
            (e.status(), e.message).into_response()
        }
    }
}

async fn handle(st: &Arc<State>, headers: &HeaderMap, b: Body) -> ApiResult<()> {
    let media = body::media_type(headers);
    if !media.is_empty() && media != "application/x-protobuf" {
        return Err(ApiError::new(
            Kind::UnsupportedMedia,
            format!("remote_write expects Content-Type application/x-protobuf, got {media:?}"),
        ));
    }
    let _slot = st.write_slot().await?;
    let raw = body::read(b, st.cfg.max_body_bytes).await?;
    let max = st.cfg.max_decompressed_bytes;
    st.blocking(move |st| {
        let Decoded {
            batch,
            metadata,
            histograms,
        } = decode(&raw, max, &st.label_cache)?;
        st.note_metadata(metadata);
        let summary = st.db.write_limited(&batch, st.cfg.max_series_per_write)?;
        let m = &st.metrics;
        m.remote_write
            .samples
            .fetch_add(summary.samples as u64, Relaxed);
        m.series_created
            .fetch_add(summary.series_created as u64, Relaxed);
        if histograms > 0 {
            return Err(ApiError::bad(format!(
                "{histograms} native histogram sample(s) dropped: Sextant stores classic \
                 histograms only (the float samples of the request were stored)"
            )));
        }
        Ok(())
    })
    .await
}

/// A decoded request.
pub struct Decoded {
    /// The series and samples.
    pub batch: WriteBatch,
    /// Metadata per metric family.
    pub metadata: Vec<(String, MetricMeta)>,
    /// Native histogram samples skipped.
    pub histograms: usize,
}

/// Label sets by a hash of their encoded `Label` fields. Senders encode a
/// series' labels identically every time, so a hit skips UTF-8 checks,
/// sorting and allocation. Only the hash is kept (the label bytes live
/// once, in the `Labels`); a hit is confirmed by comparing the request's
/// fields with the cached pairs, so a hash collision, or a sender whose
/// label order differs from the sorted one, takes the full check instead.
/// Sharded; a shard is emptied when it outgrows its share of the bound.
pub struct LabelCache {
    shards: Vec<RwLock<FxHashMap<u64, Labels>>>,
    per_shard: usize,
}

impl LabelCache {
    /// A cache of at most about `max` label sets.
    pub fn new(max: usize) -> Self {
        const SHARDS: usize = 16;
        LabelCache {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(FxHashMap::default()))
                .collect(),
            per_shard: max / SHARDS + 1,
        }
    }

    fn shard(&self, key: u64) -> &RwLock<FxHashMap<u64, Labels>> {
        &self.shards[(key >> 40) as usize % self.shards.len()]
    }

    /// The cached label set of `key`, if it has exactly the pairs `msgs`.
    fn get(&self, key: u64, msgs: &[&[u8]]) -> Option<Labels> {
        let labels = self.shard(key).read().get(&key).cloned()?;
        same_pairs(msgs, &labels).then_some(labels)
    }

    fn insert(&self, key: u64, labels: &Labels) {
        let mut m = self.shard(key).write();
        if m.len() >= self.per_shard {
            m.clear();
        }
        m.insert(key, labels.clone());
    }
}

/// Whether the encoded `Label` messages are exactly `labels`' pairs, in
/// order (a sorted, valid set: no check of the bytes is needed on a match).
fn same_pairs(msgs: &[&[u8]], labels: &Labels) -> bool {
    // Bytes, not `str`s: the set's UTF-8 was checked when it was built,
    // and checking it again was ~8% of ingest CPU.
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

/// Name and value of one encoded `Label`.
fn label_fields(m: &[u8]) -> Result<(&[u8], &[u8]), String> {
    // What every sender writes: field 1 then field 2, each under 128
    // bytes (one-byte lengths). Read directly; anything else is walked.
    if let [0x0a, n, rest @ ..] = m
        && *n < 0x80
        && let Some((name, [0x12, v, value @ ..])) = rest.split_at_checked(usize::from(*n))
        && *v < 0x80
        && value.len() == usize::from(*v)
    {
        return Ok((name, value));
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

/// Decodes a snappy-compressed `WriteRequest`, checking every series
/// before anything is stored.
pub fn decode(raw: &[u8], max: usize, cache: &LabelCache) -> ApiResult<Decoded> {
    let bytes = body::unsnappy(raw, max)?;
    let malformed = |e: String| ApiError::bad(format!("malformed remote_write protobuf: {e}"));
    let mut out = Decoded {
        batch: WriteBatch::default(),
        metadata: Vec::new(),
        histograms: 0,
    };
    // The Label messages of one series, reused from series to series.
    let mut label_msgs = Vec::new();
    let mut w = Wire::new(&bytes);
    while let Some((field, v)) = w.next_field().map_err(malformed)? {
        match (field, v) {
            (1, Value::Bytes(ts)) => {
                let s = series(ts, cache, &mut label_msgs, &mut out.histograms).map_err(
                    |e| match e {
                        SeriesError::Wire(e) => malformed(e),
                        SeriesError::Api(e) => e,
                    },
                )?;
                out.batch.series.push(s);
            }
            (3, Value::Bytes(m)) => {
                let m = MetricMetadata::decode(m).map_err(|e| malformed(e.to_string()))?;
                let meta = MetricMeta {
                    kind: metric_type(m.kind).into(),
                    help: m.help,
                    unit: m.unit,
                };
                out.metadata.push((m.metric_family_name, meta));
            }
            _ => {}
        }
    }
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

/// One `TimeSeries`.
fn series<'a>(
    ts: &'a [u8],
    cache: &LabelCache,
    label_msgs: &mut Vec<&'a [u8]>,
    histograms: &mut usize,
) -> Result<SeriesWrite, SeriesError> {
    label_msgs.clear();
    // The cache key: a hash of the encoded Label fields, tag and length
    // included, as they go by.
    let mut key = FxHasher::default();
    let mut samples = Vec::with_capacity(1);
    let mut exemplars = Vec::new();
    let mut w = Wire::new(ts);
    loop {
        let at = w.pos();
        let Some((field, v)) = w.next_field()? else {
            break;
        };
        match (field, v) {
            (1, Value::Bytes(l)) => {
                key.write(&ts[at..w.pos()]);
                label_msgs.push(l);
            }
            (2, Value::Bytes(s)) => samples.push(sample(s)?),
            (3, Value::Bytes(e)) => {
                exemplars.push(PbExemplar::decode(e).map_err(|e| SeriesError::Wire(e.to_string()))?)
            }
            (4, Value::Bytes(_)) => *histograms += 1,
            _ => {}
        }
    }
    let key = key.finish();
    let labels = match cache.get(key, label_msgs) {
        Some(l) => l,
        None => {
            let l = series_labels(label_msgs)?;
            cache.insert(key, &l);
            l
        }
    };
    for s in &samples {
        check_time(&labels, s.t)?;
    }
    let exemplars = exemplars
        .iter()
        .map(|e| {
            check_time(&labels, e.timestamp)?;
            exemplar(e)
        })
        .collect::<ApiResult<_>>()?;
    Ok(SeriesWrite {
        labels,
        samples,
        exemplars,
    })
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
    let show = || {
        let inner: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
        format!("{{{}}}", inner.join(", "))
    };
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

fn utf8<'a>(b: &'a [u8], what: &str) -> ApiResult<&'a str> {
    std::str::from_utf8(b).map_err(|_| {
        ApiError::bad(format!(
            "label {what} {:?} is not valid UTF-8",
            String::from_utf8_lossy(b)
        ))
    })
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

    #[derive(Clone, PartialEq, Message)]
    struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        samples: Vec<PbSample>,
        #[prost(message, repeated, tag = "3")]
        exemplars: Vec<PbExemplar>,
        #[prost(bytes = "vec", repeated, tag = "4")]
        histograms: Vec<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct PbSample {
        #[prost(double, tag = "1")]
        value: f64,
        #[prost(int64, tag = "2")]
        timestamp: i64,
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
                histograms: vec![vec![1, 2]],
            }],
        };
        let cache = LabelCache::new(100);
        for _ in 0..2 {
            // The second round is served from the label cache.
            let d = run(&req, &cache).unwrap();
            assert_eq!(d.histograms, 1);
            let s = &d.batch.series[0];
            assert_eq!(s.labels.to_string(), "up{job=\"api\"}");
            assert!(s.samples[0].v.is_nan());
            assert_eq!(s.samples[0].t, 5);
            assert_eq!(s.exemplars[0].trace_id[15], 0x10);
            assert_eq!(s.exemplars[0].labels.get("user"), Some("x"));
        }

        type Change = fn(&mut TimeSeries);
        let cases: [(Change, &str); 4] = [
            (|ts| ts.labels[1].value.clear(), "no metric name"),
            (|ts| ts.samples[0].timestamp = -1, "negative timestamp"),
            (|ts| ts.labels.push(label("job", "b")), "duplicate label"),
            (|ts| ts.labels.push(label("", "b")), "empty label name"),
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
