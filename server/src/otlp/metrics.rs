//! OTLP metrics to Prometheus series, after the OpenTelemetry
//! Prometheus-compatibility rules: names sanitised with unit and `_total`
//! suffixes, gauges and monotonic sums as gauges and counters (delta
//! temporality accumulated to cumulative), histograms as
//! `_bucket`/`_sum`/`_count`, exponential histograms as native
//! histograms (delta ones accumulated too), summaries by `quantile`, `service.name` /
//! `service.instance.id` as `job` / `instance`, the other resource
//! attributes on `target_info`, exemplars kept.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar as PbExemplar, ExponentialHistogramDataPoint, Metric,
    NumberDataPoint, exemplar, exponential_histogram_data_point, metric::Data, number_data_point,
};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use sextant_storage::{
    Exemplar, Histogram, HistogramSample, Labels, Sample, SeriesWrite, WriteBatch,
};

use super::{attributes, id};
use crate::error::{ApiError, ApiResult};
use crate::state::MetricMeta;

/// Prometheus' staleness marker: "no recorded value".
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
/// `DataPointFlags.NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// Running totals of delta-temporality series, so they can be stored as
/// cumulative counters (kept in memory: after a restart totals start from
/// zero again, which PromQL's `rate` reads as a counter reset).
#[derive(Default)]
pub struct DeltaTotals {
    floats: Mutex<FxHashMap<Labels, f64>>,
    histograms: Mutex<FxHashMap<Labels, Histogram>>,
}

impl DeltaTotals {
    fn add(&self, series: &Labels, delta: f64) -> f64 {
        let mut m = self.floats.lock();
        let total = m.entry(series.clone()).or_insert(0.0);
        *total += delta;
        *total
    }

    /// The series' total with `delta` added. A delta the total cannot take
    /// (custom buckets meeting exponential ones) starts a new total: the
    /// counter reset `rate` then sees is what happened.
    fn add_histogram(&self, series: &Labels, delta: &Histogram) -> Histogram {
        let mut m = self.histograms.lock();
        let total = m.entry(series.clone()).or_insert_with(|| Histogram {
            schema: delta.schema,
            zero_threshold: delta.zero_threshold,
            ..Histogram::default()
        });
        if total.add(delta).is_err() {
            *total = delta.clone();
        }
        total.compact();
        total.clone()
    }
}

/// Finest schema Prometheus stores; OTLP scales above it are downscaled.
const MAX_SCHEMA: i32 = sextant_storage::HISTOGRAM_MAX_SCHEMA;

/// An OTLP exponential histogram point as a native histogram, after the
/// OpenTelemetry → Prometheus rules: scale is the schema (finer scales
/// merged down to 8), OTLP bucket `i` (`(base^i, base^(i+1)]`) is
/// Prometheus bucket `i + 1`, min and max are dropped, a missing sum is 0.
fn native_histogram(p: &ExponentialHistogramDataPoint) -> Result<Histogram, String> {
    if p.scale < sextant_storage::HISTOGRAM_MIN_SCHEMA {
        return Err(format!(
            "exponential histogram scale {} is below the coarsest supported, {}",
            p.scale,
            sextant_storage::HISTOGRAM_MIN_SCHEMA
        ));
    }
    let shift = (p.scale - MAX_SCHEMA).max(0) as u32;
    let buckets = |b: Option<&exponential_histogram_data_point::Buckets>| -> Vec<(i32, f64)> {
        let mut out: Vec<(i32, f64)> = Vec::new();
        let Some(b) = b else { return out };
        for (k, &c) in b.bucket_counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            // OTLP index, then Prometheus' (one up), at the coarser scale:
            // bucket i of scale s lies in bucket ceil(i / 2^shift) of s - shift.
            let otel = i64::from(b.offset) + k as i64;
            let index = (otel + 1 + (1i64 << shift) - 1).div_euclid(1i64 << shift);
            let Ok(index) = i32::try_from(index) else {
                continue;
            };
            match out.last_mut() {
                Some(last) if last.0 == index => last.1 += c as f64,
                _ => out.push((index, c as f64)),
            }
        }
        out
    };
    let h = Histogram {
        schema: p.scale.min(MAX_SCHEMA),
        zero_threshold: p.zero_threshold,
        zero_count: p.zero_count as f64,
        count: p.count as f64,
        sum: p.sum.unwrap_or(0.0),
        positive: buckets(p.positive.as_ref()),
        negative: buckets(p.negative.as_ref()),
        ..Histogram::default()
    };
    h.validate_observed().map_err(|e| e.to_string())?;
    Ok(h)
}

/// What one request turned into.
#[derive(Default)]
pub struct Converted {
    /// Series to store.
    pub batch: WriteBatch,
    /// Metadata per metric family.
    pub metadata: Vec<(String, MetricMeta)>,
    /// Data points not stored, with the first reason.
    pub rejected: (u64, Option<String>),
}

impl Converted {
    fn reject(&mut self, n: u64, why: impl FnOnce() -> String) {
        self.rejected.0 += n;
        if self.rejected.1.is_none() {
            self.rejected.1 = Some(why());
        }
    }

    fn push(&mut self, labels: Labels, t: i64, v: f64, exemplars: Vec<Exemplar>) {
        self.batch.series.push(SeriesWrite {
            labels,
            samples: vec![Sample::new(t, v)],
            histograms: Vec::new(),
            exemplars,
        });
    }
}

/// The labels every series of one resource and scope carries.
struct Base {
    pairs: Vec<(String, String)>,
}

impl Base {
    /// The series `name{base, point attributes, extra}`.
    fn series(
        &self,
        name: &str,
        attrs: &[KeyValue],
        extra: &[(&str, String)],
    ) -> ApiResult<Labels> {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(attrs.len() + 6);
        for kv in attrs {
            let n = label_name(&kv.key);
            let v = super::value(kv.value.as_ref(), 0)?.to_text().into_owned();
            match pairs.iter_mut().find(|(k, _)| *k == n) {
                // Two attributes that sanitise to one name: values joined.
                Some((_, old)) => {
                    old.push(';');
                    old.push_str(&v);
                }
                None => pairs.push((n, v)),
            }
        }
        for (n, v) in self
            .pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v))
            .chain(extra.iter().map(|(n, v)| (*n, v)))
        {
            pairs.retain(|(k, _)| k != n);
            pairs.push((n.to_string(), v.clone()));
        }
        pairs.push(("__name__".into(), name.to_string()));
        Labels::new(pairs).map_err(|e| ApiError::bad(format!("metric {name}: {e}")))
    }
}

/// Converts a request. Points that cannot be stored (zero timestamps,
/// invalid exponential histograms) are counted in `rejected`, as OTLP's
/// partial success reports them.
pub fn convert(req: &ExportMetricsServiceRequest, totals: &DeltaTotals) -> ApiResult<Converted> {
    let mut out = Converted::default();
    for rm in &req.resource_metrics {
        let res = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let (job, instance, info) = identity(res)?;
        let mut newest = 0;
        for sm in &rm.scope_metrics {
            let mut base = Base { pairs: Vec::new() };
            if !job.is_empty() {
                base.pairs.push(("job".into(), job.clone()));
            }
            if !instance.is_empty() {
                base.pairs.push(("instance".into(), instance.clone()));
            }
            if let Some(s) = &sm.scope {
                if !s.name.is_empty() {
                    base.pairs.push(("otel_scope_name".into(), s.name.clone()));
                }
                if !s.version.is_empty() {
                    base.pairs
                        .push(("otel_scope_version".into(), s.version.clone()));
                }
            }
            for m in &sm.metrics {
                newest = newest.max(metric(&mut out, &base, m, totals)?);
            }
        }
        if !info.is_empty() && newest > 0 {
            let mut pairs = info;
            pairs.push(("job".into(), job));
            pairs.push(("instance".into(), instance));
            pairs.push(("__name__".into(), "target_info".into()));
            let labels =
                Labels::new(pairs).map_err(|e| ApiError::bad(format!("target_info: {e}")))?;
            out.push(labels, newest, 1.0, Vec::new());
        }
    }
    Ok(out)
}

/// Label pairs, in the order they were found.
type Pairs = Vec<(String, String)>;

/// `job`, `instance` and the `target_info` labels of a resource.
fn identity(res: &[KeyValue]) -> ApiResult<(String, String, Pairs)> {
    let attrs = attributes(res)?;
    let get = |k: &str| {
        attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_text().into_owned())
            .unwrap_or_default()
    };
    let (ns, name) = (get("service.namespace"), get("service.name"));
    let job = if ns.is_empty() {
        name
    } else {
        format!("{ns}/{name}")
    };
    let instance = get("service.instance.id");
    let info = attrs
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "service.name" | "service.namespace" | "service.instance.id"
            )
        })
        .map(|(n, v)| (label_name(n), v.to_text().into_owned()))
        .collect();
    Ok((job, instance, info))
}

/// Converts one metric; returns its newest timestamp (ms).
fn metric(out: &mut Converted, base: &Base, m: &Metric, totals: &DeltaTotals) -> ApiResult<i64> {
    let Some(data) = &m.data else { return Ok(0) };
    let mut newest = 0;
    let (kind, name) = match data {
        Data::Gauge(g) => {
            let name = metric_name(&m.name, &m.unit, Flavour::Gauge);
            for p in &g.data_points {
                newest = newest.max(number(out, base, &name, p, None, totals)?);
            }
            ("gauge", name)
        }
        Data::Sum(s) => {
            let delta = s.aggregation_temporality == AggregationTemporality::Delta as i32;
            let flavour = if s.is_monotonic {
                Flavour::Counter
            } else {
                Flavour::Gauge
            };
            let name = metric_name(&m.name, &m.unit, flavour);
            for p in &s.data_points {
                newest = newest.max(number(out, base, &name, p, Some(delta), totals)?);
            }
            (if s.is_monotonic { "counter" } else { "gauge" }, name)
        }
        Data::Histogram(h) => {
            let delta = h.aggregation_temporality == AggregationTemporality::Delta as i32;
            let name = metric_name(&m.name, &m.unit, Flavour::Other);
            for p in &h.data_points {
                let Some(t) = time_ms(out, p.time_unix_nano) else {
                    continue;
                };
                newest = newest.max(t);
                let stale = p.flags & NO_RECORDED_VALUE != 0;
                let acc = |l: &Labels, v: f64| {
                    if stale {
                        f64::from_bits(STALE_NAN)
                    } else if delta {
                        totals.add(l, v)
                    } else {
                        v
                    }
                };
                let ex = exemplars(&p.exemplars)?;
                let mut cum = 0u64;
                let bounds = p
                    .explicit_bounds
                    .iter()
                    .map(|b| bound(*b))
                    .chain(["+Inf".to_string()]);
                for (i, le) in bounds.enumerate() {
                    cum += p.bucket_counts.get(i).copied().unwrap_or(0);
                    let upper = p.explicit_bounds.get(i).copied().unwrap_or(f64::INFINITY);
                    let lower = if i == 0 {
                        f64::NEG_INFINITY
                    } else {
                        p.explicit_bounds[i - 1]
                    };
                    let mine = ex
                        .iter()
                        .filter(|e| e.value > lower && e.value <= upper)
                        .cloned()
                        .collect();
                    let count = if i == p.explicit_bounds.len() {
                        p.count
                    } else {
                        cum
                    };
                    let l = base.series(&format!("{name}_bucket"), &p.attributes, &[("le", le)])?;
                    let v = acc(&l, count as f64);
                    out.push(l, t, v, mine);
                }
                if let Some(sum) = p.sum {
                    let l = base.series(&format!("{name}_sum"), &p.attributes, &[])?;
                    let v = acc(&l, sum);
                    out.push(l, t, v, Vec::new());
                }
                let l = base.series(&format!("{name}_count"), &p.attributes, &[])?;
                let v = acc(&l, p.count as f64);
                out.push(l, t, v, Vec::new());
            }
            ("histogram", name)
        }
        Data::Summary(s) => {
            let name = metric_name(&m.name, &m.unit, Flavour::Other);
            for p in &s.data_points {
                let Some(t) = time_ms(out, p.time_unix_nano) else {
                    continue;
                };
                newest = newest.max(t);
                let stale = p.flags & NO_RECORDED_VALUE != 0;
                let val = |v: f64| if stale { f64::from_bits(STALE_NAN) } else { v };
                for q in &p.quantile_values {
                    let l =
                        base.series(&name, &p.attributes, &[("quantile", bound(q.quantile))])?;
                    out.push(l, t, val(q.value), Vec::new());
                }
                let l = base.series(&format!("{name}_sum"), &p.attributes, &[])?;
                out.push(l, t, val(p.sum), Vec::new());
                let l = base.series(&format!("{name}_count"), &p.attributes, &[])?;
                out.push(l, t, val(p.count as f64), Vec::new());
            }
            ("summary", name)
        }
        Data::ExponentialHistogram(e) => {
            let delta = e.aggregation_temporality == AggregationTemporality::Delta as i32;
            let name = metric_name(&m.name, &m.unit, Flavour::Other);
            for p in &e.data_points {
                let Some(t) = time_ms(out, p.time_unix_nano) else {
                    continue;
                };
                let labels = base.series(&name, &p.attributes, &[])?;
                let h = match native_histogram(p) {
                    Ok(h) => h,
                    Err(why) => {
                        out.reject(1, || format!("{}: {why}", m.name));
                        continue;
                    }
                };
                let h = if p.flags & NO_RECORDED_VALUE != 0 {
                    Histogram {
                        sum: f64::from_bits(STALE_NAN),
                        ..Histogram::default()
                    }
                } else if delta {
                    totals.add_histogram(&labels, &h)
                } else {
                    h
                };
                newest = newest.max(t);
                out.batch.series.push(SeriesWrite {
                    labels,
                    samples: Vec::new(),
                    histograms: vec![HistogramSample::new(t, h)],
                    exemplars: exemplars(&p.exemplars)?,
                });
            }
            ("histogram", name)
        }
    };
    out.metadata.push((
        name,
        MetricMeta {
            kind: kind.into(),
            help: m.description.clone(),
            unit: m.unit.clone(),
        },
    ));
    Ok(newest)
}

/// One gauge or sum point; `delta` is `Some` for sums.
fn number(
    out: &mut Converted,
    base: &Base,
    name: &str,
    p: &NumberDataPoint,
    delta: Option<bool>,
    totals: &DeltaTotals,
) -> ApiResult<i64> {
    let Some(t) = time_ms(out, p.time_unix_nano) else {
        return Ok(0);
    };
    let labels = base.series(name, &p.attributes, &[])?;
    let raw = match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => f64::NAN,
    };
    let v = if p.flags & NO_RECORDED_VALUE != 0 {
        f64::from_bits(STALE_NAN)
    } else if delta == Some(true) {
        totals.add(&labels, raw)
    } else {
        raw
    };
    let ex = exemplars(&p.exemplars)?;
    out.push(labels, t, v, ex);
    Ok(t)
}

fn time_ms(out: &mut Converted, ns: u64) -> Option<i64> {
    if ns == 0 {
        out.reject(1, || "a data point has no time_unix_nano".into());
        return None;
    }
    i64::try_from(ns / 1_000_000).ok()
}

fn exemplars(ex: &[PbExemplar]) -> ApiResult<Vec<Exemplar>> {
    ex.iter()
        .map(|e| {
            let pairs: Vec<(String, String)> = attributes(&e.filtered_attributes)?
                .into_iter()
                .map(|(n, v)| (label_name(&n), v.to_text().into_owned()))
                .collect();
            Ok(Exemplar {
                t: (e.time_unix_nano / 1_000_000) as i64,
                value: match e.value {
                    Some(exemplar::Value::AsDouble(d)) => d,
                    Some(exemplar::Value::AsInt(i)) => i as f64,
                    None => 0.0,
                },
                trace_id: id("exemplar trace_id", &e.trace_id)?,
                span_id: id("exemplar span_id", &e.span_id)?,
                labels: Labels::new(pairs).map_err(|e| ApiError::bad(format!("exemplar: {e}")))?,
            })
        })
        .collect()
}

/// A bucket bound or quantile as Prometheus writes it in `le`/`quantile`.
fn bound(v: f64) -> String {
    let mut s = String::new();
    crate::prom_json::number(&mut s, v);
    s
}

#[derive(Clone, Copy, PartialEq)]
enum Flavour {
    Gauge,
    Counter,
    Other,
}

/// A Prometheus metric name: invalid characters to `_` (runs collapsed),
/// the unit as a suffix, `_total` last for counters, `_ratio` for gauges of
/// unit `1`.
fn metric_name(name: &str, unit: &str, flavour: Flavour) -> String {
    let mut tokens: Vec<String> = sanitize(name, |c| c.is_ascii_alphanumeric() || c == ':')
        .split('_')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if flavour == Flavour::Counter {
        tokens.retain(|t| t != "total");
    }
    let (main, per) = unit_words(unit);
    if let Some(word) = main.filter(|w| !tokens.contains(w)) {
        tokens.push(word);
    }
    if let Some(word) = per.map(|p| format!("per_{p}"))
        && !tokens.join("_").ends_with(&word)
    {
        tokens.extend(word.split('_').map(str::to_string));
    }
    if flavour == Flavour::Gauge && unit == "1" && tokens.last().is_none_or(|t| t != "ratio") {
        tokens.push("ratio".into());
    }
    if flavour == Flavour::Counter {
        tokens.push("total".into());
    }
    let mut s = tokens.join("_");
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// A label name: invalid characters to `_`, a leading digit prefixed with `key_`.
fn label_name(name: &str) -> String {
    let s = sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_');
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{s}")
    } else {
        s
    }
}

fn sanitize(s: &str, ok: impl Fn(char) -> bool) -> String {
    s.chars().map(|c| if ok(c) { c } else { '_' }).collect()
}

/// The unit's words: `ms` → `milliseconds`, `By/s` → (`bytes`, `second`);
/// annotations in braces (`{requests}`) and `1` give none.
fn unit_words(unit: &str) -> (Option<String>, Option<String>) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (unit, None),
    };
    let clean = |u: &str| -> Option<String> {
        let u = u.trim();
        if u.is_empty() || u == "1" || u.starts_with('{') {
            return None;
        }
        let w = sanitize(u, |c| c.is_ascii_alphanumeric());
        Some(w.trim_matches('_').to_string()).filter(|w| !w.is_empty())
    };
    let main_word = match main.trim() {
        "d" => Some("days".into()),
        "h" => Some("hours".into()),
        "min" => Some("minutes".into()),
        "s" => Some("seconds".into()),
        "ms" => Some("milliseconds".into()),
        "us" => Some("microseconds".into()),
        "ns" => Some("nanoseconds".into()),
        "By" => Some("bytes".into()),
        "KiBy" => Some("kibibytes".into()),
        "MiBy" => Some("mebibytes".into()),
        "GiBy" => Some("gibibytes".into()),
        "TiBy" => Some("tibibytes".into()),
        "KBy" => Some("kilobytes".into()),
        "MBy" => Some("megabytes".into()),
        "GBy" => Some("gigabytes".into()),
        "TBy" => Some("terabytes".into()),
        "m" => Some("meters".into()),
        "V" => Some("volts".into()),
        "A" => Some("amperes".into()),
        "J" => Some("joules".into()),
        "W" => Some("watts".into()),
        "g" => Some("grams".into()),
        "Cel" => Some("celsius".into()),
        "Hz" => Some("hertz".into()),
        "%" => Some("percent".into()),
        other => clean(other),
    };
    let per_word = per.and_then(|p| match p.trim() {
        "s" => Some("second".into()),
        "m" => Some("minute".into()),
        "h" => Some("hour".into()),
        "d" => Some("day".into()),
        "w" => Some("week".into()),
        "mo" => Some("month".into()),
        "y" => Some("year".into()),
        other => clean(other),
    });
    (main_word, per_word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scale: i32, offset: i32, counts: &[u64], count: u64) -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            time_unix_nano: 1_000_000,
            count,
            sum: Some(1.5),
            scale,
            zero_count: 1,
            positive: Some(exponential_histogram_data_point::Buckets {
                offset,
                bucket_counts: counts.to_vec(),
            }),
            ..Default::default()
        }
    }

    /// OTLP bucket i is Prometheus bucket i+1; scales above 8 merge down
    /// (bucket i of scale 10 lies in bucket ceil(i/4) of scale 8); bad
    /// points are refused with their reason.
    #[test]
    fn exponential_histograms_map_to_native_ones() {
        let h = native_histogram(&point(3, -2, &[1, 0, 2], 4)).unwrap();
        assert_eq!((h.schema, h.count, h.zero_count), (3, 4.0, 1.0));
        assert_eq!(h.positive, vec![(-1, 1.0), (1, 2.0)]);
        // Scale 10, OTLP indexes 3..=6 → Prometheus 4..=7 → schema 8: 1, 2, 2, 2.
        let h = native_histogram(&point(10, 3, &[1, 1, 1, 1], 5)).unwrap();
        assert_eq!(h.schema, 8);
        assert_eq!(h.positive, vec![(1, 1.0), (2, 3.0)]);
        for (p, why) in [
            (point(-5, 0, &[1], 2), "below the coarsest"),
            (point(0, 0, &[5], 2), "count 2 is less than"),
        ] {
            let e = native_histogram(&p).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn names_follow_the_compatibility_rules() {
        let cases = [
            (
                "http.server.duration",
                "ms",
                Flavour::Other,
                "http_server_duration_milliseconds",
            ),
            (
                "http.server.requests",
                "{request}",
                Flavour::Counter,
                "http_server_requests_total",
            ),
            ("requests_total", "1", Flavour::Counter, "requests_total"),
            (
                "cpu.utilization",
                "1",
                Flavour::Gauge,
                "cpu_utilization_ratio",
            ),
            ("net.io", "By/s", Flavour::Gauge, "net_io_bytes_per_second"),
            ("latency_seconds", "s", Flavour::Gauge, "latency_seconds"),
            ("bytes.sent", "By", Flavour::Counter, "bytes_sent_total"),
            ("2xx--count", "", Flavour::Gauge, "_2xx_count"),
        ];
        for (name, unit, flavour, want) in cases {
            assert_eq!(metric_name(name, unit, flavour), want, "{name} {unit}");
        }
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("0day"), "key_0day");
    }
}
